// Copyright 2026 The Outpost Authors.
//
// Observers: change and connection events from commit (or connection change) to callback (outpost/observer.h
// states the contract). Events wait in a queue, in commit order (DeviceStore::Commit queues them), until a
// thread that holds no engine lock runs Deliver; one thread delivers at a time, so callbacks never run
// concurrently. Locks: queue_mu_ is a leaf (taken last, never held while calling out); list_mu_ guards the
// subscriptions and is never held during a callback either.
#ifndef OUTPOST_SRC_CLIENT_OBSERVERS_H_
#define OUTPOST_SRC_CLIENT_OBSERVERS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "outpost/observer.h"

namespace outpost {

class Observers {
 public:
  uint64_t Subscribe(std::string_view stream, ChangeCallback cb) OUTPOST_EXCLUDES(list_mu_);
  // A connection observer. Its first call carries `now` (queued here, delivered like every event); events
  // queued before it subscribed are not delivered to it, so that none older than `now` follows `now`.
  uint64_t SubscribeConnection(ConnectionCallback cb, const ConnectionEvent& now)
      OUTPOST_EXCLUDES(list_mu_, queue_mu_);
  // Returns once no call of `id` runs on another thread and none will start (from inside a callback it does
  // not wait: the running call is the caller's own).
  void Unsubscribe(uint64_t id) OUTPOST_EXCLUDES(list_mu_);

  // Queues one commit's events.
  void Emit(const std::vector<Change>& changes) OUTPOST_EXCLUDES(queue_mu_);
  // Queues a connection event, in order with the change events.
  void EmitConnection(const ConnectionEvent& event) OUTPOST_EXCLUDES(queue_mu_);
  // Runs the queued callbacks on this thread, unless another thread is delivering (then, with `wait`, waits
  // until what was queued before this call is delivered) or this thread is inside a callback of this client
  // (the outer delivery runs them when the callback returns).
  void Deliver(bool wait) OUTPOST_EXCLUDES(queue_mu_, list_mu_);
  // Whether this thread is running a callback of these observers.
  bool InCallback() const;

 private:
  // A subscription: to changes (of `stream`, or of every stream when empty) or to the connection.
  struct Entry {
    std::string stream;
    ChangeCallback on_change;
    ConnectionCallback on_connection;
    uint64_t since = 0;  // connection observers: the serial of their first event
  };
  // What waits for delivery: one commit's changes, or one connection event.
  struct Item {
    std::vector<Change> changes;
    bool connection = false;
    ConnectionEvent event;
    uint64_t only = 0;    // a connection observer's first event: for that observer alone
    uint64_t serial = 0;  // queued_total_ when queued
  };

  Mutex list_mu_;
  CondVar list_cv_;  // running_ changed
  std::map<uint64_t, Entry> list_ OUTPOST_GUARDED_BY(list_mu_);
  uint64_t next_id_ OUTPOST_GUARDED_BY(list_mu_) = 1;
  uint64_t running_ OUTPOST_GUARDED_BY(list_mu_) = 0;  // the observer being called now (0: none)

  Mutex queue_mu_;
  CondVar queue_cv_;
  std::deque<Item> queue_ OUTPOST_GUARDED_BY(queue_mu_);
  uint64_t queued_total_ OUTPOST_GUARDED_BY(queue_mu_) = 0;  // event groups queued and delivered
  uint64_t delivered_total_ OUTPOST_GUARDED_BY(queue_mu_) = 0;
  bool delivering_ OUTPOST_GUARDED_BY(queue_mu_) = false;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_OBSERVERS_H_
