// Copyright 2026 The Outpost Authors.
//
// The device store's format number (kDeviceStoreFormat, docs/storage-format.md "Compatibility") on every
// backend: a new store is stamped; a store from before formats were kept (no "format" key) opens and is
// stamped; a store of a newer format is refused with FailedPrecondition naming both numbers, and left
// exactly as it was; an unreadable format number is Corruption.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "client/device_store.h"
#include "conformance/storage_backends.h"
#include "outpost/client.h"
#include "outpost/storage.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

class StoreFormatTest : public testing::TestWithParam<StorageBackend> {
 protected:
  StoreFormatTest() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    uri_ = GetParam().uri(dir_.path(), std::string("format-") + info->name());
  }

  Result<std::unique_ptr<Client>> OpenClient() {
    return Client::Open({.store = uri_, .store_sync = false, .user = "alice", .device = "phone"});
  }

  // The device store opened raw, with the Client's spaces.
  std::unique_ptr<Storage> OpenRaw() {
    StorageOptions options;
    options.spaces = DeviceStore::SpaceNames();
    options.sync = false;
    auto storage = OpenStorage(uri_, options);
    EXPECT_TRUE(storage.ok()) << storage.status().ToString();
    return storage.ok() ? std::move(*storage) : nullptr;
  }

  // The meta space's "format" value, or "(none)".
  std::string Format() {
    auto storage = OpenRaw();
    if (!storage) return "(no store)";
    auto txn = storage->BeginRead();
    EXPECT_TRUE(txn.ok());
    std::string v;
    Status st = (*txn)->Get(kMeta, "format", &v);
    return st.ok() ? v : st.IsNotFound() ? "(none)" : st.ToString();
  }

  void SetFormat(const std::string& value, bool erase = false) {
    auto storage = OpenRaw();
    ASSERT_NE(storage, nullptr);
    auto txn = storage->BeginWrite();
    ASSERT_TRUE(txn.ok());
    Status st = erase ? (*txn)->Delete(kMeta, "format") : (*txn)->Put(kMeta, "format", value);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE((*txn)->Commit().ok());
  }

  // Every key and value of the meta space.
  std::map<std::string, std::string> Meta() {
    std::map<std::string, std::string> out;
    auto storage = OpenRaw();
    if (!storage) return out;
    auto txn = storage->BeginRead();
    EXPECT_TRUE(txn.ok());
    auto cursor = (*txn)->NewCursor(kMeta);
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) out.emplace(cursor->key(), cursor->value());
    EXPECT_TRUE(cursor->status().ok()) << cursor->status().ToString();
    return out;
  }

  harness::TempDir dir_;
  std::string uri_;
};

INSTANTIATE_TEST_SUITE_P(, StoreFormatTest, testing::ValuesIn(StorageBackends()),
                         [](const auto& info) { return info.param.name; });

TEST_P(StoreFormatTest, NewStoreIsStampedWithTheCurrentFormat) {
  {
    auto client = OpenClient();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    ASSERT_TRUE((*client)->Submit("s", "k", "hello").ok());
  }
  EXPECT_EQ(Format(), std::to_string(kDeviceStoreFormat));
}

TEST_P(StoreFormatTest, StoreWithoutAFormatOpensAndIsStamped) {
  {
    auto client = OpenClient();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    ASSERT_TRUE((*client)->Submit("s", "k", "kept").ok());
  }
  SetFormat("", /*erase=*/true);  // as a store written before formats were kept
  ASSERT_EQ(Format(), "(none)");
  {
    auto client = OpenClient();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    auto latest = (*client)->Latest("s", 10);
    ASSERT_TRUE(latest.ok());
    ASSERT_EQ(latest->size(), 1u);
    EXPECT_EQ((*latest)[0].payload, "kept");
  }
  EXPECT_EQ(Format(), std::to_string(kDeviceStoreFormat));
}

TEST_P(StoreFormatTest, NewerFormatIsRefusedAndTheStoreLeftUntouched) {
  {
    auto client = OpenClient();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    ASSERT_TRUE((*client)->Submit("s", "k", "from the future").ok());
  }
  const std::string newer = std::to_string(kDeviceStoreFormat + 1);
  SetFormat(newer);
  const auto before = Meta();
  auto client = OpenClient();
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Status::Code::kFailedPrecondition);
  const std::string msg = client.status().ToString();
  EXPECT_NE(msg.find("format " + newer), std::string::npos) << msg;
  EXPECT_NE(msg.find("(" + std::to_string(kDeviceStoreFormat) + ")"), std::string::npos) << msg;
  EXPECT_NE(msg.find("upgrade Outpost"), std::string::npos) << msg;
  EXPECT_EQ(Meta(), before);
  EXPECT_EQ(Format(), newer);
}

TEST_P(StoreFormatTest, UnreadableFormatIsCorruption) {
  {
    auto client = OpenClient();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
  }
  for (const std::string bad : {"", "x", "1x", "0", "-1", "99999999999999999999999"}) {
    SetFormat(bad);
    auto client = OpenClient();
    ASSERT_FALSE(client.ok()) << "format '" << bad << "'";
    EXPECT_EQ(client.status().code(), Status::Code::kCorruption) << client.status().ToString();
  }
}

}  // namespace
}  // namespace outpost
