// Copyright 2026 The Outpost Authors.
//
// Several real `outpostd` processes on one real PostgreSQL database (issue 13): each device connects to
// "its" instance and lists the others for failover; concurrent senders on every instance write into one
// stream; one instance is killed with SIGKILL in the middle of the burst. Every op must be applied exactly
// once, seqs must be gap-free, every device must converge on one order, and a live push must cross
// instances (a device hears of an op applied on another instance without reconnecting).
//
// The database comes from the ctest fixture (tools/pg-cluster; see tests/CMakeLists.txt), or
// OUTPOST_TEST_PG_URI; each test makes and drops a database of its own.
#include <signal.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "conformance/server_store_backends.h"
#include "e2e/e2e_fixture.h"
#include "e2e/e2e_util.h"
#include "outpost/membership.h"

namespace outpost::e2e {
namespace {

class InstancesE2ETest : public testing::Test {
 protected:
  void SetUp() override {
    std::string skip = PgTestSkipReason();
    if (!skip.empty()) GTEST_SKIP() << skip;
    const std::string unique = testing::UnitTest::GetInstance()->current_test_info()->name();
    auto uri = CreatePgTestDatabase("e2e_" + unique);
    ASSERT_TRUE(uri.ok()) << uri.status().ToString();
    uri_ = *uri;
    RunResult migrated = RunOutpostd({"migrate", "--store", uri_});
    ASSERT_EQ(migrated.exit_code, 0) << migrated.err;
  }

  void TearDown() override {
    if (HasFailure()) {
      for (size_t i = 0; i < daemons_.size(); ++i) {
        std::cerr << "---- outpostd " << i << " log ----\n" << daemons_[i]->Log() << "----\n";
      }
    }
    devices_.clear();
    daemons_.clear();
    if (!uri_.empty()) DropPgTestDatabase(uri_);
  }

  // Starts `n` instances on the database, each with a --data directory of its own.
  void StartInstances(int n) {
    for (int i = 0; i < n; ++i) {
      daemons_.push_back(std::make_unique<Daemon>());
      const std::string data = dir_ / ("instance-" + std::to_string(i));
      std::filesystem::create_directories(data);
      std::string error;
      ASSERT_TRUE(daemons_.back()->Start(data, "tcp://127.0.0.1:0", {"--store", uri_}, &error)) << error;
    }
  }

  // A token for `user`'s device `device`, issued from any host: the users live in the database.
  std::string Token(const std::string& user, const std::string& device) {
    RunResult r = RunOutpostd({"add-user", "--store", uri_, user, "--device", device});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
    return r.out;
  }

  // A device of `user` that connects to instance `first` and fails over to the others in turn.
  Client& OpenOn(const std::string& user, size_t first) {
    std::string servers;
    for (size_t k = 0; k < daemons_.size(); ++k) {
      if (!servers.empty()) servers += ",";
      servers += daemons_[(first + k) % daemons_.size()]->endpoint();
    }
    DeviceOptions o;
    o.user = user;
    o.device = "phone";
    o.token = Token(user, "phone");
    o.server = servers;
    std::filesystem::create_directories(dir_ / user);
    devices_.push_back(OpenDevice(dir_ / user, o));
    EXPECT_NE(devices_.back(), nullptr);
    return *devices_.back();
  }

