// Copyright 2026 The Outpost Authors.
//
// Locking, on top of RocksDB's own (the DB itself is thread-safe):
// - An flock on the directory makes the store exclusive to one handle, in this process and across
//   processes (RocksDB's LOCK file does the latter too, but tells apart neither paths that name the same
//   directory nor a second handle of this process from a crash).
// - The writer gate (a flag and a condition variable) admits one WriteTxn at a time, so a write txn's
//   reads of the live database see exactly the state it began with plus its own writes.
// Every key and value handed out is copied, so that it stays valid until the cursor's next move whatever
// the txn does meanwhile.
#include "storage/rocksdb/rocksdb_storage.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <fstream>
#include <mutex>
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

// Sized for a device (docs/backends.md, "rocksdb"): memtables are most of a store's anonymous memory, and a
// process with a device and a server store peaked at 121 MB with 8 MiB per space and 32 MiB in all.
constexpr size_t kMemtableBytesPerSpace = size_t{4} << 20;
constexpr size_t kMemtableBytesTotal = size_t{8} << 20;  // all spaces together; the largest is flushed
constexpr size_t kBlockCacheBytes = size_t{8} << 20;
// Table files kept open. Unbounded (RocksDB's default, -1), every open loads every table file's footer,
// index and filter up front (a 1M-op device store: 80 files, ~400 reads) and keeps them in memory for good;
// bounded, an open loads at most 16 (~80 reads) and the rest as reads reach them. Enough for the files of a
// large device store, so that reads do not keep closing and reopening them (each reopen reads its index and
// filter again).
constexpr int kOpenFilesMax = 256;
constexpr uint64_t kWalBytesMax = uint64_t{64} << 20;       // then the oldest memtables are flushed
constexpr uint64_t kFlushAtCloseBytes = uint64_t{1} << 20;  // less than this is replayed at the next open

rocksdb::Slice ToSlice(std::string_view bytes) { return {bytes.data(), bytes.size()}; }
std::string_view FromSlice(const rocksdb::Slice& slice) { return {slice.data(), slice.size()}; }

Status RocksError(const rocksdb::Status& status, std::string_view what) {
  std::string message = "rocksdb ";
  message += what;
  message += ": ";
  message += status.ToString();
  if (status.IsNotFound()) return Status::NotFound(message);
  if (status.IsNoSpace() || status.IsMemoryLimit()) return Status::Full(message);
  if (status.IsCorruption()) return Status::Corruption(message);
  if (status.IsBusy() || status.IsTryAgain() || status.IsTimedOut()) return Status::Busy(message);
  if (status.IsInvalidArgument()) return Status::InvalidArgument(message);
  return Status::IOError(message);
}

rocksdb::Options MakeOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.db_write_buffer_size = kMemtableBytesTotal;
  options.max_total_wal_size = kWalBytesMax;
  options.max_background_jobs = 2;
  // Opening a store starts no threads of its own (by default each space spawns 16 to open table files,
  // which made an open of a 7-space store take tens of milliseconds), opens at most a few table files (see
  // kOpenFilesMax) and reads no statistics from them.
  options.max_file_opening_threads = 1;
  options.max_open_files = kOpenFilesMax;
  options.skip_stats_update_on_db_open = true;
  // The WAL left by a close that did not flush (or a crash) is replayed into memtables, not flushed to
  // new files, so that opening stays quick.
  options.avoid_flush_during_recovery = true;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  options.keep_log_file_num = 2;
  options.max_manifest_file_size = uint64_t{16} << 20;

  options.write_buffer_size = kMemtableBytesPerSpace;
  options.max_write_buffer_number = 2;
  options.level_compaction_dynamic_level_bytes = true;
  // The engine looks up many keys that are absent (op ids it has not seen); a memtable bloom filter answers
  // those without walking the skiplist.
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.05;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  // Index and filter blocks stay with their table readers (a few MB for millions of keys) rather than in
  // the small block cache: cached, they were evicted by data blocks and read and decompressed again on
  // nearly every lookup, which made a 1M-op flush ten times slower per op than a 10k-op one.
  table.cache_index_and_filter_blocks = false;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

