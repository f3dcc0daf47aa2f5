// Copyright 2026 The Outpost Authors.
//
// FlakyStorage: a Storage whose BeginWrite or Commit fails on demand (the store going away under a server
// or a device), for tests of what a failed transaction leaves behind. The faults are read at each call, so a
// test flips them between steps; not thread-safe beyond what the test's own stepping gives.
#ifndef OUTPOST_TESTS_TESTING_FLAKY_STORAGE_H_
#define OUTPOST_TESTS_TESTING_FLAKY_STORAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "outpost/storage.h"

namespace outpost::harness {

// A store whose next BeginWrite or Commit fails on demand (the server's store going away under it).
class FlakyStorage final : public Storage {
 public:
  struct Faults {
    bool fail_begin = false;
    bool fail_commit = false;
    // When > 0: the write (Put, Insert or Delete) that makes `writes` reach it fails with an IOError, and
    // so do the txn's later calls and its Commit (a store gone mid-transaction). `writes` counts every
    // write of every txn since the test last reset it.
    int64_t fail_write_at = 0;
    int64_t writes = 0;
  };
  FlakyStorage(std::unique_ptr<Storage> inner, Faults* faults) : inner_(std::move(inner)), faults_(faults) {}
  Result<std::unique_ptr<ReadTxn>> BeginRead() override { return inner_->BeginRead(); }
  Result<std::unique_ptr<WriteTxn>> BeginWrite() override {
    if (faults_->fail_begin) return Status::IOError("injected: cannot begin");
    OUTPOST_ASSIGN_OR_RETURN(auto txn, inner_->BeginWrite());
    return std::unique_ptr<WriteTxn>(new Txn(std::move(txn), faults_));
  }
  const std::string& uri() const override { return inner_->uri(); }

 private:
  class Txn final : public WriteTxn {
   public:
    Txn(std::unique_ptr<WriteTxn> inner, Faults* faults) : inner_(std::move(inner)), faults_(faults) {}
    Status Get(SpaceId space, std::string_view key, std::string* value) override {
      return inner_->Get(space, key, value);
    }
    std::unique_ptr<Cursor> NewCursor(SpaceId space) override { return inner_->NewCursor(space); }
    Status Put(SpaceId space, std::string_view key, std::string_view value) override {
      OUTPOST_RETURN_IF_ERROR(Write());
      return inner_->Put(space, key, value);
    }
    Status Insert(SpaceId space, std::string_view key, std::string_view value) override {
      OUTPOST_RETURN_IF_ERROR(Write());
      return inner_->Insert(space, key, value);
    }
    Status Delete(SpaceId space, std::string_view key) override {
      OUTPOST_RETURN_IF_ERROR(Write());
      return inner_->Delete(space, key);
    }
    Status Commit() override {
      if (spoilt_) return Status::IOError("injected: write failed");
      if (faults_->fail_commit) return Status::IOError("injected: commit failed");
      return inner_->Commit();
    }

   private:
    Status Write() {
      if (!spoilt_ && ++faults_->writes == faults_->fail_write_at) spoilt_ = true;
      return spoilt_ ? Status::IOError("injected: write failed") : Status::OK();
    }
    bool spoilt_ = false;
    std::unique_ptr<WriteTxn> inner_;
    Faults* faults_;
  };
  std::unique_ptr<Storage> inner_;
  Faults* faults_;
};

// A ServerOptions::open_store that wraps each store it opens in a FlakyStorage driven by `faults`.
inline auto FlakyOpener(FlakyStorage::Faults* faults) {
  return [faults](std::string_view uri, const StorageOptions& so) -> Result<std::unique_ptr<Storage>> {
    OUTPOST_ASSIGN_OR_RETURN(auto inner, OpenStorage(uri, so));
    return std::unique_ptr<Storage>(new FlakyStorage(std::move(inner), faults));
  };
}

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_FLAKY_STORAGE_H_
