// Copyright 2026 The Outpost Authors.
//
// ServerCore driven frame by frame: dedupe, counter order (gap, conflict), permanent rejections and
// skips consuming counters, paged pulls, notify, watermarks, and state that survives a reopen.
#include <gtest/gtest.h>

#include "codec.h"
#include "conformance/storage_backends.h"
#include "outpost/server.h"
#include "testing/server_frames.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

using frames::Id;
using frames::TestOp;

std::string Hello(const std::string& device, std::vector<std::string> follows = {},
                  uint32_t version = codec::kProtocolVersion) {
  return frames::HelloFrame("user-" + device, device, follows, version);
}
std::string Push(const std::vector<TestOp>& ops, uint64_t batch_id = 1) {
  return frames::PushFrame(ops, batch_id);
}

class ServerCoreTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open(std::string store = "") {
    static int run = 0;
    if (store.empty()) store = "memory:server-test-" + std::to_string(++run);
    store_ = store;
    ServerOptions o;
    o.store = store;
    o.pull_page_max = 3;
    o.authorize = [](const AccessRequest& r) {
      if (r.access == Access::kPush && r.payload == "forbidden")
        return Status::PermissionDenied("not a member");
      if (r.access == Access::kPull && r.stream == "secret") return Status::PermissionDenied("not a member");
      return Status::OK();
    };
    core_.reset();
    core_ = ServerCore::Open(o).value();
  }
  std::vector<Outbound> Send(ConnId conn, std::string frame) {
    std::vector<ServerEvent> ev(1);
    ev[0].conn = conn;
    ev[0].frame = std::move(frame);
    std::vector<Outbound> out;
    core_->Handle(ev, &out);
    return out;
  }
  void Connect(ConnId conn, const std::string& device, std::vector<std::string> follows = {"s"}) {
    std::vector<ServerEvent> ev(1);
    ev[0].kind = ServerEvent::Kind::kOpen;
    ev[0].conn = conn;
    std::vector<Outbound> out;
    core_->Handle(ev, &out);
    auto got = Send(conn, Hello(device, follows));
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(Body(got[0])->body_type(), wire::Body::Welcome);
  }
  static const wire::Frame* Body(const Outbound& o) { return codec::DecodeFrame(o.frame, 1 << 30).value(); }
  // Pushes and returns the results of the one PushAck answer (to `conn`).
  std::vector<std::tuple<wire::ResultCode, uint64_t, uint64_t>> PushOps(ConnId conn,
                                                                        const std::vector<TestOp>& ops) {
    std::vector<std::tuple<wire::ResultCode, uint64_t, uint64_t>> res;
    for (const auto& o : Send(conn, Push(ops))) {
      if (o.conn != conn || Body(o)->body_type() != wire::Body::PushAck) continue;
      for (const auto* r : *Body(o)->body_as_PushAck()->results())
        res.emplace_back(r->code(), r->seq(), r->last_counter());
    }
    return res;
  }
  std::vector<std::pair<OpId, uint64_t>> PullAll(ConnId conn, const std::string& stream) {
    std::vector<std::pair<OpId, uint64_t>> ops;
    uint64_t after = 0;
    for (int i = 0; i < 100; ++i) {
      auto out = Send(conn, codec::EncodePull(stream, after, 0));
      const wire::Batch* b = nullptr;
      for (const auto& o : out) {
        if (Body(o)->body_type() == wire::Body::Batch) b = Body(o)->body_as_Batch();
      }
      EXPECT_NE(b, nullptr);
      if (!b) break;
      EXPECT_EQ(b->after_seq(), after);
      for (const auto* op : *b->ops()) ops.emplace_back(codec::FromWire(op->op_id()), op->seq());
      after += b->ops()->size();
      if (!b->has_more()) break;
    }
    return ops;
  }

  std::string store_;
  std::unique_ptr<ServerCore> core_;
};

using RC = wire::ResultCode;

TEST_F(ServerCoreTest, AppliesInCounterOrderWithContiguousSeqs) {
  Connect(1, "d1");
  auto r = PushOps(1, {{Id(1), "s", 1}, {Id(2), "s", 2}, {Id(3), "s", 3}});
  ASSERT_EQ(r.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(std::get<0>(r[i]), RC::Applied);
    EXPECT_EQ(std::get<1>(r[i]), static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(core_->Stats().ops_applied, 3u);
}

TEST_F(ServerCoreTest, ResentOpIsADuplicateWithItsOriginalSeq) {
  Connect(1, "d1");
  ASSERT_EQ(std::get<0>(PushOps(1, {{Id(1), "s", 1}})[0]), RC::Applied);
  auto again = PushOps(1, {{Id(1), "s", 1}});
  EXPECT_EQ(std::get<0>(again[0]), RC::Duplicate);
  EXPECT_EQ(std::get<1>(again[0]), 1u);
  EXPECT_EQ(PullAll(1, "s").size(), 1u);
}

TEST_F(ServerCoreTest, CounterAheadIsAGapAndStoresNothing) {
  Connect(1, "d1");
  auto r = PushOps(1, {{Id(3), "s", 3}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Gap);
  EXPECT_EQ(std::get<2>(r[0]), 0u);
  EXPECT_TRUE(PullAll(1, "s").empty());
  // The same op, once its predecessors arrive, applies.
  auto ok = PushOps(1, {{Id(1), "s", 1}, {Id(2), "s", 2}, {Id(3), "s", 3}});
  EXPECT_EQ(std::get<0>(ok[2]), RC::Applied);
}

TEST_F(ServerCoreTest, UsedCounterWithANewIdIsAConflict) {
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}});
  auto r = PushOps(1, {{Id(9), "s", 1}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Conflict);
  EXPECT_EQ(std::get<2>(r[0]), 1u);
  // Renumbered after the server's counter, it applies.
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(9), "s", 2}})[0]), RC::Applied);
}

