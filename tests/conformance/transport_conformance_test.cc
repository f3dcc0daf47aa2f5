// Copyright 2026 The Outpost Authors.
//
// The transport contract checked against every transport in transport_backends.h: the suite is the
// conformance library (engine/testing, outpost/testing/transport_conformance.h), registered here the way a
// transport author registers theirs. Then tests of URI parsing, of what only the in-process transport
// promises, and of the fault-injecting wrapper.
#include "outpost/testing/transport_conformance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conformance/transport_backends.h"
#include "outpost/env.h"
#include "outpost/transport.h"
// The faulty wrapper's counters are an internal header of outpost_transport; the test include path does not
// reach engine/transport, hence the relative path.
#include "transport/inproc/faulty_transport.h"

namespace outpost {
namespace {

[[maybe_unused]] const bool kRegistered = [] {
  for (const TransportBackend& backend : AllTransportBackends()) {
    conformance::RegisterTransportConformance({.name = backend.name,
                                               .unique_uri = backend.unique_uri,
                                               .listen = nullptr,  // Listen and NewDialer by scheme
                                               .dial = nullptr,
                                               // inproc hands frames over in the sender's memory.
                                               .has_inbound_queue = std::string(backend.name) != "inproc"});
  }
  return true;
}();

std::unique_ptr<Listener> ListenOrDie(const std::string& uri) {
  Result<std::unique_ptr<Listener>> listener = Listen(uri);
  EXPECT_TRUE(listener.ok()) << uri << ": " << listener.status().ToString();
  return listener.ok() ? std::move(listener).value() : nullptr;
}

std::unique_ptr<Connection> ConnectOrDie(Dialer* dialer) {
  Result<std::unique_ptr<Connection>> conn = dialer->Connect();
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(conn).value() : nullptr;
}

std::unique_ptr<Dialer> DialerOrDie(const std::string& uri) {
  Result<std::unique_ptr<Dialer>> dialer = NewDialer(uri);
  EXPECT_TRUE(dialer.ok()) << uri << ": " << dialer.status().ToString();
  return dialer.ok() ? std::move(dialer).value() : nullptr;
}

// A frame that is not just its index: binary, varying in size, so that truncation or mixing shows up.
std::string TestFrame(int i) {
  std::string frame = std::to_string(i);
  frame.push_back('\0');
  frame.append(static_cast<size_t>(i % 61), static_cast<char>('a' + i % 26));
  return frame;
}

// ---------------------------------------------------------------------------------------------------------
// URI parsing.

void ExpectBadUri(const std::string& uri, const std::string& why) {
  Result<std::unique_ptr<Dialer>> dialer = NewDialer(uri);
  ASSERT_FALSE(dialer.ok()) << uri;
  EXPECT_EQ(dialer.status().code(), Status::Code::kInvalidArgument) << uri;
  EXPECT_NE(dialer.status().message().find(why), std::string::npos)
      << uri << " → " << dialer.status().ToString();
  Result<std::unique_ptr<Listener>> listener = Listen(uri);
  ASSERT_FALSE(listener.ok()) << uri;
  EXPECT_EQ(listener.status().code(), Status::Code::kInvalidArgument) << uri;
  EXPECT_NE(listener.status().message().find(why), std::string::npos)
      << uri << " → " << listener.status().ToString();
}

TEST(TransportUriTest, BadUrisAreInvalidArgument) {
  ExpectBadUri("", "expected inproc:NAME, tcp://HOST:PORT or ipc://PATH");
  ExpectBadUri("inproc", "expected inproc:NAME");
  ExpectBadUri("inproc:", "needs a name");
  ExpectBadUri("INPROC:x", "unknown transport scheme 'INPROC'");
  ExpectBadUri("http://example.com", "unknown transport scheme 'http'");
  ExpectBadUri("memory:", "unknown transport scheme 'memory'");
  ExpectBadUri("tcp://127.0.0.1", "expected tcp://HOST:PORT");
  ExpectBadUri("tcp://:7700", "expected tcp://HOST:PORT");
  ExpectBadUri("tcp://127.0.0.1:70000", "port must be a number 1..65535");
  ExpectBadUri("tcp://127.0.0.1:x", "port must be a number 1..65535");
  ExpectBadUri("ipc://", "expected ipc://PATH");
  ExpectBadUri("tcp://127.0.0.1:7700,http://x", "expected tcp://HOST:PORT or ipc://PATH");
  ExpectBadUri("tcp://127.0.0.1:7700,", "expected tcp://HOST:PORT or ipc://PATH");
  // A list is all inproc or all ZeroMQ, with no name twice.
  ExpectBadUri("tcp://127.0.0.1:7700,inproc:a", "expected tcp://HOST:PORT or ipc://PATH");
  ExpectBadUri("inproc:a,tcp://127.0.0.1:7700", "expected inproc:NAME (a list is all inproc or all ZeroMQ)");
  ExpectBadUri("inproc:a,b", "expected inproc:NAME");
  ExpectBadUri("inproc:a,", "expected inproc:NAME");
  ExpectBadUri("inproc:a,inproc:", "needs a name");
  ExpectBadUri("inproc:a,inproc:a", "appears twice");
}

// ---------------------------------------------------------------------------------------------------------
// What the in-process transport promises beyond the interface (inproc_transport.h).

// Inproc is synchronous, so a pause can be shown exactly: requests wait while the device does not read and
// come through, in order, once it does; the deadline runs on the given clock.
TEST(InprocBudgetTest, PausedDeviceRequestsWaitUntilItReads) {
  ManualEnv env(1);
  TransportOptions options;
  options.queue_bytes_max = 1000;
  options.heartbeat_timeout_ms = 5000;
  options.env = &env;
  auto listener = Listen("inproc:budget-pause", options);
  ASSERT_TRUE(listener.ok());
  auto dialer = NewDialer("inproc:budget-pause");
  ASSERT_TRUE(dialer.ok());
  auto conn = (*dialer)->Connect();
  ASSERT_TRUE(conn.ok());
  ServerEvent event;
  ASSERT_TRUE((*listener)->Poll(&event));
  const ConnId id = event.conn;

  ASSERT_TRUE((*listener)->Send(id, std::string(600, 'a')).ok());
  ASSERT_TRUE((*listener)->Send(id, std::string(600, 'b')).ok());  // 1200 bytes queued: paused
  EXPECT_EQ((*listener)->Stats().connections_paused, 1u);
  EXPECT_EQ((*listener)->Stats().queued_bytes, 1200u);
  ASSERT_TRUE((*conn)->Send("req1").ok());
  ASSERT_TRUE((*conn)->Send("req2").ok());
  EXPECT_FALSE((*listener)->Poll(&event)) << "a paused device's request was reported";
  EXPECT_EQ((*listener)->Stats().held_bytes, 8u);
  env.AdvanceMs(4999);
  EXPECT_FALSE((*listener)->Poll(&event));
  EXPECT_TRUE((*conn)->IsOpen());

  std::string frame;
  ASSERT_TRUE((*conn)->Receive(&frame));  // 600 left: under budget again
  EXPECT_EQ((*listener)->Stats().connections_paused, 0u);
  ASSERT_TRUE((*listener)->Poll(&event));
  EXPECT_EQ(event.frame, "req1");
  ASSERT_TRUE((*listener)->Poll(&event));
  EXPECT_EQ(event.frame, "req2");

  // Paused again, and not reading for the whole timeout: dropped, its queue freed.
  ASSERT_TRUE((*listener)->Send(id, std::string(600, 'c')).ok());
  EXPECT_EQ((*listener)->Stats().connections_paused, 1u);
  env.AdvanceMs(5000);
  ASSERT_TRUE((*listener)->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(event.conn, id);
  EXPECT_FALSE((*conn)->IsOpen());
  EXPECT_FALSE((*conn)->Receive(&frame));
  const ListenerStats stats = (*listener)->Stats();
  EXPECT_EQ(stats.queued_bytes, 0u);
  EXPECT_EQ(stats.connections_paused, 0u);
  EXPECT_EQ(stats.connections_dropped_slow, 1u);
}

TEST(InprocBudgetTest, PausedDeviceThatKeepsAskingIsDropped) {
  TransportOptions options;
  options.queue_bytes_max = 1000;
  auto listener = Listen("inproc:budget-flood", options);
  ASSERT_TRUE(listener.ok());
  auto dialer = NewDialer("inproc:budget-flood");
  auto conn = (*dialer)->Connect();
  ASSERT_TRUE(conn.ok());
  ServerEvent event;
  ASSERT_TRUE((*listener)->Poll(&event));
  const ConnId id = event.conn;
  ASSERT_TRUE((*listener)->Send(id, std::string(1000, 'a')).ok());
  ASSERT_TRUE((*conn)->Send(std::string(600, 'q')).ok());  // held
  Status st = (*conn)->Send(std::string(600, 'q'));        // 1200 held: too much
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_FALSE((*conn)->IsOpen());
  ASSERT_TRUE((*listener)->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_FALSE((*listener)->Poll(&event));
  EXPECT_EQ((*listener)->Stats().held_bytes, 0u);
}

TEST(InprocBudgetTest, ZeroBudgetIsInvalidArgument) {
  TransportOptions options;
  options.queue_bytes_max = 0;
  auto listener = Listen("inproc:budget-zero", options);
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), Status::Code::kInvalidArgument);
}

// A listener list takes every name or none: when one is taken, the others stay free.
TEST(InprocListTest, ListenerListTakesEveryNameOrNone) {
  std::unique_ptr<Listener> taken = ListenOrDie("inproc:list-taken");
  ASSERT_NE(taken, nullptr);
  Result<std::unique_ptr<Listener>> both = Listen("inproc:list-free,inproc:list-taken");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().code(), Status::Code::kFailedPrecondition) << both.status().ToString();
  std::unique_ptr<Listener> free = ListenOrDie("inproc:list-free");
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(free->endpoint(), "inproc:list-free");
  free.reset();
  taken.reset();
  std::unique_ptr<Listener> listener = ListenOrDie("inproc:list-free,inproc:list-taken");
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->endpoint(), "inproc:list-free,inproc:list-taken");
  // Destroying it frees every name.
  listener.reset();
  EXPECT_NE(ListenOrDie("inproc:list-taken"), nullptr);
}

class InprocTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = UniqueInprocUri(::testing::UnitTest::GetInstance()->current_test_info()->name());
    listener_ = ListenOrDie(uri_);
    ASSERT_NE(listener_, nullptr);
    dialer_ = DialerOrDie(uri_);
    ASSERT_NE(dialer_, nullptr);
  }

  ConnId Open(std::unique_ptr<Connection>* conn) {
    *conn = ConnectOrDie(dialer_.get());
    ServerEvent event;
    EXPECT_TRUE(listener_->Poll(&event));  // inproc delivers synchronously
    EXPECT_EQ(event.kind, ServerEvent::Kind::kOpen);
    return event.conn;
  }

  std::string uri_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Dialer> dialer_;
};

TEST_F(InprocTransportTest, ConnectionIdsStartAtOneAndCount) {
  std::unique_ptr<Connection> a;
  std::unique_ptr<Connection> b;
  EXPECT_EQ(Open(&a), 1u);
  EXPECT_EQ(Open(&b), 2u);
}

TEST_F(InprocTransportTest, FramesSentBeforeServerCloseStayReadable) {
  std::unique_ptr<Connection> conn;
  ConnId id = Open(&conn);
  ASSERT_TRUE(listener_->Send(id, "goodbye").ok());
  listener_->CloseConnection(id);
  EXPECT_FALSE(conn->IsOpen());
  std::string frame;
  ASSERT_TRUE(conn->Receive(&frame));
  EXPECT_EQ(frame, "goodbye");
  EXPECT_FALSE(conn->Receive(&frame));
}

