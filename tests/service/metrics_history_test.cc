#include "service/metrics_history.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace riffle::service {
namespace {

class CountingSource : public MetricsSource {
 public:
  void Collect(MetricFamilies* out) override {
    ++calls;
    out->AddCounter("riffle_test_total", "test", {{"model", "m"}}, static_cast<double>(calls));
    out->AddCounter("bad_counter", "no _total suffix", {}, 1);
  }
  int calls = 0;
};

class RecordingLogger : public Logger {
 public:
  void Log(LogLevel, std::string_view message) override { lines.emplace_back(message); }
  std::vector<std::string> lines;
};

TEST(MetricsCollectorTest, CollectsEverySourceAndLogsARefusedSampleOnce) {
  RecordingLogger logger;
  MetricsCollector collector(&logger);
  CountingSource a;
  collector.AddSource(&a);
  collector.AddSource(&a);  // no effect
  MetricFamilies first = collector.Collect();
  MetricFamilies second = collector.Collect();
  EXPECT_EQ(a.calls, 2);
  ASSERT_EQ(second.families().size(), 1u);
  EXPECT_EQ(second.families()[0].samples[0].value, 2);
  EXPECT_EQ(logger.lines.size(), 1u);
  collector.RemoveSource(&a);
  EXPECT_TRUE(collector.Collect().families().empty());
}

MetricFamilies Sample(double events, double accuracy, std::vector<std::uint64_t> buckets) {
  MetricFamilies f;
  f.AddCounter("riffle_model_events_total", "events", {{"model", "a"}}, events);
  f.AddCounter("riffle_model_events_total", "events", {{"model", "b"}}, events * 2);
  f.AddGauge("riffle_model_accuracy", "accuracy", {{"model", "a"}, {"window", "rolling"}},
             accuracy);
  f.AddGauge("riffle_model_accuracy", "accuracy", {{"model", "a"}, {"window", "cumulative"}}, 0.5);
  HistogramData h;
  h.bounds = {0.001, 0.01, 0.1};
  h.bucket_counts = std::move(buckets);
  f.AddHistogram("riffle_model_predict_latency_seconds", "latency", {{"model", "a"}}, h);
  return f;
}

TEST(MetricsHistoryTest, RecordsSeriesAndQueriesByLabels) {
  MetricsHistory history;
  history.Record(100, Sample(10, 0.9, {0, 0, 0, 0}));
  history.Record(101, Sample(30, 0.8, {0, 0, 0, 0}));
  history.Record(101, Sample(999, 0.1, {0, 0, 0, 0}));  // not after the last: ignored
  history.Record(102, Sample(60, 0.7, {0, 0, 0, 0}));

  std::vector<HistorySeries> events = history.Query({"riffle_model_events_total", {}});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].Label("model"), "a");
  EXPECT_EQ(events[0].values, (std::vector<double>{10, 30, 60}));
  EXPECT_EQ(events[1].values, (std::vector<double>{20, 60, 120}));
  EXPECT_EQ(events[0].times, (std::vector<double>{100, 101, 102}));
  EXPECT_EQ(events[0].type, MetricType::kCounter);

  std::vector<HistorySeries> rolling =
      history.Query({"riffle_model_accuracy", {{"window", "rolling"}}});
  ASSERT_EQ(rolling.size(), 1u);
  EXPECT_EQ(rolling[0].values, (std::vector<double>{0.9, 0.8, 0.7}));
  EXPECT_EQ(LastValue(rolling[0]), 0.7);

  // Only the points after `since`.
  std::vector<HistorySeries> recent = history.Query({"riffle_model_events_total", {{"model", "b"}}},
                                                    /*since_seconds=*/101);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].values, (std::vector<double>{120}));

  EXPECT_TRUE(history.Query({"riffle_model_accuracy", {{"model", "zzz"}}}).empty());
  EXPECT_TRUE(history.Query({"riffle_nothing", {}}).empty());
  EXPECT_EQ(history.Names(),
            (std::vector<std::string>{"riffle_model_accuracy", "riffle_model_events_total",
                                      "riffle_model_predict_latency_seconds"}));
  EXPECT_EQ(history.last_time(), 102);
}

TEST(MetricsHistoryTest, ForgetsPointsOlderThanTheRetention) {
  MetricsHistoryOptions options;
  options.retention_seconds = 10;
  MetricsHistory history(options);
  history.Record(100, Sample(1, 0.5, {0, 0, 0, 0}));
  MetricFamilies only_a;
  only_a.AddCounter("riffle_model_events_total", "events", {{"model", "a"}}, 5);
  history.Record(105, only_a);
  history.Record(111, only_a);
  std::vector<HistorySeries> events = history.Query({"riffle_model_events_total", {}});
  // Model b had its only point at 100, now expired: the series is gone.
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].times, (std::vector<double>{105, 111}));
  EXPECT_TRUE(history.Query({"riffle_model_accuracy", {}}).empty());
  // The index still finds the remaining series after the rebuild.
  history.Record(112, only_a);
  EXPECT_EQ(history.Query({"riffle_model_events_total", {}})[0].values.size(), 3u);
}

