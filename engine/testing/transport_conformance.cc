// Copyright 2026 The Outpost Authors.
//
// The transport contract (engine/include/outpost/transport.h) as a suite any transport can run: backends are
// registered through outpost/testing/transport_conformance.h, and the suite is instantiated over the
// registry when GoogleTest starts.
//
// Transports may deliver asynchronously, so the suite never assumes a frame has arrived when Send returns:
// it waits on wakeup callbacks with a deadline (Signal), and never sleeps.
#include "outpost/testing/transport_conformance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "outpost/env.h"
#include "outpost/transport.h"
#include "testing_internal.h"

namespace outpost::conformance {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kWaitMax{10'000};  // per wait; generous for sanitizers, never reached when passing

// Collects wakeup callbacks so a test can wait for a condition without sleeping. Declare it before the
// connections and listeners that call it, so that it outlives them.
class Signal {
 public:
  std::function<void()> Callback() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }

  uint64_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

  // Evaluates `done` (outside the lock, so it may call the transport) after every wakeup until it returns
  // true or `timeout` passes. Returns the last result of `done`.
  bool WaitFor(const std::function<bool()>& done, milliseconds timeout = kWaitMax) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      const uint64_t seen = count_;
      lock.unlock();
      if (done()) return true;
      lock.lock();
      if (!cv_.wait_until(lock, deadline, [&] { return count_ != seen; })) {
        lock.unlock();
        return done();
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

// The current test's backend: GetParam is static in GoogleTest, valid while a TransportConformanceTest runs.
const TransportConformanceBackend& Backend() {
  return ::testing::WithParamInterface<TransportConformanceBackend>::GetParam();
}

Result<std::unique_ptr<Listener>> BackendListen(const std::string& uri,
                                                const TransportOptions& options = {}) {
  return Backend().listen ? Backend().listen(uri, options) : Listen(uri, options);
}

Result<std::unique_ptr<Dialer>> BackendDial(const std::string& uri, const TransportOptions& options = {}) {
  return Backend().dial ? Backend().dial(uri, options) : NewDialer(uri, options);
}

std::unique_ptr<Listener> ListenOrDie(const std::string& uri) {
  Result<std::unique_ptr<Listener>> listener = BackendListen(uri);
  EXPECT_TRUE(listener.ok()) << uri << ": " << listener.status().ToString();
  return listener.ok() ? std::move(listener).value() : nullptr;
}

std::unique_ptr<Connection> ConnectOrDie(Dialer* dialer) {
  Result<std::unique_ptr<Connection>> conn = dialer->Connect();
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(conn).value() : nullptr;
}

std::unique_ptr<Dialer> DialerOrDie(const std::string& uri) {
  Result<std::unique_ptr<Dialer>> dialer = BackendDial(uri);
  EXPECT_TRUE(dialer.ok()) << uri << ": " << dialer.status().ToString();
  return dialer.ok() ? std::move(dialer).value() : nullptr;
}

std::optional<ServerEvent> NextEvent(Listener* listener, Signal* signal) {
  ServerEvent event;
  if (!signal->WaitFor([&] { return listener->Poll(&event); })) return std::nullopt;
  return event;
}

std::optional<std::string> NextFrame(Connection* conn, Signal* signal) {
  std::string frame;
  if (!signal->WaitFor([&] { return conn->Receive(&frame); })) return std::nullopt;
  return frame;
}

// Waits for the kOpen of a new connection and returns its id (0 on timeout).
ConnId AwaitOpen(Listener* listener, Signal* signal) {
  std::optional<ServerEvent> event = NextEvent(listener, signal);
  if (!event || event->kind != ServerEvent::Kind::kOpen) {
    ADD_FAILURE() << "no kOpen event";
    return 0;
  }
  EXPECT_NE(event->conn, 0u);
  return event->conn;
}

void ExpectFrameEvent(const std::optional<ServerEvent>& event, ConnId conn, const std::string& frame) {
  ASSERT_TRUE(event.has_value()) << "timed out waiting for frame \"" << frame << "\"";
  EXPECT_EQ(event->kind, ServerEvent::Kind::kFrame);
  EXPECT_EQ(event->conn, conn);
  EXPECT_EQ(event->frame, frame);
}

// A frame that is not just its index: binary, varying in size, so that truncation or mixing shows up.
std::string TestFrame(int i) {
  std::string frame = std::to_string(i);
  frame.push_back('\0');
  frame.append(static_cast<size_t>(i % 61), static_cast<char>('a' + i % 26));
  return frame;
}

// ---------------------------------------------------------------------------------------------------------
// The conformance suite.

}  // namespace

class TransportConformanceTest : public ::testing::TestWithParam<TransportConformanceBackend> {
 protected:
  void SetUp() override {
    uri_ = GetParam().unique_uri(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  std::string uri_;
};

TEST_P(TransportConformanceTest, ConnectToNobodyIsUnavailable) {
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  ASSERT_NE(dialer, nullptr);
  Result<std::unique_ptr<Connection>> conn = dialer->Connect();
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), Status::Code::kUnavailable) << conn.status().ToString();
}

TEST_P(TransportConformanceTest, DialerMadeBeforeListenerConnectsLater) {
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  ASSERT_NE(dialer, nullptr);
  EXPECT_FALSE(dialer->Connect().ok());
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  EXPECT_NE(AwaitOpen(listener.get(), &server), 0u);
}

TEST_P(TransportConformanceTest, OpenFramesCloseInOrder) {
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->IsOpen());
  ASSERT_TRUE(conn->Send("hello").ok());
  ASSERT_TRUE(conn->Send("").ok());  // an empty frame is a frame
  ASSERT_TRUE(conn->Send(std::string("a\0b", 3)).ok());
  conn->Close();
  EXPECT_FALSE(conn->IsOpen());

