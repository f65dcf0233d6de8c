#ifndef RIFFLE_SERVICE_PREQUENTIAL_H_
#define RIFFLE_SERVICE_PREQUENTIAL_H_

#include <span>
#include <string_view>
#include <vector>

#include "checkpoints/model_checkpoint.h"
#include "features/pipeline.h"
#include "features/tabular.h"
#include "learners/feature_vector.h"

namespace riffle::service {

// Applies records to a model with prequential (test-then-train) semantics, as River's
// progressive_val_score: decode; predict with the model as it is (scaler statistics of earlier
// records only); if labeled, update the scaler and learn, then update the metrics with the
// prediction made before learning (learning does not read them; updating them last lets the
// ROC AUC bins, prefetched after the prediction, arrive meanwhile). One place for this order,
// used by `riffle eval` (tabular records) and by the service (events with named features, gRPC
// Learn and the Kafka path).
//
// Holds only scratch buffers (reused, so a step does not allocate once warm). The caller is the
// model's single writer; not thread-safe.
class PrequentialStep {
 public:
  // Requires state->schema and state->learner. Returns the probabilities predicted for the
  // record (valid until the next call). `numbers`: the fields parsed already, as
  // TabularSchema::Decode takes them (empty: parsed here).
  std::span<const double> Apply(checkpoints::ModelState* state,
                                std::span<const std::string_view> fields,
                                std::span<const double> numbers = {});

  // One event of a served model: requires state->pipeline and state->learner, features that
  // passed Pipeline::Validate and y = state->pipeline->EncodeLabel(label). With `score`,
  // predicts first and updates the metrics (test-then-train); without, only learns. Counts the
  // event as labeled either way. Returns the probabilities predicted before learning (empty
  // without `score`; valid until the next call).
  std::span<const double> ApplyLabeledEvent(checkpoints::ModelState* state,
                                            std::span<const features::NamedFeature> features,
                                            learners::ClassIndex y, double weight, bool score);

  // An unlabeled event of a served model (features that passed Pipeline::Validate): predicts
  // and counts it. Returns the probabilities (valid until the next call).
  std::span<const double> ApplyUnlabeledEvent(checkpoints::ModelState* state,
                                              std::span<const features::NamedFeature> features);

 private:
  features::TabularExample example_;
  features::PipelineScratch pipeline_scratch_;
  learners::FeatureVector x_;
  std::vector<double> proba_;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_PREQUENTIAL_H_
