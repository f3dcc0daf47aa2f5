// Copyright 2026 The Outpost Authors.
//
// Pieces shared by the ZeroMQ dialer and listener: the process-wide context, the eventfd that wakes an I/O
// thread, message send/receive helpers, socket options and the wakeup-callback holder. Internal.
#ifndef OUTPOST_TRANSPORT_ZMQ_ZMQ_COMMON_H_
#define OUTPOST_TRANSPORT_ZMQ_ZMQ_COMMON_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/status.h"
#include "outpost/transport.h"

namespace outpost::zmq_internal {

// Transport message types (zmq_transport.h).
inline constexpr char kOpen = 'O';
inline constexpr char kAccepted = 'A';
inline constexpr char kData = 'D';
inline constexpr char kPing = 'P';
inline constexpr char kClose = 'C';

// The process-wide ZeroMQ context; never terminated (sockets may close during static destruction).
void* Context();

// Milliseconds of a monotonic clock. Heartbeats measure real time, not the engine's Env: a network peer's
// silence is a fact of the wall clock.
int64_t MonoMs();

// errno-style ZeroMQ error as a Status with `what` in front.
Status ZmqStatus(std::string_view what);

// Wakes an I/O thread blocked in zmq_poll: an eventfd polled as a plain file descriptor.
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Signal();
  void Drain();

 private:
  int fd_ = -1;
};

// A wakeup callback that may be replaced while another thread is calling it.
using Wake = std::shared_ptr<const std::function<void()>>;
inline Wake MakeWake(std::function<void()> fn) {
  return fn ? std::make_shared<const std::function<void()>>(std::move(fn)) : nullptr;
}
inline void Notify(const Wake& wake) {
  if (wake) (*wake)();
}

// Bytes and frames handed to a socket for one peer and not yet released by ZeroMQ. ZeroMQ releases a body
// once it has been written to the kernel (or dropped with its connection), so this counts what its pipes
// still hold, on top of whatever the caller adds for its own queues. Updated from ZeroMQ's I/O thread.
struct SendBudget {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> frames{0};
  std::shared_ptr<SendBudget> total;  // a listener-wide sum, or nullptr
  void Add(uint64_t n) {
    bytes.fetch_add(n, std::memory_order_relaxed);
    frames.fetch_add(1, std::memory_order_relaxed);
    if (total) total->Add(n);
  }
  void Release(uint64_t n) {
    bytes.fetch_sub(n, std::memory_order_relaxed);
    frames.fetch_sub(1, std::memory_order_relaxed);
    if (total) total->Release(n);
  }
};

// Sends [prefix...][type][body] without blocking; the body is handed over without a copy. Returns 0 or the
// errno (EAGAIN: queue full; EHOSTUNREACH: ROUTER peer gone). With `budget`, the body's size was Add()ed
// by the caller and is Release()d when ZeroMQ frees it (or here, when the send fails after the body left
// *body).
int SendMessage(void* socket, std::string_view routing_id, char type, std::string* body,
                const std::shared_ptr<SendBudget>& budget = nullptr);
// Receives one whole message without blocking; false when none is waiting. `fd`, when given: the file
// descriptor of the connection the message came on (ZMQ_SRCFD), -1 if ZeroMQ does not say. `peer`, when
// given: the remote address (the parts' Peer-Address metadata), empty if ZeroMQ does not say.
bool ReceiveMessage(void* socket, std::vector<std::string>* parts, int* fd = nullptr,
                    std::string* peer = nullptr);

// Options every Outpost ZeroMQ socket gets: no lingering beyond `linger_ms`, queue sizes, message cap.
// Receive pipes hold at most PipeMessagesMax(options) messages, so that what ZeroMQ buffers for a peer
// that the owner is not reading is bounded in bytes (that many times frame_bytes_max), not only frames.
Status ConfigureSocket(void* socket, const TransportOptions& options, int linger_ms);
int PipeMessagesMax(const TransportOptions& options);

// Reads one socket-monitor event (ZeroMQ's v1 format) and, when `value` is given, its value (the socket's
// descriptor for ACCEPTED, DISCONNECTED and CLOSED); false when none is waiting.
bool ReadMonitorEvent(void* monitor, uint16_t* event, uint32_t* value = nullptr);

// "tcp://127.0.0.1:*" for a tcp endpoint with port 0; the endpoint itself otherwise.
std::string BindAddress(const std::string& endpoint);

}  // namespace outpost::zmq_internal

#endif  // OUTPOST_TRANSPORT_ZMQ_ZMQ_COMMON_H_
