// Copyright 2026 The Outpost Authors.
//
// MediaServer over cpp-httplib (Debian's 0.11.4): tus 1.0.0 uploads and ranged downloads at /files/.
//
// Statuses where tus leaves a choice (or says nothing):
//   401 no or bad bearer token (WWW-Authenticate: Bearer); 503 + Retry-After when authenticate or may_read
//       fail otherwise.
//   404 an upload of another user or of another device (when it was made with one), for HEAD, PATCH and
//       DELETE; a download that is not complete, not allowed or unknown. Each is the same response as for an
//       unknown id (a blob's existence is not revealed).
//   408 the request line and headers did not arrive within header_timeout_ms (then the connection closes);
//   431 they passed header_bytes_max (then the connection closes).
//   410 an incomplete upload past its Upload-Expires that RemoveExpired has not removed yet (404 after).
//   409 PATCH Upload-Offset differs from the upload's offset (the response carries the real Upload-Offset);
//       PATCH of a complete upload with a body; DELETE of a complete upload (messages may reference it).
//   413 Upload-Length over Tus-Max-Size, and a PATCH whose body would pass Upload-Length (chunk discarded).
//   423 another request is writing the upload now (PATCH, DELETE).
//   429 POST beyond uploads_per_user_max.
//   460 Upload-Checksum mismatch (chunk discarded), and a final PATCH whose whole-upload SHA-256 (from the
//       `sha256` metadata) does not match: the upload is then reset to offset 0 (Upload-Offset: 0).
//   400 a bad header (Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum syntax), an unsupported
//       checksum algorithm, Upload-Defer-Length, a body on GET/HEAD.
//   416 a Range that is malformed, multiple, or starts past the end (Content-Range: bytes */SIZE).
//   405 PUT, and POST to an upload without X-HTTP-Method-Override (PATCH or DELETE are honoured).
// Every error answers a short text/plain body saying why.
//
// What cpp-httplib 0.11.4 does not offer, and how this file gets around it:
//   - No connection limit: a TaskQueue counts connections from accept to close and, beyond
//     connections_max, runs the connection's task inline on the accept thread with a thread-local flag that
//     makes process_and_close_socket write a 503 and close (no read: the accept thread never blocks).
//   - Server::stop() does not interrupt a worker blocked reading a body, and process_and_close_socket is
//     private (it can be replaced, not extended): HttpServer replaces it with its own keep-alive loop over
//     the protected process_request, knows every served socket, and Stop shuts them down, so Stop is prompt.
//     The read, write and keep-alive timeouts are then in milliseconds (cpp-httplib's own are whole
//     seconds for keep-alive).
//   - It keeps a header line in memory until the line ends, checks its 8 KiB limit only then, and has no
//     limit on the number of headers; its own timeouts apply to each read. SocketStream (this file's Stream)
//     counts what it hands out until the headers end and refuses to read past header_bytes_max or the
//     header deadline, and after them enforces the minimum body speed.
//   - It has no per-client limit: BoundedTaskQueue learns each new connection's socket by running its task
//     once on the accept thread with a thread-local flag (process_and_close_socket then only reports the
//     socket) and counts connections per peer IP.
//   - It applies Range itself (and can slice an error body by it): Request::ranges is cleared before
//     routing and this file parses Range.
//   - A handler that answers without reading the body leaves the body on the connection: a body up to
//     1 MiB is drained, a longer one gets `Connection: close` (the client closes; httplib then fails to
//     parse the rest and drops the connection).
#include "outpost/media_server.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "media/common/digest.h"

