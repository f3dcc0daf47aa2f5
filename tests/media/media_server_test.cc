// Copyright 2026 The Outpost Authors.
//
// MediaServer (engine/include/outpost/media_server.h): tus 1.0.0 uploads and downloads, driven over loopback
// with cpp-httplib's client (and a raw socket for a connection dropped mid-body, and tuspy for interop).
#include "outpost/media_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "media/common/digest.h"
#include "outpost/blob_store.h"
#include "outpost/env.h"
#include "outpost/media_transport.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace outpost {
namespace {

using media::Base64Encode;

std::string Bytes(size_t n, char seed = 'a') {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(seed + static_cast<char>(i % 23));
  return out;
}

class MediaServerTest : public testing::Test {
 protected:
  void SetUp() override {
    options_.blobs = OpenBlobStore("memory:").value();
    options_.env = &env_;
    options_.authenticate = [](std::string_view token) -> Result<MediaPrincipal> {
      if (token == "tok-alice") return MediaPrincipal{"alice", "a1"};
      if (token == "tok-alice2") return MediaPrincipal{"alice", "a2"};  // Alice's other device
      if (token == "tok-bob") return MediaPrincipal{"bob", "b1"};
      if (token == "tok-down") return Status::Unavailable("auth backend down");
      return Status::PermissionDenied("unknown token");
    };
    options_.may_read = [this](const MediaPrincipal&, const BlobInfo&) -> Result<bool> {
      return may_read_.load();
    };
    options_.upload_bytes_max = 1 << 20;
    options_.threads = 4;
    options_.expire_interval_ms = 3'600'000;  // tests that want expiry set it shorter
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
  }
  void Start() {
    auto server = MediaServer::Start(options_, "127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }
  static httplib::Headers Tus(const std::string& token = "tok-alice") {
    return {{"Tus-Resumable", "1.0.0"}, {"Authorization", "Bearer " + token}};
  }
  // POST /files/; returns the upload's path ("/files/<id>") or "" (the status is in *status).
  std::string Create(uint64_t length, const std::string& metadata = "",
                     const std::string& token = "tok-alice", int* status = nullptr) {
    httplib::Headers h = Tus(token);
    h.emplace("Upload-Length", std::to_string(length));
    if (!metadata.empty()) h.emplace("Upload-Metadata", metadata);
    auto res = client_->Post("/files/", h, "", "");
    EXPECT_TRUE(res);
    if (!res) return "";
    if (status) *status = res->status;
    if (res->status != 201) return "";
    EXPECT_EQ(res->get_header_value("Tus-Resumable"), "1.0.0");
    EXPECT_FALSE(res->get_header_value("Upload-Expires").empty());
    return res->get_header_value("Location");
  }
  httplib::Result Patch(const std::string& path, uint64_t offset, const std::string& body,
                        const std::string& token = "tok-alice", httplib::Headers extra = {}) {
    httplib::Headers h = Tus(token);
    h.emplace("Upload-Offset", std::to_string(offset));
    for (auto& kv : extra) h.insert(kv);
    return client_->Patch(path.c_str(), h, body, "application/offset+octet-stream");
  }
  httplib::Result Head(const std::string& path, const std::string& token = "tok-alice") {
    return client_->Head(path.c_str(), Tus(token));
  }
  int64_t HeadOffset(const std::string& path) {
    auto res = Head(path);
    if (!res || res->status != 200) return -1;
    return std::stoll(res->get_header_value("Upload-Offset"));
  }
  httplib::Result Get(const std::string& path, const std::string& token = "tok-alice",
                      httplib::Headers extra = {}) {
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    for (auto& kv : extra) h.insert(kv);
    return client_->Get(path.c_str(), h);
  }
  // Uploads `bytes` in full (two PATCHes) and expects 204s.
  std::string Upload(const std::string& bytes, const std::string& metadata = "") {
    std::string path = Create(bytes.size(), metadata);
    size_t half = bytes.size() / 2;
    auto a = Patch(path, 0, bytes.substr(0, half));
    EXPECT_TRUE(a && a->status == 204);
    auto b = Patch(path, half, bytes.substr(half));
    EXPECT_TRUE(b && b->status == 204) << (b ? b->body : "no response");
    return path;
  }

  ManualEnv env_{7};
  std::atomic<bool> may_read_{false};
  MediaServerOptions options_;
  std::unique_ptr<MediaServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(MediaServerTest, OptionsAdvertisesTusAndCors) {
  Start();
  httplib::Headers h{{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "PATCH"}};
  auto res = client_->Options("/files/", h);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204);
  EXPECT_EQ(res->get_header_value("Tus-Version"), "1.0.0");
  EXPECT_EQ(res->get_header_value("Tus-Extension"),
            "creation,creation-with-upload,termination,checksum,expiration");
  EXPECT_EQ(res->get_header_value("Tus-Max-Size"), std::to_string(1 << 20));
  EXPECT_EQ(res->get_header_value("Tus-Checksum-Algorithm"), "sha1,sha256");
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "*");
  EXPECT_NE(res->get_header_value("Access-Control-Allow-Methods").find("PATCH"), std::string::npos);
  EXPECT_NE(res->get_header_value("Access-Control-Allow-Headers").find("Upload-Offset"), std::string::npos);
  EXPECT_NE(res->get_header_value("Access-Control-Expose-Headers").find("Location"), std::string::npos);
}

TEST_F(MediaServerTest, ChunkedUploadResumedAfterHeadThenDownload) {
  Start();
  std::string bytes = Bytes(300'000);
  std::string sha = media::ToHex(media::Sha256(bytes));
  std::string path =
      Create(bytes.size(), "filetype " + Base64Encode("image/png") + ",sha256 " + Base64Encode(sha));
  ASSERT_EQ(path.substr(0, 7), "/files/");
  auto head = Head(path);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->get_header_value("Upload-Offset"), "0");
  EXPECT_EQ(head->get_header_value("Upload-Length"), "300000");
  EXPECT_EQ(head->get_header_value("Cache-Control"), "no-store");
  EXPECT_FALSE(head->get_header_value("Upload-Expires").empty());
  auto first = Patch(path, 0, bytes.substr(0, 100'000));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 204);
  EXPECT_EQ(first->get_header_value("Upload-Offset"), "100000");
  // A new client (the app restarted) asks where to resume.
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  EXPECT_EQ(HeadOffset(path), 100'000);
  std::string chunk = bytes.substr(100'000, 100'000);
  auto second = Patch(path, 100'000, chunk, "tok-alice",
                      {{"Upload-Checksum", "sha256 " + Base64Encode(media::Sha256(chunk))}});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 204) << second->body;
  EXPECT_EQ(Get(path)->status, 404);  // not complete yet
  chunk = bytes.substr(200'000);
  auto last = Patch(path, 200'000, chunk, "tok-alice",
                    {{"Upload-Checksum", "sha1 " + Base64Encode(media::Sha1(chunk))}});
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 204) << last->body;
  EXPECT_EQ(last->get_header_value("Upload-Offset"), "300000");

  auto got = Get(path);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_TRUE(got->body == bytes);
  EXPECT_EQ(got->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(got->get_header_value("Content-Length"), "300000");
  EXPECT_EQ(got->get_header_value("ETag"), "\"" + sha + "\"");
  EXPECT_EQ(got->get_header_value("Access-Control-Allow-Origin"), "*");
  // Range resume of a download.
  auto rest = Get(path, "tok-alice", {{"Range", "bytes=250000-"}});
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->status, 206);
  EXPECT_EQ(rest->get_header_value("Content-Range"), "bytes 250000-299999/300000");
  EXPECT_TRUE(rest->body == bytes.substr(250'000));
  auto mid = Get(path, "tok-alice", {{"Range", "bytes=10-19"}});
  ASSERT_TRUE(mid);
  EXPECT_EQ(mid->status, 206);
  EXPECT_EQ(mid->body, bytes.substr(10, 10));
  auto tail = Get(path, "tok-alice", {{"Range", "bytes=-5"}});
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->body, bytes.substr(bytes.size() - 5));
  for (const char* bad : {"bytes=300000-", "bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=x-"}) {
    auto r = Get(path, "tok-alice", {{"Range", bad}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 416) << bad;
    EXPECT_FALSE(r->body.empty()) << bad;
  }
  auto unmodified = Get(path, "tok-alice", {{"If-None-Match", "\"" + sha + "\""}});
  ASSERT_TRUE(unmodified);
  EXPECT_EQ(unmodified->status, 304);
}

TEST_F(MediaServerTest, CreationWithUpload) {
  Start();
  std::string bytes = Bytes(1000);
  httplib::Headers h = Tus();
  h.emplace("Upload-Length", "1000");
  auto res = client_->Post("/files/", h, bytes.substr(0, 600), "application/offset+octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(res->get_header_value("Upload-Offset"), "600");
  std::string path = res->get_header_value("Location");
  EXPECT_EQ(HeadOffset(path), 600);
  auto last = Patch(path, 600, bytes.substr(600));
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 204);
  EXPECT_EQ(Get(path)->body, bytes);
}

TEST_F(MediaServerTest, ProtocolErrors) {
  Start();
  std::string path = Create(100);
  ASSERT_FALSE(path.empty());
  // 409: wrong offset; the answer names the right one.
  auto conflict = Patch(path, 5, "abc");
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(conflict->get_header_value("Upload-Offset"), "0");
  EXPECT_FALSE(conflict->body.empty());
  // 415: wrong content type.
  httplib::Headers h = Tus();
  h.emplace("Upload-Offset", "0");
  auto wrong_type = client_->Patch(path.c_str(), h, "abc", "application/octet-stream");
  ASSERT_TRUE(wrong_type);
  EXPECT_EQ(wrong_type->status, 415);
  // 412: wrong or missing Tus-Resumable.
  auto old = client_->Head(path.c_str(), {{"Tus-Resumable", "0.2.2"}, {"Authorization", "Bearer tok-alice"}});
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 412);
  EXPECT_EQ(old->get_header_value("Tus-Version"), "1.0.0");
  EXPECT_EQ(client_->Head(path.c_str(), {{"Authorization", "Bearer tok-alice"}})->status, 412);
  // 460: checksum mismatch, chunk discarded; 400: unsupported algorithm or bad syntax.
  auto bad_sum =
      Patch(path, 0, "abc", "tok-alice", {{"Upload-Checksum", "sha1 " + Base64Encode(media::Sha1("abd"))}});
  ASSERT_TRUE(bad_sum);
  EXPECT_EQ(bad_sum->status, 460);
  EXPECT_EQ(HeadOffset(path), 0);
  EXPECT_EQ(Patch(path, 0, "abc", "tok-alice", {{"Upload-Checksum", "md5 AAAA"}})->status, 400);
  EXPECT_EQ(Patch(path, 0, "abc", "tok-alice", {{"Upload-Checksum", "sha1"}})->status, 400);
  // 413: a chunk past Upload-Length, and an Upload-Length over Tus-Max-Size.
  auto too_long = Patch(path, 0, Bytes(101));
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->status, 413);
  EXPECT_EQ(HeadOffset(path), 0);
  int status = 0;
  EXPECT_EQ(Create((1 << 20) + 1, "", "tok-alice", &status), "");
  EXPECT_EQ(status, 413);
  // 400: bad creation headers.
  EXPECT_EQ(client_->Post("/files/", Tus(), "", "")->status, 400);  // no Upload-Length
  EXPECT_EQ(Create(10, "filetype !!notbase64", "tok-alice", &status), "");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(Create(10, "sha256 " + Base64Encode("abc"), "tok-alice", &status), "");
  EXPECT_EQ(status, 400);
  // 404: unknown or malformed ids, unknown paths.
  EXPECT_EQ(Head("/files/" + std::string(32, 'a'))->status, 404);
  EXPECT_EQ(Head("/files/nope")->status, 404);
  EXPECT_EQ(Patch("/files/../../etc", 0, "x")->status, 404);
  auto elsewhere = client_->Get("/elsewhere", {{"Authorization", "Bearer tok-alice"}});
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 404);
  EXPECT_FALSE(elsewhere->body.empty());
  // The connection is still usable after all of that.
  EXPECT_EQ(Patch(path, 0, "abc")->status, 204);
  EXPECT_EQ(HeadOffset(path), 3);
}

TEST_F(MediaServerTest, Authentication) {
  Start();
  auto none = client_->Post("/files/", {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "10"}}, "", "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_FALSE(none->body.empty());
  int status = 0;
  EXPECT_EQ(Create(10, "", "tok-mallory", &status), "");
  EXPECT_EQ(status, 401);
  EXPECT_EQ(Create(10, "", "tok-down", &status), "");
  EXPECT_EQ(status, 503);
  std::string path = Create(10);
  EXPECT_EQ(Head(path, "tok-mallory")->status, 401);
  EXPECT_EQ(Get(path, "tok-mallory")->status, 401);
}

TEST_F(MediaServerTest, OtherUsersUploadsLookAbsent) {
  Start();
  std::string bytes = Bytes(100);
  std::string done = Upload(bytes);
  std::string open = Create(100);
  // Bob cannot see, write, delete or read Alice's uploads: the same 404 as for no upload at all.
  EXPECT_EQ(Head(open, "tok-bob")->status, 404);
  EXPECT_EQ(Patch(open, 0, "abc", "tok-bob")->status, 404);
  EXPECT_EQ(client_->Delete(open.c_str(), Tus("tok-bob"))->status, 404);
  EXPECT_EQ(Get(done, "tok-bob")->status, 404);
  EXPECT_EQ(HeadOffset(open), 0);
  // Unless may_read says yes (downloads only).
  may_read_ = true;
  auto shared = Get(done, "tok-bob");
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->status, 200);
  EXPECT_EQ(shared->body, bytes);
  EXPECT_EQ(Head(open, "tok-bob")->status, 404);
}

TEST_F(MediaServerTest, MayReadErrorIs503) {
  options_.may_read = [](const MediaPrincipal&, const BlobInfo&) -> Result<bool> {
    return Status::Unavailable("membership store down");
  };
  Start();
  std::string done = Upload(Bytes(10));
  auto res = Get(done, "tok-bob");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
}

TEST_F(MediaServerTest, Termination) {
  Start();
  std::string path = Create(10);
  ASSERT_EQ(Patch(path, 0, "abc")->status, 204);
  auto del = client_->Delete(path.c_str(), Tus());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204);
  EXPECT_EQ(Head(path)->status, 404);
  EXPECT_EQ(client_->Delete(path.c_str(), Tus())->status, 404);
}

TEST_F(MediaServerTest, WholeUploadSha256MismatchFailsTheLastPatch) {
  Start();
  std::string bytes = Bytes(1000);
  std::string wrong = media::ToHex(media::Sha256("other bytes"));
  std::string path = Create(bytes.size(), "sha256 " + Base64Encode(wrong));
  ASSERT_EQ(Patch(path, 0, bytes.substr(0, 500))->status, 204);
  auto last = Patch(path, 500, bytes.substr(500));
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 460);
  EXPECT_EQ(last->get_header_value("Upload-Offset"), "0");
  EXPECT_NE(last->body.find("sha256"), std::string::npos);
  EXPECT_EQ(HeadOffset(path), 0);
  EXPECT_EQ(Get(path)->status, 404);  // never readable
}

