// Copyright 2026 The Outpost Authors.
//
// Scale-out: several server instances on one PostgreSQL database, next to one server on lmdb. Every instance
// is a Server in this process on an OpenServerStore of its own (its own connections to the database, as
// separate outpostd processes would have) and its own tcp listener; devices are real Clients with durable
// lmdb stores.
//   Flush/instances/<backend>/N      N instances (postgresql: 1, 2, 3; lmdb: 1), kScaleDevices devices spread
//                                    evenly over them, each with `ops` ops in its outbox, round-robin over
//                                    kScaleStreams streams that all devices share; timed from the devices'
//                                    Start() until every op is settled (acked, durable) on every device
//   NotifyLatency/instances/<backend>/N   one op at a time: from Submit returning on device A (on the first
//                                    instance) until device B's observer (on instance N) sees it; with N = 2
//                                    the op crosses instances through the store's wake-up. Counters p50_ms,
//                                    p99_ms
//   StoreCommit/<backend>            a write group of one op on the server store alone (no network, no
//                                    device): Prepare, head, op, counter, Commit; postgresql also counts
//                                    round_trips_per_group
// PostgreSQL: the server named by OUTPOST_BENCH_PG_URI (postgresql://...; tools/bench starts a throwaway
// cluster with tools/pg-cluster when PostgreSQL is installed). Each benchmark creates a database of its own
// there (CREATE DATABASE: the URI's user needs CREATEDB), migrates it (MigrateServerStore) and drops it
// afterwards. Without the variable the postgresql benchmarks are skipped with the reason.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "server_store/postgresql/pg_server_store.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kScaleDevices = 6;  // divisible by 1, 2 and 3 instances
constexpr int kScaleStreams = 4;

std::string PgUri() {
  const char* uri = std::getenv("OUTPOST_BENCH_PG_URI");
  return uri == nullptr ? "" : uri;
}

constexpr const char* kNoPg =
    "no PostgreSQL: set OUTPOST_BENCH_PG_URI=postgresql://USER@HOST:PORT/DB (a user who may CREATE "
    "DATABASE), "
    "or run tools/bench, which starts a throwaway cluster when PostgreSQL is installed";

// `uri` (postgresql://[auth@]host[:port][/db][?params]) with its database replaced by `db`.
Result<std::string> WithDatabase(const std::string& uri, const std::string& db) {
  size_t scheme = uri.find("://");
  if (scheme == std::string::npos || !(uri.starts_with("postgresql://") || uri.starts_with("postgres://"))) {
    return Status::InvalidArgument("OUTPOST_BENCH_PG_URI is not a postgresql:// URI");
  }
  const size_t authority = scheme + 3;
  const size_t query = uri.find('?', authority);
  const size_t slash = uri.find('/', authority);
  const size_t end_of_host = std::min(slash, query);
  std::string out = uri.substr(0, end_of_host == std::string::npos ? uri.size() : end_of_host) + "/" + db;
  if (query != std::string::npos) out += uri.substr(query);
  return out;
}

