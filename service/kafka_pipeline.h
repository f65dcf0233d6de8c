#ifndef RIFFLE_SERVICE_KAFKA_PIPELINE_H_
#define RIFFLE_SERVICE_KAFKA_PIPELINE_H_

// The Kafka path of one model (DESIGN.md): consume its events and delayed labels, predict,
// score and learn through the model's ServedModel (the same one gRPC serves), publish
// predictions, routed copies and dead letters. It talks to Kafka only through the
// KafkaConsumer / KafkaProducer seam (kafka_client.h), so it builds and is tested without
// librdkafka (and under ThreadSanitizer) with tests/service/fake_kafka.h.
//
// Exactly-once learning: ServedModel::ApplyStream records every input partition's next offset
// in the model state together with what the batch learned, so a checkpoint holds both or
// neither. On start the consumer is assigned each partition at the offset the model's state
// (restored from its newest checkpoint) says; partitions the state does not know start where
// `start` says. Offsets are committed to the consumer group after each durable checkpoint, for
// lag monitoring only.
//
// Outputs are at-least-once and idempotent (keyed by event id; the record carries the model's
// generation): before a checkpoint is written, the pipeline waits until every output of the
// records it covers is delivered, so a crash never loses a prediction of a record the
// checkpoint says was processed; it may publish one again after a restart.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "features/json_decoder.h"
#include "service/kafka_client.h"
#include "service/kafka_factory.h"
#include "service/latency_histogram.h"
#include "service/logger.h"
#include "service/served_model.h"

namespace riffle::service {

// A routing rule: a prediction that meets the condition is also published to `topic` (e.g.
// "flagged" when P(fraud) >= 0.9). Exactly one of the two conditions is set.
struct KafkaRoute {
  std::string topic;
  // P(class_name) >= min_probability.
  std::string class_name;
  double min_probability = 0;
  // Or: the event's feature `field` compared with a number (op one of == != > >= < <=) or,
  // for == and !=, a text.
  std::string field;
  std::string op;
  double number = 0;
  std::string text;
  bool compare_text = false;

  absl::Status Validate() const;
};

// How the records of a model's topics are encoded.
enum class KafkaFormat : std::uint8_t {
  kJson,  // one JSON object per message (features::JsonDecoder)
  kCsv,   // one CSV record per message, without a header row (features::CsvEventDecoder)
};

// The headers of CSV records (format kCsv). Kafka messages carry no header row, so the config
// gives it, once for the events topics and once for the labels topic (whose records hold just
// an id and a label, so they would not fit the events' header). The roles (id, key, time,
// label) are found in both by KafkaModelOptions::decoder's field names, as in JSON.
struct KafkaCsvOptions {
  // The events topics' columns, in record order. Required with format kCsv.
  std::vector<std::string> columns;
  // The labels topic's columns. Empty: {decoder.id_field, decoder.label_field}. Must hold the
  // label column (and the id column while require_id). Only with a labels topic.
  std::vector<std::string> label_columns;
  // Field separator: one byte, not '"', CR or LF.
  char delimiter = ',';
  // Feature columns of the events whose values are always texts (zip codes, account numbers):
  // see features::CsvEventDecoderOptions::text_columns.
  std::vector<std::string> text_columns;
};

// The Kafka inputs and outputs of one model, from the `kafka:` section of a model in the YAML.
struct KafkaModelOptions {
  std::string model;
  // Topics of events, labeled and unlabeled mixed. At least one.
  std::vector<std::string> events_topics;
  // Optional topic of delayed labels ({"id": ..., "label": ...}, or a CSV record of
  // csv.label_columns), joined by id with the features cached when the event was predicted.
  std::string labels_topic;
  // Where prediction records go. Required.
  std::string predictions_topic;
  // Where undecodable or invalid records go, with the error in headers. Default:
  // "<first events topic>.dlq".
  std::string dead_letter_topic;
  std::vector<KafkaRoute> routes;
  // Where a partition the model's state does not know starts: "earliest" or "latest".
  std::string start = "earliest";
  // Group that receives committed offsets (lag monitoring). Default "riffle-<model>".
  std::string group_id;
  // The records' encoding, the same for the events and the labels topics.
  KafkaFormat format = KafkaFormat::kJson;
  // Field names of the events and labels (id, key, time, label) and decoding limits, for
  // either format: a CSV decoder takes its role options (field names, require_id, epoch_unit,
  // max_message_bytes) from here; the JSON-only ones (nesting, arrays, nulls) do not apply.
  features::JsonDecoderOptions decoder;
  // The headers with format kCsv; all defaults with kJson.
  KafkaCsvOptions csv;

  // InvalidArgument naming the option, e.g. "csv.columns: ..." (with kCsv this also checks
  // the headers as the decoders will: an id column, distinct names, text_columns present).
  absl::Status Validate() const;
  // dead_letter_topic, or its default (requires an events topic).
  std::string DeadLetterTopic() const;
};

// Settings shared by every model's pipeline (the top-level `kafka:` section).
struct KafkaOptions {
  // librdkafka properties given to every client (bootstrap.servers, security.protocol, sasl.*,
  // ssl.*, ...), then the consumer's and the producer's own on top.
  KafkaProperties properties;
  KafkaProperties consumer_properties;
  KafkaProperties producer_properties;
  // Most records applied per batch (one writer-lock hold of the model).
  std::size_t batch_size = 1000;
  // Decode a poll's events on a second thread (one per model) while the consume thread
  // applies and publishes the poll before it. Only polls of at least kDecodeAheadMinEvents
  // events go there: for a few records the handoff costs more than the decoding. Off: every
  // poll is decoded on the consume thread (one thread per model, as on a one-core host).
  bool decode_thread = true;
  static constexpr std::size_t kDecodeAheadMinEvents = 64;
  // Reconnection and retry backoff: doubles from min to max.
  double backoff_min_seconds = 0.1;
  double backoff_max_seconds = 10;
  // Attempts to deliver an output before it goes to the dead-letter topic (a dead letter
  // itself is retried until delivered: never dropped).
  int max_delivery_attempts = 3;
  // How long a checkpoint waits for the outputs of the records it covers to be delivered
  // before the write fails (and is retried at the next trigger).
  double delivery_wait_seconds = 30;

