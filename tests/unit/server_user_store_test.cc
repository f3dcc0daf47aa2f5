// Copyright 2026 The Outpost Authors.
//
// KvUserStore (engine/server_store/kv/kv_user_store.h): the UserStore contract of outpost/server_store.h
// over durable Storage backends, and outpostd's on-disk layout of DATA_DIR/auth (stores written by earlier
// builds, bare user names as token values, keep working).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "server_store/kv/kv_user_store.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

using Code = Status::Code;

TokenRecord Token(std::string hash, std::string user, std::string device = {}) {
  return TokenRecord{std::move(hash), std::move(user), std::move(device)};
}

// A 32-byte hash made from `seed` (the store takes any bytes; outpostd stores BLAKE2b-256).
std::string Hash(int seed) {
  std::string h(32, '\0');
  for (size_t i = 0; i < h.size(); ++i)
    h[i] = static_cast<char>((seed * 131 + static_cast<int>(i) * 7) & 0xff);
  return h;
}

class KvUserStoreTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    uri_ = harness::StoreUri(GetParam(), dir_.path(), "auth");
    users_ = Open();
    ASSERT_NE(users_, nullptr);
  }

  std::unique_ptr<UserStore> Open() {
    auto opened = OpenKvUserStore(uri_, /*sync=*/false);
    EXPECT_TRUE(opened.ok()) << uri_ << ": " << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  harness::TempDir dir_{"outpost-users"};
  std::string uri_;
  std::unique_ptr<UserStore> users_;
};

TEST_P(KvUserStoreTest, AddUserThenConflict) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());
  Status again = users_->AddUser("alice", Token(Hash(2), "alice"));
  EXPECT_EQ(again.code(), Code::kConflict) << again.ToString();
  // The refused token was not stored.
  TokenRecord t;
  EXPECT_EQ(users_->FindToken(Hash(2), &t).code(), Code::kNotFound);
  // The user's name is taken from the call when the record leaves it empty; another name is refused.
  EXPECT_TRUE(users_->AddUser("bob", Token(Hash(3), "")).ok());
  ASSERT_TRUE(users_->FindToken(Hash(3), &t).ok());
  EXPECT_EQ(t.user, "bob");
  EXPECT_EQ(users_->AddUser("carol", Token(Hash(4), "dave")).code(), Code::kInvalidArgument);
  EXPECT_EQ(users_->AddUser("bad name", Token(Hash(5), "")).code(), Code::kInvalidArgument);
  EXPECT_EQ(users_->AddUser("erin", Token("", "erin")).code(), Code::kInvalidArgument);
}

TEST_P(KvUserStoreTest, AddTokenToMissingUserIsNotFound) {
  Status s = users_->AddToken(Token(Hash(1), "nobody"));
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  TokenRecord t;
  EXPECT_EQ(users_->FindToken(Hash(1), &t).code(), Code::kNotFound);
  bool exists = true;
  ASSERT_TRUE(users_->HasUser("nobody", &exists).ok());
  EXPECT_FALSE(exists);

  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(2), "alice")).ok());
  ASSERT_TRUE(users_->AddToken(Token(Hash(3), "alice", "laptop")).ok());
  // A hash that is taken is never overwritten.
  EXPECT_EQ(users_->AddToken(Token(Hash(3), "alice", "phone")).code(), Code::kConflict);
  ASSERT_TRUE(users_->FindToken(Hash(3), &t).ok());
  EXPECT_EQ(t.device, "laptop");
}

TEST_P(KvUserStoreTest, FindToken) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());
  ASSERT_TRUE(users_->AddToken(Token(Hash(2), "alice", "laptop")).ok());
  TokenRecord t;
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.hash, Hash(1));
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.device, "");
  ASSERT_TRUE(users_->FindToken(Hash(2), &t).ok());
  EXPECT_EQ(t.hash, Hash(2));
  EXPECT_EQ(t.device, "laptop");
  EXPECT_EQ(users_->FindToken(Hash(9), &t).code(), Code::kNotFound);
  EXPECT_EQ(users_->FindToken("", &t).code(), Code::kNotFound);
  EXPECT_EQ(users_->FindToken(std::string(4096, 'x'), &t).code(), Code::kNotFound);
}

