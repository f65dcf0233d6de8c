#ifndef RIFFLE_LEARNERS_DDM_H_
#define RIFFLE_LEARNERS_DDM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/drift.h"

namespace riffle::learners {

// Hyperparameters of Ddm, with River's defaults (river.drift.binary.DDM).
struct DdmOptions {
  // No warning or detection until more than this many updates since the last reset.
  std::uint64_t warm_start = 30;
  // Warning when p + s exceeds p_min + warning_threshold * s_min (finite, > 0; 2 is about 95%
  // confidence).
  double warning_threshold = 2.0;
  // Drift when p + s exceeds p_min + drift_threshold * s_min (finite, >= warning_threshold;
  // 3 is about 99% confidence).
  double drift_threshold = 3.0;

  // OK, or InvalidArgument naming the field and the rejected value.
  absl::Status Validate() const;

  // Sets one option from text by its field name above.
  absl::Status Set(std::string_view name, std::string_view value);
};

// DDM, the Drift Detection Method (Gama, Medas, Castillo & Rodrigues 2004, "Learning with
// drift detection", SBIA), on a stream of 0/1 errors (1: the model was wrong). After n updates
// since the last reset, p is the error rate and s = sqrt(p (1 - p) / n) its standard deviation.
// From n > warm_start on, the (p, s) with the smallest p + s so far is kept as (p_min, s_min),
// and the update is a
//   drift    if p + s > p_min + drift_threshold * s_min,
//   warning  else if p + s > p_min + warning_threshold * s_min.
// Only increases of the error rate are detected. The test runs at every update, so at River's
// defaults a long stationary stream does raise false drifts: about a quarter of 100,000-update
// Bernoulli(0.3) streams do, mostly early, when p_min + s_min comes from few updates (a longer
// warm_start and drift_threshold 4 bring that to 0.5%; tests/learners/ddm_test.cc).
//
// Matches River's DDM update for update (same arithmetic, same reset of all statistics on the
// update after a detection).
//
// Thread-safety, ownership and errors: see DriftDetector. O(1) memory and time per update.
class Ddm final : public DriftDetector {
 public:
  // InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<Ddm>> Create(const DdmOptions& options);

  // Options must be valid (checked in debug builds).
  explicit Ddm(const DdmOptions& options = {});

  static constexpr std::string_view kKind = "ddm";
  std::string_view Kind() const override { return kKind; }

  // x is 1 for an error and 0 for a correct prediction (debug-asserted).
  void Update(double x) override;
  bool drift_detected() const override { return drift_detected_; }
  bool warning_detected() const override { return warning_detected_; }
  void Reset() override;
  std::unique_ptr<DriftDetector> Clone() const override { return std::make_unique<Ddm>(*this); }
  std::size_t MemoryBytes() const override { return sizeof(*this); }
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  const DdmOptions& options() const { return options_; }
  // Updates since the last reset, and their error rate p.
  std::uint64_t count() const { return count_; }
  double error_rate() const { return error_rate_; }
  // p_min + s_min; +infinity until the warm start is over.
  double min_rate_plus_deviation() const { return ps_min_; }

 private:
  void ClearStatistics();

  DdmOptions options_;
  std::uint64_t count_ = 0;
  double error_rate_ = 0.0;
  double p_min_ = 0.0;
  double s_min_ = 0.0;
  double ps_min_ = 0.0;
  bool drift_detected_ = false;
  bool warning_detected_ = false;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_DDM_H_
