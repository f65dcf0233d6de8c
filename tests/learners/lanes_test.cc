#include "learners/lanes.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace riffle::learners {
namespace {

TEST(ConsecutiveIndicesTest, OnlyFourIndicesInARow) {
  const FeatureIndex run[] = {7, 8, 9, 10};
  EXPECT_TRUE(ConsecutiveIndices(run));
  const FeatureIndex from_zero[] = {0, 1, 2, 3};
  EXPECT_TRUE(ConsecutiveIndices(from_zero));
  const FeatureIndex gap[] = {7, 8, 10, 11};
  EXPECT_FALSE(ConsecutiveIndices(gap));
  const FeatureIndex descending[] = {10, 9, 8, 7};
  EXPECT_FALSE(ConsecutiveIndices(descending));
  const FeatureIndex repeat[] = {7, 7, 8, 9};
  EXPECT_FALSE(ConsecutiveIndices(repeat));
  const FeatureIndex last_off[] = {7, 8, 9, 9};
  EXPECT_FALSE(ConsecutiveIndices(last_off));
}

// Indices that are consecutive only modulo 2^32 are not: a vector load at the first one would
// read past the end of any array the last ones index.
TEST(ConsecutiveIndicesTest, NoWrapAroundAt32Bits) {
  constexpr FeatureIndex kMax = UINT32_MAX;
  const FeatureIndex wrapping[] = {kMax, 0, 1, 2};
  EXPECT_FALSE(ConsecutiveIndices(wrapping));
  const FeatureIndex wrapping_late[] = {kMax - 2, kMax - 1, kMax, 0};
  EXPECT_FALSE(ConsecutiveIndices(wrapping_late));
  const FeatureIndex at_the_top[] = {kMax - 3, kMax - 2, kMax - 1, kMax};
  EXPECT_TRUE(ConsecutiveIndices(at_the_top));
}

// A pair's lanes round as the scalar operations do.
TEST(DoublePairTest, LanesRoundAsScalars) {
  const double a[] = {0.1, 1e300};
  const double b[] = {0.7, 3.0};
  DoublePair x = {a[0], a[1]};
  const DoublePair y = {b[0], b[1]};
  x = x * y - 0.3 * (x / y);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(x[i], a[i] * b[i] - 0.3 * (a[i] / b[i])) << i;
  }
}

}  // namespace
}  // namespace riffle::learners
