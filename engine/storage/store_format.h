// Copyright 2026 The Outpost Authors.
//
// Store format numbers (docs/storage-format.md, "Compatibility"): every store records the format it was
// written in, in one key of one of its spaces. A build reads formats up to its own and upgrades older ones
// in place (storage/migration.h); a store of a newer format is refused, and left exactly as it was: not one
// byte of it written. Backends write files on a read-write open before any transaction (RocksDB its LOG,
// MANIFEST and WAL; SQLite its -wal and -shm), so OpenFormattedStorage reads the format through a
// read-only open first, and opens read-write only a store this build may write. Used by Client::Open (the
// device store) and the key-value server store.
#ifndef OUTPOST_STORAGE_STORE_FORMAT_H_
#define OUTPOST_STORAGE_STORE_FORMAT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/result.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost {

// How one kind of store records its format, and what this build makes of it.
struct StoreFormat {
  std::string what;        // "device store": names the store in messages, before its URI
  std::string meta_space;  // the space of the format key (one of the store's spaces)
  std::string key = "format";
  uint32_t current = 1;  // the format this build writes, and the newest it reads
  uint32_t oldest = 1;   // the oldest format this build upgrades (storage/migration.h)
  // The format of a store that has no format key, one from before formats were kept, or 0 for a new store.
  // Runs in the migration's write transaction.
  std::function<Result<uint32_t>(ReadTxn& txn, SpaceId meta)> unstamped;
  // What a new store gets besides its format number (optional), in the transaction that stamps it.
  std::function<Status(WriteTxn& txn)> create;
  // The end of the refusal of a newer store ("upgrade Outpost") and of one older than `oldest`.
  std::string newer_hint;
  std::string older_hint;
};

// The format number in `txn`'s meta space: 0 when the key is absent; Corruption when it is not a decimal
// number above 0.
Result<uint64_t> ReadStoreFormat(ReadTxn& txn, SpaceId meta, const StoreFormat& format, std::string_view uri);

// FailedPrecondition "<what> <uri> is format <found>, newer than this build reads (<current>) ...".
Status NewerFormatError(const StoreFormat& format, std::string_view uri, uint64_t found);

using StorageOpener =
    std::function<Result<std::unique_ptr<Storage>>(std::string_view, const StorageOptions&)>;

// Opens the store at `uri` read-write through `opener` (OpenStorage when empty), after reading its format
// through a read-only open of its meta space when the store exists: a newer format is refused
// (NewerFormatError, nothing written; no read-write open was made), an unreadable one is Corruption. A store
// that does not exist yet (a missing path, a private `memory:`) is created as OpenStorage does; one that
// the read-only open cannot read (no meta space yet, an empty directory) is left to the read-write open
// and to the check in the migration's transaction (storage/migration.h), which is the one that counts.
Result<std::unique_ptr<Storage>> OpenFormattedStorage(std::string_view uri, const StorageOptions& options,
                                                      const StoreFormat& format, const StorageOpener& opener);

}  // namespace outpost

#endif  // OUTPOST_STORAGE_STORE_FORMAT_H_
