// Copyright 2026 The Outpost Authors.
//
// The device's copies of attached files. At submit, the file is copied into ClientOptions::media_dir (named
// by the op id) and hashed on the way, before the transaction that stores the op: the upload then reads a
// file that nobody else changes, so its SHA-256 holds across restarts and a resumed upload never mixes two
// versions of a file; the original may be moved or edited at once. The copy stays after the op is sent (it
// is this device's view of its own attachment) and goes with Discard.
#ifndef OUTPOST_SRC_CLIENT_ATTACHMENTS_H_
#define OUTPOST_SRC_CLIENT_ATTACHMENTS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "outpost/client.h"
#include "outpost/ids.h"
#include "outpost/media_transport.h"
#include "outpost/result.h"

namespace outpost {

struct PreparedAttachment {
  bool present = false;
  std::string path;  // the copy
  uint64_t size = 0;
  std::string sha256, content_type, filename;
};

// Copies `source` to MEDIA_DIR/<op id> (through a temporary name, fsynced, then renamed) and hashes it.
// InvalidArgument: not a regular file, or larger than `bytes_max`; NotFound / IOError from the file system.
Result<PreparedAttachment> CopyAttachment(const AttachmentSource& source, const std::string& media_dir,
                                          const OpId& id, uint64_t bytes_max);
// Removes a copy; a missing one is fine.
void RemoveAttachmentCopy(const std::string& path);
// Reads up to `n` bytes at `offset` of a copy into `out` (replaced). NotFound when the copy is gone.
Status ReadAttachment(const std::string& path, uint64_t offset, size_t n, std::string* out);

// Downloads blob `blob_id` (`size` bytes, `sha256`) to `path` through `media`: appends to `path`.part from
// its current length (a resumed download), checks the SHA-256 of the whole, then renames it into place. A
// mismatch removes the partial file (Corruption).
Status DownloadBlob(MediaTransport& media, const MediaEndpoint& at, const std::string& blob_id, uint64_t size,
                    const std::string& sha256, const std::string& path,
                    const std::function<void(uint64_t done, uint64_t total)>& progress);

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_ATTACHMENTS_H_
