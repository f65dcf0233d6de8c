#include "service/served_model.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_format.h"
#include "learners/registry.h"

namespace riffle::service {
namespace {

// Buffers of one predicting thread: predictions run concurrently, so scratch space belongs to
// the thread (STYLE.md 7), reused across calls so a warm prediction does not allocate.
struct PredictScratch {
  features::PipelineScratch pipeline;
  learners::FeatureVector x;
  std::vector<double> proba;
  std::vector<features::NamedFeature> with_aggregates;
};

absl::Status Prefixed(const std::string& prefix, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrFormat("%s%s", prefix, s.message()));
}

std::uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
}

LatencyValues Summarize(const LatencyHistogram& h) {
  LatencyValues v;
  v.count = h.count();
  v.p50_seconds = static_cast<double>(h.QuantileNanos(0.5)) * 1e-9;
  v.p99_seconds = static_cast<double>(h.QuantileNanos(0.99)) * 1e-9;
  v.max_seconds = static_cast<double>(h.max_nanos()) * 1e-9;
  return v;
}

}  // namespace

ServedModel::ServedModel(std::string name, ModelDefinition definition,
                         checkpoints::ModelState state, const Options& options)
    : name_(std::move(name)),
      options_(options),
      definition_(std::move(definition)),
      state_(std::move(state)),
      label_cache_(definition_.label_cache),
      predicted_class_(new std::atomic<std::uint64_t>[kMaxClasses]()),
      generation_(state_.generation),
      created_micros_(options.env->NowMicros()) {
  last_submit_micros_ = created_micros_;
  changes_at_submit_ = ChangesLocked();
  label_cache_.Import(std::move(state_.pending_labels), created_micros_);
  state_.pending_labels.clear();
  aggregator_ = std::move(state_.aggregator);
  state_.aggregator.reset();
  has_aggregator_ = aggregator_.has_value();
}

ServedModel::~ServedModel() { StopCheckpointing(); }

absl::Status ServedModel::OpenStore() {
  if (options_.checkpoint_dir.empty()) return absl::OkStatus();
  checkpoints::CheckpointStoreOptions store_options;
  store_options.dir = options_.checkpoint_dir;
  store_options.keep = options_.schedule.keep;
  absl::StatusOr<std::unique_ptr<checkpoints::CheckpointStore>> store =
      checkpoints::CheckpointStore::Open(options_.env, store_options);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  checkpointer_ = std::make_unique<checkpoints::Checkpointer>(store_.get(), options_.env);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::Create(std::string name,
                                                                 ModelDefinition definition,
                                                                 std::uint64_t version,
                                                                 const Options& options) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  absl::StatusOr<checkpoints::ModelState> state = NewModelState(name, definition, version);
  if (!state.ok()) return state.status();
  auto model = std::unique_ptr<ServedModel>(
      new ServedModel(std::move(name), std::move(definition), *std::move(state), options));
  if (absl::Status s = model->OpenStore(); !s.ok()) return s;
  if (model->store_ != nullptr) {
    absl::StatusOr<checkpoints::WrittenCheckpoint> first = model->CheckpointNow();
    if (!first.ok()) return first.status();
  }
  return model;
}

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::FromState(checkpoints::ModelState state,
                                                                    const Options& options) {
  if (!state.pipeline.has_value() || state.learner == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "model '%s': the checkpoint holds a model without an event pipeline (written by "
        "`riffle eval`?), which the service cannot serve",
        state.name));
  }
  absl::StatusOr<ModelDefinition> definition = DefinitionFromJson(state.spec);
  if (!definition.ok()) {
    return Prefixed(absl::StrFormat("model '%s': ", state.name), definition.status());
  }
  std::string name = state.name;
  auto model = std::unique_ptr<ServedModel>(
      new ServedModel(std::move(name), *std::move(definition), std::move(state), options));
  if (absl::Status s = model->OpenStore(); !s.ok()) return s;
  return model;
}

