#include "features/standard_scaler.h"

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <cmath>
#include <random>
#include <sstream>

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
