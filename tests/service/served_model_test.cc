#include "service/served_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "../checkpoints/checkpoint_testing.h"
#include "service/model_definition.h"
#include "service/serve_config.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::SeparableStream;
using ::testing::HasSubstr;

std::unique_ptr<ServedModel> MakeModel(checkpoints::Env* env, const std::string& dir = "",
                                       const riffle::v1::ModelSpec& spec = LogregSpec(),
                                       CheckpointSchedule schedule = {}) {
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  EXPECT_TRUE(def.ok()) << def.status();
  ServedModel::Options options;
  options.env = env;
  options.checkpoint_dir = dir;
  options.schedule = schedule;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("m", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

// Learns n events of the stream, one request of `batch` examples at a time.
void LearnStream(ServedModel* model, SeparableStream* stream, int n, int batch = 10) {
  std::vector<std::vector<features::NamedFeature>> features(batch);
  std::vector<std::string> labels(batch);
  for (int done = 0; done < n; done += batch) {
    std::vector<ExampleView> examples;
    for (int i = 0; i < batch; ++i) {
      features[i] = stream->Next(&labels[i]);
      examples.push_back({{"", features[i]}, labels[i], 1.0, false});
    }
    LearnBatchResult result;
    ASSERT_TRUE(model->Learn(examples, false, &result).ok());
    ASSERT_EQ(result.learned, static_cast<std::uint64_t>(batch));
  }
}

double Accuracy(const ServedModel& model, std::uint64_t seed, int n) {
  SeparableStream stream(seed);
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    std::string label;
    std::vector<features::NamedFeature> f = stream.Next(&label);
    InstanceView instance{"", f};
    PredictBatchResult r;
    EXPECT_TRUE(model.Predict({&instance, 1}, &r).ok());
    if (r.predicted[0].has_value() && r.classes[*r.predicted[0]] == label) ++correct;
  }
  return static_cast<double>(correct) / n;
}

std::vector<double> Probabilities(const ServedModel& model, std::uint64_t seed, int n) {
  SeparableStream stream(seed);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    std::string label;
    std::vector<features::NamedFeature> f = stream.Next(&label);
    InstanceView instance{"", f};
    PredictBatchResult r;
    EXPECT_TRUE(model.Predict({&instance, 1}, &r).ok());
    out.insert(out.end(), r.probabilities.begin(), r.probabilities.end());
  }
  return out;
}

TEST(ServedModelTest, LearnsASeparableStream) {
  FakeClockEnv env;
  auto model = MakeModel(&env);
  SeparableStream stream(1);
  LearnStream(model.get(), &stream, 2000);
  EXPECT_GT(Accuracy(*model, 99, 1000), 0.95);
  const ModelInfo info = model->Info();
  EXPECT_EQ(info.labeled, 2000u);
  EXPECT_EQ(info.classes, (std::vector<std::string>{"0", "1"}));
  const ModelMetricsReport metrics = model->Metrics();
  EXPECT_EQ(metrics.cumulative.count, 2000u);
  EXPECT_GT(metrics.cumulative.accuracy, 0.9);
  EXPECT_TRUE(metrics.cumulative.roc_auc.has_value());
  EXPECT_EQ(metrics.rolling.count, 1000u);  // the default window
  EXPECT_EQ(metrics.learn_latency.count, 200u);
}

TEST(ServedModelTest, ANewModelPredictsWhatItsClassesAllow) {
  FakeClockEnv env;
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(1)}};
  InstanceView instance{"", f};
  PredictBatchResult r;
  // Classes fixed by the spec: an untrained binary model's prior, as River's (0.5 each).
  auto fixed = MakeModel(&env);
  ASSERT_TRUE(fixed->Predict({&instance, 1}, &r).ok());
  EXPECT_EQ(r.classes, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(r.predicted[0], 0u);
  EXPECT_EQ(r.probabilities, (std::vector<double>{0.5, 0.5}));
  // Classes from labels: no class yet, no prediction.
  riffle::v1::ModelSpec open = LogregSpec();
  open.clear_classes();
  auto model = MakeModel(&env, "", open);
  ASSERT_TRUE(model->Predict({&instance, 1}, &r).ok());
  EXPECT_TRUE(r.classes.empty());
  EXPECT_FALSE(r.predicted[0].has_value());
  EXPECT_TRUE(r.probabilities.empty());
  // One class seen: its probability only.
  ExampleView e{{"", f}, "yes", 1.0, false};
  LearnBatchResult lr;
  ASSERT_TRUE(model->Learn({&e, 1}, false, &lr).ok());
  ASSERT_TRUE(model->Predict({&instance, 1}, &r).ok());
  EXPECT_EQ(r.classes, (std::vector<std::string>{"yes"}));
  EXPECT_EQ(r.predicted[0], 0u);
  EXPECT_EQ(r.probabilities.size(), 1u);
}

