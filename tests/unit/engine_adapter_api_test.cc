// Copyright 2026 The Outpost Authors.
//
// The engine API that makes adapters cheap (issue 16): change events that carry what changed, forward reads
// (Since), member lists kept by the engine (Members), following the user's membership feed
// (ClientOptions::follow_memberships) and connection events (SubscribeConnection). Real Clients and a
// Server on the in-process transport, on the cluster's manual clock: every wait is a bounded number of
// rounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost {
namespace {

std::vector<std::string> Payloads(const std::vector<OpInfo>& ops) {
  std::vector<std::string> out;
  for (const OpInfo& op : ops) out.push_back(op.payload);
  return out;
}

// Every change a device saw, in delivery order.
struct Recorder {
  std::vector<Change> all;
  // The last change of `kind` about `id` (nullopt when none).
  std::optional<Change> Last(Change::Kind kind, const OpId& id) const {
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (it->kind == kind && it->op_id == id) return *it;
    }
    return std::nullopt;
  }
  std::optional<Change> LastOf(Change::Kind kind, const std::string& stream) const {
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (it->kind == kind && it->stream == stream) return *it;
    }
    return std::nullopt;
  }
};

class AdapterApiTest : public testing::Test {
 protected:
  explicit AdapterApiTest(bool membership = false) : membership_(membership) {}

