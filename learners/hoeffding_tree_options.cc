#include "learners/hoeffding_tree_options.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_format.h"
#include "learners/option_parsing.h"

namespace riffle::learners {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

absl::Status ParseFeatureIndexList(std::string_view name, std::string_view text,
                                   std::vector<FeatureIndex>* out) {
  std::vector<FeatureIndex> parsed;
  text = Trim(text);
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = Trim(text.substr(0, comma));
    std::uint64_t v = 0;
    if (absl::Status s = ParseUint64Option(name, item, &v); !s.ok()) return s;
    if (v > std::numeric_limits<FeatureIndex>::max()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("option '%s': feature index %d is too large", name, v));
    }
    parsed.push_back(static_cast<FeatureIndex>(v));
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
    if (Trim(text).empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("option '%s': trailing comma", name));
    }
  }
  std::sort(parsed.begin(), parsed.end());
  parsed.erase(std::unique(parsed.begin(), parsed.end()), parsed.end());
  *out = std::move(parsed);
  return absl::OkStatus();
}

std::uint64_t HoeffdingTreeOptions::DepthLimit() const {
  return max_depth.has_value() ? std::min(*max_depth, kMaxTreeDepth) : kMaxTreeDepth;
}

bool HoeffdingTreeOptions::IsNominal(FeatureIndex j) const {
  return std::binary_search(nominal_attributes.begin(), nominal_attributes.end(), j);
}

absl::Status HoeffdingTreeOptions::Validate() const {
  if (absl::Status s = RequireInRange("grace_period", grace_period, 1, UINT64_MAX); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireInOpenRange("delta", delta, 0, 1); !s.ok()) return s;
  if (absl::Status s = RequireFiniteNonNegative("tau", tau); !s.ok()) return s;
  if (absl::Status s = RequireInRange("n_splits", n_splits, 1, 1 << 16); !s.ok()) return s;
  if (!(min_branch_fraction >= 0 && min_branch_fraction < 0.5)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "option 'min_branch_fraction' must be in [0, 0.5), got %g", min_branch_fraction));
  }
  if (!(max_share_to_split > 0 && max_share_to_split <= 1)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "option 'max_share_to_split' must be in (0, 1], got %g", max_share_to_split));
  }
  if (absl::Status s = RequireFinitePositive("max_size", max_size); !s.ok()) return s;
  if (absl::Status s =
          RequireInRange("memory_estimate_period", memory_estimate_period, 1, UINT64_MAX);
      !s.ok()) {
    return s;
  }
  if (!std::is_sorted(nominal_attributes.begin(), nominal_attributes.end()) ||
      std::adjacent_find(nominal_attributes.begin(), nominal_attributes.end()) !=
          nominal_attributes.end()) {
    return absl::InvalidArgumentError(
        "option 'nominal_attributes' must be sorted and without duplicates");
  }
  return absl::OkStatus();
}

absl::Status HoeffdingTreeOptions::Set(std::string_view name, std::string_view value,
                                       std::string_view learner) {
  if (name == "split_criterion") {
    return ParseEnumOption<SplitCriterion>(name, value,
                                           {{"info_gain", SplitCriterion::kInfoGain},
                                            {"gini", SplitCriterion::kGini},
                                            {"hellinger", SplitCriterion::kHellinger}},
                                           &split_criterion);
  }
  if (name == "leaf_prediction") {
    return ParseEnumOption<LeafPrediction>(name, value,
                                           {{"mc", LeafPrediction::kMajorityClass},
                                            {"nb", LeafPrediction::kNaiveBayes},
                                            {"nba", LeafPrediction::kNaiveBayesAdaptive}},
                                           &leaf_prediction);
  }
  if (name == "max_depth") {
    if (value == "none" || value == "None") {
      max_depth.reset();
      return absl::OkStatus();
    }
    std::uint64_t v = 0;
    if (absl::Status s = ParseUint64Option(name, value, &v); !s.ok()) return s;
    max_depth = v;
    return absl::OkStatus();
  }
  if (name == "nominal_attributes") {
    return ParseFeatureIndexList(name, value, &nominal_attributes);
  }
  const std::pair<std::string_view, std::uint64_t*> integers[] = {
      {"grace_period", &grace_period},
      {"nb_threshold", &nb_threshold},
      {"n_splits", &n_splits},
      {"memory_estimate_period", &memory_estimate_period},
  };
  for (const auto& [option, field] : integers) {
    if (name == option) return ParseUint64Option(name, value, field);
  }
  const std::pair<std::string_view, double*> doubles[] = {
      {"delta", &delta},
      {"tau", &tau},
      {"min_branch_fraction", &min_branch_fraction},
      {"max_share_to_split", &max_share_to_split},
      {"max_size", &max_size},
  };
  for (const auto& [option, field] : doubles) {
    if (name == option) return ParseDoubleOption(name, value, field);
  }
  const std::pair<std::string_view, bool*> bools[] = {
      {"binary_split", &binary_split},
      {"stop_mem_management", &stop_mem_management},
      {"remove_poor_attrs", &remove_poor_attrs},
      {"merit_preprune", &merit_preprune},
  };
  for (const auto& [option, field] : bools) {
    if (name == option) return ParseBoolOption(name, value, field);
  }
  return UnknownOptionError(learner, name);
}

}  // namespace riffle::learners
