// Copyright 2026 The Outpost Authors.
#include "admin_pages.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "outpost/version.h"
#include "status_page_assets.h"

namespace outpostd {
namespace {

using outpost::HttpPage;
using outpost::HttpPageRequest;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr size_t kHistorySamples = 600;      // ten minutes at one a second
constexpr size_t kErrorWindowSamples = 300;  // "recent" errors: the last five minutes
constexpr size_t kStreamsShown = 20;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- Prometheus text -------------------------------------------------------------------------------------

class Families {
 public:
  void Counter(std::string name, std::string help, double value, ClientMetric::Label label = {}) {
    ClientMetric& m = Add(std::move(name), std::move(help), MetricType::Counter, std::move(label));
    m.counter.value = value;
  }
  void Gauge(std::string name, std::string help, double value, ClientMetric::Label label = {}) {
    ClientMetric& m = Add(std::move(name), std::move(help), MetricType::Gauge, std::move(label));
    m.gauge.value = value;
  }
  // `h`'s buckets made cumulative, as Prometheus' `le` buckets are; the last is +Inf.
  void Histogram(std::string name, std::string help, const outpost::Histogram& h) {
    ClientMetric& m = Add(std::move(name), std::move(help), MetricType::Histogram, {});
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const double bound =
          i < h.upper_bounds.size() ? h.upper_bounds[i] : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
  }
  std::string Text() const { return prometheus::TextSerializer().Serialize(families_); }

