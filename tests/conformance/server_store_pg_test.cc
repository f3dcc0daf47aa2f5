// Copyright 2026 The Outpost Authors.
//
// What only the PostgreSQL server store promises, beyond the conformance suite: migrations, round trips per
// write group, a dropped LISTEN connection, URIs without passwords, errors when the server is gone.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conformance/server_store_backends.h"
#include "server_store/postgresql/pg_server_store.h"

namespace outpost {
namespace {

constexpr auto kWaitMax = std::chrono::seconds(20);

class PgServerStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string reason = PgTestSkipReason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    auto uri = CreatePgTestDatabase(std::string("pg_") +
                                    testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(uri.ok()) << uri.status().ToString();
    uri_ = *uri;
  }
  void TearDown() override {
    if (!uri_.empty()) DropPgTestDatabase(uri_);
  }
  std::shared_ptr<ServerStore> MigrateAndOpen() {
    auto m = MigratePgServerStore(uri_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    auto s = OpenPgServerStore(uri_, {});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : nullptr;
  }
  std::string uri_;
};

TEST_F(PgServerStoreTest, OpenRefusesADatabaseWithoutSchema) {
  auto opened = OpenPgServerStore(uri_, {});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("outpostd migrate --store " + uri_), std::string::npos)
      << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("version " + std::to_string(kPgSchemaVersion)), std::string::npos);
}

TEST_F(PgServerStoreTest, MigrateUpgradesVersionOneInPlace) {
  {
    auto store = MigrateAndOpen();
    ASSERT_NE(store, nullptr);
    auto w = store->BeginWrite().value();
    ASSERT_TRUE(w->AddBlobRef(std::string(32, 'a'), "s").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  // A version 1 database: no blob_refs table.
  ASSERT_TRUE(PgTestExec(uri_, "DROP TABLE blob_refs; UPDATE outpost_schema SET version = 1").ok());
  auto opened = OpenPgServerStore(uri_, {});
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("version 1"), std::string::npos) << opened.status().ToString();
  auto migrated = MigratePgServerStore(uri_);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_NE(migrated->find("from version 1 to " + std::to_string(kPgSchemaVersion)), std::string::npos)
      << *migrated;
  auto reopened = OpenPgServerStore(uri_, {});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto store = *reopened;
  std::vector<std::string> streams;
  ASSERT_TRUE(store->BeginRead().value()->BlobStreams(std::string(32, 'a'), 10, &streams).ok());
  EXPECT_TRUE(streams.empty());
}

TEST_F(PgServerStoreTest, MigrateToThreeGivesBoundTokensDeviceRecords) {
  {
    auto store = MigrateAndOpen();
    ASSERT_NE(store, nullptr);
  }
  // A version 2 database with a user, a bound token and an unbound one: no device tables.
  ASSERT_TRUE(PgTestExec(uri_,
                         "DROP TABLE devices; DROP TABLE device_revocations; "
                         "UPDATE outpost_schema SET version = 2; INSERT INTO users (name) VALUES ('alice'); "
                         "INSERT INTO tokens (hash, user_name, device) VALUES "
                         "('\\x01', 'alice', 'phone'), ('\\x02', 'alice', '')")
                  .ok());
  auto migrated = MigratePgServerStore(uri_);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  auto store = OpenPgServerStore(uri_, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<DeviceRecord> devices;
  ASSERT_TRUE((*store)->users()->Devices("alice", &devices).ok());
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].device, "phone");
  EXPECT_EQ(devices[0].created_ms, 0) << "bound before records: unknown";
  ASSERT_TRUE((*store)->users()->RevokeDevice("alice", "phone", 5).ok());
  TokenRecord t;
  EXPECT_EQ((*store)->users()->FindToken(std::string(1, '\x01'), &t).code(), Status::Code::kPermissionDenied);
}

