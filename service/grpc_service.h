#ifndef RIFFLE_SERVICE_GRPC_SERVICE_H_
#define RIFFLE_SERVICE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "riffle/v1/riffle.grpc.pb.h"
#include "service/logger.h"
#include "service/model_registry.h"

namespace riffle::service {

// The one conversion from absl::Status to grpc::Status (STYLE.md 5).
grpc::Status ToGrpcStatus(const absl::Status& status);

struct ApiLimits {
  // Most instances in one PredictRequest / examples in one LearnRequest.
  std::size_t max_batch = 10'000;
  // Calls being handled at once (streams count while open); beyond, RESOURCE_EXHAUSTED.
  std::size_t max_inflight = 1'000;
};

// Bearer-token check of the mutating calls (CreateModel, DeleteModel, Learn, LearnStream,
// Checkpoint, Restore): with a token configured, their metadata must carry
// "authorization: Bearer <token>"; UNAUTHENTICATED without one, PERMISSION_DENIED for a wrong
// one. Read-only calls (Predict, Get, List, Metrics, ListCheckpoints) need none.
class TokenAuth {
 public:
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}
  bool enabled() const { return !token_.empty(); }
  grpc::Status Check(const grpc::CallbackServerContext& context) const;

 private:
  std::string token_;
};

// Shared by both services: registry, limits, auth and the in-flight count.
struct ServiceContext {
  ModelRegistry* registry = nullptr;
  ApiLimits limits;
  TokenAuth auth{""};
  Logger* logger = nullptr;
  std::atomic<std::size_t> inflight{0};
};

// Thin adapters from riffle.v1 to the registry (gRPC's callback API: handlers run on gRPC's
// threads and never block on I/O except Checkpoint/Restore/Create/Delete, which touch the
// disk). Every handler validates its request, converts with the functions in this file, and
// converts errors with ToGrpcStatus; no exception leaves a handler.
class ModelServiceImpl final : public riffle::v1::ModelService::CallbackService {
 public:
  explicit ModelServiceImpl(ServiceContext* context) : context_(context) {}

  grpc::ServerUnaryReactor* CreateModel(grpc::CallbackServerContext* ctx,
                                        const riffle::v1::CreateModelRequest* request,
                                        riffle::v1::Model* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const riffle::v1::GetModelRequest* request,
                                     riffle::v1::Model* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const riffle::v1::ListModelsRequest* request,
                                       riffle::v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* ctx,
                                        const riffle::v1::DeleteModelRequest* request,
                                        riffle::v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx,
                                       const riffle::v1::GetMetricsRequest* request,
                                       riffle::v1::ModelMetrics* response) override;
  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* ctx,
                                       const riffle::v1::CheckpointRequest* request,
                                       riffle::v1::CheckpointInfo* response) override;
  grpc::ServerUnaryReactor* ListCheckpoints(grpc::CallbackServerContext* ctx,
                                            const riffle::v1::ListCheckpointsRequest* request,
                                            riffle::v1::ListCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* Restore(grpc::CallbackServerContext* ctx,
                                    const riffle::v1::RestoreRequest* request,
                                    riffle::v1::Model* response) override;

 private:
  ServiceContext* context_;
};

class InferenceServiceImpl final : public riffle::v1::InferenceService::CallbackService {
 public:
  explicit InferenceServiceImpl(ServiceContext* context) : context_(context) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx,
                                    const riffle::v1::PredictRequest* request,
                                    riffle::v1::PredictResponse* response) override;
  grpc::ServerBidiReactor<riffle::v1::PredictRequest, riffle::v1::PredictResponse>* PredictStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Learn(grpc::CallbackServerContext* ctx,
                                  const riffle::v1::LearnRequest* request,
                                  riffle::v1::LearnResponse* response) override;
  grpc::ServerReadReactor<riffle::v1::LearnRequest>* LearnStream(
      grpc::CallbackServerContext* ctx, riffle::v1::LearnResponse* response) override;

 private:
  ServiceContext* context_;
};

// The request-level logic, proto in, proto out, shared by the unary and streaming handlers.
absl::Status HandlePredict(ServiceContext* context, const riffle::v1::PredictRequest& request,
                           riffle::v1::PredictResponse* response);
// `deadline`: the call's; a batch still waiting for the model when it passes is not learned.
absl::Status HandleLearn(ServiceContext* context, const riffle::v1::LearnRequest& request,
                         riffle::v1::LearnResponse* response,
                         std::chrono::system_clock::time_point deadline);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_GRPC_SERVICE_H_
