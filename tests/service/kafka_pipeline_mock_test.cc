// The Kafka path with the real clients (librdkafka) on librdkafka's in-process mock cluster:
// decoding to dead letters, routing, the delayed-label join, batching, a broker that goes down
// and comes back. Part of kafka_test (label kafka; its main has the watchdog). The same
// behaviours on the fake cluster, under TSan, are in kafka_pipeline_test.cc.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "checkpoints/env.h"
#include "service/kafka_client.h"
#include "service/kafka_pipeline.h"
#include "service/model_definition.h"
#include "service/served_model.h"

namespace riffle::service {
namespace {

using ::testing::HasSubstr;

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

class KafkaPipelineOnMockClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = KafkaMockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    for (const char* t : {"events", "labels", "predictions", "events.dlq", "flagged"}) {
      ASSERT_TRUE(cluster_->CreateTopic(t, 1, 1).ok());
    }
    KafkaProducerOptions po;
    po.properties["bootstrap.servers"] = cluster_->bootstrap_servers();
    auto producer = NewKafkaProducer(po);
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
    KafkaConsumerOptions co;
    co.properties["bootstrap.servers"] = cluster_->bootstrap_servers();
    co.properties["group.id"] = "reader";
    auto reader = NewKafkaConsumer(co);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
    riffle::v1::ModelSpec spec;
    spec.set_learner("logreg");
    (*spec.mutable_learner_options())["lr"] = "0.1";
    spec.add_classes("0");
    spec.add_classes("1");
    absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
    ASSERT_TRUE(def.ok());
    ServedModel::Options options;
    options.env = checkpoints::DefaultEnv();
    auto model = ServedModel::Create("m", *std::move(def), 1, options);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::shared_ptr<ServedModel>(*std::move(model));
  }
  void TearDown() override {
    pipeline_.reset();
    reader_.reset();
    producer_.reset();
    cluster_.reset();
  }

  void Produce(const std::string& topic, const std::string& key, const std::string& value,
               std::int64_t timestamp_ms) {
    KafkaProduceRecord r;
    r.topic = topic;
    r.key = key;
    r.value = value;
    r.timestamp_ms = timestamp_ms;
    ASSERT_TRUE(producer_->Produce(r).ok());
  }
  void Flush() { ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok()); }

  void StartPipeline(KafkaModelOptions options) {
    KafkaOptions kafka;
    kafka.properties["bootstrap.servers"] = cluster_->bootstrap_servers();
    kafka.batch_size = 16;  // several batches
    kafka.backoff_min_seconds = 0.05;
    kafka.backoff_max_seconds = 0.5;
    KafkaClientFactory factory;
    factory.new_consumer = [](const KafkaConsumerOptions& o) { return NewKafkaConsumer(o); };
    factory.new_producer = [](const KafkaProducerOptions& o) { return NewKafkaProducer(o); };
    options.model = "m";
    pipeline_ = std::make_unique<KafkaPipeline>(kafka, std::move(options), model_, factory, nullptr,
                                                checkpoints::DefaultEnv());
    pipeline_->Start();
  }

  // Every record of `topic` partition 0 so far.
  std::vector<KafkaRecord> ReadAll(const std::string& topic, std::size_t expected) {
    const KafkaTopicPartitionOffset from[] = {{topic, 0, kKafkaOffsetBeginning}};
    EXPECT_TRUE(reader_->Assign(from).ok());
    std::vector<KafkaRecord> out;
    KafkaRecordBatch batch;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (out.size() < expected && absl::Now() < deadline) {
      (void)reader_->Poll(expected - out.size(), absl::Milliseconds(100), &batch);
      for (const KafkaRecord& r : batch) out.push_back(r);
    }
    return out;
  }

  std::unique_ptr<KafkaMockCluster> cluster_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> reader_;
  std::shared_ptr<ServedModel> model_;
  std::unique_ptr<KafkaPipeline> pipeline_;
};

KafkaModelOptions Topics() {
  KafkaModelOptions o;
  o.events_topics = {"events"};
  o.labels_topic = "labels";
  o.predictions_topic = "predictions";
  return o;
}

