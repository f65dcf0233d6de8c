#ifndef RIFFLE_FEATURES_GENERATORS_H_
#define RIFFLE_FEATURES_GENERATORS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/registry.h"

// The classic synthetic stream generators of the data-stream literature, as MOA (Bifet et al.
// 2010) and River define them: SEA, Agrawal, RandomRBF (and its drifting variant), rotating
// Hyperplane, LED and STAGGER, plus MOA's ConceptDriftStream to join two concepts with a
// sigmoid transition. Column names, option names and defaults are River's
// (river.datasets.synth); the definitions are the published ones. Where River departs from its
// paper, the paper (and MOA) wins and the option's comment says so.
//
// Determinism: a generator is a pure function of its options and a 64-bit seed, on every
// platform. Randomness comes from std::mt19937_64 (whose output the C++ standard fixes) through
// the conversions in GeneratorRng, written here rather than taken from <random>'s distributions,
// whose algorithms differ between standard libraries. The only libm calls are std::log (normal
// deviates) and std::exp (drift sigmoid); glibc computes both to within one ulp, and a
// last-bit difference would change a printed digit only with negligible probability. Streams do
// not match River's bit for bit (River uses Python's random module).
//
// Exact output: every numeric attribute is drawn on (or rounded to) a fixed decimal grid, e.g.
// multiples of 1e-6 for SEA and cents for Agrawal's money attributes, and the class is computed
// from those grid values. Printed with the shortest round-trip representation (a few digits),
// the CSV is exact: parsing a row's values as doubles and applying the class function gives the
// row's label (before label noise). The grid is far finer than anything a learner can resolve.

namespace riffle::features {

// The random source of every generator: std::mt19937_64 seeded with one 64-bit value, and
// portable conversions. Not thread-safe.
class GeneratorRng {
 public:
  explicit GeneratorRng(std::uint64_t seed) : engine_(seed) {}

  // The next raw 64-bit output of mt19937_64.
  std::uint64_t Bits() { return engine_(); }
  // Uniform on [0, 1): the top 53 bits of one draw times 2^-53.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform integer on [0, n) for n >= 1, without bias (Lemire 2019, "Fast random integer
  // generation in an interval": multiply-shift with rejection).
  std::uint64_t UniformInt(std::uint64_t n);
  // Standard normal deviate by Marsaglia's polar method; deviates come in pairs and the second
  // of a pair is returned by the next call.
  double Normal();

 private:
  std::mt19937_64 engine_;
  double spare_normal_ = 0.0;
  bool has_spare_normal_ = false;
};

// An independent seed for sub-stream `stream` of `seed` (SplitMix64 of seed + (stream + 1) * the
// golden-ratio constant), e.g. for the model of a RandomRBF or the second concept of a drift.
std::uint64_t DeriveSeed(std::uint64_t seed, std::uint64_t stream);

// One column of a generated table.
struct GeneratorColumn {
  std::string name;
  // A nominal column's values, in code order: a row holds the index of its value. Empty for a
  // numeric column.
  std::vector<std::string> values;

  bool IsNominal() const { return !values.empty(); }
  bool operator==(const GeneratorColumn&) const = default;
};

// An endless stream of labelled examples.
//
// Columns(): the attributes in River's order, then the target, always named "class" and
// nominal (its values are "0", "1", ...). Next() writes one value per column: numeric values
// as they are, nominal ones (the class included) as the index of their value.
//
// Thread-safety: none; a generator is a stateful stream owned by one thread.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual const std::vector<GeneratorColumn>& Columns() const = 0;
  // `row` must have Columns().size() elements.
  virtual void Next(std::span<double> row) = 0;
};

// Every option struct below has River's defaults, a Validate() whose InvalidArgument names the
// option and the rejected value, and a Set(name, value) taking text (from `riffle gen --set`).
// Label noise and perturbation draw their random numbers whatever their level, so two streams
// with the same seed that differ only in noise share their attribute values row for row.

// SEA (Street & Kim 2001, "A streaming ensemble algorithm (SEA) for large-scale
// classification"). Three attributes "0", "1", "2" uniform on [0, 10) (grid 1e-6); only the
// first two are relevant: class 1 iff x0 + x1 > threshold (as MOA and River; River's True).
struct SeaOptions {
  // The threshold: 0 → 8, 1 → 9, 2 → 7, 3 → 9.5.
  int variant = 0;
  // Probability that the label is flipped, in [0, 1].
  double noise = 0.0;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};
