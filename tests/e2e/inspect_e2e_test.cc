// Copyright 2026 The Outpost Authors.
//
// outpost-inspect run as a real process on stores made by real devices (Client, outpost-chat) and a real
// outpostd: text and JSON (parsed here with nlohmann, which refuses invalid UTF-8), live stores that another
// process keeps open and writes on lmdb, sqlite and rocksdb, and bad input (bad URIs, foreign files,
// missing paths that must stay missing, a newer format).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"
#include "outpost/client.h"
#include "outpost/membership.h"
#include "outpost/storage.h"
#include "outpost/version.h"

namespace outpost::e2e {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

RunResult Inspect(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {OUTPOST_INSPECT};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, 60'000);
}

// Runs with --json and parses stdout; a test failure (and null) when it fails or is not valid JSON.
Json InspectJson(std::vector<std::string> args) {
  args.push_back("--json");
  RunResult r = Inspect(args);
  EXPECT_EQ(r.exit_code, 0) << testing::PrintToString(args) << ": " << r.err;
  Json json = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(json.is_discarded()) << "not valid JSON: " << r.out;
  return json.is_discarded() ? Json() : json;
}

// True when `text` holds a byte a terminal would act on (C0 control but newline, DEL), or one that is not
// valid UTF-8 (nlohmann's parser checks that for us on a JSON-quoted copy).
bool HasRawControl(const std::string& text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\n') || c == 0x7F) return true;
  }
  return Json::parse(Json(text).dump(-1, ' ', false, Json::error_handler_t::strict), nullptr, false)
      .is_discarded();
}

std::unique_ptr<Client> OpenClient(const std::string& store, const std::string& user,
                                   const std::string& server = "", const std::string& token = "",
                                   const std::string& device = "phone") {
  ClientOptions options;
  options.store = store;
  options.store_sync = false;
  options.user = user;
  options.device = device;
  options.server = server;
  options.token = token;
  options.backoff_base_ms = 50;
  options.backoff_cap_ms = 500;
  auto client = Client::Open(options);
  if (!client.ok()) {
    ADD_FAILURE() << "Client::Open " << store << ": " << client.status().ToString();
    return nullptr;
  }
  if (!server.empty()) (*client)->Start();
  return std::move(client).value();
}

std::string StoreUri(const std::string& scheme, const std::string& dir) {
  return scheme + ":" + dir + (scheme == "sqlite" ? "/store.db" : "/store");
}

// ---- Command line ----

TEST(InspectCli, VersionHelpAndUsageErrors) {
  RunResult r = Inspect({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, std::string("outpost-inspect ") + Version() + "\n");
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"-h"},
                                             {"--help"},
                                             {"device", "--help"},
                                             {"device", "view", "-h"},
                                             {"device", "outbox", "--help"},
                                             {"server", "-h"},
                                             {"server", "stats", "--help"}}) {
    r = Inspect(args);
    EXPECT_EQ(r.exit_code, 0) << testing::PrintToString(args) << r.err;
    EXPECT_NE(r.out.find("Usage: outpost-inspect"), std::string::npos) << r.out;
  }
  EXPECT_NE(Inspect({"-h"}).out.find("Exit codes"), std::string::npos);
  EXPECT_NE(Inspect({"device", "view", "-h"}).out.find("--limit"), std::string::npos);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"bogus"},
           {"device"},                                // no --store
           {"device", "--store", "lmdb:/x", "view"},  // no --stream
           {"device", "--store", "lmdb:/x", "view", "--stream", "s", "--limit", "0"},
           {"device", "--store", "lmdb:/x", "--frob"},
           {"server"},  // neither --store nor --data
           {"device", "--store", "/no/scheme"},
           {"device", "--store", "ftp:/x"},
           {"server", "--store", "postgresql://u:secret@h/db"}}) {
    r = Inspect(args);
    EXPECT_EQ(r.exit_code, 2) << testing::PrintToString(args) << ": " << r.out << r.err;
    EXPECT_FALSE(r.err.empty()) << testing::PrintToString(args);
    EXPECT_EQ(r.err.find("secret"), std::string::npos) << r.err;
  }
  r = Inspect({"device", "--store", "ftp:/x"});
  EXPECT_NE(r.err.find("unknown storage scheme 'ftp'"), std::string::npos) << r.err;
}

// ---- Device stores ----

class InspectDevice : public testing::Test {
 protected:
  TempDir dir_{"outpost-inspect"};
};

