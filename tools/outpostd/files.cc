// Copyright 2026 The Outpost Authors.
#include "files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

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

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status DataDirLock::Acquire(const std::string& data_dir, bool shared_store) {
  const std::string path = data_dir + "/outpostd.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return Status::IOError("open " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      char pid[32] = {};
      (void)!::pread(fd_, pid, sizeof pid - 1, 0);
      return Status::FailedPrecondition(
          "another outpostd (pid " + std::string(pid) + ") " + (shared_store ? "uses " : "is serving ") +
          data_dir + (shared_store ? " (servers on one database need a --data DIR each)" : ""));
    }
    return Status::IOError("flock " + path + ": " + std::strerror(errno));
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    return Status::IOError("write " + path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

namespace {

Status SyncFd(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return Errno("fsync " + path, errno);
  return Status::OK();
}

Status CopyFile(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("open " + from, errno);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return Errno("create " + to, err);
  }
  Status status;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = Errno("read " + from, errno);
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status = Errno("write " + to, errno);
        break;
      }
      done += w;
    }
    if (!status.ok()) break;
  }
  if (status.ok()) status = SyncFd(out, to);
  ::close(in);
  ::close(out);
  return status;
}

}  // namespace

Status CopyTree(const std::string& from, const std::string& to) {
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0) return Errno(from, errno);
  if (S_ISREG(st.st_mode)) return CopyFile(from, to);
  if (!S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition(from + " is neither a file nor a directory: not a store's");
  }
  if (::mkdir(to.c_str(), 0700) != 0) return Errno("mkdir " + to, errno);
  DIR* dir = ::opendir(from.c_str());
  if (dir == nullptr) return Errno("opendir " + from, errno);
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  for (const std::string& name : names) {
    OUTPOST_RETURN_IF_ERROR(CopyTree(from + "/" + name, to + "/" + name));
  }
  const int fd = ::open(to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + to, errno);
  Status status = SyncFd(fd, to);
  ::close(fd);
  return status;
}

Status RemoveTree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::OK();
    return Errno(path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return Errno("opendir " + path, errno);
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    for (const std::string& name : names) OUTPOST_RETURN_IF_ERROR(RemoveTree(path + "/" + name));
    if (::rmdir(path.c_str()) != 0) return Errno("rmdir " + path, errno);
    return Status::OK();
  }
  if (::unlink(path.c_str()) != 0) return Errno("unlink " + path, errno);
  return Status::OK();
}

Status Exchange(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
    return Errno("exchange " + a + " and " + b, errno);
  }
  return Status::OK();
}

Status SyncParent(const std::string& path) {
  const std::string parent = Parent(path);
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + parent, errno);
  Status status = SyncFd(fd, parent);
  ::close(fd);
  return status;
}

bool IsGroupOrWorldAccessible(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0;
}

}  // namespace outpostd