absl::Status ServedModel::Predict(std::span<const InstanceView> instances,
                                  PredictBatchResult* out) const {
  const auto start = std::chrono::steady_clock::now();
  thread_local PredictScratch scratch;
  {
    ReaderLock lock(&mu_);
    const features::Pipeline& pipeline = *state_.pipeline;
    for (std::size_t i = 0; i < instances.size(); ++i) {
      if (absl::Status s = ValidateEventLocked(instances[i].features); !s.ok()) {
        return Prefixed(absl::StrFormat("instances[%d].", i), s);
      }
    }
    BeginResultLocked(instances.size(), out);
    const std::size_t k = out->classes.size();
    const std::int64_t now = options_.env->NowMicros();
    for (std::size_t i = 0; i < instances.size(); ++i) {
      const InstanceView& instance = instances[i];
      const std::span<const features::NamedFeature> features = AggregateLocked(
          instance.key, instance.time_micros, instance.features, now, &scratch.with_aggregates);
      // Cached under the lock: aggregate names view the aggregator, which a restore replaces.
      if (!instance.id.empty()) label_cache_.Insert(instance.id, features, now);
      // Validated above; the pipeline's errors are the same checks.
      if (absl::Status s = pipeline.TransformForPredict(features, &scratch.x, &scratch.pipeline);
          !s.ok()) {
        return Prefixed(absl::StrFormat("instances[%d].", i), s);
      }
      state_.learner->PredictProbaOne(scratch.x, &scratch.proba);
      // Only classes with a name are reported: none before the first label (unless the spec
      // fixes them); a binary learner's second probability before the second class appears
      // is left out. Fixed classes the learner has no probability for yet get 0.
      const std::size_t known = std::min(k, scratch.proba.size());
      if (known == 0) continue;
      std::copy_n(scratch.proba.begin(), known, out->probabilities.begin() + i * k);
      out->predicted[i] = learners::ArgMax(std::span<const double>(scratch.proba.data(), known));
      CountPredicted(*out->predicted[i]);
    }
  }
  predictions_.fetch_add(instances.size(), std::memory_order_relaxed);
  predict_latency_.Record(NanosSince(start));
  return absl::OkStatus();
}

void ServedModel::BeginResultLocked(std::size_t n, PredictBatchResult* out) const {
  out->version = state_.version;
  out->generation = generation_.load(std::memory_order_relaxed);
  const std::vector<std::string>& names = state_.pipeline->labels().names();
  out->classes.assign(names.begin(), names.end());
  out->probabilities.assign(n * names.size(), 0.0);
  out->predicted.assign(n, std::nullopt);
}

absl::Status ServedModel::PredictDense(const DenseBatchView& batch, PredictBatchResult* out) const {
  const auto start = std::chrono::steady_clock::now();
  const std::size_t rows = batch.rows();
  const std::size_t cols = batch.names.size();
  thread_local PredictScratch scratch;
  thread_local features::Pipeline::DensePlan plan;
  if (batch.ids.empty()) {
    ReaderLock lock(&mu_);
    const features::Pipeline& pipeline = *state_.pipeline;
    // With aggregates every row is an event to record: the general path.
    if (!has_aggregator_ && pipeline.PlanDense(batch.names, &plan)) {
      BeginResultLocked(rows, out);
      const std::size_t k = out->classes.size();
      for (std::size_t r = 0; r < rows; ++r) {
        pipeline.TransformDenseForPredict(plan, batch.values.subspan(r * cols, cols), &scratch.x,
                                          &scratch.pipeline);
        state_.learner->PredictProbaOne(scratch.x, &scratch.proba);
        const std::size_t known = std::min(k, scratch.proba.size());
        if (known == 0) continue;
        std::copy_n(scratch.proba.begin(), known, out->probabilities.begin() + r * k);
        out->predicted[r] = learners::ArgMax(std::span<const double>(scratch.proba.data(), known));
        CountPredicted(*out->predicted[r]);
      }
      predictions_.fetch_add(rows, std::memory_order_relaxed);
      predict_latency_.Record(NanosSince(start));
      return absl::OkStatus();
    }
  }
  // The general path: named features per row (declared features, or ids to cache).
  std::vector<std::size_t> order(cols);
  for (std::size_t c = 0; c < cols; ++c) order[c] = c;
  std::sort(order.begin(), order.end(),
            [&batch](std::size_t a, std::size_t b) { return batch.names[a] < batch.names[b]; });
  std::vector<features::NamedFeature> storage;
  storage.reserve(rows * cols);
  std::vector<std::size_t> begin(rows + 1, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    begin[r] = storage.size();
    for (std::size_t c : order) {
      const double v = batch.values[r * cols + c];
      if (!std::isnan(v)) storage.push_back({batch.names[c], features::FeatureValue::Number(v)});
    }
  }
  begin[rows] = storage.size();
  std::vector<InstanceView> instances(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    instances[r].id = batch.ids.empty() ? std::string_view() : batch.ids[r];
    instances[r].features =
        std::span<const features::NamedFeature>(storage.data() + begin[r], begin[r + 1] - begin[r]);
  }
  return Predict(instances, out);
}

