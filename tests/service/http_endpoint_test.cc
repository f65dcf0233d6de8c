// The HTTP endpoint over real HTTP on loopback: /metrics values against known traffic,
// /healthz, /readyz following the gRPC server's health, 404s, and `riffle serve` wiring. The
// dashboard's routes: tests/service/dashboard_test.cc.

#include "service/http_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "../checkpoints/checkpoint_testing.h"
#include "service/metrics_sources.h"
#include "service/serve_command.h"
#include "service/server.h"
#include "service_testing.h"

// Last: httplib.h includes <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>  // NOLINT(build/include_order)

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::SeparableStream;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Keeps what is logged, for checks.
class RecordingLogger : public Logger {
 public:
  void Log(LogLevel level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(absl::StrFormat("%d %s", static_cast<int>(level), message));
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// A parsed exposition: sample ("name{labels}" exactly as written) -> value. Fails the test if
// a line is malformed, a sample's family has no # TYPE before it, or a sample repeats.
std::map<std::string, double> Parse(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(typed.insert(name).second) << "TYPE twice: " << line;
      if (type == "counter") {
        EXPECT_THAT(name, ::testing::EndsWith("_total"));
      }
      continue;
    }
    const std::size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space);
    const std::string name = key.substr(0, key.find('{'));
    bool known = typed.count(name) > 0;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s(suffix);
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        known = known || typed.count(name.substr(0, name.size() - s.size())) > 0;
      }
    }
    EXPECT_TRUE(known) << "no # TYPE for " << line;
    const std::string value = line.substr(space + 1);
    double v = 0;
    if (value == "+Inf") {
      v = INFINITY;
    } else if (value == "-Inf") {
      v = -INFINITY;
    } else if (value == "NaN") {
      v = NAN;
    } else {
      std::size_t used = 0;
      v = std::stod(value, &used);
      EXPECT_EQ(used, value.size()) << line;
    }
    EXPECT_TRUE(samples.emplace(key, v).second) << "sample twice: " << line;
  }
  return samples;
}

httplib::Result Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  return client.Get(path);
}

