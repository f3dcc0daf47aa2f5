// Copyright 2026 The Outpost Authors.
//
// Merge: server → device. A stream is pulled from its cursor in pages; each page is merged in one
// transaction with the cursor: others' ops are inserted at their seq, this device's own unsent ops with the
// same op id settle at their seq. Ops at or below the cursor are skipped and a page that starts after the
// cursor is ignored (stale or reordered), so nothing is merged twice or skipped, crash or not.
#include <algorithm>

#include "client_impl.h"

namespace outpost {

bool Client::Impl::IsOwn(const codec::OpFields& f) const {
  // A device is (user, device id): another user's device may carry the same id.
  return f.device == device_ && f.user == user_;
}

void Client::Impl::SendPulls(int64_t now) {
  for (auto& [stream, ss] : streams_) {
    if (!ss.followed) continue;
    // A pull with no answer in ack_timeout_ms (lost, or in a server group that failed: Busy) is asked
    // again, even when nothing is known to be behind the cursor: it must not stay outstanding forever.
    const bool unanswered = ss.pull_outstanding && now - ss.pull_sent_at >= opt_.ack_timeout_ms;
    if (!unanswered && (ss.pull_outstanding || ss.cursor >= ss.server_high)) continue;
    Send(codec::EncodePull(stream, ss.cursor, opt_.pull_page_max));
    ss.pull_outstanding = true;
    ss.pull_sent_at = now;
    ss.high_at_pull = ss.server_high;
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.pulls;
  }
}

void Client::Impl::OnBatch(const wire::Batch& batch, int64_t now) {
  std::string stream(codec::Str(batch.stream()));
  if (!keys::ValidateStream(stream, 255).ok()) return;
  StreamSync& ss = SyncOf(stream);
  if (batch.has_more() || batch.ops()) ss.server_high = std::max(ss.server_high, batch.high_seq());
  // A page must start at or before the cursor; ops at or below it are merged already (acks of our own ops
  // advance the cursor too) and are skipped.
  if (batch.after_seq() > ss.cursor) return;  // stale or reordered page
  size_t n = batch.ops() ? batch.ops()->size() : 0;
  if (n == 0 && !batch.has_more() && batch.after_seq() == ss.cursor && ss.server_high == ss.high_at_pull) {
    // The server has nothing after our cursor, and nothing newer was announced since we asked: its word
    // on the high seq is final (a forged or stale Notify must not make us pull forever).
    ss.server_high = std::max(ss.cursor, batch.high_seq());
  }
  ss.pull_outstanding = false;
  if (batch.after_seq() + n <= ss.cursor) return;
  if (batch.has_more() && ss.followed) {
    // Ask for the next page before merging this one, so the server builds it while we write.
    Send(codec::EncodePull(stream, batch.after_seq() + n, opt_.pull_page_max));
    ss.pull_outstanding = true;
    ss.pull_sent_at = now;
    ss.high_at_pull = ss.server_high;
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.pulls;
  }

  std::vector<Change> changes;
  Tally tally;
  int64_t settled = 0;
  auto txn_or = store_->BeginWrite();
  if (!txn_or.ok()) return;  // pulled again after the timeout
  WriteTxn* txn = txn_or->get();
  keys::StreamMeta meta;
  Status st = LoadMeta(txn, stream, &meta);
  if (st.ok() && meta.cursor != ss.cursor) st = Status::Aborted("cursor moved");  // cannot happen: one merger
  uint64_t seq = ss.cursor;
  bool malformed = false;  // counted as a bad frame: the page stops at its first unsound op
  for (size_t i = 0; i < n && st.ok(); ++i) {
    const wire::Op* wop = batch.ops()->Get(i);
    codec::OpFields f = codec::FieldsOf(*wop);
    if (f.seq <= seq && f.seq == batch.after_seq() + 1 + i) continue;  // merged already
    if (f.seq != seq + 1 || f.op_id.IsNil() || f.skip) {               // malformed page: keep what is sound
      malformed = true;
      break;
    }
    // Every id is looked up, not only this device's: a page must never put a second op under an id this
    // store holds (the index would point at the newcomer and the op it held would be lost to Get and shown
    // twice). Usually a miss: one index read per op.
    std::string vkey;
    OpInfo known;
    uint64_t local_seq = 0;
    Status found = LoadOp(txn, f.op_id, &vkey, &known, &local_seq);
    if (!found.ok() && !found.IsNotFound()) {
      st = found;
      break;
    }
    if (found.ok()) {
      // Only our own op may come back, in its stream, unsent or sent at this very seq. Anything else (an id
      // we hold claimed by another device, an op id of another stream, a sent op at another seq) is a
      // malformed page: keep what came before it.
      if (!IsOwn(f) || !known.own || known.stream != stream ||
          (known.state == OpState::kSent && known.seq != f.seq)) {
        malformed = true;
        break;
      }
      if (known.state != OpState::kSent) {
        // Our op, applied but its ack not seen yet: settle it and drop its outbox entry — only if it was
        // applied under that entry's counter. A retried op applied under its old counter keeps the entry:
        // the server must still consume the new counter (it answers Duplicate), or it would be a hole.
        std::string okey = keys::OutboxKey(stream, known.device_counter);
        std::string v;
        if (known.state == OpState::kPending && known.device_counter == f.device_counter &&
            txn->Get(kOutbox, okey, &v).ok() && v.size() == 17 && v.substr(1) == f.op_id.AsBytes()) {
          st = txn->Delete(kOutbox, okey);
          ++settled;
        }
        bool refused = false;
        if (st.ok())
          st = SettleOp(txn, vkey, known, local_seq, f.seq, &meta, &changes, &tally, &refused,
                        f.device_counter);
        if (refused) {
          // The server rejected this op for good; a page that shows it applied is not to be believed.
          malformed = true;
          break;
        }
      }
      seq = f.seq;
      continue;
    }
    OpInfo op;
    op.op_id = f.op_id;
    op.stream = stream;
    op.kind.assign(f.kind);
    op.payload.assign(f.payload);
    op.user.assign(f.user);
    op.device.assign(f.device);
    op.own = IsOwn(f);
    op.state = OpState::kSent;
    op.seq = f.seq;
    op.device_counter = f.device_counter;
    op.client_time_ms = f.client_time_ms;
    op.depends_on = f.depends_on;
    st = PutOp(txn, keys::ViewKey(stream, keys::kSectionSent, f.seq), op, 0);
    seq = f.seq;
    changes.push_back({Change::Kind::kAdded, stream, op.op_id});
  }
  if (malformed) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.bad_frames;
  }
  if (seq == ss.cursor) return;
  meta.cursor = seq;
  meta.high_seq = std::max(meta.high_seq, batch.high_seq());
  meta.followed = 1;
  meta.outbox = meta.outbox >= static_cast<uint64_t>(settled) ? meta.outbox - settled : 0;
  if (st.ok()) st = PutMeta(txn, stream, meta);
  if (st.ok()) st = txn->Commit();
  txn_or->reset();
  if (!st.ok()) {
    ss.pull_outstanding = false;  // pull the same page again (a pipelined next page will be stale)
    return;
  }
  tally.outbox -= settled;
  ApplyTally(tally);
  uint64_t merged = seq - ss.cursor;
  ss.cursor = seq;
  // One delivered watermark when caught up, not one per page (each costs the server a durable write).
  if (ss.cursor >= ss.server_high) ss.wm_dirty = true;
  changes.push_back({Change::Kind::kCursor, stream, OpId()});
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.ops_merged += merged;
  }
  Emit(changes);
}

