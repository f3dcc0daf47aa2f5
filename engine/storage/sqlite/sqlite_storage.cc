// Copyright 2026 The Outpost Authors.
//
// File layout (one SQLite database):
//   outpost_spaces(name BLOB PRIMARY KEY, id INTEGER UNIQUE) WITHOUT ROWID   space name -> table number
//   s<id>(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID                 one table per space
//   PRAGMA application_id = 0x4f505354 ("OPST"): a database of something else is refused at open.
//
// Locking, on top of SQLite's own:
// - An flock on the database file makes the store exclusive to one handle, in this process and across
//   processes, so that the writer gate below is the only writer there is: BEGIN IMMEDIATE never waits.
// - The writer gate (a flag and a condition variable) admits one WriteTxn at a time on the writer
//   connection; BeginWrite waits on it.
// - Each connection is used by one txn, so by one thread at a time; connections are opened NOMUTEX.
// Cursors step a prepared `ORDER BY k` statement while nothing changes under them; a write-txn cursor whose
// txn wrote since it last moved restarts its query from its current key, as the LMDB cursor re-seeks.
#include "storage/sqlite/sqlite_storage.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
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

constexpr int kBusyTimeoutMs = 10'000;       // the flock leaves only SQLite's own recovery to wait for
constexpr size_t kReadTxnsMax = 1024;        // open ReadTxns, one connection (and file descriptor) each
constexpr size_t kIdleReadersMax = 8;        // reader connections kept open for the next ReadTxn
constexpr size_t kIdleStatementsMax = 4;     // per connection, space and query
constexpr int kWriterCacheKib = 8 * 1024;    // page cache of the writer connection
constexpr int kReaderCacheKib = 2 * 1024;    // page cache of each reader connection
constexpr int64_t kWalBytesKept = 64 << 20;  // the WAL is truncated to this after a checkpoint
constexpr int32_t kApplicationId = 0x4f505354;
// Pages of a new file. Rows of a WITHOUT ROWID table that exceed about a quarter of a page spill into
// overflow pages; 8 KiB keeps ops of up to about 2 KiB in one page (writing 1000-byte rows is three times
// faster than with 4 KiB pages) and costs small commits little.
constexpr int kPageBytes = 8192;

std::string SizeText(uint64_t bytes) {
  char text[32];
  if (bytes >= (uint64_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%g GiB", static_cast<double>(bytes) / (uint64_t{1} << 30));
  } else {
    std::snprintf(text, sizeof text, "%g MiB", static_cast<double>(bytes) / (uint64_t{1} << 20));
  }
  return text;
}

// `db`, when given, supplies SQLite's message for the last failed call on it (read it before any other call).
Status SqliteError(int rc, std::string_view what, sqlite3* db = nullptr) {
  std::string message = "sqlite ";
  message += what;
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Status::Full(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(message);
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(
          message + " (SQLite takes values of at most " +
          std::to_string(db != nullptr ? sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1) : 1'000'000'000) +
          " bytes)");
    default:
      return Status::IOError(message);
  }
}

// The statements each connection prepares per space.
enum Query : int {
  kGet,
  kPut,
  kInsert,
  kDelete,
  kFirst,
  kLast,
  kAtOrAfter,
  kAfter,
  kAtOrBefore,
  kBefore,
  kQueries
};

std::string QuerySql(Query query, const std::string& table) {
  switch (query) {
    case kGet:
      return "SELECT v FROM " + table + " WHERE k = ?1";
    case kPut:
      return "INSERT INTO " + table + "(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v";
    case kInsert:  // changes no row when the key exists (sqlite3_changes tells)
      return "INSERT INTO " + table + "(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO NOTHING";
    case kDelete:
      return "DELETE FROM " + table + " WHERE k = ?1";
    case kFirst:
      return "SELECT k, v FROM " + table + " ORDER BY k";
    case kLast:
      return "SELECT k, v FROM " + table + " ORDER BY k DESC";
    case kAtOrAfter:
      return "SELECT k, v FROM " + table + " WHERE k >= ?1 ORDER BY k";
    case kAfter:
      return "SELECT k, v FROM " + table + " WHERE k > ?1 ORDER BY k";
    case kAtOrBefore:
      return "SELECT k, v FROM " + table + " WHERE k <= ?1 ORDER BY k DESC";
    case kBefore:
      return "SELECT k, v FROM " + table + " WHERE k < ?1 ORDER BY k DESC";
    case kQueries:
      break;
  }
  return {};
}

// Statements that are the same for every space.
enum Fixed : int { kBegin, kBeginImmediate, kCommit, kRollback, kPin, kFixedCount };

const char* FixedSql(Fixed fixed) {
  switch (fixed) {
    case kBegin:
      return "BEGIN";
    case kBeginImmediate:
      return "BEGIN IMMEDIATE";
    case kCommit:
      return "COMMIT";
    case kRollback:
      return "ROLLBACK";
    case kPin:  // any read starts the read transaction, which pins the snapshot
      return "SELECT 1 FROM outpost_spaces LIMIT 1";
    case kFixedCount:
      break;
  }
  return "";
}

// Binds bytes as a BLOB (never NULL, even when empty). `copy` when the bytes may change before the step.
int BindBytes(sqlite3_stmt* stmt, int index, std::string_view bytes, bool copy) {
  if (bytes.empty()) return sqlite3_bind_zeroblob(stmt, index, 0);
  return sqlite3_bind_blob64(stmt, index, bytes.data(), bytes.size(),
                             copy ? SQLITE_TRANSIENT : SQLITE_STATIC);
}

std::string_view Column(sqlite3_stmt* stmt, int index) {
  const void* data = sqlite3_column_blob(stmt, index);
  const int bytes = sqlite3_column_bytes(stmt, index);
  if (data == nullptr || bytes <= 0) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(bytes)};
}