HttpEndpointOptions Loopback() {
  HttpEndpointOptions o;
  o.listen = "127.0.0.1:0";
  return o;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(HttpEndpointTest, ListensOnAFreePortAndReportsIt) {
  MetricsCollector collector(NullLogger());
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> e =
      HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, NullLogger());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_GT((*e)->port(), 0);
  EXPECT_EQ((*e)->address(), absl::StrFormat("127.0.0.1:%d", (*e)->port()));
  httplib::Result r = Get((*e)->port(), "/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  (*e)->Stop();
  (*e)->Stop();                                 // idempotent
  EXPECT_FALSE(Get((*e)->port(), "/healthz"));  // nothing listens any more
}

TEST(HttpEndpointTest, AnythingElseIsNotFound) {
  MetricsCollector collector(NullLogger());
  // Without a dashboard, its routes are not served either.
  auto e = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, NullLogger());
  ASSERT_TRUE(e.ok()) << e.status();
  for (const char* path :
       {"/", "/metric", "/metrics/x", "/healthz/", "/admin", "/dashboard/", "/api/v1/dashboard"}) {
    httplib::Result r = Get((*e)->port(), path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body, absl::StrFormat("not found: %s (this endpoint serves /metrics, /healthz "
                                       "and /readyz)\n",
                                       path))
        << path;
  }
  httplib::Client client("127.0.0.1", (*e)->port());
  httplib::Result post = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  // A query string does not change the route.
  httplib::Result q = Get((*e)->port(), "/healthz?verbose=1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->status, 200);
}

TEST(HttpEndpointTest, InvalidOrBusyAddressesAreErrors) {
  for (const char* listen :
       {"nocolon", ":9464", "127.0.0.1:", "127.0.0.1:http", "h:70000", "h:-1", "[]:1"}) {
    HttpEndpointOptions o;
    o.listen = listen;
    EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument) << listen;
    EXPECT_THAT(std::string(o.Validate().message()), StartsWith("http.listen: ")) << listen;
    MetricsCollector collector(NullLogger());
    EXPECT_EQ(HttpEndpoint::Start(o, &collector, nullptr, nullptr, NullLogger()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << listen;
  }
  EXPECT_TRUE(HttpEndpointOptions().Validate().ok());  // "" = off
  HttpEndpointOptions ipv6;
  ipv6.listen = "[::1]:0";
  EXPECT_TRUE(ipv6.Validate().ok());

  // A port in use fails (no SO_REUSEPORT: two servers never silently share a port).
  MetricsCollector collector(NullLogger());
  auto first = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, NullLogger());
  ASSERT_TRUE(first.ok());
  HttpEndpointOptions same;
  same.listen = (*first)->address();
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> second =
      HttpEndpoint::Start(same, &collector, nullptr, nullptr, NullLogger());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen on " + same.listen));
}

TEST(HttpEndpointTest, ReadyzFollowsTheGrpcServersHealth) {
  RegistryOptions registry_options;
  registry_options.env = checkpoints::DefaultEnv();
  ModelRegistry registry(registry_options);
  std::atomic<RiffleServer*> grpc{nullptr};
  MetricsCollector collector(NullLogger());
  auto e = HttpEndpoint::Start(
      Loopback(), &collector, nullptr,
      [&grpc]() -> absl::Status {
        const RiffleServer* s = grpc.load();
        if (s == nullptr) return absl::UnavailableError("the gRPC server has not started");
        if (!s->serving()) return absl::UnavailableError("the gRPC server is shutting down");
        return absl::OkStatus();
      },
      NullLogger());
  ASSERT_TRUE(e.ok()) << e.status();
  const int port = (*e)->port();

  httplib::Result before = Get(port, "/readyz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 503);
  EXPECT_EQ(before->body, "not ready: the gRPC server has not started\n");
  EXPECT_EQ(Get(port, "/healthz")->status, 200);  // alive all the same

  ServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<RiffleServer>> server =
      RiffleServer::Start(server_options, &registry, NullLogger(), checkpoints::DefaultEnv());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->serving());
  grpc = server->get();
  httplib::Result serving = Get(port, "/readyz");
  ASSERT_TRUE(serving);
  EXPECT_EQ(serving->status, 200);
  EXPECT_EQ(serving->body, "ready\n");

  (*server)->Shutdown(std::chrono::milliseconds(0));
  EXPECT_FALSE((*server)->serving());
  httplib::Result stopping = Get(port, "/readyz");
  ASSERT_TRUE(stopping);
  EXPECT_EQ(stopping->status, 503);
  EXPECT_EQ(stopping->body, "not ready: the gRPC server is shutting down\n");
  (*e)->Stop();
}

// Known traffic through ServedModel, then one scrape over HTTP: every value read back equals
// what the model reports (and the hand-countable ones equal the counts).
TEST(HttpEndpointTest, MetricsReportKnownTraffic) {
  ScopedTempDir dir;
  FakeClockEnv env;
  RegistryOptions registry_options;
  registry_options.env = &env;
  registry_options.checkpoint_dir = dir.path();
  ModelRegistry registry(registry_options);
  absl::StatusOr<std::shared_ptr<ServedModel>> created = registry.Create("fraud", LogregSpec());
  ASSERT_TRUE(created.ok()) << created.status();
  ServedModel& model = **created;

  // 3 Predict calls: 4 instances, 3 of them with ids (cached for a learn by id).
  SeparableStream stream(7);
  std::string label;
  std::vector<features::NamedFeature> f1 = stream.Next(&label);
  std::vector<features::NamedFeature> f2 = stream.Next(&label);
  PredictBatchResult p;
  std::vector<InstanceView> batch = {{"evt-1", f1}, {"evt-2", f2}};
  ASSERT_TRUE(model.Predict(batch, &p).ok());
  std::vector<InstanceView> one = {{"evt-3", f1}};
  ASSERT_TRUE(model.Predict(one, &p).ok());
  std::vector<InstanceView> anonymous = {{"", f2}};
  ASSERT_TRUE(model.Predict(anonymous, &p).ok());

  // 4 Learn calls: 20 + 30 labeled examples, 1 by id (hit), 1 by an unknown id (miss).
  for (int n : {20, 30}) {
    std::vector<std::vector<features::NamedFeature>> rows(n);
    std::vector<std::string> labels(n);
    for (int i = 0; i < n; ++i) rows[i] = stream.Next(&labels[i]);
    std::vector<ExampleView> examples;
    examples.reserve(n);
    for (int i = 0; i < n; ++i) examples.push_back({{"", rows[i]}, labels[i], 1.0, false});
    LearnBatchResult r;
    ASSERT_TRUE(model.Learn(examples, false, &r).ok());
  }
  std::vector<ExampleView> hit = {{{"evt-1", {}}, "1", 1.0, true}};
  std::vector<ExampleView> miss = {{{"evt-404", {}}, "0", 1.0, true}};
  LearnBatchResult r;
  ASSERT_TRUE(model.Learn(hit, false, &r).ok());
  ASSERT_TRUE(model.Learn(miss, false, &r).ok());
  env.Advance(3'000'000);  // 3 s since the model's first checkpoint

  ModelMetricsSource models(&registry, &env);
  ProcessMetricsSource process;
  RecordingLogger logger;
  MetricsCollector collector(&logger);
  collector.AddSource(&models);
  collector.AddSource(&process);
  collector.AddSource(&models);  // no effect: added once
  auto e = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, &logger);
  ASSERT_TRUE(e.ok()) << e.status();
  httplib::Result scrape = Get((*e)->port(), "/metrics");
  ASSERT_TRUE(scrape) << httplib::to_string(scrape.error());
  EXPECT_EQ(scrape->status, 200);
  EXPECT_EQ(scrape->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::map<std::string, double> v = Parse(scrape->body);
  const ModelMetricsReport m = model.Metrics();
  const ModelInfo info = model.Info();
  auto at = [&](const std::string& key) {
    auto it = v.find(key);
    EXPECT_NE(it, v.end()) << key << " missing from\n" << scrape->body;
    return it == v.end() ? NAN : it->second;
  };

  EXPECT_EQ(at("riffle_models"), 1);
  EXPECT_EQ(at(R"(riffle_model_info{model="fraud",learner="logreg"})"), 1);
  // Counts by hand: 4 instances predicted; 20 + 30 + 1 (the hit) learned; the miss learns
  // nothing. Every prediction is an unlabeled event, every learned example a labeled one.
  EXPECT_EQ(at(R"(riffle_model_predictions_total{model="fraud"})"), 4);
  EXPECT_EQ(at(R"(riffle_model_labeled_events_total{model="fraud"})"), 51);
  EXPECT_EQ(at(R"(riffle_model_labeled_events_total{model="fraud"})"), m.labeled);
  EXPECT_EQ(at(R"(riffle_model_unlabeled_events_total{model="fraud"})"), m.unlabeled);
  EXPECT_EQ(at(R"(riffle_model_events_total{model="fraud"})"), m.events);
  EXPECT_EQ(at(R"(riffle_model_label_cache_hits_total{model="fraud"})"), 1);
  EXPECT_EQ(at(R"(riffle_model_label_cache_misses_total{model="fraud"})"), 1);
  EXPECT_EQ(at(R"(riffle_model_label_cache_evictions_total{model="fraud"})"), 0);
  EXPECT_EQ(at(R"(riffle_model_label_cache_entries{model="fraud"})"), 2);  // evt-2, evt-3
  EXPECT_EQ(at(R"(riffle_model_label_cache_bytes{model="fraud"})"), m.label_cache.bytes);
  EXPECT_EQ(at(R"(riffle_model_classes{model="fraud"})"), 2);
  EXPECT_EQ(at(R"(riffle_model_metrics_window{model="fraud"})"), m.window);

  // The prequential metrics, exactly (the shortest decimal form reads back bit for bit).
  for (const auto& [window, values] :
       {std::pair{"cumulative", m.cumulative}, std::pair{"rolling", m.rolling}}) {
    const std::string labels = absl::StrFormat(R"({model="fraud",window="%s"})", window);
    EXPECT_EQ(at("riffle_model_scored_examples" + labels), values.count) << window;
    EXPECT_EQ(at("riffle_model_accuracy" + labels), values.accuracy) << window;
    EXPECT_EQ(at("riffle_model_log_loss" + labels), values.log_loss) << window;
    EXPECT_EQ(at("riffle_model_macro_f1" + labels), values.macro_f1) << window;
    ASSERT_TRUE(values.roc_auc.has_value()) << window;  // binary, both classes scored
    EXPECT_EQ(at("riffle_model_roc_auc" + labels), *values.roc_auc) << window;
    EXPECT_EQ(at("riffle_model_precision" + labels), *values.precision) << window;
    EXPECT_EQ(at("riffle_model_recall" + labels), *values.recall) << window;
    EXPECT_EQ(at("riffle_model_f1" + labels), *values.f1) << window;
  }
  EXPECT_EQ(at(R"(riffle_model_scored_examples{model="fraud",window="cumulative"})"), 51);
  EXPECT_GT(at(R"(riffle_model_accuracy{model="fraud",window="cumulative"})"), 0.5);

  // Latency histograms: one observation per call (3 predicts, 4 learns), cumulative buckets.
  for (const auto& [kind, calls] : {std::pair{"predict", 3}, std::pair{"learn", 4}}) {
    const std::string name = absl::StrFormat("riffle_model_%s_latency_seconds", kind);
    EXPECT_EQ(at(name + R"(_count{model="fraud"})"), calls);
    EXPECT_EQ(at(name + R"(_bucket{model="fraud",le="+Inf"})"), calls);
    EXPECT_GT(at(name + R"(_sum{model="fraud"})"), 0);
    double previous = 0;
    for (double bound : LatencyBucketBoundsSeconds()) {
      const double count = at(
          absl::StrFormat(R"(%s_bucket{model="fraud",le="%s"})", name, FormatMetricValue(bound)));
      EXPECT_GE(count, previous) << name << " le=" << bound;
      previous = count;
    }
    EXPECT_EQ(at(name + R"(_bucket{model="fraud",le="10"})"), calls);  // none took 10 s
  }

  EXPECT_EQ(at(R"(riffle_model_memory_bytes{model="fraud"})"), info.memory_bytes);
  EXPECT_GT(info.memory_bytes, 0u);
  EXPECT_EQ(at(R"(riffle_model_version{model="fraud"})"), 1);
  EXPECT_EQ(at(R"(riffle_model_checkpoint_generation{model="fraud"})"), 1);
  EXPECT_EQ(at(R"(riffle_model_checkpoints_written_total{model="fraud"})"), 1);
  EXPECT_EQ(at(R"(riffle_model_checkpoint_failures_total{model="fraud"})"), 0);
  EXPECT_EQ(at(R"(riffle_model_last_checkpoint_timestamp_seconds{model="fraud"})"), 1.7e9);
  EXPECT_EQ(at(R"(riffle_model_seconds_since_last_checkpoint{model="fraud"})"), 3);

  EXPECT_GT(at("process_resident_memory_bytes"), 0);
  EXPECT_GT(at("process_open_fds"), 0);
  EXPECT_GT(at("process_start_time_seconds"), 1.6e9);
  EXPECT_GE(at("process_cpu_seconds_total"), 0);

  // The same scrape as text, in process, for the same state.
  EXPECT_EQ(Parse(WriteTextExposition(collector.Collect())).size(), v.size());
  EXPECT_TRUE(logger.lines().empty());
}

// A source of another component (the Kafka pipeline, say): added to and removed from the
// collector while the endpoint serves; a sample it gets wrong is left out and logged once, the
// rest is served.
class FakeKafkaSource : public MetricsSource {
 public:
  void Collect(MetricFamilies* out) override {
    ++collected;
    out->AddCounter("riffle_kafka_messages_consumed_total", "Messages consumed.",
                    {{"topic", "payments \"eu\""}, {"partition", "0"}}, 42);
    out->AddCounter("riffle_kafka_lag", "Wrongly a counter without _total.", {}, 7);
  }
  std::atomic<int> collected{0};
};

TEST(HttpEndpointTest, OtherSourcesContributeAndCanBeRemoved) {
  RecordingLogger logger;
  MetricsCollector collector(&logger);
  auto e = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, &logger);
  ASSERT_TRUE(e.ok());
  FakeKafkaSource kafka;
  collector.AddSource(&kafka);
  for (int i = 0; i < 2; ++i) {
    httplib::Result r = Get((*e)->port(), "/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->body, HasSubstr("# TYPE riffle_kafka_messages_consumed_total counter\n"
                                   "riffle_kafka_messages_consumed_total{topic=\"payments "
                                   "\\\"eu\\\"\",partition=\"0\"} 42\n"));
    EXPECT_THAT(r->body, Not(HasSubstr("riffle_kafka_lag")));
  }
  EXPECT_EQ(kafka.collected.load(), 2);
  // Logged once, not at every scrape.
  EXPECT_THAT(logger.lines(),
              ::testing::ElementsAre(HasSubstr(
                  "metrics: sample left out: riffle_kafka_lag: counter names end in _total")));
  collector.RemoveSource(&kafka);
  httplib::Result r = Get((*e)->port(), "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(kafka.collected.load(), 2);
}

