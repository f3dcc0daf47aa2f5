// Copyright 2026 The Outpost Authors.
//
// Merger: server → view. A followed stream is pulled from its cursor in pages; each page is merged in one
// transaction with the cursor: others' ops are inserted at their seq, this device's own unsent ops with the
// same op id settle at their seq. Ops at or below the cursor are skipped and a page that starts after the
// cursor is ignored (stale or reordered), so nothing is merged twice or skipped, crash or not. Every pull
// goes out through RequestPull. A Notify that carries the ops that made the new head (live ops, when few)
// is merged the same way with no pull, if it starts at or before the cursor; otherwise its head is pulled.
#ifndef OUTPOST_SRC_CLIENT_MERGER_H_
#define OUTPOST_SRC_CLIENT_MERGER_H_

#include <set>
#include <string>
#include <string_view>

#include "client/sync_context.h"
#include "codec.h"

namespace outpost {

class Merger {
 public:
  explicit Merger(SyncContext& ctx) : ctx_(ctx) {}

  // Asks for the page of `stream` after `after_seq`, unless one is outstanding.
  void RequestPull(const std::string& stream, uint64_t after_seq, int64_t now);
  // A stream followed from now on: the server learns of it from its first pull (once ready).
  void Follow(const std::string& stream, int64_t now);
  // Pulls every followed stream that is behind the server's high seq, or whose pull went unanswered.
  void SendPulls(int64_t now);
  void OnBatch(const wire::Batch& batch, int64_t now);
  void OnNotify(const wire::Notify& notify);
  // The server could not make a group durable: pulls not yet answered are asked again.
  void OnBusy(int64_t now);
  void OnDisconnected();
  bool idle() const;  // every followed stream caught up, no pull outstanding

 private:
  // Whether an op from the server was made on this device: same user and same device id.
  bool IsOwn(const codec::OpFields& f) const;
  void Send(const std::string& stream, uint64_t after_seq, int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  // Merges ops after_seq+1 .. after_seq+len(ops) (after_seq at or before the cursor) in one transaction.
  // False when the store failed (nothing merged).
  bool Merge(const std::string& stream, uint64_t after_seq,
             const flatbuffers::Vector<flatbuffers::Offset<wire::Op>>* ops, uint64_t high_seq)
      OUTPOST_REQUIRES(ctx_.mu);

  // Marks `joined` (a kJoinedKind op's payload) followed in `txn` and adds it to `followed`, unless it is
  // followed already or is no valid stream id (skipped: not an error).
  Status FollowJoined(WriteTxn* txn, std::string_view joined, std::set<std::string>* followed)
      OUTPOST_REQUIRES(ctx_.mu);

  SyncContext& ctx_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_MERGER_H_
