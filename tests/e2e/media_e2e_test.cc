// Copyright 2026 The Outpost Authors.
//
// Attachments end to end (issue 15): a real outpostd serving media (--http) next to sync, devices with the
// libcurl tus transport, and clients that are not ours (tus-js-client under node, tuspy under python3):
//   - a 5 MB file sent to a conversation reaches the other member byte for byte; a non-member gets 404;
//   - an upload cut by kill -9 of outpostd resumes after the restart, sending about one chunk again;
//   - tus-js-client and tuspy upload (interrupted, then resumed by a new client object) to outpostd;
//   - bearer tokens (unknown, malformed, not yet bound → 401), OPTIONS and the limits flags;
//   - the media flags' usage errors.
// The tus-js-client test needs the npm packages of the media.npm_deps fixture (OUTPOST_NPM_DIR).
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.h"
#include "media/client/tus_transport.h"
#include "media/common/digest.h"
#include "outpost/blob_store.h"

#ifndef OUTPOST_NPM_DIR_DEFAULT
#define OUTPOST_NPM_DIR_DEFAULT ""
#endif

namespace outpost::e2e {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Sha256Hex(std::string_view bytes) { return media::ToHex(media::Sha256(bytes)); }

// The last path segment of an upload URL: the blob id.
std::string LastSegment(const std::string& url) { return url.substr(url.rfind('/') + 1); }

class MediaE2ETest : public E2ETest {
 protected:
  std::vector<std::string> ServerFlags() override { return {"--http", "127.0.0.1:0"}; }

  void SetUp() override {
    E2ETest::SetUp();
    if (HasFatalFailure()) return;
    // stats.json is written before the endpoint file that Daemon::Start waits for.
    media_url_ = StatsString(data_, "media_url");
    const std::string prefix = "http://127.0.0.1:";
    ASSERT_TRUE(media_url_.starts_with(prefix) && media_url_.ends_with("/files/")) << media_url_;
    port_ = std::atoi(media_url_.c_str() + prefix.size());
    ASSERT_GT(port_, 0) << media_url_;
  }

  std::unique_ptr<Client> OpenWithMedia(const std::string& user, const std::string& device,
                                        const std::string& token, uint32_t chunk_bytes = 0) {
    DeviceOptions o;
    o.user = user;
    o.device = device;
    o.token = token;
    o.server = daemon_.endpoint();
    o.media = tus_;
    o.media_dir = dir_.Subdir(user + "-" + device + "-media");
    o.upload_chunk_bytes = chunk_bytes;
    return OpenDevice(dir_.path(), o);
  }

