// Copyright 2026 The Outpost Authors.
//
// TokenRegistry (outpost/token_registry.h, library outpost::auth) as an embedder uses it: tokens issued and
// checked, and InstallHooks wiring a ServerOptions so that a server authenticates with it. outpostd's own
// use is covered end to end by tests/e2e (access, outpostd CLI).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "outpost/server.h"
#include "outpost/token_registry.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

class TokenRegistryTest : public testing::Test {
 protected:
  void SetUp() override {
    auto registry = TokenRegistry::Open(dir_.path());
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = std::move(*registry);
  }
  harness::TempDir dir_;
  std::shared_ptr<TokenRegistry> registry_;
};

TEST_F(TokenRegistryTest, InstallHooksAuthenticatesHellosAndAnswersUserExists) {
  auto token = registry_->AddUser("alice", "phone");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_TRUE(token->starts_with(kTokenPrefix));

  ServerOptions options;
  ASSERT_FALSE(options.authenticate);
  TokenRegistry::InstallHooks(registry_, &options);
  ASSERT_TRUE(options.authenticate);
  ASSERT_TRUE(options.user_exists);

  auto user = options.authenticate({.user = "alice", .device = "phone", .token = *token});
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(*user, "alice");

  // Another device, another user, a wrong or malformed token: refused.
  EXPECT_EQ(options.authenticate({.user = "alice", .device = "laptop", .token = *token}).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(options.authenticate({.user = "bob", .device = "phone", .token = *token}).status().code(),
            Status::Code::kPermissionDenied);
  std::string wrong = *token;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(options.authenticate({.user = "alice", .device = "phone", .token = wrong}).status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(options.authenticate({.user = "alice", .device = "phone", .token = "opt_"}).status().code(),
            Status::Code::kPermissionDenied);

  auto alice = options.user_exists("alice");
  ASSERT_TRUE(alice.ok());
  EXPECT_TRUE(*alice);
  auto bob = options.user_exists("bob");
  ASSERT_TRUE(bob.ok());
  EXPECT_FALSE(*bob);
}

TEST_F(TokenRegistryTest, UnboundTokenBindsToTheFirstDeviceAndTheHooksKeepTheRegistryAlive) {
  auto token = registry_->AddUser("carol");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  ServerOptions options;
  TokenRegistry::InstallHooks(registry_, &options);
  registry_.reset();  // the hooks share ownership
  ASSERT_TRUE(options.authenticate({.user = "carol", .device = "tablet", .token = *token}).ok());
  EXPECT_EQ(options.authenticate({.user = "carol", .device = "phone", .token = *token}).status().code(),
            Status::Code::kPermissionDenied);
}

TEST(RedactUriTest, RemovesPasswords) {
  EXPECT_EQ(RedactUri("postgresql://app:secret@db/outpost"), "postgresql://app:***@db/outpost");
  EXPECT_EQ(RedactUri("host=db password=secret user=app"), "host=db password=*** user=app");
  EXPECT_EQ(RedactUri("lmdb:/var/lib/x"), "lmdb:/var/lib/x");
}

}  // namespace
}  // namespace outpost
