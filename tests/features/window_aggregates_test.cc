#include "features/window_aggregates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cereal/archives/portable_binary.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace riffle::features {
namespace {

using ::testing::HasSubstr;
using Function = AggregateDef::Function;
using Values = std::map<std::string, double>;

constexpr std::int64_t kSecond = 1'000'000;
// 2024-05-01T12:00:00Z: a multiple of an hour, so panes of 1 s .. 1 h start at T0.
constexpr std::int64_t kT0 = std::int64_t{1'714'564'800} * kSecond;

std::int64_t At(double seconds) {
  return kT0 + static_cast<std::int64_t>(std::llround(seconds * kSecond));
}

NamedFeature Num(std::string_view name, double v) { return {name, FeatureValue::Number(v)}; }
NamedFeature Text(std::string_view name, std::string_view t) {
  return {name, FeatureValue::Text(t)};
}

AggregateDef Def(std::string name, Function function, std::uint32_t window, std::uint32_t hop = 0) {
  AggregateDef d;
  d.name = std::move(name);
  d.function = function;
  d.window_seconds = window;
  d.hop_seconds = hop;
  return d;
}

AggregateDef WithField(AggregateDef d, std::string field) {
  d.field = std::move(field);
  return d;
}
AggregateDef KeyedBy(AggregateDef d, std::string key_field) {
  d.key_field = std::move(key_field);
  return d;
}
AggregateDef Late(AggregateDef d, std::uint32_t lateness) {
  d.allowed_lateness_seconds = lateness;
  return d;
}

WindowAggregator Make(std::vector<AggregateDef> defs, std::uint64_t max_keys = 1'000'000,
                      std::uint32_t max_distinct = 1024) {
  absl::StatusOr<WindowAggregator> a = WindowAggregator::Create(
      {.aggregates = std::move(defs), .max_keys = max_keys, .max_distinct_per_pane = max_distinct});
  EXPECT_TRUE(a.ok()) << a.status();
  return *std::move(a);
}

// The aggregates Compute gives an event, by name.
Values Peek(const WindowAggregator& a, std::optional<std::string_view> key,
            const std::vector<NamedFeature>& features, std::int64_t t) {
  WindowAggregator::Scratch scratch;
  std::vector<NamedFeature> out;
  a.Compute(key, features, t, &out, &scratch);
  Values values;
  for (const NamedFeature& f : out) {
    EXPECT_EQ(f.value.kind, FeatureValue::Kind::kNumber);
    EXPECT_TRUE(values.emplace(std::string(f.name), f.value.number).second) << f.name;
  }
  return values;
}

// ComputeAndObserve, as the served model does per event. What it computes must be what Compute
// alone gives (Peek).
Values Step(WindowAggregator& a, std::optional<std::string_view> key,
            const std::vector<NamedFeature>& features, std::int64_t t) {
  Values values = Peek(a, key, features, t);
  WindowAggregator::Scratch scratch;
  std::vector<NamedFeature> out;
  a.ComputeAndObserve(key, features, t, &out, &scratch);
  Values fused;
  for (const NamedFeature& f : out) fused.emplace(std::string(f.name), f.value.number);
  EXPECT_EQ(fused, values);
  return values;
}

void Label(WindowAggregator& a, const std::vector<NamedFeature>& features, std::string_view label) {
  WindowAggregator::Scratch scratch;
  a.ObserveLabel(features, label, &scratch);
}

std::string Save(const WindowAggregator& a) {
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(a);
  }
  return buffer.str();
}

WindowAggregator Load(const std::string& bytes) {
  std::stringstream buffer(bytes);
  WindowAggregator a = WindowAggregator::ForLoading();
  cereal::PortableBinaryInputArchive in(buffer);
  in(a);
  return a;
}

const std::vector<NamedFeature> kNone;

// --- Functions on tumbling and sliding windows -----------------------------------------------

TEST(WindowAggregatorTest, CountOnATumblingWindow) {
  WindowAggregator a = Make({Def("n", Function::kCount, 3600)});
  // One window per hour: [T0, T0 + 1h), [T0 + 1h, ...).
  EXPECT_EQ(Step(a, "k", kNone, At(0)), (Values{{"n", 0}}));
  EXPECT_EQ(Step(a, "k", kNone, At(10)), (Values{{"n", 1}}));
  EXPECT_EQ(Step(a, "k", kNone, At(3599)), (Values{{"n", 2}}));
  EXPECT_EQ(Step(a, "k", kNone, At(3600)), (Values{{"n", 0}}));  // the next window
  EXPECT_EQ(Step(a, "k", kNone, At(3700)), (Values{{"n", 1}}));
  EXPECT_EQ(Peek(a, "other", kNone, At(3700)), (Values{{"n", 0}}));  // a key never seen: 0
}

TEST(WindowAggregatorTest, CountOnASlidingWindow) {
  // 10 minutes by 1 minute: t's pane and the 9 before it.
  WindowAggregator a = Make({Def("n", Function::kCount, 600, 60)});
  EXPECT_EQ(Step(a, "k", kNone, At(0)), (Values{{"n", 0}}));
  EXPECT_EQ(Step(a, "k", kNone, At(30)), (Values{{"n", 1}}));
  EXPECT_EQ(Step(a, "k", kNone, At(59)), (Values{{"n", 2}}));
  EXPECT_EQ(Step(a, "k", kNone, At(60)), (Values{{"n", 3}}));
  // Pane 9 (540 .. 600 s): the window is panes 0 .. 9, all 4 events.
  EXPECT_EQ(Step(a, "k", kNone, At(599)), (Values{{"n", 4}}));
  // Pane 10: panes 1 .. 10; the 3 events of pane 0 (0, 30, 59 s) left the window.
  EXPECT_EQ(Step(a, "k", kNone, At(600)), (Values{{"n", 2}}));
  // Pane 15: panes 6 .. 15 hold 599 and 600 s.
  EXPECT_EQ(Peek(a, "k", kNone, At(959)), (Values{{"n", 2}}));
  // Pane 19: panes 10 .. 19 hold 600 s only.
  EXPECT_EQ(Peek(a, "k", kNone, At(1199)), (Values{{"n", 1}}));
}

TEST(WindowAggregatorTest, SumMeanMinMaxOnATumblingWindow) {
  WindowAggregator a = Make({WithField(Def("sum", Function::kSum, 3600), "amount"),
                             WithField(Def("mean", Function::kMean, 3600), "amount"),
                             WithField(Def("min", Function::kMin, 3600), "amount"),
                             WithField(Def("max", Function::kMax, 3600), "amount")});
  // No number yet: sum 0, the others absent.
  EXPECT_EQ(Step(a, "k", {Num("amount", 10)}, At(0)), (Values{{"sum", 0}}));
  EXPECT_EQ(Step(a, "k", {Num("amount", 30)}, At(100)),
            (Values{{"sum", 10}, {"mean", 10}, {"min", 10}, {"max", 10}}));
  // An event without the field counts for nothing here.
  EXPECT_EQ(Step(a, "k", kNone, At(200)),
            (Values{{"sum", 40}, {"mean", 20}, {"min", 10}, {"max", 30}}));
  EXPECT_EQ(Step(a, "k", {Num("amount", -5)}, At(300)),
            (Values{{"sum", 40}, {"mean", 20}, {"min", 10}, {"max", 30}}));
  // 10 + 30 - 5 = 35 over 3.
  EXPECT_EQ(Peek(a, "k", kNone, At(3599)),
            (Values{{"sum", 35}, {"mean", 35.0 / 3}, {"min", -5}, {"max", 30}}));
  EXPECT_EQ(Peek(a, "k", kNone, At(3600)), (Values{{"sum", 0}}));  // next hour
}

TEST(WindowAggregatorTest, SumMeanMinMaxOnASlidingWindow) {
  // 30 minutes by 10: panes of 600 s; the window of t is its pane and the two before.
  WindowAggregator a = Make({WithField(Def("sum", Function::kSum, 1800, 600), "amount"),
                             WithField(Def("mean", Function::kMean, 1800, 600), "amount"),
                             WithField(Def("min", Function::kMin, 1800, 600), "amount"),
                             WithField(Def("max", Function::kMax, 1800, 600), "amount")});
  Step(a, "k", {Num("amount", 4)}, At(0));       // pane 0
  Step(a, "k", {Num("amount", 8)}, At(700));     // pane 1
  Step(a, "k", {Num("amount", 1.5)}, At(1300));  // pane 2
  // Pane 2: panes 0 .. 2 = 4, 8, 1.5.
  EXPECT_EQ(Peek(a, "k", kNone, At(1799)),
            (Values{{"sum", 13.5}, {"mean", 4.5}, {"min", 1.5}, {"max", 8}}));
  // Pane 3: panes 1 .. 3 = 8, 1.5.
  EXPECT_EQ(Peek(a, "k", kNone, At(1800)),
            (Values{{"sum", 9.5}, {"mean", 4.75}, {"min", 1.5}, {"max", 8}}));
  // Pane 5: panes 3 .. 5 are empty.
  EXPECT_EQ(Peek(a, "k", kNone, At(3000)), (Values{{"sum", 0}}));
}

TEST(WindowAggregatorTest, AnEventAtAPaneStartBelongsToThatPane) {
  WindowAggregator a =
      Make({Def("tumbling", Function::kCount, 60), Def("sliding", Function::kCount, 120, 60)});
  Step(a, "k", kNone, At(59.999999));  // the last microsecond of pane 0
  // 60 s starts pane 1: the tumbling window is new, the sliding one still has pane 0.
  EXPECT_EQ(Step(a, "k", kNone, At(60)), (Values{{"tumbling", 0}, {"sliding", 1}}));
  EXPECT_EQ(Peek(a, "k", kNone, At(60)), (Values{{"tumbling", 1}, {"sliding", 2}}));
  // 120 s starts pane 2: pane 0 leaves the sliding window.
  EXPECT_EQ(Peek(a, "k", kNone, At(120)), (Values{{"tumbling", 0}, {"sliding", 1}}));
}

TEST(WindowAggregatorTest, PanesOfNegativeTimesFloorTowardsMinusInfinity) {
  WindowAggregator a = Make({Late(Def("n", Function::kCount, 60), 60)});
  // -30 s is in pane -1 ([-60 s, 0)), as -1 s and -60 s are; 0 s is pane 0.
  Step(a, "k", kNone, -30 * kSecond);
  EXPECT_EQ(Peek(a, "k", kNone, -1 * kSecond), (Values{{"n", 1}}));
  EXPECT_EQ(Peek(a, "k", kNone, -60 * kSecond), (Values{{"n", 1}}));
  EXPECT_EQ(Peek(a, "k", kNone, 0), (Values{{"n", 0}}));
}

TEST(WindowAggregatorTest, AnEventIsNeverInItsOwnAggregates) {
  WindowAggregator a =
      Make({Def("n", Function::kCount, 600), WithField(Def("sum", Function::kSum, 600), "amount"),
            Def("since", Function::kSecondsSinceLast, 600)});
  const std::vector<NamedFeature> event = {Num("amount", 7)};
  EXPECT_EQ(Step(a, "k", event, At(5)), (Values{{"n", 0}, {"sum", 0}}));
  // Compute does not modify state: asking again gives the same.
  EXPECT_EQ(Peek(a, "k", event, At(6)), (Values{{"n", 1}, {"sum", 7}, {"since", 1}}));
  EXPECT_EQ(Peek(a, "k", event, At(6)), (Values{{"n", 1}, {"sum", 7}, {"since", 1}}));
}

// --- Lateness --------------------------------------------------------------------------------

TEST(WindowAggregatorTest, AnOutOfOrderEventWithinTheLatenessUpdatesItsOwnPane) {
  WindowAggregator a = Make({Late(Def("n", Function::kCount, 600, 60), 120),
                             Late(WithField(Def("sum", Function::kSum, 3600), "amount"), 120)});
  Step(a, "k", {Num("amount", 1)}, At(300));  // pane 5; key's newest time 300 s
  // 200 s is 100 s before the newest: on time. Its window (panes -6 .. 3) excludes pane 5; the
  // hour holds the 300 s event.
  EXPECT_EQ(Step(a, "k", {Num("amount", 10)}, At(200)), (Values{{"n", 0}, {"sum", 1}}));
  // 250 s (pane 4): panes -5 .. 4 hold 200 s; the hour 1 + 10.
  EXPECT_EQ(Step(a, "k", {Num("amount", 100)}, At(250)), (Values{{"n", 1}, {"sum", 11}}));
  // After all of them: 3 events in panes 3 .. 5, 111 in the hour.
  EXPECT_EQ(Peek(a, "k", kNone, At(310)), (Values{{"n", 3}, {"sum", 111}}));
  EXPECT_EQ(a.stats().late_events, 0u);
}

TEST(WindowAggregatorTest, ATooLateEventIsAbsentCountedAndLeavesTheStateUnchanged) {
  WindowAggregator a = Make({Late(Def("n", Function::kCount, 600, 60), 60),
                             Def("since", Function::kSecondsSinceLast, 600)});
  Step(a, "k", kNone, At(300));
  const std::string before = Save(a);
  // 200 s < 300 s - 60 s: late for both aggregates, even COUNT has no value.
  EXPECT_EQ(Step(a, "k", kNone, At(200)), Values{});
  EXPECT_EQ(a.stats().late_events, 1u);
  EXPECT_EQ(Peek(a, "k", kNone, At(310)), (Values{{"n", 1}, {"since", 10}}));
  // The state is exactly what it was but for the counter: the checkpoints differ in one byte
  // (late_events, 0 -> 1).
  const std::string after = Save(a);
  ASSERT_EQ(after.size(), before.size());
  std::size_t differences = 0;
  for (std::size_t i = 0; i < after.size(); ++i) differences += after[i] != before[i] ? 1 : 0;
  EXPECT_EQ(differences, 1u);
}

TEST(WindowAggregatorTest, LatenessIsPerAggregateAndALateEventIsCountedOnce) {
  WindowAggregator a = Make({Late(Def("strict", Function::kCount, 600), 0),
                             Late(Def("lenient", Function::kCount, 600), 600)});
  Step(a, "k", kNone, At(100));
  // 50 s: late for "strict" only. "lenient" counts it (its pane is the same).
  EXPECT_EQ(Step(a, "k", kNone, At(50)), (Values{{"lenient", 1}}));
  EXPECT_EQ(a.stats().late_events, 1u);
  EXPECT_EQ(Peek(a, "k", kNone, At(120)), (Values{{"strict", 1}, {"lenient", 2}}));
}

TEST(WindowAggregatorTest, LatenessIsPerKey) {
  WindowAggregator a = Make({Def("n", Function::kCount, 600)});
  Step(a, "fast", kNone, At(500));
  // "slow" has its own newest time: 100 s is on time for it though the watermark is 500 s.
  EXPECT_EQ(Step(a, "slow", kNone, At(100)), (Values{{"n", 0}}));
  EXPECT_EQ(Step(a, "slow", kNone, At(110)), (Values{{"n", 1}}));
  EXPECT_EQ(a.stats().late_events, 0u);
}

// --- Forgetting ------------------------------------------------------------------------------

TEST(WindowAggregatorTest, AKeyExpiresAfterTheLongestWindowPlusItsLateness) {
  // Horizon: max(600 + 60, 3600 + 0) = 3600 s.
  WindowAggregator a = Make({Late(Def("n", Function::kCount, 600), 60),
                             WithField(Def("sum", Function::kSum, 3600), "amount")});
  Step(a, "old", {Num("amount", 1)}, At(0));
  Step(a, "new", kNone, At(3600));  // "old" is 3600 s behind: not yet
  EXPECT_EQ(a.stats().keys, 2u);
  EXPECT_EQ(a.stats().expired_keys, 0u);
  Step(a, "new", kNone, At(3600.000001));
  EXPECT_EQ(a.stats().keys, 1u);
  EXPECT_EQ(a.stats().expired_keys, 1u);
  EXPECT_EQ(Peek(a, "old", kNone, At(3601)), (Values{{"n", 0}, {"sum", 0}}));
}

TEST(WindowAggregatorTest, AnExpiredKeyIsForgottenEvenBeforeItIsRemoved) {
  WindowAggregator a =
      Make({Def("n", Function::kCount, 600), Def("since", Function::kSecondsSinceLast, 600)});
  for (const char* key : {"a", "b", "c"}) Step(a, key, kNone, At(0));
  // Watermark 1000 s: all three are expired (0 < 1000 - 600); an Observe removes at most two.
  Step(a, "d", kNone, At(1000));
  EXPECT_EQ(a.stats().expired_keys, 2u);
  EXPECT_EQ(a.stats().keys, 2u);  // "c" and "d"
  // An event of "c" timed 100 s after its last one would see it, but "c" is forgotten.
  EXPECT_EQ(Step(a, "c", kNone, At(100)), (Values{{"n", 0}}));
  EXPECT_EQ(a.stats().expired_keys, 3u);
  EXPECT_EQ(Peek(a, "c", kNone, At(101)), (Values{{"n", 0}}));  // 100 s is expired as well
}

TEST(WindowAggregatorTest, MaxKeysEvictsTheLeastRecentlySeenKey) {
  WindowAggregator a = Make({Def("n", Function::kCount, 3600)}, /*max_keys=*/2);
  Step(a, "a", kNone, At(0));
  Step(a, "b", kNone, At(1));
  Step(a, "a", kNone, At(2));  // "b" is now the least recently seen
  Step(a, "c", kNone, At(3));
  EXPECT_EQ(a.stats().evicted_keys, 1u);
  EXPECT_EQ(a.stats().keys, 2u);
  EXPECT_EQ(Peek(a, "a", kNone, At(4)), (Values{{"n", 2}}));
  EXPECT_EQ(Peek(a, "b", kNone, At(4)), (Values{{"n", 0}}));  // starts over
  EXPECT_EQ(Peek(a, "c", kNone, At(4)), (Values{{"n", 1}}));
  Step(a, "b", kNone, At(5));  // evicts "a" (last seen at step 3) rather than "c" (step 4)
  EXPECT_EQ(Peek(a, "a", kNone, At(6)), (Values{{"n", 0}}));
  EXPECT_EQ(Peek(a, "c", kNone, At(6)), (Values{{"n", 1}}));
  EXPECT_EQ(a.stats().evicted_keys, 2u);
}

TEST(WindowAggregatorTest, MaxKeysIsPerKeyField) {
  WindowAggregator a = Make({Def("by_key", Function::kCount, 3600),
                             KeyedBy(Def("by_card", Function::kCount, 3600), "card")},
                            /*max_keys=*/2);
  Step(a, "k1", {Text("card", "c1")}, At(0));
  Step(a, "k2", {Text("card", "c2")}, At(1));
  EXPECT_EQ(a.stats().keys, 4u);  // two tables of two
  EXPECT_EQ(a.stats().evicted_keys, 0u);
  Step(a, "k3", {Text("card", "c1")}, At(2));  // a third event key, a known card
  EXPECT_EQ(a.stats().evicted_keys, 1u);
  EXPECT_EQ(Peek(a, "k1", {Text("card", "c1")}, At(3)), (Values{{"by_key", 0}, {"by_card", 2}}));
}

// --- COUNT_DISTINCT, SECONDS_SINCE_LAST, LABEL_RATE -----------------------------------------

TEST(WindowAggregatorTest, CountDistinctTellsTextsFromNumbersButNot3From3Point0) {
  WindowAggregator a = Make({WithField(Def("d", Function::kCountDistinct, 3600), "m")});
  Step(a, "k", {Text("m", "3")}, At(0));
  Step(a, "k", {Num("m", 3)}, At(1));
  Step(a, "k", {Num("m", 3.0)}, At(2));  // the same number
  Step(a, "k", {Text("m", "x")}, At(3));
  Step(a, "k", {Text("m", "x")}, At(4));
  Step(a, "k", kNone, At(5));  // no value: nothing to count
  // "3", 3, "x".
  EXPECT_EQ(Step(a, "k", {Num("m", 3.5)}, At(6)), (Values{{"d", 3}}));
  EXPECT_EQ(Peek(a, "k", kNone, At(7)), (Values{{"d", 4}}));
  EXPECT_EQ(Peek(a, "k", kNone, At(3600)), (Values{{"d", 0}}));
}

TEST(WindowAggregatorTest, CountDistinctOnASlidingWindowCountsAValueInTwoPanesOnce) {
  WindowAggregator a = Make({WithField(Def("d", Function::kCountDistinct, 1200, 600), "m")});
  Step(a, "k", {Text("m", "a")}, At(0));                         // pane 0
  Step(a, "k", {Text("m", "b")}, At(10));                        // pane 0
  Step(a, "k", {Text("m", "a")}, At(700));                       // pane 1
  Step(a, "k", {Text("m", "c")}, At(710));                       // pane 1
  EXPECT_EQ(Peek(a, "k", kNone, At(1199)), (Values{{"d", 3}}));  // a, b, c
  EXPECT_EQ(Peek(a, "k", kNone, At(1200)), (Values{{"d", 2}}));  // panes 1, 2: a, c
}

TEST(WindowAggregatorTest, CountDistinctSaturatesAtMaxDistinctPerPane) {
  WindowAggregator a =
      Make({WithField(Def("d", Function::kCountDistinct, 600, 60), "m")}, 1000, /*max=*/2);
  Step(a, "k", {Text("m", "a")}, At(0));
  Step(a, "k", {Text("m", "b")}, At(1));
  Step(a, "k", {Text("m", "c")}, At(2));  // pane 0 is full: not kept
  Step(a, "k", {Text("m", "a")}, At(3));  // already kept: not a saturation
  EXPECT_EQ(a.stats().distinct_saturated, 1u);
  EXPECT_EQ(Step(a, "k", {Text("m", "c")}, At(60)), (Values{{"d", 2}}));  // a lower bound
  EXPECT_EQ(Peek(a, "k", kNone, At(61)), (Values{{"d", 3}}));             // pane 1 kept "c"
}

TEST(WindowAggregatorTest, SecondsSinceLast) {
  WindowAggregator a = Make({Late(Def("since", Function::kSecondsSinceLast, 600), 60)});
  EXPECT_EQ(Step(a, "k", kNone, At(0)), Values{});  // no earlier event
  EXPECT_EQ(Step(a, "k", kNone, At(90.5)), (Values{{"since", 90.5}}));
  // Out of order within the lateness: the newest earlier event is after it, so 0.
  EXPECT_EQ(Step(a, "k", kNone, At(50)), (Values{{"since", 0}}));
  EXPECT_EQ(Peek(a, "k", kNone, At(690.5)), (Values{{"since", 600}}));  // exactly the window
  EXPECT_EQ(Peek(a, "k", kNone, At(690.500001)), Values{});             // beyond it
}

TEST(WindowAggregatorTest, LabelRateCountsLabelsLearnedBeforeAtTheWatermark) {
  AggregateDef rate = KeyedBy(Def("rate", Function::kLabelRate, 3600), "card");
  rate.label_class = "fraud";
  WindowAggregator a = Make({rate});
  const std::vector<NamedFeature> c = {Text("card", "c")};
  // A label before any event has no watermark to be recorded at: ignored.
  Label(a, c, "fraud");
  EXPECT_EQ(Step(a, std::nullopt, c, At(10)), Values{});  // no label yet: absent
  Label(a, c, "fraud");                                   // at the watermark, 10 s
  EXPECT_EQ(Step(a, std::nullopt, c, At(20)), (Values{{"rate", 1}}));
  Label(a, c, "ok");
  EXPECT_EQ(Peek(a, std::nullopt, c, At(30)), (Values{{"rate", 0.5}}));
  // Another card moves the watermark into the next hour; a label learned now counts there.
  Step(a, std::nullopt, {Text("card", "d")}, At(3600));
  Label(a, c, "fraud");
  EXPECT_EQ(Peek(a, std::nullopt, c, At(3599)), (Values{{"rate", 0.5}}));  // hour 0: 1 of 2
  EXPECT_EQ(Peek(a, std::nullopt, c, At(3700)), (Values{{"rate", 1}}));    // hour 1: 1 of 1
  // Labels of a key never observed, or without the key feature, are ignored.
  Label(a, {Text("card", "never")}, "fraud");
  Label(a, {Num("amount", 3)}, "fraud");
  EXPECT_EQ(Peek(a, std::nullopt, {Text("card", "never")}, At(3700)), Values{});
  EXPECT_EQ(a.stats().keys, 2u);
}

TEST(WindowAggregatorTest, ALabelKeepsItsKeyFromExpiring) {
  AggregateDef rate = KeyedBy(Def("rate", Function::kLabelRate, 3600), "card");
  rate.label_class = "fraud";
  WindowAggregator a = Make({rate});
  Step(a, std::nullopt, {Text("card", "c")}, At(0));
  Step(a, std::nullopt, {Text("card", "d")}, At(3000));
  Label(a, {Text("card", "c")}, "fraud");  // recorded at 3000 s (pane 0)
  // "c"'s only event is now 4000 s old, beyond the 3600 s horizon, but its label is not.
  Step(a, std::nullopt, {Text("card", "d")}, At(4000));
  EXPECT_EQ(a.stats().expired_keys, 0u);
  // A later event of "c" in hour 0 still sees the label.
  EXPECT_EQ(Peek(a, std::nullopt, {Text("card", "c")}, At(3599)), (Values{{"rate", 1}}));
}

// --- Keys ------------------------------------------------------------------------------------

TEST(WindowAggregatorTest, KeyFromAFeatureTextOrNumberOrTheEventKey) {
  WindowAggregator a = Make({Def("by_key", Function::kCount, 3600),
                             KeyedBy(Def("by_card", Function::kCount, 3600), "card")});
  // A number key is its shortest text: 3, 3.0 and the text "3" are one card.
  EXPECT_EQ(Step(a, "e1", {Num("card", 3)}, At(0)), (Values{{"by_key", 0}, {"by_card", 0}}));
  EXPECT_EQ(Step(a, "e2", {Num("card", 3.0)}, At(1)), (Values{{"by_key", 0}, {"by_card", 1}}));
  EXPECT_EQ(Step(a, "e1", {Text("card", "3")}, At(2)), (Values{{"by_key", 1}, {"by_card", 2}}));
  EXPECT_EQ(Peek(a, "e3", {Num("card", 3.5)}, At(3)), (Values{{"by_key", 0}, {"by_card", 0}}));
  EXPECT_EQ(a.stats().keys, 3u);  // e1, e2; "3"
}

TEST(WindowAggregatorTest, AnEventWithoutAKeyGetsNoValueAndIsNotRecorded) {
  WindowAggregator a = Make({Def("by_key", Function::kCount, 3600),
                             KeyedBy(Def("by_card", Function::kCount, 3600), "card")});
  EXPECT_EQ(Step(a, std::nullopt, kNone, At(0)), Values{});
  EXPECT_EQ(Step(a, std::nullopt, {Text("card", "c")}, At(1)), (Values{{"by_card", 0}}));
  EXPECT_EQ(Step(a, "k", kNone, At(2)), (Values{{"by_key", 0}}));
  EXPECT_EQ(a.stats().keys, 2u);
  EXPECT_EQ(a.watermark_micros(), At(2));  // every observed event moves the watermark
}

// --- Validation ------------------------------------------------------------------------------

TEST(WindowAggregatorTest, ValidateRejectsWhatComputeCannotTake) {
  WindowAggregator a = Make({WithField(Def("amount_sum_1h", Function::kSum, 3600), "amount"),
                             WithField(Def("merchants", Function::kCountDistinct, 3600), "m")});
  using F = std::vector<NamedFeature>;
  EXPECT_TRUE(a.Validate(F{Num("amount", 3), Text("m", "x"), Text("other", "y")}).ok());
  EXPECT_TRUE(a.Validate(F{Num("m", 3)}).ok());  // COUNT_DISTINCT takes either
  const absl::Status text = a.Validate(F{Text("amount", "3")});
  EXPECT_EQ(text.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.message(),
            "features[\"amount\"]: aggregate 'amount_sum_1h' needs a number, got a text");
  EXPECT_EQ(a.Validate(F{Num("merchants", 1)}).message(),
            "features[\"merchants\"]: 'merchants' is the name of an aggregate (aggregates[1])");
  EXPECT_THAT(a.Validate(F{Num("x", std::nan(""))}).message(), HasSubstr("features[\"x\"]: NaN"));
  EXPECT_THAT(a.Validate(F{Num("x", -std::numeric_limits<double>::infinity())}).message(),
              HasSubstr("features[\"x\"]: infinity"));
}

TEST(WindowAggregatorTest, SpecValidateNamesTheField) {
  const AggregateDef good = WithField(Def("s", Function::kSum, 600, 60), "amount");
  struct Case {
    std::function<void(AggregatorSpec&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](AggregatorSpec& s) { s.aggregates[1].name = ""; },
       "aggregates[1].name: must not be empty"},
      {[](AggregatorSpec& s) { s.aggregates[1].name = "s"; },
       "aggregates[1].name: 's' is also the name of aggregates[0]"},
      {[](AggregatorSpec& s) { s.aggregates[1].function = static_cast<Function>(8); },
       "aggregates[1].function: unknown function 8"},
      {[](AggregatorSpec& s) { s.aggregates[1].window_seconds = 0; },
       "aggregates[1].window_seconds: must be 1 .. 31622400, got 0"},
      {[](AggregatorSpec& s) { s.aggregates[1].window_seconds = 31622401; },
       "aggregates[1].window_seconds: must be 1 .. 31622400, got 31622401"},
      {[](AggregatorSpec& s) { s.aggregates[1].hop_seconds = 700; },
       "aggregates[1].hop_seconds: must be 0 (tumbling) or 1 .. window_seconds (600), got 700"},
      {[](AggregatorSpec& s) { s.aggregates[1].hop_seconds = 7; },
       "aggregates[1].hop_seconds: must divide window_seconds (600), got 7"},
      {[](AggregatorSpec& s) { s.aggregates[1].allowed_lateness_seconds = 601; },
       "aggregates[1].allowed_lateness_seconds: must be 0 .. window_seconds (600), got 601"},
      {[](AggregatorSpec& s) { s.aggregates[1].field = ""; },
       "aggregates[1].field: MEAN needs the feature it aggregates"},
      {[](AggregatorSpec& s) { s.aggregates[2].field = "amount"; },
       "aggregates[2].field: COUNT aggregates no feature; leave it empty"},
      {[](AggregatorSpec& s) { s.aggregates[1].field = "s"; },
       "aggregates[1].field: 's' is the name of aggregates[0], not a feature"},
      {[](AggregatorSpec& s) { s.aggregates[1].key_field = "c"; },
       "aggregates[1].key_field: 'c' is the name of aggregates[2], not a feature"},
      {[](AggregatorSpec& s) { s.aggregates[3].key_field = ""; },
       "aggregates[3].key_field: LABEL_RATE needs a feature as its key: a delayed label comes "
       "with its event's features, not its key"},
      {[](AggregatorSpec& s) { s.aggregates[3].label_class = ""; },
       "aggregates[3].label_class: LABEL_RATE needs the class whose share it computes"},
      {[](AggregatorSpec& s) { s.aggregates[2].label_class = "fraud"; },
       "aggregates[2].label_class: only LABEL_RATE has one, not COUNT"},
      {[](AggregatorSpec& s) { s.max_keys = 0; }, "max_keys: must be 1 .. 100000000, got 0"},
      {[](AggregatorSpec& s) { s.max_keys = 100'000'001; },
       "max_keys: must be 1 .. 100000000, got 100000001"},
      {[](AggregatorSpec& s) { s.max_distinct_per_pane = 0; },
       "max_distinct_per_pane: must be 1 .. 65536, got 0"},
      {[](AggregatorSpec& s) { s.max_distinct_per_pane = 65537; },
       "max_distinct_per_pane: must be 1 .. 65536, got 65537"},
  };
  AggregateDef rate = KeyedBy(Def("r", Function::kLabelRate, 600), "card");
  rate.label_class = "fraud";
  const AggregatorSpec valid = {.aggregates = {good,
                                               WithField(Def("t", Function::kMean, 600), "amount"),
                                               Def("c", Function::kCount, 600), rate}};
  ASSERT_TRUE(valid.Validate().ok()) << valid.Validate();
  EXPECT_TRUE(AggregatorSpec{}.Validate().ok());  // no aggregates: nothing to compute
  for (const Case& c : cases) {
    AggregatorSpec spec = valid;
    c.change(spec);
    const absl::Status s = spec.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
    EXPECT_EQ(WindowAggregator::Create(spec).status(), s);
  }
}