TEST(ServedModelTest, AnInvalidBatchLearnsNothing) {
  FakeClockEnv env;
  auto model = MakeModel(&env);
  std::vector<features::NamedFeature> good = {{"x0", features::FeatureValue::Number(1)}};
  std::vector<features::NamedFeature> bad = {{"x0", features::FeatureValue::Number(NAN)}};
  std::vector<ExampleView> examples = {{{"", good}, "1", 1.0, false}, {{"", bad}, "0", 1.0, false}};
  LearnBatchResult r;
  absl::Status s = model->Learn(examples, false, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("examples[1].instance.features[\"x0\"]: NaN"));
  examples[1] = {{"", good}, "maybe", 1.0, false};
  s = model->Learn(examples, false, &r);
  EXPECT_THAT(s.message(), HasSubstr("examples[1].label: unknown class \"maybe\""));
  examples[1] = {{"", good}, "1", -2.0, false};
  EXPECT_THAT(model->Learn(examples, false, &r).message(), HasSubstr("examples[1].weight"));
  examples[1] = {{"", {}}, "1", 1.0, false};  // neither features nor an id
  EXPECT_THAT(model->Learn(examples, false, &r).message(),
              HasSubstr("examples[1].instance: give features, or the id"));
  EXPECT_EQ(model->Info().labeled, 0u);
  InstanceView instance{"", bad};
  PredictBatchResult p;
  EXPECT_THAT(model->Predict({&instance, 1}, &p).message(),
              HasSubstr("instances[0].features[\"x0\"]: NaN"));
}

TEST(ServedModelTest, LearnsByIdFromTheFeaturesSeenAtPrediction) {
  FakeClockEnv env;
  riffle::v1::ModelSpec spec = LogregSpec();
  spec.set_label_cache_ttl_seconds(60);
  auto model = MakeModel(&env, "", spec);
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(2)},
                                           {"city", features::FeatureValue::Text("oslo")}};
  std::vector<InstanceView> instances = {{"evt-1", f}, {"evt-2", f}};
  PredictBatchResult p;
  ASSERT_TRUE(model->Predict(instances, &p).ok());
  // The label for evt-1 arrives: learned from the cached features.
  std::vector<ExampleView> by_id = {{{"evt-1", {}}, "1", 1.0, true}};
  LearnBatchResult r;
  ASSERT_TRUE(model->Learn(by_id, false, &r).ok());
  EXPECT_EQ(r.learned, 1u);
  EXPECT_EQ(r.cache_misses, 0u);
  // A second label for the same id is a miss (the entry was taken).
  ASSERT_TRUE(model->Learn(by_id, false, &r).ok());
  EXPECT_EQ(r.learned, 0u);
  EXPECT_EQ(r.cache_misses, 1u);
  // evt-2 expires after the TTL.
  env.Advance(61'000'000);
  by_id[0].instance.id = "evt-2";
  ASSERT_TRUE(model->Learn(by_id, false, &r).ok());
  EXPECT_EQ(r.cache_misses, 1u);
  const ModelMetricsReport m = model->Metrics();
  EXPECT_EQ(m.label_cache.hits, 1u);
  EXPECT_EQ(m.label_cache.misses, 2u);
  EXPECT_EQ(m.label_cache.evictions, 1u);
  // The cached event's text feature was learned under its one-hot name.
  EXPECT_EQ(model->Info().labeled, 1u);
}

