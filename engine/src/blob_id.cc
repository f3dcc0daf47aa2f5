// Copyright 2026 The Outpost Authors.
#include "outpost/blob_store.h"
#include "outpost/media_transport.h"

namespace outpost {

bool IsValidBlobId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string BlobIdOfUploadUrl(std::string_view upload_url) {
  size_t end = upload_url.find_first_of("?#");
  if (end != std::string_view::npos) upload_url = upload_url.substr(0, end);
  while (!upload_url.empty() && upload_url.back() == '/') upload_url.remove_suffix(1);
  size_t slash = upload_url.rfind('/');
  std::string_view last = slash == std::string_view::npos ? upload_url : upload_url.substr(slash + 1);
  return IsValidBlobId(last) ? std::string(last) : std::string();
}

}  // namespace outpost
