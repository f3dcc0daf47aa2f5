// Copyright 2026 The Outpost Authors.
//
// libpq at the PostgreSQL store's boundary: one connection, statements with binary parameters and results,
// pipelines (several statements, one round trip) and the mapping of PostgreSQL errors to Status.
//
// Thread safety: a Conn is used by one thread at a time.
#ifndef OUTPOST_SERVER_STORE_POSTGRESQL_PG_CONN_H_
#define OUTPOST_SERVER_STORE_POSTGRESQL_PG_CONN_H_

#include <libpq-fe.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost::pg {

// Type oids (pg_type.dat) of the parameters we send.
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kInt2Oid = 21;
inline constexpr Oid kTextOid = 25;
inline constexpr Oid kByteaArrayOid = 1001;
inline constexpr Oid kInt2ArrayOid = 1005;
inline constexpr Oid kTextArrayOid = 1009;
inline constexpr Oid kInt8ArrayOid = 1016;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A one-dimensional array parameter in PostgreSQL's binary array format.
class ArrayParam {
 public:
  ArrayParam(Oid element, Oid array) : element_(element), array_(array) {}
  void Add(std::string_view raw);  // bytea or text element
  void AddInt8(int64_t v);
  void AddInt2(int16_t v);
  size_t size() const { return count_; }
  Oid array_oid() const { return array_; }
  std::string Encode() const;

 private:
  Oid element_;
  Oid array_;
  size_t count_ = 0;
  std::string body_;
};

// The parameters of one statement, all in binary format.
class Params {
 public:
  Params& Bytes(std::string_view v) { return Add(kByteaOid, std::string(v)); }
  Params& Text(std::string_view v) { return Add(kTextOid, std::string(v)); }
  Params& Int8(int64_t v);
  Params& Int2(int16_t v);
  Params& Array(const ArrayParam& a) { return Add(a.array_oid(), a.Encode()); }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into the values, valid while this object lives and is not changed.
  void Pointers(std::vector<const char*>* values, std::vector<int>* lengths, std::vector<int>* formats) const;

 private:
  Params& Add(Oid type, std::string value);
  std::vector<Oid> types_;
  std::deque<std::string> values_;
};

struct Stmt {
  const char* sql;
  Params params;
};

// Binary result fields.
int64_t GetInt8(const PGresult* r, int row, int col);
int32_t GetInt4(const PGresult* r, int row, int col);
int16_t GetInt2(const PGresult* r, int row, int col);
bool GetBool(const PGresult* r, int row, int col);
std::string_view GetBytes(const PGresult* r, int row, int col);  // bytea and text

class Conn {
 public:
  // Connects with `uri` (libpq's connection string); `redacted` names it in messages. Counts round trips
  // into `round_trips` when not null. Unavailable when the server cannot be reached.
  static Result<std::unique_ptr<Conn>> Open(const std::string& uri, const std::string& redacted,
                                            std::atomic<uint64_t>* round_trips,
                                            const char* application_name = "outpostd");
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs `stmts` in one pipeline: one round trip. `results` gets one result per statement (null for those
  // not run). The first failure ends it: the statements after it are not run, the failure is returned and
  // an open transaction is left in the failed state (the caller rolls back).
  Status Run(const std::vector<Stmt>& stmts, std::vector<ResultPtr>* results);
  Status RunOne(const Stmt& stmt, ResultPtr* result);
  // A statement without parameters (ROLLBACK, LISTEN ...).
  Status Exec(const char* sql);

  // The constraint that the last failure violated ("" when none).
  const std::string& last_constraint() const { return last_constraint_; }
  // A broken connection is not reused.
  bool broken() const;
  // Idle outside a transaction: fit to go back to the pool.
  bool idle() const;
  PGconn* raw() { return conn_; }

 private:
  Conn(PGconn* conn, std::atomic<uint64_t>* round_trips) : conn_(conn), round_trips_(round_trips) {}
  Status Fail(const PGresult* r);
  Status Lost(std::string_view what);

  PGconn* conn_;
  std::atomic<uint64_t>* round_trips_;
  bool broken_ = false;
  std::string last_constraint_;
};

// A PostgreSQL error as a Status (see pg_server_store.h).
Status MapError(const PGresult* r, PGconn* conn);

}  // namespace outpost::pg

#endif  // OUTPOST_SERVER_STORE_POSTGRESQL_PG_CONN_H_
