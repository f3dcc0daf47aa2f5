// Copyright 2026 The Outpost Authors.
#include "outpost/token_registry.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

#include "server_store/kv/kv_user_store.h"

namespace outpost {
namespace {

// libsodium must be initialized once before use; sodium_init is itself idempotent and thread-safe, and
// fails only when the system has no usable randomness (then no token could be made safely).
void InitSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

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

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string RedactUri(std::string_view uri) {
  std::string out(uri);
  // scheme://user:PASSWORD@host...
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = std::min(out.find_first_of("/?#", start), out.size());
    const size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // ...?password=PASSWORD&... (and key=value lists: password=PASSWORD host=...)
  for (size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const size_t value = pos + 9;
    const size_t end = std::min(out.find_first_of("& ", value), out.size());
    out.replace(value, end - value, "***");
    pos = value + 3;
  }
  return out;
}

std::string TokenRegistry::StoreUri(const std::string& data_dir) { return "lmdb:" + data_dir + "/auth"; }

bool TokenRegistry::UsersMayLiveIn(std::string_view store_uri) {
  return store_uri.starts_with("postgresql://") || store_uri.starts_with("postgres://");
}

TokenRegistry::TokenRegistry(std::unique_ptr<UserStore> users)
    : own_users_(std::move(users)), users_(own_users_.get()), where_("(given user store)") {
  InitSodium();
}

TokenRegistry::TokenRegistry(std::shared_ptr<ServerStore> server_store, std::string where)
    : server_store_(std::move(server_store)), users_(server_store_->users()), where_(std::move(where)) {
  InitSodium();
}

Result<std::unique_ptr<TokenRegistry>> TokenRegistry::Open(const std::string& data_dir,
                                                           const std::string& store_uri) {
  std::shared_ptr<ServerStore> store;
  if (UsersMayLiveIn(store_uri)) {
    OUTPOST_ASSIGN_OR_RETURN(store, OpenServerStore(store_uri));
  }
  if (store == nullptr && data_dir.empty()) {
    return Status::FailedPrecondition("the users of " + RedactUri(store_uri) +
                                      " live in DATA_DIR/auth: --data DIR is required");
  }
  return Open(data_dir, std::move(store));
}

Result<std::unique_ptr<TokenRegistry>> TokenRegistry::Open(const std::string& data_dir,
                                                           std::shared_ptr<ServerStore> store) {
  if (store != nullptr && store->users() != nullptr) {
    std::string where = store->uri();
    return std::unique_ptr<TokenRegistry>(new TokenRegistry(std::move(store), std::move(where)));
  }
  if (data_dir.empty()) {
    return Status::FailedPrecondition(
        "the users of this server store live in DATA_DIR/auth: --data DIR is required");
  }
  OUTPOST_ASSIGN_OR_RETURN(auto users, OpenKvUserStore(StoreUri(data_dir), /*sync=*/true));
  auto registry = std::make_unique<TokenRegistry>(std::move(users));
  registry->where_ = StoreUri(data_dir);
  return registry;
}

Result<std::string> TokenRegistry::IssueToken(std::string_view user, std::string_view device, bool first,
                                              bool replace) {
  std::string token = NewToken();
  const TokenRecord record{TokenHash(token), std::string(user), std::string(device)};
  Status s = first     ? users_->AddUser(user, record)
             : replace ? users_->ReplaceDeviceTokens(record)
                       : users_->AddToken(record);
  if (s.code() == Status::Code::kConflict && first) {
    return Status::Conflict("user '" + std::string(user) + "' already exists (add-device adds a token)");
  }
  if (s.IsNotFound() && !first) {
    return Status::NotFound("no user '" + std::string(user) + "' (add-user creates one)");
  }
  if (!s.ok()) return s;
  return token;
}

Result<std::string> TokenRegistry::AddUser(std::string_view user, std::string_view device) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  if (!device.empty()) OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  return IssueToken(user, device, /*first=*/true);
}

Result<std::string> TokenRegistry::AddDevice(std::string_view user, std::string_view device, bool replace) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  if (!device.empty()) OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  if (replace && device.empty()) {
    return Status::InvalidArgument("replacing a device's tokens needs the device id (--device ID)");
  }
  return IssueToken(user, device, /*first=*/false, replace);
}

