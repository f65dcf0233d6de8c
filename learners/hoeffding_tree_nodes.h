#ifndef RIFFLE_LEARNERS_HOEFFDING_TREE_NODES_H_
#define RIFFLE_LEARNERS_HOEFFDING_TREE_NODES_H_

// Building blocks shared by HoeffdingTreeClassifier and HoeffdingAdaptiveTreeClassifier:
// attribute observers, split criteria, the node type and the operations both trees apply to
// nodes (learning at a leaf, leaf predictions, split attempts, routing, memory management,
// serialization, dumps). Internal to learners/: the public types are the two classifiers.
//
// Missing values. A FeatureVector is sparse: a feature absent from it is missing (River's dict
// semantics), not zero. Observers skip it when learning, naive Bayes leaves it out of the
// product, and a branch whose feature is missing routes the example down its most-travelled
// child (the child whose subtree has seen the most weight), as River does. A nominal value a
// multiway branch has never seen is routed the same way at prediction time; when learning, a
// new leaf is grown for it (River). A binary nominal branch sends any other value, seen or
// not, to its "!=" child.

#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "learners/adwin.h"
#include "learners/feature_vector.h"
#include "learners/hoeffding_tree_options.h"
#include "learners/tree_model.h"

namespace riffle::learners::tree_internal {

inline constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Value of feature j in x, or nullptr when absent. O(1) when x is laid out densely in index
// order (position j holds index j, as tabular rows are), O(size) otherwise.
const double* FindFeature(const FeatureVector& x, FeatureIndex j);

// P(X <= x) for X ~ N(mean, sigma^2); 0 when sigma is 0 (River).
double NormalCdf(double x, double mean, double sigma);

// Weighted running mean and sum of squared deviations of one attribute for one class (West's
// update, as river.stats.Var), with the observed range. A Gaussian N(mean, s / (n - 1)).
struct GaussianStats {
  double n = 0;
  double mean = 0;
  double s = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  // Cached for naive Bayes (refreshed by Refresh()): log_pdf(x) = (x - mean)^2 * neg_half_inv_var
  // + log_norm when variance > 0; log_norm is -inf (and neg_half_inv_var 0) otherwise.
  double neg_half_inv_var = 0;
  double log_norm = kNegInf;

  void Update(double x, double w);
  void Refresh();
  double Variance() const { return n > 1 ? s / (n - 1) : 0.0; }
  double StdDev() const { return std::sqrt(Variance()); }
};

// One category value of a nominal attribute and the weight of each class that had it.
struct NominalValue {
  double value = 0;
  std::vector<double> weights;
};

enum class ObserverKind : std::uint8_t { kNone = 0, kNumeric = 1, kNominal = 2, kDisabled = 3 };

// What a leaf knows about one attribute: per-class Gaussians (numeric) or per-value class
// weights (nominal). Per-class vectors may be shorter than the number of classes: missing
// entries are zero.
struct Observer {
  ObserverKind kind = ObserverKind::kNone;
  std::vector<GaussianStats> numeric;  // by class; n == 0 means the class never had a value
  std::vector<NominalValue> nominal;   // sorted by value
  std::vector<double> nominal_class_totals;
};

// A candidate split: merit, attribute, test and the class weights each branch would start
// with. The null split (no attribute) has merit -inf.
enum class SplitKind : std::uint8_t {
  kNumericBinary = 0,
  kNominalBinary = 1,
  kNominalMultiway = 2
};

struct SplitSuggestion {
  double merit = kNegInf;
  bool has_feature = false;
  FeatureIndex feature = 0;
  SplitKind kind = SplitKind::kNumericBinary;
  double threshold = 0;        // numeric: x <= threshold goes left; nominal binary: x == value
  std::vector<double> values;  // multiway: the value of each branch
  std::vector<std::vector<double>> children_stats;
};

// Split criteria over class-weight vectors. `post` holds one distribution per branch.
double MeritOfSplit(SplitCriterion c, double min_branch_fraction, std::span<const double> pre,
                    const std::vector<std::vector<double>>& post);
double RangeOfMerit(SplitCriterion c, std::span<const double> pre);
// eps = sqrt(R^2 ln(1/delta) / (2n)).
double HoeffdingBound(double range, double delta, double n);

// State of Hoeffding adaptive tree nodes (Bifet & Gavaldà 2009): an ADWIN and the mean of the
// 0/1 error stream of the examples that reached the node, and an alternate subtree.
struct Node;
struct AdaptiveState {
  explicit AdaptiveState(const AdwinOptions& options) : adwin(options) {}
  Adwin adwin;
  double error_n = 0;
  double error_mean = 0;
  std::unique_ptr<Node> alternate;
};

// A tree node: a branch when `children` is non-empty, a leaf otherwise.
struct Node {
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::vector<double> stats;  // class weights seen (a branch keeps those it had as a leaf)
  std::uint32_t depth = 0;

