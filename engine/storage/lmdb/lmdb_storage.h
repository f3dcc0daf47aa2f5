// Copyright 2026 The Outpost Authors.
//
// The LMDB backend: one environment per directory, one named LMDB database per space.
//
// Map size: LMDB needs a fixed-size memory map. It starts at StorageOptions::map_bytes_initial and doubles,
// up to map_bytes_max, whenever a write txn begins with less than a quarter of the map free (or less than
// twice what recent txns consumed), and after a txn failed with a full map. A txn that finds the map full
// fails with Status::Full and changes nothing; the next BeginWrite grows the map, so a retry succeeds unless
// map_bytes_max is reached, in which case Full says to raise it. Remapping waits only for the read-txn
// operation in flight, never for whole read txns, because read cursors copy what they return and
// re-position themselves after a remap.
//
// A directory may be open only once per process at a time (LMDB's locks are per process); a second open
// fails with IOError.
#ifndef OUTPOST_STORAGE_LMDB_LMDB_STORAGE_H_
#define OUTPOST_STORAGE_LMDB_LMDB_STORAGE_H_

#include <memory>
#include <string>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost {

// Opens (creating if needed) the store in `dir`; the directory itself is created when missing but its
// parent must exist. `uri` is what Storage::uri() reports. `options` must already be validated.
Result<std::unique_ptr<Storage>> OpenLmdbStorage(std::string uri, const std::string& dir,
                                                 const StorageOptions& options);

}  // namespace outpost

#endif  // OUTPOST_STORAGE_LMDB_LMDB_STORAGE_H_
