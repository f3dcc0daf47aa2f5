// Copyright 2026 The Outpost Authors.
//
// The interactive screen (ncursesw):
//
//   row 0         header: user, outbox, receipts, and the connection indicator on the right
//   rows 1..H-3   conversations with unread counts | the selected conversation's messages
//   row H-2       status line: the last error or notice, else a hint
//   row H-1       input line
//
// One thread owns the terminal. Engine callbacks only write a byte to a self-pipe; the main loop poll()s
// stdin and that pipe (with a timeout, to refresh the connection indicator) and reloads from the store when
// the pipe says something changed. Nothing here waits on the network: sending is a local write.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "thumbnail_art.h"
#include "tui_text.h"

namespace outpost::chat_cli {
namespace {

using chat::Chat;
using chat::Conversation;
using chat::Message;
using chat::MessageStatus;

constexpr int kPollMs = 500;               // the connection indicator is at most this stale
constexpr size_t kHistoryPage = 200;       // messages loaded per step back
constexpr size_t kInputBytesMax = 16'384;  // the adapter refuses longer texts anyway
constexpr int kListWidthMax = 28;
constexpr int kWidthMin = 40, kHeightMin = 8;
// A thumbnail takes at most this many cells (two pixels each, stacked): 24 x 24 pixels.
constexpr int kArtColumns = 24, kArtRows = 12;
constexpr int kArtIndent = 6;         // under the message text
constexpr size_t kArtCacheMax = 256;  // decoded thumbnails kept
constexpr short kArtPairFirst = 16;   // colour pairs from here on are the pictures'

enum ColorPair : short { kGreen = 1, kRed, kYellow, kCyan };

constexpr const char* kHelp[] = {
    "Enter sends the input to the selected conversation (it shows at once, pending).",
    "Tab / Shift-Tab, or Up / Down with an empty input: switch conversation. PageUp / PageDown: scroll.",
    "/new NAME MEMBERS    create a conversation (members comma- or space-separated) and open it",
    "/open NAME           open a conversation",
    "/offline, /online    drop the connection (messages wait here) / reconnect",
    "/retry [ID]          send a failed message again (default: the newest failed one here)",
    "/discard [ID]        remove a pending or failed message (default: the newest failed one here)",
    "/receipts on|off     whether others are told what you read",
    "/send PATH           send a file (images get a thumbnail; the upload shows as a bar)",
    "/quit                leave (also Ctrl-C, or Ctrl-D with an empty input). // sends a leading /.",
    "Esc closes this help.",
};

volatile std::sig_atomic_t g_quit_signal = 0;
void OnQuitSignal(int) { g_quit_signal = 1; }

// The byte pipe engine threads use to wake the main loop. Shared with the callback, so its fds stay open
// until the client drops the callback, even if one is still running when we unsubscribe.
struct Wakeup {
  int fds[2] = {-1, -1};
  Wakeup() {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) fds[0] = fds[1] = -1;
  }
  ~Wakeup() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  void Notify() const {
    char b = 1;
    (void)!write(fds[1], &b, 1);  // full pipe: a wakeup is pending anyway
  }
  void Drain() const {
    char buf[256];
    while (read(fds[0], buf, sizeof buf) > 0) {
    }
  }
};

attr_t Color(ColorPair pair) { return has_colors() ? COLOR_PAIR(pair) : A_NORMAL; }

// The last characters of an id: its random part (the first ones are a timestamp, shared by neighbours).
std::string ShortId(const OpId& id) { return id.ToString().substr(28); }

// Initializes and, whatever happens, restores the terminal.
struct Screen {
  SCREEN* screen = newterm(nullptr, stdout, stdin);  // nullptr: not a terminal curses knows
  Screen() {
    if (screen == nullptr) return;
    raw();  // Ctrl-C and Ctrl-D arrive as keys: we leave cleanly ourselves
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(kGreen, COLOR_GREEN, -1);
      init_pair(kRed, COLOR_RED, -1);
      init_pair(kYellow, COLOR_YELLOW, -1);
      init_pair(kCyan, COLOR_CYAN, -1);
    }
  }
  ~Screen() {
    if (screen == nullptr) return;
    endwin();
    delscreen(screen);
  }
};

