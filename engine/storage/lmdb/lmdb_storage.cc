// Copyright 2026 The Outpost Authors.
//
// Locking, on top of LMDB's own:
// - The writer gate (a flag and a condition variable) admits one WriteTxn of this process at a time. Map
//   growth happens only under it, before LMDB's write txn begins, because mdb_env_set_mapsize fails while a
//   write txn is active.
// - remap_mu_ keeps remaps away from read-txn operations: each Get, cursor move, begin or end of a read txn
//   holds it shared for that call only; a remap holds it exclusively. A remap moves the map, so a read
//   cursor's page pointers dangle afterwards; the cursor notices the remap count changed and re-seeks to
//   its key. Read txns themselves hold no map pointers (LMDB copies the meta into the txn at begin), so
//   they stay usable across a remap. Write txns need no lock: no remap runs while one is open.
// Everything a caller gets back is copied out of the map, since a later remap would unmap it.
#include "storage/lmdb/lmdb_storage.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "storage/storage_common.h"

namespace outpost {
namespace {

using storage_internal::ErrnoText;

using storage_internal::CheckKey;
using storage_internal::CheckSpace;
using storage_internal::CheckValue;
using storage_internal::CheckWriterThread;
using storage_internal::ErrorCursor;
using storage_internal::TxnFinishedError;
using storage_internal::WriterFirstMutex;

// Every ReadTxn holds one LMDB reader slot (MDB_NOTLS); the lock file grows by 64 bytes per slot.
constexpr unsigned kReadTxnsMax = 1024;

std::string SizeText(uint64_t bytes) {
  char text[32];
  if (bytes >= (uint64_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%g GiB", static_cast<double>(bytes) / (uint64_t{1} << 30));
  } else {
    std::snprintf(text, sizeof text, "%g MiB", static_cast<double>(bytes) / (uint64_t{1} << 20));
  }
  return text;
}

Status LmdbError(int rc, std::string_view what) {
  std::string message = "lmdb ";
  message += what;
  message += ": ";
  message += mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return Status::NotFound(message);
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
      return Status::Full(message);
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
      return Status::Corruption(message);
    case MDB_READERS_FULL:
      return Status::Busy(message + " (more than " + std::to_string(kReadTxnsMax) + " read txns are open)");
    case MDB_BAD_VALSIZE:
      return Status::InvalidArgument(message);
    case EAGAIN:
      return Status::IOError(message + " (the store is locked by another process)");
    default:
      return Status::IOError(message);
  }
}

MDB_val ToVal(std::string_view bytes) {
  // LMDB never writes through the pointers of keys and values it is given.
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view FromVal(const MDB_val& val) { return {static_cast<const char*>(val.mv_data), val.mv_size}; }

Status GetInto(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string* value) {
  MDB_val k = ToVal(key);
  MDB_val v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return Status::NotFound("no such key");
  if (rc != 0) return LmdbError(rc, "get");
  value->assign(FromVal(v));
  return Status::OK();
}

// Directories this process has open: LMDB's locks are per process, so a second env on the same files would
// wreck them when either one closes.
class OpenDirs {
 public:
  static bool Add(dev_t dev, ino_t ino) {
    std::lock_guard<std::mutex> lock(Mu());
    return Dirs().emplace(dev, ino).second;
  }
  static void Remove(dev_t dev, ino_t ino) {
    std::lock_guard<std::mutex> lock(Mu());
    Dirs().erase({dev, ino});
  }

 private:
  // Never destroyed, so that stores closed by other statics at exit still find them.
  static std::mutex& Mu() {
    static auto* mu = new std::mutex;
    return *mu;
  }
  static std::set<std::pair<dev_t, ino_t>>& Dirs() {
    static auto* dirs = new std::set<std::pair<dev_t, ino_t>>;
    return *dirs;
  }
};

// One open LMDB environment; shared by its Storage handle and every txn, so it closes after the last one.
class LmdbEnv {
 public:
  explicit LmdbEnv(std::string dir) : dir_(std::move(dir)) {}
  ~LmdbEnv() {
    if (env_ != nullptr) mdb_env_close(env_);
    if (registered_) OpenDirs::Remove(dev_, ino_);
  }
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  Status Open(dev_t dev, ino_t ino, const StorageOptions& options);
  // Finds every space without creating one: NotFound naming the first that is missing.
  Status OpenSpacesReadOnly(const StorageOptions& options);
  // Corruption when data.mdb is shorter than its meta pages say.
  Status CheckFileSize() const;

  MDB_env* env() const { return env_; }
  // LmdbError with the store's directory in the message, so that the caller can tell which store failed.
  Status Error(int rc, std::string_view what) const {
    return LmdbError(rc, std::string(what) + " in '" + dir_ + "'");
  }
  MDB_dbi dbi(SpaceId space) const { return dbis_[space]; }
  size_t space_count() const { return dbis_.size(); }

  // Blocks while another WriteTxn of this process is open.
  void AcquireWriter() {
    std::unique_lock<std::mutex> lock(writer_mu_);
    writer_cv_.wait(lock, [this] { return !writer_active_; });
    writer_active_ = true;
  }
  void ReleaseWriter() {
    {
      std::lock_guard<std::mutex> lock(writer_mu_);
      writer_active_ = false;
    }
    writer_cv_.notify_one();
  }

  // The rest requires the writer gate.

  // Grows the map when it is short of room for the next txn or the last one found it full.
  Status PrepareWrite();
  // Adopts `bytes` as the map size (0: the size another process set). Breaks the env if LMDB cannot map
  // the file again.
  Status Remap(uint64_t bytes);
  // Records that a txn found the map full and returns the error for its caller.
  Status MapFull();
  uint64_t LastPage() const {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    return info.me_last_pgno;
  }
  // Remembers how far a txn that began at `last_page_before` grew the file, to leave room for the next one.
  void NoteCommit(uint64_t last_page_before) {
    const uint64_t last_page = LastPage();
    const uint64_t grown = (last_page - std::min(last_page, last_page_before)) * page_bytes_;
    txn_growth_bytes_ = std::max(grown, txn_growth_bytes_ / 2);
  }

  // Held shared by every read-txn operation, exclusively by a remap.
  WriterFirstMutex& remap_mu() { return remap_mu_; }
  // Both require remap_mu() held.
  uint64_t remaps() const { return remaps_; }
  const Status& broken() const { return broken_; }

 private:
  const std::string dir_;
  MDB_env* env_ = nullptr;
  std::vector<MDB_dbi> dbis_;
  bool registered_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t page_bytes_ = 4096;
  uint64_t map_bytes_max_ = 0;

  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  bool writer_active_ = false;

  // Guarded by the writer gate.
  bool grow_needed_ = false;
  uint64_t txn_growth_bytes_ = 0;  // recent txns' file growth, decaying

  WriterFirstMutex remap_mu_;
  // Guarded by remap_mu_ (written under the writer gate too, so the gate holder may read them bare).
  uint64_t remaps_ = 0;
  Status broken_;
};

Status LmdbEnv::Open(dev_t dev, ino_t ino, const StorageOptions& options) {
  if (!OpenDirs::Add(dev, ino)) {
    return Status::IOError("lmdb store '" + dir_ + "' is already open in this process");
  }
  registered_ = true;
  dev_ = dev;
  ino_ = ino;

  const auto os_page_bytes = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto round_up = [os_page_bytes](uint64_t bytes) {
    return (bytes + os_page_bytes - 1) / os_page_bytes * os_page_bytes;
  };
  int rc = mdb_env_create(&env_);
  if (rc != 0) {
    env_ = nullptr;
    return LmdbError(rc, "create env");
  }
  if ((rc = mdb_env_set_maxdbs(env_, static_cast<MDB_dbi>(options.spaces.size()))) != 0 ||
      (rc = mdb_env_set_maxreaders(env_, kReadTxnsMax)) != 0 ||
      (rc = mdb_env_set_mapsize(env_, round_up(options.map_bytes_initial))) != 0) {
    return LmdbError(rc, "configure env");
  }
  unsigned flags = MDB_NOTLS | (options.sync ? 0 : MDB_NOSYNC);
  if (options.read_only) {
    // The lock file holds the reader table that keeps a live writer off the pages we read, so it is used
    // when it is there; without it no process has the store open (LMDB would otherwise create it).
    struct stat lock_st;
    flags = MDB_NOTLS | MDB_RDONLY | (::stat((dir_ + "/lock.mdb").c_str(), &lock_st) == 0 ? 0 : MDB_NOLOCK);
  }
  rc = mdb_env_open(env_, dir_.c_str(), flags, storage_internal::kStoreFileMode);
  if (rc != 0) return LmdbError(rc, "open '" + dir_ + "'");
  if (!options.read_only) {
    // Frees reader slots left by crashed processes, which would otherwise pin old pages forever.
    int dead_readers = 0;
    mdb_reader_check(env_, &dead_readers);
  }
  MDB_stat stat;
  mdb_env_stat(env_, &stat);
  page_bytes_ = stat.ms_psize;
  OUTPOST_RETURN_IF_ERROR(CheckFileSize());
  map_bytes_max_ = std::max(options.map_bytes_max / page_bytes_ * page_bytes_, page_bytes_);
  if (options.read_only) return OpenSpacesReadOnly(options);

  OUTPOST_RETURN_IF_ERROR(PrepareWrite());  // a reopened store may be nearly full
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) != 0) return LmdbError(rc, "begin txn to open spaces");
  for (const std::string& space : options.spaces) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(txn, space.c_str(), MDB_CREATE, &dbi)) != 0) {
      mdb_txn_abort(txn);
      return LmdbError(rc, "open space '" + space + "'");
    }
    dbis_.push_back(dbi);
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return LmdbError(rc, "commit new spaces");
  return Status::OK();
}

