#ifndef RIFFLE_SERVICE_DASHBOARD_H_
#define RIFFLE_SERVICE_DASHBOARD_H_

// The dashboard of `riffle serve`: a web page (service/dashboard/, embedded in the binary at
// build time) that polls GET /api/v1/dashboard once a second and draws, per model, what the
// MetricsHistory remembers: rolling accuracy / log loss / ROC AUC, throughput, latency
// percentiles, Kafka lag, the class distribution of recent predictions, drift events and the
// latest flagged predictions. The JSON it reads is documented in docs/DASHBOARD.md; its shape is
// stable (fields are only ever added; "version" changes if one has to change meaning).
//
// Everything here is read-only over the history: the numbers are the ones Prometheus would
// compute from /metrics (rate, histogram_quantile), derived by the helpers of
// service/metrics_history.h.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "service/metrics_history.h"

namespace riffle::service {

// A prediction that a routing rule sent to its topic (a "flagged" one, e.g. P(fraud) >= 0.9).
struct FlaggedPrediction {
  std::string model;
  std::string topic;             // the route's topic
  std::string key;               // the event id
  std::string record;            // the prediction record as published (JSON text)
  std::int64_t time_micros = 0;  // when it was routed (Unix time)
};

// The latest flagged predictions of every model, newest first per model. Called on an HTTP
// worker thread, so it must be thread-safe. The dashboard takes them through this function
// so that it does not depend on the Kafka pipeline.
using FlaggedPredictionsProvider = std::function<std::vector<FlaggedPrediction>()>;

struct DashboardOptions {
  // Window of the throughput rates (events/s, predictions/s): each point is the counter's
  // increase over the last rate_seconds divided by the time it spans (Prometheus's rate()).
  double rate_seconds = 5;
  // Window of the latency percentiles: each point is the percentile of the observations made
  // in the last latency_seconds (histogram_quantile over the increase of the buckets).
  double latency_seconds = 10;
  // Window of the class distribution of recent predictions.
  double class_seconds = 60;
  // Flagged predictions listed per model (the newest).
  std::size_t max_flagged = 20;

  // InvalidArgument naming the field unless every window is positive and finite.
  absl::Status Validate() const;
};

// One point of a chart: time (seconds since the Unix epoch) and value.
struct DashboardPoint {
  double time = 0;
  double value = 0;
  friend bool operator==(const DashboardPoint&, const DashboardPoint&) = default;
};
using DashboardSeries = std::vector<DashboardPoint>;

// The predictions of one class: over the class window, and since the process started.
struct DashboardClassCount {
  std::string name;
  double recent = 0;
  double total = 0;
};

// The learner of the model detected concept drift `count` times in the sample ending at `time`.
struct DashboardDriftEvent {
  double time = 0;
  double count = 0;
};

// What the page shows of one model (a model="..." label of riffle_model_info).
struct DashboardModel {
  std::string name;
  std::string learner;
  double last_seen = 0;  // the last sample that had the model
  // Time series by their documented keys ("accuracy", "events_per_second", ...: the table of
  // docs/DASHBOARD.md), with the points in (since, now]. A key is present when its metric is in the
  // history (even with no new point), absent when not (e.g. the Kafka series of a model without a
  // Kafka path).
  std::map<std::string, DashboardSeries> series;
  // Predictions by class, in the order the classes appear in the history; nullopt when the
  // history has no riffle_model_predicted_class_total.
  std::optional<std::vector<DashboardClassCount>> classes;
  // The drift counter's last value (nullopt: the metric is absent), and its increases in
  // (since, now].
  std::optional<double> drift_detections_total;
  std::vector<DashboardDriftEvent> drift_events;
  // The newest flagged predictions, newest first (at most max_flagged).
  std::vector<FlaggedPrediction> flagged;
};

// Everything one GET /api/v1/dashboard answers.
struct DashboardSnapshot {
  double now = 0;                // the history's last sample time (0: none yet); the next `since`
  double since = 0;              // as asked
  double retention_seconds = 0;  // the history's: the page keeps points this long
  DashboardOptions options;
  bool flagged_available = false;      // a provider of flagged predictions is set
  std::vector<DashboardModel> models;  // sorted by name
};

// Builds the snapshot from a MetricsHistory, keeping the points at times in (since, now].
// Derived series (rates, percentiles, sums over partitions) are computed at every sample time
// from the samples of the window ending there, with the helpers of metrics_history.h; a point
// where a derived value is undefined (the first sample of a rate, no observation in a latency
// window) is left out.
DashboardSnapshot BuildDashboardSnapshot(const MetricsHistory& history, double since_seconds,
                                         const DashboardOptions& options,
                                         const std::vector<FlaggedPrediction>* flagged);

// The snapshot as the JSON of docs/DASHBOARD.md. Numbers are written in the shortest form that
// reads back to the same double.
std::string DashboardJson(const DashboardSnapshot& snapshot);

// A file of the page (service/dashboard/), as embedded at build time.
struct DashboardAsset {
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};
// The asset named `name` ("index.html", "dashboard.js", ...), or nullopt.
std::optional<DashboardAsset> FindDashboardAsset(std::string_view name);

// What the HTTP endpoint serves the dashboard from: the history it reads and the provider of
// flagged predictions, which is set once the Kafka path exists (after the endpoint started).
//
// Thread-safety: every method may be called from any thread. The history is not owned and
// must outlive the dashboard.
class Dashboard {
 public:
  // `options` must be valid (Validate).
  Dashboard(const MetricsHistory* history, DashboardOptions options);

  // The provider of flagged predictions from now on (null: none).
  void SetFlaggedPredictions(FlaggedPredictionsProvider provider);

  // The body of GET /api/v1/dashboard?since=`since_seconds`.
  std::string Json(double since_seconds) const;

 private:
  const MetricsHistory* const history_;
  const DashboardOptions options_;
  mutable std::mutex mu_;
  FlaggedPredictionsProvider flagged_ ABSL_GUARDED_BY(mu_);
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_DASHBOARD_H_
