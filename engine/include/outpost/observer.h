// Copyright 2026 The Outpost Authors.
//
// Change events, delivered to subscribers after each commit that touched what they watch. Callbacks run on
// an engine thread (the completion thread for submits, the sync thread or the caller of Step() for sync
// changes, the caller for Retry/Discard), outside engine locks; they may read from the Client but must not
// block for long. Events of one commit arrive together, in order.
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
