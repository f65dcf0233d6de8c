#include "service/status_command.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../checkpoints/checkpoint_testing.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "service/model_registry.h"
#include "service/server.h"
#include "tests/service/cli_testing.h"
#include "tests/service/service_testing.h"

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;
using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::RunRiffle;
using ::testing::HasSubstr;
using ::testing::Not;

// The rows of `text` that start with the model name `name`: one per table.
std::vector<std::vector<std::string>> RowsOf(const std::string& text, const std::string& name) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!cells.empty() && cells[0] == name) rows.push_back(std::move(cells));
  }
  return rows;
}

// The JSON checks read the output through protobuf's Struct. Under ThreadSanitizer a lookup
// in a Struct that Debian's (uninstrumented) libprotobuf filled crashes in Map's hash table
// (a known limit of Debian's libprotobuf under TSan), so those checks are skipped there; they
// run in the release and ASan builds.
#if defined(__SANITIZE_THREAD__)
constexpr bool kStructLookupsWork = false;
#else
constexpr bool kStructLookupsWork = true;
#endif

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct out;
  auto s = google::protobuf::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(s.ok()) << s << " in " << json;
  return out;
}

const google::protobuf::Value& Field(const google::protobuf::Struct& s, const std::string& name) {
  static const google::protobuf::Value* const kMissing = new google::protobuf::Value();
  auto it = s.fields().find(name);
  EXPECT_NE(it, s.fields().end()) << name;
  return it == s.fields().end() ? *kMissing : it->second;
}

