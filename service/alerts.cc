#include "service/alerts.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <set>
#include <tuple>

#include "absl/strings/str_format.h"
#include "service/json.h"

namespace riffle::service {
namespace {

// The prequential metrics ModelMetricsSource exposes as riffle_model_<name>{model, window}.
constexpr std::array<std::string_view, 8> kModelMetrics = {
    "accuracy", "log_loss", "roc_auc", "macro_f1", "precision", "recall", "f1", "scored_examples"};

constexpr char kDriftMetric[] = "riffle_model_drift_detections_total";
constexpr char kLagMetric[] = "riffle_kafka_consumer_lag_records";
constexpr char kDeadLettersMetric[] = "riffle_kafka_dead_letters_total";

// The default quantile of a histogram watched by a `metric` rule.
constexpr double kDefaultQuantile = 0.99;
// The window of the global cap.
constexpr double kCapWindowSeconds = 60;
// Bounds the memory of counter births (one entry per counter series a rule reads); beyond it,
// new series get no credit for their first value.
constexpr std::size_t kMaxTrackedCounters = 20000;

absl::Status FieldError(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", field, what));
}

bool IsModelMetric(std::string_view metric) {
  return std::find(kModelMetrics.begin(), kModelMetrics.end(), metric) != kModelMetrics.end();
}

std::string ModelMetricList() {
  std::string list;
  for (std::string_view m : kModelMetrics) {
    absl::StrAppend(&list, list.empty() ? "" : ", ", std::string(m));
  }
  return list;
}

// Letters, digits, '_', '-', '.': what model names allow (ValidateModelName), so rule names
// read well in logs and as label values.
absl::Status CheckName(std::string_view field, std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return FieldError(field, absl::StrFormat("must be 1 to 128 characters, got %d", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return FieldError(field, absl::StrFormat("\"%s\": only [a-zA-Z0-9_.-]", name));
  }
  return absl::OkStatus();
}

bool IsPrometheusName(std::string_view name, bool label) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

absl::Status CheckNumber(std::string_view field, double v, double low, double high,
                         bool low_open = false) {
  if (!std::isfinite(v) || v < low || v > high || (low_open && v == low)) {
    return FieldError(
        field, absl::StrFormat("%g is outside %c%g, %g]", v, low_open ? '(' : '[', low, high));
  }
  return absl::OkStatus();
}

// "2026-11-23T06:48:00Z".
std::string Rfc3339(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatValue(double v) { return absl::StrFormat("%.6g", v); }

// A JSON number in the shortest form that reads back to the same double (0.71, not
// 0.70999999999999996: receivers show it to people), or null when not finite.
std::string Number(double v) { return std::isfinite(v) ? FormatMetricValue(v) : "null"; }

std::string FormatDuration(double seconds) {
  if (seconds < 120) return absl::StrFormat("%.0f s", seconds);
  if (seconds < 7200) return absl::StrFormat("%.0f min", seconds / 60);
  return absl::StrFormat("%.1f h", seconds / 3600);
}

// The identity of a series, as MetricsHistory keys it (labels in the order written; values
// length-prefixed, since they may hold any character).
std::string SeriesKey(const HistorySeries& s) {
  std::string key = s.name;
  key += '{';
  for (const MetricLabel& l : s.labels) {
    absl::StrAppendFormat(&key, "%s=%d:%s,", l.name, l.value.size(), l.value);
  }
  key += '}';
  return key;
}

// The function a `metric` rule applies to a series of the given type.
std::string_view FunctionFor(const AlertRule& rule, MetricType type) {
  if (rule.quantile.has_value()) return "quantile";
  if (!rule.function.empty()) return rule.function;
  switch (type) {
    case MetricType::kCounter:
      return "rate";
    case MetricType::kHistogram:
      return "quantile";
    case MetricType::kGauge:
      break;
  }
  return "last";
}

// What a rule measures, for messages: "rolling accuracy", "p99 of riffle_x over 60 s".
std::string Subject(const AlertRule& rule) {
  const std::string window = FormatDuration(rule.window_seconds);
  switch (rule.kind) {
    case AlertKind::kDrift:
      return absl::StrFormat("drift detections in the last %s", window);
    case AlertKind::kLag:
      return "Kafka consumer lag (records, all partitions)";
    case AlertKind::kDeadLetters:
      return absl::StrFormat("dead letters per second over the last %s", window);
    case AlertKind::kMetric:
      break;
  }
  if (IsModelMetric(rule.metric)) {
    return absl::StrFormat("%s %s", rule.window.empty() ? "rolling" : rule.window, rule.metric);
  }
  std::string series = rule.metric;
  if (!rule.labels.empty()) {
    series += '{';
    bool first = true;
    for (const auto& [name, value] : rule.labels) {
      absl::StrAppendFormat(&series, "%s%s=\"%s\"", first ? "" : ",", name, value);
      first = false;
    }
    series += '}';
  }
  if (rule.quantile.has_value() || rule.function == "quantile") {
    return absl::StrFormat("p%g of %s over %s", 100 * rule.quantile.value_or(kDefaultQuantile),
                           series, window);
  }
  if (rule.function == "rate") return absl::StrFormat("rate of %s over %s", series, window);
  if (rule.function == "increase") {
    return absl::StrFormat("increase of %s over %s", series, window);
  }
  return series;
}

}  // namespace

std::string_view AlertKindName(AlertKind kind) {
  switch (kind) {
    case AlertKind::kMetric:
      return "metric";
    case AlertKind::kDrift:
      return "drift";
    case AlertKind::kLag:
      return "lag";
    case AlertKind::kDeadLetters:
      return "dead_letters";
  }
  return "?";
}

absl::StatusOr<AlertKind> ParseAlertKind(std::string_view text) {
  for (AlertKind k :
       {AlertKind::kMetric, AlertKind::kDrift, AlertKind::kLag, AlertKind::kDeadLetters}) {
    if (AlertKindName(k) == text) return k;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "\"%s\" is not a rule kind (metric, drift, lag, dead_letters)", std::string(text)));
}

double AlertRule::threshold() const {
  if (above.has_value()) return *above;
  if (below.has_value()) return *below;
  return 0;  // drift without `above`: any detection
}

bool AlertRule::fires_above() const { return !below.has_value(); }

absl::Status AlertRule::Validate() const {
  if (absl::Status s = CheckName("name", name); !s.ok()) return s;
  if (!model.empty()) {
    if (absl::Status s = CheckName("model", model); !s.ok()) return s;
  }
  const std::string kind_name(AlertKindName(kind));
  auto only_metric = [&](std::string_view field) {
    return FieldError(field, absl::StrFormat("only for kind metric, not %s", kind_name));
  };
  if (kind != AlertKind::kMetric) {
    if (!metric.empty()) return only_metric("metric");
    if (!window.empty()) return only_metric("window");
    if (!labels.empty()) return only_metric("labels");
    if (!function.empty()) return only_metric("function");
    if (quantile.has_value()) return only_metric("quantile");
    if (below.has_value()) {
      return FieldError("below", absl::StrFormat("not for kind %s (use above)", kind_name));
    }
    if (kind != AlertKind::kDrift && !above.has_value()) {
      return FieldError("above", absl::StrFormat("required for kind %s", kind_name));
    }
    if (above.has_value()) {
      if (absl::Status s = CheckNumber("above", *above, 0, 1e18); !s.ok()) return s;
    }
    if (kind == AlertKind::kDrift && for_seconds != 0) {
      return FieldError("for_seconds",
                        "not for kind drift (a detection is an event; window_seconds sets how "
                        "long the alert stays firing)");
    }
  } else {
    if (metric.empty()) {
      return FieldError("metric", absl::StrFormat("required for kind metric: %s, or a full "
                                                  "metric name such as riffle_model_events_total",
                                                  ModelMetricList()));
    }
    if (!IsPrometheusName(metric, false)) {
      return FieldError("metric", absl::StrFormat("\"%s\" is not a metric name", metric));
    }
    if (IsModelMetric(metric)) {
      if (!window.empty() && window != "rolling" && window != "cumulative") {
        return FieldError("window", absl::StrFormat("\"%s\" is not rolling or cumulative", window));
      }
      const std::string why = absl::StrFormat("not for the model metric %s (a gauge)", metric);
      if (!labels.empty()) return FieldError("labels", why);
      if (!function.empty()) return FieldError("function", why);
      if (quantile.has_value()) return FieldError("quantile", why);
    } else {
      if (!window.empty()) {
        return FieldError("window", absl::StrFormat("only for the model metrics (%s); for %s "
                                                    "use labels: {window: ...}",
                                                    ModelMetricList(), metric));
      }
      for (const auto& [label, value] : labels) {
        if (!IsPrometheusName(label, true)) {
          return FieldError("labels", absl::StrFormat("\"%s\" is not a label name", label));
        }
        if (label == "model") return FieldError("labels.model", "use the rule's model key");
      }
      if (!function.empty() && function != "last" && function != "rate" && function != "increase" &&
          function != "quantile") {
        return FieldError(
            "function",
            absl::StrFormat("\"%s\" is not last, rate, increase or quantile", function));
      }
      if (quantile.has_value()) {
        if (!function.empty() && function != "quantile") {
          return FieldError("quantile", absl::StrFormat("not with function %s", function));
        }
        if (absl::Status s = CheckNumber("quantile", *quantile, 0, 1); !s.ok()) return s;
      }
    }
    if (above.has_value() == below.has_value()) {
      return FieldError(above.has_value() ? "below" : "above",
                        above.has_value() ? "give above or below, not both"
                                          : "required (or below): the threshold");
    }
    const double t = above.has_value() ? *above : *below;
    if (!std::isfinite(t)) {
      return FieldError(above.has_value() ? "above" : "below", "must be a finite number");
    }
  }
  if (absl::Status s = CheckNumber("for_seconds", for_seconds, 0, 86400); !s.ok()) return s;
  if (absl::Status s = CheckNumber("window_seconds", window_seconds, 0, 3600, true); !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

absl::Status AlertOptions::Validate() const {
  if (webhook.empty()) return FieldError("webhook", "required: the URL to post alerts to");
  if (absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(webhook); !url.ok()) {
    return FieldError("webhook", std::string(url.status().message()));
  }
  struct Range {
    const char* field;
    double value, low, high;
    bool low_open;
  };
  for (const Range& r : {
           Range{"timeout_seconds", timeout_seconds, 0, 300, true},
           Range{"max_attempts", static_cast<double>(max_attempts), 1, 100, false},
           Range{"backoff_seconds", backoff_seconds, 0, 3600, false},
           Range{"backoff_max_seconds", backoff_max_seconds, 0, 3600, false},
           Range{"max_retry_after_seconds", max_retry_after_seconds, 0, 3600, false},
           Range{"min_interval_seconds", min_interval_seconds, 0, 86400, false},
           Range{"max_per_minute", static_cast<double>(max_per_minute), 1, 100000, false},
           Range{"evaluate_every_seconds", evaluate_every_seconds, 0, 3600, false},
           Range{"queue_size", static_cast<double>(queue_size), 1, 100000, false},
           Range{"flush_seconds", flush_seconds, 0, 600, false},
       }) {
    if (absl::Status s = CheckNumber(r.field, r.value, r.low, r.high, r.low_open); !s.ok()) {
      return s;
    }
  }
  if (backoff_max_seconds < backoff_seconds) {
    return FieldError("backoff_max_seconds", absl::StrFormat("%g is below backoff_seconds (%g)",
                                                             backoff_max_seconds, backoff_seconds));
  }
  if (rules.empty()) return FieldError("rules", "at least one rule is needed");
  std::set<std::string> names;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (absl::Status s = rules[i].Validate(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("rules[%d].%s", i, s.message()));
    }
    if (!names.insert(rules[i].name).second) {
      return FieldError(absl::StrFormat("rules[%d].name", i),
                        absl::StrFormat("'%s' is used by an earlier rule", rules[i].name));
    }
  }
  return absl::OkStatus();
}

std::string WebhookUrl::Origin() const { return absl::StrFormat("%s://%s:%d", scheme, host, port); }

absl::StatusOr<WebhookUrl> ParseWebhookUrl(std::string_view url) {
  WebhookUrl out;
  // The URL itself is not repeated in messages: a Slack webhook's path is its secret.
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    out.scheme = "http";
    out.port = 80;
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    out.scheme = "https";
    out.port = 443;
    rest = url.substr(8);
  } else {
    return absl::InvalidArgumentError("expected a URL starting with http:// or https://");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("the URL holds a space or a control character");
    }
  }
  const std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
  if (const std::size_t hash = path.find('#'); hash != std::string_view::npos) {
    path = path.substr(0, hash);  // a fragment is never sent
  }
  out.path = path.empty() || path[0] != '/' ? "/" + std::string(path) : std::string(path);
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError("user information (user:password@) is not supported");
  }
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("an IPv6 address without its closing ]");
    }
    out.host = std::string(authority.substr(0, close + 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') {
      return absl::InvalidArgumentError("unexpected text after the IPv6 address");
    }
    if (!after.empty()) port = after.substr(1);
    if (out.host.size() == 2) return absl::InvalidArgumentError("no host");
  } else {
    const std::size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (out.host.empty()) return absl::InvalidArgumentError("no host");
  }
  if (port.data() != nullptr &&
      (port.empty() || port.size() > 5 ||
       !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))) {
    return absl::InvalidArgumentError("the port is not a number");
  }
  if (!port.empty()) {
    out.port = std::stoi(std::string(port));
    if (out.port < 1 || out.port > 65535) {
      return absl::InvalidArgumentError(absl::StrFormat("port %d is outside [1, 65535]", out.port));
    }
  }
  return out;
}

