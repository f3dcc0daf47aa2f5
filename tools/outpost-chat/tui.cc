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
#include "outpost/membership.h"
#include "thumbnail_art.h"
#include "tui_input.h"
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

// The help: a line of prose (no keys), or keys and what they do, the descriptions in one column that their
// continuation rows line up with.
struct HelpEntry {
  const char* keys;
  const char* text;
};
constexpr int kHelpKeyColumns = 21;
constexpr HelpEntry kHelp[] = {
    {"", "Enter sends the input to the selected conversation (it shows at once, pending)."},
    {"",
     "Tab / Shift-Tab, or Up / Down with an empty input: switch conversation. PageUp / PageDown: scroll."},
    {"Left/Right Home/End", "move in the input (also Ctrl-B/F, Ctrl-A/E)"},
    {"Ctrl/Alt-Left/Right", "move by words (also Alt-B/F)"},
    {"Backspace Delete",
     "delete before / at the cursor; Ctrl-W a word, Ctrl-U to the start, Ctrl-K to the end"},
    {"/new NAME MEMBERS", "create a conversation (members comma- or space-separated) and open it"},
    {"/open NAME", "open a conversation"},
    {"/offline, /online", "drop the connection (messages wait here) / reconnect"},
    {"/retry [ID]", "send a failed message again (default: the newest failed one here)"},
    {"/discard [ID]", "remove a pending or failed message (default: the newest failed one here)"},
    {"/receipts on|off", "whether others are told what you read"},
    {"/send PATH", "send a file (images get a thumbnail; the upload shows as a bar)"},
    {"/quit", "leave (also Ctrl-C, or Ctrl-D with an empty input). // sends a leading /."},
    {"", "Esc closes this help."},
};

// Keys beyond those curses names: the modifier forms of the arrows and Home/End that terminals (xterm,
// tmux) send. Bound at start to codes of our own unless the terminal's description already names them.
enum class EditKey { kWordLeft, kWordRight, kHome, kEnd };
struct KeySequence {
  const char* sequence;
  EditKey key;
};
constexpr KeySequence kKeySequences[] = {
    {"\033[1;5D", EditKey::kWordLeft}, {"\033[1;5C", EditKey::kWordRight},  // Ctrl-Left/Right
    {"\033[1;3D", EditKey::kWordLeft}, {"\033[1;3C", EditKey::kWordRight},  // Alt-Left/Right
    {"\033[5D", EditKey::kWordLeft},   {"\033[5C", EditKey::kWordRight},    // older xterm, screen
    {"\033[1~", EditKey::kHome},       {"\033[4~", EditKey::kEnd},          // tmux, screen, vt220
    {"\033[H", EditKey::kHome},        {"\033[F", EditKey::kEnd},           // xterm, normal mode
    {"\033OH", EditKey::kHome},        {"\033OF", EditKey::kEnd},           // xterm, application mode
    {"\033[7~", EditKey::kHome},       {"\033[8~", EditKey::kEnd},          // rxvt
};
constexpr int kFirstOwnKey = KEY_MAX + 1;

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
  std::map<int, EditKey> edit_keys;                  // key code (get_wch) -> what it does
  Screen() {
    if (screen == nullptr) return;
    raw();  // Ctrl-C and Ctrl-D arrive as keys: we leave cleanly ourselves
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    for (size_t i = 0; i < std::size(kKeySequences); ++i) {
      const KeySequence& k = kKeySequences[i];
      int code = key_defined(k.sequence);  // 0: unknown, -1: a prefix of others (left alone)
      if (code == 0 && define_key(k.sequence, kFirstOwnKey + static_cast<int>(i)) != ERR)
        code = kFirstOwnKey + static_cast<int>(i);
      if (code > 0) edit_keys.emplace(code, k.key);
    }
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
  Tui(const Context& ctx, Chat& chat, const std::map<int, EditKey>& edit_keys)
      : ctx_(ctx), chat_(chat), edit_keys_(edit_keys) {}
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
  void OnEditKey(EditKey key);
  // Which conversations the server refused to create (their members op failed), found again on each Reload.
  void FindRefusals();
  std::wstring Ellipsis() const { return ctx_.utf8 ? L"\u2026" : L"..."; }
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
  const std::map<int, EditKey>& edit_keys_;
  std::vector<Conversation> conversations_;
  std::string selected_;  // conversation id; "" when there is none
  std::vector<Message> messages_;
  size_t history_limit_ = kHistoryPage;
  int scroll_ = 0;      // message rows hidden below the pane
  int scroll_max_ = 0;  // from the last Draw
  int pane_rows_ = 1;   // from the last Draw
  InputLine input_{kInputBytesMax};
  bool escape_ = false;  // an Esc came last: Alt-b / Alt-f arrive as Esc then the letter
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
  // A conversation the server refused to create: the failed members op and the server's reason.
  struct Refusal {
    OpId op;
    std::string reason;
  };
  std::map<std::string, Refusal> refused_;
  // The conversations /new made in this session and not yet answered: a refusal of one of them is also
  // shown on the status line, where the user looks right after typing it.
  std::map<std::string, OpId> creating_;
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
    if (escape_) {  // a lone Esc: nothing came with it
      escape_ = false;
      help_ = false;
    }
  }
}