  // Branch.
  SplitKind split_kind = SplitKind::kNumericBinary;
  FeatureIndex feature = 0;
  double threshold = 0;
  std::vector<double> branch_values;  // kNominalMultiway: the value of each child
  std::vector<std::unique_ptr<Node>> children;

  // Leaf. An inactive leaf keeps counting classes but has no observers and never splits.
  bool active = true;
  double last_split_attempt_at = 0;
  double mc_correct = 0;  // naive Bayes adaptive scores
  double nb_correct = 0;
  std::vector<Observer> observers;  // by feature index

  // Hoeffding adaptive tree only.
  std::unique_ptr<AdaptiveState> adaptive;

  bool is_leaf() const { return children.empty(); }
  double TotalWeight() const;
};

std::unique_ptr<Node> NewLeaf(std::vector<double> stats, std::uint32_t depth,
                              const AdwinOptions* adaptive);
std::unique_ptr<Node> CloneNode(const Node& node);

// Learning at a leaf: naive-Bayes-adaptive scores (when `score_nba`), class weights, then the
// observers of the present attributes (when active). `nb_choice`, when given, is the class naive
// Bayes predicts for x at this leaf in its current state (NaiveBayesChoice), which a caller that
// has just predicted there already knows; otherwise LeafLearn evaluates naive Bayes itself.
// `scratch` is writer-owned.
void LeafLearn(Node* leaf, const FeatureVector& x, ClassIndex y, double w,
               const HoeffdingTreeOptions& o, bool score_nba, std::optional<ClassIndex> nb_choice,
               std::vector<double>* scratch);
// Whether LeafPredict answers with naive Bayes (rather than the class distribution) at this leaf
// in its current state, given that the leaf has weight.
bool LeafPredictsWithNaiveBayes(const Node& leaf, const HoeffdingTreeOptions& o);
// The leaf's class probabilities, written into out[0..out.size()) (zeros beyond the classes
// the leaf knows). Returns false when the leaf has no weight (then `out` is all zero).
bool LeafPredict(const Node& leaf, const FeatureVector& x, const HoeffdingTreeOptions& o,
                 std::span<double> out);
// Naive Bayes posterior over the leaf's classes into out[0..min(classes, out.size())), zeros
// beyond (all zero for a leaf without weight). The values written do not depend on out.size().
void NaiveBayes(const Node& leaf, const FeatureVector& x, std::span<double> out);
// The class naive Bayes predicts, given its output `nb` for a leaf with weight (nb.size() at
// least the leaf's class count): the argmax over the leaf's classes, ties to the smallest index,
// as LeafLearn scores it.
ClassIndex NaiveBayesChoice(const Node& leaf, std::span<const double> nb);
void DeactivateLeaf(Node* leaf);
void ActivateLeaf(Node* leaf);
// A small value: the leaf is close to pure and unlikely to split (total - majority weight).
double LeafPromise(const Node& leaf);

// The child of `branch` for x, or -1 when the feature is missing or a multiway branch has
// not seen the value.
int Route(const Node& branch, const FeatureVector& x);
std::size_t MostCommonChild(const Node& branch);
// Sum of the leaves' weights below `node` (main tree only), as River's total_weight.
double SubtreeWeight(const Node& node);

enum class SplitAction { kNone, kDeactivate, kSplit };
// Decides whether `leaf` splits now (Domingos & Hulten 2000, with River's details; see
// hoeffding_tree.h). On kSplit, *best is the chosen split.
SplitAction AttemptSplit(Node* leaf, const HoeffdingTreeOptions& o, SplitSuggestion* best);
// The branch replacing `leaf` for `split`, with one new leaf per branch.
std::unique_ptr<Node> MakeBranch(const Node& leaf, SplitSuggestion split,
                                 const AdwinOptions* adaptive);

// Leaves in depth-first order; with `alternates`, those of alternate subtrees too.
void CollectLeaves(Node* node, bool alternates, std::vector<Node*>* out);

struct TreeShape {
  std::size_t nodes = 0;
  std::size_t branches = 0;
  std::size_t leaves = 0;
  std::size_t active_leaves = 0;
  std::size_t depth = 0;  // deepest leaf's depth (a lone root leaf: 0)
  std::size_t alternate_trees = 0;
};
// Counts the main tree; alternate subtrees only count in alternate_trees.
void MeasureTree(const Node& node, TreeShape* shape);
// TreeModel::Stats() of a tree with this root (null: empty) and memory estimate.
TreeStats StatsOf(const Node* root, std::size_t memory_bytes);
std::size_t NodeMemoryBytes(const Node& node);  // the subtree, alternates included
std::size_t LeafMemoryBytes(const Node& leaf);

// Memory management (Kirkby 2007, as River's HoeffdingTree): estimates of the bytes of an
// active and an inactive leaf, refreshed every memory_estimate_period, decide how many of the
// most promising leaves may stay active within max_size.
struct MemoryManager {
  double active_leaf_bytes = 0;
  double inactive_leaf_bytes = 0;
  double overhead_fraction = 1.0;
  bool growth_allowed = true;

