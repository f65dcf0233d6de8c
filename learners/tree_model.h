#ifndef RIFFLE_LEARNERS_TREE_MODEL_H_
#define RIFFLE_LEARNERS_TREE_MODEL_H_

#include <cstddef>
#include <span>
#include <string>

namespace riffle::learners {

// Size and shape of a decision tree.
struct TreeStats {
  std::size_t nodes = 0;  // branches + leaves of the main tree
  std::size_t branches = 0;
  std::size_t leaves = 0;
  std::size_t active_leaves = 0;
  std::size_t inactive_leaves = 0;
  std::size_t depth = 0;            // depth of the deepest leaf; a lone root leaf has depth 0
  std::size_t alternate_trees = 0;  // Hoeffding adaptive tree: alternate subtrees growing now
  std::size_t memory_bytes = 0;     // as Classifier::MemoryBytes()
};

// Introspection of a tree learner (HoeffdingTreeClassifier, HoeffdingAdaptiveTreeClassifier),
// reachable from a Classifier with dynamic_cast. Same thread-safety as prediction: const, no
// shared mutable state.
class TreeModel {
 public:
  virtual ~TreeModel() = default;

  virtual TreeStats Stats() const = 0;
  // The whole tree as one JSON object: {"kind", "stats": {...}, "root": node}. A node has
  // "type" ("branch" or "leaf"), "depth", "weight" (weight seen below it), "stats" (class
  // weights by class index); a branch has "feature", "feature_index", "test" ("<=" with
  // "threshold", "==" with "value", "in" with "values") and "children" in branch order; a leaf
  // has "active" and "class" (its majority class). Adaptive trees add "error_rate",
  // "error_weight" and "alternate". Feature j is named feature_names[j] when given, else "f<j>".
  virtual std::string ToJson(std::span<const std::string> feature_names = {}) const = 0;
  // The tree as a Graphviz digraph (`dot -Tsvg`); alternate subtrees hang off dashed edges.
  virtual std::string ToDot(std::span<const std::string> feature_names = {}) const = 0;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_TREE_MODEL_H_