class Tui {
 public:
  Tui(const Context& ctx, Chat& chat) : ctx_(ctx), chat_(chat) {}
  void Run(const Wakeup& wakeup);

 private:
  void Reload();
  void Draw();
  void DrawHeader(int width);
  void DrawConversations(int top, int rows, int width);
  void DrawMessages(int top, int rows, int left, int width);
  void DrawFooter(int height, int width);
  std::vector<Span> MessageSpans(const Message& m) const;
  // The thumbnail of `m` as rows of coloured half blocks, at most `width` columns; none without 256
  // colours, a thumbnail, or one that decodes.
  std::vector<Row> ThumbnailRows(const Message& m, int width);
  int ArtPair(int16_t fg, int16_t bg);

  void OnKey(bool code, wint_t key);
  void Select(int delta);
  void Open(const std::string& conversation);
  void Scroll(int delta_rows);
  void Submit();
  Status RunCommand(const std::string& line);
  Result<OpId> TargetMessage(const std::vector<std::string>& args) const;
  const Conversation* Selected() const;
  void Error(std::string text) {
    status_ = std::move(text);
    status_error_ = true;
  }
  void Notice(std::string text) {
    status_ = std::move(text);
    status_error_ = false;
  }
  const char* Dot() const { return ctx_.utf8 ? " · " : " - "; }

  const Context& ctx_;
  Chat& chat_;
  std::vector<Conversation> conversations_;
  std::string selected_;  // conversation id; "" when there is none
  std::vector<Message> messages_;
  size_t history_limit_ = kHistoryPage;
  int scroll_ = 0;      // message rows hidden below the pane
  int scroll_max_ = 0;  // from the last Draw
  int pane_rows_ = 1;   // from the last Draw
  std::wstring input_;
  std::string status_;
  bool status_error_ = false;
  bool help_ = false;
  bool chose_offline_ = false;
  bool dirty_ = true;
  bool quit_ = false;
  // Decoded thumbnails by message id and width, and the colour pairs their cells use.
  std::map<std::string, std::vector<ArtRow>> art_;
  std::map<int, int> art_pairs_;  // fg * 512 + bg + 1 -> pair
  int next_pair_ = kArtPairFirst;
};

void Tui::Run(const Wakeup& wakeup) {
  while (!quit_ && !g_quit_signal) {
    if (dirty_) Reload();
    Draw();
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wakeup.fds[0], POLLIN, 0}};
    const int n = poll(fds, 2, kPollMs);
    if (n > 0 && (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL))) break;  // the terminal went away
    if (n > 0 && (fds[1].revents & POLLIN)) {
      wakeup.Drain();
      dirty_ = true;
    }
    // Upload progress is not a change of the view: while files go up, the bars move at the poll's pace.
    if (n == 0 && chat_.client().Stats().uploads > 0) dirty_ = true;
    // Also after EINTR: SIGWINCH comes back as KEY_RESIZE.
    wint_t key = 0;
    for (int r; !quit_ && (r = get_wch(&key)) != ERR;) OnKey(r == KEY_CODE_YES, key);
  }
}

const Conversation* Tui::Selected() const {
  for (const Conversation& c : conversations_) {
    if (c.id == selected_) return &c;
  }
  return nullptr;
}

void Tui::Reload() {
  dirty_ = false;
  auto convs = chat_.Conversations();
  if (!convs.ok()) return Error("cannot list conversations: " + convs.status().message());
  conversations_ = std::move(convs).value();
  if (Selected() == nullptr) {
    selected_ = conversations_.empty() ? "" : conversations_.front().id;
    scroll_ = 0;
  }
  messages_.clear();
  if (selected_.empty()) return;
  auto history = chat_.History(selected_, history_limit_);
  if (!history.ok()) return Error(fmt::format("cannot read {}: {}", selected_, history.status().message()));
  messages_ = std::move(history).value();
  // Shown means seen: unread counts drop and (receipts on) the others are told.
  for (Conversation& c : conversations_) {
    if (c.id != selected_ || c.unread == 0) continue;
    if (Status st = chat_.MarkRead(selected_); !st.ok()) return Error("cannot mark read: " + st.message());
    c.unread = 0;
  }
}

