// Copyright 2026 The Outpost Authors.
#include "outpost/histogram.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace outpost {

Histogram::Histogram(std::vector<double> bounds) : upper_bounds(std::move(bounds)) {
  upper_bounds.erase(std::remove_if(upper_bounds.begin(), upper_bounds.end(),
                                    [](double b) { return std::isnan(b) || std::isinf(b); }),
                     upper_bounds.end());
  std::sort(upper_bounds.begin(), upper_bounds.end());
  upper_bounds.erase(std::unique(upper_bounds.begin(), upper_bounds.end()), upper_bounds.end());
  counts.assign(upper_bounds.size() + 1, 0);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // A histogram built by hand with mismatched vectors is repaired once rather than indexed out of range.
  if (counts.size() != upper_bounds.size() + 1) counts.resize(upper_bounds.size() + 1, 0);
  const size_t i = static_cast<size_t>(std::lower_bound(upper_bounds.begin(), upper_bounds.end(), v) -
                                       upper_bounds.begin());
  ++counts[i];
  ++count;
  sum += v;
}

double Histogram::Quantile(double q) const {
  if (std::isnan(q)) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || upper_bounds.empty()) return 0;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;  // observations in the buckets before i
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t in = counts[i];
    // The first bucket whose cumulative count reaches the rank (a rank of 0: the first non-empty one).
    if (in == 0 || static_cast<double>(below + in) < rank) {
      below += in;
      continue;
    }
    if (i == upper_bounds.size()) return upper_bounds.back();  // the +Inf bucket has no upper end
    const double upper = upper_bounds[i];
    double lower = i == 0 ? 0.0 : upper_bounds[i - 1];
    if (i == 0 && upper <= 0) return upper;
    const double fraction = (rank - static_cast<double>(below)) / static_cast<double>(in);
    return lower + (upper - lower) * std::clamp(fraction, 0.0, 1.0);
  }
  return upper_bounds.back();
}

bool Histogram::Merge(const Histogram& other) {
  if (other.upper_bounds != upper_bounds) return false;
  if (counts.size() != upper_bounds.size() + 1) counts.resize(upper_bounds.size() + 1, 0);
  for (size_t i = 0; i < counts.size() && i < other.counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
  return true;
}

void Histogram::Reset() {
  std::fill(counts.begin(), counts.end(), 0);
  count = 0;
  sum = 0;
}

Histogram Histogram::Latency() {
  return Histogram({0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1, 2.5, 5, 10});
}

Histogram Histogram::Sizes() {
  std::vector<double> bounds;
  for (double b = 1; b <= 4096; b *= 2) bounds.push_back(b);
  return Histogram(std::move(bounds));
}

}  // namespace outpost
