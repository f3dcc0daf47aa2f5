// Copyright 2026 The Outpost Authors.
#include "kv_user_store.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

#include "outpost/membership.h"

namespace outpost {
namespace {

constexpr SpaceId kUsers = 0;
constexpr SpaceId kTokens = 1;
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

// Reads a tokens value in either form (kv_user_store.h) into `token` (its hash is left alone). Corruption
// for anything else: a value this code does not understand is never taken for a user name.
Status DecodeBinding(std::string_view value, TokenRecord* token) {
  if (!value.empty() && value.front() == kBindingVersion) {
    if (value.size() < 2) return Status::Corruption("user registry: truncated token entry");
    const size_t user_bytes = static_cast<uint8_t>(value[1]);
    if (value.size() < 2 + user_bytes) return Status::Corruption("user registry: truncated token entry");
    std::string_view user = value.substr(2, user_bytes);
    std::string_view device = value.substr(2 + user_bytes);
    if (!ValidateUserName(user).ok() || (!device.empty() && !ValidateDeviceId(device).ok())) {
      return Status::Corruption("user registry: malformed token entry");
    }
    token->user.assign(user);
    token->device.assign(device);
    return Status::OK();
  }
  // The previous form: the bare user name, unbound.
  if (!ValidateUserName(value).ok()) {
    return Status::Corruption("user registry: token entry of unknown form (written by a newer outpostd?)");
  }
  token->user.assign(value);
  token->device.clear();
  return Status::OK();
}

uint64_t ParseCount(std::string_view text) {
  uint64_t v = 0;
  (void)std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// What a token record to store must be: a hash the Storage takes as a key, a valid user, and no device or
// a valid one.
Status CheckToken(const TokenRecord& token) {
  if (token.hash.empty() || token.hash.size() > kStorageKeyBytesMax) {
    return Status::InvalidArgument("user registry: a token hash must be 1.." +
                                   std::to_string(kStorageKeyBytesMax) + " bytes");
  }
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(token.user));
  if (!token.device.empty()) OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(token.device));
  return Status::OK();
}

// Stores `token` and sets its user's count to `count`, then commits. Conflict when the hash is taken (a
// binding is never overwritten).
Status PutToken(WriteTxn& txn, const TokenRecord& token, uint64_t count) {
  std::string existing;
  Status s = txn.Get(kTokens, token.hash, &existing);
  if (s.ok()) return Status::Conflict("user registry: a token with this hash exists");
  if (!s.IsNotFound()) return s;
  OUTPOST_RETURN_IF_ERROR(txn.Put(kTokens, token.hash, EncodeBinding(token.user, token.device)));
  OUTPOST_RETURN_IF_ERROR(txn.Put(kUsers, token.user, std::to_string(count)));
  return txn.Commit();
}

}  // namespace

StorageOptions KvUserStore::Options(bool sync) {
  StorageOptions options;
  options.spaces = {"users", "tokens"};
  options.sync = sync;
  // The registry stays tiny; a small map keeps the address space and the file small.
  options.map_bytes_initial = uint64_t{16} << 20;
  return options;
}

Status KvUserStore::AddUser(std::string_view user, const TokenRecord& token) {
  if (!token.user.empty() && token.user != user) {
    return Status::InvalidArgument("user registry: the first token of " + QuoteForMessage(user) +
                                   " names another user");
  }
  TokenRecord record = token;
  record.user.assign(user);
  OUTPOST_RETURN_IF_ERROR(CheckToken(record));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.ok()) return Status::Conflict("user '" + std::string(user) + "' already exists");
  if (!s.IsNotFound()) return s;
  return PutToken(*txn, record, 1);
}

Status KvUserStore::AddToken(const TokenRecord& token) {
  OUTPOST_RETURN_IF_ERROR(CheckToken(token));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string count;
  Status s = txn->Get(kUsers, token.user, &count);
  if (s.IsNotFound()) return Status::NotFound("no user '" + token.user + "'");
  if (!s.ok()) return s;
  return PutToken(*txn, token, ParseCount(count) + 1);
}

Status KvUserStore::FindToken(std::string_view hash, TokenRecord* token) {
  if (hash.empty() || hash.size() > kStorageKeyBytesMax) return Status::NotFound("unknown token");
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  std::string value;
  Status s = txn->Get(kTokens, hash, &value);
  if (s.IsNotFound()) return Status::NotFound("unknown token");
  if (!s.ok()) return s;
  TokenRecord found;
  OUTPOST_RETURN_IF_ERROR(DecodeBinding(value, &found));
  found.hash.assign(hash);
  *token = std::move(found);
  return Status::OK();
}

Status KvUserStore::BindToken(std::string_view hash, std::string_view device) {
  OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  if (hash.empty() || hash.size() > kStorageKeyBytesMax) return Status::NotFound("unknown token");
  // The write txn decides: another caller (this process or another) may bind the token first.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string value;
  Status s = txn->Get(kTokens, hash, &value);
  if (s.IsNotFound()) return Status::NotFound("unknown token");
  if (!s.ok()) return s;
  TokenRecord now;
  OUTPOST_RETURN_IF_ERROR(DecodeBinding(value, &now));
  if (!now.device.empty()) {
    if (now.device == device) return Status::OK();
    return Status::PermissionDenied("token of user " + QuoteForMessage(now.user) + " is bound to device " +
                                    QuoteForMessage(now.device) + ", not " + QuoteForMessage(device));
  }
  OUTPOST_RETURN_IF_ERROR(txn->Put(kTokens, hash, EncodeBinding(now.user, device)));
  return txn->Commit();
}

Status KvUserStore::HasUser(std::string_view user, bool* exists) {
  *exists = false;
  if (user.empty() || user.size() > kStorageKeyBytesMax) return Status::OK();
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return Status::OK();
  if (!s.ok()) return s;
  *exists = true;
  return Status::OK();
}

Status KvUserStore::UserCount(uint64_t* count) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  auto cursor = txn->NewCursor(kUsers);
  uint64_t n = 0;
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++n;
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  *count = n;
  return Status::OK();
}

Status KvUserStore::Tokens(std::string_view user, std::vector<TokenRecord>* tokens) {
  const Status no_user = Status::NotFound("no user '" + std::string(user) + "'");
  if (user.empty() || user.size() > kStorageKeyBytesMax) return no_user;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return no_user;
  if (!s.ok()) return s;
  std::vector<TokenRecord> out;
  auto cursor = txn->NewCursor(kTokens);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    TokenRecord t;
    OUTPOST_RETURN_IF_ERROR(DecodeBinding(cursor->value(), &t));
    if (t.user != user) continue;
    t.hash.assign(cursor->key());
    out.push_back(std::move(t));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  std::sort(out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) {
    if (a.device.empty() != b.device.empty()) return b.device.empty();
    if (a.device != b.device) return a.device < b.device;
    return a.hash < b.hash;
  });
  *tokens = std::move(out);
  return Status::OK();
}

Result<std::unique_ptr<UserStore>> OpenKvUserStore(std::string_view storage_uri, bool sync) {
  OUTPOST_ASSIGN_OR_RETURN(auto storage, OpenStorage(storage_uri, KvUserStore::Options(sync)));
  return std::unique_ptr<UserStore>(std::make_unique<KvUserStore>(std::move(storage)));
}

}  // namespace outpost
