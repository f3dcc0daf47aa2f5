// Copyright 2026 The Outpost Authors.
//
// Assertions. OUTPOST_CHECK(cond) is always on: a false condition prints where and what, then aborts. Use it
// for what would corrupt stored state or hide a bug if execution went on (a counter that would go negative,
// an index that would point at the wrong record). OUTPOST_DCHECK(cond) is the same in builds with
// OUTPOST_DCHECK_ON (every build but Release: CMakeLists.txt's OUTPOST_DCHECKS option) and compiles to
// nothing, its condition unevaluated, otherwise; use it for costly checks and for internal consistency in
// hot paths. Neither is for input: bad input gets a Status, never an abort.
#ifndef OUTPOST_SRC_BASE_CHECK_H_
#define OUTPOST_SRC_BASE_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace outpost::internal {

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace outpost::internal

#define OUTPOST_CHECK(condition)                     \
  (__builtin_expect(static_cast<bool>(condition), 1) \
       ? (void)0                                     \
       : ::outpost::internal::CheckFailed(__FILE__, __LINE__, #condition))

#ifdef OUTPOST_DCHECK_ON
#define OUTPOST_DCHECK(condition) OUTPOST_CHECK(condition)
#else
#define OUTPOST_DCHECK(condition) static_cast<void>(sizeof(static_cast<bool>(condition)))
#endif

#endif  // OUTPOST_SRC_BASE_CHECK_H_
