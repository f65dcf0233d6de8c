#include "service/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <unordered_set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "checkpoints/checkpointer.h"
#include "checkpoints/env.h"
#include "checkpoints/model_checkpoint.h"
#include "checkpoints/store.h"
#include "features/csv_event_decoder.h"
#include "features/csv_reader.h"
#include "features/read_ahead_csv.h"
#include "learners/classifier.h"
#include "learners/tree_model.h"
#include "service/json.h"
#include "service/model_definition.h"
#include "service/prequential.h"
#include "service/serve_config.h"

namespace riffle::service {
namespace {

constexpr std::uint64_t kProgressEveryRows = 4096;
// The input position recorded in checkpoints: data rows consumed so far.
constexpr char kRowsOffsetKey[] = "csv:rows";
// A spec file is a few lines; anything near this is not one.
constexpr std::uint64_t kMaxSpecBytes = 1 << 20;

absl::Status RaggedRow(const features::ReadAheadCsvReader& reader, std::size_t got,
                       std::size_t want) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s:%d: row has %d fields but the header has %d", reader.name(), reader.line(), got, want));
}

// The spec recorded in checkpoints written by `riffle eval`: what was asked for, as JSON.
std::string EvalSpecJson(const EvalOptions& o, std::string_view learner) {
  std::string out = "{\"learner\": ";
  AppendJsonString(&out, learner);
  out += ", \"options\": {";
  for (std::size_t k = 0; k < o.learner_options.size(); ++k) {
    if (k > 0) out += ", ";
    AppendJsonString(&out, o.learner_options[k].first);
    out += ": ";
    AppendJsonString(&out, o.learner_options[k].second);
  }
  out += "}, \"target\": ";
  AppendJsonString(&out, o.table.target);
  for (const auto& [key, list] :
       {std::pair<const char*, const std::vector<std::string>*>{"nominal", &o.table.nominal},
        {"drop", &o.table.drop}}) {
    absl::StrAppendFormat(&out, ", \"%s\": [", key);
    for (std::size_t k = 0; k < list->size(); ++k) {
      if (k > 0) out += ", ";
      AppendJsonString(&out, (*list)[k]);
    }
    out += "]";
  }
  absl::StrAppendFormat(&out, ", \"window\": %d}", o.metrics.window);
  return out;
}

EvalReport Report(const checkpoints::ModelState& state) {
  EvalReport r;
  r.rows = state.counters.events;
  r.unlabeled = state.counters.unlabeled;
  r.scored = state.metrics.cumulative().Count();
  if (state.schema.has_value()) {
    r.coerced_values = state.schema->coerced_values();
    r.classes = state.schema->labels().names();
    r.num_features = state.schema->features().size();
  } else if (state.pipeline.has_value()) {
    r.classes = state.pipeline->labels().names();
    r.num_features = state.pipeline->features().size();
  }
  const bool binary = r.classes.size() == 2;
  r.cumulative = SnapshotMetrics(state.metrics.cumulative(), binary);
  r.rolling = SnapshotMetrics(state.metrics.rolling(), binary);
  r.window = state.metrics.options().window;
  r.model_bytes = state.learner->MemoryBytes();
  r.learner = std::string(state.learner->Kind());
  return r;
}

// A checkpoint continued with --spec must be an event-pipeline model of that same spec: a
// different spec would read the learned vocabulary and weights with other features.
absl::StatusOr<checkpoints::ModelState> CheckSameSpec(checkpoints::ModelState state,
                                                      const ModelDefinition& definition,
                                                      const std::string& from) {
  if (!state.pipeline.has_value()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "checkpoint %s is a table model of riffle eval without --spec: continue it without --spec",
        from));
  }
  absl::StatusOr<ModelDefinition> stored = DefinitionFromJson(state.spec);
  if (!stored.ok() || stored->spec_json != definition.spec_json) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "checkpoint %s was trained with another spec than --spec gives (its spec: %s)", from,
        state.spec));
  }
  return state;
}

