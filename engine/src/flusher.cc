// Copyright 2026 The Outpost Authors.
//
// Flush: outbox → server. Per stream, ops go out in device_counter order, pipelined (up to
// batches_inflight_max batches in flight over all streams). The server applies only counter last+1, so:
//  - a lost or reordered batch is answered "Gap": sending restarts after the server's last counter;
//  - a batch with no answer in ack_timeout_ms is resent (idempotent by op id) after a jittered backoff;
//  - "Conflict" (our counters were used by another copy of this store) renumbers the stream's outbox from
//    the conflicting op on, once nothing of it is in flight.
// Each answer is applied in one transaction with the outbox entries it settles.
#include <algorithm>
#include <set>

#include "client_impl.h"

namespace outpost {

void Client::Impl::CheckTimeouts(int64_t now) {
  std::vector<Inflight> expired;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (now - it->second.sent_at >= opt_.ack_timeout_ms) {
      expired.push_back(std::move(it->second));
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
  if (expired.empty()) return;
  std::vector<Change> changes;
  auto txn = store_->BeginWrite();
  if (txn.ok()) {
    // No answer is ambiguous: the server may have applied them. Resending is safe; count the attempt.
    for (const Inflight& b : expired) {
      for (const OpId& id : b.ids) {
        std::string vkey;
        OpInfo op;
        uint64_t local_seq = 0;
        if (!LoadOp(txn->get(), id, &vkey, &op, &local_seq).ok() || op.state != OpState::kPending) continue;
        ++op.attempts;
        op.next_attempt_at_ms = now + Backoff(op.attempts, opt_.backoff_cap_ms);
        op.last_error = "no answer from the server in " + std::to_string(opt_.ack_timeout_ms) + " ms";
        op.last_error_code = Status::Code::kTimeout;
        if (PutOp(txn->get(), vkey, op, local_seq).ok())
          changes.push_back({Change::Kind::kUpdated, op.stream, id});
      }
    }
    if (!(*txn)->Commit().ok()) changes.clear();
  }
  for (const Inflight& b : expired) {
    StreamSync& ss = SyncOf(b.stream);
    if (ss.inflight > 0) --ss.inflight;
    ss.sent_upto = std::min(ss.sent_upto, b.first_counter - 1);
    ++ss.epoch;
    dirty_.insert(b.stream);
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.timeouts += expired.size();
  }
  Emit(changes);
}

void Client::Impl::Renumber() {
  for (auto& [stream, ss] : streams_) {
    if (!ss.renumber || ss.inflight > 0) continue;
    auto txn_or = store_->BeginWrite();
    if (!txn_or.ok()) return;
    WriteTxn* txn = txn_or->get();
    const std::string prefix = keys::StreamPrefix(stream);
    // The entries from the first conflicting counter on (in counter order, which is submit order).
    std::vector<std::string> old_keys, values;
    {
      auto cur = txn->NewCursor(kOutbox);
      for (cur->Seek(keys::OutboxKey(stream, std::min<uint64_t>(ss.renumber_from, ss.renumber_after + 1)));
           cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
        old_keys.emplace_back(cur->key());
        values.emplace_back(cur->value());
      }
      if (!cur->status().ok()) return;
    }
    Status st;
    // Delete every old key first: old and new counter ranges may overlap.
    for (const auto& k : old_keys) {
      if (st.ok()) st = txn->Delete(kOutbox, k);
    }
    uint64_t counter = ss.renumber_after;
    for (const auto& v : values) {
      ++counter;
      if (st.ok()) st = txn->Put(kOutbox, keys::OutboxKey(stream, counter), v);
      if (v.size() != 17 || v[0] == static_cast<char>(keys::kOutboxSkip)) continue;
      auto id = OpId::FromBytes(std::string_view(v).substr(1));
      std::string vkey;
      OpInfo op;
      uint64_t local_seq = 0;
      if (st.ok() && id.ok() && LoadOp(txn, *id, &vkey, &op, &local_seq).ok()) {
        op.device_counter = counter;
        st = PutOp(txn, vkey, op, local_seq);
      }
    }
    keys::StreamMeta m;
    if (st.ok()) st = LoadMeta(txn, stream, &m);
    m.next_counter = counter + 1;
    if (st.ok()) st = PutMeta(txn, stream, m);
    if (st.ok()) st = txn->Commit();
    if (!st.ok()) return;  // tried again next step
    ss.renumber = false;
    ss.renumber_after = 0;
    ss.renumber_from = UINT64_MAX;
    ss.sent_upto = 0;
    ++ss.epoch;
    dirty_.insert(stream);
  }
}

void Client::Impl::Flush(int64_t now) {
  next_wake_ms_ = 0;
  // Round robin: one batch per stream per pass, so one busy stream does not starve the others.
  bool progress = true;
  while (progress && inflight_.size() < opt_.batches_inflight_max && !dirty_.empty()) {
    progress = false;
    std::vector<std::string> streams(dirty_.begin(), dirty_.end());
    for (const auto& stream : streams) {
      if (inflight_.size() >= opt_.batches_inflight_max) break;
      StreamSync& ss = SyncOf(stream);
      if (ss.renumber) continue;
      if (SendBatch(stream, now)) progress = true;
    }
  }
}

bool Client::Impl::ProbeUnanswered(const std::string& stream, uint64_t batch_first) {
  const uint64_t probe_upto = SyncOf(stream).probe_upto;
  if (batch_first != 0 && batch_first <= probe_upto) return true;
  for (const auto& [id, batch] : inflight_) {
    if (batch.stream == stream && batch.first_counter <= probe_upto) return true;
  }
  return false;
}

namespace {
// What one op costs in a Push beyond its payload, kind and stream (they are repeated per op).
constexpr size_t kOpOverheadBytes = 128;
// Room kept in a Push frame for its own fields.
size_t PushBytesMax(uint32_t frame_bytes_max) {
  size_t limit = frame_bytes_max > 0 ? frame_bytes_max : 4u << 20;
  return limit > 8192 ? limit - 4096 : limit / 2;
}
}  // namespace

Status Client::Impl::OverServerLimits(const OpInfo& op) const {
  if (server_payload_bytes_max_ > 0 && op.payload.size() > server_payload_bytes_max_) {
    return Status::InvalidArgument("payload of " + std::to_string(op.payload.size()) +
                                   " bytes exceeds the server's payload_bytes_max " +
                                   std::to_string(server_payload_bytes_max_));
  }
  if (server_kind_bytes_max_ > 0 && op.kind.size() > server_kind_bytes_max_) {
    return Status::InvalidArgument("kind of " + std::to_string(op.kind.size()) +
                                   " bytes exceeds the server's kind_bytes_max " +
                                   std::to_string(server_kind_bytes_max_));
  }
  if (server_stream_id_bytes_max_ > 0 && op.stream.size() > server_stream_id_bytes_max_) {
    return Status::InvalidArgument("stream id of " + std::to_string(op.stream.size()) +
                                   " bytes exceeds the server's stream_id_bytes_max " +
                                   std::to_string(server_stream_id_bytes_max_));
  }
  size_t op_bytes = op.payload.size() + op.kind.size() + op.stream.size() + kOpOverheadBytes;
  if (server_frame_bytes_max_ > 0 && op_bytes > PushBytesMax(server_frame_bytes_max_)) {
    return Status::InvalidArgument("op of " + std::to_string(op_bytes) +
                                   " bytes does not fit the server's frame_bytes_max " +
                                   std::to_string(server_frame_bytes_max_));
  }
  return Status::OK();
}

bool Client::Impl::SendBatch(const std::string& stream, int64_t now) {
  StreamSync& ss = SyncOf(stream);
  uint32_t ops_max = opt_.ops_per_batch_max;
  if (server_ops_per_batch_max_ > 0) ops_max = std::min(ops_max, server_ops_per_batch_max_);
  const size_t bytes_max = PushBytesMax(server_frame_bytes_max_);

  struct Release {
    OpId id;
    Status why;
  };
  std::vector<Release> releases;
  flatbuffers::FlatBufferBuilder b(4096);
  std::vector<flatbuffers::Offset<wire::Op>> ops;
  std::vector<OpId> ids;
  uint64_t first = 0, last = 0;
  size_t bytes = 0;
  bool at_end = false;  // nothing after the last entry looked at
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) return false;
    keys::StreamMeta meta;
    if (!LoadMeta(txn->get(), stream, &meta).ok()) return false;
    bool block = meta.block_on_failure == 1 || (meta.block_on_failure == 0 && opt_.block_stream_on_failure);
    if (block && meta.failed > 0) {
      dirty_.erase(stream);  // Retry or Discard marks it dirty again
      return false;
    }
    std::string prefix = keys::StreamPrefix(stream);
    auto cur = (*txn)->NewCursor(kOutbox);
    cur->Seek(keys::OutboxKey(stream, ss.sent_upto + 1));
    at_end = true;
    for (; cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
      if (ops.size() >= ops_max) {
        at_end = false;
        break;
      }
      uint64_t counter = keys::GetBE64(cur->key().substr(prefix.size()));
      if (counter > ss.probe_upto && ProbeUnanswered(stream, ops.empty() ? 0 : first)) {
        at_end = false;  // sent once the ops up to probe_upto are answered (client_impl.h)
        break;
      }
      std::string_view v = cur->value();
      auto id = OpId::FromBytes(v.size() == 17 ? v.substr(1) : std::string_view());
      if (!id.ok()) {
        at_end = false;
        break;
      }
      codec::OpFields f;
      f.op_id = *id;
      f.stream = stream;
      f.device_counter = counter;
      OpInfo op;
      std::string vkey;
      uint64_t local_seq = 0;
      f.retry = v[0] == static_cast<char>(keys::kOutboxRetry);
      if (v[0] == static_cast<char>(keys::kOutboxSkip)) {
        f.skip = true;
      } else {
        Status st = LoadOp(txn->get(), *id, &vkey, &op, &local_seq);
        if (!st.ok()) {
          at_end = false;
          break;
        }
      }
      if (!f.skip && op.state == OpState::kSent) {
        // Applied already under an older counter (a retried op settled by a pull): this counter only needs
        // consuming, and nothing may move the op out of sent.
        f.skip = true;
      } else if (!f.skip) {
        bool exhausted = (opt_.attempts_max > 0 && op.attempts >= opt_.attempts_max) ||
                         (opt_.age_ms_max > 0 && now - op.created_at_ms >= opt_.age_ms_max);
        if (exhausted) {
          releases.push_back(
              {*id, Status::Timeout("exhausted: no answer after " + std::to_string(op.attempts) +
                                    " attempts over " + std::to_string(now - op.created_at_ms) + " ms")});
          at_end = false;
          break;
        }
        if (op.next_attempt_at_ms > now) {  // backing off: the stream waits, in order
          next_wake_ms_ =
              next_wake_ms_ == 0 ? op.next_attempt_at_ms : std::min(next_wake_ms_, op.next_attempt_at_ms);
          at_end = false;
          break;
        }
        if (!op.depends_on.IsNil()) {
          std::string pkey;
          OpInfo parent;
          Status pst = LoadOp(txn->get(), op.depends_on, &pkey, &parent, nullptr);
          if (pst.ok() && parent.own && parent.state == OpState::kFailed) {
            releases.push_back({*id, Status::FromCode(parent.last_error_code == Status::Code::kOk
                                                          ? Status::Code::kFailedPrecondition
                                                          : parent.last_error_code,
                                                      "dependency failed: " + parent.last_error)});
            at_end = false;
            break;
          }
          if (pst.ok() && parent.own && parent.state != OpState::kSent) {  // waits for its parent
            at_end = false;
            break;
          }
        }
        // Beyond what the server announced in its Welcome, the op would be refused or dropped on every
        // resend and hold up its stream: it fails now, for good, and its counter becomes a skip.
        Status too_big = OverServerLimits(op);
        if (!too_big.ok()) {
          releases.push_back({*id, too_big});
          at_end = false;
          break;
        }
        f.kind = op.kind;
        f.payload = op.payload;
        f.client_time_ms = op.client_time_ms;
        f.depends_on = op.depends_on;
      }
      // Each op costs its payload, kind and stream (repeated per op) plus a fixed overhead; the whole Push
      // must fit the server's frame limit, so an op that would overshoot waits for the next batch.
      size_t op_bytes = f.payload.size() + f.kind.size() + f.stream.size() + kOpOverheadBytes;
      if (!ops.empty() && bytes + op_bytes > bytes_max) {
        at_end = false;
        break;
      }
      if (ops.empty()) first = counter;
      last = counter;
      bytes += op_bytes;
      ops.push_back(codec::BuildOp(b, f));
      ids.push_back(*id);
    }
    if (!cur->status().ok()) return false;
  }
  if (!releases.empty()) {
    // Given up without a server verdict: failed with the reason, the counter becomes a skip.
    std::vector<Change> changes;
    Tally tally;
    auto txn = store_->BeginWrite();
    if (!txn.ok()) return false;
    keys::StreamMeta meta;
    Status st = LoadMeta(txn->get(), stream, &meta);
    for (auto& r : releases) {
      std::string vkey;
      OpInfo op;
      uint64_t local_seq = 0;
      if (st.ok()) st = LoadOp(txn->get(), r.id, &vkey, &op, &local_seq);
      if (st.ok()) {
        st = MarkFailed(txn->get(), vkey, op, local_seq, r.why, /*release_counter=*/true, &meta, &tally);
      }
      changes.push_back({Change::Kind::kUpdated, stream, r.id});
    }
    if (st.ok()) st = PutMeta(txn->get(), stream, meta);
    if (st.ok()) st = (*txn)->Commit();
    if (st.ok()) {
      ApplyTally(tally);
      Emit(changes);
    }
    // Send what was collected before the released op; the skip goes in the next batch.
  }
  if (ops.empty()) {
    if (at_end) dirty_.erase(stream);
    return !releases.empty();
  }
  uint64_t batch_id = next_batch_id_++;
  auto ov = b.CreateVector(ops);
  auto push = wire::CreatePush(b, batch_id, ov);
  Send(codec::FinishFrame(b, wire::Body::Push, push.Union()));
  inflight_[batch_id] = Inflight{stream, ss.epoch, now, first, std::move(ids)};
  ss.sent_upto = last;
  ++ss.inflight;
  if (at_end) dirty_.erase(stream);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.batches_sent;
    stats_.ops_sent += ops.size();
  }
  return true;
}

