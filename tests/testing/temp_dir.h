// Copyright 2026 The Outpost Authors.
//
// TempDir: a fresh directory for one test, removed with everything in it when the TempDir is destroyed.
// OUTPOST_KEEP_TEMP=1 keeps it (its path is printed); a test that failed prints where its directory was, so a
// rerun with OUTPOST_KEEP_TEMP=1 leaves the evidence in place.
#ifndef OUTPOST_TESTS_TESTING_TEMP_DIR_H_
#define OUTPOST_TESTS_TESTING_TEMP_DIR_H_

#include <string>
#include <string_view>

namespace outpost::harness {

class TempDir {
 public:
  // $TMPDIR (or /tmp)/PREFIX-XXXXXX, made with mkdtemp. A failure to make it fails the current test (and
  // leaves path() empty).
  explicit TempDir(std::string_view prefix = "outpost-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // The path of `name` in this directory (not created).
  std::string operator/(std::string_view name) const;
  // The directory `name` in this one, created (with its parents) if missing.
  std::string Subdir(std::string_view name) const;

 private:
  std::string path_;
};

// Where a backend keeps a store called `name` under `dir`: memory stores by name ("memory:NAME", shared by
// every opener in this process), lmdb and rocksdb in a directory, sqlite in a file. A "postgresql://" or any
// other URI with a ':' is returned as it is.
std::string StoreUri(const std::string& backend, const std::string& dir, const std::string& name);

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_TEMP_DIR_H_
