#include "service/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace riffle::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(PrometheusTest, WritesHelpTypeAndOneLinePerSample) {
  MetricFamilies f;
  f.AddCounter("riffle_events_total", "Events seen.", {{"model", "a"}}, 12);
  f.AddGauge("riffle_models", "Models served.", {}, 2);
  f.AddCounter("riffle_events_total", "Events seen.", {{"model", "b"}}, 0);
  EXPECT_THAT(f.errors(), IsEmpty());
  // Samples of a family stay together under one header, even when added interleaved.
  EXPECT_EQ(WriteTextExposition(f),
            "# HELP riffle_events_total Events seen.\n"
            "# TYPE riffle_events_total counter\n"
            "riffle_events_total{model=\"a\"} 12\n"
            "riffle_events_total{model=\"b\"} 0\n"
            "# HELP riffle_models Models served.\n"
            "# TYPE riffle_models gauge\n"
            "riffle_models 2\n");
}

TEST(PrometheusTest, EscapesLabelValuesAndHelp) {
  MetricFamilies f;
  // Label values escape backslash, double quote and newline; help escapes backslash and
  // newline only (a quote stays as it is).
  f.AddGauge("g", "A \"quoted\" back\\slash\nsecond line", {{"path", "C:\\dir \"x\"\nend"}}, 1);
  EXPECT_EQ(WriteTextExposition(f),
            "# HELP g A \"quoted\" back\\\\slash\\nsecond line\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"x\\\"\\nend\"} 1\n");
}

