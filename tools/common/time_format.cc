// Copyright 2026 The Outpost Authors.
#include "common/time_format.h"

#include <fmt/chrono.h>

#include <algorithm>
#include <chrono>

namespace outpost::cli {

std::string UtcIso(int64_t ms) {
  ms = std::max<int64_t>(ms, 0);
  const std::chrono::sys_seconds seconds{std::chrono::seconds{ms / 1000}};
  // fmt 9 prints a time point's seconds whole: the milliseconds are added by hand.
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, ms % 1000);
}

std::string LocalClock(int64_t ms) {
  return fmt::format("{:%H:%M}", fmt::localtime(static_cast<std::time_t>(std::max<int64_t>(ms, 0) / 1000)));
}

}  // namespace outpost::cli
