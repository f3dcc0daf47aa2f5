// Copyright 2026 The Outpost Authors.
//
// The transports the conformance suite runs against. Adding a backend (ZeroMQ tcp://, ipc://) is one more
// entry here; the suite itself stays transport-generic.
#ifndef OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_
#define OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_

#include <atomic>
#include <ostream>
#include <string>
#include <vector>

namespace outpost {

struct TransportBackend {
  const char* name;  // a test-name suffix: letters, digits, underscores
  // A URI that no other test in this process uses, so tests never share a listener by accident. `tag`
  // (the test's name) only makes failures easier to read.
  std::string (*unique_uri)(const std::string& tag);
};

inline std::string UniqueInprocUri(const std::string& tag) {
  static std::atomic<int> next{0};
  return "inproc:" + tag + "-" + std::to_string(next.fetch_add(1));
}

inline std::vector<TransportBackend> AllTransportBackends() {
  return {
      {"inproc", &UniqueInprocUri},
  };
}

inline std::ostream& operator<<(std::ostream& out, const TransportBackend& backend) {
  return out << backend.name;
}

}  // namespace outpost

#endif  // OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_
