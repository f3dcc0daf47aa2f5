// Copyright 2026 The Outpost Authors.
#include "server_store/postgresql/pg_server_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <utility>

#include "outpost/membership.h"
#include "server_store/postgresql/pg_conn.h"
#include "server_store/postgresql/pg_events.h"

namespace outpost {
namespace {

using pg::ArrayParam;
using pg::Conn;
using pg::Params;
using pg::ResultPtr;
using pg::Stmt;

// pg_advisory_xact_lock key of migrations: "outpost" in ASCII.
constexpr int64_t kMigrationLockKey = 0x6f7574706f7374;
// Rows per round trip of DeviceCounters.
constexpr int64_t kCounterPageRows = 1000;

// The schema, version 1. Stream ids, op ids, ops, token hashes and messages are bytes (bytea); user and
// device names are text in byte order (COLLATE "C": sorted as the key-value store sorts them).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE outpost_schema (version integer NOT NULL);
CREATE TABLE streams (stream bytea PRIMARY KEY, high bigint NOT NULL);
CREATE TABLE ops (stream bytea NOT NULL, seq bigint NOT NULL, op bytea NOT NULL, PRIMARY KEY (stream, seq));
CREATE TABLE op_records (
  op_id bytea PRIMARY KEY, code smallint NOT NULL, seq bigint NOT NULL, counter bigint NOT NULL,
  error_code integer NOT NULL, stream bytea NOT NULL, user_name text COLLATE "C" NOT NULL,
  device text COLLATE "C" NOT NULL, message bytea NOT NULL);
CREATE TABLE counters (
  user_name text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, stream bytea NOT NULL,
  last bigint NOT NULL, PRIMARY KEY (user_name, device, stream));
CREATE TABLE members (
  stream bytea NOT NULL, user_name text COLLATE "C" NOT NULL, PRIMARY KEY (stream, user_name));
CREATE INDEX members_by_user ON members (user_name, stream);
CREATE TABLE watermarks (
  stream bytea NOT NULL, user_name text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL,
  kind smallint NOT NULL, seq bigint NOT NULL, PRIMARY KEY (stream, user_name, device, kind));
CREATE TABLE users (name text COLLATE "C" PRIMARY KEY, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE tokens (
  hash bytea PRIMARY KEY, user_name text COLLATE "C" NOT NULL REFERENCES users (name),
  device text COLLATE "C" NOT NULL DEFAULT '');
CREATE INDEX tokens_by_user ON tokens (user_name);
)sql";

// Version 2 (from 1): the streams whose applied ops reference each attachment blob (who may download it).
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS blob_refs (blob text COLLATE "C" NOT NULL, stream bytea NOT NULL, PRIMARY KEY (blob, stream));
)sql";

// Version 3, devices (its own step; other version 3 tables have theirs): a record per device of a user
// (created, last seen, last address, revoked; times in Unix ms, 0: unknown or never) and the revocation
// log that every outpostd on the database polls (RevokedSince). Devices bound before it get a record with
// created_ms 0 (unknown).
constexpr const char* kSchemaV3Devices = R"sql(
CREATE TABLE IF NOT EXISTS devices (
  user_name text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL,
  created_ms bigint NOT NULL DEFAULT 0, last_seen_ms bigint NOT NULL DEFAULT 0,
  last_address text NOT NULL DEFAULT '', revoked_ms bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_name, device));
CREATE TABLE IF NOT EXISTS device_revocations (
  generation bigint PRIMARY KEY, user_name text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL);
INSERT INTO devices (user_name, device) SELECT DISTINCT user_name, device FROM tokens WHERE device <> ''
  ON CONFLICT DO NOTHING;
)sql";
// pg_advisory_xact_lock key of revocations ("revoke" in ASCII): generations are given and committed one at a
// time, in order, so that a poller that has read generation N has seen every revocation up to N.
constexpr int64_t kRevocationLockKey = 0x7265766f6b65;
// Revocations one RevokedSince answer carries at most.
constexpr int64_t kRevocationsPerCallMax = 1000;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Version 3, incarnations (from 2; a step of its own, beside the other version-3 steps): the store's
// incarnations, the first one made with the tables (kSchemaV3IncarnationsFirst), and per restore the high
// seq each stream had when it began (NewPgIncarnation).
constexpr const char* kSchemaV3Incarnations = R"sql(
CREATE TABLE IF NOT EXISTS incarnations (n bigint PRIMARY KEY, id bytea NOT NULL);
CREATE TABLE IF NOT EXISTS restore_bases (
  n bigint NOT NULL, stream bytea NOT NULL, base bigint NOT NULL, PRIMARY KEY (n, stream));
)sql";
constexpr const char* kSchemaV3IncarnationsFirst =
    "INSERT INTO incarnations (n, id) SELECT 0, $1 WHERE NOT EXISTS (SELECT 1 FROM incarnations)";

std::string NewIncarnationId() {
  std::string id(16, '\0');
  std::random_device rd;
  for (char& c : id) c = static_cast<char>(rd());
  return id;
}

int64_t Signed(uint64_t v) {
  return v > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(v);
}

std::string MigrateHint(const std::string& redacted) {
  return "run `outpostd migrate --store " + redacted + "`";
}

// ---- Connections --------------------------------------------------------------------------------------

struct PgShared {
  PgShared(std::string u, std::string r) : uri(std::move(u)), redacted(std::move(r)) {
    std::random_device rd;
    instance = (uint64_t(rd()) << 32) ^ rd();
  }
  const std::string uri;
  const std::string redacted;
  uint64_t instance = 0;
  std::atomic<uint64_t> round_trips{0}, connections_opened{0}, notifies_sent{0}, notifies_received{0};

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Conn>> idle;  // guarded by mu
  int open = 0;                             // connections lent or idle; guarded by mu

  Result<std::unique_ptr<Conn>> Acquire() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !idle.empty() || open < kPgPoolConnectionsMax; });
    if (!idle.empty()) {
      std::unique_ptr<Conn> c = std::move(idle.back());
      idle.pop_back();
      return c;
    }
    ++open;
    lock.unlock();
    auto c = Conn::Open(uri, redacted, &round_trips);
    if (!c.ok()) {
      lock.lock();
      --open;
      cv.notify_one();
      return c.status();
    }
    ++connections_opened;
    return c;
  }

  void Release(std::unique_ptr<Conn> c) {
    if (!c) return;
    std::unique_lock<std::mutex> lock(mu);
    if (c->idle()) {
      idle.push_back(std::move(c));
    } else {
      --open;
      lock.unlock();
      c.reset();  // a broken connection, or one stuck in a transaction
      lock.lock();
    }
    cv.notify_one();
  }
};

// A connection borrowed from the pool for one call.
class Lease {
 public:
  explicit Lease(std::shared_ptr<PgShared> shared) : shared_(std::move(shared)) {}
  ~Lease() { shared_->Release(std::move(conn_)); }
  Status Get() {
    auto c = shared_->Acquire();
    if (!c.ok()) return c.status();
    conn_ = std::move(c).value();
    return Status::OK();
  }
  Conn* operator->() { return conn_.get(); }
  Conn& operator*() { return *conn_; }

 private:
  std::shared_ptr<PgShared> shared_;
  std::unique_ptr<Conn> conn_;
};

// ---- Reads shared by both transactions ----------------------------------------------------------------

template <typename Base>
class PgReads : public Base {
 public:
  Status ReadPage(std::string_view stream, uint64_t after, uint32_t limit, size_t bytes_max,
                  std::vector<std::string>* ops) override {
    if (limit == 0) return Status::OK();
    // The window sum stops the page at bytes_max on the server; the first op always comes.
    Stmt s{
        "SELECT op FROM (SELECT op, seq, row_number() OVER w AS n, sum(octet_length(op)) OVER w AS total "
        "FROM ops WHERE stream = $1 AND seq > $2 WINDOW w AS (ORDER BY seq ROWS UNBOUNDED PRECEDING) "
        "ORDER BY seq LIMIT $3) p WHERE n = 1 OR total <= $4 ORDER BY seq",
        {}};
    s.params.Bytes(stream).Int8(Signed(after)).Int8(limit).Int8(Signed(bytes_max));
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    for (int i = 0; i < PQntuples(r.get()); ++i) ops->emplace_back(pg::GetBytes(r.get(), i, 0));
    return Status::OK();
  }

