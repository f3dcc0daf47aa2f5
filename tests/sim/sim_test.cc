// Copyright 2026 The Outpost Authors.
//
// The default run: kShards shards of the default profile plus shards of every other memory-store profile
// (sim.cc's Profile: power losses with and without sync, partitions, heavy loss, exhaustion, crowds, stream
// membership, a flaky server store, two server instances on one store with and without membership, the
// server restored from an earlier copy of its store), and per
// durable backend (storage_backends.h) a few seeds with device
// stores in files, each seed a full simulated history checked against every invariant. OUTPOST_SIM_SEED=N
// replays one seed in every test; OUTPOST_SIM_SEEDS=N runs N seeds in every test instead (tools/test sets 5
// under the sanitizers). Each test prints one "sim:" line with its counts; tools/sim runs other and longer
// ranges.
#include "sim/sim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>

#include "conformance/storage_backends.h"

namespace outpost::sim {
namespace {

void RunSeeds(const std::string& profile, uint64_t first, int count) {
  if (const char* n = std::getenv("OUTPOST_SIM_SEEDS")) count = std::max(1, std::atoi(n));
  if (const char* one = std::getenv("OUTPOST_SIM_SEED")) {
    first = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  SimResult total;
  uint64_t failures = 0;  // every seed runs, and each failure is reported with its replay line
  for (int i = 0; i < count; ++i) {
    SimConfig c = Profile(profile);
    c.seed = first + static_cast<uint64_t>(i);
    SimResult r = RunSim(c);
    if (!r.ok || r.ops_applied == 0) {
      ++failures;
      ADD_FAILURE() << (r.ok ? "seed " + std::to_string(c.seed) + " (profile " + profile + ") applied nothing"
                             : r.failure);
    }
    total.ops_submitted += r.ops_submitted;
    total.ops_applied += r.ops_applied;
    total.ops_failed += r.ops_failed;
    total.ops_lost_to_power += r.ops_lost_to_power;
    total.device_restarts += r.device_restarts;
    total.server_restarts += r.server_restarts;
    total.power_losses += r.power_losses;
    total.partitions += r.partitions;
    total.ops_forbidden += r.ops_forbidden;
    total.member_changes += r.member_changes;
    total.store_failures += r.store_failures;
    total.instance_crashes += r.instance_crashes;
    total.cross_notifies += r.cross_notifies;
    total.cross_relays += r.cross_relays;
    total.failovers += r.failovers;
    total.restores += r.restores;
    total.rebases += r.rebases;
    total.ops_requeued += r.ops_requeued;
    total.ops_set_aside += r.ops_set_aside;
    total.ops_lost += r.ops_lost;
  }
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "sim: %d seeds (%s, from %llu): %llu ops submitted, %llu applied, %llu refused (%llu forbidden), %llu "
      "lost to power (unsynced), %llu member changes, %llu device restarts, %llu server restarts, %llu "
      "server store failures, %llu power losses, %llu partitions, %llu instance crashes, %llu cross-instance "
      "notifies, %llu cross-instance relays, %llu failovers, %llu failures\n",
      count, profile.c_str(), u(first), u(total.ops_submitted), u(total.ops_applied), u(total.ops_failed),
      u(total.ops_forbidden), u(total.ops_lost_to_power), u(total.member_changes), u(total.device_restarts),
      u(total.server_restarts), u(total.store_failures), u(total.power_losses), u(total.partitions),
      u(total.instance_crashes), u(total.cross_notifies), u(total.cross_relays), u(total.failovers),
      u(failures));
  if (total.restores > 0) {
    std::printf(
        "sim: %s: %llu server restores, %llu rebases, %llu own ops sent again, %llu ops set aside, "
        "%llu lost for good\n",
        profile.c_str(), u(total.restores), u(total.rebases), u(total.ops_requeued), u(total.ops_set_aside),
        u(total.ops_lost));
  }
  testing::Test::RecordProperty("seeds", std::to_string(count));
  testing::Test::RecordProperty("ops_applied", std::to_string(total.ops_applied));
  testing::Test::RecordProperty("restarts", std::to_string(total.device_restarts + total.server_restarts));
}

// Shards of one profile: each a ctest test of its own, so that ctest -j runs them side by side.
struct Shard {
  const char* profile;
  int index;
  int seeds;
};

std::vector<Shard> Shards() {
  std::vector<Shard> shards;
  auto add = [&](const char* profile, int count, int seeds) {
    for (int i = 0; i < count; ++i) shards.push_back({profile, i, seeds});
  };
  add("default", 8, 100);
  add("power", 4, 100);
  add("power-sync", 2, 100);
  add("partition", 2, 100);
  add("heavy", 2, 100);
  add("exhausted", 1, 100);
  add("crowd", 2, 75);
  add("members", 2, 100);
  add("members-flaky", 1, 100);
  add("flaky-store", 1, 100);
  add("instances", 4, 75);
  add("instances-members", 3, 75);
  add("instances-many-writers", 2, 75);
  add("media", 2, 100);
  add("media-power", 2, 100);
  // The server restored from an earlier copy (issue 19): the loss rule (docs/lifecycle.md).
  add("restore", 2, 75);
  add("restore-members", 2, 75);
  add("restore-instances", 1, 60);
  // "members-power" (membership on devices without sync) is not among them yet: about 1% of its seeds
  // (11 of seeds 1000..1999) end with an op the server applied shown failed on its device. The user
  // retried a refused op, the server applied it, then a power loss undid the retry and its ack on the
  // device, and the user has left the stream since, so no page ever tells the device (a further Retry
  // would: the server answers Duplicate). Open: docs/testing.md, "Known open". tools/sim runs it.
  return shards;
}

void PrintTo(const Shard& s, std::ostream* out) { *out << s.profile << " shard " << s.index; }

class SimShard : public testing::TestWithParam<Shard> {};

TEST_P(SimShard, InvariantsHold) {
  const Shard& s = GetParam();
  // Seed ranges of different shards of a profile never overlap.
  RunSeeds(s.profile, 1'000 + static_cast<uint64_t>(s.index) * 10'000, s.seeds);
}

INSTANTIATE_TEST_SUITE_P(, SimShard, testing::ValuesIn(Shards()), [](const testing::TestParamInfo<Shard>& p) {
  std::string name = std::string(p.param.profile) + "_" + std::to_string(p.param.index);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// The same histories (same seeds) on every durable backend: what differs is only where devices keep state.
class DurableDevices : public testing::TestWithParam<StorageBackend> {};

TEST_P(DurableDevices, SurviveFrequentCrashes) {
  // An SQLite or RocksDB restart costs 5 to 50 ms of opening, checkpointing and fsyncing (LMDB's well
  // under 1 ms) and these histories restart ~20 times per seed, so they run fewer seeds.
  const std::string& name = GetParam().name;
  RunSeeds("durable-" + name, 700'000, name == "Lmdb" ? 20 : name == "Sqlite" ? 6 : 4);
}

TEST_P(DurableDevices, SurviveHeavyLossAndServerCrashes) {
  RunSeeds("durable-heavy-" + GetParam().name, 750'000, GetParam().name == "Lmdb" ? 5 : 3);
}

INSTANTIATE_TEST_SUITE_P(, DurableDevices, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

// Seeds that once failed, each replayed on every run (the fix is named in the comment).
void RunSeed(const std::string& profile, uint64_t seed) {
  if (std::getenv("OUTPOST_SIM_SEED")) GTEST_SKIP() << "replaying another seed";
  SimConfig c = Profile(profile);
  c.seed = seed;
  SimResult r = RunSim(c);
  ASSERT_TRUE(r.ok) << r.failure;
  ASSERT_GT(r.ops_applied, 0u);
}

// A power loss undid a device's last submits after they had been applied; the device reused their
// counters for new ops. The server answered the first reused counter Conflict but applied the next ones
// (counter last+1), so the renumbered first op landed after later ops of the device. Fixed in the client:
// after Welcome, ops beyond the server's last counter wait until those up to it are answered (probe_upto).
TEST(SimRegression, PowerLossCounterReuseKeepsOrder) { RunSeed("power", 1001); }

// A device caught up at reconnect never pulled, so it never got the receipts that moved while it was away
// (the server sent stored watermarks only with a pull's first page). Fixed in the server: Hello sends the
// stored watermarks of every followed stream.
// Another instance's join and leave of one user drained in one batch: the instance read the store as it
// is now (no member) at the join and forgot that the device had asked for the stream, so a later join
// never followed it. Fixed in the server: a stream leaves a session's denied set only once it is followed.
TEST(SimRegression, JoinDrainedFromAnotherInstanceKeepsTheRequest) { RunSeed("instances-members", 94); }

// A server restored from an earlier copy (issue 19), each seed once failing in the client's rebase:
// - restore 13: an own op answered while an earlier op's ack was lost (its counter above the first
//   unanswered one) was set aside rather than sent again, so Get no longer found it. Fixed: the lost
//   counters are all those above the server's last not in the outbox, and every own op above the base goes
//   back to the outbox (rebase.cc).
// - restore-members 18: a stream the device had left (not followed, no counter of it on the restored
//   server) was not named in the Welcome and kept ops at seqs the server gave to others; kept likewise, a
//   stream the device could not read diverged once the re-sent members ops made its user a member again.
//   Fixed: such streams are rebased from 0 (read_path.cc, sync_session.cc).
// - restore-instances 231 (and default 11044): a Gap reordered after the page or ack that settled the
//   counters it names was taken for a loss, and applied ops went back to pending. Fixed: only a Gap naming
//   less than the server had consumed when its batch left is a loss (Flusher, acked_at_send).
// - restore-instances 287: a retried op applied under its old counter and lost was set aside. Fixed: it is
//   sent again under its outbox entry.
TEST(SimRegression, RestoreRebases) {
  RunSeed("restore", 13);
  RunSeed("restore-members", 18);
  RunSeed("restore-instances", 231);
  RunSeed("restore-instances", 287);
  RunSeed("default", 11044);
}

TEST(SimRegression, ReceiptsMovedWhileAwayArriveOnHello) {
  RunSeed("default", 1020);
  RunSeed("crowd", 1015);
  RunSeed("power-sync", 1016);
}

}  // namespace
}  // namespace outpost::sim
