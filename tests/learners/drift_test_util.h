#ifndef RIFFLE_TESTS_LEARNERS_DRIFT_TEST_UTIL_H_
#define RIFFLE_TESTS_LEARNERS_DRIFT_TEST_UTIL_H_

// Helpers shared by the drift detector tests (adwin_test.cc, page_hinkley_test.cc, ddm_test.cc,
// drift_test.cc): seeded synthetic streams and archive round trips.
//
// Streams. The generator is SplitMix64 (Steele,
// Lea & Flood 2014) and every draw uses only integer operations, one exact scaling and
// additions, so the same seed gives the same doubles in any language: the golden detection
// indices in the tests were produced by River 0.26.1 on these very streams, regenerated in
// Python as
//
//   M = 2**64 - 1
//   def next(s): s = (s + 0x9E3779B97F4A7C15) & M; z = s
//       z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//       z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//       return s, z ^ (z >> 31)
//   uniform = (next >> 11) * 2.0**-53
//   bernoulli(p) = 1.0 if uniform < p else 0.0
//   normal(mean, sd) = mean + sd * (sum of 12 uniforms, added in order, - 6.0)
//
// and fed to river.drift.ADWIN / PageHinkley / binary.DDM with default arguments.

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/details/helpers.hpp>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "learners/drift.h"

namespace riffle::learners::testing {

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}

  std::uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  double Bernoulli(double p) { return Uniform() < p ? 1.0 : 0.0; }

  // Irwin-Hall approximation of a normal draw: mean + sd * (sum of 12 uniforms - 6), whose
  // variance is exactly sd^2. Only additions, so it reproduces bit for bit elsewhere.
  double Normal(double mean, double sd) {
    double sum = 0.0;
    for (int k = 0; k < 12; ++k) sum += Uniform();
    return mean + sd * (sum - 6.0);
  }

 private:
  std::uint64_t state_;
};

struct BernoulliSegment {
  double p;
  int length;
};

struct NormalSegment {
  double mean;
  double sd;
  int length;
};

// Concatenated segments, all drawn from one generator seeded with `seed`.
inline std::vector<double> BernoulliStream(std::uint64_t seed,
                                           const std::vector<BernoulliSegment>& segments) {
  SplitMix64 rng(seed);
  std::vector<double> stream;
  for (const BernoulliSegment& s : segments) {
    for (int i = 0; i < s.length; ++i) stream.push_back(rng.Bernoulli(s.p));
  }
  return stream;
}

inline std::vector<double> NormalStream(std::uint64_t seed,
                                        const std::vector<NormalSegment>& segments) {
  SplitMix64 rng(seed);
  std::vector<double> stream;
  for (const NormalSegment& s : segments) {
    for (int i = 0; i < s.length; ++i) stream.push_back(rng.Normal(s.mean, s.sd));
  }
  return stream;
}

// Indices i at which detector->drift_detected() after Update(stream[i]).
inline std::vector<int> DriftIndices(DriftDetector* detector, const std::vector<double>& stream) {
  std::vector<int> indices;
  for (int i = 0; i < static_cast<int>(stream.size()); ++i) {
    detector->Update(stream[i]);
    if (detector->drift_detected()) indices.push_back(i);
  }
  return indices;
}

inline std::string Serialize(const DriftDetector& detector) {
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    detector.Save(out);
  }
  return buffer.str();
}

inline void Deserialize(const std::string& bytes, DriftDetector* detector) {
  std::stringstream buffer(bytes);
  cereal::PortableBinaryInputArchive in(buffer);
  detector->Load(in);
}

// Loading any proper prefix of `bytes` (a saved detector) into *target throws
// cereal::Exception and leaves *target exactly as it was.
inline void ExpectTruncationsFailAndKeepState(const std::string& bytes, DriftDetector* target) {
  const std::string before = Serialize(*target);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_THROW(Deserialize(bytes.substr(0, cut), target), cereal::Exception) << "cut " << cut;
    ASSERT_EQ(Serialize(*target), before) << "cut " << cut;
  }
}

}  // namespace riffle::learners::testing

#endif  // RIFFLE_TESTS_LEARNERS_DRIFT_TEST_UTIL_H_
