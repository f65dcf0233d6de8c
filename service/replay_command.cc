#include "service/replay_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "service/cli_options.h"
#include "service/json.h"
#include "service/progress.h"

namespace riffle::service {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Delivery report tokens: which kind of record a report is about.
constexpr std::uint64_t kEventToken = 0;
constexpr std::uint64_t kLabelToken = 1;

// While pacing, the replay sleeps at most this long at a time, so delivery reports are served
// and a stop request is seen promptly.
constexpr absl::Duration kMaxSleep = absl::Milliseconds(100);
// How long to wait for delivery reports when the producer's queue is full before retrying.
constexpr absl::Duration kQueueFullWait = absl::Milliseconds(100);

// JSON field names of the roles, and the names a feature column may therefore not have: the
// decoder (features/json_decoder.h) reads "time" and "event_time" both as the event time.
constexpr std::string_view kReservedNames[] = {"id", "key", "time", "event_time", "label"};

class RealClock final : public ReplayClock {
 public:
  RealClock() : wall_start_(absl::Now()), steady_start_(std::chrono::steady_clock::now()) {}

  absl::Time Now() override {
    return wall_start_ + absl::FromChrono(std::chrono::steady_clock::now() - steady_start_);
  }
  void SleepFor(absl::Duration d) override {
    if (d > absl::ZeroDuration()) absl::SleepFor(d);
  }

 private:
  const absl::Time wall_start_;
  const std::chrono::steady_clock::time_point steady_start_;
};

// Scans `s` as UTF-8. If `repaired` is null, returns whether `s` is valid UTF-8. Otherwise
// appends `s` to *repaired with each maximal invalid subpart replaced by U+FFFD (the Unicode
// Standard's recommended practice, §3.9; what Python's errors="replace" does) and returns
// whether nothing had to be replaced. Valid means: shortest forms only, no surrogates, nothing
// above U+10FFFF (RFC 3629), as the event decoder demands.
bool ScanUtf8(std::string_view s, std::string* repaired) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  bool valid = true;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (repaired != nullptr) repaired->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // The sequence's length and the range of its second byte (Table 3-7 of the standard).
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3;
      low = 0xA0;
    } else if (c == 0xED) {
      length = 3;
      high = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
      length = 3;
    } else if (c == 0xF0) {
      length = 4;
      low = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4;
      high = 0x8F;
    }
    std::size_t good = length == 0 ? 0 : 1;
    while (good > 0 && good < length && i + good < s.size()) {
      const auto b = static_cast<unsigned char>(s[i + good]);
      if (good == 1 ? (b < low || b > high) : (b < 0x80 || b > 0xBF)) break;
      ++good;
    }
    if (length > 0 && good == length) {
      if (repaired != nullptr) repaired->append(s.substr(i, length));
      i += length;
      continue;
    }
    valid = false;
    if (repaired == nullptr) return false;
    repaired->append(kReplacement);
    i += std::max<std::size_t>(good, 1);
  }
  return valid;
}

// Appends `s` as a JSON string (service/json.h escapes it), made valid UTF-8 first if it is
// not. Returns false if it had to be repaired.
bool AppendJsonText(std::string* out, std::string_view s, std::string* scratch) {
  if (ScanUtf8(s, nullptr)) {
    AppendJsonString(out, s);
    return true;
  }
  scratch->clear();
  ScanUtf8(s, scratch);
  AppendJsonString(out, *scratch);
  return false;
}

// A label written as a JSON integer: an optional '-', then digits without a leading zero (so
// the JSON text is the CSV text, and "-0" or "007" stay strings), within int64 (as the decoder
// reads integers).
bool IsCanonicalInteger(std::string_view s) {
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.front() < '1' || digits.front() > '9') return s == "0";
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

// The label as JSON; see PublishReplay.
bool AppendJsonLabel(std::string* out, std::string_view label, std::string* scratch) {
  if (IsCanonicalInteger(label)) {
    out->append(label);
    return true;
  }
  return AppendJsonText(out, label, scratch);
}

