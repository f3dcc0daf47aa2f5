// Copyright 2026 The Outpost Authors.
#include "bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

namespace outpost::bench {

namespace {
std::atomic<uint64_t> g_serial{0};
}  // namespace

BenchConfig& Config() {
  static BenchConfig config;
  return config;
}

const std::vector<std::string>& Backends() {
  static const std::vector<std::string> backends = {"memory", "lmdb", "sqlite", "rocksdb"};
  return backends;
}

const std::vector<std::string>& DurableBackends() {
  static const std::vector<std::string> backends = {"lmdb", "sqlite", "rocksdb"};
  return backends;
}

std::string Payload() {
  std::string payload(kValueBytes, 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

TempDir::TempDir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  path_ = base / ("outpost-bench-" + std::to_string(::getpid()) + "-" + std::to_string(g_serial++));
  std::filesystem::remove_all(path_, ec);
  std::filesystem::create_directories(path_, ec);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::StoreUri(const std::string& backend, const std::string& name) const {
  if (backend == "lmdb" || backend == "rocksdb") return backend + ":" + (path_ / name).string();
  if (backend == "sqlite") return "sqlite:" + (path_ / name).string() + ".db";
  return "memory:";
}

void TempDir::RemoveStore(const std::string& name) const {
  std::error_code ec;
  std::filesystem::remove_all(path_ / name, ec);
  for (const char* suffix : {".db", ".db-wal", ".db-shm"})
    std::filesystem::remove(path_ / (name + suffix), ec);
}

Status RawStore::Open(const TempDir& dir, const std::string& backend, const std::string& name) {
  StorageOptions options;
  options.spaces = {"raw"};
  options.sync = true;
  OUTPOST_ASSIGN_OR_RETURN(store_, OpenStorage(dir.StoreUri(backend, name), options));
  value_ = Payload();
  return Status::OK();
}

Status RawStore::PutBatch(int64_t n) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  for (int64_t i = 0; i < n; ++i) OUTPOST_RETURN_IF_ERROR(txn->Put(0, RawKey(next_++), value_));
  return txn->Commit();
}

std::string RawKey(uint64_t n) {
  std::string key(kKeyBytes, '\0');
  std::memcpy(key.data(), "raw-put:", 8);
  for (int i = 0; i < 8; ++i) key[kKeyBytes - 1 - i] = static_cast<char>(n >> (8 * i));
  return key;
}

std::string UniqueInproc(const std::string& what) {
  return "inproc:bench-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(g_serial++);
}

double Latencies::Percentile(double p) {
  if (us_.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(us_.size())));
  rank = std::clamp<size_t>(rank, 1, us_.size()) - 1;
  std::nth_element(us_.begin(), us_.begin() + static_cast<std::ptrdiff_t>(rank), us_.end());
  return us_[rank];
}

void Latencies::Report(benchmark::State& state) {
  if (us_.empty()) return;
  state.counters["p50_us"] = Percentile(0.50);
  state.counters["p99_us"] = Percentile(0.99);
}

void Latencies::ReportMs(benchmark::State& state) {
  state.counters["p50_ms"] = Percentile(0.50) / 1000.0;
  state.counters["p99_ms"] = Percentile(0.99) / 1000.0;
}

Result<std::unique_ptr<Server>> StartBenchServer(const TempDir& dir, const std::string& backend,
                                                 const std::string& net) {
  OUTPOST_ASSIGN_OR_RETURN(auto listener, Listen(net));
  ServerOptions options;
  options.store = dir.StoreUri(backend, "server");
  options.store_sync = true;
  OUTPOST_ASSIGN_OR_RETURN(auto server, Server::Open(std::move(options), std::move(listener)));
  server->Start();
  return server;
}

Result<std::unique_ptr<Client>> OpenBenchDevice(const std::string& store, const std::string& net,
                                                const std::string& device, uint32_t pull_page_max) {
  ClientOptions options;
  options.store = store;
  options.store_sync = true;
  options.server = net;
  options.user = "bench-user";
  options.device = device;
  options.pull_page_max = pull_page_max;
  return Client::Open(std::move(options));
}

Status WaitWelcomed(Client& client) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    OUTPOST_RETURN_IF_ERROR(client.Step());
    if (client.Stats().connected) return Status::OK();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Timeout("not connected: " + client.Stats().last_connection_error);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));  // the server answers on its own thread
  }
}

