#ifndef RIFFLE_SERVICE_STATUS_COMMAND_H_
#define RIFFLE_SERVICE_STATUS_COMMAND_H_

// `riffle status --target ADDR [--watch [SECONDS]] [--token-file F] [--tls-ca F] [--json]`:
// a one-screen summary of the models of a running `riffle serve`, read over its public gRPC
// API (ListModels, GetMetrics, grpc.health.v1), for operators.
//
// Pieces, so that each can be tested on its own:
//   StatusOptions       the flags (Validate: usage errors)
//   StatusClient        a channel to the server; Fetch() reads one ServerStatus snapshot
//   FormatStatusText    fixed-width tables, numbers humanized (1.2M, 35.1 MiB)
//   FormatStatusJson    one JSON object per snapshot, exact numbers, for scripts
//   RunStatusCommand    the command line: once, or --watch until stopped

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "checkpoints/env.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "riffle/v1/riffle.grpc.pb.h"

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}  // namespace CLI

namespace riffle::service {

struct StatusOptions {
  // host:port of the server's gRPC API (as `riffle serve --listen`).
  std::string target;
  // --watch: refresh every this many seconds (> 0) until stopped. nullopt: one snapshot.
  std::optional<double> watch_seconds;
  // File holding the bearer token (whitespace around it ignored), sent as
  // "authorization: Bearer <token>" on every call. The calls status makes are reads, which a
  // server does not require a token for today; a server that does gets it. "": none.
  std::string token_file;
  // PEM file of the CA that signed the server's certificate: TLS. "": plaintext.
  std::string tls_ca_file;
  // One JSON object per snapshot instead of the tables.
  bool json = false;
  // Deadline of each call, so an unreachable or hung server fails in bounded time.
  absl::Duration call_timeout = absl::Seconds(3);

  // InvalidArgument naming the flag (--target, --watch) for a usage error.
  absl::Status Validate() const;
};

// A grpc.health.v1 answer for one service name.
enum class HealthState {
  kServing,
  kNotServing,
  kNotFound,  // the server does not know the name: for a Kafka path, the model has none
  kUnknown,   // the health service answered UNKNOWN, or is not implemented
};

// "SERVING", "NOT_SERVING", "NOT_FOUND", "UNKNOWN".
std::string_view HealthStateName(HealthState state);

// What one snapshot read about one model.
struct ModelStatus {
  riffle::v1::Model model;           // from ListModels
  riffle::v1::ModelMetrics metrics;  // from GetMetrics
  // Health of the model's Kafka path (riffle.v1.kafka/<name>): kNotFound when it has none.
  HealthState kafka = HealthState::kNotFound;
};

// One snapshot of a server.
struct ServerStatus {
  std::string target;
  // Health of the server as a whole (service "").
  HealthState health = HealthState::kUnknown;
  // The client's clock (Env::NowMicros) when the snapshot was taken: checkpoint ages are
  // relative to it.
  std::int64_t fetched_micros = 0;
  // Sorted by name.
  std::vector<ModelStatus> models;
};

// A channel to one server, reused across the refreshes of --watch.
//
// Thread-compatible: one Fetch at a time.
class StatusClient {
 public:
  // Reads the token and CA files through `env` (their errors, naming the flag and the file)
  // and makes the channel; no connection is attempted yet. `env` must outlive the client; its
  // clock dates the snapshots.
  static absl::StatusOr<std::unique_ptr<StatusClient>> Create(const StatusOptions& options,
                                                              checkpoints::Env* env);

  // Over an existing channel (tests).
  StatusClient(std::shared_ptr<grpc::Channel> channel, std::string target, std::string token,
               absl::Duration call_timeout, checkpoints::Env* env);

  // One snapshot: the overall health, ListModels, then for each model GetMetrics and the
  // health of its Kafka path; 2 + 2 * models calls, each with the call timeout. A model
  // deleted between ListModels and its GetMetrics is left out. Errors:
  //   Unavailable "cannot reach <target>: <gRPC's reason>" when the server cannot be reached,
  //     does not answer within the call timeout, or cancels the call (it is stopping);
  //   otherwise the gRPC error of the first call that failed, as
  //     "<target>: <Method>: <CODE>: <message>" (with the matching absl code).
  absl::StatusOr<ServerStatus> Fetch();

 private:
  void Prepare(grpc::ClientContext* context) const;
  absl::StatusOr<HealthState> Health(const std::string& service);
  absl::Status CallError(std::string_view method, const grpc::Status& status) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::string target_;
  std::string token_;
  absl::Duration call_timeout_;
  checkpoints::Env* env_;
  std::unique_ptr<riffle::v1::ModelService::Stub> models_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// Humanized numbers of the tables.
// A count: exact below 1000, then one decimal with an SI suffix: 999, 1.2k, 35.1M, 2.0G.
std::string HumanCount(std::uint64_t n);
// Bytes: "512 B", then one decimal in binary units: "1.5 KiB", "35.1 MiB", "2.0 GiB".
std::string HumanBytes(std::uint64_t bytes);
// A latency: "85.0us", "1.2ms", "2.50s".
std::string HumanLatency(double seconds);
// An age: "42s", "5m07s", "3h02m", "2d04h" (negative ages, from clock skew, show as "0s").
std::string HumanAge(double seconds);

// The snapshot as text: a header line, then three tables with a row per model (state, traffic,
// prediction quality), fixed-width columns that fit 100 columns for names up to 16 characters
// (the name column widens for longer ones). "-" marks a value that does not exist yet (no
// scored example, no AUC for a non-binary model, no Kafka path). Ends with a newline.
std::string FormatStatusText(const ServerStatus& status);

// The snapshot as one line of JSON (ends with a newline): {"target", "time", "health",
// "models": [{"name", "learner", "version", "generation", "classes", "events", "labeled",
// "unlabeled", "memory_bytes", "last_checkpoint", "checkpoint_age_seconds", "kafka", "window",
// "rolling": {...}, "cumulative": {...}, "label_cache": {...}, "predict_latency": {...},
// "learn_latency": {...}}]}. Values that do not exist are null (a metric of a population with
// no scored example, AUC of a non-binary model, a checkpoint never written, no Kafka path).
std::string FormatStatusJson(const ServerStatus& status);

// Registers the `status` subcommand on `app`, parsing into *options (which must outlive `app`).
void AddStatusCommand(CLI::App& app, StatusOptions* options);

// Runs `riffle status`: one snapshot, or with watch_seconds one per interval until *stop
// (optional) becomes true. On a terminal the screen is cleared before each snapshot; otherwise
// (and always with --json) snapshots follow each other. Returns the exit status: 0; 1 when the
// files cannot be read or the first snapshot fails (later failures while watching are reported
// on `err` and retried at the next interval); 2 for a usage error. Errors are one line on
// `err`, prefixed "riffle status: ".
int RunStatusCommand(const StatusOptions& options, const std::atomic<bool>* stop,
                     checkpoints::Env* env = checkpoints::DefaultEnv(), std::FILE* out = stdout,
                     std::FILE* err = stderr);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_STATUS_COMMAND_H_
