#ifndef RIFFLE_LEARNERS_HOEFFDING_ADAPTIVE_TREE_H_
#define RIFFLE_LEARNERS_HOEFFDING_ADAPTIVE_TREE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/adwin.h"
#include "learners/classifier.h"
#include "learners/hoeffding_tree_nodes.h"
#include "learners/hoeffding_tree_options.h"
#include "learners/tree_model.h"

namespace riffle::learners {

// Hyperparameters of HoeffdingAdaptiveTreeClassifier, with the defaults of River 0.26.1's
// tree.HoeffdingAdaptiveTreeClassifier.
struct HoeffdingAdaptiveTreeOptions {
  // Tree growing: as HoeffdingTreeClassifier (same names, same defaults).
  HoeffdingTreeOptions tree;
  // Each leaf learns an example with weight w * k, k ~ Poisson(1) drawn from the tree's RNG;
  // k = 0 keeps w (as River and MOA do: no example is dropped).
  bool bootstrap_sampling = true;
  // An alternate subtree may replace its branch, or be pruned, only once both have seen more
  // than this many examples since the alternate was started.
  std::uint64_t drift_window_threshold = 300;
  // Significance of the test that swaps in (or prunes) an alternate subtree, in (0, 1).
  double switch_significance = 0.05;
  // ADWIN at every node, on the node's 0/1 error stream (River: drift_detector=ADWIN()). Set
  // through Set("adwin_delta", ...), "adwin_clock", "adwin_max_buckets",
  // "adwin_min_window_length", "adwin_grace_period".
  AdwinOptions adwin;
  // Seed of the bootstrap RNG (River's seed=None means unseeded; Riffle is always
  // deterministic, so the default is seed 0).
  std::uint64_t seed = 0;

  absl::Status Validate() const;
  // Sets one option by name: the fields above, adwin_* for the ADWIN options, and every
  // HoeffdingTreeOptions name for the tree.
  absl::Status Set(std::string_view name, std::string_view value);
};

// Hoeffding adaptive tree (HAT-ADWIN; Bifet & Gavaldà 2009, "Adaptive learning from evolving
// data streams", IDA), as River 0.26.1's tree.HoeffdingAdaptiveTreeClassifier: a Hoeffding tree
// (see HoeffdingTreeClassifier for growth, splits and leaf predictions) whose every node
// monitors the error of the predictions made below it with ADWIN.
//
// Per example, at each branch on its path: the prediction of the leaf x reaches gives a 0/1
// error, fed to the branch's ADWIN and to its running mean error. When ADWIN detects a change
// and the error went up, the mean is restarted and an alternate subtree (a fresh leaf) starts
// growing beside the branch; when the error went down, only the mean is restarted. While an
// alternate exists and both it and the branch have seen more than drift_window_threshold
// examples, with error rates e (branch) and e' (alternate) over n and n' examples and
//   bound = sqrt(2 e (1 - e) ln(2 / switch_significance) (1/n + 1/n')),
// the alternate replaces the branch when e - e' > bound, and is discarded when e' - e > bound.
// Each alternate learns every example that reaches its branch, as its own subtree. Leaves keep
// an ADWIN and a mean error too, and learn with bootstrap weights (bootstrap_sampling).
// Prediction sums, over the leaf x reaches and the leaves it reaches in every alternate
// subtree on its path, each leaf's distribution divided by its squared mean error (River's
// weighting, including its quirk that a leaf with mean error exactly 0 gets weight 1), then
// normalises.
//
// Deliberate difference from River (and MOA): when the root leaf of an alternate subtree
// splits, River hands the new branch to the *parent* of the branch that owns the alternate,
// so the alternate silently replaces the main subtree as soon as it first splits, without the
// switch_significance test (and at the root it replaces the whole tree). Riffle grows the
// split inside the alternate subtree, so only the statistical test swaps subtrees, as the
// paper describes. River's alternates are therefore always single leaves; Riffle's can be
// whole subtrees.
//
// The bootstrap RNG (splitmix64, seeded by `seed`) is part of the model state: Save/Load
// restore it, so a restored model continues exactly as the original would.
//
// Thread-safety, ownership and errors: as HoeffdingTreeClassifier. PredictProbaOne uses a
// thread-local scratch buffer only when alternate subtrees are on x's path.
class HoeffdingAdaptiveTreeClassifier final : public Classifier, public TreeModel {
 public:
  static absl::StatusOr<std::unique_ptr<HoeffdingAdaptiveTreeClassifier>> Create(
      const HoeffdingAdaptiveTreeOptions& options);

