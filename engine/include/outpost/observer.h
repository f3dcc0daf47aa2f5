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
// What a callback may call on its Client: every read (Latest, Before, Since, Members, Get, Outbox, Streams,
// Watermarks, Cursor, read_receipts, device, user, connection), Stats(), IsIdle(), Retry(), Discard(),
// MarkRead(), Follow(), SetStreamPolicy(), SetReadReceipts(), SetOnline(), Disconnect(), SetToken(),
// SubmitAsync(), Subscribe(), SubscribeConnection() and Unsubscribe(). The events of changes it makes are
// delivered after it returns. Submit() and SubmitBatch() return FailedPrecondition there (they would wait for
// the thread that may be running the callback). A callback must not call Step(), RunUntilIdle(), Start(),
// Stop() or destroy the Client, and should not block for long: it holds up the thread that delivers.
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

// Where an op stands, as this device knows it. Delivered and read are derived from watermarks.
enum class OpState : uint8_t {
  kPending,  // stored locally, not yet acknowledged by the server
  kSent,     // the server applied it: `seq` is its place in the stream
  kFailed,   // will not be sent until Retry: `last_error` says why
};

enum class WatermarkKind : uint8_t { kDelivered = 0, kRead = 1 };

// One change of one stream. It carries what most observers need, so that they need no Get: an observer
// that only redraws a list can read `op_kind`, `state` and `seq`; one that shows the op's text reads it.
struct Change {
  enum class Kind : uint8_t {
    kAdded,      // an op appeared in the view (own submit or merged from the server)
    kUpdated,    // an op changed state: sent (seq known), failed, retried, attempts/backoff
    kRemoved,    // an op was discarded, or set aside by a rebase after a server restore (docs/lifecycle.md)
    kWatermark,  // a receipt watermark of the stream moved (op_id is nil)
    kCursor,     // the stream's merged cursor moved (op_id is nil)
  };
  Kind kind = Kind::kAdded;
  std::string stream;
  OpId op_id;
  // kAdded, kUpdated, kRemoved: the op as it is after the change (kRemoved: as it was). Empty, kPending,
  // false for kWatermark and kCursor (op_id is nil there).
  std::string op_kind;  // the op's kind, e.g. "chat.message"
  OpState state = OpState::kPending;
  bool own = false;  // made on this device
  // kAdded/kUpdated/kRemoved: the op's seq (0 while unsent). kWatermark: the watermark's new seq.
  // kCursor: the stream's new cursor.
  uint64_t seq = 0;
  // kWatermark: whose watermark moved, and which (one event per watermark). Empty for the other kinds.
  std::string user;
  std::string device;
  WatermarkKind watermark = WatermarkKind::kDelivered;
};

using ChangeCallback = std::function<void(const std::vector<Change>&)>;

// Where the connection to the server stands (Client::SubscribeConnection, Client::connection()).
enum class ConnectionState : uint8_t {
  kOffline,     // not connected: `reason` says why (no server configured, SetOnline(false), the connection
                // failed or was lost: the sync loop tries again at `retry_at_ms`)
  kConnecting,  // a connection is being made and the Hello sent; no Welcome yet
  kOnline,      // the server answered the Hello (Welcome): ops flow
  kAuthFailed,  // the server refused the credentials: no reconnecting until SetToken (`reason` has the
                // server's words). Distinct from kOffline, so that an app can ask for a new login instead of
                // waiting for the network.
  kSignedOut,   // the server revoked this device: no reconnecting until SetToken (`reason` says so)
  kUpgradeRequired,  // the server does not serve this build's protocol: no reconnecting until SetOnline(true)
};

struct ConnectionEvent {
  ConnectionState state = ConnectionState::kOffline;
  std::string reason;       // kOffline, kAuthFailed: why, for people (empty otherwise)
                            // ("no server configured", "offline: the application called SetOnline(false)",
                            // the dial's error, "connection lost", the server's fatal error, ...)
  int64_t retry_at_ms = 0;  // kOffline after a failure: when the next attempt is due (Env clock); 0: none
};

// Called on every change of ConnectionEvent::state (and of the reason while offline), under the same rules
// as change callbacks (above): never concurrently with another callback of the same Client.
using ConnectionCallback = std::function<void(const ConnectionEvent&)>;

}  // namespace outpost

#endif  // OUTPOST_OBSERVER_H_
