#include "learners/logistic_regression.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "learners/lanes.h"
#include "learners/math.h"
#include "learners/option_parsing.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

// Version of the serialized LogisticRegression state. Bump it, and keep a loader for the old
// layout, whenever Save() changes.
constexpr std::uint32_t kStateVersion = 1;

bool UsesStateA(const LogisticRegressionOptions& o) { return o.optimizer != OptimizerKind::kSgd; }
bool UsesStateB(const LogisticRegressionOptions& o) {
  return o.optimizer == OptimizerKind::kAdam || o.optimizer == OptimizerKind::kFtrl;
}
bool UsesCumulativeL1(const LogisticRegressionOptions& o) {
  return o.l1 > 0 && o.optimizer != OptimizerKind::kFtrl;
}

absl::Status RequireOpenUnit(std::string_view name, double value) {
  if (!(value >= 0 && value < 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be in [0, 1), got %g", name, value));
  }
  return absl::OkStatus();
}

// Grows a row-major matrix to `rows` rows, zero-filling the new ones.
template <typename M>
void GrowRows(M* m, Eigen::Index rows) {
  const Eigen::Index old_rows = m->rows();
  m->conservativeResize(rows, m->cols());
  m->bottomRows(rows - old_rows).setZero();
}

template <typename M>
void GrowCols(M* m, Eigen::Index cols) {
  const Eigen::Index old_cols = m->cols();
  m->conservativeResize(m->rows(), cols);
  m->rightCols(cols - old_cols).setZero();
}

// Moves the single sigmoid column into column 1 of a zero matrix with `cols` columns.
template <typename M>
void SigmoidToSoftmax(M* m, Eigen::Index cols) {
  M wide = M::Zero(m->rows(), cols);
  wide.col(1) = m->col(0);
  *m = std::move(wide);
}

}  // namespace

double LogisticRegressionOptions::BaseLearningRate() const {
  if (lr.has_value()) return *lr;
  switch (optimizer) {
    case OptimizerKind::kSgd:
      return 0.01;
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdaGrad:
      return 0.1;
    case OptimizerKind::kFtrl:
      return ftrl_alpha;
  }
  return 0.01;
}

absl::Status LogisticRegressionOptions::Validate() const {
  if (lr.has_value()) {
    if (absl::Status s = RequireFinitePositive("lr", *lr); !s.ok()) return s;
  }
  for (const auto& [name, value] : {std::pair<std::string_view, double>{"lr_power", lr_power},
                                    {"intercept_lr", intercept_lr},
                                    {"l1", l1},
                                    {"l2", l2},
                                    {"ftrl_l1", ftrl_l1},
                                    {"ftrl_l2", ftrl_l2},
                                    {"ftrl_beta", ftrl_beta}}) {
    if (absl::Status s = RequireFiniteNonNegative(name, value); !s.ok()) return s;
  }
  for (const auto& [name, value] :
       {std::pair<std::string_view, double>{"clip_gradient", clip_gradient},
        {"adam_eps", adam_eps},
        {"adagrad_eps", adagrad_eps},
        {"ftrl_alpha", ftrl_alpha}}) {
    if (absl::Status s = RequireFinitePositive(name, value); !s.ok()) return s;
  }
  if (absl::Status s = RequireOpenUnit("adam_beta1", adam_beta1); !s.ok()) return s;
  if (absl::Status s = RequireOpenUnit("adam_beta2", adam_beta2); !s.ok()) return s;
  if (!std::isfinite(intercept_init)) {
    return absl::InvalidArgumentError("option 'intercept_init' must be finite");
  }
  if (optimizer == OptimizerKind::kFtrl && (l1 > 0 || l2 > 0)) {
    return absl::InvalidArgumentError(
        "options 'l1' and 'l2' do not apply to optimizer 'ftrl': use 'ftrl_l1' and 'ftrl_l2'");
  }
  return absl::OkStatus();
}

