// Copyright 2026 The Outpost Authors.
//
// Transport: moves whole frames (byte strings) between devices and a server. Frames may be lost,
// duplicated or reordered by a faulty network; the protocol above (see docs/protocol.md) survives that.
// Every call is non-blocking except Dialer::Connect, which may wait up to the transport's connect timeout
// for the server to answer; a wakeup callback tells a sleeping sync loop that something arrived.
//
// Device side: a Dialer makes Connections. Server side: a Listener yields events from every connection.
// URIs: `inproc:NAME` (this process), `tcp://HOST:PORT` and `ipc://PATH` (ZeroMQ, see
// engine/transport/zmq/zmq_transport.h). A dialer URI may list several endpoints separated by commas, all
// inproc or all ZeroMQ (`tcp://a:7700,tcp://b:7700`, `inproc:a,inproc:b`): Connect tries them in turn,
// starting with the last one that worked, so a device fails over between server instances.
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

#include "outpost/export.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

class OUTPOST_EXPORT Connection {
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

class OUTPOST_EXPORT Dialer {
 public:
  virtual ~Dialer() = default;
  // Unavailable when no server listens there.
  virtual Result<std::unique_ptr<Connection>> Connect() = 0;
};

using ConnId = uint64_t;

// Per connection: one kOpen, then its kFrames in the order the device sent them, then exactly one kClose,
// whichever side closed it (after CloseConnection(id), no more frames of `id` are reported). Ids are never
// reused by one Listener.
//
// Budgets (TransportOptions, every backend): a connection's send queue is every byte given to Send and not
// yet taken by its device, wherever the transport holds it (its own queues and, for ZeroMQ, its pipes). A
// connection whose queue holds queue_bytes_max bytes or queue_frames_max frames is PAUSED: frames it sends
// meanwhile are held, not reported by Poll (at most queue_bytes_max bytes of them; a paused device that sends
// more is dropped), so it cannot ask for more. Once its device takes enough to bring the queue under both
// limits, the held frames are reported in order. A connection paused for heartbeat_timeout_ms is DROPPED:
// its queue and held frames are freed and its kClose reported. A connection is never kept while frames
// given to Send are lost.
struct ServerEvent {
  enum class Kind : uint8_t { kOpen, kFrame, kClose };
  Kind kind = Kind::kFrame;
  ConnId conn = 0;
  std::string frame;  // kFrame only
  std::string peer;   // kOpen only: the remote address when the transport knows it (HelloInfo::peer)
};

// What a Listener holds, for tests and monitoring. Computed on demand (O(connections)); not for hot paths.
struct ListenerStats {
  uint64_t queued_bytes = 0;   // given to Send and not yet taken by devices, over open connections
  uint64_t queued_frames = 0;  // the same, in frames
  uint64_t held_bytes = 0;     // received from paused connections and not yet reported
  uint64_t connections_paused = 0;
  uint64_t connections_dropped_slow = 0;  // ever dropped for not draining (timeout, hard limit, flood)
  uint64_t inbound_bytes = 0;  // ZeroMQ: frames received and not yet taken by Poll (inbound_bytes_max)
};

class OUTPOST_EXPORT Listener {
 public:
  virtual ~Listener() = default;
  // Takes the next event; false when none is waiting. Also where the inproc transport checks its pause
  // deadlines (the ZeroMQ transport checks them on its own thread).
  virtual bool Poll(ServerEvent* event) = 0;
  // Queues `frame` for `conn`. OK: the frame is queued and will be delivered unless the connection closes
  // (its kClose tells). Unavailable when that connection is gone, and when this frame would take its queue
  // past the hard limit (twice queue_bytes_max bytes or twice queue_frames_max frames; a frame into an
  // empty queue always fits): then the connection is dropped there and then, as by CloseConnection, except
  // that what it had queued is freed at once (its kClose is still reported by Poll).
  virtual Status Send(ConnId conn, std::string_view frame) = 0;
  // Frames already queued for `conn` are still delivered if its device reads them; see the backend for how
  // long the transport waits before cutting the connection off.
  virtual void CloseConnection(ConnId conn) = 0;
  virtual void SetWakeup(std::function<void()> wake) = 0;
  // The URI devices can dial, with any port 0 replaced by the port actually bound (empty if unknown).
  virtual std::string endpoint() const { return {}; }
  // All zero for a Listener that does not keep them (a wrapper, for instance).
  virtual ListenerStats Stats() const { return {}; }
};

class Env;

// Options of the transports. Limits are named with the unit last. The budgets and heartbeat_timeout_ms apply
// to every backend; the rest to the network transports only.
struct TransportOptions {
  // CURVE encryption (Z85 keys, 40 characters). Device: the server's public key; set → the connection is
  // encrypted and only that server is accepted. Server: its secret key; set → only CURVE devices connect.
  std::string curve_server_public_key;
  std::string curve_server_secret_key;
  int64_t heartbeat_ms = 1000;  // a side that sent nothing for this long sends a ping
  // Nothing heard for this long: the peer is gone, the connection closes. Also how long a listener lets a
  // connection stay paused (over its send budget) before dropping it.
  int64_t heartbeat_timeout_ms = 5000;
  int64_t connect_timeout_ms = 3000;  // Connect gives up on an endpoint that has not answered by then
  // Transport-level cap on one frame: a bigger one drops the sender's connection before it is buffered.
  // Servers enforce their own, smaller protocol limit (ServerOptions::frame_bytes_max) with an Error frame.
  uint64_t frame_bytes_max = uint64_t{64} << 20;
  // Per-connection send budget of a listener (see Listener): at this many queued bytes or frames the
  // connection is paused, at twice as many Send drops it. A dialer stops reading the network while its
  // unread frames hold this many bytes or frames (the server then sees its queue grow).
  uint64_t queue_bytes_max = uint64_t{8} << 20;
  uint32_t queue_frames_max = 100'000;
  // What a ZeroMQ listener holds received and not yet taken by Poll, all connections together: at this many
  // bytes (or queue_frames_max frames) it stops reading until the server catches up, and ZeroMQ's pipes
  // and TCP push back on the devices.
  uint64_t inbound_bytes_max = uint64_t{64} << 20;
  // The clock of the inproc listener's pause deadlines (a simulation passes its own); nullptr: SystemEnv().
  // The ZeroMQ transport measures the wall clock.
  Env* env = nullptr;
};

OUTPOST_EXPORT Result<std::unique_ptr<Dialer>> NewDialer(std::string_view uri,
                                                         const TransportOptions& options = {});
// InvalidArgument for an unknown scheme or a malformed URI; FailedPrecondition when the name or address is
// already in use.
OUTPOST_EXPORT Result<std::unique_ptr<Listener>> Listen(std::string_view uri,
                                                        const TransportOptions& options = {});

// A fresh CURVE key pair (Z85), for `outpostd` and tests.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};
OUTPOST_EXPORT Result<CurveKeyPair> NewCurveKeyPair();
// The public key that belongs to a Z85 secret key; InvalidArgument when it is not one.
OUTPOST_EXPORT Result<std::string> CurvePublicKey(std::string_view secret_key);

// Faults injected by WrapFaulty, each a probability per frame (both directions) unless noted.
struct FaultOptions {
  double drop = 0;
  double duplicate = 0;
  double delay = 0;  // held back 1..delay_ms_max ms, so later frames overtake them (reordering)
  int64_t delay_ms_max = 200;
  double disconnect = 0;  // chance per frame that the connection drops (both sides see a close)
};

// Wraps a Dialer so that each Connection it makes suffers `faults`, drawn from a random source seeded with
// `seed`, timed by `env`'s clock. Delayed frames move on only when the connection is next used (Send,
// Receive, IsOpen): no wakeup fires when one falls due. The same seed, clock readings and calls give the same
// faults; each Connect() draws a fresh stream, so reconnects differ but replay exactly.
OUTPOST_EXPORT std::unique_ptr<Dialer> WrapFaulty(std::unique_ptr<Dialer> inner, const FaultOptions& faults,
                                                  Env* env, uint64_t seed);

}  // namespace outpost

#endif  // OUTPOST_TRANSPORT_H_
