// The dashboard's data (BuildDashboardSnapshot, its JSON) on a MetricsHistory filled with known
// samples, `since` filtering, an empty history; and its routes over real HTTP: the page's
// files with their content types, the JSON API, redirects and errors.

#include "service/dashboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "service/dashboard_assets.h"
#include "service/http_endpoint.h"

// Last: httplib.h includes <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>  // NOLINT(build/include_order)

namespace riffle::service {

// Readable failure messages (found by argument-dependent lookup, so not in the anonymous
// namespace).
void PrintTo(const DashboardPoint& p, std::ostream* os) {
  *os << "[" << p.time << ", " << p.value << "]";
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The known traffic: sample k (k = 0..10) is taken at time 1000 + k, one a second, of
//   model "m": info (learner logreg); events_total 10k, predictions_total 4k and Kafka
//     prediction records 2k (10 events/s, 4 + 2 predictions/s); rolling accuracy 0.5 + k/100 (and a
//     cumulative one that must not be used), log loss 0.7 - k/100, ROC AUC 0.6; predict latency: 10
//     new observations a second, all in the bucket (1 ms, 10 ms]; Kafka lag 1k on partition 0 and
//     2k on partition 1 of topic "t"; predicted classes a: 3k, b: k; drift detections 0, then 1
//     from k = 4, 3 from k = 7.
//   model "n": info (learner hoeffding_tree) and events_total 5k only: no Kafka, no class or
//     drift metrics.
constexpr double kStart = 1000;
constexpr int kSamples = 11;

MetricFamilies Sample(int k) {
  const double x = k;
  MetricFamilies f;
  f.AddGauge("riffle_model_info", "info", {{"model", "m"}, {"learner", "logreg"}}, 1);
  f.AddGauge("riffle_model_info", "info", {{"model", "n"}, {"learner", "hoeffding_tree"}}, 1);
  f.AddCounter("riffle_model_events_total", "events", {{"model", "m"}}, 10 * x);
  f.AddCounter("riffle_model_events_total", "events", {{"model", "n"}}, 5 * x);
  f.AddCounter("riffle_model_predictions_total", "predictions", {{"model", "m"}}, 4 * x);
  f.AddCounter("riffle_kafka_predictions_total", "records", {{"model", "m"}}, 2 * x);
  f.AddGauge("riffle_model_accuracy", "accuracy", {{"model", "m"}, {"window", "cumulative"}}, 0.25);
  f.AddGauge("riffle_model_accuracy", "accuracy", {{"model", "m"}, {"window", "rolling"}},
             0.5 + x / 100);
  f.AddGauge("riffle_model_log_loss", "log loss", {{"model", "m"}, {"window", "rolling"}},
             0.7 - x / 100);
  f.AddGauge("riffle_model_roc_auc", "auc", {{"model", "m"}, {"window", "rolling"}}, 0.6);
  HistogramData h;
  h.bounds = {0.001, 0.01, 0.1};
  h.bucket_counts = {0, static_cast<std::uint64_t>(10 * k), 0, 0};
  f.AddHistogram("riffle_model_predict_latency_seconds", "latency", {{"model", "m"}}, h);
  f.AddGauge("riffle_kafka_consumer_lag_records", "lag",
             {{"model", "m"}, {"topic", "t"}, {"partition", "0"}}, x);
  f.AddGauge("riffle_kafka_consumer_lag_records", "lag",
             {{"model", "m"}, {"topic", "t"}, {"partition", "1"}}, 2 * x);
  f.AddCounter("riffle_model_predicted_class_total", "classes", {{"model", "m"}, {"class", "a"}},
               3 * x);
  f.AddCounter("riffle_model_predicted_class_total", "classes", {{"model", "m"}, {"class", "b"}},
               x);
  f.AddCounter("riffle_model_drift_detections_total", "drift", {{"model", "m"}},
               k < 4 ? 0 : (k < 7 ? 1 : 3));
  return f;
}

void Fill(MetricsHistory* history) {
  for (int k = 0; k < kSamples; ++k) history->Record(kStart + k, Sample(k));
}

// Points at times [from, to] (whole seconds), each with value(t).
template <typename F>
DashboardSeries Points(double from, double to, F value) {
  DashboardSeries out;
  for (double t = from; t <= to; t += 1) out.push_back({t, value(t)});
  return out;
}

std::vector<std::string> Keys(const DashboardModel& m) {
  std::vector<std::string> keys;
  for (const auto& [key, series] : m.series) keys.push_back(key);
  return keys;
}

TEST(DashboardTest, OptionsAreValidated) {
  EXPECT_TRUE(DashboardOptions().Validate().ok());
  DashboardOptions o;
  o.latency_seconds = 0;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("latency_seconds"));
  o = {};
  o.rate_seconds = NAN;
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("rate_seconds"));
}

