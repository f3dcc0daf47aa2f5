// Copyright 2026 The Outpost Authors.
//
// The ServerStore contract (engine/include/outpost/server_store.h), checked against every store listed in
// server_store_backends.h.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "conformance/server_store_backends.h"
#include "outpost/server_store.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

constexpr auto kWaitMax = std::chrono::seconds(20);  // bounded waits for wake-ups between instances

OpId Id(uint32_t n) {
  OpId id;
  id.bytes[0] = 1;
  for (int i = 0; i < 4; ++i) id.bytes[12 + i] = uint8_t(n >> (8 * (3 - i)));
  return id;
}

// Stream ids may hold any byte but NUL.
const std::string kBinaryStream = std::string("s\x01\xff\x7f/\xc3", 6);

class ServerStoreConformance : public testing::TestWithParam<ServerStoreBackend> {
 protected:
  void SetUp() override {
    const ServerStoreBackend& b = GetParam();
    if (b.skip_reason) {
      std::string reason = b.skip_reason();
      if (!reason.empty()) GTEST_SKIP() << reason;
    }
    tmp_ = std::make_unique<harness::TempDir>("outpost-server-store");
    dir_ = tmp_->path();
    ASSERT_FALSE(dir_.empty());
    const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
    auto uri = b.create(dir_, std::string(info->name()));
    ASSERT_TRUE(uri.ok()) << uri.status().ToString();
    uri_ = *uri;
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    if (!uri_.empty() && GetParam().destroy) GetParam().destroy(uri_);
    tmp_.reset();
  }