  void SetUp() override {
    ServerOptions so;
    so.membership = membership_;
    so.authorize = harness::RefusePayload("forbidden");
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  Client& Device(const std::string& user, const std::string& device, bool follow_memberships = false) {
    ClientOptions o = cluster_.DeviceOptions(user, device);
    o.follow_memberships = follow_memberships;
    return cluster_.Add(std::move(o));
  }
  bool Until(const std::function<bool()>& condition) { return cluster_.StepUntil(condition, 2000); }
  static OpInfo Op(Client& c, const OpId& id) {
    auto op = c.Get(id);
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    return op.ok() ? std::move(op).value() : OpInfo{};
  }
  static bool Followed(Client& c, const std::string& stream) {
    auto streams = c.Streams();
    if (!streams.ok()) return false;
    for (const StreamInfo& s : *streams) {
      if (s.stream == stream) return s.followed;
    }
    return false;
  }

  const bool membership_;
  harness::Cluster cluster_{{.name = "adapter-api", .clock_seed = 11}};
};

class MembersApiTest : public AdapterApiTest {
 protected:
  MembersApiTest() : AdapterApiTest(/*membership=*/true) {}
};

// ---- change events ----

TEST_F(AdapterApiTest, ChangesCarryWhatChangedForEveryKind) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "tablet");
  Recorder rec;
  alice.Subscribe("", [&](const std::vector<Change>& changes) {
    rec.all.insert(rec.all.end(), changes.begin(), changes.end());
  });

  // Own submit: added, pending, own, no seq yet.
  OpId hi = alice.Submit("chat", "text", "hi").value();
  const std::optional<Change> added = rec.Last(Change::Kind::kAdded, hi);
  ASSERT_TRUE(added.has_value()) << "delivered before Submit returned";
  EXPECT_EQ(added->stream, "chat");
  EXPECT_EQ(added->op_kind, "text");
  EXPECT_EQ(added->state, OpState::kPending);
  EXPECT_TRUE(added->own);
  EXPECT_EQ(added->seq, 0u);

  // Its ack: updated to sent at seq 1, and the cursor moved over it.
  ASSERT_TRUE(Until([&] { return rec.Last(Change::Kind::kUpdated, hi) != std::nullopt; }));
  const std::optional<Change> sent = rec.Last(Change::Kind::kUpdated, hi);
  EXPECT_EQ(sent->state, OpState::kSent);
  EXPECT_EQ(sent->seq, 1u);
  EXPECT_EQ(sent->op_kind, "text");
  EXPECT_TRUE(sent->own);
  ASSERT_TRUE(Until([&] { return rec.LastOf(Change::Kind::kCursor, "chat") != std::nullopt; }));
  EXPECT_EQ(rec.LastOf(Change::Kind::kCursor, "chat")->seq, 1u);
  EXPECT_TRUE(rec.LastOf(Change::Kind::kCursor, "chat")->op_id.IsNil());

  // Another device's op merged: added, sent, not own, at its seq; the cursor follows.
  ASSERT_TRUE(bob.Follow("chat").ok());
  OpId yo = bob.Submit("chat", "reaction", "yo").value();
  ASSERT_TRUE(Until([&] { return rec.Last(Change::Kind::kAdded, yo) != std::nullopt; }));
  const std::optional<Change> merged = rec.Last(Change::Kind::kAdded, yo);
  EXPECT_EQ(merged->stream, "chat");
  EXPECT_EQ(merged->op_kind, "reaction");
  EXPECT_EQ(merged->state, OpState::kSent);
  EXPECT_FALSE(merged->own);
  EXPECT_EQ(merged->seq, 2u);
  ASSERT_TRUE(Until([&] {
    const std::optional<Change> c = rec.LastOf(Change::Kind::kCursor, "chat");
    return c != std::nullopt && c->seq == 2;
  }));

  // Watermarks: whose, which and how far.
  ASSERT_TRUE(bob.MarkRead("chat", 2).ok());
  auto has_mark = [&](WatermarkKind kind, uint64_t seq) {
    for (const Change& c : rec.all) {
      if (c.kind == Change::Kind::kWatermark && c.stream == "chat" && c.user == "bob" &&
          c.device == "tablet" && c.watermark == kind && c.seq == seq) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(
      Until([&] { return has_mark(WatermarkKind::kDelivered, 2) && has_mark(WatermarkKind::kRead, 2); }));

  // A rejection: updated to failed. Retry: pending again (and failed again). Discard: removed, as it was.
  OpId bad = alice.Submit("chat", "text", "forbidden").value();
  auto failed = [&] {
    const std::optional<Change> c = rec.Last(Change::Kind::kUpdated, bad);
    return c != std::nullopt && c->state == OpState::kFailed;
  };
  ASSERT_TRUE(Until(failed));
  EXPECT_EQ(rec.Last(Change::Kind::kUpdated, bad)->op_kind, "text");
  EXPECT_EQ(rec.Last(Change::Kind::kUpdated, bad)->seq, 0u);
  const size_t before_retry = rec.all.size();
  ASSERT_TRUE(alice.Retry(bad).ok());
  ASSERT_GT(rec.all.size(), before_retry) << "delivered before Retry returned";
  EXPECT_EQ(rec.all[before_retry].kind, Change::Kind::kUpdated);
  EXPECT_EQ(rec.all[before_retry].op_id, bad);
  EXPECT_EQ(rec.all[before_retry].state, OpState::kPending);
  EXPECT_TRUE(rec.all[before_retry].own);
  ASSERT_TRUE(Until(failed));
  ASSERT_TRUE(alice.Discard(bad).ok());
  const std::optional<Change> removed = rec.Last(Change::Kind::kRemoved, bad);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->stream, "chat");
  EXPECT_EQ(removed->op_kind, "text");
  EXPECT_EQ(removed->state, OpState::kFailed);
  EXPECT_TRUE(removed->own);

  // Every op event agrees with what Get says now (for ops still there), and no watermark field leaks into
  // op events.
  for (const Change& c : rec.all) {
    if (c.kind == Change::Kind::kWatermark) continue;
    EXPECT_TRUE(c.user.empty() && c.device.empty());
    if (c.kind == Change::Kind::kCursor) {
      EXPECT_TRUE(c.op_kind.empty());
    }
  }
  OpInfo last = Op(alice, yo);
  EXPECT_EQ(last.kind, merged->op_kind);
  EXPECT_EQ(last.seq, merged->seq);
}

