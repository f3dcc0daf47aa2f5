// Copyright 2026 The Outpost Authors.
//
// DecodeMembers at the size a member may send (payload_bytes_max, 1 MiB by default): linear, not quadratic.
// Found by the members fuzz target (tests/fuzz/targets/members_fuzz.cc): a payload of distinct names took
// the old decoder 73 s for 1 MiB, on the server's one processing thread, stalling every connection.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "outpost/membership.h"

namespace outpost {
namespace {

TEST(MembersScale, AMebibyteOfDistinctNamesDecodesInLinearTime) {
  std::string payload;
  size_t names = 0;
  while (payload.size() < (size_t{1} << 20) - 16) {
    char name[16];
    std::snprintf(name, sizeof name, "%zx\n", names++);
    payload += name;
  }
  payload += "0\n1\n";  // duplicates are kept once
  const auto start = std::chrono::steady_clock::now();
  const auto users = DecodeMembers(payload);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(users.size(), names);
  EXPECT_EQ(users.front(), "0");
  char last[16];
  std::snprintf(last, sizeof last, "%zx", names - 1);
  EXPECT_EQ(users.back(), last);
  // 0.13 s here (-O2), 73 s before the fix; 10 s leaves room for sanitizers and a loaded machine.
  EXPECT_LT(seconds, 10.0) << users.size() << " names";
}

}  // namespace
}  // namespace outpost
