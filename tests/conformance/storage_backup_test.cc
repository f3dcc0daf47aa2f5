// Copyright 2026 The Outpost Authors.
//
// Storage::Backup on every backend: a backup taken while a writer keeps committing opens and holds a
// prefix of the commits (each txn writes its number into two spaces, and a row: a copy with the two
// numbers apart, or with another count of rows, is torn), at least every commit made before the backup
// began; the destination must be new; the memory backend refuses. The same from a read-only handle in
// another process, as `outpostd backup` runs beside `outpostd serve` (lmdb, sqlite; rocksdb refuses).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/storage.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

#if defined(__SANITIZE_THREAD__)
#define OUTPOST_BACKUP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OUTPOST_BACKUP_TSAN 1
#endif
#endif

namespace outpost {
namespace {

namespace fs = std::filesystem;

constexpr int kBackups = 3;
constexpr int64_t kWriterMsMax = 30'000;

StorageOptions Spaces(bool read_only) {
  StorageOptions options;
  options.spaces = {"a", "b", "rows"};
  options.sync = false;
  options.read_only = read_only;
  return options;
}

// Txn i: a = b = i + 1 and row i, all or nothing.
Status Commit(Storage& store, uint64_t i) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store.BeginWrite());
  char key[32];
  std::snprintf(key, sizeof(key), "row%012llu", static_cast<unsigned long long>(i));
  OUTPOST_RETURN_IF_ERROR(txn->Put(0, "n", std::to_string(i + 1)));
  OUTPOST_RETURN_IF_ERROR(txn->Put(2, key, std::string(100, 'v')));
  OUTPOST_RETURN_IF_ERROR(txn->Put(1, "n", std::to_string(i + 1)));
  return txn->Commit();
}

// Opens the copy at `uri` (read-only, then writable unless `read_only_only`: a backup is a store like any
// other) and returns how many txns it holds; Corruption when it holds a part of one.
Result<uint64_t> CheckCopy(const std::string& uri, bool read_only_only = false) {
  uint64_t count = 0;
  for (const bool read_only : {true, false}) {
    if (!read_only && read_only_only) break;
    OUTPOST_ASSIGN_OR_RETURN(auto store, OpenStorage(uri, Spaces(read_only)));
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store->BeginRead());
    std::string a, b;
    Status got_a = txn->Get(0, "n", &a);
    Status got_b = txn->Get(1, "n", &b);
    if (got_a.IsNotFound() && got_b.IsNotFound())
      a = b = "0";
    else if (!got_a.ok() || !got_b.ok())
      return Status::Corruption("copy has a = " + a + ", b = " + b);
    if (a != b) return Status::Corruption("a torn copy: a = " + a + ", b = " + b);
    uint64_t rows = 0;
    auto cursor = txn->NewCursor(2);
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
    OUTPOST_RETURN_IF_ERROR(cursor->status());
    if (std::to_string(rows) != a) {
      return Status::Corruption("a torn copy: n = " + a + " with " + std::to_string(rows) + " rows");
    }
    count = rows;
  }
  return count;
}

std::string Scheme(const std::string& uri) { return uri.substr(0, uri.find(':') + 1); }

class StorageBackup : public testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    uri_ = GetParam().uri(tmp_.path(), "backup-" + std::to_string(::getpid()) + "-" +
                                           testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  // A copy's path in the temp dir, in the shape of the backend's (a directory or a file).
  std::string Destination(int i) const { return tmp_.path() + "/copy" + std::to_string(i); }

  harness::TempDir tmp_{"outpost-backup"};
  std::string uri_;
};

