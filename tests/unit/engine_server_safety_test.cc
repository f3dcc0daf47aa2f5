// Copyright 2026 The Outpost Authors.
//
// The server among users who are co-members but not friends (issue 12), ServerCore driven frame by frame:
// a device is (user, device), so claiming another user's device id reaches none of its state; authorization
// runs on Hello follows, Welcome entries, stored and relayed watermarks and Notify; a removed member hears
// nothing more; a failed store transaction leaves no trace in memory and answers everyone; member lists are
// checked (grammar, registered users, members_max); server-written kinds are refused; the Hello deadline.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "keys.h"
#include "outpost/env.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "outpost/storage.h"
#include "testing/flaky_storage.h"
#include "testing/server_frames.h"

namespace outpost {
namespace {

using frames::Decoded;
using frames::HelloFrame;
using frames::Id;
using frames::PushFrame;
using frames::TestOp;
using RC = wire::ResultCode;

using harness::FlakyStorage;

class ServerSafetyTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    static int run = 0;
    ServerOptions o = options_;
    o.store = "memory:server-safety-" + std::to_string(++run);
    o.env = &env_;
    o.membership = true;
    o.open_store = harness::FlakyOpener(&faults_);
    core_ = ServerCore::Open(o).value();
  }
  std::vector<Outbound> Handle(std::vector<ServerEvent> events) {
    std::vector<Outbound> out;
    core_->Handle(events, &out);
    return out;
  }
  static ServerEvent Frame(ConnId conn, std::string frame) {
    ServerEvent e;
    e.conn = conn;
    e.frame = std::move(frame);
    return e;
  }
  static ServerEvent OpenEvent(ConnId conn) {
    ServerEvent e;
    e.kind = ServerEvent::Kind::kOpen;
    e.conn = conn;
    return e;
  }
  static ServerEvent CloseEvent(ConnId conn) {
    ServerEvent e;
    e.kind = ServerEvent::Kind::kClose;
    e.conn = conn;
    return e;
  }
  std::vector<Outbound> Send(ConnId conn, std::string frame) {
    return Handle({Frame(conn, std::move(frame))});
  }
  // Opens `conn` and says Hello; returns every frame answered to it (watermarks, then the Welcome).
  std::vector<Outbound> Connect(ConnId conn, const std::string& user, const std::string& device,
                                std::vector<std::string> follows = {}) {
    Handle({OpenEvent(conn)});
    return Send(conn, HelloFrame(user, device, follows));
  }
  static const wire::Welcome* WelcomeOf(const std::vector<Outbound>& out) {
    for (const auto& o : out) {
      if (Decoded(o)->body_type() == wire::Body::Welcome) return Decoded(o)->body_as_Welcome();
    }
    return nullptr;
  }
  static std::set<std::string> WelcomeStreams(const std::vector<Outbound>& out) {
    std::set<std::string> streams;
    const wire::Welcome* w = WelcomeOf(out);
    if (w && w->counters()) {
      for (const auto* c : *w->counters()) streams.emplace(codec::Str(c->stream()));
    }
    return streams;
  }
  // The results of the PushAck answered to `conn`.
  std::vector<const wire::OpResult*> Results(const std::vector<Outbound>& out, ConnId conn) {
    std::vector<const wire::OpResult*> r;
    for (const auto& o : out) {
      if (o.conn == conn && Decoded(o)->body_type() == wire::Body::PushAck) {
        for (const auto* x : *Decoded(o)->body_as_PushAck()->results()) r.push_back(x);
      }
    }
    return r;
  }
  RC PushOne(ConnId conn, TestOp op) {
    auto out = Send(conn, PushFrame({op}));
    kept_.push_back(out);
    auto r = Results(kept_.back(), conn);
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? RC::Retry : r[0]->code();
  }
  static size_t Count(const std::vector<Outbound>& out, ConnId conn, wire::Body type) {
    size_t n = 0;
    for (const auto& o : out) n += o.conn == conn && Decoded(o)->body_type() == type;
    return n;
  }
  static const wire::Error* ErrorTo(const std::vector<Outbound>& out, ConnId conn) {
    for (const auto& o : out) {
      if (o.conn == conn && Decoded(o)->body_type() == wire::Body::Error) return Decoded(o)->body_as_Error();
    }
    return nullptr;
  }
  std::string Members(std::vector<std::string> users) { return EncodeMembers(users); }

