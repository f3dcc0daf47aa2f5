// Copyright 2026 The Outpost Authors.
//
// Files in the chat adapter (issue 15): SendFile makes a thumbnail on the device when the file is an image,
// puts it and the image's dimensions in the message and attaches the file; the other members see the
// preview and the media fields once the upload completed and the message went out. A file that is not an
// image, or an image the thumbnailer cannot read, goes without a preview; an upload the server refuses fails
// the message with the reason. A real ServerCore (membership on) on a manual clock, with the in-process
// MediaTransport over a memory BlobStore; the test images are made with libvips.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>
#include <vips/vips8>

#include "media/common/digest.h"
#include "media/inproc/inproc_media_transport.h"
#include "media/thumbnail/vips_thumbnailer.h"
#include "outpost/blob_store.h"
#include "outpost/chat/chat.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost::chat {
namespace {

using vips::VImage;

constexpr char kMediaUrl[] = "inproc:/files/";

// A thumbnailer that records what it was asked and answers with a fixed error.
class FailingThumbnailer final : public Thumbnailer {
 public:
  explicit FailingThumbnailer(Status status) : status_(std::move(status)) {}
  Result<Thumbnail> Make(std::string_view, const ThumbnailOptions& options) override {
    ++calls;
    asked = options;
    return status_;
  }
  int calls = 0;
  ThumbnailOptions asked;

 private:
  Status status_;
};

class ChatMediaTest : public testing::Test {
 protected:
  ChatMediaTest() : cluster_({.name = "chat-media", .clock_seed = 7}) {
    blobs_ = std::shared_ptr<BlobStore>(OpenBlobStore("memory:").value().release());
    InprocMediaOptions mo;
    mo.fail_before = [this](std::string_view what) -> Status {
      if (what == refuse_) return Status::PermissionDenied("forbidden: no uploads for you");
      return Status::OK();
    };
    media_ = std::shared_ptr<MediaTransport>(OpenInprocMediaTransport(blobs_, std::move(mo)).release());
    (void)OpenVipsThumbnailer();  // starts libvips for the test's own images
  }

