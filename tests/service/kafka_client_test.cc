// Tests of service/kafka_client.h: the in-memory fake (FakeKafka*), the real librdkafka clients
// against librdkafka's in-process mock cluster (KafkaClient*), and against a real Apache Kafka
// broker (KafkaRealBroker*, CTest test kafka_integration, labels kafka;integration).
//
// Every test runs under a watchdog (main, at the bottom): rd_kafka_destroy() waits forever for
// any librdkafka object left alive, and a hung test must fail, not stall CI.

#include "service/kafka_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/logger.h"
#include "tests/service/fake_kafka.h"

namespace riffle::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Unique per process and call, so tests sharing a broker never see each other's records.
std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrFormat("%s-%d-%d-%d", prefix, getpid(), absl::ToUnixSeconds(absl::Now()),
                         counter++);
}

// Polls until `count` records arrived or `timeout` passed (or, with kStopOnError, the first
// error); errors are collected, not fatal.
struct Consumed {
  std::vector<KafkaRecord> records;
  std::vector<absl::Status> errors;
};
enum class OnError { kContinue, kStop };
Consumed PollUntil(KafkaConsumer& consumer, std::size_t count, absl::Duration timeout,
                   OnError on_error = OnError::kContinue) {
  Consumed out;
  KafkaRecordBatch batch;
  absl::Time deadline = absl::Now() + timeout;
  while (out.records.size() < count && absl::Now() < deadline) {
    absl::Status s = consumer.Poll(count - out.records.size(), absl::Milliseconds(100), &batch);
    for (const KafkaRecord& r : batch) out.records.push_back(r);
    if (!s.ok()) {
      out.errors.push_back(s);
      if (on_error == OnError::kStop) break;
    }
  }
  return out;
}

// Serves delivery reports until `count` arrived or `timeout` passed.
std::vector<KafkaDeliveryReport> AwaitReports(KafkaProducer& producer, std::size_t count,
                                              absl::Duration timeout) {
  std::vector<KafkaDeliveryReport> reports;
  absl::Time deadline = absl::Now() + timeout;
  while (reports.size() < count && absl::Now() < deadline) {
    producer.PollDeliveries(absl::Milliseconds(100), &reports);
  }
  return reports;
}

// Collects log lines (librdkafka logs from its own threads).
class CapturingLogger : public Logger {
 public:
  void Log(LogLevel level, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(message);
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------------
// The fake: the behaviour the pipeline's unit tests will rely on.

TEST(FakeKafkaTest, ProducedRecordsAreConsumedWithReportsAndHeaders) {
  testing::FakeKafkaCluster cluster;
  cluster.CreateTopic("events", 2);
  auto producer = cluster.NewProducer();
  auto consumer = cluster.NewConsumer("g");
  KafkaHeaderView headers[] = {{"source", "test"}};
  ASSERT_TRUE(producer
                  ->Produce({.topic = "events",
                             .partition = 1,
                             .key = "id-1",
                             .value = "v1",
                             .headers = headers,
                             .token = 7})
                  .ok());
  EXPECT_EQ(producer->InFlight(), 1u);
  std::vector<KafkaDeliveryReport> reports;
  producer->PollDeliveries(absl::ZeroDuration(), &reports);
  ASSERT_THAT(reports, SizeIs(1));
  EXPECT_TRUE(reports[0].status.ok());
  EXPECT_EQ(reports[0].token, 7u);
  EXPECT_EQ(reports[0].partition, 1);
  EXPECT_EQ(reports[0].offset, 0);

  KafkaTopicPartitionOffset assignment[] = {{"events", 1, kKafkaOffsetBeginning}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());
  KafkaRecordBatch batch;
  ASSERT_TRUE(consumer->Poll(10, absl::ZeroDuration(), &batch).ok());
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].key, "id-1");
  EXPECT_EQ(batch[0].value, "v1");
  EXPECT_THAT(batch[0].headers, ElementsAre(KafkaHeader{"source", "test"}));
}

