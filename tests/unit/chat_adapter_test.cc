// Copyright 2026 The Outpost Authors.
//
// The chat adapter (adapters/chat) against a real server core with membership on, over the in-process
// transport: every status transition, the group delivered/read rules, the read-receipts switch, discovery
// through the membership feed, clock skew, and bad input. Waits are bounded (a device steps until a
// condition holds or a deadline passes).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "outpost/chat/chat.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost::chat {
namespace {

constexpr int64_t kWaitMs = 20'000;
constexpr int64_t kYearMs = int64_t{365} * 24 * 3600 * 1000;

// The system clock moved by a fixed offset: a device whose clock is wrong.
class SkewedEnv final : public Env {
 public:
  explicit SkewedEnv(int64_t offset_ms) : offset_ms_(offset_ms) {}
  int64_t NowMs() override { return SystemEnv()->NowMs() + offset_ms_; }
  void RandomBytes(void* out, size_t n) override { SystemEnv()->RandomBytes(out, n); }

 private:
  int64_t offset_ms_;
};

class ChatTest : public testing::Test {
 protected:
  void SetUp() override {
    ServerOptions so;
    so.membership = true;
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  void TearDown() override { devices_.clear(); }

  // A device of `user` with its own LMDB store (so it can be reopened), connected to the test server.
  Chat& Device(const std::string& user, const std::string& device, Env* env = nullptr) {
    auto chat = Chat::Open(Options(user, device, env));
    EXPECT_TRUE(chat.ok()) << chat.status().ToString();
    devices_.push_back(std::move(chat).value());
    return *devices_.back();
  }
  ClientOptions Options(const std::string& user, const std::string& device, Env* env = nullptr) {
    ClientOptions o = cluster_.DeviceOptions(user, device);
    o.env = env;
    return o;
  }
  // Drops the device (closing its store) so that it can be opened again.
  void Close(Chat& chat) {
    for (auto it = devices_.begin(); it != devices_.end(); ++it) {
      if (it->get() == &chat) {
        devices_.erase(it);
        return;
      }
    }
  }

  static void Sync(Chat& c) {
    Status st = harness::Cluster::Sync(c.client(), kWaitMs);
    ASSERT_TRUE(st.ok()) << c.user() << ": " << st.ToString() << " "
                         << c.client().Stats().last_connection_error;
  }
  // Steps `c` until `done` holds; false after kWaitMs.
  static bool SyncUntil(Chat& c, const std::function<bool()>& done) {
    return harness::Cluster::SyncUntil(c.client(), done, kWaitMs);
  }
  static MessageStatus StatusOf(Chat& c, const OpId& id) {
    auto m = c.Get(id);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? m->status : MessageStatus::kPending;
  }
  static std::vector<std::string> Texts(Chat& c, const std::string& conv) {
    std::vector<std::string> out;
    auto h = c.History(conv, 100);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (h.ok()) {
      for (const auto& m : *h) out.push_back(m.sender + ":" + m.text);
    }
    return out;
  }

  harness::Cluster cluster_{{.name = "chat-test",
                             .device_store = "lmdb",
                             .device_store_sync = false,
                             .manual_clock = false,
                             .ack_timeout_ms = 10'000,
                             .backoff_base_ms = 5,
                             .backoff_cap_ms = 50}};
  std::vector<std::unique_ptr<Chat>> devices_;  // closed before the cluster's server
};

TEST_F(ChatTest, PendingThenSentThenDeliveredThenRead) {
  Chat& alice = Device("alice", "phone");
  Chat& bob = Device("bob", "phone");
  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  OpId hi = alice.Send("ab", "hi bob").value();
  // Shown at once, before any network.
  EXPECT_EQ(StatusOf(alice, hi), MessageStatus::kPending);
  EXPECT_EQ(Texts(alice, "ab"), (std::vector<std::string>{"alice:hi bob"}));

  Sync(alice);
  auto sent = alice.Get(hi).value();
  EXPECT_EQ(sent.status, MessageStatus::kSent);
  EXPECT_GT(sent.seq, 0u);

  // Bob finds the conversation through his feed, with nothing followed by hand.
  ASSERT_TRUE(SyncUntil(bob, [&] { return Texts(bob, "ab").size() == 1; }));
  auto convs = bob.Conversations().value();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(convs[0].id, "ab");
  EXPECT_EQ(convs[0].members, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(convs[0].unread, 1u);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, hi) == MessageStatus::kDelivered; }));

  ASSERT_TRUE(bob.MarkRead("ab").ok());
  EXPECT_EQ(bob.Conversations().value()[0].unread, 0u);
  Sync(bob);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, hi) == MessageStatus::kRead; }));
  // Bob's view of alice's message carries the same rule (his own receipt counts for him as the reader).
  EXPECT_EQ(bob.Get(hi).value().sender, "alice");
}

