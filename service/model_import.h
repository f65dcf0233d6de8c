#ifndef RIFFLE_SERVICE_MODEL_IMPORT_H_
#define RIFFLE_SERVICE_MODEL_IMPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "checkpoints/model_checkpoint.h"

namespace riffle::service {

// Offline training, then serving: turns the state of a standalone checkpoint file into a
// served model named `name`.
//   - A `riffle eval --save-checkpoint` model (tabular schema): the served model keeps the
//     learner, metrics and counters; its spec is the learner with the eval's options, the
//     schema's classes fixed in their order, nominal columns declared categorical and dropped
//     columns dropped, every other feature passing through; its pipeline continues the eval's
//     vocabulary and scaler statistics. An event with the CSV row's values (numbers for numeric
//     columns, texts for nominal ones) is predicted as `riffle eval` would have (up to the last
//     bits: the two sum the features in different orders).
//   - A served model's checkpoint: taken as is, renamed.
// Version 1, generation 0; the caller writes it into the model's store. InvalidArgument if the
// state has neither a schema nor a pipeline (a model that saw no data has nothing to serve).
absl::StatusOr<checkpoints::ModelState> ServableFromCheckpoint(checkpoints::ModelState state,
                                                               const std::string& name);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_MODEL_IMPORT_H_
