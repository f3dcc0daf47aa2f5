// Copyright 2026 The Outpost Authors.
//
// outpost-chat: the chat adapter as a terminal program. main.cc parses the common options and dispatches;
// commands.cc holds the scriptable subcommands, tui.cc the interactive screen, format.cc what both print.
#ifndef OUTPOST_TOOLS_OUTPOST_CHAT_CLI_H_
#define OUTPOST_TOOLS_OUTPOST_CHAT_CLI_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/flags.h"
#include "outpost/chat/chat.h"

namespace outpost::chat_cli {

using cli::Flags;
using cli::FlagSpec;
inline constexpr int kExitOk = cli::kExitOk;
inline constexpr int kExitError = cli::kExitError;
inline constexpr int kExitUsage = cli::kExitUsage;
inline constexpr int kExitUnreachable = 3;  // sync: the server could not be reached for the whole timeout
                                            // (send-file, fetch-media: nor the media endpoint)

// The common options.
struct Context {
  std::string store;                 // storage URI
  std::vector<std::string> servers;  // transport URIs, tried in turn
  std::string user;
  std::string token;
  // Files: this device's copies of the files it sends (<data dir>/media; empty for a memory store, which
  // then cannot send files) and the upload endpoint (--media-url; empty: the one the server announces).
  std::string media_dir;
  std::string media_url;
  uint32_t upload_chunk_bytes = 0;  // --chunk-bytes; 0: ClientOptions' default (4 MiB)
  bool utf8 = false;                // the terminal's locale is UTF-8: emoji glyphs; else ASCII ones
  // What this run made for --store (the store's directory or file, when it did not exist): a failed open
  // removes it again, so that a mistaken command leaves nothing behind.
  std::string created;
};

// Opens the device's chat store; with `connect`, with the servers set (nothing connects before a Start or
// Step). Failures come back as one line for stderr.
Result<std::unique_ptr<chat::Chat>> OpenChat(const Context& ctx, bool connect);

// Makes `dir` and its missing parents 0700 (main.cc).
Status MakePrivateDir(const std::string& dir);

// Prints "outpost-chat: MESSAGE" on stderr and returns `exit_code`.
int Fail(int exit_code, std::string_view message);

struct Command {
  std::string name;
  std::string usage;  // first line: "NAME ARGS", then a short description
  std::vector<FlagSpec> flags;
  int (*run)(const Context& ctx, const Flags& flags) = nullptr;
};
const std::vector<Command>& Commands();  // commands.cc

int RunTui(const Context& ctx);  // tui.cc

// ---- format.cc ----
// The status glyph: 🕓 ✓ ✓✓ ✓✓ ❗ (UTF-8) or [.] [v] [vv] [vv] [!] (ASCII); read adds "seen" where shown.
std::string_view Glyph(chat::MessageStatus status, bool utf8);
// "HH:MM" (local time) of a client time.
std::string ClockTime(int64_t ms);
// "2026-11-28T08:01:02.345Z".
std::string IsoTime(int64_t ms);
// `s` safe to print on a terminal: C0 and C1 control characters (ESC included) and DEL, and each byte of
// invalid UTF-8, become U+FFFD ('?' outside a UTF-8 locale, where any non-ASCII character does too); a
// newline becomes ↵ so that a message stays on its line.
std::string Printable(std::string_view s, bool utf8);
// One message as a line of text: "HH:MM sender: text", then for the viewer's own messages
// "  GLYPH status[: error]" (others' messages carry no status glyph, as in any chat app).
std::string MessageLine(const chat::Message& m, bool utf8, std::string_view viewer);
// One message as a JSON object (history --json).
std::string MessageJson(const chat::Message& m);
// "[photo.jpg image/jpeg 1200x900, 2.1 MB]"-like text for a message's file, without the picture.
std::string MediaText(const chat::Message& m, bool utf8);
// "3 s", "2 min", "5 h".
std::string Age(int64_t ms);

}  // namespace outpost::chat_cli

#endif  // OUTPOST_TOOLS_OUTPOST_CHAT_CLI_H_
