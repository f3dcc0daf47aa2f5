// Copyright 2026 The Outpost Authors.
//
// Server side of the ZeroMQ transport: one ROUTER bound to every endpoint, owned by the listener's I/O
// thread, which maps ZeroMQ routing ids to ConnIds and turns 'O' / 'D' / 'C' and heartbeat silence into
// ServerEvents. See zmq_transport.h.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include <atomic>
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

// A peer's TCP or UNIX connection, for cutting it off: ZeroMQ 4.3's stable API cannot close one peer of a
// ROUTER, so the listener shuts the socket down under ZeroMQ, which then tears the pipe down as for a lost
// peer (freeing what it queued) and closes the descriptor. The inode guards against a descriptor number
// that ZeroMQ already closed and the process reused.
struct PeerSocket {
  int fd = -1;
  ino_t ino = 0;
};

PeerSocket IdentifySocket(int fd) {
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return {};
  return {fd, st.st_ino};
}

void CutOff(const PeerSocket& sock) {
  struct stat st {};
  if (sock.fd < 0 || fstat(sock.fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_ino != sock.ino) return;
  (void)shutdown(sock.fd, SHUT_RDWR);
}

struct Peer {
  ConnId id = 0;
  int64_t last_recv_ms = 0;
  int64_t last_send_ms = 0;
  std::deque<std::string> pending;  // frames ZeroMQ would not take yet (the device's queue was full)
  int64_t blocked_since_ms = 0;
  std::shared_ptr<SendBudget> budget;  // everything Send queued for it and ZeroMQ has not released
  int64_t paused_since_ms = -1;        // -1: not paused
  std::deque<std::string> held;        // frames it sent while paused, not reported yet
  uint64_t held_bytes = 0;
  PeerSocket sock;
};

struct Command {
  // kDrop: the server's Send found the peer over its hard limit (already reported closed).
  enum class Kind : uint8_t { kSend, kClose, kDrop, kStop } kind;
  ConnId conn = 0;
  std::string frame;
  std::shared_ptr<SendBudget> budget;  // kSend: what `frame` was counted against
};

// Why the I/O thread forgets a peer, which decides whether it tells the device and cuts the socket.
enum class DropWhy : uint8_t {
  kByDevice,  // it sent 'C': it closes its end; cut later if it does not
  kGone,      // ZeroMQ no longer knows it
  kSilent,    // nothing heard for heartbeat_timeout_ms
  kSlow,      // not draining its queue, or flooding while paused
};

class ZmqListener final : public Listener {
 public:
  ZmqListener(void* socket, void* monitor, std::string endpoint, const TransportOptions& options)
      : opt_(options), socket_(socket), monitor_(monitor), endpoint_(std::move(endpoint)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~ZmqListener() override {
    Post({Command::Kind::kStop, 0, {}, nullptr});
    thread_.join();
  }

  std::string endpoint() const override { return endpoint_; }

  bool Poll(ServerEvent* event) override {
    bool was_full;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (events_.empty()) return false;
      was_full = InboundFull();
      *event = std::move(events_.front());
      events_.pop_front();
      events_bytes_ -= event->frame.size();
    }
    if (was_full) waker_.Signal();  // the I/O thread stopped reading: room again
    return true;
  }

  Status Send(ConnId conn, std::string_view frame) override {
    std::shared_ptr<SendBudget> budget;
    uint64_t queued_bytes = 0;
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(conn);
      if (it == live_.end()) {
        return Status::Unavailable("zmq: connection " + std::to_string(conn) + " is closed");
      }
      budget = it->second;
      queued_bytes = budget->bytes.load(std::memory_order_relaxed);
      const uint64_t frames = budget->frames.load(std::memory_order_relaxed);
      if (frames == 0 || (queued_bytes + frame.size() <= 2 * opt_.queue_bytes_max &&
                          frames < 2 * uint64_t{opt_.queue_frames_max})) {
        budget->Add(frame.size());
      } else {
        live_.erase(it);
        EraseEventsOf(conn);
        events_.push_back({ServerEvent::Kind::kClose, conn, {}});
        dropped_slow_.fetch_add(1, std::memory_order_relaxed);
        wake = wake_;
        budget = nullptr;
      }
    }
    if (budget == nullptr) {
      Post({Command::Kind::kDrop, conn, {}, nullptr});
      Notify(wake);
      return Status::Unavailable("zmq: connection " + std::to_string(conn) + " dropped: its device left " +
                                 std::to_string(queued_bytes) + " bytes unread");
    }
    Post({Command::Kind::kSend, conn, std::string(frame), std::move(budget)});
    return Status::OK();
  }

  ListenerStats Stats() const override {
    ListenerStats stats;
    stats.queued_bytes = total_->bytes.load(std::memory_order_relaxed);
    stats.queued_frames = total_->frames.load(std::memory_order_relaxed);
    stats.held_bytes = held_bytes_.load(std::memory_order_relaxed);
    stats.connections_paused = paused_count_.load(std::memory_order_relaxed);
    stats.connections_dropped_slow = dropped_slow_.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    stats.inbound_bytes = events_bytes_;
    return stats;
  }

  void CloseConnection(ConnId conn) override {
    Wake wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_.erase(conn) == 0) return;
      // The server is done with it: its unread frames go, and its kClose is the last word.
      EraseEventsOf(conn);
      events_.push_back({ServerEvent::Kind::kClose, conn, {}});
      wake = wake_;
    }
    Post({Command::Kind::kClose, conn, {}, nullptr});
    Notify(wake);
  }

  void SetWakeup(std::function<void()> wake) override {
    Wake w = MakeWake(std::move(wake));
    std::lock_guard<std::mutex> lock(mu_);
    wake_.swap(w);
  }

 private:
  // Whether the server has as much waiting as the listener may hold (it then stops reading; ZeroMQ's pipes
  // and TCP push back on the devices). Requires mu_.
  bool InboundFull() const {
    return events_.size() >= opt_.queue_frames_max || events_bytes_ >= opt_.inbound_bytes_max;
  }
  // Requires mu_.
  void EraseEventsOf(ConnId conn) {
    std::erase_if(events_, [&](const ServerEvent& e) {
      if (e.conn != conn) return false;
      events_bytes_ -= e.frame.size();
      return true;
    });
  }
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
  // Tracks accepted connections that have not opened a session yet (the socket monitor's events).
  void WatchAccepted(int64_t now);
  void Receive(int64_t now);
  void Timers(int64_t now);
  // Sends to a peer; a peer that cannot take it (gone, or not draining) is dropped.
  void Transmit(const std::string& rid, Peer& peer, char type, std::string* body, int64_t now);
  void SendData(const std::string& rid, Peer& peer, std::string* frame, int64_t now);
  void FlushPending(int64_t now);
  bool OverBudget(const Peer& peer) const {
    return peer.budget->bytes.load(std::memory_order_relaxed) >= opt_.queue_bytes_max ||
           peer.budget->frames.load(std::memory_order_relaxed) >= opt_.queue_frames_max;
  }
  void Pause(const std::string& rid, Peer& peer, int64_t now);
  // Resumes the peers that drained (reporting what they sent meanwhile) and drops those paused too long.
  void CheckPaused(int64_t now);
  // Forgets a peer the I/O thread saw go (its 'C', silence, a failed send, not draining) and reports its
  // kClose.
  void Drop(const std::string& rid, DropWhy why);
  // Forgets a peer the server is done with; nothing is reported.
  void Forget(const std::string& rid);
  // Queues an event for the server (only for connections it still considers open) and wakes it. True when
  // the queue is full now (InboundFull): stop reading.
  bool Report(ServerEvent event);

  const TransportOptions opt_;
  void* const socket_;
  void* const monitor_;  // PAIR socket receiving socket_'s ACCEPTED, DISCONNECTED and CLOSED events
  const std::string endpoint_;
  Waker waker_;
  std::thread thread_;

  std::mutex cmd_mu_;
  std::deque<Command> commands_;  // guarded by cmd_mu_

  mutable std::mutex mu_;  // guards the server-facing state below
  std::deque<ServerEvent> events_;
  uint64_t events_bytes_ = 0;                                     // bytes of the frames in events_
  std::unordered_map<ConnId, std::shared_ptr<SendBudget>> live_;  // connections the server may use
  Wake wake_;

  // Written by the I/O thread (and ZeroMQ's, for total_), read by Stats.
  const std::shared_ptr<SendBudget> total_ = std::make_shared<SendBudget>();
  std::atomic<uint64_t> held_bytes_{0};
  std::atomic<uint64_t> paused_count_{0};
  std::atomic<uint64_t> dropped_slow_{0};

  // I/O thread only.
  std::unordered_map<std::string, Peer> peers_;   // routing id → peer
  std::unordered_map<ConnId, std::string> rids_;  // conn → routing id
  std::unordered_set<std::string> blocked_;       // peers with pending frames
  std::unordered_set<std::string> paused_;        // peers over budget
  struct Cut {
    PeerSocket sock;
    int64_t due_ms;
  };
  std::vector<Cut> cuts_;  // closed connections to cut off unless their device closed them by then
  // Accepted connections (by descriptor) that have not sent 'O': cut off after heartbeat_timeout_ms, or
  // anyone who can reach the port could hold a descriptor each, forever, without being a peer.
  struct Unopened {
    PeerSocket sock;
    int64_t since_ms;
  };
  std::unordered_map<int, Unopened> unopened_;
  std::unordered_set<int> opened_early_;  // 'O' seen before the monitor's ACCEPTED for its descriptor
  ConnId next_id_ = 1;
  int64_t next_timers_ms_ = 0;
};

