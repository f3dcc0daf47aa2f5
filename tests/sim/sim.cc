// Copyright 2026 The Outpost Authors.
#include "sim.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "conformance/storage_backends.h"
#include "media/common/digest.h"
#include "media/inproc/inproc_media_transport.h"
#include "outpost/blob_store.h"
#include "outpost/client.h"
#include "outpost/membership.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "outpost/wire_generated.h"
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

// The server's listener: once its disk died (a crash in the middle of a step), no answer leaves. `on_poll`
// sees every event the server takes and `on_send` every frame that leaves (either may be empty).
class SimListener final : public Listener {
 public:
  SimListener(std::unique_ptr<Listener> inner, SimDisk* disk,
              std::function<void(const ServerEvent&)> on_poll = {},
              std::function<void(ConnId, std::string_view)> on_send = {})
      : inner_(std::move(inner)), disk_(disk), on_poll_(std::move(on_poll)), on_send_(std::move(on_send)) {}
  bool Poll(ServerEvent* event) override {
    if (!inner_->Poll(event)) return false;
    if (on_poll_) on_poll_(*event);
    return true;
  }
  Status Send(ConnId conn, std::string_view frame) override {
    if (disk_->Dead()) return Status::OK();
    Status st = inner_->Send(conn, frame);
    if (st.ok() && on_send_) on_send_(conn, frame);
    return st;
  }
  void CloseConnection(ConnId conn) override { inner_->CloseConnection(conn); }
  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }

 private:
  std::unique_ptr<Listener> inner_;
  SimDisk* disk_;
  std::function<void(const ServerEvent&)> on_poll_;
  std::function<void(ConnId, std::string_view)> on_send_;
};

// A frame as the wire defines it; nullptr when it does not verify.
const wire::Frame* DecodeFrame(std::string_view bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!wire::VerifyFrameBuffer(verifier)) return nullptr;
  return wire::GetFrame(bytes.data());
}

std::string Str(const flatbuffers::String* s) { return s == nullptr ? std::string() : s->str(); }

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

// ---- what each device reported about its own ops ----

// One entry of an own op's history: a state the device reported (its change callbacks read the op at each
// event, so every commit that changed it is seen), or what the user or the simulation did to it.
struct Seen {
  // kRestore: the server was restored from an earlier copy (the op may have been lost by the server).
  enum class What : uint8_t { kState, kRetry, kDiscard, kCrash, kPowerLoss, kRestore };
  What what = What::kState;
  OpState state = OpState::kPending;
  uint64_t seq = 0;                       // sent
  Status::Code code = Status::Code::kOk;  // failed: the reason's code
  uint64_t counter = 0;                   // failed: 0 once the device gave the op up (its counter released)
  std::string error;                      // failed: the reason
};

Seen SeenOf(const OpInfo& op) {
  Seen s;
  s.state = op.state;
  if (op.state == OpState::kSent) s.seq = op.seq;
  if (op.state == OpState::kFailed) {
    s.code = op.last_error_code;
    s.counter = op.device_counter;
    s.error = op.last_error;
  }
  return s;
}

bool SameState(const Seen& a, const Seen& b) {
  return a.what == Seen::What::kState && b.what == Seen::What::kState && a.state == b.state &&
         a.seq == b.seq && a.code == b.code && a.counter == b.counter && a.error == b.error;
}

std::string Describe(const Seen& s) {
  switch (s.what) {
    case Seen::What::kRetry:
      return "retry";
    case Seen::What::kDiscard:
      return "discard";
    case Seen::What::kCrash:
      return "crash";
    case Seen::What::kPowerLoss:
      return "power loss";
    case Seen::What::kRestore:
      return "server restored";
    case Seen::What::kState:
      break;
  }
  if (s.state == OpState::kPending) return "pending";
  if (s.state == OpState::kSent) return "sent@" + std::to_string(s.seq);
  return "failed(" + std::string(Status::CodeName(s.code)) + ", counter " + std::to_string(s.counter) + ": " +
         s.error + ")";
}

std::string Describe(const std::vector<Seen>& history) {
  std::string out;
  for (const Seen& s : history) out += (out.empty() ? "" : " -> ") + Describe(s);
  return out;
}

// Empty when every transition of `history` is one the design allows (DESIGN.md invariant 7): pending ->
// sent; pending -> failed, with a reason; failed -> pending only by Retry; failed -> sent only when the
// server turns out to have applied an op the device had given up on (exhausted: a Timeout whose counter was
// released), never after a permanent rejection; sent is final, at one seq. A power loss on a device
// without sync may undo commits, so the states after it are checked afresh; when it undid a retry, the
// rejection the device shows again may be one the server's later verdict (applied) replaced. Without
// `give_ups` (attempts_max and age_ms_max unlimited) only the server fails an op: a transient trouble (no
// answer, Busy) is retried, never a failure. The loss rule (docs/lifecycle.md): once per restore of the
// server seen before it, an op may leave sent, since the server that applied it may have lost it: back to
// pending (sent again under its op id), or at once to another seq or to failed (refused when sent again:
// membership changed back) when the device's commits came faster than its change callbacks.
std::string CheckHistory(const std::vector<Seen>& history, bool give_ups) {
  if (history.empty()) return {};
  if (history.front().what != Seen::What::kState || history.front().state != OpState::kPending)
    return "the first state seen is not pending";
  const Seen* last = nullptr;  // the last state since the submit or the last power loss
  bool retried = false;        // a Retry since `last`
  bool ever_retried = false;   // a Retry before now
  bool retry_undone = false;   // a power loss after a Retry
  int restores = 0;            // restores of the server not yet used to leave sent
  for (const Seen& now : history) {
    switch (now.what) {
      case Seen::What::kRestore:
        ++restores;
        continue;
      case Seen::What::kPowerLoss:
        last = nullptr;
        retried = false;
        retry_undone = retry_undone || ever_retried;
        continue;
      case Seen::What::kRetry:
        if (last != nullptr && last->state != OpState::kFailed) return "retry of an op that is not failed";
        retried = true;
        ever_retried = true;
        continue;
      case Seen::What::kDiscard:
      case Seen::What::kCrash:
        continue;
      case Seen::What::kState:
        break;
    }
    if (now.state == OpState::kFailed && now.error.empty()) return "failed without a reason";
    if (now.state == OpState::kFailed && !give_ups &&
        (now.counter == 0 ||
         (now.code != Status::Code::kInvalidArgument && now.code != Status::Code::kPermissionDenied))) {
      return "failed though attempts are unlimited and the server refused nothing: " + Describe(now);
    }
    if (last != nullptr && !SameState(*last, now)) {
      const std::string step = Describe(*last) + " -> " + Describe(now);
      switch (last->state) {
        case OpState::kSent:
          if (restores > 0) {  // the loss rule: the restored server lost it
            --restores;
            if (now.state == OpState::kFailed &&
                (now.code != Status::Code::kPermissionDenied || now.counter == 0)) {
              return "left sent after a restore to fail for another reason than a refusal: " + step;
            }
            break;
          }
          return now.state == OpState::kSent ? "a sent op moved: " + step : "an op left sent: " + step;
        case OpState::kPending:
          break;  // to sent or failed
        case OpState::kFailed:
          if (now.state == OpState::kPending && !retried) return "failed -> pending without a retry";
          if (now.state == OpState::kFailed) {
            return (retried ? "failed again, not pending after its retry: "
                            : "failed again without a retry: ") +
                   step;
          }
          if (now.state == OpState::kSent && !retried && !retry_undone &&
              (last->counter != 0 || last->code != Status::Code::kTimeout)) {
            return "failed -> sent after a permanent rejection: " + step;
          }
          break;
      }
    }
    last = &now;
    retried = false;
  }
  return {};
}

// Every own op's history, written by the device's change callback (which may run on the client's commit
// thread while the simulation waits in Submit) and read by the simulation. Outlives the Client.
struct OpHistory {
  std::mutex mu;
  std::map<OpId, std::vector<Seen>> ops;
  std::set<OpId> dirty;  // changed since the last check
  // Ops a rebase took out of the view (a sent op removed: the server no longer vouched for it), by stream.
  std::map<OpId, std::string> set_aside;
  // The first event whose fields disagree with the op it names, or a connection event out of order.
  std::string event_error;
  void EventError(std::string why) {
    std::lock_guard<std::mutex> lock(mu);
    if (event_error.empty()) event_error = std::move(why);
  }
  void Add(const OpId& id, Seen s) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Seen>& h = ops[id];
    if (!h.empty() && SameState(h.back(), s)) return;
    h.push_back(std::move(s));
    dirty.insert(id);
  }
  void Mark(const OpId& id, Seen::What what) {
    Seen s;
    s.what = what;
    Add(id, std::move(s));
  }
  void MarkAll(Seen::What what) {
    std::vector<OpId> ids;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [id, h] : ops) ids.push_back(id);
    }
    for (const OpId& id : ids) Mark(id, what);
  }
};

// ---- membership, as the server's applied ops tell it ----

// A stream's applied ops replayed in seq order under the server's rules (outpost/membership.h).
struct MemberReplay {
  std::set<std::string> members;            // at the end
  std::map<std::string, uint64_t> removed;  // user -> seq of the members op that last removed them
  // user -> the joined/left kinds the user's feed must show for this stream, in order
  std::map<std::string, std::vector<std::string>> feed;
  uint64_t changes = 0;  // members ops
  std::string error;     // an op the server should have refused; empty when none
};