Result<std::string> TokenRegistry::Authenticate(const HelloInfo& hello) {
  if (!WellFormedToken(hello.token)) return Status::PermissionDenied("malformed or missing token");
  const std::string hash = TokenHash(hello.token);
  TokenRecord binding;
  if (Status s = users_->FindToken(hash, &binding); !s.ok()) {
    if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
    // The store's only PermissionDenied: a token of a revoked device (UserStore).
    if (s.code() == Status::Code::kPermissionDenied) return RevokedStatus(s.message());
    if (s.code() == Status::Code::kCorruption) return s;
    return Status::IOError("user registry: " + s.ToString());
  }
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

Result<TokenBinding> TokenRegistry::LookUpToken(std::string_view token) {
  if (!WellFormedToken(token)) return Status::PermissionDenied("malformed or missing token");
  TokenRecord binding;
  if (Status s = users_->FindToken(TokenHash(token), &binding); !s.ok()) {
    if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
    if (s.code() == Status::Code::kPermissionDenied) return s;  // a revoked device's
    if (s.code() == Status::Code::kCorruption) return s;
    return Status::IOError("user registry: " + s.ToString());
  }
  // A device binds its token with its first Hello (Authenticate); an HTTP request names no device, so it
  // must not be the one to bind it.
  if (binding.device.empty()) {
    return Status::PermissionDenied("token not bound to a device yet: connect with it once");
  }
  return TokenBinding{std::move(binding.user), std::move(binding.device)};
}

Status TokenRegistry::Bind(const std::string& hash, std::string_view user, std::string_view device) {
  if (Status s = ValidateDeviceId(device); !s.ok()) {
    return Status::PermissionDenied("cannot bind the token to this device: " + s.message());
  }
  // Another Hello (this process, another process or another instance on the database) may have bound it
  // since the read: the store decides, atomically.
  Status s = users_->BindToken(hash, device);
  if (s.ok()) return s;
  if (s.IsNotFound()) return Status::PermissionDenied("unknown token");
  if (s.code() == Status::Code::kPermissionDenied && s.message().starts_with("device revoked")) {
    return RevokedStatus(s.message());
  }
  if (s.code() == Status::Code::kPermissionDenied) {
    TokenRecord now;
    if (users_->FindToken(hash, &now).ok() && !now.device.empty()) {
      return Status::PermissionDenied("token of user " + QuoteForMessage(user) + " is bound to device " +
                                      QuoteForMessage(now.device) + ", not " + QuoteForMessage(device));
    }
    return s;
  }
  if (s.code() == Status::Code::kCorruption) return s;
  return Status::IOError("user registry: cannot bind the token: " + s.ToString());
}

Result<bool> TokenRegistry::HasUser(std::string_view user) {
  if (!ValidateUserName(user).ok()) return false;
  bool exists = false;
  if (Status s = users_->HasUser(user, &exists); !s.ok())
    return Status::IOError("user registry: " + s.ToString());
  return exists;
}

Result<std::vector<TokenBinding>> TokenRegistry::Devices(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  std::vector<TokenRecord> tokens;
  Status s = users_->Tokens(user, &tokens);
  if (s.IsNotFound()) return Status::NotFound("no user '" + std::string(user) + "'");
  if (!s.ok()) return s;
  std::vector<TokenBinding> out;
  out.reserve(tokens.size());
  for (auto& t : tokens) out.push_back(TokenBinding{std::move(t.user), std::move(t.device)});
  return out;
}

Result<std::vector<DeviceRecord>> TokenRegistry::DeviceRecords(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  std::vector<DeviceRecord> out;
  OUTPOST_RETURN_IF_ERROR(users_->Devices(user, &out));
  return out;
}

Status TokenRegistry::RevokeDevice(std::string_view user, std::string_view device) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  OUTPOST_RETURN_IF_ERROR(ValidateDeviceId(device));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return users_->RevokeDevice(user, device, now_ms);
}

Status TokenRegistry::RemoveUser(std::string_view user) {
  OUTPOST_RETURN_IF_ERROR(ValidateUserName(user));
  return users_->RemoveUser(user);
}

Status TokenRegistry::TouchDevice(std::string_view user, std::string_view device, std::string_view address) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return users_->TouchDevice(user, device, now_ms, address);
}

Status TokenRegistry::RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation) {
  return users_->RevokedSince(after, out, generation);
}

Result<uint64_t> TokenRegistry::UserCount() {
  uint64_t n = 0;
  OUTPOST_RETURN_IF_ERROR(users_->UserCount(&n));
  return n;
}

void TokenRegistry::InstallHooks(std::shared_ptr<TokenRegistry> registry, ServerOptions* options) {
  options->authenticate = [registry](const HelloInfo& hello) { return registry->Authenticate(hello); };
  options->user_exists = [registry](std::string_view user) { return registry->HasUser(user); };
}

}  // namespace outpost
