// Alert rules on a metrics history with a fake clock and a fake webhook sender (no sockets):
// validation messages, the JSON body, firing and resolved transitions per (rule, model), rate
// limits, and the notifier's retries, backoff, Retry-After, full queue and bounded shutdown.
// tests/service/alerts_http_test.cc posts to a real local receiver.

#include "service/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::FakeClockEnv;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records every body and answers from a script (then 200). Optionally holds each Post until
// released, to fill the queue behind it.
class FakeSender : public WebhookSender {
 public:
  absl::StatusOr<WebhookResponse> Post(const std::string& body) override {
    std::unique_lock<std::mutex> lock(mu_);
    bodies_.push_back(body);
    cv_.notify_all();
    cv_.wait(lock, [this] { return !hold_; });
    if (throw_) throw std::runtime_error("boom");
    if (script_.empty()) return WebhookResponse{200, std::nullopt};
    absl::StatusOr<WebhookResponse> r = script_.front();
    script_.pop_front();
    return r;
  }

  void Script(std::vector<absl::StatusOr<WebhookResponse>> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.assign(answers.begin(), answers.end());
  }
  // Every answer from now on is this one.
  void AlwaysFail(absl::StatusOr<WebhookResponse> answer) {
    Script(std::vector<absl::StatusOr<WebhookResponse>>(1000, answer));
  }
  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  void Throw() {
    std::lock_guard<std::mutex> lock(mu_);
    throw_ = true;
  }
  void WaitForPosts(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return bodies_.size() >= n; });
  }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::deque<absl::StatusOr<WebhookResponse>> script_;
  bool hold_ = false;
  bool throw_ = false;
};

WebhookResponse Http(int status, std::optional<double> retry_after = std::nullopt) {
  return WebhookResponse{status, retry_after};
}

AlertOptions Options(std::vector<AlertRule> rules) {
  AlertOptions o;
  o.webhook = "http://127.0.0.1:9/hook";
  o.evaluate_every_seconds = 0;
  o.min_interval_seconds = 0;
  o.backoff_seconds = 0.001;
  o.backoff_max_seconds = 0.01;
  o.flush_seconds = 10;
  o.rules = std::move(rules);
  return o;
}

AlertRule AccuracyBelow(double threshold, std::string name = "accuracy-drop") {
  AlertRule r;
  r.name = std::move(name);
  r.kind = AlertKind::kMetric;
  r.metric = "accuracy";
  r.below = threshold;
  return r;
}

// The rolling accuracy of each model (and a cumulative one that rules on "rolling" ignore).
MetricFamilies Accuracy(const std::map<std::string, double>& rolling) {
  MetricFamilies f;
  for (const auto& [model, value] : rolling) {
    f.AddGauge("riffle_model_accuracy", "", {{"model", model}, {"window", "rolling"}}, value);
    f.AddGauge("riffle_model_accuracy", "", {{"model", model}, {"window", "cumulative"}}, 0.01);
  }
  return f;
}

// A manager over a fake clock and a fake sender; Step() moves time one second, records a
// sample and evaluates, as RunServer's tick loop does.
class Harness {
 public:
  explicit Harness(AlertOptions options) {
    auto sender = std::make_unique<FakeSender>();
    sender_ = sender.get();
    absl::StatusOr<std::unique_ptr<AlertManager>> m =
        AlertManager::Create(std::move(options), &env_, NullLogger(), std::move(sender));
    EXPECT_TRUE(m.ok()) << m.status();
    manager_ = *std::move(m);
  }

  void Step(const MetricFamilies& sample, double seconds = 1) {
    env_.Advance(static_cast<std::int64_t>(seconds * 1e6));
    history_.Record(Now(), sample);
    manager_->Evaluate(history_);
  }
  double Now() { return static_cast<double>(env_.NowMicros()) / 1e6; }
  // Stops the manager (delivering what is queued) and returns every body posted.
  std::vector<std::string> Delivered() {
    manager_->Stop();
    return sender_->bodies();
  }
  // The firing alerts, as "rule/model".
  std::vector<std::string> Firing() {
    std::vector<std::string> out;
    for (const AlertStatus& s : manager_->Alerts()) {
      if (s.firing) out.push_back(s.rule + "/" + s.model);
    }
    return out;
  }
  // riffle_alerts_firing{rule, model} values, keyed "rule/model".
  std::map<std::string, double> FiringGauges() {
    MetricFamilies f;
    manager_->Collect(&f);
    EXPECT_THAT(f.errors(), IsEmpty());
    std::map<std::string, double> out;
    for (const MetricFamily& family : f.families()) {
      if (family.name != "riffle_alerts_firing") continue;
      for (const MetricSample& s : family.samples) {
        out[s.labels[0].value + "/" + s.labels[1].value] = s.value;
      }
    }
    return out;
  }

