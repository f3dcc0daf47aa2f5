// Copyright 2026 The Outpost Authors.
#include "client/flusher.h"

#include <algorithm>
#include <chrono>

#include "base/check.h"
#include "client/rebase.h"
#include "client/sync_session.h"

namespace outpost {

bool Flusher::idle() const {
  ctx_.mu.AssertHeld();
  return inflight_.empty();
}

void Flusher::OnDisconnected() {
  ctx_.mu.AssertHeld();
  inflight_.clear();
  for (auto& [stream, ss] : ctx_.streams) {
    ss.flush.inflight = 0;
    ctx_.RestartAfter(stream, 0, ResendReason::kDisconnect);
  }
}

void Flusher::Forget(const std::string& stream, const OpId& id) {
  ctx_.mu.AssertHeld();
  for (auto& [batch_id, b] : inflight_) {
    if (b.stream != stream) continue;
    for (size_t i = 0; i < b.ids.size(); ++i) {
      if (b.ids[i] == id) b.records[i] = StoredOp();
    }
  }
}

void Flusher::OnBusy(int64_t /*now*/) {
  ctx_.mu.AssertHeld();
  // Given up on at the next CheckTimeouts (and counted as Busy retries when resent), without touching
  // sent_at: an ack that still arrives is timed from the real send.
  for (auto& [id, b] : inflight_) b.busy = true;
}

void Flusher::CheckTimeouts(int64_t now) {
  ctx_.mu.AssertHeld();
  std::vector<Inflight> expired;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (it->second.busy || now - it->second.sent_at >= ctx_.opt.ack_timeout_ms) {
      expired.push_back(std::move(it->second));
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
  if (expired.empty()) return;
  auto txn = ctx_.store->BeginWrite();
  if (txn.ok()) {
    // No answer is ambiguous: the server may have applied them. Resending is safe; count the attempt.
    std::vector<Change> changes;
    Status st;
    for (const Inflight& b : expired) {
      for (const OpId& id : b.ids) {
        StoredOp s;
        if (!DeviceStore::LoadOp(txn->get(), id, &s).ok() || s.op.state != OpState::kPending) continue;
        OpInfo& op = s.op;
        ++op.attempts;
        op.next_attempt_at_ms = now + ctx_.Backoff(op.attempts, ctx_.opt.backoff_cap_ms);
        op.last_error = "no answer from the server in " + std::to_string(ctx_.opt.ack_timeout_ms) + " ms";
        op.last_error_code = Status::Code::kTimeout;
        if (st.ok()) st = DeviceStore::PutOp(txn->get(), s);
        changes.push_back(OpChange(Change::Kind::kUpdated, op));
      }
    }
    if (st.ok()) st = ctx_.store->Commit(txn->get(), {}, changes);
    if (!st.ok()) ctx_.Count([](ClientStats& s) { ++s.store_errors; });
  } else {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
  }
  for (const Inflight& b : expired) {
    StreamSync& ss = ctx_.Of(b.stream);
    OUTPOST_CHECK(ss.flush.inflight > 0 && b.first_counter > 0);
    --ss.flush.inflight;
    ctx_.RestartAfter(b.stream, b.first_counter - 1, b.busy ? ResendReason::kBusy : ResendReason::kTimeout);
  }
  ctx_.Count([&](ClientStats& s) { s.timeouts += expired.size(); });
}

void Flusher::Renumber() {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) {
    FlushState& fs = ss.flush;
    if (!fs.renumber || fs.inflight > 0) continue;
    auto txn_or = ctx_.store->BeginWrite();
    if (!txn_or.ok()) {
      ctx_.Count([](ClientStats& s) { ++s.store_errors; });
      return;
    }
    WriteTxn* txn = txn_or->get();
    const std::string prefix = keys::StreamPrefix(stream);
    // The entries from the first conflicting counter on (in counter order, which is submit order).
    std::vector<std::string> old_keys;
    std::vector<OutboxEntry> entries;
    // Entries sent under their old counters: their sends under the new ones are retries.
    uint64_t were_sent = 0;
    Status st;
    {
      auto cur = txn->NewCursor(kOutbox);
      for (cur->Seek(keys::OutboxKey(stream, std::min<uint64_t>(fs.renumber_from, fs.renumber_after + 1)));
           cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
        OutboxEntry e;
        if (!OutboxEntry::Decode(cur->value(), &e)) {
          st = Status::Corruption("unreadable outbox entry");
          break;
        }
        old_keys.emplace_back(cur->key());
        if (keys::GetBE64(cur->key().substr(prefix.size())) <= std::max(fs.sent_upto, fs.resend_upto))
          ++were_sent;
        entries.push_back(e);
      }
      if (st.ok()) st = cur->status();
    }
    // Delete every old key first: old and new counter ranges may overlap.
    for (const auto& k : old_keys) {
      if (st.ok()) st = txn->Delete(kOutbox, k);
    }
    uint64_t counter = fs.renumber_after;
    const uint64_t renumbered_from = counter + 1;
    for (const OutboxEntry& e : entries) {
      ++counter;
      if (st.ok()) st = DeviceStore::PutEntry(txn, stream, counter, e);
      if (e.skip() || !st.ok()) continue;
      StoredOp s;
      if (DeviceStore::LoadOp(txn, e.op_id, &s).ok()) {
        s.op.device_counter = counter;
        st = DeviceStore::PutOp(txn, s);
      }
    }
    keys::StreamMeta m;
    if (st.ok()) st = DeviceStore::LoadMeta(txn, stream, &m);
    m.next_counter = counter + 1;
    if (st.ok()) st = DeviceStore::PutMeta(txn, stream, m);
    if (st.ok()) st = txn->Commit();
    if (!st.ok()) {  // tried again next round
      ctx_.Count([](ClientStats& s) { ++s.store_errors; });
      return;
    }
    fs.renumber = false;
    fs.renumber_after = 0;
    fs.renumber_from = UINT64_MAX;
    ctx_.RestartAfter(stream, 0, ResendReason::kNone);
    // The renumbered entries come first in counter order, so those that were sent have the lowest new
    // counters.
    fs.resend_upto = were_sent > 0 ? renumbered_from + were_sent - 1 : 0;
    fs.resend_reason = ResendReason::kConflict;
  }
}

void Flusher::Flush(int64_t now) {
  ctx_.mu.AssertHeld();
  // Round robin: one batch per stream per pass, so one busy stream does not starve the others.
  bool progress = true;
  while (progress && inflight_.size() < ctx_.opt.batches_inflight_max && !ctx_.dirty.empty()) {
    progress = false;
    std::vector<std::string> streams(ctx_.dirty.begin(), ctx_.dirty.end());
    for (const auto& stream : streams) {
      if (inflight_.size() >= ctx_.opt.batches_inflight_max) break;
      if (ctx_.Of(stream).flush.renumber) continue;
      if (SendBatch(stream, now)) progress = true;
    }
  }
}

bool Flusher::ProbeUnanswered(const std::string& stream, uint64_t batch_first) {
  const uint64_t probe_upto = ctx_.Of(stream).flush.probe_upto;
  if (batch_first != 0 && batch_first <= probe_upto) return true;
  for (const auto& [id, batch] : inflight_) {
    if (batch.stream == stream && batch.first_counter <= probe_upto) return true;
  }
  return false;
}

namespace {
// What one op costs in a Push beyond its payload, kind and stream (they are repeated per op).
constexpr size_t kOpOverheadBytes = 128;
// An attachment's reference: its id, sha256 and the table around them (its content type is added).
constexpr size_t kBlobRefBytes = 32 + 64 + 48;
// Room kept in a Push frame for its own fields.
size_t PushBytesMax(uint32_t frame_bytes_max) {
  size_t limit = frame_bytes_max > 0 ? frame_bytes_max : 4u << 20;
  return limit > 8192 ? limit - 4096 : limit / 2;
}
}  // namespace

Status Flusher::OverServerLimits(const OpInfo& op) const {
  const ServerLimits& limits = ctx_.session->limits();
  auto over = [](const char* what, size_t size, const char* limit, uint32_t max) {
    return Status::InvalidArgument(std::string(what) + " of " + std::to_string(size) +
                                   " bytes exceeds the server's " + limit + " " + std::to_string(max));
  };
  if (limits.payload_bytes_max > 0 && op.payload.size() > limits.payload_bytes_max) {
    return over("payload", op.payload.size(), "payload_bytes_max", limits.payload_bytes_max);
  }
  if (limits.kind_bytes_max > 0 && op.kind.size() > limits.kind_bytes_max) {
    return over("kind", op.kind.size(), "kind_bytes_max", limits.kind_bytes_max);
  }
  if (limits.stream_id_bytes_max > 0 && op.stream.size() > limits.stream_id_bytes_max) {
    return over("stream id", op.stream.size(), "stream_id_bytes_max", limits.stream_id_bytes_max);
  }
  size_t op_bytes = op.payload.size() + op.kind.size() + op.stream.size() + kOpOverheadBytes +
                    (op.has_attachment ? kBlobRefBytes + op.attachment.content_type.size() : 0);
  if (limits.frame_bytes_max > 0 && op_bytes > PushBytesMax(limits.frame_bytes_max)) {
    return Status::InvalidArgument("op of " + std::to_string(op_bytes) +
                                   " bytes does not fit the server's frame_bytes_max " +
                                   std::to_string(limits.frame_bytes_max));
  }
  return Status::OK();
}

// One batch as read from the outbox: its ops, built into the Push as they are read, and the ops to give
// up on.
struct Flusher::Batch {
  struct Release {
    OpId id;
    Status why;
  };
  explicit Batch(flatbuffers::FlatBufferBuilder* b) : builder(*b) { builder.Clear(); }
  flatbuffers::FlatBufferBuilder& builder;  // Flusher::push_builder_
  std::vector<flatbuffers::Offset<wire::Op>> ops;
  std::vector<OpId> ids;
  std::vector<StoredOp> records;  // parallel to ids (Inflight::records)
  uint64_t first = 0, last = 0;   // counters
  std::vector<Release> releases;
  uint64_t own = 0;      // ops of the batch that are not skips (ClientStats::attempts)
  uint64_t resent = 0;   // of them, ops sent before (counter <= FlushState::resend_upto)
  bool blocked = false;  // the stream holds a failed op and blocks on failures
  bool at_end = false;   // nothing after the last entry looked at
};

Status Flusher::ReadBatch(const std::string& stream, int64_t now, Batch* batch) {
  StreamSync& ss = ctx_.Of(stream);
  const ServerLimits& limits = ctx_.session->limits();
  uint32_t ops_max = ctx_.opt.ops_per_batch_max;
  if (limits.ops_per_batch_max > 0) ops_max = std::min(ops_max, limits.ops_per_batch_max);
  const size_t bytes_max = PushBytesMax(limits.frame_bytes_max);
  size_t bytes = 0;

  OUTPOST_ASSIGN_OR_RETURN(auto txn, ctx_.store->BeginRead());
  keys::StreamMeta meta;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn.get(), stream, &meta));
  const bool block =
      meta.block_on_failure == 1 || (meta.block_on_failure == 0 && ctx_.opt.block_stream_on_failure);
  if (block && meta.failed > 0) {
    batch->blocked = true;
    return Status::OK();
  }
  std::string prefix = keys::StreamPrefix(stream);
  auto cur = txn->NewCursor(kOutbox);
  cur->Seek(keys::OutboxKey(stream, ss.flush.sent_upto + 1));
  batch->at_end = true;
  for (; cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    if (batch->ops.size() >= ops_max) {
      batch->at_end = false;
      break;
    }
    uint64_t counter = keys::GetBE64(cur->key().substr(prefix.size()));
    if (counter > ss.flush.probe_upto && ProbeUnanswered(stream, batch->ops.empty() ? 0 : batch->first)) {
      batch->at_end = false;  // sent once the ops up to probe_upto are answered (sync_context.h)
      break;
    }
    OutboxEntry entry;
    if (!OutboxEntry::Decode(cur->value(), &entry)) {
      batch->at_end = false;  // what came before it is sent; the stream stops here
      return Status::Corruption("unreadable outbox entry of stream " + stream);
    }
    codec::OpFields f;
    f.op_id = entry.op_id;
    f.stream = stream;
    f.device_counter = counter;
    f.retry = entry.kind == OutboxEntry::Kind::kRetry;
    f.skip = entry.skip();
    StoredOp s;
    if (!f.skip) {
      Status st = DeviceStore::LoadOp(txn.get(), entry.op_id, &s);
      if (!st.ok()) {
        batch->at_end = false;
        return st;
      }
    }
    const OpInfo& op = s.op;
    if (!f.skip && op.state == OpState::kSent) {
      // Applied already under an older counter (a retried op settled by a pull): this counter only needs
      // consuming, and nothing may move the op out of sent.
      f.skip = true;
    } else if (!f.skip) {
      bool exhausted = (ctx_.opt.attempts_max > 0 && op.attempts >= ctx_.opt.attempts_max) ||
                       (ctx_.opt.age_ms_max > 0 && now - op.created_at_ms >= ctx_.opt.age_ms_max);
      if (exhausted) {
        batch->releases.push_back(
            {entry.op_id,
             Status::Timeout("exhausted: no answer after " + std::to_string(op.attempts) + " attempts over " +
                             std::to_string(now - op.created_at_ms) + " ms")});
        batch->at_end = false;
        break;
      }
      if (op.next_attempt_at_ms > now) {  // backing off: the stream waits, in order
        batch->at_end = false;
        break;
      }
      if (!op.depends_on.IsNil()) {
        StoredOp parent;
        Status pst = DeviceStore::LoadOp(txn.get(), op.depends_on, &parent);
        if (pst.ok() && parent.op.own && parent.op.state == OpState::kFailed) {
          Status::Code code = parent.op.last_error_code == Status::Code::kOk
                                  ? Status::Code::kFailedPrecondition
                                  : parent.op.last_error_code;
          batch->releases.push_back(
              {entry.op_id, Status::FromCode(code, "dependency failed: " + parent.op.last_error)});
          batch->at_end = false;
          break;
        }
        if (pst.ok() && parent.op.own && parent.op.state != OpState::kSent) {  // waits for its parent
          batch->at_end = false;
          break;
        }
      }
      // Beyond what the server announced in its Welcome, the op would be refused or dropped on every resend
      // and hold up its stream: it fails now, for good, and its counter becomes a skip.
      Status too_big = OverServerLimits(op);
      if (!too_big.ok()) {
        batch->releases.push_back({entry.op_id, too_big});
        batch->at_end = false;
        break;
      }
      f.kind = op.kind;
      f.payload = op.payload;
      f.client_time_ms = op.client_time_ms;
      f.depends_on = op.depends_on;
      if (op.has_attachment) {
        f.has_blob = true;
        f.blob = {op.attachment.blob_id, op.attachment.content_type, op.attachment.sha256,
                  op.attachment.size};
      }
    }
    // Each op costs its payload, kind and stream (repeated per op) plus a fixed overhead; the whole Push
    // must fit the server's frame limit, so an op that would overshoot waits for the next batch.
    size_t op_bytes = f.payload.size() + f.kind.size() + f.stream.size() + kOpOverheadBytes +
                      (f.has_blob ? kBlobRefBytes + f.blob.content_type.size() : 0);
    if (!batch->ops.empty() && bytes + op_bytes > bytes_max) {
      batch->at_end = false;
      break;
    }
    if (batch->ops.empty()) batch->first = counter;
    batch->last = counter;
    if (!f.skip) {
      ++batch->own;
      if (counter <= ss.flush.resend_upto) ++batch->resent;
    }
    bytes += op_bytes;
    batch->ops.push_back(codec::BuildOp(batch->builder, f));
    batch->ids.push_back(entry.op_id);
    if (f.skip) s = StoredOp();
    batch->records.push_back(std::move(s));
  }
  return cur->status();
}

