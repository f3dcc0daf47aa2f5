// Copyright 2026 The Outpost Authors.
//
// Attachments in the engine (issue 15): an op with a file is visible at once and pending, its bytes go up
// chunk by chunk through a MediaTransport, and the op reaches the server (and the other devices) only once
// the whole file is there, carrying the blob reference. Text sent meanwhile is not held back; an upload
// resumes from the server's offset after a lost answer or a restart; failures fail the op visibly and
// Retry/Discard act on both. A real ServerCore over the in-process transport on a manual clock; the media
// side is the in-process MediaTransport over a memory BlobStore, with faults injected per request.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <random>

#include "media/common/digest.h"
#include "media/inproc/inproc_media_transport.h"
#include "outpost/blob_store.h"
#include "outpost/client.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost {
namespace {

constexpr uint32_t kChunk = 64 * 1024;

class AttachmentTest : public testing::Test {
 protected:
  AttachmentTest() : cluster_({.name = "attachments", .clock_seed = 11}) {
    blobs_ = std::shared_ptr<BlobStore>(OpenBlobStore("memory:").value().release());
    InprocMediaOptions mo;
    mo.fail_before = [this](std::string_view what) -> Status {
      if (down_) return Status::Unavailable("media server down");
      if (what == refuse_) return Status::PermissionDenied("forbidden: no uploads for you");
      return Status::OK();
    };
    mo.fail_after = [this](std::string_view what) -> Status {
      if (what == "append") {
        ++appends_;
        if (lose_answer_at_ == appends_) return Status::Unavailable("connection reset");
      }
      return Status::OK();
    };
    // The token names the user; "as:USER" lets a test upload as someone else.
    mo.authenticate = [](std::string_view token) -> Result<MediaPrincipal> {
      if (token.starts_with("as:")) return MediaPrincipal{std::string(token.substr(3)), ""};
      return MediaPrincipal{std::string(token), ""};
    };
    // Downloads ask the server who may read a blob, as outpostd's media server does.
    mo.may_read = [this](const MediaPrincipal& who, const BlobInfo& blob) -> Result<bool> {
      return cluster_.server().MayReadBlob(who.user, who.device, blob);
    };
    media_ = std::shared_ptr<MediaTransport>(OpenInprocMediaTransport(blobs_, std::move(mo)).release());
  }

