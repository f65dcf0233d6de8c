#ifndef RIFFLE_SERVICE_METRICS_SOURCES_H_
#define RIFFLE_SERVICE_METRICS_SOURCES_H_

// The metrics sources of `riffle serve` itself: every served model, and the process. Other
// components (the Kafka pipeline) implement MetricsSource (service/prometheus.h) the same way.

#include <span>
#include <string>

#include "checkpoints/env.h"
#include "service/latency_histogram.h"
#include "service/model_registry.h"
#include "service/prometheus.h"

namespace riffle::service {

// The `le` bounds of the latency histograms, in seconds: 1 µs to 10 s in 1-2.5-5 steps.
std::span<const double> LatencyBucketBoundsSeconds();

// `h` as a Prometheus histogram with the given bounds (seconds). LatencyHistogram's own
// buckets are finer (8 per power of two) but not aligned with round bounds: each is counted
// under the first bound its upper edge does not exceed, so the count at `le` never includes an
// observation above le and may leave out ones at most 1/8 below it (the histogram's
// resolution). Values beyond its range (~68 s) are counted in +Inf only.
HistogramData ToPrometheusHistogram(const LatencyHistogram& h,
                                    std::span<const double> bounds_seconds);

// Every model of a registry, labelled model="<name>" (names are [a-zA-Z0-9_.-], so label
// values need no escaping in practice). The prequential metrics carry window="cumulative" or
// window="rolling" (last metrics_window scored examples), and appear once the population has
// a scored example; AUC, precision, recall and F1 only for binary models, once defined. Each model
// is read through ServedModel::Info() and Metrics() (its reader lock, briefly: predictions go on, a
// learn batch waits at most for the snapshot) and its lock-free latency histograms.
//
// Counters restart with the process where the model's state does not carry them (predictions,
// label cache, checkpoint counts); events and labeled/unlabeled come from the model's state
// and continue across restarts (a Restore to an older generation lowers them, which Prometheus
// reads as a counter reset).
class ModelMetricsSource : public MetricsSource {
 public:
  // Both must outlive the source; env is the clock of the checkpoint age.
  ModelMetricsSource(const ModelRegistry* registry, checkpoints::Env* env)
      : registry_(registry), env_(env) {}
  void Collect(MetricFamilies* out) override;

 private:
  const ModelRegistry* registry_;
  checkpoints::Env* env_;
};

// The standard process metrics of Prometheus client libraries, from Linux's /proc:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds. A file that cannot be read or
// parsed leaves its metrics out (e.g. not on Linux). `proc_root` is the seam for tests (a
// directory shaped like /proc with self/stat, self/limits, self/fd/ and stat); /proc is read
// directly, not through checkpoints::Env, whose ReadFile trusts fstat's size (0 in /proc).
class ProcessMetricsSource : public MetricsSource {
 public:
  explicit ProcessMetricsSource(std::string proc_root = "/proc")
      : proc_root_(std::move(proc_root)) {}
  void Collect(MetricFamilies* out) override;

 private:
  const std::string proc_root_;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_METRICS_SOURCES_H_
