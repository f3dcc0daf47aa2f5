// Copyright 2026 The Outpost Authors.
//
// The in-process transport behind `inproc:NAME`: a process-wide registry maps NAME to a listener, and each
// connection is a pair of in-memory FIFO queues. A list `inproc:a,inproc:b` works as a ZeroMQ list does: a
// dialer tries the names in turn on each Connect, starting with the one that answered last (a device fails
// over between server instances); a listener listens on every name. Nothing is lost, duplicated or reordered
// (wrap a dialer with WrapFaulty for that); frames are copied once, on Send.
//
// Lifetimes: connections and listeners are independent objects. Destroying a Listener frees its name and
// closes every connection it accepted; destroying a Connection closes it. Either side may outlive the other.
//
// Events: the listener reports kOpen when a device connects, kFrame for each frame, and exactly one kClose
// per connection, whoever closed it, so a server can keep all its per-connection cleanup in one place.
// CloseConnection(id) discards the frames of `id` still waiting in the listener's queue and queues its
// kClose: after that the server hears nothing more of `id`. Frames the server sent before closing stay
// receivable by the device, as on a stream socket; a device that closes its own end discards what it had
// not received.
//
// Budgets (transport.h): the server→device queue of each connection counts its bytes and frames; over
// TransportOptions::queue_bytes_max or queue_frames_max the connection is paused (frames the device sends
// meanwhile are held, up to queue_bytes_max bytes; past that the device's Send gets Unavailable and the
// connection is dropped), and a connection paused for heartbeat_timeout_ms, read on TransportOptions::env's
// clock, is dropped. Pauses end as soon as the device's Receive brings the queue under budget; their
// deadlines are checked by the listener's Poll (no timer: a server that never polls drops nobody, but then it
// sends nothing either). The device→server queue is shared by all of one listener's connections and holds at
// most kInprocQueueFramesMax frames; a device Send beyond that returns Busy. Thread safety as in transport.h;
// the device and server ends may run on different threads.
#ifndef OUTPOST_TRANSPORT_INPROC_INPROC_TRANSPORT_H_
#define OUTPOST_TRANSPORT_INPROC_INPROC_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"
#include "outpost/transport.h"

namespace outpost {

// Frames one queue may hold: a device→server queue is shared by all of one listener's connections.
inline constexpr size_t kInprocQueueFramesMax = size_t{1} << 20;

// Splits `inproc:a,inproc:b,...` into its names (the parts after "inproc:"). InvalidArgument names the bad
// part: one that is not inproc:NAME (an empty NAME included; a list is all inproc or all ZeroMQ), or a name
// given twice.
Result<std::vector<std::string>> ParseInprocNames(std::string_view uri);

// `names` (at least one, none empty): Connect() tries each in turn, starting with the one that answered
// last, and returns Unavailable while nobody listens on any; the dialer may be kept and retried.
Result<std::unique_ptr<Dialer>> NewInprocDialer(std::vector<std::string> names);
// Listens on every name of `names`, or on none: FailedPrecondition when one is already listened on in this
// process; InvalidArgument for zero budgets or a heartbeat_timeout_ms that is not positive.
Result<std::unique_ptr<Listener>> ListenInproc(std::vector<std::string> names,
                                               const TransportOptions& options = {});

}  // namespace outpost

#endif  // OUTPOST_TRANSPORT_INPROC_INPROC_TRANSPORT_H_