TEST_F(ChatTest, GroupDeliveredAndReadNeedEveryOtherMember) {
  Chat& alice = Device("alice", "phone");
  Chat& bob = Device("bob", "phone");
  Chat& carol = Device("carol", "phone");
  ASSERT_TRUE(alice.CreateConversation("team", {"bob", "carol"}).ok());
  OpId m = alice.Send("team", "standup in 5").value();
  Sync(alice);
  ASSERT_TRUE(SyncUntil(bob, [&] { return Texts(bob, "team").size() == 1; }));
  // Bob has it, carol does not: still only sent.
  Sync(alice);
  EXPECT_EQ(StatusOf(alice, m), MessageStatus::kSent);

  ASSERT_TRUE(SyncUntil(carol, [&] { return Texts(carol, "team").size() == 1; }));
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, m) == MessageStatus::kDelivered; }));

  ASSERT_TRUE(bob.MarkRead("team").ok());
  Sync(bob);
  // Read by bob only: delivered, not read.
  ASSERT_TRUE(SyncUntil(alice, [&] {
    auto marks = alice.client().Watermarks("team").value();
    for (const auto& wm : marks) {
      if (wm.user == "bob" && wm.kind == WatermarkKind::kRead) return true;
    }
    return false;
  }));
  EXPECT_EQ(StatusOf(alice, m), MessageStatus::kDelivered);

  ASSERT_TRUE(carol.MarkRead("team").ok());
  Sync(carol);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, m) == MessageStatus::kRead; }));
}

TEST_F(ChatTest, AnyDeviceOfAMemberCounts) {
  Chat& alice = Device("alice", "phone");
  Chat& bob_phone = Device("bob", "phone");
  Chat& bob_laptop = Device("bob", "laptop");
  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  OpId m = alice.Send("ab", "hello").value();
  Sync(alice);
  // Only the laptop syncs and reads: that is bob reading.
  ASSERT_TRUE(SyncUntil(bob_laptop, [&] { return Texts(bob_laptop, "ab").size() == 1; }));
  ASSERT_TRUE(bob_laptop.MarkRead("ab").ok());
  Sync(bob_laptop);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, m) == MessageStatus::kRead; }));
  EXPECT_TRUE(Texts(bob_phone, "ab").empty());  // never synced
}

TEST_F(ChatTest, ReadReceiptsOffSendNoReadWatermarkAndTheChoiceIsKept) {
  Chat& alice = Device("alice", "phone");
  Chat* bob = &Device("bob", "phone");
  ASSERT_TRUE(bob->SetReadReceipts(false).ok());
  Close(*bob);
  bob = &Device("bob", "phone");  // reopened: the switch is in the store
  EXPECT_FALSE(bob->read_receipts());

  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  OpId m = alice.Send("ab", "did you read this?").value();
  Sync(alice);
  ASSERT_TRUE(SyncUntil(*bob, [&] { return Texts(*bob, "ab").size() == 1; }));
  ASSERT_TRUE(bob->MarkRead("ab").ok());
  EXPECT_EQ(bob->Conversations().value()[0].unread, 0u);  // the local read position still moves
  Sync(*bob);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, m) == MessageStatus::kDelivered; }));
  // Nothing of bob's reading reaches the server, however long alice waits for it.
  Sync(*bob);
  Sync(alice);
  for (const auto& wm : alice.client().Watermarks("ab").value()) {
    EXPECT_FALSE(wm.user == "bob" && wm.kind == WatermarkKind::kRead)
        << "read watermark sent with receipts off";
  }
  EXPECT_EQ(StatusOf(alice, m), MessageStatus::kDelivered);

  // Switched back on, the next read is told.
  ASSERT_TRUE(bob->SetReadReceipts(true).ok());
  OpId m2 = alice.Send("ab", "and this?").value();
  Sync(alice);
  ASSERT_TRUE(SyncUntil(*bob, [&] { return Texts(*bob, "ab").size() == 2; }));
  ASSERT_TRUE(bob->MarkRead("ab").ok());
  Sync(*bob);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, m2) == MessageStatus::kRead; }));
}

