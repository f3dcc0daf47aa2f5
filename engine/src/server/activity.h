// Copyright 2026 The Outpost Authors.
//
// StreamActivityTracker: which streams moved most recently on this core (ServerCore::ActiveStreams), in
// bounded memory. A list in recency order and an index into it: recording a stream moves it to the front,
// and past the capacity the least recently active stream is forgotten. Not thread-safe (the core's
// caller serializes it, as everything of ServerCore).
#ifndef OUTPOST_SRC_SERVER_ACTIVITY_H_
#define OUTPOST_SRC_SERVER_ACTIVITY_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "outpost/server.h"

namespace outpost {

class StreamActivityTracker {
 public:
  explicit StreamActivityTracker(size_t capacity = kActiveStreamsMax) : capacity_(capacity) {}

  // `ops` more ops were appended to `stream`, whose head is now `last_seq`, at `now_ms`.
  void Record(std::string_view stream, uint64_t ops, uint64_t last_seq, int64_t now_ms);
  // Up to `max` streams, most recently recorded first.
  std::vector<StreamActivity> Recent(size_t max) const;
  size_t size() const { return order_.size(); }

 private:
  size_t capacity_;
  std::list<StreamActivity> order_;                                                  // most recent first
  std::unordered_map<std::string_view, std::list<StreamActivity>::iterator> index_;  // views into order_
};

}  // namespace outpost

#endif  // OUTPOST_SRC_SERVER_ACTIVITY_H_
