// Copyright 2026 The Outpost Authors.
#include "sim.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "sim/sim_disk.h"

namespace outpost::sim {

namespace {

std::atomic<uint64_t> g_run{0};
constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();

// ---- the network between one device and the server, on top of WrapFaulty ----

// Shared by a device's dialer and its connections; outlives the device's Client.
struct LinkState {
  bool partitioned = false;  // no connect; every frame lost, both ways
  double ack_loss = 0;       // chance that a frame on its way to the device is lost
  std::mt19937_64 rng;
  SimDisk* disk = nullptr;  // a dead disk is a dead process: nothing it sends leaves
  bool Mute() const { return partitioned || (disk != nullptr && disk->Dead()); }
};

class SimConnection final : public Connection {
 public:
  SimConnection(std::unique_ptr<Connection> inner, std::shared_ptr<LinkState> link)
      : inner_(std::move(inner)), link_(std::move(link)) {}
  Status Send(std::string_view frame) override {
    if (link_->Mute()) return inner_->IsOpen() ? Status::OK() : Status::Unavailable("closed");
    return inner_->Send(frame);
  }
  bool Receive(std::string* frame) override {
    while (inner_->Receive(frame)) {
      if (link_->Mute()) continue;
      if (link_->ack_loss > 0 && std::uniform_real_distribution<double>(0, 1)(link_->rng) < link_->ack_loss)
        continue;
      return true;
    }
    return false;
  }
  bool IsOpen() const override { return inner_->IsOpen(); }
  void Close() override { inner_->Close(); }
  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }

 private:
  std::unique_ptr<Connection> inner_;
  std::shared_ptr<LinkState> link_;
};

class SimDialer final : public Dialer {
 public:
  SimDialer(std::unique_ptr<Dialer> inner, std::shared_ptr<LinkState> link)
      : inner_(std::move(inner)), link_(std::move(link)) {}
  Result<std::unique_ptr<Connection>> Connect() override {
    if (link_->partitioned) return Status::Unavailable("partitioned from the server");
    OUTPOST_ASSIGN_OR_RETURN(auto conn, inner_->Connect());
    return std::unique_ptr<Connection>(std::make_unique<SimConnection>(std::move(conn), link_));
  }

 private:
  std::unique_ptr<Dialer> inner_;
  std::shared_ptr<LinkState> link_;
};

// The server's listener: once its disk died (a crash in the middle of a step), no answer leaves.
class SimListener final : public Listener {
 public:
  SimListener(std::unique_ptr<Listener> inner, SimDisk* disk) : inner_(std::move(inner)), disk_(disk) {}
  bool Poll(ServerEvent* event) override { return inner_->Poll(event); }
  Status Send(ConnId conn, std::string_view frame) override {
    return disk_->Dead() ? Status::OK() : inner_->Send(conn, frame);
  }
  void CloseConnection(ConnId conn) override { inner_->CloseConnection(conn); }
  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }

 private:
  std::unique_ptr<Listener> inner_;
  SimDisk* disk_;
};

// A device's clock: the simulation's, off by a fixed skew (client clocks never decide order).
class SkewedEnv final : public Env {
 public:
  SkewedEnv(Env* base, int64_t skew_ms) : base_(base), skew_ms_(skew_ms) {}
  int64_t NowMs() override { return base_->NowMs() + skew_ms_; }
  void RandomBytes(void* out, size_t n) override { base_->RandomBytes(out, n); }

 private:
  Env* base_;
  const int64_t skew_ms_;
};

// ---- the simulation ----

struct Submitted {
  OpId id;
  std::string stream;
  bool bad = false;        // the server refuses it permanently
  bool discarded = false;  // the user gave up on it
  bool lost = false;       // its submit was undone by a power loss before it was synced
  int retries = 0;         // also counts undone discards: either may move the op after later ones
  uint64_t mark = 0;       // the disk's commit count when Submit returned: durable once synced past it
  uint64_t discard_mark = 0;
};

