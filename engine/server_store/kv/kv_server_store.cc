// Copyright 2026 The Outpost Authors.
#include "server_store/kv/kv_server_store.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "keys.h"
#include "outpost/env.h"
#include "outpost/membership.h"
#include "storage/migration.h"
#include "storage/store_format.h"

namespace outpost {
namespace {

enum Space : SpaceId {
  kOps = 0,
  kDedupe,
  kDevCtr,
  kStreams,
  kWm,
  kMembers,
  kMeta,
  kBlobRefs,
  kIncarnations,
  kBases
};
const std::vector<std::string>& SpaceNames() {
  static const std::vector<std::string> names = {"s_ops",          "s_dedupe",  "s_devctr", "s_streams",
                                                 "s_wm",           "s_members", "s_meta",   "s_blobrefs",
                                                 "s_incarnations", "s_bases"};
  return names;
}

// s_incarnations: BE64(n) -> 16-byte id. s_bases: BE64(n) + stream -> BE64(the stream's high seq when
// incarnation n began).
std::string NewIncarnationId() {
  std::string id(16, '\0');
  SystemEnv()->RandomBytes(id.data(), id.size());
  return id;
}

// s_blobrefs: short(blob id) + stream -> "".
std::string BlobRefPrefix(std::string_view blob_id) {
  std::string k;
  keys::PutShort(&k, blob_id);
  return k;
}

std::string MemberKey(std::string_view stream, std::string_view user) {
  std::string k = keys::StreamPrefix(stream);
  keys::PutShort(&k, user);
  return k;
}

std::string CounterKeyBytes(const CounterKey& key) {
  return keys::DeviceCounterKey(key.user, key.device, key.stream);
}

std::string BE64(uint64_t v) {
  std::string out;
  keys::PutBE64(&out, v);
  return out;
}

// Reads a BE64 value; 0 when absent.
Status ReadU64(ReadTxn& txn, SpaceId space, std::string_view key, uint64_t* v) {
  std::string value;
  Status st = txn.Get(space, key, &value);
  if (st.IsNotFound()) {
    *v = 0;
    return Status::OK();
  }
  if (!st.ok()) return st;
  if (value.size() < 8) return Status::Corruption("server store: short counter record");
  *v = keys::GetBE64(value);
  return Status::OK();
}

// The reads of a ServerReadTxn over any ReadTxn (a WriteTxn sees its own writes), for Base = ServerReadTxn
// or ServerWriteTxn.
template <typename Base>
class KvReads : public Base {
 public:
  explicit KvReads(ReadTxn* txn) : read_(txn) {}

  Status High(std::string_view stream, uint64_t* high) override {
    return ReadU64(*read_, kStreams, stream, high);
  }

  Status ReadPage(std::string_view stream, uint64_t after, uint32_t limit, size_t bytes_max,
                  std::vector<std::string>* ops) override {
    const std::string prefix = keys::StreamPrefix(stream);
    auto cur = read_->NewCursor(kOps);
    uint64_t next = after + 1;
    size_t bytes = 0, taken = 0;
    for (cur->Seek(keys::ServerOpKey(stream, next)); cur->Valid() && taken < limit; cur->Next()) {
      std::string_view key = cur->key();
      if (!key.starts_with(prefix) || key.size() != prefix.size() + 8) break;
      if (keys::GetBE64(key.substr(prefix.size())) != next) break;  // seqs have no gaps; stop if they did
      if (taken > 0 && bytes + cur->value().size() > bytes_max) break;
      bytes += cur->value().size();
      ops->emplace_back(cur->value());
      ++taken;
      ++next;
    }
    return cur->status();
  }

  Status BlobStreams(std::string_view blob_id, uint32_t limit, std::vector<std::string>* streams) override {
    streams->clear();
    const std::string prefix = BlobRefPrefix(blob_id);
    auto cur = read_->NewCursor(kBlobRefs);
    for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix) && streams->size() < limit;
         cur->Next()) {
      streams->emplace_back(cur->key().substr(prefix.size()));
    }
    return cur->status();
  }

  Status IsMember(std::string_view stream, std::string_view user, bool* member) override {
    std::string unused;
    Status st = read_->Get(kMembers, MemberKey(stream, user), &unused);
    *member = st.ok();
    return st.IsNotFound() ? Status::OK() : st;
  }

  Status HasMembers(std::string_view stream, bool* any) override {
    const std::string prefix = keys::StreamPrefix(stream);
    auto cur = read_->NewCursor(kMembers);
    cur->Seek(prefix);
    *any = cur->Valid() && cur->key().starts_with(prefix);
    return cur->status();
  }

