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

// A snapshot holds what is durable (not the unsynced commits); a restore puts exactly it back, and a later
// power loss cannot undo the restore.
TEST(SimDisk, SnapshotAndRestore) {
  SimDisk disk("snapshot");
  std::unique_ptr<Storage> store = OpenUnsynced(disk);
  ASSERT_NE(store, nullptr);
  auto write = [&](std::string_view key, std::optional<std::string_view> value) {
    std::unique_ptr<WriteTxn> txn = store->BeginWrite().value();
    ASSERT_TRUE((value ? txn->Put(kA, key, *value) : txn->Delete(kA, key)).ok());
    ASSERT_TRUE(txn->Commit().ok());
  };
  write("k", "1");
  write("j", "1");
  disk.Background(2);  // both durable
  write("k", "2");     // unsynced: not in the copy
  write("j", std::nullopt);
  write("m", "1");
  Result<SimDisk::Contents> copy = disk.Snapshot();
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  ASSERT_EQ(copy->spaces.size(), 1u);
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(copy->spaces[0], (std::vector<KV>{{"j", "1"}, {"k", "1"}}));
  write("n", "1");
  ASSERT_TRUE(disk.Restore(*copy).ok());
  EXPECT_EQ(Read(*store, "k"), "1");
  EXPECT_EQ(Read(*store, "j"), "1");
  EXPECT_EQ(Read(*store, "m"), std::nullopt);
  EXPECT_EQ(Read(*store, "n"), std::nullopt);
  EXPECT_EQ(disk.unsynced(), 0u);
  ASSERT_EQ(disk.PowerLoss(5).value(), 0u);
  EXPECT_EQ(Read(*store, "k"), "1");
}

}  // namespace
}  // namespace outpost::sim
