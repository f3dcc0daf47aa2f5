// Copyright 2026 The Outpost Authors.
//
// StorageOptions::read_only on every backend: a read-only open reads what was written, refuses writes,
// creates nothing (a missing store, a missing space), changes no file of the store, and reads whole
// snapshots of a store that another handle keeps writing. LMDB allows one open per process (storage.h), so
// its live reader runs in a child process, as outpost-inspect does beside a running app.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/storage.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

// A forked child of a threaded process dies under TSan (its die_after_fork), so the lmdb live case skips.
#if defined(__SANITIZE_THREAD__)
#define OUTPOST_READ_ONLY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OUTPOST_READ_ONLY_TSAN 1
#endif
#endif

namespace outpost {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kLiveMsMax = 20'000;
constexpr int kSnapshotsWanted = 3;  // distinct writer states a live reader must see

StorageOptions Spaces(bool read_only) {
  StorageOptions options;
  options.spaces = {"n", "rows"};
  options.sync = false;
  options.read_only = read_only;
  return options;
}

// Every file under `path` (a file, or a directory's files) with its size and bytes, but LMDB's lock.mdb:
// a reader takes a slot in its reader table, by design (storage.h).
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "lock.mdb") continue;
    std::string bytes(entry.file_size(), '\0');
    FILE* file = std::fopen(entry.path().c_str(), "rb");
    if (file != nullptr) {
      bytes.resize(std::fread(bytes.data(), 1, bytes.size(), file));
      std::fclose(file);
    }
    files[entry.path().string()] = bytes;
  }
  return files;
}

// Commits row i and n = i + 1 in one txn: a whole snapshot has exactly n rows.
Status WriteRow(Storage& store, uint64_t i) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store.BeginWrite());
  char key[32];
  std::snprintf(key, sizeof(key), "row%012llu", static_cast<unsigned long long>(i));
  OUTPOST_RETURN_IF_ERROR(txn->Put(1, key, "value"));
  OUTPOST_RETURN_IF_ERROR(txn->Put(0, "n", std::to_string(i + 1)));
  return txn->Commit();
}

// One read-only open: the writer's n, checked against the rows the same snapshot holds.
Result<uint64_t> ReadWhole(const std::string& uri) {
  OUTPOST_ASSIGN_OR_RETURN(auto store, OpenStorage(uri, Spaces(true)));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store->BeginRead());
  std::string n;
  OUTPOST_RETURN_IF_ERROR(txn->Get(0, "n", &n));
  uint64_t rows = 0;
  auto cursor = txn->NewCursor(1);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++rows;
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  if (std::to_string(rows) != n) {
    return Status::Corruption("a torn snapshot: n = " + n + " with " + std::to_string(rows) + " rows");
  }
  return rows;
}

// Reads (reopening each time, so RocksDB's open-time snapshot moves too) until it saw kSnapshotsWanted
// distinct states: ok, or the first error.
Status ReadWhileWritten(const std::string& uri) {
  std::set<uint64_t> seen;
  const int64_t deadline = harness::SteadyNowMs() + kLiveMsMax;
  while (static_cast<int>(seen.size()) < kSnapshotsWanted) {
    if (harness::SteadyNowMs() > deadline) return Status::Timeout("the writer's commits never showed");
    OUTPOST_ASSIGN_OR_RETURN(uint64_t n, ReadWhole(uri));
    seen.insert(n);
  }
  return Status::OK();
}

class StorageReadOnly : public testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    // Named memory stores outlive their handles: a fresh name per run (--gtest_repeat too).
    static std::atomic<int> runs{0};
    uri_ =
        GetParam().uri(tmp_.path(), "read-only-" + std::to_string(::getpid()) + "-" + std::to_string(runs++) +
                                        "-" + testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  bool durable() const { return GetParam().lives_in_directory; }

  // Makes the store with `rows` rows; keeps the writer open in `keep` when given (a memory store lives only
  // while a handle does).
  void Make(uint64_t rows, std::unique_ptr<Storage>* keep = nullptr) {
    auto store = OpenStorage(uri_, Spaces(false));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (uint64_t i = 0; i < rows; ++i) ASSERT_TRUE(WriteRow(**store, i).ok());
    if (rows == 0) {
      auto txn = (*store)->BeginWrite();
      ASSERT_TRUE(txn.ok());
      ASSERT_TRUE((*txn)->Put(0, "n", "0").ok());
      ASSERT_TRUE((*txn)->Commit().ok());
    }
    if (keep != nullptr) *keep = std::move(*store);
  }

  harness::TempDir tmp_{"outpost-read-only"};
  std::string uri_;
};

TEST_P(StorageReadOnly, ReadsWhatWasWrittenAndRefusesWrites) {
  std::unique_ptr<Storage> keep;
  Make(5, durable() ? nullptr : &keep);
  {
    auto store = OpenStorage(uri_, Spaces(true));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->uri(), uri_);
    auto txn = (*store)->BeginWrite();
    ASSERT_FALSE(txn.ok());
    EXPECT_EQ(txn.status().code(), Status::Code::kFailedPrecondition) << txn.status().ToString();
    EXPECT_NE(txn.status().message().find("read-only"), std::string::npos) << txn.status().message();
  }
  auto n = ReadWhole(uri_);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 5u);
}

