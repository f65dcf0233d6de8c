#include "service/kafka_pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../checkpoints/checkpoint_testing.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "fake_kafka.h"
#include "service/model_definition.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::FakeKafkaCluster;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::SeparableStream;
using ::testing::HasSubstr;

std::shared_ptr<ServedModel> MakeModel(checkpoints::Env* env, const std::string& dir = "",
                                       CheckpointSchedule schedule = {}) {
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(LogregSpec());
  EXPECT_TRUE(def.ok()) << def.status();
  ServedModel::Options options;
  options.env = env;
  options.checkpoint_dir = dir;
  options.schedule = schedule;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("m", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::shared_ptr<ServedModel>(*std::move(model));
}

// The newest checkpoint of `dir` as a model (what a restart serves).
std::shared_ptr<ServedModel> RestoreModel(checkpoints::Env* env, const std::string& dir) {
  checkpoints::CheckpointStoreOptions store_options;
  store_options.dir = dir;
  auto store = checkpoints::CheckpointStore::Open(env, store_options);
  EXPECT_TRUE(store.ok()) << store.status();
  absl::StatusOr<checkpoints::ModelState> state = absl::NotFoundError("none");
  auto loaded = (*store)->LoadNewestValid([&state](std::string_view payload) {
    state = checkpoints::ParseModelState(payload);
    return state.status();
  });
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  state->generation = loaded->generation;
  ServedModel::Options options;
  options.env = env;
  options.checkpoint_dir = dir;
  auto model = ServedModel::FromState(*std::move(state), options);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::shared_ptr<ServedModel>(*std::move(model));
}

KafkaClientFactory FakeFactory(FakeKafkaCluster* cluster) {
  KafkaClientFactory f;
  f.new_consumer =
      [cluster](const KafkaConsumerOptions& o) -> absl::StatusOr<std::unique_ptr<KafkaConsumer>> {
    return cluster->NewConsumer(o.properties.at("group.id"));
  };
  f.new_producer =
      [cluster](const KafkaProducerOptions&) -> absl::StatusOr<std::unique_ptr<KafkaProducer>> {
    return cluster->NewProducer();
  };
  return f;
}

KafkaModelOptions ModelOptions() {
  KafkaModelOptions o;
  o.model = "m";
  o.events_topics = {"events"};
  o.labels_topic = "labels";
  o.predictions_topic = "predictions";
  return o;
}

KafkaOptions FastOptions() {
  KafkaOptions o;
  o.batch_size = 64;
  o.backoff_min_seconds = 0.01;
  o.backoff_max_seconds = 0.05;
  o.delivery_wait_seconds = 5;
  return o;
}

// Waits (up to 20 s) until `done` holds.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

std::string EventJson(const std::string& id, const std::vector<features::NamedFeature>& f,
                      const std::string& label) {
  std::string out = absl::StrFormat("{\"id\":\"%s\"", id);
  for (const features::NamedFeature& x : f) {
    absl::StrAppendFormat(&out, ",\"%s\":%.17g", std::string(x.name), x.value.number);
  }
  if (!label.empty()) absl::StrAppendFormat(&out, ",\"label\":\"%s\"", label);
  return out + "}";
}

// The same event as a CSV record of CsvModelOptions' header: id,x0,x1,x2,label (an empty
// label field: unlabeled).
std::string EventCsv(const std::string& id, const std::vector<features::NamedFeature>& f,
                     const std::string& label) {
  std::string out = id;
  for (const features::NamedFeature& x : f) absl::StrAppendFormat(&out, ",%.17g", x.value.number);
  return out + "," + label;
}

// ModelOptions() with CSV records: events of EventCsv's header, labels "id,label".
KafkaModelOptions CsvModelOptions() {
  KafkaModelOptions o = ModelOptions();
  o.format = KafkaFormat::kCsv;
  o.csv.columns = {"id", "x0", "x1", "x2", "label"};
  return o;
}

// Appends n events of the stream to topic "events" (labeled inline unless `unlabeled`), as
// JSON objects or CSV records.
void AppendEvents(FakeKafkaCluster* cluster, SeparableStream* stream, int first, int n,
                  bool unlabeled = false, std::vector<std::string>* labels = nullptr,
                  KafkaFormat format = KafkaFormat::kJson) {
  for (int i = first; i < first + n; ++i) {
    std::string label;
    std::vector<features::NamedFeature> f = stream->Next(&label);
    if (labels != nullptr) labels->push_back(label);
    const std::string id = absl::StrFormat("e%d", i);
    if (unlabeled) label.clear();
    cluster->Append("events", 0, id,
                    format == KafkaFormat::kJson ? EventJson(id, f, label) : EventCsv(id, f, label),
                    {}, 1'700'000'000'000 + i);
  }
}

// The "probabilities" of a prediction record.
std::string Probabilities(const std::string& record) {
  const std::size_t begin = record.find("\"probabilities\":");
  return begin == std::string::npos ? "<absent>"
                                    : record.substr(begin, record.find('}', begin) - begin);
}

std::string Header(const KafkaRecord& r, std::string_view name) {
  for (const KafkaHeader& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

class KafkaPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.CreateTopic("events", 1);
    cluster_.CreateTopic("labels", 1);
    cluster_.CreateTopic("predictions", 1);
    cluster_.CreateTopic("events.dlq", 1);
    cluster_.CreateTopic("flagged", 1);
  }
  std::size_t Count(std::string_view topic) { return cluster_.Records(topic, 0).size(); }

  FakeClockEnv env_;
  FakeKafkaCluster cluster_;
};

TEST_F(KafkaPipelineTest, PredictsEveryEventAndLearnsTheLabeledOnes) {
  SeparableStream stream(1);
  AppendEvents(&cluster_, &stream, 0, 500);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 500; }));
  pipeline.Stop();
  const std::vector<KafkaRecord> predictions = cluster_.Records("predictions", 0);
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(predictions[i].key, absl::StrFormat("e%d", i));
    EXPECT_THAT(predictions[i].value, HasSubstr(absl::StrFormat("\"id\":\"e%d\"", i)));
    EXPECT_THAT(predictions[i].value, HasSubstr("\"model\":\"m\""));
    EXPECT_THAT(predictions[i].value, HasSubstr("\"probabilities\":{\"0\":"));
  }
  const ModelInfo info = model->Info();
  EXPECT_EQ(info.labeled, 500u);
  EXPECT_EQ(model->NextOffsets().at("events/0"), 500);
  EXPECT_GT(model->Metrics().cumulative.accuracy, 0.85);
  const KafkaPipelineStats stats = pipeline.stats();
  EXPECT_EQ(stats.events, 500u);
  EXPECT_EQ(stats.predictions, 500u);
  EXPECT_EQ(stats.dead_letters, 0u);
  EXPECT_EQ(Count("events.dlq"), 0u);
}

