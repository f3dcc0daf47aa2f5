// Copyright 2026 The Outpost Authors.
//
// DeviceStore: the device's store, typed. Every record of docs/storage-format.md's device layout is read and
// written here and nowhere else: stream metas, op records with their index, outbox entries, failed entries,
// watermarks. It also keeps the gauges that Stats() reads (outbox depth, failed ops, pending ops' ages), put
// into effect only once the transaction that changed them committed (Tally).
//
// Commit: a write transaction's gauge changes and change events take effect in commit order. The store
// admits one writer at a time (storage.h), and Commit holds commit_mu_ from before the storage commit until
// the gauges are updated and the events queued, so the next writer, which can only commit after this one,
// applies its own after. Lock order: the store's writer lock, then commit_mu_, then the Observers' queue.
#ifndef OUTPOST_SRC_CLIENT_DEVICE_STORE_H_
#define OUTPOST_SRC_CLIENT_DEVICE_STORE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "client/observers.h"
#include "codec.h"
#include "keys.h"
#include "outpost/client.h"
#include "outpost/storage.h"
#include "storage/migration.h"
#include "storage/store_format.h"

namespace outpost {

enum ClientSpace : SpaceId {
  kMeta = 0,
  kStreams,
  kView,
  kOpIndex,
  kOutbox,
  kFailed,
  kWatermarks,
  kUploads,
  kLost  // ops a rebase took out of the view until a pull brings them back (client/rebase.h)
};

// One outbox entry: a counter of a stream (the key) and what it carries.
struct OutboxEntry {
  enum class Kind : uint8_t {
    kOp = 0,     // an op to send
    kSkip = 1,   // a counter to consume without an op (the op was given up or discarded)
    kRetry = 2,  // an op the user retried: sent with Op.retry, so the server may judge a rejection afresh
  };
  Kind kind = Kind::kOp;
  OpId op_id;

  bool skip() const { return kind == Kind::kSkip; }
  std::string Encode() const;
  // False for a value of another shape (never written by this code: the entry is treated as unreadable).
  static bool Decode(std::string_view value, OutboxEntry* entry);
};

// An op as the view holds it: its record, where it sits and the local seq it was stored under (0 for ops
// merged from the server).
struct StoredOp {
  std::string view_key;
  OpInfo op;
  uint64_t local_seq = 0;
};

// The change event of `op` as it is now (as it was, for kRemoved): what observers read instead of a Get.
Change OpChange(Change::Kind kind, const OpInfo& op);

// A kMembersKind op that appeared, settled or went away (DeviceStore::Members keeps each stream's list).
struct MembersNote {
  enum class What : uint8_t {
    kSent,     // sent at `order` (its seq) with `names`
    kPending,  // own, pending, stored under local seq `order`, with `names`
    kForget,   // an own members op failed, was discarded or retried: the stream's list is found again
    kReset,    // the stream's sent ops above some seq left the view (a rebase): its list is found again
  };
  What what = What::kForget;
  std::string stream;
  OpId op_id;
  uint64_t order = 0;
  std::vector<std::string> names;
};

// Gauge changes of one write transaction, put into effect only once it committed (DeviceStore::Apply).
struct Tally {
  struct Pending {
    std::string stream;
    int64_t created_at_ms = 0;
  };
  int64_t outbox = 0;                  // entries (ops and skips) added (+) or settled (-)
  int64_t failed = 0;                  // failed ops added (+) or resolved (-)
  int64_t lost = 0;                    // ops set aside by a rebase (+) or pulled back (-)
  std::vector<Pending> pending_added;  // ops that became pending
  std::vector<Pending> pending_gone;   // ops that stopped being pending
  std::vector<MembersNote> members;    // members ops whose state changed

  void Add(Tally&& other);
  // Notes `op` (stored under `local_seq`) for the member lists when it is a kMembersKind op (nothing
  // otherwise): as it is now, or, with `gone`, as an op that went away (discarded).
  void NoteMembers(const OpInfo& op, uint64_t local_seq, bool gone = false);
};

class DeviceStore {
 public:
  static const std::vector<std::string>& SpaceNames();
  // The format (kDeviceStoreFormat, in meta's "format") and the upgrades from older ones, for Client::Open:
  // OpenFormattedStorage, then MigrateStore (docs/storage-format.md, "Compatibility").
  static const StoreFormat& Format();
  static const std::vector<MigrationStep>& Migrations();

  DeviceStore(std::unique_ptr<Storage> storage, Observers* observers)
      : storage_(std::move(storage)), observers_(observers) {}

  Result<std::unique_ptr<ReadTxn>> BeginRead() { return storage_->BeginRead(); }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() { return storage_->BeginWrite(); }
  const std::string& uri() const { return storage_->uri(); }
  // Commits `txn`; once it committed, puts `tally` into effect and queues `changes` for the observers.
  Status Commit(WriteTxn* txn, const Tally& tally, const std::vector<Change>& changes)
      OUTPOST_EXCLUDES(commit_mu_);

  // Stream metas. An absent stream reads as a fresh StreamMeta.
  static Status LoadMeta(ReadTxn* txn, std::string_view stream, keys::StreamMeta* meta);
  static Status PutMeta(WriteTxn* txn, std::string_view stream, const keys::StreamMeta& meta);

