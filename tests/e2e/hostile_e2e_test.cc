// Copyright 2026 The Outpost Authors.
//
// Issue 12's bounded resources, against a real outpostd, from attackers that hold a valid account (or none):
// a member that pulls a big stream over and over and reads nothing, connections that never say Hello,
// and a member list of 150,000 names. Each attack runs while honest devices push, and each test checks
// what the server documents (docs/protocol.md "Limits", docs/design.md "Transport"): the attacker is
// paused then dropped, closed at the Hello deadline, or refused, and the others are served meanwhile.
#include <sys/types.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "codec.h"
#include "e2e/e2e_fixture.h"
#include "e2e/raw_peer.h"
#include "testing/server_frames.h"

namespace outpost::e2e {
namespace {

// VmRSS of `pid` in KiB (-1 when unreadable).
int64_t RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Open file descriptors of `pid` (-1 when unreadable).
int FdCount(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

class HostileE2E : public E2ETest {
 protected:
  // Submits one op and waits for its ack; the time it took, or -1 when it was not acked within
  // `timeout_ms` (failure details in `*why`). `pump` runs while waiting.
  static int64_t PushAndWait(Client& device, const std::string& stream, const std::string& payload,
                             int64_t timeout_ms, const std::function<void()>& pump, std::string* why) {
    const int64_t start = SteadyNowMs();
    auto id = device.Submit(stream, "text", payload);
    if (!id.ok()) {
      *why = id.status().ToString();
      return -1;
    }
    const bool answered = WaitFor(
        [&] {
          pump();
          auto op = device.Get(*id);
          return op.ok() && op->state != OpState::kPending;
        },
        timeout_ms);
    const int64_t took = SteadyNowMs() - start;
    auto op = device.Get(*id);
    if (!answered || !op.ok() || op->state != OpState::kSent) {
      *why = answered ? "op failed: " + (op.ok() ? op->last_error : op.status().ToString())
                      : "no ack; " + device.Stats().last_connection_error;
      return -1;
    }
    return took;
  }
};

// Honest devices' acks: generous, not a benchmark (the suite also runs under sanitizers on a loaded machine).
constexpr int64_t kAckMs = 5'000;
// How much outpostd's resident memory may grow while attacked. The unbounded server queued every page of
// every Pull: 2,000 Pulls of a 5,000-op stream reached 3.8 GB (325 MiB by the third wave). Under
// AddressSanitizer freed memory waits in a quarantine of 256 MiB and every block carries redzones.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRssGrowthMaxKiB = 1024 << 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int64_t kRssGrowthMaxKiB = 1024 << 10;
#else
constexpr int64_t kRssGrowthMaxKiB = 256 << 10;
#endif
#else
constexpr int64_t kRssGrowthMaxKiB = 256 << 10;
#endif

// A member pulls a 5,000-op stream (pages of 1,000 ops, ~600 KB) 2,000 times from seq 0 in waves and reads
// nothing, pinging all the while so that only the send budget can end it. The server sends at most one
// frame's worth of pages per connection per group; the transport pauses the connection at 8 MiB queued (its
// further Pulls are held) and drops it after heartbeat_timeout_ms (5 s) paused. Meanwhile another device's
// pushes are acked promptly and outpostd's memory stays bounded.
TEST_F(HostileE2E, SlowReaderIsPausedThenDroppedWhileOthersAreServed) {
  constexpr int kOps = 5'000, kWaves = 20, kPullsPerWave = 100;
  auto phone = AlicePhone();
  ASSERT_TRUE(phone);
  CreateStream(*phone, "big", {"alice"});
  std::vector<NewOp> seed;
  for (int i = 0; i < kOps; ++i) {
    // 200..800 bytes, different per op.
    seed.push_back({"big", "text", std::to_string(i) + std::string(200 + (i * 37) % 600, 'a' + i % 26), {}});
  }
  ASSERT_TRUE(phone->SubmitBatch(seed).ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*phone, "big", kOps + 1); }, kLongWaitMs))
      << CursorOf(*phone, "big") << " of " << kOps + 1 << "; " << phone->Stats().last_connection_error;
  // stats.json is written every second.
  ASSERT_TRUE(WaitFor([&] { return daemon_.StatsField("connections") == 1; }, kWaitMs))
      << daemon_.StatsJson();

