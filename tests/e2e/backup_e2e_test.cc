// Copyright 2026 The Outpost Authors.
//
// Backup and restore of the server with real processes, on each key-value backend: two outpost-chat users
// exchange messages; `outpostd backup` runs while one of them keeps sending (rocksdb: refused while
// outpostd serves, then taken with it stopped); more messages follow; outpostd
// stops; `outpostd restore` puts the backup back with a new incarnation; outpostd starts again and every
// device runs `outpost-chat sync`. Afterwards each author's messages are on every device exactly once, in
// one order everywhere, none pending or failed, and `sync` exits 0 on each (issue 19, docs/operations.md).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/e2e_util.h"

namespace outpost::e2e {
namespace {

namespace fs = std::filesystem;
using harness::kWaitMs;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The message ids `outpost-chat send` printed in `text` (one per line, 36 characters).
std::vector<std::string> SentIds(const std::string& text) {
  std::vector<std::string> ids;
  for (const std::string& line : Lines(text)) {
    if (line.size() == 36 && line[8] == '-' && line[13] == '-') ids.push_back(line);
  }
  return ids;
}

struct Backend {
  std::string name;
  std::string store;   // --store relative to the data directory ("" for the default lmdb:DATA/server)
  bool online = true;  // backup while outpostd serves (rocksdb: refused, taken with the server stopped)
};
void PrintTo(const Backend& backend, std::ostream* out) { *out << backend.name; }

class BackupE2E : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    tokens_["alice"] = AddUser(data_, "alice");
    tokens_["bob"] = AddUser(data_, "bob");
    ASSERT_FALSE(tokens_["alice"].empty() || tokens_["bob"].empty());
    if (!GetParam().store.empty()) {
      const std::string& s = GetParam().store;
      store_flags_ = {"--store", s.substr(0, s.find(':') + 1) + data_ + "/" + s.substr(s.find(':') + 1)};
    }
    std::string error;
    ASSERT_TRUE(daemon_.Start(data_, "tcp://127.0.0.1:0", store_flags_, &error)) << error;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- outpostd log ----\n" << daemon_.Log() << "----\n";
  }

