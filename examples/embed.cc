// Embedding Outpost: a server and one device in one process, joined by the in-process transport.
#include <cstdio>
#include <string>

#include "outpost/client.h"
#include "outpost/server.h"

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "outpost-embed-data";
  auto server = outpost::Server::Open({.store = "memory:embed"}, outpost::Listen("inproc:embed").value());
  auto client = outpost::Client::Open(
      {.store = "lmdb:" + dir, .server = "inproc:embed", .user = "alice", .device = "laptop"});
  if (!server.ok() || !client.ok()) return 1;
  (*server)->Start();                                                    // serves on its own thread
  auto id = (*client)->Submit("notes", "text", "hello, offline world");  // durable, queued, visible
  if (!id.ok()) return std::fprintf(stderr, "%s\n", id.status().ToString().c_str()), 1;
  if (!(*client)->RunUntilIdle().ok()) return 1;  // flush and pull (or Start())
  auto view = (*client)->Latest("notes", 10);
  for (const outpost::OpInfo& op : view.value()) {
    std::printf("%s seq=%llu %s\n", op.payload.c_str(), static_cast<unsigned long long>(op.seq),
                op.state == outpost::OpState::kSent ? "sent" : "pending");
  }
}