  TempDir dir_;
  std::string uri_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
  std::vector<std::unique_ptr<Client>> devices_;
};

TEST_F(InstancesE2ETest, EveryOpOnceAcrossThreeInstancesAndAKill) {
  StartInstances(3);
  const std::vector<std::string> users = {"alice", "bob", "carol"};
  std::vector<Client*> devices;
  for (size_t i = 0; i < users.size(); ++i) devices.push_back(&OpenOn(users[i], i));
  for (Client* d : devices) ASSERT_TRUE(WaitFor([d] { return d->Stats().connected; }, kWaitMs));

  // alice (instance 0) creates the room; bob and carol follow it.
  const std::string room = "room";
  auto created = devices[0]->Submit(room, kMembersKind, EncodeMembers(users));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return devices[0]->Get(*created)->state == OpState::kSent; }, kWaitMs));
  for (Client* d : devices) ASSERT_TRUE(d->Follow(room).ok());
  for (Client* d : devices) ASSERT_TRUE(WaitFor([&] { return CaughtUp(*d, room, 1); }, kWaitMs));

  // A live push crosses instances: bob's op, applied on instance 1, reaches alice on instance 0 and carol
  // on instance 2 without either reconnecting.
  const uint64_t alice_connects = devices[0]->Stats().connects;
  const uint64_t carol_connects = devices[2]->Stats().connects;
  auto hello = devices[1]->Submit(room, "text", "hello from instance 1");
  ASSERT_TRUE(hello.ok());
  for (Client* d : {devices[0], devices[2]}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          auto op = d->Get(*hello);
          return op.ok() && op->state == OpState::kSent;
        },
        kWaitMs))
        << "the op applied on instance 1 never reached a device on another instance";
  }
  EXPECT_EQ(devices[0]->Stats().connects, alice_connects);
  EXPECT_EQ(devices[2]->Stats().connects, carol_connects);

  // The burst: every device writes at once; carol's instance dies with SIGKILL once some of her ops are in.
  constexpr int kOps = 200;
  std::vector<std::vector<OpId>> sent(devices.size());
  for (int n = 0; n < kOps; ++n) {
    for (size_t i = 0; i < devices.size(); ++i) {
      auto id = devices[i]->Submit(room, "text", users[i] + " " + std::to_string(n));
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      sent[i].push_back(*id);
    }
    if (n == kOps / 4) {
      // Some of carol's ops reached instance 2 before it dies (others are in flight or still queued).
      ASSERT_TRUE(WaitFor([&] { return devices[2]->Get(sent[2][0])->state == OpState::kSent; }, kWaitMs));
      daemons_[2]->Signal(SIGKILL);
      EXPECT_EQ(daemons_[2]->WaitExit(10'000), -1);
    }
  }

  // Everyone converges: 2 + 3 * kOps ops, seqs 1.. with no gap, each op once, one order everywhere.
  const uint64_t total = 2 + 3 * kOps;
  for (Client* d : devices) {
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*d, room, total); }, kLongWaitMs))
        << d->user() << " at " << CursorOf(*d, room) << " of " << total << "; "
        << d->Stats().last_connection_error;
  }
  const std::vector<std::string> order = ViewIds(*devices[0], room);
  ASSERT_EQ(order.size(), total);
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), total) << "an op shows twice";
  for (Client* d : devices) EXPECT_EQ(ViewIds(*d, room), order) << d->user() << " sees another order";
  auto latest = devices[1]->Latest(room, total);
  ASSERT_TRUE(latest.ok());
  for (size_t k = 0; k < latest->size(); ++k) {
    ASSERT_EQ((*latest)[k].seq, k + 1) << "seqs are not 1.." << total << " without gaps";
  }
  // Per-device order: each device's ops got seqs in its submit order.
  for (size_t i = 0; i < devices.size(); ++i) {
    uint64_t last = 0;
    for (const OpId& id : sent[i]) {
      auto op = devices[i]->Get(id);
      ASSERT_TRUE(op.ok());
      ASSERT_EQ(op->state, OpState::kSent);
      EXPECT_GT(op->seq, last) << users[i] << "'s ops out of submit order";
      last = op->seq;
    }
  }
  // carol failed over, and the instances that lived tell the same story.
  EXPECT_GT(devices[2]->Stats().connects, carol_connects);
  EXPECT_TRUE(daemons_[0]->Alive());
  EXPECT_TRUE(daemons_[1]->Alive());
}

TEST_F(InstancesE2ETest, AnInstanceRefusesWhatItCannotCommitAndDevicesMoveOn) {
  // Two instances; instance 0's database connections are cut (the database is told to end them). Devices
  // on it get a retryable answer, never an ack for what was not committed, and everything ends applied
  // once, through whichever instance can commit.
  StartInstances(2);
  Client& alice = OpenOn("alice", 0);
  Client& bob = OpenOn("bob", 1);
  ASSERT_TRUE(WaitFor([&] { return alice.Stats().connected && bob.Stats().connected; }, kWaitMs));
  auto created = alice.Submit("pair", kMembersKind, EncodeMembers({"alice", "bob"}));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(WaitFor([&] { return alice.Get(*created)->state == OpState::kSent; }, kWaitMs));
  ASSERT_TRUE(bob.Follow("pair").ok());
  // Every backend of this database but ours is terminated: both instances lose their connections at
  // once, mid-stream, and must reconnect on their own.
  std::vector<OpId> ids;
  for (int n = 0; n < 100; ++n) {
    auto a = alice.Submit("pair", "text", "a" + std::to_string(n));
    auto b = bob.Submit("pair", "text", "b" + std::to_string(n));
    ASSERT_TRUE(a.ok() && b.ok());
    ids.push_back(*a);
    ids.push_back(*b);
    if (n == 30) {
      ASSERT_TRUE(PgTestExec(uri_,
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                      .ok());
    }
  }
  const uint64_t total = 1 + ids.size();
  for (Client* d : {&alice, &bob}) {
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*d, "pair", total); }, kLongWaitMs))
        << d->user() << " at " << CursorOf(*d, "pair") << " of " << total << "; "
        << d->Stats().last_connection_error;
  }
  EXPECT_EQ(ViewIds(alice, "pair"), ViewIds(bob, "pair"));
  std::set<uint64_t> seqs;
  for (const OpId& id : ids) {
    auto op = alice.Get(id);
    ASSERT_TRUE(op.ok());
    ASSERT_EQ(op->state, OpState::kSent);
    EXPECT_TRUE(seqs.insert(op->seq).second) << "two ops at seq " << op->seq;
  }
  EXPECT_TRUE(daemons_[0]->Alive());
  EXPECT_TRUE(daemons_[1]->Alive());
  // The cut was felt: at least one instance failed a group (and said resend) rather than ack it.
  EXPECT_TRUE(WaitFor(
      [&] { return daemons_[0]->StatsField("commit_errors") + daemons_[1]->StatsField("commit_errors") > 0; },
      kWaitMs));
}

}  // namespace
}  // namespace outpost::e2e