std::string AlertNotificationText(const AlertNotification& n) {
  const bool firing = n.state == AlertState::kFiring;
  std::string text =
      absl::StrFormat("[%s] %s: %s", firing ? "FIRING" : "RESOLVED", n.rule, n.subject);
  if (!n.model.empty()) absl::StrAppendFormat(&text, " of model '%s'", n.model);
  const char* comparison = n.above ? "above" : "below";
  const double held = std::max(0.0, n.time_seconds - n.since_seconds);
  if (firing) {
    absl::StrAppendFormat(&text, " is %s, %s %s",
                          n.value.has_value() ? FormatValue(*n.value) : "unknown", comparison,
                          FormatValue(n.threshold));
    if (held >= 1) absl::StrAppendFormat(&text, " for %s", FormatDuration(held));
  } else if (n.value.has_value()) {
    absl::StrAppendFormat(&text, " is %s, no longer %s %s (it was for %s)", FormatValue(*n.value),
                          comparison, FormatValue(n.threshold), FormatDuration(held));
  } else {
    absl::StrAppendFormat(&text, " is no longer reported (it was %s %s for %s)", comparison,
                          FormatValue(n.threshold), FormatDuration(held));
  }
  if (!n.description.empty()) absl::StrAppend(&text, "\n", n.description);
  return text;
}

