// Copyright 2026 The Outpost Authors.
//
// Who may do what, through a real outpostd: wrong tokens are refused at Hello, non-members can neither
// push to nor read a stream, and users added while the server runs can log in at once.
#include <string>

#include "e2e/e2e_fixture.h"

namespace outpost::e2e {
namespace {

bool ViewHasDevice(Client& device, const std::string& stream, const std::string& user,
                   const std::string& dev) {
  auto ops = device.Latest(stream, 10'000);
  if (!ops.ok()) return true;  // treat an unreadable view as a failure of the caller's expectation
  for (const auto& op : *ops) {
    if (op.user == user && op.device == dev) return true;
  }
  return false;
}

TEST_F(E2ETest, WrongTokensAreRefusedAndStoreNothing) {
  auto alice = AlicePhone();
  auto laptop = AliceLaptop();
  ASSERT_TRUE(alice && laptop);
  CreateStream(*alice, "trip", {"alice"});
  FollowConnected(*laptop, "trip");

  struct Intruder {
    std::string device;
    std::string user;
    std::string token;
  };
  const Intruder intruders[] = {
      {"unknown-token", "alice", "opt_" + std::string(43, 'A')},  // well-formed, never issued
      {"junk-token", "alice", "hunter2"},
      {"no-token", "alice", ""},
      {"bobs-token", "alice", bob_phone_token_},  // a real token of another user
  };
  std::vector<std::unique_ptr<Client>> clients;
  for (const auto& in : intruders) {
    auto c = Open(in.user, in.device, in.token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->Submit("trip", "text", "sneaky from " + in.device).ok());
    clients.push_back(std::move(c));
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    Client& c = *clients[i];
    const bool refused = WaitFor(
        [&] { return c.Stats().last_connection_error.find("authentication") != std::string::npos; }, kWaitMs);
    EXPECT_TRUE(refused) << intruders[i].device << ": last connection error '"
                         << c.Stats().last_connection_error << "'";
    EXPECT_FALSE(c.Stats().connected) << intruders[i].device;
  }
  // The server has answered everything before alice's later op; none of the intruders' ops is there.
  ASSERT_TRUE(alice->Submit("trip", "text", "marker").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*laptop, "trip", 2); }, kWaitMs))
      << laptop->Stats().last_connection_error;
  auto view = laptop->Latest("trip", 100);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->size(), 2u);
  for (const auto& in : intruders)
    EXPECT_FALSE(ViewHasDevice(*laptop, "trip", "alice", in.device)) << in.device;
  for (auto& c : clients) {
    auto outbox = c->Outbox(10);
    ASSERT_TRUE(outbox.ok());
    EXPECT_EQ(outbox->size(), 1u);  // still waiting on the device, never applied
  }
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("auth_failures") >= 4; }, kWaitMs))
      << daemon_.StatsJson();
}

TEST_F(E2ETest, NonMembersCanNeitherPushNorPull) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  // A user added while the server runs can log in at once.
  const std::string carol_token = AddUser(data_, "carol");
  ASSERT_FALSE(carol_token.empty());
  auto carol = Open("carol", "phone", carol_token);
  ASSERT_TRUE(carol);

  CreateStream(*alice, "trip", {"alice", "bob"});
  Discover(*bob, "bob", "trip");
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "trip", 1); }, kWaitMs));

  // Push: the op fails visibly with the server's reason.
  auto id = carol->Submit("trip", "text", "let me in");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = carol->Get(*id);
        return op.ok() && op->state == OpState::kFailed;
      },
      kWaitMs))
      << "carol's op never failed; last connection error: " << carol->Stats().last_connection_error;
  auto failed = carol->Get(*id);
  ASSERT_TRUE(failed.ok());
  EXPECT_NE(failed->last_error.find("forbidden"), std::string::npos) << failed->last_error;
  EXPECT_EQ(failed->last_error_code, Status::Code::kPermissionDenied);
  EXPECT_TRUE(carol->Stats().connected);  // refused per op, not per connection

  // Pull: carol follows the stream and bob's feed (a connected device pulls at once); then a round trip on a
  // stream of her own proves the server has answered those pulls (one connection's frames go in order).
  FollowConnected(*carol, "trip");
  FollowConnected(*carol, FeedStream("bob"));
  CreateStream(*carol, "carols-own", {"carol"});
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*carol, "carols-own", 1); }, kWaitMs))
      << carol->Stats().last_connection_error;

  ASSERT_TRUE(alice->Submit("trip", "text", "members only").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "trip", 2); }, kWaitMs));
  ASSERT_TRUE(carol->Submit("carols-own", "text", "second round trip").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*carol, "carols-own", 2); }, kWaitMs));

  auto carol_view = carol->Latest("trip", 100);
  ASSERT_TRUE(carol_view.ok());
  ASSERT_EQ(carol_view->size(), 1u);  // only her own failed op
  EXPECT_EQ(carol_view->front().op_id, *id);
  EXPECT_EQ(CursorOf(*carol, "trip"), 0u);
  EXPECT_EQ(CursorOf(*carol, FeedStream("bob")), 0u);
  auto feed = carol->Latest(FeedStream("bob"), 100);
  ASSERT_TRUE(feed.ok());
  EXPECT_TRUE(feed->empty());

  // Members never see the refused op.
  EXPECT_FALSE(ViewHasDevice(*bob, "trip", "carol", "phone"));
  EXPECT_FALSE(ViewHasDevice(*alice, "trip", "carol", "phone"));
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("forbidden") >= 1; }, kWaitMs)) << daemon_.StatsJson();
}

TEST_F(E2ETest, RemovedMemberLosesAccess) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  CreateStream(*alice, "club", {"alice", "bob"});
  Discover(*bob, "bob", "club");
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "club", 1); }, kWaitMs));
  ASSERT_TRUE(alice->Submit("club", kMembersKind, EncodeMembers({"alice"})).ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*alice, "club", 2); }, kWaitMs));
  // bob's feed records the removal.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ops = bob->Latest(FeedStream("bob"), 100);
        if (!ops.ok()) return false;
        for (const auto& op : *ops) {
          if (op.kind == kLeftKind && op.payload == "club") return true;
        }
        return false;
      },
      kWaitMs));
  auto id = bob->Submit("club", "text", "still here?");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = bob->Get(*id);
        return op.ok() && op->state == OpState::kFailed;
      },
      kWaitMs));
  EXPECT_NE(bob->Get(*id)->last_error.find("forbidden"), std::string::npos);
}

}  // namespace
}  // namespace outpost::e2e