  AlertManager& manager() { return *manager_; }
  FakeSender& sender() { return *sender_; }

 private:
  FakeClockEnv env_;
  MetricsHistory history_;
  FakeSender* sender_ = nullptr;
  std::unique_ptr<AlertManager> manager_;
};

std::string RuleError(const AlertRule& rule) { return std::string(rule.Validate().message()); }

TEST(AlertRuleTest, ValidationNamesTheKey) {
  EXPECT_TRUE(AccuracyBelow(0.8).Validate().ok());
  struct Case {
    std::function<void(AlertRule*)> change;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](AlertRule* r) { r->name = ""; }, "name: must be 1 to 128 characters"},
      {[](AlertRule* r) { r->name = "a b"; }, "name: \"a b\": only [a-zA-Z0-9_.-]"},
      {[](AlertRule* r) { r->model = "x/y"; }, "model: \"x/y\""},
      {[](AlertRule* r) { r->metric = ""; }, "metric: required for kind metric: accuracy,"},
      {[](AlertRule* r) { r->metric = "9lives"; }, "metric: \"9lives\" is not a metric name"},
      {[](AlertRule* r) { r->window = "weekly"; },
       "window: \"weekly\" is not rolling or cumulative"},
      {[](AlertRule* r) { r->function = "rate"; }, "function: not for the model metric accuracy"},
      {[](AlertRule* r) { r->quantile = 0.5; }, "quantile: not for the model metric accuracy"},
      {[](AlertRule* r) { r->below.reset(); }, "above: required (or below): the threshold"},
      {[](AlertRule* r) { r->above = 0.9; }, "below: give above or below, not both"},
      {[](AlertRule* r) { r->for_seconds = -1; }, "for_seconds: -1 is outside [0, 86400]"},
      {[](AlertRule* r) { r->window_seconds = 0; }, "window_seconds: 0 is outside (0, 3600]"},
      {[](AlertRule* r) {
         r->metric = "riffle_kafka_dead_letters_total";
         r->window = "rolling";
       },
       "window: only for the model metrics"},
      {[](AlertRule* r) {
         r->metric = "riffle_x_total";
         r->function = "median";
       },
       "function: \"median\" is not last, rate, increase or quantile"},
      {[](AlertRule* r) {
         r->metric = "riffle_x_total";
         r->labels["model"] = "m";
       },
       "labels.model: use the rule's model key"},
      {[](AlertRule* r) {
         r->metric = "riffle_x_seconds";
         r->quantile = 1.5;
       },
       "quantile: 1.5 is outside [0, 1]"},
      {[](AlertRule* r) {
         r->kind = AlertKind::kLag;
         r->metric.clear();
       },
       "below: not for kind lag (use above)"},
      {[](AlertRule* r) {
         r->kind = AlertKind::kLag;
         r->metric.clear();
         r->below.reset();
       },
       "above: required for kind lag"},
      {[](AlertRule* r) { r->kind = AlertKind::kDrift; },
       "metric: only for kind metric, not drift"},
      {[](AlertRule* r) {
         r->kind = AlertKind::kDrift;
         r->metric.clear();
         r->below.reset();
         r->for_seconds = 10;
       },
       "for_seconds: not for kind drift"},
      {[](AlertRule* r) {
         r->kind = AlertKind::kDeadLetters;
         r->metric.clear();
         r->below.reset();
         r->above = -1;
       },
       "above: -1 is outside [0, 1e+18]"},
  };
  for (const Case& c : cases) {
    AlertRule r = AccuracyBelow(0.8);
    c.change(&r);
    EXPECT_THAT(RuleError(r), HasSubstr(c.expected)) << c.expected;
  }
  AlertRule drift;
  drift.name = "drift";
  drift.kind = AlertKind::kDrift;
  EXPECT_TRUE(drift.Validate().ok()) << drift.Validate();  // `above` defaults to 0
  EXPECT_EQ(drift.threshold(), 0);
  EXPECT_TRUE(drift.fires_above());
}

