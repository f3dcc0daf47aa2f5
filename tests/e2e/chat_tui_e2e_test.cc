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
// A pasted 14k-character line must be echoed and sent whole; how fast is not timed here (the editor's unit
// test counts the work per key, tests/unit/chat_tui_input_test.cc, and bench/tui_input_bench.cc measures it).
constexpr int64_t kPasteEchoMs = kWaitMs;
constexpr const char* kPending = "🕓";
constexpr const char* kSent = "✓";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The column of byte `pos` of a UTF-8 line: the code points before it (the screens here hold no wide ones).
size_t Column(const std::string& line, size_t pos) {
  size_t col = 0;
  for (size_t i = 0; i < pos && i < line.size(); ++i)
    col += (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80;
  return col;
}

// The row of `screen` just after the one that holds `text` ("" when none).
std::string LineAfter(const std::string& screen, const std::string& text) {
  std::istringstream in(screen);
  for (std::string line; std::getline(in, line);) {
    if (line.find(text) != std::string::npos && std::getline(in, line)) return line;
  }
  return "";
}

std::string FirstLine(const std::string& screen) { return screen.substr(0, screen.find('\n')); }
std::string LastLine(const std::string& screen) {
  std::string s = screen;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
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
    bob_token_ = AddUser(data_, "bob");
    ASSERT_FALSE(bob_token_.empty() || alice_token_.empty());
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

  // outpost-chat as bob, on a store of his own.
  RunResult BobChat(std::vector<std::string> args) {
    std::vector<std::string> argv = {OUTPOST_CHAT, "--store", dir_ / "bob", "--server", daemon_.endpoint(),
                                     "--user",     "bob",     "--token",    bob_token_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, 30'000, {"TMUX"});
  }

  // Makes `name` as bob, with bob its only member, synced to the server: a conversation alice is not in.
  void CreateBobsConversation(const std::string& name) {
    RunResult r = BobChat({"create", name, "--members", "bob"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = BobChat({"sync", "--timeout", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  RunResult Tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", dir_ / "tmux.sock", "-f", dir_ / "tmux.conf"});
    return RunProgram(args, 10'000, {"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TMUX"});
  }

  // The screen as alice, `width`x35, in a UTF-8 locale.
  void StartTui(int width = 120) {
    const std::string command = "exec env LANG=C.UTF-8 LC_ALL=C.UTF-8 OUTPOST_TOKEN=" + Quote(alice_token_) +
                                " " + Quote(OUTPOST_CHAT) + " --store " + Quote(dir_ / "alice") +
                                " --server " + Quote(daemon_.endpoint()) + " --user alice 2>" +
                                Quote(dir_ / "tui.err");
    tmux_started_ = true;  // whatever new-session says: kill-server at the end
    RunResult r = Tmux({"new-session", "-d", "-s", "tui", "-x", std::to_string(width), "-y", "35", command});
    ASSERT_EQ(r.exit_code, 0) << "tmux new-session: " << r.err;
    RunResult pid = Tmux({"display-message", "-p", "-t", "tui", "#{pane_pid}"});
    pane_pid_ = std::atoi(pid.out.c_str());
  }

  void Type(const std::string& text) {
    ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "-l", text}).exit_code, 0);
    ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "Enter"}).exit_code, 0);
  }

  // Keys by tmux name ("Left", "C-Left", "M-b", "BSpace"), each one key press.
  void Keys(const std::vector<std::string>& keys) {
    std::vector<std::string> args = {"send-keys", "-t", "tui"};
    args.insert(args.end(), keys.begin(), keys.end());
    ASSERT_EQ(Tmux(args).exit_code, 0);
  }
  // Text typed as is, without Enter.
  void Text(const std::string& text) { ASSERT_EQ(Tmux({"send-keys", "-t", "tui", "-l", text}).exit_code, 0); }

  // Polls the screen until `condition` holds on it; the last screen is kept for failure messages.
  bool WaitScreen(const std::function<bool(const std::string&)>& condition, int64_t timeout_ms = kWaitMs) {
    return WaitFor(
        [&] {
          screen_ = Tmux({"capture-pane", "-p", "-t", "tui"}).out;
          return condition(screen_);
        },
        timeout_ms);
  }

  // Waits for the screen to show alice online.
  bool WaitOnline() {
    return WaitScreen([](const std::string& s) { return s.find("● online") != std::string::npos; });
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
  std::string alice_token_, bob_token_;
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

// A conversation alice is not in: /open of its name says it is none of hers (without claiming it does not
// exist); /new of it is refused by the server, and the refusal is shown with its reason on the status line
// and in the pane, which no longer waits for members; /open of it then says she is not a member.
TEST_F(ChatTuiTest, RefusedNewIsShownAndOpenSaysNotAMember) {
  ASSERT_NO_FATAL_FAILURE(CreateBobsConversation("bobs-room"));
  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitOnline());

  ASSERT_NO_FATAL_FAILURE(Type("/open bobs-room"));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find(
               "'bobs-room' is not one of your conversations (it may not exist, or you are not a member)") !=
           std::string::npos;
  })) << "/open of a conversation alice is not in";
  EXPECT_EQ(screen_.find("/new bobs-room"), std::string::npos) << "it must not suggest /new";
  ASSERT_NO_FATAL_FAILURE(Keys({"C-u"}));

  ASSERT_NO_FATAL_FAILURE(Type("/new bobs-room carol"));
  const std::string reason = "forbidden: alice is not a member of bobs-room";
  ASSERT_TRUE(WaitScreen([&](const std::string& s) {
    return LastLine(s) == ">" &&
           s.find("/new bobs-room: the server refused it: " + reason) != std::string::npos &&
           s.find("bobs-room  (not created: " + reason) != std::string::npos &&
           s.find("failed 1") != std::string::npos;
  })) << "the refusal and its reason on the status line and in the pane";
  EXPECT_EQ(screen_.find("members not synced yet"), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(Type("/open bobs-room"));
  ASSERT_TRUE(WaitScreen([&](const std::string& s) {
    return s.find("you are not a member of bobs-room: the server refused creating it (" + reason + ")") !=
           std::string::npos;
  })) << "/open of the refused conversation";

  // /discard with no id drops the refused creation.
  ASSERT_NO_FATAL_FAILURE(Type("/discard"));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("discarded") != std::string::npos && s.find("failed 1") == std::string::npos;
  })) << "/discard of the refused creation";

  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

