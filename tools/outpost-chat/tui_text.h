// Copyright 2026 The Outpost Authors.
//
// Text on the interactive screen: UTF-8 to and from wide characters (in the current locale), terminal
// columns, wrapping and drawing runs of text that share one attribute. Terminal thread only.
#ifndef OUTPOST_TOOLS_OUTPOST_CHAT_TUI_TEXT_H_
#define OUTPOST_TOOLS_OUTPOST_CHAT_TUI_TEXT_H_

#include <curses.h>

#include <string>
#include <string_view>
#include <vector>
#undef OK  // curses' macro would meet Status::OK()

namespace outpost::chat_cli {

// A piece of text in one attribute; a screen row is a list of them.
struct Span {
  std::wstring text;
  attr_t attr = A_NORMAL;
  int pair = 0;  // a colour pair beyond COLOR_PAIR's 255 (init_extended_pair); 0: the attr's own
};
using Row = std::vector<Span>;

// Invalid bytes become U+FFFD (or '?' outside UTF-8) and control characters spaces.
std::wstring Widen(std::string_view s);
std::string Narrow(const std::wstring& w);
// Terminal columns of one character (0 for those it cannot show).
int Columns(wchar_t c);
int TextWidth(const std::vector<Span>& spans);

// Lays `spans` out in rows of at most `width` columns, breaking after spaces where a word fits on a fresh
// row (else anywhere); continuation rows start with `indent` spaces.
std::vector<Row> Wrap(const std::vector<Span>& spans, int width, int indent);
void DrawRow(int y, int x, const Row& row);
// One row at (y, x), cut at `width` columns.
void DrawFit(int y, int x, const std::vector<Span>& spans, int width);
// `spans` in at most `width` columns: unchanged when they fit, else cut so that `ellipsis` (in the attribute
// of the span it ends) fills the last columns, or as much of it as `width` allows.
std::vector<Span> Ellipsize(const std::vector<Span>& spans, int width, const std::wstring& ellipsis);

// The words of `line` between any of `separators`.
std::vector<std::string> Words(std::string_view line, std::string_view separators = " \t");

}  // namespace outpost::chat_cli

#endif  // OUTPOST_TOOLS_OUTPOST_CHAT_TUI_TEXT_H_