void Tui::Draw() {
  erase();
  const int height = LINES, width = COLS;
  if (height < kHeightMin || width < kWidthMin) {
    DrawFit(0, 0, {{Widen(fmt::format("terminal too small ({}x{})", width, height)), A_BOLD}}, width);
    refresh();
    return;
  }
  DrawHeader(width);
  const int list_width = std::min(kListWidthMax, width / 4);
  DrawConversations(1, height - 3, list_width);
  mvvline(1, list_width, ctx_.utf8 ? ACS_VLINE : '|', height - 3);
  DrawMessages(1, height - 3, list_width + 2, width - list_width - 3);
  DrawFooter(height, width);
  refresh();
}

void Tui::DrawHeader(int width) {
  const ClientStats s = chat_.client().Stats();
  std::vector<Span> left = {{Widen(fmt::format(" outpost-chat{}{}", Dot(), chat_.user())), A_BOLD}};
  if (s.outbox_depth) left.push_back({Widen(fmt::format("  outbox {}", s.outbox_depth)), A_NORMAL});
  if (s.failed) left.push_back({Widen(fmt::format("  failed {}", s.failed)), Color(kRed)});
  if (!chat_.read_receipts()) left.push_back({L"  receipts off", A_DIM});

  std::string conn;
  attr_t attr = Color(kYellow) | A_BOLD;
  if (ctx_.servers.empty()) {
    conn = "offline (no --server)";
  } else if (chose_offline_) {
    conn = fmt::format("offline (you chose){}/online", Dot());
  } else if (s.connected) {
    conn = ctx_.utf8 ? "● online" : "* online";
    attr = Color(kGreen) | A_BOLD;
  } else {
    conn = fmt::format("{} offline: {}", ctx_.utf8 ? "○" : "o",
                       s.last_connection_error.empty() ? "connecting" : s.last_connection_error);
    attr = Color(kRed) | A_BOLD;
  }
  std::vector<Span> right = {{Widen(conn + " "), attr}};
  const int right_width = std::min(TextWidth(right), width - 1);
  DrawFit(0, 0, left, width - right_width - 1);
  DrawFit(0, width - right_width, right, right_width);
}

void Tui::DrawConversations(int top, int rows, int width) {
  DrawFit(top, 1, {{L"Conversations", A_BOLD | A_UNDERLINE}}, width - 1);
  if (conversations_.empty()) {
    DrawFit(top + 2, 1, {{L"none yet: /new", A_DIM}}, width - 1);
    return;
  }
  const int slots = rows - 1;
  int index = 0;
  for (size_t i = 0; i < conversations_.size(); ++i) {
    if (conversations_[i].id == selected_) index = static_cast<int>(i);
  }
  const int first = std::max(0, index - slots + 1);  // keep the selection visible
  for (int i = first; i < static_cast<int>(conversations_.size()) && i - first < slots; ++i) {
    const Conversation& c = conversations_[i];
    std::vector<Span> count;
    if (c.failed) count.push_back({L" ! ", Color(kRed) | A_BOLD});
    if (c.unread) count.push_back({Widen(fmt::format(" {} ", c.unread)), A_BOLD | A_REVERSE});
    const int count_width = TextWidth(count);
    const attr_t attr = (c.id == selected_ ? A_REVERSE : A_NORMAL) | (c.member ? A_NORMAL : A_DIM);
    const int y = top + 1 + i - first;
    const int name_width = std::max(width - 1 - count_width, 1);
    std::wstring name = Widen(c.id);
    name.resize(std::max<size_t>(name.size(), static_cast<size_t>(name_width)), L' ');
    DrawFit(y, 0, {{L" " + name, attr}}, name_width);
    DrawFit(y, width - count_width, count, count_width);
  }
}

