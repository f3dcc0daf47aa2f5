// Copyright 2026 The Outpost Authors.
//
// outpostd's log: one line per event on stderr, "2026-05-01T12:00:00.123Z INFO  message", written whole
// (one write per line) so lines from different threads never interleave.
//
// Thread safety: every function may be called from any thread.
#ifndef OUTPOST_TOOLS_OUTPOSTD_LOG_H_
#define OUTPOST_TOOLS_OUTPOSTD_LOG_H_

#include <fmt/core.h>

#include <string>
#include <string_view>
#include <utility>

namespace outpostd {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

// Lines below `level` are dropped. Default: kInfo.
void SetLogLevel(LogLevel level);
// "debug", "info", "warn", "error"; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view message);
// The current time as "2026-05-01T12:00:00.123Z" (UTC): log lines and stats.json.
std::string UtcNow();

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_LOG_H_
