// Copyright 2026 The Outpost Authors.
//
// Device side of the ZeroMQ transport: a Dialer whose I/O thread owns one DEALER (plus its socket monitor)
// per Connection. See zmq_transport.h for the message types and the session rules.
#include <zmq.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transport/zmq/zmq_common.h"
#include "transport/zmq/zmq_transport.h"

namespace outpost {
namespace {

using namespace zmq_internal;  // NOLINT(google-build-using-namespace): this file is the transport

enum class Phase : uint8_t { kConnecting, kOpen, kClosed };

// One connection, shared by its Connection object (API threads) and the I/O thread.
struct ConnState {
  // Guarded by mu.
  std::mutex mu;
  std::condition_variable phase_changed;
  Phase phase = Phase::kConnecting;
  std::string close_reason;
  std::deque<std::string> inbox;
  uint64_t inbox_bytes = 0;
  Wake wake;
  size_t outbound = 0;  // frames given to Send and not yet taken by ZeroMQ

  // I/O thread only.
  std::string endpoint;
  void* socket = nullptr;
  void* monitor = nullptr;
  int64_t connect_deadline_ms = 0;
  int64_t last_recv_ms = 0;
  int64_t last_send_ms = 0;
  std::deque<std::string> pending;  // frames ZeroMQ would not take yet (its queue was full), in order
  int64_t blocked_since_ms = 0;
};

struct Command {
  enum class Kind : uint8_t { kOpen, kSend, kClose, kStop } kind;
  std::shared_ptr<ConnState> conn;
  std::string frame;
};

class DialerIo {
 public:
  DialerIo(const TransportOptions& options, std::string client_public, std::string client_secret)
      : opt_(options),
        client_public_(std::move(client_public)),
        client_secret_(std::move(client_secret)),
        context_(zmq_ctx_new()) {
    if (context_ != nullptr) zmq_ctx_set(context_, ZMQ_BLOCKY, 0);  // linger 0 unless a socket sets one
    thread_ = std::thread([this] { Run(); });
  }

  // The dialer's own ZeroMQ context ends here, after every socket was closed: terminating it waits (at most
  // the sockets' linger) until what the device sent last, such as its final watermarks and the goodbye,
  // has left. A process that exits right after a sync loses nothing it sent.
  ~DialerIo() {
    Post({Command::Kind::kStop, nullptr, {}});
    thread_.join();
    if (context_ != nullptr) zmq_ctx_term(context_);
  }

  const TransportOptions& options() const { return opt_; }

  // Unread frames enough that the I/O thread stops reading this connection. c.mu held.
  bool InboxFull(const ConnState& c) const {
    return c.inbox.size() >= opt_.queue_frames_max || c.inbox_bytes >= opt_.queue_bytes_max;
  }

  // Wakes the I/O thread (a reader made room in a full inbox).
  void Kick() { waker_.Signal(); }

  void Post(Command cmd) {
    bool was_empty;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_empty = commands_.empty();
      commands_.push_back(std::move(cmd));
    }
    // The I/O thread takes the whole queue at once: one wakeup per non-empty queue is enough.
    if (was_empty) waker_.Signal();
  }

 private:
  void Run();
  bool RunCommands();  // false on kStop
  void Open(const std::shared_ptr<ConnState>& c);
  void Receive(ConnState& c, int64_t now);
  void Watch(ConnState& c);
  void Timers(ConnState& c, int64_t now);
  void Transmit(ConnState& c, char type, std::string* body);
  void SendData(ConnState& c, std::string* frame, int64_t now);
  void FlushPending(ConnState& c, int64_t now);
  // Ends the connection from this side: tells the server unless the socket is already useless.
  void Finish(ConnState& c, std::string reason, bool tell_server);

