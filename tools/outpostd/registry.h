// Copyright 2026 The Outpost Authors.
//
// The user registry: which users exist and which device tokens belong to them. It lives in its own store,
// `lmdb:DATA_DIR/auth`, opened through the engine's storage API, so `outpostd add-user` can change it while
// the server runs (LMDB serializes writers across processes; each Hello reads it in a fresh snapshot).
//
// Layout (two spaces):
//   users   user name                              → decimal count of tokens issued
//   tokens  BLAKE2b-256(token text) (32 bytes)    → user name
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

#include "outpost/result.h"
#include "outpost/server.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpostd {

inline constexpr size_t kUserNameBytesMax = 64;
inline constexpr std::string_view kTokenPrefix = "opt_";

// Ok for 1..64 bytes of [A-Za-z0-9._-]; InvalidArgument saying what is wrong otherwise.
outpost::Status ValidateUserName(std::string_view name);

class Registry {
 public:
  // Opens (creating if needed) `lmdb:DATA_DIR/auth`. DATA_DIR must exist.
  static outpost::Result<std::unique_ptr<Registry>> Open(const std::string& data_dir);
  // The store's URI for DATA_DIR.
  static std::string StoreUri(const std::string& data_dir);

  // Creates `user` and returns its first device token. Conflict when the user exists.
  outpost::Result<std::string> AddUser(std::string_view user);
  // A new token for another device of `user`. NotFound when there is no such user.
  outpost::Result<std::string> AddDevice(std::string_view user);
  // The user a Hello's token belongs to. PermissionDenied for a malformed or unknown token, or a token of
  // another user than the one the Hello claims; IOError when the store cannot be read.
  outpost::Result<std::string> Authenticate(const outpost::HelloInfo& hello);
  outpost::Result<uint64_t> UserCount();

 private:
  explicit Registry(std::unique_ptr<outpost::Storage> store) : store_(std::move(store)) {}
  // Issues a token for `user` inside `txn` and bumps its token count to `count`.
  outpost::Result<std::string> IssueToken(outpost::WriteTxn& txn, std::string_view user, uint64_t count);

  std::unique_ptr<outpost::Storage> store_;
};

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_REGISTRY_H_
