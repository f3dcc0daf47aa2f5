// Copyright 2026 The Outpost Authors.
//
// Design: each space is an ordered map from key to the versions of that key, oldest first. Commit number N
// writes versions tagged N; a reader pinned at snapshot S sees, per key, the newest version tagged <= S.
// The writer works at committed+1, which no reader can see, so publishing a commit is a single store of
// the new number; aborting pops the writer's versions. Each space's map sits behind a readers-writer lock
// (writer first) that is held for one operation, never for a txn, so readers and the writer only ever wait
// for one map operation.
//
// Garbage: at commit, the rows the txn wrote drop the versions that no open reader can see. Rows whose
// history an open reader still needs go on a pending list that later commits revisit once the oldest
// reader has moved on. Map nodes are erased only by the writer at commit or abort; cursors keep an
// iterator plus the space's erase count and re-seek by key when a node may have gone.
#include "storage/memory/memory_storage.h"

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

#include "storage/storage_common.h"

namespace outpost {
namespace {

using storage_internal::CheckKey;
using storage_internal::CheckSpace;
using storage_internal::CheckValue;
using storage_internal::CheckWriterThread;
using storage_internal::ErrorCursor;
using storage_internal::TxnFinishedError;
using storage_internal::WriterFirstMutex;

// Readers wait for the pruning writer at most this many rows at a time.
constexpr size_t kPruneBatchRows = 1024;

struct Version {
  uint64_t commit;
  std::optional<std::string> value;  // nullopt: deleted by `commit`
};

struct Row {
  std::vector<Version> versions;  // ascending by commit
  bool pending = false;           // listed in Space::pending
};

using RowMap = std::map<std::string, Row, std::less<>>;

// The value a reader at `snapshot` sees, or null when the key is absent for it.
const std::string* ValueAt(const Row& row, uint64_t snapshot) {
  for (size_t i = row.versions.size(); i-- > 0;) {
    const Version& version = row.versions[i];
    if (version.commit <= snapshot) return version.value ? &*version.value : nullptr;
  }
  return nullptr;
}

// Drops the versions that no reader at a snapshot >= `oldest` can tell apart from absence or from a newer
// version. Leaves `versions` empty when the key is absent for every such reader.
void Prune(Row& row, uint64_t oldest) {
  std::vector<Version>& versions = row.versions;
  size_t first_kept = 0;  // the version the oldest reader sees; every older one is unreachable
  for (size_t i = versions.size(); i-- > 0;) {
    if (versions[i].commit <= oldest) {
      first_kept = i;
      break;
    }
  }
  // A tombstone with nothing older reads the same as no version at all.
  while (first_kept < versions.size() && !versions[first_kept].value) ++first_kept;
  versions.erase(versions.begin(), versions.begin() + static_cast<std::ptrdiff_t>(first_kept));
}

struct Space {
  WriterFirstMutex mu;  // held for one operation at a time
  RowMap rows;
  uint64_t erase_count = 0;  // bumped on every node erase, so cursors know when iterators may dangle
  // Rows with history that an open reader may still need. Touched by the writer only, under `mu`.
  std::vector<RowMap::iterator> pending;

  // Requires `mu` held exclusively.
  void Erase(RowMap::iterator it) {
    rows.erase(it);
    ++erase_count;
  }
};

// The state behind one store; shared by its handles and their txns, and by the registry for named stores.
class MemoryStore {
 public:
  // Spaces are found by name so that reopening with a longer list keeps the old ones, as LMDB does.
  // Null when absent and `add` is false (a read-only open creates nothing).
  Space* FindOrAddSpace(const std::string& name, bool add = true) {
    std::lock_guard<std::mutex> lock(spaces_mu_);
    if (!add && spaces_.find(name) == spaces_.end()) return nullptr;
    std::unique_ptr<Space>& space = spaces_[name];
    if (space == nullptr) space = std::make_unique<Space>();
    return space.get();
  }

  uint64_t PinSnapshot() {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    readers_.insert(committed_);
    return committed_;
  }
  void UnpinSnapshot(uint64_t snapshot) {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    readers_.erase(readers_.find(snapshot));
  }

  // Blocks while another write txn is open; returns the commit number the new txn writes at.
  uint64_t BeginWriter() {
    std::unique_lock<std::mutex> lock(writer_mu_);
    writer_cv_.wait(lock, [this] { return !writer_active_; });
    writer_active_ = true;
    lock.unlock();
    std::lock_guard<std::mutex> snapshots_lock(snapshots_mu_);
    return committed_ + 1;
  }
  void EndWriter() {
    {
      std::lock_guard<std::mutex> lock(writer_mu_);
      writer_active_ = false;
    }
    writer_cv_.notify_one();
  }