TEST(DashboardTest, EmptyHistoryHasNoModels) {
  MetricsHistory history;
  const DashboardSnapshot snap = BuildDashboardSnapshot(history, 0, {}, nullptr);
  EXPECT_EQ(snap.now, 0);
  EXPECT_TRUE(snap.models.empty());
  EXPECT_EQ(DashboardJson(snap),
            R"({"version":1,"now":0,"since":0,"retention_seconds":600,)"
            R"("windows":{"rate_seconds":5,"latency_seconds":10,"class_seconds":60},)"
            R"("flagged_available":false,"models":[]})");
}

TEST(DashboardTest, SeriesOfKnownSamples) {
  MetricsHistory history;
  Fill(&history);
  DashboardOptions options;
  options.class_seconds = 5;
  const DashboardSnapshot snap = BuildDashboardSnapshot(history, 0, options, nullptr);
  EXPECT_EQ(snap.now, 1010);
  ASSERT_EQ(snap.models.size(), 2u);
  const DashboardModel& m = snap.models[0];
  const DashboardModel& n = snap.models[1];
  EXPECT_EQ(m.name, "m");
  EXPECT_EQ(m.learner, "logreg");
  EXPECT_EQ(m.last_seen, 1010);
  EXPECT_EQ(n.name, "n");
  EXPECT_EQ(n.learner, "hoeffding_tree");

  EXPECT_THAT(Keys(m),
              ElementsAre("accuracy", "events_per_second", "kafka_lag_records", "log_loss",
                          "predict_latency_p50_seconds", "predict_latency_p95_seconds",
                          "predict_latency_p99_seconds", "predictions_per_second", "roc_auc"));
  // Gauges as sampled, the rolling window only.
  EXPECT_EQ(m.series.at("accuracy"),
            Points(1000, 1010, [](double t) { return 0.5 + (t - kStart) / 100; }));
  EXPECT_EQ(m.series.at("log_loss"),
            Points(1000, 1010, [](double t) { return 0.7 - (t - kStart) / 100; }));
  EXPECT_EQ(m.series.at("roc_auc"), Points(1000, 1010, [](double) { return 0.6; }));
  // Rates need two samples, so they start at the second: 10 events a second over every window
  // (e.g. at 1010: (100 - 50) / 5 s = 10), and 4 gRPC + 2 Kafka predictions.
  EXPECT_EQ(m.series.at("events_per_second"), Points(1001, 1010, [](double) { return 10.0; }));
  EXPECT_EQ(m.series.at("predictions_per_second"), Points(1001, 1010, [](double) { return 6.0; }));
  // Lag: both partitions summed, 1k + 2k.
  EXPECT_EQ(m.series.at("kafka_lag_records"),
            Points(1000, 1010, [](double t) { return 3 * (t - kStart); }));
  // Latency: no observation at the first sample; then every window holds only observations in
  // (1 ms, 10 ms], so the q-quantile is interpolated there: 1 ms + 9 ms * q.
  for (const auto& [key, q] : {std::pair{"predict_latency_p50_seconds", 0.5},
                               std::pair{"predict_latency_p95_seconds", 0.95},
                               std::pair{"predict_latency_p99_seconds", 0.99}}) {
    const DashboardSeries& s = m.series.at(key);
    ASSERT_EQ(s.size(), 10u) << key;
    for (std::size_t i = 0; i < s.size(); ++i) {
      EXPECT_EQ(s[i].time, 1001 + static_cast<double>(i)) << key;
      EXPECT_DOUBLE_EQ(s[i].value, 0.001 + 0.009 * q) << key << " at " << s[i].time;
    }
  }
  // Classes over the last 5 s (1005..1010): a 30 - 15, b 10 - 5; totals at 1010.
  ASSERT_TRUE(m.classes.has_value());
  ASSERT_EQ(m.classes->size(), 2u);
  EXPECT_EQ((*m.classes)[0].name, "a");
  EXPECT_EQ((*m.classes)[0].recent, 15);
  EXPECT_EQ((*m.classes)[0].total, 30);
  EXPECT_EQ((*m.classes)[1].name, "b");
  EXPECT_EQ((*m.classes)[1].recent, 5);
  EXPECT_EQ((*m.classes)[1].total, 10);
  // Drift: +1 at 1004, +2 at 1007.
  ASSERT_TRUE(m.drift_detections_total.has_value());
  EXPECT_EQ(*m.drift_detections_total, 3);
  ASSERT_EQ(m.drift_events.size(), 2u);
  EXPECT_EQ(m.drift_events[0].time, 1004);
  EXPECT_EQ(m.drift_events[0].count, 1);
  EXPECT_EQ(m.drift_events[1].time, 1007);
  EXPECT_EQ(m.drift_events[1].count, 2);

  // Model n: only what it reports. No Kafka series, no class distribution, no drift metric.
  EXPECT_THAT(Keys(n), ElementsAre("events_per_second"));
  EXPECT_EQ(n.series.at("events_per_second"), Points(1001, 1010, [](double) { return 5.0; }));
  EXPECT_FALSE(n.classes.has_value());
  EXPECT_FALSE(n.drift_detections_total.has_value());
  EXPECT_TRUE(n.drift_events.empty());
}

