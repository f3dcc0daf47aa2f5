// Copyright 2026 The Outpost Authors.
//
// The Storage contract (engine/include/outpost/storage.h) as a suite any backend can run: the backends are
// registered through outpost/testing/storage_conformance.h, and the suite is instantiated over the registry
// when GoogleTest starts.
#include "outpost/testing/storage_conformance.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "outpost/storage.h"
#include "testing_internal.h"

namespace outpost::conformance {
namespace {

constexpr SpaceId kA = 0;
constexpr SpaceId kB = 1;

using Entries = std::vector<std::pair<std::string, std::string>>;

StorageOptions TestOptions() {
  StorageOptions options;
  options.spaces = {"a", "b"};
  options.sync = false;  // a crash-safe store is enough here; the durability test turns sync back on
  return options;
}

std::string Key(int i) {
  char key[16];
  std::snprintf(key, sizeof key, "key%08d", i);
  return key;
}

// Every entry from the cursor's position onwards (or backwards).
Entries Drain(Cursor& cursor, bool forward) {
  Entries out;
  for (; cursor.Valid(); forward ? cursor.Next() : cursor.Prev()) {
    out.emplace_back(std::string(cursor.key()), std::string(cursor.value()));
  }
  EXPECT_TRUE(cursor.status().ok()) << cursor.status().ToString();
  return out;
}

Entries ScanForward(ReadTxn& txn, SpaceId space) {
  std::unique_ptr<Cursor> cursor = txn.NewCursor(space);
  cursor->SeekToFirst();
  return Drain(*cursor, true);
}

Entries ScanBackward(ReadTxn& txn, SpaceId space) {
  std::unique_ptr<Cursor> cursor = txn.NewCursor(space);
  cursor->SeekToLast();
  return Drain(*cursor, false);
}

Entries Reversed(Entries entries) {
  std::reverse(entries.begin(), entries.end());
  return entries;
}

// The value of `key` as `txn` sees it; nullopt when NotFound. Any other error fails the test.
std::optional<std::string> Read(ReadTxn& txn, SpaceId space, std::string_view key) {
  std::string value;
  Status status = txn.Get(space, key, &value);
  if (status.IsNotFound()) return std::nullopt;
  EXPECT_TRUE(status.ok()) << status.ToString();
  return value;
}

std::unique_ptr<ReadTxn> BeginRead(Storage& store) {
  Result<std::unique_ptr<ReadTxn>> txn = store.BeginRead();
  EXPECT_TRUE(txn.ok()) << txn.status().ToString();
  return txn.ok() ? std::move(txn).value() : nullptr;
}

std::unique_ptr<WriteTxn> BeginWrite(Storage& store) {
  Result<std::unique_ptr<WriteTxn>> txn = store.BeginWrite();
  EXPECT_TRUE(txn.ok()) << txn.status().ToString();
  return txn.ok() ? std::move(txn).value() : nullptr;
}

// Commits `entries` into `space` in one txn.
void Write(Storage& store, SpaceId space, const Entries& entries) {
  std::unique_ptr<WriteTxn> txn = BeginWrite(store);
  ASSERT_NE(txn, nullptr);
  for (const auto& [key, value] : entries) ASSERT_TRUE(txn->Put(space, key, value).ok());
  Status status = txn->Commit();
  ASSERT_TRUE(status.ok()) << status.ToString();
}

Entries AllOf(Storage& store, SpaceId space) {
  std::unique_ptr<ReadTxn> txn = BeginRead(store);
  return txn == nullptr ? Entries{} : ScanForward(*txn, space);
}

}  // namespace

// The suite's fixture (named as the test names show it: StorageConformance/PutGetDelete/Lmdb). Opening goes
// through the backend's `open`, so the members below shadow outpost::OpenStorage inside every test.
class StorageConformance : public testing::TestWithParam<StorageConformanceBackend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    uri_ = GetParam().uri(dir_, UniqueName());
  }

  Result<std::unique_ptr<Storage>> OpenStorage(const std::string& uri, const StorageOptions& options) {
    if (GetParam().open) return GetParam().open(uri, options);
    return outpost::OpenStorage(uri, options);
  }

  std::unique_ptr<Storage> OpenAt(const std::string& uri, const StorageOptions& options) {
    Result<std::unique_ptr<Storage>> store = OpenStorage(uri, options);
    EXPECT_TRUE(store.ok()) << uri << ": " << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::unique_ptr<Storage> Open(const StorageOptions& options = TestOptions()) {
    return OpenAt(uri_, options);
  }

  static std::string UniqueName() {
    static std::atomic<int> counter{0};
    const testing::TestInfo* test = testing::UnitTest::GetInstance()->current_test_info();
    return "conformance-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" + test->name();
  }

  internal::TempDir tmp_{"outpost-storage"};
  std::string dir_;
  std::string uri_;
};

TEST_P(StorageConformance, ReportsItsUri) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->uri(), uri_);
}

TEST_P(StorageConformance, PutGetDelete) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"k1", "v1"}, {"k2", "v2"}});
  {
    std::unique_ptr<ReadTxn> txn = BeginRead(*store);
    EXPECT_EQ(Read(*txn, kA, "k1"), "v1");
    EXPECT_EQ(Read(*txn, kA, "k2"), "v2");
  }
  Write(*store, kA, {{"k1", "v1b"}});
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Delete(kA, "k2").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  EXPECT_EQ(Read(*txn, kA, "k1"), "v1b");
  EXPECT_EQ(Read(*txn, kA, "k2"), std::nullopt);
  EXPECT_EQ(ScanForward(*txn, kA), (Entries{{"k1", "v1b"}}));
}

