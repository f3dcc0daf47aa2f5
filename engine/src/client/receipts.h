// Copyright 2026 The Outpost Authors.
//
// Receipts: watermarks. Out: this device's delivered watermark (its cursor, once caught up) and, when read
// receipts are on, its read watermark (MarkRead). In: every device's watermarks of a stream, stored
// monotonically; our own echoed back is the server's acknowledgement of it.
#ifndef OUTPOST_SRC_CLIENT_RECEIPTS_H_
#define OUTPOST_SRC_CLIENT_RECEIPTS_H_

#include <atomic>

#include "client/sync_context.h"
#include "codec.h"

namespace outpost {

class Receipts {
 public:
  Receipts(SyncContext& ctx, bool read_receipts) : ctx_(ctx), read_receipts_(read_receipts) {}

  void Send();
  void OnWatermark(const wire::Watermark& wm);
  // The server could not make a group durable: watermarks not yet echoed are sent again.
  void OnBusy();
  void set_read_receipts(bool on) { read_receipts_ = on; }
  bool read_receipts() const { return read_receipts_; }

 private:
  SyncContext& ctx_;
  std::atomic<bool> read_receipts_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_RECEIPTS_H_