void Client::Impl::OnWatermark(const wire::Watermark& wm) {
  std::string_view stream = codec::Str(wm.stream());
  std::string_view user = codec::Str(wm.user());
  std::string_view device = codec::Str(wm.device());
  if (!keys::ValidateStream(stream, 255).ok() || user.size() > 255 || device.empty() || device.size() > 255 ||
      wm.kind() > wire::WatermarkKind::MAX) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.bad_frames;
    return;
  }
  if (user == user_ && device == device_) {
    // Our own watermark echoed back once the server stored it: its acknowledgement. (Stored below too: it
    // is this device's own receipt.)
    StreamSync& ss = SyncOf(stream);
    uint64_t& sent = wm.kind() == wire::WatermarkKind::Read ? ss.wm_sent_read : ss.wm_sent_delivered;
    if (wm.seq() >= sent) sent = 0;
  }
  std::string key = keys::WatermarkKey(stream, user, device, static_cast<uint8_t>(wm.kind()));
  auto txn = store_->BeginWrite();
  if (!txn.ok()) return;
  std::string v;
  Status st = (*txn)->Get(kWatermarks, key, &v);
  if (st.ok() && v.size() == 8 && keys::GetBE64(v) >= wm.seq()) return;  // watermarks never move back
  v.clear();
  keys::PutBE64(&v, wm.seq());
  if (!(*txn)->Put(kWatermarks, key, v).ok() || !(*txn)->Commit().ok()) return;
  Emit({{Change::Kind::kWatermark, std::string(stream), OpId()}});
}

void Client::Impl::SendWatermarks() {
  bool read_receipts;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    read_receipts = read_receipts_;
  }
  std::unique_ptr<ReadTxn> txn;
  for (auto& [stream, ss] : streams_) {
    if (!ss.wm_dirty) continue;
    ss.wm_dirty = false;
    if (ss.cursor > 0) {
      Send(codec::EncodeWatermark(stream, {}, {}, WatermarkKind::kDelivered, ss.cursor));
      ss.wm_sent_delivered = ss.cursor;
    }
    if (!read_receipts) continue;
    if (!txn) {
      auto t = store_->BeginRead();
      if (!t.ok()) return;
      txn = std::move(t).value();
    }
    keys::StreamMeta meta;
    if (LoadMeta(txn.get(), stream, &meta).ok() && meta.read_seq > 0) {
      Send(codec::EncodeWatermark(stream, {}, {}, WatermarkKind::kRead, meta.read_seq));
      ss.wm_sent_read = meta.read_seq;
    }
  }
}

}  // namespace outpost
