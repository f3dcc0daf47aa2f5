// Copyright 2026 The Outpost Authors.
//
// ServerCore's face, and Server: a ServerCore on a Listener with one background thread. The core itself is
// in src/server/ (server_impl.h says which file holds what).
#include "outpost/server.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "codec.h"
#include "server/server_impl.h"

namespace outpost {

// ---- ServerCore ----

Result<std::unique_ptr<ServerCore>> ServerCore::Open(ServerOptions options) {
  if (options.env == nullptr) options.env = SystemEnv();
  if (options.protocol_min < codec::kProtocolMin || options.protocol_min > codec::kProtocolVersion) {
    return Status::InvalidArgument("protocol_min " + std::to_string(options.protocol_min) + " outside " +
                                   std::to_string(codec::kProtocolMin) + ".." +
                                   std::to_string(codec::kProtocolVersion) +
                                   ", the versions this build speaks");
  }
  std::shared_ptr<ServerStore> store = options.server_store;
  if (!store) {
    ServerStoreOptions so;
    so.sync = options.store_sync;
    so.open_storage = options.open_store;
    OUTPOST_ASSIGN_OR_RETURN(store, OpenServerStore(options.store, so));
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(store));
  return std::unique_ptr<ServerCore>(new ServerCore(std::move(impl)));
}

ServerCore::ServerCore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerCore::~ServerCore() = default;
void ServerCore::Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out) {
  impl_->Handle(events, out);
}
void ServerCore::Tick(std::vector<Outbound>* out) { impl_->Tick(out); }
void ServerCore::SetWakeup(std::function<void()> wakeup) { impl_->SetWakeup(std::move(wakeup)); }
size_t ServerCore::EndDevice(std::string_view user, std::string_view device, std::string_view message,
                             std::vector<Outbound>* out) {
  return impl_->EndDevice(user, device, message, out);
}

namespace {
constexpr std::string_view kRevokedPrefix = "device revoked";
}  // namespace

Status RevokedStatus(std::string_view why) {
  if (why.starts_with(kRevokedPrefix)) return Status::PermissionDenied(why);
  return Status::PermissionDenied(std::string(kRevokedPrefix) + ": " + std::string(why));
}

bool IsRevoked(const Status& status) {
  return status.code() == Status::Code::kPermissionDenied && status.message().starts_with(kRevokedPrefix);
}
ServerStats ServerCore::Stats() const { return impl_->stats(); }
std::vector<StreamActivity> ServerCore::ActiveStreams(size_t max) const { return impl_->ActiveStreams(max); }
Result<bool> ServerCore::MayReadBlob(std::string_view user, std::string_view device, const BlobInfo& blob) {
  return impl_->MayReadBlob(user, device, blob);
}

// ---- Server: a ServerCore on a Listener ----

struct Server::State {
  std::unique_ptr<ServerCore> core;
  std::unique_ptr<Listener> listener;
  uint32_t events_per_group_max = 4096;
  std::mutex step_mu;  // one Step at a time
  std::mutex mu;
  std::condition_variable cv;
  bool wake = false;
  bool stop = false;
  std::thread thread;
  std::vector<ServerEvent> events;
  std::vector<Outbound> out;
  struct Ending {
    std::string user, device, message;
  };
  std::vector<Ending> endings;  // EndDevice calls for the next Step; guarded by mu
};

Result<std::unique_ptr<Server>> Server::Open(ServerOptions options, std::unique_ptr<Listener> listener) {
  if (!listener) return Status::InvalidArgument("Server::Open needs a listener");
  uint32_t group_max = std::max<uint32_t>(1, options.events_per_group_max);
  OUTPOST_ASSIGN_OR_RETURN(auto core, ServerCore::Open(std::move(options)));
  std::unique_ptr<Server> server(new Server());
  server->state_ = std::make_unique<State>();
  server->state_->core = std::move(core);
  server->state_->listener = std::move(listener);
  server->state_->events_per_group_max = group_max;
  State* st = server->state_.get();
  auto wake = [st] {
    std::lock_guard<std::mutex> lock(st->mu);
    st->wake = true;
    st->cv.notify_one();
  };
  st->listener->SetWakeup(wake);
  st->core->SetWakeup(wake);
  return server;
}

Server::~Server() {
  if (!state_) return;
  Stop();
  state_->listener->SetWakeup(nullptr);
  state_->core->SetWakeup(nullptr);
}

size_t Server::Step() {
  State& st = *state_;
  std::lock_guard<std::mutex> lock(st.step_mu);
  st.events.clear();
  st.out.clear();
  std::vector<State::Ending> endings;
  {
    std::lock_guard<std::mutex> guard(st.mu);
    endings.swap(st.endings);
  }
  for (const auto& e : endings) st.core->EndDevice(e.user, e.device, e.message, &st.out);
  st.core->Tick(&st.out);
  ServerEvent ev;
  while (st.events.size() < st.events_per_group_max && st.listener->Poll(&ev))
    st.events.push_back(std::move(ev));
  if (!st.events.empty()) st.core->Handle(st.events, &st.out);
  for (auto& o : st.out) {
    (void)st.listener->Send(o.conn, o.frame);  // a vanished connection is not an error here
    if (o.close_after) st.listener->CloseConnection(o.conn);
  }
  st.out.clear();
  return st.events.size();
}

void Server::Start() {
  State& st = *state_;
  std::lock_guard<std::mutex> guard(st.mu);
  if (st.thread.joinable()) return;
  st.stop = false;
  st.thread = std::thread([this, &st] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(st.mu);
        if (st.stop) return;
      }
      if (Step() > 0) continue;
      std::unique_lock<std::mutex> lock(st.mu);
      // The wakeup callback sets `wake`; the bound only guards against a lost wakeup.
      st.cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return st.wake || st.stop; });
      st.wake = false;
    }
  });
}

void Server::Stop() {
  State& st = *state_;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.stop = true;
    st.cv.notify_all();
  }
  if (st.thread.joinable()) st.thread.join();
  // Events already received are answered: a batch made durable gets its ack out before the caller closes.
  for (int i = 0; i < 64 && Step() > 0; ++i) {
  }
}

void Server::EndDevice(std::string_view user, std::string_view device, std::string_view message) {
  State& st = *state_;
  std::lock_guard<std::mutex> lock(st.mu);
  st.endings.push_back({std::string(user), std::string(device), std::string(message)});
  st.wake = true;
  st.cv.notify_one();
}

Result<bool> Server::MayReadBlob(std::string_view user, std::string_view device, const BlobInfo& blob) {
  return state_->core->MayReadBlob(user, device, blob);
}

std::string Server::endpoint() const { return state_->listener->endpoint(); }

ServerStats Server::Stats() const {
  std::lock_guard<std::mutex> lock(state_->step_mu);
  return state_->core->Stats();
}

std::vector<StreamActivity> Server::ActiveStreams(size_t max) const {
  std::lock_guard<std::mutex> lock(state_->step_mu);
  return state_->core->ActiveStreams(max);
}

ListenerStats Server::TransportStats() const { return state_->listener->Stats(); }

}  // namespace outpost
