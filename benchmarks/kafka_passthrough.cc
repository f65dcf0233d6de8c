// The floor of the Kafka path (issue 7, docs/BENCHMARKS.md "Kafka path: topic to predictions"):
// how many events/s a plain consume -> produce loop reaches against a real broker on this
// machine, with Riffle's own Kafka clients and settings but no decoding, no model and no
// prediction record. `riffle serve` does all of this and its own work besides, so Riffle's
// events/s over this figure says how much of the way to the floor Riffle already is.
//
//   build/release/benchmarks/kafka_passthrough --bootstrap HOST:PORT --topic IN --out-topic OUT
//       [--events 1000000] [--batch-size 5000] [--timeout-seconds 300]
//       [--set name=value]... [--consumer-set name=value]... [--producer-set name=value]...
//
// Assigns partition 0 of --topic from its first offset (manual assignment, as Riffle's
// learner), polls batches of up to --batch-size records and produces each record's value
// unchanged, with its key, to --out-topic, serving delivery reports between polls as
// KafkaPipeline::Run does. Stops when --events records have been delivered, and prints one JSON
// line: events, seconds (first record consumed to last delivery), events_per_second,
// events_per_second_middle_80 (the slope between 10% and 90% of the events delivered, as
// kafka_bench.sh computes Riffle's), consumed_per_second_middle_80 (the same on records
// consumed: kafka_bench.sh's slope is on Riffle's events counter, i.e. records applied),
// cpu_seconds of the whole process (getrusage: this thread and librdkafka's, from the
// assignment to the last delivery), cpu_cores and cpu_us_per_event.
//
// Errors (bad flags, a missing topic, fewer records than --events, a failed delivery, the
// timeout) print "kafka_passthrough: error: ..." on stderr and exit non-zero: 2 for a usage
// error, 1 otherwise. A transient consumer error (Unavailable) is logged and the loop goes on,
// as Riffle's does.
//
// Not measured here, though Riffle does it: decoding and the model, building each prediction
// record (Riffle publishes about 200 bytes per event; this publishes the input's value, about
// 480 bytes in kafka_bench.sh, so its producer and broker move over twice the bytes: if
// anything this floor is a little slow), tracking outputs for the checkpoint barrier, offset
// commits after checkpoints, and the lag query every 5 s.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "service/cli_options.h"
#include "service/kafka_client.h"
#include "service/logger.h"

namespace riffle::service {
namespace {

using Clock = std::chrono::steady_clock;

// The settings of kafka_bench.sh's throughput run (its throughput.yaml), on top of which
// NewKafkaConsumer / NewKafkaProducer add Riffle's own defaults and requirements exactly as for
// `riffle serve`: for the predictions topic enable.idempotence=true (so acks=all, at most 5
// requests in flight, retries without duplicates or reordering), partitioner=murmur2_random,
// client.id=riffle; for the input isolation.level=read_committed, no auto commit or offset
// store, auto.offset.reset=error. Keep these in step with throughput.yaml.
const KafkaProperties& BenchConsumerProperties() {
  static const KafkaProperties* const kProperties = new KafkaProperties{
      {"fetch.max.bytes", "52428800"},
      {"max.partition.fetch.bytes", "10485760"},
      // Riffle's default group is "riffle-<model>"; it only ever receives commits, and this
      // binary commits nothing.
      {"group.id", "riffle-passthrough"},
  };
  return *kProperties;
}
const KafkaProperties& BenchProducerProperties() {
  static const KafkaProperties* const kProperties = new KafkaProperties{
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
  };
  return *kProperties;
}

struct PassthroughOptions {
  std::string bootstrap;  // bootstrap.servers
  std::string topic;      // read: partition 0, from its first offset
  std::string out_topic;  // written
  // Records to pass through; the run ends when all are delivered.
  std::uint64_t events = 1'000'000;
  // Most records per poll: kafka_bench.sh's batch_size (Riffle's kafka.batch_size).
  std::size_t batch_size = 5000;
  // The whole run, connecting included, must end within this.
  double timeout_seconds = 300;
  // librdkafka properties as KafkaOptions has them: for both clients, then each client's own
  // on top; all of them over the Bench*Properties above.
  KafkaProperties properties;
  KafkaProperties consumer_properties;
  KafkaProperties producer_properties;