// Where the run starts: a checkpoint file, the newest valid generation of a store, or a fresh
// model. `resumed_from` describes the checkpoint used, if any.
absl::StatusOr<checkpoints::ModelState> InitialState(const EvalOptions& options,
                                                     const ModelDefinition* definition,
                                                     checkpoints::Env* env,
                                                     checkpoints::CheckpointStore* store,
                                                     std::string* resumed_from, bool* from_store,
                                                     std::vector<std::string>* warnings) {
  const bool has_learner_flags = !options.learner.empty() || !options.learner_options.empty();
  absl::StatusOr<checkpoints::ModelState> state = absl::NotFoundError("no checkpoint");
  if (!options.load_checkpoint.empty()) {
    state = checkpoints::ReadModelCheckpointFile(env, options.load_checkpoint);
    if (!state.ok()) return state.status();
    *resumed_from = options.load_checkpoint;
  } else if (store != nullptr) {
    // The validator keeps what it parsed, so the accepted payload is parsed only once.
    absl::StatusOr<checkpoints::LoadedCheckpoint> loaded =
        store->LoadNewestValid([&state](std::string_view payload) {
          state = checkpoints::ParseModelState(payload);
          return state.status();
        });
    if (loaded.ok()) {
      for (const checkpoints::SkippedCheckpoint& skipped : loaded->skipped) {
        warnings->push_back(absl::StrFormat(
            "checkpoint generation %d is unusable (%s); falling back to generation %d",
            skipped.generation, skipped.status.message(), loaded->generation));
      }
      state->generation = loaded->generation;
      *resumed_from = absl::StrFormat("%s (generation %d)", loaded->path, loaded->generation);
      *from_store = true;
    } else if (absl::IsNotFound(loaded.status())) {
      state = absl::NotFoundError("no checkpoint");  // a fresh model below
    } else {
      return loaded.status();
    }
  }
  if (state.ok()) {
    if (has_learner_flags) {
      return absl::InvalidArgumentError(
          "--learner and --set cannot be combined with a checkpoint to resume from: the "
          "checkpoint carries its own learner and options");
    }
    if (definition != nullptr) return CheckSameSpec(*std::move(state), *definition, *resumed_from);
    if (!state->schema.has_value()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "checkpoint %s has no table schema: it was not written by riffle eval without --spec "
          "(an event-pipeline model continues with --spec and its spec)",
          *resumed_from));
    }
    return state;
  }
  if (definition != nullptr) return NewModelState("eval", *definition, /*version=*/1);
  const std::string kind = options.learner.empty() ? "logreg" : options.learner;
  absl::StatusOr<std::unique_ptr<learners::Classifier>> learner =
      learners::CreateClassifier(kind, options.learner_options);
  if (!learner.ok()) return learner.status();
  checkpoints::ModelState fresh;
  fresh.name = "eval";
  fresh.spec = EvalSpecJson(options, kind);
  fresh.learner = *std::move(learner);
  fresh.metrics = learners::PrequentialMetrics(options.metrics);
  return fresh;
}

// A resumed schema must describe the same table.
absl::Status CheckSameTable(const features::TabularSchema& schema,
                            const std::vector<std::string>& header, const EvalOptions& options,
                            const std::string& data_name) {
  if (schema.header() != header) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: header does not match the checkpoint's columns (%s)", data_name,
                        absl::StrJoin(schema.header(), ",")));
  }
  if (schema.header()[schema.target_column()] != options.table.target) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--target %s does not match the checkpoint's target column '%s'",
                        options.table.target, schema.header()[schema.target_column()]));
  }
  return absl::OkStatus();
}

void AppendMetricsJson(std::string* out, const MetricValues& m) {
  absl::StrAppendFormat(out, "\"accuracy\": %s, \"log_loss\": %s, ", JsonNumber(m.accuracy),
                        JsonNumber(m.log_loss));
  if (m.roc_auc.has_value())
    absl::StrAppendFormat(out, "\"roc_auc\": %s, ", JsonNumber(*m.roc_auc));
  if (m.precision.has_value()) {
    absl::StrAppendFormat(out, "\"precision\": %s, \"recall\": %s, \"f1\": %s, ",
                          JsonNumber(*m.precision), JsonNumber(*m.recall), JsonNumber(*m.f1));
  }
  absl::StrAppendFormat(out, "\"macro_f1\": %s", JsonNumber(m.macro_f1));
}

std::string FormatOptional(const std::optional<double>& v) {
  return v.has_value() && std::isfinite(*v) ? absl::StrFormat("%.4f", *v) : "n/a";
}

