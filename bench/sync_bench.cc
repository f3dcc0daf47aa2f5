// Copyright 2026 The Outpost Authors.
//
// Sync between a device and a server in this process (inproc transport, or ZeroMQ tcp for Flush/tcp), both
// with threads of their own (the server's Start() and the client's Start(), as an app runs them). The
// server's store is on the same backend as the device's, durable.
//   Flush/[tcp/]<backend>      N ops already in a fresh device's outbox (SubmitBatch, not timed), flushed
//                              to the server: timed from Start() until every op is settled (acked, durable)
//   Merge/<backend>/page:P     a stream of N ops made by another device sits on the server; a fresh,
//                              connected device follows it: timed from Follow() until all N are merged,
//                              pulling P ops per page
// Each iteration uses a new device store (and, for Flush, a new stream); setup and checks are not timed.
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "outpost/client.h"
#include "outpost/server.h"

namespace outpost::bench {
namespace {

// ---- Flush ----

// `tcp`: the server listens on ZeroMQ tcp (a free loopback port) instead of inproc, with a longer stream.
void BM_Flush(benchmark::State& state, const std::string& backend, bool tcp) {
  const int n = tcp ? (Config().quick ? 20'000 : 100'000) : Config().flush_ops;
  TempDir dir;
  auto server = StartBenchServer(dir, backend, tcp ? "tcp://127.0.0.1:0" : UniqueInproc("flush"));
  if (!Check(state, server.status(), "start server")) return;
  const std::string net = (*server)->endpoint();
  uint64_t flushed = 0, batches = 0, server_commits = 0;
  int iteration = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string device = "flush-device-" + std::to_string(iteration);
    const std::string stream = "flush-" + std::to_string(iteration);
    ++iteration;
    auto client = OpenBenchDevice(dir.StoreUri(backend, device), net, device);
    if (!Check(state, client.status(), "open device")) break;
    if (!Check(state, WaitWelcomed(**client), "connect")) break;
    if (!Check(state, SubmitMany(**client, stream, n).status(), "fill the outbox")) break;
    const uint64_t commits_before = (*server)->Stats().commits;
    {
      ChangeWaiter settled(**client, stream, Change::Kind::kUpdated, static_cast<uint64_t>(n));
      state.ResumeTiming();
      (*client)->Start();
      Status st = settled.Wait();
      state.PauseTiming();
      if (!Check(state, st, "flush")) break;
    }
    (*client)->Stop();
    auto outbox = (*client)->Outbox(1);
    if (!Check(state, outbox.status(), "read outbox")) break;
    if (!outbox->empty()) {
      state.SkipWithError("outbox not empty after every op settled");
      break;
    }
    ClientStats stats = (*client)->Stats();
    batches += stats.batches_sent;
    server_commits += (*server)->Stats().commits - commits_before;
    flushed += static_cast<uint64_t>(n);
    client->reset();
    dir.RemoveStore(device);
    state.ResumeTiming();
  }
  if (flushed == 0) return;
  state.SetItemsProcessed(static_cast<int64_t>(flushed));
  const double iterations = static_cast<double>(flushed) / n;
  state.counters["ops"] = n;
  state.counters["batches"] = static_cast<double>(batches) / iterations;
  state.counters["server_commits"] = static_cast<double>(server_commits) / iterations;
}

// ---- Merge ----

// A server holding streams made by a writer device, kept across the runs of the Merge benchmarks of one
// backend (making them costs more than merging them).
struct MergeSource {
  TempDir dir;
  std::string net = UniqueInproc("merge");
  std::unique_ptr<Server> server;
  std::map<int, std::string> streams;  // length -> stream

