#ifndef RIFFLE_SERVICE_SERVED_MODEL_H_
#define RIFFLE_SERVICE_SERVED_MODEL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/checkpointer.h"
#include "checkpoints/env.h"
#include "checkpoints/model_checkpoint.h"
#include "checkpoints/store.h"
#include "features/event.h"
#include "service/label_cache.h"
#include "service/latency_histogram.h"
#include "service/metric_values.h"
#include "service/model_definition.h"
#include "service/prequential.h"
#include "service/rw_mutex.h"

namespace riffle::service {

// One instance to predict on: views into the caller's request.
struct InstanceView {
  std::string_view id;
  std::span<const features::NamedFeature> features;
  // The entity (card, user) and the event time, for windowed aggregates: nullopt when the event
  // has none (the time is then the time the model receives it).
  std::optional<std::string_view> key = std::nullopt;
  std::optional<std::int64_t> time_micros = std::nullopt;
};

// One example to learn from. `by_id`: the features are those cached when `instance.id` was
// predicted (instance.features is ignored).
struct ExampleView {
  InstanceView instance;
  std::string_view label;
  double weight = 1.0;
  bool by_id = false;
};

// Numeric instances in columns (gRPC DenseBatch): views into the caller's request.
struct DenseBatchView {
  std::span<const std::string_view> names;
  std::span<const double> values;         // rows * names.size(), row-major; NaN = missing
  std::span<const std::string_view> ids;  // empty or one per row
  std::size_t rows() const { return names.empty() ? 0 : values.size() / names.size(); }
};

struct PredictBatchResult {
  std::uint64_t version = 0;
  std::uint64_t generation = 0;
  // The model's classes when it predicted, in class-index order.
  std::vector<std::string> classes;
  // classes.size() probabilities per instance, instance after instance. All zero for an
  // instance when the model has no class yet (predicted[i] is then nullopt).
  std::vector<double> probabilities;
  std::vector<std::optional<std::uint32_t>> predicted;
};

struct LearnBatchResult {
  std::uint64_t learned = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t version = 0;
  std::uint64_t generation = 0;
};

// One record of a model's Kafka inputs, decoded: an event (labeled or not) from an events
// topic, or a delayed label for the id of an earlier event, from a labels topic. Views into
// the caller's buffers.
struct StreamRecordView {
  // kSkip: a record that could not be decoded (dead-lettered by the caller): only its offset
  // is taken.
  enum class Kind : std::uint8_t { kEvent, kLabel, kSkip };
  Kind kind = Kind::kEvent;
  std::string_view id;
  std::span<const features::NamedFeature> features;  // kEvent
  std::optional<std::string_view> label;             // required for kLabel
  // The input it came from ("topic/partition", the key of ModelState::next_offsets) and the
  // offset to resume after it (its offset + 1).
  std::string_view input;
  std::int64_t next_offset = 0;
  // kEvent: the entity and the event time, as InstanceView's.
  std::optional<std::string_view> key = std::nullopt;
  std::optional<std::int64_t> time_micros = std::nullopt;
};

struct StreamRecordResult {
  enum class Outcome : std::uint8_t {
    kPredicted,    // an event: predicted (and, if labeled, scored and learned)
    kLabelJoined,  // a label whose event was cached: scored and learned
    kLabelMissed,  // a label for an id not (or no longer) cached: nothing learned
    kRejected,     // invalid (error says why): nothing learned, nothing predicted
    kSkipped,      // a kSkip record
  };
  Outcome outcome = Outcome::kPredicted;
  absl::Status error;
  // kPredicted: the probabilities, StreamBatchResult::probabilities[proba_begin ..
  // proba_begin + proba_count) in class-index order (fewer than the classes while the learner
  // has not seen them all), and the predicted class; nullopt before the model knows a class.
  std::size_t proba_begin = 0;
  std::size_t proba_count = 0;
  std::optional<std::uint32_t> predicted;
};

struct StreamBatchResult {
  std::uint64_t version = 0;
  std::uint64_t generation = 0;
  std::vector<std::string> classes;  // the model's classes after the batch
  std::vector<double> probabilities;
  std::vector<StreamRecordResult> records;  // one per record, in order
};

struct ModelInfo {
  std::string name;
  ModelDefinition definition;
  std::uint64_t version = 0;
  std::uint64_t generation = 0;
  std::vector<std::string> classes;
  std::uint64_t events = 0;
  std::uint64_t labeled = 0;
  std::uint64_t unlabeled = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t drift_detections = 0;       // by the learner (Classifier::DriftDetections)
  std::int64_t created_micros = 0;          // when this process created or restored the model
  std::int64_t last_checkpoint_micros = 0;  // 0: none written by this process
};

struct LatencyValues {
  double p50_seconds = 0, p99_seconds = 0, max_seconds = 0;
  std::uint64_t count = 0;
};

struct ModelMetricsReport {
  MetricValues cumulative;
  MetricValues rolling;
  std::uint32_t window = 0;
  std::uint64_t events = 0, labeled = 0, unlabeled = 0;
  LabelCache::Stats label_cache;
  LatencyValues predict_latency;
  LatencyValues learn_latency;
  // The windowed aggregates' counters; nullopt for a model without aggregates.
  std::optional<features::WindowAggregator::Stats> aggregates;
};

struct CheckpointSchedule {
  // Write a checkpoint after this many events learned (or consumed from Kafka; 0: not by count)...
  std::uint64_t every_events = 100'000;
  // ...or when this many seconds passed since the last one and something was learned (0: not
  // by time). Checked by the registry's timer.
  double every_seconds = 60;
  // Generations kept in the model's store.
  std::size_t keep = 5;
};

// One model as the service runs it: its state (spec, pipeline, learner, metrics), the label
// cache of its predictions, its latency histograms, and its checkpoint store.
//
// Concurrency (DESIGN.md "one writer per model"): the state is guarded by a reader/writer
// mutex. Predict takes it shared, so predictions run in parallel and never wait on each other;
// Learn and Restore take it exclusively, so learning is applied one batch at a time in the
// order the batches acquire the lock, and a prediction sees the model either before or after a
// batch, never in between. RwMutex favours a waiting writer over new readers, so a steady
// stream of predictions cannot starve learning.
//
// Windowed aggregates: every event the model predicts (gRPC Predict and Learn with features,
// the Kafka path) first gets its aggregate features from the per-key state, then is recorded
// in it; the features the label cache keeps for a learn by id include them, so a delayed label
// learns exactly what was predicted on. Since predictions record events, the aggregator has its
// own mutex, taken inside mu_ for the short time of one event's aggregates.
//
// Checkpoints: a snapshot (ModelState::Clone, the label cache's entries, a copy-on-write copy
// of the aggregator) is taken with mu_ held shared, so predictions keep running while it is
// copied; serialization and I/O run on the model's Checkpointer thread. Every writer of the
// state first takes writer_mu_, and the snapshot is taken by a thread holding writer_mu_: so
// while a snapshot is copied no writer waits on mu_, and predictions (which RwMutex would
// otherwise queue behind a waiting writer) never wait for a snapshot. Learning waits for it.
class ServedModel {
 public:
  struct Options {
    checkpoints::Env* env = nullptr;  // clock and filesystem; required
    // The model's own checkpoint directory ("" = no checkpoints).
    std::string checkpoint_dir;
    CheckpointSchedule schedule;
    // Called while a checkpoint's snapshot is taken (after the copies, with the model locked
    // shared as predictions hold it); for tests that show what runs meanwhile. May be empty.
    std::function<void()> on_snapshot;
  };