  void SetUp() override {
    ServerOptions so;
    so.membership = true;
    so.blob_store = blobs_;
    so.media_url = kMediaUrl;
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override { devices_.clear(); }

  Chat& Device(const std::string& user, ChatOptions chat_options = {}) {
    ClientOptions o = cluster_.DeviceOptions(user, "phone");
    o.token = user;  // the in-process media transport takes the token for the user's name
    o.media = media_;
    o.media_dir = cluster_.dir().Subdir(user + "-media");
    o.media_url = kMediaUrl;
    o.upload_chunk_bytes = 16 * 1024;
    auto chat = Chat::Open(std::move(o), std::move(chat_options));
    EXPECT_TRUE(chat.ok()) << chat.status().ToString();
    if (!chat.ok()) std::abort();  // the caller holds a reference
    devices_.push_back(std::move(chat).value());
    return *devices_.back();
  }

  // One round on the manual clock: every device, the server, every device.
  void Pump() {
    cluster_.clock().AdvanceMs(10);
    for (auto& d : devices_) ASSERT_TRUE(d->client().Step().ok());
    cluster_.server().Step();
    for (auto& d : devices_) ASSERT_TRUE(d->client().Step().ok());
  }
  bool StepUntil(const std::function<bool()>& done) {
    return harness::StepUntil(
        done, [&] { Pump(); }, 2000);
  }

  std::string WriteFile(const std::string& name, const std::string& bytes) {
    std::string path = cluster_.dir() / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // A photo-like JPEG (gradients under noise) of width x height, made with libvips.
  std::string MakeJpeg(const std::string& name, int width, int height) {
    VImage xy = VImage::xyz(width, height);
    VImage x = xy[0] * (255.0 / width), y = xy[1] * (255.0 / height);
    VImage rgb = VImage::bandjoin({x, y, (x + y) * 0.5});
    VImage noise = VImage::gaussnoise(width, height, VImage::option()->set("sigma", 12.0));
    std::string path = cluster_.dir() / name;
    (rgb + noise)
        .cast(VIPS_FORMAT_UCHAR)
        .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
        .jpegsave(path.c_str());
    return path;
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static Message Get(Chat& c, const OpId& id) {
    auto m = c.Get(id);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : Message{};
  }
  // Alice and bob in "ab", with bob following it.
  void Pair(Chat& alice, Chat& bob) {
    ASSERT_TRUE(alice.CreateConversation("ab", {"bob"}).ok());
    ASSERT_TRUE(StepUntil([&] { return bob.GetConversation("ab").ok(); }));
  }

  harness::Cluster cluster_;
  std::shared_ptr<BlobStore> blobs_;
  std::shared_ptr<MediaTransport> media_;
  std::string refuse_;
  std::vector<std::unique_ptr<Chat>> devices_;  // closed before the cluster's server
};

TEST_F(ChatMediaTest, APhotoArrivesWithItsThumbnailAndMediaFields) {
  Chat& alice = Device("alice");
  Chat& bob = Device("bob");
  Pair(alice, bob);
  const std::string path = MakeJpeg("beach.jpg", 1200, 900);
  const std::string bytes = Slurp(path);
  OpId id = alice.SendFile("ab", path, "look").value();

  // Shown at once: pending, its upload pending at offset 0, with the thumbnail made here.
  Message mine = Get(alice, id);
  EXPECT_EQ(mine.status, MessageStatus::kPending);
  ASSERT_TRUE(mine.has_media);
  EXPECT_EQ(mine.text, "look");
  EXPECT_EQ(mine.media.upload, UploadStatus::kPending);
  EXPECT_EQ(mine.media.upload_offset, 0u);
  EXPECT_TRUE(mine.media.blob_id.empty());
  EXPECT_TRUE(mine.media.uri.empty());
  EXPECT_FALSE(mine.media.thumbnail.empty());

  ASSERT_TRUE(StepUntil([&] {
    auto h = bob.History("ab", 10);
    return h.ok() && h->size() == 1;
  }));
  Message seen = bob.History("ab", 10).value().at(0);
  EXPECT_EQ(seen.id, id);
  EXPECT_EQ(seen.text, "look");
  ASSERT_TRUE(seen.has_media);
  EXPECT_TRUE(seen.media.attached);
  EXPECT_EQ(seen.media.mime, "image/jpeg");
  EXPECT_EQ(seen.media.bytes, bytes.size());
  EXPECT_EQ(seen.media.width, 1200u);
  EXPECT_EQ(seen.media.height, 900u);
  EXPECT_EQ(seen.media.sha256, media::ToHex(media::Sha256(bytes)));
  ASSERT_FALSE(seen.media.blob_id.empty());
  EXPECT_EQ(seen.media.uri, kMediaUrl + seen.media.blob_id);
  EXPECT_EQ(seen.media.upload, UploadStatus::kNone) << "not bob's upload";
  ASSERT_FALSE(seen.media.thumbnail.empty());
  EXPECT_LE(seen.media.thumbnail.size(), 8u * 1024);
  VImage thumb = VImage::new_from_buffer(seen.media.thumbnail.data(), seen.media.thumbnail.size(), "");
  EXPECT_EQ(std::max(thumb.width(), thumb.height()), 320);
  EXPECT_EQ(thumb.width() * 900, thumb.height() * 1200) << "the aspect ratio is kept";

  mine = Get(alice, id);
  EXPECT_EQ(mine.status, MessageStatus::kSent);
  EXPECT_EQ(mine.media.upload, UploadStatus::kDone);
  EXPECT_EQ(mine.media.upload_offset, bytes.size());
  EXPECT_EQ(mine.media.blob_id, seen.media.blob_id);
}

TEST_F(ChatMediaTest, TheThumbnailSizeIsConfigurable) {
  ChatOptions small;
  small.thumbnail.side_px_max = 64;
  small.thumbnail.bytes_max = 2048;
  Chat& alice = Device("alice", small);
  OpId id = alice.SendFile("solo", MakeJpeg("tall.jpg", 300, 600)).value();
  Message m = Get(alice, id);
  ASSERT_FALSE(m.media.thumbnail.empty());
  EXPECT_LE(m.media.thumbnail.size(), 2048u);
  VImage thumb = VImage::new_from_buffer(m.media.thumbnail.data(), m.media.thumbnail.size(), "");
  EXPECT_EQ(thumb.height(), 64);
  EXPECT_EQ(m.media.width, 300u);
  EXPECT_EQ(m.media.height, 600u);
}

TEST_F(ChatMediaTest, AFileThatIsNotAnImageGoesWithoutAThumbnail) {
  Chat& alice = Device("alice");
  Chat& bob = Device("bob");
  Pair(alice, bob);
  OpId id = alice.SendFile("ab", WriteFile("notes.txt", "shopping: milk, eggs\n")).value();
  ASSERT_TRUE(StepUntil([&] { return bob.Get(id).ok(); }));
  Message seen = Get(bob, id);
  ASSERT_TRUE(seen.has_media);
  EXPECT_EQ(seen.media.mime, "text/plain");
  EXPECT_EQ(seen.media.bytes, 21u);
  EXPECT_TRUE(seen.media.thumbnail.empty());
  EXPECT_EQ(seen.media.width, 0u);
  EXPECT_EQ(seen.media.height, 0u);
  EXPECT_TRUE(seen.text.empty());
  EXPECT_EQ(Get(alice, id).status, MessageStatus::kSent);
}

TEST_F(ChatMediaTest, ACorruptImageIsSentWithoutAThumbnail) {
  Chat& alice = Device("alice");
  Chat& bob = Device("bob");
  Pair(alice, bob);
  // A JPEG cut off after its first kilobyte: the signature says JPEG, the decoder gives up.
  std::string jpeg = Slurp(MakeJpeg("whole.jpg", 800, 600));
  OpId id = alice.SendFile("ab", WriteFile("cut.jpg", jpeg.substr(0, 1024)), "broken?").value();
  Message mine = Get(alice, id);
  EXPECT_EQ(mine.media.mime, "image/jpeg");
  EXPECT_TRUE(mine.media.thumbnail.empty());
  ASSERT_TRUE(StepUntil([&] { return bob.Get(id).ok(); }));
  Message seen = Get(bob, id);
  EXPECT_EQ(seen.media.bytes, 1024u);
  EXPECT_TRUE(seen.media.thumbnail.empty());
  EXPECT_EQ(seen.text, "broken?");
}

TEST_F(ChatMediaTest, AnyThumbnailerErrorStillSends) {
  for (Status error : {Status::NotFound("not an image"), Status::IOError("disk on fire"),
                       Status::Full("does not fit"), Status::InvalidArgument("bad options")}) {
    auto fake = std::make_shared<FailingThumbnailer>(error);
    ChatOptions o;
    o.thumbnailer = fake;
    o.thumbnail.side_px_max = 100;
    Chat& alice = Device("alice", o);
    auto id = alice.SendFile("solo", MakeJpeg("p.jpg", 200, 100));
    ASSERT_TRUE(id.ok()) << error.ToString() << ": " << id.status().ToString();
    EXPECT_EQ(fake->calls, 1);
    EXPECT_EQ(fake->asked.side_px_max, 100u) << "the adapter's options reach the thumbnailer";
    Message m = Get(alice, *id);
    EXPECT_TRUE(m.media.thumbnail.empty());
    EXPECT_EQ(m.media.width, 0u);
    EXPECT_EQ(m.media.upload, UploadStatus::kPending);
    devices_.clear();
  }
}

TEST_F(ChatMediaTest, ARefusedUploadFailsTheMessageWithTheReasonThenRetrySendsIt) {
  Chat& alice = Device("alice");
  Chat& bob = Device("bob");
  Pair(alice, bob);
  refuse_ = "create";
  OpId id = alice.SendFile("ab", MakeJpeg("p.jpg", 64, 64)).value();
  ASSERT_TRUE(StepUntil([&] { return Get(alice, id).status == MessageStatus::kFailed; }));
  Message m = Get(alice, id);
  EXPECT_EQ(m.media.upload, UploadStatus::kFailed);
  EXPECT_NE(m.error.find("forbidden: no uploads for you"), std::string::npos) << m.error;
  auto conv = alice.GetConversation("ab").value();
  EXPECT_EQ(conv.failed, 1u);

  refuse_.clear();
  ASSERT_TRUE(alice.Retry(id).ok());
  EXPECT_EQ(Get(alice, id).status, MessageStatus::kPending);
  EXPECT_EQ(Get(alice, id).media.upload, UploadStatus::kPending);
  ASSERT_TRUE(StepUntil([&] { return bob.Get(id).ok(); }));
  EXPECT_EQ(Get(alice, id).media.upload, UploadStatus::kDone);

  // Discard drops a failed upload and its message.
  refuse_ = "create";
  OpId other = alice.SendFile("ab", MakeJpeg("q.jpg", 64, 64)).value();
  ASSERT_TRUE(StepUntil([&] { return Get(alice, other).status == MessageStatus::kFailed; }));
  ASSERT_TRUE(alice.Discard(other).ok());
  EXPECT_TRUE(alice.Get(other).status().IsNotFound());
}

TEST_F(ChatMediaTest, BadInputIsRefusedAndStoresNothing) {
  Chat& alice = Device("alice");
  EXPECT_EQ(alice.SendFile("ab", cluster_.dir() / "missing.jpg").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(alice.SendFile("ab", cluster_.dir().path()).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.SendFile("ab", "").status().code(), Status::Code::kInvalidArgument);
  const std::string file = WriteFile("f.bin", "x");
  EXPECT_EQ(alice.SendFile("@alice", file).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.SendFile("ab", file, std::string(65 * 1024, 'a')).status().code(),
            Status::Code::kInvalidArgument);
  SendOptions bad_mime;
  bad_mime.mime = "image/jpeg\r\nX-Evil: 1";
  EXPECT_EQ(alice.SendFile("ab", file, "", bad_mime).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(alice.History("ab", 10).value().size(), 0u);

  // A device without a media transport cannot attach.
  ClientOptions no_media = cluster_.DeviceOptions("carol", "phone");
  auto carol = Chat::Open(no_media);
  ASSERT_TRUE(carol.ok());
  EXPECT_EQ((*carol)->SendFile("cc", file).status().code(), Status::Code::kFailedPrecondition);
  carol->reset();

  ChatOptions too_big;
  too_big.thumbnail.bytes_max = kThumbnailBytesMax + 1;
  EXPECT_EQ(Chat::Open(cluster_.DeviceOptions("dave", "phone"), too_big).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(ChatMediaTest, TheMimeTypeComesFromTheBytesThenTheName) {
  Chat& alice = Device("alice");
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "rest";
  EXPECT_EQ(Get(alice, alice.SendFile("s", WriteFile("photo.bin", png)).value()).media.mime, "image/png");
  EXPECT_EQ(Get(alice, alice.SendFile("s", WriteFile("doc.PDF", "plain")).value()).media.mime,
            "application/pdf");
  EXPECT_EQ(Get(alice, alice.SendFile("s", WriteFile("blob", "???")).value()).media.mime,
            "application/octet-stream");
  SendOptions given;
  given.mime = "audio/ogg";
  EXPECT_EQ(Get(alice, alice.SendFile("s", WriteFile("v", "x"), "", given).value()).media.mime, "audio/ogg");
}

}  // namespace
}  // namespace outpost::chat
