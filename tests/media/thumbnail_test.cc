// Copyright 2026 The Outpost Authors.
//
// The libvips Thumbnailer (engine/media/thumbnail): sizes, EXIF orientation, the byte cap, and every kind of
// bad input. Test images are made here, with libvips, in a TempDir.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <vips/vips8>

#include "media/thumbnail/vips_thumbnailer.h"
#include "outpost/thumbnailer.h"
#include "testing/random.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

using vips::VImage;

// A photo-like image: smooth colour gradients under Gaussian noise, so that it compresses like a photo
// rather than like a flat colour.
VImage PhotoLike(int width, int height, int bands = 3) {
  VImage xy = VImage::xyz(width, height);
  VImage x = xy[0] * (255.0 / width);
  VImage y = xy[1] * (255.0 / height);
  std::vector<VImage> channels = {x, y, (x + y) * 0.5, 255 - x};
  channels.resize(static_cast<size_t>(bands));
  VImage smooth = VImage::bandjoin(channels);
  VImage noise = VImage::gaussnoise(width, height, VImage::option()->set("sigma", 12.0)->set("mean", 0.0));
  return (smooth + noise)
      .cast(VIPS_FORMAT_UCHAR)
      .copy(VImage::option()->set("interpretation",
                                  bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

class ThumbnailTest : public ::testing::Test {
 protected:
  // Opening the thumbnailer first also starts libvips for the helpers above.
  void SetUp() override { thumbnailer_ = OpenVipsThumbnailer(); }

  // Checks that `t` is a JPEG that decodes to its stated dimensions, within its byte cap.
  static void ExpectDecodes(const Thumbnail& t, const ThumbnailOptions& options) {
    EXPECT_EQ(t.mime, "image/jpeg");
    EXPECT_LE(t.bytes.size(), options.bytes_max);
    ASSERT_GE(t.bytes.size(), 3u);
    EXPECT_EQ(t.bytes.substr(0, 3), std::string("\xFF\xD8\xFF", 3));
    VImage decoded = VImage::new_from_buffer(t.bytes.data(), t.bytes.size(), "");
    EXPECT_EQ(static_cast<uint32_t>(decoded.width()), t.width);
    EXPECT_EQ(static_cast<uint32_t>(decoded.height()), t.height);
    EXPECT_EQ(decoded.get_typeof("exif-data"), 0u) << "metadata should be stripped";
  }

  harness::TempDir dir_{"thumbnail-test"};
  std::unique_ptr<Thumbnailer> thumbnailer_;
};

TEST_F(ThumbnailTest, LargeJpegShrinksToLongestSideUnderTheCap) {
  const std::string path = dir_ / "photo.jpg";
  PhotoLike(4000, 3000).jpegsave(path.c_str(), VImage::option()->set("Q", 90));
  const ThumbnailOptions options;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 320u);
  EXPECT_EQ(t->height, 240u);
  EXPECT_EQ(t->source_width, 4000u);
  EXPECT_EQ(t->source_height, 3000u);
  EXPECT_LE(t->bytes.size(), 8u * 1024);
  ExpectDecodes(*t, options);
}

TEST_F(ThumbnailTest, ExifOrientationSixTurnsTheThumbnailAndTheSourceSize) {
  const std::string path = dir_ / "rotated.jpg";
  // Large enough for shrink-on-load (1/4), so that the turn follows a shrunk, sequential decode.
  VImage image = PhotoLike(3200, 2400).copy();
  image.set(VIPS_META_ORIENTATION, 6);  // stored landscape, shown portrait (turned 90 degrees clockwise)
  image.jpegsave(path.c_str());
  // The file carries the orientation in its EXIF, or the test proves nothing.
  ASSERT_EQ(VImage::new_from_file(path.c_str()).get_int(VIPS_META_ORIENTATION), 6);

  const ThumbnailOptions options;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 240u);
  EXPECT_EQ(t->height, 320u);
  EXPECT_EQ(t->source_width, 2400u);
  EXPECT_EQ(t->source_height, 3200u);
  ExpectDecodes(*t, options);
  // Turned clockwise: the stored top-left corner (green 0, from the row gradient) is now the top-right one,
  // and the stored bottom-left (green 255) the top-left.
  VImage decoded = VImage::new_from_buffer(t->bytes.data(), t->bytes.size(), "");
  const double green_top_left = decoded.extract_area(0, 0, 8, 8)[1].avg();
  const double green_top_right = decoded.extract_area(decoded.width() - 8, 0, 8, 8)[1].avg();
  EXPECT_GT(green_top_left, 200) << green_top_right;
  EXPECT_LT(green_top_right, 50) << green_top_left;
}

TEST_F(ThumbnailTest, PngWithAlpha) {
  const std::string path = dir_ / "picture.png";
  PhotoLike(1000, 500, 4).pngsave(path.c_str());
  const ThumbnailOptions options;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 320u);
  EXPECT_EQ(t->height, 160u);
  EXPECT_EQ(t->source_width, 1000u);
  EXPECT_EQ(t->source_height, 500u);
  ExpectDecodes(*t, options);
  EXPECT_EQ(VImage::new_from_buffer(t->bytes.data(), t->bytes.size(), "").bands(), 3);
}

