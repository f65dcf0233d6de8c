#include "learners/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <cstdint>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace riffle::learners {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

template <class T>
std::string Serialize(const T& value) {
  std::stringstream stream;
  {
    cereal::PortableBinaryOutputArchive archive(stream);
    archive(value);
  }
  return stream.str();
}

template <class T>
void Deserialize(const std::string& bytes, T* value) {
  std::stringstream stream(bytes);
  cereal::PortableBinaryInputArchive archive(stream);
  archive(*value);
}

std::uint64_t Bits(double v) { return std::bit_cast<std::uint64_t>(v); }

// Every getter of an accumulator as bit patterns, so that == is bit-for-bit (and NaN == NaN).
std::vector<std::uint64_t> MetricBits(const MetricAccumulator& m) {
  return {m.Count(),
          Bits(m.TotalWeight()),
          Bits(m.Accuracy()),
          Bits(m.LogLoss()),
          Bits(m.RocAuc()),
          Bits(m.Precision()),
          Bits(m.Recall()),
          Bits(m.F1()),
          Bits(m.MacroPrecision()),
          Bits(m.MacroRecall()),
          Bits(m.MacroF1()),
          m.NonBinaryCount()};
}

std::vector<std::uint64_t> MetricBits(const PrequentialMetrics& m) {
  std::vector<std::uint64_t> bits = MetricBits(m.cumulative());
  const std::vector<std::uint64_t> rolling = MetricBits(m.rolling());
  bits.insert(bits.end(), rolling.begin(), rolling.end());
  bits.push_back(m.UnscoredCount());
  bits.push_back(Bits(m.UnscoredWeight()));
  return bits;
}

// A random example: label in [0, num_classes), probabilities over a random number of known
// classes (1..num_classes, or empty with probability `empty_rate`), weight 1 or in [0.1, 3).
struct RandomExample {
  ClassIndex y_true;
  std::vector<double> proba;
  double weight;
};

RandomExample MakeRandomExample(std::mt19937& rng, std::size_t num_classes, bool unit_weight,
                                double empty_rate = 0.0) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  RandomExample example;
  example.y_true = static_cast<ClassIndex>(rng() % num_classes);
  example.weight = unit_weight ? 1.0 : 0.1 + 2.9 * uniform(rng);
  if (uniform(rng) < empty_rate) return example;
  // Mostly the full class set; sometimes fewer (a model that has not seen every class yet).
  const std::size_t known = uniform(rng) < 0.9 ? num_classes : 1 + rng() % num_classes;
  double total = 0.0;
  for (std::size_t k = 0; k < known; ++k) {
    // Quantized to multiples of 1/8 so that argmax ties and AUC ties both occur.
    example.proba.push_back(std::floor(uniform(rng) * 8.0) / 8.0 + 0.01);
    total += example.proba.back();
  }
  for (double& p : example.proba) p /= total;
  // Make the label informative so that the metrics are not all near chance.
  if (example.y_true < known && uniform(rng) < 0.5) {
    for (double& p : example.proba) p *= 0.5;
    example.proba[example.y_true] += 0.5;
  }
  return example;
}

// Exact weighted Mann-Whitney AUC on raw (unquantized) scores, O(n^2).
double BruteForceAuc(const std::vector<double>& scores, const std::vector<bool>& positive,
                     const std::vector<double>& weights) {
  double concordant = 0.0;
  double pos = 0.0;
  double neg = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    (positive[i] ? pos : neg) += weights[i];
    if (!positive[i]) continue;
    for (std::size_t j = 0; j < scores.size(); ++j) {
      if (positive[j]) continue;
      const double pair = weights[i] * weights[j];
      if (scores[i] > scores[j]) concordant += pair;
      if (scores[i] == scores[j]) concordant += 0.5 * pair;
    }
  }
  return concordant / (pos * neg);
}

ScoredExample Scored(ClassIndex y_true, ClassIndex y_pred, double weight = 1.0) {
  ScoredExample example;
  example.y_true = y_true;
  example.y_pred = y_pred;
  example.p_true = y_true == y_pred ? 0.9 : 0.1;
  example.score = y_pred == 1 ? 0.9 : 0.1;
  example.weight = weight;
  example.binary = y_true < 2 && y_pred < 2;
  return example;
}

// ---------------------------------------------------------------------------------------------
// MetricsOptions

TEST(MetricsOptionsTest, DefaultIsValid) { EXPECT_TRUE(MetricsOptions{}.Validate().ok()); }

TEST(MetricsOptionsTest, RejectsZeroWindow) {
  const absl::Status status = MetricsOptions{.window = 0}.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("window"), std::string::npos);
}

TEST(MetricsOptionsTest, RejectsWindowAboveMaximum) {
  EXPECT_TRUE(MetricsOptions{.window = kMaxMetricsWindow}.Validate().ok());
  EXPECT_FALSE(MetricsOptions{.window = kMaxMetricsWindow + 1}.Validate().ok());
}

// ---------------------------------------------------------------------------------------------
// ScoreExample, ExampleLogLoss

TEST(ScoreExampleTest, ArgMaxTiesGoToLowestIndex) {
  const std::vector<double> proba = {0.2, 0.4, 0.4};
  EXPECT_EQ(ScoreExample(2, proba).y_pred, 1u);
}

TEST(ScoreExampleTest, KnownClassGetsItsProbabilityAndScoreIsClassOne) {
  const std::vector<double> proba = {0.3, 0.7};
  const ScoredExample example = ScoreExample(0, proba, 2.5);
  EXPECT_EQ(example.y_true, 0u);
  EXPECT_EQ(example.y_pred, 1u);
  EXPECT_EQ(example.p_true, 0.3);
  EXPECT_EQ(example.score, 0.7);
  EXPECT_EQ(example.weight, 2.5);
  EXPECT_TRUE(example.binary);
}

TEST(ScoreExampleTest, UnknownClassHasZeroProbabilityAndSingleClassScoresZero) {
  // The model knows only class 0, so P(1) = 0 and the AUC score P(class 1) is 0.
  const std::vector<double> proba = {1.0};
  const ScoredExample example = ScoreExample(1, proba);
  EXPECT_EQ(example.y_pred, 0u);
  EXPECT_EQ(example.p_true, 0.0);
  EXPECT_EQ(example.score, 0.0);
  EXPECT_TRUE(example.binary);
}

