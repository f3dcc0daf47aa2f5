// Copyright 2026 The Outpost Authors.
//
// OpenBlobStore and what every implementation shares: ids, spec checks.
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "media/blob_store/blob_store_internal.h"
#include "media/common/digest.h"

namespace outpost {

Result<std::unique_ptr<BlobStore>> OpenBlobStore(std::string_view uri, const BlobStoreOptions& options) {
  // `memory:` may carry a name for readability in logs; every call still makes a new, unshared store.
  if (uri.substr(0, 7) == "memory:") return media::NewMemoryBlobStore(options);
  if (uri.substr(0, 5) == "file:") {
    std::string dir(uri.substr(5));
    if (dir.empty()) return Status::InvalidArgument("blob store URI file: needs a directory");
    return media::NewFsBlobStore(dir, options);
  }
  return Status::InvalidArgument("unknown blob store URI (want memory: or file:DIR): " + std::string(uri));
}

namespace media {

std::string NewBlobId() {
  // Unguessable: a blob id is a capability-like name, so it comes from the kernel's CSPRNG, not from a
  // seeded generator (std::random_device gives no such promise).
  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No randomness means no safe ids; there is no sane fallback.
      std::fprintf(stderr, "outpost: getrandom failed: %s\n", std::strerror(errno));
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return ToHex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

Status CheckBlobSpec(const BlobSpec& spec, const BlobStoreOptions& options) {
  if (spec.owner.size() > kBlobNameBytesMax) return Status::InvalidArgument("blob owner too long");
  if (spec.owner_device.size() > kBlobNameBytesMax)
    return Status::InvalidArgument("blob owner_device too long");
  if (spec.content_type.size() > kBlobNameBytesMax)
    return Status::InvalidArgument("blob content_type too long");
  if (spec.metadata.size() > kBlobMetadataBytesMax) {
    return Status::InvalidArgument("blob metadata over 4 KiB");
  }
  if (!spec.sha256.empty() && !IsSha256Hex(spec.sha256)) {
    return Status::InvalidArgument("blob sha256 is not 64 lowercase hex characters");
  }
  if (spec.expires_at_ms < 0) return Status::InvalidArgument("blob expires_at_ms is negative");
  if (spec.size > options.blob_bytes_max) {
    return Status::Full("blob size " + std::to_string(spec.size) + " over the store's limit of " +
                        std::to_string(options.blob_bytes_max) + " bytes");
  }
  return Status::OK();
}

Status CheckBlobId(std::string_view id) {
  if (!IsValidBlobId(id)) return Status::NotFound("not a blob id");
  return Status::OK();
}

}  // namespace media
}  // namespace outpost
