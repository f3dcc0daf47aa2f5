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
  static const std::vector<std::string> names = {"s_ops",     "s_dedupe", "s_devctr",     "s_streams", "s_wm",
                                                 "s_members", "s_meta",   "s_blobrefs", "s_incarnations", "s_bases"};
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
constexpr std::string_view kFormatKey = "format";

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

  // A new store gets kServerFormat; format 2 is upgraded in place (one transaction: it gets its first
  // incarnation); format 1 and newer formats are refused, untouched.
  Status CheckFormat() {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage_->BeginWrite());
    std::string value;
    Status st = txn->Get(kMeta, kFormatKey, &value);
    if (st.ok()) {
      if (value == std::to_string(keys::kServerFormat)) return Status::OK();
      if (value == "2") return UpgradeFrom2(txn.get());
      return Status::FailedPrecondition("server store has format " + QuoteForMessage(value) +
                                        "; this outpostd reads formats 2 to " +
                                        std::to_string(keys::kServerFormat) +
                                        " and leaves the store untouched: run the outpostd that wrote it");
    }
    if (!st.IsNotFound()) return st;
    for (SpaceId space : {kOps, kDedupe, kDevCtr}) {
      auto cur = txn->NewCursor(space);
      cur->Seek("");
      if (cur->Valid()) {
        return Status::FailedPrecondition(
            "server store was written by an outpostd before 2026-12 (format 1: device counters not bound to "
            "users); this outpostd needs format " +
            std::to_string(keys::kServerFormat) +
            " and does not convert it. Keep running the outpostd that wrote it, or start this one on a new, "
            "empty store: devices resend the ops they have not sent yet, and keep their history");
      }
      OUTPOST_RETURN_IF_ERROR(cur->status());
    }
    OUTPOST_RETURN_IF_ERROR(txn->Put(kIncarnations, BE64(0), NewIncarnationId()));
    OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, kFormatKey, std::to_string(keys::kServerFormat)));
    return txn->Commit();
  }

  // Format 2 -> 3: the store gets its first incarnation. The format is written last, in the same
  // transaction: a crash leaves format 2 or format 3, never a mix.
  static Status UpgradeFrom2(WriteTxn* txn) {
    OUTPOST_RETURN_IF_ERROR(txn->Put(kIncarnations, BE64(0), NewIncarnationId()));
    OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, kFormatKey, std::to_string(keys::kServerFormat)));
    return txn->Commit();
  }

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

Result<std::shared_ptr<ServerStore>> OpenKvServerStore(std::string_view uri,
                                                       const ServerStoreOptions& options) {
  StorageOptions so;
  so.spaces = SpaceNames();
  so.sync = options.sync;
  OUTPOST_ASSIGN_OR_RETURN(auto storage,
                           options.open_storage ? options.open_storage(uri, so) : OpenStorage(uri, so));
  auto store = std::make_shared<KvServerStore>(std::move(storage));
  Status format = store->CheckFormat();
  if (!format.ok()) return Status::FromCode(format.code(), "server store: " + format.message());
  return std::shared_ptr<ServerStore>(std::move(store));
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
  Status st = txn->Get(kMeta, kFormatKey, &info.format);
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