TEST_F(ChatTest, RefusedMessageFailsWithReasonThenRetryAndDiscard) {
  Chat& alice = Device("alice", "phone");
  Chat& bob = Device("bob", "phone");
  ASSERT_TRUE(bob.CreateConversation("bobs", {"carol"}).ok());
  Sync(bob);
  OpId refused = alice.Send("bobs", "let me in").value();
  OpId dropped = alice.Send("bobs", "please").value();
  ASSERT_TRUE(SyncUntil(alice, [&] {
    return StatusOf(alice, refused) == MessageStatus::kFailed &&
           StatusOf(alice, dropped) == MessageStatus::kFailed;
  }));
  Message failed = alice.Get(refused).value();
  EXPECT_NE(failed.error.find("forbidden"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.seq, 0u);

  ASSERT_TRUE(alice.Discard(dropped).ok());
  EXPECT_EQ(Texts(alice, "bobs"), (std::vector<std::string>{"alice:let me in"}));

  ASSERT_TRUE(bob.CreateConversation("bobs", {"carol", "alice"}).ok());
  Sync(bob);
  ASSERT_TRUE(alice.Retry(refused).ok());
  EXPECT_EQ(StatusOf(alice, refused), MessageStatus::kPending);
  ASSERT_TRUE(SyncUntil(alice, [&] { return StatusOf(alice, refused) == MessageStatus::kSent; }));
  ASSERT_TRUE(SyncUntil(bob, [&] { return Texts(bob, "bobs").size() == 1; }));
  EXPECT_EQ(Texts(bob, "bobs"), (std::vector<std::string>{"alice:let me in"}));
}

TEST_F(ChatTest, WrongClocksNeverDecideOrder) {
  SkewedEnv ahead(kYearMs), behind(-kYearMs);
  Chat& alice = Device("alice", "phone", &ahead);  // a year ahead
  Chat& bob = Device("bob", "phone", &behind);     // a year behind
  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  Sync(alice);
  ASSERT_TRUE(SyncUntil(bob, [&] { return bob.Conversations().value().size() == 1; }));

  ASSERT_TRUE(alice.Send("ab", "a1").ok());
  Sync(alice);
  ASSERT_TRUE(bob.Send("ab", "b1").ok());
  Sync(bob);
  ASSERT_TRUE(alice.Send("ab", "a2").ok());
  Sync(alice);
  // Bob's own unsent message shows at once, after everything sent, whatever his clock says.
  ASSERT_TRUE(bob.Send("ab", "b2").ok());
  ASSERT_TRUE(SyncUntil(bob, [&] { return Texts(bob, "ab").size() == 4 && bob.client().IsIdle(); }));
  ASSERT_TRUE(SyncUntil(alice, [&] { return Texts(alice, "ab").size() == 4; }));  // b2 reaches alice
  const std::vector<std::string> order = {"alice:a1", "bob:b1", "alice:a2", "bob:b2"};
  EXPECT_EQ(Texts(bob, "ab"), order);
  EXPECT_EQ(Texts(alice, "ab"), order);
  // Seqs follow the order; client times are the authors' (wrong) clocks, for display only.
  auto h = alice.History("ab", 10).value();
  for (size_t i = 1; i < h.size(); ++i) EXPECT_LT(h[i - 1].seq, h[i].seq);
  EXPECT_GT(h[0].client_time_ms, h[1].client_time_ms + kYearMs);
}

TEST_F(ChatTest, PendingOwnMessagesShowAtOnceAfterSentOnes) {
  Chat& alice = Device("alice", "phone");
  Chat& bob = Device("bob", "phone");
  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  Sync(alice);
  ASSERT_TRUE(SyncUntil(bob, [&] { return bob.Conversations().value().size() == 1; }));
  ASSERT_TRUE(alice.Send("ab", "sent first").ok());
  Sync(alice);
  ASSERT_TRUE(SyncUntil(bob, [&] { return Texts(bob, "ab").size() == 1; }));
  bob.client().SetOnline(false);
  ASSERT_TRUE(bob.Send("ab", "offline reply").ok());
  auto h = bob.History("ab", 10).value();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].text, "offline reply");
  EXPECT_EQ(h[1].status, MessageStatus::kPending);
  EXPECT_EQ(h[1].seq, 0u);
}