// One open database; shared by its Storage handle and every txn, so it closes after the last one.
class RocksEnv {
 public:
  explicit RocksEnv(std::string dir) : dir_(std::move(dir)) {}
  ~RocksEnv() {
    // A database whose WAL append failed cannot be closed: closing uses the failed WAL writer, which
    // Debian's librocksdb (built with assertions) answers with an abort. It is abandoned instead, with its
    // lock, so that a reopen in this process is a clear "locked" IOError; the next process replays the WAL,
    // which holds every commit that succeeded.
    if (resume_needed_) return;
    if (db_ != nullptr && read_only_) {  // nothing to flush, and no file of the store may change
      for (rocksdb::ColumnFamilyHandle* handle : all_handles_) (void)db_->DestroyColumnFamilyHandle(handle);
      (void)db_->Close();
      delete db_;
    } else if (db_ != nullptr) {
      // The WAL is what the next open replays: short, it costs less than flushing every space now.
      rocksdb::VectorLogPtr wal_files;
      uint64_t wal_bytes = 0;
      if (db_->GetSortedWalFiles(wal_files).ok()) {
        for (const auto& file : wal_files) wal_bytes += file->SizeFileBytes();
      }
      if (wal_bytes >= kFlushAtCloseBytes) {
        rocksdb::Status ignored = db_->Flush(rocksdb::FlushOptions(), all_handles_);  // else the WAL keeps it
        (void)ignored;
      }
      // Everything is durable now; the sequence number it reached is kept beside the database, so that the
      // next open can tell a damaged store (files cut short, which RocksDB may read as an older, consistent
      // state) from this one.
      if (db_->FlushWAL(/*sync=*/true).ok()) WriteClosedSeq(db_->GetLatestSequenceNumber());
      for (rocksdb::ColumnFamilyHandle* handle : all_handles_) {
        rocksdb::Status ignored = db_->DestroyColumnFamilyHandle(handle);
        (void)ignored;
      }
      rocksdb::Status ignored = db_->Close();
      (void)ignored;
      delete db_;
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }
  RocksEnv(const RocksEnv&) = delete;
  RocksEnv& operator=(const RocksEnv&) = delete;

  Status Open(const StorageOptions& options);
  // StorageOptions::read_only: DB::OpenForReadOnly of the spaces named, no flock, no info log.
  Status OpenReadOnly(const StorageOptions& options);

  rocksdb::DB* db() const { return db_; }
  // Storage::Backup: a RocksDB checkpoint of this handle's database into `destination` (not existing).
  Status Checkpoint(const std::string& destination);
  // OUTPOST-CLOSED-SEQ: the sequence number at the last clean close (a decimal line). A store opened with a
  // lower one lost commits it had made durable: damaged. Written through a temporary file, fsynced, renamed.
  std::string ClosedSeqPath() const { return dir_ + "/OUTPOST-CLOSED-SEQ"; }
  void WriteClosedSeq(uint64_t seq) const {
    const std::string tmp = ClosedSeqPath() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    const std::string text = std::to_string(seq) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (ok) ok = ::rename(tmp.c_str(), ClosedSeqPath().c_str()) == 0;
    if (ok && lock_fd_ >= 0) (void)::fsync(lock_fd_);  // the directory: the rename is durable
  }
  const std::string& dir() const { return dir_; }
  rocksdb::ColumnFamilyHandle* space(SpaceId id) const { return spaces_[id]; }
  size_t space_count() const { return spaces_.size(); }
  const rocksdb::WriteOptions& write_options() const { return write_options_; }

  void AcquireWriter() { writer_gate_.Acquire(); }
  void ReleaseWriter() { writer_gate_.Release(); }

  // A write that failed (a WAL append refused by the OS, say) leaves RocksDB in a background-error state in
  // which its WAL writer must not be used again. Resume() clears a recoverable error once the cause is gone;
  // RocksDB 7.8 treats a failed WAL append as unrecoverable, so Resume refuses and every later BeginWrite
  // fails with that error, naming the store: the process must reopen it (in practice: restart, see
  // ~RocksEnv). Both run under the writer gate.
  void NoteWriteError() { resume_needed_ = true; }
  Status ResumeIfNeeded() {
    if (!resume_needed_) return Status::OK();
    rocksdb::Status status = db_->Resume();
    if (!status.ok()) return RocksError(status, "resume after a write error in '" + dir_ + "'");
    resume_needed_ = false;
    return Status::OK();
  }

 private:
  const std::string dir_;
  int lock_fd_ = -1;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;  // every column family, ours or not
  std::vector<rocksdb::ColumnFamilyHandle*> spaces_;       // per SpaceId, into all_handles_
  rocksdb::WriteOptions write_options_;

  storage_internal::WriterGate writer_gate_;
  bool resume_needed_ = false;  // guarded by the writer gate
  bool read_only_ = false;
};

// RocksDB's info log would be DIR/LOG, and opening it renames the live writer's LOG: a read-only open
// logs nothing.
class NullLogger final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

Status RocksEnv::Checkpoint(const std::string& destination) {
  if (read_only_) {
    // Seen in tests (tests/e2e/inspect_e2e_test.cc): a read-only open beside a live writer may read the
    // MANIFEST before the writer flushes one column family and deletes the WAL that held the rest, and so
    // see the column families at different points: a checkpoint of it would be a torn store.
    return Status::FailedPrecondition(
        "rocksdb store '" + dir_ +
        "' is open read-only: a RocksDB checkpoint is taken by the process that has the store open for "
        "writing (a read-only handle beside a live writer may see a torn state); stop that process, or back "
        "up from it");
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status status = rocksdb::Checkpoint::Create(db_, &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  if (!status.ok()) return RocksError(status, "checkpoint of '" + dir_ + "'");
  // A flush first (log_size_for_flush 0): the copy is table files and a MANIFEST, with no WAL to replay.
  status = checkpoint->CreateCheckpoint(destination, 0);
  if (!status.ok()) return RocksError(status, "checkpoint of '" + dir_ + "' to '" + destination + "'");
  ::chmod(destination.c_str(), storage_internal::kStoreDirMode);
  return storage_internal::SyncPath(destination);
}

Status RocksEnv::OpenReadOnly(const StorageOptions& options) {
  read_only_ = true;
  rocksdb::Options base = MakeOptions();
  base.create_if_missing = false;
  base.create_missing_column_families = false;
  base.info_log = std::make_shared<NullLogger>();
  // Every table file is opened now and stays open, so that a live writer's compaction, which deletes the
  // files it merged, cannot take one away before it is read.
  base.max_open_files = -1;
  std::vector<std::string> existing;
  rocksdb::Status status = rocksdb::DB::ListColumnFamilies(base, dir_, &existing);
  if (!status.ok()) return RocksError(status, "list spaces of '" + dir_ + "'");
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(base));
  for (const std::string& space : options.spaces) {
    if (std::find(existing.begin(), existing.end(), space) == existing.end()) {
      return Status::NotFound("rocksdb store '" + dir_ + "' has no space '" + space + "'");
    }
    descriptors.emplace_back(space, rocksdb::ColumnFamilyOptions(base));
  }
  // A live writer may switch its WAL, or compact table files away, and delete the old files while this
  // open reads the file list: the open then misses a file that was there a moment ago (an IOError, or a
  // Corruption wrapping one). Opening again reads the new list.
  constexpr int kOpenAttemptsMax = 10;
  for (int attempt = 1;; ++attempt) {
    status = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(base), dir_, descriptors, &all_handles_, &db_);
    const bool vanished =
        status.IsPathNotFound() || status.ToString().find("No such file or directory") != std::string::npos;
    if (status.ok() || !vanished || attempt == kOpenAttemptsMax) break;
    db_ = nullptr;
    all_handles_.clear();
  }
  if (!status.ok()) {
    db_ = nullptr;
    all_handles_.clear();
    return RocksError(status, "open '" + dir_ + "' read-only");
  }
  spaces_.assign(all_handles_.begin() + 1, all_handles_.end());
  return Status::OK();
}

Status RocksEnv::Open(const StorageOptions& options) {
  lock_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0)
    return Status::IOError("cannot open rocksdb directory '" + dir_ + "': " + ErrnoText(errno));
  OUTPOST_RETURN_IF_ERROR(storage_internal::LockExclusive(lock_fd_, "rocksdb", dir_));

