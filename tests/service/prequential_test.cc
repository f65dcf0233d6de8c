#include "service/prequential.h"

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "checkpoints/model_checkpoint.h"
#include "features/csv_reader.h"
#include "learners/registry.h"

namespace riffle::service {
namespace {

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table ReadTable(const std::string& file) {
  absl::StatusOr<std::unique_ptr<features::CsvReader>> reader =
      features::CsvReader::Open(std::string(RIFFLE_TEST_DATA_DIR) + "/" + file);
  EXPECT_TRUE(reader.ok());
  Table t;
  std::vector<std::string_view> fields;
  bool first = true;
  while (*(*reader)->Next(&fields)) {
    if (first) {
      t.header.assign(fields.begin(), fields.end());
      first = false;
    } else {
      t.rows.emplace_back(fields.begin(), fields.end());
    }
  }
  return t;
}

checkpoints::ModelState FreshState(const Table& t, const std::string& target,
                                   const learners::OptionList& options) {
  features::ColumnTypeInference inference(t.header.size());
  for (const auto& row : t.rows) {
    std::vector<std::string_view> views(row.begin(), row.end());
    inference.Observe(views);
  }
  features::TabularOptions table;
  table.target = target;
  checkpoints::ModelState state;
  state.name = "test";
  state.learner = *learners::CreateClassifier("logreg", options);
  state.schema = *features::TabularSchema::Create(t.header, table, inference);
  state.metrics = learners::PrequentialMetrics(learners::MetricsOptions{.window = 100});
  return state;
}

std::vector<double> Apply(PrequentialStep* step, checkpoints::ModelState* state,
                          const std::vector<std::string>& row) {
  std::vector<std::string_view> views(row.begin(), row.end());
  std::span<const double> p = step->Apply(state, views);
  return {p.begin(), p.end()};
}

// The whole model state (learner, scaler, schema with vocabularies, metrics, counters) survives
// a checkpoint round trip at any point of the stream: the restored model predicts bit for bit
// as the original and keeps learning to the same model.
class ModelStateRoundTripTest
    : public ::testing::TestWithParam<std::tuple<const char*, const char*, std::size_t>> {};

TEST_P(ModelStateRoundTripTest, RestoredModelContinuesBitIdentically) {
  const auto [file, target, cut] = GetParam();
  const Table t = ReadTable(file);
  ASSERT_LT(cut, t.rows.size());
  checkpoints::ModelState original =
      FreshState(t, target, {{"optimizer", "adam"}, {"l2", "0.001"}});
  PrequentialStep step;
  for (std::size_t i = 0; i < cut; ++i) Apply(&step, &original, t.rows[i]);

  const std::string payload = checkpoints::SerializeModelState(original, 123);
  absl::StatusOr<checkpoints::ModelState> restored = checkpoints::ParseModelState(payload);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->counters, original.counters);

