// grpc_floor_server: riffle.v1's gRPC services with no model behind them, to measure the floor
// of a gRPC call on this machine: what the server costs per call when the handler does almost
// nothing. `riffle serve`'s figure minus this one is riffle's own per-call work; this figure
// alone bounds what any handler could reach with the same client and transport.
//
//   grpc_floor_server --listen 127.0.0.1:0 --ready-file /tmp/ready
//   benchmarks/run_grpc_bench.sh --server floor      (grpc_load against this server)
//
// The server is built exactly as `riffle serve` builds its own, so that only the handlers
// differ: callback API, the default health service and reflection, SO_REUSEPORT off, the same
// message size limits (service::ConfigureServerBuilder, shared with RiffleServer::Start), glibc
// fastbins off and Abseil's mutex deadlock detection off (as RunServeCommand / RunServer in
// service/serve_command.cc).
//
// What the handlers answer, whatever model is named (every name is the same fixed model: a
// 2-class logistic regression as grpc_load's teaching leaves riffle's `bench` model):
//   - Predict, PredictStream: each instance (or dense row) gets the Prediction riffle serve
//     would give it, shape for shape: its id echoed, P = 0.5 for classes "0" and "1", the
//     predicted class, and the response's model, version and generation. Requests are checked
//     only by counting (model named; at least one and at most max_batch instances or rows; a
//     dense batch whole rows), not feature by feature.
//   - Learn: OK, learning nothing; `learned` counts the examples accepted (grpc_load checks it).
//   - CreateModel: ALREADY_EXISTS (as for the model `riffle serve --model` declared);
//     GetModel: the fixed model.
//   - Everything else: UNIMPLEMENTED (the generated base classes' default).
// Left out on purpose, being riffle's work rather than gRPC's: the in-flight limit, the
// deadline and auth checks, the registry lookup, the conversion of features, the model, and
// the once-a-second metrics sampling of `riffle serve`'s main thread.
//
// Stops on SIGINT or SIGTERM, letting calls in flight finish as `riffle serve` does.

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "checkpoints/env.h"
#include "riffle/v1/riffle.grpc.pb.h"
#include "service/grpc_service.h"
#include "service/serve_config.h"
#include "service/served_model.h"
#include "service/server.h"

namespace riffle::bench {
namespace {

namespace v1 = riffle::v1;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// The fixed model. Version 1 is a model's first (ModelRegistry::Create). Generation 1: with
// the default schedule (a checkpoint a minute once a model has learned), `riffle serve`'s model
// has written its first checkpoint by the time most benchmark runs measure, and a nonzero value
// keeps the field on the wire as it is there.
constexpr char kLearner[] = "logreg";
constexpr std::uint64_t kVersion = 1;
constexpr std::uint64_t kGeneration = 1;
constexpr const char* kClasses[] = {"0", "1"};
constexpr double kProbability = 0.5;  // of each class
// Ties go to the first class, as learners::ArgMax breaks them.
constexpr const char* kPredictedClass = kClasses[0];

struct FloorOptions {
  // Only `listen` is set from the command line: everything else stays at `riffle serve`'s
  // defaults (max_message_bytes, limits.max_batch), which the benchmark script does not change.
  service::ServerOptions server;
  // Written with "host:port\n" once serving, as `riffle serve --ready-file` writes it.
  std::string ready_file;

