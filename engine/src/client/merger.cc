// Copyright 2026 The Outpost Authors.
#include "client/merger.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "client/flusher.h"
#include "client/rebase.h"
#include "client/sync_session.h"
#include "outpost/membership.h"

namespace outpost {

bool Merger::IsOwn(const codec::OpFields& f) const {
  // A device is (user, device id): another user's device may carry the same id.
  return f.device == ctx_.device && f.user == ctx_.user;
}

void Merger::Send(const std::string& stream, uint64_t after_seq, int64_t now) {
  StreamSync& ss = ctx_.Of(stream);
  ctx_.session->Send(codec::EncodePull(stream, after_seq, ctx_.opt.pull_page_max));
  ss.pull.outstanding = true;
  ss.pull.sent_at = now;
  ss.pull.high_at = ss.server_high;
  ctx_.Count([](ClientStats& s) { ++s.pulls; });
}

void Merger::RequestPull(const std::string& stream, uint64_t after_seq, int64_t now) {
  ctx_.mu.AssertHeld();
  if (!ctx_.Of(stream).pull.outstanding) Send(stream, after_seq, now);
}

void Merger::Follow(const std::string& stream, int64_t now) {
  ctx_.mu.AssertHeld();
  StreamSync& ss = ctx_.Of(stream);
  if (ss.followed) return;
  ss.followed = true;
  // Already connected: the server learns of the stream from our first pull of it. Not yet connected: the
  // Welcome's handling pulls it (SyncSession::OnWelcome).
  if (ctx_.session->ready()) RequestPull(stream, ss.cursor, now);
}

Status Merger::FollowJoined(WriteTxn* txn, std::string_view joined, std::set<std::string>* followed) {
  // A stream id the engine would refuse (or a feed) is skipped: the server's word is not trusted to be one.
  if (joined.starts_with(kFeedPrefix) || !keys::ValidateStream(joined, ctx_.opt.stream_id_bytes_max).ok()) {
    return Status::OK();
  }
  const StreamSync* known = nullptr;
  if (auto it = ctx_.streams.find(joined); it != ctx_.streams.end()) known = &it->second;
  if ((known && known->followed) || followed->contains(std::string(joined))) return Status::OK();
  keys::StreamMeta meta;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn, joined, &meta));
  if (!meta.followed) {
    meta.followed = 1;
    OUTPOST_RETURN_IF_ERROR(DeviceStore::PutMeta(txn, joined, meta));
  }
  followed->emplace(joined);
  return Status::OK();
}

bool Merger::idle() const {
  ctx_.mu.AssertHeld();
  for (const auto& [stream, ss] : ctx_.streams) {
    if (ss.followed && (ss.pull.outstanding || ss.cursor < ss.server_high)) return false;
  }
  return true;
}

void Merger::OnDisconnected() {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) ss.pull.outstanding = false;
}

void Merger::OnBusy(int64_t now) {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) {
    if (ss.pull.outstanding) ss.pull.sent_at = now - ctx_.opt.ack_timeout_ms;
  }
}

void Merger::OnNotify(const wire::Notify& notify) {
  ctx_.mu.AssertHeld();
  std::string stream(codec::Str(notify.stream()));
  if (!keys::ValidateStream(stream, 255).ok()) return;
  StreamSync& ss = ctx_.Of(stream);
  ss.server_high = std::max(ss.server_high, notify.high_seq());
  const auto* ops = notify.ops();
  const size_t n = ops ? ops->size() : 0;
  // Live ops that take the cursor further, starting at or before it: merged now. Otherwise (a gap: ops
  // this device missed come first) the head is pulled (SendPulls).
  if (n == 0 || !ss.followed || notify.after_seq() > ss.cursor || notify.after_seq() + n <= ss.cursor) return;
  if (Merge(stream, notify.after_seq(), ops, notify.high_seq())) {
    ctx_.Count([&](ClientStats& s) { ++s.live_merges; });
  }
}

