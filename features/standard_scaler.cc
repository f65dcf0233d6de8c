#include "features/standard_scaler.h"

#include <bit>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "features/simd_builds.h"
#include "learners/lanes.h"

#if defined(__x86_64__)
#include <emmintrin.h>
#define RIFFLE_SCALER_LANES 1
#endif

namespace riffle::features {
namespace {

using learners::FeatureIndex;

#ifdef RIFFLE_SCALER_LANES
// Four doubles operated on together (a GCC vector extension): two SSE2 instructions per
// operation in the baseline build, one AVX instruction in the AVX2 build below. Division and
// square root of a vector round each lane exactly as the scalar instructions do (and neither
// build enables FMA contraction), so a block of four gives the same bits as four scalar steps.
//
// Why: the scaler is bound by its divisions. A labeled row costs, per feature, two divisions
// and a square root to learn plus one division per transform (before predicting and after
// learning). On this project's Zen 4 machines a scalar division takes about 1.3 ns, a lane of
// an SSE2 division 0.45 ns and of an AVX one 0.23 ns.
//
// Vectors are built from scalars in one expression and stored whole or lane by constant lane:
// filling them lane by lane in a loop goes through the stack, and the wide reload of four
// narrow stores stalls (no store forwarding), which costs more than the divisions save.
using Lanes = double __attribute__((vector_size(4 * sizeof(double))));
constexpr std::size_t kLanes = 4;

#endif

// The statistics as the block functions below take them. Scaling reads only `means` and
// `stddevs`.
struct Stats {
  std::uint64_t* counts;
  double* means;
  double* vars;
  double* stddevs;
  std::size_t size;
};
struct ScaleStats {
  const double* means;
  const double* stddevs;
  std::size_t size;
};

// Welford's update, written as River writes it so both give the same numbers.
inline void UpdateOne(const Stats& s, FeatureIndex j, double v) {
  const double n = static_cast<double>(++s.counts[j]);
  const double old_mean = s.means[j];
  s.means[j] += (v - old_mean) / n;
  s.vars[j] += ((v - old_mean) * (v - s.means[j]) - s.vars[j]) / n;
  s.stddevs[j] = std::sqrt(s.vars[j]);
}

// A feature never learned, or whose variance is 0, scales to 0.
inline double ScaleOne(const ScaleStats& s, FeatureIndex j, double v) {
  const double stddev = j < s.size ? s.stddevs[j] : 0.0;
  return stddev > 0 ? (v - s.means[j]) / stddev : 0.0;
}

// One feature at a time, for k in [begin, end): out[k] = x[k] scaled.
inline void ScaleOneByOne(const ScaleStats& s, const FeatureIndex* idx, const double* x,
                          std::size_t begin, std::size_t end, double* out) {
  for (std::size_t k = begin; k < end; ++k) out[k] = ScaleOne(s, idx[k], x[k]);
}

// One feature at a time, for k in [begin, end) in order: update with x[k], then scale it.
inline void LearnAndScaleOneByOne(const Stats& s, const FeatureIndex* idx, const double* x,
                                  std::size_t begin, std::size_t end, double* out) {
  const ScaleStats scale{s.means, s.stddevs, s.size};
  for (std::size_t k = begin; k < end; ++k) {
    UpdateOne(s, idx[k], x[k]);
    out[k] = ScaleOne(scale, idx[k], x[k]);
  }
}

#ifdef RIFFLE_SCALER_LANES

// True if two of the four indices are equal. Such a block is done one feature at a time, so
// that the second occurrence sees the first one's update, as in a scalar pass.
inline bool HasRepeat(const FeatureIndex* j) {
  return j[0] == j[1] || j[0] == j[2] || j[0] == j[3] || j[1] == j[2] || j[1] == j[3] ||
         j[2] == j[3];
}

// Four counts operated on together.
using CountLanes = std::uint64_t __attribute__((vector_size(4 * sizeof(std::uint64_t))));
// Counts below this convert to doubles exactly by ToDoubles.
constexpr std::uint64_t kExactCountLimit = std::uint64_t{1} << 52;

// static_cast<double> of each lane, for counts below kExactCountLimit: 2^52 + c has c in the
// low bits of its significand, so setting the exponent of 2^52 above c and subtracting 2^52
// (both exact) gives c. (x86-64 has no conversion of unsigned 64-bit vectors before AVX-512.)
[[gnu::always_inline]] inline void ToDoubles(const CountLanes& counts, Lanes* out) {
  const CountLanes biased = counts | std::bit_cast<std::uint64_t>(0x1p52);
  std::memcpy(out, &biased, sizeof(*out));
  *out -= 0x1p52;
}

// out[k] = x[k] scaled with the current statistics, for k < n. In place (out == x) is allowed:
// each block reads its x before writing its out.
[[gnu::always_inline]] inline void ScaleAllBody(const ScaleStats& s, const FeatureIndex* idx,
                                                const double* x, std::size_t n, double* out) {
  const Lanes zero = {0.0, 0.0, 0.0, 0.0};
  std::size_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    const FeatureIndex* j = idx + k;
    Lanes mean;
    Lanes stddev;
    if (learners::ConsecutiveIndices(j) && std::uint64_t{j[0]} + 3 < s.size) {
      std::memcpy(&mean, s.means + j[0], sizeof(mean));
      std::memcpy(&stddev, s.stddevs + j[0], sizeof(stddev));
    } else if (j[0] < s.size && j[1] < s.size && j[2] < s.size && j[3] < s.size) {
      mean = Lanes{s.means[j[0]], s.means[j[1]], s.means[j[2]], s.means[j[3]]};
      stddev = Lanes{s.stddevs[j[0]], s.stddevs[j[1]], s.stddevs[j[2]], s.stddevs[j[3]]};
    } else {
      ScaleOneByOne(s, idx, x, k, k + kLanes, out);
      continue;
    }
    Lanes v;
    std::memcpy(&v, x + k, sizeof(v));
    // Lanes whose stddev is 0 divide by 0 and are then replaced by 0 (no trap: default FP
    // environment).
    const Lanes scaled = stddev > zero ? (v - mean) / stddev : zero;
    std::memcpy(out + k, &scaled, sizeof(scaled));
  }
  ScaleOneByOne(s, idx, x, k, n, out);
}

// The learning step of one block of four distinct features: updates their statistics with
// x[0..3], then sets out[0..3] to x[0..3] scaled with the updated statistics. kConsecutive:
// the indices are consecutive (learners::ConsecutiveIndices) and every count is below
// kExactCountLimit - 1.
template <bool kConsecutive>
[[gnu::always_inline]] inline void LearnAndScaleBlock(const Stats& s, const FeatureIndex* j,
                                                      const double* x, double* out) {
  const Lanes zero = {0.0, 0.0, 0.0, 0.0};
  Lanes v;
  std::memcpy(&v, x, sizeof(v));
  Lanes n_seen;
  Lanes old_mean;
  Lanes old_var;
  if constexpr (kConsecutive) {
    CountLanes counts;
    std::memcpy(&counts, s.counts + j[0], sizeof(counts));
    counts += 1;
    std::memcpy(s.counts + j[0], &counts, sizeof(counts));
    ToDoubles(counts, &n_seen);
    std::memcpy(&old_mean, s.means + j[0], sizeof(old_mean));
    std::memcpy(&old_var, s.vars + j[0], sizeof(old_var));
  } else {
    n_seen = Lanes{static_cast<double>(++s.counts[j[0]]), static_cast<double>(++s.counts[j[1]]),
                   static_cast<double>(++s.counts[j[2]]), static_cast<double>(++s.counts[j[3]])};
    old_mean = Lanes{s.means[j[0]], s.means[j[1]], s.means[j[2]], s.means[j[3]]};
    old_var = Lanes{s.vars[j[0]], s.vars[j[1]], s.vars[j[2]], s.vars[j[3]]};
  }
  // The same expressions as UpdateOne, lane by lane.
  const Lanes mean = old_mean + (v - old_mean) / n_seen;
  const Lanes var = old_var + ((v - old_mean) * (v - mean) - old_var) / n_seen;
  // No generic vector square root: two SSE2 ones (VEX-encoded in the AVX2 build).
  const __m128d low = _mm_sqrt_pd(__m128d{var[0], var[1]});
  const __m128d high = _mm_sqrt_pd(__m128d{var[2], var[3]});
  const Lanes stddev = {low[0], low[1], high[0], high[1]};
  const Lanes scaled = stddev > zero ? (v - mean) / stddev : zero;
  if constexpr (kConsecutive) {
    std::memcpy(s.means + j[0], &mean, sizeof(mean));
    std::memcpy(s.vars + j[0], &var, sizeof(var));
    std::memcpy(s.stddevs + j[0], &stddev, sizeof(stddev));
  } else {
    s.means[j[0]] = mean[0];
    s.means[j[1]] = mean[1];
    s.means[j[2]] = mean[2];
    s.means[j[3]] = mean[3];
    s.vars[j[0]] = var[0];
    s.vars[j[1]] = var[1];
    s.vars[j[2]] = var[2];
    s.vars[j[3]] = var[3];
    s.stddevs[j[0]] = low[0];
    s.stddevs[j[1]] = low[1];
    s.stddevs[j[2]] = high[0];
    s.stddevs[j[3]] = high[1];
  }
  std::memcpy(out, &scaled, sizeof(scaled));
}

// For k < n in order: updates the statistics of idx[k] with x[k], then sets out[k] to x[k]
// scaled with the updated statistics. Every index must be < s.size.
[[gnu::always_inline]] inline void LearnAndScaleAllBody(const Stats& s, const FeatureIndex* idx,
                                                        const double* x, std::size_t n,
                                                        double* out) {
  std::size_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    const FeatureIndex* j = idx + k;
    if (learners::ConsecutiveIndices(j)) {
      const std::uint64_t* c = s.counts + j[0];
      if ((c[0] | c[1] | c[2] | c[3]) < kExactCountLimit - 1) {
        LearnAndScaleBlock<true>(s, j, x + k, out + k);
        continue;
      }
    }
    if (HasRepeat(j)) {
      LearnAndScaleOneByOne(s, idx, x, k, k + kLanes, out);
      continue;
    }
    LearnAndScaleBlock<false>(s, j, x + k, out + k);
  }
  LearnAndScaleOneByOne(s, idx, x, k, n, out);
}

