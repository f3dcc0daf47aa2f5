// Copyright 2026 The Outpost Authors.
//
// The ceilings: what the backend itself does through outpost's Storage interface, with no engine on top.
//   RawPut/<backend>/batch:N   one WriteTxn of N Puts (16-byte keys, 200-byte values) then Commit, durable
//   RawPutLmdbC/batch:N        the same through LMDB's C API directly: the interface's own overhead
//   Fsync                      append kValueBytes to a file, then fdatasync: the floor under any durable
//                              commit on this disk (a file in the directory the stores go to, TempDir);
//                              counters p50_ms, p99_ms per append + sync, as the latency benchmarks report
// Keys grow monotonically (as the engine's view, outbox and server op keys do). p50_us/p99_us are per commit.
#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "bench_util.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void BM_RawPut(benchmark::State& state, const std::string& backend) {
  const int64_t batch = state.range(0);
  TempDir dir;
  RawStore store;
  if (!Check(state, store.Open(dir, backend, "raw"), "open store")) return;
  Latencies latencies;
  latencies.Reserve(state.max_iterations);
  for (auto _ : state) {
    auto t0 = Clock::now();
    Status st = store.PutBatch(batch);
    latencies.Add(MicrosSince(t0));
    if (!Check(state, st, "put/commit")) break;
  }
  state.SetItemsProcessed(state.iterations() * batch);
  latencies.Report(state);
}

// LMDB with nothing in between, opened as the Storage backend opens it (MDB_NOTLS, one named database).
void BM_RawPutLmdbC(benchmark::State& state) {
  const int64_t batch = state.range(0);
  TempDir dir;
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 1);
  if (rc == 0) rc = mdb_env_set_mapsize(env, size_t{16} << 30);  // no growth logic here: a map big enough
  if (rc == 0) rc = mdb_env_open(env, dir.path().c_str(), MDB_NOTLS, 0644);
  if (rc == 0) {
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env, nullptr, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, "raw", MDB_CREATE, &dbi);
    if (rc == 0) {
      rc = mdb_txn_commit(txn);
    } else if (txn != nullptr) {
      mdb_txn_abort(txn);
    }
  }
  if (rc != 0) {
    state.SkipWithError((std::string("lmdb open: ") + mdb_strerror(rc)).c_str());
    if (env != nullptr) mdb_env_close(env);
    return;
  }
  std::string value = Payload();
  uint64_t next = 0;
  Latencies latencies;
  latencies.Reserve(state.max_iterations);
  for (auto _ : state) {
    auto t0 = Clock::now();
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env, nullptr, 0, &txn);
    for (int64_t i = 0; i < batch && rc == 0; ++i) {
      std::string key = RawKey(next++);
      MDB_val k{key.size(), key.data()};
      MDB_val v{value.size(), value.data()};
      rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (rc == 0) {
      rc = mdb_txn_commit(txn);
    } else if (txn != nullptr) {
      mdb_txn_abort(txn);
    }
    if (rc != 0) {
      state.SkipWithError((std::string("lmdb put/commit: ") + mdb_strerror(rc)).c_str());
      break;
    }
    latencies.Add(MicrosSince(t0));
  }
  mdb_env_close(env);
  state.SetItemsProcessed(state.iterations() * batch);
  latencies.Report(state);
}

// A durable append with no storage engine: what a WAL record costs the disk, the bound live latency is
// judged against.
void BM_Fsync(benchmark::State& state) {
  TempDir dir;
  const std::string path = (dir.path() / "fsync").string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError(("open " + path + ": " + std::strerror(errno)).c_str());
    return;
  }
  const std::string record = Payload();
  Latencies latencies;
  latencies.Reserve(state.max_iterations);
  for (auto _ : state) {
    auto t0 = Clock::now();
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError((std::string("append/fdatasync: ") + std::strerror(errno)).c_str());
      break;
    }
    latencies.Add(MicrosSince(t0));
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  latencies.ReportMs(state);
}

}  // namespace

void RegisterStorageBenchmarks() {
  for (const std::string& backend : Backends()) {
    benchmark::RegisterBenchmark(("RawPut/" + backend).c_str(), BM_RawPut, backend)
        ->ArgName("batch")
        ->Arg(1)
        ->Arg(100)
        ->Arg(1000)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("RawPutLmdbC", BM_RawPutLmdbC)
      ->ArgName("batch")
      ->Arg(1)
      ->Arg(100)
      ->Arg(1000)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Fsync", BM_Fsync)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace outpost::bench
