// Copyright 2026 The Outpost Authors.
//
// Pictures and progress in a terminal, for the interactive screen: a thumbnail as half-block cells ('▀' with
// the foreground the upper pixel and the background the lower one, so one cell shows two pixels), the
// xterm-256 colour nearest an RGB one, an upload progress bar and the text that stands in for a picture
// where colours are lacking. Pure functions (no curses), but DecodeThumbnail, which uses libvips.
#ifndef OUTPOST_TOOLS_OUTPOST_CHAT_THUMBNAIL_ART_H_
#define OUTPOST_TOOLS_OUTPOST_CHAT_THUMBNAIL_ART_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/result.h"

namespace outpost::chat_cli {

// An image as 8-bit RGB, rows top to bottom: rgb.size() == width * height * 3.
struct RgbImage {
  int width = 0, height = 0;
  std::string rgb;
};

// One terminal cell of a picture: '▀' (upper) over `bg`, in `fg`. bg is -1 (the terminal's default) for the
// last row of an image with an odd height, which has no lower pixel.
struct ArtCell {
  int16_t fg = 0;  // xterm-256 colour index of the upper pixel
  int16_t bg = 0;  // of the lower pixel, or -1
};
using ArtRow = std::vector<ArtCell>;

// The xterm-256 colour nearest (r, g, b): from the 6x6x6 cube (16..231) or the grey ramp (232..255),
// whichever is closer; the 16 system colours are never used, as terminals set them as they like.
int Xterm256(uint8_t r, uint8_t g, uint8_t b);

// The cells of `image`: ceil(height / 2) rows of `width` cells. An image whose rgb has the wrong size, or an
// empty one, gives no rows.
std::vector<ArtRow> HalfBlockArt(const RgbImage& image);

// Decodes a thumbnail (JPEG, as messages carry them) and shrinks it to fit max_width x max_height pixels,
// keeping its aspect ratio, never enlarging it, flattened onto white when it has alpha. InvalidArgument
// for anything that is not a JPEG, or a JPEG larger than 4096 x 4096 (a message's thumbnail is far smaller);
// Corruption when it does not decode.
Result<RgbImage> DecodeThumbnail(std::string_view jpeg, int max_width, int max_height);

// "532 B", "12.3 KB", "2.1 MB", "1.5 GB" (powers of 1000, as file managers show them).
std::string HumanBytes(uint64_t bytes);
// "[image 4032×3024, 2.1 MB]" (× as x without UTF-8); "[image, 2.1 MB]" without dimensions.
std::string ImageLabel(uint32_t width, uint32_t height, uint64_t bytes, bool utf8);
// A bar `cells` columns wide between edges, eighths of a cell with UTF-8 ("▕████▌    ▏ 45%"), '#' and '.'
// without ("[####....]  45%"). total 0 shows 0%.
std::string ProgressBar(uint64_t done, uint64_t total, int cells, bool utf8);

}  // namespace outpost::chat_cli

#endif  // OUTPOST_TOOLS_OUTPOST_CHAT_THUMBNAIL_ART_H_