TEST(FakeKafkaTest, OutageHoldsDeliveriesAndFailsPolls) {
  testing::FakeKafkaCluster cluster;
  cluster.CreateTopic("events", 1);
  auto producer = cluster.NewProducer();
  auto consumer = cluster.NewConsumer("g");
  KafkaTopicPartitionOffset assignment[] = {{"events", 0, 0}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());

  cluster.SetDown(true);
  ASSERT_TRUE(producer->Produce({.topic = "events", .value = "a", .token = 1}).ok());
  EXPECT_EQ(producer->Flush(absl::ZeroDuration()).code(), absl::StatusCode::kDeadlineExceeded);
  KafkaRecordBatch batch;
  EXPECT_EQ(consumer->Poll(10, absl::ZeroDuration(), &batch).code(),
            absl::StatusCode::kUnavailable);

  cluster.SetDown(false);
  ASSERT_TRUE(producer->Flush(absl::ZeroDuration()).ok());
  ASSERT_TRUE(consumer->Poll(10, absl::ZeroDuration(), &batch).ok());
  EXPECT_EQ(batch.size(), 1u);

  // A record that cannot be delivered comes back in its report.
  cluster.SetDown(true);
  ASSERT_TRUE(producer->Produce({.topic = "events", .key = "k", .value = "b", .token = 2}).ok());
  cluster.ExpireInFlight();
  std::vector<KafkaDeliveryReport> reports;
  producer->PollDeliveries(absl::ZeroDuration(), &reports);
  ASSERT_THAT(reports, SizeIs(2));
  EXPECT_EQ(reports[1].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reports[1].key, "k");
  EXPECT_EQ(reports[1].value, "b");
}

TEST(FakeKafkaTest, AssignOutsideTheLogIsOutOfRangeAndCommitsAreKept) {
  testing::FakeKafkaCluster cluster;
  for (int i = 0; i < 5; ++i) cluster.Append("events", 0, std::nullopt, "x");
  cluster.SetLogStart("events", 0, 3);
  auto consumer = cluster.NewConsumer("g");
  KafkaTopicPartitionOffset old_checkpoint[] = {{"events", 0, 1}};
  ASSERT_TRUE(consumer->Assign(old_checkpoint).ok());
  KafkaRecordBatch batch;
  EXPECT_EQ(consumer->Poll(10, absl::ZeroDuration(), &batch).code(), absl::StatusCode::kOutOfRange);

  KafkaTopicPartitionOffset next[] = {{"events", 0, 4}};
  ASSERT_TRUE(consumer->Assign(next).ok());
  ASSERT_TRUE(consumer->Poll(10, absl::ZeroDuration(), &batch).ok());
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].offset, 4);
  ASSERT_TRUE(consumer->Commit(next, absl::Seconds(1)).ok());
  EXPECT_EQ(cluster.Committed("g", "events", 0), 4);
  auto watermarks = consumer->QueryWatermarks("events", 0, absl::Seconds(1));
  ASSERT_TRUE(watermarks.ok());
  EXPECT_EQ(watermarks->low, 3);
  EXPECT_EQ(watermarks->high, 5);
}

// ---------------------------------------------------------------------------------------------
// The real clients on librdkafka's mock cluster.

class KafkaClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = KafkaMockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    topic_ = UniqueName("events");
    ASSERT_TRUE(cluster_->CreateTopic(topic_, 2, 1).ok());
  }

  KafkaProperties Common() const {
    return {{"bootstrap.servers", cluster_->bootstrap_servers()},
            // Reconnect quickly after an injected outage.
            {"reconnect.backoff.ms", "50"},
            {"reconnect.backoff.max.ms", "200"}};
  }

  std::unique_ptr<KafkaProducer> NewProducer(KafkaProperties extra = {}) {
    KafkaProducerOptions options;
    options.properties = Common();
    options.properties.merge(extra);
    auto producer = NewKafkaProducer(options);
    EXPECT_TRUE(producer.ok()) << producer.status();
    return producer.ok() ? std::move(*producer) : nullptr;
  }

  std::unique_ptr<KafkaConsumer> NewConsumer(KafkaProperties extra = {}) {
    KafkaConsumerOptions options;
    options.properties = Common();
    options.properties["group.id"] = "riffle-test";
    options.properties.merge(extra);
    auto consumer = NewKafkaConsumer(options);
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    return consumer.ok() ? std::move(*consumer) : nullptr;
  }

  // Produces values "v<i>" keyed "k<i>" to `partition` and waits for every report.
  void ProduceValues(KafkaProducer& producer, std::int32_t partition, int begin, int end) {
    for (int i = begin; i < end; ++i) {
      std::string key = absl::StrFormat("k%d", i);
      std::string value = absl::StrFormat("v%d", i);
      ASSERT_TRUE(producer
                      .Produce({.topic = topic_,
                                .partition = partition,
                                .key = key,
                                .value = value,
                                .token = static_cast<std::uint64_t>(i)})
                      .ok());
    }
    ASSERT_TRUE(producer.Flush(absl::Seconds(10)).ok());
    std::vector<KafkaDeliveryReport> reports;
    producer.PollDeliveries(absl::ZeroDuration(), &reports);
    ASSERT_THAT(reports, SizeIs(end - begin));
    for (const KafkaDeliveryReport& r : reports) ASSERT_TRUE(r.status.ok()) << r.status;
  }

  // Declared first, destroyed last: clients go before the cluster.
  std::unique_ptr<KafkaMockCluster> cluster_;
  std::string topic_;
};