TEST_F(InprocTransportTest, ServerCloseDiscardsQueuedFramesAndReportsClose) {
  std::unique_ptr<Connection> conn;
  ConnId id = Open(&conn);
  std::unique_ptr<Connection> other;
  ConnId other_id = Open(&other);
  ASSERT_TRUE(conn->Send("one").ok());
  ASSERT_TRUE(other->Send("kept").ok());
  ASSERT_TRUE(conn->Send("two").ok());
  listener_->CloseConnection(id);
  conn.reset();  // no second kClose
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kFrame);
  EXPECT_EQ(event.conn, other_id);
  EXPECT_EQ(event.frame, "kept");
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(event.conn, id);
  EXPECT_FALSE(listener_->Poll(&event));
}

TEST_F(InprocTransportTest, DeviceCloseDiscardsUnread) {
  std::unique_ptr<Connection> conn;
  ConnId id = Open(&conn);
  ASSERT_TRUE(listener_->Send(id, "unread").ok());
  conn->Close();
  std::string frame;
  EXPECT_FALSE(conn->Receive(&frame));
}

TEST_F(InprocTransportTest, ConnectionOutlivesListenerAndDialer) {
  std::unique_ptr<Connection> conn;
  ConnId id = Open(&conn);
  ASSERT_TRUE(listener_->Send(id, "before").ok());
  listener_.reset();
  dialer_.reset();
  EXPECT_FALSE(conn->IsOpen());
  std::string frame;
  EXPECT_TRUE(conn->Receive(&frame));
  EXPECT_EQ(conn->Send("x").code(), Status::Code::kUnavailable);
  conn->Close();
}

