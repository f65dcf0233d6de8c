#ifndef RIFFLE_FEATURES_PIPELINE_H_
#define RIFFLE_FEATURES_PIPELINE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/event.h"
#include "features/standard_scaler.h"
#include "features/vocabulary.h"
#include "learners/feature_vector.h"
#include "learners/serialization.h"

namespace riffle::features {

// How one declared feature becomes model input.
struct FeatureDef {
  enum class Kind : std::uint8_t { kNumeric, kCategorical, kHashed, kDrop };
  enum class Scaling : std::uint8_t { kStandard, kMinMax, kNone };
  enum class Imputation : std::uint8_t { kAbsent, kMean, kConstant };

  // The feature's name in events (a dotted path for nested JSON fields).
  std::string name;
  Kind kind = Kind::kNumeric;
  // kNumeric: online standard scaling (Welford, as StandardScaler), min-max scaling to [0, 1]
  // with the running minimum and maximum, or the raw value.
  Scaling scaling = Scaling::kStandard;
  // kNumeric: values are clipped to [clip_min, clip_max] before anything else when
  // clip_min < clip_max (both finite).
  double clip_min = 0.0;
  double clip_max = 0.0;
  // kNumeric, when the feature is missing: leave it out (a sparse zero), use the running mean
  // of the values seen while learning, or impute_constant. An imputed value then flows through
  // scaling like an observed one but never updates the imputation mean.
  Imputation imputation = Imputation::kAbsent;
  double impute_constant = 0.0;
  // Any kind but kDrop: adds "<name>.missing" = 1 when the feature is missing.
  bool missing_indicator = false;
  // kCategorical: at most this many categories get their own feature ("<name>=<value>");
  // values first seen after that share "<name>=__other__". 0: unbounded.
  std::uint32_t max_categories = 0;
  // kHashed: the value's text goes to bucket XXH64(text, hash_seed) % hash_buckets, feature
  // "<name>#<bucket>" = 1. XXH64 is specified and platform-independent, so a value lands in
  // the same bucket in every process and every Riffle version. At least 1.
  std::uint32_t hash_buckets = 0;
  std::uint64_t hash_seed = 0;

  friend bool operator==(const FeatureDef&, const FeatureDef&) = default;
};

// A cross of two features (first, second): for an event that has both, the categorical value
// "<first>=<v1>&<second>=<v2>", where a number is rendered as a categorical feature renders it
// (the shortest text that reads back as the same double: 3 and 3.0 are one value). An event
// missing either side gets no cross feature. The sides are looked up in the event by name,
// whatever their declaration: a declared feature of any kind (even kDrop, so a raw feature can
// be replaced by its crosses) or an undeclared one, also when undeclared features are ignored
// (naming a feature in a cross is what uses it).
struct FeatureCross {
  std::string first;
  std::string second;
  // 0: one-hot, the value above being its own feature, as a categorical. Otherwise the value's
  // text goes to bucket XXH64(text, seed 0) % hash_buckets, feature "<first>&<second>#<bucket>"
  // = 1: the hash of the hashed kind, so a pair lands in the same bucket in every process and
  // every Riffle version.
  std::uint32_t hash_buckets = 0;

  friend bool operator==(const FeatureCross&, const FeatureCross&) = default;
};

struct PipelineSpec {
  // Features not declared: true (the default) passes them through by name, River-style:
  // numbers standard-scaled, texts one-hot ("<name>=<value>" = 1). false ignores them.
  bool pass_through = true;
  std::vector<FeatureDef> declared;
  // Crosses of two features each; the same pair (in either order) at most once.
  std::vector<FeatureCross> crosses;
  // Class names known up front, in order (for binary models the second one is the positive
  // class). Empty: classes are added as labels arrive, in order of first appearance. When
  // given, a label outside them is an error.
  std::vector<std::string> classes;

  // InvalidArgument naming the field, e.g. "declared[2].hash_buckets: must be at least 1" or
  // "crosses[0].second: must not be empty".
  absl::Status Validate() const;

