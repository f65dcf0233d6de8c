#include "service/ckpt_command.h"

#include <cmath>
#include <ctime>

#include "absl/strings/str_format.h"
#include "checkpoints/file_format.h"
#include "checkpoints/model_checkpoint.h"
#include "service/json.h"

namespace riffle::service {
namespace {

std::string IsoTime(std::int64_t unix_micros) {
  const std::time_t seconds = static_cast<std::time_t>(unix_micros / 1000000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

struct Loaded {
  checkpoints::CheckpointHeader header;
  std::uint64_t file_bytes = 0;
  checkpoints::CheckpointMetadata metadata;
  checkpoints::ModelState state;
};

absl::StatusOr<Loaded> LoadForInspection(checkpoints::Env* env, const std::string& path) {
  absl::StatusOr<std::string> bytes = env->ReadFile(path, 4ULL << 30);
  if (!bytes.ok()) return bytes.status();
  Loaded loaded;
  loaded.file_bytes = bytes->size();
  absl::StatusOr<checkpoints::CheckpointHeader> header =
      checkpoints::ReadCheckpointHeader(*bytes, path);
  if (!header.ok()) return header.status();
  loaded.header = *header;
  absl::StatusOr<std::string_view> payload = checkpoints::DecodeCheckpointFile(*bytes, path);
  if (!payload.ok()) return payload.status();
  absl::StatusOr<checkpoints::ModelState> state =
      checkpoints::ParseModelState(*payload, &loaded.metadata);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrFormat("%s: %s", path, state.status().message()));
  }
  loaded.state = *std::move(state);
  return loaded;
}

}  // namespace

absl::StatusOr<std::string> InspectCheckpoint(checkpoints::Env* env, const std::string& path,
                                              bool json) {
  absl::StatusOr<Loaded> loaded = LoadForInspection(env, path);
  if (!loaded.ok()) return loaded.status();
  const checkpoints::ModelState& s = loaded->state;
  const learners::MetricAccumulator& m = s.metrics.cumulative();
  // `riffle eval` models keep their vocabularies in the tabular schema, served models in the
  // event pipeline.
  const std::size_t classes = s.schema.has_value()     ? s.schema->labels().size()
                              : s.pipeline.has_value() ? s.pipeline->labels().size()
                                                       : 0;
  const std::size_t features = s.schema.has_value()     ? s.schema->features().size()
                               : s.pipeline.has_value() ? s.pipeline->features().size()
                                                        : 0;
  if (json) {
    std::string out = "{";
    out += "\"file\": " + JsonString(path);
    absl::StrAppendFormat(&out, ", \"file_bytes\": %d, \"format_version\": %d", loaded->file_bytes,
                          loaded->header.format_version);
    absl::StrAppendFormat(&out, ", \"payload_bytes\": %d, \"checksum\": \"%016x\"",
                          loaded->header.payload_length, loaded->header.payload_checksum);
    out += ", \"riffle_version\": " + JsonString(loaded->metadata.riffle_version);
    out += ", \"created\": " + JsonString(IsoTime(loaded->metadata.created_unix_micros));
    out += ", \"model\": " + JsonString(s.name);
    absl::StrAppendFormat(&out, ", \"version\": %d, \"generation\": %d", s.version, s.generation);
    out += ", \"learner\": " + JsonString(loaded->metadata.learner_kind);
    out += ", \"spec\": " + JsonString(s.spec);
    absl::StrAppendFormat(&out,
                          ", \"classes\": %d, \"features\": %d, \"model_bytes\": %d, \"events\": "
                          "%d, \"labeled\": %d, \"unlabeled\": %d",
                          classes, features, s.learner->MemoryBytes(), s.counters.events,
                          s.counters.labeled, s.counters.unlabeled);
    absl::StrAppendFormat(&out, ", \"accuracy\": %s, \"log_loss\": %s", JsonNumber(m.Accuracy()),
                          JsonNumber(m.LogLoss()));
    out += ", \"next_offsets\": {";
    bool first = true;
    for (const auto& [input, offset] : s.next_offsets) {
      if (!first) out += ", ";
      first = false;
      absl::StrAppendFormat(&out, "%s: %d", JsonString(input), offset);
    }
    out += "}}\n";
    return out;
  }
  std::string out;
  absl::StrAppendFormat(&out, "file            %s (%d bytes)\n", path, loaded->file_bytes);
  absl::StrAppendFormat(&out, "format          v%d, payload %d bytes, xxh3 %016x (verified)\n",
                        loaded->header.format_version, loaded->header.payload_length,
                        loaded->header.payload_checksum);
  absl::StrAppendFormat(&out, "written by      riffle %s at %s\n", loaded->metadata.riffle_version,
                        IsoTime(loaded->metadata.created_unix_micros));
  absl::StrAppendFormat(&out, "model           %s (version %d, generation %d)\n", s.name, s.version,
                        s.generation);
  absl::StrAppendFormat(&out, "learner         %s, %d classes, %d features, %d bytes\n",
                        loaded->metadata.learner_kind, classes, features, s.learner->MemoryBytes());
  absl::StrAppendFormat(&out, "spec            %s\n", s.spec);
  absl::StrAppendFormat(&out, "events          %d (%d labeled, %d unlabeled)\n", s.counters.events,
                        s.counters.labeled, s.counters.unlabeled);
  absl::StrAppendFormat(&out, "accuracy        %.4f\nlog_loss        %.4f\n", m.Accuracy(),
                        m.LogLoss());
  for (const auto& [input, offset] : s.next_offsets) {
    absl::StrAppendFormat(&out, "next offset     %s = %d\n", input, offset);
  }
  return out;
}

absl::StatusOr<std::string> VerifyCheckpoint(checkpoints::Env* env, const std::string& path) {
  absl::StatusOr<Loaded> loaded = LoadForInspection(env, path);
  if (!loaded.ok()) return loaded.status();
  return absl::StrFormat("ok: %s: model %s, learner %s, generation %d, %d events, %d bytes\n", path,
                         loaded->state.name, loaded->metadata.learner_kind,
                         loaded->state.generation, loaded->state.counters.events,
                         loaded->file_bytes);
}

}  // namespace riffle::service
