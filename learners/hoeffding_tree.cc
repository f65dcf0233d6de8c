#include "learners/hoeffding_tree.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/strings/str_format.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

using tree_internal::Node;

// Version of the serialized HoeffdingTreeClassifier state. Bump it, and keep a loader for the
// old layout, whenever Save() changes.
constexpr std::uint32_t kStateVersion = 1;
// Largest class count a checkpoint may claim (class vectors are bounded by it).
constexpr std::uint64_t kMaxClasses = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<HoeffdingTreeClassifier>> HoeffdingTreeClassifier::Create(
    const HoeffdingTreeOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<HoeffdingTreeClassifier>(options);
}

HoeffdingTreeClassifier::HoeffdingTreeClassifier(const HoeffdingTreeOptions& options)
    : options_(options) {
  assert(options.Validate().ok());
}

HoeffdingTreeClassifier::HoeffdingTreeClassifier(const HoeffdingTreeClassifier& other)
    : options_(other.options_),
      root_(other.root_ != nullptr ? tree_internal::CloneNode(*other.root_) : nullptr),
      num_classes_(other.num_classes_),
      weight_seen_(other.weight_seen_),
      memory_(other.memory_) {}

void HoeffdingTreeClassifier::LearnOne(const FeatureVector& x, ClassIndex y, double weight) {
  assert(weight > 0 && std::isfinite(weight));
  num_classes_ = std::max<std::size_t>(num_classes_, static_cast<std::size_t>(y) + 1);
  weight_seen_ += weight;
  if (root_ == nullptr) root_ = tree_internal::NewLeaf({}, 0, nullptr);

  std::unique_ptr<Node>* slot = &root_;
  while (!(*slot)->is_leaf()) {
    Node& branch = **slot;
    int k = tree_internal::Route(branch, x);
    if (k < 0) {
      const double* v = tree_internal::FindFeature(x, branch.feature);
      if (branch.split_kind == tree_internal::SplitKind::kNominalMultiway && v != nullptr) {
        // A value this multiway branch has not seen grows a new branch (River).
        auto& values = branch.branch_values;
        const auto pos = std::lower_bound(values.begin(), values.end(), *v) - values.begin();
        values.insert(values.begin() + pos, *v);
        branch.children.insert(branch.children.begin() + pos,
                               tree_internal::NewLeaf({}, branch.depth + 1, nullptr));
        k = static_cast<int>(pos);
      } else {
        k = static_cast<int>(tree_internal::MostCommonChild(branch));
      }
    }
    slot = &branch.children[static_cast<std::size_t>(k)];
  }

  Node* leaf = slot->get();
  tree_internal::LeafLearn(leaf, x, y, weight, options_,
                           options_.leaf_prediction == LeafPrediction::kNaiveBayesAdaptive,
                           std::nullopt, &scratch_);
  if (memory_.growth_allowed && leaf->active) {
    if (leaf->depth >= options_.DepthLimit()) {
      tree_internal::DeactivateLeaf(leaf);
    } else {
      const double seen = leaf->TotalWeight();
      if (seen - leaf->last_split_attempt_at >= static_cast<double>(options_.grace_period)) {
        leaf->last_split_attempt_at = seen;
        tree_internal::SplitSuggestion split;
        switch (tree_internal::AttemptSplit(leaf, options_, &split)) {
          case tree_internal::SplitAction::kNone:
            break;
          case tree_internal::SplitAction::kDeactivate:
            tree_internal::DeactivateLeaf(leaf);
            memory_.Enforce(root_.get(), false, options_);
            break;
          case tree_internal::SplitAction::kSplit:
            *slot = tree_internal::MakeBranch(*leaf, std::move(split), nullptr);
            memory_.Enforce(root_.get(), false, options_);
            break;
        }
      }
    }
  }
  if (std::fmod(weight_seen_, static_cast<double>(options_.memory_estimate_period)) == 0) {
    memory_.Estimate(root_.get(), false, options_);
  }
}

void HoeffdingTreeClassifier::PredictProbaOne(const FeatureVector& x,
                                              std::vector<double>* proba) const {
  proba->resize(num_classes_);
  if (num_classes_ == 0) return;
  const Node* node = root_.get();
  while (!node->is_leaf()) {
    int k = tree_internal::Route(*node, x);
    if (k < 0) k = static_cast<int>(tree_internal::MostCommonChild(*node));
    node = node->children[static_cast<std::size_t>(k)].get();
  }
  if (!tree_internal::LeafPredict(*node, x, options_, *proba)) {
    std::fill(proba->begin(), proba->end(), 1.0 / static_cast<double>(num_classes_));
  }
}

std::size_t HoeffdingTreeClassifier::MemoryBytes() const {
  return sizeof(*this) + scratch_.capacity() * sizeof(double) +
         options_.nominal_attributes.capacity() * sizeof(FeatureIndex) +
         (root_ != nullptr ? tree_internal::NodeMemoryBytes(*root_) : 0);
}

TreeStats HoeffdingTreeClassifier::Stats() const {
  return tree_internal::StatsOf(root_.get(), MemoryBytes());
}

std::string HoeffdingTreeClassifier::ToJson(std::span<const std::string> feature_names) const {
  return tree_internal::TreeJson(kKind, root_.get(), Stats(), feature_names);
}

std::string HoeffdingTreeClassifier::ToDot(std::span<const std::string> feature_names) const {
  return tree_internal::TreeDot(root_.get(), feature_names);
}

void HoeffdingTreeClassifier::Save(cereal::PortableBinaryOutputArchive& archive) const {
  archive(kStateVersion);
  tree_internal::SaveTreeOptions(archive, options_);
  archive(static_cast<std::uint64_t>(num_classes_), weight_seen_);
  tree_internal::SaveMemoryManager(archive, memory_);
  SaveBool(archive, root_ != nullptr);
  if (root_ != nullptr) tree_internal::SaveNode(archive, *root_);
}

void HoeffdingTreeClassifier::Load(cereal::PortableBinaryInputArchive& archive) {
  std::uint32_t version = 0;
  archive(version);
  if (version != kStateVersion) {
    throw cereal::Exception(absl::StrFormat(
        "hoeffding_tree state version %d is not supported (expected %d)", version, kStateVersion));
  }
  HoeffdingTreeOptions options = tree_internal::LoadTreeOptions(archive);
  std::uint64_t num_classes = 0;
  double weight_seen = 0;
  archive(num_classes, weight_seen);
  if (num_classes > kMaxClasses || !std::isfinite(weight_seen) || weight_seen < 0) {
    throw cereal::Exception("hoeffding_tree state: invalid counters");
  }
  tree_internal::MemoryManager memory = tree_internal::LoadMemoryManager(archive);
  std::unique_ptr<Node> root;
  if (LoadBool(archive)) {
    root = tree_internal::LoadNode(archive, 0, static_cast<std::size_t>(num_classes), nullptr);
  }
  if ((root == nullptr) != (num_classes == 0)) {
    throw cereal::Exception(
        "hoeffding_tree state: classes without a tree or a tree without classes");
  }
  // Commit only after everything was read and checked.
  options_ = std::move(options);
  root_ = std::move(root);
  num_classes_ = static_cast<std::size_t>(num_classes);
  weight_seen_ = weight_seen;
  memory_ = memory;
}

}  // namespace riffle::learners
