#include "service/metrics_sources.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "service/served_model.h"

namespace riffle::service {
namespace {

constexpr std::array<double, 22> kLatencyBounds = {
    1e-6, 2.5e-6, 5e-6,  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1,      2.5,  5,    10};

void AddPopulation(const char* window, const MetricValues& v, const MetricLabels& model,
                   MetricFamilies* out) {
  MetricLabels labels = model;
  labels.push_back({"window", window});
  out->AddGauge("riffle_model_scored_examples",
                "Examples scored (test-then-train) in the population: every one for "
                "window=cumulative, the last metrics_window for window=rolling.",
                labels, static_cast<double>(v.count));
  // Nothing scored yet: no value rather than a 0 that reads as "accuracy fell to 0".
  if (v.count == 0) return;
  out->AddGauge("riffle_model_accuracy", "Prequential accuracy.", labels, v.accuracy);
  out->AddGauge("riffle_model_log_loss", "Prequential log loss (natural log).", labels, v.log_loss);
  out->AddGauge("riffle_model_macro_f1", "Prequential macro-averaged F1.", labels, v.macro_f1);
  if (v.roc_auc) {
    out->AddGauge("riffle_model_roc_auc",
                  "Prequential ROC AUC (binary models, once both classes were scored).", labels,
                  *v.roc_auc);
  }
  if (v.precision) {
    out->AddGauge("riffle_model_precision",
                  "Prequential precision of the positive class (binary models).", labels,
                  *v.precision);
  }
  if (v.recall) {
    out->AddGauge("riffle_model_recall",
                  "Prequential recall of the positive class (binary models).", labels, *v.recall);
  }
  if (v.f1) {
    out->AddGauge("riffle_model_f1", "Prequential F1 of the positive class (binary models).",
                  labels, *v.f1);
  }
}

void CollectModel(const ServedModel& model, std::int64_t now_micros, MetricFamilies* out) {
  const ModelInfo info = model.Info();
  const ModelMetricsReport m = model.Metrics();
  const MetricLabels labels = {{"model", info.name}};
  auto counter = [&](const char* name, const char* help, std::uint64_t value) {
    out->AddCounter(name, help, labels, static_cast<double>(value));
  };
  auto gauge = [&](const char* name, const char* help, double value) {
    out->AddGauge(name, help, labels, value);
  };

  out->AddGauge("riffle_model_info", "Always 1; the model's learner as a label.",
                {{"model", info.name}, {"learner", info.definition.learner}}, 1);
  counter("riffle_model_events_total",
          "Events the model has seen: instances predicted and examples learned (kept in its "
          "checkpoints).",
          m.events);
  counter("riffle_model_labeled_events_total", "Labeled events scored and learned.", m.labeled);
  counter("riffle_model_unlabeled_events_total", "Events only predicted.", m.unlabeled);
  counter("riffle_model_predictions_total", "Instances predicted by this process.",
          model.predictions());
  // The class names come from Info(); a class predicted before a Restore to an older state
  // that does not know it is left out.
  const std::vector<std::uint64_t> by_class = model.predicted_class_counts();
  for (std::size_t k = 0; k < by_class.size() && k < info.classes.size(); ++k) {
    out->AddCounter("riffle_model_predicted_class_total",
                    "Predictions by predicted class (gRPC Predict and the Kafka path), by this "
                    "process.",
                    {{"model", info.name}, {"class", info.classes[k]}},
                    static_cast<double>(by_class[k]));
  }
  counter("riffle_model_drift_detections_total",
          "Concept drifts the learner detected and reacted to (Hoeffding adaptive tree: "
          "alternate subtrees started); kept in its checkpoints.",
          info.drift_detections);
  gauge("riffle_model_classes", "Classes the model knows.",
        static_cast<double>(info.classes.size()));
  gauge("riffle_model_metrics_window", "Size of the rolling window of the prequential metrics.",
        m.window);
  AddPopulation("cumulative", m.cumulative, labels, out);
  AddPopulation("rolling", m.rolling, labels, out);

  counter("riffle_model_label_cache_hits_total",
          "Learns by id whose features were found in the label cache.", m.label_cache.hits);
  counter("riffle_model_label_cache_misses_total",
          "Learns by id whose id was not (or no longer) cached.", m.label_cache.misses);
  counter("riffle_model_label_cache_evictions_total",
          "Label cache entries dropped for capacity or age.", m.label_cache.evictions);
  gauge("riffle_model_label_cache_entries", "Predictions cached for a later learn by id.",
        static_cast<double>(m.label_cache.entries));
  gauge("riffle_model_label_cache_bytes", "Approximate size of the label cache.",
        static_cast<double>(m.label_cache.bytes));

  if (m.aggregates.has_value()) {
    gauge("riffle_model_aggregate_keys", "Keys the windowed aggregates track now.",
          static_cast<double>(m.aggregates->keys));
    counter("riffle_model_aggregate_evicted_keys_total",
            "Keys forgotten by the windowed aggregates' key cap (least recently seen first).",
            m.aggregates->evicted_keys);
    counter("riffle_model_aggregate_expired_keys_total",
            "Keys forgotten because their newest event left the longest window.",
            m.aggregates->expired_keys);
    counter("riffle_model_aggregate_late_events_total",
            "Events older than their key's newest event by more than the allowed lateness: "
            "given no aggregates and left out of them.",
            m.aggregates->late_events);
  }

  const std::span<const double> bounds = LatencyBucketBoundsSeconds();
  out->AddHistogram("riffle_model_predict_latency_seconds",
                    "Time to predict one Predict call (a batch), lock wait included.", labels,
                    ToPrometheusHistogram(model.predict_latency(), bounds));
  out->AddHistogram("riffle_model_learn_latency_seconds",
                    "Time to learn one Learn call (a batch), lock wait included.", labels,
                    ToPrometheusHistogram(model.learn_latency(), bounds));

  gauge("riffle_model_memory_bytes",
        "Approximate memory of the model: learner, pipeline, metrics, label cache and windowed "
        "aggregates.",
        static_cast<double>(info.memory_bytes));
  gauge("riffle_model_version",
        "Version of the model under its name (a model re-created under a deleted one's name "
        "gets the next).",
        static_cast<double>(info.version));
  gauge("riffle_model_checkpoint_generation", "Newest checkpoint generation written.",
        static_cast<double>(info.generation));
  if (info.last_checkpoint_micros > 0) {
    gauge("riffle_model_last_checkpoint_timestamp_seconds",
          "When this process last wrote a checkpoint of the model (Unix time).",
          static_cast<double>(info.last_checkpoint_micros) / 1e6);
    gauge("riffle_model_seconds_since_last_checkpoint",
          "Seconds since this process last wrote a checkpoint of the model.",
          static_cast<double>(now_micros - info.last_checkpoint_micros) / 1e6);
  }
  if (const std::optional<checkpoints::Checkpointer::Stats> stats = model.checkpoint_stats()) {
    counter("riffle_model_checkpoints_written_total",
            "Checkpoints of the model written by this process.", stats->written);
    counter("riffle_model_checkpoint_failures_total",
            "Checkpoints of the model that failed to be written (disk full, I/O error).",
            stats->failed);
    if (stats->written > 0) {
      gauge("riffle_model_last_checkpoint_size_bytes", "Size of the last checkpoint file.",
            static_cast<double>(stats->last_bytes));
      gauge("riffle_model_last_checkpoint_duration_seconds",
            "Time to serialize and write the last checkpoint.", stats->last_seconds);
    }
  }
}

// The whole of a small /proc file; nullopt if unreadable. (Its size cannot be known in
// advance: /proc files report 0.)
std::optional<std::string> ReadProcFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

// The words of `text` separated by spaces, tabs or newlines.
std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (true) {
    i = text.find_first_not_of(" \t\n", i);
    if (i == std::string_view::npos) break;
    const std::size_t end = std::min(text.find_first_of(" \t\n", i), text.size());
    words.push_back(text.substr(i, end - i));
    i = end;
  }
  return words;
}

// The lines of `text`.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    lines.push_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return lines;
}

