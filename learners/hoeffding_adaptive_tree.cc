#include "learners/hoeffding_adaptive_tree.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/strings/str_format.h"
#include "learners/option_parsing.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

using tree_internal::Node;

constexpr std::uint32_t kStateVersion = 1;
constexpr std::uint64_t kMaxClasses = 1 << 20;
constexpr std::string_view kAdwinPrefix = "adwin_";

// Feeds one 0/1 error into a node's detector and mean. Returns true when ADWIN detected a
// change and the error went up. The mean restarts on a detection when the error went down
// and, for branches (`restart_if_worse`), also when it went up (River).
bool UpdateError(tree_internal::AdaptiveState* a, double error, bool restart_if_worse) {
  const double old_mean = a->error_mean;
  a->adwin.Update(error);
  a->error_n += 1;
  a->error_mean += (error - a->error_mean) / a->error_n;
  if (!a->adwin.drift_detected()) return false;
  const bool worse = !(old_mean > a->error_mean);
  if (!worse || restart_if_worse) {
    a->error_n = 0;
    a->error_mean = 0;
  }
  return worse;
}

}  // namespace

absl::Status HoeffdingAdaptiveTreeOptions::Validate() const {
  if (absl::Status s = tree.Validate(); !s.ok()) return s;
  if (absl::Status s = adwin.Validate(); !s.ok()) return s;
  return RequireInOpenRange("switch_significance", switch_significance, 0, 1);
}

absl::Status HoeffdingAdaptiveTreeOptions::Set(std::string_view name, std::string_view value) {
  if (name == "bootstrap_sampling") return ParseBoolOption(name, value, &bootstrap_sampling);
  if (name == "drift_window_threshold") {
    return ParseUint64Option(name, value, &drift_window_threshold);
  }
  if (name == "switch_significance") return ParseDoubleOption(name, value, &switch_significance);
  if (name == "seed") return ParseUint64Option(name, value, &seed);
  if (name.substr(0, kAdwinPrefix.size()) == kAdwinPrefix) {
    return adwin.Set(name.substr(kAdwinPrefix.size()), value);
  }
  return tree.Set(name, value, HoeffdingAdaptiveTreeClassifier::kKind);
}

absl::StatusOr<std::unique_ptr<HoeffdingAdaptiveTreeClassifier>>
HoeffdingAdaptiveTreeClassifier::Create(const HoeffdingAdaptiveTreeOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<HoeffdingAdaptiveTreeClassifier>(options);
}

HoeffdingAdaptiveTreeClassifier::HoeffdingAdaptiveTreeClassifier(
    const HoeffdingAdaptiveTreeOptions& options)
    : options_(options), rng_state_(options.seed) {
  assert(options.Validate().ok());
}

HoeffdingAdaptiveTreeClassifier::HoeffdingAdaptiveTreeClassifier(
    const HoeffdingAdaptiveTreeClassifier& other)
    : options_(other.options_),
      root_(other.root_ != nullptr ? tree_internal::CloneNode(*other.root_) : nullptr),
      num_classes_(other.num_classes_),
      weight_seen_(other.weight_seen_),
      memory_(other.memory_),
      rng_state_(other.rng_state_),
      n_alternate_trees_(other.n_alternate_trees_),
      n_switch_alternate_trees_(other.n_switch_alternate_trees_),
      n_pruned_alternate_trees_(other.n_pruned_alternate_trees_) {}

