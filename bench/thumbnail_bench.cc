// Copyright 2026 The Outpost Authors.
//
// The device's thumbnailer (engine/media/thumbnail, libvips) on camera-sized JPEGs:
//   Thumbnail/12mp   a 4000 x 3000 JPEG to the default thumbnail (320 px, <= 8 KiB)
//   Thumbnail/48mp   an 8000 x 6000 JPEG, the same
// The JPEGs are made once, at first use, in a temporary directory: colour gradients under Gaussian noise at
// quality 85, so that they compress (and decode) like photos rather than like flat colour.
//
// Memory: each iteration runs in a fresh process (`outpost_bench --thumbnail-child PATH`, the binary
// itself), because a process's peak RSS is a high-water mark that earlier benchmarks (and the making of the
// JPEGs) would already have raised. The child starts libvips, reads VmRSS (rss_before_mb), makes one
// thumbnail, and reads VmHWM from /proc/self/status (peak_rss_mb: the whole process's peak, so the binary's
// and libvips's own pages count too — an upper bound for the thumbnailer). The time is that of Make alone,
// measured in the child (manual time); process start and libvips start are not in it. The target of issue
// 15 is a peak RSS under 64 MB for the 48 MP photo.
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vips/vips8>

#include "bench_util.h"
#include "media/thumbnail/vips_thumbnailer.h"

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"); 0 when absent.
uint64_t StatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return 0;
}

std::string SelfPath() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

// The benchmark's JPEGs, made at first use and removed by ReleaseThumbnailFixtures.
std::mutex fixture_mutex;
std::unique_ptr<TempDir> fixture_dir;

// The path of a width x height photo-like JPEG, made if missing; empty (and `error` set) on failure.
std::string PhotoJpeg(int width, int height, std::string* error) {
  std::lock_guard<std::mutex> lock(fixture_mutex);
  if (fixture_dir == nullptr) fixture_dir = std::make_unique<TempDir>();
  const std::string path =
      (fixture_dir->path() / (std::to_string(width) + "x" + std::to_string(height) + ".jpg")).string();
  if (std::filesystem::exists(path)) return path;
  (void)OpenVipsThumbnailer();  // starts libvips, once per process
  try {
    using vips::VImage;
    VImage xy = VImage::xyz(width, height);
    VImage x = xy[0] * (255.0 / width);
    VImage y = xy[1] * (255.0 / height);
    VImage smooth = x.bandjoin({y, (x + y) * 0.5});
    VImage noise = VImage::gaussnoise(width, height, VImage::option()->set("sigma", 10.0)->set("mean", 0.0));
    (smooth + noise)
        .cast(VIPS_FORMAT_UCHAR)
        .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
        .jpegsave(path.c_str(), VImage::option()->set("Q", 85));
  } catch (const vips::VError& e) {
    *error = std::string("cannot make the JPEG: ") + e.what();
    vips_error_clear();
    return std::string();
  }
  return path;
}

void BM_Thumbnail(benchmark::State& state, int width, int height) {
  std::string error;
  const std::string path = PhotoJpeg(width, height, &error);
  const std::string self = SelfPath();
  if (path.empty() || self.empty()) {
    state.SkipWithError(path.empty() ? error.c_str() : "cannot find this binary in /proc/self/exe");
    return;
  }
  double peak_kb = 0, before_kb = 0, ms = 0, bytes = 0, peak_kb_max = 0;
  for (auto _ : state) {
    const std::string command = "'" + self + "' --thumbnail-child '" + path + "' 2>&1";
    std::string output;
    const bool ran = RunChildProcess(command, &output);
    const size_t at = output.rfind("thumbnail-child: ");
    if (!ran || at == std::string::npos ||
        std::sscanf(output.c_str() + at, "thumbnail-child: peak_kb=%lf before_kb=%lf ms=%lf bytes=%lf",
                    &peak_kb, &before_kb, &ms, &bytes) != 4) {
      state.SkipWithError(
          ("child failed: " + output.substr(output.size() > 300 ? output.size() - 300 : 0)).c_str());
      break;
    }
    peak_kb_max = std::max(peak_kb_max, peak_kb);
    state.SetIterationTime(ms / 1000);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["peak_rss_mb"] = peak_kb_max / 1024;  // the highest of the iterations
  state.counters["rss_before_mb"] = before_kb / 1024;
  state.counters["thumb_bytes"] = bytes;
  state.counters["file_mb"] = static_cast<double>(std::filesystem::file_size(path)) / (1024 * 1024);
}

}  // namespace

int RunThumbnailChild(const std::string& path) {
  std::unique_ptr<Thumbnailer> thumbnailer = OpenVipsThumbnailer();  // starts libvips
  const uint64_t before_kb = StatusKb("VmRSS");
  const auto t0 = Clock::now();
  Result<Thumbnail> thumbnail = thumbnailer->Make(path, ThumbnailOptions{});
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!thumbnail.ok()) {
    std::fprintf(stderr, "thumbnail-child %s: %s\n", path.c_str(), thumbnail.status().ToString().c_str());
    return 1;
  }
  std::printf("thumbnail-child: peak_kb=%llu before_kb=%llu ms=%.3f bytes=%zu\n",
              static_cast<unsigned long long>(StatusKb("VmHWM")), static_cast<unsigned long long>(before_kb),
              ms, thumbnail->bytes.size());
  return 0;
}

void RegisterThumbnailBenchmarks() {
  for (const auto& [name, width, height] :
       {std::tuple{"Thumbnail/12mp", 4000, 3000}, std::tuple{"Thumbnail/48mp", 8000, 6000}}) {
    benchmark::RegisterBenchmark(name, BM_Thumbnail, width, height)
        ->Iterations(5)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

void ReleaseThumbnailFixtures() {
  std::lock_guard<std::mutex> lock(fixture_mutex);
  fixture_dir.reset();
}

}  // namespace outpost::bench
