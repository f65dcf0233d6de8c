#include "service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <utility>

#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

constexpr std::uint64_t kMaxPemBytes = 1 << 20;

absl::StatusOr<std::string> ReadPem(checkpoints::Env* env, const std::string& path,
                                    std::string_view what) {
  absl::StatusOr<std::string> pem = env->ReadFile(path, kMaxPemBytes);
  if (!pem.ok()) {
    return absl::Status(pem.status().code(),
                        absl::StrFormat("tls %s: %s", what, pem.status().message()));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const TlsOptions& tls,
                                                                     checkpoints::Env* env) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  absl::StatusOr<std::string> cert = ReadPem(env, tls.cert_file, "cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(env, tls.key_file, "key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(env, tls.client_ca_file, "client_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::Status ServerOptions::Validate() const {
  if (listen.empty() || listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("listen: expected host:port, got \"%s\"", listen));
  }
  if (limits.max_batch < 1) return absl::InvalidArgumentError("limits.max_batch: must be >= 1");
  if (limits.max_inflight < 1) {
    return absl::InvalidArgumentError("limits.max_inflight: must be >= 1");
  }
  if (max_message_bytes < 1024 || max_message_bytes > (1u << 30)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "limits.max_message_bytes: must be in [1024, 2^30], got %d", max_message_bytes));
  }
  if (tls.enabled() != !tls.key_file.empty()) {
    return absl::InvalidArgumentError("tls: cert and key must be given together");
  }
  if (!tls.client_ca_file.empty() && !tls.enabled()) {
    return absl::InvalidArgumentError("tls.client_ca: requires tls.cert and tls.key");
  }
  return absl::OkStatus();
}

void ConfigureServerBuilder(const ServerOptions& options,
                            std::shared_ptr<grpc::ServerCredentials> credentials,
                            grpc::ServerBuilder* builder, int* port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  builder->AddListeningPort(options.listen, std::move(credentials), port);
  // gRPC sets SO_REUSEPORT by default: a second server on the same port would then start
  // without error and silently take half the connections. A port in use must be an error.
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder->SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder->SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
}

void SetServicesServing(grpc::HealthCheckServiceInterface* health) {
  health->SetServingStatus("", true);
  health->SetServingStatus("riffle.v1.ModelService", true);
  health->SetServingStatus("riffle.v1.InferenceService", true);
}

RiffleServer::RiffleServer(ModelRegistry* registry, Logger* logger)
    : registry_(registry), model_service_(&context_), inference_service_(&context_) {
  context_.registry = registry;
  context_.logger = logger;
}

absl::StatusOr<std::unique_ptr<RiffleServer>> RiffleServer::Start(const ServerOptions& options,
                                                                  ModelRegistry* registry,
                                                                  Logger* logger,
                                                                  checkpoints::Env* env) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options.tls, env);
  if (!credentials.ok()) return credentials.status();

  auto server = std::unique_ptr<RiffleServer>(new RiffleServer(registry, logger));
  server->context_.limits = options.limits;
  server->context_.auth = TokenAuth(options.auth_token);

  grpc::ServerBuilder builder;
  ConfigureServerBuilder(options, *credentials, &builder, &server->port_);
  builder.RegisterService(&server->model_service_);
  builder.RegisterService(&server->inference_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot listen on %s (address in use, or not an address of this machine?)",
                        options.listen));
  }
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  SetServicesServing(health);
  for (const std::shared_ptr<ServedModel>& model : registry->List()) {
    health->SetServingStatus(HealthName(model->name()), true);
  }
  registry->SetListener(server.get());
  server->serving_.store(true, std::memory_order_release);
  return server;
}

RiffleServer::~RiffleServer() { Shutdown(std::chrono::milliseconds(0)); }

void RiffleServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  serving_.store(false, std::memory_order_release);
  registry_->SetListener(nullptr);
  if (server_ == nullptr) return;
  server_->GetHealthCheckService()->Shutdown();  // every status NOT_SERVING
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
}

void RiffleServer::OnModelAdded(const std::string& name) {
  server_->GetHealthCheckService()->SetServingStatus(HealthName(name), true);
}

void RiffleServer::OnModelRemoved(const std::string& name) {
  server_->GetHealthCheckService()->SetServingStatus(HealthName(name), false);
}

void RiffleServer::SetHealth(const std::string& service, bool serving) {
  if (shut_down_) return;
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
}

}  // namespace riffle::service
