// Copyright 2026 The Outpost Authors.
#include "storage/migration.h"

#include <cstdio>

namespace outpost {

void MigrationProgress::Record(uint64_t n) {
  event_.records += n;
  if (options_.progress_every > 0 && event_.records >= next_report_) {
    Report(MigrationEvent::Phase::kProgress);
    next_report_ = event_.records + options_.progress_every;
  }
}

void MigrationProgress::Report(MigrationEvent::Phase phase) {
  event_.phase = phase;
  if (options_.progress) {
    options_.progress(event_);
    return;
  }
  const char* what = phase == MigrationEvent::Phase::kStart  ? "starting"
                     : phase == MigrationEvent::Phase::kDone ? "done"
                                                             : "in progress";
  std::fprintf(stderr, "outpost: migrating %.*s from format %u to %u (%.*s): %s, %llu records\n",
               static_cast<int>(event_.store.size()), event_.store.data(), event_.from, event_.from + 1,
               static_cast<int>(event_.what.size()), event_.what.data(), what,
               static_cast<unsigned long long>(event_.records));
}

Status MigrateStore(Storage& storage, SpaceId meta, const StoreFormat& format, std::string_view uri,
                    const std::vector<MigrationStep>& steps, const MigrationOptions& options) {
  {
    // The common case, a current store, needs no write transaction.
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage.BeginRead());
    OUTPOST_ASSIGN_OR_RETURN(uint64_t found, ReadStoreFormat(*txn, meta, format, uri));
    if (found == format.current) return Status::OK();
    if (found > format.current) return NewerFormatError(format, uri, found);
  }
  OUTPOST_ASSIGN_OR_RETURN(auto txn, storage.BeginWrite());
  OUTPOST_ASSIGN_OR_RETURN(uint64_t found, ReadStoreFormat(*txn, meta, format, uri));
  if (found == 0) {
    if (!format.unstamped) return Status::Corruption(format.what + " " + std::string(uri) + " has no format");
    OUTPOST_ASSIGN_OR_RETURN(found, format.unstamped(*txn, meta));
    if (found == 0) {  // a new store
      if (format.create) OUTPOST_RETURN_IF_ERROR(format.create(*txn));
      found = format.current;
    }
  }
  if (found == format.current) {  // a new store, or one from before formats were kept that reads as current
    OUTPOST_RETURN_IF_ERROR(txn->Put(meta, format.key, std::to_string(format.current)));
    return txn->Commit();
  }
  if (found > format.current) return NewerFormatError(format, uri, found);
  if (found < format.oldest) {
    return Status::FailedPrecondition(
        format.what + " " + std::string(uri) + " is format " + std::to_string(found) +
        ", older than this build upgrades (formats " + std::to_string(format.oldest) + " to " +
        std::to_string(format.current) + "), and was left untouched: " + format.older_hint);
  }
  for (uint64_t from = found; from < format.current; ++from) {
    const MigrationStep* step = nullptr;
    for (const MigrationStep& s : steps) {
      if (s.from == from) step = &s;
    }
    if (step == nullptr || !step->run) {
      return Status::FailedPrecondition(
          format.what + " " + std::string(uri) + " is format " + std::to_string(found) +
          ", and this build has no upgrade from format " + std::to_string(from) + ": it was left untouched");
    }
    MigrationProgress progress(
        options, MigrationEvent{.store = uri, .from = static_cast<uint32_t>(from), .what = step->what});
    progress.Report(MigrationEvent::Phase::kStart);
    OUTPOST_RETURN_IF_ERROR(step->run(*txn, progress));
    progress.Report(MigrationEvent::Phase::kDone);
  }
  // Last: the new number. Until the commit the store reads as the old format everywhere.
  OUTPOST_RETURN_IF_ERROR(txn->Put(meta, format.key, std::to_string(format.current)));
  return txn->Commit();
}

}  // namespace outpost
