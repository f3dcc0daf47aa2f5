// Copyright 2026 The Outpost Authors.
#include "registry.h"

#include <sodium.h>

#include <array>
#include <charconv>
#include <string>
#include <utility>

namespace outpostd {
namespace {

using outpost::Result;
using outpost::Status;

constexpr outpost::SpaceId kUsers = 0;
constexpr outpost::SpaceId kTokens = 1;
constexpr size_t kTokenRandomBytes = 32;
constexpr size_t kTokenHashBytes = crypto_generichash_BYTES;  // 32
// Unpadded base64 of 32 bytes.
constexpr size_t kTokenTextBytes = kTokenPrefix.size() + 43;

std::string TokenHash(std::string_view token) {
  std::array<unsigned char, kTokenHashBytes> hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

std::string NewToken() {
  std::array<unsigned char, kTokenRandomBytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::array<char, sodium_base64_ENCODED_LEN(kTokenRandomBytes, kVariant)> text{};
  sodium_bin2base64(text.data(), text.size(), raw.data(), raw.size(), kVariant);
  sodium_memzero(raw.data(), raw.size());
  return std::string(kTokenPrefix) + text.data();
}

bool WellFormedToken(std::string_view token) {
  if (token.size() != kTokenTextBytes || !token.starts_with(kTokenPrefix)) return false;
  for (char c : token.substr(kTokenPrefix.size())) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

uint64_t ParseCount(std::string_view text) {
  uint64_t v = 0;
  (void)std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

Status ValidateUserName(std::string_view name) {
  if (name.empty() || name.size() > kUserNameBytesMax) {
    return Status::InvalidArgument("user name must be 1.." + std::to_string(kUserNameBytesMax) +
                                   " bytes, got " + std::to_string(name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("user name '" + std::string(name) +
                                     "' may only contain letters, digits, '.', '_' and '-'");
    }
  }
  return Status::OK();
}

std::string Registry::StoreUri(const std::string& data_dir) { return "lmdb:" + data_dir + "/auth"; }

Result<std::unique_ptr<Registry>> Registry::Open(const std::string& data_dir) {
  outpost::StorageOptions options;
  options.spaces = {"users", "tokens"};
  options.sync = true;
  // The registry stays tiny; a small map keeps the address space and the file small.
  options.map_bytes_initial = uint64_t{16} << 20;
  OUTPOST_ASSIGN_OR_RETURN(auto store, outpost::OpenStorage(StoreUri(data_dir), options));
  return std::unique_ptr<Registry>(new Registry(std::move(store)));
}

Result<std::string> Registry::IssueToken(outpost::WriteTxn& txn, std::string_view user, uint64_t count) {
  std::string token = NewToken();
  OUTPOST_RETURN_IF_ERROR(txn.Put(kTokens, TokenHash(token), user));
  OUTPOST_RETURN_IF_ERROR(txn.Put(kUsers, user, std::to_string(count)));
  OUTPOST_RETURN_IF_ERROR(txn.Commit());
  return token;
}

Result<std::string> Registry::AddUser(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string value;
  Status s = txn->Get(kUsers, user, &value);
  if (s.ok())
    return Status::Conflict("user '" + std::string(user) + "' already exists (add-device adds a token)");
  if (!s.IsNotFound()) return s;
  return IssueToken(*txn, user, 1);
}

Result<std::string> Registry::AddDevice(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string value;
  Status s = txn->Get(kUsers, user, &value);
  if (s.IsNotFound()) return Status::NotFound("no user '" + std::string(user) + "' (add-user creates one)");
  if (!s.ok()) return s;
  return IssueToken(*txn, user, ParseCount(value) + 1);
}

Result<std::string> Registry::Authenticate(const outpost::HelloInfo& hello) {
  if (!WellFormedToken(hello.token)) return Status::PermissionDenied("malformed or missing token");
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string owner;
  Status s = txn->Get(kTokens, TokenHash(hello.token), &owner);
  if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
  if (!s.ok()) return Status::IOError("user registry: " + s.ToString());
  // The Hello names its user; the token must be one of that user's. Constant time over equal lengths, so
  // the answer's timing says nothing about how much of the name matched.
  const bool same =
      owner.size() == hello.user.size() && sodium_memcmp(owner.data(), hello.user.data(), owner.size()) == 0;
  if (!same) return Status::PermissionDenied("token does not belong to user '" + hello.user + "'");
  return owner;
}

Result<uint64_t> Registry::UserCount() {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  auto cursor = txn->NewCursor(kUsers);
  uint64_t n = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++n;
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return n;
}

}  // namespace outpostd
