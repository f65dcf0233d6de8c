#ifndef RIFFLE_LEARNERS_LOGISTIC_REGRESSION_H_
#define RIFFLE_LEARNERS_LOGISTIC_REGRESSION_H_

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/classifier.h"

namespace riffle::learners {

enum class OptimizerKind { kSgd, kAdam, kAdaGrad, kFtrl };
enum class LearningRateSchedule { kConstant, kInverseScaling };

// kAuto: a sigmoid model while at most two classes were seen, switched to softmax when a third
// class appears (River's LogisticRegression, then SoftmaxRegression). kSoftmax: softmax from the
// first example, one weight column per class, as River's SoftmaxRegression.
enum class LogisticMode { kAuto, kSoftmax };

// Hyperparameters of LogisticRegression. Defaults are River's (linear_model.LogisticRegression
// and the optimizers in river.optim) wherever River has one.
struct LogisticRegressionOptions {
  // How weights are updated. The intercepts always use plain SGD with `intercept_lr`.
  OptimizerKind optimizer = OptimizerKind::kSgd;
  // Base learning rate of SGD, Adam and AdaGrad. Unset means the optimizer's River default:
  // SGD 0.01, Adam 0.1, AdaGrad 0.1. Ignored by FTRL, whose step size is `ftrl_alpha`.
  std::optional<double> lr;
  // kConstant: lr at every step. kInverseScaling: lr / (t + 1)^lr_power at step t (t counts
  // the updates of a weight column, from 0).
  LearningRateSchedule lr_schedule = LearningRateSchedule::kConstant;
  double lr_power = 0.5;
  // Learning rate of the intercepts (constant). 0 freezes them at `intercept_init`.
  double intercept_lr = 0.01;
  double intercept_init = 0.0;
  // L2 penalty: adds l2 * w_j to the gradient of every weight of a feature present in the
  // example (lazy, as River). Not used with FTRL (see ftrl_l2).
  double l2 = 0.0;
  // L1 penalty with the cumulative-penalty method of Tsuruoka, Tsujii & Ananiadou (2009), as
  // River applies it: weights of present features are clipped towards zero after each step.
  // Not used with FTRL (see ftrl_l1).
  double l1 = 0.0;
  // The loss gradient (times the sample weight) is clipped to [-clip_gradient, clip_gradient].
  double clip_gradient = 1e12;
  // Adam (Kingma & Ba 2015), with bias correction folded into the step size as River does.
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  // AdaGrad (Duchi, Hazan & Singer 2011): lr / sqrt(sum of squared gradients + eps).
  double adagrad_eps = 1e-8;
  // FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches"),
  // per-coordinate learning rate alpha / (beta + sqrt(n_i)); L1 and L2 are part of the
  // proximal step, so L1 sets weights to exactly zero.
  double ftrl_alpha = 0.05;
  double ftrl_beta = 1.0;
  double ftrl_l1 = 0.0;
  double ftrl_l2 = 1.0;
  LogisticMode mode = LogisticMode::kAuto;

  // The learning rate actually used: `lr` or the optimizer's default.
  double BaseLearningRate() const;

  absl::Status Validate() const;

  // Sets one option from text, by its snake_case name (the field names above, with values
  // optimizer=sgd|adam|adagrad|ftrl, lr_schedule=constant|inverse_scaling, mode=auto|softmax).
  absl::Status Set(std::string_view name, std::string_view value);
};

// Online logistic regression: binary (sigmoid) and multiclass (softmax), trained by one
// stochastic gradient step per example on the log loss.
//
// Weights are stored densely, one row per feature index and one column per class (a single
// column in sigmoid mode), and grown on demand as larger feature indices appear; a weight of
// a feature never seen is zero. Per-example work is proportional to the features present.
//
// Thread-safety: see Classifier. Predictions are const and allocation-free given a reused
// output buffer; LearnOne needs exclusive access.
class LogisticRegression final : public Classifier {
 public:
  // Returns InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<LogisticRegression>> Create(
      const LogisticRegressionOptions& options);

