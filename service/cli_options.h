#ifndef RIFFLE_SERVICE_CLI_OPTIONS_H_
#define RIFFLE_SERVICE_CLI_OPTIONS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "learners/registry.h"

namespace riffle::service {

// Appends "name=value" texts (the repeatable --set style flags) to *out, in order.
// InvalidArgument naming `flag` when a text has no '=' or an empty name.
absl::Status ParseAssignments(const std::vector<std::string>& texts, std::string_view flag,
                              learners::OptionList* out);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_CLI_OPTIONS_H_