  const TransportOptions opt_;
  const std::string client_public_;
  const std::string client_secret_;
  Waker waker_;
  std::mutex mu_;
  std::deque<Command> commands_;                   // guarded by mu_
  std::vector<std::shared_ptr<ConnState>> conns_;  // I/O thread only: every connection with a socket
  void* const context_;                            // this dialer's sockets only
  std::thread thread_;
};

void DialerIo::Run() {
  std::vector<zmq_pollitem_t> items;
  for (;;) {
    items.clear();
    items.push_back({nullptr, waker_.fd(), ZMQ_POLLIN, 0});
    bool any_pending = false;
    for (const auto& c : conns_) {
      bool inbox_full;
      {
        std::lock_guard<std::mutex> lock(c->mu);
        inbox_full = InboxFull(*c);
      }
      // A full inbox stops reading: ZeroMQ's queues and then TCP push back on the server.
      items.push_back({c->socket, 0, static_cast<short>(inbox_full ? 0 : ZMQ_POLLIN), 0});
      items.push_back({c->monitor, 0, ZMQ_POLLIN, 0});
      any_pending = any_pending || !c->pending.empty();
    }
    // Heartbeats and deadlines are checked at least this often; frames ZeroMQ refused are retried sooner.
    long timeout_ms = conns_.empty() ? -1 : std::max<long>(10, std::min<int64_t>(opt_.heartbeat_ms, 250) / 2);
    if (any_pending) timeout_ms = 1;
    if (zmq_poll(items.data(), static_cast<int>(items.size()), timeout_ms) < 0 && zmq_errno() != EINTR) {
      continue;
    }
    if (items[0].revents & ZMQ_POLLIN) waker_.Drain();
    if (!RunCommands()) return;
    const int64_t now = MonoMs();
    // `conns_` may have grown in RunCommands; only the polled ones have revents.
    const size_t polled = (items.size() - 1) / 2;
    for (size_t i = 0; i < conns_.size(); ++i) {
      ConnState& c = *conns_[i];
      if (c.socket == nullptr) continue;
      FlushPending(c, now);
      if (c.socket != nullptr && i < polled && (items[1 + 2 * i].revents & ZMQ_POLLIN)) Receive(c, now);
      if (c.socket != nullptr && i < polled && (items[2 + 2 * i].revents & ZMQ_POLLIN)) Watch(c);
      if (c.socket != nullptr) Timers(c, now);
    }
    std::erase_if(conns_, [](const auto& c) { return c->socket == nullptr; });
  }
}

bool DialerIo::RunCommands() {
  std::deque<Command> commands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands.swap(commands_);
  }
  for (Command& cmd : commands) {
    switch (cmd.kind) {
      case Command::Kind::kStop:
        for (auto& c : conns_) Finish(*c, "the dialer is gone", true);
        conns_.clear();
        return false;
      case Command::Kind::kOpen:
        Open(cmd.conn);
        break;
      case Command::Kind::kSend:
        if (cmd.conn->socket != nullptr) SendData(*cmd.conn, &cmd.frame, MonoMs());
        break;
      case Command::Kind::kClose:
        if (cmd.conn->socket != nullptr) Finish(*cmd.conn, "closed by the device", true);
        break;
    }
  }
  return true;
}