// ---------------------------------------------------------------------------------------------------------
// The fault-injecting wrapper (WrapFaulty).

class FaultyTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = UniqueInprocUri(::testing::UnitTest::GetInstance()->current_test_info()->name());
    listener_ = ListenOrDie(uri_);
    ASSERT_NE(listener_, nullptr);
  }

  // Makes the faulty dialer and one connection; returns the server's id for it.
  ConnId Dial(const FaultOptions& faults, uint64_t seed = 1) {
    dialer_ = WrapFaulty(DialerOrDie(uri_), faults, &env_, seed);
    conn_ = ConnectOrDie(dialer_.get());
    EXPECT_NE(conn_, nullptr);
    return ExpectOpen();
  }

  ConnId ExpectOpen() {
    ServerEvent event;
    EXPECT_TRUE(listener_->Poll(&event));
    EXPECT_EQ(event.kind, ServerEvent::Kind::kOpen);
    return event.conn;
  }

  // Every frame the server has received, in order; fails on any other event.
  std::vector<std::string> ServerFrames() {
    std::vector<std::string> frames;
    ServerEvent event;
    while (listener_->Poll(&event)) {
      EXPECT_EQ(event.kind, ServerEvent::Kind::kFrame);
      frames.push_back(event.frame);
    }
    return frames;
  }

  std::vector<std::string> DeviceFrames() {
    std::vector<std::string> frames;
    std::string frame;
    while (conn_->Receive(&frame)) frames.push_back(frame);
    return frames;
  }

  ManualEnv env_{99};
  std::string uri_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Dialer> dialer_;
  std::unique_ptr<Connection> conn_;
};

std::vector<std::string> Numbered(int n) {
  std::vector<std::string> frames;
  frames.reserve(n);
  for (int i = 0; i < n; ++i) frames.push_back(TestFrame(i));
  return frames;
}

TEST_F(FaultyTransportTest, NoFaultsIsTransparent) {
  ConnId id = Dial(FaultOptions{});
  const std::vector<std::string> frames = Numbered(1000);
  for (const auto& f : frames) ASSERT_TRUE(conn_->Send(f).ok());
  for (const auto& f : frames) ASSERT_TRUE(listener_->Send(id, f).ok());
  EXPECT_EQ(ServerFrames(), frames);
  EXPECT_EQ(DeviceFrames(), frames);
  EXPECT_TRUE(conn_->IsOpen());
  FaultStats stats = GetFaultStats(*dialer_);
  EXPECT_EQ(stats.frames_dropped + stats.frames_duplicated + stats.frames_delayed + stats.disconnects, 0u);

  conn_->Close();
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
}

TEST_F(FaultyTransportTest, DropAllLosesEverything) {
  FaultOptions faults;
  faults.drop = 1;
  ConnId id = Dial(faults);
  for (const auto& f : Numbered(100)) ASSERT_TRUE(conn_->Send(f).ok());  // the sender cannot tell
  for (const auto& f : Numbered(100)) ASSERT_TRUE(listener_->Send(id, f).ok());
  EXPECT_TRUE(ServerFrames().empty());
  EXPECT_TRUE(DeviceFrames().empty());
  EXPECT_TRUE(conn_->IsOpen());
  EXPECT_EQ(GetFaultStats(*dialer_).frames_dropped, 200u);
}

