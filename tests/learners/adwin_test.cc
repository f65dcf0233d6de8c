#include "learners/adwin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
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

// Bernoulli(0.2) for 1,000 draws, then Bernoulli(0.8) for 1,000 (change at index 1000).
std::vector<double> BernoulliShift(std::uint64_t seed) {
  return BernoulliStream(seed, {{0.2, 1000}, {0.8, 1000}});
}

TEST(AdwinTest, DefaultsAreRivers) {
  const AdwinOptions o;
  EXPECT_DOUBLE_EQ(o.delta, 0.002);
  EXPECT_EQ(o.clock, 32u);
  EXPECT_EQ(o.max_buckets, 5u);
  EXPECT_EQ(o.min_window_length, 5u);
  EXPECT_EQ(o.grace_period, 10u);
  EXPECT_TRUE(o.Validate().ok());
}

TEST(AdwinTest, WindowStatisticsHandComputed) {
  // clock = 1000: no check, so the window keeps everything.
  Adwin adwin(AdwinOptions{.clock = 1000});
  EXPECT_EQ(adwin.width(), 0u);
  EXPECT_EQ(adwin.estimation(), 0.0);
  EXPECT_EQ(adwin.variance(), 0.0);
  for (double x : {1.0, 2.0, 3.0, 4.0, 5.0}) adwin.Update(x);
  // Sum 15, mean 3, squared deviations 4 + 1 + 0 + 1 + 4 = 10, population variance 10 / 5 = 2.
  // Welford's steps are exact in binary: the k-th element adds (k - 1) (x_k - mean_{k-1})^2 / k
  // = 0, 1 * 1^2 / 2, 2 * 1.5^2 / 3, 3 * 2^2 / 4, 4 * 2.5^2 / 5 = 0, 0.5, 1.5, 3, 5.
  EXPECT_EQ(adwin.width(), 5u);
  EXPECT_EQ(adwin.total(), 15.0);
  EXPECT_EQ(adwin.estimation(), 3.0);
  EXPECT_EQ(adwin.sum_squared_deviations(), 10.0);
  EXPECT_EQ(adwin.variance(), 2.0);
}

TEST(AdwinTest, BucketsMergeAsAnExponentialHistogram) {
  // max_buckets = 2: a row merges its two oldest summaries into the next row when it reaches
  // 3. Elements 0..6 (row contents oldest first, "01" summarizing elements 0 and 1):
  //   after 2: row 0 [0 1 2] -> [2], row 1 [01]
  //   after 4: row 0 [2 3 4] -> [4], row 1 [01 23]
  //   after 6: row 0 [4 5 6] -> [6], row 1 [01 23 45] -> [45], row 2 [0123]
  // so 3 rows of one summary each.
  Adwin adwin(AdwinOptions{.clock = 1000, .max_buckets = 2});
  for (int i = 0; i < 7; ++i) adwin.Update(static_cast<double>(i));
  EXPECT_EQ(adwin.NumRows(), 3u);
  EXPECT_EQ(adwin.NumBuckets(), 3u);
  // One more element: row 0 [6 7], nothing merges.
  adwin.Update(7.0);
  EXPECT_EQ(adwin.NumRows(), 3u);
  EXPECT_EQ(adwin.NumBuckets(), 4u);
  // The window's statistics are exact whatever the merges: 0..7 sum to 28, and Welford's k-th
  // step adds (k - 1) (k / 2)^2 / k = (k - 1) k / 4, which sums to 42 over k = 1..8.
  EXPECT_EQ(adwin.width(), 8u);
  EXPECT_EQ(adwin.total(), 28.0);
  EXPECT_EQ(adwin.sum_squared_deviations(), 42.0);
}

