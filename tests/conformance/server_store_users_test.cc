// Copyright 2026 The Outpost Authors.
//
// The UserStore's devices (outpost/server_store.h): device records, last seen, revocation and its log,
// token replacement and user removal, checked on outpostd's key-value auth store (KvUserStore, LMDB and
// memory) and on PostgreSQL (PgUsers). Then the key-value auth store's format: a format 1 store written
// the way the code before device records wrote it migrates to format 2 at open, and a newer format is
// refused and left byte for byte as it was.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "conformance/server_store_backends.h"
#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "server_store/kv/kv_user_store.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

struct UserBackend {
  std::string name;
  bool postgresql = false;
  std::string kv_scheme;  // "lmdb" or "memory" for the key-value store
};

void PrintTo(const UserBackend& b, std::ostream* out) { *out << b.name; }

std::string Hash(char c) { return std::string(32, c); }

class UserStoreDevices : public testing::TestWithParam<UserBackend> {
 protected:
  void SetUp() override {
    const UserBackend& b = GetParam();
    tmp_ = std::make_unique<harness::TempDir>("outpost-user-store");
    const std::string unique = testing::UnitTest::GetInstance()->current_test_info()->name();
    if (b.postgresql) {
      std::string reason = PgTestSkipReason();
      if (!reason.empty()) GTEST_SKIP() << reason;
      auto uri = CreatePgTestDatabase("users_" + unique);
      ASSERT_TRUE(uri.ok()) << uri.status().ToString();
      pg_uri_ = *uri;
      auto migrated = MigratePgServerStore(pg_uri_);
      ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
      auto store = OpenPgServerStore(pg_uri_, {});
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      server_store_ = *store;
      users_ = server_store_->users();
    } else {
      const std::string uri =
          b.kv_scheme == "memory" ? "memory:users_" + unique : "lmdb:" + tmp_->path() + "/auth";
      auto opened = OpenKvUserStore(uri, /*sync=*/false);
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      kv_ = std::move(opened).value();
      users_ = kv_.get();
    }
    ASSERT_NE(users_, nullptr);
  }

  void TearDown() override {
    kv_.reset();
    server_store_.reset();
    if (!pg_uri_.empty()) DropPgTestDatabase(pg_uri_);
    tmp_.reset();
  }

  std::vector<DeviceRecord> Devices(const std::string& user) {
    std::vector<DeviceRecord> out;
    Status s = users_->Devices(user, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  uint64_t Generation() {
    std::vector<Revocation> none;
    uint64_t gen = 0;
    Status s = users_->RevokedSince(std::numeric_limits<uint64_t>::max(), &none, &gen);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(none.empty());
    return gen;
  }

  std::vector<Revocation> RevokedSince(uint64_t after) {
    std::vector<Revocation> out;
    uint64_t gen = 0;
    Status s = users_->RevokedSince(after, &out, &gen);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!out.empty()) {
      EXPECT_EQ(gen, out.back().generation);
    }
    return out;
  }

  std::unique_ptr<harness::TempDir> tmp_;
  std::string pg_uri_;
  std::shared_ptr<ServerStore> server_store_;
  std::unique_ptr<UserStore> kv_;
  UserStore* users_ = nullptr;
};

TEST_P(UserStoreDevices, ARecordAppearsWhenATokenIsBound) {
  ASSERT_TRUE(users_->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('b'), "alice", ""}).ok());
  std::vector<DeviceRecord> d = Devices("alice");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].device, "phone");
  EXPECT_GT(d[0].created_ms, 0);
  EXPECT_EQ(d[0].last_seen_ms, 0);
  EXPECT_EQ(d[0].last_address, "");
  EXPECT_EQ(d[0].revoked_ms, 0);
  ASSERT_TRUE(users_->BindToken(Hash('b'), "laptop").ok());
  d = Devices("alice");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].device, "laptop");  // sorted by device id
  EXPECT_EQ(d[1].device, "phone");
  std::vector<DeviceRecord> none;
  EXPECT_TRUE(users_->Devices("bob", &none).IsNotFound());
}

