#ifndef RIFFLE_LEARNERS_METRICS_H_
#define RIFFLE_LEARNERS_METRICS_H_

// Online classification metrics for prequential ("test-then-train") evaluation: before a model
// learns an example, its predicted probabilities for that example are scored against the label,
// one example at a time. Every metric is kept twice, over all scored examples ("cumulative")
// and over the last N of them ("rolling"), the way River's evaluate.progressive_val_score and
// utils.Rolling do (Gama, Sebastião & Rodrigues 2013, "On evaluating stream learning
// algorithms", for prequential evaluation with sliding windows).
//
// Layers, from the bottom:
//   ScoredExample       what the metrics need from one (label, probabilities, weight) triple;
//   ConfusionMatrix     weighted KxK counts that grow with the class set;
//   BinaryRocAuc        ROC AUC in O(1) per update and O(B) per read over B = 2^16 score bins;
//   MetricAccumulator   all metrics over one population of examples, with Add and Remove;
//   PrequentialMetrics  a cumulative and a rolling MetricAccumulator fed by one Update().
//
// Conventions shared by every class here (they follow River 0.26 so numbers can be checked
// against it):
//   * Sample weights are finite and > 0 (debug-asserted, as everywhere in learners/).
//   * A metric over an empty population is 0.0, as River's Accuracy, Precision, ... return on
//     a ZeroDivisionError. The one exception is ROC AUC, which is NaN when undefined (see
//     BinaryRocAuc and MetricAccumulator::RocAuc).
//   * Remove() is the exact inverse of Add() in exact arithmetic. In floating point, adding
//     then removing a non-integer weight can leave rounding residue (~1e-16 relative) in a
//     running sum. Nothing is recomputed to remove it; instead sums are clamped at 0, ratios
//     clamped to [0, 1], and every sum is reset to exactly 0 whenever the number of examples
//     contributing to it drops to 0 (each sum keeps an integer example count next to it for
//     that purpose). With integer weights every sum but the log loss sum is exact.
//
// Thread-safety: none of these classes is thread-safe. Each is owned by one writer (the model's
// evaluation loop); const getters may run concurrently with each other but not with a mutation
// or a load.
//
// Errors: mutators trust their inputs and debug-assert them. load() throws cereal::Exception
// on a malformed or unsupported archive and leaves the object unchanged; checkpoints/ catches
// it and returns a Status.

#include <array>
#include <cereal/cereal.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "learners/feature_vector.h"
#include "learners/serialization.h"

namespace riffle::learners {

// Largest accepted MetricsOptions::window. The rolling window keeps one ScoredExample
// (40 bytes) and its log loss (8) per example, so this caps its memory at 768 MiB, and it
// bounds what a corrupted checkpoint can make load() allocate.
inline constexpr std::size_t kMaxMetricsWindow = std::size_t{1} << 24;

struct MetricsOptions {
  // Number of most recent scored examples the rolling metrics cover. Must be in
  // [1, kMaxMetricsWindow]. Default 1000.
  std::size_t window = 1000;

  // OK, or InvalidArgument naming the field.
  absl::Status Validate() const;
};

// One prediction scored against its label: everything the metrics need from an example,
// computed once by ScoreExample() so that the cumulative metrics, the rolling metrics and the
// later removal of the example from the window all see identical numbers.
struct ScoredExample {
  ClassIndex y_true = 0;
  // ArgMax of the probabilities: ties go to the lowest index.
  ClassIndex y_pred = 0;
  // The model's P(y_true); 0 when y_true is a class the model did not know yet.
  double p_true = 0.0;
  // The ROC AUC score, P(class 1); 0 when the model knew fewer than 2 classes.
  double score = 0.0;
  // Sample weight, finite and > 0.
  double weight = 1.0;
  // True when y_true < 2 and the model knew at most 2 classes, i.e. when the example belongs
  // to a binary problem and can enter ROC AUC.
  bool binary = true;

  template <class Archive>
  void serialize(Archive& archive, std::uint32_t version);

