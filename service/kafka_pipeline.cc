#include "service/kafka_pipeline.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cmath>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "features/csv_event_decoder.h"
#include "service/json.h"

namespace riffle::service {
namespace {

std::string InputName(std::string_view topic, std::int32_t partition) {
  return absl::StrFormat("%s/%d", topic, partition);
}

// "topic/partition" back into its parts; false for a key that is not one (e.g. "csv:rows").
bool ParseInputName(std::string_view input, KafkaTopicPartition* out) {
  const std::size_t slash = input.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  int partition = 0;
  const std::string_view digits = input.substr(slash + 1);
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &partition) ||
      partition < 0) {
    return false;
  }
  out->topic = std::string(input.substr(0, slash));
  out->partition = partition;
  return true;
}

bool IsComparison(std::string_view op) {
  return op == "==" || op == "!=" || op == ">" || op == ">=" || op == "<" || op == "<=";
}

bool Compare(double a, std::string_view op, double b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  if (op == ">") return a > b;
  if (op == ">=") return a >= b;
  if (op == "<") return a < b;
  return a <= b;
}

// Appends `digits` decimal digits of `v` (0 <= v < 10^digits), zero-padded.
void AppendDigits(std::string* out, std::int64_t v, int digits) {
  char buffer[8];
  for (int i = digits - 1; i >= 0; --i) {
    buffer[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out->append(buffer, static_cast<std::size_t>(digits));
}

}  // namespace

void AppendRfc3339Micros(std::string* out, std::int64_t micros) {
  // By hand (std::chrono's calendar, fixed-width digits): absl::FormatTime's general
  // formatter was 3% of the consume thread. Years outside 1000-9999 still take that path.
  using std::chrono::days;
  using std::chrono::microseconds;
  const std::chrono::sys_time<microseconds> t{microseconds{micros}};
  const std::chrono::sys_days day = std::chrono::floor<days>(t);
  const std::chrono::year_month_day date{day};
  const int year = static_cast<int>(date.year());
  if (year < 1000 || year > 9999) {
    out->append(absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::FromUnixMicros(micros),
                                 absl::UTCTimeZone()));
    return;
  }
  const std::int64_t in_day = (t - day).count();  // [0, 86400 * 10^6)
  AppendDigits(out, year, 4);
  out->push_back('-');
  AppendDigits(out, static_cast<unsigned>(date.month()), 2);
  out->push_back('-');
  AppendDigits(out, static_cast<unsigned>(date.day()), 2);
  out->push_back('T');
  AppendDigits(out, in_day / 3'600'000'000, 2);
  out->push_back(':');
  AppendDigits(out, in_day / 60'000'000 % 60, 2);
  out->push_back(':');
  AppendDigits(out, in_day / 1'000'000 % 60, 2);
  out->push_back('.');
  AppendDigits(out, in_day % 1'000'000, 6);
  out->push_back('Z');
}

namespace {}  // namespace

absl::Status KafkaRoute::Validate() const {
  if (topic.empty()) return absl::InvalidArgumentError("topic: required");
  const bool by_class = !class_name.empty();
  const bool by_field = !field.empty();
  if (by_class == by_field) {
    return absl::InvalidArgumentError(
        "give either class and min_probability, or field, op and value");
  }
  if (by_class && !(min_probability >= 0 && min_probability <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("min_probability: must be within [0, 1], got %g", min_probability));
  }
  if (by_field) {
    if (!IsComparison(op)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("op: must be one of == != > >= < <=, got \"%s\"", op));
    }
    if (compare_text && op != "==" && op != "!=") {
      return absl::InvalidArgumentError(
          absl::StrFormat("op: a text value is compared with == or != only, got \"%s\"", op));
    }
    if (!compare_text && !std::isfinite(number)) {
      return absl::InvalidArgumentError("value: must be a finite number or a text");
    }
  }
  return absl::OkStatus();
}

namespace {

// The CSV decoders of a model with format kCsv, one per header.
struct CsvDecoders {
  features::CsvEventDecoder events;
  std::optional<features::CsvEventDecoder> labels;  // with a labels topic only
};

// Builds them as the pipeline uses them; KafkaModelOptions::Validate builds them too, so a
// header the decoder would refuse fails at config time. InvalidArgument naming the option
// ("csv.columns: ...").
absl::StatusOr<CsvDecoders> MakeCsvDecoders(const KafkaModelOptions& o) {
  if (o.csv.columns.empty()) {
    return absl::InvalidArgumentError(
        "csv.columns: required with format csv (Kafka messages carry no header row)");
  }
  // One set of role options for both formats: the CSV decoder takes them from `decoder`.
  const features::JsonDecoderOptions& d = o.decoder;
  features::CsvEventDecoderOptions options;
  options.id_field = d.id_field;
  options.key_field = d.key_field;
  options.time_fields = d.time_fields;
  options.label_field = d.label_field;
  options.require_id = d.require_id;
  options.epoch_unit = d.epoch_unit;
  options.max_message_bytes = d.max_message_bytes;
  options.delimiter = o.csv.delimiter;
  // The decoder's messages call the header "header" and name its options as KafkaCsvOptions
  // does ("delimiter: ...", "text_columns[1]: ..."): give them their key under csv.
  const auto error = [](const absl::Status& s, std::string_view header_key) {
    absl::string_view message = s.message();
    if (absl::ConsumePrefix(&message, "header: ")) {
      return absl::InvalidArgumentError(absl::StrFormat("csv.%s: %s", header_key, message));
    }
    return absl::InvalidArgumentError(absl::StrFormat("csv.%s", message));
  };

  features::CsvEventDecoderOptions events_options = options;
  events_options.text_columns = o.csv.text_columns;
  const std::vector<std::string_view> columns(o.csv.columns.begin(), o.csv.columns.end());
  absl::StatusOr<features::CsvEventDecoder> events =
      features::CsvEventDecoder::Create(columns, std::move(events_options));
  if (!events.ok()) return error(events.status(), "columns");
  CsvDecoders decoders{*std::move(events), std::nullopt};

  if (o.labels_topic.empty()) {
    if (!o.csv.label_columns.empty()) {
      return absl::InvalidArgumentError("csv.label_columns: set, but there is no labels_topic");
    }
    return decoders;
  }
  std::vector<std::string_view> label_columns(o.csv.label_columns.begin(),
                                              o.csv.label_columns.end());
  if (label_columns.empty()) label_columns = {d.id_field, d.label_field};
  if (std::find(label_columns.begin(), label_columns.end(), d.label_field) == label_columns.end()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "csv.label_columns: no label column \"%s\"; the labels topic's records need one",
        d.label_field));
  }
  // No text_columns: they name events columns, and a label record's other columns are unused.
  absl::StatusOr<features::CsvEventDecoder> labels =
      features::CsvEventDecoder::Create(label_columns, options);
  if (!labels.ok()) return error(labels.status(), "label_columns");
  decoders.labels.emplace(*std::move(labels));
  return decoders;
}

}  // namespace

