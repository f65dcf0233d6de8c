#ifndef RIFFLE_LEARNERS_HOEFFDING_TREE_OPTIONS_H_
#define RIFFLE_LEARNERS_HOEFFDING_TREE_OPTIONS_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "learners/feature_vector.h"

namespace riffle::learners {

// Hard limit on the depth of a Hoeffding tree, whatever max_depth says. River's default
// (max_depth=None) is bounded by Python's recursion limit (1000 - 20); this is the same kind
// of bound, and it keeps the recursive walks (Save, Load, Clone, dumps) within a small stack
// even for a corrupted checkpoint.
inline constexpr std::uint64_t kMaxTreeDepth = 1000;

// How a candidate split is scored (river.tree.split_criterion).
enum class SplitCriterion {
  // Information gain: entropy before minus weighted entropy after, in bits. Merit range
  // R = log2(max(#classes, 2)).
  kInfoGain,
  // 1 - weighted Gini impurity of the branches (as River: not a gain). R = 1.
  kGini,
  // Hellinger distance between the branch distributions of classes 0 and 1 (Cieslak et al.
  // 2012); meant for binary problems: other classes are ignored. R = log2(max(#classes, 2)).
  kHellinger,
};

// What a leaf predicts.
enum class LeafPrediction {
  // The leaf's class distribution, normalised.
  kMajorityClass,
  // Naive Bayes over the leaf's attribute observers (once the leaf has seen nb_threshold).
  kNaiveBayes,
  // Naive Bayes or majority class, whichever has been right more often on the examples the
  // leaf learned from (each is scored before the example is learned).
  kNaiveBayesAdaptive,
};

// Hyperparameters of HoeffdingTreeClassifier, with the defaults of River 0.26.1's
// tree.HoeffdingTreeClassifier. HoeffdingAdaptiveTreeClassifier uses the same struct for its
// tree-growing options.
struct HoeffdingTreeOptions {
  // Weight a leaf must see between two split attempts (>= 1).
  std::uint64_t grace_period = 200;
  // Deepest level a leaf may be split at (root = depth 0); a leaf at this depth is
  // deactivated. Unset means no limit of its own (River's None); kMaxTreeDepth always applies.
  std::optional<std::uint64_t> max_depth;
  SplitCriterion split_criterion = SplitCriterion::kInfoGain;
  // 1 - confidence of the Hoeffding bound eps = sqrt(R^2 ln(1/delta) / (2 n)), in (0, 1).
  double delta = 1e-7;
  // Tie threshold: split anyway when eps < tau (>= 0).
  double tau = 0.05;
  LeafPrediction leaf_prediction = LeafPrediction::kNaiveBayesAdaptive;
  // Weight a kNaiveBayes leaf must have seen before it predicts with naive Bayes.
  std::uint64_t nb_threshold = 0;
  // Features (by index: learners only see indices) whose values are category codes, not
  // numbers: they get a nominal observer and nominal splits. Given to Set() as a
  // comma-separated list, e.g. "0,3,7". Every other feature is numeric.
  std::vector<FeatureIndex> nominal_attributes;
  // Candidate thresholds per numeric attribute, evenly spaced strictly between the smallest
  // and largest value observed (River's GaussianSplitter n_splits; >= 1).
  std::uint64_t n_splits = 10;
  // Nominal attributes split two ways (value == v versus the rest) only; otherwise a
  // multiway split (one branch per value) is also a candidate.
  bool binary_split = false;
  // A split is valid only if at least two branches get more than this fraction of the
  // weight, in [0, 0.5).
  double min_branch_fraction = 0.01;
  // A leaf whose majority class holds more than this share of its weight is not split, in
  // (0, 1].
  double max_share_to_split = 0.99;
  // Memory budget of the tree in MiB (> 0): past it the least promising leaves are
  // deactivated (Kirkby 2007). Estimated from this implementation's own MemoryBytes(), which
  // is far smaller than River's Python object sizes, so the same budget holds far more leaves.
  double max_size = 100.0;
  // Weight between two memory estimates (>= 1).
  std::uint64_t memory_estimate_period = 1000000;
  // Stop growing altogether (instead of deactivating leaves) when the budget is hit.
  bool stop_mem_management = false;
  // Drop the observers of attributes whose merit trails the best by more than eps (only for
  // kMajorityClass leaves: naive Bayes needs every observer, as in River).
  bool remove_poor_attrs = false;
  // Consider "no split" as a candidate (merit -inf, as River and MOA); when it wins the leaf
  // is deactivated (pre-pruned).
  bool merit_preprune = true;

  absl::Status Validate() const;
  // Sets one option from text, by its field name above. Enums: split_criterion =
  // info_gain|gini|hellinger, leaf_prediction = mc|nb|nba. max_depth = none clears it.
  // `learner` names the learner in the unknown-option error.
  absl::Status Set(std::string_view name, std::string_view value,
                   std::string_view learner = "hoeffding_tree");

  // The effective depth limit (max_depth or kMaxTreeDepth, whichever is smaller).
  std::uint64_t DepthLimit() const;
  bool IsNominal(FeatureIndex j) const;
};

// Parses "0,3,7" (spaces allowed around items; empty text gives an empty list) into a sorted
// list without duplicates.
absl::Status ParseFeatureIndexList(std::string_view name, std::string_view text,
                                   std::vector<FeatureIndex>* out);

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_HOEFFDING_TREE_OPTIONS_H_