TEST(ScoreExampleTest, ThirdClassMakesExampleNonBinary) {
  const std::vector<double> three = {0.2, 0.3, 0.5};
  EXPECT_FALSE(ScoreExample(0, three).binary);
  const std::vector<double> two = {0.4, 0.6};
  EXPECT_FALSE(ScoreExample(2, two).binary);
}

TEST(ExampleLogLossTest, ClampsLikeRiver) {
  EXPECT_DOUBLE_EQ(ExampleLogLoss(0.5), std::log(2.0));
  // -log(1e-15) = 15 * ln(10) = 34.538776394910684.
  EXPECT_DOUBLE_EQ(ExampleLogLoss(0.0), 34.538776394910684);
  // -log(1 - 1e-15) ~= 1e-15, not 0.
  EXPECT_NEAR(ExampleLogLoss(1.0), 1e-15, 1e-17);
  EXPECT_GT(ExampleLogLoss(1.0), 0.0);
}

// ---------------------------------------------------------------------------------------------
// ConfusionMatrix

TEST(ConfusionMatrixTest, CountsAndSums) {
  // (true, pred, weight): (0,0,1) (0,1,2) (1,1,0.5) (2,1,1) (1,1,1)
  //        pred 0  pred 1  pred 2 | row
  // true 0   1       2       0    |  3
  // true 1   0       1.5     0    |  1.5
  // true 2   0       1       0    |  1
  // col      1       4.5     0      total 5.5, correct 1 + 1.5 = 2.5
  ConfusionMatrix cm;
  cm.Add(0, 0, 1.0);
  cm.Add(0, 1, 2.0);
  cm.Add(1, 1, 0.5);
  cm.Add(2, 1, 1.0);
  cm.Add(1, 1, 1.0);
  EXPECT_EQ(cm.NumClasses(), 3u);
  EXPECT_EQ(cm.Weight(0, 0), 1.0);
  EXPECT_EQ(cm.Weight(0, 1), 2.0);
  EXPECT_EQ(cm.Weight(1, 1), 1.5);
  EXPECT_EQ(cm.Count(1, 1), 2u);
  EXPECT_EQ(cm.Weight(2, 1), 1.0);
  EXPECT_EQ(cm.Weight(2, 2), 0.0);
  EXPECT_EQ(cm.RowSum(0), 3.0);
  EXPECT_EQ(cm.RowSum(1), 1.5);
  EXPECT_EQ(cm.RowSum(2), 1.0);
  EXPECT_EQ(cm.ColSum(0), 1.0);
  EXPECT_EQ(cm.ColSum(1), 4.5);
  EXPECT_EQ(cm.ColSum(2), 0.0);
  EXPECT_EQ(cm.TotalWeight(), 5.5);
  EXPECT_EQ(cm.TotalCount(), 5u);
  EXPECT_EQ(cm.CorrectWeight(), 2.5);
  // Class 2 appears only as a true class; it is still present.
  EXPECT_TRUE(cm.HasClass(2));
  EXPECT_FALSE(cm.HasClass(3));
  EXPECT_EQ(cm.Weight(7, 0), 0.0);
}

TEST(ConfusionMatrixTest, GrowsKeepingExistingCells) {
  ConfusionMatrix cm;
  cm.Add(1, 0, 2.0);
  EXPECT_EQ(cm.NumClasses(), 2u);
  cm.Add(0, 4, 1.0);  // A predicted class index 4 grows the matrix to 5x5.
  EXPECT_EQ(cm.NumClasses(), 5u);
  EXPECT_EQ(cm.Weight(1, 0), 2.0);
  EXPECT_EQ(cm.Weight(0, 4), 1.0);
  EXPECT_EQ(cm.ColSum(4), 1.0);
  EXPECT_FALSE(cm.HasClass(3));
  EXPECT_TRUE(cm.HasClass(4));
}

TEST(ConfusionMatrixTest, RemoveUndoesAddAndEmptiedClassDisappears) {
  ConfusionMatrix cm;
  cm.Add(0, 0, 1.0);
  cm.Add(2, 1, 0.1);
  cm.Add(2, 1, 0.2);
  cm.Remove(2, 1, 0.1);
  // 0.1 + 0.2 - 0.1 = 0.20000000000000004 in doubles: residue is allowed while examples remain.
  EXPECT_NEAR(cm.Weight(2, 1), 0.2, 1e-15);
  cm.Remove(2, 1, 0.2);
  // The cell's last example left: exactly 0, not residue, and classes 1 and 2 are gone.
  EXPECT_EQ(Bits(cm.Weight(2, 1)), Bits(0.0));
  EXPECT_EQ(Bits(cm.RowSum(2)), Bits(0.0));
  EXPECT_EQ(Bits(cm.ColSum(1)), Bits(0.0));
  EXPECT_FALSE(cm.HasClass(1));
  EXPECT_FALSE(cm.HasClass(2));
  EXPECT_TRUE(cm.HasClass(0));
  EXPECT_EQ(cm.TotalWeight(), 1.0);
  EXPECT_EQ(cm.TotalCount(), 1u);
  EXPECT_EQ(cm.NumClasses(), 3u);  // Never shrinks.
}

// The correct-prediction sum is kept without a branch on whether a prediction was right; it
// must keep the bits of a running sum that adds a right prediction's weight and subtracts it
// on removal (0 once the count is 0, never below 0), over a window of weighted examples.
TEST(ConfusionMatrixTest, CorrectWeightKeepsTheBitsOfARunningSum) {
  ConfusionMatrix cm;
  double reference = 0.0;
  std::uint64_t reference_count = 0;
  std::mt19937 rng(31);
  std::uniform_int_distribution<ClassIndex> cls(0, 2);
  std::uniform_real_distribution<double> weight(0.05, 3.0);
  struct Added {
    ClassIndex y_true, y_pred;
    double weight;
  };
  std::deque<Added> window;
  for (int i = 0; i < 5000; ++i) {
    const Added a{cls(rng), cls(rng), i % 7 == 0 ? 1.0 : weight(rng)};
    cm.Add(a.y_true, a.y_pred, a.weight);
    if (a.y_true == a.y_pred) {
      reference += a.weight;
      ++reference_count;
    }
    window.push_back(a);
    if (window.size() > 40 || (i % 97 == 0 && !window.empty())) {
      const Added r = window.front();
      window.pop_front();
      cm.Remove(r.y_true, r.y_pred, r.weight);
      if (r.y_true == r.y_pred) {
        --reference_count;
        reference = reference_count == 0 ? 0.0 : std::max(0.0, reference - r.weight);
      }
    }
    ASSERT_EQ(Bits(cm.CorrectWeight()), Bits(reference)) << "step " << i;
  }
  while (!window.empty()) {
    const Added r = window.front();
    window.pop_front();
    cm.Remove(r.y_true, r.y_pred, r.weight);
  }
  EXPECT_EQ(Bits(cm.CorrectWeight()), Bits(0.0));
  EXPECT_EQ(cm.TotalCount(), 0u);
}

