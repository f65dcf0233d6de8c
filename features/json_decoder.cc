#include "features/json_decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "features/bytes_equal.h"

namespace riffle::features {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kMaxMessageBytesLimit = std::size_t{256} << 20;
constexpr std::size_t kMaxDepthLimit = 256;
constexpr std::size_t kMaxNameBytesLimit = std::size_t{64} << 10;
// Decoded names and texts may take this many times max_message_bytes (see the header).
constexpr std::size_t kArenaFactor = 4;
// A layout's keys and names may take this many times the size of the message they come from.
constexpr std::size_t kLayoutFactor = 2;
// How much of an offending token an error message quotes.
constexpr std::size_t kQuoteBytes = 40;
// After this many messages in a row that the direct scan along the layout gives up on, the
// next kScanPause messages are decoded by simdjson without trying it (see the header).
constexpr std::uint32_t kScanMissesBeforePause = 8;
constexpr std::uint32_t kScanPause = 256;

// The role of a field, from its (dotted) name.
enum class Role : std::uint8_t { kFeature, kId, kKey, kTime, kLabel };

// JSON's whitespace: space, tab, line feed, carriage return.
bool IsJsonWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A byte a JSON number is made of: one that continues a number, where a number read so far
// must end ("1.2.3", "1e5e5", "01" are not numbers).
bool IsNumberByte(char c) {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsJsonWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

// A token for an error message: at most kQuoteBytes, cut at a UTF-8 character boundary so the
// message itself stays valid UTF-8 (it becomes a Kafka header and a log line).
std::string_view Quote(std::string_view s) {
  s = TrimRight(s);
  if (s.size() <= kQuoteBytes) return s;
  std::size_t n = kQuoteBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// NaN, Infinity, -Infinity, inf, ... as some JSON writers (Python's json, JavaScript's
// String(x)) emit them. None is JSON; they get their own code because the fix differs.
bool IsNonFiniteLiteral(std::string_view raw) {
  raw = TrimRight(raw);
  if (!raw.empty() && (raw.front() == '-' || raw.front() == '+')) raw.remove_prefix(1);
  return EqualsIgnoreCase(raw, "nan") || EqualsIgnoreCase(raw, "infinity") ||
         EqualsIgnoreCase(raw, "inf");
}

// Whether the raw string token holds a \u escape of a surrogate that simdjson refused: a lone
// high or low surrogate cannot be written as UTF-8.
bool HasSurrogateEscape(std::string_view raw) {
  for (std::size_t i = 0; i + 5 < raw.size(); ++i) {
    if (raw[i] != '\\') continue;
    if (raw[i + 1] == 'u' && (raw[i + 2] == 'd' || raw[i + 2] == 'D')) {
      const char c = raw[i + 3];
      if ((c >= '8' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) return true;
    }
    ++i;  // skip the escaped character, so "\\ud800" (an escaped backslash) is not a match
  }
  return false;
}

// -?[1-9][0-9]{0,17} or 0: an integer whose decimal text (std::to_chars) is itself.
bool IsCanonicalInteger(std::string_view s) {
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || s.size() > 18) return false;
  if (s.front() == '0') return s.size() == 1 && !negative;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFeature:
      return "features";
    case Role::kId:
      return "id";
    case Role::kKey:
      return "key";
    case Role::kTime:
      return "time";
    case Role::kLabel:
      return "label";
  }
  return "features";
}

const char* JsonTypeName(od::json_type type) {
  switch (type) {
    case od::json_type::array:
      return "an array";
    case od::json_type::object:
      return "an object";
    case od::json_type::number:
      return "a number";
    case od::json_type::string:
      return "a string";
    case od::json_type::boolean:
      return "a boolean";
    case od::json_type::null:
      return "null";
  }
  return "a value";
}

// Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian), after Howard Hinnant's
// days_from_civil (http://howardhinnant.github.io/date_algorithms.html).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned DaysInMonth(int y, int m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

namespace json_decoder_internal {

namespace {

// Powers of ten that are exact doubles (all up to 1e22 are; 19 digits need up to 1e19).
constexpr double kPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most 19 digits in all (so the digits fit 64 bits)
// from *p, up to `end` (the first byte not read; with kBounded false, up to the first byte that
// is not part of it), and leaves *p after it. false on anything else up to that point: a leading
// zero, "1.", too many digits.
template <bool kBounded>
bool ReadShortDecimal(const char** p, const char* end, bool* negative, std::uint64_t* digits,
                      int* exponent) {
  const auto more = [end](const char* at) { return !kBounded || at != end; };
  const char* q = *p;
  *negative = more(q) && *q == '-';
  if (*negative) ++q;
  std::uint64_t value = 0;
  int count = 0;
  if (!more(q) || !IsDigit(*q)) return false;
  if (*q == '0') {
    ++q;
    if (more(q) && IsDigit(*q)) return false;  // a leading zero
  } else {
    for (; more(q) && IsDigit(*q); ++q, ++count) {
      if (count == 19) return false;
      value = value * 10 + static_cast<std::uint64_t>(*q - '0');
    }
  }
  *exponent = 0;
  if (more(q) && *q == '.') {
    ++q;
    const char* const fraction = q;
    for (; more(q) && IsDigit(*q); ++q, ++count) {
      if (count == 19) return false;
      value = value * 10 + static_cast<std::uint64_t>(*q - '0');
    }
    if (q == fraction) return false;  // "1."
    *exponent = -static_cast<int>(q - fraction);
  }
  *digits = value;
  *p = q;
  return true;
}

// Clinger's fast path: the digits and the power of ten are exact doubles, so one division
// gives the correctly rounded value, the one every correct parser (simdjson included) gives.
// (At most 19 digits: the exponent is at least -19, within the table.)
bool ShortDecimalValue(bool negative, std::uint64_t digits, int exponent, double* out) {
  if (digits > (std::uint64_t{1} << 53)) return false;
  const double magnitude =
      static_cast<double>(digits) / kPowersOfTen[static_cast<std::size_t>(-exponent)];
  *out = negative ? -magnitude : magnitude;
  return true;
}

// The end of the JSON number at p, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, or null if
// there is none; with kBounded, reading no further than `end`, otherwise up to the first byte
// that cannot continue it.
template <bool kBounded>
const char* JsonNumberEnd(const char* p, const char* end) {
  const auto at = [end](const char* q) { return !kBounded || q != end ? *q : '\0'; };
  if (at(p) == '-') ++p;
  if (at(p) == '0') {
    ++p;
  } else if (at(p) >= '1' && at(p) <= '9') {
    while (IsDigit(at(p))) ++p;
  } else {
    return nullptr;
  }
  if (at(p) == '.') {
    ++p;
    if (!IsDigit(at(p))) return nullptr;
    while (IsDigit(at(p))) ++p;
  }
  if (at(p) == 'e' || at(p) == 'E') {
    ++p;
    if (at(p) == '+' || at(p) == '-') ++p;
    if (!IsDigit(at(p))) return nullptr;
    while (IsDigit(at(p))) ++p;
  }
  return p;
}

// What ReadJsonNumber made of a token.
enum class NumberRead : std::uint8_t { kNumber, kOutOfRange, kNotANumber };
// `token` (exactly: no whitespace) as a JSON number (JsonNumberEnd's grammar): kNumber and its
// correctly rounded double (0 or a subnormal for one too small for a normal double, with its sign),
// kOutOfRange for one beyond double's range, kNotANumber for anything else. With std::from_chars
// rather than simdjson, whose 3.0.1 misreads "0." followed by 20 or more digits
// (0.95000000000000000000 as 0.0277) and rejects exponents of 20 or more digits.
NumberRead ReadJsonNumber(std::string_view token, double* out) {
  const char* const begin = token.data();
  const char* const end = begin + token.size();
  if (token.empty() || JsonNumberEnd<true>(begin, end) != end) return NumberRead::kNotANumber;
  const auto [stop, ec] = std::from_chars(begin, end, *out);
  if (ec == std::errc() && stop == end) return NumberRead::kNumber;
  // result_out_of_range: the correctly rounded value is infinite or zero (a subnormal is a
  // value), and *out is left as it was. Which one: the decimal exponent of the first
  // significant digit (the token is a number, so its parts are where the grammar says).
  const char* q = begin + (*begin == '-' ? 1 : 0);
  std::int64_t exponent = 0;
  if (*q != '0') {
    for (; q != end && IsDigit(*q); ++q) ++exponent;
  } else if (++q != end && *q == '.') {
    for (++q; q != end && *q == '0'; ++q) --exponent;
  }
  while (q != end && *q != 'e' && *q != 'E') ++q;
  if (q != end) {
    ++q;
    const bool negative = *q == '-';
    if (*q == '+' || *q == '-') ++q;
    std::int64_t e = 0;
    for (; q != end; ++q) e = std::min<std::int64_t>(e * 10 + (*q - '0'), std::int64_t{1} << 40);
    exponent += negative ? -e : e;
  }
  if (exponent > 0) return NumberRead::kOutOfRange;
  *out = *begin == '-' ? -0.0 : 0.0;
  return NumberRead::kNumber;
}

}  // namespace

bool ParseShortDecimal(std::string_view token, double* out) {
  const char* p = token.data();
  const char* const end = p + token.size();
  bool negative;
  std::uint64_t digits;
  int exponent;
  if (!ReadShortDecimal<true>(&p, end, &negative, &digits, &exponent)) return false;
  // An exponent part, or anything else but the whitespace before the next token.
  for (; p != end; ++p) {
    if (!IsJsonWhitespace(*p)) return false;
  }
  return ShortDecimalValue(negative, digits, exponent, out);
}

bool ParseShortDecimalAt(const char** p, double* out) {
  const char* q = *p;
  bool negative;
  std::uint64_t digits;
  int exponent;
  // No end: the number stops at a byte that is not part of it, at the latest the terminator.
  if (!ReadShortDecimal<false>(&q, nullptr, &negative, &digits, &exponent)) return false;
  // An exponent part, or a malformed number ("1.2.3", "1-2"): for ReadJsonNumber or simdjson.
  if (IsNumberByte(*q)) return false;
  if (!ShortDecimalValue(negative, digits, exponent, out)) return false;
  *p = q;
  return true;
}

}  // namespace json_decoder_internal

std::optional<std::int64_t> ParseRfc3339Micros(std::string_view s) {
  auto digits = [s](std::size_t pos, std::size_t n, int* out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !digits(0, 4, &year) || s[4] != '-' || !digits(5, 2, &month) ||
      s[7] != '-' || !digits(8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &minute) || s[16] != ':' ||
      !digits(17, 2, &second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (s[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    std::int64_t scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      micros += (s[pos] - '0') * scale;  // digits past the sixth have scale 0: truncated
      scale /= 10;
      ++pos;
    }
    if (pos == first) return std::nullopt;
  }
  if (pos >= s.size()) return std::nullopt;
  int offset_seconds = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int offset_hour, offset_minute;
    if (!digits(pos + 1, 2, &offset_hour) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, &offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return std::nullopt;
    }
    offset_seconds = (offset_hour * 3600 + offset_minute * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size() || month < 1 || month > 12 || day < 1 ||
      static_cast<unsigned>(day) > DaysInMonth(year, month) || hour > 23 || minute > 59 ||
      second > 60) {
    return std::nullopt;
  }
  // Second 60 (a leap second) is read as second 0 of the next minute, as POSIX time does.
  const std::int64_t seconds =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset_seconds;
  return seconds * 1000000 + micros;
}

std::string_view DecodeErrorName(DecodeError code) {
  switch (code) {
    case DecodeError::kOk:
      return "OK";
    case DecodeError::kInvalidJson:
      return "INVALID_JSON";
    case DecodeError::kInvalidUtf8:
      return "INVALID_UTF8";
    case DecodeError::kNotAnObject:
      return "NOT_AN_OBJECT";
    case DecodeError::kTooLarge:
      return "TOO_LARGE";
    case DecodeError::kTooDeep:
      return "TOO_DEEP";
    case DecodeError::kNumberOutOfRange:
      return "NUMBER_OUT_OF_RANGE";
    case DecodeError::kNonFiniteNumber:
      return "NON_FINITE_NUMBER";
    case DecodeError::kBadLabelType:
      return "BAD_LABEL_TYPE";
    case DecodeError::kBadTimestamp:
      return "BAD_TIMESTAMP";
    case DecodeError::kDuplicateField:
      return "DUPLICATE_FIELD";
    case DecodeError::kEmptyFieldName:
      return "EMPTY_FIELD_NAME";
    case DecodeError::kMissingId:
      return "MISSING_ID";
    case DecodeError::kBadIdType:
      return "BAD_ID_TYPE";
    case DecodeError::kUnsupportedArray:
      return "UNSUPPORTED_ARRAY";
    case DecodeError::kNullValue:
      return "NULL_VALUE";
    case DecodeError::kFieldCount:
      return "FIELD_COUNT";
    case DecodeError::kInvalidCsv:
      return "INVALID_CSV";
  }
  return "UNKNOWN";
}

absl::Status DecodeStatus::ToStatus() const {
  if (ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: %s", std::string(DecodeErrorName(code_)), message_));
}

absl::Status JsonDecoderOptions::Validate() const {
  auto error = [](std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", std::string(field), what));
  };
  std::unordered_set<std::string_view> names;
  auto check_name = [&](std::string_view field, const std::string& name) {
    if (name.empty()) return error(field, "must not be empty");
    if (!names.insert(name).second) {
      return error(field, absl::StrFormat("\"%s\" is already the name of another role", name));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check_name("id_field", id_field); !s.ok()) return s;
  if (absl::Status s = check_name("key_field", key_field); !s.ok()) return s;
  if (absl::Status s = check_name("label_field", label_field); !s.ok()) return s;
  for (std::size_t i = 0; i < time_fields.size(); ++i) {
    if (absl::Status s = check_name(absl::StrFormat("time_fields[%d]", i), time_fields[i]);
        !s.ok()) {
      return s;
    }
  }
  if (max_message_bytes < 1 || max_message_bytes > kMaxMessageBytesLimit) {
    return error("max_message_bytes", absl::StrFormat("%d is outside 1 .. %d", max_message_bytes,
                                                      kMaxMessageBytesLimit));
  }
  if (max_depth < 1 || max_depth > kMaxDepthLimit) {
    return error("max_depth", absl::StrFormat("%d is outside 1 .. %d", max_depth, kMaxDepthLimit));
  }
  if (max_name_bytes < 1 || max_name_bytes > kMaxNameBytesLimit) {
    return error("max_name_bytes",
                 absl::StrFormat("%d is outside 1 .. %d", max_name_bytes, kMaxNameBytesLimit));
  }
  if (epoch_unit > EpochUnit::kMicros) return error("epoch_unit", "unknown unit");
  return absl::OkStatus();
}

std::optional<std::int64_t> EpochToMicros(std::optional<std::int64_t> integer, double number,
                                          EpochUnit unit) {
  if (unit == EpochUnit::kAuto) {
    unit = std::abs(number) < 1e11 ? EpochUnit::kSeconds : EpochUnit::kMillis;
  }
  const std::int64_t factor = unit == EpochUnit::kSeconds  ? 1000000
                              : unit == EpochUnit::kMillis ? 1000
                                                           : 1;
  std::int64_t micros;
  if (integer.has_value() && !__builtin_mul_overflow(*integer, factor, &micros)) return micros;
  const double scaled = std::round(number * static_cast<double>(factor));
  // 2^63 is exactly representable; anything at or beyond it does not fit an int64.
  if (!(std::abs(scaled) < 9223372036854775808.0)) return std::nullopt;
  return static_cast<std::int64_t>(scaled);
}

void DecodedEvent::Clear() {
  id_.clear();
  key_.clear();
  label_.clear();
  has_key_ = false;
  has_label_ = false;
  event_time_micros_.reset();
  arena_.clear();
  entries_.clear();
  features_.clear();
}

struct JsonDecoder::Impl {
  explicit Impl(JsonDecoderOptions o) : options(std::move(o)), parser(options.max_message_bytes) {}

  DecodeStatus Decode(std::string_view message, DecodedEvent* event);
  std::uint64_t scanned_messages() const { return scanned_messages_; }
  std::size_t MemoryBytes() const {
    const auto layout_bytes = [](const Layout& l) {
      return l.chars.capacity() + l.keys.capacity() * sizeof(Layout::Key);
    };
    return sizeof(*this) + buffer_capacity_ + path_.capacity() +
           (layout_ != nullptr ? sizeof(Layout) + layout_bytes(*layout_) : 0) +
           layout_bytes(recording_) + names_.capacity() * sizeof(std::string_view) +
           slots_.capacity() * sizeof(std::uint32_t);
  }

 private:
  using Entry = DecodedEvent::Entry;

  // The keys of an event, in the order DecodeObject meets them (depth first), as the layout
  // the next events are compared with (see "Layouts" in the header). Keys inside skipped arrays
  // are not part of it.
  struct Layout {
    struct Key {
      // The key as escaped in the message, between its quotes; the closing quote follows it in
      // chars (not counted in raw_size), so one comparison checks that the key ends there too.
      std::uint32_t raw_begin;
      std::uint32_t raw_size;
      std::uint32_t path_begin;  // the dotted name
      std::uint32_t path_size;
      std::uint32_t depth;  // 1 for the message's own fields
      Role role;
    };
    std::string_view Path(const Key& key) const {
      return std::string_view(chars.data() + key.path_begin, key.path_size);
    }
    std::string chars;
    std::vector<Key> keys;
  };

  // `object_path` is the dotted name of the object (empty for the message), read only while
  // the event follows the layout (it views the layout's names then); otherwise path_ holds it.
  DecodeStatus DecodeObject(od::object& object, std::size_t depth, std::string_view object_path);
  // `path` is the field's dotted name, for a nested object's fields.
  DecodeStatus DecodeValue(od::value& value, std::size_t depth, Role role, std::string_view path);
  DecodeStatus SkipValue(od::value& value, std::size_t depth);
  DecodeStatus DecodeId(od::value& value, od::json_type type, Role role);
  DecodeStatus DecodeLabel(od::value& value, od::json_type type);
  DecodeStatus DecodeTime(od::value& value, od::json_type type);
  DecodeStatus ReadNumber(od::value& value, std::string_view role, double* out);
  // The decimal text of an integer value into buffer; nullopt (with *status OK) if the number
  // is not an integer that fits 64 bits, or with *status set if it is not a valid number.
  std::optional<std::string_view> IntegerText(od::value& value, std::string_view role,
                                              char (&buffer)[24], DecodeStatus* status);
  // (Always inline, as MatchLayout: both run once per field, and out of line their calls cost
  // more than their bodies.)
  [[gnu::always_inline]] DecodeStatus AddEntry(double number, std::string_view text, bool is_text,
                                               bool is_object);
  DecodeStatus Finish();
  // The state Decode starts from, for event_.
  void Reset();
  // Decode's simdjson path, for the message in buffer_, from a Reset().
  DecodeStatus DecodeWithSimdjson(std::string_view message);
  // The direct scan (see "Layouts" in the header), from the message's first byte: true if the
  // message is decoded (into event_, as the simdjson path would); false if it is to be decoded
  // by the simdjson path, from a Reset().
  bool ScanAlongLayout();
  // *p after an object's opening brace; on success, after its closing one.
  bool ScanObject(const char** p, std::size_t depth);
  // *p at the value of the layout key `key`, at `depth`; on success, after the value.
  bool ScanValue(const char** p, std::size_t depth, const Layout::Key& key);
  // Adds a feature named fast_path_ (the layout's name) to the event while it follows the
  // layout. No bound on the decoded size: AddEntry checks it; the scan needs none (see
  // ScanAlongLayout).
  [[gnu::always_inline]] void AddLayoutFeature(double number, std::string_view text, bool is_text);
  bool ScanId(const char** p, Role role);
  bool ScanLabel(const char** p);
  bool ScanTime(const char** p);
  Role RoleOf(std::string_view name) const;
  // The layout's next key if it is the one at raw_key (what field.key().raw() gives) and at
  // this depth, or null.
  [[gnu::always_inline]] const Layout::Key* MatchLayout(const char* raw_key, std::size_t depth);
  // The event leaves the layout at the current field of the object at `object_path`: the
  // matched keys start the recording of a new layout, the names so far are copied into the
  // event, and path_ becomes the object's path.
  void LeaveLayout(std::string_view object_path);
  // Appends a key to recording_, unless that would pass recording_limit_: then the event
  // records no layout.
  void RecordKey(std::string_view raw, std::string_view path, std::size_t depth, Role role);
  // Whether `names` are all different; *duplicate is then untouched, else set to one that is
  // given twice.
  bool Distinct(const std::vector<std::string_view>& names, std::string_view* duplicate);

  // The dotted name of the field being decoded.
  std::string_view CurrentPath() const { return matching_ ? fast_path_ : std::string_view(path_); }
  // An error about the field being decoded: `<role>["<path>"]: <what>`.
  DecodeStatus FieldError(DecodeError code, std::string_view role, std::string_view what) const {
    return DecodeStatus(code, absl::StrFormat("%s[\"%s\"]: %s", std::string(role),
                                              std::string(Quote(CurrentPath())), what));
  }
  // The escaped text of a field's name, between its quotes, from field.key().raw() taken before
  // unescaped_key() (which consumes the key). Stage 1 has checked that every
  // string is closed, and the padding after the message is zeroed, so the scan stops in bounds.
  std::string_view RawKey(const char* begin) const {
    const char* end = buffer_.get() + buffer_capacity_;
    const char* p = begin;
    while (p < end && *p != '"') p += *p == '\\' ? 2 : 1;
    return std::string_view(begin, static_cast<std::size_t>(std::min(p, end) - begin));
  }
  // simdjson's verdict on the value being decoded, as a code.
  DecodeStatus ValueError(simdjson::error_code e, od::value& value, std::string_view role);

 public:
  JsonDecoderOptions options;
  od::parser parser;

 private:
  // The message, copied with SIMDJSON_PADDING bytes after it.
  std::unique_ptr<char[]> buffer_;
  std::size_t buffer_capacity_ = 0;
  // The end of the message in buffer_.
  const char* message_end_ = nullptr;
  // Dotted name of the field being decoded, once the event has left the layout.
  std::string path_;
  // A string the direct scan unescaped.
  std::string unescaped_;
  // The layout (null before the first event decodes), and the keys of this event while it
  // does not follow it.
  std::shared_ptr<const Layout> layout_;
  Layout recording_;
  // Whether this event's keys are being recorded, and how many bytes of keys and names its
  // layout may have (kLayoutFactor times the message's size).
  bool recording_ok_ = true;
  std::size_t recording_limit_ = 0;
  // Whether every key of this event so far is the layout's at the same position; the position
  // of the next one; the dotted name of the field being decoded (a view of the layout's names);
  // the bytes of the names the event shares with the layout (they count towards the bound on
  // the decoded event's size as if they were copied).
  bool matching_ = false;
  std::size_t position_ = 0;
  std::string_view fast_path_;
  std::size_t shared_name_bytes_ = 0;
  // For the duplicate-name check: the names, and an open-addressing table (index + 1, 0 =
  // empty).
  std::vector<std::string_view> names_;
  std::vector<std::uint32_t> slots_;
  DecodedEvent* event_ = nullptr;
  // Whether each role's field was present in this message, null included.
  bool has_id_ = false;  // a non-null id was decoded
  bool seen_id_ = false;
  bool seen_key_ = false;
  bool seen_label_ = false;
  bool seen_time_ = false;
  std::uint64_t scanned_messages_ = 0;
  // Messages in a row the direct scan gave up on, and how many more go straight to simdjson.
  std::uint32_t scan_misses_ = 0;
  std::uint32_t scan_pause_ = 0;
};

Role JsonDecoder::Impl::RoleOf(std::string_view name) const {
  if (name == options.id_field) return Role::kId;
  if (name == options.key_field) return Role::kKey;
  if (name == options.label_field) return Role::kLabel;
  for (const std::string& t : options.time_fields) {
    if (name == t) return Role::kTime;
  }
  return Role::kFeature;
}

DecodeStatus JsonDecoder::Impl::ValueError(simdjson::error_code e, od::value& value,
                                           std::string_view role) {
  const std::string_view raw = value.raw_json_token();
  if (IsNonFiniteLiteral(raw)) {
    return FieldError(DecodeError::kNonFiniteNumber, role,
                      absl::StrFormat("%s is not a valid JSON number", std::string(Quote(raw))));
  }
  if (e == simdjson::STRING_ERROR && HasSurrogateEscape(raw)) {
    return FieldError(
        DecodeError::kInvalidUtf8, role,
        absl::StrFormat("a \\u escape of a lone surrogate in %s", std::string(Quote(raw))));
  }
  return FieldError(DecodeError::kInvalidJson, role,
                    absl::StrFormat("invalid JSON at %s: %s", std::string(Quote(raw)),
                                    simdjson::error_message(e)));
}

void JsonDecoder::Impl::Reset() {
  event_->Clear();
  has_id_ = false;
  seen_id_ = false;
  seen_key_ = false;
  seen_label_ = false;
  seen_time_ = false;
  path_.clear();
  matching_ = layout_ != nullptr;
  position_ = 0;
  fast_path_ = {};
  shared_name_bytes_ = 0;
  recording_.chars.clear();
  recording_.keys.clear();
  recording_ok_ = true;
}

DecodeStatus JsonDecoder::Impl::Decode(std::string_view message, DecodedEvent* event) {
  event_ = event;
  Reset();
  if (matching_ && event->shared_names_.get() != layout_->chars.data()) {
    // The event holds the layout whose names it may view from the first field on, so even a
    // partly decoded event (after an error) views nothing it does not own. (Two live layouts
    // never have their names at one address: equal pointers are the same layout.)
    event->shared_names_ = std::shared_ptr<const char>(layout_, layout_->chars.data());
  }
  recording_limit_ = kLayoutFactor * message.size();
  if (message.size() > options.max_message_bytes) {
    return DecodeStatus(DecodeError::kTooLarge,
                        absl::StrFormat("message: %d bytes, above the limit of %d", message.size(),
                                        options.max_message_bytes));
  }
  const std::size_t needed = message.size() + simdjson::SIMDJSON_PADDING;
  if (needed > buffer_capacity_) {
    buffer_capacity_ = std::max(needed, buffer_capacity_ * 2);
    buffer_ = std::make_unique<char[]>(buffer_capacity_);
  }
  if (!message.empty()) std::memcpy(buffer_.get(), message.data(), message.size());
  // simdjson only needs the padding to be allocated; zeroing it keeps tools like Valgrind quiet
  // and costs nothing measurable.
  std::memset(buffer_.get() + message.size(), 0, simdjson::SIMDJSON_PADDING);
  message_end_ = buffer_.get() + message.size();
  // Room for every text the message can decode to (see AddEntry).
  event->arena_.reserve(message.size());
  bool scan_missed = false;
  if (layout_ != nullptr && scan_pause_ == 0) {
    if (ScanAlongLayout()) {
      ++scanned_messages_;
      scan_misses_ = 0;
      return DecodeStatus();
    }
    Reset();  // the arena keeps its room
    scan_missed = true;
  } else if (scan_pause_ > 0) {
    --scan_pause_;
  }
  const DecodeStatus status = DecodeWithSimdjson(message);
  // A stream whose events seldom follow the one before (or have values the scan leaves to
  // simdjson) would pay for a scan and a decode: it pauses the scan. A message that does not
  // decode does not count: it says nothing about the stream's layouts.
  if (scan_missed && status.ok() && ++scan_misses_ == kScanMissesBeforePause) {
    scan_misses_ = 0;
    scan_pause_ = kScanPause;
  }
  return status;
}

DecodeStatus JsonDecoder::Impl::DecodeWithSimdjson(std::string_view message) {
  od::document doc;
  if (simdjson::error_code e =
          parser.iterate(buffer_.get(), message.size(), buffer_capacity_).get(doc)) {
    switch (e) {
      case simdjson::UTF8_ERROR:
        return DecodeStatus(DecodeError::kInvalidUtf8, "message: not valid UTF-8");
      case simdjson::EMPTY:
        return DecodeStatus(DecodeError::kInvalidJson, "message: empty (no JSON value)");
      case simdjson::CAPACITY:
        return DecodeStatus(DecodeError::kTooLarge, "message: above the parser's capacity");
      default:
        return DecodeStatus(DecodeError::kInvalidJson, absl::StrFormat("message: invalid JSON: %s",
                                                                       simdjson::error_message(e)));
    }
  }
  od::json_type type;
  if (simdjson::error_code e = doc.type().get(type)) {
    return DecodeStatus(DecodeError::kInvalidJson,
                        absl::StrFormat("message: invalid JSON: %s", simdjson::error_message(e)));
  }
  if (type != od::json_type::object) {
    // On-Demand guesses a scalar's type from its first byte ("not json" looks like null):
    // validate the whole message (DOM, fully validating; a rare path) before saying it is JSON.
    simdjson::dom::parser validator;
    if (simdjson::error_code e = validator.parse(message.data(), message.size()).error()) {
      if (e == simdjson::UTF8_ERROR) {
        return DecodeStatus(DecodeError::kInvalidUtf8, "message: not valid UTF-8");
      }
      return DecodeStatus(DecodeError::kInvalidJson,
                          absl::StrFormat("message: invalid JSON: %s", simdjson::error_message(e)));
    }
    return DecodeStatus(DecodeError::kNotAnObject,
                        absl::StrFormat("message: %s, not an object", JsonTypeName(type)));
  }
  od::object object;
  if (simdjson::error_code e = doc.get_object().get(object)) {
    return DecodeStatus(DecodeError::kInvalidJson,
                        absl::StrFormat("message: invalid JSON: %s", simdjson::error_message(e)));
  }
  if (DecodeStatus s = DecodeObject(object, 1, /*object_path=*/{}); !s.ok()) return s;
  // On-Demand stops at the end of the first value; anything after it but whitespace is an
  // error, or `{"a":1} {"b":2}` would silently lose its second half.
  const char* trailing = nullptr;
  if (!doc.current_location().get(trailing)) {
    return DecodeStatus(DecodeError::kInvalidJson,
                        absl::StrFormat("message: trailing content at byte %d after the object",
                                        static_cast<std::size_t>(trailing - buffer_.get())));
  }
  if (options.require_id && !has_id_) {
    return DecodeStatus(DecodeError::kMissingId,
                        absl::StrFormat("id[\"%s\"]: missing", options.id_field));
  }
  return Finish();
}

inline const JsonDecoder::Impl::Layout::Key* JsonDecoder::Impl::MatchLayout(const char* raw_key,
                                                                            std::size_t depth) {
  const Layout& layout = *layout_;
  if (position_ >= layout.keys.size()) return nullptr;
  const Layout::Key& key = layout.keys[position_];
  // The key and its closing quote, which must be within the message: then the comparison
  // reads no further.
  const std::size_t size = key.raw_size + 1;
  if (key.depth != depth || size > static_cast<std::size_t>(message_end_ - raw_key) ||
      !BytesEqual(std::string_view(raw_key, size),
                  std::string_view(layout.chars.data() + key.raw_begin, size))) {
    return nullptr;
  }
  ++position_;
  return &key;
}

namespace {

const char* SkipWhitespace(const char* p) {
  // (One comparison for the usual case, a token right away: whitespace is below '!'.)
  while (static_cast<unsigned char>(*p) <= ' ' && IsJsonWhitespace(*p)) ++p;
  return p;
}

// The value of the four hex digits at p, or -1.
int HexQuad(const char* p) {
  int value = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = p[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return -1;  // the zeros after the message stop a scan here too
    }
    value = value * 16 + digit;
  }
  return value;
}

// Appends the escape at p (after its backslash) to *out, as UTF-8, and returns the bytes it
// took; 0 if it is not a JSON escape, or is a \u escape of a lone surrogate (not UTF-8).
std::size_t Unescape(const char* p, std::string* out) {
  switch (*p) {
    case '"':
    case '\\':
    case '/':
      out->push_back(*p);
      return 1;
    case 'b':
      out->push_back('\b');
      return 1;
    case 'f':
      out->push_back('\f');
      return 1;
    case 'n':
      out->push_back('\n');
      return 1;
    case 'r':
      out->push_back('\r');
      return 1;
    case 't':
      out->push_back('\t');
      return 1;
    case 'u':
      break;
    default:
      return 0;
  }
  int code = HexQuad(p + 1);
  std::size_t taken = 5;
  if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF)) return 0;
  if (code >= 0xD800 && code <= 0xDBFF) {
    // A high surrogate: a low one must follow, and the two make one code point.
    if (p[5] != '\\' || p[6] != 'u') return 0;
    const int low = HexQuad(p + 7);
    if (low < 0xDC00 || low > 0xDFFF) return 0;
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    taken = 11;
  }
  const auto byte = [out](int b) { out->push_back(static_cast<char>(b)); };
  if (code < 0x80) {
    byte(code);
  } else if (code < 0x800) {
    byte(0xC0 | (code >> 6));
    byte(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    byte(0xE0 | (code >> 12));
    byte(0x80 | ((code >> 6) & 0x3F));
    byte(0x80 | (code & 0x3F));
  } else {
    byte(0xF0 | (code >> 18));
    byte(0x80 | ((code >> 12) & 0x3F));
    byte(0x80 | ((code >> 6) & 0x3F));
    byte(0x80 | (code & 0x3F));
  }
  return taken;
}

// The string whose opening quote is before *p, if it is valid: no control character (JSON
// allows none unescaped), valid UTF-8, only JSON escapes and none of a lone surrogate. *text
// then views it in the message if it has no escape, or in *unescaped (which it replaces)
// otherwise, as simdjson would unescape it; *p is after its closing quote. The message's
// padding is zeros, a control character, so the scan stops there at the latest.
bool ScanString(const char** p, std::string* unescaped, std::string_view* text) {
  const char* const begin = *p;
  const char* q = begin;
  unsigned char bits = 0;
  bool escaped = false;
  for (;; ++q) {
    const auto c = static_cast<unsigned char>(*q);
    if (c == '"') break;
    if (c < 0x20) return false;
    if (c == '\\') {
      escaped = true;
      ++q;  // the escaped byte: not a closing quote (nor, if a zero, skipped: checked below)
      if (*q == '\0') return false;
    }
    bits |= c;
  }
  const auto size = static_cast<std::size_t>(q - begin);
  if ((bits & 0x80) != 0 && !simdjson::validate_utf8(begin, size)) return false;
  *p = q + 1;
  if (!escaped) {
    *text = std::string_view(begin, size);
    return true;
  }
  unescaped->clear();
  for (const char* r = begin; r < q;) {
    if (*r != '\\') {
      unescaped->push_back(*r++);
      continue;
    }
    const std::size_t taken = Unescape(r + 1, unescaped);
    if (taken == 0) return false;
    r += 1 + taken;
  }
  *text = *unescaped;
  return true;
}

// A JSON number at *p that is not a short decimal (more digits, an exponent), read as
// ReadNumber reads it (json_decoder_internal::ReadJsonNumber): false for anything else, a
// number beyond double's range included (ReadNumber reports it).
bool ParseLongNumberAt(const char** p, double* out) {
  const char* const end = json_decoder_internal::JsonNumberEnd<false>(*p, nullptr);
  if (end == nullptr || IsNumberByte(*end)) return false;
  if (json_decoder_internal::ReadJsonNumber(
          std::string_view(*p, static_cast<std::size_t>(end - *p)), out) !=
      json_decoder_internal::NumberRead::kNumber) {
    return false;
  }
  *p = end;
  return true;
}

// An integer written as its decimal text (IsCanonicalInteger) at *p: true, its text, and *p
// after it.
bool ScanCanonicalInteger(const char** p, std::string_view* text) {
  const char* end = *p;
  while (IsNumberByte(*end)) ++end;
  *text = std::string_view(*p, static_cast<std::size_t>(end - *p));
  if (!IsCanonicalInteger(*text)) return false;
  *p = end;
  return true;
}

// `literal` at *p, then *p after it.
bool ScanLiteral(const char** p, std::string_view literal) {
  if (std::memcmp(*p, literal.data(), literal.size()) != 0) return false;
  *p += literal.size();
  return true;
}

}  // namespace

bool JsonDecoder::Impl::ScanAlongLayout() {
  // AddEntry's bound on the decoded event's names and texts (kArenaFactor times
  // max_message_bytes) holds without a check: the names are the layout's, at most
  // kLayoutFactor times the size of the message that recorded it (recording_limit_), which was
  // at most max_message_bytes, and each is used once; the texts are pieces of this message,
  // unescaped (so no longer than it), at most max_message_bytes.
  static_assert(kLayoutFactor + 1 <= kArenaFactor, "the scan's names and texts fit the bound");
  const char* p = SkipWhitespace(buffer_.get());
  if (*p != '{') return false;
  ++p;
  if (!ScanObject(&p, 1) || position_ != layout_->keys.size()) return false;
  // Only whitespace after the object (the padding's zeros stop the skip at the end).
  if (SkipWhitespace(p) != message_end_) return false;
  return !options.require_id || has_id_;
}

// (Flattened, as ScanValue: everything they call is inlined, but for their recursion. Out of
// line, the calls made per field cost more than the work: BM_JsonDecode30Fields 517 -> 381 ns.)
[[gnu::flatten]] bool JsonDecoder::Impl::ScanObject(const char** p, std::size_t depth) {
  const char* q = SkipWhitespace(*p);
  if (*q == '}') {
    *p = q + 1;
    return true;
  }
  for (;;) {
    if (*q != '"') return false;
    ++q;
    const Layout::Key* key = MatchLayout(q, depth);
    if (key == nullptr) return false;
    q = SkipWhitespace(q + key->raw_size + 1);
    if (*q != ':') return false;
    q = SkipWhitespace(q + 1);
    fast_path_ = layout_->Path(*key);
    if (!ScanValue(&q, depth, *key)) return false;
    q = SkipWhitespace(q);
    if (*q == '}') {
      *p = q + 1;
      return true;
    }
    if (*q != ',') return false;
    q = SkipWhitespace(q + 1);
  }
}

inline void JsonDecoder::Impl::AddLayoutFeature(double number, std::string_view text,
                                                bool is_text) {
  // The feature's view right away: its name is the layout's, and its text cannot move (the
  // arena holds only texts while the event follows the layout, and Decode reserved the
  // message's size for them, which is more than their unescaped size).
  // Written member by member into the vector: a NamedFeature built on the stack, then copied
  // in, is read back as 16-byte words just after it was written in narrower pieces, a
  // store-forwarding stall on every feature.
  NamedFeature& f = event_->features_.emplace_back();
  f.name = fast_path_;
  f.value.number = number;
  if (is_text) {
    std::vector<char>& texts = event_->arena_;
    const std::size_t begin = texts.size();
    texts.insert(texts.end(), text.begin(), text.end());
    f.value.kind = FeatureValue::Kind::kText;
    f.value.text = std::string_view(texts.data() + begin, text.size());
  }
}

[[gnu::flatten]] bool JsonDecoder::Impl::ScanValue(const char** p, std::size_t depth,
                                                   const Layout::Key& key) {
  if (key.role != Role::kFeature) {
    bool& seen = key.role == Role::kId      ? seen_id_
                 : key.role == Role::kKey   ? seen_key_
                 : key.role == Role::kLabel ? seen_label_
                                            : seen_time_;
    if (seen) return false;  // given twice: simdjson's path says so
    seen = true;
    // A null is absent (as DecodeId, DecodeLabel and DecodeTime read it), or an error.
    if (**p == 'n') return options.null_is_missing && ScanLiteral(p, "null");
    switch (key.role) {
      case Role::kId:
      case Role::kKey:
        return ScanId(p, key.role);
      case Role::kLabel:
        return ScanLabel(p);
      default:
        return ScanTime(p);
    }
  }
  // As DecodeValue, for the values it reads itself.
  switch (**p) {
    case '"': {
      ++*p;
      std::string_view text;
      if (!ScanString(p, &unescaped_, &text)) return false;
      AddLayoutFeature(0.0, text, /*is_text=*/true);
      return true;
    }
    case 't':
      if (!ScanLiteral(p, "true")) return false;
      AddLayoutFeature(1.0, {}, /*is_text=*/false);
      return true;
    case 'f':
      if (!ScanLiteral(p, "false")) return false;
      AddLayoutFeature(0.0, {}, /*is_text=*/false);
      return true;
    case 'n':
      return options.null_is_missing && ScanLiteral(p, "null");
    case '{':
      if (depth + 1 > options.max_depth) return false;
      // As AddEntry (no bound on the size: see ScanAlongLayout).
      event_->AppendEntryWithSharedName(
          static_cast<std::uint32_t>(fast_path_.data() - layout_->chars.data()),
          static_cast<std::uint32_t>(fast_path_.size()), 0.0, {}, /*is_text=*/false,
          /*is_object=*/true);
      ++*p;
      return ScanObject(p, depth + 1);
    default: {
      double number;
      if (!json_decoder_internal::ParseShortDecimalAt(p, &number) &&
          !ParseLongNumberAt(p, &number)) {
        return false;
      }
      AddLayoutFeature(number, {}, /*is_text=*/false);
      return true;
    }
  }
}

bool JsonDecoder::Impl::ScanId(const char** p, Role role) {
  // As DecodeId, for a non-empty string or an integer written as its decimal text.
  std::string_view text;
  if (**p == '"') {
    ++*p;
    if (!ScanString(p, &unescaped_, &text) || text.empty()) return false;
  } else if (!ScanCanonicalInteger(p, &text)) {
    return false;
  }
  if (role == Role::kId) {
    event_->id_.assign(text);
    has_id_ = true;
  } else {
    event_->key_.assign(text);
    event_->has_key_ = true;
  }
  return true;
}

bool JsonDecoder::Impl::ScanLabel(const char** p) {
  // As DecodeLabel, for a non-empty string, an integer written as its decimal text, or a
  // boolean.
  std::string_view text;
  switch (**p) {
    case '"':
      ++*p;
      if (!ScanString(p, &unescaped_, &text) || text.empty()) return false;
      break;
    case 't':
      if (!ScanLiteral(p, "true")) return false;
      text = "1";
      break;
    case 'f':
      if (!ScanLiteral(p, "false")) return false;
      text = "0";
      break;
    default:
      if (!ScanCanonicalInteger(p, &text)) return false;
  }
  event_->label_.assign(text);
  event_->has_label_ = true;
  return true;
}

bool JsonDecoder::Impl::ScanTime(const char** p) {
  // As DecodeTime, for an RFC 3339 string or an integer written as its decimal text.
  std::optional<std::int64_t> micros;
  if (**p == '"') {
    ++*p;
    std::string_view text;
    if (!ScanString(p, &unescaped_, &text)) return false;
    micros = ParseRfc3339Micros(text);
  } else {
    std::string_view token;
    std::int64_t integer = 0;
    if (!ScanCanonicalInteger(p, &token) ||
        std::from_chars(token.data(), token.data() + token.size(), integer).ec != std::errc()) {
      return false;
    }
    micros = EpochToMicros(integer, static_cast<double>(integer), options.epoch_unit);
  }
  if (!micros.has_value()) return false;
  event_->event_time_micros_ = *micros;
  return true;
}

void JsonDecoder::Impl::LeaveLayout(std::string_view object_path) {
  const Layout& layout = *layout_;
  // The matched keys start the recording (only they: the layout's other keys are not this
  // event's).
  for (std::size_t k = 0; k < position_; ++k) {
    const Layout::Key& key = layout.keys[k];
    RecordKey(std::string_view(layout.chars.data() + key.raw_begin, key.raw_size), layout.Path(key),
              key.depth, key.role);
  }
  // Until now the features went straight to features_ (their texts are in the arena, which has
  // not moved) and only the objects to entries_ (with their names in the layout). From now on
  // every entry goes to entries_ with its name in the arena, as for a new layout: the features
  // so far are appended to entries_, then all names copied.
  std::vector<char>& arena = event_->arena_;
  std::vector<Entry>& entries = event_->entries_;
  for (const NamedFeature& f : event_->features_) {
    Entry& e = entries.emplace_back();
    e.name_begin = static_cast<std::uint32_t>(f.name.data() - layout.chars.data());
    e.name_size = static_cast<std::uint32_t>(f.name.size());
    e.is_text = f.value.kind == FeatureValue::Kind::kText;
    e.is_object = false;
    e.number = f.value.number;
    e.text_begin = e.is_text ? static_cast<std::uint32_t>(f.value.text.data() - arena.data()) : 0;
    e.text_size = static_cast<std::uint32_t>(f.value.text.size());
  }
  event_->features_.clear();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    const auto begin = static_cast<std::uint32_t>(arena.size());
    arena.insert(arena.end(), layout.chars.data() + e.name_begin,
                 layout.chars.data() + e.name_begin + e.name_size);
    e.name_begin = begin;
  }
  shared_name_bytes_ = 0;
  path_.assign(object_path);
  matching_ = false;
}

void JsonDecoder::Impl::RecordKey(std::string_view raw, std::string_view path, std::size_t depth,
                                  Role role) {
  if (!recording_ok_) return;
  // A layout is kept for events of ordinary shape. Flattening repeats an object's name in each
  // of its fields' names, so a message of many nested keys (nulls included, which make no
  // feature and so meet no other bound) could otherwise record far more than its own size.
  if (recording_.chars.size() + raw.size() + 1 + path.size() > recording_limit_) {
    recording_ok_ = false;
    recording_.chars.clear();
    recording_.keys.clear();
    return;
  }
  Layout::Key& key = recording_.keys.emplace_back();
  key.raw_begin = static_cast<std::uint32_t>(recording_.chars.size());
  key.raw_size = static_cast<std::uint32_t>(raw.size());
  recording_.chars.append(raw);
  recording_.chars.push_back('"');
  key.path_begin = static_cast<std::uint32_t>(recording_.chars.size());
  key.path_size = static_cast<std::uint32_t>(path.size());
  recording_.chars.append(path);
  key.depth = static_cast<std::uint32_t>(depth);
  key.role = role;
}

DecodeStatus JsonDecoder::Impl::DecodeObject(od::object& object, std::size_t depth,
                                             std::string_view object_path) {
  for (auto field_result : object) {
    if (simdjson::error_code e = field_result.error()) {
      return DecodeStatus(
          DecodeError::kInvalidJson,
          absl::StrFormat("features[\"%s\"]: invalid JSON in the object: %s",
                          std::string(Quote(matching_ ? object_path : std::string_view(path_))),
                          simdjson::error_message(e)));
    }
    // The field in place: moving it out (get()) copies it as one 16-byte load of what was just
    // written as two narrower stores, a store-forwarding stall on every field.
    od::field& field = field_result.value_unsafe();
    const char* raw_key = field.key().raw();
    if (matching_) {
      if (const Layout::Key* key = MatchLayout(raw_key, depth)) {
        // A known name: checked (non-empty, within max_name_bytes, unescaped) when the layout
        // was recorded.
        fast_path_ = layout_->Path(*key);
        od::value& value = field.value();
        if (key->role == Role::kFeature) {
          // The commonest field inline: a number feature that is a short decimal (as in
          // ReadNumber; DecodeValue takes every other case).
          const std::string_view token = value.raw_json_token();
          double number;
          if (!token.empty() && (token[0] == '-' || (token[0] >= '0' && token[0] <= '9')) &&
              json_decoder_internal::ParseShortDecimal(token, &number)) {
            if (DecodeStatus s = AddEntry(number, {}, /*is_text=*/false, /*is_object=*/false);
                !s.ok()) {
              return s;
            }
            continue;
          }
        }
        if (DecodeStatus s = DecodeValue(value, depth, key->role, fast_path_); !s.ok()) {
          return s;
        }
        // A nested object may have left the layout: this object's next fields follow path_.
        if (!matching_) path_.assign(object_path);
        continue;
      }
      LeaveLayout(object_path);
    }
    std::string_view name;
    if (simdjson::error_code e = field.unescaped_key().get(name)) {
      return DecodeStatus(
          e == simdjson::STRING_ERROR && HasSurrogateEscape(RawKey(raw_key))
              ? DecodeError::kInvalidUtf8
              : DecodeError::kInvalidJson,
          absl::StrFormat("features[\"%s\"]: a field name that cannot be decoded: %s",
                          std::string(Quote(path_)), simdjson::error_message(e)));
    }
    const std::size_t saved = path_.size();
    if (saved != 0) path_.push_back('.');
    path_.append(name);
    if (name.empty()) {
      return FieldError(DecodeError::kEmptyFieldName, "features", "empty field name");
    }
    if (path_.size() > options.max_name_bytes) {
      return FieldError(DecodeError::kTooLarge, "features",
                        absl::StrFormat("name of %d bytes, above the limit of %d", path_.size(),
                                        options.max_name_bytes));
    }
    const Role role = RoleOf(path_);
    RecordKey(RawKey(raw_key), path_, depth, role);
    if (DecodeStatus s = DecodeValue(field.value(), depth, role, path_); !s.ok()) return s;
    path_.resize(saved);
  }
  return DecodeStatus();
}

DecodeStatus JsonDecoder::Impl::DecodeValue(od::value& value, std::size_t depth, Role role,
                                            std::string_view path) {
  od::json_type type;
  if (simdjson::error_code e = value.type().get(type)) {
    return ValueError(e, value, RoleName(role));
  }
  switch (role) {
    case Role::kFeature:
      break;
    case Role::kId:
    case Role::kKey:
      return DecodeId(value, type, role);
    case Role::kLabel:
      return DecodeLabel(value, type);
    case Role::kTime:
      return DecodeTime(value, type);
  }
  switch (type) {
    case od::json_type::object: {
      if (depth + 1 > options.max_depth) {
        return FieldError(DecodeError::kTooDeep, "features",
                          absl::StrFormat("nested deeper than %d levels", options.max_depth));
      }
      od::object object;
      if (simdjson::error_code e = value.get_object().get(object)) {
        return ValueError(e, value, "features");
      }
      if (DecodeStatus s = AddEntry(0.0, {}, /*is_text=*/false, /*is_object=*/true); !s.ok()) {
        return s;
      }
      return DecodeObject(object, depth + 1, path);
    }
    case od::json_type::array:
      if (!options.skip_arrays) {
        return FieldError(DecodeError::kUnsupportedArray, "features",
                          "arrays are not supported (flatten them in the producer, or set "
                          "skip_arrays)");
      }
      return SkipValue(value, depth);
    case od::json_type::number: {
      double number;
      if (DecodeStatus s = ReadNumber(value, "features", &number); !s.ok()) return s;
      return AddEntry(number, {}, /*is_text=*/false, /*is_object=*/false);
    }
    case od::json_type::string: {
      std::string_view text;
      if (simdjson::error_code e = value.get_string().get(text)) {
        return ValueError(e, value, "features");
      }
      return AddEntry(0.0, text, /*is_text=*/true, /*is_object=*/false);
    }
    case od::json_type::boolean: {
      bool b;
      if (simdjson::error_code e = value.get_bool().get(b)) return ValueError(e, value, "features");
      return AddEntry(b ? 1.0 : 0.0, {}, /*is_text=*/false, /*is_object=*/false);
    }
    case od::json_type::null: {
      bool is_null = false;
      if (simdjson::error_code e = value.is_null().get(is_null); e || !is_null) {
        return ValueError(e ? e : simdjson::INCORRECT_TYPE, value, "features");
      }
      if (!options.null_is_missing) {
        return FieldError(DecodeError::kNullValue, "features", "null is not accepted");
      }
      return DecodeStatus();
    }
  }
  return FieldError(DecodeError::kInvalidJson, "features", "unknown JSON type");
}

// Reads and checks a skipped array (or a value in one): the same validation as for a feature,
// with no output. On-Demand would skip an unread array without validating its contents.
DecodeStatus JsonDecoder::Impl::SkipValue(od::value& value, std::size_t depth) {
  od::json_type type;
  if (simdjson::error_code e = value.type().get(type)) return ValueError(e, value, "features");
  switch (type) {
    case od::json_type::array: {
      if (depth + 1 > options.max_depth) {
        return FieldError(DecodeError::kTooDeep, "features",
                          absl::StrFormat("nested deeper than %d levels", options.max_depth));
      }
      od::array array;
      if (simdjson::error_code e = value.get_array().get(array)) {
        return ValueError(e, value, "features");
      }
      for (auto element_result : array) {
        od::value element;
        if (simdjson::error_code e = std::move(element_result).get(element)) {
          return FieldError(
              DecodeError::kInvalidJson, "features",
              absl::StrFormat("invalid JSON in the array: %s", simdjson::error_message(e)));
        }
        if (DecodeStatus s = SkipValue(element, depth + 1); !s.ok()) return s;
      }
      return DecodeStatus();
    }
    case od::json_type::object: {
      if (depth + 1 > options.max_depth) {
        return FieldError(DecodeError::kTooDeep, "features",
                          absl::StrFormat("nested deeper than %d levels", options.max_depth));
      }
      od::object object;
      if (simdjson::error_code e = value.get_object().get(object)) {
        return ValueError(e, value, "features");
      }
      for (auto field_result : object) {
        od::field field;
        std::string_view name;
        if (simdjson::error_code e = std::move(field_result).get(field)) {
          return FieldError(
              DecodeError::kInvalidJson, "features",
              absl::StrFormat("invalid JSON in the array: %s", simdjson::error_message(e)));
        }
        const char* raw_key = field.key().raw();
        if (simdjson::error_code e = field.unescaped_key().get(name)) {
          return FieldError(e == simdjson::STRING_ERROR && HasSurrogateEscape(RawKey(raw_key))
                                ? DecodeError::kInvalidUtf8
                                : DecodeError::kInvalidJson,
                            "features",
                            absl::StrFormat("a field name that cannot be decoded: %s",
                                            simdjson::error_message(e)));
        }
        if (DecodeStatus s = SkipValue(field.value(), depth + 1); !s.ok()) return s;
      }
      return DecodeStatus();
    }
    case od::json_type::number: {
      double number;
      return ReadNumber(value, "features", &number);
    }
    case od::json_type::string: {
      std::string_view text;
      if (simdjson::error_code e = value.get_string().get(text)) {
        return ValueError(e, value, "features");
      }
      return DecodeStatus();
    }
    case od::json_type::boolean: {
      bool b;
      if (simdjson::error_code e = value.get_bool().get(b)) return ValueError(e, value, "features");
      return DecodeStatus();
    }
    case od::json_type::null: {
      bool is_null = false;
      if (simdjson::error_code e = value.is_null().get(is_null); e || !is_null) {
        return ValueError(e ? e : simdjson::INCORRECT_TYPE, value, "features");
      }
      return DecodeStatus();
    }
  }
  return FieldError(DecodeError::kInvalidJson, "features", "unknown JSON type");
}

DecodeStatus JsonDecoder::Impl::ReadNumber(od::value& value, std::string_view role, double* out) {
  // Read from the token (the value is then left unread; the iteration skips it): most numbers
  // are short decimals, and the rest go to std::from_chars, not simdjson (see ReadJsonNumber).
  // A malformed token goes to simdjson for its verdict.
  const std::string_view token = TrimRight(value.raw_json_token());
  if (json_decoder_internal::ParseShortDecimal(token, out)) return DecodeStatus();
  switch (json_decoder_internal::ReadJsonNumber(token, out)) {
    case json_decoder_internal::NumberRead::kNumber:
      return DecodeStatus();
    case json_decoder_internal::NumberRead::kOutOfRange:
      return FieldError(DecodeError::kNumberOutOfRange, role,
                        absl::StrFormat("number out of range (%s)", std::string(Quote(token))));
    case json_decoder_internal::NumberRead::kNotANumber:
      break;
  }
  double ignored;
  const simdjson::error_code e = value.get_double().get(ignored);
  return ValueError(e ? e : simdjson::NUMBER_ERROR, value, role);
}

std::optional<std::string_view> JsonDecoder::Impl::IntegerText(od::value& value,
                                                               std::string_view role,
                                                               char (&buffer)[24],
                                                               DecodeStatus* status) {
  od::number_type number_type;
  if (simdjson::error_code e = value.get_number_type().get(number_type)) {
    *status = ValueError(e, value, role);
    return std::nullopt;
  }
  std::to_chars_result r{};
  if (number_type == od::number_type::signed_integer) {
    std::int64_t v;
    if (value.get_int64().get(v)) {
      // Beyond 64 bits (get_number_type only looks at the digit count): not an integer label,
      // if it is a valid number at all.
      double ignored;
      *status = ReadNumber(value, role, &ignored);
      return std::nullopt;
    }
    r = std::to_chars(buffer, buffer + sizeof(buffer), v);
  } else if (number_type == od::number_type::unsigned_integer) {
    std::uint64_t v;
    if (value.get_uint64().get(v)) {
      // Beyond 64 bits (get_number_type only looks at the digit count): not an integer label,
      // if it is a valid number at all.
      double ignored;
      *status = ReadNumber(value, role, &ignored);
      return std::nullopt;
    }
    r = std::to_chars(buffer, buffer + sizeof(buffer), v);
  } else {
    // A fraction or an exponent (or an integer beyond 64 bits): still check it is a number, so
    // that malformed JSON is reported as such.
    double ignored;
    *status = ReadNumber(value, role, &ignored);
    return std::nullopt;
  }
  return std::string_view(buffer, static_cast<std::size_t>(r.ptr - buffer));
}

DecodeStatus JsonDecoder::Impl::DecodeId(od::value& value, od::json_type type, Role role) {
  const std::string_view role_name = role == Role::kId ? "id" : "key";
  std::string* out = role == Role::kId ? &event_->id_ : &event_->key_;
  bool& seen = role == Role::kId ? seen_id_ : seen_key_;
  if (seen) return FieldError(DecodeError::kDuplicateField, role_name, "given twice");
  seen = true;
  char buffer[24];
  switch (type) {
    case od::json_type::string: {
      std::string_view text;
      if (simdjson::error_code e = value.get_string().get(text)) {
        return ValueError(e, value, role_name);
      }
      if (text.empty()) return FieldError(DecodeError::kBadIdType, role_name, "empty string");
      out->assign(text);
      break;
    }
    case od::json_type::number: {
      DecodeStatus status;
      std::optional<std::string_view> text = IntegerText(value, role_name, buffer, &status);
      if (!status.ok()) return status;
      if (!text.has_value()) {
        return FieldError(DecodeError::kBadIdType, role_name,
                          absl::StrFormat("%s is not a 64-bit integer; give a string or an integer",
                                          std::string(Quote(value.raw_json_token()))));
      }
      out->assign(*text);
      break;
    }
    case od::json_type::null: {
      bool is_null = false;
      if (simdjson::error_code e = value.is_null().get(is_null); e || !is_null) {
        return ValueError(e ? e : simdjson::INCORRECT_TYPE, value, role_name);
      }
      if (!options.null_is_missing) {
        return FieldError(DecodeError::kNullValue, role_name, "null is not accepted");
      }
      return DecodeStatus();  // absent: require_id is checked at the end
    }
    default:
      return FieldError(DecodeError::kBadIdType, role_name,
                        absl::StrFormat("%s; give a string or an integer", JsonTypeName(type)));
  }
  if (role == Role::kId) {
    has_id_ = true;
  } else {
    event_->has_key_ = true;
  }
  return DecodeStatus();
}

DecodeStatus JsonDecoder::Impl::DecodeLabel(od::value& value, od::json_type type) {
  constexpr std::string_view kRole = "label";
  if (seen_label_) return FieldError(DecodeError::kDuplicateField, kRole, "given twice");
  seen_label_ = true;
  char buffer[24];
  switch (type) {
    case od::json_type::string: {
      std::string_view text;
      if (simdjson::error_code e = value.get_string().get(text)) {
        return ValueError(e, value, kRole);
      }
      if (text.empty()) return FieldError(DecodeError::kBadLabelType, kRole, "empty string");
      event_->label_.assign(text);
      break;
    }
    case od::json_type::number: {
      // An integer written as IntegerText would write it (no leading zero, no "-0", at most 18
      // digits) is its own text: taken from the token, the value left unread.
      if (const std::string_view token = TrimRight(value.raw_json_token());
          IsCanonicalInteger(token)) {
        event_->label_.assign(token);
        break;
      }
      DecodeStatus status;
      std::optional<std::string_view> text = IntegerText(value, kRole, buffer, &status);
      if (!status.ok()) return status;
      if (!text.has_value()) {
        return FieldError(
            DecodeError::kBadLabelType, kRole,
            absl::StrFormat("%s is not a class: give a string, an integer or a boolean",
                            std::string(Quote(value.raw_json_token()))));
      }
      event_->label_.assign(*text);
      break;
    }
    case od::json_type::boolean: {
      bool b;
      if (simdjson::error_code e = value.get_bool().get(b)) return ValueError(e, value, kRole);
      event_->label_.assign(b ? "1" : "0");
      break;
    }
    case od::json_type::null: {
      bool is_null = false;
      if (simdjson::error_code e = value.is_null().get(is_null); e || !is_null) {
        return ValueError(e ? e : simdjson::INCORRECT_TYPE, value, kRole);
      }
      if (!options.null_is_missing) {
        return FieldError(DecodeError::kNullValue, kRole, "null is not accepted");
      }
      return DecodeStatus();  // unlabeled
    }
    default:
      return FieldError(DecodeError::kBadLabelType, kRole,
                        absl::StrFormat("%s is not a class: give a string, an integer or a boolean",
                                        JsonTypeName(type)));
  }
  event_->has_label_ = true;
  return DecodeStatus();
}

DecodeStatus JsonDecoder::Impl::DecodeTime(od::value& value, od::json_type type) {
  constexpr std::string_view kRole = "time";
  if (seen_time_) {
    return FieldError(DecodeError::kDuplicateField, kRole, "a second event time in one event");
  }
  seen_time_ = true;
  std::int64_t micros = 0;
  switch (type) {
    case od::json_type::string: {
      // A time has no escapes: read between the token's quotes (stage 1 validated the
      // string), the value left unread. With a backslash, simdjson unescapes it.
      std::string_view text = TrimRight(value.raw_json_token());
      if (text.size() >= 2 && text.back() == '"' &&
          text.substr(1, text.size() - 2).find('\\') == std::string_view::npos) {
        text = text.substr(1, text.size() - 2);
      } else if (simdjson::error_code e = value.get_string().get(text)) {
        return ValueError(e, value, kRole);
      }
      std::optional<std::int64_t> parsed = ParseRfc3339Micros(text);
      if (!parsed.has_value()) {
        return FieldError(DecodeError::kBadTimestamp, kRole,
                          absl::StrFormat("\"%s\" is not an RFC 3339 time such as "
                                          "2024-05-01T12:00:00Z",
                                          std::string(Quote(text))));
      }
      micros = *parsed;
      break;
    }
    case od::json_type::number: {
      // Integers are converted exactly; other numbers through a double, to the microsecond.
      // get_number_type only peeks; a getter consumes the value, so exactly one getter runs.
      od::number_type number_type{};
      if (simdjson::error_code e = value.get_number_type().get(number_type)) {
        return ValueError(e, value, kRole);
      }
      std::int64_t integer = 0;
      double number = 0.0;
      const bool is_integer = number_type == od::number_type::signed_integer;
      if (is_integer) {
        if (simdjson::error_code e = value.get_int64().get(integer)) {
          return ValueError(e, value, kRole);
        }
        number = static_cast<double>(integer);
      } else if (DecodeStatus s = ReadNumber(value, kRole, &number); !s.ok()) {
        return s;
      }
      const std::optional<std::int64_t> converted =
          EpochToMicros(is_integer ? std::optional<std::int64_t>(integer) : std::nullopt, number,
                        options.epoch_unit);
      if (!converted.has_value()) {
        return FieldError(DecodeError::kBadTimestamp, kRole,
                          absl::StrFormat("%s is out of range as an epoch time",
                                          std::string(Quote(value.raw_json_token()))));
      }
      micros = *converted;
      break;
    }
    case od::json_type::null: {
      bool is_null = false;
      if (simdjson::error_code e = value.is_null().get(is_null); e || !is_null) {
        return ValueError(e ? e : simdjson::INCORRECT_TYPE, value, kRole);
      }
      if (!options.null_is_missing) {
        return FieldError(DecodeError::kNullValue, kRole, "null is not accepted");
      }
      return DecodeStatus();
    }
    default:
      return FieldError(DecodeError::kBadTimestamp, kRole,
                        absl::StrFormat("%s; give an RFC 3339 string or epoch seconds or "
                                        "milliseconds",
                                        JsonTypeName(type)));
  }
  event_->event_time_micros_ = micros;
  return DecodeStatus();
}

inline DecodeStatus JsonDecoder::Impl::AddEntry(double number, std::string_view text, bool is_text,
                                                bool is_object) {
  const std::vector<char>& arena = event_->arena_;
  const std::string_view name = CurrentPath();
  if (shared_name_bytes_ + arena.size() + name.size() + text.size() >
      kArenaFactor * options.max_message_bytes) {
    return FieldError(DecodeError::kTooLarge, "features",
                      absl::StrFormat("the decoded event is above %d bytes of names and texts",
                                      kArenaFactor * options.max_message_bytes));
  }
  // The arena is bounded by 4 * 256 MiB, and the layout's names by kLayoutFactor times the
  // message that recorded them.
  if (matching_) {
    shared_name_bytes_ += name.size();
    if (is_object) {
      event_->AppendEntryWithSharedName(
          static_cast<std::uint32_t>(name.data() - layout_->chars.data()),
          static_cast<std::uint32_t>(name.size()), number, text, is_text, is_object);
      return DecodeStatus();
    }
    AddLayoutFeature(number, text, is_text);
  } else {
    event_->AppendEntry(name, number, text, is_text, is_object);
  }
  return DecodeStatus();
}

bool JsonDecoder::Impl::Distinct(const std::vector<std::string_view>& names,
                                 std::string_view* duplicate) {
  if (names.size() < 2) return true;
  // absl::Hash is seeded per process, so crafted collisions cannot make this quadratic.
  std::size_t capacity = 16;
  while (capacity < 2 * names.size()) capacity *= 2;
  slots_.assign(capacity, 0);
  const std::size_t mask = capacity - 1;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string_view name = names[i];
    std::size_t slot =
        absl::Hash<absl::string_view>{}(absl::string_view(name.data(), name.size())) & mask;
    while (slots_[slot] != 0) {
      if (names[slots_[slot] - 1] == name) {
        *duplicate = name;
        return false;
      }
      slot = (slot + 1) & mask;
    }
    slots_[slot] = static_cast<std::uint32_t>(i + 1);
  }
  return true;
}

DecodeStatus JsonDecoder::Impl::Finish() {
  if (matching_) {
    // Every name is one of the layout's, and those are distinct.
    // (The features are made already; entries_ holds only the objects.)
    return DecodeStatus();
  }
  // A name given twice: {"a":1,"a":2}, {"a.b":1,"a":{"b":2}}, {"a":{},"a":{}}. Real parsers keep
  // the first or the last; either would silently drop a value.
  //
  // The recorded keys' names (all but the roles') include every entry's, and more: the names of
  // nulls and skipped arrays. When they are distinct, so are the entries', and the keys become
  // the layout. Otherwise only the entries' names decide ({"a":null,"a":1} is one feature).
  names_.clear();
  for (const Layout::Key& key : recording_.keys) {
    if (key.role == Role::kFeature) names_.push_back(recording_.Path(key));
  }
  std::string_view duplicate;
  if (recording_ok_ && Distinct(names_, &duplicate)) {
    layout_ = std::make_shared<const Layout>(std::move(recording_));
    recording_ = Layout();
  } else {
    const std::vector<char>& arena = event_->arena_;
    names_.clear();
    for (const Entry& e : event_->entries_) {
      names_.emplace_back(arena.data() + e.name_begin, e.name_size);
    }
    if (!Distinct(names_, &duplicate)) {
      return DecodeStatus(
          DecodeError::kDuplicateField,
          absl::StrFormat("features[\"%s\"]: given twice", std::string(Quote(duplicate))));
    }
  }
  event_->BuildViews();
  return DecodeStatus();
}

absl::StatusOr<JsonDecoder> JsonDecoder::Create(JsonDecoderOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return JsonDecoder(std::make_unique<Impl>(std::move(options)));
}

JsonDecoder::JsonDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonDecoder::JsonDecoder(JsonDecoder&&) noexcept = default;
JsonDecoder& JsonDecoder::operator=(JsonDecoder&&) noexcept = default;
JsonDecoder::~JsonDecoder() = default;

DecodeStatus JsonDecoder::Decode(std::string_view message, DecodedEvent* event) {
  return impl_->Decode(message, event);
}

const JsonDecoderOptions& JsonDecoder::options() const { return impl_->options; }

std::size_t JsonDecoder::MemoryBytes() const { return impl_->MemoryBytes(); }

std::uint64_t JsonDecoder::scanned_messages() const { return impl_->scanned_messages(); }

}  // namespace riffle::features