absl::Status ServedModel::Learn(std::span<const ExampleView> examples, bool skip_metrics,
                                LearnBatchResult* out,
                                std::chrono::system_clock::time_point deadline) {
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const ExampleView& e = examples[i];
    if (e.label.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("examples[%d].label: required (the class name)", i));
    }
    if (!std::isfinite(e.weight) || e.weight <= 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("examples[%d].weight: must be finite and > 0, got %g", i, e.weight));
    }
    if (e.instance.features.empty() && e.instance.id.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "examples[%d].instance: give features, or the id of an earlier prediction", i));
    }
  }
  *out = LearnBatchResult();
  WriterLock writer(&writer_mu_);
  {
    WriterLock lock(&mu_);
    if (absl::Status s = LearnLocked(examples, skip_metrics, deadline, out); !s.ok()) return s;
  }
  SubmitIfEventsDue();
  learn_latency_.Record(NanosSince(start));
  return absl::OkStatus();
}

absl::Status ServedModel::LearnLocked(std::span<const ExampleView> examples, bool skip_metrics,
                                      std::chrono::system_clock::time_point deadline,
                                      LearnBatchResult* out) {
  features::Pipeline& pipeline = *state_.pipeline;
  std::unordered_set<std::string_view> new_labels;
  // Everything is checked before anything is learned: a rejected batch changes nothing.
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const ExampleView& e = examples[i];
    if (!e.by_id) {
      if (absl::Status s = ValidateEventLocked(e.instance.features); !s.ok()) {
        return Prefixed(absl::StrFormat("examples[%d].instance.", i), s);
      }
    }
    if (!pipeline.FindLabel(e.label).has_value()) {
      if (!pipeline.spec().classes.empty()) {
        return Prefixed(absl::StrFormat("examples[%d].", i),
                        pipeline.EncodeLabel(e.label).status());
      }
      new_labels.insert(e.label);
      if (pipeline.labels().size() + new_labels.size() > kMaxClasses) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "examples[%d].label.class_name: \"%s\" would be class %d; a model has at most %d", i,
            e.label.substr(0, 64), pipeline.labels().size() + new_labels.size(), kMaxClasses));
      }
    }
  }
  if (std::chrono::system_clock::now() > deadline) {
    return absl::DeadlineExceededError(
        "the deadline passed while the batch waited for the model: nothing was learned");
  }
  const std::int64_t now = options_.env->NowMicros();
  features::OwnedFeatures cached;
  std::vector<features::NamedFeature> cached_views;
  std::vector<features::NamedFeature> with_aggregates;
  for (const ExampleView& e : examples) {
    std::span<const features::NamedFeature> features;
    if (!e.by_id) {
      // An event the model had not seen: it gets its aggregates and is recorded, as predicted.
      features = AggregateLocked(e.instance.key, e.instance.time_micros, e.instance.features, now,
                                 &with_aggregates);
    } else {
      std::optional<features::OwnedFeatures> hit = label_cache_.Take(e.instance.id, now);
      if (!hit.has_value()) {
        ++out->cache_misses;
        continue;
      }
      cached = *std::move(hit);
      cached.Views(&cached_views);
      // Cached features passed validation when predicted, but the model may have been
      // restored to another spec since: a cached event the pipeline now rejects is a miss.
      if (!pipeline.Validate(cached_views).ok()) {
        ++out->cache_misses;
        continue;
      }
      features = cached_views;
    }
    absl::StatusOr<learners::ClassIndex> y = pipeline.EncodeLabel(e.label);
    if (!y.ok()) return y.status();  // ruled out above
    step_.ApplyLabeledEvent(&state_, features, *y, e.weight, !skip_metrics);
    AggregateLabelLocked(features, e.label);
    ++out->learned;
  }
  out->version = state_.version;
  out->generation = generation_.load(std::memory_order_relaxed);
  return absl::OkStatus();
}