std::string AlertNotificationJson(const AlertNotification& n) {
  std::string out = "{\"text\":";
  AppendJsonString(&out, AlertNotificationText(n));
  auto field = [&out](std::string_view name, std::string_view value) {
    out.append(",\"").append(name).append("\":");
    AppendJsonString(&out, value);
  };
  field("rule", n.rule);
  field("kind", AlertKindName(n.kind));
  field("model", n.model);
  field("state", n.state == AlertState::kFiring ? "firing" : "resolved");
  absl::StrAppend(&out, ",\"value\":", n.value.has_value() ? Number(*n.value) : "null");
  absl::StrAppend(&out, ",\"threshold\":", Number(n.threshold));
  field("comparison", n.above ? "above" : "below");
  field("subject", n.subject);
  field("time", Rfc3339(n.time_seconds));
  field("since", Rfc3339(n.since_seconds));
  if (!n.description.empty()) field("description", n.description);
  out += '}';
  return out;
}

absl::StatusOr<std::unique_ptr<AlertManager>> AlertManager::Create(
    AlertOptions options, checkpoints::Env* env, Logger* logger,
    std::unique_ptr<WebhookSender> sender) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (sender == nullptr) {
    absl::StatusOr<std::unique_ptr<WebhookSender>> http = NewHttpWebhookSender(options);
    if (!http.ok()) return http.status();
    sender = *std::move(http);
  }
  return std::unique_ptr<AlertManager>(
      new AlertManager(std::move(options), env, logger, std::move(sender)));
}

