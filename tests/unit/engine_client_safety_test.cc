// Copyright 2026 The Outpost Authors.
//
// The device engine facing a multi-user server (issue 12): observer callbacks run outside every engine
// lock and may call back into the Client; Stats() is kept in memory; ops beyond the limits the server
// announced fail at once; a server rejection is final; own ops are (user, device); a refused token stops
// reconnecting; a Busy answer makes the device ask again for everything of the failed group. A real
// ServerCore over the in-process transport; a listener wrapper lets a test watch, drop and forge frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "codec.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "testing/cluster.h"
#include "testing/tap_listener.h"

namespace outpost {
namespace {

// Fails the test and ends the process if `done` is not set within `limit`: a deadlock would hang forever.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, limit, [&] { return done_; })) {
            std::fprintf(stderr, "deadlock: the test did not finish in %lld s\n",
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

std::string BatchFrame(std::string_view stream, uint64_t after_seq, const codec::OpFields& op) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<wire::Op>> ops = {codec::BuildOp(b, op)};
  auto ov = b.CreateVector(ops);
  auto batch = wire::CreateBatch(b, b.CreateString(stream), after_seq, ov, op.seq, false);
  return codec::FinishFrame(b, wire::Body::Batch, batch.Union());
}

class ClientSafetyTest : public testing::Test {
 protected:
  ClientSafetyTest()
      : cluster_({.name = "client-safety", .clock_seed = 7, .wrap_listener = harness::Tap}),
        env_(cluster_.clock()) {}
  // A server stepped by hand, on the manual clock, behind a tap; it refuses pushes of "forbidden" unless
  // `so` authorizes otherwise.
  void OpenServer(ServerOptions so = {}) {
    if (!so.authorize) so.authorize = harness::RefusePayload("forbidden");
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
    tap_ = static_cast<harness::TapListener*>(cluster_.listener());
    server_ = &cluster_.server();
  }
  ClientOptions Options(const std::string& device, const std::string& user = "alice") {
    return cluster_.DeviceOptions(user, device);
  }
  Client& Add(ClientOptions o) { return cluster_.Add(std::move(o)); }
  // A server; alice's phone wrote "first" to "chat", and bob's tablet follows "chat" and has merged it.
  void OpenWriterAndFollower(Client** a, Client** b) {
    OpenServer();
    *a = &Add(Options("phone"));
    *b = &Add(Options("tablet", "bob"));
    ASSERT_TRUE((*a)->Submit("chat", "text", "first").ok());
    ASSERT_TRUE((*b)->Follow("chat").ok());
    ASSERT_TRUE(cluster_.StepUntil([&] { return (*b)->Cursor("chat").value() == 1; }));
    Pump(5);
  }
  void Pump(int rounds = 50, int64_t ms = 10) { cluster_.Pump(rounds, ms); }
  // The tap's hooks capture the test body's locals: they must not run when the cluster shuts down (the
  // server's last step sends frames, a watermark echo, after the body returned).
  void TearDown() override {
    if (!cluster_.server_running() || cluster_.listener() == nullptr) return;
    auto* tap = static_cast<harness::TapListener*>(cluster_.listener());
    tap->drop_in = nullptr;
    tap->drop_out = nullptr;
  }