  // Options must be valid (checked in debug builds).
  explicit LogisticRegression(const LogisticRegressionOptions& options);

  static constexpr std::string_view kKind = "logreg";
  std::string_view Kind() const override { return kKind; }

  void LearnOne(const FeatureVector& x, ClassIndex y, double weight = 1.0) override;
  void PredictProbaOne(const FeatureVector& x, std::vector<double>* proba) const override;
  // In sigmoid mode the model is binary from the start: it predicts two classes (P(class 1)
  // is the sigmoid of the logit; 0.5 each before any learning), as River's
  // LogisticRegression. In softmax mode it predicts the classes learned so far, none at first.
  std::size_t NumClasses() const override;
  std::unique_ptr<Classifier> Clone() const override {
    return std::make_unique<LogisticRegression>(*this);
  }
  std::size_t MemoryBytes() const override;
  void Save(cereal::PortableBinaryOutputArchive& archive) const override;
  void Load(cereal::PortableBinaryInputArchive& archive) override;

  const LogisticRegressionOptions& options() const { return options_; }
  bool softmax() const { return softmax_; }
  // Weight of feature `j` in column `column` (the class in softmax mode; column 0 holds the
  // class-1 logit in sigmoid mode). Zero for features never seen.
  double Weight(FeatureIndex j, std::size_t column = 0) const;
  double Intercept(std::size_t column = 0) const;
  // Number of weight columns: 1 in sigmoid mode, the class count in softmax mode.
  std::size_t NumColumns() const { return static_cast<std::size_t>(weights_.cols()); }

 private:
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  // Raw scores: intercept + sum of present weights times values; features beyond the weight
  // matrix count as zero. SigmoidLogit is for the single sigmoid column; SoftmaxLogits writes
  // one score per column.
  double SigmoidLogit(const FeatureVector& x) const;
  // SigmoidLogit's sum, with weighted(j, v) the term of feature j with value v.
  template <class Term>
  double SigmoidLogitOf(const FeatureVector& x, Term weighted) const;
  // SigmoidLogit when every index of x has a weight: the same bits as SigmoidLogitOf, four
  // terms at a time.
  double SigmoidLogitAllWeighted(const FeatureVector& x) const;
  void SoftmaxLogits(const FeatureVector& x, std::span<double> logits) const;
  void GrowFeatures(FeatureIndex extent);
  // Appends columns so that class `y` has one (softmax mode), or converts a sigmoid model to
  // softmax when a third class appears.
  void GrowClasses(ClassIndex y);
  void SwitchToSoftmax(std::size_t num_columns);
  void ResizeColumns(Eigen::Index cols);
  // One optimizer step on column c for loss gradient g (d loss / d logit, already weighted
  // and clipped).
  void UpdateColumn(const FeatureVector& x, Eigen::Index c, double g);
  double StepLearningRate(std::uint64_t t) const;
  void ApplyCumulativeL1(const FeatureVector& x, Eigen::Index c);

  LogisticRegressionOptions options_;
  double base_lr_;
  bool softmax_;
  Matrix weights_;
  Eigen::VectorXd intercepts_;
  // Optimizer state, same shape as weights_ when the optimizer uses it: Adam's first and
  // second moments; AdaGrad's sum of squared gradients (state_a_); FTRL's z and n.
  Matrix state_a_;
  Matrix state_b_;
  // Tsuruoka's q: the L1 penalty actually applied to each weight so far (when l1 > 0).
  Matrix applied_l1_;
  // Per column: optimizer steps taken and Tsuruoka's u (total L1 penalty available).
  std::vector<std::uint64_t> steps_;
  std::vector<double> total_l1_;
  // Writer-only scratch for LearnOne (probabilities of the example being learned).
  std::vector<double> learn_proba_;
};

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_LOGISTIC_REGRESSION_H_
