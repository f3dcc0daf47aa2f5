// Copyright 2026 The Outpost Authors.
//
// The golden stores (tests/golden/README.md): stores that an older build wrote, opened by this one. For
// every generation vN and every persistent backend, on a copy: the device's history, receipts, cursors and
// read positions read exactly as that build's expected.json says; its pending ops flush to a server opened
// on the golden server store, and are applied exactly once (a fresh device pulls them back); and a store
// whose format is set beyond this build's is refused naming both numbers, with every one of its files left
// byte for byte as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "golden/golden_state.h"
#include "keys.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "outpost/storage.h"
#include "outpost/transport.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;

struct Golden {
  std::string generation;  // "v1"
  std::string backend;     // lmdb, sqlite, rocksdb
  std::string Dir() const { return std::string(OUTPOST_GOLDEN_DIR) + "/" + generation + "/" + backend; }
};

void PrintTo(const Golden& g, std::ostream* os) { *os << g.generation << "/" << g.backend; }

std::string Name(const testing::TestParamInfo<Golden>& info) {
  return info.param.generation + "_" + info.param.backend;
}

std::vector<Golden> AllGoldens() {
  std::vector<Golden> out;
  for (const auto& gen : fs::directory_iterator(OUTPOST_GOLDEN_DIR)) {
    if (!gen.is_directory()) continue;
    for (const auto& backend : fs::directory_iterator(gen.path())) {
      if (backend.is_directory()) out.push_back({gen.path().filename(), backend.path().filename()});
    }
  }
  std::sort(out.begin(), out.end(), [](const Golden& a, const Golden& b) {
    return std::tie(a.generation, a.backend) < std::tie(b.generation, b.backend);
  });
  return out;
}

// Every file under `dir` (relative path → bytes).
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    out[fs::relative(e.path(), dir).string()] = bytes.str();
  }
  return out;
}

// Which files differ between two snapshots, for a failure message.
std::string Diff(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  for (const auto& [name, bytes] : a) {
    auto it = b.find(name);
    if (it == b.end())
      out += " removed:" + name;
    else if (it->second != bytes)
      out += " changed:" + name;
  }
  for (const auto& [name, bytes] : b) {
    if (!a.contains(name)) out += " added:" + name;
  }
  return out;
}

class GoldenStoreTest : public testing::TestWithParam<Golden> {
 protected:
  void SetUp() override {
    const Golden& g = GetParam();
    std::ifstream in(g.Dir() + "/expected.json");
    ASSERT_TRUE(in) << "no expected.json in " << g.Dir();
    expected_ = nlohmann::json::parse(in);
    fs::copy(g.Dir(), dir_.path() + "/store", fs::copy_options::recursive);
    device_uri_ = g.backend + ":" + dir_.path() + "/store/" + expected_["device_store"].get<std::string>();
    server_uri_ = g.backend + ":" + dir_.path() + "/store/" + expected_["server_store"].get<std::string>();
  }

  ClientOptions DeviceOptions(const std::string& store, const std::string& user, const std::string& device) {
    ClientOptions o;
    o.store = store;
    o.server = endpoint_;
    o.user = user;
    o.device = device;
    o.ack_timeout_ms = 10'000;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 50;
    return o;
  }

  void StartServer() {
    static int run = 0;
    endpoint_ = "inproc:golden-test-" + std::to_string(::getpid()) + "-" + std::to_string(++run);
    ServerOptions so;
    so.store = server_uri_;
    auto listener = Listen(endpoint_);
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    auto server = Server::Open(std::move(so), std::move(*listener));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    server_->Start();
  }

  static bool SyncUntil(Client& c, const std::function<bool()>& condition) {
    return harness::WaitFor([&] {
      (void)c.RunUntilIdle(100);
      return condition();
    });
  }