  const rocksdb::Options base = MakeOptions();
  // RocksDB must open every column family a database has, including spaces this caller does not name.
  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  struct stat st;
  if (::stat((dir_ + "/CURRENT").c_str(), &st) == 0) {
    std::vector<std::string> existing;
    rocksdb::Status status = rocksdb::DB::ListColumnFamilies(base, dir_, &existing);
    if (!status.ok()) return RocksError(status, "list spaces of '" + dir_ + "'");
    for (const std::string& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  for (const std::string& name : options.spaces) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(base));
  rocksdb::Status status =
      rocksdb::DB::Open(rocksdb::DBOptions(base), dir_, descriptors, &all_handles_, &db_);
  if (!status.ok()) {
    db_ = nullptr;
    all_handles_.clear();
    if (status.IsIOError() && status.ToString().find("lock") != std::string::npos) {
      return Status::IOError("rocksdb store '" + dir_ +
                             "' is locked by another process: " + status.ToString());
    }
    return RocksError(status, "open '" + dir_ + "'");
  }
  for (const std::string& space : options.spaces) {
    const auto at = std::find(names.begin(), names.end(), space) - names.begin();
    spaces_.push_back(all_handles_[static_cast<size_t>(at)]);
  }
  write_options_.sync = options.sync;
  std::ifstream closed(ClosedSeqPath());
  uint64_t closed_seq = 0;
  if (closed >> closed_seq && db_->GetLatestSequenceNumber() < closed_seq) {
    const uint64_t have = db_->GetLatestSequenceNumber();
    for (rocksdb::ColumnFamilyHandle* handle : all_handles_) (void)db_->DestroyColumnFamilyHandle(handle);
    all_handles_.clear();
    spaces_.clear();
    (void)db_->Close();
    delete db_;
    db_ = nullptr;
    return Status::Corruption("rocksdb store '" + dir_ + "' holds commits up to sequence " +
                              std::to_string(have) + " but reached " + std::to_string(closed_seq) +
                              " before its last close: its files are damaged (restore a copy)");
  }
  return Status::OK();
}

class RocksWriteTxn;

// Wraps a RocksDB iterator (a snapshot's, or a write batch's over the live database) and copies the entry
// it lands on.
class RocksCursor final : public Cursor {
 public:
  // `owner` (write txns only) says when the txn wrote since this cursor's last move, makes new iterators,
  // and detaches the cursor when the txn ends.
  RocksCursor(std::unique_ptr<rocksdb::Iterator> it, SpaceId space, RocksWriteTxn* owner, uint64_t generation)
      : it_(std::move(it)), space_(space), owner_(owner), generation_(generation) {}
  ~RocksCursor() override;
  RocksCursor(const RocksCursor&) = delete;
  RocksCursor& operator=(const RocksCursor&) = delete;

