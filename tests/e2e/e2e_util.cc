// Copyright 2026 The Outpost Authors.
#include "e2e/e2e_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

extern char** environ;

#ifndef OUTPOST_OUTPOSTD
#define OUTPOST_OUTPOSTD "outpostd"  // not built here: whichever is on PATH
#endif

namespace outpost::e2e {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// posix_spawn of `argv` (argv[0] the program) with default signal handling and an empty signal mask
// (whatever the test process blocks), `actions` wiring its stdio.
pid_t Spawn(const std::vector<std::string>& args, posix_spawn_file_actions_t* actions,
            char** envp = environ) {
  std::vector<std::string> argv_store = args;
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], actions, &attr, argv.data(), envp);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

// Reaps `pid` if it exited within `timeout_ms`: its exit code, -1 for a signal, -2 when still running.
int Reap(pid_t pid, int64_t timeout_ms) {
  int code = -2;
  WaitFor(
      [&] {
        int status = 0;
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0) code = -1;
        return code != -2;
      },
      timeout_ms);
  return code;
}

}  // namespace

std::string OutpostdPath() { return OUTPOST_OUTPOSTD; }

RunResult RunOutpostd(const std::vector<std::string>& args, int64_t timeout_ms) {
  std::vector<std::string> argv{OutpostdPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, timeout_ms);
}