void ServedModel::SubmitIfEventsDue() {
  const std::uint64_t every = options_.schedule.every_events;
  if (checkpointer_ == nullptr || every == 0) return;
  ReaderLock lock(&mu_);
  // (After a failed write, changes_at_submit_ is kNeverSubmitted: the time trigger retries, not
  // every batch.)
  if (changes_at_submit_ != kNeverSubmitted && ChangesLocked() - changes_at_submit_ >= every) {
    SubmitLocked();
  }
}

bool ServedModel::SubmitLocked() {
  if (retired_) return false;
  // Predictions run meanwhile (mu_ is held shared). Those with ids insert into the label cache
  // and those of a model with aggregates record their events; the copies below each see such
  // a prediction either entirely or not at all, which is a state the model could have been
  // checkpointed in. (Nothing tracked by the input offsets changes: that needs writer_mu_.)
  // No snapshot is made while the previous one is being written (it would be thrown away).
  const bool submitted = checkpointer_->TrySubmitWith([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    checkpoints::ModelState snapshot = state_.Clone();
    snapshot.pending_labels = label_cache_.Export();
    {
      std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
      snapshot.aggregator = aggregator_;
    }
    if (options_.on_snapshot) options_.on_snapshot();
    return snapshot;
  });
  if (!submitted) return false;
  changes_at_submit_ = ChangesLocked();
  last_submit_micros_ = options_.env->NowMicros();
  return true;
}

bool ServedModel::DirtyLocked() {
  const std::uint64_t failed = checkpointer_->stats().failed;
  if (failed != failed_seen_) {
    // A write failed: what it held is not durable, whatever was handed over since.
    failed_seen_ = failed;
    changes_at_submit_ = kNeverSubmitted;
  }
  return ChangesLocked() != changes_at_submit_;
}

void ServedModel::MaybeCheckpoint(std::int64_t now_micros) {
  if (checkpointer_ == nullptr) return;
  NoteWritten(checkpointer_->stats());
  const double every = options_.schedule.every_seconds;
  if (every <= 0) return;
  WriterLock writer(&writer_mu_);
  ReaderLock lock(&mu_);
  if (static_cast<double>(now_micros - last_submit_micros_) < every * 1e6) return;
  if (DirtyLocked()) SubmitLocked();
}

void ServedModel::NoteWritten(const checkpoints::Checkpointer::Stats& stats) {
  // A monotonic maximum: the timer and a Checkpoint call may note concurrently.
  std::uint64_t seen = generation_.load(std::memory_order_relaxed);
  while (
      stats.last_generation > seen &&
      !generation_.compare_exchange_weak(seen, stats.last_generation, std::memory_order_relaxed)) {
  }
  if (stats.last_generation > seen) {
    last_checkpoint_micros_.store(options_.env->NowMicros(), std::memory_order_relaxed);
  }
}

absl::StatusOr<checkpoints::WrittenCheckpoint> ServedModel::CheckpointNow() {
  if (checkpointer_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "model '%s' has no checkpoint directory (serve with --checkpoint-dir)", name_));
  }
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  return CheckpointNowLocked();
}

absl::StatusOr<checkpoints::WrittenCheckpoint> ServedModel::CheckpointNowLocked() {
  // The snapshot is taken and handed over in one critical section, never waiting for the disk
  // with the model locked: a snapshot a Learn hands over later is of a newer state and is
  // written after this one, so the newest file is always the newest state.
  std::uint64_t failed_before = 0;
  for (;;) {
    checkpointer_->Wait();
    WriterLock writer(&writer_mu_);
    ReaderLock lock(&mu_);
    if (retired_) return absl::NotFoundError(absl::StrFormat("model '%s' was deleted", name_));
    failed_before = checkpointer_->stats().failed;
    if (SubmitLocked()) break;
  }
  checkpointer_->Wait();
  const checkpoints::Checkpointer::Stats stats = checkpointer_->stats();
  if (stats.failed != failed_before) return stats.last_error;
  NoteWritten(stats);
  checkpoints::WrittenCheckpoint written;
  written.generation = stats.last_generation;
  written.path = store_->PathFor(stats.last_generation);
  written.size_bytes = stats.last_bytes;
  return written;
}

absl::Status ServedModel::CheckpointIfDirty() {
  if (checkpointer_ == nullptr) return absl::OkStatus();
  checkpointer_->Wait();
  bool dirty = false;
  {
    WriterLock writer(&writer_mu_);
    ReaderLock lock(&mu_);
    dirty = !retired_ && DirtyLocked();
  }
  if (!dirty) {
    NoteWritten(checkpointer_->stats());
    return absl::OkStatus();
  }
  return CheckpointNow().status();
}