TEST_F(KafkaPipelineOnMockClusterTest, PredictsRoutesDeadLettersAndJoinsLabels) {
  const std::int64_t t0 = absl::ToUnixMillis(absl::Now());
  // 40 events, half labeled inline, half labeled later on the labels topic; 3 bad records.
  for (int i = 0; i < 40; ++i) {
    const double x = (i % 2 == 0) ? 2.0 : -2.0;
    const std::string label = i % 2 == 0 ? "1" : "0";
    const std::string id = absl::StrFormat("e%d", i);
    Produce("events", id,
            i < 20 ? absl::StrFormat(R"({"id":"%s","x":%g,"amount":%d,"label":"%s"})", id, x,
                                     i * 100, label)
                   : absl::StrFormat(R"({"id":"%s","x":%g,"amount":%d})", id, x, i * 100),
            t0 + i);
    if (i >= 20) {
      Produce("labels", id, absl::StrFormat(R"({"id":"%s","label":"%s"})", id, label),
              t0 + 100 + i);
    }
  }
  Produce("events", "bad1", R"({"id":"bad1","x":)", t0 + 50);
  Produce("events", "bad2", R"({"id":"bad2","x":1,"label":"9"})", t0 + 51);
  Produce("labels", "bad3", R"({"id":"bad3"})", t0 + 200);
  Flush();
  KafkaModelOptions o = Topics();
  KafkaRoute route;
  route.topic = "flagged";
  route.field = "amount";
  route.op = ">=";
  route.number = 3500;
  o.routes = {route};
  StartPipeline(o);
  ASSERT_TRUE(WaitFor([&] {
    const KafkaPipelineStats s = pipeline_->stats();
    return s.predictions == 40 && s.labels_joined == 20 && s.dead_letters == 3;
  })) << pipeline_->stats().last_error;
  pipeline_->Stop();
  EXPECT_EQ(pipeline_->stats().labels_missed, 0u);
  EXPECT_EQ(model_->Info().labeled, 40u);

  const std::vector<KafkaRecord> predictions = ReadAll("predictions", 40);
  ASSERT_EQ(predictions.size(), 40u);
  std::map<std::string, int> ids;
  for (const KafkaRecord& r : predictions) {
    ASSERT_TRUE(r.key.has_value());
    ++ids[*r.key];
    EXPECT_THAT(r.value, HasSubstr(absl::StrFormat(R"("id":"%s")", *r.key)));
  }
  EXPECT_EQ(ids.size(), 40u);
  EXPECT_EQ(ReadAll("flagged", 5).size(), 5u);  // amount 3500..3900
  const std::vector<KafkaRecord> dead = ReadAll("events.dlq", 3);
  ASSERT_EQ(dead.size(), 3u);
  std::map<std::string, std::string> codes;
  for (const KafkaRecord& r : dead) {
    for (const KafkaHeader& h : r.headers) {
      if (h.name == kDlqErrorCodeHeader) codes[*r.key] = h.value;
    }
  }
  EXPECT_EQ(codes["bad1"], "INVALID_JSON");
  EXPECT_EQ(codes["bad2"], "INVALID_EVENT");
  EXPECT_EQ(codes["bad3"], "MISSING_LABEL");
  // Every offset was taken, the bad records' too.
  EXPECT_EQ(model_->NextOffsets().at("events/0"), 42);
  EXPECT_EQ(model_->NextOffsets().at("labels/0"), 21);
}

TEST_F(KafkaPipelineOnMockClusterTest, ABrokerThatGoesDownPausesThePathWithoutLoss) {
  const std::int64_t t0 = absl::ToUnixMillis(absl::Now());
  for (int i = 0; i < 20; ++i) {
    Produce("events", absl::StrFormat("a%d", i),
            absl::StrFormat(R"({"id":"a%d","x":1,"label":"1"})", i), t0 + i);
  }
  Flush();
  StartPipeline(Topics());
  ASSERT_TRUE(WaitFor([&] { return pipeline_->stats().predictions == 20; }));
  ASSERT_TRUE(cluster_->SetBrokerDown(1).ok());
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(cluster_->SetBrokerUp(1).ok());
  for (int i = 0; i < 20; ++i) {
    Produce("events", absl::StrFormat("b%d", i),
            absl::StrFormat(R"({"id":"b%d","x":1,"label":"1"})", i), t0 + 100 + i);
  }
  Flush();
  ASSERT_TRUE(WaitFor([&] { return pipeline_->stats().predictions == 40; }))
      << pipeline_->stats().last_error;
  pipeline_->Stop();
  EXPECT_EQ(model_->Info().labeled, 40u);
  EXPECT_EQ(model_->NextOffsets().at("events/0"), 40);
}

}  // namespace
}  // namespace riffle::service
