// Copyright 2026 The Outpost Authors.
//
// A server that lost part of what it had (issue 19; client/rebase.h, docs/lifecycle.md): its store put back
// from an earlier copy, by `outpostd restore` (a new incarnation) or by hand (none), under traffic. Devices
// must neither wedge nor diverge: each author's ops end up once on the server and in every view, in one
// order, and nothing stays pending. Also the protocol range: a device outside it is told once.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "testing/cluster.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kStream = "room";

class RestoreTest : public testing::Test {
 protected:
  RestoreTest() : cluster_({.name = "restore", .server_store = "lmdb"}) {}

  void SetUp() override { ASSERT_TRUE(cluster_.StartServer().ok()); }

  // The server store's directory (lmdb:DIR).
  fs::path StoreDir() const {
    const std::string& uri = cluster_.server_store_uri();
    return fs::path(uri.substr(uri.find(':') + 1));
  }
  // A copy of the server store as it is now (the server is stopped meanwhile).
  fs::path Snapshot(const std::string& name) {
    cluster_.StopServer();
    fs::path to = fs::path(cluster_.dir().path()) / name;
    fs::copy(StoreDir(), to, fs::copy_options::recursive);
    EXPECT_TRUE(cluster_.StartServer().ok());
    return to;
  }
  // Puts `snapshot` back in place of the server store; `incarnation`: as `outpostd restore` does.
  void Restore(const fs::path& snapshot, bool incarnation) {
    cluster_.StopServer();
    fs::remove_all(StoreDir());
    fs::copy(snapshot, StoreDir(), fs::copy_options::recursive);
    if (incarnation) {
      auto id = NewIncarnation(cluster_.server_store_uri());
      ASSERT_TRUE(id.ok()) << id.status().ToString();
    }
    ASSERT_TRUE(cluster_.StartServer().ok());
  }

  // Steps until each of `devices` is idle (the others may be offline).
  bool Settle(const std::vector<Client*>& devices) {
    return cluster_.StepUntil([&] {
      for (Client* c : devices) {
        if (!c->IsIdle()) return false;
      }
      return true;
    });
  }

  void Send(Client& c, const std::string& text) { ASSERT_TRUE(c.Submit(kStream, "text", text).ok()); }

