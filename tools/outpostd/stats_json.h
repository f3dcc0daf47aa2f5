// Copyright 2026 The Outpost Authors.
//
// DATA_DIR/stats.json: the server's counters as one JSON object, rewritten atomically by the running
// server and read back by `outpostd stats`. Grammar (a subset of JSON, which any JSON reader accepts):
//   file   = "{" [ member { "," member } ] "}"
//   member = string ":" ( string | number | object )
//   object = "{" [ string ":" ( string | number ) { "," string ":" ( string | number ) } ] "}"
// (objects nest one level only). Keys: "state" ("running" | "stopped"), "time" (UTC, ISO 8601), "pid",
// "uptime_s", "endpoint", "media_url" (the upload endpoint announced to devices; "" without --http), then
// one number per ServerStats field, named as in outpost/server.h, the transport's budgets, and with --http
// only, "media": an object with one number per MediaServerStats field (outpost/media_server.h).
#ifndef OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_
#define OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "outpost/media_server.h"
#include "outpost/server.h"

namespace outpostd {

using outpost::cli::JsonQuote;

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

struct JsonMember {
  std::string key;
  std::string value;  // unescaped when is_string, the number's text otherwise; empty for an object
  bool is_string = false;
  std::vector<JsonMember> members;  // an object's members (then is_object), in file order
  bool is_object = false;
};

// The members of a stats.json object in file order. False (with `*error`) for anything outside the grammar
// above.
bool ParseFlatJson(std::string_view text, std::vector<JsonMember>* members, std::string* error);

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_STATS_JSON_H_