// A store made by outpost-chat (a separate process): sections in text and JSON, with a message that holds
// a terminal escape sequence and bytes that are not UTF-8.
TEST_F(InspectDevice, ChatStoreInTextAndJson) {
  const std::string store = "lmdb:" + (dir_ / "chat");
  auto chat = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {OUTPOST_CHAT, "--store", store, "--user", "alice"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = RunProgram(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  chat({"create", "general", "--members", "alice,bob"});
  chat({"send", "general", "hello"});
  chat({"send", "general", "evil \x1b[31mred\x1b[0m \xff\xfe bytes"});

  Json meta = InspectJson({"device", "--store", store});
  EXPECT_EQ(meta["format"], kDeviceStoreFormat);
  EXPECT_EQ(meta["user"], "alice");
  EXPECT_FALSE(meta["device"].get<std::string>().empty());
  EXPECT_EQ(meta["ops"], 3);
  EXPECT_EQ(meta["outbox"], 3);
  EXPECT_EQ(meta["failed"], 0);
  EXPECT_EQ(InspectJson({"device", "--store", store, "meta"})["local_seq"], 3);

  Json streams = InspectJson({"device", "--store", store, "streams"});
  ASSERT_TRUE(streams.is_array());
  Json general;
  for (const Json& s : streams) {
    if (s["stream"] == "general") general = s;
  }
  ASSERT_TRUE(general.is_object()) << streams.dump();
  EXPECT_EQ(general["outbox"], 3);
  EXPECT_EQ(general["next_counter"], 4);
  EXPECT_EQ(general["cursor"], 0);
  EXPECT_EQ(general["followed"], true);

  // Newest first, paged.
  Json view = InspectJson({"device", "--store", store, "view", "--stream", "general"});
  ASSERT_EQ(view.size(), 3u) << view.dump();
  EXPECT_EQ(view[0]["local_seq"], 3);
  EXPECT_EQ(view[2]["local_seq"], 1);
  EXPECT_EQ(view[2]["kind"], std::string(kMembersKind));
  EXPECT_EQ(view[2]["payload"], "alice\nbob");
  EXPECT_NE(view[0]["payload"].get<std::string>().find("evil \x1b[31mred"), std::string::npos);
  EXPECT_NE(view[0]["payload"].get<std::string>().find("\xEF\xBF\xBD"), std::string::npos)
      << "invalid UTF-8 is replaced by U+FFFD";
  Json page = InspectJson(
      {"device", "--store", store, "view", "--stream", "general", "--limit", "1", "--offset", "1"});
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0]["op_id"], view[1]["op_id"]);

  Json outbox = InspectJson({"device", "--store", store, "outbox"});
  ASSERT_EQ(outbox.size(), 3u);
  for (size_t i = 0; i < outbox.size(); ++i) {
    EXPECT_EQ(outbox[i]["stream"], "general");
    EXPECT_EQ(outbox[i]["counter"], i + 1);
    EXPECT_EQ(outbox[i]["status"], "pending");
    EXPECT_EQ(outbox[i]["attempts"], 0);
    EXPECT_GT(outbox[i]["created_at_ms"].get<int64_t>(), 1'600'000'000'000);
    EXPECT_TRUE(outbox[i].contains("next_attempt_at_ms"));
    EXPECT_TRUE(outbox[i].contains("last_error"));
  }
  EXPECT_EQ(InspectJson({"device", "--store", store, "failed"}), Json::array());

  // Text: aligned columns, times in UTC, no raw control characters or invalid UTF-8.
  RunResult text = Inspect({"device", "--store", store, "view", "--stream", "general"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_FALSE(HasRawControl(text.out)) << text.out;
  EXPECT_NE(text.out.find("evil \\x1B[31mred\\x1B[0m \\xFF\\xFE bytes"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("alice\\x0Abob"), std::string::npos) << text.out;
  text = Inspect({"device", "--store", store, "outbox"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_TRUE(text.out.starts_with("stream   counter  entry")) << text.out;
  const int64_t created = outbox[0]["created_at_ms"];
  const std::time_t seconds = created / 1000;
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::gmtime(&seconds));
  EXPECT_NE(text.out.find(when), std::string::npos) << "UTC time " << when << " in\n" << text.out;
  text = Inspect({"device", "--store", store, "streams"});
  EXPECT_TRUE(text.out.starts_with("stream   cursor  high_seq")) << text.out;
  // A bare directory is an LMDB store, as outpost-chat's --store takes it.
  ASSERT_TRUE(store.starts_with("lmdb:")) << store;
  RunResult bare = Inspect({"device", "--store", store.substr(5), "streams"});
  EXPECT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_EQ(bare.out, text.out);
}

// Failed ops with their reasons, and watermarks: a device whose op the server refused (not a member).
TEST_F(InspectDevice, FailedOpsAndWatermarksFromARealServer) {
  const std::string data = dir_ / "data";
  const std::string alice_token = AddUser(data, "alice");
  const std::string bob_token = AddUser(data, "bob");
  Daemon daemon;
  std::string error;
  ASSERT_TRUE(daemon.Start(data, "tcp://127.0.0.1:0", {}, &error)) << error;
  const std::string alice_store = "lmdb:" + (dir_ / "alice");
  {
    auto bob = OpenClient("lmdb:" + (dir_ / "bob"), "bob", daemon.endpoint(), bob_token);
    auto alice = OpenClient(alice_store, "alice", daemon.endpoint(), alice_token);
    ASSERT_TRUE(bob && alice);
    ASSERT_TRUE(bob->Submit("club", kMembersKind, "bob").ok());
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "club", 1); }));
    ASSERT_TRUE(alice->Submit("club", "text", "let me in").ok());
    ASSERT_TRUE(WaitFor([&] { return alice->Stats().failed >= 1; })) << "the server never refused it";
    // A stream alice is in, with a read watermark.
    ASSERT_TRUE(alice->Submit("room", kMembersKind, "alice").ok());
    ASSERT_TRUE(alice->Submit("room", "text", "hi").ok());
    ASSERT_TRUE(WaitFor([&] { return CaughtUp(*alice, "room", 2); }));
    ASSERT_TRUE(alice->SetReadReceipts(true).ok());
    ASSERT_TRUE(alice->MarkRead("room", 2).ok());
    ASSERT_TRUE(WaitFor([&] {
      Json wm = InspectJson({"device", "--store", alice_store, "watermarks"});
      for (const Json& w : wm) {
        if (w["stream"] == "room" && w["kind"] == "read" && w["seq"] == 2) return true;
      }
      return false;
    }));
    // Read while alice's Client holds the store open.
    Json failed = InspectJson({"device", "--store", alice_store, "failed"});
    ASSERT_EQ(failed.size(), 1u) << failed.dump();
    EXPECT_EQ(failed[0]["stream"], "club");
    EXPECT_EQ(failed[0]["payload"], "let me in");
    EXPECT_EQ(failed[0]["last_error_code"], "PermissionDenied") << failed.dump();
    EXPECT_FALSE(failed[0]["last_error"].get<std::string>().empty());
    Json streams = InspectJson({"device", "--store", alice_store, "streams"});
    bool room = false;
    for (const Json& s : streams) {
      if (s["stream"] != "room") continue;
      room = true;
      EXPECT_EQ(s["cursor"], 2);
      EXPECT_EQ(s["high_seq"], 2);
      EXPECT_EQ(s["read_seq"], 2);
      EXPECT_EQ(s["unread"], 0);
    }
    EXPECT_TRUE(room) << streams.dump();
    RunResult text = Inspect({"device", "--store", alice_store, "failed"});
    EXPECT_NE(text.out.find("PermissionDenied"), std::string::npos) << text.out;
  }
}

