// Copyright 2026 The Outpost Authors.
//
// The network path over ZeroMQ tcp on loopback, next to its raw ceiling:
//   RawEcho/tcp                 raw DEALER → ROUTER echo, 200-byte messages, up to 1000 in flight: the most
//                               messages per second this machine's ZeroMQ moves (no Outpost code at all)
//   (Flush/tcp/<backend>, the Flush benchmark with its server on tcp, lives in sync_bench.cc.)
//   CatchUp/tcp/<backend>       a device that was offline while N ops arrived (100k; 20k with --quick)
//                               reconnects and pulls and merges them durably; timed from SetOnline(true)
//                               until all N are merged
//   LiveLatency/tcp/<backend>   one op at a time: from Submit returning (durable, shown locally) on device A
//                               until device B's observer sees it (live push: Notify → Pull → merge);
//                               counters p50_ms, p99_ms
//   Fanout/tcp/lmdb             many devices connected to one server process, following streams of 10; one
//                               op lands in every stream; counters: notify-to-pull p50/p99 (Notify received →
//                               its Batch received at the device), the server process's peak RSS
// The Fanout devices are light protocol speakers (one DEALER each), so that thousands fit in one process,
// spread over Config().fanout_threads pump threads (--fanout-threads=T, default 2), each with its own ZeroMQ
// context and poll set, so that one client thread's poll loop is not what is measured; its server runs in a
// child process (`outpost_bench --serve-child DIR`) so that the RSS is the server's alone.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "codec.h"
#include "outpost/client.h"
#include "outpost/server.h"

extern char** environ;

namespace outpost::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---- RawEcho ----

void BM_RawEcho(benchmark::State& state) {
  constexpr int kInflight = 1000;
  const int n = Config().quick ? 50'000 : 200'000;
  void* ctx = zmq_ctx_new();
  void* router = zmq_socket(ctx, ZMQ_ROUTER);
  void* dealer = zmq_socket(ctx, ZMQ_DEALER);
  int hwm = 0;
  zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
  char endpoint[256];
  size_t size = sizeof endpoint;
  if (zmq_bind(router, "tcp://127.0.0.1:*") != 0 ||
      zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0 || zmq_connect(dealer, endpoint) != 0) {
    state.SkipWithError("zmq setup failed");
    return;
  }
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    zmq_pollitem_t item{router, 0, ZMQ_POLLIN, 0};
    while (!stop.load()) {
      if (zmq_poll(&item, 1, 50) <= 0) continue;
      for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, ZMQ_DONTWAIT) < 0) {
          zmq_msg_close(&id);
          zmq_msg_close(&body);
          break;
        }
        zmq_msg_recv(&body, router, 0);
        zmq_msg_send(&id, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
      }
    }
  });
  const std::string payload = Payload();
  int64_t total = 0;
  for (auto _ : state) {
    int sent = 0, received = 0;
    char buf[512];
    while (received < n) {
      while (sent < n && sent - received < kInflight) {
        zmq_send(dealer, payload.data(), payload.size(), 0);
        ++sent;
      }
      if (zmq_recv(dealer, buf, sizeof buf, 0) >= 0) ++received;
      while (zmq_recv(dealer, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) ++received;
    }
    total += n;
  }
  stop = true;
  echo.join();
  zmq_close(dealer);
  zmq_close(router);
  zmq_ctx_term(ctx);
  state.SetItemsProcessed(total);
}

// ---- a server on tcp in this process ----

struct TcpServer {
  TempDir dir;
  std::unique_ptr<Server> server;
  std::string endpoint;
};

Result<std::unique_ptr<TcpServer>> StartTcpServer(const std::string& backend) {
  auto s = std::make_unique<TcpServer>();
  OUTPOST_ASSIGN_OR_RETURN(s->server, StartBenchServer(s->dir, backend, "tcp://127.0.0.1:0"));
  s->endpoint = s->server->endpoint();
  return s;
}

// ---- CatchUp over tcp ----