Result<OpId> SubmitMany(Client& client, const std::string& stream, int n) {
  constexpr size_t kChunkOps = 1000;
  const std::string payload = Payload();
  std::vector<NewOp> ops;
  OpId last;
  for (int done = 0; done < n;) {
    ops.clear();
    for (; done < n && ops.size() < kChunkOps; ++done) ops.push_back({stream, "text", payload, {}});
    OUTPOST_ASSIGN_OR_RETURN(auto ids, client.SubmitBatch(ops));
    last = ids.back();
  }
  return last;
}

struct ChangeWaiter::State {
  Change::Kind kind = Change::Kind::kAdded;
  uint64_t target = 0;
  std::mutex mu;
  std::condition_variable cv;
  uint64_t count = 0;
};

ChangeWaiter::ChangeWaiter(Client& client, const std::string& stream, Change::Kind kind, uint64_t target)
    : client_(client), state_(std::make_shared<State>()) {
  state_->kind = kind;
  state_->target = target;
  id_ = client_.Subscribe(stream, [s = state_](const std::vector<Change>& changes) {
    uint64_t n = 0;
    for (const Change& c : changes) n += c.kind == s->kind ? 1 : 0;
    if (n == 0) return;
    std::lock_guard<std::mutex> lock(s->mu);
    s->count += n;
    if (s->count >= s->target) s->cv.notify_all();
  });
}

ChangeWaiter::~ChangeWaiter() { client_.Unsubscribe(id_); }

Status ChangeWaiter::Wait() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.cv.wait_for(lock, std::chrono::minutes(10), [&] { return s.count >= s.target; })) return Status::OK();
  return Status::Timeout("saw " + std::to_string(s.count) + " of " + std::to_string(s.target) + " changes");
}

bool Check(benchmark::State& state, const Status& st, const char* what) {
  if (st.ok()) return true;
  state.SkipWithError((std::string(what) + ": " + st.ToString()).c_str());
  return false;
}

void MeasureLiveLatency(benchmark::State& state, Client& a, Client& b) {
  const std::string stream = "live";
  if (!Check(state, a.Submit(stream, "text", "warm-up").status(), "warm up")) return;
  if (!Check(state, b.Follow(stream), "follow")) return;
  struct Seen {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t added = 0;
  };
  auto seen = std::make_shared<Seen>();
  uint64_t sub = b.Subscribe(stream, [seen](const std::vector<Change>& changes) {
    uint64_t n = 0;
    for (const Change& c : changes) n += c.kind == Change::Kind::kAdded;
    std::lock_guard<std::mutex> lock(seen->mu);
    seen->added += n;
    seen->cv.notify_all();
  });
  a.Start();
  b.Start();
  auto wait_for = [&](uint64_t target) {
    std::unique_lock<std::mutex> lock(seen->mu);
    return seen->cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen->added >= target; });
  };
  Latencies latencies;
  if (!wait_for(1)) {
    state.SkipWithError("the warm-up op never reached device b");
  } else {
    uint64_t target = 1;
    const std::string payload = Payload();
    for (auto _ : state) {
      auto id = a.Submit(stream, "text", payload);
      const auto t0 = std::chrono::steady_clock::now();
      if (!Check(state, id.status(), "submit")) break;
      if (!wait_for(++target)) {
        state.SkipWithError("an op never reached device b");
        break;
      }
      latencies.Add(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  b.Unsubscribe(sub);
  a.Stop();
  b.Stop();
  latencies.ReportMs(state);
}

bool RunChildProcess(const std::string& command, std::string* output) {
  output->clear();
  std::FILE* child = ::popen(command.c_str(), "r");
  if (child == nullptr) return false;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, child)) > 0;) output->append(buffer, n);
  return ::pclose(child) == 0;
}

}  // namespace outpost::bench
