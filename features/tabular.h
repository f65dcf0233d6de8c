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
  void Decode(std::span<const std::string_view> fields, TabularExample* out);

  const std::vector<std::string>& header() const { return header_; }
  std::size_t target_column() const { return target_column_; }
  ColumnType type(std::size_t column) const { return types_[column]; }
  const Vocabulary& features() const { return features_; }
  const Vocabulary& labels() const { return labels_; }
  Vocabulary& mutable_labels() { return labels_; }
  std::uint64_t coerced_values() const { return coerced_values_; }
  std::size_t NumNumericColumns() const;

 private:
  TabularSchema() = default;

  std::vector<std::string> header_;
  std::vector<ColumnType> types_;
  std::vector<bool> dropped_;
  // Feature index of each numeric column (unused for others).
  std::vector<learners::FeatureIndex> numeric_index_;
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

  const StandardScaler& scaler() const { return scaler_; }
  StandardScaler& mutable_scaler() { return scaler_; }

 private:
  StandardScaler scaler_;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_TABULAR_H_
