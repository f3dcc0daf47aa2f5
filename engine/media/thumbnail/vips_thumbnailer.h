// Copyright 2026 The Outpost Authors.
//
// The default Thumbnailer, on libvips: JPEG, PNG, WebP, GIF, TIFF, HEIF and whatever else the installed
// libvips loads (its "untrusted" loaders, such as ImageMagick's and MATLAB's, are blocked). JPEG uses
// shrink-on-load, so a 48-megapixel photo is decoded at 1/8 scale and never held whole (peak RSS of the
// process stays under 64 MB; bench/thumbnail_bench.cc measures it).
//
// Process-wide effects: the first OpenVipsThumbnailer starts libvips (VIPS_INIT, once per process), turns its
// operation cache off (so no image or file stays open after Make returns) and blocks its untrusted loaders.
// An app that uses libvips for something else shares these settings.
//
// Limits and errors, beyond thumbnailer.h: side_px_max must be 1..4096 (InvalidArgument otherwise); a source
// of more than kSourcePixelsMax pixels gets no thumbnail (NotFound), as a decompression bomb would cost
// minutes of CPU. The thumbnail is never larger than the source (no enlargement). Its longest side shrinks
// by halves, down to 16 px (or side_px_max if smaller), when no JPEG quality from 80 down to 30 fits
// bytes_max. Transparent pixels are flattened onto white.
#ifndef OUTPOST_MEDIA_THUMBNAIL_VIPS_THUMBNAILER_H_
#define OUTPOST_MEDIA_THUMBNAIL_VIPS_THUMBNAILER_H_

#include <cstdint>
#include <memory>

#include "outpost/thumbnailer.h"

namespace outpost {

// Sources larger than this (256 Mi pixels, e.g. 16384 x 16384) get no thumbnail. A 200 MP phone photo fits.
inline constexpr uint64_t kSourcePixelsMax = uint64_t{16384} * 16384;
// Largest side_px_max accepted.
inline constexpr uint32_t kThumbnailSidePxMax = 4096;

// Never null. If libvips failed to start, every Make returns IOError saying why.
std::unique_ptr<Thumbnailer> OpenVipsThumbnailer();

}  // namespace outpost

#endif  // OUTPOST_MEDIA_THUMBNAIL_VIPS_THUMBNAILER_H_