// A delayed label waiting for its due time.
struct PendingLabel {
  absl::Time due;
  std::string id;     // the record's key
  std::string value;  // the label record's JSON
};

class Publisher {
 public:
  Publisher(const ReplayOptions& options, const ReplaySchema& schema, features::CsvReader& reader,
            KafkaProducer& producer, ReplayClock& clock, const ReplayProgress& progress,
            const std::atomic<bool>* stop)
      : options_(options),
        schema_(schema),
        reader_(reader),
        producer_(producer),
        clock_(clock),
        progress_(progress),
        stop_(stop),
        delayed_labels_(options.label_delay_seconds.has_value()) {}

  ReplayReport Run() {
    const absl::Time start = clock_.Now();
    PrepareFieldNames();
    if (absl::Status s = PublishRows(start); !s.ok()) report_.error = std::move(s);
    if (report_.error.ok() && !report_.interrupted) {
      if (absl::Status s = PublishRemainingLabels(); !s.ok()) report_.error = std::move(s);
    }
    report_.pending_labels_dropped = pending_.size();
    Flush();
    report_.seconds = absl::ToDoubleSeconds(clock_.Now() - start);
    return std::move(report_);
  }

 private:
  bool StopRequested() const { return stop_ != nullptr && stop_->load(); }

  // The JSON text `"name":` of every feature column, made once.
  void PrepareFieldNames() {
    field_names_.resize(schema_.columns);
    for (std::size_t column : schema_.features) {
      std::string& name = field_names_[column];
      if (!AppendJsonText(&name, schema_.names[column], &scratch_)) {
        ++report_.invalid_utf8_fields;
      }
      name.push_back(':');
    }
  }

