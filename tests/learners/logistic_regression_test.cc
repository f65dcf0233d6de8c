#include "learners/logistic_regression.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "learners/math.h"
#include "learners/registry.h"

namespace riffle::learners {
namespace {

FeatureVector Vec(std::initializer_list<std::pair<FeatureIndex, double>> entries) {
  FeatureVector x;
  for (const auto& [i, v] : entries) x.Add(i, v);
  return x;
}

LogisticRegression Make(std::initializer_list<std::pair<const char*, const char*>> sets) {
  LogisticRegressionOptions o;
  for (const auto& [name, value] : sets) EXPECT_TRUE(o.Set(name, value).ok()) << name;
  EXPECT_TRUE(o.Validate().ok());
  return LogisticRegression(o);
}

// The example used by the hand-computed updates below: x = {0: 2, 1: -1}, y = 1, all weights 0.
// Then z = 0, p = sigmoid(0) = 0.5 and the loss gradient g = p - y = -0.5, so the weight
// gradients are g * x = {-1.0, +0.5}.
const FeatureVector& HandExample() {
  static const FeatureVector x = Vec({{0, 2.0}, {1, -1.0}});
  return x;
}

TEST(LogisticRegressionTest, SgdHandComputedSteps) {
  LogisticRegression m = Make({});  // River defaults: SGD(0.01), intercept_lr 0.01
  m.LearnOne(HandExample(), 1);
  // b = 0 - 0.01 * -0.5 = 0.005; w0 = 0 - 0.01 * -1.0 = 0.01; w1 = 0 - 0.01 * 0.5 = -0.005
  EXPECT_DOUBLE_EQ(m.Intercept(), 0.005);
  EXPECT_DOUBLE_EQ(m.Weight(0), 0.01);
  EXPECT_DOUBLE_EQ(m.Weight(1), -0.005);
  m.LearnOne(HandExample(), 1);
  // z = 0.005 + 0.01 * 2 + (-0.005) * (-1) = 0.03; g = sigmoid(0.03) - 1
  const double g = 1.0 / (1.0 + std::exp(-0.03)) - 1.0;
  EXPECT_NEAR(m.Intercept(), 0.005 - 0.01 * g, 1e-15);
  EXPECT_NEAR(m.Weight(0), 0.01 - 0.01 * g * 2.0, 1e-15);
  EXPECT_NEAR(m.Weight(1), -0.005 - 0.01 * g * -1.0, 1e-15);
}

TEST(LogisticRegressionTest, SgdL2AddsWeightToGradient) {
  LogisticRegression m = Make({{"l2", "0.5"}, {"lr", "0.1"}, {"intercept_lr", "0"}});
  m.LearnOne(HandExample(), 1);
  // First step: w = 0 so l2 * w = 0; w0 = 0.1, w1 = -0.05.
  EXPECT_DOUBLE_EQ(m.Weight(0), 0.1);
  m.LearnOne(Vec({{0, 0.0}}), 1);
  // Feature 0 present with value 0: g * 0 = 0, only l2: w0 = 0.1 - 0.1 * (0.5 * 0.1) = 0.095.
  EXPECT_DOUBLE_EQ(m.Weight(0), 0.095);
  // Feature 1 absent: untouched (lazy L2, as River).
  EXPECT_DOUBLE_EQ(m.Weight(1), -0.05);
}

TEST(LogisticRegressionTest, InverseScalingDividesBySqrtOfStep) {
  LogisticRegression m =
      Make({{"lr", "1"}, {"lr_schedule", "inverse_scaling"}, {"intercept_lr", "0"}});
  m.LearnOne(Vec({{0, 1.0}}), 1);
  // t = 0: lr = 1 / 1^0.5 = 1, g = -0.5 -> w = 0.5
  EXPECT_DOUBLE_EQ(m.Weight(0), 0.5);
  m.LearnOne(Vec({{0, 1.0}}), 1);
  // t = 1: lr = 1 / sqrt(2), g = sigmoid(0.5) - 1
  const double g = 1.0 / (1.0 + std::exp(-0.5)) - 1.0;
  EXPECT_NEAR(m.Weight(0), 0.5 - g / std::sqrt(2.0), 1e-15);
}

TEST(LogisticRegressionTest, AdamHandComputedFirstStep) {
  LogisticRegression m = Make({{"optimizer", "adam"}, {"intercept_lr", "0"}});
  m.LearnOne(HandExample(), 1);
  // lr_t = 0.1 * sqrt(1 - 0.999) / (1 - 0.9) = 0.1 * sqrt(0.001) / 0.1 = sqrt(0.001)
  // w0: m = 0.1 * -1 = -0.1, v = 0.001 * 1 = 0.001
  //     w0 = -lr_t * m / (sqrt(v) + 1e-8) = sqrt(0.001) * 0.1 / (sqrt(0.001) + 1e-8)
  const double s = std::sqrt(0.001);
  EXPECT_NEAR(m.Weight(0), s * 0.1 / (s + 1e-8), 1e-15);
  // w1: m = 0.05, v = 0.001 * 0.25 = 0.00025
  EXPECT_NEAR(m.Weight(1), -s * 0.05 / (std::sqrt(0.00025) + 1e-8), 1e-15);
  EXPECT_DOUBLE_EQ(m.Intercept(), 0.0);
}

TEST(LogisticRegressionTest, AdaGradHandComputedFirstStep) {
  LogisticRegression m = Make({{"optimizer", "adagrad"}});
  m.LearnOne(HandExample(), 1);
  // w0: G = 1, w0 = -0.1 / sqrt(1 + 1e-8) * -1; w1: G = 0.25, w1 = -0.1 / sqrt(0.25 + 1e-8) * 0.5
  EXPECT_NEAR(m.Weight(0), 0.1 / std::sqrt(1.0 + 1e-8), 1e-15);
  EXPECT_NEAR(m.Weight(1), -0.05 / std::sqrt(0.25 + 1e-8), 1e-15);
  EXPECT_DOUBLE_EQ(m.Intercept(), 0.005);
}

TEST(LogisticRegressionTest, FtrlHandComputedFirstStep) {
  LogisticRegression m = Make({{"optimizer", "ftrl"}});  // alpha 0.05, beta 1, l1 0, l2 1
  m.LearnOne(HandExample(), 1);
  // w0: g = -1, n = 1, sigma = (1 - 0) / 0.05 = 20, z = -1 - 20 * 0 = -1,
  //     w0 = -z / ((1 + sqrt(1)) / 0.05 + 1) = 1 / 41
  EXPECT_DOUBLE_EQ(m.Weight(0), 1.0 / 41.0);
  // w1: g = 0.5, n = 0.25, z = 0.5, w1 = -0.5 / ((1 + 0.5) / 0.05 + 1) = -0.5 / 31
  EXPECT_DOUBLE_EQ(m.Weight(1), -0.5 / 31.0);
}

TEST(LogisticRegressionTest, FtrlSecondStepUsesSigmaTimesPreviousWeight) {
  LogisticRegression m = Make({{"optimizer", "ftrl"}, {"intercept_lr", "0"}});
  m.LearnOne(Vec({{0, 1.0}}), 1);
  // Step 1: g = -0.5, n = 0.25, sigma = 0.5 / 0.05 = 10, z = -0.5, w = 0.5 / (1.5 / 0.05 + 1)
  const double w1 = 0.5 / 31.0;
  ASSERT_DOUBLE_EQ(m.Weight(0), w1);
  m.LearnOne(Vec({{0, 1.0}}), 1);
  // Step 2: g = sigmoid(w1) - 1, n' = 0.25 + g^2, sigma = (sqrt(n') - 0.5) / 0.05,
  //         z' = -0.5 + g - sigma * w1, w = -z' / ((1 + sqrt(n')) / 0.05 + 1)
  const double g = 1.0 / (1.0 + std::exp(-w1)) - 1.0;
  const double n = 0.25 + g * g;
  const double sigma = (std::sqrt(n) - 0.5) / 0.05;
  const double z = -0.5 + g - sigma * w1;
  EXPECT_NEAR(m.Weight(0), -z / ((1.0 + std::sqrt(n)) / 0.05 + 1.0), 1e-15);
}

// y depends on feature 0 only; features 1..5 are noise.
std::vector<std::pair<FeatureVector, ClassIndex>> RelevantAndNoise(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<std::pair<FeatureVector, ClassIndex>> stream;
  for (int i = 0; i < n; ++i) {
    FeatureVector x;
    const double signal = normal(rng);
    x.Add(0, signal);
    for (FeatureIndex j = 1; j <= 5; ++j) x.Add(j, normal(rng));
    stream.emplace_back(std::move(x), signal > 0 ? 1 : 0);
  }
  return stream;
}

TEST(LogisticRegressionTest, FtrlL1DrivesIrrelevantWeightsToExactlyZero) {
  LogisticRegression m = Make({{"optimizer", "ftrl"}, {"ftrl_l1", "40"}, {"ftrl_alpha", "0.5"}});
  for (const auto& [x, y] : RelevantAndNoise(3000, 7)) m.LearnOne(x, y);
  EXPECT_GT(m.Weight(0), 0.5);
  for (FeatureIndex j = 1; j <= 5; ++j) EXPECT_EQ(m.Weight(j), 0.0) << "feature " << j;
}

TEST(LogisticRegressionTest, FtrlWithoutL1KeepsNoiseWeightsNonZero) {
  // The control for the test above: without L1 the noise weights are small but not zero.
  LogisticRegression m = Make({{"optimizer", "ftrl"}, {"ftrl_alpha", "0.5"}});
  for (const auto& [x, y] : RelevantAndNoise(3000, 7)) m.LearnOne(x, y);
  int nonzero = 0;
  for (FeatureIndex j = 1; j <= 5; ++j) nonzero += m.Weight(j) != 0.0 ? 1 : 0;
  EXPECT_EQ(nonzero, 5);
}

TEST(LogisticRegressionTest, SgdCumulativeL1ZeroesNoiseWeights) {
  LogisticRegression m = Make({{"l1", "0.02"}, {"lr", "0.1"}});
  for (const auto& [x, y] : RelevantAndNoise(3000, 11)) m.LearnOne(x, y);
  EXPECT_GT(m.Weight(0), 0.5);
  int zero = 0;
  for (FeatureIndex j = 1; j <= 5; ++j) zero += m.Weight(j) == 0.0 ? 1 : 0;
  EXPECT_GE(zero, 4);
}

TEST(LogisticRegressionTest, SigmoidIsStableAtExtremeInputs) {
  for (const char* optimizer : {"sgd", "adam", "adagrad", "ftrl"}) {
    LogisticRegression m = Make({{"optimizer", optimizer}, {"lr", "1"}});
    std::vector<double> proba;
    for (int i = 0; i < 50; ++i) {
      const double v = (i % 2 == 0) ? 1e6 : -1e6;
      m.LearnOne(Vec({{0, v}, {1, -v}}), static_cast<ClassIndex>(i % 3 == 0));
      m.PredictProbaOne(Vec({{0, v}, {1, v}}), &proba);
      ASSERT_EQ(proba.size(), 2u);
      for (double p : proba) ASSERT_TRUE(std::isfinite(p)) << optimizer;
      ASSERT_DOUBLE_EQ(proba[0] + proba[1], 1.0);
    }
  }
}

// Sigmoid selects between its two forms without a branch on the sign of z; each z must get
// the bits of the form it selects: 1 / (1 + exp(-z)) for z >= 0 (-0.0 included), exp(z) /
// (1 + exp(z)) below, NaN for NaN, exactly 0 and 1 at the infinities.
TEST(LogisticRegressionTest, SigmoidGivesTheBitsOfItsTwoForms) {
  const auto bits = [](double v) { return std::bit_cast<std::uint64_t>(v); };
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> exponent(-12.0, 3.0);
  std::vector<double> zs = {0.0,
                            -0.0,
                            1e-300,
                            -1e-300,
                            0.5,
                            -0.5,
                            36.0,
                            -36.0,
                            709.0,
                            -745.0,
                            1e6,
                            -1e6,
                            std::numeric_limits<double>::max(),
                            -std::numeric_limits<double>::max()};
  for (int i = 0; i < 2000; ++i) {
    const double z = std::pow(10.0, exponent(rng));
    zs.push_back(z);
    zs.push_back(-z);
  }
  for (const double z : zs) {
    const double expected = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
    ASSERT_EQ(bits(Sigmoid(z)), bits(expected)) << z;
  }
  EXPECT_EQ(Sigmoid(std::numeric_limits<double>::infinity()), 1.0);
  EXPECT_EQ(Sigmoid(-std::numeric_limits<double>::infinity()), 0.0);
  // A NaN comes out as the branch's form gives it, sign included.
  for (const double nan :
       {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()}) {
    const double e = std::exp(nan);
    EXPECT_EQ(bits(Sigmoid(nan)), bits(e / (1.0 + e))) << std::signbit(nan);
  }
}

// The sigmoid model's SGD arithmetic (River's defaults: rate 0.01 for weights and intercept, no
// L2) one term at a time: the logit adds term k of the whole blocks of four to partial sum
// k % 4 and the rest to the first, then (s0 + s1) + (s2 + s3) and the intercept; a feature
// without a weight adds 0.
struct ReferenceSgd {
  std::vector<double> w;
  double b = 0.0;