// A database of its own on the OUTPOST_BENCH_PG_URI server, dropped when destroyed (after the servers on it
// were: declare it before them).
class PgDatabase {
 public:
  static Result<std::unique_ptr<PgDatabase>> Create(const std::string& base_uri) {
    static int serial = 0;
    auto db = std::unique_ptr<PgDatabase>(new PgDatabase);
    db->admin_uri_ = base_uri;
    db->name_ = "outpost_bench_" + std::to_string(::getpid()) + "_" + std::to_string(serial++);
    OUTPOST_ASSIGN_OR_RETURN(db->uri_, WithDatabase(base_uri, db->name_));
    OUTPOST_RETURN_IF_ERROR(db->Exec("DROP DATABASE IF EXISTS " + db->name_));
    OUTPOST_RETURN_IF_ERROR(db->Exec("CREATE DATABASE " + db->name_));
    db->created_ = true;
    auto migrated = MigrateServerStore(db->uri_);
    if (!migrated.ok()) return migrated.status();
    return db;
  }
  ~PgDatabase() {
    if (created_) (void)Exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  const std::string& uri() const { return uri_; }

 private:
  PgDatabase() = default;
  Status Exec(const std::string& sql) const {
    PGconn* conn = PQconnectdb(admin_uri_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      Status st =
          Status::Unavailable(std::string("connect to OUTPOST_BENCH_PG_URI: ") + PQerrorMessage(conn));
      PQfinish(conn);
      return st;
    }
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
    PGresult* r = PQexec(conn, sql.c_str());
    Status st = PQresultStatus(r) == PGRES_COMMAND_OK
                    ? Status::OK()
                    : Status::FailedPrecondition(sql + ": " + PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(conn);
    return st;
  }

  std::string admin_uri_, name_, uri_;
  bool created_ = false;
};

// `n` started servers on one store, each on its own tcp listener.
struct Instances {
  TempDir dir;
  std::unique_ptr<PgDatabase> db;                // postgresql only; outlives the servers
  std::vector<std::unique_ptr<Server>> servers;  // before their store is dropped

  ServerStats Stats() const {
    ServerStats sum;
    for (const auto& s : servers) {
      ServerStats one = s->Stats();
      sum.commits += one.commits;
      sum.commit_errors += one.commit_errors;
      sum.busy += one.busy;
    }
    return sum;
  }
};

Result<std::unique_ptr<Instances>> StartInstances(const std::string& backend, int n) {
  auto in = std::make_unique<Instances>();
  if (backend != "postgresql") {
    OUTPOST_ASSIGN_OR_RETURN(auto server, StartBenchServer(in->dir, backend, "tcp://127.0.0.1:0"));
    in->servers.push_back(std::move(server));
    return in;
  }
  OUTPOST_ASSIGN_OR_RETURN(in->db, PgDatabase::Create(PgUri()));
  for (int i = 0; i < n; ++i) {
    OUTPOST_ASSIGN_OR_RETURN(auto listener, Listen("tcp://127.0.0.1:0"));
    ServerOptions options;
    options.store = in->db->uri();  // a store object (and connections) of its own
    OUTPOST_ASSIGN_OR_RETURN(auto server, Server::Open(std::move(options), std::move(listener)));
    server->Start();
    in->servers.push_back(std::move(server));
  }
  return in;
}

bool Usable(benchmark::State& state, const std::string& backend) {
  if (backend == "postgresql" && PgUri().empty()) {
    state.SkipWithError(kNoPg);
    return false;
  }
  return true;
}

// ---- Flush over instances ----

void BM_FlushInstances(benchmark::State& state, const std::string& backend, int n) {
  if (!Usable(state, backend)) return;
  const int per_device = Config().quick ? 2'000 : 10'000;  // a multiple of kScaleStreams
  auto instances = StartInstances(backend, n);
  if (!Check(state, instances.status(), "start the instances")) return;
  Instances& in = **instances;
  TempDir dir;
  const std::string payload = Payload();
  uint64_t flushed = 0, commits = 0, commit_errors = 0;
  int iteration = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string prefix = "scale-" + std::to_string(iteration++) + "-";
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::string> names;
    bool ok = true;
    for (int d = 0; d < kScaleDevices && ok; ++d) {
      names.push_back(prefix + "device-" + std::to_string(d));
      auto client = OpenBenchDevice(dir.StoreUri("lmdb", names.back()),
                                    in.servers[static_cast<size_t>(d % n)]->endpoint(), names.back());
      ok = Check(state, client.status(), "open device") && Check(state, WaitWelcomed(**client), "connect");
      if (!ok) break;
      std::vector<NewOp> ops;
      for (int done = 0; done < per_device && ok;) {
        ops.clear();
        for (; done < per_device && ops.size() < 1000; ++done)
          ops.push_back({prefix + "stream-" + std::to_string(done % kScaleStreams), "text", payload, {}});
        ok = Check(state, (*client)->SubmitBatch(ops).status(), "fill the outbox");
      }
      clients.push_back(std::move(client).value());
    }
    if (!ok) break;
    std::vector<std::unique_ptr<ChangeWaiter>> settled;
    for (auto& c : clients) {
      for (int s = 0; s < kScaleStreams; ++s) {
        settled.push_back(std::make_unique<ChangeWaiter>(*c, prefix + "stream-" + std::to_string(s),
                                                         Change::Kind::kUpdated,
                                                         static_cast<uint64_t>(per_device / kScaleStreams)));
      }
    }
    const ServerStats before = in.Stats();
    state.ResumeTiming();
    for (auto& c : clients) c->Start();
    Status st;
    for (auto& w : settled) {
      if (st.ok()) st = w->Wait();
    }
    state.PauseTiming();
    settled.clear();
    for (auto& c : clients) c->Stop();
    if (!Check(state, st, "flush")) break;
    for (auto& c : clients) {
      auto outbox = c->Outbox(1);
      if (!Check(state, outbox.status(), "read outbox")) ok = false;
      if (ok && !outbox->empty()) {
        state.SkipWithError("outbox not empty after every op settled");
        ok = false;
      }
    }
    if (!ok) break;
    const ServerStats after = in.Stats();
    commits += after.commits - before.commits;
    commit_errors += after.commit_errors - before.commit_errors;
    flushed += static_cast<uint64_t>(per_device) * kScaleDevices;
    clients.clear();
    for (const auto& name : names) dir.RemoveStore(name);
    state.ResumeTiming();
  }
  if (flushed == 0) return;
  state.SetItemsProcessed(static_cast<int64_t>(flushed));
  const double iterations = static_cast<double>(flushed) / (per_device * kScaleDevices);
  state.counters["instances"] = n;
  state.counters["devices"] = kScaleDevices;
  state.counters["streams"] = kScaleStreams;
  state.counters["ops"] = per_device * kScaleDevices;
  state.counters["server_commits"] = static_cast<double>(commits) / iterations;
  state.counters["commit_errors"] = static_cast<double>(commit_errors) / iterations;
}

// ---- NotifyLatency over instances ----

void BM_NotifyLatency(benchmark::State& state, const std::string& backend, int n) {
  if (!Usable(state, backend)) return;
  auto instances = StartInstances(backend, n);
  if (!Check(state, instances.status(), "start the instances")) return;
  Instances& in = **instances;
  TempDir dir;
  auto a = OpenBenchDevice(dir.StoreUri("lmdb", "a"), in.servers.front()->endpoint(), "a");
  auto b = OpenBenchDevice(dir.StoreUri("lmdb", "b"), in.servers.back()->endpoint(), "b");
  if (!Check(state, a.status(), "open a") || !Check(state, b.status(), "open b")) return;
  MeasureLiveLatency(state, **a, **b);
  state.counters["instances"] = n;
}

// ---- One write group of one op, on a server store directly ----

// The cost of a group commit on the store itself, no network or device: Prepare, the head, one op, the
// head and counter written, Commit (PostgreSQL: synchronous_commit = on; lmdb: an fsync). Counter
// round_trips_per_group (PostgreSQL) shows the pipelining.
void BM_StoreCommit(benchmark::State& state, const std::string& backend) {
  if (!Usable(state, backend)) return;
  TempDir dir;
  std::unique_ptr<PgDatabase> db;
  std::string uri = "lmdb:" + (dir.path() / "store").string();
  if (backend == "postgresql") {
    auto created = PgDatabase::Create(PgUri());
    if (!Check(state, created.status(), "create a database")) return;
    db = std::move(*created);
    uri = db->uri();
  }
  auto store = OpenServerStore(uri);
  if (!Check(state, store.status(), "open the store")) return;
  const std::string op(100, 'x');
  const PgStoreCounters before = GetPgStoreCounters(**store);
  uint64_t groups = 0;
  for (auto _ : state) {
    auto w = (*store)->BeginWrite();
    if (!Check(state, w.status(), "begin")) break;
    uint64_t high = 0;
    if (!Check(state, (*w)->Prepare({"s"}, {{"u", "d", "s"}}, {}), "prepare") ||
        !Check(state, (*w)->High("s", &high), "high") ||
        !Check(state, (*w)->AppendOp("s", high + 1, op), "append") ||
        !Check(state, (*w)->SetHigh("s", high + 1), "set high") ||
        !Check(state, (*w)->SetCounter({"u", "d", "s"}, high + 1), "set counter") ||
        !Check(state, (*w)->Commit(), "commit")) {
      break;
    }
    ++groups;
  }
  const PgStoreCounters after = GetPgStoreCounters(**store);
  if (groups > 0 && backend == "postgresql") {
    state.counters["round_trips_per_group"] =
        static_cast<double>(after.round_trips - before.round_trips) / static_cast<double>(groups);
  }
  store->reset();
}

}  // namespace