// --- Against a brute-force batch computation -------------------------------------------------

// One generated event with its own storage.
struct Event {
  std::string key;
  std::optional<std::string> card_text;
  std::optional<double> card_number;
  std::optional<double> amount;
  std::optional<std::string> merchant_text;
  std::optional<double> merchant_number;
  std::int64_t t = 0;

  std::vector<NamedFeature> Features() const {
    std::vector<NamedFeature> f;
    if (card_text) f.push_back(Text("card", *card_text));
    if (card_number) f.push_back(Num("card", *card_number));
    if (amount) f.push_back(Num("amount", *amount));
    if (merchant_text) f.push_back(Text("merchant", *merchant_text));
    if (merchant_number) f.push_back(Num("merchant", *merchant_number));
    return f;
  }
};

std::string ShortestText(double v) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, end);
}

// The spec's semantics computed directly from every event kept in full: no panes stored, no
// pane dropping, no lazy cleanup; only the rules of the header (and the forgetting of a key
// whose last activity is older than the watermark by more than its horizon).
class BruteForce {
 public:
  explicit BruteForce(AggregatorSpec spec) : spec_(std::move(spec)) {
    for (const AggregateDef& d : spec_.aggregates) {
      if (d.function == Function::kLabelRate) label_key_fields_.insert(d.key_field);
      horizon_[d.key_field] =
          std::max(horizon_[d.key_field],
                   std::int64_t{d.window_seconds + d.allowed_lateness_seconds} * kSecond);
    }
  }