TEST_P(StorageReadOnly, AMissingStoreIsAnErrorAndNothingIsCreated) {
  auto store = OpenStorage(uri_, Spaces(true));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kIOError) << store.status().ToString();
  if (durable()) {
    EXPECT_TRUE(fs::is_empty(tmp_.path())) << "a read-only open created something";
    // An empty directory is not a store either (lmdb, rocksdb), and stays empty.
    if (GetParam().name != "Sqlite") {
      const std::string dir = uri_.substr(uri_.find(':') + 1);
      fs::create_directory(dir);
      auto again = OpenStorage(uri_, Spaces(true));
      ASSERT_FALSE(again.ok());
      EXPECT_NE(again.status().message().find("holds no"), std::string::npos) << again.status().message();
      EXPECT_TRUE(fs::is_empty(dir));
    }
  } else {
    // A private memory: store would be empty forever: refused by name.
    EXPECT_FALSE(OpenStorage("memory:", Spaces(true)).ok());
  }
}

TEST_P(StorageReadOnly, AMissingSpaceIsNotFoundAndNotCreated) {
  std::unique_ptr<Storage> keep;
  Make(1, durable() ? nullptr : &keep);
  StorageOptions options = Spaces(true);
  options.spaces.push_back("absent");
  auto store = OpenStorage(uri_, options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kNotFound) << store.status().ToString();
  EXPECT_NE(store.status().message().find("'absent'"), std::string::npos) << store.status().message();
  // Had the first open made the space, this one would succeed.
  auto again = OpenStorage(uri_, options);
  EXPECT_FALSE(again.ok());
}

TEST_P(StorageReadOnly, ReadingChangesNoFile) {
  if (!durable()) GTEST_SKIP() << "no files";
  Make(20);
  const auto before = Snapshot(tmp_.path());
  for (int i = 0; i < 3; ++i) {
    auto n = ReadWhole(uri_);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 20u);
  }
  const auto after = Snapshot(tmp_.path());
  std::set<std::string> names_before, names_after;
  for (const auto& [name, bytes] : before) names_before.insert(name);
  for (const auto& [name, bytes] : after) names_after.insert(name);
  EXPECT_EQ(names_before, names_after) << "files were added or removed";
  for (const auto& [name, bytes] : before) {
    if (after.count(name) != 0) {
      EXPECT_TRUE(after.at(name) == bytes) << name << " changed";
    }
  }
}

TEST_P(StorageReadOnly, ReadsWholeSnapshotsWhileAnotherHandleWrites) {
  std::unique_ptr<Storage> writer;
  Make(0, &writer);
  ASSERT_NE(writer, nullptr);
  uint64_t written = 0;
  if (GetParam().name == "Lmdb") {
#if defined(OUTPOST_READ_ONLY_TSAN)
    GTEST_SKIP() << "fork under TSan; the e2e tests read live lmdb stores from another process";
#else
    // One LMDB open per process: the reader is a child process, forked while no handle is open (a child
    // would inherit the parent's table of open stores), as outpost-inspect runs beside an app.
    writer.reset();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      Status status = ReadWhileWritten(uri_);
      if (!status.ok()) std::fprintf(stderr, "reader: %s\n", status.ToString().c_str());
      ::_exit(status.ok() ? 0 : 1);
    }
    auto reopened = OpenStorage(uri_, Spaces(false));
    if (!reopened.ok()) ::kill(child, SIGKILL);
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    writer = std::move(*reopened);
    int wstatus = 0;
    pid_t done = 0;
    const int64_t deadline = harness::SteadyNowMs() + kLiveMsMax + 5'000;
    while ((done = ::waitpid(child, &wstatus, WNOHANG)) == 0 && harness::SteadyNowMs() < deadline) {
      ASSERT_TRUE(WriteRow(*writer, written++).ok());
    }
    if (done == 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &wstatus, 0);
      FAIL() << "the reader never finished";
    }
    ASSERT_TRUE(WIFEXITED(wstatus)) << "the reader died";
    EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "the reader saw a torn snapshot or an error (its stderr says)";
#endif
  } else {
    std::atomic<bool> reader_done{false};
    Status reader_status;
    std::thread reader([&] {
      reader_status = ReadWhileWritten(uri_);
      reader_done = true;
    });
    const int64_t deadline = harness::SteadyNowMs() + kLiveMsMax + 5'000;
    while (!reader_done && harness::SteadyNowMs() < deadline) {
      ASSERT_TRUE(WriteRow(*writer, written++).ok());
    }
    reader.join();
    EXPECT_TRUE(reader_status.ok()) << reader_status.ToString();
  }
  EXPECT_GT(written, 0u);
  // The writer is unharmed: it still commits, and a reader sees every row.
  ASSERT_TRUE(WriteRow(*writer, written++).ok());
  auto n = ReadWhole(uri_);
  if (GetParam().name != "Lmdb") {  // lmdb: the writer's handle is open in this process
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, written);
  }
}

INSTANTIATE_TEST_SUITE_P(, StorageReadOnly, testing::ValuesIn(StorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace outpost