TEST(ServedModelTest, PredictionsAwaitingTheirLabelSurviveARestart) {
  ScopedTempDir dir;
  FakeClockEnv env;
  CheckpointSchedule schedule;
  schedule.every_events = 0;
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(2)},
                                           {"x1", features::FeatureValue::Number(-1)}};
  {
    auto model = MakeModel(&env, dir.path(), LogregSpec(), schedule);
    std::vector<InstanceView> instances = {{"evt-1", f}, {"evt-2", f}};
    PredictBatchResult p;
    ASSERT_TRUE(model->Predict(instances, &p).ok());
    ASSERT_TRUE(model->CheckpointNow().ok());
  }
  // A new process: the labels arrive after the restart and still find their events.
  checkpoints::CheckpointStoreOptions store_options;
  store_options.dir = dir.path();
  auto store = checkpoints::CheckpointStore::Open(&env, store_options);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<checkpoints::ModelState> state = checkpoints::ParseModelState(loaded->payload);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->pending_labels.size(), 2u);
  ServedModel::Options options;
  options.env = &env;
  auto restored = ServedModel::FromState(*std::move(state), options);
  ASSERT_TRUE(restored.ok()) << restored.status();
  std::vector<ExampleView> by_id = {{{"evt-1", {}}, "1", 1.0, true},
                                    {{"evt-2", {}}, "0", 1.0, true}};
  LearnBatchResult r;
  ASSERT_TRUE((*restored)->Learn(by_id, false, &r).ok());
  EXPECT_EQ(r.learned, 2u);
  EXPECT_EQ(r.cache_misses, 0u);
}

TEST(ServedModelTest, ApplyStreamPredictsLearnsAndTakesEveryOffset) {
  FakeClockEnv env;
  auto model = MakeModel(&env);
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(1)}};
  std::vector<StreamRecordView> records(5);
  records[0] = {StreamRecordView::Kind::kEvent, "a", f, "1", "events/0", 11};
  records[1] = {StreamRecordView::Kind::kEvent, "b", f, std::nullopt, "events/0", 12};
  records[2] = {StreamRecordView::Kind::kEvent, "c", f, "7", "events/0", 13};  // not a class
  records[3] = {StreamRecordView::Kind::kSkip, "", {}, std::nullopt, "events/0", 14};
  records[4] = {StreamRecordView::Kind::kLabel, "b", {}, "0", "labels/0", 6};
  StreamBatchResult out;
  model->ApplyStream(records, &out);
  ASSERT_EQ(out.records.size(), 5u);
  EXPECT_EQ(out.records[0].outcome, StreamRecordResult::Outcome::kPredicted);
  EXPECT_EQ(out.records[0].proba_count, 2u);
  EXPECT_EQ(out.records[1].outcome, StreamRecordResult::Outcome::kPredicted);
  EXPECT_EQ(out.records[2].outcome, StreamRecordResult::Outcome::kRejected);
  EXPECT_THAT(out.records[2].error.message(), HasSubstr("7"));
  EXPECT_EQ(out.records[3].outcome, StreamRecordResult::Outcome::kSkipped);
  EXPECT_EQ(out.records[4].outcome, StreamRecordResult::Outcome::kLabelJoined);
  EXPECT_EQ(out.classes, (std::vector<std::string>{"0", "1"}));
  const ModelInfo info = model->Info();
  EXPECT_EQ(info.labeled, 2u);  // "a" inline, "b" by its delayed label
  EXPECT_EQ(info.unlabeled, 1u);
  const std::map<std::string, std::int64_t> offsets = model->NextOffsets();
  EXPECT_EQ(offsets.at("events/0"), 14);
  EXPECT_EQ(offsets.at("labels/0"), 6);
  // A second label for "b" is a miss.
  records.assign(1, {StreamRecordView::Kind::kLabel, "b", {}, "0", "labels/0", 7});
  model->ApplyStream(records, &out);
  EXPECT_EQ(out.records[0].outcome, StreamRecordResult::Outcome::kLabelMissed);
  EXPECT_EQ(model->NextOffsets().at("labels/0"), 7);
}