TEST(AlertOptionsTest, ValidationNamesTheKey) {
  EXPECT_TRUE(Options({AccuracyBelow(0.8)}).Validate().ok());
  auto error = [](std::function<void(AlertOptions*)> change) {
    AlertOptions o = Options({AccuracyBelow(0.8)});
    change(&o);
    return std::string(o.Validate().message());
  };
  EXPECT_THAT(error([](AlertOptions* o) { o->webhook.clear(); }), HasSubstr("webhook: required"));
  EXPECT_THAT(error([](AlertOptions* o) { o->webhook = "ftp://x/y"; }),
              HasSubstr("webhook: expected a URL starting with http:// or https://"));
  EXPECT_THAT(error([](AlertOptions* o) { o->timeout_seconds = 0; }),
              HasSubstr("timeout_seconds: 0 is outside (0, 300]"));
  EXPECT_THAT(error([](AlertOptions* o) { o->max_attempts = 0; }),
              HasSubstr("max_attempts: 0 is outside [1, 100]"));
  EXPECT_THAT(error([](AlertOptions* o) { o->backoff_max_seconds = 0.0001; }),
              HasSubstr("backoff_max_seconds: 0.0001 is below backoff_seconds (0.001)"));
  EXPECT_THAT(error([](AlertOptions* o) { o->max_per_minute = 0; }),
              HasSubstr("max_per_minute: 0 is outside [1, 100000]"));
  EXPECT_THAT(error([](AlertOptions* o) { o->queue_size = 0; }),
              HasSubstr("queue_size: 0 is outside [1, 100000]"));
  EXPECT_THAT(error([](AlertOptions* o) { o->rules.clear(); }),
              HasSubstr("rules: at least one rule is needed"));
  EXPECT_THAT(error([](AlertOptions* o) { o->rules.push_back(AccuracyBelow(0.5)); }),
              HasSubstr("rules[1].name: 'accuracy-drop' is used by an earlier rule"));
  EXPECT_THAT(error([](AlertOptions* o) { o->rules[0].below.reset(); }),
              HasSubstr("rules[0].above: required"));
}

TEST(WebhookUrlTest, ParsesTheParts) {
  absl::StatusOr<WebhookUrl> u = ParseWebhookUrl("https://hooks.slack.com/services/T0/B0/XYZ");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "hooks.slack.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/services/T0/B0/XYZ");
  EXPECT_EQ(u->Origin(), "https://hooks.slack.com:443");  // what logs show: not the secret path

  u = ParseWebhookUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/");
  u = ParseWebhookUrl("http://[::1]:9000/a?b=c#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "[::1]");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->path, "/a?b=c");
  u = ParseWebhookUrl("http://example.com?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/?x=1");

  for (const auto& [url, error] : std::vector<std::pair<std::string, std::string>>{
           {"hooks.slack.com/x", "starting with http:// or https://"},
           {"http://", "no host"},
           {"http://:80/x", "no host"},
           {"http://user:pw@host/x", "user information"},
           {"http://host:0/x", "port 0 is outside [1, 65535]"},
           {"http://host:99999/x", "port 99999 is outside"},
           {"http://host:/x", "the port is not a number"},
           {"http://host:8o/x", "the port is not a number"},
           {"http://[::1/x", "without its closing ]"},
           {"http://host/a b", "space"},
       }) {
    absl::StatusOr<WebhookUrl> bad = ParseWebhookUrl(url);
    ASSERT_FALSE(bad.ok()) << url;
    EXPECT_THAT(bad.status().message(), HasSubstr(error)) << url;
    // The URL is a secret: messages never repeat it.
    EXPECT_THAT(bad.status().message(), ::testing::Not(HasSubstr(url))) << url;
  }
}

TEST(AlertNotificationTest, TheBodyIsSlackCompatibleJsonWithStructuredFields) {
  AlertNotification n;
  n.rule = "accuracy-drop";
  n.kind = AlertKind::kMetric;
  n.model = "credit";
  n.state = AlertState::kFiring;
  n.value = 0.71;
  n.threshold = 0.8;
  n.above = false;
  n.subject = "rolling accuracy";
  n.time_seconds = 1700000030;  // 2023-11-14T22:13:50Z
  n.since_seconds = 1700000030;
  n.description = "Check the \"credit\" feed.";
  EXPECT_EQ(AlertNotificationJson(n),
            R"({"text":"[FIRING] accuracy-drop: rolling accuracy of model 'credit' is 0.71, )"
            R"(below 0.8\nCheck the \"credit\" feed.","rule":"accuracy-drop","kind":"metric",)"
            R"("model":"credit","state":"firing","value":0.71,"threshold":)"
            R"(0.8,"comparison":"below","subject":"rolling accuracy",)"
            R"("time":"2023-11-14T22:13:50Z","since":"2023-11-14T22:13:50Z",)"
            R"("description":"Check the \"credit\" feed."})");

  n.state = AlertState::kResolved;
  n.value = 0.9;
  n.time_seconds = 1700000030 + 150;
  n.description.clear();
  EXPECT_EQ(AlertNotificationText(n),
            "[RESOLVED] accuracy-drop: rolling accuracy of model 'credit' is 0.9, no longer "
            "below 0.8 (it was for 2 min)");
  n.value.reset();
  n.model.clear();
  EXPECT_EQ(AlertNotificationText(n),
            "[RESOLVED] accuracy-drop: rolling accuracy is no longer reported (it was below 0.8 "
            "for 2 min)");
  EXPECT_THAT(AlertNotificationJson(n), HasSubstr(R"("model":"","state":"resolved","value":null)"));
}