TEST_P(StorageConformance, AbsentKeysAreNotFound) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::string value = "untouched";
  {
    std::unique_ptr<ReadTxn> txn = BeginRead(*store);
    Status status = txn->Get(kA, "nothing", &value);
    EXPECT_TRUE(status.IsNotFound()) << status.ToString();
    EXPECT_EQ(status.code(), Status::Code::kNotFound);
  }
  Write(*store, kA, {{"here", "1"}});
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  EXPECT_TRUE(txn->Get(kA, "her", &value).IsNotFound());
  EXPECT_TRUE(txn->Get(kA, "heree", &value).IsNotFound());
  EXPECT_TRUE(txn->Get(kB, "here", &value).IsNotFound());
  ASSERT_TRUE(txn->Delete(kA, "here").ok());
  EXPECT_TRUE(txn->Get(kA, "here", &value).IsNotFound());
}

TEST_P(StorageConformance, DeletingAnAbsentKeyIsOk) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  EXPECT_TRUE(txn->Delete(kA, "never-written").ok());
  EXPECT_TRUE(txn->Put(kA, "x", "1").ok());
  EXPECT_TRUE(txn->Delete(kA, "x").ok());
  EXPECT_TRUE(txn->Delete(kA, "x").ok());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(AllOf(*store, kA), Entries{});
}

TEST_P(StorageConformance, EmptyValuesAreValues) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"empty", ""}});
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  EXPECT_EQ(Read(*txn, kA, "empty"), "");
  EXPECT_EQ(ScanForward(*txn, kA), (Entries{{"empty", ""}}));
}

TEST_P(StorageConformance, ReopenKeepsEveryCommittedWriteAndNothingElse) {
  StorageOptions options = TestOptions();
  options.sync = true;
  Entries expected;
  {
    std::unique_ptr<Storage> store = Open(options);
    ASSERT_NE(store, nullptr);
    for (int txn_index = 0; txn_index < 10; ++txn_index) {
      Entries batch;
      for (int i = 0; i < 10; ++i) {
        batch.emplace_back(Key(txn_index * 10 + i), "v" + std::to_string(txn_index));
      }
      Write(*store, kA, batch);
    }
    Write(*store, kA, {{Key(5), "overwritten"}});
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Delete(kA, Key(7)).ok());
    ASSERT_TRUE(txn->Put(kB, "in-b", "b").ok());
    ASSERT_TRUE(txn->Commit().ok());
    // Never committed: gone at reopen.
    txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Put(kA, "uncommitted", "x").ok());
    ASSERT_TRUE(txn->Delete(kA, Key(1)).ok());
    txn.reset();
    std::unique_ptr<WriteTxn> open_at_close = BeginWrite(*store);
    ASSERT_TRUE(open_at_close->Put(kA, "open-at-close", "x").ok());
    open_at_close.reset();
    expected = AllOf(*store, kA);
  }
  ASSERT_EQ(expected.size(), 99u);
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllOf(*store, kA), expected);
  EXPECT_EQ(AllOf(*store, kB), (Entries{{"in-b", "b"}}));
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  EXPECT_EQ(Read(*txn, kA, Key(5)), "overwritten");
  EXPECT_EQ(Read(*txn, kA, Key(7)), std::nullopt);
  EXPECT_EQ(Read(*txn, kA, Key(1)), "v0");
  EXPECT_EQ(Read(*txn, kA, "uncommitted"), std::nullopt);
}

TEST_P(StorageConformance, ReopenWithMoreSpacesKeepsTheOldOnes) {
  {
    std::unique_ptr<Storage> store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, kB, {{"k", "in-b"}});
  }
  StorageOptions options = TestOptions();
  options.spaces = {"c", "b", "a"};
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllOf(*store, 1), (Entries{{"k", "in-b"}}));
  EXPECT_EQ(AllOf(*store, 0), Entries{});
  EXPECT_EQ(AllOf(*store, 2), Entries{});
}

TEST_P(StorageConformance, AbortedTxnLeavesNothing) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  const Entries base = {{"a", "1"}, {"b", "2"}};
  Write(*store, kA, base);
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Put(kA, "a", "changed").ok());
    ASSERT_TRUE(txn->Delete(kA, "b").ok());
    ASSERT_TRUE(txn->Put(kA, "c", "new").ok());
    ASSERT_TRUE(txn->Put(kB, "c", "new").ok());
    EXPECT_EQ(ScanForward(*txn, kA), (Entries{{"a", "changed"}, {"c", "new"}}));
  }  // destroyed without Commit
  EXPECT_EQ(AllOf(*store, kA), base);
  EXPECT_EQ(AllOf(*store, kB), Entries{});
  // The aborted txn released the writer.
  Write(*store, kA, {{"d", "4"}});
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"a", "1"}, {"b", "2"}, {"d", "4"}}));
}

TEST_P(StorageConformance, CommitFinishesTheTxn) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_TRUE(txn->Put(kA, "k", "v").ok());
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_FALSE(txn->Put(kA, "k2", "v").ok());
  EXPECT_FALSE(txn->Commit().ok());
  cursor->SeekToFirst();
  EXPECT_FALSE(cursor->Valid());
  cursor.reset();
  // The finished txn no longer holds the writer, even while it is alive.
  Write(*store, kA, {{"k3", "v"}});
  txn.reset();
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"k", "v"}, {"k3", "v"}}));
}

TEST_P(StorageConformance, WriteTxnSeesItsOwnWrites) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"b", "1"}, {"d", "1"}, {"f", "1"}});
  std::unique_ptr<ReadTxn> before = BeginRead(*store);
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_TRUE(txn->Put(kA, "a", "2").ok());
  ASSERT_TRUE(txn->Put(kA, "c", "2").ok());
  ASSERT_TRUE(txn->Delete(kA, "d").ok());
  ASSERT_TRUE(txn->Put(kA, "f", "2").ok());
  EXPECT_EQ(Read(*txn, kA, "a"), "2");
  EXPECT_EQ(Read(*txn, kA, "d"), std::nullopt);
  EXPECT_EQ(Read(*txn, kA, "f"), "2");
  const Entries expected = {{"a", "2"}, {"b", "1"}, {"c", "2"}, {"f", "2"}};
  EXPECT_EQ(ScanForward(*txn, kA), expected);
  EXPECT_EQ(ScanBackward(*txn, kA), Reversed(expected));

  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  cursor->Seek("c");
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  cursor->SeekForPrev("e");
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  // Writes made while a cursor is open show up in its next moves.
  cursor->Seek("b");
  ASSERT_TRUE(txn->Put(kA, "bb", "3").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "bb");
  EXPECT_EQ(cursor->value(), "3");
  ASSERT_TRUE(txn->Delete(kA, "c").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "f");
  ASSERT_TRUE(txn->Delete(kA, "f").ok());
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "bb");
  cursor.reset();

  // A reader that began earlier sees none of it.
  EXPECT_EQ(ScanForward(*before, kA), (Entries{{"b", "1"}, {"d", "1"}, {"f", "1"}}));
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"a", "2"}, {"b", "1"}, {"bb", "3"}}));
}

