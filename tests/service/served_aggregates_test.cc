// Windowed aggregates in a served model: declared in a spec, computed for gRPC predictions and
// the Kafka path before the model sees an event, cached with the event for its delayed label,
// and kept in checkpoints. The aggregates themselves are tested in
// tests/features/window_aggregates_test.cc; here, what the service does with them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../checkpoints/checkpoint_testing.h"
#include "absl/strings/str_cat.h"
#include "service/model_definition.h"
#include "service/serve_config.h"
#include "service/served_model.h"
#include "tests/service/service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeClockEnv;
using ::testing::HasSubstr;

constexpr std::int64_t kSecond = 1'000'000;
// 2023-11-14T00:00:00Z: a multiple of a day, so a pane boundary for every window below.
constexpr std::int64_t kT0 = 19'675 * 86'400 * kSecond;

// Payments by card: how many in the last 10 minutes (sliding, 1-minute hops), the mean amount
// in the current hour (tumbling), and the merchant's fraud rate among labels learned in the
// last day.
constexpr char kSpec[] = R"(
learner: logreg
learner_options: {lr: 0.1}
classes: ["0", "1"]
features:
  aggregates:
    - {name: card_n_10m, function: COUNT, window_seconds: 600, sliding: true, hop_seconds: 60}
    - {name: card_amount_mean_1h, function: MEAN, field: amount, window_seconds: 3600}
    - {name: merchant_fraud_1d, function: LABEL_RATE, key_field: merchant, label_class: "1",
       window_seconds: 86400}
)";