  absl::Status PublishRows(absl::Time start) {
    std::vector<std::string_view> fields;
    std::uint64_t row = 0;
    for (;; ++row) {
      if (options_.limit.has_value() && row >= *options_.limit) return absl::OkStatus();
      if (StopRequested()) {
        report_.interrupted = true;
        return absl::OkStatus();
      }
      absl::StatusOr<bool> more = reader_.Next(&fields);
      if (!more.ok()) {
        // A read of a quiet pipe cancelled by a stop request ends the input, as a stop.
        if (absl::IsCancelled(more.status()) && StopRequested()) {
          report_.interrupted = true;
          return absl::OkStatus();
        }
        return more.status();
      }
      if (!*more) return absl::OkStatus();
      if (fields.size() != schema_.columns) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s:%d: row has %d fields but the header has %d", reader_.name(),
                            reader_.line(), fields.size(), schema_.columns));
      }
      if (options_.rate.has_value()) {
        // Row i is due at start + i / rate: a schedule, not a gap after each row, so time spent
        // publishing does not slow the average rate down.
        const absl::Time due = start + absl::Seconds(static_cast<double>(row) / *options_.rate);
        if (absl::Status s = WaitUntil(due); !s.ok() || report_.interrupted) return s;
      }
      const absl::Time now = clock_.Now();
      if (absl::Status s = PublishDueLabels(now); !s.ok()) return s;
      if (absl::Status s = PublishEvent(fields, row, now); !s.ok()) return s;
      if (report_.interrupted) return absl::OkStatus();
      ServeDeliveries(absl::ZeroDuration());
      if (progress_) {
        if (options_.limit.has_value()) {
          progress_(report_.rows, report_.rows, *options_.limit);
        } else {
          progress_(report_.rows, reader_.bytes_read(), reader_.size_bytes());
        }
      }
    }
  }

  absl::Status PublishEvent(std::span<const std::string_view> fields, std::uint64_t row,
                            absl::Time now) {
    id_.clear();
    if (schema_.id.has_value()) {
      const std::string_view id = fields[*schema_.id];
      if (id.empty()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s:%d: empty id in column '%s' (--id): every event needs one",
                            reader_.name(), reader_.line(), schema_.names[*schema_.id]));
      }
      // The id is also the record's key: keep it valid UTF-8 in both places.
      if (ScanUtf8(id, nullptr)) {
        id_.assign(id);
      } else {
        ScanUtf8(id, &id_);
        ++report_.invalid_utf8_fields;
      }
    } else {
      absl::StrAppend(&id_, row);
    }
    const std::int64_t time_ms = absl::ToUnixMillis(now);

    json_.clear();
    json_.append("{\"id\":");
    AppendJsonString(&json_, id_);
    if (schema_.key.has_value() && !fields[*schema_.key].empty()) {
      json_.append(",\"key\":");
      Count(AppendJsonText(&json_, fields[*schema_.key], &scratch_));
    }
    absl::StrAppend(&json_, ",\"time\":", time_ms);
    std::string_view label;
    if (schema_.label.has_value()) label = fields[*schema_.label];
    if (!label.empty() && !delayed_labels_) {
      json_.append(",\"label\":");
      Count(AppendJsonLabel(&json_, label, &scratch_));
    }
    for (std::size_t column : schema_.features) {
      const std::string_view field = fields[column];
      if (field.empty()) continue;  // a missing value
      json_.push_back(',');
      json_.append(field_names_[column]);
      if (std::optional<double> number = features::ParseNumber(field); number.has_value()) {
        AppendJsonNumber(&json_, *number);
      } else {
        Count(AppendJsonText(&json_, field, &scratch_));
      }
    }
    json_.push_back('}');

    KafkaProduceRecord record;
    record.topic = options_.topic;
    record.key = id_;
    record.value = json_;
    record.timestamp_ms = time_ms;
    record.token = kEventToken;
    if (absl::Status s = Produce(record); !s.ok() || report_.interrupted) {
      return Annotate(s, absl::StrFormat("%s:%d", reader_.name(), reader_.line()));
    }
    ++report_.rows;

    if (delayed_labels_ && !label.empty()) {
      PendingLabel pending;
      pending.due = now + absl::Seconds(*options_.label_delay_seconds);
      pending.id = id_;
      pending.value = "{\"id\":";
      AppendJsonString(&pending.value, id_);
      pending.value.append(",\"label\":");
      Count(AppendJsonLabel(&pending.value, label, &scratch_));
      pending.value.push_back('}');
      // Due times never decrease (the clock never goes backwards and the delay is constant),
      // so appending keeps the queue ordered by due time.
      pending_.push_back(std::move(pending));
    }
    return absl::OkStatus();
  }

  // Publishes, in order, the pending labels due at `now`.
  absl::Status PublishDueLabels(absl::Time now) {
    while (!pending_.empty() && pending_.front().due <= now) {
      if (absl::Status s = PublishLabel(pending_.front(), now); !s.ok() || report_.interrupted) {
        return s;
      }
      pending_.pop_front();
    }
    return absl::OkStatus();
  }

  absl::Status PublishLabel(const PendingLabel& label, absl::Time now) {
    KafkaProduceRecord record;
    record.topic = options_.labels_topic;
    record.key = label.id;
    record.value = label.value;
    record.timestamp_ms = absl::ToUnixMillis(now);
    record.token = kLabelToken;
    if (absl::Status s = Produce(record); !s.ok() || report_.interrupted) {
      return Annotate(s, absl::StrFormat("label of id '%s'", label.id));
    }
    ++report_.labels;
    return absl::OkStatus();
  }

  // At the end of the data: paced, wait for each remaining label's due time; unpaced, publish
  // them all now (in due order).
  absl::Status PublishRemainingLabels() {
    if (pending_.empty()) return absl::OkStatus();
    if (options_.rate.has_value()) return WaitUntil(pending_.back().due);
    while (!pending_.empty()) {
      if (absl::Status s = PublishLabel(pending_.front(), clock_.Now());
          !s.ok() || report_.interrupted) {
        return s;
      }
      pending_.pop_front();
    }
    return absl::OkStatus();
  }

  // Sleeps until `target`, publishing labels as they come due and serving delivery reports.
  // Returns early (setting interrupted) on a stop request.
  absl::Status WaitUntil(absl::Time target) {
    while (true) {
      const absl::Time now = clock_.Now();
      if (absl::Status s = PublishDueLabels(now); !s.ok() || report_.interrupted) return s;
      if (now >= target) return absl::OkStatus();
      if (StopRequested()) {
        report_.interrupted = true;
        return absl::OkStatus();
      }
      absl::Time wake = target;
      if (!pending_.empty()) wake = std::min(wake, pending_.front().due);
      clock_.SleepFor(std::min(wake - now, kMaxSleep));
      ServeDeliveries(absl::ZeroDuration());
    }
  }

  // Produce, waiting out a full queue (ResourceExhausted) by serving delivery reports. A stop
  // request while waiting gives up on the record (setting interrupted, returning OK).
  absl::Status Produce(const KafkaProduceRecord& record) {
    while (true) {
      absl::Status s = producer_.Produce(record);
      if (!absl::IsResourceExhausted(s)) return s;
      ++report_.queue_full_waits;
      if (StopRequested()) {
        report_.interrupted = true;
        return absl::OkStatus();
      }
      ServeDeliveries(kQueueFullWait);
    }
  }

  void ServeDeliveries(absl::Duration timeout) {
    deliveries_.clear();
    producer_.PollDeliveries(timeout, &deliveries_);
    for (const KafkaDeliveryReport& d : deliveries_) {
      if (d.status.ok()) {
        ++(d.token == kLabelToken ? report_.labels_delivered : report_.events_delivered);
        continue;
      }
      if (report_.failed_deliveries++ == 0) {
        report_.first_failure = absl::StrFormat("%s record with key '%s' to %s: %s",
                                                d.token == kLabelToken ? "label" : "event",
                                                d.key.value_or(""), d.topic, d.status.message());
      }
    }
  }

  void Flush() {
    const absl::Status flushed = producer_.Flush(options_.flush_timeout);
    ServeDeliveries(absl::ZeroDuration());
    if (flushed.ok()) return;
    report_.undelivered = producer_.InFlight();
    if (report_.undelivered == 0 && report_.error.ok()) report_.error = flushed;
  }

  void Count(bool valid_utf8) {
    if (!valid_utf8) ++report_.invalid_utf8_fields;
  }

  static absl::Status Annotate(const absl::Status& s, std::string_view where) {
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrFormat("%s: %s", where, s.message()));
  }

  const ReplayOptions& options_;
  const ReplaySchema& schema_;
  features::CsvReader& reader_;
  KafkaProducer& producer_;
  ReplayClock& clock_;
  const ReplayProgress& progress_;
  const std::atomic<bool>* const stop_;
  const bool delayed_labels_;

  ReplayReport report_;
  // Labels not yet due, ordered by due time. Holds about rate × delay labels when paced; an
  // unpaced replay keeps the labels of the last `delay` seconds of wall time.
  std::deque<PendingLabel> pending_;
  // Reused per row (STYLE.md 9): the event's JSON, its id, UTF-8 repair scratch, reports.
  std::string json_;
  std::string id_;
  std::string scratch_;
  std::vector<KafkaDeliveryReport> deliveries_;
  std::vector<std::string> field_names_;  // `"name":` per feature column
};

}  // namespace