TEST_F(ChatTest, UndecodableMessagesShowAsUnreadableAndLoseNothing) {
  Chat& alice = Device("alice", "phone");
  ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
  ASSERT_TRUE(alice.client().Submit("ab", kMessageKind, "\x01\x02 not a flatbuffer").ok());
  ASSERT_TRUE(alice.client().Submit("ab", kMessageKind, "").ok());
  ASSERT_TRUE(alice.Send("ab", "fine").ok());
  auto h = alice.History("ab", 10).value();
  ASSERT_EQ(h.size(), 3u);
  EXPECT_TRUE(h[0].unreadable);
  EXPECT_TRUE(h[1].unreadable);
  EXPECT_FALSE(h[2].unreadable);
  EXPECT_EQ(h[2].text, "fine");
}

TEST_F(ChatTest, BadInputIsRefusedAndStoresNothing) {
  Chat& alice = Device("alice", "phone");
  EXPECT_EQ(alice.Send("ab", "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.Send("ab", std::string(100'000, 'x')).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.Send("@alice", "hi").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.CreateConversation("", {"bob"}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.CreateConversation("@bob", {"bob"}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.CreateConversation("x", {"b\nob"}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.CreateConversation(std::string(300, 'c'), {"bob"}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(alice.Conversations().value().empty());
  EXPECT_EQ(alice.GetConversation("nope").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(alice.client().Stats().outbox_depth, 0u);
}

// The engine follows the feed (follow_memberships): a conversation made while a device was closed is found
// after it opens again, and a members change shows once the server has it (the sent list counts, not a
// pending change).
TEST_F(ChatTest, ConversationsMadeElsewhereAreFoundAfterAReopenAndMembersChangeOnceSent) {
  Chat& alice = Device("alice", "phone");
  Chat* bob = &Device("bob", "phone");
  ASSERT_TRUE(alice.CreateConversation("one", {"bob"}).ok());
  Sync(alice);
  ASSERT_TRUE(SyncUntil(*bob, [&] { return bob->GetConversation("one").ok(); }));
  Close(*bob);
  ASSERT_TRUE(alice.CreateConversation("two", {"bob"}).ok());
  ASSERT_TRUE(alice.Send("two", "while you were away").ok());
  Sync(alice);
  bob = &Device("bob", "phone");
  ASSERT_TRUE(SyncUntil(*bob, [&] { return Texts(*bob, "two").size() == 1; }));
  EXPECT_EQ(bob->GetConversation("two").value().members, (std::vector<std::string>{"alice", "bob"}));

  alice.client().SetOnline(false);
  ASSERT_TRUE(alice.CreateConversation("two", {"bob", "carol"}).ok());
  EXPECT_EQ(alice.GetConversation("two").value().members, (std::vector<std::string>{"alice", "bob"}));
  alice.client().SetOnline(true);
  Sync(alice);
  EXPECT_EQ(alice.GetConversation("two").value().members,
            (std::vector<std::string>{"alice", "bob", "carol"}));
  ASSERT_TRUE(SyncUntil(*bob, [&] { return bob->GetConversation("two").value().members.size() == 3; }));
}

TEST_F(ChatTest, AStoreWithoutAUserIsRefusedUntilOneIsGiven) {
  auto chat = Chat::Open(Options("", "phone"));
  ASSERT_FALSE(chat.ok());
  EXPECT_NE(chat.status().message().find("user"), std::string::npos) << chat.status().ToString();
  // The refusal did not tie the store to an empty user.
  auto again = Chat::Open(Options("alice", "phone"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->user(), "alice");
}

}  // namespace
}  // namespace outpost::chat