  void StartServer(bool with_blobs = true, bool membership = false) {
    ServerOptions so;
    so.membership = membership;
    // A lost device's reads are refused by the application's hook (MayReadBlob asks it per device).
    so.authorize = [](const AccessRequest& req) {
      return req.device == "stolen" ? Status::PermissionDenied("this device was reported stolen")
                                    : Status::OK();
    };
    if (with_blobs) so.blob_store = blobs_;
    so.media_url = "inproc:/files/";
    ASSERT_TRUE(cluster_.StartServer(so).ok());
  }
  ClientOptions Options(const std::string& user, const std::string& device) {
    ClientOptions o = cluster_.DeviceOptions(user, device);
    o.token = user;
    o.media = media_;
    o.media_dir = cluster_.dir().Subdir(user + "-" + device + "-media");
    o.upload_chunk_bytes = kChunk;
    return o;
  }
  // A file of `n` pseudo-random bytes in the cluster's directory.
  std::string MakeFile(const std::string& name, size_t n) {
    std::string bytes(n, '\0');
    std::mt19937_64 rng(n);
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string path = cluster_.dir() / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  SubmitOptions WithFile(const std::string& path, const std::string& type = "image/jpeg") {
    SubmitOptions so;
    so.attachment.path = path;
    so.attachment.content_type = type;
    return so;
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The blob's bytes, as the blob store holds them.
  std::string BlobBytes(const std::string& id) {
    std::string out, piece;
    for (;;) {
      Status st = blobs_->Read(id, out.size(), 1 << 20, &piece);
      if (!st.ok() || piece.empty()) break;
      out += piece;
    }
    return out;
  }
  OpInfo Get(Client& c, const OpId& id) { return c.Get(id).value(); }

  harness::Cluster cluster_;
  std::shared_ptr<BlobStore> blobs_;
  std::shared_ptr<MediaTransport> media_;
  bool down_ = false;
  std::string refuse_;
  int appends_ = 0;
  int lose_answer_at_ = 0;
};

TEST_F(AttachmentTest, AnAttachedOpIsVisibleAtOnceAndReachesOthersOnlyWithItsWholeFile) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  Client& bob = cluster_.Add(Options("bob", "tablet"));
  ASSERT_TRUE(bob.Follow("chat").ok());
  const std::string path = MakeFile("photo.jpg", 5 * kChunk + 123);
  down_ = true;  // no upload gets through yet
  OpId id = alice.Submit("chat", "photo", "caption", WithFile(path)).value();

  OpInfo op = Get(alice, id);
  EXPECT_EQ(op.state, OpState::kPending);
  ASSERT_TRUE(op.has_attachment);
  EXPECT_EQ(op.attachment.size, 5 * kChunk + 123);
  EXPECT_EQ(op.attachment.sha256, media::Sha256FileHex(path).value());
  EXPECT_EQ(op.attachment.upload, UploadState::kPending);
  EXPECT_TRUE(op.attachment.blob_id.empty());
  EXPECT_EQ(Slurp(op.attachment.local_path), Slurp(path)) << "the device keeps its own copy";
  EXPECT_EQ(alice.Latest("chat", 10).value().size(), 1u);
  EXPECT_EQ(alice.Outbox().value().size(), 1u);

  cluster_.Pump(100);
  EXPECT_EQ(bob.Cursor("chat").value(), 0u) << "the op must not travel before its file";
  EXPECT_EQ(Get(alice, id).state, OpState::kPending);

  down_ = false;
  ASSERT_TRUE(cluster_.StepUntil([&] { return bob.Cursor("chat").value() == 1; }));
  op = Get(alice, id);
  EXPECT_EQ(op.state, OpState::kSent);
  ASSERT_FALSE(op.attachment.blob_id.empty());
  EXPECT_EQ(op.attachment.upload, UploadState::kNone);
  auto seen = bob.Latest("chat", 10).value();
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_TRUE(seen[0].has_attachment);
  EXPECT_EQ(seen[0].attachment.blob_id, op.attachment.blob_id);
  EXPECT_EQ(seen[0].attachment.sha256, op.attachment.sha256);
  EXPECT_EQ(seen[0].attachment.content_type, "image/jpeg");
  EXPECT_EQ(seen[0].payload, "caption");
  auto info = blobs_->Stat(op.attachment.blob_id).value();
  EXPECT_TRUE(info.complete);
  EXPECT_EQ(BlobBytes(op.attachment.blob_id), Slurp(path));
  ClientStats s = alice.Stats();
  EXPECT_EQ(s.uploads, 0u);
  EXPECT_EQ(s.upload_chunks, 6u);
  EXPECT_EQ(s.upload_bytes_sent, 5 * kChunk + 123);
}

TEST_F(AttachmentTest, TextSentDuringAnUploadIsNotHeldBack) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  Client& bob = cluster_.Add(Options("bob", "tablet"));
  ASSERT_TRUE(bob.Follow("chat").ok());
  down_ = true;
  OpId photo = alice.Submit("chat", "photo", "", WithFile(MakeFile("big.bin", 3 * kChunk))).value();
  OpId text = alice.Submit("chat", "text", "meanwhile").value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return bob.Cursor("chat").value() == 1; }));
  EXPECT_EQ(Get(alice, text).state, OpState::kSent);
  EXPECT_EQ(Get(alice, text).seq, 1u);
  EXPECT_EQ(Get(alice, photo).state, OpState::kPending);
  // The local view shows the photo where it was written until it is sent.
  auto view = alice.Latest("chat", 10).value();
  ASSERT_EQ(view.size(), 2u);

  down_ = false;
  ASSERT_TRUE(cluster_.StepUntil([&] { return bob.Cursor("chat").value() == 2; }));
  EXPECT_EQ(Get(alice, photo).seq, 2u) << "it takes its place when it is sent";
  auto a = alice.Latest("chat", 10).value();
  auto b = bob.Latest("chat", 10).value();
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(a[i].op_id, b[i].op_id) << i;
}

