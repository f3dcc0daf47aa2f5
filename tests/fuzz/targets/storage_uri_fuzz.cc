// Copyright 2026 The Outpost Authors.
//
// Fuzz target: storage URI parsing (engine/storage/storage_uri.cc), what OpenStorage makes of a URI from a
// config file or a command line. Properties: never crashes; a URI that parses has a known scheme, a
// location without '?', a non-empty location for the file backends and valid options; a URI that does not
// parse makes OpenStorage fail with the same status (and open nothing); a private `memory:` URI opens.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/targets/fuzz_check.h"
#include "outpost/storage.h"
#include "storage/storage_uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string uri(reinterpret_cast<const char*>(data), size);
  outpost::StorageOptions options;
  options.spaces = {"a", "b"};
  auto parsed = outpost::storage_internal::ParseStorageUri(uri, options);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == outpost::Status::Code::kInvalidArgument,
               "a bad URI is InvalidArgument");
    FUZZ_CHECK(!parsed.status().message().empty(), "the error says why");
    auto opened = outpost::OpenStorage(uri, options);
    FUZZ_CHECK(!opened.ok(), "OpenStorage refuses what ParseStorageUri refuses");
    FUZZ_CHECK(opened.status().ToString() == parsed.status().ToString(), "with the same status");
    return 0;
  }
  const std::string_view scheme = parsed->scheme;
  FUZZ_CHECK(scheme == "memory" || scheme == "lmdb" || scheme == "sqlite" || scheme == "rocksdb", "scheme");
  FUZZ_CHECK(parsed->location.find('?') == std::string_view::npos, "the location stops at '?'");
  FUZZ_CHECK(scheme == "memory" || !parsed->location.empty(), "file backends need a location");
  FUZZ_CHECK(parsed->options.spaces == options.spaces, "the spaces are the caller's");
  FUZZ_CHECK(parsed->options.map_bytes_initial >= 1 &&
                 parsed->options.map_bytes_initial <= parsed->options.map_bytes_max,
             "map sizes are valid");
  if (scheme == "memory" && parsed->location.empty()) {
    auto opened = outpost::OpenStorage(uri, options);
    FUZZ_CHECK(opened.ok(), "a private memory store opens");
    FUZZ_CHECK((*opened)->uri() == uri, "the store keeps its URI");
  }
  return 0;
}