TEST_F(FaultyTransportTest, DuplicateAllDoublesEverything) {
  FaultOptions faults;
  faults.duplicate = 1;
  ConnId id = Dial(faults);
  const std::vector<std::string> frames = Numbered(50);
  std::vector<std::string> doubled;
  for (const auto& f : frames) {
    doubled.push_back(f);
    doubled.push_back(f);
  }
  for (const auto& f : frames) ASSERT_TRUE(conn_->Send(f).ok());
  for (const auto& f : frames) ASSERT_TRUE(listener_->Send(id, f).ok());
  EXPECT_EQ(ServerFrames(), doubled);
  EXPECT_EQ(DeviceFrames(), doubled);
  EXPECT_EQ(GetFaultStats(*dialer_).frames_duplicated, 100u);
}

TEST_F(FaultyTransportTest, DelayHoldsFramesUntilTheClockPasses) {
  FaultOptions faults;
  faults.delay = 1;
  faults.delay_ms_max = 100;
  ConnId id = Dial(faults);
  const std::vector<std::string> frames = Numbered(20);

  // Outbound: held in the wrapper until a use of the connection finds them due.
  for (const auto& f : frames) ASSERT_TRUE(conn_->Send(f).ok());
  EXPECT_TRUE(conn_->IsOpen());
  EXPECT_TRUE(ServerFrames().empty());
  env_.AdvanceMs(100);
  EXPECT_TRUE(ServerFrames().empty());  // due, but nobody used the connection yet
  EXPECT_TRUE(conn_->IsOpen());         // a use: releases them
  std::vector<std::string> got = ServerFrames();
  EXPECT_NE(got, frames) << "random delays of up to 100 ms should reorder 20 frames";
  std::sort(got.begin(), got.end());
  std::vector<std::string> sorted = frames;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(got, sorted);

  // Inbound: taken from the connection, then held until due.
  for (const auto& f : frames) ASSERT_TRUE(listener_->Send(id, f).ok());
  EXPECT_TRUE(DeviceFrames().empty());
  env_.AdvanceMs(1);
  std::vector<std::string> early = DeviceFrames();  // only those delayed by exactly 1 ms
  env_.AdvanceMs(99);
  std::vector<std::string> late = DeviceFrames();
  EXPECT_TRUE(DeviceFrames().empty());
  EXPECT_EQ(early.size() + late.size(), frames.size());
  late.insert(late.end(), early.begin(), early.end());
  std::sort(late.begin(), late.end());
  EXPECT_EQ(late, sorted);
  EXPECT_EQ(GetFaultStats(*dialer_).frames_delayed, 40u);
}

TEST_F(FaultyTransportTest, DisconnectClosesBothSides) {
  FaultOptions faults;
  faults.disconnect = 1;
  Dial(faults);
  Status s = conn_->Send("boom");
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_FALSE(conn_->IsOpen());
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(GetFaultStats(*dialer_).disconnects, 1u);
}

TEST_F(FaultyTransportTest, InboundDisconnectClosesBothSides) {
  FaultOptions faults;
  faults.disconnect = 1;
  ConnId id = Dial(faults);
  ASSERT_TRUE(listener_->Send(id, "boom").ok());
  std::string frame;
  EXPECT_FALSE(conn_->Receive(&frame));
  EXPECT_FALSE(conn_->IsOpen());
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(listener_->Send(id, "again").code(), Status::Code::kUnavailable);
}

TEST_F(FaultyTransportTest, DisconnectDiscardsHeldFrames) {
  FaultOptions faults;
  faults.delay = 1;
  ConnId id = Dial(faults);
  ASSERT_TRUE(conn_->Send("held").ok());
  ASSERT_TRUE(listener_->Send(id, "held too").ok());
  EXPECT_TRUE(DeviceFrames().empty());
  conn_->Close();
  env_.AdvanceMs(faults.delay_ms_max);
  EXPECT_FALSE(conn_->IsOpen());
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  EXPECT_TRUE(DeviceFrames().empty());
}