  friend bool operator==(const ScoredExample&, const ScoredExample&) = default;
};

// Scores `proba`, the model's class probabilities computed before it learned the example,
// against `y_true`. Requires a non-empty `proba` (an empty one is not scored at all: see
// PrequentialMetrics::Update) and a finite weight > 0.
ScoredExample ScoreExample(ClassIndex y_true, std::span<const double> proba, double weight = 1.0);

// The log loss of one example: -log(clamp(p_true, 1e-15, 1 - 1e-15)), River's clamp_proba.
// For more than 2 classes this is the cross-entropy (River's CrossEntropy).
double ExampleLogLoss(double p_true);

// Weighted confusion matrix: cell (t, p) holds the total weight of examples with true class t
// and predicted class p. It starts 0x0 and grows to KxK when an example with a class index
// K - 1 appears (as y_true or y_pred); it never shrinks, even when Remove() empties a class.
// Memory is O(K^2): classes are dense indices from features::LabelEncoder.
class ConfusionMatrix {
 public:
  ConfusionMatrix() = default;

  // Adds one example of weight `weight` (> 0).
  void Add(ClassIndex y_true, ClassIndex y_pred, double weight = 1.0);
  // Removes an example previously added with the same arguments (debug-asserted).
  void Remove(ClassIndex y_true, ClassIndex y_pred, double weight = 1.0);

  // K: one past the largest class index ever added.
  std::size_t NumClasses() const { return num_classes_; }
  // Weight and number of examples in cell (y_true, y_pred); 0 outside the matrix.
  double Weight(ClassIndex y_true, ClassIndex y_pred) const;
  std::uint64_t Count(ClassIndex y_true, ClassIndex y_pred) const;
  // Row sum: weight of examples whose true class is `c`. 0 outside the matrix.
  double RowSum(ClassIndex c) const;
  // Column sum: weight of examples predicted as `c`. 0 outside the matrix.
  double ColSum(ClassIndex c) const;
  // Whether some example currently in the matrix has `c` as its true or predicted class
  // (River's ConfusionMatrix.classes). Decided by example counts, not by weights, so rounding
  // residue never keeps a removed class alive.
  bool HasClass(ClassIndex c) const;
  // Total weight and number of examples; weight on the diagonal (correct predictions).
  double TotalWeight() const { return total_weight_; }
  std::uint64_t TotalCount() const { return total_count_; }
  double CorrectWeight() const { return correct_weight_; }

  // Approximate heap bytes held.
  std::size_t MemoryBytes() const;

  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  void Grow(std::size_t num_classes);
  std::size_t Cell(ClassIndex y_true, ClassIndex y_pred) const {
    return static_cast<std::size_t>(y_true) * num_classes_ + y_pred;
  }
  // Throws cereal::Exception if the loaded state is inconsistent.
  void CheckLoaded() const;

  std::size_t num_classes_ = 0;
  // num_classes_ x num_classes_, row-major by true class.
  std::vector<double> weights_;
  std::vector<std::uint64_t> counts_;
  // Per class, indexed by class: row (true) and column (predicted) sums.
  std::vector<double> row_weights_;
  std::vector<double> col_weights_;
  std::vector<std::uint64_t> row_counts_;
  std::vector<std::uint64_t> col_counts_;
  double total_weight_ = 0.0;
  double correct_weight_ = 0.0;
  std::uint64_t total_count_ = 0;
  std::uint64_t correct_count_ = 0;
};

// Weighted ROC AUC of a binary problem: O(1) to add or remove an example, O(B) to read.
//
// AUC is the probability that a random positive scores above a random negative, ties counting
// one half (the Mann-Whitney U statistic divided by P * N; with weights, each pair counts
// w_pos * w_neg). Scores in [0, 1] are quantized into B = 2^16 equal bins (values outside are
// clamped into [0, 1]); two scores in the same bin count as a tie. The result is therefore the
// exact AUC of the quantized scores, and differs from the AUC of the raw scores only through
// pairs closer than 1/65536, each of which is off by at most one half.
//
// State: the weight in each bin, per class. Value() sums, over the bins b in ascending order,
// w_pos(b) * (negative weight below b + 1/2 * w_neg(b)), and divides by P * N. Examples are
// added and removed on every prediction (twice per example with a rolling window) but the
// value is read when metrics are reported, so updates are one write and reads a pass over
// 2 * 2^16 doubles (tens of microseconds). Version 1 archives kept Fenwick trees and a running
// concordant weight (O(log B) per update, about a fifth of `riffle eval`'s model thread); they
// load as bins.
//
// Memory: the two histograms (2 * 65536 doubles = 1 MiB) are allocated by the first Add() and
// kept from then on. Before that the object holds no heap memory.
class BinaryRocAuc {
 public:
  static constexpr int kBinBits = 16;
  static constexpr std::size_t kNumBins = std::size_t{1} << kBinBits;

