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
  list_.emplace(id, std::make_pair(std::string(stream), std::move(cb)));
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
  queue_.push_back(changes);
  ++queued_total_;
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
    std::vector<Change> changes;
    {
      MutexLock lock(&queue_mu_);
      if (queue_.empty()) {
        delivering_ = false;
        queue_cv_.NotifyAll();
        return;
      }
      changes = std::move(queue_.front());
      queue_.pop_front();
    }
    std::vector<std::pair<uint64_t, std::string>> targets;
    {
      MutexLock lock(&list_mu_);
      for (const auto& [id, obs] : list_) targets.emplace_back(id, obs.first);
    }
    for (const auto& [id, stream] : targets) {
      std::vector<Change> mine;
      if (!stream.empty()) {
        for (const auto& c : changes) {
          if (c.stream == stream) mine.push_back(c);
        }
        if (mine.empty()) continue;
      }
      ChangeCallback cb;
      {
        MutexLock lock(&list_mu_);
        auto it = list_.find(id);
        if (it == list_.end()) continue;  // unsubscribed meanwhile: no call starts after Unsubscribe
        cb = it->second.second;
        running_ = id;
      }
      tl_in_callback = this;
      cb(stream.empty() ? changes : mine);
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
