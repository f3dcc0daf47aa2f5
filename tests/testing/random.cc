// Copyright 2026 The Outpost Authors.
#include "testing/random.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace outpost::harness {

uint64_t TestSeed(uint64_t fallback, const std::string& what) {
  uint64_t seed = fallback;
  if (const char* v = std::getenv("OUTPOST_TEST_SEED"); v != nullptr && *v != '\0') {
    seed = std::strtoull(v, nullptr, 10);
  }
  std::printf("%s: seed %llu (OUTPOST_TEST_SEED=%llu repeats it)\n", what.c_str(),
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  if (::testing::UnitTest::GetInstance()->current_test_info() != nullptr) {
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
  }
  return seed;
}

}  // namespace outpost::harness
