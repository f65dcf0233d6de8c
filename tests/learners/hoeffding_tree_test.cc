#include "learners/hoeffding_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "learners/hoeffding_tree_nodes.h"
#include "learners/registry.h"
#include "tests/learners/tree_test_util.h"

namespace riffle::learners {
namespace {

using tree_internal::Node;

FeatureVector Dense(std::initializer_list<double> values) {
  FeatureVector x;
  FeatureIndex j = 0;
  for (double v : values) x.Add(j++, v);
  return x;
}

std::vector<double> Predict(const Classifier& model, const FeatureVector& x) {
  std::vector<double> p;
  model.PredictProbaOne(x, &p);
  return p;
}

std::string SaveToString(const Classifier& model) {
  std::ostringstream out;
  {
    cereal::PortableBinaryOutputArchive archive(out);
    model.Save(archive);
  }
  return out.str();
}

void LoadFromString(const std::string& bytes, Classifier* model) {
  std::istringstream in(bytes);
  cereal::PortableBinaryInputArchive archive(in);
  model->Load(archive);
}

// Three uniform features on [0, 10); class 1 iff x[relevant] > 5, with `noise` label flips.
class ThresholdStream {
 public:
  explicit ThresholdStream(std::uint32_t seed, FeatureIndex relevant = 0, double noise = 0.0)
      : rng_(seed), relevant_(relevant), noise_(noise) {}
  void Next(FeatureVector* x, ClassIndex* y) {
    std::uniform_real_distribution<double> u(0.0, 10.0);
    x->Clear();
    for (FeatureIndex j = 0; j < 3; ++j) x->Add(j, u(rng_));
    *y = x->value(relevant_) > 5 ? 1 : 0;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < noise_) *y = 1 - *y;
  }