  harness::Cluster cluster_;
  ManualEnv& env_;
  harness::TapListener* tap_ = nullptr;
  Server* server_ = nullptr;
};

// ---- 1. callbacks outside every engine lock ----

TEST_F(ClientSafetyTest, ACallbackMayCallBackIntoTheClientDuringRunUntilIdle) {
  harness::Cluster threaded({.name = "client-safety-threaded", .manual_clock = false});
  ASSERT_TRUE(threaded.StartServer().ok());
  auto c = Client::Open(threaded.DeviceOptions("alice", "phone")).value();
  auto first = c->Submit("chat", "text", "one").value();
  std::atomic<int> calls{0};
  std::atomic<bool> submit_refused{false};
  std::atomic<uint64_t> seen_sent{0};
  uint64_t other = c->Subscribe("chat", [](const std::vector<Change>&) {});
  c->Subscribe("", [&](const std::vector<Change>& changes) {
    ++calls;
    ClientStats s = c->Stats();
    (void)c->IsIdle();
    (void)c->Latest("chat", 10).value();
    (void)c->Outbox(10).value();
    (void)c->Streams().value();
    (void)c->Watermarks("chat").value();
    (void)c->Cursor("chat").value();
    for (const auto& ch : changes) {
      if (ch.op_id.IsNil()) continue;
      auto op = c->Get(ch.op_id).value();
      if (op.state == OpState::kSent) seen_sent = std::max<uint64_t>(seen_sent, op.seq);
    }
    (void)c->MarkRead("chat", s.acks);
    c->Unsubscribe(other);  // from inside a callback: does not wait for itself
    // Submit would wait for the thread that may be running this callback: refused, not a deadlock.
    if (c->Submit("chat", "text", "inner").status().code() == Status::Code::kFailedPrecondition) {
      submit_refused = true;
    }
  });
  {
    Watchdog dog(std::chrono::seconds(60));
    ASSERT_TRUE(c->Submit("chat", "text", "two").ok());  // delivered on the completion thread
    ASSERT_TRUE(c->RunUntilIdle(30'000).ok()) << c->Stats().last_connection_error;
  }
  EXPECT_GT(calls.load(), 0);
  EXPECT_TRUE(submit_refused.load());
  EXPECT_EQ(seen_sent.load(), 2u);
  EXPECT_EQ(c->Get(first).value().state, OpState::kSent);
  c.reset();
  threaded.StopServer();
}

TEST_F(ClientSafetyTest, UnsubscribeWaitsForACallRunningOnAnotherThread) {
  OpenServer();
  Client& c = Add(Options("phone"));
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false, unsubscribing = false, returned = false;
  bool returned_while_running = false;
  int calls = 0;
  uint64_t id = c.Subscribe("chat", [&](const std::vector<Change>&) {
    std::unique_lock<std::mutex> lock(mu);
    ++calls;
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    // Unsubscribe was called before the release; it must not have returned while this call runs. (A
    // bounded wait: it would have returned within microseconds if it did not wait.)
    returned_while_running = cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return returned; });
  });
  Watchdog dog(std::chrono::seconds(60));
  std::thread submitter([&] { ASSERT_TRUE(c.Submit("chat", "text", "one").ok()); });
  std::thread unsubscriber;
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
    unsubscriber = std::thread([&] {
      {
        std::lock_guard<std::mutex> l(mu);
        unsubscribing = true;
        cv.notify_all();
      }
      c.Unsubscribe(id);
      std::lock_guard<std::mutex> l(mu);
      returned = true;
      cv.notify_all();
    });
    cv.wait(lock, [&] { return unsubscribing; });
    release = true;
    cv.notify_all();
  }
  unsubscriber.join();
  submitter.join();
  EXPECT_FALSE(returned_while_running);
  ASSERT_TRUE(c.Submit("chat", "text", "two").ok());
  Pump(10);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, 1);  // none after Unsubscribe
}

// ---- 2. Stats() in O(1) ----

// Counts the store's transactions, so that a test can tell that Stats() reads nothing.
class CountingStorage : public Storage {
 public:
  CountingStorage(std::unique_ptr<Storage> inner, std::atomic<int>* txns)
      : inner_(std::move(inner)), txns_(txns) {}
  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    ++*txns_;
    return inner_->BeginRead();
  }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    ++*txns_;
    return inner_->BeginWrite();
  }
  const std::string& uri() const override { return inner_->uri(); }

 private:
  std::unique_ptr<Storage> inner_;
  std::atomic<int>* txns_;
};