TEST(AlertManagerTest, AMetricRuleFiresAfterForSecondsAndResolves) {
  AlertRule rule = AccuracyBelow(0.8);
  rule.for_seconds = 3;
  rule.description = "runbook: https://wiki/accuracy";
  Harness h(Options({rule}));
  h.Step(Accuracy({{"credit", 0.95}}));
  EXPECT_THAT(h.manager().Alerts(), IsEmpty());  // healthy alerts are not even tracked
  h.Step(Accuracy({{"credit", 0.70}}));          // t1: the condition begins
  ASSERT_THAT(h.manager().Alerts(), SizeIs(1));
  EXPECT_TRUE(h.manager().Alerts()[0].pending);
  h.Step(Accuracy({{"credit", 0.60}}));  // t1 + 1
  h.Step(Accuracy({{"credit", 0.65}}));  // t1 + 2
  EXPECT_THAT(h.Firing(), IsEmpty());
  EXPECT_EQ(h.FiringGauges().at("accuracy-drop/credit"), 0);
  h.Step(Accuracy({{"credit", 0.71}}));  // t1 + 3: held for for_seconds
  ASSERT_THAT(h.Firing(), ElementsAre("accuracy-drop/credit"));
  EXPECT_EQ(h.manager().Alerts()[0].value, 0.71);
  EXPECT_EQ(h.FiringGauges().at("accuracy-drop/credit"), 1);
  h.Step(Accuracy({{"credit", 0.5}}));  // still firing: no second notification
  h.Step(Accuracy({{"credit", 0.85}}));
  EXPECT_THAT(h.Firing(), IsEmpty());
  EXPECT_EQ(h.FiringGauges().at("accuracy-drop/credit"), 0);

  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(2));
  EXPECT_THAT(bodies[0],
              HasSubstr(R"("text":"[FIRING] accuracy-drop: rolling accuracy of model )"
                        R"('credit' is 0.71, below 0.8 for 3 s\nrunbook: https://wiki/accuracy")"));
  EXPECT_THAT(bodies[0], HasSubstr(R"("state":"firing","value":0.71)"));
  EXPECT_THAT(bodies[1],
              HasSubstr(R"("text":"[RESOLVED] accuracy-drop: rolling accuracy of )"
                        R"(model 'credit' is 0.85, no longer below 0.8 (it was for 5 s))"));
  EXPECT_THAT(bodies[1], HasSubstr(R"("state":"resolved")"));
  EXPECT_EQ(h.manager().counters().sent, 2u);
}

TEST(AlertManagerTest, AConditionThatLapsesBeforeForSecondsNeverFires) {
  AlertRule rule = AccuracyBelow(0.8);
  rule.for_seconds = 2;
  Harness h(Options({rule}));
  for (int i = 0; i < 10; ++i) h.Step(Accuracy({{"m", i % 2 == 0 ? 0.5 : 0.9}}));
  EXPECT_THAT(h.Firing(), IsEmpty());
  EXPECT_THAT(h.Delivered(), IsEmpty());
}

TEST(AlertManagerTest, OneAlertPerModelAndTheModelFilter) {
  AlertRule any = AccuracyBelow(0.8, "any");
  AlertRule only = AccuracyBelow(0.8, "only-b");
  only.model = "b";
  AlertRule cumulative = AccuracyBelow(0.5, "cumulative");
  cumulative.window = "cumulative";
  Harness h(Options({any, only, cumulative}));
  h.Step(Accuracy({{"a", 0.7}, {"b", 0.6}, {"c", 0.9}}));
  EXPECT_THAT(h.Firing(), ElementsAre("any/a", "any/b", "cumulative/a", "cumulative/b",
                                      "cumulative/c", "only-b/b"));
  EXPECT_THAT(h.Delivered(), SizeIs(6));
}