  Status BlobStreams(std::string_view blob_id, uint32_t limit, std::vector<std::string>* streams) override {
    streams->clear();
    Stmt s{"SELECT stream FROM blob_refs WHERE blob = $1 ORDER BY stream LIMIT $2", {}};
    s.params.Text(blob_id).Int8(limit);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    for (int i = 0; i < PQntuples(r.get()); ++i) streams->emplace_back(pg::GetBytes(r.get(), i, 0));
    return Status::OK();
  }

  Status IsMember(std::string_view stream, std::string_view user, bool* member) override {
    Stmt s{"SELECT EXISTS (SELECT 1 FROM members WHERE stream = $1 AND user_name = $2)", {}};
    s.params.Bytes(stream).Text(user);
    return Bool(std::move(s), member);
  }

  Status MemberOf(std::string_view user, const std::vector<std::string>& streams,
                  std::vector<bool>* member) override {
    member->assign(streams.size(), false);
    if (streams.empty()) return Status::OK();
    ArrayParam a(pg::kByteaOid, pg::kByteaArrayOid);
    for (const auto& stream : streams) a.Add(stream);
    Stmt s{"SELECT stream FROM members WHERE user_name = $1 AND stream = ANY($2::bytea[])", {}};
    s.params.Text(user).Array(a);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    std::set<std::string_view> found;
    for (int i = 0; i < PQntuples(r.get()); ++i) found.insert(pg::GetBytes(r.get(), i, 0));
    for (size_t i = 0; i < streams.size(); ++i) (*member)[i] = found.contains(streams[i]);
    return Status::OK();
  }

  Status HasMembers(std::string_view stream, bool* any) override {
    Stmt s{"SELECT EXISTS (SELECT 1 FROM members WHERE stream = $1)", {}};
    s.params.Bytes(stream);
    return Bool(std::move(s), any);
  }

  Status Members(std::string_view stream, std::vector<std::string>* users) override {
    Stmt s{"SELECT user_name FROM members WHERE stream = $1 ORDER BY user_name", {}};
    s.params.Bytes(stream);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    users->clear();
    for (int i = 0; i < PQntuples(r.get()); ++i) users->emplace_back(pg::GetBytes(r.get(), i, 0));
    return Status::OK();
  }

  Status DeviceCounters(std::string_view user, std::string_view device,
                        const std::function<bool(std::string_view stream, uint64_t last)>& fn) override {
    // A counter row of 0 is a lock placeholder (Counter() in a write transaction): no counter.
    std::optional<std::string> from;
    for (;;) {
      Stmt s{from ? "SELECT stream, last FROM counters WHERE user_name = $1 AND device = $2 AND last > 0 "
                    "AND stream > $4 ORDER BY stream LIMIT $3"
                  : "SELECT stream, last FROM counters WHERE user_name = $1 AND device = $2 AND last > 0 "
                    "ORDER BY stream LIMIT $3",
             {}};
      s.params.Text(user).Text(device).Int8(kCounterPageRows);
      if (from) s.params.Bytes(*from);
      ResultPtr r;
      OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
      int rows = PQntuples(r.get());
      for (int i = 0; i < rows; ++i) {
        if (!fn(pg::GetBytes(r.get(), i, 0), uint64_t(pg::GetInt8(r.get(), i, 1)))) return Status::OK();
      }
      if (rows < kCounterPageRows) return Status::OK();
      from = std::string(pg::GetBytes(r.get(), rows - 1, 0));
    }
  }

  Status Watermarks(std::string_view stream, std::vector<StoredWatermark>* out) override {
    Stmt s{
        "SELECT user_name, device, kind, seq FROM watermarks WHERE stream = $1 "
        "ORDER BY user_name, device, kind",
        {}};
    s.params.Bytes(stream);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    out->clear();
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      StoredWatermark w;
      w.stream = std::string(stream);
      w.user = pg::GetBytes(r.get(), i, 0);
      w.device = pg::GetBytes(r.get(), i, 1);
      w.kind = uint8_t(pg::GetInt2(r.get(), i, 2));
      w.seq = uint64_t(pg::GetInt8(r.get(), i, 3));
      out->push_back(std::move(w));
    }
    return Status::OK();
  }

  Status Watermark(std::string_view stream, std::string_view user, std::string_view device, uint8_t kind,
                   uint64_t* seq) override {
    Stmt s{"SELECT seq FROM watermarks WHERE stream = $1 AND user_name = $2 AND device = $3 AND kind = $4",
           {}};
    s.params.Bytes(stream).Text(user).Text(device).Int2(kind);
    return Uint(std::move(s), seq);
  }

  Status Incarnations(std::vector<std::string>* ids) override {
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One({"SELECT id FROM incarnations ORDER BY n", {}}, &r));
    ids->clear();
    for (int i = 0; i < PQntuples(r.get()); ++i) ids->emplace_back(pg::GetBytes(r.get(), i, 0));
    if (ids->empty()) return Status::Corruption("postgresql store: no incarnation recorded");
    return Status::OK();
  }

  Status RestoreBase(uint64_t n, std::string_view stream, uint64_t* base) override {
    Stmt s{"SELECT base FROM restore_bases WHERE n = $1 AND stream = $2", {}};
    s.params.Int8(Signed(n)).Bytes(stream);
    return Uint(std::move(s), base);
  }

 protected:
  // Runs `tail` (after whatever the transaction must send first) in one round trip.
  virtual Status Query(std::vector<Stmt> tail, std::vector<ResultPtr>* results) = 0;

  Status One(Stmt s, ResultPtr* r) {
    std::vector<Stmt> tail;
    tail.push_back(std::move(s));
    std::vector<ResultPtr> results;
    OUTPOST_RETURN_IF_ERROR(Query(std::move(tail), &results));
    *r = std::move(results.at(0));
    return Status::OK();
  }
  Status Bool(Stmt s, bool* out) {
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    *out = PQntuples(r.get()) == 1 && pg::GetBool(r.get(), 0, 0);
    return Status::OK();
  }
  // The bigint of the first row; 0 when no row.
  Status Uint(Stmt s, uint64_t* out) {
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    *out = PQntuples(r.get()) > 0 ? uint64_t(pg::GetInt8(r.get(), 0, 0)) : 0;
    return Status::OK();
  }
};

// ---- Read transaction ---------------------------------------------------------------------------------

class PgReadTxn final : public PgReads<ServerReadTxn> {
 public:
  PgReadTxn(std::shared_ptr<PgShared> shared, std::unique_ptr<Conn> conn)
      : shared_(std::move(shared)), conn_(std::move(conn)) {}
  ~PgReadTxn() override {
    if (conn_ && !conn_->broken()) (void)conn_->Exec("ROLLBACK");
    shared_->Release(std::move(conn_));
  }