  BinaryRocAuc() = default;

  // Bin of `score`: floor(score * 2^16) for score in [0, 1), 2^16 - 1 for score 1. Scores
  // below 0 or NaN go to bin 0, above 1 to the last bin.
  static std::uint32_t Bin(double score);

  // Adds an example with score `score`, class positive/negative, weight `weight` (> 0).
  void Add(double score, bool positive, double weight = 1.0);
  // Removes an example previously added with the same arguments (debug-asserted).
  void Remove(double score, bool positive, double weight = 1.0);
  // Asks the CPU to fetch the bin that Add() or Remove() of (score, positive) will update. The
  // two histograms (1 MiB) do not stay in a core's cache next to a model, so an update is
  // usually a cache miss; a caller that knows the score early hides it behind other work.
  // Changes nothing observable.
  void Prefetch(double score, bool positive) const;

  // AUC in [0, 1]; NaN while there is no positive or no negative example. O(B).
  double Value() const;

  double PositiveWeight() const { return class_weight_[kPositive]; }
  double NegativeWeight() const { return class_weight_[kNegative]; }
  std::uint64_t PositiveCount() const { return class_count_[kPositive]; }
  std::uint64_t NegativeCount() const { return class_count_[kNegative]; }

  // Approximate heap bytes held: 0 before the first Add(), about 1 MiB after.
  std::size_t MemoryBytes() const;

  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  // How a histogram (version 2) or a Fenwick tree (version 1) is written: not allocated, all
  // entries, or only the non-zero ones (smaller for short streams; the encoding with fewer
  // bytes is chosen).
  enum BinsEncoding : std::uint8_t { kBinsAbsent = 0, kBinsDense = 1, kBinsSparse = 2 };

  template <class Archive>
  static void SaveBins(Archive& archive, const std::vector<double>& bins);
  template <class Archive>
  static void LoadBins(Archive& archive, std::vector<double>* bins);
  void CheckLoaded() const;

  // Per class, indexed by whether it is the positive one, so that an update selects its
  // histogram and sums by address rather than by a branch on the label (which a branch
  // predictor cannot learn: the rolling window removes its oldest example, of any label).
  static constexpr int kNegative = 0;
  static constexpr int kPositive = 1;
  // Weight per bin (kNumBins entries), empty until the first Add().
  std::array<std::vector<double>, 2> bins_;
  std::array<double, 2> class_weight_ = {0.0, 0.0};
  std::array<std::uint64_t, 2> class_count_ = {0, 0};
};

// All metrics over one population of scored examples (all of them, or a rolling window),
// maintained incrementally: Add() an example when it enters the population, Remove() it with
// the identical ScoredExample when it leaves. Every getter is O(1) except the macro averages,
// which are O(K).
//
// Binary metrics (Precision, Recall, F1) treat class index 1 as the positive class, one
// against the rest if there are more classes, like River's pos_val. Macro metrics average the
// per-class value over the classes present in the population as a true or predicted class
// (River's MacroPrecision, MacroRecall, MacroF1).
class MetricAccumulator {
 public:
  MetricAccumulator() = default;

  void Add(const ScoredExample& example) { Add(example, ExampleLogLoss(example.p_true)); }
  // `example` must have been added and not yet removed (debug-asserted only through counts).
  void Remove(const ScoredExample& example) { Remove(example, ExampleLogLoss(example.p_true)); }
  // The same with `log_loss` = ExampleLogLoss(example.p_true) computed by the caller, who may
  // need it more than once (PrequentialMetrics: once for both accumulators and the removal).
  void Add(const ScoredExample& example, double log_loss);
  void Remove(const ScoredExample& example, double log_loss);
  // Prefetches what Add or Remove of a binary example with this score and class will update
  // (BinaryRocAuc::Prefetch).
  void Prefetch(double score, bool positive) const { roc_auc_.Prefetch(score, positive); }