// Writes the learner (a tree) as JSON, or as DOT when `path` ends in ".dot".
absl::Status DumpTree(const checkpoints::ModelState& state, const std::string& path) {
  const auto* tree = dynamic_cast<const learners::TreeModel*>(state.learner.get());
  if (tree == nullptr) return absl::InvalidArgumentError("--dump-tree needs a tree learner");
  std::vector<std::string> names;
  if (state.schema.has_value()) names = state.schema->features().names();
  if (state.pipeline.has_value()) names = state.pipeline->features().names();
  const bool dot = path.size() >= 4 && path.compare(path.size() - 4, 4, ".dot") == 0;
  const std::string text = dot ? tree->ToDot(names) : tree->ToJson(names);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrFormat("--dump-tree: cannot write %s", path));
  return absl::OkStatus();
}

// The definition in the --spec file, read with `riffle serve`'s spec parser.
absl::StatusOr<ModelDefinition> LoadSpec(checkpoints::Env* env, const std::string& path) {
  absl::StatusOr<std::string> yaml = env->ReadFile(path, kMaxSpecBytes);
  if (!yaml.ok()) {
    return absl::Status(yaml.status().code(),
                        absl::StrFormat("--spec %s: %s", path, yaml.status().message()));
  }
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(*yaml, path);
  if (!spec.ok()) return spec.status();
  return DefinitionFromSpec(*spec);
}

// A role name for the CSV event decoder that is no column of `header`: eval --spec gives a
// column an id, key or time role only when asked to (--id, --key, --time), while the decoder
// always has an id and a key field.
std::string AbsentColumn(const std::vector<std::string>& header, std::string name) {
  while (std::find(header.begin(), header.end(), name) != header.end()) name += '_';
  return name;
}

// `riffle eval --spec`: CSV rows as the events of a served model, decoded as the Kafka path
// decodes CSV events (features::CsvEventDecoder): the target is the label, --id, --key and
// --time name the columns with those roles, every other column is a feature named by its
// header. Features go to the pipeline in name order (the order the gRPC adapter sorts a
// request's features in, so a row and a request with the same values give bit-identical sums).
class EventRows {
 public:
  static absl::StatusOr<EventRows> Create(const std::vector<std::string>& header,
                                          const EvalOptions& options,
                                          const checkpoints::ModelState& state,
                                          std::string_view source) {
    const std::string& target = options.table.target;
    std::unordered_set<std::string_view> seen;
    for (const std::string& name : header) {
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: column '%s' appears twice in the header", source, name));
      }
    }
    const auto require = [&](const std::string& column, const char* flag) -> absl::Status {
      if (column.empty() || seen.contains(column)) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s column '%s' is not in the header (columns: %s)", source, flag,
                          column, absl::StrJoin(header, ", ")));
    };
    if (absl::Status s = require(target, "target"); !s.ok()) return s;
    if (absl::Status s = require(options.id_column, "--id"); !s.ok()) return s;
    if (absl::Status s = require(options.key_column, "--key"); !s.ok()) return s;
    if (absl::Status s = require(options.time_column, "--time"); !s.ok()) return s;
    if (state.aggregator.has_value() && options.time_column.empty()) {
      return absl::InvalidArgumentError(
          "the spec has windowed aggregates (features.aggregates), which need event times: "
          "name the time column with --time");
    }
    features::CsvEventDecoderOptions decoder_options;
    decoder_options.label_field = target;
    decoder_options.id_field =
        options.id_column.empty() ? AbsentColumn(header, "id") : options.id_column;
    decoder_options.key_field =
        options.key_column.empty() ? AbsentColumn(header, "key") : options.key_column;
    decoder_options.time_fields.clear();
    if (!options.time_column.empty()) decoder_options.time_fields.push_back(options.time_column);
    decoder_options.require_id = false;
    const std::vector<std::string_view> names(header.begin(), header.end());
    absl::StatusOr<features::CsvEventDecoder> decoder =
        features::CsvEventDecoder::Create(names, decoder_options);
    if (!decoder.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s", source, decoder.status().message()));
    }
    return EventRows(*std::move(decoder));
  }

  // Test-then-train of one row, as a served model's Learn (or Predict, for an empty target).
  // InvalidArgument naming the line for a row the decoder, the pipeline or the classes reject.
  absl::Status Apply(checkpoints::ModelState* state, std::span<const std::string_view> fields,
                     const features::ReadAheadCsvReader& reader, PrequentialStep* step) {
    const auto line_error = [&reader](absl::string_view message) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: %s", reader.name(), reader.line(), message));
    };
    const features::DecodeStatus decoded = decoder_.Decode(fields, &event_);
    if (!decoded.ok()) return line_error(decoded.ToStatus().message());
    features_.assign(event_.features().begin(), event_.features().end());
    std::sort(features_.begin(), features_.end(),
              [](const features::NamedFeature& a, const features::NamedFeature& b) {
                return a.name < b.name;
              });
    features::Pipeline& pipeline = *state->pipeline;
    if (absl::Status s = pipeline.Validate(features_); !s.ok()) return line_error(s.message());
    const std::optional<std::string_view> label = event_.label();
    if (label.has_value()) {
      // The service's class limit, so eval accepts exactly what a served model accepts.
      if (!pipeline.FindLabel(*label).has_value() &&
          pipeline.labels().size() >= ServedModel::kMaxClasses) {
        return line_error(absl::StrFormat("label \"%s\" would be class %d; a model has at most %d",
                                          label->substr(0, 64), pipeline.labels().size() + 1,
                                          ServedModel::kMaxClasses));
      }
      if (!pipeline.FindLabel(*label).has_value() && !pipeline.spec().classes.empty()) {
        return line_error(pipeline.EncodeLabel(*label).status().message());
      }
    }
    std::span<const features::NamedFeature> features = features_;
    if (state->aggregator.has_value()) {
      features::WindowAggregator& aggregator = *state->aggregator;
      if (absl::Status s = aggregator.Validate(features_); !s.ok()) return line_error(s.message());
      const std::optional<std::int64_t> time = event_.event_time_micros();
      if (!time.has_value()) {
        return line_error(absl::StrFormat(
            "time[\"%s\"]: empty; the spec's windowed aggregates need every event's time",
            decoder_.options().time_fields.front()));
      }
      with_aggregates_ = features_;
      aggregator.ComputeAndObserve(event_.key(), features_, *time, &with_aggregates_, &scratch_);
      features = with_aggregates_;
    }
    if (!label.has_value()) {
      step->ApplyUnlabeledEvent(state, features);
      return absl::OkStatus();
    }
    absl::StatusOr<learners::ClassIndex> y = pipeline.EncodeLabel(*label);
    if (!y.ok()) return line_error(y.status().message());  // ruled out above
    step->ApplyLabeledEvent(state, features, *y, /*weight=*/1.0, /*score=*/true);
    if (state->aggregator.has_value()) state->aggregator->ObserveLabel(features, *label, &scratch_);
    return absl::OkStatus();
  }

 private:
  explicit EventRows(features::CsvEventDecoder decoder) : decoder_(std::move(decoder)) {}

  features::CsvEventDecoder decoder_;
  features::DecodedEvent event_;
  std::vector<features::NamedFeature> features_;
  std::vector<features::NamedFeature> with_aggregates_;
  features::WindowAggregator::Scratch scratch_;
};

}  // namespace