 private:
  std::mt19937 rng_;
  FeatureIndex relevant_;
  double noise_;
};

// --- Split criteria and the Hoeffding bound, by hand ---------------------------------------

TEST(HoeffdingTreeMathTest, InformationGainByHand) {
  // pre = [4, 4]: 1 bit. Branches [3, 1] and [1, 3]: H(3/4) = 0.811278 bits each, so the gain
  // is 1 - 0.811278 = 0.188722. A perfect split gains the whole bit.
  const std::vector<double> pre = {4, 4};
  EXPECT_NEAR(tree_internal::MeritOfSplit(SplitCriterion::kInfoGain, 0.01, pre, {{3, 1}, {1, 3}}),
              0.18872187554086717, 1e-12);
  EXPECT_DOUBLE_EQ(
      tree_internal::MeritOfSplit(SplitCriterion::kInfoGain, 0.01, pre, {{4, 0}, {0, 4}}), 1.0);
  EXPECT_DOUBLE_EQ(tree_internal::RangeOfMerit(SplitCriterion::kInfoGain, pre), 1.0);
  // Four classes present: R = log2(4) = 2.
  EXPECT_DOUBLE_EQ(
      tree_internal::RangeOfMerit(SplitCriterion::kInfoGain, std::vector<double>{1, 1, 1, 1}), 2.0);
}

TEST(HoeffdingTreeMathTest, GiniByHand) {
  // Each branch [3, 1] has impurity 1 - (9 + 1) / 16 = 0.375; merit = 1 - 0.375 = 0.625.
  EXPECT_DOUBLE_EQ(tree_internal::MeritOfSplit(SplitCriterion::kGini, 0.01,
                                               std::vector<double>{4, 4}, {{3, 1}, {1, 3}}),
                   0.625);
  EXPECT_DOUBLE_EQ(tree_internal::RangeOfMerit(SplitCriterion::kGini, std::vector<double>{4, 4}),
                   1.0);
}

TEST(HoeffdingTreeMathTest, HellingerByHand) {
  // Classes 0/1 in branches: left [3, 1], right [1, 3]; totals 4 and 4.
  // (sqrt(3/4) - sqrt(1/4))^2 * 2 = 2 (0.866025 - 0.5)^2 = 0.267949; sqrt = 0.517638.
  EXPECT_NEAR(tree_internal::MeritOfSplit(SplitCriterion::kHellinger, 0.01,
                                          std::vector<double>{4, 4}, {{3, 1}, {1, 3}}),
              0.5176380902050415, 1e-12);
}

TEST(HoeffdingTreeMathTest, MinBranchFractionInvalidatesLopsidedSplits) {
  // The second branch holds 0.5 / 100.5 < 1% of the weight: only one branch qualifies.
  EXPECT_EQ(tree_internal::MeritOfSplit(SplitCriterion::kInfoGain, 0.01,
                                        std::vector<double>{50, 50.5}, {{50, 50}, {0, 0.5}}),
            -std::numeric_limits<double>::infinity());
}

TEST(HoeffdingTreeMathTest, HoeffdingBoundByHand) {
  // sqrt(1 * ln(1e7) / (2 * 200)) = sqrt(16.118096 / 400) = 0.200737.
  EXPECT_NEAR(tree_internal::HoeffdingBound(1.0, 1e-7, 200), 0.20073674085078647, 1e-12);
}

// --- Split decisions ------------------------------------------------------------------------

TEST(HoeffdingTreeTest, NoSplitBeforeGracePeriod) {
  HoeffdingTreeOptions o;
  o.grace_period = 200;
  HoeffdingTreeClassifier tree(o);
  ThresholdStream stream(1);
  FeatureVector x;
  ClassIndex y;
  for (int i = 0; i < 199; ++i) {
    stream.Next(&x, &y);
    tree.LearnOne(x, y);
  }
  EXPECT_TRUE(tree.root()->is_leaf());
  stream.Next(&x, &y);
  tree.LearnOne(x, y);  // weight 200: first attempt
  ASSERT_FALSE(tree.root()->is_leaf());
  EXPECT_EQ(tree.root()->feature, 0u);
  EXPECT_EQ(tree.root()->split_kind, tree_internal::SplitKind::kNumericBinary);
  EXPECT_NEAR(tree.root()->threshold, 5.0, 1.0);
}

TEST(HoeffdingTreeTest, PerfectlySeparatingAttributeIsChosen) {
  for (FeatureIndex relevant : {0u, 1u, 2u}) {
    HoeffdingTreeClassifier tree;
    ThresholdStream stream(7, relevant);
    FeatureVector x;
    ClassIndex y;
    for (int i = 0; i < 1000; ++i) {
      stream.Next(&x, &y);
      tree.LearnOne(x, y);
    }
    ASSERT_FALSE(tree.root()->is_leaf());
    EXPECT_EQ(tree.root()->feature, relevant);
  }
}

TEST(HoeffdingTreeTest, PureLeafNeverSplits) {
  HoeffdingTreeOptions o;
  o.grace_period = 10;
  HoeffdingTreeClassifier tree(o);
  ThresholdStream stream(3);
  FeatureVector x;
  ClassIndex y;
  for (int i = 0; i < 5000; ++i) {
    stream.Next(&x, &y);
    tree.LearnOne(x, 0);
  }
  EXPECT_TRUE(tree.root()->is_leaf());
  EXPECT_TRUE(tree.root()->active);
  EXPECT_EQ(tree.Stats().nodes, 1u);
}

// Two copies of the same separating feature tie: G1 - G2 = 0, so only the tie threshold can
// split. At n = 200, eps = 0.2007 (HoeffdingBoundByHand): tau = 0.21 splits, tau = 0.19 not.
TEST(HoeffdingTreeTest, TiesSplitOnlyWhenBoundIsBelowTau) {
  for (const auto& [tau, splits] : {std::pair{0.19, false}, std::pair{0.21, true}}) {
    HoeffdingTreeOptions o;
    o.tau = tau;
    HoeffdingTreeClassifier tree(o);
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(0, 10);
    for (int i = 0; i < 200; ++i) {
      const double v = u(rng);
      tree.LearnOne(Dense({v, v}), v > 5 ? 1 : 0);
    }
    EXPECT_EQ(!tree.root()->is_leaf(), splits) << "tau " << tau;
  }
}

TEST(HoeffdingTreeTest, MaxDepthIsRespected) {
  HoeffdingTreeOptions o;
  o.max_depth = 2;
  o.grace_period = 50;
  HoeffdingTreeClassifier tree(o);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 10);
  for (int i = 0; i < 20000; ++i) {
    const double a = u(rng), b = u(rng), c = u(rng);
    // A checkerboard needs many levels.
    const ClassIndex y = (static_cast<int>(a) + static_cast<int>(b) + static_cast<int>(c)) % 2;
    tree.LearnOne(Dense({a, b, c}), y);
  }
  const TreeStats s = tree.Stats();
  EXPECT_GE(s.branches, 1u);
  EXPECT_LE(s.depth, 2u);
  std::vector<Node*> leaves;
  tree_internal::CollectLeaves(const_cast<Node*>(tree.root()), false, &leaves);
  for (const Node* leaf : leaves) {
    if (leaf->depth >= 2) {
      EXPECT_FALSE(leaf->active);
    }
  }
}

