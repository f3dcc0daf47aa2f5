// Copyright 2026 The Outpost Authors.
#include "sim.h"

#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/client.h"
#include "outpost/server.h"

namespace outpost::sim {

namespace {

std::atomic<uint64_t> g_run{0};

struct Submitted {
  OpId id;
  std::string stream;
  bool bad = false;        // the server refuses it permanently
  bool discarded = false;  // the user gave up on it
  int retries = 0;
};

struct Device {
  std::string user, name, store;
  std::unique_ptr<Client> client;
  int submitted = 0;
  std::vector<Submitted> subs;
  std::map<OpId, OpState> seen;            // last observed state of each own op
  std::map<std::string, uint64_t> cursor;  // last observed cursor of each stream
};

class Sim {
 public:
  explicit Sim(const SimConfig& c)
      : cfg_(c), env_(c.seed), rng_(c.seed * 0x9E3779B97F4A7C15ULL + 7), run_(g_run++) {
    net_ = "inproc:sim-" + std::to_string(run_);
    tmp_ = std::filesystem::temp_directory_path() /
           ("outpost-sim-" + std::to_string(::getpid()) + "-" + std::to_string(run_));
    for (int s = 0; s < cfg_.streams; ++s) streams_.push_back("s" + std::to_string(s));
  }
  ~Sim() {
    for (auto& d : devices_) d.client.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }

  SimResult Run();

 private:
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  void Trace(std::string line) {
    trace_.push_back("t=" + std::to_string(env_.NowMs() - kStartMs) + " " + std::move(line));
    if (trace_.size() > 80) trace_.pop_front();
  }
  bool Fail(std::string why) {
    if (result_.ok) {
      result_.ok = false;
      std::ostringstream out;
      out << "seed " << cfg_.seed << ": " << why << "\n  replay: OUTPOST_SIM_SEED=" << cfg_.seed
          << " sim_tests\n  last events:\n";
      for (const auto& t : trace_) out << "    " << t << "\n";
      result_.failure = out.str();
    }
    return false;
  }
  bool OpenServer();
  bool OpenDevice(Device& d, bool faulty);
  bool DeviceTick(Device& d);
  bool Observe(Device& d);
  bool HandleFailed(Device& d, bool quiet);
  bool Quiet();
  bool CheckFinal();

