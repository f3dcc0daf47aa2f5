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

TEST_F(TokenRegistryTest, ARevokedDeviceIsRefusedAsRevokedAndReplaceRetiresOldTokens) {
  auto phone = registry_->AddUser("alice", "phone");
  auto old_laptop = registry_->AddDevice("alice", "laptop");
  ASSERT_TRUE(phone.ok() && old_laptop.ok());
  ASSERT_TRUE(
      registry_->Authenticate({.user = "alice", .device = "phone", .token = *phone, .peer = "10.1.2.3"})
          .ok());
  ASSERT_TRUE(registry_->TouchDevice("alice", "phone", "10.1.2.3").ok());
  auto devices = registry_->DeviceRecords("alice");
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[1].device, "phone");
  EXPECT_EQ((*devices)[1].last_address, "10.1.2.3");
  EXPECT_GT((*devices)[1].last_seen_ms, 0);

  ASSERT_TRUE(registry_->RevokeDevice("alice", "phone").ok());
  auto refused = registry_->Authenticate({.user = "alice", .device = "phone", .token = *phone});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsRevoked(refused.status())) << refused.status().ToString();
  EXPECT_FALSE(registry_->LookUpToken(*phone).ok()) << "the media server refuses it too";
  EXPECT_TRUE(registry_->RevokeDevice("alice", "tablet").IsNotFound());

  // A replacement token for the laptop retires its old one: unknown, not revoked.
  auto new_laptop = registry_->AddDevice("alice", "laptop", /*replace=*/true);
  ASSERT_TRUE(new_laptop.ok()) << new_laptop.status().ToString();
  auto old = registry_->Authenticate({.user = "alice", .device = "laptop", .token = *old_laptop});
  ASSERT_FALSE(old.ok());
  EXPECT_FALSE(IsRevoked(old.status())) << old.status().ToString();
  EXPECT_TRUE(registry_->Authenticate({.user = "alice", .device = "laptop", .token = *new_laptop}).ok());
  EXPECT_EQ(registry_->AddDevice("alice", "", /*replace=*/true).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(registry_->AddDevice("alice", "phone").status().code(), Status::Code::kFailedPrecondition);
}

TEST(RevokedStatusTest, MarksOnlyRevocations) {
  EXPECT_TRUE(IsRevoked(RevokedStatus("device \"phone\" of user \"alice\" was revoked")));
  EXPECT_EQ(RevokedStatus("x").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(RevokedStatus("x").message(), "device revoked: x");
  EXPECT_FALSE(IsRevoked(Status::PermissionDenied("unknown token")));
  EXPECT_FALSE(IsRevoked(Status::IOError("device revoked")));
}

}  // namespace
}  // namespace outpost
