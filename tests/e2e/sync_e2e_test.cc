// Copyright 2026 The Outpost Authors.
//
// Devices syncing through a real outpostd over ZeroMQ tcp: convergence through membership feeds, offline
// work, and kill -9 of the server in the middle of a burst.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_fixture.h"

namespace outpost::e2e {
namespace {

// Every op of `device`'s view of `stream`: sent, seqs 1..n without gaps, each op id once.
void ExpectSettled(Client& device, const std::string& stream, size_t n) {
  auto ops = device.Latest(stream, n + 10);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), n) << device.user() << "/" << device.device();
  std::set<std::string> ids;
  for (size_t i = 0; i < ops->size(); ++i) {
    const OpInfo& op = (*ops)[i];
    EXPECT_EQ(op.state, OpState::kSent) << op.op_id.ToString() << " " << op.last_error;
    EXPECT_EQ(op.seq, i + 1);
    EXPECT_TRUE(ids.insert(op.op_id.ToString()).second) << "twice: " << op.op_id.ToString();
  }
}

TEST_F(E2ETest, ThreeDevicesOfTwoUsersConverge) {
  auto alice_phone = AlicePhone();
  auto alice_laptop = AliceLaptop();
  auto bob_phone = BobPhone();
  ASSERT_TRUE(alice_phone && alice_laptop && bob_phone);

  CreateStream(*alice_phone, "trip", {"alice", "bob"});
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(alice_phone->Submit("trip", "text", "alice " + std::to_string(i)).ok());
  Discover(*bob_phone, "bob", "trip");
  Discover(*alice_laptop, "alice", "trip");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bob_phone->Submit("trip", "text", "bob " + std::to_string(i)).ok());
  ASSERT_TRUE(alice_laptop->Submit("trip", "text", "from the laptop").ok());

  const size_t n = 1 + 5 + 3 + 1;
  for (Client* d : {alice_phone.get(), alice_laptop.get(), bob_phone.get()}) {
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*d, "trip", n); }, kWaitMs))
        << d->user() << "/" << d->device()
        << " stuck; last connection error: " << d->Stats().last_connection_error;
  }
  for (Client* d : {alice_phone.get(), alice_laptop.get(), bob_phone.get()}) ExpectSettled(*d, "trip", n);
  const auto ids = ViewIds(*alice_phone, "trip");
  EXPECT_EQ(ViewIds(*alice_laptop, "trip"), ids);
  EXPECT_EQ(ViewIds(*bob_phone, "trip"), ids);
  auto first = bob_phone->Latest("trip", n);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->front().kind, kMembersKind);
  EXPECT_EQ(first->front().user, "alice");
}

TEST_F(E2ETest, OfflineSubmitsAreDurableAndArriveAfterReconnect) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  CreateStream(*alice, "notes", {"alice", "bob"});
  Discover(*bob, "bob", "notes");
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "notes", 1); }, kWaitMs));

  // 1. The device goes offline.
  alice->SetOnline(false);
  ASSERT_TRUE(WaitFor([&] { return !alice->Stats().connected; }, kWaitMs));
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(alice->Submit("notes", "text", "offline " + std::to_string(i)).ok());
  auto outbox = alice->Outbox(100);
  ASSERT_TRUE(outbox.ok());
  EXPECT_EQ(outbox->size(), 20u);
  auto view = alice->Latest("notes", 100);
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->size(), 21u);  // visible at once, pending
  EXPECT_EQ(view->back().state, OpState::kPending);
  alice->SetOnline(true);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "notes", 21) && CaughtUp(*alice, "notes", 21); }, kWaitMs))
      << alice->Stats().last_connection_error;

  // 2. The server goes away (clean stop) and comes back on the same address.
  daemon_.Signal(SIGTERM);
  ASSERT_EQ(daemon_.WaitExit(kWaitMs), 0) << daemon_.Log();
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(alice->Submit("notes", "text", "server down " + std::to_string(i)).ok());
  EXPECT_EQ(alice->Stats().outbox_depth, 10u);
  std::string error;
  ASSERT_TRUE(daemon_.Restart(&error)) << error;
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "notes", 31) && CaughtUp(*alice, "notes", 31); }, kWaitMs))
      << "alice: " << alice->Stats().last_connection_error << "; bob: " << bob->Stats().last_connection_error;
  ExpectSettled(*bob, "notes", 31);
  EXPECT_EQ(ViewIds(*bob, "notes"), ViewIds(*alice, "notes"));
}

