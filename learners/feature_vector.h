#ifndef RIFFLE_LEARNERS_FEATURE_VECTOR_H_
#define RIFFLE_LEARNERS_FEATURE_VECTOR_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace riffle::learners {

// Index of a feature in a model's feature space. features::FeatureSpace hands these out as
// names appear, so indices are dense for named features and bounded by the bucket count for
// hashed ones.
using FeatureIndex = std::uint32_t;

// Index of a class. Classes are numbered 0, 1, 2, ... in the order a label encoder first saw
// them (features::LabelEncoder); learners only ever see these indices.
using ClassIndex = std::uint32_t;

// One example's features as parallel (index, value) arrays: the representation is sparse, so a
// 1,000-of-1,000,000 hashed example costs 1,000 entries, and a dense 30-feature example costs
// 30 entries with no lookups. Absent features are zero (or "missing", which learners treat the
// same way). Indices must be unique within one vector; order does not matter.
//
// The vector owns its buffers; Clear() keeps their capacity, so a caller that reuses one
// FeatureVector per thread does no allocation per event once warmed up.
class FeatureVector {
 public:
  FeatureVector() = default;

  void Clear() {
    indices_.clear();
    values_.clear();
    extent_ = 0;
  }
  void Reserve(std::size_t n) {
    indices_.reserve(n);
    values_.reserve(n);
  }
  void Add(FeatureIndex index, double value) {
    indices_.push_back(index);
    values_.push_back(value);
    if (index >= extent_) extent_ = index + 1;
  }

  // Appends all of `other`'s entries (their indices must not already be present).
  void Append(const FeatureVector& other) {
    indices_.insert(indices_.end(), other.indices_.begin(), other.indices_.end());
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    if (other.extent_ > extent_) extent_ = other.extent_;
  }

  // Appends `other`'s indices (which must not already be present) with values 0 and returns
  // the appended values for the caller to fill, valid until the vector changes. Lets a
  // transform write a whole block of values at once.
  std::span<double> AppendIndicesOf(const FeatureVector& other) {
    const std::size_t start = indices_.size();
    indices_.insert(indices_.end(), other.indices_.begin(), other.indices_.end());
    values_.resize(indices_.size(), 0.0);
    if (other.extent_ > extent_) extent_ = other.extent_;
    return std::span<double>(values_).subspan(start);
  }

  std::size_t size() const { return indices_.size(); }
  bool empty() const { return indices_.empty(); }
  FeatureIndex index(std::size_t k) const { return indices_[k]; }
  double value(std::size_t k) const { return values_[k]; }
  double& mutable_value(std::size_t k) { return values_[k]; }
  std::span<double> mutable_values() { return values_; }
  std::span<const FeatureIndex> indices() const { return indices_; }
  std::span<const double> values() const { return values_; }

  // One past the largest index present (0 when empty). Kept up to date by Add(), so learners
  // can size their weights without a pass over the example.
  FeatureIndex Extent() const { return extent_; }

 private:
  std::vector<FeatureIndex> indices_;
  std::vector<double> values_;
  FeatureIndex extent_ = 0;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_FEATURE_VECTOR_H_
