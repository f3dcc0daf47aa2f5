// Copyright 2026 The Outpost Authors.
//
// `outpostd backup`, `outpostd restore` and `outpostd incarnation` (docs/operations.md, "Backup and
// restore"). A backup directory holds:
//   OUT/server         the server store, in its backend's shape (lmdb/rocksdb: a directory; sqlite: a file)
//   OUT/auth           the users (lmdb), when DATA_DIR has them
//   OUT/manifest.json  {"backend", "format", "created", "incarnation", "incarnations", "auth", "store"}
// Backup copies a live store with its backend's own mechanism (Storage::Backup) and checks the copy by
// opening it read-only. Restore copies a backup into place through a staging copy and an atomic exchange,
// after giving the staged copy a new incarnation, so that a crash leaves the old store or the new one, and
// the restored store is never served under the incarnation devices saw before.
#include <fmt/core.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "files.h"
#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "outpost/token_registry.h"
#include "server_store/kv/kv_user_store.h"

namespace outpostd {
namespace {

using outpost::Result;
using outpost::Status;

constexpr const char* kBackupUsage =
    R"(Writes a consistent copy of the server store and the users of DATA_DIR into OUT, a new directory,
while `outpostd serve` goes on serving them: lmdb with a compacting copy, sqlite with its online backup.
A rocksdb store is checkpointed only with outpostd stopped (a second process cannot take a consistent
checkpoint of a live RocksDB; refused while it serves). Then opens the copy read-only and checks its
format and incarnation, and writes OUT/manifest.json. Give the same --store as `serve` when it is not the default. A PostgreSQL store
is backed up with pg_dump or pg_basebackup instead (docs/operations.md).)";

constexpr const char* kRestoreUsage =
    R"(Puts the backup in BACKUP (made by `outpostd backup`) in place as DATA_DIR's server store and users,
and gives the restored store a new incarnation, so that every device learns at its next connection that
the server went back in time and re-sends what it holds (docs/lifecycle.md). outpostd must not be serving
DATA_DIR. A DATA_DIR that already holds a store is replaced only with --force. Give the same --store as
`serve` when it is not the default; its backend must be the backup's. Prints the new incarnation.)";

constexpr const char* kIncarnationUsage =
    R"(Prints the server store's current incarnation (hex) and how many it has had, reading the store
read-only (outpostd may be serving it).)";

std::string Hex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::string StripSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

struct KvStore {
  std::string scheme;    // lmdb, sqlite, rocksdb
  std::string location;  // DIR or FILE
  std::string params;    // "?..." or empty
};

