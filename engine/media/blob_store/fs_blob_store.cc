// Copyright 2026 The Outpost Authors.
//
// The filesystem BlobStore (`file:DIR`). Each blob is two files in DIR:
//
//   <id>.data  the blob's bytes. Only the first `offset` bytes (from .info) count; anything past them was
//              written by a writer that never committed it (a crash, a failed checksum, a dropped writer) and
//              is cut off by the next Append.
//   <id>.info  the blob's state, replaced whole: written to <id>.info.tmp, fsynced, renamed over, and the
//              directory fsynced, so a reader sees the old state or the new one, never a mix.
//
// .info grammar (text, every value length-prefixed so no value needs escaping):
//   info   := "outpost-blob-info 1\n" field*
//   field  := KEY " " LEN "\n" VALUE "\n"        LEN: decimal byte count of VALUE
//   KEY    := owner | owner_device | size | content_type | sha256 | metadata | expires_at_ms |
//             created_at_ms | offset | complete | digest
// Numbers are decimal; complete is 0 or 1; digest is the SHA-256 (hex) computed at completion. Unknown keys
// are skipped (a later version may add some); a missing one is Corruption.
//
// Durability: Commit fdatasyncs the data file and only then records the new offset in .info, so after a
// crash .info's offset is authoritative and never counts bytes that were not on disk. A commit that only
// moves the offset does not fsync the directory after its rename: a power loss may then bring back an
// earlier .info, that is an earlier offset, which is safe (the bytes past it are cut and the uploader sends
// them again from HEAD's offset) and costs one sync less per chunk. Creating, completing and resetting a
// blob do fsync the directory.
//
// Hashing: the SHA-256 of the whole blob is computed as its bytes are written, carried from one writer to
// the next of the same blob in memory (a few hundred bytes per blob being uploaded, at most
// kDigestsMax), so the last Commit need not read the blob again. A writer whose blob's digest is not in
// memory (the process restarted, or the data file changed since: its size and mtime say) hashes the first
// `size` bytes of .data (1 MiB at a time) at the last Commit.
//
// Locking: a writer holds flock(LOCK_EX) on its .data file for its lifetime, so one blob has one writer
// across every thread and every process sharing DIR (flock locks belong to the open file, so two opens in one
// process exclude each other too). Remove and RemoveExpired take the same lock before unlinking. On NFS,
// flock is emulated with POSIX locks by Linux (since 2.6.12), which still excludes across hosts.
//
// Not cleaned up (rare, harmless to readers): a .data whose .info was never written (a crash inside Create),
// and a stale .info.tmp (a crash inside a state write).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <utility>

#include "media/blob_store/blob_store_internal.h"
#include "media/common/digest.h"