absl::Status LogisticRegressionOptions::Set(std::string_view name, std::string_view value) {
  if (name == "optimizer") {
    return ParseEnumOption<OptimizerKind>(name, value,
                                          {{"sgd", OptimizerKind::kSgd},
                                           {"adam", OptimizerKind::kAdam},
                                           {"adagrad", OptimizerKind::kAdaGrad},
                                           {"ftrl", OptimizerKind::kFtrl}},
                                          &optimizer);
  }
  if (name == "lr_schedule") {
    return ParseEnumOption<LearningRateSchedule>(
        name, value,
        {{"constant", LearningRateSchedule::kConstant},
         {"inverse_scaling", LearningRateSchedule::kInverseScaling}},
        &lr_schedule);
  }
  if (name == "mode") {
    return ParseEnumOption<LogisticMode>(
        name, value, {{"auto", LogisticMode::kAuto}, {"softmax", LogisticMode::kSoftmax}}, &mode);
  }
  if (name == "lr") {
    double v = 0;
    if (absl::Status s = ParseDoubleOption(name, value, &v); !s.ok()) return s;
    lr = v;
    return absl::OkStatus();
  }
  const std::pair<std::string_view, double*> doubles[] = {
      {"lr_power", &lr_power},
      {"intercept_lr", &intercept_lr},
      {"intercept_init", &intercept_init},
      {"l2", &l2},
      {"l1", &l1},
      {"clip_gradient", &clip_gradient},
      {"adam_beta1", &adam_beta1},
      {"adam_beta2", &adam_beta2},
      {"adam_eps", &adam_eps},
      {"adagrad_eps", &adagrad_eps},
      {"ftrl_alpha", &ftrl_alpha},
      {"ftrl_beta", &ftrl_beta},
      {"ftrl_l1", &ftrl_l1},
      {"ftrl_l2", &ftrl_l2},
  };
  for (const auto& [option, field] : doubles) {
    if (name == option) return ParseDoubleOption(name, value, field);
  }
  return UnknownOptionError(LogisticRegression::kKind, name);
}

absl::StatusOr<std::unique_ptr<LogisticRegression>> LogisticRegression::Create(
    const LogisticRegressionOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<LogisticRegression>(options);
}

LogisticRegression::LogisticRegression(const LogisticRegressionOptions& options)
    : options_(options),
      base_lr_(options.BaseLearningRate()),
      softmax_(options.mode == LogisticMode::kSoftmax) {
  assert(options.Validate().ok());
  // A sigmoid model has its one column from the start; a softmax model adds one per class.
  ResizeColumns(softmax_ ? 0 : 1);
}

double LogisticRegression::SigmoidLogit(const FeatureVector& x) const {
  // Every index below the weights' rows (always when learning, which grows them first): no
  // test per term, about half of the instructions of the loop below. The same terms in the same
  // order, so the same bits.
  if (static_cast<Eigen::Index>(x.Extent()) <= weights_.rows()) return SigmoidLogitAllWeighted(x);
  // A feature without a weight yet (predicting) adds 0.
  return SigmoidLogitOf(x, [w = weights_.data(), rows = weights_.rows()](FeatureIndex j, double v) {
    return static_cast<Eigen::Index>(j) < rows ? w[j] * v : 0.0;
  });
}

template <class Term>
double LogisticRegression::SigmoidLogitOf(const FeatureVector& x, Term weighted) const {
  // Four partial sums break the add-latency chain of a plain running sum (about 4x faster on
  // dense examples). The order of additions is fixed, so results are deterministic.
  const FeatureIndex* idx = x.indices().data();
  const double* val = x.values().data();
  const std::size_t n = x.size();
  const auto term = [&](std::size_t k) { return weighted(idx[k], val[k]); };
  double s0 = 0.0;
  double s1 = 0.0;
  double s2 = 0.0;
  double s3 = 0.0;
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += term(k);
    s1 += term(k + 1);
    s2 += term(k + 2);
    s3 += term(k + 3);
  }
  for (; k < n; ++k) s0 += term(k);
  return intercepts_[0] + ((s0 + s1) + (s2 + s3));
}