  // Makes `commit` visible to new readers; returns the oldest snapshot any reader still holds.
  uint64_t Publish(uint64_t commit) {
    std::lock_guard<std::mutex> lock(snapshots_mu_);
    committed_ = commit;
    return readers_.empty() ? commit : *readers_.begin();
  }

  // Revisits the pending rows of every space, once the oldest reader has moved since the last visit, so a
  // long-lived reader costs no work per commit. Writer only.
  void PrunePending(uint64_t oldest) {
    if (oldest <= pending_pass_oldest_) return;
    pending_pass_oldest_ = oldest;
    std::vector<Space*> spaces;
    {
      std::lock_guard<std::mutex> lock(spaces_mu_);
      for (auto& [name, space] : spaces_) spaces.push_back(space.get());
    }
    for (Space* space : spaces) PrunePendingRows(*space, oldest);
  }

 private:
  static void PrunePendingRows(Space& space, uint64_t oldest) {
    std::unique_lock<WriterFirstMutex> lock(space.mu);
    std::vector<RowMap::iterator>& pending = space.pending;
    size_t kept = 0;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (i % kPruneBatchRows == kPruneBatchRows - 1) {
        lock.unlock();
        lock.lock();
      }
      auto it = pending[i];
      Prune(it->second, oldest);
      if (it->second.versions.empty()) {
        space.Erase(it);
      } else if (it->second.versions.size() == 1) {
        it->second.pending = false;
      } else {
        pending[kept++] = it;
      }
    }
    pending.resize(kept);
  }

  std::mutex spaces_mu_;
  std::map<std::string, std::unique_ptr<Space>> spaces_;

  std::mutex snapshots_mu_;
  uint64_t committed_ = 0;
  std::multiset<uint64_t> readers_;  // the snapshot of every open read txn

  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  bool writer_active_ = false;

  uint64_t pending_pass_oldest_ = 0;  // writer only
};

// What a handle and its txns share: the store and this handle's SpaceId -> Space mapping.
struct Handle {
  std::shared_ptr<MemoryStore> store;
  std::vector<Space*> spaces;
};

Status GetAt(const Handle& handle, uint64_t snapshot, SpaceId space_id, std::string_view key,
             std::string* value) {
  OUTPOST_RETURN_IF_ERROR(CheckSpace(space_id, handle.spaces.size()));
  OUTPOST_RETURN_IF_ERROR(CheckKey(key));
  Space& space = *handle.spaces[space_id];
  std::shared_lock<WriterFirstMutex> lock(space.mu);
  auto it = space.rows.find(key);
  const std::string* found = it == space.rows.end() ? nullptr : ValueAt(it->second, snapshot);
  if (found == nullptr) return Status::NotFound("no such key");
  value->assign(*found);
  return Status::OK();
}

// Sees the versions visible at `snapshot`. Copies the current entry so that it stays valid while the writer
// moves versions around. `finished` (write txns only) turns the cursor off once its txn has ended.
class MemoryCursor final : public Cursor {
 public:
  MemoryCursor(Space* space, uint64_t snapshot, const bool* finished)
      : space_(space), snapshot_(snapshot), finished_(finished) {}

