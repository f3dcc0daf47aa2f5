// Copyright 2026 The Outpost Authors.
//
// outpost_sim: runs the simulator outside gtest (tools/sim drives it).
//   outpost_sim --seed N [--profile P]                  one seed, with the trace of every event
//   outpost_sim --seeds N [--seed-start S] [--profile P] [--jobs J]
//                                                       N seeds from S, progress on stderr, one count line
// P is a profile of sim.cc (default "default"; "mix" cycles through the memory-store profiles, seed by seed).
// Exit status: 0 when every seed held, 1 when one failed (each failure is printed with its replay line),
// 2 for bad usage.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sim/sim.h"

namespace {

using outpost::sim::KnownProfile;
using outpost::sim::Profile;
using outpost::sim::ProfileNames;
using outpost::sim::RunSim;
using outpost::sim::SimConfig;
using outpost::sim::SimOptions;
using outpost::sim::SimResult;

int Usage() {
  std::fprintf(stderr,
               "usage: outpost_sim --seed N [--profile P]\n"
               "       outpost_sim --seeds N [--seed-start S] [--profile P] [--jobs J]\n"
               "profiles: mix");
  for (const auto& p : ProfileNames()) std::fprintf(stderr, " %s", p.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

// The profiles "mix" cycles through: every one whose devices keep their stores in memory (fast).
std::vector<std::string> MixProfiles() {
  std::vector<std::string> out;
  for (const auto& p : ProfileNames()) {
    if (p.rfind("durable-", 0) != 0) out.push_back(p);
  }
  return out;
}

std::string ProfileFor(const std::string& profile, uint64_t seed) {
  if (profile != "mix") return profile;
  static const std::vector<std::string> mix = MixProfiles();
  return mix[seed % mix.size()];
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  bool one = false;
  uint64_t seed = 1, start = 1, count = 0;
  int jobs = 1;
  std::string profile = "default";
  // Flags come in pairs; a value that is not a whole number is a usage error, not a silent 0.
  auto number = [](const char* text, uint64_t* out) {
    char* end = nullptr;
    errno = 0;
    *out = std::strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && text[0] != '-';
  };
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr) return Usage();
    uint64_t n = 0;
    if (arg == "--seed" && number(value, &n)) {
      one = true;
      seed = n;
    } else if (arg == "--seeds" && number(value, &n)) {
      count = n;
    } else if (arg == "--seed-start" && number(value, &n)) {
      start = n;
    } else if (arg == "--profile") {
      profile = value;
    } else if (arg == "--jobs" && number(value, &n) && n >= 1 && n <= 256) {
      jobs = static_cast<int>(n);
    } else {
      return Usage();
    }
  }
  if ((!one && count == 0) || (profile != "mix" && !KnownProfile(profile))) return Usage();

  if (one) {
    SimConfig c = Profile(ProfileFor(profile, seed));
    c.seed = seed;
    SimResult r = RunSim(c, SimOptions{.full_trace = true});
    std::fputs(r.trace.c_str(), stdout);
    if (!r.ok) std::fputs(r.failure.c_str(), stdout);
    std::printf(
        "sim: seed %llu (profile %s): %s; %llu ops submitted, %llu applied, %llu refused (%llu forbidden), "
        "%llu member changes, %llu device restarts, %llu server restarts, %llu server store failures, %llu "
        "power losses, %llu partitions, %llu instance crashes, %llu cross-instance notifies, %llu "
        "cross-instance relays, %llu failovers, %llu ticks\n",
        static_cast<unsigned long long>(seed), c.profile.c_str(), r.ok ? "ok" : "FAILED",
        static_cast<unsigned long long>(r.ops_submitted), static_cast<unsigned long long>(r.ops_applied),
        static_cast<unsigned long long>(r.ops_failed), static_cast<unsigned long long>(r.ops_forbidden),
        static_cast<unsigned long long>(r.member_changes), static_cast<unsigned long long>(r.device_restarts),
        static_cast<unsigned long long>(r.server_restarts), static_cast<unsigned long long>(r.store_failures),
        static_cast<unsigned long long>(r.power_losses), static_cast<unsigned long long>(r.partitions),
        static_cast<unsigned long long>(r.instance_crashes),
        static_cast<unsigned long long>(r.cross_notifies), static_cast<unsigned long long>(r.cross_relays),
        static_cast<unsigned long long>(r.failovers), static_cast<unsigned long long>(r.ticks));
    if (r.restores > 0) {
      std::printf(
          "sim: %llu server restores, %llu rebases, %llu own ops sent again, %llu set aside, %llu lost\n",
          static_cast<unsigned long long>(r.restores), static_cast<unsigned long long>(r.rebases),
          static_cast<unsigned long long>(r.ops_requeued), static_cast<unsigned long long>(r.ops_set_aside),
          static_cast<unsigned long long>(r.ops_lost));
    }
    return r.ok ? 0 : 1;
  }

  const auto began = std::chrono::steady_clock::now();
  std::atomic<uint64_t> next{0}, done{0}, failures{0}, ops{0}, applied{0}, refused{0}, forbidden{0},
      member_changes{0}, restarts{0}, server_restarts{0}, store_failures{0}, power_losses{0}, partitions{0},
      instance_crashes{0}, cross_notifies{0}, cross_relays{0}, failovers{0};
  std::mutex out_mu;
  uint64_t reported = 0;
  auto worker = [&] {
    for (uint64_t i = next++; i < count; i = next++) {
      SimConfig c = Profile(ProfileFor(profile, start + i));
      c.seed = start + i;
      SimResult r = RunSim(c);
      ops += r.ops_submitted;
      applied += r.ops_applied;
      refused += r.ops_failed;
      forbidden += r.ops_forbidden;
      member_changes += r.member_changes;
      restarts += r.device_restarts;
      server_restarts += r.server_restarts;
      store_failures += r.store_failures;
      power_losses += r.power_losses;
      partitions += r.partitions;
      instance_crashes += r.instance_crashes;
      cross_notifies += r.cross_notifies;
      cross_relays += r.cross_relays;
      failovers += r.failovers;
      std::lock_guard<std::mutex> lock(out_mu);
      if (!r.ok) {
        ++failures;
        std::printf("FAILED %s\n", r.failure.c_str());
        std::fflush(stdout);
      }
      const uint64_t n = ++done;
      if (n == count || n - reported >= std::max<uint64_t>(1, count / 20)) {
        reported = n;
        std::fprintf(stderr, "sim: %llu/%llu seeds, %llu failures, %.1f s\n",
                     static_cast<unsigned long long>(n), static_cast<unsigned long long>(count),
                     static_cast<unsigned long long>(failures.load()), Seconds(began));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  std::printf(
      "sim: %llu seeds (%s, from %llu) in %.1f s: %llu ops submitted, %llu applied, %llu refused (%llu "
      "forbidden), %llu member changes, %llu device restarts, %llu server restarts, %llu server store "
      "failures, %llu power losses, %llu partitions, %llu instance crashes, %llu cross-instance notifies, "
      "%llu cross-instance relays, %llu failovers, %llu failures\n",
      static_cast<unsigned long long>(count), profile.c_str(), static_cast<unsigned long long>(start),
      Seconds(began), static_cast<unsigned long long>(ops.load()),
      static_cast<unsigned long long>(applied.load()), static_cast<unsigned long long>(refused.load()),
      static_cast<unsigned long long>(forbidden.load()),
      static_cast<unsigned long long>(member_changes.load()),
      static_cast<unsigned long long>(restarts.load()),
      static_cast<unsigned long long>(server_restarts.load()),
      static_cast<unsigned long long>(store_failures.load()),
      static_cast<unsigned long long>(power_losses.load()),
      static_cast<unsigned long long>(partitions.load()),
      static_cast<unsigned long long>(instance_crashes.load()),
      static_cast<unsigned long long>(cross_notifies.load()),
      static_cast<unsigned long long>(cross_relays.load()), static_cast<unsigned long long>(failovers.load()),
      static_cast<unsigned long long>(failures.load()));
  return failures == 0 ? 0 : 1;
}
