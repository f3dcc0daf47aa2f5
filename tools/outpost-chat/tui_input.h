// Copyright 2026 The Outpost Authors.
//
// The input line's editing, without a terminal: the text, a cursor, readline-like edits, and the window of
// it that fits in a number of columns. tui.cc maps keys to these calls; tests/unit/chat_tui_input_test.cc
// drives it directly.
//
// Characters are wide characters of the current locale (UTF-8 ones under a UTF-8 locale; wchar_t holds a
// whole code point on Linux). The cursor moves by character cluster: a character with the zero-width ones
// after it (combining marks, variation selectors) and, after a zero-width joiner, the next character (emoji
// sequences such as 👩‍💻). This is an approximation of Unicode's grapheme clusters (UAX #29) that
// needs no tables beyond wcwidth(); regional-indicator flags and Hangul jamo sequences move as their parts.
//
// Cost: every edit is O(1) at the end of the text and O(length) (one memmove) elsewhere; the byte count is
// kept as characters come and go, and View measures only what it shows (about `columns` characters around
// the cursor). A 14k-character paste is 14k inserts, never 14k measurements of the whole line.
//
// Not thread-safe: the terminal thread owns it.
#ifndef OUTPOST_TOOLS_OUTPOST_CHAT_TUI_INPUT_H_
#define OUTPOST_TOOLS_OUTPOST_CHAT_TUI_INPUT_H_

#include <cstddef>
#include <string>

namespace outpost::chat_cli {

class InputLine {
 public:
  // At most `bytes_max` bytes of text in the locale's encoding (what Narrow(text()) would take).
  explicit InputLine(size_t bytes_max) : bytes_max_(bytes_max) {}

  // Inserts `c` at the cursor and moves past it. False (nothing changes) when the text would pass
  // bytes_max or `c` has no encoding in the locale; control characters are refused the same way.
  bool Insert(wchar_t c);

  // Cursor moves; each one is a no-op at the end it moves towards.
  void Left();
  void Right();
  void Home();
  void End();
  // To the start of this or the previous word / the end of this or the next word (readline's Alt-b /
  // Alt-f). A word is a run of letters and digits (any non-ASCII character that is neither a space nor
  // punctuation counts as a letter).
  void WordLeft();
  void WordRight();

  // Edits at the cursor.
  void Backspace();       // the cluster before the cursor
  void Delete();          // the cluster at the cursor
  void KillWordBefore();  // Ctrl-W: back to the previous whitespace, as readline's unix-word-rubout
  void KillToStart();     // Ctrl-U: from the start of the line to the cursor
  void KillToEnd();       // Ctrl-K: from the cursor to the end
  void Clear();

  const std::wstring& text() const { return text_; }
  bool empty() const { return text_.empty(); }
  // An index into text(): at a cluster start or the end (unless a joiner typed just before the cursor made
  // its neighbours one cluster; the next move puts it back on a boundary).
  size_t cursor() const { return cursor_; }
  size_t bytes() const { return bytes_; }

  // What to show in `columns` terminal columns: a slice of the text that holds the cursor and the column of
  // the cursor inside it (a cursor at the end needs one free column of its own). The window scrolls only
  // when the cursor would leave it, so the text does not jump while one types in the middle; hence not
  // const. Measures only about `columns` characters.
  struct Window {
    std::wstring text;
    int cursor_column = 0;
  };
  Window View(int columns);
  // How many characters View has measured since construction: the cost of showing the line, which must
  // not grow with its length (tests read it instead of timing anything).
  size_t measured() const { return measured_; }

 private:
  // Cluster boundaries around index i.
  size_t ClusterStart(size_t i) const;  // the start of the cluster holding text_[i - 1] (i > 0)
  size_t ClusterEnd(size_t i) const;    // the end of the cluster starting at i (i < size)
  void Erase(size_t from, size_t to);

  size_t bytes_max_;
  std::wstring text_;
  size_t cursor_ = 0;
  size_t bytes_ = 0;
  size_t measured_ = 0;
  size_t view_start_ = 0;  // the first character shown by the last View
};

// The bytes `c` takes in the locale's encoding; 0 when it has none.
size_t EncodedBytes(wchar_t c);

}  // namespace outpost::chat_cli

#endif  // OUTPOST_TOOLS_OUTPOST_CHAT_TUI_INPUT_H_
