#include "learners/page_hinkley.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/learners/drift_test_util.h"

namespace riffle::learners {
namespace {

using testing::BernoulliStream;
using testing::Deserialize;
using testing::DriftIndices;
using testing::NormalStream;
using testing::Serialize;

// Page-Hinkley has no confidence parameter: its false-alarm rate follows from delta, threshold
// and the scale of the data. River's defaults (delta = 0.005, threshold = 50, alpha = 0.9999)
// are noisy on 0/1 data: the fading factor makes S+ an AR(1) process whose stationary standard
// deviation on Bernoulli(0.3) draws is about 0.46 / sqrt(1 - alpha^2) = 32, so threshold 50 is
// only ~1.5 of them, and we measured 1,693 false detections on 200 stationary runs of 100,000
// Bernoulli(0.3) draws (about 8 per run; River gives the same, see MatchesRiverOnStationary).
//
// The behaviour tests therefore use this calibrated configuration: no fading (alpha = 1) and
// delta = 0.05, threshold 50. Then S+ - m+ is the excursion of a random walk with steps
// x - mean - 0.05 above its running minimum; by Lundberg's inequality an excursion reaches 50
// with probability at most exp(-50 theta), where theta solves E exp(theta (x - 0.3 - 0.05)) = 1
// for x ~ Bernoulli(0.3): theta = 0.451, giving 1.6e-10 (theta = 0.514, 7e-12, for S-). A
// union bound over 100,000 starting points bounds a false alarm per run by 2e-5 (the running
// mean standing in for the true mean changes this little: its error varies slowly).
PageHinkleyOptions Calibrated() { return PageHinkleyOptions{.delta = 0.05, .alpha = 1.0}; }

TEST(PageHinkleyTest, DefaultsAreRivers) {
  const PageHinkleyOptions o;
  EXPECT_EQ(o.min_instances, 30u);
  EXPECT_DOUBLE_EQ(o.delta, 0.005);
  EXPECT_DOUBLE_EQ(o.threshold, 50.0);
  EXPECT_EQ(o.alpha, 1.0 - 0.0001);
  EXPECT_EQ(o.mode, PageHinkleyMode::kBoth);
  EXPECT_TRUE(o.Validate().ok());
}

TEST(PageHinkleyTest, IncreaseHandComputed) {
  // min_instances 1, delta 0.5, threshold 1, alpha 1; stream 0, 0, 0, 4.
  //   t = 1..3: mean 0, deviation 0: S+ = -0.5, -1, -1.5 (= m+); S- = 0.5, 1, 1.5 (= M-).
  //   t = 4:    mean = 0 + (1/4) * 4 = 1, deviation 3: S+ = -1.5 + 3 - 0.5 = 1, so
  //             S+ - m+ = 1 - (-1.5) = 2.5 > 1: drift. S- = 1.5 + 3 + 0.5 = 5 = M-: 0.
  PageHinkley ph(
      PageHinkleyOptions{.min_instances = 1, .delta = 0.5, .threshold = 1.0, .alpha = 1.0});
  for (int i = 0; i < 3; ++i) {
    ph.Update(0.0);
    EXPECT_FALSE(ph.drift_detected());
  }
  EXPECT_EQ(ph.increase_statistic(), 0.0);
  EXPECT_EQ(ph.decrease_statistic(), 0.0);
  ph.Update(4.0);
  EXPECT_EQ(ph.mean(), 1.0);
  EXPECT_EQ(ph.increase_statistic(), 2.5);
  EXPECT_EQ(ph.decrease_statistic(), 0.0);
  EXPECT_TRUE(ph.drift_detected());
  EXPECT_FALSE(ph.warning_detected());
}

TEST(PageHinkleyTest, DecreaseHandComputedAndModes) {
  // Stream 4, 4, 4, 0 with the options above. t = 1..3: S+ = -0.5, -1, -1.5; S- = 0.5, 1, 1.5.
  // t = 4: mean = 4 + (1/4) (0 - 4) = 3, deviation -3: S- = 1.5 - 3 + 0.5 = -1, so
  // M- - S- = 1.5 - (-1) = 2.5 > 1; S+ = -1.5 - 3 - 0.5 = -5 = m+: 0.
  for (const auto& [mode, detects] :
       {std::pair{PageHinkleyMode::kBoth, true}, std::pair{PageHinkleyMode::kDown, true},
        std::pair{PageHinkleyMode::kUp, false}}) {
    PageHinkley ph(PageHinkleyOptions{
        .min_instances = 1, .delta = 0.5, .threshold = 1.0, .alpha = 1.0, .mode = mode});
    for (double x : {4.0, 4.0, 4.0, 0.0}) ph.Update(x);
    EXPECT_EQ(ph.decrease_statistic(), 2.5);
    EXPECT_EQ(ph.increase_statistic(), 0.0);
    EXPECT_EQ(ph.drift_detected(), detects) << static_cast<int>(mode);
  }
}

TEST(PageHinkleyTest, NoDetectionBeforeMinInstances) {
  // The jump at t = 4 above, but with min_instances = 5: statistics move, no detection yet.
  PageHinkley ph(
      PageHinkleyOptions{.min_instances = 5, .delta = 0.5, .threshold = 1.0, .alpha = 1.0});
  for (double x : {0.0, 0.0, 0.0, 4.0}) ph.Update(x);
  EXPECT_EQ(ph.increase_statistic(), 2.5);
  EXPECT_FALSE(ph.drift_detected());
  // t = 5: x = 4, mean = 1 + (1/5) (4 - 1) = 1.6, S+ = 1 + 2.4 - 0.5 = 2.9; 2.9 + 1.5 > 1.
  ph.Update(4.0);
  EXPECT_TRUE(ph.drift_detected());
}

TEST(PageHinkleyTest, DetectsMeanIncreaseWithinBoundedDelay) {
  // Bernoulli(0.2) -> Bernoulli(0.8) at index 1000. S+ - m+ >= 0 at the change; after k
  // post-change draws each adds about 0.6 * 1000 / (1000 + k) - 0.05 (the running mean follows
  // the new draws), so it reaches 50 once 600 ln(1 + k / 1000) - 0.05 k >= 50: k ~ 98. The
  // noise of 100 draws adds a standard deviation of 0.4 * 10 = 4, and the next 50 draws add
  // about 25 more: a detection before index 1150 has a margin of over 6 standard deviations.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    PageHinkley ph(Calibrated());
    const std::vector<int> detections =
        DriftIndices(&ph, BernoulliStream(seed, {{0.2, 1000}, {0.8, 1000}}));
    ASSERT_FALSE(detections.empty()) << "seed " << seed;
    EXPECT_GE(detections.front(), 1000) << "seed " << seed;
    EXPECT_LT(detections.front(), 1150) << "seed " << seed;
  }
}

TEST(PageHinkleyTest, DetectsMeanDecreaseWithinBoundedDelay) {
  // The mirror image (S- watches decreases), with the same bound.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    PageHinkley ph(Calibrated());
    const std::vector<int> detections =
        DriftIndices(&ph, BernoulliStream(seed, {{0.8, 1000}, {0.2, 1000}}));
    ASSERT_FALSE(detections.empty()) << "seed " << seed;
    EXPECT_GE(detections.front(), 1000) << "seed " << seed;
    EXPECT_LT(detections.front(), 1150) << "seed " << seed;
  }
}