  // The snapshot is taken here, by the first statement after BEGIN.
  Status Begin() {
    std::vector<Stmt> stmts;
    stmts.push_back({"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}});
    stmts.push_back({"SELECT 1", {}});
    std::vector<ResultPtr> results;
    return conn_->Run(stmts, &results);
  }

  Status High(std::string_view stream, uint64_t* high) override {
    Stmt s{"SELECT high FROM streams WHERE stream = $1", {}};
    s.params.Bytes(stream);
    return Uint(std::move(s), high);
  }

  Status Counter(const CounterKey& key, uint64_t* last) override {
    Stmt s{"SELECT last FROM counters WHERE user_name = $1 AND device = $2 AND stream = $3", {}};
    s.params.Text(key.user).Text(key.device).Bytes(key.stream);
    return Uint(std::move(s), last);
  }

 protected:
  Status Query(std::vector<Stmt> tail, std::vector<ResultPtr>* results) override {
    return conn_->Run(tail, results);
  }

 private:
  std::shared_ptr<PgShared> shared_;
  std::unique_ptr<Conn> conn_;
};

// ---- Write transaction --------------------------------------------------------------------------------

class PgWriteTxn final : public PgReads<ServerWriteTxn> {
 public:
  PgWriteTxn(std::shared_ptr<PgShared> shared, std::unique_ptr<Conn> conn)
      : shared_(std::move(shared)), conn_(std::move(conn)) {}
  ~PgWriteTxn() override { End(); }

  Status High(std::string_view stream, uint64_t* high) override {
    auto it = heads_.find(stream);
    if (it == heads_.end()) {
      OUTPOST_RETURN_IF_ERROR(Prepare({std::string(stream)}, {}, {}));
      it = heads_.find(stream);
    }
    *high = it->second;
    return Status::OK();
  }

  Status Counter(const CounterKey& key, uint64_t* last) override {
    auto it = counters_.find(key);
    if (it == counters_.end()) {
      OUTPOST_RETURN_IF_ERROR(Prepare({}, {key}, {}));
      it = counters_.find(key);
    }
    *last = it->second;
    return Status::OK();
  }

  Status GetOpRecord(const OpId& id, OpRecord* rec) override {
    auto it = records_.find(id);
    if (it == records_.end()) {
      OUTPOST_RETURN_IF_ERROR(Prepare({}, {}, {id}));
      it = records_.find(id);
    }
    if (!it->second.value) return Status::NotFound("no record of op " + id.ToString());
    *rec = *it->second.value;
    return Status::OK();
  }

  // Locks and loads, in one round trip: stream heads then counters, each in sorted order (every
  // transaction locks in this order: two groups never deadlock on them), then the op records (read after
  // the counter locks: a record committed by the transaction we waited for is seen).
  Status Prepare(const std::vector<std::string>& streams_in, const std::vector<CounterKey>& counters_in,
                 const std::vector<OpId>& op_ids_in) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    std::vector<std::string> streams;
    for (const std::string& s : streams_in) {
      if (!heads_.count(s)) streams.push_back(s);
    }
    std::sort(streams.begin(), streams.end());
    streams.erase(std::unique(streams.begin(), streams.end()), streams.end());
    std::vector<CounterKey> counters;
    for (const CounterKey& k : counters_in) {
      if (!counters_.count(k)) counters.push_back(k);
    }
    std::sort(counters.begin(), counters.end());
    counters.erase(std::unique(counters.begin(), counters.end()), counters.end());
    std::vector<OpId> op_ids;
    for (const OpId& id : op_ids_in) {
      if (!records_.count(id)) op_ids.push_back(id);
    }
    std::sort(op_ids.begin(), op_ids.end());
    op_ids.erase(std::unique(op_ids.begin(), op_ids.end()), op_ids.end());
    if (streams.empty() && counters.empty() && op_ids.empty()) return Status::OK();

    std::vector<Stmt> tail;
    int streams_at = -1, counters_at = -1, records_at = -1;
    if (!streams.empty()) {
      ArrayParam a(pg::kByteaOid, pg::kByteaArrayOid);
      for (const std::string& s : streams) a.Add(s);
      tail.push_back(
          {"INSERT INTO streams (stream, high) SELECT s, 0 FROM unnest($1::bytea[]) AS s ORDER BY s "
           "ON CONFLICT (stream) DO NOTHING",
           {}});
      tail.back().params.Array(a);
      streams_at = int(tail.size());
      tail.push_back(
          {"SELECT stream, high FROM streams WHERE stream = ANY ($1::bytea[]) ORDER BY stream FOR UPDATE",
           {}});
      tail.back().params.Array(a);
    }
    if (!counters.empty()) {
      ArrayParam u(pg::kTextOid, pg::kTextArrayOid), d(pg::kTextOid, pg::kTextArrayOid),
          s(pg::kByteaOid, pg::kByteaArrayOid);
      for (const CounterKey& k : counters) {
        u.Add(k.user);
        d.Add(k.device);
        s.Add(k.stream);
      }
      tail.push_back(
          {"INSERT INTO counters (user_name, device, stream, last) "
           "SELECT u, d, s, 0 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t (u, d, s) "
           "ORDER BY u COLLATE \"C\", d COLLATE \"C\", s ON CONFLICT DO NOTHING",
           {}});
      tail.back().params.Array(u).Array(d).Array(s);
      counters_at = int(tail.size());
      tail.push_back(
          {"SELECT user_name, device, stream, last FROM counters WHERE (user_name, device, stream) IN "
           "(SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])) "
           "ORDER BY user_name, device, stream FOR UPDATE",
           {}});
      tail.back().params.Array(u).Array(d).Array(s);
    }
    if (!op_ids.empty()) {
      ArrayParam a(pg::kByteaOid, pg::kByteaArrayOid);
      for (const OpId& id : op_ids) a.Add(id.AsBytes());
      records_at = int(tail.size());
      tail.push_back(
          {"SELECT op_id, code, seq, counter, error_code, stream, user_name, device, message "
           "FROM op_records WHERE op_id = ANY ($1::bytea[])",
           {}});
      tail.back().params.Array(a);
    }
    std::vector<ResultPtr> results;
    OUTPOST_RETURN_IF_ERROR(Send(std::move(tail), /*flush=*/false, &results));

    for (const std::string& s : streams) heads_[s] = 0;
    if (streams_at >= 0) {
      const PGresult* r = results[size_t(streams_at)].get();
      for (int i = 0; i < PQntuples(r); ++i) {
        heads_[std::string(pg::GetBytes(r, i, 0))] = uint64_t(pg::GetInt8(r, i, 1));
      }
    }
    for (const CounterKey& k : counters) counters_[k] = 0;
    if (counters_at >= 0) {
      const PGresult* r = results[size_t(counters_at)].get();
      for (int i = 0; i < PQntuples(r); ++i) {
        CounterKey k{std::string(pg::GetBytes(r, i, 0)), std::string(pg::GetBytes(r, i, 1)),
                     std::string(pg::GetBytes(r, i, 2))};
        counters_[std::move(k)] = uint64_t(pg::GetInt8(r, i, 3));
      }
    }
    for (const OpId& id : op_ids) records_[id] = Record{true, false, std::nullopt};
    if (records_at >= 0) {
      const PGresult* r = results[size_t(records_at)].get();
      for (int i = 0; i < PQntuples(r); ++i) {
        auto id = OpId::FromBytes(pg::GetBytes(r, i, 0));
        if (!id.ok()) return Spoil(Status::Corruption("postgresql: op_records holds an op id of bad length"));
        OpRecord rec;
        rec.code = uint8_t(pg::GetInt2(r, i, 1));
        rec.seq = uint64_t(pg::GetInt8(r, i, 2));
        rec.counter = uint64_t(pg::GetInt8(r, i, 3));
        rec.error_code = uint16_t(pg::GetInt4(r, i, 4));
        rec.stream = pg::GetBytes(r, i, 5);
        rec.user = pg::GetBytes(r, i, 6);
        rec.device = pg::GetBytes(r, i, 7);
        rec.message = pg::GetBytes(r, i, 8);
        records_[*id] = Record{false, true, std::move(rec)};
      }
    }
    return Status::OK();
  }

  Status PutOpRecord(const OpId& id, const OpRecord& rec) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    auto it = records_.find(id);
    // A record looked up and not found is inserted (another instance inserting it meanwhile fails the
    // commit: Aborted); one never looked up, or found, is replaced.
    bool insert = it != records_.end() && it->second.known_absent && !it->second.stored;
    put_records_[id] = {insert, rec};
    Record& cached = records_[id];
    cached.value = rec;
    return Status::OK();
  }