  absl::Status Validate() const;
};

// Counters of one pipeline, for metrics and tests.
struct KafkaPipelineStats {
  std::uint64_t records = 0;            // consumed, all topics
  std::uint64_t events = 0;             // events applied (predicted)
  std::uint64_t labels_joined = 0;      // delayed labels learned
  std::uint64_t labels_missed = 0;      // delayed labels whose event was not cached
  std::uint64_t pending_labels = 0;     // delayed labels waiting for the events to catch up
  std::uint64_t predictions = 0;        // prediction records delivered
  std::uint64_t routed = 0;             // routed copies delivered
  std::uint64_t dead_letters = 0;       // dead letters delivered
  std::uint64_t delivery_retries = 0;   // failed deliveries retried
  std::uint64_t delivery_failures = 0;  // outputs that exhausted their attempts
  std::uint64_t poll_errors = 0;
  std::uint64_t commits = 0;
  std::map<std::string, std::uint64_t> dead_letters_by_reason;  // error code name -> count
  bool connected = false;  // assigned and the broker answered recently
  std::string last_error;
  // Consumer lag per input ("topic/partition"), refreshed every few seconds.
  std::map<std::string, std::int64_t> lag;
};

// A routed copy of a prediction (a rule hit), as published.
struct RoutedPrediction {
  std::string topic;             // the route's topic
  std::string key;               // the event id
  std::string value;             // the prediction record (JSON, FormatPredictionRecord)
  std::int64_t time_micros = 0;  // when it was routed
};

// Names and values of a dead letter's headers.
inline constexpr char kDlqErrorCodeHeader[] = "riffle.error.code";
inline constexpr char kDlqErrorMessageHeader[] = "riffle.error.message";
inline constexpr char kDlqSourceTopicHeader[] = "riffle.source.topic";
inline constexpr char kDlqSourcePartitionHeader[] = "riffle.source.partition";
inline constexpr char kDlqSourceOffsetHeader[] = "riffle.source.offset";
inline constexpr char kDlqModelHeader[] = "riffle.model";

class KafkaPipeline {
 public:
  // `model` must outlive the pipeline. Starts nothing yet.
  KafkaPipeline(KafkaOptions options, KafkaModelOptions model_options,
                std::shared_ptr<ServedModel> model, KafkaClientFactory factory, Logger* logger,
                checkpoints::Env* env);
  ~KafkaPipeline();
  KafkaPipeline(const KafkaPipeline&) = delete;
  KafkaPipeline& operator=(const KafkaPipeline&) = delete;

  // Starts the consume thread. It connects with backoff: a broker that is down (or a topic
  // that does not exist yet) delays the Kafka path, never the caller. Once connected it also
  // starts the decode thread (with options.decode_thread), which Stop() ends.
  void Start();
  // Graceful stop: stops consuming, finishes the batch in hand, waits for its outputs to be
  // delivered (up to delivery_wait_seconds) and detaches from the model's checkpoints. The
  // caller writes the final checkpoint afterwards. Idempotent.
  void Stop();

  // Whether the Kafka path runs: assigned, and the broker answered recently.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  KafkaPipelineStats stats() const;
  const std::string& model_name() const { return model_options_.model; }
  // Event-to-prediction latency: from the record's timestamp to the prediction's delivery.
  const LatencyHistogram& latency() const { return latency_; }
  // The newest routed copies (up to kRecentRouted), newest first: the dashboard's "latest
  // flagged predictions". Kept from when they are produced, delivered or not yet.
  std::vector<RoutedPrediction> RecentRouted() const;
  static constexpr std::size_t kRecentRouted = 50;

 private:
  struct Output;
  class Impl;

  void Run();
  void RememberRouted(const KafkaProduceRecord& record);

  const KafkaOptions options_;
  const KafkaModelOptions model_options_;
  std::shared_ptr<ServedModel> model_;
  const KafkaClientFactory factory_;
  Logger* logger_;
  checkpoints::Env* env_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
  std::unique_ptr<Impl> impl_;
  LatencyHistogram latency_;
  mutable std::mutex recent_mu_;
  std::deque<RoutedPrediction> recent_routed_ ABSL_GUARDED_BY(recent_mu_);  // newest first
};

// The prediction record published for an event (JSON): id, model, version, generation,
// classes and probabilities, the predicted class, the event time (RFC 3339, or null) and the
// processing latency in milliseconds. Exposed for tests and the docs.
// The same, appended to *out (the consume thread reuses one buffer).
void AppendPredictionRecord(std::string* out, std::string_view model, std::string_view id,
                            const StreamBatchResult& batch, const StreamRecordResult& record,
                            std::optional<std::int64_t> event_time_micros, double latency_ms);
// `micros` since the Unix epoch as RFC 3339 in UTC with microseconds
// ("2026-11-23T07:02:35.123456Z"), as the prediction records' event_time.
void AppendRfc3339Micros(std::string* out, std::int64_t micros);
std::string FormatPredictionRecord(std::string_view model, std::string_view id,
                                   const StreamBatchResult& batch, const StreamRecordResult& record,
                                   std::optional<std::int64_t> event_time_micros,
                                   double latency_ms);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_KAFKA_PIPELINE_H_
