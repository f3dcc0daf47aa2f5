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

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_FILES_H_
