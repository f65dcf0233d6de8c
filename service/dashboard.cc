#include "service/dashboard.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "service/dashboard_assets.h"
#include "service/json.h"

namespace riffle::service {
namespace {

// The metrics the dashboard reads (service/metrics_sources.cc, service/kafka_metrics.cc).
constexpr char kModelInfo[] = "riffle_model_info";
constexpr char kAccuracy[] = "riffle_model_accuracy";
constexpr char kLogLoss[] = "riffle_model_log_loss";
constexpr char kRocAuc[] = "riffle_model_roc_auc";
constexpr char kEvents[] = "riffle_model_events_total";
constexpr char kPredictions[] = "riffle_model_predictions_total";
constexpr char kKafkaPredictions[] = "riffle_kafka_predictions_total";
constexpr char kPredictLatency[] = "riffle_model_predict_latency_seconds";
constexpr char kEventToPrediction[] = "riffle_kafka_event_to_prediction_seconds";
constexpr char kConsumerLag[] = "riffle_kafka_consumer_lag_records";
constexpr char kPredictedClass[] = "riffle_model_predicted_class_total";
constexpr char kDriftDetections[] = "riffle_model_drift_detections_total";

// The percentiles drawn for each latency histogram, and the suffix of their series keys.
constexpr std::pair<double, const char*> kPercentiles[] = {
    {0.50, "p50"}, {0.95, "p95"}, {0.99, "p99"}};

using ByModel = std::map<std::string, std::vector<HistorySeries>, std::less<>>;

// The selected series, grouped by their model label (series without one are not a model's).
ByModel QueryByModel(const MetricsHistory& history, SeriesSelector selector, double since) {
  ByModel out;
  for (HistorySeries& s : history.Query(selector, since)) {
    const std::string model(s.Label("model"));
    if (!model.empty()) out[model].push_back(std::move(s));
  }
  return out;
}

// The samples first..last of `s`, as a series of their own.
HistorySeries Slice(const HistorySeries& s, std::size_t first, std::size_t last) {
  const auto from = static_cast<std::ptrdiff_t>(first);
  const auto stop = static_cast<std::ptrdiff_t>(last) + 1;
  HistorySeries w;
  w.name = s.name;
  w.type = s.type;
  w.bounds = s.bounds;
  w.times.assign(s.times.begin() + from, s.times.begin() + stop);
  w.values.assign(s.values.begin() + from, s.values.begin() + stop);
  if (!s.bucket_counts.empty()) {
    w.bucket_counts.assign(s.bucket_counts.begin() + from, s.bucket_counts.begin() + stop);
  }
  return w;
}

// The samples of `s` at times in [times[last] - window, times[last]]: what the helpers of
// metrics_history.h would see if `last` were the series' newest sample (they choose the same
// first sample). Cheap: a window holds a handful of samples.
HistorySeries WindowEndingAt(const HistorySeries& s, std::size_t last, double window) {
  const auto end = s.times.begin() + static_cast<std::ptrdiff_t>(last) + 1;
  const auto first = std::lower_bound(s.times.begin(), end, s.times[last] - window);
  return Slice(s, static_cast<std::size_t>(first - s.times.begin()), last);
}

// The indices of the samples of `s` at times in (since, now].
std::pair<std::size_t, std::size_t> NewSamples(const HistorySeries& s, double since, double now) {
  const auto from = std::upper_bound(s.times.begin(), s.times.end(), since);
  const auto to = std::upper_bound(from, s.times.end(), now);
  return {static_cast<std::size_t>(from - s.times.begin()),
          static_cast<std::size_t>(to - s.times.begin())};
}

// Where a query must start for the windows ending after `since`: one second earlier than
// strictly needed, so that rounding in `time - window` never loses a window's first sample.
double QueryFrom(double since, double window) { return since - window - 1; }

// `value` of the window ending at every new sample of `s`; undefined values are left out.
template <typename F>
DashboardSeries Derive(const HistorySeries& s, double since, double now, double window, F value) {
  DashboardSeries out;
  const auto [from, to] = NewSamples(s, since, now);
  for (std::size_t i = from; i < to; ++i) {
    const std::optional<double> v = value(WindowEndingAt(s, i, window));
    if (v.has_value() && std::isfinite(*v)) out.push_back({s.times[i], *v});
  }
  return out;
}

// The new samples of a gauge, as they are.
DashboardSeries Raw(const HistorySeries& s, double since, double now) {
  DashboardSeries out;
  const auto [from, to] = NewSamples(s, since, now);
  for (std::size_t i = from; i < to; ++i) out.push_back({s.times[i], s.values[i]});
  return out;
}

// Point-wise sum of several series of one model (partitions of a topic, ...) at the times any
// of them has a sample.
DashboardSeries SumByTime(const std::vector<DashboardSeries>& parts) {
  std::map<double, double> sum;
  for (const DashboardSeries& part : parts) {
    for (const DashboardPoint& p : part) sum[p.time] += p.value;
  }
  DashboardSeries out;
  out.reserve(sum.size());
  for (const auto& [time, value] : sum) out.push_back({time, value});
  return out;
}

// The model `name` of `models` (sorted by name), or null.
DashboardModel* ModelNamed(std::vector<DashboardModel>* models, std::string_view name) {
  auto it =
      std::lower_bound(models->begin(), models->end(), name,
                       [](const DashboardModel& m, std::string_view n) { return m.name < n; });
  if (it == models->end() || it->name != name) return nullptr;
  return &*it;
}

void AppendNumber(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char buffer[32];
  const std::to_chars_result r = std::to_chars(buffer, buffer + sizeof(buffer), v);
  out->append(buffer, r.ptr);
}

void AppendSeries(std::string* out, const DashboardSeries& series) {
  out->push_back('[');
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('[');
    AppendNumber(out, series[i].time);
    out->push_back(',');
    AppendNumber(out, series[i].value);
    out->push_back(']');
  }
  out->push_back(']');
}

void AppendKey(std::string* out, std::string_view key) {
  AppendJsonString(out, key);
  out->push_back(':');
}

void AppendModel(std::string* out, const DashboardModel& m) {
  out->push_back('{');
  AppendKey(out, "name");
  AppendJsonString(out, m.name);
  out->push_back(',');
  AppendKey(out, "learner");
  AppendJsonString(out, m.learner);
  out->push_back(',');
  AppendKey(out, "last_seen");
  AppendNumber(out, m.last_seen);
  out->push_back(',');
  AppendKey(out, "series");
  out->push_back('{');
  bool first = true;
  for (const auto& [key, series] : m.series) {
    if (!first) out->push_back(',');
    first = false;
    AppendKey(out, key);
    AppendSeries(out, series);
  }
  out->push_back('}');
  out->push_back(',');
  AppendKey(out, "class_distribution");
  if (!m.classes.has_value()) {
    out->append("null");
  } else {
    out->push_back('[');
    for (std::size_t i = 0; i < m.classes->size(); ++i) {
      const DashboardClassCount& c = (*m.classes)[i];
      if (i > 0) out->push_back(',');
      out->push_back('{');
      AppendKey(out, "class");
      AppendJsonString(out, c.name);
      out->push_back(',');
      AppendKey(out, "recent");
      AppendNumber(out, c.recent);
      out->push_back(',');
      AppendKey(out, "total");
      AppendNumber(out, c.total);
      out->push_back('}');
    }
    out->push_back(']');
  }
  out->push_back(',');
  AppendKey(out, "drift_detections_total");
  if (m.drift_detections_total.has_value()) {
    AppendNumber(out, *m.drift_detections_total);
  } else {
    out->append("null");
  }
  out->push_back(',');
  AppendKey(out, "drift_events");
  out->push_back('[');
  for (std::size_t i = 0; i < m.drift_events.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('{');
    AppendKey(out, "time");
    AppendNumber(out, m.drift_events[i].time);
    out->push_back(',');
    AppendKey(out, "count");
    AppendNumber(out, m.drift_events[i].count);
    out->push_back('}');
  }
  out->push_back(']');
  out->push_back(',');
  AppendKey(out, "flagged");
  out->push_back('[');
  for (std::size_t i = 0; i < m.flagged.size(); ++i) {
    const FlaggedPrediction& f = m.flagged[i];
    if (i > 0) out->push_back(',');
    out->push_back('{');
    AppendKey(out, "time");
    AppendNumber(out, static_cast<double>(f.time_micros) / 1e6);
    out->push_back(',');
    AppendKey(out, "topic");
    AppendJsonString(out, f.topic);
    out->push_back(',');
    AppendKey(out, "key");
    AppendJsonString(out, f.key);
    out->push_back(',');
    AppendKey(out, "record");
    AppendJsonString(out, f.record);
    out->push_back('}');
  }
  out->push_back(']');
  out->push_back('}');
}

}  // namespace