  PrequentialStep restored_step;
  for (std::size_t i = cut; i < t.rows.size(); ++i) {
    ASSERT_EQ(Apply(&step, &original, t.rows[i]), Apply(&restored_step, &*restored, t.rows[i]))
        << "row " << i;
  }
  EXPECT_EQ(original.metrics.cumulative().Accuracy(), restored->metrics.cumulative().Accuracy());
  EXPECT_EQ(original.metrics.rolling().LogLoss(), restored->metrics.rolling().LogLoss());
  EXPECT_EQ(original.schema->features().names(), restored->schema->features().names());
  // And the final states serialize to the same bytes (creation time fixed).
  EXPECT_EQ(checkpoints::SerializeModelState(original, 7),
            checkpoints::SerializeModelState(*restored, 7));
}

INSTANTIATE_TEST_SUITE_P(
    Datasets, ModelStateRoundTripTest,
    ::testing::Values(std::make_tuple("weka-credit-g.csv", "class", std::size_t{1}),
                      std::make_tuple("weka-credit-g.csv", "class", std::size_t{517}),
                      std::make_tuple("weka-vote.csv", "Class", std::size_t{200}),
                      std::make_tuple("weka-segment-challenge.csv", "class", std::size_t{999}),
                      std::make_tuple("sklearn-iris.csv", "target", std::size_t{75})),
    [](const auto& info) {
      std::string name = std::get<0>(info.param);
      name = name.substr(0, name.find('.')) + "_at_" + std::to_string(std::get<2>(info.param));
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

// The metrics score the probabilities predicted before learning, the ones Apply returns
// (Apply updates them after learning, which does not read them): metrics fed those
// probabilities by hand end bit-identical to the state's.
TEST(PrequentialStepTest, MetricsScoreThePredictionMadeBeforeLearning) {
  for (const auto& [file, target] :
       {std::pair<const char*, const char*>{"weka-credit-g.csv", "class"},
        {"weka-segment-challenge.csv", "class"}}) {
    SCOPED_TRACE(file);
    const Table t = ReadTable(file);
    checkpoints::ModelState state = FreshState(t, target, {});
    learners::PrequentialMetrics by_hand(learners::MetricsOptions{.window = 100});
    PrequentialStep step;
    const std::size_t target_column = state.schema->target_column();
    for (const std::vector<std::string>& row : t.rows) {
      const std::vector<double> proba = Apply(&step, &state, row);
      const std::optional<std::uint32_t> y = state.schema->labels().Find(row[target_column]);
      ASSERT_TRUE(y.has_value());
      by_hand.Update(*y, proba);
    }
    EXPECT_EQ(by_hand.cumulative().Count(), t.rows.size());
    EXPECT_EQ(by_hand.cumulative().Accuracy(), state.metrics.cumulative().Accuracy());
    EXPECT_EQ(by_hand.cumulative().LogLoss(), state.metrics.cumulative().LogLoss());
    EXPECT_EQ(by_hand.rolling().MacroF1(), state.metrics.rolling().MacroF1());
    std::ostringstream want;
    std::ostringstream got;
    {
      cereal::PortableBinaryOutputArchive out(want);
      out(by_hand);
    }
    {
      cereal::PortableBinaryOutputArchive out(got);
      out(state.metrics);
    }
    EXPECT_EQ(got.str(), want.str());
  }
}

TEST(ModelStateTest, CloneIsIndependentAndEqual) {
  const Table t = ReadTable("weka-diabetes.csv");
  checkpoints::ModelState state = FreshState(t, "class", {});
  PrequentialStep step;
  for (std::size_t i = 0; i < 100; ++i) Apply(&step, &state, t.rows[i]);
  checkpoints::ModelState clone = state.Clone();
  EXPECT_EQ(checkpoints::SerializeModelState(state, 1), checkpoints::SerializeModelState(clone, 1));
  Apply(&step, &state, t.rows[100]);
  EXPECT_NE(checkpoints::SerializeModelState(state, 1), checkpoints::SerializeModelState(clone, 1));
  EXPECT_EQ(clone.counters.events, 100u);
}

TEST(ModelStateTest, EveryTruncationOfAPayloadIsDataLoss) {
  const Table t = ReadTable("sklearn-iris.csv");
  checkpoints::ModelState state = FreshState(t, "target", {});
  PrequentialStep step;
  for (std::size_t i = 0; i < 60; ++i) Apply(&step, &state, t.rows[i]);
  const std::string payload = checkpoints::SerializeModelState(state, 1);
  for (std::size_t cut = 0; cut < payload.size(); ++cut) {
    absl::StatusOr<checkpoints::ModelState> parsed =
        checkpoints::ParseModelState(std::string_view(payload).substr(0, cut));
    ASSERT_FALSE(parsed.ok()) << "cut at " << cut;
    ASSERT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << parsed.status();
  }
  std::string longer = payload + "x";
  EXPECT_EQ(checkpoints::ParseModelState(longer).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ModelStateTest, NewerPayloadVersionIsRefusedClearly) {
  const Table t = ReadTable("sklearn-iris.csv");
  checkpoints::ModelState state = FreshState(t, "target", {});
  std::string payload = checkpoints::SerializeModelState(state, 1);
  // The payload starts with cereal's portable-binary endianness byte, then the uint32 version.
  payload[1] = static_cast<char>(checkpoints::kCurrentModelPayload + 1);
  absl::StatusOr<checkpoints::ModelState> parsed = checkpoints::ParseModelState(payload);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(parsed.status().message().find("newer"), absl::string_view::npos);
}

}  // namespace
}  // namespace riffle::service
