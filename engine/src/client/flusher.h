// Copyright 2026 The Outpost Authors.
//
// Flusher: outbox → server. Per stream, ops go out in device_counter order, pipelined (up to
// batches_inflight_max batches in flight over all streams). The server applies only counter last+1, so:
//  - a lost or reordered batch is answered "Gap": sending restarts after the server's last counter;
//  - a batch with no answer in ack_timeout_ms is resent (idempotent by op id) after a jittered backoff;
//  - "Conflict" (our counters were used by another copy of this store) renumbers the stream's outbox from
//    the conflicting op on, once nothing of it is in flight.
// Every restart goes through SyncContext::RestartAfter. Answers that arrive together are applied in one
// transaction with the outbox entries they settle.
#ifndef OUTPOST_SRC_CLIENT_FLUSHER_H_
#define OUTPOST_SRC_CLIENT_FLUSHER_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "client/sync_context.h"
#include "codec.h"

namespace outpost {

class Flusher {
 public:
  explicit Flusher(SyncContext& ctx) : ctx_(ctx) {}

  // One round: batches without an answer in time are given up on (and resent), Conflicts renumber, then
  // each dirty stream sends what it can.
  void CheckTimeouts(int64_t now);
  void Renumber();
  void Flush(int64_t now);
  // Settles what a run of PushAcks that arrived together answer, in one write transaction.
  void OnPushAcks(const std::vector<const wire::PushAck*>& acks, int64_t now);
  // An op settled or changed by another path (a pulled page, Retry, Discard) while it may be in flight: its
  // record kept with the batch is stale, and its ack reads the store instead.
  void Forget(const std::string& stream, const OpId& id);
  // The server could not make a group durable: every batch in flight times out now (and backs off).
  void OnBusy(int64_t now);
  void OnDisconnected();
  bool idle() const;  // nothing in flight

 private:
  struct Inflight {
    std::string stream;
    uint64_t epoch = 0;
    int64_t sent_at = 0;
    uint64_t first_counter = 0;
    std::vector<OpId> ids;
    // The records of the batch's ops as read to send them (an empty view_key for a skip, or once stale): an
    // ack settles them without reading them again.
    std::vector<StoredOp> records;
    bool busy = false;  // the server answered Busy meanwhile: given up on at the next CheckTimeouts
    // The stream's acked_top when the batch was sent: the server had consumed every counter up to it, so
    // a Gap for this batch naming a lower last counter means the server lost them (client/rebase.h).
    uint64_t acked_at_send = 0;
  };
  struct AckEffects;
  struct Batch;

  // Builds and sends one batch for `stream`; false when nothing more can be sent for it now.
  bool SendBatch(const std::string& stream, int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  // Reads the next batch of `stream` from its outbox (ops to send, and ops to give up on).
  Status ReadBatch(const std::string& stream, int64_t now, Batch* batch) OUTPOST_REQUIRES(ctx_.mu);
  // Fails ops the batch gave up on, with their reasons; their counters become skips.
  void Release(const std::string& stream, const Batch& batch) OUTPOST_REQUIRES(ctx_.mu);
  // InvalidArgument saying which limit the server announced (Welcome) `op` exceeds; Ok when none.
  Status OverServerLimits(const OpInfo& op) const OUTPOST_REQUIRES(ctx_.mu);
  // Whether an op of `stream` up to its probe_upto is in flight or in the batch being built (which starts
  // at `batch_first`, 0 when empty): later ops wait for its answer.
  bool ProbeUnanswered(const std::string& stream, uint64_t batch_first) OUTPOST_REQUIRES(ctx_.mu);
  Status ApplyAck(WriteTxn* txn, const wire::PushAck& ack, int64_t now, AckEffects* fx)
      OUTPOST_REQUIRES(ctx_.mu);
  void FinishAck(AckEffects& fx, bool committed) OUTPOST_REQUIRES(ctx_.mu);
  void ResendUnanswered(const AckEffects& fx) OUTPOST_REQUIRES(ctx_.mu);

  SyncContext& ctx_;
  std::map<uint64_t, Inflight> inflight_ OUTPOST_GUARDED_BY(ctx_.mu);
  uint64_t next_batch_id_ OUTPOST_GUARDED_BY(ctx_.mu) = 1;
  // The Push being built, kept between batches (cleared, not freed): a fresh builder per batch grew to the
  // frame's size by doubling, each step a new allocation.
  flatbuffers::FlatBufferBuilder push_builder_ OUTPOST_GUARDED_BY(ctx_.mu){16 << 10};
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_FLUSHER_H_
