// Copyright 2026 The Outpost Authors.
//
// outpostd as a process under stress: hostile ZeroMQ peers, CURVE encryption, and a clean SIGTERM stop.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.h"
#include "e2e/raw_peer.h"
#include "testing/random.h"

namespace outpost::e2e {
namespace {

using harness::Rng;  // splitmix64: the same garbage on every platform

class HostileTest : public E2ETest {
 protected:
  // Gives the server a moment's chance to choke on what was just sent: its answer to a fresh connection's
  // 'O' comes after everything sent before it has been read.
  bool StillAlive() {
    void* context = zmq_ctx_new();
    bool accepted = false;
    {
      RawPeer probe(context, daemon_.endpoint());
      probe.Send({"O"});
      accepted = probe.Expect('A', 5'000);
    }
    zmq_ctx_term(context);
    return accepted && daemon_.Alive();
  }

  // A small protocol limit so that an oversize frame is cheap to send; the transport cap is above it.
  std::vector<std::string> ServerFlags() override { return {"--frame-bytes-max", "65536"}; }
};

TEST_F(HostileTest, GarbageFromRawZmqPeersNeitherCrashesNorDisturbsOthers) {
  const uint64_t seed = harness::TestSeed(0x5eed0e2e, "garbage");
  SCOPED_TRACE("garbage seed " + std::to_string(seed));
  Rng rng(seed);
  auto alice = AlicePhone();
  auto laptop = AliceLaptop();
  ASSERT_TRUE(alice && laptop);
  CreateStream(*alice, "calm", {"alice"});
  FollowConnected(*laptop, "calm");
  size_t sent = 1;
  auto healthy_round = [&] {
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(alice->Submit("calm", "text", "op " + std::to_string(sent++)).ok());
  };

  void* context = zmq_ctx_new();
  ASSERT_NE(context, nullptr);
  {
    // 1. No 'O' first: data, unknown types, empty and multi-part messages.
    RawPeer stranger(context, daemon_.endpoint());
    stranger.Send({""});
    stranger.Send({"D", rng.Bytes(100)});
    stranger.Send({"X"});
    stranger.Send({"OO"});
    stranger.Send({"O", "unexpected part"});
    for (int i = 0; i < 50; ++i) {
      std::vector<std::string> parts(1 + rng.Upto(4));
      for (auto& p : parts) p = rng.Bytes(rng.Upto(300));
      stranger.Send(parts);
    }
    healthy_round();
    ASSERT_TRUE(StillAlive()) << "outpostd died of messages sent before an 'O'";

    // 2. A proper transport session carrying garbage frames: each is refused with an Error frame.
    RawPeer talker(context, daemon_.endpoint());
    talker.Send({"O"});
    ASSERT_TRUE(talker.Expect('A', kWaitMs)) << "outpostd never accepted a raw DEALER";
    talker.Send({"D", ""});
    ASSERT_TRUE(StillAlive()) << "outpostd died of an empty frame";
    for (int i = 0; i < 200; ++i) {
      std::string frame = rng.Bytes(rng.Upto(2000));
      if (i % 4 == 0 && frame.size() >= 8) frame[0] = 8, frame[1] = frame[2] = frame[3] = 0;  // a root offset
      talker.Send({"D", frame});
      if (i % 20 == 19) {
        ASSERT_TRUE(StillAlive()) << "outpostd died of garbage frames " << i - 19 << ".." << i;
      }
    }
    EXPECT_TRUE(talker.Expect('D', kWaitMs)) << "no Error frame came back for garbage";
    talker.Send({"D", rng.Bytes(100 << 10)});  // over --frame-bytes-max, under the transport's cap
    ASSERT_TRUE(StillAlive()) << "outpostd died of a frame over --frame-bytes-max";
    talker.Send({"P"});
    talker.Send({"D", "a", "b"});
    healthy_round();
    ASSERT_TRUE(StillAlive()) << "outpostd died of a ping or a 3-part message";

    // 3. Over the transport's cap: ZeroMQ drops the connection before buffering it.
    RawPeer hog(context, daemon_.endpoint());
    hog.Send({"O"});
    ASSERT_TRUE(hog.Expect('A', kWaitMs));
    hog.Send({"D", std::string(1 << 20, 'x')});
    ASSERT_TRUE(StillAlive()) << "outpostd died of a message over the transport's cap";

    // 4. Many sessions opened and abandoned, some closed twice.
    for (int i = 0; i < 20; ++i) {
      RawPeer flash(context, daemon_.endpoint());
      flash.Send({"O"});
      flash.Send({"D", rng.Bytes(rng.Upto(64))});
      if (i % 2 == 0) flash.Send({"C"});
      if (i % 4 == 0) flash.Send({"C"});
    }
    healthy_round();
    ASSERT_TRUE(daemon_.Alive()) << "outpostd died";
  }
  zmq_ctx_term(context);
  // Every raw peer is gone without a word: the server notices by heartbeat silence (or a failed ping) and
  // forgets them, leaving the two healthy devices.
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("connections") == 2 || !daemon_.Alive(); }, kWaitMs))
      << daemon_.StatsJson();
  ASSERT_TRUE(daemon_.Alive()) << "outpostd died while dropping abandoned connections";

  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*laptop, "calm", sent); }, kWaitMs))
      << "laptop at " << CursorOf(*laptop, "calm") << " of " << sent << "; "
      << laptop->Stats().last_connection_error;
  EXPECT_EQ(ViewIds(*laptop, "calm"), ViewIds(*alice, "calm"));
  // A device connecting afterwards is served too.
  auto bob = BobPhone();
  ASSERT_TRUE(bob);
  CreateStream(*bob, "after", {"bob"});
  EXPECT_TRUE(WaitFor([&] { return CaughtUp(*bob, "after", 1); }, kWaitMs))
      << bob->Stats().last_connection_error;
  EXPECT_TRUE(daemon_.Alive());
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("bad_frames") >= 1; }, kWaitMs)) << daemon_.StatsJson();
}

