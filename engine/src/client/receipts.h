// Copyright 2026 The Outpost Authors.
//
// Receipts: watermarks. Out: this device's delivered watermark (its cursor, once caught up) and, when read
// receipts are on, its read watermark (MarkRead). In: every device's watermarks of a stream, stored
// monotonically; our own echoed back is the server's acknowledgement of it.
//
// Watermarks that come in are stored together, at most kStoreDelayMs after the first of them (StoreReceived):
// a device in a stream of N members hears of up to 2N receipts per message, and a session's first page
// brings every stored watermark of a stream at once, so one commit (one fsync) per frame would cost more
// than the messages themselves, and would sit in the way of the next op's send. Nothing is lost if a crash
// comes first: the server sends every other device's watermarks again in the next session, and this
// device's own again after its next report. A watermark is readable (Client::Watermarks) and its change
// event emitted once stored.
#ifndef OUTPOST_SRC_CLIENT_RECEIPTS_H_
#define OUTPOST_SRC_CLIENT_RECEIPTS_H_

#include <atomic>
#include <map>
#include <string>
#include <utility>

#include "client/sync_context.h"
#include "codec.h"

namespace outpost {

class Receipts {
 public:
  Receipts(SyncContext& ctx, bool read_receipts) : ctx_(ctx), read_receipts_(read_receipts) {}

  void Send();
  // Takes a watermark in; it is stored (and its change event emitted) by StoreReceived.
  void OnWatermark(const wire::Watermark& wm, int64_t now);
  // Stores the watermarks taken in, in one transaction, once the first of them waited kStoreDelayMs (or at
  // once with `now_too`). On a store error they are counted (ClientStats::store_errors) and kept for the
  // next call.
  void StoreReceived(int64_t now, bool now_too);
  // Nothing taken in and not yet stored.
  bool idle() const {
    ctx_.mu.AssertHeld();
    return received_.empty();
  }

  static constexpr int64_t kStoreDelayMs = 50;
  // The server could not make a group durable: watermarks not yet echoed are sent again.
  void OnBusy();
  void set_read_receipts(bool on) { read_receipts_ = on; }
  bool read_receipts() const { return read_receipts_; }

 private:
  SyncContext& ctx_;
  std::atomic<bool> read_receipts_;
  // A watermark taken in, not yet stored: whose it is and the highest seq heard.
  struct Received {
    std::string stream, user, device;
    WatermarkKind kind = WatermarkKind::kDelivered;
    uint64_t seq = 0;
  };
  // By watermark key.
  std::map<std::string, Received> received_ OUTPOST_GUARDED_BY(ctx_.mu);
  int64_t received_since_ OUTPOST_GUARDED_BY(ctx_.mu) = 0;  // when the oldest of received_ came in
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_RECEIPTS_H_
