#include "learners/ddm.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "learners/option_parsing.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

// Version of the serialized Ddm state. Bump it, and keep a loader for the old layout, whenever
// Save() changes.
constexpr std::uint32_t kStateVersion = 1;

}  // namespace

absl::Status DdmOptions::Validate() const {
  if (absl::Status s = RequireFinitePositive("warning_threshold", warning_threshold); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireFinitePositive("drift_threshold", drift_threshold); !s.ok()) {
    return s;
  }
  // River accepts a warning threshold above the drift threshold, but then a warning can never
  // be raised (a drift clears it): surely a mistake.
  if (warning_threshold > drift_threshold) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "option 'warning_threshold' (%g) must not exceed option 'drift_threshold' (%g)",
        warning_threshold, drift_threshold));
  }
  return absl::OkStatus();
}

absl::Status DdmOptions::Set(std::string_view name, std::string_view value) {
  if (name == "warm_start") return ParseUint64Option(name, value, &warm_start);
  if (name == "warning_threshold") return ParseDoubleOption(name, value, &warning_threshold);
  if (name == "drift_threshold") return ParseDoubleOption(name, value, &drift_threshold);
  return UnknownOptionError(Ddm::kKind, name);
}

absl::StatusOr<std::unique_ptr<Ddm>> Ddm::Create(const DdmOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<Ddm>(options);
}

Ddm::Ddm(const DdmOptions& options) : options_(options) {
  assert(options.Validate().ok());
  ClearStatistics();
}

void Ddm::Reset() {
  ClearStatistics();
  drift_detected_ = false;
  warning_detected_ = false;
}

void Ddm::ClearStatistics() {
  count_ = 0;
  error_rate_ = 0.0;
  p_min_ = 0.0;
  s_min_ = 0.0;
  ps_min_ = std::numeric_limits<double>::infinity();
}

void Ddm::Update(double x) {
  assert(x == 0.0 || x == 1.0);
  if (drift_detected_) Reset();
  // River's stats.Mean, in its operation order.
  ++count_;
  const double n = static_cast<double>(count_);
  error_rate_ += (1.0 / n) * (x - error_rate_);
  const double p = error_rate_;
  const double s = std::sqrt(p * (1.0 - p) / n);
  if (count_ <= options_.warm_start) return;
  if (p + s <= ps_min_) {
    p_min_ = p;
    s_min_ = s;
    ps_min_ = p_min_ + s_min_;
  }
  warning_detected_ = p + s > p_min_ + options_.warning_threshold * s_min_;
  if (p + s > p_min_ + options_.drift_threshold * s_min_) {
    drift_detected_ = true;
    warning_detected_ = false;
  }
}

void Ddm::Save(cereal::PortableBinaryOutputArchive& archive) const {
  const DdmOptions& o = options_;
  archive(kStateVersion);
  archive(o.warm_start, o.warning_threshold, o.drift_threshold);
  archive(count_, error_rate_, p_min_, s_min_, ps_min_);
  SaveBool(archive, drift_detected_);
  SaveBool(archive, warning_detected_);
}

void Ddm::Load(cereal::PortableBinaryInputArchive& archive) {
  std::uint32_t version = 0;
  archive(version);
  drift_internal::CheckVersion(version, kStateVersion, kKind);
  DdmOptions o;
  archive(o.warm_start, o.warning_threshold, o.drift_threshold);
  drift_internal::CheckLoadedOptions(o.Validate(), kKind);

  Ddm loaded(o);
  archive(loaded.count_, loaded.error_rate_, loaded.p_min_, loaded.s_min_, loaded.ps_min_);
  loaded.drift_detected_ = LoadBool(archive);
  loaded.warning_detected_ = LoadBool(archive);
  drift_internal::CheckLoad(loaded.error_rate_ >= 0.0 && loaded.error_rate_ <= 1.0 &&
                                std::isfinite(loaded.p_min_) && std::isfinite(loaded.s_min_) &&
                                !std::isnan(loaded.ps_min_),
                            kKind, "statistics out of range");
  *this = std::move(loaded);
}

}  // namespace riffle::learners