TEST_F(ThumbnailTest, GreyPng) {
  const std::string path = dir_ / "grey.png";
  PhotoLike(640, 480, 1).pngsave(path.c_str());
  const ThumbnailOptions options;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 320u);
  EXPECT_EQ(t->height, 240u);
  ExpectDecodes(*t, options);
}

TEST_F(ThumbnailTest, SmallImageIsNotEnlarged) {
  const std::string path = dir_ / "tiny.jpg";
  PhotoLike(100, 60).jpegsave(path.c_str());
  const ThumbnailOptions options;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 100u);
  EXPECT_EQ(t->height, 60u);
  EXPECT_EQ(t->source_width, 100u);
  EXPECT_EQ(t->source_height, 60u);
  ExpectDecodes(*t, options);
}

TEST_F(ThumbnailTest, OptionsAreHonored) {
  const std::string path = dir_ / "photo.jpg";
  PhotoLike(1200, 900).jpegsave(path.c_str());
  ThumbnailOptions options;
  options.side_px_max = 100;
  options.bytes_max = 2000;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(std::max(t->width, t->height), 100u);
  EXPECT_EQ(t->height, 75u);
  EXPECT_LE(t->bytes.size(), 2000u);
  ExpectDecodes(*t, options);
}

TEST_F(ThumbnailTest, TightCapShrinksTheThumbnail) {
  // Noise at full strength does not compress: 320 px cannot fit 1500 bytes at any quality, a smaller
  // side can.
  const std::string path = dir_ / "noise.png";
  VImage::gaussnoise(640, 480, VImage::option()->set("sigma", 80.0))
      .cast(VIPS_FORMAT_UCHAR)
      .bandjoin({VImage::gaussnoise(640, 480, VImage::option()->set("sigma", 80.0)).cast(VIPS_FORMAT_UCHAR),
                 VImage::gaussnoise(640, 480, VImage::option()->set("sigma", 80.0)).cast(VIPS_FORMAT_UCHAR)})
      .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
      .pngsave(path.c_str());
  ThumbnailOptions options;
  options.bytes_max = 1500;
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_LT(t->width, 320u);
  EXPECT_EQ(t->source_width, 640u);
  ExpectDecodes(*t, options);
}

TEST_F(ThumbnailTest, CapThatCannotBeMetIsFull) {
  const std::string path = dir_ / "photo.jpg";
  PhotoLike(400, 300).jpegsave(path.c_str());
  ThumbnailOptions options;
  options.bytes_max = 50;  // less than the JPEG headers alone
  Result<Thumbnail> t = thumbnailer_->Make(path, options);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kFull) << t.status().ToString();
}

TEST_F(ThumbnailTest, TextFileIsNotFound) {
  const std::string path = dir_ / "notes.txt";
  WriteFile(path, "Not an image, only some words.\n");
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(t.status().IsNotFound()) << t.status().ToString();
}

TEST_F(ThumbnailTest, EmptyFileIsNotFound) {
  const std::string path = dir_ / "empty.jpg";
  WriteFile(path, "");
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(t.status().IsNotFound()) << t.status().ToString();
}

TEST_F(ThumbnailTest, TruncatedJpegIsCorruption) {
  const std::string whole = dir_ / "whole.jpg";
  PhotoLike(1600, 1200).jpegsave(whole.c_str());
  const std::string bytes = ReadFile(whole);
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = dir_ / "truncated.jpg";
  WriteFile(path, bytes.substr(0, bytes.size() / 2));
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_FALSE(t.ok()) << "a half JPEG made a " << t->width << "x" << t->height << " thumbnail";
  EXPECT_EQ(t.status().code(), Status::Code::kCorruption) << t.status().ToString();
}