TEST(HoeffdingTreeTest, MaxSizeDeactivatesLeaves) {
  const auto grow = [](double max_size_mib, bool stop) {
    HoeffdingTreeOptions o;
    o.grace_period = 50;
    o.max_size = max_size_mib;
    o.memory_estimate_period = 500;
    o.stop_mem_management = stop;
    HoeffdingTreeClassifier tree(o);
    std::mt19937 rng(13);
    std::uniform_real_distribution<double> u(0, 10);
    for (int i = 0; i < 30000; ++i) {
      const double a = u(rng), b = u(rng), c = u(rng);
      tree.LearnOne(Dense({a, b, c}), (static_cast<int>(a) + static_cast<int>(b)) % 2);
    }
    return tree.Stats();
  };
  const TreeStats unbounded = grow(100, false);
  ASSERT_GT(unbounded.active_leaves, 10u);
  EXPECT_EQ(unbounded.inactive_leaves, 0u);
  // A 4 KiB budget holds a couple of active leaves (each about 1.3 KiB here).
  const TreeStats bounded = grow(4.0 / 1024, false);
  EXPECT_GT(bounded.inactive_leaves, 0u);
  EXPECT_LT(bounded.active_leaves, unbounded.active_leaves);
  EXPECT_LE(bounded.active_leaves, 4u);
  // stop_mem_management: growth stops once the budget is hit.
  const TreeStats stopped = grow(4.0 / 1024, true);
  EXPECT_LT(stopped.nodes, unbounded.nodes);
}

// --- Leaf predictions -----------------------------------------------------------------------

TEST(HoeffdingTreeTest, NaiveBayesPosteriorByHand) {
  // Class 0 saw x = 1, 2, 3: mean 2, sample variance 1. Class 1 saw 5, 6, 7, 6: mean 6,
  // variance 2/3. At x = 3.5:
  //   log P(0) + log N(3.5; 2, 1)   = ln(3/7) - 1.5^2/2 - 0.5 ln(2 pi)          = -2.891236
  //   log P(1) + log N(3.5; 6, 2/3) = ln(4/7) - 2.5^2/(4/3) - 0.5 ln(2 pi 2/3)  = -5.963322
  //   P(0 | x) = 1 / (1 + exp(-5.963322 + 2.891236)) = 0.955726.
  HoeffdingTreeOptions o;
  o.leaf_prediction = LeafPrediction::kNaiveBayes;
  HoeffdingTreeClassifier tree(o);
  for (double v : {1.0, 2.0, 3.0}) tree.LearnOne(Dense({v}), 0);
  for (double v : {5.0, 6.0, 7.0, 6.0}) tree.LearnOne(Dense({v}), 1);
  const std::vector<double> p = Predict(tree, Dense({3.5}));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NEAR(p[0], 0.955726495479683, 1e-12);
  EXPECT_NEAR(p[1], 1 - 0.955726495479683, 1e-12);
  // A missing feature leaves only the prior: 3/7, 4/7.
  const std::vector<double> prior = Predict(tree, FeatureVector());
  EXPECT_NEAR(prior[0], 3.0 / 7, 1e-15);

  // Majority class: the class distribution.
  o.leaf_prediction = LeafPrediction::kMajorityClass;
  HoeffdingTreeClassifier mc(o);
  for (double v : {1.0, 2.0, 3.0}) mc.LearnOne(Dense({v}), 0);
  for (double v : {5.0, 6.0, 7.0, 6.0}) mc.LearnOne(Dense({v}), 1);
  EXPECT_NEAR(Predict(mc, Dense({3.5}))[0], 3.0 / 7, 1e-15);
}

