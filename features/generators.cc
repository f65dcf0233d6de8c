#include "features/generators.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "learners/option_parsing.h"

namespace riffle::features {
namespace {

using learners::ParseBoolOption;
using learners::ParseDoubleOption;
using learners::ParseUint64Option;

// ---------------------------------------------------------------------------------------------
// Option helpers. Messages name the option and quote the value, like the learners' options.

absl::Status UnknownOption(std::string_view name) {
  return absl::InvalidArgumentError(absl::StrFormat("unknown option '%s'", name));
}

// Integer options are ints in the structs; text above this is rejected before the cast.
constexpr std::uint64_t kMaxIntOption = 1'000'000'000;

absl::Status ParseIntOption(std::string_view name, std::string_view text, int* out) {
  std::uint64_t v = 0;
  if (absl::Status s = ParseUint64Option(name, text, &v); !s.ok()) return s;
  if (v > kMaxIntOption) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s': expected at most %d, got '%s'", name, kMaxIntOption, text));
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

absl::Status RequireIntIn(std::string_view name, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be in %d..%d, got %d", name, lo, hi, value));
  }
  return absl::OkStatus();
}

absl::Status RequireProbability(std::string_view name, double value) {
  if (!(value >= 0.0 && value <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option '%s' must be in [0, 1], got %g", name, value));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Decimal grids (see "Exact output" in the header). A value k / 10^d with an integer k is
// computed as one correctly rounded division, so it is the double nearest to that decimal and
// prints back as it with the shortest round-trip representation.

constexpr double kMicro = 1e6;  // grid 1e-6 for unit-scale values
constexpr double kCents = 100;  // grid 0.01 for money

// Uniform on the grid points of [lo, lo + width) with step 1 / scale, where lo * scale and
// width * scale are integers.
double UniformOnGrid(GeneratorRng& rng, double lo, double width, double scale) {
  const auto first = static_cast<std::int64_t>(std::llround(lo * scale));
  const auto count = static_cast<std::uint64_t>(std::llround(width * scale));
  return static_cast<double>(first + static_cast<std::int64_t>(rng.UniformInt(count))) / scale;
}

// The grid point nearest to v. Adding 0.0 turns -0 into +0, so nothing prints as "-0".
double RoundToGrid(double v, double scale) { return std::round(v * scale) / scale + 0.0; }

std::vector<std::string> NumberNames(int n) {
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

GeneratorColumn ClassColumn(int n_classes) { return {"class", NumberNames(n_classes)}; }

std::vector<GeneratorColumn> NumericColumns(int n) {
  std::vector<GeneratorColumn> columns;
  for (std::string& name : NumberNames(n)) columns.push_back({std::move(name), {}});
  return columns;
}

// Label noise: the draw is made whatever the level, so streams differing only in noise share
// their attributes (see the header).
int MaybeFlip(GeneratorRng& rng, double p, int label) {
  return rng.Uniform() < p ? 1 - label : label;
}

// Rejection sampling of the balance_classes option (Agrawal, STAGGER; as MOA and River): the
// wanted label alternates 1, 0, 1, ... starting with 1.
class Balancer {
 public:
  // True if `label` is the one wanted now (and then the next wanted label flips).
  bool Accept(int label) {
    if (label != want_) return false;
    want_ = 1 - want_;
    return true;
  }

 private:
  int want_ = 1;
};

// ---------------------------------------------------------------------------------------------
// SEA

class Sea final : public Generator {
 public:
  Sea(const SeaOptions& options, std::uint64_t seed)
      : options_(options), rng_(seed), columns_{{"0", {}}, {"1", {}}, {"2", {}}, ClassColumn(2)} {}

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    for (int i = 0; i < 3; ++i) row[i] = UniformOnGrid(rng_, 0.0, 10.0, kMicro);
    row[3] = MaybeFlip(rng_, options_.noise, SeaLabel(options_.variant, row[0], row[1]));
  }

 private:
  SeaOptions options_;
  GeneratorRng rng_;
  std::vector<GeneratorColumn> columns_;
};

// ---------------------------------------------------------------------------------------------
// Agrawal

bool In(double v, double lo, double hi) { return lo <= v && v <= hi; }

// Group A of the paper's functions 1-10 (index 0-9).
bool AgrawalGroupA(int function, const AgrawalAttributes& a) {
  const bool young = a.age < 40;
  const bool middle = a.age >= 40 && a.age < 60;
  const double total = a.salary + a.commission;
  switch (function) {
    case 0:
      return a.age < 40 || a.age >= 60;
    case 1:
      return young    ? In(a.salary, 50000, 100000)
             : middle ? In(a.salary, 75000, 125000)
                      : In(a.salary, 25000, 75000);
    case 2:
      return young ? a.elevel <= 1 : middle ? In(a.elevel, 1, 3) : a.elevel >= 2;
    case 3:
      if (young) return a.elevel <= 1 ? In(a.salary, 25000, 75000) : In(a.salary, 50000, 100000);
      if (middle) {
        return In(a.elevel, 1, 3) ? In(a.salary, 50000, 100000) : In(a.salary, 75000, 125000);
      }
      return a.elevel >= 2 ? In(a.salary, 50000, 100000) : In(a.salary, 25000, 75000);
    case 4:
      if (young) {
        return In(a.salary, 50000, 100000) ? In(a.loan, 100000, 300000)
                                           : In(a.loan, 200000, 400000);
      }
      if (middle) {
        return In(a.salary, 75000, 125000) ? In(a.loan, 200000, 400000)
                                           : In(a.loan, 300000, 500000);
      }
      return In(a.salary, 25000, 75000) ? In(a.loan, 300000, 500000) : In(a.loan, 100000, 300000);
    case 5:
      return young    ? In(total, 50000, 100000)
             : middle ? In(total, 75000, 125000)
                      : In(total, 25000, 75000);
    case 6:
      return 2.0 * total / 3.0 - a.loan / 5.0 - 20000.0 > 0;
    case 7:
      return 2.0 * total / 3.0 - 5000.0 * a.elevel - 20000.0 > 0;
    case 8:
      return 2.0 * total / 3.0 - 5000.0 * a.elevel - a.loan / 5.0 - 10000.0 > 0;
    case 9: {
      const double equity = a.hyears >= 20 ? a.hvalue * (a.hyears - 20) / 10.0 : 0.0;
      return 2.0 * total / 3.0 - 5000.0 * a.elevel + equity / 5.0 - 10000.0 > 0;
    }
    default:
      assert(false && "Agrawal function out of range");
      return false;
  }
}

class Agrawal final : public Generator {
 public:
  Agrawal(const AgrawalOptions& options, std::uint64_t seed)
      : options_(options), rng_(seed), columns_{{"salary", {}}, {"commission", {}}, {"age", {}},
                                                {"elevel", {}}, {"car", {}},        {"zipcode", {}},
                                                {"hvalue", {}}, {"hyears", {}},     {"loan", {}},
                                                ClassColumn(2)} {}

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    AgrawalAttributes a;
    int label = 0;
    do {
      a = Draw();
      label = AgrawalLabel(options_.classification_function, a);
    } while (options_.balance_classes && !balancer_.Accept(label));
    Perturb(&a);
    row[0] = a.salary;
    row[1] = a.commission;
    row[2] = a.age;
    row[3] = a.elevel;
    row[4] = a.car;
    row[5] = a.zipcode;
    row[6] = a.hvalue;
    row[7] = a.hyears;
    row[8] = a.loan;
    row[9] = label;
  }

 private:
  // The order of draws is MOA's and River's.
  AgrawalAttributes Draw() {
    AgrawalAttributes a;
    a.salary = UniformOnGrid(rng_, 20000, 130000, kCents);
    a.commission = a.salary >= 75000 ? 0.0 : UniformOnGrid(rng_, 10000, 65000, kCents);
    a.age = 20 + static_cast<int>(rng_.UniformInt(61));
    a.elevel = static_cast<int>(rng_.UniformInt(5));
    a.car = 1 + static_cast<int>(rng_.UniformInt(20));
    a.zipcode = static_cast<int>(rng_.UniformInt(9));
    const double k = 9 - a.zipcode;
    a.hvalue = UniformOnGrid(rng_, k * 50000, k * 100000, kCents);
    a.hyears = 1 + static_cast<int>(rng_.UniformInt(30));
    a.loan = UniformOnGrid(rng_, 0, 500000, kCents);
    return a;
  }

  // v + range * p * u, u uniform on [-1, 1), clamped to [lo, hi] with range = hi - lo.
  double Perturbed(double v, double lo, double hi) {
    const double u = 2.0 * (rng_.Uniform() - 0.5);
    return std::clamp(v + (hi - lo) * options_.perturbation * u, lo, hi);
  }

  // In MOA's and River's order. Runs (and draws) at every level, perturbation 0 leaving the
  // values as they are; commission's draw is made even when it stays 0. So every row takes the
  // same draws and streams differing only in perturbation share their unperturbed rows.
  void Perturb(AgrawalAttributes* a) {
    a->salary = RoundToGrid(Perturbed(a->salary, 20000, 150000), kCents);
    const double commission = Perturbed(a->commission, 10000, 75000);
    if (a->commission > 0) a->commission = RoundToGrid(commission, kCents);
    // Java's Math.round (half up), as MOA.
    a->age = static_cast<int>(std::floor(Perturbed(a->age, 20, 80) + 0.5));
    const double k = 9 - a->zipcode;
    a->hvalue = RoundToGrid(Perturbed(a->hvalue, k * 50000, k * 150000), kCents);
    a->hyears = static_cast<int>(std::floor(Perturbed(a->hyears, 1, 30) + 0.5));
    a->loan = RoundToGrid(Perturbed(a->loan, 0, 500000), kCents);
  }

  AgrawalOptions options_;
  GeneratorRng rng_;
  Balancer balancer_;
  std::vector<GeneratorColumn> columns_;
};

// ---------------------------------------------------------------------------------------------
// RandomRBF and RandomRBFDrift: one implementation; without drift nothing moves.

class RandomRbf final : public Generator {
 public:
  // The static generator: centroids that never move.
  RandomRbf(const RandomRbfOptions& options, std::uint64_t seed)
      : RandomRbf(Still(options), seed) {}

  RandomRbf(const RandomRbfDriftOptions& options, std::uint64_t seed)
      : n_features_(static_cast<std::size_t>(options.n_features)),
        change_speed_(options.change_speed),
        rng_(seed),
        columns_(NumericColumns(options.n_features)),
        direction_(n_features_) {
    columns_.push_back(ClassColumn(options.n_classes));
    GeneratorRng model(options.seed_model.value_or(DeriveSeed(seed, 1)));
    const auto n_centroids = static_cast<std::size_t>(options.n_centroids);
    centres_.resize(n_centroids * n_features_);
    labels_.resize(n_centroids);
    std_devs_.resize(n_centroids);
    cumulative_weights_.resize(n_centroids);
    double total_weight = 0;
    for (std::size_t c = 0; c < n_centroids; ++c) {
      for (std::size_t j = 0; j < n_features_; ++j) centres_[c * n_features_ + j] = model.Uniform();
      labels_[c] =
          static_cast<int>(model.UniformInt(static_cast<std::uint64_t>(options.n_classes)));
      std_devs_[c] = model.Uniform();
      total_weight += model.Uniform();
      cumulative_weights_[c] = total_weight;
    }
    // Speeds of the moving centroids continue the model's stream, as MOA (River restarts it,
    // which correlates the speeds with the first centroids' coordinates).
    if (change_speed_ > 0) {
      const auto moving =
          std::min(n_centroids, static_cast<std::size_t>(options.n_drift_centroids));
      speeds_.resize(moving * n_features_);
      for (std::size_t c = 0; c < moving; ++c) {
        double norm = 0;
        for (std::size_t j = 0; j < n_features_; ++j) {
          const double s = model.Uniform();
          speeds_[c * n_features_ + j] = s;
          norm += s * s;
        }
        norm = std::sqrt(norm);
        for (std::size_t j = 0; j < n_features_; ++j) {
          speeds_[c * n_features_ + j] = norm > 0 ? speeds_[c * n_features_ + j] / norm : 0.0;
        }
      }
    }
  }

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    MoveCentroids();
    const std::size_t c = PickCentroid();
    double magnitude = 0;
    for (std::size_t j = 0; j < n_features_; ++j) {
      direction_[j] = rng_.Uniform() * 2.0 - 1.0;
      magnitude += direction_[j] * direction_[j];
    }
    magnitude = std::sqrt(magnitude);
    // A zero direction (probability ~2^-53 per coordinate, all at once) puts the example on the
    // centre instead of dividing by zero.
    const double scale = magnitude > 0 ? rng_.Normal() * std_devs_[c] / magnitude : 0.0;
    const double* centre = &centres_[c * n_features_];
    for (std::size_t j = 0; j < n_features_; ++j) {
      row[j] = RoundToGrid(centre[j] + direction_[j] * scale, kMicro);
    }
    row[n_features_] = labels_[c];
  }

 private:
  static RandomRbfDriftOptions Still(const RandomRbfOptions& options) {
    RandomRbfDriftOptions still;
    static_cast<RandomRbfOptions&>(still) = options;
    still.change_speed = 0.0;
    return still;
  }

  void MoveCentroids() {
    const std::size_t n = speeds_.size();
    for (std::size_t k = 0; k < n; ++k) {
      double& x = centres_[k];
      x += speeds_[k] * change_speed_;
      if (x > 1 || x < 0) {
        x = x > 1 ? 1.0 : 0.0;
        speeds_[k] = -speeds_[k];
      }
    }
  }

  // The first centroid whose cumulative weight exceeds u * total (River's and MOA's linear
  // scan, by binary search).
  std::size_t PickCentroid() {
    const double target = rng_.Uniform() * cumulative_weights_.back();
    const auto it =
        std::upper_bound(cumulative_weights_.begin(), cumulative_weights_.end(), target);
    return std::min(static_cast<std::size_t>(it - cumulative_weights_.begin()),
                    cumulative_weights_.size() - 1);
  }

  std::size_t n_features_;
  double change_speed_;
  GeneratorRng rng_;
  std::vector<GeneratorColumn> columns_;
  std::vector<double> centres_;  // n_centroids x n_features, row-major
  std::vector<int> labels_;
  std::vector<double> std_devs_;
  std::vector<double> cumulative_weights_;
  std::vector<double> speeds_;  // the first n_drift_centroids rows of centres_' shape
  std::vector<double> direction_;
};

// ---------------------------------------------------------------------------------------------
// Hyperplane

class Hyperplane final : public Generator {
 public:
  Hyperplane(const HyperplaneOptions& options, std::uint64_t seed)
      : options_(options), rng_(seed), columns_(NumericColumns(options.n_features)) {
    columns_.push_back(ClassColumn(2));
    weights_.resize(static_cast<std::size_t>(options.n_features));
    for (double& w : weights_) w = rng_.Uniform();
    directions_.assign(static_cast<std::size_t>(options.n_drift_features), 1.0);
  }

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    const std::size_t n = weights_.size();
    double sum_weights = 0;
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      row[i] = UniformOnGrid(rng_, 0.0, 1.0, kMicro);
      sum_weights += weights_[i];
      sum += weights_[i] * row[i];
    }
    row[n] = MaybeFlip(rng_, options_.noise_percentage, sum >= 0.5 * sum_weights ? 1 : 0);
    for (std::size_t i = 0; i < directions_.size(); ++i) {
      weights_[i] += directions_[i] * options_.mag_change;
      if (rng_.Uniform() < options_.sigma) directions_[i] = -directions_[i];
    }
  }

