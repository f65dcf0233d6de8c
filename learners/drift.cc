#include "learners/drift.h"

#include <cereal/cereal.hpp>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "learners/adwin.h"
#include "learners/ddm.h"
#include "learners/page_hinkley.h"

namespace riffle::learners {
namespace {

template <typename Detector, typename Options>
absl::StatusOr<std::unique_ptr<DriftDetector>> Build(const OptionList& list) {
  Options options;
  for (const auto& [name, value] : list) {
    if (absl::Status s = options.Set(name, value); !s.ok()) return s;
  }
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<DriftDetector>(std::make_unique<Detector>(options));
}

}  // namespace

std::vector<std::string> DriftDetectorKinds() {
  return {std::string(Adwin::kKind), std::string(Ddm::kKind), std::string(PageHinkley::kKind)};
}

absl::StatusOr<std::unique_ptr<DriftDetector>> CreateDriftDetector(std::string_view kind,
                                                                   const OptionList& options) {
  if (kind == Adwin::kKind) return Build<Adwin, AdwinOptions>(options);
  if (kind == Ddm::kKind) return Build<Ddm, DdmOptions>(options);
  if (kind == PageHinkley::kKind) return Build<PageHinkley, PageHinkleyOptions>(options);
  return absl::InvalidArgumentError(absl::StrFormat("unknown drift detector '%s' (available: %s)",
                                                    kind,
                                                    absl::StrJoin(DriftDetectorKinds(), ", ")));
}

namespace drift_internal {

void CheckLoad(bool ok, std::string_view kind, std::string_view what) {
  if (!ok) throw cereal::Exception(absl::StrFormat("%s state: %s", kind, what));
}

void CheckLoadedOptions(const absl::Status& options_status, std::string_view kind) {
  if (!options_status.ok()) {
    throw cereal::Exception(absl::StrFormat("%s state: %s", kind, options_status.message()));
  }
}

void CheckVersion(std::uint32_t version, std::uint32_t expected, std::string_view kind) {
  if (version != expected) {
    throw cereal::Exception(absl::StrFormat("%s state version %d is not supported (expected %d)",
                                            kind, version, expected));
  }
}

}  // namespace drift_internal
}  // namespace riffle::learners
