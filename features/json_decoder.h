#ifndef RIFFLE_FEATURES_JSON_DECODER_H_
#define RIFFLE_FEATURES_JSON_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/event.h"

namespace riffle::features {

// Why an event could not be decoded. The numeric values and the names of DecodeErrorName() are
// stable: they travel with a rejected message to the dead-letter topic (as a header) and are
// counted by name, so a code is never renumbered or reused; new codes are appended.
enum class DecodeError : std::uint8_t {
  kOk = 0,
  kInvalidJson = 1,        // not JSON: syntax, a bad escape, trailing content, empty message
  kInvalidUtf8 = 2,        // bytes that are not UTF-8, or a \u escape of a lone surrogate
  kNotAnObject = 3,        // the message is JSON but not an object
  kTooLarge = 4,           // above max_message_bytes
  kTooDeep = 5,            // objects (or skipped arrays) nested deeper than max_depth
  kNumberOutOfRange = 6,   // a number beyond double's range (1e999, a 400-digit integer)
  kNonFiniteNumber = 7,    // NaN, Infinity, -Infinity (not JSON, but some writers emit them)
  kBadLabelType = 8,       // a label that is not a string, an integer or a boolean
  kBadTimestamp = 9,       // an event time that is neither RFC 3339 nor an epoch number
  kDuplicateField = 10,    // a name given twice (after flattening), or two event-time fields
  kEmptyFieldName = 11,    // "" as a name at any level
  kMissingId = 12,         // no id (or a null one) while require_id
  kBadIdType = 13,         // an id or key that is not a non-empty string or an integer
  kUnsupportedArray = 14,  // an array while skip_arrays is false
  kNullValue = 15,         // a null while null_is_missing is false
  kFieldCount = 16,        // CSV: a record with more or fewer fields than the header
  kInvalidCsv = 17,        // CSV: malformed quoting, or not exactly one record in a message
};

// "INVALID_JSON", "TOO_DEEP", ...: the code as an upper-case identifier ("OK" for kOk).
std::string_view DecodeErrorName(DecodeError code);

// The outcome of decoding one message: a code and, for an error, a message naming the field
// as the pipeline does, e.g. `features["amount"]: number out of range (1e999)`, or
// `label["is_fraud"]: ...`, or `message: ...` for the message as a whole. An OK status does
// not allocate.
class DecodeStatus {
 public:
  DecodeStatus() = default;
  DecodeStatus(DecodeError code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == DecodeError::kOk; }
  DecodeError code() const { return code_; }
  const std::string& message() const { return message_; }
  // OK, or InvalidArgument("<DecodeErrorName>: <message>") for the gRPC and eval paths.
  absl::Status ToStatus() const;

 private:
  DecodeError code_ = DecodeError::kOk;
  std::string message_;
};

// How the decoder reads an event time given as a JSON number.
enum class EpochUnit : std::uint8_t {
  // Magnitude below 1e11: seconds; at or above: milliseconds. 1e11 seconds is the year 5138;
  // 1e11 milliseconds is 1973-03-03, so any event time since 1973 is read correctly either way.
  kAuto,
  kSeconds,
  kMillis,
  kMicros,
};

struct JsonDecoderOptions {
  // Top-level or dotted (flattened) names of the fields with a role. Every other field is a
  // feature. Each must be non-empty, and all of them distinct.
  std::string id_field = "id";
  std::string key_field = "key";
  // The event time may be under any of these names; at most one of them per event.
  std::vector<std::string> time_fields = {"time", "event_time"};
  std::string label_field = "label";

  // An event without an id (absent or null) is kMissingId. false: the id is optional, empty
  // when absent.
  bool require_id = true;
  // A present-but-null field (a feature, or key, time or label) is treated as absent. false: a
  // null anywhere is kNullValue.
  bool null_is_missing = true;
  // false: an array anywhere is kUnsupportedArray (a feature vector has no place for a list,
  // and silently dropping one could hide a producer's schema change). true: arrays are still
  // checked (well-formed, no NaN, within max_depth) but contribute nothing.
  bool skip_arrays = false;
  // How a numeric event time is read (see EpochUnit).
  EpochUnit epoch_unit = EpochUnit::kAuto;