// At 60 columns, offline with a long reason, one message waiting and a refused /new, the header still
// shows both counts and the connection state; the reason is cut with an ellipsis.
TEST_F(ChatTuiTest, NarrowHeaderKeepsTheCountsWithALongOfflineReason) {
  ASSERT_NO_FATAL_FAILURE(CreateBobsConversation("bobs-room"));
  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitOnline());
  ASSERT_NO_FATAL_FAILURE(Type("/new bobs-room carol"));
  ASSERT_TRUE(
      WaitScreen([](const std::string& s) { return FirstLine(s).find("failed 1") != std::string::npos; }));

  daemon_.Signal(SIGKILL);
  ASSERT_NE(daemon_.WaitExit(10'000), -2);
  ASSERT_NO_FATAL_FAILURE(Type("waits for the server"));
  // At full width the reason is whole; it is longer than what 60 columns leave beside the counts.
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    const std::string header = FirstLine(s);
    return header.find("outbox 1") != std::string::npos &&
           header.find("offline: Unavailable: no server answered") != std::string::npos;
  })) << "offline with its reason, one message waiting";

  ASSERT_EQ(Tmux({"resize-window", "-t", "tui", "-x", "60", "-y", "35"}).exit_code, 0);
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    const std::string header = FirstLine(s);
    return Column(header, header.size()) <= 60 && header.find("outbox 1") != std::string::npos &&
           header.find("failed 1") != std::string::npos && header.find("○ offline: ") != std::string::npos &&
           header.find("…") != std::string::npos;
  })) << "the counts, the state and a cut reason in 60 columns";

  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

