#include "learners/page_hinkley.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "learners/option_parsing.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

// Version of the serialized PageHinkley state. Bump it, and keep a loader for the old layout,
// whenever Save() changes.
constexpr std::uint32_t kStateVersion = 1;

}  // namespace

absl::Status PageHinkleyOptions::Validate() const {
  if (absl::Status s = RequireFiniteNonNegative("delta", delta); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireFinitePositive("threshold", threshold); !s.ok()) {
    return s;
  }
  if (!(alpha > 0.0 && alpha <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option 'alpha' must be in (0, 1], got %g", alpha));
  }
  return absl::OkStatus();
}

absl::Status PageHinkleyOptions::Set(std::string_view name, std::string_view value) {
  if (name == "min_instances") return ParseUint64Option(name, value, &min_instances);
  if (name == "delta") return ParseDoubleOption(name, value, &delta);
  if (name == "threshold") return ParseDoubleOption(name, value, &threshold);
  if (name == "alpha") return ParseDoubleOption(name, value, &alpha);
  if (name == "mode") {
    return ParseEnumOption<PageHinkleyMode>(name, value,
                                            {{"up", PageHinkleyMode::kUp},
                                             {"down", PageHinkleyMode::kDown},
                                             {"both", PageHinkleyMode::kBoth}},
                                            &mode);
  }
  return UnknownOptionError(PageHinkley::kKind, name);
}

absl::StatusOr<std::unique_ptr<PageHinkley>> PageHinkley::Create(
    const PageHinkleyOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<PageHinkley>(options);
}

PageHinkley::PageHinkley(const PageHinkleyOptions& options) : options_(options) {
  assert(options.Validate().ok());
  ClearStatistics();
}

void PageHinkley::Reset() {
  ClearStatistics();
  drift_detected_ = false;
}

void PageHinkley::ClearStatistics() {
  count_ = 0;
  mean_ = 0.0;
  sum_increase_ = 0.0;
  sum_decrease_ = 0.0;
  min_increase_ = std::numeric_limits<double>::infinity();
  // River's start value; S-_1 = delta >= 0 replaces it on the first update.
  max_decrease_ = -1.0;
}

void PageHinkley::Update(double x) {
  assert(std::isfinite(x));
  if (drift_detected_) Reset();
  // River's stats.Mean: mean += (w / n) * (x - mean) with w = 1, in that order.
  ++count_;
  mean_ += (1.0 / static_cast<double>(count_)) * (x - mean_);
  const double deviation = x - mean_;
  sum_increase_ = options_.alpha * sum_increase_ + deviation - options_.delta;
  sum_decrease_ = options_.alpha * sum_decrease_ + deviation + options_.delta;
  if (sum_increase_ < min_increase_) min_increase_ = sum_increase_;
  if (sum_decrease_ > max_decrease_) max_decrease_ = sum_decrease_;
  if (count_ >= options_.min_instances) {
    const bool up = increase_statistic() > options_.threshold;
    const bool down = decrease_statistic() > options_.threshold;
    switch (options_.mode) {
      case PageHinkleyMode::kUp:
        drift_detected_ = up;
        break;
      case PageHinkleyMode::kDown:
        drift_detected_ = down;
        break;
      case PageHinkleyMode::kBoth:
        drift_detected_ = up || down;
        break;
    }
  }
}

void PageHinkley::Save(cereal::PortableBinaryOutputArchive& archive) const {
  const PageHinkleyOptions& o = options_;
  archive(kStateVersion);
  archive(o.min_instances, o.delta, o.threshold, o.alpha, static_cast<std::uint8_t>(o.mode));
  archive(count_, mean_, sum_increase_, sum_decrease_, min_increase_, max_decrease_);
  SaveBool(archive, drift_detected_);
}

void PageHinkley::Load(cereal::PortableBinaryInputArchive& archive) {
  using drift_internal::CheckLoad;
  std::uint32_t version = 0;
  archive(version);
  drift_internal::CheckVersion(version, kStateVersion, kKind);
  PageHinkleyOptions o;
  std::uint8_t mode = 0;
  archive(o.min_instances, o.delta, o.threshold, o.alpha, mode);
  CheckLoad(mode <= static_cast<std::uint8_t>(PageHinkleyMode::kBoth), kKind, "unknown mode value");
  o.mode = static_cast<PageHinkleyMode>(mode);
  drift_internal::CheckLoadedOptions(o.Validate(), kKind);

  PageHinkley loaded(o);
  archive(loaded.count_, loaded.mean_, loaded.sum_increase_, loaded.sum_decrease_,
          loaded.min_increase_, loaded.max_decrease_);
  loaded.drift_detected_ = LoadBool(archive);
  // The extremes are +infinity / -1 before the first update, finite after it.
  CheckLoad(std::isfinite(loaded.mean_) && std::isfinite(loaded.sum_increase_) &&
                std::isfinite(loaded.sum_decrease_) && !std::isnan(loaded.min_increase_) &&
                std::isfinite(loaded.max_decrease_),
            kKind, "non-finite statistics");
  *this = std::move(loaded);
}

}  // namespace riffle::learners