namespace outpost {
namespace media {
namespace {

constexpr std::string_view kTusVersion = "1.0.0";
constexpr std::string_view kOffsetOctetStream = "application/offset+octet-stream";
constexpr size_t kDownloadPieceBytes = 64 << 10;
constexpr uint64_t kDrainBytesMax = 1 << 20;
constexpr char kExposeHeaders[] =
    "Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, Location, Tus-Resumable, Tus-Version, "
    "Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Content-Range, Content-Length, ETag";
constexpr char kAllowHeaders[] =
    "Authorization, Origin, X-Requested-With, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, "
    "Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, Range, If-None-Match, "
    "X-HTTP-Method-Override";

// MediaServerStats as relaxed atomics: each is a count on its own, never read together under a lock.
struct Counters {
  std::atomic<uint64_t> uploads_created{0};
  std::atomic<uint64_t> uploads_completed{0};
  std::atomic<uint64_t> upload_bytes_received{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> checksum_mismatches{0};
  std::atomic<uint64_t> downloads{0};
  std::atomic<uint64_t> download_bytes_sent{0};
  std::atomic<uint64_t> refused_auth{0};
  std::atomic<uint64_t> not_found{0};
  std::atomic<uint64_t> rejected_other{0};
  std::atomic<uint64_t> server_errors{0};
  std::atomic<uint64_t> connections_refused{0};
};

void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) { counter.fetch_add(n, std::memory_order_relaxed); }

// Set on the accept thread while it runs the task of a connection over connections_max.
thread_local bool t_reject_connection = false;
// Set on the accept thread while it runs a connection's task only to learn its socket (cpp-httplib hands the
// task queue a closure, not the socket): process_and_close_socket stores the socket here and returns.
thread_local int* t_probe_socket = nullptr;

// The peer's address as text ("" when unknown: such connections share one count).
std::string PeerIp(int sock) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (sock < 0 || ::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[NI_MAXHOST];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) !=
      0)
    return "";
  return host;
}

// A ThreadPool that also counts open connections (queued or being served) and turns away those over the
// limit.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(size_t threads, uint32_t connections_max, uint32_t connections_per_ip_max,
                   Counters* counters)
      : pool_(threads),
        connections_max_(connections_max),
        connections_per_ip_max_(connections_per_ip_max),
        counters_(counters) {}

  void enqueue(std::function<void()> fn) override {
    int sock = -1;
    t_probe_socket = &sock;
    fn();  // only stores the socket
    t_probe_socket = nullptr;
    std::string ip = PeerIp(sock);
    if (open_.fetch_add(1) >= connections_max_ || !AdmitIp(ip)) {
      open_.fetch_sub(1);
      Bump(counters_->connections_refused);
      t_reject_connection = true;
      fn();  // process_and_close_socket sees the flag: 503 and close
      t_reject_connection = false;
      return;
    }
    pool_.enqueue([this, ip = std::move(ip), fn = std::move(fn)] {
      fn();
      ReleaseIp(ip);
      open_.fetch_sub(1);
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  bool AdmitIp(const std::string& ip) {
    std::lock_guard<std::mutex> lock(ip_mu_);
    uint32_t& open = open_per_ip_[ip];
    if (open >= connections_per_ip_max_) return false;
    ++open;
    return true;
  }
  void ReleaseIp(const std::string& ip) {
    std::lock_guard<std::mutex> lock(ip_mu_);
    auto it = open_per_ip_.find(ip);
    if (it != open_per_ip_.end() && --it->second == 0) open_per_ip_.erase(it);
  }

  httplib::ThreadPool pool_;
  uint32_t connections_max_;
  uint32_t connections_per_ip_max_;
  Counters* counters_;
  std::atomic<uint32_t> open_{0};
  std::mutex ip_mu_;
  std::map<std::string, uint32_t> open_per_ip_;  // entries only for IPs with open connections
};

// What one request may take of a connection (see MediaServerOptions).
struct StreamLimits {
  int read_timeout_ms = 30'000;
  int write_timeout_ms = 30'000;
  int header_timeout_ms = 10'000;
  size_t header_bytes_max = 64 << 10;
  uint64_t bytes_per_second_min = 1024;
  int rate_window_ms = 30'000;
};

// One request's view of its connection's socket as cpp-httplib's Stream, with poll-based timeouts. It has
// two phases. Until the blank line that ends the headers it counts the bytes it hands out (cpp-httplib
// reads a header line byte by byte and checks its length only once the line ends, so this budget is what
// bounds the memory a request may take) and cuts reads off at the header deadline. After it, every wait
// for the peer counts against the minimum speed.
class SocketStream final : public httplib::Stream {
 public:
  enum class Failure { kNone, kHeadersTooLarge, kHeadersTooSlow, kBodyTooSlow };

  SocketStream(int sock, const StreamLimits& limits)
      : sock_(sock),
        limits_(limits),
        header_deadline_(Clock::now() + std::chrono::milliseconds(limits.header_timeout_ms)),
        window_quota_(limits.bytes_per_second_min * static_cast<uint64_t>(limits.rate_window_ms) / 1000) {}
  bool is_readable() const override { return Wait(POLLIN, limits_.read_timeout_ms); }
  bool is_writable() const override { return Wait(POLLOUT, limits_.write_timeout_ms); }
  ssize_t read(char* ptr, size_t size) override {
    if (in_headers_) {
      if (header_bytes_ >= limits_.header_bytes_max) {
        failure_ = Failure::kHeadersTooLarge;
        return -1;
      }
      size = std::min(size, limits_.header_bytes_max - header_bytes_);
    }
    if (!is_readable()) return -1;
    for (;;) {
      ssize_t n = ::recv(sock_, ptr, size, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) Count(ptr, static_cast<size_t>(n));
      return n;
    }
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    for (;;) {
      ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) Moved(static_cast<uint64_t>(n));
      return n;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { Address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Address(false, ip, port); }
  socket_t socket() const override { return sock_; }

  // Why the stream refused to go on, if it did: the connection is then closed after this request.
  Failure failure() const { return failure_; }

  // Whether `sock` becomes readable within `timeout_ms`.
  static bool WaitFd(int sock, short events, int timeout_ms) {
    pollfd p{sock, events, 0};
    for (;;) {
      int n = ::poll(&p, 1, timeout_ms);
      if (n < 0 && errno == EINTR) continue;
      return n > 0;
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  bool Wait(short events, int timeout_ms) const {
    // After a header limit the response saying so is still written; after a slow peer nothing more moves.
    bool reading = events == POLLIN;
    if (reading ? failure_ != Failure::kNone : failure_ == Failure::kBodyTooSlow) return false;
    bool rated = !in_headers_ && window_quota_ > 0;
    bool deadline_bound = false;  // the wait ends at the header deadline, not at the read timeout
    if (reading && in_headers_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(header_deadline_ - Clock::now());
      if (left.count() <= 0) {
        failure_ = Failure::kHeadersTooSlow;
        return false;
      }
      deadline_bound = left.count() <= timeout_ms;
      timeout_ms = static_cast<int>(std::min<int64_t>(timeout_ms, left.count()));
    } else if (rated && window_bytes_ < window_quota_) {
      // The window's quota is not met yet: wait no longer than the window has left.
      timeout_ms =
          static_cast<int>(std::clamp<int64_t>(limits_.rate_window_ms - window_waited_ms_, 0, timeout_ms));
    }
    Clock::time_point start = Clock::now();
    bool ready = WaitFd(sock_, events, timeout_ms);
    if (rated) {
      window_waited_ms_ +=
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    }
    if (!ready) {
      if (deadline_bound) failure_ = Failure::kHeadersTooSlow;
      if (rated && window_waited_ms_ >= limits_.rate_window_ms && window_bytes_ < window_quota_)
        failure_ = Failure::kBodyTooSlow;
    }
    return ready;
  }

  // Bytes handed to cpp-httplib: in the header phase, looks for the blank line that ends the headers.
  void Count(const char* data, size_t n) {
    if (!in_headers_) return Moved(n);
    for (size_t i = 0; i < n; ++i) {
      ++header_bytes_;
      char c = data[i];
      if (c == '\n') {
        if (line_bytes_ == 0 && lines_ > 0) {
          in_headers_ = false;
          Moved(n - i - 1);
          return;
        }
        ++lines_;
        line_bytes_ = 0;
      } else if (c != '\r') {
        ++line_bytes_;
      }
    }
  }
  // Bytes of a body or a response moved: a window that has passed with its quota met starts a new one.
  void Moved(uint64_t n) {
    window_bytes_ += n;
    if (window_waited_ms_ < limits_.rate_window_ms) return;
    if (window_quota_ > 0 && window_bytes_ < window_quota_) {
      failure_ = Failure::kBodyTooSlow;
      return;
    }
    window_waited_ms_ = 0;
    window_bytes_ = 0;
  }

  void Address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int rc = remote ? ::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len)
                    : ::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len);
    if (rc != 0) return;
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                      NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      port = std::atoi(serv);
    }
  }

  int sock_;
  StreamLimits limits_;
  Clock::time_point header_deadline_;
  uint64_t window_quota_;  // bytes each rate window must move
  bool in_headers_ = true;
  size_t header_bytes_ = 0;
  size_t line_bytes_ = 0;  // of the current header line, CR aside
  size_t lines_ = 0;
  // Waits are const in cpp-httplib's Stream, yet they are what the speed and deadline rules measure.
  mutable Failure failure_ = Failure::kNone;
  mutable int64_t window_waited_ms_ = 0;
  uint64_t window_bytes_ = 0;
};

// The stream of the request this worker thread serves (each worker serves one connection at a time), for the
// error handler to tell a header limit from a plain bad request.
thread_local const SocketStream* t_current_stream = nullptr;

// cpp-httplib's Server with this file's connection loop (process_and_close_socket is private virtual in
// 0.11.4, so it is replaced rather than extended): it knows every served socket, so Stop shuts them down
// (a worker blocked reading a body returns at once), it turns away connections over the limit, and its
// keep-alive timeout is in milliseconds.
class HttpServer final : public httplib::Server {
 public:
  void Configure(int read_timeout_ms, int write_timeout_ms, int keep_alive_timeout_ms,
                 uint32_t keep_alive_max) {
    read_timeout_ms_ = read_timeout_ms;
    write_timeout_ms_ = write_timeout_ms;
    keep_alive_timeout_ms_ = keep_alive_timeout_ms;
    keep_alive_max_ = keep_alive_max;
  }
  void ConfigureLimits(const StreamLimits& limits) { limits_ = limits; }

  // Shuts every served connection down (blocked reads return) and turns away any not yet started.
  void ShutdownConnections() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (int fd : active_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    if (t_probe_socket != nullptr) {
      *t_probe_socket = sock;
      return true;
    }
    bool reject = t_reject_connection;
    if (!reject) {
      std::lock_guard<std::mutex> lock(mu_);
      reject = stopping_;
      if (!reject) active_.insert(sock);
    }
    if (reject) {
      static constexpr std::string_view k503 =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n"
          "Connection: close\r\nRetry-After: 1\r\n\r\ntoo many connections or shutting down\n";
      (void)!::send(sock, k503.data(), k503.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::shutdown(sock, SHUT_RDWR);
      ::close(sock);
      return false;
    }
    bool ok = true;
    for (uint32_t left = keep_alive_max_; left > 0; --left) {
      // The first request gets the header timeout to start (a connection that sends nothing holds a worker
      // no longer than one that sends half a request); later ones the keep-alive timeout.
      int wait_ms = left == keep_alive_max_ ? std::min(read_timeout_ms_, limits_.header_timeout_ms)
                                            : keep_alive_timeout_ms_;
      if (!SocketStream::WaitFd(sock, POLLIN, wait_ms)) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      StreamLimits limits = limits_;
      limits.read_timeout_ms = read_timeout_ms_;
      limits.write_timeout_ms = write_timeout_ms_;
      SocketStream stream(sock, limits);
      bool closed = false;
      t_current_stream = &stream;
      ok = process_request(stream, /*close_connection=*/left == 1, closed, nullptr);
      t_current_stream = nullptr;
      if (!ok || closed || stream.failure() != SocketStream::Failure::kNone) break;
    }
    // Closed under the lock, so ShutdownConnections never shuts down a reused number.
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  int read_timeout_ms_ = 30'000;
  int write_timeout_ms_ = 30'000;
  int keep_alive_timeout_ms_ = 5'000;
  uint32_t keep_alive_max_ = 100;
  StreamLimits limits_;
  std::mutex mu_;
  bool stopping_ = false;
  std::set<int> active_;
};

void Fail(httplib::Response& res, int status, std::string_view why) {
  res.status = status;
  std::string body(why);
  body.push_back('\n');
  res.set_content(body, "text/plain; charset=utf-8");
}

// The body of an error cpp-httplib answers by itself (no route, a bad request line, a malformed Range).
std::string_view DefaultReason(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "no such resource";
    case 405:
      return "method not allowed";
    case 413:
      return "body too large";
    case 414:
      return "URI too long";
    case 416:
      return "bad Range";
    default:
      return "error";
  }
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// RFC 7231 IMF-fixdate, as tus's Upload-Expires wants.
std::string HttpDate(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// Upload-Metadata: comma-separated `key` or `key base64value`. False when malformed.
bool ParseMetadata(std::string_view header, std::map<std::string, std::string>* out) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view pair = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (pair.empty()) return false;
    size_t space = pair.find(' ');
    std::string key(pair.substr(0, space));
    std::string value;
    if (space != std::string_view::npos && !Base64Decode(Trim(pair.substr(space + 1)), &value)) return false;
    (*out)[key] = value;
  }
  return true;
}

// The body's length when the request says it (Content-Length); chunked bodies have none.
struct BodyShape {
  bool present = false;  // a body to read (Content-Length > 0 or chunked)
  bool chunked = false;
  uint64_t length = 0;
  bool bad = false;  // an unparseable Content-Length
};

BodyShape ShapeOf(const httplib::Request& req) {
  BodyShape shape;
  std::string te = req.get_header_value("Transfer-Encoding");
  if (!te.empty()) {
    shape.chunked = true;
    shape.present = true;
    return shape;
  }
  if (req.has_header("Content-Length")) {
    shape.bad = !ParseU64(req.get_header_value("Content-Length"), &shape.length);
    shape.present = shape.length > 0;
  }
  return shape;
}

// The body is left unread: drain a short one so the connection stays usable, else ask the client to close.
void LeaveBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader) {
  BodyShape shape = ShapeOf(req);
  if (!shape.present) return;
  if (reader != nullptr && !shape.chunked && !shape.bad && shape.length <= kDrainBytesMax) {
    (*reader)([](const char*, size_t) { return true; });
    return;
  }
  res.set_header("Connection", "close");
}

class MediaServerImpl final : public MediaServer {
 public:
  explicit MediaServerImpl(MediaServerOptions options) : options_(std::move(options)) {
    if (options_.env == nullptr) options_.env = SystemEnv();
  }
  ~MediaServerImpl() override { Stop(); }

  Status Listen(std::string_view host, uint16_t port);
  uint16_t port() const override { return port_; }
  void Stop() override;
  MediaServerStats Stats() const override;

 private:
  struct Upload {
    MediaPrincipal who;
    BlobInfo info;
  };

  void Routes();
  httplib::Server::HandlerResponse PreRoute(const httplib::Request& req, httplib::Response& res);
  void Options(httplib::Response& res);
  void Post(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void PostToUpload(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader);
  void Head(const httplib::Request& req, httplib::Response& res);
  void Get(const httplib::Request& req, httplib::Response& res);
  void Patch(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void Delete(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  void ExpireLoop();
  // Counts a response by its final status (after the error handler), once per response.
  void CountResponse(const httplib::Request& req, const httplib::Response& res);
  void Page(const httplib::Request& req, httplib::Response& res);

  std::optional<MediaPrincipal> Authenticate(const httplib::Request& req, httplib::Response& res);
  // The upload named by the path, when it exists and belongs to the caller; else the response is set.
  std::optional<Upload> OwnUpload(const httplib::Request& req, httplib::Response& res, bool allow_expired);
  // Streams the body into the upload at `offset` and commits it; sets the response but for its status on
  // success (left to the caller: 204 or 201).
  bool AppendBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                  Upload& upload, uint64_t offset);
  void StoreError(httplib::Response& res, const Status& s);
  void SetUploadHeaders(httplib::Response& res, const BlobInfo& info);
  bool Expired(const BlobInfo& info) {
    return !info.complete && info.spec.expires_at_ms != 0 && info.spec.expires_at_ms <= options_.env->NowMs();
  }
  void Forget(const std::string& user, const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads_.find(user);
    if (it != uploads_.end()) it->second.erase(id);
  }
  // Reserves a slot for a new upload of `user`, after dropping finished ones. False when none is free.
  bool ReserveUpload(const std::string& user);

  MediaServerOptions options_;
  // Before http_: the task queue and the download providers (both gone once http_ stops) point into it.
  Counters counters_;
  HttpServer http_;
  uint16_t port_ = 0;
  std::thread listener_;
  std::thread expirer_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::map<std::string, std::set<std::string>> uploads_;  // user → ids of incomplete uploads they made
  std::map<std::string, uint32_t> reserved_;              // user → creations in progress
};

Status MediaServerImpl::Listen(std::string_view host, uint16_t port) {
  if (!options_.blobs) return Status::InvalidArgument("MediaServerOptions.blobs is required");
  if (!options_.authenticate) return Status::InvalidArgument("MediaServerOptions.authenticate is required");
  if (options_.threads == 0 || options_.connections_max == 0 || options_.connections_per_ip_max == 0) {
    return Status::InvalidArgument(
        "MediaServerOptions.threads, connections_max and connections_per_ip_max must be positive");
  }
  if (options_.header_bytes_max == 0) return Status::InvalidArgument("header_bytes_max must be positive");
  if (options_.expire_interval_ms <= 0) return Status::InvalidArgument("expire_interval_ms must be positive");
  Routes();
  uint32_t threads = options_.threads;
  uint32_t connections_max = options_.connections_max;
  uint32_t connections_per_ip_max = options_.connections_per_ip_max;
  http_.new_task_queue = [this, threads, connections_max, connections_per_ip_max] {
    return new BoundedTaskQueue(threads, connections_max, connections_per_ip_max, &counters_);
  };
  auto ms = [](int64_t v) { return static_cast<int>(std::clamp<int64_t>(v, 1, 24 * 3600'000)); };
  http_.Configure(ms(options_.read_timeout_ms), ms(options_.write_timeout_ms),
                  ms(options_.keep_alive_timeout_ms),
                  std::max<uint32_t>(options_.keep_alive_requests_max, 1));
  StreamLimits limits;
  limits.header_timeout_ms = ms(options_.header_timeout_ms);
  limits.header_bytes_max = options_.header_bytes_max;
  limits.bytes_per_second_min = options_.body_bytes_per_second_min;
  limits.rate_window_ms = ms(options_.body_rate_window_ms);
  http_.ConfigureLimits(limits);
  // No body is longer than an upload may be; cpp-httplib answers 413 itself past this.
  http_.set_payload_max_length(options_.upload_bytes_max);
  http_.set_default_headers({{"Tus-Resumable", std::string(kTusVersion)},
                             {"Access-Control-Allow-Origin", "*"},
                             {"Access-Control-Expose-Headers", kExposeHeaders}});

  // SO_REUSEADDR only: cpp-httplib's default also sets SO_REUSEPORT, which lets a second server bind the same
  // port and take half of the connections instead of failing to start.
  http_.set_socket_options([](socket_t sock) {
    int yes = 1;
    (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  std::string h(host);
  int bound = port == 0 ? http_.bind_to_any_port(h) : (http_.bind_to_port(h, port) ? port : -1);
  if (bound <= 0) return Status::IOError("media server cannot listen on " + h + ":" + std::to_string(port));
  port_ = static_cast<uint16_t>(bound);
  listener_ = std::thread([this] { http_.listen_after_bind(); });
  // Server::stop() is a no-op until the listener runs; wait for it so a quick Stop is not lost.
  while (!http_.is_running()) std::this_thread::yield();
  expirer_ = std::thread([this] { ExpireLoop(); });
  return Status::OK();
}

void MediaServerImpl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (listener_.joinable()) {
    http_.stop();
    http_.ShutdownConnections();
    listener_.join();
  }
  if (expirer_.joinable()) expirer_.join();
}

MediaServerStats MediaServerImpl::Stats() const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  MediaServerStats s;
  s.uploads_created = get(counters_.uploads_created);
  s.uploads_completed = get(counters_.uploads_completed);
  s.upload_bytes_received = get(counters_.upload_bytes_received);
  s.chunks = get(counters_.chunks);
  s.checksum_mismatches = get(counters_.checksum_mismatches);
  s.downloads = get(counters_.downloads);
  s.download_bytes_sent = get(counters_.download_bytes_sent);
  s.refused_auth = get(counters_.refused_auth);
  s.not_found = get(counters_.not_found);
  s.rejected_other = get(counters_.rejected_other);
  s.server_errors = get(counters_.server_errors);
  s.connections_refused = get(counters_.connections_refused);
  return s;
}

void MediaServerImpl::CountResponse(const httplib::Request& req, const httplib::Response& res) {
  int status = res.status;
  if (req.method == "GET" && (status == 200 || status == 206)) {
    Bump(counters_.downloads);
  } else if (status == 401) {
    Bump(counters_.refused_auth);
  } else if (status == 404) {
    Bump(counters_.not_found);
  } else if (status >= 400 && status < 500) {
    Bump(counters_.rejected_other);
  } else if (status >= 500) {
    Bump(counters_.server_errors);
  }
}

void MediaServerImpl::ExpireLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.expire_interval_ms),
                   [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    // An error is retried at the next round; there is no one to tell but the next round.
    (void)options_.blobs->RemoveExpired(options_.env->NowMs());
    lock.lock();
  }
}

void MediaServerImpl::Routes() {
  using httplib::ContentReader;
  using httplib::Request;
  using httplib::Response;
  http_.set_pre_routing_handler([this](const Request& req, Response& res) { return PreRoute(req, res); });
  http_.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
    const_cast<Request&>(req).ranges.clear();  // never slice an error body by the request's Range
    // cpp-httplib says 400 when reading the headers failed; say which limit it was.
    SocketStream::Failure failure =
        t_current_stream ? t_current_stream->failure() : SocketStream::Failure::kNone;
    if (failure == SocketStream::Failure::kHeadersTooLarge) {
      res.set_header("Connection", "close");
      Fail(res, 431, "request line and headers are too large");
    } else if (failure == SocketStream::Failure::kHeadersTooSlow) {
      res.set_header("Connection", "close");
      Fail(res, 408, "request headers took too long");
    }
    if (res.body.empty() && !res.content_provider_) {
      Fail(res, res.status, DefaultReason(res.status));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  // Called once per response with its final status, whoever set it (a handler, PreRoute or cpp-httplib).
  http_.set_post_routing_handler([this](const Request& req, Response& res) { CountResponse(req, res); });
  const std::string kUpload = "/files/([^/]*)";
  http_.Post("/files/?", [this](const Request& req, Response& res, const ContentReader& reader) {
    Post(req, res, reader);
  });
  http_.Post(kUpload, [this](const Request& req, Response& res, const ContentReader& reader) {
    PostToUpload(req, res, reader);
  });
  http_.Patch(kUpload, [this](const Request& req, Response& res, const ContentReader& reader) {
    Patch(req, res, reader);
  });
  http_.Delete(kUpload, [this](const Request& req, Response& res, const ContentReader& reader) {
    Delete(req, res, reader);
  });
  http_.Get(kUpload, [this](const Request& req, Response& res) {
    req.method == "HEAD" ? Head(req, res) : Get(req, res);
  });
  http_.Get(".*", [this](const Request& req, Response& res) { Page(req, res); });
  // Everything else with a body is answered here, so cpp-httplib never reads a body into memory.
  auto none = [](const Request& req, Response& res, const ContentReader& reader) {
    Fail(res, 404, "no such resource");
    LeaveBody(req, res, &reader);
  };
  http_.Post(".*", none);
  http_.Patch(".*", none);
  http_.Delete(".*", none);
  http_.Put(".*", [](const Request& req, Response& res, const ContentReader& reader) {
    Fail(res, 405, "PUT is not supported; tus uploads use POST and PATCH");
    LeaveBody(req, res, &reader);
  });
}

httplib::Server::HandlerResponse MediaServerImpl::PreRoute(const httplib::Request& req,
                                                           httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  // This file parses Range itself (for GET downloads only).
  const_cast<httplib::Request&>(req).ranges.clear();
  if (req.method == "OPTIONS") {
    Options(res);
    LeaveBody(req, res, nullptr);
    return HR::Handled;
  }
  bool bodyless = req.method == "GET" || req.method == "HEAD";
  BodyShape shape = ShapeOf(req);
  if (bodyless && (shape.present || shape.bad)) {
    // cpp-httplib would read such a body into memory: refuse it.
    Fail(res, 400, "a GET or HEAD request carries no body");
    res.set_header("Connection", "close");
    return HR::Handled;
  }
  if (shape.bad) {
    Fail(res, 400, "bad Content-Length");
    res.set_header("Connection", "close");
    return HR::Handled;
  }
  // Downloads are plain HTTP (an <img> or a browser fetch sends no Tus-Resumable); everything else is tus.
  if (req.method != "GET" && req.get_header_value("Tus-Resumable") != kTusVersion) {
    res.set_header("Tus-Version", std::string(kTusVersion));
    Fail(res, 412, "Tus-Resumable must be 1.0.0");
    LeaveBody(req, res, nullptr);
    return HR::Handled;
  }
  return HR::Unhandled;
}

void MediaServerImpl::Options(httplib::Response& res) {
  res.status = 204;
  res.set_header("Tus-Version", std::string(kTusVersion));
  res.set_header("Tus-Extension", "creation,creation-with-upload,termination,checksum,expiration");
  res.set_header("Tus-Max-Size", std::to_string(options_.upload_bytes_max));
  res.set_header("Tus-Checksum-Algorithm", "sha1,sha256");
  res.set_header("Access-Control-Allow-Methods", "POST, GET, HEAD, PATCH, DELETE, OPTIONS");
  res.set_header("Access-Control-Allow-Headers", kAllowHeaders);
  res.set_header("Access-Control-Max-Age", "86400");
}

std::optional<MediaPrincipal> MediaServerImpl::Authenticate(const httplib::Request& req,
                                                            httplib::Response& res) {
  std::string header_value = req.get_header_value("Authorization");
  std::string_view header = header_value;
  std::string_view token;
  if (header.size() > 7 && IEquals(header.substr(0, 7), "Bearer ")) token = Trim(header.substr(7));
  if (token.empty()) {
    res.set_header("WWW-Authenticate", "Bearer");
    Fail(res, 401, "missing bearer token (Authorization: Bearer TOKEN)");
    return std::nullopt;
  }
  Result<MediaPrincipal> who = options_.authenticate(token);
  if (who.ok()) return std::move(who).value();
  if (who.status().code() == Status::Code::kPermissionDenied) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    Fail(res, 401, "bad bearer token: " + who.status().message());
  } else {
    res.set_header("Retry-After", "5");
    Fail(res, 503, "cannot check the bearer token now; retry");
  }
  return std::nullopt;
}

void MediaServerImpl::StoreError(httplib::Response& res, const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      Fail(res, 404, "no such upload");
      return;
    case Status::Code::kConflict:
      Fail(res, 409, s.message());
      return;
    case Status::Code::kAborted:
      Fail(res, 423, "the upload is being written by another request");
      return;
    case Status::Code::kFull:
      Fail(res, 413, s.message());
      return;
    case Status::Code::kInvalidArgument:
      Fail(res, 400, s.message());
      return;
    case Status::Code::kBusy:
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout:
      res.set_header("Retry-After", "5");
      Fail(res, 503, "blob store unavailable; retry");
      return;
    default:
      Fail(res, 500, "blob store error");
  }
}

std::optional<MediaServerImpl::Upload> MediaServerImpl::OwnUpload(const httplib::Request& req,
                                                                  httplib::Response& res,
                                                                  bool allow_expired) {
  std::optional<MediaPrincipal> who = Authenticate(req, res);
  if (!who) return std::nullopt;
  std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  Result<BlobInfo> info = options_.blobs->Stat(id);
  // Someone else's upload (another user's, or another device's of the same user) is answered exactly as an
  // unknown one.
  if (info.ok() && (info->spec.owner != who->user ||
                    (!info->spec.owner_device.empty() && info->spec.owner_device != who->device))) {
    info = Status::NotFound("not the caller's upload");
  }
  if (!info.ok()) {
    StoreError(res, info.status());
    return std::nullopt;
  }
  if (!allow_expired && Expired(*info)) {
    Fail(res, 410, "the upload expired");
    return std::nullopt;
  }
  return Upload{std::move(*who), std::move(info).value()};
}

void MediaServerImpl::SetUploadHeaders(httplib::Response& res, const BlobInfo& info) {
  res.set_header("Upload-Offset", std::to_string(info.offset));
  if (!info.complete && info.spec.expires_at_ms != 0)
    res.set_header("Upload-Expires", HttpDate(info.spec.expires_at_ms));
}

bool MediaServerImpl::ReserveUpload(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string>& ids = uploads_[user];
  uint32_t& reserved = reserved_[user];
  if (ids.size() + reserved >= options_.uploads_per_user_max) {
    // Drop those that finished, were removed or expired since.
    for (auto it = ids.begin(); it != ids.end();) {
      Result<BlobInfo> info = options_.blobs->Stat(*it);
      bool open = info.ok() ? !info->complete && !Expired(*info) : !info.status().IsNotFound();
      it = open ? std::next(it) : ids.erase(it);
    }
  }
  if (ids.size() + reserved >= options_.uploads_per_user_max) return false;
  ++reserved;
  return true;
}

void MediaServerImpl::Post(const httplib::Request& req, httplib::Response& res,
                           const httplib::ContentReader& reader) {
  std::optional<MediaPrincipal> who = Authenticate(req, res);
  if (!who) return LeaveBody(req, res, &reader);
  if (req.has_header("Upload-Defer-Length")) {
    Fail(res, 400, "Upload-Defer-Length is not supported; send Upload-Length");
    return LeaveBody(req, res, &reader);
  }
  uint64_t length = 0;
  if (!ParseU64(req.get_header_value("Upload-Length"), &length)) {
    Fail(res, 400, "missing or bad Upload-Length");
    return LeaveBody(req, res, &reader);
  }
  if (length > options_.upload_bytes_max) {
    Fail(res, 413, "Upload-Length is over Tus-Max-Size (" + std::to_string(options_.upload_bytes_max) + ")");
    return LeaveBody(req, res, &reader);
  }
  BlobSpec spec;
  spec.owner = who->user;
  spec.owner_device = who->device;
  spec.size = length;
  spec.metadata = req.get_header_value("Upload-Metadata");
  std::map<std::string, std::string> metadata;
  if (!ParseMetadata(spec.metadata, &metadata)) {
    Fail(res, 400, "bad Upload-Metadata (want comma-separated `key base64value`)");
    return LeaveBody(req, res, &reader);
  }
  if (auto it = metadata.find("filetype"); it != metadata.end()) spec.content_type = it->second;
  if (auto it = metadata.find("content_type"); it != metadata.end()) spec.content_type = it->second;
  if (auto it = metadata.find("sha256"); it != metadata.end()) {
    spec.sha256 = it->second;
    for (char& c : spec.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!IsSha256Hex(spec.sha256)) {
      Fail(res, 400, "Upload-Metadata sha256 must be 64 hex characters");
      return LeaveBody(req, res, &reader);
    }
  }
  bool with_body = ShapeOf(req).present;
  if (with_body && req.get_header_value("Content-Type") != kOffsetOctetStream) {
    Fail(res, 415, "a creation body needs Content-Type: application/offset+octet-stream");
    return LeaveBody(req, res, &reader);
  }
  if (!ReserveUpload(who->user)) {
    Fail(res, 429,
         "too many unfinished uploads (" + std::to_string(options_.uploads_per_user_max) +
             "); finish or delete some first");
    return LeaveBody(req, res, &reader);
  }
  int64_t now = options_.env->NowMs();
  spec.expires_at_ms = options_.upload_expiry_ms > 0 ? now + options_.upload_expiry_ms : 0;
  Result<BlobInfo> made = options_.blobs->Create(spec, now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --reserved_[who->user];
    if (made.ok() && !made->complete) uploads_[who->user].insert(made->id);
  }
  if (!made.ok()) {
    StoreError(res, made.status());
    return LeaveBody(req, res, &reader);
  }
  Bump(counters_.uploads_created);
  if (made->complete) Bump(counters_.uploads_completed);  // Upload-Length: 0
  Upload upload{std::move(*who), std::move(made).value()};
  std::string location = "/files/" + upload.info.id;
  if (with_body && !AppendBody(req, res, reader, upload, 0)) {
    // The upload exists even though its first chunk failed: say where, so the client may resume it.
    res.set_header("Location", location);
    return;
  }
  res.status = 201;
  res.set_header("Location", location);
  SetUploadHeaders(res, upload.info);
}

void MediaServerImpl::PostToUpload(const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& reader) {
  // tus-js-client's overridePatchMethod (for proxies that drop PATCH) sends POST with this header.
  std::string method = req.get_header_value("X-HTTP-Method-Override");
  if (method == "PATCH") return Patch(req, res, reader);
  if (method == "DELETE") return Delete(req, res, reader);
  Fail(res, 405, "POST goes to /files/; an upload takes PATCH, HEAD or DELETE");
  LeaveBody(req, res, &reader);
}

void MediaServerImpl::Head(const httplib::Request& req, httplib::Response& res) {
  std::optional<Upload> upload = OwnUpload(req, res, /*allow_expired=*/false);
  if (!upload) return;
  res.status = 200;
  SetUploadHeaders(res, upload->info);
  res.set_header("Upload-Length", std::to_string(upload->info.spec.size));
  if (!upload->info.spec.metadata.empty()) res.set_header("Upload-Metadata", upload->info.spec.metadata);
  res.set_header("Cache-Control", "no-store");
}

void MediaServerImpl::Patch(const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader) {
  std::optional<Upload> upload = OwnUpload(req, res, /*allow_expired=*/false);
  if (!upload) return LeaveBody(req, res, &reader);
  if (req.get_header_value("Content-Type") != kOffsetOctetStream) {
    Fail(res, 415, "PATCH needs Content-Type: application/offset+octet-stream");
    return LeaveBody(req, res, &reader);
  }
  uint64_t offset = 0;
  if (!ParseU64(req.get_header_value("Upload-Offset"), &offset)) {
    Fail(res, 400, "missing or bad Upload-Offset");
    return LeaveBody(req, res, &reader);
  }
  if (offset != upload->info.offset) {
    res.set_header("Upload-Offset", std::to_string(upload->info.offset));
    Fail(res, 409,
         "Upload-Offset " + std::to_string(offset) + " is not the upload's offset " +
             std::to_string(upload->info.offset));
    return LeaveBody(req, res, &reader);
  }
  if (!AppendBody(req, res, reader, *upload, offset)) return;
  res.status = 204;
  SetUploadHeaders(res, upload->info);
}

bool MediaServerImpl::AppendBody(const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader, Upload& upload, uint64_t offset) {
  BodyShape shape = ShapeOf(req);
  uint64_t size = upload.info.spec.size;
  if (!shape.chunked && shape.length > size - offset) {
    Fail(res, 413, "the body would pass Upload-Length (" + std::to_string(size) + ")");
    LeaveBody(req, res, &reader);
    return false;
  }
  std::optional<Digest> digest;
  std::string expected;
  if (req.has_header("Upload-Checksum")) {
    std::string header_value = req.get_header_value("Upload-Checksum");
    std::string_view header = header_value;
    size_t space = header.find(' ');
    std::string_view algorithm = header.substr(0, space);
    if (space == std::string_view::npos || !Base64Decode(Trim(header.substr(space + 1)), &expected)) {
      Fail(res, 400, "bad Upload-Checksum (want `sha1 BASE64` or `sha256 BASE64`)");
      LeaveBody(req, res, &reader);
      return false;
    }
    if (algorithm == "sha1") {
      digest.emplace(DigestKind::kSha1);
    } else if (algorithm == "sha256") {
      digest.emplace(DigestKind::kSha256);
    } else {
      Fail(res, 400, "unsupported Upload-Checksum algorithm (Tus-Checksum-Algorithm: sha1,sha256)");
      LeaveBody(req, res, &reader);
      return false;
    }
  }
  // An empty PATCH stores nothing; it answers the offset (also for a complete upload).
  if (!shape.present) return true;
  Result<std::unique_ptr<BlobWriter>> writer = options_.blobs->Append(upload.info.id, offset);
  if (!writer.ok()) {
    if (writer.status().code() == Status::Code::kFailedPrecondition) {
      Fail(res, 409, "the upload is complete");
    } else {
      StoreError(res, writer.status());
    }
    LeaveBody(req, res, &reader);
    return false;
  }
  // Stream the body to the writer piece by piece; nothing counts until Commit.
  Status write_status;
  bool read_all = reader([&](const char* data, size_t n) {
    std::string_view piece(data, n);
    if (digest) digest->Update(piece);
    write_status = (*writer)->Write(piece);
    return write_status.ok();
  });
  if (!write_status.ok()) {
    res.set_header("Connection", "close");  // the rest of the body was not read
    if (write_status.code() == Status::Code::kInvalidArgument) {
      Fail(res, 413, "the body would pass Upload-Length (" + std::to_string(size) + "); chunk discarded");
    } else {
      StoreError(res, write_status);
    }
    return false;
  }
  if (digest) {
    // With a checksum, only a whole, verified chunk counts.
    if (!read_all) {
      Fail(res, 400, "the body ended early; chunk discarded");
      return false;
    }
    if (digest->Final() != expected) {
      Bump(counters_.checksum_mismatches);
      Fail(res, 460, "Upload-Checksum mismatch; chunk discarded");
      return false;
    }
  }
  // Without a checksum, what arrived before a dropped connection is kept (tus), hence the commit either way.
  Result<uint64_t> committed = (*writer)->Commit();
  writer->reset();  // releases the upload's lock before the response is written
  if (!committed.ok()) {
    if (committed.status().code() == Status::Code::kCorruption) {
      Bump(counters_.checksum_mismatches);
      upload.info.offset = 0;
      res.set_header("Upload-Offset", "0");
      Fail(res, 460, "the upload's bytes do not match its sha256 metadata; it was reset to offset 0");
    } else {
      StoreError(res, committed.status());
    }
    return false;
  }
  if (*committed > offset) {
    Bump(counters_.upload_bytes_received, *committed - offset);
    Bump(counters_.chunks);
  }
  upload.info.offset = *committed;
  if (*committed == size) {
    Bump(counters_.uploads_completed);
    upload.info.complete = true;
    Forget(upload.who.user, upload.info.id);
  }
  if (!read_all) {
    Fail(res, 400, "the body ended early; the bytes received were kept");
    return false;
  }
  return true;
}

void MediaServerImpl::Delete(const httplib::Request& req, httplib::Response& res,
                             const httplib::ContentReader& reader) {
  LeaveBody(req, res, &reader);
  std::optional<Upload> upload = OwnUpload(req, res, /*allow_expired=*/true);
  if (!upload) return;
  // A complete blob may be referenced by messages already: termination is for unfinished uploads only. (A
  // PATCH of the same device that completes the upload between this check and Remove is that device racing
  // itself; BlobStore has no remove-if-incomplete.)
  if (upload->info.complete)
    return Fail(res, 409, "the upload is complete; only unfinished uploads are deleted");
  Status s = options_.blobs->Remove(upload->info.id);
  if (!s.ok()) return StoreError(res, s);
  Forget(upload->who.user, upload->info.id);
  res.status = 204;
}

// "bytes=A-B", "bytes=A-" or "bytes=-N" against `size`: the first byte and the length. False when malformed,
// multiple or unsatisfiable.
bool ParseRange(std::string_view header, uint64_t size, uint64_t* first, uint64_t* length) {
  if (header.substr(0, 6) != "bytes=") return false;
  std::string_view spec = Trim(header.substr(6));
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return false;
  std::string_view a = Trim(spec.substr(0, dash)), b = Trim(spec.substr(dash + 1));
  uint64_t x = 0, y = 0;
  if (a.empty()) {
    if (!ParseU64(b, &y) || y == 0 || size == 0) return false;
    *first = size - std::min(y, size);
    *length = size - *first;
    return true;
  }
  if (!ParseU64(a, &x) || x >= size) return false;
  if (b.empty()) {
    y = size - 1;
  } else if (!ParseU64(b, &y) || y < x) {
    return false;
  }
  y = std::min(y, size - 1);
  *first = x;
  *length = y - x + 1;
  return true;
}

void MediaServerImpl::Get(const httplib::Request& req, httplib::Response& res) {
  std::optional<MediaPrincipal> who = Authenticate(req, res);
  if (!who) return;
  std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  Result<BlobInfo> info = options_.blobs->Stat(id);
  // An unknown id, an unfinished blob and one the caller may not read get one response, so that none tells
  // whether the blob exists.
  if (!info.ok() && !info.status().IsNotFound()) return StoreError(res, info.status());
  if (!info.ok() || !info->complete) return Fail(res, 404, "no such blob");
  if (info->spec.owner != who->user) {
    Result<bool> allowed = options_.may_read ? options_.may_read(*who, *info) : Result<bool>(false);
    if (!allowed.ok()) {
      res.set_header("Retry-After", "5");
      return Fail(res, 503, "cannot check access now; retry");
    }
    if (!*allowed) return Fail(res, 404, "no such blob");
  }
  uint64_t size = info->spec.size;
  std::string etag = "\"" + info->sha256 + "\"";
  res.set_header("ETag", etag);
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("Cache-Control", "private, max-age=31536000, immutable");
  // The content type is the uploader's word: never let a browser sniff or run it as a page of this origin.
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Content-Security-Policy", "sandbox");
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  uint64_t first = 0, length = size;
  if (req.has_header("Range")) {
    if (!ParseRange(req.get_header_value("Range"), size, &first, &length)) {
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      return Fail(res, 416, "bad or unsatisfiable Range (one range within the blob, bytes=A-B)");
    }
    res.status = 206;
    res.set_header("Content-Range", "bytes " + std::to_string(first) + "-" +
                                        std::to_string(first + length - 1) + "/" + std::to_string(size));
  } else {
    res.status = 200;
  }
  std::string type = info->spec.content_type.empty() ? "application/octet-stream" : info->spec.content_type;
  std::shared_ptr<BlobStore> blobs = options_.blobs;
  Counters* counters = &counters_;
  res.set_content_provider(static_cast<size_t>(length), type,
                           [blobs, counters, id, first](size_t offset, size_t n, httplib::DataSink& sink) {
                             std::string piece;
                             Status s =
                                 blobs->Read(id, first + offset, std::min(n, kDownloadPieceBytes), &piece);
                             // A failed read (the blob was removed meanwhile) ends the response early; the
                             // client sees it short.
                             if (!s.ok() || piece.empty()) return false;
                             if (!sink.write(piece.data(), piece.size())) return false;
                             Bump(counters->download_bytes_sent, piece.size());
                             return true;
                           });
}

void MediaServerImpl::Page(const httplib::Request& req, httplib::Response& res) {
  if (!options_.pages) return Fail(res, 404, "no such resource");
  HttpPageRequest page_request;
  page_request.path = req.path;
  for (const auto& [name, value] : req.params) page_request.query.emplace_back(name, value);
  page_request.peer_ip = req.remote_addr;
  page_request.host = req.get_header_value("Host");
  page_request.authorization = req.get_header_value("Authorization");
  HttpPage page = options_.pages(page_request);
  // These are the operator's pages, not tus: no other origin may read them.
  res.headers.erase("Access-Control-Allow-Origin");
  res.headers.erase("Access-Control-Expose-Headers");
  res.headers.erase("Tus-Resumable");
  res.status = page.status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  for (const auto& [name, value] : page.headers) res.set_header(name, value);
  res.set_content(std::move(page.body), page.content_type);
}

}  // namespace
}  // namespace media

Result<std::unique_ptr<MediaServer>> MediaServer::Start(MediaServerOptions options, std::string_view host,
                                                        uint16_t port) {
  auto server = std::make_unique<media::MediaServerImpl>(std::move(options));
  OUTPOST_RETURN_IF_ERROR(server->Listen(host, port));
  return std::unique_ptr<MediaServer>(std::move(server));
}

}  // namespace outpost
