#include "learners/metrics.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>

#include "absl/strings/str_cat.h"
#include "learners/classifier.h"

namespace riffle::learners {
namespace {

// River's clamp_proba bounds.
constexpr double kMinProba = 1e-15;
constexpr double kMaxProba = 1.0 - 1e-15;

bool IsValidWeight(double weight) { return std::isfinite(weight) && weight > 0.0; }

// Takes one example of weight `weight` out of a running (sum, count) pair. The sum restarts
// from exactly 0 when its count does, so rounding residue cannot outlive the examples that
// caused it; in between it is clamped at 0 (a sum of positive weights is never negative, only
// its rounding can be).
void Subtract(double weight, double* sum, std::uint64_t* count) {
  assert(*count > 0);
  --*count;
  *sum = *count == 0 ? 0.0 : std::max(0.0, *sum - weight);
}

// num / den clamped to [0, 1] (rounding residue could push a ratio of sums just past 1); 0 when
// the denominator is 0, as River does on ZeroDivisionError.
double Ratio(double num, double den) { return den > 0.0 ? std::clamp(num / den, 0.0, 1.0) : 0.0; }

double HarmonicMean(double p, double r) { return p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0; }

bool AllFiniteNonNegative(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(),
                     [](double v) { return std::isfinite(v) && v >= 0.0; });
}

}  // namespace

namespace metrics_internal {

void CheckVersion(std::uint32_t version, std::string_view type) {
  if (version != 1) {
    throw cereal::Exception(
        absl::StrCat(std::string(type), ": unsupported archive version ", version));
  }
}

void CheckLoad(bool ok, std::string_view message) {
  if (!ok) throw cereal::Exception(std::string(message));
}

std::vector<std::uint32_t> NonZeroEntries(const std::vector<double>& values) {
  std::vector<std::uint32_t> nonzero;
  for (std::size_t i = 0; i < values.size(); ++i) {
    // By bit pattern, so that a -0.0 entry is written and the round trip is bit-exact.
    if (std::bit_cast<std::uint64_t>(values[i]) != 0) {
      nonzero.push_back(static_cast<std::uint32_t>(i));
    }
  }
  return nonzero;
}

void FenwickToBins(std::vector<double>* tree) {
  // Going down from the last node, each node minus the nodes it covers below it (read before
  // they are themselves turned into bins) is the weight of its own bin.
  std::vector<double>& t = *tree;
  for (std::size_t node = t.size(); node > 0; --node) {
    const std::size_t stop = node & (node - 1);
    for (std::size_t j = node - 1; j > stop; j &= j - 1) t[node - 1] -= t[j - 1];
  }
}

}  // namespace metrics_internal

// ---------------------------------------------------------------------------------------------
// MetricsOptions, ScoredExample

absl::Status MetricsOptions::Validate() const {
  if (window < 1 || window > kMaxMetricsWindow) {
    return absl::InvalidArgumentError(absl::StrCat("MetricsOptions.window must be in [1, ",
                                                   kMaxMetricsWindow, "], got ", window));
  }
  return absl::OkStatus();
}

namespace {

// What of a scored example ROC AUC uses (ScoredExample::score and ::binary), for ScoreExample
// and PrequentialMetrics::PrefetchForUpdate.
struct RocAucInput {
  double score;
  bool binary;
};
RocAucInput RocAucInputOf(ClassIndex y_true, std::span<const double> proba) {
  return {.score = proba.size() >= 2 ? proba[1] : 0.0, .binary = y_true < 2 && proba.size() <= 2};
}

}  // namespace

ScoredExample ScoreExample(ClassIndex y_true, std::span<const double> proba, double weight) {
  assert(!proba.empty());
  assert(IsValidWeight(weight));
  const RocAucInput roc = RocAucInputOf(y_true, proba);
  ScoredExample example;
  example.y_true = y_true;
  example.y_pred = ArgMax(proba);
  example.p_true = y_true < proba.size() ? proba[y_true] : 0.0;
  example.score = roc.score;
  example.weight = weight;
  example.binary = roc.binary;
  return example;
}

