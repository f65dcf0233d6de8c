#ifndef RIFFLE_SERVICE_REPLAY_COMMAND_H_
#define RIFFLE_SERVICE_REPLAY_COMMAND_H_

// `riffle replay`: publishes a CSV dataset to Kafka as JSON events, one per row, optionally
// paced and with the labels held back and published later on their own topic, as the stream
// Riffle's Kafka path reads (features/json_decoder.h) and as a live system would produce it.
//
// Pieces, so that each can be tested without a broker and without sleeping:
//   ReplayOptions           what to publish (Validate: usage errors)
//   ReplaySchema            each CSV column's role, from the header (usage errors)
//   PublishReplay           the loop: rows → JSON → KafkaProducer, label queue, pacing, report
//   RunReplayCommand        the command line: opens the data, makes the producer from a
//                           KafkaClientFactory (so riffle_service never links librdkafka),
//                           draws the progress bar, prints the report, picks the exit status.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "features/csv_reader.h"
#include "service/kafka_client.h"
#include "service/kafka_factory.h"

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}  // namespace CLI

namespace riffle::service {

// The replay's clock: the event time written into each record and the pacing of --rate and
// --label-delay. Injected (STYLE.md 8) so tests move time by hand and never sleep.
// checkpoints::Env has a clock but no sleep, and its clock is the wall clock, which may step;
// the replay wants time that never goes backwards (pacing, label due times).
//
// Implementations must be thread-compatible; PublishReplay calls it from one thread.
class ReplayClock {
 public:
  virtual ~ReplayClock() = default;
  // The current time; never decreases.
  virtual absl::Time Now() = 0;
  // Returns after `d` has passed on this clock (at once for d <= 0).
  virtual void SleepFor(absl::Duration d) = 0;
};

// The real clock: the wall time when first called, advanced by a monotonic clock from then on
// (so record times are epoch times, yet never step backwards). Process-lifetime singleton.
ReplayClock* RealReplayClock();

struct ReplayOptions {
  // CSV file with a header row (features/csv_reader.h); "-" reads stdin.
  std::string data;
  // Topic of the events.
  std::string topic;
  // bootstrap.servers of the producer.
  std::string bootstrap;
  // Events per second (> 0): row i (0-based) is published no earlier than start + i / rate,
  // so the average rate is `rate` and a stall is caught up at full speed. nullopt: as fast as
  // the producer accepts records.
  std::optional<double> rate;
  // Columns with a role (empty: none). id: the event's "id" and the record's Kafka key (without
  // it, the 0-based data row number). key: the event's "key" (the entity). label: the event's
  // "label", or the label record's with label_delay.
  std::string id_column;
  std::string key_column;
  std::string label_column;
  // With label_delay (seconds, >= 0) and labels_topic, both required together and only with
  // label_column: events carry no label; each labeled row's label is published as
  // {"id": ..., "label": ...} on labels_topic, keyed by the id, label_delay seconds (on the
  // replay's clock) after its event. Labels come due between events (in due order, before the
  // next event); at the end of the data the remaining ones are waited for with `rate`, and
  // published at once without it (an unpaced replay does not stall for the delay).
  std::optional<double> label_delay_seconds;
  std::string labels_topic;
  // Publish at most this many rows. nullopt: all.
  std::optional<std::uint64_t> limit;
  // librdkafka producer properties, passed through (not bootstrap.servers: that is `bootstrap`).
  KafkaProperties properties;
  // Longest wait, at the end, for the delivery reports of records still in flight; those still
  // unreported then are counted as undelivered.
  absl::Duration flush_timeout = absl::Seconds(30);

  // InvalidArgument naming the flag (--rate, --label-delay, ...) for a usage error.
  absl::Status Validate() const;
};

// librdkafka's default message.timeout.ms is 5 minutes; a replay against an unreachable broker
// should fail sooner than that, and within flush_timeout, so that an undeliverable record is
// reported as a failed delivery with librdkafka's reason. Overridable with --set-property.
inline constexpr std::string_view kReplayMessageTimeoutMs = "15000";

// The producer options of a replay: options.properties, bootstrap.servers = options.bootstrap,
// and message.timeout.ms = kReplayMessageTimeoutMs unless set.
KafkaProducerOptions ReplayProducerOptions(const ReplayOptions& options);

// Each CSV column's role, decided from the header.
struct ReplaySchema {
  // Column indices of the roles; nullopt when the role has no column.
  std::optional<std::size_t> id;
  std::optional<std::size_t> key;
  std::optional<std::size_t> label;
  // Every other column, in header order, with its name: the event's features.
  std::vector<std::size_t> features;
  std::vector<std::string> names;  // all columns' names, as in the header
  // The header's width: every row must have this many fields.
  std::size_t columns = 0;

