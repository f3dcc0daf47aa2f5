// Copyright 2026 The Outpost Authors.
//
// TokenRegistry (library auth): which users exist and which device tokens belong to them, and how a
// Hello's token is checked: the authentication outpostd uses, for any server that embeds Server.
//
//   auto registry = TokenRegistry::Open("/var/lib/app");            // users in lmdb:/var/lib/app/auth
//   std::string token = (*registry)->AddUser("alice").value();      // give it to alice's device
//   ServerOptions options;
//   TokenRegistry::InstallHooks(std::move(*registry), &options);    // authenticate + user_exists
//
// Where the users live and what a token is: The rules live here (token text, hashing, Authenticate); the
// records live in a UserStore (outpost/server_store.h):
//   - a server store that keeps users (PostgreSQL: users() is not null) keeps them, so every outpostd on
//     that database sees the same users and `outpostd add-user --store postgresql://...` works from any host;
//   - otherwise (key-value server stores) `lmdb:DATA_DIR/auth`, a KvUserStore
//     (engine/server_store/kv/kv_user_store.h documents its layout), so `outpostd add-user` can change it
//     while the server runs (LMDB serializes writers across processes; each Hello reads a fresh snapshot).
// Tokens themselves are never stored, only BLAKE2b-256(token text): a copy of the store does not let anyone
// log in. A token binds to one device: an unbound token binds to the device of the first Hello that uses it
// (the binding is committed before that Hello is answered), so one token never serves two devices.
//
// Token text: "opt_" + 43 characters of unpadded base64url (32 random bytes from libsodium).
//
// Thread safety: every method may be called from any thread (each UserStore call is its own transaction).
// libsodium is initialized by the library itself (once, before the first registry is made).
#ifndef OUTPOST_TOKEN_REGISTRY_H_
#define OUTPOST_TOKEN_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/export.h"
#include "outpost/membership.h"
#include "outpost/result.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "outpost/status.h"

namespace outpost {

inline constexpr std::string_view kTokenPrefix = "opt_";

// One token of a user, as `outpostd devices` lists it.
struct TokenBinding {
  std::string user;
  std::string device;  // empty: not bound yet (binds on first use)
};

class OUTPOST_EXPORT TokenRegistry {
 public:
  // Opens the users of the server store `store_uri`: in that store when it keeps them (see above), else
  // in `lmdb:DATA_DIR/auth` (opened, created if needed; DATA_DIR must exist). An empty `store_uri` is a
  // key-value store. FailedPrecondition when the users are not in the store and `data_dir` is empty.
  static Result<std::unique_ptr<TokenRegistry>> Open(const std::string& data_dir,
                                                     const std::string& store_uri = {});
  // The same over a server store that is already open (serve shares it with the server).
  static Result<std::unique_ptr<TokenRegistry>> Open(const std::string& data_dir,
                                                     std::shared_ptr<ServerStore> store);
  // Over `users` (tests).
  explicit TokenRegistry(std::unique_ptr<UserStore> users);
  // The user store's URI for DATA_DIR when users do not live in the server store.
  static std::string StoreUri(const std::string& data_dir);
  // Whether users of the server store `store_uri` may live in it: a database store (`postgresql://` or
  // `postgres://`). Key-value stores never keep users. Decided from the URI alone, so an admin command
  // never opens a key-value store that a running server holds.
  static bool UsersMayLiveIn(std::string_view store_uri);
  // Where the users live, for messages (a database URI's password removed).
  const std::string& where() const { return where_; }

  // Creates `user` and returns its first device token, bound to `device` (empty: bound on first use).
  // Conflict when the user exists; InvalidArgument for a bad user name or device id.
  Result<std::string> AddUser(std::string_view user, std::string_view device = {});
  // A new token for another device of `user`, bound to `device` (empty: bound on first use). NotFound when
  // there is no such user; InvalidArgument for a bad device id; FailedPrecondition when `device` was
  // revoked. A device may hold several tokens; with `replace` (which needs a device) the new one retires
  // the device's others at once (they become unknown tokens; live connections stay until they reconnect).
  Result<std::string> AddDevice(std::string_view user, std::string_view device = {}, bool replace = false);
  // The user a Hello's token belongs to. RevokedStatus (outpost/server.h: PermissionDenied, IsRevoked) for a
  // token of a revoked device. PermissionDenied for a malformed or unknown token, a token of
  // another user than the one the Hello claims, or a token bound to another device than the Hello's; an
  // unbound token is bound to the Hello's device here, durably, before this returns. IOError when the store
  // cannot be read or the binding cannot be written; Corruption for a token entry of unknown form.
  Result<std::string> Authenticate(const HelloInfo& hello);
  // The (user, device) a bound token belongs to, without a Hello and without binding anything: the media
  // server's bearer tokens (HTTP requests name no device, so an unbound token cannot be bound there).
  // PermissionDenied for a malformed or unknown token, and for an unbound one ("token not bound to a device
  // yet: connect with it once"); IOError when the store cannot be read; Corruption for a token entry of
  // unknown form.
  Result<TokenBinding> LookUpToken(std::string_view token);
  // Whether `user` is registered (ServerOptions::user_exists). IOError when the store cannot be read.
  Result<bool> HasUser(std::string_view user);
  Result<uint64_t> UserCount();
  // Every token of `user` with its binding, sorted by device (unbound last). NotFound when there is no such
  // user. May scan all tokens: an admin command, not a request path.
  Result<std::vector<TokenBinding>> Devices(std::string_view user);
  // Every device record of `user` (UserStore::Devices), sorted by device id. NotFound when there is no such
  // user.
  Result<std::vector<DeviceRecord>> DeviceRecords(std::string_view user);
  // UserStore::RevokeDevice at the system clock's now. NotFound for an unknown user or device.
  Status RevokeDevice(std::string_view user, std::string_view device);
  // UserStore::RemoveUser. NotFound for an unknown user.
  Status RemoveUser(std::string_view user);
  // UserStore::TouchDevice for an accepted Hello (address: HelloInfo::peer).
  Status TouchDevice(std::string_view user, std::string_view device, std::string_view address);
  // UserStore::RevokedSince.
  Status RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation);

  // Makes `registry` the server's authentication: `options->authenticate` checks a Hello's token
  // (Authenticate) and `options->user_exists` answers from the registered users (HasUser), so that member
  // lists may name registered users only. The hooks share ownership of the registry.
  static void InstallHooks(std::shared_ptr<TokenRegistry> registry, ServerOptions* options);

 private:
  TokenRegistry(std::shared_ptr<ServerStore> server_store, std::string where);
  // Issues a token for `user` bound to `device`: its first (a new user) or another one (retiring the
  // device's others with `replace`).
  Result<std::string> IssueToken(std::string_view user, std::string_view device, bool first,
                                 bool replace = false);
  // Binds the unbound token `hash` of `user` to `device`; PermissionDenied when another Hello bound it to
  // another device first.
  Status Bind(const std::string& hash, std::string_view user, std::string_view device);

  std::shared_ptr<ServerStore> server_store_;  // keeps users_ alive when the users live in it
  std::unique_ptr<UserStore> own_users_;       // or the store of users alone
  UserStore* users_ = nullptr;
  std::string where_;
};

// `uri` with any password removed (`scheme://user:PASSWORD@host`, `password=...` parameters), for messages
// and logs.
OUTPOST_EXPORT std::string RedactUri(std::string_view uri);

}  // namespace outpost

#endif  // OUTPOST_TOKEN_REGISTRY_H_
