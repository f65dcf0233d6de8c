#include "features/pipeline.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_set>

#include "absl/strings/str_format.h"
#include "features/bytes_equal.h"

namespace riffle::features {
namespace {

constexpr std::string_view kOther = "__other__";
// Crosses hash with a fixed seed: FeatureCross has no seed of its own (the API has none), and
// the bucket of a pair must never change.
constexpr std::uint64_t kCrossHashSeed = 0;

absl::Status FieldError(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("features[\"%s\"]: %s", name, what));
}

// Inline, with the common case first: it runs for every numeric feature of every event.
inline absl::Status CheckNumber(std::string_view name, double v) {
  if (std::isfinite(v)) [[likely]] {
    return absl::OkStatus();
  }
  if (std::isnan(v)) return FieldError(name, "NaN is not a valid value");
  if (std::isinf(v)) return FieldError(name, "infinity is not a valid value");
  return absl::OkStatus();
}

// The text a categorical or hashed feature uses for a numeric value: the shortest text that
// reads back as the same double ("3", "0.1"), so 3 and 3.0 are one category.
std::string_view NumberText(double v, char (&buffer)[32]) {
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string_view(buffer, static_cast<std::size_t>(end - buffer));
}

// The slot of a value among PipelineScratch::IndicatorHints: any cheap mix of its bytes.
std::size_t IndicatorSlot(std::string_view suffix) {
  std::size_t h = suffix.size();
  if (!suffix.empty()) {
    h = h * 31 + static_cast<unsigned char>(suffix.front());
    h = h * 31 + static_cast<unsigned char>(suffix[suffix.size() / 2]);
    h = h * 31 + static_cast<unsigned char>(suffix.back());
  }
  return (h ^ (h >> 4)) % std::tuple_size_v<PipelineScratch::IndicatorHints>;
}

// Whether `full` is "<name><separator><suffix>".
bool IsIndicatorName(std::string_view full, std::string_view name, char separator,
                     std::string_view suffix) {
  return full.size() == name.size() + 1 + suffix.size() && full[name.size()] == separator &&
         BytesEqual(full.substr(0, name.size()), name) &&
         BytesEqual(full.substr(name.size() + 1), suffix);
}

}  // namespace

namespace pipeline_internal {

std::string_view BucketText(std::uint64_t bucket, char (&buffer)[32]) {
  // Below 10^5 the shortest text of the double is its decimal digits (scientific notation is
  // never shorter, and fixed wins a tie), which the integer conversion writes faster. From
  // 10^5 up, 100000 is "1e+05": the double's text, as bucket names have always been.
  if (bucket < 100000) {
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), bucket);
    return std::string_view(buffer, static_cast<std::size_t>(end - buffer));
  }
  return NumberText(static_cast<double>(bucket), buffer);
}

}  // namespace pipeline_internal

using pipeline_internal::BucketText;

