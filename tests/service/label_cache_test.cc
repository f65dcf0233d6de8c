#include "service/label_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace riffle::service {
namespace {

std::vector<features::NamedFeature> Event(double v) {
  return {{"v", features::FeatureValue::Number(v)}};
}

double ValueOf(const features::OwnedFeatures& f) {
  std::vector<features::NamedFeature> views;
  f.Views(&views);
  return views.at(0).value.number;
}

TEST(LabelCacheTest, TakeReturnsTheCachedFeaturesOnce) {
  LabelCache cache({.max_entries = 10, .ttl_seconds = 60});
  cache.Insert("a", Event(1.5), 0);
  std::optional<features::OwnedFeatures> hit = cache.Take("a", 1);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(ValueOf(*hit), 1.5);
  EXPECT_FALSE(cache.Take("a", 2).has_value());
  EXPECT_FALSE(cache.Take("never", 2).has_value());
  const LabelCache::Stats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
}

TEST(LabelCacheTest, EvictsTheOldestBeyondCapacity) {
  LabelCache cache({.max_entries = 2, .ttl_seconds = 60});
  cache.Insert("a", Event(1), 0);
  cache.Insert("b", Event(2), 1);
  cache.Insert("c", Event(3), 2);
  EXPECT_FALSE(cache.Take("a", 3).has_value());
  EXPECT_EQ(ValueOf(*cache.Take("b", 3)), 2);
  EXPECT_EQ(ValueOf(*cache.Take("c", 3)), 3);
  EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(LabelCacheTest, ReinsertingAnIdReplacesItAndRefreshesItsAge) {
  LabelCache cache({.max_entries = 2, .ttl_seconds = 10});
  cache.Insert("a", Event(1), 0);
  cache.Insert("b", Event(2), 1'000'000);
  cache.Insert("a", Event(5), 9'000'000);  // the stale queue item of the first "a" is skipped
  cache.Expire(11'500'000);                // "b" (inserted at 1 s) is now older than 10 s
  EXPECT_FALSE(cache.Take("b", 11'500'000).has_value());
  EXPECT_EQ(ValueOf(*cache.Take("a", 11'500'000)), 5);
  EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(LabelCacheTest, ExpiresEntriesOlderThanTheTtl) {
  LabelCache cache({.max_entries = 100, .ttl_seconds = 5});
  cache.Insert("a", Event(1), 0);
  cache.Insert("b", Event(2), 4'000'000);
  EXPECT_FALSE(cache.Take("a", 5'000'001).has_value());
  EXPECT_TRUE(cache.Take("b", 5'000'001).has_value());
  EXPECT_EQ(cache.stats().evictions, 1u);
}

TEST(LabelCacheTest, TheQueueStaysBoundedWhenOneIdIsCachedOverAndOver) {
  LabelCache cache({.max_entries = 100, .ttl_seconds = 3600});
  for (int i = 0; i < 100000; ++i) cache.Insert("session-1", Event(i), i);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_LE(cache.QueuedForTesting(), 2u + 1024u);
  EXPECT_EQ(ValueOf(*cache.Take("session-1", 100000)), 99999);
}

TEST(LabelCacheTest, ZeroEntriesDisablesTheCache) {
  LabelCache cache({.max_entries = 0, .ttl_seconds = 5});
  cache.Insert("a", Event(1), 0);
  EXPECT_FALSE(cache.Take("a", 0).has_value());
  EXPECT_EQ(cache.stats().evictions, 0u);
}

TEST(LabelCacheTest, OptionsValidate) {
  EXPECT_FALSE(LabelCacheOptions{.ttl_seconds = 0}.Validate().ok());
  EXPECT_TRUE(LabelCacheOptions{}.Validate().ok());
}

}  // namespace
}  // namespace riffle::service