TEST(AdwinTest, DetectsMeanIncreaseWithinBoundedDelay) {
  // Change from mean 0.2 to 0.8 at index 1000. Bound: a cut is certain once the 64 newest
  // elements are post-change. Then some bucket boundary leaves n1 >= 48 post-change elements
  // in W1 (the newest 48..64 lie in rows 0..4, whose buckets hold at most 16 elements), and
  // n0 ~ 1,000 in W0. With W = 1064, window variance ~ 0.18 (a 1000:64 mix of means 0.2 and
  // 0.8), delta' = ln(2 ln(1064) / 0.002) = 8.85 and 1/m = 1/(1012 - 4) + 1/(48 - 4) = 0.0237:
  //   epsilon = sqrt(2 * 0.0237 * 0.18 * 8.85) + 2/3 * 8.85 * 0.0237 = 0.275 + 0.140 = 0.415,
  // below the gap 0.6 by more than 3 standard deviations of the two sample means. The check
  // runs every 32 updates, so the first detection comes before index 1000 + 64 + 32.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Adwin adwin;
    const std::vector<int> detections = DriftIndices(&adwin, BernoulliShift(seed));
    ASSERT_FALSE(detections.empty()) << "seed " << seed;
    EXPECT_GE(detections.front(), 1000) << "seed " << seed;
    EXPECT_LT(detections.front(), 1000 + 64 + 32) << "seed " << seed;
  }
}

TEST(AdwinTest, DetectsMeanDecrease) {
  // The same bound as above holds for a decrease (the test is two-sided).
  Adwin adwin;
  const std::vector<int> detections =
      DriftIndices(&adwin, BernoulliStream(1, {{0.8, 1000}, {0.2, 1000}}));
  ASSERT_FALSE(detections.empty());
  EXPECT_GE(detections.front(), 1000);
  EXPECT_LT(detections.front(), 1000 + 64 + 32);
}

