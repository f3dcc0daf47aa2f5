// Copyright 2026 The Outpost Authors.
//
// WrapFaulty: a Connection decorator that loses, doubles, holds back and cuts, decided per frame by a
// private random stream. Nothing here reads a real clock or a shared random source, so a seed, the env's
// clock readings and the order of calls together fix every fault.
#include "transport/inproc/faulty_transport.h"

#include <atomic>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "outpost/env.h"

namespace outpost {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// splitmix64: small, fast and good enough to decide faults; ManualEnv's generator is shared and locked.
class FaultRng {
 public:
  explicit FaultRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix64(state_ += 0x9E3779B97F4A7C15ULL); }
  // True with probability `p`: never for p <= 0, always for p >= 1.
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

struct SharedStats {
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> duplicated{0};
  std::atomic<uint64_t> delayed{0};
  std::atomic<uint64_t> disconnects{0};
};

void Count(std::atomic<uint64_t>* counter) { counter->fetch_add(1, std::memory_order_relaxed); }

// What happens to one frame.
struct Fate {
  bool disconnect = false;
  bool drop = false;
  bool duplicate = false;
  bool delay = false;
  int64_t delay_ms = 0;
};

struct Held {
  std::string frame;
  int copies = 1;
};

class FaultyConnection final : public Connection {
 public:
  FaultyConnection(std::unique_ptr<Connection> inner, const FaultOptions& faults, Env* env, uint64_t seed,
                   std::shared_ptr<SharedStats> stats)
      : inner_(std::move(inner)), faults_(faults), env_(env), rng_(seed), stats_(std::move(stats)) {}

  Status Send(std::string_view frame) override {
    ReleaseDue();
    if (!inner_->IsOpen()) return Status::Unavailable("faulty: connection closed");
    Fate fate = Roll();
    if (fate.disconnect) {
      Disconnect();
      return Status::Unavailable("faulty: connection dropped (injected fault)");
    }
    if (fate.drop) {
      Count(&stats_->dropped);
      return Status::OK();  // lost on the wire: the sender cannot tell
    }
    const int copies = fate.duplicate ? 2 : 1;
    if (fate.duplicate) Count(&stats_->duplicated);
    if (fate.delay) {
      Hold(&held_out_, fate.delay_ms, Held{std::string(frame), copies});
      return Status::OK();
    }
    for (int i = 0; i < copies; ++i) OUTPOST_RETURN_IF_ERROR(inner_->Send(frame));
    return Status::OK();
  }

  bool Receive(std::string* frame) override {
    ReleaseDue();
    for (;;) {
      if (!ready_in_.empty()) {
        *frame = std::move(ready_in_.front());
        ready_in_.pop_front();
        return true;
      }
      std::string arrived;
      if (!inner_->Receive(&arrived)) return false;
      Fate fate = Roll();
      if (fate.disconnect) {
        Disconnect();
        return false;
      }
      if (fate.drop) {
        Count(&stats_->dropped);
        continue;
      }
      const int copies = fate.duplicate ? 2 : 1;
      if (fate.duplicate) Count(&stats_->duplicated);
      if (fate.delay) {
        Hold(&held_in_, fate.delay_ms, Held{std::move(arrived), copies});
        continue;
      }
      if (copies == 2) ready_in_.push_back(arrived);
      *frame = std::move(arrived);
      return true;
    }
  }

  [[nodiscard]] bool IsOpen() const override {
    ReleaseDue();
    return inner_->IsOpen();
  }

  void Close() override {
    DiscardHeld();
    inner_->Close();
  }

  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }

 private:
  // Every frame draws the same five numbers whatever its fate, so changing one probability leaves the
  // draws behind the other faults where they were.
  Fate Roll() {
    Fate fate;
    fate.disconnect = rng_.Chance(faults_.disconnect);
    fate.drop = rng_.Chance(faults_.drop);
    fate.duplicate = rng_.Chance(faults_.duplicate);
    fate.delay = rng_.Chance(faults_.delay);
    uint64_t r = rng_.Next();
    if (faults_.delay_ms_max > 0) {
      fate.delay_ms = 1 + static_cast<int64_t>(r % static_cast<uint64_t>(faults_.delay_ms_max));
    }
    return fate;
  }