  // What a fresh device that follows every golden stream pulls from the server.
  nlohmann::json Pull(const std::string& user, const std::string& device, uint64_t general, uint64_t news) {
    auto reader = Client::Open(DeviceOptions("memory:", user, device));
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return {};
    for (const std::string& s : golden::Streams()) EXPECT_TRUE((*reader)->Follow(s).ok());
    EXPECT_TRUE(SyncUntil(**reader, [&] {
      auto g = (*reader)->Cursor("general");
      auto n = (*reader)->Cursor("news");
      return g.ok() && *g >= general && n.ok() && *n >= news && (*reader)->IsIdle();
    })) << (*reader)->Stats().last_connection_error;
    return golden::ServerState(**reader);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
  }

  harness::TempDir dir_{"outpost-golden"};
  nlohmann::json expected_;
  std::string device_uri_, server_uri_, endpoint_;
  std::unique_ptr<Server> server_;
};

// Offline: what the device shows is what the build that wrote it showed.
TEST_P(GoldenStoreTest, DeviceHistoryReceiptsAndCursorsReadAsWritten) {
  auto alice = Client::Open(DeviceOptions(device_uri_, "alice", "phone"));
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  const nlohmann::json got = golden::DeviceState(**alice);
  EXPECT_EQ(got, expected_["device"])
      << "read:     " << got.dump() << "\nexpected: " << expected_["device"].dump();
  // And again after a reopen (the first open may have stamped or migrated the store).
  alice->reset();
  alice = Client::Open(DeviceOptions(device_uri_, "alice", "phone"));
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  EXPECT_EQ(golden::DeviceState(**alice), expected_["device"]);
}

// Online: the server store serves what it held; the device's pending ops reach it, each exactly once.
TEST_P(GoldenStoreTest, PendingOpsFlushToTheGoldenServerExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const nlohmann::json& server = expected_["server"];
  const uint64_t general = server["general"]["high_seq"], news = server["news"]["high_seq"];
  EXPECT_EQ(Pull("carol", "before", general, news), server);

  const nlohmann::json& device = expected_["device"];
  std::vector<OpId> pending, failed;
  for (const auto& id : device["pending"]) pending.push_back(OpId::Parse(id.get<std::string>()).value());
  for (const auto& id : device["failed"]) failed.push_back(OpId::Parse(id.get<std::string>()).value());
  ASSERT_FALSE(pending.empty());
  {
    auto alice = Client::Open(DeviceOptions(device_uri_, "alice", "phone"));
    ASSERT_TRUE(alice.ok()) << alice.status().ToString();
    ASSERT_TRUE(SyncUntil(**alice, [&] {
      for (const OpId& id : pending) {
        auto op = (*alice)->Get(id);
        if (!op.ok() || op->state != OpState::kSent) return false;
      }
      return (*alice)->IsIdle();
    })) << (*alice)->Stats().last_connection_error;
    for (const OpId& id : failed) EXPECT_EQ((*alice)->Get(id)->state, OpState::kFailed);  // not resent
    EXPECT_EQ((*alice)->Stats().outbox_depth, 0u);
    EXPECT_EQ((*alice)->Stats().gaps, 0u);  // its counters and the server's agreed
  }
  // Once more, after a restart of both: nothing is sent twice.
  server_->Stop();
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  {
    auto alice = Client::Open(DeviceOptions(device_uri_, "alice", "phone"));
    ASSERT_TRUE(alice.ok()) << alice.status().ToString();
    ASSERT_TRUE((*alice)->RunUntilIdle(harness::kWaitMs).ok());
  }

  // A fresh device pulls the golden ops, then alice's pending ones, each once, in her order.
  const nlohmann::json after = Pull("carol", "after", general + 1, news + 1);
  std::map<std::string, int> seen;
  for (const std::string& s : golden::Streams()) {
    const nlohmann::json& ops = after[s]["ops"];
    const nlohmann::json& before = server[s]["ops"];
    ASSERT_GE(ops.size(), before.size()) << s;
    for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(ops[i], before[i]) << s << " seq " << i + 1;
    for (const auto& op : ops) ++seen[op["op_id"].get<std::string>()];
  }
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  std::vector<std::string> own_new;  // alice's ops after the golden ones, stream by stream
  for (const std::string& s : golden::Streams()) {
    const nlohmann::json& ops = after[s]["ops"];
    for (size_t i = server[s]["ops"].size(); i < ops.size(); ++i) {
      EXPECT_EQ(ops[i]["user"], "alice");
      own_new.push_back(ops[i]["op_id"]);
    }
  }
  std::vector<std::string> want;  // the pending ops, grouped by stream in the same stream order
  for (const std::string& s : golden::Streams()) {
    for (const auto& op : device["streams"][s]["ops"]) {
      if (op["state"] == "pending") want.push_back(op["op_id"]);
    }
  }
  EXPECT_EQ(own_new, want);
  for (const OpId& id : failed) EXPECT_FALSE(seen.contains(id.ToString()));
}