TEST_F(ClientSafetyTest, StatsStaysRightAcrossEveryChangeAndReopenReadingLittle) {
  OpenServer();
  std::atomic<int> txns{0};
  ClientOptions o = Options("phone");
  o.open_store = [&](std::string_view uri, const StorageOptions& so) -> Result<std::unique_ptr<Storage>> {
    OUTPOST_ASSIGN_OR_RETURN(auto inner, OpenStorage(uri, so));
    return std::unique_ptr<Storage>(new CountingStorage(std::move(inner), &txns));
  };
  Client* client = &Add(o);
  // What Stats must say, worked out the slow way from the outbox.
  auto check = [&](Client& c, const char* when) {
    auto outbox = c.Outbox(100000).value();
    uint64_t pending = 0, failed = 0;
    int64_t oldest = 0;
    for (const auto& op : outbox) {
      if (op.state == OpState::kFailed) {
        ++failed;
      } else {
        ++pending;
        if (oldest == 0 || op.created_at_ms < oldest) oldest = op.created_at_ms;
      }
    }
    // Stats() reads the store only to find the oldest pending op of a stream whose oldest settled, failed
    // or was discarded (one read transaction, one seek per such stream), and then not again.
    int before = txns.load();
    ClientStats s = c.Stats();
    EXPECT_LE(txns.load(), before + 1) << when << ": Stats() read the store more than once";
    before = txns.load();
    EXPECT_EQ(c.Stats().oldest_pending_ms, s.oldest_pending_ms) << when;
    EXPECT_EQ(txns.load(), before) << when << ": a second Stats() read the store";
    EXPECT_EQ(s.failed, failed) << when;
    EXPECT_EQ(s.oldest_pending_ms, oldest) << when;
    EXPECT_GE(s.outbox_depth, pending) << when;  // skips count too
    return s;
  };
  Client& c = *client;
  c.SetOnline(false);
  check(c, "empty");
  auto a = c.Submit("chat", "text", "a").value();
  env_.AdvanceMs(5);
  auto bad = c.Submit("chat", "text", "forbidden").value();
  env_.AdvanceMs(5);
  auto d = c.Submit("chat", "text", "d").value();
  EXPECT_EQ(check(c, "three submitted").outbox_depth, 3u);
  EXPECT_EQ(c.Stats().oldest_pending_ms, c.Get(a).value().created_at_ms);
  // Reopen (the memory store outlives the client): the counters come back from the stream metas, the oldest
  // pending op from one seek in its stream.
  Client& r = cluster_.ReopenDevice(c);
  EXPECT_EQ(check(r, "reopened").outbox_depth, 3u);
  EXPECT_EQ(r.Stats().oldest_pending_ms, r.Get(a).value().created_at_ms);
  Pump();
  ClientStats s = check(r, "acked and rejected");
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.outbox_depth, 0u);
  EXPECT_EQ(s.oldest_pending_ms, 0);
  ASSERT_TRUE(r.Retry(bad).ok());
  s = check(r, "retried");
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.oldest_pending_ms, r.Get(bad).value().created_at_ms);
  Pump();
  EXPECT_EQ(check(r, "rejected again").failed, 1u);
  ASSERT_TRUE(r.Discard(bad).ok());
  s = check(r, "discarded");
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(r.Get(d).value().state, OpState::kSent);
  // A pending op discarded: its skip is still to send, the op no longer pending.
  r.SetOnline(false);
  Pump(2);
  auto e = r.Submit("chat", "text", "e").value();
  EXPECT_EQ(check(r, "one more").oldest_pending_ms, r.Get(e).value().created_at_ms);
  ASSERT_TRUE(r.Discard(e).ok());
  s = check(r, "pending discarded");
  EXPECT_EQ(s.oldest_pending_ms, 0);
  EXPECT_EQ(s.outbox_depth, 1u);  // the skip
  r.SetOnline(true);
  Pump();
  EXPECT_EQ(check(r, "skip sent").outbox_depth, 0u);
}

// ---- 3. the server's announced limits ----

