// Copyright 2026 The Outpost Authors.
//
// ServerStore: the server's durable state in the domain's terms — streams (their ops and high seq), what the
// server remembers of every op id, device counters, members, watermarks, users and tokens — and the wake-ups
// that tell every server instance on one store that a stream moved. It is the seam between the server core
// (outpost/server.h) and a database: the core decides (dedupe → counter order → authorization → seq, in
// one place, src/server/sequencer.cc), a store only keeps what was decided, atomically per write group.
//
// Implementations (OpenServerStore): the key-value one over a Storage backend (`memory:`, `lmdb:DIR` the
// default, `sqlite:FILE`, `rocksdb:DIR`; one writer: one process), and PostgreSQL (`postgresql://...`; any
// number of outpostd instances on one database). tests/conformance/server_store_conformance_test.cc runs
// against every one.
//
// Transactions. A write transaction sees its own writes; it is committed whole or not at all. Stores with
// several writers (PostgreSQL) lock what a write transaction reads to decide on: in a write transaction,
// High() locks the stream's head and Counter() the device's counter until commit or abort, so two instances
// never give out one seq twice, and seqs of a stream become visible in order. Prepare() takes such locks for
// a whole group up front, in one fixed order (no deadlock between two groups) and in few round trips; a
// store with one writer ignores it. A read transaction sees one committed state (a snapshot) and never
// blocks writers. Any transaction is used by one thread at a time; a write transaction ends on the thread
// that began it.
//
// Errors: a store maps its own errors to Status (connection lost → Unavailable; serialization failure or
// deadlock → Aborted: retry the group; disk full → Full). After an error a write transaction is spoilt:
// later calls and Commit return an error and nothing of it is kept.
#ifndef OUTPOST_SERVER_STORE_H_
#define OUTPOST_SERVER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/export.h"
#include "outpost/ids.h"
#include "outpost/result.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost {

// What the server remembers of one op id, forever (the dedupe record): the device (user, device) and stream
// that sent it under `counter`, and the verdict. `code` is the wire::ResultCode of the verdict: Applied
// (with its seq), Rejected (with error_code and message) or Skipped.
struct OpRecord {
  uint8_t code = 0;
  uint64_t seq = 0;
  uint64_t counter = 0;
  uint16_t error_code = 0;
  std::string stream;
  std::string user;
  std::string device;
  std::string message;
};

// One device's counter on one stream: the last device_counter the stream took from (user, device).
struct CounterKey {
  std::string user;
  std::string device;
  std::string stream;
  friend auto operator<=>(const CounterKey&, const CounterKey&) = default;
};

// A receipt: (user, device) has `kind` (0 delivered, 1 read) up to `seq` in `stream`.
struct StoredWatermark {
  std::string stream;
  std::string user;
  std::string device;
  uint8_t kind = 0;
  uint64_t seq = 0;
};

// What one committed write group changed that other instances must act on: streams that moved (new high
// seq; a follower pulls), receipts to relay, and membership changes (a user who left stops hearing of the
// stream at once; one who joined follows it where a device asked for it).
struct StoreEvents {
  struct Head {
    std::string stream;
    uint64_t high = 0;
  };
  struct Membership {
    std::string stream;
    std::string user;
  };
  std::vector<Head> heads;
  std::vector<StoredWatermark> watermarks;
  std::vector<Membership> joined;
  std::vector<Membership> left;
  // Wake-ups may have been lost (the store's listening connection dropped and came back): a subscriber
  // re-reads the heads of what it follows and re-checks its followers' membership.
  bool lost = false;
  bool empty() const {
    return heads.empty() && watermarks.empty() && joined.empty() && left.empty() && !lost;
  }
};

