// Copyright 2026 The Outpost Authors.
#include "client/receipts.h"

#include <algorithm>
#include <vector>

#include "client/sync_session.h"

namespace outpost {

void Receipts::OnBusy() {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) {
    if (ss.receipts.sent_delivered > 0 || ss.receipts.sent_read > 0) ss.receipts.dirty = true;
  }
}

void Receipts::OnWatermark(const wire::Watermark& wm, int64_t now) {
  ctx_.mu.AssertHeld();
  std::string_view stream = codec::Str(wm.stream());
  std::string_view user = codec::Str(wm.user());
  std::string_view device = codec::Str(wm.device());
  if (!keys::ValidateStream(stream, 255).ok() || user.size() > 255 || device.empty() || device.size() > 255 ||
      wm.kind() > wire::WatermarkKind::MAX) {
    ctx_.Count([](ClientStats& s) { ++s.bad_frames; });
    return;
  }
  if (user == ctx_.user && device == ctx_.device) {
    // Our own watermark echoed back once the server stored it: its acknowledgement. (Stored too: it is
    // this device's own receipt.)
    ReceiptState& rs = ctx_.Of(stream).receipts;
    uint64_t& sent = wm.kind() == wire::WatermarkKind::Read ? rs.sent_read : rs.sent_delivered;
    if (wm.seq() >= sent) sent = 0;
  }
  if (received_.empty()) received_since_ = now;
  const auto kind = static_cast<WatermarkKind>(wm.kind());
  auto [it, fresh] = received_.try_emplace(
      keys::WatermarkKey(stream, user, device, static_cast<uint8_t>(kind)),
      Received{std::string(stream), std::string(user), std::string(device), kind, wm.seq()});
  if (!fresh) it->second.seq = std::max(it->second.seq, wm.seq());
}

void Receipts::StoreReceived(int64_t now, bool now_too) {
  ctx_.mu.AssertHeld();
  // A wall clock stepped back (now < received_since_) must not hold them: stored at once then.
  if (received_.empty() || (!now_too && now >= received_since_ && now - received_since_ < kStoreDelayMs)) {
    return;
  }
  std::map<std::string, Received> received;
  received.swap(received_);
  auto txn = ctx_.store->BeginWrite();
  Status st = txn.status();
  std::vector<Change> changes;
  for (auto it = received.begin(); st.ok() && it != received.end(); ++it) {
    const auto& [key, mark] = *it;
    std::string v;
    st = (*txn)->Get(kWatermarks, key, &v);
    if (st.ok() && v.size() == 8 && keys::GetBE64(v) >= mark.seq) continue;  // never moves back
    if (st.IsNotFound() || st.ok()) {
      v.clear();
      keys::PutBE64(&v, mark.seq);
      st = (*txn)->Put(kWatermarks, key, v);
    }
    if (st.ok()) {
      Change c;
      c.kind = Change::Kind::kWatermark;
      c.stream = mark.stream;
      c.seq = mark.seq;
      c.user = mark.user;
      c.device = mark.device;
      c.watermark = mark.kind;
      changes.push_back(std::move(c));
    }
  }
  if (st.ok() && !changes.empty()) st = ctx_.store->Commit(txn->get(), {}, changes);
  if (!st.ok()) {
    // Kept for the next try (the server sends another device's watermarks only once per session).
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    if (received_.empty()) received_since_ = now;
    for (auto& [key, mark] : received) {
      auto [it, fresh] = received_.try_emplace(key, std::move(mark));
      if (!fresh) it->second.seq = std::max(it->second.seq, mark.seq);
    }
  }
}

void Receipts::Send() {
  ctx_.mu.AssertHeld();
  const bool read_receipts = read_receipts_;
  std::unique_ptr<ReadTxn> txn;
  for (auto& [stream, ss] : ctx_.streams) {
    ReceiptState& rs = ss.receipts;
    if (!rs.dirty) continue;
    rs.dirty = false;
    if (ss.cursor > 0) {
      ctx_.session->Send(codec::EncodeWatermark(stream, {}, {}, WatermarkKind::kDelivered, ss.cursor));
      rs.sent_delivered = ss.cursor;
    }
    if (!read_receipts) continue;
    if (!txn) {
      auto t = ctx_.store->BeginRead();
      if (!t.ok()) {
        ctx_.Count([](ClientStats& s) { ++s.store_errors; });
        rs.dirty = true;
        return;
      }
      txn = std::move(t).value();
    }
    keys::StreamMeta meta;
    if (DeviceStore::LoadMeta(txn.get(), stream, &meta).ok() && meta.read_seq > 0) {
      ctx_.session->Send(codec::EncodeWatermark(stream, {}, {}, WatermarkKind::kRead, meta.read_seq));
      rs.sent_read = meta.read_seq;
    }
  }
}

}  // namespace outpost