TEST_F(ClientSafetyTest, AnOpBeyondTheServersPayloadLimitFailsAtOnceAndHoldsNothingUp) {
  ServerOptions so;
  so.payload_bytes_max = 100;
  OpenServer(so);
  Client& c = Add(Options("phone"));
  c.SetOnline(false);
  // Queued before the Welcome told the limit.
  auto big = c.Submit("chat", "text", std::string(200, 'x')).value();
  auto small = c.Submit("chat", "text", "small").value();
  c.SetOnline(true);
  Pump();
  OpInfo op = c.Get(big).value();
  EXPECT_EQ(op.state, OpState::kFailed);
  EXPECT_EQ(op.last_error_code, Status::Code::kInvalidArgument);
  EXPECT_EQ(op.last_error, "payload of 200 bytes exceeds the server's payload_bytes_max 100");
  EXPECT_EQ(c.Get(small).value().state, OpState::kSent);
  EXPECT_EQ(c.Get(small).value().seq, 1u);
  // A new one, once the limit is known.
  auto big2 = c.Submit("chat", "text", std::string(101, 'y')).value();
  auto after = c.Submit("chat", "text", "after").value();
  Pump();
  EXPECT_EQ(c.Get(big2).value().state, OpState::kFailed);
  EXPECT_EQ(c.Get(after).value().seq, 2u);
  // The server never saw them: their counters were given up with skips, not rejections.
  EXPECT_EQ(server_->Stats().rejected, 0u);
  EXPECT_EQ(server_->Stats().skips, 2u);
  EXPECT_EQ(c.Stats().outbox_depth, 0u);
  EXPECT_EQ(c.Stats().failed, 2u);
}

TEST_F(ClientSafetyTest, AnOpThatCannotFitTheServersFrameFailsInsteadOfBeingResentForever) {
  ServerOptions so;
  so.frame_bytes_max = 16 << 10;
  OpenServer(so);
  Client& c = Add(Options("phone"));
  auto big = c.Submit("chat", "text", std::string(20 << 10, 'x')).value();
  auto next = c.Submit("chat", "text", "next").value();
  Pump(100, 50);
  OpInfo op = c.Get(big).value();
  EXPECT_EQ(op.state, OpState::kFailed);
  EXPECT_NE(op.last_error.find("frame_bytes_max 16384"), std::string::npos) << op.last_error;
  EXPECT_EQ(c.Get(next).value().state, OpState::kSent);
  EXPECT_EQ(c.Get(next).value().seq, 1u);
}

TEST_F(ClientSafetyTest, AKindOrStreamBeyondTheServersAnnouncedLimitsFailsAtOnce) {
  ServerOptions so;
  so.kind_bytes_max = 8;
  so.stream_id_bytes_max = 16;
  OpenServer(so);
  Client& c = Add(Options("phone"));
  auto long_kind = c.Submit("chat", "a-long-kind", "x").value();
  auto long_stream = c.Submit("a-stream-id-of-24-bytes!", "text", "x").value();
  auto fine = c.Submit("chat", "text", "fine").value();
  Pump();
  EXPECT_EQ(c.Get(long_kind).value().state, OpState::kFailed);
  EXPECT_EQ(c.Get(long_kind).value().last_error, "kind of 11 bytes exceeds the server's kind_bytes_max 8");
  EXPECT_EQ(c.Get(long_stream).value().state, OpState::kFailed);
  EXPECT_EQ(c.Get(long_stream).value().last_error,
            "stream id of 24 bytes exceeds the server's stream_id_bytes_max 16");
  EXPECT_EQ(c.Get(fine).value().seq, 1u);
  // Failed on the device: the server applied only the fine op (the skip that gives up the long stream's
  // counter is refused by its shape, which consumes nothing in a stream the server cannot hold anyway).
  EXPECT_EQ(server_->Stats().ops_applied, 1u);
  EXPECT_EQ(c.Stats().outbox_depth, 0u);
}

// ---- 4. a server rejection is final ----