TEST_F(KafkaPipelineTest, AFullProducerQueueLosesNoDeliveryReport) {
  // A queue of 3 records: nearly every Produce first waits for deliveries. The reports
  // collected while waiting must be served like the others, or the predictions would never
  // be counted and a checkpoint would wait for them forever.
  ScopedTempDir dir;
  CheckpointSchedule schedule;
  schedule.every_events = 0;
  schedule.every_seconds = 0;
  cluster_.SetProducerQueueLimit(3);
  SeparableStream stream(4);
  AppendEvents(&cluster_, &stream, 0, 300);
  cluster_.Append("events", 0, "bad", "not json");  // a dead letter among them
  std::shared_ptr<ServedModel> model = MakeModel(&env_, dir.path(), schedule);
  KafkaOptions options = FastOptions();
  options.delivery_wait_seconds = 2;
  KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 300 && Count("events.dlq") == 1; }));
  ASSERT_TRUE(WaitFor([&] {
    const KafkaPipelineStats st = pipeline.stats();
    return st.predictions == 300 && st.dead_letters == 1;
  })) << pipeline.stats().predictions;
  // Every output delivered and accounted for: the checkpoint's barrier lets it through.
  EXPECT_TRUE(model->CheckpointNow().ok());
  pipeline.Stop();
  EXPECT_EQ(model->NextOffsets().at("events/0"), 301);
}

TEST_F(KafkaPipelineTest, BadRecordsGoToTheDeadLetterTopicAndTheStreamGoesOn) {
  cluster_.Append("events", 0, "a", R"({"id":"a","x0":1,"label":"1"})");
  cluster_.Append("events", 0, "b", R"({"id":"b","x0":)");                // invalid JSON
  cluster_.Append("events", 0, "c", R"({"id":"c","x0":1,"label":"7"})");  // unknown class
  cluster_.Append("events", 0, std::nullopt, R"({"x0":2})");              // no id
  cluster_.Append("events", 0, "d", R"({"id":"d","x0":-1,"label":"0"})");
  cluster_.Append("labels", 0, "z", R"({"id":"z"})");  // a label without label
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("events.dlq") == 4 && Count("predictions") == 2; }));
  pipeline.Stop();
  const std::vector<KafkaRecord> dlq = cluster_.Records("events.dlq", 0);
  std::map<std::string, const KafkaRecord*> by_offset;
  for (const KafkaRecord& r : dlq) {
    by_offset[Header(r, kDlqSourceTopicHeader) + "/" + Header(r, kDlqSourceOffsetHeader)] = &r;
  }
  ASSERT_EQ(by_offset.count("events/1"), 1u);
  EXPECT_EQ(Header(*by_offset["events/1"], kDlqErrorCodeHeader), "INVALID_JSON");
  EXPECT_EQ(by_offset["events/1"]->value, R"({"id":"b","x0":)");  // the original bytes
  EXPECT_EQ(Header(*by_offset["events/1"], kDlqModelHeader), "m");
  EXPECT_EQ(Header(*by_offset["events/1"], kDlqSourcePartitionHeader), "0");
  ASSERT_EQ(by_offset.count("events/2"), 1u);
  EXPECT_EQ(Header(*by_offset["events/2"], kDlqErrorCodeHeader), "INVALID_EVENT");
  EXPECT_THAT(Header(*by_offset["events/2"], kDlqErrorMessageHeader), HasSubstr("7"));
  ASSERT_EQ(by_offset.count("events/3"), 1u);
  EXPECT_EQ(Header(*by_offset["events/3"], kDlqErrorCodeHeader), "MISSING_ID");
  ASSERT_EQ(by_offset.count("labels/0"), 1u);
  EXPECT_EQ(Header(*by_offset["labels/0"], kDlqErrorCodeHeader), "MISSING_LABEL");
  EXPECT_EQ(model->Info().labeled, 2u);
  // Every record's offset is taken, dead-lettered or not: none is read again.
  EXPECT_EQ(model->NextOffsets().at("events/0"), 5);
  EXPECT_EQ(model->NextOffsets().at("labels/0"), 1);
  const KafkaPipelineStats stats = pipeline.stats();
  EXPECT_EQ(stats.dead_letters, 4u);
  EXPECT_EQ(stats.dead_letters_by_reason.at("INVALID_JSON"), 1u);
}

TEST_F(KafkaPipelineTest, DelayedLabelsAreJoinedWithTheFeaturesSeenAtPrediction) {
  SeparableStream stream(2);
  std::vector<std::string> labels;
  AppendEvents(&cluster_, &stream, 0, 200, /*unlabeled=*/true, &labels);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 200; }));
  EXPECT_EQ(model->Info().labeled, 0u);
  for (int i = 0; i < 200; ++i) {
    cluster_.Append("labels", 0, absl::StrFormat("e%d", i),
                    absl::StrFormat(R"({"id":"e%d","label":"%s"})", i, labels[i]));
  }
  cluster_.Append("labels", 0, "nope", R"({"id":"nope","label":"1"})");
  ASSERT_TRUE(WaitFor([&] { return pipeline.stats().labels_missed == 1; }));
  pipeline.Stop();
  EXPECT_EQ(model->Info().labeled, 200u);
  EXPECT_EQ(pipeline.stats().labels_joined, 200u);
  EXPECT_GT(model->Metrics().cumulative.accuracy, 0.8);
  // Labels produce no prediction records.
  EXPECT_EQ(Count("predictions"), 200u);
}

