#ifndef RIFFLE_SERVICE_LABEL_CACHE_H_
#define RIFFLE_SERVICE_LABEL_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "checkpoints/model_checkpoint.h"
#include "features/event.h"
#include "service/rw_mutex.h"

namespace riffle::service {

struct LabelCacheOptions {
  // Most entries held; inserting beyond evicts the oldest. 0 disables the cache (every learn
  // by id is a miss).
  std::size_t max_entries = 1'000'000;
  // Entries older than this are dropped (counted as evictions). At least 1 second.
  std::int64_t ttl_seconds = 86'400;

  absl::Status Validate() const;
};

// The features a model predicted on, by event id, until the label for that id arrives (a
// fraud confirmation hours later): the delayed-label join of DESIGN.md. Bounded by entries and
// age, oldest out first; a label takes its entry (a second label for the same id is a miss).
//
// Thread-safe: predictions insert concurrently; an internal mutex guards the map. The clock is
// the caller's (microseconds), so tests can move time.
class LabelCache {
 public:
  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;  // by capacity or age
    std::uint64_t entries = 0;
    std::uint64_t bytes = 0;  // approximate
  };

  explicit LabelCache(LabelCacheOptions options) : options_(options) {}

  // Caches `features` under `id` (replacing an older entry for the same id).
  void Insert(std::string_view id, std::span<const features::NamedFeature> features,
              std::int64_t now_micros);
  // The features cached under `id`, removed from the cache; nullopt (a miss) if absent or
  // expired.
  std::optional<features::OwnedFeatures> Take(std::string_view id, std::int64_t now_micros);
  // Drops expired entries (also done by Insert and Take).
  void Expire(std::int64_t now_micros);
  // The live entries, oldest first: what a checkpoint keeps. Copied a few hundred entries at a
  // time, so concurrent Inserts wait microseconds, not the whole copy: an entry inserted,
  // replaced or taken meanwhile may or may not be in the result (an id replaced meanwhile may
  // appear twice, older first, which Import resolves to the newer one).
  std::vector<checkpoints::PendingLabel> Export() const;
  // Queue items Export copies per hold of the lock.
  static constexpr std::size_t kExportStep = 256;
  // Entries the map is sized for at the first Insert (or max_entries + 1 if smaller); beyond,
  // it grows by rehashing.
  static constexpr std::size_t kReservedEntries = std::size_t{1} << 22;
  // Replaces the entries with `pending` (oldest first, as Export gave them: a restored
  // checkpoint), keeping their insertion times; the counters continue. Entries beyond the
  // capacity or the TTL at `now_micros` are evicted as usual.
  void Import(std::vector<checkpoints::PendingLabel> pending, std::int64_t now_micros);
  // Items in the insertion-order queue (live or stale); for tests of its bound.
  std::size_t QueuedForTesting() const {
    ReaderLock lock(&mu_);
    return order_.size();
  }
  Stats stats() const;
  const LabelCacheOptions& options() const { return options_; }

 private:
  struct Entry {
    features::OwnedFeatures features;
    std::int64_t inserted_micros = 0;
    std::uint64_t sequence = 0;
    std::size_t bytes = 0;
  };
  struct Queued {
    std::string id;
    std::uint64_t sequence = 0;
    std::int64_t inserted_micros = 0;
  };

  void EvictLocked(std::int64_t now_micros) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LabelCacheOptions options_;
  mutable RwMutex mu_;
  std::unordered_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Insertion order; an item whose sequence no longer matches its entry is stale (the entry
  // was taken or replaced) and is skipped.
  std::deque<Queued> order_ ABSL_GUARDED_BY(mu_);
  std::uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool reserved_ ABSL_GUARDED_BY(mu_) = false;  // entries_ sized (at the first Insert)
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_LABEL_CACHE_H_
