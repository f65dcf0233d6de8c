#include "checkpoints/model_checkpoint.h"

#include <cereal/archives/portable_binary.hpp>
#include <exception>
#include <sstream>
#include <streambuf>
#include <vector>

#include "absl/strings/str_format.h"
#include "checkpoints/env.h"
#include "checkpoints/file_format.h"
#include "learners/registry.h"
#include "learners/serialization.h"

namespace riffle::checkpoints {
namespace {

// A read-only streambuf over caller memory, so parsing does not copy the payload.
class MemoryBuffer : public std::streambuf {
 public:
  explicit MemoryBuffer(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());
    setg(begin, begin, begin + bytes.size());
  }
};

// The pending labels of a V3 payload. Counts are not trusted for allocation: each entry
// consumes bytes, so a corrupted count fails at the end of the data.
void LoadPendingLabels(cereal::PortableBinaryInputArchive& archive, ModelState* state) {
  std::uint64_t count = 0;
  archive(count);
  std::vector<std::string> names;
  std::vector<std::string> texts;
  std::vector<features::NamedFeature> views;
  for (std::uint64_t i = 0; i < count; ++i) {
    PendingLabel& pending = state->pending_labels.emplace_back();
    learners::LoadString(archive, &pending.id);
    archive(pending.inserted_micros);
    std::uint64_t n = 0;
    archive(n);
    names.clear();
    texts.clear();
    std::vector<double> numbers;
    std::vector<bool> is_text;
    for (std::uint64_t j = 0; j < n; ++j) {
      learners::LoadString(archive, &names.emplace_back());
      const bool text = learners::LoadBool(archive);
      is_text.push_back(text);
      if (text) {
        learners::LoadString(archive, &texts.emplace_back());
        numbers.push_back(0);
      } else {
        archive(numbers.emplace_back());
      }
    }
    views.clear();
    for (std::size_t j = 0, t = 0; j < names.size(); ++j) {
      views.push_back({names[j], is_text[j] ? features::FeatureValue::Text(texts[t++])
                                            : features::FeatureValue::Number(numbers[j])});
    }
    pending.features.Assign(views);
  }
}

}  // namespace

ModelState ModelState::Clone() const {
  ModelState copy;
  copy.name = name;
  copy.spec = spec;
  copy.version = version;
  copy.generation = generation;
  copy.learner = learner != nullptr ? learner->Clone() : nullptr;
  copy.schema = schema;
  copy.preprocessor = preprocessor;
  copy.pipeline = pipeline;
  copy.metrics = metrics;
  copy.counters = counters;
  copy.next_offsets = next_offsets;
  copy.pending_labels = pending_labels;
  copy.aggregator = aggregator;
  return copy;
}

std::string SerializeModelState(const ModelState& state, std::int64_t created_unix_micros) {
  std::ostringstream out;
  {
    cereal::PortableBinaryOutputArchive archive(out);
    archive(kCurrentModelPayload);
    learners::SaveString(archive, std::string(RIFFLE_VERSION));
    archive(created_unix_micros);
    learners::SaveString(archive, state.name);
    learners::SaveString(archive, state.spec);
    archive(state.version, state.generation);
    learners::SaveString(archive, std::string(state.learner->Kind()));
    state.learner->Save(archive);
    learners::SaveBool(archive, state.schema.has_value());
    if (state.schema.has_value()) archive(*state.schema);
    archive(state.preprocessor);
    learners::SaveBool(archive, state.pipeline.has_value());
    if (state.pipeline.has_value()) archive(*state.pipeline);
    archive(state.metrics);
    archive(state.counters.events, state.counters.labeled, state.counters.unlabeled);
    archive(static_cast<std::uint64_t>(state.next_offsets.size()));
    for (const auto& [input, offset] : state.next_offsets) {
      learners::SaveString(archive, input);
      archive(offset);
    }
    archive(static_cast<std::uint64_t>(state.pending_labels.size()));
    std::vector<features::NamedFeature> views;
    for (const PendingLabel& pending : state.pending_labels) {
      learners::SaveString(archive, pending.id);
      archive(pending.inserted_micros);
      pending.features.Views(&views);
      archive(static_cast<std::uint64_t>(views.size()));
      for (const features::NamedFeature& f : views) {
        learners::SaveString(archive, std::string(f.name));
        const bool text = f.value.kind == features::FeatureValue::Kind::kText;
        learners::SaveBool(archive, text);
        if (text) {
          learners::SaveString(archive, std::string(f.value.text));
        } else {
          archive(f.value.number);
        }
      }
    }
    learners::SaveBool(archive, state.aggregator.has_value());
    if (state.aggregator.has_value()) archive(*state.aggregator);
  }
  return std::move(out).str();
}