std::vector<Span> Tui::MessageSpans(const Message& m) const {
  std::vector<Span> spans = {
      {Widen(ClockTime(m.client_time_ms) + " "), A_DIM},
      {Widen(m.sender + ": "), A_BOLD | (m.sender == chat_.user() ? Color(kCyan) : 0)}};
  if (m.unreadable) {
    spans.push_back({L"(unreadable message)", A_DIM});
  } else {
    spans.push_back({Widen(m.text), A_NORMAL});
  }
  if (m.has_media) spans.push_back({Widen((m.text.empty() ? "" : " ") + MediaText(m, ctx_.utf8)), A_DIM});
  if (m.sender != chat_.user()) return spans;  // status is for the author's eyes
  const std::wstring glyph = L"  " + Widen(Glyph(m.status, ctx_.utf8));
  switch (m.status) {
    case MessageStatus::kPending:
      spans.push_back({glyph, Color(kYellow)});
      break;
    case MessageStatus::kSent:
    case MessageStatus::kDelivered:
      spans.push_back({glyph, A_NORMAL});
      break;
    case MessageStatus::kRead:
      spans.push_back({glyph + L" seen", Color(kCyan) | A_BOLD});
      break;
    case MessageStatus::kFailed:
      spans.push_back({glyph + Widen(fmt::format(" failed: {}", m.error)), Color(kRed) | A_BOLD});
      spans.push_back({Widen(fmt::format("  [{}] /retry /discard", ShortId(m.id))), A_DIM});
      break;
  }
  return spans;
}

void Tui::DrawMessages(int top, int rows, int left, int width) {
  const Conversation* c = Selected();
  std::string title = "no conversation: /new NAME MEMBERS starts one, /help lists the keys";
  if (help_) {
    title = "help";
  } else if (c) {
    title = c->id + (c->members.empty() ? "  (members not synced yet)"
                                        : fmt::format("  ({})", fmt::join(c->members, ", ")));
    if (!c->member) title += "  (you were removed)";
  }
  DrawFit(top, left, {{Widen(title), A_BOLD | A_UNDERLINE}}, width);
  pane_rows_ = rows - 1;
  std::vector<Row> lines;
  if (help_) {
    for (const char* h : kHelp) {
      for (Row& r : Wrap({{Widen(h), A_NORMAL}}, width, 2)) lines.push_back(std::move(r));
    }
  } else {
    for (const Message& m : messages_) {
      for (Row& r : Wrap(MessageSpans(m), width, 6)) lines.push_back(std::move(r));
      for (Row& r : ThumbnailRows(m, width)) lines.push_back(std::move(r));
    }
  }
  const int total = static_cast<int>(lines.size());
  scroll_max_ = std::max(0, total - pane_rows_);
  scroll_ = std::clamp(scroll_, 0, scroll_max_);
  const int last = total - scroll_;  // one past the last row shown
  const int first = std::max(0, last - pane_rows_);
  for (int i = first; i < last; ++i) DrawRow(top + 1 + (i - first), left, lines[i]);
  if (scroll_ > 0)
    DrawFit(top, left + width - 12,
            {{Widen(fmt::format("{} {} more", ctx_.utf8 ? "↓" : "v", scroll_)), A_REVERSE}}, 12);
}

int Tui::ArtPair(int16_t fg, int16_t bg) {
  const int key = fg * 512 + bg + 1;
  if (auto it = art_pairs_.find(key); it != art_pairs_.end()) return it->second;
  if (next_pair_ >= COLOR_PAIRS) {
    // Out of pairs: start over. Pictures drawn earlier in this frame may change colour until the next one.
    art_pairs_.clear();
    next_pair_ = kArtPairFirst;
  }
  const int pair = next_pair_++;
  init_extended_pair(pair, fg, bg);
  art_pairs_[key] = pair;
  return pair;
}