AlertManager::AlertManager(AlertOptions options, checkpoints::Env* env, Logger* logger,
                           std::unique_ptr<WebhookSender> sender)
    : options_(std::move(options)),
      env_(env),
      logger_(logger),
      notifier_(options_, std::move(sender), logger) {}

AlertManager::~AlertManager() { Stop(); }

void AlertManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  notifier_.Stop();
}

std::optional<double> AlertManager::Increase(const HistorySeries& series, double window) {
  const std::string key = SeriesKey(series);
  auto it = counter_births_.find(key);
  if (it == counter_births_.end() && counter_births_.size() < kMaxTrackedCounters) {
    // First seen now. A series that was already there at the first evaluation may have
    // counted for a long time; one whose first sample came later started from 0 then.
    const double birth = series.times.front() > watch_start_ ? series.times.front() : -1;
    it = counter_births_.emplace(key, birth).first;
  }
  std::optional<double> increase = CounterIncrease(series, window);
  const double birth = it == counter_births_.end() ? -1 : it->second;
  if (birth >= 0 && series.times.front() == birth && birth >= series.times.back() - window) {
    // Born inside the window: from 0 to its first value is increase too (the first dead
    // letters of a new reason would otherwise be invisible).
    return increase.value_or(0) + series.values.front();
  }
  return increase;
}

