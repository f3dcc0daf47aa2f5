// Copyright 2026 The Outpost Authors.
//
// kill -9 under load, with real processes: a real outpostd and four device processes (two users, two
// devices each) submitting to one stream over tcp, while the test kills one of them with SIGKILL at a
// random moment, restarts it, and does it again (kCrashKills times; OUTPOST_CRASH_KILLS overrides,
// OUTPOST_TEST_SEED picks the random choices, printed so that a failing run can be repeated).
//
// A device process is this binary again: the test re-runs itself with OUTPOST_CRASH_DEVICE set, and a
// gtest Environment turns the process into a device before any test runs (DeviceMain). The device opens
// its LMDB store, counts the ops it made before (payloads "DEVICE#1", "DEVICE#2", ...: a device learns
// from its store where it left off), submits the rest one by one and syncs. It reports on stdout, each
// line marked with '>':
//   R k   reopened: its store holds its ops 1..k (each once, in order)
//   S i   Submit returned for op i (durable: a later R must cover it)
//   C n   its cursor reached n
//   D     all ops submitted and acknowledged
//   E why something it checks is wrong
// Checked at the end, from the server (a fresh device pulls the whole stream) and from every device's store
// (opened after the processes are gone): every op of every device once, none lost, none duplicated, each
// device's ops in its order, all stores the same.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_fixture.h"
#include "testing/random.h"

extern char** environ;

namespace outpost::e2e {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int kCrashKills = 60;  // a sanitized process starts ~10x slower
#else
constexpr int kCrashKills = 200;
#endif
constexpr int kDevices = 4;
constexpr int kOpsPerDevice = 3000;
constexpr char kStream[] = "crash";
constexpr char kDeviceEnv[] = "OUTPOST_CRASH_DEVICE";

// ---- the device process ----

struct DeviceSpec {
  std::string dir, user, device, token, server;
  int ops = 0;
};

std::string EncodeSpec(const DeviceSpec& s) {
  return s.dir + "\n" + s.user + "\n" + s.device + "\n" + s.token + "\n" + s.server + "\n" +
         std::to_string(s.ops);
}

bool DecodeSpec(const std::string& text, DeviceSpec* s) {
  std::istringstream in(text);
  std::string ops;
  if (!std::getline(in, s->dir) || !std::getline(in, s->user) || !std::getline(in, s->device) ||
      !std::getline(in, s->token) || !std::getline(in, s->server) || !std::getline(in, ops))
    return false;
  s->ops = std::atoi(ops.c_str());
  return s->ops > 0;
}

// One report line, marked with '>' (gtest prints its own lines on stdout before the device starts).
void Report(const std::string& line) {
  std::string l = ">" + line + "\n";
  (void)!write(1, l.data(), l.size());  // a pipe: one write per line keeps lines whole
}

// The number of op `payload` ("DEVICE#i") of `device`, or 0.
int OpNumber(const std::string& device, const std::string& payload) {
  const std::string prefix = device + "#";
  if (payload.rfind(prefix, 0) != 0) return 0;
  return std::atoi(payload.c_str() + prefix.size());
}

std::unique_ptr<Client> OpenStore(const DeviceSpec& s, bool online) {
  ClientOptions o;
  o.store =
      "lmdb:" + s.dir + "/store?sync=0";  // a process crash keeps every commit; only power loss would not
  if (online) o.server = s.server;
  o.user = s.user;
  o.device = s.device;
  o.token = s.token;
  o.backoff_base_ms = 20;
  o.backoff_cap_ms = 200;  // the server restarts often: find it again soon
  o.ack_timeout_ms = 2'000;
  auto c = Client::Open(o);
  return c.ok() ? std::move(c).value() : nullptr;
}

int DeviceMain(const std::string& spec_text) {
  DeviceSpec s;
  if (!DecodeSpec(spec_text, &s)) {
    Report("E bad device spec");
    return 2;
  }
  auto client = OpenStore(s, true);
  if (!client) {
    Report("E cannot open the store");
    return 2;
  }
  // Where it left off: its own ops in the store must be 1..k, each once, in submit order.
  auto view = client->Latest(kStream, 1'000'000);
  if (!view.ok()) {
    Report("E latest: " + view.status().ToString());
    return 2;
  }
  int k = 0;
  for (const OpInfo& op : *view) {
    if (!op.own) continue;
    const int n = OpNumber(s.device, op.payload);
    if (n != k + 1) {
      Report("E own op " + std::to_string(n) + " follows op " + std::to_string(k) + " in the store");
      return 2;
    }
    k = n;
  }
  Report("R " + std::to_string(k));
  if (!client->Follow(kStream).ok()) {
    Report("E follow failed");
    return 2;
  }
  client->Start();
  std::mt19937 pace(static_cast<unsigned>(getpid()));
  uint64_t cursor = 0;
  bool done = false;
  for (int i = k + 1;; ++i) {
    if (i <= s.ops) {
      auto id = client->Submit(kStream, "text", s.device + "#" + std::to_string(i));
      if (!id.ok()) {
        Report("E submit: " + id.status().ToString());
        return 2;
      }
      Report("S " + std::to_string(i));
    }
    const uint64_t c = CursorOf(*client, kStream);
    if (c != cursor) {
      cursor = c;
      Report("C " + std::to_string(c));
    }
    if (!done && i >= s.ops && client->Stats().outbox_depth == 0) {
      done = true;
      Report("D");
    }
    // The user's pace: a few ops per 10 ms while submitting, then the device idles until it is killed.
    std::this_thread::sleep_for(std::chrono::milliseconds(i <= s.ops ? pace() % 3 : 20));
  }
}

// Turns this process into a device before any test runs, when the test spawned it as one.
class DeviceModeEnvironment : public testing::Environment {
 public:
  void SetUp() override {
    if (const char* spec = std::getenv(kDeviceEnv)) {
      std::fflush(stdout);
      _exit(DeviceMain(spec));
    }
  }
};
testing::Environment* const kDeviceMode = testing::AddGlobalTestEnvironment(new DeviceModeEnvironment);

// ---- the test side ----

// One device process: spawned from this binary, its stdout read line by line.
class DeviceProcess {
 public:
  explicit DeviceProcess(DeviceSpec spec) : spec_(std::move(spec)) {}
  ~DeviceProcess() { Kill(); }

