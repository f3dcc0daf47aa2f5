// Copyright 2026 The Outpost Authors.
//
// NewDialer and Listen: pick a transport by URI scheme. Grammar: `inproc:NAME` with NAME non-empty;
// `tcp://HOST:PORT` and `ipc://PATH` are reserved for the ZeroMQ transport.
#include <string>
#include <string_view>

#include "outpost/transport.h"
#include "transport/inproc/inproc_transport.h"

namespace outpost {
namespace {

constexpr std::string_view kInprocPrefix = "inproc:";

Status UnsupportedUri(std::string_view uri) {
  std::string quoted = "'" + std::string(uri) + "'";
  if (uri.starts_with("tcp://") || uri.starts_with("ipc://")) {
    return Status::InvalidArgument(
        "transport " + quoted + ": the ZeroMQ transport (tcp://, ipc://) is not built yet; use inproc:NAME");
  }
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("transport " + quoted + " has no scheme (expected inproc:NAME)");
  }
  return Status::InvalidArgument("unknown transport scheme '" + std::string(uri.substr(0, colon)) + "' in " +
                                 quoted + " (expected inproc:NAME)");
}

}  // namespace

Result<std::unique_ptr<Dialer>> NewDialer(std::string_view uri) {
  if (uri.starts_with(kInprocPrefix)) return NewInprocDialer(uri.substr(kInprocPrefix.size()));
  return UnsupportedUri(uri);
}

Result<std::unique_ptr<Listener>> Listen(std::string_view uri) {
  if (uri.starts_with(kInprocPrefix)) return ListenInproc(uri.substr(kInprocPrefix.size()));
  return UnsupportedUri(uri);
}

}  // namespace outpost
