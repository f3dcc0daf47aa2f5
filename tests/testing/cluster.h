// Copyright 2026 The Outpost Authors.
//
// Cluster: one server and N devices in this process, the fixture most engine tests need.
//
//   harness::Cluster cluster({.name = "client-test"});
//   ASSERT_TRUE(cluster.StartServer().ok());
//   Client& phone = cluster.AddDevice("alice", "phone");
//   ASSERT_TRUE(phone.Submit("chat", "text", "hi").ok());
//   ASSERT_TRUE(cluster.StepUntilIdle());
//
// Two ways to run it:
//  - manual clock (the default): the server and every device share one ManualEnv and nothing runs on its own
//    thread; Pump/StepUntil/StepUntilIdle step the devices and the server and move the clock. Deterministic.
//  - system clock (manual_clock = false): the server runs on its own thread; a device syncs with
//    Sync/SyncUntil (Client::RunUntilIdle), or with Client::Start.
// Every wait is bounded (rounds on the manual clock, real time on the system clock): a wait that runs out
// returns false or an error, it never hangs.
//
// State: a server store and device stores named after the cluster (memory) or kept in its TempDir (the
// durable backends), so that RestartServer and ReopenDevice find what was there. Not thread-safe: one test
// thread drives it.
#ifndef OUTPOST_TESTS_TESTING_CLUSTER_H_
#define OUTPOST_TESTS_TESTING_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/env.h"
#include "outpost/server.h"
#include "outpost/transport.h"
#include "testing/temp_dir.h"
#include "testing/wait.h"

namespace outpost::harness {

struct ClusterOptions {
  // Part of the inproc name, the memory stores' names and the TempDir's (unique per cluster in any case).
  std::string name = "cluster";
  // The server's store: a backend ("memory", "lmdb", "sqlite", "rocksdb": made in the TempDir) or a whole
  // URI (postgresql://...).
  std::string server_store = "memory";
  // Each device's store, by backend as above, one per (user, device).
  std::string device_store = "memory";
  bool device_store_sync = true;
  // "inproc" or "tcp" (ZeroMQ on a free loopback port).
  std::string transport = "inproc";
  bool manual_clock = true;
  uint64_t clock_seed = 42;  // the ManualEnv's random source (op ids, jitter)
  // Wraps the server's listener, each time the server starts (a TapListener, a fault injector).
  std::function<std::unique_ptr<Listener>(std::unique_ptr<Listener>)> wrap_listener;
  // Device defaults (DeviceOptions): quick retries, so that bounded waits stay short.
  int64_t ack_timeout_ms = 1000;
  int64_t backoff_base_ms = 100;
  int64_t backoff_cap_ms = 5000;
};

// An authorize hook (ServerOptions::authorize) that refuses every push of `payload` with
// PermissionDenied("not allowed here"), and allows everything else: a permanent rejection on demand.
std::function<Status(const AccessRequest&)> RefusePayload(std::string payload);

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  // Closes the devices, then the server, then removes the TempDir.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Opens the server with `options` (store and env are the cluster's; authenticate, when not given, checks
  // the tokens of AddUser) and, on the system clock, starts its thread. Again after StopServer: the same
  // store, the same endpoint.
  Status StartServer(ServerOptions options = {});
  // Stops the server (its thread, then whatever it had received) and closes it and its listener. Devices
  // see their connections drop.
  void StopServer();
  // StopServer, then StartServer with the options of the last start.
  Status RestartServer();
  Server& server() { return *server_; }
  bool server_running() const { return server_ != nullptr; }
  // The wrapped listener of the running server (nullptr without wrap_listener), cast by the test.
  Listener* listener() const { return listener_; }
  // What devices dial.
  const std::string& endpoint() const { return endpoint_; }
  // The server store's URI (OpenServerStore).
  const std::string& server_store_uri() const { return server_store_uri_; }

  // Users and their tokens: once a user has a token, a Hello of that user with another token is refused
  // ("bad token for USER"). Users without one are taken at their word.
  void AddUser(const std::string& user, const std::string& token);

  // Options for (user, device): its store, the endpoint, the user's token, the cluster's clock and quick
  // retries. Tests change what they need, then Add.
  ClientOptions DeviceOptions(const std::string& user, const std::string& device) const;
  Client& AddDevice(const std::string& user, const std::string& device);
  // Opens a device with `options`; a failure fails the test and ends it (the Client would be null).
  Client& Add(ClientOptions options);
  // Closes `device` with no shutdown step (as when its app is killed): what Submit returned is in its
  // store, nothing else is flushed. The reference is dangling afterwards.
  void CrashDevice(Client& device);
  // CrashDevice, then opens it again with the same options: the new Client.
  Client& ReopenDevice(Client& device);
  std::vector<std::unique_ptr<Client>>& devices() { return devices_; }

  // Manual clock. Pump: `rounds` times, moves the clock `ms`, steps every device, the server, every device.
  void Pump(int rounds = 50, int64_t ms = 10);
  // Pumps one round at a time (ms each) until `condition` holds: false after `rounds_max` rounds.
  bool StepUntil(const std::function<bool()>& condition, int rounds_max = 1000, int64_t ms = 10);
  // Until every device is idle (Client::IsIdle): nothing due, in flight or left to pull.
  bool StepUntilIdle(int rounds_max = 1000, int64_t ms = 10);
  ManualEnv& clock() { return *clock_; }

  // System clock. Sync: RunUntilIdle (the device is idle, or its error). SyncUntil: syncs until `condition`
  // holds; false after `timeout_ms`.
  static Status Sync(Client& device, int64_t timeout_ms = kWaitMs);
  static bool SyncUntil(Client& device, const std::function<bool()>& condition, int64_t timeout_ms = kWaitMs);

  TempDir& dir() { return dir_; }
  const std::string& id() const { return id_; }
  // The cluster's Env: its ManualEnv, or nullptr (the system's) on the system clock.
  Env* env() const { return clock_.get(); }

 private:
  Result<std::string> Authenticate(const HelloInfo& hello);

  ClusterOptions options_;
  TempDir dir_;
  std::string id_;
  std::unique_ptr<ManualEnv> clock_;
  std::string listen_uri_;
  std::string endpoint_;
  std::string server_store_uri_;
  ServerOptions server_options_;
  Listener* listener_ = nullptr;
  std::unique_ptr<Server> server_;
  mutable std::mutex users_mu_;  // the server's thread authenticates while the test adds users
  std::map<std::string, std::string> tokens_;
  std::map<const Client*, ClientOptions> opened_with_;
  std::vector<std::unique_ptr<Client>> devices_;
};

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_CLUSTER_H_
