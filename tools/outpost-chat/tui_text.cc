// Copyright 2026 The Outpost Authors.
#include "tui_text.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cwchar>

namespace outpost::chat_cli {

std::wstring Widen(std::string_view s) {
  std::wstring out;
  std::mbstate_t state{};
  for (size_t i = 0; i < s.size();) {
    wchar_t c = 0;
    const size_t n = std::mbrtowc(&c, s.data() + i, s.size() - i, &state);
    if (n == 0 || n > s.size() - i) {  // NUL, invalid or truncated
      state = {};
      c = MB_CUR_MAX > 1 ? L'\uFFFD' : L'?';
      i += 1;
    } else {
      i += n;
    }
    out.push_back(c < 0x20 || c == 0x7f ? L' ' : c);
  }
  return out;
}

std::string Narrow(const std::wstring& w) {
  std::string out;
  std::mbstate_t state{};
  char buf[MB_LEN_MAX];
  for (wchar_t c : w) {
    const size_t n = std::wcrtomb(buf, c, &state);
    if (n != static_cast<size_t>(-1)) out.append(buf, n);
  }
  return out;
}

int Columns(wchar_t c) { return std::max(wcwidth(c), 0); }

std::vector<Row> Wrap(const std::vector<Span>& spans, int width, int indent) {
  std::vector<Row> rows(1);
  int col = 0;
  indent = std::min(indent, width / 2);
  auto new_row = [&](attr_t attr) {
    rows.push_back({{std::wstring(indent, L' '), A_NORMAL}, {L"", attr}});
    col = indent;
  };
  for (const Span& s : spans) {
    rows.back().push_back({L"", s.attr});
    for (size_t i = 0; i < s.text.size();) {
      // The next word with the spaces after it.
      size_t end = s.text.find(L' ', i);
      end = end == std::wstring::npos ? s.text.size() : s.text.find_first_not_of(L' ', end);
      end = end == std::wstring::npos ? s.text.size() : end;
      int word = 0;
      for (size_t j = i; j < end; ++j) word += s.text[j] == L' ' ? 0 : Columns(s.text[j]);
      if (col > indent && col + word > width && indent + word <= width) new_row(s.attr);
      for (; i < end; ++i) {
        const int w = Columns(s.text[i]);
        if (col + w > width) {
          if (s.text[i] == L' ') continue;  // spaces at a break vanish
          new_row(s.attr);
        }
        rows.back().back().text.push_back(s.text[i]);
        col += w;
      }
    }
  }
  return rows;
}

void DrawRow(int y, int x, const Row& row) {
  move(y, x);
  for (const Span& s : row) {
    if (s.pair != 0) {
      int pair = s.pair;
      attr_set(s.attr, 0, &pair);  // ncurses takes an extended pair through the opts pointer
    } else {
      attrset(s.attr);
    }
    addnwstr(s.text.c_str(), static_cast<int>(s.text.size()));
  }
  attrset(A_NORMAL);
}

void DrawFit(int y, int x, const std::vector<Span>& spans, int width) {
  if (width > 0) DrawRow(y, x, Wrap(spans, width, 0).front());
}

std::vector<Span> Ellipsize(const std::vector<Span>& spans, int width, const std::wstring& ellipsis) {
  if (TextWidth(spans) <= width) return spans;
  int ellipsis_width = 0;
  for (wchar_t c : ellipsis) ellipsis_width += Columns(c);
  const int room = std::max(width - ellipsis_width, 0);
  std::vector<Span> out;
  int col = 0;
  bool cut = false;
  for (const Span& s : spans) {
    if (cut) break;
    out.push_back({L"", s.attr, s.pair});
    for (wchar_t c : s.text) {
      cut = col + Columns(c) > room;
      if (cut) break;
      out.back().text.push_back(c);
      col += Columns(c);
    }
  }
  for (wchar_t c : ellipsis) {
    if (col + Columns(c) > width) break;
    out.back().text.push_back(c);
    col += Columns(c);
  }
  return out;
}

int TextWidth(const std::vector<Span>& spans) {
  int w = 0;
  for (const Span& s : spans) {
    for (wchar_t c : s.text) w += Columns(c);
  }
  return w;
}

std::vector<std::string> Words(std::string_view line, std::string_view separators) {
  std::vector<std::string> out;
  size_t i = 0;
  while ((i = line.find_first_not_of(separators, i)) != std::string_view::npos) {
    const size_t end = std::min(line.find_first_of(separators, i), line.size());
    out.emplace_back(line.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace outpost::chat_cli