absl::StatusOr<std::vector<checkpoints::CheckpointInfo>> ServedModel::ListCheckpoints() const {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("model '%s' has no checkpoint directory", name_));
  }
  return store_->List();
}

absl::Status ServedModel::Restore(std::uint64_t generation) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("model '%s' has no checkpoint directory", name_));
  }
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  absl::StatusOr<checkpoints::ModelState> state = absl::NotFoundError("no checkpoint");
  absl::StatusOr<checkpoints::LoadedCheckpoint> loaded =
      generation == 0 ? store_->LoadNewestValid([&state](std::string_view payload) {
        state = checkpoints::ParseModelState(payload);
        return state.status();
      })
                      : store_->Load(generation);
  if (!loaded.ok()) return loaded.status();
  if (generation != 0) state = checkpoints::ParseModelState(loaded->payload);
  if (!state.ok()) {
    return Prefixed(absl::StrFormat("%s: ", loaded->path), state.status());
  }
  if (state->name != name_) {
    return absl::DataLossError(
        absl::StrFormat("%s holds model '%s', not '%s'", loaded->path, state->name, name_));
  }
  if (!state->pipeline.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s holds a model without an event pipeline", loaded->path));
  }
  absl::StatusOr<ModelDefinition> definition = DefinitionFromJson(state->spec);
  if (!definition.ok()) return Prefixed(absl::StrFormat("%s: ", loaded->path), definition.status());
  state->generation = loaded->generation;
  {
    WriterLock writer(&writer_mu_);
    WriterLock lock(&mu_);
    if (retired_) return absl::NotFoundError(absl::StrFormat("model '%s' was deleted", name_));
    state_ = *std::move(state);
    definition_ = *std::move(definition);
    label_cache_.Import(std::move(state_.pending_labels), options_.env->NowMicros());
    state_.pending_labels.clear();
    {
      std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
      aggregator_ = std::move(state_.aggregator);
      has_aggregator_ = aggregator_.has_value();
    }
    state_.aggregator.reset();
    changes_at_submit_ = kNeverSubmitted;
  }
  // Durable at once, as the newest generation: otherwise a restart would load the newer state
  // this restore replaced. (A snapshot handed over before the swap is written first.)
  absl::StatusOr<checkpoints::WrittenCheckpoint> written = CheckpointNowLocked();
  if (!written.ok()) {
    return absl::Status(written.status().code(),
                        absl::StrFormat("restored generation %d, but writing it as the newest "
                                        "generation failed (retried at the next trigger): %s",
                                        loaded->generation, written.status().message()));
  }
  return absl::OkStatus();
}

void ServedModel::Retire() {
  {
    WriterLock writer(&writer_mu_);
    WriterLock lock(&mu_);
    retired_ = true;
  }
  // A manual checkpoint or restore in progress finishes first; none starts after.
  std::lock_guard<std::mutex> checkpoint(checkpoint_mu_);
  StopCheckpointing();
}

void ServedModel::StopCheckpointing() {
  if (checkpointer_ != nullptr) checkpointer_->Wait();
}

void ServedModel::ApplyStream(std::span<const StreamRecordView> records, StreamBatchResult* out) {
  const auto start = std::chrono::steady_clock::now();
  out->probabilities.clear();
  out->records.assign(records.size(), StreamRecordResult());
  WriterLock writer(&writer_mu_);
  std::uint64_t learned = 0;
  {
    WriterLock lock(&mu_);
    learned = ApplyStreamLocked(records, out);
  }
  SubmitIfEventsDue();
  if (learned > 0) learn_latency_.Record(NanosSince(start));
}

