// Copyright 2026 The Outpost Authors.
//
// The engine's metrics (issue 17, item 2): ServerStats' gauges, byte counters and histograms move with the
// traffic and stay consistent through a failed group; ServerCore::ActiveStreams orders streams by recency
// and keeps at most kActiveStreamsMax; ClientStats counts attempts and retries by reason under a faulty
// network and a failing server, times flushes and merges, and tells the connection state.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "outpost/client.h"
#include "outpost/env.h"
#include "outpost/server.h"
#include "outpost/transport.h"
#include "server/activity.h"
#include "testing/cluster.h"
#include "testing/flaky_storage.h"
#include "testing/server_frames.h"

namespace outpost {
namespace {

using frames::HelloFrame;
using frames::Id;
using frames::PushFrame;
using frames::TestOp;
using harness::FlakyStorage;

uint64_t Retries(const ClientStats& s) {
  return s.retries_timeout + s.retries_busy + s.retries_disconnect + s.retries_gap + s.retries_conflict +
         s.retries_other;
}

// ---- ServerCore, frame by frame ----

class ServerMetricsTest : public testing::Test {
 protected:
  void SetUp() override {
    static int run = 0;
    ServerOptions o;
    o.store = "memory:server-metrics-" + std::to_string(++run);
    o.env = &env_;
    o.authenticate = [](const HelloInfo& hello) -> Result<std::string> {
      if (hello.token == "bad") return Status::PermissionDenied("unknown token");
      return hello.user;
    };
    o.open_store = harness::FlakyOpener(&faults_);
    core_ = ServerCore::Open(o).value();
  }
  // Handles one group and adds up what went in and out, as the core should count it.
  std::vector<Outbound> Handle(std::vector<ServerEvent> events) {
    for (const auto& e : events) {
      if (e.kind == ServerEvent::Kind::kFrame) bytes_in_ += e.frame.size();
    }
    events_ += events.size();
    ++groups_;
    std::vector<Outbound> out;
    core_->Handle(events, &out);
    for (const auto& o : out) bytes_out_ += o.frame.size();
    return out;
  }
  static ServerEvent Frame(ConnId conn, std::string frame) {
    ServerEvent e;
    e.conn = conn;
    e.frame = std::move(frame);
    return e;
  }
  static ServerEvent Event(ServerEvent::Kind kind, ConnId conn) {
    ServerEvent e;
    e.kind = kind;
    e.conn = conn;
    return e;
  }
  void Connect(ConnId conn, const std::string& user, const std::string& device) {
    Handle({Event(ServerEvent::Kind::kOpen, conn)});
    Handle({Frame(conn, HelloFrame(user, device))});
  }
  // The stats every group must keep consistent with what the test handed the core.
  void ExpectConsistent(const ServerStats& s) {
    EXPECT_EQ(s.bytes_in, bytes_in_);
    EXPECT_EQ(s.bytes_out, bytes_out_);
    EXPECT_EQ(s.group_events.count, groups_);
    EXPECT_DOUBLE_EQ(s.group_events.sum, static_cast<double>(events_));
    EXPECT_EQ(s.commit_seconds.count, s.commits);
    EXPECT_EQ(s.group_events.counts.size(), s.group_events.upper_bounds.size() + 1);
  }

  ManualEnv env_{7};
  FlakyStorage::Faults faults_;
  std::unique_ptr<ServerCore> core_;
  uint64_t bytes_in_ = 0, bytes_out_ = 0, events_ = 0, groups_ = 0;
};

TEST_F(ServerMetricsTest, CountersGaugesAndHistogramsFollowTheTraffic) {
  ServerStats s = core_->Stats();
  EXPECT_EQ(s.devices_online, 0u);
  EXPECT_EQ(s.commit_seconds.count, 0u);
  EXPECT_EQ(s.commit_seconds.upper_bounds.size(), Histogram::Latency().upper_bounds.size());

  Handle({Event(ServerEvent::Kind::kOpen, 1)});
  s = core_->Stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.devices_online, 0u) << "open but not past Hello";
  EXPECT_EQ(s.commits, 0u) << "a group of only opens commits nothing";
  ExpectConsistent(s);

