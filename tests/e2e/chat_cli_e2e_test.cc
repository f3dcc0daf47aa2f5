// Copyright 2026 The Outpost Authors.
//
// outpost-chat's subcommands as a user or a script runs them: separate processes, each opening its store,
// against a real outpostd. Checks exit codes, the one-line errors, `history --json`, and that everything
// but `sync` works with the server down. With outpostd's media server (--http): `send-file` and
// `fetch-media` killed (SIGKILL) mid-transfer, then run again, resume where the bytes stopped.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include <vips/vips8>

#include "e2e/e2e_util.h"
#include "media/common/digest.h"

namespace outpost::e2e {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class ChatCliTest : public ::testing::Test {
 protected:
  // outpostd's flags beyond the listener.
  virtual std::vector<std::string> ServerFlags() { return {}; }

  void SetUp() override {
    data_ = dir_ / "data";
    alice_token_ = AddUser(data_, "alice");
    bob_token_ = AddUser(data_, "bob");
    AddUser(data_, "carol");  // a member of bob's group who is never online (member lists name users)
    ASSERT_FALSE(alice_token_.empty() || bob_token_.empty());
    std::string error;
    ASSERT_TRUE(daemon_.Start(data_, "tcp://127.0.0.1:0", ServerFlags(), &error)) << error;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- outpostd log ----\n" << daemon_.Log() << "----\n";
  }

