#ifndef RIFFLE_LEARNERS_OPTION_PARSING_H_
#define RIFFLE_LEARNERS_OPTION_PARSING_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace riffle::learners {

// Helpers for the `Set(name, value)` methods of options structs, which take hyperparameters
// as text (from `riffle eval --set name=value`, a YAML spec or a gRPC request). Every error
// message names the option and quotes the rejected value.

absl::Status ParseDoubleOption(std::string_view name, std::string_view text, double* out);
absl::Status ParseUint64Option(std::string_view name, std::string_view text, std::uint64_t* out);
absl::Status ParseBoolOption(std::string_view name, std::string_view text, bool* out);

// Maps `text` to one of `choices` (name, value); the error lists the accepted names.
template <typename Enum>
absl::Status ParseEnumOption(std::string_view name, std::string_view text,
                             std::initializer_list<std::pair<std::string_view, Enum>> choices,
                             Enum* out);

// Range checks for the Validate() methods: OK, or InvalidArgument naming the option and
// quoting the rejected value.
absl::Status RequireInOpenRange(std::string_view name, double value, double low, double high);
absl::Status RequireFinitePositive(std::string_view name, double value);
absl::Status RequireFiniteNonNegative(std::string_view name, double value);
absl::Status RequireInRange(std::string_view name, std::uint64_t value, std::uint64_t low,
                            std::uint64_t high);

// The error every Set() returns for a name it does not know.
absl::Status UnknownOptionError(std::string_view learner, std::string_view name);

template <typename Enum>
absl::Status ParseEnumOption(std::string_view name, std::string_view text,
                             std::initializer_list<std::pair<std::string_view, Enum>> choices,
                             Enum* out) {
  for (const auto& [choice_name, value] : choices) {
    if (text == choice_name) {
      *out = value;
      return absl::OkStatus();
    }
  }
  std::string accepted;
  for (const auto& choice : choices) {
    if (!accepted.empty()) accepted += ", ";
    accepted += choice.first;
  }
  return absl::InvalidArgumentError(std::string("option '") + std::string(name) +
                                    "': unknown value '" + std::string(text) +
                                    "' (accepted: " + accepted + ")");
}

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_OPTION_PARSING_H_
