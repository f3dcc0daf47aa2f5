// Copyright 2026 The Outpost Authors.
//
// Uploads over loopback, next to their ceiling in the same run (issue 15: the tus upload at >= 0.8x of a
// plain HTTP PUT of the same bytes):
//   Upload/put_curl    one libcurl PUT of the file to a plain cpp-httplib handler that streams the body to a
//                      file and fsyncs it: the ceiling (one request, one fsync)
//   Upload/tus         the device's tus transport (libcurl) against outpostd's MediaServer over a file blob
//                      store, as the Uploader drives it: POST, then PATCH chunks of 8 MiB (each with a SHA-1
//                      checksum the server checks, each fdatasynced before it is acknowledged), then the
//                      server's SHA-256 check of the whole blob
//   Upload/client      the whole device path: Submit with the file as an attachment (copy + SHA-256), the
//                      Uploader's chunks (a store commit each), and the op sent once the blob is complete
// Each moves a 64 MiB file (8 MiB with --quick); bytes_per_second is the file's size over the time.
#include <curl/curl.h>
#include <fcntl.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "bench_util.h"
#include "media/client/tus_transport.h"
#include "media/common/digest.h"
#include "outpost/blob_store.h"
#include "outpost/media_server.h"
#include "outpost/transport.h"

namespace outpost::bench {
namespace {

size_t FileBytes() { return Config().quick ? (8u << 20) : (64u << 20); }
constexpr size_t kChunk = 8u << 20;  // ClientOptions::upload_chunk_bytes' default

// A file of pseudo-random bytes (incompressible, as a video is).
std::string MakeFile(const TempDir& dir, size_t n) {
  std::string path = (dir.path() / "upload.bin").string();
  std::string bytes(n, '\0');
  std::mt19937_64 rng(n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&bytes[i], &v, 8);
  }
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::unique_ptr<MediaServer> StartMediaServer(std::shared_ptr<BlobStore> blobs) {
  MediaServerOptions mo;
  mo.blobs = std::move(blobs);
  mo.upload_bytes_max = 1ull << 32;
  mo.authenticate = [](std::string_view token) -> Result<MediaPrincipal> {
    return MediaPrincipal{std::string(token), "bench"};
  };
  auto server = MediaServer::Start(std::move(mo), "127.0.0.1", 0);
  return server.ok() ? std::move(server).value() : nullptr;
}

void BM_UploadPut(benchmark::State& state) {
  TempDir dir;
  const std::string path = MakeFile(dir, FileBytes());
  const std::string out = (dir.path() / "put.bin").string();
  httplib::Server http;
  http.Put("/put", [&](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& read) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && read([&](const char* data, size_t n) {
                return ::write(fd, data, n) == static_cast<ssize_t>(n);
              });
    ok = ok && ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    res.status = ok ? 204 : 500;
  });
  const int port = http.bind_to_any_port("127.0.0.1");
  std::thread serve([&] { http.listen_after_bind(); });  // bound: connects queue until it accepts
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/put";
  for (auto _ : state) {
    FILE* in = std::fopen(path.c_str(), "rb");
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READDATA, in);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(FileBytes()));
    struct curl_slist* headers = curl_slist_append(nullptr, "Expect:");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    std::fclose(in);
    if (rc != CURLE_OK || code != 204) {
      state.SkipWithError(
          ("PUT failed: " + std::string(curl_easy_strerror(rc)) + " " + std::to_string(code)).c_str());
      break;
    }
  }
  http.stop();
  serve.join();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * FileBytes()));
}

void BM_UploadTus(benchmark::State& state) {
  const size_t chunk = static_cast<size_t>(state.range(0)) << 20;
  TempDir dir;
  const std::string path = MakeFile(dir, FileBytes());
  const std::string sha = media::Sha256FileHex(path).value();
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto blobs = std::shared_ptr<BlobStore>(OpenBlobStore("file:" + (dir.path() / "blobs").string()).value());
  auto server = StartMediaServer(blobs);
  if (!server) {
    state.SkipWithError("media server did not start");
    return;
  }
  auto tus = OpenTusTransport();
  MediaEndpoint at{"http://127.0.0.1:" + std::to_string(server->port()) + "/files/", "bench"};
  for (auto _ : state) {
    // The chunks are read from the file as the Uploader reads them (pread of one chunk per request); here
    // from memory, which the page cache makes the same.
    auto url = tus->CreateUpload(at, {FileBytes(), "application/octet-stream", sha, "upload.bin"});
    if (!url.ok()) {
      state.SkipWithError(url.status().ToString().c_str());
      break;
    }
    uint64_t offset = 0;
    while (offset < FileBytes()) {
      size_t n = std::min(chunk, FileBytes() - offset);
      auto next = tus->AppendUpload(at, *url, offset, std::string_view(bytes).substr(offset, n));
      if (!next.ok()) {
        state.SkipWithError(next.status().ToString().c_str());
        return;
      }
      offset = *next;
    }
  }
  server->Stop();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * FileBytes()));
  state.counters["chunk_mb"] = static_cast<double>(chunk >> 20);
}

void BM_UploadClient(benchmark::State& state) {
  TempDir dir;
  const std::string path = MakeFile(dir, FileBytes());
  auto blobs = std::shared_ptr<BlobStore>(OpenBlobStore("file:" + (dir.path() / "blobs").string()).value());
  auto media_server = StartMediaServer(blobs);
  ServerOptions so;
  so.store = "memory:";
  so.blob_store = blobs;
  so.media_url = "http://127.0.0.1:" + std::to_string(media_server ? media_server->port() : 0) + "/files/";
  auto listener = Listen("inproc:media-bench");
  auto server = Server::Open(so, std::move(listener).value());
  if (!media_server || !server.ok()) {
    state.SkipWithError("servers did not start");
    return;
  }
  (*server)->Start();
  ClientOptions co;
  co.store = dir.StoreUri("lmdb", "device");
  co.server = "inproc:media-bench";
  co.user = "bench";
  co.device = "phone";
  co.token = "bench";
  co.media = OpenTusTransport();
  co.media_dir = (dir.path() / "media").string();
  auto client = Client::Open(co).value();
  SubmitOptions with_file;
  with_file.attachment.path = path;
  for (auto _ : state) {
    auto id = client->Submit("files", "file", "", with_file);
    if (!id.ok()) {
      state.SkipWithError(id.status().ToString().c_str());
      break;
    }
    for (int rounds = 0; rounds < 100'000; ++rounds) {
      (void)client->RunUntilIdle(60'000);
      auto op = client->Get(*id);
      if (!op.ok() || op->state != OpState::kPending) break;
    }
    if (client->Get(*id)->state != OpState::kSent) {
      state.SkipWithError("the op was not sent");
      break;
    }
  }
  client.reset();
  (*server)->Stop();
  media_server->Stop();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * FileBytes()));
}

}  // namespace

void RegisterMediaBenchmarks() {
  const int iterations = Config().quick ? 1 : 3;
  benchmark::RegisterBenchmark("Upload/put_curl", BM_UploadPut)
      ->Iterations(iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  // chunk_mb: 8 is what devices send by default; 4 and 16 show what the per-request cost (two fsyncs and a
  // rename on the server, a chunk checksum, a store commit on the device) adds or saves.
  benchmark::RegisterBenchmark("Upload/tus", BM_UploadTus)
      ->ArgName("chunk_mb")
      ->Arg(4)
      ->Arg(static_cast<int64_t>(kChunk >> 20))
      ->Arg(16)
      ->Iterations(iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Upload/client", BM_UploadClient)
      ->Iterations(iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace outpost::bench