TEST_F(AttachmentTest, ALostAnswerResumesFromTheServersOffset) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  const std::string path = MakeFile("clip.mp4", 8 * kChunk + 7);
  lose_answer_at_ = 3;  // the third chunk is stored, its answer lost
  OpId id = alice.Submit("chat", "video", "", WithFile(path, "video/mp4")).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kSent; }));
  OpInfo op = Get(alice, id);
  EXPECT_EQ(BlobBytes(op.attachment.blob_id), Slurp(path));
  // Nine chunks in all; the one whose answer was lost is not sent again (the HEAD said it arrived).
  EXPECT_EQ(appends_, 9);
  EXPECT_EQ(alice.Stats().upload_bytes_sent, 8 * kChunk + 7 - kChunk);
}

TEST_F(AttachmentTest, AnUploadResumesAfterARestartSendingAtMostOneChunkAgain) {
  StartServer();
  ClientOptions o = Options("alice", "phone");
  Client* alice = &cluster_.Add(o);
  const std::string path = MakeFile("clip.mp4", 10 * kChunk);
  OpId id = alice->Submit("chat", "video", "", WithFile(path, "video/mp4")).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return appends_ >= 4; }));
  const uint64_t before = alice->Stats().upload_bytes_sent;
  ASSERT_GE(before, 3u * kChunk);
  alice = &cluster_.ReopenDevice(*alice);  // killed: nothing flushed beyond what was stored
  OpInfo op = Get(*alice, id);
  EXPECT_EQ(op.state, OpState::kPending);
  EXPECT_EQ(op.attachment.upload, UploadState::kPending);
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(*alice, id).state == OpState::kSent; }));
  const uint64_t after = alice->Stats().upload_bytes_sent;
  EXPECT_LE(before + after, 10u * kChunk + kChunk);
  EXPECT_EQ(BlobBytes(Get(*alice, id).attachment.blob_id), Slurp(path));
}

TEST_F(AttachmentTest, APermanentRefusalFailsTheOpAndRetryStartsTheUploadAgain) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  refuse_ = "create";
  OpId id = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 1000))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kFailed; }));
  OpInfo op = Get(alice, id);
  EXPECT_EQ(op.last_error_code, Status::Code::kPermissionDenied);
  EXPECT_NE(op.last_error.find("upload failed: forbidden"), std::string::npos) << op.last_error;
  EXPECT_EQ(op.attachment.upload, UploadState::kFailed);
  EXPECT_EQ(alice.Stats().failed, 1u);

  refuse_.clear();
  ASSERT_TRUE(alice.Retry(id).ok());
  EXPECT_EQ(Get(alice, id).state, OpState::kPending);
  EXPECT_EQ(Get(alice, id).attachment.upload, UploadState::kPending);
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kSent; }));
  EXPECT_EQ(alice.Stats().failed, 0u);
}

TEST_F(AttachmentTest, TransientFailuresBackOffUntilAttemptsRunOut) {
  StartServer();
  ClientOptions o = Options("alice", "phone");
  o.attempts_max = 3;
  Client& alice = cluster_.Add(o);
  down_ = true;
  OpId id = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 1000))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kFailed; }, 2000));
  EXPECT_NE(Get(alice, id).last_error.find("exhausted after 3 attempts"), std::string::npos)
      << Get(alice, id).last_error;
  EXPECT_EQ(Get(alice, id).last_error_code, Status::Code::kUnavailable);
}