  static constexpr int64_t kStartMs = 1'800'000'000'000;
  SimConfig cfg_;
  ManualEnv env_;
  std::mt19937_64 rng_;
  uint64_t run_;
  std::string net_;
  std::filesystem::path tmp_;
  std::vector<std::string> streams_;
  std::unique_ptr<Server> server_;
  std::vector<Device> devices_;
  std::deque<std::string> trace_;
  SimResult result_;
};

bool Sim::OpenServer() {
  ServerOptions so;
  so.store = "memory:sim-server-" + std::to_string(run_);
  so.env = &env_;
  so.authorize = [](const AccessRequest& req) {
    if (req.access == Access::kPush && req.payload.starts_with("BAD")) {
      return Status::InvalidArgument("payload refused by the server");
    }
    return Status::OK();
  };
  auto listener = Listen(net_);
  if (!listener.ok()) return Fail("listen: " + listener.status().ToString());
  auto server = Server::Open(std::move(so), std::move(listener).value());
  if (!server.ok()) return Fail("server open: " + server.status().ToString());
  server_ = std::move(server).value();
  return true;
}

bool Sim::OpenDevice(Device& d, bool faulty) {
  ClientOptions o;
  o.store = d.store;
  o.store_sync = false;
  auto dialer = NewDialer(net_);
  if (!dialer.ok()) return Fail("dialer: " + dialer.status().ToString());
  if (faulty) {
    o.dialer = WrapFaulty(std::move(dialer).value(), cfg_.faults, &env_, rng_());
  } else {
    o.dialer = std::move(dialer).value();
  }
  o.user = d.user;
  o.device = d.name;
  o.env = &env_;
  o.ack_timeout_ms = 1000;
  o.backoff_base_ms = 20;
  o.backoff_cap_ms = 2000;
  o.attempts_max = cfg_.attempts_max;
  o.ops_per_batch_max = 8;
  o.batches_inflight_max = 4;
  o.pull_page_max = 16;
  auto c = Client::Open(std::move(o));
  if (!c.ok()) return Fail("open " + d.name + ": " + c.status().ToString());
  d.client = std::move(c).value();
  for (const auto& s : streams_) {
    Status st = d.client->Follow(s);
    if (!st.ok()) return Fail("follow: " + st.ToString());
  }
  // Durable before visible: every op Submit returned survives the restart.
  for (const auto& sub : d.subs) {
    if (sub.discarded) continue;
    auto op = d.client->Get(sub.id);
    if (!op.ok())
      return Fail(d.name + " lost op " + sub.id.ToString() + " across a restart: " + op.status().ToString());
  }
  return true;
}

bool Sim::Observe(Device& d) {
  for (const auto& s : streams_) {
    auto c = d.client->Cursor(s);
    if (!c.ok()) return Fail("cursor: " + c.status().ToString());
    uint64_t& last = d.cursor[s];
    if (*c < last)
      return Fail(d.name + " cursor of " + s + " moved back " + std::to_string(last) + " -> " +
                  std::to_string(*c));
    last = *c;
  }
  // Status only moves forward: pending -> sent; pending -> failed; failed -> pending only by Retry.
  for (int i = 0; i < 4 && !d.subs.empty(); ++i) {
    const Submitted& sub = d.subs[Rand(d.subs.size())];
    if (sub.discarded) continue;
    auto op = d.client->Get(sub.id);
    if (!op.ok())
      return Fail(d.name + " cannot read own op " + sub.id.ToString() + ": " + op.status().ToString());
    auto it = d.seen.find(sub.id);
    if (it != d.seen.end()) {
      OpState was = it->second, now = op->state;
      if (was == OpState::kSent && now != OpState::kSent)
        return Fail("op " + sub.id.ToString() + " left sent state");
      if (was == OpState::kFailed && now == OpState::kPending)
        return Fail("op " + sub.id.ToString() + " failed -> pending without retry");
    }
    if (op->state == OpState::kFailed && op->last_error.empty()) return Fail("failed op without a reason");
    d.seen[sub.id] = op->state;
  }
  return true;
}

bool Sim::HandleFailed(Device& d, bool quiet) {
  auto outbox = d.client->Outbox(100000);
  if (!outbox.ok()) return Fail("outbox: " + outbox.status().ToString());
  for (const OpInfo& op : *outbox) {
    if (op.state != OpState::kFailed) continue;
    Submitted* sub = nullptr;
    for (auto& s : d.subs) {
      if (s.id == op.op_id) sub = &s;
    }
    if (sub == nullptr) return Fail("unknown failed op in outbox");
    bool refused = op.last_error_code == Status::Code::kInvalidArgument;
    if (refused && !quiet && Chance(cfg_.discard)) {
      Status st = d.client->Discard(op.op_id);
      if (!st.ok()) return Fail("discard: " + st.ToString());
      sub->discarded = true;
      d.seen.erase(op.op_id);
      Trace(d.name + " discard " + op.op_id.ToString());
    } else if (!refused || (sub->retries < 2 && !quiet)) {
      Status st = d.client->Retry(op.op_id);
      if (!st.ok()) return Fail("retry: " + st.ToString());
      ++sub->retries;
      d.seen.erase(op.op_id);
      Trace(d.name + " retry " + op.op_id.ToString() + " (" + op.last_error + ")");
    }
  }
  return true;
}

bool Sim::DeviceTick(Device& d) {
  if (d.submitted < cfg_.ops_per_device && Chance(0.3)) {
    int n = 1 + static_cast<int>(Rand(3));
    for (int i = 0; i < n && d.submitted < cfg_.ops_per_device; ++i) {
      Submitted sub;
      sub.stream = streams_[Rand(streams_.size())];
      sub.bad = Chance(cfg_.reject);
      std::string payload = (sub.bad ? "BAD " : "") + d.name + "#" + std::to_string(d.submitted);
      auto id = d.client->Submit(sub.stream, "text", payload);
      if (!id.ok()) return Fail("submit: " + id.status().ToString());
      sub.id = *id;
      d.subs.push_back(sub);
      ++d.submitted;
      ++result_.ops_submitted;
      Trace(d.name + " submit " + sub.stream + " " + payload + " " + sub.id.ToString());
    }
  }
  Status st = d.client->Step();
  if (!st.ok()) return Fail("step: " + st.ToString());
  if (!Observe(d)) return false;
  if (Chance(0.02) && !HandleFailed(d, false)) return false;
  if (Chance(cfg_.device_crash)) {
    Trace(d.name + " crash");
    d.client.reset();  // no shutdown: in-flight batches and unsent frames are simply gone
    ++result_.device_restarts;
    if (!OpenDevice(d, true)) return false;
  }
  return true;
}

bool Sim::Quiet() {
  // The network heals, every device restarts once more, and whatever failed for lack of answers is retried.
  Trace("quiet phase");
  for (auto& d : devices_) {
    d.client.reset();
    if (!OpenDevice(d, false)) return false;
    if (!HandleFailed(d, true)) return false;
  }
  int idle_rounds = 0;
  for (int t = 0; t < cfg_.quiet_ticks_max; ++t) {
    env_.AdvanceMs(10);
    for (auto& d : devices_) {
      Status st = d.client->Step();
      if (!st.ok()) return Fail("step: " + st.ToString());
      if (!Observe(d)) return false;
      // An op already at attempts_max fails at its first send here: the user retries it too.
      if (t % 20 == 0 && !HandleFailed(d, true)) return false;
    }
    server_->Step();
    bool idle = true;
    for (auto& d : devices_) idle = idle && d.client->IsIdle();
    idle_rounds = idle ? idle_rounds + 1 : 0;
    if (idle_rounds >= 5) return true;
  }
  std::string why = "no convergence after the quiet phase:";
  for (auto& d : devices_) {
    ClientStats s = d.client->Stats();
    why += " " + d.name + "{connected=" + std::to_string(s.connected) +
           " outbox=" + std::to_string(s.outbox_depth) + " failed=" + std::to_string(s.failed) +
           " err=" + s.last_connection_error + "}";
  }
  return Fail(why);
}

bool Sim::CheckFinal() {
  std::map<OpId, std::pair<std::string, uint64_t>> applied;  // op -> stream, seq
  for (const auto& s : streams_) {
    std::vector<std::pair<OpId, uint64_t>> reference;
    for (size_t i = 0; i < devices_.size(); ++i) {
      Device& d = devices_[i];
      auto view = d.client->Latest(s, 1'000'000);
      if (!view.ok()) return Fail("latest: " + view.status().ToString());
      std::vector<std::pair<OpId, uint64_t>> sent;
      for (const OpInfo& op : *view) {
        if (op.state == OpState::kPending)
          return Fail(d.name + " still has a pending op after the quiet phase");
        if (op.state == OpState::kFailed) {
          if (!op.own || op.last_error.empty()) return Fail("failed op that is not own or has no reason");
          continue;
        }
        sent.emplace_back(op.op_id, op.seq);
      }
      // Seqs 1..N without gaps; each op once.
      std::set<OpId> unique;
      for (size_t k = 0; k < sent.size(); ++k) {
        if (sent[k].second != k + 1)
          return Fail(d.name + " view of " + s + " has seq " + std::to_string(sent[k].second) + " at place " +
                      std::to_string(k + 1));
        if (!unique.insert(sent[k].first).second)
          return Fail("op " + sent[k].first.ToString() + " shown twice");
      }
      if (i == 0) {
        reference = sent;
      } else if (sent != reference) {
        return Fail("devices disagree on " + s + ": " + devices_[0].name + " has " +
                    std::to_string(reference.size()) + " ops, " + d.name + " has " +
                    std::to_string(sent.size()));
      }
    }
    for (const auto& [id, seq] : reference) {
      if (!applied.emplace(id, std::make_pair(s, seq)).second) return Fail("op applied in two streams");
    }
  }
  result_.ops_applied = applied.size();
  for (auto& d : devices_) {
    std::map<std::string, uint64_t> last_seq;
    for (const Submitted& sub : d.subs) {
      auto it = applied.find(sub.id);
      if (sub.bad) {
        if (it != applied.end()) return Fail("a refused op was applied: " + sub.id.ToString());
        if (!sub.discarded) {
          auto op = d.client->Get(sub.id);
          if (!op.ok() || op->state != OpState::kFailed || op->last_error.empty()) {
            return Fail("a refused op is not failed with a reason: " + sub.id.ToString());
          }
          ++result_.ops_failed;
        }
        continue;
      }
      if (it == applied.end()) {
        if (sub.discarded) continue;
        auto op = d.client->Get(sub.id);
        std::string state = !op.ok() ? op.status().ToString()
                                     : "state " + std::to_string(static_cast<int>(op->state)) + " counter " +
                                           std::to_string(op->device_counter) + " attempts " +
                                           std::to_string(op->attempts) + " error '" + op->last_error + "'";
        return Fail("op lost: " + sub.id.ToString() + " of " + d.name + " never applied (" + state +
                    ", retries " + std::to_string(sub.retries) + ")");
      }
      if (it->second.first != sub.stream) return Fail("op applied to the wrong stream");
      if (sub.retries > 0 || sub.discarded) continue;  // a retried op is ordered after its retry
      uint64_t& last = last_seq[sub.stream];
      if (it->second.second <= last) {
        return Fail("per-device order broken: " + d.name + " op " + sub.id.ToString() + " got seq " +
                    std::to_string(it->second.second) + " after seq " + std::to_string(last));
      }
      last = it->second.second;
    }
    auto outbox = d.client->Outbox(1'000'000);
    if (!outbox.ok()) return Fail("outbox: " + outbox.status().ToString());
    for (const OpInfo& op : *outbox) {
      if (op.state != OpState::kFailed) return Fail(d.name + " outbox still holds a pending op");
    }
  }
  return true;
}

SimResult Sim::Run() {
  env_.SetNowMs(kStartMs);
  const StorageBackend* backend = nullptr;
  const std::vector<StorageBackend> durable = DurableStorageBackends();
  if (!cfg_.device_backend.empty()) {
    for (const StorageBackend& b : durable) {
      if (b.name == cfg_.device_backend) backend = &b;
    }
    if (backend == nullptr) {
      Fail("no durable storage backend named '" + cfg_.device_backend + "'");
      return result_;
    }
  }
  if (!OpenServer()) return result_;
  for (int i = 0; i < cfg_.devices; ++i) {
    Device d;
    d.user = i < 2 ? "u0" : "u" + std::to_string(i - 1);
    d.name = "dev" + std::to_string(i);
    if (backend != nullptr) {
      // One directory per device, holding its store (a file or a directory, per backend).
      std::error_code ec;
      std::filesystem::create_directories(tmp_ / d.name, ec);
      if (ec) {
        Fail("cannot create " + (tmp_ / d.name).string() + ": " + ec.message());
        return result_;
      }
      d.store = backend->uri((tmp_ / d.name).string(), "sim-" + std::to_string(run_) + "-" + d.name);
    } else {
      d.store = "memory:sim-" + std::to_string(run_) + "-" + d.name;
    }
    devices_.push_back(std::move(d));
  }
  for (auto& d : devices_) {
    if (!OpenDevice(d, true)) return result_;
  }
  for (;;) {
    bool done = true;
    for (auto& d : devices_) done = done && d.submitted >= cfg_.ops_per_device;
    if (done) break;
    ++result_.ticks;
    env_.AdvanceMs(1 + static_cast<int64_t>(Rand(20)));
    for (auto& d : devices_) {
      if (!DeviceTick(d)) return result_;
    }
    server_->Step();
    if (Chance(cfg_.server_crash)) {
      Trace("server crash");
      server_.reset();
      ++result_.server_restarts;
      if (!OpenServer()) return result_;
    }
  }
  if (!Quiet() || !CheckFinal()) return result_;
  return result_;
}

}  // namespace

SimResult RunSim(const SimConfig& config) {
  Sim sim(config);
  return sim.Run();
}

}  // namespace outpost::sim
