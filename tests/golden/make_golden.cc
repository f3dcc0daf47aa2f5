// Copyright 2026 The Outpost Authors.
//
// make_golden: writes the golden stores (tests/golden/README.md) for each persistent backend: a device
// store that has lived a little, the server store it synced with, and expected.json saying what both hold.
// Run once per format generation by the build of that generation, and checked in; never run again over an
// existing directory (it refuses to), because the point of a golden store is that an older build wrote it.
//
//   make_golden OUT_DIR [lmdb] [sqlite] [rocksdb]     (default: all three)
//
// Per backend B it writes OUT_DIR/B/: device store alice/phone (`device` for lmdb and rocksdb, `device.db`
// for sqlite), server store (`server`, `server.db`), expected.json. The device's story: it follows
// "general" and "news"; it and bob/laptop write to "general", bob writes to "news"; both sync, so each
// holds the other's ops; bob reads, so alice holds bob's delivered and read receipts; alice marks a read
// position; one op of alice's is refused by the server (failed); then alice goes offline and writes three
// ops, which stay pending in her outbox when she closes.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "golden/golden_state.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "outpost/transport.h"

namespace outpost::golden {
namespace {

constexpr char kRefused[] = "refused by the server";

int Fail(const std::string& what) {
  std::fprintf(stderr, "make_golden: %s\n", what.c_str());
  return 1;
}

// Runs `device` (RunUntilIdle) until `condition` holds, at most 30 s.
bool SyncUntil(Client& device, const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    (void)device.RunUntilIdle(200);
    if (condition()) return true;
  }
  return condition();
}

bool HasWatermark(Client& c, const std::string& stream, const std::string& user, WatermarkKind kind) {
  auto wms = c.Watermarks(stream);
  if (!wms.ok()) return false;
  for (const Watermark& w : *wms) {
    if (w.user == user && w.kind == kind && w.seq > 0) return true;
  }
  return false;
}

bool StateIs(Client& c, const OpId& id, OpState state) {
  auto op = c.Get(id);
  return op.ok() && op->state == state;
}

std::string StoreUri(const std::string& backend, const std::string& dir, const std::string& name) {
  return backend + ":" + dir + "/" + (backend == "sqlite" ? name + ".db" : name);
}

int MakeBackend(const std::string& backend, const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0) return Fail("cannot create " + dir + " (it must not exist yet)");
  const std::string server_uri = StoreUri(backend, dir, "server");
  const std::string device_uri = StoreUri(backend, dir, "device");
  const std::string endpoint = "inproc:golden-" + backend;

  ServerOptions so;
  so.store = server_uri;
  so.authorize = [](const AccessRequest& r) {
    if (r.access == Access::kPush && r.payload == kRefused)
      return Status::PermissionDenied("not allowed here");
    return Status::OK();
  };
  auto listener = Listen(endpoint);
  if (!listener.ok()) return Fail(listener.status().ToString());
  auto server = Server::Open(std::move(so), std::move(*listener));
  if (!server.ok()) return Fail("server: " + server.status().ToString());
  (*server)->Start();

  auto open = [&](const std::string& store, const std::string& user, const std::string& device) {
    ClientOptions o;
    o.store = store;
    o.server = endpoint;
    o.user = user;
    o.device = device;
    o.ack_timeout_ms = 10'000;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 50;
    return Client::Open(std::move(o));
  };
  auto alice_or = open(device_uri, "alice", "phone");
  if (!alice_or.ok()) return Fail("alice: " + alice_or.status().ToString());
  auto bob_or = open("memory:", "bob", "laptop");
  if (!bob_or.ok()) return Fail("bob: " + bob_or.status().ToString());
  Client& alice = **alice_or;
  Client& bob = **bob_or;