absl::Status DashboardOptions::Validate() const {
  for (const auto& [name, value] :
       {std::pair{"rate_seconds", rate_seconds}, std::pair{"latency_seconds", latency_seconds},
        std::pair{"class_seconds", class_seconds}}) {
    if (!(value > 0) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("dashboard: %s must be a positive number, got %g", name, value));
    }
  }
  return absl::OkStatus();
}

DashboardSnapshot BuildDashboardSnapshot(const MetricsHistory& history, double since_seconds,
                                         const DashboardOptions& options,
                                         const std::vector<FlaggedPrediction>* flagged) {
  DashboardSnapshot snap;
  // `now` first: a Record() running meanwhile adds samples after it, which this answer leaves
  // out and the next one (since = now) includes, so the page sees every sample exactly once.
  snap.now = history.last_time();
  snap.since = since_seconds;
  snap.retention_seconds = history.retention_seconds();
  snap.options = options;
  snap.flagged_available = flagged != nullptr;
  const double now = snap.now;
  const double since = since_seconds;

  // The models: every model label of riffle_model_info; the learner of its newest series (a
  // model re-created under the same name may have had another).
  for (const auto& [name, infos] : QueryByModel(history, {kModelInfo, {}}, 0)) {
    DashboardModel m;
    m.name = name;
    for (const HistorySeries& s : infos) {
      if (!s.times.empty() && s.times.back() >= m.last_seen) {
        m.last_seen = s.times.back();
        m.learner = std::string(s.Label("learner"));
      }
    }
    snap.models.push_back(std::move(m));
  }  // sorted: std::map order

  // The rolling prequential metrics, as sampled.
  for (const auto& [metric, key] :
       {std::pair{kAccuracy, "accuracy"}, std::pair{kLogLoss, "log_loss"},
        std::pair{kRocAuc, "roc_auc"}}) {
    for (const auto& [name, series] :
         QueryByModel(history, {metric, {{"window", "rolling"}}}, since)) {
      if (DashboardModel* m = ModelNamed(&snap.models, name)) {
        m->series[key] = Raw(series.front(), since, now);
      }
    }
  }

  // Throughput: the counters' rates, summed over the series of each model. Predictions are
  // those answered over gRPC (riffle_model_predictions_total) plus the prediction records of
  // the Kafka path, which the model's counter does not include.
  const double rate_window = options.rate_seconds;
  for (const auto& [metrics, key] :
       {std::pair{std::vector<const char*>{kEvents}, "events_per_second"},
        std::pair{std::vector<const char*>{kPredictions, kKafkaPredictions},
                  "predictions_per_second"}}) {
    std::map<std::string, std::vector<DashboardSeries>> parts;  // by model
    for (const char* metric : metrics) {
      for (const auto& [name, series] :
           QueryByModel(history, {metric, {}}, QueryFrom(since, rate_window))) {
        for (const HistorySeries& s : series) {
          parts[name].push_back(Derive(s, since, now, rate_window, [&](const HistorySeries& w) {
            return CounterRate(w, rate_window);
          }));
        }
      }
    }
    for (const auto& [name, model_parts] : parts) {
      if (DashboardModel* m = ModelNamed(&snap.models, name)) {
        m->series[key] = SumByTime(model_parts);
      }
    }
  }

  // Latency percentiles of the observations in the window ending at each sample.
  const double latency_window = options.latency_seconds;
  for (const auto& [metric, prefix] : {std::pair{kPredictLatency, "predict_latency"},
                                       std::pair{kEventToPrediction, "event_to_prediction"}}) {
    for (const auto& [name, series] :
         QueryByModel(history, {metric, {}}, QueryFrom(since, latency_window))) {
      DashboardModel* m = ModelNamed(&snap.models, name);
      if (m == nullptr) continue;
      for (const auto& [q, suffix] : kPercentiles) {
        // A copy to capture: clang before 16 cannot capture a structured binding (the fuzz
        // build compiles this file with clang 14).
        const double quantile = q;
        m->series[absl::StrFormat("%s_%s_seconds", prefix, suffix)] = Derive(
            series.front(), since, now, latency_window,
            [&](const HistorySeries& w) { return HistogramQuantile(w, quantile, latency_window); });
      }
    }
  }

  // Kafka consumer lag: every partition of every input topic of the model, summed.
  for (const auto& [name, series] : QueryByModel(history, {kConsumerLag, {}}, since)) {
    DashboardModel* m = ModelNamed(&snap.models, name);
    if (m == nullptr) continue;
    std::vector<DashboardSeries> parts;
    for (const HistorySeries& s : series) parts.push_back(Raw(s, since, now));
    m->series["kafka_lag_records"] = SumByTime(parts);
  }

  // Class distribution: each class's increase over the class window, and its total. A series
  // with a single sample (the process just started) counts all it holds as recent, as
  // HistogramQuantile does.
  for (const auto& [name, series] : QueryByModel(history, {kPredictedClass, {}}, 0)) {
    DashboardModel* m = ModelNamed(&snap.models, name);
    if (m == nullptr) continue;
    m->classes.emplace();
    for (const HistorySeries& s : series) {
      DashboardClassCount c;
      c.name = std::string(s.Label("class"));
      c.total = LastValue(s).value_or(0);
      c.recent = CounterIncrease(s, options.class_seconds).value_or(c.total);
      m->classes->push_back(std::move(c));
    }
  }

  // Drift: the counter's total, and an event at every new sample where it increased.
  for (const auto& [name, series] : QueryByModel(history, {kDriftDetections, {}}, 0)) {
    DashboardModel* m = ModelNamed(&snap.models, name);
    if (m == nullptr) continue;
    double total = 0;
    std::vector<DashboardSeries> parts;
    for (const HistorySeries& s : series) {
      total += LastValue(s).value_or(0);
      DashboardSeries increases;
      const auto [from, to] = NewSamples(s, since, now);
      for (std::size_t i = std::max<std::size_t>(from, 1); i < to; ++i) {
        // The two samples i-1 and i: CounterIncrease reads a decrease as a reset, as for rates.
        const std::optional<double> inc = CounterIncrease(Slice(s, i - 1, i), INFINITY);
        if (inc.has_value() && *inc > 0) increases.push_back({s.times[i], *inc});
      }
      parts.push_back(std::move(increases));
    }
    m->drift_detections_total = total;
    for (const DashboardPoint& p : SumByTime(parts)) m->drift_events.push_back({p.time, p.value});
  }

  if (flagged != nullptr) {
    for (const FlaggedPrediction& f : *flagged) {
      DashboardModel* m = ModelNamed(&snap.models, f.model);
      if (m != nullptr && m->flagged.size() < options.max_flagged) m->flagged.push_back(f);
    }
  }
  return snap;
}