// Runs a rough exchange (every fault on, reconnecting after each disconnect) and returns a transcript of
// everything both sides saw.
std::vector<std::string> RoughExchange(uint64_t seed, FaultStats* stats) {
  const std::string uri = UniqueInprocUri("RoughExchange");
  ManualEnv env(1);  // the same clock for every seed: only the fault seed varies
  std::unique_ptr<Listener> listener = ListenOrDie(uri);
  FaultOptions faults;
  faults.drop = 0.1;
  faults.duplicate = 0.1;
  faults.delay = 0.2;
  faults.delay_ms_max = 20;
  faults.disconnect = 0.01;
  std::unique_ptr<Dialer> dialer = WrapFaulty(DialerOrDie(uri), faults, &env, seed);
  std::unique_ptr<Connection> conn;
  std::map<ConnId, bool> open;
  std::vector<std::string> transcript;
  for (int step = 0; step < 2000; ++step) {
    if (conn == nullptr || !conn->IsOpen()) {
      conn = ConnectOrDie(dialer.get());
      transcript.emplace_back("connect");
    }
    Status s = conn->Send("d" + std::to_string(step));
    if (!s.ok()) transcript.push_back("send failed " + std::to_string(step));
    ServerEvent event;
    while (listener->Poll(&event)) {
      if (event.kind == ServerEvent::Kind::kOpen) open[event.conn] = true;
      if (event.kind == ServerEvent::Kind::kClose) open[event.conn] = false;
      transcript.push_back("server " + std::to_string(static_cast<int>(event.kind)) + " " +
                           std::to_string(event.conn) + " " + event.frame);
    }
    for (const auto& [id, is_open] : open) {
      if (is_open) static_cast<void>(listener->Send(id, "s" + std::to_string(step)));
    }
    std::string frame;
    while (conn->Receive(&frame)) transcript.push_back("device " + frame);
    env.AdvanceMs(1);
  }
  *stats = GetFaultStats(*dialer);
  return transcript;
}

TEST(FaultyTransportDeterminismTest, SameSeedSameRun) {
  FaultStats stats_a;
  FaultStats stats_b;
  FaultStats stats_c;
  std::vector<std::string> a = RoughExchange(7, &stats_a);
  std::vector<std::string> b = RoughExchange(7, &stats_b);
  std::vector<std::string> c = RoughExchange(8, &stats_c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(stats_a.frames_dropped, stats_b.frames_dropped);
  EXPECT_EQ(stats_a.disconnects, stats_b.disconnects);
  // Every fault happened, including reconnects.
  EXPECT_GT(stats_a.frames_dropped, 0u);
  EXPECT_GT(stats_a.frames_duplicated, 0u);
  EXPECT_GT(stats_a.frames_delayed, 0u);
  EXPECT_GT(stats_a.disconnects, 1u);
  EXPECT_GT(std::count(a.begin(), a.end(), "connect"), 2);
}

TEST_F(FaultyTransportTest, ReconnectsGetFreshFaults) {
  FaultOptions faults;
  faults.drop = 0.5;
  Dial(faults, 3);
  for (const auto& f : Numbered(64)) ASSERT_TRUE(conn_->Send(f).ok());
  std::vector<std::string> first = ServerFrames();
  conn_.reset();
  ServerEvent event;
  ASSERT_TRUE(listener_->Poll(&event));
  EXPECT_EQ(event.kind, ServerEvent::Kind::kClose);
  conn_ = ConnectOrDie(dialer_.get());
  ExpectOpen();
  for (const auto& f : Numbered(64)) ASSERT_TRUE(conn_->Send(f).ok());
  std::vector<std::string> second = ServerFrames();
  EXPECT_NE(first, second);
}

TEST(FaultStatsTest, ZeroForOtherDialers) {
  std::unique_ptr<Dialer> plain = DialerOrDie("inproc:FaultStatsTest");
  ASSERT_NE(plain, nullptr);
  FaultStats stats = GetFaultStats(*plain);
  EXPECT_EQ(stats.frames_dropped + stats.frames_duplicated + stats.frames_delayed + stats.disconnects, 0u);
}

}  // namespace
}  // namespace outpost