  // Number and total weight of examples in the population.
  std::uint64_t Count() const { return confusion_.TotalCount(); }
  double TotalWeight() const { return confusion_.TotalWeight(); }

  // Weighted fraction of examples with y_pred == y_true. 0 when empty.
  double Accuracy() const;
  // Weighted mean of ExampleLogLoss(p_true). 0 when empty.
  double LogLoss() const;
  // Weighted ROC AUC of P(class 1) (see BinaryRocAuc, including its quantization). NaN when
  // the population lacks a positive (class 1) or a negative (class 0) example, and NaN while
  // the population contains a non-binary example (ScoredExample::binary false: y_true >= 2 or
  // the model knew more than 2 classes), because the AUC of one score against several classes
  // is not defined. In a rolling window AUC becomes defined again once such examples leave.
  double RocAuc() const;
  // Class 1 against the rest: TP / (TP + FP), TP / (TP + FN), and their harmonic mean; 0 when
  // a denominator is 0.
  double Precision() const;
  double Recall() const;
  double F1() const;
  // Mean over present classes c of cm[c][c] / ColSum(c) (precision), cm[c][c] / RowSum(c)
  // (recall) and 2pr / (p + r) (F1), each 0 when its denominator is 0. 0 when empty.
  double MacroPrecision() const;
  double MacroRecall() const;
  double MacroF1() const;

  const ConfusionMatrix& confusion_matrix() const { return confusion_; }
  const BinaryRocAuc& roc_auc() const { return roc_auc_; }
  // Number of examples in the population with ScoredExample::binary false.
  std::uint64_t NonBinaryCount() const { return non_binary_count_; }

  std::size_t MemoryBytes() const;

  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  void CheckLoaded() const;

  ConfusionMatrix confusion_;
  BinaryRocAuc roc_auc_;
  // Sum of weight * ExampleLogLoss(p_true).
  double log_loss_sum_ = 0.0;
  std::uint64_t non_binary_count_ = 0;
};

// Prequential evaluation of one classifier: call Update() with each example's label and the
// probabilities the model predicted for it before learning it. Keeps the metrics over all
// scored examples (cumulative()) and over the last options.window scored examples (rolling()),
// the latter through a ring buffer of ScoredExamples whose oldest entry is removed from the
// rolling accumulator when a new one arrives.
//
// Like River's progressive_val_score, an example for which the model made no prediction
// (empty probabilities: it knows no class yet) is not scored: it enters neither accumulator
// and is only counted by UnscoredCount() / UnscoredWeight().
//
// Memory: two MetricAccumulators (each up to ~1 MiB of ROC AUC bins plus a KxK confusion
// matrix) and up to options.window * (sizeof(ScoredExample) + 8) bytes of window, grown as
// examples arrive. Update() allocates only while the window fills and when a new class appears.
class PrequentialMetrics {
 public:
  // Requires options.Validate().ok() (debug-asserted).
  explicit PrequentialMetrics(MetricsOptions options = {});

  // Scores one example. `proba` holds P(class k) for k = 0..proba.size()-1, as produced by
  // Classifier::PredictProbaOne before LearnOne on this example; empty means "no prediction".
  // `weight` is finite and > 0.
  void Update(ClassIndex y_true, std::span<const double> proba, double weight = 1.0);
  // Optional: prefetches what Update() with the same arguments will touch, so that a caller
  // that has other work between the prediction and Update() (learning the example) overlaps
  // the ROC AUC bins' cache misses with it (the weight changes nothing they touch). Changes
  // nothing observable.
  void PrefetchForUpdate(ClassIndex y_true, std::span<const double> proba,
                         double weight = 1.0) const;

  const MetricAccumulator& cumulative() const { return cumulative_; }
  const MetricAccumulator& rolling() const { return rolling_; }
  // Examples passed to Update() with empty probabilities, and their total weight.
  std::uint64_t UnscoredCount() const { return unscored_count_; }
  double UnscoredWeight() const { return unscored_weight_; }
  const MetricsOptions& options() const { return options_; }

  std::size_t MemoryBytes() const;

  // The complete state, including the window's examples, so that a restored instance reports
  // and continues bit-identically.
  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  // The window's examples, oldest first.
  std::vector<ScoredExample> WindowInOrder() const;
  void CheckLoaded() const;

