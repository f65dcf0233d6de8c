#include "service/prequential.h"

#include <cassert>

namespace riffle::service {

std::span<const double> PrequentialStep::Apply(checkpoints::ModelState* state,
                                               std::span<const std::string_view> fields,
                                               std::span<const double> numbers) {
  assert(state->schema.has_value() && state->learner != nullptr);
  state->schema->Decode(fields, &example_, numbers);
  state->preprocessor.TransformForPredict(example_, &x_);
  state->learner->PredictProbaOne(x_, &proba_);
  ++state->counters.events;
  if (!example_.label.has_value()) {
    ++state->counters.unlabeled;
    return proba_;
  }
  const learners::ClassIndex y = *example_.label;
  ++state->counters.labeled;
  // Learning does not read the metrics, so they are updated after it: the prefetch lets the
  // ROC AUC bins' cache misses overlap with learning.
  state->metrics.PrefetchForUpdate(y, proba_);
  state->preprocessor.LearnAndRetransform(example_, &x_);
  state->learner->LearnOne(x_, y);
  state->metrics.Update(y, proba_);
  return proba_;
}

std::span<const double> PrequentialStep::ApplyLabeledEvent(
    checkpoints::ModelState* state, std::span<const features::NamedFeature> features,
    learners::ClassIndex y, double weight, bool score) {
  assert(state->pipeline.has_value() && state->learner != nullptr);
  features::Pipeline& pipeline = *state->pipeline;
  // Errors were ruled out by Pipeline::Validate; a failure here is a bug, not bad input.
  proba_.clear();
  if (score) {
    [[maybe_unused]] absl::Status s =
        pipeline.TransformForPredict(features, &x_, &pipeline_scratch_);
    assert(s.ok());
    state->learner->PredictProbaOne(x_, &proba_);
    state->metrics.PrefetchForUpdate(y, proba_, weight);  // updated after learning, as in Apply
  }
  ++state->counters.events;
  ++state->counters.labeled;
  [[maybe_unused]] absl::Status s = pipeline.LearnAndTransform(features, &x_, &pipeline_scratch_);
  assert(s.ok());
  state->learner->LearnOne(x_, y, weight);
  if (score) state->metrics.Update(y, proba_, weight);
  return proba_;
}

std::span<const double> PrequentialStep::ApplyUnlabeledEvent(
    checkpoints::ModelState* state, std::span<const features::NamedFeature> features) {
  assert(state->pipeline.has_value() && state->learner != nullptr);
  [[maybe_unused]] absl::Status s =
      state->pipeline->TransformForPredict(features, &x_, &pipeline_scratch_);
  assert(s.ok());
  state->learner->PredictProbaOne(x_, &proba_);
  ++state->counters.events;
  ++state->counters.unlabeled;
  return proba_;
}

}  // namespace riffle::service
