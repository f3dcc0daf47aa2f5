// Copyright 2026 The Outpost Authors.
//
// Shared helpers for outpost_bench: backends, temporary store directories, unique inproc names, latency
// percentiles, and the run's size settings (--quick). Every benchmark names its backend (`memory`, `lmdb`)
// and reports items_per_second over wall-clock time (UseRealTime), since the engine's callers block on disk
// and on other threads rather than burn CPU.
#ifndef OUTPOST_BENCH_BENCH_UTIL_H_
#define OUTPOST_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

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
};
BenchConfig& Config();

// The storage backends every family runs on, in report order.
const std::vector<std::string>& Backends();

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
  // Storage URI of a store named `name` on `backend`: lmdb stores live in this directory; memory stores are
  // private to the opener.
  std::string StoreUri(const std::string& backend, const std::string& name) const;
  // Removes the lmdb store `name` (a closed one); nothing for memory.
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

// Records per-operation latencies; sets the p50_us and p99_us counters.
class Latencies {
 public:
  void Reserve(int64_t n) { us_.reserve(static_cast<size_t>(n)); }
  void Add(double us) { us_.push_back(us); }
  void Report(benchmark::State& state);
  double Percentile(double p);  // p in [0, 1]; 0 when empty

 private:
  std::vector<double> us_;
};

// Marks the benchmark as failed (it then reports no figures) unless `st` is ok.
bool Check(benchmark::State& state, const Status& st, const char* what);

// Registration, called once from main (explicit, so that the report order is fixed).
void RegisterStorageBenchmarks();
void RegisterSubmitBenchmarks();
void RegisterSyncBenchmarks();
// Frees what benchmarks kept across runs (prepared servers). Called after the last benchmark.
void ReleaseSyncFixtures();

}  // namespace outpost::bench

#endif  // OUTPOST_BENCH_BENCH_UTIL_H_