  // A file of `n` pseudo-random bytes.
  std::string MakeFile(const std::string& name, size_t n) {
    std::string bytes(n, '\0');
    std::mt19937_64 rng(n);
    for (size_t i = 0; i + 8 <= n; i += 8) {
      const uint64_t v = rng();
      std::memcpy(&bytes[i], &v, 8);
    }
    const std::string path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  static SubmitOptions WithFile(const std::string& path) {
    SubmitOptions so;
    so.attachment.path = path;
    so.attachment.content_type = "application/octet-stream";
    return so;
  }

  // Waits until the op left the pending state; its final info.
  static OpInfo WaitSent(Client& device, const OpId& id, int64_t bound_ms) {
    const bool answered = WaitFor(
        [&] {
          auto op = device.Get(id);
          return op.ok() && op->state != OpState::kPending;
        },
        bound_ms);
    auto op = device.Get(id);
    EXPECT_TRUE(answered) << "still pending; uploaded " << device.Stats().upload_bytes_done << " of "
                          << device.Stats().upload_bytes_total
                          << "; last connection error: " << device.Stats().last_connection_error;
    return op.ok() ? *op : OpInfo{};
  }

  httplib::Result Request(const std::string& method, const std::string& path, const std::string& token,
                          httplib::Headers headers = {}) {
    httplib::Client http("127.0.0.1", port_);
    http.set_connection_timeout(10);
    http.set_read_timeout(30);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    headers.emplace("Tus-Resumable", "1.0.0");
    if (method == "GET") return http.Get(path, headers);
    if (method == "HEAD") return http.Head(path, headers);
    if (method == "OPTIONS") return http.Options(path, headers);
    return http.Post(path, headers, "", "application/offset+octet-stream");
  }
  int HttpStatus(const std::string& method, const std::string& path, const std::string& token,
                 httplib::Headers headers = {}) {
    auto r = Request(method, path, token, std::move(headers));
    return r ? r->status : -1;
  }

  std::shared_ptr<MediaTransport> tus_ = std::shared_ptr<MediaTransport>(OpenTusTransport().release());
  std::string media_url_;
  int port_ = 0;
};

TEST_F(MediaE2ETest, AFileReachesTheOtherMemberByteForByteAndNoOneElse) {
  const std::string carol_token = AddUser(data_, "carol");
  auto alice = OpenWithMedia("alice", "phone", alice_phone_token_);
  auto bob = OpenWithMedia("bob", "phone", bob_phone_token_);
  auto carol = OpenWithMedia("carol", "phone", carol_token);
  ASSERT_TRUE(alice && bob && carol);
  CreateStream(*alice, "conv", {"alice", "bob"});
  if (HasFatalFailure()) return;

  const std::string path = MakeFile("photo.bin", 5 << 20);
  auto id = alice->Submit("conv", "photo", "five megabytes", WithFile(path));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const OpInfo sent = WaitSent(*alice, *id, kLongWaitMs);
  ASSERT_EQ(sent.state, OpState::kSent) << sent.last_error;
  const std::string blob = sent.attachment.blob_id;
  ASSERT_TRUE(IsValidBlobId(blob)) << blob;

  Discover(*bob, "bob", "conv");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = bob->Get(*id);
        return op.ok() && op->has_attachment && op->attachment.blob_id == blob;
      },
      kWaitMs));
  EXPECT_EQ(bob->Get(*id)->payload, "five megabytes");
  const std::string copy = dir_ / "bob-copy.bin";
  const Status fetched = bob->FetchAttachment(*id, copy);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  const std::string original = Slurp(path);
  EXPECT_EQ(Sha256Hex(Slurp(copy)), Sha256Hex(original));
  EXPECT_TRUE(Slurp(copy) == original);

  // Carol is a user, with a bound token, but no member: the server says 404 as if the blob did not exist,
  // to the transport her device would fetch with and to plain HTTP.
  ASSERT_TRUE(WaitFor([&] { return carol->Stats().connected; }, kWaitMs))
      << carol->Stats().last_connection_error;
  std::string leaked;
  auto download =
      tus_->Download(MediaEndpoint{media_url_, carol_token}, blob, 0, [&](std::string_view bytes) {
        leaked.append(bytes);
        return Status::OK();
      });
  EXPECT_TRUE(download.status().IsNotFound()) << download.status().ToString();
  EXPECT_TRUE(leaked.empty());
  EXPECT_TRUE(carol->FetchAttachment(*id, dir_ / "carol.bin").IsNotFound()) << "carol never got the op";
  EXPECT_EQ(HttpStatus("GET", "/files/" + blob, carol_token), 404);
  EXPECT_EQ(HttpStatus("GET", "/files/" + blob, bob_phone_token_), 200);
  EXPECT_EQ(HttpStatus("GET", "/files/" + blob, alice_phone_token_), 200);
  // Alice's laptop token never connected: not bound to a device, so not taken over HTTP either.
  EXPECT_EQ(HttpStatus("GET", "/files/" + blob, alice_laptop_token_), 401);
  EXPECT_NE(Devices(data_, "alice").find("unbound"), std::string::npos) << "HTTP must not bind a token";
}

