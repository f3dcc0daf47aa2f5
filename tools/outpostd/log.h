// Copyright 2026 The Outpost Authors.
//
// outpostd's log: one line per event on stderr, "2026-05-01T12:00:00.123Z INFO  message", written whole
// (one write per line) so lines from different threads never interleave.
//
// Thread safety: every function may be called from any thread.
#ifndef OUTPOST_TOOLS_OUTPOSTD_LOG_H_
#define OUTPOST_TOOLS_OUTPOSTD_LOG_H_

#include <fmt/core.h>

#include <cstdint>
#include <mutex>
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

// At most `per_second` log lines a second for one kind of event, so that a peer who repeats it (a flood of
// bad Hellos) cannot flood the log; what is over is counted and told with the next line that goes out.
class LogBudget {
 public:
  explicit LogBudget(int per_second) : per_second_(per_second) {}
  // Whether a line may go out now; when it may, `*suppressed` is how many were held back since the last one.
  bool Take(uint64_t* suppressed);

 private:
  std::mutex mu_;
  const int per_second_;
  int64_t second_ = 0;
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_LOG_H_
