// Copyright 2026 The Outpost Authors.
//
// One suite every transport must pass (instantiated per backend from transport_backends.h), then tests of
// what only the in-process transport promises, then tests of the fault-injecting wrapper.
//
// Transports may deliver asynchronously, so the suite never assumes a frame has arrived when Send returns:
// it waits on wakeup callbacks with a deadline (Signal), and never sleeps.
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

#include "conformance/transport_backends.h"
#include "outpost/env.h"
#include "outpost/transport.h"
#include "testing/wait.h"
// The faulty wrapper's counters are an internal header of outpost_transport; the test include path does not
// reach engine/transport, hence the relative path.
#include "transport/inproc/faulty_transport.h"

namespace outpost {
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

class TransportConformanceTest : public ::testing::TestWithParam<TransportBackend> {
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
  Result<std::unique_ptr<Listener>> second = Listen(uri_);
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
// harness::WaitFor.

// A listener and a dialer on `uri` with `options`, the listener's wakeups on `server` (null members and a
// test failure when either cannot be made).
struct Endpoints {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Dialer> dialer;
};
Endpoints ListenAndDial(const std::string& uri, const TransportOptions& options, Signal* server) {
  Endpoints e;
  Result<std::unique_ptr<Listener>> listened = Listen(uri, options);
  Result<std::unique_ptr<Dialer>> dialer = NewDialer(uri, options);
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
  EXPECT_TRUE(harness::WaitFor([&] { return listener->Stats().queued_bytes == 0; }, kWaitMax.count()))
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
  EXPECT_TRUE(harness::WaitFor([&] { return listener->Stats().queued_bytes == 0; }, kWaitMax.count()))
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
  if (std::string(GetParam().name) == "inproc") GTEST_SKIP() << "no inbound queue of its own";
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
  ASSERT_TRUE(harness::WaitFor([&] { return listener->Stats().inbound_bytes >= options.inbound_bytes_max; },
                               kWaitMax.count()))
      << listener->Stats().inbound_bytes << " bytes received of " << kFrames * frame_bytes;
  // It stopped there: the rest waits in ZeroMQ's pipes and the sockets.
  EXPECT_FALSE(harness::WaitFor(
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

INSTANTIATE_TEST_SUITE_P(AllTransports, TransportConformanceTest, ::testing::ValuesIn(AllTransportBackends()),
                         [](const ::testing::TestParamInfo<TransportBackend>& param_info) {
                           return std::string(param_info.param.name);
                         });

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
