// Copyright 2026 The Outpost Authors.
//
// SyncContext: what the sync side's parts share. The sync side is one round at a time (Step, under `mu`):
//   SyncSession  (sync_session.cc)   connection, Hello/Welcome, reconnect backoff, frame dispatch;
//   Flusher  (flusher.cc)   outbox → server: batches in flight, acks, timeouts, renumbering;
//   Merger   (merger.cc)    server → view: pulls and pages;
//   Receipts (receipts.cc)  watermarks out and in.
// Each part owns its own fields and its slice of every stream's StreamSync (FlushState, PullState,
// ReceiptState); the stream's cursor and the server's high seq are read by all and written by the Merger
// and the Flusher (own acks advance the cursor).
#ifndef OUTPOST_SRC_CLIENT_SYNC_CONTEXT_H_
#define OUTPOST_SRC_CLIENT_SYNC_CONTEXT_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "base/mutex.h"
#include "client/device_store.h"
#include "outpost/client.h"

namespace outpost {

class SyncSession;
class Flusher;
class Merger;
class Receipts;

// Why sending of a stream starts again from an earlier counter (SyncContext::RestartAfter): the ops sent
// again are counted under it (ClientStats::retries_*).
enum class ResendReason : uint8_t { kNone, kTimeout, kBusy, kDisconnect, kGap, kConflict, kOther };

struct FlushState {
  uint64_t sent_upto = 0;  // counters <= this were sent in this epoch: the next batch starts after it
  uint64_t epoch = 0;      // bumped when sending must restart from an earlier counter
  uint32_t inflight = 0;   // batches in flight
  bool renumber = false;   // a Conflict said the server used our counters: renumber after renumber_after
  uint64_t renumber_after = 0;
  // The lowest counter a Conflict named: the outbox entries from it on move after renumber_after; those
  // before it keep their counters, so that an op the server judged under its counter (a rejection a power
  // loss undid here) hears its verdict again rather than being judged afresh, and order is kept.
  uint64_t renumber_from = UINT64_MAX;
  // The server's last counter for this stream as of Welcome. Ops up to it may collide with the ops of an
  // earlier copy of this store (restored from a backup, or rolled back by a power loss): none beyond it is
  // sent while one up to it awaits its answer, so a Conflict renumbers them before any later op applies.
  uint64_t probe_upto = 0;
  // Counters <= this were sent before without a final answer: sending one of them again is a retry, for
  // `resend_reason` (the latest restart's). 0 once the sending passed it.
  uint64_t resend_upto = 0;
  ResendReason resend_reason = ResendReason::kNone;
  // The highest counter the server said it consumed (applied, duplicate, skipped, rejected), from the store
  // at open (every counter below the outbox's first) and from acks since. The server never forgets one
  // unless it lost state: a Welcome or a Gap naming a lower last counter triggers the repair
  // (client/rebase.h).
  uint64_t acked_top = 0;
};

struct PullState {
  bool outstanding = false;
  int64_t sent_at = 0;
  uint64_t high_at = 0;  // server_high when the outstanding pull was sent
};

struct ReceiptState {
  bool dirty = false;  // watermarks to report
  // Watermarks sent and not yet echoed back by the server (its acknowledgement): resent after a Busy.
  uint64_t sent_delivered = 0;
  uint64_t sent_read = 0;
};

struct StreamSync {
  bool followed = false;
  uint64_t cursor = 0;       // highest seq merged (as stored)
  uint64_t server_high = 0;  // highest seq the server announced
  FlushState flush;
  PullState pull;
  ReceiptState receipts;
};

struct SyncContext {
  SyncContext(const ClientOptions& options, Env* e, DeviceStore* s, std::string u, std::string d)
      : opt(options), env(e), store(s), user(std::move(u)), device(std::move(d)) {}

  StreamSync& Of(std::string_view stream) OUTPOST_REQUIRES(mu) {
    auto it = streams.find(stream);
    if (it == streams.end()) it = streams.emplace(std::string(stream), StreamSync()).first;
    return it->second;
  }
  // Sending of `stream` starts again after `counter`: the one way an outbox is sent again (a timeout, a Gap,
  // a Retry answer, an ack that left ops unanswered, a renumbering, a new connection).
  void RestartAfter(const std::string& stream, uint64_t counter, ResendReason reason) OUTPOST_REQUIRES(mu) {
    FlushState& f = Of(stream).flush;
    if (reason != ResendReason::kNone && f.sent_upto > counter) {
      f.resend_upto = std::max(f.resend_upto, f.sent_upto);
      f.resend_reason = reason;
    }
    f.sent_upto = std::min(f.sent_upto, counter);
    ++f.epoch;
    if (store->outbox_depth() > 0) dirty.insert(stream);
  }
  // A jittered (full jitter) exponential backoff after `failures` failures, at most cap_ms.
  int64_t Backoff(uint32_t failures, int64_t cap_ms) const {
    int64_t ceiling = cap_ms;
    if (failures < 40) ceiling = std::min<int64_t>(cap_ms, opt.backoff_base_ms << std::min(failures, 30u));
    return static_cast<int64_t>(env->Uniform(static_cast<uint64_t>(ceiling) + 1));
  }
  template <typename F>
  void Count(F&& f) OUTPOST_EXCLUDES(stats_mu) {
    MutexLock lock(&stats_mu);
    f(stats);
  }

  const ClientOptions& opt;
  Env* const env;
  DeviceStore* const store;
  const std::string user, device;

  // The sync side: one round at a time, and the API calls that change an op (their events then queue in
  // commit order with the sync side's).
  Mutex mu;
  std::map<std::string, StreamSync, std::less<>> streams OUTPOST_GUARDED_BY(mu);
  std::set<std::string> dirty OUTPOST_GUARDED_BY(mu);  // streams that may have something to send
  // The upload endpoint the server announced in its last Welcome (empty: none), and who to tell when it
  // changes (the Uploader; called under `mu`).
  std::string media_url OUTPOST_GUARDED_BY(mu);
  std::function<void()> media_url_changed;
  // The server incarnation this device last saw (the store's meta `incarnation`; empty: none yet), sent in
  // the Hello so that the server can say what a restore since then took (client/rebase.h).
  std::string incarnation OUTPOST_GUARDED_BY(mu);

  // The parts, set once by Client::Impl.
  SyncSession* session = nullptr;
  Flusher* flusher = nullptr;
  Merger* merger = nullptr;
  Receipts* receipts = nullptr;
  // Where connection events go (SyncSession), in order with the change events.
  Observers* observers = nullptr;

  // Counters (the gauges are the DeviceStore's). Stats() reads them without `mu`.
  Mutex stats_mu;
  ClientStats stats OUTPOST_GUARDED_BY(stats_mu);
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_SYNC_CONTEXT_H_
