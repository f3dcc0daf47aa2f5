// Copyright 2026 The Outpost Authors.
#include "transport/inproc/inproc_transport.h"

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "outpost/env.h"

namespace outpost {
namespace {

// Callbacks are shared, not copied, so that taking one under a lock costs no allocation and a callback
// replaced by SetWakeup stays alive while another thread is still running it.
using Wake = std::shared_ptr<const std::function<void()>>;

Wake MakeWake(std::function<void()> fn) {
  if (!fn) return nullptr;
  return std::make_shared<const std::function<void()>>(std::move(fn));
}

// Called with no transport lock held: the callback may take the caller's own locks.
void Notify(const Wake& wake) {
  if (wake) (*wake)();
}

constexpr std::string_view kInprocScheme = "inproc:";

// "inproc:a,inproc:b": a dialer's or listener's names as a URI.
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ",";
    out += std::string(kInprocScheme) + name;
  }
  return out;
}

// One connection's state. Guarded by the owning Hub's mutex.
struct Pipe {
  explicit Pipe(ConnId conn_id) : id(conn_id) {}
  const ConnId id;
  bool open = true;
  std::deque<std::string> to_device;
  uint64_t to_device_bytes = 0;
  Wake device_wake;
  // Over budget (transport.h): frames from the device wait in `held` instead of the listener's queue.
  bool paused = false;
  int64_t paused_since_ms = 0;
  std::deque<std::string> held;
  uint64_t held_bytes = 0;
};

// Frames and pipes taken out under the lock, freed after it.
struct Garbage {
  std::vector<std::deque<std::string>> queues;
  std::vector<std::shared_ptr<Pipe>> pipes;
};

struct Limits {
  uint64_t bytes_max;
  uint64_t frames_max;
  int64_t pause_ms_max;
  Env* env;
};

// One listener's state, shared with its connections so that either side may outlive the other. A single
// mutex guards everything: an inproc frame costs one lock on each side, and no lock order can go wrong.
struct Hub {
  explicit Hub(const Limits& l) : limits(l) {}
  const Limits limits;
  std::mutex mu;
  bool listening = true;
  ConnId next_id = 1;
  std::deque<ServerEvent> events;
  std::unordered_map<ConnId, std::shared_ptr<Pipe>> conns;  // open connections only
  std::unordered_set<ConnId> paused;                        // open and paused
  uint64_t dropped_slow = 0;
  Wake server_wake;

  bool OverBudget(const Pipe& pipe) const {
    return pipe.to_device_bytes >= limits.bytes_max || pipe.to_device.size() >= limits.frames_max;
  }

  // Pauses or resumes `pipe` after its queue changed. True when held frames moved to `events`.
  bool UpdatePause(Pipe& pipe) {
    const bool over = OverBudget(pipe);
    if (over && !pipe.paused) {
      pipe.paused = true;
      pipe.paused_since_ms = limits.env->NowMs();
      paused.insert(pipe.id);
    } else if (!over && pipe.paused) {
      pipe.paused = false;
      paused.erase(pipe.id);
      const bool any = !pipe.held.empty();
      for (std::string& frame : pipe.held) {
        events.push_back(ServerEvent{ServerEvent::Kind::kFrame, pipe.id, std::move(frame)});
      }
      pipe.held.clear();
      pipe.held_bytes = 0;
      return any;
    }
    return false;
  }

  // Ends an open connection from the server's side: its unread frames go and its kClose is the last word.
  // `free_queue`: what it had queued for the device goes too (a drop), rather than staying receivable.
  void EndLocked(const std::shared_ptr<Pipe>& pipe, bool free_queue, Garbage* garbage) {
    pipe->open = false;
    conns.erase(pipe->id);
    paused.erase(pipe->id);
    pipe->paused = false;
    garbage->queues.push_back(std::move(pipe->held));
    pipe->held.clear();
    pipe->held_bytes = 0;
    if (free_queue) {
      garbage->queues.push_back(std::move(pipe->to_device));
      pipe->to_device.clear();
      pipe->to_device_bytes = 0;
    }
    const ConnId conn = pipe->id;
    std::erase_if(events, [conn](const ServerEvent& e) { return e.conn == conn; });
    events.push_back(ServerEvent{ServerEvent::Kind::kClose, conn, {}});
    garbage->pipes.push_back(pipe);
  }