  const pid_t pid = daemon_.pid();
  ASSERT_GT(pid, 0);
  const int64_t rss_before = RssKiB(pid);
  int64_t rss_max = rss_before;
  ZmqContext context;
  // Reads as little as ZeroMQ lets it: one message ahead, a small socket buffer.
  RawPeer attacker(context.get(), daemon_.endpoint(), {.rcv_hwm = 1, .rcv_buf = 4096});
  ASSERT_TRUE(attacker.Open(kWaitMs)) << "outpostd never accepted the raw DEALER";
  attacker.SendFrame(frames::HelloFrame("alice", "laptop", {}, codec::kProtocolVersion, alice_laptop_token_));
  std::string welcome;
  ASSERT_TRUE(attacker.ExpectFrame(wire::Body::Welcome, &welcome, kWaitMs)) << "no Welcome for the attacker";
  ASSERT_TRUE(WaitFor([&] { return daemon_.StatsField("connections") == 2; }, kWaitMs))
      << daemon_.StatsJson();

  auto pump = [&] {
    attacker.Keepalive();
    rss_max = std::max(rss_max, RssKiB(pid));
  };
  const std::string pull = codec::EncodePull("big", 0, 0);
  int64_t slowest_ack = 0;
  int pushed = 0;
  for (int wave = 0; wave < kWaves; ++wave) {
    for (int i = 0; i < kPullsPerWave; ++i) attacker.SendFrame(pull);
    // The ack also puts the next wave in a later server group than this one, most of the time.
    std::string why;
    const int64_t took = PushAndWait(*phone, "big", "honest " + std::to_string(++pushed), kAckMs, pump, &why);
    ASSERT_GE(took, 0) << "push during wave " << wave << ": " << why;
    slowest_ack = std::max(slowest_ack, took);
    ASSERT_LT(rss_max - rss_before, kRssGrowthMaxKiB) << "outpostd's RSS during wave " << wave << ": "
                                                      << rss_max << " KiB (before: " << rss_before << " KiB)";
  }
  // Paused since its queue reached the budget; dropped once paused for heartbeat_timeout_ms. Pushes go on.
  int64_t last_push = SteadyNowMs();
  std::string why;
  const bool dropped = WaitFor(
      [&] {
        pump();
        if (SteadyNowMs() - last_push >= 500) {
          const int64_t took =
              PushAndWait(*phone, "big", "honest " + std::to_string(++pushed), kAckMs, pump, &why);
          if (took < 0) return true;  // reported below
          slowest_ack = std::max(slowest_ack, took);
          last_push = SteadyNowMs();
        }
        return daemon_.StatsField("connections") == 1;
      },
      20'000);
  ASSERT_TRUE(why.empty()) << "push while the attacker was paused: " << why;
  EXPECT_TRUE(dropped) << "the pinging slow reader was never dropped; " << daemon_.StatsJson();
  // Dropped as slow (paused too long, or past twice its budget), not for silence: stats.json says so.
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("connections_dropped_slow") >= 1; }, kWaitMs))
      << daemon_.StatsJson();
  EXPECT_LT(rss_max - rss_before, kRssGrowthMaxKiB) << rss_max << " KiB; before: " << rss_before << " KiB";
  EXPECT_LE(slowest_ack, kAckMs);
  std::cerr << "[ slow reader ] " << kWaves * kPullsPerWave << " pulls; outpostd RSS " << rss_before
            << " KiB before, " << rss_max << " KiB at most; slowest of " << pushed << " acks " << slowest_ack
            << " ms\n";

  // The honest device is still served, and the stream holds everything it pushed.
  ASSERT_GE(PushAndWait(*phone, "big", "after", kAckMs, pump, &why), 0) << why;
  EXPECT_TRUE(WaitFor([&] { return CaughtUp(*phone, "big", kOps + 1 + pushed + 1); }, kWaitMs))
      << CursorOf(*phone, "big") << " of " << kOps + 1 + pushed + 1;
  EXPECT_TRUE(daemon_.Alive());
}

// Connections that open a transport session and ping but never send a Hello hold every slot of
// --connections-max 3: an honest device is refused. At hello_deadline_ms (10 s; outpostd has no flag for
// it) the server closes each with a fatal Error{Timeout}, the slots free, the honest device connects and
// syncs, and the server's descriptors come back (a peer that ignores the close is cut off after
// heartbeat_timeout_ms).
class HelloDeadlineE2E : public HostileE2E {
 protected:
  std::vector<std::string> ServerFlags() override { return {"--connections-max", "3"}; }
};

