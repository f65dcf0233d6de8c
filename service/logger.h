#ifndef RIFFLE_SERVICE_LOGGER_H_
#define RIFFLE_SERVICE_LOGGER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace riffle::service {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kOff };

struct LogOptions {
  LogLevel level = LogLevel::kInfo;
  // false: human-readable lines; true: one JSON object per line ({"time", "level", "msg"}).
  bool json = false;
};

// "debug", "info", "warn", "error" or "off"; InvalidArgument listing them otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view text);

// The logger handle the service's components are given (STYLE.md 8): spdlog stays behind it,
// in logger.cc, and tests pass NullLogger(). Thread-safe.
class Logger {
 public:
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;

  void Debug(std::string_view m) { Log(LogLevel::kDebug, m); }
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Warn(std::string_view m) { Log(LogLevel::kWarn, m); }
  void Error(std::string_view m) { Log(LogLevel::kError, m); }
};

// Logs to stderr through spdlog.
std::unique_ptr<Logger> MakeStderrLogger(const LogOptions& options);
// Discards everything. Process-lifetime singleton.
Logger* NullLogger();

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_LOGGER_H_