absl::Status EvalOptions::Validate() const {
  if (data.empty()) return absl::InvalidArgumentError("--data is required");
  if ((checkpoint_every_rows > 0 || checkpoint_every_seconds > 0) && checkpoint_dir.empty()) {
    return absl::InvalidArgumentError(
        "--checkpoint-every-rows and --checkpoint-every-seconds need --checkpoint-dir");
  }
  if (!load_checkpoint.empty() && !checkpoint_dir.empty()) {
    return absl::InvalidArgumentError(
        "--load-checkpoint and --checkpoint-dir both name a starting point: use one");
  }
  if (checkpoint_every_seconds < 0 || checkpoint_keep == 0) {
    return absl::InvalidArgumentError(
        "--checkpoint-every-seconds must be >= 0 and --checkpoint-keep >= 1");
  }
  if (spec_file.empty() && (!id_column.empty() || !key_column.empty() || !time_column.empty())) {
    return absl::InvalidArgumentError(
        "--id, --key and --time name event columns of --spec models: without --spec every "
        "column but the target is a feature (use --drop to leave one out)");
  }
  if (!spec_file.empty()) {
    // The spec names the learner and says how every column is used; a flag saying it again
    // would be ignored or contradict it.
    if (!learner.empty()) {
      return absl::InvalidArgumentError(
          "--learner cannot be combined with --spec: the spec names the learner (learner:)");
    }
    if (!learner_options.empty()) {
      return absl::InvalidArgumentError(
          "--set cannot be combined with --spec: give learner options in the spec "
          "(learner_options:)");
    }
    if (!table.nominal.empty() || !table.drop.empty()) {
      return absl::InvalidArgumentError(
          "--nominal and --drop cannot be combined with --spec: declare the columns in the "
          "spec (features.declared, kind CATEGORICAL or DROP)");
    }
  }
  if (absl::Status s = table.Validate(); !s.ok()) return s;
  return metrics.Validate();
}