TEST_F(KafkaClientTest, RejectsBadOptionsWithTheirName) {
  KafkaConsumerOptions consumer;
  consumer.properties = {{"group.id", "g"}};
  EXPECT_THAT(NewKafkaConsumer(consumer).status().message(), HasSubstr("bootstrap.servers"));
  consumer.properties = Common();
  EXPECT_THAT(NewKafkaConsumer(consumer).status().message(), HasSubstr("group.id"));
  consumer.properties["group.id"] = "g";
  consumer.properties["enable.auto.commit"] = "true";
  auto s = NewKafkaConsumer(consumer).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("enable.auto.commit"));
  consumer.properties.erase("enable.auto.commit");
  consumer.properties["no.such.property"] = "1";
  s = NewKafkaConsumer(consumer).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no.such.property"));

  KafkaProducerOptions producer;
  producer.properties = Common();
  producer.properties["enable.idempotence"] = "false";
  EXPECT_THAT(NewKafkaProducer(producer).status().message(), HasSubstr("enable.idempotence"));
  // Repeating a required value is fine.
  producer.properties["enable.idempotence"] = "true";
  EXPECT_TRUE(NewKafkaProducer(producer).ok());
}

// What a consumer and a producer are configured with: Riffle's defaults (overridable), the
// caller's properties, and Riffle's requirements (not overridable).
TEST(KafkaPropertiesTest, DefaultsThenTheCallersThenTheRequiredOnes) {
  absl::StatusOr<KafkaProperties> consumer =
      KafkaConsumerProperties({{"bootstrap.servers", "b:9092"}, {"group.id", "g"}});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(*consumer, (KafkaProperties{
                           {"bootstrap.servers", "b:9092"},
                           {"group.id", "g"},
                           {"auto.offset.reset", "error"},
                           {"enable.partition.eof", "false"},
                           {"allow.auto.create.topics", "false"},
                           {"client.id", "riffle"},
                           {"queued.min.messages", "10000000"},
                           {"queued.max.messages.kbytes", "262144"},
                           {"enable.auto.commit", "false"},
                           {"enable.auto.offset.store", "false"},
                           {"isolation.level", "read_committed"},
                       }));
  // A default gives way; a required value may be repeated but not changed.
  consumer = KafkaConsumerProperties({{"bootstrap.servers", "b:9092"},
                                      {"group.id", "g"},
                                      {"queued.max.messages.kbytes", "65536"},
                                      {"client.id", "scorer"},
                                      {"isolation.level", "read_committed"}});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(consumer->at("queued.max.messages.kbytes"), "65536");
  EXPECT_EQ(consumer->at("client.id"), "scorer");
  EXPECT_EQ(consumer->at("queued.min.messages"), "10000000");
  for (const auto& [name, value] :
       {std::pair<std::string, std::string>{"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "true"},
        {"isolation.level", "read_uncommitted"}}) {
    const absl::Status s =
        KafkaConsumerProperties({{"bootstrap.servers", "b:9092"}, {"group.id", "g"}, {name, value}})
            .status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), HasSubstr(name));
  }
  EXPECT_THAT(KafkaConsumerProperties({{"bootstrap.servers", "b:9092"}}).status().message(),
              HasSubstr("group.id"));
  EXPECT_THAT(KafkaConsumerProperties({{"group.id", "g"}}).status().message(),
              HasSubstr("bootstrap.servers"));

  absl::StatusOr<KafkaProperties> producer =
      KafkaProducerProperties({{"bootstrap.servers", "b:9092"}, {"linger.ms", "20"}});
  ASSERT_TRUE(producer.ok()) << producer.status();
  EXPECT_EQ(*producer, (KafkaProperties{
                           {"bootstrap.servers", "b:9092"},
                           {"partitioner", "murmur2_random"},
                           {"linger.ms", "20"},
                           {"client.id", "riffle"},
                           {"enable.idempotence", "true"},
                       }));
  EXPECT_THAT(
      KafkaProducerProperties({{"bootstrap.servers", "b:9092"}, {"enable.idempotence", "false"}})
          .status()
          .message(),
      HasSubstr("enable.idempotence"));
}