  // A new model from a validated definition. Opens the store (if any) and makes the model
  // durable at once with a first checkpoint, so a model created over gRPC survives a restart.
  static absl::StatusOr<std::unique_ptr<ServedModel>> Create(std::string name,
                                                             ModelDefinition definition,
                                                             std::uint64_t version,
                                                             const Options& options);

  // The model held by `state` (from a checkpoint: its spec JSON must convert). Does not write.
  static absl::StatusOr<std::unique_ptr<ServedModel>> FromState(checkpoints::ModelState state,
                                                                const Options& options);

  ~ServedModel();
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  // Predicts every instance with one consistent model state. InvalidArgument (naming
  // "instances[i].features[...]") if any instance is invalid: then nothing is predicted.
  // Instances with an id are cached for a later learn by id.
  absl::Status Predict(std::span<const InstanceView> instances, PredictBatchResult* out) const;

  // The same for a dense batch (names distinct and non-empty, values finite or NaN, sizes
  // consistent: the caller validates). Predictions are bit-identical to Predict() on the same
  // instances with their features in name order; without ids and with a pass-through
  // pipeline, names are resolved once per batch instead of once per value.
  absl::Status PredictDense(const DenseBatchView& batch, PredictBatchResult* out) const;

  // Learns the examples in order, test-then-train unless `skip_metrics`. All-or-nothing on
  // invalid input: InvalidArgument naming "examples[i]...." and nothing learned. Examples by
  // id whose id is not cached are counted as misses, not errors.
  // `deadline`: checked once the writer lock is held; a batch whose caller gave up while
  // it waited is not learned (DeadlineExceeded), so the caller's retry does not learn it twice.
  absl::Status Learn(std::span<const ExampleView> examples, bool skip_metrics,
                     LearnBatchResult* out,
                     std::chrono::system_clock::time_point deadline =
                         std::chrono::system_clock::time_point::max());