  Handle({Frame(1, HelloFrame("alice", "phone"))});
  Connect(2, "alice", "laptop");
  Connect(3, "bob", "phone");
  s = core_->Stats();
  EXPECT_EQ(s.devices_online, 3u);
  EXPECT_EQ(s.users_online, 2u);
  EXPECT_EQ(s.commits, 3u);
  ExpectConsistent(s);

  const uint64_t in_before = s.bytes_in, out_before = s.bytes_out;
  Handle({Frame(1, PushFrame({{Id(1), "room", 1}, {Id(2), "room", 2}, {Id(3), "room", 3}})),
          Frame(2, PushFrame({{Id(4), "room", 1}}))});
  s = core_->Stats();
  EXPECT_EQ(s.pushes, 2u);
  EXPECT_EQ(s.ops_applied, 4u);
  EXPECT_GT(s.bytes_in, in_before);
  EXPECT_GT(s.bytes_out, out_before);
  EXPECT_EQ(s.notify_fanout_seconds.count, 1u) << "one group moved a stream";
  EXPECT_EQ(s.group_events.counts[1], 1u) << "the two-event group is in the le=2 bucket";
  ExpectConsistent(s);

  // A duplicate is a verdict, not an op.
  Handle({Frame(1, PushFrame({{Id(1), "room", 1}}, 2))});
  s = core_->Stats();
  EXPECT_EQ(s.pushes, 3u);
  EXPECT_EQ(s.ops_applied, 4u);
  EXPECT_EQ(s.duplicates, 1u);
  EXPECT_EQ(s.notify_fanout_seconds.count, 1u) << "nothing moved: nothing fanned out";

  Handle({Event(ServerEvent::Kind::kClose, 1), Event(ServerEvent::Kind::kClose, 3)});
  s = core_->Stats();
  EXPECT_EQ(s.devices_online, 1u);
  EXPECT_EQ(s.users_online, 1u);
  EXPECT_EQ(s.connections, 1u);
  ExpectConsistent(s);
}

// Issue 17: an authentication failure is one event, counted once (it used to count as a bad frame too).
TEST_F(ServerMetricsTest, AnAuthenticationFailureIsCountedOnce) {
  Handle({Event(ServerEvent::Kind::kOpen, 1)});
  auto out = Handle({Frame(1, HelloFrame("alice", "phone", {}, codec::kProtocolVersion, "bad"))});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].close_after);
  const wire::Error* e = frames::Decoded(out[0])->body_as_Error();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(static_cast<Status::Code>(e->code()), Status::Code::kPermissionDenied);
  const ServerStats s = core_->Stats();
  EXPECT_EQ(s.auth_failures, 1u);
  EXPECT_EQ(s.bad_frames, 0u);
  EXPECT_EQ(s.devices_online, 0u);
  // A malformed frame is still a bad frame, and only that.
  Handle({Frame(1, "garbage")});
  EXPECT_EQ(core_->Stats().bad_frames, 1u);
  EXPECT_EQ(core_->Stats().auth_failures, 1u);
}

// A failed group undoes what it decided (ops, pushes, the Hello it took) but what arrived and left stays
// counted, and commit_seconds still counts only commits.
TEST_F(ServerMetricsTest, AFailedGroupKeepsTrafficAndUndoesItsVerdicts) {
  Connect(1, "alice", "phone");
  Handle({Frame(1, PushFrame({{Id(1), "room", 1}}))});
  const ServerStats before = core_->Stats();
  faults_.fail_commit = true;
  Handle({Event(ServerEvent::Kind::kOpen, 2), Frame(2, HelloFrame("bob", "phone")),
          Frame(1, PushFrame({{Id(2), "room", 2}}, 2))});
  faults_.fail_commit = false;
  ServerStats s = core_->Stats();
  EXPECT_EQ(s.commit_errors, before.commit_errors + 1);
  EXPECT_EQ(s.commits, before.commits);
  EXPECT_EQ(s.ops_applied, before.ops_applied);
  EXPECT_EQ(s.pushes, before.pushes);
  EXPECT_EQ(s.devices_online, 1u) << "bob's Hello was lost with the group";
  EXPECT_EQ(s.users_online, 1u);
  EXPECT_EQ(s.connections, 2u) << "his connection is still open";
  EXPECT_GT(s.bytes_in, before.bytes_in);
  ExpectConsistent(s);

  faults_.fail_begin = true;
  Handle({Frame(1, PushFrame({{Id(2), "room", 2}}, 3))});
  faults_.fail_begin = false;
  s = core_->Stats();
  EXPECT_EQ(s.commit_errors, before.commit_errors + 2);
  EXPECT_EQ(s.pushes, before.pushes);
  ExpectConsistent(s);

  Handle({Frame(2, HelloFrame("bob", "phone"))});
  Handle({Frame(1, PushFrame({{Id(2), "room", 2}}, 4))});
  s = core_->Stats();
  EXPECT_EQ(s.devices_online, 2u);
  EXPECT_EQ(s.ops_applied, before.ops_applied + 1);
  EXPECT_EQ(s.pushes, before.pushes + 1);
  ExpectConsistent(s);
}