TEST_F(MediaServerTest, DroppedConnectionMidPatchKeepsWhatArrived) {
  Start();
  std::string path = Create(100);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string request =
      "PATCH " + path +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer tok-alice\r\n"
      "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
      "Content-Length: 100\r\n\r\n" +
      Bytes(40);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  ::close(fd);
  EXPECT_TRUE(harness::WaitFor([&] { return HeadOffset(path) == 40; })) << HeadOffset(path);
  // And the upload resumes from there.
  ASSERT_EQ(Patch(path, 40, Bytes(100).substr(40))->status, 204);
  EXPECT_EQ(Get(path)->body, Bytes(100));
}

TEST_F(MediaServerTest, DroppedConnectionWithChecksumKeepsNothing) {
  Start();
  std::string path = Create(100);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string request =
      "PATCH " + path +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer tok-alice\r\n"
      "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
      "Upload-Checksum: sha1 " +
      Base64Encode(media::Sha1(Bytes(100))) +
      "\r\n"
      "Content-Length: 100\r\n\r\n" +
      Bytes(40);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  ::close(fd);
  // The writer is gone once a new one can be opened: PATCH at 0 then succeeds (not 423).
  EXPECT_TRUE(harness::WaitFor([&] {
    auto r = Patch(path, 0, "x");
    return r && r->status == 204;
  }));
  EXPECT_EQ(HeadOffset(path), 1);
}