double LogisticRegression::SigmoidLogitAllWeighted(const FeatureVector& x) const {
  // SigmoidLogitOf's four partial sums as the lanes of two pairs: the same terms added in the
  // same order, so the same bits. A block of consecutive indices (every block of a dense row)
  // loads its four weights as two pairs.
  const double* w = weights_.data();
  const FeatureIndex* idx = x.indices().data();
  const double* val = x.values().data();
  const std::size_t n = x.size();
  DoublePair sums01 = {0.0, 0.0};
  DoublePair sums23 = {0.0, 0.0};
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const FeatureIndex* j = idx + k;
    DoublePair w01;
    DoublePair w23;
    if (ConsecutiveIndices(j)) {
      std::memcpy(&w01, w + j[0], sizeof(w01));
      std::memcpy(&w23, w + j[0] + 2, sizeof(w23));
    } else {
      w01 = DoublePair{w[j[0]], w[j[1]]};
      w23 = DoublePair{w[j[2]], w[j[3]]};
    }
    DoublePair v01;
    DoublePair v23;
    std::memcpy(&v01, val + k, sizeof(v01));
    std::memcpy(&v23, val + k + 2, sizeof(v23));
    sums01 += w01 * v01;
    sums23 += w23 * v23;
  }
  double s0 = sums01[0];
  for (; k < n; ++k) s0 += w[idx[k]] * val[k];
  return intercepts_[0] + ((s0 + sums01[1]) + (sums23[0] + sums23[1]));
}

void LogisticRegression::SoftmaxLogits(const FeatureVector& x, std::span<double> logits) const {
  // Row-major weights: the logits of all classes for one feature are contiguous, so one pass
  // over the features updates every class.
  const Eigen::Index rows = weights_.rows();
  const auto cols = static_cast<std::size_t>(weights_.cols());
  assert(logits.size() == cols);
  for (std::size_t c = 0; c < cols; ++c) logits[c] = intercepts_[static_cast<Eigen::Index>(c)];
  for (std::size_t k = 0; k < x.size(); ++k) {
    const Eigen::Index j = x.index(k);
    if (j >= rows) continue;
    const double* row = weights_.data() + j * weights_.cols();
    const double v = x.value(k);
    for (std::size_t c = 0; c < cols; ++c) logits[c] += row[c] * v;
  }
}

void LogisticRegression::PredictProbaOne(const FeatureVector& x, std::vector<double>* proba) const {
  if (!softmax_) {
    const double p = Sigmoid(SigmoidLogit(x));
    proba->resize(2);
    (*proba)[0] = 1.0 - p;
    (*proba)[1] = p;
    return;
  }
  const Eigen::Index cols = weights_.cols();
  proba->resize(static_cast<std::size_t>(cols));
  SoftmaxLogits(x, *proba);
  SoftmaxInPlace(*proba);
}

std::size_t LogisticRegression::NumClasses() const {
  return softmax_ ? static_cast<std::size_t>(weights_.cols()) : 2;
}

void LogisticRegression::LearnOne(const FeatureVector& x, ClassIndex y, double weight) {
  assert(weight > 0 && std::isfinite(weight));
  GrowFeatures(x.Extent());
  const double clip = options_.clip_gradient;
  const double intercept_lr = options_.intercept_lr;
  if (!softmax_ && y >= 2) SwitchToSoftmax(2);

  if (!softmax_) {
    // d log loss / d logit = p - y for the sigmoid.
    const double p = Sigmoid(SigmoidLogit(x));
    const double g = std::clamp(weight * (p - (y == 1 ? 1.0 : 0.0)), -clip, clip);
    intercepts_[0] -= intercept_lr * g;
    UpdateColumn(x, 0, g);
    return;
  }

  // Softmax. As River's SoftmaxRegression, probabilities come from the classes known before
  // this example; a class seen for the first time has probability 0 in its own gradient.
  const Eigen::Index known = weights_.cols();
  learn_proba_.resize(static_cast<std::size_t>(known));
  SoftmaxLogits(x, learn_proba_);
  SoftmaxInPlace(learn_proba_);
  if (static_cast<Eigen::Index>(y) >= known) {
    ResizeColumns(static_cast<Eigen::Index>(y) + 1);
    learn_proba_.resize(y + 1, 0.0);
  }
  for (Eigen::Index c = 0; c < weights_.cols(); ++c) {
    // d cross-entropy / d logit_c = p_c - [y == c].
    const double target = static_cast<Eigen::Index>(y) == c ? 1.0 : 0.0;
    const double g = std::clamp(weight * (learn_proba_[c] - target), -clip, clip);
    intercepts_[c] -= intercept_lr * g;
    UpdateColumn(x, c, g);
  }
}

double LogisticRegression::StepLearningRate(std::uint64_t t) const {
  if (options_.lr_schedule == LearningRateSchedule::kConstant) return base_lr_;
  return base_lr_ / std::pow(static_cast<double>(t) + 1.0, options_.lr_power);
}

