#include "service/model_definition.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;

absl::Status Prefixed(std::string_view prefix, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrFormat("%s%s", prefix, s.message()));
}

absl::StatusOr<features::FeatureDef> ConvertDef(const v1::FeatureDef& d, int i) {
  features::FeatureDef out;
  out.name = d.name();
  auto error = [i](std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.features.declared[%d].%s: %s", i, field, what));
  };
  switch (d.kind()) {
    case v1::FeatureDef::KIND_UNSPECIFIED:
    case v1::FeatureDef::NUMERIC:
      out.kind = features::FeatureDef::Kind::kNumeric;
      break;
    case v1::FeatureDef::CATEGORICAL:
      out.kind = features::FeatureDef::Kind::kCategorical;
      break;
    case v1::FeatureDef::HASHED:
      out.kind = features::FeatureDef::Kind::kHashed;
      break;
    case v1::FeatureDef::DROP:
      out.kind = features::FeatureDef::Kind::kDrop;
      break;
    default:
      return error("kind", absl::StrFormat("unknown kind %d", d.kind()));
  }
  switch (d.scaling()) {
    case v1::FeatureDef::SCALING_UNSPECIFIED:
    case v1::FeatureDef::STANDARD:
      out.scaling = features::FeatureDef::Scaling::kStandard;
      break;
    case v1::FeatureDef::MIN_MAX:
      out.scaling = features::FeatureDef::Scaling::kMinMax;
      break;
    case v1::FeatureDef::NO_SCALING:
      out.scaling = features::FeatureDef::Scaling::kNone;
      break;
    default:
      return error("scaling", absl::StrFormat("unknown scaling %d", d.scaling()));
  }
  switch (d.imputation()) {
    case v1::FeatureDef::IMPUTATION_UNSPECIFIED:
    case v1::FeatureDef::ABSENT:
      out.imputation = features::FeatureDef::Imputation::kAbsent;
      break;
    case v1::FeatureDef::MEAN:
      out.imputation = features::FeatureDef::Imputation::kMean;
      break;
    case v1::FeatureDef::CONSTANT:
      out.imputation = features::FeatureDef::Imputation::kConstant;
      break;
    default:
      return error("imputation", absl::StrFormat("unknown imputation %d", d.imputation()));
  }
  out.clip_min = d.clip_min();
  out.clip_max = d.clip_max();
  out.impute_constant = d.impute_constant();
  out.missing_indicator = d.missing_indicator();
  out.max_categories = d.max_categories();
  out.hash_buckets = d.hash_buckets();
  out.hash_seed = d.hash_seed();
  return out;
}

absl::StatusOr<features::AggregateDef> ConvertAggregate(const v1::WindowedAggregate& a, int i) {
  using Function = features::AggregateDef::Function;
  features::AggregateDef out;
  out.name = a.name();
  out.key_field = a.key_field();
  out.field = a.field();
  out.window_seconds = a.window_seconds();
  out.label_class = a.label_class();
  out.allowed_lateness_seconds = a.allowed_lateness_seconds();
  auto error = [i](std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrFormat("spec.features.aggregates[%d].%s: %s", i, field, what));
  };
  switch (a.function()) {
    case v1::WindowedAggregate::COUNT:
      out.function = Function::kCount;
      break;
    case v1::WindowedAggregate::SUM:
      out.function = Function::kSum;
      break;
    case v1::WindowedAggregate::MEAN:
      out.function = Function::kMean;
      break;
    case v1::WindowedAggregate::MIN:
      out.function = Function::kMin;
      break;
    case v1::WindowedAggregate::MAX:
      out.function = Function::kMax;
      break;
    case v1::WindowedAggregate::COUNT_DISTINCT:
      out.function = Function::kCountDistinct;
      break;
    case v1::WindowedAggregate::SECONDS_SINCE_LAST:
      out.function = Function::kSecondsSinceLast;
      break;
    case v1::WindowedAggregate::LABEL_RATE:
      out.function = Function::kLabelRate;
      break;
    case v1::WindowedAggregate::FUNCTION_UNSPECIFIED:
      return error("function",
                   "required (COUNT, SUM, MEAN, MIN, MAX, COUNT_DISTINCT, SECONDS_SINCE_LAST or "
                   "LABEL_RATE)");
    default:
      return error("function", absl::StrFormat("unknown function %d", a.function()));
  }
  if (!a.sliding()) {
    if (a.hop_seconds() != 0) {
      return error("hop_seconds",
                   "only for sliding windows (sliding: true); a tumbling window "
                   "advances by its whole length");
    }
    out.hop_seconds = 0;  // tumbling
  } else if (a.hop_seconds() != 0) {
    out.hop_seconds = a.hop_seconds();
  } else {
    const std::uint32_t w = a.window_seconds();
    out.hop_seconds = (w >= 60 && w % 60 == 0) ? w / 60 : 1;
  }
  return out;
}

