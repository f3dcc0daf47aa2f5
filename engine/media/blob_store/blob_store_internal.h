// Copyright 2026 The Outpost Authors.
//
// What the blob store implementations share: their factories (OpenBlobStore picks one), id making and the
// checks of a BlobSpec that every implementation applies the same way.
#ifndef OUTPOST_MEDIA_BLOB_STORE_BLOB_STORE_INTERNAL_H_
#define OUTPOST_MEDIA_BLOB_STORE_BLOB_STORE_INTERNAL_H_

#include <memory>
#include <string>

#include "outpost/blob_store.h"

namespace outpost::media {

// Limits on the strings of a BlobSpec (bytes).
inline constexpr size_t kBlobNameBytesMax = 256;       // owner, owner_device, content_type
inline constexpr size_t kBlobMetadataBytesMax = 4096;  // metadata

// A fresh blob id: 16 bytes from getrandom(2), as 32 lowercase hex characters.
std::string NewBlobId();

// InvalidArgument naming the first bad field; Full when spec.size is over options.blob_bytes_max.
Status CheckBlobSpec(const BlobSpec& spec, const BlobStoreOptions& options);

// NotFound for an id that is not one (so a hostile id never reaches a path), else OK.
Status CheckBlobId(std::string_view id);

std::unique_ptr<BlobStore> NewMemoryBlobStore(const BlobStoreOptions& options);
// Makes `dir` (and its parents) when missing. IOError when it cannot.
Result<std::unique_ptr<BlobStore>> NewFsBlobStore(const std::string& dir, const BlobStoreOptions& options);

}  // namespace outpost::media

#endif  // OUTPOST_MEDIA_BLOB_STORE_BLOB_STORE_INTERNAL_H_