TEST(AlertManagerTest, ASeriesThatIsNoLongerReportedResolvesTheAlert) {
  Harness h(Options({AccuracyBelow(0.8)}));
  h.Step(Accuracy({{"gone", 0.5}, {"stays", 0.9}}));
  EXPECT_THAT(h.Firing(), ElementsAre("accuracy-drop/gone"));
  // The model is deleted: its series keeps old points in the history but is absent now.
  h.Step(Accuracy({{"stays", 0.9}}));
  EXPECT_THAT(h.Firing(), IsEmpty());
  // Forgotten once resolved with no data: no riffle_alerts_firing series for it any more.
  EXPECT_THAT(h.FiringGauges(), IsEmpty());
  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(2));
  EXPECT_THAT(bodies[1], HasSubstr("of model 'gone' is no longer reported"));
  EXPECT_THAT(bodies[1], HasSubstr(R"("state":"resolved","value":null)"));
}

MetricFamilies Drift(double detections) {
  MetricFamilies f;
  f.AddCounter("riffle_model_drift_detections_total", "", {{"model", "hat"}}, detections);
  return f;
}

TEST(AlertManagerTest, ADriftRuleFiresOnADetectionAndResolvesAfterItsWindow) {
  AlertRule rule;
  rule.name = "drift";
  rule.kind = AlertKind::kDrift;
  rule.window_seconds = 5;
  Harness h(Options({rule}));
  // A model restored with earlier detections does not alert for them.
  h.Step(Drift(7));
  h.Step(Drift(7));
  EXPECT_THAT(h.Firing(), IsEmpty());
  h.Step(Drift(8));  // t3: one detection since t2
  ASSERT_THAT(h.Firing(), ElementsAre("drift/hat"));
  EXPECT_EQ(h.manager().Alerts()[0].value, 1);
  for (int i = 0; i < 4; ++i) h.Step(Drift(8));  // t3 + 4: the window [t2, t3 + 4] has it
  EXPECT_THAT(h.Firing(), ElementsAre("drift/hat"));
  h.Step(Drift(8));  // t3 + 5: the window starts at t3; no increase in it
  EXPECT_THAT(h.Firing(), IsEmpty());
  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(2));
  EXPECT_THAT(bodies[0], HasSubstr("[FIRING] drift: drift detections in the last 5 s of model "
                                   "'hat' is 1, above 0"));
}

TEST(AlertManagerTest, ALagRuleSumsThePartitionsOfAModel) {
  AlertRule rule;
  rule.name = "lag";
  rule.kind = AlertKind::kLag;
  rule.above = 1000;
  Harness h(Options({rule}));
  auto lag = [](double p0, double p1, double other) {
    MetricFamilies f;
    for (auto [partition, value] : {std::pair{"0", p0}, std::pair{"1", p1}}) {
      f.AddGauge("riffle_kafka_consumer_lag_records", "",
                 {{"model", "m"}, {"topic", "events"}, {"partition", partition}}, value);
    }
    f.AddGauge("riffle_kafka_consumer_lag_records", "",
               {{"model", "other"}, {"topic", "events"}, {"partition", "0"}}, other);
    return f;
  };
  h.Step(lag(600, 400, 10));  // 1000 is not above 1000
  EXPECT_THAT(h.Firing(), IsEmpty());
  h.Step(lag(600, 401, 10));
  ASSERT_THAT(h.Firing(), ElementsAre("lag/m"));
  EXPECT_EQ(h.manager().Alerts()[0].value, 1001);
  h.Step(lag(0, 0, 5000));
  EXPECT_THAT(h.Firing(), ElementsAre("lag/other"));
}

TEST(AlertManagerTest, ADeadLetterRateSeesTheFirstDeadLettersOfANewReason) {
  AlertRule rule;
  rule.name = "dlq";
  rule.kind = AlertKind::kDeadLetters;
  rule.above = 1;  // per second
  rule.window_seconds = 60;
  Harness h(Options({rule}));
  MetricFamilies before;
  // Dead letters counted before alerts were watching are history, not a rate.
  before.AddCounter("riffle_kafka_dead_letters_total", "", {{"model", "m"}, {"reason", "OLD"}},
                    5000);
  h.Step(before);
  h.Step(before);
  EXPECT_THAT(h.Firing(), IsEmpty());
  // A new reason appears with 100 dead letters: 100 / 60 s = 1.67/s. Without counting its
  // birth, the first sample of the series would be its baseline and the burst invisible.
  MetricFamilies burst = before;
  burst.AddCounter("riffle_kafka_dead_letters_total", "",
                   {{"model", "m"}, {"reason", "INVALID_EVENT"}}, 100);
  h.Step(burst);
  ASSERT_THAT(h.Firing(), ElementsAre("dlq/m"));
  EXPECT_NEAR(h.manager().Alerts()[0].value.value(), 100.0 / 60, 1e-12);
  // 61 s later the burst has left the window.
  for (int i = 0; i < 60; ++i) h.Step(burst);
  EXPECT_THAT(h.Firing(), ElementsAre("dlq/m"));
  h.Step(burst);
  EXPECT_THAT(h.Firing(), IsEmpty());
}