namespace outpost::media {
namespace {

constexpr size_t kWriteBufferBytes = 256 << 10;  // a writer's buffer before a pwrite
constexpr size_t kHashChunkBytes = 1 << 20;
constexpr std::string_view kInfoMagic = "outpost-blob-info 1\n";
constexpr size_t kInfoBytesMax = 64 << 10;  // the longest .info there can be, with room to spare
constexpr size_t kDigestsMax = 4096;        // blobs whose running SHA-256 is kept between writers

Status ErrnoStatus(const std::string& what, int e) {
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOENT) return Status::NotFound(msg);
  if (e == ENOSPC || e == EDQUOT) return Status::Full(msg);
  return Status::IOError(msg);
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view bytes, uint64_t offset, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

// Reads up to `n` bytes at `offset`; fewer only at the end of the file.
Status ReadAt(int fd, uint64_t offset, size_t n, std::string* out, const std::string& path) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out->data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  return Status::OK();
}

void AddField(std::string* out, std::string_view key, std::string_view value) {
  out->append(key).append(" ").append(std::to_string(value.size())).append("\n").append(value).append("\n");
}

std::string EncodeInfo(const BlobInfo& info) {
  std::string out(kInfoMagic);
  AddField(&out, "owner", info.spec.owner);
  AddField(&out, "owner_device", info.spec.owner_device);
  AddField(&out, "size", std::to_string(info.spec.size));
  AddField(&out, "content_type", info.spec.content_type);
  AddField(&out, "sha256", info.spec.sha256);
  AddField(&out, "metadata", info.spec.metadata);
  AddField(&out, "expires_at_ms", std::to_string(info.spec.expires_at_ms));
  AddField(&out, "created_at_ms", std::to_string(info.created_at_ms));
  AddField(&out, "offset", std::to_string(info.offset));
  AddField(&out, "complete", info.complete ? "1" : "0");
  AddField(&out, "digest", info.sha256);
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

Result<BlobInfo> DecodeInfo(std::string_view id, std::string_view text) {
  Status bad = Status::Corruption("blob info of " + std::string(id) + " is malformed");
  if (text.substr(0, kInfoMagic.size()) != kInfoMagic) return bad;
  text.remove_prefix(kInfoMagic.size());
  std::map<std::string, std::string, std::less<>> fields;
  while (!text.empty()) {
    size_t space = text.find(' ');
    size_t eol = text.find('\n');
    if (space == std::string_view::npos || eol == std::string_view::npos || space > eol) return bad;
    size_t len = 0;
    if (!ParseNumber(text.substr(space + 1, eol - space - 1), &len)) return bad;
    std::string_view key = text.substr(0, space);
    text.remove_prefix(eol + 1);
    if (text.size() < len + 1 || text[len] != '\n') return bad;
    fields[std::string(key)] = std::string(text.substr(0, len));
    text.remove_prefix(len + 1);
  }
  static constexpr const char* kKeys[] = {"owner",  "owner_device", "size",          "content_type",
                                          "sha256", "metadata",     "expires_at_ms", "created_at_ms",
                                          "offset", "complete",     "digest"};
  for (const char* key : kKeys) {
    if (fields.find(key) == fields.end()) return bad;
  }
  BlobInfo info;
  info.id = std::string(id);
  info.spec.owner = fields["owner"];
  info.spec.owner_device = fields["owner_device"];
  info.spec.content_type = fields["content_type"];
  info.spec.sha256 = fields["sha256"];
  info.spec.metadata = fields["metadata"];
  info.sha256 = fields["digest"];
  const std::string& complete = fields["complete"];
  if (complete != "0" && complete != "1") return bad;
  info.complete = complete == "1";
  if (!ParseNumber(fields["size"], &info.spec.size) || !ParseNumber(fields["offset"], &info.offset) ||
      !ParseNumber(fields["expires_at_ms"], &info.spec.expires_at_ms) ||
      !ParseNumber(fields["created_at_ms"], &info.created_at_ms) || info.offset > info.spec.size) {
    return bad;
  }
  return info;
}

class FsBlobStore;

// The running SHA-256 of a blob's first `offset` bytes, and what its data file looked like then.
struct RunningDigest {
  uint64_t offset = 0;
  uint64_t file_bytes = 0;
  int64_t mtime_ns = 0;
  std::unique_ptr<Digest> digest;
};

class FsBlobWriter final : public BlobWriter {
 public:
  FsBlobWriter(FsBlobStore* store, int fd, BlobInfo info, std::unique_ptr<Digest> digest)
      : store_(store), fd_(fd), info_(std::move(info)), pos_(info_.offset), digest_(std::move(digest)) {}
  ~FsBlobWriter() override {
    ::close(fd_);
  }  // releases the flock; uncommitted bytes are cut by the next Append

  Status Write(std::string_view bytes) override;
  Result<uint64_t> Commit() override;

 private:
  Status Flush();
  Status Finish();

  FsBlobStore* store_;
  int fd_;
  BlobInfo info_;
  uint64_t pos_;  // info_.offset plus the bytes written since (in the file or in buffer_)
  std::string buffer_;
  bool spent_ = false;
  std::unique_ptr<Digest> digest_;  // of bytes [0, pos_); null: hash the file at the last Commit
};

class FsBlobStore final : public BlobStore {
 public:
  FsBlobStore(std::string dir, const BlobStoreOptions& options) : dir_(std::move(dir)), options_(options) {}

  std::string DataPath(std::string_view id) const { return dir_ + "/" + std::string(id) + ".data"; }

  // The running digest of blob `id` at `offset`, if one is kept and the data file is as it was left.
  std::unique_ptr<Digest> TakeDigest(const std::string& id, uint64_t offset, int fd) {
    std::lock_guard<std::mutex> lock(digests_mu_);
    auto it = digests_.find(id);
    if (it == digests_.end()) return nullptr;
    RunningDigest d = std::move(it->second);
    digests_.erase(it);
    struct stat st;
    if (d.offset != offset || ::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != d.file_bytes ||
        MtimeNs(st) != d.mtime_ns) {
      return nullptr;
    }
    return std::move(d.digest);
  }
  void KeepDigest(const std::string& id, uint64_t offset, int fd, const Digest& digest) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return;
    std::lock_guard<std::mutex> lock(digests_mu_);
    if (digests_.size() >= kDigestsMax && !digests_.contains(id)) return;  // hashed again at the end
    digests_[id] = {offset, static_cast<uint64_t>(st.st_size), MtimeNs(st), digest.Clone()};
  }
  void DropDigest(const std::string& id) {
    std::lock_guard<std::mutex> lock(digests_mu_);
    digests_.erase(id);
  }
  static int64_t MtimeNs(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  std::string InfoPath(std::string_view id) const { return dir_ + "/" + std::string(id) + ".info"; }
  bool sync() const { return options_.sync; }

  Result<BlobInfo> ReadInfo(std::string_view id) {
    std::string path = InfoPath(id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return Status::NotFound("no such blob");
      return ErrnoStatus("open " + path, errno);
    }
    std::string text;
    OUTPOST_RETURN_IF_ERROR(ReadAt(fd.get(), 0, kInfoBytesMax, &text, path));
    return DecodeInfo(id, text);
  }

  // Replaces <id>.info atomically (temp file, fsync, rename, and with `sync_dir` a directory fsync).
  Status WriteInfo(const BlobInfo& info, bool sync_dir = true) {
    std::string path = InfoPath(info.id);
    std::string tmp = path + ".tmp";
    {
      Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (fd.get() < 0) return ErrnoStatus("open " + tmp, errno);
      OUTPOST_RETURN_IF_ERROR(WriteAll(fd.get(), EncodeInfo(info), 0, tmp));
      if (options_.sync && ::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + tmp, errno);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + tmp, errno);
    return sync_dir ? SyncDir() : Status::OK();
  }

  Status SyncDir() {
    if (!options_.sync) return Status::OK();
    Fd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + dir_, errno);
    return Status::OK();
  }

  // Opens <id>.data and takes its writer lock. NotFound when the blob is gone (also when it was removed
  // between the open and the lock); Aborted when another writer holds the lock.
  Result<int> OpenLocked(std::string_view id) {
    std::string path = DataPath(id);
    int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (raw < 0) {
      if (errno == ENOENT) return Status::NotFound("no such blob");
      return ErrnoStatus("open " + path, errno);
    }
    Fd fd(raw);
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) return Status::Aborted("blob is locked by another writer");
      return ErrnoStatus("flock " + path, errno);
    }
    // A Remove may have unlinked the file after our open: then our lock is on an orphan inode.
    struct stat by_fd, by_path;
    if (::fstat(fd.get(), &by_fd) != 0) return ErrnoStatus("fstat " + path, errno);
    if (::stat(path.c_str(), &by_path) != 0 || by_fd.st_ino != by_path.st_ino ||
        by_fd.st_dev != by_path.st_dev) {
      return Status::NotFound("no such blob");
    }
    return fd.release();
  }

  Result<BlobInfo> Create(const BlobSpec& spec, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobSpec(spec, options_));
    BlobInfo info;
    info.id = NewBlobId();
    info.spec = spec;
    info.created_at_ms = now_ms;
    if (spec.size == 0) {
      info.sha256 = ToHex(Sha256(""));
      if (!spec.sha256.empty() && spec.sha256 != info.sha256) {
        return Status::InvalidArgument("sha256 of an empty blob does not match the declared one");
      }
      info.complete = true;
    }
    std::string path = DataPath(info.id);
    {
      Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (fd.get() < 0) return ErrnoStatus("create " + path, errno);
    }
    Status s = WriteInfo(info);
    if (!s.ok()) {
      ::unlink(path.c_str());
      return s;
    }
    return info;
  }

  Result<BlobInfo> Stat(std::string_view id) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    return ReadInfo(id);
  }

  Result<std::unique_ptr<BlobWriter>> Append(std::string_view id, uint64_t offset) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    OUTPOST_ASSIGN_OR_RETURN(int raw, OpenLocked(id));
    Fd fd(raw);
    // Read under the lock: no other writer can change it now.
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, ReadInfo(id));
    if (info.complete) return Status::FailedPrecondition("blob is complete");
    if (offset != info.offset) {
      return Status::Conflict("blob offset is " + std::to_string(info.offset) + ", not " +
                              std::to_string(offset));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + DataPath(id), errno);
    uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
    if (file_bytes < info.offset) {
      return Status::Corruption("blob data of " + std::string(id) + " is shorter than its recorded offset");
    }
    // Bytes past the offset were never committed (a crash, a dropped writer): they do not count.
    if (file_bytes > info.offset && ::ftruncate(fd.get(), static_cast<off_t>(info.offset)) != 0) {
      return ErrnoStatus("truncate " + DataPath(id), errno);
    }
    std::unique_ptr<Digest> digest = info.offset == 0 ? std::make_unique<Digest>(DigestKind::kSha256)
                                                      : TakeDigest(info.id, info.offset, fd.get());
    return std::unique_ptr<BlobWriter>(
        std::make_unique<FsBlobWriter>(this, fd.release(), std::move(info), std::move(digest)));
  }

  Status Read(std::string_view id, uint64_t offset, size_t n, std::string* out) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, ReadInfo(id));
    if (!info.complete) return Status::NotFound("no such complete blob");
    if (offset > info.spec.size) return Status::InvalidArgument("read offset past the end of the blob");
    std::string path = DataPath(id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return Status::NotFound("no such complete blob");
      return ErrnoStatus("open " + path, errno);
    }
    return ReadAt(fd.get(), offset, static_cast<size_t>(std::min<uint64_t>(n, info.spec.size - offset)), out,
                  path);
  }

  Status Remove(std::string_view id) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    DropDigest(std::string(id));
    Result<int> locked = OpenLocked(id);
    if (!locked.ok() && !locked.status().IsNotFound()) return locked.status();
    Fd fd(locked.ok() ? *locked : -1);
    return RemoveFiles(id, /*data_present=*/locked.ok());
  }

  Result<uint64_t> RemoveExpired(int64_t now_ms) override {
    Fd dir_fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) return ErrnoStatus("open " + dir_, errno);
    DIR* dir = ::fdopendir(::dup(dir_fd.get()));
    if (dir == nullptr) return ErrnoStatus("opendir " + dir_, errno);
    uint64_t removed = 0;
    Status first_error;
    // Entries unlinked while the directory is read are not visited again; new ones may or may not be.
    while (struct dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name.size() != 32 + 5 || name.substr(32) != ".info" || !IsValidBlobId(name.substr(0, 32))) continue;
      std::string id(name.substr(0, 32));
      Result<BlobInfo> info = ReadInfo(id);
      if (!info.ok() || !Expired(*info, now_ms)) continue;
      Result<int> locked = OpenLocked(id);
      if (!locked.ok() && !locked.status().IsNotFound()) continue;  // being written: not abandoned
      Fd fd(locked.ok() ? *locked : -1);
      // Again under the lock: a writer may have finished it in between.
      info = ReadInfo(id);
      if (!info.ok() || !Expired(*info, now_ms)) continue;
      Status s = RemoveFiles(id, locked.ok());
      DropDigest(id);
      if (s.ok()) {
        ++removed;
      } else if (first_error.ok()) {
        first_error = s;
      }
    }
    ::closedir(dir);
    if (!first_error.ok()) return first_error;
    return removed;
  }

 private:
  static bool Expired(const BlobInfo& info, int64_t now_ms) {
    return !info.complete && info.spec.expires_at_ms != 0 && info.spec.expires_at_ms <= now_ms;
  }

  // .info first: without it the blob is gone for every reader, and a leftover .data is harmless.
  Status RemoveFiles(std::string_view id, bool data_present) {
    std::string info = InfoPath(id);
    bool had_info = ::unlink(info.c_str()) == 0;
    if (!had_info && errno != ENOENT) return ErrnoStatus("unlink " + info, errno);
    std::string data = DataPath(id);
    if (data_present && ::unlink(data.c_str()) != 0 && errno != ENOENT)
      return ErrnoStatus("unlink " + data, errno);
    if (!had_info && !data_present) return Status::NotFound("no such blob");
    return SyncDir();
  }

  std::string dir_;
  BlobStoreOptions options_;
  std::mutex digests_mu_;
  std::map<std::string, RunningDigest> digests_;  // guarded by digests_mu_
};