  std::vector<std::pair<std::string, double>> Compute(const Event& e) const {
    std::vector<std::pair<std::string, double>> out;
    for (std::size_t i = 0; i < spec_.aggregates.size(); ++i) {
      const AggregateDef& d = spec_.aggregates[i];
      const std::optional<std::string> key = KeyOf(d.key_field, e);
      if (!key) continue;
      const KeyState* k = Live(d.key_field, *key);
      const std::int64_t lateness = std::int64_t{d.allowed_lateness_seconds} * kSecond;
      const std::int64_t window = std::int64_t{d.window_seconds} * kSecond;
      if (k != nullptr && e.t < k->newest - lateness) continue;
      if (d.function == Function::kSecondsSinceLast) {
        if (k != nullptr && e.t - k->newest <= window) {
          out.emplace_back(d.name,
                           static_cast<double>(std::max<std::int64_t>(e.t - k->newest, 0)) / 1e6);
        }
        continue;
      }
      const std::int64_t hop =
          std::int64_t{d.hop_seconds ? d.hop_seconds : d.window_seconds} * kSecond;
      const std::int64_t last = Floor(e.t, hop);
      const std::int64_t first = last - d.window_seconds / (hop / kSecond) + 1;
      const auto in_window = [&](std::int64_t t) {
        return Floor(t, hop) >= first && Floor(t, hop) <= last;
      };
      std::uint64_t count = 0;
      double sum = 0;
      double lo = std::numeric_limits<double>::infinity();
      double hi = -lo;
      std::set<std::string> distinct;
      if (k != nullptr && d.function == Function::kLabelRate) {
        for (const auto& [t, label] : k->labels) {
          if (!in_window(t)) continue;
          ++count;
          sum += label == d.label_class ? 1 : 0;
        }
      } else if (k != nullptr) {
        // Panes in order, events in order within a pane: the order the panes sum in.
        std::vector<const Event*> events;
        for (const Event* x : k->accepted[i]) {
          if (in_window(x->t)) events.push_back(x);
        }
        std::stable_sort(events.begin(), events.end(), [hop](const Event* a, const Event* b) {
          return Floor(a->t, hop) < Floor(b->t, hop);
        });
        std::map<std::int64_t, double> pane_sums;
        for (const Event* x : events) {
          if (d.function == Function::kCount) {
            ++count;
          } else if (d.function == Function::kCountDistinct) {
            if (x->merchant_text) distinct.insert("t" + *x->merchant_text);
            if (x->merchant_number) distinct.insert("n" + ShortestText(*x->merchant_number));
          } else if (x->amount) {
            ++count;
            pane_sums[Floor(x->t, hop)] += *x->amount;
            lo = std::min(lo, *x->amount);
            hi = std::max(hi, *x->amount);
          }
        }
        for (const auto& [pane, s] : pane_sums) sum += s;
      }
      switch (d.function) {
        case Function::kCount:
          out.emplace_back(d.name, count);
          break;
        case Function::kSum:
          out.emplace_back(d.name, sum);
          break;
        case Function::kMean:
        case Function::kLabelRate:
          if (count > 0) out.emplace_back(d.name, sum / count);
          break;
        case Function::kMin:
          if (count > 0) out.emplace_back(d.name, lo);
          break;
        case Function::kMax:
          if (count > 0) out.emplace_back(d.name, hi);
          break;
        case Function::kCountDistinct:
          out.emplace_back(d.name, distinct.size());
          break;
        case Function::kSecondsSinceLast:
          break;
      }
    }
    return out;
  }