  // Op records: the view record and the index entry that finds it by id. NotFound when absent.
  static Status LoadOp(ReadTxn* txn, const OpId& id, StoredOp* out);
  static Status PutOp(WriteTxn* txn, const StoredOp& op);
  // The view record alone, for an op whose index entry is written already.
  static Status PutRecord(WriteTxn* txn, std::string_view view_key, const OpInfo& op, uint64_t local_seq);

  // Attachment uploads of own ops, by op id (codec::UploadRecord). LoadUpload: NotFound when absent.
  static Status LoadUpload(ReadTxn* txn, const OpId& id, codec::UploadRecord* out);
  static Status PutUpload(WriteTxn* txn, const codec::UploadRecord& u);
  static Status DeleteUpload(WriteTxn* txn, const OpId& id);

  // Outbox entries of one stream, by counter. GetEntry: NotFound when absent or unreadable.
  static Status GetEntry(ReadTxn* txn, std::string_view stream, uint64_t counter, OutboxEntry* entry);
  static Status PutEntry(WriteTxn* txn, std::string_view stream, uint64_t counter, const OutboxEntry& entry);
  static Status DeleteEntry(WriteTxn* txn, std::string_view stream, uint64_t counter);

  // Moves an own op to the sent section at `seq` (nothing when it is sent already). A failed op that the
  // server rejected is never settled (its verdict is final): *refused is set instead. `applied_counter`,
  // when known (a pulled page says it), is the counter the server applied the op under: one other than the
  // refused attempt's is a later attempt (a Retry whose record a power loss undid here), which the server's
  // word settles.
  static Status SettleOp(WriteTxn* txn, StoredOp& s, uint64_t seq, keys::StreamMeta* meta,
                         std::vector<Change>* changes, Tally* tally, bool* refused = nullptr,
                         uint64_t applied_counter = 0);
  // Marks an own op failed with `why`. With release_counter (the server never judged it), its counter
  // becomes a skip so that the ops after it are not held up.
  static Status MarkFailed(WriteTxn* txn, StoredOp& s, const Status& why, bool release_counter,
                           keys::StreamMeta* meta, Tally* tally);
  // Takes `n` entries off a meta's outbox count, or `n` failed ops off its failed count. More than it holds
  // means the store's counts drifted from its entries: a bug, checked.
  static void TakeOutbox(keys::StreamMeta* meta, uint64_t n);
  static void TakeFailed(keys::StreamMeta* meta);

  // Gauges. `pending_streams`: the streams that may hold pending ops (their oldest is found when asked).
  void InitGauges(int64_t outbox, int64_t failed, std::set<std::string> pending_streams, int64_t lost = 0);
  int64_t outbox_depth() const { return outbox_depth_.load(); }
  int64_t lost_count() const { return lost_count_.load(); }
  int64_t failed_count() const { return failed_count_.load(); }
  // created_at of the oldest pending op; 0 when none. Reads the store only for streams whose oldest pending
  // op settled or failed since the last call (one seek each).
  Result<int64_t> oldest_pending_ms() OUTPOST_EXCLUDES(pending_mu_);

  // The members of `stream` (Client::Members states the rule): kept per stream once found by one backwards
  // scan of the stream, then updated by the commits that change a members op (Tally::members). NotFound
  // when the view holds no members op that counts.
  Result<std::vector<std::string>> Members(std::string_view stream) OUTPOST_EXCLUDES(members_mu_);

 private:
  // What is known of one stream's members ops: the latest sent one and this device's latest pending one.
  struct StreamMembers {
    bool has_sent = false;
    uint64_t sent_seq = 0;
    std::vector<std::string> sent;
    bool has_pending = false;
    uint64_t pending_local_seq = 0;
    OpId pending_id;
    std::vector<std::string> pending;
  };

  void Apply(const Tally& tally) OUTPOST_REQUIRES(commit_mu_);
  void ApplyMembers(const std::vector<MembersNote>& notes) OUTPOST_EXCLUDES(members_mu_);
  Status ScanMembers(std::string_view stream, StreamMembers* out);

  std::unique_ptr<Storage> storage_;
  Observers* const observers_;
  Mutex commit_mu_;
  std::atomic<int64_t> outbox_depth_{0};
  std::atomic<int64_t> failed_count_{0};
  std::atomic<int64_t> lost_count_{0};
  // The oldest pending op's created_at of each stream that has one, and the streams whose oldest must be
  // found again in the store. Memory and work grow with streams, not ops: pending ops are found in their
  // stream's unsent section in local_seq order, which is created_at order (local seqs and created_at are
  // both taken at commit, in commit order; a wall clock stepped back can only make the answer a little
  // younger than the truth).
  Mutex pending_mu_;
  std::map<std::string, int64_t, std::less<>> oldest_ OUTPOST_GUARDED_BY(pending_mu_);
  std::set<std::string, std::less<>> stale_ OUTPOST_GUARDED_BY(pending_mu_);
  // Streams whose members are known (asked for once). A scan holds members_mu_ from before its snapshot
  // until its result is kept, so a commit's notes apply either to a kept result or to none (the snapshot
  // of a later scan then holds that commit). Lock order: commit_mu_, then members_mu_.
  Mutex members_mu_;
  std::map<std::string, StreamMembers, std::less<>> members_ OUTPOST_GUARDED_BY(members_mu_);
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_DEVICE_STORE_H_
