// Copyright 2026 The Outpost Authors.
//
// The TUI's line editor (tools/outpost-chat/tui_input.h) as a plain class: no terminal, no curses.
#include <gtest/gtest.h>

#include <clocale>
#include <string>

#include "outpost-chat/tui_input.h"

namespace outpost::chat_cli {
namespace {

class InputLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Widths and encodings come from the locale, as in the program (which sets it from the environment).
    if (std::setlocale(LC_ALL, "C.UTF-8") == nullptr) GTEST_SKIP() << "no C.UTF-8 locale here";
  }
  void TearDown() override { std::setlocale(LC_ALL, "C"); }

  static void Type(InputLine& line, const std::wstring& text) {
    for (wchar_t c : text) ASSERT_TRUE(line.Insert(c)) << "refused U+" << std::hex << static_cast<int>(c);
  }
};

TEST_F(InputLineTest, InsertsAtTheCursorAndDeletesAroundIt) {
  InputLine line(1024);
  Type(line, L"helo world");
  EXPECT_EQ(line.cursor(), 10u);
  for (int i = 0; i < 7; ++i) line.Left();
  Type(line, L"l");  // "hel|o" -> "hell|o"
  EXPECT_EQ(line.text(), L"hello world");
  EXPECT_EQ(line.cursor(), 4u);
  line.Delete();  // the 'o'
  EXPECT_EQ(line.text(), L"hell world");
  line.Backspace();  // the second 'l'
  EXPECT_EQ(line.text(), L"hel world");
  EXPECT_EQ(line.cursor(), 3u);
  line.Home();
  line.Backspace();  // nothing before the start
  EXPECT_EQ(line.text(), L"hel world");
  line.End();
  line.Delete();  // nothing after the end
  EXPECT_EQ(line.text(), L"hel world");
  line.Right();
  EXPECT_EQ(line.cursor(), 9u);
  EXPECT_EQ(line.bytes(), 9u);
}

TEST_F(InputLineTest, MovesAndKillsByWordsAsReadline) {
  InputLine line(1024);
  Type(line, L"send it,  now please");
  line.WordLeft();
  EXPECT_EQ(line.cursor(), 14u);  // "please"
  line.WordLeft();
  EXPECT_EQ(line.cursor(), 10u);  // "now"
  line.WordLeft();
  EXPECT_EQ(line.cursor(), 5u);  // "it", over ",  "
  line.WordRight();
  EXPECT_EQ(line.cursor(), 7u);  // the end of "it"
  line.WordRight();
  EXPECT_EQ(line.cursor(), 13u);  // the end of "now"
  line.KillWordBefore();          // "now"
  EXPECT_EQ(line.text(), L"send it,   please");
  line.KillWordBefore();  // the spaces, then "it,"
  EXPECT_EQ(line.text(), L"send  please");
  EXPECT_EQ(line.cursor(), 5u);
  line.KillToEnd();
  EXPECT_EQ(line.text(), L"send ");
  line.Left();
  line.KillToStart();
  EXPECT_EQ(line.text(), L" ");
  EXPECT_EQ(line.cursor(), 0u);
  line.Clear();
  EXPECT_TRUE(line.empty());
  EXPECT_EQ(line.bytes(), 0u);
}

TEST_F(InputLineTest, MovesOverWholeCharactersWithTheirMarks) {
  InputLine line(1024);
  // e + combining acute, a wide CJK character, and woman + ZWJ + laptop (one emoji): three clusters.
  Type(line, L"e\u0301\u732B\U0001F469\u200D\U0001F4BB");
  EXPECT_EQ(line.bytes(), 3u + 3u + 4u + 3u + 4u);
  line.Left();
  EXPECT_EQ(line.cursor(), 3u);  // before the emoji sequence
  line.Left();
  EXPECT_EQ(line.cursor(), 2u);  // before the CJK character
  line.Left();
  EXPECT_EQ(line.cursor(), 0u);  // before e + its mark
  line.Right();
  EXPECT_EQ(line.cursor(), 2u);
  line.Delete();  // the CJK character
  EXPECT_EQ(line.text(), L"e\u0301\U0001F469\u200D\U0001F4BB");
  line.End();
  line.Backspace();  // the whole emoji sequence
  EXPECT_EQ(line.text(), L"e\u0301");
  line.Backspace();  // e with its mark
  EXPECT_TRUE(line.empty());
  EXPECT_EQ(line.bytes(), 0u);
}

