// The `kafka:` keys of the serve config (docs/KAFKA.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../checkpoints/checkpoint_testing.h"
#include "absl/strings/str_format.h"
#include "fake_kafka.h"
#include "service/serve_command.h"
#include "service/serve_config.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeKafkaCluster;
using ::riffle::service::testing::LogregSpec;
using ::testing::HasSubstr;

constexpr char kKafkaConfig[] = R"(
kafka:
  bootstrap_servers: broker-1:9092,broker-2:9092
  properties: {security.protocol: SASL_SSL, sasl.mechanism: PLAIN}
  consumer_properties: {fetch.wait.max.ms: 10}
  producer_properties: {linger.ms: 1}
  batch_size: 250
  decode_thread: false
  backoff_min_seconds: 0.5
  backoff_max_seconds: 20
  max_delivery_attempts: 5
  delivery_wait_seconds: 12
models:
  - name: fraud
    spec: {learner: logreg}
    kafka:
      events_topics: [payments, refunds]
      labels_topic: payments.labels
      predictions_topic: payments.predictions
      dead_letter_topic: payments.dlq
      start: latest
      group_id: fraud-lag
      fields: {id: tx_id, key: card, time: [ts], label: is_fraud}
      max_message_bytes: 65536
      routes:
        - {topic: flagged, class: "1", min_probability: 0.9}
        - {topic: big, field: amount, op: ">=", value: 1000}
        - {topic: fr, field: country, op: "==", value: FR}
        - {topic: code, field: code, op: "!=", value: "42"}
  - name: plain
    spec: {learner: logreg}
)";

TEST(ServeConfigKafkaTest, ParsesEveryKey) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(kKafkaConfig, "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kafka.properties.at("bootstrap.servers"), "broker-1:9092,broker-2:9092");
  EXPECT_EQ(c->kafka.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(c->kafka.consumer_properties.at("fetch.wait.max.ms"), "10");
  EXPECT_EQ(c->kafka.producer_properties.at("linger.ms"), "1");
  EXPECT_EQ(c->kafka.batch_size, 250u);
  EXPECT_FALSE(c->kafka.decode_thread);  // default true
  EXPECT_EQ(c->kafka.backoff_min_seconds, 0.5);
  EXPECT_EQ(c->kafka.backoff_max_seconds, 20);
  EXPECT_EQ(c->kafka.max_delivery_attempts, 5);
  EXPECT_EQ(c->kafka.delivery_wait_seconds, 12);
  EXPECT_FALSE(c->kafka_embedded);
  ASSERT_EQ(c->models.size(), 2u);
  ASSERT_TRUE(c->models[0].kafka.has_value());
  EXPECT_FALSE(c->models[1].kafka.has_value());
  const KafkaModelOptions& k = *c->models[0].kafka;
  EXPECT_EQ(k.model, "fraud");
  EXPECT_EQ(k.events_topics, (std::vector<std::string>{"payments", "refunds"}));
  EXPECT_EQ(k.labels_topic, "payments.labels");
  EXPECT_EQ(k.predictions_topic, "payments.predictions");
  EXPECT_EQ(k.dead_letter_topic, "payments.dlq");
  EXPECT_EQ(k.start, "latest");
  EXPECT_EQ(k.group_id, "fraud-lag");
  EXPECT_EQ(k.decoder.id_field, "tx_id");
  EXPECT_EQ(k.decoder.key_field, "card");
  EXPECT_EQ(k.decoder.time_fields, std::vector<std::string>{"ts"});
  EXPECT_EQ(k.decoder.label_field, "is_fraud");
  EXPECT_EQ(k.decoder.max_message_bytes, 65536u);
  EXPECT_EQ(k.format, KafkaFormat::kJson);
  EXPECT_TRUE(k.csv.columns.empty());
  ASSERT_EQ(k.routes.size(), 4u);
  EXPECT_EQ(k.routes[0].class_name, "1");
  EXPECT_EQ(k.routes[0].min_probability, 0.9);
  EXPECT_EQ(k.routes[1].field, "amount");
  EXPECT_EQ(k.routes[1].op, ">=");
  EXPECT_FALSE(k.routes[1].compare_text);
  EXPECT_EQ(k.routes[1].number, 1000);
  EXPECT_TRUE(k.routes[2].compare_text);
  EXPECT_EQ(k.routes[2].text, "FR");
  // A quoted number is a text.
  EXPECT_TRUE(k.routes[3].compare_text);
  EXPECT_EQ(k.routes[3].text, "42");
}

TEST(ServeConfigKafkaTest, ASingleEventsTopicAndEmbeddedMode) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(R"(
kafka: {embedded: true}
models:
  - name: m
    spec: {learner: logreg}
    kafka: {events_topic: in, predictions_topic: out}
)",
                                                   "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->kafka_embedded);
  EXPECT_EQ(c->models[0].kafka->events_topics, std::vector<std::string>{"in"});
  EXPECT_EQ(c->models[0].kafka->start, "earliest");
}

