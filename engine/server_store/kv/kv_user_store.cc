// Copyright 2026 The Outpost Authors.
#include "kv_user_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "outpost/membership.h"

namespace outpost {
namespace {

constexpr SpaceId kUsers = 0;
constexpr SpaceId kTokens = 1;
constexpr SpaceId kMeta = 2;
constexpr SpaceId kDevices = 3;
constexpr SpaceId kRevokedTokens = 4;
constexpr SpaceId kRevocations = 5;
constexpr char kBindingVersion = 0x01;
constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kRevocationGenKey = "revocation_gen";
// Revocations one RevokedSince answer carries at most (the caller asks again from where it stopped).
constexpr size_t kRevocationsPerCallMax = 1000;
// Bytes of a last address kept (an address is short; a longer one is cut).
constexpr size_t kAddressBytesMax = 255;

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

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string DeviceKey(std::string_view user, std::string_view device) {
  std::string out;
  out.reserve(1 + user.size() + device.size());
  out.push_back(static_cast<char>(static_cast<uint8_t>(user.size())));
  out.append(user);
  out.append(device);
  return out;
}

Status DecodeDeviceKey(std::string_view key, std::string* user, std::string* device) {
  if (key.empty() || key.size() < 1 + static_cast<size_t>(static_cast<uint8_t>(key[0]))) {
    return Status::Corruption("user registry: truncated device key");
  }
  const size_t user_bytes = static_cast<uint8_t>(key[0]);
  user->assign(key.substr(1, user_bytes));
  device->assign(key.substr(1 + user_bytes));
  return Status::OK();
}

std::string EncodeDevice(const DeviceRecord& d) {
  std::string out;
  out.reserve(24 + d.last_address.size());
  PutU64(&out, static_cast<uint64_t>(d.created_ms));
  PutU64(&out, static_cast<uint64_t>(d.last_seen_ms));
  PutU64(&out, static_cast<uint64_t>(d.revoked_ms));
  out.append(d.last_address);
  return out;
}

Status DecodeDevice(std::string_view value, DeviceRecord* d) {
  if (value.size() < 24) return Status::Corruption("user registry: truncated device record");
  d->created_ms = static_cast<int64_t>(GetU64(value));
  d->last_seen_ms = static_cast<int64_t>(GetU64(value.substr(8)));
  d->revoked_ms = static_cast<int64_t>(GetU64(value.substr(16)));
  d->last_address.assign(value.substr(24));
  return Status::OK();
}

// The record of (user, device) in `txn`: NotFound when there is none.
Status GetDevice(ReadTxn& txn, std::string_view user, std::string_view device, DeviceRecord* d) {
  std::string value;
  OUTPOST_RETURN_IF_ERROR(txn.Get(kDevices, DeviceKey(user, device), &value));
  d->device.assign(device);
  return DecodeDevice(value, d);
}

Status RevokedError(std::string_view user, std::string_view device) {
  return Status::PermissionDenied("device revoked: device " + QuoteForMessage(device) + " of user " +
                                  QuoteForMessage(user) + " was revoked (outpostd revoke-device)");
}

// Makes sure (user, device) has a record (created now) and is not revoked: a revoked device takes no
// token again.
Status EnsureDevice(WriteTxn& txn, std::string_view user, std::string_view device) {
  DeviceRecord d;
  Status s = GetDevice(txn, user, device, &d);
  if (s.ok()) {
    if (d.revoked_ms != 0) {
      return Status::FailedPrecondition("device " + QuoteForMessage(device) + " of user " +
                                        QuoteForMessage(user) +
                                        " was revoked: it takes no token again (use another device id)");
    }
    return Status::OK();
  }
  if (!s.IsNotFound()) return s;
  d = DeviceRecord{};
  d.created_ms = NowMs();
  return txn.Put(kDevices, DeviceKey(user, device), EncodeDevice(d));
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
  if (!token.device.empty()) OUTPOST_RETURN_IF_ERROR(EnsureDevice(txn, token.user, token.device));
  OUTPOST_RETURN_IF_ERROR(txn.Put(kTokens, token.hash, EncodeBinding(token.user, token.device)));
  OUTPOST_RETURN_IF_ERROR(txn.Put(kUsers, token.user, std::to_string(count)));
  return txn.Commit();
}

}  // namespace

StorageOptions KvUserStore::Options(bool sync) {
  StorageOptions options;
  options.spaces = {"users", "tokens", "meta", "devices", "revoked_tokens", "revocations"};
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
  if (s.IsNotFound()) {
    // A token of a revoked device: refused as such, so that the device hears it is signed out for good.
    s = txn->Get(kRevokedTokens, hash, &value);
    if (s.IsNotFound()) return Status::NotFound("unknown token");
    if (!s.ok()) return s;
    TokenRecord revoked;
    OUTPOST_RETURN_IF_ERROR(DecodeBinding(value, &revoked));
    return RevokedError(revoked.user, revoked.device);
  }
  if (!s.ok()) return s;
  TokenRecord found;
  OUTPOST_RETURN_IF_ERROR(DecodeBinding(value, &found));
  if (!found.device.empty()) {
    DeviceRecord d;
    s = GetDevice(*txn, found.user, found.device, &d);
    if (s.ok() && d.revoked_ms != 0) return RevokedError(found.user, found.device);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
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
  if (Status e = EnsureDevice(*txn, now.user, device); !e.ok()) {
    if (e.code() == Status::Code::kFailedPrecondition) return RevokedError(now.user, device);
    return e;
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

namespace {

// Reads meta/format: 1 when absent (a store from before formats, or a new one).
Status ReadFormat(ReadTxn& txn, SpaceId meta, std::string_view where, uint32_t* format) {
  std::string value;
  Status s = txn.Get(meta, kFormatKey, &value);
  if (s.IsNotFound()) {
    *format = 1;
    return Status::OK();
  }
  if (!s.ok()) return s;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v == 0) {
    return Status::Corruption("user registry " + std::string(where) + ": unreadable format number " +
                              QuoteForMessage(value));
  }
  *format = v;
  return Status::OK();
}

Status NewerFormat(std::string_view where, uint32_t format) {
  return Status::FailedPrecondition(
      "user registry " + std::string(where) + " has format " + std::to_string(format) +
      ", newer than this build's format " + std::to_string(KvUserStore::kFormat) +
      " (a newer outpostd wrote it: run that build); not opened, nothing written");
}

}  // namespace

Status KvUserStore::UpgradeFormat(Storage& storage, std::string_view where) {
  uint32_t format = 0;
  {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage.BeginRead());
    OUTPOST_RETURN_IF_ERROR(ReadFormat(*txn, kMeta, where, &format));
  }
  if (format == kFormat) return Status::OK();
  if (format > kFormat) return NewerFormat(where, format);
  // Format 1 → 2, in one write transaction: a crash leaves format 1 whole (and the next open migrates).
  // Another process may have migrated since the read: the write transaction decides.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage.BeginWrite());
  OUTPOST_RETURN_IF_ERROR(ReadFormat(*txn, kMeta, where, &format));
  if (format == kFormat) return Status::OK();
  if (format > kFormat) return NewerFormat(where, format);
  std::vector<std::string> keys;
  auto cursor = txn->NewCursor(kTokens);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    TokenRecord t;
    OUTPOST_RETURN_IF_ERROR(DecodeBinding(cursor->value(), &t));
    if (!t.device.empty()) keys.push_back(DeviceKey(t.user, t.device));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  cursor.reset();
  const std::string unknown = EncodeDevice(DeviceRecord{});  // created_ms 0: bound by an older build
  for (const auto& key : keys) OUTPOST_RETURN_IF_ERROR(txn->Put(kDevices, key, unknown));
  OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, kFormatKey, std::to_string(kFormat)));
  return txn->Commit();
}