void ZmqListener::Run() {
  for (;;) {
    bool events_full;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_full = InboundFull();
    }
    // A server that does not keep up stops the reading: ZeroMQ's queues and then TCP push back on devices.
    zmq_pollitem_t items[3] = {{nullptr, waker_.fd(), ZMQ_POLLIN, 0},
                               {socket_, 0, static_cast<short>(events_full ? 0 : ZMQ_POLLIN), 0},
                               {monitor_, 0, ZMQ_POLLIN, 0}};
    long timeout_ms = std::max<long>(10, std::min<int64_t>(opt_.heartbeat_ms, 250) / 2);
    // ZeroMQ releases a paused peer's budget on its own thread, with no wakeup: look again soon.
    if (!paused_.empty()) timeout_ms = 5;
    if (!blocked_.empty()) timeout_ms = 1;
    if (zmq_poll(items, 3, timeout_ms) < 0 && zmq_errno() != EINTR) continue;
    if (items[0].revents & ZMQ_POLLIN) waker_.Drain();
    const int64_t now = MonoMs();
    if (!RunCommands(now)) break;
    if (items[2].revents & ZMQ_POLLIN) WatchAccepted(now);
    FlushPending(now);
    if (!paused_.empty()) CheckPaused(now);
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
  zmq_socket_monitor(socket_, nullptr, 0);
  zmq_close(monitor_);
  zmq_close(socket_);
}

