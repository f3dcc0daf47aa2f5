// Copyright 2026 The Outpost Authors.
#include "client/receipts.h"

#include "client/sync_session.h"

namespace outpost {

void Receipts::OnBusy() {
  ctx_.mu.AssertHeld();
  for (auto& [stream, ss] : ctx_.streams) {
    if (ss.receipts.sent_delivered > 0 || ss.receipts.sent_read > 0) ss.receipts.dirty = true;
  }
}

void Receipts::OnWatermark(const wire::Watermark& wm) {
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
    // Our own watermark echoed back once the server stored it: its acknowledgement. (Stored below too: it
    // is this device's own receipt.)
    ReceiptState& rs = ctx_.Of(stream).receipts;
    uint64_t& sent = wm.kind() == wire::WatermarkKind::Read ? rs.sent_read : rs.sent_delivered;
    if (wm.seq() >= sent) sent = 0;
  }
  std::string key = keys::WatermarkKey(stream, user, device, static_cast<uint8_t>(wm.kind()));
  auto txn = ctx_.store->BeginWrite();
  if (!txn.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    return;
  }
  std::string v;
  Status st = (*txn)->Get(kWatermarks, key, &v);
  if (st.ok() && v.size() == 8 && keys::GetBE64(v) >= wm.seq()) return;  // watermarks never move back
  v.clear();
  keys::PutBE64(&v, wm.seq());
  st = (*txn)->Put(kWatermarks, key, v);
  if (st.ok())
    st = ctx_.store->Commit(txn->get(), {}, {{Change::Kind::kWatermark, std::string(stream), OpId()}});
  if (!st.ok()) ctx_.Count([](ClientStats& s) { ++s.store_errors; });
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