std::string KafkaModelOptions::DeadLetterTopic() const {
  return dead_letter_topic.empty() ? events_topics.front() + ".dlq" : dead_letter_topic;
}

absl::Status KafkaModelOptions::Validate() const {
  if (events_topics.empty()) {
    return absl::InvalidArgumentError("events_topics: at least one topic is required");
  }
  for (std::size_t i = 0; i < events_topics.size(); ++i) {
    if (events_topics[i].empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("events_topics[%d]: empty", i));
    }
    if (events_topics[i] == labels_topic) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "labels_topic: \"%s\" is also an events topic; labels need their own topic",
          labels_topic));
    }
  }
  if (predictions_topic.empty()) {
    return absl::InvalidArgumentError("predictions_topic: required");
  }
  for (const std::string& topic : events_topics) {
    if (topic == predictions_topic || topic == dead_letter_topic) {
      return absl::InvalidArgumentError(
          absl::StrFormat("events_topics: \"%s\" is also an output topic (a loop)", topic));
    }
  }
  if (start != "earliest" && start != "latest") {
    return absl::InvalidArgumentError(
        absl::StrFormat("start: must be \"earliest\" or \"latest\", got \"%s\"", start));
  }
  for (std::size_t i = 0; i < routes.size(); ++i) {
    if (absl::Status s = routes[i].Validate(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("routes[%d].%s", i, s.message()));
    }
  }
  if (absl::Status s = decoder.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("decoder: %s", s.message()));
  }
  switch (format) {
    case KafkaFormat::kJson:
      if (!csv.columns.empty() || !csv.label_columns.empty() || !csv.text_columns.empty() ||
          csv.delimiter != KafkaCsvOptions().delimiter) {
        return absl::InvalidArgumentError("csv: only with format: csv");
      }
      break;
    case KafkaFormat::kCsv:
      if (absl::StatusOr<CsvDecoders> csv_decoders = MakeCsvDecoders(*this); !csv_decoders.ok()) {
        return csv_decoders.status();
      }
      break;
  }
  return absl::OkStatus();
}

absl::Status KafkaOptions::Validate() const {
  if (batch_size < 1 || batch_size > 100'000) {
    return absl::InvalidArgumentError(
        absl::StrFormat("batch_size: must be within [1, 100000], got %d", batch_size));
  }
  if (!(backoff_min_seconds > 0) || !(backoff_max_seconds >= backoff_min_seconds)) {
    return absl::InvalidArgumentError(
        "backoff_min_seconds and backoff_max_seconds: need 0 < min <= max");
  }
  if (max_delivery_attempts < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "max_delivery_attempts: must be at least 1, got %d", max_delivery_attempts));
  }
  if (!(delivery_wait_seconds > 0)) {
    return absl::InvalidArgumentError("delivery_wait_seconds: must be > 0");
  }
  return absl::OkStatus();
}

void AppendPredictionRecord(std::string* out, std::string_view model, std::string_view id,
                            const StreamBatchResult& batch, const StreamRecordResult& record,
                            std::optional<std::int64_t> event_time_micros, double latency_ms) {
  // Built with appends and std::to_chars (no format strings): this runs once per event on the
  // consume thread.
  char number[32];
  auto append_integer = [&](std::uint64_t v) {
    const auto [end, ec] = std::to_chars(number, number + sizeof(number), v);
    out->append(number, end);
  };
  out->append("{\"id\":");
  AppendJsonString(out, id);
  out->append(",\"model\":");
  AppendJsonString(out, model);
  out->append(",\"version\":");
  append_integer(batch.version);
  out->append(",\"generation\":");
  append_integer(batch.generation);
  out->append(",\"predicted\":");
  if (record.predicted.has_value() && *record.predicted < batch.classes.size()) {
    AppendJsonString(out, batch.classes[*record.predicted]);
  } else {
    out->append("null");
  }
  out->append(",\"probabilities\":{");
  for (std::size_t c = 0; c < record.proba_count && c < batch.classes.size(); ++c) {
    if (c > 0) out->push_back(',');
    AppendJsonString(out, batch.classes[c]);
    out->push_back(':');
    AppendJsonNumber(out, batch.probabilities[record.proba_begin + c]);
  }
  out->append("},\"event_time\":");
  if (event_time_micros.has_value()) {
    out->push_back('"');
    AppendRfc3339Micros(out, *event_time_micros);
    out->push_back('"');
  } else {
    out->append("null");
  }
  out->append(",\"latency_ms\":");
  if (std::isfinite(latency_ms)) {
    const auto [end, ec] =
        std::to_chars(number, number + sizeof(number), latency_ms, std::chars_format::fixed, 3);
    out->append(number, ec == std::errc() ? end : number);
    if (ec != std::errc()) out->append("null");
  } else {
    out->append("null");
  }
  out->push_back('}');
}

std::string FormatPredictionRecord(std::string_view model, std::string_view id,
                                   const StreamBatchResult& batch, const StreamRecordResult& record,
                                   std::optional<std::int64_t> event_time_micros,
                                   double latency_ms) {
  std::string out;
  out.reserve(160 + 32 * record.proba_count);
  AppendPredictionRecord(&out, model, id, batch, record, event_time_micros, latency_ms);
  return out;
}

// What an output record is for: the input record it came from (the checkpoint barrier waits
// for it), its kind, and how often it was attempted.
struct KafkaPipeline::Output {
  std::string input;
  // Tracked under this offset of `input`: the first offset of the batch it came from (see
  // Impl::in_flight).
  std::int64_t held_offset = 0;
  std::int64_t source_timestamp_ms = -1;
  enum class Kind : std::uint8_t { kPrediction, kRouted, kDeadLetter } kind = Kind::kPrediction;
  int attempts = 1;
  std::string reason;  // dead letters: the error code name
};

