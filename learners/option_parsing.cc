#include "learners/option_parsing.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_format.h"

namespace riffle::learners {
namespace {

absl::Status BadValue(std::string_view name, std::string_view text, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrFormat("option '%s': expected %s, got '%s'", name, expected, text));
}

}  // namespace

absl::Status ParseDoubleOption(std::string_view name, std::string_view text, double* out) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return BadValue(name, text, "a finite number");
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ParseUint64Option(std::string_view name, std::string_view text, std::uint64_t* out) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return BadValue(name, text, "a non-negative integer");
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ParseBoolOption(std::string_view name, std::string_view text, bool* out) {
  if (text == "true" || text == "1") {
    *out = true;
  } else if (text == "false" || text == "0") {
    *out = false;
  } else {
    return BadValue(name, text, "true or false");
  }
  return absl::OkStatus();
}

absl::Status RequireInOpenRange(std::string_view name, double value, double low, double high) {
  if (!(value > low && value < high)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be in (%g, %g), got %g", name, low, high, value));
  }
  return absl::OkStatus();
}

absl::Status RequireFinitePositive(std::string_view name, double value) {
  if (!(value > 0) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be finite and > 0, got %g", name, value));
  }
  return absl::OkStatus();
}

absl::Status RequireFiniteNonNegative(std::string_view name, double value) {
  if (!(value >= 0) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be finite and >= 0, got %g", name, value));
  }
  return absl::OkStatus();
}

absl::Status RequireInRange(std::string_view name, std::uint64_t value, std::uint64_t low,
                            std::uint64_t high) {
  if (value < low || value > high) {
    if (high == std::numeric_limits<std::uint64_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("option '%s' must be >= %d, got %d", name, low, value));
    }
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be in [%d, %d], got %d", name, low, high, value));
  }
  return absl::OkStatus();
}

absl::Status UnknownOptionError(std::string_view learner, std::string_view name) {
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown option '%s' for learner '%s'", name, learner));
}

}  // namespace riffle::learners