  // Synced both ways.
  for (const std::string& s : Streams()) {
    if (!alice.Follow(s).ok() || !bob.Follow(s).ok()) return Fail("follow");
  }
  std::vector<OpId> alice_sent;
  for (const char* text : {"hello from alice", "second from alice"}) {
    auto id = alice.Submit("general", "text", text);
    if (!id.ok()) return Fail(id.status().ToString());
    alice_sent.push_back(*id);
  }
  if (!SyncUntil(alice, [&] { return StateIs(alice, alice_sent.back(), OpState::kSent); }))
    return Fail("alice's ops not sent: " + alice.Stats().last_connection_error);
  std::vector<OpId> bob_sent;
  for (const auto& [stream, text] :
       std::vector<std::pair<std::string, std::string>>{{"general", "hi alice, bob here"},
                                                        {"news", "news one"},
                                                        {"news", "news two"},
                                                        {"general", "bye"}}) {
    auto id = bob.Submit(stream, "text", text);
    if (!id.ok()) return Fail(id.status().ToString());
    bob_sent.push_back(*id);
  }
  if (!SyncUntil(bob, [&] {
        auto c = bob.Cursor("general");
        return StateIs(bob, bob_sent.back(), OpState::kSent) && c.ok() && *c >= 4;
      }))
    return Fail("bob did not sync");
  // Bob has read all of general: alice gets his delivered and read receipts.
  if (!bob.MarkRead("general", *bob.Cursor("general")).ok()) return Fail("bob MarkRead");
  if (!SyncUntil(bob, [&] { return bob.IsIdle(); })) return Fail("bob's receipts");
  if (!SyncUntil(alice, [&] {
        auto g = alice.Cursor("general");
        auto n = alice.Cursor("news");
        return g.ok() && *g >= 4 && n.ok() && *n >= 2 &&
               HasWatermark(alice, "general", "bob", WatermarkKind::kRead) &&
               HasWatermark(alice, "general", "bob", WatermarkKind::kDelivered);
      }))
    return Fail("alice did not get bob's ops and receipts");
  // Alice's read position: general up to bob's first op (seq 3), news all.
  if (!alice.MarkRead("general", 3).ok() || !alice.MarkRead("news", 2).ok()) return Fail("alice MarkRead");
  // A failed op.
  auto refused = alice.Submit("general", "text", kRefused);
  if (!refused.ok()) return Fail(refused.status().ToString());
  if (!SyncUntil(alice, [&] { return StateIs(alice, *refused, OpState::kFailed) && alice.IsIdle(); }))
    return Fail("the refused op did not fail");

  // Offline: three ops stay pending.
  alice.SetOnline(false);
  for (const auto& [stream, text] : std::vector<std::pair<std::string, std::string>>{
           {"general", "pending one"}, {"news", "pending in news"}, {"general", "pending two"}}) {
    if (!alice.Submit(stream, "text", text).ok()) return Fail("pending submit");
  }

  // What each store holds, read before closing.
  nlohmann::json expected;
  expected["backend"] = backend;
  expected["device_store"] = device_uri.substr(device_uri.rfind('/') + 1);
  expected["server_store"] = server_uri.substr(server_uri.rfind('/') + 1);
  expected["device"] = DeviceState(alice);
  if (expected["device"].contains("error")) return Fail("device state: " + expected["device"].dump());
  if (expected["device"]["pending"].size() != 3 || expected["device"]["failed"].size() != 1)
    return Fail("unexpected outbox: " + expected["device"].dump());
  auto reader_or = open("memory:", "carol", "reader");
  if (!reader_or.ok()) return Fail("reader: " + reader_or.status().ToString());
  Client& reader = **reader_or;
  for (const std::string& s : Streams()) (void)reader.Follow(s);
  if (!SyncUntil(reader, [&] {
        auto g = reader.Cursor("general");
        auto n = reader.Cursor("news");
        return g.ok() && *g >= 4 && n.ok() && *n >= 2 && reader.IsIdle();
      }))
    return Fail("reader did not sync");
  expected["server"] = ServerState(reader);

  reader_or->reset();
  bob_or->reset();
  alice_or->reset();
  (*server)->Stop();
  server->reset();

  // What is not part of a store: logs (rocksdb) and lock files a later open makes again (lmdb).
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if ((backend == "rocksdb" && name.starts_with("LOG")) || (backend == "lmdb" && name == "lock.mdb")) {
      std::filesystem::remove(entry.path());
    }
  }
  std::ofstream(dir + "/expected.json") << expected.dump(2) << "\n";
  std::printf("make_golden: %s written\n", dir.c_str());
  return 0;
}

}  // namespace
}  // namespace outpost::golden

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_golden OUT_DIR [lmdb] [sqlite] [rocksdb]\n");
    return 2;
  }
  const std::string out = argv[1];
  std::vector<std::string> backends;
  for (int i = 2; i < argc; ++i) backends.emplace_back(argv[i]);
  if (backends.empty()) backends = {"lmdb", "sqlite", "rocksdb"};
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  for (const std::string& b : backends) {
    if (b != "lmdb" && b != "sqlite" && b != "rocksdb") {
      std::fprintf(stderr, "make_golden: unknown backend %s\n", b.c_str());
      return 2;
    }
    if (int rc = outpost::golden::MakeBackend(b, out + "/" + b); rc != 0) return rc;
  }
  return 0;
}
