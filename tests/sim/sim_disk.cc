// Copyright 2026 The Outpost Authors.
#include "sim/sim_disk.h"

#include <algorithm>
#include <set>
#include <utility>

namespace outpost::sim {

namespace {

// A write txn that records, before the first write of each key, what the key held: the undo record of its
// commit. Reads and cursors go straight to the store's txn.
class SimDiskWriteTxn final : public WriteTxn {
 public:
  SimDiskWriteTxn(SimDisk* disk, std::unique_ptr<WriteTxn> inner, bool sync)
      : disk_(disk), inner_(std::move(inner)), sync_(sync) {}

  Status Get(SpaceId space, std::string_view key, std::string* value) override {
    return inner_->Get(space, key, value);
  }
  std::unique_ptr<Cursor> NewCursor(SpaceId space) override { return inner_->NewCursor(space); }
  Status Put(SpaceId space, std::string_view key, std::string_view value) override {
    Status st = Remember(space, key);
    return st.ok() ? inner_->Put(space, key, value) : st;
  }
  // An Insert that finds the key changes nothing, and the undo record it leaves restores what is there.
  Status Insert(SpaceId space, std::string_view key, std::string_view value) override {
    Status st = Remember(space, key);
    return st.ok() ? inner_->Insert(space, key, value) : st;
  }
  Status Delete(SpaceId space, std::string_view key) override {
    Status st = Remember(space, key);
    return st.ok() ? inner_->Delete(space, key) : st;
  }
  Status Commit() override {
    if (finished_) return Status::FailedPrecondition("transaction already finished");
    finished_ = true;
    return disk_->Commit(*inner_, std::move(undo_), sync_);
  }

 private:
  Status Remember(SpaceId space, std::string_view key) {
    if (finished_) return Status::FailedPrecondition("transaction already finished");
    if (!touched_.emplace(space, std::string(key)).second) return Status::OK();
    std::string before;
    Status st = inner_->Get(space, key, &before);
    if (st.IsNotFound()) {
      undo_.push_back({space, std::string(key), std::nullopt});
      return Status::OK();
    }
    if (!st.ok()) return st;  // a bad key or space: the write reports it the same way
    undo_.push_back({space, std::string(key), std::move(before)});
    return Status::OK();
  }

  SimDisk* disk_;
  std::unique_ptr<WriteTxn> inner_;
  const bool sync_;
  bool finished_ = false;
  std::set<std::pair<SpaceId, std::string>> touched_;
  std::vector<SimDisk::Undo> undo_;
};

class SimDiskStorage final : public Storage {
 public:
  SimDiskStorage(SimDisk* disk, Storage* inner, bool sync) : disk_(disk), inner_(inner), sync_(sync) {}
  Result<std::unique_ptr<ReadTxn>> BeginRead() override { return inner_->BeginRead(); }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    if (disk_->FlakyFailure()) return Status::IOError("simulated flaky disk: cannot begin a write");
    OUTPOST_ASSIGN_OR_RETURN(auto txn, inner_->BeginWrite());
    return std::unique_ptr<WriteTxn>(std::make_unique<SimDiskWriteTxn>(disk_, std::move(txn), sync_));
  }
  const std::string& uri() const override { return disk_->uri(); }

 private:
  SimDisk* disk_;
  Storage* inner_;
  const bool sync_;
};

}  // namespace

SimDisk::SimDisk(std::string name) : uri_("simdisk:" + std::move(name)) {}
SimDisk::~SimDisk() = default;

std::function<Result<std::unique_ptr<Storage>>(std::string_view, const StorageOptions&)> SimDisk::Opener() {
  return [this](std::string_view, const StorageOptions& options) -> Result<std::unique_ptr<Storage>> {
    std::lock_guard<std::mutex> lock(mu_);
    if (store_ == nullptr) {
      OUTPOST_ASSIGN_OR_RETURN(store_, OpenStorage("memory:", options));
      spaces_ = options.spaces.size();
    }
    return std::unique_ptr<Storage>(std::make_unique<SimDiskStorage>(this, store_.get(), options.sync));
  };
}

Status SimDisk::Commit(WriteTxn& inner, std::vector<Undo> undo, bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dead_ && die_at_ && commits_ >= *die_at_) dead_ = true;
  if (dead_) return Status::IOError("simulated crash: the disk is gone");
  if (FlakyFailureLocked()) return Status::IOError("simulated flaky disk: commit failed, nothing written");
  Status st = inner.Commit();
  if (!st.ok()) return st;
  ++commits_;
  if (sync) {
    unsynced_.clear();
    durable_ = commits_;
  } else {
    unsynced_.push_back(std::move(undo));
  }
  return Status::OK();
}

