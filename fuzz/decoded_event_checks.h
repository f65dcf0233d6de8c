// What the event decoders' fuzz targets check on every input, in one place: the decoders
// share DecodedEvent, DecodeStatus and their promises (never a crash, never a wrong value).
#ifndef RIFFLE_FUZZ_DECODED_EVENT_CHECKS_H_
#define RIFFLE_FUZZ_DECODED_EVENT_CHECKS_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "features/event.h"
#include "features/json_decoder.h"
#include "fuzz/fuzz_check.h"

namespace riffle::fuzz {

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. Written out
// here rather than taken from a decoder, so that the check does not trust the code it checks.
inline bool IsValidUtf8(std::string_view s) {
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

// A comparable copy of a decoded event (or of an error), to check that decoding is
// deterministic and that the event's views do not point into the input.
struct Snapshot {
  features::DecodeError code;
  std::string message;
  std::string id;
  std::optional<std::string> key;
  std::optional<std::int64_t> time;
  std::optional<std::string> label;
  std::vector<std::pair<std::string, std::string>> features;  // name, value as text
  bool operator==(const Snapshot&) const = default;
};

inline Snapshot Take(const features::DecodeStatus& status, const features::DecodedEvent& event) {
  Snapshot s{status.code(), status.message(), {}, {}, {}, {}, {}};
  if (!status.ok()) return s;
  s.id = std::string(event.id());
  if (event.key()) s.key = std::string(*event.key());
  s.time = event.event_time_micros();
  if (event.label()) s.label = std::string(*event.label());
  for (const features::NamedFeature& f : event.features()) {
    // Hexadecimal: every bit of the number, so that -0.0 and 0.0 differ.
    char bits[32];
    std::snprintf(bits, sizeof(bits), "%a", f.value.number);
    s.features.emplace_back(std::string(f.name), f.value.kind == features::FeatureValue::Kind::kText
                                                     ? "T" + std::string(f.value.text)
                                                     : "N" + std::string(bits));
  }
  return s;
}

// The promises of every failure: a known code other than kOk, with a name, a non-empty
// message, and a non-OK absl::Status.
inline void CheckFailure(const features::DecodeStatus& status, features::DecodeError last_code) {
  FUZZ_CHECK(status.code() != features::DecodeError::kOk);
  FUZZ_CHECK(static_cast<int>(status.code()) <= static_cast<int>(last_code));
  FUZZ_CHECK(features::DecodeErrorName(status.code()) != "UNKNOWN");
  FUZZ_CHECK(!status.message().empty());
  FUZZ_CHECK(!status.ToStatus().ok());
}

}  // namespace riffle::fuzz

#endif  // RIFFLE_FUZZ_DECODED_EVENT_CHECKS_H_