  // Drops every connection paused for longer than allowed; true when any was.
  bool DropExpiredLocked(Garbage* garbage) {
    if (paused.empty()) return false;
    const int64_t now = limits.env->NowMs();
    std::vector<std::shared_ptr<Pipe>> expired;
    for (ConnId id : paused) {
      const std::shared_ptr<Pipe>& pipe = conns.at(id);
      if (now - pipe->paused_since_ms >= limits.pause_ms_max) expired.push_back(pipe);
    }
    for (const auto& pipe : expired) {
      EndLocked(pipe, /*free_queue=*/true, garbage);
      ++dropped_slow;
    }
    return !expired.empty();
  }
};

// NAME → listening hub, for the whole process.
class Registry {
 public:
  static Registry& Get() {
    // Leaked on purpose: a Listener destroyed during static destruction still unregisters safely.
    static auto* const registry = new Registry;
    return *registry;
  }

  Status Add(const std::string& name, std::shared_ptr<Hub> hub) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!hubs_.emplace(name, std::move(hub)).second) {
      return Status::FailedPrecondition("inproc:" + name + " is already listened on in this process");
    }
    return Status::OK();
  }

  std::shared_ptr<Hub> Find(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = hubs_.find(name);
    return it == hubs_.end() ? nullptr : it->second;
  }

  void Remove(const std::string& name, const Hub* hub) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = hubs_.find(name);
    if (it != hubs_.end() && it->second.get() == hub) hubs_.erase(it);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Hub>> hubs_;
};

Status QueueFull(const char* which) {
  return Status::Busy(std::string("inproc: ") + which + " queue holds " +
                      std::to_string(kInprocQueueFramesMax) + " frames; the peer is not draining it");
}

class InprocConnection final : public Connection {
 public:
  InprocConnection(std::shared_ptr<Hub> hub, std::shared_ptr<Pipe> pipe)
      : hub_(std::move(hub)), pipe_(std::move(pipe)) {}
  ~InprocConnection() override { Close(); }

  Status Send(std::string_view frame) override {
    // The one copy of the frame, made before locking to keep the critical section short.
    ServerEvent event{ServerEvent::Kind::kFrame, pipe_->id, std::string(frame)};
    Wake wake;
    Wake device_wake;
    Garbage garbage;
    bool dropped = false;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      if (!pipe_->open) return Status::Unavailable("inproc: connection closed");
      if (pipe_->paused) {
        // Not reported until the device reads what it was sent; a device that keeps asking is dropped.
        const uint64_t held = pipe_->held_bytes + event.frame.size();
        if (!pipe_->held.empty() && held > hub_->limits.bytes_max) {
          hub_->EndLocked(pipe_, /*free_queue=*/true, &garbage);
          ++hub_->dropped_slow;
          dropped = true;
        } else {
          pipe_->held_bytes = held;
          pipe_->held.push_back(std::move(event.frame));
          return Status::OK();
        }
      } else {
        if (hub_->events.size() >= kInprocQueueFramesMax) return QueueFull("server");
        hub_->events.push_back(std::move(event));
      }
      wake = hub_->server_wake;
      if (dropped) device_wake = pipe_->device_wake;
    }
    Notify(device_wake);
    Notify(wake);
    if (dropped) {
      return Status::Unavailable("inproc: connection dropped: it sent more than " +
                                 std::to_string(hub_->limits.bytes_max) +
                                 " bytes while not reading what the server sent");
    }
    return Status::OK();
  }

  bool Receive(std::string* frame) override {
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      if (pipe_->to_device.empty()) return false;
      *frame = std::move(pipe_->to_device.front());
      pipe_->to_device.pop_front();
      pipe_->to_device_bytes -= frame->size();
      if (pipe_->paused && pipe_->open && hub_->UpdatePause(*pipe_)) wake = hub_->server_wake;
    }
    Notify(wake);
    return true;
  }

  [[nodiscard]] bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(hub_->mu);
    return pipe_->open;
  }

  void Close() override {
    std::deque<std::string> unread;  // freed outside the lock
    std::deque<std::string> held;
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      unread.swap(pipe_->to_device);
      pipe_->to_device_bytes = 0;
      if (!pipe_->open) return;
      pipe_->open = false;
      held.swap(pipe_->held);  // the server never took them: a paused device's last requests go unanswered
      pipe_->held_bytes = 0;
      pipe_->paused = false;
      hub_->paused.erase(pipe_->id);
      hub_->conns.erase(pipe_->id);
      if (hub_->listening) {
        hub_->events.push_back(ServerEvent{ServerEvent::Kind::kClose, pipe_->id, {}});
        wake = hub_->server_wake;
      }
    }
    Notify(wake);
  }

  void SetWakeup(std::function<void()> fn) override {
    Wake wake = MakeWake(std::move(fn));
    std::lock_guard<std::mutex> lock(hub_->mu);
    pipe_->device_wake.swap(wake);
  }

 private:
  const std::shared_ptr<Hub> hub_;
  const std::shared_ptr<Pipe> pipe_;
};

