#include "features/csv_event_decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_format.h"
#include "features/csv_reader.h"

namespace riffle::features {
namespace {

// How much of a name or a field an error message quotes.
constexpr std::size_t kQuoteBytes = 40;
// Entry offsets into the event's arena are 32-bit.
constexpr std::size_t kMaxArenaBytes = std::numeric_limits<std::uint32_t>::max();

// At most kQuoteBytes of `s`, cut at a UTF-8 character boundary so that the message stays
// valid UTF-8 (it becomes a Kafka header and a log line). Only called on checked UTF-8.
std::string Quote(std::string_view s) {
  std::size_t n = std::min(s.size(), kQuoteBytes);
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

// Strict UTF-8 (simdjson's validator: no overlongs, surrogates or code points above U+10FFFF).
// Most fields are short and ASCII: eight bytes at a time decide those without the validator,
// whose dispatch costs more than such a field.
bool IsUtf8(std::string_view s) {
  const char* p = s.data();
  const std::size_t n = s.size();
  std::uint64_t bits = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    bits |= word;
  }
  for (; i < n; ++i) bits |= static_cast<unsigned char>(p[i]);
  if ((bits & 0x8080808080808080) == 0) return true;
  return simdjson::validate_utf8(p, n);
}

// [first, last) without surrounding spaces and a leading '+', as ParseNumber reads a number;
// false if nothing is left or a '-' follows the '+'.
bool TrimNumber(std::string_view s, const char** first, const char** last) {
  const char* f = s.data();
  const char* l = f + s.size();
  while (f < l && *f == ' ') ++f;
  while (l > f && l[-1] == ' ') --l;
  if (f < l && *f == '+') {
    ++f;
    if (f < l && *f == '-') return false;
  }
  *first = f;
  *last = l;
  return f < l;
}

// For a decimal that std::from_chars calls out of range: whether its magnitude is above one,
// an overflow (1e999), rather than below, an underflow (1e-400). The order of magnitude is
// that of the first non-zero digit plus the exponent; out-of-range values are hundreds of
// orders from zero, and digit counts are bounded by the field's size, so an exponent
// saturated far beyond any field's size decides as well as the exact one.
bool IsOverflow(const char* first, const char* last) {
  if (first < last && *first == '-') ++first;
  std::int64_t digits = 0;  // digits seen, the point skipped
  std::int64_t integer_digits = -1;
  std::int64_t first_nonzero = -1;
  const char* p = first;
  for (; p < last && *p != 'e' && *p != 'E'; ++p) {
    if (*p == '.') {
      integer_digits = digits;
      continue;
    }
    if (*p != '0' && first_nonzero < 0) first_nonzero = digits;
    ++digits;
  }
  if (integer_digits < 0) integer_digits = digits;
  constexpr std::int64_t kExponentCap = std::int64_t{1} << 50;
  std::int64_t exponent = 0;
  if (p < last) {
    ++p;
    const bool negative = p < last && *p == '-';
    if (p < last && (*p == '-' || *p == '+')) ++p;
    for (; p < last; ++p) exponent = std::min(exponent * 10 + (*p - '0'), kExponentCap);
    if (negative) exponent = -exponent;
  }
  return integer_digits - 1 - first_nonzero + exponent >= 0;
}

}  // namespace

absl::Status CsvEventDecoderOptions::Validate() const {
  // The role fields, epoch_unit and max_message_bytes mean what they mean for JSON events, so
  // JsonDecoderOptions::Validate, the one place that checks them, checks them here too (its
  // messages name the same fields).
  JsonDecoderOptions json;
  json.id_field = id_field;
  json.key_field = key_field;
  json.time_fields = time_fields;
  json.label_field = label_field;
  json.epoch_unit = epoch_unit;
  json.max_message_bytes = max_message_bytes;
  if (absl::Status s = json.Validate(); !s.ok()) return s;
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    return absl::InvalidArgumentError("delimiter: must not be a quote, CR or LF");
  }
  std::unordered_set<std::string_view> names;
  for (std::size_t i = 0; i < text_columns.size(); ++i) {
    if (text_columns[i].empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("text_columns[%d]: must not be empty", i));
    }
    if (!names.insert(text_columns[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("text_columns[%d]: \"%s\" is given twice", i, text_columns[i]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CsvEventDecoder> CsvEventDecoder::Create(std::span<const std::string_view> header,
                                                        CsvEventDecoderOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (header.empty()) return absl::InvalidArgumentError("header: no columns");
  std::vector<std::string> columns;
  std::vector<Role> roles;
  std::unordered_set<std::string_view> seen;
  std::size_t time_column = header.size();
  bool has_id = false;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string_view name = header[c];
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("header: column %d has no name", c + 1));
    }
    if (!IsUtf8(name)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("header: the name of column %d is not valid UTF-8", c + 1));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "header: column %d, \"%s\", has the name of an earlier column", c + 1, Quote(name)));
    }
    Role role = Role::kFeature;
    if (name == options.id_field) {
      role = Role::kId;
      has_id = true;
    } else if (name == options.key_field) {
      role = Role::kKey;
    } else if (name == options.label_field) {
      role = Role::kLabel;
    } else {
      for (const std::string& t : options.time_fields) {
        if (name != t) continue;
        if (time_column != header.size()) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "header: two event-time columns, \"%s\" (column %d) and \"%s\" (column %d); at "
              "most one of time_fields may be a column",
              Quote(header[time_column]), time_column + 1, Quote(name), c + 1));
        }
        time_column = c;
        role = Role::kTime;
      }
    }
    columns.emplace_back(name);
    roles.push_back(role);
  }
  if (options.require_id && !has_id) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "header: no id column \"%s\" (require_id is set)", Quote(options.id_field)));
  }
  for (const std::string& t : options.text_columns) {
    std::size_t c = 0;
    while (c < columns.size() && columns[c] != t) ++c;
    if (c == columns.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("text_columns: \"%s\" is not a column of the header", Quote(t)));
    }
    if (roles[c] == Role::kFeature) roles[c] = Role::kTextFeature;
  }
  return CsvEventDecoder(std::move(options), std::move(columns), std::move(roles));
}