TEST_F(AdapterApiTest, AStreamSubscriptionGetsOnlyItsStreamsEvents) {
  Client& alice = Device("alice", "phone");
  std::vector<Change> mine;
  alice.Subscribe("a", [&](const std::vector<Change>& changes) {
    mine.insert(mine.end(), changes.begin(), changes.end());
  });
  ASSERT_TRUE(alice.Submit("a", "k", "1").ok());
  ASSERT_TRUE(alice.Submit("b", "k", "2").ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ASSERT_FALSE(mine.empty());
  for (const Change& c : mine) EXPECT_EQ(c.stream, "a");
}

// ---- Since ----

TEST_F(AdapterApiTest, SincePagesForwardOverSentThenUnsentOps) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "tablet");
  ASSERT_TRUE(alice.Follow("s").ok());
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(alice.Submit("s", "k", "a" + std::to_string(i)).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(bob.Submit("s", "k", "b" + std::to_string(i)).ok());
  ASSERT_TRUE(Until([&] { return alice.Cursor("s").value() == 8; }));
  alice.SetOnline(false);
  cluster_.Pump(3);
  ASSERT_TRUE(alice.Submit("s", "k", "u1").ok());
  ASSERT_TRUE(alice.Submit("s", "k", "u2").ok());

  auto page = alice.Since("s", 0, 3).value();
  EXPECT_EQ(Payloads(page), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(page.back().seq, 3u);
  page = alice.Since("s", 3, 3).value();
  EXPECT_EQ(Payloads(page), (std::vector<std::string>{"a4", "a5", "b1"}));
  page = alice.Since("s", 6, 3).value();
  EXPECT_EQ(Payloads(page), (std::vector<std::string>{"b2", "b3", "u1"}));
  EXPECT_EQ(page[2].state, OpState::kPending);
  EXPECT_EQ(page[2].seq, 0u);
  // Reading on from the page's last sent op: the unsent ops, fewer than n: the end.
  page = alice.Since("s", 8, 3).value();
  EXPECT_EQ(Payloads(page), (std::vector<std::string>{"u1", "u2"}));
  // A page's ops carry their positions, so Before works from them.
  auto before = alice.Before("s", page[0].position, 1).value();
  EXPECT_EQ(Payloads(before), (std::vector<std::string>{"b3"}));
  // Beyond every sent op: the unsent ones only.
  EXPECT_EQ(Payloads(alice.Since("s", 1000, 10).value()), (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(Payloads(alice.Since("s", UINT64_MAX, 10).value()), (std::vector<std::string>{"u1", "u2"}));
  EXPECT_TRUE(alice.Since("s", 0, 0).value().empty());
  EXPECT_TRUE(alice.Since("none", 0, 10).value().empty());
  EXPECT_EQ(alice.Since("", 0, 10).status().code(), Status::Code::kInvalidArgument);

  // After the sync and a merge: the unsent ops are sent at 9 and 10, another device's op follows at 11.
  alice.SetOnline(true);
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ASSERT_TRUE(bob.Submit("s", "k", "b4").ok());
  ASSERT_TRUE(Until([&] { return alice.Cursor("s").value() == 11; }));
  page = alice.Since("s", 8, 10).value();
  EXPECT_EQ(Payloads(page), (std::vector<std::string>{"u1", "u2", "b4"}));
  for (size_t i = 0; i < page.size(); ++i) {
    EXPECT_EQ(page[i].state, OpState::kSent);
    EXPECT_EQ(page[i].seq, 9 + i);
  }
  // A fold over the whole stream in pages of 4 sees every op once, in seq order.
  std::vector<std::string> fold;
  uint64_t after = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto p = alice.Since("s", after, 4).value();
    for (const OpInfo& op : p) fold.push_back(op.payload);
    if (p.size() < 4) break;
    after = p.back().seq;
  }
  EXPECT_EQ(fold,
            (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3", "u1", "u2", "b4"}));
}

// ---- Members ----

TEST_F(MembersApiTest, MembersFollowsTheRuleAndIsUpdatedBySubmitsAndMerges) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "tablet");
  using Names = std::vector<std::string>;
  EXPECT_EQ(alice.Members("conv").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(alice.Members("").status().code(), Status::Code::kInvalidArgument);

  // A stream being created: this device's latest unsent members op.
  alice.SetOnline(false);
  cluster_.Pump(2);
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  EXPECT_EQ(alice.Members("conv").value(), (Names{"alice", "bob"}));
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob", "carol"})).ok());
  EXPECT_EQ(alice.Members("conv").value(), (Names{"alice", "bob", "carol"}));
  // Sent: the latest sent one.
  alice.SetOnline(true);
  ASSERT_TRUE(cluster_.StepUntilIdle());
  EXPECT_EQ(alice.Members("conv").value(), (Names{"alice", "bob", "carol"}));
  // An unsent one does not count while a sent one exists.
  alice.SetOnline(false);
  cluster_.Pump(2);
  OpId solo = alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice"})).value();
  EXPECT_EQ(alice.Members("conv").value(), (Names{"alice", "bob", "carol"}));
  ASSERT_TRUE(alice.Discard(solo).ok());

  // Another member's members op, merged.
  alice.SetOnline(true);
  ASSERT_TRUE(bob.Follow("conv").ok());
  ASSERT_TRUE(Until([&] { return bob.Cursor("conv").value() == 2; }));
  EXPECT_EQ(bob.Members("conv").value(), (Names{"alice", "bob", "carol"}));
  ASSERT_TRUE(bob.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob", "dave"})).ok());
  ASSERT_TRUE(Until([&] { return alice.Members("conv").value() == Names{"alice", "bob", "dave"}; }));
  ASSERT_TRUE(cluster_.StepUntilIdle());
  EXPECT_EQ(bob.Members("conv").value(), (Names{"alice", "bob", "dave"}));

  // A device that opens again finds the same by one scan.
  Client& again = cluster_.ReopenDevice(alice);
  EXPECT_EQ(again.Members("conv").value(), (Names{"alice", "bob", "dave"}));
}

TEST_F(MembersApiTest, DiscardedAndFailedMembersOpsDoNotCount) {
  Client& alice = Device("alice", "phone");
  Client& carol = Device("carol", "phone");
  using Names = std::vector<std::string>;
  alice.SetOnline(false);
  cluster_.Pump(2);
  OpId first = alice.Submit("new", std::string(kMembersKind), EncodeMembers({"alice", "x"})).value();
  OpId second = alice.Submit("new", std::string(kMembersKind), EncodeMembers({"alice", "y"})).value();
  EXPECT_EQ(alice.Members("new").value(), (Names{"alice", "y"}));
  ASSERT_TRUE(alice.Discard(second).ok());
  EXPECT_EQ(alice.Members("new").value(), (Names{"alice", "x"}));
  ASSERT_TRUE(alice.Discard(first).ok());
  EXPECT_EQ(alice.Members("new").status().code(), Status::Code::kNotFound);

  // carol is no member of alice's stream: her members op is refused, and then no longer counts.
  alice.SetOnline(true);
  ASSERT_TRUE(alice.Submit("room", std::string(kMembersKind), EncodeMembers({"alice"})).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  OpId grab = carol.Submit("room", std::string(kMembersKind), EncodeMembers({"carol"})).value();
  EXPECT_EQ(carol.Members("room").value(), (Names{"carol"}));
  ASSERT_TRUE(Until([&] { return Op(carol, grab).state == OpState::kFailed; }));
  EXPECT_EQ(carol.Members("room").status().code(), Status::Code::kNotFound);
  // Retried, it counts again while pending.
  carol.SetOnline(false);
  cluster_.Pump(2);
  ASSERT_TRUE(carol.Retry(grab).ok());
  EXPECT_EQ(carol.Members("room").value(), (Names{"carol"}));
  EXPECT_EQ(alice.Members("room").value(), (Names{"alice"}));
}

// ---- follow_memberships ----

TEST_F(MembersApiTest, FollowMembershipsFollowsJoinedStreamsAcrossARestart) {
  Client& alice = Device("alice", "phone");
  Client* bob = &Device("bob", "tablet", /*follow_memberships=*/true);
  EXPECT_TRUE(Followed(*bob, FeedStream("bob")));

  ASSERT_TRUE(alice.Submit("one", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  ASSERT_TRUE(alice.Submit("one", "text", "hello").ok());
  ASSERT_TRUE(Until([&] { return bob->Cursor("one").value() == 2; }));
  EXPECT_TRUE(Followed(*bob, "one"));
  EXPECT_EQ(Payloads(bob->Since("one", 0, 10).value()).back(), "hello");

  // A restart right after the join merged, before the joined stream was pulled: it is followed already.
  ASSERT_TRUE(alice.Submit("two", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  ASSERT_TRUE(alice.Submit("two", "text", "again").ok());
  ASSERT_TRUE(Until([&] { return alice.Stats().outbox_depth == 0; }));
  // Step bob alone, round by round, until the feed's second join is merged.
  ASSERT_TRUE(harness::StepUntil([&] { return bob->Cursor(FeedStream("bob")).value() >= 2; },
                                 [&] {
                                   cluster_.clock().AdvanceMs(10);
                                   (void)cluster_.server().Step();
                                   (void)bob->Step();
                                 },
                                 200));
  bob = &cluster_.ReopenDevice(*bob);
  EXPECT_TRUE(Followed(*bob, "two")) << "followed in the transaction that merged the join";
  ASSERT_TRUE(Until([&] { return bob->Cursor("two").value() == 2; }));
  EXPECT_EQ(Payloads(bob->Since("two", 0, 10).value()).back(), "again");
  // Joins that came while it was closed.
  cluster_.CrashDevice(*bob);
  ASSERT_TRUE(alice.Submit("three", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  bob = &Device("bob", "tablet", /*follow_memberships=*/true);
  ASSERT_TRUE(Until([&] { return bob->Cursor("three").value() == 1; }));
  EXPECT_EQ(bob->Members("three").value(), (std::vector<std::string>{"alice", "bob"}));
}

TEST_F(MembersApiTest, AJoinedStreamWithAnIdThisDeviceRefusesIsSkipped) {
  Client& alice = Device("alice", "phone");
  ClientOptions o = cluster_.DeviceOptions("carol", "phone");
  o.follow_memberships = true;
  o.stream_id_bytes_max = 8;  // the server takes longer ids
  Client& carol = cluster_.Add(std::move(o));
  const std::string long_id = "a-conversation-with-a-long-id";
  ASSERT_TRUE(alice.Submit(long_id, std::string(kMembersKind), EncodeMembers({"alice", "carol"})).ok());
  ASSERT_TRUE(alice.Submit("short", std::string(kMembersKind), EncodeMembers({"alice", "carol"})).ok());
  ASSERT_TRUE(Until([&] { return carol.Cursor("short").value() == 1; }));
  EXPECT_EQ(carol.Cursor(FeedStream("carol")).value(), 2u) << "both joins merged";
  EXPECT_FALSE(Followed(carol, long_id));
  EXPECT_EQ(carol.Stats().store_errors, 0u);
  EXPECT_EQ(carol.Stats().bad_frames, 0u);
}

TEST_F(MembersApiTest, TurningFollowMembershipsOnFollowsJoinsMergedBefore) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "tablet");
  ASSERT_TRUE(bob.Follow(FeedStream("bob")).ok());  // an app that followed the feed itself
  ASSERT_TRUE(alice.Submit("old", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  ASSERT_TRUE(Until([&] { return bob.Cursor(FeedStream("bob")).value() == 1; }));
  EXPECT_FALSE(Followed(bob, "old"));
  cluster_.CrashDevice(bob);
  Client& again = Device("bob", "tablet", /*follow_memberships=*/true);
  EXPECT_TRUE(Followed(again, "old"));
  ASSERT_TRUE(Until([&] { return again.Cursor("old").value() == 1; }));
}

TEST_F(AdapterApiTest, FollowMembershipsNeedsAUser) {
  ClientOptions o;
  o.store = "memory:adapter-api-no-user";
  o.follow_memberships = true;
  EXPECT_EQ(Client::Open(o).status().code(), Status::Code::kInvalidArgument);
}

// ---- connection events ----

class ConnectionEventsTest : public testing::Test {
 protected:
  void SetUp() override {
    cluster_.AddUser("alice", "good");
    Status st = cluster_.StartServer();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ClientOptions Options(const std::string& device = "phone") {
    ClientOptions o = cluster_.DeviceOptions("alice", device);
    o.reconnect_cap_ms = 50;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 50;
    return o;
  }
  bool Until(const std::function<bool()>& condition) { return cluster_.StepUntil(condition, 2000); }
  static bool Has(const std::vector<ConnectionEvent>& events, ConnectionState state) {
    return std::any_of(events.begin(), events.end(),
                       [&](const ConnectionEvent& e) { return e.state == state; });
  }

  harness::Cluster cluster_{{.name = "adapter-api-conn", .clock_seed = 5}};
};

TEST_F(ConnectionEventsTest, OnlineOfflineAndBackAndTheFirstEventIsTheState) {
  Client& c = cluster_.Add(Options());
  EXPECT_EQ(c.connection().state, ConnectionState::kOffline);
  std::vector<ConnectionEvent> events;
  c.SubscribeConnection([&](const ConnectionEvent& e) { events.push_back(e); });
  EXPECT_TRUE(events.empty()) << "never delivered from inside SubscribeConnection";
  ASSERT_TRUE(Until([&] { return c.connection().state == ConnectionState::kOnline; }));
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0].state, ConnectionState::kOffline);
  EXPECT_EQ(events[1].state, ConnectionState::kConnecting);
  EXPECT_EQ(events[2].state, ConnectionState::kOnline);
  EXPECT_TRUE(events[2].reason.empty());

  // A late subscriber's first event is the state now.
  std::vector<ConnectionEvent> late;
  c.SubscribeConnection([&](const ConnectionEvent& e) { late.push_back(e); });
  cluster_.Pump(1);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].state, ConnectionState::kOnline);

  // SetOnline(false): offline, saying so, with no retry due.
  events.clear();
  c.SetOnline(false);
  cluster_.Pump(3);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, ConnectionState::kOffline);
  EXPECT_NE(events.back().reason.find("SetOnline(false)"), std::string::npos) << events.back().reason;
  EXPECT_EQ(events.back().retry_at_ms, 0);
  EXPECT_EQ(c.connection().reason, events.back().reason);
  EXPECT_FALSE(Has(events, ConnectionState::kConnecting));
  c.SetOnline(true);
  ASSERT_TRUE(Until([&] { return !events.empty() && events.back().state == ConnectionState::kOnline; }));
  EXPECT_EQ(late.back().state, ConnectionState::kOnline);

  // A lost connection: offline with a reason and a retry time, then back.
  events.clear();
  c.Disconnect();
  cluster_.Pump(1, 1);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].state, ConnectionState::kOffline);
  EXPECT_FALSE(events[0].reason.empty());
  EXPECT_GE(events[0].retry_at_ms, cluster_.clock().NowMs() - 1);
  ASSERT_TRUE(Until([&] { return events.back().state == ConnectionState::kOnline; }));
}

TEST_F(ConnectionEventsTest, ADownServerIsOfflineAWrongTokenIsAuthFailed) {
  // A down server: connecting, then offline with why and when the next attempt is due.
  cluster_.StopServer();
  Client& c = cluster_.Add(Options());
  std::vector<ConnectionEvent> events;
  c.SubscribeConnection([&](const ConnectionEvent& e) { events.push_back(e); });
  for (int i = 0; i < 30; ++i) {
    cluster_.clock().AdvanceMs(10);
    ASSERT_TRUE(c.Step().ok());
  }
  ASSERT_TRUE(Has(events, ConnectionState::kConnecting));
  EXPECT_FALSE(Has(events, ConnectionState::kOnline));
  EXPECT_FALSE(Has(events, ConnectionState::kAuthFailed));
  const ConnectionEvent& down = events.back();
  EXPECT_EQ(down.state, ConnectionState::kOffline);
  EXPECT_FALSE(down.reason.empty());
  EXPECT_GT(down.retry_at_ms, 0);
  // Up again: online.
  ASSERT_TRUE(cluster_.StartServer().ok());
  ASSERT_TRUE(Until([&] { return events.back().state == ConnectionState::kOnline; }));

  // A wrong token: refused, and no more attempts until SetToken.
  ClientOptions o = Options("laptop");
  o.token = "wrong";
  Client& w = cluster_.Add(o);
  std::vector<ConnectionEvent> wrong;
  w.SubscribeConnection([&](const ConnectionEvent& e) { wrong.push_back(e); });
  ASSERT_TRUE(Until([&] { return w.connection().state == ConnectionState::kAuthFailed; }));
  cluster_.Pump(20);
  EXPECT_EQ(wrong.back().state, ConnectionState::kAuthFailed);
  EXPECT_NE(wrong.back().reason.find("authentication failed"), std::string::npos) << wrong.back().reason;
  EXPECT_EQ(wrong.back().retry_at_ms, 0);
  EXPECT_FALSE(Has(wrong, ConnectionState::kOnline));
  const size_t attempts = static_cast<size_t>(std::count_if(
      wrong.begin(), wrong.end(), [](const auto& e) { return e.state == ConnectionState::kConnecting; }));
  EXPECT_EQ(attempts, 1u);
  w.SetToken("good");
  ASSERT_TRUE(Until([&] { return wrong.back().state == ConnectionState::kOnline; }));
}

TEST_F(ConnectionEventsTest, NoServerConfiguredIsOfflineSayingSo) {
  ClientOptions o;
  o.store = "memory:adapter-api-conn-none";
  o.user = "alice";
  auto c = Client::Open(o).value();
  EXPECT_EQ(c->connection().state, ConnectionState::kOffline);
  EXPECT_EQ(c->connection().reason, "no server configured");
  std::vector<ConnectionEvent> events;
  c->SubscribeConnection([&](const ConnectionEvent& e) { events.push_back(e); });
  ASSERT_TRUE(c->Step().ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, "no server configured");
}

TEST_F(ConnectionEventsTest, UnsubscribeStopsConnectionAndChangeCallbacks) {
  Client& c = cluster_.Add(Options());
  int connection_calls = 0, change_calls = 0, kept = 0;
  uint64_t conn = c.SubscribeConnection([&](const ConnectionEvent&) { ++connection_calls; });
  uint64_t changes = c.Subscribe("", [&](const std::vector<Change>&) { ++change_calls; });
  c.SubscribeConnection([&](const ConnectionEvent&) { ++kept; });
  EXPECT_NE(conn, changes);
  // Unsubscribed before its first event was delivered: no call at all.
  c.Unsubscribe(conn);
  ASSERT_TRUE(Until([&] { return c.connection().state == ConnectionState::kOnline; }));
  EXPECT_EQ(connection_calls, 0);
  EXPECT_GE(kept, 3);
  ASSERT_TRUE(c.Submit("s", "k", "x").ok());
  EXPECT_GT(change_calls, 0);
  c.Unsubscribe(changes);
  const int changes_before = change_calls, kept_before = kept;
  ASSERT_TRUE(c.Submit("s", "k", "y").ok());
  c.Disconnect();
  ASSERT_TRUE(Until([&] { return c.connection().state == ConnectionState::kOnline && kept > kept_before; }));
  EXPECT_EQ(change_calls, changes_before);
  EXPECT_EQ(connection_calls, 0);
}

}  // namespace
}  // namespace outpost
