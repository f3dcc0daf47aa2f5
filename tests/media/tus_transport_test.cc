// Copyright 2026 The Outpost Authors.
//
// The tus transport (engine/media/client/tus_transport.h) against two servers that are not ours:
//   - the tus reference server, @tus/server with @tus/file-store, run by node (tus_reference_server.mjs; its
//     npm packages come from tools/npm-deps, which the ctest fixture media.npm_deps runs first). Node or the
//     packages missing is a failure, not a skip.
//   - cpp-httplib servers in this process, for what the reference server cannot show: Range answers (206,
//     416), hostile or odd answers, the headers the transport sends.
// Plus a port with no listener (Unavailable), a listener that never answers (Timeout) and one that sends
// canned bytes (Range answers that do not match what was asked).
#include "media/client/tus_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "media/common/digest.h"
#include "outpost/blob_store.h"
#include "testing/random.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

extern char** environ;

namespace outpost {
namespace {

using harness::SteadyNowMs;
using harness::TempDir;
using harness::WaitFor;

constexpr size_t kChunk = 256 * 1024;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string NpmDir() {
  const char* env = std::getenv("OUTPOST_NPM_DIR");
  return env != nullptr && env[0] != '\0' ? env : OUTPOST_NPM_DIR_DEFAULT;
}

UploadSpec SpecOf(const std::string& bytes, std::string filename = "photo.jpg") {
  UploadSpec spec;
  spec.size = bytes.size();
  spec.content_type = "image/jpeg";
  spec.sha256 = media::ToHex(media::Sha256(bytes));
  spec.filename = std::move(filename);
  return spec;
}

// The reference server as a child process; stopped (stdin closed, then reaped) when destroyed.
class ReferenceServer {
 public:
  explicit ReferenceServer(const std::string& store_dir) {
    const std::string npm = NpmDir();
    struct stat st;
    if (stat((npm + "/node_modules/@tus/server/package.json").c_str(), &st) != 0 ||
        stat((npm + "/node_modules/@tus/file-store/package.json").c_str(), &st) != 0) {
      ADD_FAILURE() << "the tus reference server's npm packages are not in " << npm
                    << "/node_modules: run tools/npm-deps " << npm
                    << " (ctest runs it as media.npm_deps), or point OUTPOST_NPM_DIR at such a directory";
      return;
    }
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> args{"node", OUTPOST_TUS_REFERENCE_SERVER, npm, store_dir};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      pid_ = -1;
      close(out[0]);
      ADD_FAILURE() << "cannot run node (" << std::strerror(rc)
                    << "): the tus transport tests need Node.js on PATH (Debian: apt-get install nodejs)";
      return;
    }
    // Its first line is "PORT <n>"; bounded, node may start slowly under a sanitizer-loaded machine.
    std::string line;
    const int64_t deadline = SteadyNowMs() + harness::kWaitMs;
    while (line.find('\n') == std::string::npos && SteadyNowMs() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    if (line.rfind("PORT ", 0) != 0 || (port_ = std::atoi(line.c_str() + 5)) <= 0) {
      ADD_FAILURE() << "the tus reference server did not report its port (its output: \"" << line
                    << "\"; its errors are above)";
      port_ = 0;
    }
  }
  ~ReferenceServer() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ <= 0) return;
    bool reaped = WaitFor([&] { return waitpid(pid_, nullptr, WNOHANG) != 0; }, 10'000);
    if (!reaped) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      ADD_FAILURE() << "the tus reference server did not exit when its stdin closed";
    }
  }
  int port() const { return port_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

class TusReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(server_.port(), 0);
    at_.url = server_.Url("/files/");
    at_.token = "device-token";
    transport_ = OpenTusTransport();
  }
  // Uploads `bytes` in kChunk pieces from `from`; the final offset.
  uint64_t AppendAll(MediaTransport* t, const std::string& url, const std::string& bytes, uint64_t from) {
    uint64_t offset = from;
    while (offset < bytes.size()) {
      const size_t n = std::min<size_t>(kChunk, bytes.size() - offset);
      Result<uint64_t> next = t->AppendUpload(at_, url, offset, std::string_view(bytes).substr(offset, n));
      EXPECT_TRUE(next.ok()) << next.status().ToString();
      if (!next.ok()) break;
      EXPECT_EQ(*next, offset + n);
      offset = *next;
    }
    return offset;
  }