Status LmdbEnv::OpenSpacesReadOnly(const StorageOptions& options) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return Error(rc, "begin txn to find spaces");
  for (const std::string& space : options.spaces) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(txn, space.c_str(), 0, &dbi)) != 0) {
      mdb_txn_abort(txn);
      if (rc == MDB_NOTFOUND)
        return Status::NotFound("lmdb store '" + dir_ + "' has no space '" + space + "'");
      return Error(rc, "open space '" + space + "'");
    }
    dbis_.push_back(dbi);
  }
  // Committing a read txn keeps the handles it opened for later txns.
  if ((rc = mdb_txn_commit(txn)) != 0) return Error(rc, "keep space handles");
  return Status::OK();
}

// LMDB maps the data file and trusts its meta pages: a file cut shorter than the pages they reference
// (a truncated copy, a full disk during a copy) would fault with SIGBUS on the first read past its end.
Status LmdbEnv::CheckFileSize() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  const uint64_t needed = (uint64_t{info.me_last_pgno} + 1) * page_bytes_;
  const std::string file = dir_ + "/data.mdb";
  struct stat st;
  if (::stat(file.c_str(), &st) != 0)
    return Status::IOError("cannot stat '" + file + "': " + ErrnoText(errno));
  if (static_cast<uint64_t>(st.st_size) < needed) {
    return Status::Corruption("lmdb store '" + dir_ + "' is truncated: data.mdb has " +
                              std::to_string(st.st_size) + " bytes, its last page ends at byte " +
                              std::to_string(needed));
  }
  return Status::OK();
}

