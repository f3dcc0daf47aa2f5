// Copyright 2026 The Outpost Authors.
//
// PostgreSQL test databases for the server store suites (server_store_backends.h).
#include "conformance/server_store_backends.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>

namespace outpost {
namespace {

// `uri` with its database name (the path) replaced by `db`. Only the URI form (postgresql://...).
std::string WithDatabase(const std::string& uri, const std::string& db) {
  size_t scheme = uri.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t query = uri.find('?', start);
  size_t path = uri.find('/', start);
  if (path == std::string::npos || (query != std::string::npos && path > query)) path = query;
  if (path == std::string::npos) return uri + "/" + db;
  std::string rest = query == std::string::npos ? "" : uri.substr(query);
  return uri.substr(0, path) + "/" + db + rest;
}

std::string DatabaseOf(const std::string& uri) {
  size_t scheme = uri.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = uri.find('/', start);
  if (path == std::string::npos) return "";
  size_t query = uri.find('?', path);
  return uri.substr(path + 1, query == std::string::npos ? std::string::npos : query - path - 1);
}

}  // namespace

Result<std::string> PgTestServerUri() {
  if (const char* uri = std::getenv("OUTPOST_TEST_PG_URI"); uri && *uri) return std::string(uri);
  if (const char* file = std::getenv("OUTPOST_TEST_PG_URI_FILE"); file && *file) {
    std::ifstream in(file);
    std::string uri;
    if (in && std::getline(in, uri) && !uri.empty()) return uri;
    return Status::FailedPrecondition(
        std::string("OUTPOST_TEST_PG_URI_FILE names ") + file +
        ", which holds no URI: did the ctest fixture (tools/pg-cluster start) fail?");
  }
  return Status::FailedPrecondition(
      "the PostgreSQL server store tests need a server: set OUTPOST_TEST_PG_URI (e.g. the URI printed by "
      "`tools/pg-cluster start build/pg`), run them through ctest (its fixture starts one), or set "
      "OUTPOST_TEST_PG=skip to skip them");
}

std::string PgTestSkipReason() {
  const char* skip = std::getenv("OUTPOST_TEST_PG");
  if (!skip || std::string(skip) != "skip" || PgTestServerUri().ok()) return "";
  return "OUTPOST_TEST_PG=skip and no OUTPOST_TEST_PG_URI: the PostgreSQL server store is not tested";
}

Status PgTestExec(const std::string& uri, const std::string& sql) {
  PGconn* conn = PQconnectdb(uri.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    return Status::Unavailable("cannot connect to the test server: " + message);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);  // DROP .. IF EXISTS says "skipping"
  PGresult* r = PQexec(conn, sql.c_str());
  Status s;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    s = Status::IOError(sql + ": " + PQresultErrorMessage(r));
  }
  PQclear(r);
  PQfinish(conn);
  return s;
}

Result<std::string> CreatePgTestDatabase(const std::string& unique) {
  OUTPOST_ASSIGN_OR_RETURN(std::string server, PgTestServerUri());
  std::string db = "outpost_test_" + std::to_string(getpid()) + "_";
  for (char c : unique) db += std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(c)) : '_';
  db = db.substr(0, 63);
  (void)PgTestExec(server, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
  OUTPOST_RETURN_IF_ERROR(PgTestExec(server, "CREATE DATABASE " + db));
  return WithDatabase(server, db);
}

void DropPgTestDatabase(const std::string& uri) {
  auto server = PgTestServerUri();
  std::string db = DatabaseOf(uri);
  if (!server.ok() || db.rfind("outpost_test_", 0) != 0) return;
  (void)PgTestExec(*server, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
}

}  // namespace outpost