MemberReplay ReplayMembers(const std::vector<OpInfo>& ops) {
  MemberReplay r;
  bool exists = false;
  for (const OpInfo& op : ops) {
    const std::string what =
        "seq " + std::to_string(op.seq) + " (" + op.kind + " by " + op.user + "/" + op.device + ")";
    if (op.kind == kJoinedKind || op.kind == kLeftKind) {
      r.error = what + ": a device's op of a kind only the server writes";
      return r;
    }
    if (op.kind != kMembersKind) {
      if (!exists) r.error = what + ": applied before the stream existed";
      if (exists && !r.members.contains(op.user)) r.error = what + ": applied while its user was no member";
      if (!r.error.empty()) return r;
      continue;
    }
    if (exists && !r.members.contains(op.user)) {
      r.error = what + ": a member list changed by a user who was no member";
      return r;
    }
    std::vector<std::string> list = DecodeMembers(op.payload);
    std::set<std::string> now(list.begin(), list.end());
    if (!exists) now.insert(op.user);  // the author of a new stream is always a member
    for (const auto& u : r.members) {
      if (now.contains(u)) continue;
      r.feed[u].emplace_back(kLeftKind);
      r.removed[u] = op.seq;
    }
    for (const auto& u : now) {
      if (!r.members.contains(u)) r.feed[u].emplace_back(kJoinedKind);
    }
    r.members = std::move(now);
    exists = true;
    ++r.changes;
  }
  return r;
}

// Whether two views hold the same ops at the same seqs.
bool SameOps(const std::vector<OpInfo>& a, const std::vector<OpInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].op_id != b[i].op_id || a[i].seq != b[i].seq) return false;
  }
  return true;
}

// ---- the simulation ----

struct Submitted {
  OpId id;
  std::string stream;
  std::string kind;
  bool bad = false;        // the server refuses it permanently
  bool discarded = false;  // the user gave up on it
  bool lost = false;       // its submit was undone by a power loss before it was synced
  int retries = 0;         // also counts undone discards: either may move the op after later ones
  uint64_t mark = 0;       // the disk's commit count when Submit returned: durable once synced past it
  uint64_t discard_mark = 0;
  std::string file_sha256;  // with an attachment: its bytes' sha256 (hex)
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
  std::shared_ptr<OpHistory> history = std::make_shared<OpHistory>();
  std::map<std::string, uint64_t> cursor;  // last observed cursor of each stream
  std::map<std::string, uint64_t> read;    // last MarkRead of each stream
  // Last observed watermark per (stream, user, device, kind).
  std::map<std::tuple<std::string, std::string, std::string, int>, uint64_t> watermarks;
  // How often each cursor (by stream) and each watermark (by its key above) moved down: at most once per
  // restore of the server (a rebase brings them down to what the restored server vouches for).
  std::map<std::string, int> cursor_drops;
  uint64_t connects_seen = 0, rebases_seen = 0;  // ClientStats last traced
  std::map<std::tuple<std::string, std::string, std::string, int>, int> watermark_drops;
  // Membership: the user's feed, how far this device has read it, what it says of each stream (the user
  // is a member: true), and whether the device follows every stream at open (else only what its feed
  // names: both paths to a stream must work).
  std::string feed;
  uint64_t feed_read = 0;
  std::map<std::string, bool> member;
  bool follow_all = true;
  // The engine follows what the feed names (ClientOptions::follow_memberships), not ReadFeed.
  bool engine_follows = false;
};