 private:
  HyperplaneOptions options_;
  GeneratorRng rng_;
  std::vector<GeneratorColumn> columns_;
  std::vector<double> weights_;
  std::vector<double> directions_;
};

// ---------------------------------------------------------------------------------------------
// LED

constexpr int kLedRelevant = 7;
constexpr int kLedWithIrrelevant = 24;

class Led final : public Generator {
 public:
  Led(const LedOptions& options, std::uint64_t seed)
      : options_(options),
        rng_(seed),
        columns_(NumericColumns(options.irrelevant_features ? kLedWithIrrelevant : kLedRelevant)) {
    columns_.push_back(ClassColumn(10));
  }

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    const auto digit = static_cast<std::size_t>(rng_.UniformInt(10));
    for (int i = 0; i < kLedRelevant; ++i) {
      row[i] = MaybeFlip(rng_, options_.noise_percentage, kLedSegments[digit][i]);
    }
    const std::size_t n = columns_.size() - 1;
    for (std::size_t i = kLedRelevant; i < n; ++i) row[i] = static_cast<double>(rng_.Bits() >> 63);
    row[n] = static_cast<double>(digit);
  }

 private:
  LedOptions options_;
  GeneratorRng rng_;
  std::vector<GeneratorColumn> columns_;
};

// ---------------------------------------------------------------------------------------------
// STAGGER