TEST(ServedModelTest, CheckpointAndRestoreGiveBitIdenticalPredictions) {
  ScopedTempDir dir;
  FakeClockEnv env;
  auto model = MakeModel(&env, dir.File("m"));
  ASSERT_EQ(model->Info().generation, 1u);  // created durable
  SeparableStream stream(3);
  LearnStream(model.get(), &stream, 500);
  absl::StatusOr<checkpoints::WrittenCheckpoint> written = model->CheckpointNow();
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->generation, 2u);
  EXPECT_GT(written->size_bytes, 0u);
  const std::vector<double> at_checkpoint = Probabilities(*model, 7, 50);
  LearnStream(model.get(), &stream, 500);
  ASSERT_NE(Probabilities(*model, 7, 50), at_checkpoint);
  ASSERT_TRUE(model->Restore(2).ok());
  EXPECT_EQ(Probabilities(*model, 7, 50), at_checkpoint);
  EXPECT_EQ(model->Info().labeled, 500u);
  // The restored state is written at once as the newest generation, so a restart serves it.
  EXPECT_EQ(model->Info().generation, 3u);
  absl::StatusOr<checkpoints::LoadedCheckpoint> newest = model->store()->LoadNewestValid();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->generation, 3u);
  EXPECT_EQ(checkpoints::ParseModelState(newest->payload)->counters.labeled, 500u);
  EXPECT_EQ(model->Restore(9).code(), absl::StatusCode::kNotFound);

  // A restored model keeps learning exactly like one that never stopped.
  auto reference = MakeModel(&env);
  SeparableStream replay(3);
  LearnStream(reference.get(), &replay, 500);
  SeparableStream after_a(11), after_b(11);
  LearnStream(model.get(), &after_a, 300);
  LearnStream(reference.get(), &after_b, 300);
  EXPECT_EQ(Probabilities(*model, 5, 50), Probabilities(*reference, 5, 50));
}

TEST(ServedModelTest, WritesCheckpointsEveryNEvents) {
  ScopedTempDir dir;
  FakeClockEnv env;
  CheckpointSchedule schedule;
  schedule.every_events = 100;
  schedule.every_seconds = 0;
  auto model = MakeModel(&env, dir.File("m"), LogregSpec(), schedule);
  SeparableStream stream(3);
  LearnStream(model.get(), &stream, 250);
  model->StopCheckpointing();
  absl::StatusOr<std::vector<checkpoints::CheckpointInfo>> list = model->ListCheckpoints();
  ASSERT_TRUE(list.ok());
  // Generation 1 at creation, then one submitted at 100 and one at 200 events (a submission
  // refused while the previous one is in flight is retried at the next batch).
  EXPECT_GE(list->size(), 2u);
  model->MaybeCheckpoint(env.NowMicros());
}

TEST(ServedModelTest, WritesCheckpointsEveryTSecondsWhenSomethingWasLearned) {
  ScopedTempDir dir;
  FakeClockEnv env;
  CheckpointSchedule schedule;
  schedule.every_events = 0;
  schedule.every_seconds = 30;
  auto model = MakeModel(&env, dir.File("m"), LogregSpec(), schedule);
  auto generations = [&] {
    model->StopCheckpointing();
    return model->ListCheckpoints()->size();
  };
  env.Advance(31'000'000);
  model->MaybeCheckpoint(env.NowMicros());
  EXPECT_EQ(generations(), 1u);  // nothing learned: nothing to write
  SeparableStream stream(3);
  LearnStream(model.get(), &stream, 10);
  model->MaybeCheckpoint(env.NowMicros());
  EXPECT_EQ(generations(), 2u);
  LearnStream(model.get(), &stream, 10);
  env.Advance(10'000'000);
  model->MaybeCheckpoint(env.NowMicros());
  EXPECT_EQ(generations(), 2u);  // not due yet
  env.Advance(21'000'000);
  model->MaybeCheckpoint(env.NowMicros());
  EXPECT_EQ(generations(), 3u);
  EXPECT_TRUE(model->CheckpointIfDirty().ok());
  EXPECT_EQ(generations(), 3u);  // nothing new since
}

