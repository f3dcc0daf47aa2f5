// Copyright 2026 The Outpost Authors.
//
// outpost_bench [--quick] [Google Benchmark flags]
//   --quick   smaller streams and stores for the engine benchmarks (pair it with --benchmark_min_time=0.05)
//   --fanout-threads=T   threads the Fanout benchmark's light devices are spread over (default 2)
// outpost_bench --rss-child flush|merge BACKEND OPS   (internal: one PeakRss measurement, see
// memory_bench.cc)
// outpost_bench --serve-child DIR   (internal: the Fanout benchmark's server process, see zmq_bench.cc)
// outpost_bench --thumbnail-child PATH   (internal: one Thumbnail measurement, see thumbnail_bench.cc)
// After the table it prints the engine's figures as ratios to the ceilings measured in the
// same run (figures drift from run to run and machine to machine; ratios much less).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

namespace outpost::bench {
namespace {

// The default console (or --benchmark_format) reporter, plus a summary of ratios at the end.
class SummaryReporter : public benchmark::BenchmarkReporter {
 public:
  explicit SummaryReporter(benchmark::BenchmarkReporter* display) : display_(display) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }

  void ReportRuns(const std::vector<Run>& runs) override {
    display_->ReportRuns(runs);
    for (const Run& run : runs) {
      // With --benchmark_repetitions, the median of the repetitions (reported after them) wins.
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if ((run.run_type != Run::RT_Iteration && !median) || run.error_occurred) continue;
      std::string key = run.run_name.function_name;
      if (!run.run_name.args.empty()) key += "/" + run.run_name.args;
      Figures& f = figures_[key];
      auto items = run.counters.find("items_per_second");
      if (items != run.counters.end()) f.items_per_second = items->second.value;
      for (auto& [name, value] : {std::pair<const char*, double*>{"p50_us", &f.p50_us},
                                  {"rawput_p50_us", &f.rawput_p50_us},
                                  {"p50_ms", &f.p50_ms},
                                  {"p99_ms", &f.p99_ms}}) {
        auto it = run.counters.find(name);
        if (it != run.counters.end()) *value = it->second.value;
      }
    }
  }

  void Finalize() override {
    display_->Finalize();
    std::FILE* out = stdout;
    std::fflush(out);
    std::fprintf(
        out,
        "\nRatios to the ceilings of this run (targets of issue 14: lmdb, and rocksdb's SubmitAsync):\n");
    for (const std::string& backend : Backends()) {
      const Figures* put1 = Find("RawPut/" + backend + "/batch:1");
      const Figures* put100 = Find("RawPut/" + backend + "/batch:100");
      const Figures* put1000 = Find("RawPut/" + backend + "/batch:1000");
      const Figures* submit = Find("Submit/" + backend);
      const Figures* async = Find("SubmitAsync/" + backend);
      const Figures* flush = Find("Flush/" + backend);
      const Figures* merge = Find("Merge/" + backend + "/page:1000");
      const Figures* flush_tcp = Find("Flush/tcp/" + backend);
      const Figures* catch_up = Find("CatchUp/tcp/" + backend);
      const Figures* echo = Find("RawEcho/tcp");
      const bool targets = backend == "lmdb";
      if (submit && submit->rawput_p50_us > 0) {
        // The ceiling taken between the Submits themselves: the figure the target is judged on.
        double ratio = submit->p50_us / submit->rawput_p50_us;
        std::fprintf(out, "  %-7s Submit p50 %.1f us / interleaved RawPut batch:1 p50 %.1f us = %.2f%s\n",
                     backend.c_str(), submit->p50_us, submit->rawput_p50_us, ratio,
                     Verdict(targets, ratio <= 1.5, " (target <= 1.5)").c_str());
      }
      if (submit && put1 && put1->p50_us > 0) {
        std::fprintf(out, "  %-7s Submit p50 %.1f us / RawPut batch:1 p50 %.1f us = %.2f\n", backend.c_str(),
                     submit->p50_us, put1->p50_us, submit->p50_us / put1->p50_us);
      }
      // The ceiling SubmitAsync is judged against: lmdb's batch:1000, rocksdb's batch:100.
      for (const Figures* put : {put100, put1000}) {
        if (!async || !put || put->items_per_second <= 0) continue;
        const bool judged = put == put1000 ? targets : backend == "rocksdb";
        double ratio = async->items_per_second / put->items_per_second;
        std::fprintf(out, "  %-7s SubmitAsync threads:8 %.0f ops/s = %.2f x RawPut batch:%d%s\n",
                     backend.c_str(), async->items_per_second, ratio, put == put100 ? 100 : 1000,
                     Verdict(judged, ratio >= 0.5, " (target >= 0.5)").c_str());
      }
      if (merge && put1000 && put1000->items_per_second > 0) {
        double ratio = merge->items_per_second / put1000->items_per_second;
        std::fprintf(out, "  %-7s Merge page:1000 %.0f ops/s = %.2f x RawPut batch:1000%s\n", backend.c_str(),
                     merge->items_per_second, ratio,
                     Verdict(targets, ratio >= 0.5, " (target >= 0.5)").c_str());
      }
      if (flush && put1000 && put1000->items_per_second > 0) {
        std::fprintf(out, "  %-7s Flush %.0f ops/s = %.2f x RawPut batch:1000\n", backend.c_str(),
                     flush->items_per_second, flush->items_per_second / put1000->items_per_second);
      }
      if (flush_tcp && echo && echo->items_per_second > 0) {
        double ratio = flush_tcp->items_per_second / echo->items_per_second;
        std::fprintf(out, "  %-7s Flush over tcp %.0f ops/s = %.2f x RawEcho%s\n", backend.c_str(),
                     flush_tcp->items_per_second, ratio,
                     Verdict(targets, ratio >= 0.5, " (target >= 0.5)").c_str());
      }
      if (catch_up && put1000 && put1000->items_per_second > 0) {
        double ratio = catch_up->items_per_second / put1000->items_per_second;
        std::fprintf(out, "  %-7s CatchUp over tcp %.0f ops/s = %.2f x RawPut batch:1000%s\n",
                     backend.c_str(), catch_up->items_per_second, ratio,
                     Verdict(targets, ratio >= 0.5, " (target >= 0.5)").c_str());
      }
    }
    // Live latency against the disk's own durable append (Fsync, this run).
    const Figures* live = Find("LiveLatency/tcp/lmdb");
    const Figures* fsync = Find("Fsync");
    if (live && fsync) {
      const double bound_ms = 3 * fsync->p50_ms + 0.3;
      std::fprintf(out, "  lmdb    LiveLatency p50 %.2f ms, 3 x Fsync p50 %.3f ms + 0.3 ms = %.2f ms%s\n",
                   live->p50_ms, fsync->p50_ms, bound_ms,
                   Verdict(true, live->p50_ms <= bound_ms, " (target: at most that)").c_str());
      std::fprintf(out, "  lmdb    LiveLatency p99 %.2f ms%s\n", live->p99_ms,
                   Verdict(true, live->p99_ms <= 5, " (target <= 5 ms)").c_str());
    }
    // Scale-out: several instances on PostgreSQL, next to one on lmdb with the same devices and ops.
    const Figures* lmdb1 = Find("Flush/instances/lmdb/1");
    for (int n = 1; n <= 3; ++n) {
      const Figures* pg = Find("Flush/instances/postgresql/" + std::to_string(n));
      if (!pg || !lmdb1 || lmdb1->items_per_second <= 0) continue;
      std::fprintf(out, "  postgresql Flush on %d instance%s %.0f ops/s = %.2f x one lmdb instance\n", n,
                   n == 1 ? "" : "s", pg->items_per_second, pg->items_per_second / lmdb1->items_per_second);
    }
    std::fflush(out);
  }