TEST(DashboardTest, SinceKeepsOnlyLaterPoints) {
  MetricsHistory history;
  Fill(&history);
  const DashboardSnapshot snap = BuildDashboardSnapshot(history, 1006, {}, nullptr);
  EXPECT_EQ(snap.since, 1006);
  EXPECT_EQ(snap.now, 1010);
  ASSERT_EQ(snap.models.size(), 2u);
  const DashboardModel& m = snap.models[0];
  EXPECT_EQ(m.series.at("accuracy"),
            Points(1007, 1010, [](double t) { return 0.5 + (t - kStart) / 100; }));
  // The rates after `since` still use the samples before it (1002.. for the point at 1007).
  EXPECT_EQ(m.series.at("events_per_second"), Points(1007, 1010, [](double) { return 10.0; }));
  EXPECT_EQ(m.series.at("predict_latency_p50_seconds").size(), 4u);
  EXPECT_EQ(m.series.at("kafka_lag_records"),
            Points(1007, 1010, [](double t) { return 3 * (t - kStart); }));
  // Only the drift event after `since`; the total and the classes are current values.
  ASSERT_EQ(m.drift_events.size(), 1u);
  EXPECT_EQ(m.drift_events[0].time, 1007);
  EXPECT_EQ(m.drift_events[0].count, 2);
  EXPECT_EQ(*m.drift_detections_total, 3);
  ASSERT_TRUE(m.classes.has_value());
  EXPECT_EQ((*m.classes)[0].total, 30);

  // At `now` (and after it): every series still listed, with no new point.
  for (double since : {1010.0, 5000.0}) {
    const DashboardSnapshot later = BuildDashboardSnapshot(history, since, {}, nullptr);
    ASSERT_EQ(later.models.size(), 2u);
    EXPECT_EQ(Keys(later.models[0]), Keys(m));
    for (const auto& [key, series] : later.models[0].series) {
      EXPECT_TRUE(series.empty()) << key << " since " << since;
    }
    EXPECT_TRUE(later.models[0].drift_events.empty());
  }

  // Every point exactly once: the first answer plus the one since its `now` give the whole.
  history.Record(1011, Sample(11));
  const DashboardSnapshot next = BuildDashboardSnapshot(history, snap.now, {}, nullptr);
  EXPECT_EQ(next.now, 1011);
  EXPECT_EQ(next.models[0].series.at("accuracy"), Points(1011, 1011, [](double) { return 0.61; }));
  EXPECT_EQ(next.models[0].series.at("events_per_second"),
            Points(1011, 1011, [](double) { return 10.0; }));
}