AlertManager::RuleValues AlertManager::ValuesOf(const AlertRule& rule,
                                                const MetricsHistory& history, double last_time) {
  SeriesSelector selector;
  switch (rule.kind) {
    case AlertKind::kMetric:
      selector.name = rule.metric;
      if (IsModelMetric(rule.metric)) {
        selector.name = "riffle_model_" + rule.metric;
        selector.match.push_back({"window", rule.window.empty() ? "rolling" : rule.window});
      }
      for (const auto& [name, value] : rule.labels) selector.match.push_back({name, value});
      break;
    case AlertKind::kDrift:
      selector.name = kDriftMetric;
      break;
    case AlertKind::kLag:
      selector.name = kLagMetric;
      break;
    case AlertKind::kDeadLetters:
      selector.name = kDeadLettersMetric;
      break;
  }
  if (!rule.model.empty()) selector.match.push_back({"model", rule.model});

  RuleValues values;
  for (const HistorySeries& s : history.Query(selector)) {
    // Only series in the latest sample: one that stopped being reported keeps its old points
    // in the history until they expire, but says nothing about now.
    if (s.times.empty() || s.times.back() < last_time) continue;
    std::optional<double> v;
    switch (rule.kind) {
      case AlertKind::kMetric: {
        const std::string_view function = FunctionFor(rule, s.type);
        if (function == "rate" || function == "increase") {
          v = Increase(s, rule.window_seconds);
          if (v.has_value() && function == "rate") *v /= rule.window_seconds;
        } else if (function == "quantile") {
          v = HistogramQuantile(s, rule.quantile.value_or(kDefaultQuantile), rule.window_seconds);
        } else {
          v = LastValue(s);
        }
        break;
      }
      case AlertKind::kDrift:
        v = Increase(s, rule.window_seconds);
        break;
      case AlertKind::kLag:
        v = LastValue(s);
        break;
      case AlertKind::kDeadLetters:
        v = Increase(s, rule.window_seconds);
        if (v.has_value()) *v /= rule.window_seconds;
        break;
    }
    const std::string model(s.Label("model"));
    auto [it, inserted] = values.try_emplace(model, v);
    if (inserted || !v.has_value()) continue;
    std::optional<double>& combined = it->second;
    if (!combined.has_value()) {
      combined = v;
    } else if (rule.kind == AlertKind::kMetric) {
      // Several series of one model (e.g. one per label value): the alert is about the one
      // furthest past the threshold.
      combined = rule.fires_above() ? std::max(*combined, *v) : std::min(*combined, *v);
    } else {
      // Lag of every partition, dead letters of every reason: the model's total.
      *combined += *v;
    }
  }
  return values;
}