class Sim {
 public:
  Sim(const SimConfig& c, const SimOptions& o)
      : cfg_(c), opt_(o), env_(c.seed), rng_(c.seed * 0x9E3779B97F4A7C15ULL + 7), run_(g_run++) {
    net_ = "inproc:sim-" + std::to_string(run_);
    tmp_ = std::filesystem::temp_directory_path() /
           ("outpost-sim-" + std::to_string(::getpid()) + "-" + std::to_string(run_));
    for (int s = 0; s < cfg_.streams; ++s) streams_.push_back("s" + std::to_string(s));
    for (int u = 0; u < std::max(1, cfg_.users); ++u) users_.push_back("u" + std::to_string(u));
    if (cfg_.attachments > 0) blobs_ = std::shared_ptr<BlobStore>(OpenBlobStore("memory:").value().release());
  }
  ~Sim() {
    for (auto& d : devices_) d.client.reset();
    server_.reset();
    instances_.clear();
    CloseStore();
    if (!cfg_.device_backend.empty() || cfg_.attachments > 0) {
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
  // The operator's backup and restore (SimConfig::snapshot, server_restore), between steps.
  bool Backups();
  bool RestoreServer();
  // Adds what the device's Client counted of rebases (per process: called before each restart and at the
  // end) to the result.
  void CountRebases(Device& d) {
    const ClientStats stats = d.client->Stats();
    result_.rebases += stats.rebases;
    result_.ops_requeued += stats.ops_requeued;
    result_.ops_set_aside += stats.ops_set_aside;
  }
  // After the quiet phase: each device's ClientStats::ops_lost is exactly the ops it set aside that did not
  // come back, and each of those is one no device could bring back.
  bool CheckLost(const std::map<OpId, std::pair<std::string, uint64_t>>& applied,
                 const std::map<std::string, MemberReplay>& replays);
  // ---- several instances on one store (cfg_.instances > 1) ----
  // What device `index` dials: the server's name, or every instance's, starting with instance index % n.
  std::string DialUri(size_t index) const;
  bool OpenStore();
  void CloseStore();
  bool OpenInstance(size_t k);
  // Instance k dies (its Server and listener go; its devices fail over); back after a while.
  bool CrashInstance(size_t k, const std::string& how);
  // Every instance dies and the machine loses power: the store is closed and reopened when one comes back.
  bool CrashStore(const std::string& how);
  // Restarts the instances due back (all of them when `all`).
  bool RestartInstances(bool all);
  // One tick of the servers: each running instance steps, in a random order, with the profile's crashes.
  bool StepInstances();
  // Steps the server or every running instance once, without faults (the quiet phase).
  void StepServers();
  // What server (instance) k takes and sends: where each device's Hello went, and the Notify frames and
  // relays that crossed instances; with membership, who was told of which stream's head.
  void Observe(size_t k, const ServerEvent& event);
  void Observe(size_t k, ConnId conn, std::string_view frame);
  // After the quiet phase: a device on each instance writes one op; every member device must see every op
  // and receipt within a few simulated seconds without reconnecting, so only wake-ups can bring them.
  bool LiveProbe();
  // Steps devices and servers until every device is idle and sees every receipt; false when `ticks_max`
  // ticks pass first (`missing` says what lacks) or a check failed (result_.ok says which).
  bool Converge(int ticks_max, std::string* missing);
  // Fails with `why`, what is `missing` and every device's state (and, with a full trace, its cursors).
  bool FailStuck(std::string why, const std::string& missing);
  bool OpenDevice(Device& d, bool faulty, uint64_t durable = kAll);
  bool CrashDevice(Device& d, const std::string& how, bool power_loss);
  bool DeviceTick(Device& d);
  bool Observe(Device& d, bool watermarks);
  // Subscribes to the device's changes (every state its own ops go through lands in d.history) and records
  // the state each own op has now.
  void WatchOps(Device& d);
  // Fails naming the op and its history when an op of `d` changed in a way the design does not allow.
  bool CheckHistories(Device& d, bool all);
  bool HandleFailed(Device& d, bool quiet);
  // Submits one op of the user; the kind and payload follow the profile.
  bool SubmitOne(Device& d, const std::string& stream, bool bad, std::string kind, std::string payload);
  bool SubmitRandom(Device& d);
  // Membership: a stream for the user to write to (mostly one its feed says the user is in), a member list
  // (always naming the auditor), and the feed read up to its cursor (following what the user joined).
  const std::string& PickStream(Device& d);
  std::vector<std::string> RandomMembers(const std::string& author);
  bool ReadFeed(Device& d);
  // Whether the device's store marks `stream` followed.
  bool Followed(Device& d, const std::string& stream);
  // The sent ops of `d`'s view of `stream`, in order; fails on a pending op (the quiet phase is over), a
  // failed op that is not own or has no reason, a seq shown twice, and gaps when `gapless`.
  bool SentView(Device& d, const std::string& stream, bool gapless, std::vector<OpInfo>* out);
  // The members of each stream now, as the auditor's view of it says.
  bool MembersNow(std::map<std::string, std::set<std::string>>* members);
  void Partitions();
  bool Quiet();
  bool MarkReadAll(bool* marked);
  std::string WatermarksMissing();
  bool CheckFinal();
  bool CheckStats();
  // Membership: every Notify of `stream` (its ops as the auditor saw them) went to a member at its seq,
  // on whichever instance; every Notify of a feed to the feed's user.
  bool CheckNotified(const std::string& stream, const std::vector<OpInfo>& ops);

  static constexpr int64_t kStartMs = 1'800'000'000'000;
  SimConfig cfg_;
  SimOptions opt_;
  ManualEnv env_;
  std::mt19937_64 rng_;
  uint64_t run_;
  std::string net_;
  std::filesystem::path tmp_;
  std::vector<std::string> streams_;
  std::vector<std::string> users_;  // of the devices (the auditor's user, "audit", is not among them)
  std::unique_ptr<SimDisk> server_disk_;
  std::unique_ptr<Server> server_;
  struct Instance {
    std::string uri;
    std::unique_ptr<Server> server;  // null while down
    int64_t down_until = 0;
  };
  std::vector<Instance> instances_;
  std::shared_ptr<ServerStore> store_;  // shared by the instances; null while the whole store is down
  uint64_t store_sub_ = 0;              // the simulation's own subscription: who committed what
  int stepping_ = -1;                   // the instance in Step now
  std::map<std::pair<std::string, uint64_t>, int> head_origin_;  // (stream, high) -> instance that wrote it
  std::map<std::tuple<std::string, std::string, std::string, int, uint64_t>, int> receipt_origin_;
  std::map<std::string, int> first_instance_;  // device -> the first instance of its list
  std::map<std::string, int> where_;           // device -> the instance its last Hello reached
  std::map<std::pair<size_t, ConnId>, std::string> conn_user_;  // (instance, connection) -> its Hello's user
  std::set<std::tuple<std::string, uint64_t, std::string>> notified_;  // (stream, high, user) Notify frames
  std::vector<Device> devices_;
  std::shared_ptr<BlobStore> blobs_;  // attachments' bytes (cfg_.attachments), shared by every server
  std::deque<std::string> trace_;
  uint64_t retries_ = 0;  // Retry calls made
  std::optional<SimDisk::Contents> backup_;  // the operator's latest copy of the server's store
  int restores_ = 0;                         // restores of the server so far
  SimResult result_;
};

bool Sim::OpenServer() {
  if (server_disk_ == nullptr) server_disk_ = std::make_unique<SimDisk>("sim-server-" + std::to_string(run_));
  ServerOptions so;
  so.store = "memory:";
  so.open_store = server_disk_->Opener();
  so.store_sync = true;  // an ack promises durability: the server must sync (so power losses undo nothing)
  so.env = &env_;
  so.membership = cfg_.membership;
  so.blob_store = blobs_;
  if (blobs_) so.media_url = "inproc:/files/";
  so.authorize = [](const AccessRequest& req) {
    if (req.access == Access::kPush && req.payload.starts_with("BAD")) {
      return Status::InvalidArgument("payload refused by the server");
    }
    return Status::OK();
  };
  auto listener = Listen(net_);
  if (!listener.ok()) return Fail("listen: " + listener.status().ToString());
  server_disk_->SetFlaky(0, 0);  // the store opens (a flaky disk that kept failing would keep it down)
  auto server = Server::Open(std::move(so),
                             std::make_unique<SimListener>(
                                 std::move(listener).value(), server_disk_.get(),
                                 [this](const ServerEvent& event) { Observe(0, event); },
                                 [this](ConnId conn, std::string_view frame) { Observe(0, conn, frame); }));
  if (!server.ok()) return Fail("server open: " + server.status().ToString());
  server_ = std::move(server).value();
  if (cfg_.server_store_flaky > 0) server_disk_->SetFlaky(cfg_.server_store_flaky, rng_());
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

bool Sim::Backups() {
  if (Chance(cfg_.snapshot)) {
    auto copy = server_disk_->Snapshot();
    if (!copy.ok()) return Fail("server store snapshot: " + copy.status().ToString());
    backup_ = std::move(copy).value();
    Trace("server store copied (backup)");
  }
  if (backup_ && Chance(cfg_.server_restore)) return RestoreServer();
  return true;
}

// As an operator does: stop the server (every instance), put the copy in place of its store, give the store
// a new incarnation (`outpostd restore`), start the server. Every connection drops; what the server
// applied since the copy is gone.
bool Sim::RestoreServer() {
  server_.reset();
  for (auto& in : instances_) in.server.reset();
  CloseStore();
  server_disk_->Revive();
  server_disk_->SetFlaky(0, 0);
  if (Status st = server_disk_->Restore(*backup_); !st.ok()) return Fail("server restore: " + st.ToString());
  ServerStoreOptions so;
  so.sync = true;
  so.open_storage = server_disk_->Opener();
  auto incarnation = NewIncarnation("memory:", so);
  if (!incarnation.ok()) return Fail("new incarnation: " + incarnation.status().ToString());
  ++restores_;
  ++result_.restores;
  Trace("server restored from its copy (restore " + std::to_string(restores_) + ")");
  // Every own op may have been lost; what was told of the old history (Notify frames, who wrote which head)
  // speaks of seqs the restored server gives again to other ops.
  for (auto& d : devices_) d.history->MarkAll(Seen::What::kRestore);
  notified_.clear();
  head_origin_.clear();
  receipt_origin_.clear();
  if (cfg_.instances > 1) return RestartInstances(true);
  return OpenServer();
}

std::string Sim::DialUri(size_t index) const {
  if (cfg_.instances <= 1) return net_;
  std::string uri;
  for (size_t k = 0; k < instances_.size(); ++k) {
    uri += (uri.empty() ? "" : ",") + instances_[(index + k) % instances_.size()].uri;
  }
  return uri;
}

namespace {

// The shared store as a multi-writer one presents itself (SimConfig::many_writers).
class ManyWritersStore final : public ServerStore {
 public:
  explicit ManyWritersStore(std::shared_ptr<ServerStore> inner) : inner_(std::move(inner)) {}
  Result<std::unique_ptr<ServerReadTxn>> BeginRead() override { return inner_->BeginRead(); }
  Result<std::unique_ptr<ServerWriteTxn>> BeginWrite() override { return inner_->BeginWrite(); }
  uint64_t Subscribe(std::function<void(StoreEvents)> fn) override {
    return inner_->Subscribe(std::move(fn));
  }
  void Unsubscribe(uint64_t id) override { inner_->Unsubscribe(id); }
  void Publish(const StoreEvents& events, uint64_t from) override { inner_->Publish(events, from); }
  bool many_writers() const override { return true; }
  const std::string& uri() const override { return inner_->uri(); }

 private:
  std::shared_ptr<ServerStore> inner_;
};

}  // namespace

bool Sim::OpenStore() {
  if (server_disk_ == nullptr) server_disk_ = std::make_unique<SimDisk>("sim-server-" + std::to_string(run_));
  ServerStoreOptions so;
  so.sync = true;  // an ack promises durability: the store must sync (so power losses undo nothing)
  so.open_storage = server_disk_->Opener();
  server_disk_->SetFlaky(0, 0);  // the store opens (a flaky disk that kept failing would keep it down)
  auto store = OpenServerStore("memory:", so);
  if (!store.ok()) return Fail("server store open: " + store.status().ToString());
  store_ = std::move(store).value();
  if (cfg_.many_writers) store_ = std::make_shared<ManyWritersStore>(std::move(store_));
  // The in-process store publishes inside the committing instance's Step: that instance wrote it.
  store_sub_ = store_->Subscribe([this](StoreEvents events) {
    for (const auto& h : events.heads) head_origin_[{h.stream, h.high}] = stepping_;
    for (const auto& w : events.watermarks)
      receipt_origin_[{w.stream, w.user, w.device, w.kind, w.seq}] = stepping_;
  });
  if (cfg_.server_store_flaky > 0) server_disk_->SetFlaky(cfg_.server_store_flaky, rng_());
  return true;
}

void Sim::CloseStore() {
  if (store_ == nullptr) return;
  store_->Unsubscribe(store_sub_);
  store_.reset();
}

bool Sim::OpenInstance(size_t k) {
  if (store_ == nullptr && !OpenStore()) return false;
  ServerOptions so;
  so.server_store = store_;
  so.env = &env_;
  so.membership = cfg_.membership;
  so.blob_store = blobs_;
  if (blobs_) so.media_url = "inproc:/files/";
  so.authorize = [](const AccessRequest& req) {
    if (req.access == Access::kPush && req.payload.starts_with("BAD")) {
      return Status::InvalidArgument("payload refused by the server");
    }
    return Status::OK();
  };
  auto listener = Listen(instances_[k].uri);
  if (!listener.ok()) return Fail("listen: " + listener.status().ToString());
  auto server = Server::Open(
      std::move(so), std::make_unique<SimListener>(
                         std::move(listener).value(), server_disk_.get(),
                         [this, k](const ServerEvent& event) { Observe(k, event); },
                         [this, k](ConnId conn, std::string_view frame) { Observe(k, conn, frame); }));
  if (!server.ok()) return Fail("server open: " + server.status().ToString());
  instances_[k].server = std::move(server).value();
  return true;
}

void Sim::Observe(size_t k, const ServerEvent& event) {
  if (event.kind == ServerEvent::Kind::kClose) conn_user_.erase({k, event.conn});
  if (event.kind != ServerEvent::Kind::kFrame) return;
  const wire::Frame* frame = DecodeFrame(event.frame);
  const wire::Hello* hello = frame == nullptr ? nullptr : frame->body_as_Hello();
  if (hello == nullptr) return;
  conn_user_[{k, event.conn}] = Str(hello->user());
  if (cfg_.instances <= 1) return;
  const std::string device = Str(hello->device());
  Trace(device + " hello at instance " + std::to_string(k) + " (connection " + std::to_string(event.conn) +
        ")");
  where_[device] = static_cast<int>(k);
  auto first = first_instance_.find(device);
  if (first != first_instance_.end() && first->second != static_cast<int>(k)) ++result_.failovers;
}

void Sim::Observe(size_t k, ConnId conn, std::string_view bytes) {
  const wire::Frame* frame = DecodeFrame(bytes);
  if (frame == nullptr) return;
  const int self = static_cast<int>(k);
  if (const wire::Notify* n = frame->body_as_Notify(); n != nullptr && cfg_.membership) {
    auto user = conn_user_.find({k, conn});
    notified_.emplace(Str(n->stream()), n->high_seq(), user == conn_user_.end() ? "?" : user->second);
  }
  if (cfg_.instances <= 1) return;
  if (const wire::Notify* n = frame->body_as_Notify()) {
    auto it = head_origin_.find({Str(n->stream()), n->high_seq()});
    if (it != head_origin_.end() && it->second != self) ++result_.cross_notifies;
  } else if (const wire::Watermark* w = frame->body_as_Watermark()) {
    auto it = receipt_origin_.find(
        {Str(w->stream()), Str(w->user()), Str(w->device()), static_cast<int>(w->kind()), w->seq()});
    if (it != receipt_origin_.end() && it->second != self) ++result_.cross_relays;
  }
}

bool Sim::CrashInstance(size_t k, const std::string& how) {
  instances_[k].server.reset();
  server_disk_->Revive();  // the disk died with the process only: the store stays up for the others
  instances_[k].down_until =
      Now() + 1 + static_cast<int64_t>(Rand(static_cast<uint64_t>(cfg_.instance_down_ms_max)));
  Trace("instance " + std::to_string(k) + " crash " + how +
        ", back at t=" + std::to_string(instances_[k].down_until));
  ++result_.instance_crashes;
  bool any = false;
  for (const auto& in : instances_) any = any || in.server != nullptr;
  // The last one down: sometimes the machine goes with it.
  if (!any && Chance(0.5)) return CrashStore("with the last instance");
  return true;
}

bool Sim::CrashStore(const std::string& how) {
  for (auto& in : instances_) {
    in.server.reset();
    in.down_until =
        std::max(in.down_until,
                 Now() + 1 + static_cast<int64_t>(Rand(static_cast<uint64_t>(cfg_.instance_down_ms_max))));
  }
  CloseStore();
  server_disk_->Revive();
  auto undone = server_disk_->PowerLoss(Rand(server_disk_->unsynced() + 1));
  if (!undone.ok()) return Fail("server power loss: " + undone.status().ToString());
  if (*undone > 0)
    return Fail("the server's store lost " + std::to_string(*undone) + " acknowledged commits");
  Trace("server store crash " + how + " (every instance, power loss)");
  ++result_.server_restarts;
  return true;
}

bool Sim::RestartInstances(bool all) {
  for (size_t k = 0; k < instances_.size(); ++k) {
    Instance& in = instances_[k];
    if (in.server != nullptr || (!all && in.down_until > Now())) continue;
    if (!OpenInstance(k)) return false;
    Trace("instance " + std::to_string(k) + " restarted");
  }
  return true;
}

bool Sim::StepInstances() {
  if (!RestartInstances(false)) return false;
  std::vector<size_t> order;
  for (size_t k = 0; k < instances_.size(); ++k) order.push_back(k);
  std::shuffle(order.begin(), order.end(), rng_);
  for (size_t k : order) {
    Server* server = instances_[k].server.get();
    if (server == nullptr) continue;
    // At the group commit (nothing of the group is stored, nothing answered) or just after it (stored and
    // published to the other instances, the answers lost): this instance, or the whole store.
    const bool one = Chance(cfg_.instance_crash_in_step);
    const bool whole = !one && Chance(cfg_.server_crash_in_step);
    if (one || whole) server_disk_->DieAfter(Rand(2));
    stepping_ = static_cast<int>(k);
    server->Step();
    stepping_ = -1;
    if ((one || whole) && server_disk_->Dead()) {
      if (!(one ? CrashInstance(k, "in the middle of a step") : CrashStore("in the middle of a step")))
        return false;
      if (whole) break;
    } else if (one || whole) {
      server_disk_->Disarm();
    }
  }
  std::vector<size_t> up;
  for (size_t k = 0; k < instances_.size(); ++k) {
    if (instances_[k].server != nullptr) up.push_back(k);
  }
  if (!up.empty() && Chance(cfg_.instance_crash) && !CrashInstance(up[Rand(up.size())], "between steps"))
    return false;
  if (store_ != nullptr && Chance(cfg_.server_crash) && !CrashStore("between steps")) return false;
  return true;
}

void Sim::StepServers() {
  if (cfg_.instances <= 1) {
    server_->Step();
    return;
  }
  for (size_t k = 0; k < instances_.size(); ++k) {
    stepping_ = static_cast<int>(k);
    if (instances_[k].server != nullptr) instances_[k].server->Step();
    stepping_ = -1;
  }
}

bool Sim::OpenDevice(Device& d, bool faulty, uint64_t durable) {
  ClientOptions o;
  o.store = d.store;
  o.store_sync = d.disk ? cfg_.device_store_sync : false;
  if (d.disk) o.open_store = d.disk->Opener();
  const size_t index = static_cast<size_t>(&d - devices_.data());
  if (cfg_.instances > 1) first_instance_[d.name] = static_cast<int>(index % instances_.size());
  auto dialer = NewDialer(DialUri(index));
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
  o.follow_memberships = d.engine_follows;
  o.env = d.env.get();
  o.ack_timeout_ms = 1000;
  o.backoff_base_ms = 20;
  o.backoff_cap_ms = 2000;
  o.attempts_max = cfg_.attempts_max;
  o.ops_per_batch_max = 8;
  o.batches_inflight_max = 4;
  o.pull_page_max = 16;
  if (blobs_) {
    InprocMediaOptions mo;
    if (faulty && cfg_.media_faults > 0) {
      mo.fail_before = [this](std::string_view what) {
        return Chance(cfg_.media_faults) ? Status::Unavailable("media request " + std::string(what) + " lost")
                                         : Status::OK();
      };
      mo.fail_after = [this](std::string_view what) {
        return Chance(cfg_.media_faults) ? Status::Timeout("media answer to " + std::string(what) + " lost")
                                         : Status::OK();
      };
    }
    o.media = std::shared_ptr<MediaTransport>(OpenInprocMediaTransport(blobs_, std::move(mo)).release());
    o.token = d.user;  // the in-process media transport takes the token for the user's name
    o.media_dir = (tmp_ / (d.name + "-media")).string();
    o.upload_chunk_bytes = 1024;
  }
  auto c = Client::Open(std::move(o));
  if (!c.ok()) return Fail("open " + d.name + ": " + c.status().ToString());
  d.client = std::move(c).value();
  WatchOps(d);
  for (const auto& s : streams_) {
    if (cfg_.membership && !d.follow_all) break;
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
    if (!op.status().IsNotFound() || sub.mark <= durable) {
      std::lock_guard<std::mutex> lock(d.history->mu);
      return Fail(d.name + " lost op " + sub.id.ToString() + " across a restart: " + op.status().ToString() +
                  "; its history: " + Describe(d.history->ops[sub.id]) +
                  (d.history->set_aside.contains(sub.id) ? " (a rebase set it aside)" : ""));
    }
    sub.lost = true;
    ++result_.ops_lost_to_power;
    Trace(d.name + " lost unsynced submit " + sub.id.ToString());
  }
  // What each own op is now (after a crash it must be what the device last reported).
  for (const Submitted& sub : d.subs) {
    if (sub.lost) continue;
    auto op = d.client->Get(sub.id);
    if (op.ok()) d.history->Add(sub.id, SeenOf(*op));
  }
  if (!CheckHistories(d, false)) return false;
  if (cfg_.membership) {
    // The feed is read again from its start: a power loss may have undone follows and the feed's cursor.
    Status st = d.client->Follow(d.feed);
    if (!st.ok()) return Fail("follow: " + st.ToString());
    d.feed_read = 0;
    d.member.clear();
    if (!ReadFeed(d)) return false;
  }
  return true;
}

void Sim::WatchOps(Device& d) {
  Client* client = d.client.get();
  std::shared_ptr<OpHistory> history = d.history;
  client->Subscribe("", [client, history](const std::vector<Change>& changes) {
    for (const Change& change : changes) {
      if (change.kind == Change::Kind::kRemoved && change.state == OpState::kSent) {
        std::lock_guard<std::mutex> lock(history->mu);
        history->set_aside.emplace(change.op_id, change.stream);
      }
      if (change.kind != Change::Kind::kAdded && change.kind != Change::Kind::kUpdated) continue;
      auto op = client->Get(change.op_id);
      if (op.ok() && op->own) history->Add(change.op_id, SeenOf(*op));
      // What an event says of an op that never changes must be the op's (its state may have moved on
      // in a later commit already).
      if (op.ok() && (change.op_kind != op->kind || change.own != op->own || change.stream != op->stream ||
                      (change.state == OpState::kSent) != (change.seq != 0))) {
        history->EventError("event of op " + change.op_id.ToString() + " says kind '" + change.op_kind +
                            "' own " + std::to_string(change.own) + " seq " + std::to_string(change.seq) +
                            ", the op is kind '" + op->kind + "' own " + std::to_string(op->own));
      }
    }
  });
  // Connection events: connecting before online, never a refused login (the simulated server takes
  // every device), never concurrent with one another.
  auto last = std::make_shared<ConnectionState>(client->connection().state);
  client->SubscribeConnection([history, last](const ConnectionEvent& e) {
    if (e.state == ConnectionState::kAuthFailed ||
        (e.state == ConnectionState::kOnline && *last != ConnectionState::kConnecting &&
         *last != ConnectionState::kOnline)) {
      history->EventError("connection event " + std::to_string(static_cast<int>(e.state)) + " (" + e.reason +
                          ") after " + std::to_string(static_cast<int>(*last)));
    }
    *last = e.state;
  });
}

bool Sim::CheckHistories(Device& d, bool all) {
  std::lock_guard<std::mutex> lock(d.history->mu);
  if (!d.history->event_error.empty()) return Fail(d.name + ": " + d.history->event_error);
  std::set<OpId> ids;
  if (all) {
    for (const auto& [id, h] : d.history->ops) ids.insert(id);
  } else {
    ids.swap(d.history->dirty);
  }
  d.history->dirty.clear();
  for (const OpId& id : ids) {
    const std::vector<Seen>& h = d.history->ops[id];
    std::string why = CheckHistory(h, cfg_.attempts_max > 0);
    if (!why.empty()) {
      return Fail("op " + id.ToString() + " of " + d.name + ": " + why + "; its history: " + Describe(h));
    }
  }
  return true;
}

// kill -9 of the device's process, or a power loss that also undoes what its store had not synced.
// Either way the device's observations start over: a power loss may move cursors and states back.
bool Sim::CrashDevice(Device& d, const std::string& how, bool power_loss) {
  CountRebases(d);
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
      d.history->MarkAll(Seen::What::kPowerLoss);
      d.cursor.clear();
      d.watermarks.clear();
      d.read.clear();
    }
  }
  if (!power_loss) {
    Trace(d.name + " " + how);
    d.history->MarkAll(Seen::What::kCrash);
  }
  return OpenDevice(d, true, durable);
}

bool Sim::Observe(Device& d, bool watermarks) {
  for (size_t i = 0; i < streams_.size() + (cfg_.membership ? 1 : 0); ++i) {
    const std::string& s = i < streams_.size() ? streams_[i] : d.feed;
    auto c = d.client->Cursor(s);
    if (!c.ok()) return Fail("cursor: " + c.status().ToString());
    uint64_t& last = d.cursor[s];
    if (*c < last) {
      if (d.cursor_drops[s] >= restores_)
        return Fail(d.name + " cursor of " + s + " moved back " + std::to_string(last) + " -> " +
                    std::to_string(*c) + (restores_ == 0 ? "" : " more often than the server was restored"));
      ++d.cursor_drops[s];
      Trace(d.name + " rebased " + s + ": cursor " + std::to_string(last) + " -> " + std::to_string(*c));
      // The feed came down too: what it says is read again from its start.
      if (s == d.feed) {
        d.feed_read = 0;
        d.member.clear();
      }
    }
    last = *c;
  }
  if (opt_.full_trace) {  // when the device connected and rebased, for tools/sim --seed
    const ClientStats st = d.client->Stats();
    if (st.connects != d.connects_seen || st.rebases != d.rebases_seen) {
      Trace(d.name + " connects " + std::to_string(st.connects) + " rebases " + std::to_string(st.rebases) +
            " requeued " + std::to_string(st.ops_requeued) + " set aside " +
            std::to_string(st.ops_set_aside) + " lost " + std::to_string(st.ops_lost));
      d.connects_seen = st.connects;
      d.rebases_seen = st.rebases;
    }
  }
  // Status only moves forward: every change the device reported since the last look. (This replaced a
  // check of 4 random ops per tick; its draws are kept so that a seed replays the history it always did.)
  if (!d.subs.empty()) rng_.discard(4);
  if (!CheckHistories(d, false)) return false;
  if (!ReadFeed(d)) return false;
  // Watermarks (delivered and read receipts) never move back, as this device sees them.
  if (watermarks) {
    const std::string& s = streams_[Rand(streams_.size())];
    auto wms = d.client->Watermarks(s);
    if (!wms.ok()) return Fail("watermarks: " + wms.status().ToString());
    for (const Watermark& w : *wms) {
      const auto key = std::make_tuple(s, w.user, w.device, static_cast<int>(w.kind));
      uint64_t& last = d.watermarks[key];
      if (w.seq < last && d.watermark_drops[key]++ >= restores_)
        return Fail(d.name + " sees the " + (w.kind == WatermarkKind::kRead ? "read" : "delivered") +
                    " watermark of " + w.device + " on " + s + " move back " + std::to_string(last) + " -> " +
                    std::to_string(w.seq) +
                    (restores_ == 0 ? "" : " more often than the server was restored"));
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
    // Refused by the server for good: invalid, or forbidden (not a member, a membership feed, a kind only
    // the server writes). A retry is judged afresh: a user added meanwhile may write now.
    bool refused = op.last_error_code == Status::Code::kInvalidArgument ||
                   op.last_error_code == Status::Code::kPermissionDenied;
    if (refused && !quiet && Chance(cfg_.discard)) {
      d.history->Mark(op.op_id, Seen::What::kDiscard);
      Status st = d.client->Discard(op.op_id);
      if (!st.ok()) return Fail("discard: " + st.ToString());
      sub->discarded = true;
      sub->discard_mark = d.disk ? d.disk->commits() : 0;
      Trace(d.name + " discard " + op.op_id.ToString());
    } else if (!refused || (sub->retries < 2 && !quiet)) {
      d.history->Mark(op.op_id, Seen::What::kRetry);
      Status st = d.client->Retry(op.op_id);
      if (!st.ok()) return Fail("retry: " + st.ToString());
      ++sub->retries;
      ++retries_;
      Trace(d.name + " retry " + op.op_id.ToString() + " (" + op.last_error + ")");
    }
  }
  return true;
}

bool Sim::SubmitOne(Device& d, const std::string& stream, bool bad, std::string kind, std::string payload) {
  Submitted sub;
  sub.stream = stream;
  sub.kind = std::move(kind);
  sub.bad = bad;
  SubmitOptions so;
  if (!bad && Chance(cfg_.attachments)) {
    // A small file of its own: the device copies it at submit, so it is removed at once.
    std::string bytes(1 + Rand(3 * 1024), '\0');
    for (char& c : bytes) c = static_cast<char>(rng_());
    std::error_code ec;
    std::filesystem::create_directories(tmp_ / "files", ec);
    const std::string path = (tmp_ / "files" / (d.name + "-" + std::to_string(d.submitted))).string();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << bytes;
      if (!out) return Fail("cannot write " + path);
    }
    so.attachment.path = path;
    so.attachment.content_type = "application/octet-stream";
    sub.file_sha256 = media::ToHex(media::Sha256(bytes));
    sub.kind = "file";
  }
  auto id = d.client->Submit(sub.stream, sub.kind, payload, so);
  if (!so.attachment.path.empty()) std::filesystem::remove(so.attachment.path);
  if (!id.ok()) return Fail("submit: " + id.status().ToString());
  sub.id = *id;
  sub.mark = d.disk ? d.disk->commits() : 0;
  std::replace(payload.begin(), payload.end(), '\n', ',');
  Trace(d.name + " submit " + sub.stream + " " + (sub.kind == "text" ? "" : sub.kind + " ") + payload + " " +
        sub.id.ToString() + (sub.file_sha256.empty() ? "" : " with a file"));
  d.subs.push_back(std::move(sub));
  ++d.submitted;
  ++result_.ops_submitted;
  return true;
}

bool Sim::SubmitRandom(Device& d) {
  const std::string& stream = PickStream(d);
  const bool bad = Chance(cfg_.reject);
  const std::string text = d.name + "#" + std::to_string(d.submitted);
  if (!cfg_.membership) return SubmitOne(d, stream, bad, "text", (bad ? "BAD " : "") + text);
  if (!bad) {
    if (Chance(cfg_.members_share))
      return SubmitOne(d, stream, false, std::string(kMembersKind), EncodeMembers(RandomMembers(d.user)));
    return SubmitOne(d, stream, false, "text", text);
  }
  // Refused whoever sends it: a payload the authorize hook refuses, an op of a kind only the server
  // writes, a write to a membership feed.
  switch (Rand(3)) {
    case 0:
      return SubmitOne(d, stream, true, "text", "BAD " + text);
    case 1:
      return SubmitOne(d, stream, true, std::string(kJoinedKind), stream);
    default:
      return SubmitOne(d, FeedStream(users_[Rand(users_.size())]), true, "text", "forged " + text);
  }
}

const std::string& Sim::PickStream(Device& d) {
  if (cfg_.membership && Chance(0.85)) {
    std::vector<const std::string*> mine;
    for (const auto& [stream, in] : d.member) {
      if (in) mine.push_back(&stream);
    }
    if (!mine.empty()) return *mine[Rand(mine.size())];
  }
  return streams_[Rand(streams_.size())];
}

std::vector<std::string> Sim::RandomMembers(const std::string& author) {
  std::vector<std::string> list;
  for (const auto& u : users_) {
    if (Chance(u == author ? 0.85 : 0.5)) list.push_back(u);
  }
  if (list.empty()) list.push_back(users_[Rand(users_.size())]);
  list.emplace_back("audit");  // the auditor reads every stream at the end
  return list;
}

bool Sim::Followed(Device& d, const std::string& stream) {
  auto streams = d.client->Streams();
  if (!streams.ok()) return false;
  for (const StreamInfo& s : *streams) {
    if (s.stream == stream) return s.followed;
  }
  return false;
}

bool Sim::ReadFeed(Device& d) {
  if (!cfg_.membership) return true;
  auto cursor = d.client->Cursor(d.feed);
  if (!cursor.ok()) return Fail("cursor: " + cursor.status().ToString());
  if (*cursor <= d.feed_read) return true;
  auto view = d.client->Latest(d.feed, 1'000'000);  // a feed holds a few dozen ops
  if (!view.ok()) return Fail("latest: " + view.status().ToString());
  for (const OpInfo& op : *view) {
    if (op.state != OpState::kSent || op.seq <= d.feed_read || op.seq > *cursor) continue;
    const bool joined = op.kind == kJoinedKind;
    if ((!joined && op.kind != kLeftKind) ||
        std::find(streams_.begin(), streams_.end(), op.payload) == streams_.end()) {
      return Fail(d.name + " feed " + d.feed + " holds seq " + std::to_string(op.seq) + " of kind " +
                  op.kind + " naming '" + op.payload + "'");
    }
    d.member[op.payload] = joined;
    Trace(d.name + " feed seq " + std::to_string(op.seq) + ": " + (joined ? "joined " : "left ") +
          op.payload);
    if (joined && d.engine_follows && !Followed(d, op.payload)) {
      return Fail(d.name + " merged feed seq " + std::to_string(op.seq) + " joining " + op.payload +
                  " but does not follow it (follow_memberships)");
    }
    if (joined && !d.engine_follows) {
      Status st = d.client->Follow(op.payload);
      if (!st.ok()) return Fail("follow: " + st.ToString());
    }
  }
  d.feed_read = *cursor;
  return true;
}

bool Sim::DeviceTick(Device& d) {
  if (d.submitted < cfg_.ops_per_device && Chance(cfg_.submit)) {
    int n = 1 + static_cast<int>(Rand(3));
    for (int i = 0; i < n && d.submitted < cfg_.ops_per_device; ++i) {
      if (!SubmitRandom(d)) return false;
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

// What is missing for every member device (every device without membership) to see every other member
// device's delivered and read watermark at the end of every stream (the auditor's cursor); empty when
// nothing is.
std::string Sim::WatermarksMissing() {
  std::map<std::string, std::set<std::string>> members;
  if (cfg_.membership && !MembersNow(&members)) return "cannot replay the member lists";
  auto member = [&](const Device& d, const std::string& s) {
    return !cfg_.membership || members[s].contains(d.user);
  };
  for (const auto& s : streams_) {
    auto high = devices_.back().client->Cursor(s);
    if (!high.ok()) return "cannot read the auditor's cursor";
    if (*high == 0) continue;
    for (auto& a : devices_) {
      if (!member(a, s)) continue;
      auto cursor = a.client->Cursor(s);
      if (!cursor.ok()) return "cannot read a cursor";
      if (*cursor != *high) {
        return a.name + " (" + a.user + ", a member) is at cursor " + std::to_string(*cursor) + " of " + s +
               ", stream high " + std::to_string(*high);
      }
    }
    for (auto& a : devices_) {
      if (!member(a, s)) continue;
      auto wms = a.client->Watermarks(s);
      if (!wms.ok()) return "cannot read watermarks";
      std::map<std::pair<std::string, int>, uint64_t> got;
      for (const Watermark& w : *wms) got[{w.device, static_cast<int>(w.kind)}] = w.seq;
      for (auto& b : devices_) {
        if (&a == &b || !member(b, s)) continue;
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

bool Sim::MembersNow(std::map<std::string, std::set<std::string>>* members) {
  for (const auto& s : streams_) {
    auto view = devices_.back().client->Latest(s, 1'000'000);
    if (!view.ok()) return Fail("latest: " + view.status().ToString());
    std::vector<OpInfo> sent;
    for (OpInfo& op : *view) {
      if (op.state == OpState::kSent) sent.push_back(std::move(op));
    }
    (*members)[s] = ReplayMembers(sent).members;
  }
  return true;
}

bool Sim::Converge(int ticks_max, std::string* missing) {
  int idle_rounds = 0;
  for (int t = 0; t < ticks_max; ++t) {
    env_.AdvanceMs(10);
    for (auto& d : devices_) {
      Status st = d.client->Step();
      if (!st.ok()) return Fail("step: " + st.ToString());
      if (!Observe(d, t % 10 == 0)) return false;
      // An op already at attempts_max fails at its first send here: the user retries it too.
      if (t % 20 == 0 && !HandleFailed(d, true)) return false;
    }
    StepServers();
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
    *missing = WatermarksMissing();
    if (missing->empty()) return true;
  }
  return false;
}

bool Sim::LiveProbe() {
  // Every device stays where it is (no faults, no crashes, nothing to reconnect for): a device on one
  // instance hears of an op applied on another only through the store's wake-up (a Notify from its own
  // instance, then a pull), and of a receipt only through a relay.
  std::map<std::string, std::set<std::string>> members;
  if (cfg_.membership && !MembersNow(&members)) return false;
  std::vector<uint64_t> connects;
  for (auto& d : devices_) connects.push_back(d.client->Stats().connects);
  std::set<int> writers;  // instances with a writer
  std::string who;
  for (size_t i = 0; i + 1 < devices_.size(); ++i) {  // not the auditor
    Device& d = devices_[i];
    auto at = where_.find(d.name);
    if (at == where_.end() || writers.contains(at->second)) continue;
    const std::string* stream = nullptr;
    for (const auto& s : streams_) {
      if (stream == nullptr && (!cfg_.membership || members[s].contains(d.user))) stream = &s;
    }
    if (stream == nullptr) continue;
    writers.insert(at->second);
    who += " " + d.name + "@" + std::to_string(at->second);
    if (!SubmitOne(d, *stream, false, "text", d.name + "#probe")) return false;
  }
  Trace("live probe: writers" + who);
  const uint64_t cross = result_.cross_notifies;
  constexpr int kProbeTicks = 500;  // 5 simulated seconds: no resend or backoff is needed here
  std::string missing;
  if (!Converge(kProbeTicks, &missing)) {
    if (!result_.ok) return false;
    return FailStuck("no convergence within " + std::to_string(kProbeTicks * 10) +
                         " ms of the live probe (a lost wake-up between instances?):",
                     missing);
  }
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (devices_[i].client->Stats().connects != connects[i])
      return Fail(devices_[i].name + " reconnected during the live probe");
  }
  // A writer on another instance than the auditor's (the member of every stream) must have woken it.
  const auto auditor = where_.find(devices_.back().name);
  if (auditor != where_.end() && writers.size() > (writers.contains(auditor->second) ? 1u : 0u) &&
      result_.cross_notifies == cross) {
    return Fail("the live probe converged without a Notify across instances");
  }
  return true;
}

bool Sim::Quiet() {
  // The network heals, every device restarts once more, and whatever failed for lack of answers is
  // retried. A device that never took part joins to read every stream from the start.
  Trace("quiet phase");
  if (cfg_.instances > 1 && !RestartInstances(true)) return false;
  for (auto& d : devices_) {
    CountRebases(d);
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
    // With membership the auditor finds every stream through its feed: "audit" is on every member list.
    auditor.feed = FeedStream(auditor.user);
    auditor.follow_all = false;
    devices_.push_back(std::move(auditor));
    if (!OpenDevice(devices_.back(), false)) return false;
  }
  std::string missing;
  if (Converge(cfg_.quiet_ticks_max, &missing)) return cfg_.instances <= 1 || LiveProbe();
  if (!result_.ok) return false;
  return FailStuck("no convergence after the quiet phase:", missing);
}

bool Sim::FailStuck(std::string why, const std::string& missing) {
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
           " bad_frames=" + std::to_string(s.bad_frames) + " idle=" + std::to_string(d.client->IsIdle()) +
           " err=" + s.last_connection_error + (s.uploads ? " uploads=" + std::to_string(s.uploads) : "") +
           "}";
    // Every upload that waits, with what it last heard.
    auto outbox = d.client->Outbox(1000);
    if (!outbox.ok()) continue;
    for (const OpInfo& op : *outbox) {
      if (op.state == OpState::kPending && op.attachment.upload == UploadState::kNone) {
        why += "\n  " + d.name + " pending " + op.op_id.ToString() + " of " + op.stream + " counter " +
               std::to_string(op.device_counter) + " attempts " + std::to_string(op.attempts) + " '" +
               op.last_error + "'";
      }
      if (op.attachment.upload == UploadState::kNone) continue;
      why += "\n  " + d.name + " upload of " + op.op_id.ToString() + ": " +
             (op.attachment.upload == UploadState::kFailed ? "failed" : "pending") + " at " +
             std::to_string(op.attachment.uploaded_bytes) + "/" + std::to_string(op.attachment.size) +
             ", op " + Describe(SeenOf(op)) + " attempts " + std::to_string(op.attempts) + " '" +
             op.last_error + "'";
    }
  }
  return Fail(why);
}

bool Sim::SentView(Device& d, const std::string& stream, bool gapless, std::vector<OpInfo>* out) {
  out->clear();
  auto view = d.client->Latest(stream, 1'000'000);
  if (!view.ok()) return Fail("latest: " + view.status().ToString());
  std::set<OpId> unique;
  for (OpInfo& op : *view) {
    if (op.state == OpState::kPending)
      return Fail(d.name + " still has a pending op on " + stream + " after the quiet phase");
    if (op.state == OpState::kFailed) {
      if (!op.own || op.last_error.empty()) return Fail("failed op that is not own or has no reason");
      continue;
    }
    if (!unique.insert(op.op_id).second) return Fail("op " + op.op_id.ToString() + " shown twice");
    const uint64_t want = out->empty() ? 1 : out->back().seq + 1;
    if (gapless ? op.seq != want : op.seq < want) {
      return Fail(d.name + " view of " + stream + " has seq " + std::to_string(op.seq) + " at place " +
                  std::to_string(out->size() + 1) +
                  (out->empty() ? "" : ", after seq " + std::to_string(out->back().seq)));
    }
    out->push_back(std::move(op));
  }
  return true;
}

bool Sim::CheckNotified(const std::string& stream, const std::vector<OpInfo>& ops) {
  std::map<uint64_t, std::set<std::string>> members;  // seq of each members op -> the members from then on
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind != kMembersKind) continue;
    members[ops[i].seq] =
        ReplayMembers(std::vector<OpInfo>(ops.begin(), ops.begin() + static_cast<ptrdiff_t>(i) + 1)).members;
  }
  for (const auto& [s, high, user] : notified_) {
    if (s.starts_with(kFeedPrefix)) {
      if (s != FeedStream(user)) return Fail("a Notify of " + s + " went to " + user);
      continue;
    }
    if (s != stream) continue;
    auto at = members.upper_bound(high);
    if (at == members.begin() || !std::prev(at)->second.contains(user)) {
      return Fail("a Notify of " + s + " at seq " + std::to_string(high) + " went to " + user +
                  ", no member at that seq");
    }
  }
  return true;
}

// The stats (issue 17) agree with themselves whatever the faults did: resends are part of the sends, every
// histogram's buckets add up to its count, a commit is timed once, gauges within their totals.
bool Sim::CheckStats() {
  auto sound = [](const Histogram& h) {
    uint64_t n = 0;
    for (uint64_t c : h.counts) n += c;
    return n == h.count && h.counts.size() == h.upper_bounds.size() + 1;
  };
  for (auto& d : devices_) {
    const ClientStats s = d.client->Stats();
    const uint64_t retries = s.retries_timeout + s.retries_busy + s.retries_disconnect + s.retries_gap +
                             s.retries_conflict + s.retries_other;
    if (retries > s.attempts || s.attempts > s.ops_sent) {
      return Fail(d.name + " stats: " + std::to_string(retries) + " retries, " + std::to_string(s.attempts) +
                  " attempts, " + std::to_string(s.ops_sent) + " ops sent");
    }
    if (!sound(s.flush_seconds) || !sound(s.merge_seconds) || s.flush_seconds.count > s.batches_sent)
      return Fail(d.name + " stats: unsound flush or merge histogram");
  }
  std::vector<Server*> servers;
  if (server_) servers.push_back(server_.get());
  for (auto& in : instances_) {
    if (in.server) servers.push_back(in.server.get());
  }
  for (Server* server : servers) {
    const ServerStats s = server->Stats();
    if (s.commit_seconds.count != s.commits || s.group_events.count < s.commits ||
        s.users_online > s.devices_online || s.devices_online > s.connections || !sound(s.commit_seconds) ||
        !sound(s.group_events) || !sound(s.notify_fanout_seconds)) {
      return Fail("server stats: " + std::to_string(s.commits) + " commits, " +
                  std::to_string(s.commit_seconds.count) + " timed, " + std::to_string(s.group_events.count) +
                  " groups, " + std::to_string(s.devices_online) + " devices online, " +
                  std::to_string(s.connections) + " connections");
    }
    if (server->ActiveStreams(kActiveStreamsMax + 1).size() > kActiveStreamsMax)
      return Fail("server tracks more active streams than kActiveStreamsMax");
  }
  return true;
}

bool Sim::CheckFinal() {
  // The server is honest and the faulty network drops, repeats and reorders but never alters: no device may
  // have judged a frame malformed (undecodable, or a page with an unsound op) since it last started.
  for (auto& d : devices_) {
    const uint64_t bad = d.client->Stats().bad_frames;
    if (bad != 0)
      return Fail(d.name + " counted " + std::to_string(bad) + " bad frames from an honest server");
  }
  if (!CheckStats()) return false;
  // The auditor's view is the server's order: it reads every stream (with membership, "audit" is on every
  // member list) and wrote nothing.
  Device& auditor = devices_.back();
  std::map<OpId, std::pair<std::string, uint64_t>> applied;  // op -> stream, seq
  std::map<std::string, MemberReplay> replays;
  for (const auto& s : streams_) {
    std::vector<OpInfo> reference;
    if (!SentView(auditor, s, true, &reference)) return false;
    MemberReplay& replay = replays[s];
    if (cfg_.membership) {
      replay = ReplayMembers(reference);
      if (!replay.error.empty())
        return Fail("the server applied an op it must refuse on " + s + ": " + replay.error);
      result_.member_changes += replay.changes;
      if (!CheckNotified(s, reference)) return false;
    }
    for (auto& d : devices_) {
      if (&d == &auditor) continue;
      const bool member = !cfg_.membership || replay.members.contains(d.user);
      std::vector<OpInfo> sent;
      if (!SentView(d, s, member, &sent)) return false;
      if (member) {
        // Convergence: every member device shows the server's ops in the server's order.
        if (!SameOps(sent, reference)) {
          return Fail("devices disagree on " + s + ": " + auditor.name + " has " +
                      std::to_string(reference.size()) + " ops, " + d.name + " has " +
                      std::to_string(sent.size()));
        }
        continue;
      }
      // No member at the end: it holds what the server applied, at the server's seqs, and nothing from
      // the members op that last removed its user on (but its own ops, applied while it was a member).
      auto removed = replay.removed.find(d.user);
      const uint64_t upto = removed == replay.removed.end() ? 0 : removed->second;
      for (const OpInfo& op : sent) {
        if (op.seq > reference.size() || reference[op.seq - 1].op_id != op.op_id) {
          return Fail(d.name + " shows op " + op.op_id.ToString() + " at seq " + std::to_string(op.seq) +
                      " of " + s + ", which the server does not");
        }
        if (!op.own && op.seq >= upto) {
          return Fail(d.name + " of " + d.user + " got seq " + std::to_string(op.seq) + " of " + s +
                      (upto == 0 ? ", a stream its user never was a member of"
                                 : " after its user was removed at seq " + std::to_string(upto)));
        }
      }
    }
    for (const OpInfo& op : reference) {
      if (!applied.emplace(op.op_id, std::make_pair(s, op.seq)).second)
        return Fail("op applied in two streams");
    }
  }
  result_.ops_applied = applied.size();
  if (cfg_.membership) {
    // Each user's feed: the same on every device of the user, and per stream exactly the joins and leaves
    // its member lists made, in order, so that it ends consistent with the final member lists.
    std::set<std::string> users;
    for (const auto& d : devices_) users.insert(d.user);
    for (const auto& user : users) {
      const std::string feed = FeedStream(user);
      std::vector<OpInfo> reference;
      const Device* first = nullptr;
      for (auto& d : devices_) {
        if (d.user != user) continue;
        std::vector<OpInfo> sent;
        if (!SentView(d, feed, true, &sent)) return false;
        if (first == nullptr) {
          first = &d;
          reference = std::move(sent);
        } else if (!SameOps(sent, reference)) {
          return Fail("devices disagree on " + feed + ": " + first->name + " has " +
                      std::to_string(reference.size()) + " ops, " + d.name + " has " +
                      std::to_string(sent.size()));
        }
      }
      std::map<std::string, std::vector<std::string>> got;
      for (const OpInfo& op : reference) {
        if ((op.kind != kJoinedKind && op.kind != kLeftKind) || !replays.contains(op.payload))
          return Fail(feed + " holds seq " + std::to_string(op.seq) + " of kind " + op.kind + " naming '" +
                      op.payload + "'");
        got[op.payload].push_back(op.kind);
      }
      for (const auto& s : streams_) {
        const std::vector<std::string>& want = replays[s].feed[user];
        if (got[s] != want) {
          auto list = [](const std::vector<std::string>& kinds) {
            std::string out;
            for (const auto& k : kinds) out += (out.empty() ? "" : ",") + k;
            return "[" + out + "]";
          };
          return Fail(feed + " says " + list(got[s]) + " of " + s + ", its member lists say " + list(want));
        }
      }
    }
  }
  for (auto& d : devices_) {
    std::map<std::string, std::pair<uint64_t, OpId>> last_seq;  // stream -> seq and id of the last op
    for (const Submitted& sub : d.subs) {
      auto it = applied.find(sub.id);
      if (sub.bad && it != applied.end()) return Fail("a refused op was applied: " + sub.id.ToString());
      auto op = d.client->Get(sub.id);
      if (it == applied.end()) {
        if (sub.discarded || sub.lost) continue;
        // Not applied, so refused for good, with its reason: invalid, or forbidden (membership).
        const bool failed = op.ok() && op->state == OpState::kFailed && !op->last_error.empty();
        if (failed && sub.bad) {
          ++result_.ops_failed;
          if (op->last_error_code == Status::Code::kPermissionDenied) ++result_.ops_forbidden;
          continue;
        }
        if (sub.bad) return Fail("a refused op is not failed with a reason: " + sub.id.ToString());
        if (failed && cfg_.membership && op->last_error_code == Status::Code::kPermissionDenied &&
            op->last_error.starts_with("forbidden: ")) {
          ++result_.ops_failed;
          ++result_.ops_forbidden;
          continue;
        }
        std::string state = !op.ok() ? op.status().ToString()
                                     : "state " + std::to_string(static_cast<int>(op->state)) + " counter " +
                                           std::to_string(op->device_counter) + " attempts " +
                                           std::to_string(op->attempts) + " error '" + op->last_error + "'";
        return Fail("op lost: " + sub.id.ToString() + " of " + d.name + " never applied (" + state +
                    ", retries " + std::to_string(sub.retries) + ")");
      }
      if (it->second.first != sub.stream) return Fail("op applied to the wrong stream");
      // The server's word is final: an applied op shows as sent at its seq (a discarded one came back).
      if (!sub.lost && (!op.ok() || op->state != OpState::kSent || op->seq != it->second.second)) {
        std::lock_guard<std::mutex> lock(d.history->mu);
        return Fail("op " + sub.id.ToString() + " of " + d.name + " (" + d.user + ") applied at seq " +
                    std::to_string(it->second.second) + " of " + sub.stream + " but shown " +
                    (op.ok() ? Describe(SeenOf(*op)) : op.status().ToString()) +
                    "; its history: " + Describe(d.history->ops[sub.id]));
      }
      if (!sub.file_sha256.empty()) {
        // Its file reached the server whole before the op did, and the op names exactly those bytes.
        if (!op->has_attachment || op->attachment.sha256 != sub.file_sha256 || op->attachment.blob_id.empty())
          return Fail("op " + sub.id.ToString() + " of " + d.name + " was applied without its attachment");
        auto blob = blobs_->Stat(op->attachment.blob_id);
        std::string bytes;
        Status read =
            blob.ok() ? blobs_->Read(op->attachment.blob_id, 0, blob->spec.size, &bytes) : blob.status();
        if (!read.ok() || !blob->complete || media::ToHex(media::Sha256(bytes)) != sub.file_sha256)
          return Fail("the blob of op " + sub.id.ToString() + " of " + d.name +
                      " is not its file: " + read.ToString());
        ++result_.attachments;
        continue;  // an op with a file takes its place in the stream when its upload completes
      }
      if (sub.retries > 0 || sub.discarded) continue;  // a retried op is ordered after its retry
      auto& [last, last_id] = last_seq[sub.stream];
      if (it->second.second <= last) {
        auto counter = [&](const OpId& id) {
          auto o = d.client->Get(id);
          return o.ok() ? std::to_string(o->device_counter) : o.status().ToString();
        };
        auto history = [&](const OpId& id) {
          std::lock_guard<std::mutex> lock(d.history->mu);
          return Describe(d.history->ops[id]);
        };
        return Fail("per-device order broken: " + d.name + " op " + sub.id.ToString() + " (counter " +
                    counter(sub.id) + ") got seq " + std::to_string(it->second.second) + " after op " +
                    last_id.ToString() + " (counter " + counter(last_id) + ") got seq " +
                    std::to_string(last) + "; their histories: " + history(sub.id) + "; " + history(last_id));
      }
      last = it->second.second;
      last_id = sub.id;
    }
    auto outbox = d.client->Outbox(1'000'000);
    if (!outbox.ok()) return Fail("outbox: " + outbox.status().ToString());
    for (const OpInfo& op : *outbox) {
      if (op.state != OpState::kFailed) return Fail(d.name + " outbox still holds a pending op");
    }
    // Every state each own op went through, to its last.
    for (const Submitted& sub : d.subs) {
      if (sub.lost) continue;
      auto op = d.client->Get(sub.id);
      if (op.ok()) d.history->Add(sub.id, SeenOf(*op));
    }
    if (!CheckHistories(d, true)) return false;
  }
  return CheckLost(applied, replays);
}

bool Sim::CheckLost(const std::map<OpId, std::pair<std::string, uint64_t>>& applied,
                    const std::map<std::string, MemberReplay>& replays) {
  std::map<OpId, const Device*> author;
  std::map<OpId, const Submitted*> submitted;
  for (const auto& d : devices_) {
    for (const Submitted& sub : d.subs) {
      author[sub.id] = &d;
      submitted[sub.id] = &sub;
    }
  }
  for (auto& d : devices_) {
    const ClientStats stats = d.client->Stats();
    CountRebases(d);
    result_.ops_lost += stats.ops_lost;
    if (restores_ == 0 && (result_.rebases != 0 || stats.ops_set_aside != 0 || stats.ops_lost != 0))
      return Fail(d.name + " rebased though the server was never restored");
    // What the device shows now, in every stream it may hold.
    std::set<OpId> shown;
    std::vector<std::string> streams = streams_;
    if (cfg_.membership) streams.push_back(d.feed);
    for (const auto& s : streams) {
      auto view = d.client->Latest(s, 1'000'000);
      if (!view.ok()) return Fail("latest: " + view.status().ToString());
      for (const OpInfo& op : *view) shown.insert(op.op_id);
    }
    std::map<OpId, std::string> set_aside;
    {
      std::lock_guard<std::mutex> lock(d.history->mu);
      set_aside = d.history->set_aside;
    }
    uint64_t lost = 0;
    for (const auto& [id, stream] : set_aside) {
      if (shown.contains(id)) continue;  // back
      ++lost;
      const std::string what = d.name + " (" + d.user + ") lost op " + id.ToString() + " of " + stream;
      // A feed entry: the server made it when it applied a members op, and makes new ones (new ids) when
      // that op is applied again: the old one is gone for good.
      if (stream.starts_with(kFeedPrefix)) {
        if (stream != d.feed) return Fail(what + ", not its user's feed");
        continue;
      }
      auto on_server = applied.find(id);
      if (on_server != applied.end()) {
        // The server has it again: only a device whose user is no member now goes without it (it pulls
        // nothing, as it may not have pulled everything before its user was removed).
        auto replay = replays.find(on_server->second.first);
        const bool member =
            !cfg_.membership || replay == replays.end() || replay->second.members.contains(d.user);
        if (member) {
          return Fail(what + ": the server holds it again at seq " +
                      std::to_string(on_server->second.second) +
                      " and the device may read it, yet it did not come back");
        }
        continue;
      }
      // Gone from the server: its author's device must no longer send it (refused when sent again, or the
      // user discarded it); an op the device still holds as its own and pending would come back.
      auto by = author.find(id);
      if (by == author.end()) return Fail(what + ", an op no device wrote");
      const Submitted* sub = submitted[id];
      auto op = by->second->client->Get(id);
      const bool refused = op.ok() && op->state == OpState::kFailed && !op->last_error.empty();
      if (!sub->discarded && !sub->lost && !refused) {
        return Fail(what + ": the server lost it and its author " + by->second->name + " holds it as " +
                    (op.ok() ? Describe(SeenOf(*op)) : op.status().ToString()));
      }
    }
    if (lost != stats.ops_lost) {
      return Fail(d.name + " counts " + std::to_string(stats.ops_lost) + " ops lost (" +
                  std::to_string(stats.ops_set_aside) + " set aside), but " + std::to_string(lost) +
                  " of the " + std::to_string(set_aside.size()) + " ops it set aside did not come back");
    }
  }
  return true;
}

bool Sim::MakeDevices(const StorageBackend* backend) {
  for (int i = 0; i < cfg_.devices; ++i) {
    Device d;
    d.user = users_[static_cast<size_t>(i) % users_.size()];
    d.name = "dev" + std::to_string(i);
    d.feed = FeedStream(d.user);
    d.follow_all = !cfg_.membership || i % 2 == 0;
    // Of the devices that follow only what their feed names, every other one leaves that to the engine.
    d.engine_follows = cfg_.membership && i % 4 == 1;
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
  if (cfg_.instances > 1) {
    for (int k = 0; k < cfg_.instances; ++k)
      instances_.push_back({net_ + "-" + std::to_string(k), nullptr, 0});
    if (!RestartInstances(true)) return result_;
  } else if (!OpenServer()) {
    return result_;
  }
  if (!MakeDevices(backend)) return result_;
  for (auto& d : devices_) {
    if (!OpenDevice(d, true)) return result_;
  }
  // With membership, a stream exists once a members op is applied to it: one device creates each (others
  // may create it first, later, with their own lists, or be refused when they are not on its list).
  for (size_t i = 0; cfg_.membership && i < streams_.size(); ++i) {
    Device& d = devices_[i % devices_.size()];
    std::vector<std::string> members = RandomMembers(d.user);
    if (std::find(members.begin(), members.end(), d.user) == members.end()) members.push_back(d.user);
    if (!SubmitOne(d, streams_[i], false, std::string(kMembersKind), EncodeMembers(members))) return result_;
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
    if (!Backups()) return result_;
    if (cfg_.instances > 1) {
      if (!StepInstances()) return result_;
      continue;
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
  result_.store_failures = server_disk_->flaky_failures();
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
      // Attachments: a quarter of the ops carry a small file, uploaded in chunks through a media transport
      // that loses requests and answers; devices crash in the middle of uploads.
      {"media",
       [](SimConfig& c) {
         c.attachments = 0.25;
         c.media_faults = 0.1;
       }},
      // Attachments on devices without sync: a power loss undoes upload progress (or the upload itself).
      {"media-power",
       [](SimConfig& c) {
         c.attachments = 0.25;
         c.media_faults = 0.1;
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
      // Streams with members: created and changed by members ops, discovered through feeds, refused to
      // non-members.
      {"members", [](SimConfig& c) { c.membership = true; }},
      // The server's store fails some transactions (no crash): devices hear Busy and resend.
      {"flaky-store", [](SimConfig& c) { c.server_store_flaky = 0.05; }},
      {"members-flaky",
       [](SimConfig& c) {
         c.membership = true;
         c.server_store_flaky = 0.05;
       }},
      // Membership on devices without sync, as "power".
      {"members-power",
       [](SimConfig& c) {
         c.membership = true;
         c.device_store_sync = false;
         c.device_power_loss = 0.004;
         c.server_crash_in_step = 0.002;
       }},
      // Two server instances on one shared store, each with its own listener; devices dial both and fail
      // over. Instances die (between steps, at a group commit or just after it) and come back while the
      // other runs; sometimes both are down and the store loses power. Ends with a live probe of the
      // wake-ups between instances.
      {"instances",
       [](SimConfig& c) {
         c.instances = 2;
         c.instance_crash = 0.008;
         c.instance_crash_in_step = 0.004;
         c.server_crash = 0.002;
       }},
      // Three instances with membership: an instance that sleeps through two steps of the others drains
      // several of their events at once (a join and a leave of one user in one batch).
      {"instances-members",
       [](SimConfig& c) {
         c.instances = 3;
         c.instance_crash = 0.008;
         c.instance_crash_in_step = 0.004;
         c.server_crash = 0.002;
         c.membership = true;
       }},
      // Two instances with membership on a store that says it has many writers (as PostgreSQL), and that
      // fails some commits: the core's multi-writer paths (locks up front, "lost" after a failed commit,
      // Welcomes re-checked in their snapshot) under every fault.
      {"instances-many-writers",
       [](SimConfig& c) {
         c.instances = 2;
         c.instance_crash = 0.008;
         c.instance_crash_in_step = 0.004;
         c.server_crash = 0.002;
         c.membership = true;
         c.many_writers = true;
         c.server_store_flaky = 0.02;
       }},
      // The server restored from an earlier copy of its store, several times per run, under traffic: devices
      // rebase (own lost ops sent again, others' set aside until re-sent), every invariant holds with the
      // loss rule as the only exception.
      {"restore",
       [](SimConfig& c) {
         c.snapshot = 0.03;
         c.server_restore = 0.02;
       }},
      // ... with membership: members ops lost and applied again (new feed entries, the old ones lost for
      // good), ops refused when sent again because the member lists they were applied under are gone.
      {"restore-members",
       [](SimConfig& c) {
         c.membership = true;
         c.members_share = 0.1;
         c.snapshot = 0.03;
         c.server_restore = 0.02;
       }},
      // ... on two server instances with membership, restored while both run.
      {"restore-instances",
       [](SimConfig& c) {
         c.instances = 2;
         c.instance_crash = 0.004;
         c.membership = true;
         c.snapshot = 0.03;
         c.server_restore = 0.02;
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
