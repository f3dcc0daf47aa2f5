// Copyright 2026 The Outpost Authors.
//
// The TUI's line editor (tools/outpost-chat/tui_input.h): what a paste costs per character.
//   TuiPaste/<chars>   `chars` characters inserted one by one at the end, with a View of 100 columns every
//                      64 of them (the screen draws once per batch of keys); items/s is characters per
//                      second. Linear: the time per character does not grow with the line (the screen before
//                      it re-encoded the whole line on every key, about 3 s for 14k characters).
//   TuiEditMiddle      a 14k-character line, the cursor in its middle: insert, move left, delete, view.
#include <benchmark/benchmark.h>

#include <clocale>

#include "outpost-chat/tui_input.h"

namespace outpost::bench {
namespace {

using chat_cli::InputLine;

void BM_TuiPaste(benchmark::State& state) {
  std::setlocale(LC_ALL, "C.UTF-8");
  const int64_t chars = state.range(0);
  for (auto _ : state) {
    InputLine line(1 << 20);
    for (int64_t i = 0; i < chars; ++i) {
      line.Insert(static_cast<wchar_t>(L'a' + i % 26));
      if (i % 64 == 0) benchmark::DoNotOptimize(line.View(100));
    }
    benchmark::DoNotOptimize(line.View(100));
  }
  state.SetItemsProcessed(state.iterations() * chars);
}
BENCHMARK(BM_TuiPaste)->Name("TuiPaste")->Arg(1'000)->Arg(14'000)->Arg(100'000);

void BM_TuiEditMiddle(benchmark::State& state) {
  std::setlocale(LC_ALL, "C.UTF-8");
  InputLine line(1 << 20);
  for (int i = 0; i < 14'000; ++i) line.Insert(static_cast<wchar_t>(L'a' + i % 26));
  for (int i = 0; i < 7'000; ++i) line.Left();
  for (auto _ : state) {
    line.Insert(L'x');
    line.Left();
    line.Delete();
    benchmark::DoNotOptimize(line.View(100));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TuiEditMiddle)->Name("TuiEditMiddle");

}  // namespace
}  // namespace outpost::bench