riffle::v1::ModelSpec Spec(const char* yaml = kSpec) {
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(yaml, "model.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

std::unique_ptr<ServedModel> MakeModel(checkpoints::Env* env, const std::string& dir,
                                       const riffle::v1::ModelSpec& spec = Spec()) {
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  EXPECT_TRUE(def.ok()) << def.status();
  ServedModel::Options options;
  options.env = env;
  options.checkpoint_dir = dir;
  options.schedule.every_events = 0;
  options.schedule.every_seconds = 0;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("m", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

struct Payment {
  std::string id;
  std::string card;
  std::int64_t time;
  double amount;
  std::string merchant;
  std::vector<features::NamedFeature> features = {};
  InstanceView View() {
    features = {{"amount", features::FeatureValue::Number(amount)},
                {"merchant", features::FeatureValue::Text(merchant)}};
    InstanceView v{id, features};
    v.key = card;
    v.time_micros = time;
    return v;
  }
};

void Predict(ServedModel* model, Payment p) {
  InstanceView v = p.View();
  PredictBatchResult r;
  ASSERT_TRUE(model->Predict({&v, 1}, &r).ok());
}

// The model's state, from a checkpoint written now.
checkpoints::ModelState Snapshot(ServedModel* model) {
  absl::StatusOr<checkpoints::WrittenCheckpoint> written = model->CheckpointNow();
  EXPECT_TRUE(written.ok()) << written.status();
  absl::StatusOr<checkpoints::LoadedCheckpoint> loaded = model->store()->LoadNewestValid();
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<checkpoints::ModelState> state = checkpoints::ParseModelState(loaded->payload);
  EXPECT_TRUE(state.ok()) << state.status();
  return *std::move(state);
}

// The numeric features each pending prediction was made on (aggregates included).
std::map<std::string, std::map<std::string, double>> CachedFeatures(ServedModel* model) {
  std::map<std::string, std::map<std::string, double>> out;
  const checkpoints::ModelState state = Snapshot(model);
  std::vector<features::NamedFeature> views;
  for (const checkpoints::PendingLabel& p : state.pending_labels) {
    p.features.Views(&views);
    for (const features::NamedFeature& f : views) {
      if (f.value.kind == features::FeatureValue::Kind::kNumber) {
        out[p.id][std::string(f.name)] = f.value.number;
      }
    }
  }
  return out;
}

TEST(ServedAggregatesTest, PredictionsGetTheAggregatesOfEarlierEventsOnly) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.path());
  Predict(model.get(), {"p1", "card-a", kT0, 10, "shop"});
  Predict(model.get(), {"p2", "card-a", kT0 + 30 * kSecond, 30, "shop"});
  Predict(model.get(), {"p3", "card-b", kT0 + 40 * kSecond, 99, "shop"});
  Predict(model.get(), {"p4", "card-a", kT0 + 70 * kSecond, 5, "shop"});
  // At 10:30, the window is the ten 1-minute panes from 01:00: p1 and p2 (minute 0) have left
  // it, p4 (minute 1) has not. The hour is the same.
  Predict(model.get(), {"p5", "card-a", kT0 + 630 * kSecond, 1, "shop"});
  const auto cached = CachedFeatures(model.get());
  ASSERT_EQ(cached.size(), 5u);
  EXPECT_EQ(cached.at("p1").at("card_n_10m"), 0);
  EXPECT_FALSE(cached.at("p1").contains("card_amount_mean_1h"));  // no amount seen yet
  EXPECT_EQ(cached.at("p2").at("card_n_10m"), 1);
  EXPECT_EQ(cached.at("p2").at("card_amount_mean_1h"), 10);
  EXPECT_EQ(cached.at("p3").at("card_n_10m"), 0);  // another card
  EXPECT_EQ(cached.at("p4").at("card_n_10m"), 2);
  EXPECT_EQ(cached.at("p4").at("card_amount_mean_1h"), 20);
  EXPECT_EQ(cached.at("p5").at("card_n_10m"), 1);  // p4 only (minute 0, still in the window)
  EXPECT_EQ(cached.at("p5").at("card_amount_mean_1h"), 15);
  // No label learned yet: no fraud rate.
  EXPECT_FALSE(cached.at("p5").contains("merchant_fraud_1d"));
  const ModelMetricsReport m = model->Metrics();
  ASSERT_TRUE(m.aggregates.has_value());
  EXPECT_GE(m.aggregates->keys, 2u);  // card-a, card-b (and the merchant, if tracked yet)
}

TEST(ServedAggregatesTest, ADelayedLabelLearnsThePredictedAggregatesAndFeedsTheLabelRate) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.path());
  Predict(model.get(), {"p1", "card-a", kT0, 10, "shop"});
  Predict(model.get(), {"p2", "card-b", kT0 + kSecond, 20, "shop"});
  // The labels come later, by id: p1 was fraud, p2 was not.
  std::vector<ExampleView> labels = {{{"p1", {}}, "1", 1.0, true}, {{"p2", {}}, "0", 1.0, true}};
  LearnBatchResult r;
  ASSERT_TRUE(model->Learn(labels, false, &r).ok());
  ASSERT_EQ(r.learned, 2u);
  // The learned features held the aggregates computed at prediction time: their names are in
  // the model's vocabulary.
  EXPECT_TRUE(Snapshot(model.get()).pipeline->features().Find("card_n_10m").has_value());
  Predict(model.get(), {"p3", "card-c", kT0 + 2 * kSecond, 5, "shop"});
  Predict(model.get(), {"p4", "card-c", kT0 + 3 * kSecond, 5, "kiosk"});
  const auto cached = CachedFeatures(model.get());
  EXPECT_EQ(cached.at("p3").at("merchant_fraud_1d"), 0.5);
  EXPECT_FALSE(cached.at("p4").contains("merchant_fraud_1d"));  // no label for the kiosk
}

TEST(ServedAggregatesTest, AnEventNamingAnAggregateIsRejectedAndNothingIsRecorded) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.path());
  Payment ok{"p1", "card-a", kT0, 10, "shop"};
  InstanceView good = ok.View();
  std::vector<features::NamedFeature> bad_features = {
      {"card_n_10m", features::FeatureValue::Number(7)}};
  InstanceView bad{"p2", bad_features};
  bad.key = "card-a";
  std::vector<InstanceView> batch = {good, bad};
  PredictBatchResult r;
  absl::Status s = model->Predict(batch, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("instances[1].features[\"card_n_10m\"]"));
  // The valid instance of the rejected batch was not recorded either.
  EXPECT_EQ(model->Metrics().aggregates->keys, 0u);
  // A text where the mean needs a number.
  std::vector<features::NamedFeature> text_amount = {
      {"amount", features::FeatureValue::Text("ten")}};
  InstanceView text{"p3", text_amount};
  s = model->Predict({&text, 1}, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("features[\"amount\"]"));
}

