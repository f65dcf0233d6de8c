#ifndef RIFFLE_FEATURES_CSV_EVENT_DECODER_H_
#define RIFFLE_FEATURES_CSV_EVENT_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/json_decoder.h"

namespace riffle::features {

struct CsvEventDecoderOptions {
  // The columns with a role, by header name; every other column is a feature. These mean what
  // the JsonDecoderOptions fields of the same names mean, and are checked by the same code: each
  // non-empty, all of them distinct.
  std::string id_field = "id";
  std::string key_field = "key";
  // The event time may be in a column of any of these names; a header may hold at most one.
  std::vector<std::string> time_fields = {"time", "event_time"};
  std::string label_field = "label";
  // A record whose id is empty is kMissingId; the header must then have an id column. false:
  // the id is optional, empty when the column or its value is.
  bool require_id = true;
  // How a numeric event time is read (see EpochUnit).
  EpochUnit epoch_unit = EpochUnit::kAuto;

  // Field separator: any single byte except '"', CR and LF.
  char delimiter = ',';
  // Feature columns whose values are always texts, even when they look like numbers: zip codes
  // ("02134" is not 2134), account numbers, codes. Each must be a column of the header (a
  // misspelt name would silently turn zip codes into numbers), non-empty and distinct. A role
  // column named here keeps its role (ids, keys and labels are texts anyway).
  std::vector<std::string> text_columns;
  // Longest message accepted by DecodeMessage, in bytes (kTooLarge above). 1 .. 256 MiB.
  std::size_t max_message_bytes = std::size_t{1} << 20;

  // InvalidArgument naming the offending option.
  absl::Status Validate() const;
};

// Decodes CSV records, with the columns of a header given once, into DecodedEvents: the CSV
// counterpart of JsonDecoder, with the same roles, the same DecodedEvent and the same error
// codes (which name the reason of a dead letter).
//
// Mapping, column by column:
//   * An empty field is missing: an absent feature, or an absent id, key, time or label. (A
//     quoted "" is empty too.)
//   * Feature columns: a field that ParseNumber accepts (decimal, optional sign, surrounding
//     spaces) is FeatureValue::Number; a number too small for a double (1e-400) is 0, its
//     correctly rounded value, as in JSON. Any other field is Text, as is. In text_columns
//     every field is Text. CSV has no booleans: "true" is a text.
//   * The id, key and label are the field's text as is: "007" stays "007", "1" stays "1" (the
//     text JsonDecoder gives for the integer 1, so a 0/1 label decodes to the same classes from
//     either format), "1.0" stays "1.0".
//   * The event time: an RFC 3339 text (see JsonDecoder) or an epoch number per
//     options.epoch_unit; an integer is converted exactly, other numbers to the microsecond.
//
// Errors (DecodeStatus, never a crash and never a guess): a record with another field count
// than the header is kFieldCount; a field that is not UTF-8 kInvalidUtf8; a feature field that
// reads as a number but not a finite one, "nan", "inf", "-Infinity" (any case) or "1e999", is
// kNonFiniteNumber or kNumberOutOfRange: a text "nan" would otherwise become a category and
// hide a producer's bug; a bad time kBadTimestamp; no id while require_id kMissingId. A
// message (DecodeMessage) above max_message_bytes is kTooLarge; one that is not exactly one
// well-formed record kInvalidCsv. Messages name the field as JsonDecoder does, with the
// 1-based column: `features["amount"]: "nan" is not a finite number (column 4)`. The first
// problem (leftmost column) is reported; the event's contents are then unspecified.
//
// Performance: decoding into a reused DecodedEvent allocates nothing once its buffers and the
// decoder's have grown to the size of the records seen. The event owns copies of the names and
// texts, so it outlives both the record and the decoder.
//
// Thread-safety: Decode is const and may run on several threads at once (each with its own
// event); DecodeMessage splits the message into the decoder's own buffers, so one thread at a
// time. Copyable and movable.
class CsvEventDecoder {
 public:
  // The header's names must be non-empty, distinct and UTF-8; an id column is required when
  // options.require_id; at most one of options.time_fields may be a column. InvalidArgument
  // naming the column or option otherwise.
  static absl::StatusOr<CsvEventDecoder> Create(std::span<const std::string_view> header,
                                                CsvEventDecoderOptions options = {});

  // Decodes one record's fields (from CsvReader::Next) into *event, replacing its contents.
  DecodeStatus Decode(std::span<const std::string_view> fields, DecodedEvent* event) const;

  // Decodes one record given whole (a Kafka message value, or one line) with SplitCsvRecord:
  // RFC 4180 quoting, one trailing LF or CRLF allowed, no byte order mark skipped.
  DecodeStatus DecodeMessage(std::string_view message, DecodedEvent* event);

  const CsvEventDecoderOptions& options() const { return options_; }
  // The header's names, in column order.
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  enum class Role : std::uint8_t { kFeature, kTextFeature, kId, kKey, kTime, kLabel };

  CsvEventDecoder(CsvEventDecoderOptions options, std::vector<std::string> columns,
                  std::vector<Role> roles);

  DecodeStatus DecodeFeature(std::size_t column, std::string_view field, DecodedEvent* event) const;
  DecodeStatus DecodeTime(std::size_t column, std::string_view field, DecodedEvent* event) const;
  DecodeStatus AddEntry(std::size_t column, double number, std::string_view text, bool is_text,
                        DecodedEvent* event) const;
  DecodeStatus FieldError(DecodeError code, std::size_t column, std::string_view what) const;

  CsvEventDecoderOptions options_;
  std::vector<std::string> columns_;
  std::vector<Role> roles_;  // parallel to columns_
  // DecodeMessage's split record, reused.
  std::vector<std::string_view> fields_;
  std::string scratch_;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_CSV_EVENT_DECODER_H_
