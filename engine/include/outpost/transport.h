// Copyright 2026 The Outpost Authors.
//
// Transport: moves whole frames (byte strings) between devices and a server. Frames may be lost,
// duplicated or reordered by a faulty network; the protocol above (see docs/protocol.md) survives that.
// Every call is non-blocking except Dialer::Connect, which may wait up to the transport's connect timeout
// for the server to answer; a wakeup callback tells a sleeping sync loop that something arrived.
//
// Device side: a Dialer makes Connections. Server side: a Listener yields events from every connection.
// URIs: `inproc:NAME` (this process), `tcp://HOST:PORT` and `ipc://PATH` (ZeroMQ, see
// engine/transport/zmq/zmq_transport.h). A dialer URI may list several endpoints separated by commas
// (`tcp://a:7700,tcp://b:7700`): Connect tries them in turn, starting with the last one that worked.
// A listener URI may list several too (bind to all); `tcp://HOST:0` binds a free port (see endpoint()).
//
// Thread safety: a Connection or Listener may be used from one thread at a time, except SetWakeup's
// callback, which may run on any thread and must only signal (never call back into the transport).
#ifndef OUTPOST_TRANSPORT_H_
#define OUTPOST_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

class Connection {
 public:
  virtual ~Connection() = default;
  // Queues one frame. Unavailable when the connection is closed (the frame is not sent).
  virtual Status Send(std::string_view frame) = 0;
  // Takes the next arrived frame; false when none is waiting.
  virtual bool Receive(std::string* frame) = 0;
  // False once either side closed it or the network dropped it; a closed Connection never reopens.
  virtual bool IsOpen() const = 0;
  virtual void Close() = 0;
  virtual void SetWakeup(std::function<void()> wake) = 0;
};

class Dialer {
 public:
  virtual ~Dialer() = default;
  // Unavailable when no server listens there.
  virtual Result<std::unique_ptr<Connection>> Connect() = 0;
};

using ConnId = uint64_t;

// Per connection: one kOpen, then its kFrames in the order the device sent them, then exactly one kClose,
// whichever side closed it (after CloseConnection(id), no more frames of `id` are reported). Ids are never
// reused by one Listener.
struct ServerEvent {
  enum class Kind : uint8_t { kOpen, kFrame, kClose };
  Kind kind = Kind::kFrame;
  ConnId conn = 0;
  std::string frame;  // kFrame only
};

class Listener {
 public:
  virtual ~Listener() = default;
  // Takes the next event; false when none is waiting.
  virtual bool Poll(ServerEvent* event) = 0;
  // Unavailable when that connection is gone.
  virtual Status Send(ConnId conn, std::string_view frame) = 0;
  virtual void CloseConnection(ConnId conn) = 0;
  virtual void SetWakeup(std::function<void()> wake) = 0;
  // The URI devices can dial, with any port 0 replaced by the port actually bound (empty if unknown).
  virtual std::string endpoint() const { return {}; }
};

// Options of the network transports (ignored by inproc). Limits are named with the unit last.
struct TransportOptions {
  // CURVE encryption (Z85 keys, 40 characters). Device: the server's public key; set → the connection is
  // encrypted and only that server is accepted. Server: its secret key; set → only CURVE devices connect.
  std::string curve_server_public_key;
  std::string curve_server_secret_key;
  int64_t heartbeat_ms = 1000;  // a side that sent nothing for this long sends a ping
  int64_t heartbeat_timeout_ms =
      5000;                           // nothing heard for this long: the peer is gone, the connection closes
  int64_t connect_timeout_ms = 3000;  // Connect gives up on an endpoint that has not answered by then
  // Transport-level cap on one frame: a bigger one drops the sender's connection before it is buffered.
  // Servers enforce their own, smaller protocol limit (ServerOptions::frame_bytes_max) with an Error frame.
  uint64_t frame_bytes_max = uint64_t{64} << 20;
  uint32_t queue_frames_max = 100'000;  // per connection and direction; a peer that does not drain is dropped
};

Result<std::unique_ptr<Dialer>> NewDialer(std::string_view uri, const TransportOptions& options = {});
// InvalidArgument for an unknown scheme or a malformed URI; FailedPrecondition when the name or address is
// already in use.
Result<std::unique_ptr<Listener>> Listen(std::string_view uri, const TransportOptions& options = {});

// A fresh CURVE key pair (Z85), for `outpostd` and tests.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};
Result<CurveKeyPair> NewCurveKeyPair();
// The public key that belongs to a Z85 secret key; InvalidArgument when it is not one.
Result<std::string> CurvePublicKey(std::string_view secret_key);

// Faults injected by WrapFaulty, each a probability per frame (both directions) unless noted.
struct FaultOptions {
  double drop = 0;
  double duplicate = 0;
  double delay = 0;  // held back 1..delay_ms_max ms, so later frames overtake them (reordering)
  int64_t delay_ms_max = 200;
  double disconnect = 0;  // chance per frame that the connection drops (both sides see a close)
};

class Env;
// Wraps a Dialer so that each Connection it makes suffers `faults`, drawn from a random source seeded with
// `seed`, timed by `env`'s clock. Delayed frames move on only when the connection is next used (Send,
// Receive, IsOpen): no wakeup fires when one falls due. The same seed, clock readings and calls give the same
// faults; each Connect() draws a fresh stream, so reconnects differ but replay exactly.
std::unique_ptr<Dialer> WrapFaulty(std::unique_ptr<Dialer> inner, const FaultOptions& faults, Env* env,
                                   uint64_t seed);

}  // namespace outpost

#endif  // OUTPOST_TRANSPORT_H_
