#include "learners/hoeffding_adaptive_tree.h"

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "learners/hoeffding_tree.h"
#include "learners/registry.h"
#include "tests/learners/tree_test_util.h"

namespace riffle::learners {
namespace {

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

// Three uniform features on [0, 10) and 5% label noise. Before `drift_at` class 1 iff
// x0 > 5; from then on class 1 iff x1 + x2 > 10 (a different attribute and shape).
class DriftingStream {
 public:
  DriftingStream(std::uint32_t seed, int drift_at) : rng_(seed), drift_at_(drift_at) {}
  ClassIndex Next(FeatureVector* x) {
    std::uniform_real_distribution<double> u(0.0, 10.0);
    x->Clear();
    for (FeatureIndex j = 0; j < 3; ++j) x->Add(j, u(rng_));
    ClassIndex y = t_++ < drift_at_ ? x->value(0) > 5 : x->value(1) + x->value(2) > 10;
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < 0.05) y = 1 - y;
    return y;
  }

 private:
  std::mt19937 rng_;
  int drift_at_;
  int t_ = 0;
};

// Prequential accuracy over rows [from, to).
double WindowAccuracy(Classifier* model, DriftingStream* stream, int rows, int from) {
  FeatureVector x;
  std::vector<double> p;
  int correct = 0;
  for (int i = 0; i < rows; ++i) {
    const ClassIndex y = stream->Next(&x);
    model->PredictProbaOne(x, &p);
    if (i >= from && !p.empty() && ArgMax(p) == y) ++correct;
    model->LearnOne(x, y);
  }
  return static_cast<double>(correct) / (rows - from);
}

TEST(HoeffdingAdaptiveTreeOptionsTest, DefaultsAndSet) {
  HoeffdingAdaptiveTreeOptions o;
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_TRUE(o.bootstrap_sampling);
  EXPECT_EQ(o.drift_window_threshold, 300u);
  EXPECT_EQ(o.switch_significance, 0.05);
  EXPECT_EQ(o.adwin.delta, 0.002);
  EXPECT_EQ(o.tree.grace_period, 200u);
  ASSERT_TRUE(o.Set("adwin_delta", "0.01").ok());
  EXPECT_EQ(o.adwin.delta, 0.01);
  ASSERT_TRUE(o.Set("seed", "42").ok());
  EXPECT_EQ(o.seed, 42u);
  ASSERT_TRUE(o.Set("grace_period", "100").ok());
  EXPECT_EQ(o.tree.grace_period, 100u);
  ASSERT_TRUE(o.Set("bootstrap_sampling", "false").ok());
  const absl::Status unknown = o.Set("bogus", "1");
  EXPECT_NE(unknown.message().find("hoeffding_adaptive_tree"), std::string::npos);
  o.switch_significance = 1.5;
  EXPECT_FALSE(o.Validate().ok());
  absl::StatusOr<std::unique_ptr<Classifier>> model =
      CreateClassifier("hoeffding_adaptive_tree", {{"seed", "3"}, {"grace_period", "50"}});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Kind(), "hoeffding_adaptive_tree");
}

TEST(HoeffdingAdaptiveTreeTest, LearnsAStationaryConcept) {
  HoeffdingAdaptiveTreeClassifier hat;
  DriftingStream stream(1, 1 << 30);
  EXPECT_GT(WindowAccuracy(&hat, &stream, 5000, 2000), 0.9);
  EXPECT_GE(hat.Stats().branches, 1u);
}

// After an abrupt change of concept, HAT detects the rise in error, grows alternates and swaps
// them in; the plain Hoeffding tree keeps its obsolete splits.
TEST(HoeffdingAdaptiveTreeTest, RecoversAfterDriftWhereThePlainTreeDoesNot) {
  HoeffdingAdaptiveTreeClassifier hat;
  HoeffdingTreeClassifier ht;
  DriftingStream a(2, 10000), b(2, 10000);
  // 10,000 rows of the first concept, then 10,000 of the second; score the last 4,000.
  const double hat_accuracy = WindowAccuracy(&hat, &a, 20000, 16000);
  const double ht_accuracy = WindowAccuracy(&ht, &b, 20000, 16000);
  EXPECT_GT(hat_accuracy, 0.85);
  EXPECT_GT(hat_accuracy, ht_accuracy + 0.03);
  EXPECT_GT(hat.n_alternate_trees(), 0u);
  EXPECT_GT(hat.n_switch_alternate_trees(), 0u);
}