absl::Status PipelineSpec::Validate() const {
  std::unordered_set<std::string_view> names;
  for (std::size_t i = 0; i < declared.size(); ++i) {
    const FeatureDef& d = declared[i];
    auto error = [i](std::string_view field, std::string_view what) {
      return absl::InvalidArgumentError(absl::StrFormat("declared[%d].%s: %s", i, field, what));
    };
    if (d.name.empty()) return error("name", "must not be empty");
    if (!names.insert(d.name).second) {
      return error("name", absl::StrFormat("'%s' is declared twice", d.name));
    }
    if (!std::isfinite(d.clip_min) || !std::isfinite(d.clip_max)) {
      return error("clip_min", "clip bounds must be finite");
    }
    if (d.clip_min > d.clip_max) {
      return error("clip_min", absl::StrFormat("%g is above clip_max %g", d.clip_min, d.clip_max));
    }
    if (!std::isfinite(d.impute_constant)) {
      return error("impute_constant", "must be a finite number");
    }
    if (d.kind != FeatureDef::Kind::kNumeric && d.imputation != FeatureDef::Imputation::kAbsent) {
      return error("imputation", "only numeric features are imputed");
    }
    if (d.kind == FeatureDef::Kind::kHashed && d.hash_buckets == 0) {
      return error("hash_buckets", "must be at least 1 for a hashed feature");
    }
    if (d.kind != FeatureDef::Kind::kHashed && d.hash_buckets != 0) {
      return error("hash_buckets", "only hashed features have buckets");
    }
    if (d.kind != FeatureDef::Kind::kCategorical && d.max_categories != 0) {
      return error("max_categories", "only categorical features have a category cap");
    }
  }
  // Pairs as (smaller, larger) name: a cross of (a, b) is the same information as (b, a).
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> pairs;
  for (std::size_t i = 0; i < crosses.size(); ++i) {
    const FeatureCross& c = crosses[i];
    auto error = [i](std::string_view field, std::string_view what) {
      return absl::InvalidArgumentError(absl::StrFormat("crosses[%d].%s: %s", i, field, what));
    };
    if (c.first.empty()) return error("first", "must not be empty");
    if (c.second.empty()) return error("second", "must not be empty");
    if (c.first == c.second) {
      return error("second", absl::StrFormat("'%s' is crossed with itself", c.second));
    }
    // (std::minmax returns references: its arguments must outlive the pair.)
    const std::string_view first = c.first;
    const std::string_view second = c.second;
    const std::pair<std::string_view, std::string_view> pair =
        first < second ? std::pair(first, second) : std::pair(second, first);
    if (auto [it, added] = pairs.emplace(pair, i); !added) {
      return error("second", absl::StrFormat("'%s' and '%s' are already crossed in crosses[%d]",
                                             c.first, c.second, it->second));
    }
    // hash_buckets: any value; 0 is one-hot, and a hashed cross names its bucket lazily, so a
    // large count costs nothing until pairs land in the buckets.
  }
  std::unordered_set<std::string_view> classes_seen;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (classes[i].empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("classes[%d]: must not be empty", i));
    }
    if (!classes_seen.insert(classes[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("classes[%d]: '%s' is listed twice", i, classes[i]));
    }
  }
  if (classes.size() == 1) {
    return absl::InvalidArgumentError("classes: give at least two classes, or none");
  }
  return absl::OkStatus();
}

absl::StatusOr<Pipeline> Pipeline::Create(PipelineSpec spec) {
  if (absl::Status s = spec.Validate(); !s.ok()) return s;
  Pipeline p;
  p.spec_ = std::move(spec);
  p.declared_state_.resize(p.spec_.declared.size());
  for (const std::string& c : p.spec_.classes) p.labels_.Add(c);
  p.RebuildIndex();
  return p;
}

absl::StatusOr<Pipeline> Pipeline::FromTabular(PipelineSpec spec, const Vocabulary& features,
                                               const StandardScaler& scaler) {
  absl::StatusOr<Pipeline> p = Create(std::move(spec));
  if (!p.ok()) return p.status();
  p->features_ = features;
  p->scaler_ = scaler;
  // Category counts of capped categoricals: the categories already in the vocabulary.
  for (std::size_t i = 0; i < p->spec_.declared.size(); ++i) {
    const FeatureDef& d = p->spec_.declared[i];
    if (d.kind != FeatureDef::Kind::kCategorical) continue;
    const std::string prefix = d.name + "=";
    for (const std::string& name : features.names()) {
      if (name.rfind(prefix, 0) == 0) ++p->declared_state_[i].categories;
    }
  }
  return p;
}