TEST_P(UserStoreDevices, TouchRecordsLastSeenAndAddressAndSkipsSmallMoves) {
  ASSERT_TRUE(users_->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  const int64_t t0 = 1'700'000'000'000;
  ASSERT_TRUE(users_->TouchDevice("alice", "phone", t0, "10.0.0.1").ok());
  EXPECT_EQ(Devices("alice")[0].last_seen_ms, t0);
  EXPECT_EQ(Devices("alice")[0].last_address, "10.0.0.1");
  // Less than the interval later from the same address: not written.
  ASSERT_TRUE(users_->TouchDevice("alice", "phone", t0 + 1000, "10.0.0.1").ok());
  EXPECT_EQ(Devices("alice")[0].last_seen_ms, t0);
  // Another address is written at once; the interval passed is written too.
  ASSERT_TRUE(users_->TouchDevice("alice", "phone", t0 + 2000, "10.0.0.2").ok());
  EXPECT_EQ(Devices("alice")[0].last_seen_ms, t0 + 2000);
  EXPECT_EQ(Devices("alice")[0].last_address, "10.0.0.2");
  ASSERT_TRUE(users_->TouchDevice("alice", "phone", t0 + 2000 + kDeviceTouchIntervalMs, "10.0.0.2").ok());
  EXPECT_EQ(Devices("alice")[0].last_seen_ms, t0 + 2000 + kDeviceTouchIntervalMs);
  // A user that does not exist gets nothing.
  ASSERT_TRUE(users_->TouchDevice("nobody", "phone", t0, "10.0.0.3").ok());
  std::vector<DeviceRecord> none;
  EXPECT_TRUE(users_->Devices("nobody", &none).IsNotFound());
}

TEST_P(UserStoreDevices, RevokeEndsTheDevicesTokensAndIsLoggedOnce) {
  ASSERT_TRUE(users_->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('b'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('c'), "alice", "laptop"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('d'), "alice", ""}).ok());
  const uint64_t g0 = Generation();
  ASSERT_TRUE(users_->RevokeDevice("alice", "phone", 5000).ok());
  for (char c : {'a', 'b'}) {
    TokenRecord t;
    Status s = users_->FindToken(Hash(c), &t);
    EXPECT_EQ(s.code(), Status::Code::kPermissionDenied) << s.ToString();
    EXPECT_EQ(s.message().rfind("device revoked", 0), 0u) << s.ToString();
  }
  TokenRecord laptop;
  ASSERT_TRUE(users_->FindToken(Hash('c'), &laptop).ok());
  EXPECT_EQ(laptop.device, "laptop");
  std::vector<DeviceRecord> d = Devices("alice");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].device, "phone");
  EXPECT_EQ(d[1].revoked_ms, 5000);
  EXPECT_EQ(d[0].revoked_ms, 0);
  std::vector<Revocation> log = RevokedSince(g0);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].user, "alice");
  EXPECT_EQ(log[0].device, "phone");
  EXPECT_EQ(log[0].generation, g0 + 1);
  EXPECT_EQ(Generation(), g0 + 1);

  // Idempotent: as it was, not logged again.
  ASSERT_TRUE(users_->RevokeDevice("alice", "phone", 9000).ok());
  EXPECT_EQ(Devices("alice")[1].revoked_ms, 5000);
  EXPECT_EQ(Generation(), g0 + 1);
  // The device takes no token again, issued or bound.
  EXPECT_EQ(users_->AddToken({Hash('e'), "alice", "phone"}).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(users_->ReplaceDeviceTokens({Hash('e'), "alice", "phone"}).code(),
            Status::Code::kFailedPrecondition);
  Status bind = users_->BindToken(Hash('d'), "phone");
  EXPECT_EQ(bind.code(), Status::Code::kPermissionDenied) << bind.ToString();
  EXPECT_EQ(bind.message().rfind("device revoked", 0), 0u) << bind.ToString();
  // Unknown ones.
  EXPECT_TRUE(users_->RevokeDevice("alice", "tablet", 1).IsNotFound());
  EXPECT_TRUE(users_->RevokeDevice("bob", "phone", 1).IsNotFound());
  EXPECT_EQ(Generation(), g0 + 1);
}

TEST_P(UserStoreDevices, ReplaceRetiresTheDevicesOtherTokens) {
  ASSERT_TRUE(users_->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('b'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('c'), "alice", "laptop"}).ok());
  const uint64_t g0 = Generation();
  ASSERT_TRUE(users_->ReplaceDeviceTokens({Hash('n'), "alice", "phone"}).ok());
  TokenRecord t;
  EXPECT_TRUE(users_->FindToken(Hash('a'), &t).IsNotFound());
  EXPECT_TRUE(users_->FindToken(Hash('b'), &t).IsNotFound());
  ASSERT_TRUE(users_->FindToken(Hash('n'), &t).ok());
  EXPECT_EQ(t.device, "phone");
  ASSERT_TRUE(users_->FindToken(Hash('c'), &t).ok());
  EXPECT_EQ(Devices("alice")[1].revoked_ms, 0) << "replaced, not revoked";
  EXPECT_EQ(Generation(), g0);
  EXPECT_TRUE(users_->ReplaceDeviceTokens({Hash('m'), "bob", "phone"}).IsNotFound());
}

TEST_P(UserStoreDevices, RemoveUserEndsItsDevicesAndLeavesOthers) {
  ASSERT_TRUE(users_->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('b'), "alice", "laptop"}).ok());
  ASSERT_TRUE(users_->AddToken({Hash('c'), "alice", ""}).ok());
  ASSERT_TRUE(users_->AddUser("bob", {Hash('z'), "bob", "phone"}).ok());
  ASSERT_TRUE(users_->RevokeDevice("alice", "laptop", 100).ok());
  const uint64_t g0 = Generation();
  ASSERT_TRUE(users_->RemoveUser("alice").ok());
  bool exists = true;
  ASSERT_TRUE(users_->HasUser("alice", &exists).ok());
  EXPECT_FALSE(exists);
  TokenRecord t;
  for (char c : {'a', 'b', 'c'}) EXPECT_TRUE(users_->FindToken(Hash(c), &t).IsNotFound()) << c;
  std::vector<DeviceRecord> none;
  EXPECT_TRUE(users_->Devices("alice", &none).IsNotFound());
  // Only the device that was still live is logged (the laptop was, when it was revoked).
  std::vector<Revocation> log = RevokedSince(g0);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].device, "phone");
  EXPECT_EQ(log[0].user, "alice");
  EXPECT_TRUE(users_->RemoveUser("alice").IsNotFound());
  // Bob is untouched; the name can be made again, with fresh devices.
  ASSERT_TRUE(users_->FindToken(Hash('z'), &t).ok());
  ASSERT_EQ(Devices("bob").size(), 1u);
  ASSERT_TRUE(users_->AddUser("alice", {Hash('x'), "alice", "laptop"}).ok());
  ASSERT_TRUE(users_->FindToken(Hash('x'), &t).ok());
  ASSERT_EQ(Devices("alice").size(), 1u);
  EXPECT_EQ(Devices("alice")[0].revoked_ms, 0);
}

