// Copyright 2026 The Outpost Authors.
//
// The RocksDB backend: one database per directory, one column family per space (named after it), keys in
// RocksDB's bytewise (memcmp) order.
//
// A ReadTxn is a RocksDB snapshot. A WriteTxn is a WriteBatchWithIndex over the live database: Get reads
// the batch, then the database; cursors merge the batch into a database iterator, and a cursor whose txn
// wrote since it last moved rebuilds that iterator at its key. Commit writes the batch atomically, with
// WriteOptions::sync from StorageOptions::sync: by default the WAL is fsynced before Commit returns; with
// `?sync=0` it reaches the OS but not the disk, so a power loss may undo the last commits (a process
// crash does not).
//
// Memory is bounded for small devices: memtables of all spaces together hold at most 32 MiB, and one
// 8 MiB block cache holds data, index and filter blocks. Closing the store flushes memtables that hold
// more than 1 MiB, so that the next open replays little WAL.
//
// map_bytes_initial/map_bytes_max do not apply: the store grows until the disk is full (Full).
//
// A directory may be open once at a time (an flock on it, across processes and within one; RocksDB's own
// LOCK file agrees): a second open is an IOError until the first handle and all its txns are gone.
#ifndef OUTPOST_STORAGE_ROCKSDB_ROCKSDB_STORAGE_H_
#define OUTPOST_STORAGE_ROCKSDB_ROCKSDB_STORAGE_H_

#include <memory>
#include <string>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost {

// Opens (creating if needed) the database in `dir`; the directory itself is created when missing but its
// parent must exist. `uri` is what Storage::uri() reports. `options` must already be validated.
Result<std::unique_ptr<Storage>> OpenRocksdbStorage(std::string uri, const std::string& dir,
                                                    const StorageOptions& options);

}  // namespace outpost

#endif  // OUTPOST_STORAGE_ROCKSDB_ROCKSDB_STORAGE_H_
