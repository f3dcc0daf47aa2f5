// Copyright 2026 The Outpost Authors.
#include "stats_json.h"

#include "log.h"

namespace outpostd {
namespace {

// Every ServerStats field, in the header's order: the one list the writer walks. (clang-format 14 does not
// settle on one layout for an X-macro list, so it is left as written.)
// clang-format off
#define OUTPOSTD_SERVER_STATS_FIELDS(X) \
  X(connections)                        \
  X(devices_online)                     \
  X(users_online)                       \
  X(connections_total)                  \
  X(connections_refused)                \
  X(forbidden)                          \
  X(busy)                               \
  X(ops_applied)                        \
  X(duplicates)                         \
  X(gaps)                               \
  X(conflicts)                          \
  X(rejected)                           \
  X(skips)                              \
  X(pushes)                             \
  X(pulls)                              \
  X(bad_frames)                         \
  X(auth_failures)                      \
  X(upgrades_required)                  \
  X(hello_timeouts)                     \
  X(commits)                            \
  X(commit_errors)                      \
  X(bytes_in)                           \
  X(bytes_out)
// Every MediaServerStats field, in the header's order.
#define OUTPOSTD_MEDIA_STATS_FIELDS(X) \
  X(uploads_created)                   \
  X(uploads_completed)                 \
  X(upload_bytes_received)             \
  X(chunks)                            \
  X(checksum_mismatches)               \
  X(downloads)                         \
  X(download_bytes_sent)               \
  X(refused_auth)                      \
  X(not_found)                         \
  X(rejected_other)                    \
  X(server_errors)                     \
  X(connections_refused)
// clang-format on

}  // namespace

std::string StatsToJson(const StatsSnapshot& stats) {
  nlohmann::ordered_json out;
  out["state"] = stats.state;
  out["time"] = UtcNow();
  out["pid"] = stats.pid;
  out["uptime_s"] = stats.uptime_s;
  out["endpoint"] = stats.endpoint;
  out["media_url"] = stats.media_url;
#define OUTPOSTD_FIELD(name) out[#name] = stats.server.name;
  OUTPOSTD_SERVER_STATS_FIELDS(OUTPOSTD_FIELD)
#undef OUTPOSTD_FIELD
  // The transport's budgets (docs/protocol.md, Limits): what it holds for slow peers and from busy ones.
  out["transport_queued_bytes"] = stats.transport.queued_bytes;
  out["transport_held_bytes"] = stats.transport.held_bytes;
  out["transport_inbound_bytes"] = stats.transport.inbound_bytes;
  out["connections_paused"] = stats.transport.connections_paused;
  out["connections_dropped_slow"] = stats.transport.connections_dropped_slow;
  if (stats.has_media) {
    // The media server's own counters (--http), apart: some names (connections_refused) are the sync
    // server's too.
    nlohmann::ordered_json media;
#define OUTPOSTD_MEDIA_FIELD(name) media[#name] = stats.media.name;
    OUTPOSTD_MEDIA_STATS_FIELDS(OUTPOSTD_MEDIA_FIELD)
#undef OUTPOSTD_MEDIA_FIELD
    out["media"] = std::move(media);
  }
  return DumpJson(out);
}

std::string DumpJson(const nlohmann::ordered_json& doc) {
  // Invalid UTF-8 (a peer's bytes in a string) becomes U+FFFD: the file is always valid JSON.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace outpostd