void Pipeline::RebuildIndex() {
  fields_ = Vocabulary();  // (a new Vocabulary::id, which PipelineScratch::field_hints follow)
  field_plans_.clear();
  cross_slot_count_ = 0;
  cross_slots_.clear();
  const auto plan = [this](const std::string& name) -> FieldPlan& {
    const Vocabulary::Index k = fields_.Add(name);
    if (k == field_plans_.size()) field_plans_.emplace_back();
    return field_plans_[k];
  };
  for (std::size_t i = 0; i < spec_.declared.size(); ++i) {
    plan(spec_.declared[i].name).declared = static_cast<std::uint32_t>(i);
  }
  const auto slot = [&](const std::string& name) {
    FieldPlan& p = plan(name);
    if (p.cross_slot == kNone) p.cross_slot = cross_slot_count_++;
    return p.cross_slot;
  };
  for (const FeatureCross& c : spec_.crosses) {
    const std::uint32_t first = slot(c.first);
    cross_slots_.emplace_back(first, slot(c.second));
  }
}

absl::Status Pipeline::Validate(std::span<const NamedFeature> features) const {
  for (const NamedFeature& f : features) {
    if (f.value.kind == FeatureValue::Kind::kNumber) {
      if (absl::Status s = CheckNumber(f.name, f.value.number); !s.ok()) return s;
      continue;
    }
    const Vocabulary::Index k = fields_.Lookup(f.name);
    if (k != Vocabulary::kNotFound && field_plans_[k].declared != kNone &&
        spec_.declared[field_plans_[k].declared].kind == FeatureDef::Kind::kNumeric) {
      return FieldError(f.name, absl::StrFormat("expected a number, got the text \"%s\"",
                                                f.value.text.substr(0, 64)));
    }
  }
  return absl::OkStatus();
}

absl::Status Pipeline::TransformForPredict(std::span<const NamedFeature> features,
                                           learners::FeatureVector* x,
                                           PipelineScratch* scratch) const {
  // The <false> instantiation only reads state; the cast lets both share one body.
  return const_cast<Pipeline*>(this)->Transform<false>(features, x, scratch);
}

absl::Status Pipeline::LearnAndTransform(std::span<const NamedFeature> features,
                                         learners::FeatureVector* x, PipelineScratch* scratch) {
  return Transform<true>(features, x, scratch);
}

Vocabulary::Index Pipeline::FindIndicator(std::string_view name, char separator,
                                          std::string_view suffix,
                                          PipelineScratch::IndicatorHints* hints,
                                          PipelineScratch* scratch) const {
  Vocabulary::Index* slot = nullptr;
  if (hints != nullptr) {
    slot = &(*hints)[IndicatorSlot(suffix)];
    if (*slot < features_.size() &&
        IsIndicatorName(features_.Name(*slot), name, separator, suffix)) {
      return *slot;
    }
  }
  std::string& key = scratch->name;
  key.assign(name);
  key.push_back(separator);
  key.append(suffix);
  const Vocabulary::Index j = features_.Lookup(key);
  if (slot != nullptr && j != Vocabulary::kNotFound) *slot = j;
  return j;
}

template <bool kLearn>
void Pipeline::AddIndicator(std::string_view name, std::string_view suffix_or_value, char separator,
                            learners::FeatureVector* x, PipelineScratch* scratch,
                            PipelineScratch::IndicatorHints* hints) {
  Vocabulary::Index j = FindIndicator(name, separator, suffix_or_value, hints, scratch);
  if constexpr (kLearn) {
    if (j == Vocabulary::kNotFound) {
      j = features_.Add(scratch->name);  // FindIndicator left the name there
      if (hints != nullptr) (*hints)[IndicatorSlot(suffix_or_value)] = j;
    }
  }
  if (j != Vocabulary::kNotFound) x->Add(j, 1.0);
}

