// Copyright 2026 The Outpost Authors.
//
// A mutex, its scoped lock and a condition variable that Clang's thread-safety analysis understands
// (-Wthread-safety, on in the clang builds: CMakeLists.txt). State shared between threads names the mutex
// that guards it (OUTPOST_GUARDED_BY), and functions name what they need held (OUTPOST_REQUIRES) or must not
// hold (OUTPOST_EXCLUDES); the compiler then checks every access. With other compilers the annotations
// compile to nothing. The names follow Clang's documentation ("Thread Safety Analysis").
#ifndef OUTPOST_SRC_BASE_MUTEX_H_
#define OUTPOST_SRC_BASE_MUTEX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/check.h"

#if defined(__clang__)
#define OUTPOST_TSA(x) __attribute__((x))
#else
#define OUTPOST_TSA(x)
#endif

#define OUTPOST_CAPABILITY(x) OUTPOST_TSA(capability(x))
#define OUTPOST_SCOPED_CAPABILITY OUTPOST_TSA(scoped_lockable)
#define OUTPOST_GUARDED_BY(x) OUTPOST_TSA(guarded_by(x))
#define OUTPOST_PT_GUARDED_BY(x) OUTPOST_TSA(pt_guarded_by(x))
#define OUTPOST_ACQUIRED_AFTER(...) OUTPOST_TSA(acquired_after(__VA_ARGS__))
#define OUTPOST_REQUIRES(...) OUTPOST_TSA(requires_capability(__VA_ARGS__))
#define OUTPOST_ACQUIRE(...) OUTPOST_TSA(acquire_capability(__VA_ARGS__))
#define OUTPOST_RELEASE(...) OUTPOST_TSA(release_capability(__VA_ARGS__))
#define OUTPOST_EXCLUDES(...) OUTPOST_TSA(locks_excluded(__VA_ARGS__))
#define OUTPOST_ASSERT_CAPABILITY(x) OUTPOST_TSA(assert_capability(x))
#define OUTPOST_NO_THREAD_SAFETY_ANALYSIS OUTPOST_TSA(no_thread_safety_analysis)

namespace outpost {

class OUTPOST_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() OUTPOST_ACQUIRE() {
    mu_.lock();
    SetOwner(std::this_thread::get_id());
  }
  void Unlock() OUTPOST_RELEASE() {
    SetOwner(std::thread::id());
    mu_.unlock();
  }
  // Tells the analysis that the caller holds it, where the compiler cannot see the lock (a function called
  // by another part that took it). Checked at run time in builds with OUTPOST_DCHECK_ON.
  void AssertHeld() const OUTPOST_ASSERT_CAPABILITY(this) {
#ifdef OUTPOST_DCHECK_ON
    OUTPOST_CHECK(owner_.load(std::memory_order_relaxed) == std::this_thread::get_id());
#endif
  }

 private:
  friend class CondVar;
  // Kept in every build (so the layout does not depend on OUTPOST_DCHECK_ON); read only by AssertHeld.
  void SetOwner(std::thread::id id) { owner_.store(id, std::memory_order_relaxed); }

  std::mutex mu_;
  std::atomic<std::thread::id> owner_{};
};

class OUTPOST_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) OUTPOST_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() OUTPOST_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Waits release the mutex while blocked and hold it again on return. Conditions are loops in the caller
// (`while (!ready) cv.Wait(&mu);`), so that the analysis sees every guarded read under the lock.
class CondVar {
 public:
  void Wait(Mutex* mu) OUTPOST_REQUIRES(mu) {
    mu->SetOwner(std::thread::id());
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
    mu->SetOwner(std::this_thread::get_id());
  }
  // False when `timeout` passed (the caller re-checks its condition either way).
  bool WaitFor(Mutex* mu, std::chrono::milliseconds timeout) OUTPOST_REQUIRES(mu) {
    mu->SetOwner(std::thread::id());
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    mu->SetOwner(std::this_thread::get_id());
    return woken;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_BASE_MUTEX_H_
