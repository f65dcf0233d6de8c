#ifndef RIFFLE_SERVICE_LATENCY_HISTOGRAM_H_
#define RIFFLE_SERVICE_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace riffle::service {

// A lock-free latency histogram: any number of threads Record() with relaxed atomic
// increments (no lock on the serving path); readers get quantiles with a relative error of at
// most 1/8 (each power of two of nanoseconds is split into 8 sub-buckets, as HdrHistogram does
// with 3 significant bits). Covers 1 ns to ~68 s; longer latencies land in the last bucket and
// are exact in max_nanos().
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 3;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 34 * kSub;

  void Record(std::uint64_t nanos) {
    buckets_[BucketOf(nanos)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_nanos_.fetch_add(nanos, std::memory_order_relaxed);
    std::uint64_t max = max_nanos_.load(std::memory_order_relaxed);
    while (nanos > max &&
           !max_nanos_.compare_exchange_weak(max, nanos, std::memory_order_relaxed)) {
    }
  }

  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::uint64_t max_nanos() const { return max_nanos_.load(std::memory_order_relaxed); }
  // Sum of every recorded value (a Prometheus histogram's _sum); wraps after ~584 years.
  std::uint64_t sum_nanos() const { return sum_nanos_.load(std::memory_order_relaxed); }

  // The upper bound of the bucket holding the q-quantile (0 < q <= 1); 0 when empty.
  std::uint64_t QuantileNanos(double q) const {
    std::array<std::uint64_t, kBuckets> counts;
    std::uint64_t total = 0;
    for (int b = 0; b < kBuckets; ++b) {
      counts[b] = buckets_[b].load(std::memory_order_relaxed);
      total += counts[b];
    }
    if (total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
    std::uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts[b];
      if (seen >= rank && counts[b] > 0) {
        const std::uint64_t upper = UpperBound(b);
        const std::uint64_t max = max_nanos();
        return upper < max ? upper : max;
      }
    }
    return max_nanos();
  }

  // Bucket b's count, for exporters (Prometheus).
  std::uint64_t BucketCount(int b) const { return buckets_[b].load(std::memory_order_relaxed); }
  // Largest value that falls in bucket b.
  static std::uint64_t UpperBound(int b) {
    if (b < kSub) return static_cast<std::uint64_t>(b);
    const int shift = b / kSub - 1;
    const std::uint64_t sub = static_cast<std::uint64_t>(b % kSub) + kSub;
    return ((sub + 1) << shift) - 1;
  }
  static int BucketOf(std::uint64_t nanos) {
    if (nanos < kSub) return static_cast<int>(nanos);
    const int msb = 63 - std::countl_zero(nanos);  // >= kSubBits
    const int shift = msb - kSubBits;
    const int b = (shift + 1) * kSub + static_cast<int>((nanos >> shift) - kSub);
    return b < kBuckets ? b : kBuckets - 1;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> max_nanos_{0};
  std::atomic<std::uint64_t> sum_nanos_{0};
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_LATENCY_HISTOGRAM_H_