  void Observe(const Event& e) {
    bool late = false;
    for (const auto& [key_field, horizon] : horizon_) {
      const std::optional<std::string> key = KeyOf(key_field, e);
      if (!key) continue;
      auto& keys = keys_[key_field];
      if (keys.count(*key) != 0 && Live(key_field, *key) == nullptr) keys.erase(*key);
      auto [it, added] = keys.try_emplace(*key);
      KeyState& k = it->second;
      if (added) {
        k.newest = k.last_seen = e.t;
        k.accepted.resize(spec_.aggregates.size());
      }
      bool recorded = false;
      for (std::size_t i = 0; i < spec_.aggregates.size(); ++i) {
        const AggregateDef& d = spec_.aggregates[i];
        if (d.key_field != key_field) continue;
        if (e.t < k.newest - std::int64_t{d.allowed_lateness_seconds} * kSecond) {
          late = true;
          continue;
        }
        k.accepted[i].push_back(&e);
        recorded = true;
      }
      if (recorded) {
        k.newest = std::max(k.newest, e.t);
        k.last_seen = std::max(k.last_seen, e.t);
      }
    }
    late_events_ += late ? 1 : 0;
    watermark_ = std::max(watermark_.value_or(e.t), e.t);
  }

  void ObserveLabel(const Event& e, const std::string& label) {
    if (!watermark_) return;
    for (auto& [key_field, keys] : keys_) {
      if (label_key_fields_.count(key_field) == 0) continue;
      const std::optional<std::string> key = KeyOf(key_field, e);
      if (!key || Live(key_field, *key) == nullptr) continue;
      KeyState& k = keys.at(*key);
      k.labels.emplace_back(*watermark_, label);
      k.last_seen = std::max(k.last_seen, *watermark_);
    }
  }