TEST(HoeffdingTreeTest, NaiveBayesAdaptiveScoresByHand) {
  // Each example is scored by both predictors before it is learned:
  //   (0, 0): empty leaf -> MC counts as right, NB has no answer.   mc 1, nb 0
  //   (1, 0): MC says 0 (right); NB prior only (one value, no variance): 0 (right). mc 2, nb 1
  //   (10, 1): both say 0 (wrong; class 1 unknown).                 mc 2, nb 1
  //   (11, 1): MC 0 (wrong); NB: class 0's Gaussian N(0.5, 0.5) makes 11 implausible, class 1
  //            has only its prior: 1 (right).                        mc 2, nb 2
  //   (0.5, 0): MC tie 2-2 -> smallest index 0 (right); NB 0 (right). mc 3, nb 3
  //   (10.5, 1): MC 0 (wrong); NB 1 (right).                       mc 3, nb 4
  HoeffdingTreeClassifier tree;  // nba by default
  const std::vector<std::pair<double, ClassIndex>> stream = {{0, 0},  {1, 0},   {10, 1},
                                                             {11, 1}, {0.5, 0}, {10.5, 1}};
  for (const auto& [v, y] : stream) tree.LearnOne(Dense({v}), y);
  EXPECT_EQ(tree.root()->mc_correct, 3);
  EXPECT_EQ(tree.root()->nb_correct, 4);
  // NB was right more often, so NBA answers with NB: class 1 near 10, although the majority
  // class (3 of 5) is 0.
  EXPECT_GT(Predict(tree, Dense({10.2}))[1], 0.99);
}

// Naive Bayes as its definition reads, one term at a time (the leaf code computes it with
// fewer tests): the log prior, then for every present feature and every class the Gaussian log
// density (numeric; skipped without variance) or log P(value | class) (nominal; skipped when
// 0), then normalised. A class without weight gets probability 0.
std::vector<double> ReferenceNaiveBayes(const Node& leaf, const FeatureVector& x) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  const std::size_t classes = leaf.stats.size();
  const double total = leaf.TotalWeight();
  std::vector<double> log_joint(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    log_joint[c] = leaf.stats[c] > 0 ? std::log(leaf.stats[c] / total) : kNegInf;
  }
  for (std::size_t k = 0; k < x.size(); ++k) {
    if (x.index(k) >= leaf.observers.size()) continue;
    const tree_internal::Observer& obs = leaf.observers[x.index(k)];
    const double v = x.value(k);
    for (std::size_t c = 0; c < classes; ++c) {
      if (log_joint[c] == kNegInf) continue;
      if (obs.kind == tree_internal::ObserverKind::kNumeric && c < obs.numeric.size()) {
        const tree_internal::GaussianStats& g = obs.numeric[c];
        if (g.log_norm == kNegInf) continue;
        const double lp = (v - g.mean) * (v - g.mean) * g.neg_half_inv_var + g.log_norm;
        if (lp > kNegInf) log_joint[c] += lp;
      } else if (obs.kind == tree_internal::ObserverKind::kNominal) {
        const auto it =
            std::find_if(obs.nominal.begin(), obs.nominal.end(),
                         [v](const tree_internal::NominalValue& n) { return n.value == v; });
        const double class_total =
            c < obs.nominal_class_totals.size() ? obs.nominal_class_totals[c] : 0.0;
        if (it == obs.nominal.end() || class_total <= 0) continue;
        const double p = (c < it->weights.size() ? it->weights[c] : 0.0) / class_total;
        if (p > 0) log_joint[c] += std::log(p);
      }
    }
  }
  const double max = *std::max_element(log_joint.begin(), log_joint.end());
  std::vector<double> p(classes);
  double sum = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    p[c] = log_joint[c] > kNegInf ? std::exp(log_joint[c] - max) : 0.0;
    sum += p[c];
  }
  for (double& q : p) q /= sum;
  return p;
}

bool SameBits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// A leaf that learned part of MixedStream: classes 0..2 from many examples, class 3 from one
// (its Gaussians have no variance), and class 4 known with zero weight, as a leaf created by a
// split can be.
std::unique_ptr<Node> MixedLeaf(const HoeffdingTreeOptions& o) {
  auto leaf = tree_internal::NewLeaf({0, 0, 0, 0, 0}, 0, nullptr);
  MixedStream stream(5, 0, 1 << 30);
  std::vector<double> scratch;
  FeatureVector x;
  double w = 0;
  for (int i = 0; i < 400; ++i) {
    const ClassIndex y = stream.Next(&x, &w);
    if (y == 3 && leaf->stats[3] > 0) continue;
    tree_internal::LeafLearn(leaf.get(), x, y, w, o, true, std::nullopt, &scratch);
  }
  return leaf;
}