TEST_F(ThumbnailTest, JpegHeaderThenGarbageIsCorruption) {
  const std::string whole = dir_ / "whole.jpg";
  PhotoLike(400, 300).jpegsave(whole.c_str());
  std::string bytes = ReadFile(whole);
  harness::Rng rng(harness::TestSeed(15, "garbage seed"));
  // Keep the start of the file (so libvips takes it for a JPEG) and scramble the rest.
  bytes.replace(200, std::string::npos, rng.Bytes(bytes.size() - 200));
  const std::string path = dir_ / "scrambled.jpg";
  WriteFile(path, bytes);
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kCorruption) << t.status().ToString();
}

TEST_F(ThumbnailTest, RandomBytesNamedJpgAreNotFoundOrCorruption) {
  harness::Rng rng(harness::TestSeed(16, "random seed"));
  for (int round = 0; round < 20; ++round) {
    std::string bytes = rng.Bytes(1 + rng.Upto(5000));
    // Every other round starts like a JPEG, to get past the format sniffing.
    if (round % 2 == 1 && bytes.size() >= 3) bytes.replace(0, 3, "\xFF\xD8\xFF");
    const std::string path = dir_ / ("random" + std::to_string(round) + ".jpg");
    WriteFile(path, bytes);
    Result<Thumbnail> t = thumbnailer_->Make(path, {});
    ASSERT_FALSE(t.ok()) << "round " << round;
    EXPECT_TRUE(t.status().IsNotFound() || t.status().code() == Status::Code::kCorruption)
        << "round " << round << ": " << t.status().ToString();
  }
}

TEST_F(ThumbnailTest, MissingFileIsIOError) {
  Result<Thumbnail> t = thumbnailer_->Make(dir_ / "no-such.jpg", {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kIOError) << t.status().ToString();
}

TEST_F(ThumbnailTest, DirectoryIsIOError) {
  Result<Thumbnail> t = thumbnailer_->Make(dir_.Subdir("folder.jpg"), {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kIOError) << t.status().ToString();
}

TEST_F(ThumbnailTest, FileNameIsNotParsedForOptions) {
  // libvips reads "name[options]" as load options; the thumbnailer must open exactly the file it was given.
  const std::string path = dir_ / "photo.jpg[shrink=8]";
  PhotoLike(800, 600).jpegsave((dir_ / "tmp.jpg").c_str());
  std::filesystem::rename(dir_ / "tmp.jpg", path);
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->width, 320u);
  EXPECT_EQ(t->source_width, 800u);
}

// CRC-32 (ISO-HDLC, as PNG chunks use).
uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A PNG chunk: length, type, data, CRC of type and data.
std::string PngChunk(const std::string& type, const std::string& data) {
  return Be32(static_cast<uint32_t>(data.size())) + type + data + Be32(Crc32(type + data));
}

TEST_F(ThumbnailTest, HugeImageGetsNoThumbnail) {
  // A PNG whose header claims 20000 x 20000 pixels (a decompression bomb would be just as small): refused
  // from the header, before any decoding.
  const std::string ihdr = Be32(20000) + Be32(20000) + std::string("\x08\x02\x00\x00\x00", 5);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", ihdr) +
                          PngChunk("IDAT", std::string("\x78\x01\x01\x00\x00\xff\xff\x00\x00\x00\x01", 11)) +
                          PngChunk("IEND", "");
  const std::string path = dir_ / "bomb.png";
  WriteFile(path, png);
  Result<Thumbnail> t = thumbnailer_->Make(path, {});
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(t.status().IsNotFound()) << t.status().ToString();
  EXPECT_NE(t.status().message().find("too large"), std::string::npos) << t.status().ToString();
}

TEST_F(ThumbnailTest, BadSideIsInvalidArgument) {
  const std::string path = dir_ / "photo.jpg";
  PhotoLike(100, 100).jpegsave(path.c_str());
  for (uint32_t side : {0u, kThumbnailSidePxMax + 1}) {
    ThumbnailOptions options;
    options.side_px_max = side;
    Result<Thumbnail> t = thumbnailer_->Make(path, options);
    ASSERT_FALSE(t.ok()) << side;
    EXPECT_EQ(t.status().code(), Status::Code::kInvalidArgument) << t.status().ToString();
  }
}

TEST_F(ThumbnailTest, ConcurrentMakes) {
  const std::string path = dir_ / "photo.jpg";
  PhotoLike(1600, 1200).jpegsave(path.c_str());
  std::vector<std::thread> threads;
  std::vector<Result<Thumbnail>> results(4, Status::Aborted("not run"));
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = thumbnailer_->Make(path, {}); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& t : results) {
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->bytes, results[0]->bytes);  // deterministic
  }
}

}  // namespace
}  // namespace outpost