TEST(AdwinTest, NoDetectionOnStationaryStreams) {
  // 100,000 Bernoulli(0.3) draws per seed, River's defaults (delta = 0.002). ADWIN bounds the
  // chance of a false cut at one check by about delta; in practice its bound is far from
  // tight. Measured on seeds 1..200 of this generator: 5 runs of 200 (2.5%) had one false
  // detection, the others none. Seeds 1..5 are simply the first five (all clean); a cut test
  // that underestimates the window variance by half already fires on them (checked).
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Adwin adwin;
    EXPECT_TRUE(DriftIndices(&adwin, BernoulliStream(seed, {{0.3, 100'000}})).empty())
        << "seed " << seed;
    EXPECT_EQ(adwin.n_detections(), 0u);
    EXPECT_EQ(adwin.width(), 100'000u);
  }
}

TEST(AdwinTest, NoDetectionOnConstantStream) {
  // Zero variance and equal sub-window means: |mu0 - mu1| = 0 is never above epsilon.
  Adwin adwin(AdwinOptions{.clock = 1});
  for (int i = 0; i < 5000; ++i) {
    adwin.Update(1.0);
    ASSERT_FALSE(adwin.drift_detected()) << i;
  }
  EXPECT_EQ(adwin.width(), 5000u);
}

// Golden values from River 0.26.1 (river.drift.ADWIN, default arguments unless stated) on the
// same streams, regenerated in Python as described in drift_test_util.h; the final statistics
// are River's ADWIN.width, .total, .variance and .estimation, printed with float.hex().
TEST(AdwinTest, MatchesRiverOnBernoulliShift) {
  Adwin adwin;
  EXPECT_EQ(DriftIndices(&adwin, BernoulliShift(1)), std::vector<int>{1055});
  EXPECT_EQ(adwin.width(), 944u);
  EXPECT_EQ(adwin.total(), 770.0);
  EXPECT_EQ(adwin.sum_squared_deviations(), 0x1.1bdb1e5f7526cp+7);
  EXPECT_EQ(adwin.estimation(), 0x1.a1a08ad8f2fbbp-1);
}

TEST(AdwinTest, MatchesRiverOnGaussianMeanShift) {
  // Normal(0, 1) for 1,000 draws, then Normal(1, 1), seed 2.
  Adwin adwin;
  EXPECT_EQ(DriftIndices(&adwin, NormalStream(2, {{0.0, 1.0, 1000}, {1.0, 1.0, 1000}})),
            std::vector<int>{1055});
  EXPECT_EQ(adwin.width(), 944u);
  EXPECT_EQ(adwin.total(), 0x1.db371250bf035p+9);
  EXPECT_EQ(adwin.sum_squared_deviations(), 0x1.cce4e46d83742p+9);
  EXPECT_EQ(adwin.estimation(), 0x1.01be696433885p+0);
}

TEST(AdwinTest, MatchesRiverOnRepeatedShifts) {
  // Means 0.2, 0.8, 0.2, 0.8 for 1,000 draws each, seed 3: one detection per change, each
  // ~40-55 updates late (River resets after each, so every change is found afresh).
  Adwin adwin;
  EXPECT_EQ(DriftIndices(&adwin,
                         BernoulliStream(3, {{0.2, 1000}, {0.8, 1000}, {0.2, 1000}, {0.8, 1000}})),
            (std::vector<int>{1055, 2047, 3039}));
  EXPECT_EQ(adwin.n_detections(), 3u);
}

TEST(AdwinTest, MatchesRiverWithNonDefaultOptions) {
  // ADWIN(delta=0.05, clock=1, max_buckets=3, min_window_length=10, grace_period=0).
  Adwin adwin(AdwinOptions{
      .delta = 0.05, .clock = 1, .max_buckets = 3, .min_window_length = 10, .grace_period = 0});
  EXPECT_EQ(DriftIndices(&adwin, NormalStream(2, {{0.0, 1.0, 1000}, {1.0, 1.0, 1000}})),
            std::vector<int>{1026});
  EXPECT_EQ(adwin.width(), 973u);
  EXPECT_EQ(adwin.estimation(), 0x1.03ea6cf46bbc8p+0);
}

TEST(AdwinTest, WindowShrinksAtDetectionAndRestartsOnNextUpdate) {
  const std::vector<double> stream = BernoulliShift(1);
  Adwin adwin;
  int i = 0;
  for (; i < static_cast<int>(stream.size()); ++i) {
    adwin.Update(stream[i]);
    if (adwin.drift_detected()) break;
  }
  ASSERT_EQ(i, 1055);
  // No cut before: the window held all 1,056 elements, with mean ~0.25. The cut dropped the
  // old concept's summaries, leaving mostly post-change elements (mean well above 0.5).
  EXPECT_LT(adwin.width(), 1056u);
  EXPECT_GT(adwin.estimation(), 0.5);
  EXPECT_EQ(adwin.n_detections(), 1u);
  // River semantics: the next update starts a fresh window with just that element.
  adwin.Update(stream[i + 1]);
  EXPECT_FALSE(adwin.drift_detected());
  EXPECT_EQ(adwin.width(), 1u);
  EXPECT_EQ(adwin.estimation(), stream[i + 1]);
  EXPECT_EQ(adwin.n_detections(), 1u);
}

TEST(AdwinTest, ResetRestoresFreshState) {
  const std::vector<double> stream = BernoulliShift(1);
  Adwin adwin;
  DriftIndices(&adwin, stream);
  ASSERT_EQ(adwin.n_detections(), 1u);
  adwin.Reset();
  EXPECT_EQ(adwin.width(), 0u);
  EXPECT_EQ(adwin.total(), 0.0);
  EXPECT_EQ(adwin.n_detections(), 0u);
  EXPECT_FALSE(adwin.drift_detected());
  EXPECT_EQ(Serialize(adwin), Serialize(Adwin()));
  // And it detects exactly as a new detector would.
  EXPECT_EQ(DriftIndices(&adwin, stream), std::vector<int>{1055});
}

TEST(AdwinTest, MemoryStaysLogarithmicOnAMillionElements) {
  // 1,000,000 Bernoulli(0.3) draws (seed 1: no detection, so the window grows to 10^6).
  // Row r holds at most max_buckets summaries of 2^r elements and the last row is non-empty,
  // so rows <= floor(log2(width)) + 1 = 20 and buckets <= 5 * 20 = 100.
  testing::SplitMix64 rng(1);
  Adwin adwin;
  std::size_t max_buckets = 0;
  std::size_t max_bytes = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    adwin.Update(rng.Bernoulli(0.3));
    max_buckets = std::max(max_buckets, adwin.NumBuckets());
    max_bytes = std::max(max_bytes, adwin.MemoryBytes());
  }
  EXPECT_EQ(adwin.n_detections(), 0u);
  ASSERT_EQ(adwin.width(), 1'000'000u);
  EXPECT_LE(adwin.NumRows(), 20u);
  EXPECT_LE(max_buckets, 100u);
  // 20 rows of 6 slots of 16 bytes (about 2 KB, doubled at most by vector growth).
  EXPECT_LT(max_bytes, 5000u);
}

TEST(AdwinTest, MaxBucketsOneStillTracksTheWindow) {
  // River 0.26 panics with max_buckets=1; here every row merges as soon as it holds two
  // summaries, and middle rows can be empty. Width and total stay exact.
  Adwin adwin(AdwinOptions{.clock = 1, .max_buckets = 1});
  for (int i = 0; i < 1000; ++i) adwin.Update(i % 2 == 0 ? 0.0 : 1.0);
  EXPECT_EQ(adwin.n_detections(), 0u);
  EXPECT_EQ(adwin.width(), 1000u);
  EXPECT_EQ(adwin.total(), 500.0);
  // 1000 = 0b1111101000: one bucket per set bit.
  EXPECT_EQ(adwin.NumBuckets(), 6u);
}

// Save at several points (before the change, at the detection, right after it, much later)
// and check that the restored copy then behaves identically, bit for bit.
TEST(AdwinSerializationTest, RoundTripMidStreamGivesIdenticalFuture) {
  const std::vector<double> stream =
      BernoulliStream(3, {{0.2, 1000}, {0.8, 1000}, {0.2, 1000}, {0.8, 1000}});
  for (int save_at : {0, 500, 1055, 1056, 2500}) {
    Adwin original;
    for (int i = 0; i < save_at; ++i) original.Update(stream[i]);
    Adwin restored(AdwinOptions{.delta = 0.1, .clock = 3});  // Overwritten by Load.
    Deserialize(Serialize(original), &restored);
    EXPECT_EQ(restored.options().delta, 0.002);
    EXPECT_EQ(restored.options().clock, 32u);
    for (int i = save_at; i < static_cast<int>(stream.size()); ++i) {
      original.Update(stream[i]);
      restored.Update(stream[i]);
      ASSERT_EQ(restored.drift_detected(), original.drift_detected()) << save_at << " " << i;
      ASSERT_EQ(restored.width(), original.width()) << save_at << " " << i;
      ASSERT_EQ(restored.estimation(), original.estimation()) << save_at << " " << i;
      ASSERT_EQ(restored.sum_squared_deviations(), original.sum_squared_deviations());
    }
    EXPECT_EQ(restored.n_detections(), original.n_detections());
    EXPECT_EQ(Serialize(restored), Serialize(original));
  }
}

TEST(AdwinSerializationTest, CloneIsIndependentAndIdentical) {
  const std::vector<double> stream = BernoulliShift(2);
  Adwin original;
  for (int i = 0; i < 900; ++i) original.Update(stream[i]);
  std::unique_ptr<DriftDetector> clone = original.Clone();
  EXPECT_EQ(Serialize(*clone), Serialize(original));
  original.Update(1.0);
  EXPECT_NE(Serialize(*clone), Serialize(original));
}

TEST(AdwinSerializationTest, TruncatedArchivesThrowAndLeaveDetectorUnchanged) {
  Adwin saved;
  for (double x : BernoulliShift(1)) saved.Update(x);
  Adwin target(AdwinOptions{.clock = 7});
  for (double x : BernoulliStream(9, {{0.5, 300}})) target.Update(x);
  testing::ExpectTruncationsFailAndKeepState(Serialize(saved), &target);
}

// Byte layout of a PortableBinary archive of Adwin: [0] endianness flag, [1, 5) version,
// [5, 13) delta, [13, 21) clock, [21, 29) max_buckets, [29, 37) min_window_length,
// [37, 45) grace_period, [45, 53) width, [53, 61) total, [61, 69) sum of squared deviations,
// [69, 77) tick, [77, 85) n_detections, [85] drift flag, then the histogram.
TEST(AdwinSerializationTest, CorruptedArchivesAreRejected) {
  Adwin saved;
  for (int i = 0; i < 100; ++i) saved.Update(i % 3 == 0 ? 1.0 : 0.0);
  const std::string bytes = Serialize(saved);
  ASSERT_EQ(bytes[1], 1);     // Version 1, little-endian.
  ASSERT_EQ(bytes[45], 100);  // width = 100.
  const auto expect_rejected = [&](std::size_t offset, char value) {
    std::string corrupted = bytes;
    corrupted[offset] = value;
    Adwin target;
    EXPECT_THROW(Deserialize(corrupted, &target), cereal::Exception) << offset;
    EXPECT_EQ(Serialize(target), Serialize(Adwin())) << offset;
  };
  expect_rejected(1, 2);     // Unknown version.
  expect_rejected(21, 0);    // max_buckets = 0 fails validation.
  expect_rejected(45, 101);  // width no longer matches the buckets.
  expect_rejected(69, 40);   // tick >= clock.
  expect_rejected(85, 2);    // Not a boolean.
}

TEST(AdwinOptionsTest, SetParsesEveryOption) {
  AdwinOptions o;
  EXPECT_TRUE(o.Set("delta", "0.01").ok());
  EXPECT_TRUE(o.Set("clock", "1").ok());
  EXPECT_TRUE(o.Set("max_buckets", "7").ok());
  EXPECT_TRUE(o.Set("min_window_length", "3").ok());
  EXPECT_TRUE(o.Set("grace_period", "0").ok());
  EXPECT_EQ(o.delta, 0.01);
  EXPECT_EQ(o.clock, 1u);
  EXPECT_EQ(o.max_buckets, 7u);
  EXPECT_EQ(o.min_window_length, 3u);
  EXPECT_EQ(o.grace_period, 0u);
  EXPECT_TRUE(o.Validate().ok());
}

TEST(AdwinOptionsTest, SetRejectsUnknownNamesAndBadValues) {
  AdwinOptions o;
  absl::Status s = o.Set("deltaa", "0.1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("deltaa"), std::string::npos) << s;
  s = o.Set("clock", "-1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("clock"), std::string::npos) << s;
  EXPECT_FALSE(o.Set("delta", "abc").ok());
  EXPECT_EQ(o.clock, 32u);  // Unchanged by the failed Set.
}

TEST(AdwinOptionsTest, ValidateNamesTheOffendingField) {
  const auto message = [](AdwinOptions o) { return std::string(o.Validate().message()); };
  EXPECT_NE(message({.delta = 0.0}).find("'delta'"), std::string::npos);
  EXPECT_NE(message({.delta = 1.0}).find("'delta'"), std::string::npos);
  EXPECT_NE(message({.delta = std::nan("")}).find("'delta'"), std::string::npos);
  EXPECT_NE(message({.clock = 0}).find("'clock'"), std::string::npos);
  EXPECT_NE(message({.max_buckets = 0}).find("'max_buckets'"), std::string::npos);
  EXPECT_NE(message({.max_buckets = kMaxAdwinBuckets + 1}).find("'max_buckets'"),
            std::string::npos);
  EXPECT_NE(message({.min_window_length = 0}).find("'min_window_length'"), std::string::npos);
  EXPECT_TRUE(AdwinOptions{.max_buckets = kMaxAdwinBuckets}.Validate().ok());
  EXPECT_FALSE(Adwin::Create(AdwinOptions{.clock = 0}).ok());
  EXPECT_TRUE(Adwin::Create(AdwinOptions{}).ok());
}

}  // namespace
}  // namespace riffle::learners