  TempDir dir_{"tus-transport"};
  std::string store_ = dir_.Subdir("store");
  ReferenceServer server_{store_};
  MediaEndpoint at_;
  std::unique_ptr<MediaTransport> transport_;
  harness::Rng rng_{harness::TestSeed(15)};
};

TEST_F(TusReferenceTest, ChunkedUploadStoresIdenticalBytes) {
  const std::string bytes = rng_.Bytes(4 * kChunk + 1234);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->rfind(server_.Url("/files/"), 0), 0u) << *url;
  const std::string id = BlobIdOfUploadUrl(*url);
  ASSERT_FALSE(id.empty()) << *url;
  Result<uint64_t> offset = transport_->UploadOffset(at_, *url);
  ASSERT_TRUE(offset.ok()) << offset.status().ToString();
  EXPECT_EQ(*offset, 0u);

  EXPECT_EQ(AppendAll(transport_.get(), *url, bytes, 0), bytes.size());
  EXPECT_EQ(ReadFile(store_ + "/" + id), bytes);
  // The metadata reached the server (the file store keeps it decoded, as JSON).
  const std::string info = ReadFile(store_ + "/" + id + ".json");
  EXPECT_NE(info.find(SpecOf(bytes).sha256), std::string::npos) << info;
  EXPECT_NE(info.find("photo.jpg"), std::string::npos) << info;
  EXPECT_NE(info.find("image/jpeg"), std::string::npos) << info;
}

TEST_F(TusReferenceTest, RelativeLocationIsResolvedAgainstTheEndpoint) {
  at_.url = server_.Url("/rel/");
  const std::string bytes = rng_.Bytes(1000);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes, ""));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->rfind(server_.Url("/rel/"), 0), 0u) << *url;
  EXPECT_FALSE(BlobIdOfUploadUrl(*url).empty()) << *url;
  EXPECT_EQ(AppendAll(transport_.get(), *url, bytes, 0), bytes.size());
  EXPECT_EQ(ReadFile(store_ + "/" + BlobIdOfUploadUrl(*url)), bytes);
}

TEST_F(TusReferenceTest, UploadResumesWithAnotherTransportFromTheServersOffset) {
  const std::string bytes = rng_.Bytes(3 * kChunk + 17);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(transport_->AppendUpload(at_, *url, 0, std::string_view(bytes).substr(0, kChunk)).ok());
  ASSERT_TRUE(
      transport_->AppendUpload(at_, *url, kChunk, std::string_view(bytes).substr(kChunk, kChunk)).ok());
  transport_.reset();  // the device restarts

  std::unique_ptr<MediaTransport> again = OpenTusTransport();
  Result<uint64_t> offset = again->UploadOffset(at_, *url);
  ASSERT_TRUE(offset.ok()) << offset.status().ToString();
  ASSERT_EQ(*offset, 2 * kChunk);
  EXPECT_EQ(AppendAll(again.get(), *url, bytes, *offset), bytes.size());
  EXPECT_EQ(ReadFile(store_ + "/" + BlobIdOfUploadUrl(*url)), bytes);
}

TEST_F(TusReferenceTest, AppendAtAnotherOffsetIsConflict) {
  const std::string bytes = rng_.Bytes(2 * kChunk);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(transport_->AppendUpload(at_, *url, 0, std::string_view(bytes).substr(0, kChunk)).ok());
  Result<uint64_t> again = transport_->AppendUpload(at_, *url, 0, std::string_view(bytes).substr(0, kChunk));
  EXPECT_EQ(again.status().code(), Status::Code::kConflict) << again.status().ToString();
  Result<uint64_t> ahead =
      transport_->AppendUpload(at_, *url, kChunk + 5, std::string_view(bytes).substr(5, 10));
  EXPECT_EQ(ahead.status().code(), Status::Code::kConflict) << ahead.status().ToString();
  // The server's offset is what the caller resumes from.
  Result<uint64_t> offset = transport_->UploadOffset(at_, *url);
  ASSERT_TRUE(offset.ok()) << offset.status().ToString();
  EXPECT_EQ(*offset, kChunk);
}