ReplayClock* RealReplayClock() {
  static RealClock* const clock = new RealClock();
  return clock;
}

absl::Status ReplayOptions::Validate() const {
  if (data.empty()) return absl::InvalidArgumentError("--data is required");
  if (topic.empty()) return absl::InvalidArgumentError("--topic is required");
  if (bootstrap.empty()) return absl::InvalidArgumentError("--bootstrap is required");
  if (rate.has_value() && !(std::isfinite(*rate) && *rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--rate must be a positive number of events per second, got %g", *rate));
  }
  if (label_delay_seconds.has_value()) {
    if (!(std::isfinite(*label_delay_seconds) && *label_delay_seconds >= 0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--label-delay must be a number of seconds >= 0, got %g", *label_delay_seconds));
    }
    if (labels_topic.empty()) {
      return absl::InvalidArgumentError("--label-delay needs --labels-topic");
    }
    if (label_column.empty()) {
      return absl::InvalidArgumentError("--label-delay needs --label (the label column)");
    }
  } else if (!labels_topic.empty()) {
    return absl::InvalidArgumentError("--labels-topic needs --label-delay");
  }
  if (!labels_topic.empty() && labels_topic == topic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--labels-topic must differ from --topic ('%s'): label records have no features", topic));
  }
  if (!label_column.empty() && (label_column == id_column || label_column == key_column)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--label column '%s' is also the %s column", label_column,
                        label_column == id_column ? "--id" : "--key"));
  }
  if (properties.contains("bootstrap.servers")) {
    return absl::InvalidArgumentError(
        "--set-property bootstrap.servers: give the brokers with --bootstrap");
  }
  if (flush_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("flush_timeout must be positive");
  }
  return absl::OkStatus();
}

