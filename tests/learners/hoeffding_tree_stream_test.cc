// Quality floors of the Hoeffding trees on generated streams with concept drift
// (features/generators.h, so this file is part of features_test, which links the generators).
// Floors are the measured accuracies rounded down by about one point.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "features/generators.h"
#include "learners/hoeffding_adaptive_tree.h"
#include "learners/hoeffding_tree.h"

namespace riffle::learners {
namespace {

struct Accuracy {
  double overall = 0;
  double after_drift = 0;  // the last quarter of the stream
};

// Prequential accuracy of `model` on `rows` rows of generator `name` whose concept switches
// abruptly from `before` to `after` options at the middle row.
Accuracy RunStream(Classifier* model, const std::string& name, const OptionList& before,
                   const OptionList& after, int rows) {
  auto first = features::CreateGenerator(name, before, 1);
  auto second = features::CreateGenerator(name, after, 2);
  EXPECT_TRUE(first.ok() && second.ok());
  auto stream = features::CreateConceptDrift(
      *std::move(first), *std::move(second),
      {.position = static_cast<std::uint64_t>(rows / 2), .width = 0}, 3);
  EXPECT_TRUE(stream.ok()) << stream.status();
  const std::size_t columns = (*stream)->Columns().size();
  std::vector<double> row(columns);
  FeatureVector x;
  std::vector<double> proba;
  int correct = 0, correct_late = 0;
  for (int i = 0; i < rows; ++i) {
    (*stream)->Next(row);
    x.Clear();
    for (std::size_t j = 0; j + 1 < columns; ++j) x.Add(static_cast<FeatureIndex>(j), row[j]);
    const auto y = static_cast<ClassIndex>(row[columns - 1]);
    model->PredictProbaOne(x, &proba);
    const bool right = !proba.empty() && ArgMax(proba) == y;
    correct += right;
    if (i >= rows * 3 / 4) correct_late += right;
    model->LearnOne(x, y);
  }
  return {static_cast<double>(correct) / rows, static_cast<double>(correct_late) / (rows / 4)};
}

TEST(HoeffdingTreeStreamTest, AgrawalDriftHatRecoversWhereThePlainTreeDoesNot) {
  HoeffdingTreeClassifier ht;
  HoeffdingAdaptiveTreeClassifier hat;
  const OptionList before = {{"classification_function", "0"}};
  const OptionList after = {{"classification_function", "2"}};
  const Accuracy a = RunStream(&ht, "agrawal", before, after, 100000);
  const Accuracy b = RunStream(&hat, "agrawal", before, after, 100000);
  std::printf("agrawal 0->2: HT %.4f (late %.4f), HAT %.4f (late %.4f)\n", a.overall, a.after_drift,
              b.overall, b.after_drift);
  EXPECT_GT(b.after_drift, a.after_drift + 0.02);
  EXPECT_GT(b.after_drift, 0.85);
}

TEST(HoeffdingTreeStreamTest, SeaWithNoiseAndDrift) {
  HoeffdingTreeClassifier ht;
  HoeffdingAdaptiveTreeClassifier hat;
  const OptionList before = {{"variant", "0"}, {"noise", "0.1"}};
  const OptionList after = {{"variant", "3"}, {"noise", "0.1"}};
  const Accuracy a = RunStream(&ht, "sea", before, after, 100000);
  const Accuracy b = RunStream(&hat, "sea", before, after, 100000);
  std::printf("sea 0->3: HT %.4f (late %.4f), HAT %.4f (late %.4f)\n", a.overall, a.after_drift,
              b.overall, b.after_drift);
  // 10% label noise caps accuracy at 90%.
  EXPECT_GT(a.overall, 0.84);
  EXPECT_GT(b.after_drift, 0.85);
}

TEST(HoeffdingTreeStreamTest, LedTenClasses) {
  HoeffdingTreeClassifier ht;
  const OptionList led = {{"noise_percentage", "0.1"}, {"irrelevant_features", "true"}};
  const Accuracy a = RunStream(&ht, "led", led, led, 50000);
  std::printf("led: HT %.4f\n", a.overall);
  // 10% noise per segment: the Bayes rate is about 74%.
  EXPECT_GT(a.overall, 0.70);
}

}  // namespace
}  // namespace riffle::learners
