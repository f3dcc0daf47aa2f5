// Copyright 2026 The Outpost Authors.
//
// MediaTransport: how a device moves attachment bytes to and from the server (outpost/media_server.h), apart
// from the op stream. The Client's uploader drives it one chunk at a time and keeps the confirmed offset in
// its store, so an upload resumes after a dropped connection or a restart from the server's offset.
//
// Implementations: tus 1.0 over HTTP with libcurl (OpenTusTransport, engine/media/client/tus_transport.h)
// and an in-process one over a BlobStore (tests and the simulator).
//
// Errors follow the engine's taxonomy (docs/design.md): Unavailable, Timeout and Busy are transient (retried
// with backoff); PermissionDenied (401/403), Full (413), InvalidArgument (400) are permanent; NotFound means
// the upload or blob is gone (expired or removed: an upload starts again from zero); Conflict on an append
// means the server holds another offset (ask UploadOffset); Corruption means a checksum mismatch.
//
// Thread safety: every method may be called from any thread; calls may block on the network for up to the
// implementation's timeouts.
#ifndef OUTPOST_MEDIA_TRANSPORT_H_
#define OUTPOST_MEDIA_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/export.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

// Where to send and as whom: the upload endpoint (e.g. "http://host:8080/files/", from ClientOptions or the
// server's Welcome) and the device's token (sent as `Authorization: Bearer TOKEN`).
struct MediaEndpoint {
  std::string url;
  std::string token;
};

struct UploadSpec {
  uint64_t size = 0;
  std::string content_type;
  std::string sha256;    // 64 lowercase hex characters of the whole file
  std::string filename;  // display only
};

class OUTPOST_EXPORT MediaTransport {
 public:
  virtual ~MediaTransport() = default;
  // Makes an upload (tus POST); returns its URL, absolute. Sends no bytes.
  virtual Result<std::string> CreateUpload(const MediaEndpoint& at, const UploadSpec& spec) = 0;
  // The server's offset of an upload (tus HEAD).
  virtual Result<uint64_t> UploadOffset(const MediaEndpoint& at, std::string_view upload_url) = 0;
  // Sends `chunk` at `offset` (tus PATCH with a checksum); returns the server's new offset.
  virtual Result<uint64_t> AppendUpload(const MediaEndpoint& at, std::string_view upload_url, uint64_t offset,
                                        std::string_view chunk) = 0;
  // Removes an unfinished upload (tus DELETE). NotFound when already gone.
  virtual Status TerminateUpload(const MediaEndpoint& at, std::string_view upload_url) = 0;
  // Reads blob `blob_id` from byte `offset` to its end (GET with Range), handing the bytes to `sink` in
  // order; returns the blob's total size. A sink error stops the download and is returned. A nonzero
  // offset at or past the end is InvalidArgument. After a transient error the sink has seen a prefix of
  // the rest: the caller resumes from the count of bytes it took.
  virtual Result<uint64_t> Download(const MediaEndpoint& at, std::string_view blob_id, uint64_t offset,
                                    const std::function<Status(std::string_view bytes)>& sink) = 0;
};

// The blob id of an upload URL: its last path segment. Empty when the URL has none that IsValidBlobId
// (outpost/blob_store.h) accepts.
OUTPOST_EXPORT std::string BlobIdOfUploadUrl(std::string_view upload_url);

}  // namespace outpost

#endif  // OUTPOST_MEDIA_TRANSPORT_H_