  Status AppendOp(std::string_view stream, uint64_t seq, std::string_view op) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    ops_.push_back({std::string(stream), seq, std::string(op)});
    return Status::OK();
  }

  Status SetHigh(std::string_view stream, uint64_t high) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    heads_[std::string(stream)] = high;
    set_heads_[std::string(stream)] = high;
    return Status::OK();
  }

  Status SetCounter(const CounterKey& key, uint64_t last) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    counters_[key] = last;
    set_counters_[key] = last;
    return Status::OK();
  }

  Status AddMember(std::string_view stream, std::string_view user) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    members_[{std::string(stream), std::string(user)}] = true;
    return Status::OK();
  }

  Status RemoveMember(std::string_view stream, std::string_view user) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    members_[{std::string(stream), std::string(user)}] = false;
    return Status::OK();
  }

  Status AddBlobRef(std::string_view blob_id, std::string_view stream) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    blob_refs_.emplace(std::string(blob_id), std::string(stream));
    return Status::OK();
  }

  Status PutWatermark(const StoredWatermark& wm) override {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    watermarks_[{wm.stream, wm.user, wm.device, wm.kind}] = wm.seq;
    return Status::OK();
  }

  Status Commit() override {
    if (done_) return Status::FailedPrecondition("postgresql: the transaction has ended");
    if (!spoilt_.ok()) {
      Status s = spoilt_;
      End();
      return s;
    }
    if (!begun_ && !HasWrites()) {
      End();
      return Status::OK();
    }
    std::vector<Stmt> tail;
    tail.push_back({"COMMIT", {}});
    std::vector<ResultPtr> results;
    Status s = Send(std::move(tail), /*flush=*/true, &results);
    if (s.ok()) committed_ = true;
    End();
    return s;
  }

 protected:
  // Reads other than heads, counters and records go to the server, after this transaction's writes.
  Status Query(std::vector<Stmt> tail, std::vector<ResultPtr>* results) override {
    return Send(std::move(tail), /*flush=*/true, results);
  }

 private:
  struct Record {
    bool known_absent = false;  // looked up and not found
    bool stored = false;        // in the database (found, or written by a flush of this transaction)
    std::optional<OpRecord> value;
  };
  struct PutRecord {
    bool insert = false;  // INSERT (a unique violation means a concurrent first record) or upsert
    OpRecord rec;
  };
  struct AppendedOp {
    std::string stream;
    uint64_t seq;
    std::string op;
  };

  bool HasWrites() const {
    return !ops_.empty() || !set_heads_.empty() || !set_counters_.empty() || !put_records_.empty() ||
           !members_.empty() || !watermarks_.empty() || !blob_refs_.empty();
  }

  Status Spoil(Status s) {
    if (s.code() == Status::Code::kConflict && conn_ && conn_->last_constraint() == "op_records_pkey") {
      s = Status::Aborted(
          "postgresql: another instance recorded the same op id meanwhile; retry the group (" + s.message() +
          ")");
    }
    if (spoilt_.ok()) spoilt_ = s;
    return s;
  }

  // BEGIN when not begun, the buffered writes when `flush`, then `tail`: one round trip.
  Status Send(std::vector<Stmt> tail, bool flush, std::vector<ResultPtr>* results) {
    OUTPOST_RETURN_IF_ERROR(spoilt_);
    if (done_) return Status::FailedPrecondition("postgresql: the transaction has ended");
    std::vector<Stmt> stmts;
    if (!begun_) {
      stmts.push_back({"BEGIN", {}});
      stmts.push_back({"SET LOCAL synchronous_commit = on", {}});
    }
    if (flush) AppendWrites(&stmts);
    size_t skip = stmts.size();
    for (Stmt& s : tail) stmts.push_back(std::move(s));
    std::vector<ResultPtr> all;
    begun_ = true;  // even after a failure, BEGIN may have run: End rolls back
    Status s = conn_->Run(stmts, &all);
    if (!s.ok()) return Spoil(s);
    results->clear();
    for (size_t i = skip; i < all.size(); ++i) results->push_back(std::move(all[i]));
    return Status::OK();
  }

  // The buffered writes as one statement per table (arrays unnested), in key order; clears the buffers.
  void AppendWrites(std::vector<Stmt>* stmts) {
    if (!set_heads_.empty()) {
      ArrayParam s(pg::kByteaOid, pg::kByteaArrayOid), h(pg::kInt8Oid, pg::kInt8ArrayOid);
      for (const auto& [stream, high] : set_heads_) {
        s.Add(stream);
        h.AddInt8(Signed(high));
      }
      stmts->push_back(
          {"INSERT INTO streams (stream, high) SELECT * FROM unnest($1::bytea[], $2::int8[]) "
           "ON CONFLICT (stream) DO UPDATE SET high = EXCLUDED.high",
           {}});
      stmts->back().params.Array(s).Array(h);
      set_heads_.clear();
    }
    if (!ops_.empty()) {
      ArrayParam s(pg::kByteaOid, pg::kByteaArrayOid), q(pg::kInt8Oid, pg::kInt8ArrayOid),
          o(pg::kByteaOid, pg::kByteaArrayOid);
      for (const AppendedOp& op : ops_) {
        s.Add(op.stream);
        q.AddInt8(Signed(op.seq));
        o.Add(op.op);
      }
      stmts->push_back(
          {"INSERT INTO ops (stream, seq, op) SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[])",
           {}});
      stmts->back().params.Array(s).Array(q).Array(o);
      ops_.clear();
    }
    if (!set_counters_.empty()) {
      ArrayParam u(pg::kTextOid, pg::kTextArrayOid), d(pg::kTextOid, pg::kTextArrayOid),
          s(pg::kByteaOid, pg::kByteaArrayOid), l(pg::kInt8Oid, pg::kInt8ArrayOid);
      for (const auto& [k, last] : set_counters_) {
        u.Add(k.user);
        d.Add(k.device);
        s.Add(k.stream);
        l.AddInt8(Signed(last));
      }
      stmts->push_back(
          {"INSERT INTO counters (user_name, device, stream, last) "
           "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int8[]) "
           "ON CONFLICT (user_name, device, stream) DO UPDATE SET last = EXCLUDED.last",
           {}});
      stmts->back().params.Array(u).Array(d).Array(s).Array(l);
      set_counters_.clear();
    }
    for (bool insert : {true, false}) {
      ArrayParam id(pg::kByteaOid, pg::kByteaArrayOid), code(pg::kInt2Oid, pg::kInt2ArrayOid),
          seq(pg::kInt8Oid, pg::kInt8ArrayOid), counter(pg::kInt8Oid, pg::kInt8ArrayOid),
          error(pg::kInt8Oid, pg::kInt8ArrayOid), stream(pg::kByteaOid, pg::kByteaArrayOid),
          user(pg::kTextOid, pg::kTextArrayOid), device(pg::kTextOid, pg::kTextArrayOid),
          message(pg::kByteaOid, pg::kByteaArrayOid);
      for (const auto& [op_id, put] : put_records_) {
        if (put.insert != insert) continue;
        id.Add(op_id.AsBytes());
        code.AddInt2(int16_t(put.rec.code));
        seq.AddInt8(Signed(put.rec.seq));
        counter.AddInt8(Signed(put.rec.counter));
        error.AddInt8(put.rec.error_code);
        stream.Add(put.rec.stream);
        user.Add(put.rec.user);
        device.Add(put.rec.device);
        message.Add(put.rec.message);
      }
      if (id.size() == 0) continue;
      stmts->push_back(
          {insert
               ? "INSERT INTO op_records (op_id, code, seq, counter, error_code, stream, user_name, device, "
                 "message) SELECT * FROM unnest($1::bytea[], $2::int2[], $3::int8[], $4::int8[], $5::int8[], "
                 "$6::bytea[], $7::text[], $8::text[], $9::bytea[])"
               : "INSERT INTO op_records (op_id, code, seq, counter, error_code, stream, user_name, device, "
                 "message) SELECT * FROM unnest($1::bytea[], $2::int2[], $3::int8[], $4::int8[], $5::int8[], "
                 "$6::bytea[], $7::text[], $8::text[], $9::bytea[]) ON CONFLICT (op_id) DO UPDATE SET "
                 "code = EXCLUDED.code, seq = EXCLUDED.seq, counter = EXCLUDED.counter, "
                 "error_code = EXCLUDED.error_code, stream = EXCLUDED.stream, user_name = "
                 "EXCLUDED.user_name, "
                 "device = EXCLUDED.device, message = EXCLUDED.message",
           {}});
      stmts->back().params.Array(id).Array(code).Array(seq).Array(counter).Array(error).Array(stream);
      stmts->back().params.Array(user).Array(device).Array(message);
    }
    for (auto& [op_id, put] : put_records_) records_[op_id].stored = true;
    put_records_.clear();
    for (bool add : {true, false}) {
      ArrayParam s(pg::kByteaOid, pg::kByteaArrayOid), u(pg::kTextOid, pg::kTextArrayOid);
      for (const auto& [key, present] : members_) {
        if (present != add) continue;
        s.Add(key.first);
        u.Add(key.second);
      }
      if (s.size() == 0) continue;
      stmts->push_back(
          {add ? "INSERT INTO members (stream, user_name) SELECT * FROM unnest($1::bytea[], "
                 "$2::text[]) ON CONFLICT DO NOTHING"
               : "DELETE FROM members m USING unnest($1::bytea[], $2::text[]) AS d (stream, user_name) "
                 "WHERE m.stream = d.stream AND m.user_name = d.user_name",
           {}});
      stmts->back().params.Array(s).Array(u);
    }
    members_.clear();
    if (!blob_refs_.empty()) {
      ArrayParam b(pg::kTextOid, pg::kTextArrayOid), s(pg::kByteaOid, pg::kByteaArrayOid);
      for (const auto& [blob, stream] : blob_refs_) {
        b.Add(blob);
        s.Add(stream);
      }
      stmts->push_back(
          {"INSERT INTO blob_refs (blob, stream) SELECT * FROM unnest($1::text[], $2::bytea[]) "
           "ON CONFLICT DO NOTHING",
           {}});
      stmts->back().params.Array(b).Array(s);
      blob_refs_.clear();
    }
    if (!watermarks_.empty()) {
      ArrayParam s(pg::kByteaOid, pg::kByteaArrayOid), u(pg::kTextOid, pg::kTextArrayOid),
          d(pg::kTextOid, pg::kTextArrayOid), k(pg::kInt2Oid, pg::kInt2ArrayOid),
          q(pg::kInt8Oid, pg::kInt8ArrayOid);
      for (const auto& [key, seq] : watermarks_) {
        s.Add(std::get<0>(key));
        u.Add(std::get<1>(key));
        d.Add(std::get<2>(key));
        k.AddInt2(std::get<3>(key));
        q.AddInt8(Signed(seq));
      }
      stmts->push_back(
          {"INSERT INTO watermarks (stream, user_name, device, kind, seq) "
           "SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::int2[], $5::int8[]) "
           "ON CONFLICT (stream, user_name, device, kind) DO UPDATE SET seq = GREATEST(watermarks.seq, "
           "EXCLUDED.seq)",
           {}});
      stmts->back().params.Array(s).Array(u).Array(d).Array(k).Array(q);
      watermarks_.clear();
    }
  }

  // Rolls back what did not commit and gives the connection back.
  void End() {
    if (done_) return;
    done_ = true;
    if (conn_ && begun_ && !committed_ && !conn_->broken()) (void)conn_->Exec("ROLLBACK");
    shared_->Release(std::move(conn_));
  }

  std::shared_ptr<PgShared> shared_;
  std::unique_ptr<Conn> conn_;
  bool begun_ = false;
  bool done_ = false;
  bool committed_ = false;
  Status spoilt_;
  // What the transaction knows: locked (or set) heads and counters, looked-up (or put) op records.
  std::map<std::string, uint64_t, std::less<>> heads_;
  std::map<CounterKey, uint64_t> counters_;
  std::map<OpId, Record> records_;
  // Buffered writes, sent ahead of the next server read or with COMMIT.
  std::vector<AppendedOp> ops_;
  std::map<std::string, uint64_t> set_heads_;
  std::map<CounterKey, uint64_t> set_counters_;
  std::map<OpId, PutRecord> put_records_;
  std::map<std::pair<std::string, std::string>, bool> members_;  // true: add, false: remove
  std::set<std::pair<std::string, std::string>> blob_refs_;      // (blob id, stream)
  std::map<std::tuple<std::string, std::string, std::string, uint8_t>, uint64_t> watermarks_;
};