// alice's phone submits an op the server refuses, then one it applies at seq 1; the test then injects a
// page claiming the refused op applied at seq 2 under the refused counter plus `counter_offset`.
class RejectionTest : public ClientSafetyTest {
 protected:
  void RefuseThenClaimApplied(uint64_t counter_offset) {
    OpenServer();
    client_ = &Add(Options("phone"));
    bad_ = client_->Submit("chat", "text", "forbidden").value();
    auto good = client_->Submit("chat", "text", "fine").value();
    Pump();
    ASSERT_EQ(client_->Get(bad_).value().state, OpState::kFailed);
    ASSERT_EQ(client_->Get(good).value().seq, 1u);
    bad_frames_ = client_->Stats().bad_frames;
    const OpInfo rejected = client_->Get(bad_).value();
    ASSERT_NE(rejected.device_counter, 0u);
    page_.op_id = bad_;
    page_.stream = "chat";
    page_.kind = "text";
    page_.payload = "forbidden";
    page_.user = "alice";
    page_.device = "phone";
    page_.device_counter = rejected.device_counter + counter_offset;
    page_.seq = 2;
    tap_->Inject(BatchFrame("chat", 1, page_));
    Pump(5);
  }
  Client* client_ = nullptr;
  OpId bad_;
  uint64_t bad_frames_ = 0;
  codec::OpFields page_;
};

TEST_F(RejectionTest, ARejectedOpNeverBecomesSentLater) {
  RefuseThenClaimApplied(0);
  OpInfo after = client_->Get(bad_).value();
  EXPECT_EQ(after.state, OpState::kFailed);
  EXPECT_EQ(after.last_error, "not allowed here");
  EXPECT_EQ(client_->Stats().failed, 1u);
  EXPECT_EQ(client_->Stats().bad_frames, bad_frames_ + 1);
}

// The exception: the server applied the op under a later counter than the refused one. Only a Retry sends
// an op under a new counter, so the user retried it and this device lost the record (a power loss without
// sync, as the simulator found): the server's word settles it, rather than every page after it being
// judged malformed forever.
TEST_F(RejectionTest, ARefusedOpAppliedUnderALaterCounterWasRetriedAndSettles) {
  RefuseThenClaimApplied(2);
  OpInfo after = client_->Get(bad_).value();
  EXPECT_EQ(after.state, OpState::kSent);
  EXPECT_EQ(after.seq, 2u);
  EXPECT_EQ(after.device_counter, page_.device_counter);
  EXPECT_TRUE(after.last_error.empty());
  EXPECT_EQ(client_->Stats().failed, 0u);
  EXPECT_EQ(client_->Stats().bad_frames, bad_frames_);
  EXPECT_EQ(client_->Cursor("chat").value(), 2u);
}

// ---- 6. own ops are (user, device) ----

TEST_F(ClientSafetyTest, AnotherUsersDeviceOfTheSameIdIsNotThisDevice) {
  OpenServer();
  Client& bob = Add(Options("phone", "bob"));
  Client& alice = Add(Options("phone", "alice"));
  ASSERT_TRUE(bob.Submit("bobs", "text", "from bob's phone").ok());
  ASSERT_TRUE(alice.Follow("bobs").ok());
  Pump();
  auto view = alice.Latest("bobs", 10).value();
  ASSERT_EQ(view.size(), 1u);
  EXPECT_FALSE(view[0].own);
  EXPECT_EQ(view[0].user, "bob");

  // A page with bob's op under the id of alice's unsent op does not take it over. (Bob leaves first, so
  // that the forged page goes to alice's connection.)
  cluster_.CrashDevice(bob);
  alice.SetOnline(false);
  Pump(2);
  auto mine = alice.Submit("bobs", "text", "alice's").value();
  alice.SetOnline(true);
  tap_->drop_in = [](const wire::Frame& f) { return f.body_type() == wire::Body::Push; };
  Pump(3);
  const uint64_t bad_frames = alice.Stats().bad_frames;
  codec::OpFields f;
  f.op_id = mine;
  f.stream = "bobs";
  f.kind = "text";
  f.payload = "bob's";
  f.user = "bob";
  f.device = "phone";
  f.device_counter = 1;
  f.seq = 2;
  tap_->Inject(BatchFrame("bobs", 1, f));
  Pump(3);
  OpInfo op = alice.Get(mine).value();
  EXPECT_EQ(op.state, OpState::kPending);
  EXPECT_EQ(op.payload, "alice's");
  EXPECT_EQ(alice.Stats().bad_frames, bad_frames + 1);
}