  void SeekToFirst() override {
    if (!Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    ForwardFrom(space_->rows.begin());
  }
  void SeekToLast() override {
    if (!Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    BackwardBefore(space_->rows.end());
  }
  void Seek(std::string_view key) override {
    if (!Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    ForwardFrom(space_->rows.lower_bound(key));
  }
  void SeekForPrev(std::string_view key) override {
    if (!Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    BackwardBefore(space_->rows.upper_bound(key));
  }
  void Next() override {
    if (!valid_ || !Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    ForwardFrom(Fresh() ? std::next(it_) : space_->rows.upper_bound(key_));
  }
  void Prev() override {
    if (!valid_ || !Usable()) return;
    std::shared_lock<WriterFirstMutex> lock(space_->mu);
    BackwardBefore(Fresh() ? it_ : space_->rows.lower_bound(key_));
  }
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

 private:
  bool Usable() {
    if (finished_ != nullptr && *finished_) {
      valid_ = false;
      status_ = TxnFinishedError();
    }
    return status_.ok();
  }
  // Whether it_ still names a live node. Requires space_->mu.
  bool Fresh() const { return erase_count_ == space_->erase_count; }

  // Lands on the first visible entry at or after `it`. Requires space_->mu.
  void ForwardFrom(RowMap::iterator it) {
    for (; it != space_->rows.end(); ++it) {
      if (const std::string* value = ValueAt(it->second, snapshot_)) return Land(it, *value);
    }
    valid_ = false;
  }
  // Lands on the last visible entry before `it`. Requires space_->mu.
  void BackwardBefore(RowMap::iterator it) {
    while (it != space_->rows.begin()) {
      --it;
      if (const std::string* value = ValueAt(it->second, snapshot_)) return Land(it, *value);
    }
    valid_ = false;
  }
  void Land(RowMap::iterator it, const std::string& value) {
    it_ = it;
    erase_count_ = space_->erase_count;
    key_.assign(it->first);
    value_.assign(value);
    valid_ = true;
  }

  Space* space_;
  const uint64_t snapshot_;
  const bool* finished_;
  RowMap::iterator it_;
  uint64_t erase_count_ = 0;
  bool valid_ = false;
  std::string key_;
  std::string value_;
  Status status_;
};

std::unique_ptr<Cursor> NewCursorAt(const Handle& handle, uint64_t snapshot, SpaceId space_id,
                                    const bool* finished) {
  Status status = CheckSpace(space_id, handle.spaces.size());
  if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
  return std::make_unique<MemoryCursor>(handle.spaces[space_id], snapshot, finished);
}

class MemoryReadTxn final : public ReadTxn {
 public:
  explicit MemoryReadTxn(std::shared_ptr<const Handle> handle)
      : handle_(std::move(handle)), snapshot_(handle_->store->PinSnapshot()) {}
  ~MemoryReadTxn() override { handle_->store->UnpinSnapshot(snapshot_); }
  MemoryReadTxn(const MemoryReadTxn&) = delete;
  MemoryReadTxn& operator=(const MemoryReadTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    return GetAt(*handle_, snapshot_, space, key, value);
  }
  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    return NewCursorAt(*handle_, snapshot_, space, nullptr);
  }

 private:
  const std::shared_ptr<const Handle> handle_;
  const uint64_t snapshot_;
};

class MemoryWriteTxn final : public WriteTxn {
 public:
  explicit MemoryWriteTxn(std::shared_ptr<const Handle> handle)
      : handle_(std::move(handle)),
        commit_(handle_->store->BeginWriter()),
        written_(handle_->spaces.size()),
        owner_(std::this_thread::get_id()) {}
  ~MemoryWriteTxn() override {
    if (!finished_) Abort();
  }
  MemoryWriteTxn(const MemoryWriteTxn&) = delete;
  MemoryWriteTxn& operator=(const MemoryWriteTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    if (finished_) return TxnFinishedError();
    return GetAt(*handle_, commit_, space, key, value);
  }
  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    if (finished_) return std::make_unique<ErrorCursor>(TxnFinishedError());
    return NewCursorAt(*handle_, commit_, space, &finished_);
  }

  Status Put(SpaceId space_id, std::string_view key, std::string_view value) override {
    return Write(space_id, key, value, /*only_if_absent=*/false);
  }

  Status Insert(SpaceId space_id, std::string_view key, std::string_view value) override {
    return Write(space_id, key, value, /*only_if_absent=*/true);
  }

  Status Delete(SpaceId space_id, std::string_view key) override {
    if (finished_) return TxnFinishedError();
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space_id, handle_->spaces.size()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    Space& space = *handle_->spaces[space_id];
    std::unique_lock<WriterFirstMutex> lock(space.mu);
    auto it = space.rows.find(key);
    if (it == space.rows.end()) return Status::OK();
    std::vector<Version>& versions = it->second.versions;
    if (!versions.empty() && versions.back().commit == commit_) {
      versions.back().value.reset();
    } else if (ValueAt(it->second, commit_) != nullptr) {
      versions.push_back(Version{commit_, std::nullopt});
      written_[space_id].push_back(it);
    }
    return Status::OK();
  }

  Status Commit() override {
    if (finished_) return TxnFinishedError();
    CheckWriterThread(owner_);
    finished_ = true;
    MemoryStore& store = *handle_->store;
    const uint64_t oldest = store.Publish(commit_);
    for (size_t i = 0; i < written_.size(); ++i) PruneWritten(*handle_->spaces[i], written_[i], oldest);
    store.PrunePending(oldest);
    store.EndWriter();
    return Status::OK();
  }

 private:
  // Put, or with `only_if_absent` Insert: a key this txn sees with a value (its own writes included) is
  // AlreadyExists, found by the same map lookup that would place the new version.
  Status Write(SpaceId space_id, std::string_view key, std::string_view value, bool only_if_absent) {
    if (finished_) return TxnFinishedError();
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space_id, handle_->spaces.size()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    OUTPOST_RETURN_IF_ERROR(CheckValue(value));
    Space& space = *handle_->spaces[space_id];
    std::unique_lock<WriterFirstMutex> lock(space.mu);
    auto it = space.rows.lower_bound(key);
    if (it == space.rows.end() || it->first != key) {
      it = space.rows.emplace_hint(it, key, Row{});
    } else if (only_if_absent && ValueAt(it->second, commit_) != nullptr) {
      return Status::AlreadyExists("key exists");
    }
    std::vector<Version>& versions = it->second.versions;
    if (!versions.empty() && versions.back().commit == commit_) {
      if (versions.back().value) {
        versions.back().value->assign(value);
      } else {
        versions.back().value.emplace(value);
      }
    } else {
      versions.push_back(Version{commit_, std::string(value)});
      written_[space_id].push_back(it);
    }
    return Status::OK();
  }

  // Every version in `rows` is committed now. Rows on the pending list are left for its pass to erase, so
  // that the list never holds a dangling iterator.
  static void PruneWritten(Space& space, const std::vector<RowMap::iterator>& rows, uint64_t oldest) {
    std::unique_lock<WriterFirstMutex> lock(space.mu);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i % kPruneBatchRows == kPruneBatchRows - 1) {
        lock.unlock();
        lock.lock();
      }
      auto it = rows[i];
      Row& row = it->second;
      Prune(row, oldest);
      if (row.pending) continue;
      if (row.versions.empty()) {
        space.Erase(it);
      } else if (row.versions.size() > 1) {
        row.pending = true;
        space.pending.push_back(it);
      }
    }
  }

  void Abort() {
    CheckWriterThread(owner_);
    finished_ = true;
    for (size_t i = 0; i < written_.size(); ++i) {
      Space& space = *handle_->spaces[i];
      std::unique_lock<WriterFirstMutex> lock(space.mu);
      for (auto it : written_[i]) {
        it->second.versions.pop_back();
        if (it->second.versions.empty() && !it->second.pending) space.Erase(it);
      }
    }
    handle_->store->EndWriter();
  }

  const std::shared_ptr<const Handle> handle_;
  const uint64_t commit_;
  // Per space, the rows that got a version at commit_, each listed once.
  std::vector<std::vector<RowMap::iterator>> written_;
  const std::thread::id owner_;
  bool finished_ = false;
};

class MemoryStorage final : public Storage {
 public:
  MemoryStorage(std::string uri, std::shared_ptr<const Handle> handle)
      : uri_(std::move(uri)), handle_(std::move(handle)) {}

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    return std::unique_ptr<ReadTxn>(std::make_unique<MemoryReadTxn>(handle_));
  }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    return std::unique_ptr<WriteTxn>(std::make_unique<MemoryWriteTxn>(handle_));
  }
  const std::string& uri() const override { return uri_; }
  Status Backup(const std::string& destination) override {
    return Status::FailedPrecondition("memory store '" + uri_ + "' has nothing on disk to back up to '" +
                                      destination + "' (backups are for lmdb, sqlite and rocksdb stores)");
  }