TEST(HoeffdingTreeTest, NaiveBayesEqualsItsTermByTermDefinitionBitForBit) {
  HoeffdingTreeOptions o;
  o.nominal_attributes = MixedStream::NominalFeatures();
  const std::unique_ptr<Node> leaf = MixedLeaf(o);
  ASSERT_EQ(leaf->stats.size(), 5u);
  ASSERT_GT(leaf->stats[3], 0);
  ASSERT_EQ(leaf->stats[4], 0);

  std::vector<FeatureVector> queries(200);
  MixedStream stream(6, 0, 1 << 30);
  double w = 0;
  for (FeatureVector& q : queries) stream.Next(&q, &w);
  queries.emplace_back();                // every feature missing: the prior alone
  queries.emplace_back().Add(0, 1e200);  // (x - mean)^2 overflows: -inf terms skipped
  queries.emplace_back().Add(4, 1234);   // a nominal value never seen
  queries.emplace_back().Add(40, 1.0);   // a feature the leaf has no observer for
  for (const FeatureVector& q : queries) {
    const std::vector<double> want = ReferenceNaiveBayes(*leaf, q);
    // The buffer may be longer than the leaf's classes (the model knows more): same values,
    // zeros beyond.
    std::vector<double> got(7, -1.0);
    tree_internal::NaiveBayes(*leaf, q, got);
    for (std::size_t c = 0; c < want.size(); ++c) {
      EXPECT_TRUE(SameBits(got[c], want[c]))
          << "class " << c << ": " << got[c] << " vs " << want[c];
    }
    EXPECT_EQ(got[5], 0.0);
    EXPECT_EQ(got[6], 0.0);
    EXPECT_EQ(tree_internal::NaiveBayesChoice(*leaf, got), ArgMax(std::span<const double>(want)));
  }
}

// LeafLearn told naive Bayes' choice (as the adaptive tree's error tracking knows it) leaves
// the leaf exactly as LeafLearn evaluating naive Bayes itself.
TEST(HoeffdingTreeTest, LeafLearnWithAKnownNaiveBayesChoiceLearnsTheSame) {
  HoeffdingTreeOptions o;
  o.nominal_attributes = MixedStream::NominalFeatures();
  const std::unique_ptr<Node> known = MixedLeaf(o);
  const std::unique_ptr<Node> computed = tree_internal::CloneNode(*known);
  MixedStream stream(7, 0, 1 << 30);
  std::vector<double> scratch, nb(6);
  FeatureVector x;
  double w = 0;
  for (int i = 0; i < 300; ++i) {
    const ClassIndex y = stream.Next(&x, &w);
    tree_internal::NaiveBayes(*known, x, nb);
    tree_internal::LeafLearn(known.get(), x, y, w, o, true,
                             tree_internal::NaiveBayesChoice(*known, nb), &scratch);
    tree_internal::LeafLearn(computed.get(), x, y, w, o, true, std::nullopt, &scratch);
  }
  EXPECT_EQ(known->nb_correct, computed->nb_correct);
  EXPECT_EQ(known->mc_correct, computed->mc_correct);
  const auto bytes = [](const Node& n) {
    std::ostringstream out;
    {
      cereal::PortableBinaryOutputArchive archive(out);
      tree_internal::SaveNode(archive, n);
    }
    return out.str();
  };
  EXPECT_EQ(bytes(*known), bytes(*computed));
}

// Regression guard recorded with the implementation of 2026-11-23, before naive Bayes' loop
// and the split scoring were reworked for speed without changing a result: the same stream
// must still give exactly these trees. Small grace period and a loose delta, so that the tree
// splits often on both kinds of attributes, with each leaf prediction.
TEST(HoeffdingTreeTest, GoldenMixedStream) {
  struct Golden {
    LeafPrediction leaf_prediction;
    SplitCriterion criterion;
    int right;
    std::size_t nodes;
    std::size_t depth;
  };
  for (const Golden& g :
       {Golden{LeafPrediction::kMajorityClass, SplitCriterion::kInfoGain, 7122, 61, 2},
        Golden{LeafPrediction::kNaiveBayes, SplitCriterion::kGini, 8492, 76, 3},
        Golden{LeafPrediction::kNaiveBayesAdaptive, SplitCriterion::kInfoGain, 9317, 61, 2}}) {
    HoeffdingTreeOptions o;
    o.leaf_prediction = g.leaf_prediction;
    o.split_criterion = g.criterion;
    o.grace_period = 50;
    o.delta = 1e-3;
    o.nominal_attributes = MixedStream::NominalFeatures();
    HoeffdingTreeClassifier tree(o);
    EXPECT_EQ(RightPredictionsOnMixedStream(&tree, 8, 12000), g.right);
    EXPECT_EQ(tree.Stats().nodes, g.nodes);
    EXPECT_EQ(tree.Stats().depth, g.depth);
  }
}