  Status Members(std::string_view stream, std::vector<std::string>* users) override {
    users->clear();
    Status st = ScanMembers(stream, users);
    std::sort(users->begin(), users->end());  // keys order names by length first
    return st;
  }

  Status ScanMembers(std::string_view stream, std::vector<std::string>* users) {
    const std::string prefix = keys::StreamPrefix(stream);
    auto cur = read_->NewCursor(kMembers);
    for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
      keys::Reader rd(cur->key().substr(prefix.size()));
      std::string_view user;
      if (rd.Short(&user)) users->emplace_back(user);
    }
    return cur->status();
  }

  Status Counter(const CounterKey& key, uint64_t* last) override {
    return ReadU64(*read_, kDevCtr, CounterKeyBytes(key), last);
  }

  Status DeviceCounters(std::string_view user, std::string_view device,
                        const std::function<bool(std::string_view, uint64_t)>& fn) override {
    const std::string prefix = keys::DevicePrefix(user, device);
    auto cur = read_->NewCursor(kDevCtr);
    for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
      keys::Reader rd(cur->key().substr(prefix.size()));
      std::string_view stream;
      if (!rd.Short(&stream) || cur->value().size() < 8) continue;
      if (!fn(stream, keys::GetBE64(cur->value()))) break;
    }
    return cur->status();
  }

  Status Watermarks(std::string_view stream, std::vector<StoredWatermark>* out) override {
    out->clear();
    Status st = ScanWatermarks(stream, out);
    std::sort(out->begin(), out->end(), [](const StoredWatermark& a, const StoredWatermark& b) {
      return std::tie(a.user, a.device, a.kind) < std::tie(b.user, b.device, b.kind);
    });
    return st;
  }

  Status ScanWatermarks(std::string_view stream, std::vector<StoredWatermark>* out) {
    const std::string prefix = keys::StreamPrefix(stream);
    auto cur = read_->NewCursor(kWm);
    for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
      keys::Reader rd(cur->key().substr(prefix.size()));
      std::string_view user, device;
      uint8_t kind;
      if (!rd.Short(&user) || !rd.Short(&device) || !rd.Byte(&kind) || cur->value().size() < 8 || kind > 1)
        continue;
      out->push_back(
          {std::string(stream), std::string(user), std::string(device), kind, keys::GetBE64(cur->value())});
    }
    return cur->status();
  }

  Status Watermark(std::string_view stream, std::string_view user, std::string_view device, uint8_t kind,
                   uint64_t* seq) override {
    return ReadU64(*read_, kWm, keys::WatermarkKey(stream, user, device, kind), seq);
  }

  Status Incarnations(std::vector<std::string>* ids) override {
    ids->clear();
    auto cur = read_->NewCursor(kIncarnations);
    for (cur->SeekToFirst(); cur->Valid(); cur->Next()) ids->emplace_back(cur->value());
    OUTPOST_RETURN_IF_ERROR(cur->status());
    if (ids->empty()) return Status::Corruption("server store: no incarnation recorded");
    return Status::OK();
  }

  Status RestoreBase(uint64_t n, std::string_view stream, uint64_t* base) override {
    return ReadU64(*read_, kBases, BE64(n) + std::string(stream), base);
  }

 private:
  ReadTxn* read_;
};

class KvReadTxn final : public KvReads<ServerReadTxn> {
 public:
  explicit KvReadTxn(std::unique_ptr<ReadTxn> txn) : KvReads(txn.get()), txn_(std::move(txn)) {}

 private:
  std::unique_ptr<ReadTxn> txn_;
};

class KvWriteTxn final : public KvReads<ServerWriteTxn> {
 public:
  explicit KvWriteTxn(std::unique_ptr<WriteTxn> txn) : KvReads(txn.get()), txn_(std::move(txn)) {}

