// Copyright 2026 The Outpost Authors.
#include "testing/cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <utility>

namespace outpost::harness {

std::function<Status(const AccessRequest&)> RefusePayload(std::string payload) {
  return [payload = std::move(payload)](const AccessRequest& r) {
    if (r.access == Access::kPush && r.payload == payload)
      return Status::PermissionDenied("not allowed here");
    return Status::OK();
  };
}

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)), dir_("outpost-" + options_.name) {
  static std::atomic<int> run{0};
  id_ = options_.name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++run);
  if (options_.manual_clock) clock_ = std::make_unique<ManualEnv>(options_.clock_seed);
  listen_uri_ = options_.transport == "tcp" ? "tcp://127.0.0.1:0" : "inproc:" + id_;
  server_store_uri_ = StoreUri(options_.server_store, dir_.path(), id_ + "-server");
}

Cluster::~Cluster() {
  devices_.clear();
  server_.reset();
}

Status Cluster::StartServer(ServerOptions options) {
  if (server_) return Status::FailedPrecondition("the cluster's server is running");
  options.store = server_store_uri_;
  options.env = clock_.get();
  if (!options.authenticate) {
    options.authenticate = [this](const HelloInfo& hello) { return Authenticate(hello); };
  }
  server_options_ = options;
  OUTPOST_ASSIGN_OR_RETURN(auto listener, Listen(listen_uri_));
  listener_ = nullptr;
  if (options_.wrap_listener) {
    listener = options_.wrap_listener(std::move(listener));
    listener_ = listener.get();
  }
  OUTPOST_ASSIGN_OR_RETURN(server_, Server::Open(std::move(options), std::move(listener)));
  if (endpoint_.empty()) {
    endpoint_ = server_->endpoint().empty() ? listen_uri_ : server_->endpoint();
    listen_uri_ = endpoint_;  // a restart binds the same port
  }
  if (!clock_) server_->Start();
  return Status::OK();
}

void Cluster::StopServer() {
  if (!server_) return;
  if (!clock_) server_->Stop();
  server_.reset();
  listener_ = nullptr;
}

Status Cluster::RestartServer() {
  StopServer();
  return StartServer(server_options_);
}

void Cluster::AddUser(const std::string& user, const std::string& token) {
  std::lock_guard<std::mutex> lock(users_mu_);
  tokens_[user] = token;
}

Result<std::string> Cluster::Authenticate(const HelloInfo& hello) {
  std::lock_guard<std::mutex> lock(users_mu_);
  auto it = tokens_.find(hello.user);
  if (it != tokens_.end() && it->second != hello.token) {
    return Status::PermissionDenied("bad token for " + hello.user);
  }
  return hello.user;
}

ClientOptions Cluster::DeviceOptions(const std::string& user, const std::string& device) const {
  ClientOptions o;
  const std::string name = id_ + "-" + user + "-" + device;
  o.store = StoreUri(options_.device_store, dir_.path(), name);
  o.store_sync = options_.device_store_sync;
  o.server = endpoint_;
  o.user = user;
  o.device = device;
  {
    std::lock_guard<std::mutex> lock(users_mu_);
    auto it = tokens_.find(user);
    if (it != tokens_.end()) o.token = it->second;
  }
  o.env = clock_.get();
  o.ack_timeout_ms = options_.ack_timeout_ms;
  o.backoff_base_ms = options_.backoff_base_ms;
  o.backoff_cap_ms = options_.backoff_cap_ms;
  return o;
}

Client& Cluster::AddDevice(const std::string& user, const std::string& device) {
  return Add(DeviceOptions(user, device));
}

Client& Cluster::Add(ClientOptions options) {
  const std::string who = options.user + "/" + options.device;
  auto client = Client::Open(options);
  if (!client.ok()) {
    ADD_FAILURE() << "opening device " << who << " on " << options.store << ": "
                  << client.status().ToString();
    std::abort();  // the caller holds a reference: there is nothing to give it
  }
  opened_with_[client->get()] = std::move(options);
  devices_.push_back(std::move(client).value());
  return *devices_.back();
}

void Cluster::CrashDevice(Client& device) {
  for (auto it = devices_.begin(); it != devices_.end(); ++it) {
    if (it->get() == &device) {
      opened_with_.erase(&device);
      devices_.erase(it);
      return;
    }
  }
  ADD_FAILURE() << "CrashDevice: not a device of this cluster";
}

Client& Cluster::ReopenDevice(Client& device) {
  auto it = opened_with_.find(&device);
  if (it == opened_with_.end()) {
    ADD_FAILURE() << "ReopenDevice: not a device of this cluster";
    std::abort();
  }
  ClientOptions options = it->second;
  CrashDevice(device);
  return Add(std::move(options));
}

void Cluster::Pump(int rounds, int64_t ms) {
  ASSERT_NE(clock_, nullptr) << "Pump runs on the manual clock";
  ASSERT_NE(server_, nullptr) << "Pump with no server";
  for (int i = 0; i < rounds; ++i) {
    clock_->AdvanceMs(ms);
    for (auto& c : devices_) ASSERT_TRUE(c->Step().ok()) << c->user() << "/" << c->device();
    server_->Step();
    for (auto& c : devices_) ASSERT_TRUE(c->Step().ok()) << c->user() << "/" << c->device();
  }
}

bool Cluster::StepUntil(const std::function<bool()>& condition, int rounds_max, int64_t ms) {
  return harness::StepUntil(
      condition, [&] { Pump(1, ms); }, rounds_max);
}

bool Cluster::StepUntilIdle(int rounds_max, int64_t ms) {
  return StepUntil(
      [&] {
        for (auto& c : devices_) {
          if (!c->IsIdle()) return false;
        }
        return true;
      },
      rounds_max, ms);
}

Status Cluster::Sync(Client& device, int64_t timeout_ms) { return device.RunUntilIdle(timeout_ms); }

bool Cluster::SyncUntil(Client& device, const std::function<bool()>& condition, int64_t timeout_ms) {
  return WaitFor(
      [&] {
        if (condition()) return true;
        (void)device.RunUntilIdle(50);
        return condition();
      },
      timeout_ms);
}

}  // namespace outpost::harness