  absl::Status Validate() const { return server.Validate(); }
};

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

absl::Status CheckModel(const std::string& model) {
  if (model.empty()) return Invalid("model: required (the model's name)");
  return absl::OkStatus();
}

absl::Status CheckBatch(const char* field, std::size_t size, std::size_t limit) {
  if (size == 0) return Invalid(absl::StrFormat("%s: empty batch", field));
  if (size > limit) {
    return Invalid(
        absl::StrFormat("%s: %d items is over the limit of %d per request", field, size, limit));
  }
  return absl::OkStatus();
}

// The instances of a request, counted (a dense batch: its rows). The same errors as `riffle
// serve` for what can be told without looking at a feature.
absl::Status CountInstances(const v1::PredictRequest& request, std::size_t max_batch,
                            std::size_t* rows) {
  if (absl::Status s = CheckModel(request.model()); !s.ok()) return s;
  if (!request.has_dense()) {
    *rows = static_cast<std::size_t>(request.instances_size());
    return CheckBatch("instances", *rows, max_batch);
  }
  if (request.instances_size() > 0) return Invalid("instances: give instances or dense, not both");
  const v1::DenseBatch& dense = request.dense();
  const auto cols = static_cast<std::size_t>(dense.feature_names_size());
  if (cols == 0) return Invalid("dense.feature_names: required (at least one feature)");
  const auto values = static_cast<std::size_t>(dense.values_size());
  if (values % cols != 0) {
    return Invalid(absl::StrFormat(
        "dense.values: %d values are not a whole number of rows of %d features", values, cols));
  }
  *rows = values / cols;
  if (absl::Status s = CheckBatch("dense", *rows, max_batch); !s.ok()) return s;
  if (dense.ids_size() != 0 && static_cast<std::size_t>(dense.ids_size()) != *rows) {
    return Invalid(absl::StrFormat("dense.ids: %d ids for %d rows (give none, or one per row)",
                                   dense.ids_size(), *rows));
  }
  return absl::OkStatus();
}

// Fills the response the way service/grpc_service.cc's FillPredictions does (Reserve, then one
// Prediction per instance, field by field), so that building and serializing it costs what it
// costs there.
absl::Status AnswerPredict(const v1::PredictRequest& request, std::size_t max_batch,
                           v1::PredictResponse* response) {
  std::size_t rows = 0;
  if (absl::Status s = CountInstances(request, max_batch, &rows); !s.ok()) return s;
  const bool dense = request.has_dense();
  const bool dense_ids = dense && request.dense().ids_size() > 0;
  response->set_model(request.model());
  response->set_version(kVersion);
  response->set_generation(kGeneration);
  response->mutable_predictions()->Reserve(static_cast<int>(rows));
  for (std::size_t i = 0; i < rows; ++i) {
    const int index = static_cast<int>(i);
    v1::Prediction* p = response->add_predictions();
    if (dense_ids) {
      p->set_id(request.dense().ids(index));
    } else if (!dense) {
      p->set_id(request.instances(index).id());
    }
    p->mutable_probabilities()->Reserve(static_cast<int>(std::size(kClasses)));
    for (const char* name : kClasses) {
      v1::ClassProbability* cp = p->add_probabilities();
      cp->set_class_name(name);
      cp->set_probability(kProbability);
    }
    p->set_predicted_class(kPredictedClass);
  }
  return absl::OkStatus();
}

template <typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(service::ToGrpcStatus(fn()));
  return reactor;
}

// One response per request, in order, as riffle's PredictStream: read, answer, write, read.
class PredictStreamReactor final
    : public grpc::ServerBidiReactor<v1::PredictRequest, v1::PredictResponse> {
 public:
  explicit PredictStreamReactor(std::size_t max_batch) : max_batch_(max_batch) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    if (absl::Status s = AnswerPredict(request_, max_batch_, &response_); !s.ok()) {
      Finish(service::ToGrpcStatus(
          absl::Status(s.code(), absl::StrFormat("requests[%d].%s", index_, s.message()))));
      return;
    }
    ++index_;
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const std::size_t max_batch_;
  v1::PredictRequest request_;
  v1::PredictResponse response_;
  std::uint64_t index_ = 0;
};

class FloorInferenceService final : public v1::InferenceService::CallbackService {
 public:
  explicit FloorInferenceService(std::size_t max_batch) : max_batch_(max_batch) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override {
    return Unary(ctx, [&] { return AnswerPredict(*request, max_batch_, response); });
  }

  grpc::ServerBidiReactor<v1::PredictRequest, v1::PredictResponse>* PredictStream(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new PredictStreamReactor(max_batch_);
  }

  grpc::ServerUnaryReactor* Learn(grpc::CallbackServerContext* ctx, const v1::LearnRequest* request,
                                  v1::LearnResponse* response) override {
    return Unary(ctx, [&]() -> absl::Status {
      if (absl::Status s = CheckModel(request->model()); !s.ok()) return s;
      const auto n = static_cast<std::size_t>(request->examples_size());
      if (absl::Status s = CheckBatch("examples", n, max_batch_); !s.ok()) return s;
      response->set_learned(n);
      response->set_model(request->model());
      response->set_version(kVersion);
      response->set_generation(kGeneration);
      return absl::OkStatus();
    });
  }

