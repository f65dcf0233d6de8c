#ifndef RIFFLE_SERVICE_PROMETHEUS_H_
#define RIFFLE_SERVICE_PROMETHEUS_H_

// Metrics in the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): what `GET /metrics` of the
// HTTP endpoint answers. A scrape asks every MetricsSource to add its current values to one
// MetricFamilies, which WriteTextExposition() turns into text.

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riffle::service {

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricLabel {
  std::string name;
  std::string value;  // any UTF-8 text; the writer escapes it
};
using MetricLabels = std::vector<MetricLabel>;

// The observations of one histogram. Not cumulative: bucket_counts[i] counts the observations
// in (bounds[i-1], bounds[i]], and the last element those above the last bound. The writer
// accumulates them into `le` buckets, so `_count` always equals the `+Inf` bucket.
struct HistogramData {
  std::vector<double> bounds;                // finite, strictly increasing
  std::vector<std::uint64_t> bucket_counts;  // bounds.size() + 1 elements
  double sum = 0;                            // of every observation
};

struct MetricSample {
  MetricLabels labels;      // in the order written
  double value = 0;         // counters and gauges
  HistogramData histogram;  // histograms
};

struct MetricFamily {
  std::string name;  // as exposed: a counter's ends in "_total"
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<MetricSample> samples;
};

// The metrics of one scrape, grouped into families as the format requires (every sample of a
// family under its one # HELP / # TYPE header, families in the order they were first added).
//
// Adding checks what would make the exposition invalid and refuses that sample, recording a
// message naming the metric in errors(): a name outside [a-zA-Z_:][a-zA-Z0-9_:]*, a counter
// whose name does not end in "_total" or whose value is negative or NaN, a label name outside
// [a-zA-Z_][a-zA-Z0-9_]* or starting with "__" (reserved), the same label twice, "le" on a
// histogram, malformed histogram buckets, a name already used with another type, and a
// second sample with the same labels in one family. A family keeps the help of its first
// sample. Not thread-safe: one scrape fills one instance.
class MetricFamilies {
 public:
  void AddCounter(std::string_view name, std::string_view help, MetricLabels labels, double value);
  void AddGauge(std::string_view name, std::string_view help, MetricLabels labels, double value);
  void AddHistogram(std::string_view name, std::string_view help, MetricLabels labels,
                    HistogramData histogram);

  const std::vector<MetricFamily>& families() const { return families_; }
  // One message per refused sample, e.g. "riffle_x: counter names end in _total".
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void Add(std::string_view name, std::string_view help, MetricType type, MetricSample sample);

  std::vector<MetricFamily> families_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> families_ position
  // The label sets already present in each family (sorted by label name), to refuse a
  // duplicate sample.
  std::vector<std::set<std::vector<std::pair<std::string, std::string>>>> label_sets_;
  std::vector<std::string> errors_;
};

// The Content-Type of the text format.
inline constexpr char kTextExpositionContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The families as text exposition format 0.0.4: "# HELP name text", "# TYPE name type", then
// one line per sample (a histogram: `_bucket{...,le="b"}` cumulative for every bound and
// "+Inf", `_sum`, `_count`). Label values escape \, " and newline; help text escapes \ and
// newline. Integral values below 2^53 are written as integers, others in the shortest form
// that reads back to the same double; NaN and infinities as "NaN", "+Inf", "-Inf".
std::string WriteTextExposition(const MetricFamilies& families);

// A value as written in the exposition (see WriteTextExposition); also the `le` label text.
std::string FormatMetricValue(double value);

// Something that contributes metrics to a scrape: the served models, the process, the Kafka
// pipeline. Registered on the process's MetricsCollector (service/metrics_history.h), which
// calls Collect() for every scrape of /metrics and once a second for the metrics history, never
// concurrently with itself, on an HTTP worker thread or the server's main loop while the
// service keeps serving.
// Collect() must therefore be thread-safe with respect to the rest of the program, quick, and
// must not hold a lock the serving path needs for longer than a snapshot of its values takes.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  // Adds this source's current values. A refused sample (MetricFamilies::errors) is logged
  // once by the endpoint; the rest of the scrape is still served.
  virtual void Collect(MetricFamilies* out) = 0;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_PROMETHEUS_H_