  std::uint64_t late_events() const { return late_events_; }

 private:
  struct KeyState {
    std::int64_t newest = 0;
    std::int64_t last_seen = 0;
    std::vector<std::vector<const Event*>> accepted;  // per aggregate
    std::vector<std::pair<std::int64_t, std::string>> labels;
  };

  static std::int64_t Floor(std::int64_t t, std::int64_t hop) {
    return t >= 0 ? t / hop : -((-t + hop - 1) / hop);
  }

  static std::optional<std::string> KeyOf(const std::string& key_field, const Event& e) {
    if (key_field.empty()) return e.key;
    if (e.card_text) return *e.card_text;
    if (e.card_number) return ShortestText(*e.card_number);
    return std::nullopt;
  }

  const KeyState* Live(const std::string& key_field, const std::string& key) const {
    auto table = keys_.find(key_field);
    if (table == keys_.end()) return nullptr;
    auto it = table->second.find(key);
    if (it == table->second.end()) return nullptr;
    if (watermark_ && it->second.last_seen < *watermark_ - horizon_.at(key_field)) return nullptr;
    return &it->second;
  }

  AggregatorSpec spec_;
  std::map<std::string, std::int64_t> horizon_;  // by key field
  std::set<std::string> label_key_fields_;
  std::map<std::string, std::map<std::string, KeyState>> keys_;
  std::optional<std::int64_t> watermark_;
  std::uint64_t late_events_ = 0;
};

