// Copyright 2026 The Outpost Authors.
//
// Peak memory of the device engine per durable backend:
//   PeakRss/flush/<backend>   a device flushes an outbox of N ops (1M; 100k with --quick) to a server
//   PeakRss/merge/<backend>   a device catches up on a stream of N ops from a server, 1000 a page
// Each measurement runs in a fresh process (`outpost_bench --rss-child ...`, the binary itself), so that
// no other benchmark's memory counts. Filling the outbox (or the server) happens first; the peak is then
// reset (/proc/self/clear_refs) and read (VmHWM) after the phase. The process holds the device and the
// server (its store on the same backend, in-process), and counts file pages mapped by LMDB, so the figure is
// an upper bound for the device. Memory the fill freed is handed back (malloc_trim) before the reset.
// Counters: peak_anon_mb (the target's figure: the highest anonymous resident memory — heap, stacks —
// sampled every 5 ms during the phase, so file pages mapped by LMDB or cached by the kernel are aside),
// peak_rss_mb (VmHWM, file pages included), rss_before_mb (resident when the phase began), peak_reset (0:
// the kernel did not reset the peak, which then covers the fill as well); the time is the phase's.
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "bench_util.h"
#include "outpost/client.h"
#include "outpost/server.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

const char* const kStream = "rss";

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"); 0 when absent.
uint64_t StatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux 4.0+).
bool ResetPeak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::string SelfPath() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

void BM_PeakRss(benchmark::State& state, const std::string& workload, const std::string& backend) {
  const int ops = Config().rss_ops;
  const std::string self = SelfPath();
  if (self.empty()) {
    state.SkipWithError("cannot find this binary in /proc/self/exe");
    return;
  }
  double peak_kb = 0, before_kb = 0, ms = 0, anon_kb = 0;
  int reset = 0;
  for (auto _ : state) {
    const std::string command =
        "'" + self + "' --rss-child " + workload + " " + backend + " " + std::to_string(ops) + " 2>&1";
    std::string output;
    const bool ran = RunChildProcess(command, &output);
    const size_t at = output.rfind("rss-child: ");
    if (!ran || at == std::string::npos ||
        std::sscanf(output.c_str() + at, "rss-child: peak_kb=%lf before_kb=%lf ms=%lf reset=%d anon_kb=%lf",
                    &peak_kb, &before_kb, &ms, &reset, &anon_kb) != 5) {
      state.SkipWithError(
          ("child failed: " + output.substr(output.size() > 300 ? output.size() - 300 : 0)).c_str());
      break;
    }
    state.SetIterationTime(ms / 1000);
  }
  state.SetItemsProcessed(state.iterations() * ops);
  state.counters["ops"] = ops;
  state.counters["peak_anon_mb"] = anon_kb / 1024;
  state.counters["peak_rss_mb"] = peak_kb / 1024;
  state.counters["rss_before_mb"] = before_kb / 1024;
  state.counters["peak_reset"] = reset;
}

// Fills a server with one stream of `ops` ops made by a writer device with a memory store, then closes it.
Status FillServer(const std::string& net, int ops) {
  OUTPOST_ASSIGN_OR_RETURN(auto writer, OpenBenchDevice("memory:", net, "rss-writer"));
  OUTPOST_ASSIGN_OR_RETURN(OpId last, SubmitMany(*writer, kStream, ops));
  OUTPOST_RETURN_IF_ERROR(writer->RunUntilIdle(600'000));
  OUTPOST_ASSIGN_OR_RETURN(OpInfo op, writer->Get(last));
  if (op.state != OpState::kSent) return Status::Aborted("the writer's last op was not sent");
  return Status::OK();
}

Status RunChild(const std::string& workload, const std::string& backend, int ops) {
  TempDir dir;
  const std::string net = UniqueInproc("rss");
  OUTPOST_ASSIGN_OR_RETURN(auto server, StartBenchServer(dir, backend, net));
  if (workload == "merge") OUTPOST_RETURN_IF_ERROR(FillServer(net, ops));
  OUTPOST_ASSIGN_OR_RETURN(auto device, OpenBenchDevice(dir.StoreUri(backend, "device"), net, "rss-device"));
  OUTPOST_RETURN_IF_ERROR(WaitWelcomed(*device));
  if (workload == "flush") OUTPOST_RETURN_IF_ERROR(SubmitMany(*device, kStream, ops).status());
  if (workload == "merge") device->Start();
  ::malloc_trim(0);  // what the fill freed (the writer's store, encode buffers) is not the phase's memory
  ChangeWaiter waiter(*device, kStream, workload == "flush" ? Change::Kind::kUpdated : Change::Kind::kAdded,
                      static_cast<uint64_t>(ops));
  const bool reset = ResetPeak();
  const uint64_t before_kb = StatusKb("VmRSS");
  std::atomic<bool> done{false};
  std::atomic<uint64_t> anon_kb{StatusKb("RssAnon")};
  std::thread sampler([&] {
    while (!done.load()) {
      anon_kb = std::max<uint64_t>(anon_kb.load(), StatusKb("RssAnon"));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a sampling period, not a wait
    }
  });
  const auto t0 = Clock::now();
  if (workload == "flush") {
    device->Start();
  } else {
    OUTPOST_RETURN_IF_ERROR(device->Follow(kStream));
  }
  Status waited = waiter.Wait();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  done = true;
  sampler.join();
  OUTPOST_RETURN_IF_ERROR(waited);
  const uint64_t peak_kb = StatusKb("VmHWM");
  std::printf("rss-child: peak_kb=%llu before_kb=%llu ms=%.3f reset=%d anon_kb=%llu\n",
              static_cast<unsigned long long>(peak_kb), static_cast<unsigned long long>(before_kb), ms,
              reset ? 1 : 0, static_cast<unsigned long long>(anon_kb.load()));
  return Status::OK();
}

}  // namespace

int RunRssChild(const std::string& workload, const std::string& backend, int ops) {
  if ((workload != "flush" && workload != "merge") || ops <= 0) {
    std::fprintf(stderr, "usage: outpost_bench --rss-child flush|merge BACKEND OPS\n");
    return 2;
  }
  Status status = RunChild(workload, backend, ops);
  if (!status.ok()) {
    std::fprintf(stderr, "rss-child %s %s: %s\n", workload.c_str(), backend.c_str(),
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}

void RegisterMemoryBenchmarks() {
  for (const char* workload : {"flush", "merge"}) {
    for (const std::string& backend : DurableBackends()) {
      benchmark::RegisterBenchmark(("PeakRss/" + std::string(workload) + "/" + backend).c_str(), BM_PeakRss,
                                   std::string(workload), backend)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace outpost::bench