  ManualEnv env_{7};
  ServerOptions options_;
  FlakyStorage::Faults faults_;
  std::unique_ptr<ServerCore> core_;
  std::vector<std::vector<Outbound>> kept_;  // keeps decoded results alive
};

// Issue 12, item 1: bob, with his own valid login, claims alice's device id.
TEST_F(ServerSafetyTest, ClaimingAnotherUsersDeviceIdReachesNoneOfItsState) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "secret", 1, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  ASSERT_EQ(PushOne(1, {Id(2), "shared", 1, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  ASSERT_EQ(PushOne(1, {Id(3), "secret", 2, "a private note"}), RC::Applied);

  auto welcome = Connect(2, "bob", "laptop");
  ASSERT_NE(WelcomeOf(welcome), nullptr);
  EXPECT_FALSE(WelcomeStreams(welcome).contains("secret")) << "a private stream's name and size leak";
  // bob's counters are his own: his counter 1 on secret is refused as forbidden and consumes nothing of
  // alice's.
  EXPECT_EQ(PushOne(2, {Id(10), "secret", 1, "hi"}), RC::Rejected);
  EXPECT_EQ(PushOne(2, {Id(11), "secret", 3, "hi"}), RC::Gap);
  EXPECT_EQ(PushOne(1, {Id(4), "secret", 3, "still mine"}), RC::Applied) << "alice's counter was taken";
  // His push to the shared stream is his: stored under bob, and alice's counter there is untouched.
  EXPECT_EQ(PushOne(2, {Id(12), "shared", 1, "from bob's laptop"}), RC::Applied);
  EXPECT_EQ(PushOne(1, {Id(5), "shared", 2, "alice again"}), RC::Applied);
  auto page = Send(1, codec::EncodePull("shared", 0, 0));
  std::map<std::string, std::string> author;  // payload -> user/device
  for (const auto& o : page) {
    if (Decoded(o)->body_type() != wire::Body::Batch) continue;
    for (const auto* op : *Decoded(o)->body_as_Batch()->ops()) {
      author[std::string(reinterpret_cast<const char*>(op->payload()->data()), op->payload()->size())] =
          std::string(codec::Str(op->user())) + "/" + std::string(codec::Str(op->device()));
    }
  }
  EXPECT_EQ(author["from bob's laptop"], "bob/laptop");
  EXPECT_EQ(author["alice again"], "alice/laptop");
  // alice's op ids are visible to bob; reusing one gets him a refusal, not her op's verdict.
  auto stolen = Send(2, PushFrame({{Id(5), "shared", 2, "x"}}));
  auto r = Results(stolen, 2);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]->code(), RC::Rejected);
  // And alice's Welcome still lists what she pushed to, with her own counters.
  auto again = Connect(3, "alice", "laptop");
  const wire::Welcome* w = WelcomeOf(again);
  ASSERT_NE(w, nullptr);
  std::map<std::string, uint64_t> counters;
  for (const auto* c : *w->counters()) counters[std::string(codec::Str(c->stream()))] = c->counter();
  EXPECT_EQ(counters["secret"], 3u);
  EXPECT_EQ(counters["shared"], 2u);
}

