#include "features/standard_scaler.h"

#include <cmath>

namespace riffle::features {

void StandardScaler::LearnOne(const learners::FeatureVector& x) {
  const learners::FeatureIndex extent = x.Extent();
  if (extent > counts_.size()) {
    counts_.resize(extent, 0);
    means_.resize(extent, 0.0);
    vars_.resize(extent, 0.0);
    stddevs_.resize(extent, 0.0);
  }
  for (std::size_t k = 0; k < x.size(); ++k) {
    const learners::FeatureIndex j = x.index(k);
    const double v = x.value(k);
    const double n = static_cast<double>(++counts_[j]);
    const double old_mean = means_[j];
    means_[j] += (v - old_mean) / n;
    vars_[j] += ((v - old_mean) * (v - means_[j]) - vars_[j]) / n;
    stddevs_[j] = std::sqrt(vars_[j]);
  }
}

void StandardScaler::TransformInPlace(learners::FeatureVector* x) const {
  for (std::size_t k = 0; k < x->size(); ++k) {
    const learners::FeatureIndex j = x->index(k);
    const double stddev = j < stddevs_.size() ? stddevs_[j] : 0.0;
    double& v = x->mutable_value(k);
    v = stddev > 0 ? (v - means_[j]) / stddev : 0.0;
  }
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
