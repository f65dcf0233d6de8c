#ifndef RIFFLE_SERVICE_METRICS_HISTORY_H_
#define RIFFLE_SERVICE_METRICS_HISTORY_H_

// What `riffle serve` remembers of its own metrics: the MetricsCollector gathers every
// MetricsSource into one MetricFamilies (for a scrape of /metrics, and once a second for the
// history); MetricsHistory keeps the last minutes of those samples as time series, which the
// dashboard draws and the alert rules evaluate. Both read the same values Prometheus would.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "service/logger.h"
#include "service/prometheus.h"

namespace riffle::service {

// The metrics sources of one process, collected together. A sample a source got wrong
// (MetricFamilies::errors) is left out and logged once per distinct message as a warning.
//
// Thread-safety: every method may be called from any thread. Collect() calls the sources
// under the collector's mutex, so sources are never collected concurrently with each other,
// and RemoveSource waits for a collection in progress.
class MetricsCollector {
 public:
  // The logger is not owned and must outlive the collector.
  explicit MetricsCollector(Logger* logger) : logger_(logger) {}

  // Adds `source` to every collection from now on. It must stay valid until
  // RemoveSource(source) returns or the collector is destroyed. Adding it twice has no effect.
  void AddSource(MetricsSource* source);
  // Removes `source`, waiting for a collection that is using it.
  void RemoveSource(MetricsSource* source);

  // Every source's current values.
  MetricFamilies Collect();

 private:
  Logger* const logger_;
  std::mutex mu_;
  std::vector<MetricsSource*> sources_ ABSL_GUARDED_BY(mu_);
  // Source errors already logged (bounded), so a faulty source does not log every collection.
  std::set<std::string> reported_ ABSL_GUARDED_BY(mu_);
};

struct MetricsHistoryOptions {
  // How far back samples are kept, in seconds (> 0).
  double retention_seconds = 600;
  // At most this many distinct series (name + labels) are tracked; samples of further series
  // are dropped (and counted in dropped_series()), so a label that explodes cannot exhaust
  // memory. > 0.
  std::size_t max_series = 20000;

  absl::Status Validate() const;
};

// One time series of the history: a counter, a gauge or a histogram, identified by its name
// and labels (in the order the source wrote them).
struct HistorySeries {
  std::string name;
  MetricLabels labels;
  MetricType type = MetricType::kGauge;
  // Sample times (seconds since the Unix epoch, increasing) and values. For a histogram,
  // `values` holds its observation count (the _count); `bucket_counts[i]` its cumulative
  // counts at times[i], one per bound and a last one for +Inf (bounds as below).
  std::vector<double> times;
  std::vector<double> values;
  std::vector<double> bounds;  // histograms only: the finite `le` bounds
  std::vector<std::vector<std::uint64_t>> bucket_counts;

  // The value of `label`, or "" when the series has no such label.
  std::string_view Label(std::string_view label) const;
};

// Selects series: `name` exactly, and every label in `match` with exactly that value (labels
// not mentioned may have any value). An empty match selects every series of that name.
struct SeriesSelector {
  std::string name;
  MetricLabels match;
};

// Derived values of a series, over the samples at times in [now - window, now] (`now` = the
// series' last sample time). Each returns nullopt when the series has too few samples for an
// answer (a rate needs two; a quantile needs an observation in the window).
//
// The counter's increase per second between the first and the last sample of the window. A
// counter that went down (a restart, or a Restore to an older generation) is read as reset to
// 0 at that point, as Prometheus's rate() does.
std::optional<double> CounterRate(const HistorySeries& series, double window_seconds);
// The counter's increase over the window (as CounterRate, not divided by the time).
std::optional<double> CounterIncrease(const HistorySeries& series, double window_seconds);
// The q-quantile (0 <= q <= 1) of a histogram's observations in the window, interpolated
// linearly inside the bucket it falls in (as Prometheus's histogram_quantile; the +Inf bucket
// answers its lower bound).
std::optional<double> HistogramQuantile(const HistorySeries& series, double q,
                                        double window_seconds);
// The last value (a gauge's or a counter's), or nullopt for an empty series.
std::optional<double> LastValue(const HistorySeries& series);

// The recent past of every series the collector produced, sampled by Record().
//
// Memory: about 16 bytes per series per sample for counters and gauges (8 more per bucket for
// histograms): a process with 200 series sampled every second for 10 minutes holds ~2 MB.
//
// Thread-safety: every method may be called from any thread (one internal mutex; Query copies
// out what it returns).
class MetricsHistory {
 public:
  explicit MetricsHistory(MetricsHistoryOptions options = {});

  // Appends one sample of every series in `families` at `time_seconds`, and forgets samples
  // older than the retention. A time not after the last recorded one is ignored (a clock that
  // stepped back). A series absent from a sample keeps its old points until they expire; a
  // series with no point left is dropped.
  void Record(double time_seconds, const MetricFamilies& families);

  // Copies of the selected series, with only their points at times > since_seconds (every
  // point for since_seconds = 0), in the order the series first appeared.
  std::vector<HistorySeries> Query(const SeriesSelector& selector, double since_seconds = 0) const;

  // Names of the series it holds, sorted.
  std::vector<std::string> Names() const;
  // How far back samples are kept (the options').
  double retention_seconds() const { return options_.retention_seconds; }
  // The time of the last Record that was kept, or 0 before the first.
  double last_time() const;
  // Samples of series beyond max_series that were dropped.
  std::uint64_t dropped_series() const;

 private:
  const MetricsHistoryOptions options_;
  mutable std::mutex mu_;
  std::vector<HistorySeries> series_ ABSL_GUARDED_BY(mu_);
  // "name{l1=v1,...}" -> index into series_.
  std::map<std::string, std::size_t, std::less<>> index_ ABSL_GUARDED_BY(mu_);
  double last_time_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t dropped_series_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_METRICS_HISTORY_H_
