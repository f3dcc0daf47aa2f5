// Copyright 2026 The Outpost Authors.
#include "client/observers.h"

namespace outpost {

namespace {
// The observers whose callback this thread is running (nullptr: none).
thread_local const Observers* tl_in_callback = nullptr;
}  // namespace

bool Observers::InCallback() const { return tl_in_callback == this; }

uint64_t Observers::Subscribe(std::string_view stream, ChangeCallback cb) {
  MutexLock lock(&list_mu_);
  uint64_t id = next_id_++;
  list_.emplace(id, Entry{std::string(stream), std::move(cb), nullptr, 0});
  return id;
}

uint64_t Observers::SubscribeConnection(ConnectionCallback cb, const ConnectionEvent& now) {
  MutexLock lock(&list_mu_);
  uint64_t id = next_id_++;
  Item first;
  first.connection = true;
  first.event = now;
  first.only = id;
  {
    MutexLock queue_lock(&queue_mu_);
    first.serial = ++queued_total_;
    queue_.push_back(std::move(first));
    list_.emplace(id, Entry{std::string(), nullptr, std::move(cb), queued_total_});
  }
  return id;
}

void Observers::Unsubscribe(uint64_t id) {
  MutexLock lock(&list_mu_);
  list_.erase(id);
  // Callbacks run one at a time on the delivering thread: from inside one, the running call is this
  // thread's own and must not be waited for.
  if (InCallback()) return;
  while (running_ == id) list_cv_.Wait(&list_mu_);
}

void Observers::Emit(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  MutexLock lock(&queue_mu_);
  Item item;
  item.changes = changes;
  item.serial = ++queued_total_;
  queue_.push_back(std::move(item));
}

void Observers::EmitConnection(const ConnectionEvent& event) {
  MutexLock lock(&queue_mu_);
  Item item;
  item.connection = true;
  item.event = event;
  item.serial = ++queued_total_;
  queue_.push_back(std::move(item));
}

void Observers::Deliver(bool wait) {
  if (InCallback()) return;  // the delivery this callback is part of runs them when it returns
  {
    MutexLock lock(&queue_mu_);
    const uint64_t upto = queued_total_;
    while (delivering_) {
      if (!wait || delivered_total_ >= upto) return;
      queue_cv_.Wait(&queue_mu_);
    }
    delivering_ = true;
  }
  const Observers* outer = tl_in_callback;
  for (;;) {
    Item item;
    {
      MutexLock lock(&queue_mu_);
      if (queue_.empty()) {
        delivering_ = false;
        queue_cv_.NotifyAll();
        return;
      }
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    std::vector<std::pair<uint64_t, std::string>> targets;
    {
      MutexLock lock(&list_mu_);
      for (const auto& [id, e] : list_) {
        if (item.connection) {
          if (e.on_connection && item.serial >= e.since && (item.only == 0 || item.only == id)) {
            targets.emplace_back(id, std::string());
          }
        } else if (e.on_change) {
          targets.emplace_back(id, e.stream);
        }
      }
    }
    for (const auto& [id, stream] : targets) {
      std::vector<Change> mine;
      if (!item.connection && !stream.empty()) {
        for (const auto& c : item.changes) {
          if (c.stream == stream) mine.push_back(c);
        }
        if (mine.empty()) continue;
      }
      ChangeCallback on_change;
      ConnectionCallback on_connection;
      {
        MutexLock lock(&list_mu_);
        auto it = list_.find(id);
        if (it == list_.end()) continue;  // unsubscribed meanwhile: no call starts after Unsubscribe
        on_change = it->second.on_change;
        on_connection = it->second.on_connection;
        running_ = id;
      }
      tl_in_callback = this;
      if (item.connection) {
        on_connection(item.event);
      } else {
        on_change(stream.empty() ? item.changes : mine);
      }
      tl_in_callback = outer;
      {
        MutexLock lock(&list_mu_);
        running_ = 0;
        list_cv_.NotifyAll();
      }
    }
    MutexLock lock(&queue_mu_);
    ++delivered_total_;
    queue_cv_.NotifyAll();
  }
}

}  // namespace outpost
