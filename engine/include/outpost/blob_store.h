// Copyright 2026 The Outpost Authors.
//
// BlobStore: where the server keeps attachment bytes (photos, videos, files), apart from ops. A blob is made
// by an upload of known size that grows by appends at its current offset (tus 1.0 semantics: a dropped
// connection keeps what was stored, and the uploader resumes from Stat's offset). It becomes readable only
// once complete and verified (its SHA-256 equals the one declared at creation, when one was). Incomplete
// blobs past their expiry are removed by RemoveExpired.
//
//   auto blobs = OpenBlobStore("file:/var/lib/outpost/blobs");
//   auto info = (*blobs)->Create({.owner = "alice", .size = n, .content_type = "image/jpeg"}, now);
//   auto w = (*blobs)->Append(info->id, 0);          // at the current offset, or Conflict
//   (*w)->Write(chunk); ... (*w)->Commit();          // durable; the offset moves only at Commit
//
// Implementations: memory (tests), filesystem (`file:DIR`, the default under outpostd's --data). Several
// outpostd instances on one PostgreSQL database must share one blob store (a shared filesystem path): an
// upload may resume on another instance than the one it started on, and a download may be served by any.
// One conformance suite (tests/conformance/blob_store_conformance_test.cc) runs against every implementation.
//
// Thread safety: every method may be called from any thread. One blob has at most one open writer: Append
// while another writer of the same blob is open is Aborted (tus: the upload is locked).
#ifndef OUTPOST_BLOB_STORE_H_
#define OUTPOST_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/export.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

// Blob ids are made by the store: 32 lowercase hex characters of 16 random bytes, unguessable (a blob id
// alone gives no access; the server checks who may read it).
OUTPOST_EXPORT bool IsValidBlobId(std::string_view id);

struct BlobSpec {
  std::string owner;          // the uploading user
  std::string owner_device;   // and device
  uint64_t size = 0;          // total bytes, known at creation
  std::string content_type;   // as declared (e.g. "image/jpeg"); opaque to the store
  std::string sha256;         // 64 lowercase hex characters of the whole blob, or empty: not checked
  std::string metadata;       // opaque (tus Upload-Metadata as received), at most 4 KiB
  int64_t expires_at_ms = 0;  // an incomplete blob is removed after this (0: never)
};

struct BlobInfo {
  std::string id;
  BlobSpec spec;
  uint64_t offset = 0;    // bytes stored durably
  bool complete = false;  // offset == size and verified: readable
  int64_t created_at_ms = 0;
  std::string sha256;  // of a complete blob: its bytes' SHA-256 (lowercase hex), computed at completion
};

// Appends to one blob. Bytes written are durable and count only after Commit: a writer destroyed without
// Commit (or after a Commit, with more bytes written) leaves the offset where its last Commit put it, and the
// uncommitted bytes are dropped (a server relies on this to discard a tus chunk whose checksum fails). A
// writer may Commit several times. Commit of the last byte verifies the blob (SHA-256) and makes it
// complete, or fails with Corruption("sha256 mismatch") and resets the blob to offset 0; after that the
// writer is spent (FailedPrecondition). A writer must not outlive its store.
class OUTPOST_EXPORT BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // InvalidArgument when the bytes would pass the blob's size.
  virtual Status Write(std::string_view bytes) = 0;
  // Makes the bytes written durable and returns the new offset.
  virtual Result<uint64_t> Commit() = 0;
};

class OUTPOST_EXPORT BlobStore {
 public:
  virtual ~BlobStore() = default;
  // A new, empty blob. InvalidArgument for a bad spec; Full when spec.size is over blob_bytes_max. A blob of
  // size 0 is complete at once (InvalidArgument when spec.sha256 is not the empty input's).
  virtual Result<BlobInfo> Create(const BlobSpec& spec, int64_t now_ms) = 0;
  // NotFound for an unknown or removed blob, and for a string that is not a blob id (IsValidBlobId).
  virtual Result<BlobInfo> Stat(std::string_view id) = 0;
  // A writer at `offset`, which must be the blob's offset (else Conflict, naming the offset). NotFound;
  // FailedPrecondition when the blob is complete; Aborted when another writer is open.
  virtual Result<std::unique_ptr<BlobWriter>> Append(std::string_view id, uint64_t offset) = 0;
  // Up to `n` bytes at `offset` of a complete blob into `out` (replaced). NotFound for an unknown or
  // incomplete blob; InvalidArgument for an offset past the end.
  virtual Status Read(std::string_view id, uint64_t offset, size_t n, std::string* out) = 0;
  // Removes a blob (tus termination). NotFound when unknown; Aborted while a writer of it is open.
  virtual Status Remove(std::string_view id) = 0;
  // Removes incomplete blobs whose expires_at_ms is set and <= now, except those with an open writer;
  // returns how many.
  virtual Result<uint64_t> RemoveExpired(int64_t now_ms) = 0;
};

struct BlobStoreOptions {
  uint64_t blob_bytes_max = 1ull << 32;  // 4 GiB; a larger Create is Full
  bool sync = true;                      // fsync at Commit
};

// `memory:` (one per call, nothing shared) or `file:DIR` (made if missing). InvalidArgument otherwise.
OUTPOST_EXPORT Result<std::unique_ptr<BlobStore>> OpenBlobStore(std::string_view uri,
                                                                const BlobStoreOptions& options = {});

}  // namespace outpost

#endif  // OUTPOST_BLOB_STORE_H_
