// Copyright 2026 The Outpost Authors.
//
// The interactive screen's picture helpers (tools/outpost-chat/thumbnail_art.h): RGB to xterm-256, pixels to
// half-block cells, decoding a message's thumbnail to fit the pane, the progress bar and the text that
// stands in for a picture.
#include <gtest/gtest.h>

#include <string>
#include <vips/vips8>

#include "media/thumbnail/vips_thumbnailer.h"
#include "outpost-chat/thumbnail_art.h"

namespace outpost::chat_cli {
namespace {

TEST(ThumbnailArt, Xterm256PicksTheCubeOrTheGreyRamp) {
  EXPECT_EQ(Xterm256(0, 0, 0), 16);
  EXPECT_EQ(Xterm256(255, 255, 255), 231);
  EXPECT_EQ(Xterm256(255, 0, 0), 196);
  EXPECT_EQ(Xterm256(0, 255, 0), 46);
  EXPECT_EQ(Xterm256(0, 0, 255), 21);
  EXPECT_EQ(Xterm256(95, 135, 175), 16 + 36 * 1 + 6 * 2 + 3);
  EXPECT_EQ(Xterm256(128, 128, 128), 244) << "mid grey is nearer the ramp (128) than the cube (135)";
  EXPECT_EQ(Xterm256(8, 8, 8), 232);
  for (int v = 0; v < 256; v += 5) {
    const int c = Xterm256(static_cast<uint8_t>(v), 0, static_cast<uint8_t>(255 - v));
    EXPECT_GE(c, 16);
    EXPECT_LE(c, 255);
  }
}

TEST(ThumbnailArt, TwoPixelRowsMakeOneCellRow) {
  // 2 x 3: red green / blue white / black grey.
  RgbImage img{2, 3,
               std::string("\xFF\x00\x00\x00\xFF\x00\x00\x00\xFF\xFF\xFF\xFF\x00\x00\x00\x80\x80\x80", 18)};
  auto rows = HalfBlockArt(img);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].size(), 2u);
  EXPECT_EQ(rows[0][0].fg, 196);
  EXPECT_EQ(rows[0][0].bg, 21);
  EXPECT_EQ(rows[0][1].fg, 46);
  EXPECT_EQ(rows[0][1].bg, 231);
  EXPECT_EQ(rows[1][0].fg, 16);
  EXPECT_EQ(rows[1][0].bg, -1) << "an odd last row has no lower pixel";
  EXPECT_EQ(rows[1][1].fg, 244);
  EXPECT_TRUE(HalfBlockArt({2, 2, "short"}).empty());
  EXPECT_TRUE(HalfBlockArt({0, 0, ""}).empty());
}

TEST(ThumbnailArt, DecodeFitsTheBoxKeepingTheAspect) {
  (void)OpenVipsThumbnailer();
  using vips::VImage;
  VImage red = (VImage::black(320, 160, VImage::option()->set("bands", 3)) + std::vector<double>{255, 0, 0})
                   .cast(VIPS_FORMAT_UCHAR)
                   .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
  void* buf = nullptr;
  size_t size = 0;
  red.write_to_buffer(".jpg", &buf, &size);
  std::string jpeg(static_cast<const char*>(buf), size);
  g_free(buf);
  auto img = DecodeThumbnail(jpeg, 24, 24);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->width, 24);
  EXPECT_EQ(img->height, 12);
  auto rows = HalfBlockArt(*img);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[3][12].fg, 196) << "JPEG red stays red";

  EXPECT_EQ(DecodeThumbnail("GIF89a....", 24, 24).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(DecodeThumbnail(jpeg.substr(0, 40), 24, 24).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeThumbnail(jpeg, 0, 24).status().code(), Status::Code::kInvalidArgument);
}

TEST(ThumbnailArt, LabelsAndProgressBars) {
  EXPECT_EQ(ImageLabel(4032, 3024, 2'100'000, true), "[image 4032×3024, 2.1 MB]");
  EXPECT_EQ(ImageLabel(4032, 3024, 2'100'000, false), "[image 4032x3024, 2.1 MB]");
  EXPECT_EQ(ImageLabel(0, 0, 532, false), "[image, 532 B]");
  EXPECT_EQ(HumanBytes(12'345), "12.3 KB");
  EXPECT_EQ(HumanBytes(999'999), "1.0 MB");
  EXPECT_EQ(ProgressBar(45, 100, 10, true), "▕████▌     ▏ 45%");
  EXPECT_EQ(ProgressBar(0, 100, 4, true), "▕    ▏  0%");
  EXPECT_EQ(ProgressBar(100, 100, 4, true), "▕████▏ 100%");
  EXPECT_EQ(ProgressBar(45, 100, 10, false), "[####......]  45%");
  EXPECT_EQ(ProgressBar(5, 0, 4, false), "[....]   0%");
  EXPECT_EQ(ProgressBar(500, 100, 2, false), "[##] 100%") << "done beyond total is capped";
}

}  // namespace
}  // namespace outpost::chat_cli