TEST_F(KafkaClientTest, ProducesAndConsumesRecordsWithKeysHeadersAndTimestamps) {
  CapturingLogger logger;
  KafkaProducerOptions options;
  options.properties = Common();
  options.logger = &logger;
  auto producer = NewKafkaProducer(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  KafkaHeaderView headers[] = {{"error", "bad json"}, {"empty", ""}};
  ASSERT_TRUE((*producer)
                  ->Produce({.topic = topic_,
                             .partition = 0,
                             .key = "id-1",
                             .value = R"({"x":1})",
                             .headers = headers,
                             .timestamp_ms = 1'700'000'000'000,
                             .token = 41})
                  .ok());
  ASSERT_TRUE(
      (*producer)->Produce({.topic = topic_, .partition = 1, .value = "", .token = 42}).ok());
  std::vector<KafkaDeliveryReport> reports = AwaitReports(**producer, 2, absl::Seconds(10));
  ASSERT_THAT(reports, SizeIs(2));
  EXPECT_EQ((*producer)->InFlight(), 0u);
  for (const KafkaDeliveryReport& r : reports) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.topic, topic_);
    EXPECT_EQ(r.offset, 0);
    EXPECT_EQ(r.partition, r.token == 41 ? 0 : 1);
  }

  auto consumer = NewConsumer();
  KafkaTopicPartitionOffset assignment[] = {{topic_, 0, kKafkaOffsetBeginning},
                                            {topic_, 1, kKafkaOffsetBeginning}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());
  Consumed got = PollUntil(*consumer, 2, absl::Seconds(10));
  ASSERT_THAT(got.records, SizeIs(2));
  EXPECT_THAT(got.errors, ::testing::IsEmpty());
  const KafkaRecord& first = got.records[0].partition == 0 ? got.records[0] : got.records[1];
  const KafkaRecord& second = got.records[0].partition == 0 ? got.records[1] : got.records[0];
  EXPECT_EQ(first.topic, topic_);
  EXPECT_EQ(first.offset, 0);
  EXPECT_EQ(first.key, "id-1");
  EXPECT_EQ(first.value, R"({"x":1})");
  EXPECT_EQ(first.timestamp_ms, 1'700'000'000'000);
  EXPECT_THAT(first.headers,
              ElementsAre(KafkaHeader{"error", "bad json"}, KafkaHeader{"empty", ""}));
  EXPECT_EQ(second.key, std::nullopt);
  EXPECT_EQ(second.value, "");
  EXPECT_TRUE(second.headers.empty());
  EXPECT_GT(second.timestamp_ms, 0);
}

TEST_F(KafkaClientTest, AConsumerThatDoesNotReadHeadersLeavesThemEmpty) {
  auto producer = NewProducer();
  KafkaHeaderView headers[] = {{"trace", "abc"}};
  ASSERT_TRUE(
      producer->Produce({.topic = topic_, .partition = 0, .value = "v", .headers = headers}).ok());
  ASSERT_THAT(AwaitReports(*producer, 1, absl::Seconds(10)), SizeIs(1));
  for (const bool read : {false, true}) {
    KafkaConsumerOptions options;
    options.properties = Common();
    options.properties["group.id"] = "riffle-test";
    options.read_headers = read;
    auto consumer = NewKafkaConsumer(options);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    KafkaTopicPartitionOffset assignment[] = {{topic_, 0, kKafkaOffsetBeginning}};
    ASSERT_TRUE((*consumer)->Assign(assignment).ok());
    Consumed got = PollUntil(**consumer, 1, absl::Seconds(10));
    ASSERT_THAT(got.records, SizeIs(1));
    EXPECT_EQ(got.records[0].value, "v");
    if (read) {
      EXPECT_THAT(got.records[0].headers, ElementsAre(KafkaHeader{"trace", "abc"}));
    } else {
      EXPECT_TRUE(got.records[0].headers.empty());
    }
  }
}

TEST_F(KafkaClientTest, OneKeyAlwaysLandsOnOnePartition) {
  // The label join and per-key windows need every record of an id on one partition.
  auto producer = NewProducer();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(producer->Produce({.topic = topic_, .key = i % 2 ? "a" : "b", .value = "x"}).ok());
  }
  std::vector<KafkaDeliveryReport> reports = AwaitReports(*producer, 6, absl::Seconds(10));
  ASSERT_THAT(reports, SizeIs(6));
  for (int i = 2; i < 6; ++i) EXPECT_EQ(reports[i].partition, reports[i % 2].partition);
}

TEST_F(KafkaClientTest, AssignsAtAnExplicitOffset) {
  auto producer = NewProducer();
  ProduceValues(*producer, 0, 0, 10);
  auto consumer = NewConsumer();
  // A checkpoint that applied offsets 0..6 stores next offset 7.
  KafkaTopicPartitionOffset checkpoint[] = {{topic_, 0, 7}};
  ASSERT_TRUE(consumer->Assign(checkpoint).ok());
  Consumed got = PollUntil(*consumer, 3, absl::Seconds(10));
  ASSERT_THAT(got.records, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got.records[i].offset, 7 + i);
    EXPECT_EQ(got.records[i].value, absl::StrFormat("v%d", 7 + i));
  }
  // Nothing more, and a re-assignment starts over where it says.
  KafkaRecordBatch batch;
  EXPECT_TRUE(consumer->Poll(10, absl::Milliseconds(200), &batch).ok());
  EXPECT_TRUE(batch.empty());
  KafkaTopicPartitionOffset again[] = {{topic_, 0, 9}};
  ASSERT_TRUE(consumer->Assign(again).ok());
  got = PollUntil(*consumer, 1, absl::Seconds(10));
  ASSERT_THAT(got.records, SizeIs(1));
  EXPECT_EQ(got.records[0].offset, 9);
}

