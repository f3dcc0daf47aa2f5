// Copyright 2026 The Outpost Authors.
#include "thumbnail_art.h"

#include <fmt/format.h>
#include <glib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vips/vips8>

#include "media/thumbnail/vips_thumbnailer.h"

namespace outpost::chat_cli {
namespace {

constexpr int kCube[6] = {0, 95, 135, 175, 215, 255};
constexpr int kSourceSideMax = 4096;

// Index (0..5) of the cube level nearest v.
int CubeLevel(int v) {
  if (v < 48) return 0;
  if (v < 115) return 1;
  return std::min((v - 35) / 40, 5);
}

int Distance(int r1, int g1, int b1, int r2, int g2, int b2) {
  return (r1 - r2) * (r1 - r2) + (g1 - g2) * (g1 - g2) + (b1 - b2) * (b1 - b2);
}

// libvips starts (and blocks its untrusted loaders, turns its cache off) through the thumbnailer, once.
bool StartVips() {
  static const bool started = [] {
    (void)OpenVipsThumbnailer();
    return true;
  }();
  return started;
}

}  // namespace

int Xterm256(uint8_t r, uint8_t g, uint8_t b) {
  const int ri = CubeLevel(r), gi = CubeLevel(g), bi = CubeLevel(b);
  const int cube = Distance(r, g, b, kCube[ri], kCube[gi], kCube[bi]);
  // The grey ramp: 232 + i is 8 + 10 i.
  const int mean = (r + g + b) / 3;
  const int gi_ramp = std::clamp((mean - 3) / 10, 0, 23);
  const int level = 8 + 10 * gi_ramp;
  const int grey = Distance(r, g, b, level, level, level);
  if (grey < cube) return 232 + gi_ramp;
  return 16 + 36 * ri + 6 * gi + bi;
}

std::vector<ArtRow> HalfBlockArt(const RgbImage& image) {
  std::vector<ArtRow> rows;
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return rows;
  }
  auto color = [&](int x, int y) {
    const auto* p =
        reinterpret_cast<const uint8_t*>(image.rgb.data()) + (static_cast<size_t>(y) * image.width + x) * 3;
    return static_cast<int16_t>(Xterm256(p[0], p[1], p[2]));
  };
  for (int y = 0; y < image.height; y += 2) {
    ArtRow row(static_cast<size_t>(image.width));
    for (int x = 0; x < image.width; ++x) {
      row[x].fg = color(x, y);
      row[x].bg = y + 1 < image.height ? color(x, y + 1) : int16_t{-1};
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<RgbImage> DecodeThumbnail(std::string_view jpeg, int max_width, int max_height) {
  if (max_width < 1 || max_height < 1) return Status::InvalidArgument("thumbnail box must be at least 1x1");
  if (jpeg.size() < 3 || std::memcmp(jpeg.data(), "\xFF\xD8\xFF", 3) != 0) {
    return Status::InvalidArgument("the thumbnail is not a JPEG");
  }
  StartVips();
  using vips::VImage;
  try {
    VImage head = VImage::new_from_buffer(jpeg.data(), jpeg.size(), "");
    const int w = head.width(), h = head.height();
    if (w < 1 || h < 1 || w > kSourceSideMax || h > kSourceSideMax) {
      return Status::InvalidArgument(fmt::format("thumbnail of {}x{} pixels", w, h));
    }
    const double scale =
        std::min({1.0, static_cast<double>(max_width) / w, static_cast<double>(max_height) / h});
    // Shrink-on-load by the largest power of two that keeps the image at least as large as the target.
    int shrink = 1;
    while (shrink < 8 && w / (shrink * 2) >= w * scale && h / (shrink * 2) >= h * scale) shrink *= 2;
    VImage img = shrink == 1 ? head
                             : VImage::new_from_buffer(jpeg.data(), jpeg.size(), "",
                                                       VImage::option()->set("shrink", shrink));
    const int tw = std::max(1, static_cast<int>(std::lround(w * scale)));
    const int th = std::max(1, static_cast<int>(std::lround(h * scale)));
    if (img.width() != tw || img.height() != th) {
      img = img.resize(static_cast<double>(tw) / img.width(),
                       VImage::option()->set("vscale", static_cast<double>(th) / img.height()));
    }
    if (img.has_alpha())
      img = img.flatten(VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    img = img.colourspace(VIPS_INTERPRETATION_sRGB);
    if (img.bands() > 3) img = img.extract_band(0, VImage::option()->set("n", 3));
    if (img.bands() == 1) img = VImage::bandjoin({img, img, img});
    img = img.cast(VIPS_FORMAT_UCHAR);
    size_t size = 0;
    void* pixels = img.write_to_memory(&size);
    RgbImage out;
    out.width = img.width();
    out.height = img.height();
    out.rgb.assign(static_cast<const char*>(pixels), size);
    g_free(pixels);
    if (out.rgb.size() != static_cast<size_t>(out.width) * out.height * 3) {
      return Status::Corruption("the thumbnail decoded to an unexpected layout");
    }
    return out;
  } catch (const vips::VError& e) {
    vips_error_clear();
    return Status::Corruption(fmt::format("the thumbnail does not decode: {}", e.what()));
  }
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  const char* units[] = {"KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes) / 1000;
  int u = 0;
  while (v >= 999.95 && u < 3) {
    v /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string ImageLabel(uint32_t width, uint32_t height, uint64_t bytes, bool utf8) {
  if (width == 0 || height == 0) return fmt::format("[image, {}]", HumanBytes(bytes));
  return fmt::format("[image {}{}{}, {}]", width, utf8 ? "×" : "x", height, HumanBytes(bytes));
}

std::string ProgressBar(uint64_t done, uint64_t total, int cells, bool utf8) {
  cells = std::max(cells, 1);
  done = std::min(done, total);
  const int percent = total == 0 ? 0 : static_cast<int>(done * 100 / total);
  // Eighths of a cell, in 128-bit-safe steps: done <= total, cells is small.
  const uint64_t eighths =
      total == 0 ? 0 : static_cast<uint64_t>(static_cast<long double>(done) * cells * 8 / total);
  std::string bar;
  if (utf8) {
    static const char* kPartial[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    const int full = static_cast<int>(eighths / 8), part = static_cast<int>(eighths % 8);
    for (int i = 0; i < full; ++i) bar += "█";
    int used = full;
    if (part > 0 && used < cells) {
      bar += kPartial[part];
      ++used;
    }
    bar += std::string(static_cast<size_t>(cells - used), ' ');
    return fmt::format("▕{}▏ {:>2}%", bar, percent);
  }
  const int full = static_cast<int>(eighths / 8);
  bar = std::string(static_cast<size_t>(full), '#') + std::string(static_cast<size_t>(cells - full), '.');
  return fmt::format("[{}] {:>3}%", bar, percent);
}

}  // namespace outpost::chat_cli
