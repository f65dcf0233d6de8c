#ifndef RIFFLE_SERVICE_MODEL_DEFINITION_H_
#define RIFFLE_SERVICE_MODEL_DEFINITION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "checkpoints/model_checkpoint.h"
#include "features/pipeline.h"
#include "features/window_aggregates.h"
#include "learners/metrics.h"
#include "learners/registry.h"
#include "riffle/v1/riffle.pb.h"
#include "service/label_cache.h"

namespace riffle::service {

// A served model's spec, validated and in the C++ types the modules use. Built from the API's
// ModelSpec (gRPC CreateModel, the YAML config), kept in checkpoints as the spec's JSON.
struct ModelDefinition {
  std::string learner;
  learners::OptionList learner_options;
  features::PipelineSpec pipeline;
  // Windowed aggregates (none: no aggregator).
  features::AggregatorSpec aggregates;
  learners::MetricsOptions metrics;
  LabelCacheOptions label_cache;
  // The spec as given, canonical JSON (stored in ModelState::spec and shown by GetModel).
  std::string spec_json;
  riffle::v1::ModelSpec spec;
};

// Validates `spec` completely (learner kind and every option, every feature definition,
// limits) and converts it. InvalidArgument names the offending field with the prefix "spec.",
// e.g. "spec.learner_options[\"lr\"]: ..." or "spec.features.declared[1].hash_buckets: ...".
absl::StatusOr<ModelDefinition> DefinitionFromSpec(const riffle::v1::ModelSpec& spec);

// The definition stored in a checkpoint (ModelState::spec, JSON). DataLoss if it does not parse.
absl::StatusOr<ModelDefinition> DefinitionFromJson(std::string_view json);

// A fresh model of `definition`: learner, event pipeline, metrics and the spec's JSON, nothing
// learned. What a served model starts from and what `riffle eval --spec` trains, so both run
// the same model for the same spec. Errors: the learner's or pipeline's (a definition from
// DefinitionFromSpec has none).
absl::StatusOr<checkpoints::ModelState> NewModelState(std::string name,
                                                      const ModelDefinition& definition,
                                                      std::uint64_t version);

// Model names: [a-zA-Z0-9_.-]{1,128}, not "." or "..", so a name is also a safe directory name.
absl::Status ValidateModelName(std::string_view name);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_MODEL_DEFINITION_H_