TEST_F(KafkaClientTest, AnOffsetOutsideTheLogIsOutOfRange) {
  auto producer = NewProducer();
  ProduceValues(*producer, 0, 0, 3);
  auto consumer = NewConsumer();
  KafkaTopicPartitionOffset future[] = {{topic_, 0, 100}};
  ASSERT_TRUE(consumer->Assign(future).ok());
  Consumed got = PollUntil(*consumer, 1, absl::Seconds(10), OnError::kStop);
  EXPECT_THAT(got.records, ::testing::IsEmpty());
  ASSERT_THAT(got.errors, ::testing::Not(::testing::IsEmpty()));
  EXPECT_EQ(got.errors[0].code(), absl::StatusCode::kOutOfRange) << got.errors[0];
}

TEST_F(KafkaClientTest, CommitsOffsetsAndReportsWatermarks) {
  auto producer = NewProducer();
  ProduceValues(*producer, 1, 0, 5);
  auto consumer = NewConsumer();
  auto partitions = consumer->PartitionCount(topic_, absl::Seconds(5));
  ASSERT_TRUE(partitions.ok()) << partitions.status();
  EXPECT_EQ(*partitions, 2);
  auto watermarks = consumer->QueryWatermarks(topic_, 1, absl::Seconds(5));
  ASSERT_TRUE(watermarks.ok()) << watermarks.status();
  EXPECT_EQ(watermarks->low, 0);
  EXPECT_EQ(watermarks->high, 5);

  KafkaTopicPartitionOffset next[] = {{topic_, 1, 3}};
  ASSERT_TRUE(consumer->Commit(next, absl::Seconds(10)).ok());
  KafkaTopicPartitionOffset negative[] = {{topic_, 1, kKafkaOffsetEnd}};
  EXPECT_EQ(consumer->Commit(negative, absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);

  // A second member of the group starting from the committed offset sees records 3 and 4.
  auto monitor = NewConsumer();
  KafkaTopicPartitionOffset committed[] = {{topic_, 1, kKafkaOffsetCommitted}};
  ASSERT_TRUE(monitor->Assign(committed).ok());
  Consumed got = PollUntil(*monitor, 2, absl::Seconds(10));
  ASSERT_THAT(got.records, SizeIs(2));
  EXPECT_EQ(got.records[0].offset, 3);
  EXPECT_EQ(got.records[1].offset, 4);
}

TEST_F(KafkaClientTest, PausedPartitionsAreNotFetchedUntilResumed) {
  auto producer = NewProducer();
  auto consumer = NewConsumer();
  KafkaTopicPartitionOffset assignment[] = {{topic_, 0, 0}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());
  KafkaTopicPartition partition[] = {{topic_, 0}};
  ASSERT_TRUE(consumer->Pause(partition).ok());
  ProduceValues(*producer, 0, 0, 3);
  Consumed got = PollUntil(*consumer, 3, absl::Milliseconds(700));
  EXPECT_THAT(got.records, ::testing::IsEmpty());
  ASSERT_TRUE(consumer->Resume(partition).ok());
  got = PollUntil(*consumer, 3, absl::Seconds(10));
  ASSERT_THAT(got.records, SizeIs(3));
  EXPECT_EQ(got.records[0].offset, 0);
}

TEST_F(KafkaClientTest, UnknownTopicIsNotFound) {
  // The mock cluster creates any topic a metadata request names, so make it answer as a broker
  // without the topic does (the real-broker test checks a truly missing topic).
  const std::string missing = UniqueName("missing");
  rd_kafka_mock_topic_set_error(static_cast<rd_kafka_mock_cluster_t*>(cluster_->handle()),
                                missing.c_str(), RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto consumer = NewConsumer();
  auto partitions = consumer->PartitionCount(missing, absl::Seconds(5));
  EXPECT_EQ(partitions.status().code(), absl::StatusCode::kNotFound) << partitions.status();
  EXPECT_THAT(partitions.status().message(), HasSubstr(missing));
}

TEST_F(KafkaClientTest, ProducerQueueFullIsResourceExhausted) {
  auto producer = NewProducer({{"queue.buffering.max.messages", "1"}, {"linger.ms", "1000"}});
  ASSERT_TRUE(producer->Produce({.topic = topic_, .partition = 0, .value = "a"}).ok());
  absl::Status s = producer->Produce({.topic = topic_, .partition = 0, .value = "b"});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(producer->Flush(absl::Seconds(10)).ok());
}

TEST_F(KafkaClientTest, BrokerDownThenUpLosesNothing) {
  // Records that cannot be delivered in time come back in their reports.
  auto producer = NewProducer({{"message.timeout.ms", "1500"}});
  auto consumer = NewConsumer();
  KafkaTopicPartitionOffset assignment[] = {{topic_, 0, 0}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());
  ProduceValues(*producer, 0, 0, 3);
  ASSERT_THAT(PollUntil(*consumer, 3, absl::Seconds(10)).records, SizeIs(3));

  ASSERT_TRUE(cluster_->SetBrokerDown(1).ok());
  // The consumer reports the outage as Unavailable.
  Consumed during = PollUntil(*consumer, 1, absl::Seconds(10), OnError::kStop);
  EXPECT_THAT(during.records, ::testing::IsEmpty());
  ASSERT_THAT(during.errors, ::testing::Not(::testing::IsEmpty()));
  EXPECT_EQ(during.errors[0].code(), absl::StatusCode::kUnavailable) << during.errors[0];
  // A record produced now times out and is handed back, bytes intact.
  KafkaHeaderView headers[] = {{"h", "1"}};
  ASSERT_TRUE(producer
                  ->Produce({.topic = topic_,
                             .partition = 0,
                             .key = "lost",
                             .value = "payload",
                             .headers = headers,
                             .token = 99})
                  .ok());
  std::vector<KafkaDeliveryReport> failed = AwaitReports(*producer, 1, absl::Seconds(10));
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_EQ(failed[0].token, 99u);
  EXPECT_EQ(failed[0].status.code(), absl::StatusCode::kUnavailable) << failed[0].status;
  EXPECT_EQ(failed[0].key, "lost");
  EXPECT_EQ(failed[0].value, "payload");
  EXPECT_THAT(failed[0].headers, ElementsAre(KafkaHeader{"h", "1"}));
  // Metadata calls fail as Unavailable too.
  EXPECT_EQ(consumer->PartitionCount(topic_, absl::Milliseconds(500)).status().code(),
            absl::StatusCode::kUnavailable);

  ASSERT_TRUE(cluster_->SetBrokerUp(1).ok());
  // The retry the pipeline would do, then new records: the consumer resumes at offset 3.
  ASSERT_TRUE(producer
                  ->Produce({.topic = topic_,
                             .partition = 0,
                             .key = *failed[0].key,
                             .value = failed[0].value,
                             .token = 99})
                  .ok());
  std::vector<KafkaDeliveryReport> retried = AwaitReports(*producer, 1, absl::Seconds(20));
  ASSERT_THAT(retried, SizeIs(1));
  EXPECT_TRUE(retried[0].status.ok()) << retried[0].status;
  EXPECT_EQ(retried[0].offset, 3);
  Consumed after = PollUntil(*consumer, 1, absl::Seconds(20));
  ASSERT_THAT(after.records, SizeIs(1));
  EXPECT_EQ(after.records[0].offset, 3);
  EXPECT_EQ(after.records[0].value, "payload");
}

TEST_F(KafkaClientTest, ClientsCloseQuicklyWhileTheBrokerIsDown) {
  // Graceful shutdown during an outage must not hang: the consumer leaves no group to
  // rebalance and the producer drops what it could not deliver.
  auto producer = NewProducer();
  auto consumer = NewConsumer();
  KafkaTopicPartitionOffset assignment[] = {{topic_, 0, 0}};
  ASSERT_TRUE(consumer->Assign(assignment).ok());
  ProduceValues(*producer, 0, 0, 1);
  ASSERT_THAT(PollUntil(*consumer, 1, absl::Seconds(10)).records, SizeIs(1));
  ASSERT_TRUE(cluster_->SetBrokerDown(1).ok());
  ASSERT_TRUE(producer->Produce({.topic = topic_, .partition = 0, .value = "stuck"}).ok());
  absl::Time start = absl::Now();
  consumer.reset();
  producer.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// ---------------------------------------------------------------------------------------------
// Against a real Apache Kafka broker: RIFFLE_KAFKA_BOOTSTRAP if set (scripts/
// test_kafka_integration.sh sets it), else one started here with scripts/kafka.sh for the
// suite. If neither works every test fails; none is skipped.

class KafkaRealBroker : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (const char* env = std::getenv("RIFFLE_KAFKA_BOOTSTRAP"); env != nullptr && *env) {
      *bootstrap_ = env;
      return;
    }
    char dir_template[] = "/tmp/riffle-kafka-test.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      *start_error_ = "mkdtemp failed";
      return;
    }
    *broker_dir_ = dir_template;
    std::string command =
        absl::StrFormat("bash '%s' start '%s'", RIFFLE_KAFKA_SCRIPT, *broker_dir_);
    absl::Time started = absl::Now();
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[256];
    while (pipe != nullptr && fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
    int rc = pipe != nullptr ? pclose(pipe) : -1;
    if (rc > 0 && WIFEXITED(rc)) rc = WEXITSTATUS(rc);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (rc != 0 || out.empty()) {
      *start_error_ = absl::StrFormat(
          "`%s` failed (exit %d); set RIFFLE_KAFKA_BOOTSTRAP to use a running broker", command, rc);
      return;
    }
    *bootstrap_ = out;
    std::fprintf(stderr, "real Kafka broker at %s, started in %s\n", out.c_str(),
                 absl::FormatDuration(absl::Now() - started).c_str());
  }

  static void TearDownTestSuite() { StopOwnBroker(); }

  void SetUp() override {
    ASSERT_FALSE(bootstrap_->empty())
        << "no real Kafka broker: " << *start_error_
        << " (this test never skips: it is the kafka;integration CTest label)";
  }

 public:
  // Also called by the watchdog before it ends a hung process.
  static void StopOwnBroker() {
    if (broker_dir_->empty()) return;
    std::string command = absl::StrFormat("bash '%s' stop '%s' && rm -rf '%s'", RIFFLE_KAFKA_SCRIPT,
                                          *broker_dir_, *broker_dir_);
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "failed to stop the broker in %s\n", broker_dir_->c_str());
    }
    broker_dir_->clear();
  }

 protected:
  KafkaProperties Properties() const { return {{"bootstrap.servers", *bootstrap_}}; }

  static inline std::string* const bootstrap_ = new std::string;
  static inline std::string* const start_error_ = new std::string;
  static inline std::string* const broker_dir_ = new std::string;
};