  MetricsOptions options_;
  MetricAccumulator cumulative_;
  MetricAccumulator rolling_;
  // Ring buffer of the rolling window's examples. Grows by push_back until it holds
  // options_.window entries; from then on the entry at oldest_ is replaced.
  std::vector<ScoredExample> window_;
  // ExampleLogLoss of each window_ entry, computed once (derived: not saved).
  std::vector<double> window_log_loss_;
  std::size_t oldest_ = 0;
  std::uint64_t unscored_count_ = 0;
  double unscored_weight_ = 0.0;
};

// Implementation details for the templates below; not part of the API.
namespace metrics_internal {

// Throws cereal::Exception unless `version` is 1, the only archive version so far.
void CheckVersion(std::uint32_t version, std::string_view type);
// Throws cereal::Exception with `message` if `ok` is false.
void CheckLoad(bool ok, std::string_view message);
// Indices of the entries of `values` whose bit pattern is not +0.0, ascending.
std::vector<std::uint32_t> NonZeroEntries(const std::vector<double>& values);
// Turns a Fenwick tree over a power-of-two number of bins, stored 0-based (node j, 1-based,
// at [j - 1] holds the weight of bins [j - lowbit(j), j)), into the weight of each bin, in
// place. For BinaryRocAuc archives of version 1.
void FenwickToBins(std::vector<double>* tree);

}  // namespace metrics_internal

template <class Archive>
void ScoredExample::serialize(Archive& archive, std::uint32_t version) {
  metrics_internal::CheckVersion(version, "ScoredExample");
  archive(y_true, y_pred, p_true, score, weight);
  if constexpr (Archive::is_loading::value) {
    binary = LoadBool(archive);
  } else {
    SaveBool(archive, binary);
  }
}

template <class Archive>
void ConfusionMatrix::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(static_cast<std::uint64_t>(num_classes_), weights_, counts_, row_weights_, col_weights_,
          row_counts_, col_counts_, total_weight_, correct_weight_, total_count_, correct_count_);
}

template <class Archive>
void ConfusionMatrix::load(Archive& archive, std::uint32_t version) {
  metrics_internal::CheckVersion(version, "ConfusionMatrix");
  ConfusionMatrix loaded;
  std::uint64_t num_classes = 0;
  archive(num_classes);
  // Bounded loads (learners/serialization.h): the saved layout is cereal's own for vectors.
  LoadVector(archive, &loaded.weights_);
  LoadVector(archive, &loaded.counts_);
  LoadVector(archive, &loaded.row_weights_);
  LoadVector(archive, &loaded.col_weights_);
  LoadVector(archive, &loaded.row_counts_);
  LoadVector(archive, &loaded.col_counts_);
  archive(loaded.total_weight_, loaded.correct_weight_, loaded.total_count_, loaded.correct_count_);
  loaded.num_classes_ = static_cast<std::size_t>(num_classes);
  loaded.CheckLoaded();
  *this = std::move(loaded);
}

template <class Archive>
void BinaryRocAuc::SaveBins(Archive& archive, const std::vector<double>& bins) {
  if (bins.empty()) {
    archive(static_cast<std::uint8_t>(kBinsAbsent));
    return;
  }
  std::vector<std::uint32_t> nonzero = metrics_internal::NonZeroEntries(bins);
  // Sparse costs 4 + 8 bytes per non-zero bin, dense 8 bytes per bin.
  if (nonzero.size() * 12 >= bins.size() * 8) {
    archive(static_cast<std::uint8_t>(kBinsDense), bins);
    return;
  }
  std::vector<double> values;
  values.reserve(nonzero.size());
  for (std::uint32_t b : nonzero) values.push_back(bins[b]);
  archive(static_cast<std::uint8_t>(kBinsSparse), nonzero, values);
}