void Flusher::Release(const std::string& stream, const Batch& batch) {
  // Given up without a server verdict: failed with the reason, the counter becomes a skip.
  std::vector<Change> changes;
  Tally tally;
  auto txn = ctx_.store->BeginWrite();
  Status st = txn.status();
  keys::StreamMeta meta;
  if (st.ok()) st = DeviceStore::LoadMeta(txn->get(), stream, &meta);
  for (const auto& r : batch.releases) {
    StoredOp s;
    if (st.ok()) st = DeviceStore::LoadOp(txn->get(), r.id, &s);
    if (st.ok()) st = DeviceStore::MarkFailed(txn->get(), s, r.why, /*release_counter=*/true, &meta, &tally);
    if (st.ok()) changes.push_back(OpChange(Change::Kind::kUpdated, s.op));
  }
  if (st.ok()) st = DeviceStore::PutMeta(txn->get(), stream, meta);
  if (st.ok()) st = ctx_.store->Commit(txn->get(), tally, changes);
  if (!st.ok()) ctx_.Count([](ClientStats& s) { ++s.store_errors; });
}

bool Flusher::SendBatch(const std::string& stream, int64_t now) {
  Batch batch(&push_builder_);
  Status st = ReadBatch(stream, now, &batch);
  if (!st.ok()) {
    // Counted; the ops read before the failure are still sent, and the stream is tried again next round.
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    if (batch.ops.empty()) return false;
  }
  if (batch.blocked) {
    ctx_.dirty.erase(stream);  // Retry or Discard marks it dirty again
    return false;
  }
  // Send what was collected before a released op; its skip goes in the next batch.
  if (!batch.releases.empty()) Release(stream, batch);
  if (batch.ops.empty()) {
    if (batch.at_end) ctx_.dirty.erase(stream);
    return !batch.releases.empty();
  }
  StreamSync& ss = ctx_.Of(stream);
  const size_t n = batch.ops.size();
  uint64_t batch_id = next_batch_id_++;
  flatbuffers::FlatBufferBuilder& b = batch.builder;
  auto ov = b.CreateVector(batch.ops);
  auto push = wire::CreatePush(b, batch_id, ov);
  ctx_.session->Send(codec::FinishFrame(b, wire::Body::Push, push.Union()));
  inflight_[batch_id] =
      Inflight{stream, ss.flush.epoch,    now, batch.first, std::move(batch.ids), std::move(batch.records),
               false,  ss.flush.acked_top};
  ss.flush.sent_upto = batch.last;
  ++ss.flush.inflight;
  if (batch.at_end) ctx_.dirty.erase(stream);
  const ResendReason reason = ss.flush.resend_reason;
  if (batch.last >= ss.flush.resend_upto) {
    ss.flush.resend_upto = 0;
    ss.flush.resend_reason = ResendReason::kNone;
  }
  ctx_.Count([&](ClientStats& s) {
    ++s.batches_sent;
    s.ops_sent += n;
    s.attempts += batch.own;
    switch (reason) {
      case ResendReason::kTimeout:
        s.retries_timeout += batch.resent;
        break;
      case ResendReason::kBusy:
        s.retries_busy += batch.resent;
        break;
      case ResendReason::kDisconnect:
        s.retries_disconnect += batch.resent;
        break;
      case ResendReason::kGap:
        s.retries_gap += batch.resent;
        break;
      case ResendReason::kConflict:
        s.retries_conflict += batch.resent;
        break;
      case ResendReason::kNone:
      case ResendReason::kOther:
        s.retries_other += batch.resent;
        break;
    }
  });
  return true;
}