TEST_F(ServerMetricsTest, ActiveStreamsAreMostRecentFirst) {
  Connect(1, "alice", "phone");
  EXPECT_TRUE(core_->ActiveStreams(10).empty());
  Handle({Frame(1, PushFrame({{Id(1), "a", 1}, {Id(2), "a", 2}}))});
  env_.AdvanceMs(1000);
  Handle({Frame(1, PushFrame({{Id(3), "b", 1}}, 2))});
  env_.AdvanceMs(1000);
  Handle({Frame(1, PushFrame({{Id(4), "c", 1}}, 3))});
  env_.AdvanceMs(1000);
  Handle({Frame(1, PushFrame({{Id(5), "a", 3}}, 4))});
  // A refused or duplicate op moves nothing.
  Handle({Frame(1, PushFrame({{Id(3), "b", 1}}, 5))});

  auto active = core_->ActiveStreams(10);
  ASSERT_EQ(active.size(), 3u);
  EXPECT_EQ(active[0].stream, "a");
  EXPECT_EQ(active[1].stream, "c");
  EXPECT_EQ(active[2].stream, "b");
  EXPECT_EQ(active[0].ops_applied, 3u);
  EXPECT_EQ(active[0].last_seq, 3u);
  EXPECT_EQ(active[0].last_applied_ms, env_.NowMs());
  EXPECT_EQ(active[2].last_applied_ms, env_.NowMs() - 2000);
  EXPECT_EQ(active[2].ops_applied, 1u);
  ASSERT_EQ(core_->ActiveStreams(1).size(), 1u);
  EXPECT_EQ(core_->ActiveStreams(1)[0].stream, "a");
  EXPECT_TRUE(core_->ActiveStreams(0).empty());

  // A failed group records nothing.
  faults_.fail_commit = true;
  Handle({Frame(1, PushFrame({{Id(6), "d", 1}}, 6))});
  faults_.fail_commit = false;
  EXPECT_EQ(core_->ActiveStreams(10).size(), 3u);
}

TEST_F(ServerMetricsTest, ActiveStreamsKeepAtMostTheBound) {
  Connect(1, "alice", "phone");
  std::vector<TestOp> first;
  for (int i = 0; i < 5; ++i)
    first.push_back({Id(static_cast<uint8_t>(i + 1)), "old-" + std::to_string(i), 1});
  Handle({Frame(1, PushFrame(first))});
  // kActiveStreamsMax newer streams, in batches below ops_per_batch_max.
  uint64_t batch = 2;
  for (size_t done = 0; done < kActiveStreamsMax;) {
    std::vector<TestOp> ops;
    for (; ops.size() < 1000 && done < kActiveStreamsMax; ++done) {
      TestOp op{OpId(), "new-" + std::to_string(done), 1};
      env_.RandomBytes(op.id.bytes.data(), op.id.bytes.size());
      op.id.bytes[0] |= 1;  // never nil
      ops.push_back(std::move(op));
    }
    Handle({Frame(1, PushFrame(ops, batch++))});
  }
  EXPECT_EQ(core_->Stats().ops_applied, 5 + kActiveStreamsMax);
  auto active = core_->ActiveStreams(SIZE_MAX);
  ASSERT_EQ(active.size(), kActiveStreamsMax);
  for (const auto& a : active) EXPECT_EQ(a.stream.rfind("old-", 0), std::string::npos) << a.stream;
}