// Regression guard recorded with the implementation of 2026-11-23, before the tree remembered
// leaf predictions within one LearnOne (LeafVerdict): the same stream must still give exactly
// these trees. The stream drifts, so alternates are started, swapped in and pruned; nominal
// values keep appearing, features go missing and a class appears mid-stream.
TEST(HoeffdingAdaptiveTreeTest, GoldenMixedStream) {
  struct Golden {
    LeafPrediction leaf_prediction;
    int right;
    std::size_t nodes;
    std::uint64_t alternates;
    std::uint64_t switches;
    std::uint64_t pruned;
  };
  for (const Golden& g : {Golden{LeafPrediction::kMajorityClass, 7131, 84, 2, 1, 1},
                          Golden{LeafPrediction::kNaiveBayes, 9146, 100, 6, 4, 2},
                          Golden{LeafPrediction::kNaiveBayesAdaptive, 10184, 100, 5, 4, 1}}) {
    HoeffdingAdaptiveTreeOptions o;
    o.tree.leaf_prediction = g.leaf_prediction;
    o.tree.grace_period = 50;
    o.tree.delta = 1e-3;
    o.tree.nominal_attributes = MixedStream::NominalFeatures();
    o.drift_window_threshold = 100;
    o.seed = 3;
    HoeffdingAdaptiveTreeClassifier hat(o);
    EXPECT_EQ(RightPredictionsOnMixedStream(&hat, 8, 12000), g.right);
    EXPECT_EQ(hat.Stats().nodes, g.nodes);
    EXPECT_EQ(hat.n_alternate_trees(), g.alternates);
    EXPECT_EQ(hat.n_switch_alternate_trees(), g.switches);
    EXPECT_EQ(hat.n_pruned_alternate_trees(), g.pruned);
  }
}

TEST(HoeffdingAdaptiveTreeTest, DeterministicForASeed) {
  const auto run = [](std::uint64_t seed) {
    HoeffdingAdaptiveTreeOptions o;
    o.seed = seed;
    HoeffdingAdaptiveTreeClassifier hat(o);
    DriftingStream stream(3, 3000);
    WindowAccuracy(&hat, &stream, 6000, 0);
    return SaveToString(hat);
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(HoeffdingAdaptiveTreeTest, SaveLoadRoundTripMidStreamIsBitIdentical) {
  HoeffdingAdaptiveTreeOptions o;
  o.seed = 11;
  o.tree.grace_period = 100;
  HoeffdingAdaptiveTreeClassifier hat(o);
  DriftingStream stream(4, 6000);
  FeatureVector x;
  // Stop right after the drift, while alternates are growing.
  for (int i = 0; i < 7000; ++i) hat.LearnOne(x, stream.Next(&x));
  absl::StatusOr<std::unique_ptr<Classifier>> restored =
      CreateEmptyClassifier("hoeffding_adaptive_tree");
  ASSERT_TRUE(restored.ok());
  LoadFromString(SaveToString(hat), restored->get());
  std::unique_ptr<Classifier> clone = hat.Clone();
  EXPECT_EQ(SaveToString(**restored), SaveToString(hat));
  for (int i = 0; i < 6000; ++i) {
    const ClassIndex y = stream.Next(&x);
    const std::vector<double> expected = Predict(hat, x);
    ASSERT_EQ(Predict(**restored, x), expected) << "row " << i;
    ASSERT_EQ(Predict(*clone, x), expected);
    hat.LearnOne(x, y);
    (*restored)->LearnOne(x, y);
    clone->LearnOne(x, y);
  }
  // The bootstrap RNG continued identically too.
  EXPECT_EQ(SaveToString(**restored), SaveToString(hat));
  EXPECT_EQ(SaveToString(*clone), SaveToString(hat));
}

TEST(HoeffdingAdaptiveTreeTest, CorruptedStateFailsCleanly) {
  HoeffdingAdaptiveTreeOptions o;
  o.tree.grace_period = 50;
  HoeffdingAdaptiveTreeClassifier hat(o);
  DriftingStream stream(5, 1500);
  FeatureVector x;
  for (int i = 0; i < 3000; ++i) hat.LearnOne(x, stream.Next(&x));
  const std::string good = SaveToString(hat);
  const std::string reference = SaveToString(HoeffdingAdaptiveTreeClassifier(o));
  for (std::size_t len = 0; len < good.size(); len += 1 + good.size() / 300) {
    HoeffdingAdaptiveTreeClassifier victim(o);
    EXPECT_THROW(LoadFromString(good.substr(0, len), &victim), cereal::Exception) << len;
    EXPECT_EQ(SaveToString(victim), reference);
  }
  std::mt19937 flip(43);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = good;
    bad[flip() % bad.size()] ^= static_cast<char>(1 + flip() % 255);
    HoeffdingAdaptiveTreeClassifier victim(o);
    try {
      LoadFromString(bad, &victim);
      std::vector<double> p;
      stream.Next(&x);
      victim.PredictProbaOne(x, &p);
      victim.LearnOne(x, 0);
    } catch (const cereal::Exception&) {
    }
  }
}

TEST(HoeffdingAdaptiveTreeTest, DumpShowsAlternates) {
  HoeffdingAdaptiveTreeClassifier hat;
  DriftingStream stream(6, 8000);
  FeatureVector x;
  std::size_t most_alternates = 0;
  std::string json_with_alternate;
  for (int i = 0; i < 12000; ++i) {
    hat.LearnOne(x, stream.Next(&x));
    if (i % 100 == 0 && hat.Stats().alternate_trees > most_alternates) {
      most_alternates = hat.Stats().alternate_trees;
      json_with_alternate = hat.ToJson();
    }
  }
  ASSERT_GT(most_alternates, 0u);
  EXPECT_NE(json_with_alternate.find("\"alternate\": {"), std::string::npos);
  EXPECT_NE(json_with_alternate.find("\"error_rate\": "), std::string::npos);
  EXPECT_EQ(hat.ToDot().rfind("digraph tree {", 0), 0u);
}

}  // namespace
}  // namespace riffle::learners
