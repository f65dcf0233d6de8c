#include "features/standard_scaler.h"

#include <gtest/gtest.h>

#include <bit>
#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>

#include "features/simd_builds.h"

namespace riffle::features {
namespace {

using learners::FeatureVector;

FeatureVector One(learners::FeatureIndex j, double v) {
  FeatureVector x;
  x.Add(j, v);
  return x;
}

TEST(StandardScalerTest, HandComputedMeanAndVariance) {
  StandardScaler s;
  for (double v : {2.0, 4.0, 9.0}) s.LearnOne(One(0, v));
  // mean = 15 / 3 = 5; population variance = ((2-5)^2 + (4-5)^2 + (9-5)^2) / 3 = 26 / 3
  EXPECT_DOUBLE_EQ(s.Mean(0), 5.0);
  EXPECT_NEAR(s.Variance(0), 26.0 / 3.0, 1e-12);
  FeatureVector x = One(0, 7.0);
  s.TransformInPlace(&x);
  // (7 - 5) / sqrt(26 / 3)
  EXPECT_NEAR(x.value(0), 2.0 / std::sqrt(26.0 / 3.0), 1e-12);
}

TEST(StandardScalerTest, MatchesBatchStatisticsOnARandomStream) {
  StandardScaler s;
  std::mt19937 rng(5);
  std::normal_distribution<double> normal(10.0, 3.0);
  std::vector<double> values;
  for (int i = 0; i < 5000; ++i) {
    values.push_back(normal(rng));
    s.LearnOne(One(3, values.back()));
  }
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  var /= static_cast<double>(values.size());
  EXPECT_NEAR(s.Mean(3), mean, 1e-9);
  EXPECT_NEAR(s.Variance(3), var, 1e-9);
  EXPECT_EQ(s.Count(3), 5000u);
  EXPECT_EQ(s.Count(0), 0u);
}

TEST(StandardScalerTest, ZeroVarianceAndUnseenFeaturesScaleToZero) {
  StandardScaler s;
  s.LearnOne(One(0, 4.0));
  FeatureVector x;
  x.Add(0, 4.0);
  x.Add(7, 123.0);
  s.TransformInPlace(&x);
  EXPECT_EQ(x.value(0), 0.0);
  EXPECT_EQ(x.value(1), 0.0);
}

TEST(StandardScalerTest, MissingFeaturesDoNotCount) {
  StandardScaler s;
  FeatureVector both;
  both.Add(0, 1.0);
  both.Add(1, 10.0);
  s.LearnOne(both);
  s.LearnOne(One(0, 3.0));
  EXPECT_EQ(s.Count(0), 2u);
  EXPECT_EQ(s.Count(1), 1u);
  EXPECT_DOUBLE_EQ(s.Mean(1), 10.0);
}

// River's StandardScaler, one feature at a time, as the reference the scaler's four-lane blocks
// must reproduce bit for bit.
struct ReferenceScaler {
  std::vector<double> counts, means, vars;