void LogisticRegression::UpdateColumn(const FeatureVector& x, Eigen::Index c, double g) {
  const Eigen::Index cols = weights_.cols();
  double* w = weights_.data();
  const std::uint64_t t = steps_[c];
  const double l2 = options_.l2;
  switch (options_.optimizer) {
    case OptimizerKind::kSgd: {
      const double lr = StepLearningRate(t);
      if (cols == 1 && l2 == 0.0) {
        // The common binary case, with the same arithmetic as below minus the zero terms; four
        // weights at a time where their indices are consecutive (the same operations lane by
        // lane, on distinct weights).
        const FeatureIndex* idx = x.indices().data();
        const double* val = x.values().data();
        const std::size_t n = x.size();
        std::size_t k = 0;
        for (; k + 4 <= n; k += 4) {
          const FeatureIndex* j = idx + k;
          if (!ConsecutiveIndices(j)) {
            for (std::size_t i = k; i < k + 4; ++i) w[idx[i]] -= lr * (g * val[i]);
            continue;
          }
          for (std::size_t half = 0; half < 4; half += 2) {
            DoublePair weights;
            DoublePair values;
            std::memcpy(&weights, w + j[0] + half, sizeof(weights));
            std::memcpy(&values, val + k + half, sizeof(values));
            weights -= lr * (g * values);
            std::memcpy(w + j[0] + half, &weights, sizeof(weights));
          }
        }
        for (; k < n; ++k) w[idx[k]] -= lr * (g * val[k]);
        break;
      }
      for (std::size_t k = 0; k < x.size(); ++k) {
        double& wj = w[x.index(k) * cols + c];
        wj -= lr * (g * x.value(k) + l2 * wj);
      }
      break;
    }
    case OptimizerKind::kAdam: {
      const double b1 = options_.adam_beta1;
      const double b2 = options_.adam_beta2;
      const double step = static_cast<double>(t) + 1.0;
      // Bias correction of both moments folded into the step size (Kingma & Ba, section 2).
      const double lr =
          StepLearningRate(t) * std::sqrt(1.0 - std::pow(b2, step)) / (1.0 - std::pow(b1, step));
      double* m = state_a_.data();
      double* v = state_b_.data();
      for (std::size_t k = 0; k < x.size(); ++k) {
        const Eigen::Index at = x.index(k) * cols + c;
        const double grad = g * x.value(k) + l2 * w[at];
        m[at] = b1 * m[at] + (1.0 - b1) * grad;
        v[at] = b2 * v[at] + (1.0 - b2) * grad * grad;
        w[at] -= lr * m[at] / (std::sqrt(v[at]) + options_.adam_eps);
      }
      break;
    }
    case OptimizerKind::kAdaGrad: {
      const double lr = StepLearningRate(t);
      double* sum_sq = state_a_.data();
      for (std::size_t k = 0; k < x.size(); ++k) {
        const Eigen::Index at = x.index(k) * cols + c;
        const double grad = g * x.value(k) + l2 * w[at];
        sum_sq[at] += grad * grad;
        w[at] -= lr / std::sqrt(sum_sq[at] + options_.adagrad_eps) * grad;
      }
      break;
    }
    case OptimizerKind::kFtrl: {
      // McMahan et al. 2013, Algorithm 1. w holds w_t (computed from z and n after the
      // previous update of that coordinate); after updating z and n it is recomputed eagerly,
      // so predictions stay a plain dot product.
      const double alpha = options_.ftrl_alpha;
      const double beta = options_.ftrl_beta;
      const double l1 = options_.ftrl_l1;
      const double ftrl_l2 = options_.ftrl_l2;
      double* z = state_a_.data();
      double* n = state_b_.data();
      for (std::size_t k = 0; k < x.size(); ++k) {
        const Eigen::Index at = x.index(k) * cols + c;
        const double grad = g * x.value(k);
        const double n_new = n[at] + grad * grad;
        const double sigma = (std::sqrt(n_new) - std::sqrt(n[at])) / alpha;
        z[at] += grad - sigma * w[at];
        n[at] = n_new;
        if (std::abs(z[at]) <= l1) {
          w[at] = 0.0;
        } else {
          const double sign = z[at] > 0 ? 1.0 : -1.0;
          w[at] = -(z[at] - sign * l1) / ((beta + std::sqrt(n_new)) / alpha + ftrl_l2);
        }
      }
      break;
    }
  }
  steps_[c] = t + 1;
  if (UsesCumulativeL1(options_)) {
    // Tsuruoka et al.: u grows by l1 times the learning rate of the step just taken.
    total_l1_[c] += options_.l1 * StepLearningRate(t + 1);
    ApplyCumulativeL1(x, c);
  }
}