void ZmqListener::WatchAccepted(int64_t now) {
  uint16_t event = 0;
  uint32_t value = 0;
  for (int i = 0; i < 4096 && ReadMonitorEvent(monitor_, &event, &value); ++i) {
    const int fd = static_cast<int>(value);
    if (event == ZMQ_EVENT_ACCEPTED) {
      if (opened_early_.erase(fd) > 0) continue;
      const PeerSocket sock = IdentifySocket(fd);
      if (sock.fd >= 0) unopened_[fd] = {sock, now};
    } else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CLOSED) {
      unopened_.erase(fd);
      opened_early_.erase(fd);
    }
  }
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
    if (it == rids_.end()) {
      if (cmd.budget) cmd.budget->Release(cmd.frame.size());  // the peer went first: the frame is freed
      continue;
    }
    const std::string rid = it->second;
    Peer& peer = peers_.at(rid);
    if (cmd.kind == Command::Kind::kSend) {
      SendData(rid, peer, &cmd.frame, now);
      // A failed send drops the peer: `peer` may be gone.
      auto pit = peers_.find(rid);
      if (pit != peers_.end() && pit->second.paused_since_ms < 0 && OverBudget(pit->second)) {
        Pause(rid, pit->second, now);
      }
    } else if (cmd.kind == Command::Kind::kClose) {
      // From the server, whose kClose CloseConnection reported. What it sent last (an Error, say) still
      // goes out; a device that does not close its end on our 'C' is cut off after a heartbeat timeout.
      (void)SendMessage(socket_, rid, kClose, nullptr);
      cuts_.push_back({peer.sock, now + opt_.heartbeat_timeout_ms});
      Forget(rid);
    } else {  // kDrop: over the hard limit; its queue goes now
      const PeerSocket sock = peer.sock;
      Forget(rid);
      CutOff(sock);
    }
  }
  return true;
}

void ZmqListener::Transmit(const std::string& rid, Peer& peer, char type, std::string* body, int64_t now) {
  const int err = SendMessage(socket_, rid, type, body);
  peer.last_send_ms = now;
  // EAGAIN for a control message: its queue is full of data, which says as much as a ping. EHOSTUNREACH:
  // the device is gone.
  if (err != 0 && err != EAGAIN && err != EINTR) Drop(rid, DropWhy::kGone);
}