TEST_F(KafkaRealBroker, ProducesConsumesCommitsAndReportsLag) {
  const std::string topic = UniqueName("riffle-it-events");
  ASSERT_TRUE(CreateKafkaTopic(Properties(), topic, 3, 1, absl::Seconds(30)).ok());
  EXPECT_EQ(CreateKafkaTopic(Properties(), topic, 3, 1, absl::Seconds(30)).code(),
            absl::StatusCode::kAlreadyExists);

  KafkaProducerOptions producer_options;
  producer_options.properties = Properties();
  auto producer = NewKafkaProducer(producer_options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  constexpr int kRecords = 1000;
  for (int i = 0; i < kRecords; ++i) {
    std::string key = absl::StrFormat("id-%d", i);
    std::string value = absl::StrFormat(R"({"id":"id-%d","x":%d})", i, i);
    KafkaHeaderView headers[] = {{"seq", key}};
    ASSERT_TRUE((*producer)
                    ->Produce({.topic = topic,
                               .key = key,
                               .value = value,
                               .headers = headers,
                               .token = static_cast<std::uint64_t>(i)})
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(60)).ok());
  std::vector<KafkaDeliveryReport> reports;
  (*producer)->PollDeliveries(absl::ZeroDuration(), &reports);
  ASSERT_THAT(reports, SizeIs(kRecords));
  std::vector<std::int32_t> partition_of(kRecords, -1);
  for (const KafkaDeliveryReport& r : reports) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    partition_of[r.token] = r.partition;
  }

  KafkaConsumerOptions consumer_options;
  consumer_options.properties = Properties();
  consumer_options.properties["group.id"] = UniqueName("riffle-it-group");
  auto consumer = NewKafkaConsumer(consumer_options);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto partitions = (*consumer)->PartitionCount(topic, absl::Seconds(10));
  ASSERT_TRUE(partitions.ok()) << partitions.status();
  ASSERT_EQ(*partitions, 3);
  std::vector<KafkaTopicPartitionOffset> assignment;
  for (int p = 0; p < 3; ++p) assignment.push_back({topic, p, kKafkaOffsetBeginning});
  ASSERT_TRUE((*consumer)->Assign(assignment).ok());
  Consumed got = PollUntil(**consumer, kRecords, absl::Seconds(60));
  ASSERT_THAT(got.records, SizeIs(kRecords));
  std::vector<std::int64_t> next(3, 0);
  std::vector<bool> seen(kRecords, false);
  for (const KafkaRecord& r : got.records) {
    ASSERT_TRUE(r.key.has_value());
    int id = std::stoi(r.key->substr(3));
    EXPECT_FALSE(seen[id]) << "duplicate " << *r.key;
    seen[id] = true;
    EXPECT_EQ(r.partition, partition_of[id]);
    EXPECT_EQ(r.offset, next[r.partition]) << "offsets of one partition arrive in order";
    next[r.partition] = r.offset + 1;
    EXPECT_EQ(r.value, absl::StrFormat(R"({"id":"id-%d","x":%d})", id, id));
    EXPECT_THAT(r.headers, ElementsAre(KafkaHeader{"seq", *r.key}));
  }

  // Commit the next offsets (what a checkpoint would store) and read the lag back.
  std::vector<KafkaTopicPartitionOffset> committed;
  for (int p = 0; p < 3; ++p) committed.push_back({topic, p, next[p]});
  ASSERT_TRUE((*consumer)->Commit(committed, absl::Seconds(30)).ok());
  std::int64_t total = 0;
  for (int p = 0; p < 3; ++p) {
    auto w = (*consumer)->QueryWatermarks(topic, p, absl::Seconds(10));
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_EQ(w->high, next[p]) << "lag 0 on partition " << p;
    total += w->high - w->low;
  }
  EXPECT_EQ(total, kRecords);

  // A restart at a checkpoint's offsets sees exactly the records after them.
  auto restarted = NewKafkaConsumer(consumer_options);
  ASSERT_TRUE(restarted.ok());
  std::int64_t resume_at = next[0] / 2;
  KafkaTopicPartitionOffset resume[] = {{topic, 0, resume_at}};
  ASSERT_TRUE((*restarted)->Assign(resume).ok());
  got = PollUntil(**restarted, static_cast<std::size_t>(next[0] - resume_at), absl::Seconds(30));
  ASSERT_THAT(got.records, SizeIs(next[0] - resume_at));
  EXPECT_EQ(got.records.front().offset, resume_at);
  // And the group's committed offset is where monitoring expects it.
  auto monitor = NewKafkaConsumer(consumer_options);
  ASSERT_TRUE(monitor.ok());
  KafkaTopicPartitionOffset from_group[] = {{topic, 0, kKafkaOffsetCommitted}};
  ASSERT_TRUE((*monitor)->Assign(from_group).ok());
  KafkaRecordBatch batch;
  EXPECT_TRUE((*monitor)->Poll(10, absl::Seconds(1), &batch).ok());
  EXPECT_TRUE(batch.empty()) << "committed offset is the end of partition 0";
}