  absl::Status Validate() const {
    if (bootstrap.empty()) return absl::InvalidArgumentError("--bootstrap: required");
    if (topic.empty()) return absl::InvalidArgumentError("--topic: required");
    if (out_topic.empty()) return absl::InvalidArgumentError("--out-topic: required");
    if (topic == out_topic) {
      return absl::InvalidArgumentError("--out-topic: must differ from --topic (a loop)");
    }
    if (events < 1) return absl::InvalidArgumentError("--events: must be at least 1");
    // The range KafkaOptions::Validate accepts for Riffle's batch_size.
    if (batch_size < 1 || batch_size > 100'000) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--batch-size: must be within [1, 100000], got %d", batch_size));
    }
    if (!(timeout_seconds > 0)) return absl::InvalidArgumentError("--timeout-seconds: must be > 0");
    return absl::OkStatus();
  }
};

struct PassthroughResult {
  std::uint64_t events = 0;
  double seconds = 0;  // first record consumed to last delivery
  // The slopes between 10% and 90% of the events; nullopt when one round covered both.
  std::optional<double> delivered_per_second_middle_80;
  std::optional<double> consumed_per_second_middle_80;
  double cpu_seconds = 0;
  double mean_value_bytes = 0;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The times a growing counter reached 10% and 90% of `total`, interpolated linearly between
// the observations around each crossing (as kafka_python_pipeline.py's `rate` does between its
// /metrics samples; here there is an observation per round of the loop, a few ms apart).
class MiddleSlope {
 public:
  MiddleSlope(std::uint64_t total, Clock::time_point start)
      : last_time_(start), low_(0.1 * total), high_(0.9 * total) {}

  void Observe(Clock::time_point now, std::uint64_t count) {
    if (count == last_count_) return;
    if (!t_low_.has_value()) t_low_ = Crossing(low_, now, count);
    if (!t_high_.has_value()) t_high_ = Crossing(high_, now, count);
    last_time_ = now;
    last_count_ = count;
  }

  // 0.8 * total / (t90 - t10), in events per second.
  std::optional<double> PerSecond() const {
    if (!t_low_.has_value() || !t_high_.has_value() || *t_high_ <= *t_low_) return std::nullopt;
    return (high_ - low_) / (*t_high_ - *t_low_);
  }

 private:
  // When (steady-clock seconds) the counter passed `value` between the last observation and
  // this one, or nullopt if it did not.
  std::optional<double> Crossing(double value, Clock::time_point now, std::uint64_t count) const {
    if (!(static_cast<double>(last_count_) < value && value <= static_cast<double>(count))) {
      return std::nullopt;
    }
    const double t0 = std::chrono::duration<double>(last_time_.time_since_epoch()).count();
    const double t1 = std::chrono::duration<double>(now.time_since_epoch()).count();
    return t0 + (t1 - t0) * (value - last_count_) / static_cast<double>(count - last_count_);
  }

  Clock::time_point last_time_;
  std::uint64_t last_count_ = 0;
  const double low_;
  const double high_;
  std::optional<double> t_low_;
  std::optional<double> t_high_;
};

absl::StatusOr<PassthroughResult> Run(const PassthroughOptions& options, Logger* logger) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.timeout_seconds));

  // Merged in the order KafkaPipeline::Run merges KafkaOptions, under the bench's settings.
  KafkaConsumerOptions co;
  co.properties = BenchConsumerProperties();
  KafkaProducerOptions po;
  po.properties = BenchProducerProperties();
  for (KafkaProperties* p : {&co.properties, &po.properties}) {
    (*p)["bootstrap.servers"] = options.bootstrap;
    for (const auto& [k, v] : options.properties) (*p)[k] = v;
  }
  for (const auto& [k, v] : options.consumer_properties) co.properties[k] = v;
  for (const auto& [k, v] : options.producer_properties) po.properties[k] = v;
  co.logger = logger;
  po.logger = logger;
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer = NewKafkaConsumer(co);
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = NewKafkaProducer(po);
  if (!producer.ok()) return producer.status();