  ConnId id = AwaitOpen(listener.get(), &server);
  ExpectFrameEvent(NextEvent(listener.get(), &server), id, "hello");
  ExpectFrameEvent(NextEvent(listener.get(), &server), id, "");
  ExpectFrameEvent(NextEvent(listener.get(), &server), id, std::string("a\0b", 3));
  std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id);
  ServerEvent extra;
  EXPECT_FALSE(listener->Poll(&extra));
}

TEST_P(TransportConformanceTest, ManyFramesKeepOrderBothWays) {
  constexpr int kFrames = 10'000;
  Signal server;
  Signal device;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  conn->SetWakeup(device.Callback());
  ConnId id = AwaitOpen(listener.get(), &server);

  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(conn->Send(TestFrame(i)).ok()) << i;
  for (int i = 0; i < kFrames; ++i) {
    ExpectFrameEvent(NextEvent(listener.get(), &server), id, TestFrame(i));
    if (::testing::Test::HasFailure()) return;
  }
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(listener->Send(id, TestFrame(i)).ok()) << i;
  for (int i = 0; i < kFrames; ++i) {
    std::optional<std::string> frame = NextFrame(conn.get(), &device);
    ASSERT_TRUE(frame.has_value()) << i;
    ASSERT_EQ(*frame, TestFrame(i));
  }
  std::string extra;
  EXPECT_FALSE(conn->Receive(&extra));
}

TEST_P(TransportConformanceTest, LargeFrameArrivesWhole) {
  Signal server;
  Signal device;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  conn->SetWakeup(device.Callback());
  ConnId id = AwaitOpen(listener.get(), &server);

  std::string big(4 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE(conn->Send(big).ok());
  ExpectFrameEvent(NextEvent(listener.get(), &server), id, big);
  ASSERT_TRUE(listener->Send(id, big).ok());
  std::optional<std::string> back = NextFrame(conn.get(), &device);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(*back == big);
}

TEST_P(TransportConformanceTest, DevicesAreIsolated) {
  Signal server;
  Signal device_a;
  Signal device_b;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> a = ConnectOrDie(dialer.get());
  ASSERT_NE(a, nullptr);
  a->SetWakeup(device_a.Callback());
  ConnId id_a = AwaitOpen(listener.get(), &server);
  std::unique_ptr<Connection> b = ConnectOrDie(dialer.get());  // one dialer, many connections
  ASSERT_NE(b, nullptr);
  b->SetWakeup(device_b.Callback());
  ConnId id_b = AwaitOpen(listener.get(), &server);
  ASSERT_NE(id_a, id_b);

  ASSERT_TRUE(a->Send("from a").ok());
  ExpectFrameEvent(NextEvent(listener.get(), &server), id_a, "from a");
  ASSERT_TRUE(b->Send("from b").ok());
  ExpectFrameEvent(NextEvent(listener.get(), &server), id_b, "from b");

  ASSERT_TRUE(listener->Send(id_b, "to b").ok());
  ASSERT_TRUE(listener->Send(id_a, "to a").ok());
  EXPECT_EQ(NextFrame(a.get(), &device_a), "to a");
  EXPECT_EQ(NextFrame(b.get(), &device_b), "to b");
  std::string extra;
  EXPECT_FALSE(a->Receive(&extra));
  EXPECT_FALSE(b->Receive(&extra));

  // Closing one leaves the other working.
  a->Close();
  std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id_a);
  EXPECT_TRUE(b->IsOpen());
  ASSERT_TRUE(listener->Send(id_b, "still here").ok());
  EXPECT_EQ(NextFrame(b.get(), &device_b), "still here");
}

