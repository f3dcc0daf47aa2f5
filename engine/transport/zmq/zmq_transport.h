// Copyright 2026 The Outpost Authors.
//
// The ZeroMQ transport behind `tcp://HOST:PORT` and `ipc://PATH` (Debian's libzmq, no draft API).
//
// Sockets: one DEALER per device Connection, one ROUTER per Listener (bound to every endpoint it was given).
// Each ZeroMQ message is one transport message: a one-byte type part, then, for data, the frame itself.
//   'O' open      device → server   the first message of a connection
//   'A' accepted  server → device   the answer to 'O'; Connect returns once it arrives
//   'D' data      both              one frame, as the second part
//   'P' ping      both              sent by a side that has sent nothing for heartbeat_ms
//   'C' close     both              the sender ended the connection (or the server does not know it)
// Anything else (wrong part count, unknown type) is dropped and counted; it never reaches the engine.
//
// A connection is one session. A DEALER whose TCP connection drops is closed, never silently reconnected
// (ZeroMQ would give it a new ROUTER identity mid-session); the engine makes a new Connection, with its own
// capped, jittered backoff, and says Hello again. Liveness: a side that hears nothing (data or ping) for
// heartbeat_timeout_ms closes the connection; the device also closes at once when ZeroMQ reports the TCP
// connection gone (socket monitor), so a killed server is noticed in milliseconds, a silent one in seconds.
//
// Threads: each Dialer and each Listener runs one I/O thread that owns all of its sockets. API calls hand
// work to it through a queue and an eventfd and get frames back through per-connection queues, so every
// method keeps transport.h's thread-safety contract. Frames are handed to ZeroMQ without a copy.
//
// Limits: a message larger than TransportOptions::frame_bytes_max drops the sender's connection inside
// ZeroMQ (ZMQ_MAXMSGSIZE) before it is buffered. Send budgets (transport.h) count the listener's queues and
// ZeroMQ's pipe, in bytes. A peer the listener drops, or closes and that does not close its end within
// heartbeat_timeout_ms, has its socket shut down under ZeroMQ (found by ZMQ_SRCFD): libzmq 4.3's stable
// API has no call to disconnect one ROUTER peer. So does an accepted connection (seen by the ROUTER's
// socket monitor) that sends no 'O' within heartbeat_timeout_ms: it is no peer yet, but holds a descriptor.
#ifndef OUTPOST_TRANSPORT_ZMQ_ZMQ_TRANSPORT_H_
#define OUTPOST_TRANSPORT_ZMQ_ZMQ_TRANSPORT_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/transport.h"

namespace outpost {

// `endpoints`: tcp://HOST:PORT or ipc://PATH each, already split and validated (ParseZmqEndpoints).
Result<std::unique_ptr<Dialer>> NewZmqDialer(std::vector<std::string> endpoints,
                                             const TransportOptions& options);
// Binds every endpoint; port 0 picks a free port (Listener::endpoint() says which). FailedPrecondition when
// an address is in use (an ipc path counts as in use while something accepts connections on it).
Result<std::unique_ptr<Listener>> ListenZmq(std::vector<std::string> endpoints,
                                            const TransportOptions& options);

// Splits a comma-separated URI list and checks each: `tcp://HOST:PORT` (PORT 1..65535, or 0 when
// `for_listen`) or `ipc://PATH`. InvalidArgument names the bad part.
Result<std::vector<std::string>> ParseZmqEndpoints(std::string_view uri, bool for_listen);

}  // namespace outpost

#endif  // OUTPOST_TRANSPORT_ZMQ_ZMQ_TRANSPORT_H_