TEST_F(MediaE2ETest, AnUploadCutByKill9ResumesAfterTheRestartSendingAboutOneChunkAgain) {
  constexpr uint32_t kChunk = 128 << 10;
  constexpr size_t kSize = 24 << 20;  // 192 chunks, each committed (fsync) by the blob store
  auto alice = OpenWithMedia("alice", "phone", alice_phone_token_, kChunk);
  ASSERT_TRUE(alice);
  CreateStream(*alice, "conv", {"alice", "bob"});
  if (HasFatalFailure()) return;
  const std::string path = MakeFile("video.bin", kSize);
  auto id = alice->Submit("conv", "video", "", WithFile(path));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return alice->Stats().upload_bytes_done >= kSize / 3; }, kLongWaitMs))
      << "uploaded " << alice->Stats().upload_bytes_done;
  daemon_.Signal(SIGKILL);
  ASSERT_EQ(daemon_.WaitExit(10'000), -1);
  const ClientStats cut = alice->Stats();
  ASSERT_LT(cut.upload_bytes_done, kSize) << "the upload finished before the kill: nothing to resume";
  EXPECT_EQ(alice->Get(*id)->state, OpState::kPending);

  // The same ports: the device's upload URL names the media server's.
  std::string error;
  ASSERT_TRUE(daemon_.Restart({"--http", "127.0.0.1:" + std::to_string(port_)}, &error)) << error;
  EXPECT_EQ(StatsString(data_, "media_url"), media_url_);
  const OpInfo sent = WaitSent(*alice, *id, kLongWaitMs);
  ASSERT_EQ(sent.state, OpState::kSent) << sent.last_error;
  const ClientStats done = alice->Stats();
  // Each byte once, give or take the chunk in flight at the kill: stored with its answer lost (not counted,
  // not sent again), or not stored (sent again).
  EXPECT_GE(done.upload_bytes_sent + kChunk, kSize);
  EXPECT_LE(done.upload_bytes_sent, kSize + kChunk) << "the upload started again instead of resuming";
  EXPECT_LE(done.upload_chunks, kSize / kChunk + 1);

  const std::string copy = dir_ / "copy.bin";
  const Status fetched = alice->FetchAttachment(*id, copy);
  ASSERT_TRUE(fetched.ok()) << fetched.ToString();
  EXPECT_TRUE(Slurp(copy) == Slurp(path));
  EXPECT_TRUE(Slurp(data_ + "/blobs/" + sent.attachment.blob_id + ".data") == Slurp(path));
}

// tus-js-client (Node.js) uploads a file in chunks, is aborted after the first, and a new Upload object
// resumes from the server's offset; the blob is then the file's bytes.
TEST_F(MediaE2ETest, TusJsClientUploadsAndResumesAnInterruptedUpload) {
  const char* env = std::getenv("OUTPOST_NPM_DIR");
  const std::string npm = env != nullptr && env[0] != '\0' ? env : OUTPOST_NPM_DIR_DEFAULT;
  struct stat st {};
  ASSERT_EQ(::stat((npm + "/node_modules/tus-js-client/package.json").c_str(), &st), 0)
      << "no tus-js-client under " << npm << "/node_modules: run tools/npm-deps " << npm
      << " (ctest runs it as media.npm_deps), or point OUTPOST_NPM_DIR at such a directory";
  const std::string token = AddDevice(data_, "alice", "web");  // bound at issue: no connection needed
  constexpr size_t kSize = 1'000'003;
  constexpr size_t kChunk = 128 << 10;
  const std::string path = MakeFile("web.bin", kSize);
  RunResult r = RunProgram(
      {"node", OUTPOST_TUS_JS_SCRIPT, npm, media_url_, token, path, std::to_string(kChunk)}, 90'000);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  // {"url":"...","interrupted_at":N,"resumed_from":N,"chunks_after":N}
  auto field = [&](const std::string& name) -> std::string {
    const std::string key = "\"" + name + "\":";
    const size_t at = r.out.find(key);
    if (at == std::string::npos) return "";
    size_t start = at + key.size();
    size_t end = r.out.find_first_of(",}", start);
    std::string v = r.out.substr(start, end - start);
    if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() - 2);
    return v;
  };
  const std::string url = field("url");
  ASSERT_TRUE(url.starts_with(media_url_)) << r.out;
  EXPECT_EQ(field("interrupted_at"), std::to_string(kChunk)) << r.out;
  EXPECT_EQ(field("resumed_from"), std::to_string(kChunk)) << "resumed, not started again: " << r.out;
  EXPECT_EQ(field("chunks_after"), std::to_string((kSize - kChunk + kChunk - 1) / kChunk)) << r.out;
  auto got = Request("GET", "/files/" + LastSegment(url), token);
  ASSERT_TRUE(got) << httplib::to_string(got.error());
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(Sha256Hex(got->body), Sha256Hex(Slurp(path)));
}

// tuspy (python3-tuspy) does the same: interrupted after a chunk, resumed by a new uploader that finds the
// URL in its URL storage.
TEST_F(MediaE2ETest, TuspyUploadsAndResumesAnInterruptedUpload) {
  if (RunProgram({"/usr/bin/python3", "-c", "import tusclient"}).exit_code != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import tusclient (Debian package python3-tuspy)";
  }
  const std::string token = AddDevice(data_, "bob", "script");
  const std::string path = MakeFile("py.bin", 300'001);
  RunResult r = RunProgram(
      {"/usr/bin/python3", OUTPOST_TUSPY_SCRIPT, media_url_, token, path, dir_ / "urls.json", "65536"},
      90'000);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  std::string url = r.out.substr(0, r.out.find_last_not_of('\n') + 1);
  url = url.substr(url.rfind('\n') == std::string::npos ? 0 : url.rfind('\n') + 1);
  ASSERT_TRUE(url.starts_with(media_url_)) << r.out;
  auto got = Request("GET", "/files/" + LastSegment(url), token);
  ASSERT_TRUE(got) << httplib::to_string(got.error());
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_TRUE(got->body == Slurp(path));
  // Alice shares no stream with bob: his upload is not hers to read.
  auto alice = OpenWithMedia("alice", "phone", alice_phone_token_);
  ASSERT_TRUE(WaitFor([&] { return alice->Stats().connected; }, kWaitMs));
  EXPECT_EQ(HttpStatus("GET", "/files/" + LastSegment(url), alice_phone_token_), 404);
}

class MediaLimitsE2ETest : public MediaE2ETest {
 protected:
  std::vector<std::string> ServerFlags() override {
    return {"--http", "127.0.0.1:0", "--upload-max-bytes", "1000000", "--upload-expiry", "1h"};
  }
};

TEST_F(MediaLimitsE2ETest, TokensOptionsAndLimits) {
  auto options = Request("OPTIONS", "/files/", "");
  ASSERT_TRUE(options) << httplib::to_string(options.error());
  EXPECT_EQ(options->status, 204);
  const std::string extensions = options->get_header_value("Tus-Extension");
  for (const char* ext : {"creation", "creation-with-upload", "termination", "checksum", "expiration"}) {
    EXPECT_NE(extensions.find(ext), std::string::npos) << ext << " not in " << extensions;
  }
  EXPECT_EQ(options->get_header_value("Tus-Max-Size"), "1000000");
  EXPECT_EQ(options->get_header_value("Tus-Version").find("1.0.0"), 0u);

  const std::string token = AddDevice(data_, "alice", "web");
  const httplib::Headers small{{"Upload-Length", "1000"}};
  EXPECT_EQ(HttpStatus("POST", "/files/", "", small), 401) << "no token";
  EXPECT_EQ(HttpStatus("POST", "/files/", "opt_" + std::string(43, 'A'), small), 401) << "unknown token";
  EXPECT_EQ(HttpStatus("POST", "/files/", "not-a-token", small), 401) << "malformed token";
  EXPECT_EQ(HttpStatus("POST", "/files/", alice_laptop_token_, small), 401) << "token not bound yet";
  EXPECT_EQ(HttpStatus("POST", "/files/", token, {{"Upload-Length", "1000001"}}), 413);
  auto created = Request("POST", "/files/", token, small);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_FALSE(created->get_header_value("Upload-Expires").empty());
  const std::string blob = LastSegment(created->get_header_value("Location"));
  EXPECT_TRUE(IsValidBlobId(blob)) << created->get_header_value("Location");
  EXPECT_EQ(HttpStatus("HEAD", "/files/" + blob, token), 200);
  EXPECT_EQ(HttpStatus("HEAD", "/files/" + blob, bob_phone_token_), 401);
  EXPECT_EQ(HttpStatus("HEAD", "/files/" + std::string(32, 'a'), token), 404);
}

TEST(MediaCli, MediaFlagsUsageErrorsExitTwo) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::vector<std::vector<std::string>> usage_errors = {
      {"--data", data, "--blobs", "file:" + (dir / "b")},  // no --http
      {"--data", data, "--media-url", "http://x/files/"},
      {"--data", data, "--upload-expiry", "1h"},
      {"--data", data, "--http", "0.0.0.0:0"},  // which URL do devices use?
      {"--data", data, "--http", "[::]:0"},
      {"--data", data, "--http", "127.0.0.1"},
      {"--data", data, "--http", "127.0.0.1:99999"},
      {"--data", data, "--http", "::1:80"},
      {"--data", data, "--http", "127.0.0.1:0", "--media-url", "ftp://x/"},
      {"--data", data, "--http", "127.0.0.1:0", "--media-url", "http://a b/"},
      {"--data", data, "--http", "127.0.0.1:0", "--upload-expiry", "0s"},
      {"--data", data, "--http", "127.0.0.1:0", "--upload-expiry", "soon"},
      {"--data", data, "--http", "127.0.0.1:0", "--upload-max-bytes", "0"},
      {"--data", data, "--http", "127.0.0.1:0", "--upload-max-bytes", "9999999999"},
      // Instances on one database must share one blob store: no per-instance default.
      {"--data", data, "--http", "127.0.0.1:0", "--store", "postgresql://u@127.0.0.1:1/db"},
  };
  for (const auto& args : usage_errors) {
    RunResult r = RunOutpostd(args, 30'000);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.exit_code, 2) << line << "\n" << r.err;
    EXPECT_NE(r.err.find("outpostd: "), std::string::npos) << line;
  }
  RunResult help = RunOutpostd({"serve", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--http", "--media-url", "--blobs", "--upload-max-bytes", "--upload-expiry"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace outpost::e2e