TEST_F(TusReferenceTest, TerminatedUploadIsNotFound) {
  const std::string bytes = rng_.Bytes(kChunk);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(transport_->AppendUpload(at_, *url, 0, std::string_view(bytes).substr(0, 100)).ok());
  Status terminated = transport_->TerminateUpload(at_, *url);
  ASSERT_TRUE(terminated.ok()) << terminated.ToString();
  EXPECT_EQ(transport_->UploadOffset(at_, *url).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(transport_->TerminateUpload(at_, *url).code(), Status::Code::kNotFound);
  EXPECT_EQ(transport_->AppendUpload(at_, *url, 100, "x").status().code(), Status::Code::kNotFound);
}

TEST_F(TusReferenceTest, UnknownUploadIsNotFound) {
  const std::string url = server_.Url("/files/0123456789abcdef0123456789abcdef");
  Result<uint64_t> offset = transport_->UploadOffset(at_, url);
  EXPECT_EQ(offset.status().code(), Status::Code::kNotFound) << offset.status().ToString();
  Result<uint64_t> appended = transport_->AppendUpload(at_, url, 0, "bytes");
  EXPECT_EQ(appended.status().code(), Status::Code::kNotFound) << appended.status().ToString();
  EXPECT_EQ(transport_->TerminateUpload(at_, url).code(), Status::Code::kNotFound);
  Result<uint64_t> got = transport_->Download(at_, "0123456789abcdef0123456789abcdef", 0,
                                              [](std::string_view) { return Status::OK(); });
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound) << got.status().ToString();
}

