// Copyright 2026 The Outpost Authors.
//
// The migration runner (engine/storage/migration.h) and the key-value server store's upgrade at open, on
// every persistent backend. A migration is killed at every write it makes and at its commit (a
// fault-injecting Storage: the store goes away mid-transaction, as under kill -9); each time the store,
// reopened healthy, reads as the old format with its data as it was, never a mix; the run that is let
// through leaves the new format with the data converted. The server store's real step (2 -> 3) runs on a
// copy of the golden server store that the build before it wrote.
#include "storage/migration.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keys.h"
#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "server_store/kv/kv_server_store.h"
#include "storage/store_format.h"
#include "testing/flaky_storage.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using Dump = std::map<std::string, std::map<std::string, std::string>>;

// Every key and value of `spaces`, through a read-only open (which writes nothing).
Dump ReadAll(const std::string& uri, const std::vector<std::string>& spaces) {
  StorageOptions so;
  so.spaces = spaces;
  so.read_only = true;
  auto storage = OpenStorage(uri, so);
  EXPECT_TRUE(storage.ok()) << storage.status().ToString();
  if (!storage.ok()) return {};
  auto txn = (*storage)->BeginRead();
  EXPECT_TRUE(txn.ok());
  Dump out;
  for (SpaceId i = 0; i < spaces.size(); ++i) {
    auto& space = out[spaces[i]];
    auto cur = (*txn)->NewCursor(i);
    for (cur->SeekToFirst(); cur->Valid(); cur->Next()) space.emplace(cur->key(), cur->value());
    EXPECT_TRUE(cur->status().ok()) << cur->status().ToString();
  }
  return out;
}

class MigrationTest : public testing::TestWithParam<std::string> {
 protected:
  std::string Uri(const std::string& name) {
    return GetParam() + ":" + dir_.path() + "/" + (GetParam() == "sqlite" ? name + ".db" : name);
  }
  harness::TempDir dir_{"outpost-migration"};
};

// ---- The runner, on a store of its own: format 1 holds `kRecords` records; 1 -> 2 rewrites each value,
// 2 -> 3 adds an index entry per record. Every write of both steps is a point where the store may go.

constexpr int kRecords = 40;
const std::vector<std::string> kSpaces = {"meta", "data", "index"};

StoreFormat TestFormat() {
  return {.what = "test store",
          .meta_space = "meta",
          .current = 3,
          .oldest = 1,
          .unstamped = [](ReadTxn&, SpaceId) -> Result<uint32_t> { return 0u; },
          .newer_hint = "use a newer build",
          .older_hint = "too old"};
}

std::vector<MigrationStep> TestSteps() {
  return {
      {.from = 1,
       .what = "values to v2",
       .run = [](WriteTxn& txn, MigrationProgress& progress) -> Status {
         std::vector<std::pair<std::string, std::string>> rows;
         auto cur = txn.NewCursor(1);
         for (cur->SeekToFirst(); cur->Valid(); cur->Next()) rows.emplace_back(cur->key(), cur->value());
         OUTPOST_RETURN_IF_ERROR(cur->status());
         cur.reset();
         for (const auto& [k, v] : rows) {
           OUTPOST_RETURN_IF_ERROR(txn.Put(1, k, "v2:" + v));
           progress.Record();
         }
         return Status::OK();
       }},
      {.from = 2,
       .what = "index",
       .run = [](WriteTxn& txn, MigrationProgress& progress) -> Status {
         std::vector<std::pair<std::string, std::string>> rows;
         auto cur = txn.NewCursor(1);
         for (cur->SeekToFirst(); cur->Valid(); cur->Next()) rows.emplace_back(cur->key(), cur->value());
         OUTPOST_RETURN_IF_ERROR(cur->status());
         cur.reset();
         for (const auto& [k, v] : rows) {
           OUTPOST_RETURN_IF_ERROR(txn.Put(2, v, k));
           progress.Record();
         }
         return Status::OK();
       }},
  };
}

