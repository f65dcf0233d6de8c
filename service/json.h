#ifndef RIFFLE_SERVICE_JSON_H_
#define RIFFLE_SERVICE_JSON_H_

#include <string>
#include <string_view>

namespace riffle::service {

// Minimal JSON writing helpers for the command line's --json outputs.

// Appends `s` as a JSON string literal (quotes, escapes, control characters as \u00XX).
void AppendJsonString(std::string* out, std::string_view s);
std::string JsonString(std::string_view s);
// A number as the shortest text that reads back as the same double (std::to_chars: "0.1",
// "1e+21", "-0"), or null when not finite.
void AppendJsonNumber(std::string* out, double v);
std::string JsonNumber(double v);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_JSON_H_
