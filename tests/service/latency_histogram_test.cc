#include "service/latency_histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace riffle::service {
namespace {

TEST(LatencyHistogramTest, BucketsCoverEveryValueWithBoundedRelativeError) {
  for (std::uint64_t v : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 17ull, 1000ull, 123456ull,
                          999'999'999ull, 60'000'000'000ull}) {
    const int b = LatencyHistogram::BucketOf(v);
    ASSERT_GE(LatencyHistogram::UpperBound(b), v) << v;
    if (b > 0) {
      ASSERT_LT(LatencyHistogram::UpperBound(b - 1), v) << v;
    }
    // 3 significant bits: the bucket's upper bound is within 1/8 of the value.
    EXPECT_LE(static_cast<double>(LatencyHistogram::UpperBound(b)), v * 1.125 + 1) << v;
  }
  EXPECT_EQ(LatencyHistogram::BucketOf(1ull << 62), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, Quantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.QuantileNanos(0.5), 0u);
  // 90 values of 1 us and 10 of 1 ms: p50 ~ 1 us, p99 ~ 1 ms (within a bucket), max exact.
  for (int i = 0; i < 90; ++i) h.Record(1000);
  for (int i = 0; i < 10; ++i) h.Record(1'000'000);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_GE(h.QuantileNanos(0.5), 1000u);
  EXPECT_LE(h.QuantileNanos(0.5), 1125u);
  EXPECT_GE(h.QuantileNanos(0.99), 1'000'000u);
  EXPECT_LE(h.QuantileNanos(0.99), 1'000'000u);  // capped by the exact max
  EXPECT_EQ(h.max_nanos(), 1'000'000u);
}

TEST(LatencyHistogramTest, ConcurrentRecordsAreAllCounted) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.Record(static_cast<std::uint64_t>(i * (t + 1)));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_EQ(h.max_nanos(), 9999u * 4);
  // sum of i * (t + 1) for i < 10000, t < 4 = (9999 * 10000 / 2) * (1 + 2 + 3 + 4)
  EXPECT_EQ(h.sum_nanos(), 49'995'000u * 10);
}

TEST(LatencyHistogramTest, SumAndBucketCountsForExporters) {
  LatencyHistogram h;
  EXPECT_EQ(h.sum_nanos(), 0u);
  h.Record(5);
  h.Record(5);
  h.Record(1000);
  EXPECT_EQ(h.sum_nanos(), 1010u);
  EXPECT_EQ(h.BucketCount(LatencyHistogram::BucketOf(5)), 2u);
  EXPECT_EQ(h.BucketCount(LatencyHistogram::BucketOf(1000)), 1u);
}

}  // namespace
}  // namespace riffle::service
