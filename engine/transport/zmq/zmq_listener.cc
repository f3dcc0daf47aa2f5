// Copyright 2026 The Outpost Authors.
//
// Server side of the ZeroMQ transport: one ROUTER bound to every endpoint, owned by the listener's I/O
// thread, which maps ZeroMQ routing ids to ConnIds and turns 'O' / 'D' / 'C' and heartbeat silence into
// ServerEvents. See zmq_transport.h.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "transport/zmq/zmq_common.h"
#include "transport/zmq/zmq_transport.h"

namespace outpost {
namespace {

using namespace zmq_internal;  // NOLINT(google-build-using-namespace): this file is the transport

// True when something accepts connections on the UNIX socket at `path` (ZeroMQ would unlink it and bind
// over a live server; a stale file left by a crash is fine to replace).
bool IpcPathInUse(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool live = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return live;
}

struct Peer {
  ConnId id = 0;
  int64_t last_recv_ms = 0;
  int64_t last_send_ms = 0;
  std::deque<std::string> pending;  // frames ZeroMQ would not take yet (the device's queue was full)
  int64_t blocked_since_ms = 0;
};

struct Command {
  enum class Kind : uint8_t { kSend, kClose, kStop } kind;
  ConnId conn = 0;
  std::string frame;
};

class ZmqListener final : public Listener {
 public:
  ZmqListener(void* socket, std::string endpoint, const TransportOptions& options)
      : opt_(options), socket_(socket), endpoint_(std::move(endpoint)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~ZmqListener() override {
    Post({Command::Kind::kStop, 0, {}});
    thread_.join();
  }

  std::string endpoint() const override { return endpoint_; }

  bool Poll(ServerEvent* event) override {
    bool was_full;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (events_.empty()) return false;
      was_full = events_.size() >= opt_.queue_frames_max;
      *event = std::move(events_.front());
      events_.pop_front();
    }
    if (was_full) waker_.Signal();  // the I/O thread stopped reading: room again
    return true;
  }

  Status Send(ConnId conn, std::string_view frame) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(conn);
      if (it == live_.end()) {
        return Status::Unavailable("zmq: connection " + std::to_string(conn) + " is closed");
      }
      if (it->second >= opt_.queue_frames_max) {
        return Status::Busy("zmq: connection " + std::to_string(conn) + " is not draining its queue");
      }
      ++it->second;
    }
    Post({Command::Kind::kSend, conn, std::string(frame)});
    return Status::OK();
  }

  void CloseConnection(ConnId conn) override {
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_.erase(conn) == 0) return;
      // The server is done with it: its unread frames go, and its kClose is the last word.
      std::erase_if(events_, [conn](const ServerEvent& e) { return e.conn == conn; });
      events_.push_back({ServerEvent::Kind::kClose, conn, {}});
      wake = wake_;
    }
    Post({Command::Kind::kClose, conn, {}});
    Notify(wake);
  }

  void SetWakeup(std::function<void()> wake) override {
    Wake w = MakeWake(std::move(wake));
    std::lock_guard<std::mutex> lock(mu_);
    wake_.swap(w);
  }

 private:
  void Post(Command cmd) {
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(cmd_mu_);
      was_empty = commands_.empty();
      commands_.push_back(std::move(cmd));
    }
    // The I/O thread takes the whole queue at once: one wakeup per non-empty queue is enough.
    if (was_empty) waker_.Signal();
  }

  void Run();
  bool RunCommands(int64_t now);
  void Receive(int64_t now);
  void Timers(int64_t now);
  // Sends to a peer; a peer that cannot take it (gone, or not draining) is dropped.
  void Transmit(const std::string& rid, Peer& peer, char type, std::string* body, int64_t now);
  void SendData(const std::string& rid, Peer& peer, std::string* frame, int64_t now);
  void FlushPending(int64_t now);
  void Handed(ConnId conn, size_t frames);  // frames taken by ZeroMQ: room in the server's send budget
  // Forgets a peer the I/O thread saw go (its 'C', silence, a failed send) and reports its kClose.
  void Drop(const std::string& rid, bool tell_device);
  // Queues an event for the server (only for connections it still considers open) and wakes it.
  void Report(ServerEvent event);

  const TransportOptions opt_;
  void* const socket_;
  const std::string endpoint_;
  Waker waker_;
  std::thread thread_;

  std::mutex cmd_mu_;
  std::deque<Command> commands_;  // guarded by cmd_mu_

  std::mutex mu_;  // guards the server-facing state below
  std::deque<ServerEvent> events_;
  std::unordered_map<ConnId, size_t> live_;  // connections the server may use → frames queued to them
  Wake wake_;

  // I/O thread only.
  std::unordered_map<std::string, Peer> peers_;   // routing id → peer
  std::unordered_map<ConnId, std::string> rids_;  // conn → routing id
  std::unordered_set<std::string> blocked_;       // peers with pending frames
  ConnId next_id_ = 1;
  int64_t next_timers_ms_ = 0;
};