  // The stream as the device holds it: (seq, payload) of sent ops; pending ops have seq 0.
  std::vector<std::pair<uint64_t, std::string>> View(Client& c) {
    auto ops = c.Since(kStream, 0, 10'000);
    EXPECT_TRUE(ops.ok()) << ops.status().ToString();
    std::vector<std::pair<uint64_t, std::string>> out;
    if (ops.ok()) {
      for (const OpInfo& op : *ops) out.emplace_back(op.state == OpState::kSent ? op.seq : 0, op.payload);
    }
    return out;
  }

  // Every device holds the same gapless order with every payload in `expected` exactly once.
  void ExpectConverged(const std::vector<Client*>& devices, const std::set<std::string>& expected) {
    std::vector<std::pair<uint64_t, std::string>> first;
    for (Client* c : devices) {
      auto view = View(*c);
      std::multiset<std::string> payloads;
      for (size_t i = 0; i < view.size(); ++i) {
        EXPECT_EQ(view[i].first, i + 1) << c->device() << " at " << i << ": " << view[i].second;
        payloads.insert(view[i].second);
      }
      EXPECT_EQ(payloads, std::multiset<std::string>(expected.begin(), expected.end())) << c->device();
      if (c == devices.front()) {
        first = view;
      } else {
        EXPECT_EQ(view, first) << c->device() << " differs from " << devices.front()->device();
      }
      ClientStats s = c->Stats();
      EXPECT_EQ(s.outbox_depth, 0u) << c->device();
      EXPECT_EQ(s.failed, 0u) << c->device();
    }
  }

  harness::Cluster cluster_;
};

// The story of the issue: a backup, more traffic, the backup put back by `outpostd restore`. The devices
// send again what the server lost, in one order everywhere.
TEST_F(RestoreTest, RestoredServerGetsEveryAuthorsOpsBackOnce) {
  Client& alice = cluster_.AddDevice("alice", "phone");
  Client& bob = cluster_.AddDevice("bob", "laptop");
  Send(alice, "a1");
  Send(bob, "b1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  const fs::path snapshot = Snapshot("backup");
  Send(alice, "a2");
  Send(alice, "a3");
  Send(bob, "b2");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ASSERT_EQ(View(alice).size(), 5u);
  ASSERT_EQ(View(bob).size(), 5u);

  Restore(snapshot, /*incarnation=*/true);
  Send(bob, "b3");  // new traffic right after the restore
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ExpectConverged({&alice, &bob}, {"a1", "b1", "a2", "a3", "b2", "b3"});
  for (Client* c : {&alice, &bob}) {
    ClientStats s = c->Stats();
    EXPECT_GE(s.rebases, 1u) << c->device();
    EXPECT_EQ(s.ops_lost, 0u) << c->device() << ": every lost op was sent again by its author";
  }
  EXPECT_EQ(alice.Stats().ops_requeued, 2u);  // a2, a3
  EXPECT_EQ(bob.Stats().ops_requeued, 1u);    // b2

  // A device that joins afterwards sees the same order.
  Client& carol = cluster_.AddDevice("alice", "tablet");
  ASSERT_TRUE(carol.Follow(kStream).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ExpectConverged({&alice, &bob, &carol}, {"a1", "b1", "a2", "a3", "b2", "b3"});
}

// Two restores in a row, a device offline through both: the bases of every restore it missed apply.
TEST_F(RestoreTest, DeviceAwayDuringTwoRestores) {
  Client& alice = cluster_.AddDevice("alice", "phone");
  Client& bob = cluster_.AddDevice("bob", "laptop");
  Send(alice, "a1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  const fs::path first = Snapshot("first");
  Send(alice, "a2");
  Send(bob, "b1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  alice.SetOnline(false);
  Restore(first, true);  // bob alone rebases: b1 back
  ASSERT_TRUE(cluster_.StepUntil([&] { return bob.Stats().rebases > 0; }));
  ASSERT_TRUE(Settle({&bob}));
  Send(bob, "b2");
  ASSERT_TRUE(Settle({&bob}));
  const fs::path second = Snapshot("second");
  Send(bob, "b3");
  ASSERT_TRUE(Settle({&bob}));
  Restore(second, true);
  alice.SetOnline(true);
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ExpectConverged({&alice, &bob}, {"a1", "a2", "b1", "b2", "b3"});
}

// A store put back by hand (no new incarnation), then traffic from another device before this one comes
// back: its view agrees with the server's high seq, yet holds other ops there. Its own ops that the server
// no longer counts give it away (a Gap the outbox cannot fill): it rebases below them.
TEST_F(RestoreTest, CopyPutBackByHandIsFoundByTheDevicesOwnOps) {
  Client& alice = cluster_.AddDevice("alice", "phone");
  Client& bob = cluster_.AddDevice("bob", "laptop");
  Send(alice, "a1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  const fs::path snapshot = Snapshot("by-hand");
  Send(alice, "a2");
  Send(alice, "a3");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  alice.SetOnline(false);
  Restore(snapshot, /*incarnation=*/false);
  // bob's cursor (3) is above the server's high seq (1): he rebases and sends two ops, seqs 2 and 3.
  Send(bob, "b1");
  Send(bob, "b2");
  ASSERT_TRUE(Settle({&bob}));
  alice.SetOnline(true);
  Send(alice, "a4");  // counter 4 while the server's last is 1: Gap, and the outbox holds no 2 or 3
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ExpectConverged({&alice, &bob}, {"a1", "a2", "a3", "a4", "b1", "b2"});
  EXPECT_EQ(alice.Stats().ops_lost, 0u);
  EXPECT_GE(alice.Stats().rebases, 1u);
  EXPECT_EQ(alice.Stats().ops_requeued, 2u);  // a2, a3
}

// Ops by an author whose device is gone are lost for good: counted, not shown as if they were there.
TEST_F(RestoreTest, OpsNoDeviceHoldsAreCountedLost) {
  Client& alice = cluster_.AddDevice("alice", "phone");
  Client& bob = cluster_.AddDevice("bob", "laptop");
  ASSERT_TRUE(alice.Follow(kStream).ok());
  Send(bob, "b1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  const fs::path snapshot = Snapshot("backup");
  Send(bob, "b2");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ASSERT_EQ(View(alice).size(), 2u);
  bob.SetOnline(false);  // bob's laptop is away
  Restore(snapshot, true);
  ASSERT_TRUE(cluster_.StepUntil([&] { return alice.Stats().rebases > 0; }));
  ASSERT_TRUE(Settle({&alice}));
  auto view = View(alice);
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view[0].second, "b1");
  EXPECT_EQ(alice.Stats().ops_lost, 1u);
  EXPECT_EQ(alice.Stats().ops_set_aside, 1u);
  // bob comes back: b2 returns, and alice's count of lost ops goes back to 0.
  bob.SetOnline(true);
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ExpectConverged({&alice, &bob}, {"b1", "b2"});
  EXPECT_EQ(alice.Stats().ops_lost, 0u);
}

// Receipts and the read position come down with the rebase: a watermark never speaks of an op that is no
// longer where it was.
TEST_F(RestoreTest, ReceiptsAndReadPositionComeDown) {
  Client& alice = cluster_.AddDevice("alice", "phone");
  Client& bob = cluster_.AddDevice("bob", "laptop");
  Send(alice, "a1");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  const fs::path snapshot = Snapshot("backup");
  Send(bob, "b1");
  Send(bob, "b2");
  ASSERT_TRUE(cluster_.StepUntilIdle());
  ASSERT_TRUE(alice.MarkRead(kStream, 3).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  bob.SetOnline(false);
  Restore(snapshot, true);
  ASSERT_TRUE(cluster_.StepUntil([&] { return alice.Stats().rebases > 0; }));
  ASSERT_TRUE(Settle({&alice}));
  auto cursor = alice.Cursor(kStream);
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(*cursor, 1u);
  auto wms = alice.Watermarks(kStream);
  ASSERT_TRUE(wms.ok());
  for (const Watermark& w : *wms) EXPECT_LE(w.seq, 1u) << w.user << "/" << w.device;
}

// A device whose protocol version the server no longer serves is told once, and does not reconnect until
// the application asks; its pending ops stay pending.
TEST(ProtocolRangeTest, UpgradeRequiredOnceNotALoop) {
  harness::Cluster cluster({.name = "protocol-range"});
  ServerOptions so;
  so.protocol_min = 3;
  ASSERT_TRUE(cluster.StartServer(so).ok());
  ClientOptions o = cluster.DeviceOptions("alice", "old-phone");
  o.protocol_version = 2;
  Client& old = cluster.Add(o);
  ASSERT_TRUE(old.Submit(kStream, "text", "hello").ok());
  ASSERT_TRUE(cluster.StepUntil([&] { return old.Stats().upgrade_required; }));
  cluster.Pump(200, 100);  // 20 s of backoff time: no reconnect
  ClientStats s = old.Stats();
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.connection, ConnectionState::kUpgradeRequired);
  EXPECT_EQ(s.outbox_depth, 1u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_NE(s.last_connection_error.find("upgrade required"), std::string::npos) << s.last_connection_error;
  EXPECT_EQ(cluster.server().Stats().upgrades_required, 1u);
  Status run = old.RunUntilIdle(1000);
  EXPECT_EQ(run.code(), Status::Code::kFailedPrecondition) << run.ToString();
  // The app asks again: one more try (still refused).
  old.SetOnline(true);
  cluster.Pump(20, 100);
  EXPECT_EQ(old.Stats().connects, 2u);

  // A current device is served, and so is one speaking the oldest version a default server serves.
  Client& current = cluster.AddDevice("alice", "phone");
  ASSERT_TRUE(current.Submit(kStream, "text", "hi").ok());
  ASSERT_TRUE(cluster.StepUntil([&] { return current.Stats().outbox_depth == 0; }));
}

TEST(ProtocolRangeTest, OlderDeviceIsAnsweredInItsOwnVersion) {
  harness::Cluster cluster({.name = "protocol-v2"});
  ASSERT_TRUE(cluster.StartServer().ok());
  ClientOptions o = cluster.DeviceOptions("alice", "old-phone");
  o.protocol_version = 2;
  Client& old = cluster.Add(o);
  Client& current = cluster.AddDevice("bob", "phone");
  ASSERT_TRUE(old.Submit(kStream, "text", "from v2").ok());
  ASSERT_TRUE(current.Submit(kStream, "text", "from v3").ok());
  ASSERT_TRUE(cluster.StepUntilIdle());
  auto a = old.Since(kStream, 0, 10);
  auto b = current.Since(kStream, 0, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), 2u);
  ASSERT_EQ(b->size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ((*a)[i].op_id, (*b)[i].op_id);
  EXPECT_FALSE(old.Stats().upgrade_required);
}

TEST(ProtocolRangeTest, OptionsOutsideTheBuildsVersionsAreRefused) {
  ServerOptions so;
  so.store = "memory:protocol-range-options";
  so.protocol_min = 99;
  EXPECT_EQ(ServerCore::Open(so).status().code(), Status::Code::kInvalidArgument);
  ClientOptions o;
  o.store = "memory:protocol-range-client";
  o.device = "d";
  o.protocol_version = 1;
  EXPECT_EQ(Client::Open(o).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace outpost