TEST(ConfusionMatrixTest, SaveLoadRoundTrip) {
  ConfusionMatrix cm;
  cm.Add(0, 2, 0.3);
  cm.Add(1, 1, 1.7);
  cm.Add(2, 0, 0.9);
  cm.Remove(0, 2, 0.3);
  ConfusionMatrix restored;
  restored.Add(5, 5, 1.0);  // Loading replaces whatever was there.
  Deserialize(Serialize(cm), &restored);
  EXPECT_EQ(Serialize(restored), Serialize(cm));
  EXPECT_EQ(restored.NumClasses(), 3u);
  EXPECT_EQ(Bits(restored.Weight(1, 1)), Bits(1.7));
  cm.Add(2, 2, 0.4);
  restored.Add(2, 2, 0.4);
  EXPECT_EQ(Serialize(restored), Serialize(cm));
}

// ---------------------------------------------------------------------------------------------
// BinaryRocAuc

TEST(BinaryRocAucTest, BinsQuantizeToSixteenBits) {
  EXPECT_EQ(BinaryRocAuc::Bin(0.0), 0u);
  EXPECT_EQ(BinaryRocAuc::Bin(0.5), 32768u);
  EXPECT_EQ(BinaryRocAuc::Bin(0.5 + 1.0 / 65536), 32769u);
  EXPECT_EQ(BinaryRocAuc::Bin(1.0), 65535u);
  EXPECT_EQ(BinaryRocAuc::Bin(-0.5), 0u);
  EXPECT_EQ(BinaryRocAuc::Bin(std::nan("")), 0u);
  EXPECT_EQ(BinaryRocAuc::Bin(2.0), 65535u);
}

TEST(BinaryRocAucTest, HandComputedWithTies) {
  // Positives 0.9, 0.5; negatives 0.5, 0.1. Pairs (pos, neg):
  // (0.9, 0.5) = 1, (0.9, 0.1) = 1, (0.5, 0.5) = 1/2 (tie), (0.5, 0.1) = 1.
  // AUC = 3.5 / (2 * 2) = 0.875.
  BinaryRocAuc auc;
  auc.Add(0.9, true);
  auc.Add(0.5, false);
  auc.Add(0.5, true);
  auc.Add(0.1, false);
  EXPECT_EQ(auc.Value(), 0.875);
}

TEST(BinaryRocAucTest, HandComputedWeighted) {
  // As above with the 0.9 positive weighing 2: pairs 2*1 + 2*1 + 1*0.5 + 1*1 = 5.5 over
  // P * N = 3 * 2 = 6, AUC = 11/12.
  BinaryRocAuc auc;
  auc.Add(0.9, true, 2.0);
  auc.Add(0.5, false);
  auc.Add(0.5, true);
  auc.Add(0.1, false);
  EXPECT_DOUBLE_EQ(auc.Value(), 11.0 / 12.0);
}

TEST(BinaryRocAucTest, ScoresInTheSameBinCountAsTies) {
  // 0.5 and 0.5 + 1e-6 share bin 32768: the exact AUC would be 1, the quantized one 1/2.
  BinaryRocAuc same_bin;
  same_bin.Add(0.5 + 1e-6, true);
  same_bin.Add(0.5, false);
  EXPECT_EQ(same_bin.Value(), 0.5);
  // One bin apart (1/65536) they are ordered.
  BinaryRocAuc next_bin;
  next_bin.Add(0.5 + 1.0 / 65536, true);
  next_bin.Add(0.5, false);
  EXPECT_EQ(next_bin.Value(), 1.0);
}

TEST(BinaryRocAucTest, NaNWithOnlyOneClass) {
  BinaryRocAuc auc;
  EXPECT_TRUE(std::isnan(auc.Value()));
  auc.Add(0.3, true);
  auc.Add(0.8, true);
  EXPECT_TRUE(std::isnan(auc.Value()));
  auc.Add(0.1, false);
  EXPECT_EQ(auc.Value(), 1.0);
  auc.Remove(0.1, false);
  EXPECT_TRUE(std::isnan(auc.Value()));
}

TEST(BinaryRocAucTest, AllocatesTreesOnFirstAdd) {
  BinaryRocAuc auc;
  EXPECT_EQ(auc.MemoryBytes(), 0u);
  auc.Add(0.5, false);
  EXPECT_EQ(auc.MemoryBytes(), std::size_t{2} * 65536 * sizeof(double));
}

TEST(BinaryRocAucTest, MatchesBruteForceMannWhitney) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> scores;
  std::vector<bool> positive;
  std::vector<double> weights;
  BinaryRocAuc auc;
  for (int i = 0; i < 400; ++i) {
    const bool is_positive = uniform(rng) < 0.4;
    // Positives score higher on average, so the AUC is far from 1/2 (about 0.75).
    const double score = is_positive ? std::sqrt(uniform(rng)) : uniform(rng);
    scores.push_back(score);
    positive.push_back(is_positive);
    weights.push_back(1.0);
    auc.Add(score, is_positive);
  }
  const double expected = BruteForceAuc(scores, positive, weights);
  EXPECT_GT(expected, 0.6);
  EXPECT_NEAR(auc.Value(), expected, 1e-4);
}