// Issue 12, item 2: the authorize hook refuses eve on secret; a Hello that lists it gets her nothing.
TEST_F(ServerSafetyTest, TheAuthorizeHookGuardsHelloFollowsWatermarksAndNotify) {
  options_.authorize = [](const AccessRequest& r) {
    if (r.user == "eve" && r.stream == "secret") return Status::PermissionDenied("eve is not welcome");
    return Status::OK();
  };
  Open();
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "secret", 1, Members({"alice", "eve"}), false, std::string(kMembersKind)}),
            RC::Applied);
  ASSERT_EQ(PushOne(1, {Id(2), "secret", 2, "one"}), RC::Applied);
  Send(1, codec::EncodeWatermark("secret", "", "", WatermarkKind::kRead, 2));
  auto hello = Connect(2, "eve", "phone", {"secret"});
  EXPECT_EQ(Count(hello, 2, wire::Body::Watermark), 0u) << "stored watermarks leaked through the Hello";
  EXPECT_FALSE(WelcomeStreams(hello).contains("secret"));
  auto post = Send(1, PushFrame({{Id(3), "secret", 3, "two"}}));
  EXPECT_EQ(Count(post, 2, wire::Body::Notify), 0u) << "a live Notify reached eve";
  auto wm = Send(1, codec::EncodeWatermark("secret", "", "", WatermarkKind::kRead, 3));
  EXPECT_EQ(Count(wm, 2, wire::Body::Watermark), 0u) << "a relayed watermark reached eve";
  // Her pull is refused as before.
  auto pull = Send(2, codec::EncodePull("secret", 0, 0));
  ASSERT_NE(ErrorTo(pull, 2), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(pull, 2)->code()), Status::Code::kPermissionDenied);
}

// Issue 12, item 7: a removed member gets nothing more of the stream, live or on reconnect.
TEST_F(ServerSafetyTest, ARemovedMemberHearsNothingMore) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "room", 1, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  Connect(2, "bob", "phone", {"room"});
  ASSERT_EQ(PushOne(2, {Id(10), "room", 1, "bob was here"}), RC::Applied);
  auto first = Send(1, PushFrame({{Id(2), "room", 2, "hello bob"}}));
  EXPECT_EQ(Count(first, 2, wire::Body::Notify), 1u);  // the test can see a Notify when there is one
  ASSERT_EQ(PushOne(1, {Id(3), "room", 3, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  auto after = Send(1, PushFrame({{Id(4), "room", 4, "bob is gone"}}));
  EXPECT_EQ(Count(after, 2, wire::Body::Notify), 0u);
  auto wm = Send(1, codec::EncodeWatermark("room", "", "", WatermarkKind::kRead, 4));
  EXPECT_EQ(Count(wm, 2, wire::Body::Watermark), 0u);
  // He pushed to the stream: his Welcome lists his own counter there (so that a device which lost its
  // state does not reuse it), but not the stream's high seq, which would leak how it grows.
  auto again = Connect(3, "bob", "phone", {"room"});
  const wire::Welcome* w = WelcomeOf(again);
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w->counters(), nullptr);
  ASSERT_EQ(w->counters()->size(), 1u);
  EXPECT_EQ(codec::Str(w->counters()->Get(0)->stream()), "room");
  EXPECT_EQ(w->counters()->Get(0)->counter(), 1u);
  EXPECT_EQ(w->counters()->Get(0)->high_seq(), 0u) << "a removed member learns the stream's size";
  EXPECT_EQ(Count(again, 3, wire::Body::Watermark), 0u);
  auto pull = Send(3, codec::EncodePull("room", 0, 0));
  ASSERT_NE(ErrorTo(pull, 3), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(pull, 3)->code()), Status::Code::kPermissionDenied);
}

