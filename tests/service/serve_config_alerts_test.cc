// The `alerts:` section of the `riffle serve` config: every key parsed, defaults, and errors
// naming the key path (kept apart from serve_config_test.cc, which other changes edit).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "service/serve_config.h"

namespace riffle::service {
namespace {

using ::testing::HasSubstr;

std::string Error(const std::string& yaml) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(yaml, "riffle.yaml");
  EXPECT_FALSE(c.ok()) << yaml;
  return std::string(c.status().message());
}

// A valid section with one rule; tests append keys to it.
constexpr char kMinimal[] = R"(
alerts:
  webhook: http://127.0.0.1:8080/hook
  rules:
    - {name: acc, kind: metric, metric: accuracy, below: 0.8}
)";

TEST(ServeConfigAlertsTest, NoSectionNoAlerts) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig("listen: 127.0.0.1:1", "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->alerts.has_value());
}

TEST(ServeConfigAlertsTest, ParsesEveryKey) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(R"(
alerts:
  webhook: https://hooks.slack.com/services/T0/B0/XYZ
  timeout_seconds: 2.5
  max_attempts: 6
  backoff_seconds: 0.5
  backoff_max_seconds: 8
  max_retry_after_seconds: 20
  min_interval_seconds: 120
  max_per_minute: 7
  evaluate_every_seconds: 2
  send_resolved: false
  queue_size: 33
  flush_seconds: 3
  rules:
    - name: acc
      kind: metric
      metric: accuracy
      window: cumulative
      model: credit
      below: 0.8
      for_seconds: 30
      description: check the labels
    - {name: drift, kind: drift, window_seconds: 600}
    - {name: lag, kind: lag, above: 10000}
    - {name: dlq, kind: dead_letters, above: 0.5, window_seconds: 120}
    - name: invalid
      kind: metric
      metric: riffle_kafka_dead_letters_total
      labels: {reason: INVALID_EVENT}
      function: increase
      above: 0
    - {name: p99, kind: metric, metric: riffle_model_predict_latency_seconds, quantile: 0.99,
       above: 0.01}
)",
                                                   "x");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->alerts.has_value());
  const AlertOptions& a = *c->alerts;
  EXPECT_EQ(a.webhook, "https://hooks.slack.com/services/T0/B0/XYZ");
  EXPECT_EQ(a.timeout_seconds, 2.5);
  EXPECT_EQ(a.max_attempts, 6);
  EXPECT_EQ(a.backoff_seconds, 0.5);
  EXPECT_EQ(a.backoff_max_seconds, 8);
  EXPECT_EQ(a.max_retry_after_seconds, 20);
  EXPECT_EQ(a.min_interval_seconds, 120);
  EXPECT_EQ(a.max_per_minute, 7);
  EXPECT_EQ(a.evaluate_every_seconds, 2);
  EXPECT_FALSE(a.send_resolved);
  EXPECT_EQ(a.queue_size, 33u);
  EXPECT_EQ(a.flush_seconds, 3);
  ASSERT_EQ(a.rules.size(), 6u);
  const AlertRule& acc = a.rules[0];
  EXPECT_EQ(acc.name, "acc");
  EXPECT_EQ(acc.kind, AlertKind::kMetric);
  EXPECT_EQ(acc.metric, "accuracy");
  EXPECT_EQ(acc.window, "cumulative");
  EXPECT_EQ(acc.model, "credit");
  EXPECT_EQ(acc.below, 0.8);
  EXPECT_FALSE(acc.above.has_value());
  EXPECT_EQ(acc.for_seconds, 30);
  EXPECT_EQ(acc.description, "check the labels");
  EXPECT_EQ(a.rules[1].kind, AlertKind::kDrift);
  EXPECT_EQ(a.rules[1].window_seconds, 600);
  EXPECT_FALSE(a.rules[1].above.has_value());
  EXPECT_EQ(a.rules[2].kind, AlertKind::kLag);
  EXPECT_EQ(a.rules[2].above, 10000);
  EXPECT_EQ(a.rules[3].kind, AlertKind::kDeadLetters);
  EXPECT_EQ(a.rules[3].window_seconds, 120);
  EXPECT_EQ(a.rules[4].labels.at("reason"), "INVALID_EVENT");
  EXPECT_EQ(a.rules[4].function, "increase");
  EXPECT_EQ(a.rules[5].quantile, 0.99);
}