// A backlog: labels already in Kafka when the pipeline starts, fetched before their events.
// Each label waits for the events stream to pass its timestamp, so none is missed, and the
// result does not depend on how the records were split into polls.
TEST_F(KafkaPipelineTest, ABacklogOfLabelsWaitsForItsEvents) {
  SeparableStream stream(5);
  std::vector<std::string> labels;
  AppendEvents(&cluster_, &stream, 0, 300, /*unlabeled=*/true, &labels);
  for (int i = 0; i < 300; ++i) {
    // Published 1 ms after its event (AppendEvents stamps event i at base + i ms).
    cluster_.Append("labels", 0, absl::StrFormat("e%d", i),
                    absl::StrFormat(R"({"id":"e%d","label":"%s"})", i, labels[i]), {},
                    1'700'000'000'000 + i + 1);
  }
  cluster_.FetchFirst("labels");
  std::vector<double> probabilities;
  for (std::size_t batch_size : {7, 64, 1000}) {
    std::shared_ptr<ServedModel> model = MakeModel(&env_);
    KafkaOptions options = FastOptions();
    options.batch_size = batch_size;
    KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
    pipeline.Start();
    ASSERT_TRUE(WaitFor([&] { return pipeline.stats().labels_joined == 300; }))
        << "batch " << batch_size << ": joined " << pipeline.stats().labels_joined << ", missed "
        << pipeline.stats().labels_missed;
    pipeline.Stop();
    EXPECT_EQ(pipeline.stats().labels_missed, 0u);
    EXPECT_EQ(model->Info().labeled, 300u);
    EXPECT_EQ(model->NextOffsets().at("labels/0"), 300);
    // The same model whatever the poll size: the order is the timestamps'.
    std::string label;
    std::vector<features::NamedFeature> probe = SeparableStream(99).Next(&label);
    InstanceView instance{"", probe};
    PredictBatchResult r;
    ASSERT_TRUE(model->Predict({&instance, 1}, &r).ok());
    if (probabilities.empty()) {
      probabilities = r.probabilities;
    } else {
      EXPECT_EQ(r.probabilities, probabilities) << "batch " << batch_size;
    }
  }
}

// A label whose event never comes is applied (as a miss) once the events are read to the end.
TEST_F(KafkaPipelineTest, ALabelForAnUnknownIdIsAMissOnceTheEventsAreCaughtUp) {
  cluster_.Append("labels", 0, "ghost", R"({"id":"ghost","label":"1"})", {}, 1'700'000'000'000);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return pipeline.stats().labels_missed == 1; }));
  pipeline.Stop();
  EXPECT_EQ(model->NextOffsets().at("labels/0"), 1);
}

TEST_F(KafkaPipelineTest, RoutesPredictionsByProbabilityAndByField) {
  cluster_.CreateTopic("big", 1);
  KafkaModelOptions o = ModelOptions();
  KafkaRoute by_class;
  by_class.topic = "flagged";
  by_class.class_name = "0";
  by_class.min_probability = 0.0;  // every prediction that has a class "0" probability
  KafkaRoute by_field;
  by_field.topic = "big";
  by_field.field = "amount";
  by_field.op = ">=";
  by_field.number = 1000;
  o.routes = {by_class, by_field};
  ASSERT_TRUE(o.Validate().ok());
  cluster_.Append("events", 0, "a", R"({"id":"a","amount":10})");
  cluster_.Append("events", 0, "b", R"({"id":"b","amount":5000})");
  cluster_.Append("events", 0, "c", R"({"id":"c","amount":1000})");
  std::shared_ptr<ServedModel> model = MakeModel(&env_);  // classes fixed: "0", "1"
  KafkaPipeline pipeline(FastOptions(), o, model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 3 && Count("big") == 2; }));
  pipeline.Stop();
  EXPECT_EQ(Count("flagged"), 3u);
  const std::vector<KafkaRecord> big = cluster_.Records("big", 0);
  EXPECT_EQ(big[0].key, "b");
  EXPECT_EQ(big[1].key, "c");
  // The newest routed copies, newest first: c's (flagged, then big), b's, then a's.
  const std::vector<RoutedPrediction> recent = pipeline.RecentRouted();
  ASSERT_EQ(recent.size(), 5u);
  EXPECT_EQ(recent[0].key, "c");
  EXPECT_EQ(recent[0].topic, "big");
  EXPECT_EQ(recent[1].topic, "flagged");
  EXPECT_EQ(recent[2].key, "b");
  EXPECT_EQ(recent[4].key, "a");
  EXPECT_EQ(recent[4].topic, "flagged");
  EXPECT_EQ(recent[0].value, big[1].value);  // the prediction record as published
  EXPECT_GT(recent[0].time_micros, 0);
}

// A model with a count of the card's events in the last minute (to the second), "card_n_1m",
// checkpointed to `dir`.
std::shared_ptr<ServedModel> MakeAggregateModel(checkpoints::Env* env, const std::string& dir) {
  riffle::v1::ModelSpec spec = LogregSpec();
  riffle::v1::WindowedAggregate* a = spec.mutable_features()->add_aggregates();
  a->set_name("card_n_1m");
  a->set_function(riffle::v1::WindowedAggregate::COUNT);
  a->set_window_seconds(60);
  a->set_sliding(true);
  a->set_hop_seconds(1);
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  EXPECT_TRUE(def.ok()) << def.status();
  ServedModel::Options options;
  options.env = env;
  options.checkpoint_dir = dir;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("m", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::shared_ptr<ServedModel>(*std::move(model));
}

// card_n_1m of each unlabeled event, as cached for its delayed label (from a checkpoint).
std::map<std::string, double> CachedCardCounts(ServedModel* model) {
  std::map<std::string, double> counts;
  EXPECT_TRUE(model->CheckpointNow().ok());
  absl::StatusOr<checkpoints::LoadedCheckpoint> loaded = model->store()->LoadNewestValid();
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return counts;
  absl::StatusOr<checkpoints::ModelState> state = checkpoints::ParseModelState(loaded->payload);
  EXPECT_TRUE(state.ok()) << state.status();
  if (!state.ok()) return counts;
  std::vector<features::NamedFeature> views;
  for (const checkpoints::PendingLabel& p : state->pending_labels) {
    p.features.Views(&views);
    for (const features::NamedFeature& f : views) {
      if (f.name == "card_n_1m") counts[p.id] = f.value.number;
    }
  }
  return counts;
}

TEST_F(KafkaPipelineTest, WindowedAggregatesUseTheEventsKeysAndTimes) {
  // The card is the event's "key" field; its time the "time" field or else the record's
  // timestamp.
  ScopedTempDir dir;
  std::shared_ptr<ServedModel> model = MakeAggregateModel(&env_, dir.path());
  // 2023-11-14T22:13:20Z is 1700000000 s.
  cluster_.Append("events", 0, "a1",
                  R"({"id":"a1","key":"card-a","time":"2023-11-14T22:13:20Z","x0":1})");
  cluster_.Append("events", 0, "a2", R"({"id":"a2","key":"card-a","time":1700000030,"x0":1})");
  cluster_.Append("events", 0, "b1", R"({"id":"b1","key":"card-b","time":1700000031,"x0":1})");
  // No time field: the record's timestamp (milliseconds), 40 s after a1.
  cluster_.Append("events", 0, "a3", R"({"id":"a3","key":"card-a","x0":1})", {}, 1'700'000'040'000);
  // 61 s after a1: a1 has left the minute.
  cluster_.Append("events", 0, "a4", R"({"id":"a4","key":"card-a","time":1700000061,"x0":1})");
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 5; }));
  pipeline.Stop();
  EXPECT_EQ(CachedCardCounts(model.get()),
            (std::map<std::string, double>{{"a1", 0}, {"a2", 1}, {"b1", 0}, {"a3", 2}, {"a4", 2}}));
  ASSERT_TRUE(model->Metrics().aggregates.has_value());
  EXPECT_EQ(model->Metrics().aggregates->keys, 2u);
}