KafkaProducerOptions ReplayProducerOptions(const ReplayOptions& options) {
  KafkaProducerOptions producer;
  producer.properties = options.properties;
  producer.properties["bootstrap.servers"] = options.bootstrap;
  // Both are librdkafka's names for the same setting; a user's choice of either wins.
  if (!producer.properties.contains("message.timeout.ms") &&
      !producer.properties.contains("delivery.timeout.ms")) {
    producer.properties["message.timeout.ms"] = std::string(kReplayMessageTimeoutMs);
  }
  return producer;
}

absl::StatusOr<ReplaySchema> ReplaySchema::FromHeader(const ReplayOptions& options,
                                                      std::span<const std::string_view> header) {
  ReplaySchema schema;
  schema.columns = header.size();
  schema.names.assign(header.begin(), header.end());
  for (std::size_t i = 0; i < header.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (header[i] == header[j]) {
        return absl::InvalidArgumentError(
            absl::StrFormat("column name '%s' appears twice in the header (columns %d and %d)",
                            header[i], j + 1, i + 1));
      }
    }
  }
  const auto find = [&](std::string_view flag, const std::string& name,
                        std::optional<std::size_t>* index) -> absl::Status {
    if (name.empty()) return absl::OkStatus();
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) {
        *index = i;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s column '%s' is not in the header (columns: %s)", flag, name,
        absl::StrJoin(header, ", ", [](std::string* out, std::string_view s) { out->append(s); })));
  };
  if (absl::Status s = find("--id", options.id_column, &schema.id); !s.ok()) return s;
  if (absl::Status s = find("--key", options.key_column, &schema.key); !s.ok()) return s;
  if (absl::Status s = find("--label", options.label_column, &schema.label); !s.ok()) return s;

  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i == schema.id || i == schema.key || i == schema.label) continue;
    const std::string_view name = header[i];
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "column %d has an empty name: a feature needs one (name it in the header)", i + 1));
    }
    if (std::find(std::begin(kReservedNames), std::end(kReservedNames), name) !=
        std::end(kReservedNames)) {
      std::string fix = "rename it or remove it from the data";
      if (name == "id") fix = "choose it with --id id, or " + fix;
      if (name == "key") fix = "choose it with --key key, or " + fix;
      if (name == "label") fix = "choose it with --label label, or " + fix;
      if (name == "time" || name == "event_time") {
        fix += " (the event time is the replay's clock)";
      }
      return absl::InvalidArgumentError(absl::StrFormat(
          "column '%s' would be published as a feature named like the event's \"%s\" field; %s",
          name, name, fix));
    }
    schema.features.push_back(i);
  }
  return schema;
}

