// Copyright 2026 The Outpost Authors.
//
// Counters for the faults WrapFaulty (outpost/transport.h) injected, so a simulation can report how rough
// its network was and a test can tell a fault from a bug.
#ifndef OUTPOST_TRANSPORT_INPROC_FAULTY_TRANSPORT_H_
#define OUTPOST_TRANSPORT_INPROC_FAULTY_TRANSPORT_H_

#include <cstdint>

#include "outpost/transport.h"

namespace outpost {

struct FaultStats {
  uint64_t frames_dropped = 0;
  uint64_t frames_duplicated = 0;  // frames sent or delivered twice
  uint64_t frames_delayed = 0;
  uint64_t disconnects = 0;
};

// Totals over every connection `dialer` has made, both directions; all zero when `dialer` was not made by
// WrapFaulty. Safe to call while its connections are in use on other threads.
FaultStats GetFaultStats(const Dialer& dialer);

}  // namespace outpost

#endif  // OUTPOST_TRANSPORT_INPROC_FAULTY_TRANSPORT_H_