TEST_P(MigrationTest, KilledAtEveryWriteAndAtCommitTheStoreIsOldOrNew) {
  const std::string uri = Uri("runner");
  {
    StorageOptions so;
    so.spaces = kSpaces;
    auto storage = OpenStorage(uri, so);
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    auto txn = (*storage)->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Put(0, "format", "1").ok());
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE((*txn)->Put(1, "k" + std::to_string(1000 + i), "value " + std::to_string(i)).ok());
    }
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  const Dump old_store = ReadAll(uri, kSpaces);
  ASSERT_EQ(old_store.at("data").size(), size_t{kRecords});

  auto migrate = [&](harness::FlakyStorage::Faults* faults, const MigrationOptions& options) -> Status {
    StorageOptions so;
    so.spaces = kSpaces;
    OUTPOST_ASSIGN_OR_RETURN(auto storage,
                             OpenFormattedStorage(uri, so, TestFormat(), harness::FlakyOpener(faults)));
    return MigrateStore(*storage, 0, TestFormat(), uri, TestSteps(), options);
  };

  // The migration makes 2 * kRecords writes and the format's: fail each of them, then the commit.
  const int64_t writes = 2 * kRecords + 1;
  for (int64_t k = 1; k <= writes + 1; ++k) {
    SCOPED_TRACE(k <= writes ? "killed at write " + std::to_string(k) : "killed at commit");
    harness::FlakyStorage::Faults faults;
    if (k <= writes)
      faults.fail_write_at = k;
    else
      faults.fail_commit = true;
    Status st = migrate(&faults, {.progress = [](const MigrationEvent&) {}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Status::Code::kIOError) << st.ToString();
    if (k <= writes) {
      EXPECT_EQ(faults.writes, k);  // it stopped at the failed write
    }
    ASSERT_EQ(ReadAll(uri, kSpaces), old_store);  // old format, data as it was
  }

  // Let through: format 3, every record converted, progress reported.
  harness::FlakyStorage::Faults healthy;
  std::vector<MigrationEvent> events;
  std::vector<std::string> whats;
  Status st = migrate(&healthy, {.progress_every = 10, .progress = [&](const MigrationEvent& e) {
                                   events.push_back(e);
                                   whats.emplace_back(e.what);
                                 }});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(healthy.writes, writes);
  const Dump now = ReadAll(uri, kSpaces);
  EXPECT_EQ(now.at("meta").at("format"), "3");
  ASSERT_EQ(now.at("data").size(), size_t{kRecords});
  ASSERT_EQ(now.at("index").size(), size_t{kRecords});
  for (const auto& [k, v] : old_store.at("data")) {
    EXPECT_EQ(now.at("data").at(k), "v2:" + v);
    EXPECT_EQ(now.at("index").at("v2:" + v), k);
  }
  // Per step: start, one report per 10 records, done.
  ASSERT_EQ(events.size(), size_t{2 * (2 + kRecords / 10)});
  EXPECT_EQ(events.front().phase, MigrationEvent::Phase::kStart);
  EXPECT_EQ(events.front().from, 1u);
  EXPECT_EQ(events[1].phase, MigrationEvent::Phase::kProgress);
  EXPECT_EQ(events[1].records, 10u);
  EXPECT_EQ(events.back().phase, MigrationEvent::Phase::kDone);
  EXPECT_EQ(events.back().from, 2u);
  EXPECT_EQ(events.back().records, uint64_t{kRecords});
  EXPECT_EQ(whats.back(), "index");

  // Current now: opening again migrates nothing and writes nothing.
  harness::FlakyStorage::Faults again;
  ASSERT_TRUE(migrate(&again, {}).ok());
  EXPECT_EQ(again.writes, 0);
}