TEST(StreamActivityTrackerTest, EvictsTheLeastRecentlyActive) {
  StreamActivityTracker t(3);
  t.Record("a", 1, 1, 10);
  t.Record("b", 1, 1, 20);
  t.Record("c", 1, 1, 30);
  t.Record("a", 2, 3, 40);  // a is the most recent now: b is the least
  t.Record("d", 1, 1, 50);
  EXPECT_EQ(t.size(), 3u);
  auto r = t.Recent(10);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].stream, "d");
  EXPECT_EQ(r[1].stream, "a");
  EXPECT_EQ(r[2].stream, "c");
  EXPECT_EQ(r[1].ops_applied, 3u);
  EXPECT_EQ(r[1].last_seq, 3u);
  EXPECT_EQ(r[1].last_applied_ms, 40);
  // An evicted stream starts again from nothing.
  t.Record("b", 1, 7, 60);
  r = t.Recent(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].stream, "b");
  EXPECT_EQ(r[0].ops_applied, 1u);
  EXPECT_EQ(t.size(), 3u);
  StreamActivityTracker none(0);
  none.Record("a", 1, 1, 1);
  EXPECT_EQ(none.size(), 0u);
}

// ---- Server and Client over the cluster ----

class ClusterMetricsTest : public testing::Test {
 protected:
  // Read by the server's store until the cluster closes it: declared first, destroyed last.
  FlakyStorage::Faults faults_;
  harness::Cluster cluster_{{.name = "metrics"}};
};

TEST_F(ClusterMetricsTest, DevicesOnlineAndActiveStreamsThroughTheServer) {
  ASSERT_TRUE(cluster_.StartServer().ok());
  Client& phone = cluster_.AddDevice("alice", "phone");
  Client& laptop = cluster_.AddDevice("bob", "laptop");
  ASSERT_TRUE(laptop.Follow("chat").ok());
  ASSERT_TRUE(cluster_.StepUntil([&] {
    return cluster_.server().Stats().devices_online == 2 && phone.Stats().connected &&
           laptop.Stats().connected;
  }));
  EXPECT_EQ(phone.Stats().connection, ConnectionState::kOnline);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(phone.Submit("chat", "text", "m" + std::to_string(i)).ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return laptop.Cursor("chat").value() == 10; }));

  ServerStats s = cluster_.server().Stats();
  EXPECT_EQ(s.ops_applied, 10u);
  EXPECT_GE(s.pushes, 1u);
  EXPECT_EQ(s.commit_seconds.count, s.commits);
  EXPECT_GE(s.notify_fanout_seconds.count, 1u);
  EXPECT_GT(s.bytes_in, 0u);
  EXPECT_GT(s.bytes_out, s.bytes_in) << "every op went out to the laptop as well";
  auto active = cluster_.server().ActiveStreams(5);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].stream, "chat");
  EXPECT_EQ(active[0].ops_applied, 10u);
  EXPECT_EQ(active[0].last_seq, 10u);

  ClientStats ls = laptop.Stats();
  EXPECT_GE(ls.merge_seconds.count, 1u) << "the laptop merged the phone's ops";
  ClientStats ps = phone.Stats();
  EXPECT_EQ(ps.attempts, 10u);
  EXPECT_EQ(Retries(ps), 0u);
  EXPECT_GE(ps.flush_seconds.count, 1u);
  EXPECT_LE(ps.flush_seconds.count, ps.batches_sent);

  cluster_.CrashDevice(laptop);
  ASSERT_TRUE(cluster_.StepUntil([&] { return cluster_.server().Stats().devices_online == 1; }));
  EXPECT_EQ(cluster_.server().Stats().users_online, 1u);
  phone.SetOnline(false);
  ASSERT_TRUE(cluster_.StepUntil([&] { return cluster_.server().Stats().devices_online == 0; }));
  EXPECT_EQ(phone.Stats().connection, ConnectionState::kOffline);
}