 private:
  // Samples of one name go into one family (one HELP and TYPE line), whatever their labels.
  ClientMetric& Add(std::string name, std::string help, MetricType type, ClientMetric::Label label) {
    if (families_.empty() || families_.back().name != name) {
      families_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    }
    ClientMetric& m = families_.back().metric.emplace_back();
    if (!label.name.empty()) m.label.push_back(std::move(label));
    return m;
  }
  std::vector<MetricFamily> families_;
};

// --- access ------------------------------------------------------------------------------------------------

bool IsLoopbackIp(std::string_view ip) {
  return ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.");
}

// The host part of a Host header ("localhost:8080", "[::1]:8080", "127.0.0.1").
std::string_view HostName(std::string_view host) {
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
  }
  const size_t colon = host.find(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool IsLoopbackName(std::string_view name) {
  return name == "localhost" || name == "::1" ||
         (name.starts_with("127.") && name.find_first_not_of("0123456789.") == std::string_view::npos);
}

// Compares digests of the two in constant time, so that neither the token's bytes nor its length show in
// how long a refusal takes.
bool SameSecret(std::string_view given, const std::string& token) {
  unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
  crypto_generichash(a, sizeof a, reinterpret_cast<const unsigned char*>(given.data()), given.size(), nullptr,
                     0);
  crypto_generichash(b, sizeof b, reinterpret_cast<const unsigned char*>(token.data()), token.size(), nullptr,
                     0);
  return sodium_memcmp(a, b, sizeof a) == 0;
}

// The token an Authorization header carries: Bearer TOKEN, or Basic base64(USER:TOKEN). Empty when none.
std::string GivenToken(std::string_view header) {
  if (header.starts_with("Bearer ")) return std::string(header.substr(7));
  if (!header.starts_with("Basic ")) return "";
  const std::string_view b64 = header.substr(6);
  std::string plain(b64.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(plain.data()), plain.size(), b64.data(), b64.size(),
                        nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return "";
  }
  plain.resize(len);
  const size_t colon = plain.find(':');
  return colon == std::string::npos ? "" : plain.substr(colon + 1);
}

HttpPage Text(int status, std::string body) {
  HttpPage page;
  page.status = status;
  page.body = std::move(body) + "\n";
  return page;
}

// The headers every page of ours carries: no framing, no referrer, scripts and styles from here only.
void Harden(HttpPage* page) {
  page->headers.emplace_back("Content-Security-Policy",
                             "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                             "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  page->headers.emplace_back("X-Frame-Options", "DENY");
  page->headers.emplace_back("Referrer-Policy", "no-referrer");
}

nlohmann::json Counters(const StatsSnapshot& s) {
  const outpost::ServerStats& v = s.server;
  return {{"connections", v.connections},
          {"devices_online", v.devices_online},
          {"users_online", v.users_online},
          {"connections_total", v.connections_total},
          {"ops_applied", v.ops_applied},
          {"duplicates", v.duplicates},
          {"pushes", v.pushes},
          {"pulls", v.pulls},
          {"commits", v.commits},
          {"bytes_in", v.bytes_in},
          {"bytes_out", v.bytes_out}};
}

// `now` less `before` (the observations between the two), when both have the same buckets.
outpost::Histogram Since(const outpost::Histogram& now, const outpost::Histogram& before) {
  if (now.upper_bounds != before.upper_bounds || now.counts.size() != before.counts.size()) return now;
  outpost::Histogram d = now;
  for (size_t i = 0; i < d.counts.size(); ++i) d.counts[i] -= std::min(d.counts[i], before.counts[i]);
  d.count -= std::min(d.count, before.count);
  d.sum -= before.sum;
  return d;
}

nlohmann::json Quantiles(const outpost::Histogram& h) {
  return {{"count", h.count}, {"p50", h.Quantile(0.5)}, {"p99", h.Quantile(0.99)}};
}

// Errors by kind: the counters that mean something was refused or failed.
nlohmann::json Errors(const StatsSnapshot& s) {
  const outpost::ServerStats& v = s.server;
  return {{"auth_failures", v.auth_failures},
          {"upgrades_required", v.upgrades_required},
          {"bad_frames", v.bad_frames},
          {"commit_errors", v.commit_errors},
          {"rejected", v.rejected},
          {"forbidden", v.forbidden},
          {"busy", v.busy},
          {"conflicts", v.conflicts},
          {"gaps", v.gaps},
          {"hello_timeouts", v.hello_timeouts},
          {"connections_refused", v.connections_refused},
          {"slow_devices_dropped", s.transport.connections_dropped_slow}};
}

}  // namespace

AdminPages::AdminPages(AdminPagesOptions options, std::function<StatsSnapshot()> snapshot,
                       std::function<std::vector<outpost::StreamActivity>(size_t)> streams)
    : options_(std::move(options)), snapshot_(std::move(snapshot)), streams_(std::move(streams)) {
  if (sodium_init() < 0) std::abort();  // as outpost::auth does: no safe way on without it
}

void AdminPages::Record(const StatsSnapshot& now) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.push_back({NowMs(), now});
  while (history_.size() > kHistorySamples) history_.pop_front();
}

HttpPage AdminPages::Refuse(const HttpPageRequest& request) const {
  if (!options_.admin_token.empty()) {
    if (SameSecret(GivenToken(request.authorization), options_.admin_token)) return HttpPage{0};
    HttpPage page = Text(401,
                         "the admin token is required: Authorization: Bearer TOKEN, or HTTP Basic with the "
                         "token as the password (outpostd --admin-token-file)");
    page.headers.emplace_back("WWW-Authenticate", "Basic realm=\"outpostd\", charset=\"UTF-8\"");
    return page;
  }
  if (IsLoopbackIp(request.peer_ip) && IsLoopbackName(HostName(request.host))) return HttpPage{0};
  return Text(
      403,
      "outpostd's status pages answer loopback requests only (to localhost, 127.0.0.1 or [::1]); give "
      "outpostd --admin-token-file FILE to serve them to others who know the token");
}

HttpPage AdminPages::Serve(const HttpPageRequest& request) {
  const std::string& path = request.path;
  const bool known = path == "/" || path == "/metrics" || path == "/status.json" || path == "/status.js" ||
                     path == "/status.css";
  if (!known) return Text(404, "no such resource (the status page is /, metrics are at /metrics)");
  if (HttpPage refused = Refuse(request); refused.status != 0) return refused;
  HttpPage page;
  if (path == "/metrics") {
    page.content_type = "text/plain; version=0.0.4; charset=utf-8";
    page.body = MetricsText(snapshot_());
  } else if (path == "/status.json") {
    page.content_type = "application/json";
    page.body = StatusJson(snapshot_());
  } else if (path == "/") {
    page.content_type = "text/html; charset=utf-8";
    page.body = std::string(kStatusPageHtml);
  } else if (path == "/status.js") {
    page.content_type = "text/javascript; charset=utf-8";
    page.body = std::string(kStatusPageJs);
  } else {
    page.content_type = "text/css; charset=utf-8";
    page.body = std::string(kStatusPageCss);
  }
  Harden(&page);
  return page;
}

std::string AdminPages::StatusJson(const StatsSnapshot& now) {
  nlohmann::json out;
  out["version"] = outpost::Version();
  out["now_ms"] = NowMs();
  out["uptime_s"] = now.uptime_s;
  out["state"] = now.state;
  out["store"] = options_.store;
  out["endpoint"] = now.endpoint;
  out["media_url"] = now.media_url;
  out["current"] = Counters(now);
  out["queues"] = {{"queued_bytes", now.transport.queued_bytes},
                   {"queued_frames", now.transport.queued_frames},
                   {"held_bytes", now.transport.held_bytes},
                   {"connections_paused", now.transport.connections_paused},
                   {"inbound_bytes", now.transport.inbound_bytes}};
  // The charts' series as columns (one array per counter, one entry per second), and errors as the change
  // over the last five minutes next to the total: a poll a second stays a few tens of kilobytes.
  nlohmann::json history = nlohmann::json::object();
  nlohmann::json errors = Errors(now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    history["t_ms"] = nlohmann::json::array();
    for (const Sample& s : history_) {
      history["t_ms"].push_back(s.t_ms);
      const nlohmann::json counters = Counters(s.snap);  // named: items() does not keep a temporary alive
      for (const auto& [key, value] : counters.items()) history[key].push_back(value);
    }
    const size_t back = std::min<size_t>(history_.size(), kErrorWindowSamples);
    const nlohmann::json before = back == 0 ? errors : Errors(history_[history_.size() - back].snap);
    for (auto& [kind, total] : errors.items()) {
      const uint64_t was = before.value(kind, uint64_t{0});
      const uint64_t is = total.get<uint64_t>();
      total = {{"total", is}, {"recent", is > was ? is - was : 0}};
    }
  }
  out["errors"] = std::move(errors);
  // Latencies of the last ten minutes (the history's span): the histograms now less the oldest sample's.
  {
    std::lock_guard<std::mutex> lock(mu_);
    const outpost::ServerStats& oldest =
        history_.empty() ? outpost::ServerStats{} : history_.front().snap.server;
    out["commit_seconds"] = Quantiles(Since(now.server.commit_seconds, oldest.commit_seconds));
    out["notify_fanout_seconds"] =
        Quantiles(Since(now.server.notify_fanout_seconds, oldest.notify_fanout_seconds));
    out["group_events"] = Quantiles(Since(now.server.group_events, oldest.group_events));
  }
  nlohmann::json streams = nlohmann::json::array();
  for (const outpost::StreamActivity& a : streams_(kStreamsShown)) {
    streams.push_back({{"stream", a.stream},
                       {"ops_applied", a.ops_applied},
                       {"last_seq", a.last_seq},
                       {"last_applied_ms", a.last_applied_ms}});
  }
  out["streams"] = std::move(streams);
  out["history"] = std::move(history);
  // Stream names are the app's bytes: invalid UTF-8 becomes U+FFFD rather than breaking the document.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AdminPages::MetricsText(const StatsSnapshot& snap) {
  const outpost::ServerStats& s = snap.server;
  Families f;
  f.Gauge("outpost_build_info", "The Outpost version serving (always 1).", 1,
          {"version", outpost::Version()});
  f.Gauge("outpost_server_uptime_seconds", "Seconds since this outpostd started.",
          static_cast<double>(snap.uptime_s));
  f.Gauge("outpost_server_connections", "Device connections open now (authenticated or not).",
          static_cast<double>(s.connections));
  f.Counter("outpost_server_connections_opened_total", "Device connections accepted.",
            static_cast<double>(s.connections_total));
  f.Counter("outpost_server_connections_refused_total",
            "Connections refused: connections_max or connections_per_user_max reached.",
            static_cast<double>(s.connections_refused));
  f.Counter("outpost_server_hello_timeouts_total", "Connections closed for sending no Hello in time.",
            static_cast<double>(s.hello_timeouts));
  f.Counter("outpost_server_auth_failures_total", "Hellos refused for bad credentials.",
            static_cast<double>(s.auth_failures));
  f.Counter("outpost_server_upgrades_required_total",
            "Hellos refused because the device's protocol version is outside the served range.",
            static_cast<double>(s.upgrades_required));
  f.Counter("outpost_server_bad_frames_total", "Frames refused as malformed or out of protocol.",
            static_cast<double>(s.bad_frames));
  const std::pair<const char*, uint64_t> verdicts[] = {
      {"applied", s.ops_applied}, {"duplicate", s.duplicates}, {"gap", s.gaps},
      {"conflict", s.conflicts},  {"rejected", s.rejected},    {"skip", s.skips}};
  for (const auto& [verdict, n] : verdicts) {
    f.Counter("outpost_server_op_verdicts_total", "Pushed ops by the server's verdict.",
              static_cast<double>(n), {"verdict", verdict});
  }
  f.Counter("outpost_server_forbidden_total", "Ops and pulls refused by membership or authorization.",
            static_cast<double>(s.forbidden));
  f.Counter("outpost_server_busy_total", "Frames answered Busy (the device retries later).",
            static_cast<double>(s.busy));
  f.Gauge("outpost_server_devices_online", "Authenticated device connections now.",
          static_cast<double>(s.devices_online));
  f.Gauge("outpost_server_users_online", "Distinct users with an authenticated connection now.",
          static_cast<double>(s.users_online));
  f.Counter("outpost_server_pushes_total", "Push frames handled.", static_cast<double>(s.pushes));
  f.Counter("outpost_server_pulls_total", "Pull requests served.", static_cast<double>(s.pulls));
  f.Counter("outpost_server_received_bytes_total", "Frame bytes received from devices and handled.",
            static_cast<double>(s.bytes_in));
  f.Counter("outpost_server_sent_bytes_total", "Frame bytes handed to the transport for devices.",
            static_cast<double>(s.bytes_out));
  f.Counter("outpost_server_commits_total", "Write groups made durable.", static_cast<double>(s.commits));
  f.Counter("outpost_server_commit_errors_total", "Write groups whose commit failed (devices resend).",
            static_cast<double>(s.commit_errors));
  f.Histogram("outpost_server_commit_duration_seconds", "Begin to commit of each write group with frames.",
              s.commit_seconds);
  f.Histogram("outpost_server_group_events", "Events (opens, closes, frames) handled per write group.",
              s.group_events);
  f.Histogram("outpost_server_notify_fanout_duration_seconds",
              "Building and publishing the notifies of a committed group.", s.notify_fanout_seconds);

  const outpost::ListenerStats& t = snap.transport;
  f.Gauge("outpost_transport_queued_bytes", "Bytes queued for devices and not yet taken.",
          static_cast<double>(t.queued_bytes));
  f.Gauge("outpost_transport_queued_frames", "Frames queued for devices and not yet taken.",
          static_cast<double>(t.queued_frames));
  f.Gauge("outpost_transport_held_bytes", "Bytes received from paused connections, not yet handled.",
          static_cast<double>(t.held_bytes));
  f.Gauge("outpost_transport_paused_connections", "Connections paused for not draining their queue.",
          static_cast<double>(t.connections_paused));
  f.Gauge("outpost_transport_inbound_bytes", "Bytes received and not yet taken by the server.",
          static_cast<double>(t.inbound_bytes));
  f.Counter("outpost_transport_slow_connections_dropped_total", "Connections dropped for not draining.",
            static_cast<double>(t.connections_dropped_slow));

  if (snap.has_media) {
    const outpost::MediaServerStats& m = snap.media;
    f.Counter("outpost_media_uploads_created_total", "Uploads begun.",
              static_cast<double>(m.uploads_created));
    f.Counter("outpost_media_uploads_completed_total", "Uploads whose last byte was stored.",
              static_cast<double>(m.uploads_completed));
    f.Counter("outpost_media_upload_received_bytes_total", "Upload bytes stored.",
              static_cast<double>(m.upload_bytes_received));
    f.Counter("outpost_media_upload_chunks_total", "Upload requests that stored at least a byte.",
              static_cast<double>(m.chunks));
    f.Counter("outpost_media_checksum_mismatches_total", "Upload chunks refused for a checksum mismatch.",
              static_cast<double>(m.checksum_mismatches));
    f.Counter("outpost_media_downloads_total", "Downloads answered 200 or 206.",
              static_cast<double>(m.downloads));
    f.Counter("outpost_media_download_sent_bytes_total", "Download bytes sent.",
              static_cast<double>(m.download_bytes_sent));
    const std::pair<const char*, uint64_t> refusals[] = {
        {"401", m.refused_auth}, {"404", m.not_found}, {"4xx", m.rejected_other}, {"5xx", m.server_errors}};
    for (const auto& [code, n] : refusals) {
      f.Counter("outpost_media_error_responses_total", "Media responses that were errors, by status.",
                static_cast<double>(n), {"code", code});
    }
    f.Counter("outpost_media_connections_refused_total", "HTTP connections over the limits (503).",
              static_cast<double>(m.connections_refused));
  }
  return f.Text();
}

}  // namespace outpostd
