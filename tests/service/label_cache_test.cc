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

TEST(LabelCacheTest, ExportAndImportKeepTheLiveEntriesInOrder) {
  LabelCache cache({.max_entries = 3, .ttl_seconds = 100});
  features::NamedFeature f[] = {{"x", features::FeatureValue::Number(1)}};
  cache.Insert("a", f, 1'000'000);
  cache.Insert("b", f, 2'000'000);
  cache.Insert("c", f, 3'000'000);
  ASSERT_TRUE(cache.Take("b", 3'000'000).has_value());
  cache.Insert("a", f, 4'000'000);  // re-inserted: now the newest
  const std::vector<checkpoints::PendingLabel> exported = cache.Export();
  ASSERT_EQ(exported.size(), 2u);
  EXPECT_EQ(exported[0].id, "c");
  EXPECT_EQ(exported[0].inserted_micros, 3'000'000);
  EXPECT_EQ(exported[1].id, "a");
  EXPECT_EQ(exported[1].inserted_micros, 4'000'000);

  LabelCache restored({.max_entries = 3, .ttl_seconds = 100});
  restored.Insert("stale", f, 1);  // replaced by the import
  restored.Import(exported, 5'000'000);
  EXPECT_EQ(restored.stats().entries, 2u);
  EXPECT_FALSE(restored.Take("stale", 5'000'000).has_value());
  // Insertion times are kept: "c" expires 100 s after it was first cached, not after import.
  restored.Expire(103'500'000);
  EXPECT_FALSE(restored.Take("c", 103'500'000).has_value());
  EXPECT_TRUE(restored.Take("a", 103'500'000).has_value());
}

TEST(LabelCacheTest, ImportBeyondCapacityEvictsTheOldest) {
  LabelCache source({.max_entries = 10, .ttl_seconds = 100});
  features::NamedFeature f[] = {{"x", features::FeatureValue::Number(1)}};
  for (int i = 0; i < 5; ++i) source.Insert(std::to_string(i), f, i);
  LabelCache small({.max_entries = 2, .ttl_seconds = 100});
  small.Import(source.Export(), 10);
  EXPECT_EQ(small.stats().entries, 2u);
  EXPECT_TRUE(small.Take("4", 10).has_value());
  EXPECT_TRUE(small.Take("3", 10).has_value());
  EXPECT_FALSE(small.Take("0", 10).has_value());
}

}  // namespace
}  // namespace riffle::service