class OUTPOST_EXPORT ServerReadTxn {
 public:
  virtual ~ServerReadTxn() = default;
  // The stream's high seq: 0 when it has no op. In a write transaction of a multi-writer store it locks the
  // stream's head until the transaction ends.
  virtual Status High(std::string_view stream, uint64_t* high) = 0;
  // The stored ops (wire.Op FlatBuffers as AppendOp took them) of `stream` with seqs after, after+1, ...:
  // at most `limit`, and no more than `bytes_max` bytes together except that the first always comes. Stops
  // at the stream's end. Appends to `ops`.
  virtual Status ReadPage(std::string_view stream, uint64_t after, uint32_t limit, size_t bytes_max,
                          std::vector<std::string>* ops) = 0;
  virtual Status IsMember(std::string_view stream, std::string_view user, bool* member) = 0;
  // IsMember for many streams at once (a Hello that lists thousands): (*member)[i] for streams[i]. Stores
  // with round trips answer it in one.
  virtual Status MemberOf(std::string_view user, const std::vector<std::string>& streams,
                          std::vector<bool>* member) {
    member->assign(streams.size(), false);
    for (size_t i = 0; i < streams.size(); ++i) {
      bool m = false;
      OUTPOST_RETURN_IF_ERROR(IsMember(streams[i], user, &m));
      (*member)[i] = m;
    }
    return Status::OK();
  }
  // Whether the stream has any member (a stream with members exists; its members op created it).
  virtual Status HasMembers(std::string_view stream, bool* any) = 0;
  // The stream's members, sorted (replaces `*users`).
  virtual Status Members(std::string_view stream, std::vector<std::string>* users) = 0;
  // The device's last counter on the stream: 0 when none. In a write transaction of a multi-writer store it
  // locks that counter until the transaction ends.
  virtual Status Counter(const CounterKey& key, uint64_t* last) = 0;
  // Each stream the device (user, device) has a counter on, with that counter, until `fn` returns false: in
  // an order of the store's choosing, the same on every call (so a caller that stops early after N sees
  // the same N each time).
  virtual Status DeviceCounters(std::string_view user, std::string_view device,
                                const std::function<bool(std::string_view stream, uint64_t last)>& fn) = 0;
  // Every stored watermark of the stream, sorted by (user, device, kind) (replaces `*out`).
  virtual Status Watermarks(std::string_view stream, std::vector<StoredWatermark>* out) = 0;
  // Streams in which an applied op references blob `blob_id` (AddBlobRef), at most `limit`, in the store's
  // order (replaces `*streams`). Who may download a blob follows from them (Server::MayReadBlob).
  virtual Status BlobStreams(std::string_view blob_id, uint32_t limit, std::vector<std::string>* streams) = 0;
  // One watermark's seq; 0 when none.
  virtual Status Watermark(std::string_view stream, std::string_view user, std::string_view device,
                           uint8_t kind, uint64_t* seq) = 0;
  // The store's incarnations (docs/lifecycle.md), oldest first (replaces `*ids`): the one it was created
  // with (a store from before incarnations gets one when it is first opened), then one per restore
  // (NewIncarnation). Each id is 16 random bytes. Empty for a store that keeps none (then no device is ever
  // told to rebase).
  virtual Status Incarnations(std::vector<std::string>* ids) {
    ids->clear();
    return Status::OK();
  }
  // The stream's high seq when incarnation `n` began (n >= 1: the n-th restore), i.e. how much of the
  // stream the restored copy held; 0 when the stream had no op then.
  virtual Status RestoreBase(uint64_t n, std::string_view stream, uint64_t* base) {
    (void)n, (void)stream, *base = 0;
    return Status::OK();
  }
};

class OUTPOST_EXPORT ServerWriteTxn : public ServerReadTxn {
 public:
  // Locks (multi-writer stores) and loads what a group is about to decide on: the heads of `streams`, the
  // `counters`, and the records of `op_ids`, in few round trips and in a fixed order. Optional: every other
  // call works without it, and a store with one writer may ignore it.
  virtual Status Prepare(const std::vector<std::string>& streams, const std::vector<CounterKey>& counters,
                         const std::vector<OpId>& op_ids) {
    (void)streams, (void)counters, (void)op_ids;
    return Status::OK();
  }
  // NotFound when the op id is unknown.
  virtual Status GetOpRecord(const OpId& id, OpRecord* rec) = 0;
  // Records (or replaces) what is known of `id`.
  virtual Status PutOpRecord(const OpId& id, const OpRecord& rec) = 0;
  // Stores op `seq` of `stream`; the caller sets the head with SetHigh (seqs have no gaps: seq is always
  // the head + 1 of this transaction).
  virtual Status AppendOp(std::string_view stream, uint64_t seq, std::string_view op) = 0;
  virtual Status SetHigh(std::string_view stream, uint64_t high) = 0;
  virtual Status SetCounter(const CounterKey& key, uint64_t last) = 0;
  virtual Status AddMember(std::string_view stream, std::string_view user) = 0;
  virtual Status RemoveMember(std::string_view stream, std::string_view user) = 0;
  // Records that an op applied in `stream` references blob `blob_id` (idempotent).
  virtual Status AddBlobRef(std::string_view blob_id, std::string_view stream) = 0;
  // The stored seq becomes the greater of the stored one and wm.seq: receipts never move backwards, even
  // when two instances write one at once.
  virtual Status PutWatermark(const StoredWatermark& wm) = 0;
  // Makes every write durable and visible at once, or none. The transaction is finished either way.
  virtual Status Commit() = 0;
};