TEST(ServeConfigKafkaTest, ParsesTheCsvFormat) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(R"(
models:
  - name: fraud
    spec: {learner: logreg}
    kafka:
      events_topic: payments
      labels_topic: payments.labels
      predictions_topic: payments.predictions
      format: csv
      fields: {id: tx_id, key: card, time: ts, label: is_fraud}
      max_message_bytes: 4096
      csv:
        columns: [tx_id, card, ts, amount, zip, is_fraud]
        label_columns: [is_fraud, tx_id]
        delimiter: ";"
        text_columns: [zip]
)",
                                                   "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const KafkaModelOptions& k = *c->models[0].kafka;
  EXPECT_EQ(k.format, KafkaFormat::kCsv);
  EXPECT_EQ(k.csv.columns,
            (std::vector<std::string>{"tx_id", "card", "ts", "amount", "zip", "is_fraud"}));
  EXPECT_EQ(k.csv.label_columns, (std::vector<std::string>{"is_fraud", "tx_id"}));
  EXPECT_EQ(k.csv.delimiter, ';');
  EXPECT_EQ(k.csv.text_columns, std::vector<std::string>{"zip"});
  // The role options are the JSON decoder's, shared by both formats.
  EXPECT_EQ(k.decoder.id_field, "tx_id");
  EXPECT_EQ(k.decoder.time_fields, std::vector<std::string>{"ts"});
  EXPECT_EQ(k.decoder.max_message_bytes, 4096u);

  // Defaults: a comma, and the labels topic's header is the id and label fields.
  c = ParseServeConfig(R"(
models:
  - name: m
    spec: {learner: logreg}
    kafka:
      events_topic: in
      labels_topic: in.labels
      predictions_topic: out
      format: csv
      fields: {id: tx, label: y}
      csv: {columns: [tx, x, y]}
)",
                       "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->models[0].kafka->csv.delimiter, ',');
  EXPECT_TRUE(c->models[0].kafka->csv.label_columns.empty());

  // A tab, as YAML escapes it.
  c = ParseServeConfig(R"(
models:
  - name: m
    spec: {learner: logreg}
    kafka: {events_topic: in, predictions_topic: out, format: csv,
            csv: {columns: [id, x], delimiter: "\t"}}
)",
                       "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->models[0].kafka->csv.delimiter, '\t');
}

