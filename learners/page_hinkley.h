#ifndef RIFFLE_LEARNERS_PAGE_HINKLEY_H_
#define RIFFLE_LEARNERS_PAGE_HINKLEY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/drift.h"

namespace riffle::learners {

// Which changes of the mean PageHinkley reports.
enum class PageHinkleyMode { kUp, kDown, kBoth };

// Hyperparameters of PageHinkley, with River's defaults (river.drift.PageHinkley).
struct PageHinkleyOptions {
  // No detection before this many updates since the last reset.
  std::uint64_t min_instances = 30;
  // Magnitude of change tolerated (finite, >= 0): each cumulative sum drifts by delta per
  // update against the change it watches for.
  double delta = 0.005;
  // Detection threshold lambda (finite, > 0) on the distance of a cumulative sum from its
  // extreme.
  double threshold = 50.0;
  // Forgetting factor of the cumulative sums, in (0, 1]; 1 forgets nothing.
  double alpha = 1.0 - 0.0001;
  // kUp detects increases of the mean, kDown decreases, kBoth either.
  PageHinkleyMode mode = PageHinkleyMode::kBoth;

  // OK, or InvalidArgument naming the field and the rejected value.
  absl::Status Validate() const;

  // Sets one option from text by its field name above (mode=up|down|both).
  absl::Status Set(std::string_view name, std::string_view value);
};

// The Page-Hinkley test (Page 1954, "Continuous inspection schemes", Biometrika), a CUSUM
// chart on the deviations of the stream from its running mean, with River's fading factor
// (Sebastião & Fernandes 2017). After update t, with mean_t the running mean of x_1..x_t,
//   S+_t = alpha S+_{t-1} + (x_t - mean_t) - delta,  m+_t = min(m+_{t-1}, S+_t),
//   S-_t = alpha S-_{t-1} + (x_t - mean_t) + delta,  M-_t = max(M-_{t-1}, S-_t),
// an increase is detected when S+_t - m+_t > threshold, a decrease when M-_t - S-_t >
// threshold (only from t >= min_instances). No warning zone.
//
// delta and threshold are in the units of the stream, and there is no confidence parameter:
// set them for the data's scale. River's defaults are noisy on 0/1 data: with alpha < 1 the
// sums fluctuate with a standard deviation of about sd(x) / sqrt(1 - alpha^2), 32 for
// Bernoulli(0.3) draws, so threshold 50 fires about 8 times per 100,000 stationary updates.
// With alpha = 1 and delta = 0.05 the chance of one false alarm in 100,000 such updates is
// below 2e-5 (see tests/learners/page_hinkley_test.cc for both figures).
//
// Matches River's PageHinkley update for update, including its reset of all statistics on the
// update after a detection and its start value of -1 (not -infinity) for M-, which is harmless:
// the first deviation is 0, so S-_1 = delta >= 0 replaces it at once.
//
// Thread-safety, ownership and errors: see DriftDetector. O(1) memory and time per update.
class PageHinkley final : public DriftDetector {
 public:
  // InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<PageHinkley>> Create(const PageHinkleyOptions& options);

  // Options must be valid (checked in debug builds).
  explicit PageHinkley(const PageHinkleyOptions& options = {});

  static constexpr std::string_view kKind = "page_hinkley";
  std::string_view Kind() const override { return kKind; }

  // x must be finite.
  void Update(double x) override;
  bool drift_detected() const override { return drift_detected_; }
  bool warning_detected() const override { return false; }
  void Reset() override;
  std::unique_ptr<DriftDetector> Clone() const override {
    return std::make_unique<PageHinkley>(*this);
  }
  std::size_t MemoryBytes() const override { return sizeof(*this); }
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  const PageHinkleyOptions& options() const { return options_; }
  // Updates since the last reset, and their running mean.
  std::uint64_t count() const { return count_; }
  double mean() const { return mean_; }
  // The two test statistics after the last update: S+ - m+ and M- - S-.
  double increase_statistic() const { return sum_increase_ - min_increase_; }
  double decrease_statistic() const { return max_decrease_ - sum_decrease_; }

 private:
  void ClearStatistics();

  PageHinkleyOptions options_;
  std::uint64_t count_ = 0;
  double mean_ = 0.0;
  double sum_increase_ = 0.0;
  double sum_decrease_ = 0.0;
  double min_increase_ = 0.0;
  double max_decrease_ = 0.0;
  bool drift_detected_ = false;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_PAGE_HINKLEY_H_
