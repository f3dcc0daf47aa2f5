// Copyright 2026 The Outpost Authors.
//
// The transport conformance suite (outpost::conformance, a GoogleTest library): every test that Outpost's own
// transports (inproc:, ZeroMQ tcp:// and ipc://) pass, run against a Listener and Dialer of your own.
// Register the transport once and link the library; each registered transport gets the whole suite, named
// AllTransports/TransportConformanceTest.TEST/NAME.
//
//   // my_transport_conformance_test.cc, linked with outpost::conformance and GTest::gtest_main
//   #include "outpost/testing/transport_conformance.h"
//   #include "my_transport.h"  // ListenMy and DialMy: (const std::string& uri, const TransportOptions&)
//
//   OUTPOST_TRANSPORT_CONFORMANCE(MyTransport, (outpost::conformance::TransportConformanceBackend{
//       .unique_uri = [](const std::string&) { return "my://127.0.0.1:" + std::to_string(FreePort()); },
//       .listen = &ListenMy,
//       .dial = &DialMy,
//       .has_inbound_queue = true}));
//
// What the suite expects beyond transport.h: a comma-separated list of URIs listens on every endpoint (or on
// none) and dials them in turn; a second listener on a URI in use fails with FailedPrecondition; a dialer may
// be made before its listener exists. Waits are bounded (10 s each, generous for sanitizers) and end as
// soon as their condition holds; the suite never sleeps for a length of time. Some tests run threads of
// their own, so the suite also runs under ASan and TSan.
#ifndef OUTPOST_TESTING_TRANSPORT_CONFORMANCE_H_
#define OUTPOST_TESTING_TRANSPORT_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "outpost/result.h"
#include "outpost/transport.h"

namespace outpost::conformance {

struct TransportConformanceBackend {
  // The suffix of the test names (letters, digits, underscores). OUTPOST_TRANSPORT_CONFORMANCE sets it from
  // its first argument.
  std::string name = {};
  // A URI that no other test in this process uses, so that tests never share a listener by accident.
  // `tag` (the test's name) only makes failures easier to read.
  std::function<std::string(const std::string& tag)> unique_uri = {};
  // Listen and dial on a URI (or a comma-separated list of them). Empty: outpost::Listen and
  // outpost::NewDialer, for a transport that is one of their schemes.
  std::function<Result<std::unique_ptr<Listener>>(const std::string& uri, const TransportOptions& options)>
      listen = {};
  std::function<Result<std::unique_ptr<Dialer>>(const std::string& uri, const TransportOptions& options)>
      dial = {};
  // The listener keeps its own bounded queue of inbound frames (TransportOptions::inbound_bytes_max); a
  // transport that hands frames over in the sender's memory (inproc:) sets false and skips that test.
  bool has_inbound_queue = true;
};

// Adds `backend` to the transports the suite runs against. Call it before testing::InitGoogleTest (the
// macro below does, during static initialisation); later calls have no effect on the run. Thread-safe.
// Always returns true (so that it can initialise a static).
bool RegisterTransportConformance(TransportConformanceBackend backend);

// Keeps GoogleTest from printing the std::functions as bytes.
void PrintTo(const TransportConformanceBackend& backend, std::ostream* out);

}  // namespace outpost::conformance

// Registers BACKEND (a TransportConformanceBackend expression, in parentheses if it has commas) under NAME,
// at namespace scope in any file of the test binary.
#define OUTPOST_TRANSPORT_CONFORMANCE(NAME, BACKEND)                                         \
  [[maybe_unused]] static const bool outpost_transport_conformance_registered_##NAME = [] {  \
    ::outpost::conformance::TransportConformanceBackend outpost_backend = BACKEND;           \
    outpost_backend.name = #NAME;                                                            \
    return ::outpost::conformance::RegisterTransportConformance(std::move(outpost_backend)); \
  }()

#endif  // OUTPOST_TESTING_TRANSPORT_CONFORMANCE_H_
