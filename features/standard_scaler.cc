#include "features/standard_scaler.h"

#include <cmath>

namespace riffle::features {

void StandardScaler::Grow(learners::FeatureIndex extent) {
  if (extent <= counts_.size()) return;
  counts_.resize(extent, 0);
  means_.resize(extent, 0.0);
  vars_.resize(extent, 0.0);
  stddevs_.resize(extent, 0.0);
}

// Welford's update, written as River writes it so both give the same numbers.
void StandardScaler::Update(learners::FeatureIndex j, double v) {
  const double n = static_cast<double>(++counts_[j]);
  const double old_mean = means_[j];
  means_[j] += (v - old_mean) / n;
  vars_[j] += ((v - old_mean) * (v - means_[j]) - vars_[j]) / n;
  stddevs_[j] = std::sqrt(vars_[j]);
}

double StandardScaler::Scale(learners::FeatureIndex j, double v) const {
  const double stddev = j < stddevs_.size() ? stddevs_[j] : 0.0;
  return stddev > 0 ? (v - means_[j]) / stddev : 0.0;
}

void StandardScaler::LearnOne(const learners::FeatureVector& x) {
  Grow(x.Extent());
  for (std::size_t k = 0; k < x.size(); ++k) Update(x.index(k), x.value(k));
}

void StandardScaler::TransformInPlace(learners::FeatureVector* x) const {
  for (std::size_t k = 0; k < x->size(); ++k) {
    x->mutable_value(k) = Scale(x->index(k), x->value(k));
  }
}

void StandardScaler::AppendTransformed(const learners::FeatureVector& x,
                                       learners::FeatureVector* out) const {
  for (std::size_t k = 0; k < x.size(); ++k) out->Add(x.index(k), Scale(x.index(k), x.value(k)));
}

void StandardScaler::LearnAndAppendTransformed(const learners::FeatureVector& x,
                                               learners::FeatureVector* out) {
  Grow(x.Extent());
  for (std::size_t k = 0; k < x.size(); ++k) {
    const learners::FeatureIndex j = x.index(k);
    Update(j, x.value(k));
    out->Add(j, Scale(j, x.value(k)));
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