TEST_F(InputLineTest, RefusesControlCharactersAndMoreThanTheByteLimit) {
  InputLine line(5);
  EXPECT_FALSE(line.Insert(L'\n'));
  EXPECT_FALSE(line.Insert(L'\x1b'));
  EXPECT_FALSE(line.Insert(L'\x7f'));
  EXPECT_FALSE(line.Insert(L'\x85'));
  EXPECT_TRUE(line.Insert(L'\u00e9'));  // 2 bytes
  EXPECT_TRUE(line.Insert(L'\u732B'));  // 3 bytes: 5 in all
  EXPECT_FALSE(line.Insert(L'a'));
  EXPECT_EQ(line.text(), L"\u00e9\u732B");
  line.Backspace();
  EXPECT_TRUE(line.Insert(L'a'));
}

TEST_F(InputLineTest, ViewKeepsTheCursorInSightAndCountsWideColumns) {
  InputLine line(1 << 16);
  InputLine::Window w = line.View(10);
  EXPECT_EQ(w.text, L"");
  EXPECT_EQ(w.cursor_column, 0);

  Type(line, L"abcdefghijklmnopqrstuvwxyz");
  w = line.View(10);  // the tail, with a free column for the cursor at the end
  EXPECT_EQ(w.text, L"rstuvwxyz");
  EXPECT_EQ(w.cursor_column, 9);

  for (int i = 0; i < 5; ++i) line.Left();  // inside the window: it does not move
  w = line.View(10);
  EXPECT_EQ(w.text, L"rstuvwxyz");
  EXPECT_EQ(w.cursor_column, 4);

  line.Home();
  w = line.View(10);
  EXPECT_EQ(w.text, L"abcdefghij");
  EXPECT_EQ(w.cursor_column, 0);

  // Wide characters take two columns each; one that does not fit whole is left out.
  InputLine wide(1 << 16);
  Type(wide, L"\u732B\u732B\u732B\u732B\u732B\u732B");
  w = wide.View(7);
  EXPECT_EQ(w.text, L"\u732B\u732B\u732B");
  EXPECT_EQ(w.cursor_column, 6);
  // Moving left out of the window shows a quarter of it before the cursor.
  wide.Home();
  wide.Right();
  w = wide.View(9);
  EXPECT_EQ(w.text, L"\u732B\u732B\u732B\u732B");
  EXPECT_EQ(w.cursor_column, 2);
}

TEST_F(InputLineTest, LongPasteStaysLinear) {
  // 64k characters typed one by one, each 64th followed by a View as the screen does after a batch of keys:
  // what View measures must not grow with the line (the old screen measured the whole line on every key,
  // which took seconds for 14k characters). The work is counted, not timed.
  InputLine line(1 << 20);
  constexpr int kKeys = 65'536;
  constexpr int kColumns = 100;
  int views = 0;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(line.Insert(static_cast<wchar_t>(L'a' + i % 26)));
    if (i % 64 == 0) {
      (void)line.View(kColumns);
      ++views;
    }
  }
  InputLine::Window w = line.View(kColumns);
  ++views;
  EXPECT_EQ(w.text.size(), 99u);
  EXPECT_EQ(w.cursor_column, 99);
  EXPECT_EQ(line.bytes(), 65'536u);
  // A few passes over one window's worth per View; measuring the whole line each time would be ~32k a View.
  EXPECT_LE(line.measured(), static_cast<size_t>(views) * 3 * kColumns) << views << " views";
  // The same from the middle of the line: moving there and typing measures a window, not the line.
  const size_t before = line.measured();
  for (int i = 0; i < kKeys / 2; ++i) line.Left();
  ASSERT_TRUE(line.Insert(L'x'));
  (void)line.View(kColumns);
  EXPECT_LE(line.measured() - before, static_cast<size_t>(3 * kColumns));
}

}  // namespace
}  // namespace outpost::chat_cli
