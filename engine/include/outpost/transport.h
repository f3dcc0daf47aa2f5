// Copyright 2026 The Outpost Authors.
//
// Transport: moves whole frames (byte strings) between devices and a server. Frames may be lost,
// duplicated or reordered by a faulty network; the protocol above (see docs/protocol.md) survives that.
// Every call is non-blocking; a wakeup callback tells a sleeping sync loop that something arrived.
//
// Device side: a Dialer makes Connections. Server side: a Listener yields events from every connection.
// URIs: `inproc:NAME` (this process), later `tcp://HOST:PORT`, `ipc://PATH`.
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
};

Result<std::unique_ptr<Dialer>> NewDialer(std::string_view uri);
// InvalidArgument for an unknown scheme; FailedPrecondition when the name is already listened on.
Result<std::unique_ptr<Listener>> Listen(std::string_view uri);

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