RunResult RunProgram(const std::vector<std::string>& argv, int64_t timeout_ms,
                     const std::vector<std::string>& env) {
  RunResult result;
  // This process's environment with `env` applied: NAME=VALUE sets, a bare NAME removes.
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& x : env) replaced = replaced || x == name || x.starts_with(name + "=");
    if (!replaced) env_store.push_back(entry);
  }
  for (const auto& x : env) {
    if (x.find('=') != std::string::npos) env_store.push_back(x);
  }
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const pid_t pid = Spawn(argv, &actions, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  const int64_t deadline = SteadyNowMs() + timeout_ms;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (pid > 0 && open_fds > 0 && SteadyNowMs() < deadline) {
    if (poll(fds, 2, 50) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (pid > 0) {
    result.exit_code = Reap(pid, std::max<int64_t>(deadline - SteadyNowMs(), 0));
    if (result.exit_code == -2) {
      kill(pid, SIGKILL);
      (void)Reap(pid, 10'000);
      ADD_FAILURE() << argv[0] << " timed out";
      result.exit_code = -1;
    }
  }
  return result;
}

pid_t StartProgram(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const pid_t pid = Spawn(argv, &actions);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int WaitProgram(pid_t pid, int64_t timeout_ms) { return pid > 0 ? Reap(pid, timeout_ms) : -1; }

namespace {
std::string Issue(const char* command, const std::string& data_dir, const std::string& user,
                  const std::string& device) {
  std::vector<std::string> args = {command, "--data", data_dir, user};
  if (!device.empty()) args.insert(args.end(), {"--device", device});
  RunResult r = RunOutpostd(args);
  EXPECT_EQ(r.exit_code, 0) << command << " " << user << ": " << r.err;
  std::string token = r.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  return r.exit_code == 0 ? token : "";
}
}  // namespace

std::string AddUser(const std::string& data_dir, const std::string& user, const std::string& device) {
  return Issue("add-user", data_dir, user, device);
}
std::string AddDevice(const std::string& data_dir, const std::string& user, const std::string& device) {
  return Issue("add-device", data_dir, user, device);
}

std::string Devices(const std::string& data_dir, const std::string& user) {
  RunResult r = RunOutpostd({"devices", "--data", data_dir, user});
  EXPECT_EQ(r.exit_code, 0) << "devices " << user << ": " << r.err;
  return r.out;
}

int ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    (void)Reap(pid_, 10'000);
  }
}

bool Daemon::Start(const std::string& data_dir, const std::string& listen,
                   const std::vector<std::string>& extra, std::string* error) {
  data_dir_ = data_dir;
  extra_ = extra;
  const std::string endpoint_file = data_dir + "/endpoint";
  unlink(endpoint_file.c_str());
  std::vector<std::string> args = {
      OutpostdPath(), "--data",           data_dir, "--listen",    listen, "--endpoint-file",
      endpoint_file,  "--stats-interval", "0",      "--log-level", "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = data_dir + "/outpostd.log";
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_ = Spawn(args, &actions);
  posix_spawn_file_actions_destroy(&actions);
  if (pid_ <= 0) return false;
  std::string text;
  int exit_code = -2;
  const bool ready = WaitFor(
      [&] {
        text = ReadAll(endpoint_file);
        if (!text.empty() && text.back() == '\n') return true;
        exit_code = Reap(pid_, 0);
        return exit_code != -2;
      },
      30'000);
  if (!ready || exit_code != -2) {
    if (exit_code == -2) {
      kill(pid_, SIGKILL);
      (void)Reap(pid_, 10'000);
    }
    pid_ = -1;
    const std::string why = (ready ? "outpostd exited with " + std::to_string(exit_code)
                                   : std::string("outpostd did not write its endpoint file in time")) +
                            "; log:\n" + Log();
    if (error) *error = why;
    return false;
  }
  text.pop_back();
  endpoint_ = text;
  return true;
}

bool Daemon::Restart(std::string* error) {
  const std::string listen = endpoint_;
  std::string why;
  // The old process's port may linger for a moment; the same port keeps the devices' server URI valid.
  const bool ok = WaitFor(
      [&] {
        if (Start(data_dir_, listen, extra_, &why)) return true;
        return why.find("in use") == std::string::npos;  // another failure: give up now
      },
      20'000);
  if (!ok || pid_ <= 0) {
    if (error) *error = why;
    return false;
  }
  return true;
}

bool Daemon::Restart(const std::vector<std::string>& extra, std::string* error) {
  extra_ = extra;
  return Restart(error);
}

void Daemon::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int Daemon::WaitExit(int64_t timeout_ms) {
  if (pid_ <= 0) return -1;
  const int code = Reap(pid_, timeout_ms);
  if (code != -2) pid_ = -1;
  return code;
}

bool Daemon::Alive() { return pid_ > 0 && Reap(pid_, 0) == -2; }

std::string Daemon::Log() const { return ReadAll(data_dir_ + "/outpostd.log"); }

std::string Daemon::StatsJson() const { return ReadAll(data_dir_ + "/stats.json"); }

int64_t Daemon::StatsField(const std::string& name) const {
  const std::string text = StatsJson();
  const std::string key = "\"" + name + "\": ";
  const size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  size_t i = at + key.size();
  int64_t v = -1;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) v = (v < 0 ? 0 : v * 10) + (text[i] - '0');
  return v;
}

int64_t Daemon::MediaStatsField(const std::string& name) const {
  const std::string text = StatsJson();
  const size_t media = text.find("\"media\": {");
  if (media == std::string::npos) return -1;
  const size_t end = text.find('}', media);
  const std::string key = "\"" + name + "\": ";
  const size_t at = text.find(key, media);
  if (at == std::string::npos || at > end) return -1;
  size_t i = at + key.size();
  int64_t v = -1;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) v = (v < 0 ? 0 : v * 10) + (text[i] - '0');
  return v;
}

std::string StatsString(const std::string& data_dir, const std::string& name) {
  const std::string text = ReadAll(data_dir + "/stats.json");
  const std::string key = "\"" + name + "\": \"";
  const size_t at = text.find(key);
  if (at == std::string::npos) return {};
  const size_t start = at + key.size();
  const size_t end = text.find('"', start);  // the values read this way hold no escaped quotes
  return end == std::string::npos ? std::string() : text.substr(start, end - start);
}

std::unique_ptr<Client> OpenDevice(const std::string& dir, const DeviceOptions& options) {
  ClientOptions co;
  co.store = "lmdb:" + dir + "/" + options.user + "-" + options.device + "?sync=0";
  co.server = options.server;
  co.dialer = options.dialer;
  co.user = options.user;
  co.device = options.device;
  co.token = options.token;
  co.backoff_base_ms = 50;
  co.backoff_cap_ms = options.backoff_cap_ms;
  co.ack_timeout_ms = options.ack_timeout_ms;
  co.media = options.media;
  co.media_dir = options.media_dir;
  if (options.upload_chunk_bytes > 0) co.upload_chunk_bytes = options.upload_chunk_bytes;
  auto client = Client::Open(co);
  if (!client.ok()) {
    ADD_FAILURE() << "Client::Open " << options.user << "/" << options.device << ": "
                  << client.status().ToString();
    return nullptr;
  }
  (*client)->Start();
  return std::move(client).value();
}

std::vector<std::string> ViewIds(Client& client, const std::string& stream, size_t n) {
  std::vector<std::string> ids;
  auto ops = client.Latest(stream, n);
  if (!ops.ok()) return ids;
  for (const auto& op : *ops) ids.push_back(op.op_id.ToString());
  return ids;
}

uint64_t CursorOf(Client& client, const std::string& stream) {
  auto cursor = client.Cursor(stream);
  return cursor.ok() ? *cursor : 0;
}

bool CaughtUp(Client& client, const std::string& stream, uint64_t seq) {
  auto cursor = client.Cursor(stream);
  return cursor.ok() && *cursor >= seq && client.Stats().outbox_depth == 0;
}

}  // namespace outpost::e2e