void ZmqListener::SendData(const std::string& rid, Peer& peer, std::string* frame, int64_t now) {
  if (peer.pending.empty()) {
    // ZeroMQ refuses a message only at its first part, so a refused frame is still whole in *frame.
    const int err = SendMessage(socket_, rid, kData, frame, peer.budget);
    peer.last_send_ms = now;
    if (err == 0) return;
    if (err != EAGAIN && err != EINTR) {
      peer.budget->Release(frame->size());
      return Drop(rid, DropWhy::kGone);
    }
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
    int err = 0;
    while (!peer.pending.empty()) {
      err = SendMessage(socket_, rid, kData, &peer.pending.front(), peer.budget);
      if (err != 0) break;
      peer.pending.pop_front();
      peer.last_send_ms = peer.blocked_since_ms = now;
    }
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
  for (const auto& rid : stuck) Drop(rid, DropWhy::kSlow);
}

void ZmqListener::Pause(const std::string& rid, Peer& peer, int64_t now) {
  peer.paused_since_ms = now;
  paused_.insert(rid);
  paused_count_.fetch_add(1, std::memory_order_relaxed);
}

void ZmqListener::CheckPaused(int64_t now) {
  std::vector<std::string> expired;
  for (auto it = paused_.begin(); it != paused_.end();) {
    Peer& peer = peers_.at(*it);
    if (OverBudget(peer)) {
      if (now - peer.paused_since_ms >= opt_.heartbeat_timeout_ms) expired.push_back(*it);
      ++it;
      continue;
    }
    for (std::string& frame : peer.held) Report({ServerEvent::Kind::kFrame, peer.id, std::move(frame)});
    held_bytes_.fetch_sub(peer.held_bytes, std::memory_order_relaxed);
    peer.held.clear();
    peer.held_bytes = 0;
    peer.paused_since_ms = -1;
    paused_count_.fetch_sub(1, std::memory_order_relaxed);
    it = paused_.erase(it);
  }
  for (const auto& rid : expired) Drop(rid, DropWhy::kSlow);
}

void ZmqListener::Receive(int64_t now) {
  std::vector<std::string> parts;
  int fd = -1;
  std::string address;
  // Bounded, so that commands (sends) keep flowing under a flood of inbound messages.
  for (int i = 0; i < 4096 && ReceiveMessage(socket_, &parts, &fd, &address); ++i) {
    if (parts.size() < 2 || parts[1].size() != 1) continue;  // not ours: dropped
    const std::string& rid = parts[0];
    const char type = parts[1][0];
    auto it = peers_.find(rid);
    if (it == peers_.end()) {
      if (type == kOpen && parts.size() == 2) {
        Peer peer{next_id_++, now, now};
        peer.budget = std::make_shared<SendBudget>();
        peer.budget->total = total_;
        peer.sock = IdentifySocket(fd);
        if (fd >= 0 && unopened_.erase(fd) == 0) opened_early_.insert(fd);
        rids_[peer.id] = rid;
        auto [pit, inserted] = peers_.emplace(rid, std::move(peer));
        {
          std::lock_guard<std::mutex> lock(mu_);
          live_.emplace(pit->second.id, pit->second.budget);
        }
        Report({ServerEvent::Kind::kOpen, pit->second.id, {}, std::move(address)});
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
      if (peer.paused_since_ms < 0 && OverBudget(peer)) Pause(rid, peer, now);
      if (peer.paused_since_ms < 0) {
        if (Report({ServerEvent::Kind::kFrame, peer.id, std::move(parts[2])})) break;  // the server is behind
      } else if (!peer.held.empty() && peer.held_bytes + parts[2].size() > opt_.queue_bytes_max) {
        Drop(rid, DropWhy::kSlow);  // asks for more and more while not reading the answers
      } else {
        peer.held_bytes += parts[2].size();
        held_bytes_.fetch_add(parts[2].size(), std::memory_order_relaxed);
        peer.held.push_back(std::move(parts[2]));
      }
    } else if (type == kClose && parts.size() == 2) {
      Drop(rid, DropWhy::kByDevice);
    }
    // kPing: its arrival was the point. Anything else: dropped.
  }
}

void ZmqListener::Timers(int64_t now) {
  // Decide first, act after: a ping that fails drops its peer, which must not happen mid-iteration.
  std::vector<std::string> silent, idle;
  for (auto& [rid, peer] : peers_) {
    // Over budget without asking for anything: its deadline runs all the same.
    if (peer.paused_since_ms < 0 && OverBudget(peer)) Pause(rid, peer, now);
    if (now - peer.last_recv_ms >= opt_.heartbeat_timeout_ms) {
      silent.push_back(rid);
    } else if (now - peer.last_send_ms >= opt_.heartbeat_ms) {
      idle.push_back(rid);
    }
  }
  for (const auto& rid : silent) Drop(rid, DropWhy::kSilent);
  std::erase_if(unopened_, [&](const auto& entry) {
    if (now - entry.second.since_ms < opt_.heartbeat_timeout_ms) return false;
    CutOff(entry.second.sock);
    return true;
  });
  std::erase_if(cuts_, [now](const Cut& cut) {
    if (now < cut.due_ms) return false;
    CutOff(cut.sock);
    return true;
  });
  for (const auto& rid : idle) {
    auto it = peers_.find(rid);
    if (it != peers_.end()) Transmit(rid, it->second, kPing, nullptr, now);
  }
}

void ZmqListener::Drop(const std::string& rid, DropWhy why) {
  auto it = peers_.find(rid);
  if (it == peers_.end()) return;
  const ConnId id = it->second.id;
  const PeerSocket sock = it->second.sock;
  const int64_t now = MonoMs();
  switch (why) {
    case DropWhy::kByDevice:
      cuts_.push_back({sock, now + opt_.heartbeat_timeout_ms});
      break;
    case DropWhy::kGone:
      break;
    case DropWhy::kSlow:
      dropped_slow_.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case DropWhy::kSilent:
      // Best effort: the 'C' waits behind what the device did not read; the cut is what it notices.
      (void)SendMessage(socket_, rid, kClose, nullptr);
      break;
  }
  Forget(rid);
  if (why == DropWhy::kSlow || why == DropWhy::kSilent) CutOff(sock);
  Report({ServerEvent::Kind::kClose, id, {}});
}

void ZmqListener::Forget(const std::string& rid) {
  auto it = peers_.find(rid);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  for (const std::string& frame : peer.pending) peer.budget->Release(frame.size());
  held_bytes_.fetch_sub(peer.held_bytes, std::memory_order_relaxed);
  if (paused_.erase(rid) > 0) paused_count_.fetch_sub(1, std::memory_order_relaxed);
  blocked_.erase(rid);
  rids_.erase(peer.id);
  peers_.erase(it);
}

bool ZmqListener::Report(ServerEvent event) {
  Wake wake;
  bool full;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (event.kind != ServerEvent::Kind::kOpen && !live_.contains(event.conn)) return InboundFull();
    if (event.kind == ServerEvent::Kind::kClose) live_.erase(event.conn);
    events_bytes_ += event.frame.size();
    events_.push_back(std::move(event));
    full = InboundFull();
    wake = wake_;
  }
  Notify(wake);
  return full;
}

}  // namespace