class InprocDialer final : public Dialer {
 public:
  explicit InprocDialer(std::vector<std::string> names) : names_(std::move(names)) {}

  // Tries each name in turn, starting with the one that answered last (as the ZeroMQ dialer does).
  Result<std::unique_ptr<Connection>> Connect() override {
    const size_t first = preferred_.load();
    for (size_t k = 0; k < names_.size(); ++k) {
      const size_t i = (first + k) % names_.size();
      std::shared_ptr<Hub> hub = Registry::Get().Find(names_[i]);
      if (!hub) continue;
      std::shared_ptr<Pipe> pipe;
      Wake wake;
      {
        std::lock_guard<std::mutex> lock(hub->mu);
        // A listener being destroyed may still be registered for a moment; it takes no new connections.
        if (!hub->listening) continue;
        pipe = std::make_shared<Pipe>(hub->next_id++);
        hub->conns.emplace(pipe->id, pipe);
        hub->events.push_back(ServerEvent{ServerEvent::Kind::kOpen, pipe->id, {}});
        wake = hub->server_wake;
      }
      preferred_.store(i);
      Notify(wake);
      return std::unique_ptr<Connection>(std::make_unique<InprocConnection>(std::move(hub), std::move(pipe)));
    }
    return Status::Unavailable("inproc: nobody listens on " + JoinNames(names_));
  }

 private:
  const std::vector<std::string> names_;
  std::atomic<size_t> preferred_{0};  // the name that answered last
};

class InprocListener final : public Listener {
 public:
  InprocListener(std::vector<std::string> names, std::shared_ptr<Hub> hub)
      : names_(std::move(names)), hub_(std::move(hub)) {}

  ~InprocListener() override {
    for (const std::string& name : names_) Registry::Get().Remove(name, hub_.get());
    std::vector<Wake> wakes;
    // Freed outside the lock.
    std::deque<ServerEvent> unread;
    std::unordered_map<ConnId, std::shared_ptr<Pipe>> conns;
    Wake server_wake;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      hub_->listening = false;
      for (auto& [id, pipe] : hub_->conns) {
        pipe->open = false;
        wakes.push_back(pipe->device_wake);
      }
      conns.swap(hub_->conns);
      unread.swap(hub_->events);
      server_wake.swap(hub_->server_wake);
    }
    for (const Wake& wake : wakes) Notify(wake);
  }

  std::string endpoint() const override { return JoinNames(names_); }

  bool Poll(ServerEvent* event) override {
    Garbage garbage;
    std::vector<Wake> wakes;
    bool got;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      if (hub_->DropExpiredLocked(&garbage)) {
        for (const auto& pipe : garbage.pipes) wakes.push_back(pipe->device_wake);
      }
      got = !hub_->events.empty();
      if (got) {
        *event = std::move(hub_->events.front());
        hub_->events.pop_front();
      }
    }
    for (const Wake& wake : wakes) Notify(wake);
    return got;
  }

  ListenerStats Stats() const override {
    ListenerStats stats;
    std::lock_guard<std::mutex> lock(hub_->mu);
    for (const auto& [id, pipe] : hub_->conns) {
      stats.queued_bytes += pipe->to_device_bytes;
      stats.queued_frames += pipe->to_device.size();
      stats.held_bytes += pipe->held_bytes;
    }
    stats.connections_paused = hub_->paused.size();
    stats.connections_dropped_slow = hub_->dropped_slow;
    return stats;
  }

  Status Send(ConnId conn, std::string_view frame) override {
    std::string copy(frame);  // the one copy, made before locking
    Wake wake;
    Wake server_wake;
    Garbage garbage;
    uint64_t queued_bytes = 0;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      auto it = hub_->conns.find(conn);
      if (it == hub_->conns.end()) {
        return Status::Unavailable("inproc: connection " + std::to_string(conn) + " is closed");
      }
      std::shared_ptr<Pipe> pipe = it->second;
      const Limits& limits = hub_->limits;
      wake = pipe->device_wake;
      if (!pipe->to_device.empty() && (pipe->to_device_bytes + copy.size() > 2 * limits.bytes_max ||
                                       pipe->to_device.size() + 1 > 2 * limits.frames_max)) {
        queued_bytes = pipe->to_device_bytes;
        hub_->EndLocked(pipe, /*free_queue=*/true, &garbage);
        ++hub_->dropped_slow;
        server_wake = hub_->server_wake;
      } else {
        pipe->to_device_bytes += copy.size();
        pipe->to_device.push_back(std::move(copy));
        (void)hub_->UpdatePause(*pipe);  // only pauses here
      }
    }
    Notify(wake);
    if (server_wake) {
      Notify(server_wake);
      return Status::Unavailable("inproc: connection " + std::to_string(conn) + " dropped: its device left " +
                                 std::to_string(queued_bytes) + " bytes unread");
    }
    return Status::OK();
  }

  void CloseConnection(ConnId conn) override {
    Wake device_wake;
    Wake server_wake;
    Garbage garbage;  // released outside the lock
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      auto it = hub_->conns.find(conn);
      if (it == hub_->conns.end()) return;
      std::shared_ptr<Pipe> pipe = it->second;
      device_wake = pipe->device_wake;
      // The server has finished with this connection: its unread frames go, and its kClose is the last
      // word, as for a connection the device closed. What it sent stays receivable.
      hub_->EndLocked(pipe, /*free_queue=*/false, &garbage);
      server_wake = hub_->server_wake;
    }
    Notify(device_wake);
    Notify(server_wake);
  }

  void SetWakeup(std::function<void()> fn) override {
    Wake wake = MakeWake(std::move(fn));
    std::lock_guard<std::mutex> lock(hub_->mu);
    hub_->server_wake.swap(wake);
  }

 private:
  const std::vector<std::string> names_;
  const std::shared_ptr<Hub> hub_;
};

}  // namespace