class Conn;

// A statement borrowed from a connection's cache, given back (reset, unbound) when destroyed.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Conn* conn, SpaceId space, Query query, sqlite3_stmt* stmt)
      : conn_(conn), space_(space), query_(query), stmt_(stmt) {}
  ~Stmt() { Release(); }
  Stmt(Stmt&& other) noexcept
      : conn_(other.conn_),
        space_(other.space_),
        query_(other.query_),
        stmt_(std::exchange(other.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&& other) noexcept {
    if (this != &other) {
      Release();
      conn_ = other.conn_;
      space_ = other.space_;
      query_ = other.query_;
      stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }
  inline void Release();

 private:
  Conn* conn_ = nullptr;
  SpaceId space_ = 0;
  Query query_ = kGet;
  sqlite3_stmt* stmt_ = nullptr;
};

// One SQLite connection with its prepared statements. Used by one thread at a time.
class Conn {
 public:
  Conn(sqlite3* db, const std::vector<std::string>* tables) : db_(db), tables_(tables) {}
  ~Conn() {
    for (auto& per_space : idle_) {
      for (auto& stmts : per_space) {
        for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
      }
    }
    for (sqlite3_stmt* stmt : fixed_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }

  // A statement for `query` on `space`, prepared once per connection and reused.
  Result<Stmt> Borrow(SpaceId space, Query query) {
    if (idle_.size() < tables_->size()) idle_.resize(tables_->size());
    std::vector<sqlite3_stmt*>& idle = idle_[space][query];
    if (!idle.empty()) {
      sqlite3_stmt* stmt = idle.back();
      idle.pop_back();
      return Stmt(this, space, query, stmt);
    }
    const std::string sql = QuerySql(query, (*tables_)[space]);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, "prepare", db_);
    return Stmt(this, space, query, stmt);
  }
  void GiveBack(SpaceId space, Query query, sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    std::vector<sqlite3_stmt*>& idle = idle_[space][query];
    if (idle.size() < kIdleStatementsMax) {
      idle.push_back(stmt);
    } else {
      sqlite3_finalize(stmt);
    }
  }

  // Runs one of the fixed statements to completion; returns SQLite's code (SQLITE_OK on success).
  int Run(Fixed fixed) {
    sqlite3_stmt*& stmt = fixed_[fixed];
    if (stmt == nullptr) {
      int rc = sqlite3_prepare_v3(db_, FixedSql(fixed), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return rc;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
      sqlite3_reset(stmt);  // returns the same error; errmsg still describes it
      return rc;
    }
    sqlite3_reset(stmt);
    return SQLITE_OK;
  }
  Status RunStatus(Fixed fixed, std::string_view what) {
    int rc = Run(fixed);
    return rc == SQLITE_OK ? Status::OK() : SqliteError(rc, what, db_);
  }

  // Runs `sql` (statements without parameters), ignoring any rows.
  Status Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return Status::OK();
    Status status = SqliteError(rc, "'" + sql + "'", db_);
    sqlite3_free(error);
    return status;
  }
  // The first column of the first row of `sql`, as text ("" when there is no row); `key` binds ?1.
  Result<std::string> QueryText(const std::string& sql, std::string_view key = {}) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, "'" + sql + "'", db_);
    if (!key.empty()) rc = BindBytes(stmt, 1, key, false);
    std::string text;
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* value = sqlite3_column_text(stmt, 0);
      if (value != nullptr) text = reinterpret_cast<const char*>(value);
      rc = SQLITE_DONE;
    }
    Status status = rc == SQLITE_DONE ? Status::OK() : SqliteError(rc, "'" + sql + "'", db_);
    sqlite3_finalize(stmt);
    if (!status.ok()) return status;
    return text;
  }

 private:
  sqlite3* const db_;
  const std::vector<std::string>* const tables_;  // per SpaceId; owned by the env
  std::vector<std::array<std::vector<sqlite3_stmt*>, kQueries>> idle_;
  std::array<sqlite3_stmt*, kFixedCount> fixed_{};
};