TEST_P(MigrationTest, MissingStepsAndTooOldFormatsAreRefusedUntouched) {
  const std::string uri = Uri("gaps");
  StorageOptions so;
  so.spaces = kSpaces;
  {
    auto storage = OpenStorage(uri, so);
    ASSERT_TRUE(storage.ok());
    auto txn = (*storage)->BeginWrite();
    ASSERT_TRUE((*txn)->Put(0, "format", "1").ok());
    ASSERT_TRUE((*txn)->Put(1, "k", "v").ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  const Dump before = ReadAll(uri, kSpaces);
  {
    auto storage = OpenFormattedStorage(uri, so, TestFormat(), {});
    ASSERT_TRUE(storage.ok());
    std::vector<MigrationStep> steps = TestSteps();
    steps.pop_back();  // no 2 -> 3: the 1 -> 2 step must not be kept either
    Status st = MigrateStore(**storage, 0, TestFormat(), uri, steps);
    EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
    EXPECT_NE(st.message().find("no upgrade from format 2"), std::string::npos) << st.message();
    StoreFormat newer_only = TestFormat();
    newer_only.oldest = 2;
    st = MigrateStore(**storage, 0, newer_only, uri, TestSteps());
    EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
    EXPECT_NE(st.message().find("is format 1, older than this build upgrades (formats 2 to 3)"),
              std::string::npos)
        << st.message();
  }
  EXPECT_EQ(ReadAll(uri, kSpaces), before);
}

// ---- The key-value server store: format 2 (the golden store the build before format 3 wrote) is upgraded
// at open; killed at each of the upgrade's writes and at its commit, it stays format 2.

const std::vector<std::string> kFormat2Spaces = {"s_ops", "s_dedupe",  "s_devctr", "s_streams",
                                                 "s_wm",  "s_members", "s_meta",   "s_blobrefs"};

TEST_P(MigrationTest, GoldenServerStoreIsUpgradedAtOpenAndSurvivesAKillAtEveryPoint) {
  const std::string golden = std::string(OUTPOST_GOLDEN_DIR) + "/v1/" + GetParam();
  const std::string name = GetParam() == "sqlite" ? "server.db" : "server";
  fs::copy(golden, dir_.path() + "/copy", fs::copy_options::recursive);
  const std::string uri = GetParam() + ":" + dir_.path() + "/copy/" + name;
  const Dump before = ReadAll(uri, kFormat2Spaces);
  ASSERT_EQ(before.at("s_meta").at("format"), "2");
  ASSERT_FALSE(before.at("s_ops").empty());

  int64_t k = 1;
  for (;; ++k) {
    SCOPED_TRACE("killed at write " + std::to_string(k));
    harness::FlakyStorage::Faults faults;
    faults.fail_write_at = k;
    auto store = OpenServerStore(uri, {.open_storage = harness::FlakyOpener(&faults)});
    if (store.ok()) break;  // k is past the upgrade's last write
    EXPECT_EQ(store.status().code(), Status::Code::kIOError) << store.status().ToString();
    ASSERT_EQ(ReadAll(uri, kFormat2Spaces), before);
    ASSERT_LT(k, 100) << "the upgrade never finished";
  }
  EXPECT_EQ(k, 3);  // it wrote the incarnation and the format; the third write was never reached
  // That open upgraded it: back to format 2 for the commit case, from the golden again.
  fs::remove_all(dir_.path() + "/copy");
  fs::copy(golden, dir_.path() + "/copy", fs::copy_options::recursive);
  {
    harness::FlakyStorage::Faults faults;
    faults.fail_commit = true;
    auto store = OpenServerStore(uri, {.open_storage = harness::FlakyOpener(&faults)});
    ASSERT_FALSE(store.ok());
    ASSERT_EQ(ReadAll(uri, kFormat2Spaces), before);
  }

  // Healthy: format 3, one incarnation, every record of format 2 as it was.
  auto store = OpenServerStore(uri);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    std::vector<std::string> ids;
    auto txn = (*store)->BeginRead();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Incarnations(&ids).ok());
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0].size(), 16u);
  }
  store->reset();
  std::vector<std::string> spaces = kFormat2Spaces;
  spaces.push_back("s_incarnations");
  Dump after = ReadAll(uri, spaces);
  EXPECT_EQ(after.at("s_meta").at("format"), std::to_string(keys::kServerFormat));
  EXPECT_EQ(after.at("s_incarnations").size(), 1u);
  after.erase("s_incarnations");
  after["s_meta"]["format"] = "2";
  EXPECT_EQ(after, before);
}

INSTANTIATE_TEST_SUITE_P(Backends, MigrationTest, testing::Values("lmdb", "sqlite", "rocksdb"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace outpost