struct Device {
  std::string user, name, store;
  std::unique_ptr<SimDisk> disk;  // null for durable backends
  std::unique_ptr<SkewedEnv> env;
  std::shared_ptr<LinkState> link;
  std::unique_ptr<Client> client;
  int submitted = 0;
  int64_t partitioned_until = 0;
  std::vector<Submitted> subs;
  std::map<OpId, OpState> seen;            // last observed state of each own op
  std::map<std::string, uint64_t> cursor;  // last observed cursor of each stream
  std::map<std::string, uint64_t> read;    // last MarkRead of each stream
  // Last observed watermark per (stream, user, device, kind).
  std::map<std::tuple<std::string, std::string, std::string, int>, uint64_t> watermarks;
};

class Sim {
 public:
  Sim(const SimConfig& c, const SimOptions& o)
      : cfg_(c), opt_(o), env_(c.seed), rng_(c.seed * 0x9E3779B97F4A7C15ULL + 7), run_(g_run++) {
    net_ = "inproc:sim-" + std::to_string(run_);
    tmp_ = std::filesystem::temp_directory_path() /
           ("outpost-sim-" + std::to_string(::getpid()) + "-" + std::to_string(run_));
    for (int s = 0; s < cfg_.streams; ++s) streams_.push_back("s" + std::to_string(s));
  }
  ~Sim() {
    for (auto& d : devices_) d.client.reset();
    server_.reset();
    if (!cfg_.device_backend.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_, ec);
    }
  }

  SimResult Run();

 private:
  bool Chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  int64_t Now() { return env_.NowMs() - kStartMs; }
  void Trace(std::string line) {
    line = "t=" + std::to_string(Now()) + " " + line;
    if (opt_.full_trace) result_.trace += line + "\n";
    trace_.push_back(std::move(line));
    if (trace_.size() > 60) trace_.pop_front();
  }
  bool Fail(std::string why) {
    if (result_.ok) {
      result_.ok = false;
      std::ostringstream out;
      out << "seed " << cfg_.seed << " (profile " << cfg_.profile << "): " << why
          << "\n  replay: tools/sim --seed " << cfg_.seed << " --profile " << cfg_.profile
          << "\n  last events:\n";
      for (const auto& t : trace_) out << "    " << t << "\n";
      result_.failure = out.str();
    }
    return false;
  }
  bool MakeDevices(const StorageBackend* backend);
  bool OpenServer();
  bool CrashServer(const char* how);
  bool OpenDevice(Device& d, bool faulty, uint64_t durable = kAll);
  bool CrashDevice(Device& d, const std::string& how, bool power_loss);
  bool DeviceTick(Device& d);
  bool Observe(Device& d, bool watermarks);
  bool HandleFailed(Device& d, bool quiet);
  void Partitions();
  bool Quiet();
  bool MarkReadAll(bool* marked);
  std::string WatermarksMissing();
  bool CheckFinal();

  static constexpr int64_t kStartMs = 1'800'000'000'000;
  SimConfig cfg_;
  SimOptions opt_;
  ManualEnv env_;
  std::mt19937_64 rng_;
  uint64_t run_;
  std::string net_;
  std::filesystem::path tmp_;
  std::vector<std::string> streams_;
  std::unique_ptr<SimDisk> server_disk_;
  std::unique_ptr<Server> server_;
  std::vector<Device> devices_;
  std::deque<std::string> trace_;
  uint64_t retries_ = 0;  // Retry calls made
  SimResult result_;
};

bool Sim::OpenServer() {
  if (server_disk_ == nullptr) server_disk_ = std::make_unique<SimDisk>("sim-server-" + std::to_string(run_));
  ServerOptions so;
  so.store = "memory:";
  so.open_store = server_disk_->Opener();
  so.store_sync = true;  // an ack promises durability: the server must sync (so power losses undo nothing)
  so.env = &env_;
  so.authorize = [](const AccessRequest& req) {
    if (req.access == Access::kPush && req.payload.starts_with("BAD")) {
      return Status::InvalidArgument("payload refused by the server");
    }
    return Status::OK();
  };
  auto listener = Listen(net_);
  if (!listener.ok()) return Fail("listen: " + listener.status().ToString());
  auto server = Server::Open(std::move(so),
                             std::make_unique<SimListener>(std::move(listener).value(), server_disk_.get()));
  if (!server.ok()) return Fail("server open: " + server.status().ToString());
  server_ = std::move(server).value();
  return true;
}