double ExampleLogLoss(double p_true) { return -std::log(std::clamp(p_true, kMinProba, kMaxProba)); }

namespace {

// Asks the CPU to fetch the cache line holding `p`. Not __builtin_prefetch alone: GCC counts it
// as free of side effects, so a function that only prefetches is found pure and its calls are
// deleted (the first version of BinaryRocAuc::Prefetch compiled to nothing). A read prefetch:
// x86-64's baseline has no write prefetch, and a line no other core holds arrives exclusive,
// ready for the store.
inline void PrefetchLine(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, /*rw=*/0);  // may be dropped as described; only a lost speed-up
#endif
}

[[maybe_unused]] bool SameBits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ConfusionMatrix

void ConfusionMatrix::Grow(std::size_t num_classes) {
  assert(num_classes > num_classes_);
  std::vector<double> weights(num_classes * num_classes, 0.0);
  std::vector<std::uint64_t> counts(num_classes * num_classes, 0);
  for (std::size_t t = 0; t < num_classes_; ++t) {
    std::copy_n(weights_.begin() + t * num_classes_, num_classes_,
                weights.begin() + t * num_classes);
    std::copy_n(counts_.begin() + t * num_classes_, num_classes_, counts.begin() + t * num_classes);
  }
  weights_ = std::move(weights);
  counts_ = std::move(counts);
  row_weights_.resize(num_classes, 0.0);
  col_weights_.resize(num_classes, 0.0);
  row_counts_.resize(num_classes, 0);
  col_counts_.resize(num_classes, 0);
  num_classes_ = num_classes;
}

void ConfusionMatrix::Add(ClassIndex y_true, ClassIndex y_pred, double weight) {
  assert(IsValidWeight(weight));
  const std::size_t needed = std::size_t{std::max(y_true, y_pred)} + 1;
  if (needed > num_classes_) Grow(needed);
  const std::size_t cell = Cell(y_true, y_pred);
  weights_[cell] += weight;
  ++counts_[cell];
  row_weights_[y_true] += weight;
  ++row_counts_[y_true];
  col_weights_[y_pred] += weight;
  ++col_counts_[y_pred];
  total_weight_ += weight;
  ++total_count_;
  // Without a branch on whether the prediction was right, which a predictor cannot learn
  // (neither here nor in Remove, whose example is the window's oldest). Adding +0.0 changes no
  // sum: they are never -0.0.
  const bool correct = y_true == y_pred;
  correct_weight_ += weight * static_cast<double>(correct);
  correct_count_ += correct;
}

void ConfusionMatrix::Remove(ClassIndex y_true, ClassIndex y_pred, double weight) {
  assert(IsValidWeight(weight));
  assert(y_true < num_classes_ && y_pred < num_classes_);
  const std::size_t cell = Cell(y_true, y_pred);
  Subtract(weight, &weights_[cell], &counts_[cell]);
  Subtract(weight, &row_weights_[y_true], &row_counts_[y_true]);
  Subtract(weight, &col_weights_[y_pred], &col_counts_[y_pred]);
  Subtract(weight, &total_weight_, &total_count_);
  // As Subtract when the prediction was right, and no change when it was not (see Add): a
  // count of 0 has a sum of 0, and subtracting +0.0 from a sum >= 0 gives it back.
  const bool correct = y_true == y_pred;
  assert(correct_count_ >= static_cast<std::uint64_t>(correct));
  correct_count_ -= correct;
  correct_weight_ = correct_count_ == 0
                        ? 0.0
                        : std::max(0.0, correct_weight_ - weight * static_cast<double>(correct));
}

double ConfusionMatrix::Weight(ClassIndex y_true, ClassIndex y_pred) const {
  if (y_true >= num_classes_ || y_pred >= num_classes_) return 0.0;
  return weights_[Cell(y_true, y_pred)];
}