TEST_P(StorageConformance, InsertPutsAnAbsentKey) {
  {
    std::unique_ptr<Storage> store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, kA, {{"b", "1"}});
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_NE(txn, nullptr);
    Status status = txn->Insert(kA, "a", "new");
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(Read(*txn, kA, "a"), "new");
    ASSERT_TRUE(txn->Insert(kA, "empty", "").ok());
    ASSERT_TRUE(txn->Insert(kB, "b", "in-b").ok());  // present in another space only
    EXPECT_EQ(ScanForward(*txn, kA), (Entries{{"a", "new"}, {"b", "1"}, {"empty", ""}}));
    ASSERT_TRUE(txn->Commit().ok());
  }
  std::unique_ptr<Storage> store = Open();  // reopened: the inserts were committed like puts
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"a", "new"}, {"b", "1"}, {"empty", ""}}));
  EXPECT_EQ(AllOf(*store, kB), (Entries{{"b", "in-b"}}));
}

TEST_P(StorageConformance, InsertLeavesAPresentKeyAlone) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"k", "old"}, {"empty", ""}});
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_NE(txn, nullptr);
  Status status = txn->Insert(kA, "k", "new");
  EXPECT_EQ(status.code(), Status::Code::kAlreadyExists) << status.ToString();
  EXPECT_TRUE(status.IsAlreadyExists());
  EXPECT_EQ(Read(*txn, kA, "k"), "old");
  // An empty value is a value: its key is present.
  EXPECT_EQ(txn->Insert(kA, "empty", "new").code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(Read(*txn, kA, "empty"), "");
  // AlreadyExists does not spoil the txn.
  ASSERT_TRUE(txn->Put(kA, "p", "put").ok());
  ASSERT_TRUE(txn->Insert(kA, "i", "inserted").ok());
  status = txn->Commit();
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"empty", ""}, {"i", "inserted"}, {"k", "old"}, {"p", "put"}}));
}

TEST_P(StorageConformance, InsertSeesTheTxnsOwnWritesAndDeletes) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"committed", "1"}});
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_NE(txn, nullptr);
  // Put earlier in this txn: present.
  ASSERT_TRUE(txn->Put(kA, "put", "p").ok());
  EXPECT_EQ(txn->Insert(kA, "put", "x").code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(Read(*txn, kA, "put"), "p");
  // Inserted earlier in this txn: present.
  ASSERT_TRUE(txn->Insert(kA, "twice", "first").ok());
  EXPECT_EQ(txn->Insert(kA, "twice", "second").code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(Read(*txn, kA, "twice"), "first");
  // Deleted in this txn: absent, whether it was committed before or put in this txn.
  ASSERT_TRUE(txn->Delete(kA, "committed").ok());
  Status status = txn->Insert(kA, "committed", "again");
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(Read(*txn, kA, "committed"), "again");
  ASSERT_TRUE(txn->Delete(kA, "put").ok());
  ASSERT_TRUE(txn->Insert(kA, "put", "reinserted").ok());
  EXPECT_EQ(txn->Insert(kA, "put", "third").code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"committed", "again"}, {"put", "reinserted"}, {"twice", "first"}}));
}

TEST_P(StorageConformance, InsertShowsUpInAnOpenCursor) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"a", "1"}, {"c", "1"}});
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_NE(txn, nullptr);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  cursor->Seek("a");
  ASSERT_TRUE(txn->Insert(kA, "b", "2").ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "b");
  EXPECT_EQ(cursor->value(), "2");
  EXPECT_EQ(txn->Insert(kA, "c", "3").code(), Status::Code::kAlreadyExists);
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "c");
  EXPECT_EQ(cursor->value(), "1");
}

TEST_P(StorageConformance, InsertRejectsBadKeysAndSpaces) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  const std::string longest(kStorageKeyBytesMax, 'k');
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_NE(txn, nullptr);
  for (const std::string& bad : {std::string(), std::string(kStorageKeyBytesMax + 1, 'k')}) {
    Status status = txn->Insert(kA, bad, "v");
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
    EXPECT_FALSE(status.message().empty());
  }
  EXPECT_EQ(txn->Insert(2, "k", "v").code(), Status::Code::kInvalidArgument);
  // Rejected calls do not spoil the txn.
  ASSERT_TRUE(txn->Insert(kA, longest, "max").ok());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(AllOf(*store, kA), (Entries{{longest, "max"}}));
  EXPECT_EQ(AllOf(*store, kB), Entries{});
  // A finished txn refuses it.
  EXPECT_EQ(txn->Insert(kA, "late", "v").code(), Status::Code::kFailedPrecondition);
}

TEST_P(StorageConformance, AbortedInsertsLeaveNothing) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"a", "1"}});
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_NE(txn, nullptr);
    ASSERT_TRUE(txn->Insert(kA, "b", "2").ok());
    ASSERT_TRUE(txn->Delete(kA, "a").ok());
    ASSERT_TRUE(txn->Insert(kA, "a", "changed").ok());
    ASSERT_TRUE(txn->Insert(kB, "c", "3").ok());
  }  // destroyed without Commit
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"a", "1"}}));
  EXPECT_EQ(AllOf(*store, kB), Entries{});
  // The aborted keys are absent again for the next txn.
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_NE(txn, nullptr);
  EXPECT_TRUE(txn->Insert(kA, "b", "again").ok());
  EXPECT_EQ(txn->Insert(kA, "a", "again").code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"a", "1"}, {"b", "again"}}));
}