// The server dies (its process and, each time, the machine's power): a synced store loses nothing.
bool Sim::CrashServer(const char* how) {
  server_.reset();
  server_disk_->Revive();
  const size_t unsynced = server_disk_->unsynced();
  auto undone = server_disk_->PowerLoss(Rand(unsynced + 1));
  if (!undone.ok()) return Fail("server power loss: " + undone.status().ToString());
  if (*undone > 0)
    return Fail("the server's store lost " + std::to_string(*undone) + " acknowledged commits");
  Trace(std::string("server crash ") + how);
  ++result_.server_restarts;
  return OpenServer();
}

bool Sim::OpenDevice(Device& d, bool faulty, uint64_t durable) {
  ClientOptions o;
  o.store = d.store;
  o.store_sync = d.disk ? cfg_.device_store_sync : false;
  if (d.disk) o.open_store = d.disk->Opener();
  auto dialer = NewDialer(net_);
  if (!dialer.ok()) return Fail("dialer: " + dialer.status().ToString());
  d.link = std::make_shared<LinkState>();
  d.link->rng.seed(rng_());
  d.link->disk = d.disk.get();
  if (faulty) {
    d.link->ack_loss = cfg_.ack_loss;
    d.link->partitioned = d.partitioned_until > Now();
    o.dialer = std::make_shared<SimDialer>(WrapFaulty(std::move(dialer).value(), cfg_.faults, &env_, rng_()),
                                           d.link);
  } else {
    d.partitioned_until = 0;
    o.dialer = std::make_shared<SimDialer>(std::move(dialer).value(), d.link);
  }
  o.user = d.user;
  o.device = d.name;
  o.env = d.env.get();
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
  // Durable before visible: every op whose Submit returned survives a crash, and a power loss too once
  // the store synced past it. A submit or a discard that was not synced may be undone.
  for (auto& sub : d.subs) {
    if (sub.lost) continue;
    auto op = d.client->Get(sub.id);
    if (sub.discarded) {
      if (op.ok() && sub.discard_mark > durable && op->state != OpState::kSent) {
        Trace(d.name + " discard undone " + sub.id.ToString());
        sub.discarded = false;
        ++sub.retries;
      }
      continue;
    }
    if (op.ok()) continue;
    if (!op.status().IsNotFound() || sub.mark <= durable)
      return Fail(d.name + " lost op " + sub.id.ToString() + " across a restart: " + op.status().ToString());
    sub.lost = true;
    ++result_.ops_lost_to_power;
    Trace(d.name + " lost unsynced submit " + sub.id.ToString());
  }
  return true;
}

// kill -9 of the device's process, or a power loss that also undoes what its store had not synced.
// Either way the device's observations start over: a power loss may move cursors and states back.
bool Sim::CrashDevice(Device& d, const std::string& how, bool power_loss) {
  d.client.reset();  // no shutdown: in-flight batches and unsent frames are simply gone
  ++result_.device_restarts;
  uint64_t durable = kAll;
  if (d.disk) {
    d.disk->Revive();
    if (power_loss) {
      durable = d.disk->durable_commits();
      auto undone = d.disk->PowerLoss(Rand(d.disk->unsynced() + 1));
      if (!undone.ok()) return Fail("power loss: " + undone.status().ToString());
      ++result_.power_losses;
      Trace(d.name + " power loss, " + std::to_string(*undone) + " unsynced commits undone");
      d.seen.clear();
      d.cursor.clear();
      d.watermarks.clear();
      d.read.clear();
    }
  }
  if (!power_loss) Trace(d.name + " " + how);
  return OpenDevice(d, true, durable);
}