  void SeekToFirst() override {
    if (Refresh()) Land([this] { it_->SeekToFirst(); });
  }
  void SeekToLast() override {
    if (Refresh()) Land([this] { it_->SeekToLast(); });
  }
  void Seek(std::string_view key) override {
    target_.assign(key);  // `key` may be this cursor's own key(), which the move overwrites
    if (Refresh()) Land([this] { it_->Seek(ToSlice(target_)); });
  }
  void SeekForPrev(std::string_view key) override {
    target_.assign(key);
    if (Refresh()) Land([this] { it_->SeekForPrev(ToSlice(target_)); });
  }
  void Next() override {
    if (!valid_) return;
    const bool stale = Stale();
    if (!Refresh()) return;
    Land([this, stale] {
      if (!stale) return it_->Next();
      it_->Seek(ToSlice(key_));
      if (it_->Valid() && FromSlice(it_->key()) == key_) it_->Next();
    });
  }
  void Prev() override {
    if (!valid_) return;
    const bool stale = Stale();
    if (!Refresh()) return;
    Land([this, stale] {
      if (!stale) return it_->Prev();
      it_->SeekForPrev(ToSlice(key_));
      if (it_->Valid() && FromSlice(it_->key()) == key_) it_->Prev();
    });
  }
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

  // Called by the owning write txn as it ends: the iterator reads its batch.
  void Detach() {
    it_.reset();
    owner_ = nullptr;
    valid_ = false;
    status_ = TxnFinishedError();
  }

 private:
  inline bool Stale() const;
  // Replaces a write-txn iterator that predates the txn's latest write. False when the cursor is unusable.
  inline bool Refresh();

