// Copyright 2026 The Outpost Authors.
//
// Deterministic simulation: devices and a server on one thread, a manual clock, a faulty in-process
// network, crashes and restarts of devices and of the server. One seed reproduces one run exactly.
// After a final quiet, connected phase every invariant of docs/design.md is checked.
#ifndef OUTPOST_TESTS_SIM_SIM_H_
#define OUTPOST_TESTS_SIM_SIM_H_

#include <cstdint>
#include <string>

#include "outpost/transport.h"

namespace outpost::sim {

struct SimConfig {
  uint64_t seed = 1;
  int devices = 3;  // devices 0 and 1 belong to user u0, the rest to their own users
  int streams = 2;
  int ops_per_device = 200;
  FaultOptions faults{
      .drop = 0.05, .duplicate = 0.03, .delay = 0.1, .delay_ms_max = 400, .disconnect = 0.003};
  double device_crash = 0.002;   // per device per tick
  double server_crash = 0.0005;  // per tick
  double reject = 0.02;          // share of ops the server refuses permanently
  double discard = 0.2;          // share of failed ops the user discards (the rest are retried)
  uint32_t attempts_max = 0;     // 0: unlimited; small values exercise "exhausted" and skips
  // Where device stores live: empty for memory, else the name of a durable backend in
  // tests/conformance/storage_backends.h ("Lmdb", "Sqlite", "Rocksdb"), opened without fsync.
  std::string device_backend;
  int quiet_ticks_max = 20000;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what broke, with the seed and a trace of the last events
  uint64_t ops_submitted = 0, ops_applied = 0, ops_failed = 0, device_restarts = 0, server_restarts = 0;
  uint64_t ticks = 0;
};

SimResult RunSim(const SimConfig& config);

}  // namespace outpost::sim

#endif  // OUTPOST_TESTS_SIM_SIM_H_