Status LmdbEnv::PrepareWrite() {
  if (!broken_.ok()) return broken_;
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  const uint64_t map = info.me_mapsize;
  const uint64_t used = (uint64_t{info.me_last_pgno} + 1) * page_bytes_;
  // Keep a quarter of the map free, and room for twice what recent txns took.
  uint64_t want = used + std::max(used / 3, 2 * txn_growth_bytes_);
  if (grow_needed_) want = std::max(want, map + 1);
  if (want <= map || map >= map_bytes_max_) return Status::OK();
  uint64_t target = map;
  while (target < want && target < map_bytes_max_) target = std::min(target * 2, map_bytes_max_);
  OUTPOST_RETURN_IF_ERROR(Remap(target));
  grow_needed_ = false;
  return Status::OK();
}

Status LmdbEnv::Remap(uint64_t bytes) {
  std::unique_lock<WriterFirstMutex> lock(remap_mu_);
  int rc = mdb_env_set_mapsize(env_, bytes);
  ++remaps_;
  if (rc == 0) return Status::OK();
  Status status = LmdbError(rc, "resize map to " + SizeText(bytes));
  // EINVAL comes before LMDB unmaps anything; any later failure leaves the env without a map.
  if (rc != EINVAL) broken_ = Status::IOError(status.message() + "; reopen the store");
  return status;
}

