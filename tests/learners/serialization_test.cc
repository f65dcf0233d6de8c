#include "learners/serialization.h"

#include <gtest/gtest.h>

#include <cereal/archives/portable_binary.hpp>
#include <sstream>

namespace riffle::learners {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename... T>
std::string Archive(const T&... values) {
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(values...);
  }
  return buffer.str();
}

TEST(SerializationTest, DenseRoundTrip) {
  RowMajor m(3, 2);
  m << 1, 2, 3, 4, 5, 6;
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    SaveDense(out, m);
  }
  RowMajor loaded;
  cereal::PortableBinaryInputArchive in(buffer);
  LoadDense(in, &loaded);
  EXPECT_EQ(loaded, m);
}

// Found by the checkpoint fuzzer: rows = 2^63 with cols = 0 passed the product check and made
// Eigen assert on a negative size.
TEST(SerializationTest, ImplausibleShapesThrowBeforeAllocating) {
  for (const auto& [rows, cols] : {std::pair<std::uint64_t, std::uint64_t>{1ULL << 63, 0},
                                   {0, 1ULL << 63},
                                   {1ULL << 41, 1},
                                   {1ULL << 30, 1ULL << 30}}) {
    std::stringstream buffer(Archive(rows, cols));
    cereal::PortableBinaryInputArchive in(buffer);
    RowMajor m;
    EXPECT_THROW(LoadDense(in, &m), cereal::Exception) << rows << " x " << cols;
  }
}

TEST(SerializationTest, ClaimedSizeBeyondTheDataFailsAtTheEndOfTheData) {
  // 2^40 elements claimed, 3 present: the load throws after at most one chunk.
  std::stringstream buffer(Archive(std::uint64_t{1} << 40, 1.0, 2.0, 3.0));
  cereal::PortableBinaryInputArchive in(buffer);
  std::vector<double> values;
  EXPECT_THROW(LoadVector(in, &values), cereal::Exception);
  EXPECT_LE(values.capacity(), kLoadChunkElements);
}

TEST(SerializationTest, BooleansMustBeZeroOrOne) {
  for (std::uint8_t byte : {0, 1, 2, 64, 255}) {
    std::stringstream buffer(Archive(byte));
    cereal::PortableBinaryInputArchive in(buffer);
    if (byte <= 1) {
      EXPECT_EQ(LoadBool(in), byte == 1);
    } else {
      EXPECT_THROW(LoadBool(in), cereal::Exception) << int{byte};
    }
  }
}

TEST(SerializationTest, OptionalRoundTrip) {
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    SaveOptional(out, std::optional<double>(2.5));
    SaveOptional(out, std::optional<double>());
  }
  cereal::PortableBinaryInputArchive in(buffer);
  std::optional<double> a;
  std::optional<double> b = 1.0;
  LoadOptional(in, &a);
  LoadOptional(in, &b);
  EXPECT_EQ(a, 2.5);
  EXPECT_FALSE(b.has_value());
}

TEST(SerializationTest, StringsLoadInChunks) {
  const std::string big(200000, 'x');
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    SaveString(out, big);
  }
  std::string loaded;
  cereal::PortableBinaryInputArchive in(buffer);
  LoadString(in, &loaded);
  EXPECT_EQ(loaded, big);
}

}  // namespace
}  // namespace riffle::learners
