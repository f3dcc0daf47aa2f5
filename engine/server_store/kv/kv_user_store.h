// Copyright 2026 The Outpost Authors.
//
// KvUserStore: the UserStore (outpost/server_store.h) over a Storage backend, in the layout of outpostd's
// user registry (`lmdb:DATA_DIR/auth`), so stores written by earlier outpostd builds keep working.
//
// Layout, format 2 (six spaces, opened as {"users", "tokens", "meta", "devices", "revoked_tokens",
// "revocations"}):
//   users          user name                              → decimal count of tokens issued
//   tokens         token hash (BLAKE2b-256 of the token)  → binding
//   meta           "format"                               → decimal format number ("2")
//                  "revocation_gen"                       → decimal: the highest revocation generation
//   devices        device key                             → device value
//   revoked_tokens token hash                             → binding (the tokens of a revoked device)
//   revocations    u64 big-endian generation              → device key
//   binding = 0x01 | u8 user length | user | device
//     device: the one device id (1..255 bytes, no control characters) the token logs in as, or empty while
//     the token is unbound.
//   device key = u8 user length | user | device
//   device value = i64 created_ms | i64 last_seen_ms | i64 revoked_ms (each big-endian) | last address
//   A store written before bindings existed holds the bare user name as the value. A user name starts
//   with one of [A-Za-z0-9._-], never 0x01, so the two forms cannot be confused: a bare name reads as an
//   unbound token of that user (rewritten in the new form when it binds); any other value is Corruption.
//
// Formats: a store without meta/"format" is format 1 (users and tokens only). Opening one migrates it to
// format 2 in one write transaction: a device record (created_ms 0: unknown) for each bound token, then
// the format number. Revoking a device moves its tokens from `tokens` to `revoked_tokens`, so an outpostd
// of format 1 (which reads `tokens` only) refuses them as unknown. A store of a newer format is refused
// (FailedPrecondition naming both numbers) before anything is written.
//
// Every call is its own transaction; the Storage serializes writers (LMDB across processes too, so an admin
// command may add users or revoke devices while a server runs). Thread safety: any method from any thread.
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
  // The format this build writes.
  static constexpr uint32_t kFormat = 2;
  // How the Storage under a KvUserStore is opened: the spaces above and a small first map (the store stays
  // tiny).
  static StorageOptions Options(bool sync);

  // `storage` must have been opened with Options() and be of format kFormat (Open makes sure of both).
  explicit KvUserStore(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {}
  // Checks the format of `storage` (opened with Options()) and migrates a format 1 store to kFormat in one
  // write transaction. FailedPrecondition, nothing written, for a newer format; `where` names the store in
  // messages.
  static Status UpgradeFormat(Storage& storage, std::string_view where);

  Status AddUser(std::string_view user, const TokenRecord& token) override;
  Status AddToken(const TokenRecord& token) override;
  Status FindToken(std::string_view hash, TokenRecord* token) override;
  Status BindToken(std::string_view hash, std::string_view device) override;
  Status HasUser(std::string_view user, bool* exists) override;
  Status UserCount(uint64_t* count) override;
  Status Tokens(std::string_view user, std::vector<TokenRecord>* tokens) override;
  Status Devices(std::string_view user, std::vector<DeviceRecord>* devices) override;
  Status TouchDevice(std::string_view user, std::string_view device, int64_t now_ms,
                     std::string_view address) override;
  Status RevokeDevice(std::string_view user, std::string_view device, int64_t now_ms) override;
  Status ReplaceDeviceTokens(const TokenRecord& token) override;
  Status RemoveUser(std::string_view user) override;
  Status RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation) override;

  Storage& storage() { return *storage_; }

 private:
  std::unique_ptr<Storage> storage_;
};

// Opens (creating if needed) the user store at the Storage URI `storage_uri` (outpostd:
// `lmdb:DATA_DIR/auth`), migrating an older format (UpgradeFormat). A store of a newer format is refused
// without being written: its format is read first by a read-only open.
Result<std::unique_ptr<UserStore>> OpenKvUserStore(std::string_view storage_uri, bool sync = true);

}  // namespace outpost

#endif  // OUTPOST_SERVER_STORE_KV_KV_USER_STORE_H_