  // Longest accepted message in bytes (kTooLarge above). 1 .. 256 MiB.
  std::size_t max_message_bytes = std::size_t{1} << 20;
  // Longest accepted field name after flattening ("a.b.c"), in bytes (kTooLarge above).
  // 1 .. 64 KiB. The decoded event's names and texts together are also bounded, by four times
  // max_message_bytes (kTooLarge above): flattening repeats an object's name in each of its
  // fields' names, so without the bounds a crafted 1 MiB message could decode to gigabytes.
  std::size_t max_name_bytes = 1024;
  // Deepest accepted nesting; the message's own object is level 1, so 1 accepts no nested
  // object. 1 .. 256.
  std::size_t max_depth = 16;

  // InvalidArgument naming the offending option.
  absl::Status Validate() const;
};

// One decoded event. It owns all of its storage (names, texts, id, key, label), so its views
// stay valid until it is decoded into again or destroyed, independently of the decoder and of
// the message's bytes. Decoding into the same DecodedEvent reuses its buffers: once they have
// grown to the size of the events seen, decoding allocates nothing.
class DecodedEvent {
 public:
  DecodedEvent() = default;
  // Views point into the object's own buffers; copying would leave them pointing into the
  // source, so an event is only moved (vectors keep their buffers when moved).
  DecodedEvent(const DecodedEvent&) = delete;
  DecodedEvent& operator=(const DecodedEvent&) = delete;
  DecodedEvent(DecodedEvent&&) = default;
  DecodedEvent& operator=(DecodedEvent&&) = default;

  // The id: a JSON string as is, an integer as its decimal text ("-12"). Empty when absent
  // (only possible if require_id is false).
  std::string_view id() const { return id_; }
  // The key (the entity: card, user, ...), as the id; nullopt when absent or null.
  std::optional<std::string_view> key() const {
    return has_key_ ? std::optional<std::string_view>(key_) : std::nullopt;
  }
  // Event time in microseconds since the Unix epoch (UTC); nullopt when absent or null.
  std::optional<std::int64_t> event_time_micros() const { return event_time_micros_; }
  // The label: a JSON string as is (never empty), an integer as its decimal text ("1", "-3"),
  // true/false as "1"/"0" (so a boolean label and a 0/1 label are the same classes). nullopt
  // when absent or null: an unlabeled event.
  std::optional<std::string_view> label() const {
    return has_label_ ? std::optional<std::string_view>(label_) : std::nullopt;
  }
  // The features, in message order, with dotted names for nested fields ("merchant.country").
  std::span<const NamedFeature> features() const { return features_; }

  void Clear();

 private:
  friend class JsonDecoder;
  friend class CsvEventDecoder;

  // A feature (or, with is_object, the dotted path of an object, kept only to detect a name
  // given twice) whose strings are at offsets in arena_: views are made once decoding is done,
  // because arena_ may move while it grows. (While a JSON event follows its decoder's layout,
  // features are viewed at once and only objects are entries, named at offsets in
  // shared_names_; leaving the layout moves everything to this form.)
  struct Entry {
    std::uint32_t name_begin;
    std::uint32_t name_size;
    std::uint32_t text_begin;
    std::uint32_t text_size;
    double number;
    bool is_text;
    bool is_object;
  };

  // The decoders' two steps: copy a feature's name and text into arena_ (offsets fit 32 bits:
  // the decoders bound the arena far below 4 GiB), then, once every entry is in, make the
  // views of the features (objects left out).
  void AppendEntry(std::string_view name, double number, std::string_view text, bool is_text,
                   bool is_object);
  // As AppendEntry, for a name that is at `name_begin` in the names of the JSON decoder's layout
  // (see shared_names_): only the text is copied.
  void AppendEntryWithSharedName(std::uint32_t name_begin, std::uint32_t name_size, double number,
                                 std::string_view text, bool is_text, bool is_object);
  void BuildViews();

