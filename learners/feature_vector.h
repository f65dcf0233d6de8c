#ifndef RIFFLE_LEARNERS_FEATURE_VECTOR_H_
#define RIFFLE_LEARNERS_FEATURE_VECTOR_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
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
// The vector owns its buffers; Clear() keeps them, so a caller that reuses one FeatureVector
// per thread does no allocation per event once warmed up. The buffers only grow and the
// entries are their first size(): appending writes in place, without the zero-filling and
// out-of-line range inserts of std::vector (two per row in a scaled transform).
class FeatureVector {
 public:
  FeatureVector() = default;
  FeatureVector(const FeatureVector&) = default;
  FeatureVector& operator=(const FeatureVector&) = default;
  // A moved-from vector is empty (its buffers went with the move).
  FeatureVector(FeatureVector&& other) noexcept
      : indices_(std::move(other.indices_)),
        values_(std::move(other.values_)),
        size_(std::exchange(other.size_, 0)),
        extent_(std::exchange(other.extent_, 0)) {}
  FeatureVector& operator=(FeatureVector&& other) noexcept {
    if (this == &other) return *this;
    indices_ = std::move(other.indices_);
    values_ = std::move(other.values_);
    size_ = std::exchange(other.size_, 0);
    extent_ = std::exchange(other.extent_, 0);
    other.indices_.clear();
    other.values_.clear();
    return *this;
  }

  void Clear() {
    size_ = 0;
    extent_ = 0;
  }
  void Reserve(std::size_t n) {
    if (n > indices_.size()) Grow(n);
  }
  void Add(FeatureIndex index, double value) {
    if (size_ == indices_.size()) Grow(size_ + 1);
    indices_[size_] = index;
    values_[size_] = value;
    ++size_;
    if (index >= extent_) extent_ = index + 1;
  }

  // Appends all of `other`'s entries (their indices must not already be present).
  void Append(const FeatureVector& other) {
    const std::span<double> values = AppendIndicesOf(other);
    std::copy(other.values().begin(), other.values().end(), values.begin());
  }

  // Appends `other`'s indices (which must not already be present) and returns the appended
  // values, unspecified, for the caller to fill, valid until the vector changes. Lets a
  // transform write a whole block of values at once.
  std::span<double> AppendIndicesOf(const FeatureVector& other) {
    return AppendIndices(other.indices(), other.extent_);
  }
  // The same for `indices` (not already present) whose largest is below `extent`.
  std::span<double> AppendIndices(std::span<const FeatureIndex> indices, FeatureIndex extent) {
    const std::size_t start = size_;
    const std::size_t n = indices.size();
    if (start + n > indices_.size()) Grow(start + n);
    // Eight at a time with fixed-size copies, which compile to two vector moves: std::copy
    // calls memmove, whose call and size dispatch cost more than copying a row's few dozen
    // indices (2% of `riffle eval`'s time). The remainder one at a time, no more than 7.
    const FeatureIndex* from = indices.data();
    FeatureIndex* to = indices_.data() + start;
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8) std::memcpy(to + k, from + k, 8 * sizeof(FeatureIndex));
    for (; k < n; ++k) to[k] = from[k];
    size_ += n;
    if (extent > extent_) extent_ = extent;
    return std::span<double>(values_).subspan(start, indices.size());
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  FeatureIndex index(std::size_t k) const {
    assert(k < size_);
    return indices_[k];
  }
  double value(std::size_t k) const {
    assert(k < size_);
    return values_[k];
  }
  double& mutable_value(std::size_t k) {
    assert(k < size_);
    return values_[k];
  }
  std::span<double> mutable_values() { return {values_.data(), size_}; }
  std::span<const FeatureIndex> indices() const { return {indices_.data(), size_}; }
  std::span<const double> values() const { return {values_.data(), size_}; }

  // One past the largest index present (0 when empty). Kept up to date by Add(), so learners
  // can size their weights without a pass over the example.
  FeatureIndex Extent() const { return extent_; }

 private:
  // Makes the buffers hold at least n entries, doubling so that appends stay amortized O(1).
  void Grow(std::size_t n) {
    const std::size_t capacity = std::max(n, 2 * indices_.size());
    indices_.resize(capacity);
    values_.resize(capacity);
  }

  std::vector<FeatureIndex> indices_;  // the first size_ are the entries
  std::vector<double> values_;
  std::size_t size_ = 0;
  FeatureIndex extent_ = 0;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_FEATURE_VECTOR_H_