void RegisterScaleOutBenchmarks() {
  for (const std::string backend : {"postgresql", "lmdb"}) {
    benchmark::RegisterBenchmark(("StoreCommit/" + backend).c_str(), BM_StoreCommit, backend)
        ->UseRealTime()
        ->Iterations(Config().quick ? 200 : 1000)
        ->Unit(benchmark::kMillisecond);
  }
  // A few fresh sets of devices each: one iteration is seconds long and varies with the machine's load.
  const int flush_iterations = Config().quick ? 1 : 3;
  for (int n : {1, 2, 3}) {
    benchmark::RegisterBenchmark(("Flush/instances/postgresql/" + std::to_string(n)).c_str(),
                                 BM_FlushInstances, std::string("postgresql"), n)
        ->UseRealTime()
        ->Iterations(flush_iterations)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("Flush/instances/lmdb/1", BM_FlushInstances, std::string("lmdb"), 1)
      ->UseRealTime()
      ->Iterations(flush_iterations)
      ->Unit(benchmark::kMillisecond);
  const int latency_iterations = Config().quick ? 200 : 1000;
  for (int n : {1, 2}) {
    benchmark::RegisterBenchmark(("NotifyLatency/instances/postgresql/" + std::to_string(n)).c_str(),
                                 BM_NotifyLatency, std::string("postgresql"), n)
        ->UseRealTime()
        ->Iterations(latency_iterations)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("NotifyLatency/instances/lmdb/1", BM_NotifyLatency, std::string("lmdb"), 1)
      ->UseRealTime()
      ->Iterations(latency_iterations)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace outpost::bench
