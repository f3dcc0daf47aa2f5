// Copyright 2026 The Outpost Authors.
#include "transport/inproc/inproc_transport.h"

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

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

// One connection's state. Guarded by the owning Hub's mutex.
struct Pipe {
  explicit Pipe(ConnId conn_id) : id(conn_id) {}
  const ConnId id;
  bool open = true;
  std::deque<std::string> to_device;
  Wake device_wake;
};

// One listener's state, shared with its connections so that either side may outlive the other. A single
// mutex guards everything: an inproc frame costs one lock on each side, and no lock order can go wrong.
struct Hub {
  std::mutex mu;
  bool listening = true;
  ConnId next_id = 1;
  std::deque<ServerEvent> events;
  std::unordered_map<ConnId, std::shared_ptr<Pipe>> conns;  // open connections only
  Wake server_wake;
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
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      if (!pipe_->open) return Status::Unavailable("inproc: connection closed");
      if (hub_->events.size() >= kInprocQueueFramesMax) return QueueFull("server");
      hub_->events.push_back(std::move(event));
      wake = hub_->server_wake;
    }
    Notify(wake);
    return Status::OK();
  }

  bool Receive(std::string* frame) override {
    std::lock_guard<std::mutex> lock(hub_->mu);
    if (pipe_->to_device.empty()) return false;
    *frame = std::move(pipe_->to_device.front());
    pipe_->to_device.pop_front();
    return true;
  }

  [[nodiscard]] bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(hub_->mu);
    return pipe_->open;
  }

  void Close() override {
    std::deque<std::string> unread;  // freed outside the lock
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      unread.swap(pipe_->to_device);
      if (!pipe_->open) return;
      pipe_->open = false;
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
  explicit InprocDialer(std::string name) : name_(std::move(name)) {}

  Result<std::unique_ptr<Connection>> Connect() override {
    std::shared_ptr<Hub> hub = Registry::Get().Find(name_);
    std::shared_ptr<Pipe> pipe;
    Wake wake;
    if (hub) {
      std::lock_guard<std::mutex> lock(hub->mu);
      // A listener being destroyed may still be registered for a moment; it takes no new connections.
      if (hub->listening) {
        pipe = std::make_shared<Pipe>(hub->next_id++);
        hub->conns.emplace(pipe->id, pipe);
        hub->events.push_back(ServerEvent{ServerEvent::Kind::kOpen, pipe->id, {}});
        wake = hub->server_wake;
      }
    }
    if (!pipe) return Status::Unavailable("inproc: nobody listens on inproc:" + name_);
    Notify(wake);
    return std::unique_ptr<Connection>(std::make_unique<InprocConnection>(std::move(hub), std::move(pipe)));
  }

 private:
  const std::string name_;
};

class InprocListener final : public Listener {
 public:
  InprocListener(std::string name, std::shared_ptr<Hub> hub) : name_(std::move(name)), hub_(std::move(hub)) {}

  ~InprocListener() override {
    Registry::Get().Remove(name_, hub_.get());
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

  std::string endpoint() const override { return "inproc:" + name_; }

  bool Poll(ServerEvent* event) override {
    std::lock_guard<std::mutex> lock(hub_->mu);
    if (hub_->events.empty()) return false;
    *event = std::move(hub_->events.front());
    hub_->events.pop_front();
    return true;
  }

  Status Send(ConnId conn, std::string_view frame) override {
    std::string copy(frame);  // the one copy, made before locking
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      auto it = hub_->conns.find(conn);
      if (it == hub_->conns.end()) {
        return Status::Unavailable("inproc: connection " + std::to_string(conn) + " is closed");
      }
      Pipe& pipe = *it->second;
      if (pipe.to_device.size() >= kInprocQueueFramesMax) return QueueFull("device");
      pipe.to_device.push_back(std::move(copy));
      wake = pipe.device_wake;
    }
    Notify(wake);
    return Status::OK();
  }

  void CloseConnection(ConnId conn) override {
    Wake device_wake;
    Wake server_wake;
    std::shared_ptr<Pipe> pipe;  // released outside the lock
    {
      std::lock_guard<std::mutex> lock(hub_->mu);
      auto it = hub_->conns.find(conn);
      if (it == hub_->conns.end()) return;
      pipe = std::move(it->second);
      hub_->conns.erase(it);
      pipe->open = false;
      device_wake = pipe->device_wake;
      // The server has finished with this connection: its unread frames go, and its kClose is the last
      // word, as for a connection the device closed.
      std::erase_if(hub_->events, [conn](const ServerEvent& e) { return e.conn == conn; });
      hub_->events.push_back(ServerEvent{ServerEvent::Kind::kClose, conn, {}});
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
  const std::string name_;
  const std::shared_ptr<Hub> hub_;
};

Status CheckName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("inproc transport needs a name: inproc:NAME");
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<Dialer>> NewInprocDialer(std::string_view name) {
  OUTPOST_RETURN_IF_ERROR(CheckName(name));
  return std::unique_ptr<Dialer>(std::make_unique<InprocDialer>(std::string(name)));
}

Result<std::unique_ptr<Listener>> ListenInproc(std::string_view name) {
  OUTPOST_RETURN_IF_ERROR(CheckName(name));
  auto hub = std::make_shared<Hub>();
  std::string key(name);
  OUTPOST_RETURN_IF_ERROR(Registry::Get().Add(key, hub));
  return std::unique_ptr<Listener>(std::make_unique<InprocListener>(std::move(key), std::move(hub)));
}

}  // namespace outpost