  std::shared_ptr<ServerStore> Open() {
    auto s = GetParam().open(uri_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : nullptr;
  }

  std::unique_ptr<ServerWriteTxn> Write(ServerStore* store = nullptr) {
    auto t = (store ? store : store_.get())->BeginWrite();
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }

  std::unique_ptr<ServerReadTxn> Read() {
    auto t = store_->BeginRead();
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }

  // Appends `ops` to `stream` after its head, in one committed transaction.
  void Append(const std::string& stream, const std::vector<std::string>& ops) {
    auto w = Write();
    ASSERT_NE(w, nullptr);
    uint64_t high = 0;
    ASSERT_TRUE(w->High(stream, &high).ok());
    for (const std::string& op : ops) ASSERT_TRUE(w->AppendOp(stream, ++high, op).ok());
    ASSERT_TRUE(w->SetHigh(stream, high).ok());
    ASSERT_TRUE(w->Commit().ok());
  }

  uint64_t HighOf(ServerReadTxn& t, const std::string& stream) {
    uint64_t high = 99;
    Status s = t.High(stream, &high);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return high;
  }

  std::vector<std::string> Page(ServerReadTxn& t, const std::string& stream, uint64_t after, uint32_t limit,
                                size_t bytes_max = 1 << 20) {
    std::vector<std::string> ops;
    Status s = t.ReadPage(stream, after, limit, bytes_max, &ops);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ops;
  }

  std::vector<std::string> MembersOf(ServerReadTxn& t, const std::string& stream) {
    std::vector<std::string> users{"stale"};
    Status s = t.Members(stream, &users);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return users;
  }

  std::unique_ptr<harness::TempDir> tmp_;  // made once the test is not skipped
  std::string dir_;
  std::string uri_;
  std::shared_ptr<ServerStore> store_;
};

TEST_P(ServerStoreConformance, EmptyStore) {
  auto r = Read();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(HighOf(*r, "s"), 0u);
  EXPECT_TRUE(Page(*r, "s", 0, 10).empty());
  bool any = true;
  ASSERT_TRUE(r->HasMembers("s", &any).ok());
  EXPECT_FALSE(any);
  EXPECT_TRUE(MembersOf(*r, "s").empty());
  uint64_t last = 9;
  ASSERT_TRUE(r->Counter({"u", "d", "s"}, &last).ok());
  EXPECT_EQ(last, 0u);
  int calls = 0;
  ASSERT_TRUE(r->DeviceCounters("u", "d", [&](std::string_view, uint64_t) { return ++calls, true; }).ok());
  EXPECT_EQ(calls, 0);
  std::vector<StoredWatermark> wms(1);
  ASSERT_TRUE(r->Watermarks("s", &wms).ok());
  EXPECT_TRUE(wms.empty());
  uint64_t seq = 9;
  ASSERT_TRUE(r->Watermark("s", "u", "d", 0, &seq).ok());
  EXPECT_EQ(seq, 0u);
  auto w = Write();
  OpRecord rec;
  EXPECT_TRUE(w->GetOpRecord(Id(1), &rec).IsNotFound());
  if (GetParam().keeps_users) {
    uint64_t count = 9;
    ASSERT_TRUE(store_->users()->UserCount(&count).ok());
    EXPECT_EQ(count, 0u);
  }
  EXPECT_FALSE(store_->uri().empty());
}

TEST_P(ServerStoreConformance, AppendAndReadPages) {
  std::vector<std::string> ops;
  for (int i = 1; i <= 10; ++i) ops.push_back(std::string("op\0", 3) + std::to_string(i) + "\xff");
  Append(kBinaryStream, ops);
  Append("other", {"x"});
  auto r = Read();
  EXPECT_EQ(HighOf(*r, kBinaryStream), 10u);
  EXPECT_EQ(Page(*r, kBinaryStream, 0, 3), std::vector<std::string>(ops.begin(), ops.begin() + 3));
  EXPECT_EQ(Page(*r, kBinaryStream, 3, 100),
            std::vector<std::string>(ops.begin() + 3, ops.end()));  // stops at end
  EXPECT_EQ(Page(*r, kBinaryStream, 9, 5), std::vector<std::string>{ops[9]});
  EXPECT_TRUE(Page(*r, kBinaryStream, 10, 5).empty());
  EXPECT_TRUE(Page(*r, kBinaryStream, 0, 0).empty());
  // bytes_max: ops 1..9 are 6 bytes, op 10 is 7; the first always comes.
  EXPECT_EQ(Page(*r, kBinaryStream, 0, 10, 13), std::vector<std::string>(ops.begin(), ops.begin() + 2));
  EXPECT_EQ(Page(*r, kBinaryStream, 0, 10, 12), std::vector<std::string>(ops.begin(), ops.begin() + 2));
  EXPECT_EQ(Page(*r, kBinaryStream, 0, 10, 1), std::vector<std::string>{ops[0]});
  EXPECT_EQ(Page(*r, kBinaryStream, 0, 10, 0), std::vector<std::string>{ops[0]});
  EXPECT_EQ(Page(*r, "other", 0, 10), std::vector<std::string>{"x"});
  // A page appends.
  std::vector<std::string> got{"before"};
  ASSERT_TRUE(r->ReadPage("other", 0, 10, 100, &got).ok());
  EXPECT_EQ(got, (std::vector<std::string>{"before", "x"}));
}

TEST_P(ServerStoreConformance, HeadsAndCounters) {
  auto w = Write();
  ASSERT_TRUE(w->SetHigh("a", 7).ok());
  ASSERT_TRUE(w->SetHigh(kBinaryStream, uint64_t(1) << 40).ok());
  ASSERT_TRUE(w->SetCounter({"u", "d", "a"}, 3).ok());
  ASSERT_TRUE(w->SetCounter({"u", "d2", "a"}, 4).ok());
  uint64_t v = 0;
  ASSERT_TRUE(w->High("a", &v).ok());
  EXPECT_EQ(v, 7u);  // its own write
  ASSERT_TRUE(w->Counter({"u", "d", "a"}, &v).ok());
  EXPECT_EQ(v, 3u);
  ASSERT_TRUE(w->Commit().ok());
  auto r = Read();
  EXPECT_EQ(HighOf(*r, "a"), 7u);
  EXPECT_EQ(HighOf(*r, kBinaryStream), uint64_t(1) << 40);
  EXPECT_EQ(HighOf(*r, "b"), 0u);
  ASSERT_TRUE(r->Counter({"u", "d", "a"}, &v).ok());
  EXPECT_EQ(v, 3u);
  ASSERT_TRUE(r->Counter({"u", "d2", "a"}, &v).ok());
  EXPECT_EQ(v, 4u);
  ASSERT_TRUE(r->Counter({"u", "d", "b"}, &v).ok());
  EXPECT_EQ(v, 0u);
  // A later transaction overwrites.
  auto w2 = Write();
  ASSERT_TRUE(w2->High("a", &v).ok());
  EXPECT_EQ(v, 7u);
  ASSERT_TRUE(w2->SetHigh("a", 8).ok());
  ASSERT_TRUE(w2->Counter({"u", "d", "a"}, &v).ok());
  EXPECT_EQ(v, 3u);
  ASSERT_TRUE(w2->SetCounter({"u", "d", "a"}, 5).ok());
  ASSERT_TRUE(w2->Commit().ok());
  auto r2 = Read();
  EXPECT_EQ(HighOf(*r2, "a"), 8u);
  ASSERT_TRUE(r2->Counter({"u", "d", "a"}, &v).ok());
  EXPECT_EQ(v, 5u);
}

TEST_P(ServerStoreConformance, OpRecordsRoundTrip) {
  OpRecord a;
  a.code = 2;
  a.seq = 0;
  a.counter = 77;
  a.error_code = 65535;
  a.stream = kBinaryStream;
  a.user = "alice";
  a.device = "phone";
  a.message = std::string("bad\0op\xff\n", 8);
  OpRecord b;
  b.code = 1;
  b.seq = uint64_t(1) << 50;
  b.counter = 1;
  b.stream = "s";
  b.user = "bob";
  b.device = "laptop";
  {
    auto w = Write();
    ASSERT_TRUE(w->PutOpRecord(Id(1), a).ok());
    ASSERT_TRUE(w->PutOpRecord(Id(2), b).ok());
    OpRecord got;
    ASSERT_TRUE(w->GetOpRecord(Id(1), &got).ok());  // its own write
    EXPECT_EQ(got.message, a.message);
    ASSERT_TRUE(w->Commit().ok());
  }
  auto Same = [](const OpRecord& x, const OpRecord& y) {
    return x.code == y.code && x.seq == y.seq && x.counter == y.counter && x.error_code == y.error_code &&
           x.stream == y.stream && x.user == y.user && x.device == y.device && x.message == y.message;
  };
  auto w = Write();
  OpRecord got;
  ASSERT_TRUE(w->GetOpRecord(Id(1), &got).ok());
  EXPECT_TRUE(Same(got, a));
  ASSERT_TRUE(w->GetOpRecord(Id(2), &got).ok());
  EXPECT_TRUE(Same(got, b));
  EXPECT_TRUE(w->GetOpRecord(Id(3), &got).IsNotFound());
  // Prepare loads them too; a record is replaced by a later put.
  ASSERT_TRUE(w->Prepare({}, {}, {Id(1), Id(2), Id(3), Id(4)}).ok());
  EXPECT_TRUE(w->GetOpRecord(Id(4), &got).IsNotFound());
  b.code = 3;
  b.message = "skipped";
  ASSERT_TRUE(w->PutOpRecord(Id(2), b).ok());
  ASSERT_TRUE(w->PutOpRecord(Id(3), a).ok());
  ASSERT_TRUE(w->Commit().ok());
  auto w2 = Write();
  ASSERT_TRUE(w2->GetOpRecord(Id(2), &got).ok());
  EXPECT_TRUE(Same(got, b));
  ASSERT_TRUE(w2->GetOpRecord(Id(3), &got).ok());
  EXPECT_TRUE(Same(got, a));
}

// MemberOf answers IsMember for many streams at once, in order, in a write (its own writes) and a read.
TEST_P(ServerStoreConformance, MemberOfManyStreams) {
  const std::vector<std::string> streams = {"b", kBinaryStream, "a", "missing", "b", "ab"};
  {
    auto w = Write();
    ASSERT_TRUE(w->AddMember("a", "u").ok());
    ASSERT_TRUE(w->AddMember("b", "u").ok());
    ASSERT_TRUE(w->AddMember(kBinaryStream, "u").ok());
    ASSERT_TRUE(w->AddMember("ab", "v").ok());  // another user
    std::vector<bool> in(1, true);
    ASSERT_TRUE(w->MemberOf("u", streams, &in).ok());
    EXPECT_EQ(in, (std::vector<bool>{true, true, true, false, true, false}));
    ASSERT_TRUE(w->Commit().ok());
  }
  auto r = Read();
  std::vector<bool> in;
  ASSERT_TRUE(r->MemberOf("u", streams, &in).ok());
  EXPECT_EQ(in, (std::vector<bool>{true, true, true, false, true, false}));
  ASSERT_TRUE(r->MemberOf("nobody", streams, &in).ok());
  EXPECT_EQ(in, std::vector<bool>(streams.size(), false));
  ASSERT_TRUE(r->MemberOf("u", {}, &in).ok());
  EXPECT_TRUE(in.empty());
}

TEST_P(ServerStoreConformance, BlobRefs) {
  const std::string a(32, 'a'), b(32, 'b');
  {
    auto w = Write();
    ASSERT_TRUE(w->AddBlobRef(a, "s").ok());
    ASSERT_TRUE(w->AddBlobRef(a, "s").ok());  // twice
    ASSERT_TRUE(w->AddBlobRef(a, kBinaryStream).ok());
    ASSERT_TRUE(w->AddBlobRef(b, "t").ok());
    std::vector<std::string> own;
    ASSERT_TRUE(w->BlobStreams(b, 10, &own).ok());
    EXPECT_EQ(own, std::vector<std::string>{"t"});  // its own writes
    ASSERT_TRUE(w->Commit().ok());
  }
  {
    auto w = Write();  // not committed: gone
    ASSERT_TRUE(w->AddBlobRef(b, "u").ok());
  }
  auto r = Read();
  std::vector<std::string> streams = {"left over"};
  ASSERT_TRUE(r->BlobStreams(a, 10, &streams).ok());
  std::sort(streams.begin(), streams.end());
  std::vector<std::string> want = {std::string(kBinaryStream), "s"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(streams, want);
  ASSERT_TRUE(r->BlobStreams(a, 1, &streams).ok());
  EXPECT_EQ(streams.size(), 1u);
  ASSERT_TRUE(r->BlobStreams(b, 10, &streams).ok());
  EXPECT_EQ(streams, std::vector<std::string>{"t"});
  ASSERT_TRUE(r->BlobStreams(std::string(32, 'c'), 10, &streams).ok());
  EXPECT_TRUE(streams.empty());
}

TEST_P(ServerStoreConformance, Members) {
  {
    auto w = Write();
    for (const char* u : {"carol", "alice", "bob"}) ASSERT_TRUE(w->AddMember("s", u).ok());
    ASSERT_TRUE(w->AddMember("s", "alice").ok());  // twice
    ASSERT_TRUE(w->AddMember(kBinaryStream, "dave").ok());
    ASSERT_TRUE(w->AddMember("t", "erin").ok());
    ASSERT_TRUE(w->RemoveMember("t", "erin").ok());  // added and removed in one transaction
    ASSERT_TRUE(w->RemoveMember("s", "nobody").ok());
    EXPECT_EQ(MembersOf(*w, "s"), (std::vector<std::string>{"alice", "bob", "carol"}));  // its own writes
    ASSERT_TRUE(w->Commit().ok());
  }
  auto r = Read();
  EXPECT_EQ(MembersOf(*r, "s"), (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_EQ(MembersOf(*r, kBinaryStream), std::vector<std::string>{"dave"});
  EXPECT_TRUE(MembersOf(*r, "t").empty());
  bool yes = false;
  ASSERT_TRUE(r->IsMember("s", "bob", &yes).ok());
  EXPECT_TRUE(yes);
  ASSERT_TRUE(r->IsMember("s", "dave", &yes).ok());
  EXPECT_FALSE(yes);
  ASSERT_TRUE(r->HasMembers("s", &yes).ok());
  EXPECT_TRUE(yes);
  ASSERT_TRUE(r->HasMembers("t", &yes).ok());
  EXPECT_FALSE(yes);
  {
    auto w = Write();
    ASSERT_TRUE(w->RemoveMember("s", "bob").ok());
    bool member = true;
    ASSERT_TRUE(w->IsMember("s", "bob", &member).ok());
    EXPECT_FALSE(member);
    ASSERT_TRUE(w->Commit().ok());
  }
  auto r2 = Read();
  EXPECT_EQ(MembersOf(*r2, "s"), (std::vector<std::string>{"alice", "carol"}));
}

TEST_P(ServerStoreConformance, Watermarks) {
  {
    auto w = Write();
    ASSERT_TRUE(w->PutWatermark({"s", "bob", "d1", 1, 4}).ok());
    ASSERT_TRUE(w->PutWatermark({"s", "alice", "d2", 0, 3}).ok());
    ASSERT_TRUE(w->PutWatermark({"s", "alice", "d1", 1, 2}).ok());
    ASSERT_TRUE(w->PutWatermark({"s", "alice", "d1", 0, 1}).ok());
    ASSERT_TRUE(w->PutWatermark({"s", "alice", "d1", 0, 5}).ok());  // replaces
    ASSERT_TRUE(w->PutWatermark({"other", "alice", "d1", 0, 9}).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto r = Read();
  std::vector<StoredWatermark> wms;
  ASSERT_TRUE(r->Watermarks("s", &wms).ok());
  ASSERT_EQ(wms.size(), 4u);
  std::vector<std::tuple<std::string, std::string, std::string, int, uint64_t>> got;
  for (const auto& w : wms) got.emplace_back(w.stream, w.user, w.device, w.kind, w.seq);
  EXPECT_EQ(got, (std::vector<std::tuple<std::string, std::string, std::string, int, uint64_t>>{
                     {"s", "alice", "d1", 0, 5},
                     {"s", "alice", "d1", 1, 2},
                     {"s", "alice", "d2", 0, 3},
                     {"s", "bob", "d1", 1, 4}}));
  uint64_t seq = 0;
  ASSERT_TRUE(r->Watermark("s", "bob", "d1", 1, &seq).ok());
  EXPECT_EQ(seq, 4u);
  ASSERT_TRUE(r->Watermark("s", "bob", "d1", 0, &seq).ok());
  EXPECT_EQ(seq, 0u);
  ASSERT_TRUE(r->Watermark("other", "alice", "d1", 0, &seq).ok());
  EXPECT_EQ(seq, 9u);
}

TEST_P(ServerStoreConformance, DeviceCountersInOneStableOrderWithEarlyStop) {
  {
    auto w = Write();
    for (const auto& [stream, last] : std::vector<std::pair<std::string, uint64_t>>{
             {"c", 3}, {"a", 1}, {"\xff", 9}, {"b", 2}, {"ab", 5}}) {
      ASSERT_TRUE(w->SetCounter({"u", "d", stream}, last).ok());
    }
    ASSERT_TRUE(w->SetCounter({"u", "other", "a"}, 7).ok());
    ASSERT_TRUE(w->SetCounter({"v", "d", "a"}, 8).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto r = Read();
  std::vector<std::pair<std::string, uint64_t>> seen;
  ASSERT_TRUE(r->DeviceCounters("u", "d", [&](std::string_view s, uint64_t last) {
                 seen.emplace_back(std::string(s), last);
                 return true;
               }).ok());
  // Each of the device's counters once, in the store's order (the key-value store's keys put shorter
  // stream ids first), the same on every walk.
  const auto all = seen;
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, uint64_t>>{
                      {"a", 1}, {"ab", 5}, {"b", 2}, {"c", 3}, {"\xff", 9}}));
  seen.clear();
  ASSERT_TRUE(r->DeviceCounters("u", "d", [&](std::string_view s, uint64_t last) {
                 seen.emplace_back(std::string(s), last);
                 return seen.size() < 2;
               }).ok());
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, uint64_t>>{all[0], all[1]}));
}

TEST_P(ServerStoreConformance, AbortedWriteLeavesNothing) {
  Append("s", {"one"});
  for (bool read_first : {false, true}) {
    auto w = Write();
    uint64_t high = 0;
    if (read_first) {
      ASSERT_TRUE(w->High("s", &high).ok());
    }
    ASSERT_TRUE(w->AppendOp("s", 2, "two").ok());
    ASSERT_TRUE(w->SetHigh("s", 2).ok());
    ASSERT_TRUE(w->SetCounter({"u", "d", "s"}, 4).ok());
    ASSERT_TRUE(w->PutOpRecord(Id(1), OpRecord{1, 2, 4, 0, "s", "u", "d", ""}).ok());
    ASSERT_TRUE(w->AddMember("s", "u").ok());
    ASSERT_TRUE(w->PutWatermark({"s", "u", "d", 0, 2}).ok());
    if (read_first) {
      EXPECT_EQ(MembersOf(*w, "s"), std::vector<std::string>{"u"});  // sent, not committed
    }
    w.reset();  // no Commit
  }
  auto r = Read();
  EXPECT_EQ(HighOf(*r, "s"), 1u);
  EXPECT_EQ(Page(*r, "s", 0, 10), std::vector<std::string>{"one"});
  EXPECT_TRUE(MembersOf(*r, "s").empty());
  uint64_t v = 9;
  ASSERT_TRUE(r->Counter({"u", "d", "s"}, &v).ok());
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(r->Watermark("s", "u", "d", 0, &v).ok());
  EXPECT_EQ(v, 0u);
  r.reset();
  auto w = Write();
  OpRecord rec;
  EXPECT_TRUE(w->GetOpRecord(Id(1), &rec).IsNotFound());
}

TEST_P(ServerStoreConformance, ReadSnapshotIgnoresLaterCommits) {
  Append("s", {"one"});
  auto early = Read();  // before any read of it
  auto r = Read();
  EXPECT_EQ(HighOf(*r, "s"), 1u);
  Append("s", {"two"});
  {
    auto w = Write();
    ASSERT_TRUE(w->AddMember("s", "u").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  for (ServerReadTxn* t : {r.get(), early.get()}) {
    EXPECT_EQ(HighOf(*t, "s"), 1u);
    EXPECT_EQ(Page(*t, "s", 0, 10), std::vector<std::string>{"one"});
    EXPECT_TRUE(MembersOf(*t, "s").empty());
  }
  auto fresh = Read();
  EXPECT_EQ(HighOf(*fresh, "s"), 2u);
  EXPECT_EQ(MembersOf(*fresh, "s"), std::vector<std::string>{"u"});
}

TEST_P(ServerStoreConformance, UncommittedWritesInvisibleToReaders) {
  if (!GetParam().multi_writer) GTEST_SKIP() << "a one-writer store may block readers of an open write";
  auto w = Write();
  ASSERT_TRUE(w->AppendOp("s", 1, "one").ok());
  ASSERT_TRUE(w->SetHigh("s", 1).ok());
  ASSERT_TRUE(w->AddMember("s", "u").ok());
  EXPECT_EQ(Page(*w, "s", 0, 10), std::vector<std::string>{"one"});  // its own writes, sent to the store
  {
    auto r = Read();
    EXPECT_EQ(HighOf(*r, "s"), 0u);
    EXPECT_TRUE(Page(*r, "s", 0, 10).empty());
    EXPECT_TRUE(MembersOf(*r, "s").empty());
  }
  ASSERT_TRUE(w->Commit().ok());
  auto r = Read();
  EXPECT_EQ(HighOf(*r, "s"), 1u);
  EXPECT_EQ(MembersOf(*r, "s"), std::vector<std::string>{"u"});
}

TEST_P(ServerStoreConformance, FinishedTransactionRefusesMore) {
  auto w = Write();
  ASSERT_TRUE(w->AddMember("s", "u").ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_FALSE(w->Commit().ok());
}

TEST_P(ServerStoreConformance, UsersAndTokens) {
  if (!GetParam().keeps_users) GTEST_SKIP() << "this store keeps no users";
  UserStore* users = store_->users();
  ASSERT_NE(users, nullptr);
  const std::string h1("hash\0one", 8), h2 = "hash2", h3 = "hash3";
  ASSERT_TRUE(users->AddUser("alice", {h1, "alice", ""}).ok());
  EXPECT_EQ(users->AddUser("alice", {h2, "alice", ""}).code(), Status::Code::kConflict);
  EXPECT_TRUE(users->AddToken({h2, "nobody", ""}).IsNotFound());
  ASSERT_TRUE(users->AddToken({h2, "alice", "laptop"}).ok());
  ASSERT_TRUE(users->AddToken({h3, "alice", ""}).ok());
  ASSERT_TRUE(users->AddUser("bob", {"hb", "bob", ""}).ok());
  uint64_t count = 0;
  ASSERT_TRUE(users->UserCount(&count).ok());
  EXPECT_EQ(count, 2u);
  bool exists = false;
  ASSERT_TRUE(users->HasUser("bob", &exists).ok());
  EXPECT_TRUE(exists);
  ASSERT_TRUE(users->HasUser("carol", &exists).ok());
  EXPECT_FALSE(exists);
  TokenRecord t;
  ASSERT_TRUE(users->FindToken(h1, &t).ok());
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.device, "");
  EXPECT_TRUE(users->FindToken("nope", &t).IsNotFound());
  ASSERT_TRUE(users->BindToken(h1, "phone").ok());
  ASSERT_TRUE(users->BindToken(h1, "phone").ok());  // bound to it already
  EXPECT_EQ(users->BindToken(h1, "tablet").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(users->BindToken(h2, "phone").code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(users->BindToken("nope", "phone").IsNotFound());
  ASSERT_TRUE(users->FindToken(h1, &t).ok());
  EXPECT_EQ(t.device, "phone");
  std::vector<TokenRecord> tokens;
  ASSERT_TRUE(users->Tokens("alice", &tokens).ok());
  ASSERT_EQ(tokens.size(), 3u);  // by device, unbound last
  EXPECT_EQ(tokens[0].device, "laptop");
  EXPECT_EQ(tokens[0].hash, h2);
  EXPECT_EQ(tokens[1].device, "phone");
  EXPECT_EQ(tokens[1].hash, h1);
  EXPECT_EQ(tokens[2].device, "");
  EXPECT_EQ(tokens[2].hash, h3);
  EXPECT_TRUE(users->Tokens("carol", &tokens).IsNotFound());
}

TEST_P(ServerStoreConformance, BindTokenRaceHasOneWinner) {
  if (!GetParam().keeps_users) GTEST_SKIP() << "this store keeps no users";
  UserStore* users = store_->users();
  ASSERT_TRUE(users->AddUser("alice", {"t0", "alice", ""}).ok());
  constexpr int kTokens = 20;
  for (int i = 1; i < kTokens; ++i) ASSERT_TRUE(users->AddToken({"t" + std::to_string(i), "alice", ""}).ok());
  for (int i = 0; i < kTokens; ++i) {
    std::string hash = "t" + std::to_string(i);
    Status results[2];
    std::thread a([&] { results[0] = users->BindToken(hash, "phone"); });
    std::thread b([&] { results[1] = users->BindToken(hash, "laptop"); });
    a.join();
    b.join();
    int won = results[0].ok() + results[1].ok();
    EXPECT_EQ(won, 1) << results[0].ToString() << " / " << results[1].ToString();
    for (const Status& s : results) {
      if (!s.ok()) {
        EXPECT_EQ(s.code(), Status::Code::kPermissionDenied) << s.ToString();
      }
    }
    TokenRecord t;
    ASSERT_TRUE(users->FindToken(hash, &t).ok());
    EXPECT_EQ(t.device, results[0].ok() ? "phone" : "laptop");
  }
}

TEST_P(ServerStoreConformance, RefusesAnotherSchemaVersion) {
  if (!GetParam().set_schema_version) GTEST_SKIP() << "no way to set this store's schema version";
  store_.reset();
  ASSERT_TRUE(GetParam().set_schema_version(uri_, 99).ok());
  auto opened = GetParam().open(uri_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("version 99"), std::string::npos) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("version 3"), std::string::npos) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("outpostd migrate --store"), std::string::npos);
  EXPECT_FALSE(GetParam().migrate(uri_).ok());  // not downgraded
  ASSERT_TRUE(GetParam().set_schema_version(uri_, 0).ok());
  opened = GetParam().open(uri_);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("version 0"), std::string::npos) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("outpostd migrate --store"), std::string::npos);
}

TEST_P(ServerStoreConformance, MigrateIsIdempotent) {
  store_.reset();  // an lmdb directory opens once per process
  auto again = GetParam().migrate(uri_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  Append("s", {"one"});
  store_.reset();
  again = GetParam().migrate(uri_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto r = Read();
  EXPECT_EQ(HighOf(*r, "s"), 1u);
}

// Several instances (store objects on one database), several threads each, append to the same streams
// with High + AppendOp + SetHigh, retrying on Aborted: every op gets exactly one seq, 1..n per stream.
TEST_P(ServerStoreConformance, ConcurrentAppendsFromTwoInstancesHaveNoGaps) {
  if (!GetParam().multi_writer) GTEST_SKIP() << "one writer: one process";
  constexpr int kInstances = 2, kThreads = 3, kOpsPerThread = 40;
  const std::vector<std::string> streams = {"s1", "s2", "s3"};
  std::vector<std::shared_ptr<ServerStore>> instances = {store_, Open()};
  ASSERT_NE(instances[1], nullptr);
  std::atomic<int> aborted{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i) {
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, i, t] {
        std::mt19937 rng(uint32_t(i * 100 + t));
        for (int n = 0; n < kOpsPerThread; ++n) {
          std::vector<std::string> mine = {streams[rng() % 3], streams[rng() % 3]};
          std::string op = std::to_string(i) + "/" + std::to_string(t) + "/" + std::to_string(n);
          for (int attempt = 0;; ++attempt) {
            auto w = instances[size_t(i)]->BeginWrite();
            if (!w.ok()) {
              ++failed;
              return;
            }
            Status s;
            if (t % 2 == 0) {
              // As the core does: the group's heads locked up front, in order. The other threads lock as
              // they go, in random order: deadlocks happen, the store ends one of them with Aborted.
              s = (*w)->Prepare(mine, {}, {});
            }
            std::set<std::string> done;
            for (const std::string& stream : mine) {
              if (!done.insert(stream).second) continue;
              uint64_t high = 0;
              s = (*w)->High(stream, &high);
              if (s.ok()) s = (*w)->AppendOp(stream, high + 1, op);
              if (s.ok()) s = (*w)->SetHigh(stream, high + 1);
              if (!s.ok()) break;
            }
            if (s.ok()) s = (*w)->Commit();
            if (s.ok()) break;
            if (s.code() != Status::Code::kAborted || attempt > 100) {
              ADD_FAILURE() << s.ToString();
              ++failed;
              return;
            }
            ++aborted;
          }
        }
      });
    }
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failed.load(), 0);
  std::multiset<std::string> expected_ops, seen_ops;
  // Recompute what each thread appended (same seeds).
  for (int i = 0; i < kInstances; ++i) {
    for (int t = 0; t < kThreads; ++t) {
      std::mt19937 rng(uint32_t(i * 100 + t));
      for (int n = 0; n < kOpsPerThread; ++n) {
        std::string a = streams[rng() % 3], b = streams[rng() % 3];
        std::string op = std::to_string(i) + "/" + std::to_string(t) + "/" + std::to_string(n);
        expected_ops.insert(a + ":" + op);
        if (b != a) expected_ops.insert(b + ":" + op);
      }
    }
  }
  auto r = Read();
  for (const std::string& stream : streams) {
    uint64_t high = HighOf(*r, stream);
    std::vector<std::string> ops = Page(*r, stream, 0, 100000, size_t(1) << 30);
    EXPECT_EQ(ops.size(), high) << stream;  // seqs 1..high, no gap (a page stops at a gap)
    for (const std::string& op : ops) seen_ops.insert(stream + ":" + op);
  }
  EXPECT_EQ(seen_ops, expected_ops);  // each exactly once
  RecordProperty("aborted_retries", aborted.load());
}

// Collects what a subscriber hears.
struct Heard {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StoreEvents> events;
  std::function<void(StoreEvents)> Fn() {
    return [this](StoreEvents e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(std::move(e));
      cv.notify_all();
    };
  }
  // Waits (bounded) until `done` holds for what was heard.
  bool WaitFor(const std::function<bool(const std::vector<StoreEvents>&)>& done) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kWaitMax, [&] { return done(events); });
  }
  std::vector<StoreEvents> Copy() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }
};