AggregatorSpec RandomTestSpec() {
  AggregateDef rate = Late(KeyedBy(Def("fraud_rate", Function::kLabelRate, 7200, 600), "card"), 0);
  rate.label_class = "fraud";
  return {
      .aggregates =
          {
              Late(Def("count_10m", Function::kCount, 600, 60), 120),
              Late(WithField(Def("sum_1h", Function::kSum, 3600), "amount"), 300),
              WithField(Def("mean_20m", Function::kMean, 1200, 300), "amount"),
              Late(KeyedBy(WithField(Def("card_min_30m", Function::kMin, 1800, 60), "amount"),
                           "card"),
                   60),
              Late(WithField(Def("max_30m", Function::kMax, 1800, 600), "amount"), 600),
              Late(WithField(Def("merchants_1h", Function::kCountDistinct, 3600, 600), "merchant"),
                   120),
              Late(Def("since_last", Function::kSecondsSinceLast, 900), 100),
              rate,
              Late(KeyedBy(Def("card_count_5m", Function::kCount, 300, 1), "card"), 30),
          },
      .max_keys = 1'000'000,
      .max_distinct_per_pane = 65'536};
}

// The defaults: 40 keys, a few of them in a window at a time.
struct StreamShape {
  int keys = 40;                     // event keys "k0" .. "k<keys - 1>"
  int max_step_micros = 20'000'000;  // between consecutive times, uniform from 0
  int jumps_per_mille = 3;           // two-hour jumps, which expire keys
  std::int64_t start_micros = kT0;   // the clock before the first step
};

// A stream with random keys, cards, amounts and merchants; times mostly advance, a sixth of the
// events are up to 5 minutes out of order (some within the lateness, some not), and rare jumps
// of two hours expire keys.
std::vector<Event> RandomEvents(int n, std::uint32_t seed, const StreamShape& shape = {}) {
  std::mt19937 rng(seed);
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<Event> events(n);
  std::int64_t clock = shape.start_micros;
  for (Event& e : events) {
    clock += uniform(0, shape.max_step_micros);
    if (uniform(0, 999) < shape.jumps_per_mille) clock += 7200 * kSecond;
    e.t = clock - (uniform(0, 5) == 0 ? std::int64_t{uniform(0, 300)} * kSecond : 0);
    e.key = "k" + std::to_string(uniform(0, shape.keys - 1));
    const int card = uniform(0, 29);
    switch (uniform(0, 9)) {
      case 0:
        break;  // no card
      case 1:
      case 2:
      case 3:
      case 4:
        e.card_text = "c" + std::to_string(card);
        break;
      default:
        e.card_number = card;
    }
    if (uniform(0, 4) != 0) e.amount = uniform(-100, 1000);
    const int m = uniform(0, 9);
    switch (uniform(0, 2)) {
      case 0:
        break;
      case 1:
        e.merchant_text = (m % 2 == 0 ? "" : "m") + std::to_string(m);  // "4" vs 4
        break;
      default:
        e.merchant_number = m;
    }
  }
  return events;
}

std::vector<std::pair<std::string, double>> ComputeOrdered(const WindowAggregator& a,
                                                           const Event& e) {
  WindowAggregator::Scratch scratch;
  std::vector<NamedFeature> out;
  a.Compute(e.key, e.Features(), e.t, &out, &scratch);
  std::vector<std::pair<std::string, double>> values;
  for (const NamedFeature& f : out) values.emplace_back(std::string(f.name), f.value.number);
  return values;
}

// Compute's values for an event with each value's bits, for bit-for-bit comparisons.
std::vector<std::pair<std::string, std::uint64_t>> ComputeBits(const WindowAggregator& a,
                                                               const Event& e) {
  std::vector<std::pair<std::string, std::uint64_t>> bits;
  for (const auto& [name, value] : ComputeOrdered(a, e)) {
    bits.emplace_back(name, std::bit_cast<std::uint64_t>(value));
  }
  return bits;
}

TEST(WindowAggregatorTest, MatchesABruteForceComputationOnARandomStream) {
  const AggregatorSpec spec = RandomTestSpec();
  WindowAggregator a = Make(spec.aggregates, spec.max_keys, spec.max_distinct_per_pane);
  BruteForce expected(spec);
  const std::vector<Event> events = RandomEvents(4000, 11);
  std::mt19937 rng(12);
  WindowAggregator::Scratch scratch;
  std::size_t values = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    const auto got = ComputeOrdered(a, e);
    ASSERT_EQ(got, expected.Compute(e)) << "event " << i;
    values += got.size();
    a.Observe(e.key, e.Features(), e.t, &scratch);
    expected.Observe(e);
    if (rng() % 3 == 0) {
      // A label for one of the recent events.
      const Event& labeled = events[i - std::min<std::size_t>(i, rng() % 200)];
      const std::string label = rng() % 4 == 0 ? "fraud" : "ok";
      a.ObserveLabel(labeled.Features(), label, &scratch);
      expected.ObserveLabel(labeled, label);
    }
  }
  EXPECT_EQ(a.stats().late_events, expected.late_events());
  // The stream exercised what it is meant to.
  EXPECT_GT(a.stats().late_events, 100u);
  EXPECT_GT(a.stats().expired_keys, 10u);
  EXPECT_GT(values, events.size() * 4);
}

TEST(WindowAggregatorTest, ComputeAndObserveIsComputeThenObserve) {
  // Both ways over a random stream with few keys tracked (evictions inside AddKey), late
  // events, expiries and labels: the same outputs, bit for bit, and the same state all along.
  AggregatorSpec spec = RandomTestSpec();
  spec.max_keys = 12;
  WindowAggregator a = Make(spec.aggregates, spec.max_keys, spec.max_distinct_per_pane);
  WindowAggregator fused = a;
  const std::vector<Event> events = RandomEvents(3000, 21);
  std::mt19937 rng(22);
  WindowAggregator::Scratch scratch;
  WindowAggregator::Scratch fused_scratch;
  std::vector<NamedFeature> out;
  std::vector<NamedFeature> fused_out;
  const auto bits = [](const std::vector<NamedFeature>& features) {
    std::vector<std::pair<std::string, std::uint64_t>> b;
    for (const NamedFeature& f : features) {
      b.emplace_back(std::string(f.name), std::bit_cast<std::uint64_t>(f.value.number));
    }
    return b;
  };
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    const std::vector<NamedFeature> features = e.Features();
    out.clear();
    a.Compute(e.key, features, e.t, &out, &scratch);
    a.Observe(e.key, features, e.t, &scratch);
    fused_out.clear();
    fused.ComputeAndObserve(e.key, features, e.t, &fused_out, &fused_scratch);
    ASSERT_EQ(bits(fused_out), bits(out)) << "event " << i;
    if (rng() % 3 == 0) {
      const Event& labeled = events[i - std::min<std::size_t>(i, rng() % 50)];
      const std::string label = rng() % 4 == 0 ? "fraud" : "ok";
      a.ObserveLabel(labeled.Features(), label, &scratch);
      fused.ObserveLabel(labeled.Features(), label, &fused_scratch);
    }
    if (i % 100 == 99) {
      ASSERT_EQ(Save(fused), Save(a)) << "after event " << i;
      ASSERT_EQ(fused.stats(), a.stats()) << "after event " << i;
    }
  }
  // The stream exercised what it is meant to.
  EXPECT_GT(a.stats().evicted_keys, 100u);
  EXPECT_GT(a.stats().expired_keys, 10u);
  EXPECT_GT(a.stats().late_events, 100u);
}