Status FsBlobWriter::Flush() {
  if (buffer_.empty()) return Status::OK();
  uint64_t at = pos_ - buffer_.size();
  Status s = WriteAll(fd_, buffer_, at, store_->DataPath(info_.id));
  buffer_.clear();
  return s;
}

Status FsBlobWriter::Write(std::string_view bytes) {
  if (spent_) return Status::FailedPrecondition("blob writer is spent");
  if (bytes.size() > info_.spec.size - pos_) {
    return Status::InvalidArgument("write past the blob's size of " + std::to_string(info_.spec.size));
  }
  pos_ += bytes.size();
  if (digest_) digest_->Update(bytes);
  if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
    // Flush what is buffered (its place is before `bytes`), then write big pieces directly.
    uint64_t end = pos_;
    pos_ -= bytes.size();
    Status s = Flush();
    pos_ = end;
    if (!s.ok()) {
      spent_ = true;
      return s;
    }
    if (bytes.size() >= kWriteBufferBytes) {
      s = WriteAll(fd_, bytes, pos_ - bytes.size(), store_->DataPath(info_.id));
      if (!s.ok()) spent_ = true;
      return s;
    }
  }
  buffer_.append(bytes);
  return Status::OK();
}

Result<uint64_t> FsBlobWriter::Commit() {
  if (spent_) return Status::FailedPrecondition("blob writer is spent");
  Status s = Flush();
  if (s.ok() && store_->sync() && ::fdatasync(fd_) != 0)
    s = ErrnoStatus("fdatasync " + store_->DataPath(info_.id), errno);
  if (!s.ok()) {
    spent_ = true;
    return s;
  }
  BlobInfo next = info_;
  next.offset = pos_;
  if (next.offset == next.spec.size) {
    OUTPOST_RETURN_IF_ERROR(Finish());
    return info_.offset;
  }
  OUTPOST_RETURN_IF_ERROR(store_->WriteInfo(next, /*sync_dir=*/false));
  info_ = std::move(next);
  if (digest_) store_->KeepDigest(info_.id, info_.offset, fd_, *digest_);
  return info_.offset;
}