void Stmt::Release() {
  if (stmt_ != nullptr) conn_->GiveBack(space_, query_, std::exchange(stmt_, nullptr));
}

// The open database; shared by its Storage handle and every txn, so it closes after the last one.
class SqliteEnv {
 public:
  SqliteEnv(std::string file, StorageOptions options)
      : file_(std::move(file)), options_(std::move(options)) {}
  ~SqliteEnv() {
    idle_readers_.clear();
    writer_.reset();  // the last connection to close checkpoints the WAL into the database and removes it
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }
  SqliteEnv(const SqliteEnv&) = delete;
  SqliteEnv& operator=(const SqliteEnv&) = delete;

  Status Open();

  Conn& writer() { return *writer_; }
  size_t space_count() const { return tables_.size(); }
  const std::string& file() const { return file_; }

  void AcquireWriter() { writer_gate_.Acquire(); }
  void ReleaseWriter() { writer_gate_.Release(); }

  // A reader connection for one ReadTxn: an idle one, or a new one.
  Result<std::unique_ptr<Conn>> TakeReader() {
    {
      std::lock_guard<std::mutex> lock(readers_mu_);
      if (readers_in_use_ >= kReadTxnsMax) {
        return Status::Busy("sqlite: more than " + std::to_string(kReadTxnsMax) + " read txns are open");
      }
      ++readers_in_use_;
      if (!idle_readers_.empty()) {
        std::unique_ptr<Conn> conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return conn;
      }
    }
    Result<std::unique_ptr<Conn>> conn = OpenConn(false);
    if (!conn.ok()) GiveReader(nullptr);
    return conn;
  }
  // Takes back a reader connection (null: one that failed and is gone).
  void GiveReader(std::unique_ptr<Conn> conn) {
    std::unique_ptr<Conn> closing;
    std::lock_guard<std::mutex> lock(readers_mu_);
    --readers_in_use_;
    if (conn == nullptr) return;
    if (idle_readers_.size() < kIdleReadersMax) {
      idle_readers_.push_back(std::move(conn));
    } else {
      closing = std::move(conn);
    }
  }

  Status FullError() const {
    return Status::Full("sqlite store '" + file_ + "' is full: it reached map_bytes_max (" +
                        SizeText(options_.map_bytes_max) +
                        ") or the disk is full; the txn was rolled back; free space, delete data or raise "
                        "map_bytes_max");
  }

 private:
  Result<std::unique_ptr<Conn>> OpenConn(bool writer);
  Status CreateSpaces();
  // StorageOptions::read_only: no flock, no writer connection, nothing created; finds the spaces' tables.
  Status OpenReadOnly();

  const std::string file_;
  const StorageOptions options_;
  int lock_fd_ = -1;
  // Read-only, and no process has the store open (no FILE-shm): opened immutable, because a read-only
  // connection to a WAL database would otherwise create FILE-wal and FILE-shm and leave them behind.
  bool immutable_ = false;
  std::vector<std::string> tables_;  // per SpaceId
  std::unique_ptr<Conn> writer_;

  storage_internal::WriterGate writer_gate_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;
  size_t readers_in_use_ = 0;
};

// "file:PATH?immutable=1" with PATH percent-encoded (SQLite's URI filenames).
std::string ImmutableUri(const std::string& path) {
  std::string uri = "file:";
  for (const unsigned char c : path) {
    if (std::isalnum(c) != 0 || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      uri += hex;
    }
  }
  return uri + "?immutable=1";
}