// The spec as JSON with map entries sorted by key: a protobuf map iterates in no fixed order,
// and the stored spec should be the same text for the same spec. Deterministic binary
// serialization sorts map entries; the JSON is printed from those bytes in their order.
absl::Status CanonicalJson(const v1::ModelSpec& spec, std::string* json) {
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool());
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  json->clear();
  auto s = google::protobuf::util::BinaryToJsonString(
      resolver, "type.googleapis.com/" + v1::ModelSpec::descriptor()->full_name(), binary, json,
      options);
  if (!s.ok()) {
    return absl::InternalError(absl::StrFormat("spec: cannot encode as JSON: %s", s.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrFormat("name: must be 1 to 128 characters, got %d", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrFormat("name: \"%s\" has a character outside [a-zA-Z0-9_.-]",
                          absl::CHexEscape(absl::string_view(name.data(), name.size()))));
    }
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError("name: \".\" and \"..\" are not model names");
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelDefinition> DefinitionFromSpec(const v1::ModelSpec& spec) {
  ModelDefinition def;
  def.spec = spec;
  if (spec.learner().empty()) {
    return absl::InvalidArgumentError("spec.learner: required (one of: " + [] {
      std::string s;
      for (const std::string& k : learners::LearnerKinds()) {
        s += (s.empty() ? "" : ", ") + k;
      }
      return s;
    }() + ")");
  }
  def.learner = spec.learner();
  // Sorted by name: a protobuf map has no order, and the options must apply the same way on
  // every restore.
  std::map<std::string, std::string> sorted(spec.learner_options().begin(),
                                            spec.learner_options().end());
  for (const auto& [name, value] : sorted) def.learner_options.emplace_back(name, value);
  // The learners' errors name the option and quote the value ("option 'lr': ...").
  if (absl::StatusOr<std::unique_ptr<learners::Classifier>> probe =
          learners::CreateClassifier(def.learner, def.learner_options);
      !probe.ok()) {
    const bool unknown_kind = probe.status().message().find("unknown learner") != std::string::npos;
    return Prefixed(unknown_kind ? "spec.learner: " : "spec.learner_options: ", probe.status());
  }

  const v1::FeatureSpec& fs = spec.features();
  def.pipeline.pass_through = fs.undeclared() != v1::FeatureSpec::IGNORE;
  for (int i = 0; i < fs.declared_size(); ++i) {
    absl::StatusOr<features::FeatureDef> d = ConvertDef(fs.declared(i), i);
    if (!d.ok()) return d.status();
    def.pipeline.declared.push_back(*std::move(d));
  }
  for (const v1::FeatureCross& c : fs.crosses()) {
    def.pipeline.crosses.push_back(
        {.first = c.first(), .second = c.second(), .hash_buckets = c.hash_buckets()});
  }
  for (int i = 0; i < fs.aggregates_size(); ++i) {
    absl::StatusOr<features::AggregateDef> a = ConvertAggregate(fs.aggregates(i), i);
    if (!a.ok()) return a.status();
    def.aggregates.aggregates.push_back(*std::move(a));
  }
  // An aggregate is asked for by name: when undeclared features are ignored, one not declared
  // is still a numeric feature, standard-scaled (as pass-through would treat it).
  if (!def.pipeline.pass_through) {
    for (const features::AggregateDef& a : def.aggregates.aggregates) {
      const bool declared =
          std::any_of(def.pipeline.declared.begin(), def.pipeline.declared.end(),
                      [&a](const features::FeatureDef& d) { return d.name == a.name; });
      if (!declared) def.pipeline.declared.push_back({.name = a.name});
    }
  }
  if (fs.aggregate_max_keys() != 0) def.aggregates.max_keys = fs.aggregate_max_keys();
  if (absl::Status s = def.aggregates.Validate(); !s.ok()) {
    const bool about_max_keys = s.message().rfind("max_keys", 0) == 0;
    return Prefixed(about_max_keys ? "spec.features.aggregate_" : "spec.features.", s);
  }
  def.pipeline.classes.assign(spec.classes().begin(), spec.classes().end());
  if (absl::Status s = def.pipeline.Validate(); !s.ok()) {
    const bool about_classes = s.message().rfind("classes", 0) == 0;
    return Prefixed(about_classes ? "spec." : "spec.features.", s);
  }

  if (spec.metrics_window() != 0) def.metrics.window = spec.metrics_window();
  if (absl::Status s = def.metrics.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "spec.metrics_window: %d is out of range (%s)", spec.metrics_window(), s.message()));
  }
  if (spec.label_cache_max_entries() != 0) {
    def.label_cache.max_entries = spec.label_cache_max_entries();
  }
  if (spec.label_cache_ttl_seconds() != 0) {
    def.label_cache.ttl_seconds = spec.label_cache_ttl_seconds();
  }
  if (absl::Status s = def.label_cache.Validate(); !s.ok()) return Prefixed("spec.", s);

  if (absl::Status s = CanonicalJson(spec, &def.spec_json); !s.ok()) return s;
  return def;
}

absl::StatusOr<checkpoints::ModelState> NewModelState(std::string name,
                                                      const ModelDefinition& definition,
                                                      std::uint64_t version) {
  absl::StatusOr<std::unique_ptr<learners::Classifier>> learner =
      learners::CreateClassifier(definition.learner, definition.learner_options);
  if (!learner.ok()) return learner.status();
  absl::StatusOr<features::Pipeline> pipeline = features::Pipeline::Create(definition.pipeline);
  if (!pipeline.ok()) return pipeline.status();
  checkpoints::ModelState state;
  state.name = std::move(name);
  state.spec = definition.spec_json;
  state.version = version;
  state.learner = *std::move(learner);
  state.pipeline = *std::move(pipeline);
  if (!definition.aggregates.aggregates.empty()) {
    absl::StatusOr<features::WindowAggregator> aggregator =
        features::WindowAggregator::Create(definition.aggregates);
    if (!aggregator.ok()) return aggregator.status();
    state.aggregator = *std::move(aggregator);
  }
  state.metrics = learners::PrequentialMetrics(definition.metrics);
  return state;
}

absl::StatusOr<ModelDefinition> DefinitionFromJson(std::string_view json) {
  v1::ModelSpec spec;
  google::protobuf::util::JsonParseOptions options;
  auto s = google::protobuf::util::JsonStringToMessage(std::string(json), &spec, options);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrFormat("model spec: not valid JSON: %s", s.ToString()));
  }
  return DefinitionFromSpec(spec);
}

}  // namespace riffle::service
