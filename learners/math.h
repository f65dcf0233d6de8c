#ifndef RIFFLE_LEARNERS_MATH_H_
#define RIFFLE_LEARNERS_MATH_H_

#include <algorithm>
#include <cmath>
#include <span>

namespace riffle::learners {

// Logistic function, exact to rounding for every finite z and never NaN: exp() is only taken of
// a non-positive number, so it cannot overflow (at z = +-1e6 it returns exactly 1 or 0).
inline double Sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
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
