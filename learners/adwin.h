#ifndef RIFFLE_LEARNERS_ADWIN_H_
#define RIFFLE_LEARNERS_ADWIN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/drift.h"

namespace riffle::learners {

// Largest accepted AdwinOptions::max_buckets. River has no limit; this one bounds what a
// corrupted checkpoint can make Load() allocate (a row holds max_buckets + 1 summaries of
// 16 bytes) and keeps a detector per tree node small.
inline constexpr std::uint64_t kMaxAdwinBuckets = 1024;

// Hyperparameters of Adwin, with River's defaults (river.drift.ADWIN).
struct AdwinOptions {
  // Confidence of the cut test, in (0, 1): the probability of a false cut at one check is
  // bounded by about delta. Smaller means fewer false alarms and slower detection.
  double delta = 0.002;
  // Check for a change every `clock` updates (>= 1). 1 checks after every update; larger
  // values are cheaper but delay detection by up to clock - 1 updates.
  std::uint64_t clock = 32;
  // Summaries of each size kept before the two oldest are merged, in [1, kMaxAdwinBuckets]
  // (ADWIN2's M). Larger means finer cut points and more memory. (River 0.26 panics with 1.)
  std::uint64_t max_buckets = 5;
  // Smallest length of each of the two sub-windows a cut may leave (>= 1; River also accepts
  // 0, where a cut could leave an empty sub-window).
  std::uint64_t min_window_length = 5;
  // No check is made while the window holds at most this many elements.
  std::uint64_t grace_period = 10;

  // OK, or InvalidArgument naming the field and the rejected value.
  absl::Status Validate() const;

  // Sets one option from text by its field name above.
  absl::Status Set(std::string_view name, std::string_view value);
};

// ADWIN (ADaptive WINdowing; Bifet & Gavaldà 2007, "Learning from time-changing data with
// adaptive windowing", SDM), in its ADWIN2 form: the window is kept as an exponential
// histogram, and it is cut whenever two sub-windows have means that differ by more than a
// Hoeffding-style bound. This is the change detector and error estimator at every node of a
// Hoeffding adaptive tree (Bifet & Gavaldà 2009).
//
// Window. Row r of the histogram holds up to max_buckets summaries (sum and sum of squared
// deviations) of 2^r consecutive elements each, oldest first. A new element enters row 0;
// when a row reaches max_buckets + 1 summaries its two oldest are merged into one summary of
// the next row. A window of W elements thus takes O(max_buckets * log W) memory, and adding an
// element costs amortized O(1) (merges cascade with geometrically decreasing frequency). The
// cut test below costs O(max_buckets * log W) and runs once every `clock` updates.
//
// Cut test. Every `clock` updates, once the window has more than grace_period elements, every
// boundary between summaries splits the window into an older W0 (n0 elements, mean mu0) and a
// newer W1 (n1, mu1). With W the window width, var its population variance and
//   delta' = ln(2 ln(W) / delta),  1/m = 1/(n0 - min_window_length + 1)
//                                      + 1/(n1 - min_window_length + 1),
//   epsilon = sqrt(2 (1/m) var delta') + (2/3) delta' (1/m),
// the window is cut when n0, n1 >= min_window_length and |mu0 - mu1| > epsilon: the oldest
// summary is dropped and all boundaries are tested again, until none cuts. This is the
// variance-based epsilon_cut of the paper's Section 4 (whose ln(2 / (delta / ln W)) is the
// delta' above), with n0 and n1 reduced by min_window_length - 1 as River does. It is computed
// in River's arithmetic order, so detections match River's ADWIN index for index and the
// window statistics bit for bit.
//
// River semantics kept: the check runs when the update count since the last reset is a
// multiple of `clock`; after an update that detected a drift the next Update() first empties
// the window (River's ADWIN resets itself then), so width() is 1 after it. Deliberate
// difference: n_detections() counts every detection since construction or Reset(); River's
// counter lives in the state it resets, so it never exceeds 1 there.
//
// Thread-safety, ownership and errors: see DriftDetector. The detector owns its histogram
// (two small vectors) and is copyable; a tree node can hold one by value.
class Adwin final : public DriftDetector {
 public:
  // InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<Adwin>> Create(const AdwinOptions& options);

  // Options must be valid (checked in debug builds).
  explicit Adwin(const AdwinOptions& options = {});

  static constexpr std::string_view kKind = "adwin";
  std::string_view Kind() const override { return kKind; }

  // Adds x (finite) to the window and, on a clock tick, cuts it while a cut is significant.
  void Update(double x) override;
  bool drift_detected() const override { return drift_detected_; }
  bool warning_detected() const override { return false; }
  // Empties the window and zeroes n_detections().
  void Reset() override;
  std::unique_ptr<DriftDetector> Clone() const override { return std::make_unique<Adwin>(*this); }
  std::size_t MemoryBytes() const override;
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  const AdwinOptions& options() const { return options_; }
  // Number of elements in the window.
  std::uint64_t width() const { return width_; }
  // Sum of the elements in the window.
  double total() const { return total_; }
  // Mean of the window; 0 when it is empty.
  double estimation() const;
  // Population variance of the window (sum_squared_deviations() / width(), River's
  // variance_in_window); 0 when it is empty.
  double variance() const;
  // Sum of squared deviations from the window's mean: what River's ADWIN.variance returns.
  double sum_squared_deviations() const { return variance_sum_; }
  // Drifts detected since construction or Reset().
  std::uint64_t n_detections() const { return n_detections_; }
  // Summaries held by the histogram, and its rows: O(max_buckets * log width()).
  std::size_t NumBuckets() const;
  std::size_t NumRows() const { return rows_.size(); }

 private:
  // A summary of 2^r consecutive elements (r its row): their sum and the sum of their squared
  // deviations from their mean.
  struct Bucket {
    double total = 0.0;
    double variance = 0.0;
  };
  // Row r is a ring buffer in buckets_[r * capacity, (r + 1) * capacity), capacity =
  // max_buckets + 1: `size` summaries, the oldest at slot `head`.
  struct Row {
    std::uint32_t head = 0;
    std::uint32_t size = 0;
  };

  std::size_t RowCapacity() const { return static_cast<std::size_t>(options_.max_buckets) + 1; }
  // The k-th oldest summary of row r.
  const Bucket& At(std::size_t r, std::size_t k) const;
  void PushNewest(std::size_t r, const Bucket& bucket);
  void PopOldest(std::size_t r, std::uint32_t count);
  void AppendRow();
  void ClearWindow();
  // Adds one element: updates width, total and variance, then merges overflowing rows.
  void Insert(double x);
  // Cuts the window while some split is significant; true if it cut at least once.
  bool DetectChange();
  // Drops the oldest summary (the first of the last row) and its share of the statistics.
  void DeleteOldest();

  AdwinOptions options_;
  std::uint64_t width_ = 0;
  double total_ = 0.0;
  // Sum of squared deviations from the window's mean (River's `variance`).
  double variance_sum_ = 0.0;
  // Updates since the last check, in [0, clock).
  std::uint64_t tick_ = 0;
  std::uint64_t n_detections_ = 0;
  bool drift_detected_ = false;
  std::vector<Row> rows_;
  std::vector<Bucket> buckets_;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_ADWIN_H_