void DialerIo::Open(const std::shared_ptr<ConnState>& c) {
  static std::atomic<uint64_t> next_monitor{0};
  auto fail = [&](Status st) {
    if (c->monitor) zmq_close(c->monitor);
    if (c->socket) zmq_close(c->socket);
    c->monitor = c->socket = nullptr;
    std::lock_guard<std::mutex> lock(c->mu);
    c->phase = Phase::kClosed;
    c->close_reason = st.ToString();
    c->phase_changed.notify_all();
  };
  c->socket = context_ ? zmq_socket(context_, ZMQ_DEALER) : nullptr;
  if (c->socket == nullptr) return fail(ZmqStatus("zmq_socket"));
  // A short linger: the goodbye 'C' gets out, a dead server does not hold the socket for long.
  Status st = ConfigureSocket(c->socket, opt_, 200);
  if (st.ok() && !opt_.curve_server_public_key.empty()) {
    const std::string& server = opt_.curve_server_public_key;
    if (zmq_setsockopt(c->socket, ZMQ_CURVE_SERVERKEY, server.c_str(), server.size()) != 0 ||
        zmq_setsockopt(c->socket, ZMQ_CURVE_PUBLICKEY, client_public_.c_str(), client_public_.size()) != 0 ||
        zmq_setsockopt(c->socket, ZMQ_CURVE_SECRETKEY, client_secret_.c_str(), client_secret_.size()) != 0) {
      st = ZmqStatus("CURVE server key");
    }
  }
  if (!st.ok()) return fail(st);
  const std::string monitor_address = "inproc://outpost-dealer-monitor-" + std::to_string(next_monitor++);
  const int events = ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(c->socket, monitor_address.c_str(), events) != 0) {
    return fail(ZmqStatus("zmq_socket_monitor"));
  }
  c->monitor = zmq_socket(context_, ZMQ_PAIR);
  if (c->monitor == nullptr || zmq_connect(c->monitor, monitor_address.c_str()) != 0) {
    return fail(ZmqStatus("zmq monitor socket"));
  }
  if (zmq_connect(c->socket, c->endpoint.c_str()) != 0) return fail(ZmqStatus(c->endpoint));
  const int64_t now = MonoMs();
  c->connect_deadline_ms = now + opt_.connect_timeout_ms;
  c->last_recv_ms = now;
  Transmit(*c, kOpen, nullptr);
  conns_.push_back(c);
}

void DialerIo::Transmit(ConnState& c, char type, std::string* body) {
  const int err = SendMessage(c.socket, {}, type, body);
  c.last_send_ms = MonoMs();
  // EAGAIN for a control message: the queue is full of data, which tells the server as much as a ping.
  if (err != 0 && err != EAGAIN && err != EINTR) {
    Finish(c, std::string("send failed: ") + zmq_strerror(err), false);
  }
}

void DialerIo::SendData(ConnState& c, std::string* frame, int64_t now) {
  if (c.pending.empty()) {
    // ZeroMQ refuses a message only at its first part, so a refused frame is still whole in *frame.
    const int err = SendMessage(c.socket, {}, kData, frame);
    c.last_send_ms = now;
    if (err == 0) {
      std::lock_guard<std::mutex> lock(c.mu);
      --c.outbound;
      return;
    }
    if (err != EAGAIN && err != EINTR) {
      Finish(c, std::string("send failed: ") + zmq_strerror(err), false);
      return;
    }
    c.blocked_since_ms = now;
  }
  c.pending.push_back(std::move(*frame));
}

void DialerIo::FlushPending(ConnState& c, int64_t now) {
  size_t sent = 0;
  while (!c.pending.empty()) {
    const int err = SendMessage(c.socket, {}, kData, &c.pending.front());
    if (err == EAGAIN || err == EINTR) break;
    if (err != 0) {
      Finish(c, std::string("send failed: ") + zmq_strerror(err), false);
      return;
    }
    c.pending.pop_front();
    c.last_send_ms = now;
    c.blocked_since_ms = now;
    ++sent;
  }
  if (sent > 0) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.outbound -= sent;
  }
  if (!c.pending.empty() && now - c.blocked_since_ms >= opt_.heartbeat_timeout_ms) {
    Finish(c,
           c.endpoint + ": the server took nothing for " + std::to_string(opt_.heartbeat_timeout_ms) + " ms",
           false);
  }
}