bool Sim::Observe(Device& d, bool watermarks) {
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
    if (sub.discarded || sub.lost) continue;
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
  // Watermarks (delivered and read receipts) never move back, as this device sees them.
  if (watermarks) {
    const std::string& s = streams_[Rand(streams_.size())];
    auto wms = d.client->Watermarks(s);
    if (!wms.ok()) return Fail("watermarks: " + wms.status().ToString());
    for (const Watermark& w : *wms) {
      uint64_t& last = d.watermarks[{s, w.user, w.device, static_cast<int>(w.kind)}];
      if (w.seq < last)
        return Fail(d.name + " sees the " + (w.kind == WatermarkKind::kRead ? "read" : "delivered") +
                    " watermark of " + w.device + " on " + s + " move back " + std::to_string(last) + " -> " +
                    std::to_string(w.seq));
      last = w.seq;
    }
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
      sub->discard_mark = d.disk ? d.disk->commits() : 0;
      d.seen.erase(op.op_id);
      Trace(d.name + " discard " + op.op_id.ToString());
    } else if (!refused || (sub->retries < 2 && !quiet)) {
      Status st = d.client->Retry(op.op_id);
      if (!st.ok()) return Fail("retry: " + st.ToString());
      ++sub->retries;
      ++retries_;
      d.seen.erase(op.op_id);
      Trace(d.name + " retry " + op.op_id.ToString() + " (" + op.last_error + ")");
    }
  }
  return true;
}

bool Sim::DeviceTick(Device& d) {
  if (d.submitted < cfg_.ops_per_device && Chance(cfg_.submit)) {
    int n = 1 + static_cast<int>(Rand(3));
    for (int i = 0; i < n && d.submitted < cfg_.ops_per_device; ++i) {
      Submitted sub;
      sub.stream = streams_[Rand(streams_.size())];
      sub.bad = Chance(cfg_.reject);
      std::string payload = (sub.bad ? "BAD " : "") + d.name + "#" + std::to_string(d.submitted);
      auto id = d.client->Submit(sub.stream, "text", payload);
      if (!id.ok()) return Fail("submit: " + id.status().ToString());
      sub.id = *id;
      sub.mark = d.disk ? d.disk->commits() : 0;
      d.subs.push_back(sub);
      ++d.submitted;
      ++result_.ops_submitted;
      Trace(d.name + " submit " + sub.stream + " " + payload + " " + sub.id.ToString());
    }
  }
  if (Chance(cfg_.mark_read)) {
    const std::string& s = streams_[Rand(streams_.size())];
    Status st = d.client->MarkRead(s, d.cursor[s]);
    if (!st.ok()) return Fail("mark read: " + st.ToString());
  }
  // A crash in the middle of the step: the disk dies at one of its next commits, and with it the process.
  const bool armed = d.disk != nullptr && Chance(cfg_.device_crash_in_step);
  if (armed) d.disk->DieAfter(Rand(4));
  Status st = d.client->Step();
  if (armed && d.disk->Dead()) return CrashDevice(d, "crash in the middle of a step", false);
  if (armed) d.disk->Disarm();
  if (!st.ok()) return Fail("step: " + st.ToString());
  if (!Observe(d, Chance(0.1))) return false;
  if (Chance(0.02) && !HandleFailed(d, false)) return false;
  if (d.disk && !cfg_.device_store_sync && Chance(0.05)) d.disk->Background(Rand(d.disk->unsynced() + 1));
  if (Chance(cfg_.device_crash)) return CrashDevice(d, "crash", false);
  if (d.disk && Chance(cfg_.device_power_loss)) return CrashDevice(d, "power loss", true);
  return true;
}

void Sim::Partitions() {
  for (auto& d : devices_) {
    if (d.link->partitioned && d.partitioned_until <= Now()) {
      d.link->partitioned = false;
      Trace(d.name + " partition healed");
    }
  }
  if (!Chance(cfg_.partition)) return;
  std::string who;
  const int64_t until = Now() + 1 + static_cast<int64_t>(Rand(static_cast<uint64_t>(cfg_.partition_ms_max)));
  const size_t forced = Rand(devices_.size());  // at least one device
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (i != forced && !Chance(0.4)) continue;
    devices_[i].partitioned_until = std::max(devices_[i].partitioned_until, until);
    devices_[i].link->partitioned = true;
    who += " " + devices_[i].name;
  }
  ++result_.partitions;
  Trace("partition until t=" + std::to_string(until) + ":" + who);
}

