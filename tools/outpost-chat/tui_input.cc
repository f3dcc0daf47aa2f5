// Copyright 2026 The Outpost Authors.
#include "tui_input.h"

#include <algorithm>
#include <climits>
#include <cwchar>
#include <cwctype>

namespace outpost::chat_cli {
namespace {

constexpr wchar_t kZeroWidthJoiner = L'\u200D';

// Terminal columns of `c`, as tui_text.h's Columns (0 for what the terminal cannot show).
int Width(wchar_t c) { return std::max(wcwidth(c), 0); }

// Joins the character before it: combining marks, variation selectors, the joiner itself.
bool Joins(wchar_t c) { return wcwidth(c) == 0; }

bool IsWordChar(wchar_t c) {
  if (std::iswalnum(static_cast<wint_t>(c))) return true;
  return c >= 0x80 && !std::iswspace(static_cast<wint_t>(c)) && !std::iswpunct(static_cast<wint_t>(c));
}

bool IsSpace(wchar_t c) { return std::iswspace(static_cast<wint_t>(c)) != 0; }

}  // namespace

size_t EncodedBytes(wchar_t c) {
  char buf[MB_LEN_MAX];
  std::mbstate_t state{};
  const size_t n = std::wcrtomb(buf, c, &state);
  return n == static_cast<size_t>(-1) ? 0 : n;
}

bool InputLine::Insert(wchar_t c) {
  if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return false;  // control characters (C0, DEL, C1)
  const size_t n = EncodedBytes(c);
  if (n == 0 || bytes_ + n > bytes_max_) return false;
  text_.insert(cursor_, 1, c);
  ++cursor_;
  bytes_ += n;
  return true;
}

size_t InputLine::ClusterStart(size_t i) const {
  size_t j = i - 1;
  while (j > 0 && (Joins(text_[j]) || text_[j - 1] == kZeroWidthJoiner)) --j;
  return j;
}

size_t InputLine::ClusterEnd(size_t i) const {
  size_t j = i + 1;
  while (j < text_.size() && Joins(text_[j])) {
    // A joiner takes the next character into the cluster too.
    j += text_[j] == kZeroWidthJoiner && j + 1 < text_.size() ? 2 : 1;
  }
  return std::min(j, text_.size());
}

void InputLine::Left() {
  if (cursor_ > 0) cursor_ = ClusterStart(cursor_);
}

void InputLine::Right() {
  if (cursor_ < text_.size()) cursor_ = ClusterEnd(cursor_);
}

void InputLine::Home() { cursor_ = 0; }

void InputLine::End() { cursor_ = text_.size(); }

void InputLine::WordLeft() {
  while (cursor_ > 0 && !IsWordChar(text_[cursor_ - 1])) --cursor_;
  while (cursor_ > 0 && IsWordChar(text_[cursor_ - 1])) --cursor_;
}

void InputLine::WordRight() {
  while (cursor_ < text_.size() && !IsWordChar(text_[cursor_])) ++cursor_;
  while (cursor_ < text_.size() && IsWordChar(text_[cursor_])) ++cursor_;
}

void InputLine::Erase(size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) bytes_ -= EncodedBytes(text_[i]);
  text_.erase(from, to - from);
  if (cursor_ >= to) {
    cursor_ -= to - from;
  } else if (cursor_ > from) {
    cursor_ = from;
  }
}

void InputLine::Backspace() {
  if (cursor_ > 0) Erase(ClusterStart(cursor_), cursor_);
}

void InputLine::Delete() {
  if (cursor_ < text_.size()) Erase(cursor_, ClusterEnd(cursor_));
}

void InputLine::KillWordBefore() {
  size_t from = cursor_;
  while (from > 0 && IsSpace(text_[from - 1])) --from;
  while (from > 0 && !IsSpace(text_[from - 1])) --from;
  Erase(from, cursor_);
}

void InputLine::KillToStart() { Erase(0, cursor_); }

void InputLine::KillToEnd() { Erase(cursor_, text_.size()); }

void InputLine::Clear() {
  text_.clear();
  cursor_ = bytes_ = view_start_ = 0;
}

InputLine::Window InputLine::View(int columns) {
  // Every width measured is counted (measured()): the test of the editor's cost reads it.
  auto width = [this](wchar_t c) {
    ++measured_;
    return Width(c);
  };
  Window out;
  if (columns <= 0) return out;
  view_start_ = std::min(view_start_, cursor_);
  if (view_start_ == cursor_ && cursor_ > 0) {
    // Moving left out of the window (or a cleared line): show a quarter of the room before the cursor, so
    // that what one is about to delete or jump over is in sight.
    int before = 0;
    while (view_start_ > 0 && before + width(text_[view_start_ - 1]) <= columns / 4) {
      before += width(text_[--view_start_]);
    }
  }
  // The cursor's cell: the character under it, or a free column at the end.
  const int cursor_cell = cursor_ < text_.size() ? std::max(width(text_[cursor_]), 1) : 1;
  // Moving right out of the window: the start moves just enough for the cursor's cell to fit. Walks back
  // from the cursor at most `columns` columns, however long the text.
  int need = cursor_cell;
  size_t p = cursor_;
  while (p > view_start_ && need + width(text_[p - 1]) <= columns) need += width(text_[--p]);
  if (p > view_start_) {
    while (p < cursor_ && Joins(text_[p])) ++p;  // never start on a mark cut from its character
    view_start_ = p;
  }
  int col = 0;
  for (size_t i = view_start_; i < text_.size(); ++i) {
    if (i == cursor_) out.cursor_column = col;
    const int w = width(text_[i]);
    if (col + w > columns) break;
    out.text.push_back(text_[i]);
    col += w;
  }
  if (cursor_ == text_.size()) out.cursor_column = std::min(col, columns - 1);
  return out;
}

}  // namespace outpost::chat_cli
