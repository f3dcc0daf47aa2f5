// Copyright 2026 The Outpost Authors.
//
// outpost-inspect: reads a device store or a server store, read-only (StorageOptions::read_only), and
// prints what it holds. Each section is built once as JSON (nlohmann::ordered_json, keys in column order)
// and printed either as JSON or, from that same JSON, as aligned text (render.cc). docs/tools.md has the
// command line and the fields.
#ifndef OUTPOST_TOOLS_OUTPOST_INSPECT_INSPECT_H_
#define OUTPOST_TOOLS_OUTPOST_INSPECT_INSPECT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "outpost/result.h"

namespace outpost::inspect {

using Json = nlohmann::ordered_json;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct DeviceQuery {
  std::string store;    // storage URI
  std::string section;  // summary, meta, streams, view, outbox, failed, watermarks
  std::string stream;   // view: required
  uint64_t limit = 50;  // view: ops per page
  uint64_t offset = 0;  // view: newest ops skipped (the page)
};
// The section as JSON. InvalidArgument for a bad URI; IOError/NotFound/FailedPrecondition/Corruption (with
// what was expected) for a store that cannot be read as a device store.
Result<Json> InspectDevice(const DeviceQuery& query);

struct ServerQuery {
  std::string store;     // storage URI; empty: lmdb:DATA_DIR/server
  std::string data_dir;  // outpostd's --data: the users registry (DATA_DIR/auth) and DATA_DIR/stats.json
  std::string section;   // summary, streams, members, devices, counters, stats
};
Result<Json> InspectServer(const ServerQuery& query);

// Text of a store's string for a terminal: valid UTF-8 that is not a control character passes; control
// characters (C0, DEL, C1), backslashes and bytes that are not valid UTF-8 are written as \xNN (a backslash
// as \\). `chars_max`: output longer than that many characters is cut there and ends with "…" (0: no
// limit).
std::string Printable(std::string_view text, size_t chars_max = 0);
// Milliseconds since the epoch as "YYYY-MM-DD HH:MM:SS.mmm" in UTC; "-" for 0.
std::string FormatTimeMs(int64_t ms);
// `value` as aligned text: an array of objects as a table (one column per key of its first object), an
// object as "key  value" lines (nested objects and arrays of objects under their key). Keys ending in
// "_at_ms" or "_time_ms" are shown as times (FormatTimeMs).
std::string RenderText(const Json& value);
// `value` as JSON text: strings that are not valid UTF-8 have each bad byte replaced by U+FFFD.
std::string RenderJson(const Json& value);

}  // namespace outpost::inspect

#endif  // OUTPOST_TOOLS_OUTPOST_INSPECT_INSPECT_H_