// The answers to one PushAck, worked out inside a write transaction and put into effect (in memory, for
// observers) only once that transaction committed. Several acks share one transaction (OnPushAcks).
struct Client::Impl::AckEffects {
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
};

void Client::Impl::ResendUnanswered(const AckEffects& fx) {
  if (!fx.current) return;
  for (const OpId& id : fx.batch.ids) {
    if (fx.answered.count(id) == 0) {
      // Ops of the batch that this ack does not settle or answer must be sent again: no timeout covers
      // them now.
      StreamSync& ss = SyncOf(fx.stream);
      ss.sent_upto = std::min(ss.sent_upto, fx.batch.first_counter - 1);
      ++ss.epoch;
      dirty_.insert(fx.stream);
      return;
    }
  }
}

Status Client::Impl::ApplyAck(WriteTxn* txn, const wire::PushAck& ack, int64_t now, AckEffects* fx) {
  const std::string& stream = fx->stream;
  StreamSync& ss = SyncOf(stream);
  const uint64_t batch_epoch = fx->current ? fx->batch.epoch : 0;
  keys::StreamMeta meta;
  Status st = LoadMeta(txn, stream, &meta);
  std::vector<uint64_t> own_seqs;  // seqs of our ops now in the view, to advance the cursor over
  for (const wire::OpResult* r : *ack.results()) {
    if (!st.ok()) break;
    OpId id = codec::FromWire(r->op_id());
    uint64_t counter = r->counter();
    std::string okey = keys::OutboxKey(stream, counter);
    std::string v;
    Status got = txn->Get(kOutbox, okey, &v);
    if (!got.ok() || v.size() != 17 || v.substr(1) != id.AsBytes()) continue;  // stale or already settled
    bool skip = v[0] == static_cast<char>(keys::kOutboxSkip);
    if (r->code() == wire::ResultCode::Applied || r->code() == wire::ResultCode::Duplicate) {
      // A seq is never 0, and one seq holds one op: an answer that says otherwise is ignored (the op is
      // resent or settled by the pull).
      std::string target = keys::ViewKey(stream, keys::kSectionSent, r->seq());
      std::string occupant, own_key;
      bool taken = txn->Get(kView, target, &occupant).ok() &&
                   !(txn->Get(kOpIndex, id.AsBytes(), &own_key).ok() && own_key == target);
      if (r->seq() == 0 || taken) continue;
    }
    fx->answered.insert(id);
    std::string vkey;
    OpInfo op;
    uint64_t local_seq = 0;
    Status found = LoadOp(txn, id, &vkey, &op, &local_seq);
    switch (r->code()) {
      case wire::ResultCode::Applied:
      case wire::ResultCode::Duplicate:
        ++fx->acks;
        st = txn->Delete(kOutbox, okey);
        ++fx->settled;
        if (st.ok() && found.ok() && op.own) {
          bool refused = false;
          st = SettleOp(txn, vkey, op, local_seq, r->seq(), &meta, &fx->changes, &fx->tally, &refused);
          if (!refused) own_seqs.push_back(r->seq());
        }
        break;
      case wire::ResultCode::Skipped:
        ++fx->acks;
        st = txn->Delete(kOutbox, okey);
        ++fx->settled;
        break;
      case wire::ResultCode::Rejected:
        ++fx->acks;
        st = txn->Delete(kOutbox, okey);
        ++fx->settled;
        if (st.ok() && !skip && found.ok() && op.state == OpState::kPending) {
          Status why = Status::FromCode(static_cast<Status::Code>(r->error_code()), codec::Str(r->message()));
          if (why.ok()) why = Status::InvalidArgument(codec::Str(r->message()));
          st = MarkFailed(txn, vkey, op, local_seq, why, /*release_counter=*/false, &meta, &fx->tally);
          fx->changes.push_back({Change::Kind::kUpdated, stream, id});
        }
        break;
      case wire::ResultCode::Gap:
        if (fx->current && batch_epoch == ss.epoch) {
          fx->restart = true;
          fx->restart_after = std::min(fx->restart_after, r->last_counter());
        }
        break;
      case wire::ResultCode::Conflict:
        ss.renumber = true;
        ss.renumber_after = std::max(ss.renumber_after, r->last_counter());
        ss.renumber_from = std::min(ss.renumber_from, counter);
        break;
      case wire::ResultCode::Retry:
        if (found.ok() && !skip && op.state == OpState::kPending) {
          ++op.attempts;
          op.next_attempt_at_ms = now + Backoff(op.attempts, opt_.backoff_cap_ms);
          op.last_error = std::string(codec::Str(r->message()));
          op.last_error_code = static_cast<Status::Code>(r->error_code());
          st = PutOp(txn, vkey, op, local_seq);
          fx->changes.push_back({Change::Kind::kUpdated, stream, id});
        }
        fx->restart = true;
        fx->restart_after = std::min(fx->restart_after, counter - 1);
        break;
    }
  }
  meta.outbox = meta.outbox >= static_cast<uint64_t>(fx->settled) ? meta.outbox - fx->settled : 0;
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
  if (st.ok()) st = PutMeta(txn, stream, meta);
  return st;
}