template <bool kLearn>
void Pipeline::AddCross(std::size_t cross, learners::FeatureVector* x, PipelineScratch* scratch) {
  const auto [first_slot, second_slot] = cross_slots_[cross];
  const FeatureValue* first = scratch->cross_values[first_slot];
  const FeatureValue* second = scratch->cross_values[second_slot];
  if (first == nullptr || second == nullptr) return;  // a side is missing: no cross
  const FeatureCross& c = spec_.crosses[cross];
  char first_buffer[32];
  char second_buffer[32];
  std::string& key = scratch->name;
  key.assign(c.first);
  key.push_back('=');
  key.append(first->kind == FeatureValue::Kind::kNumber ? NumberText(first->number, first_buffer)
                                                        : first->text);
  key.push_back('&');
  key.append(c.second);
  key.push_back('=');
  key.append(second->kind == FeatureValue::Kind::kNumber ? NumberText(second->number, second_buffer)
                                                         : second->text);
  if (c.hash_buckets != 0) {
    // The hashed kind's hash of the whole "<first>=<v1>&<second>=<v2>" text; the feature is
    // the bucket.
    const std::uint64_t bucket = XXH64(key.data(), key.size(), kCrossHashSeed) % c.hash_buckets;
    key.assign(c.first);
    key.push_back('&');
    key.append(c.second);
    key.push_back('#');
    key.append(BucketText(bucket, first_buffer));
  }
  if constexpr (kLearn) {
    x->Add(features_.Add(key), 1.0);
  } else {
    if (const Vocabulary::Index j = features_.Lookup(key); j != Vocabulary::kNotFound) {
      x->Add(j, 1.0);
    }
  }
}

template <bool kLearn>
void Pipeline::AddNumeric(const FeatureDef* def, DeclaredState* state, std::string_view name,
                          double value, bool imputed, learners::FeatureVector* x,
                          PipelineScratch* scratch, Vocabulary::Index* known) {
  if (def != nullptr && def->clip_min < def->clip_max) {
    value = std::clamp(value, def->clip_min, def->clip_max);
  }
  if constexpr (kLearn) {
    if (state != nullptr && !imputed) {
      ++state->count;
      state->mean += (value - state->mean) / static_cast<double>(state->count);
    }
  }
  learners::FeatureIndex j;
  if (known != nullptr && *known != Vocabulary::kNotFound) {
    j = *known;
  } else {
    if constexpr (kLearn) {
      j = features_.Add(name);
    } else {
      j = features_.Lookup(name);
      if (j == Vocabulary::kNotFound) return;  // never learned: no weight
    }
    if (known != nullptr) *known = j;
  }
  const FeatureDef::Scaling scaling =
      def != nullptr ? def->scaling : FeatureDef::Scaling::kStandard;
  switch (scaling) {
    case FeatureDef::Scaling::kStandard:
      scratch->standard.Add(j, value);  // scaled in one pass at the end
      break;
    case FeatureDef::Scaling::kMinMax: {
      if constexpr (kLearn) {
        if (j >= mins_.size()) {
          mins_.resize(j + 1, std::numeric_limits<double>::infinity());
          maxs_.resize(j + 1, -std::numeric_limits<double>::infinity());
        }
        mins_[j] = std::min(mins_[j], value);
        maxs_[j] = std::max(maxs_[j], value);
      }
      if (j < mins_.size() && maxs_[j] > mins_[j]) {
        x->Add(j, (value - mins_[j]) / (maxs_[j] - mins_[j]));
      } else {
        x->Add(j, 0.0);  // a single value seen so far (or none): River's MinMaxScaler gives 0
      }
      break;
    }
    case FeatureDef::Scaling::kNone:
      x->Add(j, value);
      break;
  }
}

