// Copyright 2026 The Outpost Authors.
//
// The migration runner of key-value stores: brings a store from the format it was written in to this
// build's (StoreFormat::current), step by step, in ONE write transaction that writes the new format number
// last. The transaction commits whole or not at all, so a crash or kill -9 at any point leaves a store that
// opens as the old format or the new one, never a mix; a failed step leaves the old one. Long steps report
// progress every MigrationOptions::progress_every records.
//
//   const std::vector<MigrationStep> kSteps = {
//       {.from = 2, .what = "stamp an incarnation", .run = [](WriteTxn& txn, MigrationProgress& p) {...}},
//   };
//   OUTPOST_RETURN_IF_ERROR(MigrateStore(*storage, kMeta, format, uri, kSteps));
#ifndef OUTPOST_STORAGE_MIGRATION_H_
#define OUTPOST_STORAGE_MIGRATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/status.h"
#include "outpost/storage.h"
#include "storage/store_format.h"

namespace outpost {

// What a migration reports: at the start and end of each step, and every `progress_every` records of it.
struct MigrationEvent {
  std::string_view store;  // the URI
  uint32_t from = 0;       // the step takes the store from format `from` to `from + 1`
  std::string_view what;
  uint64_t records = 0;  // records the step has rewritten so far
  enum class Phase : uint8_t { kStart, kProgress, kDone } phase = Phase::kStart;
};

struct MigrationOptions {
  uint64_t progress_every = 100'000;
  // Default (empty): one line on stderr per event ("outpost: migrating STORE from format 2 to 3: WHAT: N
  // records").
  std::function<void(const MigrationEvent&)> progress;
};

// Given to a step: it calls Record for each record it rewrote, which reports progress every so often.
class MigrationProgress {
 public:
  MigrationProgress(const MigrationOptions& options, MigrationEvent event)
      : options_(options), event_(event), next_report_(options.progress_every) {}
  void Record(uint64_t n = 1);
  uint64_t records() const { return event_.records; }
  // Reports the step's start or end (the runner calls it).
  void Report(MigrationEvent::Phase phase);

 private:
  const MigrationOptions& options_;
  MigrationEvent event_;
  uint64_t next_report_;
};

struct MigrationStep {
  uint32_t from = 0;  // upgrades a store of format `from` to `from + 1`
  std::string what;   // one line for the log
  // Rewrites what the format change needs, in `txn` (shared by every step and the stamp: it must not
  // commit). An error stops the migration, and the store stays as it was.
  std::function<Status(WriteTxn& txn, MigrationProgress& progress)> run;
};

// Brings the store to format.current: reads its format (absent: format.unstamped; a new store gets
// format.create and the current number, in one transaction), and when it is older
// runs the steps from it up, in order, in one write transaction, writes format.current to the meta space
// last, and commits. Nothing to do (no write transaction) when the store is current. A newer format:
// NewerFormatError. Older than format.oldest, or a step missing: FailedPrecondition, nothing written.
Status MigrateStore(Storage& storage, SpaceId meta, const StoreFormat& format, std::string_view uri,
                    const std::vector<MigrationStep>& steps, const MigrationOptions& options = {});

}  // namespace outpost

#endif  // OUTPOST_STORAGE_MIGRATION_H_