void ZmqListener::Run() {
  for (;;) {
    bool events_full;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_full = events_.size() >= opt_.queue_frames_max;
    }
    // A server that does not keep up stops the reading: ZeroMQ's queues and then TCP push back on devices.
    zmq_pollitem_t items[2] = {{nullptr, waker_.fd(), ZMQ_POLLIN, 0},
                               {socket_, 0, static_cast<short>(events_full ? 0 : ZMQ_POLLIN), 0}};
    long timeout_ms = std::max<long>(10, std::min<int64_t>(opt_.heartbeat_ms, 250) / 2);
    if (!blocked_.empty()) timeout_ms = 1;
    if (zmq_poll(items, 2, timeout_ms) < 0 && zmq_errno() != EINTR) continue;
    if (items[0].revents & ZMQ_POLLIN) waker_.Drain();
    const int64_t now = MonoMs();
    if (!RunCommands(now)) break;
    FlushPending(now);
    if (items[1].revents & ZMQ_POLLIN) Receive(now);
    if (now >= next_timers_ms_) {
      // Not reading (the server is behind): the devices' silence is ours, not theirs.
      if (events_full) {
        for (auto& [rid, peer] : peers_) peer.last_recv_ms = now;
      }
      Timers(now);
      next_timers_ms_ = now + std::max<int64_t>(10, std::min<int64_t>(opt_.heartbeat_ms, 250) / 2);
    }
  }
  // Going away: every device hears it now rather than after a heartbeat timeout.
  for (auto& [rid, peer] : peers_) (void)SendMessage(socket_, rid, kClose, nullptr);
  zmq_close(socket_);
}

bool ZmqListener::RunCommands(int64_t now) {
  std::deque<Command> commands;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    commands.swap(commands_);
  }
  for (Command& cmd : commands) {
    if (cmd.kind == Command::Kind::kStop) return false;
    auto it = rids_.find(cmd.conn);
    if (it == rids_.end()) continue;
    const std::string rid = it->second;
    if (cmd.kind == Command::Kind::kSend) {
      SendData(rid, peers_[rid], &cmd.frame, now);
    } else {  // kClose from the server: its kClose was reported by CloseConnection
      (void)SendMessage(socket_, rid, kClose, nullptr);
      peers_.erase(rid);
      blocked_.erase(rid);
      rids_.erase(it);
    }
  }
  return true;
}

void ZmqListener::Transmit(const std::string& rid, Peer& peer, char type, std::string* body, int64_t now) {
  const int err = SendMessage(socket_, rid, type, body);
  peer.last_send_ms = now;
  // EAGAIN for a control message: its queue is full of data, which says as much as a ping. EHOSTUNREACH:
  // the device is gone.
  if (err != 0 && err != EAGAIN && err != EINTR) Drop(rid, false);
}