  bool Spawn(std::string* error) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      *error = std::string("pipe2: ") + std::strerror(errno);
      return false;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const std::string log = spec_.dir + "/device.log";
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, kDeviceEnv, std::strlen(kDeviceEnv)) != 0) env_store.emplace_back(*e);
    }
    env_store.push_back(std::string(kDeviceEnv) + "=" + EncodeSpec(spec_));
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe";
    std::string filter = "--gtest_filter=CrashE2E.*";
    char* argv[] = {self.data(), filter.data(), nullptr};
    const int rc = posix_spawn(&pid_, self.c_str(), &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      pid_ = -1;
      *error = std::string("posix_spawn: ") + std::strerror(rc);
      return false;
    }
    fd_ = out[0];
    fcntl(fd_, F_SETFL, O_NONBLOCK);
    ready_ = false;
    events_ = 0;
    partial_.clear();
    return true;
  }

  // SIGKILL, then reaps it. Returns false when it had already exited on its own.
  bool Kill() {
    if (pid_ <= 0) return true;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    Drain();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

  // Reads what the process wrote; an error line or a bad restart goes to `*error`.
  void Drain() {
    if (fd_ < 0) return;
    char buf[4096];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      partial_.append(buf, static_cast<size_t>(n));
    }
    size_t nl;
    while ((nl = partial_.find('\n')) != std::string::npos) {
      Line(partial_.substr(0, nl));
      partial_.erase(0, nl + 1);
    }
  }

  // Exited by itself (it never should: only the test kills devices).
  bool Exited() {
    if (pid_ <= 0) return false;
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == pid_ ? (pid_ = -1, true) : false;
  }

  int fd() const { return fd_; }
  const DeviceSpec& spec() const { return spec_; }
  const std::string& error() const { return error_; }
  uint64_t events() const { return events_; }
  int submitted() const { return submitted_; }
  uint64_t cursor() const { return cursor_; }
  bool done() const { return done_; }
  bool ready() const { return ready_; }
  std::string Log() const {
    std::ifstream in(spec_.dir + "/device.log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

 private:
  void Line(std::string line) {
    if (line.empty() || line[0] != '>') return;  // gtest's own output
    line.erase(0, 1);
    ++events_;
    if (line.empty()) return;
    const long v = line.size() > 2 ? std::atol(line.c_str() + 2) : 0;
    switch (line[0]) {
      case 'R':
        ready_ = true;
        // Durable before visible: every op whose Submit returned is still there after kill -9.
        if (v < submitted_ && error_.empty())
          error_ = spec_.device + " reopened with ops 1.." + std::to_string(v) +
                   " but Submit had returned op " + std::to_string(submitted_);
        submitted_ = static_cast<int>(v);
        break;
      case 'S':
        if (v != submitted_ + 1 && error_.empty())
          error_ =
              spec_.device + " submitted op " + std::to_string(v) + " after op " + std::to_string(submitted_);
        submitted_ = static_cast<int>(v);
        break;
      case 'C':
        cursor_ = static_cast<uint64_t>(v);
        break;
      case 'D':
        done_ = true;
        break;
      default:
        if (error_.empty()) error_ = spec_.device + ": " + line;
    }
  }

  DeviceSpec spec_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string partial_;
  std::string error_;
  uint64_t events_ = 0;
  int submitted_ = 0;
  uint64_t cursor_ = 0;
  bool done_ = false;
  bool ready_ = false;
};

class CrashE2E : public E2ETest {
 protected:
  // Reads every device's reports until `condition` holds or `timeout_ms` passed; false on timeout or when
  // a device reported an error or died by itself (the reason goes to `*why`).
  bool Pump(const std::function<bool()>& condition, int64_t timeout_ms, std::string* why) {
    const int64_t deadline = SteadyNowMs() + timeout_ms;
    for (;;) {
      std::vector<pollfd> fds;
      for (auto& d : devices_) {
        d->Drain();
        if (!d->error().empty()) {
          *why = d->error() + "\n---- device log ----\n" + d->Log();
          return false;
        }
        if (d->Exited()) {
          *why = d->spec().device + " exited by itself\n---- device log ----\n" + d->Log();
          return false;
        }
        if (d->fd() >= 0) fds.push_back({d->fd(), POLLIN, 0});
      }
      if (condition()) return true;
      const int64_t left = deadline - SteadyNowMs();
      if (left <= 0) {
        *why = "timed out";
        return false;
      }
      // Waits for the next report (bounded): the devices' output is the clock here.
      (void)poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left, 50)));
    }
  }

  uint64_t TotalEvents() {
    uint64_t n = 0;
    for (auto& d : devices_) n += d->events();
    return n;
  }
  bool AllDone() {
    for (auto& d : devices_) {
      if (!d->done()) return false;
    }
    return true;
  }

  std::vector<std::unique_ptr<DeviceProcess>> devices_;
};

