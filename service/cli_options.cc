#include "service/cli_options.h"

#include "absl/strings/str_format.h"

namespace riffle::service {

absl::Status ParseAssignments(const std::vector<std::string>& texts, std::string_view flag,
                              learners::OptionList* out) {
  for (const std::string& text : texts) {
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s expects name=value, got '%s'", flag, text));
    }
    out->emplace_back(text.substr(0, eq), text.substr(eq + 1));
  }
  return absl::OkStatus();
}

}  // namespace riffle::service
