#include "service/logger.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_format.h"
#include "service/json.h"

namespace riffle::service {
namespace {

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

class SpdlogLogger : public Logger {
 public:
  explicit SpdlogLogger(const LogOptions& options) : json_(options.json) {
    // A private logger (not spdlog's global registry), synchronized sink: any thread may log.
    logger_ = std::make_shared<spdlog::logger>("riffle",
                                               std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger_->set_level(ToSpdlog(options.level));
    if (json_) {
      // The message is already a JSON string (escaped in Log()).
      logger_->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":%v})",
                           spdlog::pattern_time_type::utc);
    } else {
      logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L riffle: %v");
    }
    logger_->flush_on(spdlog::level::info);
  }

  void Log(LogLevel level, std::string_view message) override {
    const spdlog::level::level_enum l = ToSpdlog(level);
    if (!logger_->should_log(l)) return;
    if (json_) {
      std::string quoted;
      AppendJsonString(&quoted, message);
      logger_->log(l, "{}", quoted);
    } else {
      logger_->log(l, "{}", message);
    }
  }

 private:
  const bool json_;
  std::shared_ptr<spdlog::logger> logger_;
};

class DiscardingLogger : public Logger {
 public:
  void Log(LogLevel, std::string_view) override {}
};

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warn" || text == "warning") return LogLevel::kWarn;
  if (text == "error") return LogLevel::kError;
  if (text == "off") return LogLevel::kOff;
  return absl::InvalidArgumentError(
      absl::StrFormat("log level '%s' is not one of debug, info, warn, error, off", text));
}

std::unique_ptr<Logger> MakeStderrLogger(const LogOptions& options) {
  return std::make_unique<SpdlogLogger>(options);
}

Logger* NullLogger() {
  static DiscardingLogger* const logger = new DiscardingLogger();
  return logger;
}

}  // namespace riffle::service
