// Copyright 2026 The Outpost Authors.
//
// The device engine against a real ServerCore over the in-process transport, on a manual clock: submit
// (durable, queued, visible; group commit; async; batch), views and paging, flush, backoff, the failure
// taxonomy, retry/discard, depends_on, merge, watermarks, renumbering after a cloned store.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <thread>

#include "codec.h"
#include "conformance/storage_backends.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "testing/cluster.h"
#include "testing/tap_listener.h"

namespace outpost {
namespace {

bool PushHasPayload(const wire::Frame& f, std::string_view payload) {
  if (f.body_type() != wire::Body::Push || !f.body_as_Push()->ops()) return false;
  for (const auto* op : *f.body_as_Push()->ops()) {
    if (codec::Bytes(op->payload()) == payload) return true;
  }
  return false;
}

// A server on the manual clock that refuses pushes of "forbidden", behind a tap that can drop frames.
class ClientTest : public testing::Test {
 protected:
  ClientTest()
      : cluster_({.name = "client-test", .clock_seed = 42, .wrap_listener = harness::Tap}),
        env_(cluster_.clock()) {
    ServerOptions so;
    so.authorize = harness::RefusePayload("forbidden");
    Status st = cluster_.StartServer(so);
    EXPECT_TRUE(st.ok()) << st.ToString();
    filter_ = static_cast<harness::TapListener*>(cluster_.listener());
  }
  ClientOptions Options(const std::string& device, const std::string& user = "alice") {
    return cluster_.DeviceOptions(user, device);
  }
  Client& Add(ClientOptions o) { return cluster_.Add(std::move(o)); }
  // Steps every client and the server `rounds` times, `ms` of manual time apart.
  void Pump(int rounds = 50, int64_t ms = 10) { cluster_.Pump(rounds, ms); }
  static std::vector<OpInfo> All(Client& c, const std::string& stream) {
    return c.Latest(stream, 100000).value();
  }