// Each body compiled twice: for the build's baseline (SSE2) and for AVX2, chosen by UseAvx2()
// (features/simd_builds.h).
void ScaleAllBaseline(const ScaleStats& s, const FeatureIndex* idx, const double* x, std::size_t n,
                      double* out) {
  ScaleAllBody(s, idx, x, n, out);
}
[[gnu::target("avx2")]] void ScaleAllAvx2(const ScaleStats& s, const FeatureIndex* idx,
                                          const double* x, std::size_t n, double* out) {
  ScaleAllBody(s, idx, x, n, out);
}
void LearnAndScaleAllBaseline(const Stats& s, const FeatureIndex* idx, const double* x,
                              std::size_t n, double* out) {
  LearnAndScaleAllBody(s, idx, x, n, out);
}
[[gnu::target("avx2")]] void LearnAndScaleAllAvx2(const Stats& s, const FeatureIndex* idx,
                                                  const double* x, std::size_t n, double* out) {
  LearnAndScaleAllBody(s, idx, x, n, out);
}

void ScaleAll(const ScaleStats& s, const FeatureIndex* idx, const double* x, std::size_t n,
              double* out) {
  (UseAvx2() ? ScaleAllAvx2 : ScaleAllBaseline)(s, idx, x, n, out);
}

void LearnAndScaleAll(const Stats& s, const FeatureIndex* idx, const double* x, std::size_t n,
                      double* out) {
  (UseAvx2() ? LearnAndScaleAllAvx2 : LearnAndScaleAllBaseline)(s, idx, x, n, out);
}