TEST_F(ServerCoreTest, RenumberedDuplicateConsumesItsNewCounter) {
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}});
  // Op 1 resent under counter 2 (after a renumber): a duplicate, and counter 2 is used up.
  auto r = PushOps(1, {{Id(1), "s", 2}, {Id(2), "s", 3}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Duplicate);
  EXPECT_EQ(std::get<0>(r[1]), RC::Applied);
}

TEST_F(ServerCoreTest, AnAppliedOpUnderANewCounterStillGoesThroughCounterOrder) {
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}});
  // Retried by a device that gave up on it, under counter 3 while counter 2 is not used yet: answering
  // Duplicate here would leave counter 2..3 a hole, so it is a Gap.
  auto ahead = PushOps(1, {{Id(1), "s", 3}});
  EXPECT_EQ(std::get<0>(ahead[0]), RC::Gap);
  EXPECT_EQ(std::get<2>(ahead[0]), 1u);
  auto in_order = PushOps(1, {{Id(2), "s", 2}, {Id(1), "s", 3}, {Id(3), "s", 4}});
  EXPECT_EQ(std::get<0>(in_order[0]), RC::Applied);
  EXPECT_EQ(std::get<0>(in_order[1]), RC::Duplicate);  // counter 3 consumed
  EXPECT_EQ(std::get<1>(in_order[1]), 1u);
  EXPECT_EQ(std::get<0>(in_order[2]), RC::Applied);
  EXPECT_EQ(PullAll(1, "s").size(), 3u);
}

TEST_F(ServerCoreTest, PermanentRejectionConsumesTheCounterAndIsRemembered) {
  Connect(1, "d1");
  auto r = PushOps(1, {{Id(1), "s", 1, "forbidden"}, {Id(2), "s", 2}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Rejected);
  EXPECT_EQ(std::get<0>(r[1]), RC::Applied);  // one bad op never blocks the ones after it
  EXPECT_EQ(std::get<1>(r[1]), 1u);
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(1), "s", 1, "forbidden"}})[0]), RC::Rejected);
  EXPECT_EQ(PullAll(1, "s").size(), 1u);
}

TEST_F(ServerCoreTest, SkipConsumesTheCounterAndTheOpMayReturnLater) {
  Connect(1, "d1");
  auto r = PushOps(1, {{Id(1), "s", 1, "x", /*skip=*/true}, {Id(2), "s", 2}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Skipped);
  EXPECT_EQ(std::get<0>(r[1]), RC::Applied);
  // The original op arriving late under the skipped counter is answered as skipped, never applied.
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(1), "s", 1}})[0]), RC::Skipped);
  // Retried under a new counter, it applies once.
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(1), "s", 3}})[0]), RC::Applied);
  EXPECT_EQ(PullAll(1, "s").size(), 2u);
}

TEST_F(ServerCoreTest, SkipOfAnAppliedOpReturnsItsSeq) {
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}});
  auto r = PushOps(1, {{Id(1), "s", 1, "x", true}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Duplicate);
  EXPECT_EQ(std::get<1>(r[0]), 1u);
}

TEST_F(ServerCoreTest, AnOpIdBelongsToOneDevice) {
  Connect(1, "d1");
  Connect(2, "d2");
  PushOps(1, {{Id(1), "s", 1}});
  auto r = PushOps(2, {{Id(1), "s", 1}});
  EXPECT_EQ(std::get<0>(r[0]), RC::Rejected);
  EXPECT_EQ(PullAll(2, "s").size(), 1u);
}

TEST_F(ServerCoreTest, CountersAreSeparatePerDeviceAndStream) {
  Connect(1, "d1");
  Connect(2, "d2");
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(1), "a", 1}})[0]), RC::Applied);
  EXPECT_EQ(std::get<0>(PushOps(1, {{Id(2), "b", 1}})[0]), RC::Applied);
  EXPECT_EQ(std::get<0>(PushOps(2, {{Id(3), "a", 1}})[0]), RC::Applied);
  auto a = PullAll(1, "a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].second, 2u);
}