// An app follows streams right after Start(), while its Hello may still be in flight.
TEST_F(E2ETest, FollowDuringHandshakeIsNotLost) {
  auto alice = AlicePhone();
  ASSERT_TRUE(alice);
  CreateStream(*alice, "early", {"alice", "bob"});
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*alice, "early", 1); }, kWaitMs))
      << alice->Stats().last_connection_error;
  // Devices of bob follow at staggered moments after Start(), so that some land while the Hello is in
  // flight whatever the machine's speed. The offsets scan a timing window; nothing waits on them.
  const int offsets_ms[] = {0, 1, 2, 3, 5, 8, 13, 21};
  std::vector<std::unique_ptr<Client>> devices;
  for (int offset : offsets_ms) {
    const std::string device = "device-" + std::to_string(offset);
    auto d = Open("bob", device, AddDevice(data_, "bob", device));  // a token logs in as one device
    ASSERT_TRUE(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(offset));
    ASSERT_TRUE(d->Follow(FeedStream("bob")).ok());
    ASSERT_TRUE(d->Follow("early").ok());
    devices.push_back(std::move(d));
  }
  auto done = [](Client& d) { return CaughtUp(d, "early", 1) && CursorOf(d, FeedStream("bob")) >= 1; };
  (void)WaitFor(
      [&] {
        for (auto& d : devices) {
          if (!done(*d)) return false;
        }
        return true;
      },
      10'000);
  for (auto& d : devices) {
    EXPECT_TRUE(done(*d)) << d->device()
                          << ": a stream followed during the handshake was never pulled (cursor "
                          << CursorOf(*d, "early") << ", feed cursor " << CursorOf(*d, FeedStream("bob"))
                          << ")";
  }
}

