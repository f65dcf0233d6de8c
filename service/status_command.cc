#include "service/status_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/json.h"
#include "service/server.h"

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Bounds of the files read for the flags: a token is short; a CA bundle can hold many PEMs.
constexpr std::uint64_t kMaxTokenBytes = std::uint64_t{64} << 10;
constexpr std::uint64_t kMaxCaBytes = std::uint64_t{4} << 20;

// A server that restarts while --watch runs should be seen again at the next refresh, not
// after gRPC's default reconnect backoff (which grows to two minutes).
constexpr int kMaxReconnectBackoffMs = 1000;

// The longest sleep between two looks at the stop flag while --watch waits.
constexpr absl::Duration kStopPoll = absl::Milliseconds(50);

// Clears the terminal and homes the cursor (ANSI: cursor home, erase display).
constexpr std::string_view kClearScreen = "\x1b[H\x1b[2J";

std::int64_t Micros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1'000'000 + t.nanos() / 1000;
}

std::string IsoTime(std::int64_t unix_micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(unix_micros),
                          absl::UTCTimeZone());
}

// Seconds since the model's last checkpoint at the time of the snapshot; nullopt when this
// server process has written none.
std::optional<double> CheckpointAge(const ServerStatus& status, const v1::Model& model) {
  if (!model.has_last_checkpoint()) return std::nullopt;
  return static_cast<double>(status.fetched_micros - Micros(model.last_checkpoint())) / 1e6;
}

// `value` (>= base) in the largest of `units` (base, base^2, ...) that keeps it below base, with
// one decimal.
std::string Scaled(double value, double base, const std::vector<std::string_view>& units) {
  std::size_t unit = 0;
  value /= base;
  // A value that "%.1f" would round up to base (999.96 -> "1000.0") takes the next unit.
  while (value >= base - 0.05 && unit + 1 < units.size()) {
    value /= base;
    ++unit;
  }
  return absl::StrFormat("%.1f%s", value, units[unit]);
}

// A fixed-width table: left-aligned text columns and right-aligned number columns, each as wide
// as its widest cell, two spaces apart; no trailing spaces.
class Table {
 public:
  struct Column {
    std::string_view header;
    bool right = false;
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

  void AppendTo(std::string* out) const {
    std::vector<std::size_t> widths(columns_.size());
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      widths[c] = columns_[c].header.size();
      for (const std::vector<std::string>& row : rows_) {
        widths[c] = std::max(widths[c], row[c].size());
      }
    }
    std::vector<std::string> headers;
    for (const Column& column : columns_) headers.emplace_back(column.header);
    AppendRow(headers, widths, out);
    for (const std::vector<std::string>& row : rows_) AppendRow(row, widths, out);
  }

 private:
  void AppendRow(const std::vector<std::string>& cells, const std::vector<std::size_t>& widths,
                 std::string* out) const {
    std::string line;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) line += "  ";
      const std::string pad(widths[c] - cells[c].size(), ' ');
      line += columns_[c].right ? pad + cells[c] : cells[c] + pad;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    *out += line;
    *out += '\n';
  }

  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

std::string Ratio(const v1::MetricValues& m, double value) {
  return m.count() == 0 ? "-" : absl::StrFormat("%.4f", value);
}

std::string Auc(const v1::MetricValues& m) {
  return m.has_roc_auc() ? absl::StrFormat("%.4f", m.roc_auc()) : "-";
}

std::string Latency(const v1::LatencySummary& l, double seconds) {
  return l.count() == 0 ? "-" : HumanLatency(seconds);
}

std::string KafkaCell(HealthState kafka) {
  return kafka == HealthState::kNotFound ? "-" : std::string(HealthStateName(kafka));
}

// null unless the population has scored examples.
std::string JsonMetric(const v1::MetricValues& m, double value) {
  return m.count() == 0 ? "null" : JsonNumber(value);
}

std::string JsonOptional(bool present, double value) {
  return present ? JsonNumber(value) : "null";
}