  friend bool operator==(const PipelineSpec&, const PipelineSpec&) = default;
};

// Per-thread (or per-call) buffers of Pipeline's transforms, so a warm call does not allocate.
struct PipelineScratch {
  learners::FeatureVector standard;  // raw values of standard-scaled features
  std::vector<std::uint8_t> declared_seen;
  std::string name;
  // By position of the feature in the event (the events of a stream list the same names in the
  // same order): the name last seen there, what it is among the spec's fields (declared or
  // crossed; Vocabulary::kNotFound for neither), and its index as an input of its own name
  // (kNotFound until found). One comparison of the name then stands for both lookups. They
  // hold for the pipeline whose fields and vocabulary have the ids below (a scratch may serve
  // several models, and a model may be reloaded).
  struct FieldHint {
    std::string name;
    Vocabulary::Index field = Vocabulary::kNotFound;
    Vocabulary::Index input = Vocabulary::kNotFound;
  };
  std::vector<FieldHint> field_hints;
  std::uint64_t fields_id = 0;
  std::uint64_t vocabulary_id = 0;
  // By position again: indices of the indicator features ("<name>=<value>", "<name>#<bucket>")
  // met there, in 64 slots chosen by the value (256 bytes a position: with 8, a feature of 40
  // values missed most of the time). Each is checked against the vocabulary's name for it
  // before use, so a wrong one (another model, another name) costs only the comparison.
  using IndicatorHints = std::array<Vocabulary::Index, 64>;
  std::vector<IndicatorHints> indicator_hints;
  // The event's value of each feature crosses use (PipelineSpec::crosses), null if absent.
  std::vector<const FeatureValue*> cross_values;
};

// Turns an event's named features into a model's input vector, with the state that grows with
// the stream: feature and class vocabularies, scaler statistics, min/max, category counts.
// Used identically by the gRPC service, the Kafka path and `riffle eval --spec`.
//
// Order of operations, as River's pipelines: a prediction sees the statistics of earlier
// learned events only (TransformForPredict is const and never adds a name); learning updates
// them with the event first, then transforms (LearnAndTransform). A feature or category never
// learned contributes nothing to a prediction, which is what a model that never saw it would
// do with it.
//
// Errors (InvalidArgument, the message naming the feature as `features["amount"]: ...`): a
// number that is not finite, a text for a declared numeric feature. Validate() checks an event
// without transforming it, so a batch can be rejected before any of it is learned.
//
// Thread-safety: const methods may run concurrently with each other; LearnAndTransform and
// the label methods that add need the model's single writer (exclusive access).
class Pipeline {
 public:
  static absl::StatusOr<Pipeline> Create(PipelineSpec spec);
  // A pipeline continuing from the state of `riffle eval`'s tabular preprocessing (a model
  // trained offline, then served): its feature vocabulary ("col" for numeric columns,
  // "col=value" one-hot, the names this pipeline uses too) and scaler statistics. `spec` must
  // fix the classes in the schema's label order and declare its nominal columns categorical.
  static absl::StatusOr<Pipeline> FromTabular(PipelineSpec spec, const Vocabulary& features,
                                              const StandardScaler& scaler);

  absl::Status Validate(std::span<const NamedFeature> features) const;

  // x = the model input for `features` with the current statistics. Does not modify state.
  absl::Status TransformForPredict(std::span<const NamedFeature> features,
                                   learners::FeatureVector* x, PipelineScratch* scratch) const;
  // Columns of numbers resolved once for many rows (gRPC DenseBatch). Only for pipelines
  // without declared features or crosses (pure pass-through, the schemaless default): there
  // every number is a standard-scaled feature by name, so a column is just a feature index.
  struct DensePlan {
    // (column, feature index) of the columns the model knows, in name order (the order
    // TransformForPredict sees sorted named features in, so results are bit-identical).
    std::vector<std::pair<std::size_t, learners::FeatureIndex>> columns;
  };
  // False when the pipeline cannot take the fast path (then transform named features).
  bool PlanDense(std::span<const std::string_view> names, DensePlan* plan) const;
  // TransformForPredict of one row: values[c] is column c; NaN is missing. Values must be
  // finite or NaN (the caller validates).
  void TransformDenseForPredict(const DensePlan& plan, std::span<const double> values,
                                learners::FeatureVector* x, PipelineScratch* scratch) const;