// ---- Users --------------------------------------------------------------------------------------------

class PgUsers final : public UserStore {
 public:
  explicit PgUsers(std::shared_ptr<PgShared> shared) : shared_(std::move(shared)) {}

  Status AddUser(std::string_view user, const TokenRecord& token) override {
    std::vector<Stmt> stmts;
    stmts.push_back(
        {"WITH u AS (INSERT INTO users (name) VALUES ($1) RETURNING name) "
         "INSERT INTO tokens (hash, user_name, device) SELECT $2, name, $3 FROM u",
         {}});
    stmts.back().params.Text(user).Bytes(token.hash).Text(token.device);
    stmts.push_back(
        {"INSERT INTO devices (user_name, device, created_ms) SELECT $1, $2, $3 WHERE $2 <> '' "
         "ON CONFLICT DO NOTHING",
         {}});
    stmts.back().params.Text(user).Text(token.device).Int8(WallMs());
    return InTxn([&](Conn& c) {
      std::vector<ResultPtr> r;
      Status st = c.Run(stmts, &r);
      if (st.code() == Status::Code::kConflict && c.last_constraint() == "users_pkey") {
        return Status::Conflict("user " + std::string(user) + " exists");
      }
      return st;
    });
  }

  Status AddToken(const TokenRecord& token) override { return PutToken(token, /*replace=*/false); }
  Status ReplaceDeviceTokens(const TokenRecord& token) override {
    if (token.device.empty()) {
      return Status::InvalidArgument("user registry: replacing a device's tokens needs the device id");
    }
    return PutToken(token, /*replace=*/true);
  }

  Status FindToken(std::string_view hash, TokenRecord* token) override {
    Stmt s{
        "SELECT t.user_name, t.device, COALESCE(d.revoked_ms, 0) FROM tokens t LEFT JOIN devices d "
        "ON d.user_name = t.user_name AND d.device = t.device WHERE t.hash = $1",
        {}};
    s.params.Bytes(hash);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    if (PQntuples(r.get()) == 0) return Status::NotFound("no such token");
    const std::string user(pg::GetBytes(r.get(), 0, 0)), device(pg::GetBytes(r.get(), 0, 1));
    if (pg::GetInt8(r.get(), 0, 2) != 0) return Revoked(user, device);
    token->hash = std::string(hash);
    token->user = user;
    token->device = device;
    return Status::OK();
  }

  // One pipeline, one implicit transaction: the UPDATE binds an unbound token unless the device was
  // revoked (a concurrent binder waits for it and then finds it bound), the INSERT gives the device its
  // record, the SELECT says to what it is bound now.
  Status BindToken(std::string_view hash, std::string_view device) override {
    if (device.empty()) return Status::InvalidArgument("BindToken: empty device");
    std::vector<Stmt> stmts;
    stmts.push_back(
        {"UPDATE tokens t SET device = $2 WHERE t.hash = $1 AND t.device = '' AND NOT EXISTS ("
         "SELECT 1 FROM devices d WHERE d.user_name = t.user_name AND d.device = $2 "
         "AND d.revoked_ms <> 0)",
         {}});
    stmts.back().params.Bytes(hash).Text(device);
    stmts.push_back(
        {"INSERT INTO devices (user_name, device, created_ms) SELECT user_name, device, $3 "
         "FROM tokens WHERE hash = $1 AND device = $2 ON CONFLICT DO NOTHING",
         {}});
    stmts.back().params.Bytes(hash).Text(device).Int8(WallMs());
    stmts.push_back(
        {"SELECT t.device, t.user_name, COALESCE(d.revoked_ms, 0) FROM tokens t LEFT JOIN devices d "
         "ON d.user_name = t.user_name AND d.device = $2 WHERE t.hash = $1",
         {}});
    stmts.back().params.Bytes(hash).Text(device);
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    std::vector<ResultPtr> r;
    OUTPOST_RETURN_IF_ERROR(conn->Run(stmts, &r));
    if (PQntuples(r[2].get()) == 0) return Status::NotFound("no such token");
    if (pg::GetInt8(r[2].get(), 0, 2) != 0) return Revoked(pg::GetBytes(r[2].get(), 0, 1), device);
    if (pg::GetBytes(r[2].get(), 0, 0) != device) {
      return Status::PermissionDenied("the token is bound to another device");
    }
    return Status::OK();
  }

  Status HasUser(std::string_view user, bool* exists) override {
    Stmt s{"SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)", {}};
    s.params.Text(user);
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
    *exists = pg::GetBool(r.get(), 0, 0);
    return Status::OK();
  }