TEST_P(StorageConformance, ReadTxnSeesTheSnapshotItBeganWith) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  const Entries base = {{"gone", "1"}, {"k", "1"}};
  Write(*store, kA, base);
  std::unique_ptr<ReadTxn> old_txn = BeginRead(*store);
  std::unique_ptr<Cursor> old_cursor = old_txn->NewCursor(kA);
  old_cursor->SeekToFirst();
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Put(kA, "k", "2").ok());
    ASSERT_TRUE(txn->Put(kA, "new", "2").ok());
    ASSERT_TRUE(txn->Delete(kA, "gone").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  // Many more commits, so that old versions would be collected if the old reader did not pin them.
  for (int i = 0; i < 100; ++i) Write(*store, kA, {{"k", "3-" + std::to_string(i)}, {Key(i), "x"}});

  EXPECT_EQ(Read(*old_txn, kA, "k"), "1");
  EXPECT_EQ(Read(*old_txn, kA, "gone"), "1");
  EXPECT_EQ(Read(*old_txn, kA, "new"), std::nullopt);
  EXPECT_EQ(Drain(*old_cursor, true), base);
  EXPECT_EQ(ScanBackward(*old_txn, kA), Reversed(base));

  std::unique_ptr<ReadTxn> new_txn = BeginRead(*store);
  EXPECT_EQ(Read(*new_txn, kA, "k"), "3-99");
  EXPECT_EQ(Read(*new_txn, kA, "gone"), std::nullopt);
  EXPECT_EQ(Read(*new_txn, kA, "new"), "2");
  old_cursor.reset();
  old_txn.reset();
  // Once the old reader is gone, writes and reads go on as before.
  Write(*store, kA, {{"k", "4"}});
  EXPECT_EQ(Read(*new_txn, kA, "k"), "3-99");
  EXPECT_EQ(AllOf(*store, kA).size(), 102u);
}

TEST_P(StorageConformance, ReadTxnWorksFromAnotherThread) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA, {{"k", "1"}});
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  std::thread writer([&] { Write(*store, kA, {{"k", "2"}, {"other", "2"}}); });
  writer.join();
  std::optional<std::string> seen;
  Entries scanned;
  std::thread reader([&] {
    seen = Read(*txn, kA, "k");
    scanned = ScanForward(*txn, kA);
  });
  reader.join();
  EXPECT_EQ(seen, "1");
  EXPECT_EQ(scanned, (Entries{{"k", "1"}}));
  txn.reset();
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"k", "2"}, {"other", "2"}}));
}

TEST_P(StorageConformance, ConcurrentReadersSeeWholeCommits) {
  // A small map, so that it grows (lmdb remaps) while readers on other threads are mid-scan.
  StorageOptions options = TestOptions();
  options.map_bytes_initial = uint64_t{1} << 20;
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  constexpr int kRounds = 200;
  constexpr int kKeys = 20;
  constexpr int kFillPerRound = 8;
  constexpr int kReaders = 4;
  const std::string fill(4000, 'f');
  // Round r, in one txn: every key of space a gets value r, "marker" exists only in even rounds, and space
  // b gains kFillPerRound more entries.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int round = 1; round <= kRounds; ++round) {
      std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
      ASSERT_NE(txn, nullptr);
      for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(txn->Put(kA, Key(i), std::to_string(round)).ok());
      ASSERT_TRUE((round % 2 == 0 ? txn->Put(kA, "marker", "m") : txn->Delete(kA, "marker")).ok());
      for (int i = 0; i < kFillPerRound; ++i) {
        ASSERT_TRUE(txn->Put(kB, Key(round * kFillPerRound + i), fill).ok());
      }
      Status status = txn->Commit();
      ASSERT_TRUE(status.ok()) << status.ToString();
    }
    done = true;
  });
  std::vector<std::thread> readers;
  std::atomic<int> torn{0};
  std::atomic<int> went_back{0};
  std::atomic<int> last_rounds_seen{0};
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      int last_round = 0;
      for (bool finished = false; !finished;) {
        finished = done;  // one more pass after the writer ends, so the last round is seen
        std::unique_ptr<ReadTxn> txn = BeginRead(*store);
        ASSERT_NE(txn, nullptr);
        std::optional<std::string> first = Read(*txn, kA, Key(0));
        const int round = first ? std::stoi(*first) : 0;
        const bool marker = Read(*txn, kA, "marker").has_value();
        Entries entries = ScanForward(*txn, kA);
        const size_t expected_size = (round == 0 ? 0 : kKeys) + (marker ? 1 : 0);
        bool whole = entries.size() == expected_size && marker == (round != 0 && round % 2 == 0);
        for (const auto& [key, value] : entries) {
          if (key != "marker" && value != std::to_string(round)) whole = false;
        }
        std::unique_ptr<Cursor> cursor = txn->NewCursor(kB);
        int fills = 0;
        for (cursor->SeekToLast(); cursor->Valid(); cursor->Prev()) {
          if (cursor->value() != fill) whole = false;
          ++fills;
        }
        if (!cursor->status().ok() || fills != round * kFillPerRound) whole = false;
        if (!whole) ++torn;
        if (round < last_round) ++went_back;
        last_round = round;
      }
      if (last_round == kRounds) ++last_rounds_seen;
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(went_back.load(), 0);
  EXPECT_EQ(last_rounds_seen.load(), kReaders);
}

TEST_P(StorageConformance, SecondWriterWaitsForTheFirst) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::unique_ptr<WriteTxn> first = BeginWrite(*store);
  ASSERT_NE(first, nullptr);
  std::optional<std::string> seen_by_second;
  std::thread second([&] {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);  // blocks until `first` commits
    ASSERT_NE(txn, nullptr);
    seen_by_second = Read(*txn, kA, "k");
    ASSERT_TRUE(txn->Put(kA, "k", "2").ok());
    ASSERT_TRUE(txn->Commit().ok());
  });
  ASSERT_TRUE(first->Put(kA, "k", "1").ok());
  ASSERT_TRUE(first->Commit().ok());
  second.join();
  EXPECT_EQ(seen_by_second, "1");
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"k", "2"}}));
}