Status LmdbEnv::MapFull() {
  grow_needed_ = true;
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  const uint64_t map = info.me_mapsize;
  if (map >= map_bytes_max_) {
    return Status::Full("lmdb map full: the store in '" + dir_ + "' needs more than its " + SizeText(map) +
                        " map, which is map_bytes_max; the txn was rolled back; raise map_bytes_max");
  }
  return Status::Full("lmdb map full at " + SizeText(map) + " (map_bytes_max " + SizeText(map_bytes_max_) +
                      "); the txn was rolled back and the map grows at the next BeginWrite, so retry it");
}

class LmdbWriteTxn;

// Copies the current entry out of LMDB, because the map may move (read txns) or the page may change
// (write txns) before the caller looks at it. Re-seeks by key after either.
class LmdbCursor final : public Cursor {
 public:
  // A read-txn cursor (`owner` null) locks env->remap_mu() per move; a write-txn cursor tells `owner` when
  // it goes away and is detached by it when the txn ends.
  LmdbCursor(LmdbEnv* env, MDB_txn* txn, MDB_dbi dbi, LmdbWriteTxn* owner, MDB_cursor* cursor,
             uint64_t generation)
      : env_(env), txn_(txn), dbi_(dbi), owner_(owner), cursor_(cursor), generation_(generation) {}
  ~LmdbCursor() override;
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  void SeekToFirst() override {
    Move(false, [this](bool) { Op(MDB_FIRST); });
  }
  void SeekToLast() override {
    Move(false, [this](bool) { Op(MDB_LAST); });
  }
  void Seek(std::string_view key) override {
    target_.assign(key);  // `key` may be this cursor's own key(), which the move overwrites
    Move(false, [this](bool) {
      if (target_.empty()) {
        Op(MDB_FIRST);
      } else if (target_.size() <= kStorageKeyBytesMax) {
        Op(MDB_SET_RANGE, target_);
      } else {
        // Stored keys have at most 511 bytes, so the first one >= target is the first one > its prefix.
        target_.resize(kStorageKeyBytesMax);
        if (Op(MDB_SET_RANGE, target_) == 0 && key_ == target_) Op(MDB_NEXT);
      }
    });
  }
  void SeekForPrev(std::string_view key) override {
    target_.assign(key);
    Move(false, [this](bool) {
      if (target_.empty()) {  // no key is <= ""
        valid_ = false;
        return;
      }
      // Stored keys have at most 511 bytes, so the last one <= target is the last one <= its prefix.
      if (target_.size() > kStorageKeyBytesMax) target_.resize(kStorageKeyBytesMax);
      int rc = Op(MDB_SET_RANGE, target_);
      if (rc == MDB_NOTFOUND) {
        Op(MDB_LAST);
      } else if (rc == 0 && key_ != target_) {
        Op(MDB_PREV);
      }
    });
  }
  void Next() override {
    Move(true, [this](bool stale) {
      if (!stale) {
        Op(MDB_NEXT);
        return;
      }
      target_ = key_;
      if (Op(MDB_SET_RANGE, target_) == 0 && key_ == target_) Op(MDB_NEXT);
    });
  }
  void Prev() override {
    Move(true, [this](bool stale) {
      if (!stale) {
        Op(MDB_PREV);
        return;
      }
      target_ = key_;
      int rc = Op(MDB_SET_RANGE, target_);
      if (rc == 0) {
        Op(MDB_PREV);
      } else if (rc == MDB_NOTFOUND) {
        Op(MDB_LAST);
      }
    });
  }
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

  // Called by the owning write txn as it ends: LMDB frees write-txn cursors itself then.
  void Detach() {
    cursor_ = nullptr;
    owner_ = nullptr;
    valid_ = false;
    status_ = TxnFinishedError();
  }

 private:
  uint64_t CurrentGeneration() const;

