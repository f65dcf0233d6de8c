// libFuzzer target: arbitrary bytes as a JSON event for features::JsonDecoder.
//
//   scripts/fuzz.sh [seconds]      builds it (clang, ASan, UBSan) and runs it
//   with the others
//
// Properties checked on every input (a violation aborts, and libFuzzer saves
// the input):
//   * Decode never crashes, reads out of bounds, hits undefined behaviour or
//   leaks, with the
//     default options and with small limits, arrays skipped and nulls rejected
//     (the first byte of the input picks the options, so the fuzzer explores
//     all of them).
//   * A failure has a known code other than kOk, a non-empty message, and a
//   name.
//   * A success never carries a wrong value: every number is finite, no feature
//   name is empty
//     or longer than max_name_bytes, no two features share a name, every name
//     and text is valid UTF-8 (simdjson validated the input; a \u escape must
//     not smuggle in a lone surrogate), a label is non-empty, and the views
//     stay valid after the input is gone.
//   * Decoding is deterministic and independent of history: decoding the same
//   bytes again into
//     a reused event gives the same result, and a new decoder gives the same
//     result as the one that decoded the inputs before (whose layout shortcuts
//     it may have followed, see JsonDecoder).
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
#include "fuzz/decoded_event_checks.h"

namespace {

using riffle::features::DecodedEvent;
using riffle::features::DecodeError;
using riffle::features::DecodeStatus;
using riffle::features::FeatureValue;
using riffle::features::JsonDecoder;
using riffle::features::JsonDecoderOptions;
using riffle::features::NamedFeature;
using riffle::fuzz::CheckFailure;
using riffle::fuzz::IsValidUtf8;
using riffle::fuzz::Snapshot;
using riffle::fuzz::Take;

void CheckResult(const JsonDecoderOptions& options, std::string_view input,
                 const DecodeStatus& status, const DecodedEvent& event) {
  if (!status.ok()) {
    CheckFailure(status, DecodeError::kNullValue);
    FUZZ_CHECK(IsValidUtf8(status.message()) || !IsValidUtf8(input));
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
  // Decoders persist across inputs, as in the service: state left by one
  // message must not leak into the next.
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
  // The rest of the input, copied so that the views' independence from it can
  // be checked.
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  JsonDecoder& decoder = use_small ? small_decoder : default_decoder;
  const JsonDecoderOptions& options = use_small ? small : defaults;

  DecodedEvent event;
  const DecodeStatus status = decoder.Decode(input, &event);
  if (input.size() > options.max_message_bytes) {
    FUZZ_CHECK(status.code() == DecodeError::kTooLarge);
  }
  const Snapshot first = Take(status, event);
  {
    JsonDecoder fresh = MakeDecoder(options);
    DecodedEvent fresh_event;
    const DecodeStatus fresh_status = fresh.Decode(input, &fresh_event);
    FUZZ_CHECK(Take(fresh_status, fresh_event) == first);
  }
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
