// Copyright 2026 The Outpost Authors.
//
// The few file operations outpostd needs, errors as Status with the path and errno text in the message.
#ifndef OUTPOST_TOOLS_OUTPOSTD_FILES_H_
#define OUTPOST_TOOLS_OUTPOSTD_FILES_H_

#include <string>

#include "outpost/result.h"
#include "outpost/status.h"

namespace outpostd {

// Makes sure the data directory exists: creates it (mode 0700) when its parent exists. InvalidArgument for
// an empty path; NotFound when the parent is missing; FailedPrecondition when it is not a directory.
outpost::Status EnsureDataDir(const std::string& dir);
// NotFound unless `dir` is an existing directory.
outpost::Status RequireDataDir(const std::string& dir);

// Replaces `path` with `content` atomically: writes `path.tmp`, fsyncs it, renames it over `path`. A reader
// sees the old file or the new one, never a part. `mode`: permissions of the new file (owner-only by
// default: outpostd's files say who connects and how much, which is nobody else's business).
outpost::Status WriteFileAtomic(const std::string& path, const std::string& content, int mode = 0600);
// NotFound when absent.
outpost::Result<std::string> ReadFile(const std::string& path, size_t bytes_max = 1 << 20);
// True when `path` can be read or written by users other than its owner.
bool IsGroupOrWorldAccessible(const std::string& path);

// Holds an exclusive flock on DATA_DIR/outpostd.lock for the life of the object (the kernel drops it when
// the process dies, however it dies): one server per data directory, and no restore under a running
// server. With a key-value store in it (the default) that is one server per store: two servers writing one
// store would each believe they assign seqs. A database store is shared by many servers, each with its own
// DATA_DIR (lock, stats.json): the lock then only keeps two of them from writing one stats.json.
class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();
  // FailedPrecondition naming the holder's pid when another outpostd holds it.
  outpost::Status Acquire(const std::string& data_dir, bool shared_store);

 private:
  int fd_ = -1;
};

// Copies the file or directory tree `from` to `to` (which must not exist): regular files and directories
// only (a store holds nothing else), owner-only modes, every file and directory fsynced.
outpost::Status CopyTree(const std::string& from, const std::string& to);
// Removes the file or directory tree at `path`; ok when it is absent.
outpost::Status RemoveTree(const std::string& path);
// Swaps `a` and `b` (both must exist) in one step: renameat2(RENAME_EXCHANGE), so a crash leaves one or
// the other in each place, never neither. Both on one filesystem.
outpost::Status Exchange(const std::string& a, const std::string& b);
// fsyncs the directory that holds `path`.
outpost::Status SyncParent(const std::string& path);

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_FILES_H_
