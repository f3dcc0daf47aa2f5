// Copyright 2026 The Outpost Authors.
//
// Raw ZeroMQ peers for the end-to-end tests that play an attacker: no Outpost transport code on this side.
#ifndef OUTPOST_TESTS_E2E_RAW_PEER_H_
#define OUTPOST_TESTS_E2E_RAW_PEER_H_

#include <gtest/gtest.h>
#include <zmq.h>

#include <cstdint>
#include <string>
#include <vector>

#include "codec.h"
#include "e2e/e2e_util.h"

namespace outpost::e2e {

// A raw ZeroMQ DEALER speaking the transport's framing (zmq_transport.h: 'O' open, 'A' accepted, 'D' data,
// 'P' ping, 'C' close) with frames it builds itself. It pings when asked to (Keepalive), so that the
// listener never drops it for silence: whatever closes it is the limit under test.
class RawPeer {
 public:
  struct Options {
    int rcv_hwm = 1000;  // messages ZeroMQ reads ahead of us
    int rcv_buf = -1;    // SO_RCVBUF (-1: the OS's)
    // ZeroMQ dials again when the server cuts the TCP connection off; off, a cut is final.
    bool reconnect = true;
  };
  RawPeer(void* context, const std::string& endpoint, Options o) : socket_(zmq_socket(context, ZMQ_DEALER)) {
    const int zero = 0;
    zmq_setsockopt(socket_, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(socket_, ZMQ_SNDHWM, &zero, sizeof zero);  // never drop our own requests
    zmq_setsockopt(socket_, ZMQ_RCVHWM, &o.rcv_hwm, sizeof o.rcv_hwm);
    if (o.rcv_buf > 0) zmq_setsockopt(socket_, ZMQ_RCVBUF, &o.rcv_buf, sizeof o.rcv_buf);
    const int never = -1;
    if (!o.reconnect) zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL, &never, sizeof never);
    EXPECT_EQ(zmq_connect(socket_, endpoint.c_str()), 0) << zmq_strerror(zmq_errno());
  }
  RawPeer(void* context, const std::string& endpoint) : RawPeer(context, endpoint, Options{}) {}
  ~RawPeer() { zmq_close(socket_); }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  // Non-blocking: false when ZeroMQ would not take it (no connection to the server).
  bool Send(const std::vector<std::string>& parts) {
    for (size_t i = 0; i < parts.size(); ++i) {
      const int flags = ZMQ_DONTWAIT | (i + 1 < parts.size() ? ZMQ_SNDMORE : 0);
      if (zmq_send(socket_, parts[i].data(), parts[i].size(), flags) < 0) return false;
    }
    last_send_ms_ = SteadyNowMs();
    return true;
  }
  void SendFrame(const std::string& frame) { Send({"D", frame}); }
  // A ping when nothing was sent for 300 ms (the listener's heartbeat timeout is 5 s).
  void Keepalive() {
    if (SteadyNowMs() - last_send_ms_ >= 300) Send({"P"});
  }
  // The next whole message within `timeout_ms`; false when none came.
  bool Receive(std::vector<std::string>* parts, int64_t timeout_ms) {
    parts->clear();
    zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, static_cast<long>(timeout_ms)) <= 0) return false;
    int more = 0;
    do {
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      if (zmq_msg_recv(&msg, socket_, 0) < 0) {
        zmq_msg_close(&msg);
        return false;
      }
      parts->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
      more = zmq_msg_more(&msg);
      zmq_msg_close(&msg);
    } while (more);
    return true;
  }
  // Waits for a message whose first part is `type`, skipping others; false when none came in time.
  bool Expect(char type, int64_t timeout_ms) {
    std::vector<std::string> parts;
    return WaitFor([&] { return Receive(&parts, 20) && !parts.empty() && parts[0] == std::string(1, type); },
                   timeout_ms);
  }
  // Opens a transport session: 'O', then waits for 'A'.
  bool Open(int64_t timeout_ms) {
    Send({"O"});
    return Expect('A', timeout_ms);
  }
  // Takes the next message if one is waiting: true when it is a data message whose frame has body `type`
  // (its bytes in `*frame`). Pings first if due.
  bool TakeFrame(wire::Body type, std::string* frame) {
    Keepalive();
    std::vector<std::string> parts;
    if (!Receive(&parts, 0) || parts.size() != 2 || parts[0] != "D") return false;
    auto f = codec::DecodeFrame(parts[1], 1 << 30);
    if (!f.ok() || (*f)->body_type() != type) return false;
    *frame = parts[1];
    return true;
  }
  // Waits for a data frame with body `type` (others skipped).
  bool ExpectFrame(wire::Body type, std::string* frame, int64_t timeout_ms) {
    return WaitFor([&] { return TakeFrame(type, frame); }, timeout_ms);
  }

 private:
  void* socket_;
  int64_t last_send_ms_ = 0;
};

// One ZeroMQ context for a test's raw peers (closed, then terminated, at the end of the test).
class ZmqContext {
 public:
  ZmqContext() : context_(zmq_ctx_new()) {}
  ~ZmqContext() { zmq_ctx_term(context_); }
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* get() const { return context_; }

 private:
  void* context_;
};

}  // namespace outpost::e2e

#endif  // OUTPOST_TESTS_E2E_RAW_PEER_H_