// A short history (two samples) and flagged predictions, as JSON, byte for byte: the shape
// docs/DASHBOARD.md documents.
TEST(DashboardTest, JsonOfAShortHistory) {
  MetricsHistory history;
  for (int k = 0; k < 2; ++k) {
    MetricFamilies f;
    f.AddGauge("riffle_model_info", "info", {{"model", "m"}, {"learner", "logreg"}}, 1);
    f.AddCounter("riffle_model_events_total", "events", {{"model", "m"}}, 3 * k);
    f.AddGauge("riffle_model_accuracy", "accuracy", {{"model", "m"}, {"window", "rolling"}},
               0.5 + 0.25 * k);
    f.AddCounter("riffle_model_predicted_class_total", "classes",
                 {{"model", "m"}, {"class", "bad"}}, 2 * k);
    history.Record(100 + 0.5 * k, f);
  }
  std::vector<FlaggedPrediction> flagged = {
      {"m", "m.flagged", "e\"2", R"({"id":"e\"2","predicted":"bad"})", 100'250'000},
      {"other", "o.flagged", "x", "{}", 100'000'000},  // not a model of the history: left out
      {"m", "m.flagged", "e1", "{}", 100'000'000},
  };
  DashboardOptions options;
  options.max_flagged = 1;
  EXPECT_EQ(DashboardJson(BuildDashboardSnapshot(history, 0, options, &flagged)),
            R"({"version":1,"now":100.5,"since":0,"retention_seconds":600,)"
            R"("windows":{"rate_seconds":5,"latency_seconds":10,"class_seconds":60},)"
            R"("flagged_available":true,"models":[{"name":"m","learner":"logreg",)"
            R"("last_seen":100.5,"series":{"accuracy":[[100,0.5],[100.5,0.75]],)"
            R"("events_per_second":[[100.5,6]]},)"
            R"("class_distribution":[{"class":"bad","recent":2,"total":2}],)"
            R"("drift_detections_total":null,"drift_events":[],)"
            R"("flagged":[{"time":100.25,"topic":"m.flagged","key":"e\"2",)"
            R"("record":"{\"id\":\"e\\\"2\",\"predicted\":\"bad\"}"}]}]})");
}

// ---------------------------------------------------------------------------------------------
// Over HTTP

httplib::Result Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  return client.Get(path);
}

std::string SourceFile(const std::string& name) {
  // RIFFLE_TEST_DATA_DIR is <source root>/data.
  std::ifstream in(std::string(RIFFLE_TEST_DATA_DIR) + "/../service/dashboard/" + name,
                   std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DashboardHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Fill(&history_);
    HttpEndpointOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> e =
        HttpEndpoint::Start(options, &collector_, &dashboard_, nullptr, NullLogger());
    ASSERT_TRUE(e.ok()) << e.status();
    endpoint_ = *std::move(e);
  }

  int port() const { return endpoint_->port(); }

  MetricsHistory history_;
  MetricsCollector collector_{NullLogger()};
  Dashboard dashboard_{&history_, DashboardOptions()};
  std::unique_ptr<HttpEndpoint> endpoint_;
};