TEST_F(ClusterMetricsTest, AttemptsAndRetriesUnderAFaultyNetwork) {
  ASSERT_TRUE(cluster_.StartServer().ok());
  ClientOptions o = cluster_.DeviceOptions("alice", "phone");
  auto inner = NewDialer(cluster_.endpoint());
  ASSERT_TRUE(inner.ok());
  const FaultOptions faults{
      .drop = 0.15, .duplicate = 0.05, .delay = 0.1, .delay_ms_max = 300, .disconnect = 0.01};
  o.dialer = WrapFaulty(std::move(inner).value(), faults, cluster_.env(), 17);
  o.ops_per_batch_max = 4;  // many batches, so that many frames can be lost
  Client& phone = cluster_.Add(o);
  constexpr uint64_t kOps = 80;
  for (uint64_t i = 0; i < kOps; ++i) ASSERT_TRUE(phone.Submit("chat", "text", std::to_string(i)).ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return phone.Stats().outbox_depth == 0; }, 20'000))
      << phone.Stats().outbox_depth << " ops left";

  const ClientStats s = phone.Stats();
  EXPECT_GT(Retries(s), 0u) << "a lossy network makes the device resend";
  EXPECT_EQ(s.attempts, kOps + Retries(s)) << "every send is a first send or a counted resend";
  EXPECT_GE(s.ops_sent, s.attempts);
  EXPECT_GE(s.flush_seconds.count, 1u);
  EXPECT_LE(s.flush_seconds.count, s.batches_sent);
  EXPECT_EQ(cluster_.server().Stats().ops_applied, kOps);
}

TEST_F(ClusterMetricsTest, BusyAnswersCountAsBusyRetries) {
  ServerOptions so;
  so.open_store = [this](std::string_view uri,
                         const StorageOptions& opts) -> Result<std::unique_ptr<Storage>> {
    OUTPOST_ASSIGN_OR_RETURN(auto inner, OpenStorage(uri, opts));
    return std::unique_ptr<Storage>(new FlakyStorage(std::move(inner), &faults_));
  };
  ASSERT_TRUE(cluster_.StartServer(so).ok());
  Client& phone = cluster_.AddDevice("alice", "phone");
  ASSERT_TRUE(cluster_.StepUntil([&] { return phone.Stats().connected; }));
  faults_.fail_commit = true;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(phone.Submit("chat", "text", std::to_string(i)).ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return cluster_.server().Stats().commit_errors > 0; }));
  cluster_.Pump(5);
  faults_.fail_commit = false;
  ASSERT_TRUE(cluster_.StepUntil([&] { return phone.Stats().outbox_depth == 0; }, 5000));
  const ClientStats s = phone.Stats();
  EXPECT_GT(s.retries_busy, 0u);
  EXPECT_EQ(s.attempts, 5u + Retries(s));
  const ServerStats ss = cluster_.server().Stats();
  EXPECT_EQ(ss.ops_applied, 5u);
  EXPECT_EQ(ss.commit_seconds.count, ss.commits);
}

// Stats and ActiveStreams are read from another thread while the server's thread handles groups and the
// device syncs (TSan builds check that nothing races).
TEST(MetricsThreadsTest, StatsAreReadWhileTrafficFlows) {
  harness::Cluster cluster({.name = "metrics-threads", .manual_clock = false});
  ASSERT_TRUE(cluster.StartServer().ok());
  Client& phone = cluster.AddDevice("alice", "phone");
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      const ServerStats s = cluster.server().Stats();
      const auto active = cluster.server().ActiveStreams(8);
      const ClientStats c = phone.Stats();
      if (s.commit_seconds.count <= s.commits && active.size() <= 8 && c.attempts >= Retries(c)) ++reads;
      std::this_thread::yield();
    }
  });
  constexpr int kOps = 50;
  Status st;
  for (int i = 0; i < kOps && st.ok(); ++i) st = phone.Submit("chat", "text", std::to_string(i)).status();
  if (st.ok()) st = harness::Cluster::Sync(phone);
  done = true;
  reader.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(reads.load(), 0u);
  const ServerStats s = cluster.server().Stats();
  EXPECT_EQ(s.ops_applied, static_cast<uint64_t>(kOps));
  EXPECT_EQ(s.commit_seconds.count, s.commits);
  const auto active = cluster.server().ActiveStreams(8);
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].ops_applied, static_cast<uint64_t>(kOps));
  // A slow machine (TSan) may time out and resend: every send is still a first send or a counted resend.
  const ClientStats c = phone.Stats();
  EXPECT_EQ(c.attempts, kOps + Retries(c));
}

}  // namespace
}  // namespace outpost