TEST_P(TransportConformanceTest, ConnectionIdsAreUnique) {
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::vector<ConnId> ids;
  for (int i = 0; i < 20; ++i) {
    // Each connection closes before the next opens: an id must not be reused even then.
    std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
    ASSERT_NE(conn, nullptr);
    ids.push_back(AwaitOpen(listener.get(), &server));
    conn.reset();
    std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
    EXPECT_EQ(close->conn, ids.back());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
}

TEST_P(TransportConformanceTest, ServerClosesConnection) {
  Signal server;
  Signal device;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  conn->SetWakeup(device.Callback());
  ConnId id = AwaitOpen(listener.get(), &server);

  listener->CloseConnection(id);
  EXPECT_TRUE(device.WaitFor([&] { return !conn->IsOpen(); }));
  // The server hears of the close too: every kOpen is matched by one kClose, whoever closed.
  std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id);
  Status sent = conn->Send("too late");
  EXPECT_EQ(sent.code(), Status::Code::kUnavailable) << sent.ToString();
  Status reply = listener->Send(id, "gone");
  EXPECT_EQ(reply.code(), Status::Code::kUnavailable) << reply.ToString();
  listener->CloseConnection(id);  // twice is harmless
  conn->Close();                  // and so is closing the device end afterwards
  EXPECT_FALSE(conn->IsOpen());
  ServerEvent extra;
  EXPECT_FALSE(server.WaitFor([&] { return listener->Poll(&extra); }, milliseconds(50)))
      << "a second kClose or a stray event";
}

TEST_P(TransportConformanceTest, DeviceCloseReachesServer) {
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  ConnId id = AwaitOpen(listener.get(), &server);

  conn->Close();
  EXPECT_FALSE(conn->IsOpen());
  Status sent = conn->Send("after close");
  EXPECT_EQ(sent.code(), Status::Code::kUnavailable) << sent.ToString();
  std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id);
  Status reply = listener->Send(id, "to nobody");
  EXPECT_EQ(reply.code(), Status::Code::kUnavailable) << reply.ToString();
  conn->Close();  // closing twice reports nothing more
  ServerEvent extra;
  EXPECT_FALSE(server.WaitFor([&] { return listener->Poll(&extra); }, milliseconds(50)));
}

TEST_P(TransportConformanceTest, DroppedConnectionReachesServer) {
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  ConnId id = AwaitOpen(listener.get(), &server);
  ASSERT_TRUE(conn->Send("last words").ok());
  conn.reset();  // destroyed without Close()
  ExpectFrameEvent(NextEvent(listener.get(), &server), id, "last words");
  std::optional<ServerEvent> close = NextEvent(listener.get(), &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id);
}

TEST_P(TransportConformanceTest, ListenerGoneClosesDevices) {
  Signal device_a;
  Signal device_b;
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> a = ConnectOrDie(dialer.get());
  std::unique_ptr<Connection> b = ConnectOrDie(dialer.get());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a->SetWakeup(device_a.Callback());
  b->SetWakeup(device_b.Callback());
  AwaitOpen(listener.get(), &server);
  AwaitOpen(listener.get(), &server);

  listener.reset();
  EXPECT_TRUE(device_a.WaitFor([&] { return !a->IsOpen(); }));
  EXPECT_TRUE(device_b.WaitFor([&] { return !b->IsOpen(); }));
  EXPECT_EQ(a->Send("anyone?").code(), Status::Code::kUnavailable);

  // The address is free again, and the old connections stay closed.
  listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  EXPECT_FALSE(a->IsOpen());
  std::unique_ptr<Connection> c = ConnectOrDie(dialer.get());
  ASSERT_NE(c, nullptr);
  AwaitOpen(listener.get(), &server);
  EXPECT_TRUE(c->IsOpen());
}

