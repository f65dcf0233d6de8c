#include "learners/drift.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "learners/adwin.h"
#include "learners/ddm.h"
#include "learners/page_hinkley.h"
#include "tests/learners/drift_test_util.h"

namespace riffle::learners {
namespace {

using testing::BernoulliStream;
using testing::Deserialize;
using testing::DriftIndices;
using testing::Serialize;

std::unique_ptr<DriftDetector> MustCreate(std::string_view kind, const OptionList& options) {
  absl::StatusOr<std::unique_ptr<DriftDetector>> detector = CreateDriftDetector(kind, options);
  EXPECT_TRUE(detector.ok()) << detector.status();
  return detector.ok() ? std::move(*detector) : nullptr;
}

TEST(DriftDetectorFactoryTest, KindsAreListedAndBuildable) {
  EXPECT_EQ(DriftDetectorKinds(), (std::vector<std::string>{"adwin", "ddm", "page_hinkley"}));
  for (const std::string& kind : DriftDetectorKinds()) {
    std::unique_ptr<DriftDetector> detector = MustCreate(kind, {});
    ASSERT_NE(detector, nullptr);
    EXPECT_EQ(detector->Kind(), kind);
    EXPECT_FALSE(detector->drift_detected());
    EXPECT_FALSE(detector->warning_detected());
    EXPECT_GE(detector->MemoryBytes(), sizeof(DriftDetector));
  }
}

TEST(DriftDetectorFactoryTest, AppliesOptionsInOrder) {
  std::unique_ptr<DriftDetector> detector =
      MustCreate("adwin", {{"clock", "1"}, {"delta", "0.5"}, {"delta", "0.05"}});
  const auto* adwin = dynamic_cast<const Adwin*>(detector.get());
  ASSERT_NE(adwin, nullptr);
  EXPECT_EQ(adwin->options().clock, 1u);
  EXPECT_EQ(adwin->options().delta, 0.05);

  detector = MustCreate("page_hinkley", {{"mode", "up"}, {"threshold", "10"}});
  const auto* ph = dynamic_cast<const PageHinkley*>(detector.get());
  ASSERT_NE(ph, nullptr);
  EXPECT_EQ(ph->options().mode, PageHinkleyMode::kUp);
  EXPECT_EQ(ph->options().threshold, 10.0);

  detector = MustCreate("ddm", {{"warm_start", "5"}});
  const auto* ddm = dynamic_cast<const Ddm*>(detector.get());
  ASSERT_NE(ddm, nullptr);
  EXPECT_EQ(ddm->options().warm_start, 5u);
}

TEST(DriftDetectorFactoryTest, ErrorsNameTheProblem) {
  absl::StatusOr<std::unique_ptr<DriftDetector>> d = CreateDriftDetector("kswin", {});
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(d.status().message()).find("'kswin'"), std::string::npos);
  EXPECT_NE(std::string(d.status().message()).find("adwin, ddm, page_hinkley"), std::string::npos);

  d = CreateDriftDetector("ddm", {{"clock", "3"}});
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(d.status().message()).find("'clock'"), std::string::npos);

  d = CreateDriftDetector("adwin", {{"delta", "2"}});  // Parses, fails Validate().
  ASSERT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(d.status().message()).find("'delta'"), std::string::npos);
}

// Through the interface, as a checkpoint would: save, load into a default detector of the same
// kind, continue; both copies detect the same drifts. Clone() gives the same.
TEST(DriftDetectorFactoryTest, SaveLoadAndCloneThroughTheInterface) {
  const std::vector<double> stream = BernoulliStream(5, {{0.2, 1500}, {0.7, 1500}, {0.1, 1500}});
  for (const std::string& kind : DriftDetectorKinds()) {
    std::unique_ptr<DriftDetector> original = MustCreate(kind, {});
    const std::vector<double> head(stream.begin(), stream.begin() + 1200);
    const std::vector<double> tail(stream.begin() + 1200, stream.end());
    DriftIndices(original.get(), head);
    std::unique_ptr<DriftDetector> restored = MustCreate(kind, {});
    Deserialize(Serialize(*original), restored.get());
    std::unique_ptr<DriftDetector> clone = original->Clone();
    const std::vector<int> expected = DriftIndices(original.get(), tail);
    EXPECT_FALSE(expected.empty()) << kind;
    EXPECT_EQ(DriftIndices(restored.get(), tail), expected) << kind;
    EXPECT_EQ(DriftIndices(clone.get(), tail), expected) << kind;
    EXPECT_EQ(Serialize(*restored), Serialize(*original)) << kind;
  }
}

}  // namespace
}  // namespace riffle::learners