// A write that fails (full disk) leaves the model dirty: the next trigger and the shutdown
// checkpoint write it again, so nothing learned is lost.
TEST(ServedModelTest, AFailedWriteIsRetriedAndNotForgotten) {
  ScopedTempDir dir;
  checkpoints::testing::FaultInjectionEnv env;
  CheckpointSchedule schedule;
  schedule.every_events = 10;
  schedule.every_seconds = 0;
  auto model = MakeModel(&env, dir.File("m"), LogregSpec(), schedule);
  env.fail_rename = true;
  SeparableStream stream(3);
  LearnStream(model.get(), &stream, 20);
  model->StopCheckpointing();
  EXPECT_EQ(model->ListCheckpoints()->size(), 1u);  // only the first, at creation
  EXPECT_FALSE(model->CheckpointNow().ok());
  env.fail_rename = false;
  ASSERT_TRUE(model->CheckpointIfDirty().ok());
  absl::StatusOr<checkpoints::LoadedCheckpoint> newest = model->store()->LoadNewestValid();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(checkpoints::ParseModelState(newest->payload)->counters.labeled, 20u);
}

// A manual checkpoint racing with learning that triggers background checkpoints: the newest
// file is always the newest state handed over (never an older snapshot written last).
TEST(ServedModelTest, TheNewestCheckpointIsTheNewestState) {
  ScopedTempDir dir;
  FakeClockEnv env;
  CheckpointSchedule schedule;
  schedule.every_events = 20;
  schedule.every_seconds = 0;
  auto model = MakeModel(&env, dir.File("m"), LogregSpec(), schedule);
  std::atomic<bool> done{false};
  std::thread learner([&] {
    SeparableStream stream(9);
    LearnStream(model.get(), &stream, 2000);
    done = true;
  });
  while (!done.load()) ASSERT_TRUE(model->CheckpointNow().ok());
  learner.join();
  ASSERT_TRUE(model->CheckpointIfDirty().ok());
  absl::StatusOr<checkpoints::LoadedCheckpoint> newest = model->store()->LoadNewestValid();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(checkpoints::ParseModelState(newest->payload)->counters.labeled, 2000u);
}

TEST(ServedModelTest, ClassesAreBounded) {
  FakeClockEnv env;
  riffle::v1::ModelSpec open = LogregSpec();
  open.clear_classes();
  auto model = MakeModel(&env, "", open);
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(1)}};
  std::vector<std::string> labels;
  for (std::size_t k = 0; k <= ServedModel::kMaxClasses; ++k) labels.push_back(std::to_string(k));
  std::vector<ExampleView> examples;
  for (const std::string& label : labels) examples.push_back({{"", f}, label, 1.0, false});
  LearnBatchResult r;
  absl::Status s = model->Learn(examples, false, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("a model has at most 1000"));
  EXPECT_EQ(model->Info().labeled, 0u);
}

TEST(ServedModelTest, ABatchWhoseDeadlinePassedIsNotLearned) {
  FakeClockEnv env;
  auto model = MakeModel(&env);
  std::vector<features::NamedFeature> f = {{"x0", features::FeatureValue::Number(1)}};
  ExampleView e{{"", f}, "1", 1.0, false};
  LearnBatchResult r;
  absl::Status s =
      model->Learn({&e, 1}, false, &r, std::chrono::system_clock::now() - std::chrono::seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(model->Info().labeled, 0u);
}

// Concurrent predictions and learning (DESIGN.md: one writer per model, consistent reads).
// Each predicting thread sends batches that hold the same instance twice: if a learn batch
// were applied in the middle of a prediction batch, the two copies would get different
// probabilities. Run under TSan by the suite, this also proves the absence of data races.
TEST(ServedModelTest, ConcurrentPredictAndLearnSeeAConsistentModel) {
  FakeClockEnv env;
  auto model = MakeModel(&env);
  constexpr int kPredictors = 4;
  constexpr int kLearnBatches = 300;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> predictions{0};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kPredictors; ++t) {
    threads.emplace_back([&, t] {
      SeparableStream stream(100 + t);
      while (!done.load()) {
        std::string label;
        std::vector<features::NamedFeature> f = stream.Next(&label);
        std::vector<InstanceView> batch(8, InstanceView{"", f});
        PredictBatchResult r;
        if (!model->Predict(batch, &r).ok()) {
          inconsistent++;
          continue;
        }
        const std::size_t k = r.classes.size();
        for (std::size_t i = 1; i < batch.size(); ++i) {
          for (std::size_t j = 0; j < k; ++j) {
            if (r.probabilities[i * k + j] != r.probabilities[j]) inconsistent++;
          }
        }
        if (r.predicted[0].has_value()) {
          const double sum = r.probabilities[0] + r.probabilities[1];
          if (std::abs(sum - 1.0) > 1e-9) inconsistent++;
        }
        predictions += batch.size();
      }
    });
  }
  SeparableStream stream(1);
  for (int b = 0; b < kLearnBatches; ++b) LearnStream(model.get(), &stream, 10);
  // On a loaded machine the learner may finish before a predictor ran at all.
  while (predictions.load() == 0) std::this_thread::yield();
  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_GT(predictions.load(), 0u);
  EXPECT_EQ(model->Info().labeled, static_cast<std::uint64_t>(kLearnBatches * 10));
  EXPECT_EQ(model->Info().unlabeled, predictions.load());
}