  // Both topics are looked up before the clock starts, so that an unreachable broker or a
  // missing topic is a clear error rather than a timeout. (As for Riffle's producer, a broker
  // with auto.create.topics.enable, as kafka_bench.sh's, creates a missing output topic.)
  if (absl::StatusOr<int> count = (*producer)->PartitionCount(options.out_topic, absl::Seconds(10));
      !count.ok()) {
    return absl::Status(
        count.status().code(),
        absl::StrFormat("--out-topic %s: %s", options.out_topic, count.status().message()));
  }
  // Partition 0 is resolved to its first offset now, as the pipeline resolves "earliest",
  // which also tells whether it holds enough records.
  absl::StatusOr<KafkaWatermarks> marks =
      (*consumer)->QueryWatermarks(options.topic, 0, absl::Seconds(10));
  if (!marks.ok()) {
    return absl::Status(
        marks.status().code(),
        absl::StrFormat("--topic %s partition 0: %s", options.topic, marks.status().message()));
  }
  // Offsets count records here: kafka_bench.sh's topics have no transactions or compaction.
  if (marks->high - marks->low < static_cast<std::int64_t>(options.events)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--topic %s partition 0 holds %d records (offsets %d to %d), fewer than --events %d",
        options.topic, marks->high - marks->low, marks->low, marks->high, options.events));
  }

  const double cpu_start = CpuSeconds();
  const KafkaTopicPartitionOffset start[] = {{options.topic, 0, marks->low}};
  if (absl::Status s = (*consumer)->Assign(start); !s.ok()) return s;

  const std::uint64_t n = options.events;
  KafkaRecordBatch batch;
  std::vector<KafkaDeliveryReport> reports;
  std::uint64_t consumed = 0, delivered = 0, value_bytes = 0;
  std::optional<Clock::time_point> first_record;
  std::optional<MiddleSlope> consumed_slope, delivered_slope;
  while (delivered < n) {
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("--timeout-seconds %g passed: %d of %d records consumed, %d delivered",
                          options.timeout_seconds, consumed, n, delivered));
    }
    if (consumed < n) {
      // As the pipeline: with outputs in flight, a short wait, so that their reports are
      // served between polls.
      const std::uint64_t in_flight = consumed - delivered;
      const absl::Duration wait = in_flight == 0 ? absl::Milliseconds(100) : absl::Milliseconds(2);
      // Never more than --events: the last poll is cut short rather than trimmed afterwards.
      const std::size_t max_records =
          static_cast<std::size_t>(std::min<std::uint64_t>(options.batch_size, n - consumed));
      absl::Status polled = (*consumer)->Poll(max_records, wait, &batch);
      if (!polled.ok()) {
        if (polled.code() != absl::StatusCode::kUnavailable) return polled;
        // Transient (the client reconnects and resumes at the next offset): as Riffle,
        // keep going; the timeout bounds an outage.
        logger->Warn(absl::StrFormat("consuming: %s (retrying)", polled.ToString()));
      }
      const Clock::time_point polled_at = Clock::now();
      if (!batch.empty() && !first_record.has_value()) {
        first_record = polled_at;
        consumed_slope.emplace(n, polled_at);
        delivered_slope.emplace(n, polled_at);
      }
      for (const KafkaRecord& rec : batch) {
        KafkaProduceRecord out;
        out.topic = options.out_topic;
        if (rec.key.has_value()) out.key = *rec.key;
        out.value = rec.value;
        out.token = consumed++;
        value_bytes += rec.value.size();
        for (;;) {
          absl::Status s = (*producer)->Produce(out);
          if (s.ok()) break;
          // A full local queue: wait for deliveries (collected, counted below), as the
          // pipeline's produce() does.
          if (s.code() != absl::StatusCode::kResourceExhausted) return s;
          (*producer)->PollDeliveries(absl::Milliseconds(10), &reports);
        }
      }
      if (!batch.empty()) consumed_slope->Observe(polled_at, consumed);
    }
    // Between polls the pipeline serves what has arrived without waiting; once everything is
    // consumed there is nothing else to do but wait for the rest.
    (*producer)->PollDeliveries(consumed < n ? absl::ZeroDuration() : absl::Milliseconds(50),
                                &reports);
    for (const KafkaDeliveryReport& report : reports) {
      // Riffle would retry the record and then dead-letter it; a floor with a failed delivery
      // is no clean figure, so the run stops instead.
      if (!report.status.ok()) {
        return absl::Status(report.status.code(),
                            absl::StrFormat("delivery of record %d to %s: %s", report.token,
                                            report.topic, report.status.message()));
      }
    }
    if (!reports.empty()) {  // reports only follow records, so the slopes exist
      delivered += reports.size();
      delivered_slope->Observe(Clock::now(), delivered);
      reports.clear();
    }
  }
  const Clock::time_point last_delivery = Clock::now();
  const double cpu_end = CpuSeconds();

  PassthroughResult result;
  result.events = n;
  result.seconds = std::chrono::duration<double>(last_delivery - *first_record).count();
  result.delivered_per_second_middle_80 = delivered_slope->PerSecond();
  result.consumed_per_second_middle_80 = consumed_slope->PerSecond();
  result.cpu_seconds = cpu_end - cpu_start;
  result.mean_value_bytes = static_cast<double>(value_bytes) / n;
  return result;
}

