// Copyright 2026 The Outpost Authors.
#include "outpost/env.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace outpost {
namespace {

class SystemEnvImpl final : public Env {
 public:
  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void RandomBytes(void* out, size_t n) override {
    auto* p = static_cast<unsigned char*>(out);
    // Small requests (an op id's 10 random bytes, a jitter draw) come from a buffer refilled 4 KiB at a
    // time: one getrandom call per op was ~6% of the submit path.
    std::lock_guard<std::mutex> lock(mu_);
    while (n > 0) {
      if (pos_ == sizeof buf_) {
        Fill(buf_, sizeof buf_);
        pos_ = 0;
      }
      size_t take = std::min(n, sizeof buf_ - pos_);
      std::memcpy(p, buf_ + pos_, take);
      // Bytes handed out are never handed out again.
      std::memset(buf_ + pos_, 0, take);
      pos_ += take;
      p += take;
      n -= take;
    }
  }

 private:
  static void Fill(unsigned char* p, size_t n) {
    while (n > 0) {
      // getrandom may return fewer bytes than asked (large requests, signals); keep going until filled.
      ssize_t got = getrandom(p, n, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        // Ids and jitter must not silently lose their randomness, and RandomBytes has no way to report an
        // error: the kernel refusing randomness (ENOSYS on a pre-3.17 kernel) is a broken environment.
        std::fprintf(stderr, "outpost: getrandom failed: %s\n", std::strerror(errno));
        std::abort();
      }
      p += got;
      n -= static_cast<size_t>(got);
    }
  }
  std::mutex mu_;
  unsigned char buf_[4096];
  size_t pos_ = sizeof buf_;
};

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Env* SystemEnv() {
  // Leaked on purpose: objects destroyed during static destruction may still read the clock.
  static Env* const env = new SystemEnvImpl;
  return env;
}

ManualEnv::ManualEnv(uint64_t seed, int64_t start_ms) : now_ms_(start_ms) {
  // splitmix64 spreads any seed (0 included) over the whole state; xoshiro256** must not start all-zero, and
  // splitmix64 never yields four zero words in a row.
  uint64_t sm = seed;
  for (uint64_t& word : s_) word = SplitMix64(&sm);
}

int64_t ManualEnv::NowMs() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_ms_;
}

void ManualEnv::SetNowMs(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ = now_ms;
}

void ManualEnv::AdvanceMs(int64_t delta_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ms_ += delta_ms;
}

void ManualEnv::RandomBytes(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  std::lock_guard<std::mutex> lock(mu_);
  while (n > 0) {
    // Each call starts on a fresh word, so the bytes a caller gets depend only on the sequence of call sizes.
    // Bytes come out little-endian whatever the host, so a seed replays the same run on any machine.
    uint64_t word = NextLocked();
    size_t take = n < sizeof word ? n : sizeof word;
    for (size_t i = 0; i < take; ++i) p[i] = static_cast<unsigned char>(word >> (8 * i));
    p += take;
    n -= take;
  }
}

// xoshiro256** 1.0 (Blackman and Vigna, public domain reference implementation).
uint64_t ManualEnv::NextLocked() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

}  // namespace outpost