Result<std::unique_ptr<Conn>> SqliteEnv::OpenConn(bool writer) {
  sqlite3* db = nullptr;
  const int open_mode = options_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  int rc = immutable_ ? sqlite3_open_v2(ImmutableUri(file_).c_str(), &db,
                                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr)
                      : sqlite3_open_v2(file_.c_str(), &db, open_mode | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = Status::IOError("sqlite cannot open '" + file_ +
                                    "': " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return status;
  }
  auto conn = std::make_unique<Conn>(db, &tables_);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (!writer) {
    OUTPOST_RETURN_IF_ERROR(
        conn->Exec("PRAGMA query_only = ON; PRAGMA cache_size = -" + std::to_string(kReaderCacheKib)));
    return conn;
  }
  // Takes effect only in a new, empty file.
  OUTPOST_RETURN_IF_ERROR(conn->Exec("PRAGMA page_size = " + std::to_string(kPageBytes)));
  // The first read of the file: a file that is not a database fails here.
  Result<std::string> mode = conn->QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) {
    if (mode.status().code() == Status::Code::kCorruption) {
      return Status::IOError("sqlite file '" + file_ +
                             "' is not a readable database: " + mode.status().message());
    }
    return mode.status();
  }
  if (*mode != "wal")
    return Status::IOError("sqlite could not put '" + file_ + "' in WAL mode (got " + *mode + ")");
  // Deleted rows need not be zeroed (Debian's build turns secure_delete on); the page cap is map_bytes_max.
  OUTPOST_ASSIGN_OR_RETURN(std::string page_bytes, conn->QueryText("PRAGMA page_size"));
  const uint64_t pages_max =
      std::max<uint64_t>(options_.map_bytes_max / std::max<uint64_t>(std::stoull("0" + page_bytes), 512), 16);
  OUTPOST_RETURN_IF_ERROR(
      conn->Exec(std::string("PRAGMA synchronous = ") + (options_.sync ? "FULL" : "NORMAL") +
                 "; PRAGMA secure_delete = OFF; PRAGMA cache_size = -" + std::to_string(kWriterCacheKib) +
                 "; PRAGMA journal_size_limit = " + std::to_string(kWalBytesKept) +
                 "; PRAGMA max_page_count = " + std::to_string(pages_max)));
  return conn;
}

Status SqliteEnv::Open() {
  if (options_.read_only) return OpenReadOnly();
  // Created here rather than by SQLite, so that a missing directory gets a clear error and the flock has
  // a file to hold; owner-only, and SQLite gives the -wal and -shm files the mode of this one.
  lock_fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, storage_internal::kStoreFileMode);
  if (lock_fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::IOError("cannot create sqlite file '" + file_ +
                             "': its parent directory does not exist");
    }
    if (err == EISDIR) return Status::IOError("sqlite path '" + file_ + "' is a directory, not a file");
    return Status::IOError("cannot open sqlite file '" + file_ + "': " + ErrnoText(err));
  }
  OUTPOST_RETURN_IF_ERROR(storage_internal::LockExclusive(lock_fd_, "sqlite", file_));
  OUTPOST_ASSIGN_OR_RETURN(writer_, OpenConn(true));
  return CreateSpaces();
}