  Status UserCount(uint64_t* count) override {
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(One({"SELECT count(*) FROM users", {}}, &r));
    *count = uint64_t(pg::GetInt8(r.get(), 0, 0));
    return Status::OK();
  }

  Status Tokens(std::string_view user, std::vector<TokenRecord>* tokens) override {
    std::vector<Stmt> stmts;
    stmts.push_back({"SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)", {}});
    stmts.back().params.Text(user);
    stmts.push_back(
        {"SELECT hash, device FROM tokens WHERE user_name = $1 ORDER BY device = '', device, hash", {}});
    stmts.back().params.Text(user);
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    std::vector<ResultPtr> r;
    OUTPOST_RETURN_IF_ERROR(conn->Run(stmts, &r));
    if (!pg::GetBool(r[0].get(), 0, 0)) return Status::NotFound("no user " + std::string(user));
    tokens->clear();
    for (int i = 0; i < PQntuples(r[1].get()); ++i) {
      tokens->push_back({std::string(pg::GetBytes(r[1].get(), i, 0)), std::string(user),
                         std::string(pg::GetBytes(r[1].get(), i, 1))});
    }
    return Status::OK();
  }

  Status Devices(std::string_view user, std::vector<DeviceRecord>* devices) override {
    std::vector<Stmt> stmts;
    stmts.push_back({"SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)", {}});
    stmts.back().params.Text(user);
    stmts.push_back(
        {"SELECT device, created_ms, last_seen_ms, last_address, revoked_ms FROM devices "
         "WHERE user_name = $1 ORDER BY device",
         {}});
    stmts.back().params.Text(user);
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    std::vector<ResultPtr> r;
    OUTPOST_RETURN_IF_ERROR(conn->Run(stmts, &r));
    if (!pg::GetBool(r[0].get(), 0, 0)) return Status::NotFound("no user " + std::string(user));
    devices->clear();
    for (int i = 0; i < PQntuples(r[1].get()); ++i) {
      DeviceRecord d;
      d.device = pg::GetBytes(r[1].get(), i, 0);
      d.created_ms = pg::GetInt8(r[1].get(), i, 1);
      d.last_seen_ms = pg::GetInt8(r[1].get(), i, 2);
      d.last_address = pg::GetBytes(r[1].get(), i, 3);
      d.revoked_ms = pg::GetInt8(r[1].get(), i, 4);
      devices->push_back(std::move(d));
    }
    return Status::OK();
  }

  Status TouchDevice(std::string_view user, std::string_view device, int64_t now_ms,
                     std::string_view address) override {
    address = address.substr(0, 255);
    {
      // Most Hellos change nothing worth a write: decided on a read first.
      Stmt s{"SELECT last_seen_ms, last_address FROM devices WHERE user_name = $1 AND device = $2", {}};
      s.params.Text(user).Text(device);
      ResultPtr r;
      OUTPOST_RETURN_IF_ERROR(One(std::move(s), &r));
      if (PQntuples(r.get()) == 1 && now_ms - pg::GetInt8(r.get(), 0, 0) < kDeviceTouchIntervalMs &&
          pg::GetBytes(r.get(), 0, 1) == address) {
        return Status::OK();
      }
    }
    Stmt s{
        "INSERT INTO devices (user_name, device, last_seen_ms, last_address) "
        "SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE name = $1) "
        "ON CONFLICT (user_name, device) DO UPDATE SET "
        "last_seen_ms = GREATEST(devices.last_seen_ms, EXCLUDED.last_seen_ms), "
        "last_address = EXCLUDED.last_address",
        {}};
    s.params.Text(user).Text(device).Int8(now_ms).Text(address);
    ResultPtr r;
    return One(std::move(s), &r);
  }

  Status RevokeDevice(std::string_view user, std::string_view device, int64_t now_ms) override {
    return InTxn([&](Conn& c) -> Status {
      OUTPOST_RETURN_IF_ERROR(LockRevocations(c));
      std::vector<Stmt> stmts;
      stmts.push_back({"SELECT revoked_ms FROM devices WHERE user_name = $1 AND device = $2 FOR UPDATE", {}});
      stmts.back().params.Text(user).Text(device);
      std::vector<ResultPtr> r;
      OUTPOST_RETURN_IF_ERROR(c.Run(stmts, &r));
      if (PQntuples(r[0].get()) == 0) {
        return Status::NotFound("no device " + QuoteForMessage(device) + " of user " + QuoteForMessage(user));
      }
      if (pg::GetInt8(r[0].get(), 0, 0) != 0) return Status::OK();  // revoked already: as it was
      stmts.clear();
      stmts.push_back({"UPDATE devices SET revoked_ms = $3 WHERE user_name = $1 AND device = $2", {}});
      stmts.back().params.Text(user).Text(device).Int8(std::max<int64_t>(now_ms, 1));
      stmts.push_back(
          {"INSERT INTO device_revocations (generation, user_name, device) "
           "SELECT COALESCE(max(generation), 0) + 1, $1, $2 FROM device_revocations",
           {}});
      stmts.back().params.Text(user).Text(device);
      return c.Run(stmts, &r);
    });
  }

  Status RemoveUser(std::string_view user) override {
    return InTxn([&](Conn& c) -> Status {
      OUTPOST_RETURN_IF_ERROR(LockRevocations(c));
      std::vector<Stmt> stmts;
      stmts.push_back({"SELECT 1 FROM users WHERE name = $1 FOR UPDATE", {}});
      stmts.back().params.Text(user);
      std::vector<ResultPtr> r;
      OUTPOST_RETURN_IF_ERROR(c.Run(stmts, &r));
      if (PQntuples(r[0].get()) == 0) return Status::NotFound("no user " + std::string(user));
      stmts.clear();
      // Its live devices are logged as revoked (servers end their connections), then everything of the
      // registry's about it goes.
      stmts.push_back(
          {"INSERT INTO device_revocations (generation, user_name, device) "
           "SELECT (SELECT COALESCE(max(generation), 0) FROM device_revocations) + "
           "row_number() OVER (ORDER BY device), user_name, device FROM devices "
           "WHERE user_name = $1 AND revoked_ms = 0",
           {}});
      stmts.back().params.Text(user);
      stmts.push_back({"DELETE FROM devices WHERE user_name = $1", {}});
      stmts.back().params.Text(user);
      stmts.push_back({"DELETE FROM tokens WHERE user_name = $1", {}});
      stmts.back().params.Text(user);
      stmts.push_back({"DELETE FROM users WHERE name = $1", {}});
      stmts.back().params.Text(user);
      return c.Run(stmts, &r);
    });
  }

  Status RevokedSince(uint64_t after, std::vector<Revocation>* out, uint64_t* generation) override {
    std::vector<Stmt> stmts;
    stmts.push_back({"SELECT COALESCE(max(generation), 0) FROM device_revocations", {}});
    stmts.push_back(
        {"SELECT generation, user_name, device FROM device_revocations WHERE generation > $1 "
         "ORDER BY generation LIMIT $2",
         {}});
    stmts.back().params.Int8(Signed(after)).Int8(kRevocationsPerCallMax);
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    std::vector<ResultPtr> r;
    OUTPOST_RETURN_IF_ERROR(conn->Run(stmts, &r));
    out->clear();
    *generation = uint64_t(pg::GetInt8(r[0].get(), 0, 0));
    const int n = PQntuples(r[1].get());
    for (int i = 0; i < n; ++i) {
      out->push_back({uint64_t(pg::GetInt8(r[1].get(), i, 0)), std::string(pg::GetBytes(r[1].get(), i, 1)),
                      std::string(pg::GetBytes(r[1].get(), i, 2))});
    }
    if (n == kRevocationsPerCallMax) *generation = out->back().generation;  // the rest on the next call
    return Status::OK();
  }

 private:
  static Status Revoked(std::string_view user, std::string_view device) {
    return Status::PermissionDenied("device revoked: device " + QuoteForMessage(device) + " of user " +
                                    QuoteForMessage(user) + " was revoked (outpostd revoke-device)");
  }

  static Status LockRevocations(Conn& c) {
    Stmt lock{"SELECT pg_advisory_xact_lock($1)", {}};
    lock.params.Int8(kRevocationLockKey);
    ResultPtr r;
    return c.RunOne(lock, &r);
  }

