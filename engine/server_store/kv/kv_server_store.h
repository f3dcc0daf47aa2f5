// Copyright 2026 The Outpost Authors.
//
// The key-value ServerStore: the server's state in seven spaces of one Storage (lmdb, the default; memory,
// sqlite, rocksdb). One writer (Storage serializes write transactions), so Prepare() has nothing to lock;
// wake-ups go in-process, to the other ServerCores that share this object (the simulator runs two instances
// on one store that way). Layout: engine/src/keys.h and docs/storage-format.md (server store, format 3).
#ifndef OUTPOST_SERVER_STORE_KV_KV_SERVER_STORE_H_
#define OUTPOST_SERVER_STORE_KV_KV_SERVER_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "storage/migration.h"
#include "storage/store_format.h"

namespace outpost {

// Opens the Storage named by `uri` (or options.open_storage's) with the server's spaces and checks its
// format (storage/store_format.h): a new store gets keys::kServerFormat (3) and its first incarnation; an
// older one from format 2 up is upgraded at open, in one transaction (storage/migration.h: format 2 -> 3
// gives it its first incarnation); format 1 and newer formats are refused,
// untouched.
Result<std::shared_ptr<ServerStore>> OpenKvServerStore(std::string_view uri,
                                                       const ServerStoreOptions& options);

// The key-value server store's format and its upgrades (for tests and outpostd migrate).
const StoreFormat& KvServerStoreFormat();
const std::vector<MigrationStep>& KvServerStoreMigrations();

// NewIncarnation (outpost/server_store.h) for a key-value store.
Result<std::string> NewKvIncarnation(std::string_view uri, const ServerStoreOptions& options);

// ReadServerStoreInfo and BackupServerStore (outpost/server_store.h) for a key-value store: both open it
// read-only.
Result<ServerStoreInfo> ReadKvServerStoreInfo(std::string_view uri);
Status BackupKvServerStore(std::string_view uri, const std::string& destination);

}  // namespace outpost

#endif  // OUTPOST_SERVER_STORE_KV_KV_SERVER_STORE_H_