Status SqliteEnv::OpenReadOnly() {
  struct stat st;
  if (::stat(file_.c_str(), &st) != 0) {
    return Status::IOError("no sqlite store at '" + file_ + "': " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::IOError("sqlite path '" + file_ + "' is not a file (expected an sqlite store file)");
  }
  bool has_shm = ::stat((file_ + "-shm").c_str(), &st) == 0;
  bool has_wal = ::stat((file_ + "-wal").c_str(), &st) == 0;
  // A writer that is opening the store makes the -wal file an instant before the -shm: looked at again for
  // up to 100 ms before the store is taken for one that was not closed cleanly.
  for (int i = 0; i < 20 && has_wal && !has_shm; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    has_shm = ::stat((file_ + "-shm").c_str(), &st) == 0;
    has_wal = ::stat((file_ + "-wal").c_str(), &st) == 0;
  }
  if (has_wal && !has_shm) {
    return Status::FailedPrecondition("sqlite store '" + file_ +
                                      "' was not closed cleanly (a -wal file without -shm): open it once "
                                      "writable (its app) to recover it, then read it");
  }
  immutable_ = !has_shm;
  // The first reads of the file (the reader's pragmas, then this one): a file that is not a database fails.
  Result<std::unique_ptr<Conn>> opened = OpenConn(false);
  if (!opened.ok()) {
    return Status::IOError("sqlite file '" + file_ +
                           "' is not a readable database: " + opened.status().message());
  }
  std::unique_ptr<Conn> conn = std::move(*opened);
  Result<std::string> app = conn->QueryText("PRAGMA application_id");
  if (!app.ok()) {
    return Status::IOError("sqlite file '" + file_ +
                           "' is not a readable database: " + app.status().message());
  }
  if (*app != std::to_string(kApplicationId)) {
    return Status::IOError("sqlite file '" + file_ + "' is not an Outpost store (application_id " + *app +
                           ", expected " + std::to_string(kApplicationId) + ")");
  }
  for (const std::string& space : options_.spaces) {
    OUTPOST_ASSIGN_OR_RETURN(std::string id,
                             conn->QueryText("SELECT id FROM outpost_spaces WHERE name = ?1", space));
    if (id.empty()) return Status::NotFound("sqlite store '" + file_ + "' has no space '" + space + "'");
    tables_.push_back("s" + id);
  }
  return Status::OK();
}

// Finds or creates the table of every space, in one txn.
Status SqliteEnv::CreateSpaces() {
  Conn& conn = *writer_;
  OUTPOST_RETURN_IF_ERROR(conn.RunStatus(kBeginImmediate, "begin"));
  auto body = [&]() -> Status {
    OUTPOST_ASSIGN_OR_RETURN(std::string app, conn.QueryText("PRAGMA application_id"));
    if (app != "0" && app != std::to_string(kApplicationId)) {
      return Status::IOError("sqlite file '" + file_ + "' belongs to another application (application_id " +
                             app + ")");
    }
    if (app == "0") {  // a new file (setting it again would write a page at every open)
      OUTPOST_RETURN_IF_ERROR(conn.Exec("PRAGMA application_id = " + std::to_string(kApplicationId)));
    }
    OUTPOST_RETURN_IF_ERROR(conn.Exec(
        "CREATE TABLE IF NOT EXISTS outpost_spaces(name BLOB PRIMARY KEY NOT NULL, id INTEGER NOT NULL "
        "UNIQUE) WITHOUT ROWID"));
    for (const std::string& space : options_.spaces) {
      OUTPOST_ASSIGN_OR_RETURN(std::string id,
                               conn.QueryText("SELECT id FROM outpost_spaces WHERE name = ?1", space));
      if (id.empty()) {
        OUTPOST_ASSIGN_OR_RETURN(id, conn.QueryText("SELECT coalesce(max(id), 0) + 1 FROM outpost_spaces"));
        sqlite3_stmt* insert = nullptr;
        int rc = sqlite3_prepare_v2(conn.db(), "INSERT INTO outpost_spaces(name, id) VALUES (?1, ?2)", -1,
                                    &insert, nullptr);
        if (rc == SQLITE_OK) rc = BindBytes(insert, 1, space, false);
        if (rc == SQLITE_OK) rc = sqlite3_bind_int64(insert, 2, std::stoll(id));
        if (rc == SQLITE_OK) rc = sqlite3_step(insert);
        Status status = rc == SQLITE_DONE ? Status::OK() : SqliteError(rc, "add space", conn.db());
        sqlite3_finalize(insert);
        OUTPOST_RETURN_IF_ERROR(status);
      }
      tables_.push_back("s" + id);
      OUTPOST_RETURN_IF_ERROR(conn.Exec("CREATE TABLE IF NOT EXISTS " + tables_.back() +
                                        "(k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID"));
    }
    return Status::OK();
  };
  Status status = body();
  if (status.ok()) status = conn.RunStatus(kCommit, "commit new spaces");
  if (!sqlite3_get_autocommit(conn.db())) conn.Run(kRollback);
  if (!status.ok()) tables_.clear();
  return status;
}

Status GetInto(Conn& conn, SpaceId space, std::string_view key, std::string* value) {
  OUTPOST_ASSIGN_OR_RETURN(Stmt stmt, conn.Borrow(space, kGet));
  int rc = BindBytes(stmt.get(), 1, key, false);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) {
    value->assign(Column(stmt.get(), 0));
    return Status::OK();
  }
  if (rc == SQLITE_DONE) return Status::NotFound("no such key");
  return SqliteError(rc, "get", conn.db());
}

class SqliteWriteTxn;

