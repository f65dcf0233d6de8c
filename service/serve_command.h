#ifndef RIFFLE_SERVICE_SERVE_COMMAND_H_
#define RIFFLE_SERVICE_SERVE_COMMAND_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"
#include "service/kafka_factory.h"
#include "service/logger.h"
#include "service/serve_config.h"

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}  // namespace CLI

namespace riffle::service {

// `riffle serve`: the flags, each overriding the config file's key of the same meaning.
struct ServeFlags {
  CLI::App* command = nullptr;  // set by AddServeCommand; tells which flags were given
  std::string config_file;
  std::string listen;
  std::string checkpoint_dir;
  std::uint64_t checkpoint_every_events = 0;
  double checkpoint_every_seconds = 0;
  std::size_t checkpoint_keep = 0;
  std::size_t max_batch = 0;
  std::size_t max_inflight = 0;
  std::size_t max_message_bytes = 0;
  std::string log_level;
  std::string log_format;
  std::string auth_token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string ready_file;
  std::string http_listen;
  std::string http_ready_file;
  double shutdown_grace_seconds = 0;
  // name=learner: quick models without a config file (default spec otherwise).
  std::vector<std::string> models;
  // name=FILE: a model started from a checkpoint file (repeatable).
  std::vector<std::string> models_from_checkpoint;
  // "embedded" (librdkafka's mock cluster in-process) or the brokers' bootstrap servers.
  std::string kafka;
};

void AddServeCommand(CLI::App& app, ServeFlags* flags);

// The config the flags describe: the file (if any), then each given flag on top.
absl::StatusOr<ServeConfig> ResolveServeConfig(const ServeFlags& flags, checkpoints::Env* env);

// Runs the service until *stop becomes true: restores the models from their checkpoints,
// creates the declared ones that are new, serves gRPC, checkpoints on schedule; then stops
// gracefully (refuse new calls, finish those in flight, final checkpoint of every model).
// Models with a `kafka:` key get a KafkaPipeline over `kafka`'s clients, started once gRPC
// serves and stopped (outputs flushed) before the final checkpoints.
absl::Status RunServer(const ServeConfig& config, Logger* logger, const std::atomic<bool>* stop,
                       checkpoints::Env* env, const KafkaClientFactory& kafka = {});

int RunServeCommand(const ServeFlags& flags, const std::atomic<bool>* stop,
                    const KafkaClientFactory& kafka = {});

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_SERVE_COMMAND_H_
