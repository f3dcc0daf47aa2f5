// Copyright 2026 The Outpost Authors.
//
// The memory backend: a multi-version store in RAM with the full Storage contract (snapshot reads that never
// wait for the writer, one writer at a time, atomic commits). Nothing survives the process.
//
// `memory:` stores are private to their handle. `memory:NAME` stores live in a process-wide registry that
// keeps them alive after their last handle closes, so reopening NAME sees every committed write: simulations
// "restart" a device by closing and reopening it. Handles opened on the same NAME at the same time share
// one store (one writer across all of them). Spaces are matched by name, as in LMDB, so a reopen may list
// more spaces than before.
#ifndef OUTPOST_STORAGE_MEMORY_MEMORY_STORAGE_H_
#define OUTPOST_STORAGE_MEMORY_MEMORY_STORAGE_H_

#include <memory>
#include <string>
#include <string_view>

#include "outpost/result.h"
#include "outpost/storage.h"

namespace outpost {

// Opens the private store (empty `name`) or the named process-wide one, creating it when absent. `uri` is
// what Storage::uri() reports. `options` must already be validated (OpenStorage does).
Result<std::unique_ptr<Storage>> OpenMemoryStorage(std::string uri, std::string_view name,
                                                   const StorageOptions& options);

}  // namespace outpost

#endif  // OUTPOST_STORAGE_MEMORY_MEMORY_STORAGE_H_
