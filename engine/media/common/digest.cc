// Copyright 2026 The Outpost Authors.
#include "media/common/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace outpost::media {

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

namespace {
const EVP_MD* Md(DigestKind kind) { return kind == DigestKind::kSha1 ? EVP_sha1() : EVP_sha256(); }
}  // namespace

Digest::Digest(DigestKind kind) : kind_(kind), ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, Md(kind_), nullptr);
}

Digest::~Digest() = default;

std::unique_ptr<Digest> Digest::Clone() const {
  auto copy = std::make_unique<Digest>(kind_);
  EVP_MD_CTX_copy_ex(copy->ctx_->md, ctx_->md);
  return copy;
}

void Digest::Update(std::string_view bytes) { EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size()); }

std::string Digest::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &n);
  EVP_DigestInit_ex(ctx_->md, Md(kind_), nullptr);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string Sha256(std::string_view bytes) {
  Digest d(DigestKind::kSha256);
  d.Update(bytes);
  return d.Final();
}

std::string Sha1(std::string_view bytes) {
  Digest d(DigestKind::kSha1);
  d.Update(bytes);
  return d.Final();
}

std::string ToHex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

Result<std::string> Sha256FileHex(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    std::string msg = path + ": " + std::strerror(e);
    return e == ENOENT ? Status::NotFound(msg) : Status::IOError(msg);
  }
  Digest d(DigestKind::kSha256);
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string msg = path + ": " + std::strerror(errno);
      ::close(fd);
      return Status::IOError(msg);
    }
    if (n == 0) break;
    d.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return ToHex(d.Final());
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool Base64Decode(std::string_view text, std::string* raw) {
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '/' || (c == '=' && i + 2 >= text.size());
    if (!ok) return false;
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  *raw = std::move(out);
  return true;
}

}  // namespace outpost::media
