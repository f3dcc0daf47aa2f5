// Copyright 2026 The Outpost Authors.
//
// outpostd's admin commands and command line, run as a real process: tokens, registry errors, usage
// errors, keys, stats. No server runs here except where a test says so.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "e2e/e2e_util.h"

namespace outpost::e2e {
namespace {

// "opt_" + 43 characters of unpadded base64url, then a newline.
bool IsTokenLine(const std::string& s) {
  if (s.size() != 4 + 43 + 1 || s.rfind("opt_", 0) != 0 || s.back() != '\n') return false;
  for (size_t i = 4; i + 1 < s.size(); ++i) {
    const char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// `n` lines of 40 printable ASCII characters each (Z85 keys).
std::vector<std::string> KeyLines(const std::string& s, size_t n) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(s.substr(start, nl - start));
  if (start != s.size() || lines.size() != n) return {};
  for (const auto& l : lines) {
    if (l.size() != 40) return {};
    for (char c : l) {
      if (c < '!' || c > '~') return {};
    }
  }
  return lines;
}

// One line on stderr, nothing on stdout.
void ExpectOneErrorLine(const RunResult& r, const std::string& mentions) {
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
}

TEST(OutpostdCli, AddUserPrintsOneTokenLineAndAddDeviceAnother) {
  TempDir dir;
  const std::string data = dir / "data";  // created: its parent exists
  RunResult r = RunOutpostd({"add-user", "--data", data, "alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(IsTokenLine(r.out)) << r.out;

  RunResult d = RunOutpostd({"add-device", "--data", data, "alice"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(IsTokenLine(d.out)) << d.out;
  EXPECT_NE(d.out, r.out);

  // The registry keeps hashes only: the token text appears in no file of the data directory.
  const std::string token = r.out.substr(0, r.out.size() - 1);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(token), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find(token.substr(4)), std::string::npos) << entry.path();
  }
}

TEST(OutpostdCli, RegistryErrorsAreOneClearLine) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(RunOutpostd({"add-user", "--data", data, "alice"}).exit_code, 0);

  RunResult again = RunOutpostd({"add-user", "--data", data, "alice"});
  EXPECT_EQ(again.exit_code, 1);
  ExpectOneErrorLine(again, "already exists");

  RunResult unknown = RunOutpostd({"add-device", "--data", data, "bob"});
  EXPECT_EQ(unknown.exit_code, 1);
  ExpectOneErrorLine(unknown, "no user 'bob'");

  RunResult orphan = RunOutpostd({"add-user", "--data", dir / "missing/data", "bob"});
  EXPECT_EQ(orphan.exit_code, 1);
  ExpectOneErrorLine(orphan, "parent");

  for (const std::string& bad : {std::string(), std::string("a b"), std::string("ali/ce"),
                                 std::string("al\xc3\xaf"
                                             "ce"),
                                 std::string(65, 'x')}) {
    RunResult r = RunOutpostd({"add-user", "--data", data, bad});
    EXPECT_EQ(r.exit_code, 2) << "'" << bad << "'";
    ExpectOneErrorLine(r, "user name");
  }
  RunResult ok64 = RunOutpostd({"add-user", "--data", data, std::string(64, 'x')});
  EXPECT_EQ(ok64.exit_code, 0) << ok64.err;
  RunResult dotted = RunOutpostd({"add-user", "--data", data, "Bob.Smith_2-x"});
  EXPECT_EQ(dotted.exit_code, 0) << dotted.err;
}

TEST(OutpostdCli, UsageErrorsExitTwoAndHelpExitsZero) {
  TempDir dir;
  const std::vector<std::vector<std::string>> usage_errors = {
      {},
      {"frobnicate"},
      {"--data", dir.path(), "--bogus"},
      {"--data", dir.path(), "--stats-interval", "soon"},
      {"--data", dir.path(), "--frame-bytes-max", "-1"},
      {"--data", dir.path(), "--log-level", "loud"},
      {"--data", dir.path(), "--listen"},
      {"--listen", "tcp://127.0.0.1:0"},  // no --data
      {"add-user", "alice"},              // no --data
      {"add-user", "--data", dir.path()},
      {"add-user", "--data", dir.path(), "a", "b"},
      {"add-device", "--data", dir.path(), "--json", "a"},
      {"add-user", "--store", "lmdb:" + (dir / "s"), "alice"},  // a key-value store keeps no users: --data
      {"devices", "--store", "sqlite:" + (dir / "s.db"), "alice"},
      {"migrate"},
      {"migrate", "--data", dir.path(), "extra"},
      {"stats"},
      {"keygen", "extra"},
      {"curve-public"},
  };
  for (const auto& args : usage_errors) {
    RunResult r = RunOutpostd(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.exit_code, 2) << line << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << line;
    EXPECT_TRUE(r.out.empty()) << line;
  }
  for (const std::string command : {"", "serve", "add-user", "add-device", "devices", "revoke-device",
                                    "remove-user", "migrate", "stats", "keygen", "curve-public"}) {
    std::vector<std::string> args;
    if (!command.empty()) args.push_back(command);
    args.push_back("--help");
    RunResult r = RunOutpostd(args);
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_EQ(r.out.rfind("usage: outpostd", 0), 0u) << command << ": " << r.out;
  }
}

// Users of a database store live in the database: the commands need no --data and open the store; one
// that cannot be reached is one clear line that never shows the password.
TEST(OutpostdCli, DatabaseStoreErrorsAreOneLineWithoutThePassword) {
  const std::string uri = "postgresql://outpost:s3cr3t-pw@127.0.0.1:1/outpost?connect_timeout=5";
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"add-user", "--store", uri, "alice"},
                                             {"add-device", "--store", uri, "alice", "--device", "phone"},
                                             {"devices", "--store", uri, "alice"},
                                             {"migrate", "--store", uri}}) {
    RunResult r = RunOutpostd(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    ExpectOneErrorLine(r, args[0] + ": ");
    EXPECT_EQ(r.err.find("s3cr3t"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("127.0.0.1"), std::string::npos) << "names the store: " << r.err;
  }
}

TEST(OutpostdCli, MigrateAKeyValueStore) {
  TempDir dir;
  const std::string data = dir / "data";
  RunResult r = RunOutpostd({"migrate", "--data", data});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(data + "/server"), std::string::npos) << r.out;
  RunResult again = RunOutpostd({"migrate", "--store", "lmdb:" + data + "/server"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  RunResult bad = RunOutpostd({"migrate", "--store", "nosuch:" + (dir / "x")});
  EXPECT_EQ(bad.exit_code, 1);
  ExpectOneErrorLine(bad, "migrate: ");
}

TEST(OutpostdCli, KeygenAndCurvePublic) {
  TempDir dir;
  RunResult pair = RunOutpostd({"keygen"});
  ASSERT_EQ(pair.exit_code, 0) << pair.err;
  const std::vector<std::string> keys = KeyLines(pair.out, 2);
  ASSERT_EQ(keys.size(), 2u) << pair.out;
  auto pub = CurvePublicKey(keys[1]);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(*pub, keys[0]);

  const std::string secret = dir / "server.key";
  RunResult written = RunOutpostd({"keygen", "--secret-file", secret});
  ASSERT_EQ(written.exit_code, 0) << written.err;
  RunResult shown = RunOutpostd({"curve-public", "--curve-secret", secret});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out, written.out);
  EXPECT_EQ(RunOutpostd({"keygen", "--secret-file", secret}).exit_code, 1);  // never overwrites a key

  RunResult missing = RunOutpostd({"curve-public", "--curve-secret", dir / "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  ExpectOneErrorLine(missing, "nope");
}

TEST(OutpostdCli, StatsWithoutAServerCountsUsers) {
  TempDir dir;
  const std::string data = dir / "data";
  AddUser(data, "alice");
  AddUser(data, "bob");
  RunResult r = RunOutpostd({"stats", "--data", data});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("users", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" 2\n"), std::string::npos) << r.out;
  RunResult j = RunOutpostd({"stats", "--data", data, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("\"users\": 2"), std::string::npos) << j.out;
  EXPECT_EQ(RunOutpostd({"stats", "--data", dir / "nope"}).exit_code, 1);
}

TEST(OutpostdCli, ServeRefusesBadSetupWithOneLine) {
  TempDir dir;
  const std::string data = dir / "data";
  RunResult no_parent = RunOutpostd({"--data", dir / "a/b", "--listen", "tcp://127.0.0.1:0"});
  EXPECT_EQ(no_parent.exit_code, 1);
  ExpectOneErrorLine(no_parent, "parent");

  RunResult bad_uri = RunOutpostd({"--data", data, "--listen", "udp://127.0.0.1:1"});
  EXPECT_EQ(bad_uri.exit_code, 1);
  EXPECT_NE(bad_uri.err.find("cannot listen"), std::string::npos) << bad_uri.err;

  const std::string junk_key = dir / "junk.key";
  std::ofstream(junk_key) << "not a key\n";
  RunResult bad_key =
      RunOutpostd({"--data", data, "--listen", "tcp://127.0.0.1:0", "--curve-secret", junk_key});
  EXPECT_EQ(bad_key.exit_code, 1);
  ExpectOneErrorLine(bad_key, "CURVE secret key");

  // One server per data directory.
  Daemon first;
  std::string error;
  ASSERT_TRUE(first.Start(data, "tcp://127.0.0.1:0", {}, &error)) << error;
  RunResult second = RunOutpostd({"--data", data, "--listen", "tcp://127.0.0.1:0"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("another outpostd"), std::string::npos) << second.err;
}

// Version and help on the tool and every subcommand, generated from the flags' declarations; errors name
// the flag; a listener no device could reach is refused.
TEST(OutpostdCli, VersionHelpAndFlagErrors) {
  RunResult r = RunOutpostd({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("outpostd 0.")) << r.out;
  for (const std::string command : {"serve", "add-user", "add-device", "devices", "revoke-device",
                                    "remove-user", "migrate", "stats", "keygen", "curve-public"}) {
    r = RunOutpostd({command, "-h"});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_NE(r.out.find("usage: outpostd " + command), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << r.out;
    r = RunOutpostd({command, "--version"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_TRUE(r.out.starts_with("outpostd ")) << r.out;
  }
  EXPECT_NE(RunOutpostd({"serve", "--help"}).out.find("--admin-token-file FILE"), std::string::npos);
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const Case cases[] = {
      {{"--data", dir / "d", "--bogus"}, "unknown option or argument: --bogus"},
      {{"--data", dir / "d", "--listen"}, "--listen"},
      {{"--data", dir / "d", "--store", "lmdb:a", "--store", "lmdb:b"}, "--store"},
      {{"--data", dir / "d", "--frame-bytes-max", "lots"}, "--frame-bytes-max"},
      {{"--data", dir / "d", "--listen", "inproc://x"},
       "--listen: inproc://x can be reached only from inside"},
      {{"stats", "--data"}, "--data"},
  };
  for (const Case& c : cases) {
    r = RunOutpostd(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(r.err.starts_with("outpostd: ")) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "d")) << "a refused command line made its data directory";
}

}  // namespace
}  // namespace outpost::e2e
