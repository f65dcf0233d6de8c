// End-to-end tests of `riffle serve`: the real binary, real TCP, real files.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "../checkpoints/checkpoint_testing.h"
#include "checkpoints/env.h"
#include "checkpoints/model_checkpoint.h"
#include "cli_testing.h"
#include "features/tabular.h"
#include "riffle/v1/riffle.grpc.pb.h"

extern char** environ;

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;
using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::checkpoints::testing::WriteBytes;
using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::RiffleBinary;
using ::riffle::service::testing::RunRiffle;
using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `riffle serve` as a child process, its stderr in a file.
class ServerProcess {
 public:
  ServerProcess(const ScopedTempDir& dir, std::vector<std::string> args)
      : ready_(dir.File("ready")), log_(dir.File("serve.log")) {
    std::remove(ready_.c_str());
    const std::vector<std::string> head = {RiffleBinary(), "serve", "--ready-file", ready_};
    args.insert(args.begin(), head.begin(), head.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The address once serving; "" if the process exited or 20 s passed.
  std::string WaitReady() {
    for (int i = 0; i < 400; ++i) {
      std::string address = Slurp(ready_);
      if (!address.empty() && address.back() == '\n') {
        address.pop_back();
        return address;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return "";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "";
  }

  // Sends `signal` and returns the exit code.
  int Stop(int signal = SIGTERM) {
    if (pid_ > 0) {
      kill(pid_, signal);
      waitpid(pid_, &exit_status_, 0);
      pid_ = -1;
    }
    return WIFEXITED(exit_status_) ? WEXITSTATUS(exit_status_) : -1;
  }
  std::string Log() const { return Slurp(log_); }

 private:
  std::string ready_;
  std::string log_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

v1::Instance Instance(double x0, double x1) {
  v1::Instance i;
  (*i.mutable_features())["x0"].set_number(x0);
  (*i.mutable_features())["x1"].set_number(x1);
  return i;
}

TEST(RiffleServeCliTest, ServesLearnsAndRestoresAfterARestart) {
  ScopedTempDir dir;
  WriteBytes(dir.File("token"), "tok-123\n");
  WriteBytes(dir.File("riffle.yaml"), R"(
listen: 127.0.0.1:0
checkpoint: {dir: )" + dir.File("ckpt") + R"(, every_events: 0, every_seconds: 0}
log: {level: info, format: json}
security: {auth_token_file: )" + dir.File("token") +
                                          R"(}
models:
  - name: fraud
    spec: {learner: logreg, learner_options: {lr: 0.1}, classes: ["0", "1"]}
)");
  double p_before = 0;
  {
    ServerProcess server(dir, {"--config", dir.File("riffle.yaml")});
    const std::string address = server.WaitReady();
    ASSERT_FALSE(address.empty()) << server.Log();
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto inference = v1::InferenceService::NewStub(channel);
    v1::LearnRequest learn;
    learn.set_model("fraud");
    for (int i = 0; i < 300; ++i) {
      const double x0 = (i % 13 - 6) / 3.0, x1 = (i % 7 - 3) / 2.0;
      v1::LabeledInstance* e = learn.add_examples();
      *e->mutable_instance() = Instance(x0, x1);
      e->mutable_label()->set_class_name(x0 + x1 > 0 ? "1" : "0");
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok-123");
    v1::LearnResponse learned;
    ASSERT_TRUE(inference->Learn(&ctx, learn, &learned).ok());
    EXPECT_EQ(learned.learned(), 300u);
    v1::PredictRequest predict;
    predict.set_model("fraud");
    *predict.add_instances() = Instance(0.5, 0.2);
    grpc::ClientContext pctx;
    v1::PredictResponse resp;
    ASSERT_TRUE(inference->Predict(&pctx, predict, &resp).ok());
    p_before = resp.predictions(0).probabilities(1).probability();
    EXPECT_GT(p_before, 0.5);
    EXPECT_EQ(server.Stop(SIGTERM), 0) << server.Log();
    // The checkpoint is an ordinary one: `riffle ckpt inspect` reads the served model's
    // classes and features from its event pipeline.
    CommandResult inspect =
        RunRiffle("ckpt inspect " + dir.File("ckpt/fraud/ckpt-00000000000000000002.riffle"));
    EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
    EXPECT_THAT(inspect.output, HasSubstr("logreg, 2 classes, 2 features"));
    const std::string log = server.Log();
    // JSON lines, and the final checkpoint of the graceful shutdown.
    EXPECT_THAT(
        log,
        HasSubstr(
            R"("level":"info","msg":"model 'fraud': 300 labeled events, checkpoint generation 2")"));
  }
  {
    ServerProcess server(dir, {"--config", dir.File("riffle.yaml")});
    const std::string address = server.WaitReady();
    ASSERT_FALSE(address.empty()) << server.Log();
    EXPECT_THAT(server.Log(), HasSubstr("model 'fraud' restored from checkpoint generation 2"));
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto models = v1::ModelService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::GetModelRequest get;
    get.set_model("fraud");
    v1::Model model;
    ASSERT_TRUE(models->GetModel(&ctx, get, &model).ok());
    EXPECT_EQ(model.labeled(), 300u);
    auto inference = v1::InferenceService::NewStub(channel);
    v1::PredictRequest predict;
    predict.set_model("fraud");
    *predict.add_instances() = Instance(0.5, 0.2);
    grpc::ClientContext pctx;
    v1::PredictResponse resp;
    ASSERT_TRUE(inference->Predict(&pctx, predict, &resp).ok());
    EXPECT_EQ(resp.predictions(0).probabilities(1).probability(), p_before);
    EXPECT_EQ(resp.generation(), 2u);
    EXPECT_EQ(server.Stop(SIGINT), 0) << server.Log();
  }
}

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> out(1);
  for (char ch : line) {
    if (ch == ',') {
      out.emplace_back();
    } else if (ch != '\r') {
      out.back().push_back(ch);
    }
  }
  return out;
}

// Offline training, then serving: a model trained by `riffle eval --save-checkpoint` is served
// and predicts a row as the eval model does; on a restart it comes from its own store.
TEST(RiffleServeCliTest, ServesAModelTrainedOfflineByEval) {
  ScopedTempDir dir;
  const std::string data = std::string(RIFFLE_TEST_DATA_DIR) + "/weka-credit-g.csv";
  const std::string file = dir.File("credit.riffle");
  CommandResult eval = RunRiffle("eval --data " + data +
                                 " --target class --set optimizer=adam --no-progress "
                                 "--save-checkpoint " +
                                 file);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;

  // What the eval model predicts for the first row, computed here from the file.
  absl::StatusOr<checkpoints::ModelState> state =
      checkpoints::ReadModelCheckpointFile(checkpoints::DefaultEnv(), file);
  ASSERT_TRUE(state.ok()) << state.status();
  std::ifstream csv(data);
  std::string header_line, row_line;
  std::getline(csv, header_line);
  std::getline(csv, row_line);
  const std::vector<std::string> header = SplitCsvLine(header_line);
  const std::vector<std::string> row = SplitCsvLine(row_line);
  std::vector<std::string_view> fields(row.begin(), row.end());
  features::TabularExample example;
  state->schema->Decode(fields, &example);
  learners::FeatureVector x;
  state->preprocessor.TransformForPredict(example, &x);
  std::vector<double> expected;
  state->learner->PredictProbaOne(x, &expected);
  v1::Instance instance;
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c == state->schema->target_column()) continue;
    if (state->schema->type(c) == features::ColumnType::kNumeric) {
      (*instance.mutable_features())[header[c]].set_number(std::stod(row[c]));
    } else {
      (*instance.mutable_features())[header[c]].set_text(row[c]);
    }
  }

  const std::vector<std::string> args = {
      "--listen",      "127.0.0.1:0", "--checkpoint-dir", dir.File("ck"), "--model-from-checkpoint",
      "credit=" + file};
  for (int start = 0; start < 2; ++start) {
    ServerProcess server(dir, args);
    const std::string address = server.WaitReady();
    ASSERT_FALSE(address.empty()) << server.Log();
    EXPECT_THAT(server.Log(), HasSubstr(start == 0 ? "model 'credit' started from"
                                                   : "model 'credit' restored from checkpoint"));
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto models = v1::ModelService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::GetModelRequest get;
    get.set_model("credit");
    v1::Model model;
    ASSERT_TRUE(models->GetModel(&ctx, get, &model).ok());
    EXPECT_EQ(model.labeled(), 1000u);
    EXPECT_THAT(model.classes(), ::testing::ElementsAre("good", "bad"));
    EXPECT_EQ(model.spec().learner_options().at("optimizer"), "adam");
    auto inference = v1::InferenceService::NewStub(channel);
    v1::PredictRequest predict;
    predict.set_model("credit");
    *predict.add_instances() = instance;
    grpc::ClientContext pctx;
    v1::PredictResponse resp;
    ASSERT_TRUE(inference->Predict(&pctx, predict, &resp).ok());
    ASSERT_EQ(resp.predictions(0).probabilities_size(), 2);
    for (int k = 0; k < 2; ++k) {
      // The same model and inputs; the sums run over the features in another order.
      EXPECT_NEAR(resp.predictions(0).probabilities(k).probability(), expected[k], 1e-12);
    }
    EXPECT_EQ(server.Stop(), 0) << server.Log();
  }
}

TEST(RiffleServeCliTest, ConfigErrorsAreUsageErrors) {
  ScopedTempDir dir;
  WriteBytes(dir.File("bad.yaml"),
             "listen: 127.0.0.1:0\nmodels: [{name: a, spec: {learner: nope}}]\n");
  CommandResult r = RunRiffle("serve --config " + dir.File("bad.yaml"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("bad.yaml: models[0].spec.learner: unknown learner 'nope'"));
  r = RunRiffle("serve --config " + dir.File("missing.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("missing.yaml"));
  r = RunRiffle("serve --model broken");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--model: expected name=learner"));
}

TEST(RiffleServeCliTest, AnAddressInUseFailsClearly) {
  ScopedTempDir dir;
  ServerProcess first(dir, {"--listen", "127.0.0.1:0"});
  const std::string address = first.WaitReady();
  ASSERT_FALSE(address.empty()) << first.Log();
  CommandResult r = RunRiffle("serve --listen " + address);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("cannot listen on " + address));
  EXPECT_EQ(first.Stop(), 0);
}

}  // namespace
}  // namespace riffle::service
