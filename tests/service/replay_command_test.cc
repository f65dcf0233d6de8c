// `riffle replay`: options and header checks, the JSON of each record (read back with the event
// decoder the Kafka path uses), ids, keys, inline and delayed labels, pacing on a fake clock,
// the producer's failure modes on the in-memory fake Kafka, and the command line.
#include "service/replay_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "features/csv_reader.h"
#include "features/json_decoder.h"
#include "tests/service/cli_testing.h"
#include "tests/service/fake_kafka.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::FakeKafkaCluster;
using ::riffle::service::testing::RunRiffle;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::int64_t kStartMs = 1'700'000'000'000;

// Time moves only when the replay sleeps (or the test moves it).
class FakeClock final : public ReplayClock {
 public:
  absl::Time Now() override { return now; }
  void SleepFor(absl::Duration d) override {
    if (d <= absl::ZeroDuration()) return;
    now += d;
    slept += d;
    if (on_sleep) on_sleep();
  }

  absl::Time now = absl::FromUnixMillis(kStartMs);
  absl::Duration slept;
  std::function<void()> on_sleep;
};

// Forwards to another producer and logs every accepted record as "topic:key", in order, so a
// test sees how events and labels interleave across topics.
class RecordingProducer final : public KafkaProducer {
 public:
  RecordingProducer(std::unique_ptr<KafkaProducer> target, std::vector<std::string>* log)
      : target_(std::move(target)), log_(log) {}

  absl::Status Produce(const KafkaProduceRecord& record) override {
    absl::Status s = target_->Produce(record);
    if (s.ok()) {
      log_->push_back(std::string(record.topic) + ":" + std::string(record.key.value_or("")));
    }
    return s;
  }
  void PollDeliveries(absl::Duration timeout, std::vector<KafkaDeliveryReport>* reports) override {
    target_->PollDeliveries(timeout, reports);
  }
  absl::Status Flush(absl::Duration timeout) override { return target_->Flush(timeout); }
  std::size_t InFlight() const override { return target_->InFlight(); }
  absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) override {
    return target_->PartitionCount(topic, timeout);
  }

 private:
  std::unique_ptr<KafkaProducer> target_;
  std::vector<std::string>* log_;
};

std::string WriteTempCsv(const std::string& name, const std::string& csv) {
  const std::string path = ::testing::TempDir() + "/replay_" + name + ".csv";
  std::ofstream(path, std::ios::binary) << csv;
  return path;
}

std::string TestName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(info->test_suite_name(), "_", info->name());
}

ReplayOptions BaseOptions() {
  ReplayOptions o;
  o.data = "data.csv";
  o.topic = "events";
  o.bootstrap = "fake:9092";
  return o;
}

// --- ReplayOptions -----------------------------------------------------------------------------

TEST(ReplayOptionsTest, ValidOptionsPass) {
  ReplayOptions o = BaseOptions();
  EXPECT_TRUE(o.Validate().ok());
  o.rate = 100;
  o.label_column = "y";
  o.label_delay_seconds = 0;
  o.labels_topic = "labels";
  o.id_column = "id";
  o.key_column = "id";  // the id may also be the key
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
}