bool HasHead(const std::vector<StoreEvents>& events, const std::string& stream, uint64_t high) {
  for (const StoreEvents& e : events) {
    for (const auto& h : e.heads) {
      if (h.stream == stream && h.high == high) return true;
    }
  }
  return false;
}

TEST_P(ServerStoreConformance, PublishReachesOtherInstanceNotItself) {
  if (!GetParam().multi_writer) GTEST_SKIP() << "one instance per store";
  std::shared_ptr<ServerStore> other = Open();
  ASSERT_NE(other, nullptr);
  Heard mine, mine2, theirs;
  uint64_t me = store_->Subscribe(mine.Fn());
  uint64_t me2 = store_->Subscribe(mine2.Fn());
  uint64_t them = other->Subscribe(theirs.Fn());
  StoreEvents first;
  first.heads.push_back({kBinaryStream, 5});
  first.watermarks.push_back({"s", "u", "d", 1, 4});
  first.joined.push_back({"s", "newbie"});
  first.left.push_back({"s", "leaver"});
  store_->Publish(first, me);
  ASSERT_TRUE(theirs.WaitFor([](const auto& ev) { return HasHead(ev, kBinaryStream, 5); }));
  {
    std::vector<StoreEvents> got = theirs.Copy();
    ASSERT_EQ(got.size(), 1u);
    const StoreEvents& e = got[0];
    ASSERT_EQ(e.watermarks.size(), 1u);
    EXPECT_EQ(e.watermarks[0].user, "u");
    EXPECT_EQ(e.watermarks[0].device, "d");
    EXPECT_EQ(e.watermarks[0].kind, 1);
    EXPECT_EQ(e.watermarks[0].seq, 4u);
    ASSERT_EQ(e.joined.size(), 1u);
    EXPECT_EQ(e.joined[0].user, "newbie");
    ASSERT_EQ(e.left.size(), 1u);
    EXPECT_EQ(e.left[0].user, "leaver");
    EXPECT_FALSE(e.lost);
  }
  // The other instance answers; once its wake-up is here, ours (sent before) would have been too.
  StoreEvents second;
  second.heads.push_back({"s2", 1});
  other->Publish(second, them);
  ASSERT_TRUE(mine.WaitFor([](const auto& ev) { return HasHead(ev, "s2", 1); }));
  ASSERT_TRUE(mine2.WaitFor([](const auto& ev) { return HasHead(ev, "s2", 1); }));
  std::vector<StoreEvents> got = mine.Copy();
  ASSERT_EQ(got.size(), 1u);  // not its own
  EXPECT_FALSE(HasHead(got, kBinaryStream, 5));
  got = mine2.Copy();
  ASSERT_EQ(got.size(), 2u);  // its own store's in-process, once; then the other's
  EXPECT_TRUE(HasHead({got[0]}, kBinaryStream, 5));
  EXPECT_EQ(theirs.Copy().size(), 1u);  // the other's own not echoed
  store_->Unsubscribe(me);
  store_->Unsubscribe(me2);
  other->Unsubscribe(them);
}

