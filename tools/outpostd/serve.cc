// Copyright 2026 The Outpost Authors.
//
// `outpostd serve`: the server process. Order of things:
//   1. parse and check every flag, so a bad command line fails before anything is opened;
//   2. block SIGINT/SIGTERM (before any thread starts, so every thread inherits the mask and the signals
//      wait for sigtimedwait in the main thread), lock DATA_DIR (one server per data directory);
//   3. open the registry (a database store is opened first and shared by the registry, which finds the
//      users in it, and the server; else the users are in DATA_DIR/auth); with --http, open the blob store
//      and start the media server (before the sync server: with port 0 only then is the URL that the
//      Welcome announces known); listen, open the server (a key-value store by its URI), start it, write
//      stats.json and --endpoint-file;
//   4. main thread: wait for a signal, waking every second to write stats.json and log what changed;
//   5. on a signal: stop the media server (an upload cut there resumes from its offset), Server::Stop()
//      (handles what was already received, so durable batches get their acks), final stats.json, close the
//      listener and the stores, exit 0.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin_pages.h"
#include "command.h"
#include "curve_key.h"
#include "files.h"
#include "log.h"
#include "outpost/blob_store.h"
#include "outpost/media_server.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "outpost/token_registry.h"
#include "outpost/transport.h"
#include "revocations.h"
#include "stats_json.h"

namespace outpostd {
namespace {

using outpost::Status;
using Clock = std::chrono::steady_clock;

constexpr const char* kDescription =
    R"(Serves the Outpost server store over ZeroMQ, with stream membership on and devices authenticated by the
tokens of `outpostd add-user` / `add-device`. Stops on SIGINT or SIGTERM after answering what it received.)";

constexpr const char* kFooter =
    R"(Attachments (photos, files; docs/media.md): without --http the server takes none (ops with one are
refused). The same --http listener serves the operator's pages (docs/operations.md): GET /metrics
(Prometheus text format) and GET / (a live status page), to loopback only unless --admin-token-file.)";

constexpr uint64_t kUploadBytesMaxDefault = uint64_t{1} << 30;
constexpr uint64_t kUploadBytesMaxLimit = uint64_t{4} << 30;  // BlobStoreOptions::blob_bytes_max's default
constexpr int64_t kUploadExpiryDefaultMs = 24 * 3600'000;
constexpr size_t kMediaUrlBytesMax = 2048;  // devices ignore a longer one in the Welcome

// What --http turns on.
struct MediaConfig {
  bool enabled = false;
  std::string host;   // as given, without brackets
  uint16_t port = 0;  // 0: any
  std::string url;    // --media-url; empty: http://HOST:PORT/files/ once bound
  std::string blobs;  // blob store URI
  uint64_t upload_bytes_max = kUploadBytesMaxDefault;
  int64_t upload_expiry_ms = kUploadExpiryDefaultMs;
  std::string admin_token;  // --admin-token-file's secret; empty: the pages answer loopback only
};

struct ServeConfig {
  std::string data_dir;
  std::vector<std::string> listen;
  std::string store;
  std::string curve_secret_file;
  std::string endpoint_file;
  int64_t stats_interval_s = 60;
  outpost::ServerOptions server;
  MediaConfig media;
};

// "90s", "30m", "24h", "7d" or a bare number of seconds, into milliseconds; false for anything else, zero,
// or past a year.
bool ParseDuration(std::string_view text, int64_t* ms) {
  if (text.empty()) return false;
  int64_t unit_ms = 1000;
  switch (text.back()) {
    case 's':
      unit_ms = 1000;
      text.remove_suffix(1);
      break;
    case 'm':
      unit_ms = 60'000;
      text.remove_suffix(1);
      break;
    case 'h':
      unit_ms = 3600'000;
      text.remove_suffix(1);
      break;
    case 'd':
      unit_ms = 24 * 3600'000;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  if (text.empty() || text.size() > 12) return false;
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  constexpr int64_t kYearMs = int64_t{366} * 24 * 3600'000;
  if (n == 0 || n > kYearMs / unit_ms) return false;
  *ms = n * unit_ms;
  return true;
}

// "HOST:PORT" or "[V6]:PORT" into host (without brackets) and port; false when it is neither.
bool ParseHostPort(std::string_view text, std::string* host, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string_view h = text.substr(0, colon);
  const std::string_view p = text.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return false;  // an IPv6 address needs its brackets
  }
  for (char c : h) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '[' || c == ']') return false;
  }
  if (p.size() > 5) return false;
  uint32_t n = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n > 65535) return false;
  *host = std::string(h);
  *port = static_cast<uint16_t>(n);
  return true;
}