void DialerIo::Receive(ConnState& c, int64_t now) {
  std::vector<std::string> parts;
  Wake wake;
  bool woke = false;
  // Bounded, so one busy connection cannot starve the others or the command queue.
  for (int i = 0; i < 1024 && c.socket != nullptr && ReceiveMessage(c.socket, &parts); ++i) {
    c.last_recv_ms = now;
    if (parts.empty() || parts[0].size() != 1) continue;  // not ours: dropped
    const char type = parts[0][0];
    if (type == kAccepted && parts.size() == 1) {
      std::lock_guard<std::mutex> lock(c.mu);
      if (c.phase == Phase::kConnecting) {
        c.phase = Phase::kOpen;
        c.phase_changed.notify_all();
      }
    } else if (type == kData && parts.size() == 2) {
      std::lock_guard<std::mutex> lock(c.mu);
      if (c.phase != Phase::kOpen) continue;
      c.inbox_bytes += parts[1].size();
      c.inbox.push_back(std::move(parts[1]));
      wake = c.wake;
      woke = true;
      if (InboxFull(c)) break;  // full: read no more until the device catches up
    } else if (type == kClose && parts.size() == 1) {
      Finish(c, "closed by the server", false);
    }
  }
  if (woke) Notify(wake);
}

void DialerIo::Watch(ConnState& c) {
  uint16_t event = 0;
  while (c.monitor != nullptr && ReadMonitorEvent(c.monitor, &event)) {
    switch (event) {
      case ZMQ_EVENT_CONNECT_RETRIED:
        // Refused (nobody listens there): ZeroMQ would retry quietly; a session cannot wait on that.
        if (c.phase == Phase::kConnecting) Finish(c, c.endpoint + ": connection refused", false);
        break;
      case ZMQ_EVENT_DISCONNECTED:
        Finish(c, c.endpoint + ": connection lost", false);
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        Finish(c, c.endpoint + ": security handshake failed (check the server's CURVE public key)", false);
        break;
      default:
        break;
    }
  }
}

void DialerIo::Timers(ConnState& c, int64_t now) {
  Phase phase;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    phase = c.phase;
    // A full inbox is not read (backpressure): the silence is ours, not the server's.
    if (InboxFull(c)) c.last_recv_ms = now;
  }
  if (phase == Phase::kConnecting && now >= c.connect_deadline_ms) {
    Finish(c, c.endpoint + ": no answer within " + std::to_string(opt_.connect_timeout_ms) + " ms", false);
  } else if (phase == Phase::kOpen && now - c.last_recv_ms >= opt_.heartbeat_timeout_ms) {
    Finish(c, c.endpoint + ": the server went silent", false);
  } else if (phase == Phase::kOpen && now - c.last_send_ms >= opt_.heartbeat_ms) {
    Transmit(c, kPing, nullptr);
  }
}

void DialerIo::Finish(ConnState& c, std::string reason, bool tell_server) {
  if (c.socket == nullptr) return;
  if (tell_server) (void)SendMessage(c.socket, {}, kClose, nullptr);
  zmq_socket_monitor(c.socket, nullptr, 0);
  zmq_close(c.monitor);
  zmq_close(c.socket);
  c.monitor = c.socket = nullptr;
  c.pending.clear();
  Wake wake;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.phase != Phase::kClosed) {
      c.phase = Phase::kClosed;
      c.close_reason = std::move(reason);
    }
    c.phase_changed.notify_all();
    wake = c.wake;
  }
  Notify(wake);
}

class ZmqConnection final : public Connection {
 public:
  ZmqConnection(std::shared_ptr<DialerIo> io, std::shared_ptr<ConnState> state)
      : io_(std::move(io)), state_(std::move(state)) {}
  ~ZmqConnection() override { Close(); }

  Status Send(std::string_view frame) override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->phase != Phase::kOpen) {
        return Status::Unavailable("zmq connection to " + state_->endpoint +
                                   " is closed: " + state_->close_reason);
      }
      if (state_->outbound >= io_->options().queue_frames_max) {
        return Status::Busy("zmq connection to " + state_->endpoint + ": send queue full");
      }
      ++state_->outbound;
    }
    io_->Post({Command::Kind::kSend, state_, std::string(frame)});
    return Status::OK();
  }

  bool Receive(std::string* frame) override {
    bool was_full;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->inbox.empty()) return false;
      was_full = io_->InboxFull(*state_);
      *frame = std::move(state_->inbox.front());
      state_->inbox.pop_front();
      state_->inbox_bytes -= frame->size();
    }
    if (was_full) io_->Kick();  // the I/O thread stopped reading this socket: room again
    return true;
  }

  bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->phase == Phase::kOpen;
  }

  void Close() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->inbox.clear();
      state_->inbox_bytes = 0;
      if (state_->phase == Phase::kClosed && closed_) return;
      if (state_->phase != Phase::kClosed) {
        state_->phase = Phase::kClosed;
        state_->close_reason = "closed by the device";
      }
    }
    closed_ = true;
    io_->Post({Command::Kind::kClose, state_, {}});  // frees the socket even if the server closed first
  }

  void SetWakeup(std::function<void()> wake) override {
    Wake w = MakeWake(std::move(wake));
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->wake.swap(w);
  }

 private:
  std::shared_ptr<DialerIo> io_;
  std::shared_ptr<ConnState> state_;
  bool closed_ = false;
};