  void Enforce(Node* root, bool alternates, const HoeffdingTreeOptions& o);
  void Estimate(Node* root, bool alternates, const HoeffdingTreeOptions& o);
};

// Serialization of a subtree, pre-order. Load checks everything it reads (enum values,
// child counts, depths, class-vector sizes against `max_classes`) and throws
// cereal::Exception on inconsistent data; nothing is allocated from an unchecked count.
void SaveNode(cereal::PortableBinaryOutputArchive& archive, const Node& node);
std::unique_ptr<Node> LoadNode(cereal::PortableBinaryInputArchive& archive, std::uint32_t depth,
                               std::size_t max_classes, const AdwinOptions* adaptive);

// Options travel with the model. LoadTreeOptions validates what it read (cereal::Exception).
void SaveTreeOptions(cereal::PortableBinaryOutputArchive& archive, const HoeffdingTreeOptions& o);
HoeffdingTreeOptions LoadTreeOptions(cereal::PortableBinaryInputArchive& archive);
void SaveMemoryManager(cereal::PortableBinaryOutputArchive& archive, const MemoryManager& m);
MemoryManager LoadMemoryManager(cereal::PortableBinaryInputArchive& archive);

// Dumps. Feature j is named feature_names[j] when given, "f<j>" otherwise.
void AppendNodeJson(const Node& node, std::span<const std::string> feature_names, std::string* out);
void AppendNodeDot(const Node& node, std::span<const std::string> feature_names, std::string* out,
                   std::size_t* next_id);
// Whole-tree dumps in TreeModel's format.
std::string TreeJson(std::string_view kind, const Node* root, const TreeStats& stats,
                     std::span<const std::string> feature_names);
std::string TreeDot(const Node* root, std::span<const std::string> feature_names);

}  // namespace riffle::learners::tree_internal

#endif  // RIFFLE_LEARNERS_HOEFFDING_TREE_NODES_H_
