// Alerts over real HTTP: a local receiver (httplib::Server on 127.0.0.1, port 0) gets the JSON
// body, answers 500 to be retried, sees a flapping alert rate-limited, and is down; and
// `riffle serve`'s RunServer with an alert rule posts a real alert caused by live traffic.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../checkpoints/checkpoint_testing.h"
#include "riffle/v1/riffle.grpc.pb.h"
#include "service/alerts.h"
#include "service/serve_command.h"
#include "service/serve_config.h"
#include "service_testing.h"

// Last: httplib.h includes <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>  // NOLINT(build/include_order)

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::LogregSpec;
using ::testing::HasSubstr;
using ::testing::SizeIs;

struct ReceivedRequest {
  std::string path;
  std::string body;
  std::string content_type;
  std::string user_agent;
};

// A webhook receiver on loopback: records every POST and answers from a script of statuses
// (then 200 "ok", as Slack does).
class Receiver {
 public:
  Receiver() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back({req.path, req.body, req.get_header_value("Content-Type"),
                           req.get_header_value("User-Agent")});
      int status = 200;
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      res.status = status;
      res.set_content(status == 200 ? "ok" : "try again", "text/plain");
      cv_.notify_all();
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 400 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~Receiver() { Stop(); }

  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return absl::StrFormat("http://127.0.0.1:%d/services/T0/B0/x", port_); }

  void Answer(std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  // Waits (up to `timeout`) for `n` requests; returns those received.
  std::vector<ReceivedRequest> WaitFor(std::size_t n,
                                       std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReceivedRequest> requests_;
  std::deque<int> statuses_;
};

AlertRule AccuracyBelow(double threshold) {
  AlertRule r;
  r.name = "accuracy-drop";
  r.metric = "accuracy";
  r.below = threshold;
  return r;
}

AlertOptions Options(const std::string& webhook) {
  AlertOptions o;
  o.webhook = webhook;
  o.evaluate_every_seconds = 0;
  o.min_interval_seconds = 0;
  o.timeout_seconds = 2;
  o.backoff_seconds = 0.01;
  o.backoff_max_seconds = 0.05;
  o.flush_seconds = 10;
  o.rules = {AccuracyBelow(0.8)};
  return o;
}

MetricFamilies Accuracy(double value) {
  MetricFamilies f;
  f.AddGauge("riffle_model_accuracy", "", {{"model", "credit"}, {"window", "rolling"}}, value);
  return f;
}

// A manager with the real HTTP sender over a fake clock; Step() records a sample a second
// later and evaluates.
class Alerts {
 public:
  explicit Alerts(AlertOptions options) {
    absl::StatusOr<std::unique_ptr<AlertManager>> m =
        AlertManager::Create(std::move(options), &env_, NullLogger());
    EXPECT_TRUE(m.ok()) << m.status();
    manager_ = *std::move(m);
  }
  // Returns how long Evaluate took.
  std::chrono::steady_clock::duration Step(const MetricFamilies& sample, double seconds = 1) {
    env_.Advance(static_cast<std::int64_t>(seconds * 1e6));
    history_.Record(static_cast<double>(env_.NowMicros()) / 1e6, sample);
    const auto start = std::chrono::steady_clock::now();
    manager_->Evaluate(history_);
    return std::chrono::steady_clock::now() - start;
  }
  AlertManager& manager() { return *manager_; }

 private:
  FakeClockEnv env_;
  MetricsHistory history_;
  std::unique_ptr<AlertManager> manager_;
};

TEST(AlertsHttpTest, TheReceiverGetsTheJsonBody) {
  Receiver receiver;
  Alerts alerts(Options(receiver.url()));
  alerts.Step(Accuracy(0.9));
  alerts.Step(Accuracy(0.7));
  const std::vector<ReceivedRequest> got = receiver.WaitFor(1);
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(got[0].path, "/services/T0/B0/x");
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].user_agent, "riffle-alerts");
  EXPECT_THAT(got[0].body,
              HasSubstr(R"({"text":"[FIRING] accuracy-drop: rolling accuracy of model 'credit' )"
                        R"(is 0.7, below 0.8","rule":"accuracy-drop","kind":"metric",)"
                        R"("model":"credit","state":"firing","value":0.7,)"));
  alerts.Step(Accuracy(0.9));
  ASSERT_THAT(receiver.WaitFor(2), SizeIs(2));
  EXPECT_THAT(receiver.WaitFor(2)[1].body, HasSubstr(R"("state":"resolved","value":0.9)"));
  alerts.manager().Stop();
  EXPECT_EQ(alerts.manager().counters().sent, 2u);
  EXPECT_EQ(alerts.manager().counters().failed, 0u);
}