  void Hold(std::multimap<int64_t, Held>* held, int64_t delay_ms, Held frame) {
    Count(&stats_->delayed);
    // multimap keeps frames due at the same millisecond in the order they were held.
    held->emplace(env_->NowMs() + delay_ms, std::move(frame));
  }

  // Const because IsOpen is, and IsOpen counts as using the connection: a device that only polls IsOpen
  // still lets its delayed frames go.
  void ReleaseDue() const {
    if (held_out_.empty() && held_in_.empty()) return;  // no clock read when nothing waits
    const int64_t now = env_->NowMs();
    while (!held_out_.empty() && held_out_.begin()->first <= now) {
      auto node = held_out_.extract(held_out_.begin());
      for (int i = 0; i < node.mapped().copies; ++i) {
        // A frame released into a closed connection is lost, as it would be on a real network.
        static_cast<void>(inner_->Send(node.mapped().frame));
      }
    }
    while (!held_in_.empty() && held_in_.begin()->first <= now) {
      auto node = held_in_.extract(held_in_.begin());
      for (int i = 1; i < node.mapped().copies; ++i) ready_in_.push_back(node.mapped().frame);
      ready_in_.push_back(std::move(node.mapped().frame));
    }
  }

  void DiscardHeld() {
    held_out_.clear();
    held_in_.clear();
    ready_in_.clear();
  }

  void Disconnect() {
    Count(&stats_->disconnects);
    DiscardHeld();
    inner_->Close();  // the peer sees the close as it would a dropped link
  }

  const std::unique_ptr<Connection> inner_;
  const FaultOptions faults_;
  Env* const env_;
  FaultRng rng_;
  const std::shared_ptr<SharedStats> stats_;
  // Mutable for ReleaseDue() under IsOpen() const; see there.
  mutable std::multimap<int64_t, Held> held_out_;  // due ms → frame not yet given to inner_
  mutable std::multimap<int64_t, Held> held_in_;   // due ms → frame taken from inner_, not yet deliverable
  mutable std::deque<std::string> ready_in_;       // deliverable before anything new from inner_
};

class FaultyDialer final : public Dialer {
 public:
  FaultyDialer(std::unique_ptr<Dialer> inner, const FaultOptions& faults, Env* env, uint64_t seed)
      : inner_(std::move(inner)), faults_(faults), env_(env), seed_(seed) {}

  Result<std::unique_ptr<Connection>> Connect() override {
    // Each attempt gets its own stream, so a reconnect does not replay the faults of the connection before
    // it, yet the n-th attempt of a run always gets the same one.
    const uint64_t attempt = attempts_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t conn_seed = Mix64(seed_ ^ Mix64(attempt + 1));
    OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Connection> inner, inner_->Connect());
    return std::unique_ptr<Connection>(
        std::make_unique<FaultyConnection>(std::move(inner), faults_, env_, conn_seed, stats_));
  }

  [[nodiscard]] FaultStats Stats() const {
    FaultStats s;
    s.frames_dropped = stats_->dropped.load(std::memory_order_relaxed);
    s.frames_duplicated = stats_->duplicated.load(std::memory_order_relaxed);
    s.frames_delayed = stats_->delayed.load(std::memory_order_relaxed);
    s.disconnects = stats_->disconnects.load(std::memory_order_relaxed);
    return s;
  }

 private:
  const std::unique_ptr<Dialer> inner_;
  const FaultOptions faults_;
  Env* const env_;
  const uint64_t seed_;
  std::atomic<uint64_t> attempts_{0};
  // Shared with the connections, which may outlive the dialer.
  const std::shared_ptr<SharedStats> stats_ = std::make_shared<SharedStats>();
};

}  // namespace

std::unique_ptr<Dialer> WrapFaulty(std::unique_ptr<Dialer> inner, const FaultOptions& faults, Env* env,
                                   uint64_t seed) {
  return std::make_unique<FaultyDialer>(std::move(inner), faults, env, seed);
}

FaultStats GetFaultStats(const Dialer& dialer) {
  const auto* faulty = dynamic_cast<const FaultyDialer*>(&dialer);
  return faulty != nullptr ? faulty->Stats() : FaultStats{};
}

}  // namespace outpost
