// Copyright 2026 The Outpost Authors.
#include "server_store/postgresql/pg_conn.h"

#include <arpa/inet.h>
#include <endian.h>

#include <cstring>

namespace outpost::pg {
namespace {

void PutU32(std::string* out, uint32_t v) {
  v = htonl(v);
  out->append(reinterpret_cast<const char*>(&v), 4);
}

std::string Trimmed(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

}  // namespace

void ArrayParam::Add(std::string_view raw) {
  PutU32(&body_, static_cast<uint32_t>(raw.size()));
  body_.append(raw);
  ++count_;
}

void ArrayParam::AddInt8(int64_t v) {
  uint64_t be = htobe64(static_cast<uint64_t>(v));
  Add(std::string_view(reinterpret_cast<const char*>(&be), 8));
}

void ArrayParam::AddInt2(int16_t v) {
  uint16_t be = htobe16(static_cast<uint16_t>(v));
  Add(std::string_view(reinterpret_cast<const char*>(&be), 2));
}

std::string ArrayParam::Encode() const {
  // ndim, has-nulls flag, element type; per dimension its length and lower bound; then the elements.
  std::string out;
  if (count_ == 0) {
    PutU32(&out, 0);
    PutU32(&out, 0);
    PutU32(&out, element_);
    return out;
  }
  PutU32(&out, 1);
  PutU32(&out, 0);
  PutU32(&out, element_);
  PutU32(&out, static_cast<uint32_t>(count_));
  PutU32(&out, 1);
  out += body_;
  return out;
}

Params& Params::Int8(int64_t v) {
  uint64_t be = htobe64(static_cast<uint64_t>(v));
  return Add(kInt8Oid, std::string(reinterpret_cast<const char*>(&be), 8));
}

Params& Params::Int2(int16_t v) {
  uint16_t be = htobe16(static_cast<uint16_t>(v));
  return Add(kInt2Oid, std::string(reinterpret_cast<const char*>(&be), 2));
}

Params& Params::Add(Oid type, std::string value) {
  types_.push_back(type);
  values_.push_back(std::move(value));
  return *this;
}

void Params::Pointers(std::vector<const char*>* values, std::vector<int>* lengths,
                      std::vector<int>* formats) const {
  values->clear();
  lengths->clear();
  formats->assign(values_.size(), 1);
  for (const std::string& v : values_) {
    values->push_back(v.data());
    lengths->push_back(static_cast<int>(v.size()));
  }
}

int64_t GetInt8(const PGresult* r, int row, int col) {
  uint64_t be = 0;
  if (PQgetlength(r, row, col) == 8) std::memcpy(&be, PQgetvalue(r, row, col), 8);
  return static_cast<int64_t>(be64toh(be));
}

int32_t GetInt4(const PGresult* r, int row, int col) {
  uint32_t be = 0;
  if (PQgetlength(r, row, col) == 4) std::memcpy(&be, PQgetvalue(r, row, col), 4);
  return static_cast<int32_t>(be32toh(be));
}

int16_t GetInt2(const PGresult* r, int row, int col) {
  uint16_t be = 0;
  if (PQgetlength(r, row, col) == 2) std::memcpy(&be, PQgetvalue(r, row, col), 2);
  return static_cast<int16_t>(be16toh(be));
}

bool GetBool(const PGresult* r, int row, int col) {
  return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0] != 0;
}

std::string_view GetBytes(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col))};
}

Status MapError(const PGresult* r, PGconn* conn) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  std::string message = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn));
  std::string text = "postgresql: " + message;
  if (!code.empty()) text += " (SQLSTATE " + code + ")";
  if ((conn && PQstatus(conn) == CONNECTION_BAD) || code.rfind("08", 0) == 0 || code == "57P01" ||
      code == "57P02" || code == "57P03" || code == "53300") {
    return Status::Unavailable(text);
  }
  if (code == "40001" || code == "40P01") return Status::Aborted(text);
  if (code == "23505") return Status::Conflict(text);
  if (code == "53100") return Status::Full(text);
  return Status::IOError(text);
}

