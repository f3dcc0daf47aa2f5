// Copyright 2026 The Outpost Authors.
//
// NewDialer and Listen: pick a transport by URI scheme. Grammar:
//   uri         = inproc-list | zmq-list  (a dialer tries the list in turn, starting with the endpoint
//                                          that answered last; a listener listens on / binds them all)
//   inproc-list = "inproc:" NAME *( "," "inproc:" NAME )
//   zmq-list    = zmq *( "," zmq )
//   zmq         = "tcp://" HOST ":" PORT | "ipc://" PATH      (PORT 0: a free port, listeners only)
#include <string>
#include <string_view>

#include "outpost/transport.h"
#include "transport/inproc/inproc_transport.h"
#if OUTPOST_WITH_ZMQ
#include "transport/zmq/zmq_transport.h"
#endif

namespace outpost {
namespace {

constexpr std::string_view kInprocPrefix = "inproc:";
constexpr std::string_view kExpected = "(expected inproc:NAME, tcp://HOST:PORT or ipc://PATH)";

bool IsZmq(std::string_view uri) { return uri.starts_with("tcp://") || uri.starts_with("ipc://"); }

Status UnknownUri(std::string_view uri) {
  std::string quoted = "'" + std::string(uri) + "'";
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("transport " + quoted + " has no scheme " + std::string(kExpected));
  }
  return Status::InvalidArgument("unknown transport scheme '" + std::string(uri.substr(0, colon)) + "' in " +
                                 quoted + " " + std::string(kExpected));
}

#if !OUTPOST_WITH_ZMQ
Status ZmqNotBuilt(std::string_view uri) {
  return Status::FailedPrecondition(std::string(uri.substr(0, uri.find(':'))) +
                                    ": not built into this Outpost (OUTPOST_WITH_ZMQ=OFF)");
}
#endif

}  // namespace

Result<std::unique_ptr<Dialer>> NewDialer(std::string_view uri, const TransportOptions& options) {
  if (uri.starts_with(kInprocPrefix)) {
    OUTPOST_ASSIGN_OR_RETURN(auto names, ParseInprocNames(uri));
    return NewInprocDialer(std::move(names));
  }
  if (IsZmq(uri)) {
#if OUTPOST_WITH_ZMQ
    OUTPOST_ASSIGN_OR_RETURN(auto endpoints, ParseZmqEndpoints(uri, /*for_listen=*/false));
    return NewZmqDialer(std::move(endpoints), options);
#else
    return ZmqNotBuilt(uri);
#endif
  }
  return UnknownUri(uri);
}

Result<std::unique_ptr<Listener>> Listen(std::string_view uri, const TransportOptions& options) {
  if (uri.starts_with(kInprocPrefix)) {
    OUTPOST_ASSIGN_OR_RETURN(auto names, ParseInprocNames(uri));
    return ListenInproc(std::move(names), options);
  }
  if (IsZmq(uri)) {
#if OUTPOST_WITH_ZMQ
    OUTPOST_ASSIGN_OR_RETURN(auto endpoints, ParseZmqEndpoints(uri, /*for_listen=*/true));
    return ListenZmq(std::move(endpoints), options);
#else
    return ZmqNotBuilt(uri);
#endif
  }
  return UnknownUri(uri);
}

}  // namespace outpost