TEST_F(KafkaRealBroker, UnknownTopicAndOffsetBeyondTheLogFailLoudly) {
  KafkaConsumerOptions options;
  options.properties = Properties();
  options.properties["group.id"] = UniqueName("riffle-it-group");
  auto consumer = NewKafkaConsumer(options);
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ((*consumer)->PartitionCount(UniqueName("missing"), absl::Seconds(10)).status().code(),
            absl::StatusCode::kNotFound);

  const std::string topic = UniqueName("riffle-it-range");
  ASSERT_TRUE(CreateKafkaTopic(Properties(), topic, 1, 1, absl::Seconds(30)).ok());
  KafkaTopicPartitionOffset beyond[] = {{topic, 0, 42}};
  ASSERT_TRUE((*consumer)->Assign(beyond).ok());
  Consumed got = PollUntil(**consumer, 1, absl::Seconds(30), OnError::kStop);
  EXPECT_THAT(got.records, ::testing::IsEmpty());
  ASSERT_THAT(got.errors, ::testing::Not(::testing::IsEmpty()));
  EXPECT_EQ(got.errors[0].code(), absl::StatusCode::kOutOfRange) << got.errors[0];
}

// ---------------------------------------------------------------------------------------------
// The watchdog: a test (with its suite's set-up) that runs past its limit ends the process
// with a message, after stopping a broker this process started.