TEST(ServeConfigKafkaTest, CsvErrorsNameTheKey) {
  // Every case is a model's kafka section after "events_topic: in, predictions_topic: out".
  const std::pair<const char*, const char*> cases[] = {
      {"format: xml", "riffle.yaml: models[0].kafka.format: \"xml\" is not json or csv"},
      {"format: [csv]", "riffle.yaml: models[0].kafka.format: expected a string"},
      {"csv: {columns: [id, x]}", "riffle.yaml: models[0].kafka.csv: only with format: csv"},
      {"format: json, csv: {}", "riffle.yaml: models[0].kafka.csv: only with format: csv"},
      {"format: csv",
       "riffle.yaml: models[0].kafka.csv.columns: required with format csv (Kafka messages "
       "carry no header row)"},
      {"format: csv, csv: {columns: []}", "riffle.yaml: models[0].kafka.csv.columns: required"},
      {"format: csv, csv: {header: [id, x]}",
       "riffle.yaml: models[0].kafka.csv.header: unknown key (known here: columns, "
       "label_columns, delimiter, text_columns)"},
      {"format: csv, csv: {columns: {id: x}}",
       "riffle.yaml: models[0].kafka.csv.columns: expected a string or a list"},
      {"format: csv, csv: [id, x]", "riffle.yaml: models[0].kafka.csv: expected a mapping"},
      {"format: csv, csv: {columns: [x, y]}",
       "riffle.yaml: models[0].kafka.csv.columns: no id column \"id\" (require_id is set)"},
      {"format: csv, fields: {id: tx}, csv: {columns: [id, x]}",
       "riffle.yaml: models[0].kafka.csv.columns: no id column \"tx\""},
      {"format: csv, csv: {columns: [id, x, x]}",
       "riffle.yaml: models[0].kafka.csv.columns: column 3, \"x\", has the name of an earlier "
       "column"},
      {"format: csv, csv: {columns: [id, '', x]}",
       "riffle.yaml: models[0].kafka.csv.columns: column 2 has no name"},
      {"format: csv, csv: {columns: [id, time, event_time]}",
       "riffle.yaml: models[0].kafka.csv.columns: two event-time columns"},
      {"format: csv, csv: {columns: [id, x], delimiter: ';;'}",
       "riffle.yaml: models[0].kafka.csv.delimiter: expected one character, got \";;\""},
      {"format: csv, csv: {columns: [id, x], delimiter: '\"'}",
       "riffle.yaml: models[0].kafka.csv.delimiter: must not be a quote, CR or LF"},
      {"format: csv, csv: {columns: [id, x], text_columns: [zip]}",
       "riffle.yaml: models[0].kafka.csv.text_columns: \"zip\" is not a column of the header"},
      {"format: csv, csv: {columns: [id, x, zip], text_columns: [zip, zip]}",
       "riffle.yaml: models[0].kafka.csv.text_columns[1]: \"zip\" is given twice"},
      {"format: csv, csv: {columns: [id, x], label_columns: [id, label]}",
       "riffle.yaml: models[0].kafka.csv.label_columns: set, but there is no labels_topic"},
      {"labels_topic: l, format: csv, csv: {columns: [id, x], label_columns: [id, y]}",
       "riffle.yaml: models[0].kafka.csv.label_columns: no label column \"label\"; the labels "
       "topic's records need one"},
      {"labels_topic: l, format: csv, csv: {columns: [id, x], label_columns: [label]}",
       "riffle.yaml: models[0].kafka.csv.label_columns: no id column \"id\""},
      {"labels_topic: l, format: csv, csv: {columns: [id, x], label_columns: [id, label, id]}",
       "riffle.yaml: models[0].kafka.csv.label_columns: column 3, \"id\", has the name"},
  };
  for (const auto& [kafka, expected] : cases) {
    const std::string yaml = absl::StrFormat(
        "models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: in, "
        "predictions_topic: out, %s}}]",
        kafka);
    absl::StatusOr<ServeConfig> c = ParseServeConfig(yaml, "riffle.yaml");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_THAT(c.status().message(), HasSubstr(expected)) << yaml;
  }
}

TEST(ServeConfigKafkaTest, ErrorsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"kafka: {bootstrap: x}", "kafka.bootstrap: unknown key"},
      {"kafka: {batch_size: 0}", "kafka.batch_size"},
      {"kafka: {embedded: maybe}", "kafka.embedded"},
      {"kafka: {decode_thread: 2}", "kafka.decode_thread: expected true or false"},
      {"kafka: {properties: [a, b]}", "kafka.properties"},
      {"kafka: {backoff_min_seconds: 5, backoff_max_seconds: 1}", "backoff"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {predictions_topic: o}}]",
       "models[0].kafka.events_topics"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i}}]",
       "models[0].kafka.predictions_topic"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: i}}]",
       "loop"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: o, start: middle}}]",
       "models[0].kafka.start"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: o, routes: [{topic: t, field: x, op: '~', value: 1}]}}]",
       "models[0].kafka.routes[0].op"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: o, routes: [{topic: t}]}}]",
       "models[0].kafka.routes[0]"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: o, fields: {id: ''}}}]",
       "models[0].kafka.decoder"},
      {"models: [{name: m, spec: {learner: logreg}, kafka: {events_topic: i, "
       "predictions_topic: o, topic: x}}]",
       "models[0].kafka.topic: unknown key"},
  };
  for (const auto& [yaml, expected] : cases) {
    absl::StatusOr<ServeConfig> c = ParseServeConfig(yaml, "c.yaml");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_THAT(c.status().message(), HasSubstr(expected)) << yaml;
  }
}

