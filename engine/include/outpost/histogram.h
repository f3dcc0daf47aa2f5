// Copyright 2026 The Outpost Authors.
//
// Histogram: a distribution in fixed buckets, as the engine's stats report latencies and sizes
// (ServerStats, ClientStats). The buckets are those of a Prometheus histogram, so an exporter maps one
// onto the other directly: bucket i counts the observations v with upper_bounds[i-1] < v <= upper_bounds[i],
// and the last bucket those above every bound (+Inf). `counts` are per bucket (NOT cumulative: add them up
// for Prometheus' `le` buckets).
//
//   Histogram h = Histogram::Latency();   // seconds
//   h.Observe(0.0031);
//   double p99 = h.Quantile(0.99);        // an estimate within the bucket that holds it
//
// Cost: the vectors are allocated when the histogram is made; Observe allocates nothing (a binary search
// over at most a few tens of bounds) unless `counts` was left the wrong size by hand, which it repairs once.
// Copying a Histogram copies its two vectors.
//
// Thread safety: none of its own (a plain value). The engine updates its histograms under its own locks
// and hands out copies (Stats()).
#ifndef OUTPOST_HISTOGRAM_H_
#define OUTPOST_HISTOGRAM_H_

#include <cstdint>
#include <vector>

#include "outpost/export.h"

namespace outpost {

struct OUTPOST_EXPORT Histogram {
  // Finite upper bounds of the buckets, strictly increasing (the unit is the histogram's: seconds for
  // latencies, a count for sizes).
  std::vector<double> upper_bounds;
  // Observations per bucket, NOT cumulative; counts.size() == upper_bounds.size() + 1, the last bucket being
  // +Inf (observations above every bound).
  std::vector<uint64_t> counts;
  uint64_t count = 0;  // observations in all buckets
  double sum = 0;      // sum of the observed values

  // No bounds: one +Inf bucket (count and sum only).
  Histogram() = default;
  // Buckets with these upper bounds; they are sorted and duplicates and NaNs dropped.
  explicit Histogram(std::vector<double> bounds);

  // Counts `v` in the first bucket whose bound is >= v (the +Inf bucket when above all). A NaN is ignored
  // (it would poison `sum`).
  void Observe(double v);
  // The value below which a fraction `q` of the observations lie, estimated by linear interpolation
  // within the bucket that holds that rank (as Prometheus' histogram_quantile): the first bucket starts
  // at 0 (or at its bound when that is <= 0); a rank in the +Inf bucket reads as the highest finite
  // bound. `q` is clamped to [0, 1]. 0 when there are no observations (or no finite bounds).
  double Quantile(double q) const;
  // Adds `other`'s observations; the bounds must be the same (else nothing is added and false returned).
  bool Merge(const Histogram& other);
  // Back to no observations, the bounds kept (no allocation).
  void Reset();

  // Latencies in seconds: 17 bounds from 50 µs to 10 s in 1-2.5-5 steps
  // (0.00005, 0.0001, 0.00025, 0.0005, 0.001, ..., 2.5, 5, 10).
  static Histogram Latency();
  // Sizes (items per batch or group): 1, 2, 4, ..., 4096 (13 bounds).
  static Histogram Sizes();
};

}  // namespace outpost

#endif  // OUTPOST_HISTOGRAM_H_