TEST(ReplayOptionsTest, UsageErrorsNameTheFlag) {
  const auto error = [](void (*edit)(ReplayOptions&)) {
    ReplayOptions o = BaseOptions();
    edit(o);
    absl::Status s = o.Validate();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    return std::string(s.message());
  };
  EXPECT_THAT(error([](ReplayOptions& o) { o.topic.clear(); }), HasSubstr("--topic"));
  EXPECT_THAT(error([](ReplayOptions& o) { o.bootstrap.clear(); }), HasSubstr("--bootstrap"));
  EXPECT_THAT(error([](ReplayOptions& o) { o.rate = 0; }), HasSubstr("--rate"));
  EXPECT_THAT(error([](ReplayOptions& o) { o.rate = -5; }), HasSubstr("--rate"));
  EXPECT_THAT(error([](ReplayOptions& o) { o.rate = std::nan(""); }), HasSubstr("--rate"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_column = "y";
                o.label_delay_seconds = 5;
              }),
              HasSubstr("--label-delay needs --labels-topic"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_column = "y";
                o.labels_topic = "labels";
              }),
              HasSubstr("--labels-topic needs --label-delay"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_delay_seconds = 5;
                o.labels_topic = "labels";
              }),
              HasSubstr("--label-delay needs --label"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_column = "y";
                o.label_delay_seconds = -1;
                o.labels_topic = "labels";
              }),
              HasSubstr("--label-delay"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_column = "y";
                o.label_delay_seconds = 1;
                o.labels_topic = "events";
              }),
              HasSubstr("--labels-topic must differ"));
  EXPECT_THAT(error([](ReplayOptions& o) {
                o.label_column = "y";
                o.id_column = "y";
              }),
              HasSubstr("--label column 'y' is also the --id column"));
  EXPECT_THAT(error([](ReplayOptions& o) { o.properties["bootstrap.servers"] = "x:1"; }),
              HasSubstr("--bootstrap"));
}

TEST(ReplayOptionsTest, ProducerOptionsCarryBootstrapAndABoundedMessageTimeout) {
  ReplayOptions o = BaseOptions();
  o.properties["linger.ms"] = "50";
  KafkaProducerOptions p = ReplayProducerOptions(o);
  EXPECT_EQ(p.properties["bootstrap.servers"], "fake:9092");
  EXPECT_EQ(p.properties["linger.ms"], "50");
  EXPECT_EQ(p.properties["message.timeout.ms"], kReplayMessageTimeoutMs);
  // A user's timeout, under either of librdkafka's names, wins.
  o.properties["message.timeout.ms"] = "1000";
  EXPECT_EQ(ReplayProducerOptions(o).properties["message.timeout.ms"], "1000");
  o.properties.erase("message.timeout.ms");
  o.properties["delivery.timeout.ms"] = "2000";
  EXPECT_FALSE(ReplayProducerOptions(o).properties.contains("message.timeout.ms"));
}

// --- ReplaySchema ------------------------------------------------------------------------------

absl::StatusOr<ReplaySchema> Schema(const ReplayOptions& o, std::vector<std::string_view> header) {
  return ReplaySchema::FromHeader(o, header);
}

