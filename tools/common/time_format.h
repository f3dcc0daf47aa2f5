// Copyright 2026 The Outpost Authors.
//
// Times as the tools print them, formatted by fmt's chrono support (fmt/chrono.h).
#ifndef OUTPOST_TOOLS_COMMON_TIME_FORMAT_H_
#define OUTPOST_TOOLS_COMMON_TIME_FORMAT_H_

#include <cstdint>
#include <string>

namespace outpost::cli {

// "2026-05-01T12:00:00.123Z": `ms` since the Unix epoch, in UTC with milliseconds (ISO 8601). Times before
// the epoch are clamped to it.
std::string UtcIso(int64_t ms);
// "12:00": the local time of day of `ms`.
std::string LocalClock(int64_t ms);

}  // namespace outpost::cli

#endif  // OUTPOST_TOOLS_COMMON_TIME_FORMAT_H_