TEST_F(HelloDeadlineE2E, ConnectionsWithoutHelloAreClosedAndTheirSlotsFreed) {
  constexpr int kPeers = 3;
  const pid_t pid = daemon_.pid();
  ASSERT_GT(pid, 0);
  const int fds_before = FdCount(pid);
  ASSERT_GT(fds_before, 0);

  ZmqContext context;
  std::vector<std::unique_ptr<RawPeer>> squatters;
  for (int i = 0; i < kPeers; ++i) {
    // Not dialling again once cut off: a fresh TCP connection that never opens a session is another
    // matter (SilentTransportPeersAreCutOff).
    squatters.push_back(
        std::make_unique<RawPeer>(context.get(), daemon_.endpoint(), RawPeer::Options{.reconnect = false}));
    ASSERT_TRUE(squatters.back()->Open(kWaitMs)) << "squatter " << i;
  }
  const int64_t opened = SteadyNowMs();
  auto keepalive = [&] {
    for (auto& s : squatters) s->Keepalive();
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        keepalive();
        return daemon_.StatsField("connections") == kPeers;
      },
      kWaitMs))
      << daemon_.StatsJson();

  // The server is full: the honest device is turned away (and retries).
  auto bob = BobPhone();
  ASSERT_TRUE(bob);
  ASSERT_TRUE(WaitFor(
      [&] {
        keepalive();
        return daemon_.StatsField("connections_refused") >= 1;
      },
      kWaitMs))
      << daemon_.StatsJson();
  EXPECT_FALSE(bob->Stats().connected);

  // Each squatter hears why; none of them closes its end.
  std::vector<std::string> errors(kPeers);
  const bool told = WaitFor(
      [&] {
        bool all = true;
        for (int i = 0; i < kPeers; ++i) {
          if (errors[i].empty()) squatters[i]->TakeFrame(wire::Body::Error, &errors[i]);
          all = all && !errors[i].empty();
        }
        return all;
      },
      20'000);
  const int64_t closed_after = SteadyNowMs() - opened;
  ASSERT_TRUE(told) << "a squatter was never told to go; " << daemon_.StatsJson();
  for (const std::string& frame : errors) {
    const wire::Error* error = codec::DecodeFrame(frame, 1 << 30).value()->body_as_Error();
    EXPECT_EQ(static_cast<Status::Code>(error->code()), Status::Code::kTimeout);
    EXPECT_TRUE(error->fatal());
    EXPECT_NE(codec::Str(error->message()).find("hello_deadline_ms"), std::string_view::npos)
        << codec::Str(error->message());
  }
  EXPECT_GE(closed_after, 9'000) << "closed before the 10 s deadline";
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("hello_timeouts") == kPeers; }, kWaitMs))
      << daemon_.StatsJson();

  // The slots are free: the honest device connects and syncs.
  CreateStream(*bob, "after", {"bob"});
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "after", 1); }, kWaitMs))
      << bob->Stats().last_connection_error;
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("connections") == 1; }, kWaitMs))
      << daemon_.StatsJson();

  // The squatters' sockets are cut off (they never closed theirs): the descriptors come back, the honest
  // device's connection aside.
  int fds_now = -1;
  EXPECT_TRUE(WaitFor(
      [&] {
        fds_now = FdCount(pid);
        return fds_now >= 0 && fds_now <= fds_before + 1;
      },
      15'000))
      << "outpostd holds " << fds_now << " descriptors, " << fds_before << " before the squatters";
  std::cerr << "[ hello deadline ] closed " << closed_after << " ms after opening; descriptors " << fds_before
            << " before, " << fds_now << " after\n";
  EXPECT_TRUE(daemon_.Alive());
}

// A member list of 150,000 names (about 900 KB, under payload_bytes_max) is refused at once, permanently,
// naming members_max (10,000); a list repeating two users 150,000 times is a two-member list. Another
// device's push right after is acked promptly. (Without members_max, outpostd's registry would refuse the
// list at its first unknown name, not much later: what tells the limit is there is the reason.)
TEST_F(HostileE2E, MemberListBombIsRefusedPromptly) {
  auto phone = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(phone && bob);
  CreateStream(*bob, "bobs", {"bob"});

  constexpr int kNames = 150'000;
  std::string bomb = "alice\n";
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < kNames; ++i) {
    std::string name = "u";
    for (int n = i, k = 0; k < 4; ++k, n /= 36) name.push_back(kDigits[n % 36]);
    bomb += name + "\n";
  }
  ASSERT_LT(bomb.size(), size_t{1} << 20);
  const int64_t start = SteadyNowMs();
  auto id = phone->Submit("bomb", kMembersKind, bomb);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = phone->Get(*id);
        return op.ok() && op->state != OpState::kPending;
      },
      kAckMs))
      << "no answer to the member list bomb; " << phone->Stats().last_connection_error;
  const int64_t refused_ms = SteadyNowMs() - start;
  auto op = phone->Get(*id);
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->state, OpState::kFailed);
  EXPECT_EQ(op->last_error_code, Status::Code::kInvalidArgument) << op->last_error;
  EXPECT_NE(op->last_error.find("members_max"), std::string::npos) << op->last_error;
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("rejected") >= 1; }, kWaitMs)) << daemon_.StatsJson();

  std::string why;
  const int64_t bob_ack = PushAndWait(
      *bob, "bobs", "right after", kAckMs, [] {}, &why);
  EXPECT_GE(bob_ack, 0) << why;

  // Repeats count once: alice and bob 75,000 times each make a two-member stream, applied promptly.
  std::string repeats;
  for (int i = 0; i < kNames / 2; ++i) repeats += "alice\nbob\n";
  const int64_t repeats_start = SteadyNowMs();
  auto twice = phone->Submit("pair", kMembersKind, repeats);
  ASSERT_TRUE(twice.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto o = phone->Get(*twice);
        return o.ok() && o->state != OpState::kPending;
      },
      kAckMs))
      << "no answer to the repeated member list";
  const int64_t repeats_ms = SteadyNowMs() - repeats_start;
  EXPECT_EQ(phone->Get(*twice)->state, OpState::kSent) << phone->Get(*twice)->last_error;
  Discover(*bob, "bob", "pair");
  std::cerr << "[ members bomb ] refused in " << refused_ms << " ms; bob's push acked in " << bob_ack
            << " ms; the repeated list applied in " << repeats_ms << " ms\n";
  EXPECT_TRUE(daemon_.Alive());
}