// Steps one `ORDER BY k` statement while it stays valid; copies each entry, since the statement's row
// goes away at the next step. Errors are sticky.
class SqliteCursor final : public Cursor {
 public:
  // `owner` (write txns only) tells the cursor when the txn wrote since its last move, and detaches it
  // when the txn ends.
  SqliteCursor(Conn* conn, SpaceId space, SqliteWriteTxn* owner)
      : conn_(conn), space_(space), owner_(owner) {}
  ~SqliteCursor() override;
  SqliteCursor(const SqliteCursor&) = delete;
  SqliteCursor& operator=(const SqliteCursor&) = delete;

  void SeekToFirst() override { Start(kFirst, true, nullptr); }
  void SeekToLast() override { Start(kLast, false, nullptr); }
  void Seek(std::string_view key) override {
    target_.assign(key);  // `key` may be this cursor's own key(), which the move overwrites
    Start(kAtOrAfter, true, &target_);
  }
  void SeekForPrev(std::string_view key) override {
    target_.assign(key);
    Start(kAtOrBefore, false, &target_);
  }
  void Next() override {
    if (!status_.ok() || !valid_) return;
    if (stmt_ && forward_ && Fresh()) return Step();
    target_ = key_;
    Start(kAfter, true, &target_);
  }
  void Prev() override {
    if (!status_.ok() || !valid_) return;
    if (stmt_ && !forward_ && Fresh()) return Step();
    target_ = key_;
    Start(kBefore, false, &target_);
  }
  bool Valid() const override { return valid_; }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

  // Called by the owning write txn as it ends, before it commits or rolls back.
  void Detach() {
    stmt_.Release();
    owner_ = nullptr;
    conn_ = nullptr;
    valid_ = false;
    status_ = TxnFinishedError();
  }

 private:
  inline bool Fresh() const;
  inline uint64_t Generation() const;

  void Start(Query query, bool forward, const std::string* target) {
    if (!status_.ok()) return;
    stmt_.Release();
    Result<Stmt> stmt = conn_->Borrow(space_, query);
    if (!stmt.ok()) return Fail(stmt.status());
    stmt_ = std::move(stmt).value();
    if (target != nullptr) {
      int rc = BindBytes(stmt_.get(), 1, *target, true);
      if (rc != SQLITE_OK) return Fail(SqliteError(rc, "cursor", conn_->db()));
    }
    forward_ = forward;
    generation_ = Generation();
    Step();
  }
  void Step() {
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) {
      key_.assign(Column(stmt_.get(), 0));
      value_.assign(Column(stmt_.get(), 1));
      valid_ = true;
    } else if (rc == SQLITE_DONE) {
      valid_ = false;
      stmt_.Release();
    } else {
      Fail(SqliteError(rc, "cursor", conn_->db()));
    }
  }
  void Fail(Status status) {
    stmt_.Release();
    valid_ = false;
    status_ = std::move(status);
  }

  Conn* conn_;
  const SpaceId space_;
  SqliteWriteTxn* owner_;
  Stmt stmt_;                // positioned on the current entry; empty when no move is pending
  bool forward_ = true;      // the direction stmt_ runs in
  uint64_t generation_ = 0;  // the owner's writes when stmt_ started
  bool valid_ = false;
  std::string key_;
  std::string value_;
  std::string target_;
  Status status_;
};

class SqliteReadTxn final : public ReadTxn {
 public:
  SqliteReadTxn(std::shared_ptr<SqliteEnv> env, std::unique_ptr<Conn> conn)
      : env_(std::move(env)), conn_(std::move(conn)) {}
  ~SqliteReadTxn() override {
    // Ends the read transaction (releasing its snapshot); a connection that cannot end it is closed.
    if (conn_->Run(kCommit) != SQLITE_OK) conn_.reset();
    env_->GiveReader(std::move(conn_));
  }
  SqliteReadTxn(const SqliteReadTxn&) = delete;
  SqliteReadTxn& operator=(const SqliteReadTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    return GetInto(*conn_, space, key, value);
  }
  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    return std::make_unique<SqliteCursor>(conn_.get(), space, nullptr);
  }

 private:
  const std::shared_ptr<SqliteEnv> env_;
  std::unique_ptr<Conn> conn_;
};

