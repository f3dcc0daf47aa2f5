// Copyright 2026 The Outpost Authors.
//
// What a durable backend creates is private to its owner: a new store's directory is 0700 and the files the
// backend creates itself are 0600, whatever the umask lets through (a store holds every message of its
// user). A directory that already exists keeps the mode its owner gave it.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/storage.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Sets a permissive umask for the test's life, so that only the modes the backend asks for can explain
// private files.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

class StorageModes : public testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    uri_ = GetParam().uri(dir_, "modes");
    path_ = uri_.substr(uri_.find(':') + 1);
  }

  // Opens the store and commits one entry (SQLite creates its -wal and -shm files on the way).
  void OpenAndWrite() {
    StorageOptions options;
    options.spaces = {"a"};
    options.sync = false;
    auto store = OpenStorage(uri_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto txn = (*store)->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    ASSERT_TRUE((*txn)->Put(0, "key", "value").ok());
    ASSERT_TRUE((*txn)->Commit().ok());
    // Checked while the store is open: SQLite removes -wal and -shm at the last close.
    CheckFiles();
  }

  // Every file of the store the backend creates itself is 0600. RocksDB creates its files with a mode of
  // its own (0644 less the umask); its 0700 directory keeps them private.
  void CheckFiles() {
    if (GetParam().name == "Rocksdb") return;
    std::vector<std::string> files;
    if (fs::is_directory(path_)) {
      for (const auto& entry : fs::directory_iterator(path_)) files.push_back(entry.path().string());
    } else {
      const std::string base = fs::path(path_).filename().string();
      for (const auto& entry : fs::directory_iterator(dir_)) {
        if (entry.path().filename().string().starts_with(base)) files.push_back(entry.path().string());
      }
    }
    ASSERT_FALSE(files.empty());
    if (GetParam().name == "Sqlite") {
      EXPECT_NE(std::find(files.begin(), files.end(), path_ + "-wal"), files.end()) << "no -wal file checked";
    }
    for (const auto& file : files) EXPECT_EQ(ModeOf(file), 0600u) << file;
  }

  harness::TempDir tmp_{"outpost-modes"};
  std::string dir_;
  std::string uri_;
  std::string path_;  // the store's file or directory
};

TEST_P(StorageModes, ANewStoreIsPrivate) {
  ScopedUmask umask(022);
  OpenAndWrite();
  if (fs::is_directory(path_)) {
    EXPECT_EQ(ModeOf(path_), 0700u) << path_;
  }
}

TEST_P(StorageModes, AnExistingDirectoryKeepsItsMode) {
  if (GetParam().name == "Sqlite") GTEST_SKIP() << "a SQLite store is a file, not a directory";
  ScopedUmask umask(022);
  ASSERT_EQ(::mkdir(path_.c_str(), 0750), 0);
  OpenAndWrite();
  EXPECT_EQ(ModeOf(path_), 0750u) << "the owner's choice is kept";
}

INSTANTIATE_TEST_SUITE_P(, StorageModes, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace outpost