// Each device reads every stream up to its cursor once the quiet phase is idle; true in `marked` when any
// read watermark had to move.
bool Sim::MarkReadAll(bool* marked) {
  *marked = false;
  for (auto& d : devices_) {
    for (const auto& s : streams_) {
      auto c = d.client->Cursor(s);
      if (!c.ok()) return Fail("cursor: " + c.status().ToString());
      if (*c == 0 || d.read[s] >= *c) continue;
      Status st = d.client->MarkRead(s, *c);
      if (!st.ok()) return Fail("mark read: " + st.ToString());
      d.read[s] = *c;
      *marked = true;
    }
  }
  return true;
}

// What is missing for every device to see every other device's delivered and read watermark at the end
// of every stream; empty when nothing is.
std::string Sim::WatermarksMissing() {
  for (auto& a : devices_) {
    for (const auto& s : streams_) {
      auto high = devices_[0].client->Cursor(s);
      auto wms = a.client->Watermarks(s);
      if (!high.ok() || !wms.ok()) return "cannot read watermarks or cursors";
      if (*high == 0) continue;
      std::map<std::pair<std::string, int>, uint64_t> got;
      for (const Watermark& w : *wms) got[{w.device, static_cast<int>(w.kind)}] = w.seq;
      for (auto& b : devices_) {
        if (&a == &b) continue;
        for (int kind : {0, 1}) {
          const uint64_t seq = got[{b.name, kind}];
          if (seq != *high) {
            return a.name + " sees " + (kind == 0 ? "delivered" : "read") + " watermark " +
                   std::to_string(seq) + " of " + b.name + " on " + s + ", stream high " +
                   std::to_string(*high);
          }
        }
      }
    }
  }
  return {};
}

bool Sim::Quiet() {
  // The network heals, every device restarts once more, and whatever failed for lack of answers is
  // retried. A device that never took part joins to read every stream from the start.
  Trace("quiet phase");
  for (auto& d : devices_) {
    d.client.reset();
    d.link->partitioned = false;
    if (!OpenDevice(d, false)) return false;
    if (!HandleFailed(d, true)) return false;
  }
  {
    Device auditor;
    auditor.user = "audit";
    auditor.name = "auditor";
    auditor.disk = std::make_unique<SimDisk>("sim-" + std::to_string(run_) + "-auditor");
    auditor.store = "memory:";
    auditor.env = std::make_unique<SkewedEnv>(&env_, -86'400'000);  // a day slow
    devices_.push_back(std::move(auditor));
    if (!OpenDevice(devices_.back(), false)) return false;
  }
  int idle_rounds = 0;
  std::string missing;
  for (int t = 0; t < cfg_.quiet_ticks_max; ++t) {
    env_.AdvanceMs(10);
    for (auto& d : devices_) {
      Status st = d.client->Step();
      if (!st.ok()) return Fail("step: " + st.ToString());
      if (!Observe(d, t % 10 == 0)) return false;
      // An op already at attempts_max fails at its first send here: the user retries it too.
      if (t % 20 == 0 && !HandleFailed(d, true)) return false;
    }
    server_->Step();
    bool idle = true;
    for (auto& d : devices_) idle = idle && d.client->IsIdle();
    idle_rounds = idle ? idle_rounds + 1 : 0;
    if (idle_rounds < 5) continue;
    // Ops that failed since the last look (exhausted at their first send here) are retried first.
    const uint64_t retried = retries_;
    for (auto& d : devices_) {
      if (!HandleFailed(d, true)) return false;
    }
    if (retries_ != retried) {
      idle_rounds = 0;
      continue;
    }
    bool marked = false;
    if (!MarkReadAll(&marked)) return false;
    if (marked) {
      idle_rounds = 0;
      continue;
    }
    missing = WatermarksMissing();
    if (missing.empty()) return true;
  }
  std::string why = "no convergence after the quiet phase:";
  if (!missing.empty()) why += " " + missing + ";";
  if (opt_.full_trace) {  // every device's cursor and watermarks (device/kind=seq), for tools/sim --seed
    for (auto& d : devices_) {
      for (const auto& s : streams_) {
        auto cursor = d.client->Cursor(s);
        auto wms = d.client->Watermarks(s);
        if (!cursor.ok() || !wms.ok()) continue;
        why += "\n  " + d.name + " " + s + " cursor " + std::to_string(*cursor) + " watermarks:";
        for (const auto& w : *wms) {
          why += " " + w.device + (w.kind == WatermarkKind::kRead ? "/read=" : "/delivered=") +
                 std::to_string(w.seq);
        }
      }
    }
  }
  for (auto& d : devices_) {
    ClientStats s = d.client->Stats();
    why += " " + d.name + "{connected=" + std::to_string(s.connected) +
           " outbox=" + std::to_string(s.outbox_depth) + " failed=" + std::to_string(s.failed) +
           " err=" + s.last_connection_error + "}";
  }
  return Fail(why);
}