ReplayReport PublishReplay(const ReplayOptions& options, const ReplaySchema& schema,
                           features::CsvReader& reader, KafkaProducer& producer, ReplayClock& clock,
                           const ReplayProgress& progress, const std::atomic<bool>* stop) {
  return Publisher(options, schema, reader, producer, clock, progress, stop).Run();
}

std::string FormatReplayReport(const ReplayOptions& options, const ReplayReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "events published   %d to %s (%d delivered)\n", r.rows, options.topic,
                        r.events_delivered);
  if (options.label_delay_seconds.has_value()) {
    absl::StrAppendFormat(&out, "labels published   %d to %s (%d delivered), %g s after events\n",
                          r.labels, options.labels_topic, r.labels_delivered,
                          *options.label_delay_seconds);
  }
  absl::StrAppendFormat(&out, "failed deliveries  %d\n", r.failed_deliveries);
  if (r.undelivered > 0) {
    absl::StrAppendFormat(&out, "undelivered        %d (no delivery report after %s)\n",
                          r.undelivered, absl::FormatDuration(options.flush_timeout));
  }
  absl::StrAppendFormat(&out, "seconds            %.3f\n", r.seconds);
  if (r.invalid_utf8_fields > 0) {
    absl::StrAppendFormat(&out,
                          "note: %d fields were not valid UTF-8; invalid bytes were replaced "
                          "by U+FFFD\n",
                          r.invalid_utf8_fields);
  }
  if (r.interrupted) out += "interrupted by a stop request\n";
  if (r.pending_labels_dropped > 0) {
    absl::StrAppendFormat(&out, "note: %d delayed labels were not published (stopped early)\n",
                          r.pending_labels_dropped);
  }
  return out;
}

void AddReplayCommand(CLI::App& app, ReplayFlags* flags) {
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Publish a CSV dataset to Kafka as JSON events, one per row, keyed by the id:\n"
      "  {\"id\": ..., \"key\": ..., \"time\": <epoch ms>, \"label\": ..., \"<column>\": ...}\n"
      "A field that is a finite number becomes a JSON number, an empty field is left out\n"
      "(missing), anything else is a string. \"time\" is the replay's clock at publication.\n"
      "A feature column may not be named id, key, time, event_time or label.\n"
      "With --label-delay D and --labels-topic L, events carry no label; each labeled row's\n"
      "label is published as {\"id\": ..., \"label\": ...} on L, keyed by the id, D seconds\n"
      "(replay clock) after its event. With --rate the replay waits for the last labels at\n"
      "the end; without --rate the labels not yet due when the data ends are published at\n"
      "once (after every event). Exit status: 0 when every record was delivered, 1 on a data\n"
      "or Kafka error or any failed delivery, 2 for a usage error.");
  ReplayOptions& o = flags->options;
  replay->add_option("--data", o.data, "CSV file with a header row (RFC 4180); '-' reads stdin")
      ->required();
  replay->add_option("--topic", o.topic, "Topic of the events")->required();
  replay->add_option("--bootstrap", o.bootstrap, "Kafka brokers, HOST:PORT[,HOST:PORT...]")
      ->required();
  replay->add_option_function<double>(
      "--rate", [flags](const double& rate) { flags->options.rate = rate; },
      "Events per second (row i is published at start + i/N); default: as fast as possible");
  replay->add_option("--id", o.id_column,
                     "Column holding the event id (default: the 0-based row number)");
  replay->add_option("--key", o.key_column, "Column holding the entity key (\"key\")");
  replay->add_option("--label", o.label_column, "Column holding the label");
  CLI::Option* delay = replay->add_option_function<double>(
      "--label-delay",
      [flags](const double& seconds) { flags->options.label_delay_seconds = seconds; },
      "Publish each label this many seconds after its event, on --labels-topic");
  replay->add_option("--labels-topic", o.labels_topic, "Topic of the delayed labels")->needs(delay);
  delay->needs("--labels-topic");
  replay->add_option_function<std::uint64_t>(
      "--limit", [flags](const std::uint64_t& rows) { flags->options.limit = rows; },
      "Publish at most N rows");
  replay->add_option("--set-property", flags->set_properties,
                     absl::StrFormat("librdkafka producer property name=value (repeatable), e.g. "
                                     "security.protocol=SSL; default message.timeout.ms=%s",
                                     kReplayMessageTimeoutMs));
  replay->add_flag("--no-progress", flags->no_progress, "Never draw the progress bar on stderr");
}

