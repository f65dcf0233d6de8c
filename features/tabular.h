#ifndef RIFFLE_FEATURES_TABULAR_H_
#define RIFFLE_FEATURES_TABULAR_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/standard_scaler.h"
#include "features/vocabulary.h"
#include "learners/feature_vector.h"

namespace riffle::features {

// Turning rows of a table (CSV records) into examples, the way River's usual
// `StandardScaler() | model` with one-hot encoded nominal columns sees them:
//   - numeric column c: feature named c, value standard-scaled online;
//   - nominal column c with value v: feature named "c=v" with value 1 (one-hot, only the
//     present category is stored, so the vector stays sparse);
//   - an empty field is a missing value: the feature is absent from the example;
//   - the target column gives the label; an empty target means the row is unlabeled.
// Feature names get indices in a Vocabulary as they appear, so a category first seen on row
// one million just gets the next index.

enum class ColumnType { kNumeric, kNominal };

struct TabularOptions {
  // Name of the label column. Required.
  std::string target;
  // Columns forced to be nominal even if all their values are numbers.
  std::vector<std::string> nominal;
  // Columns to ignore (identifiers, timestamps).
  std::vector<std::string> drop;
  // Rows looked at to decide column types: a column is nominal if any non-empty value in
  // them is not a finite number.
  std::size_t infer_rows = 1000;

  absl::Status Validate() const;
};

// Decides column types from the first rows of a stream.
class ColumnTypeInference {
 public:
  explicit ColumnTypeInference(std::size_t num_columns) : non_numeric_(num_columns, false) {}
  void Observe(std::span<const std::string_view> fields);
  bool NonNumeric(std::size_t column) const { return non_numeric_[column]; }

 private:
  std::vector<bool> non_numeric_;
};

// One decoded row, before scaling. Buffers are reused across rows.
struct TabularExample {
  learners::FeatureVector numeric;      // raw values of numeric columns
  learners::FeatureVector categorical;  // one-hot features, value 1
  std::optional<learners::ClassIndex> label;
};

// The column layout of a table and the state that grows with the stream: the feature and
// label vocabularies. Not thread-safe.
class TabularSchema {
 public:
  // Validates the header against the options (target present, --nominal and --drop columns
  // exist, no duplicate names) and fixes column types using `inference`.
  static absl::StatusOr<TabularSchema> Create(std::span<const std::string> header,
                                              const TabularOptions& options,
                                              const ColumnTypeInference& inference);

  // Decodes one record with exactly header().size() fields (the caller reports ragged rows).
  // A value in a numeric column that is not a finite number is kept as a category of that
  // column and counted in coerced_values().
  //
  // `numbers`, if not empty, holds ParseNumber of every field with NaN for nullopt (as
  // ReadAheadCsvReader::numbers() gives them, parsed on another thread); the result is the same
  // as without it.
  void Decode(std::span<const std::string_view> fields, TabularExample* out,
              std::span<const double> numbers = {});

  const std::vector<std::string>& header() const { return header_; }
  std::size_t target_column() const { return target_column_; }
  ColumnType type(std::size_t column) const { return types_[column]; }
  bool dropped(std::size_t column) const { return dropped_[column]; }
  const Vocabulary& features() const { return features_; }
  const Vocabulary& labels() const { return labels_; }
  Vocabulary& mutable_labels() { return labels_; }
  std::uint64_t coerced_values() const { return coerced_values_; }
  std::size_t NumNumericColumns() const { return numeric_columns_.size(); }

  // Bounded, versioned cereal serialization of the complete state (columns, types,
  // vocabularies, counters). load() throws cereal::Exception on inconsistent data.
  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

  // An empty schema, only as the target of load().
  static TabularSchema ForLoading() { return TabularSchema(); }

 private:
  // What Decode does with a column, from its type, whether it is dropped and the target.
  enum class Role : std::uint8_t { kSkip, kTarget, kNumeric, kNominal };

  TabularSchema() = default;
  // Sets roles_ from the other members (after Create and load).
  void SetRoles();
  // labels_.Add(label).
  learners::ClassIndex LabelIndex(std::string_view label);
  // Decode's work for column c when it is the target, or nominal, or a numeric column whose
  // field is no number (a category then); nothing for an empty field.
  void DecodeOther(std::size_t c, std::string_view field, TabularExample* out);