  void Grow(learners::FeatureIndex j) {
    if (j >= counts.size()) {
      counts.resize(j + 1, 0.0);
      means.resize(j + 1, 0.0);
      vars.resize(j + 1, 0.0);
    }
  }
  void Learn(learners::FeatureIndex j, double v) {
    Grow(j);
    counts[j] += 1;
    const double old_mean = means[j];
    means[j] += (v - old_mean) / counts[j];
    vars[j] += ((v - old_mean) * (v - means[j]) - vars[j]) / counts[j];
  }
  double Scale(learners::FeatureIndex j, double v) const {
    if (j >= vars.size()) return 0.0;
    const double stddev = std::sqrt(vars[j]);
    return stddev > 0 ? (v - means[j]) / stddev : 0.0;
  }
};

std::uint64_t Bits(double v) { return std::bit_cast<std::uint64_t>(v); }

// Vectors of 0 to 13 features (whole blocks of four and tails): half of them with indices
// drawn from 0..11, so that repeats within a block are common, half of them runs of
// consecutive indices from 0..3 on (dense rows, whose blocks are loaded and stored whole), with
// values on very different scales, one constant feature (variance 0), and transforms that
// include indices never learned.
void ExpectBlocksOfFourGiveTheBitsOfOneFeatureAtATime() {
  StandardScaler s;
  ReferenceScaler ref;
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> length(0, 13);
  std::uniform_int_distribution<learners::FeatureIndex> index(0, 11);
  std::normal_distribution<double> normal(0.0, 1.0);
  const auto value = [&](learners::FeatureIndex j) {
    if (j == 5) return 2.5;  // constant: scales to 0 for ever
    return normal(rng) * std::pow(10.0, static_cast<double>(j) - 4.0) + static_cast<double>(j);
  };
  for (int row = 0; row < 4000; ++row) {
    FeatureVector x;
    const int n = length(rng);
    const bool dense = row % 2 == 1;
    const learners::FeatureIndex first = index(rng) % 4;
    for (int k = 0; k < n; ++k) {
      const learners::FeatureIndex j =
          dense ? first + static_cast<learners::FeatureIndex>(k) : index(rng);
      x.Add(j, value(j));
    }
    // Transform before learning, with indices up to 15 (some never learned).
    FeatureVector unseen = x;
    unseen.Add(12 + static_cast<learners::FeatureIndex>(row % 4), 1.0);
    FeatureVector predicted;
    s.AppendTransformed(unseen, &predicted);
    ASSERT_EQ(predicted.size(), unseen.size());
    for (std::size_t k = 0; k < unseen.size(); ++k) {
      ASSERT_EQ(predicted.index(k), unseen.index(k));
      ASSERT_EQ(Bits(predicted.value(k)), Bits(ref.Scale(unseen.index(k), unseen.value(k))))
          << "row " << row << " feature " << k;
    }
    FeatureVector in_place = unseen;
    s.TransformInPlace(&in_place);
    for (std::size_t k = 0; k < unseen.size(); ++k) {
      ASSERT_EQ(Bits(in_place.value(k)), Bits(predicted.value(k)));
    }
    // Learn, then scale with the updated statistics, feature by feature.
    FeatureVector learned;
    learned.Add(100, 7.0);  // appended after what is already there
    s.LearnAndAppendTransformed(x, &learned);
    ASSERT_EQ(learned.size(), x.size() + 1);
    for (std::size_t k = 0; k < x.size(); ++k) {
      ref.Learn(x.index(k), x.value(k));
      ASSERT_EQ(Bits(learned.value(k + 1)), Bits(ref.Scale(x.index(k), x.value(k))))
          << "row " << row << " feature " << k;
    }
  }
  for (learners::FeatureIndex j = 0; j < ref.counts.size(); ++j) {
    EXPECT_EQ(s.Count(j), static_cast<std::uint64_t>(ref.counts[j]));
    EXPECT_EQ(Bits(s.Mean(j)), Bits(ref.means[j])) << j;
    EXPECT_EQ(Bits(s.Variance(j)), Bits(ref.vars[j])) << j;
  }
  EXPECT_EQ(s.Variance(5), 0.0);
}

// Both builds of the four-lane loops, whichever the CPU would pick.
TEST(StandardScalerTest, BlocksOfFourGiveTheBitsOfOneFeatureAtATime) {
  for (SimdBuild build : {SimdBuild::kBest, SimdBuild::kBaseline}) {
    SCOPED_TRACE(build == SimdBuild::kBest ? "best build" : "baseline build");
    SetSimdBuildForTesting(build);
    ExpectBlocksOfFourGiveTheBitsOfOneFeatureAtATime();
  }
  SetSimdBuildForTesting(SimdBuild::kBest);
}

// Four features whose counts cross 2^52, where the whole-block path (which converts counts to
// doubles exactly only below 2^52) hands over to the lane-by-lane one: every step keeps the
// bits of the one-feature-at-a-time reference.
TEST(StandardScalerTest, CountsNearTwoToThe52GiveTheBitsOfOneFeatureAtATime) {
  constexpr std::uint64_t kStart = (std::uint64_t{1} << 52) - 3;
  const std::vector<std::uint64_t> counts(4, kStart);
  const std::vector<double> means = {1.0, -2.0, 300.0, 0.25};
  const std::vector<double> vars = {4.0, 0.5, 90.0, 1e-3};
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    learners::SaveVector(out, counts);
    learners::SaveVector(out, means);
    learners::SaveVector(out, vars);
  }
  for (SimdBuild build : {SimdBuild::kBest, SimdBuild::kBaseline}) {
    SCOPED_TRACE(build == SimdBuild::kBest ? "best build" : "baseline build");
    SetSimdBuildForTesting(build);
    StandardScaler s;
    {
      std::stringstream copy(buffer.str());
      cereal::PortableBinaryInputArchive in(copy);
      s.load(in, 1);
    }
    ReferenceScaler ref;
    ref.counts.assign(counts.begin(), counts.end());  // exact: below 2^53
    ref.means = means;
    ref.vars = vars;
    for (int row = 0; row < 6; ++row) {
      FeatureVector x;
      for (learners::FeatureIndex j = 0; j < 4; ++j) x.Add(j, means[j] + row - 2.5 * j);
      std::vector<double> scaled(4);
      s.LearnAndTransformInto(x, scaled);
      for (learners::FeatureIndex j = 0; j < 4; ++j) {
        ref.Learn(j, x.value(j));
        ASSERT_EQ(s.Count(j), static_cast<std::uint64_t>(ref.counts[j])) << "row " << row;
        ASSERT_EQ(Bits(s.Mean(j)), Bits(ref.means[j])) << "row " << row << " feature " << j;
        ASSERT_EQ(Bits(s.Variance(j)), Bits(ref.vars[j])) << "row " << row << " feature " << j;
        ASSERT_EQ(Bits(scaled[j]), Bits(ref.Scale(j, x.value(j))))
            << "row " << row << " feature " << j;
      }
    }
    EXPECT_EQ(s.Count(0), kStart + 6);
  }
  SetSimdBuildForTesting(SimdBuild::kBest);
}

TEST(StandardScalerTest, SaveLoadRoundTripIsBitIdentical) {
  StandardScaler s;
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(-5, 5);
  for (int i = 0; i < 100; ++i) {
    FeatureVector x;
    x.Add(i % 4, u(rng));
    s.LearnOne(x);
  }
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(s);
  }
  StandardScaler r;
  {
    cereal::PortableBinaryInputArchive in(buffer);
    in(r);
  }
  for (int i = 0; i < 50; ++i) {
    FeatureVector a;
    a.Add(i % 5, u(rng));
    FeatureVector b = a;
    s.TransformInPlace(&a);
    r.TransformInPlace(&b);
    ASSERT_EQ(a.value(0), b.value(0));
    s.LearnOne(b);
    r.LearnOne(b);
  }
  EXPECT_EQ(s.Mean(2), r.Mean(2));
  EXPECT_EQ(s.Variance(2), r.Variance(2));
}

}  // namespace
}  // namespace riffle::features