// A store of a newer format than this build's: refused naming both numbers, and not one byte written.
class FutureFormatTest : public GoldenStoreTest {
 protected:
  // Sets `space`'s "format" to 99 in the store at `uri`, then closes it.
  static void SetFormat(const std::string& uri, const std::vector<std::string>& spaces, SpaceId space) {
    StorageOptions so;
    so.spaces = spaces;
    auto storage = OpenStorage(uri, so);
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    auto txn = (*storage)->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE((*txn)->Put(space, "format", "99").ok());
    ASSERT_TRUE((*txn)->Commit().ok());
  }
};

// Opens the store with `open` twice: as a copy holds it (no lmdb lock.mdb, which LMDB makes at a read-write
// open), where every file must stay byte for byte as it was and none may appear; then with the lock.mdb
// that an earlier run of the app left, whose reader table a read-only look writes its slot into (LMDB's
// lock file holds no data: readers' pids and txn ids, and the writer's mutex; LMDB itself rewrites it at
// the first open after a reboot): there every other file must stay byte for byte.
void ExpectRefusedUntouched(const std::string& dir, const std::string& store, const std::string& backend,
                            const std::function<Status()>& open, const std::string& newer) {
  const std::string lock = dir + "/" + store + "/lock.mdb";
  const auto files = Files(dir);
  const std::string lock_bytes = files.contains(store + "/lock.mdb") ? files.at(store + "/lock.mdb") : "";
  for (bool with_lock : {false, true}) {
    SCOPED_TRACE(with_lock ? "with lock.mdb" : "as copied");
    if (backend == "lmdb") {  // the lock file the format's setter left, or none
      fs::remove(lock);
      if (with_lock) std::ofstream(lock, std::ios::binary) << lock_bytes;
    }
    auto before = Files(dir);
    Status st = open();
    EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
    EXPECT_NE(st.message().find("format 99"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("(" + newer + ")"), std::string::npos) << st.message();
    auto after = Files(dir);
    if (backend == "lmdb" && with_lock) {
      const std::string name = store + "/lock.mdb";
      EXPECT_TRUE(before.contains(name));
      if (before.contains(name) && after.contains(name)) before[name] = after[name];
    }
    EXPECT_TRUE(before == after) << "files written by a refused open:" << Diff(before, after);
  }
}

TEST_P(FutureFormatTest, DeviceStoreIsRefusedAndLeftByteForByte) {
  ASSERT_NO_FATAL_FAILURE(SetFormat(device_uri_, {"meta"}, 0));
  ExpectRefusedUntouched(
      dir_.path() + "/store", expected_["device_store"], GetParam().backend,
      [&] { return Client::Open(DeviceOptions(device_uri_, "alice", "phone")).status(); },
      std::to_string(kDeviceStoreFormat));
}

TEST_P(FutureFormatTest, ServerStoreIsRefusedAndLeftByteForByte) {
  ASSERT_NO_FATAL_FAILURE(SetFormat(server_uri_, {"s_meta"}, 0));
  ExpectRefusedUntouched(
      dir_.path() + "/store", expected_["server_store"], GetParam().backend,
      [&] { return OpenServerStore(server_uri_).status(); }, std::to_string(keys::kServerFormat));
}

INSTANTIATE_TEST_SUITE_P(Goldens, GoldenStoreTest, testing::ValuesIn(AllGoldens()), Name);
INSTANTIATE_TEST_SUITE_P(Goldens, FutureFormatTest, testing::ValuesIn(AllGoldens()), Name);

}  // namespace
}  // namespace outpost
