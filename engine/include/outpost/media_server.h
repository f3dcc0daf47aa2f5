// Copyright 2026 The Outpost Authors.
//
// MediaServer: the HTTP side of attachments, over a BlobStore (outpost/blob_store.h).
//   - Uploads: tus 1.0.0 at `/files/` (core; creation, creation-with-upload, termination, checksum (sha1,
//     sha256), expiration). POST /files/ makes a blob and answers 201 with `Location: /files/<blob id>`.
//     An upload (HEAD, PATCH, DELETE) belongs to the user and device that made it; any other caller gets the
//     same 404 as for an unknown id. DELETE (termination) is for unfinished uploads only: a complete blob is
//     409, since messages may reference it.
//   - Downloads: GET /files/<blob id> of a complete blob, with Range (206 + Content-Range) so a partial
//     download resumes; allowed to any device of the owner user and to whom `may_read` allows, else 404: an
//     unknown id, an unfinished blob and a refused one get the same response (a blob's existence is not
//     revealed).
// Every request but OPTIONS carries `Authorization: Bearer TOKEN` (401 without a valid one). Bodies stream to
// the store chunk by chunk, never a whole upload in memory. Threads and connections are bounded; a client
// that stalls past the timeouts is dropped (what it sent before stays; it resumes from HEAD's offset).
//
// Thread safety: Start/Stop/port from any thread; the hooks are called from the server's worker threads.
#ifndef OUTPOST_MEDIA_SERVER_H_
#define OUTPOST_MEDIA_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outpost/blob_store.h"
#include "outpost/env.h"
#include "outpost/export.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

// Who made a request (from its bearer token).
struct MediaPrincipal {
  std::string user;
  std::string device;
};

// A GET or HEAD of a path outside /files/, for MediaServerOptions::pages.
struct HttpPageRequest {
  std::string path;                                        // decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded parameters, in order
  std::string peer_ip;                                     // the connection's address ("" when unknown)
  std::string host;                                        // the Host header, as sent
  std::string authorization;                               // the Authorization header, as sent
};

// The answer to an HttpPageRequest. No CORS header is added to it (the tus routes allow any origin; these
// pages allow none), and it is never cached.
struct HttpPage {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct MediaServerOptions {
  std::shared_ptr<BlobStore> blobs;
  Env* env = nullptr;  // nullptr: SystemEnv(); clock for expiry
  // The principal a bearer token belongs to; PermissionDenied (401) when unknown; any other error is 503.
  std::function<Result<MediaPrincipal>(std::string_view token)> authenticate;
  // Whether `who` may download `blob` (its owner always may; this is asked for anyone else). Default (empty):
  // only the owner. Any error is 503 (with Retry-After), never a grant.
  std::function<Result<bool>(const MediaPrincipal& who, const BlobInfo& blob)> may_read;

  // Other GET and HEAD paths (outpostd's /metrics and status page share this listener): called on a worker
  // thread for a GET or HEAD of any path outside /files/, before and without any bearer-token check (the
  // hook decides who may see what). Empty: such a path is 404.
  std::function<HttpPage(const HttpPageRequest&)> pages;