  // `outpost-chat --store DIR/USER --user USER --server EP --token T ARGS...`
  std::vector<std::string> ChatArgv(const std::string& user, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        OUTPOST_CHAT,       "--store", dir_ / user,
        "--user",           user,      "--server",
        daemon_.endpoint(), "--token", user == "alice" ? alice_token_ : bob_token_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  RunResult Chat(const std::string& user, const std::vector<std::string>& args) {
    return RunProgram(ChatArgv(user, args), 60'000);
  }
  // The same, expecting success; returns stdout.
  std::string Ok(const std::string& user, const std::vector<std::string>& args) {
    RunResult r = Chat(user, args);
    EXPECT_EQ(r.exit_code, 0) << user << " " << ::testing::PrintToString(args) << ": " << r.err;
    return r.out;
  }
  // Fails with `code` and exactly one line on stderr that contains `reason`.
  void Refused(const RunResult& r, int code, const std::string& reason) {
    EXPECT_EQ(r.exit_code, code) << r.out << r.err;
    auto lines = Lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_TRUE(lines[0].starts_with("outpost-chat: ")) << lines[0];
    EXPECT_TRUE(Has(lines[0], reason)) << lines[0] << " lacks " << reason;
  }
  std::vector<std::string> History(const std::string& user, const std::string& conv) {
    return Lines(Ok(user, {"history", conv, "--json"}));
  }

  TempDir dir_;
  std::string data_;
  std::string alice_token_, bob_token_;
  Daemon daemon_;
};

TEST_F(ChatCliTest, MessagesGoFromPendingToReadAcrossProcesses) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  Ok("alice", {"sync"});
  Ok("bob", {"sync"});
  EXPECT_TRUE(Has(Ok("bob", {"list"}), "ab  members: alice,bob"));

  const std::string id = Lines(Ok("alice", {"send", "ab", "hello \"bob\"\n\tline two"})).at(0);
  ASSERT_EQ(id.size(), 36u) << id;
  auto pending = History("alice", "ab");
  ASSERT_EQ(pending.size(), 1u);
  for (const char* field : {"\"seq\":null", "\"sender\":\"alice\"", "\"status\":\"pending\"",
                            "\"text\":\"hello \\\"bob\\\"\\n\\tline two\"", "\"client_time\":\"20"}) {
    EXPECT_TRUE(Has(pending[0], field)) << pending[0] << " lacks " << field;
  }
  EXPECT_TRUE(Has(pending[0], "\"id\":\"" + id + "\"")) << pending[0];

  EXPECT_TRUE(Has(Ok("alice", {"sync"}), "1 sent"));
  auto sent = History("alice", "ab");
  EXPECT_TRUE(Has(sent.at(0), "\"seq\":2")) << sent[0];
  EXPECT_TRUE(Has(sent[0], "\"status\":\"sent\"")) << sent[0];

  EXPECT_TRUE(Has(Ok("bob", {"sync"}), "1 received"));
  EXPECT_TRUE(Has(Ok("bob", {"list"}), "unread: 1"));
  Ok("alice", {"sync"});
  EXPECT_TRUE(Has(History("alice", "ab").at(0), "\"status\":\"delivered\""));

  EXPECT_TRUE(Has(Ok("bob", {"read", "ab"}), "read up to seq 2"));
  EXPECT_TRUE(Has(Ok("bob", {"list"}), "unread: 0"));
  Ok("bob", {"sync"});
  Ok("alice", {"sync"});
  EXPECT_TRUE(Has(History("alice", "ab").at(0), "\"status\":\"read\""));
  // The human form shows the glyph and the word.
  EXPECT_TRUE(Has(Ok("alice", {"history", "ab"}), "read (seen)"));
}

TEST_F(ChatCliTest, EverythingButSyncWorksWithTheServerDown) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  Ok("alice", {"sync"});
  daemon_.Signal(SIGKILL);
  ASSERT_EQ(daemon_.WaitExit(10'000), -1);

  const std::string id = Lines(Ok("alice", {"send", "ab", "written offline"})).at(0);
  EXPECT_TRUE(Has(History("alice", "ab").at(0), "\"status\":\"pending\""));
  EXPECT_TRUE(Has(Ok("alice", {"list"}), "ab"));
  Ok("alice", {"read", "ab"});
  Ok("alice", {"receipts", "off"});
  EXPECT_EQ(Ok("alice", {"receipts"}), "read receipts off\n");
  const std::string status = Ok("alice", {"status"});
  EXPECT_TRUE(Has(status, "connection: offline")) << status;
  EXPECT_TRUE(Has(status, "outbox: 1 waiting")) << status;
  EXPECT_TRUE(Has(status, "failed: 0")) << status;
  Refused(Chat("alice", {"sync", "--timeout", "1"}), 3, "no server reachable");

  // Back up: the message written offline goes out, exactly once.
  std::string error;
  ASSERT_TRUE(daemon_.Restart(&error)) << error;
  EXPECT_TRUE(Has(Ok("alice", {"sync"}), "1 sent"));
  Ok("bob", {"sync"});
  auto bob = History("bob", "ab");
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_TRUE(Has(bob[0], "\"id\":\"" + id + "\""));
  EXPECT_TRUE(Has(Ok("alice", {"status"}), "connection: online"));
}

TEST_F(ChatCliTest, RefusedMessageShowsItsReasonAndCanBeRetriedOrDiscarded) {
  Ok("bob", {"create", "bobs", "--members", "carol"});
  Ok("bob", {"sync"});
  const std::string keep = Lines(Ok("alice", {"send", "bobs", "let me in"})).at(0);
  const std::string drop = Lines(Ok("alice", {"send", "bobs", "please"})).at(0);
  EXPECT_TRUE(Has(Ok("alice", {"sync"}), "2 failed"));
  auto failed = History("alice", "bobs");
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_TRUE(Has(failed[0], "\"status\":\"failed\"")) << failed[0];
  EXPECT_TRUE(Has(failed[0], "\"error\":\"forbidden: alice is not a member of bobs\"")) << failed[0];
  EXPECT_TRUE(Has(Ok("alice", {"status"}), "failed: 2"));

  Ok("alice", {"discard", drop});
  Ok("bob", {"create", "bobs", "--members", "carol,alice"});
  Ok("bob", {"sync"});
  EXPECT_TRUE(Has(Ok("alice", {"retry", keep}), "pending again"));
  Ok("alice", {"sync"});
  auto after = History("alice", "bobs");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(Has(after[0], "\"id\":\"" + keep + "\""));
  EXPECT_TRUE(Has(after[0], "\"status\":\"sent\"")) << after[0];
  // Retrying what is no longer failed says so.
  Refused(Chat("alice", {"retry", keep}), 1, "retry " + keep);
}

TEST_F(ChatCliTest, BadInputGetsOneClearLineAndChangesNothing) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  Refused(Chat("alice", {"frobnicate"}), 2, "unknown command 'frobnicate'");
  Refused(Chat("alice", {"send", "ab"}), 2, "expected send CONV TEXT");
  Refused(Chat("alice", {"send", "ab", ""}), 1, "empty message");
  Refused(Chat("alice", {"send", "@bob", "hi"}), 1, "membership feed");
  Refused(Chat("alice", {"create", "x"}), 2, "--members");
  Refused(Chat("alice", {"history", "nope"}), 1, "no conversation 'nope'");
  Refused(Chat("alice", {"history", "ab", "--limit", "lots"}), 2, "limit");
  Refused(Chat("alice", {"retry", "not-an-id"}), 2, "'not-an-id' is not a message id");
  Refused(Chat("alice", {"discard", "01a22159-0abb-7776-9752-46f196ce1a13"}), 1, "discard");
  Refused(Chat("alice", {"receipts", "maybe"}), 2, "expected on or off");
  Refused(Chat("alice", {"send", "ab", "hi", "--bogus"}), 2, "--bogus");
  // A store belongs to one user.
  Refused(RunProgram({OUTPOST_CHAT, "--store", dir_ / "alice", "--user", "bob", "list"}), 1,
          "belongs to user 'alice'");
  // Nothing above was stored.
  EXPECT_TRUE(History("alice", "ab").empty());
  EXPECT_TRUE(Has(Ok("alice", {"status"}), "failed: 0"));
}

TEST_F(ChatCliTest, TokenFromTheEnvironmentAndServerFallback) {
  // The first endpoint has nobody listening; the second is outpostd. The token comes from OUTPOST_TOKEN.
  ::setenv("OUTPOST_TOKEN", alice_token_.c_str(), 1);
  RunResult r =
      RunProgram({OUTPOST_CHAT, "--store", dir_ / "alice", "--user", "alice", "--server", "tcp://127.0.0.1:1",
                  "--server", daemon_.endpoint(), "create", "ab", "--members", "bob"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunProgram({OUTPOST_CHAT, "--store", dir_ / "alice", "--server", "tcp://127.0.0.1:1", "--server",
                  daemon_.endpoint(), "sync", "--timeout", "20"});
  ::unsetenv("OUTPOST_TOKEN");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "1 sent")) << r.out;
  // A wrong token is refused by the server: sync fails at once (not after its timeout) and says why.
  auto start = std::chrono::steady_clock::now();
  r = RunProgram({OUTPOST_CHAT, "--store", dir_ / "alice", "--server", daemon_.endpoint(), "--token", "wrong",
                  "sync", "--timeout", "60"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  Refused(r, 1, "sync: authentication failed");
}

TEST_F(ChatCliTest, TheStoreDirectoryIsPrivate) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  EXPECT_EQ(std::filesystem::status(dir_ / "alice").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
}

// Files (issue 15) with no media server: outpostd's --http is not there yet, so these check what needs none.
class ChatCliFileTest : public ChatCliTest {
 protected:
  // `outpost-chat --store DIR/alice ARGS...` with no server: everything local.
  RunResult Offline(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {OUTPOST_CHAT, "--store", dir_ / "alice", "--user", "alice"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, 60'000);
  }
  // A 640x480 JPEG made with libvips.
  std::string Photo() {
    static const bool started = VIPS_INIT("chat_cli_e2e_test") == 0;
    EXPECT_TRUE(started);
    const std::string path = dir_ / "photo.jpg";
    vips::VImage xy = vips::VImage::xyz(640, 480);
    vips::VImage::bandjoin({xy[0] * 0.4, xy[1] * 0.5, xy[0] * 0.2})
        .cast(VIPS_FORMAT_UCHAR)
        .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
        .jpegsave(path.c_str());
    return path;
  }
  std::string TextFile() {
    const std::string path = dir_ / "notes.txt";
    std::ofstream(path) << "milk, eggs\n";
    return path;
  }
};

TEST_F(ChatCliFileTest, SendFileOfflineStoresTheMessageWithItsThumbnailAndAPendingUpload) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  RunResult r = Offline({"send-file", "ab", Photo(), "--caption", "beach"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Lines(r.out).at(0);
  ASSERT_EQ(id.size(), 36u) << r.out;
  auto h = History("alice", "ab");
  ASSERT_EQ(h.size(), 1u);
  for (const char* field : {"\"text\":\"beach\"", "\"status\":\"pending\"", "\"media\":{\"uri\":null",
                            "\"mime\":\"image/jpeg\"", "\"width\":640", "\"height\":480", "\"sha256\":\"",
                            "\"upload\":{\"state\":\"pending\",\"offset\":0}"}) {
    EXPECT_TRUE(Has(h[0], field)) << h[0] << " lacks " << field;
  }
  EXPECT_FALSE(Has(h[0], "\"thumbnail_bytes\":0")) << h[0];
  EXPECT_TRUE(Has(h[0], "\"size\":" + std::to_string(std::filesystem::file_size(dir_ / "photo.jpg"))))
      << h[0];
  // The device keeps its own copy, owner-only.
  EXPECT_EQ(std::filesystem::status(dir_ / "alice/media").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  EXPECT_TRUE(Has(Ok("alice", {"history", "ab"}), "[image 640")) << Ok("alice", {"history", "ab"});

  // A file that is not an image goes without a thumbnail; a text message has no media.
  ASSERT_EQ(Offline({"send-file", "ab", TextFile()}).exit_code, 0);
  ASSERT_EQ(Offline({"send", "ab", "plain"}).exit_code, 0);
  h = History("alice", "ab");
  ASSERT_EQ(h.size(), 3u);
  for (const char* field : {"\"mime\":\"text/plain\"", "\"size\":11", "\"width\":0", "\"thumbnail_bytes\":0",
                            "\"upload\":{\"state\":\"pending\",\"offset\":0}"}) {
    EXPECT_TRUE(Has(h[1], field)) << h[1] << " lacks " << field;
  }
  EXPECT_TRUE(Has(h[2], "\"media\":null")) << h[2];
}

TEST_F(ChatCliFileTest, SendFileWithTheServerDownIsStoredAndSaysSo) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  Ok("alice", {"sync"});
  daemon_.Signal(SIGKILL);
  ASSERT_EQ(daemon_.WaitExit(10'000), -1);
  RunResult r = Chat("alice", {"send-file", "ab", TextFile(), "--timeout", "1"});
  Refused(r, 3, "stored, not sent: no server reachable");
  ASSERT_EQ(Lines(r.out).size(), 1u) << "the id is printed before the upload is tried";
  auto h = History("alice", "ab");
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(Has(h[0], "\"id\":\"" + Lines(r.out)[0] + "\"")) << h[0];
}

TEST_F(ChatCliFileTest, FetchMediaErrorsAreClear) {
  Ok("alice", {"create", "ab", "--members", "bob"});
  const std::string text = Lines(Offline({"send", "ab", "no file here"}).out).at(0);
  const std::string file = Lines(Offline({"send-file", "ab", TextFile()}).out).at(0);
  const std::string out = dir_ / "fetched";
  Refused(Chat("alice", {"fetch-media", text, "--out", out}), 1, "has no attachment");
  Refused(Chat("alice", {"fetch-media", file, "--out", out}), 1, "not uploaded yet");
  Refused(Chat("alice", {"fetch-media", "01a22159-0abb-7776-9752-46f196ce1a13", "--out", out}), 1,
          "fetch-media");
  Refused(Chat("alice", {"fetch-media", file}), 2, "--out PATH is required");
  Refused(Chat("alice", {"fetch-media", "nope", "--out", out}), 2, "'nope' is not a message id");
  Refused(Chat("alice", {"send-file", "ab", dir_ / "missing.jpg"}), 1, "no file");
  Refused(Chat("alice", {"--media-url", "ftp://x/", "list"}), 2, "--media-url");
  EXPECT_FALSE(std::filesystem::exists(out));
}

// Files through outpostd's media server: outpost-chat processes killed (SIGKILL) mid-transfer, then run
// again. The waits poll the server's blob file or the download's .part (bounded), never a clock.
class ChatCliMediaTest : public ChatCliTest {
 protected:
  static constexpr uint32_t kChunk = 256 << 10;  // --chunk-bytes: many chunks, so many offsets to cut at

  std::vector<std::string> ServerFlags() override { return {"--http", "127.0.0.1:0"}; }

  // Conversation ab of alice and bob, both tokens bound: the media server takes a token only once its
  // device connected to the sync server.
  void Conversation() {
    Ok("alice", {"create", "ab", "--members", "bob"});
    Ok("alice", {"sync"});
    Ok("bob", {"sync"});
  }
  // `n` pseudo-random bytes in DIR/NAME.
  std::string BigFile(const std::string& name, size_t n) {
    std::string bytes(n, '\0');
    std::mt19937_64 rng(n);
    for (size_t i = 0; i + 8 <= n; i += 8) {
      const uint64_t v = rng();
      std::memcpy(&bytes[i], &v, 8);
    }
    const std::string path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // The uploads' blob files under DATA/blobs (the server's default --blobs).
  std::vector<std::filesystem::path> Blobs() const {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(data_ + "/blobs", ec)) {
      if (e.path().extension() == ".data") out.push_back(e.path());
    }
    return out;
  }
  // Bytes written to the largest blob file so far (-1 when there is none).
  int64_t BlobBytes() const {
    int64_t most = -1;
    for (const auto& p : Blobs()) most = std::max(most, FileBytes(p.string()));
    return most;
  }
  static int64_t FileBytes(const std::string& path) {
    std::error_code ec;
    const uintmax_t n = std::filesystem::file_size(path, ec);
    return ec ? -1 : static_cast<int64_t>(n);
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::string Sha256(const std::string& path) {
    auto hex = media::Sha256FileHex(path);
    return hex.ok() ? *hex : "(" + hex.status().ToString() + ")";
  }
  // Runs `argv` until `reached` holds, then kills it with SIGKILL. False (with the reason in `*why`) when
  // it exited by itself first or `reached` did not hold within the bound.
  static bool KillWhen(const std::vector<std::string>& argv, const std::string& log,
                       const std::function<bool()>& reached, std::string* why) {
    const pid_t pid = StartProgram(argv, log);
    if (pid <= 0) return false;
    int exit_code = -2;
    const bool hit = WaitFor(
        [&] {
          if (reached()) return true;
          exit_code = WaitProgram(pid, 0);
          return exit_code != -2;
        },
        120'000);
    if (exit_code != -2) {
      *why = "it exited with " + std::to_string(exit_code) + " first: " + Slurp(log);
      return false;
    }
    ::kill(pid, SIGKILL);
    exit_code = WaitProgram(pid, 10'000);
    if (!hit || exit_code != -1) {
      *why = (hit ? "not ended by the kill (" + std::to_string(exit_code) + ")"
                  : std::string("never got there")) +
             ": " + Slurp(log);
      return false;
    }
    return true;
  }
};

// The quarters of the file stored on the server when send-file is killed.
class ChatCliUploadKillTest : public ChatCliMediaTest, public ::testing::WithParamInterface<int> {};

// send-file is killed once a given part of the file is stored on the server; `sync` then resumes the upload
// where the server has it: bob's copy is byte-identical, there was one upload, and the server committed
// each byte once, give or take the chunk in flight at the kill.
TEST_P(ChatCliUploadKillTest, SendFileKilledMidUploadIsResumedBySync) {
  constexpr size_t kSize = 32 << 20;  // 128 chunks, each committed (fsync) by the blob store
  const size_t cut_at = kSize / 4 * static_cast<size_t>(GetParam());
  Conversation();
  if (HasFatalFailure()) return;
  const std::string file = BigFile("big.bin", kSize);
  const std::string chunk = std::to_string(kChunk);
  const std::string log = dir_ / "send-file.log";
  std::string why;
  ASSERT_TRUE(KillWhen(
      ChatArgv("alice", {"--chunk-bytes", chunk, "send-file", "ab", file, "--timeout", "120"}), log,
      [&] { return BlobBytes() >= static_cast<int64_t>(cut_at); }, &why))
      << why << "\nstored " << BlobBytes() << " of " << kSize;
  const int64_t stored = BlobBytes();
  ASSERT_LT(stored, static_cast<int64_t>(kSize)) << "the upload finished before the kill: nothing to resume";
  const std::string id = Lines(Slurp(log)).at(0);  // printed once durable, before the upload began
  ASSERT_EQ(id.size(), 36u) << Slurp(log);
  EXPECT_TRUE(Has(History("alice", "ab").at(0), "\"status\":\"pending\"")) << History("alice", "ab").at(0);

  // sync goes on with the upload (the same chunk size) and sends the message. Bounded: a few runs.
  for (int run = 0; run < 5 && !Has(History("alice", "ab").at(0), "\"status\":\"sent\""); ++run) {
    RunResult r = Chat("alice", {"--chunk-bytes", chunk, "sync", "--timeout", "60"});
    EXPECT_NE(r.exit_code, 2) << r.err;
  }
  const std::string sent = History("alice", "ab").at(0);
  ASSERT_TRUE(Has(sent, "\"status\":\"sent\"")) << sent;

  Ok("bob", {"sync"});
  const std::string copy = dir_ / "bob.bin";
  RunResult fetched = Chat("bob", {"fetch-media", id, "--out", copy});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(Sha256(copy), Sha256(file));
  EXPECT_EQ(FileBytes(copy), static_cast<int64_t>(kSize));

  // The server's word (stats.json, rewritten every second): one upload, resumed rather than begun again.
  ASSERT_TRUE(WaitFor([&] { return daemon_.MediaStatsField("uploads_completed") >= 1; }))
      << daemon_.StatsJson();
  EXPECT_EQ(daemon_.MediaStatsField("uploads_created"), 1) << "the upload started again instead of resuming";
  EXPECT_EQ(Blobs().size(), 1u);
  const int64_t received = daemon_.MediaStatsField("upload_bytes_received");
  EXPECT_GE(received, static_cast<int64_t>(kSize)) << daemon_.StatsJson();
  EXPECT_LE(received, static_cast<int64_t>(kSize + kChunk)) << daemon_.StatsJson();
  EXPECT_GE(daemon_.MediaStatsField("chunks"), static_cast<int64_t>(kSize / kChunk));
  EXPECT_EQ(daemon_.MediaStatsField("checksum_mismatches"), 0);
  EXPECT_EQ(daemon_.MediaStatsField("server_errors"), 0);
}

INSTANTIATE_TEST_SUITE_P(Cut, ChatCliUploadKillTest, ::testing::Values(1, 3),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return "At" + std::to_string(p.param) + "Quarters";
                         });

// fetch-media is killed mid-download; run again, it goes on from the .part it left (and says so), and the
// file is byte-identical.
TEST_F(ChatCliMediaTest, FetchMediaKilledMidDownloadResumesFromItsPart) {
  constexpr size_t kSize = 64 << 20;
  Conversation();
  if (HasFatalFailure()) return;
  const std::string file = BigFile("big.bin", kSize);
  const std::string id = Lines(Ok("alice", {"send-file", "ab", file, "--timeout", "120"})).at(0);
  ASSERT_EQ(id.size(), 36u);
  Ok("bob", {"sync"});

  const std::string copy = dir_ / "bob.bin";
  const std::string part = copy + ".part";
  std::string why;
  ASSERT_TRUE(KillWhen(
      ChatArgv("bob", {"fetch-media", id, "--out", copy}), dir_ / "fetch.log",
      [&] { return FileBytes(part) >= static_cast<int64_t>(kSize / 8); }, &why))
      << why << "\n.part holds " << FileBytes(part) << " of " << kSize;
  const int64_t held = FileBytes(part);
  ASSERT_LT(held, static_cast<int64_t>(kSize)) << "the download finished before the kill";
  EXPECT_FALSE(std::filesystem::exists(copy));

  RunResult again = Chat("bob", {"fetch-media", id, "--out", copy});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(Has(again.out, "(resumed from " + std::to_string(held) + " bytes")) << again.out;
  EXPECT_EQ(Sha256(copy), Sha256(file));
  EXPECT_EQ(FileBytes(copy), static_cast<int64_t>(kSize));
  EXPECT_FALSE(std::filesystem::exists(part));
  // Two downloads as the server saw them: the cut one and the resumed one (a 206).
  EXPECT_TRUE(WaitFor([&] { return daemon_.MediaStatsField("downloads") >= 2; })) << daemon_.StatsJson();
}

// The command line as the good tools have it (issue 17): version and help everywhere, errors that name the
// flag, nothing made by a mistake, and another user's bytes never reaching the terminal or breaking JSON.
TEST_F(ChatCliTest, CommandLineHygiene) {
  RunResult r = RunProgram({OUTPOST_CHAT, "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("outpost-chat 0.")) << r.out;
  r = RunProgram({OUTPOST_CHAT, "-h"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "--store") && Has(r.out, "history CONV")) << r.out;
  for (const std::string command : {"create", "send", "send-file", "fetch-media", "sync", "history", "list",
                                    "read", "receipts", "retry", "discard", "status"}) {
    r = RunProgram({OUTPOST_CHAT, command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_TRUE(Has(r.out, "usage: outpost-chat " + command)) << r.out;
    EXPECT_TRUE(Has(r.out, "--server")) << command << " lists the common options";
  }
  EXPECT_TRUE(Has(RunProgram({OUTPOST_CHAT, "history", "-h"}).out, "--limit N"));

  // An http:// URL is not an outpostd endpoint: said before anything is opened, naming the flag.
  const std::string unused = dir_ / "unused";
  Refused(RunProgram({OUTPOST_CHAT, "--store", unused, "--user", "alice", "--server", "http://x", "sync"}), 2,
          "--server: 'http://x' is not an outpostd endpoint");
  EXPECT_FALSE(fs::exists(unused));
  // A store path whose parent is missing is a mistake, not a tree to make.
  Refused(RunProgram({OUTPOST_CHAT, "--store", dir_ / "no/such/dir", "--user", "alice", "list"}), 2,
          "--store: ");
  EXPECT_FALSE(fs::exists(dir_ / "no"));
  // A failed open (a new store needs --user) leaves nothing behind.
  Refused(RunProgram({OUTPOST_CHAT, "--store", dir_ / "fresh", "list"}), 1, "needs a user");
  EXPECT_FALSE(fs::exists(dir_ / "fresh"));
  Refused(RunProgram({OUTPOST_CHAT, "--store", "sqlite:" + (dir_ / "fresh.db"), "list"}), 1, "needs a user");
  EXPECT_FALSE(fs::exists(dir_ / "fresh.db"));
  Refused(Chat("alice", {"history", "ab", "--limit"}), 2, "--limit");

  // Bob's message holds a terminal escape, a C1 control and invalid UTF-8.
  Ok("bob", {"create", "ab", "--members", "alice"});
  const std::string evil =
      "evil \x1b[31mred\x1b[0m \xc2\x9b"
      "2J \xff\xfe bytes";
  Ok("bob", {"send", "ab", evil});
  Ok("bob", {"sync"});
  Ok("alice", {"sync"});
  const std::string text = Ok("alice", {"history", "ab"});
  EXPECT_FALSE(Has(text, "\x1b")) << text;
  EXPECT_FALSE(Has(text, "\xc2\x9b")) << text;
  EXPECT_TRUE(Has(text, "evil \xEF\xBF\xBD[31mred")) << text;
  // JSON: valid whatever the bytes; controls escaped, invalid UTF-8 replaced by U+FFFD.
  const std::vector<std::string> json = History("alice", "ab");
  ASSERT_EQ(json.size(), 1u);
  const nlohmann::json m = nlohmann::json::parse(json[0], nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(m.is_discarded()) << json[0];
  EXPECT_EQ(m["text"],
            "evil \x1b[31mred\x1b[0m \xc2\x9b"
            "2J \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  EXPECT_FALSE(Has(json[0], "\x1b")) << "JSON escapes control characters";
}

}  // namespace
}  // namespace outpost::e2e
