#include "features/vocabulary.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "features/bytes_equal.h"

namespace riffle::features {
namespace {

TEST(VocabularyTest, AssignsIndicesInOrderOfFirstAppearance) {
  Vocabulary v;
  EXPECT_EQ(v.Add("b"), 0u);
  EXPECT_EQ(v.Add("a"), 1u);
  EXPECT_EQ(v.Add("b"), 0u);
  EXPECT_EQ(v.Add("c"), 2u);
  EXPECT_EQ(v.size(), 3u);
  EXPECT_EQ(v.Name(1), "a");
  EXPECT_EQ(v.Find("c"), 2u);
  EXPECT_FALSE(v.Find("d").has_value());
}

TEST(VocabularyTest, SaveLoadRoundTripKeepsIndices) {
  Vocabulary v;
  for (const char* name : {"x", "y=red", "", "z"}) v.Add(name);
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(v);
  }
  Vocabulary restored;
  {
    cereal::PortableBinaryInputArchive in(buffer);
    in(restored);
  }
  EXPECT_EQ(restored.names(), v.names());
  EXPECT_EQ(restored.Find("y=red"), 1u);
  EXPECT_EQ(restored.Add("new"), 4u);
}

TEST(VocabularyTest, LoadRejectsDuplicates) {
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    learners::SaveVector(out, std::vector<std::string>{"a", "a"});
  }
  // The vocabulary's archive layout is its names vector preceded by the class version.
  std::stringstream framed;
  {
    cereal::PortableBinaryOutputArchive out(framed);
    std::uint32_t version = 1;
    out(version);
  }
  framed << buffer.str();
  Vocabulary v;
  cereal::PortableBinaryInputArchive in(framed);
  EXPECT_ANY_THROW(in(v));
}

TEST(VocabularyTest, HugeClaimedSizeFailsWithoutHugeAllocation) {
  // A corrupted length of 2^60 strings must fail at the end of the data, not allocate.
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    std::uint64_t size = std::uint64_t{1} << 60;
    out(size);
  }
  std::vector<std::string> names;
  cereal::PortableBinaryInputArchive in(buffer);
  EXPECT_THROW(learners::LoadVector(in, &names), cereal::Exception);
}

TEST(VocabularyTest, LookupGivesTheIndexOrNotFound) {
  Vocabulary v;
  EXPECT_EQ(v.Lookup("a"), Vocabulary::kNotFound);  // empty: no table yet
  EXPECT_EQ(v.Add("a"), 0u);
  EXPECT_EQ(v.Add("b"), 1u);
  EXPECT_EQ(v.Lookup("b"), 1u);
  EXPECT_EQ(v.Lookup("zzz"), Vocabulary::kNotFound);
  EXPECT_EQ(v.size(), 2u);  // a lookup adds nothing
  EXPECT_EQ(v.Find("zzz"), std::nullopt);
  EXPECT_EQ(v.Find("a"), 0u);
}

TEST(VocabularyTest, ManyNamesThroughGrowthKeepTheirIndices) {
  // Names of every length around the comparison's word sizes (0 to 40 bytes), many sharing a
  // prefix, a suffix and a length: 20,000 names, so the index grows eleven times.
  std::vector<std::string> names;
  for (int i = 0; i < 20000; ++i) {
    std::string name(static_cast<std::size_t>(i % 41), 'x');
    const std::string number = std::to_string(i);
    name.replace(0, std::min(name.size(), number.size()), number.substr(0, name.size()));
    if (name.size() > number.size())
      name.replace(name.size() - number.size(), number.size(), number);
    names.push_back(name + (i % 41 == 0 ? std::to_string(i) : ""));
  }
  Vocabulary v;
  std::vector<Vocabulary::Index> expected;
  for (const std::string& name : names) {
    const std::optional<Vocabulary::Index> known = v.Find(name);
    expected.push_back(known.has_value() ? *known : static_cast<Vocabulary::Index>(v.size()));
    EXPECT_EQ(v.Add(name), expected.back()) << name;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    ASSERT_EQ(v.Lookup(names[i]), expected[i]) << names[i];
    ASSERT_EQ(v.Name(expected[i]), names[i]);
  }
  // Names of the same length differing in one byte only, anywhere.
  for (std::size_t size = 1; size <= 40; ++size) {
    const std::string base(size, 'a');
    for (std::size_t at = 0; at < size; ++at) {
      std::string other = base;
      other[at] = 'b';
      EXPECT_EQ(v.Lookup(other), v.Lookup(other)) << other;
      Vocabulary w;
      w.Add(base);
      EXPECT_EQ(w.Lookup(other), Vocabulary::kNotFound) << other;
      EXPECT_EQ(w.Add(other), 1u) << other;
    }
  }
  EXPECT_GT(v.MemoryBytes(), v.size() * sizeof(std::string));
}

TEST(VocabularyTest, IdsAreUniquePerObjectAndFollowMoves) {
  Vocabulary a;
  a.Add("x");
  const std::uint64_t id = a.id();
  Vocabulary copy = a;
  EXPECT_NE(copy.id(), id);
  Vocabulary assigned;
  const std::uint64_t before = assigned.id();
  assigned = a;
  EXPECT_NE(assigned.id(), before);
  EXPECT_NE(assigned.id(), id);
  Vocabulary moved = std::move(a);
  EXPECT_EQ(moved.id(), id);
  EXPECT_NE(a.id(), id);  // NOLINT(bugprone-use-after-move): the source gets a new id
  // Loading replaces the contents: a new id.
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(copy);
  }
  cereal::PortableBinaryInputArchive in(buffer);
  in(moved);
  EXPECT_NE(moved.id(), id);
}

TEST(BytesEqualTest, AgreesWithStringComparisonAtEverySize) {
  const std::string a = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (std::size_t size = 0; size <= a.size(); ++size) {
    const std::string_view x(a.data(), size);
    std::string y(x);
    EXPECT_TRUE(BytesEqual(x, y)) << size;
    for (std::size_t at = 0; at < size; ++at) {
      std::string z(x);
      z[at] = '#';
      EXPECT_FALSE(BytesEqual(x, z)) << size << " " << at;
    }
    if (size < a.size()) {
      EXPECT_FALSE(BytesEqual(x, a.substr(0, size + 1))) << size;
    }
  }
}

// Every pair of lengths up to 40 (both sides of each 0/1/2/4/8/16 boundary), equal prefixes
// and one differing byte anywhere.
TEST(BytesEqualTest, NoLengthBranchAgreesWithStringComparison) {
  const std::string a = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
  for (std::size_t m = 0; m <= a.size(); ++m) {
    for (std::size_t n = 0; n <= a.size(); ++n) {
      const std::string_view x(a.data(), m);
      const std::string y(a.data(), n);
      EXPECT_EQ(BytesEqualNoLengthBranch(x, y), x == y) << m << " " << n;
      for (std::size_t at = 0; at < std::min(m, n); ++at) {
        std::string z = y;
        z[at] = '#';
        EXPECT_FALSE(BytesEqualNoLengthBranch(x, z)) << m << " " << n << " " << at;
      }
    }
  }
}

}  // namespace
}  // namespace riffle::features