std::string DashboardJson(const DashboardSnapshot& snapshot) {
  std::string out;
  out.append("{\"version\":1,");
  AppendKey(&out, "now");
  AppendNumber(&out, snapshot.now);
  out.push_back(',');
  AppendKey(&out, "since");
  AppendNumber(&out, snapshot.since);
  out.push_back(',');
  AppendKey(&out, "retention_seconds");
  AppendNumber(&out, snapshot.retention_seconds);
  out.push_back(',');
  AppendKey(&out, "windows");
  out.push_back('{');
  AppendKey(&out, "rate_seconds");
  AppendNumber(&out, snapshot.options.rate_seconds);
  out.push_back(',');
  AppendKey(&out, "latency_seconds");
  AppendNumber(&out, snapshot.options.latency_seconds);
  out.push_back(',');
  AppendKey(&out, "class_seconds");
  AppendNumber(&out, snapshot.options.class_seconds);
  out.append("},");
  AppendKey(&out, "flagged_available");
  out.append(snapshot.flagged_available ? "true" : "false");
  out.push_back(',');
  AppendKey(&out, "models");
  out.push_back('[');
  for (std::size_t i = 0; i < snapshot.models.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendModel(&out, snapshot.models[i]);
  }
  out.append("]}");
  return out;
}