  // Runs `move(stale)` with the locks a move needs, after re-opening the LMDB cursor if its position may be
  // out of date (`stale`). Errors are sticky.
  template <typename Fn>
  void Move(bool needs_valid, Fn move) {
    if (!status_.ok() || (needs_valid && !valid_)) return;
    std::shared_lock<WriterFirstMutex> lock;
    if (owner_ == nullptr) {
      lock = std::shared_lock<WriterFirstMutex>(env_->remap_mu());
      if (!env_->broken().ok()) return Fail(env_->broken());
    }
    const uint64_t generation = CurrentGeneration();
    const bool stale = generation != generation_;
    if (stale) {
      int rc = Reopen();
      if (rc != 0) return Fail(LmdbError(rc, "reopen cursor"));
      generation_ = generation;
    }
    move(stale);
  }
  int Reopen() {
    // A read-only cursor can be reset in place; a write txn's cursor cannot, so it is replaced.
    if (owner_ == nullptr) return mdb_cursor_renew(txn_, cursor_);
    mdb_cursor_close(cursor_);
    cursor_ = nullptr;
    return mdb_cursor_open(txn_, dbi_, &cursor_);
  }
  // One positioning op; `target` is the key for MDB_SET_RANGE.
  int Op(MDB_cursor_op op, std::string_view target = {}) {
    MDB_val k = ToVal(target);
    MDB_val v{0, nullptr};
    int rc = mdb_cursor_get(cursor_, &k, &v, op);
    if (rc == 0) {
      key_.assign(FromVal(k));
      value_.assign(FromVal(v));
      valid_ = true;
    } else if (rc == MDB_NOTFOUND) {
      valid_ = false;
    } else {
      Fail(LmdbError(rc, "cursor"));
    }
    return rc;
  }
  void Fail(Status status) {
    valid_ = false;
    status_ = std::move(status);
  }

  LmdbEnv* const env_;
  MDB_txn* const txn_;
  const MDB_dbi dbi_;
  LmdbWriteTxn* owner_;
  MDB_cursor* cursor_;
  uint64_t generation_;  // remaps (read txn) or writes (write txn) when cursor_ was last positioned
  bool valid_ = false;
  std::string key_;
  std::string value_;
  std::string target_;
  Status status_;
};

class LmdbReadTxn final : public ReadTxn {
 public:
  LmdbReadTxn(std::shared_ptr<LmdbEnv> env, MDB_txn* txn) : env_(std::move(env)), txn_(txn) {}
  ~LmdbReadTxn() override {
    std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
    mdb_txn_abort(txn_);
  }
  LmdbReadTxn(const LmdbReadTxn&) = delete;
  LmdbReadTxn& operator=(const LmdbReadTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
    OUTPOST_RETURN_IF_ERROR(env_->broken());
    return GetInto(txn_, env_->dbi(space), key, value);
  }

  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
    if (!env_->broken().ok()) return std::make_unique<ErrorCursor>(env_->broken());
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, env_->dbi(space), &cursor);
    if (rc != 0) return std::make_unique<ErrorCursor>(LmdbError(rc, "open cursor"));
    return std::make_unique<LmdbCursor>(env_.get(), txn_, env_->dbi(space), nullptr, cursor, env_->remaps());
  }

 private:
  const std::shared_ptr<LmdbEnv> env_;
  MDB_txn* const txn_;
};

