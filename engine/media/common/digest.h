// Copyright 2026 The Outpost Authors.
//
// Digests of attachment bytes (OpenSSL's libcrypto): SHA-256 names a whole blob (declared at upload, checked
// by the server before the blob is readable, checked again by a downloader); SHA-1 and SHA-256 check each tus
// chunk (Upload-Checksum). Streaming: bytes are fed in pieces, never held whole.
#ifndef OUTPOST_MEDIA_COMMON_DIGEST_H_
#define OUTPOST_MEDIA_COMMON_DIGEST_H_

#include <memory>
#include <string>
#include <string_view>

#include "outpost/result.h"

namespace outpost::media {

enum class DigestKind { kSha1, kSha256 };

class Digest {
 public:
  explicit Digest(DigestKind kind);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(std::string_view bytes);
  // A digest in the same state: more bytes may go to either without the other seeing them.
  std::unique_ptr<Digest> Clone() const;
  // The raw digest (20 or 32 bytes); the Digest starts again after it.
  std::string Final();

 private:
  struct Ctx;
  DigestKind kind_;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256(std::string_view bytes);  // raw
std::string Sha1(std::string_view bytes);    // raw
std::string ToHex(std::string_view raw);     // lowercase
// SHA-256 of a file's bytes, as lowercase hex, read 1 MiB at a time. NotFound / IOError.
Result<std::string> Sha256FileHex(const std::string& path);
bool IsSha256Hex(std::string_view s);  // 64 lowercase hex characters

// Standard base64 (with padding), as tus's Upload-Metadata and Upload-Checksum use it.
std::string Base64Encode(std::string_view raw);
// Empty optional-like: false when `text` is not valid padded base64.
bool Base64Decode(std::string_view text, std::string* raw);

}  // namespace outpost::media

#endif  // OUTPOST_MEDIA_COMMON_DIGEST_H_