std::vector<Row> Tui::ThumbnailRows(const Message& m, int width) {
  std::vector<Row> rows;
  // Without 256 colours the picture would be noise: the "[image WxH, size]" text stands for it.
  if (m.media.thumbnail.empty() || !has_colors() || COLORS < 256) return rows;
  const int columns = std::min(kArtColumns, width - kArtIndent);
  if (columns < 4) return rows;
  const std::string key = m.id.ToString() + "/" + std::to_string(columns);
  auto it = art_.find(key);
  if (it == art_.end()) {
    if (art_.size() >= kArtCacheMax) art_.clear();
    auto image = DecodeThumbnail(m.media.thumbnail, columns, kArtRows * 2);
    // A thumbnail that does not decode is shown as its text only (kept empty: not decoded again).
    it = art_.emplace(key, image.ok() ? HalfBlockArt(*image) : std::vector<ArtRow>{}).first;
  }
  for (const ArtRow& cells : it->second) {
    Row row = {{std::wstring(kArtIndent, L' '), A_NORMAL}};
    for (const ArtCell& c : cells) row.push_back({L"\u2580", A_NORMAL, ArtPair(c.fg, c.bg)});
    rows.push_back(std::move(row));
  }
  return rows;
}

void Tui::DrawFooter(int height, int width) {
  if (status_.empty()) {
    const std::string hint = fmt::format(" Enter sends{0}Tab switches{0}PgUp/PgDn scroll{0}/help", Dot());
    DrawFit(height - 2, 0, {{Widen(hint), A_DIM}}, width);
  } else {
    DrawFit(height - 2, 0, {{Widen(" " + status_), status_error_ ? Color(kRed) | A_BOLD : A_BOLD}}, width);
  }
  // The input's tail, so that the cursor (at its end) stays visible; never the bottom-right cell.
  const int room = width - 3;
  size_t start = input_.size();
  for (int cols = 0; start > 0 && cols + Columns(input_[start - 1]) <= room; --start) {
    cols += Columns(input_[start - 1]);
  }
  const std::vector<Span> line = {{L"> ", A_BOLD}, {input_.substr(start), A_NORMAL}};
  DrawFit(height - 1, 0, line, width - 1);
  move(height - 1, std::min(TextWidth(line), width - 1));
}

void Tui::Select(int delta) {
  if (conversations_.empty()) return;
  const int n = static_cast<int>(conversations_.size());
  int index = 0;
  for (int i = 0; i < n; ++i) {
    if (conversations_[i].id == selected_) index = i;
  }
  Open(conversations_[((index + delta) % n + n) % n].id);
}

void Tui::Open(const std::string& conversation) {
  selected_ = conversation;
  scroll_ = 0;
  history_limit_ = kHistoryPage;
  help_ = false;
  dirty_ = true;
}

void Tui::Scroll(int delta_rows) {
  scroll_ = std::clamp(scroll_ + delta_rows, 0, scroll_max_);
  // At the top of what is loaded: load an older page (the scroll offset counts from the bottom, so the
  // rows on screen stay put).
  if (delta_rows > 0 && scroll_ == scroll_max_ && messages_.size() >= history_limit_) {
    history_limit_ += kHistoryPage;
    dirty_ = true;
  }
}

void Tui::OnKey(bool code, wint_t key) {
  const int page = std::max(pane_rows_ - 1, 1);
  const bool empty = input_.empty();
  if (code) {  // KEY_RESIZE needs nothing but the next Draw
    if (key == KEY_BTAB || (key == KEY_UP && empty)) Select(-1);
    if (key == KEY_DOWN && empty) Select(+1);
    if (key == KEY_PPAGE || key == KEY_NPAGE) Scroll(key == KEY_PPAGE ? page : -page);
    if (key == KEY_ENTER) Submit();
    if (key == KEY_BACKSPACE && !empty) input_.pop_back();
    return;
  }
  constexpr wint_t kCtrlC = 3, kCtrlD = 4, kCtrlH = 8, kCtrlL = 12, kCtrlU = 21, kEsc = 27, kDel = 127;
  if (key == kCtrlC || (key == kCtrlD && empty)) {  // Ctrl-D leaves like a shell: with nothing typed
    quit_ = true;
  } else if (key == kCtrlD) {
    Notice("Ctrl-D leaves once the input is empty (Ctrl-C or /quit leave now)");
  } else if (key == L'\t') {
    Select(+1);
  } else if (key == L'\n' || key == L'\r') {
    Submit();
  } else if (key == kCtrlH || key == kDel) {
    if (!empty) input_.pop_back();
  } else if (key == kCtrlU) {
    input_.clear();
  } else if (key == kCtrlL) {
    clearok(curscr, TRUE);
  } else if (key == kEsc) {
    help_ = false;
  } else if (key >= 0x20) {
    if (Narrow(input_).size() + MB_CUR_MAX > kInputBytesMax) return Error("the input is full");
    input_.push_back(static_cast<wchar_t>(key));
  }
}

