// Copyright 2026 The Outpost Authors.
#include "transport/zmq/zmq_common.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "transport/zmq/zmq_transport.h"

namespace outpost {
namespace zmq_internal {

void* Context() {
  static void* const context = [] {
    void* ctx = zmq_ctx_new();
    // Servers hold one socket per listener, devices one per connection; the default of 1023 is too few for
    // a server benchmark with thousands of devices in one process.
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 65535);
    zmq_ctx_set(ctx, ZMQ_BLOCKY, 0);
    return ctx;
  }();
  return context;
}

int64_t MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status ZmqStatus(std::string_view what) {
  const int err = zmq_errno();
  std::string message = std::string(what) + ": " + zmq_strerror(err);
  switch (err) {
    case EADDRINUSE:
      return Status::FailedPrecondition(message);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENODEV:
      return Status::InvalidArgument(message);
    case EAGAIN:
      return Status::Busy(message);
    default:
      return Status::IOError(message);
  }
}

Waker::Waker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
Waker::~Waker() {
  if (fd_ >= 0) close(fd_);
}
void Waker::Signal() {
  const uint64_t one = 1;
  // EAGAIN (counter saturated) still leaves the fd readable, which is all a wakeup needs.
  ssize_t n = write(fd_, &one, sizeof one);
  (void)n;
}
void Waker::Drain() {
  uint64_t count;
  ssize_t n = read(fd_, &count, sizeof count);
  (void)n;
}

namespace {

// A body on its way through ZeroMQ, with the budget it counts against.
struct Outgoing {
  std::string data;
  std::shared_ptr<SendBudget> budget;
};

void FreeOutgoing(void* /*data*/, void* hint) {
  auto* out = static_cast<Outgoing*>(hint);
  if (out->budget) out->budget->Release(out->data.size());
  delete out;
}

int SendPart(void* socket, const void* data, size_t size, int flags) {
  return zmq_send(socket, data, size, flags | ZMQ_DONTWAIT) < 0 ? zmq_errno() : 0;
}

}  // namespace

int SendMessage(void* socket, std::string_view routing_id, char type, std::string* body,
                const std::shared_ptr<SendBudget>& budget) {
  // ZeroMQ queues a multipart message atomically: once the first part is accepted, the rest are too.
  if (!routing_id.empty()) {
    if (int err = SendPart(socket, routing_id.data(), routing_id.size(), ZMQ_SNDMORE)) return err;
  }
  if (body == nullptr) return SendPart(socket, &type, 1, 0);
  if (int err = SendPart(socket, &type, 1, ZMQ_SNDMORE)) return err;
  zmq_msg_t msg;
  auto* owned = new Outgoing{std::move(*body), budget};
  zmq_msg_init_data(&msg, owned->data.data(), owned->data.size(), &FreeOutgoing, owned);
  if (zmq_msg_send(&msg, socket, ZMQ_DONTWAIT) < 0) {
    const int err = zmq_errno();
    zmq_msg_close(&msg);
    return err;
  }
  return 0;
}

bool ReceiveMessage(void* socket, std::vector<std::string>* parts, int* fd, std::string* peer) {
  parts->clear();
  if (fd != nullptr) *fd = -1;
  if (peer != nullptr) peer->clear();
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket, parts->empty() ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&msg);
      return !parts->empty();
    }
    parts->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    if (fd != nullptr && *fd < 0) *fd = zmq_msg_get(&msg, ZMQ_SRCFD);
    if (peer != nullptr && peer->empty()) {
      // ZeroMQ's connection metadata: the remote IP of a TCP peer (none over ipc or inproc). A ROUTER's
      // routing-id part is its own and carries none: the peer's parts do.
      if (const char* address = zmq_msg_gets(&msg, "Peer-Address")) peer->assign(address);
    }
    const bool more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    if (!more) return true;
  }
}