bool ParseNumber(std::string_view text, double* out) {
  const std::from_chars_result r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace

std::span<const double> LatencyBucketBoundsSeconds() { return kLatencyBounds; }

HistogramData ToPrometheusHistogram(const LatencyHistogram& h,
                                    std::span<const double> bounds_seconds) {
  HistogramData out;
  out.bounds.assign(bounds_seconds.begin(), bounds_seconds.end());
  out.bucket_counts.assign(bounds_seconds.size() + 1, 0);
  std::vector<std::uint64_t> bounds_nanos;
  bounds_nanos.reserve(bounds_seconds.size());
  for (double b : bounds_seconds) bounds_nanos.push_back(std::llround(b * 1e9));
  std::size_t j = 0;  // the first bound >= the current bucket's upper edge
  for (int b = 0; b < LatencyHistogram::kBuckets; ++b) {
    const std::uint64_t count = h.BucketCount(b);
    // The last bucket also holds everything beyond the range: its edge bounds nothing.
    const bool unbounded = b == LatencyHistogram::kBuckets - 1;
    const std::uint64_t upper = LatencyHistogram::UpperBound(b);
    while (j < bounds_nanos.size() && bounds_nanos[j] < upper) ++j;
    out.bucket_counts[unbounded ? bounds_nanos.size() : j] += count;
  }
  out.sum = static_cast<double>(h.sum_nanos()) / 1e9;
  return out;
}

void ModelMetricsSource::Collect(MetricFamilies* out) {
  const std::vector<std::shared_ptr<ServedModel>> models = registry_->List();
  out->AddGauge("riffle_models", "Models served.", {}, static_cast<double>(models.size()));
  const std::int64_t now = env_->NowMicros();
  for (const std::shared_ptr<ServedModel>& model : models) CollectModel(*model, now, out);
}

void ProcessMetricsSource::Collect(MetricFamilies* out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

  // /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'. After it, field 3 (state) is fields[0]: utime (14)
  // and stime (15) in clock ticks, starttime (22) in ticks since boot, vsize (23) in bytes,
  // rss (24) in pages (proc(5)).
  if (std::optional<std::string> stat = ReadProcFile(proc_root_ + "/self/stat")) {
    const std::size_t paren = stat->rfind(')');
    std::vector<std::string_view> fields;
    const std::string_view text = *stat;
    if (paren != std::string::npos) fields = Words(text.substr(paren + 1));
    double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (fields.size() > 21 && ParseNumber(fields[11], &utime) && ParseNumber(fields[12], &stime) &&
        ParseNumber(fields[19], &start) && ParseNumber(fields[20], &vsize) &&
        ParseNumber(fields[21], &rss)) {
      out->AddCounter("process_cpu_seconds_total",
                      "Total user and system CPU time spent in seconds.", {},
                      (utime + stime) / ticks);
      out->AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}, vsize);
      out->AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                    rss * page);
      // Boot time (Unix seconds) is the "btime" line of /proc/stat.
      if (std::optional<std::string> system = ReadProcFile(proc_root_ + "/stat")) {
        for (std::string_view line : Lines(*system)) {
          const std::vector<std::string_view> words = Words(line);
          double btime = 0;
          if (words.size() == 2 && words[0] == "btime" && ParseNumber(words[1], &btime)) {
            out->AddGauge("process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.", {},
                          btime + start / ticks);
          }
        }
      }
    }
  }

  std::error_code error;
  std::filesystem::directory_iterator fds(proc_root_ + "/self/fd", error);
  if (!error) {
    std::size_t open = 0;
    for (; fds != std::filesystem::directory_iterator(); fds.increment(error)) {
      if (error) break;
      ++open;
    }
    if (!error) {
      out->AddGauge("process_open_fds", "Number of open file descriptors.", {},
                    static_cast<double>(open));
    }
  }

  // /proc/self/limits: "Max open files            1024                 1048576              files"
  if (std::optional<std::string> limits = ReadProcFile(proc_root_ + "/self/limits")) {
    constexpr std::string_view kPrefix = "Max open files";
    for (std::string_view line : Lines(*limits)) {
      if (line.substr(0, kPrefix.size()) != kPrefix) continue;
      const std::vector<std::string_view> words = Words(line.substr(kPrefix.size()));
      double soft = 0;
      if (!words.empty() && ParseNumber(words[0], &soft)) {  // not "unlimited"
        out->AddGauge("process_max_fds", "Maximum number of open file descriptors.", {}, soft);
      }
    }
  }
}

}  // namespace riffle::service