TEST_F(KafkaPipelineTest, CsvKeyAndTimeColumnsFeedTheWindowedAggregates) {
  // The JSON test's events as CSV records, with the role names of `fields` (the same options
  // for both formats) and another delimiter. An empty time field is missing: the record's
  // timestamp stands in, as for a JSON event without one.
  ScopedTempDir dir;
  std::shared_ptr<ServedModel> model = MakeAggregateModel(&env_, dir.path());
  KafkaModelOptions o = ModelOptions();
  o.format = KafkaFormat::kCsv;
  o.decoder.key_field = "card";
  o.decoder.time_fields = {"ts"};
  o.csv.columns = {"id", "card", "ts", "x0"};
  o.csv.delimiter = ';';
  ASSERT_TRUE(o.Validate().ok()) << o.Validate();
  cluster_.Append("events", 0, "a1", "a1;card-a;2023-11-14T22:13:20Z;1");
  cluster_.Append("events", 0, "a2", "a2;card-a;1700000030;1");
  cluster_.Append("events", 0, "b1", "b1;card-b;1700000031;1");
  cluster_.Append("events", 0, "a3", "a3;card-a;;1", {}, 1'700'000'040'000);
  cluster_.Append("events", 0, "a4", "a4;card-a;1700000061;1\r\n");  // a line end is allowed
  KafkaPipeline pipeline(FastOptions(), o, model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 5; }));
  pipeline.Stop();
  EXPECT_EQ(Count("events.dlq"), 0u);
  EXPECT_EQ(CachedCardCounts(model.get()),
            (std::map<std::string, double>{{"a1", 0}, {"a2", 1}, {"b1", 0}, {"a3", 2}, {"a4", 2}}));
  ASSERT_TRUE(model->Metrics().aggregates.has_value());
  EXPECT_EQ(model->Metrics().aggregates->keys, 2u);
  // The prediction records carry the event time from the time column, or the record's.
  const std::vector<KafkaRecord> predictions = cluster_.Records("predictions", 0);
  EXPECT_THAT(predictions[1].value, HasSubstr(R"("event_time":"2023-11-14T22:13:50.000000Z")"));
  EXPECT_THAT(predictions[3].value, HasSubstr(R"("event_time":"2023-11-14T22:14:00.000000Z")"));
}

// The same events as CSV records and as JSON objects train the same model: one set of role
// options, the same DecodedEvent, features in the same (column or message) order.
TEST_F(KafkaPipelineTest, CsvEventsArePredictedAndLearnedAsTheSameJsonEvents) {
  SeparableStream csv_stream(1);
  AppendEvents(&cluster_, &csv_stream, 0, 300, false, nullptr, KafkaFormat::kCsv);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), CsvModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 300; }));
  pipeline.Stop();
  EXPECT_EQ(model->Info().labeled, 300u);
  EXPECT_EQ(model->NextOffsets().at("events/0"), 300);
  EXPECT_GT(model->Metrics().cumulative.accuracy, 0.85);
  EXPECT_EQ(pipeline.stats().events, 300u);
  EXPECT_EQ(Count("events.dlq"), 0u);

  FakeKafkaCluster json_cluster;
  for (const char* t : {"events", "labels", "predictions"}) json_cluster.CreateTopic(t, 1);
  SeparableStream json_stream(1);
  AppendEvents(&json_cluster, &json_stream, 0, 300);
  std::shared_ptr<ServedModel> json_model = MakeModel(&env_);
  KafkaPipeline json_pipeline(FastOptions(), ModelOptions(), json_model, FakeFactory(&json_cluster),
                              nullptr, &env_);
  json_pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return json_cluster.Records("predictions", 0).size() == 300; }));
  json_pipeline.Stop();
  const std::vector<KafkaRecord> csv_predictions = cluster_.Records("predictions", 0);
  const std::vector<KafkaRecord> json_predictions = json_cluster.Records("predictions", 0);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(csv_predictions[i].key, absl::StrFormat("e%d", i));
    EXPECT_THAT(csv_predictions[i].value, HasSubstr(absl::StrFormat("\"id\":\"e%d\"", i)));
    // Bit for bit: the shortest exact form of every probability.
    ASSERT_EQ(Probabilities(csv_predictions[i].value), Probabilities(json_predictions[i].value))
        << i;
  }
}

TEST_F(KafkaPipelineTest, DelayedCsvLabelsAreJoined) {
  SeparableStream stream(2);
  std::vector<std::string> labels;
  AppendEvents(&cluster_, &stream, 0, 200, /*unlabeled=*/true, &labels, KafkaFormat::kCsv);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), CsvModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 200; }));
  EXPECT_EQ(model->Info().labeled, 0u);
  // The labels topic's own header, by default id,label.
  for (int i = 0; i < 200; ++i) {
    cluster_.Append("labels", 0, absl::StrFormat("e%d", i),
                    absl::StrFormat("e%d,%s", i, labels[i]));
  }
  cluster_.Append("labels", 0, "nope", "nope,1");
  ASSERT_TRUE(WaitFor([&] { return pipeline.stats().labels_missed == 1; }));
  pipeline.Stop();
  EXPECT_EQ(model->Info().labeled, 200u);
  EXPECT_EQ(pipeline.stats().labels_joined, 200u);
  EXPECT_GT(model->Metrics().cumulative.accuracy, 0.8);
  EXPECT_EQ(Count("predictions"), 200u);
  EXPECT_EQ(Count("events.dlq"), 0u);
}

