// The offline story in one process: alice writes with no network, her messages show at once as pending,
// the network comes back and they flush; bob receives them, reads them, and alice sees the receipts.
// One message is refused by the server and stays visible with its reason until discarded.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

#include "outpost/client.h"
#include "outpost/server.h"

namespace {

using outpost::Client;
using outpost::OpInfo;
using outpost::OpState;

// Chat-style status: pending, sent, delivered (another device stored it), read, failed.
std::string StatusOf(Client& viewer, const OpInfo& op, const std::string& stream) {
  if (op.state == OpState::kPending) return "[pending]";
  if (op.state == OpState::kFailed) return "[failed: " + op.last_error + "]";
  std::string status = "[sent]";
  auto marks = viewer.Watermarks(stream).value();
  for (const auto& wm : marks) {
    if (wm.user == viewer.user() || wm.seq < op.seq) continue;
    if (wm.kind == outpost::WatermarkKind::kRead) return "[read by " + wm.user + "]";
    status = "[delivered]";
  }
  return status;
}

void Show(const char* title, Client& c, const std::string& stream) {
  std::printf("  %s's screen — %s\n", c.user().c_str(), title);
  auto view = c.Latest(stream, 20).value();
  for (const OpInfo& op : view) {
    std::printf("    %-6s %-28s %s\n", op.user.c_str(), op.payload.c_str(), StatusOf(c, op, stream).c_str());
  }
}

// Runs `c`'s background sync until `done` holds, waking on each change it reports; false after 5 s.
bool SyncUntil(Client& c, const std::function<bool()>& done) {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t sub = c.Subscribe("", [&](const std::vector<outpost::Change>&) {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  c.Start();
  std::unique_lock<std::mutex> lock(mu);
  bool ok = cv.wait_for(lock, std::chrono::seconds(5), done);
  lock.unlock();
  c.Stop();
  c.Unsubscribe(sub);
  return ok;
}

bool Check(const outpost::Status& st, const char* what) {
  if (!st.ok()) std::fprintf(stderr, "demo: %s: %s\n", what, st.ToString().c_str());
  return st.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: outpost_demo DATA_DIR\n"), 2;
  std::string dir = argv[1];
  outpost::ServerOptions so;
  so.store = "lmdb:" + dir + "/server";
  so.authorize = [](const outpost::AccessRequest& req) {
    if (req.access == outpost::Access::kPush && req.payload.empty()) {
      return outpost::Status::InvalidArgument("empty message refused");
    }
    return outpost::Status::OK();
  };
  auto server = outpost::Server::Open(so, outpost::Listen("inproc:demo").value());
  if (!Check(server.status(), "server")) return 1;
  (*server)->Start();
  auto alice = Client::Open(
      {.store = "lmdb:" + dir + "/alice", .server = "inproc:demo", .user = "alice", .device = "alice-phone"});
  auto bob = Client::Open(
      {.store = "lmdb:" + dir + "/bob", .server = "inproc:demo", .user = "bob", .device = "bob-laptop"});
  if (!Check(alice.status(), "alice") || !Check(bob.status(), "bob")) return 1;
  Client& a = **alice;
  Client& b = **bob;
  const std::string chat = "alice+bob";
  if (!Check(b.Follow(chat), "follow") || !Check(b.RunUntilIdle(), "bob sync")) return 1;

  std::printf("1. alice is offline and sends three messages\n");
  a.SetOnline(false);
  for (const char* text : {"are you there?", "the train has no signal", "see you at 8"}) {
    if (!Check(a.Submit(chat, "text", text).status(), "submit")) return 1;
  }
  auto bad = a.Submit(chat, "text", "");  // the server will refuse this one
  if (!Check(bad.status(), "submit")) return 1;
  Show("offline, each message durable and shown at once", a, chat);

  std::printf("2. the network comes back: the outbox flushes\n");
  a.SetOnline(true);
  if (!Check(a.RunUntilIdle(), "alice sync")) return 1;
  Show("online", a, chat);

  std::printf("3. bob syncs and reads\n");
  if (!Check(b.RunUntilIdle(), "bob sync")) return 1;
  auto seen = b.Latest(chat, 20).value();
  if (seen.size() != 3) return std::fprintf(stderr, "demo: bob sees %zu messages\n", seen.size()), 1;
  if (!Check(b.MarkRead(chat, seen.back().seq), "read") || !Check(b.RunUntilIdle(), "bob sync")) return 1;
  Show("after sync", b, chat);

  std::printf("4. alice gets the receipts; the refused message waits for her decision\n");
  uint64_t last_seq = seen.back().seq;
  bool read = SyncUntil(a, [&] {
    auto marks = a.Watermarks(chat).value();
    for (const auto& wm : marks) {
      if (wm.kind == outpost::WatermarkKind::kRead && wm.seq >= last_seq) return true;
    }
    return false;
  });
  if (!read) return std::fprintf(stderr, "demo: no read receipt reached alice\n"), 1;
  Show("receipts in", a, chat);
  if (!Check(a.Discard(*bad), "discard") || !Check(a.RunUntilIdle(), "alice sync")) return 1;
  Show("after discarding the refused message", a, chat);
  (*server)->Stop();
  std::printf("story complete\n");
  return 0;
}