  template <typename Fn>
  void Land(Fn move) {
    move();
    if (it_->Valid()) {
      key_.assign(FromSlice(it_->key()));
      value_.assign(FromSlice(it_->value()));
      valid_ = true;
      return;
    }
    valid_ = false;
    if (rocksdb::Status status = it_->status(); !status.ok()) status_ = RocksError(status, "cursor");
  }

  std::unique_ptr<rocksdb::Iterator> it_;
  const SpaceId space_;
  RocksWriteTxn* owner_;
  uint64_t generation_;  // the owner's writes when it_ was made
  bool valid_ = false;
  std::string key_;
  std::string value_;
  std::string target_;
  Status status_;
};

class RocksReadTxn final : public ReadTxn {
 public:
  explicit RocksReadTxn(std::shared_ptr<RocksEnv> env)
      : env_(std::move(env)), snapshot_(env_->db()->GetSnapshot()) {
    options_.snapshot = snapshot_;
  }
  ~RocksReadTxn() override { env_->db()->ReleaseSnapshot(snapshot_); }
  RocksReadTxn(const RocksReadTxn&) = delete;
  RocksReadTxn& operator=(const RocksReadTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    rocksdb::Status status = env_->db()->Get(options_, env_->space(space), ToSlice(key), value);
    if (status.IsNotFound()) return Status::NotFound("no such key");
    return status.ok() ? Status::OK() : RocksError(status, "get");
  }

  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    return std::make_unique<RocksCursor>(
        std::unique_ptr<rocksdb::Iterator>(env_->db()->NewIterator(options_, env_->space(space))), space,
        nullptr, 0);
  }

 private:
  const std::shared_ptr<RocksEnv> env_;
  const rocksdb::Snapshot* const snapshot_;
  rocksdb::ReadOptions options_;
};

class RocksWriteTxn final : public WriteTxn {
 public:
  explicit RocksWriteTxn(std::shared_ptr<RocksEnv> env)
      : env_(std::move(env)),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        owner_(std::this_thread::get_id()) {}
  ~RocksWriteTxn() override {
    if (finished_) return;
    CheckWriterThread(owner_);
    End();
  }
  RocksWriteTxn(const RocksWriteTxn&) = delete;
  RocksWriteTxn& operator=(const RocksWriteTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    rocksdb::Status status =
        batch_.GetFromBatchAndDB(env_->db(), read_options_, env_->space(space), ToSlice(key), value);
    if (status.IsNotFound()) return Status::NotFound("no such key");
    return status.ok() ? Status::OK() : RocksError(status, "get");
  }

  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = Usable();
    if (status.ok()) status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    auto cursor = std::make_unique<RocksCursor>(NewIterator(space), space, this, writes_);
    cursors_.push_back(cursor.get());
    return cursor;
  }

  Status Put(SpaceId space, std::string_view key, std::string_view value) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    OUTPOST_RETURN_IF_ERROR(CheckValue(value));
    ++writes_;
    return Check(batch_.Put(env_->space(space), ToSlice(key), ToSlice(value)), "put");
  }

  // RocksDB has no insert-if-absent, but the writer gate keeps every other writer out until this txn ends,
  // so one lookup in the batch and the live database followed by the Put cannot race: the key found absent
  // stays absent until the Put.
  Status Insert(SpaceId space, std::string_view key, std::string_view value) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    OUTPOST_RETURN_IF_ERROR(CheckValue(value));
    rocksdb::PinnableSlice existing;
    rocksdb::Status found =
        batch_.GetFromBatchAndDB(env_->db(), read_options_, env_->space(space), ToSlice(key), &existing);
    if (found.ok()) return Status::AlreadyExists("key exists");
    if (!found.IsNotFound()) return Check(found, "insert");  // as Put's failures, it spoils the txn
    ++writes_;
    return Check(batch_.Put(env_->space(space), ToSlice(key), ToSlice(value)), "insert");
  }

  Status Delete(SpaceId space, std::string_view key) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    ++writes_;
    return Check(batch_.Delete(env_->space(space), ToSlice(key)), "delete");
  }

  Status Commit() override {
    if (finished_) return TxnFinishedError();
    CheckWriterThread(owner_);
    Status result = failed_;
    if (result.ok() && batch_.GetWriteBatch()->Count() > 0) {
      rocksdb::Status status = env_->db()->Write(env_->write_options(), batch_.GetWriteBatch());
      if (!status.ok()) {
        result = RocksError(status, "commit in '" + env_->dir() + "'");
        env_->NoteWriteError();
      }
    }
    End();
    return result;
  }

  // A new iterator over the batch and the live database, for a cursor of `space`.
  std::unique_ptr<rocksdb::Iterator> NewIterator(SpaceId space) {
    rocksdb::ColumnFamilyHandle* family = env_->space(space);
    return std::unique_ptr<rocksdb::Iterator>(
        batch_.NewIteratorWithBase(family, env_->db()->NewIterator(read_options_, family)));
  }
  void ForgetCursor(RocksCursor* cursor) {
    cursors_.erase(std::find(cursors_.begin(), cursors_.end(), cursor));
  }
  uint64_t writes() const { return writes_; }

 private:
  Status Usable() const {
    if (finished_) return TxnFinishedError();
    return failed_;
  }
  // A batch refuses a write only when it cannot grow, and Insert's lookup only when the database fails;
  // either spoils the txn.
  Status Check(const rocksdb::Status& status, std::string_view what) {
    if (status.ok()) return Status::OK();
    failed_ = RocksError(status, what);
    return failed_;
  }
  void End() {
    finished_ = true;
    for (RocksCursor* cursor : cursors_) cursor->Detach();
    cursors_.clear();
    batch_.Clear();
    env_->ReleaseWriter();
  }

  const std::shared_ptr<RocksEnv> env_;
  rocksdb::WriteBatchWithIndex batch_;
  rocksdb::ReadOptions read_options_;  // the live database: no other writer can change it meanwhile
  const std::thread::id owner_;
  bool finished_ = false;
  Status failed_;
  uint64_t writes_ = 0;  // bumped by every write, so cursors know to rebuild their iterator
  std::vector<RocksCursor*> cursors_;
};