// Incarnations (schema step 3): a new database gets one; a database of version 2 gets one when migrated;
// NewIncarnation (outpostd migrate --new-incarnation after a pg_restore) adds one whose bases are the
// streams' high seqs then, in one transaction.
TEST_F(PgServerStoreTest, IncarnationsFromMigrationAndNewIncarnation) {
  auto store = MigrateAndOpen();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> first;
  ASSERT_TRUE(store->BeginRead().value()->Incarnations(&first).ok());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].size(), 16u);
  {
    auto w = store->BeginWrite().value();
    ASSERT_TRUE(w->SetHigh("s1", 7).ok());
    ASSERT_TRUE(w->SetHigh("s2", 3).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto id = NewIncarnation(uri_);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->size(), 16u);
  {
    auto w = store->BeginWrite().value();  // the live store moves on after the restore
    ASSERT_TRUE(w->SetHigh("s1", 9).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto again = NewIncarnation(uri_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto r = store->BeginRead().value();
  std::vector<std::string> ids;
  ASSERT_TRUE(r->Incarnations(&ids).ok());
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], first[0]);
  EXPECT_EQ(ids[1], *id);
  EXPECT_EQ(ids[2], *again);
  EXPECT_NE(ids[1], ids[2]);
  uint64_t base = 99;
  ASSERT_TRUE(r->RestoreBase(1, "s1", &base).ok());
  EXPECT_EQ(base, 7u);
  ASSERT_TRUE(r->RestoreBase(2, "s1", &base).ok());
  EXPECT_EQ(base, 9u);
  ASSERT_TRUE(r->RestoreBase(1, "s2", &base).ok());
  EXPECT_EQ(base, 3u);
  ASSERT_TRUE(r->RestoreBase(1, "absent", &base).ok());
  EXPECT_EQ(base, 0u);
  r.reset();

  // A version 2 database (before incarnations) gets its first one from the migration.
  ASSERT_TRUE(PgTestExec(uri_,
                         "DROP TABLE incarnations; DROP TABLE restore_bases; "
                         "UPDATE outpost_schema SET version = 2")
                  .ok());
  auto migrated = MigratePgServerStore(uri_);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  auto reopened = OpenPgServerStore(uri_, {});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ids.clear();
  ASSERT_TRUE((*reopened)->BeginRead().value()->Incarnations(&ids).ok());
  EXPECT_EQ(ids.size(), 1u);
}

TEST_F(PgServerStoreTest, ConcurrentMigrationsMakeOneSchema) {
  constexpr int kMigrations = 4;
  std::vector<Result<std::string>> results(kMigrations, Status::Aborted("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kMigrations; ++i)
    threads.emplace_back([&, i] { results[size_t(i)] = MigratePgServerStore(uri_); });
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    created += r->find("created") != std::string::npos;
  }
  EXPECT_EQ(created, 1);
  EXPECT_TRUE(OpenPgServerStore(uri_, {}).ok());
}

TEST_F(PgServerStoreTest, UriWithoutPassword) {
  EXPECT_EQ(RedactPgUri("postgresql://u:secret@h:5432/db?sslmode=require&password=x&application_name=a"),
            "postgresql://u@h:5432/db?sslmode=require&application_name=a");
  EXPECT_EQ(RedactPgUri("postgres://u@h/db"), "postgres://u@h/db");
  EXPECT_EQ(RedactPgUri("postgresql://h/db?password=x"), "postgresql://h/db");
  EXPECT_EQ(RedactPgUri("host=h password='se cret' dbname=d"), "host=h dbname=d");
  auto store = MigrateAndOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->uri(), RedactPgUri(uri_));
}

TEST(PgServerStoreNoServer, UnreachableIsUnavailable) {
  // A port nobody listens on (the test cluster's port + 1 would do; 1 is never a PostgreSQL).
  auto opened = OpenPgServerStore("postgresql://outpost@127.0.0.1:1/outpost?connect_timeout=2", {});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kUnavailable) << opened.status().ToString();
  auto migrated = MigratePgServerStore("postgresql://outpost:pw@127.0.0.1:1/outpost?connect_timeout=2");
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(migrated.status().message().find("pw@"), std::string::npos) << migrated.status().ToString();
}

// A group of 100 ops over 10 streams from 10 devices: Prepare (locks and loads) and Commit (the writes and
// COMMIT), one pipeline each.
TEST_F(PgServerStoreTest, WriteGroupCostsTwoRoundTrips) {
  auto store = MigrateAndOpen();
  ASSERT_NE(store, nullptr);
  { auto warm = store->BeginWrite(); }  // the pool's connection opened
  PgStoreCounters before = GetPgStoreCounters(*store);
  auto w = store->BeginWrite();
  ASSERT_TRUE(w.ok());
  std::vector<std::string> streams;
  std::vector<CounterKey> counters;
  std::vector<OpId> ids;
  for (int s = 0; s < 10; ++s) streams.push_back("stream" + std::to_string(s));
  for (int d = 0; d < 10; ++d) {
    for (const auto& s : streams) counters.push_back({"user", "device" + std::to_string(d), s});
  }
  for (int i = 0; i < 100; ++i) {
    OpId id;
    id.bytes[0] = 1;
    id.bytes[15] = uint8_t(i);
    ids.push_back(id);
  }
  ASSERT_TRUE((*w)->Prepare(streams, counters, ids).ok());
  std::vector<uint64_t> highs(10);
  for (int i = 0; i < 100; ++i) {
    const std::string& stream = streams[size_t(i % 10)];
    OpRecord rec;
    ASSERT_TRUE((*w)->GetOpRecord(ids[size_t(i)], &rec).IsNotFound());
    uint64_t high = 0, last = 0;
    ASSERT_TRUE((*w)->High(stream, &high).ok());
    CounterKey key{"user", "device" + std::to_string(i / 10), stream};
    ASSERT_TRUE((*w)->Counter(key, &last).ok());
    ASSERT_TRUE((*w)->AppendOp(stream, high + 1, std::string(200, 'x')).ok());
    ASSERT_TRUE((*w)->SetHigh(stream, high + 1).ok());
    ASSERT_TRUE((*w)->SetCounter(key, last + 1).ok());
    ASSERT_TRUE(
        (*w)->PutOpRecord(ids[size_t(i)], {1, high + 1, last + 1, 0, stream, "user", key.device, ""}).ok());
  }
  ASSERT_TRUE((*w)->Commit().ok());
  uint64_t trips = GetPgStoreCounters(*store).round_trips - before.round_trips;
  std::printf("round trips for a group of 100 ops over 10 streams: %llu\n", (unsigned long long)trips);
  RecordProperty("round_trips", int(trips));
  EXPECT_EQ(trips, 2u);
  auto r = store->BeginRead();
  ASSERT_TRUE(r.ok());
  uint64_t high = 0;
  ASSERT_TRUE((*r)->High("stream3", &high).ok());
  EXPECT_EQ(high, 10u);
}