bool Sim::CheckFinal() {
  // The server is honest and the faulty network drops, repeats and reorders but never alters: no device may
  // have judged a frame malformed (undecodable, or a page with an unsound op) since it last started.
  for (auto& d : devices_) {
    const uint64_t bad = d.client->Stats().bad_frames;
    if (bad != 0)
      return Fail(d.name + " counted " + std::to_string(bad) + " bad frames from an honest server");
  }
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
    std::map<std::string, std::pair<uint64_t, OpId>> last_seq;  // stream -> seq and id of the last op
    for (const Submitted& sub : d.subs) {
      auto it = applied.find(sub.id);
      if (sub.bad) {
        if (it != applied.end()) return Fail("a refused op was applied: " + sub.id.ToString());
        if (!sub.discarded && !sub.lost) {
          auto op = d.client->Get(sub.id);
          if (!op.ok() || op->state != OpState::kFailed || op->last_error.empty()) {
            return Fail("a refused op is not failed with a reason: " + sub.id.ToString());
          }
          ++result_.ops_failed;
        }
        continue;
      }
      if (it == applied.end()) {
        if (sub.discarded || sub.lost) continue;
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
      auto& [last, last_id] = last_seq[sub.stream];
      if (it->second.second <= last) {
        auto counter = [&](const OpId& id) {
          auto op = d.client->Get(id);
          return op.ok() ? std::to_string(op->device_counter) : op.status().ToString();
        };
        return Fail("per-device order broken: " + d.name + " op " + sub.id.ToString() + " (counter " +
                    counter(sub.id) + ") got seq " + std::to_string(it->second.second) + " after op " +
                    last_id.ToString() + " (counter " + counter(last_id) + ") got seq " +
                    std::to_string(last));
      }
      last = it->second.second;
      last_id = sub.id;
    }
    auto outbox = d.client->Outbox(1'000'000);
    if (!outbox.ok()) return Fail("outbox: " + outbox.status().ToString());
    for (const OpInfo& op : *outbox) {
      if (op.state != OpState::kFailed) return Fail(d.name + " outbox still holds a pending op");
    }
  }
  return true;
}

bool Sim::MakeDevices(const StorageBackend* backend) {
  for (int i = 0; i < cfg_.devices; ++i) {
    Device d;
    d.user = "u" + std::to_string(i % std::max(1, cfg_.users));
    d.name = "dev" + std::to_string(i);
    // Up to an hour fast or slow; device 0 keeps the true time.
    d.env =
        std::make_unique<SkewedEnv>(&env_, i == 0 ? 0 : static_cast<int64_t>(Rand(7'200'001)) - 3'600'000);
    if (backend != nullptr) {
      // One directory per device, holding its store (a file or a directory, per backend).
      std::error_code ec;
      std::filesystem::create_directories(tmp_ / d.name, ec);
      if (ec) return Fail("cannot create " + (tmp_ / d.name).string() + ": " + ec.message());
      d.store = backend->uri((tmp_ / d.name).string(), "sim-" + std::to_string(run_) + "-" + d.name);
    } else {
      d.store = "memory:";
      d.disk = std::make_unique<SimDisk>("sim-" + std::to_string(run_) + "-" + d.name);
    }
    devices_.push_back(std::move(d));
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
  if (!OpenServer() || !MakeDevices(backend)) return result_;
  for (auto& d : devices_) {
    if (!OpenDevice(d, true)) return result_;
  }
  for (;;) {
    bool done = true;
    for (auto& d : devices_) done = done && d.submitted >= cfg_.ops_per_device;
    if (done) break;
    ++result_.ticks;
    env_.AdvanceMs(1 + static_cast<int64_t>(Rand(20)));
    Partitions();
    for (auto& d : devices_) {
      if (!DeviceTick(d)) return result_;
    }
    const bool armed = Chance(cfg_.server_crash_in_step);
    // At the group commit (nothing of the group is stored, nothing answered) or just after it (stored,
    // the answers lost).
    if (armed) server_disk_->DieAfter(Rand(2));
    server_->Step();
    if (armed && server_disk_->Dead()) {
      if (!CrashServer("in the middle of a step")) return result_;
    } else {
      if (armed) server_disk_->Disarm();
      if (Chance(cfg_.server_crash) && !CrashServer("between steps")) return result_;
    }
  }
  if (!Quiet() || !CheckFinal()) return result_;
  return result_;
}

}  // namespace

