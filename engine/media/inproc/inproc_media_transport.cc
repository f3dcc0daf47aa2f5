// Copyright 2026 The Outpost Authors.
#include "media/inproc/inproc_media_transport.h"

#include "outpost/env.h"

namespace outpost {

namespace {

class InprocMediaTransport : public MediaTransport {
 public:
  InprocMediaTransport(std::shared_ptr<BlobStore> blobs, InprocMediaOptions options)
      : blobs_(std::move(blobs)), opt_(std::move(options)) {}

  Result<std::string> CreateUpload(const MediaEndpoint& at, const UploadSpec& spec) override {
    OUTPOST_RETURN_IF_ERROR(Before("create"));
    OUTPOST_ASSIGN_OR_RETURN(MediaPrincipal who, Authenticate(at.token));
    BlobSpec b;
    b.owner = who.user;
    b.owner_device = who.device;
    b.size = spec.size;
    b.content_type = spec.content_type;
    b.sha256 = spec.sha256;
    Env* env = opt_.env ? opt_.env : SystemEnv();
    int64_t now = env->NowMs();
    if (opt_.upload_expiry_ms > 0) b.expires_at_ms = now + opt_.upload_expiry_ms;
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, blobs_->Create(b, now));
    OUTPOST_RETURN_IF_ERROR(After("create"));
    return at.url + info.id;
  }

  Result<uint64_t> UploadOffset(const MediaEndpoint& at, std::string_view url) override {
    OUTPOST_RETURN_IF_ERROR(Before("head"));
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, OwnUpload(at, url));
    OUTPOST_RETURN_IF_ERROR(After("head"));
    return info.offset;
  }

  Result<uint64_t> AppendUpload(const MediaEndpoint& at, std::string_view url, uint64_t offset,
                                std::string_view chunk) override {
    OUTPOST_RETURN_IF_ERROR(Before("append"));
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, OwnUpload(at, url));
    if (info.complete) return Status::Conflict("upload is complete");
    OUTPOST_ASSIGN_OR_RETURN(auto writer, blobs_->Append(info.id, offset));
    OUTPOST_RETURN_IF_ERROR(writer->Write(chunk));
    OUTPOST_ASSIGN_OR_RETURN(uint64_t next, writer->Commit());
    OUTPOST_RETURN_IF_ERROR(After("append"));
    return next;
  }

  Status TerminateUpload(const MediaEndpoint& at, std::string_view url) override {
    OUTPOST_RETURN_IF_ERROR(Before("delete"));
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, OwnUpload(at, url));
    // Termination is for unfinished uploads: a complete blob may be referenced by applied ops.
    if (info.complete) return Status::Conflict("the upload is complete; only unfinished uploads are deleted");
    OUTPOST_RETURN_IF_ERROR(blobs_->Remove(info.id));
    return After("delete");
  }

  Result<uint64_t> Download(const MediaEndpoint& at, std::string_view blob_id, uint64_t offset,
                            const std::function<Status(std::string_view bytes)>& sink) override {
    OUTPOST_RETURN_IF_ERROR(Before("download"));
    OUTPOST_ASSIGN_OR_RETURN(MediaPrincipal who, Authenticate(at.token));
    auto info = blobs_->Stat(blob_id);
    bool allowed = info.ok() && info->complete;
    if (allowed && info->spec.owner != who.user) {
      allowed = false;
      if (opt_.may_read) {
        OUTPOST_ASSIGN_OR_RETURN(allowed, opt_.may_read(who, *info));
      }
    }
    if (!allowed) return Status::NotFound("no blob " + std::string(blob_id));
    if (offset > info->spec.size) return Status::InvalidArgument("offset past the blob's end");
    std::string piece;
    constexpr size_t kPiece = 256 * 1024;
    for (uint64_t at_off = offset; at_off < info->spec.size;) {
      OUTPOST_RETURN_IF_ERROR(blobs_->Read(info->id, at_off, kPiece, &piece));
      if (piece.empty()) return Status::Corruption("blob shorter than its size");
      OUTPOST_RETURN_IF_ERROR(sink(piece));
      at_off += piece.size();
    }
    OUTPOST_RETURN_IF_ERROR(After("download"));
    return info->spec.size;
  }

 private:
  Status Before(std::string_view what) { return opt_.fail_before ? opt_.fail_before(what) : Status::OK(); }
  Status After(std::string_view what) { return opt_.fail_after ? opt_.fail_after(what) : Status::OK(); }

  Result<MediaPrincipal> Authenticate(const std::string& token) {
    if (opt_.authenticate) return opt_.authenticate(token);
    if (token.empty()) return Status::PermissionDenied("authentication failed: no token");
    return MediaPrincipal{token, ""};
  }

  // The upload behind `url`, when it is the caller's; NotFound otherwise (as the HTTP server answers 404).
  Result<BlobInfo> OwnUpload(const MediaEndpoint& at, std::string_view url) {
    OUTPOST_ASSIGN_OR_RETURN(MediaPrincipal who, Authenticate(at.token));
    std::string id = BlobIdOfUploadUrl(url);
    if (id.empty()) return Status::NotFound("no upload at " + std::string(url));
    OUTPOST_ASSIGN_OR_RETURN(BlobInfo info, blobs_->Stat(id));
    // Uploads belong to (user, device), as on the HTTP server.
    if (info.spec.owner != who.user ||
        (!info.spec.owner_device.empty() && info.spec.owner_device != who.device)) {
      return Status::NotFound("no upload at " + std::string(url));
    }
    return info;
  }

  std::shared_ptr<BlobStore> blobs_;
  InprocMediaOptions opt_;
};

}  // namespace

std::unique_ptr<MediaTransport> OpenInprocMediaTransport(std::shared_ptr<BlobStore> blobs,
                                                         InprocMediaOptions options) {
  return std::make_unique<InprocMediaTransport>(std::move(blobs), std::move(options));
}

}  // namespace outpost