  // The Kafka path: applies the records in order under the writer lock, so the batch and the
  // input positions it reaches change together (exactly-once learning: a snapshot never holds
  // a learned event without its offset, nor the reverse). An event is predicted; a labeled
  // one is then scored and learned (test-then-train); an unlabeled one with an id is cached
  // for its delayed label. A label learns the cached event's features. An invalid record is
  // rejected alone (its error names the field) and the others are applied; every record's
  // offset is taken either way. Never fails as a whole.
  void ApplyStream(std::span<const StreamRecordView> records, StreamBatchResult* out);
  // The input positions of the model's state (ModelState::next_offsets).
  std::map<std::string, std::int64_t> NextOffsets() const;
  // Installs hooks on the model's checkpointer (no-op without a store); see
  // checkpoints::Checkpointer::Hooks. Empty hooks remove them.
  void SetCheckpointHooks(checkpoints::Checkpointer::Hooks hooks);

  ModelInfo Info() const;
  ModelMetricsReport Metrics() const;
  const std::string& name() const { return name_; }
  // For exporters (the HTTP metrics endpoint): lock-free reads that never wait on the model.
  const LatencyHistogram& predict_latency() const { return predict_latency_; }
  const LatencyHistogram& learn_latency() const { return learn_latency_; }
  std::uint64_t predictions() const { return predictions_.load(std::memory_order_relaxed); }
  // Predictions by predicted class index (gRPC Predict and the Kafka path; not the scoring of
  // labeled examples learned through gRPC), counted by this process: element k counts class k,
  // up to the last class predicted so far.
  std::vector<std::uint64_t> predicted_class_counts() const;
  // The checkpointer's counters (its own mutex, not the model's); nullopt without checkpoints.
  std::optional<checkpoints::Checkpointer::Stats> checkpoint_stats() const {
    if (checkpointer_ == nullptr) return std::nullopt;
    return checkpointer_->stats();
  }

  // Most classes a model may have (a label beyond is INVALID_ARGUMENT): every class costs a
  // weight column and grows the metrics' confusion matrices quadratically.
  static constexpr std::size_t kMaxClasses = 1000;

  // Writes a checkpoint of the current state now, as the newest generation (after the one in
  // flight). NotFound for a deleted model.
  absl::StatusOr<checkpoints::WrittenCheckpoint> CheckpointNow();
  // Submits a checkpoint if the time trigger is due and something was learned since the last
  // one; called by the registry's timer.
  void MaybeCheckpoint(std::int64_t now_micros);
  // Final checkpoint of a graceful shutdown, if anything was learned since the last one.
  absl::Status CheckpointIfDirty();
  absl::StatusOr<std::vector<checkpoints::CheckpointInfo>> ListCheckpoints() const;
  // Replaces the state with generation `generation` of the model's own store (0: the newest
  // valid one) and writes it at once as the newest generation, so a restart serves the
  // restored state. NotFound for an unknown generation, DataLoss for a damaged one (the model
  // is then unchanged), FailedPrecondition without a store.
  absl::Status Restore(std::uint64_t generation);
  // Waits for the checkpoint in flight; afterwards no background write touches the store.
  void StopCheckpointing();
  // For a model deleted from the registry: no checkpoint is written any more (in-flight calls
  // that still hold the model may finish, but cannot recreate files in its store).
  void Retire();
  // The store, or null without checkpoints.
  checkpoints::CheckpointStore* store() const { return store_.get(); }

 private:
  ServedModel(std::string name, ModelDefinition definition, checkpoints::ModelState state,
              const Options& options);
  absl::Status OpenStore();
  // Starts *out for n instances of the model as it is (the reader lock held).
  void BeginResultLocked(std::size_t n, PredictBatchResult* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void NoteWritten(const checkpoints::Checkpointer::Stats& stats);
  // Hands a snapshot of the state to the checkpointer; false if it is busy (or retired).
  bool SubmitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Whether the state differs from the last snapshot handed over, or a write failed since.
  bool DirtyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // After a writer's batch (mu_ released): submits a snapshot, taken with mu_ held shared, if
  // the every_events trigger is due.
  void SubmitIfEventsDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Events that changed the state (learned, or consumed from Kafka); what the checkpoint
  // triggers count.
  std::uint64_t ChangesLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return state_.counters.labeled + state_.counters.unlabeled;
  }
  // Whether `label` may be learned: a known class, or a new one the spec allows.
  absl::Status CheckStreamLabel(std::string_view label) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The features the model sees for an event: with aggregates, a copy of `features` in *storage
  // with the event's aggregates appended, the event then recorded; otherwise `features`. The
  // event must have passed ValidateEventLocked.
  std::span<const features::NamedFeature> AggregateLocked(
      std::optional<std::string_view> key, std::optional<std::int64_t> time_micros,
      std::span<const features::NamedFeature> features, std::int64_t now_micros,
      std::vector<features::NamedFeature>* storage) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Records a learned label in the aggregates (no-op without them).
  void AggregateLabelLocked(std::span<const features::NamedFeature> features,
                            std::string_view label) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pipeline::Validate, then the aggregator's checks of the event.
  absl::Status ValidateEventLocked(std::span<const features::NamedFeature> features) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Learn and ApplyStream under the writer lock, without the checkpoint trigger. ApplyStream's
  // returns the events learned.
  absl::Status LearnLocked(std::span<const ExampleView> examples, bool skip_metrics,
                           std::chrono::system_clock::time_point deadline, LearnBatchResult* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_, mu_);
  std::uint64_t ApplyStreamLocked(std::span<const StreamRecordView> records, StreamBatchResult* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_, mu_);
  // CheckpointNow with checkpoint_mu_ held.
  absl::StatusOr<checkpoints::WrittenCheckpoint> CheckpointNowLocked();