class ZmqDialer final : public Dialer {
 public:
  ZmqDialer(std::vector<std::string> endpoints, std::shared_ptr<DialerIo> io)
      : endpoints_(std::move(endpoints)), io_(std::move(io)) {}

  Result<std::unique_ptr<Connection>> Connect() override {
    std::string reasons;
    const size_t first = preferred_.load();
    for (size_t k = 0; k < endpoints_.size(); ++k) {
      const size_t i = (first + k) % endpoints_.size();
      auto state = std::make_shared<ConnState>();
      state->endpoint = endpoints_[i];
      io_->Post({Command::Kind::kOpen, state, {}});
      std::unique_lock<std::mutex> lock(state->mu);
      // The I/O thread enforces connect_timeout_ms; the extra second only guards against a stuck thread.
      const auto limit = std::chrono::milliseconds(io_->options().connect_timeout_ms + 1000);
      state->phase_changed.wait_for(lock, limit, [&] { return state->phase != Phase::kConnecting; });
      if (state->phase == Phase::kOpen) {
        lock.unlock();
        preferred_.store(i);
        return std::unique_ptr<Connection>(std::make_unique<ZmqConnection>(io_, std::move(state)));
      }
      if (state->phase == Phase::kConnecting) {
        state->phase = Phase::kClosed;
        state->close_reason = state->endpoint + ": no answer";
      }
      if (!reasons.empty()) reasons += "; ";
      reasons += state->close_reason;
      lock.unlock();
      io_->Post({Command::Kind::kClose, state, {}});
    }
    return Status::Unavailable("no server answered: " + reasons);
  }

 private:
  const std::vector<std::string> endpoints_;
  std::shared_ptr<DialerIo> io_;
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last
};

}  // namespace

Result<std::unique_ptr<Dialer>> NewZmqDialer(std::vector<std::string> endpoints,
                                             const TransportOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("a ZeroMQ dialer needs at least one endpoint");
  if (options.heartbeat_ms <= 0 || options.heartbeat_timeout_ms <= options.heartbeat_ms ||
      options.connect_timeout_ms <= 0 || options.queue_frames_max == 0 || options.queue_bytes_max == 0 ||
      options.frame_bytes_max == 0) {
    return Status::InvalidArgument(
        "TransportOptions: heartbeat_ms > 0, heartbeat_timeout_ms > heartbeat_ms, connect_timeout_ms > 0 and "
        "nonzero limits are required");
  }
  std::string client_public, client_secret;
  if (!options.curve_server_public_key.empty()) {
    if (!zmq_has("curve")) return Status::InvalidArgument("this libzmq was built without CURVE");
    if (options.curve_server_public_key.size() != 40) {
      return Status::InvalidArgument("the server's CURVE public key must be 40 Z85 characters");
    }
    OUTPOST_ASSIGN_OR_RETURN(CurveKeyPair pair, NewCurveKeyPair());
    client_public = pair.public_key;
    client_secret = pair.secret_key;
  }
  auto io = std::make_shared<DialerIo>(options, std::move(client_public), std::move(client_secret));
  return std::unique_ptr<Dialer>(std::make_unique<ZmqDialer>(std::move(endpoints), std::move(io)));
}

}  // namespace outpost