void AppendJsonMetrics(const v1::MetricValues& m, std::string* out) {
  absl::StrAppendFormat(out, "{\"count\": %d", m.count());
  *out += ", \"accuracy\": " + JsonMetric(m, m.accuracy());
  *out += ", \"log_loss\": " + JsonMetric(m, m.log_loss());
  *out += ", \"roc_auc\": " + JsonOptional(m.has_roc_auc(), m.roc_auc());
  *out += ", \"precision\": " + JsonOptional(m.has_precision(), m.precision());
  *out += ", \"recall\": " + JsonOptional(m.has_recall(), m.recall());
  *out += ", \"f1\": " + JsonOptional(m.has_f1(), m.f1());
  *out += ", \"macro_f1\": " + JsonMetric(m, m.macro_f1());
  *out += "}";
}

void AppendJsonLatency(const v1::LatencySummary& l, std::string* out) {
  absl::StrAppendFormat(out, "{\"count\": %d", l.count());
  *out += ", \"p50_seconds\": " + JsonOptional(l.count() > 0, l.p50_seconds());
  *out += ", \"p99_seconds\": " + JsonOptional(l.count() > 0, l.p99_seconds());
  *out += ", \"max_seconds\": " + JsonOptional(l.count() > 0, l.max_seconds());
  *out += "}";
}

// Whether gRPC's status means the server was not reached, did not answer in time, or went
// away during the call (a server shutting down cancels the calls in flight), as opposed to an
// answer that is an error.
bool Unreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         status.error_code() == grpc::StatusCode::CANCELLED;
}

std::string GrpcCodeName(grpc::StatusCode code) {
  // absl::StatusCode mirrors google.rpc.Code, as grpc::StatusCode does: same numbers.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void Write(std::FILE* file, std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), file);
  std::fflush(file);
}

void ReportError(std::FILE* err, const absl::Status& status) {
  Write(err, absl::StrFormat("riffle status: %s\n", status.message()));
}

// Waits `interval`, or less if *stop becomes true.
void SleepUnlessStopped(absl::Duration interval, const std::atomic<bool>* stop) {
  const absl::Time until = absl::Now() + interval;
  while (stop == nullptr || !stop->load()) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::SleepFor(std::min(left, kStopPoll));
  }
}

}  // namespace

absl::Status StatusOptions::Validate() const {
  if (target.empty()) return absl::InvalidArgumentError("--target: required");
  if (watch_seconds.has_value() && !(std::isfinite(*watch_seconds) && *watch_seconds > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--watch: expected a number of seconds > 0, got %g", *watch_seconds));
  }
  if (call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("call timeout: must be > 0");
  }
  return absl::OkStatus();
}

std::string_view HealthStateName(HealthState state) {
  switch (state) {
    case HealthState::kServing:
      return "SERVING";
    case HealthState::kNotServing:
      return "NOT_SERVING";
    case HealthState::kNotFound:
      return "NOT_FOUND";
    case HealthState::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<StatusClient>> StatusClient::Create(const StatusOptions& options,
                                                                   checkpoints::Env* env) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> text = env->ReadFile(options.token_file, kMaxTokenBytes);
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          absl::StrFormat("--token-file: %s", text.status().message()));
    }
    token = std::string(absl::StripAsciiWhitespace(*text));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--token-file: %s is empty", options.token_file));
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = env->ReadFile(options.tls_ca_file, kMaxCaBytes);
    if (!ca.ok()) {
      return absl::Status(ca.status().code(),
                          absl::StrFormat("--tls-ca: %s", ca.status().message()));
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *std::move(ca);
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  return std::make_unique<StatusClient>(
      grpc::CreateCustomChannel(options.target, credentials, args), options.target,
      std::move(token), options.call_timeout, env);
}

StatusClient::StatusClient(std::shared_ptr<grpc::Channel> channel, std::string target,
                           std::string token, absl::Duration call_timeout, checkpoints::Env* env)
    : channel_(std::move(channel)),
      target_(std::move(target)),
      token_(std::move(token)),
      call_timeout_(call_timeout),
      env_(env),
      models_(v1::ModelService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

void StatusClient::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
}

absl::Status StatusClient::CallError(std::string_view method, const grpc::Status& status) const {
  if (Unreachable(status)) {
    std::string reason = status.error_message();
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      reason = absl::StrFormat("no answer within %s", absl::FormatDuration(call_timeout_));
    } else if (status.error_code() == grpc::StatusCode::CANCELLED) {
      reason = "the call was cancelled (is the server stopping?)";
    }
    return absl::UnavailableError(absl::StrFormat("cannot reach %s: %s", target_, reason));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrFormat("%s: %s: %s: %s", target_, method,
                                      GrpcCodeName(status.error_code()), status.error_message()));
}