// Scrapes while the model learns and predicts: they neither fail nor stop the traffic.
TEST(HttpEndpointTest, ScrapingDuringTrafficIsConsistent) {
  RegistryOptions registry_options;
  registry_options.env = checkpoints::DefaultEnv();
  ModelRegistry registry(registry_options);
  auto created = registry.Create("m", LogregSpec());
  ASSERT_TRUE(created.ok());
  ModelMetricsSource models(&registry, checkpoints::DefaultEnv());
  MetricsCollector collector(NullLogger());
  collector.AddSource(&models);
  auto e = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, NullLogger());
  ASSERT_TRUE(e.ok());
  std::atomic<bool> done{false};
  std::thread traffic([&] {
    SeparableStream stream(3);
    for (int i = 0; i < 2000; ++i) {
      std::string label;
      std::vector<features::NamedFeature> f = stream.Next(&label);
      ExampleView ex{{"", f}, label, 1.0, false};
      LearnBatchResult r;
      PredictBatchResult p;
      InstanceView in{"", f};
      if (!(*created)->Learn({&ex, 1}, false, &r).ok() || !(*created)->Predict({&in, 1}, &p).ok()) {
        ADD_FAILURE() << "traffic failed at " << i;
        break;
      }
    }
    done = true;
  });
  double previous = 0;
  int scrapes = 0;
  while ((!done.load() || scrapes == 0) && scrapes < 10000) {
    httplib::Result r = Get((*e)->port(), "/metrics");
    if (!r) {
      ADD_FAILURE() << httplib::to_string(r.error());
      break;
    }
    const std::map<std::string, double> v = Parse(r->body);
    const double labeled = v.at(R"(riffle_model_labeled_events_total{model="m"})");
    EXPECT_GE(labeled, previous);  // a counter never goes back
    previous = labeled;
    // The histogram's buckets are cumulative and end at _count, also mid-traffic.
    EXPECT_EQ(v.at(R"(riffle_model_learn_latency_seconds_bucket{model="m",le="+Inf"})"),
              v.at(R"(riffle_model_learn_latency_seconds_count{model="m"})"));
    ++scrapes;
  }
  traffic.join();
  EXPECT_GT(scrapes, 0);
  const std::map<std::string, double> last = Parse(WriteTextExposition(collector.Collect()));
  EXPECT_EQ(last.at(R"(riffle_model_labeled_events_total{model="m"})"), 2000);
  EXPECT_EQ(last.at(R"(riffle_model_predictions_total{model="m"})"), 2000);
}