// Every store: subscribers of one store object (several cores in one process) hear each other's publishes,
// never their own, and stop hearing once unsubscribed.
TEST_P(ServerStoreConformance, PublishReachesOtherSubscribersOfOneStore) {
  Heard a, b;
  uint64_t ia = store_->Subscribe(a.Fn());
  uint64_t ib = store_->Subscribe(b.Fn());
  ASSERT_NE(ia, ib);
  StoreEvents ev;
  ev.heads.push_back({"s", 3});
  ev.left.push_back({"s", "leaver"});
  store_->Publish(ev, ia);
  ASSERT_TRUE(b.WaitFor([](const auto& got) { return HasHead(got, "s", 3); }));
  ASSERT_EQ(b.Copy().size(), 1u);
  ASSERT_EQ(b.Copy()[0].left.size(), 1u);
  EXPECT_EQ(b.Copy()[0].left[0].user, "leaver");
  store_->Unsubscribe(ib);
  StoreEvents again;
  again.heads.push_back({"s", 4});
  store_->Publish(again, 0);  // from no subscriber: everyone left hears it
  ASSERT_TRUE(a.WaitFor([](const auto& got) { return HasHead(got, "s", 4); }));
  EXPECT_EQ(a.Copy().size(), 1u);  // not its own first publish
  EXPECT_EQ(b.Copy().size(), 1u);  // unsubscribed
  store_->Unsubscribe(ia);
}

TEST_P(ServerStoreConformance, LargePublishArrivesWhole) {
  if (!GetParam().multi_writer) GTEST_SKIP() << "one instance per store";
  std::shared_ptr<ServerStore> other = Open();
  ASSERT_NE(other, nullptr);
  Heard theirs;
  uint64_t them = other->Subscribe(theirs.Fn());
  StoreEvents big;
  for (int i = 0; i < 1000; ++i)
    big.heads.push_back({"stream-with-a-long-name-" + std::to_string(i), uint64_t(i + 1)});
  store_->Publish(big, 0);
  // Every head arrives, or a lost marker says to re-read.
  ASSERT_TRUE(theirs.WaitFor([&](const std::vector<StoreEvents>& ev) {
    std::set<std::string> streams;
    for (const auto& e : ev) {
      if (e.lost) return true;
      for (const auto& h : e.heads) streams.insert(h.stream);
    }
    return streams.size() == big.heads.size();
  }));
  other->Unsubscribe(them);
}

INSTANTIATE_TEST_SUITE_P(ServerStores, ServerStoreConformance, testing::ValuesIn(ServerStoreBackends()),
                         [](const testing::TestParamInfo<ServerStoreBackend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace outpost