TEST_P(TransportConformanceTest, WakeupsFire) {
  Signal server;
  Signal device;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  conn->SetWakeup(device.Callback());
  EXPECT_TRUE(server.WaitFor([&] { return server.count() >= 1; }));  // kOpen
  ConnId id = AwaitOpen(listener.get(), &server);

  uint64_t before = server.count();
  ASSERT_TRUE(conn->Send("ping").ok());
  EXPECT_TRUE(server.WaitFor([&] { return server.count() > before; }));

  before = device.count();
  ASSERT_TRUE(listener->Send(id, "pong").ok());
  EXPECT_TRUE(device.WaitFor([&] { return device.count() > before; }));

  before = device.count();
  listener->CloseConnection(id);
  EXPECT_TRUE(device.WaitFor([&] { return device.count() > before; }));
  std::optional<ServerEvent> closed = NextEvent(listener.get(), &server);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->kind, ServerEvent::Kind::kClose);

  // A device closing its end wakes the server; a replaced callback is the one that runs.
  Signal replaced;
  listener->SetWakeup(replaced.Callback());
  std::unique_ptr<Connection> other = ConnectOrDie(dialer.get());
  ASSERT_NE(other, nullptr);
  AwaitOpen(listener.get(), &replaced);
  before = replaced.count();
  const uint64_t old_count = server.count();
  other->Close();
  EXPECT_TRUE(replaced.WaitFor([&] { return replaced.count() > before; }));
  EXPECT_EQ(server.count(), old_count);

  // Clearing the callback is allowed.
  listener->SetWakeup(nullptr);
  std::unique_ptr<Connection> third = ConnectOrDie(dialer.get());
  ASSERT_NE(third, nullptr);
  listener.reset();  // must not run a callback from a dead Signal scope; all Signals are still alive here
}

TEST_P(TransportConformanceTest, SendToUnknownConnectionIsUnavailable) {
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->Send(987654, "x").code(), Status::Code::kUnavailable);
  listener->CloseConnection(987654);  // harmless
  ServerEvent event;
  EXPECT_FALSE(listener->Poll(&event));
}

TEST_P(TransportConformanceTest, NameCollisionIsFailedPrecondition) {
  std::unique_ptr<Listener> first = ListenOrDie(uri_);
  ASSERT_NE(first, nullptr);
  Result<std::unique_ptr<Listener>> second = BackendListen(uri_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition) << second.status().ToString();
  first.reset();
  EXPECT_NE(ListenOrDie(uri_), nullptr);
}