void Tui::Submit() {
  const std::string line = Narrow(input_);
  if (line.find_first_not_of(" \t") == std::string::npos)
    return Error("empty message: type something (/help)");
  status_.clear();
  if (line[0] == '/' && !line.starts_with("//")) {
    help_ = false;
    if (Status st = RunCommand(line); !st.ok()) return Error(st.message());  // the input stays, to fix
    input_.clear();
    return;
  }
  if (selected_.empty()) return Error("no conversation selected: /new NAME MEMBERS or /open NAME");
  const std::string text = line.starts_with("//") ? line.substr(1) : line;
  auto id = chat_.Send(selected_, text);
  if (!id.ok()) return Error(fmt::format("not sent to {}: {}", selected_, id.status().message()));
  input_.clear();
  help_ = false;
  scroll_ = 0;
  dirty_ = true;  // shows now, pending; the pipe also says so
}

Result<OpId> Tui::TargetMessage(const std::vector<std::string>& args) const {
  if (args.size() > 2) return Status::InvalidArgument(fmt::format("usage: {} [ID]", args[0]));
  if (args.size() == 1) {
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it) {
      if (it->own && it->status == MessageStatus::kFailed) return it->id;
    }
    return Status::NotFound(
        fmt::format("{}: no failed message in {}", args[0], selected_.empty() ? "view" : selected_));
  }
  if (auto id = OpId::Parse(args[1]); id.ok()) return id;
  // The end of an id (as the failed line shows) among the messages loaded.
  const OpId* found = nullptr;
  for (const Message& m : messages_) {
    if (args[1].size() < 4 || !m.id.ToString().ends_with(args[1])) continue;
    if (found)
      return Status::InvalidArgument(fmt::format("{}: '{}' matches several messages", args[0], args[1]));
    found = &m.id;
  }
  if (!found)
    return Status::InvalidArgument(fmt::format("{}: '{}' is not a message id here", args[0], args[1]));
  return *found;
}

