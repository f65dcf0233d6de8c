#include "service/prequential.h"

#include <cassert>

namespace riffle::service {

std::span<const double> PrequentialStep::Apply(checkpoints::ModelState* state,
                                               std::span<const std::string_view> fields) {
  assert(state->schema.has_value() && state->learner != nullptr);
  state->schema->Decode(fields, &example_);
  state->preprocessor.TransformForPredict(example_, &x_);
  state->learner->PredictProbaOne(x_, &proba_);
  ++state->counters.events;
  if (!example_.label.has_value()) {
    ++state->counters.unlabeled;
    return proba_;
  }
  const learners::ClassIndex y = *example_.label;
  ++state->counters.labeled;
  state->metrics.Update(y, proba_);
  state->preprocessor.LearnAndTransform(example_, &x_);
  state->learner->LearnOne(x_, y);
  return proba_;
}

}  // namespace riffle::service