TEST(AlertsHttpTest, AServerErrorIsRetried) {
  Receiver receiver;
  receiver.Answer({500, 503});
  Alerts alerts(Options(receiver.url()));
  alerts.Step(Accuracy(0.5));
  const std::vector<ReceivedRequest> got = receiver.WaitFor(3);
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].body, got[2].body);
  alerts.manager().Stop();
  const AlertDeliveryCounters c = alerts.manager().counters();
  EXPECT_EQ(c.sent, 1u);
  EXPECT_EQ(c.retries, 2u);
  EXPECT_EQ(c.failed, 0u);
}

TEST(AlertsHttpTest, AFlappingAlertIsRateLimited) {
  Receiver receiver;
  AlertOptions o = Options(receiver.url());
  o.min_interval_seconds = 3600;
  Alerts alerts(o);
  for (int i = 0; i < 3; ++i) {
    alerts.Step(Accuracy(0.5));  // fires (only the first time is told)
    alerts.Step(Accuracy(0.9));  // resolves (only the first time is told)
  }
  alerts.manager().Stop();  // delivers what is queued
  const std::vector<ReceivedRequest> got = receiver.WaitFor(2, std::chrono::seconds(1));
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_THAT(got[0].body, HasSubstr(R"("state":"firing")"));
  EXPECT_THAT(got[1].body, HasSubstr(R"("state":"resolved")"));
  EXPECT_EQ(alerts.manager().counters().rate_limited, 2u);
  EXPECT_EQ(alerts.manager().counters().sent, 2u);
}

TEST(AlertsHttpTest, AReceiverThatIsDownFailsWithoutSlowingTheEvaluation) {
  int port = 0;
  {
    Receiver gone;  // a port that was just free, closed again
    port = gone.port();
  }
  for (const char* scheme : {"http", "https"}) {
    AlertOptions o = Options(absl::StrFormat("%s://127.0.0.1:%d/hook", scheme, port));
    o.max_attempts = 3;
    Alerts alerts(o);
    EXPECT_LT(alerts.Step(Accuracy(0.5)), std::chrono::milliseconds(100)) << scheme;
    alerts.manager().Stop();
    const AlertDeliveryCounters c = alerts.manager().counters();
    EXPECT_EQ(c.sent, 0u) << scheme;
    EXPECT_EQ(c.failed, 1u) << scheme;
    EXPECT_EQ(c.retries, 2u) << scheme;
  }
}

// `riffle serve` end to end: a model learning labels it cannot predict (random ones) has a
// rolling accuracy near 0.5; the rule "below 0.9" fires and the receiver gets the alert.
TEST(AlertsServeTest, RunServerPostsAnAlertCausedByLiveTraffic) {
  Receiver receiver;
  ScopedTempDir dir;
  absl::StatusOr<ServeConfig> parsed =
      ParseServeConfig(absl::StrFormat(R"(
listen: 127.0.0.1:0
ready_file: %s
models:
  - name: credit
    spec: {learner: logreg, classes: ["0", "1"], metrics_window: 50}
alerts:
  webhook: %s
  evaluate_every_seconds: 1
  backoff_seconds: 0.05
  rules:
    - name: credit-accuracy
      kind: metric
      metric: accuracy
      model: credit
      below: 0.9
      description: "Labels look random: check the label feed."
)",
                                       dir.File("ready"), receiver.url()),
                       "riffle.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  std::atomic<bool> stop{false};
  absl::Status result = absl::UnknownError("not finished");
  std::thread serve(
      [&] { result = RunServer(*parsed, NullLogger(), &stop, checkpoints::DefaultEnv()); });
  std::string address;
  for (int i = 0; i < 400 && address.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(dir.File("ready"));
    std::getline(in, address);
  }
  ASSERT_FALSE(address.empty());

  auto stub = v1::InferenceService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::mt19937_64 rng(7);
  v1::LearnRequest learn;
  learn.set_model("credit");
  for (int i = 0; i < 200; ++i) {
    v1::LabeledInstance* e = learn.add_examples();
    (*e->mutable_instance()->mutable_features())["x"].set_number(static_cast<double>(rng() % 100));
    e->mutable_label()->set_class_name(rng() % 2 == 0 ? "0" : "1");
  }
  grpc::ClientContext context;
  v1::LearnResponse learned;
  ASSERT_TRUE(stub->Learn(&context, learn, &learned).ok());
  EXPECT_EQ(learned.learned(), 200u);

  const std::vector<ReceivedRequest> got = receiver.WaitFor(1);
  stop = true;
  serve.join();
  ASSERT_TRUE(result.ok()) << result;
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(
      got[0].body,
      HasSubstr(R"("text":"[FIRING] credit-accuracy: rolling accuracy of model 'credit' )"));
  EXPECT_THAT(got[0].body, HasSubstr(R"(below 0.9\nLabels look random: check the label feed.")"));
  EXPECT_THAT(got[0].body, HasSubstr(R"("model":"credit","state":"firing")"));
}

}  // namespace
}  // namespace riffle::service