TEST_P(KvUserStoreTest, BindToken) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());
  ASSERT_TRUE(users_->BindToken(Hash(1), "laptop").ok());
  TokenRecord t;
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.device, "laptop");
  // Binding again to the same device is ok; to another is refused and changes nothing.
  EXPECT_TRUE(users_->BindToken(Hash(1), "laptop").ok());
  Status other = users_->BindToken(Hash(1), "phone");
  EXPECT_EQ(other.code(), Code::kPermissionDenied) << other.ToString();
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.device, "laptop");
  // A token issued bound behaves the same.
  ASSERT_TRUE(users_->AddToken(Token(Hash(2), "alice", "phone")).ok());
  EXPECT_TRUE(users_->BindToken(Hash(2), "phone").ok());
  EXPECT_EQ(users_->BindToken(Hash(2), "laptop").code(), Code::kPermissionDenied);
  EXPECT_EQ(users_->BindToken(Hash(9), "laptop").code(), Code::kNotFound);
  EXPECT_EQ(users_->BindToken(Hash(1), "").code(), Code::kInvalidArgument);
  EXPECT_EQ(users_->BindToken(Hash(1), std::string("a\nb")).code(), Code::kInvalidArgument);
}

TEST_P(KvUserStoreTest, TwoThreadsBindingOneTokenOneDeviceWins) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(0), "alice")).ok());
  constexpr int kTokens = 20;
  for (int i = 1; i <= kTokens; ++i) ASSERT_TRUE(users_->AddToken(Token(Hash(i), "alice")).ok());
  for (int i = 1; i <= kTokens; ++i) {
    std::latch start(2);
    Status a, b;
    std::thread ta([&] {
      start.arrive_and_wait();
      a = users_->BindToken(Hash(i), "device-a");
    });
    std::thread tb([&] {
      start.arrive_and_wait();
      b = users_->BindToken(Hash(i), "device-b");
    });
    ta.join();
    tb.join();
    ASSERT_NE(a.ok(), b.ok()) << "token " << i << ": " << a.ToString() << " / " << b.ToString();
    const Status& loser = a.ok() ? b : a;
    EXPECT_EQ(loser.code(), Code::kPermissionDenied) << loser.ToString();
    TokenRecord t;
    ASSERT_TRUE(users_->FindToken(Hash(i), &t).ok());
    EXPECT_EQ(t.device, a.ok() ? "device-a" : "device-b");
  }
}

TEST_P(KvUserStoreTest, HasUserAndUserCount) {
  uint64_t count = 99;
  ASSERT_TRUE(users_->UserCount(&count).ok());
  EXPECT_EQ(count, 0u);
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());
  ASSERT_TRUE(users_->AddUser("bob", Token(Hash(2), "bob")).ok());
  ASSERT_TRUE(users_->AddToken(Token(Hash(3), "bob")).ok());  // a second token is not a second user
  ASSERT_TRUE(users_->UserCount(&count).ok());
  EXPECT_EQ(count, 2u);
  bool exists = false;
  ASSERT_TRUE(users_->HasUser("alice", &exists).ok());
  EXPECT_TRUE(exists);
  ASSERT_TRUE(users_->HasUser("carol", &exists).ok());
  EXPECT_FALSE(exists);
  ASSERT_TRUE(users_->HasUser("", &exists).ok());
  EXPECT_FALSE(exists);
  ASSERT_TRUE(users_->HasUser(std::string(4096, 'a'), &exists).ok());
  EXPECT_FALSE(exists);
}

TEST_P(KvUserStoreTest, TokensSortedByDeviceUnboundLast) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());            // unbound
  ASSERT_TRUE(users_->AddToken(Token(Hash(2), "alice", "phone")).ok());           // bound
  ASSERT_TRUE(users_->AddToken(Token(Hash(3), "alice")).ok());                    // unbound
  ASSERT_TRUE(users_->AddToken(Token(Hash(4), "alice", "laptop")).ok());          // bound
  ASSERT_TRUE(users_->AddUser("bob", Token(Hash(5), "bob", "bobs-phone")).ok());  // another user's
  std::vector<TokenRecord> tokens;
  ASSERT_TRUE(users_->Tokens("alice", &tokens).ok());
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[0].device, "laptop");
  EXPECT_EQ(tokens[0].hash, Hash(4));
  EXPECT_EQ(tokens[1].device, "phone");
  EXPECT_EQ(tokens[2].device, "");
  EXPECT_EQ(tokens[3].device, "");
  for (const auto& t : tokens) EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(users_->Tokens("carol", &tokens).code(), Code::kNotFound);
}

