// Copyright 2026 The Outpost Authors.
//
// Storage: ordered key-value keyspaces ("spaces") with atomic multi-key write transactions and consistent
// (snapshot) reads. Keys and values are byte strings compared with memcmp order. The set of spaces is fixed
// when the store is opened: `StorageOptions::spaces[i]` is addressed as SpaceId i.
//
// Concurrency: any number of ReadTxns may be open at once, from any threads, and see the snapshot that was
// committed when they began. One WriteTxn at a time: BeginWrite blocks while another is open. A WriteTxn
// sees its own writes (Get and cursors). A WriteTxn destroyed without Commit aborts and leaves nothing.
// A thread must not hold a ReadTxn while it waits in BeginWrite for a writer that it also waits on.
// A txn and its cursors are used by one thread at a time; a ReadTxn may move between threads, but a WriteTxn
// must be committed or destroyed on the thread that began it (LMDB's writer lock belongs to that thread; a
// violation aborts the process rather than leaving every later writer blocked). Holding a ReadTxn never
// blocks writers, commits or map growth.
//
// Durability: after Commit returns ok, the writes survive a process crash, and a power loss too when the
// store was opened with sync (the default). Without sync (`?sync=0`) a power loss or kernel crash may undo
// the last commits, never a part of one: lmdb MDB_NOSYNC, sqlite WAL with synchronous=NORMAL, rocksdb
// WriteOptions::sync=false (docs/backends.md).
//
// Backends: memory (`memory:` private, `memory:NAME` process-wide and reopenable), lmdb (`lmdb:DIR`, the
// default), sqlite (`sqlite:FILE`, one database file in WAL mode, plus FILE-wal and FILE-shm while open),
// rocksdb (`rocksdb:DIR`, one column family per space). Each maps its own errors to Status at this boundary
// (MDB_MAP_FULL, SQLITE_FULL → Full; SQLITE_BUSY → Busy; rocksdb::Status::IOError → IOError, ...).
//
// Full (lmdb): the map grows by doubling at BeginWrite. A txn that outgrows the current map fails with Full
// and changes nothing; the next BeginWrite grows the map, so retrying the txn succeeds until map_bytes_max
// is reached, after which Full persists (committed data stays readable). Full (sqlite): map_bytes_max caps
// the file (max_page_count); a txn that would grow it further fails with Full and changes nothing, until
// deletes free pages. Full (rocksdb, and sqlite or lmdb on a full disk): the disk is full.
// Values (sqlite): at most 10^9 bytes (SQLite's SQLITE_MAX_LENGTH), beyond which Put is InvalidArgument.
#ifndef OUTPOST_STORAGE_H_
#define OUTPOST_STORAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/export.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

using SpaceId = uint32_t;

struct StorageOptions {
  std::vector<std::string> spaces;  // names of the keyspaces, at most 32
  bool sync = true;                 // false: faster commits that a power loss may undo (not a crash)
  // lmdb: first map size, growing by doubling. Only address space is reserved; the file grows as written.
  uint64_t map_bytes_initial = uint64_t{1} << 30;
  uint64_t map_bytes_max = uint64_t{64} << 30;  // lmdb: beyond this a commit fails with Full
  // Opens an existing store to read it, for tools that look into a store another process may hold open and
  // write (outpost-inspect). Nothing is created or written, and no writer lock is taken: a missing store is
  // an IOError, a missing space NotFound ("store has no space ..."), and BeginWrite answers
  // FailedPrecondition. `sync` and the map sizes do not matter. Per backend:
  // - lmdb: MDB_RDONLY. A reader still takes a slot in DIR/lock.mdb (LMDB's reader table, which keeps a live
  //   writer from reusing the pages being read); a DIR without lock.mdb (a copied store: no process has it
  //   open) is read with MDB_NOLOCK. The one-open-per-process rule holds for read-only opens too.
  // - sqlite: SQLITE_OPEN_READONLY, no flock. On a store another process holds open (WAL mode) each ReadTxn
  //   sees the latest commit at its start; reading needs FILE-shm, which that process keeps.
  // - rocksdb: DB::OpenForReadOnly, no LOCK and no info log; every table file is opened at open, so a live
  //   writer's compactions cannot pull files from under the reader. Reads see the store as it was at open.
  // - memory: only `memory:NAME` of a store that exists in this process (a private `memory:` is refused).
  bool read_only = false;
};

// A position in one space. Invalid until positioned. Keys/values stay valid until the next move. Next and
// Prev on an invalid cursor do nothing. Seek targets may be any bytes, empty or longer than any key. A
// cursor of a WriteTxn sees writes made after it was created; once its txn has committed it is invalid with
// a FailedPrecondition status.
class OUTPOST_EXPORT Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  virtual void Seek(std::string_view key) = 0;         // first key >= key
  virtual void SeekForPrev(std::string_view key) = 0;  // last key <= key
  virtual void Next() = 0;
  virtual void Prev() = 0;
  virtual bool Valid() const = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not ok when the backend failed while moving (Valid() is then false).
  virtual Status status() const = 0;
};