  Result<std::string> Stream(int n) {
    auto it = streams.find(n);
    if (it != streams.end()) return it->second;
    std::string stream = "merge-" + std::to_string(n);
    // The writer's own store does not matter here: a private memory store.
    OUTPOST_ASSIGN_OR_RETURN(auto writer, OpenBenchDevice("memory:", net, "writer-" + std::to_string(n)));
    OUTPOST_ASSIGN_OR_RETURN(OpId last, SubmitMany(*writer, stream, n));
    OUTPOST_RETURN_IF_ERROR(writer->RunUntilIdle(120'000));
    // Applied by the server (whether the writer pulled its own ops back does not matter here).
    OUTPOST_ASSIGN_OR_RETURN(OpInfo op, writer->Get(last));
    if (op.state != OpState::kSent || op.seq != static_cast<uint64_t>(n)) {
      return Status::Aborted("the last of " + std::to_string(n) + " ops is not sent at seq " +
                             std::to_string(n));
    }
    streams.emplace(n, stream);
    return stream;
  }
};

std::map<std::string, std::unique_ptr<MergeSource>>& MergeSources() {
  static auto* sources = new std::map<std::string, std::unique_ptr<MergeSource>>;
  return *sources;
}

Result<MergeSource*> SourceFor(const std::string& backend) {
  auto& source = MergeSources()[backend];
  if (!source) {
    auto fresh = std::make_unique<MergeSource>();
    OUTPOST_ASSIGN_OR_RETURN(fresh->server, StartBenchServer(fresh->dir, backend, fresh->net));
    source = std::move(fresh);
  }
  return source.get();
}

int MergeOps(int64_t page) {
  const BenchConfig& c = Config();
  if (page <= 1) return c.merge_ops_page1;
  if (page <= 100) return c.merge_ops_page100;
  return c.merge_ops_page1000;
}

void BM_Merge(benchmark::State& state, const std::string& backend) {
  const auto page = static_cast<uint32_t>(state.range(0));
  const int n = MergeOps(page);
  auto source = SourceFor(backend);
  if (!Check(state, source.status(), "start server")) return;
  auto stream = (*source)->Stream(n);
  if (!Check(state, stream.status(), "make the stream")) return;
  const std::string& net = (*source)->net;
  TempDir dir;
  uint64_t merged = 0;
  // Never the same device twice on one server: a known device's watermarks would not be written again.
  static int readers = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string device = "reader-" + std::to_string(readers++);
    auto client = OpenBenchDevice(dir.StoreUri(backend, device), net, device, page);
    if (!Check(state, client.status(), "open device")) break;
    if (!Check(state, WaitWelcomed(**client), "connect")) break;
    (*client)->Start();
    {
      ChangeWaiter added(**client, *stream, Change::Kind::kAdded, static_cast<uint64_t>(n));
      state.ResumeTiming();
      Status st = (*client)->Follow(*stream);
      if (st.ok()) st = added.Wait();
      state.PauseTiming();
      if (!Check(state, st, "merge")) break;
    }
    (*client)->Stop();
    auto cursor = (*client)->Cursor(*stream);
    if (!Check(state, cursor.status(), "read cursor")) break;
    if (*cursor != static_cast<uint64_t>(n)) {
      state.SkipWithError(
          ("cursor " + std::to_string(*cursor) + " after merging " + std::to_string(n)).c_str());
      break;
    }
    merged += static_cast<uint64_t>(n);
    client->reset();
    dir.RemoveStore(device);
    state.ResumeTiming();
  }
  if (merged == 0) return;
  state.SetItemsProcessed(static_cast<int64_t>(merged));
  state.counters["ops"] = n;
}

}  // namespace

void RegisterSyncBenchmarks() {
  for (const std::string& backend : Backends()) {
    benchmark::RegisterBenchmark(("Flush/" + backend).c_str(), BM_Flush, backend, false)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (const std::string& backend : DurableBackends()) {
    benchmark::RegisterBenchmark(("Flush/tcp/" + backend).c_str(), BM_Flush, backend, true)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (const std::string& backend : Backends()) {
    benchmark::RegisterBenchmark(("Merge/" + backend).c_str(), BM_Merge, backend)
        ->ArgName("page")
        ->Arg(1)
        ->Arg(100)
        ->Arg(1000)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

void ReleaseSyncFixtures() { MergeSources().clear(); }

}  // namespace outpost::bench
