// Copyright 2026 The Outpost Authors.
//
// The default run: kShards × kSeedsPerShard seeds on memory stores, 40 under harsher settings, and per
// durable backend (storage_backends.h) 15 to 25 with device stores in files, each a full simulated history
// checked against every invariant. OUTPOST_SIM_SEED=N replays one seed; OUTPOST_SIM_SEEDS=N runs N
// seeds in every test instead.
#include "sim/sim.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "conformance/storage_backends.h"

namespace outpost::sim {
namespace {

constexpr int kShards = 10;
constexpr int kSeedsPerShard = 50;

int SeedsPerShard() {
  const char* v = std::getenv("OUTPOST_SIM_SEEDS");
  return v ? std::max(1, std::atoi(v)) : kSeedsPerShard;
}

void RunSeeds(const SimConfig& base, uint64_t first, int count) {
  if (std::getenv("OUTPOST_SIM_SEEDS")) count = SeedsPerShard();  // wider runs widen every test
  if (const char* one = std::getenv("OUTPOST_SIM_SEED")) {
    first = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  uint64_t applied = 0, restarts = 0, failed = 0, submitted = 0, server_restarts = 0;
  for (int i = 0; i < count; ++i) {
    SimConfig c = base;
    c.seed = first + static_cast<uint64_t>(i);
    SimResult r = RunSim(c);
    ASSERT_TRUE(r.ok) << r.failure;
    ASSERT_GT(r.ops_applied, 0u) << "seed " << c.seed << " applied nothing";
    applied += r.ops_applied;
    failed += r.ops_failed;
    submitted += r.ops_submitted;
    restarts += r.device_restarts;
    server_restarts += r.server_restarts;
  }
  std::printf(
      "sim: %d seeds from %llu: %llu ops submitted, %llu applied, %llu refused, %llu device restarts, "
      "%llu server restarts\n",
      count, static_cast<unsigned long long>(first), static_cast<unsigned long long>(submitted),
      static_cast<unsigned long long>(applied), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(restarts), static_cast<unsigned long long>(server_restarts));
  testing::Test::RecordProperty("ops_applied", std::to_string(applied));
  testing::Test::RecordProperty("restarts", std::to_string(restarts));
}

class SimShard : public testing::TestWithParam<int> {};

TEST_P(SimShard, InvariantsHoldUnderFaults) {
  SimConfig c;
  RunSeeds(c, 1'000 + static_cast<uint64_t>(GetParam()) * 10'000, SeedsPerShard());
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimShard, testing::Range(0, kShards));

TEST(Sim, ExhaustedOpsBecomeSkipsAndRetry) {
  SimConfig c;
  c.attempts_max = 3;
  c.faults.drop = 0.25;
  RunSeeds(c, 500'000, 20);
}

TEST(Sim, HeavyLossAndServerCrashes) {
  SimConfig c;
  c.faults =
      FaultOptions{.drop = 0.3, .duplicate = 0.1, .delay = 0.3, .delay_ms_max = 2000, .disconnect = 0.01};
  c.server_crash = 0.005;
  RunSeeds(c, 900'000, 20);
}

// The same histories (same seeds) on every durable backend: what differs is only where devices keep state.
class DurableDevices : public testing::TestWithParam<StorageBackend> {};

TEST_P(DurableDevices, SurviveFrequentCrashes) {
  SimConfig c;
  c.device_backend = GetParam().name;
  c.device_crash = 0.01;
  // An SQLite or RocksDB restart costs 5 to 50 ms of opening, checkpointing and fsyncing (LMDB's well
  // under 1 ms) and these histories restart ~10 times per seed, so they run the first half of the seeds.
  RunSeeds(c, 700'000, GetParam().name == "Lmdb" ? 20 : 10);
}

TEST_P(DurableDevices, SurviveHeavyLossAndServerCrashes) {
  SimConfig c;
  c.device_backend = GetParam().name;
  c.device_crash = 0.005;
  c.faults =
      FaultOptions{.drop = 0.3, .duplicate = 0.1, .delay = 0.3, .delay_ms_max = 2000, .disconnect = 0.01};
  c.server_crash = 0.005;
  c.attempts_max = 5;
  RunSeeds(c, 750'000, 5);
}

INSTANTIATE_TEST_SUITE_P(, DurableDevices, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace outpost::sim
