// Copyright 2026 The Outpost Authors.
#include "client/rebase.h"

#include <algorithm>
#include <map>
#include <set>

#include "codec.h"
#include "client/sync_context.h"
#include "keys.h"

namespace outpost {
namespace {

// The lowest counter of the stream's outbox; `next_counter` when it is empty.
Status FirstUnanswered(ReadTxn* txn, const std::string& stream, uint64_t next_counter, uint64_t* first) {
  const std::string prefix = keys::StreamPrefix(stream);
  auto cur = txn->NewCursor(kOutbox);
  cur->Seek(prefix);
  *first = next_counter;
  if (cur->Valid() && cur->key().starts_with(prefix) && cur->key().size() == prefix.size() + 8) {
    *first = std::min(next_counter, keys::GetBE64(cur->key().substr(prefix.size())));
  }
  return cur->status();
}

}  // namespace

Status RebaseStream(WriteTxn* txn, const RebaseInput& in, OpIdGenerator* ids, RebaseOutcome* out,
                    std::vector<Change>* changes, Tally* tally) {
  const std::string& stream = in.stream;
  keys::StreamMeta meta;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn, stream, &meta));
  out->cursor = meta.cursor;
  const uint64_t L = in.server_counter;
  uint64_t b = in.base;
  if (in.server_high > 0 && in.server_high < meta.cursor) b = std::min(b, in.server_high);

  // Counters this device had answered that the server no longer counts: (L, first unanswered).
  uint64_t first = 0;
  OUTPOST_RETURN_IF_ERROR(FirstUnanswered(txn, stream, meta.next_counter, &first));
  std::set<uint64_t> lost_counters;
  for (uint64_t c = L + 1; c < first; ++c) lost_counters.insert(c);
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
      uint64_t local_seq = 0;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, &local_seq));
      if (op.own && lost_counters.contains(op.device_counter)) {
        ++found;
        b = std::min(b, op.seq - 1);
      }
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
    const std::string unsent_prefix = keys::ViewKey(stream, keys::kSectionUnsent, 0).substr(0, stream.size() + 2);
    auto un = txn->NewCursor(kView);
    for (un->Seek(unsent_prefix); un->Valid() && un->key().starts_with(unsent_prefix); un->Next()) {
      OpInfo op;
      uint64_t local_seq = 0;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(un->value(), &op, &local_seq));
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
      if (op.own && op.device_counter > L && s.local_seq != 0 && lost_counters.erase(op.device_counter) > 0) {
        // Ours, and the server no longer has it: pending again, where it was written, under its counter.
        op.state = OpState::kPending;
        op.seq = 0;
        op.last_error = "the server lost it (restored from an earlier copy): sending it again";
        s.view_key = keys::ViewKey(stream, keys::kSectionUnsent, s.local_seq);
        op.position = s.view_key;
        OUTPOST_RETURN_IF_ERROR(DeviceStore::PutOp(txn, s));
        OUTPOST_RETURN_IF_ERROR(
            DeviceStore::PutEntry(txn, stream, op.device_counter, {OutboxEntry::Kind::kOp, op.op_id}));
        ++outbox_added;
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

  if (!dropped && outbox_added == 0 && b >= meta.cursor) return Status::OK();
  out->changed = true;
  meta.outbox += outbox_added;
  tally->outbox += static_cast<int64_t>(outbox_added);
  if (b < UINT64_MAX) {
    meta.cursor = std::min(meta.cursor, b);
    meta.read_seq = std::min(meta.read_seq, b);
    meta.high_seq = std::min(meta.high_seq, b);
    // Receipts above b speak of ops that may not be the ones now there.
    const std::string wm_prefix = keys::StreamPrefix(stream);
    auto cur = txn->NewCursor(kWatermarks);
    std::vector<std::string> clamp;
    for (cur->Seek(wm_prefix); cur->Valid() && cur->key().starts_with(wm_prefix); cur->Next()) {
      if (cur->value().size() >= 8 && keys::GetBE64(cur->value()) > b) clamp.emplace_back(cur->key());
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
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
  std::vector<std::pair<std::string, RebaseOutcome>> outcomes;
  for (const RebaseInput& in : inputs) {
    RebaseOutcome out;
    OUTPOST_RETURN_IF_ERROR(RebaseStream(txn.get(), in, &ids, &out, &changes, &tally));
    if (out.changed) outcomes.emplace_back(in.stream, out);
  }
  if (incarnation) OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "incarnation", *incarnation));
  OUTPOST_RETURN_IF_ERROR(ctx.store->Commit(txn.get(), tally, changes));
  if (incarnation) ctx.incarnation = *incarnation;
  uint64_t requeued = 0, lost = 0;
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