TEST(BinaryRocAucTest, WeightedAddAndRemoveMatchBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> scores;
  std::vector<bool> positive;
  std::vector<double> weights;
  BinaryRocAuc auc;
  for (int i = 0; i < 300; ++i) {
    const bool is_positive = uniform(rng) < 0.5;
    scores.push_back(is_positive ? uniform(rng) * 0.8 + 0.2 : uniform(rng) * 0.8);
    positive.push_back(is_positive);
    weights.push_back(0.1 + 4.9 * uniform(rng));
    auc.Add(scores.back(), positive.back(), weights.back());
  }
  EXPECT_NEAR(auc.Value(), BruteForceAuc(scores, positive, weights), 1e-4);
  // Remove every third example; the rest must still match.
  std::vector<double> kept_scores;
  std::vector<bool> kept_positive;
  std::vector<double> kept_weights;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (i % 3 == 0) {
      auc.Remove(scores[i], positive[i], weights[i]);
    } else {
      kept_scores.push_back(scores[i]);
      kept_positive.push_back(positive[i]);
      kept_weights.push_back(weights[i]);
    }
  }
  EXPECT_NEAR(auc.Value(), BruteForceAuc(kept_scores, kept_positive, kept_weights), 1e-4);
}

TEST(BinaryRocAucTest, SaveLoadRoundTripSparseAndDense) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  BinaryRocAuc auc;
  // Empty (no trees), a few examples (sparse encoding), many examples (dense encoding).
  for (int n : {0, 5, 20000}) {
    while (static_cast<int>(auc.PositiveCount() + auc.NegativeCount()) < n) {
      auc.Add(uniform(rng), uniform(rng) < 0.5, 0.5 + uniform(rng));
    }
    BinaryRocAuc restored;
    restored.Add(0.2, true);
    Deserialize(Serialize(auc), &restored);
    EXPECT_EQ(Serialize(restored), Serialize(auc)) << n;
    EXPECT_EQ(Bits(restored.Value()), Bits(auc.Value())) << n;
    EXPECT_EQ(restored.MemoryBytes(), auc.MemoryBytes()) << n;
  }
  // The sparse encoding is much smaller than the 1 MiB of trees.
  BinaryRocAuc small;
  small.Add(0.1, true);
  small.Add(0.7, false);
  EXPECT_LT(Serialize(small).size(), 1000u);
}

// What BinaryRocAuc wrote as version 1: Fenwick trees of the bin weights and the running
// concordant weight. Written here from the examples, to check that such archives still load.
struct RocAucVersion1 {
  static constexpr std::size_t kBins = BinaryRocAuc::kNumBins;
  std::vector<double> positive_tree = std::vector<double>(kBins, 0.0);
  std::vector<double> negative_tree = std::vector<double>(kBins, 0.0);
  double positive_weight = 0.0, negative_weight = 0.0;
  std::uint64_t positive_count = 0, negative_count = 0;
  double concordance = 0.0;
  bool sparse = false;

  void Add(double score, bool positive, double weight) {
    std::vector<double>& tree = positive ? positive_tree : negative_tree;
    for (std::size_t j = std::size_t{BinaryRocAuc::Bin(score)} + 1; j <= kBins; j += j & (~j + 1)) {
      tree[j - 1] += weight;
    }
    (positive ? positive_weight : negative_weight) += weight;
    ++(positive ? positive_count : negative_count);
  }
  template <class Archive>
  void WriteTree(Archive& archive, const std::vector<double>& tree) const {
    if (!sparse) {
      archive(std::uint8_t{1}, tree);
      return;
    }
    std::vector<std::uint32_t> nodes;
    std::vector<double> values;
    for (std::size_t i = 0; i < tree.size(); ++i) {
      if (tree[i] != 0.0) {
        nodes.push_back(static_cast<std::uint32_t>(i));
        values.push_back(tree[i]);
      }
    }
    archive(std::uint8_t{2}, nodes, values);
  }
  template <class Archive>
  void save(Archive& archive, std::uint32_t /*version*/) const {
    archive(positive_weight, negative_weight, positive_count, negative_count, concordance);
    WriteTree(archive, positive_tree);
    WriteTree(archive, negative_tree);
  }
};

}  // namespace
}  // namespace riffle::learners

CEREAL_CLASS_VERSION(riffle::learners::RocAucVersion1, 1);