TEST(ServedAggregatesTest, TheKafkaPathUsesTheRecordsKeysAndTimes) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.path());
  std::vector<features::NamedFeature> f = {{"amount", features::FeatureValue::Number(4)},
                                           {"merchant", features::FeatureValue::Text("shop")}};
  std::vector<StreamRecordView> records(4);
  records[0] = {StreamRecordView::Kind::kEvent, "e1", f, "1", "events/0", 1, "card-a", kT0};
  records[1] = {StreamRecordView::Kind::kEvent,
                "e2",
                f,
                std::nullopt,
                "events/0",
                2,
                "card-a",
                kT0 + 60 * kSecond};
  // Late by more than the allowed lateness (0): no aggregates, counted.
  records[2] = {StreamRecordView::Kind::kEvent,
                "e3",
                f,
                std::nullopt,
                "events/0",
                3,
                "card-a",
                kT0 + 10 * kSecond};
  records[3] = {StreamRecordView::Kind::kEvent,
                "e4",
                f,
                std::nullopt,
                "events/0",
                4,
                "card-a",
                kT0 + 120 * kSecond};
  StreamBatchResult out;
  model->ApplyStream(records, &out);
  for (const StreamRecordResult& r : out.records) {
    EXPECT_EQ(r.outcome, StreamRecordResult::Outcome::kPredicted) << r.error;
  }
  const auto cached = CachedFeatures(model.get());
  EXPECT_EQ(cached.at("e2").at("card_n_10m"), 1);
  // e1 was labeled fraud and learned at once: e2 sees the merchant's rate.
  EXPECT_EQ(cached.at("e2").at("merchant_fraud_1d"), 1.0);
  EXPECT_FALSE(cached.at("e3").contains("card_n_10m"));
  EXPECT_EQ(cached.at("e4").at("card_n_10m"), 2);  // e1, e2; not the late e3
  EXPECT_EQ(model->Metrics().aggregates->late_events, 1u);
}

TEST(ServedAggregatesTest, ARestoredModelContinuesTheAggregatesOfTheCheckpoint) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.File("m"));
  auto reference = MakeModel(&env, dir.File("ref"));
  for (int i = 0; i < 20; ++i) {
    const Payment p{"x" + std::to_string(i), i % 2 == 0 ? "card-a" : "card-b",
                    kT0 + i * 20 * kSecond, static_cast<double>(i), "shop"};
    Predict(model.get(), p);
    Predict(reference.get(), p);
  }
  ASSERT_TRUE(model->CheckpointNow().ok());
  const std::uint64_t generation = model->Info().generation;
  // More events after the checkpoint, then back to it: the aggregates are those of the
  // checkpoint, and continue as the reference's do.
  Predict(model.get(), {"later", "card-a", kT0 + 500 * kSecond, 1000, "shop"});
  ASSERT_TRUE(model->Restore(generation).ok());
  Predict(model.get(), {"next", "card-a", kT0 + 400 * kSecond, 7, "shop"});
  Predict(reference.get(), {"next", "card-a", kT0 + 400 * kSecond, 7, "shop"});
  const auto restored = CachedFeatures(model.get());
  const auto expected = CachedFeatures(reference.get());
  EXPECT_EQ(restored.at("next"), expected.at("next"));
  EXPECT_EQ(restored.at("next").at("card_n_10m"), 10);
  EXPECT_EQ(model->Metrics().aggregates, reference->Metrics().aggregates);
}

