// Copyright 2026 The Outpost Authors.
#include "media/client/tus_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "media/common/digest.h"
#include "outpost/blob_store.h"

namespace outpost {
namespace media {
namespace {

// Bounds on what a server can make us hold: the headers of one answer, and the body of any answer but a
// download's (tus answers carry no body we need beyond an error text).
constexpr size_t kHeaderBytesMax = 64 * 1024;
constexpr size_t kAnswerBodyBytesMax = 64 * 1024;
// How much of a server's error body goes into a Status message.
constexpr size_t kBodyInMessageMax = 200;
// Idle easy handles kept for reuse (each keeps its connections alive); more concurrent calls make more.
constexpr size_t kIdleHandlesMax = 8;

constexpr const char* kTusResumable = "Tus-Resumable: 1.0.0";

// curl_global_init is not thread-safe and must run once before any other libcurl call.
CURLcode GlobalInit() {
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return code;
}

bool ParseU64(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A server's text, made safe and short for a Status message.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kBodyInMessageMax)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  }
  out = std::string(Trim(out));
  if (body.size() > kBodyInMessageMax) out += "...";
  return out;
}

bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// What a Download's body goes to: checked headers first, then the bytes past the skipped prefix.
struct DownloadState {
  uint64_t offset = 0;
  const std::function<Status(std::string_view)>* sink = nullptr;
  bool started = false;   // the headers were checked and the body is the blob's
  uint64_t to_skip = 0;   // bytes of a 200 to a ranged request still to drop
  uint64_t received = 0;  // body bytes of the answer (skipped ones included)
  uint64_t total = 0;     // the blob's size from Content-Range (206)
  Status error;           // why the body was refused: a sink error or a bad answer
};

// One request and its answer, shared with libcurl's callbacks.
struct Exchange {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercase; the last answer's only
  size_t header_bytes = 0;                                   // over every answer (1xx included)
  bool too_large = false;
  std::string body;                   // capped at kAnswerBodyBytesMax
  DownloadState* download = nullptr;  // set for a Download: 2xx bodies go there

