// Copyright 2026 The Outpost Authors.
//
// The transports the conformance suite runs against. Adding a backend (ZeroMQ tcp://, ipc://) is one more
// entry here; the suite itself stays transport-generic.
#ifndef OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_
#define OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
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

// A loopback TCP port that was free a moment ago: the kernel picks it for a socket bound to port 0, which
// is then closed. Ports are handed out in sequence, so a just-freed one is not given again soon.
inline int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

inline std::string UniqueTcpUri(const std::string&) {
  return "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
}

inline std::string UniqueIpcUri(const std::string& tag) {
  static std::atomic<int> next{0};
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  // UNIX socket paths are short (108 bytes): the tag is cut to a few safe characters, the pid and a counter
  // keep it unique.
  std::string safe = tag.substr(0, 16);
  for (char& c : safe) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return "ipc://" + (dir / ("outpost-" + std::to_string(getpid()) + "-" + std::to_string(next.fetch_add(1)) +
                            "-" + safe + ".sock"))
                        .string();
}

inline std::vector<TransportBackend> AllTransportBackends() {
  return {
      {"inproc", &UniqueInprocUri},
      {"zmq_tcp", &UniqueTcpUri},
      {"zmq_ipc", &UniqueIpcUri},
  };
}

inline std::ostream& operator<<(std::ostream& out, const TransportBackend& backend) {
  return out << backend.name;
}

}  // namespace outpost

#endif  // OUTPOST_TESTS_CONFORMANCE_TRANSPORT_BACKENDS_H_