void Client::Impl::FinishAck(AckEffects& fx, bool committed) {
  if (!committed) {
    ResendUnanswered(AckEffects{fx.stream, fx.current, fx.batch});  // nothing settled: resend everything
    return;
  }
  StreamSync& ss = SyncOf(fx.stream);
  fx.tally.outbox -= fx.settled;
  ApplyTally(fx.tally);
  ResendUnanswered(fx);
  if (fx.own_high > 0) ss.server_high = std::max(ss.server_high, fx.own_high);
  if (fx.cursor_moved) {
    ss.cursor = fx.cursor;
    fx.changes.push_back({Change::Kind::kCursor, fx.stream, OpId()});
    if (ss.cursor >= ss.server_high) ss.wm_dirty = true;
  }
  if (fx.restart) {
    ss.sent_upto = std::min(ss.sent_upto, fx.restart_after);
    ++ss.epoch;
    dirty_.insert(fx.stream);
  }
  if (ss.renumber) dirty_.insert(fx.stream);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.acks += fx.acks;
    if (fx.restart) ++stats_.gaps;
    if (ss.renumber) ++stats_.conflicts;
  }
  Emit(fx.changes);
}

void Client::Impl::OnPushAcks(const std::vector<const wire::PushAck*>& acks, int64_t now) {
  std::vector<AckEffects> effects;
  effects.reserve(acks.size());
  std::unique_ptr<WriteTxn> txn;
  Status st;
  for (const wire::PushAck* ack : acks) {
    AckEffects fx;
    fx.stream = std::string(codec::Str(ack->stream()));
    if (!keys::ValidateStream(fx.stream, 255).ok()) continue;
    StreamSync& ss = SyncOf(fx.stream);
    auto it = inflight_.find(ack->batch_id());
    fx.current = it != inflight_.end() && it->second.stream == fx.stream;
    if (fx.current) {
      fx.batch = std::move(it->second);
      if (ss.inflight > 0) --ss.inflight;
      inflight_.erase(it);
    }
    if (!ack->results()) {
      ResendUnanswered(fx);
      continue;
    }
    if (st.ok() && !txn) {
      auto begun = store_->BeginWrite();
      st = begun.status();
      if (st.ok()) txn = std::move(begun).value();
    }
    if (st.ok()) st = ApplyAck(txn.get(), *ack, now, &fx);
    effects.push_back(std::move(fx));  // after a failure, the rest are only resent
  }
  // One commit (one fsync) for every ack that arrived together.
  if (txn && st.ok()) st = txn->Commit();
  txn.reset();
  for (AckEffects& fx : effects) FinishAck(fx, st.ok());
}

}  // namespace outpost
