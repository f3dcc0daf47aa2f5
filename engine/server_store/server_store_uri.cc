// Copyright 2026 The Outpost Authors.
//
// OpenServerStore / MigrateServerStore: `postgresql://` and `postgres://` URIs name the PostgreSQL store;
// any other URI is a Storage URI (outpost/storage.h) holding the key-value store.
#include <string>

#include "outpost/server_store.h"
#include "server_store/kv/kv_server_store.h"
#if OUTPOST_WITH_POSTGRESQL
#include "server_store/postgresql/pg_server_store.h"
#endif

namespace outpost {
namespace {

bool IsPostgresUri(std::string_view uri) {
  return uri.starts_with("postgresql://") || uri.starts_with("postgres://");
}

#if !OUTPOST_WITH_POSTGRESQL
Status PgNotBuilt() {
  return Status::FailedPrecondition("postgresql: not built into this Outpost (OUTPOST_WITH_POSTGRESQL=OFF)");
}
Result<std::shared_ptr<ServerStore>> OpenPgServerStore(std::string_view, const ServerStoreOptions&) {
  return PgNotBuilt();
}
Result<std::string> MigratePgServerStore(std::string_view) { return PgNotBuilt(); }
Result<std::string> NewPgIncarnation(std::string_view) { return PgNotBuilt(); }
#endif

}  // namespace

Result<std::shared_ptr<ServerStore>> OpenServerStore(std::string_view uri,
                                                     const ServerStoreOptions& options) {
  if (IsPostgresUri(uri)) return OpenPgServerStore(uri, options);
  return OpenKvServerStore(uri, options);
}

Result<std::string> MigrateServerStore(std::string_view uri, const ServerStoreOptions& options) {
  if (IsPostgresUri(uri)) return MigratePgServerStore(uri);
  OUTPOST_ASSIGN_OR_RETURN(auto store, OpenKvServerStore(uri, options));
  return std::string("key-value server store ") + store->uri() + " is at format 3";
}

Result<ServerStoreInfo> ReadServerStoreInfo(std::string_view uri) {
  if (IsPostgresUri(uri)) {
    return Status::FailedPrecondition("a PostgreSQL store is read with psql, not ReadServerStoreInfo");
  }
  return ReadKvServerStoreInfo(uri);
}

Status BackupServerStore(std::string_view uri, const std::string& destination) {
  if (IsPostgresUri(uri)) {
    return Status::FailedPrecondition(
        "a PostgreSQL store is backed up with PostgreSQL's own tools: pg_dump (a logical copy) or "
        "pg_basebackup (a physical one); after restoring one, run `outpostd migrate --new-incarnation "
        "--store URI` before serving (docs/operations.md)");
  }
  return BackupKvServerStore(uri, destination);
}

Result<std::string> NewIncarnation(std::string_view uri, const ServerStoreOptions& options) {
  if (IsPostgresUri(uri)) return NewPgIncarnation(uri);
  return NewKvIncarnation(uri, options);
}

}  // namespace outpost