  explicit HoeffdingAdaptiveTreeClassifier(const HoeffdingAdaptiveTreeOptions& options = {});
  HoeffdingAdaptiveTreeClassifier(const HoeffdingAdaptiveTreeClassifier& other);
  HoeffdingAdaptiveTreeClassifier& operator=(const HoeffdingAdaptiveTreeClassifier&) = delete;

  static constexpr std::string_view kKind = "hoeffding_adaptive_tree";
  std::string_view Kind() const override { return kKind; }

  void LearnOne(const FeatureVector& x, ClassIndex y, double weight = 1.0) override;
  void PredictProbaOne(const FeatureVector& x, std::vector<double>* proba) const override;
  std::size_t NumClasses() const override { return num_classes_; }
  std::unique_ptr<Classifier> Clone() const override {
    return std::make_unique<HoeffdingAdaptiveTreeClassifier>(*this);
  }
  std::size_t MemoryBytes() const override;
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  TreeStats Stats() const override;
  // Every alternate subtree started is a detected drift.
  std::uint64_t DriftDetections() const override { return n_alternate_trees_; }
  std::string ToJson(std::span<const std::string> feature_names = {}) const override;
  std::string ToDot(std::span<const std::string> feature_names = {}) const override;

  const HoeffdingAdaptiveTreeOptions& options() const { return options_; }
  // Alternate subtrees started, swapped in, and discarded (including those discarded with a
  // subtree that was replaced), since construction.
  std::uint64_t n_alternate_trees() const { return n_alternate_trees_; }
  std::uint64_t n_switch_alternate_trees() const { return n_switch_alternate_trees_; }
  std::uint64_t n_pruned_alternate_trees() const { return n_pruned_alternate_trees_; }
  const tree_internal::Node* root() const { return root_.get(); }

 private:
  using NodePtr = std::unique_ptr<tree_internal::Node>;

  // What the leaf an example reaches predicts for it, remembered while LearnOne learns that
  // example: every branch on the example's path scores the prediction of the same leaf
  // (ErrorAt), and the leaf then scores naive Bayes once more before it learns (LeafLearn), so
  // without this a path of depth d routes d times from each branch down and evaluates the
  // leaf's prediction d + 2 times per example. It lives on LearnOne's stack, and holds only
  // while the leaf is unchanged and alive: it is forgotten before any leaf learns and whenever a
  // subtree is dropped.
  struct LeafVerdict {
    // The verdict is about the leaf x reaches from `from` (prediction's routing); nullptr:
    // nothing remembered.
    const tree_internal::Node* from = nullptr;
    const tree_internal::Node* leaf = nullptr;
    double error = 1.0;  // ErrorAt's answer
    // The class naive Bayes predicts at `leaf`, when the leaf's prediction was naive Bayes.
    std::optional<ClassIndex> nb_choice;

    void Forget() { from = leaf = nullptr; }
    // x's routing from `branch` goes on through `child`: the leaf reached from either is the same.
    void Descend(const tree_internal::Node* branch, const tree_internal::Node* child) {
      if (from == branch) from = child;
    }
  };

  // Learns (x, y) in the subtree owned by *slot (root_, a child pointer or an alternate
  // pointer), which a split or a swap may replace.
  void LearnSubtree(NodePtr* slot, const FeatureVector& x, ClassIndex y, double weight,
                    LeafVerdict* verdict);
  void LearnLeaf(NodePtr* slot, const FeatureVector& x, ClassIndex y, double weight,
                 LeafVerdict* verdict);
  void LearnBranch(NodePtr* slot, const FeatureVector& x, ClassIndex y, double weight,
                   LeafVerdict* verdict);
  // 1 if the leaf x reaches below `node` (main path) mispredicts y, else 0. Answers from
  // *verdict when it is about `node`, else remembers the answer there.
  double ErrorAt(const tree_internal::Node& node, const FeatureVector& x, ClassIndex y,
                 LeafVerdict* verdict);
  // Adds the weighted predictions of the leaves for x below `node` into `acc`.
  void Accumulate(const tree_internal::Node& node, const FeatureVector& x, std::span<double> acc,
                  std::vector<double>* leaf_scratch) const;
  // Poisson(1) by inversion on uniform draws (River's utils.random.poisson).
  std::uint64_t PoissonOne();
  double NextUniform();

  HoeffdingAdaptiveTreeOptions options_;
  NodePtr root_;
  std::size_t num_classes_ = 0;
  double weight_seen_ = 0;
  tree_internal::MemoryManager memory_;
  std::uint64_t rng_state_ = 0;
  std::uint64_t n_alternate_trees_ = 0;
  std::uint64_t n_switch_alternate_trees_ = 0;
  std::uint64_t n_pruned_alternate_trees_ = 0;
  // Writer-only scratch.
  std::vector<double> scratch_;
  std::vector<double> error_scratch_;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_HOEFFDING_ADAPTIVE_TREE_H_