namespace {

struct EventsPosition {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t next = 0;
};

// Delayed labels held back, at most (then the labels partitions pause until half are applied).
constexpr std::size_t kMaxBufferedLabels = 200'000;

// The decoders of a model's format: JSON, or CSV (one header for the events topics and one for
// the labels topic). Not thread-safe: each thread that decodes has its own.
struct RecordDecoders {
  std::optional<features::JsonDecoder> json;
  std::optional<CsvDecoders> csv;

  features::DecodeStatus Decode(const KafkaRecord& rec, bool is_label,
                                features::DecodedEvent* event) {
    if (json.has_value()) return json->Decode(rec.value, event);
    return (is_label ? *csv->labels : csv->events).DecodeMessage(rec.value, event);
  }
};

absl::StatusOr<RecordDecoders> MakeRecordDecoders(const KafkaModelOptions& mo) {
  RecordDecoders decoders;
  if (mo.format == KafkaFormat::kJson) {
    absl::StatusOr<features::JsonDecoder> json = features::JsonDecoder::Create(mo.decoder);
    if (!json.ok()) return json.status();
    decoders.json.emplace(*std::move(json));
  } else {
    absl::StatusOr<CsvDecoders> csv = MakeCsvDecoders(mo);
    if (!csv.ok()) return csv.status();
    decoders.csv.emplace(*std::move(csv));
  }
  return decoders;
}

// One poll's records, and the events among them decoded. Records of the labels topic are
// decoded when they are applied (they may wait in the label buffer first), so their slots stay
// unused.
struct PolledBatch {
  KafkaRecordBatch records;
  std::vector<features::DecodedEvent> events;    // [i]: records[i]'s event
  std::vector<features::DecodeStatus> statuses;  // [i]: how records[i] decoded
};

// The records of `batch` not of `labels_topic`.
std::size_t CountEvents(const std::string& labels_topic, const KafkaRecordBatch& batch) {
  return static_cast<std::size_t>(
      std::count_if(batch.begin(), batch.end(),
                    [&](const KafkaRecord& rec) { return rec.topic != labels_topic; }));
}

// Decodes every record of `batch` that is not of `labels_topic` into batch->events.
void DecodeEvents(RecordDecoders& decoders, const std::string& labels_topic, PolledBatch* batch) {
  const std::size_t n = batch->records.size();
  if (batch->events.size() < n) batch->events.resize(n);
  if (batch->statuses.size() < n) batch->statuses.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const KafkaRecord& rec = batch->records[i];
    if (rec.topic == labels_topic) continue;
    batch->statuses[i] = decoders.Decode(rec, /*is_label=*/false, &batch->events[i]);
  }
}

// A thread that decodes the events of one poll while the consume thread applies and publishes
// the poll before it: decoding is about a quarter of the consume thread's work per event. A
// batch handed over with Submit belongs to the worker until Wait returns.
class DecodeAheadWorker {
 public:
  DecodeAheadWorker(RecordDecoders decoders, std::string labels_topic)
      : decoders_(std::move(decoders)), labels_topic_(std::move(labels_topic)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~DecodeAheadWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  DecodeAheadWorker(const DecodeAheadWorker&) = delete;
  DecodeAheadWorker& operator=(const DecodeAheadWorker&) = delete;

  void Submit(PolledBatch* batch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      assert(job_ == nullptr);
      job_ = batch;
    }
    cv_.notify_all();
  }
  // Until the submitted batch is decoded.
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return job_ == nullptr; });
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || job_ != nullptr; });
      if (stop_) return;
      PolledBatch* batch = job_;
      lock.unlock();
      DecodeEvents(decoders_, labels_topic_, batch);
      lock.lock();
      job_ = nullptr;
      cv_.notify_all();
    }
  }

  RecordDecoders decoders_;  // the worker thread's only
  const std::string labels_topic_;
  std::mutex mu_;
  std::condition_variable cv_;
  PolledBatch* job_ ABSL_GUARDED_BY(mu_) = nullptr;  // being decoded; null when done
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

// State shared between the consume thread and the model's checkpoint thread (hooks), and the
// consume thread's own working state.
class KafkaPipeline::Impl {
 public:
  // Guarded by mu: outputs not yet delivered, per input, counted under the first offset of the
  // batch their records came from (a batch also holds one count per input while it is being
  // applied). A checkpoint whose next offset of an input is above such an offset waits for
  // them: every record of a batch is below the next offsets taken after it.
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::map<std::int64_t, int>> in_flight;
  std::optional<std::map<std::string, std::int64_t>> commit_pending;
  KafkaPipelineStats stats;

  // The consume thread's.
  std::unique_ptr<KafkaConsumer> consumer;
  std::unique_ptr<KafkaProducer> producer;
  // The consume thread's decoders (labels, and polls too small for the worker), and the
  // worker that decodes larger polls' events on its own thread (null with decode_thread off).
  std::optional<RecordDecoders> decoders;
  std::unique_ptr<DecodeAheadWorker> worker;
  // Two polls: the one being read (polled[incoming]) and, when ready_to_apply, the one read
  // in the round before, decoded and waiting to be applied.
  PolledBatch polled[2];
  int incoming = 0;
  bool ready_to_apply = false;
  // Of the records being applied: the events (in their poll, or the labels' own below).
  std::vector<const features::DecodedEvent*> item_events;
  std::vector<features::DecodedEvent> label_events;
  std::vector<std::string> inputs;
  std::vector<StreamRecordView> views;
  StreamBatchResult result;
  // The reports being served, and those collected meanwhile (by produce() waiting on a full
  // queue, or served next time).
  std::vector<KafkaDeliveryReport> reports;
  std::vector<KafkaDeliveryReport> pending_reports;
  std::string record_text;                             // the prediction record being published
  absl::flat_hash_map<std::uint64_t, Output> outputs;  // by token, until delivered
  // The batch being applied: its hold on each of its inputs (first offset, outputs queued).
  struct BatchHold {
    std::string input;
    std::int64_t offset = 0;
    int outputs = 0;
  };
  std::vector<BatchHold> holds;
  // Delivered outputs not yet untracked (applied under one lock per round of reports).
  std::vector<std::pair<std::string, std::int64_t>> delivered;
  std::uint64_t next_token = 1;
  bool assigned = false;
  std::vector<KafkaTopicPartition> partitions;
  // Records to apply this round, in order: events of the poll (at `index` there) and released
  // labels (index kLabel: decoded when applied).
  struct Item {
    static constexpr std::size_t kLabel = static_cast<std::size_t>(-1);
    const KafkaRecord* record;
    std::size_t index;
  };
  std::vector<Item> items;
  // Labels consumed but not yet applied (see Run); their offsets are not taken until they are.
  std::deque<KafkaRecord> label_buffer;
  std::vector<KafkaTopicPartition> label_partitions;
  bool labels_paused = false;
  // The next offset to read of each events partition, to tell when they are caught up.
  std::vector<EventsPosition> events_positions;
  std::int64_t last_lag_micros = 0;

