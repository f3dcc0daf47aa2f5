// Copyright 2026 The Outpost Authors.
//
// The server stores that tests/conformance/server_store_conformance_test.cc runs against. Adding a store is
// one entry in ServerStoreBackends().
//
// PostgreSQL needs a server: OUTPOST_TEST_PG_URI (a postgresql:// URI of a database whose user may CREATE
// DATABASE), else the URI in the file named by OUTPOST_TEST_PG_URI_FILE (ctest's fixture writes it: see
// tests/CMakeLists.txt; tools/pg-cluster start DIR makes a cluster by hand). Without either the PostgreSQL
// tests fail, unless OUTPOST_TEST_PG=skip: then they are skipped and say why. Each test gets a database of
// its own, dropped at its end.
#ifndef OUTPOST_TESTS_CONFORMANCE_SERVER_STORE_BACKENDS_H_
#define OUTPOST_TESTS_CONFORMANCE_SERVER_STORE_BACKENDS_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "outpost/result.h"
#include "outpost/server_store.h"
#include "outpost/status.h"
#include "server_store/postgresql/pg_server_store.h"

namespace outpost {

struct ServerStoreBackend {
  std::string name;  // the suffix of the test names: ServerStoreConformance/AppendAndPages/Postgresql
  // Makes a fresh store (schema made, no data) that no other test touches and returns its URI. `dir` is an
  // empty temporary directory that the test owns and removes; `unique` is a name no other test of this
  // process uses.
  std::function<Result<std::string>(const std::string& dir, const std::string& unique)> create;
  // Removes what `create` made, once every store object on it is gone. May be null.
  std::function<void(const std::string& uri)> destroy;
  std::function<Result<std::shared_ptr<ServerStore>>(const std::string& uri)> open;
  std::function<Result<std::string>(const std::string& uri)> migrate;
  // Why this store's tests are skipped ("": they run).
  std::function<std::string()> skip_reason;
  // Several store objects on one URI ("instances") write at once and wake each other (the concurrency and
  // cross-instance tests).
  bool multi_writer = false;
  bool keeps_users = false;  // users() is not null
  // Overwrites the stored schema version (the refusal test); null: the test is skipped for this store.
  std::function<Status(const std::string& uri, int version)> set_schema_version;
};

// ---- PostgreSQL test databases (server_store_backends.cc) ----
// The server's URI (OUTPOST_TEST_PG_URI or OUTPOST_TEST_PG_URI_FILE); FailedPrecondition saying how to
// get one when neither is set.
Result<std::string> PgTestServerUri();
// Non-empty when the PostgreSQL tests are to be skipped: no server and OUTPOST_TEST_PG=skip.
std::string PgTestSkipReason();
// A new empty database on the test server (no schema); its URI.
Result<std::string> CreatePgTestDatabase(const std::string& unique);
// Drops the database of `uri` (closing whatever is still connected to it).
void DropPgTestDatabase(const std::string& uri);
// Runs `sql` (no parameters) on the database of `uri`.
Status PgTestExec(const std::string& uri, const std::string& sql);

inline std::vector<ServerStoreBackend> ServerStoreBackends() {
  std::vector<ServerStoreBackend> backends;
  {
    ServerStoreBackend pg;
    pg.name = "Postgresql";
    pg.create = [](const std::string&, const std::string& unique) -> Result<std::string> {
      OUTPOST_ASSIGN_OR_RETURN(std::string uri, CreatePgTestDatabase(unique));
      auto migrated = MigratePgServerStore(uri);
      if (!migrated.ok()) return migrated.status();
      return uri;
    };
    pg.destroy = DropPgTestDatabase;
    pg.open = [](const std::string& uri) { return OpenPgServerStore(uri, {}); };
    pg.migrate = [](const std::string& uri) { return MigratePgServerStore(uri); };
    pg.skip_reason = PgTestSkipReason;
    pg.multi_writer = true;
    pg.keeps_users = true;
    pg.set_schema_version = [](const std::string& uri, int version) {
      return PgTestExec(uri, "UPDATE outpost_schema SET version = " + std::to_string(version));
    };
    backends.push_back(std::move(pg));
  }
  // The key-value store on two of its Storage backends: one writer per store object, wake-ups in-process.
  for (const std::string kind : {"Memory", "Lmdb"}) {
    ServerStoreBackend kv;
    kv.name = kind;
    kv.create = [kind](const std::string& dir, const std::string& unique) -> Result<std::string> {
      std::string uri = kind == "Memory" ? "memory:" + unique : "lmdb:" + dir + "/store";
      auto migrated = MigrateServerStore(uri);  // initialises its format
      if (!migrated.ok()) return migrated.status();
      return uri;
    };
    kv.open = [](const std::string& uri) { return OpenServerStore(uri); };
    kv.migrate = [](const std::string& uri) { return MigrateServerStore(uri); };
    kv.skip_reason = [] { return std::string(); };
    backends.push_back(std::move(kv));
  }
  return backends;
}

// Keeps gtest from printing the std::functions as bytes.
inline void PrintTo(const ServerStoreBackend& backend, std::ostream* out) { *out << backend.name; }

}  // namespace outpost

#endif  // OUTPOST_TESTS_CONFORMANCE_SERVER_STORE_BACKENDS_H_