// A member removed and added back hears the stream again, on the connection that followed it before and
// on one whose Hello asked for it while he was out; removed and added back in one group, he never stops.
TEST_F(ServerSafetyTest, AMemberAddedBackHearsTheStreamAgain) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "room", 1, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  Connect(2, "bob", "phone", {"room"});
  ASSERT_EQ(PushOne(1, {Id(2), "room", 2, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  Connect(3, "bob", "tablet", {"room"});
  auto gone = Send(1, PushFrame({{Id(3), "room", 3, "bob is out"}}));
  EXPECT_EQ(Count(gone, 2, wire::Body::Notify), 0u);
  EXPECT_EQ(Count(gone, 3, wire::Body::Notify), 0u);
  ASSERT_EQ(PushOne(1, {Id(4), "room", 4, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  auto back = Send(1, PushFrame({{Id(5), "room", 5, "welcome back"}}));
  EXPECT_EQ(Count(back, 2, wire::Body::Notify), 1u) << "the device that followed before hears nothing";
  EXPECT_EQ(Count(back, 3, wire::Body::Notify), 1u) << "the device that asked while out hears nothing";
  // Out and back in within one group (two frames handled together): the follows stay.
  auto both = Handle(
      {Frame(1, PushFrame({{Id(6), "room", 6, Members({"alice"}), false, std::string(kMembersKind)}})),
       Frame(1,
             PushFrame({{Id(7), "room", 7, Members({"alice", "bob"}), false, std::string(kMembersKind)}}))});
  auto results = Results(both, 1);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]->code(), RC::Applied);
  EXPECT_EQ(results[1]->code(), RC::Applied);
  auto after = Send(1, PushFrame({{Id(8), "room", 8, "still here"}}));
  EXPECT_EQ(Count(after, 2, wire::Body::Notify), 1u);
  EXPECT_EQ(Count(after, 3, wire::Body::Notify), 1u);
}

// One account cannot take every connection slot: past connections_per_user_max its Hellos are refused
// (fatal Busy) while other users connect; a slot it closes is its own again.
TEST_F(ServerSafetyTest, OneUserCannotTakeEveryConnection) {
  options_.connections_per_user_max = 2;
  Open();
  EXPECT_NE(WelcomeOf(Connect(1, "mallory", "a")), nullptr);
  EXPECT_NE(WelcomeOf(Connect(2, "mallory", "b")), nullptr);
  auto third = Connect(3, "mallory", "c");
  EXPECT_EQ(WelcomeOf(third), nullptr);
  ASSERT_NE(ErrorTo(third, 3), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(third, 3)->code()), Status::Code::kBusy);
  EXPECT_TRUE(ErrorTo(third, 3)->fatal());
  EXPECT_NE(std::string(codec::Str(ErrorTo(third, 3)->message())).find("connections_per_user_max"),
            std::string::npos);
  Handle({CloseEvent(3)});
  EXPECT_NE(WelcomeOf(Connect(4, "alice", "laptop")), nullptr) << "another user was refused";
  Handle({CloseEvent(1)});
  EXPECT_NE(WelcomeOf(Connect(5, "mallory", "a")), nullptr) << "a freed slot stays taken";
}

// A device can make counters on any number of streams (each refused push consumes one); its Welcome stays
// within half a frame, followed streams first, and a Hello's work does not grow with them.
TEST_F(ServerSafetyTest, TheWelcomeStaysWithinHalfAFrameHoweverManyCountersADeviceMade) {
  options_.frame_bytes_max = 16 << 10;
  Open();
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "zz-room", 1, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  for (int i = 0; i < 600; ++i) {
    const std::string stream = "nowhere-" + std::string(40, 'x') + std::to_string(1000 + i);
    ASSERT_EQ(PushOne(1, {Id(100 + i), stream, 1, "knock"}), RC::Rejected);
  }
  auto hello = Connect(2, "alice", "laptop", {"zz-room"});
  const Outbound* welcome = nullptr;
  for (const auto& o : hello) {
    if (Decoded(o)->body_type() == wire::Body::Welcome) welcome = &o;
  }
  ASSERT_NE(welcome, nullptr);
  EXPECT_LE(welcome->frame.size(), options_.frame_bytes_max / 2 + 1024);
  std::set<std::string> listed = WelcomeStreams(hello);
  EXPECT_TRUE(listed.contains("zz-room")) << "the followed stream was crowded out";
  EXPECT_GT(listed.size(), 50u);
  EXPECT_LT(listed.size(), 601u);
}

// A rejected op sent again under a new counter is judged afresh only as the user's Retry (Op.retry). Any
// other resend under a new counter is a renumber by a device that lost what it knew (a power loss undid the
// rejection): judged afresh, the op could be applied after ops its device submitted later.
TEST_F(ServerSafetyTest, ARejectedOpIsJudgedAfreshOnlyWhenTheUserRetriesIt) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "room", 1, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  Connect(2, "bob", "phone");
  ASSERT_EQ(PushOne(2, {Id(10), "room", 1, "let me in"}), RC::Rejected);  // not a member yet
  ASSERT_EQ(PushOne(1, {Id(2), "room", 2, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  // Renumbered to counter 2 (no Retry): the rejection stands, and counter 2 is used up.
  auto again = Send(2, PushFrame({{Id(10), "room", 2, "let me in"}}));
  auto r = Results(again, 2);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]->code(), RC::Rejected) << "a renumbered rejection was judged afresh";
  EXPECT_NE(std::string(codec::Str(r[0]->message())).find("forbidden"), std::string::npos);
  EXPECT_EQ(PushOne(2, {Id(11), "room", 2, "reusing counter 2"}), RC::Conflict);
  // The user retries it, under counter 3: judged afresh, and bob is a member now.
  EXPECT_EQ(PushOne(2, {Id(10), "room", 3, "let me in", false, "k", true}), RC::Applied);
}

// Issue 12, item 4: BeginWrite fails under a group with opens and closes.
TEST_F(ServerSafetyTest, OpensAndClosesSurviveAStoreThatCannotBegin) {
  options_.connections_max = 1;
  Open();
  Connect(1, "alice", "laptop");
  faults_.fail_begin = true;
  auto out = Handle({Frame(1, codec::EncodePull("@alice", 0, 0)), CloseEvent(1)});
  faults_.fail_begin = false;
  EXPECT_EQ(core_->Stats().connections, 0u);
  // The slot is free again: a new connection is not told "server full".
  auto hello = Connect(2, "bob", "phone");
  EXPECT_NE(WelcomeOf(hello), nullptr);
  EXPECT_EQ(core_->Stats().connections_refused, 0u);
}

// Issue 12, item 4: a commit fails. Nothing of the group stays: not the session, not the follows, not the
// stats; every connection that sent something is answered.
TEST_F(ServerSafetyTest, AFailedCommitLeavesNoTraceAndAnswersEveryone) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "room", 1, Members({"alice", "bob"}), false, std::string(kMembersKind)}),
            RC::Applied);
  Connect(2, "bob", "phone");
  const ServerStats before = core_->Stats();
  faults_.fail_commit = true;
  Handle({OpenEvent(3)});
  auto out = Handle({Frame(1, PushFrame({{Id(2), "room", 2, "lost"}})),
                     Frame(2, codec::EncodeWatermark("room", "", "", WatermarkKind::kDelivered, 1)),
                     Frame(2, codec::EncodePull("room", 0, 0)), Frame(3, HelloFrame("carol", "tablet"))});
  faults_.fail_commit = false;
  // Everyone hears Busy, and nothing that depended on the commit: no ack, no batch, no watermark.
  for (ConnId c : {1, 2, 3}) {
    const wire::Error* e = ErrorTo(out, c);
    ASSERT_NE(e, nullptr) << "connection " << c << " got no answer";
    EXPECT_EQ(static_cast<Status::Code>(e->code()), Status::Code::kBusy);
  }
  EXPECT_FALSE(ErrorTo(out, 1)->fatal());
  EXPECT_TRUE(ErrorTo(out, 3)->fatal()) << "a connection whose Hello was lost must reconnect";
  EXPECT_EQ(Count(out, 1, wire::Body::PushAck), 0u);
  EXPECT_EQ(Count(out, 2, wire::Body::Batch), 0u);
  EXPECT_EQ(Count(out, 2, wire::Body::Watermark), 0u);
  const ServerStats after = core_->Stats();
  EXPECT_EQ(after.ops_applied, before.ops_applied);
  EXPECT_EQ(after.pulls, before.pulls);
  EXPECT_EQ(after.commit_errors, before.commit_errors + 1);
  // bob's pull did not make him a follower: alice's next op is not announced to him until he pulls again.
  auto next = Send(1, PushFrame({{Id(2), "room", 2, "kept"}}));
  EXPECT_EQ(Count(next, 1, wire::Body::PushAck), 1u);
  EXPECT_EQ(Count(next, 2, wire::Body::Notify), 0u);
  // The watermark is acknowledged once it is durable.
  auto wm = Send(2, codec::EncodeWatermark("room", "", "", WatermarkKind::kDelivered, 1));
  EXPECT_EQ(Count(wm, 2, wire::Body::Watermark), 1u);
  // carol's session was not left half-open: her frames are refused until she says Hello again.
  auto push = Send(3, PushFrame({{Id(30), "room", 1, "x"}}));
  ASSERT_NE(ErrorTo(push, 3), nullptr);
  EXPECT_EQ(Count(push, 3, wire::Body::PushAck), 0u);
}