INSTANTIATE_TEST_SUITE_P(UserStores, UserStoreDevices,
                         testing::Values(UserBackend{"KvLmdb", false, "lmdb"},
                                         UserBackend{"KvMemory", false, "memory"},
                                         UserBackend{"Postgresql", true, ""}),
                         [](const testing::TestParamInfo<UserBackend>& p) { return p.param.name; });

// ---- The key-value auth store's format ----

std::string Binding(const std::string& user, const std::string& device) {
  std::string out(1, '\x01');
  out.push_back(static_cast<char>(user.size()));
  return out + user + device;
}

// Every file of `dir` but LMDB's lock file (readers take slots there), by name.
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename() == "lock.mdb") continue;
    std::ifstream in(e.path(), std::ios::binary);
    out[e.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

TEST(KvUserStoreFormat, FormatOneMigratesToTwoAtOpen) {
  harness::TempDir tmp("outpost-auth-format");
  const std::string uri = "lmdb:" + tmp.path() + "/auth";
  {
    // The store as the code before device records wrote it: spaces users and tokens, no format.
    StorageOptions old;
    old.spaces = {"users", "tokens"};
    auto storage = OpenStorage(uri, old);
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    auto w = (*storage)->BeginWrite().value();
    ASSERT_TRUE(w->Put(0, "alice", "3").ok());
    ASSERT_TRUE(w->Put(1, Hash('a'), Binding("alice", "phone")).ok());
    ASSERT_TRUE(w->Put(1, Hash('b'), Binding("alice", "phone")).ok());
    ASSERT_TRUE(w->Put(1, Hash('c'), "alice").ok());  // the bare-name form: unbound
    ASSERT_TRUE(w->Put(1, Hash('d'), Binding("alice", "")).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  {
    auto opened = OpenKvUserStore(uri, false);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    UserStore& users = **opened;
    std::vector<DeviceRecord> d;
    ASSERT_TRUE(users.Devices("alice", &d).ok());
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].device, "phone");
    EXPECT_EQ(d[0].created_ms, 0) << "bound before records: unknown";
    TokenRecord t;
    ASSERT_TRUE(users.FindToken(Hash('a'), &t).ok());
    EXPECT_EQ(t.device, "phone");
    ASSERT_TRUE(users.FindToken(Hash('c'), &t).ok());
    EXPECT_EQ(t.device, "");
    // Revocable like any other.
    ASSERT_TRUE(users.RevokeDevice("alice", "phone", 7).ok());
    EXPECT_EQ(users.FindToken(Hash('b'), &t).code(), Status::Code::kPermissionDenied);
  }
  // The format is recorded, and the revoked tokens are out of the space an older build reads.
  auto storage = OpenStorage(uri, KvUserStore::Options(false));
  ASSERT_TRUE(storage.ok());
  auto r = (*storage)->BeginRead().value();
  std::string value;
  ASSERT_TRUE(r->Get(2, "format", &value).ok());
  EXPECT_EQ(value, "2");
  EXPECT_TRUE(r->Get(1, Hash('a'), &value).IsNotFound());
  EXPECT_TRUE(r->Get(1, Hash('c'), &value).ok());
}

TEST(KvUserStoreFormat, NewerFormatIsRefusedAndLeftAsItWas) {
  harness::TempDir tmp("outpost-auth-format");
  const std::string dir = tmp.path() + "/auth";
  const std::string uri = "lmdb:" + dir;
  {
    auto opened = OpenKvUserStore(uri, true);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ASSERT_TRUE((*opened)->AddUser("alice", {Hash('a'), "alice", "phone"}).ok());
  }
  {
    auto storage = OpenStorage(uri, KvUserStore::Options(true));
    ASSERT_TRUE(storage.ok());
    auto w = (*storage)->BeginWrite().value();
    ASSERT_TRUE(w->Put(2, "format", "3").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  const auto before = Files(dir);
  ASSERT_FALSE(before.empty());
  auto opened = OpenKvUserStore(uri, true);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("format 3"), std::string::npos) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("format 2"), std::string::npos) << opened.status().ToString();
  EXPECT_EQ(Files(dir), before) << "refused without a write";
}

}  // namespace
}  // namespace outpost