 private:
  struct Figures {
    double items_per_second = 0;
    double p50_us = 0;
    double rawput_p50_us = 0;  // Submit only: the ceiling interleaved with it
    double p50_ms = 0;         // latency benchmarks (LiveLatency, Fsync)
    double p99_ms = 0;
  };
  [[nodiscard]] const Figures* Find(const std::string& key) const {
    auto it = figures_.find(key);
    return it == figures_.end() ? nullptr : &it->second;
  }
  static std::string Verdict(bool targets, bool met, const char* target) {
    if (!targets) return "";
    return std::string(target) + (met ? ": met" : ": MISSED");
  }

  std::unique_ptr<benchmark::BenchmarkReporter> display_;
  std::map<std::string, Figures> figures_;
};

}  // namespace
}  // namespace outpost::bench

int main(int argc, char** argv) {
  using namespace outpost::bench;
  if (argc == 5 && std::strcmp(argv[1], "--rss-child") == 0)
    return RunRssChild(argv[2], argv[3], std::atoi(argv[4]));
  if (argc == 3 && std::strcmp(argv[1], "--serve-child") == 0) return RunServeChild(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "--thumbnail-child") == 0) return RunThumbnailChild(argv[2]);
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--quick") == 0) {
      Config().quick = true;
    } else if (i > 0 && std::strncmp(argv[i], "--fanout-threads=", 17) == 0) {
      Config().fanout_threads = std::atoi(argv[i] + 17);
      if (Config().fanout_threads < 1) {
        std::fprintf(stderr, "outpost_bench: --fanout-threads needs a number >= 1\n");
        return 2;
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  if (Config().quick) {
    BenchConfig& c = Config();
    c.flush_ops = 2'000;
    c.merge_ops_page1 = 100;
    c.merge_ops_page100 = 2'000;
    c.merge_ops_page1000 = 5'000;
    c.cold_ops = 100'000;
    c.rss_ops = 100'000;
  }
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::AddCustomContext("outpost_mode", Config().quick ? "quick" : "full");
  RegisterStorageBenchmarks();
  RegisterSubmitBenchmarks();
  RegisterSyncBenchmarks();
  RegisterNetworkBenchmarks();
  RegisterStoreBenchmarks();
  RegisterMemoryBenchmarks();
  RegisterScaleOutBenchmarks();
  RegisterThumbnailBenchmarks();
  RegisterMediaBenchmarks();
  SummaryReporter reporter(benchmark::CreateDefaultDisplayReporter());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  ReleaseSyncFixtures();
  ReleaseStoreFixtures();
  ReleaseThumbnailFixtures();
  benchmark::Shutdown();
  return 0;
}