  Status GetOpRecord(const OpId& id, OpRecord* rec) override {
    std::string value;
    OUTPOST_RETURN_IF_ERROR(txn_->Get(kDedupe, id.AsBytes(), &value));
    return keys::DecodeDedupe(value, rec);
  }
  Status PutOpRecord(const OpId& id, const OpRecord& rec) override {
    return txn_->Put(kDedupe, id.AsBytes(), keys::EncodeDedupe(rec));
  }
  Status AppendOp(std::string_view stream, uint64_t seq, std::string_view op) override {
    return txn_->Put(kOps, keys::ServerOpKey(stream, seq), op);
  }
  Status SetHigh(std::string_view stream, uint64_t high) override {
    return txn_->Put(kStreams, stream, BE64(high));
  }
  Status SetCounter(const CounterKey& key, uint64_t last) override {
    return txn_->Put(kDevCtr, CounterKeyBytes(key), BE64(last));
  }
  Status AddMember(std::string_view stream, std::string_view user) override {
    return txn_->Put(kMembers, MemberKey(stream, user), "");
  }
  Status RemoveMember(std::string_view stream, std::string_view user) override {
    return txn_->Delete(kMembers, MemberKey(stream, user));
  }
  Status AddBlobRef(std::string_view blob_id, std::string_view stream) override {
    return txn_->Put(kBlobRefs, BlobRefPrefix(blob_id) + std::string(stream), "");
  }
  Status PutWatermark(const StoredWatermark& wm) override {
    const std::string key = keys::WatermarkKey(wm.stream, wm.user, wm.device, wm.kind);
    uint64_t stored = 0;
    OUTPOST_RETURN_IF_ERROR(ReadU64(*txn_, kWm, key, &stored));
    return wm.seq > stored ? txn_->Put(kWm, key, BE64(wm.seq)) : Status::OK();
  }
  Status Commit() override { return txn_->Commit(); }

 private:
  std::unique_ptr<WriteTxn> txn_;
};

class KvServerStore final : public ServerStore {
 public:
  explicit KvServerStore(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {}

  Result<std::unique_ptr<ServerReadTxn>> BeginRead() override {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginRead());
    return std::unique_ptr<ServerReadTxn>(new KvReadTxn(std::move(txn)));
  }
  Result<std::unique_ptr<ServerWriteTxn>> BeginWrite() override {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
    return std::unique_ptr<ServerWriteTxn>(new KvWriteTxn(std::move(txn)));
  }

  uint64_t Subscribe(std::function<void(StoreEvents)> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    subscribers_.emplace(++last_id_, std::make_shared<std::function<void(StoreEvents)>>(std::move(fn)));
    return last_id_;
  }
  void Unsubscribe(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    subscribers_.erase(id);
  }
  void Publish(const StoreEvents& events, uint64_t from) override {
    std::vector<std::shared_ptr<std::function<void(StoreEvents)>>> to;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, fn] : subscribers_) {
        if (id != from) to.push_back(fn);
      }
    }
    for (const auto& fn : to) (*fn)(events);
  }

  const std::string& uri() const override { return storage_->uri(); }

  // A new incarnation whose bases are every stream's high seq now (NewIncarnation).
  Result<std::string> AddIncarnation() {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
    uint64_t n = 0;
    {
      auto cur = txn->NewCursor(kIncarnations);
      cur->SeekToLast();
      OUTPOST_RETURN_IF_ERROR(cur->status());
      if (!cur->Valid() || cur->key().size() != 8) return Status::Corruption("server store: no incarnation");
      n = keys::GetBE64(cur->key()) + 1;
    }
    {
      auto cur = txn->NewCursor(kStreams);
      for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
        OUTPOST_RETURN_IF_ERROR(txn->Put(kBases, BE64(n) + std::string(cur->key()), cur->value()));
      }
      OUTPOST_RETURN_IF_ERROR(cur->status());
    }
    std::string id = NewIncarnationId();
    OUTPOST_RETURN_IF_ERROR(txn->Put(kIncarnations, BE64(n), id));
    OUTPOST_RETURN_IF_ERROR(txn->Commit());
    return id;
  }

 private:
  std::unique_ptr<Storage> storage_;
  std::mutex mu_;
  uint64_t last_id_ = 0;
  std::map<uint64_t, std::shared_ptr<std::function<void(StoreEvents)>>> subscribers_;
};

}  // namespace

const StoreFormat& KvServerStoreFormat() {
  static const StoreFormat format = {
      .what = "server store",
      .meta_space = "s_meta",
      .current = keys::kServerFormat,
      .oldest = 2,
      // No s_meta format: a new, empty store (0), or one written by an outpostd before 2026-12 (format 1),
      // whose ops, dedupe records or counters are there.
      .unstamped = [](ReadTxn& txn, SpaceId) -> Result<uint32_t> {
        for (SpaceId space : {kOps, kDedupe, kDevCtr}) {
          auto cur = txn.NewCursor(space);
          cur->SeekToFirst();
          if (cur->Valid()) return 1u;
          OUTPOST_RETURN_IF_ERROR(cur->status());
        }
        return 0u;
      },
      // A new store begins its first incarnation.
      .create = [](WriteTxn& txn) { return txn.Put(kIncarnations, BE64(0), NewIncarnationId()); },
      .newer_hint = "run the outpostd that wrote it, or a newer one",
      .older_hint =
          "format 1 (before 2026-12) did not bind device counters to users, and this outpostd does not "
          "convert it. Keep running the outpostd that wrote it, or start this one on a new, empty store: "
          "devices resend the ops they have not sent yet, and keep their history",
  };
  return format;
}