void LogisticRegression::ApplyCumulativeL1(const FeatureVector& x, Eigen::Index c) {
  const Eigen::Index cols = weights_.cols();
  double* w = weights_.data();
  double* q = applied_l1_.data();
  const double u = total_l1_[c];
  for (std::size_t k = 0; k < x.size(); ++k) {
    const Eigen::Index at = x.index(k) * cols + c;
    const double before = w[at];
    if (before > 0) {
      w[at] = std::max(0.0, before - (u + q[at]));
    } else if (before < 0) {
      w[at] = std::min(0.0, before + (u - q[at]));
    }
    q[at] += w[at] - before;
  }
}

void LogisticRegression::GrowFeatures(FeatureIndex extent) {
  const Eigen::Index needed = extent;
  if (needed <= weights_.rows()) return;
  // Geometric growth keeps the amortized cost per new feature constant.
  const Eigen::Index rows = std::max<Eigen::Index>({needed, weights_.rows() * 3 / 2, 8});
  GrowRows(&weights_, rows);
  if (UsesStateA(options_)) GrowRows(&state_a_, rows);
  if (UsesStateB(options_)) GrowRows(&state_b_, rows);
  if (UsesCumulativeL1(options_)) GrowRows(&applied_l1_, rows);
}

void LogisticRegression::ResizeColumns(Eigen::Index cols) {
  const Eigen::Index old_cols = weights_.cols();
  GrowCols(&weights_, cols);
  if (UsesStateA(options_)) GrowCols(&state_a_, cols);
  if (UsesStateB(options_)) GrowCols(&state_b_, cols);
  if (UsesCumulativeL1(options_)) GrowCols(&applied_l1_, cols);
  intercepts_.conservativeResize(cols);
  for (Eigen::Index c = old_cols; c < cols; ++c) intercepts_[c] = options_.intercept_init;
  steps_.resize(static_cast<std::size_t>(cols), 0);
  total_l1_.resize(static_cast<std::size_t>(cols), 0.0);
}

void LogisticRegression::SwitchToSoftmax(std::size_t num_columns) {
  // softmax(0, z) == (1 - sigmoid(z), sigmoid(z)): the sigmoid column becomes class 1's column
  // and class 0 gets a zero column, so predictions for the two known classes carry over.
  const Eigen::Index cols = static_cast<Eigen::Index>(num_columns);
  SigmoidToSoftmax(&weights_, cols);
  if (UsesStateA(options_)) SigmoidToSoftmax(&state_a_, cols);
  if (UsesStateB(options_)) SigmoidToSoftmax(&state_b_, cols);
  if (UsesCumulativeL1(options_)) SigmoidToSoftmax(&applied_l1_, cols);
  const double intercept = intercepts_[0];
  intercepts_ = Eigen::VectorXd::Constant(cols, options_.intercept_init);
  intercepts_[0] = 0.0;
  intercepts_[1] = intercept;
  const std::uint64_t steps = steps_[0];
  const double total_l1 = total_l1_[0];
  steps_.assign(num_columns, 0);
  total_l1_.assign(num_columns, 0.0);
  steps_[0] = steps_[1] = steps;
  total_l1_[0] = total_l1_[1] = total_l1;
  softmax_ = true;
}

double LogisticRegression::Weight(FeatureIndex j, std::size_t column) const {
  if (static_cast<Eigen::Index>(j) >= weights_.rows() ||
      static_cast<Eigen::Index>(column) >= weights_.cols()) {
    return 0.0;
  }
  return weights_(j, static_cast<Eigen::Index>(column));
}

double LogisticRegression::Intercept(std::size_t column) const {
  return intercepts_[static_cast<Eigen::Index>(column)];
}

std::size_t LogisticRegression::MemoryBytes() const {
  const auto bytes = [](const auto& m) {
    return static_cast<std::size_t>(m.size()) * sizeof(double);
  };
  return sizeof(*this) + bytes(weights_) + bytes(state_a_) + bytes(state_b_) + bytes(applied_l1_) +
         bytes(intercepts_) + steps_.size() * sizeof(std::uint64_t) +
         total_l1_.size() * sizeof(double);
}