void ZmqListener::Handed(ConnId conn, size_t frames) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(conn);
  if (it != live_.end()) it->second -= std::min(it->second, frames);
}

void ZmqListener::SendData(const std::string& rid, Peer& peer, std::string* frame, int64_t now) {
  if (peer.pending.empty()) {
    // ZeroMQ refuses a message only at its first part, so a refused frame is still whole in *frame.
    const int err = SendMessage(socket_, rid, kData, frame);
    peer.last_send_ms = now;
    if (err == 0) return Handed(peer.id, 1);
    if (err != EAGAIN && err != EINTR) return Drop(rid, false);
    peer.blocked_since_ms = now;
    blocked_.insert(rid);
  }
  peer.pending.push_back(std::move(*frame));
}

void ZmqListener::FlushPending(int64_t now) {
  std::vector<std::string> stuck;
  for (auto bit = blocked_.begin(); bit != blocked_.end();) {
    const std::string& rid = *bit;
    Peer& peer = peers_[rid];
    size_t sent = 0;
    int err = 0;
    while (!peer.pending.empty()) {
      err = SendMessage(socket_, rid, kData, &peer.pending.front());
      if (err != 0) break;
      peer.pending.pop_front();
      peer.last_send_ms = peer.blocked_since_ms = now;
      ++sent;
    }
    if (sent > 0) Handed(peer.id, sent);
    if (err != 0 && err != EAGAIN && err != EINTR) {
      stuck.push_back(rid);  // gone
    } else if (!peer.pending.empty() && now - peer.blocked_since_ms >= opt_.heartbeat_timeout_ms) {
      stuck.push_back(rid);  // took nothing for a heartbeat timeout: not draining
    }
    if (peer.pending.empty()) {
      bit = blocked_.erase(bit);
    } else {
      ++bit;
    }
  }
  for (const auto& rid : stuck) Drop(rid, true);
}

void ZmqListener::Receive(int64_t now) {
  std::vector<std::string> parts;
  // Bounded, so that commands (sends) keep flowing under a flood of inbound messages.
  for (int i = 0; i < 4096 && ReceiveMessage(socket_, &parts); ++i) {
    if (parts.size() < 2 || parts[1].size() != 1) continue;  // not ours: dropped
    const std::string& rid = parts[0];
    const char type = parts[1][0];
    auto it = peers_.find(rid);
    if (it == peers_.end()) {
      if (type == kOpen && parts.size() == 2) {
        Peer peer{next_id_++, now, now};
        rids_[peer.id] = rid;
        auto [pit, inserted] = peers_.emplace(rid, peer);
        {
          std::lock_guard<std::mutex> lock(mu_);
          live_.emplace(peer.id, 0);
        }
        Report({ServerEvent::Kind::kOpen, peer.id, {}});
        Transmit(rid, pit->second, kAccepted, nullptr, now);
      } else if (type != kClose) {
        // A device still talking on a session this server does not know (it restarted, or dropped the
        // connection for silence): tell it to start over.
        (void)SendMessage(socket_, rid, kClose, nullptr);
      }
      continue;
    }
    Peer& peer = it->second;
    peer.last_recv_ms = now;
    if (type == kData && parts.size() == 3) {
      Report({ServerEvent::Kind::kFrame, peer.id, std::move(parts[2])});
    } else if (type == kClose && parts.size() == 2) {
      Drop(rid, false);
    }
    // kPing: its arrival was the point. Anything else: dropped.
  }
}

void ZmqListener::Timers(int64_t now) {
  // Decide first, act after: a ping that fails drops its peer, which must not happen mid-iteration.
  std::vector<std::string> silent, idle;
  for (const auto& [rid, peer] : peers_) {
    if (now - peer.last_recv_ms >= opt_.heartbeat_timeout_ms) {
      silent.push_back(rid);
    } else if (now - peer.last_send_ms >= opt_.heartbeat_ms) {
      idle.push_back(rid);
    }
  }
  for (const auto& rid : silent) Drop(rid, true);
  for (const auto& rid : idle) {
    auto it = peers_.find(rid);
    if (it != peers_.end()) Transmit(rid, it->second, kPing, nullptr, now);
  }
}