// The noise-free SEA label of (x0, x1).
int SeaLabel(int variant, double x0, double x1);

// Agrawal (Agrawal, Imielinski & Swami 1993, "Database mining: a performance perspective"):
// loan applications with nine attributes and ten classification functions.
//   salary      uniform on [20k, 150k)                      (grid: cents)
//   commission  0 if salary >= 75k, else uniform [10k, 75k)  (cents)
//   age         integer uniform in 20..80
//   elevel      integer uniform in 0..4
//   car         integer uniform in 1..20
//   zipcode     integer uniform in 0..8
//   hvalue      uniform on [k * 50k, k * 150k) with k = 9 - zipcode  (cents)
//   hyears      integer uniform in 1..30
//   loan        uniform on [0, 500k)                         (cents)
// Labels follow River: functions 0-5 give 1 to the paper's group A, functions 6-9 give 0 to
// group A (MOA gives 0 to group A throughout). The functions are the paper's 1-10.
// Departures from River, all towards the paper and MOA: commission's upper bound is 75k (River
// draws up to 85k), hvalue uses k = 9 - zipcode (River: 8 - zipcode, so zipcode 8 has house
// value 0), function 4 is the paper's function 5 (River's version compares salary with loan
// ranges and gives group A to 20% of rows instead of 40%), the disposable-income functions
// test disposable > 0 (River: > 1), and perturbed house values stay in their zipcode's range
// (MOA and River clamp them with swapped bounds).
struct AgrawalOptions {
  // 0..9: the paper's function 1..10.
  int classification_function = 0;
  // If true, rows are drawn until the label alternates 1, 0, 1, 0, ... (rejection sampling).
  bool balance_classes = false;
  // In [0, 1]. After labelling, each numeric attribute v (commission only if nonzero) moves
  // to v + range * p * u with u uniform on [-1, 1) and range the width of its interval, then is
  // clamped to that interval; age and hyears are rounded to integers. The label is not changed:
  // this blurs the class boundaries (the paper's perturbation factor, as MOA and River).
  double perturbation = 0.0;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};
struct AgrawalAttributes {
  double salary = 0;
  double commission = 0;
  int age = 0;
  int elevel = 0;
  int car = 0;
  int zipcode = 0;
  double hvalue = 0;
  int hyears = 0;
  double loan = 0;
};
// The label of function `function` (0..9), in River's convention above.
int AgrawalLabel(int function, const AgrawalAttributes& a);

// Random radial basis functions (MOA's RandomRBFGenerator; Bifet et al.). A model of
// n_centroids centroids, each with a centre uniform in [0, 1)^n_features, a class uniform in
// 0..n_classes-1, a standard deviation uniform on [0, 1) and a weight uniform on [0, 1), is
// drawn once. Each example picks a centroid with probability proportional to its weight and
// sits at centre + d * s: d a random direction (coordinates uniform on [-1, 1), normalized),
// s a normal deviate times the centroid's standard deviation. Attributes "0".."n_features-1"
// (rounded to 1e-6); the class is the centroid's.
struct RandomRbfOptions {
  int n_classes = 2;     // 2..10000
  int n_features = 10;   // 1..100000
  int n_centroids = 50;  // 1..1000000
  // Seed of the model (River's seed_model). Unset: derived from the stream's seed, so each
  // --seed gives a different concept; set it to keep the concept and vary the sample.
  std::optional<std::uint64_t> seed_model;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};
// RandomRBF with moving centroids (MOA's RandomRBFGeneratorDrift, River's RandomRBFDrift):
// before each example, each of the first n_drift_centroids centroids moves by change_speed
// along its own unit direction (coordinates drawn uniform on [0, 1) from the model's random
// stream after the centroids, then normalized); a coordinate leaving [0, 1] is clamped and
// that coordinate of the direction reversed.
struct RandomRbfDriftOptions : RandomRbfOptions {
  double change_speed = 0.0;  // >= 0
  // As River, a value above n_centroids means all centroids move.
  int n_drift_centroids = 50;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};

