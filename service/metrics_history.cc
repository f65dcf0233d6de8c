#include "service/metrics_history.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

constexpr std::size_t kMaxReportedErrors = 1000;

// "name{l1=v1,l2=v2}" with the labels in the order written: the identity of a series. Label
// values may hold any character, so each is length-prefixed to keep keys unambiguous.
std::string SeriesKey(std::string_view name, const MetricLabels& labels) {
  std::string key(name);
  key += '{';
  for (const MetricLabel& l : labels) {
    absl::StrAppendFormat(&key, "%s=%d:%s,", l.name, l.value.size(), l.value);
  }
  key += '}';
  return key;
}

bool Matches(const HistorySeries& s, const SeriesSelector& selector) {
  if (s.name != selector.name) return false;
  for (const MetricLabel& m : selector.match) {
    const auto it = std::find_if(s.labels.begin(), s.labels.end(),
                                 [&](const MetricLabel& l) { return l.name == m.name; });
    if (it == s.labels.end() || it->value != m.value) return false;
  }
  return true;
}

// The index of the first sample at a time >= last time - window.
std::size_t WindowStart(const HistorySeries& s, double window_seconds) {
  const double from = s.times.back() - window_seconds;
  return static_cast<std::size_t>(std::lower_bound(s.times.begin(), s.times.end(), from) -
                                  s.times.begin());
}

}  // namespace

void MetricsCollector::AddSource(MetricsSource* source) {
  std::lock_guard<std::mutex> lock(mu_);
  if (std::find(sources_.begin(), sources_.end(), source) == sources_.end()) {
    sources_.push_back(source);
  }
}

void MetricsCollector::RemoveSource(MetricsSource* source) {
  std::lock_guard<std::mutex> lock(mu_);
  sources_.erase(std::remove(sources_.begin(), sources_.end(), source), sources_.end());
}

MetricFamilies MetricsCollector::Collect() {
  MetricFamilies families;
  std::lock_guard<std::mutex> lock(mu_);
  for (MetricsSource* source : sources_) source->Collect(&families);
  for (const std::string& error : families.errors()) {
    if (reported_.size() < kMaxReportedErrors && reported_.insert(error).second) {
      logger_->Warn(absl::StrFormat("metrics: sample left out: %s", error));
    }
  }
  return families;
}

absl::Status MetricsHistoryOptions::Validate() const {
  if (!(retention_seconds > 0) || !std::isfinite(retention_seconds)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "metrics history: retention_seconds must be a positive number, got %g", retention_seconds));
  }
  if (max_series == 0) {
    return absl::InvalidArgumentError("metrics history: max_series must be positive");
  }
  return absl::OkStatus();
}

std::string_view HistorySeries::Label(std::string_view label) const {
  for (const MetricLabel& l : labels) {
    if (l.name == label) return l.value;
  }
  return {};
}

std::optional<double> CounterIncrease(const HistorySeries& series, double window_seconds) {
  if (series.values.size() < 2) return std::nullopt;
  const std::size_t first = WindowStart(series, window_seconds);
  const std::size_t last = series.values.size() - 1;
  if (first >= last) return std::nullopt;
  double increase = 0;
  for (std::size_t i = first + 1; i <= last; ++i) {
    const double delta = series.values[i] - series.values[i - 1];
    // A counter that went down restarted from 0: all of its new value is increase.
    increase += delta >= 0 ? delta : series.values[i];
  }
  return increase;
}

std::optional<double> CounterRate(const HistorySeries& series, double window_seconds) {
  if (series.values.size() < 2) return std::nullopt;
  const std::size_t first = WindowStart(series, window_seconds);
  const std::size_t last = series.values.size() - 1;
  if (first >= last) return std::nullopt;
  const std::optional<double> increase = CounterIncrease(series, window_seconds);
  const double elapsed = series.times[last] - series.times[first];
  if (!increase.has_value() || !(elapsed > 0)) return std::nullopt;
  return *increase / elapsed;
}

std::optional<double> HistogramQuantile(const HistorySeries& series, double q,
                                        double window_seconds) {
  if (series.bucket_counts.empty() || q < 0 || q > 1 || std::isnan(q)) return std::nullopt;
  const std::size_t last = series.bucket_counts.size() - 1;
  const std::size_t first = WindowStart(series, window_seconds);
  const std::vector<std::uint64_t>& end = series.bucket_counts[last];
  // Observations in the window: the difference of the cumulative counts; a single sample (or a
  // reset, where counts went down) counts everything the last sample holds.
  std::vector<double> in_window(end.size(), 0);
  bool reset = first >= last;
  if (!reset) {
    const std::vector<std::uint64_t>& start = series.bucket_counts[first];
    for (std::size_t i = 0; i < end.size() && !reset; ++i) {
      if (i >= start.size() || end[i] < start[i]) reset = true;
    }
    if (!reset) {
      for (std::size_t i = 0; i < end.size(); ++i) {
        in_window[i] = static_cast<double>(end[i] - series.bucket_counts[first][i]);
      }
    }
  }
  if (reset) {
    for (std::size_t i = 0; i < end.size(); ++i) in_window[i] = static_cast<double>(end[i]);
  }
  const double total = in_window.back();
  if (!(total > 0)) return std::nullopt;
  const double rank = q * total;
  for (std::size_t i = 0; i < in_window.size(); ++i) {
    if (in_window[i] < rank && i + 1 < in_window.size()) continue;
    if (i >= series.bounds.size()) {
      // The +Inf bucket: its lower bound is the best answer there is.
      return series.bounds.empty() ? std::nullopt : std::optional<double>(series.bounds.back());
    }
    const double lower = i == 0 ? std::min(0.0, series.bounds[0]) : series.bounds[i - 1];
    const double below = i == 0 ? 0 : in_window[i - 1];
    const double in_bucket = in_window[i] - below;
    if (!(in_bucket > 0)) return series.bounds[i];
    return lower + (series.bounds[i] - lower) * (rank - below) / in_bucket;
  }
  return std::nullopt;
}