namespace {

struct NamedProfile {
  const char* name;
  void (*apply)(SimConfig&);
};

constexpr FaultOptions kHeavyFaults{
    .drop = 0.3, .duplicate = 0.1, .delay = 0.3, .delay_ms_max = 2000, .disconnect = 0.01};

// Device stores in files, killed often, under heavy loss and server crashes.
void DurableHeavy(SimConfig& c, const char* backend) {
  c.device_backend = backend;
  c.device_crash = 0.005;
  c.faults = kHeavyFaults;
  c.server_crash = 0.005;
  c.attempts_max = 5;
}

const std::vector<NamedProfile>& Profiles() {
  static const std::vector<NamedProfile> profiles = {
      {"default", [](SimConfig&) {}},
      // Small attempts_max under heavy loss: ops fail as exhausted, are skipped and retried.
      {"exhausted",
       [](SimConfig& c) {
         c.attempts_max = 3;
         c.faults.drop = 0.25;
       }},
      {"heavy",
       [](SimConfig& c) {
         c.faults = kHeavyFaults;
         c.ack_loss = 0.1;
         c.server_crash = 0.005;
         c.server_crash_in_step = 0.005;
       }},
      // Devices without sync: power losses undo their last commits (submits, acks, merges, discards).
      {"power",
       [](SimConfig& c) {
         c.device_store_sync = false;
         c.device_power_loss = 0.004;
         c.server_crash_in_step = 0.002;
       }},
      // Devices with sync: a power loss must undo nothing.
      {"power-sync", [](SimConfig& c) { c.device_power_loss = 0.004; }},
      {"partition",
       [](SimConfig& c) {
         c.partition = 0.01;
         c.partition_ms_max = 8000;
         c.ack_loss = 0.05;
       }},
      // Many devices per user, more streams, fewer ops each.
      {"crowd",
       [](SimConfig& c) {
         c.devices = 12;
         c.users = 4;
         c.streams = 3;
         c.ops_per_device = 16;
       }},
      // Device stores in files (storage_backends.h), killed often.
      {"durable-Lmdb", [](SimConfig& c) { c.device_backend = "Lmdb", c.device_crash = 0.01; }},
      {"durable-Sqlite", [](SimConfig& c) { c.device_backend = "Sqlite", c.device_crash = 0.01; }},
      {"durable-Rocksdb", [](SimConfig& c) { c.device_backend = "Rocksdb", c.device_crash = 0.01; }},
      {"durable-heavy-Lmdb", [](SimConfig& c) { DurableHeavy(c, "Lmdb"); }},
      {"durable-heavy-Sqlite", [](SimConfig& c) { DurableHeavy(c, "Sqlite"); }},
      {"durable-heavy-Rocksdb", [](SimConfig& c) { DurableHeavy(c, "Rocksdb"); }},
  };
  return profiles;
}

}  // namespace

SimConfig Profile(std::string_view name) {
  SimConfig c;
  c.profile = std::string(name);
  for (const auto& p : Profiles()) {
    if (name == p.name) p.apply(c);
  }
  return c;
}

bool KnownProfile(std::string_view name) {
  for (const auto& p : Profiles()) {
    if (name == p.name) return true;
  }
  return false;
}

std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (const auto& p : Profiles()) names.emplace_back(p.name);
  return names;
}

SimResult RunSim(const SimConfig& config, const SimOptions& options) {
  Sim sim(config, options);
  return sim.Run();
}

}  // namespace outpost::sim