// RunServer with a Kafka model over the fake cluster: the pipeline starts once gRPC serves,
// predicts and learns, and on stop its state is in the final checkpoint, offsets included.
TEST(ServeKafkaTest, RunServerRunsTheKafkaPathAndCheckpointsItsOffsets) {
  ScopedTempDir dir;
  FakeKafkaCluster cluster;
  for (const char* t : {"in", "out", "in.dlq"}) cluster.CreateTopic(t, 1);
  for (int i = 0; i < 50; ++i) {
    cluster.Append("in", 0, std::to_string(i),
                   absl::StrFormat(R"({"id":"%d","x0":%d,"label":"%d"})", i, i % 2, i % 2));
  }
  ServeConfig config;
  config.server.listen = "127.0.0.1:0";
  config.checkpoint_dir = dir.path();
  config.kafka.properties["bootstrap.servers"] = "fake:9092";
  config.kafka.backoff_min_seconds = 0.01;
  DeclaredModel declared;
  declared.name = "m";
  declared.spec = LogregSpec();
  KafkaModelOptions k;
  k.events_topics = {"in"};
  k.predictions_topic = "out";
  declared.kafka = k;
  config.models.push_back(declared);
  KafkaClientFactory factory;
  factory.new_consumer =
      [&cluster](const KafkaConsumerOptions& o) -> absl::StatusOr<std::unique_ptr<KafkaConsumer>> {
    EXPECT_EQ(o.properties.at("bootstrap.servers"), "fake:9092");
    return cluster.NewConsumer(o.properties.at("group.id"));
  };
  factory.new_producer =
      [&cluster](const KafkaProducerOptions&) -> absl::StatusOr<std::unique_ptr<KafkaProducer>> {
    return cluster.NewProducer();
  };

  std::atomic<bool> stop{false};
  absl::Status result = absl::UnknownError("not finished");
  std::thread serve(
      [&] { result = RunServer(config, NullLogger(), &stop, checkpoints::DefaultEnv(), factory); });
  for (int i = 0; i < 800 && cluster.Records("out", 0).size() < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  stop = true;
  serve.join();
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(cluster.Records("out", 0).size(), 50u);
  // The final checkpoint holds the 50 learned events and the offset after them.
  checkpoints::CheckpointStoreOptions store_options;
  store_options.dir = dir.path() + "/m";
  auto store = checkpoints::CheckpointStore::Open(checkpoints::DefaultEnv(), store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto state = checkpoints::ParseModelState(loaded->payload);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->counters.labeled, 50u);
  EXPECT_EQ(state->next_offsets.at("in/0"), 50);
}

TEST(ServeKafkaTest, AKafkaModelNeedsBrokersAndAKafkaClient) {
  ServeConfig config;
  config.server.listen = "127.0.0.1:0";
  DeclaredModel declared;
  declared.name = "m";
  declared.spec = LogregSpec();
  KafkaModelOptions k;
  k.events_topics = {"in"};
  k.predictions_topic = "out";
  declared.kafka = k;
  config.models.push_back(declared);
  std::atomic<bool> stop{true};
  absl::Status s = RunServer(config, NullLogger(), &stop, checkpoints::DefaultEnv());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no brokers"));
  config.kafka.properties["bootstrap.servers"] = "x:1";
  s = RunServer(config, NullLogger(), &stop, checkpoints::DefaultEnv());  // an empty factory
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("no Kafka client"));
}

}  // namespace
}  // namespace riffle::service