TEST_F(KafkaPipelineTest, BadCsvRecordsGoToTheDeadLetterTopicAndTheStreamGoesOn) {
  KafkaModelOptions o = CsvModelOptions();
  o.csv.label_columns = {"label", "id"};  // the labels topic's header, in its own order
  cluster_.Append("events", 0, "a", "a,1,0,0,1");
  cluster_.Append("events", 0, "b", "b,1,0");                   // 3 fields of 5
  cluster_.Append("events", 0, "c", "\"c,1,0,0,1");             // a quote never closed
  cluster_.Append("events", 0, "d", "d,nan,0,0,1");             // not a category
  cluster_.Append("events", 0, std::nullopt, ",1,0,0,1");       // no id
  cluster_.Append("events", 0, "e", "e,1,0,0,7");               // unknown class
  cluster_.Append("events", 0, "f", "f,-1,0,0,");               // unlabeled: cached
  cluster_.Append("events", 0, "g", "g,1,0,0,1\nh,1,0,0,1\n");  // two records in one message
  cluster_.Append("labels", 0, "f", "0,f");                     // joined with f
  cluster_.Append("labels", 0, "z", ",z");                      // a label record without label
  cluster_.Append("labels", 0, "y", "1");                       // 1 field of 2
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), o, model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] {
    return Count("events.dlq") == 8 && Count("predictions") == 2 &&
           pipeline.stats().labels_joined == 1;
  }));
  pipeline.Stop();
  std::map<std::string, const KafkaRecord*> by_offset;
  const std::vector<KafkaRecord> dlq = cluster_.Records("events.dlq", 0);
  for (const KafkaRecord& r : dlq) {
    by_offset[Header(r, kDlqSourceTopicHeader) + "/" + Header(r, kDlqSourceOffsetHeader)] = &r;
  }
  const std::pair<const char*, const char*> expected[] = {
      {"events/1", "FIELD_COUNT"},       {"events/2", "INVALID_CSV"},
      {"events/3", "NON_FINITE_NUMBER"}, {"events/4", "MISSING_ID"},
      {"events/5", "INVALID_EVENT"},     {"events/7", "INVALID_CSV"},
      {"labels/1", "MISSING_LABEL"},     {"labels/2", "FIELD_COUNT"},
  };
  for (const auto& [source, code] : expected) {
    ASSERT_EQ(by_offset.count(source), 1u) << source;
    EXPECT_EQ(Header(*by_offset[source], kDlqErrorCodeHeader), code) << source;
    EXPECT_EQ(Header(*by_offset[source], kDlqModelHeader), "m");
    EXPECT_EQ(Header(*by_offset[source], kDlqSourcePartitionHeader), "0");
  }
  EXPECT_EQ(by_offset["events/1"]->value, "b,1,0");  // the original bytes
  EXPECT_EQ(by_offset["events/1"]->key, "b");
  EXPECT_EQ(Header(*by_offset["events/1"], kDlqErrorMessageHeader),
            "message: 3 fields, but the header has 5 columns");
  EXPECT_THAT(Header(*by_offset["events/3"], kDlqErrorMessageHeader),
              HasSubstr("features[\"x0\"]"));
  EXPECT_EQ(Header(*by_offset["labels/1"], kDlqErrorMessageHeader),
            "label[\"label\"]: a record of the labels topic needs a label");
  EXPECT_EQ(Header(*by_offset["labels/2"], kDlqErrorMessageHeader),
            "message: 1 fields, but the header has 2 columns");
  EXPECT_EQ(model->Info().labeled, 2u);  // a, and f by its delayed label
  EXPECT_EQ(model->NextOffsets().at("events/0"), 8);
  EXPECT_EQ(model->NextOffsets().at("labels/0"), 3);
  const KafkaPipelineStats stats = pipeline.stats();
  EXPECT_EQ(stats.dead_letters, 8u);
  EXPECT_EQ(stats.dead_letters_by_reason.at("FIELD_COUNT"), 2u);
  EXPECT_EQ(stats.dead_letters_by_reason.at("INVALID_CSV"), 2u);
}

TEST(KafkaRouteTest, RejectsIncompleteRules) {
  KafkaRoute r;
  r.topic = "t";
  EXPECT_FALSE(r.Validate().ok());
  r.class_name = "1";
  r.min_probability = 1.5;
  EXPECT_THAT(r.Validate().message(), HasSubstr("min_probability"));
  r.min_probability = 0.5;
  EXPECT_TRUE(r.Validate().ok());
  r.field = "x";
  EXPECT_FALSE(r.Validate().ok());  // both conditions
  KafkaRoute t;
  t.topic = "t";
  t.field = "country";
  t.op = ">";
  t.compare_text = true;
  t.text = "FR";
  EXPECT_THAT(t.Validate().message(), HasSubstr("== or !="));
}

TEST(KafkaModelOptionsTest, RejectsLoopsAndMissingTopics) {
  KafkaModelOptions o = ModelOptions();
  EXPECT_TRUE(o.Validate().ok());
  o.predictions_topic = "events";
  EXPECT_THAT(o.Validate().message(), HasSubstr("loop"));
  o = ModelOptions();
  o.labels_topic = "events";
  EXPECT_THAT(o.Validate().message(), HasSubstr("labels_topic"));
  o = ModelOptions();
  o.predictions_topic.clear();
  EXPECT_THAT(o.Validate().message(), HasSubstr("predictions_topic"));
  o = ModelOptions();
  o.start = "middle";
  EXPECT_THAT(o.Validate().message(), HasSubstr("start"));
}