RocksCursor::~RocksCursor() {
  it_.reset();
  if (owner_ != nullptr) owner_->ForgetCursor(this);
}

bool RocksCursor::Stale() const { return owner_ != nullptr && generation_ != owner_->writes(); }

bool RocksCursor::Refresh() {
  if (!status_.ok()) return false;
  if (Stale()) {
    it_ = owner_->NewIterator(space_);
    generation_ = owner_->writes();
  }
  return true;
}

class RocksStorage final : public Storage {
 public:
  RocksStorage(std::string uri, std::shared_ptr<RocksEnv> env) : uri_(std::move(uri)), env_(std::move(env)) {}

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    return std::unique_ptr<ReadTxn>(std::make_unique<RocksReadTxn>(env_));
  }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    env_->AcquireWriter();
    if (Status status = env_->ResumeIfNeeded(); !status.ok()) {
      env_->ReleaseWriter();
      return status;
    }
    return std::unique_ptr<WriteTxn>(std::make_unique<RocksWriteTxn>(env_));
  }
  const std::string& uri() const override { return uri_; }

  Status Backup(const std::string& destination) override {
    OUTPOST_RETURN_IF_ERROR(storage_internal::CheckBackupDestination("rocksdb", destination));
    Status status = env_->Checkpoint(destination);
    if (!status.ok()) storage_internal::RemoveBackupLeftovers(destination);
    return status;
  }

 private:
  const std::string uri_;
  const std::shared_ptr<RocksEnv> env_;
};

}  // namespace

Result<std::unique_ptr<Storage>> OpenRocksdbStorage(std::string uri, const std::string& dir,
                                                    const StorageOptions& options) {
  auto env = std::make_shared<RocksEnv>(dir);
  if (options.read_only) {
    OUTPOST_RETURN_IF_ERROR(storage_internal::CheckExistingStoreDir("rocksdb", dir, "CURRENT"));
    OUTPOST_RETURN_IF_ERROR(env->OpenReadOnly(options));
  } else {
    OUTPOST_RETURN_IF_ERROR(storage_internal::EnsureDirectory("rocksdb", dir));
    OUTPOST_RETURN_IF_ERROR(env->Open(options));
  }
  return std::unique_ptr<Storage>(std::make_unique<RocksStorage>(std::move(uri), std::move(env)));
}

}  // namespace outpost