template <bool kLearn>
absl::Status Pipeline::Transform(std::span<const NamedFeature> features, learners::FeatureVector* x,
                                 PipelineScratch* scratch) {
  x->Clear();
  scratch->standard.Clear();
  scratch->declared_seen.assign(spec_.declared.size(), 0);
  if (scratch->fields_id != fields_.id() || scratch->vocabulary_id != features_.id()) {
    scratch->field_hints.clear();
    scratch->fields_id = fields_.id();
    scratch->vocabulary_id = features_.id();
  }
  if (scratch->field_hints.size() < features.size()) scratch->field_hints.resize(features.size());
  if (scratch->indicator_hints.size() < features.size()) {
    PipelineScratch::IndicatorHints none;
    none.fill(Vocabulary::kNotFound);
    scratch->indicator_hints.resize(features.size(), none);
  }
  scratch->cross_values.assign(cross_slot_count_, nullptr);
  char number_buffer[32];
  for (std::size_t position = 0; position < features.size(); ++position) {
    const NamedFeature& f = features[position];
    const FeatureDef* def = nullptr;
    DeclaredState* state = nullptr;
    const bool is_number = f.value.kind == FeatureValue::Kind::kNumber;
    if (is_number) {
      if (absl::Status s = CheckNumber(f.name, f.value.number); !s.ok()) return s;
    }
    PipelineScratch::FieldHint& field = scratch->field_hints[position];
    // (A new hint is right for an empty name as it is: no field has one, and no index is
    // known.)
    if (!BytesEqual(field.name, f.name)) [[unlikely]] {
      field.name.assign(f.name);
      field.field = fields_.Lookup(f.name);
      field.input = Vocabulary::kNotFound;
    }
    Vocabulary::Index* const known = &field.input;
    if (field.field != Vocabulary::kNotFound) {
      const FieldPlan& plan = field_plans_[field.field];
      if (plan.declared != kNone) {
        def = &spec_.declared[plan.declared];
        state = &declared_state_[plan.declared];
        scratch->declared_seen[plan.declared] = 1;
      }
      // Before the kind decides what else happens: a cross reads the side's value even where
      // the feature itself is dropped or ignored.
      if (plan.cross_slot != kNone) scratch->cross_values[plan.cross_slot] = &f.value;
    }
    if (def == nullptr) {
      if (!spec_.pass_through) continue;
      if (is_number) {
        AddNumeric<kLearn>(nullptr, nullptr, f.name, f.value.number, /*imputed=*/false, x, scratch,
                           known);
      } else {
        AddIndicator<kLearn>(f.name, f.value.text, '=', x, scratch,
                             &scratch->indicator_hints[position]);
      }
      continue;
    }
    switch (def->kind) {
      case FeatureDef::Kind::kDrop:
        break;
      case FeatureDef::Kind::kNumeric:
        if (!is_number) {
          return FieldError(f.name, absl::StrFormat("expected a number, got the text \"%s\"",
                                                    f.value.text.substr(0, 64)));
        }
        AddNumeric<kLearn>(def, state, f.name, f.value.number, /*imputed=*/false, x, scratch,
                           known);
        break;
      case FeatureDef::Kind::kCategorical: {
        const std::string_view value =
            is_number ? NumberText(f.value.number, number_buffer) : f.value.text;
        PipelineScratch::IndicatorHints* hints = &scratch->indicator_hints[position];
        Vocabulary::Index j = FindIndicator(f.name, '=', value, hints, scratch);
        if (j == Vocabulary::kNotFound) {
          std::string& key = scratch->name;  // "<name>=<value>" (FindIndicator)
          const bool capped = def->max_categories != 0 && state->categories >= def->max_categories;
          if (capped) {
            key.assign(f.name);
            key.push_back('=');
            key.append(kOther);
            j = features_.Lookup(key);
          }
          if constexpr (kLearn) {
            if (j == Vocabulary::kNotFound) {
              j = features_.Add(key);
              if (!capped) {
                ++state->categories;
                (*hints)[IndicatorSlot(value)] = j;
              }
            }
          }
        }
        if (j != Vocabulary::kNotFound) x->Add(j, 1.0);
        break;
      }
      case FeatureDef::Kind::kHashed: {
        const std::string_view value =
            is_number ? NumberText(f.value.number, number_buffer) : f.value.text;
        const std::uint64_t bucket =
            XXH64(value.data(), value.size(), def->hash_seed) % def->hash_buckets;
        AddIndicator<kLearn>(f.name, BucketText(bucket, number_buffer), '#', x, scratch,
                             &scratch->indicator_hints[position]);
        break;
      }
    }
  }
  // Declared features that are missing from the event.
  for (std::size_t i = 0; i < spec_.declared.size(); ++i) {
    if (scratch->declared_seen[i] != 0) continue;
    const FeatureDef& def = spec_.declared[i];
    if (def.kind == FeatureDef::Kind::kDrop) continue;
    if (def.missing_indicator) AddIndicator<kLearn>(def.name, "missing", '.', x, scratch);
    if (def.kind != FeatureDef::Kind::kNumeric) continue;
    std::optional<double> imputed;
    if (def.imputation == FeatureDef::Imputation::kConstant) imputed = def.impute_constant;
    if (def.imputation == FeatureDef::Imputation::kMean && declared_state_[i].count > 0) {
      imputed = declared_state_[i].mean;
    }
    if (imputed.has_value()) {
      AddNumeric<kLearn>(&def, &declared_state_[i], def.name, *imputed, /*imputed=*/true, x,
                         scratch);
    }
  }
  for (std::size_t c = 0; c < spec_.crosses.size(); ++c) AddCross<kLearn>(c, x, scratch);
  if constexpr (kLearn) {
    scaler_.LearnAndAppendTransformed(scratch->standard, x);
  } else {
    scaler_.AppendTransformed(scratch->standard, x);
  }
  return absl::OkStatus();
}