TEST_P(StorageConformance, OpenReadTxnDoesNotBlockWritesOrMapGrowth) {
  StorageOptions options = TestOptions();
  options.map_bytes_initial = uint64_t{1} << 20;
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  const Entries base = {{Key(0), "base0"}, {Key(1), "base1"}, {Key(2), "base2"}};
  Write(*store, kA, base);
  // The same thread keeps a reader and a positioned cursor open while it writes enough to grow the map.
  std::unique_ptr<ReadTxn> reader = BeginRead(*store);
  std::unique_ptr<Cursor> cursor = reader->NewCursor(kA);
  cursor->Seek(Key(1));
  ASSERT_TRUE(cursor->Valid());
  const std::string value(4000, 'v');
  for (int txn_index = 0; txn_index < 64; ++txn_index) {
    Entries batch;
    for (int i = 0; i < 32; ++i) batch.emplace_back(Key(1000 + txn_index * 32 + i), value);
    Write(*store, kA, batch);
  }
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(2));
  cursor->Prev();
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(0));
  EXPECT_EQ(cursor->value(), "base0");
  EXPECT_EQ(ScanForward(*reader, kA), base);
  EXPECT_EQ(Read(*reader, kA, Key(1000)), std::nullopt);
  cursor.reset();
  reader.reset();
  EXPECT_EQ(AllOf(*store, kA).size(), base.size() + 64 * 32);
}

TEST_P(StorageConformance, CursorScansInKeyOrderBothWays) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<int> order(500);
  for (int i = 0; i < 500; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  Entries expected;
  for (int i = 0; i < 500; ++i) expected.emplace_back(Key(i), "v" + std::to_string(i));
  for (int chunk = 0; chunk < 5; ++chunk) {
    Entries batch;
    for (int j = chunk * 100; j < chunk * 100 + 100; ++j) batch.push_back(expected[order[j]]);
    Write(*store, kA, batch);
  }
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  EXPECT_EQ(ScanForward(*txn, kA), expected);
  EXPECT_EQ(ScanBackward(*txn, kA), Reversed(expected));
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  EXPECT_FALSE(cursor->Valid());
  cursor->SeekToLast();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(499));
  cursor->SeekToFirst();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(0));
  cursor->Prev();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_TRUE(cursor->status().ok());
}

TEST_P(StorageConformance, SeekAndSeekForPrevFindNeighbours) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  const std::string longest(kStorageKeyBytesMax, 'x');
  const std::string after_longest = std::string(kStorageKeyBytesMax - 1, 'x') + "y";
  Write(*store, kA, {{"b", "B"}, {"d", "D"}, {"f", "F"}, {longest, "L"}, {after_longest, "M"}});
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  auto at = [&](std::string_view key) { return cursor->Valid() && cursor->key() == key; };

  cursor->Seek("a");
  EXPECT_TRUE(at("b"));
  cursor->Seek("b");
  EXPECT_TRUE(at("b"));
  EXPECT_EQ(cursor->value(), "B");
  cursor->Seek("c");
  EXPECT_TRUE(at("d"));
  cursor->Seek("");
  EXPECT_TRUE(at("b"));
  cursor->Seek("z");
  EXPECT_FALSE(cursor->Valid());

  cursor->SeekForPrev("a");
  EXPECT_FALSE(cursor->Valid());
  cursor->SeekForPrev("b");
  EXPECT_TRUE(at("b"));
  cursor->SeekForPrev("c");
  EXPECT_TRUE(at("b"));
  cursor->SeekForPrev("z");
  EXPECT_TRUE(at(after_longest));
  cursor->SeekForPrev("e");
  EXPECT_TRUE(at("d"));
  cursor->Next();
  EXPECT_TRUE(at("f"));
  cursor->Prev();
  cursor->Prev();
  EXPECT_TRUE(at("b"));
  cursor->Prev();
  EXPECT_FALSE(cursor->Valid());

  // Seeking to the cursor's own key.
  cursor->Seek("d");
  cursor->Seek(cursor->key());
  EXPECT_TRUE(at("d"));
  cursor->SeekForPrev(cursor->key());
  EXPECT_TRUE(at("d"));

  // Seek targets longer than any key may be.
  const std::string too_long(kStorageKeyBytesMax + 100, 'x');
  cursor->Seek(too_long);
  EXPECT_TRUE(at(after_longest));
  cursor->SeekForPrev(too_long);
  EXPECT_TRUE(at(longest));
  cursor->Seek(longest);
  EXPECT_TRUE(at(longest));
}

TEST_P(StorageConformance, CursorsSkipDeletedKeys) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Entries all;
  for (int i = 0; i < 10; ++i) all.emplace_back(Key(i), "v");
  Write(*store, kA, all);
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    for (int i = 0; i < 10; i += 2) ASSERT_TRUE(txn->Delete(kA, Key(i)).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  Entries odd;
  for (int i = 1; i < 10; i += 2) odd.emplace_back(Key(i), "v");
  {
    std::unique_ptr<ReadTxn> txn = BeginRead(*store);
    EXPECT_EQ(ScanForward(*txn, kA), odd);
    EXPECT_EQ(ScanBackward(*txn, kA), Reversed(odd));
    std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
    cursor->Seek(Key(4));
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->key(), Key(5));
    cursor->SeekForPrev(Key(4));
    ASSERT_TRUE(cursor->Valid());
    EXPECT_EQ(cursor->key(), Key(3));
  }
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  ASSERT_TRUE(txn->Delete(kA, Key(3)).ok());
  ASSERT_TRUE(txn->Delete(kA, Key(5)).ok());
  EXPECT_EQ(ScanForward(*txn, kA), (Entries{{Key(1), "v"}, {Key(7), "v"}, {Key(9), "v"}}));
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  cursor->Seek(Key(7));
  ASSERT_TRUE(txn->Delete(kA, Key(7)).ok());
  cursor->Next();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(9));
  cursor->Seek(Key(9));
  ASSERT_TRUE(txn->Delete(kA, Key(9)).ok());
  cursor->Prev();
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), Key(1));
  cursor->Next();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_TRUE(cursor->status().ok());
}