Status KvUserStore::Devices(std::string_view user, std::vector<DeviceRecord>* devices) {
  const Status no_user = Status::NotFound("no user '" + std::string(user) + "'");
  if (user.empty() || user.size() > kStorageKeyBytesMax) return no_user;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return no_user;
  if (!s.ok()) return s;
  const std::string prefix = DeviceKey(user, {});
  std::vector<DeviceRecord> out;
  auto cursor = txn->NewCursor(kDevices);
  for (cursor->Seek(prefix); cursor->Valid() && cursor->key().starts_with(prefix); cursor->Next()) {
    DeviceRecord d;
    OUTPOST_RETURN_IF_ERROR(DecodeDevice(cursor->value(), &d));
    d.device.assign(cursor->key().substr(prefix.size()));
    out.push_back(std::move(d));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  *devices = std::move(out);  // the key order is the device order: the prefix is the same for all
  return Status::OK();
}

Status KvUserStore::TouchDevice(std::string_view user, std::string_view device, int64_t now_ms,
                                std::string_view address) {
  if (!ValidateUserName(user).ok() || !ValidateDeviceId(device).ok()) {
    return Status::InvalidArgument("TouchDevice: bad user name or device id");
  }
  address = address.substr(0, kAddressBytesMax);
  DeviceRecord d;
  {
    // Most Hellos change nothing worth a write (and its fsync): decided on a snapshot first.
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
    Status s = GetDevice(*txn, user, device, &d);
    if (s.ok() && now_ms - d.last_seen_ms < kDeviceTouchIntervalMs && d.last_address == address) {
      return Status::OK();
    }
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return Status::OK();  // removed meanwhile
  if (!s.ok()) return s;
  s = GetDevice(*txn, user, device, &d);
  if (s.IsNotFound()) {
    d = DeviceRecord{};
  } else if (!s.ok()) {
    return s;
  }
  d.last_seen_ms = std::max(d.last_seen_ms, now_ms);
  d.last_address.assign(address);
  OUTPOST_RETURN_IF_ERROR(txn->Put(kDevices, DeviceKey(user, device), EncodeDevice(d)));
  return txn->Commit();
}

namespace {

// Logs (user, device) as revoked under the next generation.
Status LogRevocation(WriteTxn& txn, std::string_view device_key) {
  std::string value;
  uint64_t gen = 0;
  Status s = txn.Get(kMeta, kRevocationGenKey, &value);
  if (s.ok()) {
    gen = ParseCount(value);
  } else if (!s.IsNotFound()) {
    return s;
  }
  ++gen;
  std::string key;
  PutU64(&key, gen);
  OUTPOST_RETURN_IF_ERROR(txn.Put(kRevocations, key, device_key));
  return txn.Put(kMeta, kRevocationGenKey, std::to_string(gen));
}

// The keys of the tokens in `space` of `user` (and of `device`, unless `any_device`).
Status TokensOf(WriteTxn& txn, SpaceId space, std::string_view user, std::string_view device, bool any_device,
                std::vector<std::pair<std::string, std::string>>* out) {
  auto cursor = txn.NewCursor(space);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    TokenRecord t;
    OUTPOST_RETURN_IF_ERROR(DecodeBinding(cursor->value(), &t));
    if (t.user != user || (!any_device && t.device != device)) continue;
    out->emplace_back(std::string(cursor->key()), std::string(cursor->value()));
  }
  return cursor->status();
}

}  // namespace

Status KvUserStore::RevokeDevice(std::string_view user, std::string_view device, int64_t now_ms) {
  const Status unknown =
      Status::NotFound("no device " + QuoteForMessage(device) + " of user " + QuoteForMessage(user));
  if (!ValidateUserName(user).ok() || !ValidateDeviceId(device).ok()) return unknown;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  DeviceRecord d;
  Status s = GetDevice(*txn, user, device, &d);
  if (s.IsNotFound()) return unknown;
  if (!s.ok()) return s;
  if (d.revoked_ms != 0) return Status::OK();  // revoked already: as it was
  d.revoked_ms = std::max<int64_t>(now_ms, 1);
  const std::string key = DeviceKey(user, device);
  OUTPOST_RETURN_IF_ERROR(txn->Put(kDevices, key, EncodeDevice(d)));
  // Its tokens leave `tokens`: refused by this build (as revoked) and by one that predates device records.
  std::vector<std::pair<std::string, std::string>> tokens;
  OUTPOST_RETURN_IF_ERROR(TokensOf(*txn, kTokens, user, device, false, &tokens));
  for (const auto& [hash, binding] : tokens) {
    OUTPOST_RETURN_IF_ERROR(txn->Put(kRevokedTokens, hash, binding));
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kTokens, hash));
  }
  OUTPOST_RETURN_IF_ERROR(LogRevocation(*txn, key));
  return txn->Commit();
}

