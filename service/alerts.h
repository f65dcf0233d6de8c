#ifndef RIFFLE_SERVICE_ALERTS_H_
#define RIFFLE_SERVICE_ALERTS_H_

// Alerts of `riffle serve` (docs/ALERTS.md): rules from the YAML's `alerts:` section are
// evaluated on the MetricsHistory (so they see exactly what /metrics shows), and every firing
// or resolved transition of a (rule, model) pair posts a Slack-compatible JSON message to a
// webhook, off the serving path, with rate limiting and retries.
//
//   tick loop: history.Record(now, collector.Collect()) ─► AlertManager::Evaluate(history)
//                 rules ─► per (rule, model): ok ─► pending (for_seconds) ─► firing ─► resolved
//                 rate limits (per alert, global per minute) ─► WebhookNotifier::Enqueue
//   notifier thread: bounded queue ─► WebhookSender::Post (cpp-httplib) ─► retries, backoff

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"
#include "service/logger.h"
#include "service/metrics_history.h"
#include "service/prometheus.h"

namespace riffle::service {

// What a rule watches.
enum class AlertKind {
  // A metric crosses a threshold: a model's prequential metric by its short name ("accuracy",
  // "log_loss", "roc_auc", ...: riffle_model_<name>{window="rolling"}), or any series the
  // service exposes by its full name (gauges: last value; counters: rate; histograms: a
  // quantile).
  kMetric,
  // The model's learner detected concept drift: riffle_model_drift_detections_total increased
  // by more than `above` (default 0, i.e. at least one detection) within window_seconds.
  kDrift,
  // The model's Kafka consumer lag, summed over its partitions
  // (riffle_kafka_consumer_lag_records), is above `above` records.
  kLag,
  // The model's dead letters (riffle_kafka_dead_letters_total, every reason) per second over
  // the last window_seconds are above `above`.
  kDeadLetters,
};

// "metric", "drift", "lag", "dead_letters".
std::string_view AlertKindName(AlertKind kind);
// The kind named `text`; InvalidArgument listing the kinds otherwise.
absl::StatusOr<AlertKind> ParseAlertKind(std::string_view text);

// One rule of the `alerts.rules` list. Field names are the YAML keys, so Validate's messages
// name the key to fix ("above: ...").
struct AlertRule {
  // Identifies the rule in messages, logs and the riffle_alerts_firing{rule} label: letters,
  // digits, '_', '-' and '.'; unique among the rules. Required.
  std::string name;
  AlertKind kind = AlertKind::kMetric;
  // Only this model; "" = every model that has the watched series (one alert per model).
  // Series without a model label (process metrics) form the alert of model "".
  std::string model;

  // kMetric only. A short model metric name (accuracy, log_loss, roc_auc, macro_f1, precision,
  // recall, f1, scored_examples) or a full Prometheus metric name.
  std::string metric;
  // kMetric with a short name only: "rolling" (the last metrics_window examples; "" means
  // rolling) or "cumulative".
  std::string window;
  // kMetric with a full name only: label values the series must have (e.g. {reason:
  // INVALID_EVENT}); the model is selected by `model`, not here.
  std::map<std::string, std::string> labels;
  // kMetric with a full name only: how a series becomes a number. "" = by the series' type
  // (gauge: last, counter: rate, histogram: quantile); "last", "rate" (increase over
  // window_seconds divided by window_seconds), "increase" (over window_seconds) or "quantile".
  std::string function;
  // The quantile (0..1) of a histogram's observations within window_seconds; default 0.99.
  // Setting it implies function "quantile".
  std::optional<double> quantile;

  // The threshold: the condition holds while the value is strictly above it, or strictly
  // below it. kMetric: exactly one of the two. kLag, kDeadLetters: `above` (required). kDrift:
  // `above` (optional, default 0: any detection).
  std::optional<double> above;
  std::optional<double> below;

  // The condition must hold for this long (seconds, >= 0) before the alert fires; 0 = at the
  // first evaluation that sees it. Not for kDrift (a detection is an event, not a level).
  double for_seconds = 0;
  // The look-back of rates, increases, quantiles and drift detections, in seconds (0, 3600].
  // Only what the history retains (10 minutes by default) can be seen.
  double window_seconds = 60;
  // Free text added to the message (what to do, a runbook link).
  std::string description;