// Rotating hyperplane (Hulten, Spencer & Domingos 2001; MOA's HyperplaneGenerator). Attributes
// "0".."n_features-1" uniform on [0, 1) (grid 1e-6); weights w start uniform on [0, 1);
// class 1 iff sum(w_i x_i) >= sum(w_i) / 2. After each example, each of the first
// n_drift_features weights moves by mag_change in its direction (+1 at first), which reverses
// with probability sigma.
struct HyperplaneOptions {
  int n_features = 10;       // 1..100000
  int n_drift_features = 2;  // 0..n_features
  double mag_change = 0.0;   // [0, 1]
  // Probability that the label is flipped, in [0, 1]. Exactly this probability, as MOA;
  // River's test `0.01 + u <= p` flips with probability p - 0.01.
  double noise_percentage = 0.05;
  // Probability that a drifting weight reverses direction, in [0, 1] (exact, as noise).
  double sigma = 0.1;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};

// LED display (Breiman, Friedman, Olshen & Stone 1984, "Classification and Regression Trees").
// The class is a digit uniform in 0..9; attributes "0".."6" are its seven segments (0/1, in
// kLedSegments' order), each inverted with probability noise_percentage; with
// irrelevant_features, attributes "7".."23" are 17 random bits.
struct LedOptions {
  // In [0, 1]; exact (River's `0.01 + u <= p` inverts with probability p - 0.01).
  double noise_percentage = 0.0;
  bool irrelevant_features = false;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};
// Segments of each digit: top, upper left, upper right, middle, lower left, lower right, bottom.
inline constexpr std::array<std::array<int, 7>, 10> kLedSegments = {{
    {1, 1, 1, 0, 1, 1, 1},  // 0
    {0, 0, 1, 0, 0, 1, 0},  // 1
    {1, 0, 1, 1, 1, 0, 1},  // 2
    {1, 0, 1, 1, 0, 1, 1},  // 3
    {0, 1, 1, 1, 0, 1, 0},  // 4
    {1, 1, 0, 1, 0, 1, 1},  // 5
    {1, 1, 0, 1, 1, 1, 1},  // 6
    {1, 0, 1, 0, 0, 1, 0},  // 7
    {1, 1, 1, 1, 1, 1, 1},  // 8
    {1, 1, 1, 1, 0, 1, 1},  // 9
}};

// STAGGER concepts (Schlimmer & Granger 1986, "Incremental learning from noisy data"). Nominal
// attributes size (small, medium, large), color (red, blue, green) and shape (circle, square,
// triangle), each uniform.
struct StaggerOptions {
  // 0: class 1 iff size = small and color = red; 1: iff color = green or shape = circle;
  // 2: iff size = medium or large.
  int classification_function = 0;
  // As AgrawalOptions::balance_classes.
  bool balance_classes = false;

  absl::Status Validate() const;
  absl::Status Set(std::string_view name, std::string_view value);
};
// The STAGGER label; size, color and shape are value indices (0..2) in the order above.
int StaggerLabel(int function, int size, int color, int shape);

// The names CreateGenerator() accepts: sea, agrawal, random_rbf, random_rbf_drift, hyperplane,
// led, stagger.
std::vector<std::string> GeneratorNames();

// Builds generator `name` with River's defaults overridden by `options` (applied in order) and
// validated. InvalidArgument names the unknown generator, the unknown option (listing the
// known ones) or the invalid value.
absl::StatusOr<std::unique_ptr<Generator>> CreateGenerator(std::string_view name,
                                                           const learners::OptionList& options,
                                                           std::uint64_t seed);

// MOA's ConceptDriftStream (River's ConceptDriftStream): example t (1-based) comes from the
// second concept with probability 1 / (1 + exp(-4 (t - position) / width)), else from the
// first. Each concept advances only when it is used.
struct ConceptDriftOptions {
  std::uint64_t position = 5000;
  // Rows of the transition; 0 is an abrupt switch (rows t <= position from the first concept,
  // later rows from the second).
  std::uint64_t width = 1000;
};
// Joins `before` and `after`, which must have the same columns (InvalidArgument otherwise).
// `seed` drives only the choice between them.
absl::StatusOr<std::unique_ptr<Generator>> CreateConceptDrift(std::unique_ptr<Generator> before,
                                                              std::unique_ptr<Generator> after,
                                                              const ConceptDriftOptions& options,
                                                              std::uint64_t seed);

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_GENERATORS_H_