class SqliteWriteTxn final : public WriteTxn {
 public:
  explicit SqliteWriteTxn(std::shared_ptr<SqliteEnv> env)
      : env_(std::move(env)), conn_(&env_->writer()), owner_(std::this_thread::get_id()) {}
  ~SqliteWriteTxn() override {
    if (finished_) return;
    CheckWriterThread(owner_);
    static_cast<void>(End(false));  // an abort has no one to report to
  }
  SqliteWriteTxn(const SqliteWriteTxn&) = delete;
  SqliteWriteTxn& operator=(const SqliteWriteTxn&) = delete;

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    return GetInto(*conn_, space, key, value);
  }

  std::unique_ptr<Cursor> NewCursor(SpaceId space) override {
    Status status = Usable();
    if (status.ok()) status = CheckSpace(space, env_->space_count());
    if (!status.ok()) return std::make_unique<ErrorCursor>(std::move(status));
    auto cursor = std::make_unique<SqliteCursor>(conn_, space, this);
    cursors_.push_back(cursor.get());
    return cursor;
  }

  Status Put(SpaceId space, std::string_view key, std::string_view value) override {
    return Write(space, key, value, kPut);
  }

  Status Insert(SpaceId space, std::string_view key, std::string_view value) override {
    return Write(space, key, value, kInsert);
  }

  Status Delete(SpaceId space, std::string_view key) override {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    Result<Stmt> stmt = conn_->Borrow(space, kDelete);
    if (!stmt.ok()) return stmt.status();
    ++writes_;
    int rc = BindBytes(stmt->get(), 1, key, false);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt->get());
    return rc == SQLITE_DONE ? Status::OK() : Fail(rc, "delete");
  }

  Status Commit() override {
    if (finished_) return TxnFinishedError();
    CheckWriterThread(owner_);
    return End(true);
  }

  void ForgetCursor(SqliteCursor* cursor) {
    cursors_.erase(std::find(cursors_.begin(), cursors_.end(), cursor));
  }
  uint64_t writes() const { return writes_; }

 private:
  Status Usable() const {
    if (finished_) return TxnFinishedError();
    return failed_;
  }
  // One kPut or kInsert statement. kInsert's DO NOTHING changes no row when the key exists: AlreadyExists,
  // with the txn as it was.
  Status Write(SpaceId space, std::string_view key, std::string_view value, Query query) {
    OUTPOST_RETURN_IF_ERROR(Usable());
    OUTPOST_RETURN_IF_ERROR(CheckSpace(space, env_->space_count()));
    OUTPOST_RETURN_IF_ERROR(CheckKey(key));
    OUTPOST_RETURN_IF_ERROR(CheckValue(value));
    Result<Stmt> stmt = conn_->Borrow(space, query);
    if (!stmt.ok()) return stmt.status();
    ++writes_;
    int rc = BindBytes(stmt->get(), 1, key, false);
    if (rc == SQLITE_OK) rc = BindBytes(stmt->get(), 2, value, false);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt->get());
    if (rc != SQLITE_DONE) return Fail(rc, query == kInsert ? "insert" : "put");
    if (query == kInsert && sqlite3_changes(conn_->db()) == 0) return Status::AlreadyExists("key exists");
    return Status::OK();
  }
  // A value SQLite refuses as too big leaves the txn as it was; any other failure (a full store, an I/O
  // error, SQLite having rolled the txn back) spoils it, so later calls and Commit return the same error.
  Status Fail(int rc, std::string_view what) {
    Status status = (rc & 0xff) == SQLITE_FULL
                        ? env_->FullError()
                        : SqliteError(rc, std::string(what) + " in '" + env_->file() + "'", conn_->db());
    if (status.code() != Status::Code::kInvalidArgument || sqlite3_get_autocommit(conn_->db())) {
      failed_ = status;
    }
    return status;
  }
  Status End(bool commit) {
    finished_ = true;
    for (SqliteCursor* cursor : cursors_) cursor->Detach();
    cursors_.clear();
    Status result = failed_;
    if (commit && result.ok()) {
      int rc = conn_->Run(kCommit);
      if (rc != SQLITE_OK) {
        result = (rc & 0xff) == SQLITE_FULL
                     ? env_->FullError()
                     : SqliteError(rc, "commit in '" + env_->file() + "'", conn_->db());
      }
    }
    if (!sqlite3_get_autocommit(conn_->db())) conn_->Run(kRollback);
    env_->ReleaseWriter();
    return result;
  }

  const std::shared_ptr<SqliteEnv> env_;
  Conn* const conn_;
  const std::thread::id owner_;
  bool finished_ = false;
  Status failed_;
  uint64_t writes_ = 0;  // bumped by every write, so cursors know to restart their query
  std::vector<SqliteCursor*> cursors_;
};

SqliteCursor::~SqliteCursor() {
  stmt_.Release();
  if (owner_ != nullptr) owner_->ForgetCursor(this);
}