// A checkpoint's snapshot holds the model shared: a prediction made while it is being copied
// completes at once, even with a learner queued for the model meanwhile (RwMutex prefers
// writers, so a learner waiting on the model's lock would hold predictions back). The snapshot
// waits inside until the prediction is done; if predictions waited for the snapshot, it would
// give up after 20 s and the test would fail instead of hanging.
class SnapshotConcurrencyTest : public ::testing::TestWithParam<bool> {};

TEST_P(SnapshotConcurrencyTest, PredictionsDoNotWaitForASnapshot) {
  const bool aggregates = GetParam();
  ScopedTempDir dir;
  FakeClockEnv env;
  riffle::v1::ModelSpec spec = LogregSpec();
  if (aggregates) {
    absl::StatusOr<riffle::v1::ModelSpec> parsed = ParseModelSpecYaml(R"(
learner: logreg
classes: ["0", "1"]
features:
  aggregates:
    - {name: n_10m, function: COUNT, window_seconds: 600, sliding: true, hop_seconds: 60}
)",
                                                                      "model.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    spec = *parsed;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;
  bool in_snapshot = false;
  bool predicted = false;
  bool snapshot_saw_prediction = false;
  ServedModel::Options options;
  options.env = &env;
  options.checkpoint_dir = dir.File("m");
  options.schedule.every_events = 0;
  options.schedule.every_seconds = 0;
  options.on_snapshot = [&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!armed) return;
    armed = false;
    in_snapshot = true;
    cv.notify_all();
    snapshot_saw_prediction =
        cv.wait_for(lock, std::chrono::seconds(20), [&] { return predicted; });
  };
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  ASSERT_TRUE(def.ok()) << def.status();
  absl::StatusOr<std::unique_ptr<ServedModel>> created =
      ServedModel::Create("m", *std::move(def), 1, options);
  ASSERT_TRUE(created.ok()) << created.status();
  ServedModel& model = **created;
  SeparableStream stream(5);
  LearnStream(&model, &stream, 100);

  {
    std::lock_guard<std::mutex> lock(mu);
    armed = true;
  }
  absl::Status checkpointed;
  std::thread checkpointer([&] { checkpointed = model.CheckpointNow().status(); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_snapshot; });
  }
  // A learner queues up behind the snapshot (it needs the model exclusively).
  std::thread learner([&] {
    SeparableStream learner_stream(6);
    LearnStream(&model, &learner_stream, 10);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string label;
  std::vector<features::NamedFeature> f = stream.Next(&label);
  InstanceView instance{"event-1", f};
  instance.key = "card-1";
  instance.time_micros = env.NowMicros();
  PredictBatchResult result;
  const absl::Status status = model.Predict({&instance, 1}, &result);
  {
    std::lock_guard<std::mutex> lock(mu);
    predicted = true;
    cv.notify_all();
  }
  checkpointer.join();
  learner.join();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(snapshot_saw_prediction);
  EXPECT_TRUE(checkpointed.ok()) << checkpointed;
  EXPECT_EQ(model.Info().labeled, 110u);
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutAggregates, SnapshotConcurrencyTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Aggregates" : "Plain";
                         });

}  // namespace
}  // namespace riffle::service