void BM_CatchUpTcp(benchmark::State& state, const std::string& backend) {
  const int n = Config().quick ? 20'000 : 100'000;
  auto server = StartTcpServer(backend);
  if (!Check(state, server.status(), "start server")) return;
  const std::string stream = "catch-up";
  {
    auto writer = OpenBenchDevice("memory:", (*server)->endpoint, "writer");
    if (!Check(state, writer.status(), "open writer")) return;
    if (!Check(state, SubmitMany(**writer, stream, n).status(), "write")) return;
    if (!Check(state, (*writer)->RunUntilIdle(300'000), "flush the writer")) return;
  }
  TempDir dir;
  uint64_t merged = 0;
  int iteration = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string device = "reader-" + std::to_string(iteration++);
    auto client = OpenBenchDevice(dir.StoreUri(backend, device), (*server)->endpoint, device);
    if (!Check(state, client.status(), "open device")) break;
    (*client)->SetOnline(false);  // it was offline while the ops arrived
    if (!Check(state, (*client)->Follow(stream), "follow")) break;
    (*client)->Start();
    {
      ChangeWaiter added(**client, stream, Change::Kind::kAdded, static_cast<uint64_t>(n));
      state.ResumeTiming();
      (*client)->SetOnline(true);
      Status st = added.Wait();
      state.PauseTiming();
      if (!Check(state, st, "catch up")) break;
    }
    (*client)->Stop();
    merged += static_cast<uint64_t>(n);
    client->reset();
    dir.RemoveStore(device);
    state.ResumeTiming();
  }
  if (merged == 0) return;
  state.SetItemsProcessed(static_cast<int64_t>(merged));
  state.counters["ops"] = n;
}

// ---- LiveLatency ----

void BM_LiveLatency(benchmark::State& state, const std::string& backend) {
  auto server = StartTcpServer(backend);
  if (!Check(state, server.status(), "start server")) return;
  TempDir dir;
  auto a = OpenBenchDevice(dir.StoreUri(backend, "a"), (*server)->endpoint, "a");
  auto b = OpenBenchDevice(dir.StoreUri(backend, "b"), (*server)->endpoint, "b");
  if (!Check(state, a.status(), "open a") || !Check(state, b.status(), "open b")) return;
  MeasureLiveLatency(state, **a, **b);
}

// ---- Fanout ----

// A light device: one DEALER speaking the transport protocol (zmq_transport.h) and Hello/Notify/Pull.
struct LightDevice {
  void* socket = nullptr;
  std::string name;
  std::string stream;
  bool welcomed = false;
  bool closed = false;        // the server closed the connection ('C')
  uint64_t pulled_high = 0;   // the high seq of the last Notify it pulled for
  uint64_t pending_high = 0;  // a Pull is out for this high seq (0: none)
  Clock::time_point notify_at;
};

void SendData(void* socket, const std::string& frame) {
  zmq_send(socket, "D", 1, ZMQ_SNDMORE);
  zmq_send(socket, frame.data(), frame.size(), 0);
}

// Each light device is its own user: one user may hold only ServerOptions::connections_per_user_max
// connections, and thousands of people, not one person's thousand devices, is what fan-out serves.
std::string HelloFrame(const std::string& device, const std::string& stream) {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<wire::StreamCursor>> cursors = {
      wire::CreateStreamCursor(b, b.CreateString(stream), 0)};
  auto cv = b.CreateVector(cursors);
  auto hello = wire::CreateHello(b, b.CreateString(device), b.CreateString(device), b.CreateString(""),
                                 codec::kProtocolVersion, cv);
  return codec::FinishFrame(b, wire::Body::Hello, hello.Union());
}

// The devices of one pump thread: its own ZeroMQ context (and so its own I/O thread) and poll set. The
// thread runs from Start to Stop, so that a Notify is read as soon as it arrives, whatever phase the
// benchmark is in; it counts what its devices saw in atomics the benchmark's thread waits on.
class Pump {
 public:
  Pump(std::string endpoint, int first, int count, std::mutex* mu, std::condition_variable* cv)
      : endpoint_(std::move(endpoint)), first_(first), count_(count), mu_(mu), cv_(cv) {}
  ~Pump() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t welcomed() const { return welcomed_.load(); }
  int64_t batches() const { return batches_.load(); }
  bool failed() const { return failed_.load(); }
  // What went wrong, for an error message: closes and Error frames its devices got, Pulls unanswered.
  int64_t closes() const { return closes_.load(); }
  int64_t errors() const { return errors_.load(); }
  int64_t pulls() const { return pulls_.load(); }
  int64_t reconnects() const { return reconnects_.load(); }
  // After Stop: notify-to-batch latencies of every round, in microseconds.
  const std::vector<double>& latencies_us() const { return latencies_us_; }

 private:
  void Run() {
    void* ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, count_ + 64);
    ds_.resize(static_cast<size_t>(count_));
    std::vector<zmq_pollitem_t> items(ds_.size());
    // Devices connect kChunk at a time, the next ones once these were welcomed: thousands of handshakes at
    // once on a loaded machine would outlast the server's Hello deadline, which is not what is measured.
    constexpr int kChunk = 250;
    int opened = 0;
    auto connect = [&](size_t i) {
      LightDevice& d = ds_[i];
      if (d.socket != nullptr) zmq_close(d.socket);
      d.closed = false;
      d.socket = zmq_socket(ctx, ZMQ_DEALER);
      int linger = 0;
      if (d.socket == nullptr || zmq_setsockopt(d.socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
          zmq_connect(d.socket, endpoint_.c_str()) != 0) {
        failed_ = true;
        Signal();
        return false;
      }
      zmq_send(d.socket, "O", 1, 0);
      items[i] = {d.socket, 0, ZMQ_POLLIN, 0};
      return true;
    };
    auto open_chunk = [&] {
      for (const int end = std::min(count_, opened + kChunk); opened < end; ++opened) {
        LightDevice& d = ds_[static_cast<size_t>(opened)];
        d.name = "fanout-" + std::to_string(first_ + opened);
        d.stream = "group-" + std::to_string((first_ + opened) / 10);
        if (!connect(static_cast<size_t>(opened))) return;
      }
    };
    // As a device's transport does (TransportOptions::heartbeat_ms): a ping a second.
    constexpr int kPingMs = 1000;
    auto next_ping = Clock::now() + std::chrono::milliseconds(kPingMs);
    while (!stop_.load() && !failed_.load()) {
      if (opened < count_ && welcomed_.load() == opened) open_chunk();
      if (zmq_poll(items.data(), opened, 10) > 0) {
        bool changed = false;
        for (size_t i = 0; i < static_cast<size_t>(opened); ++i) {
          if (items[i].revents & ZMQ_POLLIN) changed |= Drain(ds_[i]);
          // Closed before its Welcome (its handshake outlasted a deadline on a loaded machine): it starts
          // over, as a device's transport would. Closed later: it stays closed, and the round fails.
          if (ds_[i].closed && !ds_[i].welcomed && connect(i)) ++reconnects_;
        }
        if (changed) Signal();
      }
      if (Clock::now() > next_ping) {  // keep the server's heartbeat satisfied
        for (int i = 0; i < opened; ++i) {
          if (!ds_[static_cast<size_t>(i)].closed)
            zmq_send(ds_[static_cast<size_t>(i)].socket, "P", 1, ZMQ_DONTWAIT);
        }
        next_ping = Clock::now() + std::chrono::milliseconds(kPingMs);
      }
    }
    for (auto& d : ds_) {
      if (d.socket != nullptr) zmq_close(d.socket);
    }
    zmq_ctx_term(ctx);
  }

  void Signal() {
    std::lock_guard<std::mutex> lock(*mu_);
    cv_->notify_all();
  }

  // Handles what arrived on one device; returns whether it was welcomed or got a batch.
  bool Drain(LightDevice& d) {
    bool changed = false;
    for (;;) {
      zmq_msg_t part;
      zmq_msg_init(&part);
      if (zmq_msg_recv(&part, d.socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return changed;
      }
      const char type = zmq_msg_size(&part) == 1 ? *static_cast<const char*>(zmq_msg_data(&part)) : '?';
      const bool more = zmq_msg_more(&part);
      zmq_msg_close(&part);
      if (type == 'A') SendData(d.socket, HelloFrame(d.name, d.stream));
      if (type == 'C' && !d.closed) {
        d.closed = true;
        ++closes_;
        return changed;
      }
      if (!more) continue;
      zmq_msg_t body;
      zmq_msg_init(&body);
      zmq_msg_recv(&body, d.socket, 0);
      auto frame = codec::DecodeFrame(
          std::string_view(static_cast<const char*>(zmq_msg_data(&body)), zmq_msg_size(&body)), 64 << 20);
      if (frame.ok()) {
        switch ((*frame)->body_type()) {
          case wire::Body::Welcome:
            if (!d.welcomed) {
              d.welcomed = true;
              ++welcomed_;
              changed = true;
            }
            break;
          case wire::Body::Notify: {
            const uint64_t high = (*frame)->body_as_Notify()->high_seq();
            if (d.pending_high == 0 && high > d.pulled_high) {
              d.pending_high = high;
              d.notify_at = Clock::now();
              SendData(d.socket, codec::EncodePull(d.stream, 0, 100));
              ++pulls_;
            }
            break;
          }
          case wire::Body::Batch:
            if (d.pending_high != 0) {
              latencies_us_.push_back(MsSince(d.notify_at) * 1000.0);
              d.pulled_high = d.pending_high;
              d.pending_high = 0;
              ++batches_;
              changed = true;
            }
            break;
          case wire::Body::Error:
            ++errors_;
            break;
          default:
            break;
        }
      }
      zmq_msg_close(&body);
    }
  }

  const std::string endpoint_;
  const int first_, count_;
  std::mutex* mu_;
  std::condition_variable* cv_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, failed_{false};
  std::atomic<int64_t> welcomed_{0}, batches_{0}, closes_{0}, errors_{0}, pulls_{0}, reconnects_{0};
  std::vector<LightDevice> ds_;  // the pump thread's alone while it runs
  std::vector<double> latencies_us_;
};

// The server child: `outpost_bench --serve-child DIR` serves lmdb:DIR/server on a free tcp port, writes the
// endpoint to DIR/endpoint and runs until stdin closes.
struct ChildServer {
  pid_t pid = -1;
  int stdin_fd = -1;
  std::string endpoint;

  ~ChildServer() {
    if (stdin_fd >= 0) close(stdin_fd);
    if (pid > 0) {
      int status;
      waitpid(pid, &status, 0);
    }
  }

  Status Start(const TempDir& dir) {
    int fds[2];
    if (pipe(fds) != 0) return Status::IOError("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::string d = dir.path().string();
    char* argv[] = {self.data(), const_cast<char*>("--serve-child"), d.data(), nullptr};
    int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    stdin_fd = fds[1];
    if (rc != 0) return Status::IOError("posix_spawn");
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      std::ifstream in(dir.path() / "endpoint");
      if (in && std::getline(in, endpoint) && !endpoint.empty()) return Status::OK();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Status::Timeout("the server child did not start");
  }

  // Peak resident set of the child (VmHWM), in bytes.
  uint64_t PeakRssBytes() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
  }
};

void RaiseFdLimit() {
  rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

void BM_Fanout(benchmark::State& state) {
  RaiseFdLimit();
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  // Each ZeroMQ socket holds two descriptors here (its mailbox and its TCP connection); each pump thread's
  // context a few more.
  const int threads = std::max(1, Config().fanout_threads);
  const int wanted = Config().quick ? 1000 : 10'000;
  const int devices =
      std::min<int>(wanted, static_cast<int>((r.rlim_cur - 512 - 16 * threads) / 2) / 10 * 10);
  TempDir dir;
  ChildServer child;
  if (!Check(state, child.Start(dir), "start the server child")) return;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Pump>> pumps;
  // Whole groups of 10 per thread, so that no stream's followers straddle two threads.
  const int groups = devices / 10;
  for (int t = 0, first = 0; t < threads; ++t) {
    const int count = (groups / threads + (t < groups % threads ? 1 : 0)) * 10;
    pumps.push_back(std::make_unique<Pump>(child.endpoint, first, count, &mu, &cv));
    first += count;
  }
  for (auto& p : pumps) p->Start();
  auto sum = [&](int64_t (Pump::*count)() const) {
    int64_t n = 0;
    for (const auto& p : pumps) n += ((*p).*count)();
    return n;
  };
  auto any_failed = [&] {
    for (const auto& p : pumps) {
      if (p->failed()) return true;
    }
    return false;
  };
  // Waits (bounded) until the pumps' `count` reaches `target`.
  auto wait_for = [&](int64_t (Pump::*count)() const, int64_t target, int seconds) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(seconds), [&] {
      return any_failed() || sum(count) >= target;
    }) && !any_failed();
  };
  auto fail = [&](const std::string& what) {
    std::string why = any_failed() ? std::string("connect failed (file descriptors?)") : what;
    why += " (welcomed " + std::to_string(sum(&Pump::welcomed)) + ", pulls " +
           std::to_string(sum(&Pump::pulls)) + ", batches " + std::to_string(sum(&Pump::batches)) +
           ", closes " + std::to_string(sum(&Pump::closes)) + ", reconnects " +
           std::to_string(sum(&Pump::reconnects)) + ", errors " + std::to_string(sum(&Pump::errors)) +
           " of " + std::to_string(devices) + " devices)";
    state.SkipWithError(why.c_str());
  };
  bool failed = false;
  const auto connect_start = Clock::now();
  if (!wait_for(&Pump::welcomed, devices, 120)) {
    fail("not every device was welcomed");
    failed = true;
  }
  const double connect_s = MsSince(connect_start) / 1000.0;
  int64_t rounds = 0;
  for (auto _ : state) {
    if (failed) break;
    // One op in every stream, from a real client.
    auto writer = OpenBenchDevice("memory:", child.endpoint, "writer");
    if (!Check(state, writer.status(), "open writer")) break;
    std::vector<NewOp> ops;
    for (int g = 0; g < groups; ++g) ops.push_back({"group-" + std::to_string(g), "text", Payload(), {}});
    if (!Check(state, (*writer)->SubmitBatch(ops).status(), "submit")) break;
    if (!Check(state, (*writer)->RunUntilIdle(60'000), "flush")) break;
    ++rounds;
    if (!wait_for(&Pump::batches, rounds * devices, 120)) {
      fail("not every device got its batch");
      break;
    }
  }
  for (auto& p : pumps) p->Stop();
  Latencies latencies;
  for (const auto& p : pumps) {
    for (double us : p->latencies_us()) latencies.Add(us);
  }
  state.counters["devices"] = devices;
  state.counters["pump_threads"] = threads;
  state.counters["connect_s"] = connect_s;  // until every device was welcomed
  state.counters["reconnects"] = static_cast<double>(sum(&Pump::reconnects));  // closed before their Welcome
  state.counters["notify_to_pull_p50_ms"] = latencies.Percentile(0.50) / 1000.0;
  state.counters["notify_to_pull_p99_ms"] = latencies.Percentile(0.99) / 1000.0;
  state.counters["server_rss_mb"] = static_cast<double>(child.PeakRssBytes()) / (1 << 20);
}

}  // namespace

int RunServeChild(const std::string& dir) {
  RaiseFdLimit();
  ServerOptions options;
  options.store = "lmdb:" + dir + "/server";
  auto listener = Listen("tcp://127.0.0.1:0");
  if (!listener.ok()) return 1;
  auto server = Server::Open(options, std::move(listener).value());
  if (!server.ok()) return 1;
  (*server)->Start();
  {
    std::ofstream out(dir + "/endpoint.tmp");
    out << (*server)->endpoint() << "\n";
  }
  std::filesystem::rename(dir + "/endpoint.tmp", dir + "/endpoint");
  char c;
  while (read(0, &c, 1) > 0) {
  }
  (*server)->Stop();
  return 0;
}

void RegisterNetworkBenchmarks() {
  benchmark::RegisterBenchmark("RawEcho/tcp", BM_RawEcho)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const std::string& backend : DurableBackends()) {
    benchmark::RegisterBenchmark(("CatchUp/tcp/" + backend).c_str(), BM_CatchUpTcp, backend)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("LiveLatency/tcp/lmdb", BM_LiveLatency, std::string("lmdb"))
      ->UseRealTime()
      ->Iterations(Config().quick ? 200 : 1000)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Fanout/tcp/lmdb", BM_Fanout)
      ->UseRealTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace outpost::bench