TEST_F(AttachmentTest, DiscardingAnOpWaitingForItsUploadOwesNoCounter) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  Client& bob = cluster_.Add(Options("bob", "tablet"));
  ASSERT_TRUE(bob.Follow("chat").ok());
  down_ = true;
  OpId photo = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 3 * kChunk))).value();
  const std::string copy = Get(alice, photo).attachment.local_path;
  struct stat st;
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  ASSERT_TRUE(alice.Discard(photo).ok());
  EXPECT_TRUE(alice.Get(photo).status().IsNotFound());
  EXPECT_NE(::stat(copy.c_str(), &st), 0) << "the copy goes with the op";
  ASSERT_TRUE(alice.Submit("chat", "text", "after").ok());
  down_ = false;
  ASSERT_TRUE(cluster_.StepUntilIdle());
  EXPECT_EQ(bob.Cursor("chat").value(), 1u);
  EXPECT_EQ(alice.Stats().uploads, 0u);
  EXPECT_EQ(alice.Stats().outbox_depth, 0u);
  EXPECT_EQ(alice.Outbox().value().size(), 0u);
}

TEST_F(AttachmentTest, TheServerRefusesABlobThatIsNotThePushersOwn) {
  StartServer();
  ClientOptions o = Options("alice", "phone");
  o.token = "as:mallory";  // the upload is made as someone else: the blob is not alice's
  // ... while the Hello still says alice (the cluster takes users without tokens at their word).
  Client& alice = cluster_.Add(o);
  OpId id = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 1000))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kFailed; }));
  EXPECT_EQ(Get(alice, id).last_error_code, Status::Code::kInvalidArgument);
  EXPECT_NE(Get(alice, id).last_error.find("no complete upload of alice"), std::string::npos)
      << Get(alice, id).last_error;
}

// A device (or a hand-made client) that uploads some bytes without declaring their sha256, then pushes an op
// that names other ones: the server compares the op with the digest it computed, not with the declaration.
class LyingTransport : public MediaTransport {
 public:
  explicit LyingTransport(std::shared_ptr<MediaTransport> inner) : inner_(std::move(inner)) {}
  Result<std::string> CreateUpload(const MediaEndpoint& at, const UploadSpec& spec) override {
    UploadSpec undeclared = spec;
    undeclared.sha256.clear();
    return inner_->CreateUpload(at, undeclared);
  }
  Result<uint64_t> UploadOffset(const MediaEndpoint& at, std::string_view url) override {
    return inner_->UploadOffset(at, url);
  }
  Result<uint64_t> AppendUpload(const MediaEndpoint& at, std::string_view url, uint64_t offset,
                                std::string_view chunk) override {
    std::string other(chunk);
    for (char& c : other) c = static_cast<char>(c ^ 0x5a);
    return inner_->AppendUpload(at, url, offset, other);
  }
  Status TerminateUpload(const MediaEndpoint& at, std::string_view url) override {
    return inner_->TerminateUpload(at, url);
  }
  Result<uint64_t> Download(const MediaEndpoint& at, std::string_view id, uint64_t offset,
                            const std::function<Status(std::string_view)>& sink) override {
    return inner_->Download(at, id, offset, sink);
  }

 private:
  std::shared_ptr<MediaTransport> inner_;
};

TEST_F(AttachmentTest, AnOpMustNameTheBytesTheServerHoldsNotWhatTheUploadDeclared) {
  StartServer();
  ClientOptions o = Options("alice", "phone");
  o.media = std::make_shared<LyingTransport>(media_);
  Client& alice = cluster_.Add(o);
  OpId id = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 5000))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kFailed; }));
  EXPECT_EQ(Get(alice, id).last_error_code, Status::Code::kInvalidArgument);
  EXPECT_NE(Get(alice, id).last_error.find("does not match its upload"), std::string::npos)
      << Get(alice, id).last_error;
}

TEST_F(AttachmentTest, AServerWithoutBlobsRefusesAttachedOps) {
  StartServer(/*with_blobs=*/false);
  Client& alice = cluster_.Add(Options("alice", "phone"));
  OpId id = alice.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 10))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kFailed; }));
  EXPECT_EQ(Get(alice, id).last_error_code, Status::Code::kFailedPrecondition);
}