  uint64_t upload_bytes_max = 1ull << 30;    // Tus-Max-Size; larger: 413
  int64_t upload_expiry_ms = 24 * 3600'000;  // an incomplete upload is removed this long after creation
  uint32_t threads = 8;                      // worker threads (each serves one connection at a time)
  // Open connections, queued for a worker or served; beyond, a new one gets a best-effort 503 and is closed
  // at once. A connection holds its worker for as long as it is kept alive (cpp-httplib's model).
  uint32_t connections_max = 256;
  // Incomplete uploads one user may hold (counted by this server instance since it started); a POST beyond
  // it is 429 with a body saying so. Completed, deleted and expired uploads free their slot.
  uint32_t uploads_per_user_max = 64;
  int64_t read_timeout_ms = 30'000;  // a request (or a body chunk) that stalls this long is dropped
  // A worker serves one connection at a time, so a peer that trickles bytes would hold a worker as long as it
  // liked; these bound what one request may take, whoever sends it (they apply before any token is checked):
  //   - The request line and headers must arrive within header_timeout_ms of the request's first byte (a new
  //     connection also gets at most header_timeout_ms to send that first byte): else 408 (or a close when
  //     the request line is not even whole) and the connection is closed.
  //   - They may total header_bytes_max bytes: beyond, 431 (or a close when the request line alone passes
  //     it) and the connection is closed; nothing past the limit is read into memory.
  //   - Once the headers are in, the body and the response move at least body_bytes_per_second_min on
  //     average over each body_rate_window_ms of time spent waiting for the peer (time the server spends
  //     storing or reading blobs does not count): a window that ends short drops the connection (what an
  //     upload sent before stays; tus resumes from HEAD's offset). So a small body must arrive within one
  //     window, and a download reader slower than the minimum is cut off. 0: no minimum (read_timeout_ms
  //     and write_timeout_ms still apply to each wait).
  //   - One client IP (the exact address) may hold connections_per_ip_max open connections (queued or
  //     served); beyond, a new one gets the same 503 as over connections_max. Note that a client within its
  //     share may still occupy every worker with uploads at the minimum speed; threads bounds that cost.
  int64_t header_timeout_ms = 10'000;
  uint32_t header_bytes_max = 64 << 10;
  uint64_t body_bytes_per_second_min = 1024;
  int64_t body_rate_window_ms = 30'000;
  uint32_t connections_per_ip_max = 32;
  int64_t write_timeout_ms = 30'000;
  uint32_t keep_alive_requests_max = 100;  // requests on one connection before the server closes it
  int64_t keep_alive_timeout_ms =
      5'000;                            // an idle kept-alive connection is closed (whole seconds, rounded up)
  int64_t expire_interval_ms = 60'000;  // how often expired uploads are removed
};

// What a MediaServer has done since it started (monotonic counters; Stats() reads them without a lock, so
// fields read together may be a request apart).
struct MediaServerStats {
  uint64_t uploads_created = 0;    // POSTs that made an upload
  uint64_t uploads_completed = 0;  // uploads whose last byte was committed (or created with length 0)
  // Bytes committed to the blob store by request bodies (PATCH, and POST with creation-with-upload). A body
  // cut off mid-way counts what was kept; a discarded chunk (checksum mismatch, too long) counts nothing.
  uint64_t upload_bytes_received = 0;
  uint64_t chunks = 0;               // request bodies (PATCH or creation POST) that committed at least a byte
  uint64_t checksum_mismatches = 0;  // 460s: an Upload-Checksum mismatch, or the whole upload's sha256
  uint64_t downloads = 0;            // GETs answered 200 or 206
  uint64_t download_bytes_sent = 0;  // body bytes of those, as handed to the socket
  // Responses by status (one count per response; 503s of connections over the limit are apart).
  uint64_t refused_auth = 0;    // 401
  uint64_t not_found = 0;       // 404
  uint64_t rejected_other = 0;  // other 4xx
  uint64_t server_errors = 0;   // 5xx
  // Connections over connections_max or connections_per_ip_max (answered 503 and closed).
  uint64_t connections_refused = 0;
};

class OUTPOST_EXPORT MediaServer {
 public:
  // Listens on HOST:PORT (PORT 0: any; port() tells) and serves on background threads.
  static Result<std::unique_ptr<MediaServer>> Start(MediaServerOptions options, std::string_view host,
                                                    uint16_t port);
  virtual ~MediaServer() = default;  // stops
  virtual uint16_t port() const = 0;
  virtual void Stop() = 0;
  // Cheap (relaxed atomic loads): fine to call every second.
  virtual MediaServerStats Stats() const = 0;
};

}  // namespace outpost

#endif  // OUTPOST_MEDIA_SERVER_H_