  std::string id_;
  std::string key_;
  std::string label_;
  bool has_key_ = false;
  bool has_label_ = false;
  std::optional<std::int64_t> event_time_micros_;
  // A vector, not a string: a short string's bytes live inside the object (SSO) and would move
  // with it, leaving the views dangling; a vector's buffer moves with the vector.
  std::vector<char> arena_;
  std::vector<Entry> entries_;
  std::vector<NamedFeature> features_;
  // The names of the JSON decoder's layout (see JsonDecoder), which features_ view while the
  // event follows it, kept alive by this reference. Clear() keeps it, so the next event of the
  // same layout decoded into this object does not touch the count.
  std::shared_ptr<const char> shared_names_;
};

// Inline: both decoders call them once per field, on their hot paths.
inline void DecodedEvent::AppendEntry(std::string_view name, double number, std::string_view text,
                                      bool is_text, bool is_object) {
  const auto name_begin = static_cast<std::uint32_t>(arena_.size());
  arena_.insert(arena_.end(), name.begin(), name.end());
  AppendEntryWithSharedName(name_begin, static_cast<std::uint32_t>(name.size()), number, text,
                            is_text, is_object);
}

inline void DecodedEvent::AppendEntryWithSharedName(std::uint32_t name_begin,
                                                    std::uint32_t name_size, double number,
                                                    std::string_view text, bool is_text,
                                                    bool is_object) {
  Entry& entry = entries_.emplace_back();
  entry.name_begin = name_begin;
  entry.name_size = name_size;
  entry.text_begin = static_cast<std::uint32_t>(arena_.size());
  entry.text_size = static_cast<std::uint32_t>(text.size());
  // (Most entries are numbers: no call for an empty text.)
  if (!text.empty()) arena_.insert(arena_.end(), text.begin(), text.end());
  entry.number = number;
  entry.is_text = is_text;
  entry.is_object = is_object;
}

inline void DecodedEvent::BuildViews() {
  for (const Entry& e : entries_) {
    if (e.is_object) continue;
    // Member by member into the vector (see JsonDecoder::Impl::AddEntry).
    NamedFeature& f = features_.emplace_back();
    f.name = std::string_view(arena_.data() + e.name_begin, e.name_size);
    f.value.number = e.number;
    if (e.is_text) {
      f.value.kind = FeatureValue::Kind::kText;
      f.value.text = std::string_view(arena_.data() + e.text_begin, e.text_size);
    }
  }
}

// Decodes one JSON object (a Kafka message, one line of a JSON-lines file) into a DecodedEvent,
// with simdjson's On-Demand API.
//
// Mapping: the fields named in the options give the id, key, event time and label; every other
// field is a feature. A number becomes FeatureValue::Number (the nearest double: integers
// beyond 2^53 round, and a number too small for a double, 1e-400, is 0, its correctly rounded
// value), a string becomes Text (unescaped, any UTF-8), true/false Number 1/0, null an absent
// feature. An object's fields become features named "<object>.<field>", recursively. Which
// values suit a declared feature (a text for a numeric feature) is the Pipeline's business:
// Pipeline::Validate rejects it.
//
// Event time: an RFC 3339 string, "2024-05-01T12:00:00Z", "2024-05-01T14:00:00.250+02:00" (T,
// t or a space between date and time, Z or z or a numeric offset, any number of fractional
// digits of which the first six count, second 60 read as the next second), or a number of
// seconds, milliseconds or microseconds since the epoch as options.epoch_unit says (fractions
// allowed, rounded to the microsecond). Anything else is kBadTimestamp.
//
// Errors (see DecodeError): never a crash and never a guess. The first problem found is
// reported; the event's contents are then unspecified (cleared or partially filled).
//
// Performance: the message is copied into a padded buffer the decoder reuses (simdjson reads
// past the end of its input), and simdjson's parser buffers grow to the largest message seen;
// with a warm DecodedEvent, decoding allocates nothing.
//
// Layouts: the events of a stream usually carry the same fields in the same order. The decoder
// remembers the keys of the last event it decoded in full whose names are all distinct and
// whose keys and names take at most twice its size (its layout; one event's, never more). A
// field whose key is, byte for byte, the layout's key at the same position and
// nesting needs no unescaping, no dotted-name building and no role lookup, and its name is not
// copied: the event shares the layout's names (reference-counted; they outlive the decoder if
// the event does). An event whose keys are all the layout's, or the first of them, needs no
// duplicate-name check either. At the first key that differs the decoder continues as for any
// new layout, and that event's keys become the layout if it decodes. Results never depend on
// this: the same message decodes to the same event, or the same error, whatever came before.
//
// While there is a layout, a message is first read by a direct scan of its bytes, without
// simdjson. It goes on while the keys are the layout's, in order (all of them: a message with
// fewer or more keys is not the scan's), checking the structure as it goes, and it reads the
// values itself: numbers, strings (escapes included), booleans, objects, nulls (where
// null_is_missing), ids and keys that are strings or integers written as their decimal text,
// labels that are such strings, integers or booleans, times that are RFC 3339 strings or such
// integers. At anything else (another key, an array, a malformed value, any error) it gives
// up, and the message is decoded again from the start as above: the scan accepts only valid
// JSON and reads each value as that path does (numbers with the same reader, ReadJsonNumber in
// the .cc), so the outcome is the same either way. After 8
// messages in a row that it gives up on and that then decode (a stream whose events seldom
// follow the one before), the next 256 go straight to simdjson.
//
// Thread-safety: none; use one decoder per thread. Decoders are cheap to move, not copyable.
class JsonDecoder {
 public:
  static absl::StatusOr<JsonDecoder> Create(JsonDecoderOptions options = {});