TEST(AlertManagerTest, GenericRulesOnAnySeries) {
  AlertRule p99;
  p99.name = "slow";
  p99.metric = "riffle_model_predict_latency_seconds";
  p99.quantile = 0.99;
  p99.above = 0.05;
  p99.window_seconds = 10;
  AlertRule errors;
  errors.name = "poll-errors";
  errors.metric = "riffle_kafka_poll_errors_total";  // a counter: its rate by default
  errors.above = 0.5;
  errors.window_seconds = 10;
  AlertRule memory;
  memory.name = "memory";
  memory.metric = "process_resident_memory_bytes";  // a gauge without a model label
  memory.above = 1e9;
  AlertRule labelled;
  labelled.name = "labelled";
  labelled.metric = "riffle_kafka_dead_letters_total";
  labelled.labels["reason"] = "DELIVERY_FAILED";
  labelled.function = "increase";
  labelled.above = 0;
  Harness h(Options({p99, errors, memory, labelled}));
  auto sample = [](std::uint64_t slow, double poll_errors, double memory_bytes, double invalid) {
    MetricFamilies f;
    HistogramData latency;
    latency.bounds = {0.001, 0.01, 0.1};
    latency.bucket_counts = {1000, 0, slow, 0};
    f.AddHistogram("riffle_model_predict_latency_seconds", "", {{"model", "m"}}, latency);
    f.AddCounter("riffle_kafka_poll_errors_total", "", {{"model", "m"}}, poll_errors);
    f.AddGauge("process_resident_memory_bytes", "", {}, memory_bytes);
    f.AddCounter("riffle_kafka_dead_letters_total", "",
                 {{"model", "m"}, {"reason", "DELIVERY_FAILED"}}, 0);
    f.AddCounter("riffle_kafka_dead_letters_total", "",
                 {{"model", "m"}, {"reason", "INVALID_EVENT"}}, invalid);
    return f;
  };
  h.Step(sample(0, 0, 5e8, 0));
  h.Step(sample(0, 1, 5e8, 10));  // 1 error in 10 s: 0.1/s; no DELIVERY_FAILED
  EXPECT_THAT(h.Firing(), IsEmpty());
  // 100 slow predictions (in (0.01, 0.1]) after 1000 fast ones: the p99 is in that bucket.
  h.Step(sample(100, 8, 2e9, 10));  // 8 errors in the window: 0.8/s
  EXPECT_THAT(h.Firing(), ElementsAre("memory/", "poll-errors/m", "slow/m"));
  for (const AlertStatus& s : h.manager().Alerts()) {
    if (s.rule == "slow") {
      EXPECT_GT(*s.value, 0.05);
    }
    if (s.rule == "poll-errors") {
      EXPECT_NEAR(*s.value, 0.8, 1e-12);
    }
  }
  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(3));
  EXPECT_THAT(bodies[0], HasSubstr("[FIRING] slow: p99 of riffle_model_predict_latency_seconds "
                                   "over 10 s of model 'm' is"));
  EXPECT_THAT(bodies[2], HasSubstr("[FIRING] memory: process_resident_memory_bytes is 2e+09, "
                                   "above 1e+09"));
}