  // Updates the statistics with `features`, adding new names, then transforms as above.
  absl::Status LearnAndTransform(std::span<const NamedFeature> features, learners::FeatureVector* x,
                                 PipelineScratch* scratch);

  // The class index of `label`: adds a new class unless the classes are fixed by the spec
  // (then InvalidArgument for an unknown one, listing the classes).
  absl::StatusOr<learners::ClassIndex> EncodeLabel(std::string_view label);
  // The class index of `label` if known (does not add).
  std::optional<learners::ClassIndex> FindLabel(std::string_view label) const {
    return labels_.Find(label);
  }
  const Vocabulary& labels() const { return labels_; }
  const Vocabulary& features() const { return features_; }
  const PipelineSpec& spec() const { return spec_; }
  const StandardScaler& scaler() const { return scaler_; }
  std::size_t MemoryBytes() const;

  // An empty pipeline, only as the target of load().
  static Pipeline ForLoading() { return Pipeline(); }

  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  Pipeline() = default;

  // Running state of one declared feature.
  struct DeclaredState {
    std::uint64_t categories = 0;  // kCategorical: distinct categories given their own feature
    std::uint64_t count = 0;       // kNumeric: values seen while learning (imputation mean)
    double mean = 0.0;
    friend bool operator==(const DeclaredState&, const DeclaredState&) = default;
  };

  template <bool kLearn>
  absl::Status Transform(std::span<const NamedFeature> features, learners::FeatureVector* x,
                         PipelineScratch* scratch);
  // `known`: the index of `name` in features_ if the caller knows it (then trusted), or
  // kNotFound, then set when found; null for neither.
  template <bool kLearn>
  void AddNumeric(const FeatureDef* def, DeclaredState* state, std::string_view name, double value,
                  bool imputed, learners::FeatureVector* x, PipelineScratch* scratch,
                  Vocabulary::Index* known = nullptr);
  template <bool kLearn>
  void AddIndicator(std::string_view name, std::string_view suffix_or_value, char separator,
                    learners::FeatureVector* x, PipelineScratch* scratch,
                    PipelineScratch::IndicatorHints* hints = nullptr);
  // The index of "<name><separator><suffix>", or kNotFound; from `hints` when one of them is
  // it (then hints may be null), else looked up, with the name then in scratch->name.
  Vocabulary::Index FindIndicator(std::string_view name, char separator, std::string_view suffix,
                                  PipelineScratch::IndicatorHints* hints,
                                  PipelineScratch* scratch) const;
  template <bool kLearn>
  void AddCross(std::size_t cross, learners::FeatureVector* x, PipelineScratch* scratch);
  void RebuildIndex();

  // What the spec says about a field name: its declared feature and its slot in
  // PipelineScratch::cross_values (kNone for neither).
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  struct FieldPlan {
    std::uint32_t declared = kNone;
    std::uint32_t cross_slot = kNone;
  };

  PipelineSpec spec_;
  // Derived from spec_: the names of the declared features and of the sides of crosses (one
  // lookup per feature of an event finds both), the plan of each, the number of cross slots
  // (one per distinct side name) and the (first, second) slots of each cross.
  Vocabulary fields_;
  std::vector<FieldPlan> field_plans_;
  std::uint32_t cross_slot_count_ = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> cross_slots_;
  std::vector<DeclaredState> declared_state_;
  Vocabulary features_;
  Vocabulary labels_;
  StandardScaler scaler_;
  // Min-max scaling statistics by feature index (+inf/-inf until seen).
  std::vector<double> mins_;
  std::vector<double> maxs_;
};

// Version 1: declared features, classes, state. Version 2 adds the crosses after the classes;
// version 1 data loads as a pipeline without crosses.
template <class Archive>
void Pipeline::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(spec_.pass_through);
  archive(static_cast<std::uint64_t>(spec_.declared.size()));
  for (const FeatureDef& d : spec_.declared) {
    learners::SaveString(archive, d.name);
    archive(static_cast<std::uint8_t>(d.kind), static_cast<std::uint8_t>(d.scaling), d.clip_min,
            d.clip_max, static_cast<std::uint8_t>(d.imputation), d.impute_constant,
            d.missing_indicator, d.max_categories, d.hash_buckets, d.hash_seed);
  }
  learners::SaveVector(archive, spec_.classes);
  archive(static_cast<std::uint64_t>(spec_.crosses.size()));
  for (const FeatureCross& c : spec_.crosses) {
    learners::SaveString(archive, c.first);
    learners::SaveString(archive, c.second);
    archive(c.hash_buckets);
  }
  for (const DeclaredState& s : declared_state_) archive(s.categories, s.count, s.mean);
  archive(features_, labels_, scaler_);
  learners::SaveVector(archive, mins_);
  learners::SaveVector(archive, maxs_);
}