// ---- 5. authentication failure ----

TEST_F(ClientSafetyTest, ARefusedTokenStopsReconnectingAndRunUntilIdleSaysSoAtOnce) {
  harness::Cluster auth({.name = "client-safety-auth", .manual_clock = false});
  auth.AddUser("alice", "good");
  ASSERT_TRUE(auth.StartServer().ok());
  ClientOptions o = auth.DeviceOptions("alice", "phone");
  o.token = "wrong";
  o.backoff_base_ms = 1;
  o.reconnect_cap_ms = 2;
  auto c = Client::Open(o).value();
  ASSERT_TRUE(c->Submit("chat", "text", "hi").ok());
  auto start = std::chrono::steady_clock::now();
  Status st = c->RunUntilIdle(60'000);
  EXPECT_EQ(st.code(), Status::Code::kPermissionDenied) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  ClientStats s = c->Stats();
  EXPECT_TRUE(s.auth_failed);
  EXPECT_NE(s.last_connection_error.find("authentication failed: bad token for alice"), std::string::npos)
      << s.last_connection_error;
  // No reconnecting: a second run fails at once and connects no more.
  EXPECT_EQ(c->RunUntilIdle(60'000).code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(c->Stats().connects, s.connects);
  // New credentials: tried again at once.
  c->SetToken("good");
  ASSERT_TRUE(c->RunUntilIdle(30'000).ok()) << c->Stats().last_connection_error;
  EXPECT_FALSE(c->Stats().auth_failed);
  EXPECT_EQ(c->Stats().outbox_depth, 0u);
  c.reset();
  auth.StopServer();
}

// ---- 7. Busy: everything of the failed group is asked again ----

TEST_F(ClientSafetyTest, AfterBusyUnansweredPullsAndWatermarksAreSentAgain) {
  OpenServer();
  Client& c = Add(Options("phone"));
  ASSERT_TRUE(c.Submit("chat", "text", "one").ok());
  Pump();
  ASSERT_EQ(c.Cursor("chat").value(), 1u);
  // The group that holds the next pull and watermark fails: the server answers only Busy, stores nothing
  // (so it echoes no watermark) and sends no page.
  int watermarks = 0, pulls = 0;
  bool failing = true;
  tap_->drop_in = [&](const wire::Frame& f) {
    watermarks += f.body_type() == wire::Body::Watermark;
    pulls += f.body_type() == wire::Body::Pull;
    return false;
  };
  tap_->drop_out = [&](const wire::Frame& f) {
    return failing && (f.body_type() == wire::Body::Batch || f.body_type() == wire::Body::Watermark);
  };
  c.Disconnect();  // the Welcome makes the device report its watermarks again
  Pump(30);
  ASSERT_TRUE(c.Follow("quiet").ok());  // nothing in it: its pull is the only way to learn that
  Pump(5);
  ASSERT_GT(pulls, 0);
  ASSERT_GT(watermarks, 0);
  ASSERT_FALSE(c.IsIdle());  // the pull of "quiet" is unanswered
  failing = false;
  const int watermarks_before = watermarks, pulls_before = pulls;
  tap_->Inject(codec::EncodeError(Status::Code::kBusy, "server store failed, resend: test", false));
  Pump(3);
  EXPECT_GT(pulls, pulls_before);
  EXPECT_GT(watermarks, watermarks_before);
  Pump(6);  // the echoed watermarks are stored once the first waited 50 ms (Receipts)
  EXPECT_TRUE(c.IsIdle());
}

TEST_F(ClientSafetyTest, AnEchoedWatermarkIsAcknowledgedAndNotResentAfterBusy) {
  OpenServer();
  Client& c = Add(Options("phone"));
  ASSERT_TRUE(c.Submit("chat", "text", "one").ok());
  Pump();
  int watermarks = 0;
  tap_->drop_in = [&](const wire::Frame& f) {
    watermarks += f.body_type() == wire::Body::Watermark;
    return false;
  };
  c.Disconnect();
  Pump(30);
  ASSERT_GT(watermarks, 0);
  // The server's echo of the device's own watermark (what the server sends after storing it).
  tap_->Inject(codec::EncodeWatermark("chat", "alice", "phone", WatermarkKind::kDelivered, 1));
  Pump(3);
  const int before = watermarks;
  tap_->Inject(codec::EncodeError(Status::Code::kBusy, "server store failed, resend: test", false));
  Pump(3);
  EXPECT_EQ(watermarks, before);
}

TEST_F(ClientSafetyTest, WatermarksThatArriveTogetherAreStoredInOneCommit) {
  OpenServer();
  Client& c = Add(Options("phone"));
  ASSERT_TRUE(c.Submit("chat", "text", "one").ok());
  Pump();
  int events = 0, calls = 0;
  c.Subscribe("chat", [&](const std::vector<Change>& changes) {
    int mine = 0;
    for (const Change& ch : changes) mine += ch.kind == Change::Kind::kWatermark;
    events += mine;
    calls += mine > 0;
  });
  // Ten receipts of other devices in one round of frames (as a session's first page brings them).
  for (int i = 0; i < 10; ++i) {
    tap_->Inject(
        codec::EncodeWatermark("chat", "bob", "tablet-" + std::to_string(i), WatermarkKind::kDelivered, 1));
  }
  ASSERT_TRUE(c.Step().ok());
  auto wms = c.Watermarks("chat");
  ASSERT_TRUE(wms.ok());
  const size_t before = wms->size();  // the device's own, echoed
  EXPECT_EQ(events, 0) << "stored before the first of them waited 50 ms";
  env_.AdvanceMs(60);
  ASSERT_TRUE(c.Step().ok());
  wms = c.Watermarks("chat");
  ASSERT_TRUE(wms.ok());
  EXPECT_EQ(wms->size(), before + 10);
  EXPECT_EQ(calls, 1) << "one commit, one call";
  EXPECT_EQ(events, 10) << "one event per watermark (each says whose)";
  EXPECT_EQ(c.Stats().store_errors, 0u);
}

TEST_F(ClientSafetyTest, AWallClockSteppedBackDoesNotHoldReceivedWatermarks) {
  OpenServer();
  Client& c = Add(Options("phone"));
  ASSERT_TRUE(c.Submit("chat", "text", "one").ok());
  Pump();
  tap_->Inject(codec::EncodeWatermark("chat", "bob", "tablet", WatermarkKind::kRead, 1));
  ASSERT_TRUE(c.Step().ok());
  env_.SetNowMs(env_.NowMs() - 3'600'000);  // an hour back
  ASSERT_TRUE(c.Step().ok());
  auto wms = c.Watermarks("chat");
  ASSERT_TRUE(wms.ok());
  bool seen = false;
  for (const Watermark& w : *wms) seen = seen || w.device == "tablet";
  EXPECT_TRUE(seen);
}

TEST_F(ClientSafetyTest, ReceiptsTakenInAreKeptWhenTheClientStops) {
  OpenServer();
  ClientOptions o = Options("phone");
  Client& c = Add(o);
  ASSERT_TRUE(c.Submit("chat", "text", "one").ok());
  Pump();
  tap_->Inject(codec::EncodeWatermark("chat", "bob", "tablet", WatermarkKind::kRead, 1));
  ASSERT_TRUE(c.Step().ok());
  c.Stop();  // before the delay ran out
  Client& again = cluster_.ReopenDevice(c);
  auto wms = again.Watermarks("chat");
  ASSERT_TRUE(wms.ok());
  bool seen = false;
  for (const Watermark& w : *wms) seen = seen || (w.device == "tablet" && w.kind == WatermarkKind::kRead);
  EXPECT_TRUE(seen);
}

// ---- live ops: a Notify that carries the new ops ----

TEST_F(ClientSafetyTest, NewOpsReachAFollowerInTheirNotifyWithNoPull) {
  Client *ap = nullptr, *bp = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenWriterAndFollower(&ap, &bp));
  Client &a = *ap, &b = *bp;
  int live_notifies = 0;
  tap_->drop_out = [&](const wire::Frame& f) {
    const wire::Notify* n = f.body_as_Notify();
    live_notifies += n != nullptr && n->ops() != nullptr && n->ops()->size() > 0;
    return false;
  };
  const ClientStats a_before = a.Stats(), b_before = b.Stats();
  ASSERT_TRUE(a.SubmitBatch({{"chat", "text", "two"}, {"chat", "text", "three"}}).ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return b.Cursor("chat").value() == 3; }));
  auto view = b.Latest("chat", 10);
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->size(), 3u);
  EXPECT_EQ((*view)[1].payload, "two");
  EXPECT_EQ((*view)[2].payload, "three");
  EXPECT_EQ((*view)[2].seq, 3u);
  EXPECT_EQ((*view)[2].state, OpState::kSent);
  EXPECT_EQ(b.Stats().pulls, b_before.pulls) << "merged from the Notify, no pull";
  EXPECT_GT(b.Stats().live_merges, b_before.live_merges);
  // The author heard of its ops from the acks: a plain Notify.
  EXPECT_EQ(live_notifies, 1);
  EXPECT_EQ(a.Stats().live_merges, a_before.live_merges);
}

TEST_F(ClientSafetyTest, LiveOpsAfterAGapAreLeftToAPullThatKeepsTheOrder) {
  Client *ap = nullptr, *bp = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenWriterAndFollower(&ap, &bp));
  Client &a = *ap, &b = *bp;
  // The Notify of "two" is lost on its way to b; the one of "three" starts after b's cursor.
  bool lost = false;
  tap_->drop_out = [&](const wire::Frame& f) {
    const wire::Notify* n = f.body_as_Notify();
    if (lost || n == nullptr || n->ops() == nullptr) return false;
    lost = true;
    return true;
  };
  ASSERT_TRUE(a.Submit("chat", "text", "two").ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return lost && a.IsIdle(); }));
  EXPECT_EQ(b.Cursor("chat").value(), 1u);
  const uint64_t pulls = b.Stats().pulls;
  ASSERT_TRUE(a.Submit("chat", "text", "three").ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return b.Cursor("chat").value() == 3; }));
  EXPECT_GT(b.Stats().pulls, pulls);
  auto view = b.Latest("chat", 10);
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*view)[i].seq, i + 1);
  EXPECT_EQ((*view)[1].payload, "two");
}

TEST_F(ClientSafetyTest, AGroupOfManyOpsIsAnnouncedWithAPlainNotify) {
  Client *ap = nullptr, *bp = nullptr;
  ASSERT_NO_FATAL_FAILURE(OpenWriterAndFollower(&ap, &bp));
  Client &a = *ap, &b = *bp;
  size_t most = 0;
  tap_->drop_out = [&](const wire::Frame& f) {
    const wire::Notify* n = f.body_as_Notify();
    if (n != nullptr && n->ops() != nullptr) most = std::max<size_t>(most, n->ops()->size());
    return false;
  };
  std::vector<NewOp> ops;
  for (int i = 0; i < 200; ++i) ops.push_back({"chat", "text", std::string(300, 'x')});  // 60 KB
  ASSERT_TRUE(a.SubmitBatch(ops).ok());
  ASSERT_TRUE(cluster_.StepUntil([&] { return b.Cursor("chat").value() == 201; }));
  EXPECT_LE(most, 64u);
  EXPECT_EQ(b.Latest("chat", 1000).value().size(), 201u);
}

}  // namespace
}  // namespace outpost