// Issue 12, item 6: a connection that never says Hello is closed at the deadline.
TEST_F(ServerSafetyTest, AConnectionWithoutHelloIsClosedAtTheDeadline) {
  options_.hello_deadline_ms = 10'000;
  Open();
  Handle({OpenEvent(1)});
  Connect(2, "alice", "laptop");
  std::vector<Outbound> out;
  env_.AdvanceMs(9'999);
  core_->Tick(&out);
  EXPECT_TRUE(out.empty());
  env_.AdvanceMs(1);
  core_->Tick(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].conn, 1u);
  EXPECT_TRUE(out[0].close_after);
  EXPECT_EQ(static_cast<Status::Code>(Decoded(out[0])->body_as_Error()->code()), Status::Code::kTimeout);
  EXPECT_EQ(core_->Stats().hello_timeouts, 1u);
  // A late Hello is not handled; the close event frees the slot.
  auto late = Send(1, HelloFrame("mallory", "x"));
  EXPECT_EQ(WelcomeOf(late), nullptr);
  Handle({CloseEvent(1)});
  EXPECT_EQ(core_->Stats().connections, 1u);
}

// Issue 12, item 5: member lists are checked before they cost anything.
TEST_F(ServerSafetyTest, MemberListsAreCheckedAndBounded) {
  size_t lookups = 0;
  options_.user_exists = [&lookups](std::string_view user) -> Result<bool> {
    ++lookups;
    return user == "alice" || user == "bob";
  };
  options_.members_max = 100;
  Open();
  Connect(1, "alice", "laptop");
  uint64_t counter = 0;
  auto members_op = [&](std::string payload) {
    auto out = Send(1, PushFrame({{Id(static_cast<uint8_t>(++counter)), "room", counter, std::move(payload),
                                   false, std::string(kMembersKind)}}));
    kept_.push_back(out);
    auto r = Results(kept_.back(), 1);
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? std::string("no answer") : std::string(codec::Str(r[0]->message()));
  };
  // A bomb: 1 MiB of distinct names. Refused at members_max names, before any lookup of the rest.
  std::string bomb;
  for (int i = 0; bomb.size() < (1u << 20) - 16; ++i) bomb += "user" + std::to_string(i) + "\n";
  EXPECT_NE(members_op(bomb).find("members_max"), std::string::npos);
  EXPECT_EQ(lookups, 0u);
  EXPECT_NE(members_op("alice\n bob \r").find("line 2"), std::string::npos);  // not trimmed: refused
  EXPECT_NE(members_op("alice\ncarol").find("carol"), std::string::npos);     // not a registered user
  EXPECT_EQ(members_op("alice\nbob\n"), "");                                  // well-formed: applied
  // bob was added: his feed has one op, and nobody else's feed was written.
  Connect(2, "bob", "phone");
  auto feed = Send(2, codec::EncodePull("@bob", 0, 0));
  ASSERT_EQ(Count(feed, 2, wire::Body::Batch), 1u);
  for (const auto& o : feed) {
    if (Decoded(o)->body_type() == wire::Body::Batch) {
      EXPECT_EQ(Decoded(o)->body_as_Batch()->high_seq(), 1u);
    }
  }
}