  // InvalidArgument naming the offending key, e.g. "below: not allowed for kind lag".
  absl::Status Validate() const;

  // The threshold the rule compares with, and whether the condition is "above" it.
  double threshold() const;
  bool fires_above() const;
};

// The `alerts:` section: where to post, how hard to try, how often, and the rules.
struct AlertOptions {
  // The webhook: http://host[:port]/path or https://... (a Slack incoming-webhook URL, or any
  // receiver that accepts a JSON POST). Required. Treated as a secret: logs show only its
  // scheme, host and port.
  std::string webhook;
  // Connect, read and write timeout of one attempt, in seconds (0, 300].
  double timeout_seconds = 5;
  // Attempts per notification (>= 1). Retried: connection errors, timeouts, 408, 429, 5xx.
  // Other answers (400, 403, 404, ...) fail at once: repeating the request cannot fix them.
  int max_attempts = 4;
  // Exponential backoff between attempts: backoff_seconds before the second attempt, doubled
  // each time, at most backoff_max_seconds.
  double backoff_seconds = 1;
  double backoff_max_seconds = 30;
  // A 429/503 answer's Retry-After (in seconds) replaces the backoff when it is at most this;
  // a longer one ends the attempts (the receiver asked for a pause longer than is worth
  // holding the queue for).
  double max_retry_after_seconds = 60;
  // Rate limit per alert (rule and model): a firing notification is not sent when the same
  // alert's previous firing notification was less than this many seconds ago (a flapping
  // metric). Its resolve is then not sent either. 0 = no limit.
  double min_interval_seconds = 300;
  // Global cap: at most this many notifications are handed to the sender in any 60 seconds;
  // the rest are counted as rate_limited (and logged). >= 1.
  int max_per_minute = 20;
  // Rules are evaluated at most this often, in seconds [0, 3600] (the history gains one
  // sample a second, so below 1 means every sample).
  double evaluate_every_seconds = 5;
  // Also notify when a firing alert resolves (its condition no longer holds, or its series is
  // gone).
  bool send_resolved = true;
  // Notifications waiting for the sender; beyond, new ones are dropped (and counted). >= 1.
  std::size_t queue_size = 100;
  // On shutdown, how long Stop() waits for queued notifications to be delivered (seconds,
  // [0, 600]); what remains is dropped.
  double flush_seconds = 5;

  std::vector<AlertRule> rules;

  // InvalidArgument naming the key: "webhook: ...", "rules[2].above: ...".
  absl::Status Validate() const;
};

// The parts of a webhook URL. ParseWebhookUrl accepts http and https, a host (a name, an IPv4
// address or a bracketed IPv6 address), an optional port and path (default "/"; the query is
// kept with it). User information ("user:pass@") is refused.
struct WebhookUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // as written, brackets included for IPv6
  int port = 0;        // the default of the scheme when absent
  std::string path;    // "/..." with the query, if any
  // scheme://host:port, what logs show of a webhook (the path of a Slack URL is its secret).
  std::string Origin() const;
};
absl::StatusOr<WebhookUrl> ParseWebhookUrl(std::string_view url);

enum class AlertState { kFiring, kResolved };

// One message to the webhook: an alert that fired or resolved.
struct AlertNotification {
  std::string rule;
  AlertKind kind = AlertKind::kMetric;
  std::string model;  // "" for series without a model label
  AlertState state = AlertState::kFiring;
  // The value that fired (or, resolved, the value now; none when the series disappeared).
  std::optional<double> value;
  double threshold = 0;
  bool above = true;         // the condition is value > threshold (else value < threshold)
  std::string subject;       // what was measured, e.g. "rolling accuracy"
  double time_seconds = 0;   // of the transition, Unix seconds
  double since_seconds = 0;  // when the condition began (for_seconds or more before firing)
  std::string description;   // the rule's
};