TEST(MetricsHistoryTest, BoundsTheNumberOfSeries) {
  MetricsHistoryOptions options;
  options.max_series = 2;
  MetricsHistory history(options);
  history.Record(1, Sample(1, 0.5, {0, 0, 0, 0}));
  EXPECT_EQ(history.Query({"riffle_model_events_total", {}}).size(), 2u);
  EXPECT_TRUE(history.Query({"riffle_model_accuracy", {}}).empty());
  EXPECT_EQ(history.dropped_series(), 3u);
}

TEST(MetricsHistoryTest, OptionsAreValidated) {
  EXPECT_TRUE(MetricsHistoryOptions{}.Validate().ok());
  MetricsHistoryOptions bad;
  bad.retention_seconds = 0;
  EXPECT_FALSE(bad.Validate().ok());
  bad = {};
  bad.max_series = 0;
  EXPECT_FALSE(bad.Validate().ok());
}

HistorySeries Counter(std::vector<double> times, std::vector<double> values) {
  HistorySeries s;
  s.name = "c_total";
  s.type = MetricType::kCounter;
  s.times = std::move(times);
  s.values = std::move(values);
  return s;
}

TEST(MetricsHistoryTest, CounterRateOverTheWindow) {
  HistorySeries s = Counter({0, 1, 2, 3, 4}, {0, 10, 20, 30, 50});
  EXPECT_DOUBLE_EQ(*CounterRate(s, 2), (50.0 - 20.0) / 2);
  EXPECT_DOUBLE_EQ(*CounterIncrease(s, 2), 30);
  EXPECT_DOUBLE_EQ(*CounterRate(s, 100), 50.0 / 4);
  // One point in the window is no rate.
  EXPECT_FALSE(CounterRate(s, 0.5).has_value());
  EXPECT_FALSE(CounterRate(Counter({1}, {5}), 10).has_value());
  EXPECT_FALSE(LastValue(Counter({}, {})).has_value());
}

TEST(MetricsHistoryTest, CounterResetCountsTheNewValueAsIncrease) {
  // 100 -> 120 (+20), restart -> 5 (+5), -> 15 (+10).
  HistorySeries s = Counter({0, 1, 2, 3}, {100, 120, 5, 15});
  EXPECT_DOUBLE_EQ(*CounterIncrease(s, 10), 35);
  EXPECT_DOUBLE_EQ(*CounterRate(s, 10), 35.0 / 3);
}

TEST(MetricsHistoryTest, HistogramQuantileOfTheObservationsInTheWindow) {
  MetricsHistory history;
  // Per-bucket (not cumulative) counts as sources report them: bounds 1 ms, 10 ms, 100 ms.
  history.Record(10, Sample(0, 0, {100, 0, 0, 0}));  // 100 fast observations before the window
  history.Record(20, Sample(0, 0, {100, 10, 0, 0}));
  history.Record(30, Sample(0, 0, {100, 10, 10, 0}));
  std::vector<HistorySeries> h = history.Query({"riffle_model_predict_latency_seconds", {}});
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].values, (std::vector<double>{100, 110, 120}));
  ASSERT_EQ(h[0].bucket_counts.size(), 3u);
  EXPECT_EQ(h[0].bucket_counts[2], (std::vector<std::uint64_t>{100, 110, 120, 120}));
  // Window [10, 30]: 10 observations in (1 ms, 10 ms] and 10 in (10 ms, 100 ms].
  // The median is the top of the first of those buckets; p75 halfway through the second.
  EXPECT_NEAR(*HistogramQuantile(h[0], 0.5, 20), 0.01, 1e-12);
  EXPECT_NEAR(*HistogramQuantile(h[0], 0.75, 20), 0.055, 1e-12);
  // Window [20, 30]: only the 10 slow ones.
  EXPECT_NEAR(*HistogramQuantile(h[0], 0.5, 10), 0.055, 1e-12);
  // Nothing observed in a window: no answer.
  history.Record(40, Sample(0, 0, {100, 10, 10, 0}));
  h = history.Query({"riffle_model_predict_latency_seconds", {}});
  EXPECT_FALSE(HistogramQuantile(h[0], 0.5, 10).has_value());
  EXPECT_FALSE(HistogramQuantile(h[0], 1.5, 10).has_value());
}

TEST(MetricsHistoryTest, HistogramQuantileInTheInfBucketIsTheLastBound) {
  MetricsHistory history;
  history.Record(1, Sample(0, 0, {0, 0, 0, 0}));
  history.Record(2, Sample(0, 0, {0, 0, 0, 4}));
  std::vector<HistorySeries> h = history.Query({"riffle_model_predict_latency_seconds", {}});
  EXPECT_DOUBLE_EQ(*HistogramQuantile(h[0], 0.99, 60), 0.1);
}

}  // namespace
}  // namespace riffle::service
