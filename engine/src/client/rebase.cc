// Copyright 2026 The Outpost Authors.
#include "client/rebase.h"

#include <algorithm>
#include <map>
#include <set>

#include "client/sync_context.h"
#include "codec.h"
#include "keys.h"

namespace outpost {
namespace {

// The counters of the stream's outbox (unanswered), and the ops they send. Answered counters need not all sit
// below the lowest unanswered one: the ack of a later batch can arrive while an earlier op's ack was lost.
Status Unanswered(ReadTxn* txn, const std::string& stream, std::set<uint64_t>* counters,
                  std::set<OpId>* ops) {
  const std::string prefix = keys::StreamPrefix(stream);
  auto cur = txn->NewCursor(kOutbox);
  for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    if (cur->key().size() != prefix.size() + 8) continue;
    counters->insert(keys::GetBE64(cur->key().substr(prefix.size())));
    OutboxEntry entry;
    if (OutboxEntry::Decode(cur->value(), &entry) && entry.kind != OutboxEntry::Kind::kSkip)
      ops->insert(entry.op_id);
  }
  return cur->status();
}

}  // namespace

Status RebaseStream(WriteTxn* txn, const RebaseInput& in, OpIdGenerator* ids, uint64_t* local_seq,
                    RebaseOutcome* out, std::vector<Change>* changes, Tally* tally) {
  const std::string& stream = in.stream;
  keys::StreamMeta meta;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn, stream, &meta));
  out->cursor = meta.cursor;
  const uint64_t L = in.server_counter;
  uint64_t b = in.base;
  if (in.server_high > 0 && in.server_high < meta.cursor) b = std::min(b, in.server_high);

  // Counters this device had answered that the server no longer counts: those above L that are not in the
  // outbox. (Not only those below the first unanswered one: with an earlier op's ack lost, a later op may
  // be answered and sent, and lost by the server all the same; it must be sent again, not set aside.)
  std::set<uint64_t> unanswered;
  std::set<OpId> in_outbox;  // ops with an entry still to send (a retried op applied under its old counter)
  OUTPOST_RETURN_IF_ERROR(Unanswered(txn, stream, &unanswered, &in_outbox));
  std::set<uint64_t> lost_counters;
  for (uint64_t c = L + 1; c < meta.next_counter; ++c) {
    if (!unanswered.contains(c)) lost_counters.insert(c);
  }
  // Where the server's own ops it lost sit: found by one backwards scan of the sent section, only when the
  // server lost some. Failed ops that hold their counter (the server rejected them) are in the unsent
  // section; they are found there.
  std::map<uint64_t, OpId> fill;  // counter -> the op id to send it with as a skip (a failed op's)
  if (!lost_counters.empty()) {
    const std::string sent_prefix = keys::ViewKey(stream, keys::kSectionSent, 0).substr(0, stream.size() + 2);
    auto cur = txn->NewCursor(kView);
    size_t found = 0;
    for (cur->SeekForPrev(keys::ViewKey(stream, keys::kSectionSent, UINT64_MAX));
         cur->Valid() && cur->key().starts_with(sent_prefix) && found < lost_counters.size(); cur->Prev()) {
      OpInfo op;
      uint64_t op_local_seq = 0;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, &op_local_seq));
      if (op.own && lost_counters.contains(op.device_counter)) {
        ++found;
        b = std::min(b, op.seq - 1);
      }
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
    const std::string unsent_prefix =
        keys::ViewKey(stream, keys::kSectionUnsent, 0).substr(0, stream.size() + 2);
    auto un = txn->NewCursor(kView);
    for (un->Seek(unsent_prefix); un->Valid() && un->key().starts_with(unsent_prefix); un->Next()) {
      OpInfo op;
      uint64_t op_local_seq = 0;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(un->value(), &op, &op_local_seq));
      if (op.state == OpState::kFailed && lost_counters.contains(op.device_counter)) {
        fill[op.device_counter] = op.op_id;
      }
    }
    OUTPOST_RETURN_IF_ERROR(un->status());
  }

  // Everything of the sent section above b.
  bool dropped = false;
  uint64_t outbox_added = 0;
  if (b < UINT64_MAX) {
    const std::string sent_prefix = keys::ViewKey(stream, keys::kSectionSent, 0).substr(0, stream.size() + 2);
    auto cur = txn->NewCursor(kView);
    std::vector<std::pair<std::string, std::string>> above;  // (view key, record): changed after the scan
    for (cur->Seek(keys::ViewKey(stream, keys::kSectionSent, b + 1));
         cur->Valid() && cur->key().starts_with(sent_prefix); cur->Next()) {
      above.emplace_back(std::string(cur->key()), std::string(cur->value()));
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
    for (auto& [view_key, record] : above) {
      StoredOp s;
      s.view_key = view_key;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(record, &s.op, &s.local_seq));
      OpInfo& op = s.op;
      OUTPOST_RETURN_IF_ERROR(txn->Delete(kView, view_key));
      dropped = true;
      // Ours, and the server no longer has it (its counter is lost), or has it where this device cannot tell
      // (the server counts it, at a seq this device may no longer trust: a restore of another history):
      // pending again, where it was written, under its counter. The server applies a lost one as new and
      // answers Duplicate, with its seq now, for one it still has: the op never leaves the device's view
      // (set aside, it would be missing to Get until a pull brought it back, and brought back by a pull it
      // would no longer be sent again if a later restore lost it).
      // One with an outbox entry still (the user retried it and the server applied it under its old
      // counter) is sent again under that entry.
      const bool queued = in_outbox.contains(op.op_id);
      const bool counted = op.device_counter <= L && !unanswered.contains(op.device_counter);
      if (op.own && (queued || counted || lost_counters.erase(op.device_counter) > 0)) {
        // An own op this device merged from a pull (its local record was lost, e.g. to a power loss) has no
        // local seq: it takes the next one, as a submit would.
        if (s.local_seq == 0) s.local_seq = ++*local_seq;
        op.state = OpState::kPending;
        op.seq = 0;
        op.last_error = "the server lost it (restored from an earlier copy): sending it again";
        s.view_key = keys::ViewKey(stream, keys::kSectionUnsent, s.local_seq);
        op.position = s.view_key;
        OUTPOST_RETURN_IF_ERROR(DeviceStore::PutOp(txn, s));
        if (!queued) {
          OUTPOST_RETURN_IF_ERROR(
              DeviceStore::PutEntry(txn, stream, op.device_counter, {OutboxEntry::Kind::kOp, op.op_id}));
          ++outbox_added;
        }
        tally->pending_added.push_back({stream, op.created_at_ms});
        changes->push_back(OpChange(Change::Kind::kUpdated, op));
        ++out->requeued;
        continue;
      }
      // Another author's op, or one of ours the server still counts (a pull brings it back): aside.
      OUTPOST_RETURN_IF_ERROR(txn->Delete(kOpIndex, op.op_id.AsBytes()));
      OUTPOST_RETURN_IF_ERROR(txn->Put(kLost, op.op_id.AsBytes(), record));
      ++tally->lost;
      ++out->lost;
      changes->push_back(OpChange(Change::Kind::kRemoved, op));
    }
  }

  // The counters no op of ours fills: skips, so that no hole holds the stream's later ops.
  for (uint64_t c : lost_counters) {
    auto it = fill.find(c);
    const OpId id = it != fill.end() ? it->second : ids->Next();
    OUTPOST_RETURN_IF_ERROR(DeviceStore::PutEntry(txn, stream, c, {OutboxEntry::Kind::kSkip, id}));
    ++outbox_added;
    ++out->skips;
  }

  // Receipts above b speak of ops that may not be the ones now there. Looked at even when the view keeps
  // everything (a device behind the base may hold receipts relayed from far above it): a receipt the server
  // lost and left above the stream's high would never be matched again (receipts only move up).
  std::vector<std::string> clamp;
  if (b < UINT64_MAX) {
    const std::string wm_prefix = keys::StreamPrefix(stream);
    auto cur = txn->NewCursor(kWatermarks);
    for (cur->Seek(wm_prefix); cur->Valid() && cur->key().starts_with(wm_prefix); cur->Next()) {
      if (cur->value().size() >= 8 && keys::GetBE64(cur->value()) > b) clamp.emplace_back(cur->key());
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  if (!dropped && outbox_added == 0 && b >= meta.cursor && clamp.empty()) return Status::OK();
  out->changed = true;
  meta.outbox += outbox_added;
  tally->outbox += static_cast<int64_t>(outbox_added);
  if (b < UINT64_MAX) {
    meta.cursor = std::min(meta.cursor, b);
    meta.read_seq = std::min(meta.read_seq, b);
    meta.high_seq = std::min(meta.high_seq, b);
    std::string v;
    keys::PutBE64(&v, b);
    for (const auto& key : clamp) OUTPOST_RETURN_IF_ERROR(txn->Put(kWatermarks, key, v));
  }
  if (in.server_high > 0) meta.high_seq = in.server_high;
  if (dropped) tally->members.push_back({MembersNote::What::kReset, stream, OpId(), 0, {}});
  out->cursor = meta.cursor;
  return DeviceStore::PutMeta(txn, stream, meta);
}

Status ApplyRebase(SyncContext& ctx, const std::vector<RebaseInput>& inputs, const std::string* incarnation) {
  ctx.mu.AssertHeld();
  OUTPOST_ASSIGN_OR_RETURN(auto txn, ctx.store->BeginWrite());
  std::vector<Change> changes;
  Tally tally;
  OpIdGenerator ids(ctx.env);
  // The store's last local seq (the SubmitPipeline reads it in each of its transactions too).
  uint64_t local_seq = 0;
  {
    std::string v;
    Status st = txn->Get(kMeta, "local_seq", &v);
    if (st.ok() && v.size() == 8) {
      local_seq = keys::GetBE64(v);
    } else if (!st.ok() && !st.IsNotFound()) {
      return st;
    }
  }
  const uint64_t local_seq_before = local_seq;
  std::vector<std::pair<std::string, RebaseOutcome>> outcomes;
  for (const RebaseInput& in : inputs) {
    RebaseOutcome out;
    OUTPOST_RETURN_IF_ERROR(RebaseStream(txn.get(), in, &ids, &local_seq, &out, &changes, &tally));
    if (out.changed) outcomes.emplace_back(in.stream, out);
  }
  if (local_seq != local_seq_before) {
    std::string v;
    keys::PutBE64(&v, local_seq);
    OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "local_seq", v));
  }
  if (incarnation) OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "incarnation", *incarnation));
  OUTPOST_RETURN_IF_ERROR(ctx.store->Commit(txn.get(), tally, changes));
  if (incarnation) ctx.incarnation = *incarnation;
  uint64_t requeued = 0, lost = 0;
  for (const RebaseInput& in : inputs) {
    StreamSync& ss = ctx.Of(in.stream);
    ss.flush.acked_top = std::min(ss.flush.acked_top, in.server_counter);  // what it counts now
  }
  for (const auto& [stream, out] : outcomes) {
    StreamSync& ss = ctx.Of(stream);
    ss.cursor = out.cursor;
    ss.server_high = std::min(ss.server_high, out.cursor);  // the Welcome's or the next page's high follows
    requeued += out.requeued;
    lost += out.lost;
    ctx.RestartAfter(stream, 0, ResendReason::kNone);
    ctx.dirty.insert(stream);
  }
  if (!outcomes.empty()) {
    ctx.Count([&](ClientStats& s) {
      ++s.rebases;
      s.ops_requeued += requeued;
      s.ops_set_aside += lost;
    });
  }
  return Status::OK();
}

Status RecoverLost(WriteTxn* txn, const OpId& id, Tally* tally) {
  std::string v;
  Status st = txn->Get(kLost, id.AsBytes(), &v);
  if (st.IsNotFound()) return Status::OK();
  OUTPOST_RETURN_IF_ERROR(st);
  --tally->lost;
  return txn->Delete(kLost, id.AsBytes());
}

}  // namespace outpost