std::uint64_t ConfusionMatrix::Count(ClassIndex y_true, ClassIndex y_pred) const {
  if (y_true >= num_classes_ || y_pred >= num_classes_) return 0;
  return counts_[Cell(y_true, y_pred)];
}

double ConfusionMatrix::RowSum(ClassIndex c) const {
  return c < num_classes_ ? row_weights_[c] : 0.0;
}

double ConfusionMatrix::ColSum(ClassIndex c) const {
  return c < num_classes_ ? col_weights_[c] : 0.0;
}

bool ConfusionMatrix::HasClass(ClassIndex c) const {
  return c < num_classes_ && (row_counts_[c] > 0 || col_counts_[c] > 0);
}

std::size_t ConfusionMatrix::MemoryBytes() const {
  return (weights_.capacity() + row_weights_.capacity() + col_weights_.capacity()) *
             sizeof(double) +
         (counts_.capacity() + row_counts_.capacity() + col_counts_.capacity()) *
             sizeof(std::uint64_t);
}

void ConfusionMatrix::CheckLoaded() const {
  using metrics_internal::CheckLoad;
  const std::size_t k = num_classes_;
  // Division instead of k * k, which a corrupted k could overflow.
  CheckLoad(k == 0 ? weights_.empty() : weights_.size() % k == 0 && weights_.size() / k == k,
            "ConfusionMatrix: cell array size");
  CheckLoad(counts_.size() == weights_.size() && row_weights_.size() == k &&
                col_weights_.size() == k && row_counts_.size() == k && col_counts_.size() == k,
            "ConfusionMatrix: array sizes");
  CheckLoad(AllFiniteNonNegative(weights_) && AllFiniteNonNegative(row_weights_) &&
                AllFiniteNonNegative(col_weights_) && std::isfinite(total_weight_) &&
                total_weight_ >= 0.0 && std::isfinite(correct_weight_) && correct_weight_ >= 0.0,
            "ConfusionMatrix: weights must be finite and non-negative");
  std::vector<std::uint64_t> row_counts(k, 0);
  std::vector<std::uint64_t> col_counts(k, 0);
  std::uint64_t total = 0;
  std::uint64_t correct = 0;
  for (std::size_t t = 0; t < k; ++t) {
    for (std::size_t p = 0; p < k; ++p) {
      const std::size_t cell = t * k + p;
      CheckLoad(counts_[cell] > 0 || weights_[cell] == 0.0,
                "ConfusionMatrix: weight in an empty cell");
      row_counts[t] += counts_[cell];
      col_counts[p] += counts_[cell];
      total += counts_[cell];
      if (t == p) correct += counts_[cell];
    }
  }
  CheckLoad(row_counts == row_counts_ && col_counts == col_counts_ && total == total_count_ &&
                correct == correct_count_,
            "ConfusionMatrix: counts do not add up");
  for (std::size_t c = 0; c < k; ++c) {
    CheckLoad((row_counts_[c] > 0 || row_weights_[c] == 0.0) &&
                  (col_counts_[c] > 0 || col_weights_[c] == 0.0),
              "ConfusionMatrix: weight in an empty row or column");
  }
  CheckLoad(
      (total_count_ > 0 || total_weight_ == 0.0) && (correct_count_ > 0 || correct_weight_ == 0.0),
      "ConfusionMatrix: weight without examples");
}

// ---------------------------------------------------------------------------------------------
// BinaryRocAuc

std::uint32_t BinaryRocAuc::Bin(double score) {
  if (!(score > 0.0)) return 0;  // Also NaN.
  if (score >= 1.0) return kNumBins - 1;
  // Multiplying by a power of two is exact, so score < 1 gives a bin < kNumBins.
  return static_cast<std::uint32_t>(score * static_cast<double>(kNumBins));
}