// `riffle serve`'s RunServer with the endpoint on: it serves once the ready files are written,
// answers /readyz and the dashboard, leaves the gRPC ready file's format alone, and stops with
// the server.
TEST(HttpEndpointTest, RunServerServesTheEndpointUntilStopped) {
  ScopedTempDir dir;
  ServeConfig config;
  config.server.listen = "127.0.0.1:0";
  config.ready_file = dir.File("ready");
  config.http.listen = "127.0.0.1:0";
  config.http_ready_file = dir.File("http_ready");
  DeclaredModel declared;
  declared.name = "credit";
  declared.spec = LogregSpec();
  config.models.push_back(declared);
  ASSERT_TRUE(config.Validate().ok());

  std::atomic<bool> stop{false};
  absl::Status result = absl::UnknownError("not finished");
  std::thread serve(
      [&] { result = RunServer(config, NullLogger(), &stop, checkpoints::DefaultEnv()); });
  std::string grpc_address;
  for (int i = 0; i < 400 && grpc_address.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    grpc_address = Slurp(config.ready_file);
  }
  ASSERT_THAT(grpc_address, ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+\n"));
  // Written before the gRPC ready file, so it is there already.
  const std::string http_address = Slurp(config.http_ready_file);
  ASSERT_THAT(http_address, ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+\n"));
  EXPECT_NE(http_address, grpc_address);
  const int port = std::stoi(http_address.substr(http_address.rfind(':') + 1));

  httplib::Result ready = Get(port, "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  httplib::Result metrics = Get(port, "/metrics");
  ASSERT_TRUE(metrics);
  const std::map<std::string, double> v = Parse(metrics->body);
  EXPECT_EQ(v.at("riffle_models"), 1);
  EXPECT_EQ(v.at(R"(riffle_model_labeled_events_total{model="credit"})"), 0);
  EXPECT_EQ(v.count("process_resident_memory_bytes"), 1u);
  // The dashboard, on the same port: its page, and the history sampled from the start.
  httplib::Result root = Get(port, "/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(root->get_header_value("Location"), "/dashboard/");
  httplib::Result page = Get(port, "/dashboard/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  httplib::Result data = Get(port, "/api/v1/dashboard");
  ASSERT_TRUE(data);
  EXPECT_EQ(data->status, 200);
  EXPECT_THAT(data->body, HasSubstr(R"("models":[{"name":"credit","learner":"logreg",)"));

  stop = true;
  serve.join();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_FALSE(Get(port, "/healthz"));
}

TEST(HttpEndpointTest, RunServerFailsCleanlyWhenTheHttpPortIsTaken) {
  MetricsCollector collector(NullLogger());
  auto taken = HttpEndpoint::Start(Loopback(), &collector, nullptr, nullptr, NullLogger());
  ASSERT_TRUE(taken.ok());
  ScopedTempDir dir;
  ServeConfig config;
  config.server.listen = "127.0.0.1:0";
  config.ready_file = dir.File("ready");
  config.http.listen = (*taken)->address();
  std::atomic<bool> stop{false};
  const absl::Status s = RunServer(config, NullLogger(), &stop, checkpoints::DefaultEnv());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("http.listen: cannot listen on " + config.http.listen));
  EXPECT_EQ(Slurp(config.ready_file), "");  // never announced as ready
}

}  // namespace
}  // namespace riffle::service