TEST(HoeffdingTreeTest, ClassesAppearingMidStreamAndWeights) {
  HoeffdingTreeOptions o;
  o.leaf_prediction = LeafPrediction::kMajorityClass;
  HoeffdingTreeClassifier tree(o);
  EXPECT_TRUE(Predict(tree, Dense({1})).empty());
  tree.LearnOne(Dense({1}), 0);
  tree.LearnOne(Dense({2}), 1, 3.0);
  EXPECT_EQ(tree.NumClasses(), 2u);
  std::vector<double> p = Predict(tree, Dense({1}));
  EXPECT_DOUBLE_EQ(p[0], 0.25);
  EXPECT_DOUBLE_EQ(p[1], 0.75);
  tree.LearnOne(Dense({3}), 4);
  EXPECT_EQ(tree.NumClasses(), 5u);
  p = Predict(tree, Dense({1}));
  ASSERT_EQ(p.size(), 5u);
  EXPECT_DOUBLE_EQ(p[0] + p[1] + p[2] + p[3] + p[4], 1.0);
  EXPECT_DOUBLE_EQ(p[2], 0.0);
  EXPECT_DOUBLE_EQ(p[4], 0.2);
}

// River deactivates (and so wipes) a leaf whose majority class holds > max_share_to_split;
// Riffle keeps it active with its observers and splits it once the mix changes.
TEST(HoeffdingTreeTest, NearlyPureLeafKeepsItsStatisticsAndSplitsLater) {
  HoeffdingTreeOptions o;
  o.grace_period = 100;
  HoeffdingTreeClassifier tree(o);
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(0, 10);
  // 2000 examples, 0.5% of class 1 (x > 9.95 only).
  for (int i = 0; i < 2000; ++i) {
    const double v = u(rng);
    tree.LearnOne(Dense({v, u(rng)}), i % 200 == 0 ? 1 : 0);
  }
  ASSERT_TRUE(tree.root()->is_leaf());
  EXPECT_TRUE(tree.root()->active);
  ASSERT_GE(tree.root()->observers.size(), 2u);
  EXPECT_EQ(tree.root()->observers[0].kind, tree_internal::ObserverKind::kNumeric);
  EXPECT_DOUBLE_EQ(tree.root()->observers[0].numeric[0].n + tree.root()->observers[0].numeric[1].n,
                   2000);
  // Now class 1 becomes common for x0 > 5: the leaf splits on x0.
  for (int i = 0; i < 2000; ++i) {
    const double v = u(rng);
    tree.LearnOne(Dense({v, u(rng)}), v > 5 ? 1 : 0);
  }
  ASSERT_FALSE(tree.root()->is_leaf());
  EXPECT_EQ(tree.root()->feature, 0u);
}

// --- Missing values and nominal attributes -------------------------------------------------

TEST(HoeffdingTreeTest, MissingFeaturesAreSkippedAndRoutedToTheMostCommonChild) {
  HoeffdingTreeClassifier tree;
  ThresholdStream stream(19);
  FeatureVector x;
  ClassIndex y;
  for (int i = 0; i < 1000; ++i) {
    stream.Next(&x, &y);
    tree.LearnOne(x, y);
  }
  ASSERT_FALSE(tree.root()->is_leaf());
  // Without feature 0 the example goes where most weight went; learning it does not crash and
  // does not touch the (absent) feature's observers.
  FeatureVector partial;
  partial.Add(1, 3.0);
  partial.Add(2, 4.0);
  const std::vector<double> p = Predict(tree, partial);
  EXPECT_NEAR(p[0] + p[1], 1.0, 1e-12);
  const std::size_t common = tree_internal::MostCommonChild(*tree.root());
  const double before = tree.root()->children[common]->TotalWeight();
  tree.LearnOne(partial, 1);
  EXPECT_EQ(tree.root()->children[common]->TotalWeight(), before + 1);
}

