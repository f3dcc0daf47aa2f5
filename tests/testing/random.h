// Copyright 2026 The Outpost Authors.
//
// Seeded randomness for tests: Rng (splitmix64, the same sequence on every platform and standard library) and
// TestSeed, which takes the run's seed from OUTPOST_TEST_SEED when set and prints it, so that a failure can
// be replayed with the same choices.
#ifndef OUTPOST_TESTS_TESTING_RANDOM_H_
#define OUTPOST_TESTS_TESTING_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace outpost::harness {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n] (modulo bias, irrelevant for n far below 2^64).
  uint64_t Upto(uint64_t n) { return n == UINT64_MAX ? Next() : Next() % (n + 1); }
  std::string Bytes(size_t n) {
    std::string out(n, '\0');
    for (auto& c : out) c = static_cast<char>(Next() & 0xff);
    return out;
  }

 private:
  uint64_t s_;
};

// OUTPOST_TEST_SEED (decimal) when set, else `fallback`. Prints "seed S (OUTPOST_TEST_SEED=S repeats it)"
// under `what`, and records it as the current test's "seed" property.
uint64_t TestSeed(uint64_t fallback, const std::string& what = "seed");

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_RANDOM_H_
