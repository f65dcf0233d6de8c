#ifndef RIFFLE_CHECKPOINTS_MODEL_CHECKPOINT_H_
#define RIFFLE_CHECKPOINTS_MODEL_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "features/pipeline.h"
#include "features/tabular.h"
#include "features/window_aggregates.h"
#include "learners/classifier.h"
#include "learners/metrics.h"

namespace riffle::checkpoints {

// Counters that belong to a model's state (restored with it, so rates and totals continue).
struct ModelCounters {
  std::uint64_t events = 0;     // every event predicted
  std::uint64_t labeled = 0;    // events that were scored and learned
  std::uint64_t unlabeled = 0;  // events only predicted

  friend bool operator==(const ModelCounters&, const ModelCounters&) = default;
};

// A prediction waiting for its label (the label join of DESIGN.md): the event id, the features
// it was predicted on, and when it was cached (microseconds since the epoch).
struct PendingLabel {
  std::string id;
  features::OwnedFeatures features;
  std::int64_t inserted_micros = 0;
};

// Everything that shapes the future behaviour of one model: a model restored from it predicts
// bit for bit as the original and keeps learning to the same model as an uninterrupted run.
//
// Owned by the model's single writer. Clone() makes the consistent snapshot that a
// checkpoint is serialized from, so serialization and I/O run off the writer's hot path.
struct ModelState {
  // Model name, and its spec as given (JSON text: learner, options, target, columns...). The
  // spec is opaque here; the service parses it.
  std::string name;
  std::string spec;
  // Bumped when the model is re-created with a new spec (the service's lifecycle).
  std::uint64_t version = 1;
  // Generation of the checkpoint this state was last written as or restored from; 0 if never.
  std::uint64_t generation = 0;
  std::unique_ptr<learners::Classifier> learner;
  // The tabular pipeline of `riffle eval` (column layout, vocabularies) and its scaler. The
  // schema is absent until the first rows fixed the column types.
  std::optional<features::TabularSchema> schema;
  features::TabularPreprocessor preprocessor;
  // The event pipeline of a served model (gRPC and Kafka: named features, declared transforms,
  // classes). A model has either this or a tabular schema once it has seen data.
  std::optional<features::Pipeline> pipeline;
  learners::PrequentialMetrics metrics;
  ModelCounters counters;
  // Next position to read per input: "topic/partition" for Kafka, "csv:rows" for a file.
  std::map<std::string, std::int64_t> next_offsets;
  // Predictions waiting for a label, oldest first. A served model keeps them in its label cache
  // and puts them here only in the snapshots it checkpoints, so a delayed label that arrives
  // after a restart still finds the features its event was predicted on.
  std::vector<PendingLabel> pending_labels;
  // The per-key windowed aggregates of a served model whose spec declares some. A served model
  // keeps its live aggregator outside the state (predictions update it) and puts a copy here
  // in the snapshots it checkpoints.
  std::optional<features::WindowAggregator> aggregator;

  ModelState Clone() const;
};

// Who wrote a checkpoint and when; stored in the payload beside the state.
struct CheckpointMetadata {
  std::string riffle_version;
  std::int64_t created_unix_micros = 0;
  std::string learner_kind;
  std::uint32_t payload_version = 0;
};

// Version of the payload layout below the file header. Bump it, and keep the reader for the
// previous one, whenever SerializeModelState changes.
// V1: `riffle eval` models only. V2 adds the optional event pipeline after the tabular state.
// V3 adds the pending labels after the offsets. V4 adds the optional window aggregator after
// them.
inline constexpr std::uint32_t kModelPayloadV1 = 1;
inline constexpr std::uint32_t kModelPayloadV2 = 2;
inline constexpr std::uint32_t kModelPayloadV3 = 3;
inline constexpr std::uint32_t kModelPayloadV4 = 4;
inline constexpr std::uint32_t kCurrentModelPayload = kModelPayloadV4;

// The payload: cereal portable binary with a version per serialized type. Requires a learner.
std::string SerializeModelState(const ModelState& state, std::int64_t created_unix_micros);

// Parses a payload produced by SerializeModelState. Never throws: malformed or truncated data
// gives DataLoss with the reason, an unknown learner kind InvalidArgument, a newer payload
// version FailedPrecondition. Sizes inside are bounded by the data actually present.
absl::StatusOr<ModelState> ParseModelState(std::string_view payload,
                                           CheckpointMetadata* metadata = nullptr);

class Env;

// A standalone checkpoint file (`riffle eval --save-checkpoint`): the file format's header and
// checksum around SerializeModelState's payload, written atomically (the previous file at
// `path` survives any failure).
absl::Status WriteModelCheckpointFile(Env* env, const std::string& path, const ModelState& state);

// Reads, verifies (header, length, checksum: before any parsing) and parses a checkpoint
// file. Files over `max_bytes` are refused without being read. Errors name the file.
absl::StatusOr<ModelState> ReadModelCheckpointFile(Env* env, const std::string& path,
                                                   CheckpointMetadata* metadata = nullptr,
                                                   std::uint64_t max_bytes = 4ULL << 30);

}  // namespace riffle::checkpoints

#endif  // RIFFLE_CHECKPOINTS_MODEL_CHECKPOINT_H_