// A dialer given a list tries its endpoints in turn, starting with the one that answered last: a device
// fails over to the next server instance when one goes away, and stays there while it answers.
TEST_P(TransportConformanceTest, DialerListFailsOverInTurn) {
  const std::string uri_b = GetParam().unique_uri(
      std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "b");
  // Before the dialer: its thread may call a connection's wakeup until the dialer is gone.
  Signal server_a;
  Signal server_b;
  Signal device;
  Signal device3;
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_ + "," + uri_b);
  ASSERT_NE(dialer, nullptr);
  Result<std::unique_ptr<Connection>> none = dialer->Connect();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kUnavailable) << none.status().ToString();

  // The first endpoint is down: the second answers.
  std::unique_ptr<Listener> b = ListenOrDie(uri_b);
  ASSERT_NE(b, nullptr);
  b->SetWakeup(server_b.Callback());
  std::unique_ptr<Connection> c1 = ConnectOrDie(dialer.get());
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(AwaitOpen(b.get(), &server_b), 0u);

  // Both up: the one that answered last is tried first.
  std::unique_ptr<Listener> a = ListenOrDie(uri_);
  ASSERT_NE(a, nullptr);
  a->SetWakeup(server_a.Callback());
  std::unique_ptr<Connection> c2 = ConnectOrDie(dialer.get());
  ASSERT_NE(c2, nullptr);
  ASSERT_NE(AwaitOpen(b.get(), &server_b), 0u);
  ServerEvent event;
  EXPECT_FALSE(a->Poll(&event));

  // The second goes away: its devices are closed, and the next Connect fails over to the first.
  c1->SetWakeup(device.Callback());
  c2->SetWakeup(device.Callback());
  b.reset();
  EXPECT_TRUE(device.WaitFor([&] { return !c1->IsOpen() && !c2->IsOpen(); }));
  std::unique_ptr<Connection> c3 = ConnectOrDie(dialer.get());
  ASSERT_NE(c3, nullptr);
  c3->SetWakeup(device3.Callback());
  const ConnId id = AwaitOpen(a.get(), &server_a);
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(c3->Send("to a").ok());
  ExpectFrameEvent(NextEvent(a.get(), &server_a), id, "to a");
  ASSERT_TRUE(a->Send(id, "from a").ok());
  EXPECT_EQ(NextFrame(c3.get(), &device3), std::optional<std::string>("from a"));

  // The second is back: the first answered last, so it stays first.
  b = ListenOrDie(uri_b);
  ASSERT_NE(b, nullptr);
  b->SetWakeup(server_b.Callback());
  std::unique_ptr<Connection> c4 = ConnectOrDie(dialer.get());
  ASSERT_NE(c4, nullptr);
  EXPECT_NE(AwaitOpen(a.get(), &server_a), 0u);
  EXPECT_FALSE(b->Poll(&event));
}

// A listener given a list takes connections on every endpoint of it.
TEST_P(TransportConformanceTest, ListenerListAcceptsOnEveryEndpoint) {
  const std::string uri_b = GetParam().unique_uri(
      std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "b");
  Signal server;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_ + "," + uri_b);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> to_a = DialerOrDie(uri_);
  std::unique_ptr<Dialer> to_b = DialerOrDie(uri_b);
  ASSERT_NE(to_a, nullptr);
  ASSERT_NE(to_b, nullptr);
  std::unique_ptr<Connection> a = ConnectOrDie(to_a.get());
  ASSERT_NE(a, nullptr);
  const ConnId id_a = AwaitOpen(listener.get(), &server);
  std::unique_ptr<Connection> b = ConnectOrDie(to_b.get());
  ASSERT_NE(b, nullptr);
  const ConnId id_b = AwaitOpen(listener.get(), &server);
  EXPECT_NE(id_a, 0u);
  EXPECT_NE(id_b, 0u);
  EXPECT_NE(id_a, id_b);
}