// /help's descriptions form one column: where one wraps, its next row starts in that column.
TEST_F(ChatTuiTest, HelpContinuationRowsLineUp) {
  ASSERT_NO_FATAL_FAILURE(StartTui(70));
  ASSERT_TRUE(WaitOnline());
  ASSERT_NO_FATAL_FAILURE(Type("/help"));
  ASSERT_TRUE(WaitScreen([](const std::string& s) { return s.find("/discard [ID]") != std::string::npos; }));
  // Entries that wrap at this width: each continuation row starts where the description did.
  for (const std::string keys : {"/new NAME MEMBERS", "/retry [ID]", "/discard [ID]", "Backspace Delete"}) {
    SCOPED_TRACE(keys);
    const std::string line = LineWith(screen_, keys);
    ASSERT_FALSE(line.empty());
    const size_t keys_at = line.find(keys);
    const size_t text_at = line.find_first_not_of(' ', keys_at + keys.size());
    const std::string next = LineAfter(screen_, keys);
    const size_t bar = next.find("│");
    ASSERT_NE(bar, std::string::npos) << next;
    const size_t next_at = next.find_first_not_of(' ', bar + std::string("│").size());
    ASSERT_NE(next_at, std::string::npos) << "no continuation row after " << keys << ": " << next;
    EXPECT_EQ(Column(next, next_at), Column(line, text_at)) << line << "\n" << next;
    EXPECT_GT(Column(line, text_at), Column(line, keys_at) + keys.size()) << line;
  }
  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

// Editing in the middle of the input: characters, words (Ctrl-, Alt-Left and Alt-b), Home/End, Delete and
// Backspace at the cursor, a wide character; what is sent is the edited text.
TEST_F(ChatTuiTest, CursorEditingSendsTheEditedText) {
  ASSERT_NO_FATAL_FAILURE(CreateConversationWithHistory("before the edits"));
  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("● online") != std::string::npos && s.find("before the edits") != std::string::npos;
  }));
  ASSERT_NO_FATAL_FAILURE(Text("one two three"));
  ASSERT_NO_FATAL_FAILURE(Keys({"C-Left"}));  // before "three"
  ASSERT_NO_FATAL_FAILURE(Text("X"));
  ASSERT_NO_FATAL_FAILURE(Keys({"M-b", "M-b"}));  // before "Xthree", then before "two"
  ASSERT_NO_FATAL_FAILURE(Text("Y"));
  ASSERT_NO_FATAL_FAILURE(Keys({"Home"}));
  ASSERT_NO_FATAL_FAILURE(Text("Z"));
  ASSERT_NO_FATAL_FAILURE(Keys({"End"}));
  ASSERT_NO_FATAL_FAILURE(Text("E"));
  ASSERT_NO_FATAL_FAILURE(Keys({"M-Left", "Left", "DC"}));  // the space before "XthreeE"
  ASSERT_NO_FATAL_FAILURE(Keys({"C-Right"}));
  ASSERT_NO_FATAL_FAILURE(Text("W猫é"));
  ASSERT_NO_FATAL_FAILURE(Keys({"Left", "Left", "BSpace", "End", "BSpace"}));  // the W, then the é
  ASSERT_TRUE(WaitScreen([](const std::string& s) { return LastLine(s) == "> Zone YtwoXthreeE猫"; }))
      << "the input after the edits";
  ASSERT_NO_FATAL_FAILURE(Keys({"Enter"}));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return LineWith(s, "alice: Zone YtwoXthreeE猫").find(kSent) != std::string::npos && LastLine(s) == ">";
  })) << "the edited text, sent";
  EXPECT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");
}

// A 14k-character paste is on screen promptly, and is sent whole.
TEST_F(ChatTuiTest, LongPasteEchoesPromptlyAndIsSentWhole) {
  ASSERT_NO_FATAL_FAILURE(CreateConversationWithHistory("before the paste"));
  ASSERT_NO_FATAL_FAILURE(StartTui());
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return s.find("● online") != std::string::npos && s.find("before the paste") != std::string::npos;
  }));
  std::string text;
  for (int i = 0; text.size() < 14'000 - 12; ++i) text += static_cast<char>('a' + i % 26);
  text += "END-OF-PASTE";
  std::ofstream(dir_ / "paste.txt") << text;
  ASSERT_EQ(Tmux({"load-buffer", "-b", "paste", dir_ / "paste.txt"}).exit_code, 0);
  const int64_t start = SteadyNowMs();
  ASSERT_EQ(Tmux({"paste-buffer", "-b", "paste", "-t", "tui"}).exit_code, 0);
  ASSERT_TRUE(
      WaitScreen([](const std::string& s) { return LastLine(s).ends_with("END-OF-PASTE"); }, kPasteEchoMs))
      << "the paste was not echoed within " << kPasteEchoMs << " ms";
  std::cerr << "14k-character paste echoed in " << SteadyNowMs() - start << " ms\n";

  ASSERT_NO_FATAL_FAILURE(Keys({"Enter"}));
  ASSERT_TRUE(WaitScreen([](const std::string& s) {
    return LineWith(s, "END-OF-PASTE").find(kSent) != std::string::npos && LastLine(s) == ">";
  })) << "the pasted message, sent";
  ASSERT_EQ(Quit(), 0) << ReadFile(dir_ / "tui.err");

  RunResult history = Chat({"history", "alice-bob"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_NE(history.out.find("alice: " + text), std::string::npos) << "the whole text was not sent";
}

}  // namespace
}  // namespace outpost::e2e