  std::vector<std::string> header_;
  std::vector<ColumnType> types_;
  std::vector<bool> dropped_;
  // Feature index of each numeric column (unused for others).
  std::vector<learners::FeatureIndex> numeric_index_;
  // Derived by SetRoles, not saved: each column's role; the numeric columns, their feature
  // indices and one past the largest; the target and nominal columns.
  std::vector<Role> roles_;
  std::vector<std::uint32_t> numeric_columns_;
  std::vector<learners::FeatureIndex> numeric_features_;
  learners::FeatureIndex numeric_extent_ = 0;
  std::vector<std::uint32_t> other_columns_;
  std::size_t target_column_ = 0;
  Vocabulary features_;
  Vocabulary labels_;
  std::uint64_t coerced_values_ = 0;
  std::string key_buffer_;
};

// Scaling between decoding and the model, with River's pipeline order: a prediction sees the
// statistics of earlier rows only; learning first updates them with the row, then transforms.
class TabularPreprocessor {
 public:
  // x = scaled numeric features followed by the one-hot ones, with current statistics.
  void TransformForPredict(const TabularExample& example, learners::FeatureVector* x) const;
  // Updates the scaler with the example's numeric values, then transforms as above.
  void LearnAndTransform(const TabularExample& example, learners::FeatureVector* x);
  // LearnAndTransform for an x that holds TransformForPredict(example), as after a prediction:
  // only the scaled values are rewritten, the indices and the one-hot entries are already there.
  void LearnAndRetransform(const TabularExample& example, learners::FeatureVector* x);

  const StandardScaler& scaler() const { return scaler_; }
  StandardScaler& mutable_scaler() { return scaler_; }

  template <class Archive>
  void serialize(Archive& archive, std::uint32_t /*version*/) {
    archive(scaler_);
  }

 private:
  StandardScaler scaler_;
};

template <class Archive>
void TabularSchema::save(Archive& archive, std::uint32_t /*version*/) const {
  learners::SaveVector(archive, header_);
  std::vector<std::uint8_t> types(types_.size());
  std::vector<std::uint8_t> dropped(dropped_.begin(), dropped_.end());
  for (std::size_t c = 0; c < types_.size(); ++c) types[c] = static_cast<std::uint8_t>(types_[c]);
  learners::SaveVector(archive, types);
  learners::SaveVector(archive, dropped);
  learners::SaveVector(archive, numeric_index_);
  archive(static_cast<std::uint64_t>(target_column_), features_, labels_, coerced_values_);
}

template <class Archive>
void TabularSchema::load(Archive& archive, std::uint32_t /*version*/) {
  TabularSchema loaded;
  std::vector<std::uint8_t> types;
  std::vector<std::uint8_t> dropped;
  std::uint64_t target_column = 0;
  learners::LoadVector(archive, &loaded.header_);
  learners::LoadVector(archive, &types);
  learners::LoadVector(archive, &dropped);
  learners::LoadVector(archive, &loaded.numeric_index_);
  archive(target_column, loaded.features_, loaded.labels_, loaded.coerced_values_);
  const std::size_t n = loaded.header_.size();
  if (types.size() != n || dropped.size() != n || loaded.numeric_index_.size() != n ||
      target_column >= n) {
    throw cereal::Exception("tabular schema: inconsistent column counts");
  }
  for (std::size_t c = 0; c < n; ++c) {
    if (types[c] > static_cast<std::uint8_t>(ColumnType::kNominal) || dropped[c] > 1) {
      throw cereal::Exception("tabular schema: bad column type");
    }
    loaded.types_.push_back(static_cast<ColumnType>(types[c]));
    loaded.dropped_.push_back(dropped[c] != 0);
    if (loaded.types_[c] == ColumnType::kNumeric && c != target_column && !loaded.dropped_[c] &&
        loaded.numeric_index_[c] >= loaded.features_.size()) {
      throw cereal::Exception("tabular schema: numeric column without a feature index");
    }
  }
  loaded.target_column_ = static_cast<std::size_t>(target_column);
  loaded.SetRoles();
  *this = std::move(loaded);
}

}  // namespace riffle::features

CEREAL_CLASS_VERSION(riffle::features::TabularSchema, 1);
CEREAL_CLASS_VERSION(riffle::features::TabularPreprocessor, 1);

#endif  // RIFFLE_FEATURES_TABULAR_H_