TEST_F(ServerSafetyTest, DevicesCannotWriteServerKinds) {
  Connect(1, "alice", "laptop");
  ASSERT_EQ(PushOne(1, {Id(1), "room", 1, Members({"alice"}), false, std::string(kMembersKind)}),
            RC::Applied);
  EXPECT_EQ(PushOne(1, {Id(2), "room", 2, "room", false, std::string(kJoinedKind)}), RC::Rejected);
  EXPECT_EQ(PushOne(1, {Id(3), "room", 3, "room", false, std::string(kLeftKind)}), RC::Rejected);
  EXPECT_EQ(PushOne(1, {Id(4), "room", 4, "fine"}), RC::Applied);  // the counters were consumed
}

TEST_F(ServerSafetyTest, MalformedIdentitiesInHelloAreRefused) {
  for (auto [user, device] : std::vector<std::pair<std::string, std::string>>{
           {"al ice", "laptop"}, {"", "laptop"}, {"alice", ""}, {"alice", "lap\ntop"}}) {
    static ConnId conn = 100;
    Handle({OpenEvent(++conn)});
    auto out = Send(conn, HelloFrame(user, device));
    const wire::Error* e = ErrorTo(out, conn);
    ASSERT_NE(e, nullptr) << user << "/" << device;
    EXPECT_TRUE(e->fatal());
    EXPECT_EQ(WelcomeOf(out), nullptr);
  }
}