TEST(HoeffdingTreeTest, NominalAttributeMultiwayAndBinarySplits) {
  for (bool binary : {false, true}) {
    HoeffdingTreeOptions o;
    ASSERT_TRUE(o.Set("nominal_attributes", "0").ok());
    o.binary_split = binary;
    o.grace_period = 50;
    HoeffdingTreeClassifier tree(o);
    std::mt19937 rng(23);
    for (int i = 0; i < 2000; ++i) {
      const double v = static_cast<double>(rng() % 3);
      const double noise = static_cast<double>(rng() % 1000) / 100.0;
      tree.LearnOne(Dense({v, noise}), v == 1 ? 1 : 0);
    }
    ASSERT_FALSE(tree.root()->is_leaf()) << binary;
    EXPECT_EQ(tree.root()->feature, 0u);
    if (binary) {
      EXPECT_EQ(tree.root()->split_kind, tree_internal::SplitKind::kNominalBinary);
      EXPECT_EQ(tree.root()->threshold, 1.0);
    } else {
      EXPECT_EQ(tree.root()->split_kind, tree_internal::SplitKind::kNominalMultiway);
      EXPECT_EQ(tree.root()->children.size(), 3u);
    }
    EXPECT_GT(Predict(tree, Dense({1, 5}))[1], 0.9);
    EXPECT_GT(Predict(tree, Dense({2, 5}))[0], 0.9);
    // An unseen category: predicted through the most common branch; learned as a new branch
    // of a multiway split.
    const std::vector<double> p = Predict(tree, Dense({7, 5}));
    EXPECT_NEAR(p[0] + p[1], 1.0, 1e-12);
    tree.LearnOne(Dense({7, 5}), 1);
    if (!binary) {
      EXPECT_EQ(tree.root()->children.size(), 4u);
    }
  }
}

// --- Options, registry, introspection -------------------------------------------------------

TEST(HoeffdingTreeOptionsTest, SetAndValidate) {
  HoeffdingTreeOptions o;
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.grace_period, 200u);
  EXPECT_EQ(o.delta, 1e-7);
  EXPECT_EQ(o.tau, 0.05);
  EXPECT_EQ(o.leaf_prediction, LeafPrediction::kNaiveBayesAdaptive);
  EXPECT_FALSE(o.max_depth.has_value());
  ASSERT_TRUE(o.Set("nominal_attributes", " 7, 3,3 ").ok());
  EXPECT_EQ(o.nominal_attributes, (std::vector<FeatureIndex>{3, 7}));
  EXPECT_TRUE(o.IsNominal(7));
  EXPECT_FALSE(o.IsNominal(4));
  ASSERT_TRUE(o.Set("split_criterion", "gini").ok());
  ASSERT_TRUE(o.Set("leaf_prediction", "mc").ok());
  ASSERT_TRUE(o.Set("max_depth", "5").ok());
  EXPECT_EQ(o.DepthLimit(), 5u);
  ASSERT_TRUE(o.Set("max_depth", "none").ok());
  EXPECT_EQ(o.DepthLimit(), kMaxTreeDepth);
  ASSERT_TRUE(o.Set("binary_split", "true").ok());
  EXPECT_FALSE(o.Set("split_criterion", "entropy").ok());
  EXPECT_FALSE(o.Set("nominal_attributes", "1,x").ok());
  EXPECT_FALSE(o.Set("nominal_attributes", "1,").ok());
  const absl::Status unknown = o.Set("gracePeriod", "1");
  EXPECT_NE(unknown.message().find("gracePeriod"), std::string::npos);
  o.delta = 1.0;
  EXPECT_FALSE(o.Validate().ok());
  o.delta = 1e-7;
  o.grace_period = 0;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(HoeffdingTreeTest, RegisteredAsHoeffdingTree) {
  const std::vector<std::string> kinds = LearnerKinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "hoeffding_tree"), kinds.end());
  absl::StatusOr<std::unique_ptr<Classifier>> model =
      CreateClassifier("hoeffding_tree", {{"grace_period", "50"}, {"leaf_prediction", "nb"}});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Kind(), "hoeffding_tree");
  EXPECT_FALSE(CreateClassifier("hoeffding_tree", {{"tau", "-1"}}).ok());
}

TEST(HoeffdingTreeTest, DumpsJsonAndDot) {
  HoeffdingTreeClassifier tree;
  ThresholdStream stream(29);
  FeatureVector x;
  ClassIndex y;
  for (int i = 0; i < 1000; ++i) {
    stream.Next(&x, &y);
    tree.LearnOne(x, y);
  }
  const TreeStats s = tree.Stats();
  EXPECT_EQ(s.nodes, s.branches + s.leaves);
  EXPECT_GE(s.depth, 1u);
  EXPECT_EQ(s.memory_bytes, tree.MemoryBytes());
  const std::vector<std::string> names = {"alpha", "beta", "gamma"};
  const std::string json = tree.ToJson(names);
  EXPECT_EQ(json.rfind("{\"kind\": \"hoeffding_tree\"", 0), 0u);
  EXPECT_NE(json.find("\"feature\": \"alpha\""), std::string::npos);
  EXPECT_NE(json.find("\"type\": \"leaf\""), std::string::npos);
  const std::string dot = tree.ToDot();
  EXPECT_EQ(dot.rfind("digraph tree {", 0), 0u);
  EXPECT_NE(dot.find("n0 -> n1"), std::string::npos);
  EXPECT_NE(dot.find("f0"), std::string::npos);
}

