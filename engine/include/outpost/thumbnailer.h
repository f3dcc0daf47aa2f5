// Copyright 2026 The Outpost Authors.
//
// Thumbnailer: makes the small preview that travels inside a message, on the device, at send time. The
// default (OpenVipsThumbnailer, engine/media/thumbnail/vips_thumbnailer.h) uses libvips with shrink-on-load,
// so a 48-megapixel JPEG is never decoded whole; an app may supply the platform's own.
//
// Thread safety: Make may be called from any thread.
#ifndef OUTPOST_THUMBNAILER_H_
#define OUTPOST_THUMBNAILER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/export.h"
#include "outpost/result.h"

namespace outpost {

struct ThumbnailOptions {
  uint32_t side_px_max = 320;     // longest side of the thumbnail
  uint32_t bytes_max = 8 * 1024;  // encoded size cap: quality (then size) goes down until it fits
};

struct Thumbnail {
  std::string bytes;   // encoded image (JPEG), <= bytes_max
  std::string mime;    // "image/jpeg"
  uint32_t width = 0;  // of the thumbnail
  uint32_t height = 0;
  uint32_t source_width = 0;  // of the original, EXIF orientation applied
  uint32_t source_height = 0;
};

class OUTPOST_EXPORT Thumbnailer {
 public:
  virtual ~Thumbnailer() = default;
  // The thumbnail of the image file at `path`, EXIF orientation applied, never larger than the source.
  // NotFound when the file is not an image the thumbnailer knows, or one it declines (too large): no
  // thumbnail, not an error for the send. Corruption for an image that cannot be decoded (a truncated or
  // damaged file: never a partly grey thumbnail). IOError when the file cannot be read (missing,
  // unreadable, not a regular file), so that NotFound always means "no thumbnail for this kind of file".
  // Full when no encoding fits bytes_max. InvalidArgument for options out of an implementation's range.
  virtual Result<Thumbnail> Make(std::string_view path, const ThumbnailOptions& options) = 0;
};

}  // namespace outpost

#endif  // OUTPOST_THUMBNAILER_H_
