// Copyright 2026 The Outpost Authors.
//
// The libvips Thumbnailer. libvips is driven through sources on a descriptor this file opens itself, not
// through file names: a libvips file name may carry load options ("a.jpg[shrink=2]"), and opening the file
// here tells a missing or unreadable file (IOError) apart from one libvips does not know (NotFound).
#include "media/thumbnail/vips_thumbnailer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vips/vips8>

namespace outpost {
namespace media {
namespace {

// JPEG qualities tried in turn at each size before the size is halved.
constexpr int kQualities[] = {80, 70, 60, 50, 40, 30};
// The smallest longest side tried before giving up with Full.
constexpr uint32_t kSideFloorPx = 16;

// VIPS_INIT is process-wide and must run once; the first caller's outcome is every caller's.
std::once_flag init_once;
std::string init_error;  // written once under init_once, read-only after

void InitVips() {
  if (VIPS_INIT("outpost") != 0) {
    init_error = std::string("libvips failed to start: ") + vips_error_buffer();
    vips_error_clear();
    return;
  }
  // The operation cache would keep decoded images and open sources (descriptors) after Make returns, and
  // a thumbnail is made once per attachment: nothing to gain from it.
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  vips_cache_set_max_files(0);
  // Loaders libvips itself does not fuzz (ImageMagick, MATLAB, OpenSlide...) are not for files from others.
  vips_block_untrusted_set(TRUE);
}

// The message of the libvips error just thrown, without the trailing newline; clears libvips's
// (process-wide) error buffer so that the next error does not carry this one.
std::string VipsMessage(const vips::VError& e) {
  std::string what = e.what();
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  vips_error_clear();
  return what.empty() ? "libvips gave no reason" : what;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` for reading: IOError when it is missing, unreadable or not a regular file. O_NONBLOCK keeps a
// FIFO from blocking the open (it is then refused as not a regular file); it does nothing on regular files.
Result<int> OpenRegular(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::IOError("not a regular file: " + path);
  }
  return fd;
}

// An image ready for JPEG: 8-bit sRGB or grey, no alpha (flattened onto white), in memory so that the
// encode loop does not run the pipeline again for each try.
vips::VImage ForJpeg(vips::VImage image) {
  const VipsInterpretation interpretation = image.interpretation();
  if (interpretation != VIPS_INTERPRETATION_sRGB && interpretation != VIPS_INTERPRETATION_B_W) {
    image = image.colourspace(VIPS_INTERPRETATION_sRGB);
  }
  if (image.has_alpha()) image = image.flatten(vips::VImage::option()->set("background", 255.0));
  if (image.format() != VIPS_FORMAT_UCHAR) image = image.cast(VIPS_FORMAT_UCHAR);
  return image.copy_memory();
}

// The JPEG encoding of `image` at `quality`, metadata stripped (EXIF, ICC, XMP would eat the byte budget,
// and the pixels are already upright and sRGB).
std::string EncodeJpeg(const vips::VImage& image, int quality) {
  VipsBlob* blob = image.jpegsave_buffer(
      vips::VImage::option()->set("Q", quality)->set("strip", true)->set("optimize_coding", true));
  std::string bytes(static_cast<const char*>(VIPS_AREA(blob)->data), VIPS_AREA(blob)->length);
  vips_area_unref(VIPS_AREA(blob));
  return bytes;
}

// The image in `source`, read front to back (sequential: the header alone until pixels are asked for),
// `shrink` times smaller (JPEG only: 1, 2, 4 or 8). The loader stops at the first truncation or serious
// decode error rather than fill the rest with grey.
vips::VImage Load(const vips::VSource& source, int shrink) {
  vips::VOption* options =
      vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL)->set("fail_on", VIPS_FAIL_ON_ERROR);
  if (shrink > 1) options->set("shrink", shrink);
  return vips::VImage::new_from_source(source, "", options);
}

// The JPEG shrink-on-load factor for a longest side of `longest` px into `side` px, as libvips's own
// thumbnail picks it: the block shrink of the decoder is crude, so it leaves at least a factor of two to the
// resampling that follows.
int JpegShrink(int longest, int side) {
  const double shrink = static_cast<double>(longest) / side;
  if (shrink >= 16) return 8;
  if (shrink >= 8) return 4;
  if (shrink >= 4) return 2;
  return 1;
}

class VipsThumbnailer final : public Thumbnailer {
 public:
  Result<Thumbnail> Make(std::string_view path_view, const ThumbnailOptions& options) override {
    std::call_once(init_once, InitVips);
    if (!init_error.empty()) return Status::IOError(init_error);
    if (options.side_px_max == 0 || options.side_px_max > kThumbnailSidePxMax) {
      return Status::InvalidArgument("side_px_max must be 1.." + std::to_string(kThumbnailSidePxMax) +
                                     ", not " + std::to_string(options.side_px_max));
    }
    const std::string path(path_view);
    Result<int> opened = OpenRegular(path);
    if (!opened.ok()) return opened.status();
    const Fd fd(*opened);  // outlives every libvips object below, which read through it
    try {
      return MakeFrom(fd.get(), path, options);
    } catch (const vips::VError& e) {
      // Only decoding and encoding throw here: the loader knew the format, so the bytes are at fault.
      return Status::Corruption("cannot decode " + path + ": " + VipsMessage(e));
    }
  }

 private:
  // Throws vips::VError for an image libvips cannot decode.
  static Result<Thumbnail> MakeFrom(int fd, const std::string& path, const ThumbnailOptions& options) {
    vips::VSource source = vips::VSource::new_from_descriptor(fd);
    const char* loader = vips_foreign_find_load_source(source.get_source());
    if (loader == nullptr) {
      vips_error_clear();
      return Status::NotFound("not an image: " + path);
    }
    const bool jpeg = std::string_view(loader).starts_with("VipsForeignLoadJpeg");

    // Sequential access reads the header only: the dimensions without decoding a pixel.
    Thumbnail out;
    int longest_source = 0;
    {
      vips::VImage header = Load(source, 1);
      const uint64_t pixels = uint64_t(header.width()) * uint64_t(header.height());
      if (pixels > kSourcePixelsMax) {
        return Status::NotFound("image too large for a thumbnail (" + std::to_string(header.width()) + "x" +
                                std::to_string(header.height()) + "): " + path);
      }
      // EXIF orientations 5 to 8 turn the image a quarter, so that its upright width is its stored height.
      int orientation = 1;
      if (header.get_typeof(VIPS_META_ORIENTATION) != 0) orientation = header.get_int(VIPS_META_ORIENTATION);
      const bool quarter = orientation >= 5 && orientation <= 8;
      out.source_width = static_cast<uint32_t>(quarter ? header.height() : header.width());
      out.source_height = static_cast<uint32_t>(quarter ? header.width() : header.height());
      longest_source = std::max(header.width(), header.height());
    }

    // Shrink-on-load for JPEG (decoded at 1/2, 1/4 or 1/8 scale, so a 48 MP photo never is whole), then a
    // fit into the side x side box, never enlarged. vips_thumbnail_source would choose the same shrink, but
    // in libvips 8.14 it ignores fail_on: a truncated JPEG would come out with a grey half.
    const int side = static_cast<int>(options.side_px_max);
    const int shrink = jpeg ? JpegShrink(longest_source, side) : 1;
    vips::VImage image = Load(source, shrink)
                             .thumbnail_image(side, vips::VImage::option()
                                                        ->set("height", side)
                                                        ->set("size", VIPS_SIZE_DOWN)
                                                        ->set("auto_rotate", true))
                             .copy_memory();
    // thumbnail_image turns the image upright and drops the tag; should a libvips not, turn it here.
    if (image.get_typeof(VIPS_META_ORIENTATION) != 0 && image.get_int(VIPS_META_ORIENTATION) != 1) {
      image = image.autorot();
    }
    image = ForJpeg(image);

    const uint32_t floor_px = std::min(kSideFloorPx, options.side_px_max);
    size_t smallest = 0;
    for (;;) {
      const uint32_t longest = static_cast<uint32_t>(std::max(image.width(), image.height()));
      for (const int quality : kQualities) {
        std::string bytes = EncodeJpeg(image, quality);
        if (bytes.size() <= options.bytes_max) {
          out.bytes = std::move(bytes);
          out.mime = "image/jpeg";
          out.width = static_cast<uint32_t>(image.width());
          out.height = static_cast<uint32_t>(image.height());
          return out;
        }
        smallest = bytes.size();
      }
      if (longest <= floor_px) break;
      const int next = static_cast<int>(std::max(longest / 2, floor_px));
      image = image.thumbnail_image(next, vips::VImage::option()->set("height", next)).copy_memory();
    }
    return Status::Full("no JPEG thumbnail of " + path + " fits " + std::to_string(options.bytes_max) +
                        " bytes (the smallest took " + std::to_string(smallest) + ")");
  }
};

}  // namespace
}  // namespace media

std::unique_ptr<Thumbnailer> OpenVipsThumbnailer() {
  std::call_once(media::init_once, media::InitVips);
  return std::make_unique<media::VipsThumbnailer>();
}

}  // namespace outpost