absl::StatusOr<ModelState> ParseModelState(std::string_view payload, CheckpointMetadata* metadata) {
  MemoryBuffer buffer(payload);
  std::istream in(&buffer);
  ModelState state;
  CheckpointMetadata meta;
  // cereal reports malformed data by throwing; nothing escapes this function.
  try {
    cereal::PortableBinaryInputArchive archive(in);
    archive(meta.payload_version);
    if (meta.payload_version > kCurrentModelPayload) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "model payload version %d was written by a newer Riffle (this one reads up to %d)",
          meta.payload_version, kCurrentModelPayload));
    }
    if (meta.payload_version == 0) return absl::DataLossError("model payload version 0");
    learners::LoadString(archive, &meta.riffle_version);
    archive(meta.created_unix_micros);
    learners::LoadString(archive, &state.name);
    learners::LoadString(archive, &state.spec);
    archive(state.version, state.generation);
    learners::LoadString(archive, &meta.learner_kind);
    absl::StatusOr<std::unique_ptr<learners::Classifier>> learner =
        learners::CreateEmptyClassifier(meta.learner_kind);
    if (!learner.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "checkpoint holds learner kind '%s' that this Riffle does not know", meta.learner_kind));
    }
    (*learner)->Load(archive);
    state.learner = *std::move(learner);
    if (learners::LoadBool(archive)) {
      state.schema = features::TabularSchema::ForLoading();
      archive(*state.schema);
    }
    archive(state.preprocessor);
    if (meta.payload_version >= kModelPayloadV2 && learners::LoadBool(archive)) {
      state.pipeline = features::Pipeline::ForLoading();
      archive(*state.pipeline);
    }
    archive(state.metrics);
    archive(state.counters.events, state.counters.labeled, state.counters.unlabeled);
    std::uint64_t offsets = 0;
    archive(offsets);
    for (std::uint64_t i = 0; i < offsets; ++i) {
      // Each entry consumes bytes, so a corrupted count fails at the end of the data.
      std::string input;
      std::int64_t offset = 0;
      learners::LoadString(archive, &input);
      archive(offset);
      state.next_offsets[input] = offset;
    }
    if (meta.payload_version >= kModelPayloadV3) LoadPendingLabels(archive, &state);
    if (meta.payload_version >= kModelPayloadV4 && learners::LoadBool(archive)) {
      state.aggregator = features::WindowAggregator::ForLoading();
      archive(*state.aggregator);
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrFormat("malformed model payload: %s", e.what()));
  }
  if (in.peek() != std::char_traits<char>::eof()) {
    return absl::DataLossError("malformed model payload: trailing bytes after the state");
  }
  if (metadata != nullptr) *metadata = std::move(meta);
  return state;
}

absl::Status WriteModelCheckpointFile(Env* env, const std::string& path, const ModelState& state) {
  // Header and payload are written as two pieces: no copy of a possibly large payload.
  const std::string payload = SerializeModelState(state, env->NowMicros());
  const std::string header = EncodeCheckpointHeader(payload);
  const std::string_view pieces[] = {header, payload};
  return WriteFileAtomically(env, path, pieces);
}

absl::StatusOr<ModelState> ReadModelCheckpointFile(Env* env, const std::string& path,
                                                   CheckpointMetadata* metadata,
                                                   std::uint64_t max_bytes) {
  absl::StatusOr<std::string> bytes = env->ReadFile(path, max_bytes);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::string_view> payload = DecodeCheckpointFile(*bytes, path);
  if (!payload.ok()) return payload.status();
  absl::StatusOr<ModelState> state = ParseModelState(*payload, metadata);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrFormat("%s: %s", path, state.status().message()));
  }
  return state;
}

}  // namespace riffle::checkpoints
