// Copyright 2026 The Outpost Authors.
//
// Fuzz target: outpostd's command-line parsing (tools/common/flags.h) and user-name check
// (outpost/membership.h ValidateUserName). The input is the argument list, NUL-separated. Properties: never
// crashes; a parse either runs, or answers help/version (exit 0) or refuses (exit 2) with a message; one that
// runs yields values only for known flags, GetUint agrees with the text; a valid user name is 1..64 bytes of
// [A-Za-z0-9._-].
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/flags.h"
#include "fuzz/targets/fuzz_check.h"
#include "outpost/membership.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto pieces = outpost::fuzz::Split(outpost::fuzz::AsView(data, size), '\0', 64);
  std::vector<std::string> args(pieces.begin(), pieces.end());
  const std::vector<outpost::cli::FlagSpec> specs = {
      {"data", true, false}, {"listen", true, true}, {"verbose", false, false}, {"max", true, false}};
  const outpost::cli::Usage usage{"outpostd fuzz", "ARGS", "", "", "outpostd fuzz"};
  outpost::cli::Flags flags;
  std::string error;
  const int rc = flags.Parse(usage, specs, args, &error);
  FUZZ_CHECK(rc == -1 || rc == outpost::cli::kExitOk || rc == outpost::cli::kExitUsage, "known outcomes");
  if (rc == -1) {
    FUZZ_CHECK(!flags.Has("unknown"), "only known flags");
    (void)flags.GetList("listen");
    uint64_t v = 0;
    std::string uint_error;
    if (flags.GetUint("max", 7, 1000, &v, &uint_error)) {
      FUZZ_CHECK(v <= 1000, "GetUint keeps the maximum");
      if (!flags.Has("max")) FUZZ_CHECK(v == 7, "GetUint falls back");
    } else {
      FUZZ_CHECK(!uint_error.empty(), "GetUint says why");
    }
    FUZZ_CHECK(flags.positional().size() <= args.size(), "positional arguments come from the input");
  } else {
    FUZZ_CHECK(!error.empty(), "a refused command line says why; help and version say something");
  }
  for (const auto& a : args) {
    if (!outpost::ValidateUserName(a).ok()) continue;
    FUZZ_CHECK(!a.empty() && a.size() <= outpost::kUserNameBytesMax, "a user name is 1..64 bytes");
    for (char c : a) {
      FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                     c == '_' || c == '-',
                 "a user name is [A-Za-z0-9._-]");
    }
  }
  return 0;
}