// The answers to one PushAck, worked out inside a write transaction and put into effect (in memory, for
// observers) only once that transaction committed. Several acks share one transaction (OnPushAcks).
struct Flusher::AckEffects {
  std::string stream;
  bool current = false;  // the ack is for a batch still in flight
  Inflight batch;
  std::set<OpId> answered;  // ops of the batch the ack speaks for
  std::vector<Change> changes;
  Tally tally;
  int64_t settled = 0;
  uint64_t acks = 0;
  uint64_t own_high = 0;  // highest seq of our ops the ack placed
  bool cursor_moved = false;
  uint64_t cursor = 0;
  bool restart = false;
  uint64_t restart_after = UINT64_MAX;
  bool gap = false;  // the restart is for a Gap (else the server asked to retry)
  bool lost_counters = false;  // a Gap named a last counter below what the server had consumed
  size_t next = 0;  // where the next result's op is likely to be in batch.ids (results follow the batch)

  // Takes the record kept for `id` (nullptr when none: not in the batch, a skip, or stale).
  StoredOp* Kept(const OpId& id) {
    if (!current) return nullptr;
    size_t i =
        next < batch.ids.size() && batch.ids[next] == id
            ? next
            : static_cast<size_t>(std::find(batch.ids.begin(), batch.ids.end(), id) - batch.ids.begin());
    if (i >= batch.ids.size() || batch.records[i].view_key.empty()) return nullptr;
    next = i + 1;
    return &batch.records[i];
  }
};