class CurveTest : public E2ETest {
 protected:
  std::vector<std::string> ServerFlags() override {
    const std::string key = dir_ / "server.key";
    RunResult r = RunOutpostd({"keygen", "--secret-file", key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    public_key_ = r.out.substr(0, r.out.find('\n'));
    return {"--curve-secret", key};
  }

  std::unique_ptr<Client> OpenWithKey(const std::string& user, const std::string& device,
                                      const std::string& token, const std::string& server_public_key) {
    TransportOptions t;
    t.curve_server_public_key = server_public_key;
    t.connect_timeout_ms = 500;
    auto dialer = NewDialer(daemon_.endpoint(), t);
    EXPECT_TRUE(dialer.ok()) << dialer.status().ToString();
    if (!dialer.ok()) return nullptr;
    DeviceOptions o;
    o.user = user;
    o.device = device;
    o.token = token;
    o.dialer = std::shared_ptr<Dialer>(std::move(dialer).value());
    return OpenDevice(dir_.path(), o);
  }

  std::string public_key_;
};

TEST_F(CurveTest, DevicesWithTheServerKeySyncOthersCannotConnect) {
  ASSERT_EQ(public_key_.size(), 40u);
  auto phone = OpenWithKey("alice", "phone", alice_phone_token_, public_key_);
  auto laptop = OpenWithKey("alice", "laptop", alice_laptop_token_, public_key_);
  ASSERT_TRUE(phone && laptop);
  CreateStream(*phone, "secret", {"alice"});
  ASSERT_TRUE(phone->Submit("secret", "text", "encrypted").ok());
  FollowConnected(*laptop, "secret");
  ASSERT_TRUE(
      WaitFor([&] { return CaughtUp(*laptop, "secret", 2) && CaughtUp(*phone, "secret", 2); }, kWaitMs))
      << phone->Stats().last_connection_error;

  auto wrong_key = NewCurveKeyPair();
  ASSERT_TRUE(wrong_key.ok());
  auto impostor_server = OpenWithKey("bob", "phone", bob_phone_token_, wrong_key->public_key);
  auto plaintext = Open("bob", "tablet", bob_phone_token_);  // no CURVE at all
  ASSERT_TRUE(impostor_server && plaintext);
  for (Client* c : {impostor_server.get(), plaintext.get()}) {
    ASSERT_TRUE(c->Submit("bobs", kMembersKind, "bob").ok());
    EXPECT_TRUE(WaitFor([&] { return !c->Stats().last_connection_error.empty(); }, kWaitMs)) << c->device();
    const ClientStats s = c->Stats();
    EXPECT_FALSE(s.connected) << c->device();
    EXPECT_EQ(s.connects, 0u) << c->device() << ": " << s.last_connection_error;
    EXPECT_EQ(s.outbox_depth, 1u) << c->device();
  }
}

// Everything outpostd creates is private: the data directory and the stores' directories 0700, files
// 0600, even under a umask that would let others read them.
TEST(OutpostdFiles, AreCreatedOwnerOnly) {
  const mode_t old_mask = ::umask(022);
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_FALSE(AddUser(data, "alice", "phone").empty());
  Daemon daemon;
  std::string error;
  const bool started = daemon.Start(data, "tcp://127.0.0.1:0", {}, &error);
  ::umask(old_mask);
  ASSERT_TRUE(started) << error;
  // stats.json is written by the main loop once the server runs.
  ASSERT_TRUE(WaitFor([&] { return daemon.StatsField("pid") > 0; }, kWaitMs)) << daemon.StatsJson();

  EXPECT_EQ(ModeOf(data), 0700) << data;
  for (const char* sub : {"auth", "server"}) {
    const std::string path = data + "/" + sub;
    EXPECT_EQ(ModeOf(path), 0700) << path;
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      EXPECT_EQ(ModeOf(entry.path().string()), 0600) << entry.path();
      ++files;
    }
    EXPECT_GE(files, 2) << path << ": data.mdb and lock.mdb";
  }
  for (const char* file : {"stats.json", "outpostd.lock", "endpoint"}) {
    EXPECT_EQ(ModeOf(data + "/" + file), 0600) << file;
  }
}

// Without CURVE, outpostd says at start when it listens where other hosts can reach it.
TEST(OutpostdListen, WarnsWhenItListensBeyondLoopbackWithoutCurve) {
  const std::string kWarning = "beyond loopback without CURVE";
  TempDir dir;  // one data directory per server: each keeps its own outpostd.log
  for (const char* name : {"loopback", "open", "curve"})
    ASSERT_TRUE(std::filesystem::create_directory(dir / name));
  std::string error;
  {
    Daemon loopback;
    ASSERT_TRUE(loopback.Start(dir / "loopback", "tcp://127.0.0.1:0", {}, &error)) << error;
    EXPECT_EQ(loopback.Log().find(kWarning), std::string::npos) << loopback.Log();
  }
  {
    // Binds every interface on a free port; nothing is sent to it.
    Daemon open;
    ASSERT_TRUE(open.Start(dir / "open", "tcp://0.0.0.0:0", {}, &error)) << error;
    const std::string log = open.Log();
    const size_t at = log.find(kWarning);
    ASSERT_NE(at, std::string::npos) << log;
    const std::string line =
        log.substr(log.rfind('\n', at) + 1, log.find('\n', at) - log.rfind('\n', at) - 1);
    EXPECT_NE(line.find("WARN"), std::string::npos) << line;
    EXPECT_NE(line.find("tcp://0.0.0.0:0"), std::string::npos) << line;
    EXPECT_NE(line.find("--curve-secret"), std::string::npos) << line;
  }
  {
    RunResult key = RunOutpostd({"keygen", "--secret-file", dir / "server.key"});
    ASSERT_EQ(key.exit_code, 0) << key.err;
    EXPECT_EQ(ModeOf(dir / "server.key"), 0600);
    Daemon curve;
    ASSERT_TRUE(curve.Start(dir / "curve", "tcp://0.0.0.0:0", {"--curve-secret", dir / "server.key"}, &error))
        << error;
    EXPECT_EQ(curve.Log().find(kWarning), std::string::npos) << curve.Log();
  }
}

TEST_F(E2ETest, SigtermStopsCleanlyAndWritesStats) {
  auto alice = AlicePhone();
  ASSERT_TRUE(alice);
  CreateStream(*alice, "log", {"alice"});
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(alice->Submit("log", "text", std::to_string(i)).ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*alice, "log", 31); }, kWaitMs))
      << alice->Stats().last_connection_error;

  daemon_.Signal(SIGTERM);
  ASSERT_EQ(daemon_.WaitExit(kWaitMs), 0) << daemon_.Log();
  const std::string stats = daemon_.StatsJson();
  EXPECT_NE(stats.find("\"state\": \"stopped\""), std::string::npos) << stats;
  EXPECT_GE(daemon_.StatsField("ops_applied"), 31) << stats;
  EXPECT_GE(daemon_.StatsField("connections_total"), 1) << stats;
  EXPECT_NE(access((data_ + "/endpoint").c_str(), F_OK), 0) << "endpoint file left behind";
  const std::string log = daemon_.Log();
  EXPECT_NE(log.find("SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped"), std::string::npos) << log;

  RunResult r = RunOutpostd({"stats", "--data", data_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stopped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("users"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace outpost::e2e