// A store another process keeps open and writing (this test process's Client, submitting all along) on
// each durable backend: every run exits 0 with a whole snapshot (as many outbox entries as ops, since each
// submit writes both in one txn), later runs see more, and the writer never fails.
class InspectLive : public testing::TestWithParam<std::string> {
 protected:
  TempDir dir_{"outpost-inspect-live"};
};

TEST_P(InspectLive, DeviceStoreWhileAClientWrites) {
  const std::string store = StoreUri(GetParam(), dir_.path());
  auto client = OpenClient(store, "alice");
  ASSERT_NE(client, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> submitted{0};
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    while (!stop) {
      if (!client->Submit("live", "text", "op " + std::to_string(submitted.load())).ok()) {
        writer_failed = true;
        return;
      }
      ++submitted;
    }
  });
  int64_t last = -1;
  for (int run = 0; run < 4; ++run) {
    const int64_t before = submitted;
    ASSERT_TRUE(WaitFor([&] { return submitted > before + 5 || writer_failed; }));
    Json summary = InspectJson({"device", "--store", store});
    ASSERT_TRUE(summary.is_object());
    EXPECT_EQ(summary["ops"], summary["outbox"]) << summary.dump();
    const int64_t ops = summary["ops"];
    EXPECT_GT(ops, last) << "run " << run << " saw nothing new";
    last = ops;
    Json view = InspectJson({"device", "--store", store, "view", "--stream", "live", "--limit", "3"});
    EXPECT_EQ(view.size(), 3u);
  }
  stop = true;
  writer.join();
  EXPECT_FALSE(writer_failed);
  client.reset();
  Json summary = InspectJson({"device", "--store", store});
  EXPECT_EQ(summary["ops"], submitted.load());
}

