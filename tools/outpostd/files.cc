// Copyright 2026 The Outpost Authors.
#include "files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace outpostd {
namespace {

using outpost::Result;
using outpost::Status;

Status Errno(const std::string& what, int err) {
  const std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::IOError(msg);
}

std::string Parent(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Status RequireDataDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("--data needs a directory");
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("data directory " + dir + " does not exist");
    return Errno("data directory " + dir, err);
  }
  if (!S_ISDIR(st.st_mode))
    return Status::FailedPrecondition("data directory " + dir + " is not a directory");
  return Status::OK();
}

Status EnsureDataDir(const std::string& dir) {
  Status s = RequireDataDir(dir);
  if (!s.IsNotFound()) return s;
  const std::string parent = Parent(dir);
  if (!IsDir(parent)) {
    return Status::NotFound("data directory " + dir + " cannot be created: its parent " + parent +
                            " does not exist");
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir " + dir, errno);
  return RequireDataDir(dir);
}

Status WriteFileAtomic(const std::string& path, const std::string& content, int mode) {
  const std::string tmp = path + ".tmp";
  // A leftover .tmp (a crash between open and rename) would keep its old mode: make a new one.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return Errno("unlink " + tmp, errno);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Errno("open " + tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Errno("write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Errno("fsync " + tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Errno("rename " + tmp + " to " + path, err);
  }
  return Status::OK();
}

Result<std::string> ReadFile(const std::string& path, size_t bytes_max) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path, errno);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Errno("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > bytes_max) {
      ::close(fd);
      return Status::InvalidArgument(path + " is larger than " + std::to_string(bytes_max) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

bool IsGroupOrWorldAccessible(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0;
}

}  // namespace outpostd