std::optional<DashboardAsset> FindDashboardAsset(std::string_view name) {
  // The page's own files only: a name with a slash never matches, so no path leads elsewhere.
  for (const EmbeddedFile& file : DashboardFiles()) {
    if (file.name != name) continue;
    const std::size_t dot = name.rfind('.');
    const std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
    std::string_view type = "application/octet-stream";
    if (ext == "html") type = "text/html; charset=utf-8";
    if (ext == "js") type = "text/javascript; charset=utf-8";
    if (ext == "css") type = "text/css; charset=utf-8";
    if (ext == "svg") type = "image/svg+xml";
    return DashboardAsset{type, file.bytes};
  }
  return std::nullopt;
}

Dashboard::Dashboard(const MetricsHistory* history, DashboardOptions options)
    : history_(history), options_(std::move(options)) {}

void Dashboard::SetFlaggedPredictions(FlaggedPredictionsProvider provider) {
  std::lock_guard<std::mutex> lock(mu_);
  flagged_ = std::move(provider);
}

std::string Dashboard::Json(double since_seconds) const {
  FlaggedPredictionsProvider provider;
  {
    std::lock_guard<std::mutex> lock(mu_);
    provider = flagged_;
  }
  // The provider runs without the mutex held: it takes locks of its own (the pipelines').
  std::optional<std::vector<FlaggedPrediction>> flagged;
  if (provider) flagged = provider();
  return DashboardJson(BuildDashboardSnapshot(*history_, since_seconds, options_,
                                              flagged.has_value() ? &*flagged : nullptr));
}

}  // namespace riffle::service
