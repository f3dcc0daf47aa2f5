// Copyright 2026 The Outpost Authors.
//
// SimDisk's own contract (sim_disk.h): a power loss undoes the last unsynced commits whole, whichever write
// made them.
#include "sim/sim_disk.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace outpost::sim {
namespace {

constexpr SpaceId kA = 0;

std::unique_ptr<Storage> OpenUnsynced(SimDisk& disk) {
  StorageOptions options;
  options.spaces = {"a"};
  options.sync = false;
  Result<std::unique_ptr<Storage>> store = disk.Opener()("ignored", options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::optional<std::string> Read(Storage& store, std::string_view key) {
  Result<std::unique_ptr<ReadTxn>> txn = store.BeginRead();
  EXPECT_TRUE(txn.ok()) << txn.status().ToString();
  if (!txn.ok()) return std::nullopt;
  std::string value;
  Status status = (*txn)->Get(kA, key, &value);
  if (status.IsNotFound()) return std::nullopt;
  EXPECT_TRUE(status.ok()) << status.ToString();
  return value;
}

TEST(SimDisk, PowerLossUndoesUnsyncedInserts) {
  SimDisk disk("inserts");
  std::unique_ptr<Storage> store = OpenUnsynced(disk);
  ASSERT_NE(store, nullptr);
  {
    std::unique_ptr<WriteTxn> txn = store->BeginWrite().value();
    ASSERT_TRUE(txn->Insert(kA, "k", "1").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  {
    std::unique_ptr<WriteTxn> txn = store->BeginWrite().value();
    EXPECT_EQ(txn->Insert(kA, "k", "2").code(), Status::Code::kAlreadyExists);  // reaches the store's txn
    ASSERT_TRUE(txn->Insert(kA, "j", "x").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  ASSERT_EQ(disk.unsynced(), 2u);

  // The last commit goes: its insert of j, and its refused insert of k changes nothing.
  ASSERT_EQ(disk.PowerLoss(1).value(), 1u);
  EXPECT_EQ(Read(*store, "j"), std::nullopt);
  EXPECT_EQ(Read(*store, "k"), "1");

  // An insert of an absent key is undone by deleting it; the first commit was written back meanwhile.
  {
    std::unique_ptr<WriteTxn> txn = store->BeginWrite().value();
    ASSERT_TRUE(txn->Insert(kA, "m", "1").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  ASSERT_EQ(disk.PowerLoss(1).value(), 1u);
  EXPECT_EQ(Read(*store, "m"), std::nullopt);
  EXPECT_EQ(Read(*store, "k"), "1");
}

}  // namespace
}  // namespace outpost::sim