TEST_F(DashboardHttpTest, ServesThePageAndItsFilesWithTheirTypes) {
  ASSERT_EQ(DashboardFiles().size(), 3u);
  for (const auto& [path, file, type] :
       {std::tuple{"/dashboard/", "index.html", "text/html; charset=utf-8"},
        std::tuple{"/dashboard/index.html", "index.html", "text/html; charset=utf-8"},
        std::tuple{"/dashboard/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"},
        std::tuple{"/dashboard/dashboard.css", "dashboard.css", "text/css; charset=utf-8"}}) {
    httplib::Result r = Get(port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type"), type) << path;
    // Byte for byte the file in the source tree: the binary carries the current page.
    const std::string source = SourceFile(file);
    EXPECT_FALSE(source.empty()) << file;
    EXPECT_EQ(r->body, source) << path;
    EXPECT_THAT(r->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'self'"));
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  }
  EXPECT_THAT(Get(port(), "/dashboard/")->body, HasSubstr(R"(<script src="dashboard.js")"));

  for (const char* path : {"/", "/dashboard"}) {
    httplib::Result r = Get(port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 302) << path;
    EXPECT_EQ(r->get_header_value("Location"), "/dashboard/") << path;
  }
  for (const char* path : {"/dashboard/nope.js", "/dashboard/..", "/dashboard/a/b", "/api/v1/x"}) {
    httplib::Result r = Get(port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_THAT(r->body, HasSubstr("this endpoint serves /metrics, /healthz, /readyz, the "
                                   "dashboard at /dashboard/ and its data at /api/v1/dashboard"))
        << path;
  }
}

TEST_F(DashboardHttpTest, ApiAnswersTheJsonSinceT) {
  httplib::Result all = Get(port(), "/api/v1/dashboard");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->status, 200);
  EXPECT_EQ(all->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(all->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(all->body, dashboard_.Json(0));
  EXPECT_THAT(all->body, HasSubstr(R"("accuracy":[[1000,0.5],[1001,0.51],)"));

  httplib::Result later = Get(port(), "/api/v1/dashboard?since=1008.5");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, 200);
  EXPECT_EQ(later->body, dashboard_.Json(1008.5));
  EXPECT_THAT(later->body, HasSubstr(R"("since":1008.5,)"));
  EXPECT_THAT(later->body, HasSubstr(R"("accuracy":[[1009,0.59],[1010,0.6]])"));

  for (const char* since : {"abc", "-1", "nan", "inf", ""}) {
    httplib::Result bad = Get(port(), absl::StrFormat("/api/v1/dashboard?since=%s", since));
    ASSERT_TRUE(bad) << since;
    EXPECT_EQ(bad->status, 400) << since;
    EXPECT_EQ(bad->body, absl::StrFormat("since: expected seconds since the Unix epoch (a number "
                                         ">= 0), got \"%s\"\n",
                                         since));
  }
}

TEST_F(DashboardHttpTest, FlaggedPredictionsComeFromTheProvider) {
  EXPECT_THAT(dashboard_.Json(0), HasSubstr(R"("flagged_available":false)"));
  dashboard_.SetFlaggedPredictions([] {
    return std::vector<FlaggedPrediction>{
        {"m", "m.flagged", "e7", R"({"id":"e7"})", 1'009'000'000}};
  });
  httplib::Result r = Get(port(), "/api/v1/dashboard?since=1010");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->body, HasSubstr(R"("flagged_available":true)"));
  EXPECT_THAT(r->body, HasSubstr(R"("flagged":[{"time":1009,"topic":"m.flagged","key":"e7",)"
                                 R"("record":"{\"id\":\"e7\"}"}])"));
  dashboard_.SetFlaggedPredictions(nullptr);
  EXPECT_THAT(dashboard_.Json(0), HasSubstr(R"("flagged_available":false)"));
}

}  // namespace
}  // namespace riffle::service
