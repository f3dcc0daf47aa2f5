// Copyright 2026 The Outpost Authors.
//
// A MediaTransport that calls a BlobStore directly, with the media server's rules (who owns an upload, who
// may read a blob) and no HTTP: for tests and the simulator, where uploads must be deterministic and their
// faults injected at will. URLs are "<endpoint><blob id>" like the HTTP server's.
#ifndef OUTPOST_MEDIA_INPROC_INPROC_MEDIA_TRANSPORT_H_
#define OUTPOST_MEDIA_INPROC_INPROC_MEDIA_TRANSPORT_H_

#include <functional>
#include <memory>
#include <string_view>

#include "outpost/blob_store.h"
#include "outpost/media_server.h"
#include "outpost/media_transport.h"

namespace outpost {

struct InprocMediaOptions {
  // The principal a token stands for; PermissionDenied("authentication failed...") to refuse. Default: the
  // token is the user's name.
  std::function<Result<MediaPrincipal>(std::string_view token)> authenticate;
  // Who besides the owner may download a blob (MediaServerOptions::may_read). Default: nobody.
  std::function<Result<bool>(const MediaPrincipal& who, const BlobInfo& blob)> may_read;
  // Faults, for tests: called before each request ("create", "head", "append", "delete", "download"); an
  // error is returned instead of doing it.
  std::function<Status(std::string_view request)> fail_before;
  // Called after a request did its work; an error is returned in place of its answer (the answer was lost:
  // an append's bytes are stored all the same).
  std::function<Status(std::string_view request)> fail_after;
  int64_t upload_expiry_ms = 0;  // 0: never
  Env* env = nullptr;            // clock for expiry
};

std::unique_ptr<MediaTransport> OpenInprocMediaTransport(std::shared_ptr<BlobStore> blobs,
                                                         InprocMediaOptions options = {});

}  // namespace outpost

#endif  // OUTPOST_MEDIA_INPROC_INPROC_MEDIA_TRANSPORT_H_