// An address that stands for every interface: no URL a device could use.
bool IsWildcardHost(std::string_view host) {
  return host == "0.0.0.0" || host == "::" || host == "*" || host == "0:0:0:0:0:0:0:0";
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

// The media flags; false (with `*error`) on a usage mistake.
bool ParseMediaConfig(const Flags& flags, const ServeConfig& config, MediaConfig* media, std::string* error) {
  if (!flags.Has("http")) {
    for (const char* name : {"media-url", "blobs", "upload-max-bytes", "upload-expiry", "admin-token-file"}) {
      if (flags.Has(name)) {
        *error =
            std::string("--") + name + " needs --http HOST:PORT (without it the server takes no attachments)";
        return false;
      }
    }
    return true;
  }
  media->enabled = true;
  if (!ParseHostPort(flags.Get("http"), &media->host, &media->port)) {
    *error = "--http must be HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080), not '" +
             flags.Get("http") + "'";
    return false;
  }
  media->url = flags.Get("media-url");
  if (flags.Has("media-url")) {
    const std::string& url = media->url;
    bool clean = url.size() <= kMediaUrlBytesMax;
    for (char c : url) clean = clean && static_cast<unsigned char>(c) > ' ' && c != 0x7f;
    const bool http = url.starts_with("http://") || url.starts_with("https://");
    if (!clean || !http || url.size() <= url.find("://") + 3) {
      *error = "--media-url must be an http:// or https:// URL of at most " +
               std::to_string(kMediaUrlBytesMax) + " characters without spaces, not '" + url + "'";
      return false;
    }
  } else if (IsWildcardHost(media->host)) {
    *error = "--http " + flags.Get("http") +
             " listens on every address, so there is no one URL to tell devices: give --media-url URL, the "
             "URL at which devices reach it (e.g. https://media.example.org/files/)";
    return false;
  }
  if (flags.Has("blobs")) {
    media->blobs = flags.Get("blobs");
  } else if (outpost::TokenRegistry::UsersMayLiveIn(config.store)) {
    *error =
        "with a database --store, give --blobs file:DIR: every instance must use the same blob store (a "
        "shared directory), since an upload may resume on, and a download be served by, any instance";
    return false;
  } else {
    media->blobs = "file:" + config.data_dir + "/blobs";
  }
  if (!flags.GetUint("upload-max-bytes", kUploadBytesMaxDefault, kUploadBytesMaxLimit,
                     &media->upload_bytes_max, error)) {
    return false;
  }
  if (media->upload_bytes_max == 0) {
    *error = "--upload-max-bytes must be at least 1";
    return false;
  }
  if (flags.Has("upload-expiry") && !ParseDuration(flags.Get("upload-expiry"), &media->upload_expiry_ms)) {
    *error = "--upload-expiry must be a duration like 90s, 30m, 24h or 7d (at most a year), not '" +
             flags.Get("upload-expiry") + "'";
    return false;
  }
  if (flags.Has("admin-token-file")) {
    const std::string file = flags.Get("admin-token-file");
    auto token = ReadFile(file, 4096);
    if (!token.ok()) {
      *error = "--admin-token-file: " + token.status().message();
      return false;
    }
    std::string& t = *token;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    bool printable = true;
    for (char c : t) printable = printable && static_cast<unsigned char>(c) > ' ' && c != 0x7f;
    if (t.size() < kAdminTokenBytesMin || !printable) {
      *error = "--admin-token-file: " + file + " must hold one token of at least " +
               std::to_string(kAdminTokenBytesMin) + " printable characters without spaces";
      return false;
    }
    media->admin_token = std::move(t);
  }
  return true;
}

// Fills `config` from the flags; false (with `*error`) on a usage mistake.
bool ParseConfig(const Flags& flags, ServeConfig* config, std::string* error) {
  if (!flags.positional().empty()) {
    *error = "unexpected argument '" + flags.positional().front() + "'";
    return false;
  }
  config->data_dir = flags.Get("data");
  if (config->data_dir.empty()) {
    *error = "--data DIR is required";
    return false;
  }
  while (config->data_dir.size() > 1 && config->data_dir.back() == '/') config->data_dir.pop_back();
  config->listen = flags.GetList("listen");
  if (config->listen.empty()) config->listen = {"tcp://127.0.0.1:7700"};
  for (const std::string& uri : config->listen) {
    if (uri.starts_with("inproc:")) {
      *error = "--listen: " + uri +
               " can be reached only from inside this process, so no device could ever connect: give "
               "tcp://HOST:PORT or ipc://PATH";
      return false;
    }
  }
  config->store = flags.Get("store", "lmdb:" + config->data_dir + "/server");
  config->curve_secret_file = flags.Get("curve-secret");
  config->endpoint_file = flags.Get("endpoint-file");
  LogLevel level = LogLevel::kInfo;
  if (flags.Has("log-level") && !ParseLogLevel(flags.Get("log-level"), &level)) {
    *error = "--log-level must be debug, info, warn or error, not '" + flags.Get("log-level") + "'";
    return false;
  }
  SetLogLevel(level);

  const outpost::ServerOptions defaults;
  uint64_t interval = 0, frame = 0, ops = 0, payload = 0, conns = 0, protocol_min = 0;
  if (!flags.GetUint("stats-interval", 60, 7 * 24 * 3600, &interval, error) ||
      !flags.GetUint("frame-bytes-max", defaults.frame_bytes_max, uint64_t{1} << 30, &frame, error) ||
      !flags.GetUint("ops-per-batch-max", defaults.ops_per_batch_max, 1'000'000, &ops, error) ||
      !flags.GetUint("payload-bytes-max", defaults.payload_bytes_max, uint64_t{1} << 30, &payload, error) ||
      !flags.GetUint("connections-max", defaults.connections_max, 10'000'000, &conns, error) ||
      !flags.GetUint("protocol-min", defaults.protocol_min, 1'000, &protocol_min, error)) {
    return false;
  }
  if (frame < 1024 || ops == 0 || conns == 0) {
    *error = "--frame-bytes-max must be at least 1024, --ops-per-batch-max and --connections-max at least 1";
    return false;
  }
  config->stats_interval_s = static_cast<int64_t>(interval);
  config->server.store = config->store;
  config->server.membership = true;
  config->server.frame_bytes_max = static_cast<uint32_t>(frame);
  config->server.ops_per_batch_max = static_cast<uint32_t>(ops);
  config->server.payload_bytes_max = static_cast<uint32_t>(payload);
  config->server.connections_max = static_cast<uint32_t>(conns);
  config->server.protocol_min = static_cast<uint32_t>(protocol_min);  // checked against the build's at open
  return ParseMediaConfig(flags, *config, &config->media, error);
}

// True when `uri` can only be reached from this host: ipc:// and inproc://, or tcp:// on a loopback
// address (127.0.0.0/8, ::1, localhost, the interface lo). Anything else (0.0.0.0, *, another address or
// interface, an unknown scheme) may be reached over a network.
bool IsLocalOnly(std::string_view uri) {
  if (uri.starts_with("ipc://") || uri.starts_with("inproc://")) return true;
  if (!uri.starts_with("tcp://")) return false;
  std::string_view host = uri.substr(6);
  const size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = host.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "lo" || host == "::1" || host.starts_with("127.");
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

// The server's numbers now, for stats.json and the admin pages (any thread). The media server's pages may ask
// before the sync server runs, and while it stops: `server` and `media` are set once each is up.
struct SnapshotSource {
  std::atomic<outpost::Server*> server{nullptr};
  std::atomic<const outpost::MediaServer*> media{nullptr};
  std::atomic<bool> stopped{false};
  Clock::time_point started = Clock::now();
  std::string endpoint;
  std::string media_url;

  std::vector<outpost::StreamActivity> Streams(size_t n) const {
    outpost::Server* s = server.load();
    return s != nullptr ? s->ActiveStreams(n) : std::vector<outpost::StreamActivity>{};
  }

  StatsSnapshot Take() const {
    StatsSnapshot snap;
    outpost::Server* s = server.load();
    if (s != nullptr) {
      snap.server = s->Stats();
      snap.transport = s->TransportStats();
      snap.endpoint = endpoint;
      snap.media_url = media_url;
    }
    snap.state = stopped.load() ? "stopped" : s != nullptr ? "running" : "starting";
    snap.pid = ::getpid();
    snap.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
    if (const outpost::MediaServer* m = media.load()) {
      snap.has_media = true;
      snap.media = m->Stats();
    }
    return snap;
  }
};

// Writes stats.json, records a sample for the status page and turns counter increases into log lines, once
// per tick of the main loop.
class StatsReporter {
 public:
  // `source` has the server; `admin`: nullptr without --http. Both must stay alive until the last Tick.
  StatsReporter(const ServeConfig& config, const SnapshotSource* source, AdminPages* admin)
      : path_(config.data_dir + "/" + std::string(kStatsFileName)),
        store_(outpost::RedactUri(config.store)),
        interval_s_(config.stats_interval_s),
        source_(source),
        admin_(admin),
        next_line_(Clock::now() + std::chrono::seconds(interval_s_)) {}

  void Tick() {
    const StatsSnapshot snap = source_->Take();
    const outpost::ServerStats& now = snap.server;
    LogIncreases(now);
    if (interval_s_ > 0 && Clock::now() >= next_line_) {
      next_line_ += std::chrono::seconds(interval_s_);
      Log(LogLevel::kInfo,
          "stats: connections={} ops_applied={} duplicates={} pulls={} rejected={} forbidden={} busy={} "
          "bad_frames={} auth_failures={} commits={} commit_errors={}",
          now.connections, now.ops_applied, now.duplicates, now.pulls, now.rejected, now.forbidden, now.busy,
          now.bad_frames, now.auth_failures, now.commits, now.commit_errors);
    }
    Write(snap);
    if (admin_ != nullptr) admin_->Record(snap);
    last_ = now;
  }

 private:
  void LogIncreases(const outpost::ServerStats& now) {
    if (now.commit_errors > last_.commit_errors) {
      Log(LogLevel::kError, "store {}: {} commit(s) failed (devices were told to resend)", store_,
          now.commit_errors - last_.commit_errors);
    }
    if (now.bad_frames > last_.bad_frames) {
      Log(LogLevel::kWarn, "{} bad frame(s) refused", now.bad_frames - last_.bad_frames);
    }
    if (now.connections_refused > last_.connections_refused) {
      Log(LogLevel::kWarn, "{} connection(s) refused: --connections-max reached",
          now.connections_refused - last_.connections_refused);
    }
    if (now.connections_total > last_.connections_total) {
      Log(LogLevel::kDebug, "{} new connection(s), {} open", now.connections_total - last_.connections_total,
          now.connections);
    }
  }

  void Write(const StatsSnapshot& snap) {
    Status s = WriteFileAtomic(path_, StatsToJson(snap));
    if (!s.ok() && s.ToString() != last_write_error_) {
      Log(LogLevel::kWarn, "cannot write stats: {}", s.ToString());
    }
    last_write_error_ = s.ok() ? "" : s.ToString();
  }

  std::string path_;
  std::string store_;
  int64_t interval_s_;
  const SnapshotSource* source_;
  AdminPages* admin_;
  Clock::time_point next_line_;
  outpost::ServerStats last_;
  std::string last_write_error_;
};

// Waits up to `timeout` for SIGINT/SIGTERM (blocked in every thread); returns the signal or 0.
int WaitForSignal(const sigset_t& set, Clock::duration timeout) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  siginfo_t info{};
  const int sig = ::sigtimedwait(&set, &info, &ts);
  return sig > 0 ? sig : 0;
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Opens the blob store and starts the media server of --http; fills config->server's blob_store and
// media_url (the bound port decides the default URL). Bearer tokens are looked up in the registry without
// binding them; downloads are allowed by the server's membership (Server::MayReadBlob) once `source` holds
// the running server. Other GET paths are the admin pages.
outpost::Result<std::unique_ptr<outpost::MediaServer>> StartMedia(
    ServeConfig& config, const std::shared_ptr<outpost::TokenRegistry>& registry,
    const SnapshotSource* source, AdminPages* admin) {
  const MediaConfig& mc = config.media;
  // The default store under DATA_DIR is made owner-only like the rest of it (the store would make it with
  // the umask's mode); a directory the operator named is left as it is.
  if (const std::string own = "file:" + config.data_dir + "/blobs"; mc.blobs == own) {
    if (::mkdir(own.c_str() + 5, 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot make " + own.substr(5) + ": " + std::strerror(errno));
    }
  }
  outpost::BlobStoreOptions blob_options;
  blob_options.blob_bytes_max = mc.upload_bytes_max;
  auto blobs_or = outpost::OpenBlobStore(mc.blobs, blob_options);
  if (!blobs_or.ok()) {
    return Status::IOError("cannot open the blob store " + mc.blobs + ": " + blobs_or.status().ToString());
  }
  std::shared_ptr<outpost::BlobStore> blobs = std::move(blobs_or).value();

  outpost::MediaServerOptions options;
  options.blobs = blobs;
  options.upload_bytes_max = mc.upload_bytes_max;
  options.upload_expiry_ms = mc.upload_expiry_ms;
  options.authenticate = [registry](std::string_view token) -> outpost::Result<outpost::MediaPrincipal> {
    auto found = registry->LookUpToken(token);
    if (!found.ok()) {
      const bool store_trouble = found.status().code() != Status::Code::kPermissionDenied;
      Log(store_trouble ? LogLevel::kError : LogLevel::kDebug, "media request refused: {}",
          found.status().ToString());
      return found.status();
    }
    return outpost::MediaPrincipal{std::move(found->user), std::move(found->device)};
  };
  options.may_read = [source](const outpost::MediaPrincipal& who,
                              const outpost::BlobInfo& blob) -> outpost::Result<bool> {
    outpost::Server* server = source->server.load();
    if (server == nullptr) return Status::Unavailable("the server is starting");
    auto may = server->MayReadBlob(who.user, who.device, blob);
    if (!may.ok()) {
      Log(LogLevel::kError, "media: cannot tell whether {} may read blob {}: {}",
          outpost::QuoteForMessage(who.user), blob.id, may.status().ToString());
    }
    return may;
  };
  options.pages = [admin](const outpost::HttpPageRequest& request) { return admin->Serve(request); };
  auto media = outpost::MediaServer::Start(std::move(options), mc.host, mc.port);
  if (!media.ok()) {
    return Status::IOError("cannot serve media on " + UrlHost(mc.host) + ":" + std::to_string(mc.port) +
                           ": " + media.status().ToString() + " (is the port in use?)");
  }
  const uint16_t port = (*media)->port();
  config.server.blob_store = std::move(blobs);
  config.server.media_url =
      mc.url.empty() ? "http://" + UrlHost(mc.host) + ":" + std::to_string(port) + "/files/" : mc.url;
  Log(LogLevel::kInfo,
      "media: http://{}:{}/files/ (devices are told {}), blobs {}, uploads up to {} bytes, unfinished ones "
      "removed after {} s",
      UrlHost(mc.host), port, config.server.media_url, mc.blobs, mc.upload_bytes_max,
      mc.upload_expiry_ms / 1000);
  if (!IsLoopbackHost(mc.host) && !config.server.media_url.starts_with("https://")) {
    Log(LogLevel::kWarn,
        "media on {} is plain HTTP and devices are told {}: device tokens and attachments cross the network "
        "in clear. Put a TLS proxy in front and give --media-url https://...",
        UrlHost(mc.host), config.server.media_url);
  }
  return media;
}

int Serve(const Flags& flags) {
  ServeConfig config;
  std::string error;
  if (!ParseConfig(flags, &config, &error)) return Fail(kExitUsage, error + " (outpostd serve --help)");
  const bool data_dir_existed = RequireDataDir(config.data_dir).ok();
  if (Status s = EnsureDataDir(config.data_dir); !s.ok()) return Fail(kExitError, s.message());
  // A directory the operator made is left as it is (it may be shared on purpose, e.g. with a backup
  // group); what outpostd creates in it is owner-only anyway.
  if (data_dir_existed && IsGroupOrWorldAccessible(config.data_dir)) {
    Log(LogLevel::kWarn, "data directory {} is accessible to other users: chmod 700 it", config.data_dir);
  }

  outpost::TransportOptions transport;
  if (!config.curve_secret_file.empty()) {
    auto secret = ReadCurveSecret(config.curve_secret_file);
    if (!secret.ok()) return Fail(kExitError, "--curve-secret: " + secret.status().message());
    if (IsGroupOrWorldAccessible(config.curve_secret_file)) {
      Log(LogLevel::kWarn, "{} is readable by other users: chmod 600 it", config.curve_secret_file);
    }
    transport.curve_server_secret_key = *secret;
  }
  // The transport drops a connection whose message passes this before buffering it; frames between the
  // protocol limit and this get a protocol Error (the device learns why) and the connection goes on.
  transport.frame_bytes_max = uint64_t{config.server.frame_bytes_max} * 2 + (64 << 10);

  // Before any thread exists: every thread inherits the mask, so only sigtimedwait below sees the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (int rc = pthread_sigmask(SIG_BLOCK, &signals, nullptr); rc != 0) {
    return Fail(kExitError, std::string("pthread_sigmask: ") + std::strerror(rc));
  }
  std::signal(SIGPIPE, SIG_IGN);

  const bool shared_store = outpost::TokenRegistry::UsersMayLiveIn(config.store);
  DataDirLock lock;
  if (Status s = lock.Acquire(config.data_dir, shared_store); !s.ok()) return Fail(kExitError, s.message());

  // A database store is opened once, here, and shared by the registry (its users) and the server.
  if (shared_store) {
    outpost::ServerStoreOptions store_options;
    store_options.sync = config.server.store_sync;
    auto opened = outpost::OpenServerStore(config.store, store_options);
    if (!opened.ok()) {
      return Fail(kExitError, "cannot open the server store " + outpost::RedactUri(config.store) + ": " +
                                  opened.status().ToString());
    }
    config.server.server_store = std::move(opened).value();
  }
  auto registry_or = shared_store ? outpost::TokenRegistry::Open(config.data_dir, config.server.server_store)
                                  : outpost::TokenRegistry::Open(config.data_dir);
  if (!registry_or.ok()) {
    return Fail(kExitError, "cannot open the user registry " +
                                (shared_store ? outpost::RedactUri(config.store)
                                              : outpost::TokenRegistry::StoreUri(config.data_dir)) +
                                ": " + registry_or.status().ToString());
  }
  std::shared_ptr<outpost::TokenRegistry> registry = std::move(registry_or).value();
  // Each refused Hello is one line naming whom it claimed to be (the count is in stats), within a budget a
  // flood of them cannot pass.
  auto refusals = std::make_shared<LogBudget>(10);
  config.server.authenticate = [registry,
                                refusals](const outpost::HelloInfo& hello) -> outpost::Result<std::string> {
    auto user = registry->Authenticate(hello);
    if (user.ok()) {
      // Last seen and address for `outpostd devices`; a failure to note them refuses nobody.
      if (Status s = registry->TouchDevice(*user, hello.device, hello.peer); !s.ok()) {
        uint64_t skipped = 0;
        if (refusals->Take(&skipped))
          Log(LogLevel::kWarn, "user registry: cannot note a Hello: {}", s.ToString());
      }
    }
    uint64_t suppressed = 0;
    if (!user.ok() && refusals->Take(&suppressed)) {
      const bool store_trouble =
          user.status().code() == Status::Code::kIOError || user.status().code() == Status::Code::kCorruption;
      // The names are the peer's bytes: quoted and escaped, so that they cannot forge log lines.
      Log(store_trouble ? LogLevel::kError : LogLevel::kWarn, "hello from user {} device {} refused: {}{}",
          outpost::QuoteForMessage(hello.user), outpost::QuoteForMessage(hello.device),
          user.status().ToString(),
          suppressed == 0 ? "" : fmt::format(" ({} more refusals were not logged)", suppressed));
    }
    return user;
  };
  // Membership ops may name registered users only. A registry that cannot be read fails the group (the
  // devices resend; nothing is refused for it) and says so in the log.
  config.server.user_exists = [registry](std::string_view user) -> outpost::Result<bool> {
    auto known = registry->HasUser(user);
    if (!known.ok()) {
      Log(LogLevel::kError, "user registry: cannot look up user '{}': {}", user, known.status().ToString());
    }
    return known;
  };

  // Declared before the media server, so that on every way out the media server (whose may_read and pages
  // call into the server, the source and the admin pages) is destroyed, and its worker threads joined,
  // first. The source has the running server once started: a download that arrives before is told to
  // retry (503), and the pages say "starting".
  std::unique_ptr<outpost::Server> server;
  SnapshotSource source;
  AdminPages admin(
      {config.media.admin_token, outpost::RedactUri(config.store)}, [&source] { return source.Take(); },
      [&source](size_t n) { return source.Streams(n); });
  std::unique_ptr<outpost::MediaServer> media;
  if (config.media.enabled) {
    auto started = StartMedia(config, registry, &source, &admin);
    if (!started.ok()) return Fail(kExitError, started.status().message());
    media = std::move(started).value();
    source.media.store(media.get());
  }

  const std::string listen_uri = Join(config.listen);
  auto listener = outpost::Listen(listen_uri, transport);
  if (!listener.ok())
    return Fail(kExitError, "cannot listen on " + listen_uri + ": " + listener.status().ToString());
  auto server_or = outpost::Server::Open(config.server, std::move(listener).value());
  if (!server_or.ok()) {
    return Fail(kExitError, "cannot open the server store " + outpost::RedactUri(config.store) + ": " +
                                server_or.status().ToString());
  }
  server = std::move(server_or).value();
  // Revocations from now on end live connections on this instance (earlier ones: the Hello is refused).
  auto watcher_or = RevocationWatcher::Start(registry, server.get());
  if (!watcher_or.ok()) {
    return Fail(kExitError, "cannot read the revocations of the user registry " + registry->where() + ": " +
                                watcher_or.status().ToString());
  }
  std::unique_ptr<RevocationWatcher> watcher = std::move(watcher_or).value();
  server->Start();
  const std::string endpoint = server->endpoint();
  source.endpoint = endpoint.empty() ? listen_uri : endpoint;
  source.media_url = config.server.media_url;
  source.server.store(server.get());  // after endpoint and media_url: Take reads them once this is set

  Log(LogLevel::kInfo, "outpostd started: pid {}, data {}, store {}, users {}, membership on, CURVE {}",
      ::getpid(), config.data_dir, outpost::RedactUri(config.store), registry->where(),
      transport.curve_server_secret_key.empty() ? "off" : "on");
  Log(LogLevel::kInfo, "listening on {}", endpoint.empty() ? listen_uri : endpoint);
  if (transport.curve_server_secret_key.empty()) {
    for (const std::string& uri : config.listen) {
      if (IsLocalOnly(uri)) continue;
      Log(LogLevel::kWarn,
          "listening on {} beyond loopback without CURVE: device tokens and all data cross the network in "
          "clear. Turn CURVE on: `outpostd keygen --secret-file FILE`, serve with --curve-secret FILE, give "
          "devices the key `outpostd curve-public --curve-secret FILE` prints",
          uri);
    }
  }
  // stats.json (with the media URL) is there before the endpoint file that tells a watcher the server is up.
  StatsReporter stats(config, &source, media ? &admin : nullptr);
  stats.Tick();
  if (!config.endpoint_file.empty()) {
    if (Status s = WriteFileAtomic(config.endpoint_file, (endpoint.empty() ? listen_uri : endpoint) + "\n");
        !s.ok()) {
      Log(LogLevel::kError, "cannot write --endpoint-file: {}", s.ToString());
      if (media) media->Stop();
      server->Stop();
      source.stopped = true;
      stats.Tick();
      return kExitError;
    }
  }

  int sig = 0;
  while ((sig = WaitForSignal(signals, std::chrono::seconds(1))) == 0) stats.Tick();
  watcher.reset();  // before the server it ends connections on

  Log(LogLevel::kInfo, "{}: stopping (answering what was received)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  // Uploads stop first: one cut midway keeps what it stored and resumes from there.
  if (media) media->Stop();
  server->Stop();
  source.stopped = true;
  stats.Tick();
  if (!config.endpoint_file.empty()) ::unlink(config.endpoint_file.c_str());
  media.reset();
  server.reset();  // closes the listener and the store
  registry.reset();
  Log(LogLevel::kInfo, "stopped");
  return kExitOk;
}

}  // namespace

Command ServeCommand() {
  return {
      "serve",
      "serve the store (the default command: `outpostd --data DIR ...`)",
      "",
      kDescription,
      {{"data", true, false,
        "data directory (created 0700 if its parent exists): DIR/server (store), DIR/auth (users), "
        "DIR/stats.json, DIR/outpostd.lock; files are 0600. With a database store, only this instance's "
        "lock and stats: each has its own DIR (required)",
        "DIR"},
       {"listen", true, true,
        "tcp://HOST:PORT or ipc://PATH; repeat or comma-separate for several; port 0 picks a free port "
        "(default tcp://127.0.0.1:7700)",
        "URI"},
       {"store", true, false,
        "server store (default lmdb:DIR/server): lmdb:DIR, sqlite:FILE, rocksdb:DIR (one server per "
        "store), or postgresql://USER:PASSWORD@HOST/DB (any number of servers on one database; it keeps "
        "the users too; `outpostd migrate` creates its schema first)",
        "URI"},
       {"curve-secret", true, false,
        "CURVE secret key (Z85, from `outpostd keygen`): only encrypted devices that know the public key "
        "(`outpostd curve-public`) can connect. Without it, tokens cross the network in clear: outpostd "
        "warns when it listens beyond loopback",
        "FILE"},
       {"endpoint-file", true, false,
        "once listening, write the bound endpoint(s), comma-separated, to FILE (removed again at a clean "
        "stop)",
        "FILE"},
       {"log-level", true, false, "debug, info (default), warn or error", "LEVEL"},
       {"stats-interval", true, false, "log a stats line every S seconds (default 60; 0: never)", "S"},
       {"frame-bytes-max", true, false, "largest frame accepted (default 4194304)", "N"},
       {"ops-per-batch-max", true, false, "most ops in one push (default 1024)", "N"},
       {"payload-bytes-max", true, false, "largest op payload (default 1048576)", "N"},
       {"connections-max", true, false, "most open connections (default 100000)", "N"},
       {"protocol-min", true, false,
        "oldest device protocol version served (default 2; older devices are told to upgrade)", "N"},
       {"http", true, false,
        "also serve uploads (tus 1.0 at /files/), downloads and the operator's pages over HTTP on "
        "HOST:PORT (port 0 picks a free port: stats.json's media_url tells it). Devices send their token "
        "as `Authorization: Bearer TOKEN`. Plain HTTP: beyond loopback put a TLS proxy in front",
        "HOST:PORT"},
       {"media-url", true, false,
        "the upload URL the server announces to devices (default http://HOST:PORT/files/; required when "
        "HOST is 0.0.0.0 or ::, e.g. https://media.example.org/files/)",
        "URL"},
       {"blobs", true, false,
        "where attachment bytes live: file:DIR (default file:DIR/blobs under --data). Required with a "
        "postgresql:// store: every instance must use the same one (a shared directory)",
        "URI"},
       {"upload-max-bytes", true, false, "largest attachment (default 1073741824, at most 4294967296)", "N"},
       {"upload-expiry", true, false,
        "an unfinished upload is removed this long after it began: 90s, 30m, 24h (default), 7d; a bare "
        "number is seconds",
        "D"},
       {"admin-token-file", true, false,
        "a secret of at least 16 characters (e.g. `head -c 24 /dev/urandom | base64`): requests that carry "
        "it (Authorization: Bearer TOKEN, or HTTP Basic with the token as the password) may see /metrics "
        "and the status page from anywhere",
        "FILE"}},
      &Serve,
      kFooter};
}

}  // namespace outpostd