// --- Save / load -----------------------------------------------------------------------------

TEST(HoeffdingTreeTest, SaveLoadRoundTripMidStreamIsBitIdentical) {
  for (const char* prediction : {"nba", "nb", "mc"}) {
    HoeffdingTreeOptions o;
    ASSERT_TRUE(o.Set("leaf_prediction", prediction).ok());
    ASSERT_TRUE(o.Set("nominal_attributes", "3").ok());
    o.grace_period = 100;
    HoeffdingTreeClassifier tree(o);
    std::mt19937 rng(31);
    std::uniform_real_distribution<double> u(0, 10);
    const auto example = [&](FeatureVector* x) {
      x->Clear();
      const double x0 = u(rng);
      x->Add(0, x0);
      x->Add(1, u(rng));
      if (rng() % 10 != 0) x->Add(2, u(rng));  // sometimes missing
      const double x3 = static_cast<double>(rng() % 4);
      x->Add(3, x3);
      // From the values, not x->value(3): without feature 2, feature 3 is entry 2.
      return static_cast<ClassIndex>((x0 > 4) + (x3 == 2));
    };
    FeatureVector x;
    for (int i = 0; i < 5000; ++i) {
      const ClassIndex y = example(&x);
      tree.LearnOne(x, y, 1.0 + (i % 3));
    }
    absl::StatusOr<std::unique_ptr<Classifier>> restored = CreateEmptyClassifier("hoeffding_tree");
    ASSERT_TRUE(restored.ok());
    LoadFromString(SaveToString(tree), restored->get());
    std::unique_ptr<Classifier> clone = tree.Clone();
    EXPECT_EQ(SaveToString(**restored), SaveToString(tree));
    for (int i = 0; i < 5000; ++i) {
      const ClassIndex y = example(&x);
      const std::vector<double> expected = Predict(tree, x);
      ASSERT_EQ(Predict(**restored, x), expected) << prediction << " row " << i;
      ASSERT_EQ(Predict(*clone, x), expected);
      tree.LearnOne(x, y);
      (*restored)->LearnOne(x, y);
      clone->LearnOne(x, y);
    }
    EXPECT_EQ(SaveToString(**restored), SaveToString(tree));
    EXPECT_GT(tree.Stats().branches, 0u);
  }
}

TEST(HoeffdingTreeTest, CorruptedStateFailsCleanly) {
  HoeffdingTreeOptions o;
  o.grace_period = 50;
  ASSERT_TRUE(o.Set("nominal_attributes", "2").ok());
  HoeffdingTreeClassifier tree(o);
  std::mt19937 rng(37);
  for (int i = 0; i < 2000; ++i) {
    const double a = static_cast<double>(rng() % 1000) / 100;
    tree.LearnOne(Dense({a, static_cast<double>(rng() % 7), static_cast<double>(rng() % 3)}),
                  a > 5);
  }
  const std::string good = SaveToString(tree);
  const std::string reference = SaveToString(HoeffdingTreeClassifier(o));
  // Every truncation throws.
  for (std::size_t len = 0; len < good.size(); len += 1 + good.size() / 400) {
    HoeffdingTreeClassifier victim(o);
    EXPECT_THROW(LoadFromString(good.substr(0, len), &victim), cereal::Exception) << len;
    EXPECT_EQ(SaveToString(victim), reference);  // unchanged
  }
  // Flipped bytes either throw or load something usable; never crash or allocate wildly.
  std::mt19937 flip(41);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = good;
    bad[flip() % bad.size()] ^= static_cast<char>(1 + flip() % 255);
    HoeffdingTreeClassifier victim(o);
    try {
      LoadFromString(bad, &victim);
      std::vector<double> p;
      victim.PredictProbaOne(Dense({1, 2, 1}), &p);
    } catch (const cereal::Exception&) {
    }
  }
}

}  // namespace
}  // namespace riffle::learners