// Dedupe is the primary key: two instances that both found no record of an op id and both record it
// cannot both commit; the second gets Aborted (its retry finds the record).
TEST_F(PgServerStoreTest, ConcurrentFirstRecordOfAnOpIdIsAborted) {
  auto store = MigrateAndOpen();
  ASSERT_NE(store, nullptr);
  OpId id;
  id.bytes[0] = 1;
  auto a = store->BeginWrite();
  auto b = store->BeginWrite();
  ASSERT_TRUE(a.ok() && b.ok());
  OpRecord rec;
  ASSERT_TRUE((*a)->GetOpRecord(id, &rec).IsNotFound());
  ASSERT_TRUE((*b)->GetOpRecord(id, &rec).IsNotFound());
  ASSERT_TRUE((*a)->PutOpRecord(id, {1, 1, 1, 0, "s", "u", "a", ""}).ok());
  ASSERT_TRUE((*b)->PutOpRecord(id, {1, 2, 1, 0, "s", "u", "b", ""}).ok());
  ASSERT_TRUE((*b)->AddMember("s", "from-b").ok());
  ASSERT_TRUE((*a)->Commit().ok());
  Status s = (*b)->Commit();
  EXPECT_EQ(s.code(), Status::Code::kAborted) << s.ToString();
  auto w = store->BeginWrite();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->GetOpRecord(id, &rec).ok());
  EXPECT_EQ(rec.device, "a");
  bool member = true;
  ASSERT_TRUE((*w)->IsMember("s", "from-b", &member).ok());
  EXPECT_FALSE(member);  // nothing of the aborted transaction
}

// After an error a write transaction is spoilt: later calls and Commit fail, nothing of it is kept.
TEST_F(PgServerStoreTest, FailedWriteIsSpoilt) {
  auto store = MigrateAndOpen();
  ASSERT_NE(store, nullptr);
  {
    auto w = store->BeginWrite();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AppendOp("s", 1, "one").ok());
    ASSERT_TRUE((*w)->SetHigh("s", 1).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  auto w = store->BeginWrite();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddMember("s", "u").ok());
  ASSERT_TRUE((*w)->AppendOp("s", 1, "again").ok());  // seq 1 is taken
  std::vector<std::string> ops;
  Status s = (*w)->ReadPage("s", 0, 10, 1000, &ops);  // sends the writes
  EXPECT_EQ(s.code(), Status::Code::kConflict) << s.ToString();
  EXPECT_FALSE((*w)->SetHigh("s", 2).ok());
  EXPECT_FALSE((*w)->Commit().ok());
  auto r = store->BeginRead();
  ASSERT_TRUE(r.ok());
  bool member = true;
  ASSERT_TRUE((*r)->IsMember("s", "u", &member).ok());
  EXPECT_FALSE(member);
  ops.clear();
  ASSERT_TRUE((*r)->ReadPage("s", 0, 10, 1000, &ops).ok());
  EXPECT_EQ(ops, std::vector<std::string>{"one"});
}

// When the LISTEN connection drops, the store reconnects and says wake-ups may have been lost.
TEST_F(PgServerStoreTest, DroppedListenConnectionSaysLost) {
  auto store = MigrateAndOpen();
  auto other = OpenPgServerStore(uri_, {});
  ASSERT_TRUE(store && other.ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StoreEvents> heard;
  uint64_t id = store->Subscribe([&](StoreEvents e) {
    std::lock_guard<std::mutex> lock(mu);
    heard.push_back(std::move(e));
    cv.notify_all();
  });
  std::string db = uri_.substr(uri_.rfind('/') + 1);
  ASSERT_TRUE(PgTestExec(uri_,
                         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                         "'outpostd-listen' AND datname = '" +
                             db + "'")
                  .ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, kWaitMax, [&] { return !heard.empty(); }));
  EXPECT_TRUE(heard[0].lost);
  lock.unlock();
  // And it hears again.
  StoreEvents e;
  e.heads.push_back({"s", 3});
  (*other)->Publish(e, 0);
  lock.lock();
  ASSERT_TRUE(cv.wait_for(lock, kWaitMax, [&] { return heard.size() >= 2; }));
  ASSERT_EQ(heard[1].heads.size(), 1u);
  EXPECT_EQ(heard[1].heads[0].high, 3u);
  lock.unlock();
  store->Unsubscribe(id);
}

}  // namespace
}  // namespace outpost