TEST(ServeConfigAlertsTest, DefaultsForOmittedKeys) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(kMinimal, "x");
  ASSERT_TRUE(c.ok()) << c.status();
  const AlertOptions defaults;
  const AlertOptions& a = *c->alerts;
  EXPECT_EQ(a.timeout_seconds, defaults.timeout_seconds);
  EXPECT_EQ(a.max_attempts, defaults.max_attempts);
  EXPECT_EQ(a.min_interval_seconds, defaults.min_interval_seconds);
  EXPECT_EQ(a.max_per_minute, defaults.max_per_minute);
  EXPECT_EQ(a.evaluate_every_seconds, defaults.evaluate_every_seconds);
  EXPECT_TRUE(a.send_resolved);
  EXPECT_EQ(a.rules[0].for_seconds, 0);
  EXPECT_EQ(a.rules[0].window_seconds, 60);
  EXPECT_TRUE(a.rules[0].window.empty());  // rolling
}

TEST(ServeConfigAlertsTest, ErrorsNameTheKey) {
  const std::string base = kMinimal;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alerts: [1]", "riffle.yaml: alerts: expected a mapping"},
      {"alerts: {webhok: http://x/y}", "alerts.webhok: unknown key (known here: webhook,"},
      {"alerts: {rules: [{name: a, kind: drift}]}", "alerts.webhook: required"},
      {"alerts: {webhook: ftp://x/y, rules: [{name: a, kind: drift}]}",
       "alerts.webhook: expected a URL starting with http:// or https://"},
      {"alerts: {webhook: http://x/y}", "alerts.rules: at least one rule is needed"},
      {"alerts: {webhook: http://x/y, rules: {name: a}}", "alerts.rules: expected a list of rules"},
      {base + "  max_attempts: 0\n", "alerts.max_attempts: 0 is outside [1, 100]"},
      {base + "  max_attempts: 2.5\n", "alerts.max_attempts: expected a whole number"},
      {base + "  timeout_seconds: soon\n", "alerts.timeout_seconds: expected a number"},
      {base + "  send_resolved: maybe\n", "alerts.send_resolved: expected true or false"},
      {base + "  queue_size: -1\n", "alerts.queue_size: -1 is outside [0, 1e+09]"},
      {base + "  min_interval_seconds: -5\n", "alerts.min_interval_seconds: -5 is outside"},
      {base + "    - {name: b, metric: accuracy, below: 0.5}\n",
       "alerts.rules[1].kind: required: metric, drift, lag or dead_letters"},
      {base + "    - {name: b, kind: temperature}\n",
       "alerts.rules[1].kind: \"temperature\" is not a rule kind (metric, drift, lag, "
       "dead_letters)"},
      {base + "    - {name: b, kind: lag, above: 10, treshold: 3}\n",
       "alerts.rules[1].treshold: unknown key (known here: name, kind, model,"},
      {base + "    - {name: b, kind: lag}\n", "alerts.rules[1].above: required for kind lag"},
      {base + "    - {name: b, kind: lag, above: lots}\n",
       "alerts.rules[1].above: expected a number"},
      {base + "    - {name: b, kind: lag, below: 10}\n",
       "alerts.rules[1].below: not for kind lag (use above)"},
      {base + "    - {name: b, kind: metric, metric: accuracy, above: 0.9, below: 0.5}\n",
       "alerts.rules[1].below: give above or below, not both"},
      {base + "    - {name: b, kind: metric, below: 0.5}\n",
       "alerts.rules[1].metric: required for kind metric"},
      {base + "    - {name: b, kind: metric, metric: x_total, labels: [a], above: 1}\n",
       "alerts.rules[1].labels: expected a mapping of label: value"},
      {base + "    - {name: b, kind: drift, for_seconds: 30}\n",
       "alerts.rules[1].for_seconds: not for kind drift"},
      {base + "    - {name: b, kind: dead_letters, above: 1, window_seconds: 0}\n",
       "alerts.rules[1].window_seconds: 0 is outside (0, 3600]"},
      {base + "    - {name: acc, kind: drift}\n",
       "alerts.rules[1].name: 'acc' is used by an earlier rule"},
      {base + "    - {name: \"has space\", kind: drift}\n",
       "alerts.rules[1].name: \"has space\": only [a-zA-Z0-9_.-]"},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_THAT(Error(yaml), HasSubstr(expected)) << yaml;
  }
}

TEST(ServeConfigAlertsTest, TheExampleConfigParses) {
  const std::string path =
      std::string(RIFFLE_TEST_DATA_DIR) + "/../docs/examples/riffle-alerts.yaml";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<ServeConfig> c = ParseServeConfig(text.str(), path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->alerts.has_value());
  EXPECT_EQ(c->alerts->rules.size(), 5u);
}

}  // namespace
}  // namespace riffle::service
