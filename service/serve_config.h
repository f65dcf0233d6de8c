#ifndef RIFFLE_SERVICE_SERVE_CONFIG_H_
#define RIFFLE_SERVICE_SERVE_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "riffle/v1/riffle.pb.h"
#include "service/alerts.h"
#include "service/http_endpoint.h"
#include "service/kafka_pipeline.h"
#include "service/logger.h"
#include "service/served_model.h"
#include "service/server.h"

namespace riffle::service {

// A model declared up front in the config: created at start unless its checkpoint store
// already holds it (then it is restored, and the declared spec must match).
struct DeclaredModel {
  std::string name;
  riffle::v1::ModelSpec spec;
  // Instead of a spec: start the model from this checkpoint file (`riffle eval
  // --save-checkpoint`, or a served model's checkpoint), see ServableFromCheckpoint.
  std::string from_checkpoint;
  // The model's Kafka inputs and outputs (the `kafka:` key of the model); none if absent.
  std::optional<KafkaModelOptions> kafka;
};

// Everything `riffle serve` runs with: the YAML file (docs/SERVING.md documents every key),
// then command-line flags on top.
struct ServeConfig {
  ServerOptions server;
  // Root of the per-model checkpoint stores ("" = no checkpoints: models live in memory only).
  std::string checkpoint_dir;
  CheckpointSchedule checkpoint;
  LogOptions log;
  std::vector<DeclaredModel> models;
  // The top-level `kafka:` section: client properties and pipeline settings shared by the
  // models that have a `kafka:` key. kafka_embedded: run librdkafka's mock cluster in-process
  // instead of connecting to a broker (docs/KAFKA.md).
  KafkaOptions kafka;
  bool kafka_embedded = false;
  // How long a graceful shutdown waits for calls in flight.
  double shutdown_grace_seconds = 10;
  // When serving, the bound address ("host:port") is written to this file, atomically (for
  // scripts and tests that listen on port 0).
  std::string ready_file;
  // A file holding the bearer token (read at start, surrounding whitespace trimmed); the
  // alternative to putting server.auth_token in the config itself.
  std::string auth_token_file;
  // The HTTP endpoint (/metrics, /healthz, /readyz); off while http.listen is "".
  HttpEndpointOptions http;
  // Once the HTTP endpoint serves, its bound address ("host:port") is written here, atomically
  // (a file of its own, so ready_file keeps its one-line format). Requires http.listen.
  std::string http_ready_file;
  // The `alerts:` section (docs/ALERTS.md): rules evaluated on the metrics history, their
  // firing and resolved transitions posted to a webhook. None when the section is absent.
  std::optional<AlertOptions> alerts;

  absl::Status Validate() const;
};

// Parses a YAML config. InvalidArgument naming the key path (e.g. "models[1].spec.learner:
// ..." or "checkpoint.every_seconds: ..."), including unknown keys, so a typo is an error
// rather than a silently ignored setting. `source` names the file in messages.
absl::StatusOr<ServeConfig> ParseServeConfig(std::string_view yaml, std::string_view source);

// Parses a model spec on its own: a file holding what a model's `spec:` holds in the config
// (`riffle eval --spec`), converted and validated exactly as there. InvalidArgument prefixed
// with `source`, naming the field ("model.yaml: spec.features.crosses[0].second: ...").
absl::StatusOr<riffle::v1::ModelSpec> ParseModelSpecYaml(std::string_view yaml,
                                                         std::string_view source);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_SERVE_CONFIG_H_
