// Copyright 2026 The Outpost Authors.
//
// The SQLite backend: one database file in WAL mode. A catalog table maps each space name to a number n;
// space n is the table `s<n>(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`, so keys are ordered by SQLite's
// BLOB comparison, which is memcmp order.
//
// Connections: one writer connection (BEGIN IMMEDIATE, one WriteTxn of this process at a time) and a pool
// of reader connections, each ReadTxn holding one in a read transaction that began in BeginRead: in WAL
// mode that pins the snapshot, and never blocks or waits for the writer.
//
// Durability: WAL with synchronous=FULL when StorageOptions::sync (the default; each commit fsyncs the
// WAL), synchronous=NORMAL with `?sync=0` (commits reach the OS but are synced only at checkpoints: a
// power loss or kernel crash may undo the last commits, never leaving a torn one; a process crash loses
// nothing).
//
// Limits: map_bytes_max becomes SQLite's max_page_count, so a txn that would grow the file past it fails
// with Full and changes nothing; values are limited to SQLite's SQLITE_MAX_LENGTH (10^9 bytes in Debian's
// build, a little under the interface's 1 GiB), beyond which Put is an InvalidArgument.
//
// A file may be open once at a time (an flock on it, across processes and within one): a second open is
// an IOError until the first handle and all its txns are gone.
#ifndef OUTPOST_STORAGE_SQLITE_SQLITE_STORAGE_H_
#define OUTPOST_STORAGE_SQLITE_SQLITE_STORAGE_H_

#include <memory>
#include <string>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost {

// Opens (creating if needed) the database `file`; its directory must exist. `uri` is what Storage::uri()
// reports. `options` must already be validated.
Result<std::unique_ptr<Storage>> OpenSqliteStorage(std::string uri, const std::string& file,
                                                   const StorageOptions& options);

}  // namespace outpost

#endif  // OUTPOST_STORAGE_SQLITE_SQLITE_STORAGE_H_
