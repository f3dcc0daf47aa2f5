// Copyright 2026 The Outpost Authors.
//
// Fuzz target: transport URI parsing (engine/transport/transport_uri.cc and ParseZmqEndpoints), what
// NewDialer and Listen make of a server address from a config file or a command line. Properties: never
// crashes; every endpoint of a list that parses is one tcp://HOST:PORT (port in range) or ipc://PATH with
// no comma; NewDialer and Listen refuse exactly what the parser refuses. Parsed ZeroMQ URIs are not
// dialed (that would start I/O threads and touch the network); inproc URIs are opened and closed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/targets/fuzz_check.h"
#include "outpost/transport.h"
#include "transport/zmq/zmq_transport.h"

namespace {

void CheckEndpoints(const std::vector<std::string>& endpoints, bool for_listen) {
  FUZZ_CHECK(!endpoints.empty(), "a parsed list is not empty");
  for (const auto& e : endpoints) {
    FUZZ_CHECK(e.find(',') == std::string::npos, "endpoints are split at commas");
    if (e.starts_with("ipc://")) {
      FUZZ_CHECK(e.size() > 6, "an ipc endpoint has a path");
      continue;
    }
    FUZZ_CHECK(e.starts_with("tcp://"), "tcp:// or ipc://");
    const size_t colon = e.rfind(':');
    FUZZ_CHECK(colon > 6, "a tcp endpoint has a host");
    const std::string port = e.substr(colon + 1);
    FUZZ_CHECK(!port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos,
               "the port is digits");
    const int n = std::stoi(port);
    FUZZ_CHECK(n <= 65535 && (for_listen || n > 0), "the port is in range");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string uri(reinterpret_cast<const char*>(data), size);
  const bool zmq = uri.starts_with("tcp://") || uri.starts_with("ipc://");
  for (const bool for_listen : {false, true}) {
    auto endpoints = outpost::ParseZmqEndpoints(uri, for_listen);
    if (endpoints.ok()) {
      CheckEndpoints(*endpoints, for_listen);
      if (zmq) continue;  // a valid network address: not opened here
    } else {
      FUZZ_CHECK(endpoints.status().code() == outpost::Status::Code::kInvalidArgument, "InvalidArgument");
    }
    if (for_listen) {
      auto listener = outpost::Listen(uri);
      if (zmq) FUZZ_CHECK(!listener.ok(), "Listen refuses what the parser refuses");
    } else {
      auto dialer = outpost::NewDialer(uri);
      if (zmq) FUZZ_CHECK(!dialer.ok(), "NewDialer refuses what the parser refuses");
      if (!uri.starts_with("inproc:")) FUZZ_CHECK(!dialer.ok(), "unknown schemes are refused");
    }
  }
  return 0;
}