  // Usage errors are InvalidArgument naming the column: a --id/--key/--label column not in the
  // header, a feature column named "id", "key", "time", "event_time" or "label" (it would
  // collide with a role's field in the JSON; drop or rename it, or choose it as that role), an
  // empty or duplicate column name.
  static absl::StatusOr<ReplaySchema> FromHeader(const ReplayOptions& options,
                                                 std::span<const std::string_view> header);
};

// Called as rows are published: rows so far, and progress `done` of `total` (bytes of the
// file, or rows of --limit), total nullopt when unknown (stdin).
using ReplayProgress =
    std::function<void(std::uint64_t rows, std::uint64_t done, std::optional<std::uint64_t> total)>;

struct ReplayReport {
  // Data rows read and published (accepted by the producer) as events.
  std::uint64_t rows = 0;
  // Label records published (accepted) on the labels topic.
  std::uint64_t labels = 0;
  // Delivery reports: stored by the broker, and failed (first failure's message kept).
  std::uint64_t events_delivered = 0;
  std::uint64_t labels_delivered = 0;
  std::uint64_t failed_deliveries = 0;
  std::string first_failure;
  // Records still without a delivery report when the final flush gave up (flush_timeout).
  std::uint64_t undelivered = 0;
  // Times Produce found the producer's queue full (ResourceExhausted) and had to wait.
  std::uint64_t queue_full_waits = 0;
  // Text fields (or column names) that were not valid UTF-8: each invalid sequence was
  // replaced by U+FFFD so that every record is valid JSON.
  std::uint64_t invalid_utf8_fields = 0;
  // Set when a stop was requested.
  bool interrupted = false;
  // Delayed labels never published because the replay ended early (a stop or an error).
  std::uint64_t pending_labels_dropped = 0;
  double seconds = 0;
  // Why the replay stopped before the end of the data: a malformed or ragged CSV row (the
  // message names the line), an empty id, a record the producer refused (not ResourceExhausted,
  // which is waited out). Rows published before it were flushed and are counted above.
  absl::Status error;

  // Whether everything read was delivered: no error, no failed or undelivered record.
  bool ok() const { return error.ok() && failed_deliveries == 0 && undelivered == 0; }
};

// Publishes the rows `reader` has left (positioned after the header `schema` was made from) to
// `producer`, as ReplayOptions describes, then flushes. Row format, one JSON object per row on
// options.topic, keyed by the id:
//   {"id": "<id>", "key": "<key>", "time": <ms>, "label": <label>, "<column>": <value>, ...}
// "id" is the id column's text (an empty id stops the replay with an error) or the 0-based
// row number; "key" is present when the key column is chosen and the field is not empty;
// "time" is the replay clock's time at publication in milliseconds since the Unix epoch (also
// the Kafka record's timestamp); "label" is present when the label column is chosen without a
// delay and the field is not empty. The label is a JSON integer when its text is one (an
// optional '-' and digits without leading zeros, within int64), otherwise a string: Riffle
// reads both as the same class. Features follow in header order: a field that parses fully as
// a finite number (features::ParseNumber) is a JSON number (shortest text that reads back as
// the same double), an empty field is left out (missing), anything else is a JSON string.
//
// `stop` (optional) is polled between rows and while waiting: the replay then stops reading,
// drops the labels not yet due and flushes what was published. `progress` may be empty.
ReplayReport PublishReplay(const ReplayOptions& options, const ReplaySchema& schema,
                           features::CsvReader& reader, KafkaProducer& producer, ReplayClock& clock,
                           const ReplayProgress& progress = {},
                           const std::atomic<bool>* stop = nullptr);

// Human-readable summary of a report (several lines, for stdout).
std::string FormatReplayReport(const ReplayOptions& options, const ReplayReport& report);

// `riffle replay`: the options, and the flags that are not options.
struct ReplayFlags {
  ReplayOptions options;
  // --set-property name=value, in order (a later one wins).
  std::vector<std::string> set_properties;
  bool no_progress = false;
};

// Registers the `replay` subcommand on `app`, parsing into *flags (which must outlive `app`).
void AddReplayCommand(CLI::App& app, ReplayFlags* flags);

// Runs `riffle replay` with the producer `factory` makes (an empty factory: "this riffle build
// has no Kafka client"). Returns the exit status: 0; 1 when the data cannot be read, the
// producer cannot be made, the replay stopped on an error or any record was not delivered;
// 2 for a usage error; 128 + SIGINT when `stop` ended it. One line per error on stderr, the
// report on stdout.
int RunReplayCommand(const ReplayFlags& flags, const KafkaClientFactory& factory,
                     const std::atomic<bool>* stop, ReplayClock* clock = RealReplayClock());

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_REPLAY_COMMAND_H_