// A device thread and a server thread stream frames at each other at full speed, both ways at once.
TEST_P(TransportConformanceTest, ConcurrentDeviceAndServer) {
  constexpr int kFrames = 100'000;
  constexpr int kSendBurst = 64;  // interleave sending with receiving so both queues are busy together
  Signal server;
  Signal device;
  std::unique_ptr<Listener> listener = ListenOrDie(uri_);
  ASSERT_NE(listener, nullptr);
  listener->SetWakeup(server.Callback());
  std::unique_ptr<Dialer> dialer = DialerOrDie(uri_);
  std::unique_ptr<Connection> conn = ConnectOrDie(dialer.get());
  ASSERT_NE(conn, nullptr);
  conn->SetWakeup(device.Callback());
  const ConnId id = AwaitOpen(listener.get(), &server);
  ASSERT_NE(id, 0u);

  // Each side: send in bursts, take whatever arrived, and wait on its wakeups once it has nothing to send.
  // Returns an error description, empty on success; `why_not` says what this side knows of a stall.
  auto run_side = [&](Signal* signal, const std::function<Status(const std::string&)>& send,
                      const std::function<bool(std::string*)>& receive,
                      const std::function<std::string()>& why_not) -> std::string {
    int sent = 0;
    int received = 0;
    std::string frame;
    auto mismatch = [&] { return "frame " + std::to_string(received) + ": got " + frame.substr(0, 40); };
    while (received < kFrames || sent < kFrames) {
      for (int n = 0; n < kSendBurst && sent < kFrames; ++n) {
        Status s = send(TestFrame(sent));
        if (s.code() == Status::Code::kBusy) break;  // the peer is behind: receive, then try again
        if (!s.ok()) return "send " + std::to_string(sent) + ": " + s.ToString();
        ++sent;
      }
      bool got = false;
      while (receive(&frame)) {
        if (frame != TestFrame(received)) return mismatch();
        ++received;
        got = true;
      }
      if (!got && sent == kFrames && received < kFrames) {
        bool arrived = signal->WaitFor([&] { return receive(&frame); });
        if (!arrived) return "timed out after " + std::to_string(received) + " frames" + why_not();
        if (frame != TestFrame(received)) return mismatch();
        ++received;
      }
    }
    return "";
  };

  std::string server_error;
  std::thread server_thread([&] {
    server_error = run_side(
        &server, [&](const std::string& f) { return listener->Send(id, f); },
        [&](std::string* f) {
          ServerEvent event;
          if (!listener->Poll(&event)) return false;
          if (event.kind != ServerEvent::Kind::kFrame || event.conn != id) {
            *f = event.kind == ServerEvent::Kind::kClose ? "the connection's close" : "an unexpected event";
            return true;
          }
          *f = std::move(event.frame);
          return true;
        },
        [&] { return std::string(); });
  });
  std::string device_error = run_side(
      &device, [&](const std::string& f) { return conn->Send(f); },
      [&](std::string* f) { return conn->Receive(f); },
      [&] {
        return conn->IsOpen() ? std::string(" (still open)") : " (" + conn->Send("x").ToString() + ")";
      });
  server_thread.join();
  EXPECT_EQ(device_error, "");
  EXPECT_EQ(server_error, "");
}

// ---------------------------------------------------------------------------------------------------------
// Send budgets (transport.h, Listener). Small budgets and timeouts so that a slow peer is found quickly.

// Conditions no wakeup announces (a pause deadline, ZeroMQ releasing a queue) are polled with
// internal::WaitFor.

namespace {

// A listener and a dialer on `uri` with `options`, the listener's wakeups on `server` (null members and a
// test failure when either cannot be made).
struct Endpoints {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Dialer> dialer;
};
Endpoints ListenAndDial(const std::string& uri, const TransportOptions& options, Signal* server) {
  Endpoints e;
  Result<std::unique_ptr<Listener>> listened = BackendListen(uri, options);
  Result<std::unique_ptr<Dialer>> dialer = BackendDial(uri, options);
  if (!listened.ok() || !dialer.ok()) {
    ADD_FAILURE() << uri << ": " << listened.status().ToString() << " / " << dialer.status().ToString();
    return e;
  }
  e.listener = std::move(listened).value();
  e.listener->SetWakeup(server->Callback());
  e.dialer = std::move(dialer).value();
  return e;
}

// A new connection of `e.dialer`, its wakeups on `device`, and in `*id` its id on the listener (null and
// a test failure when it does not open).
std::unique_ptr<Connection> OpenConnection(const Endpoints& e, Signal* device, Signal* server, ConnId* id) {
  std::unique_ptr<Connection> conn = ConnectOrDie(e.dialer.get());
  if (conn == nullptr) return nullptr;
  conn->SetWakeup(device->Callback());
  *id = AwaitOpen(e.listener.get(), server);
  return *id == 0 ? nullptr : std::move(conn);
}

TransportOptions SmallBudget() {
  TransportOptions options;
  options.queue_bytes_max = 256 << 10;
  options.heartbeat_ms = 100;
  options.heartbeat_timeout_ms = 1000;
  return options;
}

}  // namespace