template <class Archive>
void Pipeline::load(Archive& archive, std::uint32_t version) {
  if (version == 0 || version > 2) {
    throw cereal::Exception("pipeline: unknown version " + std::to_string(version));
  }
  Pipeline loaded;
  std::uint64_t declared = 0;
  archive(loaded.spec_.pass_through, declared);
  for (std::uint64_t i = 0; i < declared; ++i) {
    // Every entry consumes bytes, so a corrupted count fails at the end of the data.
    FeatureDef d;
    std::uint8_t kind = 0, scaling = 0, imputation = 0;
    learners::LoadString(archive, &d.name);
    archive(kind, scaling, d.clip_min, d.clip_max, imputation, d.impute_constant,
            d.missing_indicator, d.max_categories, d.hash_buckets, d.hash_seed);
    if (kind > static_cast<std::uint8_t>(FeatureDef::Kind::kDrop) ||
        scaling > static_cast<std::uint8_t>(FeatureDef::Scaling::kNone) ||
        imputation > static_cast<std::uint8_t>(FeatureDef::Imputation::kConstant)) {
      throw cereal::Exception("pipeline: bad feature definition");
    }
    d.kind = static_cast<FeatureDef::Kind>(kind);
    d.scaling = static_cast<FeatureDef::Scaling>(scaling);
    d.imputation = static_cast<FeatureDef::Imputation>(imputation);
    loaded.spec_.declared.push_back(std::move(d));
  }
  learners::LoadVector(archive, &loaded.spec_.classes);
  if (version >= 2) {
    std::uint64_t crosses = 0;
    archive(crosses);
    for (std::uint64_t i = 0; i < crosses; ++i) {
      FeatureCross c;  // each consumes bytes, as above
      learners::LoadString(archive, &c.first);
      learners::LoadString(archive, &c.second);
      archive(c.hash_buckets);
      loaded.spec_.crosses.push_back(std::move(c));
    }
  }
  if (!loaded.spec_.Validate().ok()) throw cereal::Exception("pipeline: invalid spec");
  loaded.declared_state_.resize(loaded.spec_.declared.size());
  for (DeclaredState& s : loaded.declared_state_) archive(s.categories, s.count, s.mean);
  archive(loaded.features_, loaded.labels_, loaded.scaler_);
  learners::LoadVector(archive, &loaded.mins_);
  learners::LoadVector(archive, &loaded.maxs_);
  if (loaded.mins_.size() != loaded.maxs_.size() || loaded.mins_.size() > loaded.features_.size() ||
      loaded.labels_.size() < loaded.spec_.classes.size()) {
    throw cereal::Exception("pipeline: inconsistent sizes");
  }
  loaded.RebuildIndex();
  *this = std::move(loaded);
}

namespace pipeline_internal {

// The text of a hashed feature's bucket in its name ("<name>#<bucket>"): the shortest text of
// the bucket as a double, as it has always been ("7", "1e+05"). Exposed for tests.
std::string_view BucketText(std::uint64_t bucket, char (&buffer)[32]);

}  // namespace pipeline_internal

}  // namespace riffle::features

CEREAL_CLASS_VERSION(riffle::features::Pipeline, 2);

#endif  // RIFFLE_FEATURES_PIPELINE_H_
