// Copyright 2026 The Outpost Authors.
//
// Change events, delivered to subscribers after each commit that touched what they watch.
//
// When and where: the events of every commit are queued in commit order and delivered once the committing
// thread holds no engine lock, by that thread (the completion thread for submits, the sync thread or the
// caller of Step()/RunUntilIdle() for sync changes, the caller for Retry/Discard) or, when another thread
// is delivering at that moment, by that other thread. Callbacks of one Client never run concurrently;
// events of one commit arrive together, and commits arrive in order. Step(), Retry(), Discard() and
// Submit() return once the events of their commits have been delivered (except when called from a
// callback, see below).
//
// What a callback may call on its Client: every read (Latest, Before, Get, Outbox, Streams, Watermarks,
// Cursor, read_receipts, device, user), Stats(), IsIdle(), Retry(), Discard(), MarkRead(), Follow(),
// SetStreamPolicy(), SetReadReceipts(), SetOnline(), Disconnect(), SetToken(), SubmitAsync(), Subscribe()
// and Unsubscribe(). The events of changes it makes are delivered after it returns. Submit() and
// SubmitBatch() return FailedPrecondition there (they would wait for the thread that may be running the
// callback). A callback must not call Step(), RunUntilIdle(), Start(), Stop() or destroy the Client, and
// should not block for long: it holds up the thread that delivers.
//
// Unsubscribe(id) returns once no call of that observer is running on another thread and none will start;
// called from inside a callback it does not wait (the running call is the caller's own).
#ifndef OUTPOST_OBSERVER_H_
#define OUTPOST_OBSERVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "outpost/ids.h"

namespace outpost {

struct Change {
  enum class Kind : uint8_t {
    kAdded,      // an op appeared in the view (own submit or merged from the server)
    kUpdated,    // an op changed state: sent (seq known), failed, retried, attempts/backoff
    kRemoved,    // an op was discarded
    kWatermark,  // a receipt watermark of the stream moved (op_id is nil)
    kCursor,     // the stream's merged cursor moved (op_id is nil)
  };
  Kind kind = Kind::kAdded;
  std::string stream;
  OpId op_id;
};

using ChangeCallback = std::function<void(const std::vector<Change>&)>;

}  // namespace outpost

#endif  // OUTPOST_OBSERVER_H_
