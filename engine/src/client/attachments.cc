// Copyright 2026 The Outpost Authors.
#include "client/attachments.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#if OUTPOST_WITH_MEDIA
#include "media/common/digest.h"
#endif

namespace outpost {

namespace {

#if !OUTPOST_WITH_MEDIA
// Attachments hash with OpenSSL (engine/media/common): a build without the media part has neither.
constexpr std::string_view kNoMedia =
    "attachments need OUTPOST_WITH_MEDIA (this Outpost was built without it)";
#endif

Status Errno(const std::string& what, int e) {
  std::string msg = what + ": " + std::strerror(e);
  return e == ENOENT ? Status::NotFound(msg) : Status::IOError(msg);
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

[[maybe_unused]] Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno(path, errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

}  // namespace

Result<PreparedAttachment> CopyAttachment(const AttachmentSource& source, const std::string& media_dir,
                                          const OpId& id, uint64_t bytes_max) {
#if !OUTPOST_WITH_MEDIA
  return Status::FailedPrecondition(kNoMedia);
#else
  PreparedAttachment out;
  out.present = true;
  out.content_type = source.content_type.empty() ? "application/octet-stream" : source.content_type;
  out.filename =
      source.filename.empty() ? std::filesystem::path(source.path).filename().string() : source.filename;
  Fd in;
  in.fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) return Errno("attachment " + source.path, errno);
  struct stat st;
  if (::fstat(in.fd, &st) != 0) return Errno("attachment " + source.path, errno);
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument("attachment " + source.path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > bytes_max) {
    return Status::InvalidArgument("attachment " + source.path + " is " + std::to_string(st.st_size) +
                                   " bytes (max " + std::to_string(bytes_max) + ")");
  }
  std::error_code ec;
  std::filesystem::create_directories(media_dir, ec);
  if (ec) return Status::IOError("media_dir " + media_dir + ": " + ec.message());
  out.path = media_dir + "/" + id.ToString();
  const std::string tmp = out.path + ".part";
  Fd dst;
  dst.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (dst.fd < 0) return Errno(tmp, errno);
  media::Digest sha(media::DigestKind::kSha256);
  std::string buf(1 << 20, '\0');
  uint64_t total = 0;
  Status s;
  for (;;) {
    ssize_t n = ::read(in.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Errno("attachment " + source.path, errno);
      break;
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > bytes_max) {
      s = Status::InvalidArgument("attachment " + source.path + " grew past " + std::to_string(bytes_max) +
                                  " bytes while it was copied");
      break;
    }
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    s = WriteAll(dst.fd, buf.data(), static_cast<size_t>(n), tmp);
    if (!s.ok()) break;
  }
  if (s.ok() && ::fsync(dst.fd) != 0) s = Errno(tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), out.path.c_str()) != 0) s = Errno(out.path, errno);
  if (s.ok()) {
    Fd dir;
    dir.fd = ::open(media_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir.fd < 0 || ::fsync(dir.fd) != 0) s = Errno(media_dir, errno);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    ::unlink(out.path.c_str());
    return s;
  }
  out.size = total;
  out.sha256 = media::ToHex(sha.Final());
  return out;
#endif
}

void RemoveAttachmentCopy(const std::string& path) {
  if (!path.empty()) ::unlink(path.c_str());
}

Status ReadAttachment(const std::string& path, uint64_t offset, size_t n, std::string* out) {
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0) return Errno("the attachment's copy " + path, errno);
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd.fd, out->data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("the attachment's copy " + path, errno);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  return Status::OK();
}

Status DownloadBlob(MediaTransport& media, const MediaEndpoint& at, const std::string& blob_id, uint64_t size,
                    const std::string& sha256, const std::string& path,
                    const std::function<void(uint64_t, uint64_t)>& progress) {
#if !OUTPOST_WITH_MEDIA
  return Status::FailedPrecondition(kNoMedia);
#else
  const std::string part = path + ".part";
  Fd fd;
  fd.fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd.fd < 0) return Errno(part, errno);
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) return Errno(part, errno);
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have > size && ::ftruncate(fd.fd, 0) != 0) return Errno(part, errno);
  if (have > size) have = 0;
  if (::lseek(fd.fd, static_cast<off_t>(have), SEEK_SET) < 0) return Errno(part, errno);
  if (progress) progress(have, size);
  if (have < size) {
    auto total = media.Download(at, blob_id, have, [&](std::string_view bytes) -> Status {
      if (have + bytes.size() > size) return Status::Corruption("the server sent more than the blob's size");
      OUTPOST_RETURN_IF_ERROR(WriteAll(fd.fd, bytes.data(), bytes.size(), part));
      have += bytes.size();
      if (progress) progress(have, size);
      return Status::OK();
    });
    if (!total.ok()) {
      (void)::fsync(fd.fd);  // what arrived is kept for the next call
      return total.status();
    }
  }
  if (::fsync(fd.fd) != 0) return Errno(part, errno);
  if (have != size)
    return Status::Unavailable("the download ended after " + std::to_string(have) + " of " +
                               std::to_string(size) + " bytes");
  OUTPOST_ASSIGN_OR_RETURN(std::string got, media::Sha256FileHex(part));
  if (got != sha256) {
    ::unlink(part.c_str());
    return Status::Corruption("downloaded attachment " + blob_id + " has sha256 " + got + ", not " + sha256);
  }
  if (::rename(part.c_str(), path.c_str()) != 0) return Errno(path, errno);
  return Status::OK();
#endif
}

}  // namespace outpost