// One device never reads while the server keeps its queue at the budget; another device's requests are
// answered meanwhile, each within the bound. The slow one is dropped (both sides see it), and what the
// listener holds stays within the hard limit the whole time.
TEST_P(TransportConformanceTest, SlowPeerIsDroppedWhileOthersAreAnswered) {
  const TransportOptions options = SmallBudget();
  const std::string page(64 << 10, 'p');
  Signal server, slow_signal, fast_signal;
  Endpoints e = ListenAndDial(uri_, options, &server);
  ASSERT_TRUE(e.listener && e.dialer);
  Listener* listener = e.listener.get();
  ConnId slow_id = 0, fast_id = 0;
  std::unique_ptr<Connection> slow = OpenConnection(e, &slow_signal, &server, &slow_id);
  ASSERT_NE(slow, nullptr);
  std::unique_ptr<Connection> fast = OpenConnection(e, &fast_signal, &server, &fast_id);
  ASSERT_NE(fast, nullptr);

  bool slow_closed = false;
  uint64_t queued_max = 0;
  const auto deadline = std::chrono::steady_clock::now() + 4 * kWaitMax;
  for (int i = 0; !slow_closed; ++i) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the slow peer was never dropped";
    // Keep the slow peer's queue at its budget: it is never under it for long unless it reads.
    const ListenerStats stats = listener->Stats();
    queued_max = std::max(queued_max, stats.queued_bytes);
    if (stats.queued_bytes < options.queue_bytes_max) {
      // Fails only once the slow peer was dropped for its timeout (its kClose may not be polled yet).
      Status st = listener->Send(slow_id, page);
      ASSERT_TRUE(st.ok() || st.message().find("is closed") != std::string::npos) << st.ToString();
    }
    // A round trip for the other device.
    const std::string request = "q" + std::to_string(i);
    ASSERT_TRUE(fast->Send(request).ok());
    bool answered = false;
    ASSERT_TRUE(server.WaitFor([&] {
      ServerEvent event;
      while (!answered && listener->Poll(&event)) {
        if (event.conn == slow_id) {
          slow_closed = slow_closed || event.kind == ServerEvent::Kind::kClose;
        } else if (event.conn == fast_id && event.kind == ServerEvent::Kind::kFrame) {
          EXPECT_EQ(event.frame, request);
          answered = true;
        } else {
          ADD_FAILURE() << "unexpected event of connection " << event.conn;
        }
      }
      return answered;
    })) << "request "
        << i << " of the fast device was not reported";
    ASSERT_TRUE(listener->Send(fast_id, "a" + std::to_string(i)).ok());
    std::optional<std::string> answer = NextFrame(fast.get(), &fast_signal);
    ASSERT_TRUE(answer.has_value()) << "answer " << i << " did not arrive";
    EXPECT_EQ(*answer, "a" + std::to_string(i));
  }
  EXPECT_LE(queued_max, 2 * options.queue_bytes_max + page.size());
  EXPECT_EQ(listener->Stats().connections_dropped_slow, 1u);
  // Its queue is freed, including whatever ZeroMQ still held for it, while its device still reads nothing.
  EXPECT_TRUE(internal::WaitFor([&] { return listener->Stats().queued_bytes == 0; }, kWaitMax.count()))
      << listener->Stats().queued_bytes << " bytes still queued";
  // A device learns it was dropped once it reads again (ZeroMQ notices a closed socket only when it reads).
  std::string unread;
  EXPECT_TRUE(slow_signal.WaitFor([&] {
    while (slow->Receive(&unread)) {
    }
    return !slow->IsOpen();
  })) << "the slow device never saw the drop";
  EXPECT_TRUE(fast->IsOpen());
}

// A server that keeps sending to a device that never reads: Send past twice the budget drops the connection
// (Unavailable, kClose reported) instead of losing frames while keeping it.
TEST_P(TransportConformanceTest, SendPastHardLimitDropsConnection) {
  const TransportOptions options = SmallBudget();
  const std::string page(64 << 10, 'p');
  Signal server, device;
  Endpoints e = ListenAndDial(uri_, options, &server);
  ASSERT_TRUE(e.listener && e.dialer);
  Listener* listener = e.listener.get();
  ConnId id = 0;
  std::unique_ptr<Connection> conn = OpenConnection(e, &device, &server, &id);
  ASSERT_NE(conn, nullptr);

  Status st;
  uint64_t sent = 0;
  // The device side and the kernel absorb some megabytes; far fewer than this.
  while (st.ok() && sent < (uint64_t{256} << 20)) {
    st = listener->Send(id, page);
    sent += page.size();
  }
  ASSERT_FALSE(st.ok()) << "sent " << sent << " bytes to a device that reads nothing";
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  std::optional<ServerEvent> close = NextEvent(listener, &server);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->kind, ServerEvent::Kind::kClose);
  EXPECT_EQ(close->conn, id);
  EXPECT_FALSE(listener->Send(id, "x").ok());
  // Freed while the device still reads nothing (ZeroMQ's pipe too: the listener cuts the socket off).
  EXPECT_TRUE(internal::WaitFor([&] { return listener->Stats().queued_bytes == 0; }, kWaitMax.count()))
      << listener->Stats().queued_bytes << " bytes still queued";
  std::string unread;
  EXPECT_TRUE(device.WaitFor([&] {
    while (conn->Receive(&unread)) {
    }
    return !conn->IsOpen();
  })) << "the device never saw the drop";
}