double HoeffdingAdaptiveTreeClassifier::NextUniform() {
  // splitmix64 (Steele, Lea & Flood 2014): one 64-bit word of state, trivially checkpointed.
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

std::uint64_t HoeffdingAdaptiveTreeClassifier::PoissonOne() {
  static const double kExpMinusOne = std::exp(-1.0);
  std::uint64_t k = 0;
  double p = 1.0;
  while (p > kExpMinusOne) {
    ++k;
    p *= NextUniform();
  }
  return k - 1;
}

void HoeffdingAdaptiveTreeClassifier::LearnOne(const FeatureVector& x, ClassIndex y,
                                               double weight) {
  assert(weight > 0 && std::isfinite(weight));
  num_classes_ = std::max<std::size_t>(num_classes_, static_cast<std::size_t>(y) + 1);
  weight_seen_ += weight;
  if (root_ == nullptr) root_ = tree_internal::NewLeaf({}, 0, &options_.adwin);
  LeafVerdict verdict;
  LearnSubtree(&root_, x, y, weight, &verdict);
  if (std::fmod(weight_seen_, static_cast<double>(options_.tree.memory_estimate_period)) == 0) {
    memory_.Estimate(root_.get(), true, options_.tree);
  }
}

void HoeffdingAdaptiveTreeClassifier::LearnSubtree(NodePtr* slot, const FeatureVector& x,
                                                   ClassIndex y, double weight,
                                                   LeafVerdict* verdict) {
  if ((*slot)->is_leaf()) {
    LearnLeaf(slot, x, y, weight, verdict);
  } else {
    LearnBranch(slot, x, y, weight, verdict);
  }
}

double HoeffdingAdaptiveTreeClassifier::ErrorAt(const Node& node, const FeatureVector& x,
                                                ClassIndex y, LeafVerdict* verdict) {
  // x, y and num_classes_ are fixed during one LearnOne, and the leaf is unchanged while the
  // verdict holds, so the answer is the same.
  if (verdict->from == &node) return verdict->error;
  const Node* leaf = &node;
  while (!leaf->is_leaf()) {
    int k = tree_internal::Route(*leaf, x);
    if (k < 0) k = static_cast<int>(tree_internal::MostCommonChild(*leaf));
    leaf = leaf->children[static_cast<std::size_t>(k)].get();
  }
  verdict->from = &node;
  verdict->leaf = leaf;
  verdict->nb_choice.reset();
  error_scratch_.resize(std::max<std::size_t>(num_classes_, 1));
  if (!tree_internal::LeafPredict(*leaf, x, options_.tree, error_scratch_)) {
    verdict->error = 1.0;
  } else {
    if (tree_internal::LeafPredictsWithNaiveBayes(*leaf, options_.tree)) {
      verdict->nb_choice = tree_internal::NaiveBayesChoice(*leaf, error_scratch_);
    }
    verdict->error = ArgMax(error_scratch_) == y ? 0.0 : 1.0;
  }
  return verdict->error;
}

void HoeffdingAdaptiveTreeClassifier::LearnLeaf(NodePtr* slot, const FeatureVector& x, ClassIndex y,
                                                double weight, LeafVerdict* verdict) {
  Node* leaf = slot->get();
  if (options_.bootstrap_sampling) {
    const std::uint64_t k = PoissonOne();
    if (k > 0) weight *= static_cast<double>(k);
  }
  // A leaf's detector only restarts its mean error (which weights its vote).
  UpdateError(leaf->adaptive.get(), ErrorAt(*leaf, x, y, verdict), /*restart_if_worse=*/false);
  // ErrorAt has just predicted at this leaf: LeafLearn reuses naive Bayes' answer. From here on
  // the leaf changes, and the verdict with it.
  assert(verdict->leaf == leaf);
  const std::optional<ClassIndex> nb_choice = verdict->nb_choice;
  verdict->Forget();
  const HoeffdingTreeOptions& o = options_.tree;
  tree_internal::LeafLearn(leaf, x, y, weight, o,
                           o.leaf_prediction == LeafPrediction::kNaiveBayesAdaptive, nb_choice,
                           &scratch_);
  const double seen = leaf->TotalWeight();
  if (seen - leaf->last_split_attempt_at < static_cast<double>(o.grace_period)) return;
  if (leaf->depth >= o.DepthLimit()) {
    if (leaf->active) tree_internal::DeactivateLeaf(leaf);
    return;
  }
  if (!leaf->active || !memory_.growth_allowed) return;
  leaf->last_split_attempt_at = seen;
  tree_internal::SplitSuggestion split;
  switch (tree_internal::AttemptSplit(leaf, o, &split)) {
    case tree_internal::SplitAction::kNone:
      return;
    case tree_internal::SplitAction::kDeactivate:
      tree_internal::DeactivateLeaf(leaf);
      break;
    case tree_internal::SplitAction::kSplit:
      *slot = tree_internal::MakeBranch(*leaf, std::move(split), &options_.adwin);
      break;
  }
  memory_.Enforce(root_.get(), true, o);
}

void HoeffdingAdaptiveTreeClassifier::LearnBranch(NodePtr* slot, const FeatureVector& x,
                                                  ClassIndex y, double weight,
                                                  LeafVerdict* verdict) {
  Node* branch = slot->get();
  tree_internal::AdaptiveState* a = branch->adaptive.get();
  const double error = ErrorAt(*branch, x, y, verdict);
  if (y >= branch->stats.size()) branch->stats.resize(y + 1, 0.0);
  branch->stats[y] += weight;
  if (UpdateError(a, error, /*restart_if_worse=*/true)) {
    // The error went up: start (or restart) an alternate subtree at this branch's depth.
    verdict->Forget();  // a restart drops the previous alternate
    a->alternate = tree_internal::NewLeaf({}, branch->depth, &options_.adwin);
    ++n_alternate_trees_;
  } else if (a->alternate != nullptr) {
    const double alt_n = a->alternate->adaptive->error_n;
    const double n = a->error_n;
    const double threshold = static_cast<double>(options_.drift_window_threshold);
    if (alt_n > threshold && n > threshold) {
      const double e = a->error_mean;
      const double alt_e = a->alternate->adaptive->error_mean;
      const double bound =
          std::sqrt(2.0 * e * (1.0 - e) * std::log(2.0 / options_.switch_significance) *
                    (1.0 / alt_n + 1.0 / n));
      if (bound < e - alt_e) {
        // Swap: the alternate takes this branch's place (and learns the example there); the
        // old subtree and the alternates growing inside it are dropped.
        NodePtr promoted = std::move(a->alternate);
        tree_internal::TreeShape dropped;
        tree_internal::MeasureTree(*branch, &dropped);
        n_pruned_alternate_trees_ += dropped.alternate_trees;
        ++n_switch_alternate_trees_;
        verdict->Forget();
        *slot = std::move(promoted);  // destroys `branch`
        LearnSubtree(slot, x, y, weight, verdict);
        return;
      }
      if (bound < alt_e - e) {
        verdict->Forget();
        a->alternate.reset();
        ++n_pruned_alternate_trees_;
      }
    }
  }
  if (a->alternate != nullptr) LearnSubtree(&a->alternate, x, y, weight, verdict);

  int k = tree_internal::Route(*branch, x);
  bool grown = false;
  if (k < 0) {
    const double* v = tree_internal::FindFeature(x, branch->feature);
    if (branch->split_kind == tree_internal::SplitKind::kNominalMultiway && v != nullptr) {
      auto& values = branch->branch_values;
      const auto pos = std::lower_bound(values.begin(), values.end(), *v) - values.begin();
      values.insert(values.begin() + pos, *v);
      branch->children.insert(branch->children.begin() + pos,
                              tree_internal::NewLeaf({}, branch->depth + 1, &options_.adwin));
      k = static_cast<int>(pos);
      grown = true;
    } else {
      k = static_cast<int>(tree_internal::MostCommonChild(*branch));
    }
  }
  NodePtr* child = &branch->children[static_cast<std::size_t>(k)];
  // ErrorAt's routing from this branch took the same child (Route, or the most common child,
  // whose weights nothing above has changed), unless a leaf was just grown for x's value.
  if (!grown) verdict->Descend(branch, child->get());
  LearnSubtree(child, x, y, weight, verdict);
}

void HoeffdingAdaptiveTreeClassifier::Accumulate(const Node& node, const FeatureVector& x,
                                                 std::span<double> acc,
                                                 std::vector<double>* leaf_scratch) const {
  const Node* n = &node;
  while (true) {
    if (n->adaptive->alternate != nullptr)
      Accumulate(*n->adaptive->alternate, x, acc, leaf_scratch);
    if (n->is_leaf()) break;
    int k = tree_internal::Route(*n, x);
    if (k < 0) k = static_cast<int>(tree_internal::MostCommonChild(*n));
    n = n->children[static_cast<std::size_t>(k)].get();
  }
  leaf_scratch->resize(acc.size());
  if (!tree_internal::LeafPredict(*n, x, options_.tree, *leaf_scratch)) return;
  double sum = 0;
  for (double p : *leaf_scratch) sum += p;
  const double e = n->adaptive->error_mean;
  const double factor = sum * e * e;
  const double scale = factor != 0 ? 1.0 / factor : 1.0;
  for (std::size_t c = 0; c < acc.size(); ++c) acc[c] += (*leaf_scratch)[c] * scale;
}

void HoeffdingAdaptiveTreeClassifier::PredictProbaOne(const FeatureVector& x,
                                                      std::vector<double>* proba) const {
  proba->assign(num_classes_, 0.0);
  if (num_classes_ == 0) return;
  thread_local std::vector<double> leaf_scratch;
  Accumulate(*root_, x, *proba, &leaf_scratch);
  double sum = 0;
  for (double p : *proba) sum += p;
  if (sum > 0 && std::isfinite(sum)) {
    for (double& p : *proba) p /= sum;
  } else {
    std::fill(proba->begin(), proba->end(), 1.0 / static_cast<double>(num_classes_));
  }
}

std::size_t HoeffdingAdaptiveTreeClassifier::MemoryBytes() const {
  return sizeof(*this) + (scratch_.capacity() + error_scratch_.capacity()) * sizeof(double) +
         options_.tree.nominal_attributes.capacity() * sizeof(FeatureIndex) +
         (root_ != nullptr ? tree_internal::NodeMemoryBytes(*root_) : 0);
}

TreeStats HoeffdingAdaptiveTreeClassifier::Stats() const {
  return tree_internal::StatsOf(root_.get(), MemoryBytes());
}

std::string HoeffdingAdaptiveTreeClassifier::ToJson(
    std::span<const std::string> feature_names) const {
  return tree_internal::TreeJson(kKind, root_.get(), Stats(), feature_names);
}

std::string HoeffdingAdaptiveTreeClassifier::ToDot(
    std::span<const std::string> feature_names) const {
  return tree_internal::TreeDot(root_.get(), feature_names);
}

void HoeffdingAdaptiveTreeClassifier::Save(cereal::PortableBinaryOutputArchive& archive) const {
  archive(kStateVersion);
  tree_internal::SaveTreeOptions(archive, options_.tree);
  SaveBool(archive, options_.bootstrap_sampling);
  archive(options_.drift_window_threshold, options_.switch_significance, options_.seed);
  const AdwinOptions& w = options_.adwin;
  archive(w.delta, w.clock, w.max_buckets, w.min_window_length, w.grace_period);
  archive(static_cast<std::uint64_t>(num_classes_), weight_seen_);
  tree_internal::SaveMemoryManager(archive, memory_);
  archive(rng_state_, n_alternate_trees_, n_switch_alternate_trees_, n_pruned_alternate_trees_);
  SaveBool(archive, root_ != nullptr);
  if (root_ != nullptr) tree_internal::SaveNode(archive, *root_);
}

void HoeffdingAdaptiveTreeClassifier::Load(cereal::PortableBinaryInputArchive& archive) {
  std::uint32_t version = 0;
  archive(version);
  if (version != kStateVersion) {
    throw cereal::Exception(
        absl::StrFormat("hoeffding_adaptive_tree state version %d is not supported (expected %d)",
                        version, kStateVersion));
  }
  HoeffdingAdaptiveTreeOptions o;
  o.tree = tree_internal::LoadTreeOptions(archive);
  o.bootstrap_sampling = LoadBool(archive);
  archive(o.drift_window_threshold, o.switch_significance, o.seed);
  AdwinOptions& w = o.adwin;
  archive(w.delta, w.clock, w.max_buckets, w.min_window_length, w.grace_period);
  if (absl::Status s = o.Validate(); !s.ok()) {
    throw cereal::Exception(absl::StrFormat("hoeffding_adaptive_tree state: %s", s.message()));
  }
  std::uint64_t num_classes = 0;
  double weight_seen = 0;
  archive(num_classes, weight_seen);
  if (num_classes > kMaxClasses || !std::isfinite(weight_seen) || weight_seen < 0) {
    throw cereal::Exception("hoeffding_adaptive_tree state: invalid counters");
  }
  tree_internal::MemoryManager memory = tree_internal::LoadMemoryManager(archive);
  std::uint64_t rng_state = 0, n_alt = 0, n_switch = 0, n_pruned = 0;
  archive(rng_state, n_alt, n_switch, n_pruned);
  NodePtr root;
  if (LoadBool(archive)) {
    root = tree_internal::LoadNode(archive, 0, static_cast<std::size_t>(num_classes), &o.adwin);
  }
  if ((root == nullptr) != (num_classes == 0)) {
    throw cereal::Exception(
        "hoeffding_adaptive_tree state: classes without a tree or a tree without classes");
  }
  options_ = std::move(o);
  root_ = std::move(root);
  num_classes_ = static_cast<std::size_t>(num_classes);
  weight_seen_ = weight_seen;
  memory_ = memory;
  rng_state_ = rng_state;
  n_alternate_trees_ = n_alt;
  n_switch_alternate_trees_ = n_switch;
  n_pruned_alternate_trees_ = n_pruned;
}

}  // namespace riffle::learners