bool Pipeline::PlanDense(std::span<const std::string_view> names, DensePlan* plan) const {
  plan->columns.clear();
  if (!spec_.declared.empty() || !spec_.crosses.empty() || !spec_.pass_through) return false;
  std::vector<std::size_t> order(names.size());
  for (std::size_t c = 0; c < names.size(); ++c) order[c] = c;
  std::sort(order.begin(), order.end(),
            [&names](std::size_t a, std::size_t b) { return names[a] < names[b]; });
  for (std::size_t c : order) {
    // A feature never learned contributes nothing (as in TransformForPredict).
    if (const Vocabulary::Index j = features_.Lookup(names[c]); j != Vocabulary::kNotFound) {
      plan->columns.emplace_back(c, j);
    }
  }
  return true;
}

void Pipeline::TransformDenseForPredict(const DensePlan& plan, std::span<const double> values,
                                        learners::FeatureVector* x,
                                        PipelineScratch* scratch) const {
  x->Clear();
  scratch->standard.Clear();
  for (const auto& [column, index] : plan.columns) {
    const double v = values[column];
    if (!std::isnan(v)) scratch->standard.Add(index, v);
  }
  scaler_.AppendTransformed(scratch->standard, x);
}

absl::StatusOr<learners::ClassIndex> Pipeline::EncodeLabel(std::string_view label) {
  if (std::optional<Vocabulary::Index> k = labels_.Find(label)) return *k;
  if (label.empty()) return absl::InvalidArgumentError("label: must not be empty");
  if (!spec_.classes.empty()) {
    std::string known;
    for (const std::string& c : spec_.classes) known += (known.empty() ? "" : ", ") + c;
    return absl::InvalidArgumentError(absl::StrFormat(
        "label: unknown class \"%s\" (the model's classes are fixed: %s)", label, known));
  }
  return labels_.Add(label);
}

std::size_t Pipeline::MemoryBytes() const {
  return sizeof(*this) + features_.MemoryBytes() + labels_.MemoryBytes() + scaler_.MemoryBytes() +
         (mins_.capacity() + maxs_.capacity()) * sizeof(double) +
         declared_state_.capacity() * sizeof(DeclaredState) + fields_.MemoryBytes() +
         field_plans_.capacity() * sizeof(FieldPlan) +
         cross_slots_.capacity() * sizeof(cross_slots_[0]);
}

}  // namespace riffle::features