TEST_F(CrashE2E, KillNineDevicesAndServerUnderLoad) {
  int kills_wanted = kCrashKills;
  if (const char* v = std::getenv("OUTPOST_CRASH_KILLS")) kills_wanted = std::max(1, std::atoi(v));
  std::mt19937_64 rng(harness::TestSeed(static_cast<uint64_t>(SteadyNowMs()), "crash"));
  const auto began = std::chrono::steady_clock::now();

  // The stream, made by a device that then goes away.
  {
    auto setup = Open("alice", "setup", alice_phone_token_);
    ASSERT_TRUE(setup);
    CreateStream(*setup, kStream, {"alice", "bob"});
  }
  const std::string users[kDevices] = {"alice", "alice", "bob", "bob"};
  for (int i = 0; i < kDevices; ++i) {
    DeviceSpec spec;
    spec.dir = dir_ / ("device" + std::to_string(i));
    ASSERT_TRUE(std::filesystem::create_directories(spec.dir));
    spec.user = users[i];
    spec.device = "dev" + std::to_string(i);
    spec.token = AddDevice(data_, users[i], spec.device);  // a token logs in as one device
    spec.server = daemon_.endpoint();
    spec.ops = kOpsPerDevice;
    devices_.push_back(std::make_unique<DeviceProcess>(spec));
    std::string error;
    ASSERT_TRUE(devices_.back()->Spawn(&error)) << error;
  }

  // Kill, restart, repeat. Each kill waits for a random number (0..11) of reports from its victim (from
  // any device for the server), so kills land while stores open, ops are submitted, batches fly and pages
  // merge; a device with nothing left to report is killed at once.
  int device_kills = 0, server_kills = 0, under_load = 0;  // under load: the victim had ops left to send
  std::string why;
  while (device_kills + server_kills < kills_wanted) {
    const bool server = rng() % 5 == 0;
    const uint64_t wait_reports = rng() % 12;
    if (server) {
      const uint64_t from = TotalEvents();
      ASSERT_TRUE(Pump([&] { return TotalEvents() >= from + wait_reports || AllDone(); }, kLongWaitMs, &why))
          << why;
      if (!AllDone()) ++under_load;
      daemon_.Signal(SIGKILL);
      ASSERT_EQ(daemon_.WaitExit(kWaitMs), -1) << "outpostd did not die of SIGKILL\n" << daemon_.Log();
      ++server_kills;
      ASSERT_TRUE(daemon_.Restart(&why)) << why;
    } else {
      DeviceProcess& d = *devices_[rng() % devices_.size()];
      const uint64_t from = d.events();
      ASSERT_TRUE(Pump([&] { return d.events() >= from + wait_reports || d.done(); }, kLongWaitMs, &why))
          << why;
      if (!d.done()) ++under_load;
      ASSERT_TRUE(d.Kill()) << d.spec().device << " had exited by itself\n" << d.Log();
      ++device_kills;
      ASSERT_TRUE(d.error().empty()) << d.error();
      ASSERT_TRUE(d.Spawn(&why)) << why;
    }
  }
  const double kill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  // Quiet: everything submitted, acknowledged and merged everywhere.
  const uint64_t total = 1 + static_cast<uint64_t>(kDevices) * kOpsPerDevice;
  ASSERT_TRUE(Pump(
      [&] {
        for (auto& d : devices_) {
          if (!d->done() || d->cursor() < total) return false;
        }
        return true;
      },
      kLongWaitMs, &why))
      << why << "; " << [&] {
           std::string s;
           for (auto& d : devices_)
             s += " " + d->spec().device + "{submitted " + std::to_string(d->submitted()) + " done " +
                  std::to_string(d->done()) + " cursor " + std::to_string(d->cursor()) + "}";
           return s;
         }();
  for (auto& d : devices_) ASSERT_TRUE(d->Kill());

  // From the server: a fresh device pulls the whole stream.
  auto viewer = Open("bob", "viewer", AddDevice(data_, "bob", "viewer"));
  ASSERT_TRUE(viewer);
  FollowConnected(*viewer, kStream);
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*viewer, kStream, total); }, kLongWaitMs))
      << "viewer cursor " << CursorOf(*viewer, kStream) << " of " << total;
  auto ops = viewer->Latest(kStream, total + 10);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), total);
  std::map<std::string, int> last;  // device -> last op number seen
  std::set<std::string> ids;
  for (size_t i = 0; i < ops->size(); ++i) {
    const OpInfo& op = (*ops)[i];
    ASSERT_EQ(op.state, OpState::kSent);
    ASSERT_EQ(op.seq, i + 1) << "seqs have a gap";
    ASSERT_TRUE(ids.insert(op.op_id.ToString()).second) << "op " << op.op_id.ToString() << " twice";
    if (op.kind != "text") continue;
    const int n = OpNumber(op.device, op.payload);
    // No op lost or duplicated, each device's in its order: op n of a device comes right after op n-1.
    ASSERT_EQ(n, last[op.device] + 1)
        << op.device << " op " << n << " at seq " << op.seq << " after op " << last[op.device];
    last[op.device] = n;
  }
  for (auto& d : devices_) EXPECT_EQ(last[d->spec().device], kOpsPerDevice) << d->spec().device;
  const std::vector<std::string> reference = ViewIds(*viewer, kStream);

  // From every device's store: the same stream, in the same order.
  for (auto& d : devices_) {
    auto store = OpenStore(d->spec(), false);
    ASSERT_TRUE(store) << "cannot reopen " << d->spec().dir;
    EXPECT_EQ(ViewIds(*store, kStream), reference) << d->spec().device << "'s store differs from the server";
    EXPECT_EQ(store->Stats().outbox_depth, 0u) << d->spec().device;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::printf(
      "crash: %d kills (%d device, %d server, %d under load) in %.1f s, %.1f s in all; %llu ops checked, 0 "
      "lost, "
      "0 duplicated, order kept\n",
      device_kills + server_kills, device_kills, server_kills, under_load, kill_seconds, seconds,
      static_cast<unsigned long long>(total));
  RecordProperty("kills", device_kills + server_kills);
}

}  // namespace
}  // namespace outpost::e2e
