// Copyright 2026 The Outpost Authors.
//
// KvUserStore: the UserStore (outpost/server_store.h) over a Storage backend, in the layout of outpostd's
// user registry (`lmdb:DATA_DIR/auth`), so stores written by earlier outpostd builds keep working.
//
// Layout (two spaces, opened as {"users", "tokens"}):
//   users   user name                              → decimal count of tokens issued
//   tokens  token hash (BLAKE2b-256 of the token)  → binding
//   binding = 0x01 | u8 user length | user | device
//     device: the one device id (1..255 bytes, no control characters) the token logs in as, or empty while
//     the token is unbound.
//   A store written before bindings existed holds the bare user name as the value. A user name starts
//   with one of [A-Za-z0-9._-], never 0x01, so the two forms cannot be confused: a bare name reads as an
//   unbound token of that user (rewritten in the new form when it binds); any other value is Corruption.
//
// Every call is its own transaction; the Storage serializes writers (LMDB across processes too, so an admin
// command may add users while a server runs). Thread safety: any method from any thread.
#ifndef OUTPOST_SERVER_STORE_KV_KV_USER_STORE_H_
#define OUTPOST_SERVER_STORE_KV_KV_USER_STORE_H_

#include <memory>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/server_store.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost {

class KvUserStore : public UserStore {
 public:
  // How the Storage under a KvUserStore is opened: spaces {"users", "tokens"} and a small first map (the
  // store stays tiny).
  static StorageOptions Options(bool sync);

  // `storage` must have been opened with Options() (space 0 users, space 1 tokens).
  explicit KvUserStore(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {}

  Status AddUser(std::string_view user, const TokenRecord& token) override;
  Status AddToken(const TokenRecord& token) override;
  Status FindToken(std::string_view hash, TokenRecord* token) override;
  Status BindToken(std::string_view hash, std::string_view device) override;
  Status HasUser(std::string_view user, bool* exists) override;
  Status UserCount(uint64_t* count) override;
  Status Tokens(std::string_view user, std::vector<TokenRecord>* tokens) override;

  Storage& storage() { return *storage_; }

 private:
  std::unique_ptr<Storage> storage_;
};

// Opens (creating if needed) the user store at the Storage URI `storage_uri` (outpostd:
// `lmdb:DATA_DIR/auth`).
Result<std::unique_ptr<UserStore>> OpenKvUserStore(std::string_view storage_uri, bool sync = true);

}  // namespace outpost

#endif  // OUTPOST_SERVER_STORE_KV_KV_USER_STORE_H_