absl::StatusOr<EvalReport> RunEval(const EvalOptions& options, const EvalProgress& progress) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  checkpoints::Env* env = checkpoints::DefaultEnv();
  std::unique_ptr<checkpoints::CheckpointStore> store;
  if (!options.checkpoint_dir.empty()) {
    absl::StatusOr<std::unique_ptr<checkpoints::CheckpointStore>> opened =
        checkpoints::CheckpointStore::Open(
            env, {.dir = options.checkpoint_dir, .keep = options.checkpoint_keep});
    if (!opened.ok()) return opened.status();
    store = *std::move(opened);
  }
  // The learner (and any checkpoint) first: an unknown learner or option fails before I/O on
  // the data.
  std::optional<ModelDefinition> definition;
  if (!options.spec_file.empty()) {
    absl::StatusOr<ModelDefinition> loaded = LoadSpec(env, options.spec_file);
    if (!loaded.ok()) return loaded.status();
    definition = *std::move(loaded);
  }
  std::string resumed_from;
  bool from_store = false;
  std::vector<std::string> warnings;
  absl::StatusOr<checkpoints::ModelState> initial =
      InitialState(options, definition.has_value() ? &*definition : nullptr, env, store.get(),
                   &resumed_from, &from_store, &warnings);
  if (!initial.ok()) return initial.status();
  checkpoints::ModelState state = *std::move(initial);
  if (!options.dump_tree.empty() &&
      dynamic_cast<const learners::TreeModel*>(state.learner.get()) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--dump-tree needs a tree learner, not '%s'", state.learner->Kind()));
  }

  features::CsvReaderOptions reader_options;
  reader_options.cancel = options.stop;
  absl::StatusOr<std::unique_ptr<features::CsvReader>> reader_or =
      features::CsvReader::Open(options.data, reader_options);
  if (!reader_or.ok()) return reader_or.status();
  // A file is read, split and (for a table) parsed into numbers on a second thread while this
  // one runs the model; a pipe is read here (see ReadAheadCsvReader).
  absl::StatusOr<std::unique_ptr<features::ReadAheadCsvReader>> read_ahead =
      features::ReadAheadCsvReader::Create(*std::move(reader_or),
                                           {.parse_numbers = !definition.has_value()});
  if (!read_ahead.ok()) return read_ahead.status();
  features::ReadAheadCsvReader& reader = **read_ahead;

  const auto stop_requested = [&] {
    return options.stop != nullptr && options.stop->load(std::memory_order_relaxed);
  };
  // The next record; a read cancelled by a stop request ends the input like end of file.
  const auto next = [&](std::span<const std::string_view>* out) -> absl::StatusOr<bool> {
    absl::StatusOr<bool> got = reader.Next(out);
    if (!got.ok() && absl::IsCancelled(got.status()) && stop_requested()) return false;
    return got;
  };

  const auto start = std::chrono::steady_clock::now();
  std::span<const std::string_view> fields;
  absl::StatusOr<bool> more = next(&fields);
  if (!more.ok()) return more.status();
  if (!*more) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: no header row", reader.name()));
  }
  const std::vector<std::string> header(fields.begin(), fields.end());

  // A fresh model decides column types from the first rows, which are kept (as owned strings)
  // and replayed; a resumed one already has its schema.
  std::vector<std::vector<std::string>> buffered;
  std::optional<EventRows> event_rows;
  if (definition.has_value()) {
    // Events need no column typing: a field is a number or a text as it comes.
    absl::StatusOr<EventRows> rows = EventRows::Create(header, options, state, reader.name());
    if (!rows.ok()) return rows.status();
    event_rows = *std::move(rows);
  } else if (state.schema.has_value()) {
    if (absl::Status s = CheckSameTable(*state.schema, header, options, reader.name()); !s.ok()) {
      return s;
    }
  } else {
    features::ColumnTypeInference inference(header.size());
    while (buffered.size() < options.table.infer_rows) {
      more = next(&fields);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (fields.size() != header.size()) return RaggedRow(reader, fields.size(), header.size());
      inference.Observe(fields);
      buffered.emplace_back(fields.begin(), fields.end());
    }
    absl::StatusOr<features::TabularSchema> schema =
        features::TabularSchema::Create(header, options.table, inference);
    if (!schema.ok()) return schema.status();
    state.schema = *std::move(schema);
  }

  // Resuming from the store continues the same data: rows [0, first_row) were learned by the
  // checkpoint already. A checkpoint file given with --load-checkpoint continues learning on
  // new data, all of which is used.
  const auto offset = state.next_offsets.find(kRowsOffsetKey);
  const std::uint64_t first_row = from_store && offset != state.next_offsets.end()
                                      ? static_cast<std::uint64_t>(offset->second)
                                      : 0;
  std::uint64_t row = 0;
  std::uint64_t skipped_rows = 0;
  std::optional<checkpoints::Checkpointer> checkpointer;
  if (store != nullptr) checkpointer.emplace(store.get(), env);
  const auto snapshot = [&] {
    state.next_offsets[kRowsOffsetKey] = static_cast<std::int64_t>(row);
    return state.Clone();
  };
  std::uint64_t last_checkpoint_row = row;
  auto last_checkpoint_time = std::chrono::steady_clock::now();
  const auto maybe_checkpoint = [&] {
    const bool by_rows = options.checkpoint_every_rows > 0 &&
                         row - last_checkpoint_row >= options.checkpoint_every_rows;
    bool by_time = false;
    if (options.checkpoint_every_seconds > 0 && row % 1024 == 0) {
      by_time =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint_time)
              .count() >= options.checkpoint_every_seconds;
    }
    if (!by_rows && !by_time) return;
    // At most one checkpoint in flight: if the writer is still busy this trigger is skipped
    // and the next one tries again.
    if (checkpointer->TrySubmit(snapshot())) {
      last_checkpoint_row = row;
      last_checkpoint_time = std::chrono::steady_clock::now();
    }
  };

  PrequentialStep step;
  const auto process = [&](std::span<const std::string_view> record,
                           std::span<const double> numbers) -> absl::Status {
    if (row >= first_row) {
      if (event_rows.has_value()) {
        if (absl::Status s = event_rows->Apply(&state, record, reader, &step); !s.ok()) return s;
      } else {
        step.Apply(&state, record, numbers);
      }
    } else {
      ++skipped_rows;
    }
    ++row;
    if (checkpointer.has_value()) maybe_checkpoint();
    return absl::OkStatus();
  };
  std::vector<std::string_view> views;
  for (const std::vector<std::string>& owned : buffered) {
    views.assign(owned.begin(), owned.end());
    if (absl::Status s = process(views, {}); !s.ok()) return s;
  }
  buffered.clear();
  buffered.shrink_to_fit();
  while (!stop_requested()) {
    more = next(&fields);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (fields.size() != header.size()) return RaggedRow(reader, fields.size(), header.size());
    if (absl::Status s = process(fields, reader.numbers()); !s.ok()) return s;
    if (progress && row % kProgressEveryRows == 0) {
      progress(row, reader.bytes_read(), reader.size_bytes());
    }
  }
  const bool interrupted = stop_requested();

  // Final checkpoints: the store's newest generation, then the requested file.
  if (checkpointer.has_value()) {
    absl::StatusOr<std::uint64_t> generation = checkpointer->WriteNow(snapshot());
    if (!generation.ok()) return generation.status();
    const checkpoints::Checkpointer::Stats stats = checkpointer->stats();
    if (stats.failed > 0) {
      warnings.push_back(absl::StrFormat("%d periodic checkpoint(s) failed; the last error: %s",
                                         stats.failed, stats.last_error.message()));
    }
  }
  if (!options.save_checkpoint.empty()) {
    state.next_offsets[kRowsOffsetKey] = static_cast<std::int64_t>(row);
    if (absl::Status s = checkpoints::WriteModelCheckpointFile(env, options.save_checkpoint, state);
        !s.ok()) {
      return s;
    }
  }

  if (!options.dump_tree.empty()) {
    if (absl::Status s = DumpTree(state, options.dump_tree); !s.ok()) return s;
  }

  EvalReport report = Report(state);
  report.resumed_from = resumed_from;
  report.skipped_rows = skipped_rows;
  report.interrupted = interrupted;
  if (checkpointer.has_value()) {
    report.checkpoints_written = checkpointer->stats().written;
    report.last_checkpoint_generation = checkpointer->stats().last_generation;
  }
  report.warnings = std::move(warnings);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::uint64_t processed = row - skipped_rows;
  report.rows_per_second =
      report.seconds > 0 ? static_cast<double>(processed) / report.seconds : 0.0;
  return report;
}