// The message as a JSON object (Slack's incoming webhooks read "text" and ignore the rest):
//   {"text": "[FIRING] acc: rolling accuracy of model 'credit' is 0.71, below 0.8 for 30 s",
//    "rule": "acc", "kind": "metric", "model": "credit", "state": "firing",
//    "value": 0.71, "threshold": 0.8, "comparison": "below", "subject": "rolling accuracy",
//    "time": "2026-11-23T06:48:00Z", "since": "2026-11-23T06:47:30Z", "description": "..."}
// "value" is null when there is none (and for NaN); "model" is "" for process-wide series.
std::string AlertNotificationJson(const AlertNotification& n);
// The human-readable line of "text".
std::string AlertNotificationText(const AlertNotification& n);

// An HTTP answer of the webhook.
struct WebhookResponse {
  int status = 0;
  // The Retry-After header in seconds, when present and a number of seconds (the HTTP-date
  // form is ignored).
  std::optional<double> retry_after_seconds;
};

// Posts a JSON body to the webhook: the seam between the alert logic and the network, so the
// evaluator and the retry policy are tested without sockets.
class WebhookSender {
 public:
  virtual ~WebhookSender() = default;
  // One attempt. An HTTP answer (any status) is returned as a WebhookResponse; no answer
  // (connection refused, timeout, TLS failure) is an error status (Unavailable,
  // DeadlineExceeded) with the reason. Called from one thread at a time.
  virtual absl::StatusOr<WebhookResponse> Post(const std::string& json_body) = 0;
};

// The real sender: cpp-httplib's client (Debian's build has OpenSSL, so https:// verifies the
// server against the system's CA certificates). A new connection per post: alerts are rare,
// and a kept-alive connection the receiver closed meanwhile would cost a failed attempt.
// InvalidArgument for a webhook ParseWebhookUrl refuses.
absl::StatusOr<std::unique_ptr<WebhookSender>> NewHttpWebhookSender(const AlertOptions& options);

// What became of the notifications (riffle_alert_notifications_total{result}).
struct AlertDeliveryCounters {
  std::uint64_t sent = 0;          // a 2xx answer
  std::uint64_t failed = 0;        // every attempt failed, or a non-retryable answer
  std::uint64_t dropped = 0;       // the queue was full, or still held them at shutdown
  std::uint64_t rate_limited = 0;  // not sent because of a rate limit
  std::uint64_t retries = 0;       // attempts after the first
};

// Delivers notifications on its own thread through a bounded queue: Enqueue never blocks and
// never does I/O, so the evaluation (and the serving process) is never slowed by the webhook.
// Each notification is attempted up to max_attempts times, with exponential backoff (or the
// receiver's Retry-After). A notification waits for those before it, so one slow receiver
// delays the queue by at most max_attempts × (timeout + backoff_max).
//
// Thread-safety: Enqueue and counters() from any thread; Stop and the destructor from the
// owner's. Exceptions of the sender are caught on the notifier's thread and count as failed
// attempts. The logger is not owned and must outlive the notifier.
class WebhookNotifier {
 public:
  // `options` must be valid (AlertOptions::Validate); starts the thread.
  WebhookNotifier(const AlertOptions& options, std::unique_ptr<WebhookSender> sender,
                  Logger* logger);
  ~WebhookNotifier();
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Queues `n`; false (counted as dropped) when the queue is full or the notifier stopped.
  bool Enqueue(AlertNotification n);
  // Waits up to options.flush_seconds for the queue to be delivered, then stops retrying, and
  // joins the thread: at most flush_seconds + timeout_seconds. What is still queued is counted
  // as dropped. Idempotent.
  void Stop();
  // Notifications queued or being delivered.
  std::size_t pending() const;

  AlertDeliveryCounters counters() const;

 private:
  void Run();
  void Deliver(const AlertNotification& n);
  // Waits `seconds` unless the notifier is aborted; false if it was.
  bool Sleep(double seconds);

  const AlertOptions options_;
  const std::unique_ptr<WebhookSender> sender_;
  Logger* const logger_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AlertNotification> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;      // a notification is being delivered
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // no more Enqueue; finish the queue
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;   // flush time is over: no more attempts
  bool joined_ = false;                         // owner's thread only

  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> retries_{0};

  std::thread thread_;  // last: started once everything above is initialized
};

// One alert: a rule and a model, as the manager currently sees it.
struct AlertStatus {
  std::string rule;
  std::string model;
  bool firing = false;
  bool pending = false;  // the condition holds, not yet for for_seconds
  std::optional<double> value;
  double since_seconds = 0;  // firing or pending: when the condition began
};