TEST(KafkaModelOptionsTest, ChecksTheCsvHeadersAsTheDecodersWill) {
  KafkaModelOptions o = CsvModelOptions();
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  o.csv.columns.clear();
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.columns: required with format csv"));
  o = CsvModelOptions();
  o.csv.columns = {"tx", "x0", "x0"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.columns: column 3, \"x0\""));
  o.csv.columns = {"tx", "x0"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.columns: no id column \"id\""));
  o.decoder.id_field = "tx";  // the role names are the decoder's, for both headers
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();  // the labels' header by default: tx,label
  o.csv.label_columns = {"id", "label"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.label_columns: no id column \"tx\""));
  o.csv.label_columns = {"tx", "y"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.label_columns: no label column \"label\""));
  o = CsvModelOptions();
  o.csv.text_columns = {"zip"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.text_columns: \"zip\" is not a column"));
  o = CsvModelOptions();
  o.csv.delimiter = '"';
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.delimiter: "));
  o = CsvModelOptions();
  o.labels_topic.clear();
  o.csv.label_columns = {"id", "label"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv.label_columns: set, but there is no labels"));
  o = ModelOptions();
  o.csv.columns = {"id"};
  EXPECT_THAT(o.Validate().message(), HasSubstr("csv: only with format: csv"));
}

TEST_F(KafkaPipelineTest, FailedDeliveriesAreRetriedThenDeadLettered) {
  cluster_.Append("events", 0, "a", R"({"id":"a","x0":1})");
  cluster_.FailNextDeliveries(2, absl::UnavailableError("broker gone"));
  KafkaOptions options = FastOptions();
  options.max_delivery_attempts = 3;
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  {
    KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
    pipeline.Start();
    ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 1; }));
    pipeline.Stop();
    EXPECT_EQ(pipeline.stats().delivery_retries, 2u);
    EXPECT_EQ(pipeline.stats().delivery_failures, 0u);
  }
  // One attempt only: the prediction goes to the dead-letter topic, with its reason.
  cluster_.Append("events", 0, "b", R"({"id":"b","x0":1})");
  cluster_.FailNextDeliveries(1, absl::UnavailableError("broker gone"));
  options.max_delivery_attempts = 1;
  KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("events.dlq") == 1; }));
  pipeline.Stop();
  const KafkaRecord dead = cluster_.Records("events.dlq", 0)[0];
  EXPECT_EQ(Header(dead, kDlqErrorCodeHeader), "DELIVERY_FAILED");
  EXPECT_EQ(Header(dead, kDlqSourceTopicHeader), "predictions");
  EXPECT_THAT(dead.value, HasSubstr("\"id\":\"b\""));
  EXPECT_EQ(pipeline.stats().delivery_failures, 1u);
}

TEST_F(KafkaPipelineTest, ABrokerOutagePausesThePathAndItResumesWithoutLoss) {
  SeparableStream stream(3);
  cluster_.SetDown(true);
  AppendEvents(&cluster_, &stream, 0, 100);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();  // the broker is down: Start does not wait for it
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(pipeline.connected());
  EXPECT_EQ(model->Info().labeled, 0u);
  EXPECT_FALSE(pipeline.stats().last_error.empty());
  cluster_.SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 100; }));
  EXPECT_TRUE(pipeline.connected());
  cluster_.SetDown(true);
  AppendEvents(&cluster_, &stream, 100, 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  cluster_.SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 200; }));
  pipeline.Stop();
  EXPECT_EQ(model->Info().labeled, 200u);
}

TEST_F(KafkaPipelineTest, ARestartResumesFromTheCheckpointAndLearnsEachEventOnce) {
  ScopedTempDir dir;
  SeparableStream stream(4);
  std::vector<std::string> labels;
  AppendEvents(&cluster_, &stream, 0, 300);
  CheckpointSchedule schedule;
  schedule.every_events = 100;
  schedule.every_seconds = 0;
  {
    std::shared_ptr<ServedModel> model = MakeModel(&env_, dir.path(), schedule);
    KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                           &env_);
    pipeline.Start();
    ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 300; }));
    // Offsets of a durable checkpoint reach the group (lag monitoring).
    EXPECT_TRUE(WaitFor([&] { return cluster_.Committed("riffle-m", "events", 0).has_value(); }));
    pipeline.Stop();
    ASSERT_TRUE(model->CheckpointIfDirty().ok());
  }
  // Unlabeled events whose labels come after the restart: the pending joins are checkpointed.
  AppendEvents(&cluster_, &stream, 300, 50, /*unlabeled=*/true, &labels);
  {
    std::shared_ptr<ServedModel> model = RestoreModel(&env_, dir.path());
    ASSERT_EQ(model->Info().labeled, 300u);
    KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                           &env_);
    pipeline.Start();
    ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 350; }));
    pipeline.Stop();
    ASSERT_TRUE(model->CheckpointIfDirty().ok());
    EXPECT_EQ(model->Info().labeled, 300u);
  }
  for (int i = 0; i < 50; ++i) {
    cluster_.Append("labels", 0, absl::StrFormat("e%d", 300 + i),
                    absl::StrFormat(R"({"id":"e%d","label":"%s"})", 300 + i, labels[i]));
  }
  std::shared_ptr<ServedModel> model = RestoreModel(&env_, dir.path());
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return pipeline.stats().labels_joined == 50; }));
  pipeline.Stop();
  // Each labeled event once: 300 inline, 50 delayed across two restarts; nothing re-read.
  EXPECT_EQ(model->Info().labeled, 350u);
  EXPECT_EQ(pipeline.stats().labels_missed, 0u);
  EXPECT_EQ(Count("predictions"), 350u);
  EXPECT_EQ(pipeline.stats().records, 50u);
}

TEST_F(KafkaPipelineTest, ACheckpointWaitsForTheOutputsOfTheRecordsItCovers) {
  ScopedTempDir dir;
  CheckpointSchedule schedule;
  schedule.every_events = 0;
  schedule.every_seconds = 0;
  std::shared_ptr<ServedModel> model = MakeModel(&env_, dir.path(), schedule);
  KafkaOptions options = FastOptions();
  options.delivery_wait_seconds = 0.2;
  options.max_delivery_attempts = 100'000;
  KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  cluster_.Append("events", 0, "a", R"({"id":"a","x0":1,"label":"1"})");
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 1; }));
  ASSERT_TRUE(model->CheckpointNow().ok());
  // The next prediction's deliveries fail for a while: a checkpoint that covers its event must
  // not be written (a crash after it would lose that prediction).
  // (Each retry takes a poll of at least 2 ms: 1000 of them outlast the 0.2 s wait.)
  cluster_.FailNextDeliveries(1000, absl::UnavailableError("broker gone"));
  cluster_.Append("events", 0, "b", R"({"id":"b","x0":1,"label":"1"})");
  ASSERT_TRUE(WaitFor([&] { return model->NextOffsets().at("events/0") == 2; }));
  absl::StatusOr<checkpoints::WrittenCheckpoint> written = model->CheckpointNow();
  EXPECT_FALSE(written.ok());
  EXPECT_THAT(written.status().message(), HasSubstr("not delivered"));
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 2; }));
  EXPECT_TRUE(model->CheckpointNow().ok());
  pipeline.Stop();
  EXPECT_EQ(pipeline.stats().delivery_retries, 1000u);
}

