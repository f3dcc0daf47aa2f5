// Copyright 2026 The Outpost Authors.
//
// Storage URI grammar:
//   uri    = scheme ":" rest [ "?" params ]
//   scheme = "memory" | "lmdb" | "sqlite" | "rocksdb"
//   rest   = NAME (memory; empty: a private store) | DIR (lmdb, rocksdb; required) | FILE (sqlite; required)
//   params = param *( "&" param );  param = "sync=0" | "sync=1"   (overrides StorageOptions::sync)
// DIR and FILE cannot contain '?'. The memory backend accepts `sync` and ignores it, so that one URI
// template serves every backend. What sync=0 risks, per backend: lmdb MDB_NOSYNC, sqlite
// synchronous=NORMAL (WAL), rocksdb WriteOptions::sync=false; in each, a power loss may undo the last
// commits (lmdb's documentation warns of corruption too) and a process crash does not (docs/backends.md).
#include <set>
#include <string>
#include <string_view>

#include "outpost/storage.h"
#include "storage/lmdb/lmdb_storage.h"
#include "storage/memory/memory_storage.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/sqlite/sqlite_storage.h"
#include "storage/storage_common.h"

namespace outpost {
namespace {

constexpr std::string_view kSchemes = "(expected memory:, lmdb:DIR, sqlite:FILE, rocksdb:DIR)";

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

Status ValidateOptions(const StorageOptions& options) {
  const size_t count = options.spaces.size();
  if (count == 0 || count > storage_internal::kSpacesMax) {
    return Status::InvalidArgument("StorageOptions::spaces must name 1 to " +
                                   std::to_string(storage_internal::kSpacesMax) + " spaces, not " +
                                   std::to_string(count));
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < count; ++i) {
    const std::string& name = options.spaces[i];
    // LMDB keeps space names as C strings in its main database.
    if (name.empty() || name.size() > kStorageKeyBytesMax || name.find('\0') != std::string::npos) {
      return Status::InvalidArgument("storage space " + std::to_string(i) +
                                     " needs a name of 1 to 511 bytes without NUL");
    }
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("storage space name " + Quote(name) + " appears twice");
    }
  }
  if (options.map_bytes_initial == 0 || options.map_bytes_initial > options.map_bytes_max) {
    return Status::InvalidArgument(
        "StorageOptions::map_bytes_initial (" + std::to_string(options.map_bytes_initial) +
        ") must be between 1 and map_bytes_max (" + std::to_string(options.map_bytes_max) + ")");
  }
  return Status::OK();
}

// Applies "sync=0&sync=1..." to `options`.
Status ApplyParams(std::string_view uri, std::string_view params, StorageOptions* options) {
  while (true) {
    const size_t end = params.find('&');
    const std::string_view param = params.substr(0, end);
    if (param == "sync=0") {
      options->sync = false;
    } else if (param == "sync=1") {
      options->sync = true;
    } else {
      return Status::InvalidArgument("unknown storage URI parameter " + Quote(param) + " in " + Quote(uri) +
                                     " (expected sync=0 or sync=1)");
    }
    if (end == std::string_view::npos) return Status::OK();
    params.remove_prefix(end + 1);
  }
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenStorage(std::string_view uri, const StorageOptions& options) {
  const size_t colon = uri.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("storage URI " + Quote(uri) + " has no scheme " + std::string(kSchemes));
  }
  const std::string_view scheme = uri.substr(0, colon);
  std::string_view rest = uri.substr(colon + 1);
  StorageOptions resolved = options;
  if (const size_t question = rest.find('?'); question != std::string_view::npos) {
    OUTPOST_RETURN_IF_ERROR(ApplyParams(uri, rest.substr(question + 1), &resolved));
    rest = rest.substr(0, question);
  }
  OUTPOST_RETURN_IF_ERROR(ValidateOptions(resolved));

  if (scheme == "memory") return OpenMemoryStorage(std::string(uri), rest, resolved);
  if (scheme == "lmdb" || scheme == "sqlite" || scheme == "rocksdb") {
    if (rest.empty()) {
      const std::string expected = scheme == "sqlite"
                                       ? "file (expected sqlite:FILE)"
                                       : "directory (expected " + std::string(scheme) + ":DIR)";
      return Status::InvalidArgument("storage URI " + Quote(uri) + " names no " + expected);
    }
    if (scheme == "lmdb") return OpenLmdbStorage(std::string(uri), std::string(rest), resolved);
    if (scheme == "sqlite") return OpenSqliteStorage(std::string(uri), std::string(rest), resolved);
    return OpenRocksdbStorage(std::string(uri), std::string(rest), resolved);
  }
  return Status::InvalidArgument("unknown storage scheme " + Quote(scheme) + " in " + Quote(uri) + " " +
                                 std::string(kSchemes));
}

}  // namespace outpost