TEST(AlertManagerTest, AFlappingAlertIsRateLimitedPerAlert) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.min_interval_seconds = 60;
  Harness h(o);
  h.Step(Accuracy({{"a", 0.5}, {"b", 0.9}}));  // a fires: sent
  h.Step(Accuracy({{"a", 0.9}, {"b", 0.9}}));  // a resolves: sent
  h.Step(Accuracy({{"a", 0.5}, {"b", 0.5}}));  // a again within 60 s: limited; b is sent
  h.Step(Accuracy({{"a", 0.9}, {"b", 0.5}}));  // a's resolve is not sent either
  EXPECT_EQ(h.manager().counters().rate_limited, 1u);
  h.Step(Accuracy({{"a", 0.5}, {"b", 0.5}}), 60);  // 61 s after a's first notification
  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(4));
  EXPECT_THAT(bodies[0], HasSubstr("[FIRING] accuracy-drop: rolling accuracy of model 'a'"));
  EXPECT_THAT(bodies[1], HasSubstr("[RESOLVED] accuracy-drop: rolling accuracy of model 'a'"));
  EXPECT_THAT(bodies[2], HasSubstr("[FIRING] accuracy-drop: rolling accuracy of model 'b'"));
  EXPECT_THAT(bodies[3], HasSubstr("[FIRING] accuracy-drop: rolling accuracy of model 'a'"));
  MetricFamilies f;
  h.manager().Collect(&f);
  bool found = false;
  for (const MetricFamily& family : f.families()) {
    if (family.name != "riffle_alert_notifications_total") continue;
    for (const MetricSample& s : family.samples) {
      if (s.labels[0].value == "rate_limited") {
        EXPECT_EQ(s.value, 1);
      }
      if (s.labels[0].value == "sent") {
        EXPECT_EQ(s.value, 4);
      }
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(AlertManagerTest, TheGlobalCapLimitsNotificationsPerMinute) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.max_per_minute = 2;
  Harness h(o);
  h.Step(Accuracy({{"a", 0.5}, {"b", 0.5}, {"c", 0.5}}));
  EXPECT_THAT(h.Firing(), SizeIs(3));  // all three fire; two are told
  EXPECT_EQ(h.manager().counters().rate_limited, 1u);
  h.Step(Accuracy({{"a", 0.9}, {"b", 0.5}, {"c", 0.9}}), 30);  // cap full: a's resolve is not sent
  EXPECT_EQ(h.manager().counters().rate_limited, 2u);
  h.Step(Accuracy({{"a", 0.9}, {"b", 0.9}, {"c", 0.9}}), 31);  // a minute later: b's resolve
  EXPECT_THAT(h.Delivered(), SizeIs(3));
}

TEST(AlertManagerTest, RulesAreEvaluatedAtTheConfiguredInterval) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.evaluate_every_seconds = 10;
  Harness h(o);
  h.Step(Accuracy({{"m", 0.9}}));  // the first call evaluates
  for (int i = 0; i < 9; ++i) {
    h.Step(Accuracy({{"m", 0.5}}));
    EXPECT_THAT(h.Firing(), IsEmpty()) << i;
  }
  h.Step(Accuracy({{"m", 0.5}}));  // 10 s after the first evaluation
  EXPECT_THAT(h.Firing(), ElementsAre("accuracy-drop/m"));
}

TEST(AlertManagerTest, ResolvesAreNotSentWhenSwitchedOff) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.send_resolved = false;
  Harness h(o);
  h.Step(Accuracy({{"m", 0.5}}));
  h.Step(Accuracy({{"m", 0.9}}));
  const std::vector<std::string> bodies = h.Delivered();
  ASSERT_THAT(bodies, SizeIs(1));
  EXPECT_THAT(bodies[0], HasSubstr("FIRING"));
}

TEST(AlertManagerTest, NothingIsEvaluatedAfterStop) {
  Harness h(Options({AccuracyBelow(0.8)}));
  h.manager().Stop();
  h.Step(Accuracy({{"m", 0.5}}));
  EXPECT_THAT(h.Firing(), IsEmpty());
  EXPECT_THAT(h.sender().bodies(), IsEmpty());
}

AlertNotification Note(std::string rule = "r") {
  AlertNotification n;
  n.rule = std::move(rule);
  n.model = "m";
  n.value = 1;
  n.subject = "x";
  return n;
}

struct NotifierHarness {
  explicit NotifierHarness(AlertOptions o = Options({AccuracyBelow(0.8)})) {
    auto s = std::make_unique<FakeSender>();
    sender = s.get();
    notifier = std::make_unique<WebhookNotifier>(o, std::move(s), NullLogger());
  }
  FakeSender* sender = nullptr;
  std::unique_ptr<WebhookNotifier> notifier;
};

TEST(WebhookNotifierTest, RetriesServerErrorsWithBackoffUntilDelivered) {
  NotifierHarness h;
  h.sender->Script({Http(500), absl::UnavailableError("connection refused"), Http(503), Http(200)});
  ASSERT_TRUE(h.notifier->Enqueue(Note()));
  h.notifier->Stop();
  ASSERT_THAT(h.sender->bodies(), SizeIs(4));  // the same body each time
  EXPECT_EQ(h.sender->bodies()[0], h.sender->bodies()[3]);
  const AlertDeliveryCounters c = h.notifier->counters();
  EXPECT_EQ(c.sent, 1u);
  EXPECT_EQ(c.retries, 3u);
  EXPECT_EQ(c.failed, 0u);
}