// A prediction record without its processing latency (the one field that depends on timing).
std::string WithoutLatency(const std::string& record) {
  const std::size_t at = record.find(",\"latency_ms\":");
  return at == std::string::npos ? record : record.substr(0, at);
}

// What one run of the pipeline published and learned, for comparing two runs.
struct RunOutputs {
  std::vector<std::string> predictions;   // key and record without latency
  std::vector<std::string> dead_letters;  // source offset, error code and message
  ModelInfo info;
  double log_loss = 0;
  KafkaPipelineStats stats;
};

// Decoding events on the decode thread (polls of at least kDecodeAheadMinEvents events) or on
// the consume thread changes nothing the pipeline publishes or learns: same records, same
// order, same model, for JSON and CSV records. The stream mixes labeled and unlabeled events,
// undecodable ones, events the model rejects and delayed labels; the labels are fetched first,
// so they wait and are merged by timestamp into the events' batches. Polls of 130 records: the
// last events poll (10 events) is decoded on the consume thread while a batch is ready.
TEST(KafkaPipelineDecodeThreadTest, DecodingAsideChangesNothingPublishedOrLearned) {
  static_assert(KafkaOptions::kDecodeAheadMinEvents <= 130 &&
                KafkaOptions::kDecodeAheadMinEvents > 10);
  auto run = [](bool decode_thread, KafkaFormat format) {
    const bool json = format == KafkaFormat::kJson;
    FakeClockEnv env;
    FakeKafkaCluster cluster;
    for (const char* topic : {"events", "labels", "predictions", "events.dlq"}) {
      cluster.CreateTopic(topic, 1);
    }
    cluster.FetchFirst("labels");
    SeparableStream stream(11);
    for (int i = 0; i < 3000; ++i) {
      std::string label;
      std::vector<features::NamedFeature> f = stream.Next(&label);
      const std::string id = absl::StrFormat("e%d", i);
      const std::string inline_label =
          i % 89 == 7 ? "9" : (i % 3 == 0 ? "" : label);  // 9: rejected
      std::string value = json ? EventJson(id, f, inline_label) : EventCsv(id, f, inline_label);
      if (i % 97 == 5) value = json ? "{\"id\":\"" + id + "\",\"x0\":" : id + ",1";  // undecodable
      cluster.Append("events", 0, id, value, {}, 1'700'000'000'000 + i);
      if (i % 3 == 0) {  // its label, stamped 2 ms later
        cluster.Append("labels", 0, id,
                       json ? absl::StrFormat(R"({"id":"%s","label":"%s"})", id, label)
                            : absl::StrFormat("%s,%s", id, label),
                       {}, 1'700'000'000'000 + i + 2);
      }
    }
    CheckpointSchedule schedule;
    schedule.every_events = 0;
    schedule.every_seconds = 0;
    std::shared_ptr<ServedModel> model = MakeModel(&env, "", schedule);
    KafkaOptions options = FastOptions();
    options.batch_size = 130;
    options.decode_thread = decode_thread;
    KafkaPipeline pipeline(options, json ? ModelOptions() : CsvModelOptions(), model,
                           FakeFactory(&cluster), nullptr, &env);
    pipeline.Start();
    RunOutputs out;
    // Every record read and every label applied: the labels after the last event wait in the
    // pipeline's buffer until it sees that the events are caught up (checked at most every
    // 20 ms), after all 4,000 records have been counted.
    EXPECT_TRUE(WaitFor([&] {
      const KafkaPipelineStats st = pipeline.stats();
      return st.records == 4000 && st.pending_labels == 0 &&
             cluster.Records("predictions", 0).size() + cluster.Records("events.dlq", 0).size() ==
                 3000;
    })) << pipeline.stats().records
        << " records, " << pipeline.stats().pending_labels << " labels pending";
    pipeline.Stop();
    for (const KafkaRecord& r : cluster.Records("predictions", 0)) {
      out.predictions.push_back(r.key.value_or("") + " " + WithoutLatency(r.value));
    }
    for (const KafkaRecord& r : cluster.Records("events.dlq", 0)) {
      out.dead_letters.push_back(Header(r, kDlqSourceOffsetHeader) + " " +
                                 Header(r, kDlqErrorCodeHeader) + " " +
                                 Header(r, kDlqErrorMessageHeader));
    }
    out.info = model->Info();
    out.log_loss = model->Metrics().cumulative.log_loss;
    out.stats = pipeline.stats();
    return out;
  };
  for (const KafkaFormat format : {KafkaFormat::kJson, KafkaFormat::kCsv}) {
    SCOPED_TRACE(format == KafkaFormat::kJson ? "json" : "csv");
    const RunOutputs aside = run(true, format);
    const RunOutputs inline_decoded = run(false, format);
    ASSERT_GT(aside.predictions.size(), 2900u);
    ASSERT_GT(aside.dead_letters.size(), 40u);
    EXPECT_EQ(aside.predictions, inline_decoded.predictions);
    EXPECT_EQ(aside.dead_letters, inline_decoded.dead_letters);
    EXPECT_EQ(aside.info.labeled, inline_decoded.info.labeled);
    EXPECT_EQ(aside.log_loss, inline_decoded.log_loss);  // bit-identical
    EXPECT_EQ(aside.stats.events, inline_decoded.stats.events);
    EXPECT_EQ(aside.stats.labels_joined, inline_decoded.stats.labels_joined);
    EXPECT_EQ(aside.stats.dead_letters_by_reason, inline_decoded.stats.dead_letters_by_reason);
    // Every label waited for its event: those of events that were never cached (undecodable
    // or rejected) are the only misses.
    std::uint64_t uncached = 0;
    for (int i = 0; i < 3000; i += 3) uncached += i % 97 == 5 || i % 89 == 7 ? 1 : 0;
    EXPECT_EQ(aside.stats.labels_missed, uncached);
    EXPECT_EQ(aside.stats.labels_joined, 1000u - uncached);
  }
}