// One token of a user as stored: only its hash is kept (a copy of the store does not let anyone log in).
struct TokenRecord {
  std::string hash;
  std::string user;
  std::string device;  // empty: not bound yet (binds to the device of its first Hello)
};

// One device of a user as the registry knows it (`outpostd devices`). A record appears when a token is
// bound to the device (issued with a device id, or bound by its first Hello).
struct DeviceRecord {
  std::string device;
  int64_t created_ms = 0;    // when it got its first token (Unix ms); 0: unknown (bound by an older build)
  int64_t last_seen_ms = 0;  // its last accepted Hello; 0: never seen
  std::string last_address;  // the remote address of that Hello; empty: unknown
  int64_t revoked_ms = 0;    // when it was revoked; 0: not revoked
};

// One revocation (RevokedSince): device (user, device) was revoked, or its user removed, under
// `generation` (the store's revocation counter, which only grows).
struct Revocation {
  uint64_t generation = 0;
  std::string user;
  std::string device;
};

// Users and their device tokens (outpostd's registry). Every call is its own transaction.
//
// Devices: RevokeDevice ends a device for good: every token bound to it stops working at once (FindToken
// answers PermissionDenied, a message starting "device revoked"), no token may be bound to it or issued
// for it again, and the revocation is logged under a new generation so that every server on the store
// closes the device's live connections (RevokedSince, polled).
class OUTPOST_EXPORT UserStore {
 public:
  virtual ~UserStore() = default;
  // Creates `user` with its first token. Conflict when the user exists.
  virtual Status AddUser(std::string_view user, const TokenRecord& token) = 0;
  // Another token of an existing user. NotFound when there is no such user.
  virtual Status AddToken(const TokenRecord& token) = 0;
  // NotFound when no token has this hash.
  virtual Status FindToken(std::string_view hash, TokenRecord* token) = 0;
  // Binds the unbound token `hash` to `device`, atomically: ok when it is bound to `device` now (by this
  // call or before); PermissionDenied when it is bound to another device; NotFound when unknown.
  virtual Status BindToken(std::string_view hash, std::string_view device) = 0;
  virtual Status HasUser(std::string_view user, bool* exists) = 0;
  virtual Status UserCount(uint64_t* count) = 0;
  // Every token of `user`, sorted by device (unbound last). NotFound when there is no such user.
  virtual Status Tokens(std::string_view user, std::vector<TokenRecord>* tokens) = 0;

  // ---- Devices (the defaults answer FailedPrecondition: a store without device records) ----
  // Every device record of `user`, sorted by device id (replaces `*devices`). NotFound when there is no
  // such user.
  virtual Status Devices(std::string_view user, std::vector<DeviceRecord>* devices) { return NoDevices(); }
  // Records an accepted Hello of (user, device) from `address` (empty: unknown) at `now_ms`: last seen and
  // last address. Cheap on the Hello path: skips the write when last seen moved less than
  // kDeviceTouchIntervalMs and the address is the same. Creates the record when missing (a token bound
  // by an older build). Ok and nothing written for an unknown user.
  virtual Status TouchDevice(std::string_view user, std::string_view device, int64_t now_ms,
                             std::string_view address) {
    return NoDevices();
  }
  // Revokes (user, device) at `now_ms` (above). Idempotent: a revoked device stays revoked as it was.
  // NotFound for an unknown user or a device with no record.
  virtual Status RevokeDevice(std::string_view user, std::string_view device, int64_t now_ms) {
    return NoDevices();
  }
  // Another token for (token.user, token.device) that retires every other token bound to that device
  // (they are deleted: unknown tokens from now on), atomically. NotFound when there is no such user;
  // FailedPrecondition when the device is revoked; InvalidArgument without a device.
  virtual Status ReplaceDeviceTokens(const TokenRecord& token) { return NoDevices(); }
  // Removes `user`: its tokens (bound or not) and its device records go, and each of its devices that was
  // not revoked is logged as a revocation (servers close its connections). What the user wrote stays:
  // memberships, ops, receipts and counters are stream state, not the registry's (docs/operations.md).
  // The name may be created again later (a new user). NotFound when there is no such user.
  virtual Status RemoveUser(std::string_view user) { return NoDevices(); }
  // The revocations logged with a generation above `after`, oldest first (replaces `*out`), and the
  // store's generation now (`*generation`: the highest logged, 0 when none). A server polls it with the
  // generation of its last answer; RevokedSince(UINT64_MAX, ...) learns the current generation only.
  virtual Status RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation) {
    return NoDevices();
  }

 private:
  static Status NoDevices() { return Status::FailedPrecondition("this user store keeps no device records"); }
};