std::uint64_t ServedModel::ApplyStreamLocked(std::span<const StreamRecordView> records,
                                             StreamBatchResult* out) {
  features::OwnedFeatures cached;
  std::vector<features::NamedFeature> cached_views;
  std::vector<features::NamedFeature> with_aggregates;
  features::Pipeline& pipeline = *state_.pipeline;
  const std::int64_t now = options_.env->NowMicros();
  std::uint64_t learned = 0;
  std::string_view run_input;
  std::int64_t run_next = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const StreamRecordView& r = records[i];
    StreamRecordResult& result = out->records[i];
    // Offsets are taken per run of records from one input (a map write per run, not per record).
    if (r.input != run_input) {
      if (!run_input.empty()) state_.next_offsets[std::string(run_input)] = run_next;
      run_input = r.input;
    }
    run_next = r.next_offset;
    std::span<const features::NamedFeature> features = r.features;
    if (r.kind == StreamRecordView::Kind::kSkip) {
      result.outcome = StreamRecordResult::Outcome::kSkipped;
      continue;
    }
    if (r.kind == StreamRecordView::Kind::kLabel) {
      if (!r.label.has_value() || r.label->empty()) {
        result.outcome = StreamRecordResult::Outcome::kRejected;
        result.error = absl::InvalidArgumentError("label: required (the class name)");
        continue;
      }
      // The label is checked before the cached event is taken: a bad label leaves the event
      // waiting for a good one.
      if (absl::Status s = CheckStreamLabel(*r.label); !s.ok()) {
        result.outcome = StreamRecordResult::Outcome::kRejected;
        result.error = s;
        continue;
      }
      std::optional<features::OwnedFeatures> hit = label_cache_.Take(r.id, now);
      // Cached features passed validation when predicted, but the model may have been restored
      // to another spec since: a cached event the pipeline now rejects is a miss.
      if (hit.has_value()) {
        cached = *std::move(hit);
        cached.Views(&cached_views);
      }
      if (!hit.has_value() || !pipeline.Validate(cached_views).ok()) {
        result.outcome = StreamRecordResult::Outcome::kLabelMissed;
        continue;
      }
      result.outcome = StreamRecordResult::Outcome::kLabelJoined;
      features = cached_views;
    } else {
      if (absl::Status s = ValidateEventLocked(features); !s.ok()) {
        result.outcome = StreamRecordResult::Outcome::kRejected;
        result.error = s;
        continue;
      }
      if (r.label.has_value()) {
        if (absl::Status s = CheckStreamLabel(*r.label); !s.ok()) {
          result.outcome = StreamRecordResult::Outcome::kRejected;
          result.error = s;
          continue;
        }
      }
      features = AggregateLocked(r.key, r.time_micros, features, now, &with_aggregates);
    }
    std::span<const double> proba;
    if (r.label.has_value()) {
      absl::StatusOr<learners::ClassIndex> y = pipeline.EncodeLabel(*r.label);
      if (!y.ok()) {  // ruled out by CheckStreamLabel
        result.outcome = StreamRecordResult::Outcome::kRejected;
        result.error = y.status();
        continue;
      }
      proba = step_.ApplyLabeledEvent(&state_, features, *y, 1.0, /*score=*/true);
      AggregateLabelLocked(features, *r.label);
      ++learned;
    } else {
      proba = step_.ApplyUnlabeledEvent(&state_, features);
      if (!r.id.empty()) label_cache_.Insert(r.id, features, now);
    }
    if (result.outcome == StreamRecordResult::Outcome::kPredicted) {
      const std::size_t known = std::min(proba.size(), pipeline.labels().size());
      result.proba_begin = out->probabilities.size();
      result.proba_count = known;
      out->probabilities.insert(out->probabilities.end(), proba.begin(), proba.begin() + known);
      if (known > 0) {
        result.predicted = learners::ArgMax(proba.first(known));
        CountPredicted(*result.predicted);
      }
    }
  }
  if (!run_input.empty()) state_.next_offsets[std::string(run_input)] = run_next;
  out->version = state_.version;
  out->generation = generation_.load(std::memory_order_relaxed);
  const std::vector<std::string>& names = pipeline.labels().names();
  out->classes.assign(names.begin(), names.end());
  return learned;
}

void TuneAllocatorForServing() { mallopt(M_MXFAST, 0); }

absl::Status ServedModel::ValidateEventLocked(
    std::span<const features::NamedFeature> features) const {
  if (absl::Status s = state_.pipeline->Validate(features); !s.ok()) return s;
  if (!has_aggregator_) return absl::OkStatus();
  std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
  return aggregator_.has_value() ? aggregator_->Validate(features) : absl::OkStatus();
}

