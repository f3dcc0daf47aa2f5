// Copyright 2026 The Outpost Authors.
//
// DATA_DIR/stats.json: the server's counters as one JSON object, rewritten atomically by the running
// server and read back by `outpostd stats` (and outpost-inspect). Keys: "state" ("running" | "stopped"),
// "time" (UTC, ISO 8601), "pid", "uptime_s", "endpoint", "media_url" (the upload endpoint announced to
// devices; "" without --http), then one number per ServerStats counter and gauge, named as in
// outpost/server.h (histograms are on /metrics, not here), the transport's budgets, and with --http only,
// "media": an object with one number per MediaServerStats field (outpost/media_server.h). Written by
// nlohmann-json; a string that is not valid UTF-8 has its bad bytes replaced by U+FFFD.
#ifndef OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_
#define OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/media_server.h"
#include "outpost/server.h"

namespace outpostd {

inline constexpr std::string_view kStatsFileName = "stats.json";

struct StatsSnapshot {
  outpost::ServerStats server;
  outpost::ListenerStats transport;
  std::string state = "running";
  int64_t pid = 0;
  int64_t uptime_s = 0;
  std::string endpoint;
  std::string media_url;
  bool has_media = false;  // --http: write "media"
  outpost::MediaServerStats media;
};

std::string StatsToJson(const StatsSnapshot& stats);
// `doc` as the tools write JSON: indented, invalid UTF-8 replaced by U+FFFD, a newline at the end.
std::string DumpJson(const nlohmann::ordered_json& doc);

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_