Result<std::vector<std::string>> ParseInprocNames(std::string_view uri) {
  std::vector<std::string> names;
  size_t start = 0;
  for (;;) {
    const size_t comma = uri.find(',', start);
    std::string_view part = uri.substr(start, comma == std::string_view::npos ? uri.npos : comma - start);
    if (!part.starts_with(kInprocScheme)) {
      return Status::InvalidArgument("transport endpoint '" + std::string(part) + "' in '" +
                                     std::string(uri) +
                                     "': expected inproc:NAME (a list is all inproc or all ZeroMQ)");
    }
    part.remove_prefix(kInprocScheme.size());
    if (part.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
    for (const std::string& name : names) {
      if (name == part) {
        return Status::InvalidArgument("transport endpoint 'inproc:" + name + "' appears twice in '" +
                                       std::string(uri) + "'");
      }
    }
    names.emplace_back(part);
    if (comma == std::string_view::npos) return names;
    start = comma + 1;
  }
}

Result<std::unique_ptr<Dialer>> NewInprocDialer(std::vector<std::string> names) {
  if (names.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
  for (const std::string& name : names) {
    if (name.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
  }
  return std::unique_ptr<Dialer>(std::make_unique<InprocDialer>(std::move(names)));
}

Result<std::unique_ptr<Listener>> ListenInproc(std::vector<std::string> names,
                                               const TransportOptions& options) {
  if (names.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
  for (const std::string& name : names) {
    if (name.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
  }
  if (options.queue_bytes_max == 0 || options.queue_frames_max == 0 || options.heartbeat_timeout_ms <= 0) {
    return Status::InvalidArgument(
        "TransportOptions: queue_bytes_max, queue_frames_max and heartbeat_timeout_ms must be positive");
  }
  const Limits limits{options.queue_bytes_max, options.queue_frames_max, options.heartbeat_timeout_ms,
                      options.env != nullptr ? options.env : SystemEnv()};
  auto hub = std::make_shared<Hub>(limits);
  // Every name or none.
  for (size_t i = 0; i < names.size(); ++i) {
    Status st = Registry::Get().Add(names[i], hub);
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) Registry::Get().Remove(names[j], hub.get());
      return st;
    }
  }
  return std::unique_ptr<Listener>(std::make_unique<InprocListener>(std::move(names), std::move(hub)));
}

}  // namespace outpost
