// Copyright 2026 The Outpost Authors.
//
// The Storage contract checked against every backend listed in storage_backends.h: the suite is the
// conformance library (engine/testing, outpost/testing/storage_conformance.h), registered here the way a
// backend author registers theirs. Then what only OpenStorage's URIs promise.
#include "outpost/testing/storage_conformance.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/storage.h"

namespace outpost {
namespace {

[[maybe_unused]] const bool kRegistered = [] {
  for (const StorageBackend& backend : StorageBackends()) {
    conformance::RegisterStorageConformance({.name = backend.name,
                                             .uri = backend.uri,
                                             .open = nullptr,  // OpenStorage: every backend is a scheme
                                             .lives_in_directory = backend.lives_in_directory,
                                             .honors_map_bytes_max = backend.honors_map_bytes_max,
                                             .exclusive_open = backend.exclusive_open});
  }
  return true;
}();

constexpr SpaceId kA = 0;

using Entries = std::vector<std::pair<std::string, std::string>>;

StorageOptions TestOptions() {
  StorageOptions options;
  options.spaces = {"a", "b"};
  options.sync = false;
  return options;
}

std::unique_ptr<Storage> OpenAt(const std::string& uri, const StorageOptions& options) {
  Result<std::unique_ptr<Storage>> store = OpenStorage(uri, options);
  EXPECT_TRUE(store.ok()) << uri << ": " << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

void Write(Storage& store, SpaceId space, const Entries& entries) {
  Result<std::unique_ptr<WriteTxn>> txn = store.BeginWrite();
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  for (const auto& [key, value] : entries) ASSERT_TRUE((*txn)->Put(space, key, value).ok());
  Status status = (*txn)->Commit();
  ASSERT_TRUE(status.ok()) << status.ToString();
}

Entries AllOf(Storage& store, SpaceId space) {
  Result<std::unique_ptr<ReadTxn>> txn = store.BeginRead();
  EXPECT_TRUE(txn.ok()) << txn.status().ToString();
  Entries out;
  if (!txn.ok()) return out;
  std::unique_ptr<Cursor> cursor = (*txn)->NewCursor(space);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    out.emplace_back(std::string(cursor->key()), std::string(cursor->value()));
  }
  EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
  return out;
}

// URIs that no backend accepts.
TEST(StorageUri, RejectsMalformedUris) {
  for (const std::string uri : {"", "nocolon", "foo:x", ":x", "lmdb:", "lmdb:?sync=0", "memory:x?sync=maybe",
                                "sqlite:", "sqlite:?sync=1", "rocksdb:", "rocksdb:?sync=0",
                                "sqlite:/tmp/x?sync=yes", "rocksdb:/tmp/x?cache=1"}) {
    Result<std::unique_ptr<Storage>> store = OpenStorage(uri, TestOptions());
    ASSERT_FALSE(store.ok()) << uri;
    EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument)
        << uri << ": " << store.status().ToString();
    EXPECT_FALSE(store.status().message().empty());
  }
  Result<std::unique_ptr<Storage>> store = OpenStorage("foo:x", TestOptions());
  EXPECT_EQ(store.status().message(),
            "unknown storage scheme 'foo' in 'foo:x' (expected memory:, lmdb:DIR, sqlite:FILE, "
            "rocksdb:DIR)");
}

TEST(StorageUri, PrivateMemoryStoresAreSeparate) {
  std::unique_ptr<Storage> one = OpenAt("memory:", TestOptions());
  std::unique_ptr<Storage> two = OpenAt("memory:", TestOptions());
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  Write(*one, kA, {{"k", "1"}});
  EXPECT_EQ(AllOf(*two, kA), Entries{});
  EXPECT_EQ(AllOf(*one, kA), (Entries{{"k", "1"}}));
}

}  // namespace
}  // namespace outpost
