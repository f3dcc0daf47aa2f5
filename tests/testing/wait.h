// Copyright 2026 The Outpost Authors.
//
// Bounded waits: a test waits for a condition, never for a length of time. WaitFor polls on the real clock
// (things that move on other threads or in other processes); StepUntil drives the work itself (a manual
// clock, where nothing moves unless the test steps it) and counts rounds instead of milliseconds.
#ifndef OUTPOST_TESTS_TESTING_WAIT_H_
#define OUTPOST_TESTS_TESTING_WAIT_H_

#include <cstdint>
#include <functional>

namespace outpost::harness {

// Generous: the suites also run under sanitizers on a loaded machine. A wait ends as soon as its condition
// holds, so the bound costs nothing when things work.
inline constexpr int64_t kWaitMs = 30'000;

// Milliseconds on the monotonic clock.
int64_t SteadyNowMs();

// Evaluates `condition` every millisecond or few until it holds (true) or `timeout_ms` of real time passed
// (false, after one last evaluation).
bool WaitFor(const std::function<bool()>& condition, int64_t timeout_ms = kWaitMs);

// Evaluates `condition`, then runs `step` and evaluates it again, at most `rounds_max` steps: true as soon as
// it holds, false when the rounds ran out.
bool StepUntil(const std::function<bool()>& condition, const std::function<void()>& step, int rounds_max);

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_WAIT_H_