TEST(PrometheusTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  MetricFamilies f;
  HistogramData h;
  h.bounds = {0.1, 1};
  h.bucket_counts = {2, 3, 1};  // 2 at most 0.1, 3 in (0.1, 1], 1 above 1
  h.sum = 4.5;
  f.AddHistogram("latency_seconds", "Latency.", {{"model", "m"}}, h);
  EXPECT_THAT(f.errors(), IsEmpty());
  // 2, 2 + 3 = 5, 5 + 1 = 6; _count equals the +Inf bucket; "le" comes after the labels.
  EXPECT_EQ(WriteTextExposition(f),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{model=\"m\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{model=\"m\",le=\"1\"} 5\n"
            "latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 6\n"
            "latency_seconds_sum{model=\"m\"} 4.5\n"
            "latency_seconds_count{model=\"m\"} 6\n");
}

TEST(PrometheusTest, HistogramWithoutLabelsOrBounds) {
  MetricFamilies f;
  HistogramData h;
  h.bucket_counts = {3};
  h.sum = 0.25;
  f.AddHistogram("h_seconds", "H.", {}, h);
  EXPECT_EQ(WriteTextExposition(f),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"+Inf\"} 3\n"
            "h_seconds_sum 0.25\n"
            "h_seconds_count 3\n");
}

TEST(PrometheusTest, RefusesWhatWouldMakeTheExpositionInvalid) {
  MetricFamilies f;
  f.AddCounter("riffle_events", "Counter without _total.", {}, 1);
  f.AddCounter("_total", "Nothing before _total.", {}, 1);
  f.AddCounter("riffle_negative_total", "Negative.", {}, -1);
  f.AddCounter("riffle_nan_total", "NaN.", {}, std::nan(""));
  f.AddGauge("9lives", "Starts with a digit.", {}, 1);
  f.AddGauge("riffle-dash", "Dash.", {}, 1);
  f.AddGauge("riffle_g", "Reserved label.", {{"__name", "x"}}, 1);
  f.AddGauge("riffle_g", "Label with a colon.", {{"a:b", "x"}}, 1);
  f.AddGauge("riffle_g", "Label twice.", {{"a", "x"}, {"a", "y"}}, 1);
  HistogramData h;
  h.bucket_counts = {1};
  f.AddHistogram("riffle_h", "le label.", {{"le", "1"}}, h);
  HistogramData unsorted;
  unsorted.bounds = {1, 0.5};
  unsorted.bucket_counts = {0, 0, 0};
  f.AddHistogram("riffle_h", "Bounds out of order.", {}, unsorted);
  HistogramData short_counts;
  short_counts.bounds = {1};
  short_counts.bucket_counts = {0};
  f.AddHistogram("riffle_h", "Counts missing.", {}, short_counts);
  HistogramData infinite;
  infinite.bounds = {std::numeric_limits<double>::infinity()};
  infinite.bucket_counts = {0, 0};
  f.AddHistogram("riffle_h", "+Inf given as a bound.", {}, infinite);
  // Valid ones, then clashes with them.
  f.AddGauge("riffle_ok", "OK.", {{"model", "a"}}, 1);
  f.AddGauge("riffle_ok", "OK.", {{"model", "a"}}, 2);  // same labels again
  f.AddHistogram("riffle_ok", "Other type.", {{"model", "b"}}, h);
  f.AddGauge("riffle_two", "Two labels.", {{"a", "1"}, {"b", "2"}}, 1);
  f.AddGauge("riffle_two", "Two labels.", {{"b", "2"}, {"a", "1"}}, 1);  // same set, reordered

  EXPECT_THAT(
      f.errors(),
      ElementsAre(
          "riffle_events: counter names end in _total", "_total: counter names end in _total",
          "riffle_negative_total: a counter cannot be -1",
          "riffle_nan_total: a counter cannot be nan", "9lives: not a valid metric name",
          "riffle-dash: not a valid metric name", "riffle_g: \"__name\" is not a valid label name",
          "riffle_g: \"a:b\" is not a valid label name", "riffle_g: label \"a\" given twice",
          "riffle_h: \"le\" is reserved for histogram buckets",
          "riffle_h: histogram bounds must be finite and strictly increasing",
          "riffle_h: 1 bounds need 2 bucket counts, got 1",
          "riffle_h: histogram bounds must be finite and strictly increasing",
          "riffle_ok{model=\"a\"}: sample given twice",
          "riffle_ok: already a gauge, not a histogram",
          "riffle_two{b=\"2\",a=\"1\"}: sample given twice"));
  // Only the valid samples are written.
  EXPECT_EQ(WriteTextExposition(f),
            "# HELP riffle_ok OK.\n"
            "# TYPE riffle_ok gauge\n"
            "riffle_ok{model=\"a\"} 1\n"
            "# HELP riffle_two Two labels.\n"
            "# TYPE riffle_two gauge\n"
            "riffle_two{a=\"1\",b=\"2\"} 1\n");
}

TEST(PrometheusTest, ColonsAreAllowedInMetricNames) {
  MetricFamilies f;
  f.AddGauge("job:riffle_rate:5m", "Recording-rule style name.", {}, 1);
  EXPECT_THAT(f.errors(), IsEmpty());
  EXPECT_THAT(WriteTextExposition(f), HasSubstr("job:riffle_rate:5m 1\n"));
}

TEST(PrometheusTest, FormatsValues) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(100000), "100000");  // not 1e+05
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(0.001), "0.001");
  EXPECT_EQ(FormatMetricValue(2.5e-6), "2.5e-06");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");  // beyond 2^53: shortest form
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  // The shortest form reads back to the same double.
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(FormatMetricValue(third)), third);
  const double loss = 0.6931471805599453;
  EXPECT_EQ(std::stod(FormatMetricValue(loss)), loss);
}

TEST(PrometheusTest, GaugesMayBeNaNAndNegative) {
  MetricFamilies f;
  f.AddGauge("riffle_g", "G.", {{"k", "nan"}}, std::nan(""));
  f.AddGauge("riffle_g", "G.", {{"k", "neg"}}, -1.5);
  EXPECT_THAT(f.errors(), IsEmpty());
  const std::string text = WriteTextExposition(f);
  EXPECT_THAT(text, HasSubstr("riffle_g{k=\"nan\"} NaN\n"));
  EXPECT_THAT(text, HasSubstr("riffle_g{k=\"neg\"} -1.5\n"));
}

TEST(PrometheusTest, EmptyFamiliesWriteNothing) {
  MetricFamilies f;
  EXPECT_EQ(WriteTextExposition(f), "");
  f.AddCounter("bad", "Refused.", {}, 1);
  EXPECT_EQ(WriteTextExposition(f), "");
  EXPECT_THAT(f.errors(), Not(IsEmpty()));
}

}  // namespace
}  // namespace riffle::service
