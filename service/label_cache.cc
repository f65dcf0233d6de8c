#include "service/label_cache.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace riffle::service {

absl::Status LabelCacheOptions::Validate() const {
  if (ttl_seconds < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("label_cache_ttl_seconds: must be at least 1, got %d", ttl_seconds));
  }
  return absl::OkStatus();
}

void LabelCache::Insert(std::string_view id, std::span<const features::NamedFeature> features,
                        std::int64_t now_micros) {
  if (options_.max_entries == 0) return;
  // Copied before the lock is taken: concurrent predictions wait only for the map update.
  features::OwnedFeatures owned(features);
  std::string key(id);
  WriterLock lock(&mu_);
  if (!reserved_) {
    // Sized once for the cache's bound (up to kReservedEntries; 8 bytes per entry), so the map
    // never rehashes a million entries inside a prediction.
    entries_.reserve(std::min(options_.max_entries + 1, kReservedEntries));
    reserved_ = true;
  }
  auto [it, inserted] = entries_.try_emplace(std::move(key));
  Entry& e = it->second;
  if (!inserted) stats_.bytes -= e.bytes;
  e.features = std::move(owned);
  e.inserted_micros = now_micros;
  e.sequence = next_sequence_++;
  e.bytes = e.features.MemoryBytes() + 2 * id.size() + 64;
  stats_.bytes += e.bytes;
  order_.push_back({it->first, e.sequence, now_micros});
  EvictLocked(now_micros);
  // Items of replaced or taken entries stay in order_ until they reach the front; behind one
  // long-lived entry they could pile up without bound (the same id predicted in a loop).
  // Compacting when they outnumber the live entries keeps order_ within 2x + 1024 of them,
  // in amortized O(1) per insert.
  if (order_.size() > 2 * entries_.size() + 1024) {
    std::deque<Queued> live;
    for (Queued& q : order_) {
      auto found = entries_.find(q.id);
      if (found != entries_.end() && found->second.sequence == q.sequence) {
        live.push_back(std::move(q));
      }
    }
    order_.swap(live);
  }
}

std::optional<features::OwnedFeatures> LabelCache::Take(std::string_view id,
                                                        std::int64_t now_micros) {
  WriterLock lock(&mu_);
  EvictLocked(now_micros);
  auto it = entries_.find(std::string(id));
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  stats_.bytes -= it->second.bytes;
  std::optional<features::OwnedFeatures> out(std::move(it->second.features));
  entries_.erase(it);
  // The queued item is now stale and skipped when it reaches the front.
  return out;
}

void LabelCache::Expire(std::int64_t now_micros) {
  WriterLock lock(&mu_);
  EvictLocked(now_micros);
}

void LabelCache::EvictLocked(std::int64_t now_micros) {
  const std::int64_t oldest_kept = now_micros - options_.ttl_seconds * 1'000'000;
  while (!order_.empty()) {
    const Queued& front = order_.front();
    auto it = entries_.find(front.id);
    const bool live = it != entries_.end() && it->second.sequence == front.sequence;
    if (live) {
      const bool over_capacity = entries_.size() > options_.max_entries;
      const bool expired = front.inserted_micros < oldest_kept;
      if (!over_capacity && !expired) break;
      stats_.bytes -= it->second.bytes;
      entries_.erase(it);
      ++stats_.evictions;
    }
    order_.pop_front();
  }
}

std::vector<checkpoints::PendingLabel> LabelCache::Export() const {
  std::vector<checkpoints::PendingLabel> out;
  // In steps of kExportStep queue items, the lock released in between, so an Insert waits for
  // one step (microseconds), not for a copy of the whole cache. The queue is in sequence
  // order, so each step resumes after the last sequence copied.
  std::uint64_t next_sequence = 0;
  for (;;) {
    ReaderLock lock(&mu_);
    if (out.capacity() == 0) out.reserve(entries_.size());
    auto q = std::lower_bound(
        order_.begin(), order_.end(), next_sequence,
        [](const Queued& item, std::uint64_t sequence) { return item.sequence < sequence; });
    for (std::size_t n = 0; q != order_.end() && n < kExportStep; ++q, ++n) {
      next_sequence = q->sequence + 1;
      auto it = entries_.find(q->id);
      if (it == entries_.end() || it->second.sequence != q->sequence) continue;  // stale
      out.push_back({q->id, it->second.features, it->second.inserted_micros});
    }
    if (q == order_.end()) return out;
  }
}

void LabelCache::Import(std::vector<checkpoints::PendingLabel> pending, std::int64_t now_micros) {
  WriterLock lock(&mu_);
  entries_.clear();
  order_.clear();
  stats_.bytes = 0;
  if (options_.max_entries == 0) return;
  for (checkpoints::PendingLabel& p : pending) {
    auto [it, inserted] = entries_.try_emplace(std::move(p.id));
    Entry& e = it->second;
    if (!inserted) stats_.bytes -= e.bytes;
    e.features = std::move(p.features);
    e.inserted_micros = p.inserted_micros;
    e.sequence = next_sequence_++;
    e.bytes = e.features.MemoryBytes() + 2 * it->first.size() + 64;
    stats_.bytes += e.bytes;
    order_.push_back({it->first, e.sequence, p.inserted_micros});
  }
  EvictLocked(now_micros);
}

LabelCache::Stats LabelCache::stats() const {
  ReaderLock lock(&mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

}  // namespace riffle::service