Status Tui::RunCommand(const std::string& line) {
  const std::vector<std::string> args = Words(line);
  const std::string& name = args[0];
  Client& client = chat_.client();
  if (name == "/quit" || name == "/exit") {
    quit_ = true;
  } else if (name == "/help") {
    help_ = true;
    scroll_ = 1 << 20;  // clamped by Draw: the help's first row at the top
  } else if (name == "/offline") {
    client.SetOnline(false);
    chose_offline_ = true;
    Notice("offline: messages wait on this device until /online");
  } else if (name == "/online") {
    if (ctx_.servers.empty())
      return Status::InvalidArgument("/online: no --server given, nothing to connect to");
    client.SetOnline(true);
    chose_offline_ = false;
    Notice(fmt::format("connecting to {}", fmt::join(ctx_.servers, ", ")));
  } else if (name == "/retry" || name == "/discard") {
    OUTPOST_ASSIGN_OR_RETURN(OpId id, TargetMessage(args));
    const bool retry = name == "/retry";
    if (Status st = retry ? chat_.Retry(id) : chat_.Discard(id); !st.ok()) {
      return Status::FromCode(st.code(), fmt::format("{} {}: {}", name, id.ToString(), st.message()));
    }
    Notice(fmt::format("{} {}", ShortId(id), retry ? "is pending again" : "discarded"));
    dirty_ = true;
  } else if (name == "/receipts") {
    if (args.size() != 2 || (args[1] != "on" && args[1] != "off")) {
      return Status::InvalidArgument(
          fmt::format("usage: /receipts on|off (now {})", chat_.read_receipts() ? "on" : "off"));
    }
    OUTPOST_RETURN_IF_ERROR(chat_.SetReadReceipts(args[1] == "on"));
    Notice(args[1] == "on" ? "read receipts on: others see what you read"
                           : "read receipts off: nobody is told what you read");
  } else if (name == "/new") {
    std::vector<std::string> members;
    for (size_t i = 2; i < args.size(); ++i) {
      for (std::string& m : Words(args[i], ",")) members.push_back(std::move(m));
    }
    if (args.size() < 2 || members.empty())
      return Status::InvalidArgument("usage: /new NAME MEMBERS (e.g. /new team bob,carol)");
    auto id = chat_.CreateConversation(args[1], members);
    if (!id.ok())
      return Status::FromCode(id.status().code(), fmt::format("/new {}: {}", args[1], id.status().message()));
    Open(args[1]);
    Notice(fmt::format("created {}", args[1]));
  } else if (name == "/send") {
    // The path is the rest of the line, spaces and all; a leading ~/ is the home directory.
    std::string path = line.substr(line.find("/send") + 5);
    path.erase(0, path.find_first_not_of(" \t"));
    while (!path.empty() && (path.back() == ' ' || path.back() == '\t')) path.pop_back();
    if (path.empty()) return Status::InvalidArgument("usage: /send PATH");
    if (path.starts_with("~/")) {
      if (const char* home = std::getenv("HOME")) path = home + path.substr(1);
    }
    if (selected_.empty())
      return Status::InvalidArgument("no conversation selected: /new NAME MEMBERS or /open NAME");
    if (ctx_.media_dir.empty()) return Status::InvalidArgument("/send: a memory store keeps no files");
    auto id = chat_.SendFile(selected_, path);
    if (!id.ok()) {
      return Status::FromCode(id.status().code(), fmt::format("/send {}: {}", path, id.status().message()));
    }
    Notice(fmt::format("{} sent to {} (uploading)", path, selected_));
    scroll_ = 0;
    dirty_ = true;
  } else if (name == "/open") {
    if (args.size() != 2) return Status::InvalidArgument("usage: /open NAME");
    const bool known = std::any_of(conversations_.begin(), conversations_.end(),
                                   [&](const Conversation& c) { return c.id == args[1]; });
    if (!known)
      return Status::NotFound(
          fmt::format("/open: no conversation '{}' here (/new {} MEMBERS makes it)", args[1], args[1]));
    Open(args[1]);
  } else {
    return Status::InvalidArgument(
        fmt::format("unknown command {} (/help lists them; // sends a leading /)", name));
  }
  return Status::OK();
}

}  // namespace

int RunTui(const Context& ctx) {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    return Fail(kExitUsage,
                "the interactive screen needs a terminal (outpost-chat --help lists the commands)");
  }
  auto opened = OpenChat(ctx, /*connect=*/!ctx.servers.empty());
  if (!opened.ok()) return Fail(kExitError, opened.status().message());
  std::unique_ptr<Chat> chat = std::move(opened).value();
  auto wakeup = std::make_shared<Wakeup>();
  if (wakeup->fds[0] < 0) return Fail(kExitError, "cannot make a pipe");
  Screen screen;  // endwin at the end of this scope, after the client stopped
  if (screen.screen == nullptr) return Fail(kExitError, "cannot start the screen on this terminal ($TERM)");

  const uint64_t subscription =
      chat->client().Subscribe("", [wakeup](const std::vector<Change>&) { wakeup->Notify(); });
  // The status line shows the connection: redraw when it changes.
  const uint64_t connection =
      chat->client().SubscribeConnection([wakeup](const ConnectionEvent&) { wakeup->Notify(); });
  if (!ctx.servers.empty()) chat->client().Start();
  struct sigaction sa = {};
  sa.sa_handler = OnQuitSignal;  // no SA_RESTART: poll() returns and the loop ends
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  Tui(ctx, *chat).Run(*wakeup);
  chat->client().Stop();
  chat->client().Unsubscribe(subscription);
  chat->client().Unsubscribe(connection);
  return kExitOk;
}

}  // namespace outpost::chat_cli