TEST_F(MediaServerTest, ExpiredUploadIs410ThenRemoved) {
  options_.upload_expiry_ms = 60'000;
  Start();
  std::string path = Create(10);
  ASSERT_EQ(Patch(path, 0, "abc")->status, 204);
  env_.AdvanceMs(60'001);
  EXPECT_EQ(Head(path)->status, 410);
  EXPECT_EQ(Patch(path, 3, "def")->status, 410);
  EXPECT_EQ(options_.blobs->RemoveExpired(env_.NowMs()).value(), 1u);
  EXPECT_EQ(Head(path)->status, 404);
}

TEST_F(MediaServerTest, ExpireThreadRemovesExpiredUploads) {
  options_.upload_expiry_ms = 60'000;
  options_.expire_interval_ms = 5;
  Start();
  std::string open = Create(10);
  std::string done = Upload(Bytes(10));
  env_.AdvanceMs(60'001);
  EXPECT_TRUE(harness::WaitFor([&] { return Head(open)->status == 404; }));
  EXPECT_EQ(Get(done)->status, 200);  // complete uploads do not expire
}

TEST_F(MediaServerTest, UploadsPerUserLimitIs429) {
  options_.uploads_per_user_max = 2;
  Start();
  std::string a = Create(3);
  std::string b = Create(3);
  int status = 0;
  EXPECT_EQ(Create(3, "", "tok-alice", &status), "");
  EXPECT_EQ(status, 429);
  httplib::Headers h = Tus();
  h.emplace("Upload-Length", "3");
  auto refused = client_->Post("/files/", h, "", "");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->body.find("too many unfinished uploads"), std::string::npos);
  EXPECT_FALSE(Create(3, "", "tok-bob").empty());  // per user
  // Finishing one upload and deleting another frees their slots.
  ASSERT_EQ(Patch(a, 0, "abc")->status, 204);
  EXPECT_FALSE(Create(3).empty());
  EXPECT_EQ(Create(3, "", "tok-alice", &status), "");
  EXPECT_EQ(status, 429);
  ASSERT_EQ(client_->Delete(b.c_str(), Tus())->status, 204);
  EXPECT_FALSE(Create(3).empty());
}

TEST_F(MediaServerTest, ConcurrentWriterIs423) {
  Start();
  std::string path = Create(100);
  std::string id = path.substr(7);
  auto writer = options_.blobs->Append(id, 0);  // as if another instance were writing it
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(Patch(path, 0, "abc")->status, 423);
  EXPECT_EQ(client_->Delete(path.c_str(), Tus())->status, 423);
  writer->reset();
  EXPECT_EQ(Patch(path, 0, "abc")->status, 204);
}

TEST_F(MediaServerTest, ConnectionsOverTheLimitAreRefused) {
  options_.connections_max = 1;
  options_.threads = 2;
  Start();
  // The first connection is held open (kept alive) by client_.
  client_->set_keep_alive(true);
  ASSERT_FALSE(Create(3).empty());
  httplib::Client other("127.0.0.1", server_->port());
  auto res = other.Head("/files/x", Tus());
  EXPECT_TRUE(!res || res->status == 503) << (res ? res->status : 0);
  EXPECT_GE(server_->Stats().connections_refused, 1u);
  EXPECT_EQ(server_->Stats().server_errors, 0u);  // the refusal's 503 is not a response of a handler
  client_.reset();  // the first one closes; its slot frees once the server sees it
  EXPECT_TRUE(harness::WaitFor([&] {
    httplib::Client again("127.0.0.1", server_->port());
    auto r = again.Options("/files/");
    return r && r->status == 204;
  }));
}

TEST_F(MediaServerTest, BodyOnGetIsRefused) {
  Start();
  auto res = client_->Get("/files/x", {{"Authorization", "Bearer tok-alice"}, {"Content-Length", "5"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(MediaServerTest, StopIsPromptWithAStalledUpload) {
  options_.read_timeout_ms = 600'000;
  Start();
  std::string path = Create(100);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string request = "PATCH " + path +
                        " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer tok-alice\r\n"
                        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                        "Content-Length: 100\r\n\r\n0123456789";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  EXPECT_TRUE(harness::WaitFor([&] { return !options_.blobs->Append(path.substr(7), 0).ok(); }));
  int64_t start = harness::SteadyNowMs();
  client_.reset();
  server_->Stop();
  EXPECT_LT(harness::SteadyNowMs() - start, 10'000);
  ::close(fd);
  EXPECT_EQ(options_.blobs->Stat(path.substr(7))->offset, 10u);  // what arrived was kept
}

TEST_F(MediaServerTest, StatsCountWhatHappened) {
  Start();
  EXPECT_EQ(server_->Stats().uploads_created, 0u);
  std::string path = Create(10);
  ASSERT_FALSE(path.empty());
  ASSERT_EQ(Patch(path, 0, "0123")->status, 204);
  // A chunk with a wrong checksum is discarded: it counts as a mismatch, not as bytes or a chunk.
  EXPECT_EQ(
      Patch(path, 4, "45", "tok-alice", {{"Upload-Checksum", "sha1 " + Base64Encode(media::Sha1("xx"))}})
          ->status,
      460);
  EXPECT_EQ(Patch(path, 3, "x")->status, 409);  // wrong offset: another 4xx
  EXPECT_EQ(Patch(path, 4, "")->status, 204);   // empty: no chunk
  MediaServerStats mid = server_->Stats();
  EXPECT_EQ(mid.uploads_created, 1u);
  EXPECT_EQ(mid.uploads_completed, 0u);
  EXPECT_EQ(mid.upload_bytes_received, 4u);
  EXPECT_EQ(mid.chunks, 1u);
  EXPECT_EQ(mid.checksum_mismatches, 1u);
  EXPECT_EQ(mid.rejected_other, 2u);
  ASSERT_EQ(Patch(path, 4, "456789")->status, 204);
  {
    // Complete at creation (so no Upload-Expires, which Create expects).
    httplib::Headers h = Tus();
    h.emplace("Upload-Length", "0");
    auto empty = client_->Post("/files/", h, "", "");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 201);
  }

  ASSERT_EQ(Get(path)->body, "0123456789");
  auto ranged = Get(path, "tok-alice", {{"Range", "bytes=6-"}});
  ASSERT_EQ(ranged->status, 206);
  EXPECT_EQ(Get(path, "tok-bob")->status, 404);  // not allowed reads as absent
  EXPECT_EQ(Head("/files/nope")->status, 404);
  EXPECT_EQ(client_->Get(path.c_str())->status, 401);  // no token
  EXPECT_EQ(Head(path, "tok-nobody")->status, 401);
  EXPECT_EQ(Head(path, "tok-down")->status, 503);

  // The byte count is bumped once the socket took the bytes, which may be just after the client read them.
  EXPECT_TRUE(harness::WaitFor([&] { return server_->Stats().download_bytes_sent == 14; }))
      << server_->Stats().download_bytes_sent;
  MediaServerStats s = server_->Stats();
  EXPECT_EQ(s.uploads_created, 2u);
  EXPECT_EQ(s.uploads_completed, 2u);
  EXPECT_EQ(s.upload_bytes_received, 10u);
  EXPECT_EQ(s.chunks, 2u);
  EXPECT_EQ(s.checksum_mismatches, 1u);
  EXPECT_EQ(s.downloads, 2u);
  EXPECT_EQ(s.refused_auth, 2u);
  EXPECT_EQ(s.not_found, 2u);
  EXPECT_EQ(s.rejected_other, 2u);
  EXPECT_EQ(s.server_errors, 1u);
  EXPECT_EQ(s.connections_refused, 0u);
}

TEST_F(MediaServerTest, StatsCountACutBodyByWhatWasKept) {
  Start();
  std::string path = Create(100);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string request =
      "PATCH " + path +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer tok-alice\r\n"
      "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
      "Content-Length: 100\r\n\r\n" +
      Bytes(40);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  ::close(fd);
  EXPECT_TRUE(harness::WaitFor([&] { return server_->Stats().upload_bytes_received == 40; }))
      << server_->Stats().upload_bytes_received;
  EXPECT_EQ(server_->Stats().chunks, 1u);
  EXPECT_EQ(server_->Stats().uploads_completed, 0u);
}

TEST_F(MediaServerTest, TuspyUploadsAndResumes) {
  if (std::system("/usr/bin/python3 -c 'import tusclient.client' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import tusclient (Debian package python3-tuspy)";
  }
  options_.env = nullptr;  // tuspy's requests go through the real clock anyway
  Start();
  harness::TempDir dir("tuspy");
  std::string bytes = Bytes(200'000, 'k');
  std::string file = dir / "photo.bin";
  {
    FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  std::string command =
      "/usr/bin/python3 " OUTPOST_TUSPY_SCRIPT " http://127.0.0.1:" + std::to_string(server_->port()) +
      "/files/ tok-alice " + file + " " + (dir / "urls.json") + " 65536 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int rc = ::pclose(p);
  ASSERT_EQ(rc, 0) << output;
  std::string url = output.substr(0, output.find_last_not_of('\n') + 1);
  url = url.substr(url.rfind('\n') == std::string::npos ? 0 : url.rfind('\n') + 1);
  std::string id = BlobIdOfUploadUrl(url);
  ASSERT_TRUE(IsValidBlobId(id)) << output;
  auto info = options_.blobs->Stat(id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->complete);
  EXPECT_EQ(info->spec.owner, "alice");
  EXPECT_EQ(info->spec.content_type, "application/x-test");
  EXPECT_EQ(info->sha256, media::ToHex(media::Sha256(bytes)));
  EXPECT_TRUE(Get("/files/" + id)->body == bytes);
}

// A raw loopback connection to the server, whose reads give up after 10 s (a bound, not a wait).
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// What the server sends until it closes (or a read fails: a reset, or the 10 s bound).
std::string ReadUntilClosed(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// This process's resident set in KiB (the server runs in it).
int64_t RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

bool OptionsAnswered(uint16_t port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  auto r = c.Options("/files/");
  return r && r->status == 204;
}

TEST_F(MediaServerTest, SlowConnectionsDoNotStopTheServer) {
  options_.threads = 2;
  options_.header_timeout_ms = 300;
  options_.read_timeout_ms = 60'000;  // without the header deadline, each would hold its worker this long
  Start();
  // As many connections as workers: one sends nothing, the other half a request line.
  int silent = Connect(server_->port());
  int half = Connect(server_->port());
  ASSERT_GE(silent, 0);
  ASSERT_GE(half, 0);
  ASSERT_TRUE(SendAll(half, "OPTIONS /fi"));
  int64_t start = harness::SteadyNowMs();
  EXPECT_TRUE(OptionsAnswered(server_->port()));
  EXPECT_LT(harness::SteadyNowMs() - start, 5'000);
  // Both were closed without an answer (neither had a whole request line).
  EXPECT_EQ(ReadUntilClosed(silent), "");
  EXPECT_EQ(ReadUntilClosed(half), "");
  ::close(silent);
  ::close(half);
  // A whole request line whose headers stop coming is answered 408, then closed.
  int slow_headers = Connect(server_->port());
  ASSERT_TRUE(SendAll(slow_headers, "OPTIONS /files/ HTTP/1.1\r\nHost: x\r\n"));
  std::string answer = ReadUntilClosed(slow_headers);
  ::close(slow_headers);
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 408") << answer;
}

TEST_F(MediaServerTest, SlowBodyIsDropped) {
  options_.read_timeout_ms = 60'000;
  options_.body_bytes_per_second_min = 1024;
  options_.body_rate_window_ms = 300;  // so at least 307 bytes per 300 ms of waiting
  Start();
  std::string path = Create(1000);
  int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  std::string request = "PATCH " + path +
                        " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer tok-alice\r\n"
                        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                        "Content-Length: 1000\r\n\r\n" +
                        Bytes(10);
  ASSERT_TRUE(SendAll(fd, request));
  // Well before the read timeout the connection is dropped and what arrived is kept.
  int64_t start = harness::SteadyNowMs();
  ReadUntilClosed(fd);
  EXPECT_LT(harness::SteadyNowMs() - start, 9'000);
  ::close(fd);
  EXPECT_TRUE(harness::WaitFor([&] { return HeadOffset(path) == 10; })) << HeadOffset(path);
  // A body at speed is not affected.
  EXPECT_EQ(Patch(path, 10, Bytes(990))->status, 204);
}

TEST_F(MediaServerTest, OversizedHeadersAreRefusedWithoutMemory) {
  Start();
  int64_t rss_before = RssKib();
  ASSERT_GT(rss_before, 0);
  // One 16 MiB header line: the server stops reading at header_bytes_max, answers 431 and closes, so the
  // sender sees an answer or a reset (unread bytes on a closed socket).
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    std::string chunk(64 << 10, 'a');
    bool sent = SendAll(fd, "GET /files/x HTTP/1.1\r\nHost: x\r\nX-Long: ");
    for (int i = 0; sent && i < 256; ++i) sent = SendAll(fd, chunk);
    std::string answer = ReadUntilClosed(fd);
    ::close(fd);
    EXPECT_TRUE(answer.empty() || answer.substr(0, 12) == "HTTP/1.1 431") << answer.substr(0, 100);
    EXPECT_FALSE(sent);  // it stopped reading long before 16 MiB
  }
  EXPECT_TRUE(OptionsAnswered(server_->port()));
  // 10,000 small headers.
  {
    int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    std::string request = "GET /files/x HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 10'000; ++i) request += "X-Filler-" + std::to_string(i) + ": v\r\n";
    request += "\r\n";
    (void)SendAll(fd, request);
    std::string answer = ReadUntilClosed(fd);
    ::close(fd);
    EXPECT_TRUE(answer.empty() || answer.substr(0, 12) == "HTTP/1.1 431") << answer.substr(0, 100);
  }
  EXPECT_TRUE(OptionsAnswered(server_->port()));
  EXPECT_LT(RssKib() - rss_before, 8 << 10) << "KiB";
}

TEST_F(MediaServerTest, HeadersAtTheBudgetAre431) {
  options_.header_bytes_max = 1024;
  Start();
  // Exactly the budget, with no end of headers: the server reads it all, then refuses to read more. Nothing
  // is left unread, so the 431 arrives (no reset).
  std::string request = "GET /files/x HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  request += std::string(1024 - request.size() - 2, 'p') + "\r\n";
  ASSERT_EQ(request.size(), 1024u);
  int fd = Connect(server_->port());
  ASSERT_TRUE(SendAll(fd, request));
  std::string answer = ReadUntilClosed(fd);
  ::close(fd);
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 431") << answer;
  EXPECT_NE(answer.find("too large"), std::string::npos) << answer;
  // A request well within the budget is served.
  EXPECT_TRUE(OptionsAnswered(server_->port()));
}

TEST_F(MediaServerTest, ConnectionsPerIpAreCapped) {
  options_.connections_per_ip_max = 2;
  options_.threads = 4;
  Start();
  int a = Connect(server_->port());
  int b = Connect(server_->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // The server accepts in order: a and b hold this IP's two slots, so the third is turned away at once.
  int c = Connect(server_->port());
  ASSERT_GE(c, 0);
  std::string answer = ReadUntilClosed(c);
  ::close(c);
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
  ::close(a);
  // Once the server sees a closed, its slot is free again.
  EXPECT_TRUE(harness::WaitFor([&] { return OptionsAnswered(server_->port()); }));
  ::close(b);
}

TEST_F(MediaServerTest, DeleteOfACompleteUploadIs409) {
  Start();
  std::string bytes = Bytes(100);
  std::string done = Upload(bytes);
  auto del = client_->Delete(done.c_str(), Tus());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 409);
  EXPECT_NE(del->body.find("upload is complete"), std::string::npos) << del->body;
  auto got = Get(done);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, bytes);
}

// A response as text (status, headers, body), so that two can be compared whole.
std::string Whole(const httplib::Result& res) {
  if (!res) return "no response";
  std::string out = std::to_string(res->status) + "\n";
  for (const auto& [name, value] : res->headers) {
    if (name != "Date") out += name + ": " + value + "\n";
  }
  return out + "\n" + res->body;
}

TEST_F(MediaServerTest, NotFoundsAreIdentical) {
  Start();
  std::string done = Upload(Bytes(100));
  std::string open = Create(100);
  std::string unknown = "/files/" + std::string(32, 'a');
  // GET: unknown, someone else's (may_read says no), unfinished (its owner's or anyone's).
  std::string expected = Whole(Get(unknown, "tok-bob"));
  EXPECT_EQ(expected.substr(0, 4), "404\n");
  EXPECT_EQ(Whole(Get(done, "tok-bob")), expected);
  EXPECT_EQ(Whole(Get(open, "tok-bob")), expected);
  EXPECT_EQ(Whole(Get(open, "tok-alice")), expected);
  EXPECT_EQ(Whole(Get("/files/nope", "tok-bob")), expected);
  // HEAD, PATCH, DELETE of someone else's upload, finished or not, against an unknown one.
  for (const std::string& path : {open, done}) {
    EXPECT_EQ(Whole(Head(path, "tok-bob")), Whole(Head(unknown, "tok-bob"))) << path;
    EXPECT_EQ(Whole(Patch(path, 0, "abc", "tok-bob")), Whole(Patch(unknown, 0, "abc", "tok-bob"))) << path;
    EXPECT_EQ(Whole(client_->Delete(path.c_str(), Tus("tok-bob"))),
              Whole(client_->Delete(unknown.c_str(), Tus("tok-bob"))))
        << path;
  }
  EXPECT_EQ(Head(unknown, "tok-bob")->status, 404);
  EXPECT_EQ(HeadOffset(open), 0);
}

TEST_F(MediaServerTest, UploadsBelongToTheirDevice) {
  Start();
  std::string bytes = Bytes(100);
  std::string done = Upload(bytes);  // by alice's device a1
  std::string open = Create(100);
  std::string unknown = "/files/" + std::string(32, 'b');
  // Alice's other device sees neither upload: the same 404 as an unknown id.
  EXPECT_EQ(Whole(Head(open, "tok-alice2")), Whole(Head(unknown, "tok-alice2")));
  EXPECT_EQ(Head(open, "tok-alice2")->status, 404);
  EXPECT_EQ(Whole(Patch(open, 0, "abc", "tok-alice2")), Whole(Patch(unknown, 0, "abc", "tok-alice2")));
  EXPECT_EQ(Whole(client_->Delete(open.c_str(), Tus("tok-alice2"))),
            Whole(client_->Delete(unknown.c_str(), Tus("tok-alice2"))));
  EXPECT_EQ(HeadOffset(open), 0);  // untouched, still there for a1
  // Downloads are per user: any of Alice's devices may read her blob.
  auto got = Get(done, "tok-alice2");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, bytes);
  // An upload made without a device is the user's, from any device.
  BlobSpec spec;
  spec.owner = "alice";
  spec.size = 10;
  auto made = options_.blobs->Create(spec, env_.NowMs());
  ASSERT_TRUE(made.ok());
  auto head = Head("/files/" + made->id, "tok-alice2");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
}

}  // namespace
}  // namespace outpost