std::optional<double> LastValue(const HistorySeries& series) {
  if (series.values.empty()) return std::nullopt;
  return series.values.back();
}

MetricsHistory::MetricsHistory(MetricsHistoryOptions options) : options_(options) {}

void MetricsHistory::Record(double time_seconds, const MetricFamilies& families) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!(time_seconds > last_time_)) return;
  last_time_ = time_seconds;
  for (const MetricFamily& family : families.families()) {
    for (const MetricSample& sample : family.samples) {
      const std::string key = SeriesKey(family.name, sample.labels);
      auto it = index_.find(key);
      if (it == index_.end()) {
        if (series_.size() >= options_.max_series) {
          ++dropped_series_;
          continue;
        }
        HistorySeries s;
        s.name = family.name;
        s.labels = sample.labels;
        s.type = family.type;
        if (family.type == MetricType::kHistogram) s.bounds = sample.histogram.bounds;
        it = index_.emplace(key, series_.size()).first;
        series_.push_back(std::move(s));
      }
      HistorySeries& s = series_[it->second];
      s.times.push_back(time_seconds);
      if (family.type != MetricType::kHistogram) {
        s.values.push_back(sample.value);
        continue;
      }
      // Cumulative counts; bounds that changed shape restart the series' buckets.
      const HistogramData& h = sample.histogram;
      if (h.bounds != s.bounds) {
        s.bounds = h.bounds;
        s.bucket_counts.assign(s.bucket_counts.size(), {});
      }
      std::vector<std::uint64_t> cumulative(h.bucket_counts.size());
      std::uint64_t running = 0;
      for (std::size_t i = 0; i < h.bucket_counts.size(); ++i) {
        running += h.bucket_counts[i];
        cumulative[i] = running;
      }
      s.values.push_back(static_cast<double>(running));
      s.bucket_counts.push_back(std::move(cumulative));
    }
  }
  // Expire old points; drop series left empty and rebuild the index if any was.
  const double horizon = time_seconds - options_.retention_seconds;
  bool removed = false;
  for (HistorySeries& s : series_) {
    const std::size_t n = static_cast<std::size_t>(
        std::upper_bound(s.times.begin(), s.times.end(), horizon) - s.times.begin());
    if (n == 0) continue;
    s.times.erase(s.times.begin(), s.times.begin() + static_cast<std::ptrdiff_t>(n));
    s.values.erase(s.values.begin(), s.values.begin() + static_cast<std::ptrdiff_t>(n));
    if (!s.bucket_counts.empty()) {
      s.bucket_counts.erase(s.bucket_counts.begin(),
                            s.bucket_counts.begin() + static_cast<std::ptrdiff_t>(n));
    }
    removed = removed || s.times.empty();
  }
  if (removed) {
    series_.erase(std::remove_if(series_.begin(), series_.end(),
                                 [](const HistorySeries& s) { return s.times.empty(); }),
                  series_.end());
    index_.clear();
    for (std::size_t i = 0; i < series_.size(); ++i) {
      index_.emplace(SeriesKey(series_[i].name, series_[i].labels), i);
    }
  }
}

std::vector<HistorySeries> MetricsHistory::Query(const SeriesSelector& selector,
                                                 double since_seconds) const {
  std::vector<HistorySeries> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const HistorySeries& s : series_) {
    if (!Matches(s, selector)) continue;
    const std::size_t from = static_cast<std::size_t>(
        std::upper_bound(s.times.begin(), s.times.end(), since_seconds) - s.times.begin());
    HistorySeries copy;
    copy.name = s.name;
    copy.labels = s.labels;
    copy.type = s.type;
    copy.bounds = s.bounds;
    const auto offset = static_cast<std::ptrdiff_t>(from);
    copy.times.assign(s.times.begin() + offset, s.times.end());
    copy.values.assign(s.values.begin() + offset, s.values.end());
    if (!s.bucket_counts.empty()) {
      copy.bucket_counts.assign(s.bucket_counts.begin() + offset, s.bucket_counts.end());
    }
    out.push_back(std::move(copy));
  }
  return out;
}

std::vector<std::string> MetricsHistory::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> names;
  for (const HistorySeries& s : series_) names.insert(s.name);
  return {names.begin(), names.end()};
}

double MetricsHistory::last_time() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_time_;
}

std::uint64_t MetricsHistory::dropped_series() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_series_;
}

}  // namespace riffle::service
