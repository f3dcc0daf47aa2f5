// Copyright 2026 The Outpost Authors.
//
// Stream membership (outpost/membership.h) and the server's connection limits, through the public API:
// real Clients and a Server on the in-process transport, each side on its own thread, every wait bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost {
namespace {

class MembershipTest : public testing::Test {
 protected:
  void SetUp() override { StartServer(ServerOptions{}); }

  void StartServer(ServerOptions so) {
    so.membership = true;
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  Client& Device(const std::string& user, const std::string& device) {
    ClientOptions o = cluster_.DeviceOptions(user, device);
    o.store = "memory:";
    return cluster_.Add(std::move(o));
  }

  static void Sync(Client& c) { ASSERT_TRUE(c.RunUntilIdle(20'000).ok()) << c.Stats().last_connection_error; }

  static std::vector<OpInfo> View(Client& c, const std::string& stream) {
    auto v = c.Latest(stream, 1000);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(v).value() : std::vector<OpInfo>{};
  }

  static OpInfo Op(Client& c, const OpId& id) {
    auto op = c.Get(id);
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    return op.ok() ? std::move(op).value() : OpInfo{};
  }

  harness::Cluster cluster_{{.name = "membership",
                             .manual_clock = false,
                             .ack_timeout_ms = 10'000,
                             .backoff_base_ms = 5,
                             .backoff_cap_ms = 50}};
};

// Device ids are UTF-8 (databases keep them as text): every malformed form is refused, every well-formed
// one that has no control byte is taken.
TEST(DeviceIdGrammar, UnicodeIsTakenMalformedUtf8IsNot) {
  EXPECT_TRUE(ValidateDeviceId("phone").ok());
  EXPECT_TRUE(ValidateDeviceId("t\xc3\xa9l\xc3\xa9phone").ok());   // téléphone
  EXPECT_TRUE(ValidateDeviceId("\xe6\x89\x8b\xe6\x9c\xba").ok());  // 手机
  EXPECT_TRUE(ValidateDeviceId("\xf0\x9f\x93\xb1").ok());          // U+1F4F1
  for (const char* bad : {"\xff", "a\x80", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                          "\xf4\x90\x80\x80", "\xf0\x9f\x93", "\xf8\x88\x80\x80\x80"}) {
    Status st = ValidateDeviceId(bad);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << QuoteForMessage(bad);
  }
  EXPECT_FALSE(ValidateDeviceId("tab\there").ok());
}

TEST_F(MembershipTest, MembersSyncAndDiscoverStreamsThroughTheirFeed) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "phone");
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  OpId hi = alice.Submit("conv", "text", "hi bob").value();
  Sync(alice);
  EXPECT_EQ(Op(alice, hi).state, OpState::kSent);

  ASSERT_TRUE(bob.Follow(FeedStream("bob")).ok());
  Sync(bob);
  std::vector<OpInfo> feed = View(bob, FeedStream("bob"));
  ASSERT_EQ(feed.size(), 1u);
  EXPECT_EQ(feed[0].kind, kJoinedKind);
  EXPECT_EQ(feed[0].payload, "conv");
  ASSERT_TRUE(bob.Follow(feed[0].payload).ok());
  Sync(bob);
  std::vector<OpInfo> view = View(bob, "conv");
  ASSERT_EQ(view.size(), 2u);
  EXPECT_EQ(view[1].payload, "hi bob");
  EXPECT_EQ(view[1].user, "alice");
}

TEST_F(MembershipTest, NonMembersAreForbiddenAndNothingIsStored) {
  Client& alice = Device("alice", "phone");
  Client& carol = Device("carol", "phone");
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  Sync(alice);

  OpId intrusion = carol.Submit("conv", "text", "let me in").value();
  OpId nowhere = carol.Submit("no-such-stream", "text", "hello?").value();
  OpId feed = carol.Submit(FeedStream("alice"), "text", "fake feed entry").value();
  Sync(carol);
  OpInfo op = Op(carol, intrusion);
  EXPECT_EQ(op.state, OpState::kFailed);
  EXPECT_EQ(op.last_error_code, Status::Code::kPermissionDenied);
  EXPECT_NE(op.last_error.find("forbidden: carol is not a member of conv"), std::string::npos)
      << op.last_error;
  op = Op(carol, nowhere);
  EXPECT_EQ(op.state, OpState::kFailed);
  // The same answer as for an existing stream: a non-member must not learn which stream names are taken.
  EXPECT_NE(op.last_error.find("forbidden: carol is not a member of no-such-stream"), std::string::npos)
      << op.last_error;
  EXPECT_EQ(Op(carol, feed).state, OpState::kFailed);

  // Carol cannot read the stream or alice's feed either.
  Client& carol2 = Device("carol", "laptop");
  ASSERT_TRUE(carol2.Follow("conv").ok());
  ASSERT_TRUE(carol2.Follow(FeedStream("alice")).ok());
  Sync(carol2);
  EXPECT_TRUE(View(carol2, "conv").empty());
  EXPECT_TRUE(View(carol2, FeedStream("alice")).empty());

  // The members see only their own ops.
  Sync(alice);
  std::vector<OpInfo> view = View(alice, "conv");
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view[0].kind, kMembersKind);
  EXPECT_GE(cluster_.server().Stats().forbidden, 3u);
}

TEST_F(MembershipTest, RemovedMemberLosesAccessAndHearsOfIt) {
  Client& alice = Device("alice", "phone");
  Client& bob = Device("bob", "phone");
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  Sync(alice);
  ASSERT_TRUE(bob.Follow(FeedStream("bob")).ok());
  OpId before = bob.Submit("conv", "text", "still here").value();
  Sync(bob);
  EXPECT_EQ(Op(bob, before).state, OpState::kSent);

  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice"})).ok());
  Sync(alice);
  OpId after = bob.Submit("conv", "text", "am I out?").value();
  Sync(bob);
  EXPECT_EQ(Op(bob, after).state, OpState::kFailed);
  std::vector<OpInfo> feed = View(bob, FeedStream("bob"));
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_EQ(feed[0].kind, kJoinedKind);
  EXPECT_EQ(feed[1].kind, kLeftKind);
  EXPECT_EQ(feed[1].payload, "conv");
}

TEST_F(MembershipTest, OnlyMembersMayChangeMembers) {
  Client& alice = Device("alice", "phone");
  Client& mallory = Device("mallory", "phone");
  ASSERT_TRUE(alice.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice"})).ok());
  Sync(alice);
  OpId takeover = mallory.Submit("conv", std::string(kMembersKind), EncodeMembers({"mallory"})).value();
  Sync(mallory);
  EXPECT_EQ(Op(mallory, takeover).state, OpState::kFailed);
  OpId post = alice.Submit("conv", "text", "mine").value();
  Sync(alice);
  EXPECT_EQ(Op(alice, post).state, OpState::kSent);
}

TEST_F(MembershipTest, ConnectionsBeyondTheLimitAreRefusedClearly) {
  cluster_.StopServer();
  ServerOptions so;
  so.connections_max = 1;
  StartServer(so);
  Client& first = Device("alice", "phone");
  ASSERT_TRUE(first.Submit("conv", std::string(kMembersKind), EncodeMembers({"alice"})).ok());
  Sync(first);
  Client& second = Device("alice", "laptop");
  ASSERT_TRUE(second.Follow("conv").ok());
  // Never welcomed: it keeps retrying (with backoff) and keeps being told why.
  bool told = false;
  for (int i = 0; i < 200 && !told; ++i) {
    EXPECT_FALSE(second.RunUntilIdle(50).ok());
    told = second.Stats().last_connection_error.find("connections_max") != std::string::npos;
  }
  EXPECT_TRUE(told) << second.Stats().last_connection_error;
  EXPECT_FALSE(second.Stats().connected);
  EXPECT_GE(cluster_.server().Stats().connections_refused, 1u);
  // The first device is unaffected.
  ASSERT_TRUE(first.Submit("conv", "text", "still fine").ok());
  Sync(first);
}

}  // namespace
}  // namespace outpost