void ZmqListener::Drop(const std::string& rid, bool tell_device) {
  auto it = peers_.find(rid);
  if (it == peers_.end()) return;
  const ConnId id = it->second.id;
  if (tell_device) (void)SendMessage(socket_, rid, kClose, nullptr);
  peers_.erase(it);
  blocked_.erase(rid);
  rids_.erase(id);
  Report({ServerEvent::Kind::kClose, id, {}});
}

void ZmqListener::Report(ServerEvent event) {
  Wake wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (event.kind != ServerEvent::Kind::kOpen && !live_.contains(event.conn)) return;  // server closed it
    if (event.kind == ServerEvent::Kind::kClose) live_.erase(event.conn);
    events_.push_back(std::move(event));
    wake = wake_;
  }
  Notify(wake);
}

}  // namespace

Result<std::unique_ptr<Listener>> ListenZmq(std::vector<std::string> endpoints,
                                            const TransportOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("a ZeroMQ listener needs at least one endpoint");
  if (options.heartbeat_ms <= 0 || options.heartbeat_timeout_ms <= options.heartbeat_ms ||
      options.queue_frames_max == 0 || options.frame_bytes_max == 0) {
    return Status::InvalidArgument(
        "TransportOptions: heartbeat_ms > 0, heartbeat_timeout_ms > heartbeat_ms and nonzero limits are "
        "required");
  }
  void* socket = zmq_socket(Context(), ZMQ_ROUTER);
  if (socket == nullptr) return ZmqStatus("zmq_socket");
  auto fail = [&](Status st) {
    zmq_close(socket);
    return st;
  };
  const int one = 1;
  // Mandatory routing: a send to a vanished device fails (and drops it) instead of vanishing silently.
  if (zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0) {
    return fail(ZmqStatus("ZMQ_ROUTER_MANDATORY"));
  }
  Status st = ConfigureSocket(socket, options, 500);
  if (!st.ok()) return fail(st);
  if (!options.curve_server_secret_key.empty()) {
    if (!zmq_has("curve")) return fail(Status::InvalidArgument("this libzmq was built without CURVE"));
    const std::string& secret = options.curve_server_secret_key;
    if (secret.size() != 40) return fail(Status::InvalidArgument("a CURVE secret key is 40 Z85 characters"));
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret.c_str(), secret.size()) != 0) {
      return fail(ZmqStatus("CURVE secret key"));
    }
  }
  std::string bound;
  for (const std::string& endpoint : endpoints) {
    const std::string address = BindAddress(endpoint);
    const bool ipc = endpoint.starts_with("ipc://");
    // An address that a listener of this process has just closed is released by ZeroMQ's own threads a
    // moment later; a real conflict still fails after the retries.
    int rc = -1;
    bool ipc_in_use = false;
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ipc_in_use = ipc && IpcPathInUse(endpoint.substr(6));
      if (ipc_in_use) continue;
      rc = zmq_bind(socket, address.c_str());
      if (rc == 0 || zmq_errno() != EADDRINUSE) break;
    }
    if (ipc_in_use) return fail(Status::FailedPrecondition(endpoint + ": another server is listening there"));
    if (rc != 0) return fail(ZmqStatus("listen on " + endpoint));
    char last[1024];
    size_t size = sizeof last;
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, last, &size) != 0)
      return fail(ZmqStatus("ZMQ_LAST_ENDPOINT"));
    if (!bound.empty()) bound += ",";
    bound += last;
  }
  return std::unique_ptr<Listener>(std::make_unique<ZmqListener>(socket, std::move(bound), options));
}

}  // namespace outpost