CsvEventDecoder::CsvEventDecoder(CsvEventDecoderOptions options, std::vector<std::string> columns,
                                 std::vector<Role> roles)
    : options_(std::move(options)), columns_(std::move(columns)), roles_(std::move(roles)) {}

DecodeStatus CsvEventDecoder::FieldError(DecodeError code, std::size_t column,
                                         std::string_view what) const {
  std::string_view role = "features";
  switch (roles_[column]) {
    case Role::kFeature:
    case Role::kTextFeature:
      break;
    case Role::kId:
      role = "id";
      break;
    case Role::kKey:
      role = "key";
      break;
    case Role::kTime:
      role = "time";
      break;
    case Role::kLabel:
      role = "label";
      break;
  }
  return DecodeStatus(code, absl::StrFormat("%s[\"%s\"]: %s (column %d)", role,
                                            Quote(columns_[column]), what, column + 1));
}

DecodeStatus CsvEventDecoder::Decode(std::span<const std::string_view> fields,
                                     DecodedEvent* event) const {
  event->Clear();
  if (fields.size() != columns_.size()) {
    return DecodeStatus(DecodeError::kFieldCount,
                        absl::StrFormat("message: %d fields, but the header has %d columns",
                                        fields.size(), columns_.size()));
  }
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const std::string_view field = fields[c];
    if (!IsUtf8(field)) return FieldError(DecodeError::kInvalidUtf8, c, "not valid UTF-8");
    if (field.empty()) {
      if (roles_[c] == Role::kId && options_.require_id) {
        return FieldError(DecodeError::kMissingId, c, "missing");
      }
      continue;
    }
    switch (roles_[c]) {
      case Role::kFeature:
        if (DecodeStatus s = DecodeFeature(c, field, event); !s.ok()) return s;
        break;
      case Role::kTextFeature:
        if (DecodeStatus s = AddEntry(c, 0.0, field, /*is_text=*/true, event); !s.ok()) return s;
        break;
      case Role::kId:
        event->id_.assign(field);
        break;
      case Role::kKey:
        event->key_.assign(field);
        event->has_key_ = true;
        break;
      case Role::kLabel:
        event->label_.assign(field);
        event->has_label_ = true;
        break;
      case Role::kTime:
        if (DecodeStatus s = DecodeTime(c, field, event); !s.ok()) return s;
        break;
    }
  }
  // Views only now: the arena may have moved while it grew.
  event->BuildViews();
  return DecodeStatus();
}