class Stagger final : public Generator {
 public:
  Stagger(const StaggerOptions& options, std::uint64_t seed)
      : options_(options),
        rng_(seed),
        columns_{{"size", {"small", "medium", "large"}},
                 {"color", {"red", "blue", "green"}},
                 {"shape", {"circle", "square", "triangle"}},
                 ClassColumn(2)} {}

  const std::vector<GeneratorColumn>& Columns() const override { return columns_; }

  void Next(std::span<double> row) override {
    int size = 0;
    int color = 0;
    int shape = 0;
    int label = 0;
    do {
      size = static_cast<int>(rng_.UniformInt(3));
      color = static_cast<int>(rng_.UniformInt(3));
      shape = static_cast<int>(rng_.UniformInt(3));
      label = StaggerLabel(options_.classification_function, size, color, shape);
    } while (options_.balance_classes && !balancer_.Accept(label));
    row[0] = size;
    row[1] = color;
    row[2] = shape;
    row[3] = label;
  }

 private:
  StaggerOptions options_;
  GeneratorRng rng_;
  Balancer balancer_;
  std::vector<GeneratorColumn> columns_;
};

// ---------------------------------------------------------------------------------------------
// Concept drift

class ConceptDrift final : public Generator {
 public:
  ConceptDrift(std::unique_ptr<Generator> before, std::unique_ptr<Generator> after,
               const ConceptDriftOptions& options, std::uint64_t seed)
      : before_(std::move(before)), after_(std::move(after)), options_(options), rng_(seed) {}