void BinaryRocAuc::Add(double score, bool positive, double weight) {
  assert(IsValidWeight(weight));
  if (bins_[kPositive].empty()) {
    bins_[kPositive].assign(kNumBins, 0.0);
    bins_[kNegative].assign(kNumBins, 0.0);
  }
  const int c = positive ? kPositive : kNegative;
  bins_[c][Bin(score)] += weight;
  class_weight_[c] += weight;
  ++class_count_[c];
}

void BinaryRocAuc::Remove(double score, bool positive, double weight) {
  assert(IsValidWeight(weight));
  assert(!bins_[kPositive].empty());
  const int c = positive ? kPositive : kNegative;
  std::vector<double>& own_bins = bins_[c];
  double& own_weight = class_weight_[c];
  std::uint64_t& own_count = class_count_[c];
  Subtract(weight, &own_weight, &own_count);
  if (own_count == 0) {
    // The last example of its class. Zeroing the bins (64K doubles, a few microseconds) rather
    // than subtracting clears any rounding residue; it happens at most once per example of the
    // class that emptied.
    std::fill(own_bins.begin(), own_bins.end(), 0.0);
    return;
  }
  own_bins[Bin(score)] -= weight;
}

void BinaryRocAuc::Prefetch(double score, bool positive) const {
  const std::vector<double>& bins = bins_[positive ? kPositive : kNegative];
  if (bins.empty()) return;
  PrefetchLine(bins.data() + Bin(score));
}

