// Copyright 2026 The Outpost Authors.
#include "testing/wait.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace outpost::harness {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool WaitFor(const std::function<bool()>& condition, int64_t timeout_ms) {
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  std::chrono::microseconds pause(200);
  for (;;) {
    if (condition()) return true;
    if (SteadyNowMs() >= deadline) return condition();
    // Between two looks at the condition: short at first (most waits end within a few ms), then at most
    // 10 ms so that a long wait does not spin.
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
}

bool StepUntil(const std::function<bool()>& condition, const std::function<void()>& step, int rounds_max) {
  for (int i = 0; i < rounds_max; ++i) {
    if (condition()) return true;
    step();
  }
  return condition();
}

}  // namespace outpost::harness