  JsonDecoder(JsonDecoder&&) noexcept;
  JsonDecoder& operator=(JsonDecoder&&) noexcept;
  ~JsonDecoder();

  // Decodes `message` into *event (whose previous contents are replaced).
  DecodeStatus Decode(std::string_view message, DecodedEvent* event);

  const JsonDecoderOptions& options() const;
  // Bytes held: the message buffer, the layout and the keys being recorded (not simdjson's
  // parser buffers). Grows with the largest message, never with the number of messages.
  std::size_t MemoryBytes() const;
  // How many messages the direct scan along the layout decoded (see Layouts), for tests and
  // benchmarks.
  std::uint64_t scanned_messages() const;

 private:
  struct Impl;
  explicit JsonDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace json_decoder_internal {

// A JSON number token of the form -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 19 digits (a
// fraction's leading zeros count) that make an integer up to 2^53, followed by nothing but
// whitespace: true and its correctly rounded value in *out (the same double as
// simdjson's). false for anything else (exponents, long or malformed numbers), left to the
// decoder's general reader. Exposed for tests.
bool ParseShortDecimal(std::string_view token, double* out);
// The same number at *p in a buffer that has, after it, a byte that cannot continue a number
// (a terminator): true, its value in *out and *p after it, if the number is followed by a byte
// that is not a digit, '.', 'e', 'E', '+' or '-'. false for anything else (*p unchanged).
bool ParseShortDecimalAt(const char** p, double* out);

}  // namespace json_decoder_internal

// Parses an RFC 3339 timestamp (as described for JsonDecoder) into microseconds since the
// epoch; nullopt if `text` is not one or is outside years 0000-9999. Exposed for the CSV decoder
// and for tests.
std::optional<std::int64_t> ParseRfc3339Micros(std::string_view text);

// An epoch number as microseconds since the epoch, in `unit` (kAuto as EpochUnit says): an
// integer (`integer`, with `number` its double) exactly unless the product overflows, any other
// number through a double rounded to the microsecond. nullopt if the result does not fit an
// int64. Shared by the JSON and CSV decoders, so both read an epoch time the same way.
std::optional<std::int64_t> EpochToMicros(std::optional<std::int64_t> integer, double number,
                                          EpochUnit unit);

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_JSON_DECODER_H_
