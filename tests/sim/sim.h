// Copyright 2026 The Outpost Authors.
//
// Deterministic simulation: many devices (several per user) and a server on one thread, a manual clock, a
// faulty in-process network (drop, duplicate, reorder, delay, disconnects, partitions, lost acks), crashes
// and restarts of devices and of the server, between steps and in the middle of one (at a chosen commit),
// power losses that undo the commits a store had not synced and a server store that fails transactions
// (sim_disk.h), with or without stream membership, with one server or several instances on one shared
// store that devices fail over between. One seed reproduces one run exactly. Every state change
// of every own op is recorded (change callbacks) and checked against the allowed transitions; after the
// run and a final quiet, connected phase every invariant of DESIGN.md is checked; a failure names the seed,
// the profile and the last events.
#ifndef OUTPOST_TESTS_SIM_SIM_H_
#define OUTPOST_TESTS_SIM_SIM_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/transport.h"

namespace outpost::sim {

struct SimConfig {
  uint64_t seed = 1;
  std::string profile = "default";  // named in failure messages, so that tools/sim can replay the run
  int devices = 6;
  int users = 3;  // device i belongs to user u(i % users): several devices per user
  int streams = 2;
  int ops_per_device = 40;
  double submit = 0.12;  // per device per tick: the user submits 1..3 ops
  FaultOptions faults{
      .drop = 0.05, .duplicate = 0.03, .delay = 0.1, .delay_ms_max = 400, .disconnect = 0.003};
  double ack_loss = 0.02;                // frames lost on their way to the device only (acks, batches)
  double partition = 0.002;              // per tick: a random set of devices is cut off from the server
  int64_t partition_ms_max = 4000;       // ... for 1 .. this long (no connect, every frame lost)
  double device_crash = 0.002;           // per device per tick: kill -9 between steps
  double device_crash_in_step = 0.002;   // per device per tick: kill -9 at a random commit of a step
  double device_power_loss = 0;          // per device per tick: power loss (unsynced commits undone)
  bool device_store_sync = true;         // false: devices run without sync, so power losses undo commits
  double server_crash = 0.0005;          // per tick, between steps
  double server_crash_in_step = 0.0005;  // per tick, at the group commit or just after it
  // Server instances on one shared ServerStore (ServerOptions::server_store), each with a listener of its
  // own; devices dial the list of them (inproc:a,inproc:b: each starts at another one) and fail over. An
  // instance crash kills one instance (its Server) and the store stays up for the others; a server crash
  // (above) is the whole store's: every instance dies with a power loss, as with one server. After the
  // quiet phase a live probe checks that devices on one instance hear of ops applied on another (the
  // store's wake-ups) without reconnecting. 1: one server, as always.
  int instances = 1;
  // The shared store says it has many writers (ServerStore::many_writers, as PostgreSQL does): the core
  // then locks each group up front (Prepare), answers a push sent with its own Hello with Busy, re-checks a
  // Welcome's follows in its snapshot, and tells every instance "lost" after a commit that failed. The
  // key-value store underneath still takes one writer at a time.
  bool many_writers = false;
  double instance_crash = 0;          // per tick: a running instance is killed between steps
  double instance_crash_in_step = 0;  // per tick: the instance stepping dies at its group commit or after it
  int64_t instance_down_ms_max = 3000;  // a killed instance (or the whole store) is back after 1..this ms
  double reject = 0.02;                 // share of ops the server refuses permanently
  double discard = 0.2;                 // share of refused ops the user discards (the rest are retried)
  double mark_read = 0.01;              // per device per tick: the user reads a stream up to its cursor
  uint32_t attempts_max = 0;            // 0: unlimited; small values exercise "exhausted" and skips
  // ServerOptions::membership (outpost/membership.h): streams are created by a device's members op, member
  // lists change by later ones, devices discover streams through their user's feed, and a non-member's
  // ops are refused ("forbidden: ..."). Every member list names "audit", the auditor's user.
  bool membership = false;
  double members_share = 0.05;  // with membership: share of submitted ops that set a stream's members
  // Chance that a server store transaction fails (BeginWrite or Commit, SimDisk::SetFlaky) without a crash:
  // the server answers Busy and stays up.
  double server_store_flaky = 0;
  // Where device stores live: empty for simulated disks in memory (sim_disk.h), else the name of a durable
  // backend in tests/conformance/storage_backends.h ("Lmdb", "Sqlite", "Rocksdb"), opened without fsync;
  // those runs have no power losses and no crashes in the middle of a step.
  std::string device_backend;
  // Attachments (media): share of good ops submitted with a small file (1 B .. 3 KiB, sent in 1 KiB chunks
  // through the in-process media transport over one memory BlobStore that the servers check pushes
  // against), and the chance that a media request fails before it is made or loses its answer after.
  double attachments = 0;
  double media_faults = 0;
  // Server restored from an earlier copy (issue 19, docs/lifecycle.md): per tick, the chance that the
  // operator copies the server's store (`snapshot`: its durable contents, as `outpostd backup` would) and
  // the chance that the server is stopped (every instance), the latest copy put back in place of its
  // store, the store given a new incarnation (NewIncarnation, as `outpostd restore` does) and the server
  // started again (`server_restore`, when a copy exists). Devices then rebase: the checks allow what the
  // loss rule allows (an own op sent -> pending -> sent again at another seq, cursors and receipts
  // moving down once per restore, ops of others lost for good and counted in ClientStats::ops_lost).
  double snapshot = 0;
  double server_restore = 0;
  int quiet_ticks_max = 20000;
};

// The settings a profile name stands for (sim_test.cc runs them; tools/sim --profile picks one).
// Unknown names give the default profile with `profile` set to the unknown name; KnownProfile says.
SimConfig Profile(std::string_view name);
bool KnownProfile(std::string_view name);
std::vector<std::string> ProfileNames();

struct SimResult {
  bool ok = true;
  std::string failure;  // what broke, with the seed, the profile and a trace of the last events
  uint64_t ops_submitted = 0, ops_applied = 0, ops_failed = 0, ops_lost_to_power = 0;
  uint64_t device_restarts = 0, server_restarts = 0, power_losses = 0, partitions = 0;
  uint64_t ops_forbidden = 0;   // of ops_failed: refused for membership (or forged feed entries)
  uint64_t member_changes = 0;  // members ops applied
  uint64_t store_failures = 0;  // server store transactions failed by a flaky disk
  // Several instances: instance crashes (the store stayed up), Notify frames and receipt relays that an
  // instance sent for what another one committed (wake-ups through the store), and devices that reached an
  // instance other than the first of their list (failovers).
  uint64_t instance_crashes = 0, cross_notifies = 0, cross_relays = 0, failovers = 0;
  uint64_t attachments = 0;  // ops applied with an attachment (each checked against its blob's bytes)
  // Restores of the server (SimConfig::server_restore); over every device and all its restarts: rebases
  // done, own ops sent again after one, ops set aside; and over every device at the end, ops lost for good
  // (each checked to be one that no device could send again: a feed entry the server made, an op refused
  // or discarded when sent again, or one of a stream the device's user is no member of).
  uint64_t restores = 0, rebases = 0, ops_requeued = 0, ops_set_aside = 0, ops_lost = 0;
  uint64_t ticks = 0;
  std::string trace;  // every event of the run, when SimOptions::full_trace
};

struct SimOptions {
  bool full_trace = false;  // keep every event (tools/sim --seed N prints it) rather than the last ones
};

SimResult RunSim(const SimConfig& config, const SimOptions& options = {});

}  // namespace outpost::sim

#endif  // OUTPOST_TESTS_SIM_SIM_H_