class LmdbWriteTxn final : public WriteTxn {
 public:
  LmdbWriteTxn(std::shared_ptr<LmdbEnv> env, MDB_txn* txn, uint64_t last_page_before)
      : env_(std::move(env)),
        txn_(txn),
        last_page_before_(last_page_before),
        owner_(std::this_thread::get_id()) {}
  ~LmdbWriteTxn() override {
    if (txn_ == nullptr) return;
    CheckWriterThread(owner_);
    DetachCursors();
    mdb_txn_abort(txn_);
    txn_ = nullptr;
    env_->ReleaseWriter();
  }
  LmdbWriteTxn(const LmdbWriteTxn&) = delete;
  LmdbWriteTxn& operator=(const LmdbWriteTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    return GetInto(txn_, env_->dbi(space), key, value);
  }

  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = Usable();
    if (status.ok()) status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, env_->dbi(space), &cursor);
    if (rc != 0) return std::make_unique<ErrorCursor>(LmdbError(rc, "open cursor"));
    auto result = std::make_unique<LmdbCursor>(env_.get(), txn_, env_->dbi(space), this, cursor, writes_);
    cursors_.push_back(result.get());
    return result;
  }

  Status Put(SpaceId space, std::string_view key, std::string_view value) override {
    return Write(space, key, value, 0);
  }

  Status Insert(SpaceId space, std::string_view key, std::string_view value) override {
    return Write(space, key, value, MDB_NOOVERWRITE);
  }

  Status Delete(SpaceId space, std::string_view key) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    MDB_val k = ToVal(key);
    ++writes_;
    int rc = mdb_del(txn_, env_->dbi(space), &k, nullptr);
    return rc == 0 || rc == MDB_NOTFOUND ? Status::OK() : Fail(rc, "delete");
  }

  Status Commit() override {
    if (txn_ == nullptr) return TxnFinishedError();
    CheckWriterThread(owner_);
    DetachCursors();
    MDB_txn* txn = std::exchange(txn_, nullptr);
    Status result = failed_;
    if (!result.ok()) {
      mdb_txn_abort(txn);
    } else if (int rc = mdb_txn_commit(txn); rc != 0) {  // frees the txn even when it fails
      result = Fail(rc, "commit");
    } else {
      env_->NoteCommit(last_page_before_);
    }
    env_->ReleaseWriter();
    return result;
  }

  void ForgetCursor(LmdbCursor* cursor) {
    cursors_.erase(std::find(cursors_.begin(), cursors_.end(), cursor));
  }
  uint64_t writes() const { return writes_; }

 private:
  Status Usable() const {
    if (txn_ == nullptr) return TxnFinishedError();
    return failed_;
  }
  // mdb_put with `flags`. MDB_NOOVERWRITE finds an existing key before it touches a page and answers
  // MDB_KEYEXIST without marking the txn as failed, so that answer leaves the txn usable.
  Status Write(SpaceId space, std::string_view key, std::string_view value, unsigned int flags) {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    OUTPOST_RETURN_IF_ERROR(CheckValue(value));
    MDB_val k = ToVal(key);
    MDB_val v = ToVal(value);
    ++writes_;
    int rc = mdb_put(txn_, env_->dbi(space), &k, &v, flags);
    if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE) != 0) return Status::AlreadyExists("key exists");
    return rc == 0 ? Status::OK() : Fail(rc, "put");
  }
  // LMDB refuses every later operation of a txn that failed a write, so the txn remembers why.
  Status Fail(int rc, std::string_view what) {
    failed_ = rc == MDB_MAP_FULL ? env_->MapFull() : env_->Error(rc, what);
    return failed_;
  }
  void DetachCursors() {
    for (LmdbCursor* cursor : cursors_) cursor->Detach();
    cursors_.clear();
  }

  const std::shared_ptr<LmdbEnv> env_;
  MDB_txn* txn_;  // null once finished
  const uint64_t last_page_before_;
  const std::thread::id owner_;
  Status failed_;
  uint64_t writes_ = 0;  // bumped by every write, so cursors know to re-seek
  std::vector<LmdbCursor*> cursors_;
};

LmdbCursor::~LmdbCursor() {
  if (owner_ != nullptr) {
    owner_->ForgetCursor(this);
    mdb_cursor_close(cursor_);
  } else if (cursor_ != nullptr) {
    std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
    mdb_cursor_close(cursor_);
  }
}

uint64_t LmdbCursor::CurrentGeneration() const {
  return owner_ == nullptr ? env_->remaps() : owner_->writes();
}