// TouchDevice writes a device's last seen at most this often (unless its address changed).
inline constexpr int64_t kDeviceTouchIntervalMs = 60'000;

class OUTPOST_EXPORT ServerStore {
 public:
  virtual ~ServerStore() = default;
  virtual Result<std::unique_ptr<ServerReadTxn>> BeginRead() = 0;
  // A store with one writer blocks here while another write transaction is open.
  virtual Result<std::unique_ptr<ServerWriteTxn>> BeginWrite() = 0;

  // Wake-ups between the instances on this store. Subscribe registers `fn` for what other subscribers
  // publish and returns its id; fn runs on a store thread (or inside Publish, for an in-process store) and
  // must only queue and wake. Publish (after a commit) hands `events` to every subscriber but `from`. A
  // wake-up may be late or, when a connection to the database drops, lost: the store then says so
  // (StoreEvents::lost) and the core re-reads what it follows, so a lost wake-up costs latency, never an op
  // and never a removed member's exclusion.
  virtual uint64_t Subscribe(std::function<void(StoreEvents)> fn) = 0;
  virtual void Unsubscribe(uint64_t id) = 0;
  virtual void Publish(const StoreEvents& events, uint64_t from) = 0;

  // Whether several writers may share this store (PostgreSQL: many instances): the core then calls
  // ServerWriteTxn::Prepare for each group.
  virtual bool many_writers() const { return false; }

  // Users and tokens; nullptr when this store does not keep them (the key-value store: outpostd keeps them
  // in a store of their own, DATA_DIR/auth).
  virtual UserStore* users() { return nullptr; }
  // The URI it was opened with (secrets removed).
  virtual const std::string& uri() const = 0;
};

struct ServerStoreOptions {
  bool sync = true;  // key-value stores: StorageOptions::sync. PostgreSQL: always synchronous_commit = on
  // Key-value stores: opens the Storage instead of OpenStorage (tests inject faults).
  std::function<Result<std::unique_ptr<Storage>>(std::string_view uri, const StorageOptions&)> open_storage;
};

// Opens the server store named by `uri`: a Storage URI (the key-value store) or `postgresql://...`. A store
// of another format or schema version is refused (FailedPrecondition) and left untouched; a new, empty one
// is initialised (PostgreSQL: only by MigrateServerStore).
OUTPOST_EXPORT Result<std::shared_ptr<ServerStore>> OpenServerStore(std::string_view uri,
                                                                    const ServerStoreOptions& options = {});

// Records that the store named by `uri` was put back from an earlier copy (outpostd restore): a new
// incarnation, whose base for each stream is the stream's high seq now, in one transaction. Devices that
// saw an earlier incarnation learn from their next Welcome how much of each stream they may keep. Returns
// the new id (16 bytes). The server must not be running on the store.
OUTPOST_EXPORT Result<std::string> NewIncarnation(std::string_view uri,
                                                  const ServerStoreOptions& options = {});

// What ReadServerStoreInfo finds: the store's format (kMeta "format") and its incarnations, oldest first.
struct ServerStoreInfo {
  std::string format;
  std::vector<std::string> incarnations;  // 16-byte ids
};

// Opens the key-value store named by `uri` read-only (nothing is written or created, the store may be in
// use by a server) and reads its format and incarnations (outpostd backup checks a copy with it).
// PostgreSQL: FailedPrecondition.
OUTPOST_EXPORT Result<ServerStoreInfo> ReadServerStoreInfo(std::string_view uri);

// Writes a consistent copy of the key-value store named by `uri` to `destination` (a path that must not
// exist: Storage::Backup) while a server may be serving it: the store is opened read-only. PostgreSQL:
// FailedPrecondition naming pg_dump / pg_basebackup (docs/operations.md).
OUTPOST_EXPORT Status BackupServerStore(std::string_view uri, const std::string& destination);

// Creates the schema of the store named by `uri`, or upgrades it to this build's version, and says what it
// did. PostgreSQL: in one transaction (a failed or interrupted migration leaves the old schema). Key-value
// stores: initialises a new store's format as OpenServerStore does.
OUTPOST_EXPORT Result<std::string> MigrateServerStore(std::string_view uri,
                                                      const ServerStoreOptions& options = {});

}  // namespace outpost

#endif  // OUTPOST_SERVER_STORE_H_
