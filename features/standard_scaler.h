#ifndef RIFFLE_FEATURES_STANDARD_SCALER_H_
#define RIFFLE_FEATURES_STANDARD_SCALER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "learners/feature_vector.h"
#include "learners/serialization.h"

namespace riffle::features {

// Online standard scaling, feature by feature: (x - mean) / stddev with the running mean and
// population variance of each feature updated by Welford's method (Welford 1962), in the exact
// form River's preprocessing.StandardScaler uses, so both give the same numbers. A feature
// whose variance is still 0 (seen once, or constant) scales to 0.
//
// Only features present in a vector are updated or scaled (missing values do not count), and
// statistics are indexed by FeatureIndex, growing as new indices appear.
//
// Not thread-safe for writers; Transform() is const.
class StandardScaler {
 public:
  // Updates the statistics of the features present in x.
  void LearnOne(const learners::FeatureVector& x);
  // Scales x's values in place with the current statistics. A feature never learned scales
  // to 0.
  void TransformInPlace(learners::FeatureVector* x) const;
  // Appends the scaled features of `x` to *out (the hot path of a pipeline: one pass, no copy).
  // `out` must not be `x`.
  void AppendTransformed(const learners::FeatureVector& x, learners::FeatureVector* out) const;
  // LearnOne(x) then AppendTransformed(x, out), in one pass over x. `out` must not be `x`.
  void LearnAndAppendTransformed(const learners::FeatureVector& x, learners::FeatureVector* out);
  // LearnOne(x), then x's scaled values into scaled[0, x.size()), in one pass over x: e.g. to
  // rewrite in place the block an earlier AppendTransformed(x, out) wrote with older statistics.
  void LearnAndTransformInto(const learners::FeatureVector& x, std::span<double> scaled);

  std::uint64_t Count(learners::FeatureIndex j) const {
    return j < counts_.size() ? counts_[j] : 0;
  }
  double Mean(learners::FeatureIndex j) const { return j < means_.size() ? means_[j] : 0.0; }
  double Variance(learners::FeatureIndex j) const { return j < vars_.size() ? vars_[j] : 0.0; }
  std::size_t MemoryBytes() const;

  template <class Archive>
  void save(Archive& archive, std::uint32_t /*version*/) const {
    learners::SaveVector(archive, counts_);
    learners::SaveVector(archive, means_);
    learners::SaveVector(archive, vars_);
  }
  template <class Archive>
  void load(Archive& archive, std::uint32_t /*version*/) {
    std::vector<std::uint64_t> counts;
    std::vector<double> means;
    std::vector<double> vars;
    learners::LoadVector(archive, &counts);
    learners::LoadVector(archive, &means);
    learners::LoadVector(archive, &vars);
    if (means.size() != counts.size() || vars.size() != counts.size()) {
      throw cereal::Exception("standard scaler: inconsistent sizes");
    }
    counts_ = std::move(counts);
    means_ = std::move(means);
    vars_ = std::move(vars);
    RecomputeStddevs();
  }

 private:
  void Grow(learners::FeatureIndex extent);
  void RecomputeStddevs();

  std::vector<std::uint64_t> counts_;
  std::vector<double> means_;
  std::vector<double> vars_;
  // sqrt(vars_), kept so a transform costs a division, not a square root; derived, not saved.
  std::vector<double> stddevs_;
};

}  // namespace riffle::features

CEREAL_CLASS_VERSION(riffle::features::StandardScaler, 1);

#endif  // RIFFLE_FEATURES_STANDARD_SCALER_H_
