// Copyright 2026 The Outpost Authors.
//
// The device side of uploads: MediaTransport (outpost/media_transport.h) as tus 1.0.0 over HTTP(S) with
// libcurl (the protocol: https://tus.io/protocols/resumable-upload). Every request carries the header
// `Tus-Resumable: 1.0.0` and, when the endpoint has a token, `Authorization: Bearer TOKEN`.
//
//   CreateUpload     POST {endpoint} with Upload-Length and Upload-Metadata (filename, filetype, sha256;
//                    values base64, empty ones left out) → 201 + Location, resolved against the endpoint
//                    when relative.
//   UploadOffset     HEAD {upload} → 200/204 + Upload-Offset.
//   AppendUpload     PATCH {upload} with Upload-Offset, Content-Type application/offset+octet-stream and
//                    Upload-Checksum "sha1 BASE64" (tus's checksum extension requires every server that
//                    supports it to know sha1; a server without the extension ignores the header) → 204 +
//                    Upload-Offset, which must lie in [offset, offset + chunk size] (a server may keep a
//                    prefix of a chunk).
//   TerminateUpload  DELETE {upload} → 204.
//   Download         GET {endpoint}/{blob_id}, with `Range: bytes=OFFSET-` when offset > 0 → 206 whose
//                    Content-Range starts at OFFSET (its total is the blob's size), or 200. A 200 to a
//                    ranged request means the server ignored Range: the first OFFSET bytes are read and
//                    dropped (not handed to the sink), so a resume still works against such a server at the
//                    cost of the skipped bytes; the size returned is then the length of the whole answer. A
//                    nonzero offset at or past the end is InvalidArgument (416, or a 200 no longer than the
//                    offset). When the connection drops midway the sink has seen a prefix of the rest; the
//                    caller resumes from its own count.
//
// Status mapping (the taxonomy of outpost/media_transport.h):
//   no connection (refused, reset, DNS failure, dropped midway)   Unavailable (transient)
//   connect timeout, or a transfer stalled for low_speed_timeout   Timeout (transient)
//   5xx, 423 Locked, 429 Too Many Requests                         Busy (transient; Retry-After is not read)
//   401                                                            PermissionDenied ("authentication failed")
//   403                                                            PermissionDenied
//   404, 410                                                       NotFound
//   409                                                            Conflict (the caller asks UploadOffset)
//   413                                                            Full
//   460                                                            Corruption ("checksum mismatch")
//   400, 412, 415 and any other 4xx                                InvalidArgument, with the first 200
//                                                                  characters of the server's body
//   an unexpected 1xx/2xx/3xx (redirects are not followed)         Corruption
//   an answer without the headers the protocol needs (no Location
//   on 201, no or unparsable Upload-Offset or Content-Range)       Corruption
//   an answer's headers past 64 KiB, or a non-download body
//   past 64 KiB                                                    Corruption (the transfer is aborted there)
//   bad arguments (URL that is not http(s), blob id, sha256,
//   a token with control characters)                               InvalidArgument, before any request
//   a sink error during Download                                   that error, unchanged
//
// Connections: libcurl easy handles are pooled (at most 8 idle ones are kept, each with its open
// connections). Each call takes one handle from the pool, or makes one, and gives it back afterwards, so a
// chunked upload's PATCHes reuse one kept-alive connection; concurrent calls use distinct handles. Redirects
// are not followed.
//
// Thread safety: every method may be called from any thread at once.
#ifndef OUTPOST_MEDIA_CLIENT_TUS_TRANSPORT_H_
#define OUTPOST_MEDIA_CLIENT_TUS_TRANSPORT_H_

#include <cstdint>
#include <memory>

#include "outpost/media_transport.h"

namespace outpost {

struct TusTransportOptions {
  // Bound on making the TCP (and TLS) connection.
  int64_t connect_timeout_ms = 5000;
  // A transfer that moves no byte for this long is aborted with Timeout: a bound on a stalled server, not on
  // a slow one. libcurl checks it in whole seconds: rounded up, at least 1 s.
  int64_t low_speed_timeout_ms = 30000;
};

// The tus transport; never fails to open (libcurl's global state is set up once per process, on first use).
std::unique_ptr<MediaTransport> OpenTusTransport(TusTransportOptions options = {});

}  // namespace outpost

#endif  // OUTPOST_MEDIA_CLIENT_TUS_TRANSPORT_H_
