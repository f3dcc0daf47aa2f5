// Copyright 2026 The Outpost Authors.
//
// Env: every clock reading and every random number the engine uses comes from here, so a simulation can
// drive time by hand and replay any run from a seed. Engine code never reads the system clock directly.
//
// Thread safety: every Env method may be called from any thread.
#ifndef OUTPOST_ENV_H_
#define OUTPOST_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "outpost/export.h"

namespace outpost {

class OUTPOST_EXPORT Env {
 public:
  virtual ~Env() = default;
  // Milliseconds since the Unix epoch. Used for op ids, created_at and backoff deadlines; never for order.
  virtual int64_t NowMs() = 0;
  // Fills `out` with random bytes (cryptographic quality in the system Env, seeded in ManualEnv).
  virtual void RandomBytes(void* out, size_t n) = 0;
  uint64_t RandomU64() {
    uint64_t v;
    RandomBytes(&v, sizeof v);
    return v;
  }
  // Uniform in [0, bound); 0 when bound is 0.
  uint64_t Uniform(uint64_t bound) { return bound == 0 ? 0 : RandomU64() % bound; }
};

// The process-wide system Env: real clock, getrandom(). Never destroyed.
OUTPOST_EXPORT Env* SystemEnv();

// A clock that moves only when told to and a seeded random source (splitmix64 → xoshiro256**).
class OUTPOST_EXPORT ManualEnv final : public Env {
 public:
  explicit ManualEnv(uint64_t seed, int64_t start_ms = 1'800'000'000'000);
  int64_t NowMs() override;
  void RandomBytes(void* out, size_t n) override;
  void SetNowMs(int64_t now_ms);
  void AdvanceMs(int64_t delta_ms);

 private:
  uint64_t NextLocked();
  std::mutex mu_;
  int64_t now_ms_;
  uint64_t s_[4];
};

}  // namespace outpost

#endif  // OUTPOST_ENV_H_
