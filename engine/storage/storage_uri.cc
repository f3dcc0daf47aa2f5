// Copyright 2026 The Outpost Authors.
//
// Storage URI grammar:
//   uri    = scheme ":" rest [ "?" params ]
//   scheme = "memory" | "lmdb" | "sqlite" | "rocksdb"
//   rest   = NAME (memory; empty: a private store) | DIR (lmdb, rocksdb; required) | FILE (sqlite; required)
//   params = param *( "&" param )
//   param  = "sync=0" | "sync=1"          (overrides StorageOptions::sync)
//          | "map_bytes_max=" DIGITS      (overrides StorageOptions::map_bytes_max, and map_bytes_initial
//                                          when that is larger: a small cap for tests and tiny stores)
// DIR and FILE cannot contain '?'. The memory backend accepts `sync` and ignores it, so that one URI
// template serves every backend. What sync=0 risks, per backend: lmdb MDB_NOSYNC, sqlite
// synchronous=NORMAL (WAL), rocksdb WriteOptions::sync=false; in each, a power loss may undo the last
// commits (lmdb's documentation warns of corruption too) and a process crash does not (docs/backends.md).
#include "storage/storage_uri.h"

#include <charconv>
#include <set>
#include <string>
#include <string_view>

#include "outpost/storage.h"
#include "storage/memory/memory_storage.h"
#if OUTPOST_WITH_LMDB
#include "storage/lmdb/lmdb_storage.h"
#endif
#if OUTPOST_WITH_ROCKSDB
#include "storage/rocksdb/rocksdb_storage.h"
#endif
#if OUTPOST_WITH_SQLITE
#include "storage/sqlite/sqlite_storage.h"
#endif
#include "storage/storage_common.h"

namespace outpost {
namespace {

constexpr std::string_view kSchemes = "(expected memory:, lmdb:DIR, sqlite:FILE, rocksdb:DIR)";

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

[[maybe_unused]] Status NotBuilt(std::string_view scheme, std::string_view part) {
  return Status::FailedPrecondition(std::string(scheme) + ": not built into this Outpost (OUTPOST_WITH_" +
                                    std::string(part) + "=OFF)");
}

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

constexpr std::string_view kMapBytesMax = "map_bytes_max=";

// map_bytes_max=N: a decimal byte count; a smaller first map follows it down.
Status ApplyMapBytesMax(std::string_view uri, std::string_view digits, StorageOptions* options) {
  uint64_t bytes = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bytes);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || bytes == 0) {
    return Status::InvalidArgument("storage URI parameter map_bytes_max in " + Quote(uri) +
                                   " needs a positive decimal byte count, not " + Quote(digits));
  }
  options->map_bytes_max = bytes;
  if (options->map_bytes_initial > bytes) options->map_bytes_initial = bytes;
  return Status::OK();
}

// Applies "sync=0&map_bytes_max=N..." to `options`.
Status ApplyParams(std::string_view uri, std::string_view params, StorageOptions* options) {
  while (true) {
    const size_t end = params.find('&');
    const std::string_view param = params.substr(0, end);
    if (param == "sync=0") {
      options->sync = false;
    } else if (param == "sync=1") {
      options->sync = true;
    } else if (param.starts_with(kMapBytesMax)) {
      OUTPOST_RETURN_IF_ERROR(ApplyMapBytesMax(uri, param.substr(kMapBytesMax.size()), options));
    } else {
      return Status::InvalidArgument("unknown storage URI parameter " + Quote(param) + " in " + Quote(uri) +
                                     " (expected sync=0, sync=1 or map_bytes_max=N)");
    }
    if (end == std::string_view::npos) return Status::OK();
    params.remove_prefix(end + 1);
  }
}

// A store opened with StorageOptions::read_only: the backend opened it without creating or locking
// anything; this refuses every write in one place, so that no backend's write path runs on such a store.
class ReadOnlyStorage final : public Storage {
 public:
  explicit ReadOnlyStorage(std::unique_ptr<Storage> base) : base_(std::move(base)) {}
  Result<std::unique_ptr<ReadTxn>> BeginRead() override { return base_->BeginRead(); }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    return Status::FailedPrecondition("store " + Quote(base_->uri()) + " is open read-only");
  }
  const std::string& uri() const override { return base_->uri(); }
  Status Backup(const std::string& destination) override { return base_->Backup(destination); }

 private:
  const std::unique_ptr<Storage> base_;
};

Result<std::unique_ptr<Storage>> OpenParsed(std::string_view uri,
                                            const storage_internal::ParsedStorageUri& parsed);

}  // namespace

namespace storage_internal {

Result<ParsedStorageUri> ParseStorageUri(std::string_view uri, const StorageOptions& options) {
  const size_t colon = uri.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("storage URI " + Quote(uri) + " has no scheme " + std::string(kSchemes));
  }
  ParsedStorageUri parsed;
  parsed.scheme = uri.substr(0, colon);
  parsed.location = uri.substr(colon + 1);
  parsed.options = options;
  if (const size_t question = parsed.location.find('?'); question != std::string_view::npos) {
    OUTPOST_RETURN_IF_ERROR(ApplyParams(uri, parsed.location.substr(question + 1), &parsed.options));
    parsed.location = parsed.location.substr(0, question);
  }
  OUTPOST_RETURN_IF_ERROR(ValidateOptions(parsed.options));
  const std::string_view scheme = parsed.scheme;
  if (scheme == "memory") return parsed;
  if (scheme == "lmdb" || scheme == "sqlite" || scheme == "rocksdb") {
    if (parsed.location.empty()) {
      const std::string expected = scheme == "sqlite"
                                       ? "file (expected sqlite:FILE)"
                                       : "directory (expected " + std::string(scheme) + ":DIR)";
      return Status::InvalidArgument("storage URI " + Quote(uri) + " names no " + expected);
    }
    return parsed;
  }
  return Status::InvalidArgument("unknown storage scheme " + Quote(scheme) + " in " + Quote(uri) + " " +
                                 std::string(kSchemes));
}

}  // namespace storage_internal

Result<std::unique_ptr<Storage>> OpenStorage(std::string_view uri, const StorageOptions& options) {
  OUTPOST_ASSIGN_OR_RETURN(auto parsed, storage_internal::ParseStorageUri(uri, options));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Storage> storage, OpenParsed(uri, parsed));
  if (!parsed.options.read_only) return storage;
  return std::unique_ptr<Storage>(std::make_unique<ReadOnlyStorage>(std::move(storage)));
}

namespace {

Result<std::unique_ptr<Storage>> OpenParsed(std::string_view uri,
                                            const storage_internal::ParsedStorageUri& parsed) {
  const std::string location(parsed.location);
  if (parsed.scheme == "memory") return OpenMemoryStorage(std::string(uri), location, parsed.options);
  // A backend left out of the build (OUTPOST_WITH_*=OFF) is named as such, not as an unknown scheme.
  if (parsed.scheme == "lmdb") {
#if OUTPOST_WITH_LMDB
    return OpenLmdbStorage(std::string(uri), location, parsed.options);
#else
    return NotBuilt("lmdb", "LMDB");
#endif
  }
  if (parsed.scheme == "sqlite") {
#if OUTPOST_WITH_SQLITE
    return OpenSqliteStorage(std::string(uri), location, parsed.options);
#else
    return NotBuilt("sqlite", "SQLITE");
#endif
  }
#if OUTPOST_WITH_ROCKSDB
  return OpenRocksdbStorage(std::string(uri), location, parsed.options);
#else
  return NotBuilt("rocksdb", "ROCKSDB");
#endif
}

}  // namespace

}  // namespace outpost