// The upgrades of key-value server stores, from format 2 up (storage/migration.h): one step per format.
const std::vector<MigrationStep>& KvServerStoreMigrations() {
  static const std::vector<MigrationStep> steps = {
      // Format 2 -> 3 (issue 19): the store gets its first incarnation (s_incarnations 0), whose bases are
      // empty: every stream's history counts from seq 1.
      {.from = 2,
       .what = "first incarnation",
       .run = [](WriteTxn& txn, MigrationProgress& progress) -> Status {
         OUTPOST_RETURN_IF_ERROR(txn.Put(kIncarnations, BE64(0), NewIncarnationId()));
         progress.Record();
         return Status::OK();
       }},
  };
  return steps;
}

Result<std::shared_ptr<ServerStore>> OpenKvServerStore(std::string_view uri,
                                                       const ServerStoreOptions& options) {
  StorageOptions so;
  so.spaces = SpaceNames();
  so.sync = options.sync;
  // The format first, through a read-only look, so that a newer store is refused with not one byte written;
  // then an older one is upgraded in one transaction.
  OUTPOST_ASSIGN_OR_RETURN(auto storage,
                           OpenFormattedStorage(uri, so, KvServerStoreFormat(), options.open_storage));
  OUTPOST_RETURN_IF_ERROR(
      MigrateStore(*storage, kMeta, KvServerStoreFormat(), uri, KvServerStoreMigrations()));
  return std::shared_ptr<ServerStore>(std::make_shared<KvServerStore>(std::move(storage)));
}

namespace {

Result<std::unique_ptr<Storage>> OpenReadOnly(std::string_view uri) {
  StorageOptions so;
  so.spaces = SpaceNames();
  so.read_only = true;
  Result<std::unique_ptr<Storage>> storage = OpenStorage(uri, so);
  if (!storage.ok() && storage.status().IsNotFound()) {
    // A missing space: a store of format 1 or 2, or not a server store at all.
    return Status::FailedPrecondition("'" + std::string(uri) + "' is not a server store of format " +
                                      std::to_string(keys::kServerFormat) + ": " +
                                      storage.status().message());
  }
  return storage;
}

}  // namespace

Result<ServerStoreInfo> ReadKvServerStoreInfo(std::string_view uri) {
  OUTPOST_ASSIGN_OR_RETURN(auto storage, OpenReadOnly(uri));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage->BeginRead());
  ServerStoreInfo info;
  Status st = txn->Get(kMeta, "format", &info.format);
  if (st.IsNotFound()) return Status::FailedPrecondition("'" + std::string(uri) + "' records no format");
  OUTPOST_RETURN_IF_ERROR(st);
  auto cur = txn->NewCursor(kIncarnations);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) info.incarnations.emplace_back(cur->value());
  OUTPOST_RETURN_IF_ERROR(cur->status());
  return info;
}

Status BackupKvServerStore(std::string_view uri, const std::string& destination) {
  OUTPOST_ASSIGN_OR_RETURN(auto storage, OpenReadOnly(uri));
  if (!uri.starts_with("rocksdb:")) return storage->Backup(destination);
  // RocksDB checkpoints only from a writable handle (storage.h): that takes the store's lock, so it works
  // only while no server has the store open.
  storage.reset();
  StorageOptions so;
  so.spaces = SpaceNames();
  Result<std::unique_ptr<Storage>> writable = OpenStorage(uri, so);
  if (!writable.ok()) {
    if (writable.status().message().find("locked") == std::string::npos) return writable.status();
    return Status::FailedPrecondition(
        "rocksdb store '" + std::string(uri) +
        "' is open in another process (outpostd serving it): RocksDB cannot take a consistent checkpoint "
        "from a second process (a read-only open beside a live writer may see a torn state); stop outpostd, "
        "run the backup, start it again (docs/operations.md)");
  }
  return (*writable)->Backup(destination);
}

Result<std::string> NewKvIncarnation(std::string_view uri, const ServerStoreOptions& options) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, OpenKvServerStore(uri, options));
  return static_cast<KvServerStore*>(store.get())->AddIncarnation();
}

}  // namespace outpost
