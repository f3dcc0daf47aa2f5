// Copyright 2026 The Outpost Authors.
#include "registry.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string>
#include <utility>

namespace outpostd {
namespace {

using outpost::QuoteForMessage;
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

constexpr char kBindingVersion = 0x01;

std::string EncodeBinding(std::string_view user, std::string_view device) {
  std::string out;
  out.reserve(2 + user.size() + device.size());
  out.push_back(kBindingVersion);
  out.push_back(static_cast<char>(static_cast<uint8_t>(user.size())));
  out.append(user);
  out.append(device);
  return out;
}

// Reads a tokens value in either form (registry.h). Corruption for anything else: a value this code does
// not understand is never taken for a user name.
Result<TokenBinding> DecodeBinding(std::string_view value) {
  if (!value.empty() && value.front() == kBindingVersion) {
    if (value.size() < 2) return Status::Corruption("user registry: truncated token entry");
    const size_t user_bytes = static_cast<uint8_t>(value[1]);
    if (value.size() < 2 + user_bytes) return Status::Corruption("user registry: truncated token entry");
    TokenBinding b{std::string(value.substr(2, user_bytes)), std::string(value.substr(2 + user_bytes))};
    if (!ValidateUserName(b.user).ok() || (!b.device.empty() && !ValidateDeviceId(b.device).ok())) {
      return Status::Corruption("user registry: malformed token entry");
    }
    return b;
  }
  // The previous form: the bare user name, unbound.
  if (!ValidateUserName(value).ok()) {
    return Status::Corruption("user registry: token entry of unknown form (written by a newer outpostd?)");
  }
  return TokenBinding{std::string(value), {}};
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

uint64_t ParseCount(std::string_view text) {
  uint64_t v = 0;
  (void)std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

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

Result<std::string> Registry::IssueToken(outpost::WriteTxn& txn, std::string_view user,
                                         std::string_view device, uint64_t count) {
  std::string token = NewToken();
  OUTPOST_RETURN_IF_ERROR(txn.Put(kTokens, TokenHash(token), EncodeBinding(user, device)));
  OUTPOST_RETURN_IF_ERROR(txn.Put(kUsers, user, std::to_string(count)));
  OUTPOST_RETURN_IF_ERROR(txn.Commit());
  return token;
}

Result<std::string> Registry::AddUser(std::string_view user, std::string_view device) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  if (!device.empty()) OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string value;
  Status s = txn->Get(kUsers, user, &value);
  if (s.ok())
    return Status::Conflict("user '" + std::string(user) + "' already exists (add-device adds a token)");
  if (!s.IsNotFound()) return s;
  return IssueToken(*txn, user, device, 1);
}

Result<std::string> Registry::AddDevice(std::string_view user, std::string_view device) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  if (!device.empty()) OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string value;
  Status s = txn->Get(kUsers, user, &value);
  if (s.IsNotFound()) return Status::NotFound("no user '" + std::string(user) + "' (add-user creates one)");
  if (!s.ok()) return s;
  return IssueToken(*txn, user, device, ParseCount(value) + 1);
}

Result<std::string> Registry::Authenticate(const outpost::HelloInfo& hello) {
  if (!WellFormedToken(hello.token)) return Status::PermissionDenied("malformed or missing token");
  const std::string hash = TokenHash(hello.token);
  std::string value;
  {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
    Status s = txn->Get(kTokens, hash, &value);
    if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
    if (!s.ok()) return Status::IOError("user registry: " + s.ToString());
  }
  OUTPOST_ASSIGN_OR_RETURN(TokenBinding binding, DecodeBinding(value));
  // The Hello names its user; the token must be one of that user's. Constant time over equal lengths, so
  // the answer's timing says nothing about how much of the name matched. Checked before any binding: a
  // token presented under another user's name binds to nothing.
  if (!ConstantTimeEqual(binding.user, hello.user)) {
    return Status::PermissionDenied("token does not belong to user " + QuoteForMessage(hello.user));
  }
  if (binding.device.empty()) {
    OUTPOST_RETURN_IF_ERROR(Bind(hash, binding.user, hello.device));
  } else if (!ConstantTimeEqual(binding.device, hello.device)) {
    return Status::PermissionDenied("token of user " + QuoteForMessage(binding.user) +
                                    " is bound to device " + QuoteForMessage(binding.device) + ", not " +
                                    QuoteForMessage(hello.device) +
                                    " (outpostd add-device issues a token for another device)");
  }
  return std::move(binding.user);
}

Status Registry::Bind(const std::string& hash, std::string_view user, std::string_view device) {
  if (Status s = ValidateDeviceId(device); !s.ok()) {
    return Status::PermissionDenied("cannot bind the token to this device: " + s.message());
  }
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  // Another Hello (this process or another) may have bound it since the read: the write txn decides.
  std::string value;
  Status s = txn->Get(kTokens, hash, &value);
  if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
  if (!s.ok()) return Status::IOError("user registry: " + s.ToString());
  OUTPOST_ASSIGN_OR_RETURN(TokenBinding now, DecodeBinding(value));
  if (!now.device.empty()) {
    if (ConstantTimeEqual(now.device, device)) return Status::OK();
    return Status::PermissionDenied("token of user " + QuoteForMessage(now.user) + " is bound to device " +
                                    QuoteForMessage(now.device) + ", not " + QuoteForMessage(device));
  }
  if (Status put = txn->Put(kTokens, hash, EncodeBinding(user, device)); !put.ok()) {
    return Status::IOError("user registry: cannot bind the token: " + put.ToString());
  }
  if (Status commit = txn->Commit(); !commit.ok()) {
    return Status::IOError("user registry: cannot bind the token: " + commit.ToString());
  }
  return Status::OK();
}

Result<bool> Registry::HasUser(std::string_view user) {
  if (!ValidateUserName(user).ok()) return false;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return Status::IOError("user registry: " + s.ToString());
  return true;
}

Result<std::vector<TokenBinding>> Registry::Devices(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return Status::NotFound("no user '" + std::string(user) + "'");
  if (!s.ok()) return s;
  std::vector<TokenBinding> out;
  auto cursor = txn->NewCursor(kTokens);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    OUTPOST_ASSIGN_OR_RETURN(TokenBinding b, DecodeBinding(cursor->value()));
    if (b.user == user) out.push_back(std::move(b));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  std::sort(out.begin(), out.end(), [](const TokenBinding& a, const TokenBinding& b) {
    if (a.device.empty() != b.device.empty()) return b.device.empty();
    return a.device < b.device;
  });
  return out;
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
