#include "features/vocabulary.h"

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <sstream>

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

TEST(VocabularyTest, HintsAreCheckedAgainstTheName) {
  Vocabulary v;
  Vocabulary::Index hint = 12345;  // out of range: looked up, then set
  EXPECT_EQ(v.Add("a", &hint), 0u);
  EXPECT_EQ(hint, 0u);
  EXPECT_EQ(v.Add("b"), 1u);
  // A right hint answers; a wrong one (another name's index) is corrected, never trusted.
  EXPECT_EQ(v.Find("a", &hint), 0u);
  hint = 0;
  EXPECT_EQ(v.Find("b", &hint), 1u);
  EXPECT_EQ(hint, 1u);
  hint = 1;
  EXPECT_EQ(v.Add("c", &hint), 2u);
  EXPECT_EQ(hint, 2u);
  EXPECT_EQ(v.size(), 3u);
  // An unknown name leaves the hint as it was and adds nothing.
  hint = 0;
  EXPECT_FALSE(v.Find("zzz", &hint).has_value());
  EXPECT_EQ(hint, 0u);
  EXPECT_EQ(v.size(), 3u);
  // No hint: the plain lookups.
  EXPECT_EQ(v.Find("c", nullptr), 2u);
  EXPECT_EQ(v.Add("d", nullptr), 3u);
}

}  // namespace
}  // namespace riffle::features
