// Copyright 2026 The Outpost Authors.
//
// Checks and helpers that every storage backend shares, so that all of them reject the same inputs with the
// same messages. Internal to engine/storage/.
#ifndef OUTPOST_STORAGE_STORAGE_COMMON_H_
#define OUTPOST_STORAGE_STORAGE_COMMON_H_

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost::storage_internal {

constexpr size_t kValueBytesMax = size_t{1} << 30;
constexpr size_t kSpacesMax = 32;

inline Status CheckKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("storage key is empty (keys are 1 to 511 bytes)");
  if (key.size() > kStorageKeyBytesMax) {
    return Status::InvalidArgument("storage key has " + std::to_string(key.size()) +
                                   " bytes (keys are 1 to 511 bytes)");
  }
  return Status::OK();
}

inline Status CheckValue(std::string_view value) {
  if (value.size() > kValueBytesMax) {
    return Status::InvalidArgument("storage value has " + std::to_string(value.size()) +
                                   " bytes (values are at most 1 GiB)");
  }
  return Status::OK();
}

inline Status CheckSpace(SpaceId space, size_t space_count) {
  if (space >= space_count) {
    return Status::InvalidArgument("no storage space " + std::to_string(space) + " (the store has " +
                                   std::to_string(space_count) + ")");
  }
  return Status::OK();
}

inline Status TxnFinishedError() {
  return Status::FailedPrecondition("storage write txn already committed or aborted");
}

// A write txn must end on the thread that began it: LMDB's writer lock is a mutex that only its owner may
// unlock, and a foreign unlock fails silently, leaving every later writer blocked forever. A loud stop is
// kinder than that hang, and the memory backend enforces the same rule so code tested on it runs on LMDB.
inline void CheckWriterThread(std::thread::id owner) {
  if (owner != std::this_thread::get_id()) {
    std::fprintf(stderr, "outpost: a storage WriteTxn was committed or destroyed on another thread than the "
                         "one that began it\n");
    std::abort();
  }
}

// The cursor a txn returns when it cannot make a real one (a bad space id, a backend failure).
class ErrorCursor final : public Cursor {
 public:
  explicit ErrorCursor(Status status) : status_(std::move(status)) {}
  void SeekToFirst() override {}
  void SeekToLast() override {}
  void Seek(std::string_view) override {}
  void SeekForPrev(std::string_view) override {}
  void Next() override {}
  void Prev() override {}
  bool Valid() const override { return false; }
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  Status status() const override { return status_; }

 private:
  Status status_;
};

}  // namespace outpost::storage_internal

#endif  // OUTPOST_STORAGE_STORAGE_COMMON_H_