Result<std::unique_ptr<Conn>> Conn::Open(const std::string& uri, const std::string& redacted,
                                         std::atomic<uint64_t>* round_trips, const char* application_name) {
  // Defaults first: the expanded URI overrides them (PQconnectdbParams with expand_dbname).
  const char* keys[] = {"connect_timeout",
                        "application_name",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "dbname",
                        nullptr};
  const char* values[] = {"10", application_name, "30", "10", "3", uri.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return Status::Unavailable("postgresql: out of memory connecting to " + redacted);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::Unavailable("postgresql: cannot connect to " + redacted + ": " + message);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);  // notices are not errors; keep stderr quiet
  if (round_trips) ++*round_trips;                // the handshake, at least one
  return std::unique_ptr<Conn>(new Conn(conn, round_trips));
}

Conn::~Conn() { PQfinish(conn_); }

bool Conn::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

bool Conn::idle() const { return !broken() && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

Status Conn::Lost(std::string_view what) {
  broken_ = true;
  return Status::Unavailable("postgresql: " + std::string(what) + ": " + Trimmed(PQerrorMessage(conn_)));
}

Status Conn::Fail(const PGresult* r) {
  const char* constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  last_constraint_ = constraint ? constraint : "";
  Status s = MapError(r, conn_);
  if (s.code() == Status::Code::kUnavailable) broken_ = true;
  return s;
}

Status Conn::Run(const std::vector<Stmt>& stmts, std::vector<ResultPtr>* results) {
  results->clear();
  results->resize(stmts.size());
  last_constraint_.clear();
  if (broken()) return Lost("connection lost");
  if (round_trips_) ++*round_trips_;
  if (PQenterPipelineMode(conn_) != 1) return Lost("cannot enter pipeline mode");
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Stmt& s : stmts) {
    s.params.Pointers(&values, &lengths, &formats);
    if (PQsendQueryParams(conn_, s.sql, s.params.size(), s.params.types(), values.data(), lengths.data(),
                          formats.data(), 1) != 1) {
      return Lost("cannot send a statement");
    }
  }
  if (PQpipelineSync(conn_) != 1) return Lost("cannot send");
  Status first;
  for (size_t i = 0; i < stmts.size(); ++i) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) return Lost("no result");
    ResultPtr owned(r);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      (*results)[i] = std::move(owned);
    } else if (st != PGRES_PIPELINE_ABORTED && first.ok()) {
      first = Fail(r);
      if (broken_) return first;
    }
    // Each statement's results end with a null.
    while (PGresult* extra = PQgetResult(conn_)) {
      if (PQresultStatus(extra) == PGRES_PIPELINE_SYNC) {  // should not come before the last statement
        PQclear(extra);
        broken_ = true;
        return first.ok() ? Status::IOError("postgresql: pipeline out of step") : first;
      }
      PQclear(extra);
    }
  }
  ResultPtr sync(PQgetResult(conn_));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
    if (first.ok()) first = Lost("pipeline did not end");
    broken_ = true;
    return first;
  }
  if (PQexitPipelineMode(conn_) != 1) {
    broken_ = true;
    if (first.ok()) first = Lost("cannot leave pipeline mode");
  }
  return first;
}

Status Conn::RunOne(const Stmt& stmt, ResultPtr* result) {
  std::vector<Stmt> one;
  one.push_back(stmt);
  std::vector<ResultPtr> results;
  Status s = Run(one, &results);
  *result = std::move(results[0]);
  return s;
}

Status Conn::Exec(const char* sql) {
  last_constraint_.clear();
  if (broken()) return Lost("connection lost");
  if (round_trips_) ++*round_trips_;
  ResultPtr r(PQexec(conn_, sql));
  if (!r) return Lost("no result");
  ExecStatusType st = PQresultStatus(r.get());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::OK();
  return Fail(r.get());
}

}  // namespace outpost::pg