  std::optional<std::string_view> Header(std::string_view lower_name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      if (it->first == lower_name) return std::string_view(it->second);
    }
    return std::nullopt;
  }
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = size * count;
  ex->header_bytes += n;
  if (ex->header_bytes > kHeaderBytesMax) {
    ex->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    // A new answer (after a 100 Continue, say): its headers replace the earlier ones.
    ex->headers.clear();
    ex->status = 0;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      std::string_view rest = line.substr(sp + 1);
      uint64_t code = 0;
      if (rest.size() >= 3 && ParseU64(rest.substr(0, 3), &code)) ex->status = static_cast<long>(code);
    }
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    ex->headers.emplace_back(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  return n;
}

// Checks a download's answer on its first body byte, and sets what to skip.
Status StartDownload(Exchange* ex, DownloadState* dl) {
  if (ex->status == 206) {
    // "bytes START-END/TOTAL"
    std::optional<std::string_view> range = ex->Header("content-range");
    if (!range) return Status::Corruption("download: 206 answer without Content-Range");
    std::string_view r = Trim(*range);
    if (r.substr(0, 6) != "bytes ") return Status::Corruption("download: bad Content-Range: " + Excerpt(r));
    r.remove_prefix(6);
    size_t dash = r.find('-');
    size_t slash = r.find('/');
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t total = 0;
    if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash ||
        !ParseU64(r.substr(0, dash), &start) || !ParseU64(r.substr(dash + 1, slash - dash - 1), &end) ||
        !ParseU64(r.substr(slash + 1), &total) || end < start || end >= total) {
      return Status::Corruption("download: bad Content-Range: " + Excerpt(*range));
    }
    if (start != dl->offset) {
      return Status::Corruption("download: asked from byte " + std::to_string(dl->offset) +
                                ", the server answered from byte " + std::to_string(start));
    }
    dl->total = total;
    dl->to_skip = 0;
  } else {
    // 200: the whole blob, also when Range was sent (the server ignored it).
    dl->to_skip = dl->offset;
  }
  dl->started = true;
  return Status::OK();
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t n = size * count;
  DownloadState* dl = ex->download;
  if (dl != nullptr && (ex->status == 200 || ex->status == 206)) {
    if (!dl->started) {
      dl->error = StartDownload(ex, dl);
      if (!dl->error.ok()) return 0;
    }
    std::string_view bytes(data, n);
    dl->received += n;
    if (dl->to_skip > 0) {
      size_t skip = static_cast<size_t>(std::min<uint64_t>(dl->to_skip, bytes.size()));
      dl->to_skip -= skip;
      bytes.remove_prefix(skip);
    }
    if (!bytes.empty()) {
      dl->error = (*dl->sink)(bytes);
      if (!dl->error.ok()) return 0;
    }
    return n;
  }
  if (ex->body.size() + n > kAnswerBodyBytesMax) {
    ex->too_large = true;
    return 0;
  }
  ex->body.append(data, n);
  return n;
}

Status FromCurl(CURLcode code, const char* errbuf) {
  std::string what = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Timeout("tus: " + what);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Status::Unavailable("tus: " + what);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument("tus: " + what);
    default:
      return Status::IOError("tus: " + what);
  }
}

// The Status of an answer the call did not expect (anything but its success code).
Status FromHttp(long status, const std::string& body, std::string_view what) {
  std::string prefix = "tus " + std::string(what) + ": HTTP " + std::to_string(status);
  std::string text = Excerpt(body);
  if (!text.empty()) prefix += ": " + text;
  if (status >= 500 || status == 423 || status == 429) return Status::Busy(prefix);
  switch (status) {
    case 401:
      return Status::PermissionDenied("tus " + std::string(what) + ": authentication failed (HTTP 401)");
    case 403:
      return Status::PermissionDenied(prefix);
    case 404:
    case 410:
      return Status::NotFound(prefix);
    case 409:
      return Status::Conflict(prefix);
    case 413:
      return Status::Full(prefix);
    case 460:
      return Status::Corruption("tus " + std::string(what) + ": checksum mismatch (HTTP 460)");
    default:
      break;
  }
  if (status >= 400) return Status::InvalidArgument(prefix);
  return Status::Corruption(prefix + " (unexpected answer)");
}

Result<uint64_t> UploadOffsetOf(const Exchange& ex, std::string_view what) {
  std::optional<std::string_view> value = ex.Header("upload-offset");
  uint64_t offset = 0;
  if (!value || !ParseU64(*value, &offset)) {
    return Status::Corruption("tus " + std::string(what) + ": answer without a valid Upload-Offset");
  }
  return offset;
}

// An http(s) URL (curl's parser), or InvalidArgument. `base`, when given, resolves a relative `url`.
// scheme://host:port of an absolute URL (the default port filled in); empty when it is not one.
std::string Origin(const std::string& url) {
  CURLU* h = curl_url();
  if (h == nullptr) return {};
  std::string out;
  char *scheme = nullptr, *host = nullptr, *port = nullptr;
  if (curl_url_set(h, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    out = std::string(scheme) + "://" + host + ":" + port;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(h);
  return out;
}

// The device's token goes only to the endpoint's server: an upload URL elsewhere (a Location rewritten by a
// proxy or forged on the way, or an upload begun before the server moved its endpoint) is not used.
Status CheckSameServer(const std::string& url, const std::string& endpoint) {
  std::string a = Origin(url);
  if (!a.empty() && a == Origin(endpoint)) return Status::OK();
  return Status::NotFound("tus: upload URL " + Excerpt(url) + " is not on the endpoint's server " +
                          Excerpt(endpoint));
}

Result<std::string> NormalizeUrl(std::string_view url, std::string_view base = {}) {
  if (url.empty() || HasControlChars(url) || HasControlChars(base)) {
    return Status::InvalidArgument("tus: bad URL \"" + Excerpt(url) + "\"");
  }
  CURLU* h = curl_url();
  if (h == nullptr) return Status::IOError("tus: out of memory");
  std::string out;
  Status status;
  if (!base.empty() && curl_url_set(h, CURLUPART_URL, std::string(base).c_str(), 0) != CURLUE_OK) {
    status = Status::InvalidArgument("tus: bad endpoint URL \"" + Excerpt(base) + "\"");
  } else if (curl_url_set(h, CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK) {
    status = Status::InvalidArgument("tus: bad URL \"" + Excerpt(url) + "\"");
  } else {
    char* scheme = nullptr;
    char* full = nullptr;
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (std::string_view(scheme) != "http" && std::string_view(scheme) != "https")) {
      status = Status::InvalidArgument("tus: not an http(s) URL: \"" + Excerpt(url) + "\"");
    } else if (curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK) {
      status = Status::InvalidArgument("tus: bad URL \"" + Excerpt(url) + "\"");
    } else {
      out = full;
    }
    curl_free(scheme);
    curl_free(full);
  }
  curl_url_cleanup(h);
  if (!status.ok()) return status;
  return out;
}

class HandlePool {
 public:
  HandlePool() = default;
  ~HandlePool() {
    MutexLock lock(&mu_);
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }
  HandlePool(const HandlePool&) = delete;
  HandlePool& operator=(const HandlePool&) = delete;

  // A handle with default options (its connection cache kept), or nullptr when libcurl cannot make one.
  CURL* Take() OUTPOST_EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void Give(CURL* h) OUTPOST_EXCLUDES(mu_) {
    // Reset keeps the handle's live connections and DNS cache, drops every option.
    curl_easy_reset(h);
    {
      MutexLock lock(&mu_);
      if (idle_.size() < kIdleHandlesMax) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

 private:
  Mutex mu_;
  std::vector<CURL*> idle_ OUTPOST_GUARDED_BY(mu_);
};

struct Request {
  enum class Method { kPost, kHead, kPatch, kDelete, kGet };
  Method method = Method::kGet;
  std::string url;
  std::vector<std::string> headers;  // besides Tus-Resumable and Authorization
  std::string_view body;             // POST and PATCH; not copied
};

class TusTransport final : public MediaTransport {
 public:
  explicit TusTransport(TusTransportOptions options) : options_(options), init_(GlobalInit()) {}

  Result<std::string> CreateUpload(const MediaEndpoint& at, const UploadSpec& spec) override {
    if (!IsSha256Hex(spec.sha256))
      return Status::InvalidArgument("tus: sha256 is not 64 lowercase hex digits");
    OUTPOST_ASSIGN_OR_RETURN(std::string endpoint, NormalizeUrl(at.url));
    std::string metadata;
    for (auto [key, value] : {std::pair<const char*, const std::string*>{"filename", &spec.filename},
                              {"filetype", &spec.content_type},
                              {"sha256", &spec.sha256}}) {
      if (value->empty()) continue;
      if (!metadata.empty()) metadata += ',';
      metadata += std::string(key) + ' ' + Base64Encode(*value);
    }
    Request req{Request::Method::kPost,
                endpoint,
                {"Upload-Length: " + std::to_string(spec.size), "Upload-Metadata: " + metadata},
                {}};
    Exchange ex;
    OUTPOST_RETURN_IF_ERROR(Perform(at, req, &ex));
    if (ex.status != 201) return FromHttp(ex.status, ex.body, "create");
    std::optional<std::string_view> location = ex.Header("location");
    if (!location || location->empty()) return Status::Corruption("tus create: 201 answer without Location");
    Result<std::string> url = NormalizeUrl(*location, endpoint);
    if (!url.ok()) return Status::Corruption("tus create: bad Location: " + url.status().message());
    Status same = CheckSameServer(*url, endpoint);
    if (!same.ok()) return Status::Corruption("tus create: Location on another server: " + same.message());
    return url;
  }

  Result<uint64_t> UploadOffset(const MediaEndpoint& at, std::string_view upload_url) override {
    OUTPOST_ASSIGN_OR_RETURN(std::string url, NormalizeUrl(upload_url));
    OUTPOST_RETURN_IF_ERROR(CheckSameServer(url, std::string(at.url)));
    Request req{Request::Method::kHead, url, {}, {}};
    Exchange ex;
    OUTPOST_RETURN_IF_ERROR(Perform(at, req, &ex));
    if (ex.status != 200 && ex.status != 204) return FromHttp(ex.status, ex.body, "offset");
    return UploadOffsetOf(ex, "offset");
  }

  Result<uint64_t> AppendUpload(const MediaEndpoint& at, std::string_view upload_url, uint64_t offset,
                                std::string_view chunk) override {
    OUTPOST_ASSIGN_OR_RETURN(std::string url, NormalizeUrl(upload_url));
    OUTPOST_RETURN_IF_ERROR(CheckSameServer(url, std::string(at.url)));
    Request req{Request::Method::kPatch,
                url,
                {"Content-Type: application/offset+octet-stream", "Upload-Offset: " + std::to_string(offset),
                 "Upload-Checksum: sha1 " + Base64Encode(Sha1(chunk))},
                chunk};
    Exchange ex;
    OUTPOST_RETURN_IF_ERROR(Perform(at, req, &ex));
    if (ex.status != 204 && ex.status != 200) return FromHttp(ex.status, ex.body, "append");
    OUTPOST_ASSIGN_OR_RETURN(uint64_t new_offset, UploadOffsetOf(ex, "append"));
    if (new_offset < offset || new_offset - offset > chunk.size()) {
      return Status::Corruption("tus append: sent " + std::to_string(chunk.size()) + " bytes at " +
                                std::to_string(offset) + ", the server answered offset " +
                                std::to_string(new_offset));
    }
    return new_offset;
  }

  Status TerminateUpload(const MediaEndpoint& at, std::string_view upload_url) override {
    OUTPOST_ASSIGN_OR_RETURN(std::string url, NormalizeUrl(upload_url));
    OUTPOST_RETURN_IF_ERROR(CheckSameServer(url, std::string(at.url)));
    Request req{Request::Method::kDelete, url, {}, {}};
    Exchange ex;
    OUTPOST_RETURN_IF_ERROR(Perform(at, req, &ex));
    if (ex.status != 204 && ex.status != 200) return FromHttp(ex.status, ex.body, "terminate");
    return Status::OK();
  }

  Result<uint64_t> Download(const MediaEndpoint& at, std::string_view blob_id, uint64_t offset,
                            const std::function<Status(std::string_view bytes)>& sink) override {
    if (!IsValidBlobId(blob_id)) return Status::InvalidArgument("tus download: bad blob id");
    if (!sink) return Status::InvalidArgument("tus download: no sink");
    OUTPOST_ASSIGN_OR_RETURN(std::string endpoint, NormalizeUrl(at.url));
    if (endpoint.back() != '/') endpoint += '/';
    Request req{Request::Method::kGet, endpoint + std::string(blob_id), {}, {}};
    if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
    DownloadState dl;
    dl.offset = offset;
    dl.sink = &sink;
    Exchange ex;
    ex.download = &dl;
    Status status = Perform(at, req, &ex);
    if (!dl.error.ok()) return dl.error;  // a sink error or a bad answer stopped the transfer
    OUTPOST_RETURN_IF_ERROR(status);
    if (ex.status == 416) {
      return Status::InvalidArgument("tus download: offset " + std::to_string(offset) + " is past the end");
    }
    if (ex.status != 200 && ex.status != 206) return FromHttp(ex.status, ex.body, "download");
    if (!dl.started) {
      // An empty body: the callback never ran. Only a 200 of an empty blob from byte 0 is whole.
      dl.error = StartDownload(&ex, &dl);
      if (!dl.error.ok()) return dl.error;
    }
    if (ex.status == 206) {
      if (dl.offset + dl.received != dl.total) {
        return Status::Corruption("tus download: the server sent " + std::to_string(dl.received) +
                                  " bytes from " + std::to_string(offset) + " of " +
                                  std::to_string(dl.total));
      }
      return dl.total;
    }
    if (dl.to_skip > 0 || (offset > 0 && dl.received == offset)) {
      // A server that ignored Range sent no byte past the offset: the offset is at or past the end.
      return Status::InvalidArgument("tus download: offset " + std::to_string(offset) +
                                     " is at or past the end (" + std::to_string(dl.received) + " bytes)");
    }
    return dl.received;
  }

 private:
  // Runs one request on a pooled handle. Ok when an answer came (whatever its status); else why not.
  Status Perform(const MediaEndpoint& at, const Request& req, Exchange* ex) {
    if (init_ != CURLE_OK) return Status::IOError(std::string("tus: libcurl: ") + curl_easy_strerror(init_));
    if (HasControlChars(at.token)) return Status::InvalidArgument("tus: the token holds control characters");
    CURL* h = pool_.Take();
    if (h == nullptr) return Status::IOError("tus: libcurl cannot make a handle");
    curl_slist* headers = nullptr;
    auto add = [&headers](const std::string& line) {
      curl_slist* next = curl_slist_append(headers, line.c_str());
      if (next != nullptr) headers = next;
      return next != nullptr;
    };
    bool ok = add(kTusResumable);
    if (!at.token.empty()) ok = ok && add("Authorization: Bearer " + at.token);
    // No "Expect: 100-continue" round trip before a PATCH body.
    ok = ok && add("Expect:");
    for (const std::string& line : req.headers) ok = ok && add(line);
    if (!ok) {
      curl_slist_free_all(headers);
      pool_.Give(h);
      return Status::IOError("tus: out of memory");
    }

    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(options_.connect_timeout_ms, 1)));
    long stall_s = static_cast<long>(std::max<int64_t>((options_.low_speed_timeout_ms + 999) / 1000, 1));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, ex);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ex);
    switch (req.method) {
      case Request::Method::kGet:
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        break;
      case Request::Method::kHead:
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        break;
      case Request::Method::kDelete:
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
      case Request::Method::kPost:
      case Request::Method::kPatch:
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        // The caller's bytes, sent from where they are (POSTFIELDS does not copy).
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.empty() ? "" : req.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        if (req.method == Request::Method::kPatch) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
        break;
    }
    CURLcode code = curl_easy_perform(h);
    curl_slist_free_all(headers);
    pool_.Give(h);
    if (ex->too_large) return Status::Corruption("tus: the server's answer exceeds 64 KiB");
    if (code != CURLE_OK) return FromCurl(code, errbuf);
    if (ex->status == 0) return Status::Corruption("tus: an answer without an HTTP status line");
    return Status::OK();
  }

  const TusTransportOptions options_;
  const CURLcode init_;
  HandlePool pool_;
};

}  // namespace
}  // namespace media

std::unique_ptr<MediaTransport> OpenTusTransport(TusTransportOptions options) {
  return std::make_unique<media::TusTransport>(options);
}

}  // namespace outpost