void Flusher::ResendUnanswered(const AckEffects& fx) {
  if (!fx.current) return;
  for (const OpId& id : fx.batch.ids) {
    if (fx.answered.count(id) == 0) {
      // Ops of the batch that this ack does not settle or answer must be sent again: no timeout covers
      // them now.
      ctx_.RestartAfter(fx.stream, fx.batch.first_counter - 1, ResendReason::kOther);
      return;
    }
  }
}

Status Flusher::ApplyAck(WriteTxn* txn, const wire::PushAck& ack, int64_t now, AckEffects* fx) {
  const std::string& stream = fx->stream;
  StreamSync& ss = ctx_.Of(stream);
  const uint64_t batch_epoch = fx->current ? fx->batch.epoch : 0;
  keys::StreamMeta meta;
  Status st = DeviceStore::LoadMeta(txn, stream, &meta);
  std::vector<uint64_t> own_seqs;  // seqs of our ops now in the view, to advance the cursor over
  for (const wire::OpResult* r : *ack.results()) {
    if (!st.ok()) break;
    OpId id = codec::FromWire(r->op_id());
    uint64_t counter = r->counter();
    OutboxEntry entry;
    if (!DeviceStore::GetEntry(txn, stream, counter, &entry).ok() || entry.op_id != id) {
      continue;  // stale or already settled
    }
    // The op as sent (kept with the batch), or as stored. A skip entry's op was discarded: none.
    StoredOp* kept = entry.skip() ? nullptr : fx->Kept(id);
    if (r->code() == wire::ResultCode::Applied || r->code() == wire::ResultCode::Duplicate) {
      // A seq is never 0, and one seq holds one op: an answer that says otherwise is ignored (the op is
      // resent or settled by the pull).
      if (r->seq() == 0) continue;
      std::string target = keys::ViewKey(stream, keys::kSectionSent, r->seq());
      std::string occupant, own_key;
      if (txn->Get(kView, target, &occupant).ok()) {
        const bool ours = kept ? kept->view_key == target
                               : txn->Get(kOpIndex, id.AsBytes(), &own_key).ok() && own_key == target;
        if (!ours) continue;
      }
    }
    fx->answered.insert(id);
    if (r->code() == wire::ResultCode::Applied || r->code() == wire::ResultCode::Duplicate ||
        r->code() == wire::ResultCode::Skipped || r->code() == wire::ResultCode::Rejected) {
      ss.flush.acked_top = std::max(ss.flush.acked_top, counter);  // the server's word: it consumed it
    }
    StoredOp s;
    Status found;
    if (kept) {
      s = std::move(*kept);
      kept->view_key.clear();
    } else {
      found = DeviceStore::LoadOp(txn, id, &s);
    }
    OpInfo& op = s.op;
    switch (r->code()) {
      case wire::ResultCode::Applied:
      case wire::ResultCode::Duplicate:
        ++fx->acks;
        st = DeviceStore::DeleteEntry(txn, stream, counter);
        ++fx->settled;
        if (st.ok() && found.ok() && op.own) {
          bool refused = false;
          st = DeviceStore::SettleOp(txn, s, r->seq(), &meta, &fx->changes, &fx->tally, &refused);
          if (!refused) own_seqs.push_back(r->seq());
        }
        break;
      case wire::ResultCode::Skipped:
        ++fx->acks;
        st = DeviceStore::DeleteEntry(txn, stream, counter);
        ++fx->settled;
        break;
      case wire::ResultCode::Rejected:
        ++fx->acks;
        st = DeviceStore::DeleteEntry(txn, stream, counter);
        ++fx->settled;
        if (st.ok() && !entry.skip() && found.ok() && op.state == OpState::kPending) {
          Status why = Status::FromCode(static_cast<Status::Code>(r->error_code()), codec::Str(r->message()));
          if (why.ok()) why = Status::InvalidArgument(codec::Str(r->message()));
          st = DeviceStore::MarkFailed(txn, s, why, /*release_counter=*/false, &meta, &fx->tally);
          fx->changes.push_back(OpChange(Change::Kind::kUpdated, op));
        }
        break;
      case wire::ResultCode::Gap:
        if (fx->current && batch_epoch == ss.flush.epoch) {
          fx->restart = true;
          fx->gap = true;
          fx->restart_after = std::min(fx->restart_after, r->last_counter());
        }
        // Below what the server had consumed when the batch left: it lost counters of ours.
        if (fx->current && r->last_counter() < fx->batch.acked_at_send) fx->lost_counters = true;
        break;
      case wire::ResultCode::Conflict:
        ss.flush.renumber = true;
        ss.flush.renumber_after = std::max(ss.flush.renumber_after, r->last_counter());
        ss.flush.renumber_from = std::min(ss.flush.renumber_from, counter);
        break;
      case wire::ResultCode::Retry:
        if (found.ok() && !entry.skip() && op.state == OpState::kPending) {
          ++op.attempts;
          op.next_attempt_at_ms = now + ctx_.Backoff(op.attempts, ctx_.opt.backoff_cap_ms);
          op.last_error = std::string(codec::Str(r->message()));
          op.last_error_code = static_cast<Status::Code>(r->error_code());
          st = DeviceStore::PutOp(txn, s);
          fx->changes.push_back(OpChange(Change::Kind::kUpdated, op));
        }
        fx->restart = true;
        fx->restart_after = std::min(fx->restart_after, counter - 1);
        break;
    }
  }
  DeviceStore::TakeOutbox(&meta, static_cast<uint64_t>(fx->settled));
  // Our own ops that sit right after the cursor are merged already: advance over them instead of pulling
  // them back (a device writing alone never pulls its own ops).
  std::sort(own_seqs.begin(), own_seqs.end());
  const uint64_t cursor_before = meta.cursor;
  for (uint64_t seq : own_seqs) {
    if (seq == meta.cursor + 1) meta.cursor = seq;
  }
  if (!own_seqs.empty()) {
    meta.high_seq = std::max(meta.high_seq, own_seqs.back());
    fx->own_high = own_seqs.back();
  }
  fx->cursor_moved = meta.cursor != cursor_before;
  fx->cursor = meta.cursor;
  if (st.ok()) st = DeviceStore::PutMeta(txn, stream, meta);
  return st;
}

