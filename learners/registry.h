#ifndef RIFFLE_LEARNERS_REGISTRY_H_
#define RIFFLE_LEARNERS_REGISTRY_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "learners/classifier.h"

namespace riffle::learners {

// (name, value) hyperparameters as text, in the order given (later ones win).
using OptionList = std::vector<std::pair<std::string, std::string>>;

// The learner kinds that CreateClassifier() accepts, e.g. {"logreg"}.
std::vector<std::string> LearnerKinds();

// Builds a learner of `kind` from textual options. InvalidArgument names the unknown kind,
// the unknown option or the invalid value.
absl::StatusOr<std::unique_ptr<Classifier>> CreateClassifier(std::string_view kind,
                                                             const OptionList& options);

// A fresh learner of `kind` with default options, ready for Classifier::Load().
absl::StatusOr<std::unique_ptr<Classifier>> CreateEmptyClassifier(std::string_view kind);

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_REGISTRY_H_
