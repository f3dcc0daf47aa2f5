// Copyright 2026 The Outpost Authors.
//
// SimDisk: the simulated disk under one store, in the spirit of LevelDB's FaultInjectionTestEnv. It owns a
// private memory store (freed with the disk, so thousands of seeds in one process cost no memory) that
// outlives every handle the engine opens on it, and keeps, for every commit made without sync, what that
// commit overwrote (an undo record). A simulated power loss undoes a random suffix of those unsynced commits,
// never a part of one (storage.h: "a power loss may undo the last commits, never a part of one"); a commit
// made with sync makes every earlier commit durable too, as an fsync does. A process crash loses nothing
// that was committed, so it needs no call here.
//
// A disk can also die at a chosen commit, to crash a process in the middle of its work: from then on no
// commit reaches the store (each fails with IOError, as it never returns in a real crash) and the owner
// drops every frame the process would still send (see Dead()).
//
// A flaky disk (SetFlaky) fails some transactions without crashing anything: a BeginWrite or a Commit
// returns IOError and the store keeps what it held before, as a disk that is briefly full or unavailable.
// The process stays up and must carry on.
//
// Thread safety: the store handles a SimDisk opens may be used from several threads at once (the client's
// commit thread and its sync side); PowerLoss, Background and the setters require that no handle is in use.
#ifndef OUTPOST_TESTS_SIM_SIM_DISK_H_
#define OUTPOST_TESTS_SIM_SIM_DISK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost::sim {

class SimDisk {
 public:
  // `name` is what the store's uri() reports.
  explicit SimDisk(std::string name);
  ~SimDisk();
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // A factory for ClientOptions::open_store / ServerOptions::open_store: the store, wrapped so that its
  // commits are recorded here. The URI passed in is ignored; the first open fixes the spaces.
  std::function<Result<std::unique_ptr<Storage>>(std::string_view, const StorageOptions&)> Opener();

  // Undoes the last `drop` unsynced commits (all of them when `drop` exceeds their count) and forgets the
  // rest as if the OS had written them back. Returns how many were undone.
  Result<size_t> PowerLoss(size_t drop);
  // The OS writes the oldest `n` unsynced commits back to the disk: a later power loss keeps them.
  void Background(size_t n);
  size_t unsynced() const;
  // Commits that reached the store since the disk was made (synced or not).
  uint64_t commits() const;
  // Commits up to this number survive any power loss.
  uint64_t durable_commits() const;

  // The disk dies once `n` more commits have reached the store (0: at the next commit, which fails).
  void DieAfter(uint64_t n);
  // Forgets a DieAfter that has not fired.
  void Disarm();
  bool Dead() const;
  // Back to life after the owner threw away every handle of the dead process.
  void Revive();

  // From now on each BeginWrite and each Commit fails with IOError with probability `p` (0: never), drawn
  // from a generator seeded with `seed`, so that a run replays exactly. A failed commit writes nothing.
  void SetFlaky(double p, uint64_t seed);
  // BeginWrite and Commit calls failed by SetFlaky since the disk was made.
  uint64_t flaky_failures() const;
  // Internal: whether the next BeginWrite or Commit fails (counted).
  bool FlakyFailure();

  // The disk's contents, every space, as an operator's copy of a stopped server's data directory would hold
  // them (what a power loss could undo is left out: the copy is of what is durable). Restore puts such a
  // copy back in place of everything the disk holds, as `outpostd restore` does with a backup; the disk's
  // history of commits goes on (the restore is one synced commit), so later power losses cannot undo it.
  // Both require that no handle is in use and that the store was opened (Opener called) before.
  struct Contents {
    std::vector<std::vector<std::pair<std::string, std::string>>> spaces;  // per SpaceId, in key order
  };
  Result<Contents> Snapshot() const;
  Status Restore(const Contents& contents);

  // Internal: called by the wrapped store.
  struct Undo {
    SpaceId space;
    std::string key;
    std::optional<std::string> before;  // nullopt: the key was absent
  };
  Status Commit(WriteTxn& inner, std::vector<Undo> undo, bool sync);
  const std::string& uri() const { return uri_; }

 private:
  bool FlakyFailureLocked();  // requires mu_

  const std::string uri_;
  std::unique_ptr<Storage> store_;  // the disk's contents
  size_t spaces_ = 0;               // how many spaces the first open fixed
  mutable std::mutex mu_;
  std::vector<std::vector<Undo>> unsynced_;  // oldest first; one entry per unsynced commit
  uint64_t commits_ = 0;
  uint64_t durable_ = 0;
  std::optional<uint64_t> die_at_;  // commits_ value at which the disk dies
  bool dead_ = false;
  double flaky_ = 0;
  std::mt19937_64 flaky_rng_;
  uint64_t flaky_failures_ = 0;
};

}  // namespace outpost::sim

#endif  // OUTPOST_TESTS_SIM_SIM_DISK_H_