 private:
  const std::string uri_;
  const std::shared_ptr<const Handle> handle_;
};

// The named stores of this process. Never destroyed, so a store outlives every static that might still
// hold a handle at exit.
// Null when absent and `add` is false.
std::shared_ptr<MemoryStore> FindOrAddNamedStore(std::string_view name, bool add = true) {
  static auto* mu = new std::mutex;
  static auto* stores = new std::map<std::string, std::shared_ptr<MemoryStore>, std::less<>>;
  std::lock_guard<std::mutex> lock(*mu);
  auto it = stores->find(name);
  if (it == stores->end() && !add) return nullptr;
  if (it == stores->end()) it = stores->emplace(name, std::make_shared<MemoryStore>()).first;
  return it->second;
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenMemoryStorage(std::string uri, std::string_view name,
                                                   const StorageOptions& options) {
  auto handle = std::make_shared<Handle>();
  const bool add = !options.read_only;
  if (name.empty() && !add) {
    return Status::InvalidArgument(
        "a private memory: store opened read-only would be empty forever; "
        "name one (memory:NAME)");
  }
  handle->store = name.empty() ? std::make_shared<MemoryStore>() : FindOrAddNamedStore(name, add);
  if (handle->store == nullptr) {
    return Status::IOError("memory store '" + std::string(name) + "' does not exist in this process");
  }
  for (const std::string& space : options.spaces) {
    handle->spaces.push_back(handle->store->FindOrAddSpace(space, add));
    if (handle->spaces.back() == nullptr) {
      return Status::NotFound("memory store '" + std::string(name) + "' has no space '" + space + "'");
    }
  }
  return std::unique_ptr<Storage>(std::make_unique<MemoryStorage>(std::move(uri), std::move(handle)));
}

}  // namespace outpost