class LmdbStorage final : public Storage {
 public:
  LmdbStorage(std::string uri, std::shared_ptr<LmdbEnv> env) : uri_(std::move(uri)), env_(std::move(env)) {}

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    for (int attempt = 0;; ++attempt) {
      {
        std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
        OUTPOST_RETURN_IF_ERROR(env_->broken());
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env_->env(), nullptr, MDB_RDONLY, &txn);
        if (rc == 0) return std::unique_ptr<ReadTxn>(std::make_unique<LmdbReadTxn>(env_, txn));
        if (rc != MDB_MAP_RESIZED || attempt > 0) return LmdbError(rc, "begin read txn");
      }
      // Another process grew the map past ours; adopting its size is a remap, which needs the gate.
      env_->AcquireWriter();
      Status status = env_->Remap(0);
      env_->ReleaseWriter();
      OUTPOST_RETURN_IF_ERROR(status);
    }
  }

  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    env_->AcquireWriter();
    MDB_txn* txn = nullptr;
    uint64_t last_page_before = 0;
    Status status = env_->PrepareWrite();
    if (status.ok()) {
      last_page_before = env_->LastPage();
      int rc = mdb_txn_begin(env_->env(), nullptr, 0, &txn);
      if (rc == MDB_MAP_RESIZED) {  // another process grew the map past ours
        status = env_->Remap(0);
        if (status.ok()) rc = mdb_txn_begin(env_->env(), nullptr, 0, &txn);
      }
      if (status.ok() && rc != 0) status = env_->Error(rc, "begin write txn");
    }
    if (!status.ok()) {
      env_->ReleaseWriter();
      return status;
    }
    return std::unique_ptr<WriteTxn>(std::make_unique<LmdbWriteTxn>(env_, txn, last_page_before));
  }

  const std::string& uri() const override { return uri_; }

  // mdb_env_copy2 with compaction: one read txn walks the B-trees and writes them out densely, so the
  // copy is the snapshot that txn saw and the live writer (here or in another process) never waits.
  Status Backup(const std::string& destination) override {
    OUTPOST_RETURN_IF_ERROR(storage_internal::CheckBackupDestination("lmdb", destination));
    if (::mkdir(destination.c_str(), storage_internal::kStoreDirMode) != 0) {
      return Status::IOError("cannot create lmdb backup directory '" + destination +
                             "': " + ErrnoText(errno));
    }
    Status status = Copy(destination);
    if (status.ok()) status = storage_internal::SyncPath(destination + "/data.mdb");
    if (status.ok()) status = storage_internal::SyncPath(destination);
    if (!status.ok()) storage_internal::RemoveBackupLeftovers(destination);
    return status;
  }

 private:
  Status Copy(const std::string& destination) {
    for (int attempt = 0;; ++attempt) {
      {
        // Shared: no remap of this process may move the map while the copy reads it.
        std::shared_lock<WriterFirstMutex> lock(env_->remap_mu());
        OUTPOST_RETURN_IF_ERROR(env_->broken());
        const int rc = mdb_env_copy2(env_->env(), destination.c_str(), MDB_CP_COMPACT);
        if (rc == 0) return Status::OK();
        if (rc != MDB_MAP_RESIZED || attempt > 0) return env_->Error(rc, "backup to '" + destination + "'");
      }
      ::unlink((destination + "/data.mdb").c_str());
      // Another process grew the map past ours: adopt its size, as BeginRead does, and copy again.
      env_->AcquireWriter();
      Status status = env_->Remap(0);
      env_->ReleaseWriter();
      OUTPOST_RETURN_IF_ERROR(status);
    }
  }

  const std::string uri_;
  const std::shared_ptr<LmdbEnv> env_;
};

}  // namespace

Result<std::unique_ptr<Storage>> OpenLmdbStorage(std::string uri, const std::string& dir,
                                                 const StorageOptions& options) {
  if (options.read_only) {
    OUTPOST_RETURN_IF_ERROR(storage_internal::CheckExistingStoreDir("lmdb", dir, "data.mdb"));
  } else {
    OUTPOST_RETURN_IF_ERROR(storage_internal::EnsureDirectory("lmdb", dir));
  }
  struct stat st;  // the directory's identity keys the process-wide table of open environments
  if (::stat(dir.c_str(), &st) != 0) return Status::IOError("cannot stat '" + dir + "': " + ErrnoText(errno));
  auto env = std::make_shared<LmdbEnv>(dir);
  OUTPOST_RETURN_IF_ERROR(env->Open(st.st_dev, st.st_ino, options));
  return std::unique_ptr<Storage>(std::make_unique<LmdbStorage>(std::move(uri), std::move(env)));
}

}  // namespace outpost