void Flusher::FinishAck(AckEffects& fx, bool committed) {
  if (!committed) {
    ResendUnanswered(AckEffects{fx.stream, fx.current, fx.batch});  // nothing settled: resend everything
    return;
  }
  StreamSync& ss = ctx_.Of(fx.stream);
  ResendUnanswered(fx);
  if (fx.own_high > 0) ss.server_high = std::max(ss.server_high, fx.own_high);
  if (fx.cursor_moved) {
    ss.cursor = fx.cursor;
    if (ss.cursor >= ss.server_high) ss.receipts.dirty = true;
  }
  if (fx.restart) {
    ctx_.RestartAfter(fx.stream, fx.restart_after, fx.gap ? ResendReason::kGap : ResendReason::kOther);
  }
  if (ss.flush.renumber) ctx_.dirty.insert(fx.stream);
  ctx_.Count([&](ClientStats& s) {
    s.acks += fx.acks;
    if (fx.restart) ++s.gaps;
    if (ss.flush.renumber) ++s.conflicts;
  });
}

void Flusher::OnPushAcks(const std::vector<const wire::PushAck*>& acks, int64_t now) {
  ctx_.mu.AssertHeld();
  std::vector<AckEffects> effects;
  effects.reserve(acks.size());
  std::vector<int64_t> acked_ms;  // per ack of a batch in flight: how long its answer took
  std::unique_ptr<WriteTxn> txn;
  Status st;
  for (const wire::PushAck* ack : acks) {
    AckEffects fx;
    fx.stream = std::string(codec::Str(ack->stream()));
    if (!keys::ValidateStream(fx.stream, 255).ok()) continue;
    StreamSync& ss = ctx_.Of(fx.stream);
    auto it = inflight_.find(ack->batch_id());
    fx.current = it != inflight_.end() && it->second.stream == fx.stream;
    if (fx.current) {
      // Sent → answered, by the clock ack_timeout_ms is measured with.
      acked_ms.push_back(std::max<int64_t>(0, now - it->second.sent_at));
      fx.batch = std::move(it->second);
      OUTPOST_CHECK(ss.flush.inflight > 0);
      --ss.flush.inflight;
      inflight_.erase(it);
    }
    if (!ack->results()) {
      ResendUnanswered(fx);
      continue;
    }
    if (st.ok() && !txn) {
      auto begun = ctx_.store->BeginWrite();
      st = begun.status();
      if (st.ok()) txn = std::move(begun).value();
    }
    if (st.ok()) st = ApplyAck(txn.get(), *ack, now, &fx);
    effects.push_back(std::move(fx));  // after a failure, the rest are only resent
  }
  // One commit (one fsync) for every ack that arrived together; the gauges and events of all of them take
  // effect with it.
  Tally tally;
  std::vector<Change> changes;
  for (AckEffects& fx : effects) {
    tally.outbox -= fx.settled;
    tally.Add(std::move(fx.tally));
    changes.insert(changes.end(), fx.changes.begin(), fx.changes.end());
    if (fx.cursor_moved) {
      Change c;
      c.kind = Change::Kind::kCursor;
      c.stream = fx.stream;
      c.seq = fx.cursor;
      changes.push_back(std::move(c));
    }
  }
  if (txn && st.ok()) st = ctx_.store->Commit(txn.get(), tally, changes);
  if (txn && !st.ok()) ctx_.Count([](ClientStats& s) { ++s.store_errors; });
  txn.reset();
  for (AckEffects& fx : effects) FinishAck(fx, st.ok());
  // A Gap asks for counters from last+1. When it names a last counter below what the server had consumed
  // when the batch left (the server lost ops it had answered: put back from an earlier copy), the outbox no
  // longer holds them and resending would meet the same Gap for ever: the device sends its own lost ops
  // again and fills the rest with skips (client/rebase.h). A Gap judged before acks that arrived first
  // (frames reordered) names a counter at or above acked_at_send, and is an ordinary Gap.
  std::vector<RebaseInput> repairs;
  for (const AckEffects& fx : effects) {
    if (st.ok() && fx.lost_counters && fx.restart_after != UINT64_MAX) {
      RebaseInput in;
      in.stream = fx.stream;
      in.server_counter = fx.restart_after;
      repairs.push_back(std::move(in));
    }
  }
  if (!repairs.empty()) {
    if (Status repaired = ApplyRebase(ctx_, repairs, nullptr); !repaired.ok()) {
      ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    }
  }
  if (!acked_ms.empty()) {
    ctx_.Count([&](ClientStats& s) {
      for (int64_t ms : acked_ms) s.flush_seconds.Observe(static_cast<double>(ms) / 1000.0);
    });
  }
}

}  // namespace outpost