// @tus/server serves a finished upload at its URL, whole, ignoring Range: a resumed download skips the bytes
// it already has.
TEST_F(TusReferenceTest, DownloadFromAServerThatIgnoresRange) {
  const std::string bytes = rng_.Bytes(kChunk + 999);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_EQ(AppendAll(transport_.get(), *url, bytes, 0), bytes.size());
  const std::string id = BlobIdOfUploadUrl(*url);

  for (uint64_t from : {uint64_t{0}, uint64_t{1}, uint64_t{70'000}, uint64_t{bytes.size() - 1}}) {
    std::string got;
    Result<uint64_t> total = transport_->Download(at_, id, from, [&](std::string_view b) {
      got.append(b);
      return Status::OK();
    });
    ASSERT_TRUE(total.ok()) << from << ": " << total.status().ToString();
    EXPECT_EQ(*total, bytes.size());
    EXPECT_TRUE(got == bytes.substr(from)) << "from " << from << ": " << got.size() << " bytes";
  }
  for (uint64_t past : {uint64_t{bytes.size()}, uint64_t{bytes.size() + 10}}) {
    bool called = false;
    Result<uint64_t> total = transport_->Download(at_, id, past, [&](std::string_view) {
      called = true;
      return Status::OK();
    });
    EXPECT_EQ(total.status().code(), Status::Code::kInvalidArgument)
        << past << ": " << total.status().ToString();
    EXPECT_FALSE(called);
  }
}

TEST(TusTransportTest, ClosedPortIsUnavailable) {
  // A port that was just free: bound, read back, closed.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  MediaEndpoint at{"http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/files/", "t"};
  std::unique_ptr<MediaTransport> t = OpenTusTransport();
  Result<std::string> url = t->CreateUpload(at, SpecOf("abc"));
  EXPECT_EQ(url.status().code(), Status::Code::kUnavailable) << url.status().ToString();
  EXPECT_TRUE(url.status().IsTransient());
  EXPECT_EQ(t->UploadOffset(at, at.url + "0123456789abcdef0123456789abcdef").status().code(),
            Status::Code::kUnavailable);
}

TEST(TusTransportTest, StalledServerTimesOutWithinTheLowSpeedBound) {
  // A listener that never answers: the kernel completes the connection (listen backlog), nobody reads.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  MediaEndpoint at{"http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/files/", "t"};
  TusTransportOptions options;
  options.low_speed_timeout_ms = 1000;
  std::unique_ptr<MediaTransport> t = OpenTusTransport(options);
  const int64_t start = SteadyNowMs();
  Result<std::string> url = t->CreateUpload(at, SpecOf("abc"));
  const int64_t took = SteadyNowMs() - start;
  EXPECT_EQ(url.status().code(), Status::Code::kTimeout) << url.status().ToString();
  // libcurl checks the low-speed limit once a second: 1 s, give or take its tick; far below the default 30 s.
  EXPECT_GE(took, 900);
  EXPECT_LT(took, 10'000);
  close(fd);
}

TEST(TusTransportTest, BadArgumentsAreRefusedBeforeAnyRequest) {
  std::unique_ptr<MediaTransport> t = OpenTusTransport();
  MediaEndpoint at{"http://127.0.0.1:1/files/", "t"};
  UploadSpec bad = SpecOf("abc");
  bad.sha256 = "ABC";
  EXPECT_EQ(t->CreateUpload(at, bad).status().code(), Status::Code::kInvalidArgument);
  MediaEndpoint ftp{"ftp://127.0.0.1/files/", "t"};
  EXPECT_EQ(t->CreateUpload(ftp, SpecOf("abc")).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(t->UploadOffset(at, "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(t->UploadOffset(at, "not a url\r\nX: y").status().code(), Status::Code::kInvalidArgument);
  MediaEndpoint injected{"http://127.0.0.1:1/files/", "t\r\nX-Evil: 1"};
  EXPECT_EQ(t->UploadOffset(injected, "http://127.0.0.1:1/files/x").status().code(),
            Status::Code::kInvalidArgument);
  auto sink = [](std::string_view) { return Status::OK(); };
  EXPECT_EQ(t->Download(at, "../etc/passwd", 0, sink).status().code(), Status::Code::kInvalidArgument);
}

// A listener that answers each connection with one canned HTTP answer, byte for byte (what httplib would not
// send: a wrong Content-Range, a 206 without one), then closes it.
class CannedServer {
 public:
  explicit CannedServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "canned server: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd c{conn, POLLIN, 0};
        if (poll(&c, 1, 5000) <= 0) break;
        const ssize_t n = read(conn, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      (void)!write(conn, answer_.data(), answer_.size());
      close(conn);
    }
  }

  const std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(TusTransportTest, DownloadRefusesRangeAnswersThatDoNotMatch) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  auto sink = [](std::string_view) { return Status::OK(); };
  std::unique_ptr<MediaTransport> t = OpenTusTransport();
  const std::vector<std::pair<std::string, Status::Code>> cases = {
      // From another byte than asked.
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n0123456789",
       Status::Code::kCorruption},
      // No Content-Range.
      {"HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n\r\n56789", Status::Code::kCorruption},
      // Short of the total it announced.
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/20\r\nContent-Length: 5\r\n\r\n56789",
       Status::Code::kCorruption},
      // Cut off before Content-Length: the connection dropped (transient).
      {"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\n567",
       Status::Code::kUnavailable},
      {"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n", Status::Code::kInvalidArgument},
  };
  for (const auto& [answer, code] : cases) {
    CannedServer server(answer);
    MediaEndpoint at{server.Url("/files/"), "t"};
    Result<uint64_t> r = t->Download(at, id, 5, sink);
    EXPECT_EQ(r.status().code(), code) << answer << "\n-> " << r.status().ToString();
  }
  // The matching answer, for contrast.
  CannedServer good(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\n56789");
  std::string got;
  Result<uint64_t> r = t->Download(MediaEndpoint{good.Url("/files"), "t"}, id, 5, [&](std::string_view b) {
    got.append(b);
    return Status::OK();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 10u);
  EXPECT_EQ(got, "56789");
}

// An httplib server in this process, answering as each test says.
class HttplibTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    at_.url = "http://127.0.0.1:" + std::to_string(port_) + "/files/";
    at_.token = "secret-token";
    transport_ = OpenTusTransport();
  }
  void Start() {
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    ASSERT_TRUE(WaitFor([this] { return server_.is_running(); }));
  }
  void TearDown() override {
    // Closes the transport's kept-alive connections first, so that the server's workers need not wait out
    // their keep-alive timeout to stop.
    transport_.reset();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  MediaEndpoint at_;
  std::unique_ptr<MediaTransport> transport_;
  const std::string kId = "0123456789abcdef0123456789abcdef";
};

// What every request carries, the checksum of each chunk, and one kept-alive connection for a whole upload.
TEST_F(HttplibTest, RequestsCarryTusHeadersChecksumsAndReuseTheConnection) {
  std::mutex mu;
  std::vector<std::string> problems;
  std::set<int> client_ports;
  uint64_t stored = 0;
  auto check = [&](const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu);
    if (req.get_header_value("Tus-Resumable") != "1.0.0")
      problems.push_back(req.method + " without Tus-Resumable");
    if (req.get_header_value("Authorization") != "Bearer secret-token") {
      problems.push_back(req.method + " with Authorization \"" + req.get_header_value("Authorization") +
                         "\"");
    }
    client_ports.insert(req.remote_port);
  };
  server_.Post("/files/", [&](const httplib::Request& req, httplib::Response& res) {
    check(req);
    res.status = 201;
    res.set_header("Location", "/files/" + kId);  // relative: resolved against the endpoint
  });
  server_.Patch("/files/" + kId, [&](const httplib::Request& req, httplib::Response& res) {
    check(req);
    std::lock_guard<std::mutex> lock(mu);
    if (req.get_header_value("Content-Type") != "application/offset+octet-stream")
      problems.push_back("content type");
    if (req.get_header_value("Upload-Offset") != std::to_string(stored)) problems.push_back("offset");
    if (req.get_header_value("Upload-Checksum") != "sha1 " + media::Base64Encode(media::Sha1(req.body))) {
      res.status = 460;
      return;
    }
    stored += req.body.size();
    res.status = 204;
    res.set_header("Upload-Offset", std::to_string(stored));
  });
  Start();
  const std::string bytes = harness::Rng(7).Bytes(3 * kChunk);
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf(bytes));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(*url, Url("/files/" + kId));
  for (uint64_t off = 0; off < bytes.size(); off += kChunk) {
    Result<uint64_t> next =
        transport_->AppendUpload(at_, *url, off, std::string_view(bytes).substr(off, kChunk));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(*next, off + kChunk);
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(client_ports.size(), 1u) << "the requests did not share one connection";
}

TEST_F(HttplibTest, StatusCodesMapToTheTaxonomy) {
  std::atomic<int> answer{0};
  server_.Patch("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.status = answer.load();
    res.set_content("the server says\nno", "text/plain");
  });
  Start();
  const std::string url = Url("/files/" + kId);
  const std::vector<std::pair<int, Status::Code>> cases = {
      {500, Status::Code::kBusy},
      {503, Status::Code::kBusy},
      {423, Status::Code::kBusy},
      {429, Status::Code::kBusy},
      {401, Status::Code::kPermissionDenied},
      {403, Status::Code::kPermissionDenied},
      {404, Status::Code::kNotFound},
      {410, Status::Code::kNotFound},
      {409, Status::Code::kConflict},
      {413, Status::Code::kFull},
      {460, Status::Code::kCorruption},
      {400, Status::Code::kInvalidArgument},
      {412, Status::Code::kInvalidArgument},
      {415, Status::Code::kInvalidArgument},
      {418, Status::Code::kInvalidArgument},
      {302, Status::Code::kCorruption},
      {200, Status::Code::kCorruption},  // no Upload-Offset
  };
  for (const auto& [http, code] : cases) {
    answer = http;
    Result<uint64_t> r = transport_->AppendUpload(at_, url, 0, "chunk");
    EXPECT_EQ(r.status().code(), code) << http << ": " << r.status().ToString();
  }
  answer = 400;
  Result<uint64_t> r = transport_->AppendUpload(at_, url, 0, "chunk");
  EXPECT_NE(r.status().message().find("the server says no"), std::string::npos) << r.status().message();
  answer = 401;
  r = transport_->AppendUpload(at_, url, 0, "chunk");
  EXPECT_NE(r.status().message().find("authentication failed"), std::string::npos) << r.status().message();
}

TEST_F(HttplibTest, MalformedAndOversizedAnswersAreCorruption) {
  server_.Post("/files/", [&](const httplib::Request&, httplib::Response& res) { res.status = 201; });
  server_.Get("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_header("Upload-Offset", "12x");
  });
  server_.Patch("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Upload-Offset", "999999");  // past what was sent
  });
  server_.Delete("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.status = 400;
    res.set_content(std::string(100 * 1024, 'x'), "text/plain");
  });
  Start();
  const std::string url = Url("/files/" + kId);
  EXPECT_EQ(transport_->CreateUpload(at_, SpecOf("abc")).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(transport_->UploadOffset(at_, url).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(transport_->AppendUpload(at_, url, 0, "abc").status().code(), Status::Code::kCorruption);
  Status big = transport_->TerminateUpload(at_, url);
  EXPECT_EQ(big.code(), Status::Code::kCorruption) << big.ToString();
  EXPECT_NE(big.message().find("64 KiB"), std::string::npos) << big.message();
}

// The token goes only to the endpoint's server: a Location on another host (a rewriting proxy, a forged
// answer) is refused, and an upload URL of another server is not sent to (the uploader starts again).
TEST_F(HttplibTest, UploadUrlsOnAnotherServerAreNotUsed) {
  int requests = 0;
  server_.Post("/files/", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    res.status = 201;
    res.set_header("Location", "http://attacker.invalid:8080/files/" + kId);
  });
  Start();
  Result<std::string> url = transport_->CreateUpload(at_, SpecOf("abc"));
  EXPECT_EQ(url.status().code(), Status::Code::kCorruption) << url.status().ToString();
  EXPECT_EQ(requests, 1);
  const std::string elsewhere = "http://127.0.0.2:" + std::to_string(port_) + "/files/" + kId;
  EXPECT_TRUE(transport_->UploadOffset(at_, elsewhere).status().IsNotFound());
  EXPECT_TRUE(transport_->AppendUpload(at_, elsewhere, 0, "abc").status().IsNotFound());
  EXPECT_TRUE(transport_->TerminateUpload(at_, elsewhere).IsNotFound());
}