// A poll fails while a decoded batch waits to be applied: the batch is applied, and no record
// is lost or repeated (the consumer's position is already past it).
TEST_F(KafkaPipelineTest, APollErrorWithABatchReadyLosesNothing) {
  SeparableStream stream(13);
  AppendEvents(&cluster_, &stream, 0, 5'000);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaPipeline pipeline(FastOptions(), ModelOptions(), model, FakeFactory(&cluster_), nullptr,
                         &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") >= 500; }));
  for (int i = 0; i < 3; ++i) cluster_.FailNextPoll(absl::UnavailableError("broker gone"));
  // The pipeline polls again even when it has read everything, so the failures come (here
  // too, if the stream was all read before they were set up: decoding is fast).
  ASSERT_TRUE(WaitFor([&] { return pipeline.stats().poll_errors >= 1; }));
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 5'000; }));
  pipeline.Stop();
  const std::vector<KafkaRecord> predictions = cluster_.Records("predictions", 0);
  ASSERT_EQ(predictions.size(), 5'000u);
  for (int i = 0; i < 5'000; ++i) ASSERT_EQ(predictions[i].key, absl::StrFormat("e%d", i));
  EXPECT_EQ(model->Info().labeled, 5'000u);
  EXPECT_EQ(model->NextOffsets().at("events/0"), 5'000);
}

// Stop while a large backlog streams (a poll decoded ahead and waiting to be applied, most
// likely): every record the consumer read is applied, every record the model's offsets cover
// has its prediction delivered, and a second pipeline from those offsets predicts the rest,
// each event exactly once over both.
TEST_F(KafkaPipelineTest, AStopMidStreamLosesAndRepeatsNothing) {
  SeparableStream stream(12);
  AppendEvents(&cluster_, &stream, 0, 20'000);
  std::shared_ptr<ServedModel> model = MakeModel(&env_);
  KafkaOptions options = FastOptions();
  options.batch_size = 500;
  {
    KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
    pipeline.Start();
    ASSERT_TRUE(WaitFor([&] { return Count("predictions") >= 2'000; }));
    pipeline.Stop();
  }
  const std::int64_t next = model->NextOffsets().at("events/0");
  // Every record the consumer handed out was applied before Stop returned (a decoded batch
  // waiting at the stop included), and every applied event's prediction was delivered.
  EXPECT_EQ(cluster_.ReadPosition("events", 0), next);
  EXPECT_EQ(Count("predictions"), static_cast<std::size_t>(next));
  EXPECT_EQ(model->Info().labeled, static_cast<std::uint64_t>(next));
  KafkaPipeline pipeline(options, ModelOptions(), model, FakeFactory(&cluster_), nullptr, &env_);
  pipeline.Start();
  ASSERT_TRUE(WaitFor([&] { return Count("predictions") == 20'000; }));
  pipeline.Stop();
  const std::vector<KafkaRecord> predictions = cluster_.Records("predictions", 0);
  for (int i = 0; i < 20'000; ++i) ASSERT_EQ(predictions[i].key, absl::StrFormat("e%d", i));
  EXPECT_EQ(model->Info().labeled, 20'000u);
}

TEST(FormatPredictionRecordTest, WritesTheDocumentedFields) {
  StreamBatchResult batch;
  batch.version = 3;
  batch.generation = 7;
  batch.classes = {"no", "yes \"really\""};
  batch.probabilities = {0.25, 0.75};
  StreamRecordResult r;
  r.proba_begin = 0;
  r.proba_count = 2;
  r.predicted = 1;
  EXPECT_EQ(FormatPredictionRecord("fraud", "tx-1", batch, r, 1'700'000'000'250'000, 1.5),
            R"({"id":"tx-1","model":"fraud","version":3,"generation":7,)"
            R"("predicted":"yes \"really\"","probabilities":{"no":0.25,"yes \"really\"":0.75},)"
            R"("event_time":"2023-11-14T22:13:20.250000Z","latency_ms":1.500})");
  r.predicted = std::nullopt;
  r.proba_count = 0;
  EXPECT_THAT(FormatPredictionRecord("m", "x", batch, r, std::nullopt, 0),
              HasSubstr(R"("predicted":null,"probabilities":{},"event_time":null)"));
  // Probabilities in their shortest exact form; a latency that is not a number is null.
  r.proba_count = 2;
  batch.probabilities = {0.1, 1.0 / 3};
  EXPECT_THAT(FormatPredictionRecord("m", "x", batch, r, std::nullopt, std::nan("")),
              HasSubstr(R"({"no":0.1,"yes \"really\"":0.3333333333333333},)"
                        R"("event_time":null,"latency_ms":null})"));
}

TEST(FormatPredictionRecordTest, EventTimesMatchAbslFormatting) {
  // The hand-written RFC 3339 formatter against absl::FormatTime, across leap years, month
  // ends, times before 1970 and the years it hands over to absl.
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::int64_t> any(-2'300'000'000'000'000,  // 1897
                                                  7'300'000'000'000'000);  // 2201
  std::vector<std::int64_t> times = {0,
                                     -1,
                                     1,
                                     951'782'400'000'000 /* 2000-02-29 */,
                                     253'402'300'799'999'999 /* 9999-12-31T23:59:59.999999 */,
                                     253'402'300'800'000'000 /* 10000-01-01 */,
                                     -62'167'219'200'000'001 /* just before year 0 */,
                                     -30'610'224'000'000'000 /* 1000-01-01 */,
                                     -30'610'224'000'000'001 /* 999-12-31T23:59:59.999999 */};
  for (int i = 0; i < 20000; ++i) times.push_back(any(rng));
  for (const std::int64_t t : times) {
    std::string fast;
    AppendRfc3339Micros(&fast, t);
    EXPECT_EQ(fast, absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::FromUnixMicros(t),
                                     absl::UTCTimeZone()))
        << t;
  }
}

}  // namespace
}  // namespace riffle::service
