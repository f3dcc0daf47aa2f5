// Copyright 2026 The Outpost Authors.
#include "server/activity.h"

#include <algorithm>

namespace outpost {

void StreamActivityTracker::Record(std::string_view stream, uint64_t ops, uint64_t last_seq, int64_t now_ms) {
  if (capacity_ == 0) return;
  auto it = index_.find(stream);
  if (it != index_.end()) {
    // Moved to the front; list nodes do not move, so the index's key (a view of the node's string) stays.
    order_.splice(order_.begin(), order_, it->second);
  } else {
    if (order_.size() >= capacity_) {
      index_.erase(order_.back().stream);
      order_.pop_back();
    }
    order_.push_front(StreamActivity{std::string(stream), 0, 0, 0});
    index_.emplace(order_.front().stream, order_.begin());
  }
  StreamActivity& a = order_.front();
  a.ops_applied += ops;
  a.last_seq = std::max(a.last_seq, last_seq);
  a.last_applied_ms = now_ms;
}

std::vector<StreamActivity> StreamActivityTracker::Recent(size_t max) const {
  std::vector<StreamActivity> out;
  out.reserve(std::min(max, order_.size()));
  for (const StreamActivity& a : order_) {
    if (out.size() >= max) break;
    out.push_back(a);
  }
  return out;
}

}  // namespace outpost