TEST_P(KvUserStoreTest, ReopeningKeepsData) {
  ASSERT_TRUE(users_->AddUser("alice", Token(Hash(1), "alice")).ok());
  ASSERT_TRUE(users_->AddToken(Token(Hash(2), "alice", "laptop")).ok());
  ASSERT_TRUE(users_->BindToken(Hash(1), "phone").ok());
  users_.reset();
  users_ = Open();
  ASSERT_NE(users_, nullptr);
  TokenRecord t;
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.device, "phone");
  ASSERT_TRUE(users_->FindToken(Hash(2), &t).ok());
  EXPECT_EQ(t.device, "laptop");
  uint64_t count = 0;
  ASSERT_TRUE(users_->UserCount(&count).ok());
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(users_->AddUser("alice", Token(Hash(3), "alice")).code(), Code::kConflict);
}

// The layout written by outpostd before this store existed, byte for byte: users → decimal count, tokens →
// 0x01 | u8 user length | user | device, or (older still) the bare user name.
TEST_P(KvUserStoreTest, ReadsTheOldLayout) {
  users_.reset();
  {
    auto raw = OpenStorage(uri_, KvUserStore::Options(false));
    ASSERT_TRUE(raw.ok()) << raw.status().ToString();
    auto txn = (*raw)->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Put(0, "alice", "3").ok());
    ASSERT_TRUE((*txn)->Put(1, Hash(1), "alice").ok());                            // bare name: unbound
    ASSERT_TRUE((*txn)->Put(1, Hash(2), std::string("\x01\x05") + "alice").ok());  // unbound
    ASSERT_TRUE((*txn)->Put(1, Hash(3), std::string("\x01\x05") + "alicelaptop").ok());
    ASSERT_TRUE((*txn)->Put(1, Hash(4), std::string("\x02junk")).ok());  // a form nobody wrote
    ASSERT_TRUE((*txn)->Commit().ok());
  }
  users_ = Open();
  ASSERT_NE(users_, nullptr);
  TokenRecord t;
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.device, "");
  ASSERT_TRUE(users_->FindToken(Hash(2), &t).ok());
  EXPECT_EQ(t.device, "");
  ASSERT_TRUE(users_->FindToken(Hash(3), &t).ok());
  EXPECT_EQ(t.user, "alice");
  EXPECT_EQ(t.device, "laptop");
  EXPECT_EQ(users_->FindToken(Hash(4), &t).code(), Code::kCorruption);

  // The bare-name token binds, and is rewritten in the new form.
  ASSERT_TRUE(users_->BindToken(Hash(1), "phone").ok());
  ASSERT_TRUE(users_->FindToken(Hash(1), &t).ok());
  EXPECT_EQ(t.device, "phone");
  // A new token continues the user's count, in the layout's decimal text.
  ASSERT_TRUE(users_->AddToken(Token(Hash(5), "alice")).ok());
  users_.reset();
  auto raw = OpenStorage(uri_, KvUserStore::Options(false));
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  auto txn = (*raw)->BeginRead();
  ASSERT_TRUE(txn.ok());
  std::string value;
  ASSERT_TRUE((*txn)->Get(1, Hash(1), &value).ok());
  EXPECT_EQ(value, std::string("\x01\x05") + "alicephone");
  ASSERT_TRUE((*txn)->Get(1, Hash(5), &value).ok());
  EXPECT_EQ(value, std::string("\x01\x05") + "alice");
  ASSERT_TRUE((*txn)->Get(0, "alice", &value).ok());
  EXPECT_EQ(value, "4");
}

INSTANTIATE_TEST_SUITE_P(Backends, KvUserStoreTest, testing::Values("lmdb", "sqlite"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace outpost