void Tui::FindRefusals() {
  // A refused creation leaves a conversation whose members are unknown (a failed members op does not
  // count) and that has a failed op of its own. Nothing of such a stream was sent, so the view's first op is
  // its first unsent one: the /new's members op. One small read per such conversation.
  std::map<std::string, Refusal> refused;
  for (const Conversation& c : conversations_) {
    if (!c.members.empty() || c.failed == 0) continue;
    auto first = chat_.client().Since(c.id, 0, 1);
    if (!first.ok() || first->empty()) continue;
    const OpInfo& op = first->front();
    if (op.kind == kMembersKind && op.state == OpState::kFailed) refused[c.id] = {op.op_id, op.last_error};
  }
  refused_ = std::move(refused);
  // This session's /new: a refusal goes to the status line too; an accepted or discarded one is done.
  for (auto it = creating_.begin(); it != creating_.end();) {
    auto op = chat_.client().Get(it->second);
    if (op.ok() && op->state == OpState::kPending) {
      ++it;
      continue;
    }
    if (op.ok() && op->state == OpState::kFailed) {
      Error(fmt::format("/new {}: the server refused it: {}", it->first,
                        op->last_error.empty() ? "no reason given" : op->last_error));
    }
    it = creating_.erase(it);
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
  FindRefusals();
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
  const std::vector<Span> title = {{Widen(fmt::format(" outpost-chat{}{}", Dot(), chat_.user())), A_BOLD}};
  std::vector<Span> counts;
  if (s.outbox_depth) counts.push_back({Widen(fmt::format("  outbox {}", s.outbox_depth)), A_NORMAL});
  if (s.failed) counts.push_back({Widen(fmt::format("  failed {}", s.failed)), Color(kRed)});
  if (s.ops_lost) counts.push_back({Widen(fmt::format("  lost {}", s.ops_lost)), Color(kRed)});
  if (!chat_.read_receipts()) counts.push_back({L"  receipts off", A_DIM});

  // The connection: a state ("○ offline") and, when offline, the reason, which can be long.
  std::string state, reason;
  attr_t attr = Color(kYellow) | A_BOLD;
  if (ctx_.servers.empty()) {
    state = "offline (no --server)";
  } else if (chose_offline_) {
    state = fmt::format("offline (you chose){}/online", Dot());
  } else if (s.connected) {
    state = ctx_.utf8 ? "● online" : "* online";
    attr = Color(kGreen) | A_BOLD;
  } else if (s.signed_out || s.upgrade_required) {
    // Not a network state: nothing happens until the user acts (a new login, a new app).
    state = s.signed_out ? "signed out" : "upgrade required";
    reason = ": " + s.last_connection_error;
    attr = Color(kRed) | A_BOLD;
  } else {
    state = fmt::format("{} offline", ctx_.utf8 ? "○" : "o");
    reason = ": " + (s.last_connection_error.empty() ? "connecting" : s.last_connection_error);
    attr = Color(kRed) | A_BOLD;
  }

  // Who gets the columns, first to last: the counts, the connection state, the title (up to
  // kTitleKeep columns before the reason), the reason, the rest of the title. Whatever is cut ends in an
  // ellipsis, so that nothing overwrites the counts however narrow the terminal or long the reason.
  constexpr int kTitleKeep = 32;
  const int avail = width - 1;
  const int counts_width = std::min(TextWidth(counts), avail);
  const std::vector<Span> state_spans = {{Widen(state), attr}};
  const int state_width = std::min(TextWidth(state_spans) + 1, avail - counts_width);  // + a space
  int rest = avail - counts_width - state_width;
  const std::vector<Span> reason_spans = {{Widen(reason), attr}};
  const int title_full = TextWidth(title), reason_full = TextWidth(reason_spans);
  const int title_width = std::min(title_full, std::max(rest - reason_full, std::min(kTitleKeep, rest)));
  rest -= title_width;
  const int reason_width = std::min(reason_full, rest);

  const std::vector<Span> left = Ellipsize(title, title_width, Ellipsis());
  DrawFit(0, 0, left, title_width);
  DrawFit(0, TextWidth(left), Ellipsize(counts, counts_width, Ellipsis()), counts_width);
  const int x = width - state_width - reason_width;  // state, reason, then a space in the last column
  DrawFit(0, x, Ellipsize(state_spans, state_width - 1, Ellipsis()), state_width - 1);
  if (reason_width > 0)
    DrawFit(0, x + state_width - 1, Ellipsize(reason_spans, reason_width, Ellipsis()), reason_width);
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
  std::vector<Span> title = {
      {L"no conversation: /new NAME MEMBERS starts one, /help lists the keys", A_BOLD}};
  if (help_) {
    title = {{L"help", A_BOLD}};
  } else if (c) {
    title = {{Widen(c->id), A_BOLD}};
    if (auto refused = refused_.find(c->id); refused != refused_.end()) {
      // Not "members not synced yet": they never will be. The reason says why (usually that the name is
      // taken by a conversation this user is not in).
      title.push_back({Widen(fmt::format("  (not created: {}; /discard drops it)", refused->second.reason)),
                       Color(kRed) | A_BOLD});
    } else if (c->members.empty()) {
      title.push_back({L"  (members not synced yet)", A_BOLD});
    } else {
      title.push_back({Widen(fmt::format("  ({})", fmt::join(c->members, ", "))), A_BOLD});
    }
    if (!c->member) title.push_back({L"  (you were removed)", A_BOLD});
  }
  for (Span& span : title) span.attr |= A_UNDERLINE;
  DrawFit(top, left, Ellipsize(title, width, Ellipsis()), width);
  pane_rows_ = rows - 1;
  std::vector<Row> lines;
  if (help_) {
    auto add = [&](const std::string& text, int indent) {
      for (Row& r : Wrap({{Widen(text), A_NORMAL}}, width, indent)) lines.push_back(std::move(r));
    };
    const std::string pad(kHelpKeyColumns, ' ');
    for (const HelpEntry& h : kHelp) {
      const std::string keys = h.keys;
      if (keys.empty()) {
        add(h.text, 2);
      } else if (keys.size() < pad.size()) {
        add(keys + pad.substr(keys.size()) + h.text, kHelpKeyColumns);
      } else {  // keys longer than their column: the description starts on the next row, lined up
        add(keys, kHelpKeyColumns);
        add(pad + h.text, kHelpKeyColumns);
      }
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
  // The part of the input around the cursor (InputLine::View measures only that); never the bottom-right
  // cell.
  const int room = width - 3;
  InputLine::Window view = input_.View(room);
  DrawFit(height - 1, 0, {{L"> ", A_BOLD}, {std::move(view.text), A_NORMAL}}, width - 1);
  move(height - 1, 2 + view.cursor_column);
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

void Tui::OnEditKey(EditKey key) {
  switch (key) {
    case EditKey::kWordLeft:
      return input_.WordLeft();
    case EditKey::kWordRight:
      return input_.WordRight();
    case EditKey::kHome:
      return input_.Home();
    case EditKey::kEnd:
      return input_.End();
  }
}

void Tui::OnKey(bool code, wint_t key) {
  const int page = std::max(pane_rows_ - 1, 1);
  const bool empty = input_.empty();
  constexpr wint_t kEsc = 27;
  if (escape_) {
    // Esc then a key at once: Alt and that key, as terminals send it. Alt-b / Alt-f move by words.
    escape_ = false;
    if (!code && (key == L'b' || key == L'B')) return input_.WordLeft();
    if (!code && (key == L'f' || key == L'F')) return input_.WordRight();
    if ((!code && (key == 127 || key == 8)) || (code && key == KEY_BACKSPACE)) return input_.KillWordBefore();
    help_ = false;  // else a plain Esc, then the key
  }
  if (code) {  // KEY_RESIZE needs nothing but the next Draw
    if (auto it = edit_keys_.find(static_cast<int>(key)); it != edit_keys_.end())
      return OnEditKey(it->second);
    if (key == KEY_BTAB || (key == KEY_UP && empty)) Select(-1);
    if (key == KEY_DOWN && empty) Select(+1);
    if (key == KEY_PPAGE || key == KEY_NPAGE) Scroll(key == KEY_PPAGE ? page : -page);
    if (key == KEY_ENTER) Submit();
    if (key == KEY_BACKSPACE) input_.Backspace();
    if (key == KEY_DC) input_.Delete();
    if (key == KEY_LEFT) input_.Left();
    if (key == KEY_RIGHT) input_.Right();
    if (key == KEY_HOME) input_.Home();
    if (key == KEY_END) input_.End();
    return;
  }
  // Readline's keys where they do not clash with the screen's own (Tab, Ctrl-D, Ctrl-L).
  constexpr wint_t kCtrlA = 1, kCtrlB = 2, kCtrlC = 3, kCtrlD = 4, kCtrlE = 5, kCtrlF = 6, kCtrlH = 8,
                   kCtrlK = 11, kCtrlL = 12, kCtrlU = 21, kCtrlW = 23, kDel = 127;
  switch (key) {
    case kCtrlC:
      quit_ = true;
      return;
    case kCtrlD:  // leaves like a shell: with nothing typed
      if (empty) {
        quit_ = true;
      } else {
        Notice("Ctrl-D leaves once the input is empty (Ctrl-C or /quit leave now)");
      }
      return;
    case L'\t':
      return Select(+1);
    case L'\n':
    case L'\r':
      return Submit();
    case kCtrlH:
    case kDel:
      return input_.Backspace();
    case kCtrlA:
      return input_.Home();
    case kCtrlE:
      return input_.End();
    case kCtrlB:
      return input_.Left();
    case kCtrlF:
      return input_.Right();
    case kCtrlK:
      return input_.KillToEnd();
    case kCtrlU:
      return input_.KillToStart();
    case kCtrlW:
      return input_.KillWordBefore();
    case kCtrlL:
      clearok(curscr, TRUE);
      return;
    case kEsc:
      escape_ = true;
      return;
    default:
      break;
  }
  if (key < 0x20) return;  // other control keys do nothing
  if (!input_.Insert(static_cast<wchar_t>(key))) {
    const size_t bytes = EncodedBytes(static_cast<wchar_t>(key));
    if (bytes > 0 && input_.bytes() + bytes > kInputBytesMax) Error("the input is full");
  }
}

void Tui::Submit() {
  const std::string line = Narrow(input_.text());
  if (line.find_first_not_of(" \t") == std::string::npos)
    return Error("empty message: type something (/help)");
  status_.clear();
  if (line[0] == '/' && !line.starts_with("//")) {
    help_ = false;
    if (Status st = RunCommand(line); !st.ok()) return Error(st.message());  // the input stays, to fix
    input_.Clear();
    return;
  }
  if (selected_.empty()) return Error("no conversation selected: /new NAME MEMBERS or /open NAME");
  const std::string text = line.starts_with("//") ? line.substr(1) : line;
  auto id = chat_.Send(selected_, text);
  if (!id.ok()) return Error(fmt::format("not sent to {}: {}", selected_, id.status().message()));
  input_.Clear();
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
    // A conversation the server refused to create: its members op (the pane's title names it).
    if (auto refused = refused_.find(selected_); refused != refused_.end()) return refused->second.op;
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
    creating_[args[1]] = *id;
    Notice(fmt::format("created {} (pending until the server accepts it)", args[1]));
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
    // What this device can tell: the conversations it follows are those this user is (or was) a member of.
    // Of any other name it knows nothing, and the server answers a non-member the same whether or not the
    // conversation exists (so that names do not leak): "no such conversation" and "not a member" are told
    // apart only when this device has seen it, as a removal or a refused /new (which names an existing one).
    const auto c = std::find_if(conversations_.begin(), conversations_.end(),
                                [&](const Conversation& known) { return known.id == args[1]; });
    if (c == conversations_.end()) {
      return Status::NotFound(fmt::format(
          "/open: '{}' is not one of your conversations (it may not exist, or you are not a member)",
          args[1]));
    }
    Open(args[1]);
    if (auto refused = refused_.find(args[1]); refused != refused_.end()) {
      Error(fmt::format("you are not a member of {}: the server refused creating it ({})", args[1],
                        refused->second.reason));
    } else if (!c->member) {
      Notice(
          fmt::format("you are no longer a member of {}: its history stays, nothing new arrives", args[1]));
    }
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

  Tui(ctx, *chat, screen.edit_keys).Run(*wakeup);
  chat->client().Stop();
  chat->client().Unsubscribe(subscription);
  chat->client().Unsubscribe(connection);
  return kExitOk;
}

}  // namespace outpost::chat_cli