TEST_P(InspectLive, ServerStoreWhileOutpostdServes) {
  const std::string data = dir_ / "data";
  const std::string token = AddUser(data, "alice");
  Daemon daemon;
  std::string error;
  const std::string store = StoreUri(GetParam(), data);
  ASSERT_TRUE(daemon.Start(data, "tcp://127.0.0.1:0", {"--store", store}, &error)) << error;
  auto client = OpenClient("lmdb:" + (dir_ / "alice"), "alice", daemon.endpoint(), token);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Submit("live", kMembersKind, "alice").ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> submitted{1};
  std::thread writer([&] {
    while (!stop) {
      if (!client->Submit("live", "text", "x").ok()) return;
      ++submitted;
      if (client->Stats().outbox_depth > 50) std::this_thread::yield();
    }
  });
  uint64_t last = 0;
  for (int run = 0; run < 3; ++run) {
    ASSERT_TRUE(WaitFor([&] {
      Json streams = InspectJson({"server", "--store", store, "--data", data, "streams"});
      for (const Json& s : streams) {
        if (s["stream"] == "live" && s["high_seq"].get<uint64_t>() > last) {
          last = s["high_seq"];
          EXPECT_EQ(s["members"], 1);
          return true;
        }
      }
      return false;
    })) << "the server's commits never showed";
  }
  stop = true;
  writer.join();
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*client, "live", static_cast<uint64_t>(submitted.load())); }));
  Json summary = InspectJson({"server", "--store", store, "--data", data});
  EXPECT_EQ(summary["format"], 3);
  EXPECT_EQ(summary["ops"], submitted.load() + 1) << "the ops of live and of @alice";
  Json members = InspectJson({"server", "--store", store, "members"});
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0], (Json{{"stream", "live"}, {"user", "alice"}}));
  Json devices = InspectJson({"server", "--store", store, "--data", data, "devices"});
  ASSERT_EQ(devices.size(), 1u) << devices.dump();
  EXPECT_EQ(devices[0]["user"], "alice");
  EXPECT_EQ(devices[0]["device"], "phone");
  EXPECT_EQ(devices[0]["token_state"], "bound");
  Json counters = InspectJson({"server", "--store", store, "counters"});
  bool live = false;
  for (const Json& c : counters) {
    if (c["stream"] == "live") live = c["last_counter"] == submitted.load();
  }
  EXPECT_TRUE(live) << counters.dump();
  ASSERT_TRUE(WaitFor([&] {
    Json stats = InspectJson({"server", "--data", data, "stats"});
    return stats["state"] == "running" && stats["ops_applied"] == daemon.StatsField("ops_applied") &&
           stats["ops_applied"].get<int64_t>() >= submitted.load();
  }));
  RunResult text = Inspect({"server", "--store", store, "--data", data, "devices"});
  EXPECT_TRUE(text.out.starts_with("user   device  tokens  token_state  streams")) << text.out;
  EXPECT_EQ(text.out.find(token), std::string::npos) << "a token was printed";
  EXPECT_EQ(InspectJson({"server", "--store", store, "--data", data, "devices"}).dump().find("opt_"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(, InspectLive, testing::Values("lmdb", "sqlite", "rocksdb"));

// ---- Bad input ----

TEST_F(InspectDevice, MissingPathsAreErrorsAndStayMissing) {
  const std::string missing = dir_ / "no/such";
  for (const std::string& uri : {"lmdb:" + missing, "sqlite:" + missing, "rocksdb:" + missing,
                                 "lmdb:" + (dir_ / "absent"), "sqlite:" + (dir_ / "absent.db")}) {
    RunResult r = Inspect({"device", "--store", uri});
    EXPECT_EQ(r.exit_code, 1) << uri << ": " << r.err;
    EXPECT_NE(r.err.find("no "), std::string::npos) << r.err;
    r = Inspect({"server", "--store", uri, "streams"});
    EXPECT_EQ(r.exit_code, 1) << uri << ": " << r.err;
  }
  // A bare path that does not exist: a usage error naming --store.
  RunResult bare = Inspect({"device", "--store", missing});
  EXPECT_EQ(bare.exit_code, 2) << bare.err;
  EXPECT_NE(bare.err.find("--store: no store at"), std::string::npos) << bare.err;
  RunResult r = Inspect({"server", "--data", dir_ / "nodata"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  r = Inspect({"server", "--data", dir_ / "nodata", "stats"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::is_empty(dir_.path())) << "something was created";
}

TEST_F(InspectDevice, ForeignFilesNameWhatWasExpected) {
  const std::string text = dir_ / "notes.txt";
  std::ofstream(text) << "just some text\n";
  const std::string empty = dir_ / "empty";
  fs::create_directory(empty);
  const std::string fake_lmdb = dir_ / "fake";
  fs::create_directory(fake_lmdb);
  std::ofstream(fake_lmdb + "/data.mdb") << std::string(20000, 'x');
  // An SQLite database of another application.
  const std::string other_db = dir_ / "other.db";
  RunResult made = RunProgram({"python3", "-c",
                               "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                               "c.execute('create table t(x)'); c.commit()",
                               other_db});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // A server store given to `device`, and a device store to `server`.
  const std::string server_store = "lmdb:" + (dir_ / "server");
  {
    auto server_made = RunOutpostd({"add-user", "--data", dir_ / "srvdata", "alice"});
    ASSERT_EQ(server_made.exit_code, 0) << server_made.err;
  }
  const std::string device_store = "lmdb:" + (dir_ / "dev");
  { ASSERT_NE(OpenClient(device_store, "alice"), nullptr); }
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"device", "--store", "sqlite:" + text}, "is not a readable database"},
      {{"device", "--store", "lmdb:" + text}, "is not a directory"},
      {{"device", "--store", "lmdb:" + empty}, "holds no lmdb store: it has no data.mdb"},
      {{"device", "--store", "rocksdb:" + empty}, "holds no rocksdb store: it has no CURRENT"},
      {{"device", "--store", "sqlite:" + empty}, "is not a file"},
      {{"device", "--store", "lmdb:" + fake_lmdb}, "lmdb"},
      {{"device", "--store", "sqlite:" + other_db}, "is not an Outpost store (application_id 0"},
      {{"device", "--store", "lmdb:" + (dir_ / "srvdata/auth")}, "is not an Outpost device store"},
      {{"server", "--store", device_store}, "is not an Outpost server store"},
      {{"server", "--data", dir_.path(), "stats"}, "stats.json"},
  };
  std::vector<std::string> files_before;
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path())) {
    if (entry.path().filename() != "lock.mdb") files_before.push_back(entry.path().string());
  }
  for (const Case& c : cases) {
    RunResult r = Inspect(c.args);
    EXPECT_EQ(r.exit_code, 1) << testing::PrintToString(c.args) << ": " << r.out;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << testing::PrintToString(c.args) << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  std::vector<std::string> files_after;
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path())) {
    if (entry.path().filename() != "lock.mdb") files_after.push_back(entry.path().string());
  }
  EXPECT_EQ(files_before, files_after);
}

