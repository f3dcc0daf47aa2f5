// Copyright 2026 The Outpost Authors.
//
// The submit path of a device, offline (no server: only the local commit is measured).
//   Submit/<backend>                   one thread, blocking Submit; p50_us/p99_us per call, and p50_ratio to
//                                      a RawPut batch:1 commit interleaved with the Submits
//   SubmitAsync/<backend>/threads:8    8 threads, each keeping up to 128 SubmitAsync ops in flight on one
//                                      shared Client (refilled 32 at a time); an op counts once its callback
//                                      reported it durable
// Stores are durable (store_sync) and new for every run.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>

#include "bench_util.h"
#include "outpost/client.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<Client>> OpenOfflineClient(const TempDir& dir, const std::string& backend) {
  ClientOptions options;
  options.store = dir.StoreUri(backend, "device");
  options.store_sync = true;
  options.user = "bench-user";
  options.device = "bench-device";
  return Client::Open(std::move(options));
}

// Between two Submits (not timed), one RawPut batch:1 commit on a store of the same backend in the same
// directory: its p50 (rawput_p50_us) is the ceiling taken under the same disk conditions, which drift.
void BM_Submit(benchmark::State& state, const std::string& backend) {
  TempDir dir;
  auto client = OpenOfflineClient(dir, backend);
  if (!Check(state, client.status(), "open client")) return;
  RawStore raw;
  if (!Check(state, raw.Open(dir, backend, "raw"), "open raw store")) return;
  const std::string payload = Payload();
  Latencies latencies, raw_latencies;
  latencies.Reserve(state.max_iterations);
  raw_latencies.Reserve(state.max_iterations);
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto id = (*client)->Submit("bench-stream", "text", payload);
    latencies.Add(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!Check(state, id.status(), "submit")) break;
    state.PauseTiming();
    t0 = Clock::now();
    Status st = raw.PutBatch(1);
    raw_latencies.Add(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    state.ResumeTiming();
    if (!Check(state, st, "raw put")) break;
  }
  state.SetItemsProcessed(state.iterations());
  latencies.Report(state);
  const double raw_p50 = raw_latencies.Percentile(0.5);
  if (raw_p50 > 0) {
    state.counters["rawput_p50_us"] = raw_p50;
    state.counters["p50_ratio"] = latencies.Percentile(0.5) / raw_p50;
  }
}

// ---- SubmitAsync: one Client shared by the benchmark's threads, made by Setup before they start ----

struct AsyncFixture {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Client> client;
  Status open_status;
};
AsyncFixture& Async() {
  static AsyncFixture fixture;
  return fixture;
}

template <int kBackend>
void AsyncSetup(const benchmark::State&) {
  AsyncFixture& f = Async();
  f.dir = std::make_unique<TempDir>();
  auto client = OpenOfflineClient(*f.dir, Backends()[kBackend]);
  f.open_status = client.status();
  if (client.ok()) f.client = std::move(client).value();
}

void AsyncTeardown(const benchmark::State&) {
  AsyncFixture& f = Async();
  f.client.reset();  // joins the commit thread: every callback has run
  f.dir.reset();
}

// One thread's window of ops in flight; shared with the callbacks, which may run after the thread moved on.
// A thread that filled its window sleeps until it drained to `wake_at` (a quarter of the window free, or
// empty for the final wait), so that the commit thread wakes it once per refill, not once per op: the
// harness's own thread ping-pong would otherwise cost as much as the engine.
struct Window {
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  int wake_at = -1;  // -1: nobody waits
  uint64_t failed = 0;
  std::string error;

  void WaitFor(std::unique_lock<std::mutex>& lock, int level) {
    wake_at = level;
    cv.wait(lock, [&] { return inflight <= level; });
    wake_at = -1;
  }
};

void BM_SubmitAsync(benchmark::State& state) {
  AsyncFixture& f = Async();
  if (!f.client) {
    Check(state, f.open_status.ok() ? Status::Aborted("no client") : f.open_status, "open client");
    return;
  }
  Client& client = *f.client;
  const int inflight_max = Config().async_inflight_max;
  const int refill_at = inflight_max - std::max(1, inflight_max / 4);
  const std::string stream = "async-" + std::to_string(state.thread_index());
  const std::string payload = Payload();
  auto window = std::make_shared<Window>();
  auto done = [window](const Result<OpId>& r) {
    std::lock_guard<std::mutex> lock(window->mu);
    --window->inflight;
    if (!r.ok()) {
      ++window->failed;
      if (window->error.empty()) window->error = r.status().ToString();
    }
    if (window->inflight == window->wake_at) window->cv.notify_one();
  };
  const int64_t iterations = state.max_iterations;
  int64_t submitted = 0;
  for (auto _ : state) {
    {
      std::unique_lock<std::mutex> lock(window->mu);
      if (window->inflight >= inflight_max) window->WaitFor(lock, refill_at);
      ++window->inflight;
    }
    client.SubmitAsync(stream, "text", payload, {}, done);
    if (++submitted == iterations) {  // the last iteration waits for the rest: every op counted is durable
      std::unique_lock<std::mutex> lock(window->mu);
      window->WaitFor(lock, 0);
    }
  }
  std::lock_guard<std::mutex> lock(window->mu);
  if (window->failed > 0) {
    state.SkipWithError(
        ("SubmitAsync failed " + std::to_string(window->failed) + " ops: " + window->error).c_str());
    return;
  }
  state.SetItemsProcessed(submitted);
}

}  // namespace

void RegisterSubmitBenchmarks() {
  for (const std::string& backend : Backends()) {
    benchmark::RegisterBenchmark(("Submit/" + backend).c_str(), BM_Submit, backend)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  // Setup takes a plain function, so one instantiation per backend index.
  void (*const setups[])(const benchmark::State&) = {AsyncSetup<0>, AsyncSetup<1>, AsyncSetup<2>,
                                                     AsyncSetup<3>};
  static_assert(std::size(setups) == 4, "one Setup per backend of Backends()");
  for (size_t i = 0; i < Backends().size() && i < std::size(setups); ++i) {
    benchmark::RegisterBenchmark(("SubmitAsync/" + Backends()[i]).c_str(), BM_SubmitAsync)
        ->Setup(setups[i])
        ->Teardown(AsyncTeardown)
        ->Threads(8)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace outpost::bench
