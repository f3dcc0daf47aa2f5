// Copyright 2026 The Outpost Authors.
#include "storage/store_format.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "outpost/membership.h"
#include "storage/storage_uri.h"

namespace outpost {

Result<uint64_t> ReadStoreFormat(ReadTxn& txn, SpaceId meta, const StoreFormat& format,
                                 std::string_view uri) {
  std::string v;
  Status st = txn.Get(meta, format.key, &v);
  if (st.IsNotFound()) return uint64_t{0};
  OUTPOST_RETURN_IF_ERROR(st);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n == 0) {
    return Status::Corruption(format.what + " " + std::string(uri) + " has an unreadable format number (" +
                              QuoteForMessage(v) + ")");
  }
  return n;
}

Status NewerFormatError(const StoreFormat& format, std::string_view uri, uint64_t found) {
  return Status::FailedPrecondition(format.what + " " + std::string(uri) + " is format " +
                                    std::to_string(found) + ", newer than this build reads (" +
                                    std::to_string(format.current) +
                                    "), and was left untouched: " + format.newer_hint);
}

namespace {

// Whether the store may exist, so that a read-only look is worth making: not for a private memory store
// (nothing to look at) or a path that is not there (a new store).
bool MayExist(std::string_view uri, const StorageOptions& options) {
  auto parsed = storage_internal::ParseStorageUri(uri, options);
  if (!parsed.ok()) return false;  // the read-write open says what is wrong with it
  if (parsed->scheme == "memory") return !parsed->location.empty();
  struct stat st;
  return ::stat(std::string(parsed->location).c_str(), &st) == 0;
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenFormattedStorage(std::string_view uri, const StorageOptions& options,
                                                      const StoreFormat& format,
                                                      const StorageOpener& opener) {
  auto open = [&](const StorageOptions& o) { return opener ? opener(uri, o) : OpenStorage(uri, o); };
  SpaceId meta = 0;
  {
    auto it = std::find(options.spaces.begin(), options.spaces.end(), format.meta_space);
    if (it == options.spaces.end())
      return Status::InvalidArgument("the store's spaces do not include " + format.meta_space);
    meta = static_cast<SpaceId>(it - options.spaces.begin());
  }
  if (!options.read_only && MayExist(uri, options)) {
    StorageOptions look = options;
    look.read_only = true;
    look.spaces = {format.meta_space};
    // The read-only handle is closed before the read-write open: an lmdb store is open once per process.
    auto storage = open(look);
    if (storage.ok()) {
      OUTPOST_ASSIGN_OR_RETURN(auto txn, (*storage)->BeginRead());
      OUTPOST_ASSIGN_OR_RETURN(uint64_t found, ReadStoreFormat(*txn, 0, format, uri));
      if (found > format.current) return NewerFormatError(format, uri, found);
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(auto storage, open(options));
  // Read again through the handle that will write: a store may have changed since the look (or had none).
  {
    OUTPOST_ASSIGN_OR_RETURN(auto txn, storage->BeginRead());
    OUTPOST_ASSIGN_OR_RETURN(uint64_t found, ReadStoreFormat(*txn, meta, format, uri));
    if (found > format.current) return NewerFormatError(format, uri, found);
  }
  return storage;
}

}  // namespace outpost