  // Runs `fn` in a transaction of its own on a pooled connection: committed when it returns ok, else rolled
  // back.
  template <typename Fn>
  Status InTxn(Fn&& fn) {
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    OUTPOST_RETURN_IF_ERROR(conn->Exec("BEGIN"));
    Status st = fn(*conn);
    if (st.ok()) return conn->Exec("COMMIT");
    if (!conn->broken()) (void)conn->Exec("ROLLBACK");
    return st;
  }

  // A token for an existing user; with `replace`, the device's other tokens go in the same transaction.
  Status PutToken(const TokenRecord& token, bool replace) {
    return InTxn([&](Conn& c) -> Status {
      std::vector<Stmt> stmts;
      stmts.push_back({"SELECT 1 FROM users WHERE name = $1 FOR SHARE", {}});
      stmts.back().params.Text(token.user);
      stmts.push_back({"SELECT revoked_ms FROM devices WHERE user_name = $1 AND device = $2", {}});
      stmts.back().params.Text(token.user).Text(token.device);
      std::vector<ResultPtr> r;
      OUTPOST_RETURN_IF_ERROR(c.Run(stmts, &r));
      if (PQntuples(r[0].get()) == 0) return Status::NotFound("no user " + token.user);
      if (PQntuples(r[1].get()) == 1 && pg::GetInt8(r[1].get(), 0, 0) != 0) {
        return Status::FailedPrecondition("device " + QuoteForMessage(token.device) + " of user " +
                                          QuoteForMessage(token.user) +
                                          " was revoked: it takes no token again (use another device id)");
      }
      stmts.clear();
      if (replace) {
        stmts.push_back({"DELETE FROM tokens WHERE user_name = $1 AND device = $2", {}});
        stmts.back().params.Text(token.user).Text(token.device);
      }
      stmts.push_back({"INSERT INTO tokens (hash, user_name, device) VALUES ($1, $2, $3)", {}});
      stmts.back().params.Bytes(token.hash).Text(token.user).Text(token.device);
      stmts.push_back(
          {"INSERT INTO devices (user_name, device, created_ms) SELECT $1, $2, $3 WHERE $2 <> '' "
           "ON CONFLICT DO NOTHING",
           {}});
      stmts.back().params.Text(token.user).Text(token.device).Int8(WallMs());
      return c.Run(stmts, &r);
    });
  }

  // One statement on a pooled connection, outside any transaction of the server's.
  Status One(Stmt s, ResultPtr* r) {
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    return conn->RunOne(s, r);
  }

  std::shared_ptr<PgShared> shared_;
};

// ---- The store ----------------------------------------------------------------------------------------

class PgServerStore final : public ServerStore {
 public:
  explicit PgServerStore(std::shared_ptr<PgShared> shared) : shared_(std::move(shared)), users_(shared_) {}
  ~PgServerStore() override {
    std::unique_ptr<pg::Listener> listener;
    {
      std::lock_guard<std::mutex> lock(listener_mu_);
      listener = std::move(listener_);
    }
    listener.reset();  // joins its thread before the subscribers go
  }

  Result<std::unique_ptr<ServerReadTxn>> BeginRead() override {
    auto conn = shared_->Acquire();
    if (!conn.ok()) return conn.status();
    auto txn = std::make_unique<PgReadTxn>(shared_, std::move(conn).value());
    OUTPOST_RETURN_IF_ERROR(txn->Begin());
    return std::unique_ptr<ServerReadTxn>(std::move(txn));
  }

  Result<std::unique_ptr<ServerWriteTxn>> BeginWrite() override {
    auto conn = shared_->Acquire();
    if (!conn.ok()) return conn.status();
    return std::unique_ptr<ServerWriteTxn>(std::make_unique<PgWriteTxn>(shared_, std::move(conn).value()));
  }

  uint64_t Subscribe(std::function<void(StoreEvents)> fn) override {
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(subs_mu_);
      id = next_sub_++;
      subs_.emplace(id, std::move(fn));
    }
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (!listener_) {
      listener_ = std::make_unique<pg::Listener>(
          shared_->uri, shared_->redacted, shared_->instance, [this](StoreEvents e) { Deliver(e, 0); },
          &shared_->connections_opened, &shared_->notifies_received);
      listener_->Start();
    }
    return id;
  }

  void Unsubscribe(uint64_t id) override {
    std::lock_guard<std::mutex> lock(subs_mu_);
    subs_.erase(id);
  }

  // In-process subscribers at once; other instances by one statement of pg_notify (a lost one costs them
  // latency only: the core also polls heads).
  // A NOTIFY that cannot be sent (the database is gone) is owed: the next Publish carries the lost flag, so
  // the other instances re-read what they follow rather than miss what this one committed.
  void Publish(const StoreEvents& events, uint64_t from) override {
    if (!events.empty()) Deliver(events, from);
    StoreEvents sent = events;
    if (owe_lost_.exchange(false)) sent.lost = true;
    if (sent.empty()) return;
    std::vector<std::string> payloads = pg::EncodeEvents(sent, shared_->instance);
    ArrayParam a(pg::kTextOid, pg::kTextArrayOid);
    for (const std::string& p : payloads) a.Add(p);
    Stmt s{"SELECT pg_notify('outpost_events', p) FROM unnest($1::text[]) AS p", {}};
    s.params.Array(a);
    for (int attempt = 0; attempt < 2; ++attempt) {  // a pooled connection may have died while idle
      Lease conn(shared_);
      if (!conn.Get().ok()) continue;
      ResultPtr r;
      if (conn->RunOne(s, &r).ok()) {
        shared_->notifies_sent += payloads.size();
        return;
      }
    }
    owe_lost_ = true;
  }

  bool many_writers() const override { return true; }
  UserStore* users() override { return &users_; }
  const std::string& uri() const override { return shared_->redacted; }

  Status CheckSchema() {
    Lease conn(shared_);
    OUTPOST_RETURN_IF_ERROR(conn.Get());
    ResultPtr r;
    OUTPOST_RETURN_IF_ERROR(conn->RunOne({"SELECT to_regclass('outpost_schema') IS NOT NULL", {}}, &r));
    const std::string want = std::to_string(kPgSchemaVersion);
    if (!pg::GetBool(r.get(), 0, 0)) {
      return Status::FailedPrecondition(
          "postgresql store " + shared_->redacted +
          " has no Outpost schema (schema version none; this build uses version " + want +
          "): " + MigrateHint(shared_->redacted));
    }
    OUTPOST_RETURN_IF_ERROR(conn->RunOne({"SELECT version FROM outpost_schema", {}}, &r));
    if (PQntuples(r.get()) != 1) {
      return Status::FailedPrecondition("postgresql store " + shared_->redacted + ": outpost_schema holds " +
                                        std::to_string(PQntuples(r.get())) + " rows, not one");
    }
    int have = pg::GetInt4(r.get(), 0, 0);
    if (have == kPgSchemaVersion) return Status::OK();
    std::string what = "postgresql store " + shared_->redacted + " has schema version " +
                       std::to_string(have) + "; this build uses version " + want;
    if (have > kPgSchemaVersion) {
      return Status::FailedPrecondition(what + " (a newer outpostd made it: run that build; " +
                                        MigrateHint(shared_->redacted) + " does not downgrade)");
    }
    return Status::FailedPrecondition(what + ": " + MigrateHint(shared_->redacted));
  }

  PgStoreCounters counters() const {
    return {shared_->round_trips.load(), shared_->connections_opened.load(), shared_->notifies_sent.load(),
            shared_->notifies_received.load()};
  }

 private:
  void Deliver(const StoreEvents& events, uint64_t from) {
    std::lock_guard<std::mutex> lock(subs_mu_);
    for (const auto& [id, fn] : subs_) {
      if (id != from) fn(events);
    }
  }

  std::shared_ptr<PgShared> shared_;
  PgUsers users_;
  std::mutex subs_mu_;
  std::map<uint64_t, std::function<void(StoreEvents)>> subs_;  // guarded by subs_mu_
  uint64_t next_sub_ = 1;                                      // guarded by subs_mu_
  std::mutex listener_mu_;
  std::unique_ptr<pg::Listener> listener_;  // guarded by listener_mu_
  std::atomic<bool> owe_lost_{false};       // a Publish failed: the next one says `lost`
};

}  // namespace

