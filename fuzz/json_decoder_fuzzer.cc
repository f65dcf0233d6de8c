// libFuzzer target: arbitrary bytes as a JSON event for features::JsonDecoder.
//
//   scripts/fuzz.sh [seconds]      builds it (clang, ASan, UBSan) and runs it with the others
//
// Properties checked on every input (a violation aborts, and libFuzzer saves the input):
//   * Decode never crashes, reads out of bounds, hits undefined behaviour or leaks, with the
//     default options and with small limits, arrays skipped and nulls rejected (the first byte
//     of the input picks the options, so the fuzzer explores all of them).
//   * A failure has a known code other than kOk, a non-empty message, and a name.
//   * A success never carries a wrong value: every number is finite, no feature name is empty
//     or longer than max_name_bytes, no two features share a name, every name and text is
//     valid UTF-8 (simdjson validated the input; a \u escape must not smuggle in a lone
//     surrogate), a label is non-empty, and the views stay valid after the input is gone.
//   * Decoding is deterministic and independent of history: decoding the same bytes again into
//     a reused event gives the same result.
//   * A message above max_message_bytes is always kTooLarge.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "features/event.h"
#include "features/json_decoder.h"

namespace {

using riffle::features::DecodedEvent;
using riffle::features::DecodeError;
using riffle::features::DecodeErrorName;
using riffle::features::DecodeStatus;
using riffle::features::FeatureValue;
using riffle::features::JsonDecoder;
using riffle::features::JsonDecoderOptions;
using riffle::features::NamedFeature;

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// A comparable copy of a decoded event (or of an error).
struct Snapshot {
  DecodeError code;
  std::string message;
  std::string id;
  std::optional<std::string> key;
  std::optional<std::int64_t> time;
  std::optional<std::string> label;
  std::vector<std::pair<std::string, std::string>> features;  // name, value as text
  bool operator==(const Snapshot&) const = default;
};

Snapshot Take(const DecodeStatus& status, const DecodedEvent& event) {
  Snapshot s{status.code(), status.message(), {}, {}, {}, {}, {}};
  if (!status.ok()) return s;
  s.id = std::string(event.id());
  if (event.key()) s.key = std::string(*event.key());
  s.time = event.event_time_micros();
  if (event.label()) s.label = std::string(*event.label());
  for (const NamedFeature& f : event.features()) {
    s.features.emplace_back(std::string(f.name), f.value.kind == FeatureValue::Kind::kText
                                                     ? "T" + std::string(f.value.text)
                                                     : "N" + std::to_string(f.value.number));
  }
  return s;
}

void CheckResult(const JsonDecoderOptions& options, std::string_view input,
                 const DecodeStatus& status, const DecodedEvent& event) {
  if (!status.ok()) {
    FUZZ_CHECK(status.code() != DecodeError::kOk);
    FUZZ_CHECK(static_cast<int>(status.code()) <= static_cast<int>(DecodeError::kNullValue));
    FUZZ_CHECK(DecodeErrorName(status.code()) != "UNKNOWN");
    FUZZ_CHECK(!status.message().empty());
    FUZZ_CHECK(IsValidUtf8(status.message()) || !IsValidUtf8(input));
    FUZZ_CHECK(!status.ToStatus().ok());
    return;
  }
  FUZZ_CHECK(input.size() <= options.max_message_bytes);
  FUZZ_CHECK(IsValidUtf8(input));
  FUZZ_CHECK(!options.require_id || !event.id().empty());
  FUZZ_CHECK(IsValidUtf8(event.id()));
  if (event.key()) FUZZ_CHECK(!event.key()->empty() && IsValidUtf8(*event.key()));
  if (event.label()) FUZZ_CHECK(!event.label()->empty() && IsValidUtf8(*event.label()));
  std::set<std::string_view> names;
  for (const NamedFeature& f : event.features()) {
    FUZZ_CHECK(!f.name.empty());
    FUZZ_CHECK(f.name.size() <= options.max_name_bytes);
    FUZZ_CHECK(IsValidUtf8(f.name));
    FUZZ_CHECK(names.insert(f.name).second);
    if (f.value.kind == FeatureValue::Kind::kNumber) {
      FUZZ_CHECK(std::isfinite(f.value.number));
    } else {
      FUZZ_CHECK(IsValidUtf8(f.value.text));
    }
  }
}

JsonDecoder MakeDecoder(const JsonDecoderOptions& options) {
  auto decoder = JsonDecoder::Create(options);
  FUZZ_CHECK(decoder.ok());
  return std::move(*decoder);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Decoders persist across inputs, as in the service: state left by one message must not
  // leak into the next.
  static JsonDecoderOptions defaults;
  static JsonDecoderOptions small = [] {
    JsonDecoderOptions o;
    o.max_message_bytes = 512;
    o.max_depth = 3;
    o.max_name_bytes = 24;
    o.skip_arrays = true;
    o.null_is_missing = false;
    o.require_id = false;
    o.time_fields = {"t"};
    return o;
  }();
  static JsonDecoder default_decoder = MakeDecoder(defaults);
  static JsonDecoder small_decoder = MakeDecoder(small);
  static DecodedEvent reused;

  if (size == 0) return 0;
  const bool use_small = (data[0] & 1) != 0;
  // The rest of the input, copied so that the views' independence from it can be checked.
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  JsonDecoder& decoder = use_small ? small_decoder : default_decoder;
  const JsonDecoderOptions& options = use_small ? small : defaults;

  DecodedEvent event;
  const DecodeStatus status = decoder.Decode(input, &event);
  if (input.size() > options.max_message_bytes) {
    FUZZ_CHECK(status.code() == DecodeError::kTooLarge);
  }
  const Snapshot first = Take(status, event);
  input.assign(input.size(), '\xff');  // the event must not point into the input
  CheckResult(options, std::string(reinterpret_cast<const char*>(data) + 1, size - 1), status,
              event);
  FUZZ_CHECK(Take(status, event) == first);

  // Again, into an event that holds the previous input's leftovers.
  const std::string again(reinterpret_cast<const char*>(data) + 1, size - 1);
  const DecodeStatus status2 = decoder.Decode(again, &reused);
  FUZZ_CHECK(Take(status2, reused) == first);
  return 0;
}