bool AlertManager::TakeGlobalToken(double now) {
  while (!recent_.empty() && now - recent_.front() >= kCapWindowSeconds) recent_.pop_front();
  if (recent_.size() >= static_cast<std::size_t>(options_.max_per_minute)) return false;
  recent_.push_back(now);
  return true;
}

void AlertManager::Notify(const AlertRule& rule, const std::string& model, Instance* instance,
                          AlertState state, double now) {
  AlertNotification n;
  n.rule = rule.name;
  n.kind = rule.kind;
  n.model = model;
  n.state = state;
  n.value = instance->value;
  n.threshold = rule.threshold();
  n.above = rule.fires_above();
  n.subject = Subject(rule);
  n.time_seconds = now;
  n.since_seconds = instance->firing_since;
  n.description = rule.description;
  // One log line per transition: the description's line break becomes " | ".
  std::string text = AlertNotificationText(n);
  for (std::size_t i = text.find('\n'); i != std::string::npos; i = text.find('\n', i)) {
    text.replace(i, 1, " | ");
  }
  const bool firing = state == AlertState::kFiring;
  if (firing) {
    logger_->Warn(absl::StrFormat("alert: %s", text));
  } else {
    logger_->Info(absl::StrFormat("alert: %s", text));
  }

  if (firing) {
    instance->notified = false;
    if (options_.min_interval_seconds > 0 && instance->last_notified >= 0 &&
        now - instance->last_notified < options_.min_interval_seconds) {
      ++rate_limited_;
      logger_->Info(absl::StrFormat(
          "alert '%s' (model '%s'): not notified, it was %s ago (min_interval_seconds %g)",
          rule.name, model, FormatDuration(now - instance->last_notified),
          options_.min_interval_seconds));
      return;
    }
  } else if (!options_.send_resolved || !instance->notified) {
    // The receiver never heard of this firing (rate limited or dropped): no resolve either.
    instance->notified = false;
    return;
  }
  if (!TakeGlobalToken(now)) {
    ++rate_limited_;
    logger_->Warn(absl::StrFormat(
        "alert '%s' (model '%s'): not notified, %d notifications in the last minute "
        "(max_per_minute)",
        rule.name, model, options_.max_per_minute));
    instance->notified = false;
    return;
  }
  const bool queued = notifier_.Enqueue(std::move(n));
  if (firing) {
    instance->notified = queued;
    if (queued) instance->last_notified = now;
  } else {
    instance->notified = false;
  }
}

