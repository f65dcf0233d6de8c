#ifndef RIFFLE_LEARNERS_MATH_H_
#define RIFFLE_LEARNERS_MATH_H_

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

namespace riffle::learners {

// Logistic function, exact to rounding for every finite z: 1 / (1 + exp(-z)) for z >= 0 and
// exp(z) / (1 + exp(z)) below, so exp() is only taken of a non-positive number and cannot
// overflow (at z = +-1e6 it returns exactly 1 or 0). NaN only for NaN. The form is selected by
// a mask, not a branch: a logit's sign is as hard to predict as the label.
inline double Sigmoid(double z) {
  const std::uint64_t positive = -static_cast<std::uint64_t>(z >= 0);  // all ones or zero
  const auto select = [positive](double if_positive, double otherwise) {
    return std::bit_cast<double>((positive & std::bit_cast<std::uint64_t>(if_positive)) |
                                 (~positive & std::bit_cast<std::uint64_t>(otherwise)));
  };
  // exp(-z) or exp(z), not exp(-|z|): a NaN keeps its sign, as with a branch.
  const double e = std::exp(select(-z, z));
  return select(1.0, e) / (1.0 + e);
}

// Replaces logits with softmax probabilities. Subtracting the maximum first keeps every exp()
// argument <= 0, so extreme logits give 0/1 probabilities instead of inf/NaN.
inline void SoftmaxInPlace(std::span<double> values) {
  if (values.empty()) return;
  const double max = *std::max_element(values.begin(), values.end());
  double total = 0.0;
  for (double& v : values) {
    v = std::exp(v - max);
    total += v;
  }
  for (double& v : values) v /= total;
}

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_MATH_H_