TEST_P(StorageBackup, CopiesHoldAPrefixOfTheCommitsWhileAWriterGoesOn) {
  if (!GetParam().lives_in_directory) GTEST_SKIP() << "memory stores make no backups (MemoryRefuses)";
  auto opened = OpenStorage(uri_, Spaces(false));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Storage> store = std::move(*opened);
  std::atomic<uint64_t> committed{0};
  std::atomic<bool> stop{false};
  Status writer_status;
  std::thread writer([&] {
    const int64_t deadline = harness::SteadyNowMs() + kWriterMsMax;
    for (uint64_t i = 0; !stop && harness::SteadyNowMs() < deadline; ++i) {
      writer_status = Commit(*store, i);
      if (!writer_status.ok()) return;
      committed = i + 1;
    }
  });
  ASSERT_TRUE(harness::WaitFor([&] { return committed >= 50; }, 10'000));
  std::vector<uint64_t> counts;
  for (int i = 0; i < kBackups; ++i) {
    const uint64_t before = committed;
    Status backup = store->Backup(Destination(i));
    ASSERT_TRUE(backup.ok()) << backup.ToString();
    auto count = CheckCopy(Scheme(uri_) + Destination(i));
    ASSERT_TRUE(count.ok()) << count.status().ToString();
    EXPECT_GE(*count, before) << "the copy lacks commits made before the backup began";
    counts.push_back(*count);
    const uint64_t next = committed + 20;
    ASSERT_TRUE(harness::WaitFor([&] { return committed >= next; }, 10'000));
  }
  stop = true;
  writer.join();
  EXPECT_TRUE(writer_status.ok()) << writer_status.ToString();
  EXPECT_LT(counts.front(), counts.back()) << "the writer went on between backups";
  // The store is unharmed and still writable.
  ASSERT_TRUE(Commit(*store, committed).ok());
}

TEST_P(StorageBackup, ADestinationThatExistsOrHasNoParentIsRefused) {
  if (!GetParam().lives_in_directory) GTEST_SKIP() << "memory stores make no backups (MemoryRefuses)";
  auto store = OpenStorage(uri_, Spaces(false));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(Commit(**store, 0).ok());
  const std::string taken = Destination(0);
  ASSERT_TRUE(fs::create_directory(taken));
  fs::path marker = fs::path(taken) / "keep";
  {
    std::FILE* f = std::fopen(marker.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  Status exists = (*store)->Backup(taken);
  EXPECT_EQ(exists.code(), Status::Code::kAlreadyExists) << exists.ToString();
  EXPECT_TRUE(fs::exists(marker)) << "a refused backup touched what was there";
  Status orphan = (*store)->Backup(tmp_.path() + "/missing/copy");
  EXPECT_EQ(orphan.code(), Status::Code::kIOError) << orphan.ToString();
  EXPECT_NE(orphan.message().find("parent"), std::string::npos) << orphan.message();
  EXPECT_FALSE(fs::exists(tmp_.path() + "/missing"));
}

TEST_P(StorageBackup, MemoryRefuses) {
  if (GetParam().lives_in_directory) GTEST_SKIP() << "only the memory backend refuses";
  auto store = OpenStorage(uri_, Spaces(false));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Status backup = (*store)->Backup(Destination(0));
  EXPECT_EQ(backup.code(), Status::Code::kFailedPrecondition) << backup.ToString();
  EXPECT_NE(backup.message().find("nothing on disk"), std::string::npos) << backup.message();
  EXPECT_FALSE(fs::exists(Destination(0)));
}

// The child process opens the store read-only and backs it up kBackups times while this process writes;
// returns the child's exit status (0: every copy whole) once it is done.
TEST_P(StorageBackup, AReadOnlyHandleInAnotherProcessBacksUpALiveStore) {
  if (!GetParam().lives_in_directory) GTEST_SKIP() << "memory stores make no backups (MemoryRefuses)";
  if (GetParam().name == "Rocksdb") GTEST_SKIP() << "RocksdbReadOnlyRefuses";
#if defined(OUTPOST_BACKUP_TSAN)
  GTEST_SKIP() << "fork under TSan";
#else
  {
    auto made = OpenStorage(uri_, Spaces(false));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(Commit(**made, i).ok());
  }
  // Forked while no handle is open: a child must not inherit LMDB's table of open stores.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (int i = 0; i < kBackups; ++i) {
      auto reader = OpenStorage(uri_, Spaces(true));
      Status status = reader.ok() ? (*reader)->Backup(Destination(i)) : reader.status();
      // Read-only only: a forked child has none of RocksDB's background threads, which a writable
      // handle's close waits for (the parent opens the copies writable afterwards).
      if (status.ok()) status = CheckCopy(Scheme(uri_) + Destination(i), true).status();
      if (!status.ok()) {
        std::fprintf(stderr, "backup %d: %s\n", i, status.ToString().c_str());
        ::_exit(1);
      }
    }
    ::_exit(0);
  }
  auto opened = OpenStorage(uri_, Spaces(false));
  if (!opened.ok()) ::kill(child, SIGKILL);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  uint64_t written = 50;
  int wstatus = 0;
  pid_t done = 0;
  const int64_t deadline = harness::SteadyNowMs() + kWriterMsMax;
  while ((done = ::waitpid(child, &wstatus, WNOHANG)) == 0 && harness::SteadyNowMs() < deadline) {
    ASSERT_TRUE(Commit(**opened, written++).ok());
  }
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &wstatus, 0);
    FAIL() << "the backups never finished";
  }
  ASSERT_TRUE(WIFEXITED(wstatus)) << "the backing-up process died";
  ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "a backup failed or was torn (its stderr says)";
  for (int i = 0; i < kBackups; ++i) {
    auto count = CheckCopy(Scheme(uri_) + Destination(i));
    ASSERT_TRUE(count.ok()) << count.status().ToString();
    EXPECT_GE(*count, 50u);
  }
  EXPECT_GT(written, 50u);
#endif
}

// A read-only RocksDB handle beside a live writer may see its column families at different points
// (storage.h): its Backup refuses rather than copy a torn store.
TEST_P(StorageBackup, RocksdbReadOnlyRefuses) {
  if (GetParam().name != "Rocksdb") GTEST_SKIP() << "only rocksdb refuses a read-only backup";
  auto writer = OpenStorage(uri_, Spaces(false));
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE(Commit(**writer, 0).ok());
  auto reader = OpenStorage(uri_, Spaces(true));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  Status backup = (*reader)->Backup(Destination(0));
  EXPECT_EQ(backup.code(), Status::Code::kFailedPrecondition) << backup.ToString();
  EXPECT_NE(backup.message().find("torn"), std::string::npos) << backup.message();
  EXPECT_FALSE(fs::exists(Destination(0)));
  // The writable handle makes one.
  ASSERT_TRUE((*writer)->Backup(Destination(1)).ok());
}

INSTANTIATE_TEST_SUITE_P(, StorageBackup, testing::ValuesIn(StorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace outpost