DecodeStatus CsvEventDecoder::DecodeMessage(std::string_view message, DecodedEvent* event) {
  if (message.size() > options_.max_message_bytes) {
    event->Clear();
    return DecodeStatus(DecodeError::kTooLarge,
                        absl::StrFormat("message: %d bytes, above the limit of %d", message.size(),
                                        options_.max_message_bytes));
  }
  if (absl::Status s = SplitCsvRecord(message, options_.delimiter, &fields_, &scratch_); !s.ok()) {
    event->Clear();
    return DecodeStatus(DecodeError::kInvalidCsv,
                        absl::StrFormat("message: %s", std::string(s.message())));
  }
  return Decode(fields_, event);
}

DecodeStatus CsvEventDecoder::DecodeFeature(std::size_t column, std::string_view field,
                                            DecodedEvent* event) const {
  if (const std::optional<double> number = ParseNumber(field); number.has_value()) {
    return AddEntry(column, *number, {}, /*is_text=*/false, event);
  }
  // ParseNumber refuses non-finite and out-of-range numbers too; std::from_chars tells those
  // from texts. A text "nan" or "1e999" is a producer's number gone wrong, not a category.
  const char* first;
  const char* last;
  if (TrimNumber(field, &first, &last)) {
    double parsed;
    const auto [end, ec] = std::from_chars(first, last, parsed);
    if (end == last && ec == std::errc()) {
      return FieldError(DecodeError::kNonFiniteNumber, column,
                        absl::StrFormat("\"%s\" is not a finite number", Quote(field)));
    }
    if (end == last && ec == std::errc::result_out_of_range) {
      if (IsOverflow(first, last)) {
        return FieldError(DecodeError::kNumberOutOfRange, column,
                          absl::StrFormat("number out of range (%s)", Quote(field)));
      }
      // Below the smallest subnormal: zero is the correctly rounded value, as in JSON.
      return AddEntry(column, *first == '-' ? -0.0 : 0.0, {}, /*is_text=*/false, event);
    }
  }
  return AddEntry(column, 0.0, field, /*is_text=*/true, event);
}

DecodeStatus CsvEventDecoder::DecodeTime(std::size_t column, std::string_view field,
                                         DecodedEvent* event) const {
  if (std::optional<std::int64_t> micros = ParseRfc3339Micros(field); micros.has_value()) {
    event->event_time_micros_ = *micros;
    return DecodeStatus();
  }
  // An epoch number, read as JsonDecoder reads a JSON number: integers exactly, others through
  // a double to the microsecond.
  const char* first;
  const char* last;
  std::int64_t integer = 0;
  double number = 0.0;
  bool is_integer = false;
  if (TrimNumber(field, &first, &last)) {
    const auto [end, ec] = std::from_chars(first, last, integer);
    is_integer = end == last && ec == std::errc();
  }
  if (is_integer) {
    number = static_cast<double>(integer);
  } else if (const std::optional<double> parsed = ParseNumber(field); parsed.has_value()) {
    number = *parsed;
  } else {
    return FieldError(DecodeError::kBadTimestamp, column,
                      absl::StrFormat("\"%s\" is neither an RFC 3339 time such as "
                                      "2024-05-01T12:00:00Z nor an epoch number",
                                      Quote(field)));
  }
  const std::optional<std::int64_t> micros =
      EpochToMicros(is_integer ? std::optional<std::int64_t>(integer) : std::nullopt, number,
                    options_.epoch_unit);
  if (!micros.has_value()) {
    return FieldError(DecodeError::kBadTimestamp, column,
                      absl::StrFormat("%s is out of range as an epoch time", Quote(field)));
  }
  event->event_time_micros_ = *micros;
  return DecodeStatus();
}

DecodeStatus CsvEventDecoder::AddEntry(std::size_t column, double number, std::string_view text,
                                       bool is_text, DecodedEvent* event) const {
  std::vector<char>& arena = event->arena_;
  const std::string& name = columns_[column];
  if (arena.size() + name.size() + text.size() > kMaxArenaBytes) {
    return FieldError(
        DecodeError::kTooLarge, column,
        absl::StrFormat("the decoded event is above %d bytes of names and texts", kMaxArenaBytes));
  }
  event->AppendEntry(name, number, text, is_text, /*is_object=*/false);
  return DecodeStatus();
}

}  // namespace riffle::features