std::span<const features::NamedFeature> ServedModel::AggregateLocked(
    std::optional<std::string_view> key, std::optional<std::int64_t> time_micros,
    std::span<const features::NamedFeature> features, std::int64_t now_micros,
    std::vector<features::NamedFeature>* storage) const {
  if (!has_aggregator_) return features;
  std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
  if (!aggregator_.has_value()) return features;
  const std::int64_t time = time_micros.value_or(now_micros);
  storage->assign(features.begin(), features.end());
  aggregator_->ComputeAndObserve(key, features, time, storage, &aggregator_scratch_);
  return *storage;
}

void ServedModel::AggregateLabelLocked(std::span<const features::NamedFeature> features,
                                       std::string_view label) {
  if (!has_aggregator_) return;
  std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
  if (aggregator_.has_value()) aggregator_->ObserveLabel(features, label, &aggregator_scratch_);
}

absl::Status ServedModel::CheckStreamLabel(std::string_view label) {
  features::Pipeline& pipeline = *state_.pipeline;
  if (pipeline.FindLabel(label).has_value()) return absl::OkStatus();
  if (!pipeline.spec().classes.empty()) return pipeline.EncodeLabel(label).status();
  if (pipeline.labels().size() + 1 > kMaxClasses) {
    return absl::InvalidArgumentError(
        absl::StrFormat("label: \"%s\" would be class %d; a model has at most %d",
                        label.substr(0, 64), pipeline.labels().size() + 1, kMaxClasses));
  }
  return absl::OkStatus();
}

std::map<std::string, std::int64_t> ServedModel::NextOffsets() const {
  ReaderLock lock(&mu_);
  return state_.next_offsets;
}

void ServedModel::SetCheckpointHooks(checkpoints::Checkpointer::Hooks hooks) {
  if (checkpointer_ != nullptr) checkpointer_->SetHooks(std::move(hooks));
}

ModelInfo ServedModel::Info() const {
  ModelInfo info;
  info.name = name_;
  ReaderLock lock(&mu_);
  info.definition = definition_;
  info.version = state_.version;
  info.generation = generation_.load(std::memory_order_relaxed);
  info.classes = state_.pipeline->labels().names();
  const std::uint64_t served = predictions_.load(std::memory_order_relaxed);
  info.events = state_.counters.events + served;
  info.labeled = state_.counters.labeled;
  info.unlabeled = state_.counters.unlabeled + served;
  info.memory_bytes = state_.learner->MemoryBytes() + state_.pipeline->MemoryBytes() +
                      state_.metrics.MemoryBytes() + label_cache_.stats().bytes;
  {
    std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
    if (aggregator_.has_value()) info.memory_bytes += aggregator_->MemoryBytes();
  }
  info.drift_detections = state_.learner->DriftDetections();
  info.created_micros = created_micros_;
  info.last_checkpoint_micros = last_checkpoint_micros_.load(std::memory_order_relaxed);
  return info;
}

std::vector<std::uint64_t> ServedModel::predicted_class_counts() const {
  std::vector<std::uint64_t> counts(kMaxClasses);
  std::size_t used = 0;
  for (std::size_t k = 0; k < kMaxClasses; ++k) {
    counts[k] = predicted_class_[k].load(std::memory_order_relaxed);
    if (counts[k] > 0) used = k + 1;
  }
  counts.resize(used);
  return counts;
}

ModelMetricsReport ServedModel::Metrics() const {
  ModelMetricsReport r;
  {
    ReaderLock lock(&mu_);
    const bool binary = state_.pipeline->labels().size() == 2;
    // Each snapshot reads ROC AUC with a pass over its 2^16 bins (tens of microseconds), the
    // price of O(1) updates; learning waits that long per report, predictions do not.
    r.cumulative = SnapshotMetrics(state_.metrics.cumulative(), binary);
    r.rolling = SnapshotMetrics(state_.metrics.rolling(), binary);
    r.window = static_cast<std::uint32_t>(state_.metrics.options().window);
    const std::uint64_t served = predictions_.load(std::memory_order_relaxed);
    r.events = state_.counters.events + served;
    r.labeled = state_.counters.labeled;
    r.unlabeled = state_.counters.unlabeled + served;
  }
  r.label_cache = label_cache_.stats();
  {
    std::lock_guard<std::mutex> aggregator_lock(aggregator_mu_);
    if (aggregator_.has_value()) r.aggregates = aggregator_->stats();
  }
  r.predict_latency = Summarize(predict_latency_);
  r.learn_latency = Summarize(learn_latency_);
  return r;
}

}  // namespace riffle::service