void AlertManager::Evaluate(const MetricsHistory& history) {
  const double now = static_cast<double>(env_->NowMicros()) / 1e6;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  if (last_evaluation_ >= 0 && now - last_evaluation_ < options_.evaluate_every_seconds) return;
  const double last_time = history.last_time();
  if (last_time <= 0) return;  // nothing recorded yet
  last_evaluation_ = now;
  if (watch_start_ < 0) watch_start_ = last_time;

  for (std::size_t i = 0; i < options_.rules.size(); ++i) {
    const AlertRule& rule = options_.rules[i];
    RuleValues values = ValuesOf(rule, history, last_time);
    // Alerts of this rule whose series are gone: no data.
    for (const auto& [key, instance] : instances_) {
      if (key.first == i) values.try_emplace(key.second, std::nullopt);
    }
    for (const auto& [model, value] : values) {
      const bool holds = value.has_value() && (rule.fires_above() ? *value > rule.threshold()
                                                                  : *value < rule.threshold());
      auto it = instances_.find({i, model});
      if (it == instances_.end()) {
        if (!holds) continue;  // healthy and never alerted: nothing to remember
        it = instances_.try_emplace({i, model}).first;
      }
      Instance& instance = it->second;
      instance.value = value;
      if (holds) {
        if (instance.firing) continue;
        if (instance.pending_since < 0) instance.pending_since = now;
        if (now - instance.pending_since >= rule.for_seconds) {
          instance.firing = true;
          // Messages say how long the condition has held, for_seconds included.
          instance.firing_since = instance.pending_since;
          instance.pending_since = -1;
          Notify(rule, model, &instance, AlertState::kFiring, now);
        }
      } else {
        instance.pending_since = -1;
        if (instance.firing) {
          instance.firing = false;
          Notify(rule, model, &instance, AlertState::kResolved, now);
        }
      }
    }
  }
  // Forget alerts whose series are gone once nothing depends on their state (bounded memory
  // as models come and go); resolved alerts of live series stay, as riffle_alerts_firing 0.
  for (auto it = instances_.begin(); it != instances_.end();) {
    const Instance& s = it->second;
    const bool rate_limit_pending = s.last_notified >= 0 && options_.min_interval_seconds > 0 &&
                                    now - s.last_notified < options_.min_interval_seconds;
    if (!s.value.has_value() && !s.firing && s.pending_since < 0 && !rate_limit_pending) {
      it = instances_.erase(it);
    } else {
      ++it;
    }
  }
}

void AlertManager::Collect(MetricFamilies* out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, instance] : instances_) {
      out->AddGauge("riffle_alerts_firing",
                    "1 while the alert (rule, model) is firing; 0 once resolved.",
                    {{"rule", options_.rules[key.first].name}, {"model", key.second}},
                    instance.firing ? 1 : 0);
    }
  }
  const AlertDeliveryCounters c = counters();
  for (const auto& [result, value] :
       {std::pair{"sent", c.sent}, std::pair{"failed", c.failed}, std::pair{"dropped", c.dropped},
        std::pair{"rate_limited", c.rate_limited}}) {
    out->AddCounter("riffle_alert_notifications_total",
                    "Alert notifications by result: sent (2xx), failed (attempts exhausted or "
                    "refused), dropped (queue full or shutdown), rate_limited.",
                    {{"result", result}}, static_cast<double>(value));
  }
  out->AddCounter("riffle_alert_delivery_retries_total",
                  "Webhook attempts after the first of a notification.", {},
                  static_cast<double>(c.retries));
}

std::vector<AlertStatus> AlertManager::Alerts() const {
  std::vector<AlertStatus> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, instance] : instances_) {
    AlertStatus s;
    s.rule = options_.rules[key.first].name;
    s.model = key.second;
    s.firing = instance.firing;
    s.pending = instance.pending_since >= 0;
    s.value = instance.value;
    s.since_seconds =
        instance.firing ? instance.firing_since : std::max(0.0, instance.pending_since);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const AlertStatus& a, const AlertStatus& b) {
    return std::tie(a.rule, a.model) < std::tie(b.rule, b.model);
  });
  return out;
}

AlertDeliveryCounters AlertManager::counters() const {
  AlertDeliveryCounters c = notifier_.counters();
  c.rate_limited = rate_limited_.load();
  return c;
}

}  // namespace riffle::service
