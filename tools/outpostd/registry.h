// Copyright 2026 The Outpost Authors.
//
// The user registry: which users exist and which device tokens belong to them. It lives in its own store,
// `lmdb:DATA_DIR/auth`, opened through the engine's storage API, so `outpostd add-user` can change it while
// the server runs (LMDB serializes writers across processes; each Hello reads it in a fresh snapshot).
//
// Layout (two spaces):
//   users   user name                              → decimal count of tokens issued
//   tokens  BLAKE2b-256(token text) (32 bytes)    → binding
//   binding = 0x01 | u8 user length | user | device
//     device: the one device id (1..255 bytes, no control characters) the token logs in as, or empty while
//     the token is unbound: an unbound token binds to the device of the first Hello that uses it (the
//     binding is committed before that Hello is answered), so one token never serves two devices.
//   A registry written before bindings existed holds the bare user name as the value. A user name starts
//   with one of [A-Za-z0-9._-], never 0x01, so the two forms cannot be confused: a bare name reads as an
//   unbound token of that user (rewritten in the new form when it binds); any other value is Corruption.
// Tokens themselves are never stored: a copy of the store does not let anyone log in.
//
// Token text: "opt_" + 43 characters of unpadded base64url (32 random bytes from libsodium).
//
// Thread safety: every method may be called from any thread (the storage API serializes writers).
// sodium_init() must have succeeded before any method is called.
#ifndef OUTPOST_TOOLS_OUTPOSTD_REGISTRY_H_
#define OUTPOST_TOOLS_OUTPOSTD_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/membership.h"
#include "outpost/result.h"
#include "outpost/server.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpostd {

inline constexpr std::string_view kTokenPrefix = "opt_";

// User names and device ids follow the engine's grammar (outpost/membership.h).
using outpost::ValidateDeviceId;
using outpost::ValidateUserName;

// One token of a user, as `outpostd devices` lists it.
struct TokenBinding {
  std::string user;
  std::string device;  // empty: not bound yet (binds on first use)
};

class Registry {
 public:
  // Opens (creating if needed) `lmdb:DATA_DIR/auth`. DATA_DIR must exist.
  static outpost::Result<std::unique_ptr<Registry>> Open(const std::string& data_dir);
  // The store's URI for DATA_DIR.
  static std::string StoreUri(const std::string& data_dir);

  // Creates `user` and returns its first device token, bound to `device` (empty: bound on first use).
  // Conflict when the user exists; InvalidArgument for a bad user name or device id.
  outpost::Result<std::string> AddUser(std::string_view user, std::string_view device = {});
  // A new token for another device of `user`, bound to `device` (empty: bound on first use). NotFound when
  // there is no such user; InvalidArgument for a bad device id. A device may hold several tokens (one
  // replaces a lost one; there is no revocation yet).
  outpost::Result<std::string> AddDevice(std::string_view user, std::string_view device = {});
  // The user a Hello's token belongs to. PermissionDenied for a malformed or unknown token, a token of
  // another user than the one the Hello claims, or a token bound to another device than the Hello's; an
  // unbound token is bound to the Hello's device here, durably, before this returns. IOError when the store
  // cannot be read or the binding cannot be written; Corruption for a token entry of unknown form.
  outpost::Result<std::string> Authenticate(const outpost::HelloInfo& hello);
  // Whether `user` is registered (ServerOptions::user_exists). IOError when the store cannot be read.
  outpost::Result<bool> HasUser(std::string_view user);
  outpost::Result<uint64_t> UserCount();
  // Every token of `user` with its binding, sorted by device (unbound last). NotFound when there is no such
  // user. Scans all tokens: an admin command, not a request path.
  outpost::Result<std::vector<TokenBinding>> Devices(std::string_view user);

 private:
  explicit Registry(std::unique_ptr<outpost::Storage> store) : store_(std::move(store)) {}
  // Issues a token for `user` bound to `device` inside `txn` and bumps its token count to `count`.
  outpost::Result<std::string> IssueToken(outpost::WriteTxn& txn, std::string_view user,
                                          std::string_view device, uint64_t count);
  // Binds the unbound token `hash` of `user` to `device` in a write txn; PermissionDenied when another
  // Hello bound it to another device first.
  outpost::Status Bind(const std::string& hash, std::string_view user, std::string_view device);

  std::unique_ptr<outpost::Storage> store_;
};

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_REGISTRY_H_