#else  // no vector lanes: one feature at a time

void ScaleAll(const ScaleStats& s, const FeatureIndex* idx, const double* x, std::size_t n,
              double* out) {
  ScaleOneByOne(s, idx, x, 0, n, out);
}

void LearnAndScaleAll(const Stats& s, const FeatureIndex* idx, const double* x, std::size_t n,
                      double* out) {
  LearnAndScaleOneByOne(s, idx, x, 0, n, out);
}

#endif  // RIFFLE_SCALER_LANES

}  // namespace

void StandardScaler::Grow(learners::FeatureIndex extent) {
  if (extent <= counts_.size()) return;
  counts_.resize(extent, 0);
  means_.resize(extent, 0.0);
  vars_.resize(extent, 0.0);
  stddevs_.resize(extent, 0.0);
}

void StandardScaler::LearnOne(const learners::FeatureVector& x) {
  Grow(x.Extent());
  const Stats s{counts_.data(), means_.data(), vars_.data(), stddevs_.data(), counts_.size()};
  for (std::size_t k = 0; k < x.size(); ++k) UpdateOne(s, x.index(k), x.value(k));
}

void StandardScaler::TransformInPlace(learners::FeatureVector* x) const {
  const std::span<double> values = x->mutable_values();
  ScaleAll({means_.data(), stddevs_.data(), stddevs_.size()}, x->indices().data(), values.data(),
           x->size(), values.data());
}

void StandardScaler::AppendTransformed(const learners::FeatureVector& x,
                                       learners::FeatureVector* out) const {
  assert(out != &x);
  const std::span<double> scaled = out->AppendIndicesOf(x);
  ScaleAll({means_.data(), stddevs_.data(), stddevs_.size()}, x.indices().data(), x.values().data(),
           x.size(), scaled.data());
}

void StandardScaler::LearnAndAppendTransformed(const learners::FeatureVector& x,
                                               learners::FeatureVector* out) {
  assert(out != &x);
  LearnAndTransformInto(x, out->AppendIndicesOf(x));
}

void StandardScaler::LearnAndTransformInto(const learners::FeatureVector& x,
                                           std::span<double> scaled) {
  assert(scaled.size() >= x.size());
  Grow(x.Extent());
  const Stats s{counts_.data(), means_.data(), vars_.data(), stddevs_.data(), counts_.size()};
  LearnAndScaleAll(s, x.indices().data(), x.values().data(), x.size(), scaled.data());
}

void StandardScaler::RecomputeStddevs() {
  stddevs_.resize(vars_.size());
  for (std::size_t j = 0; j < vars_.size(); ++j) stddevs_[j] = std::sqrt(vars_[j]);
}

std::size_t StandardScaler::MemoryBytes() const {
  return counts_.capacity() * sizeof(std::uint64_t) +
         (means_.capacity() + vars_.capacity() + stddevs_.capacity()) * sizeof(double);
}

}  // namespace riffle::features