// ZeroMQ peers that connect and never send the transport's 'O' are no connection to the server (no kOpen, no
// Hello deadline, not counted against --connections-max). The listener watches accepted sockets (ZeroMQ's
// socket monitor) and cuts off any that opens no session within the heartbeat timeout: else anyone who can
// reach the port, with no account, could hold one of outpostd's descriptors per TCP connection until
// RLIMIT_NOFILE is reached and nobody can connect (it did, before: 500 such peers held 500 descriptors).
TEST_F(HostileE2E, SilentTransportPeersAreCutOff) {
  constexpr int kPeers = 20;
  const pid_t pid = daemon_.pid();
  ASSERT_GT(pid, 0);
  const int fds_before = FdCount(pid);
  ZmqContext context;
  std::vector<std::unique_ptr<RawPeer>> silent;
  for (int i = 0; i < kPeers; ++i) {
    silent.push_back(
        std::make_unique<RawPeer>(context.get(), daemon_.endpoint(), RawPeer::Options{.reconnect = false}));
  }
  // The baseline moves by a descriptor or two on its own (the fixture's last device connection closing, a
  // stats.json being written), so both checks leave that much slack: 20 held descriptors still show.
  constexpr int kSlack = 2;
  int fds = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        fds = FdCount(pid);
        return fds >= fds_before + kPeers - kSlack;
      },
      kWaitMs))
      << "outpostd never accepted the TCP connections: " << fds << " descriptors, " << fds_before
      << " before";
  EXPECT_TRUE(WaitFor(
      [&] {
        fds = FdCount(pid);
        return fds <= fds_before + kSlack;
      },
      20'000))
      << "outpostd still holds " << fds << " descriptors, " << fds_before << " before " << kPeers
      << " peers that never opened a session";
  // The server is no worse for them: a device connects and syncs.
  auto bob = BobPhone();
  ASSERT_TRUE(bob);
  CreateStream(*bob, "after", {"bob"});
}

}  // namespace
}  // namespace outpost::e2e