  const std::vector<GeneratorColumn>& Columns() const override { return before_->Columns(); }

  void Next(std::span<double> row) override {
    ++t_;
    double p_after = 0;
    if (options_.width == 0) {
      p_after = t_ > options_.position ? 1.0 : 0.0;
    } else {
      // Signed difference in double: t and position are below 2^53 in any real stream.
      const double d = static_cast<double>(t_) - static_cast<double>(options_.position);
      p_after = 1.0 / (1.0 + std::exp(-4.0 * d / static_cast<double>(options_.width)));
    }
    // One draw per row whichever concept is used, so the choice does not depend on them.
    (rng_.Uniform() < p_after ? after_ : before_)->Next(row);
  }

 private:
  std::unique_ptr<Generator> before_;
  std::unique_ptr<Generator> after_;
  ConceptDriftOptions options_;
  GeneratorRng rng_;
  std::uint64_t t_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Factory

// Options from River's defaults, `options` applied in order, validated; then the generator.
template <typename G, typename Options>
absl::StatusOr<std::unique_ptr<Generator>> Build(const learners::OptionList& options,
                                                 std::uint64_t seed) {
  Options o;
  for (const auto& [name, value] : options) {
    if (absl::Status s = o.Set(name, value); !s.ok()) return s;
  }
  if (absl::Status s = o.Validate(); !s.ok()) return s;
  return std::unique_ptr<Generator>(std::make_unique<G>(o, seed));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// GeneratorRng

// GCC and Clang's 128-bit integer; __extension__ marks the use as deliberate under -Wpedantic.
__extension__ using Uint128 = unsigned __int128;

std::uint64_t GeneratorRng::UniformInt(std::uint64_t n) {
  assert(n >= 1);
  // Lemire's method: the high word of x * n is uniform on [0, n) once the low word is outside
  // the 2^64 mod n values that would over-represent some results.
  Uint128 m = static_cast<Uint128>(engine_()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (low < threshold) {
      m = static_cast<Uint128>(engine_()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

double GeneratorRng::Normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  double u = 0;
  double v = 0;
  double s = 0;
  do {
    u = 2.0 * Uniform() - 1.0;
    v = 2.0 * Uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double factor = std::sqrt(-2.0 * std::log(s) / s);
  spare_normal_ = v * factor;
  has_spare_normal_ = true;
  return u * factor;
}

std::uint64_t DeriveSeed(std::uint64_t seed, std::uint64_t stream) {
  // SplitMix64 (Steele, Lea & Flood 2014) finalizer.
  std::uint64_t z = seed + (stream + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// ---------------------------------------------------------------------------------------------
// Options

absl::Status SeaOptions::Validate() const {
  if (absl::Status s = RequireIntIn("variant", variant, 0, 3); !s.ok()) return s;
  return RequireProbability("noise", noise);
}

absl::Status SeaOptions::Set(std::string_view name, std::string_view value) {
  if (name == "variant") return ParseIntOption(name, value, &variant);
  if (name == "noise") return ParseDoubleOption(name, value, &noise);
  return UnknownOption(name);
}

int SeaLabel(int variant, double x0, double x1) {
  static constexpr double kThresholds[] = {8.0, 9.0, 7.0, 9.5};
  return x0 + x1 > kThresholds[variant] ? 1 : 0;
}

absl::Status AgrawalOptions::Validate() const {
  if (absl::Status s = RequireIntIn("classification_function", classification_function, 0, 9);
      !s.ok()) {
    return s;
  }
  return RequireProbability("perturbation", perturbation);
}

absl::Status AgrawalOptions::Set(std::string_view name, std::string_view value) {
  if (name == "classification_function") {
    return ParseIntOption(name, value, &classification_function);
  }
  if (name == "balance_classes") return ParseBoolOption(name, value, &balance_classes);
  if (name == "perturbation") return ParseDoubleOption(name, value, &perturbation);
  return UnknownOption(name);
}

int AgrawalLabel(int function, const AgrawalAttributes& a) {
  const bool group_a = AgrawalGroupA(function, a);
  // River's labels: group A is 1 for the range functions 0-5 and 0 for the disposable-income
  // functions 6-9.
  return function <= 5 ? (group_a ? 1 : 0) : (group_a ? 0 : 1);
}

absl::Status RandomRbfOptions::Validate() const {
  if (absl::Status s = RequireIntIn("n_classes", n_classes, 2, 10000); !s.ok()) return s;
  if (absl::Status s = RequireIntIn("n_features", n_features, 1, 100000); !s.ok()) return s;
  return RequireIntIn("n_centroids", n_centroids, 1, 1000000);
}

absl::Status RandomRbfOptions::Set(std::string_view name, std::string_view value) {
  if (name == "n_classes") return ParseIntOption(name, value, &n_classes);
  if (name == "n_features") return ParseIntOption(name, value, &n_features);
  if (name == "n_centroids") return ParseIntOption(name, value, &n_centroids);
  if (name == "seed_model") {
    std::uint64_t v = 0;
    if (absl::Status s = ParseUint64Option(name, value, &v); !s.ok()) return s;
    seed_model = v;
    return absl::OkStatus();
  }
  return UnknownOption(name);
}

absl::Status RandomRbfDriftOptions::Validate() const {
  if (absl::Status s = RandomRbfOptions::Validate(); !s.ok()) return s;
  if (!(change_speed >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option 'change_speed' must be >= 0, got %g", change_speed));
  }
  return RequireIntIn("n_drift_centroids", n_drift_centroids, 0, 1000000000);
}

absl::Status RandomRbfDriftOptions::Set(std::string_view name, std::string_view value) {
  if (name == "change_speed") return ParseDoubleOption(name, value, &change_speed);
  if (name == "n_drift_centroids") return ParseIntOption(name, value, &n_drift_centroids);
  return RandomRbfOptions::Set(name, value);
}

absl::Status HyperplaneOptions::Validate() const {
  if (absl::Status s = RequireIntIn("n_features", n_features, 1, 100000); !s.ok()) return s;
  if (absl::Status s = RequireIntIn("n_drift_features", n_drift_features, 0, n_features); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireProbability("mag_change", mag_change); !s.ok()) return s;
  if (absl::Status s = RequireProbability("noise_percentage", noise_percentage); !s.ok()) return s;
  return RequireProbability("sigma", sigma);
}

absl::Status HyperplaneOptions::Set(std::string_view name, std::string_view value) {
  if (name == "n_features") return ParseIntOption(name, value, &n_features);
  if (name == "n_drift_features") return ParseIntOption(name, value, &n_drift_features);
  if (name == "mag_change") return ParseDoubleOption(name, value, &mag_change);
  if (name == "noise_percentage") return ParseDoubleOption(name, value, &noise_percentage);
  if (name == "sigma") return ParseDoubleOption(name, value, &sigma);
  return UnknownOption(name);
}

absl::Status LedOptions::Validate() const {
  return RequireProbability("noise_percentage", noise_percentage);
}

absl::Status LedOptions::Set(std::string_view name, std::string_view value) {
  if (name == "noise_percentage") return ParseDoubleOption(name, value, &noise_percentage);
  if (name == "irrelevant_features") return ParseBoolOption(name, value, &irrelevant_features);
  return UnknownOption(name);
}

absl::Status StaggerOptions::Validate() const {
  return RequireIntIn("classification_function", classification_function, 0, 2);
}

absl::Status StaggerOptions::Set(std::string_view name, std::string_view value) {
  if (name == "classification_function") {
    return ParseIntOption(name, value, &classification_function);
  }
  if (name == "balance_classes") return ParseBoolOption(name, value, &balance_classes);
  return UnknownOption(name);
}

int StaggerLabel(int function, int size, int color, int shape) {
  constexpr int kSmall = 0, kRed = 0, kGreen = 2, kCircle = 0;
  switch (function) {
    case 0:
      return size == kSmall && color == kRed ? 1 : 0;
    case 1:
      return color == kGreen || shape == kCircle ? 1 : 0;
    default:
      return size != kSmall ? 1 : 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Factories

std::vector<std::string> GeneratorNames() {
  return {"sea", "agrawal", "random_rbf", "random_rbf_drift", "hyperplane", "led", "stagger"};
}

absl::StatusOr<std::unique_ptr<Generator>> CreateGenerator(std::string_view name,
                                                           const learners::OptionList& options,
                                                           std::uint64_t seed) {
  absl::StatusOr<std::unique_ptr<Generator>> made;
  if (name == "sea") {
    made = Build<Sea, SeaOptions>(options, seed);
  } else if (name == "agrawal") {
    made = Build<Agrawal, AgrawalOptions>(options, seed);
  } else if (name == "random_rbf") {
    made = Build<RandomRbf, RandomRbfOptions>(options, seed);
  } else if (name == "random_rbf_drift") {
    made = Build<RandomRbf, RandomRbfDriftOptions>(options, seed);
  } else if (name == "hyperplane") {
    made = Build<Hyperplane, HyperplaneOptions>(options, seed);
  } else if (name == "led") {
    made = Build<Led, LedOptions>(options, seed);
  } else if (name == "stagger") {
    made = Build<Stagger, StaggerOptions>(options, seed);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat("unknown generator '%s' (generators: %s)",
                                                      name, absl::StrJoin(GeneratorNames(), ", ")));
  }
  if (!made.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("generator '%s': %s", name, made.status().message()));
  }
  return made;
}

absl::StatusOr<std::unique_ptr<Generator>> CreateConceptDrift(std::unique_ptr<Generator> before,
                                                              std::unique_ptr<Generator> after,
                                                              const ConceptDriftOptions& options,
                                                              std::uint64_t seed) {
  if (before == nullptr || after == nullptr) {
    return absl::InvalidArgumentError("concept drift: both concepts are required");
  }
  const std::vector<GeneratorColumn>& a = before->Columns();
  const std::vector<GeneratorColumn>& b = after->Columns();
  if (a != b) {
    const auto describe = [](const std::vector<GeneratorColumn>& columns) {
      return absl::StrFormat("%d columns, %d classes", columns.size(),
                             columns.back().values.size());
    };
    return absl::InvalidArgumentError(absl::StrFormat(
        "concept drift: both concepts must have the same columns and classes (before: %s; "
        "after: %s)",
        describe(a), describe(b)));
  }
  return std::unique_ptr<Generator>(
      std::make_unique<ConceptDrift>(std::move(before), std::move(after), options, seed));
}

}  // namespace riffle::features