TEST_F(HttplibTest, OversizedHeadersAreCorruption) {
  server_.Get("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    for (int i = 0; i < 80; ++i) res.set_header("X-Filler-" + std::to_string(i), std::string(1000, 'h'));
    res.set_header("Upload-Offset", "0");
  });
  Start();
  Result<uint64_t> r = transport_->UploadOffset(at_, Url("/files/" + kId));
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().ToString();
}

// httplib honours Range: 206 from the offset, 416 past the end.
TEST_F(HttplibTest, DownloadResumesFromAnOffset) {
  const std::string blob = harness::Rng(9).Bytes(300'000);
  std::mutex mu;
  std::vector<std::string> ranges;
  server_.Get("/files/" + kId, [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ranges.push_back(req.get_header_value("Range"));
    }
    res.set_content(blob, "application/octet-stream");
  });
  Start();
  for (uint64_t from : {uint64_t{0}, uint64_t{1}, uint64_t{123'456}, uint64_t{blob.size() - 1}}) {
    std::string got;
    Result<uint64_t> total = transport_->Download(at_, kId, from, [&](std::string_view b) {
      got.append(b);
      return Status::OK();
    });
    ASSERT_TRUE(total.ok()) << from << ": " << total.status().ToString();
    EXPECT_EQ(*total, blob.size());
    EXPECT_TRUE(got == blob.substr(from)) << "from " << from << ": " << got.size() << " bytes";
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(ranges.size(), 4u);
    EXPECT_EQ(ranges[0], "");  // from 0: no Range
    EXPECT_EQ(ranges[2], "bytes=123456-");
  }
  Result<uint64_t> past =
      transport_->Download(at_, kId, blob.size(), [](std::string_view) { return Status::OK(); });
  EXPECT_EQ(past.status().code(), Status::Code::kInvalidArgument) << past.status().ToString();
}

TEST_F(HttplibTest, SinkErrorStopsTheDownloadAndIsReturned) {
  const std::string blob = harness::Rng(10).Bytes(4 * 1024 * 1024);
  server_.Get("/files/" + kId, [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(blob, "application/octet-stream");
  });
  Start();
  uint64_t seen = 0;
  int calls = 0;
  Result<uint64_t> r = transport_->Download(at_, kId, 10, [&](std::string_view b) {
    ++calls;
    seen += b.size();
    return Status::Full("disk full");
  });
  EXPECT_EQ(r.status().code(), Status::Code::kFull) << r.status().ToString();
  EXPECT_EQ(r.status().message(), "disk full");
  EXPECT_EQ(calls, 1);
  EXPECT_LT(seen, blob.size());
  // The handle went back to the pool in a usable state.
  std::string got;
  Result<uint64_t> again = transport_->Download(at_, kId, 0, [&](std::string_view b) {
    got.append(b);
    return Status::OK();
  });
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(got == blob);
}

TEST_F(HttplibTest, ConcurrentCallsFromManyThreads) {
  std::atomic<uint64_t> heads{0};
  server_.Get(R"(/files/(\w+))", [&](const httplib::Request&, httplib::Response& res) {
    ++heads;
    res.status = 200;
    res.set_header("Upload-Offset", "42");
  });
  Start();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        Result<uint64_t> r = transport_->UploadOffset(at_, Url("/files/" + kId));
        if (!r.ok() || *r != 42) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(heads.load(), 80u);
}

}  // namespace
}  // namespace outpost
