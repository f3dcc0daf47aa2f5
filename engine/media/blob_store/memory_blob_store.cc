// Copyright 2026 The Outpost Authors.
//
// The memory BlobStore (tests, and `memory:`): every blob's bytes in a std::string under one mutex. Bytes a
// writer writes go straight into the blob's string past its committed offset; Commit moves the offset, and
// the next Append cuts anything past it, so uncommitted bytes never count (the same rule as the file store).
// A writer keeps the store's state alive, so it may outlive the store object.
#include <map>
#include <mutex>

#include "media/blob_store/blob_store_internal.h"
#include "media/common/digest.h"

namespace outpost::media {
namespace {

struct MemoryBlob {
  BlobInfo info;
  std::string data;  // committed bytes, then what an open writer wrote since its last Commit
  bool writer_open = false;
};

struct MemoryState {
  std::mutex mu;
  std::map<std::string, MemoryBlob, std::less<>> blobs;
};

// Verifies a blob whose offset reached its size: complete, or reset to offset 0 (Corruption).
Status FinishLocked(MemoryBlob& blob) {
  std::string digest = ToHex(Sha256(blob.data));
  if (!blob.info.spec.sha256.empty() && digest != blob.info.spec.sha256) {
    blob.data.clear();
    blob.info.offset = 0;
    return Status::Corruption("sha256 mismatch");
  }
  blob.info.complete = true;
  blob.info.sha256 = digest;
  return Status::OK();
}

class MemoryBlobWriter final : public BlobWriter {
 public:
  MemoryBlobWriter(std::shared_ptr<MemoryState> state, std::string id)
      : state_(std::move(state)), id_(std::move(id)) {}
  ~MemoryBlobWriter() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->blobs.find(id_);
    if (it == state_->blobs.end()) return;
    it->second.data.resize(it->second.info.offset);  // uncommitted bytes never count
    it->second.writer_open = false;
  }

  Status Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    OUTPOST_ASSIGN_OR_RETURN(MemoryBlob * blob, FindLocked());
    if (bytes.size() > blob->info.spec.size - blob->data.size()) {
      return Status::InvalidArgument("write past the blob's size of " + std::to_string(blob->info.spec.size));
    }
    blob->data.append(bytes);
    return Status::OK();
  }

  Result<uint64_t> Commit() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    OUTPOST_ASSIGN_OR_RETURN(MemoryBlob * blob, FindLocked());
    blob->info.offset = blob->data.size();
    if (blob->info.offset == blob->info.spec.size) OUTPOST_RETURN_IF_ERROR(FinishLocked(*blob));
    return blob->info.offset;
  }

 private:
  Result<MemoryBlob*> FindLocked() {
    auto it = state_->blobs.find(id_);
    if (it == state_->blobs.end()) return Status::NotFound("blob removed while being written");
    if (it->second.info.complete) return Status::FailedPrecondition("blob is complete");
    return &it->second;
  }

  std::shared_ptr<MemoryState> state_;
  std::string id_;
};

class MemoryBlobStore final : public BlobStore {
 public:
  explicit MemoryBlobStore(const BlobStoreOptions& options)
      : options_(options), state_(std::make_shared<MemoryState>()) {}

  Result<BlobInfo> Create(const BlobSpec& spec, int64_t now_ms) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobSpec(spec, options_));
    MemoryBlob blob;
    blob.info.id = NewBlobId();
    blob.info.spec = spec;
    blob.info.created_at_ms = now_ms;
    if (spec.size == 0) {
      Status s = FinishLocked(blob);
      if (!s.ok()) return Status::InvalidArgument("sha256 of an empty blob does not match the declared one");
    }
    std::lock_guard<std::mutex> lock(state_->mu);
    BlobInfo info = blob.info;
    state_->blobs.emplace(info.id, std::move(blob));
    return info;
  }

  Result<BlobInfo> Stat(std::string_view id) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->blobs.find(id);
    if (it == state_->blobs.end()) return Status::NotFound("no such blob");
    return it->second.info;
  }

  Result<std::unique_ptr<BlobWriter>> Append(std::string_view id, uint64_t offset) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->blobs.find(id);
    if (it == state_->blobs.end()) return Status::NotFound("no such blob");
    MemoryBlob& blob = it->second;
    if (blob.info.complete) return Status::FailedPrecondition("blob is complete");
    if (blob.writer_open) return Status::Aborted("blob is locked by another writer");
    if (offset != blob.info.offset) {
      return Status::Conflict("blob offset is " + std::to_string(blob.info.offset) + ", not " +
                              std::to_string(offset));
    }
    blob.data.resize(blob.info.offset);
    blob.writer_open = true;
    return std::unique_ptr<BlobWriter>(std::make_unique<MemoryBlobWriter>(state_, std::string(id)));
  }

  Status Read(std::string_view id, uint64_t offset, size_t n, std::string* out) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->blobs.find(id);
    if (it == state_->blobs.end() || !it->second.info.complete)
      return Status::NotFound("no such complete blob");
    const std::string& data = it->second.data;
    if (offset > data.size()) return Status::InvalidArgument("read offset past the end of the blob");
    out->assign(data, offset, std::min<uint64_t>(n, data.size() - offset));
    return Status::OK();
  }

  Status Remove(std::string_view id) override {
    OUTPOST_RETURN_IF_ERROR(CheckBlobId(id));
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->blobs.find(id);
    if (it == state_->blobs.end()) return Status::NotFound("no such blob");
    if (it->second.writer_open) return Status::Aborted("blob is locked by a writer");
    state_->blobs.erase(it);
    return Status::OK();
  }

  Result<uint64_t> RemoveExpired(int64_t now_ms) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    uint64_t removed = 0;
    for (auto it = state_->blobs.begin(); it != state_->blobs.end();) {
      const BlobInfo& info = it->second.info;
      // A blob being written is skipped: its writer is busy with it now, so it is not abandoned.
      if (!info.complete && info.spec.expires_at_ms != 0 && info.spec.expires_at_ms <= now_ms &&
          !it->second.writer_open) {
        it = state_->blobs.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    return removed;
  }

 private:
  BlobStoreOptions options_;
  std::shared_ptr<MemoryState> state_;
};

}  // namespace

std::unique_ptr<BlobStore> NewMemoryBlobStore(const BlobStoreOptions& options) {
  return std::make_unique<MemoryBlobStore>(options);
}

}  // namespace outpost::media