  BatchHold* HoldFor(std::string_view input) {
    for (BatchHold& h : holds) {
      if (h.input == input) return &h;
    }
    return nullptr;
  }
  // Adds `delta` to the count of (input, offset); erased at 0.
  void AddLocked(const std::string& input, std::int64_t offset, int delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::map<std::int64_t, int>& counts = in_flight[input];
    auto it = counts.try_emplace(offset, 0).first;
    it->second += delta;
    if (it->second <= 0) counts.erase(it);
  }
  // The batch's holds, taken before it is applied.
  void HoldBatch() {
    std::lock_guard<std::mutex> lock(mu);
    for (const BatchHold& h : holds) AddLocked(h.input, h.offset, 1);
  }
  // Replaces the batch's holds by its queued outputs, in one step (no gap for a checkpoint).
  void ReleaseBatch() {
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const BatchHold& h : holds) AddLocked(h.input, h.offset, h.outputs - 1);
    }
    cv.notify_all();
  }
  void Untrack(const std::string& input, std::int64_t offset) {
    {
      std::lock_guard<std::mutex> lock(mu);
      AddLocked(input, offset, -1);
    }
    cv.notify_all();
  }
  void UntrackDelivered() {
    if (delivered.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [input, offset] : delivered) AddLocked(input, offset, -1);
    }
    delivered.clear();
    cv.notify_all();
  }
  // Whether every output of a record below `next_offsets` (per input) is delivered.
  bool DeliveredLocked(const std::map<std::string, std::int64_t>& next_offsets) const {
    for (const auto& [input, next] : next_offsets) {
      auto it = in_flight.find(input);
      if (it != in_flight.end() && !it->second.empty() && it->second.begin()->first < next) {
        return false;
      }
    }
    return true;
  }
};

KafkaPipeline::KafkaPipeline(KafkaOptions options, KafkaModelOptions model_options,
                             std::shared_ptr<ServedModel> model, KafkaClientFactory factory,
                             Logger* logger, checkpoints::Env* env)
    : options_(std::move(options)),
      model_options_(std::move(model_options)),
      model_(std::move(model)),
      factory_(std::move(factory)),
      logger_(logger != nullptr ? logger : NullLogger()),
      env_(env),
      impl_(std::make_unique<Impl>()) {}

KafkaPipeline::~KafkaPipeline() { Stop(); }

void KafkaPipeline::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void KafkaPipeline::Stop() {
  stop_.store(true, std::memory_order_release);
  impl_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KafkaPipeline::RememberRouted(const KafkaProduceRecord& record) {
  RoutedPrediction routed;
  routed.topic = std::string(record.topic);
  routed.key = std::string(record.key.value_or(""));
  routed.value = std::string(record.value);
  routed.time_micros = env_->NowMicros();
  std::lock_guard<std::mutex> lock(recent_mu_);
  recent_routed_.push_front(std::move(routed));
  if (recent_routed_.size() > kRecentRouted) recent_routed_.pop_back();
}

std::vector<RoutedPrediction> KafkaPipeline::RecentRouted() const {
  std::lock_guard<std::mutex> lock(recent_mu_);
  return {recent_routed_.begin(), recent_routed_.end()};
}

KafkaPipelineStats KafkaPipeline::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  KafkaPipelineStats s = impl_->stats;
  s.connected = connected();
  return s;
}