Status KvUserStore::ReplaceDeviceTokens(const TokenRecord& token) {
  OUTPOST_RETURN_IF_ERROR(CheckToken(token));
  if (token.device.empty()) {
    return Status::InvalidArgument("user registry: replacing a device's tokens needs the device id");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string count;
  Status s = txn->Get(kUsers, token.user, &count);
  if (s.IsNotFound()) return Status::NotFound("no user '" + token.user + "'");
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> old;
  OUTPOST_RETURN_IF_ERROR(TokensOf(*txn, kTokens, token.user, token.device, false, &old));
  for (const auto& entry : old) OUTPOST_RETURN_IF_ERROR(txn->Delete(kTokens, entry.first));
  return PutToken(*txn, token, ParseCount(count) + 1);
}

Status KvUserStore::RemoveUser(std::string_view user) {
  const Status no_user = Status::NotFound("no user '" + std::string(user) + "'");
  if (user.empty() || user.size() > kStorageKeyBytesMax) return no_user;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
  std::string count;
  Status s = txn->Get(kUsers, user, &count);
  if (s.IsNotFound()) return no_user;
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> tokens, revoked;
  OUTPOST_RETURN_IF_ERROR(TokensOf(*txn, kTokens, user, {}, true, &tokens));
  OUTPOST_RETURN_IF_ERROR(TokensOf(*txn, kRevokedTokens, user, {}, true, &revoked));
  std::vector<std::pair<std::string, bool>> devices;  // key, was live
  {
    const std::string prefix = DeviceKey(user, {});
    auto cursor = txn->NewCursor(kDevices);
    for (cursor->Seek(prefix); cursor->Valid() && cursor->key().starts_with(prefix); cursor->Next()) {
      DeviceRecord d;
      OUTPOST_RETURN_IF_ERROR(DecodeDevice(cursor->value(), &d));
      devices.emplace_back(std::string(cursor->key()), d.revoked_ms == 0);
    }
    OUTPOST_RETURN_IF_ERROR(cursor->status());
  }
  for (const auto& t : tokens) OUTPOST_RETURN_IF_ERROR(txn->Delete(kTokens, t.first));
  for (const auto& t : revoked) OUTPOST_RETURN_IF_ERROR(txn->Delete(kRevokedTokens, t.first));
  for (const auto& [key, live] : devices) {
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kDevices, key));
    if (live) OUTPOST_RETURN_IF_ERROR(LogRevocation(*txn, key));
  }
  OUTPOST_RETURN_IF_ERROR(txn->Delete(kUsers, user));
  return txn->Commit();
}

