// Copyright 2026 The Outpost Authors.
//
// Helpers shared by the fuzz targets (tests/fuzz/targets/*_fuzz.cc). A target states a property with
// FUZZ_CHECK: when it does not hold, the input is a bug, so the process aborts with the reason (libFuzzer
// then saves the input as crash-*; the replay driver names the file).
#ifndef OUTPOST_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_
#define OUTPOST_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond, what)                                                                      \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (0)

namespace outpost::fuzz {

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `in` at every `sep` (the pieces may be empty); at most `max` pieces, the last one takes the rest.
inline std::vector<std::string_view> Split(std::string_view in, char sep, size_t max) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max) {
    const size_t at = in.find(sep);
    if (at == std::string_view::npos) break;
    out.push_back(in.substr(0, at));
    in.remove_prefix(at + 1);
  }
  out.push_back(in);
  return out;
}

}  // namespace outpost::fuzz

#endif  // OUTPOST_TESTS_FUZZ_TARGETS_FUZZ_CHECK_H_