TEST(WebhookNotifierTest, GivesUpAfterMaxAttempts) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.max_attempts = 3;
  NotifierHarness h(o);
  h.sender->AlwaysFail(absl::UnavailableError("connection refused"));
  ASSERT_TRUE(h.notifier->Enqueue(Note()));
  h.notifier->Stop();
  EXPECT_THAT(h.sender->bodies(), SizeIs(3));
  EXPECT_EQ(h.notifier->counters().failed, 1u);
  EXPECT_EQ(h.notifier->counters().retries, 2u);
}

TEST(WebhookNotifierTest, ARefusedRequestIsNotRetried) {
  NotifierHarness h;
  h.sender->Script({Http(404), Http(400)});
  ASSERT_TRUE(h.notifier->Enqueue(Note("a")));
  ASSERT_TRUE(h.notifier->Enqueue(Note("b")));
  h.notifier->Stop();
  EXPECT_THAT(h.sender->bodies(), SizeIs(2));
  EXPECT_EQ(h.notifier->counters().failed, 2u);
  EXPECT_EQ(h.notifier->counters().retries, 0u);
}

TEST(WebhookNotifierTest, HonoursASmallRetryAfterAndGivesUpOnALongOne) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.max_retry_after_seconds = 1;
  NotifierHarness h(o);
  h.sender->Script({Http(429, 0.2), Http(200), Http(503, 3600)});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.notifier->Enqueue(Note("a")));
  h.sender->WaitForPosts(2);
  // The backoff alone would have been 1 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  ASSERT_TRUE(h.notifier->Enqueue(Note("b")));
  h.notifier->Stop();
  EXPECT_THAT(h.sender->bodies(), SizeIs(3));
  EXPECT_EQ(h.notifier->counters().sent, 1u);
  EXPECT_EQ(h.notifier->counters().failed, 1u);
}

TEST(WebhookNotifierTest, AnExceptionOfTheSenderIsAFailedAttempt) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.max_attempts = 2;
  NotifierHarness h(o);
  h.sender->Throw();
  ASSERT_TRUE(h.notifier->Enqueue(Note()));
  h.notifier->Stop();
  EXPECT_THAT(h.sender->bodies(), SizeIs(2));
  EXPECT_EQ(h.notifier->counters().failed, 1u);
}

TEST(WebhookNotifierTest, AFullQueueDropsAndNeverBlocks) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.queue_size = 1;
  NotifierHarness h(o);
  h.sender->Hold(true);
  ASSERT_TRUE(h.notifier->Enqueue(Note("a")));
  h.sender->WaitForPosts(1);                     // "a" is being sent (held)
  ASSERT_TRUE(h.notifier->Enqueue(Note("b")));   // waits in the queue
  EXPECT_FALSE(h.notifier->Enqueue(Note("c")));  // no room
  EXPECT_EQ(h.notifier->pending(), 2u);
  EXPECT_EQ(h.notifier->counters().dropped, 1u);
  h.sender->Hold(false);
  h.notifier->Stop();
  EXPECT_EQ(h.notifier->counters().sent, 2u);
  EXPECT_FALSE(h.notifier->Enqueue(Note("d")));  // stopped
  EXPECT_EQ(h.notifier->counters().dropped, 2u);
}

TEST(WebhookNotifierTest, StopIsBoundedByFlushSeconds) {
  AlertOptions o = Options({AccuracyBelow(0.8)});
  o.backoff_seconds = 30;
  o.backoff_max_seconds = 30;
  o.flush_seconds = 0.2;
  NotifierHarness h(o);
  h.sender->AlwaysFail(Http(500));
  ASSERT_TRUE(h.notifier->Enqueue(Note("a")));
  ASSERT_TRUE(h.notifier->Enqueue(Note("b")));
  h.sender->WaitForPosts(1);
  const auto start = std::chrono::steady_clock::now();
  h.notifier->Stop();  // "a" waits 30 s for its retry; "b" behind it
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THAT(h.sender->bodies(), SizeIs(1));
  EXPECT_EQ(h.notifier->counters().failed, 1u);
  EXPECT_EQ(h.notifier->counters().dropped, 1u);
}

}  // namespace
}  // namespace riffle::service