TEST_F(ServerCoreTest, PullPagesUntilHasMoreIsFalse) {
  Connect(1, "d1");
  std::vector<TestOp> ops;
  for (uint8_t i = 1; i <= 7; ++i) ops.push_back({Id(i), "s", i});
  PushOps(1, ops);
  auto all = PullAll(1, "s");  // page max is 3: pages of 3, 3, 1
  ASSERT_EQ(all.size(), 7u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].second, i + 1);
    EXPECT_EQ(all[i].first, Id(static_cast<uint8_t>(i + 1)));
  }
}

TEST_F(ServerCoreTest, PullOfAForbiddenStreamIsRefused) {
  Connect(1, "d1");
  auto out = Send(1, codec::EncodePull("secret", 0, 10));
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(Body(out[0])->body_type(), wire::Body::Error);
  EXPECT_EQ(Body(out[0])->body_as_Error()->code(), static_cast<uint16_t>(Status::Code::kPermissionDenied));
  // Then an empty, final page, so that the device's pull completes with nothing to show.
  ASSERT_EQ(Body(out[1])->body_type(), wire::Body::Batch);
  EXPECT_EQ(Body(out[1])->body_as_Batch()->ops()->size(), 0u);
  EXPECT_FALSE(Body(out[1])->body_as_Batch()->has_more());
}

TEST_F(ServerCoreTest, FollowersAreNotified) {
  Connect(1, "d1");
  Connect(2, "d2", {"s"});
  auto out = Send(1, Push({{Id(1), "s", 1}}));
  bool notified = false;
  for (const auto& o : out) {
    if (o.conn == 2 && Body(o)->body_type() == wire::Body::Notify) {
      notified = true;
      EXPECT_EQ(Body(o)->body_as_Notify()->high_seq(), 1u);
    }
  }
  EXPECT_TRUE(notified);
}

TEST_F(ServerCoreTest, WatermarksAreMonotonicClampedAndRelayed) {
  Connect(1, "d1");
  Connect(2, "d2", {"s"});
  PushOps(1, {{Id(1), "s", 1}, {Id(2), "s", 2}});
  auto relayed = [&](const std::vector<Outbound>& out) -> int64_t {
    for (const auto& o : out) {
      if (o.conn == 2 && Body(o)->body_type() == wire::Body::Watermark) {
        return static_cast<int64_t>(Body(o)->body_as_Watermark()->seq());
      }
    }
    return -1;
  };
  EXPECT_EQ(relayed(Send(1, codec::EncodeWatermark("s", "", "", WatermarkKind::kRead, 99))), 2);  // clamped
  EXPECT_EQ(relayed(Send(1, codec::EncodeWatermark("s", "", "", WatermarkKind::kRead, 1))), -1);  // backwards
  EXPECT_EQ(relayed(Send(1, codec::EncodeWatermark("s", "", "", WatermarkKind::kRead, 2))), -1);  // same
}

TEST_F(ServerCoreTest, NothingButHelloBeforeHello) {
  auto out = Send(7, codec::EncodePull("s", 0, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Body(out[0])->body_type(), wire::Body::Error);
  EXPECT_TRUE(out[0].close_after);
  auto bad_version = Send(8, Hello("d8", {}, 99));
  ASSERT_EQ(bad_version.size(), 1u);
  EXPECT_EQ(Body(bad_version[0])->body_type(), wire::Body::Error);
}

TEST_F(ServerCoreTest, WelcomeCarriesTheDevicesCounters) {
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}, {Id(2), "s", 2}});
  auto out = Send(2, Hello("d1", {}));
  ASSERT_EQ(out.size(), 1u);
  const wire::Welcome* w = Body(out[0])->body_as_Welcome();
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->counters()->size(), 1u);
  EXPECT_EQ(w->counters()->Get(0)->counter(), 2u);
  EXPECT_EQ(w->counters()->Get(0)->high_seq(), 2u);
}

// Server state on every durable backend.
class DurableServerCoreTest : public ServerCoreTest, public testing::WithParamInterface<StorageBackend> {};

INSTANTIATE_TEST_SUITE_P(, DurableServerCoreTest, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

TEST_P(DurableServerCoreTest, StateSurvivesAReopen) {
  harness::TempDir dir("outpost-server-test");
  const std::string uri = GetParam().uri(dir.path(), "server-test-" + GetParam().name);
  Open(uri);
  Connect(1, "d1");
  PushOps(1, {{Id(1), "s", 1}, {Id(2), "s", 2}});
  Open(uri);
  Connect(1, "d1");
  auto r = PushOps(1, {{Id(2), "s", 2}, {Id(3), "s", 3}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(std::get<0>(r[0]), RC::Duplicate);
  EXPECT_EQ(std::get<1>(r[0]), 2u);
  EXPECT_EQ(std::get<0>(r[1]), RC::Applied);
  EXPECT_EQ(std::get<1>(r[1]), 3u);
  core_.reset();  // before the directory goes
}

}  // namespace
}  // namespace outpost
