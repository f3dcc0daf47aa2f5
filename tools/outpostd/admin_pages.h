// Copyright 2026 The Outpost Authors.
//
// The operator's pages on outpostd's --http listener (next to the tus routes of the media server):
//   GET /metrics       the server's counters, gauges and histograms in the Prometheus text format
//                      (metrics_text.h names them);
//   GET /              a self-contained live status page (no external script, font or CDN): it polls
//   GET /status.js     /status.json once a second and draws the last ten minutes;
//   GET /status.css
//   GET /status.json   what the page shows: the numbers now, one sample per second for ten minutes, errors
//                      by kind, the most active streams.
// Nothing here shows a token or an op's payload. Stream names are shown (they are the app's identifiers);
// the page puts them in the DOM as text, never as markup.
//
// Who may see them:
//   - with an admin token (outpostd --admin-token-file FILE): a request that carries it, as
//     `Authorization: Bearer TOKEN` (Prometheus' `authorization` / `bearer_token_file`) or as HTTP Basic with
//     any user name and the token as the password (a browser asks for it); anyone else gets 401;
//   - without one: only a loopback peer that also names a loopback host (localhost, 127.x.y.z, [::1]) in its
//     Host header; the Host check keeps a web page on another origin from reaching the pages through DNS
//     rebinding. Anyone else gets 403 saying how to open them up. Behind a reverse proxy on the same host
//     every request comes from loopback: give an admin token there.
//
// Thread safety: Serve is called from the media server's worker threads, Record from the main thread;
// a mutex guards the history.
#ifndef OUTPOST_TOOLS_OUTPOSTD_ADMIN_PAGES_H_
#define OUTPOST_TOOLS_OUTPOSTD_ADMIN_PAGES_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "outpost/media_server.h"
#include "outpost/server.h"
#include "stats_json.h"

namespace outpostd {

inline constexpr size_t kAdminTokenBytesMin = 16;

struct AdminPagesOptions {
  std::string admin_token;  // empty: loopback only
  std::string store;        // the store URI, password redacted
};

class AdminPages {
 public:
  // `snapshot` takes the server's numbers now, `streams(n)` its n most active streams (any thread; Serve
  // calls them).
  AdminPages(AdminPagesOptions options, std::function<StatsSnapshot()> snapshot,
             std::function<std::vector<outpost::StreamActivity>(size_t)> streams);

  // One sample for the charts; the main thread calls it once a second with what it wrote to stats.json.
  void Record(const StatsSnapshot& now);
  // The media server's pages hook.
  outpost::HttpPage Serve(const outpost::HttpPageRequest& request);

  // The `outpost_...` metrics of `snap` in the Prometheus text format (version 0.0.4).
  static std::string MetricsText(const StatsSnapshot& snap);

 private:
  struct Sample {
    int64_t t_ms = 0;
    StatsSnapshot snap;
  };
  // Nullopt-like: status 0 when the request may go on.
  outpost::HttpPage Refuse(const outpost::HttpPageRequest& request) const;
  std::string StatusJson(const StatsSnapshot& now);

  const AdminPagesOptions options_;
  const std::function<StatsSnapshot()> snapshot_;
  const std::function<std::vector<outpost::StreamActivity>(size_t)> streams_;
  std::mutex mu_;
  std::deque<Sample> history_;  // oldest first, at most kHistorySamples
};

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_ADMIN_PAGES_H_