// What stdio wrote to a temporary file.
std::string Contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) out.append(buffer, n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting, from hand-built snapshots

TEST(StatusFormatTest, HumanizesNumbers) {
  EXPECT_EQ(HumanCount(0), "0");
  EXPECT_EQ(HumanCount(999), "999");
  EXPECT_EQ(HumanCount(1000), "1.0k");
  EXPECT_EQ(HumanCount(1'234'567), "1.2M");
  EXPECT_EQ(HumanCount(999'949), "999.9k");
  EXPECT_EQ(HumanCount(999'950), "1.0M");  // 999.95k would print as 1000.0k
  EXPECT_EQ(HumanCount(2'000'000'000), "2.0G");
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");           // 1536 / 1024
  EXPECT_EQ(HumanBytes(36'805'018), "35.1 MiB");    // 35.1 * 1024^2 = 36805017.6
  EXPECT_EQ(HumanBytes((1 << 20) - 1), "1.0 MiB");  // 1023.999 KiB
  EXPECT_EQ(HumanLatency(85e-6), "85.0us");
  EXPECT_EQ(HumanLatency(0.0012), "1.2ms");
  EXPECT_EQ(HumanLatency(2.5), "2.50s");
  EXPECT_EQ(HumanAge(42), "42s");
  EXPECT_EQ(HumanAge(307), "5m07s");      // 5 * 60 + 7
  EXPECT_EQ(HumanAge(10'920), "3h02m");   // 3 * 3600 + 2 * 60
  EXPECT_EQ(HumanAge(187'200), "2d04h");  // 2 * 86400 + 4 * 3600
  EXPECT_EQ(HumanAge(-5), "0s");
}

constexpr std::int64_t kNow = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

// A busy binary model with a 16-character name and the longest learner name, and a new
// multiclass model with nothing scored yet.
ServerStatus HandBuiltStatus() {
  ServerStatus s;
  s.target = "10.0.0.7:50051";
  s.health = HealthState::kServing;
  s.fetched_micros = kNow;

  ModelStatus busy;
  v1::Model& m = busy.model;
  m.set_name("card-fraud-eu-v2");
  m.mutable_spec()->set_learner("hoeffding_adaptive_tree");
  m.set_version(3);
  m.set_generation(12);
  m.add_classes("0");
  m.add_classes("1");
  m.set_events(1'234'567);
  m.set_labeled(1'200'000);
  m.set_unlabeled(34'567);
  m.set_memory_bytes(36'805'018);
  m.mutable_last_checkpoint()->set_seconds(kNow / 1'000'000 - 125);  // 2m05s ago
  v1::ModelMetrics& x = busy.metrics;
  x.mutable_rolling()->set_accuracy(0.95);
  x.mutable_rolling()->set_log_loss(0.1234);
  x.mutable_rolling()->set_roc_auc(0.9876);
  x.mutable_rolling()->set_count(1000);
  x.mutable_cumulative()->set_accuracy(0.9512);
  x.mutable_cumulative()->set_log_loss(0.15);
  x.mutable_cumulative()->set_roc_auc(0.97);
  x.mutable_cumulative()->set_count(1'200'000);
  x.set_window(1000);
  x.set_label_cache_hits(120'000);
  x.set_label_cache_misses(3);
  x.mutable_predict_latency()->set_p50_seconds(85e-6);
  x.mutable_predict_latency()->set_p99_seconds(0.0012);
  x.mutable_predict_latency()->set_count(10);
  busy.kafka = HealthState::kServing;

  ModelStatus fresh;
  fresh.model.set_name("churn");
  fresh.model.mutable_spec()->set_learner("logreg");
  fresh.model.set_version(1);
  for (const char* c : {"a", "b", "c"}) fresh.model.add_classes(c);
  fresh.model.set_memory_bytes(512);
  fresh.kafka = HealthState::kNotFound;

  s.models = {busy, fresh};
  return s;
}

TEST(StatusFormatTest, TablesShowEveryValueHumanized) {
  const std::string text = FormatStatusText(HandBuiltStatus());
  EXPECT_THAT(text, HasSubstr("10.0.0.7:50051  health SERVING  2 models  2023-11-14T22:13:20Z\n"));
  using Row = std::vector<std::string>;
  const std::vector<Row> busy = RowsOf(text, "card-fraud-eu-v2");
  ASSERT_EQ(busy.size(), 3u) << text;
  EXPECT_EQ(busy[0], (Row{"card-fraud-eu-v2", "hoeffding_adaptive_tree", "3", "12", "2", "35.1",
                          "MiB", "2m05s", "SERVING"}));
  EXPECT_EQ(busy[1],
            (Row{"card-fraud-eu-v2", "1.2M", "1.2M", "34.6k", "120.0k", "3", "85.0us", "1.2ms"}));
  EXPECT_EQ(busy[2],
            (Row{"card-fraud-eu-v2", "0.9500", "0.9512", "0.1234", "0.1500", "0.9876", "0.9700"}));
  const std::vector<Row> fresh = RowsOf(text, "churn");
  ASSERT_EQ(fresh.size(), 3u) << text;
  EXPECT_EQ(fresh[0], (Row{"churn", "logreg", "1", "0", "3", "512", "B", "never", "-"}));
  EXPECT_EQ(fresh[1], (Row{"churn", "0", "0", "0", "0", "0", "-", "-"}));
  EXPECT_EQ(fresh[2], (Row{"churn", "-", "-", "-", "-", "-", "-"}));
  // Operators' terminals: 100 columns for names up to 16 characters, even with the longest
  // learner name; numbers right-aligned under their header.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
    EXPECT_EQ(line.find_last_not_of(' ') + 1, line.size()) << "trailing space: " << line;
  }
  EXPECT_THAT(text, HasSubstr("MODEL             LEARNER                  VER  GEN  CLASSES  "));
  EXPECT_THAT(text, HasSubstr("\nchurn             logreg                     1    0        3"));
}

TEST(StatusFormatTest, NoModels) {
  ServerStatus s;
  s.target = "127.0.0.1:50051";
  s.health = HealthState::kNotServing;
  s.fetched_micros = kNow;
  EXPECT_EQ(FormatStatusText(s),
            "127.0.0.1:50051  health NOT_SERVING  0 models  "
            "2023-11-14T22:13:20Z\n");
  EXPECT_EQ(FormatStatusJson(s),
            "{\"target\": \"127.0.0.1:50051\", \"time\": "
            "\"2023-11-14T22:13:20Z\", \"health\": \"NOT_SERVING\", "
            "\"models\": []}\n");
}

TEST(StatusFormatTest, JsonHasExactNumbersAndNulls) {
  if (!kStructLookupsWork) GTEST_SKIP() << "protobuf Struct lookups crash under TSan";
  const std::string json = FormatStatusJson(HandBuiltStatus());
  EXPECT_EQ(json.find('\n'), json.size() - 1) << "one line per snapshot";
  const google::protobuf::Struct root = ParseJson(json);
  EXPECT_EQ(Field(root, "health").string_value(), "SERVING");
  const auto& models = Field(root, "models").list_value().values();
  ASSERT_EQ(models.size(), 2);
  const google::protobuf::Struct& busy = models[0].struct_value();
  EXPECT_EQ(Field(busy, "name").string_value(), "card-fraud-eu-v2");
  EXPECT_EQ(Field(busy, "events").number_value(), 1'234'567);
  EXPECT_EQ(Field(busy, "labeled").number_value(), 1'200'000);
  EXPECT_EQ(Field(busy, "unlabeled").number_value(), 34'567);
  EXPECT_EQ(Field(busy, "memory_bytes").number_value(), 36'805'018);
  EXPECT_EQ(Field(busy, "classes").number_value(), 2);
  EXPECT_EQ(Field(busy, "generation").number_value(), 12);
  EXPECT_EQ(Field(busy, "checkpoint_age_seconds").number_value(), 125);
  EXPECT_EQ(Field(busy, "last_checkpoint").string_value(), "2023-11-14T22:11:15Z");
  EXPECT_EQ(Field(busy, "kafka").string_value(), "SERVING");
  const google::protobuf::Struct& rolling = Field(busy, "rolling").struct_value();
  EXPECT_EQ(Field(rolling, "accuracy").number_value(), 0.95);
  EXPECT_EQ(Field(rolling, "roc_auc").number_value(), 0.9876);
  EXPECT_EQ(Field(Field(busy, "label_cache").struct_value(), "hits").number_value(), 120'000);
  EXPECT_EQ(Field(Field(busy, "predict_latency").struct_value(), "p99_seconds").number_value(),
            0.0012);

  const google::protobuf::Struct& fresh = models[1].struct_value();
  EXPECT_TRUE(Field(fresh, "kafka").has_null_value());
  EXPECT_TRUE(Field(fresh, "last_checkpoint").has_null_value());
  EXPECT_TRUE(Field(Field(fresh, "cumulative").struct_value(), "accuracy").has_null_value());
  EXPECT_TRUE(Field(Field(fresh, "cumulative").struct_value(), "roc_auc").has_null_value());
  EXPECT_TRUE(
      Field(Field(fresh, "predict_latency").struct_value(), "p50_seconds").has_null_value());
}

TEST(StatusFormatTest, OptionsValidate) {
  StatusOptions o;
  EXPECT_THAT(o.Validate().message(), HasSubstr("--target"));
  o.target = "127.0.0.1:50051";
  EXPECT_TRUE(o.Validate().ok());
  for (double bad : {0.0, -1.0, std::nan("")}) {
    o.watch_seconds = bad;
    EXPECT_THAT(o.Validate().message(), HasSubstr("--watch")) << bad;
  }
  o.watch_seconds = 0.5;
  EXPECT_TRUE(o.Validate().ok());
}

// ---------------------------------------------------------------------------------------------
// Against a real server

// A real server on a loopback port, two models with known traffic, and the status client over
// a real channel. Server and client share a clock the test moves.
class StatusServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegistryOptions ro;
    ro.env = &env_;
    ro.checkpoint_dir = dir_.path();
    registry_ = std::make_unique<ModelRegistry>(ro);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<RiffleServer>> server =
        RiffleServer::Start(options, registry_.get(), NullLogger(), &env_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    target_ = "127.0.0.1:" + std::to_string(server_->port());
    channel_ = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
    models_ = v1::ModelService::NewStub(channel_);
    inference_ = v1::InferenceService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
  }

  void Create(const std::string& name, const v1::ModelSpec& spec) {
    grpc::ClientContext ctx;
    v1::CreateModelRequest req;
    req.set_name(name);
    *req.mutable_spec() = spec;
    v1::Model model;
    grpc::Status s = models_->CreateModel(&ctx, req, &model);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  static v1::Instance Instance(double x0, double x1, const std::string& id = "") {
    v1::Instance instance;
    instance.set_id(id);
    (*instance.mutable_features())["x0"].set_number(x0);
    (*instance.mutable_features())["x1"].set_number(x1);
    return instance;
  }

  // n examples of a deterministic stream; `label` names the class of (x0, x1).
  void Learn(const std::string& model, int n, std::string (*label)(double, double)) {
    v1::LearnRequest req;
    req.set_model(model);
    for (int i = 0; i < n; ++i) {
      const double x0 = ((i * 37) % 21 - 10) / 5.0, x1 = ((i * 11) % 17 - 8) / 4.0;
      v1::LabeledInstance* e = req.add_examples();
      *e->mutable_instance() = Instance(x0, x1);
      e->mutable_label()->set_class_name(label(x0, x1));
    }
    Send(req);
  }

  void Send(const v1::LearnRequest& req) {
    grpc::ClientContext ctx;
    v1::LearnResponse resp;
    grpc::Status s = inference_->Learn(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // "fraud" (binary, Kafka path NOT_SERVING): 40 examples learned, 5 predictions with ids, two
  // of them labeled later by id (cache hits) and one unknown id (a miss).
  // "churn" (three classes, no Kafka path): 25 examples learned, nothing else.
  void MakeTraffic() {
    Create("fraud", LogregSpec());
    v1::ModelSpec churn;
    churn.set_learner("logreg");
    Create("churn", churn);
    Learn("fraud", 40, [](double x0, double x1) -> std::string { return x0 + x1 > 0 ? "1" : "0"; });
    Learn("churn", 25, [](double x0, double x1) -> std::string {
      return x0 > 0.5 ? "a" : x1 > 0 ? "b" : "c";
    });
    v1::PredictRequest predict;
    predict.set_model("fraud");
    for (int i = 0; i < 5; ++i) *predict.add_instances() = Instance(i, -i, "p" + std::to_string(i));
    grpc::ClientContext ctx;
    v1::PredictResponse resp;
    ASSERT_TRUE(inference_->Predict(&ctx, predict, &resp).ok());
    v1::LearnRequest by_id;
    by_id.set_model("fraud");
    for (const char* id : {"p0", "p1", "gone"}) {
      v1::LabeledInstance* e = by_id.add_examples();
      e->mutable_instance()->set_id(id);
      e->mutable_label()->set_class_name("1");
    }
    Send(by_id);
    server_->SetHealth(KafkaHealthName("fraud"), false);
    env_.Advance(125'000'000);  // the checkpoints written at creation are 2m05s old
  }

  StatusClient Client() { return StatusClient(channel_, target_, "", absl::Seconds(3), &env_); }

  static std::string Fixed4(double v) { return absl::StrFormat("%.4f", v); }

  FakeClockEnv env_;
  ScopedTempDir dir_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<RiffleServer> server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
};

TEST_F(StatusServerTest, FetchesEveryModelAndFormatsItsCountsAndAccuracy) {
  MakeTraffic();
  absl::StatusOr<ServerStatus> status = Client().Fetch();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->health, HealthState::kServing);
  ASSERT_EQ(status->models.size(), 2u);
  EXPECT_EQ(status->models[0].model.name(), "churn");  // by name
  EXPECT_EQ(status->models[1].model.name(), "fraud");
  EXPECT_EQ(status->models[0].kafka, HealthState::kNotFound);
  EXPECT_EQ(status->models[1].kafka, HealthState::kNotServing);

  const std::string text = FormatStatusText(*status);
  EXPECT_THAT(text, HasSubstr(target_ + "  health SERVING  2 models  2023-11-14T22:15:25Z"));
  for (const char* name : {"fraud", "churn"}) {
    SCOPED_TRACE(name);
    // The registry's own view, read without gRPC, is the reference.
    absl::StatusOr<std::shared_ptr<ServedModel>> served = registry_->Get(name);
    ASSERT_TRUE(served.ok());
    const ModelInfo info = (*served)->Info();
    const ModelMetricsReport metrics = (*served)->Metrics();
    const auto rows = RowsOf(text, name);
    ASSERT_EQ(rows.size(), 3u) << text;
    // state: MODEL LEARNER VER GEN CLASSES MEMORY(2 cells) LAST-CKPT KAFKA
    EXPECT_EQ(rows[0][1], "logreg");
    EXPECT_EQ(rows[0][3], std::to_string(info.generation));
    EXPECT_EQ(rows[0][5] + " " + rows[0][6], HumanBytes(info.memory_bytes));
    EXPECT_EQ(rows[0][7], "2m05s");
    // traffic: MODEL EVENTS LABELED UNLABELED HITS MISSES P50 P99
    EXPECT_EQ(rows[1][1], std::to_string(info.events));
    EXPECT_EQ(rows[1][2], std::to_string(info.labeled));
    EXPECT_EQ(rows[1][3], std::to_string(info.unlabeled));
    // quality: MODEL ACC-ROLL ACC-CUM LOGLOSS-ROLL LOGLOSS-CUM AUC-ROLL AUC-CUM
    EXPECT_EQ(rows[2][1], Fixed4(metrics.rolling.accuracy));
    EXPECT_EQ(rows[2][2], Fixed4(metrics.cumulative.accuracy));
    EXPECT_EQ(rows[2][4], Fixed4(metrics.cumulative.log_loss));
  }
  // Hand-counted traffic (MakeTraffic).
  const auto fraud = RowsOf(text, "fraud");
  const auto churn = RowsOf(text, "churn");
  EXPECT_EQ(fraud[0][4], "2");  // classes
  EXPECT_EQ(churn[0][4], "3");
  EXPECT_EQ(fraud[0][8], "NOT_SERVING");
  EXPECT_EQ(churn[0][8], "-");
  EXPECT_EQ(fraud[1][2], "42");  // 40 learned with features + 2 by id
  EXPECT_EQ(fraud[1][4], "2");   // cache hits: p0, p1
  EXPECT_EQ(fraud[1][5], "1");   // cache miss: "gone"
  EXPECT_NE(fraud[1][6], "-");   // predict latency measured
  EXPECT_EQ(churn[1][1], "25");  // events
  EXPECT_EQ(churn[1][2], "25");  // labeled
  EXPECT_EQ(churn[1][3], "0");   // unlabeled
  EXPECT_EQ(churn[1][6], "-");   // never predicted
  EXPECT_NE(fraud[2][5], "-");   // binary: AUC
  EXPECT_EQ(churn[2][5], "-");   // multiclass: no AUC
  EXPECT_EQ(churn[2][6], "-");
}

TEST_F(StatusServerTest, JsonOfAFetchParsesAndHasTheNumbers) {
  if (!kStructLookupsWork) GTEST_SKIP() << "protobuf Struct lookups crash under TSan";
  MakeTraffic();
  absl::StatusOr<ServerStatus> status = Client().Fetch();
  ASSERT_TRUE(status.ok()) << status.status();
  const google::protobuf::Struct root = ParseJson(FormatStatusJson(*status));
  EXPECT_EQ(Field(root, "target").string_value(), target_);
  const auto& models = Field(root, "models").list_value().values();
  ASSERT_EQ(models.size(), 2);
  const google::protobuf::Struct& churn = models[0].struct_value();
  const google::protobuf::Struct& fraud = models[1].struct_value();
  EXPECT_EQ(Field(churn, "name").string_value(), "churn");
  EXPECT_EQ(Field(churn, "events").number_value(), 25);
  EXPECT_EQ(Field(churn, "labeled").number_value(), 25);
  EXPECT_EQ(Field(churn, "classes").number_value(), 3);
  EXPECT_TRUE(Field(churn, "kafka").has_null_value());
  EXPECT_EQ(Field(fraud, "kafka").string_value(), "NOT_SERVING");
  EXPECT_EQ(Field(fraud, "checkpoint_age_seconds").number_value(), 125);
  const google::protobuf::Struct& cache = Field(fraud, "label_cache").struct_value();
  EXPECT_EQ(Field(cache, "hits").number_value(), 2);
  EXPECT_EQ(Field(cache, "misses").number_value(), 1);
  const ModelMetricsReport metrics = (*registry_->Get("fraud"))->Metrics();
  const google::protobuf::Struct& cumulative = Field(fraud, "cumulative").struct_value();
  EXPECT_EQ(Field(cumulative, "accuracy").number_value(), metrics.cumulative.accuracy);
  EXPECT_EQ(Field(cumulative, "count").number_value(), metrics.cumulative.count);
  EXPECT_EQ(Field(fraud, "labeled").number_value(), 42);
}

TEST_F(StatusServerTest, RunPrintsOneSnapshotAndWatchRepeatsUntilStopped) {
  MakeTraffic();
  StatusOptions options;
  options.target = target_;
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  EXPECT_EQ(RunStatusCommand(options, nullptr, &env_, out, err), 0);
  std::string text = Contents(out);
  EXPECT_EQ(RowsOf(text, "fraud").size(), 3u) << text;
  EXPECT_EQ(Contents(err), "");
  std::fclose(out);

  // Not a terminal: plain repeated blocks, no escape sequences.
  for (bool json : {false, true}) {
    SCOPED_TRACE(json);
    out = std::tmpfile();
    options.watch_seconds = 0.05;
    options.json = json;
    std::atomic<bool> stop{false};
    int code = -1;
    std::thread watcher([&] { code = RunStatusCommand(options, &stop, &env_, out, err); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    stop = true;
    watcher.join();
    EXPECT_EQ(code, 0);
    text = Contents(out);
    EXPECT_THAT(text, Not(HasSubstr("\x1b")));
    const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
    int snapshots = 0;
    for (const std::string& line : lines) {
      snapshots += json ? line.rfind("{\"target\"", 0) == 0 : line.rfind(target_, 0) == 0;
    }
    EXPECT_GE(snapshots, 2) << text;
    std::fclose(out);
  }
  EXPECT_EQ(Contents(err), "");
  std::fclose(err);
}

TEST(StatusErrorTest, UnreachableTargetFailsFastWithAClearMessage) {
  StatusOptions options;
  options.target = "127.0.0.1:1";  // nothing listens on port 1
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(RunStatusCommand(options, nullptr, checkpoints::DefaultEnv(), out, err), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_THAT(Contents(err), HasSubstr("riffle status: cannot reach 127.0.0.1:1: "));
  EXPECT_EQ(Contents(out), "");
  std::fclose(out);
  std::fclose(err);
}

TEST(StatusErrorTest, SilentServerFailsAtTheCallDeadline) {
  // A socket that accepts connections (the kernel completes the handshake) but never speaks
  // HTTP/2: the call waits for its deadline, not forever.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string target = absl::StrFormat("127.0.0.1:%d", ntohs(addr.sin_port));

  StatusOptions options;
  options.target = target;
  options.call_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<StatusClient>> client =
      StatusClient::Create(options, checkpoints::DefaultEnv());
  ASSERT_TRUE(client.ok()) << client.status();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ServerStatus> status = (*client)->Fetch();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.status().message(), HasSubstr("cannot reach " + target + ": "));
  close(fd);
}

TEST(StatusErrorTest, UnreadableFilesAreErrorsNamingTheFlag) {
  StatusOptions options;
  options.target = "127.0.0.1:1";
  options.token_file = "/nonexistent/token";
  EXPECT_THAT(StatusClient::Create(options, checkpoints::DefaultEnv()).status().message(),
              HasSubstr("--token-file: "));
  options.token_file.clear();
  options.tls_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(StatusClient::Create(options, checkpoints::DefaultEnv()).status().message(),
              HasSubstr("--tls-ca: "));
}

// ---------------------------------------------------------------------------------------------
// The real binary

TEST(StatusCliTest, HelpExitsZero) {
  CommandResult r = RunRiffle("status --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* flag : {"--target", "--watch", "--token-file", "--tls-ca", "--json"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
}

TEST(StatusCliTest, UsageErrorsExitTwo) {
  for (const char* args : {"status", "status --target 127.0.0.1:1 --watch 0",
                           "status --target 127.0.0.1:1 --watch soon"}) {
    CommandResult r = RunRiffle(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
}

TEST(StatusCliTest, UnreachableTargetExitsOne) {
  CommandResult r = RunRiffle("status --target 127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("riffle status: cannot reach 127.0.0.1:1: "));
}

TEST_F(StatusServerTest, CliPrintsTheModelsOfALiveServer) {
  MakeTraffic();
  CommandResult r = RunRiffle("status --target " + target_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(RowsOf(r.output, "fraud").size(), 3u) << r.output;
  EXPECT_EQ(RowsOf(r.output, "churn").size(), 3u) << r.output;
  r = RunRiffle("status --json --target " + target_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (kStructLookupsWork) {
    EXPECT_EQ(Field(ParseJson(r.output), "models").list_value().values_size(), 2);
  }
}

}  // namespace
}  // namespace riffle::service