TEST_P(StorageConformance, CursorOverAnEmptySpace) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kB, {{"only-in-b", "1"}});
  auto check = [](ReadTxn& txn) {
    std::unique_ptr<Cursor> cursor = txn.NewCursor(kA);
    EXPECT_FALSE(cursor->Valid());
    cursor->SeekToFirst();
    EXPECT_FALSE(cursor->Valid());
    cursor->SeekToLast();
    EXPECT_FALSE(cursor->Valid());
    cursor->Seek("a");
    EXPECT_FALSE(cursor->Valid());
    cursor->SeekForPrev("z");
    EXPECT_FALSE(cursor->Valid());
    EXPECT_TRUE(cursor->status().ok());
  };
  std::unique_ptr<ReadTxn> reader = BeginRead(*store);
  check(*reader);
  std::unique_ptr<WriteTxn> writer = BeginWrite(*store);
  check(*writer);
  // A space whose only key was deleted in this txn is empty too.
  ASSERT_TRUE(writer->Put(kA, "k", "v").ok());
  ASSERT_TRUE(writer->Delete(kA, "k").ok());
  check(*writer);
}

TEST_P(StorageConformance, PrefixScans) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, kA,
        {{"use", "0"}, {"user/1", "1"}, {"user/10", "10"}, {"user/2", "2"}, {"users", "s"}, {"v", "v"}});
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  const std::string prefix = "user/";
  std::vector<std::string> forward;
  for (cursor->Seek(prefix); cursor->Valid() && cursor->key().starts_with(prefix); cursor->Next()) {
    forward.emplace_back(cursor->key());
  }
  EXPECT_EQ(forward, (std::vector<std::string>{"user/1", "user/10", "user/2"}));
  std::vector<std::string> backward;
  for (cursor->SeekForPrev(prefix + "\xff"); cursor->Valid() && cursor->key().starts_with(prefix);
       cursor->Prev()) {
    backward.emplace_back(cursor->key());
  }
  EXPECT_EQ(backward, (std::vector<std::string>{"user/2", "user/10", "user/1"}));
  cursor->Seek("none/");
  EXPECT_FALSE(cursor->Valid() && cursor->key().starts_with("none/"));
}

TEST_P(StorageConformance, KeysAreComparedAsUnsignedBytes) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  using namespace std::string_literals;
  // In memcmp order.
  const std::vector<std::string> keys = {"\x00"s,
                                         "\x00\x00"s,
                                         "\x00\x01"s,
                                         "\x01"s,
                                         "a"s,
                                         "a\x00"s,
                                         "a\x00"
                                         "b"s,
                                         "ab"s,
                                         "\x7f"s,
                                         "\x80"s,
                                         "\xfe\xff"s,
                                         "\xff"s,
                                         "\xff\x00"s,
                                         "\xff\xff"s};
  Entries expected;
  for (size_t i = 0; i < keys.size(); ++i) {
    expected.emplace_back(keys[i], "\x00value\xff"s + std::to_string(i));
  }
  Entries shuffled = expected;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  Write(*store, kA, shuffled);
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  EXPECT_EQ(ScanForward(*txn, kA), expected);
  EXPECT_EQ(ScanBackward(*txn, kA), Reversed(expected));
  for (const auto& [key, value] : expected) EXPECT_EQ(Read(*txn, kA, key), value);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  cursor->Seek("\x00\x00\x00"s);
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "\x00\x01"s);
  cursor->SeekForPrev("\xff\x01"s);
  ASSERT_TRUE(cursor->Valid());
  EXPECT_EQ(cursor->key(), "\xff\x00"s);
}

TEST_P(StorageConformance, SpacesAreIndependent) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Put(kA, "k", "in-a").ok());
    ASSERT_TRUE(txn->Put(kB, "k", "in-b").ok());
    ASSERT_TRUE(txn->Put(kA, "only-a", "1").ok());
    ASSERT_TRUE(txn->Put(kB, "only-b", "1").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  {
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_TRUE(txn->Delete(kA, "k").ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"only-a", "1"}}));
  EXPECT_EQ(AllOf(*store, kB), (Entries{{"k", "in-b"}, {"only-b", "1"}}));
}

