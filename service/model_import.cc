#include "service/model_import.h"

#include "absl/strings/str_format.h"
#include "features/json_decoder.h"
#include "service/model_definition.h"

namespace riffle::service {

absl::StatusOr<checkpoints::ModelState> ServableFromCheckpoint(checkpoints::ModelState state,
                                                               const std::string& name) {
  if (state.pipeline.has_value()) {
    state.name = name;
    state.generation = 0;
    return state;
  }
  if (!state.schema.has_value() || state.learner == nullptr) {
    return absl::InvalidArgumentError(
        "the checkpoint holds a model that has seen no data (no schema): nothing to serve");
  }
  const features::TabularSchema& schema = *state.schema;

  riffle::v1::ModelSpec spec;
  spec.set_learner(std::string(state.learner->Kind()));
  // The eval's spec JSON: {"learner", "options": {...}, "target", "nominal": [...],
  // "drop": [...], "window"}, read with the event decoder: "options.<name>" are the options
  // (column lists are in the schema itself, so the arrays are skipped).
  features::JsonDecoderOptions json_options;
  json_options.require_id = false;
  json_options.skip_arrays = true;
  // (The spec has none of the role fields: id, key, label, time.)
  absl::StatusOr<features::JsonDecoder> decoder = features::JsonDecoder::Create(json_options);
  if (!decoder.ok()) return decoder.status();
  features::DecodedEvent eval_spec;
  if (features::DecodeStatus s = decoder->Decode(state.spec, &eval_spec); !s.ok()) {
    return absl::DataLossError(
        absl::StrFormat("the checkpoint's eval spec is not valid: %s", s.message()));
  }
  constexpr std::string_view kOptions = "options.";
  for (const features::NamedFeature& f : eval_spec.features()) {
    if (f.name.substr(0, kOptions.size()) == kOptions &&
        f.value.kind == features::FeatureValue::Kind::kText) {
      (*spec.mutable_learner_options())[std::string(f.name.substr(kOptions.size()))] =
          std::string(f.value.text);
    } else if (f.name == "window" && f.value.kind == features::FeatureValue::Kind::kNumber) {
      spec.set_metrics_window(static_cast<std::uint32_t>(f.value.number));
    }
  }
  for (const std::string& c : schema.labels().names()) spec.add_classes(c);
  for (std::size_t c = 0; c < schema.header().size(); ++c) {
    if (c == schema.target_column()) continue;
    riffle::v1::FeatureDef* def = nullptr;
    if (schema.dropped(c)) {
      def = spec.mutable_features()->add_declared();
      def->set_kind(riffle::v1::FeatureDef::DROP);
    } else if (schema.type(c) == features::ColumnType::kNominal) {
      def = spec.mutable_features()->add_declared();
      def->set_kind(riffle::v1::FeatureDef::CATEGORICAL);
    }
    if (def != nullptr) def->set_name(schema.header()[c]);
  }
  absl::StatusOr<ModelDefinition> definition = DefinitionFromSpec(spec);
  if (!definition.ok()) return definition.status();
  absl::StatusOr<features::Pipeline> pipeline = features::Pipeline::FromTabular(
      definition->pipeline, schema.features(), state.preprocessor.scaler());
  if (!pipeline.ok()) return pipeline.status();

  checkpoints::ModelState served;
  served.name = name;
  served.spec = definition->spec_json;
  served.version = 1;
  served.generation = 0;
  served.learner = std::move(state.learner);
  served.pipeline = *std::move(pipeline);
  served.metrics = std::move(state.metrics);
  served.counters = state.counters;
  return served;
}

}  // namespace riffle::service
