#include "learners/feature_vector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace riffle::learners {
namespace {

std::vector<FeatureIndex> Indices(const FeatureVector& x) {
  return {x.indices().begin(), x.indices().end()};
}
std::vector<double> Values(const FeatureVector& x) {
  return {x.values().begin(), x.values().end()};
}

// The buffers outlive Clear() and grow, but what the vector shows is exactly what was added
// since the last Clear(): a shorter example after a longer one shows none of the longer one.
TEST(FeatureVectorTest, AClearedVectorShowsOnlyWhatWasAddedSince) {
  FeatureVector x;
  for (FeatureIndex i = 0; i < 50; ++i) x.Add(i * 3, i + 0.5);
  EXPECT_EQ(x.size(), 50u);
  EXPECT_EQ(x.Extent(), 148u);
  x.Clear();
  EXPECT_TRUE(x.empty());
  EXPECT_EQ(x.Extent(), 0u);
  EXPECT_TRUE(x.indices().empty());
  EXPECT_TRUE(x.values().empty());
  x.Add(7, -1.0);
  x.Add(2, 4.0);
  EXPECT_EQ(Indices(x), (std::vector<FeatureIndex>{7, 2}));
  EXPECT_EQ(Values(x), (std::vector<double>{-1.0, 4.0}));
  EXPECT_EQ(x.mutable_values().size(), 2u);
  EXPECT_EQ(x.Extent(), 8u);
}

TEST(FeatureVectorTest, AppendAndAppendIndicesOfAddAfterTheEntries) {
  FeatureVector a;
  a.Add(1, 1.5);
  FeatureVector b;
  b.Add(9, 2.5);
  b.Add(4, 3.5);
  a.Append(b);
  EXPECT_EQ(Indices(a), (std::vector<FeatureIndex>{1, 9, 4}));
  EXPECT_EQ(Values(a), (std::vector<double>{1.5, 2.5, 3.5}));
  EXPECT_EQ(a.Extent(), 10u);

  FeatureVector c;
  c.Add(20, 0.0);
  const std::span<double> block = c.AppendIndicesOf(b);
  ASSERT_EQ(block.size(), 2u);
  block[0] = -1.0;
  block[1] = -2.0;
  EXPECT_EQ(Indices(c), (std::vector<FeatureIndex>{20, 9, 4}));
  EXPECT_EQ(Values(c), (std::vector<double>{0.0, -1.0, -2.0}));
  EXPECT_EQ(c.Extent(), 21u);
}

TEST(FeatureVectorTest, AppendIndicesTakesAnyIndicesAndTheirExtent) {
  FeatureVector x;
  x.Add(3, 1.0);
  const std::vector<FeatureIndex> block = {0, 1, 2};
  const std::span<double> values = x.AppendIndices(block, 3);
  ASSERT_EQ(values.size(), 3u);
  values[2] = 9.0;
  EXPECT_EQ(Indices(x), (std::vector<FeatureIndex>{3, 0, 1, 2}));
  EXPECT_EQ(x.value(3), 9.0);
  EXPECT_EQ(x.Extent(), 4u);  // the larger of 3 + 1 and the block's 3
  EXPECT_TRUE(x.AppendIndices({}, 0).empty());
  EXPECT_EQ(x.size(), 4u);
}

// AppendIndices copies eight indices at a time, then the rest one by one: every block length
// from 0 to 20 after 0 to 9 entries, into buffers grown and reused.
TEST(FeatureVectorTest, AppendIndicesCopiesBlocksOfEveryLength) {
  FeatureVector x;
  for (std::size_t before = 0; before < 10; ++before) {
    for (std::size_t length = 0; length <= 20; ++length) {
      x.Clear();
      std::vector<FeatureIndex> expected;
      for (std::size_t k = 0; k < before; ++k) {
        x.Add(static_cast<FeatureIndex>(1000 + k), 1.0);
        expected.push_back(static_cast<FeatureIndex>(1000 + k));
      }
      std::vector<FeatureIndex> block;
      for (std::size_t k = 0; k < length; ++k) block.push_back(static_cast<FeatureIndex>(7 * k));
      ASSERT_EQ(x.AppendIndices(block, 7 * 20).size(), length);
      expected.insert(expected.end(), block.begin(), block.end());
      ASSERT_EQ(Indices(x), expected) << before << " entries, then " << length;
    }
  }
}

// Copies hold the same entries; a moved-from vector is empty and can be filled again (its
// buffers went with the move, so its size must not survive it).
TEST(FeatureVectorTest, CopiesAndMovesKeepTheEntries) {
  FeatureVector x;
  x.Reserve(64);
  EXPECT_TRUE(x.empty());
  for (FeatureIndex i = 0; i < 10; ++i) x.Add(i, i * 2.0);
  x.Clear();
  x.Add(5, 1.5);  // the buffers now hold 10 entries' worth, one in use

  const FeatureVector copy = x;
  EXPECT_EQ(Indices(copy), (std::vector<FeatureIndex>{5}));
  EXPECT_EQ(Values(copy), (std::vector<double>{1.5}));
  EXPECT_EQ(copy.Extent(), 6u);

  FeatureVector moved = std::move(x);
  EXPECT_EQ(Indices(moved), (std::vector<FeatureIndex>{5}));
  EXPECT_TRUE(x.empty());  // NOLINT(bugprone-use-after-move): what a move leaves is the test
  EXPECT_EQ(x.Extent(), 0u);
  x.Add(7, 2.5);
  x.Add(8, 3.5);
  EXPECT_EQ(Indices(x), (std::vector<FeatureIndex>{7, 8}));

  FeatureVector assigned;
  assigned.Add(1, 1.0);
  assigned = std::move(moved);
  EXPECT_EQ(Values(assigned), (std::vector<double>{1.5}));
  EXPECT_TRUE(moved.empty());  // NOLINT(bugprone-use-after-move)
  moved.Add(2, 4.0);
  EXPECT_EQ(Values(moved), (std::vector<double>{4.0}));
}

// Property: any sequence of Clear, Add, Append and AppendIndicesOf shows what the same
// operations on plain std::vectors give.
TEST(FeatureVectorTest, MatchesPlainVectorsUnderRandomOperations) {
  std::mt19937 rng(5);
  FeatureVector x;
  std::vector<FeatureIndex> indices;
  std::vector<double> values;
  FeatureIndex extent = 0;
  for (int step = 0; step < 20000; ++step) {
    FeatureVector other;
    for (int k = static_cast<int>(rng() % 40); k > 0; --k) {
      other.Add(static_cast<FeatureIndex>(rng() % 1000), static_cast<double>(rng() % 100));
    }
    switch (rng() % 5) {
      case 0:
        x.Clear();
        indices.clear();
        values.clear();
        extent = 0;
        break;
      case 1:
        x.Add(static_cast<FeatureIndex>(step), step * 0.25);
        indices.push_back(static_cast<FeatureIndex>(step));
        values.push_back(step * 0.25);
        extent = std::max<FeatureIndex>(extent, static_cast<FeatureIndex>(step) + 1);
        break;
      case 2:
        x.Append(other);
        indices.insert(indices.end(), other.indices().begin(), other.indices().end());
        values.insert(values.end(), other.values().begin(), other.values().end());
        extent = std::max(extent, other.Extent());
        break;
      default: {
        const std::span<double> block = x.AppendIndicesOf(other);
        ASSERT_EQ(block.size(), other.size());
        for (std::size_t k = 0; k < block.size(); ++k) block[k] = -static_cast<double>(k);
        indices.insert(indices.end(), other.indices().begin(), other.indices().end());
        for (std::size_t k = 0; k < other.size(); ++k) values.push_back(-static_cast<double>(k));
        extent = std::max(extent, other.Extent());
      }
    }
    ASSERT_EQ(Indices(x), indices) << "step " << step;
    ASSERT_EQ(Values(x), values) << "step " << step;
    ASSERT_EQ(x.Extent(), extent) << "step " << step;
  }
}

}  // namespace
}  // namespace riffle::learners