int PipeMessagesMax(const TransportOptions& options) {
  // At least a few messages, so that small frames do not cost a thread hand-off each; at most what the
  // byte budget allows for frames of the largest size.
  const uint64_t by_bytes = options.queue_bytes_max / std::max<uint64_t>(options.frame_bytes_max, 1);
  return static_cast<int>(std::clamp<uint64_t>(by_bytes, 4, std::max<uint32_t>(options.queue_frames_max, 4)));
}

Status ConfigureSocket(void* socket, const TransportOptions& options, int linger_ms) {
  // Sends are counted in bytes by their owner (SendBudget); the frame cap only keeps ZeroMQ's own pipe short.
  const int hwm = static_cast<int>(std::min<uint32_t>(options.queue_frames_max, INT_MAX));
  const int rcv_hwm = PipeMessagesMax(options);
  const int64_t max_bytes = static_cast<int64_t>(std::min<uint64_t>(options.frame_bytes_max + 64, INT64_MAX));
  const int reconnect_ms = 100;
  if (zmq_setsockopt(socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0 ||
      zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
      zmq_setsockopt(socket, ZMQ_RCVHWM, &rcv_hwm, sizeof rcv_hwm) != 0 ||
      zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_bytes, sizeof max_bytes) != 0 ||
      zmq_setsockopt(socket, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms) != 0) {
    return ZmqStatus("zmq socket options");
  }
  return Status::OK();
}

bool ReadMonitorEvent(void* monitor, uint16_t* event, uint32_t* value) {
  std::vector<std::string> parts;
  if (!ReceiveMessage(monitor, &parts)) return false;
  if (parts.empty() || parts[0].size() < 6) {
    *event = 0;
    return true;
  }
  std::memcpy(event, parts[0].data(), sizeof *event);
  if (value != nullptr) std::memcpy(value, parts[0].data() + 2, sizeof *value);
  return true;
}

std::string BindAddress(const std::string& endpoint) {
  if (endpoint.starts_with("tcp://") && endpoint.ends_with(":0")) {
    return endpoint.substr(0, endpoint.size() - 1) + "*";
  }
  return endpoint;
}

}  // namespace zmq_internal

Result<std::vector<std::string>> ParseZmqEndpoints(std::string_view uri, bool for_listen) {
  std::vector<std::string> endpoints;
  auto bad = [&](std::string_view part, std::string_view why) {
    return Status::InvalidArgument("transport endpoint '" + std::string(part) + "' in '" + std::string(uri) +
                                   "': " + std::string(why));
  };
  size_t start = 0;
  while (start <= uri.size()) {
    size_t comma = uri.find(',', start);
    std::string_view part = uri.substr(start, comma == std::string_view::npos ? uri.npos : comma - start);
    if (part.starts_with("tcp://")) {
      std::string_view rest = part.substr(6);
      size_t colon = rest.rfind(':');
      if (colon == std::string_view::npos || colon == 0) return bad(part, "expected tcp://HOST:PORT");
      std::string_view port = rest.substr(colon + 1);
      if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
        return bad(part, "the port must be a number 1..65535");
      }
      const int n = std::stoi(std::string(port));
      if (n > 65535 || (n == 0 && !for_listen)) return bad(part, "the port must be a number 1..65535");
    } else if (part.starts_with("ipc://")) {
      if (part.size() == 6) return bad(part, "expected ipc://PATH");
    } else {
      return bad(part, "expected tcp://HOST:PORT or ipc://PATH");
    }
    endpoints.emplace_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return endpoints;
}

Result<CurveKeyPair> NewCurveKeyPair() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) return zmq_internal::ZmqStatus("CURVE key pair");
  return CurveKeyPair{std::string(public_key, 40), std::string(secret_key, 40)};
}

Result<std::string> CurvePublicKey(std::string_view secret_key) {
  if (secret_key.size() != 40) return Status::InvalidArgument("a CURVE secret key is 40 Z85 characters");
  std::string secret(secret_key);
  char public_key[41];
  if (zmq_curve_public(public_key, secret.c_str()) != 0) {
    return Status::InvalidArgument("not a Z85 CURVE secret key");
  }
  return std::string(public_key, 40);
}

}  // namespace outpost