// Predictions record their events under the model's reader lock, in parallel with each other,
// with learning and with checkpoints (run under TSan too): every event is counted exactly once.
TEST(ServedAggregatesTest, ConcurrentPredictionsLearningAndCheckpointsCountEveryEventOnce) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.path());
  constexpr int kPredictors = 4;
  constexpr int kEventsEach = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kPredictors; ++t) {
    threads.emplace_back([&, t] {
      const std::string card = "card-" + std::to_string(t);
      for (int i = 0; i < kEventsEach; ++i) {
        Payment p{"", card, kT0 + i * kSecond, static_cast<double>(i), "shop"};
        InstanceView v = p.View();
        std::vector<InstanceView> batch(2, v);  // two events of the card at the same time
        PredictBatchResult r;
        EXPECT_TRUE(model->Predict(batch, &r).ok());
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) {
      Payment p{"", "learner-card", kT0 + i * kSecond, 1, "shop"};
      InstanceView v = p.View();
      std::vector<ExampleView> examples = {{v, i % 2 == 0 ? "0" : "1", 1.0, false}};
      LearnBatchResult r;
      EXPECT_TRUE(model->Learn(examples, false, &r).ok());
    }
  });
  threads.emplace_back([&] {
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(model->CheckpointNow().ok());
  });
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kPredictors; ++t) {
    Predict(model.get(), {"last-" + std::to_string(t), "card-" + std::to_string(t),
                          kT0 + kEventsEach * kSecond, 1, "shop"});
  }
  const auto cached = CachedFeatures(model.get());
  for (int t = 0; t < kPredictors; ++t) {
    // Every event of the card's 10 minutes: all 2 * 300 of them (within 300 s).
    EXPECT_EQ(cached.at("last-" + std::to_string(t)).at("card_n_10m"), 2 * kEventsEach);
  }
  EXPECT_EQ(model->Info().labeled, 50u);
}

TEST(ServedAggregatesTest, AggregatesAreFeaturesEvenWhenUndeclaredOnesAreIgnored) {
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(Spec(R"(
learner: logreg
features:
  undeclared: IGNORE
  declared: [{name: card_n_10m, kind: NUMERIC, scaling: NO_SCALING}]
  aggregates:
    - {name: card_n_10m, function: COUNT, window_seconds: 600, sliding: true}
    - {name: card_max_1h, function: MAX, field: amount, window_seconds: 3600}
)"));
  ASSERT_TRUE(def.ok()) << def.status();
  ASSERT_EQ(def->pipeline.declared.size(), 2u);
  EXPECT_EQ(def->pipeline.declared[0].scaling, features::FeatureDef::Scaling::kNone);
  EXPECT_EQ(def->pipeline.declared[1].name, "card_max_1h");
  EXPECT_EQ(def->pipeline.declared[1].scaling, features::FeatureDef::Scaling::kStandard);
  ASSERT_EQ(def->aggregates.aggregates.size(), 2u);
  EXPECT_EQ(def->aggregates.aggregates[0].hop_seconds, 10u);  // 600 / 60
  EXPECT_EQ(def->aggregates.aggregates[1].hop_seconds, 0u);   // tumbling
}

TEST(ServedAggregatesTest, SpecErrorsNameTheField) {
  const auto error = [](const char* aggregates) {
    absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(
        absl::StrCat("learner: logreg\nfeatures:\n  aggregates: ", aggregates, "\n"), "model.yaml");
    if (!spec.ok()) return std::string(spec.status().message());
    return std::string(DefinitionFromSpec(*spec).status().message());
  };
  EXPECT_THAT(error("[{name: n, window_seconds: 60}]"),
              HasSubstr("spec.features.aggregates[0].function: required"));
  EXPECT_THAT(error("[{name: n, function: COUNT, window_seconds: 60, hop_seconds: 10}]"),
              HasSubstr("spec.features.aggregates[0].hop_seconds: only for sliding windows"));
  EXPECT_THAT(error("[{name: n, function: COUNT, window_seconds: 0}]"),
              HasSubstr("spec.features.aggregates[0].window_seconds"));
  EXPECT_THAT(error("[{name: n, function: COUNT, window_seconds: 60, sliding: true, "
                    "hop_seconds: 7}]"),
              HasSubstr("spec.features.aggregates[0].hop_seconds"));
  EXPECT_THAT(error("[{name: n, function: SUM, window_seconds: 60}]"),
              HasSubstr("spec.features.aggregates[0].field"));
  EXPECT_THAT(error("[{name: r, function: LABEL_RATE, label_class: '1', window_seconds: 60}]"),
              HasSubstr("spec.features.aggregates[0].key_field"));
  EXPECT_THAT(error("[{name: n, function: COUNT, window_seconds: 60}, "
                    "{name: n, function: COUNT, window_seconds: 120}]"),
              HasSubstr("spec.features.aggregates[1].name"));
  EXPECT_THAT(error("[{name: n, function: COUNT, window_seconds: 60}]\n  aggregate_max_keys: "
                    "1000000000000"),
              HasSubstr("spec.features.aggregate_max_keys"));
}

}  // namespace
}  // namespace riffle::service