TEST(ReplaySchemaTest, RolesAndFeatures) {
  ReplayOptions o = BaseOptions();
  o.id_column = "tx";
  o.key_column = "card";
  o.label_column = "fraud";
  absl::StatusOr<ReplaySchema> s = Schema(o, {"amount", "tx", "fraud", "card", "country"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->id, 1u);
  EXPECT_EQ(s->key, 3u);
  EXPECT_EQ(s->label, 2u);
  EXPECT_THAT(s->features, ElementsAre(0u, 4u));
  EXPECT_EQ(s->columns, 5u);

  s = Schema(BaseOptions(), {"a", "b"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->id.has_value());
  EXPECT_FALSE(s->key.has_value());
  EXPECT_FALSE(s->label.has_value());
  EXPECT_THAT(s->features, ElementsAre(0u, 1u));
}

TEST(ReplaySchemaTest, UnknownRoleColumnsAreUsageErrors) {
  for (const char* flag : {"--id", "--key", "--label"}) {
    ReplayOptions o = BaseOptions();
    std::string flag_name(flag);
    if (flag_name == "--id") o.id_column = "nope";
    if (flag_name == "--key") o.key_column = "nope";
    if (flag_name == "--label") o.label_column = "nope";
    absl::StatusOr<ReplaySchema> s = Schema(o, {"a", "b"});
    ASSERT_TRUE(absl::IsInvalidArgument(s.status())) << flag;
    EXPECT_THAT(s.status().message(),
                HasSubstr(flag_name + " column 'nope' is not in the header (columns: a, b)"));
  }
}

TEST(ReplaySchemaTest, FeatureColumnsNamedLikeRolesCollide) {
  for (const char* name : {"id", "key", "time", "event_time", "label"}) {
    absl::StatusOr<ReplaySchema> s = Schema(BaseOptions(), {"x", name});
    ASSERT_TRUE(absl::IsInvalidArgument(s.status())) << name;
    EXPECT_THAT(s.status().message(), HasSubstr(absl::StrCat("column '", name, "'")));
  }
  // Chosen as their own role, or as another role, they are not features: no collision.
  ReplayOptions o = BaseOptions();
  o.id_column = "id";
  o.key_column = "key";
  o.label_column = "label";
  EXPECT_TRUE(Schema(o, {"x", "id", "key", "label"}).ok());
  o = BaseOptions();
  o.key_column = "id";  // the "id" column as the key; the event's id is the row number
  EXPECT_TRUE(Schema(o, {"x", "id"}).ok());
  // Another column as the id does not make a feature named "id" acceptable.
  o = BaseOptions();
  o.id_column = "tx";
  EXPECT_THAT(Schema(o, {"tx", "id"}).status().message(), HasSubstr("column 'id'"));
  EXPECT_THAT(Schema(BaseOptions(), {"x", "time"}).status().message(),
              HasSubstr("the event time is the replay's clock"));
}

TEST(ReplaySchemaTest, DuplicateAndEmptyNamesAreRejected) {
  EXPECT_THAT(Schema(BaseOptions(), {"a", "b", "a"}).status().message(),
              HasSubstr("column name 'a' appears twice in the header (columns 1 and 3)"));
  EXPECT_THAT(Schema(BaseOptions(), {"a", ""}).status().message(),
              HasSubstr("column 2 has an empty name"));
}

// --- PublishReplay -----------------------------------------------------------------------------

class ReplayTest : public ::testing::Test {
 protected:
  ReplayTest() { options_ = BaseOptions(); }

  // Replays `csv` with options_ onto the fake cluster (one partition per topic, so a topic's
  // records are in publication order).
  ReplayReport Replay(const std::string& csv) {
    options_.data = WriteTempCsv(TestName(), csv);
    absl::StatusOr<std::unique_ptr<features::CsvReader>> reader =
        features::CsvReader::Open(options_.data);
    EXPECT_TRUE(reader.ok()) << reader.status();
    std::vector<std::string_view> header;
    EXPECT_TRUE((*reader)->Next(&header).value_or(false));
    absl::StatusOr<ReplaySchema> schema = ReplaySchema::FromHeader(options_, header);
    EXPECT_TRUE(schema.ok()) << schema.status();
    EXPECT_TRUE(options_.Validate().ok()) << options_.Validate();
    RecordingProducer producer(cluster_.NewProducer(), &order_);
    return PublishReplay(options_, *schema, **reader, producer, clock_, progress_, &stop_);
  }

  std::vector<KafkaRecord> Records(const std::string& topic) { return cluster_.Records(topic, 0); }
  std::vector<std::string> Values(const std::string& topic) {
    std::vector<std::string> values;
    for (const KafkaRecord& r : Records(topic)) values.push_back(r.value);
    return values;
  }
  std::vector<std::string> Keys(const std::string& topic) {
    std::vector<std::string> keys;
    for (const KafkaRecord& r : Records(topic)) keys.push_back(r.key.value_or("<none>"));
    return keys;
  }

  FakeKafkaCluster cluster_;
  FakeClock clock_;
  ReplayOptions options_;
  ReplayProgress progress_;
  std::atomic<bool> stop_{false};
  std::vector<std::string> order_;  // "topic:key" of every accepted record
};

TEST_F(ReplayTest, JsonShapeNumbersStringsAndMissingValues) {
  ReplayReport r = Replay(
      "a,b,s,u,n\n"
      "1.5,,\"say \"\"hi\"\" \\ ok\",h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80,007\n"
      "-0,1e3,\"tab\there\nnext\",nan, 2 \n"
      "1e400,0.1,inf,\"\",-1.25e-3\n");
  ASSERT_TRUE(r.ok()) << r.error << r.first_failure;
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(r.events_delivered, 3u);
  EXPECT_EQ(r.labels, 0u);
  EXPECT_EQ(r.invalid_utf8_fields, 0u);
  // Numbers in their shortest round-trip form; quotes, backslashes and control characters
  // escaped; UTF-8 passed through; empty fields (quoted or not) left out; text that is not a
  // finite double (nan, inf, an overflowing 1e400) kept as a string.
  EXPECT_THAT(
      Values("events"),
      ElementsAre(
          R"({"id":"0","time":1700000000000,"a":1.5,"s":"say \"hi\" \\ ok",)"
          "\"u\":\"h\xC3\xA9llo \xE2\x98\x83 \xF0\x9F\x98\x80\",\"n\":7}",
          R"({"id":"1","time":1700000000000,"a":-0,"b":1000,"s":"tab\there\nnext","u":"nan","n":2})",
          R"({"id":"2","time":1700000000000,"a":"1e400","b":0.1,"s":"inf","n":-0.00125})"));
  EXPECT_THAT(Keys("events"), ElementsAre("0", "1", "2"));
  for (const KafkaRecord& record : Records("events")) EXPECT_EQ(record.timestamp_ms, kStartMs);
}

TEST_F(ReplayTest, EventsDecodeWithTheKafkaPathsDecoder) {
  options_.id_column = "tx";
  options_.key_column = "card";
  options_.label_column = "y";
  ReplayReport r = Replay(
      "tx,card,amount,country,y\n"
      "t-1,c9,12.5,\"F\"\"R\\\",1\n"
      "t-2,,3,\xC3\x89IRE,cat\n");
  ASSERT_TRUE(r.ok()) << r.error;
  absl::StatusOr<features::JsonDecoder> decoder = features::JsonDecoder::Create();
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  std::vector<KafkaRecord> records = Records("events");
  ASSERT_EQ(records.size(), 2u);
  features::DecodedEvent event;
  ASSERT_TRUE(decoder->Decode(records[0].value, &event).ok()) << records[0].value;
  EXPECT_EQ(event.id(), "t-1");
  EXPECT_EQ(event.key(), "c9");
  EXPECT_EQ(event.label(), "1");
  EXPECT_EQ(event.event_time_micros(), kStartMs * 1000);
  ASSERT_EQ(event.features().size(), 2u);
  EXPECT_EQ(event.features()[0].name, "amount");
  EXPECT_EQ(event.features()[0].value.number, 12.5);
  EXPECT_EQ(event.features()[1].name, "country");
  EXPECT_EQ(event.features()[1].value.kind, features::FeatureValue::Kind::kText);
  EXPECT_EQ(event.features()[1].value.text, "F\"R\\");

  features::DecodeStatus second = decoder->Decode(records[1].value, &event);
  ASSERT_TRUE(second.ok()) << second.message() << ": " << records[1].value;
  EXPECT_EQ(event.id(), "t-2");
  EXPECT_FALSE(event.key().has_value());  // empty key field: no "key"
  EXPECT_EQ(event.label(), "cat");
  ASSERT_EQ(event.features().size(), 2u);
  EXPECT_EQ(event.features()[1].value.text, "\xC3\x89IRE");
  // The record's Kafka key is the id, not the entity key.
  EXPECT_THAT(Keys("events"), ElementsAre("t-1", "t-2"));
}

TEST_F(ReplayTest, InvalidUtf8IsReplacedSoEveryRecordIsValidJson) {
  // A Latin-1 "é" (E9), a truncated 3-byte sequence (E2 98) and a UTF-16 surrogate (ED A0 80).
  ReplayReport r = Replay("s,t\ncaf\xE9,\xE2\x98!\n\xED\xA0\x80,ok\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.invalid_utf8_fields, 3u);
  // Each maximal invalid subpart becomes one U+FFFD (EF BF BD): the surrogate's lead ED may
  // not be followed by A0, so ED, A0 and 80 are three.
  EXPECT_THAT(Values("events"),
              ElementsAre("{\"id\":\"0\",\"time\":1700000000000,\"s\":\"caf\xEF\xBF\xBD\","
                          "\"t\":\"\xEF\xBF\xBD!\"}",
                          "{\"id\":\"1\",\"time\":1700000000000,"
                          "\"s\":\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\",\"t\":\"ok\"}"));
  absl::StatusOr<features::JsonDecoder> decoder = features::JsonDecoder::Create();
  ASSERT_TRUE(decoder.ok());
  features::DecodedEvent event;
  for (const std::string& value : Values("events")) {
    EXPECT_TRUE(decoder->Decode(value, &event).ok()) << value;
  }
}

TEST_F(ReplayTest, EmptyIdStopsTheReplayNamingTheLine) {
  options_.id_column = "id";
  ReplayReport r = Replay("id,x\na,1\n,2\nc,3\n");
  EXPECT_TRUE(absl::IsInvalidArgument(r.error)) << r.error;
  EXPECT_THAT(r.error.message(), HasSubstr(":3: empty id in column 'id'"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.rows, 1u);  // the row before was published and flushed
  EXPECT_THAT(Keys("events"), ElementsAre("a"));
}

TEST_F(ReplayTest, RaggedRowStopsTheReplay) {
  ReplayReport r = Replay("a,b\n1,2\n3\n4,5\n");
  EXPECT_THAT(r.error.message(), HasSubstr(":3: row has 1 fields but the header has 2"));
  EXPECT_EQ(r.rows, 1u);
}

TEST_F(ReplayTest, InlineLabelsAsIntegersOrStringsAndEmptyMeansUnlabeled) {
  options_.label_column = "y";
  ReplayReport r = Replay("x,y\n1,1\n2,\n3,cat\n4,007\n5,-3\n6,1.0\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.labels, 0u);
  EXPECT_THAT(Values("events"),
              ElementsAre(R"({"id":"0","time":1700000000000,"label":1,"x":1})",
                          R"({"id":"1","time":1700000000000,"x":2})",
                          R"({"id":"2","time":1700000000000,"label":"cat","x":3})",
                          R"({"id":"3","time":1700000000000,"label":"007","x":4})",
                          R"({"id":"4","time":1700000000000,"label":-3,"x":5})",
                          R"({"id":"5","time":1700000000000,"label":"1.0","x":6})"));
  EXPECT_TRUE(Records("labels").empty());
}

TEST_F(ReplayTest, UnpacedDelayedLabelsGoOutAtTheEndWhenTheyAreNotDueEarlier) {
  options_.id_column = "id";
  options_.label_column = "y";
  options_.label_delay_seconds = 60;
  options_.labels_topic = "labels";
  ReplayReport r = Replay("id,x,y\na,1,0\nb,2,\nc,3,1\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(r.labels, 2u);  // none for b's empty label
  EXPECT_EQ(r.labels_delivered, 2u);
  EXPECT_EQ(r.events_delivered, 3u);
  // Events carry no label; labels are keyed by id (co-keyed with the events).
  EXPECT_THAT(Values("events"), ElementsAre(R"({"id":"a","time":1700000000000,"x":1})",
                                            R"({"id":"b","time":1700000000000,"x":2})",
                                            R"({"id":"c","time":1700000000000,"x":3})"));
  EXPECT_THAT(Values("labels"), ElementsAre(R"({"id":"a","label":0})", R"({"id":"c","label":1})"));
  EXPECT_THAT(Keys("labels"), ElementsAre("a", "c"));
  // Nothing came due on the (still) clock: every label after every event, no waiting.
  EXPECT_THAT(order_, ElementsAre("events:a", "events:b", "events:c", "labels:a", "labels:c"));
  EXPECT_EQ(clock_.slept, absl::ZeroDuration());
}

TEST_F(ReplayTest, UnpacedDelayedLabelsGoOutWhenDueOnTheClock) {
  options_.label_column = "y";
  options_.label_delay_seconds = 2.5;
  options_.labels_topic = "labels";
  // Each published row takes one second of the replay's clock.
  progress_ = [this](std::uint64_t, std::uint64_t, std::optional<std::uint64_t>) {
    clock_.now += absl::Seconds(1);
  };
  ReplayReport r = Replay("x,y\n0,a\n1,b\n2,c\n3,d\n4,e\n5,f\n");
  ASSERT_TRUE(r.ok()) << r.error;
  // Event i is published at t = i s, its label due at i + 2.5 s: label 0 goes out just before
  // event 3 (t = 3 s), ...; labels 3-5 are pending when the data ends (t = 6 s; label 3 is due,
  // 4 and 5 are not yet): all are published then, without waiting.
  EXPECT_THAT(order_,
              ElementsAre("events:0", "events:1", "events:2", "labels:0", "events:3", "labels:1",
                          "events:4", "labels:2", "events:5", "labels:3", "labels:4", "labels:5"));
  std::vector<std::int64_t> label_times;
  for (const KafkaRecord& record : Records("labels")) label_times.push_back(record.timestamp_ms);
  EXPECT_THAT(label_times, ElementsAre(kStartMs + 3000, kStartMs + 4000, kStartMs + 5000,
                                       kStartMs + 6000, kStartMs + 6000, kStartMs + 6000));
  EXPECT_EQ(clock_.slept, absl::ZeroDuration());
}

TEST_F(ReplayTest, DelayZeroPutsEachLabelRightAfterItsEvent) {
  options_.label_column = "y";
  options_.label_delay_seconds = 0;
  options_.labels_topic = "labels";
  ReplayReport r = Replay("x,y\n1,a\n2,\n3,c\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_THAT(order_, ElementsAre("events:0", "labels:0", "events:1", "events:2", "labels:2"));
}

TEST_F(ReplayTest, RatePacesEventsOnTheInjectedClock) {
  options_.rate = 4;  // one event every 250 ms
  const absl::Time wall_start = absl::Now();
  ReplayReport r = Replay("x\n1\n2\n3\n4\n5\n");
  ASSERT_TRUE(r.ok()) << r.error;
  std::vector<std::int64_t> times;
  for (const KafkaRecord& record : Records("events")) times.push_back(record.timestamp_ms);
  EXPECT_THAT(times, ElementsAre(kStartMs, kStartMs + 250, kStartMs + 500, kStartMs + 750,
                                 kStartMs + 1000));
  EXPECT_EQ(Values("events")[1], R"({"id":"1","time":1700000000250,"x":2})");
  EXPECT_EQ(clock_.slept, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(r.seconds, 1.0);
  // The fake clock did the waiting: no real second passed.
  EXPECT_LT(absl::Now() - wall_start, absl::Milliseconds(500));
}

TEST_F(ReplayTest, PacedDelayedLabelsComeDueBetweenEventsAndAreWaitedForAtTheEnd) {
  options_.rate = 4;                     // events at 0, 250, 500, 750, 1000 ms
  options_.label_delay_seconds = 0.625;  // labels due at 625, 875, 1125, 1375, 1625 ms
  options_.label_column = "y";
  options_.labels_topic = "labels";
  ReplayReport r = Replay("x,y\n0,a\n1,b\n2,c\n3,d\n4,e\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_THAT(order_, ElementsAre("events:0", "events:1", "events:2", "labels:0", "events:3",
                                  "labels:1", "events:4", "labels:2", "labels:3", "labels:4"));
  std::vector<std::int64_t> label_times;
  for (const KafkaRecord& record : Records("labels")) label_times.push_back(record.timestamp_ms);
  EXPECT_THAT(label_times, ElementsAre(kStartMs + 625, kStartMs + 875, kStartMs + 1125,
                                       kStartMs + 1375, kStartMs + 1625));
  EXPECT_EQ(clock_.now, absl::FromUnixMillis(kStartMs + 1625));
  EXPECT_EQ(r.labels, 5u);
  EXPECT_EQ(r.labels_delivered, 5u);
}

TEST_F(ReplayTest, LimitCapsTheRows) {
  options_.limit = 2;
  ReplayReport r = Replay("x\n1\n2\n3\n4\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.rows, 2u);
  EXPECT_THAT(Keys("events"), ElementsAre("0", "1"));

  options_.limit = 0;
  order_.clear();
  r = Replay("x\n1\n");
  EXPECT_EQ(r.rows, 0u);
  EXPECT_TRUE(order_.empty());
}

TEST_F(ReplayTest, FullQueueIsWaitedOutAndRetried) {
  cluster_.FailNextProduce(absl::ResourceExhaustedError("queue full"));
  cluster_.FailNextProduce(absl::ResourceExhaustedError("queue full"));
  ReplayReport r = Replay("x\n1\n2\n3\n");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.queue_full_waits, 2u);
  EXPECT_EQ(r.rows, 3u);
  EXPECT_THAT(Keys("events"), ElementsAre("0", "1", "2"));
}

TEST_F(ReplayTest, FailedDeliveriesAreCountedAndFailTheReport) {
  cluster_.FailNextDeliveries(2, absl::UnavailableError("broker said no"));
  ReplayReport r = Replay("x\n1\n2\n3\n");
  EXPECT_TRUE(r.error.ok()) << r.error;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(r.failed_deliveries, 2u);
  EXPECT_EQ(r.events_delivered, 1u);
  EXPECT_THAT(r.first_failure, HasSubstr("event record with key '0' to events: broker said no"));
  EXPECT_THAT(FormatReplayReport(options_, r), HasSubstr("failed deliveries  2"));
}

TEST_F(ReplayTest, RecordsWithoutDeliveryReportAreUndelivered) {
  cluster_.SetDown(true);  // deliveries wait; the final flush times out
  ReplayReport r = Replay("x\n1\n2\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.rows, 2u);
  EXPECT_EQ(r.undelivered, 2u);
  EXPECT_EQ(r.events_delivered, 0u);
}

TEST_F(ReplayTest, ARefusedRecordStopsTheReplay) {
  cluster_.FailNextProduce(absl::InvalidArgumentError("record too large"));
  ReplayReport r = Replay("x\n1\n2\n");
  EXPECT_TRUE(absl::IsInvalidArgument(r.error));
  EXPECT_THAT(r.error.message(), HasSubstr(":2: record too large"));
  EXPECT_EQ(r.rows, 0u);
}

TEST_F(ReplayTest, StopRequestEndsTheReplayAndDropsPendingLabels) {
  options_.label_column = "y";
  options_.label_delay_seconds = 60;
  options_.labels_topic = "labels";
  progress_ = [this](std::uint64_t rows, std::uint64_t, std::optional<std::uint64_t>) {
    if (rows == 2) stop_ = true;
  };
  ReplayReport r = Replay("x,y\n1,a\n2,b\n3,c\n");
  EXPECT_TRUE(r.interrupted);
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(r.rows, 2u);
  EXPECT_EQ(r.pending_labels_dropped, 2u);
  EXPECT_EQ(r.events_delivered, 2u);  // what was published was flushed
  EXPECT_TRUE(Records("labels").empty());
}

TEST_F(ReplayTest, StopRequestInterruptsPacing) {
  options_.rate = 0.001;  // one event every 1000 s
  clock_.on_sleep = [this] { stop_ = true; };
  ReplayReport r = Replay("x\n1\n2\n");
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.rows, 1u);
  // The wait for row 1 sleeps in slices and sees the request after the first one.
  EXPECT_EQ(clock_.slept, absl::Milliseconds(100));
}

// --- RunReplayCommand --------------------------------------------------------------------------

class ReplayCommandTest : public ::testing::Test {
 protected:
  ReplayCommandTest() {
    flags_.options = BaseOptions();
    flags_.options.data = WriteTempCsv(TestName(), "id,x\na,1\nb,2\n");
    flags_.options.id_column = "id";
    flags_.no_progress = true;
    factory_.new_consumer =
        [](const KafkaConsumerOptions&) -> absl::StatusOr<std::unique_ptr<KafkaConsumer>> {
      return absl::UnimplementedError("replay makes no consumer");
    };
    factory_.new_producer =
        [this](
            const KafkaProducerOptions& options) -> absl::StatusOr<std::unique_ptr<KafkaProducer>> {
      seen_ = options;
      return cluster_.NewProducer();
    };
  }

  int Run() { return RunReplayCommand(flags_, factory_, nullptr, &clock_); }

  FakeKafkaCluster cluster_;
  FakeClock clock_;
  ReplayFlags flags_;
  KafkaClientFactory factory_;
  KafkaProducerOptions seen_;
};

TEST_F(ReplayCommandTest, PublishesWithTheFactorysProducer) {
  flags_.set_properties = {"linger.ms=20", "client.id=replayer"};
  EXPECT_EQ(Run(), 0);
  EXPECT_EQ(cluster_.Records("events", 0).size(), 2u);
  EXPECT_EQ(seen_.properties["bootstrap.servers"], "fake:9092");
  EXPECT_EQ(seen_.properties["linger.ms"], "20");
  EXPECT_EQ(seen_.properties["client.id"], "replayer");
}

TEST_F(ReplayCommandTest, ExitStatuses) {
  cluster_.FailNextDeliveries(1, absl::UnavailableError("lost"));
  EXPECT_EQ(Run(), 1);  // a failed delivery

  flags_.options.id_column = "nope";
  EXPECT_EQ(Run(), 2);  // unknown column
  flags_.options.id_column = "id";
  flags_.set_properties = {"=x"};
  EXPECT_EQ(Run(), 2);  // malformed --set-property
  flags_.set_properties.clear();
  flags_.options.rate = 0;
  EXPECT_EQ(Run(), 2);
  flags_.options.rate.reset();

  flags_.options.data = ::testing::TempDir() + "/replay_no_such_file.csv";
  EXPECT_EQ(Run(), 1);
}

TEST_F(ReplayCommandTest, AnEmptyFactoryMeansNoKafkaClient) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunReplayCommand(flags_, KafkaClientFactory{}, nullptr, &clock_), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("riffle replay: error: this riffle build has no Kafka client"));
}

TEST_F(ReplayCommandTest, AFactoryErrorIsReported) {
  factory_.new_producer =
      [](const KafkaProducerOptions&) -> absl::StatusOr<std::unique_ptr<KafkaProducer>> {
    return absl::InvalidArgumentError("kafka producer: bad property");
  };
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Run(), 1);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("cannot create the Kafka producer: kafka producer: bad property"));
}

// --- The binary --------------------------------------------------------------------------------

TEST(ReplayCliTest, HelpDescribesTheRecords) {
  CommandResult r = RunRiffle("replay --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--label-delay"));
  EXPECT_THAT(r.output, HasSubstr("--set-property"));
  EXPECT_THAT(r.output, HasSubstr("without --rate the labels not yet due"));
}

TEST(ReplayCliTest, UsageErrorsExitTwo) {
  const std::string csv = WriteTempCsv("cli_usage", "id,x\na,1\n");
  CommandResult r = RunRiffle("replay --data " + csv +
                              " --topic t --bootstrap 127.0.0.1:1 "
                              "--rate 0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--rate must be a positive number"));

  r = RunRiffle("replay --data " + csv +
                " --topic t --bootstrap 127.0.0.1:1 --label x "
                "--label-delay 5");
  EXPECT_EQ(r.exit_code, 2) << r.output;

  r = RunRiffle("replay --data " + csv + " --topic t --bootstrap 127.0.0.1:1 --key nope");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--key column 'nope' is not in the header (columns: id, x)"));

  r = RunRiffle("replay --data " + ::testing::TempDir() +
                "/cli_csv_nonesuch.csv --topic t "
                "--bootstrap 127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST(ReplayCliTest, UnreachableBrokerEndsWithFailedDeliveries) {
  const std::string csv = WriteTempCsv("cli_unreachable", "id,x\na,1\nb,2\nc,3\n");
  const absl::Time start = absl::Now();
  CommandResult r = RunRiffle("replay --no-progress --data " + csv +
                              " --topic t --bootstrap 127.0.0.1:1 --id id "
                              "--set-property message.timeout.ms=1000");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // A build without Kafka (ThreadSanitizer) says so instead.
  if (r.output.find("no Kafka client") == std::string::npos) {
    EXPECT_THAT(r.output, HasSubstr("failed deliveries  3"));
    EXPECT_THAT(r.output, HasSubstr("3 deliveries failed; the first: event record with key"));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

}  // namespace
}  // namespace riffle::service