  std::vector<std::string> ChatArgv(const std::string& user, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {OUTPOST_CHAT, "--store",          dir_ / user, "--user",     user,
                                     "--server",   daemon_.endpoint(), "--token",   tokens_[user]};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::string Ok(const std::string& user, const std::vector<std::string>& args) {
    RunResult r = RunProgram(ChatArgv(user, args), 90'000);
    EXPECT_EQ(r.exit_code, 0) << user << " " << ::testing::PrintToString(args) << ": " << r.err << r.out;
    return r.out;
  }
  // Sends `text` to "ab" as `user` and remembers its id as one of `user`'s.
  void Send(const std::string& user, const std::string& text) {
    const std::vector<std::string> ids = SentIds(Ok(user, {"send", "ab", text}));
    ASSERT_EQ(ids.size(), 1u);
    sent_[user].push_back(ids[0]);
  }
  // `outpostd COMMAND --data DATA [--store ...] ARGS...`
  RunResult Admin(const std::string& command, const std::vector<std::string>& args) {
    std::vector<std::string> all = {command, "--data", data_};
    all.insert(all.end(), store_flags_.begin(), store_flags_.end());
    all.insert(all.end(), args.begin(), args.end());
    return RunOutpostd(all, 120'000);
  }
  // `history ab --json` as (id, sender, status) in the device's order.
  std::vector<nlohmann::json> History(const std::string& user) {
    std::vector<nlohmann::json> out;
    for (const std::string& line : Lines(Ok(user, {"history", "ab", "--json", "--limit", "100000"}))) {
      out.push_back(nlohmann::json::parse(line, nullptr, false));
      EXPECT_TRUE(out.back().is_object()) << line;
    }
    return out;
  }

  // How many ops the server store holds (outpost-inspect, read-only: outpostd may be serving it).
  int64_t ServerOps() {
    const std::string store = store_flags_.empty() ? "lmdb:" + data_ + "/server" : store_flags_[1];
    RunResult r = RunProgram({OUTPOST_INSPECT, "server", "--store", store, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto summary = nlohmann::json::parse(r.out, nullptr, false);
    return summary.is_object() ? summary.value("ops", int64_t{-1}) : -1;
  }

  TempDir dir_;
  std::string data_;
  std::vector<std::string> store_flags_;
  std::map<std::string, std::string> tokens_;
  std::map<std::string, std::vector<std::string>> sent_;  // author -> ids of what they sent
  Daemon daemon_;
};

TEST_P(BackupE2E, OnlineBackupUnderTrafficThenRestoreConvergesEveryDevice) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  Ok("alice", {"sync"});
  Ok("bob", {"sync"});
  for (int i = 0; i < 3; ++i) {
    Send("alice", "alice before " + std::to_string(i));
    Send("bob", "bob before " + std::to_string(i));
  }
  Ok("alice", {"sync"});
  Ok("bob", {"sync"});

  // bob keeps sending (a send and a sync per message, each its own process) while the backup runs.
  std::string loop;
  for (const std::string& arg : ChatArgv("bob", {})) loop += "'" + arg + "' ";
  const std::string script = "for i in 1 2 3 4 5 6 7 8; do " + loop + "send ab \"bob during $i\" && " + loop +
                             "sync >/dev/null || exit 1; done";
  const std::string loop_log = dir_ / "loop.log";
  const pid_t traffic = StartProgram({"/bin/sh", "-c", script}, loop_log);
  ASSERT_GT(traffic, 0);
  auto loop_sent = [&] {
    std::string text;
    if (FILE* f = std::fopen(loop_log.c_str(), "r")) {
      char buf[4096];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
      std::fclose(f);
    }
    return SentIds(text);
  };
  ASSERT_TRUE(WaitFor([&] { return loop_sent().size() >= 2; }, kWaitMs)) << "the traffic never started";
  const std::string backup = dir_ / "backup";
  RunResult made = Admin("backup", {backup});
  if (!GetParam().online) {
    // RocksDB: no consistent checkpoint from a second process; refused, and taken with outpostd stopped.
    EXPECT_EQ(made.exit_code, 1) << made.out;
    EXPECT_TRUE(Has(made.err, "stop outpostd")) << made.err;
    EXPECT_FALSE(fs::exists(backup));
  }
  const int loop_exit = WaitProgram(traffic, 120'000);
  ASSERT_EQ(loop_exit, 0) << loop_exit;
  if (!GetParam().online) {
    daemon_.Signal(SIGTERM);
    ASSERT_EQ(daemon_.WaitExit(kWaitMs), 0) << daemon_.Log();
    made = Admin("backup", {backup});
    std::string error;
    ASSERT_TRUE(daemon_.Restart(&error)) << error;
  }
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_TRUE(Has(made.out, "verified")) << made.out;
  for (const std::string& id : loop_sent()) sent_["bob"].push_back(id);
  ASSERT_EQ(sent_["bob"].size(), 3u + 8u);

  // The copy: a manifest naming the backend and the live store's incarnation; a second backup to the same
  // place is refused.
  const auto manifest =
      nlohmann::json::parse(RunProgram({"cat", backup + "/manifest.json"}).out, nullptr, false);
  ASSERT_TRUE(manifest.is_object());
  EXPECT_EQ(manifest["backend"], GetParam().name);
  RunResult live = Admin("incarnation", {});
  ASSERT_EQ(live.exit_code, 0) << live.err;
  const std::string old_incarnation = manifest["incarnation"];
  EXPECT_EQ(live.out, old_incarnation + " 1\n");
  RunResult again = Admin("backup", {backup});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(Has(again.err, "already exists")) << again.err;

  // More traffic after the backup: this reaches only the server's store that the restore throws away.
  for (int i = 0; i < 3; ++i) {
    Send("alice", "alice after " + std::to_string(i));
    Send("bob", "bob after " + std::to_string(i));
  }
  Ok("alice", {"sync"});
  Ok("bob", {"sync"});
  Ok("alice", {"sync"});

  const int64_t ops_before_restore = ServerOps();
  ASSERT_GT(ops_before_restore, 0);

  // Restore: refused while outpostd serves, and into an occupied DATA_DIR without --force.
  RunResult busy = Admin("restore", {backup, "--force"});
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_TRUE(Has(busy.err, "is serving")) << busy.err;
  daemon_.Signal(SIGTERM);
  ASSERT_EQ(daemon_.WaitExit(kWaitMs), 0) << daemon_.Log();
  RunResult occupied = Admin("restore", {backup});
  EXPECT_EQ(occupied.exit_code, 1);
  EXPECT_TRUE(Has(occupied.err, "--force")) << occupied.err;
  RunResult restored = Admin("restore", {backup, "--force"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  const size_t at = restored.out.find("new incarnation ");
  ASSERT_NE(at, std::string::npos) << restored.out;
  const std::string new_incarnation = restored.out.substr(at + 16, 32);
  EXPECT_NE(new_incarnation, old_incarnation);
  RunResult now = Admin("incarnation", {});
  EXPECT_EQ(now.out, new_incarnation + " 2\n") << now.err;

  // The store went back in time: what was sent after the backup is gone from it.
  const int64_t ops_restored = ServerOps();
  EXPECT_LT(ops_restored, ops_before_restore) << "the restore lost nothing: it did not restore";
  std::string error;
  ASSERT_TRUE(daemon_.Restart(&error)) << error;
  // Every device syncs (twice round: one's re-sent messages reach the other on its second sync).
  for (int round = 0; round < 2; ++round) {
    for (const char* user : {"alice", "bob"}) Ok(user, {"sync"});
  }

  // The devices re-sent what the server lost, once.
  EXPECT_EQ(ServerOps(), ops_before_restore);

  // Each author's messages once on every device, all sent, in one order everywhere.
  std::vector<std::string> order;
  for (const char* user : {"alice", "bob"}) {
    const std::vector<nlohmann::json> history = History(user);
    std::vector<std::string> ids;
    std::map<std::string, int> seen;
    for (const nlohmann::json& m : history) {
      ids.push_back(m.value("id", ""));
      ++seen[ids.back()];
      const std::string status = m.value("status", "");
      EXPECT_TRUE(status != "pending" && status != "failed") << user << ": " << m.dump();
    }
    for (const auto& [author, theirs] : sent_) {
      for (const std::string& id : theirs) {
        EXPECT_EQ(seen[id], 1) << user << " holds " << author << "'s " << id << " " << seen[id] << " times";
      }
    }
    EXPECT_EQ(history.size(), sent_["alice"].size() + sent_["bob"].size()) << user;
    if (order.empty()) {
      order = ids;
    } else {
      EXPECT_EQ(ids, order) << "alice and bob disagree on the order";
    }
  }
}

// One line on stderr that mentions `mentions`, nothing on stdout, exit code `code`.
void ExpectRefused(const RunResult& r, int code, const std::string& mentions) {
  EXPECT_EQ(r.exit_code, code) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
}

TEST(BackupCli, BadInputsAreOneClearLine) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::string out = dir / "out";
  ExpectRefused(RunOutpostd({"backup", "--data", data}), 2, "OUT");
  ExpectRefused(RunOutpostd({"backup", "--data", data, out}), 1, "does not exist");
  ASSERT_FALSE(AddUser(data, "alice").empty());  // DATA_DIR/auth, no server store yet
  ExpectRefused(RunOutpostd({"backup", "--data", data, out}), 1, "no lmdb store");
  ExpectRefused(RunOutpostd({"backup", "--data", data, "--store", "memory:x", out}), 1,
                "lmdb:, sqlite: or rocksdb:");
  RunResult pg = RunOutpostd({"backup", "--data", data, "--store", "postgresql://u:secret@h/db", out});
  ExpectRefused(pg, 1, "pg_dump");
  EXPECT_EQ(pg.err.find("secret"), std::string::npos) << pg.err;
  EXPECT_FALSE(fs::exists(out)) << "a refused backup left its directory";
  ExpectRefused(RunOutpostd({"restore", dir / "nothing", "--data", data}), 1, "not a backup");
  ExpectRefused(RunOutpostd({"incarnation", "--data", data}), 1, "no lmdb store");

  // A backup of a store no server has open, restored into a new DATA_DIR (no --force needed there).
  ASSERT_EQ(RunOutpostd({"migrate", "--data", data}).exit_code, 0);
  RunResult made = RunOutpostd({"backup", "--data", data, out});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ExpectRefused(RunOutpostd({"restore", out, "--data", data, "--store", "sqlite:" + data + "/s.db"}), 1,
                "holds a lmdb store");
  const std::string fresh = dir / "fresh";
  RunResult restored = RunOutpostd({"restore", out, "--data", fresh});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_TRUE(Has(restored.out, "(2 in all)")) << restored.out;
  RunResult now = RunOutpostd({"incarnation", "--data", fresh});
  ASSERT_EQ(now.exit_code, 0) << now.err;
  EXPECT_TRUE(now.out.ends_with(" 2\n")) << now.out;
  EXPECT_TRUE(Has(restored.out, now.out.substr(0, 32))) << restored.out << " / " << now.out;
  EXPECT_EQ(Devices(fresh, "alice").empty(), false) << "the users were not restored";
  // The original is untouched: still its first incarnation.
  EXPECT_TRUE(RunOutpostd({"incarnation", "--data", data}).out.ends_with(" 1\n"));
  EXPECT_FALSE(fs::exists(fresh + "/server.restore-new"));
}

INSTANTIATE_TEST_SUITE_P(, BackupE2E,
                         testing::Values(Backend{"lmdb", ""}, Backend{"sqlite", "sqlite:server.db"},
                                         Backend{"rocksdb", "rocksdb:server.rocks", false}),
                         [](const testing::TestParamInfo<Backend>& backend) { return backend.param.name; });

}  // namespace
}  // namespace outpost::e2e