// --- Checkpoints -----------------------------------------------------------------------------

// Observes events[i], then, one time in three, a label for one of the 100 events before it.
void Feed(WindowAggregator& a, const std::vector<Event>& events, std::size_t i, std::mt19937& rng) {
  WindowAggregator::Scratch scratch;
  const Event& e = events[i];
  a.Observe(e.key, e.Features(), e.t, &scratch);
  if (rng() % 3 == 0) {
    a.ObserveLabel(events[i - std::min<std::size_t>(i, rng() % 100)].Features(),
                   rng() % 4 == 0 ? "fraud" : "ok", &scratch);
  }
}

TEST(WindowAggregatorTest, ARestoredAggregatorContinuesIdentically) {
  const AggregatorSpec spec = RandomTestSpec();
  WindowAggregator a = Make(spec.aggregates, 1000, 1);  // one distinct value a pane: saturates
  const std::vector<Event> events = RandomEvents(3000, 21);
  std::mt19937 rng(22);
  for (std::size_t i = 0; i < 1500; ++i) Feed(a, events, i, rng);
  WindowAggregator b = Load(Save(a));
  EXPECT_EQ(b.spec(), a.spec());
  EXPECT_EQ(b.stats(), a.stats());
  EXPECT_EQ(b.watermark_micros(), a.watermark_micros());
  std::mt19937 rng_b = rng;
  for (std::size_t i = 1500; i < events.size(); ++i) {
    ASSERT_EQ(ComputeBits(a, events[i]), ComputeBits(b, events[i])) << i;
    Feed(a, events, i, rng);
    Feed(b, events, i, rng_b);
  }
  EXPECT_EQ(b.stats(), a.stats());
  EXPECT_GT(a.stats().distinct_saturated, 0u);
  // Saved again, the restored one writes the same bytes.
  EXPECT_EQ(Save(b), Save(a));
}

TEST(WindowAggregatorTest, ACopyIsIndependent) {
  WindowAggregator a = Make({Def("n", Function::kCount, 3600)});
  Step(a, "k", kNone, At(0));
  WindowAggregator copy = a;
  Step(a, "k", kNone, At(1));
  Step(copy, "j", kNone, At(1));
  EXPECT_EQ(Peek(a, "k", kNone, At(2)), (Values{{"n", 2}}));
  EXPECT_EQ(Peek(copy, "k", kNone, At(2)), (Values{{"n", 1}}));
  EXPECT_EQ(Peek(copy, "j", kNone, At(2)), (Values{{"n", 1}}));
  EXPECT_EQ(Peek(a, "j", kNone, At(2)), (Values{{"n", 0}}));
}