Result<SimDisk::Contents> SimDisk::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (store_ == nullptr) return Status::FailedPrecondition("snapshot of a disk never opened");
  // The unsynced commits are not on the disk yet: a copy holds the contents as they were before them.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  Contents out;
  out.spaces.resize(spaces_);
  for (size_t space = 0; space < spaces_; ++space) {
    auto cur = txn->NewCursor(static_cast<SpaceId>(space));
    for (cur->SeekToFirst(); cur->Valid(); cur->Next())
      out.spaces[space].emplace_back(std::string(cur->key()), std::string(cur->value()));
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  for (auto commit = unsynced_.rbegin(); commit != unsynced_.rend(); ++commit) {
    for (auto it = commit->rbegin(); it != commit->rend(); ++it) {
      auto& space = out.spaces[it->space];
      auto at = std::lower_bound(space.begin(), space.end(), it->key,
                                 [](const auto& kv, const std::string& key) { return kv.first < key; });
      const bool there = at != space.end() && at->first == it->key;
      if (it->before && there) {
        at->second = *it->before;
      } else if (it->before) {
        space.insert(at, {it->key, *it->before});
      } else if (there) {
        space.erase(at);
      }
    }
  }
  return out;
}

Status SimDisk::Restore(const Contents& contents) {
  std::lock_guard<std::mutex> lock(mu_);
  if (store_ == nullptr || contents.spaces.size() != spaces_)
    return Status::FailedPrecondition("restore of a copy that is not of this disk");
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  for (size_t space = 0; space < spaces_; ++space) {
    const SpaceId id = static_cast<SpaceId>(space);
    std::vector<std::string> keys;
    {
      auto cur = txn->NewCursor(id);
      for (cur->SeekToFirst(); cur->Valid(); cur->Next()) keys.emplace_back(cur->key());
      OUTPOST_RETURN_IF_ERROR(cur->status());
    }
    for (const auto& key : keys) OUTPOST_RETURN_IF_ERROR(txn->Delete(id, key));
    for (const auto& [key, value] : contents.spaces[space]) OUTPOST_RETURN_IF_ERROR(txn->Put(id, key, value));
  }
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  ++commits_;
  unsynced_.clear();
  durable_ = commits_;
  die_at_.reset();
  dead_ = false;
  return Status::OK();
}

Result<size_t> SimDisk::PowerLoss(size_t drop) {
  std::lock_guard<std::mutex> lock(mu_);
  drop = std::min(drop, unsynced_.size());
  if (drop > 0) {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
    for (size_t i = 0; i < drop; ++i) {
      const std::vector<Undo>& commit = unsynced_[unsynced_.size() - 1 - i];
      for (auto it = commit.rbegin(); it != commit.rend(); ++it) {
        OUTPOST_RETURN_IF_ERROR(it->before ? txn->Put(it->space, it->key, *it->before)
                                           : txn->Delete(it->space, it->key));
      }
    }
    OUTPOST_RETURN_IF_ERROR(txn->Commit());
  }
  commits_ -= drop;
  unsynced_.clear();
  durable_ = commits_;
  die_at_.reset();
  return drop;
}

void SimDisk::Background(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  n = std::min(n, unsynced_.size());
  unsynced_.erase(unsynced_.begin(), unsynced_.begin() + static_cast<std::ptrdiff_t>(n));
  durable_ = commits_ - unsynced_.size();
}

size_t SimDisk::unsynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unsynced_.size();
}

uint64_t SimDisk::commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commits_;
}

uint64_t SimDisk::durable_commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_;
}

void SimDisk::DieAfter(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  die_at_ = commits_ + n;
}

void SimDisk::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  die_at_.reset();
}

bool SimDisk::Dead() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dead_;
}

void SimDisk::Revive() {
  std::lock_guard<std::mutex> lock(mu_);
  dead_ = false;
  die_at_.reset();
}

void SimDisk::SetFlaky(double p, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  flaky_ = p;
  flaky_rng_.seed(seed);
}

uint64_t SimDisk::flaky_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flaky_failures_;
}

bool SimDisk::FlakyFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  return FlakyFailureLocked();
}

bool SimDisk::FlakyFailureLocked() {
  if (flaky_ <= 0 || std::uniform_real_distribution<double>(0, 1)(flaky_rng_) >= flaky_) return false;
  ++flaky_failures_;
  return true;
}

}  // namespace outpost::sim