// The last Commit: hash the blob, then complete it or reset it to offset 0.
Status FsBlobWriter::Finish() {
  spent_ = true;  // either way this writer is done
  std::string path = store_->DataPath(info_.id);
  store_->DropDigest(info_.id);
  if (!digest_) {
    digest_ = std::make_unique<Digest>(DigestKind::kSha256);
    std::string chunk;
    for (uint64_t at = 0; at < pos_;) {
      OUTPOST_RETURN_IF_ERROR(
          ReadAt(fd_, at, static_cast<size_t>(std::min<uint64_t>(kHashChunkBytes, pos_ - at)), &chunk, path));
      if (chunk.empty()) return Status::Corruption("blob data of " + info_.id + " ended early");
      digest_->Update(chunk);
      at += chunk.size();
    }
  }
  std::string hex = ToHex(digest_->Final());
  BlobInfo next = info_;
  if (!info_.spec.sha256.empty() && hex != info_.spec.sha256) {
    // Offset 0 first, then cut the bytes: a crash in between leaves bytes past the offset, which do not
    // count.
    next.offset = 0;
    OUTPOST_RETURN_IF_ERROR(store_->WriteInfo(next));
    info_ = std::move(next);
    if (::ftruncate(fd_, 0) != 0) return ErrnoStatus("truncate " + path, errno);
    return Status::Corruption("sha256 mismatch");
  }
  next.offset = pos_;
  next.complete = true;
  next.sha256 = hex;
  OUTPOST_RETURN_IF_ERROR(store_->WriteInfo(next));
  info_ = std::move(next);
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<BlobStore>> NewFsBlobStore(const std::string& dir, const BlobStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("blob store directory " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    return Status::IOError("blob store path " + dir + " is not a directory");
  return std::unique_ptr<BlobStore>(std::make_unique<FsBlobStore>(dir, options));
}

}  // namespace outpost::media
