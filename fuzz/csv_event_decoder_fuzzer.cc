// libFuzzer target: arbitrary bytes as one CSV event message for features::CsvEventDecoder.
//
//   scripts/fuzz.sh [seconds]      builds it (clang, ASan, UBSan) and runs it with the others
//
// The decoders are created once, with a fixed header (Create's own checks are the unit tests'
// business); the first byte of an input picks the options: defaults (',' delimiter, zip a text
// column, id required), or small ones (';', a 64-byte limit, id optional, epoch micros).
//
// Properties checked on every input (a violation aborts, and libFuzzer saves the input):
//   * DecodeMessage never crashes, reads out of bounds, hits undefined behaviour or leaks.
//   * A failure has a known code other than kOk, a name, and a non-empty message that is
//     valid UTF-8 whatever the input (fields are validated before an error quotes them).
//   * A message above max_message_bytes is kTooLarge, and only such a message is.
//   * A success never carries a wrong value: the input was valid UTF-8 and within the limit;
//     features are header columns other than the roles, distinct and in column order; numbers
//     are finite; texts, id, key and label are non-empty and valid UTF-8; an id is present if
//     required; and the views stay valid after the input is gone.
//   * The message splitter and the field decoder agree: DecodeMessage(m) is Decode of
//     SplitCsvRecord(m); and for a good record, writing its fields again with every field
//     quoted decodes to the same event (quoting is not typing).
//   * Decoding is deterministic and independent of history: the same bytes again into a
//     reused event give the same result.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "features/csv_event_decoder.h"
#include "features/csv_reader.h"
#include "features/event.h"
#include "features/json_decoder.h"
#include "fuzz/decoded_event_checks.h"

namespace {

using riffle::features::CsvEventDecoder;
using riffle::features::CsvEventDecoderOptions;
using riffle::features::DecodedEvent;
using riffle::features::DecodeError;
using riffle::features::DecodeStatus;
using riffle::features::EpochUnit;
using riffle::features::FeatureValue;
using riffle::features::NamedFeature;
using riffle::fuzz::CheckFailure;
using riffle::fuzz::IsValidUtf8;
using riffle::fuzz::Snapshot;
using riffle::fuzz::Take;

constexpr std::string_view kHeader[] = {"id", "key", "time", "amount", "country", "zip", "label"};
// The feature columns of kHeader, in order.
constexpr std::string_view kFeatures[] = {"amount", "country", "zip"};

void CheckResult(const CsvEventDecoderOptions& options, std::string_view input,
                 const DecodeStatus& status, const DecodedEvent& event) {
  if (!status.ok()) {
    CheckFailure(status, DecodeError::kInvalidCsv);
    FUZZ_CHECK(IsValidUtf8(status.message()));
    FUZZ_CHECK((status.code() == DecodeError::kTooLarge) ==
               (input.size() > options.max_message_bytes));
    return;
  }
  FUZZ_CHECK(input.size() <= options.max_message_bytes);
  FUZZ_CHECK(IsValidUtf8(input));
  FUZZ_CHECK(!options.require_id || !event.id().empty());
  FUZZ_CHECK(IsValidUtf8(event.id()));
  if (event.key()) FUZZ_CHECK(!event.key()->empty() && IsValidUtf8(*event.key()));
  if (event.label()) FUZZ_CHECK(!event.label()->empty() && IsValidUtf8(*event.label()));
  std::size_t next = 0;  // features come in column order, each at most once
  for (const NamedFeature& f : event.features()) {
    while (next < std::size(kFeatures) && kFeatures[next] != f.name) ++next;
    FUZZ_CHECK(next < std::size(kFeatures));
    ++next;
    if (f.value.kind == FeatureValue::Kind::kNumber) {
      FUZZ_CHECK(std::isfinite(f.value.number));
      FUZZ_CHECK(f.name != "zip");  // a text column
    } else {
      FUZZ_CHECK(!f.value.text.empty());
      FUZZ_CHECK(IsValidUtf8(f.value.text));
    }
  }
}

CsvEventDecoder MakeDecoder(const CsvEventDecoderOptions& options) {
  auto decoder = CsvEventDecoder::Create(kHeader, options);
  FUZZ_CHECK(decoder.ok());
  return std::move(*decoder);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Decoders persist across inputs, as in the service: state left by one message must not
  // leak into the next.
  static CsvEventDecoderOptions defaults = [] {
    CsvEventDecoderOptions o;
    o.text_columns = {"zip"};
    return o;
  }();
  static CsvEventDecoderOptions small = [] {
    CsvEventDecoderOptions o;
    o.delimiter = ';';
    o.max_message_bytes = 64;
    o.require_id = false;
    o.epoch_unit = EpochUnit::kMicros;
    o.text_columns = {"zip"};
    return o;
  }();
  static CsvEventDecoder default_decoder = MakeDecoder(defaults);
  static CsvEventDecoder small_decoder = MakeDecoder(small);
  static DecodedEvent reused;

  if (size == 0) return 0;
  const bool use_small = (data[0] & 1) != 0;
  const std::string_view original(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A copy, so that the views' independence from the input can be checked.
  std::string input(original);
  CsvEventDecoder& decoder = use_small ? small_decoder : default_decoder;
  const CsvEventDecoderOptions& options = use_small ? small : defaults;

  DecodedEvent event;
  const DecodeStatus status = decoder.DecodeMessage(input, &event);
  const Snapshot first = Take(status, event);
  input.assign(input.size(), '\xff');  // the event must not point into the input
  CheckResult(options, original, status, event);
  FUZZ_CHECK(Take(status, event) == first);

  // Again, into an event that holds the previous input's leftovers.
  const DecodeStatus again = decoder.DecodeMessage(original, &reused);
  FUZZ_CHECK(Take(again, reused) == first);

  if (original.size() > options.max_message_bytes) return 0;
  std::vector<std::string_view> fields;
  std::string scratch;
  const absl::Status split =
      riffle::features::SplitCsvRecord(original, options.delimiter, &fields, &scratch);
  FUZZ_CHECK(split.ok() == (status.code() != DecodeError::kInvalidCsv));
  if (!split.ok()) return 0;
  DecodedEvent from_fields;
  const DecodeStatus decoded = decoder.Decode(fields, &from_fields);
  FUZZ_CHECK(Take(decoded, from_fields) == first);
  if (!decoded.ok()) return 0;

  // Every field quoted, quotes doubled: the same record, so the same event (when it fits).
  std::string quoted;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) quoted += options.delimiter;
    quoted += '"';
    for (const char c : fields[i]) {
      quoted += c;
      if (c == '"') quoted += '"';
    }
    quoted += '"';
  }
  quoted += "\r\n";
  if (quoted.size() <= options.max_message_bytes) {
    DecodedEvent requoted;
    const DecodeStatus s = decoder.DecodeMessage(quoted, &requoted);
    FUZZ_CHECK(Take(s, requoted) == first);
  }
  return 0;
}