std::string FormatEvalText(const EvalReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "learner          %s\n", r.learner);
  absl::StrAppendFormat(&out, "rows             %d (%d scored, %d unlabeled)\n", r.rows, r.scored,
                        r.unlabeled);
  absl::StrAppendFormat(&out, "classes          %d\n", r.classes.size());
  absl::StrAppendFormat(&out, "features         %d\n", r.num_features);
  absl::StrAppendFormat(&out, "%-16s %-12s %s\n", "metric", "cumulative",
                        absl::StrFormat("last %d", r.window));
  const auto row = [&](const char* name, const std::optional<double>& a,
                       const std::optional<double>& b) {
    absl::StrAppendFormat(&out, "  %-14s %-12s %s\n", name, FormatOptional(a), FormatOptional(b));
  };
  row("accuracy", r.cumulative.accuracy, r.rolling.accuracy);
  row("log_loss", r.cumulative.log_loss, r.rolling.log_loss);
  if (r.cumulative.roc_auc.has_value() || r.rolling.roc_auc.has_value()) {
    row("roc_auc", r.cumulative.roc_auc, r.rolling.roc_auc);
  }
  if (r.cumulative.precision.has_value()) {
    row("precision", r.cumulative.precision, r.rolling.precision);
    row("recall", r.cumulative.recall, r.rolling.recall);
    row("f1", r.cumulative.f1, r.rolling.f1);
  }
  row("macro_f1", r.cumulative.macro_f1, r.rolling.macro_f1);
  if (r.coerced_values > 0) {
    absl::StrAppendFormat(&out,
                          "note: %d non-numeric values in numeric columns were one-hot encoded\n",
                          r.coerced_values);
  }
  if (!r.resumed_from.empty()) {
    absl::StrAppendFormat(&out, "resumed from     %s\n", r.resumed_from);
    if (r.skipped_rows > 0) {
      absl::StrAppendFormat(&out, "skipped          %d rows the checkpoint had already learned\n",
                            r.skipped_rows);
    }
  }
  if (r.checkpoints_written > 0) {
    absl::StrAppendFormat(&out, "checkpoints      %d written, last generation %d\n",
                          r.checkpoints_written, r.last_checkpoint_generation);
  }
  if (r.interrupted) out += "interrupted      stopped early on a signal, after the row above\n";
  absl::StrAppendFormat(&out, "seconds          %.3f\n", r.seconds);
  absl::StrAppendFormat(&out, "rows/s           %.0f\n", r.rows_per_second);
  return out;
}