void KafkaPipeline::Run() {
  Impl& m = *impl_;
  const KafkaModelOptions& mo = model_options_;
  const std::string dead_letter_topic = mo.DeadLetterTopic();
  double backoff = options_.backoff_min_seconds;
  // Sleeps up to `seconds`, waking at once on Stop().
  auto pause = [&](double seconds) {
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait_for(lock, std::chrono::duration<double>(seconds),
                  [this] { return stop_.load(std::memory_order_acquire); });
  };
  auto note_error = [&](const absl::Status& s, std::string_view what) {
    logger_->Warn(absl::StrFormat("kafka model '%s': %s: %s (retrying in %.1fs)", mo.model, what,
                                  s.ToString(), backoff));
    std::lock_guard<std::mutex> lock(m.mu);
    m.stats.last_error = absl::StrFormat("%s: %s", what, s.ToString());
  };
  auto grow_backoff = [&] { backoff = std::min(backoff * 2, options_.backoff_max_seconds); };

  // Queues one output; back-pressure (a full local queue) is served by waiting for deliveries.
  // `tracked`: a retry, whose source is still tracked (never untracked in between, or a
  // checkpoint could slip through the gap).
  // A new output (not `tracked`) belongs to the batch being applied: it is counted in the
  // batch's hold on its input, and tracked with it when the batch ends.
  auto produce = [&](const KafkaProduceRecord& base, Output meta, bool tracked = false) {
    KafkaProduceRecord record = base;
    record.token = m.next_token++;
    Impl::BatchHold* hold = nullptr;
    if (!tracked) {
      hold = m.HoldFor(meta.input);
      if (hold == nullptr) {  // cannot happen: every record of the batch has a hold
        logger_->Error(absl::StrFormat("kafka model '%s': output of %s outside its batch", mo.model,
                                       meta.input));
        return;
      }
      meta.held_offset = hold->offset;
    }
    for (;;) {
      absl::Status s = m.producer->Produce(record);
      if (s.ok()) break;
      if (s.code() == absl::StatusCode::kResourceExhausted) {
        // Reports collected here are served by the next serve_deliveries (this may run inside
        // it, while m.reports is being iterated).
        m.producer->PollDeliveries(absl::Milliseconds(10), &m.pending_reports);
        continue;
      }
      // Not accepted at all (unknown topic, record too large): nothing will be reported.
      // The record is not lost silently: logged and counted, and a dead letter is attempted
      // unless this was one.
      logger_->Error(absl::StrFormat("kafka model '%s': cannot publish to %s: %s", mo.model,
                                     record.topic, s.ToString()));
      {
        std::lock_guard<std::mutex> lock(m.mu);
        ++m.stats.delivery_failures;
        m.stats.last_error = s.ToString();
      }
      if (tracked) m.Untrack(meta.input, meta.held_offset);
      return;
    }
    if (hold != nullptr) ++hold->outputs;
    m.outputs.emplace(record.token, std::move(meta));
  };

  auto dead_letter = [&](const KafkaRecord& rec, std::string_view input, std::string_view code,
                         std::string_view message) {
    const std::string partition = absl::StrFormat("%d", rec.partition);
    const std::string offset = absl::StrFormat("%d", rec.offset);
    const KafkaHeaderView headers[] = {
        {kDlqErrorCodeHeader, code},        {kDlqErrorMessageHeader, message},
        {kDlqSourceTopicHeader, rec.topic}, {kDlqSourcePartitionHeader, partition},
        {kDlqSourceOffsetHeader, offset},   {kDlqModelHeader, mo.model},
    };
    KafkaProduceRecord out;
    out.topic = dead_letter_topic;
    if (rec.key.has_value()) out.key = *rec.key;
    out.value = rec.value;
    out.headers = headers;
    Output meta;
    meta.input = std::string(input);
    meta.source_timestamp_ms = rec.timestamp_ms;
    meta.kind = Output::Kind::kDeadLetter;
    meta.reason = std::string(code);
    produce(out, std::move(meta));
  };

  // Whether every events partition has been read to its end (so a label waiting for a later
  // event would wait for nothing). Asks the brokers: only called when labels wait and the batch
  // being applied holds no event.
  std::chrono::steady_clock::time_point last_caught_up_check;
  auto events_caught_up = [&]() {
    // At most every 20 ms: between fast polls (outputs in flight) the labels wait a little.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_caught_up_check < std::chrono::milliseconds(20)) return false;
    last_caught_up_check = now;
    for (const EventsPosition& position : m.events_positions) {
      absl::StatusOr<KafkaWatermarks> w =
          m.consumer->QueryWatermarks(position.topic, position.partition, absl::Seconds(1));
      if (!w.ok() || position.next < w->high) return false;
    }
    return true;
  };

  auto serve_deliveries = [&](absl::Duration timeout) {
    m.producer->PollDeliveries(timeout, &m.pending_reports);
    m.reports.clear();
    m.reports.swap(m.pending_reports);
    const std::int64_t now_ms = env_->NowMicros() / 1000;
    std::uint64_t predictions = 0, routed = 0;
    for (KafkaDeliveryReport& report : m.reports) {
      auto it = m.outputs.find(report.token);
      if (it == m.outputs.end()) continue;
      Output meta = std::move(it->second);
      m.outputs.erase(it);
      if (report.status.ok()) {
        switch (meta.kind) {
          case Output::Kind::kPrediction:
            ++predictions;
            break;
          case Output::Kind::kRouted:
            ++routed;
            break;
          case Output::Kind::kDeadLetter: {
            std::lock_guard<std::mutex> lock(m.mu);
            ++m.stats.dead_letters;
            ++m.stats.dead_letters_by_reason[meta.reason];
            break;
          }
        }
        if (meta.kind == Output::Kind::kPrediction && meta.source_timestamp_ms >= 0 &&
            now_ms >= meta.source_timestamp_ms) {
          latency_.Record(static_cast<std::uint64_t>(now_ms - meta.source_timestamp_ms) *
                          1'000'000);
        }
        m.delivered.emplace_back(std::move(meta.input), meta.held_offset);
        continue;
      }
      // Failed: retry the same record; after max attempts, a prediction or routed copy goes to
      // the dead-letter topic, and a dead letter keeps being retried (never dropped).
      std::vector<KafkaHeaderView> headers;
      for (const KafkaHeader& h : report.headers) headers.push_back({h.name, h.value});
      KafkaProduceRecord again;
      again.topic = report.topic;
      if (report.key.has_value()) again.key = *report.key;
      again.value = report.value;
      again.headers = headers;
      const bool exhausted = meta.attempts >= options_.max_delivery_attempts;
      {
        std::lock_guard<std::mutex> lock(m.mu);
        ++m.stats.delivery_retries;
        if (exhausted && meta.kind != Output::Kind::kDeadLetter) ++m.stats.delivery_failures;
        m.stats.last_error =
            absl::StrFormat("delivery to %s: %s", report.topic, report.status.ToString());
      }
      if (exhausted && meta.kind != Output::Kind::kDeadLetter) {
        logger_->Error(absl::StrFormat(
            "kafka model '%s': a record for %s failed %d times (%s): sent to %s", mo.model,
            report.topic, meta.attempts, report.status.ToString(), dead_letter_topic));
        const std::string message(report.status.message());
        const std::string source = report.topic;
        const KafkaHeaderView dlq_headers[] = {
            {kDlqErrorCodeHeader, "DELIVERY_FAILED"},
            {kDlqErrorMessageHeader, message},
            {kDlqSourceTopicHeader, source},
            {kDlqModelHeader, mo.model},
        };
        again.topic = dead_letter_topic;
        again.headers = dlq_headers;
        meta.kind = Output::Kind::kDeadLetter;
        meta.reason = "DELIVERY_FAILED";
        meta.attempts = 1;
        produce(again, std::move(meta), /*tracked=*/true);
        continue;
      }
      if (exhausted) pause(backoff);  // a dead letter that cannot be delivered: slow down
      ++meta.attempts;
      produce(again, std::move(meta), /*tracked=*/true);
    }
    if (predictions + routed > 0) {
      std::lock_guard<std::mutex> lock(m.mu);
      m.stats.predictions += predictions;
      m.stats.routed += routed;
    }
    m.UntrackDelivered();
  };

  // Applies one decoded poll: merges its events with the labels that are due,
  // applies them to the model in one step and publishes the outputs.
  auto apply = [&](PolledBatch& b) {
    // The order records are applied in: events as polled; a delayed label waits in
    // label_buffer until the events stream has passed its timestamp (or has nothing more to
    // read), so that its event is predicted and cached first, whichever partition the consumer
    // happens to fetch first (a backlog of labels must not overtake its events). A label is
    // applied before the first event with a later timestamp: the merged order depends on the
    // timestamps only, not on how records were split into polls.
    m.items.clear();
    std::size_t polled_events = 0;
    for (const KafkaRecord& rec : b.records) {
      if (rec.topic == mo.labels_topic) m.label_buffer.push_back(rec);
    }
    std::size_t released = 0;
    for (std::size_t j = 0; j < b.records.size(); ++j) {
      const KafkaRecord& rec = b.records[j];
      if (rec.topic == mo.labels_topic) continue;
      ++polled_events;
      while (released < m.label_buffer.size() &&
             m.label_buffer[released].timestamp_ms < rec.timestamp_ms) {
        m.items.push_back({&m.label_buffer[released++], Impl::Item::kLabel});
      }
      m.items.push_back({&rec, j});
      for (EventsPosition& position : m.events_positions) {
        if (position.partition == rec.partition && position.topic == rec.topic) {
          position.next = rec.offset + 1;
          break;
        }
      }
    }
    if (released < m.label_buffer.size() && polled_events == 0 && events_caught_up()) {
      while (released < m.label_buffer.size()) {
        m.items.push_back({&m.label_buffer[released++], Impl::Item::kLabel});
      }
    }

    const std::size_t n = m.items.size();
    if (m.label_events.size() < released) m.label_events.resize(released);
    m.item_events.resize(n);
    std::size_t labels_decoded = 0;
    m.inputs.resize(n);
    m.views.assign(n, StreamRecordView());
    m.holds.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const KafkaRecord& rec = *m.items[i].record;
      if (i > 0 && rec.partition == m.items[i - 1].record->partition &&
          rec.topic == m.items[i - 1].record->topic) {
        m.inputs[i] = m.inputs[i - 1];
      } else {
        m.inputs[i] = InputName(rec.topic, rec.partition);
        // An input's records come in offset order: its first one here is the batch's hold.
        if (m.HoldFor(m.inputs[i]) == nullptr) m.holds.push_back({m.inputs[i], rec.offset, 0});
      }
      StreamRecordView& v = m.views[i];
      v.input = m.inputs[i];
      v.next_offset = rec.offset + 1;
      // An event was decoded with its poll; a label is decoded now.
      const bool is_label = m.items[i].index == Impl::Item::kLabel;
      features::DecodeStatus label_status;
      const features::DecodeStatus* status;
      if (is_label) {
        features::DecodedEvent* label_event = &m.label_events[labels_decoded++];
        label_status = m.decoders->Decode(rec, /*is_label=*/true, label_event);
        status = &label_status;
        m.item_events[i] = label_event;
      } else {
        const std::size_t j = m.items[i].index;
        status = &b.statuses[j];
        m.item_events[i] = &b.events[j];
      }
      const features::DecodedEvent& event = *m.item_events[i];
      const features::DecodeStatus& decoded = *status;
      if (!decoded.ok()) {
        v.kind = StreamRecordView::Kind::kSkip;
        dead_letter(rec, m.inputs[i], features::DecodeErrorName(decoded.code()), decoded.message());
        continue;
      }
      v.id = event.id();
      v.label = event.label();
      if (is_label) {
        if (!v.label.has_value()) {
          v.kind = StreamRecordView::Kind::kSkip;
          dead_letter(rec, m.inputs[i], "MISSING_LABEL",
                      absl::StrFormat("label[\"%s\"]: a record of the labels topic needs a label",
                                      mo.decoder.label_field));
          continue;
        }
        v.kind = StreamRecordView::Kind::kLabel;
      } else {
        v.kind = StreamRecordView::Kind::kEvent;
        v.features = event.features();
        v.key = event.key();
        // An event without a time field is at its record's timestamp (the producer's create
        // time, or the broker's append time), which is when it happened as Kafka knows it.
        v.time_micros = event.event_time_micros();
        constexpr std::int64_t kYear9999Ms = 253402300799999;
        if (!v.time_micros.has_value() && rec.timestamp_ms >= 0 &&
            rec.timestamp_ms <= kYear9999Ms) {
          v.time_micros = rec.timestamp_ms * 1000;
        }
      }
    }
    if (n > 0) {
      // Until its outputs are queued (and tracked), the batch itself holds back a checkpoint
      // taken after ApplyStream: one count per input, at the batch's first offset there.
      m.HoldBatch();
      const auto applied_at = std::chrono::steady_clock::now();
      model_->ApplyStream(m.views, &m.result);
      std::uint64_t events = 0, joined = 0, missed = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const KafkaRecord& rec = *m.items[i].record;
        const StreamRecordResult& r = m.result.records[i];
        switch (r.outcome) {
          case StreamRecordResult::Outcome::kSkipped:
            break;
          case StreamRecordResult::Outcome::kRejected:
            dead_letter(rec, m.inputs[i], "INVALID_EVENT", std::string(r.error.message()));
            break;
          case StreamRecordResult::Outcome::kLabelJoined:
            ++joined;
            break;
          case StreamRecordResult::Outcome::kLabelMissed:
            ++missed;
            break;
          case StreamRecordResult::Outcome::kPredicted: {
            ++events;
            const features::DecodedEvent& event = *m.item_events[i];
            const std::optional<std::int64_t> event_time =
                event.event_time_micros().has_value()
                    ? event.event_time_micros()
                    : (rec.timestamp_ms >= 0 ? std::optional<std::int64_t>(rec.timestamp_ms * 1000)
                                             : std::nullopt);
            const double latency_ms = std::chrono::duration<double, std::milli>(
                                          std::chrono::steady_clock::now() - applied_at)
                                          .count();
            // One buffer for every record (the producer copies the bytes).
            m.record_text.clear();
            AppendPredictionRecord(&m.record_text, mo.model, event.id(), m.result, r, event_time,
                                   latency_ms);
            KafkaProduceRecord out;
            out.topic = mo.predictions_topic;
            out.key = event.id();
            out.value = m.record_text;
            Output meta;
            meta.input = m.inputs[i];
            meta.source_timestamp_ms = rec.timestamp_ms;
            for (const KafkaRoute& route : mo.routes) {
              bool hit = false;
              if (!route.class_name.empty()) {
                for (std::size_t c = 0; c < r.proba_count && c < m.result.classes.size(); ++c) {
                  if (m.result.classes[c] == route.class_name) {
                    hit = m.result.probabilities[r.proba_begin + c] >= route.min_probability;
                  }
                }
              } else {
                for (const features::NamedFeature& f : event.features()) {
                  if (f.name != route.field) continue;
                  const bool text = f.value.kind == features::FeatureValue::Kind::kText;
                  if (route.compare_text) {
                    hit = text && ((f.value.text == route.text) == (route.op == "=="));
                  } else {
                    hit = !text && Compare(f.value.number, route.op, route.number);
                  }
                }
              }
              if (!hit) continue;
              KafkaProduceRecord copy = out;
              copy.topic = route.topic;
              RememberRouted(copy);
              Output routed = meta;
              routed.kind = Output::Kind::kRouted;
              produce(copy, std::move(routed));
            }
            produce(out, std::move(meta));
            break;
          }
        }
      }
      m.ReleaseBatch();
      std::lock_guard<std::mutex> lock(m.mu);
      m.stats.events += events;
      m.stats.labels_joined += joined;
      m.stats.labels_missed += missed;
    }
    for (std::size_t i = 0; i < released; ++i) m.label_buffer.pop_front();
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.stats.records += b.records.size();
      m.stats.pending_labels = m.label_buffer.size();
    }
  };

  while (!stop_.load(std::memory_order_acquire)) {
    // Connect: clients, decoder, assignment. Any failure retries with backoff.
    if (m.consumer == nullptr || m.producer == nullptr) {
      if (!factory_.available()) {
        note_error(absl::FailedPreconditionError("this riffle build has no Kafka client"),
                   "cannot start");
        return;
      }
      KafkaConsumerOptions co;
      co.properties = options_.properties;
      for (const auto& [k, v] : options_.consumer_properties) co.properties[k] = v;
      if (!co.properties.contains("group.id")) {
        co.properties["group.id"] = mo.group_id.empty() ? "riffle-" + mo.model : mo.group_id;
      }
      co.logger = logger_;
      co.read_headers = false;  // nothing on the path reads an input's headers
      KafkaProducerOptions po;
      po.properties = options_.properties;
      for (const auto& [k, v] : options_.producer_properties) po.properties[k] = v;
      po.logger = logger_;
      absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer = factory_.new_consumer(co);
      absl::StatusOr<std::unique_ptr<KafkaProducer>> producer =
          consumer.ok() ? factory_.new_producer(po)
                        : absl::StatusOr<std::unique_ptr<KafkaProducer>>(consumer.status());
      if (!consumer.ok() || !producer.ok()) {
        const absl::Status s = !consumer.ok() ? consumer.status() : producer.status();
        note_error(s, "creating the Kafka clients");
        if (s.code() == absl::StatusCode::kInvalidArgument) return;  // a bad property: fatal
        pause(backoff);
        grow_backoff();
        continue;
      }
      m.consumer = *std::move(consumer);
      m.producer = *std::move(producer);
      absl::StatusOr<RecordDecoders> decoders = MakeRecordDecoders(mo);
      if (!decoders.ok()) {
        note_error(decoders.status(), "decoder");
        return;
      }
      m.decoders.emplace(*std::move(decoders));
      if (options_.decode_thread && m.worker == nullptr) {
        // The same options as above: they cannot fail now.
        absl::StatusOr<RecordDecoders> worker_decoders = MakeRecordDecoders(mo);
        if (!worker_decoders.ok()) {
          note_error(worker_decoders.status(), "decoder");
          return;
        }
        m.worker =
            std::make_unique<DecodeAheadWorker>(*std::move(worker_decoders), mo.labels_topic);
      }
    }
    if (!m.assigned) {
      std::vector<std::string> topics = mo.events_topics;
      if (!mo.labels_topic.empty()) topics.push_back(mo.labels_topic);
      const std::map<std::string, std::int64_t> known = model_->NextOffsets();
      std::vector<KafkaTopicPartitionOffset> assignment;
      absl::Status failed;
      for (const std::string& topic : topics) {
        absl::StatusOr<int> count = m.consumer->PartitionCount(topic, absl::Seconds(5));
        if (!count.ok()) {
          failed = absl::Status(count.status().code(),
                                absl::StrFormat("topic %s: %s", topic, count.status().message()));
          break;
        }
        for (int p = 0; p < *count; ++p) {
          auto it = known.find(InputName(topic, p));
          std::int64_t start = 0;
          if (it != known.end()) {
            start = it->second;
          } else {
            // A partition the model has not read: resolved to an absolute offset now, so the
            // pipeline knows its position (and when it has caught up) from the start.
            absl::StatusOr<KafkaWatermarks> w =
                m.consumer->QueryWatermarks(topic, p, absl::Seconds(5));
            if (!w.ok()) {
              failed = absl::Status(
                  w.status().code(),
                  absl::StrFormat("topic %s partition %d: %s", topic, p, w.status().message()));
              break;
            }
            start = mo.start == "latest" ? w->high : w->low;
          }
          assignment.push_back({topic, p, start});
        }
        if (!failed.ok()) break;
      }
      if (failed.ok()) failed = m.consumer->Assign(assignment);
      if (!failed.ok()) {
        note_error(failed, "assigning the input partitions");
        pause(backoff);
        grow_backoff();
        continue;
      }
      m.partitions.clear();
      m.label_partitions.clear();
      m.events_positions.clear();
      m.label_buffer.clear();
      m.labels_paused = false;
      for (const KafkaTopicPartitionOffset& a : assignment) {
        m.partitions.push_back({a.topic, a.partition});
        if (a.topic == mo.labels_topic) {
          m.label_partitions.push_back({a.topic, a.partition});
        } else {
          m.events_positions.push_back({a.topic, a.partition, a.offset});
        }
      }
      m.assigned = true;
      checkpoints::Checkpointer::Hooks hooks;
      hooks.before_write = [this](const checkpoints::ModelState& snapshot) {
        Impl& impl = *impl_;
        std::unique_lock<std::mutex> lock(impl.mu);
        const bool delivered =
            impl.cv.wait_for(lock, std::chrono::duration<double>(options_.delivery_wait_seconds),
                             [&] { return impl.DeliveredLocked(snapshot.next_offsets); });
        if (!delivered) {
          return absl::DeadlineExceededError(absl::StrFormat(
              "kafka: outputs of the records this checkpoint covers were not delivered within "
              "%gs; the checkpoint is retried later",
              options_.delivery_wait_seconds));
        }
        return absl::OkStatus();
      };
      hooks.after_write = [this](const checkpoints::ModelState& snapshot, std::uint64_t) {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->commit_pending = snapshot.next_offsets;
      };
      model_->SetCheckpointHooks(std::move(hooks));
      logger_->Info(absl::StrFormat("kafka model '%s': consuming %d partitions", mo.model,
                                    assignment.size()));
    }

    // One round: poll the next batch and decode its events (on the worker, when it holds enough
    // of them) while the batch polled in the round before is applied and published.
    PolledBatch& incoming = m.polled[m.incoming];
    PolledBatch* ready = m.ready_to_apply ? &m.polled[1 - m.incoming] : nullptr;
    // With a batch ready, the poll does not wait. With outputs in flight, a short wait: their
    // delivery reports (which the checkpoint barrier and the latency metric wait for) are
    // served between polls.
    const absl::Duration wait = ready != nullptr    ? absl::ZeroDuration()
                                : m.outputs.empty() ? absl::Milliseconds(100)
                                                    : absl::Milliseconds(2);
    absl::Status polled = m.consumer->Poll(options_.batch_size, wait, &incoming.records);
    if (!polled.ok()) {
      incoming.records.Clear();
      {
        std::lock_guard<std::mutex> lock(m.mu);
        ++m.stats.poll_errors;
      }
      connected_.store(false, std::memory_order_release);
      note_error(polled, "consuming");
      if (ready != nullptr) {  // read before the error: applied (its outputs are retried)
        apply(*ready);
        m.ready_to_apply = false;
      }
      serve_deliveries(absl::ZeroDuration());
      pause(backoff);
      grow_backoff();
      continue;
    }
    backoff = options_.backoff_min_seconds;
    if (!incoming.records.empty()) connected_.store(true, std::memory_order_release);
    const bool aside = m.worker != nullptr && CountEvents(mo.labels_topic, incoming.records) >=
                                                  KafkaOptions::kDecodeAheadMinEvents;
    if (aside) {
      m.worker->Submit(&incoming);
    } else {
      DecodeEvents(*m.decoders, mo.labels_topic, &incoming);
    }
    // Without a batch ready (the first large poll after a quiet spell), the consume thread
    // just waits for the decoding: the next round overlaps.
    if (ready != nullptr) apply(*ready);
    if (aside) m.worker->Wait();
    if (ready == nullptr && !aside) {
      apply(incoming);  // decoded inline with nothing to overlap with: applied at once
    } else {
      m.ready_to_apply = !incoming.records.empty();
      if (m.ready_to_apply) m.incoming = 1 - m.incoming;
    }

    // Labels far ahead of their events wait in memory; beyond a bound their partitions pause.
    if (!m.label_partitions.empty()) {
      if (!m.labels_paused && m.label_buffer.size() >= kMaxBufferedLabels) {
        m.labels_paused = m.consumer->Pause(m.label_partitions).ok();
      } else if (m.labels_paused && m.label_buffer.size() < kMaxBufferedLabels / 2) {
        m.labels_paused = !m.consumer->Resume(m.label_partitions).ok();
      }
    }
    serve_deliveries(absl::ZeroDuration());

    // Offsets of the newest durable checkpoint, to the group (lag monitoring only).
    std::optional<std::map<std::string, std::int64_t>> to_commit;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      to_commit.swap(m.commit_pending);
    }
    if (to_commit.has_value()) {
      std::vector<KafkaTopicPartitionOffset> offsets;
      for (const auto& [input, next] : *to_commit) {
        KafkaTopicPartition tp;
        if (!ParseInputName(input, &tp)) continue;
        if (std::find(m.partitions.begin(), m.partitions.end(), tp) == m.partitions.end()) {
          continue;
        }
        offsets.push_back({tp.topic, tp.partition, next});
      }
      if (!offsets.empty()) {
        absl::Status s = m.consumer->Commit(offsets, absl::Seconds(5));
        std::lock_guard<std::mutex> lock(m.mu);
        if (s.ok()) {
          ++m.stats.commits;
        } else {
          m.stats.last_error = absl::StrFormat("commit: %s", s.ToString());
        }
      }
    }

    // Every few seconds: lag per partition, which also tells whether the broker answers.
    const std::int64_t now = env_->NowMicros();
    if (now - m.last_lag_micros >= 5'000'000) {
      m.last_lag_micros = now;
      const std::map<std::string, std::int64_t> positions = model_->NextOffsets();
      std::map<std::string, std::int64_t> lag;
      bool answered = true;
      for (const KafkaTopicPartition& tp : m.partitions) {
        absl::StatusOr<KafkaWatermarks> w =
            m.consumer->QueryWatermarks(tp.topic, tp.partition, absl::Seconds(1));
        if (!w.ok()) {
          answered = false;
          break;
        }
        const std::string input = InputName(tp.topic, tp.partition);
        auto it = positions.find(input);
        const std::int64_t position = it != positions.end() ? it->second : w->low;
        lag[input] = std::max<std::int64_t>(0, w->high - position);
      }
      connected_.store(answered, std::memory_order_release);
      std::lock_guard<std::mutex> lock(m.mu);
      if (answered) m.stats.lag = std::move(lag);
    }
  }

  // Graceful stop: the batch in hand is applied; wait for its outputs, then detach.
  if (m.ready_to_apply) {
    apply(m.polled[1 - m.incoming]);
    m.ready_to_apply = false;
  }
  m.worker.reset();
  if (m.producer != nullptr) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(options_.delivery_wait_seconds);
    while (!m.outputs.empty() && std::chrono::steady_clock::now() < deadline) {
      serve_deliveries(absl::Milliseconds(50));
    }
  }
  if (m.assigned && !m.outputs.empty()) {
    // The state has learned records whose outputs are not delivered: no checkpoint may cover
    // them, so a restart resumes from the last one and processes them again (learning them
    // once, from that checkpoint's state).
    logger_->Error(absl::StrFormat(
        "kafka model '%s': %d outputs undelivered at shutdown; no further checkpoint is "
        "written, and their records are processed again after the restart",
        mo.model, m.outputs.size()));
    checkpoints::Checkpointer::Hooks refuse;
    refuse.before_write = [](const checkpoints::ModelState&) {
      return absl::FailedPreconditionError(
          "kafka: outputs of records in this state were never delivered; not checkpointed");
    };
    model_->SetCheckpointHooks(std::move(refuse));
  } else if (m.assigned) {
    model_->SetCheckpointHooks({});
  }
  connected_.store(false, std::memory_order_release);
}

}  // namespace riffle::service
