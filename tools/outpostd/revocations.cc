// Copyright 2026 The Outpost Authors.
#include "revocations.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

#include "log.h"
#include "outpost/membership.h"

namespace outpostd {

outpost::Result<std::unique_ptr<RevocationWatcher>> RevocationWatcher::Start(
    std::shared_ptr<outpost::TokenRegistry> registry, outpost::Server* server) {
  std::vector<outpost::Revocation> none;
  uint64_t generation = 0;
  OUTPOST_RETURN_IF_ERROR(registry->RevokedSince(std::numeric_limits<uint64_t>::max(), &none, &generation));
  return std::unique_ptr<RevocationWatcher>(new RevocationWatcher(std::move(registry), server, generation));
}

RevocationWatcher::RevocationWatcher(std::shared_ptr<outpost::TokenRegistry> registry,
                                     outpost::Server* server, uint64_t generation)
    : registry_(std::move(registry)), server_(server), generation_(generation) {
  thread_ = std::thread([this] { Run(); });
}

RevocationWatcher::~RevocationWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RevocationWatcher::Run() {
  LogBudget failures(1);
  std::vector<outpost::Revocation> revoked;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(kPollMs), [this] { return stop_; })) return;
    }
    // One answer may be partial (the store bounds it): read on until it has caught up.
    for (int round = 0; round < 100; ++round) {
      uint64_t generation = generation_;
      outpost::Status s = registry_->RevokedSince(generation_, &revoked, &generation);
      if (!s.ok()) {
        uint64_t suppressed = 0;
        if (failures.Take(&suppressed)) {
          Log(LogLevel::kError, "user registry: cannot read revocations (retrying): {}", s.ToString());
        }
        break;
      }
      for (const auto& r : revoked) {
        Log(LogLevel::kInfo, "device {} of user {} revoked: ending its connections",
            outpost::QuoteForMessage(r.device), outpost::QuoteForMessage(r.user));
        server_->EndDevice(r.user, r.device,
                           "device " + outpost::QuoteForMessage(r.device) + " of user " +
                               outpost::QuoteForMessage(r.user) + " was revoked");
      }
      // A bounded answer ends at its last revocation; a complete one at the store's generation (which may
      // be the same number: one more read then finds nothing).
      const bool more = !revoked.empty() && generation == revoked.back().generation;
      generation_ = std::max(generation_, generation);
      if (!more) break;
    }
  }
}

}  // namespace outpostd