void Merger::SendPulls(int64_t now) {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) {
    if (!ss.followed) continue;
    // A pull with no answer in ack_timeout_ms (lost, or in a server group that failed: Busy) is asked
    // again, even when nothing is known to be behind the cursor: it must not stay outstanding forever.
    const bool unanswered = ss.pull.outstanding && now - ss.pull.sent_at >= ctx_.opt.ack_timeout_ms;
    if (!unanswered && (ss.pull.outstanding || ss.cursor >= ss.server_high)) continue;
    Send(stream, ss.cursor, now);
  }
}

void Merger::OnBatch(const wire::Batch& batch, int64_t now) {
  ctx_.mu.AssertHeld();
  std::string stream(codec::Str(batch.stream()));
  if (!keys::ValidateStream(stream, 255).ok()) return;
  StreamSync& ss = ctx_.Of(stream);
  if (batch.has_more() || batch.ops()) ss.server_high = std::max(ss.server_high, batch.high_seq());
  // A page must start at or before the cursor; ops at or below it are merged already (acks of our own ops
  // advance the cursor too) and are skipped.
  if (batch.after_seq() > ss.cursor) return;  // stale or reordered page
  size_t n = batch.ops() ? batch.ops()->size() : 0;
  if (n == 0 && !batch.has_more() && batch.after_seq() == ss.cursor && ss.server_high == ss.pull.high_at) {
    // The server has nothing after our cursor, and nothing newer was announced since we asked: its word
    // on the high seq is final (a forged or stale Notify must not make us pull forever).
    ss.server_high = std::max(ss.cursor, batch.high_seq());
  }
  ss.pull.outstanding = false;
  if (batch.after_seq() + n <= ss.cursor) return;
  // Ask for the next page before merging this one, so the server builds it while we write.
  if (batch.has_more() && ss.followed) Send(stream, batch.after_seq() + n, now);
  // On a store error, the same page is pulled again (a pipelined next page will be stale).
  if (!Merge(stream, batch.after_seq(), batch.ops(), batch.high_seq())) ss.pull.outstanding = false;
}

