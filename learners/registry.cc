#include "learners/registry.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "learners/hoeffding_adaptive_tree.h"
#include "learners/hoeffding_tree.h"
#include "learners/logistic_regression.h"

namespace riffle::learners {
namespace {

template <typename Options>
absl::Status ApplyOptions(const OptionList& list, Options* options) {
  for (const auto& [name, value] : list) {
    if (absl::Status s = options->Set(name, value); !s.ok()) return s;
  }
  return options->Validate();
}

}  // namespace

std::vector<std::string> LearnerKinds() {
  return {std::string(LogisticRegression::kKind), std::string(HoeffdingTreeClassifier::kKind),
          std::string(HoeffdingAdaptiveTreeClassifier::kKind)};
}

absl::StatusOr<std::unique_ptr<Classifier>> CreateClassifier(std::string_view kind,
                                                             const OptionList& options) {
  if (kind == LogisticRegression::kKind) {
    LogisticRegressionOptions o;
    if (absl::Status s = ApplyOptions(options, &o); !s.ok()) return s;
    return std::unique_ptr<Classifier>(std::make_unique<LogisticRegression>(o));
  }
  if (kind == HoeffdingTreeClassifier::kKind) {
    HoeffdingTreeOptions o;
    if (absl::Status s = ApplyOptions(options, &o); !s.ok()) return s;
    return std::unique_ptr<Classifier>(std::make_unique<HoeffdingTreeClassifier>(o));
  }
  if (kind == HoeffdingAdaptiveTreeClassifier::kKind) {
    HoeffdingAdaptiveTreeOptions o;
    if (absl::Status s = ApplyOptions(options, &o); !s.ok()) return s;
    return std::unique_ptr<Classifier>(std::make_unique<HoeffdingAdaptiveTreeClassifier>(o));
  }
  const std::vector<std::string> kinds = LearnerKinds();
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown learner '%s' (available: %s)", kind, absl::StrJoin(kinds, ", ")));
}

absl::StatusOr<std::unique_ptr<Classifier>> CreateEmptyClassifier(std::string_view kind) {
  return CreateClassifier(kind, {});
}

}  // namespace riffle::learners