// Copies share the state's storage copy-on-write (see the copy constructor). The tests below
// check that sharing is invisible: a copy keeps answering and saving exactly as when it was
// taken, and the original behaves exactly as a twin fed the same events and never copied, with
// thousands of keys (over a dozen chunks of slots, hundreds of chunks of pane lists), key
// evictions and expiries while the copies live.
class CopiedAggregatorTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kMaxKeys = 2500;

  CopiedAggregatorTest()
      : original_(Make(RandomTestSpec().aggregates, kMaxKeys, 4)),
        twin_(Make(RandomTestSpec().aggregates, kMaxKeys, 4)) {
    // 4,000 keys 25 ms apart on average: about 3,000 of them seen in the first 6,000 events,
    // so max_keys evicts; no expiry yet (150 s of events, windows of up to an hour).
    const StreamShape many_keys = {.keys = 4000, .max_step_micros = 50'000, .jumps_per_mille = 0};
    events_ = RandomEvents(6000, 41, many_keys);
    // Then jumps of two hours, which expire the keys, among more evictions.
    std::int64_t last = kT0;
    for (const Event& e : events_) last = std::max(last, e.t);
    const std::vector<Event> more = RandomEvents(
        6000, 42,
        {.keys = 4000, .max_step_micros = 50'000, .jumps_per_mille = 2, .start_micros = last});
    events_.insert(events_.end(), more.begin(), more.end());
  }

  // The next event into both the original and the twin, after checking that they compute the
  // same for it.
  void Step() {
    ASSERT_LT(next_, events_.size());
    ASSERT_EQ(ComputeBits(original_, events_[next_]), ComputeBits(twin_, events_[next_])) << next_;
    Feed(original_, events_, next_, rng_original_);
    Feed(twin_, events_, next_, rng_twin_);
    ++next_;
  }

  // The original and the twin are the same state: saved bytes, counters, memory.
  void ExpectOriginalIsTwin() {
    EXPECT_EQ(Save(original_), Save(twin_));
    EXPECT_EQ(original_.stats(), twin_.stats());
    EXPECT_EQ(original_.watermark_micros(), twin_.watermark_micros());
    // Also the memory: a clone has the same buffers as what it replaces.
    EXPECT_EQ(original_.MemoryBytes(), twin_.MemoryBytes());
  }

  // What a copy answers and saves when taken, to be checked again later.
  struct Taken {
    std::string bytes;
    std::vector<std::vector<std::pair<std::string, std::uint64_t>>> answers;  // per event
  };
  Taken Take(const WindowAggregator& copy) const {
    Taken taken{.bytes = Save(copy), .answers = {}};
    for (std::size_t i = 0; i < events_.size(); i += 7) {
      taken.answers.push_back(ComputeBits(copy, events_[i]));
    }
    return taken;
  }
  void ExpectStill(const WindowAggregator& copy, const Taken& taken) const {
    EXPECT_EQ(Save(copy), taken.bytes);
    std::size_t k = 0;
    for (std::size_t i = 0; i < events_.size(); i += 7, ++k) {
      ASSERT_EQ(ComputeBits(copy, events_[i]), taken.answers[k]) << i;
    }
  }

  std::vector<Event> events_;
  std::size_t next_ = 0;
  WindowAggregator original_;
  WindowAggregator twin_;
  std::mt19937 rng_original_{43};
  std::mt19937 rng_twin_{43};
};

TEST_F(CopiedAggregatorTest, ACopyKeepsItsStateWhileTheOriginalGoesOn) {
  for (int i = 0; i < 4000; ++i) ASSERT_NO_FATAL_FAILURE(Step());
  const WindowAggregator copy = original_;
  const Taken taken = Take(copy);
  EXPECT_EQ(taken.bytes, Save(twin_));
  const WindowAggregator::Stats at_copy = original_.stats();
  EXPECT_GT(at_copy.keys, 2000u);

  while (next_ < events_.size()) ASSERT_NO_FATAL_FAILURE(Step());
  // Every kind of change happened to the original while the copy lived.
  const WindowAggregator::Stats after = original_.stats();
  EXPECT_GT(after.evicted_keys, at_copy.evicted_keys);
  EXPECT_GT(after.expired_keys, at_copy.expired_keys + 1000);
  EXPECT_GT(after.late_events, at_copy.late_events);
  ExpectStill(copy, taken);
  ExpectOriginalIsTwin();
}

TEST_F(CopiedAggregatorTest, AWriteToTheCopyLeavesTheOriginalUnchanged) {
  for (int i = 0; i < 4000; ++i) ASSERT_NO_FATAL_FAILURE(Step());
  WindowAggregator copy = original_;
  std::mt19937 rng(44);
  for (std::size_t i = 4000; i < events_.size(); ++i) Feed(copy, events_, i, rng);
  EXPECT_NE(Save(copy), Save(original_));
  ExpectOriginalIsTwin();
  // And the original goes on as its twin.
  while (next_ < events_.size()) ASSERT_NO_FATAL_FAILURE(Step());
  ExpectOriginalIsTwin();
}

// As a served model's checkpoints: a copy every 1,500 events, each kept while later ones are
// taken, one of them replaced by assignment and one copied again.
TEST_F(CopiedAggregatorTest, SuccessiveCopiesEachKeepTheirState) {
  std::vector<std::pair<WindowAggregator, Taken>> copies;
  std::optional<WindowAggregator> latest;  // assigned at every generation (as the snapshot is)
  std::optional<Taken> latest_taken;
  while (next_ < events_.size()) {
    for (int i = 0; i < 1500 && next_ < events_.size(); ++i) ASSERT_NO_FATAL_FAILURE(Step());
    copies.emplace_back(original_, Taken{});
    copies.back().second = Take(copies.back().first);
    latest = original_;
    latest_taken = Take(*latest);
  }
  ASSERT_EQ(copies.size(), 8u);
  WindowAggregator copy_of_copy = copies[2].first;
  for (const auto& [copy, taken] : copies) ExpectStill(copy, taken);
  ExpectStill(copy_of_copy, copies[2].second);
  ExpectStill(*latest, *latest_taken);
  ExpectOriginalIsTwin();
}

// A checkpoint writer saving and destroying its snapshot on its own thread while predictions
// keep observing into the original, without a lock between them (under ThreadSanitizer, a write
// into a shared chunk or a chunk freed too early is a reported race).
TEST_F(CopiedAggregatorTest, ACopySavedOnAnotherThreadWhileTheOriginalObserves) {
  for (int i = 0; i < 3000; ++i) ASSERT_NO_FATAL_FAILURE(Step());
  for (int round = 0; round < 6; ++round) {
    const std::string expected = Save(twin_);  // what the copy must save
    std::atomic<bool> saving{false};
    std::string saved;
    std::thread writer([copy = original_, &saving, &saved]() mutable {
      saving.store(true);
      saved = Save(copy);
      WindowAggregator destroyed = std::move(copy);  // freed here, on this thread
    });
    while (!saving.load()) std::this_thread::yield();
    for (int i = 0; i < 1000 && next_ < events_.size() && !HasFatalFailure(); ++i) Step();
    writer.join();  // before any return
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(saved, expected) << round;
  }
  ExpectOriginalIsTwin();
}

WindowAggregator SmallState() {
  const AggregatorSpec spec = RandomTestSpec();
  WindowAggregator a = Make(spec.aggregates, 1000, 3);
  WindowAggregator::Scratch scratch;
  const std::vector<Event> events = RandomEvents(25, 31);
  for (std::size_t i = 0; i < events.size(); ++i) {
    a.Observe(events[i].key, events[i].Features(), events[i].t, &scratch);
    if (i % 2 == 0) a.ObserveLabel(events[i / 2].Features(), i % 4 ? "ok" : "fraud", &scratch);
  }
  return a;
}

TEST(WindowAggregatorTest, LoadRejectsTruncatedData) {
  const std::string bytes = Save(SmallState());
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_THROW(Load(bytes.substr(0, cut)), cereal::Exception) << cut;
  }
}

TEST(WindowAggregatorTest, LoadRejectsAnUnknownVersion) {
  std::string bytes = Save(SmallState());
  // Byte 0 is the portable archive's endianness; bytes 1..4 the class version, little-endian.
  ASSERT_EQ(bytes.substr(1, 4), std::string("\x01\x00\x00\x00", 4));
  bytes[1] = 2;
  EXPECT_THROW(Load(bytes), cereal::Exception);
}

// Every byte altered in turn: the load either fails with cereal::Exception or gives an
// aggregator that works (under ASan: touches no memory it should not).
TEST(WindowAggregatorTest, LoadOfCorruptedBytesFailsCleanlyOrWorks) {
  const std::string bytes = Save(SmallState());
  const std::vector<Event> more = RandomEvents(20, 32);
  // One alteration a byte, in turn its low bit, its high bit or all of its bits: enough kinds
  // of damage while quick under the sanitizers.
  constexpr unsigned char kMasks[] = {0x01, 0x80, 0xFF};
  int loaded = 0;
  for (std::size_t i = 5; i < bytes.size(); ++i) {
    std::string corrupted = bytes;
    corrupted[i] = static_cast<char>(corrupted[i] ^ kMasks[i % 3]);
    std::optional<WindowAggregator> a;
    try {
      a = Load(corrupted);
    } catch (const cereal::Exception&) {
      continue;
    }
    ++loaded;
    WindowAggregator::Scratch scratch;
    for (const Event& e : more) {
      ComputeOrdered(*a, e);
      a->Observe(e.key, e.Features(), e.t, &scratch);
      a->ObserveLabel(e.Features(), "fraud", &scratch);
    }
    EXPECT_GT(a->MemoryBytes(), 0u);
    EXPECT_NO_THROW(Load(Save(*a)));
  }
  EXPECT_GT(loaded, 0);  // values (amounts, times) can change without breaking invariants
}

TEST(WindowAggregatorTest, LoadRejectsInconsistentState) {
  // A key table of one key whose panes are out of order, written by hand in the version-1
  // layout: one COUNT aggregate, then a key with two panes.
  WindowAggregator a = Make({Def("n", Function::kCount, 600, 60)});
  Step(a, "k", kNone, At(0));
  Step(a, "k", kNone, At(60));
  const std::string bytes = Save(a);
  // The two panes are the last 48 bytes: (index, count, value) each; swap them.
  std::string swapped = bytes;
  const std::size_t end = bytes.size();
  swapped.replace(end - 48, 24, bytes.substr(end - 24, 24));
  swapped.replace(end - 24, 24, bytes.substr(end - 48, 24));
  EXPECT_NO_THROW(Load(bytes));
  EXPECT_THROW(Load(swapped), cereal::Exception);
  // A pane with a count of 0.
  std::string empty = bytes;
  for (std::size_t k = end - 16; k < end - 8; ++k) empty[k] = 0;
  EXPECT_THROW(Load(empty), cereal::Exception);
}

// --- Memory ----------------------------------------------------------------------------------

TEST(WindowAggregatorTest, MemoryBytesGrowsWithKeys) {
  WindowAggregator a = Make({Def("n", Function::kCount, 600, 60),
                             WithField(Def("mean", Function::kMean, 3600), "amount")});
  const std::size_t empty = a.MemoryBytes();
  for (int i = 0; i < 10; ++i) Step(a, "key-" + std::to_string(i), {Num("amount", i)}, At(i));
  const std::size_t ten = a.MemoryBytes();
  for (int i = 10; i < 1000; ++i) Step(a, "key-" + std::to_string(i), {Num("amount", i)}, At(i));
  const std::size_t thousand = a.MemoryBytes();
  EXPECT_GT(ten, empty);
  // At least the slot, a bucket and two pane lists per key.
  EXPECT_GT(thousand, ten + 990 * (sizeof(std::string) + 8 + 2 * 24));
  // And not wildly more (a few hundred bytes a key).
  EXPECT_LT(thousand, empty + 1000 * 600);
  // A key with one pane per aggregate keeps them in its pane lists, with no buffer of their own:
  // its slot (64 bytes), two lists (2 x 32) and its share of the buckets (2,048 of 8 bytes for
  // 1,000 keys: under 17 bytes). A heap block per list would add 2 x 40.
  EXPECT_LE(thousand - ten, 990 * (64 + 2 * 32 + 17));
  // Seen again 20 minutes later, each key's count pane has aged out (a 10-minute window): the
  // new pane takes the old one's place, and the mean's pane (the same hour) is updated, so
  // nothing grows.
  for (int i = 0; i < 1000; ++i) {
    Step(a, "key-" + std::to_string(i), {Num("amount", i)}, At(1200 + i));
  }
  EXPECT_EQ(a.MemoryBytes(), thousand);
  // A key with a long name (beyond the small-string buffer) costs its bytes.
  const std::string long_key(200, 'x');
  Step(a, long_key, {Num("amount", 1)}, At(1000));
  EXPECT_GE(a.MemoryBytes(), thousand + 200);
}

}  // namespace
}  // namespace riffle::features
