#ifndef RIFFLE_TESTS_SERVICE_SERVICE_TESTING_H_
#define RIFFLE_TESTS_SERVICE_SERVICE_TESTING_H_

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "checkpoints/env.h"
#include "features/event.h"
#include "riffle/v1/riffle.pb.h"

namespace riffle::service::testing {

// The real filesystem with a clock the test moves.
class FakeClockEnv : public checkpoints::EnvWrapper {
 public:
  FakeClockEnv() : EnvWrapper(checkpoints::DefaultEnv()) {}
  std::int64_t NowMicros() override { return now_.load(); }
  void Advance(std::int64_t micros) { now_ += micros; }

 private:
  std::atomic<std::int64_t> now_{1'700'000'000'000'000};
};

// A linearly separable binary stream: label "1" when x0 + x1 > 0. Deterministic for a seed.
struct SeparableStream {
  explicit SeparableStream(std::uint64_t seed) : rng(seed) {}

  // Fills `names`/`values` storage and returns views of one event; `label` gets its class.
  std::vector<features::NamedFeature> Next(std::string* label) {
    std::normal_distribution<double> normal;
    x[0] = normal(rng);
    x[1] = normal(rng);
    x[2] = normal(rng);  // noise feature
    *label = x[0] + x[1] > 0 ? "1" : "0";
    return {{"x0", features::FeatureValue::Number(x[0])},
            {"x1", features::FeatureValue::Number(x[1])},
            {"x2", features::FeatureValue::Number(x[2])}};
  }

  std::mt19937_64 rng;
  double x[3] = {0, 0, 0};
};

inline riffle::v1::ModelSpec LogregSpec() {
  riffle::v1::ModelSpec spec;
  spec.set_learner("logreg");
  (*spec.mutable_learner_options())["lr"] = "0.1";
  spec.add_classes("0");
  spec.add_classes("1");
  return spec;
}

}  // namespace riffle::service::testing

#endif  // RIFFLE_TESTS_SERVICE_SERVICE_TESTING_H_