// A device asked for a stream before its user was a member (refused: an empty page); once the feed says
// the user joined, following it must bring the stream's ops.
TEST_F(E2ETest, StreamFollowedBeforeJoiningArrivesAfterJoining) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  FollowConnected(*bob, "later");  // does not exist yet: forbidden
  ASSERT_TRUE(WaitFor([&] { return daemon_.StatsField("forbidden") >= 1; }, kWaitMs)) << daemon_.StatsJson();
  CreateStream(*alice, "later", {"alice", "bob"});
  ASSERT_TRUE(alice->Submit("later", "text", "you are in").ok());
  Discover(*bob, "bob", "later");
  EXPECT_TRUE(WaitFor([&] { return CaughtUp(*bob, "later", 2); }, 10'000))
      << "bob's device never pulled the stream it joined (cursor " << CursorOf(*bob, "later") << ")";
}

// Two devices submit a burst; the server is killed with SIGKILL partway and restarted on the same data.
// A third device then sees every op exactly once, each sender's ops in its submit order.
TEST_F(E2ETest, KillNineDuringBurstLosesAndDuplicatesNothing) {
  constexpr int kOpsPerDevice = 1500;
  constexpr int kChunk = 10;
  auto phone = AlicePhone();
  auto laptop = AliceLaptop();
  auto viewer = BobPhone();
  ASSERT_TRUE(phone && laptop && viewer);
  CreateStream(*phone, "burst", {"alice", "bob"});
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*phone, "burst", 1); }, kWaitMs))
      << phone->Stats().last_connection_error;
  FollowConnected(*laptop, "burst");
  Discover(*viewer, "bob", "burst");

  // Each sender submits the first half as a burst of small transactions; the second half only once the
  // server is dead, so those ops wait in the outbox for the restart.
  std::atomic<int> submitted[2] = {0, 0};
  std::vector<std::string> sent_ids[2];
  std::atomic<bool> failed{false}, killed{false};
  auto burst = [&](int who, Client* device) {
    for (int i = 0; i < kOpsPerDevice && !failed; i += kChunk) {
      if (i == kOpsPerDevice / 2 && !WaitFor([&] { return killed.load(); }, kLongWaitMs)) failed = true;
      std::vector<NewOp> chunk;
      for (int j = i; j < i + kChunk; ++j) {
        chunk.push_back({"burst", "text", device->device() + " " + std::to_string(j), {}});
      }
      auto ids = device->SubmitBatch(chunk);
      if (!ids.ok()) {
        failed = true;
        return;
      }
      for (const auto& id : *ids) sent_ids[who].push_back(id.ToString());
      submitted[who] += kChunk;
    }
  };
  std::thread t0(burst, 0, phone.get());
  std::thread t1(burst, 1, laptop.get());

  // Kill as soon as the server has acknowledged part of the burst, while the senders are still submitting.
  bool some_applied = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLongWaitMs);
       !some_applied && std::chrono::steady_clock::now() < deadline;) {
    const auto acked = [&](int who, Client* c) {
      return static_cast<int64_t>(submitted[who]) - static_cast<int64_t>(c->Stats().outbox_depth);
    };
    some_applied = acked(0, phone.get()) > 50 || acked(1, laptop.get()) > 50;
    if (!some_applied) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t unacked_at_kill = phone->Stats().outbox_depth + laptop->Stats().outbox_depth;
  daemon_.Signal(SIGKILL);
  const int exit_code = daemon_.WaitExit(kWaitMs);
  killed = true;
  t0.join();
  t1.join();
  std::string error;
  const bool restarted = daemon_.Restart(&error);
  ASSERT_TRUE(some_applied) << "the server applied nothing; phone: " << phone->Stats().last_connection_error;
  EXPECT_EQ(exit_code, -1);  // killed by the signal
  EXPECT_GT(unacked_at_kill, 0u) << "the burst was over before the kill";
  ASSERT_FALSE(failed) << "a SubmitBatch failed";
  ASSERT_EQ(submitted[0] + submitted[1], 2 * kOpsPerDevice);
  ASSERT_TRUE(restarted) << error;

  const uint64_t total = 1 + 2 * kOpsPerDevice;
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*viewer, "burst", total); }, kLongWaitMs))
      << "viewer cursor " << CursorOf(*viewer, "burst") << " of " << total << "; phone outbox "
      << phone->Stats().outbox_depth << ", laptop outbox " << laptop->Stats().outbox_depth;
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*phone, "burst", total) && CaughtUp(*laptop, "burst", total); },
                      kLongWaitMs));
  ExpectSettled(*viewer, "burst", total);

  auto ops = viewer->Latest("burst", total + 10);
  ASSERT_TRUE(ops.ok());
  std::map<std::string, std::vector<std::string>> by_device;
  std::map<std::string, uint64_t> last_counter;
  for (const auto& op : *ops) {
    if (op.kind != "text") continue;
    by_device[op.device].push_back(op.op_id.ToString());
    EXPECT_GT(op.device_counter, last_counter[op.device]) << "counter order broken on " << op.device;
    last_counter[op.device] = op.device_counter;
  }
  EXPECT_EQ(by_device["phone"], sent_ids[0]) << "the phone's ops are not all there once, in submit order";
  EXPECT_EQ(by_device["laptop"], sent_ids[1]) << "the laptop's ops are not all there once, in submit order";
  EXPECT_EQ(ViewIds(*phone, "burst"), ViewIds(*viewer, "burst"));
  EXPECT_EQ(ViewIds(*laptop, "burst"), ViewIds(*viewer, "burst"));
}

}  // namespace
}  // namespace outpost::e2e