  const std::string name_;
  const Options options_;
  // Taken (exclusively) by every writer of the state before mu_, and by a snapshot; see the
  // class comment.
  RwMutex writer_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable RwMutex mu_;
  ModelDefinition definition_ ABSL_GUARDED_BY(mu_);
  checkpoints::ModelState state_ ABSL_GUARDED_BY(mu_);
  PrequentialStep step_ ABSL_GUARDED_BY(mu_);
  // Snapshots are handed to the checkpointer only with writer_mu_ held, so they are written in
  // the order of the states they copy: the newest file is always the newest state.
  // changes_at_submit_: ChangesLocked() of the last snapshot handed over (kNeverSubmitted
  // after a restore or a failed write, which makes the model dirty); failed_seen_: the
  // checkpointer's failure count already taken into account.
  static constexpr std::uint64_t kNeverSubmitted = ~std::uint64_t{0};
  std::uint64_t changes_at_submit_ ABSL_GUARDED_BY(writer_mu_) = 0;
  std::uint64_t failed_seen_ ABSL_GUARDED_BY(writer_mu_) = 0;
  std::int64_t last_submit_micros_ ABSL_GUARDED_BY(writer_mu_) = 0;
  bool retired_ ABSL_GUARDED_BY(mu_) = false;
  // Held for a whole manual checkpoint or restore (taken before writer_mu_), so Retire()
  // can wait for one in progress: a deleted model writes nothing after Delete returns.
  std::mutex checkpoint_mu_;

  // The live aggregator (state_.aggregator is moved here; snapshots get a copy). Taken after
  // mu_, never before.
  mutable std::mutex aggregator_mu_ ABSL_ACQUIRED_AFTER(mu_);
  mutable std::optional<features::WindowAggregator> aggregator_ ABSL_GUARDED_BY(aggregator_mu_);
  // aggregator_.has_value(), changed only with mu_ held exclusively: a model without aggregates
  // never takes aggregator_mu_.
  bool has_aggregator_ ABSL_GUARDED_BY(mu_) = false;
  mutable features::WindowAggregator::Scratch aggregator_scratch_ ABSL_GUARDED_BY(aggregator_mu_);

  mutable LabelCache label_cache_;
  mutable LatencyHistogram predict_latency_;
  LatencyHistogram learn_latency_;
  // Predictions served (gRPC Predict runs under the shared lock, so not in the state).
  mutable std::atomic<std::uint64_t> predictions_{0};
  // kMaxClasses counters (lock-free: predictions run in parallel under the reader lock).
  void CountPredicted(learners::ClassIndex c) const {
    if (c < kMaxClasses) predicted_class_[c].fetch_add(1, std::memory_order_relaxed);
  }
  const std::unique_ptr<std::atomic<std::uint64_t>[]> predicted_class_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::int64_t> last_checkpoint_micros_{0};
  const std::int64_t created_micros_;

  std::unique_ptr<checkpoints::CheckpointStore> store_;
  std::unique_ptr<checkpoints::Checkpointer> checkpointer_;
};

// Process-wide malloc settings for serving, called once at startup by RunServer (and by
// benchmarks that measure serving). glibc's fastbins are turned off: a checkpoint's snapshot
// shares millions of small blocks with the live model (label cache entries, aggregate panes),
// and when the checkpointer thread frees them after the write they pile up in the arena of the
// thread that allocated them, until that thread's next larger allocation consolidates them all
// at once: a prediction stalled 0.3 s in `malloc_consolidate` at 1,000,000 cards
// (checkpoint_stall_benchmark, docs/BENCHMARKS.md). Without fastbins a free coalesces at once.
// No effect under the sanitizers, which bring their own allocator.
void TuneAllocatorForServing();

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_SERVED_MODEL_H_