std::string JsonNumber(std::optional<double> v) {
  return v.has_value() ? absl::StrFormat("%.1f", *v) : "null";
}

int Main(int argc, char** argv) {
  CLI::App app("Kafka path floor: consume -> produce passthrough with Riffle's Kafka clients");
  PassthroughOptions options;
  std::vector<std::string> sets, consumer_sets, producer_sets;
  app.add_option("--bootstrap", options.bootstrap, "bootstrap.servers")->required();
  app.add_option("--topic", options.topic, "input topic (partition 0, from its first offset)")
      ->required();
  app.add_option("--out-topic", options.out_topic, "output topic")->required();
  app.add_option("--events", options.events, "records to pass through")->capture_default_str();
  app.add_option("--batch-size", options.batch_size, "most records per poll")
      ->capture_default_str();
  app.add_option("--timeout-seconds", options.timeout_seconds, "limit for the whole run")
      ->capture_default_str();
  app.add_option("--set", sets, "librdkafka property name=value for both clients (repeatable)");
  app.add_option("--consumer-set", consumer_sets,
                 "librdkafka consumer property name=value (repeatable; over --set)");
  app.add_option("--producer-set", producer_sets,
                 "librdkafka producer property name=value (repeatable; over --set)");
  CLI11_PARSE(app, argc, argv);

  const auto fail = [](int code, const absl::Status& s) {
    std::fprintf(stderr, "kafka_passthrough: error: %s\n", s.ToString().c_str());
    return code;
  };
  const struct {
    const std::vector<std::string>& texts;
    const char* flag;
    KafkaProperties* out;
  } assignments[] = {
      {sets, "--set", &options.properties},
      {consumer_sets, "--consumer-set", &options.consumer_properties},
      {producer_sets, "--producer-set", &options.producer_properties},
  };
  for (const auto& a : assignments) {
    learners::OptionList parsed;
    if (absl::Status s = ParseAssignments(a.texts, a.flag, &parsed); !s.ok()) return fail(2, s);
    for (auto& [name, value] : parsed) (*a.out)[name] = std::move(value);
  }
  if (absl::Status s = options.Validate(); !s.ok()) return fail(2, s);

  // librdkafka's warnings and errors (a broker going away, a bad property) on stderr.
  const std::unique_ptr<Logger> logger = MakeStderrLogger({.level = LogLevel::kWarn});
  absl::StatusOr<PassthroughResult> r = Run(options, logger.get());
  if (!r.ok()) {
    // A bad --set property comes back from the client factories as InvalidArgument.
    return fail(r.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1, r.status());
  }
  absl::PrintF(
      "{\"events\": %d, \"seconds\": %.4f, \"events_per_second\": %.1f, "
      "\"events_per_second_middle_80\": %s, \"consumed_per_second_middle_80\": %s, "
      "\"cpu_seconds\": %.3f, \"cpu_cores\": %.3f, \"cpu_us_per_event\": %.3f, "
      "\"batch_size\": %d, \"mean_value_bytes\": %.1f}\n",
      r->events, r->seconds, r->events / r->seconds, JsonNumber(r->delivered_per_second_middle_80),
      JsonNumber(r->consumed_per_second_middle_80), r->cpu_seconds, r->cpu_seconds / r->seconds,
      r->cpu_seconds / r->events * 1e6, options.batch_size, r->mean_value_bytes);
  return 0;
}

}  // namespace
}  // namespace riffle::service

int main(int argc, char** argv) { return riffle::service::Main(argc, argv); }
