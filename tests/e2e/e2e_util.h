// Copyright 2026 The Outpost Authors.
//
// Helpers for the end-to-end tests: a real `outpostd` subprocess (posix_spawn, port 0 + --endpoint-file),
// one-shot runs of its admin commands and in-process devices over real ZeroMQ tcp. Temporary directories
// and bounded waits are the harness's (tests/testing/).
#ifndef OUTPOST_TESTS_E2E_E2E_UTIL_H_
#define OUTPOST_TESTS_E2E_E2E_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/transport.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace outpost::e2e {

// Absolute path of the outpostd binary under test.
std::string OutpostdPath();

// Temporary directories, the monotonic clock and bounded waits come from the shared harness.
using harness::SteadyNowMs;
using harness::TempDir;
using harness::WaitFor;

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;
  std::string err;
};
// Runs `argv` (argv[0] the program, found on PATH) to completion (killed after `timeout_ms`), stdin from
// /dev/null, capturing stdout and stderr. `env` changes the inherited environment: "NAME=VALUE" sets,
// "NAME" removes.
RunResult RunProgram(const std::vector<std::string>& argv, int64_t timeout_ms = 30'000,
                     const std::vector<std::string>& env = {});
// `argv` started as a child process that the test waits for (or kills) itself: stdin from /dev/null, stdout
// and stderr appended to `log_path`. Its pid, or -1 (and a test failure).
pid_t StartProgram(const std::vector<std::string>& argv, const std::string& log_path);
// Waits up to `timeout_ms` for a child of StartProgram to exit: its exit code, -1 when a signal ended it,
// -2 when it is still running.
int WaitProgram(pid_t pid, int64_t timeout_ms);
// Run of `outpostd ARGS...`.
RunResult RunOutpostd(const std::vector<std::string>& args, int64_t timeout_ms = 30'000);

// Creates `user` in DATA_DIR's registry; returns its token ("" and a test failure on error). With `device`
// the token is bound to that device id (--device); without, it binds on first use.
std::string AddUser(const std::string& data_dir, const std::string& user, const std::string& device = "");
std::string AddDevice(const std::string& data_dir, const std::string& user, const std::string& device = "");
// `outpostd devices --data DATA_DIR user`: one "user\tdevice\tbound|unbound" line per token.
std::string Devices(const std::string& data_dir, const std::string& user);
// The permission bits of `path` (-1 when it cannot be stat'ed).
int ModeOf(const std::string& path);

// The string field `name` of DATA_DIR/stats.json ("" when absent or unreadable).
std::string StatsString(const std::string& data_dir, const std::string& name);

// `outpostd --data DIR ...` as a child process; its stderr goes to DIR/outpostd.log (appended, so restarts
// keep the history). Killed with SIGKILL at destruction if still running.
class Daemon {
 public:
  Daemon() = default;
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts outpostd on `data_dir` listening on `listen` plus `extra` flags, then waits (bounded) for its
  // --endpoint-file. False, with the reason and the log in `*error`, when it exits or never gets ready.
  bool Start(const std::string& data_dir, const std::string& listen = "tcp://127.0.0.1:0",
             const std::vector<std::string>& extra = {}, std::string* error = nullptr);
  // Start on the same endpoint as the last run (same port), retrying while the port is still in use.
  bool Restart(std::string* error = nullptr);
  // The same with other extra flags from now on (e.g. the media server's port of the last run).
  bool Restart(const std::vector<std::string>& extra, std::string* error = nullptr);
  void Signal(int sig);
  // Waits for the process to exit; its exit code (-1 for death by signal, -2 when still running).
  int WaitExit(int64_t timeout_ms);
  bool Alive();
  const std::string& endpoint() const { return endpoint_; }
  // The running process's id (-1 when none).
  pid_t pid() const { return pid_; }
  std::string Log() const;
  std::string StatsJson() const;
  // A numeric field of DATA_DIR/stats.json (-1 when absent or unreadable).
  int64_t StatsField(const std::string& name) const;
  // A numeric field of stats.json's "media" object (--http; -1 when absent or unreadable).
  int64_t MediaStatsField(const std::string& name) const;

 private:
  pid_t pid_ = -1;
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string endpoint_;
};

// One device: a Client with its own lmdb store under `dir`, syncing in the background.
struct DeviceOptions {
  std::string user;
  std::string device;
  std::string token;
  std::string server;              // transport URI
  std::shared_ptr<Dialer> dialer;  // overrides server (CURVE)
  int64_t backoff_cap_ms = 500;    // tests restart servers: reconnect quickly
  int64_t ack_timeout_ms = 3'000;
  // Attachments (ClientOptions): the transport, the device's copies and the upload chunk (0: default).
  std::shared_ptr<MediaTransport> media;
  std::string media_dir;
  uint32_t upload_chunk_bytes = 0;
};
std::unique_ptr<Client> OpenDevice(const std::string& dir, const DeviceOptions& options);

// The ids of a stream view's ops, in view order.
std::vector<std::string> ViewIds(Client& client, const std::string& stream, size_t n = 100'000);
// The device's cursor on `stream` (0 on error).
uint64_t CursorOf(Client& client, const std::string& stream);
// True when the device merged at least `seq` of `stream` and has nothing left to send.
bool CaughtUp(Client& client, const std::string& stream, uint64_t seq);

}  // namespace outpost::e2e

#endif  // OUTPOST_TESTS_E2E_E2E_UTIL_H_
