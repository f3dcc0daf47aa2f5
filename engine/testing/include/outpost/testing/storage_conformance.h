// Copyright 2026 The Outpost Authors.
//
// The storage conformance suite (outpost::conformance, a GoogleTest library): every test that Outpost's own
// backends (memory, lmdb, sqlite, rocksdb) pass, run against a Storage implementation of your own. Register
// the backend once and link the library; each registered backend gets the whole suite, named
// StorageConformance/TEST/NAME.
//
//   // my_storage_conformance_test.cc, linked with outpost::conformance and GTest::gtest_main
//   #include "outpost/testing/storage_conformance.h"
//   #include "my_storage.h"  // Result<std::unique_ptr<outpost::Storage>> OpenMyStorage(path, options)
//
//   OUTPOST_STORAGE_CONFORMANCE(MyStore, (outpost::conformance::StorageConformanceBackend{
//       .uri = [](const std::string& dir, const std::string&) { return "my:" + dir + "/store"; },
//       .open = [](const std::string& uri, const outpost::StorageOptions& options) {
//         return OpenMyStorage(uri, options);  // parses "my:PATH[?sync=0|1]"
//       },
//       .lives_in_directory = true, .honors_map_bytes_max = false, .exclusive_open = true}));
//
// What the suite expects of `open` beyond storage.h: the URI is SCHEME:LOCATION with an optional "?sync=0"
// or "?sync=1" (anything else after '?' is InvalidArgument), Storage::uri() returns the URI as given, and
// opening the same URI again reopens the same store. Each test runs in a fresh temporary directory of its
// own that is removed afterwards (set OUTPOST_KEEP_TEMP=1 to keep it); the suite uses two spaces, "a" and
// "b". Tests run one at a time in the process (GoogleTest's model), some with several threads of their own,
// so the suite also runs under ASan and TSan.
#ifndef OUTPOST_TESTING_STORAGE_CONFORMANCE_H_
#define OUTPOST_TESTING_STORAGE_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost::conformance {

struct StorageConformanceBackend {
  // The suffix of the test names (letters, digits, underscores): StorageConformance/PutGetDelete/NAME.
  // OUTPOST_STORAGE_CONFORMANCE sets it from its first argument.
  std::string name = {};
  // A URI for a store no other test touches. `dir` is an empty temporary directory that the test owns and
  // removes; `unique` is a name no other test of this process uses (for stores that live in memory).
  std::function<std::string(const std::string& dir, const std::string& unique)> uri = {};
  // Opens (creating if needed) the store at `uri`. Empty: outpost::OpenStorage, for a backend that is one
  // of its schemes.
  std::function<Result<std::unique_ptr<Storage>>(const std::string& uri, const StorageOptions& options)>
      open = {};
  // The URI names a file or directory whose parent must exist; the crash, garbage and missing-parent tests
  // run only then.
  bool lives_in_directory = false;
  // Writing past StorageOptions::map_bytes_max fails with Full (else the size test is skipped).
  bool honors_map_bytes_max = false;
  // A second open of an open store fails with IOError (else both handles share the store).
  bool exclusive_open = false;
};

// Adds `backend` to the backends the suite runs against. Call it before testing::InitGoogleTest (the macro
// below does, during static initialisation); later calls have no effect on the run. Thread-safe. Always
// returns true (so that it can initialise a static).
bool RegisterStorageConformance(StorageConformanceBackend backend);

// Keeps GoogleTest from printing the std::functions as bytes.
void PrintTo(const StorageConformanceBackend& backend, std::ostream* out);

}  // namespace outpost::conformance

// Registers BACKEND (a StorageConformanceBackend expression, in parentheses if it has commas) under NAME,
// at namespace scope in any file of the test binary.
#define OUTPOST_STORAGE_CONFORMANCE(NAME, BACKEND)                                         \
  [[maybe_unused]] static const bool outpost_storage_conformance_registered_##NAME = [] {  \
    ::outpost::conformance::StorageConformanceBackend outpost_backend = BACKEND;           \
    outpost_backend.name = #NAME;                                                          \
    return ::outpost::conformance::RegisterStorageConformance(std::move(outpost_backend)); \
  }()

#endif  // OUTPOST_TESTING_STORAGE_CONFORMANCE_H_