int RunReplayCommand(const ReplayFlags& flags, const KafkaClientFactory& factory,
                     const std::atomic<bool>* stop, ReplayClock* clock) {
  const auto fail = [](int code, absl::string_view message) {
    std::fprintf(stderr, "riffle replay: error: %s\n", std::string(message).c_str());
    return code;
  };
  ReplayOptions options = flags.options;
  learners::OptionList properties;
  if (absl::Status s = ParseAssignments(flags.set_properties, "--set-property", &properties);
      !s.ok()) {
    return fail(kExitUsage, s.message());
  }
  for (auto& [name, value] : properties) options.properties[name] = value;
  if (absl::Status s = options.Validate(); !s.ok()) return fail(kExitUsage, s.message());

  features::CsvReaderOptions reader_options;
  reader_options.cancel = stop;
  absl::StatusOr<std::unique_ptr<features::CsvReader>> reader =
      features::CsvReader::Open(options.data, reader_options);
  if (!reader.ok()) return fail(kExitFailure, reader.status().message());
  std::vector<std::string_view> header;
  absl::StatusOr<bool> has_header = (*reader)->Next(&header);
  if (!has_header.ok()) return fail(kExitFailure, has_header.status().message());
  if (!*has_header) {
    return fail(kExitFailure,
                absl::StrFormat("%s: no header row (empty input)", (*reader)->name()));
  }
  absl::StatusOr<ReplaySchema> schema = ReplaySchema::FromHeader(options, header);
  if (!schema.ok()) return fail(kExitUsage, schema.status().message());
  // After the usage checks, so that a usage error reads the same in every build.
  if (!factory.new_producer) return fail(kExitFailure, "this riffle build has no Kafka client");

  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer =
      factory.new_producer(ReplayProducerOptions(options));
  if (!producer.ok()) {
    return fail(kExitFailure, absl::StrFormat("cannot create the Kafka producer: %s",
                                              producer.status().message()));
  }

  ProgressBar bar(stderr);
  const bool show = bar.enabled() && !flags.no_progress;
  const ReplayReport report =
      PublishReplay(options, *schema, **reader, **producer, *clock,
                    show ? ReplayProgress([&](std::uint64_t rows, std::uint64_t done,
                                              std::optional<std::uint64_t> total) {
                      bar.Update(rows, done, total);
                    })
                         : ReplayProgress(),
                    stop);
  bar.Finish();
  std::fputs(FormatReplayReport(options, report).c_str(), stdout);
  std::fflush(stdout);
  int code = report.interrupted ? 128 + SIGINT : 0;
  if (!report.error.ok()) code = fail(kExitFailure, report.error.message());
  if (report.failed_deliveries > 0) {
    code = fail(kExitFailure, absl::StrFormat("%d deliveries failed; the first: %s",
                                              report.failed_deliveries, report.first_failure));
  }
  if (report.undelivered > 0) {
    code = fail(kExitFailure,
                absl::StrFormat("%d records still undelivered after %s", report.undelivered,
                                absl::FormatDuration(options.flush_timeout)));
  }
  return code;
}

}  // namespace riffle::service
