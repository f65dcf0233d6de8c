#ifndef RIFFLE_LEARNERS_HOEFFDING_TREE_H_
#define RIFFLE_LEARNERS_HOEFFDING_TREE_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "learners/classifier.h"
#include "learners/hoeffding_tree_nodes.h"
#include "learners/hoeffding_tree_options.h"
#include "learners/tree_model.h"

namespace riffle::learners {

// Hoeffding tree, or Very Fast Decision Tree (VFDT; Domingos & Hulten 2000, "Mining
// high-speed data streams", KDD), as River 0.26.1's tree.HoeffdingTreeClassifier (itself after
// MOA). Hyperparameters and defaults: HoeffdingTreeOptions.
//
// Learning. An example is sorted to a leaf, which adds its weight to the class counts and, if
// the leaf is active, to one attribute observer per present feature: a Gaussian per class for
// a numeric feature, class counts per value for a nominal one. Every grace_period of weight a
// leaf that holds at least two classes evaluates, per attribute, the best split (numeric:
// n_splits thresholds evenly spaced strictly inside the observed range, the class weights on
// each side estimated from the Gaussians' CDFs; nominal: one branch per value, or value ==
// v versus the rest), plus the null split when merit_preprune. With the best and second-best
// merits G1, G2 and the Hoeffding bound eps = sqrt(R^2 ln(1/delta) / (2n)) (R: RangeOfMerit,
// log2 #classes for information gain; n: the leaf's weight), the leaf splits on the best
// attribute when G1 - G2 > eps or eps < tau. A split is only valid if two branches get more
// than min_branch_fraction of the weight; if the null split wins, the leaf is deactivated.
// New leaves start from the class weights the split estimated for their branch.
//
// Prediction: the leaf's class distribution (mc), naive Bayes over its observers (nb), or
// whichever of the two has been right more often at that leaf (nba, default).
//
// Deliberate differences from River, each tested:
// * Nearly pure leaves. When the majority class holds more than max_share_to_split of a leaf,
//   River returns only the null split, which deactivates the leaf and throws its observers
//   away (and the next memory check may reactivate it with empty observers): a reset of the
//   leaf's statistics, after which naive Bayes has nothing to work with and a later change in
//   the class mix can only be learned from scratch. Riffle keeps the leaf active and its
//   observers intact, and only skips the split attempt.
// * Naive Bayes gives probability 0 to a class with zero weight at the leaf (River gives it a
//   log-likelihood of 0, the largest possible). Ties in argmax go to the smallest class index.
// * stop_mem_management stops growth when the estimated size is over max_size (River also
//   stops as soon as any leaf is inactive). Sizes are this implementation's own bytes.
// * Missing values and unseen nominal values: see hoeffding_tree_nodes.h.
//
// Nominal attributes are declared by feature index (options.nominal_attributes); their values
// are category codes compared for equality. Features are stored per leaf in a vector indexed
// by feature index, so memory per active leaf is O(largest feature index): trees are meant for
// dense tabular feature spaces, not hashed million-bucket ones.
//
// Thread-safety: see Classifier. PredictProbaOne is const and allocation-free given a reused
// output buffer; LearnOne needs exclusive access. Errors: Load throws cereal::Exception on
// inconsistent data and leaves *this unchanged.
class HoeffdingTreeClassifier final : public Classifier, public TreeModel {
 public:
  // InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<HoeffdingTreeClassifier>> Create(
      const HoeffdingTreeOptions& options);

  // Options must be valid (checked in debug builds).
  explicit HoeffdingTreeClassifier(const HoeffdingTreeOptions& options = {});
  HoeffdingTreeClassifier(const HoeffdingTreeClassifier& other);
  HoeffdingTreeClassifier& operator=(const HoeffdingTreeClassifier&) = delete;

  static constexpr std::string_view kKind = "hoeffding_tree";
  std::string_view Kind() const override { return kKind; }

  void LearnOne(const FeatureVector& x, ClassIndex y, double weight = 1.0) override;
  // P(class | x) from the leaf x reaches; before any learning, nothing (NumClasses() == 0).
  // A leaf with no weight yet predicts uniformly.
  void PredictProbaOne(const FeatureVector& x, std::vector<double>* proba) const override;
  std::size_t NumClasses() const override { return num_classes_; }
  std::unique_ptr<Classifier> Clone() const override {
    return std::make_unique<HoeffdingTreeClassifier>(*this);
  }
  std::size_t MemoryBytes() const override;
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  TreeStats Stats() const override;
  std::string ToJson(std::span<const std::string> feature_names = {}) const override;
  std::string ToDot(std::span<const std::string> feature_names = {}) const override;

  const HoeffdingTreeOptions& options() const { return options_; }
  // Total weight learned.
  double weight_seen() const { return weight_seen_; }
  // The root (nullptr before learning), for tests and tools.
  const tree_internal::Node* root() const { return root_.get(); }

 private:
  HoeffdingTreeOptions options_;
  std::unique_ptr<tree_internal::Node> root_;
  std::size_t num_classes_ = 0;
  double weight_seen_ = 0;
  tree_internal::MemoryManager memory_;
  // Writer-only scratch for naive-Bayes-adaptive scoring in LearnOne.
  std::vector<double> scratch_;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_HOEFFDING_TREE_H_