bool Merger::Merge(const std::string& stream, uint64_t after_seq,
                   const flatbuffers::Vector<flatbuffers::Offset<wire::Op>>* ops, uint64_t high_seq) {
  StreamSync& ss = ctx_.Of(stream);
  const size_t n = ops ? ops->size() : 0;

  std::vector<Change> changes;
  Tally tally;
  uint64_t settled = 0;
  const auto began = std::chrono::steady_clock::now();
  auto txn_or = ctx_.store->BeginWrite();
  if (!txn_or.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    return false;
  }
  WriteTxn* txn = txn_or->get();
  keys::StreamMeta meta;
  Status st = DeviceStore::LoadMeta(txn, stream, &meta);
  if (st.ok() && meta.cursor != ss.cursor) st = Status::Aborted("cursor moved");  // cannot happen: one merger
  uint64_t seq = ss.cursor;
  // The user's membership feed, when the client follows memberships: every stream it says the user joined
  // is marked followed in this transaction (ClientOptions::follow_memberships).
  const bool follow_joined =
      ctx_.opt.follow_memberships && !ctx_.user.empty() && stream == FeedStream(ctx_.user);
  std::set<std::string> joined;  // streams this page made followed
  bool malformed = false;  // counted as a bad frame: the page stops at its first unsound op
  const bool lost_aside = ctx_.store->lost_count() > 0;
  for (size_t i = 0; i < n && st.ok(); ++i) {
    const wire::Op* wop = ops->Get(i);
    codec::OpFields f = codec::FieldsOf(*wop);
    if (f.seq <= seq && f.seq == after_seq + 1 + i) continue;  // merged already
    if (f.seq != seq + 1 || f.op_id.IsNil() || f.skip) {       // malformed page: keep what is sound
      malformed = true;
      break;
    }
    // A page must never put a second op under an id this store holds (the index would point at the
    // newcomer and the op it held would be lost to Get and shown twice): the index entry is inserted only
    // where none is, and an id already held is looked at below. One index write per op, no read first.
    const std::string view_key = keys::ViewKey(stream, keys::kSectionSent, f.seq);
    Status inserted = txn->Insert(kOpIndex, f.op_id.AsBytes(), view_key);
    if (!inserted.ok() && !inserted.IsAlreadyExists()) {
      st = inserted;
      break;
    }
    if (inserted.IsAlreadyExists()) {
      StoredOp known;
      st = DeviceStore::LoadOp(txn, f.op_id, &known);
      if (!st.ok()) break;
      // Only our own op may come back, in its stream, unsent or sent at this very seq. Anything else (an id
      // we hold claimed by another device, an op id of another stream, a sent op at another seq) is a
      // malformed page: keep what came before it.
      const OpInfo& k = known.op;
      if (!IsOwn(f) || !k.own || k.stream != stream || (k.state == OpState::kSent && k.seq != f.seq)) {
        malformed = true;
        break;
      }
      if (k.state != OpState::kSent) {
        ctx_.flusher->Forget(stream, f.op_id);  // in flight maybe: its ack must not settle it a second time
        // Our op, applied but its ack not seen yet: settle it and drop its outbox entry — only if it was
        // applied under that entry's counter. A retried op applied under its old counter keeps the entry:
        // the server must still consume the new counter (it answers Duplicate), or it would be a hole.
        OutboxEntry entry;
        if (k.state == OpState::kPending && k.device_counter == f.device_counter &&
            DeviceStore::GetEntry(txn, stream, k.device_counter, &entry).ok() && entry.op_id == f.op_id) {
          st = DeviceStore::DeleteEntry(txn, stream, k.device_counter);
          ++settled;
        }
        if (known.op.has_attachment && known.op.attachment.blob_id.empty() && f.has_blob) {
          // Sent, though a power loss here undid the end of its upload: the server's word settles both.
          known.op.attachment.blob_id.assign(f.blob.id);
          if (st.ok()) st = DeviceStore::DeleteUpload(txn, f.op_id);
        }
        bool refused = false;
        if (st.ok()) {
          st = DeviceStore::SettleOp(txn, known, f.seq, &meta, &changes, &tally, &refused, f.device_counter);
        }
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
    if (f.has_blob) {
      op.has_attachment = true;
      op.attachment.blob_id.assign(f.blob.id);
      op.attachment.size = f.blob.size;
      op.attachment.content_type.assign(f.blob.content_type);
      op.attachment.sha256.assign(f.blob.sha256);
    }
    st = DeviceStore::PutRecord(txn, view_key, op, /*local_seq=*/0);  // its index entry is in already
    // An op a rebase set aside is back (its author re-sent it, or the server still had it).
    if (st.ok() && lost_aside) st = RecoverLost(txn, f.op_id, &tally);
    seq = f.seq;
    tally.NoteMembers(op, 0);
    if (st.ok() && follow_joined && op.kind == kJoinedKind) st = FollowJoined(txn, op.payload, &joined);
    changes.push_back(OpChange(Change::Kind::kAdded, op));
  }
  if (malformed) ctx_.Count([](ClientStats& s) { ++s.bad_frames; });
  if (seq == ss.cursor) return true;
  meta.cursor = seq;
  meta.high_seq = std::max(meta.high_seq, high_seq);
  meta.followed = 1;
  DeviceStore::TakeOutbox(&meta, settled);
  tally.outbox -= static_cast<int64_t>(settled);
  Change cursor_moved;
  cursor_moved.kind = Change::Kind::kCursor;
  cursor_moved.stream = stream;
  cursor_moved.seq = seq;
  changes.push_back(std::move(cursor_moved));
  if (st.ok()) st = DeviceStore::PutMeta(txn, stream, meta);
  if (st.ok()) st = ctx_.store->Commit(txn, tally, changes);
  txn_or->reset();
  if (!st.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    return false;
  }
  const uint64_t merged = seq - ss.cursor;
  ss.cursor = seq;
  for (const std::string& j : joined) Follow(j, ctx_.env->NowMs());
  // One delivered watermark when caught up, not one per page (each costs the server a durable write).
  if (ss.cursor >= ss.server_high) ss.receipts.dirty = true;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ctx_.Count([&](ClientStats& s) {
    s.ops_merged += merged;
    s.merge_seconds.Observe(seconds);
  });
  return true;
}

}  // namespace outpost