TEST_P(StorageConformance, RejectsBadKeysAndSpaces) {
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  const std::string longest(kStorageKeyBytesMax, 'k');
  const std::string too_long(kStorageKeyBytesMax + 1, 'k');
  std::string value;
  std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
  for (const std::string& bad : {std::string(), too_long, std::string(100000, 'k')}) {
    Status put = txn->Put(kA, bad, "v");
    EXPECT_EQ(put.code(), Status::Code::kInvalidArgument) << put.ToString();
    EXPECT_FALSE(put.message().empty());
    EXPECT_EQ(txn->Get(kA, bad, &value).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(txn->Delete(kA, bad).code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(txn->Put(2, "k", "v").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(txn->Get(2, "k", &value).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(txn->Delete(99, "k").code(), Status::Code::kInvalidArgument);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(99);
  cursor->SeekToFirst();
  EXPECT_FALSE(cursor->Valid());
  EXPECT_EQ(cursor->status().code(), Status::Code::kInvalidArgument);
  cursor.reset();
  // Rejected calls do not spoil the txn.
  ASSERT_TRUE(txn->Put(kA, longest, "max").ok());
  ASSERT_TRUE(txn->Put(kA, "1", "min").ok());
  ASSERT_TRUE(txn->Commit().ok());
  std::unique_ptr<ReadTxn> reader = BeginRead(*store);
  EXPECT_EQ(Read(*reader, kA, longest), "max");
  EXPECT_EQ(reader->Get(kA, "", &value).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(reader->Get(kB + 1, "k", &value).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ScanForward(*reader, kA), (Entries{{"1", "min"}, {longest, "max"}}));
}

TEST_P(StorageConformance, RejectsBadOptionsAndUris) {
  auto expect_invalid = [this](const std::string& uri, const StorageOptions& options) {
    Result<std::unique_ptr<Storage>> store = OpenStorage(uri, options);
    ASSERT_FALSE(store.ok()) << uri;
    EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument)
        << uri << ": " << store.status().ToString();
    EXPECT_FALSE(store.status().message().empty());
  };
  StorageOptions options = TestOptions();
  options.spaces = {};
  expect_invalid(uri_, options);
  options.spaces.clear();
  for (int i = 0; i < 33; ++i) options.spaces.push_back("s" + std::to_string(i));
  expect_invalid(uri_, options);
  options.spaces = {"a", "b", "a"};
  expect_invalid(uri_, options);
  options.spaces = {"a", ""};
  expect_invalid(uri_, options);
  options = TestOptions();
  options.map_bytes_initial = options.map_bytes_max + 1;
  expect_invalid(uri_, options);
  expect_invalid(uri_ + "?sync=2", TestOptions());
  expect_invalid(uri_ + "?fast=1", TestOptions());
  expect_invalid(uri_ + "?sync=1&", TestOptions());

  // 32 spaces is the limit, not beyond it.
  options = TestOptions();
  options.spaces.clear();
  for (int i = 0; i < 32; ++i) options.spaces.push_back("s" + std::to_string(i));
  std::unique_ptr<Storage> store = OpenAt(uri_ + "?sync=0", options);
  ASSERT_NE(store, nullptr);
  Write(*store, 31, {{"k", "v"}});
  EXPECT_EQ(AllOf(*store, 31), (Entries{{"k", "v"}}));
}

TEST_P(StorageConformance, SyncParameterIsAccepted) {
  {
    std::unique_ptr<Storage> store = OpenAt(uri_ + "?sync=0", TestOptions());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->uri(), uri_ + "?sync=0");
    Write(*store, kA, {{"k", "v"}});
  }
  std::unique_ptr<Storage> store = OpenAt(uri_ + "?sync=1", TestOptions());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllOf(*store, kA), (Entries{{"k", "v"}}));
}

TEST_P(StorageConformance, MissingParentDirectoryIsAnError) {
  if (!GetParam().lives_in_directory) GTEST_SKIP() << "the backend keeps no files";
  const std::string uri = GetParam().uri(dir_ + "/missing", UniqueName());
  Result<std::unique_ptr<Storage>> store = OpenStorage(uri, TestOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kIOError) << store.status().ToString();
  EXPECT_NE(store.status().message().find("parent"), std::string::npos) << store.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/missing"));
}

TEST_P(StorageConformance, AStoreOfGarbageIsAnErrorNotACrash) {
  if (!GetParam().lives_in_directory) GTEST_SKIP() << "the backend keeps no files";
  {
    std::unique_ptr<Storage> store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, kA, {{"k", "v"}});
  }
  // Every file of the closed store (the path after the scheme: a file or a directory) becomes noise.
  const std::string path = uri_.substr(uri_.find(':') + 1);
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_regular_file(path)) {
    files.emplace_back(path);
  } else {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  ASSERT_FALSE(files.empty());
  std::mt19937 random(3);
  for (const std::filesystem::path& file : files) {
    std::string noise(std::max<uintmax_t>(std::filesystem::file_size(file), 8192), '\0');
    for (char& c : noise) c = static_cast<char>(random());
    std::FILE* out = std::fopen(file.c_str(), "wb");
    ASSERT_NE(out, nullptr) << file;
    ASSERT_EQ(std::fwrite(noise.data(), 1, noise.size(), out), noise.size());
    std::fclose(out);
  }
  Result<std::unique_ptr<Storage>> store = OpenStorage(uri_, TestOptions());
  ASSERT_FALSE(store.ok()) << "opened a store of noise";
  EXPECT_TRUE(store.status().code() == Status::Code::kIOError ||
              store.status().code() == Status::Code::kCorruption)
      << store.status().ToString();
  EXPECT_FALSE(store.status().message().empty());
}

TEST_P(StorageConformance, SecondOpenFailsOrSharesTheStore) {
  std::unique_ptr<Storage> first = Open();
  ASSERT_NE(first, nullptr);
  Write(*first, kA, {{"k", "1"}});
  Result<std::unique_ptr<Storage>> second = OpenStorage(uri_, TestOptions());
  if (GetParam().exclusive_open) {
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Status::Code::kIOError) << second.status().ToString();
  } else {
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    Write(**second, kA, {{"k2", "2"}});
    EXPECT_EQ(AllOf(*first, kA), (Entries{{"k", "1"}, {"k2", "2"}}));
  }
  // Once the first handle is closed, the store opens again.
  if (second.ok()) second.value().reset();
  first.reset();
  std::unique_ptr<Storage> again = Open();
  ASSERT_NE(again, nullptr);
  Entries entries = AllOf(*again, kA);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.front(), (std::pair<std::string, std::string>{"k", "1"}));
}

TEST_P(StorageConformance, LargeValues) {
  std::vector<std::string> values;
  {
    std::unique_ptr<Storage> store = Open();
    ASSERT_NE(store, nullptr);
    std::mt19937 random(1);
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    for (int i = 0; i < 8; ++i) {
      std::string value(size_t{1} << 20, '\0');
      for (char& c : value) c = static_cast<char>(random());
      ASSERT_TRUE(txn->Put(kA, Key(i), value).ok());
      values.push_back(std::move(value));
    }
    ASSERT_TRUE(txn->Commit().ok());
    Write(*store, kA, {{Key(7), "small again"}});
    values[7] = "small again";
  }
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(Read(*txn, kA, Key(i)) == values[i]) << i;
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  cursor->SeekForPrev(Key(6));
  ASSERT_TRUE(cursor->Valid());
  EXPECT_TRUE(cursor->value() == values[6]);
}