Status KvUserStore::RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
  std::string value;
  uint64_t now = 0;
  Status s = txn->Get(kMeta, kRevocationGenKey, &value);
  if (s.ok()) {
    now = ParseCount(value);
  } else if (!s.IsNotFound()) {
    return s;
  }
  out->clear();
  *generation = now;
  if (after >= now) return Status::OK();
  std::string from;
  PutU64(&from, after + 1);
  auto cursor = txn->NewCursor(kRevocations);
  for (cursor->Seek(from); cursor->Valid(); cursor->Next()) {
    if (cursor->key().size() != 8) return Status::Corruption("user registry: malformed revocation key");
    Revocation r;
    r.generation = GetU64(cursor->key());
    OUTPOST_RETURN_IF_ERROR(DecodeDeviceKey(cursor->value(), &r.user, &r.device));
    out->push_back(std::move(r));
    if (out->size() == kRevocationsPerCallMax) {
      *generation = out->back().generation;  // the rest on the next call
      break;
    }
  }
  return cursor->status();
}

Result<std::unique_ptr<UserStore>> OpenKvUserStore(std::string_view storage_uri, bool sync) {
  // A store of a newer format must not be written at all, not even by opening it with spaces it may not
  // have: its format is read first, read-only, when it exists and has a format.
  {
    StorageOptions probe;
    probe.spaces = {"meta"};
    probe.read_only = true;
    auto peek = OpenStorage(storage_uri, probe);
    if (peek.ok()) {
      OUTPOST_ASSIGN_OR_RETURN(auto txn, (*peek)->BeginRead());
      uint32_t format = 0;
      OUTPOST_RETURN_IF_ERROR(ReadFormat(*txn, 0, storage_uri, &format));
      if (format > KvUserStore::kFormat) return NewerFormat(storage_uri, format);
    }
    // Otherwise a new store, one of format 1 (no meta space), or a backend that cannot be opened read-only
    // here: UpgradeFormat checks again before it writes.
  }
  OUTPOST_ASSIGN_OR_RETURN(auto storage, OpenStorage(storage_uri, KvUserStore::Options(sync)));
  OUTPOST_RETURN_IF_ERROR(KvUserStore::UpgradeFormat(*storage, storage_uri));
  return std::unique_ptr<UserStore>(std::make_unique<KvUserStore>(std::move(storage)));
}

}  // namespace outpost
