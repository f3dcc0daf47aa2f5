// Copyright 2026 The Outpost Authors.
//
// Fuzz target: DecodeMembers (outpost/membership.h), the decoder of a kMembersKind payload, which the server
// reads from any member's op. Properties: never crashes; every name is 1..255 bytes without '\n' and
// appears once; EncodeMembers of the result decodes to the same list (round trip).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "fuzz/targets/fuzz_check.h"
#include "outpost/membership.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload = outpost::fuzz::AsView(data, size);
  const std::vector<std::string> users = outpost::DecodeMembers(payload);
  std::set<std::string> seen;
  for (const auto& u : users) {
    FUZZ_CHECK(!u.empty() && u.size() <= 255, "a member name is 1..255 bytes");
    FUZZ_CHECK(u.find('\n') == std::string::npos, "a member name has no newline");
    FUZZ_CHECK(seen.insert(u).second, "each member appears once");
    FUZZ_CHECK(payload.find(u) != std::string_view::npos, "a member name comes from the payload");
  }
  FUZZ_CHECK(outpost::DecodeMembers(outpost::EncodeMembers(users)) == users, "encode/decode round trip");
  return 0;
}