 private:
  const std::size_t max_batch_;
};

// Just enough of ModelService for grpc_load's setup (CreateModel, then GetModel to see that the
// model knows two classes).
class FloorModelService final : public v1::ModelService::CallbackService {
 public:
  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* ctx,
                                        const v1::CreateModelRequest* request,
                                        v1::Model* /*response*/) override {
    return Unary(ctx, [&]() -> absl::Status {
      if (request->name().empty()) return Invalid("name: required");
      return absl::AlreadyExistsError(absl::StrFormat(
          "model '%s' already exists (the floor server serves one fixed model under every name)",
          request->name()));
    });
  }

  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override {
    return Unary(ctx, [&]() -> absl::Status {
      if (absl::Status s = CheckModel(request->model()); !s.ok()) return s;
      response->set_name(request->model());
      response->mutable_spec()->set_learner(kLearner);
      response->set_version(kVersion);
      response->set_generation(kGeneration);
      for (const char* name : kClasses) response->add_classes(name);
      return absl::OkStatus();
    });
  }
};

int Run(const FloorOptions& o, const sigset_t& stop_signals) {
  service::TuneAllocatorForServing();  // as `riffle serve` (RunServer)
  FloorModelService model_service;
  FloorInferenceService inference_service(o.server.limits.max_batch);

  // RiffleServer::Start's setup, with plaintext credentials (the benchmark's) and these
  // services.
  grpc::ServerBuilder builder;
  int port = 0;
  service::ConfigureServerBuilder(o.server, grpc::InsecureServerCredentials(), &builder, &port);
  builder.RegisterService(&model_service);
  builder.RegisterService(&inference_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "grpc_floor_server: cannot listen on %s\n", o.server.listen.c_str());
    return kExitFailure;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  service::SetServicesServing(health);

  const std::string host = o.server.listen.substr(0, o.server.listen.rfind(':'));
  const std::string address = absl::StrFormat("%s:%d", host, port);
  std::fprintf(stderr, "grpc_floor_server: serving riffle.v1 (no model) on %s\n", address.c_str());
  if (!o.ready_file.empty()) {
    if (absl::Status s = checkpoints::WriteFileAtomically(checkpoints::DefaultEnv(), o.ready_file,
                                                          address + "\n");
        !s.ok()) {
      std::fprintf(stderr, "grpc_floor_server: %s\n", std::string(s.message()).c_str());
      server->Shutdown(std::chrono::system_clock::now());
      return kExitFailure;
    }
  }

  int received = 0;
  sigwait(&stop_signals, &received);
  health->Shutdown();
  const auto grace = std::chrono::milliseconds(
      static_cast<std::int64_t>(service::ServeConfig().shutdown_grace_seconds * 1000));
  server->Shutdown(std::chrono::system_clock::now() + grace);
  server->Wait();
  std::fprintf(stderr, "grpc_floor_server: stopped (signal %d)\n", received);
  return 0;
}

}  // namespace
}  // namespace riffle::bench

int main(int argc, char** argv) {
  // SIGINT and SIGTERM are blocked before gRPC starts any thread (threads inherit the mask), so
  // that only Run's sigwait receives them: shutdown then runs on the main thread, not in a
  // signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  riffle::bench::FloorOptions o;
  CLI::App app{
      "riffle.v1 over gRPC with no model: the floor of a call (see the comment at the top of "
      "grpc_floor_server.cc)"};
  app.add_option("--listen", o.server.listen, "host:port to listen on (port 0: pick one)")
      ->capture_default_str();
  app.add_option("--ready-file", o.ready_file, "Write the bound host:port here once serving");
  CLI11_PARSE(app, argc, argv);
  // As `riffle serve` (RunServeCommand): Debian's Abseil checks lock order on every absl::Mutex
  // lock, gRPC's included, which a serving binary does not pay for.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "grpc_floor_server: %s\n", std::string(s.message()).c_str());
    return riffle::bench::kExitUsage;
  }
  return riffle::bench::Run(o, stop_signals);
}
