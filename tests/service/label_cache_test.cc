#include "service/label_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

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

// Export copies the cache in steps, releasing the lock in between: entries taken and inserted
// meanwhile, across many steps, still give an export in insertion order in which every entry
// that stayed from start to end appears exactly once, with its own features, and an id
// replaced meanwhile appears as the original, the replacement, or both, older first (what
// Import resolves to the newer one).
TEST(LabelCacheTest, ExportInStepsIsOrderedAndCompleteDespiteConcurrentChanges) {
  constexpr int kEntries = 20 * static_cast<int>(LabelCache::kExportStep);
  LabelCache cache({.max_entries = 1'000'000, .ttl_seconds = 3600});
  for (int i = 0; i < kEntries; ++i) cache.Insert(absl::StrCat("e", i), Event(i), i);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    // Takes the odd entries, re-inserts every tenth entry with a new value, and adds new ones.
    for (int i = 0; !stop.load() || i < kEntries; ++i) {
      const int k = i % kEntries;
      if (k % 2 == 1) cache.Take(absl::StrCat("e", k), kEntries);
      if (k % 10 == 0) cache.Insert(absl::StrCat("e", k), Event(-k), kEntries + i);
      cache.Insert(absl::StrCat("new", i), Event(0.5), kEntries + i);
      if (i >= 4 * kEntries) break;
    }
  });
  std::vector<std::vector<checkpoints::PendingLabel>> exports;
  for (int round = 0; round < 5; ++round) exports.push_back(cache.Export());
  stop = true;
  writer.join();
  for (const std::vector<checkpoints::PendingLabel>& exported : exports) {
    std::set<std::string> seen;
    std::int64_t last_inserted = -1;
    for (const checkpoints::PendingLabel& p : exported) {
      EXPECT_GE(p.inserted_micros, last_inserted) << p.id;
      last_inserted = p.inserted_micros;
      const bool again = !seen.insert(p.id).second;
      const double v = ValueOf(p.features);
      if (p.id.rfind("new", 0) == 0) {
        EXPECT_FALSE(again) << p.id;
        EXPECT_EQ(v, 0.5);
        continue;
      }
      const int k = std::stoi(p.id.substr(1));
      // Only re-inserted ids may carry a replacement's value, and only they may appear twice,
      // the replacement second.
      if (k % 10 != 0 || (!again && v == k)) {
        EXPECT_FALSE(again) << p.id;
        EXPECT_EQ(v, k) << p.id;
      } else {
        EXPECT_EQ(v, -k) << p.id;
      }
    }
    // Even entries other than the re-inserted ones are never taken or replaced: all present.
    for (int k = 0; k < kEntries; k += 2) {
      if (k % 10 != 0) {
        EXPECT_EQ(seen.count(absl::StrCat("e", k)), 1u) << k;
      }
    }
  }
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