template <class Archive>
void BinaryRocAuc::LoadBins(Archive& archive, std::vector<double>* bins) {
  std::uint8_t encoding = 0;
  archive(encoding);
  bins->clear();
  switch (encoding) {
    case kBinsAbsent:
      return;
    case kBinsDense:
      LoadVector(archive, bins);
      metrics_internal::CheckLoad(bins->size() == kNumBins, "BinaryRocAuc: dense bins size");
      return;
    case kBinsSparse: {
      std::vector<std::uint32_t> nonzero;
      std::vector<double> values;
      LoadVector(archive, &nonzero);
      LoadVector(archive, &values);
      metrics_internal::CheckLoad(nonzero.size() == values.size() && nonzero.size() <= kNumBins,
                                  "BinaryRocAuc: sparse bins sizes");
      bins->assign(kNumBins, 0.0);
      for (std::size_t i = 0; i < nonzero.size(); ++i) {
        metrics_internal::CheckLoad(
            nonzero[i] < kNumBins && (i == 0 || nonzero[i - 1] < nonzero[i]),
            "BinaryRocAuc: sparse bin indices");
        (*bins)[nonzero[i]] = values[i];
      }
      return;
    }
    default:
      metrics_internal::CheckLoad(false, "BinaryRocAuc: unknown bins encoding");
  }
}

template <class Archive>
void BinaryRocAuc::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(class_weight_[kPositive], class_weight_[kNegative], class_count_[kPositive],
          class_count_[kNegative]);
  SaveBins(archive, bins_[kPositive]);
  SaveBins(archive, bins_[kNegative]);
}

template <class Archive>
void BinaryRocAuc::load(Archive& archive, std::uint32_t version) {
  metrics_internal::CheckLoad(version == 1 || version == 2,
                              "BinaryRocAuc: unsupported archive version");
  BinaryRocAuc loaded;
  archive(loaded.class_weight_[kPositive], loaded.class_weight_[kNegative],
          loaded.class_count_[kPositive], loaded.class_count_[kNegative]);
  if (version == 1) {
    double concordance = 0.0;  // derived; Value() recomputes it from the bins
    archive(concordance);
  }
  LoadBins(archive, &loaded.bins_[kPositive]);
  LoadBins(archive, &loaded.bins_[kNegative]);
  if (version == 1) {
    metrics_internal::FenwickToBins(&loaded.bins_[kPositive]);
    metrics_internal::FenwickToBins(&loaded.bins_[kNegative]);
  }
  loaded.CheckLoaded();
  *this = std::move(loaded);
}

template <class Archive>
void MetricAccumulator::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(confusion_, roc_auc_, log_loss_sum_, non_binary_count_);
}

template <class Archive>
void MetricAccumulator::load(Archive& archive, std::uint32_t version) {
  metrics_internal::CheckVersion(version, "MetricAccumulator");
  MetricAccumulator loaded;
  archive(loaded.confusion_, loaded.roc_auc_, loaded.log_loss_sum_, loaded.non_binary_count_);
  loaded.CheckLoaded();
  *this = std::move(loaded);
}

template <class Archive>
void PrequentialMetrics::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(static_cast<std::uint64_t>(options_.window), cumulative_, rolling_, WindowInOrder(),
          unscored_count_, unscored_weight_);
}

template <class Archive>
void PrequentialMetrics::load(Archive& archive, std::uint32_t version) {
  metrics_internal::CheckVersion(version, "PrequentialMetrics");
  std::uint64_t window = 0;
  archive(window);
  metrics_internal::CheckLoad(window >= 1 && window <= kMaxMetricsWindow,
                              "PrequentialMetrics: window out of range");
  PrequentialMetrics loaded(MetricsOptions{.window = static_cast<std::size_t>(window)});
  archive(loaded.cumulative_, loaded.rolling_);
  LoadVector(archive, &loaded.window_);
  archive(loaded.unscored_count_, loaded.unscored_weight_);
  loaded.CheckLoaded();
  for (const ScoredExample& example : loaded.window_) {
    loaded.window_log_loss_.push_back(ExampleLogLoss(example.p_true));
  }
  *this = std::move(loaded);
}

}  // namespace riffle::learners

CEREAL_CLASS_VERSION(riffle::learners::ScoredExample, 1);
CEREAL_CLASS_VERSION(riffle::learners::ConfusionMatrix, 1);
CEREAL_CLASS_VERSION(riffle::learners::BinaryRocAuc, 2);
CEREAL_CLASS_VERSION(riffle::learners::MetricAccumulator, 1);
CEREAL_CLASS_VERSION(riffle::learners::PrequentialMetrics, 1);

#endif  // RIFFLE_LEARNERS_METRICS_H_