// Splits a key-value store URI; FailedPrecondition for a database or memory store.
Result<KvStore> SplitStore(const std::string& uri) {
  if (outpost::TokenRegistry::UsersMayLiveIn(uri)) {
    return Status::FailedPrecondition(
        "a PostgreSQL store is backed up and restored with PostgreSQL's tools (pg_dump / pg_restore, "
        "pg_basebackup); after a restore run `outpostd migrate --new-incarnation --store URI` before "
        "serving (docs/operations.md)");
  }
  KvStore store;
  const size_t colon = uri.find(':');
  store.scheme = uri.substr(0, colon);
  if (colon == std::string::npos ||
      (store.scheme != "lmdb" && store.scheme != "sqlite" && store.scheme != "rocksdb")) {
    return Status::FailedPrecondition("--store " + uri +
                                      ": backup and restore need an lmdb:, sqlite: or rocksdb: store");
  }
  store.location = uri.substr(colon + 1);
  if (const size_t q = store.location.find('?'); q != std::string::npos) {
    store.params = store.location.substr(q);
    store.location = store.location.substr(0, q);
  }
  store.location = StripSlashes(store.location);
  if (store.location.empty()) return Status::InvalidArgument("--store " + uri + " names no path");
  return store;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string NowUtc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

outpost::StorageOptions AuthOptions() {
  outpost::StorageOptions options = outpost::KvUserStore::Options(true);
  options.read_only = true;
  return options;
}

// The flags every command here shares: --data (required), --store (default lmdb:DATA_DIR/server).
bool DataAndStore(const Flags& flags, const char* command, std::string* data_dir, std::string* store,
                  int* rc) {
  *data_dir = StripSlashes(flags.Get("data"));
  if (data_dir->empty()) {
    *rc = Fail(kExitUsage, std::string(command) + ": --data DIR is required");
    return false;
  }
  *store = flags.Get("store", "lmdb:" + *data_dir + "/server");
  return true;
}

int Backup(const Flags& flags) {
  std::string data_dir, store_uri;
  int rc = 0;
  if (!DataAndStore(flags, "backup", &data_dir, &store_uri, &rc)) return rc;
  if (flags.positional().size() != 1) return Fail(kExitUsage, "backup: give one OUT directory (a new one)");
  const std::string out = StripSlashes(flags.positional().front());
  Result<KvStore> store = SplitStore(store_uri);
  if (!store.ok()) return Fail(kExitError, "backup: " + store.status().message());
  if (Status s = RequireDataDir(data_dir); !s.ok()) return Fail(kExitError, "backup: " + s.message());
  if (Exists(out))
    return Fail(kExitError, "backup: " + out + " already exists (a backup goes to a new directory)");
  Result<outpost::ServerStoreInfo> live = outpost::ReadServerStoreInfo(store_uri);
  if (!live.ok())
    return Fail(kExitError, "backup: server store " + store_uri + ": " + live.status().message());
  if (live->incarnations.empty())
    return Fail(kExitError, "backup: server store " + store_uri + " has no incarnation");
  if (::mkdir(out.c_str(), 0700) != 0) {
    return Fail(kExitError, fmt::format("backup: cannot create {}: {}", out, std::strerror(errno)));
  }
  auto fail = [&](const std::string& message) {
    (void)RemoveTree(out);  // no half backup is left to be mistaken for a whole one
    return Fail(kExitError, "backup: " + message);
  };
  if (Status s = outpost::BackupServerStore(store_uri, out + "/server"); !s.ok()) {
    return fail("server store " + store_uri + ": " + s.ToString());
  }
  const std::string auth_uri = outpost::TokenRegistry::StoreUri(data_dir);
  const bool has_auth = Exists(data_dir + "/auth");
  if (has_auth) {
    auto auth = outpost::OpenStorage(auth_uri, AuthOptions());
    Status s = auth.ok() ? (*auth)->Backup(out + "/auth") : auth.status();
    if (!s.ok()) return fail("users " + auth_uri + ": " + s.ToString());
  }
  // The check: the copy opens read-only, has this build's format and the live store's incarnation.
  Result<outpost::ServerStoreInfo> copy = outpost::ReadServerStoreInfo(store->scheme + ":" + out + "/server");
  if (!copy.ok()) return fail("the copy does not open: " + copy.status().ToString());
  if (copy->format != live->format || copy->incarnations != live->incarnations) {
    return fail(fmt::format("the copy has format {} and {} incarnation(s), the store format {} and {}",
                            copy->format, copy->incarnations.size(), live->format,
                            live->incarnations.size()));
  }
  if (has_auth) {
    auto auth = outpost::OpenStorage("lmdb:" + out + "/auth", AuthOptions());
    Status s = auth.ok() ? (*auth)->BeginRead().status() : auth.status();
    if (!s.ok()) return fail("the users' copy does not open: " + s.ToString());
  }
  nlohmann::json manifest = {{"backend", store->scheme},
                             {"format", copy->format},
                             {"created", NowUtc()},
                             {"incarnation", Hex(copy->incarnations.back())},
                             {"incarnations", copy->incarnations.size()},
                             {"auth", has_auth},
                             {"store", outpost::RedactUri(store_uri)}};
  if (Status s = WriteFileAtomic(out + "/manifest.json", manifest.dump(2) + "\n"); !s.ok()) {
    return fail(s.message());
  }
  if (Status s = SyncParent(out); !s.ok()) return fail(s.message());
  fmt::print("backup {}: server store ({}, format {}, incarnation {}){}; verified\n", out, store->scheme,
             copy->format, Hex(copy->incarnations.back()), has_auth ? " and users" : "");
  std::fflush(stdout);
  return kExitOk;
}

// Puts `staged` at `place`: an atomic exchange when something is there (the old one then sits at `staged`
// and is removed), else a rename. For sqlite, `side_files` (FILE-wal, FILE-shm) of the old store are moved
// away first: SQLite would replay an old WAL into the new file.
Status PutInPlace(const std::string& staged, const std::string& place, bool sqlite) {
  if (sqlite) {
    for (const char* suffix : {"-wal", "-shm"}) {
      const std::string side = place + suffix;
      if (Exists(side)) OUTPOST_RETURN_IF_ERROR(RemoveTree(side));
    }
  }
  if (Exists(place)) {
    OUTPOST_RETURN_IF_ERROR(Exchange(staged, place));
    OUTPOST_RETURN_IF_ERROR(SyncParent(place));
    return RemoveTree(staged);
  }
  if (::rename(staged.c_str(), place.c_str()) != 0) {
    return Status::IOError(fmt::format("rename {} to {}: {}", staged, place, std::strerror(errno)));
  }
  return SyncParent(place);
}

int Restore(const Flags& flags) {
  std::string data_dir, store_uri;
  int rc = 0;
  if (!DataAndStore(flags, "restore", &data_dir, &store_uri, &rc)) return rc;
  if (flags.positional().size() != 1) return Fail(kExitUsage, "restore: give one BACKUP directory");
  const std::string backup = StripSlashes(flags.positional().front());
  Result<KvStore> store = SplitStore(store_uri);
  if (!store.ok()) return Fail(kExitError, "restore: " + store.status().message());
  Result<std::string> text = ReadFile(backup + "/manifest.json");
  if (!text.ok()) {
    return Fail(kExitError,
                "restore: " + backup + " is not a backup of outpostd backup: " + text.status().message());
  }
  const nlohmann::json manifest = nlohmann::json::parse(*text, nullptr, false);
  if (!manifest.is_object() || !manifest.contains("backend") || !manifest["backend"].is_string()) {
    return Fail(kExitError, "restore: " + backup + "/manifest.json is unreadable");
  }
  const std::string backend = manifest["backend"];
  if (backend != store->scheme) {
    return Fail(kExitError, fmt::format("restore: the backup holds a {} store and --store is {}: restore it "
                                        "into a {}: store",
                                        backend, store->scheme, backend));
  }
  const std::string copy_uri = backend + ":" + backup + "/server";
  Result<outpost::ServerStoreInfo> copy = outpost::ReadServerStoreInfo(copy_uri);
  if (!copy.ok()) return Fail(kExitError, "restore: the backup's server store: " + copy.status().message());
  const bool has_auth = Exists(backup + "/auth");
  if (Status s = EnsureDataDir(data_dir); !s.ok()) return Fail(kExitError, "restore: " + s.message());
  DataDirLock lock;
  if (Status s = lock.Acquire(data_dir, false); !s.ok()) {
    return Fail(kExitError, "restore: " + s.message() + ": stop it first");
  }
  const std::string auth_place = data_dir + "/auth";
  const bool occupied = Exists(store->location) || Exists(auth_place);
  if (occupied && !flags.Has("force")) {
    return Fail(kExitError, fmt::format("restore: {} already holds a server store or users ({}, {}): give "
                                        "--force to replace them with the backup",
                                        data_dir, store->location, auth_place));
  }
  // Staged beside their places (one filesystem, for the exchange); leftovers of an interrupted restore go.
  const std::string staged_store = store->location + ".restore-new";
  const std::string staged_auth = auth_place + ".restore-new";
  for (const std::string& path : {staged_store, staged_auth}) {
    if (Status s = RemoveTree(path); !s.ok()) return Fail(kExitError, "restore: " + s.message());
  }
  if (Status s = CopyTree(backup + "/server", staged_store); !s.ok()) {
    return Fail(kExitError, "restore: copying the server store: " + s.message());
  }
  if (has_auth) {
    if (Status s = CopyTree(backup + "/auth", staged_auth); !s.ok()) {
      return Fail(kExitError, "restore: copying the users: " + s.message());
    }
  }
  // The new incarnation goes into the staged copy, before it is in place: the restored store is never
  // served under the incarnation of the copy, which devices already saw.
  Result<std::string> id = outpost::NewIncarnation(store->scheme + ":" + staged_store + store->params);
  if (!id.ok()) return Fail(kExitError, "restore: new incarnation: " + id.status().ToString());
  if (has_auth) {
    if (Status s = PutInPlace(staged_auth, auth_place, false); !s.ok()) {
      return Fail(kExitError, "restore: " + s.message() + " (run the restore again)");
    }
  }
  if (Status s = PutInPlace(staged_store, store->location, store->scheme == "sqlite"); !s.ok()) {
    return Fail(kExitError, "restore: " + s.message() + " (run the restore again)");
  }
  fmt::print("restored {} into {}: server store {} ({}){}; new incarnation {} ({} in all)\n", backup,
             data_dir, store->location, backend, has_auth ? ", users " + auth_place : "", Hex(*id),
             copy->incarnations.size() + 1);
  std::fflush(stdout);
  return kExitOk;
}

int Incarnation(const Flags& flags) {
  std::string data_dir, store_uri;
  int rc = 0;
  if (!DataAndStore(flags, "incarnation", &data_dir, &store_uri, &rc)) return rc;
  if (!flags.positional().empty()) {
    return Fail(kExitUsage, "incarnation: unexpected argument '" + flags.positional().front() + "'");
  }
  Result<outpost::ServerStoreInfo> info = outpost::ReadServerStoreInfo(store_uri);
  if (!info.ok()) return Fail(kExitError, "incarnation: " + info.status().message());
  if (info->incarnations.empty()) return Fail(kExitError, "incarnation: the store records none");
  fmt::print("{} {}\n", Hex(info->incarnations.back()), info->incarnations.size());
  std::fflush(stdout);
  return kExitOk;
}

FlagSpec DataFlag() {
  return {"data", true, false, "outpostd's data directory (the users are in DIR/auth)", "DIR"};
}
FlagSpec StoreFlag() {
  return {"store", true, false, "the server store, as given to serve (default lmdb:DIR/server)", "URI"};
}

}  // namespace

Command BackupCommand() {
  return {"backup",
          "copy the server store and users of a (running) server into a new directory",
          "OUT",
          kBackupUsage,
          {DataFlag(), StoreFlag()},
          &Backup};
}

Command RestoreCommand() {
  return {
      "restore",
      "put a backup in place (server stopped) and give the store a new incarnation",
      "BACKUP",
      kRestoreUsage,
      {DataFlag(), StoreFlag(), {"force", false, false, "replace the store and users DIR already holds", ""}},
      &Restore};
}

Command IncarnationCommand() {
  return {"incarnation",
          "print the server store's current incarnation",
          "",
          kIncarnationUsage,
          {DataFlag(), StoreFlag()},
          &Incarnation};
}

}  // namespace outpostd