std::string RedactPgUri(std::string_view uri) {
  std::string out(uri);
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t end = out.find_first_of("/?", start);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.erase(colon, at - colon);
    }
    size_t q = out.find('?');
    if (q == std::string::npos) return out;
    std::string query = out.substr(q + 1), kept;
    size_t i = 0;
    while (i <= query.size()) {
      size_t amp = query.find('&', i);
      if (amp == std::string::npos) amp = query.size();
      std::string param = query.substr(i, amp - i);
      if (!param.empty() && param.rfind("password=", 0) != 0) kept += (kept.empty() ? "" : "&") + param;
      i = amp + 1;
    }
    out.resize(q);
    if (!kept.empty()) out += "?" + kept;
    return out;
  }
  // key=value form: drop password = value (quoted or not).
  std::string result;
  size_t i = 0;
  while (i < out.size()) {
    size_t key_start = out.find_first_not_of(" \t\n", i);
    if (key_start == std::string::npos) break;
    size_t eq = out.find('=', key_start);
    if (eq == std::string::npos) {
      result += (result.empty() ? "" : " ") + out.substr(key_start);
      break;
    }
    std::string key = out.substr(key_start, eq - key_start);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    size_t v = out.find_first_not_of(" \t", eq + 1);
    size_t v_end = v;
    if (v != std::string::npos && out[v] == '\'') {
      for (v_end = v + 1; v_end < out.size() && out[v_end] != '\''; ++v_end) {
        if (out[v_end] == '\\') ++v_end;
      }
      if (v_end < out.size()) ++v_end;
    } else if (v != std::string::npos) {
      v_end = out.find_first_of(" \t\n", v);
      if (v_end == std::string::npos) v_end = out.size();
    } else {
      v = v_end = out.size();
    }
    if (key != "password") result += (result.empty() ? "" : " ") + key + "=" + out.substr(v, v_end - v);
    i = v_end;
  }
  return result;
}

Result<std::shared_ptr<ServerStore>> OpenPgServerStore(std::string_view uri,
                                                       const ServerStoreOptions& options) {
  (void)options;  // synchronous_commit is always on
  auto shared = std::make_shared<PgShared>(std::string(uri), RedactPgUri(uri));
  auto store = std::make_shared<PgServerStore>(std::move(shared));
  OUTPOST_RETURN_IF_ERROR(store->CheckSchema());
  return std::shared_ptr<ServerStore>(std::move(store));
}

namespace {

// Schema step 3 (incarnations): the tables, and the store's first incarnation.
Status MigrateV3Incarnations(Conn* conn) {
  OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV3Incarnations));
  Stmt first{kSchemaV3IncarnationsFirst, {}};
  first.params.Bytes(NewIncarnationId());
  ResultPtr r;
  return conn->RunOne(first, &r);
}

}  // namespace

Result<std::string> NewPgIncarnation(std::string_view uri) {
  const std::string redacted = RedactPgUri(uri);
  // The schema must be this build's (incarnations exist from version 3 on).
  OUTPOST_RETURN_IF_ERROR(OpenPgServerStore(uri, {}).status());
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn, Conn::Open(std::string(uri), redacted, nullptr));
  OUTPOST_RETURN_IF_ERROR(conn->Exec("BEGIN"));
  Stmt lock{"SELECT pg_advisory_xact_lock($1)", {}};
  lock.params.Int8(kMigrationLockKey);
  ResultPtr r;
  OUTPOST_RETURN_IF_ERROR(conn->RunOne(lock, &r));
  OUTPOST_RETURN_IF_ERROR(conn->RunOne({"SELECT coalesce(max(n), -1) + 1 FROM incarnations", {}}, &r));
  const int64_t n = pg::GetInt8(r.get(), 0, 0);
  if (n == 0) return Status::Corruption("postgresql store " + redacted + ": no incarnation recorded");
  Stmt bases{"INSERT INTO restore_bases (n, stream, base) SELECT $1, stream, high FROM streams", {}};
  bases.params.Int8(n);
  OUTPOST_RETURN_IF_ERROR(conn->RunOne(bases, &r));
  std::string id = NewIncarnationId();
  Stmt add{"INSERT INTO incarnations (n, id) VALUES ($1, $2)", {}};
  add.params.Int8(n).Bytes(id);
  OUTPOST_RETURN_IF_ERROR(conn->RunOne(add, &r));
  OUTPOST_RETURN_IF_ERROR(conn->Exec("COMMIT"));
  return id;
}

Result<std::string> MigratePgServerStore(std::string_view uri) {
  const std::string redacted = RedactPgUri(uri);
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Conn> conn, Conn::Open(std::string(uri), redacted, nullptr));
  // One transaction: a failed migration leaves the old schema. The advisory lock orders concurrent ones.
  OUTPOST_RETURN_IF_ERROR(conn->Exec("BEGIN"));
  Stmt lock{"SELECT pg_advisory_xact_lock($1)", {}};
  lock.params.Int8(kMigrationLockKey);
  ResultPtr r;
  OUTPOST_RETURN_IF_ERROR(conn->RunOne(lock, &r));
  OUTPOST_RETURN_IF_ERROR(conn->RunOne({"SELECT to_regclass('outpost_schema') IS NOT NULL", {}}, &r));
  const std::string want = std::to_string(kPgSchemaVersion);
  if (!pg::GetBool(r.get(), 0, 0)) {
    OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV1));
    OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV2));
    OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV3Devices));
    OUTPOST_RETURN_IF_ERROR(MigrateV3Incarnations(conn.get()));
    Stmt version{"INSERT INTO outpost_schema (version) VALUES ($1::int8)", {}};
    version.params.Int8(kPgSchemaVersion);
    OUTPOST_RETURN_IF_ERROR(conn->RunOne(version, &r));
    OUTPOST_RETURN_IF_ERROR(conn->Exec("COMMIT"));
    return "created the Outpost schema version " + want + " in " + redacted;
  }
  OUTPOST_RETURN_IF_ERROR(conn->RunOne({"SELECT version FROM outpost_schema", {}}, &r));
  if (PQntuples(r.get()) != 1) {
    return Status::FailedPrecondition("postgresql store " + redacted + ": outpost_schema holds " +
                                      std::to_string(PQntuples(r.get())) + " rows, not one");
  }
  int have = pg::GetInt4(r.get(), 0, 0);
  if (have > kPgSchemaVersion) {
    return Status::FailedPrecondition("postgresql store " + redacted + " has schema version " +
                                      std::to_string(have) + ", newer than this build's version " + want +
                                      ": not downgraded");
  }
  if (have < 1) {
    return Status::FailedPrecondition("postgresql store " + redacted + " has schema version " +
                                      std::to_string(have) + ", which this build cannot upgrade to " + want);
  }
  if (have < kPgSchemaVersion) {
    // Step by step, in this transaction: a failure leaves the old version whole.
    if (have < 2) OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV2));
    if (have < 3) OUTPOST_RETURN_IF_ERROR(conn->Exec(kSchemaV3Devices));
    if (have < 3) OUTPOST_RETURN_IF_ERROR(MigrateV3Incarnations(conn.get()));
    Stmt version{"UPDATE outpost_schema SET version = $1::int8", {}};
    version.params.Int8(kPgSchemaVersion);
    OUTPOST_RETURN_IF_ERROR(conn->RunOne(version, &r));
    OUTPOST_RETURN_IF_ERROR(conn->Exec("COMMIT"));
    return "upgraded the Outpost schema in " + redacted + " from version " + std::to_string(have) + " to " +
           want;
  }
  OUTPOST_RETURN_IF_ERROR(conn->Exec("COMMIT"));
  return "the Outpost schema in " + redacted + " is at version " + want + " already; nothing to do";
}

PgStoreCounters GetPgStoreCounters(const ServerStore& store) {
  const auto* pg_store = dynamic_cast<const PgServerStore*>(&store);
  return pg_store ? pg_store->counters() : PgStoreCounters{};
}

}  // namespace outpost
