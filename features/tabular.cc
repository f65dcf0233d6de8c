#include "features/tabular.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <unordered_set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "features/bytes_equal.h"
#include "features/csv_reader.h"

namespace riffle::features {
namespace {

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

absl::Status TabularOptions::Validate() const {
  if (target.empty()) return absl::InvalidArgumentError("the target column name is empty");
  if (Contains(nominal, target) || Contains(drop, target)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the target column '%s' cannot also be nominal or dropped", target));
  }
  if (infer_rows == 0) return absl::InvalidArgumentError("infer_rows must be at least 1");
  return absl::OkStatus();
}

void ColumnTypeInference::Observe(std::span<const std::string_view> fields) {
  const std::size_t n = std::min(fields.size(), non_numeric_.size());
  for (std::size_t c = 0; c < n; ++c) {
    if (!non_numeric_[c] && !fields[c].empty() && !ParseNumber(fields[c]).has_value()) {
      non_numeric_[c] = true;
    }
  }
}

absl::StatusOr<TabularSchema> TabularSchema::Create(std::span<const std::string> header,
                                                    const TabularOptions& options,
                                                    const ColumnTypeInference& inference) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : header) {
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("column '%s' appears twice in the header", name));
    }
  }
  const auto find = [&](const std::string& name) {
    return std::find(header.begin(), header.end(), name);
  };
  if (find(options.target) == header.end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("target column '%s' is not in the header (columns: %s)", options.target,
                        absl::StrJoin(header.begin(), header.end(), ", ")));
  }
  for (const auto* list : {&options.nominal, &options.drop}) {
    for (const std::string& name : *list) {
      if (find(name) == header.end()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("column '%s' (from %s) is not in the header", name,
                            list == &options.nominal ? "--nominal" : "--drop"));
      }
    }
  }

  TabularSchema schema;
  schema.header_.assign(header.begin(), header.end());
  schema.target_column_ = static_cast<std::size_t>(find(options.target) - header.begin());
  schema.types_.resize(header.size(), ColumnType::kNumeric);
  schema.dropped_.resize(header.size(), false);
  schema.numeric_index_.resize(header.size(), 0);
  for (std::size_t c = 0; c < header.size(); ++c) {
    schema.dropped_[c] = Contains(options.drop, header[c]);
    if (Contains(options.nominal, header[c]) || inference.NonNumeric(c)) {
      schema.types_[c] = ColumnType::kNominal;
    }
  }
  // Numeric columns take the first indices, in column order.
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c != schema.target_column_ && !schema.dropped_[c] &&
        schema.types_[c] == ColumnType::kNumeric) {
      schema.numeric_index_[c] = schema.features_.Add(header[c]);
    }
  }
  schema.SetRoles();
  return schema;
}

void TabularSchema::SetRoles() {
  roles_.resize(header_.size());
  numeric_columns_.clear();
  numeric_features_.clear();
  numeric_extent_ = 0;
  other_columns_.clear();
  for (std::size_t c = 0; c < header_.size(); ++c) {
    // A dropped target (which only a crafted archive can have) is skipped, as before roles.
    roles_[c] = dropped_[c]                         ? Role::kSkip
                : c == target_column_               ? Role::kTarget
                : types_[c] == ColumnType::kNumeric ? Role::kNumeric
                                                    : Role::kNominal;
    if (roles_[c] == Role::kNumeric) {
      numeric_columns_.push_back(static_cast<std::uint32_t>(c));
      numeric_features_.push_back(numeric_index_[c]);
      numeric_extent_ = std::max(numeric_extent_, numeric_index_[c] + 1);
    } else if (roles_[c] != Role::kSkip) {
      other_columns_.push_back(static_cast<std::uint32_t>(c));
    }
  }
}

