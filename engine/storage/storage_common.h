// Copyright 2026 The Outpost Authors.
//
// Checks and helpers that every storage backend shares, so that all of them reject the same inputs with the
// same messages. Internal to engine/storage/.
#ifndef OUTPOST_STORAGE_STORAGE_COMMON_H_
#define OUTPOST_STORAGE_STORAGE_COMMON_H_

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "outpost/status.h"
#include "outpost/storage.h"

namespace outpost::storage_internal {

constexpr size_t kValueBytesMax = size_t{1} << 30;

inline std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Modes of what a backend creates: a store holds every message of its user, so only the owner may read it.
// A directory that already exists keeps its mode (the user chose it); files a library creates with its own
// mode (RocksDB's) are still private under a 0700 directory.
constexpr mode_t kStoreDirMode = 0700;
constexpr mode_t kStoreFileMode = 0600;

// Creates `dir` (mode 0700) if missing (its parent must exist) and checks that it is a directory; `backend`
// names the store in the messages.
inline Status EnsureDirectory(std::string_view backend, const std::string& dir) {
  if (::mkdir(dir.c_str(), kStoreDirMode) != 0 && errno != EEXIST) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::IOError("cannot create " + std::string(backend) + " directory '" + dir +
                             "': its parent directory does not exist");
    }
    return Status::IOError("cannot create " + std::string(backend) + " directory '" + dir +
                           "': " + ErrnoText(err));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::IOError("cannot stat '" + dir + "': " + ErrnoText(errno));
  if (!S_ISDIR(st.st_mode))
    return Status::IOError(std::string(backend) + " path '" + dir + "' is not a directory");
  return Status::OK();
}

// For a read-only open: checks that `dir` is a directory holding `marker` (the file every store of this
// backend has), creating nothing. IOError naming what was expected otherwise.
inline Status CheckExistingStoreDir(std::string_view backend, const std::string& dir,
                                    std::string_view marker) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::IOError("no " + std::string(backend) + " store at '" + dir + "': " + ErrnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::IOError(std::string(backend) + " path '" + dir + "' is not a directory (expected a " +
                           std::string(backend) + " store directory)");
  }
  const std::string file = dir + "/" + std::string(marker);
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::IOError("'" + dir + "' holds no " + std::string(backend) + " store: it has no " +
                           std::string(marker));
  }
  return Status::OK();
}

// One write transaction at a time, for backends whose library does not serialize writers itself: Acquire
// blocks while another writer holds the gate.
class WriterGate {
 public:
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !active_; });
    active_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool active_ = false;
};

// Takes an exclusive, non-blocking flock on `fd` (a store's file or directory), so that a store is open
// through one handle at a time, in this process and across processes. IOError naming the store otherwise.
inline Status LockExclusive(int fd, std::string_view backend, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::OK();
  const int err = errno;
  if (err == EWOULDBLOCK) {
    return Status::IOError(std::string(backend) + " store '" + path +
                           "' is locked: it is open in this or another process");
  }
  return Status::IOError("cannot lock " + std::string(backend) + " store '" + path + "': " + ErrnoText(err));
}

// Storage::Backup's destination: AlreadyExists when `path` exists (a backup never overwrites), IOError when
// its parent directory is missing. Creates nothing.
inline Status CheckBackupDestination(std::string_view backend, const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists(std::string(backend) + " backup destination '" + path +
                                 "' already exists (a backup goes to a new path)");
  }
  std::string parent = path;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const size_t slash = parent.rfind('/');
  parent = slash == std::string::npos ? "." : slash == 0 ? "/" : parent.substr(0, slash);
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError(std::string(backend) + " backup destination '" + path +
                           "': its parent directory does not exist");
  }
  return Status::OK();
}

// fsyncs the file or directory at `path` (a backup is durable before Backup returns).
inline Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open '" + path + "' to sync it: " + ErrnoText(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot sync '" + path + "': " + ErrnoText(err));
  return Status::OK();
}

// Removes what a failed backup left at `path` (a file, or a directory of files), best effort.
inline void RemoveBackupLeftovers(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    ::unlink(path.c_str());
    return;
  }
  if (DIR* dir = ::opendir(path.c_str()); dir != nullptr) {
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") ::unlink((path + "/" + name).c_str());
    }
    ::closedir(dir);
  }
  ::rmdir(path.c_str());
}

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
    std::fprintf(stderr,
                 "outpost: a storage WriteTxn was committed or destroyed on another thread than the "
                 "one that began it\n");
    std::abort();
  }
}

// A readers-writer lock that admits a waiting writer before new readers. std::shared_mutex (glibc's default
// rwlock) lets new readers in while a writer waits, so a steady stream of readers starves the writer; with
// locks held per operation that stream is the normal case. Not recursive: a thread holding it shared must not
// take it again. Meets the SharedMutex requirements, for std::shared_lock and std::unique_lock.
class WriterFirstMutex {
 public:
  WriterFirstMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)  // a glibc extension; elsewhere the platform default applies (writer first on macOS)
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&rwlock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriterFirstMutex() { pthread_rwlock_destroy(&rwlock_); }
  WriterFirstMutex(const WriterFirstMutex&) = delete;
  WriterFirstMutex& operator=(const WriterFirstMutex&) = delete;

  void lock() { pthread_rwlock_wrlock(&rwlock_); }
  bool try_lock() { return pthread_rwlock_trywrlock(&rwlock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&rwlock_); }
  void lock_shared() { pthread_rwlock_rdlock(&rwlock_); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&rwlock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&rwlock_); }

 private:
  pthread_rwlock_t rwlock_;
};

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
