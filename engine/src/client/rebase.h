// Copyright 2026 The Outpost Authors.
//
// Rebase: bringing one stream's copy on the device back in line with a server that lost part of what it had
// (restored from an earlier copy; docs/lifecycle.md). The Welcome tells the device, per stream, the server's
// last counter of this device (L), the stream's high seq, and, after a restore the device has not seen, the
// base: how much of the stream the restored copy held. The device then trusts its copy of the stream only
// up to b = the lowest of: the base; the server's high seq when it is below the cursor (the server lost ops
// and took none since); and the seq before the first of its own ops that the server no longer counts
// (counter > L: a copy put back by hand, with traffic since, is caught by the device's own ops). Above b:
//   - own ops the server lost (counter > L) go back to the outbox under their op ids and counters, pending,
//     where they were written (their local seq): the server applies them as new, exactly once;
//   - every other op leaves the view and is kept aside as lost (the `lost` space) until a pull brings it
//     back (its author's device re-sent it, or the server still had it): ClientStats::ops_lost counts those
//     still missing;
//   - the cursor, the announced high seq, the read position and stored receipts come down to b; the Merger
//     pulls from there.
// Counters the server lost that no op of this device can fill (discarded ops, skips) are sent as skips, so
// the stream's counters never hold a hole (a hole would leave every later op waiting on a Gap for ever).
#ifndef OUTPOST_SRC_CLIENT_REBASE_H_
#define OUTPOST_SRC_CLIENT_REBASE_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "client/device_store.h"
#include "outpost/ids.h"
#include "outpost/storage.h"

namespace outpost {

struct RebaseInput {
  std::string stream;
  uint64_t server_counter = 0;  // L: the server's last counter of this device on the stream
  uint64_t server_high = 0;     // the stream's high seq (0: unknown, or the device may not read it)
  uint64_t base = std::numeric_limits<uint64_t>::max();  // the restore's base; max: no restore named
};

struct RebaseOutcome {
  bool changed = false;
  uint64_t cursor = 0;    // the stream's cursor afterwards
  uint64_t requeued = 0;  // own ops back in the outbox
  uint64_t lost = 0;      // ops moved aside as lost
  uint64_t skips = 0;     // counters sent as skips
};

// Rebases `in.stream` inside `txn` (nothing when the device's copy agrees with the server). `user` and
// `device` say which ops are this device's own; `ids` makes the ids of gap-filling skips.
// `local_seq` is the store's last local seq: an own op without one (merged from a pull) takes the next.
Status RebaseStream(WriteTxn* txn, const RebaseInput& in, OpIdGenerator* ids, uint64_t* local_seq,
                    RebaseOutcome* out, std::vector<Change>* changes, Tally* tally);

// Rebases each of `inputs` in one transaction (and records `incarnation` when given), then brings the sync
// side's view of those streams (cursor, high seq, what to send) and the counters in line.
struct SyncContext;
Status ApplyRebase(SyncContext& ctx, const std::vector<RebaseInput>& inputs, const std::string* incarnation);

// A pulled op whose id is in the lost space came back: it leaves it (tally->lost goes down).
Status RecoverLost(WriteTxn* txn, const OpId& id, Tally* tally);

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_REBASE_H_