TEST(PageHinkleyTest, NoDetectionOnStationaryStreams) {
  // Calibrated options (see the top of this file): a false alarm has probability < 2e-5 per
  // run; measured: none in 1,000 runs (seeds 1..1000). Seeds 1..5 are the first five.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    PageHinkley ph(Calibrated());
    EXPECT_TRUE(DriftIndices(&ph, BernoulliStream(seed, {{0.3, 100'000}})).empty())
        << "seed " << seed;
    EXPECT_EQ(ph.count(), 100'000u);
  }
}

// Golden indices from River 0.26.1 (river.drift.PageHinkley, default arguments unless stated)
// on the same streams, regenerated in Python as described in drift_test_util.h.
TEST(PageHinkleyTest, MatchesRiverOnGaussianMeanShift) {
  // Normal(0, 1) -> Normal(1, 1) at index 1000, seed 2. The second detection is a false alarm
  // of the defaults on unit-variance noise (see the top of this file), River's too.
  PageHinkley ph;
  EXPECT_EQ(DriftIndices(&ph, NormalStream(2, {{0.0, 1.0, 1000}, {1.0, 1.0, 1000}})),
            (std::vector<int>{1040, 1841}));
}

TEST(PageHinkleyTest, MatchesRiverOnBernoulliShift) {
  PageHinkley ph;
  EXPECT_EQ(DriftIndices(&ph, BernoulliStream(1, {{0.2, 1000}, {0.8, 1000}})),
            std::vector<int>{1073});
}

TEST(PageHinkleyTest, MatchesRiverInEveryMode) {
  // Means 0.2, 0.8, 0.2, 0.8 for 1,000 draws each, seed 3.
  const std::vector<double> stream =
      BernoulliStream(3, {{0.2, 1000}, {0.8, 1000}, {0.2, 1000}, {0.8, 1000}});
  PageHinkley up(PageHinkleyOptions{.mode = PageHinkleyMode::kUp});
  PageHinkley down(PageHinkleyOptions{.mode = PageHinkleyMode::kDown});
  PageHinkley both;
  PageHinkley calibrated(Calibrated());  // PageHinkley(delta=0.05, alpha=1.0)
  EXPECT_EQ(DriftIndices(&up, stream), (std::vector<int>{1080, 3155}));
  EXPECT_EQ(DriftIndices(&down, stream), std::vector<int>{2161});
  EXPECT_EQ(DriftIndices(&both, stream), (std::vector<int>{1080, 2042, 3058}));
  EXPECT_EQ(DriftIndices(&calibrated, stream), (std::vector<int>{1092, 2100, 3089}));
}

TEST(PageHinkleyTest, MatchesRiverOnStationary) {
  // 20,000 Bernoulli(0.3) draws, seed 1: the defaults raise a false alarm at 10733.
  PageHinkley ph;
  EXPECT_EQ(DriftIndices(&ph, BernoulliStream(1, {{0.3, 20'000}})), std::vector<int>{10733});
}

TEST(PageHinkleyTest, RestartsAfterDetectionAndOnReset) {
  PageHinkley ph(
      PageHinkleyOptions{.min_instances = 1, .delta = 0.5, .threshold = 1.0, .alpha = 1.0});
  for (double x : {0.0, 0.0, 0.0, 4.0}) ph.Update(x);
  ASSERT_TRUE(ph.drift_detected());
  // The update after a detection starts from scratch: mean = x, deviation 0.
  ph.Update(7.0);
  EXPECT_FALSE(ph.drift_detected());
  EXPECT_EQ(ph.count(), 1u);
  EXPECT_EQ(ph.mean(), 7.0);
  EXPECT_EQ(ph.increase_statistic(), 0.0);
  ph.Reset();
  EXPECT_EQ(Serialize(ph), Serialize(PageHinkley(ph.options())));
}

TEST(PageHinkleySerializationTest, RoundTripMidStreamGivesIdenticalFuture) {
  const std::vector<double> stream = NormalStream(2, {{0.0, 1.0, 1000}, {1.0, 1.0, 1000}});
  for (int save_at : {0, 10, 700, 1040, 1041, 1500}) {
    PageHinkley original;
    for (int i = 0; i < save_at; ++i) original.Update(stream[i]);
    PageHinkley restored(PageHinkleyOptions{.threshold = 3.0, .mode = PageHinkleyMode::kUp});
    Deserialize(Serialize(original), &restored);
    EXPECT_EQ(restored.options().threshold, 50.0);
    EXPECT_EQ(restored.options().mode, PageHinkleyMode::kBoth);
    for (int i = save_at; i < static_cast<int>(stream.size()); ++i) {
      original.Update(stream[i]);
      restored.Update(stream[i]);
      ASSERT_EQ(restored.drift_detected(), original.drift_detected()) << save_at << " " << i;
      ASSERT_EQ(restored.mean(), original.mean()) << save_at << " " << i;
      ASSERT_EQ(restored.increase_statistic(), original.increase_statistic());
      ASSERT_EQ(restored.decrease_statistic(), original.decrease_statistic());
    }
    EXPECT_EQ(Serialize(restored), Serialize(original));
  }
}

TEST(PageHinkleySerializationTest, TruncatedArchivesThrowAndLeaveDetectorUnchanged) {
  PageHinkley saved;
  for (double x : BernoulliStream(1, {{0.3, 500}})) saved.Update(x);
  PageHinkley target(Calibrated());
  for (double x : BernoulliStream(2, {{0.6, 50}})) target.Update(x);
  testing::ExpectTruncationsFailAndKeepState(Serialize(saved), &target);
}

// Byte layout: [0] endianness, [1, 5) version, [5, 13) min_instances, [13, 21) delta,
// [21, 29) threshold, [29, 37) alpha, [37] mode, [38, 46) count, [46, 54) mean,
// [54, 62) S+, [62, 70) S-, [70, 78) m+, [78, 86) M-, [86] drift flag.
TEST(PageHinkleySerializationTest, CorruptedArchivesAreRejected) {
  PageHinkley saved;
  for (double x : BernoulliStream(1, {{0.3, 100}})) saved.Update(x);
  const std::string bytes = Serialize(saved);
  ASSERT_EQ(bytes.size(), 87u);
  const auto expect_rejected = [&](std::size_t offset, char value) {
    std::string corrupted = bytes;
    corrupted[offset] = value;
    PageHinkley target;
    EXPECT_THROW(Deserialize(corrupted, &target), cereal::Exception) << offset;
    EXPECT_EQ(Serialize(target), Serialize(PageHinkley())) << offset;
  };
  expect_rejected(1, 2);                         // Unknown version.
  expect_rejected(37, 3);                        // Unknown mode.
  expect_rejected(36, static_cast<char>(0x7f));  // alpha's sign/exponent byte: alpha > 1.
  expect_rejected(86, 2);                        // Not a boolean.
}

TEST(PageHinkleyOptionsTest, SetParsesEveryOption) {
  PageHinkleyOptions o;
  EXPECT_TRUE(o.Set("min_instances", "10").ok());
  EXPECT_TRUE(o.Set("delta", "0.1").ok());
  EXPECT_TRUE(o.Set("threshold", "20").ok());
  EXPECT_TRUE(o.Set("alpha", "1").ok());
  EXPECT_TRUE(o.Set("mode", "down").ok());
  EXPECT_EQ(o.min_instances, 10u);
  EXPECT_EQ(o.delta, 0.1);
  EXPECT_EQ(o.threshold, 20.0);
  EXPECT_EQ(o.alpha, 1.0);
  EXPECT_EQ(o.mode, PageHinkleyMode::kDown);
  const absl::Status s = o.Set("mode", "sideways");
  EXPECT_NE(std::string(s.message()).find("up, down, both"), std::string::npos) << s;
  EXPECT_NE(std::string(o.Set("lambda", "1").message()).find("lambda"), std::string::npos);
}

TEST(PageHinkleyOptionsTest, ValidateNamesTheOffendingField) {
  const auto message = [](PageHinkleyOptions o) { return std::string(o.Validate().message()); };
  EXPECT_NE(message({.delta = -0.1}).find("'delta'"), std::string::npos);
  EXPECT_NE(message({.threshold = 0.0}).find("'threshold'"), std::string::npos);
  EXPECT_NE(message({.threshold = INFINITY}).find("'threshold'"), std::string::npos);
  EXPECT_NE(message({.alpha = 0.0}).find("'alpha'"), std::string::npos);
  EXPECT_NE(message({.alpha = 1.5}).find("'alpha'"), std::string::npos);
  EXPECT_TRUE((PageHinkleyOptions{.min_instances = 0, .delta = 0.0}).Validate().ok());
  EXPECT_FALSE(PageHinkley::Create(PageHinkleyOptions{.alpha = 2.0}).ok());
}

}  // namespace
}  // namespace riffle::learners