// A server that does not keep up: the ZeroMQ listener holds at most inbound_bytes_max (plus the frame that
// crossed it) of what devices sent, and stops reading; nothing is lost, and it all arrives in order once
// the server polls again. (The in-process transport has no queue of its own to bound: a device's Send is
// the listener's queue.)
TEST_P(TransportConformanceTest, AListenerHoldsAtMostItsInboundBudget) {
  if (!GetParam().has_inbound_queue) GTEST_SKIP() << "no inbound queue of its own";
  TransportOptions options = SmallBudget();
  options.inbound_bytes_max = 256 << 10;
  constexpr int kFrames = 200;
  const size_t frame_bytes = 16 << 10;
  Signal server, device;
  Endpoints e = ListenAndDial(uri_, options, &server);
  ASSERT_TRUE(e.listener && e.dialer);
  Listener* listener = e.listener.get();
  ConnId id = 0;
  std::unique_ptr<Connection> conn = OpenConnection(e, &device, &server, &id);
  ASSERT_NE(conn, nullptr);
  for (int i = 0; i < kFrames; ++i) {
    std::string frame = std::to_string(i) + ":";
    frame.resize(frame_bytes, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(conn->Send(frame).ok()) << i;
  }
  ASSERT_TRUE(internal::WaitFor([&] { return listener->Stats().inbound_bytes >= options.inbound_bytes_max; },
                                kWaitMax.count()))
      << listener->Stats().inbound_bytes << " bytes received of " << kFrames * frame_bytes;
  // It stopped there: the rest waits in ZeroMQ's pipes and the sockets.
  EXPECT_FALSE(internal::WaitFor(
      [&] { return listener->Stats().inbound_bytes > options.inbound_bytes_max + frame_bytes; }, 300))
      << listener->Stats().inbound_bytes << " bytes held";
  for (int i = 0; i < kFrames; ++i) {
    std::optional<ServerEvent> event = NextEvent(listener, &server);
    ASSERT_TRUE(event.has_value()) << "frame " << i << " never came";
    ASSERT_EQ(event->kind, ServerEvent::Kind::kFrame);
    EXPECT_EQ(event->conn, id);
    EXPECT_EQ(event->frame.size(), frame_bytes);
    EXPECT_TRUE(event->frame.starts_with(std::to_string(i) + ":")) << "frame " << i << " out of order";
    EXPECT_LE(listener->Stats().inbound_bytes, options.inbound_bytes_max + frame_bytes);
  }
}

namespace {

// Registration happens during static initialisation (OUTPOST_TRANSPORT_CONFORMANCE) or in main before
// InitGoogleTest; the mutex makes either safe whatever the order of the translation units.
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::vector<TransportConformanceBackend>& Registry() {
  static std::vector<TransportConformanceBackend> backends;
  return backends;
}

std::vector<TransportConformanceBackend> RegisteredBackends() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry();
}

}  // namespace

bool RegisterTransportConformance(TransportConformanceBackend backend) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().push_back(std::move(backend));
  return true;
}

void PrintTo(const TransportConformanceBackend& backend, std::ostream* out) { *out << backend.name; }

// GoogleTest evaluates the generator when it registers the tests (InitGoogleTest), after every static
// registration ran.
INSTANTIATE_TEST_SUITE_P(AllTransports, TransportConformanceTest, ::testing::ValuesIn(RegisteredBackends()),
                         [](const ::testing::TestParamInfo<TransportConformanceBackend>& param_info) {
                           return param_info.param.name;
                         });
// A binary that links the library but registers no transport (a storage-only one) is not an error.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TransportConformanceTest);

}  // namespace outpost::conformance