// Issue 12, item 6: a burst of Pulls gets one frame's worth of pages per group; the rest are empty pages
// with has_more, which the device asks for again (the server never queues a page per Pull at once).
TEST_F(ServerSafetyTest, ABurstOfPullsGetsOneFrameOfPagesPerGroup) {
  options_.frame_bytes_max = 64 << 10;
  options_.payload_bytes_max = 16 << 10;
  Open();
  Connect(1, "alice", "laptop");
  const std::string big(12 << 10, 'x');
  std::vector<ServerEvent> pulls;
  for (int s = 0; s < 8; ++s) {
    const std::string stream = "room" + std::to_string(s);
    ASSERT_EQ(PushOne(1, {Id(static_cast<uint8_t>(100 + s)), stream, 1, Members({"alice"}), false,
                          std::string(kMembersKind)}),
              RC::Applied);
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(PushOne(1, {Id(static_cast<uint8_t>(s * 8 + i)), stream, static_cast<uint64_t>(2 + i), big}),
                RC::Applied);
    }
    pulls.push_back(Frame(1, codec::EncodePull(stream, 0, 0)));
  }
  auto out = Handle(pulls);
  size_t bytes = 0, served = 0, deferred = 0;
  for (const auto& o : out) {
    if (Decoded(o)->body_type() != wire::Body::Batch) continue;
    const wire::Batch* b = Decoded(o)->body_as_Batch();
    bytes += o.frame.size();
    if (b->ops()->size() > 0) {
      ++served;
    } else {
      ++deferred;
      EXPECT_TRUE(b->has_more());
      EXPECT_EQ(b->high_seq(), 5u);
    }
  }
  EXPECT_EQ(served + deferred, 8u);
  EXPECT_GE(served, 1u);
  EXPECT_GE(deferred, 1u);
  EXPECT_LE(bytes, 2u * options_.frame_bytes_max);
}