bool SqliteCursor::Fresh() const { return owner_ == nullptr || generation_ == owner_->writes(); }
uint64_t SqliteCursor::Generation() const { return owner_ == nullptr ? 0 : owner_->writes(); }

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(std::string uri, std::shared_ptr<SqliteEnv> env)
      : uri_(std::move(uri)), env_(std::move(env)) {}

  Result<std::unique_ptr<ReadTxn>> BeginRead() override {
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn, env_->TakeReader());
    Status status = conn->RunStatus(kBegin, "begin read txn");
    if (status.ok()) status = conn->RunStatus(kPin, "begin read txn");
    if (!status.ok()) {
      env_->GiveReader(nullptr);  // closes `conn`, and with it any half-begun txn
      return status;
    }
    return std::unique_ptr<ReadTxn>(std::make_unique<SqliteReadTxn>(env_, std::move(conn)));
  }

  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    env_->AcquireWriter();
    Status status = env_->writer().RunStatus(kBeginImmediate, "begin write txn");
    if (!status.ok()) {
      env_->ReleaseWriter();
      return status;
    }
    return std::unique_ptr<WriteTxn>(std::make_unique<SqliteWriteTxn>(env_));
  }

  const std::string& uri() const override { return uri_; }

  // SQLite's online backup, all pages in one step: one read txn on the source, so the copy is one
  // snapshot, and in WAL mode the writer (of this or another process) goes on meanwhile.
  Status Backup(const std::string& destination) override {
    OUTPOST_RETURN_IF_ERROR(storage_internal::CheckBackupDestination("sqlite", destination));
    const int fd = ::open(destination.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                          storage_internal::kStoreFileMode);
    if (fd < 0) {
      return Status::IOError("cannot create sqlite backup file '" + destination + "': " + ErrnoText(errno));
    }
    ::close(fd);
    Status status = Copy(destination);
    if (status.ok()) status = storage_internal::SyncPath(destination);
    if (status.ok()) {
      const size_t slash = destination.rfind('/');
      status = storage_internal::SyncPath(slash == std::string::npos ? "."
                                          : slash == 0               ? "/"
                                                                     : destination.substr(0, slash));
    }
    if (!status.ok()) {
      storage_internal::RemoveBackupLeftovers(destination);
      storage_internal::RemoveBackupLeftovers(destination + "-journal");
    }
    return status;
  }

 private:
  Status Copy(const std::string& destination) {
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Conn> source, env_->TakeReader());
    sqlite3* target = nullptr;
    int rc =
        sqlite3_open_v2(destination.c_str(), &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    Status status;
    if (rc != SQLITE_OK) {
      status = Status::IOError("sqlite cannot open backup file '" + destination +
                               "': " + (target != nullptr ? sqlite3_errmsg(target) : sqlite3_errstr(rc)));
    } else if (sqlite3_backup* backup = sqlite3_backup_init(target, "main", source->db(), "main");
               backup == nullptr) {
      status = SqliteError(sqlite3_errcode(target), "backup to '" + destination + "'", target);
    } else {
      // -1: every page in one step. BUSY or LOCKED (SQLite's own recovery in the source) is retried a
      // bounded number of times; the busy timeout does not apply to backup steps.
      constexpr int kBusyRetriesMax = 100;
      for (int retry = 0;; ++retry) {
        rc = sqlite3_backup_step(backup, -1);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || retry == kBusyRetriesMax) break;
        sqlite3_sleep(100);
      }
      const int finish = sqlite3_backup_finish(backup);
      if (rc != SQLITE_DONE) {
        status = SqliteError(rc, "backup to '" + destination + "'", target);
      } else if (finish != SQLITE_OK) {
        status = SqliteError(finish, "backup to '" + destination + "'", target);
      }
    }
    if (const int closed = sqlite3_close(target); status.ok() && closed != SQLITE_OK) {
      status = SqliteError(closed, "close backup file '" + destination + "'");
    }
    env_->GiveReader(std::move(source));
    return status;
  }

  const std::string uri_;
  const std::shared_ptr<SqliteEnv> env_;
};

}  // namespace

Result<std::unique_ptr<Storage>> OpenSqliteStorage(std::string uri, const std::string& file,
                                                   const StorageOptions& options) {
  auto env = std::make_shared<SqliteEnv>(file, options);
  OUTPOST_RETURN_IF_ERROR(env->Open());
  return std::unique_ptr<Storage>(std::make_unique<SqliteStorage>(std::move(uri), std::move(env)));
}

}  // namespace outpost
