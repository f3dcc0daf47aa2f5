// Copyright 2026 The Outpost Authors.
//
// Shared helpers for outpost_bench: backends, temporary store directories, unique inproc names, latency
// percentiles, helpers to run a device against an in-process server, and the run's size settings (--quick).
// Every benchmark names its backend (`memory`, `lmdb`, `sqlite`, `rocksdb`) and reports items_per_second over
// wall-clock time (UseRealTime), since the engine's callers block on disk and on other threads rather than
// burn CPU.
#ifndef OUTPOST_BENCH_BENCH_UTIL_H_
#define OUTPOST_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/server.h"
#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost::bench {

// Sizes of one run. `--quick` shrinks the engine benchmarks' streams so that a whole run stays short; the
// names of the benchmarks do not change, the `ops` counters say how many ops an iteration moved.
struct BenchConfig {
  bool quick = false;
  int flush_ops = 10'000;     // ops in the outbox before each Flush iteration
  int merge_ops_page1 = 500;  // stream length merged by Merge/<backend>/page:1
  int merge_ops_page100 = 10'000;
  int merge_ops_page1000 = 20'000;
  int async_inflight_max = 128;  // SubmitAsync: ops one thread keeps in flight
  int cold_ops = 1'000'000;      // ops in the store ColdOpen and Scan open
  int rss_ops = 1'000'000;       // ops flushed or merged while PeakRss watches
  int fanout_threads = 2;        // Fanout: threads its light devices are spread over (--fanout-threads=T)
};
BenchConfig& Config();

// The storage backends every family runs on, in report order.
const std::vector<std::string>& Backends();
// The ones that keep their data in files (ColdOpen, Scan, PeakRss).
const std::vector<std::string>& DurableBackends();

// 16-byte keys and 200-byte values, as in ../shared/LIMITS.md.
constexpr size_t kKeyBytes = 16;
constexpr size_t kValueBytes = 200;
std::string Payload();  // kValueBytes of text

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Storage URI of a store named `name` on `backend`: lmdb and rocksdb stores are directories and sqlite
  // stores files in this directory; memory stores are private to the opener.
  std::string StoreUri(const std::string& backend, const std::string& name) const;
  // Removes the store `name` (a closed one); nothing for memory.
  void RemoveStore(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

// The ceiling's unit of work: a store with one space, durable, where PutBatch(n) is one WriteTxn of `n`
// Puts of kKeyBytes keys (ascending) and kValueBytes values, then Commit.
class RawStore {
 public:
  Status Open(const TempDir& dir, const std::string& backend, const std::string& name);
  Status PutBatch(int64_t n);

 private:
  std::unique_ptr<Storage> store_;
  std::string value_;
  uint64_t next_ = 0;
};
// kKeyBytes bytes: a fixed prefix and `n` big-endian, so that keys ascend as the engine's do.
std::string RawKey(uint64_t n);

// "inproc:bench-PID-N", never the same twice in this process.
std::string UniqueInproc(const std::string& what);

// Records per-operation latencies (in microseconds) and reports their percentiles as counters.
class Latencies {
 public:
  void Reserve(int64_t n) { us_.reserve(static_cast<size_t>(n)); }
  void Add(double us) { us_.push_back(us); }
  void Report(benchmark::State& state);    // p50_us, p99_us (nothing when empty)
  void ReportMs(benchmark::State& state);  // p50_ms, p99_ms (0 when empty)
  double Percentile(double p);             // p in [0, 1]; 0 when empty

 private:
  std::vector<double> us_;
};

// ---- a device and an in-process server, both with their own threads, as an app runs them ----

// A started server on `backend` (store "server" in `dir`, durable) listening on `net`.
Result<std::unique_ptr<Server>> StartBenchServer(const TempDir& dir, const std::string& backend,
                                                 const std::string& net);
// A durable device store `store` connected to `net` (empty: offline), not started.
Result<std::unique_ptr<Client>> OpenBenchDevice(const std::string& store, const std::string& net,
                                                const std::string& device, uint32_t pull_page_max = 1000);
// Steps the (not yet started) client until the server welcomed it.
Status WaitWelcomed(Client& client);
// Submits `n` ops of Payload() to `stream` in SubmitBatch chunks of 1000; returns the last op's id.
Result<OpId> SubmitMany(Client& client, const std::string& stream, int n);
// Waits for `target` Changes of one kind on one stream (emitted after the commit that made them durable).
class ChangeWaiter {
 public:
  ChangeWaiter(Client& client, const std::string& stream, Change::Kind kind, uint64_t target);
  ~ChangeWaiter();
  ChangeWaiter(const ChangeWaiter&) = delete;
  ChangeWaiter& operator=(const ChangeWaiter&) = delete;
  Status Wait();  // Timeout after ten minutes (a 1M-op phase on a slow backend)

 private:
  struct State;
  Client& client_;
  std::shared_ptr<State> state_;  // shared with the callback, which may run after Unsubscribe returned
  uint64_t id_ = 0;
};

// Marks the benchmark as failed (it then reports no figures) unless `st` is ok.
bool Check(benchmark::State& state, const Status& st, const char* what);

// Live latency, one op per iteration: from `a`'s Submit returning (durable, shown locally) until `b`'s
// observer sees it (Notify → Pull → merge). Starts both devices' sync threads; sets counters p50_ms and
// p99_ms.
void MeasureLiveLatency(benchmark::State& state, Client& a, Client& b);

// Registration, called once from main (explicit, so that the report order is fixed).
void RegisterStorageBenchmarks();  // RawPut, RawPutLmdbC, Fsync (storage_bench.cc)
void RegisterSubmitBenchmarks();
void RegisterSyncBenchmarks();
void RegisterNetworkBenchmarks();  // RawEcho, Flush/CatchUp/LiveLatency/Fanout over tcp (zmq_bench.cc)
void RegisterStoreBenchmarks();    // ColdOpen, Scan (store_bench.cc)
void RegisterMemoryBenchmarks();   // PeakRss (memory_bench.cc)
// Flush and NotifyLatency over several server instances on PostgreSQL, and on one lmdb (scale_bench.cc).
void RegisterScaleOutBenchmarks();
// Runs `command` (a shell line, stderr joined to stdout) to its end: its output, and whether it exited 0.
bool RunChildProcess(const std::string& command, std::string* output);

void RegisterMediaBenchmarks();      // Upload/put_curl, Upload/tus, Upload/client (media_bench.cc)
void RegisterThumbnailBenchmarks();  // Thumbnail/12mp, Thumbnail/48mp (thumbnail_bench.cc)
// `outpost_bench --thumbnail-child PATH`: the process each Thumbnail measurement starts.
int RunThumbnailChild(const std::string& path);
// Removes the Thumbnail benchmarks' JPEGs. Called after the last benchmark.
void ReleaseThumbnailFixtures();
// `outpost_bench --rss-child WORKLOAD BACKEND OPS`: the process PeakRss starts for each measurement.
int RunRssChild(const std::string& workload, const std::string& backend, int ops);
// `outpost_bench --serve-child DIR`: the Fanout benchmark's server process (runs until stdin closes).
int RunServeChild(const std::string& dir);
// Frees what benchmarks kept across runs (prepared servers). Called after the last benchmark.
void ReleaseSyncFixtures();
// Removes the stores ColdOpen and Scan share (1M ops each, hundreds of MB under $TMPDIR). Called after the
// last benchmark.
void ReleaseStoreFixtures();

}  // namespace outpost::bench

#endif  // OUTPOST_BENCH_BENCH_UTIL_H_