  harness::Cluster cluster_;
  ManualEnv& env_;
  harness::TapListener* filter_ = nullptr;
};

// The tests that close and reopen a device store, run on every durable backend.
class DurableClientTest : public ClientTest, public testing::WithParamInterface<StorageBackend> {
 protected:
  // A store of the backend under test in its own directory `name` of the cluster's (created here), so that
  // copying that directory copies the store whatever its layout.
  std::string StoreUri(const std::string& name) {
    return GetParam().uri(cluster_.dir().Subdir(name), cluster_.id() + "-" + name);
  }
};

INSTANTIATE_TEST_SUITE_P(, DurableClientTest, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

TEST_P(DurableClientTest, SubmitIsDurableQueuedAndVisibleBeforeAnyNetwork) {
  ClientOptions o = Options("d1");
  o.store = StoreUri("d1");
  o.server.clear();  // offline only
  OpId ids[3];
  {
    auto c = Client::Open(o).value();
    for (int i = 0; i < 3; ++i) ids[i] = c->Submit("chat", "text", "m" + std::to_string(i)).value();
    auto view = All(*c, "chat");
    ASSERT_EQ(view.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(view[i].op_id, ids[i]);
      EXPECT_EQ(view[i].state, OpState::kPending);
      EXPECT_EQ(view[i].device_counter, static_cast<uint64_t>(i + 1));
      EXPECT_EQ(view[i].created_at_ms, env_.NowMs());
      EXPECT_EQ(view[i].attempts, 0u);
      EXPECT_TRUE(view[i].own);
    }
    EXPECT_EQ(c->Outbox().value().size(), 3u);
    EXPECT_EQ(c->Stats().outbox_depth, 3u);
  }  // closed without any shutdown step
  auto c = Client::Open(o).value();
  auto view = All(*c, "chat");
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view[2].payload, "m2");
  EXPECT_EQ(c->Outbox().value().size(), 3u);
  OpId fourth = c->Submit("chat", "text", "m3").value();
  EXPECT_EQ(All(*c, "chat").back().op_id, fourth);
  EXPECT_EQ(All(*c, "chat").back().device_counter, 4u);
}

TEST_F(ClientTest, BadInputIsRefusedAndStoresNothing) {
  Client& c = Add(Options("d1"));
  EXPECT_EQ(c.Submit("", "text", "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c.Submit(std::string(200, 's'), "text", "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c.Submit(std::string("a\0b", 3), "text", "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c.Submit("chat", std::string(100, 'k'), "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c.Submit("chat", "text", std::string((1 << 20) + 1, 'p')).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(All(c, "chat").empty());
  EXPECT_EQ(c.Stats().outbox_depth, 0u);
  ClientOptions long_device = Options("d1");
  long_device.device = std::string(256, 'd');
  EXPECT_EQ(Client::Open(long_device).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(ClientTest, SubmitBatchIsAllOrNothing) {
  Client& c = Add(Options("d1"));
  std::vector<NewOp> ops = {{"chat", "text", "a"}, {"chat", "text", "b"}, {"", "text", "bad stream"}};
  EXPECT_FALSE(c.SubmitBatch(ops).ok());
  EXPECT_TRUE(All(c, "chat").empty());
  ops.pop_back();
  auto ids = c.SubmitBatch(ops).value();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(All(c, "chat").size(), 2u);
}

TEST_F(ClientTest, AnEmptyDeviceIdIsTheStoresOwn) {
  std::string made;
  {
    ClientOptions o = Options("d1");
    o.store = "memory:" + cluster_.id() + "-own-id";
    o.device.clear();
    auto c = Client::Open(o).value();
    made = c->device();
    EXPECT_TRUE(made.starts_with("d-")) << made;
    EXPECT_EQ(made.size(), 18u) << made;
  }
  // Opened again without an id: the same device.
  ClientOptions o = Options("d1");
  o.store = "memory:" + cluster_.id() + "-own-id";
  o.device.clear();
  auto c = Client::Open(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->device(), made);
  o.device = "someone-else";
  c->reset();
  EXPECT_EQ(Client::Open(o).status().code(), Status::Code::kFailedPrecondition);
}

TEST_F(ClientTest, StoreBelongsToOneDevice) {
  { auto c = Client::Open(Options("d1")).value(); }
  ClientOptions o = Options("d1");
  o.device = "d2";
  auto other = Client::Open(o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Status::Code::kFailedPrecondition);
}

TEST_F(ClientTest, ConcurrentSubmitsAreEachDurableAndKeepPerThreadOrder) {
  Client& c = Add(Options("d1"));
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::vector<OpId>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) got[t].push_back(c.Submit("chat", "text", std::to_string(t)).value());
    });
  }
  for (auto& th : threads) th.join();
  auto view = All(c, "chat");
  ASSERT_EQ(view.size(), static_cast<size_t>(kThreads * kEach));
  std::map<OpId, size_t> place;
  std::set<uint64_t> counters;
  for (size_t i = 0; i < view.size(); ++i) {
    place[view[i].op_id] = i;
    counters.insert(view[i].device_counter);
  }
  EXPECT_EQ(counters.size(), view.size());
  EXPECT_EQ(*counters.rbegin(), view.size());
  for (const auto& ids : got) {
    for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(place.at(ids[i - 1]), place.at(ids[i]));
  }
}

TEST_F(ClientTest, SubmitAsyncCompletesEveryOp) {
  Client& c = Add(Options("d1"));
  constexpr int kOps = 2000;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, failed = 0;
  for (int i = 0; i < kOps; ++i) {
    c.SubmitAsync("chat", "text", std::to_string(i), {}, [&](Result<OpId> r) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (!r.ok()) ++failed;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == kOps; }));
  EXPECT_EQ(failed, 0);
  auto view = All(c, "chat");
  ASSERT_EQ(view.size(), static_cast<size_t>(kOps));
  for (int i = 0; i < kOps; ++i) EXPECT_EQ(view[i].payload, std::to_string(i));  // one thread: submit order
}

TEST_F(ClientTest, FlushSendsInSubmitOrderAndObserversSeeEachStep) {
  Client& c = Add(Options("d1"));
  std::vector<Change> seen;
  c.Subscribe("chat", [&](const std::vector<Change>& ch) { seen.insert(seen.end(), ch.begin(), ch.end()); });
  std::vector<OpId> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(c.Submit("chat", "text", std::to_string(i)).value());
  Pump();
  auto view = All(c, "chat");
  ASSERT_EQ(view.size(), 20u);
  for (size_t i = 0; i < view.size(); ++i) {
    EXPECT_EQ(view[i].op_id, ids[i]);
    EXPECT_EQ(view[i].state, OpState::kSent);
    EXPECT_EQ(view[i].seq, i + 1);
  }
  EXPECT_TRUE(c.Outbox().value().empty());
  EXPECT_TRUE(c.IsIdle());
  int added = 0, updated = 0;
  for (const auto& ch : seen) {
    added += ch.kind == Change::Kind::kAdded;
    updated += ch.kind == Change::Kind::kUpdated;
  }
  EXPECT_EQ(added, 20);
  EXPECT_EQ(updated, 20);
}

TEST_F(ClientTest, PagingWalksTheWholeViewOnceWithoutGaps) {
  Client& c = Add(Options("d1"));
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(c.Submit("chat", "text", std::to_string(i)).ok());
  Pump();
  c.SetOnline(false);
  for (int i = 200; i < 250; ++i) ASSERT_TRUE(c.Submit("chat", "text", std::to_string(i)).ok());
  Pump(5);
  std::vector<OpInfo> all;
  auto page = c.Latest("chat", 40).value();
  while (!page.empty()) {
    all.insert(all.begin(), page.begin(), page.end());
    page = c.Before("chat", page.front().position, 40).value();
  }
  ASSERT_EQ(all.size(), 250u);
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(all[i].payload, std::to_string(i));
    EXPECT_EQ(all[i].state, i < 200 ? OpState::kSent : OpState::kPending);
  }
  EXPECT_FALSE(c.Before("other", all[10].position, 5).ok());
}

TEST_F(ClientTest, OfflineOpsWaitThenFlushOnReconnect) {
  Client& c = Add(Options("d1"));
  c.SetOnline(false);
  auto id = c.Submit("chat", "text", "hi").value();
  Pump();
  EXPECT_FALSE(c.Stats().connected);
  EXPECT_EQ(c.Get(id).value().state, OpState::kPending);
  EXPECT_EQ(c.Get(id).value().attempts, 0u);  // not being connected is not a failed attempt
  c.SetOnline(true);
  Pump();
  EXPECT_TRUE(c.Stats().connected);
  EXPECT_EQ(c.Get(id).value().state, OpState::kSent);
}

TEST_F(ClientTest, UnansweredSendsBackOffWithCappedFullJitter) {
  ClientOptions o = Options("d1");
  Client& c = Add(o);
  filter_->drop_in = [](const wire::Frame& f) { return f.body_type() == wire::Body::Push; };
  auto id = c.Submit("chat", "text", "hi").value();
  Pump(1);
  int64_t sent_at = env_.NowMs();
  Pump(100);  // 1 s: the ack timeout passes
  OpInfo op = c.Get(id).value();
  EXPECT_GE(op.attempts, 1u);
  EXPECT_EQ(op.last_error_code, Status::Code::kTimeout);
  EXPECT_NE(op.last_error.find("no answer"), std::string::npos);
  // Many more attempts: every wait is within [0, min(cap, base * 2^attempts)] after its timeout.
  for (int i = 0; i < 40; ++i) {
    Pump(50, 20);
    op = c.Get(id).value();
    int64_t ceiling = std::min<int64_t>(o.backoff_cap_ms, o.backoff_base_ms << std::min(op.attempts, 30u));
    EXPECT_LE(op.next_attempt_at_ms - env_.NowMs(), ceiling + o.ack_timeout_ms);
  }
  EXPECT_GE(op.attempts, 5u);
  EXPECT_GT(env_.NowMs(), sent_at);
  EXPECT_EQ(op.state, OpState::kPending);  // unlimited attempts by default
  filter_->drop_in = nullptr;
  Pump(600, 20);
  EXPECT_EQ(c.Get(id).value().state, OpState::kSent);
}

TEST_F(ClientTest, ExhaustedOpFailsAndItsCounterBecomesASkip) {
  ClientOptions o = Options("d1");
  o.attempts_max = 2;
  o.ops_per_batch_max = 1;
  Client& c = Add(o);
  filter_->drop_in = [](const wire::Frame& f) { return PushHasPayload(f, "stuck"); };
  auto stuck = c.Submit("chat", "text", "stuck").value();
  auto next = c.Submit("chat", "text", "next").value();
  Pump(500, 20);
  OpInfo s = c.Get(stuck).value();
  EXPECT_EQ(s.state, OpState::kFailed);
  EXPECT_NE(s.last_error.find("exhausted"), std::string::npos);
  EXPECT_EQ(s.device_counter, 0u);
  EXPECT_EQ(c.Get(next).value().state, OpState::kSent);  // not held up by the failed op
  EXPECT_EQ(c.Get(next).value().seq, 1u);
  filter_->drop_in = nullptr;
  ASSERT_TRUE(c.Retry(stuck).ok());
  EXPECT_EQ(c.Get(stuck).value().state, OpState::kPending);
  Pump(200, 20);
  EXPECT_EQ(c.Get(stuck).value().state, OpState::kSent);
  EXPECT_EQ(c.Get(stuck).value().seq, 2u);
  EXPECT_EQ(c.Stats().failed, 0u);
}

TEST_F(ClientTest, PermanentRejectionFailsAtOnceWithTheReasonAndDoesNotBlock) {
  Client& c = Add(Options("d1"));
  auto a = c.Submit("chat", "text", "a").value();
  auto bad = c.Submit("chat", "text", "forbidden").value();
  auto b = c.Submit("chat", "text", "b").value();
  Pump();
  EXPECT_EQ(c.Get(a).value().seq, 1u);
  EXPECT_EQ(c.Get(b).value().seq, 2u);
  OpInfo f = c.Get(bad).value();
  EXPECT_EQ(f.state, OpState::kFailed);
  EXPECT_EQ(f.last_error, "not allowed here");
  EXPECT_EQ(f.last_error_code, Status::Code::kPermissionDenied);
  EXPECT_EQ(c.Stats().failed, 1u);
  EXPECT_EQ(c.Outbox().value().size(), 1u);
  ASSERT_TRUE(c.Retry(bad).ok());  // judged again, refused again
  Pump();
  EXPECT_EQ(c.Get(bad).value().state, OpState::kFailed);
  ASSERT_TRUE(c.Discard(bad).ok());
  EXPECT_FALSE(c.Get(bad).ok());
  EXPECT_TRUE(c.Outbox().value().empty());
  EXPECT_EQ(c.Discard(a).code(), Status::Code::kFailedPrecondition);  // sent ops stay
  EXPECT_EQ(c.Retry(a).code(), Status::Code::kFailedPrecondition);
}

TEST_F(ClientTest, BlockingPolicyHoldsLaterOpsUntilTheFailedOneIsResolved) {
  Client& c = Add(Options("d1"));
  ASSERT_TRUE(c.SetStreamPolicy("chat", true).ok());
  auto bad = c.Submit("chat", "text", "forbidden").value();
  Pump();
  auto later = c.Submit("chat", "text", "later").value();
  Pump();
  EXPECT_EQ(c.Get(bad).value().state, OpState::kFailed);
  EXPECT_EQ(c.Get(later).value().state, OpState::kPending);
  ASSERT_TRUE(c.Discard(bad).ok());
  Pump();
  EXPECT_EQ(c.Get(later).value().state, OpState::kSent);
}

TEST_F(ClientTest, DependentOpWaitsForItsParentAndFailsWithIt) {
  Client& c = Add(Options("d1"));
  filter_->drop_in = [](const wire::Frame& f) { return PushHasPayload(f, "upload"); };
  auto parent = c.Submit("media", "blob", "upload").value();
  auto child = c.Submit("chat", "text", "photo", {.depends_on = parent}).value();
  Pump(20);
  EXPECT_EQ(c.Get(child).value().state, OpState::kPending);
  filter_->drop_in = nullptr;
  Pump(300, 20);
  EXPECT_EQ(c.Get(parent).value().state, OpState::kSent);
  EXPECT_EQ(c.Get(child).value().state, OpState::kSent);

  auto bad_parent = c.Submit("media", "blob", "forbidden").value();
  auto orphan = c.Submit("chat", "text", "photo 2", {.depends_on = bad_parent}).value();
  auto after = c.Submit("chat", "text", "after").value();
  Pump(100);
  OpInfo o = c.Get(orphan).value();
  EXPECT_EQ(o.state, OpState::kFailed);
  EXPECT_NE(o.last_error.find("dependency failed: not allowed here"), std::string::npos);
  EXPECT_EQ(c.Get(after).value().state, OpState::kSent);
}

TEST_F(ClientTest, LostAcksAreSettledByThePull) {
  Client& c = Add(Options("d1"));
  filter_->drop_out = [](const wire::Frame& f) { return f.body_type() == wire::Body::PushAck; };
  auto id = c.Submit("chat", "text", "hi").value();
  Pump(30);
  OpInfo op = c.Get(id).value();
  EXPECT_EQ(op.state, OpState::kSent);
  EXPECT_EQ(op.seq, 1u);
  EXPECT_EQ(All(c, "chat").size(), 1u);
  EXPECT_EQ(c.Stats().outbox_depth, 0u);
}

TEST_F(ClientTest, DevicesConvergeAndReceiptsFlowAsWatermarks) {
  Client& a = Add(Options("a1", "alice"));
  ClientOptions bo = Options("b1", "bob");
  Client& b = Add(bo);
  ClientOptions co = Options("c1", "carol");
  co.send_read_receipts = false;
  Client& c = Add(co);
  ASSERT_TRUE(b.Follow("chat").ok());
  ASSERT_TRUE(c.Follow("chat").ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.Submit("chat", "text", std::to_string(i)).ok());
  Pump();
  auto av = All(a, "chat"), bv = All(b, "chat"), cv = All(c, "chat");
  ASSERT_EQ(bv.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(bv[i].op_id, av[i].op_id);
    EXPECT_EQ(cv[i].op_id, av[i].op_id);
    EXPECT_FALSE(bv[i].own);
    EXPECT_EQ(bv[i].user, "alice");
  }
  ASSERT_TRUE(b.MarkRead("chat", 5).ok());
  ASSERT_TRUE(c.MarkRead("chat", 5).ok());
  Pump();
  std::map<std::pair<std::string, WatermarkKind>, uint64_t> marks;
  for (const auto& w : a.Watermarks("chat").value()) marks[{w.user, w.kind}] = w.seq;
  EXPECT_EQ((marks[{"bob", WatermarkKind::kDelivered}]), 5u);
  EXPECT_EQ((marks[{"bob", WatermarkKind::kRead}]), 5u);
  EXPECT_EQ((marks[{"carol", WatermarkKind::kDelivered}]), 5u);
  EXPECT_EQ(marks.count({"carol", WatermarkKind::kRead}), 0u);  // receipts off
  EXPECT_EQ(b.Cursor("chat").value(), 5u);
}

TEST_P(DurableClientTest, ACopiedStoreRenumbersAndLosesNothing) {
  ClientOptions o = Options("d1");
  o.store = StoreUri("orig");
  OpId first;
  {
    Client& c = Add(o);
    first = c.Submit("chat", "text", "before copy").value();
    Pump();
    cluster_.CrashDevice(c);
  }
  std::filesystem::copy(cluster_.dir() / "orig", cluster_.dir() / "copy",
                        std::filesystem::copy_options::recursive);
  Client& orig = Add(o);
  ClientOptions co = o;
  co.store = StoreUri("copy");
  Client& copy = Add(co);
  copy.SetOnline(false);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(orig.Submit("chat", "text", "orig " + std::to_string(i)).ok());
  Pump();
  std::vector<OpId> copied;
  for (int i = 0; i < 3; ++i)
    copied.push_back(copy.Submit("chat", "text", "copy " + std::to_string(i)).value());
  copy.SetOnline(true);
  Pump(300, 20);
  EXPECT_GT(copy.Stats().conflicts, 0u);
  auto view = All(copy, "chat");
  ASSERT_EQ(view.size(), 7u);
  std::set<OpId> unique;
  for (size_t i = 0; i < view.size(); ++i) {
    EXPECT_EQ(view[i].state, OpState::kSent);
    EXPECT_EQ(view[i].seq, i + 1);
    unique.insert(view[i].op_id);
  }
  EXPECT_EQ(unique.size(), 7u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(view[4 + i].op_id, copied[i]);  // the copy's ops keep their order
}

TEST_F(ClientTest, BackgroundThreadSyncsOnTheSystemClock) {
  harness::Cluster bg({.name = "client-test-bg", .manual_clock = false});
  ASSERT_TRUE(bg.StartServer().ok());
  Client* c = &bg.AddDevice("alice", "bg");
  std::mutex mu;
  std::condition_variable cv;
  int sent = 0;
  c->Subscribe("chat", [&](const std::vector<Change>& changes) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& ch : changes) sent += ch.kind == Change::Kind::kUpdated;
    cv.notify_all();
  });
  c->Start();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c->Submit("chat", "text", std::to_string(i)).ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return sent == 100; }));
  lock.unlock();
  c->Stop();
  bg.StopServer();
  auto view = c->Latest("chat", 1000).value();
  ASSERT_EQ(view.size(), 100u);
  EXPECT_EQ(view.back().seq, 100u);
}

}  // namespace
}  // namespace outpost