learners::ClassIndex TabularSchema::LabelIndex(std::string_view label) {
  // Most targets have two classes: comparing with their names costs less than a hash lookup.
  // Both comparisons are made and combined without a branch on which label it is: a branch
  // predictor cannot learn a row's label (with the other branches on it, in the metrics and the
  // sigmoid, mispredictions cost `riffle eval` about a tenth of its time).
  if (labels_.size() >= 2) {
    const bool first = BytesEqualNoLengthBranch(labels_.Name(0), label);
    const bool second = BytesEqualNoLengthBranch(labels_.Name(1), label);
    // Either is 1 when the label is known (names are distinct). Written as a sum, since for
    // `first || second` GCC branches on `second` first.
    if (static_cast<int>(first) + static_cast<int>(second) == 1) {
      return static_cast<learners::ClassIndex>(second);
    }
  } else if (labels_.size() == 1 && BytesEqual(labels_.Name(0), label)) {
    return 0;
  }
  return labels_.Add(label);
}

void TabularSchema::Decode(std::span<const std::string_view> fields, TabularExample* out,
                           std::span<const double> numbers) {
  assert(numbers.empty() || numbers.size() == fields.size());
  const bool parsed = !numbers.empty();
  out->numeric.Clear();
  out->categorical.Clear();
  out->label.reset();
  if (parsed && fields.size() == roles_.size()) {
    // Every numeric column at once, in column order, as the loop below would add them, unless
    // one is missing or no number (NaN): then the loop decodes the record from the start.
    const std::span<double> values = out->numeric.AppendIndices(numeric_features_, numeric_extent_);
    bool all_numbers = true;
    for (std::size_t k = 0; k < numeric_columns_.size(); ++k) {
      values[k] = numbers[numeric_columns_[k]];
      all_numbers &= !std::isnan(values[k]);
    }
    if (all_numbers) {
      for (const std::uint32_t c : other_columns_) DecodeOther(c, fields[c], out);
      return;
    }
    out->numeric.Clear();
  }
  // An empty field is a missing value; in a numeric column it reaches that test only when it
  // is not a number (ParseNumber of "" is nullopt), which keeps the common case to one branch.
  for (std::size_t c = 0; c < fields.size(); ++c) {
    const std::string_view field = fields[c];
    switch (roles_[c]) {
      case Role::kSkip:
        continue;
      case Role::kTarget:
        DecodeOther(c, field, out);
        continue;
      case Role::kNumeric: {
        double v = parsed ? numbers[c] : 0.0;
        if (parsed ? !std::isnan(v) : csv_internal::ParseNumberInto(field, &v)) {
          out->numeric.Add(numeric_index_[c], v);
          continue;
        }
        if (field.empty()) continue;
        ++coerced_values_;
        break;
      }
      case Role::kNominal:
        break;
    }
    DecodeOther(c, field, out);
  }
}

void TabularSchema::DecodeOther(std::size_t c, std::string_view field, TabularExample* out) {
  if (field.empty()) return;  // missing
  if (roles_[c] == Role::kTarget) {
    out->label = LabelIndex(field);
    return;
  }
  // One-hot: "column=value". The key is built in a reused buffer, so a known category costs
  // one hash lookup and no allocation.
  key_buffer_.assign(header_[c]);
  key_buffer_.push_back('=');
  key_buffer_.append(field);
  out->categorical.Add(features_.Add(key_buffer_), 1.0);
}

void TabularPreprocessor::TransformForPredict(const TabularExample& example,
                                              learners::FeatureVector* x) const {
  x->Clear();
  scaler_.AppendTransformed(example.numeric, x);
  x->Append(example.categorical);
}

void TabularPreprocessor::LearnAndTransform(const TabularExample& example,
                                            learners::FeatureVector* x) {
  x->Clear();
  scaler_.LearnAndAppendTransformed(example.numeric, x);
  x->Append(example.categorical);
}

void TabularPreprocessor::LearnAndRetransform(const TabularExample& example,
                                              learners::FeatureVector* x) {
  assert(x->size() == example.numeric.size() + example.categorical.size());
  scaler_.LearnAndTransformInto(example.numeric, x->mutable_values());
}

}  // namespace riffle::features
