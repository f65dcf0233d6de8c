#ifndef RIFFLE_TESTS_LEARNERS_TREE_TEST_UTIL_H_
#define RIFFLE_TESTS_LEARNERS_TREE_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "learners/classifier.h"
#include "learners/feature_vector.h"

namespace riffle::learners {

// A stream that takes the Hoeffding trees down every path at once: numeric features 0..3
// (class-dependent Gaussians), nominal features 4 and 5 whose values keep appearing (multiway
// branches grow), each feature missing 5% of the time, features listed in a shuffled order
// (not the dense layout), a fourth class that only appears from row `new_class_at`, random
// example weights, and an abrupt change of concept at row `drift_at` (the classes' roles
// rotate).
class MixedStream {
 public:
  static constexpr FeatureIndex kNumeric = 4;
  static constexpr FeatureIndex kNominal = 2;
  static std::vector<FeatureIndex> NominalFeatures() { return {kNumeric, kNumeric + 1}; }

  MixedStream(std::uint32_t seed, int new_class_at, int drift_at)
      : rng_(seed), new_class_at_(new_class_at), drift_at_(drift_at) {}

  ClassIndex Next(FeatureVector* x, double* weight) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::normal_distribution<double> noise(0.0, 1.0);
    const int classes = t_ < new_class_at_ ? 3 : 4;
    const auto y =
        static_cast<ClassIndex>(std::min(classes - 1, static_cast<int>(u(rng_) * classes)));
    // After the drift, each class looks like the next one did before.
    const int look = t_ < drift_at_ ? static_cast<int>(y) : (static_cast<int>(y) + 1) % 4;
    std::vector<std::pair<FeatureIndex, double>> f;
    for (FeatureIndex j = 0; j < kNumeric; ++j) {
      const double v = 1.5 * look * (j % 2 == 0 ? 1 : -1) + noise(rng_);
      if (u(rng_) >= 0.05) f.emplace_back(j, v);
    }
    const int values = 3 + t_ / 1500;
    for (FeatureIndex j = kNumeric; j < kNumeric + kNominal; ++j) {
      const int v = u(rng_) < 0.7 ? (look + static_cast<int>(j)) % values
                                  : static_cast<int>(u(rng_) * values);
      if (u(rng_) >= 0.05) f.emplace_back(j, v);
    }
    std::shuffle(f.begin(), f.end(), rng_);
    x->Clear();
    for (const auto& [j, v] : f) x->Add(j, v);
    *weight = 0.5 + u(rng_);
    ++t_;
    return y;
  }

 private:
  std::mt19937 rng_;
  int new_class_at_;
  int drift_at_;
  int t_ = 0;
};

// Predicts then learns `rows` rows of MixedStream(seed, new class at rows / 4, drift at
// rows / 2) with `model`; returns how many predictions were right.
inline int RightPredictionsOnMixedStream(Classifier* model, std::uint32_t seed, int rows) {
  MixedStream stream(seed, rows / 4, rows / 2);
  FeatureVector x;
  std::vector<double> p;
  double weight = 0;
  int right = 0;
  for (int i = 0; i < rows; ++i) {
    const ClassIndex y = stream.Next(&x, &weight);
    model->PredictProbaOne(x, &p);
    if (!p.empty() && ArgMax(p) == y) ++right;
    model->LearnOne(x, y, weight);
  }
  return right;
}

}  // namespace riffle::learners

#endif  // RIFFLE_TESTS_LEARNERS_TREE_TEST_UTIL_H_
