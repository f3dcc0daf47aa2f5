// Copyright 2026 The Outpost Authors.
//
// The parsing half of OpenStorage, separate so that it can be tested (and fuzzed) without opening anything.
// Internal to engine/storage/; the grammar is at the top of storage_uri.cc.
#ifndef OUTPOST_STORAGE_STORAGE_URI_H_
#define OUTPOST_STORAGE_STORAGE_URI_H_

#include <string_view>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost::storage_internal {

struct ParsedStorageUri {
  std::string_view scheme;    // memory, lmdb, sqlite or rocksdb
  std::string_view location;  // NAME, DIR or FILE: a view into the parsed URI; non-empty but for memory
  StorageOptions options;     // the caller's, with the URI's parameters applied, validated
};

// InvalidArgument naming the problem for an unknown scheme, a missing DIR/FILE, an unknown parameter or
// options that fail validation. Opens nothing and touches no file.
Result<ParsedStorageUri> ParseStorageUri(std::string_view uri, const StorageOptions& options);

}  // namespace outpost::storage_internal

#endif  // OUTPOST_STORAGE_STORAGE_URI_H_
