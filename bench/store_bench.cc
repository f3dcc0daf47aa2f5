// Copyright 2026 The Outpost Authors.
//
// A device's history at rest: what opening a big store and paging back through it cost, per durable backend.
//   ColdOpen/<backend>   a closed store holding N ops (1M; 100k with --quick) in 10 streams, submitted
//                        offline; timed: Client::Open (durable) + Latest(50) of one stream, in a process
//                        that has not opened it before in this iteration (the OS page cache is warm)
//   Scan/<backend>       the same store, open; timed: paging one stream's whole history (N/10 ops) from the
//                        newest back, 100 ops a page (Latest, then Before): items_per_second is ops read
// The store is built once per backend (not timed) and shared by both families.
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "bench_util.h"
#include "outpost/client.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStreams = 10;
constexpr size_t kLatest = 50;
constexpr size_t kPageOps = 100;
const char* const kStream = "history-0";

ClientOptions StoreOptions(const std::string& uri, bool sync) {
  ClientOptions options;
  options.store = uri;
  options.store_sync = sync;
  options.user = "bench-user";
  options.device = "history-device";
  return options;
}

struct HistoryStore {
  TempDir dir;
  std::string uri;
  int ops = 0;
};

// The stores built so far, per backend; ReleaseStoreFixtures removes them (each is a TempDir).
std::map<std::string, std::unique_ptr<HistoryStore>>* g_stores = nullptr;

// Builds (once per backend) a store of Config().cold_ops ops; offline, so they all sit in the outbox too.
Result<HistoryStore*> StoreFor(const std::string& backend) {
  if (g_stores == nullptr) g_stores = new std::map<std::string, std::unique_ptr<HistoryStore>>;
  auto& store = (*g_stores)[backend];
  if (store) return store.get();
  auto fresh = std::make_unique<HistoryStore>();
  fresh->uri = fresh->dir.StoreUri(backend, "history");
  fresh->ops = Config().cold_ops / kStreams * kStreams;
  {
    OUTPOST_ASSIGN_OR_RETURN(auto client, Client::Open(StoreOptions(fresh->uri, false)));
    for (int s = 0; s < kStreams; ++s) {
      OUTPOST_RETURN_IF_ERROR(
          SubmitMany(*client, "history-" + std::to_string(s), fresh->ops / kStreams).status());
    }
  }
  store = std::move(fresh);
  return store.get();
}

void BM_ColdOpen(benchmark::State& state, const std::string& backend) {
  auto store = StoreFor(backend);
  if (!Check(state, store.status(), "build the store")) return;
  Latencies latencies;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto client = Client::Open(StoreOptions((*store)->uri, true));
    if (!Check(state, client.status(), "open")) break;
    auto latest = (*client)->Latest(kStream, kLatest);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!Check(state, latest.status(), "latest")) break;
    if (latest->size() != kLatest) {
      state.SkipWithError(("Latest returned " + std::to_string(latest->size()) + " ops").c_str());
      break;
    }
    state.SetIterationTime(seconds);
    latencies.Add(seconds * 1e6);
    client->reset();  // closing is not timed
  }
  state.counters["ops"] = (*store)->ops;
  latencies.Report(state);
}

void BM_Scan(benchmark::State& state, const std::string& backend) {
  auto store = StoreFor(backend);
  if (!Check(state, store.status(), "build the store")) return;
  auto client = Client::Open(StoreOptions((*store)->uri, true));
  if (!Check(state, client.status(), "open")) return;
  const auto expected = static_cast<size_t>((*store)->ops / kStreams);
  int64_t read = 0;
  for (auto _ : state) {
    size_t seen = 0;
    auto page = (*client)->Latest(kStream, kPageOps);
    while (page.ok() && !page->empty()) {
      seen += page->size();
      page = (*client)->Before(kStream, page->front().position, kPageOps);
    }
    if (!Check(state, page.status(), "page")) break;
    if (seen != expected) {
      state.SkipWithError(
          ("paged " + std::to_string(seen) + " of " + std::to_string(expected) + " ops").c_str());
      break;
    }
    read += static_cast<int64_t>(seen);
  }
  state.SetItemsProcessed(read);
  state.counters["ops"] = static_cast<double>(expected);
}

}  // namespace

void ReleaseStoreFixtures() {
  delete g_stores;
  g_stores = nullptr;
}

void RegisterStoreBenchmarks() {
  for (const std::string& backend : DurableBackends()) {
    benchmark::RegisterBenchmark(("ColdOpen/" + backend).c_str(), BM_ColdOpen, backend)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (const std::string& backend : DurableBackends()) {
    benchmark::RegisterBenchmark(("Scan/" + backend).c_str(), BM_Scan, backend)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace outpost::bench