namespace riffle::learners {
namespace {

TEST(BinaryRocAucTest, LoadsVersionOneFenwickArchives) {
  for (bool sparse : {true, false}) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    BinaryRocAuc current;
    RocAucVersion1 old;
    old.sparse = sparse;
    for (int i = 0; i < 3000; ++i) {
      const bool positive = uniform(rng) < 0.3;
      const double score = positive ? std::sqrt(uniform(rng)) : uniform(rng);
      current.Add(score, positive, 1.0);
      old.Add(score, positive, 1.0);
    }
    old.concordance = current.Value() * old.positive_weight * old.negative_weight;
    BinaryRocAuc loaded;
    Deserialize(Serialize(old), &loaded);
    // Integer weights: the bins recovered from the trees are exact, so is everything else.
    EXPECT_EQ(Bits(loaded.Value()), Bits(current.Value())) << sparse;
    EXPECT_EQ(Serialize(loaded), Serialize(current)) << sparse;
    EXPECT_EQ(loaded.PositiveCount(), current.PositiveCount());
    // And it goes on as if it had never been saved.
    loaded.Add(0.25, true);
    current.Add(0.25, true);
    loaded.Remove(0.25, true);
    current.Remove(0.25, true);
    EXPECT_EQ(Bits(loaded.Value()), Bits(current.Value()));
  }
}

// ---------------------------------------------------------------------------------------------
// MetricAccumulator

TEST(MetricAccumulatorTest, EmptyIsZeroExceptAuc) {
  MetricAccumulator m;
  EXPECT_EQ(m.Count(), 0u);
  EXPECT_EQ(m.Accuracy(), 0.0);
  EXPECT_EQ(m.LogLoss(), 0.0);
  EXPECT_EQ(m.Precision(), 0.0);
  EXPECT_EQ(m.Recall(), 0.0);
  EXPECT_EQ(m.F1(), 0.0);
  EXPECT_EQ(m.MacroPrecision(), 0.0);
  EXPECT_EQ(m.MacroRecall(), 0.0);
  EXPECT_EQ(m.MacroF1(), 0.0);
  EXPECT_TRUE(std::isnan(m.RocAuc()));
}

TEST(MetricAccumulatorTest, AccuracyAndLogLossHandExample) {
  // y  proba       y_pred          P(y)  loss
  // 1  [0.2, 0.8]  1 (correct)     0.8   -ln 0.8
  // 0  [0.4, 0.6]  1 (wrong)       0.4   -ln 0.4
  // 1  [0.5, 0.5]  0 (tie, wrong)  0.5   -ln 0.5
  // 0  [1.0, 0.0]  0 (correct)     1.0   -ln(1 - 1e-15) ~= 1e-15 (clamped)
  // Accuracy = 2/4 = 0.5.
  // Log loss = (-ln(0.8 * 0.4 * 0.5) + 1e-15) / 4 = (1.8325814637483102 + 1e-15) / 4
  //          = 0.45814536593707755 + 2.5e-16.
  MetricAccumulator m;
  const std::vector<std::vector<double>> probas = {{0.2, 0.8}, {0.4, 0.6}, {0.5, 0.5}, {1.0, 0.0}};
  const std::vector<ClassIndex> labels = {1, 0, 1, 0};
  for (std::size_t i = 0; i < labels.size(); ++i) m.Add(ScoreExample(labels[i], probas[i]));
  EXPECT_EQ(m.Count(), 4u);
  EXPECT_EQ(m.Accuracy(), 0.5);
  EXPECT_NEAR(m.LogLoss(), 0.45814536593707755, 1e-12);
}

TEST(MetricAccumulatorTest, UnknownTrueClassCostsClampedLogLoss) {
  // The model knows only class 0; label 1 has P = 0, clamped to 1e-15: loss 34.538776394910684.
  MetricAccumulator m;
  const std::vector<double> proba = {1.0};
  m.Add(ScoreExample(1, proba));
  EXPECT_EQ(m.Accuracy(), 0.0);
  EXPECT_DOUBLE_EQ(m.LogLoss(), 34.538776394910684);
}

TEST(MetricAccumulatorTest, BinaryPrecisionRecallF1HandComputed) {
  // y_true 1 0 1 1 0 0, y_pred 1 1 0 1 0 1 (positive class 1):
  // TP = 2 (1,1 twice), FP = 2 (0,1 twice), FN = 1 (1,0), TN = 1.
  // Precision = 2/4 = 0.5, recall = 2/3, F1 = 2 * 0.5 * 2/3 / (0.5 + 2/3) = (2/3)/(7/6) = 4/7.
  // River 0.26: Precision 0.5, Recall 0.6666666666666666, F1 0.5714285714285715.
  MetricAccumulator m;
  const std::vector<ClassIndex> y_true = {1, 0, 1, 1, 0, 0};
  const std::vector<ClassIndex> y_pred = {1, 1, 0, 1, 0, 1};
  for (std::size_t i = 0; i < y_true.size(); ++i) m.Add(Scored(y_true[i], y_pred[i]));
  EXPECT_EQ(m.Precision(), 0.5);
  EXPECT_DOUBLE_EQ(m.Recall(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.F1(), 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.Accuracy(), 0.5);  // TP + TN = 3 of 6.
}

TEST(MetricAccumulatorTest, MacroMetricsThreeClassMatchRiver) {
  // y_true 0 1 2 2 2 0 1, y_pred 0 0 2 2 1 0 2.
  //        pred 0 1 2 | row
  // true 0      2 0 0 |  2
  // true 1      1 0 1 |  2
  // true 2      0 1 2 |  3
  // col         3 1 3
  // class 0: p = 2/3, r = 2/2 = 1, f1 = 2 * 2/3 / (5/3) = 4/5
  // class 1: p = 0/1 = 0, r = 0/2 = 0, f1 = 0
  // class 2: p = 2/3, r = 2/3, f1 = 2/3
  // Macro precision = (2/3 + 0 + 2/3) / 3 = 4/9, recall = (1 + 0 + 2/3) / 3 = 5/9,
  // F1 = (4/5 + 0 + 2/3) / 3 = 22/45.
  // River 0.26: MacroPrecision 0.4444444444444444, MacroRecall 0.5555555555555555,
  // MacroF1 0.48888888888888893, Accuracy 0.5714285714285714 (4/7).
  MetricAccumulator m;
  const std::vector<ClassIndex> y_true = {0, 1, 2, 2, 2, 0, 1};
  const std::vector<ClassIndex> y_pred = {0, 0, 2, 2, 1, 0, 2};
  for (std::size_t i = 0; i < y_true.size(); ++i) m.Add(Scored(y_true[i], y_pred[i]));
  EXPECT_DOUBLE_EQ(m.MacroPrecision(), 0.4444444444444444);
  EXPECT_DOUBLE_EQ(m.MacroRecall(), 0.5555555555555555);
  EXPECT_DOUBLE_EQ(m.MacroF1(), 0.48888888888888893);
  EXPECT_DOUBLE_EQ(m.Accuracy(), 0.5714285714285714);
}

TEST(MetricAccumulatorTest, MacroAveragesOverPredictedOnlyClassesToo) {
  // As above plus (true 0, pred 3): class 3 appears only as a prediction and counts in the
  // average with p = 0 (0 of 1 predicted) and r = 0 (no true examples).
  // class 0 now: p = 2/3, r = 2/3, f1 = 2/3; class 1: 0; class 2: 2/3; class 3: 0.
  // Macro F1 = macro precision = macro recall = (4/3) / 4 = 1/3 (River 0.26: 0.3333333333333333).
  MetricAccumulator m;
  const std::vector<ClassIndex> y_true = {0, 1, 2, 2, 2, 0, 1, 0};
  const std::vector<ClassIndex> y_pred = {0, 0, 2, 2, 1, 0, 2, 3};
  for (std::size_t i = 0; i < y_true.size(); ++i) m.Add(Scored(y_true[i], y_pred[i]));
  EXPECT_DOUBLE_EQ(m.MacroF1(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.MacroPrecision(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.MacroRecall(), 1.0 / 3.0);
}

TEST(MetricAccumulatorTest, WeightedExamplesMatchRiver) {
  // The three-class stream above with weights 2, 1, 0.5, 1, 3, 1, 1:
  //        pred 0 1   2   | row
  // true 0      3 0   0   | 3
  // true 1      1 0   1   | 2
  // true 2      0 3   1.5 | 4.5
  // col         4 3   2.5
  // class 0: p = 3/4, r = 1, f1 = 1.5/1.75 = 6/7; class 1: 0;
  // class 2: p = 1.5/2.5 = 0.6, r = 1.5/4.5 = 1/3, f1 = 0.4/(14/15) = 3/7.
  // Macro precision = 1.35/3 = 0.45, recall = (4/3)/3 = 4/9, F1 = (9/7)/3 = 3/7.
  // Accuracy = (3 + 1.5) / 9.5 = 9/19.
  // River 0.26: 0.45, 0.4444444444444444, 0.42857142857142855, 0.47368421052631576.
  MetricAccumulator m;
  const std::vector<ClassIndex> y_true = {0, 1, 2, 2, 2, 0, 1};
  const std::vector<ClassIndex> y_pred = {0, 0, 2, 2, 1, 0, 2};
  const std::vector<double> weights = {2, 1, 0.5, 1, 3, 1, 1};
  for (std::size_t i = 0; i < y_true.size(); ++i) {
    m.Add(Scored(y_true[i], y_pred[i], weights[i]));
  }
  EXPECT_EQ(m.TotalWeight(), 9.5);
  EXPECT_DOUBLE_EQ(m.MacroPrecision(), 0.45);
  EXPECT_DOUBLE_EQ(m.MacroRecall(), 4.0 / 9.0);
  EXPECT_DOUBLE_EQ(m.MacroF1(), 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.Accuracy(), 9.0 / 19.0);
}

TEST(MetricAccumulatorTest, WeightedLogLossIsWeightedMean) {
  // Losses -ln 0.8 (weight 3) and -ln 0.25 (weight 1):
  // (3 * 0.2231435513142097 + 1.3862943611198906) / 4 = 2.0557250150625197 / 4 = 0.51393125...
  MetricAccumulator m;
  const std::vector<double> a = {0.2, 0.8};
  const std::vector<double> b = {0.25, 0.75};
  m.Add(ScoreExample(1, a, 3.0));
  m.Add(ScoreExample(0, b, 1.0));
  EXPECT_NEAR(m.LogLoss(), (3 * -std::log(0.8) - std::log(0.25)) / 4, 1e-15);
  EXPECT_NEAR(m.LogLoss(), 0.5139312537656299, 1e-12);
  // Accuracy: first correct (weight 3), second wrong: 3/4.
  EXPECT_EQ(m.Accuracy(), 0.75);
}

TEST(MetricAccumulatorTest, RemoveUndoesAdd) {
  // Weights that are powers of two keep the confusion-matrix and AUC sums exact, so every
  // metric except log loss (a sum of logarithms, which keeps rounding residue) must come back
  // bit for bit.
  MetricAccumulator m;
  m.Add(Scored(0, 0));
  m.Add(Scored(1, 1, 2.0));
  m.Add(Scored(1, 0, 0.25));
  MetricAccumulator before = m;
  const ScoredExample extra = Scored(0, 1, 0.5);
  m.Add(extra);
  EXPECT_NE(m.Accuracy(), before.Accuracy());
  EXPECT_NE(m.RocAuc(), before.RocAuc());
  m.Remove(extra);
  EXPECT_EQ(m.Count(), before.Count());
  EXPECT_EQ(Bits(m.TotalWeight()), Bits(before.TotalWeight()));
  EXPECT_EQ(Bits(m.Accuracy()), Bits(before.Accuracy()));
  EXPECT_EQ(Bits(m.RocAuc()), Bits(before.RocAuc()));
  EXPECT_EQ(Bits(m.Precision()), Bits(before.Precision()));
  EXPECT_EQ(Bits(m.Recall()), Bits(before.Recall()));
  EXPECT_EQ(Bits(m.MacroF1()), Bits(before.MacroF1()));
  EXPECT_NEAR(m.LogLoss(), before.LogLoss(), 1e-15);
}

TEST(MetricAccumulatorTest, SaveLoadRoundTrip) {
  MetricAccumulator m;
  m.Add(Scored(0, 0, 0.5));
  m.Add(Scored(1, 0, 1.5));
  m.Add(Scored(2, 1));
  MetricAccumulator restored;
  Deserialize(Serialize(m), &restored);
  EXPECT_EQ(MetricBits(restored), MetricBits(m));
  EXPECT_EQ(Serialize(restored), Serialize(m));
  m.Remove(Scored(2, 1));
  restored.Remove(Scored(2, 1));
  EXPECT_EQ(MetricBits(restored), MetricBits(m));
  EXPECT_FALSE(std::isnan(m.RocAuc()));  // Binary again once the class 2 example left.
}

// ---------------------------------------------------------------------------------------------
// PrequentialMetrics

TEST(PrequentialMetricsTest, EmptyProbabilitiesAreNotScored) {
  PrequentialMetrics metrics(MetricsOptions{.window = 3});
  metrics.Update(0, {}, 2.0);
  metrics.Update(1, {}, 0.5);
  EXPECT_EQ(metrics.UnscoredCount(), 2u);
  EXPECT_EQ(metrics.UnscoredWeight(), 2.5);
  EXPECT_EQ(metrics.cumulative().Count(), 0u);
  EXPECT_EQ(metrics.rolling().Count(), 0u);
  // A scored example after them: accuracy 1/1, not 1/3.
  const std::vector<double> proba = {0.9};
  metrics.Update(0, proba);
  EXPECT_EQ(metrics.cumulative().Count(), 1u);
  EXPECT_EQ(metrics.cumulative().Accuracy(), 1.0);
  EXPECT_EQ(metrics.UnscoredCount(), 2u);
}

TEST(PrequentialMetricsTest, RollingWindowKeepsLastExamples) {
  // Window 2; correct, wrong, wrong, correct:
  // cumulative accuracy 2/4 = 0.5; rolling covers the last two (wrong, correct): 1/2.
  // After the third update the rolling window holds (wrong, wrong): 0.
  PrequentialMetrics metrics(MetricsOptions{.window = 2});
  const std::vector<double> says_zero = {0.7, 0.3};
  metrics.Update(0, says_zero);
  metrics.Update(1, says_zero);
  metrics.Update(1, says_zero);
  EXPECT_EQ(metrics.rolling().Accuracy(), 0.0);
  EXPECT_EQ(metrics.rolling().Count(), 2u);
  metrics.Update(0, says_zero);
  EXPECT_EQ(metrics.cumulative().Accuracy(), 0.5);
  EXPECT_EQ(metrics.rolling().Accuracy(), 0.5);
  EXPECT_EQ(metrics.cumulative().Count(), 4u);
  EXPECT_EQ(metrics.rolling().Count(), 2u);
}

TEST(PrequentialMetricsTest, AucNaNWithOneClassOnly) {
  PrequentialMetrics metrics;
  const std::vector<double> proba = {0.4, 0.6};
  metrics.Update(1, proba);
  metrics.Update(1, proba);
  EXPECT_TRUE(std::isnan(metrics.cumulative().RocAuc()));
  EXPECT_TRUE(std::isnan(metrics.rolling().RocAuc()));
  metrics.Update(0, std::vector<double>{0.8, 0.2});
  EXPECT_EQ(metrics.cumulative().RocAuc(), 1.0);
}

TEST(PrequentialMetricsTest, AucNaNWhileNonBinaryExampleInPopulation) {
  PrequentialMetrics metrics(MetricsOptions{.window = 3});
  metrics.Update(0, std::vector<double>{0.8, 0.2});
  metrics.Update(1, std::vector<double>{0.3, 0.7});
  EXPECT_EQ(metrics.rolling().RocAuc(), 1.0);
  // A third class in the probabilities (y_true is still binary): AUC is undefined.
  metrics.Update(1, std::vector<double>{0.2, 0.5, 0.3});
  EXPECT_TRUE(std::isnan(metrics.cumulative().RocAuc()));
  EXPECT_TRUE(std::isnan(metrics.rolling().RocAuc()));
  // Three binary examples push it out of the window; the cumulative AUC stays undefined.
  metrics.Update(0, std::vector<double>{0.6, 0.4});
  metrics.Update(1, std::vector<double>{0.1, 0.9});
  EXPECT_TRUE(std::isnan(metrics.rolling().RocAuc()));
  metrics.Update(0, std::vector<double>{0.9, 0.1});
  // Window: (0, 0.4), (1, 0.9), (0, 0.1): the positive beats both negatives.
  EXPECT_EQ(metrics.rolling().RocAuc(), 1.0);
  EXPECT_TRUE(std::isnan(metrics.cumulative().RocAuc()));
}

TEST(PrequentialMetricsTest, RollingEqualsFreshAccumulatorOverLastWindow) {
  // Property: at any point, the rolling metrics equal those of a fresh accumulator fed only
  // the last `window` scored examples. With unit weights every confusion-matrix and AUC sum
  // is an integer or half-integer, so those metrics must agree exactly; log loss (and, with
  // real weights, everything) up to rounding.
  struct Case {
    std::uint32_t seed;
    std::size_t num_classes;
    std::size_t window;
    bool unit_weight;
  };
  for (const Case& c : {Case{1, 2, 50, true}, Case{2, 2, 7, false}, Case{3, 3, 40, true},
                        Case{4, 3, 1, false}, Case{5, 4, 200, false}}) {
    SCOPED_TRACE(::testing::Message() << "seed " << c.seed);
    std::mt19937 rng(c.seed);
    PrequentialMetrics metrics(MetricsOptions{.window = c.window});
    std::deque<ScoredExample> last;
    for (int step = 1; step <= 1500; ++step) {
      const RandomExample example = MakeRandomExample(rng, c.num_classes, c.unit_weight, 0.02);
      metrics.Update(example.y_true, example.proba, example.weight);
      if (example.proba.empty()) continue;
      last.push_back(ScoreExample(example.y_true, example.proba, example.weight));
      if (last.size() > c.window) last.pop_front();
      if (step % 61 != 0 && step != 1500) continue;
      MetricAccumulator fresh;
      for (const ScoredExample& e : last) fresh.Add(e);
      const MetricAccumulator& rolling = metrics.rolling();
      ASSERT_EQ(rolling.Count(), fresh.Count());
      EXPECT_EQ(rolling.NonBinaryCount(), fresh.NonBinaryCount());
      EXPECT_EQ(std::isnan(rolling.RocAuc()), std::isnan(fresh.RocAuc()));
      if (c.unit_weight) {
        EXPECT_EQ(rolling.TotalWeight(), fresh.TotalWeight());
        EXPECT_EQ(rolling.Accuracy(), fresh.Accuracy());
        EXPECT_EQ(rolling.Precision(), fresh.Precision());
        EXPECT_EQ(rolling.Recall(), fresh.Recall());
        EXPECT_EQ(rolling.F1(), fresh.F1());
        EXPECT_EQ(rolling.MacroPrecision(), fresh.MacroPrecision());
        EXPECT_EQ(rolling.MacroRecall(), fresh.MacroRecall());
        EXPECT_EQ(rolling.MacroF1(), fresh.MacroF1());
        if (!std::isnan(fresh.RocAuc())) {
          EXPECT_EQ(rolling.RocAuc(), fresh.RocAuc());
        }
      } else {
        constexpr double kTol = 1e-9;
        EXPECT_NEAR(rolling.TotalWeight(), fresh.TotalWeight(), kTol);
        EXPECT_NEAR(rolling.Accuracy(), fresh.Accuracy(), kTol);
        EXPECT_NEAR(rolling.Precision(), fresh.Precision(), kTol);
        EXPECT_NEAR(rolling.Recall(), fresh.Recall(), kTol);
        EXPECT_NEAR(rolling.F1(), fresh.F1(), kTol);
        EXPECT_NEAR(rolling.MacroPrecision(), fresh.MacroPrecision(), kTol);
        EXPECT_NEAR(rolling.MacroRecall(), fresh.MacroRecall(), kTol);
        EXPECT_NEAR(rolling.MacroF1(), fresh.MacroF1(), kTol);
        if (!std::isnan(fresh.RocAuc())) {
          EXPECT_NEAR(rolling.RocAuc(), fresh.RocAuc(), kTol);
        }
      }
      EXPECT_NEAR(rolling.LogLoss(), fresh.LogLoss(), 1e-9);
    }
    // The cumulative metrics saw everything scored: more than the window.
    EXPECT_GT(metrics.cumulative().Count(), metrics.rolling().Count());
  }
}

TEST(PrequentialMetricsTest, CumulativeEqualsAccumulatorOfAllScoredExamples) {
  std::mt19937 rng(11);
  PrequentialMetrics metrics(MetricsOptions{.window = 10});
  MetricAccumulator all;
  for (int i = 0; i < 500; ++i) {
    const RandomExample example = MakeRandomExample(rng, 2, false, 0.05);
    metrics.Update(example.y_true, example.proba, example.weight);
    if (!example.proba.empty()) {
      all.Add(ScoreExample(example.y_true, example.proba, example.weight));
    }
  }
  // Same additions in the same order: bit-identical.
  EXPECT_EQ(MetricBits(metrics.cumulative()), MetricBits(all));
  EXPECT_GT(metrics.UnscoredCount(), 0u);
}

// PrefetchForUpdate only asks for cache lines: metrics with a prefetch before every update
// (binary, multiclass, unscored examples, a wrapped window whose removals are prefetched too)
// equal metrics without.
TEST(PrequentialMetricsTest, PrefetchForUpdateChangesNothing) {
  for (std::size_t num_classes : {2, 3}) {
    SCOPED_TRACE(::testing::Message() << num_classes << " classes");
    std::mt19937 rng(static_cast<std::uint32_t>(300 + num_classes));
    PrequentialMetrics plain(MetricsOptions{.window = 16});
    PrequentialMetrics prefetched(MetricsOptions{.window = 16});
    for (int i = 0; i < 200; ++i) {
      const RandomExample example = MakeRandomExample(rng, num_classes, false, 0.05);
      prefetched.PrefetchForUpdate(example.y_true, example.proba, example.weight);
      prefetched.Update(example.y_true, example.proba, example.weight);
      plain.Update(example.y_true, example.proba, example.weight);
      ASSERT_EQ(MetricBits(prefetched), MetricBits(plain)) << "update " << i;
    }
    EXPECT_EQ(Serialize(prefetched), Serialize(plain));
  }
  // Before the first scored example the ROC AUC bins are not allocated: nothing to prefetch.
  PrequentialMetrics empty;
  empty.PrefetchForUpdate(1, std::vector<double>{0.25, 0.75});
  EXPECT_EQ(empty.cumulative().roc_auc().MemoryBytes(), 0u);
}

TEST(PrequentialMetricsTest, SaveLoadMidStreamIsBitIdentical) {
  for (std::size_t num_classes : {2, 3}) {
    SCOPED_TRACE(::testing::Message() << num_classes << " classes");
    std::mt19937 rng(static_cast<std::uint32_t>(100 + num_classes));
    PrequentialMetrics metrics(MetricsOptions{.window = 37});
    // 250 updates: the ring buffer has wrapped, so its oldest entry is mid-array.
    for (int i = 0; i < 250; ++i) {
      const RandomExample example = MakeRandomExample(rng, num_classes, false, 0.02);
      metrics.Update(example.y_true, example.proba, example.weight);
    }
    const std::string bytes = Serialize(metrics);
    PrequentialMetrics restored(MetricsOptions{.window = 5});  // Options come from the archive.
    Deserialize(bytes, &restored);
    EXPECT_EQ(restored.options().window, 37u);
    EXPECT_EQ(MetricBits(restored), MetricBits(metrics));
    EXPECT_EQ(Serialize(restored), bytes);
    if (num_classes == 2) {
      EXPECT_FALSE(std::isnan(restored.rolling().RocAuc()));
    }
    // Continued updates stay bit-identical, including removals from the restored window.
    for (int i = 0; i < 300; ++i) {
      const RandomExample example = MakeRandomExample(rng, num_classes, false, 0.02);
      metrics.Update(example.y_true, example.proba, example.weight);
      restored.Update(example.y_true, example.proba, example.weight);
      ASSERT_EQ(MetricBits(restored), MetricBits(metrics)) << "update " << i;
    }
    EXPECT_EQ(Serialize(restored), Serialize(metrics));
  }
}

TEST(PrequentialMetricsTest, LoadOfTruncatedArchiveThrowsAndKeepsState) {
  PrequentialMetrics metrics(MetricsOptions{.window = 4});
  const std::vector<double> proba = {0.3, 0.7};
  for (int i = 0; i < 6; ++i) metrics.Update(static_cast<ClassIndex>(i % 2), proba);
  const std::string bytes = Serialize(metrics);
  PrequentialMetrics target(MetricsOptions{.window = 2});
  target.Update(1, proba);
  const std::vector<std::uint64_t> before = MetricBits(target);
  for (std::size_t cut : {bytes.size() / 3, bytes.size() - 1}) {
    EXPECT_THROW(Deserialize(bytes.substr(0, cut), &target), cereal::Exception) << cut;
    EXPECT_EQ(MetricBits(target), before);
    EXPECT_EQ(target.options().window, 2u);
  }
}

// Byte layout of a PortableBinary archive of PrequentialMetrics: [0] endianness flag,
// [1, 5) the class version (uint32), [5, 13) options.window (uint64), then the rest.
TEST(PrequentialMetricsTest, LoadRejectsUnsupportedVersion) {
  PrequentialMetrics metrics;
  std::string bytes = Serialize(metrics);
  ASSERT_EQ(bytes[1], 1);  // Version 1, little-endian.
  bytes[1] = 2;
  PrequentialMetrics target;
  EXPECT_THROW(Deserialize(bytes, &target), cereal::Exception);
}

TEST(PrequentialMetricsTest, LoadRejectsInvalidWindow) {
  PrequentialMetrics metrics(MetricsOptions{.window = 3});
  std::string bytes = Serialize(metrics);
  ASSERT_EQ(bytes[5], 3);  // options.window, little-endian.
  bytes[5] = 0;
  PrequentialMetrics target;
  EXPECT_THROW(Deserialize(bytes, &target), cereal::Exception);
}

TEST(PrequentialMetricsTest, LoadRejectsWindowSmallerThanItsContents) {
  // Window 3 holding 3 examples, relabelled as window 2: inconsistent, must not load.
  PrequentialMetrics metrics(MetricsOptions{.window = 3});
  const std::vector<double> proba = {0.5, 0.5};
  for (int i = 0; i < 3; ++i) metrics.Update(0, proba);
  std::string bytes = Serialize(metrics);
  ASSERT_EQ(bytes[5], 3);
  bytes[5] = 2;
  PrequentialMetrics target;
  EXPECT_THROW(Deserialize(bytes, &target), cereal::Exception);
}

}  // namespace
}  // namespace riffle::learners