absl::StatusOr<HealthState> StatusClient::Health(const std::string& service) {
  grpc::ClientContext context;
  Prepare(&context);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status = health_->Check(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return HealthState::kNotFound;
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return HealthState::kUnknown;
  if (!status.ok()) return CallError("Health.Check", status);
  switch (response.status()) {
    case HealthCheckResponse::SERVING:
      return HealthState::kServing;
    case HealthCheckResponse::NOT_SERVING:
      return HealthState::kNotServing;
    case HealthCheckResponse::SERVICE_UNKNOWN:
      return HealthState::kNotFound;
    default:
      return HealthState::kUnknown;
  }
}

absl::StatusOr<ServerStatus> StatusClient::Fetch() {
  ServerStatus out;
  out.target = target_;
  absl::StatusOr<HealthState> health = Health("");
  if (!health.ok()) return health.status();
  out.health = *health;

  v1::ListModelsResponse list;
  {
    grpc::ClientContext context;
    Prepare(&context);
    const grpc::Status status = models_->ListModels(&context, v1::ListModelsRequest(), &list);
    if (!status.ok()) return CallError("ListModels", status);
  }
  out.fetched_micros = env_->NowMicros();
  std::sort(list.mutable_models()->begin(), list.mutable_models()->end(),
            [](const v1::Model& a, const v1::Model& b) { return a.name() < b.name(); });
  for (v1::Model& model : *list.mutable_models()) {
    ModelStatus m;
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetMetricsRequest request;
    request.set_model(model.name());
    const grpc::Status status = models_->GetMetrics(&context, request, &m.metrics);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // deleted meanwhile
    if (!status.ok()) return CallError("GetMetrics", status);
    absl::StatusOr<HealthState> kafka = Health(KafkaHealthName(model.name()));
    if (!kafka.ok()) return kafka.status();
    m.kafka = *kafka;
    m.model = std::move(model);
    out.models.push_back(std::move(m));
  }
  return out;
}

std::string HumanCount(std::uint64_t n) {
  if (n < 1000) return absl::StrFormat("%d", n);
  return Scaled(static_cast<double>(n), 1000, {"k", "M", "G", "T", "P", "E"});
}

std::string HumanBytes(std::uint64_t bytes) {
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  return Scaled(static_cast<double>(bytes), 1024, {" KiB", " MiB", " GiB", " TiB", " PiB", " EiB"});
}

std::string HumanLatency(double seconds) {
  if (seconds < 1e-3) return absl::StrFormat("%.1fus", seconds * 1e6);
  if (seconds < 1) return absl::StrFormat("%.1fms", seconds * 1e3);
  return absl::StrFormat("%.2fs", seconds);
}

std::string HumanAge(double seconds) {
  const std::int64_t s = seconds > 0 ? static_cast<std::int64_t>(seconds) : 0;
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string FormatStatusText(const ServerStatus& status) {
  std::string out = absl::StrFormat(
      "%s  health %s  %d model%s  %s\n", status.target, HealthStateName(status.health),
      status.models.size(), status.models.size() == 1 ? "" : "s", IsoTime(status.fetched_micros));
  if (status.models.empty()) return out;

  // State: what the model is and where it stands. GEN is the checkpoint generation.
  Table state({{"MODEL"},
               {"LEARNER"},
               {"VER", true},
               {"GEN", true},
               {"CLASSES", true},
               {"MEMORY", true},
               {"CKPT AGE", true},
               {"KAFKA"}});
  // Traffic: events seen and how predictions perform.
  Table traffic({{"MODEL"},
                 {"EVENTS", true},
                 {"LABELED", true},
                 {"UNLABELED", true},
                 {"CACHE HITS", true},
                 {"CACHE MISSES", true},
                 {"PREDICT P50", true},
                 {"PREDICT P99", true}});
  // Quality: prequential metrics, over the rolling window and since the start.
  Table quality({{"MODEL"},
                 {"ACC ROLL", true},
                 {"ACC CUM", true},
                 {"LOGLOSS ROLL", true},
                 {"LOGLOSS CUM", true},
                 {"AUC ROLL", true},
                 {"AUC CUM", true}});
  for (const ModelStatus& m : status.models) {
    const v1::Model& model = m.model;
    const v1::ModelMetrics& metrics = m.metrics;
    const std::optional<double> age = CheckpointAge(status, model);
    state.AddRow({model.name(), model.spec().learner(), absl::StrCat(model.version()),
                  absl::StrCat(model.generation()), absl::StrCat(model.classes_size()),
                  HumanBytes(model.memory_bytes()), age.has_value() ? HumanAge(*age) : "never",
                  KafkaCell(m.kafka)});
    const v1::LatencySummary& predict = metrics.predict_latency();
    traffic.AddRow({model.name(), HumanCount(model.events()), HumanCount(model.labeled()),
                    HumanCount(model.unlabeled()), HumanCount(metrics.label_cache_hits()),
                    HumanCount(metrics.label_cache_misses()),
                    Latency(predict, predict.p50_seconds()),
                    Latency(predict, predict.p99_seconds())});
    const v1::MetricValues& rolling = metrics.rolling();
    const v1::MetricValues& cumulative = metrics.cumulative();
    quality.AddRow({model.name(), Ratio(rolling, rolling.accuracy()),
                    Ratio(cumulative, cumulative.accuracy()), Ratio(rolling, rolling.log_loss()),
                    Ratio(cumulative, cumulative.log_loss()), Auc(rolling), Auc(cumulative)});
  }
  for (const Table* table : {&state, &traffic, &quality}) {
    out += '\n';
    table->AppendTo(&out);
  }
  return out;
}

std::string FormatStatusJson(const ServerStatus& status) {
  std::string out = "{\"target\": " + JsonString(status.target);
  out += ", \"time\": " + JsonString(IsoTime(status.fetched_micros));
  out += ", \"health\": " + JsonString(HealthStateName(status.health));
  out += ", \"models\": [";
  for (std::size_t i = 0; i < status.models.size(); ++i) {
    const v1::Model& model = status.models[i].model;
    const v1::ModelMetrics& metrics = status.models[i].metrics;
    if (i > 0) out += ", ";
    out += "{\"name\": " + JsonString(model.name());
    out += ", \"learner\": " + JsonString(model.spec().learner());
    absl::StrAppendFormat(&out,
                          ", \"version\": %d, \"generation\": %d, \"classes\": %d, \"events\": "
                          "%d, \"labeled\": %d, \"unlabeled\": %d, \"memory_bytes\": %d",
                          model.version(), model.generation(), model.classes_size(), model.events(),
                          model.labeled(), model.unlabeled(), model.memory_bytes());
    const std::optional<double> age = CheckpointAge(status, model);
    out += ", \"last_checkpoint\": " +
           (age.has_value() ? JsonString(IsoTime(Micros(model.last_checkpoint()))) : "null");
    out += ", \"checkpoint_age_seconds\": " + JsonOptional(age.has_value(), age.value_or(0));
    out += ", \"kafka\": " + (status.models[i].kafka == HealthState::kNotFound
                                  ? std::string("null")
                                  : JsonString(HealthStateName(status.models[i].kafka)));
    absl::StrAppendFormat(&out, ", \"window\": %d, \"rolling\": ", metrics.window());
    AppendJsonMetrics(metrics.rolling(), &out);
    out += ", \"cumulative\": ";
    AppendJsonMetrics(metrics.cumulative(), &out);
    absl::StrAppendFormat(
        &out, ", \"label_cache\": {\"hits\": %d, \"misses\": %d, \"evictions\": %d}",
        metrics.label_cache_hits(), metrics.label_cache_misses(), metrics.label_cache_evictions());
    out += ", \"predict_latency\": ";
    AppendJsonLatency(metrics.predict_latency(), &out);
    out += ", \"learn_latency\": ";
    AppendJsonLatency(metrics.learn_latency(), &out);
    out += "}";
  }
  out += "]}\n";
  return out;
}

void AddStatusCommand(CLI::App& app, StatusOptions* options) {
  CLI::App* status = app.add_subcommand(
      "status",
      "One-screen summary of the models of a running `riffle serve`, read over its gRPC API:\n"
      "  state    learner, version (VER), checkpoint generation (GEN), classes, memory,\n"
      "           age of the last checkpoint this server process wrote (CKPT AGE), and\n"
      "           the health of the model's Kafka path (- when it has none)\n"
      "  traffic  events, labeled, unlabeled, label-cache hits and misses, predict latency\n"
      "           per call (p50, p99)\n"
      "  quality  accuracy, log loss and ROC AUC (binary), over the rolling window and\n"
      "           cumulative (- until an example was scored)\n"
      "and the server's overall health. Exit status 1 when the server cannot be reached\n"
      "(each call has a 3 s deadline), 2 for a usage error.");
  status->add_option("--target", options->target, "host:port of the server's gRPC API")->required();
  status
      ->add_option_function<double>(
          "--watch", [options](const double& seconds) { options->watch_seconds = seconds; },
          "Refresh every SECONDS until Ctrl-C or SIGTERM, redrawing the screen on a terminal "
          "(a server unreachable at a later refresh is reported and retried)")
      ->expected(0, 1)
      ->default_str("2")
      ->type_name("[SECONDS]");
  status->add_option("--token-file", options->token_file,
                     "File holding the bearer token, sent with every call");
  status->add_option("--tls-ca", options->tls_ca_file,
                     "PEM file of the CA that signed the server's certificate: connect with TLS");
  status->add_flag("--json", options->json,
                   "Print one JSON object per refresh (one line, exact numbers): target, time, "
                   "health, models");
}

int RunStatusCommand(const StatusOptions& options, const std::atomic<bool>* stop,
                     checkpoints::Env* env, std::FILE* out, std::FILE* err) {
  if (absl::Status s = options.Validate(); !s.ok()) {
    Write(err,
          absl::StrFormat("riffle status: error: %s (see 'riffle status --help')\n", s.message()));
    return kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<StatusClient>> client = StatusClient::Create(options, env);
  if (!client.ok()) {
    ReportError(err, client.status());
    return kExitFailure;
  }
  const bool redraw = options.watch_seconds.has_value() && !options.json && isatty(fileno(out));
  bool first = true;
  while (stop == nullptr || !stop->load()) {
    absl::StatusOr<ServerStatus> status = (*client)->Fetch();
    if (!status.ok()) {
      if (first || !options.watch_seconds.has_value()) {
        ReportError(err, status.status());
        return kExitFailure;
      }
      if (redraw) Write(out, kClearScreen);
      ReportError(err, status.status());
    } else if (options.json) {
      Write(out, FormatStatusJson(*status));
    } else {
      std::string text = FormatStatusText(*status);
      if (redraw) {
        text =
            absl::StrCat(std::string(kClearScreen), text,
                         absl::StrFormat("\nevery %gs, Ctrl-C to stop\n", *options.watch_seconds));
      } else if (!first) {
        text.insert(0, "\n");  // plain repeated blocks, a blank line apart
      }
      Write(out, text);
    }
    first = false;
    if (!options.watch_seconds.has_value()) return 0;
    SleepUnlessStopped(absl::Seconds(*options.watch_seconds), stop);
  }
  return 0;
}

}  // namespace riffle::service