double BinaryRocAuc::Value() const {
  const double pairs = class_weight_[kPositive] * class_weight_[kNegative];
  if (class_count_[kPositive] == 0 || class_count_[kNegative] == 0 || !(pairs > 0.0)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  // Concordant weight: each positive against the negatives below its bin, plus half those in
  // it (see the class comment).
  double negatives_below = 0.0;
  double concordance = 0.0;
  for (std::size_t b = 0; b < kNumBins; ++b) {
    const double negatives_at = bins_[kNegative][b];
    concordance += bins_[kPositive][b] * (negatives_below + 0.5 * negatives_at);
    negatives_below += negatives_at;
  }
  return std::clamp(concordance / pairs, 0.0, 1.0);
}

std::size_t BinaryRocAuc::MemoryBytes() const {
  return (bins_[kPositive].capacity() + bins_[kNegative].capacity()) * sizeof(double);
}

void BinaryRocAuc::CheckLoaded() const {
  using metrics_internal::CheckLoad;
  CheckLoad(bins_[kPositive].size() == bins_[kNegative].size(),
            "BinaryRocAuc: bins allocated differently");
  CheckLoad(std::isfinite(class_weight_[kPositive]) && class_weight_[kPositive] >= 0.0 &&
                std::isfinite(class_weight_[kNegative]) && class_weight_[kNegative] >= 0.0,
            "BinaryRocAuc: sums must be finite and non-negative");
  CheckLoad((class_count_[kPositive] > 0 || class_weight_[kPositive] == 0.0) &&
                (class_count_[kNegative] > 0 || class_weight_[kNegative] == 0.0),
            "BinaryRocAuc: weight without examples");
  CheckLoad(
      !bins_[kPositive].empty() || (class_count_[kPositive] == 0 && class_count_[kNegative] == 0),
      "BinaryRocAuc: examples without bins");
  // Bins hold sums of weights but may carry rounding residue of either sign after removals, so
  // only finiteness is required.
  const auto finite = [](double v) { return std::isfinite(v); };
  CheckLoad(std::all_of(bins_[kPositive].begin(), bins_[kPositive].end(), finite) &&
                std::all_of(bins_[kNegative].begin(), bins_[kNegative].end(), finite),
            "BinaryRocAuc: non-finite bin");
  // Finite bins can still add up to infinity, which Value() would turn into NaN.
  const auto magnitude = [](double sum, double v) { return sum + std::abs(v); };
  CheckLoad(std::isfinite(std::accumulate(bins_[kPositive].begin(), bins_[kPositive].end(), 0.0,
                                          magnitude)) &&
                std::isfinite(std::accumulate(bins_[kNegative].begin(), bins_[kNegative].end(), 0.0,
                                              magnitude)),
            "BinaryRocAuc: bins too large to add up");
}

// ---------------------------------------------------------------------------------------------
// MetricAccumulator

void MetricAccumulator::Add(const ScoredExample& example, double log_loss) {
  assert(SameBits(log_loss, ExampleLogLoss(example.p_true)));  // NaN from a diverged model too
  confusion_.Add(example.y_true, example.y_pred, example.weight);
  log_loss_sum_ += example.weight * log_loss;
  if (example.binary) {
    roc_auc_.Add(example.score, example.y_true == 1, example.weight);
  } else {
    ++non_binary_count_;
  }
}

void MetricAccumulator::Remove(const ScoredExample& example, double log_loss) {
  assert(SameBits(log_loss, ExampleLogLoss(example.p_true)));  // NaN from a diverged model too
  confusion_.Remove(example.y_true, example.y_pred, example.weight);
  log_loss_sum_ =
      confusion_.TotalCount() == 0 ? 0.0 : std::max(0.0, log_loss_sum_ - example.weight * log_loss);
  if (example.binary) {
    roc_auc_.Remove(example.score, example.y_true == 1, example.weight);
  } else {
    assert(non_binary_count_ > 0);
    --non_binary_count_;
  }
}

double MetricAccumulator::Accuracy() const {
  return Ratio(confusion_.CorrectWeight(), confusion_.TotalWeight());
}

double MetricAccumulator::LogLoss() const {
  const double total = confusion_.TotalWeight();
  return total > 0.0 ? log_loss_sum_ / total : 0.0;
}

double MetricAccumulator::RocAuc() const {
  if (non_binary_count_ > 0) return std::numeric_limits<double>::quiet_NaN();
  return roc_auc_.Value();
}

double MetricAccumulator::Precision() const {
  return Ratio(confusion_.Weight(1, 1), confusion_.ColSum(1));
}

double MetricAccumulator::Recall() const {
  return Ratio(confusion_.Weight(1, 1), confusion_.RowSum(1));
}

double MetricAccumulator::F1() const { return HarmonicMean(Precision(), Recall()); }

double MetricAccumulator::MacroPrecision() const {
  double total = 0.0;
  std::size_t present = 0;
  for (std::size_t c = 0; c < confusion_.NumClasses(); ++c) {
    const auto k = static_cast<ClassIndex>(c);
    if (!confusion_.HasClass(k)) continue;
    ++present;
    total += Ratio(confusion_.Weight(k, k), confusion_.ColSum(k));
  }
  return present > 0 ? total / static_cast<double>(present) : 0.0;
}

double MetricAccumulator::MacroRecall() const {
  double total = 0.0;
  std::size_t present = 0;
  for (std::size_t c = 0; c < confusion_.NumClasses(); ++c) {
    const auto k = static_cast<ClassIndex>(c);
    if (!confusion_.HasClass(k)) continue;
    ++present;
    total += Ratio(confusion_.Weight(k, k), confusion_.RowSum(k));
  }
  return present > 0 ? total / static_cast<double>(present) : 0.0;
}

double MetricAccumulator::MacroF1() const {
  double total = 0.0;
  std::size_t present = 0;
  for (std::size_t c = 0; c < confusion_.NumClasses(); ++c) {
    const auto k = static_cast<ClassIndex>(c);
    if (!confusion_.HasClass(k)) continue;
    ++present;
    total += HarmonicMean(Ratio(confusion_.Weight(k, k), confusion_.ColSum(k)),
                          Ratio(confusion_.Weight(k, k), confusion_.RowSum(k)));
  }
  return present > 0 ? total / static_cast<double>(present) : 0.0;
}

std::size_t MetricAccumulator::MemoryBytes() const {
  return confusion_.MemoryBytes() + roc_auc_.MemoryBytes();
}

void MetricAccumulator::CheckLoaded() const {
  using metrics_internal::CheckLoad;
  CheckLoad(
      std::isfinite(log_loss_sum_) && log_loss_sum_ >= 0.0 && (Count() > 0 || log_loss_sum_ == 0.0),
      "MetricAccumulator: bad log loss sum");
  CheckLoad(non_binary_count_ + roc_auc_.PositiveCount() + roc_auc_.NegativeCount() == Count(),
            "MetricAccumulator: ROC AUC and confusion matrix counts differ");
}

// ---------------------------------------------------------------------------------------------
// PrequentialMetrics

PrequentialMetrics::PrequentialMetrics(MetricsOptions options) : options_(options) {
  assert(options_.Validate().ok());
}

void PrequentialMetrics::Update(ClassIndex y_true, std::span<const double> proba, double weight) {
  assert(IsValidWeight(weight));
  if (proba.empty()) {
    ++unscored_count_;
    unscored_weight_ += weight;
    return;
  }
  const ScoredExample example = ScoreExample(y_true, proba, weight);
  const double log_loss = ExampleLogLoss(example.p_true);
  cumulative_.Add(example, log_loss);
  if (options_.window == 0) return;  // Invalid options; only reachable with NDEBUG.
  if (window_.size() < options_.window) {
    window_.push_back(example);
    window_log_loss_.push_back(log_loss);
  } else {
    rolling_.Remove(window_[oldest_], window_log_loss_[oldest_]);
    window_[oldest_] = example;
    window_log_loss_[oldest_] = log_loss;
    if (++oldest_ == window_.size()) oldest_ = 0;
  }
  rolling_.Add(example, log_loss);
}

void PrequentialMetrics::PrefetchForUpdate(ClassIndex y_true, std::span<const double> proba,
                                           double /*weight*/) const {
  if (proba.empty()) return;  // Update will score nothing
  if (options_.window > 0 && window_.size() == options_.window) {
    const ScoredExample& oldest = window_[oldest_];  // its removal
    if (oldest.binary) rolling_.Prefetch(oldest.score, oldest.y_true == 1);
  }
  // Only what ROC AUC reads: ScoreExample's ArgMax and p_true would go unused.
  const RocAucInput roc = RocAucInputOf(y_true, proba);
  if (!roc.binary) return;
  cumulative_.Prefetch(roc.score, y_true == 1);
  if (options_.window > 0) rolling_.Prefetch(roc.score, y_true == 1);
}

std::vector<ScoredExample> PrequentialMetrics::WindowInOrder() const {
  std::vector<ScoredExample> ordered;
  ordered.reserve(window_.size());
  ordered.insert(ordered.end(), window_.begin() + static_cast<std::ptrdiff_t>(oldest_),
                 window_.end());
  ordered.insert(ordered.end(), window_.begin(),
                 window_.begin() + static_cast<std::ptrdiff_t>(oldest_));
  return ordered;
}

std::size_t PrequentialMetrics::MemoryBytes() const {
  return cumulative_.MemoryBytes() + rolling_.MemoryBytes() +
         window_.capacity() * sizeof(ScoredExample) + window_log_loss_.capacity() * sizeof(double);
}

void PrequentialMetrics::CheckLoaded() const {
  using metrics_internal::CheckLoad;
  CheckLoad(window_.size() <= options_.window, "PrequentialMetrics: window overfull");
  CheckLoad(rolling_.Count() == window_.size() && cumulative_.Count() >= rolling_.Count(),
            "PrequentialMetrics: window and accumulator counts differ");
  CheckLoad(std::isfinite(unscored_weight_) && unscored_weight_ >= 0.0 &&
                (unscored_count_ > 0 || unscored_weight_ == 0.0),
            "PrequentialMetrics: bad unscored weight");
  for (const ScoredExample& example : window_) {
    CheckLoad(IsValidWeight(example.weight) && std::isfinite(example.p_true) &&
                  std::isfinite(example.score),
              "PrequentialMetrics: bad example in window");
  }
}

}  // namespace riffle::learners