TEST_P(StorageConformance, ManyKeysInOneTxn) {
  constexpr int kCount = 100000;
  {
    std::unique_ptr<Storage> store = Open();
    ASSERT_NE(store, nullptr);
    auto start = std::chrono::steady_clock::now();
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(txn->Put(kA, Key(i), "value-" + std::to_string(i)).ok());
    ASSERT_TRUE(txn->Commit().ok());
    auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    std::printf("[ timing   ] %s: %d puts in one txn + commit: %.1f ms\n", GetParam().name.c_str(), kCount,
                elapsed.count());
  }
  std::unique_ptr<Storage> store = Open();
  ASSERT_NE(store, nullptr);
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  int count = 0;
  bool in_order = true;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next(), ++count) {
    if (count < kCount && cursor->key() != Key(count)) in_order = false;
  }
  auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  std::printf("[ timing   ] %s: scan of %d keys: %.1f ms\n", GetParam().name.c_str(), count, elapsed.count());
  EXPECT_EQ(count, kCount);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(Read(*txn, kA, Key(0)), "value-0");
  EXPECT_EQ(Read(*txn, kA, Key(kCount - 1)), "value-" + std::to_string(kCount - 1));
  EXPECT_EQ(Read(*txn, kA, Key(kCount)), std::nullopt);
}

TEST_P(StorageConformance, MapGrowsFromATinyInitialSize) {
  StorageOptions options = TestOptions();
  options.map_bytes_initial = uint64_t{1} << 20;
  constexpr int kTxns = 800;
  constexpr int kPerTxn = 64;
  const std::string value(1000, 'g');  // 800 * 64 * 1000 bytes: about 50 MiB
  {
    std::unique_ptr<Storage> store = Open(options);
    ASSERT_NE(store, nullptr);
    for (int t = 0; t < kTxns; ++t) {
      std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
      ASSERT_NE(txn, nullptr);
      for (int i = 0; i < kPerTxn; ++i) {
        Status status = txn->Put(kA, Key(t * kPerTxn + i), value);
        ASSERT_TRUE(status.ok()) << "txn " << t << ": " << status.ToString();
      }
      Status status = txn->Commit();
      ASSERT_TRUE(status.ok()) << "txn " << t << ": " << status.ToString();
    }
  }
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  std::unique_ptr<ReadTxn> txn = BeginRead(*store);
  std::unique_ptr<Cursor> cursor = txn->NewCursor(kA);
  int count = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++count;
  EXPECT_EQ(count, kTxns * kPerTxn);
  EXPECT_EQ(Read(*txn, kA, Key(kTxns * kPerTxn - 1)), value);
}

TEST_P(StorageConformance, FullMapFailsCleanlyAndKeepsCommittedData) {
  if (!GetParam().honors_map_bytes_max) GTEST_SKIP() << "the backend has no size limit";
  StorageOptions options = TestOptions();
  options.map_bytes_initial = uint64_t{1} << 20;
  options.map_bytes_max = uint64_t{2} << 20;
  const std::string value(3000, 'f');
  int committed_txns = 0;
  Status full;
  {
    std::unique_ptr<Storage> store = Open(options);
    ASSERT_NE(store, nullptr);
    for (int t = 0; t < 200 && full.ok(); ++t) {  // 200 txns of 32 * 3000 bytes would need 18 MiB
      std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
      ASSERT_NE(txn, nullptr);
      Status status;
      for (int i = 0; i < 32 && status.ok(); ++i) status = txn->Put(kA, Key(t * 32 + i), value);
      if (status.ok()) status = txn->Commit();
      if (status.ok()) {
        ++committed_txns;
      } else {
        full = status;
      }
    }
    ASSERT_EQ(full.code(), Status::Code::kFull) << full.ToString();
    EXPECT_NE(full.message().find("map_bytes_max"), std::string::npos) << full.ToString();
    ASSERT_GT(committed_txns, 0);

    // Everything committed is there; nothing of the failed txn is.
    EXPECT_EQ(AllOf(*store, kA).size(), static_cast<size_t>(committed_txns) * 32);
    std::unique_ptr<ReadTxn> reader = BeginRead(*store);
    EXPECT_EQ(Read(*reader, kA, Key(0)), value);
    EXPECT_EQ(Read(*reader, kA, Key(committed_txns * 32)), std::nullopt);
    reader.reset();

    // Still usable: deleting frees room for new writes.
    std::unique_ptr<WriteTxn> txn = BeginWrite(*store);
    ASSERT_NE(txn, nullptr);
    for (int i = 0; i < 32; ++i) ASSERT_TRUE(txn->Delete(kA, Key(i)).ok());
    ASSERT_TRUE(txn->Commit().ok());
    Write(*store, kB, {{"after-full", "ok"}});
  }
  std::unique_ptr<Storage> store = Open(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(AllOf(*store, kA).size(), static_cast<size_t>(committed_txns - 1) * 32);
  EXPECT_EQ(AllOf(*store, kB), (Entries{{"after-full", "ok"}}));
}

namespace {

// Registration happens during static initialisation (OUTPOST_STORAGE_CONFORMANCE) or in main before
// InitGoogleTest; the mutex makes either safe whatever the order of the translation units.
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::vector<StorageConformanceBackend>& Registry() {
  static std::vector<StorageConformanceBackend> backends;
  return backends;
}

std::vector<StorageConformanceBackend> RegisteredBackends() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry();
}

}  // namespace

bool RegisterStorageConformance(StorageConformanceBackend backend) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().push_back(std::move(backend));
  return true;
}

void PrintTo(const StorageConformanceBackend& backend, std::ostream* out) { *out << backend.name; }

// GoogleTest evaluates the generator when it registers the tests (InitGoogleTest), after every static
// registration ran.
INSTANTIATE_TEST_SUITE_P(, StorageConformance, testing::ValuesIn(RegisteredBackends()),
                         [](const testing::TestParamInfo<StorageConformanceBackend>& backend) {
                           return backend.param.name;
                         });
// A binary that links the library but registers no storage backend (a transport-only one) is not an error.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StorageConformance);

}  // namespace outpost::conformance