// A store of the format before (user, device) identity is refused with what to do, never misread.
TEST(ServerFormatTest, AStoreOfTheFormerFormatIsRefusedUntouched) {
  const std::string uri = "memory:server-format-old";
  StorageOptions so;
  so.spaces = {"s_ops", "s_dedupe", "s_devctr", "s_streams", "s_wm", "s_members", "s_meta"};
  auto store = OpenStorage(uri, so).value();
  {
    auto txn = store->BeginWrite().value();
    std::string old_key;
    keys::PutShort(&old_key, "laptop");
    keys::PutShort(&old_key, "s");
    std::string v;
    keys::PutBE64(&v, 3);
    ASSERT_TRUE(txn->Put(2, old_key, v).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  ServerOptions o;
  o.store = uri;
  auto core = ServerCore::Open(o);
  ASSERT_FALSE(core.ok());
  EXPECT_EQ(core.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(core.status().message().find("format 1"), std::string::npos) << core.status().message();
  std::string format;
  EXPECT_TRUE(store->BeginRead().value()->Get(6, "format", &format).IsNotFound());
  // A new store gets the current format and opens again.
  o.store = "memory:server-format-new";
  ASSERT_TRUE(ServerCore::Open(o).ok());
  ASSERT_TRUE(ServerCore::Open(o).ok());
}

// Issue 13 review: when the registry cannot answer (its database restarts), a Hello is told to come back
// later, fatally but as Busy: never "authentication failed", which makes a device stop until its user gives
// a new token. A real refusal stays one.
TEST_F(ServerSafetyTest, ARegistryThatCannotAnswerIsBusyNotAnAuthenticationFailure) {
  Status registry = Status::Unavailable("registry database restarting");
  options_.authenticate = [&registry](const HelloInfo& hello) -> Result<std::string> {
    if (!registry.ok()) return registry;
    return hello.user;
  };
  Open();
  auto out = Connect(1, "alice", "phone");
  EXPECT_EQ(WelcomeOf(out), nullptr);
  ASSERT_NE(ErrorTo(out, 1), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(out, 1)->code()), Status::Code::kBusy);
  EXPECT_TRUE(ErrorTo(out, 1)->fatal());
  EXPECT_EQ(core_->Stats().auth_failures, 0u);
  registry = Status::PermissionDenied("unknown token");
  out = Connect(2, "alice", "phone");
  ASSERT_NE(ErrorTo(out, 2), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(out, 2)->code()), Status::Code::kPermissionDenied);
  EXPECT_EQ(core_->Stats().auth_failures, 1u);
  registry = Status::OK();
  EXPECT_NE(WelcomeOf(Connect(3, "alice", "phone")), nullptr);
}

// Issue 13 review: a member list whose names cannot be looked up (the registry's store fails) is not
// refused for ever: the group fails, the device hears Busy, and its resend is judged once the registry
// answers again.
TEST_F(ServerSafetyTest, ARegistryErrorOnAMemberListIsRetriedNotRefused) {
  bool down = true;
  options_.user_exists = [&down](std::string_view) -> Result<bool> {
    if (down) return Status::IOError("registry unreadable");
    return true;
  };
  Open();
  Connect(1, "alice", "laptop");
  const TestOp create{Id(1), "room", 1, Members({"alice", "bob"}), false, std::string(kMembersKind)};
  auto out = Send(1, PushFrame({create}));
  EXPECT_TRUE(Results(out, 1).empty());
  ASSERT_NE(ErrorTo(out, 1), nullptr);
  EXPECT_EQ(static_cast<Status::Code>(ErrorTo(out, 1)->code()), Status::Code::kBusy);
  EXPECT_FALSE(ErrorTo(out, 1)->fatal());
  down = false;
  EXPECT_EQ(PushOne(1, create), RC::Applied);
}

}  // namespace
}  // namespace outpost