class OUTPOST_EXPORT ReadTxn {
 public:
  virtual ~ReadTxn() = default;
  // NotFound when absent.
  virtual Status Get(SpaceId space, std::string_view key, std::string* value) = 0;
  // The cursor must not outlive the transaction.
  virtual std::unique_ptr<Cursor> NewCursor(SpaceId space) = 0;
};

class OUTPOST_EXPORT WriteTxn : public ReadTxn {
 public:
  // Key: 1..511 bytes (LMDB's limit). Value: up to 1 GiB. Otherwise, or for a SpaceId beyond the store's
  // spaces, InvalidArgument and the txn stays usable. After Full or an IOError the txn is spoilt: later
  // calls and Commit return that error.
  virtual Status Put(SpaceId space, std::string_view key, std::string_view value) = 0;
  // Put if the key is absent, in one step (no Get first): ok when it was absent and is now `value`;
  // AlreadyExists when it is present, and the stored value is left as it was. "Present" is as this txn sees
  // it: a key it put is present, a key it deleted is absent. AlreadyExists does not spoil the txn. Same
  // checks and errors as Put otherwise.
  virtual Status Insert(SpaceId space, std::string_view key, std::string_view value) = 0;
  // Deleting an absent key is ok.
  virtual Status Delete(SpaceId space, std::string_view key) = 0;
  // Makes every write visible and durable at once, or none of them. The txn is finished either way: later
  // calls return FailedPrecondition.
  virtual Status Commit() = 0;
};

class OUTPOST_EXPORT Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<std::unique_ptr<ReadTxn>> BeginRead() = 0;
  virtual Result<std::unique_ptr<WriteTxn>> BeginWrite() = 0;
  // The URI it was opened with.
  virtual const std::string& uri() const = 0;
  // Writes a consistent copy of the whole store to `destination`, a path that must not exist yet (its
  // parent must): the copy holds every txn committed before the backup began, or a later prefix of the
  // commits, never a part of a txn. The store stays in use meanwhile, through this handle and others. Each
  // backend uses its own mechanism, and the copy opens with the same URI scheme at `destination`:
  // - lmdb: mdb_env_copy2 with MDB_CP_COMPACT into a new directory (data.mdb only). Works on a store
  //   opened read_only while another process writes it: one LMDB read txn, which never blocks the writer.
  // - sqlite: SQLite's online backup API (sqlite3_backup_step(-1): one read txn) into a new file. Works on
  //   a read_only handle while another process writes (WAL mode: readers never block the writer).
  // - rocksdb: rocksdb::Checkpoint (after a flush) into a new directory (hard links to the table files
  //   where the filesystem allows, copies otherwise), by the handle that has the store open for writing.
  //   A read_only handle refuses (FailedPrecondition): beside a live writer in another process it may see
  //   the column families at different points, and its checkpoint would be torn.
  // - memory: FailedPrecondition (nothing on disk to copy).
  // The copy is fsynced before this returns. AlreadyExists when `destination` exists; IOError (and no
  // partial copy left behind) when the copy fails.
  virtual Status Backup(const std::string& destination) {
    return Status::FailedPrecondition("store '" + uri() + "' cannot make a backup to '" + destination + "'");
  }
};

// Opens (creating if needed) the store named by `uri`. Errors: InvalidArgument for an unknown scheme or a
// malformed URI; IOError for a missing parent directory, a locked store or an unreadable file.
// URIs: `memory:`, `memory:NAME`, `lmdb:DIR`, `sqlite:FILE`, `rocksdb:DIR`, each optionally followed by
// `?PARAM[&PARAM]`: `sync=0` or `sync=1` overrides options.sync, `map_bytes_max=N` options.map_bytes_max
// (a store that reaches it answers Full). DIR is created when missing, and FILE too, but
// their parent directory must exist. `options` need 1..32 spaces with distinct non-empty names; spaces are
// matched by name, so reopening with more spaces keeps the old ones. Handles on the same `memory:NAME` share
// one store; an lmdb DIR can be open once per process, and a sqlite FILE or rocksdb DIR once at all (an
// flock: in this process or any other). A second open is an IOError until the first handle and all its txns
// are gone. A path that holds something else than a store is an IOError or Corruption, never a crash.
// With options.read_only, see StorageOptions::read_only: nothing is created and the locks above are not
// taken.
OUTPOST_EXPORT Result<std::unique_ptr<Storage>> OpenStorage(std::string_view uri,
                                                            const StorageOptions& options);

constexpr size_t kStorageKeyBytesMax = 511;

}  // namespace outpost

#endif  // OUTPOST_STORAGE_H_
