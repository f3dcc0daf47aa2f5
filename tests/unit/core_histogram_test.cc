// Copyright 2026 The Outpost Authors.
//
// Histogram (outpost/histogram.h): bucket edges as Prometheus reads them (a value equal to a bound is in
// that bound's bucket), the +Inf bucket, values that must not count, and the quantile estimate at its edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "outpost/histogram.h"

namespace outpost {
namespace {

uint64_t Total(const Histogram& h) {
  uint64_t n = 0;
  for (uint64_t c : h.counts) n += c;
  return n;
}

TEST(HistogramTest, AValueOnABoundIsInThatBoundsBucket) {
  Histogram h({1, 2, 4});
  ASSERT_EQ(h.counts.size(), 4u);
  h.Observe(1);     // le=1
  h.Observe(1.5);   // le=2
  h.Observe(2);     // le=2
  h.Observe(4);     // le=4
  h.Observe(4.01);  // +Inf
  h.Observe(-3);    // below every bound: the first bucket
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{2, 2, 1, 1}));
  EXPECT_EQ(h.count, 6u);
  EXPECT_EQ(Total(h), h.count);
  EXPECT_DOUBLE_EQ(h.sum, 1 + 1.5 + 2 + 4 + 4.01 - 3);
}

TEST(HistogramTest, NaNIsIgnoredAndInfinityGoesToTheInfBucket) {
  Histogram h({1});
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.count, 0u);
  EXPECT_EQ(h.sum, 0);
  h.Observe(std::numeric_limits<double>::infinity());
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{0, 1}));
}

TEST(HistogramTest, BoundsAreSortedAndCleanedWhenMade) {
  Histogram h(
      {4, 1, std::numeric_limits<double>::quiet_NaN(), 2, 2, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h.upper_bounds, (std::vector<double>{1, 2, 4}));
  EXPECT_EQ(h.counts.size(), 4u);
}

TEST(HistogramTest, DefaultAndMismatchedHistogramsStillCount) {
  Histogram none;  // no bounds: only the +Inf bucket
  none.Observe(3);
  EXPECT_EQ(none.counts, (std::vector<uint64_t>{1}));
  EXPECT_EQ(none.count, 1u);
  EXPECT_EQ(none.Quantile(0.5), 0);  // no finite bound to estimate with

  Histogram broken;
  broken.upper_bounds = {1, 2};  // counts left empty by hand
  broken.Observe(1.5);
  EXPECT_EQ(broken.counts, (std::vector<uint64_t>{0, 1, 0}));
}

TEST(HistogramTest, QuantileOfNothingIsZero) {
  Histogram h = Histogram::Latency();
  EXPECT_EQ(h.Quantile(0.5), 0);
  EXPECT_EQ(h.Quantile(0.99), 0);
}

TEST(HistogramTest, QuantileInterpolatesWithinTheBucket) {
  Histogram h({10, 20});
  for (int i = 0; i < 4; ++i) h.Observe(15);  // all in (10, 20]
  EXPECT_DOUBLE_EQ(h.Quantile(0.5), 15);      // half way through the bucket
  EXPECT_DOUBLE_EQ(h.Quantile(0.25), 12.5);
  EXPECT_DOUBLE_EQ(h.Quantile(1), 20);
  EXPECT_DOUBLE_EQ(h.Quantile(0), 10);  // the lower edge of the first non-empty bucket
  // The first bucket starts at 0.
  Histogram low({10, 20});
  low.Observe(5);
  low.Observe(5);
  EXPECT_DOUBLE_EQ(low.Quantile(0.5), 5);
}

TEST(HistogramTest, QuantileClampsAndReadsTheInfBucketAsTheHighestBound) {
  Histogram h({1, 2});
  h.Observe(0.5);
  h.Observe(100);
  h.Observe(100);
  h.Observe(100);
  EXPECT_DOUBLE_EQ(h.Quantile(0.99), 2);  // in +Inf: the highest finite bound
  EXPECT_DOUBLE_EQ(h.Quantile(7), 2);     // clamped to 1
  EXPECT_DOUBLE_EQ(h.Quantile(-1), 0);    // clamped to 0: the first bucket's lower edge
  EXPECT_EQ(h.Quantile(std::numeric_limits<double>::quiet_NaN()), 0);
  // A first bound at or below 0 has no lower edge: the bound itself.
  Histogram neg({-1, 1});
  neg.Observe(-5);
  EXPECT_DOUBLE_EQ(neg.Quantile(0.5), -1);
}

TEST(HistogramTest, QuantileIsMonotonic) {
  Histogram h = Histogram::Latency();
  for (int i = 1; i <= 1000; ++i) h.Observe(i * 1e-4);
  double last = -1;
  for (double q = 0; q <= 1.0; q += 0.01) {
    const double v = h.Quantile(q);
    EXPECT_GE(v, last) << "q=" << q;
    last = v;
  }
  // The true median is 0.05: the estimate lies in its bucket (0.025, 0.05].
  EXPECT_GT(h.Quantile(0.5), 0.025);
  EXPECT_LE(h.Quantile(0.5), 0.05);
}

TEST(HistogramTest, StandardBuckets) {
  const Histogram latency = Histogram::Latency();
  EXPECT_EQ(latency.upper_bounds.size(), 17u);
  EXPECT_DOUBLE_EQ(latency.upper_bounds.front(), 0.00005);
  EXPECT_DOUBLE_EQ(latency.upper_bounds.back(), 10);
  EXPECT_TRUE(std::is_sorted(latency.upper_bounds.begin(), latency.upper_bounds.end()));
  EXPECT_EQ(latency.counts.size(), 18u);
  const Histogram sizes = Histogram::Sizes();
  EXPECT_EQ(sizes.upper_bounds.size(), 13u);
  EXPECT_DOUBLE_EQ(sizes.upper_bounds.front(), 1);
  EXPECT_DOUBLE_EQ(sizes.upper_bounds.back(), 4096);
}

TEST(HistogramTest, MergeNeedsTheSameBoundsAndResetKeepsThem) {
  Histogram a = Histogram::Sizes();
  Histogram b = Histogram::Sizes();
  a.Observe(3);
  b.Observe(3);
  b.Observe(5000);
  ASSERT_TRUE(a.Merge(b));
  EXPECT_EQ(a.count, 3u);
  EXPECT_DOUBLE_EQ(a.sum, 5006);
  EXPECT_EQ(Total(a), 3u);
  Histogram other = Histogram::Latency();
  other.Observe(1);
  EXPECT_FALSE(a.Merge(other));
  EXPECT_EQ(a.count, 3u);
  a.Reset();
  EXPECT_EQ(a.count, 0u);
  EXPECT_EQ(a.sum, 0);
  EXPECT_EQ(Total(a), 0u);
  EXPECT_EQ(a.upper_bounds.size(), 13u);
}

}  // namespace
}  // namespace outpost