// Evaluates the rules on the metrics history and notifies transitions; also a MetricsSource
// of its own state:
//   riffle_alerts_firing{rule, model}                     1 while firing, 0 once resolved
//   riffle_alert_notifications_total{result}              sent | failed | dropped | rate_limited
//   riffle_alert_delivery_retries_total                   attempts after the first
//
// Evaluation reads only series present in the history's latest sample: a series that stopped
// being reported (a deleted model, a partition no longer assigned) is "no data", which never
// fires and resolves an alert that fired. Counters read over a window count time before the
// series existed as zero, so the first dead letters of a new reason are seen (a counter that
// appears after the manager's first evaluation is taken to have started from 0).
//
// Thread-safety: Evaluate from one thread (the tick loop); Collect, Alerts and counters from
// any thread. The env (clock) and logger are not owned and must outlive the manager.
class AlertManager : public MetricsSource {
 public:
  // InvalidArgument when `options` are invalid. `sender` null: the HTTP sender for
  // options.webhook. Starts the notifier's thread.
  static absl::StatusOr<std::unique_ptr<AlertManager>> Create(
      AlertOptions options, checkpoints::Env* env, Logger* logger,
      std::unique_ptr<WebhookSender> sender = nullptr);
  ~AlertManager() override;

  // Evaluates every rule if evaluate_every_seconds have passed since the last evaluation (by
  // the env's clock), and queues the notifications of the transitions. Never blocks on the
  // network.
  void Evaluate(const MetricsHistory& history);
  // Stops notifying: flushes the queue (bounded, see WebhookNotifier::Stop). Idempotent;
  // Evaluate afterwards does nothing.
  void Stop();

  void Collect(MetricFamilies* out) override;

  // The alerts that are firing or pending, or were once (sorted by rule, then model).
  std::vector<AlertStatus> Alerts() const;
  AlertDeliveryCounters counters() const;
  const AlertOptions& options() const { return options_; }

 private:
  // The state of one (rule, model) pair.
  struct Instance {
    bool firing = false;
    double pending_since = -1;  // < 0: the condition does not hold
    double firing_since = 0;    // when the condition of the firing alert began
    std::optional<double> value;
    // The firing notification was handed to the notifier (so its resolve is worth sending).
    bool notified = false;
    double last_notified = -1;  // time of the last firing notification queued; < 0: never
  };
  // Values of a rule per model ("" for series without a model label).
  using RuleValues = std::map<std::string, std::optional<double>>;

  AlertManager(AlertOptions options, checkpoints::Env* env, Logger* logger,
               std::unique_ptr<WebhookSender> sender);
  RuleValues ValuesOf(const AlertRule& rule, const MetricsHistory& history, double last_time)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A counter's increase over `window` seconds, crediting a series born in the window with its
  // first value.
  std::optional<double> Increase(const HistorySeries& series, double window)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs the transition and queues its notification unless a rate limit says no.
  void Notify(const AlertRule& rule, const std::string& model, Instance* instance, AlertState state,
              double now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The global cap: true (and counted) if a notification may be queued at `now`.
  bool TakeGlobalToken(double now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AlertOptions options_;
  checkpoints::Env* const env_;
  Logger* const logger_;
  WebhookNotifier notifier_;

  mutable std::mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  double last_evaluation_ ABSL_GUARDED_BY(mu_) = -1;
  // The history's time at the first evaluation: counters first seen after it were born then.
  double watch_start_ ABSL_GUARDED_BY(mu_) = -1;
  // Counter series seen by the rules ("name{labels}") -> the time of their first sample if
  // they appeared after watch_start_, else a negative number. Bounded (kMaxTrackedCounters).
  std::map<std::string, double> counter_births_ ABSL_GUARDED_BY(mu_);
  // (rule index, model) -> state.
  std::map<std::pair<std::size_t, std::string>, Instance> instances_ ABSL_GUARDED_BY(mu_);
  // Times of the notifications queued in the last 60 seconds (the global cap).
  std::deque<double> recent_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::uint64_t> rate_limited_{0};
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_ALERTS_H_