Result<std::unique_ptr<Listener>> ListenZmq(std::vector<std::string> endpoints,
                                            const TransportOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("a ZeroMQ listener needs at least one endpoint");
  if (options.heartbeat_ms <= 0 || options.heartbeat_timeout_ms <= options.heartbeat_ms ||
      options.queue_frames_max == 0 || options.queue_bytes_max == 0 || options.frame_bytes_max == 0 ||
      options.inbound_bytes_max == 0) {
    return Status::InvalidArgument(
        "TransportOptions: heartbeat_ms > 0, heartbeat_timeout_ms > heartbeat_ms and nonzero limits are "
        "required");
  }
  void* socket = zmq_socket(Context(), ZMQ_ROUTER);
  if (socket == nullptr) return ZmqStatus("zmq_socket");
  void* monitor = nullptr;
  auto fail = [&](Status st) {
    if (monitor != nullptr) {
      zmq_socket_monitor(socket, nullptr, 0);
      zmq_close(monitor);
    }
    zmq_close(socket);
    return st;
  };
  // Before any bind, so that no accepted connection goes unseen.
  static std::atomic<uint64_t> next_monitor{0};
  const std::string monitor_address = "inproc://outpost-router-monitor-" + std::to_string(next_monitor++);
  if (zmq_socket_monitor(socket, monitor_address.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED) != 0) {
    return fail(ZmqStatus("zmq_socket_monitor"));
  }
  monitor = zmq_socket(Context(), ZMQ_PAIR);
  if (monitor == nullptr) return fail(ZmqStatus("zmq monitor socket"));
  if (zmq_connect(monitor, monitor_address.c_str()) != 0) return fail(ZmqStatus("zmq monitor connect"));
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
  return std::unique_ptr<Listener>(std::make_unique<ZmqListener>(socket, monitor, std::move(bound), options));
}

}  // namespace outpost
