// Copyright 2026 The Outpost Authors.
//
// Small helpers of the conformance library: a temporary directory per test and a bounded wait. The library
// keeps its own so that a backend author needs nothing of Outpost's test tree.
#ifndef OUTPOST_ENGINE_TESTING_TESTING_INTERNAL_H_
#define OUTPOST_ENGINE_TESTING_TESTING_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace outpost::conformance::internal {

// $TMPDIR (or /tmp)/PREFIX-XXXXXX, made with mkdtemp and removed with everything in it when destroyed
// (kept when OUTPOST_KEEP_TEMP is set and not "0"). A failure to make it fails the current test and leaves
// path() empty.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Evaluates `condition` every millisecond until it holds (true) or `timeout_ms` of real time passed (false,
// after one last evaluation). For conditions that move on other threads and signal no one.
bool WaitFor(const std::function<bool()>& condition, int64_t timeout_ms);

}  // namespace outpost::conformance::internal

#endif  // OUTPOST_ENGINE_TESTING_TESTING_INTERNAL_H_