TEST_F(InspectDevice, ANewerFormatIsRefusedNamingBothAndLeftAsItWas) {
  for (const std::string scheme : {"lmdb", "sqlite", "rocksdb"}) {
    const std::string dir = dir_ / scheme;
    fs::create_directory(dir);
    const std::string store = StoreUri(scheme, dir);
    { ASSERT_NE(OpenClient(store, "alice"), nullptr); }
    {
      StorageOptions options;
      options.spaces = {"meta"};
      auto storage = OpenStorage(store, options);
      ASSERT_TRUE(storage.ok()) << storage.status().ToString();
      auto txn = (*storage)->BeginWrite();
      ASSERT_TRUE(txn.ok());
      ASSERT_TRUE((*txn)->Put(0, "format", "99").ok());
      ASSERT_TRUE((*txn)->Commit().ok());
    }
    for (const std::string section : {"meta", "streams", "outbox"}) {
      RunResult r = Inspect({"device", "--store", store, section});
      EXPECT_EQ(r.exit_code, 1) << scheme << " " << section;
      EXPECT_NE(r.err.find("is format 99, newer than this build reads (" +
                           std::to_string(kDeviceStoreFormat) + ")"),
                std::string::npos)
          << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
    StorageOptions options;
    options.spaces = {"meta"};
    options.read_only = true;
    auto storage = OpenStorage(store, options);
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    auto txn = (*storage)->BeginRead();
    ASSERT_TRUE(txn.ok());
    std::string format;
    ASSERT_TRUE((*txn)->Get(0, "format", &format).ok());
    EXPECT_EQ(format, "99");
  }
}

}  // namespace
}  // namespace outpost::e2e
