// Copyright 2026 The Outpost Authors.
//
// RevocationWatcher: how a running outpostd learns that a device was revoked (or its user removed) by
// `outpostd revoke-device` / `remove-user` in another process, or on another instance of a database
// store: it polls the registry's revocation log (UserStore::RevokedSince) every kPollMs on a thread of
// its own and ends each revoked device's live connections (Server::EndDevice). A poll is one small read
// (the generation number) when nothing changed, so a revoked device is cut off within a poll and a loop
// turn, well within a second, on every instance.
#ifndef OUTPOST_TOOLS_OUTPOSTD_REVOCATIONS_H_
#define OUTPOST_TOOLS_OUTPOSTD_REVOCATIONS_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "outpost/server.h"
#include "outpost/status.h"
#include "outpost/token_registry.h"

namespace outpostd {

class RevocationWatcher {
 public:
  static constexpr int64_t kPollMs = 200;

  // Reads the registry's current generation: revocations before it are the authenticate hook's to refuse
  // (call it before the server accepts connections). Fails when the registry cannot be read.
  static outpost::Result<std::unique_ptr<RevocationWatcher>> Start(
      std::shared_ptr<outpost::TokenRegistry> registry, outpost::Server* server);
  // Stops and joins the thread. `server` must outlive the watcher.
  ~RevocationWatcher();

 private:
  RevocationWatcher(std::shared_ptr<outpost::TokenRegistry> registry, outpost::Server* server,
                    uint64_t generation);
  void Run();

  std::shared_ptr<outpost::TokenRegistry> registry_;
  outpost::Server* server_;
  uint64_t generation_;  // the thread's
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_REVOCATIONS_H_
