#ifndef RIFFLE_SERVICE_SERVER_H_
#define RIFFLE_SERVICE_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"
#include "service/grpc_service.h"
#include "service/logger.h"
#include "service/model_registry.h"

namespace riffle::service {

struct TlsOptions {
  // PEM files. cert and key together enable TLS; client_ca additionally requires and verifies
  // a client certificate signed by that CA (mutual TLS).
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty(); }
};

struct ServerOptions {
  // host:port; loopback by default, so nothing is exposed unless asked. Port 0 picks a free
  // port (see RiffleServer::port()).
  std::string listen = "127.0.0.1:50051";
  ApiLimits limits;
  // Largest request or response message.
  std::size_t max_message_bytes = 64u << 20;
  // Bearer token required by the mutating calls; "" = none.
  std::string auth_token;
  TlsOptions tls;

  absl::Status Validate() const;
};

// The setup every riffle.v1 server shares (RiffleServer, benchmarks/grpc_floor_server.cc):
// health checking and reflection on, `options.listen` with `credentials` (the bound port is
// written to *port when BuildAndStart runs), SO_REUSEPORT off so that a port in use is an
// error, and options.max_message_bytes both ways. Registers no service.
void ConfigureServerBuilder(const ServerOptions& options,
                            std::shared_ptr<grpc::ServerCredentials> credentials,
                            grpc::ServerBuilder* builder, int* port);

// Marks the overall health and riffle.v1's two services SERVING.
void SetServicesServing(grpc::HealthCheckServiceInterface* health);

// The gRPC server: riffle.v1's two services over a ModelRegistry, plus grpc.health.v1 (overall
// "" and per model "riffle.v1.model/<name>", kept in step with the registry) and server
// reflection, so grpcurl and grpc_cli work without the .proto file.
// The health service name of a model's Kafka path: SERVING while it consumes.
inline std::string KafkaHealthName(const std::string& model) { return "riffle.v1.kafka/" + model; }

class RiffleServer : public RegistryListener {
 public:
  // Binds and starts serving. FailedPrecondition if the address cannot be bound, errors of
  // the TLS files otherwise. The registry, logger and env must outlive the server.
  static absl::StatusOr<std::unique_ptr<RiffleServer>> Start(const ServerOptions& options,
                                                             ModelRegistry* registry,
                                                             Logger* logger, checkpoints::Env* env);
  ~RiffleServer() override;

  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }
  // Whether the overall health ("") is SERVING: true from Start until Shutdown begins (the
  // HTTP endpoint's /readyz).
  bool serving() const { return serving_.load(std::memory_order_acquire); }

  // Graceful stop: refuses new calls and waits up to `grace` for the ones in flight, then
  // cancels what is left. Health turns NOT_SERVING first. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

  void OnModelAdded(const std::string& name) override;
  void OnModelRemoved(const std::string& name) override;

  // The health service name of a model.
  static std::string HealthName(const std::string& model) { return "riffle.v1.model/" + model; }
  // Sets the health of another named service (the Kafka path of a model, KafkaHealthName).
  void SetHealth(const std::string& service, bool serving);

 private:
  RiffleServer(ModelRegistry* registry, Logger* logger);

  ModelRegistry* registry_;
  ServiceContext context_;
  ModelServiceImpl model_service_;
  InferenceServiceImpl inference_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
  std::atomic<bool> serving_{false};
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_SERVER_H_