std::string FormatEvalJson(const EvalReport& r) {
  std::string out = "{";
  absl::StrAppendFormat(&out, "\"rows\": %d, ", r.rows);
  AppendMetricsJson(&out, r.cumulative);
  absl::StrAppendFormat(&out, ", \"seconds\": %s, \"rows_per_second\": %s", JsonNumber(r.seconds),
                        JsonNumber(r.rows_per_second));
  absl::StrAppendFormat(&out, ", \"scored\": %d, \"unlabeled\": %d, \"coerced_values\": %d",
                        r.scored, r.unlabeled, r.coerced_values);
  absl::StrAppendFormat(&out, ", \"learner\": ");
  AppendJsonString(&out, r.learner);
  absl::StrAppendFormat(&out, ", \"features\": %d, \"model_bytes\": %d", r.num_features,
                        r.model_bytes);
  out += ", \"classes\": [";
  for (std::size_t k = 0; k < r.classes.size(); ++k) {
    if (k > 0) out += ", ";
    AppendJsonString(&out, r.classes[k]);
  }
  absl::StrAppendFormat(&out,
                        "], \"skipped_rows\": %d, \"checkpoints_written\": %d, "
                        "\"last_checkpoint_generation\": %d, \"interrupted\": %s",
                        r.skipped_rows, r.checkpoints_written, r.last_checkpoint_generation,
                        r.interrupted ? "true" : "false");
  out += ", \"resumed_from\": ";
  AppendJsonString(&out, r.resumed_from);
  absl::StrAppendFormat(&out, ", \"rolling\": {\"window\": %d, ", r.window);
  AppendMetricsJson(&out, r.rolling);
  out += "}}";
  return out;
}

}  // namespace riffle::service
