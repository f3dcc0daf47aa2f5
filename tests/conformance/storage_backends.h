// Copyright 2026 The Outpost Authors.
//
// The storage backends that tests/conformance/storage_conformance_test.cc runs against. Adding a backend
// is one entry here.
#ifndef OUTPOST_TESTS_CONFORMANCE_STORAGE_BACKENDS_H_
#define OUTPOST_TESTS_CONFORMANCE_STORAGE_BACKENDS_H_

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace outpost {

struct StorageBackend {
  std::string name;  // the suffix of the test names: StorageConformance/PutGetDelete/Lmdb
  // A URI for a store no other test touches. `dir` is an empty temporary directory that the test owns and
  // removes; `unique` is a name no other test of this process uses.
  std::function<std::string(const std::string& dir, const std::string& unique)> uri;
  bool lives_in_directory = false;    // the URI names a file or directory whose parent must exist
  bool honors_map_bytes_max = false;  // writing past StorageOptions::map_bytes_max fails with Full
  bool exclusive_open = false;        // a second open of an open store fails (else both share it)
};

inline std::vector<StorageBackend> StorageBackends() {
  return {
      {"Memory", [](const std::string&, const std::string& unique) { return "memory:" + unique; }, false,
       false, false},
      {"Lmdb", [](const std::string& dir, const std::string&) { return "lmdb:" + dir + "/store"; }, true,
       true, true},
      {"Sqlite", [](const std::string& dir, const std::string&) { return "sqlite:" + dir + "/store.db"; },
       true, true, true},
      {"Rocksdb", [](const std::string& dir, const std::string&) { return "rocksdb:" + dir + "/store"; },
       true, false, true},
  };
}

// The backends that keep their data in files: the ones a crash, restart or copy test runs on.
inline std::vector<StorageBackend> DurableStorageBackends() {
  std::vector<StorageBackend> durable;
  for (StorageBackend& backend : StorageBackends()) {
    if (backend.lives_in_directory) durable.push_back(std::move(backend));
  }
  return durable;
}

// Keeps gtest from printing the std::function as bytes.
inline void PrintTo(const StorageBackend& backend, std::ostream* out) { *out << backend.name; }

}  // namespace outpost

#endif  // OUTPOST_TESTS_CONFORMANCE_STORAGE_BACKENDS_H_