void LogisticRegression::Save(cereal::PortableBinaryOutputArchive& archive) const {
  const LogisticRegressionOptions& o = options_;
  archive(kStateVersion);
  archive(static_cast<std::uint8_t>(o.optimizer));
  SaveOptional(archive, o.lr);
  archive(static_cast<std::uint8_t>(o.lr_schedule), o.lr_power, o.intercept_lr, o.intercept_init,
          o.l2, o.l1, o.clip_gradient, o.adam_beta1, o.adam_beta2, o.adam_eps, o.adagrad_eps,
          o.ftrl_alpha, o.ftrl_beta, o.ftrl_l1, o.ftrl_l2, static_cast<std::uint8_t>(o.mode));
  SaveBool(archive, softmax_);
  SaveDense(archive, weights_);
  SaveDense(archive, intercepts_);
  SaveDense(archive, state_a_);
  SaveDense(archive, state_b_);
  SaveDense(archive, applied_l1_);
  SaveVector(archive, steps_);
  SaveVector(archive, total_l1_);
}

void LogisticRegression::Load(cereal::PortableBinaryInputArchive& archive) {
  std::uint32_t version = 0;
  archive(version);
  if (version != kStateVersion) {
    throw cereal::Exception(absl::StrCat("logreg state version ", version,
                                         " is not supported (expected ", kStateVersion, ")"));
  }
  LogisticRegressionOptions o;
  std::uint8_t optimizer = 0;
  std::uint8_t schedule = 0;
  std::uint8_t mode = 0;
  archive(optimizer);
  LoadOptional(archive, &o.lr);
  archive(schedule, o.lr_power, o.intercept_lr, o.intercept_init, o.l2, o.l1, o.clip_gradient,
          o.adam_beta1, o.adam_beta2, o.adam_eps, o.adagrad_eps, o.ftrl_alpha, o.ftrl_beta,
          o.ftrl_l1, o.ftrl_l2, mode);
  if (optimizer > static_cast<std::uint8_t>(OptimizerKind::kFtrl) ||
      schedule > static_cast<std::uint8_t>(LearningRateSchedule::kInverseScaling) ||
      mode > static_cast<std::uint8_t>(LogisticMode::kSoftmax)) {
    throw cereal::Exception("logreg state: unknown enum value");
  }
  o.optimizer = static_cast<OptimizerKind>(optimizer);
  o.lr_schedule = static_cast<LearningRateSchedule>(schedule);
  o.mode = static_cast<LogisticMode>(mode);
  if (absl::Status s = o.Validate(); !s.ok()) {
    throw cereal::Exception(absl::StrCat("logreg state: ", s.message()));
  }
  const bool softmax = LoadBool(archive);
  Matrix weights, state_a, state_b, applied_l1;
  Eigen::VectorXd intercepts;
  std::vector<std::uint64_t> steps;
  std::vector<double> total_l1;
  LoadDense(archive, &weights);
  LoadDense(archive, &intercepts);
  LoadDense(archive, &state_a);
  LoadDense(archive, &state_b);
  LoadDense(archive, &applied_l1);
  LoadVector(archive, &steps);
  LoadVector(archive, &total_l1);
  const auto cols = static_cast<std::size_t>(weights.cols());
  const auto shaped = [&](const Matrix& m, bool used) {
    return used ? (m.rows() == weights.rows() && m.cols() == weights.cols()) : m.size() == 0;
  };
  if (intercepts.size() != weights.cols() || steps.size() != cols || total_l1.size() != cols ||
      !shaped(state_a, UsesStateA(o)) || !shaped(state_b, UsesStateB(o)) ||
      !shaped(applied_l1, UsesCumulativeL1(o)) || (!softmax && cols != 1)) {
    throw cereal::Exception("logreg state: inconsistent shapes");
  }
  // Commit only after everything was read and checked: a failed Load leaves *this unchanged.
  options_ = o;
  base_lr_ = o.BaseLearningRate();
  softmax_ = softmax;
  weights_ = std::move(weights);
  intercepts_ = std::move(intercepts);
  state_a_ = std::move(state_a);
  state_b_ = std::move(state_b);
  applied_l1_ = std::move(applied_l1);
  steps_ = std::move(steps);
  total_l1_ = std::move(total_l1);
}

}  // namespace riffle::learners