class Watchdog : public ::testing::EmptyTestEventListener {
 public:
  Watchdog() : thread_([this] { Run(); }) {}
  ~Watchdog() override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void OnTestSuiteStart(const ::testing::TestSuite& suite) override {
    Arm(suite.name(), std::string(suite.name()) == "KafkaRealBroker" ? 300 : 60);
  }
  void OnTestStart(const ::testing::TestInfo& test) override {
    Arm(absl::StrFormat("%s.%s", test.test_suite_name(), test.name()),
        std::string(test.test_suite_name()) == "KafkaRealBroker" ? 240 : 60);
  }

 private:
  void Arm(std::string what, int seconds) {
    std::lock_guard lock(mu_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    limit_seconds_ = seconds;
  }

  void Run() {
    std::unique_lock lock(mu_);
    while (!done_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (!done_ && !what_.empty() && std::chrono::steady_clock::now() > deadline_) {
        std::fprintf(stderr,
                     "watchdog: %s ran longer than %d s (a librdkafka object left alive makes "
                     "rd_kafka_destroy hang); aborting\n",
                     what_.c_str(), limit_seconds_);
        KafkaRealBroker::StopOwnBroker();
        std::_Exit(3);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  int limit_seconds_ = 0;
  std::thread thread_;
};

}  // namespace
}  // namespace riffle::service

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new riffle::service::Watchdog);
  return RUN_ALL_TESTS();
}
