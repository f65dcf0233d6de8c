#ifndef RIFFLE_LEARNERS_CLASSIFIER_H_
#define RIFFLE_LEARNERS_CLASSIFIER_H_

#include <cereal/archives/portable_binary.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "learners/feature_vector.h"

namespace riffle::learners {

// An online (incremental) classifier: it learns from one example at a time and predicts class
// probabilities for one example at a time.
//
// Classes are ClassIndex values 0..NumClasses()-1. A learner grows its set of classes when
// LearnOne() sees a new index (classes may appear mid-stream); it never forgets one.
//
// Thread-safety: PredictProbaOne() is const and touches no shared mutable state, so any number
// of threads may predict concurrently as long as no thread is inside LearnOne() or Load(). One
// writer per model (DESIGN.md) is enforced by the owner (the service's model registry), not
// here.
//
// Errors: learners trust their inputs (validated at the edge by features/ and service/); they
// debug-assert finite values and in-range indices. Load() throws cereal::Exception on malformed
// archives; checkpoints/ catches and converts to a Status.
class Classifier {
 public:
  virtual ~Classifier() = default;

  // The registered learner name, e.g. "logreg". Stable: checkpoints store it.
  virtual std::string_view Kind() const = 0;

  // Learns from one example with class `y` and sample weight `weight` (> 0, finite).
  virtual void LearnOne(const FeatureVector& x, ClassIndex y, double weight = 1.0) = 0;

  // Writes P(class k | x) for k in 0..NumClasses()-1 into *proba (resized; its capacity is
  // reused, so a caller-owned buffer makes this allocation-free). Before any class was seen
  // *proba is left empty. Probabilities are finite and sum to 1.
  virtual void PredictProbaOne(const FeatureVector& x, std::vector<double>* proba) const = 0;

  // Number of classes the model can predict: one past the largest class index learned so far.
  virtual std::size_t NumClasses() const = 0;

  // A deep copy with identical state, for consistent snapshots (a checkpoint is serialized
  // from a clone, off the writer's hot path).
  virtual std::unique_ptr<Classifier> Clone() const = 0;

  // Approximate heap bytes held by the model (weights, optimizer state, tree nodes).
  virtual std::size_t MemoryBytes() const = 0;

  // Concept drifts the learner detected and reacted to (the Hoeffding adaptive tree: alternate
  // subtrees started after ADWIN saw a node's error rise), part of its saved state. 0 for
  // learners without drift detection.
  virtual std::uint64_t DriftDetections() const { return 0; }

  // Complete state: hyperparameters, learned parameters, optimizer state, counters and RNG.
  // Save then Load into a fresh instance gives bit-identical predictions and continued
  // learning.
  virtual void Save(cereal::PortableBinaryOutputArchive& archive) const = 0;
  virtual void Load(cereal::PortableBinaryInputArchive& archive) = 0;
};

// Index of the largest probability; ties go to the smallest index (as River's max() over an
// ordered dict). Requires a non-empty span.
inline ClassIndex ArgMax(std::span<const double> proba) {
  ClassIndex best = 0;
  for (std::size_t k = 1; k < proba.size(); ++k) {
    if (proba[k] > proba[best]) best = static_cast<ClassIndex>(k);
  }
  return best;
}

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_CLASSIFIER_H_
