// Copyright 2026 The Outpost Authors.
//
// The interactive screen of outpost-chat, driven through tmux against a real outpostd: keys go in with
// `send-keys`, the screen comes back with `capture-pane -p`. Each test runs its own tmux server on a
// socket in its temporary directory, killed at the end whatever happens.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"

namespace outpost::e2e {
namespace {

constexpr int64_t kWaitMs = 30'000;  // generous: the suite also runs under ASan on a loaded machine
constexpr const char* kPending = "🕓";
constexpr const char* kSent = "✓";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The line of `screen` that holds `text` ("" when none).
std::string LineWith(const std::string& screen, const std::string& text) {
  std::istringstream in(screen);
  for (std::string line; std::getline(in, line);) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

class ChatTuiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RunResult v = RunProgram({"tmux", "-V"});
    ASSERT_EQ(v.exit_code, 0) << "the TUI test drives the screen through tmux, which is not usable here ("
                              << v.err << "): install it (apt-get install tmux; tools/bootstrap does)";
    data_ = dir_ / "data";
    alice_token_ = AddUser(data_, "alice");
    ASSERT_FALSE(AddUser(data_, "bob").empty() || alice_token_.empty());
    std::string error;
    ASSERT_TRUE(daemon_.Start(data_, "tcp://127.0.0.1:0", {}, &error)) << error;
    // remain-on-exit: the pane outlives the program, so that its exit status can be read.
    std::ofstream(dir_ / "tmux.conf") << "set -g remain-on-exit on\nset -g status off\n";
  }

  void TearDown() override {
    if (HasFailure() && tmux_started_) {
      std::cerr << "---- last screen ----\n"
                << screen_ << "---- outpost-chat stderr ----\n"
                << ReadFile(dir_ / "tui.err") << "---- outpostd log ----\n"
                << daemon_.Log() << "----\n";
    }
    KillTmux();
  }
  ~ChatTuiTest() override { KillTmux(); }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // outpost-chat as alice, run to completion.
  RunResult Chat(std::vector<std::string> args) {
    std::vector<std::string> argv = {OUTPOST_CHAT, "--store", dir_ / "alice", "--server",  daemon_.endpoint(),
                                     "--user",     "alice",   "--token",      alice_token_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, 30'000, {"TMUX"});
  }

  RunResult Tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", dir_ / "tmux.sock", "-f", dir_ / "tmux.conf"});
    return RunProgram(args, 10'000, {"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TMUX"});
  }

  // The screen as alice, 120x35, in a UTF-8 locale.
  void StartTui() {
    const std::string command = "exec env LANG=C.UTF-8 LC_ALL=C.UTF-8 OUTPOST_TOKEN=" + Quote(alice_token_) +
                                " " + Quote(OUTPOST_CHAT) + " --store " + Quote(dir_ / "alice") +
                                " --server " + Quote(daemon_.endpoint()) + " --user alice 2>" +
                                Quote(dir_ / "tui.err");
    tmux_started_ = true;  // whatever new-session says: kill-server at the end
    RunResult r = Tmux({"new-session", "-d", "-s", "tui", "-x", "120", "-y", "35", command});
    ASSERT_EQ(r.exit_code, 0) << "tmux new-session: " << r.err;
    RunResult pid = Tmux({"display-message", "-p", "-t", "tui", "#{pane_pid}"});
    pane_pid_ = std::atoi(pid.out.c_str());
  }

  void Type(const std::string& text) {
    ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "-l", text}).exit_code, 0);
    ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "Enter"}).exit_code, 0);
  }

  // Polls the screen until `condition` holds on it; the last screen is kept for failure messages.
  bool WaitScreen(const std::function<bool(const std::string&)>& condition) {
    return WaitFor(
        [&] {
          screen_ = Tmux({"capture-pane", "-p", "-t", "tui"}).out;
          return condition(screen_);
        },
        kWaitMs);
  }

  // /quit, then the program's exit status (-1 if it did not end).
  int Quit() {
    Type("/quit");
    std::string dead;
    WaitFor(
        [&] {
          dead = Tmux({"display-message", "-p", "-t", "tui", "#{pane_dead} #{pane_dead_status}"}).out;
          return dead.starts_with("1 ");
        },
        kWaitMs);
    return dead.starts_with("1 ") ? std::atoi(dead.c_str() + 2) : -1;
  }

  void KillTmux() {
    if (!tmux_started_) return;
    tmux_started_ = false;
    (void)Tmux({"kill-server"});
    // The program (SIGHUP) must be gone before the temporary directory, its store, is removed.
    if (pane_pid_ > 0) WaitFor([&] { return kill(pane_pid_, 0) != 0; }, 10'000);
  }

  // Makes alice-bob with one message from the CLI, synced to the server.
  void CreateConversationWithHistory(const std::string& text) {
    RunResult r = Chat({"create", "alice-bob", "--members", "bob"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Chat({"send", "alice-bob", text});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Chat({"sync", "--timeout", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::string data_;
  std::string alice_token_;
  Daemon daemon_;
  bool tmux_started_ = false;
  pid_t pane_pid_ = -1;
  std::string screen_;
};

TEST_F(ChatTuiTest, PendingWhileOfflineTurnsSentAfterOnline) {
  ASSERT_NO_FATAL_FAILURE(CreateConversationWithHistory("made from the command line"));
  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("alice-bob") != std::string::npos && s.find("● online") != std::string::npos &&
           LineWith(s, "made from the command line").find(kSent) != std::string::npos;
  })) << "the screen never showed the conversation, online";

  ASSERT_NO_FATAL_FAILURE(Type("/offline"));
  ASSERT_TRUE(
      WaitScreen([](const std::string& s) { return s.find("offline (you chose)") != std::string::npos; }));

  const std::string text = "typed while offline";
  ASSERT_NO_FATAL_FAILURE(Type(text));
  ASSERT_TRUE(WaitScreen([&](const std::string& s) {
    return LineWith(s, "alice: " + text).find(kPending) != std::string::npos;
  })) << "no pending glyph on the message line";

  ASSERT_NO_FATAL_FAILURE(Type("/online"));
  ASSERT_TRUE(WaitScreen([&](const std::string& s) {
    const std::string line = LineWith(s, "alice: " + text);
    return line.find(kSent) != std::string::npos && line.find(kPending) == std::string::npos &&
           s.find("● online") != std::string::npos;
  })) << "the message never turned sent after /online";

  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

TEST_F(ChatTuiTest, OpensAndShowsHistoryWithTheServerDown) {
  ASSERT_NO_FATAL_FAILURE(CreateConversationWithHistory("said before the outage"));
  daemon_.Signal(SIGKILL);
  ASSERT_NE(daemon_.WaitExit(10'000), -2);

  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("alice-bob") != std::string::npos && s.find("○ offline") != std::string::npos &&
           LineWith(s, "alice: said before the outage").find(kSent) != std::string::npos;
  })) << "the screen never showed the history while the server is down";

  // Writing still works, pending; bad input is refused on the status line and stays typed.
  ASSERT_NO_FATAL_FAILURE(Type("written during the outage"));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return LineWith(s, "alice: written during the outage").find(kPending) != std::string::npos;
  }));
  ASSERT_NO_FATAL_FAILURE(Type("/nonsense"));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("unknown command /nonsense") != std::string::npos &&
           s.find("> /nonsense") != std::string::npos;
  }));
  ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "C-u"}).exit_code, 0);  // clears the input

  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

}  // namespace
}  // namespace outpost::e2e