TEST_F(AttachmentTest, BadAttachmentsAreRefusedAtSubmitAndStoreNothing) {
  StartServer();
  ClientOptions no_media = Options("alice", "phone");
  no_media.media = nullptr;
  Client& a = cluster_.Add(no_media);
  EXPECT_EQ(a.Submit("chat", "photo", "", WithFile(MakeFile("p.jpg", 10))).status().code(),
            Status::Code::kFailedPrecondition);
  ClientOptions ok = Options("alice", "tablet");
  Client& b = cluster_.Add(ok);
  EXPECT_TRUE(b.Submit("chat", "photo", "", WithFile(cluster_.dir() / "missing.jpg")).status().IsNotFound());
  EXPECT_EQ(b.Submit("chat", "photo", "", WithFile(cluster_.dir().path())).status().code(),
            Status::Code::kInvalidArgument);
  SubmitOptions long_type = WithFile(MakeFile("q.jpg", 10), std::string(300, 'x'));
  EXPECT_EQ(b.Submit("chat", "photo", "", long_type).status().code(), Status::Code::kInvalidArgument);
  ClientOptions small = Options("alice", "watch");
  small.attachment_bytes_max = 100;
  Client& c = cluster_.Add(small);
  EXPECT_EQ(c.Submit("chat", "photo", "", WithFile(MakeFile("r.jpg", 101))).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(a.Latest("chat", 10).value().size() + b.Latest("chat", 10).value().size() +
                c.Latest("chat", 10).value().size(),
            0u);
}

TEST_F(AttachmentTest, OnlyMembersOfAStreamWhereTheBlobIsSharedMayReadIt) {
  StartServer(/*with_blobs=*/true, /*membership=*/true);
  Client& alice = cluster_.Add(Options("alice", "phone"));
  Client& bob = cluster_.Add(Options("bob", "tablet"));
  ASSERT_TRUE(alice.Submit("chat", std::string(kMembersKind), EncodeMembers({"alice", "bob"})).ok());
  ASSERT_TRUE(bob.Follow("chat").ok());
  OpId shared = alice.Submit("chat", "photo", "", WithFile(MakeFile("a.jpg", 2 * kChunk))).value();
  // A blob alice uploaded and never shared.
  OpId own = alice.Submit("private", std::string(kMembersKind), EncodeMembers({"alice"})).value();
  (void)own;
  OpId secret = alice.Submit("private", "photo", "", WithFile(MakeFile("b.jpg", 100))).value();
  ASSERT_TRUE(cluster_.StepUntil([&] {
    return Get(alice, shared).state == OpState::kSent && Get(alice, secret).state == OpState::kSent;
  }));
  BlobInfo a = blobs_->Stat(Get(alice, shared).attachment.blob_id).value();
  BlobInfo b = blobs_->Stat(Get(alice, secret).attachment.blob_id).value();
  Server& server = cluster_.server();
  EXPECT_TRUE(server.MayReadBlob("alice", "phone", a).value());
  EXPECT_TRUE(server.MayReadBlob("bob", "tablet", a).value());
  EXPECT_FALSE(server.MayReadBlob("carol", "laptop", a).value());
  EXPECT_TRUE(server.MayReadBlob("alice", "phone", b).value());
  EXPECT_FALSE(server.MayReadBlob("bob", "tablet", b).value());
  EXPECT_FALSE(server.MayReadBlob("bob", "stolen", a).value()) << "the hook is asked for the device";
  // Bob fetches the shared one through the engine, and may not fetch the other.
  ASSERT_TRUE(cluster_.StepUntil([&] { return bob.Cursor("chat").value() == 2; }));
  const std::string out = cluster_.dir() / "fetched.jpg";
  Status fetched = bob.FetchAttachment(shared, out);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  EXPECT_TRUE(bob.FetchAttachment(secret, out + "2").IsNotFound()) << "bob never saw that op";
  EXPECT_EQ(Slurp(out), Slurp(cluster_.dir() / "a.jpg"));
  // Bob leaves: the blob is his no more.
  ASSERT_TRUE(alice.Submit("chat", std::string(kMembersKind), EncodeMembers({"alice"})).ok());
  ASSERT_TRUE(cluster_.StepUntilIdle());
  EXPECT_FALSE(server.MayReadBlob("bob", "tablet", a).value());
}

TEST_F(AttachmentTest, AFetchResumesFromAPartialFileAndChecksTheBytes) {
  StartServer();
  Client& alice = cluster_.Add(Options("alice", "phone"));
  const std::string path = MakeFile("a.bin", 3 * kChunk + 5);
  OpId id = alice.Submit("chat", "file", "", WithFile(path, "application/octet-stream")).value();
  ASSERT_TRUE(cluster_.StepUntil([&] { return Get(alice, id).state == OpState::kSent; }));
  const std::string out = cluster_.dir() / "copy.bin";
  const std::string all = Slurp(path);
  std::ofstream(out + ".part", std::ios::binary) << all.substr(0, kChunk + 1);  // an earlier partial fetch
  uint64_t first = UINT64_MAX;
  ASSERT_TRUE(
      alice.FetchAttachment(id, out, [&](uint64_t done, uint64_t) { first = std::min(first, done); }).ok());
  EXPECT_EQ(first, kChunk + 1u) << "resumed, not started again";
  EXPECT_EQ(Slurp(out), all);
  // A partial file whose bytes differ from the blob's fails the check and is removed.
  std::ofstream(out + "2.part", std::ios::binary) << std::string(100, 'x');
  Status st = alice.FetchAttachment(id, out + "2");
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  struct stat sb;
  EXPECT_NE(::stat((out + "2.part").c_str(), &sb), 0);
  EXPECT_TRUE(alice.FetchAttachment(id, out + "2").ok()) << "the next call starts clean";
  EXPECT_EQ(Slurp(out + "2"), all);
  OpId text = alice.Submit("chat", "text", "no file").value();
  EXPECT_TRUE(alice.FetchAttachment(text, out + "3").IsNotFound());
}

// A device store made before attachments has no "uploads" space: it opens (the space is made then), keeps
// what it held, and takes attachments from then on. On each durable backend, whose spaces are tables, named
// databases or column families.
TEST_F(AttachmentTest, AStoreFromBeforeAttachmentsOpensAndTakesThem) {
  StartServer();
  for (const std::string backend : {"lmdb", "sqlite", "rocksdb"}) {
    SCOPED_TRACE(backend);
    const std::string path = cluster_.dir() / ("old-" + backend + (backend == "sqlite" ? ".db" : ""));
    const std::string uri = backend + ":" + path;
    {
      StorageOptions old;
      old.spaces = {"meta", "streams", "view", "opindex", "outbox", "failed", "watermarks"};  // issue 14's
      auto storage = OpenStorage(uri, old);
      ASSERT_TRUE(storage.ok()) << storage.status().ToString();
      auto txn = (*storage)->BeginWrite().value();
      ASSERT_TRUE(txn->Put(0, "user", "alice").ok());
      ASSERT_TRUE(txn->Put(0, "device", "old-" + backend).ok());
      ASSERT_TRUE(txn->Commit().ok());
    }
    ClientOptions o = Options("alice", "old-" + backend);
    o.store = uri;
    Client& c = cluster_.Add(o);
    OpId text = c.Submit("chat", "text", "hello from an old store").value();
    OpId photo = c.Submit("chat", "photo", "", WithFile(MakeFile("old.jpg", 3000))).value();
    ASSERT_TRUE(cluster_.StepUntil([&] { return Get(c, photo).state == OpState::kSent; }));
    EXPECT_EQ(Get(c, text).state, OpState::kSent);
  }
}

}  // namespace
}  // namespace outpost