  double Logit(const FeatureVector& x) const {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    const std::size_t blocks = x.size() - x.size() % 4;
    for (std::size_t k = 0; k < x.size(); ++k) {
      const FeatureIndex j = x.index(k);
      s[k < blocks ? k % 4 : 0] += j < w.size() ? w[j] * x.value(k) : 0.0;
    }
    return b + ((s[0] + s[1]) + (s[2] + s[3]));
  }
  void Learn(const FeatureVector& x, ClassIndex y, double weight) {
    if (x.Extent() > w.size()) w.resize(x.Extent(), 0.0);
    const double g = weight * (Sigmoid(Logit(x)) - (y == 1 ? 1.0 : 0.0));
    b -= 0.01 * g;
    for (std::size_t k = 0; k < x.size(); ++k) w[x.index(k)] -= 0.01 * (g * x.value(k));
  }
};

// Blocks of consecutive indices are loaded and stored as pairs, others gathered: every mix of
// the two (dense runs from any start, runs with a gap, scattered indices, tails of 1 to 3),
// sample weights other than 1, and predictions with features that have no weight yet must keep
// the bits of the reference.
TEST(LogisticRegressionTest, SgdKeepsTheBitsOfOneTermAtATime) {
  LogisticRegression m = Make({});
  ReferenceSgd ref;
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> length(0, 14);
  std::uniform_int_distribution<FeatureIndex> start(0, 30);
  std::normal_distribution<double> normal(0.0, 3.0);
  const auto bits = [](double v) { return std::bit_cast<std::uint64_t>(v); };
  std::vector<double> proba;
  for (int row = 0; row < 3000; ++row) {
    FeatureVector x;
    const int n = length(rng);
    const FeatureIndex first = start(rng);
    std::vector<FeatureIndex> indices;
    for (int k = 0; k < n; ++k) {
      switch (row % 3) {
        case 0:  // a dense run
          indices.push_back(first + static_cast<FeatureIndex>(k));
          break;
        case 1:  // a run with a gap after its third entry
          indices.push_back(first + static_cast<FeatureIndex>(k) + (k >= 3 ? 1 : 0));
          break;
        default:  // scattered, distinct
          indices.push_back(first + static_cast<FeatureIndex>(7 * k) % 41);
          break;
      }
    }
    for (const FeatureIndex j : indices) x.Add(j, normal(rng));
    m.PredictProbaOne(x, &proba);
    ASSERT_EQ(bits(proba[1]), bits(Sigmoid(ref.Logit(x)))) << "row " << row;
    const auto y = static_cast<ClassIndex>(normal(rng) + 0.3 * x.size() > 0.0);
    const double weight = row % 5 == 0 ? 1.0 : 0.25 + std::abs(normal(rng));
    m.LearnOne(x, y, weight);
    ref.Learn(x, y, weight);
    for (FeatureIndex j = 0; j < ref.w.size(); ++j) {
      ASSERT_EQ(bits(m.Weight(j)), bits(ref.w[j])) << "row " << row << " weight " << j;
    }
    ASSERT_EQ(bits(m.Intercept()), bits(ref.b)) << "row " << row;
  }
}

TEST(LogisticRegressionTest, SoftmaxIsStableAtExtremeInputs) {
  for (const char* optimizer : {"sgd", "adam", "adagrad", "ftrl"}) {
    LogisticRegression m = Make({{"optimizer", optimizer}, {"mode", "softmax"}, {"lr", "1"}});
    std::vector<double> proba;
    for (int i = 0; i < 60; ++i) {
      const double v = (i % 2 == 0) ? 1e6 : -1e6;
      m.LearnOne(Vec({{0, v}, {1, 3 * v}}), static_cast<ClassIndex>(i % 3));
      m.PredictProbaOne(Vec({{0, -v}, {1, v}}), &proba);
      double total = 0;
      for (double p : proba) {
        ASSERT_TRUE(std::isfinite(p)) << optimizer;
        total += p;
      }
      ASSERT_NEAR(total, 1.0, 1e-12);
    }
    EXPECT_EQ(m.NumClasses(), 3u);
  }
}

TEST(LogisticRegressionTest, SigmoidModelIsBinaryBeforeLearning) {
  // As River's LogisticRegression: zero weights give P = 0.5 for both classes.
  LogisticRegression m = Make({});
  std::vector<double> proba;
  m.PredictProbaOne(HandExample(), &proba);
  EXPECT_EQ(proba, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(m.NumClasses(), 2u);
}

TEST(LogisticRegressionTest, SoftmaxPredictionBeforeLearningIsEmpty) {
  LogisticRegression m = Make({{"mode", "softmax"}});
  std::vector<double> proba = {0.3};
  m.PredictProbaOne(HandExample(), &proba);
  EXPECT_TRUE(proba.empty());
  EXPECT_EQ(m.NumClasses(), 0u);
}

TEST(LogisticRegressionTest, UnseenFeatureIndexHasZeroWeight) {
  LogisticRegression m = Make({});
  m.LearnOne(HandExample(), 1);
  std::vector<double> with_unseen;
  std::vector<double> without;
  m.PredictProbaOne(Vec({{0, 2.0}, {1000000, 5.0}}), &with_unseen);
  m.PredictProbaOne(Vec({{0, 2.0}}), &without);
  EXPECT_EQ(with_unseen, without);
}

TEST(LogisticRegressionTest, SoftmaxFirstSightingOfAClassHasProbabilityZeroInItsGradient) {
  // As River's SoftmaxRegression: the first example ever (class 0) sees no known class, so
  // its gradient for class 0 is 0 - 1 = -1; with lr 0.01 and x = 2: w = 0.02.
  LogisticRegression m = Make({{"mode", "softmax"}, {"intercept_lr", "0"}});
  m.LearnOne(Vec({{0, 2.0}}), 0);
  EXPECT_DOUBLE_EQ(m.Weight(0, 0), 0.02);
  // Class 1 now: known probabilities {class 0: 1}, class 1 new with p = 0:
  // column 0 gradient 1 - 0 = 1 -> w00 = 0.02 - 0.01 * 1 * 2 = 0; column 1 gradient -1 -> 0.02.
  m.LearnOne(Vec({{0, 2.0}}), 1);
  EXPECT_DOUBLE_EQ(m.Weight(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(m.Weight(0, 1), 0.02);
  EXPECT_EQ(m.NumClasses(), 2u);
}

TEST(LogisticRegressionTest, AutoModeSwitchesToSoftmaxOnThirdClassAndLearnsIt) {
  LogisticRegression m = Make({{"lr", "0.1"}});
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 0.3);
  const double centers[3][2] = {{2, 0}, {-2, 2}, {-2, -2}};
  int correct = 0;
  std::vector<double> proba;
  for (int i = 0; i < 3000; ++i) {
    // Class 2 appears only after 300 binary examples.
    const auto y = static_cast<ClassIndex>(i < 300 ? i % 2 : i % 3);
    FeatureVector x = Vec({{0, centers[y][0] + noise(rng)}, {1, centers[y][1] + noise(rng)}});
    m.PredictProbaOne(x, &proba);
    if (i >= 2000 && !proba.empty() && ArgMax(proba) == y) ++correct;
    m.LearnOne(x, y);
    if (i == 299) {
      EXPECT_FALSE(m.softmax());
    }
  }
  EXPECT_TRUE(m.softmax());
  EXPECT_EQ(m.NumClasses(), 3u);
  EXPECT_GT(correct, 950);  // > 95% of the last 1000
}

TEST(LogisticRegressionTest, SwitchToSoftmaxKeepsTwoClassPredictions) {
  // Right after the switch, before the class-2 update, softmax(0, z) equals the sigmoid. With a
  // class-2 example whose features are absent (x empty) and intercept_lr 0 nothing moves but
  // the column layout, so predictions of the two old classes are renormalized with class 2's
  // zero logit: p'(k) = p(k) * (1 + e^z) / (1 + e^z + 1).
  LogisticRegression m = Make({{"intercept_lr", "0"}});
  for (int i = 0; i < 20; ++i) m.LearnOne(HandExample(), static_cast<ClassIndex>(i % 2 == 0));
  std::vector<double> before;
  m.PredictProbaOne(HandExample(), &before);
  m.LearnOne(FeatureVector(), 2);
  std::vector<double> after;
  m.PredictProbaOne(HandExample(), &after);
  ASSERT_EQ(after.size(), 3u);
  const double z = std::log(before[1] / before[0]);
  const double scale = (1.0 + std::exp(z)) / (2.0 + std::exp(z));
  EXPECT_NEAR(after[0], before[0] * scale, 1e-12);
  EXPECT_NEAR(after[1], before[1] * scale, 1e-12);
}

TEST(LogisticRegressionTest, SampleWeightScalesTheGradient) {
  LogisticRegression a = Make({});
  LogisticRegression b = Make({});
  a.LearnOne(HandExample(), 1, 3.0);
  b.LearnOne(HandExample(), 1, 1.0);
  EXPECT_DOUBLE_EQ(a.Weight(0), 3 * b.Weight(0));
}

TEST(LogisticRegressionTest, GradientClippingBoundsTheStep) {
  LogisticRegression m = Make({{"clip_gradient", "0.1"}, {"lr", "1"}, {"intercept_lr", "0"}});
  m.LearnOne(Vec({{0, 1.0}}), 1);
  // g = -0.5 clipped to -0.1.
  EXPECT_DOUBLE_EQ(m.Weight(0), 0.1);
}

TEST(LogisticRegressionOptionsTest, RejectsInvalidValuesNamingTheOption) {
  LogisticRegressionOptions o;
  absl::Status s = o.Set("optimizer", "rmsprop");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("optimizer"), absl::string_view::npos);
  EXPECT_NE(s.message().find("rmsprop"), absl::string_view::npos);
  EXPECT_FALSE(o.Set("lr", "fast").ok());
  EXPECT_FALSE(o.Set("no_such_option", "1").ok());
  ASSERT_TRUE(o.Set("lr", "-1").ok());
  s = o.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("lr"), absl::string_view::npos);
  LogisticRegressionOptions ftrl;
  ASSERT_TRUE(ftrl.Set("optimizer", "ftrl").ok());
  ASSERT_TRUE(ftrl.Set("l1", "0.1").ok());
  EXPECT_FALSE(ftrl.Validate().ok());
  EXPECT_FALSE(LogisticRegression::Create(ftrl).ok());
}

TEST(LogisticRegressionOptionsTest, DefaultsAreRivers) {
  LogisticRegressionOptions o;
  EXPECT_EQ(o.optimizer, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(o.BaseLearningRate(), 0.01);
  EXPECT_DOUBLE_EQ(o.intercept_lr, 0.01);
  EXPECT_DOUBLE_EQ(o.l2, 0.0);
  EXPECT_DOUBLE_EQ(o.clip_gradient, 1e12);
  o.optimizer = OptimizerKind::kAdam;
  EXPECT_DOUBLE_EQ(o.BaseLearningRate(), 0.1);
}

// Save/restore round trip for every optimizer and mode: predictions bit-identical after the
// reload, and continued learning reaches the same model as an uninterrupted run.
struct RoundTripCase {
  const char* optimizer;
  const char* mode;
  const char* l1;
};

class LogisticRegressionRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(LogisticRegressionRoundTripTest, BitIdenticalAfterReloadAndContinuedLearning) {
  const RoundTripCase& c = GetParam();
  OptionList options = {{"optimizer", c.optimizer}, {"mode", c.mode}};
  if (std::string(c.optimizer) != "ftrl") options.emplace_back("l1", c.l1);
  absl::StatusOr<std::unique_ptr<Classifier>> original = CreateClassifier("logreg", options);
  ASSERT_TRUE(original.ok()) << original.status();
  std::mt19937 rng(42);
  std::normal_distribution<double> normal;
  const auto example = [&](int i) {
    FeatureVector x;
    for (FeatureIndex j = 0; j < 8; ++j) x.Add(j * 3 + (i % 3), normal(rng));
    return std::make_pair(x, static_cast<ClassIndex>(i % 3 == 0 ? 2 : i % 2));
  };
  for (int i = 0; i < 400; ++i) {
    auto [x, y] = example(i);
    (*original)->LearnOne(x, y, 1.0 + (i % 4));
  }
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    (*original)->Save(out);
  }
  absl::StatusOr<std::unique_ptr<Classifier>> restored = CreateEmptyClassifier("logreg");
  ASSERT_TRUE(restored.ok());
  {
    cereal::PortableBinaryInputArchive in(buffer);
    (*restored)->Load(in);
  }
  std::vector<double> p1;
  std::vector<double> p2;
  for (int i = 0; i < 400; ++i) {
    auto [x, y] = example(i);
    (*original)->PredictProbaOne(x, &p1);
    (*restored)->PredictProbaOne(x, &p2);
    ASSERT_EQ(p1, p2) << "prediction " << i;
    (*original)->LearnOne(x, y);
    (*restored)->LearnOne(x, y);
  }
  EXPECT_EQ((*original)->NumClasses(), (*restored)->NumClasses());
  EXPECT_EQ((*original)->MemoryBytes(), (*restored)->MemoryBytes());
}

INSTANTIATE_TEST_SUITE_P(
    AllOptimizers, LogisticRegressionRoundTripTest,
    ::testing::Values(RoundTripCase{"sgd", "auto", "0"}, RoundTripCase{"sgd", "auto", "0.001"},
                      RoundTripCase{"adam", "auto", "0"}, RoundTripCase{"adagrad", "softmax", "0"},
                      RoundTripCase{"ftrl", "auto", "0"}, RoundTripCase{"ftrl", "softmax", "0"},
                      RoundTripCase{"adam", "softmax", "0.001"}),
    [](const ::testing::TestParamInfo<RoundTripCase>& info) {
      std::string name = std::string(info.param.optimizer) + "_" + info.param.mode;
      if (std::string(info.param.l1) != "0") name += "_l1";
      return name;
    });

TEST(LogisticRegressionSerializationTest, TruncatedStateThrowsAndLeavesModelUnchanged) {
  LogisticRegression m = Make({{"optimizer", "adam"}});
  for (int i = 0; i < 10; ++i) m.LearnOne(HandExample(), i % 2);
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    m.Save(out);
  }
  const std::string bytes = buffer.str();
  LogisticRegression target = Make({});
  target.LearnOne(HandExample(), 1);
  std::vector<double> before;
  target.PredictProbaOne(HandExample(), &before);
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, bytes.size() / 2, bytes.size() - 1}) {
    std::stringstream truncated(bytes.substr(0, cut));
    EXPECT_THROW(
        {
          cereal::PortableBinaryInputArchive in(truncated);
          target.Load(in);
        },
        cereal::Exception)
        << "cut at " << cut;
    std::vector<double> after;
    target.PredictProbaOne(HandExample(), &after);
    EXPECT_EQ(before, after);
  }
}

}  // namespace
}  // namespace riffle::learners
