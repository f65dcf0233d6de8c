#ifndef RIFFLE_FEATURES_WINDOW_AGGREGATES_H_
#define RIFFLE_FEATURES_WINDOW_AGGREGATES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/cow_chunked_vector.h"
#include "features/event.h"
#include "learners/serialization.h"

namespace riffle::features {

// One per-key aggregate over an event-time window, computed for an event from earlier events
// only ("count of payments by this card in the last 10 minutes").
//
// Windows are made of panes of hop_seconds: pane p holds the events whose time t has
// floor(t / hop) = p (times in microseconds since the epoch, floor towards minus infinity). The
// window of an event at time t is the window_seconds / hop_seconds panes ending with t's pane:
// it reaches back between window - hop and window seconds before t. hop = window is a tumbling
// window (the events of t's own window so far); a smaller hop a sliding one, to that
// resolution (hop 1: to the second).
struct AggregateDef {
  enum class Function : std::uint8_t {
    kCount,             // events of the key in the window (0 when none)
    kSum,               // of `field`'s numbers (0 when none)
    kMean,              // absent when no number
    kMin,               // absent when no number
    kMax,               // absent when no number
    kCountDistinct,     // distinct values of `field` (texts and numbers; 3 and 3.0 are one)
    kSecondsSinceLast,  // t minus the latest earlier event time of the key, if within the window
    kLabelRate,         // share of label_class among the key's labels learned in the window
  };

  // The output feature's name; it must not be a feature of the events (such an event is
  // rejected).
  std::string name;
  // Where an event's key comes from: "" for the event's own key (Instance.key, the decoder's
  // key field), otherwise the value of this feature (a text as is, a number as its shortest
  // round-trip text). An event without a key gets no value and is not recorded. kLabelRate
  // needs a feature here: a delayed label finds its event's features in the label cache, not
  // the event key.
  std::string key_field;
  // The aggregated feature: a number for kSum, kMean, kMin, kMax (a text there rejects the
  // event); a text or a number for kCountDistinct; unused ("") by the others. An event that
  // lacks it still counts for kCount and kSecondsSinceLast aggregates.
  std::string field;
  Function function = Function::kCount;
  // 1 .. 366 days.
  std::uint32_t window_seconds = 0;
  // 1 .. window_seconds, and it divides window_seconds. 0 means window_seconds (tumbling).
  std::uint32_t hop_seconds = 0;
  // kLabelRate: the class whose share is computed (required); unused by the others.
  std::string label_class;
  // An event older than the newest event time of its key by more than this is late: it is
  // counted (Stats::late_events), its aggregates are absent, and it does not update the state
  // (its window may have expired). Within it, it updates its own pane. 0 .. window_seconds.
  std::uint32_t allowed_lateness_seconds = 0;

  friend bool operator==(const AggregateDef&, const AggregateDef&) = default;
};

struct AggregatorSpec {
  std::vector<AggregateDef> aggregates;
  // Keys tracked at most, per distinct key_field; beyond it the least recently seen key is
  // evicted (Stats::evicted_keys). 1 .. 100,000,000.
  std::uint64_t max_keys = 1'000'000;
  // Distinct values kept per pane of a kCountDistinct aggregate; beyond it the pane stops
  // adding values and the count is a lower bound (Stats::distinct_saturated). 1 .. 65,536.
  std::uint32_t max_distinct_per_pane = 1024;

  // InvalidArgument naming the field as "aggregates[2].window_seconds: ...": names non-empty
  // and distinct, window and hop in range, field set for the functions that need one,
  // label_class for kLabelRate, a feature key_field for kLabelRate.
  absl::Status Validate() const;

  friend bool operator==(const AggregatorSpec&, const AggregatorSpec&) = default;
};

// Per-key windowed aggregates of a model's event stream, computed before the model sees an
// event, from past events only.
//
// Use, per event, in the model's order of events: Compute() the event's aggregate features
// (appended to the event's own before the pipeline transforms them), then Observe() the event;
// ComputeAndObserve() does both with one lookup of the keys. When the model learns a label,
// ObserveLabel() it with the features it learned from (the aggregates included, as cached at
// prediction time). The aggregates of an event never include the event itself nor its label, and
// kLabelRate only counts labels learned before.
//
// Time: every event has a time (its event time, or the receive time when it has none). Late
// events are handled per key (see AggregateDef::allowed_lateness_seconds). kLabelRate records
// a label at the watermark: the newest event time observed by this aggregator when the label
// is learned, so a label arriving hours after its event counts from then.
//
// Memory is bounded: per key, the panes that a window or the lateness may still need; a key is
// forgotten once its newest event is older than the watermark by more than the longest window
// plus its lateness (Stats::expired_keys), and the least recently seen key is evicted beyond
// max_keys. Forgetting a key changes nothing its later aggregates could see, except after an
// eviction (the key then starts over).
//
// Thread-safety: none for one object. The served model guards it with its own mutex, since
// predictions (which Observe) run in parallel under the model's reader lock. A copy is cheap
// (O(chunks), not O(keys x panes): see the copy constructor) and independent, though it shares
// storage with the original: it may be read, saved, copied or destroyed on another thread,
// with no lock shared with the original, while the original goes on observing (and the other
// way round). Only the copying itself needs the original held still.
class WindowAggregator {
 public:
  struct Stats {
    std::uint64_t keys = 0;                // tracked now, all key fields together
    std::uint64_t evicted_keys = 0;        // by max_keys
    std::uint64_t expired_keys = 0;        // after the longest window
    std::uint64_t late_events = 0;         // beyond the allowed lateness
    std::uint64_t distinct_saturated = 0;  // values not kept by a full distinct pane
    friend bool operator==(const Stats&, const Stats&) = default;
  };

  // Per-call buffers so a warm call allocates nothing.
  struct Scratch {
    // An event's key in one key table, as looked up.
    struct Lookup {
      bool has_key = false;
      std::uint64_t hash = 0;
      std::uint32_t slot = 0;  // kNoSlot when not tracked; the key may have expired
    };
    std::vector<Lookup> lookups;  // per key table
    std::vector<std::uint64_t> hashes;
  };

  static absl::StatusOr<WindowAggregator> Create(AggregatorSpec spec);
  // An empty aggregator, only as the target of load().
  static WindowAggregator ForLoading() { return WindowAggregator(); }

  // InvalidArgument naming the feature, as the pipeline does (`features["amount"]: ...`), for
  // an event Compute would reject: a text where an aggregate needs a number, or a feature named
  // as an aggregate's output. Does not modify state.
  absl::Status Validate(std::span<const NamedFeature> features) const;

  // Appends to *out one feature per aggregate that has a value for an event with this key,
  // time and features, named AggregateDef::name (views of this object's spec: valid while it
  // lives), numbers only, in spec order. Does not modify state. The event must be valid
  // (Validate).
  void Compute(std::optional<std::string_view> event_key, std::span<const NamedFeature> features,
               std::int64_t time_micros, std::vector<NamedFeature>* out, Scratch* scratch) const;
  // Records the event (after Compute). The event must be valid.
  void Observe(std::optional<std::string_view> event_key, std::span<const NamedFeature> features,
               std::int64_t time_micros, Scratch* scratch);
  // Compute, then Observe, with one lookup of the event's keys for both: what the served model
  // does per event. The event must be valid, and `features` must not view *out (which grows
  // before the event is recorded).
  void ComputeAndObserve(std::optional<std::string_view> event_key,
                         std::span<const NamedFeature> features, std::int64_t time_micros,
                         std::vector<NamedFeature>* out, Scratch* scratch);
  // Records a learned label for the kLabelRate aggregates, at the watermark. `features` are the
  // event's as learned (the key fields are read from them).
  void ObserveLabel(std::span<const NamedFeature> features, std::string_view label,
                    Scratch* scratch);

  const AggregatorSpec& spec() const { return spec_; }
  Stats stats() const;
  // The newest event time observed (microseconds), nullopt before the first event.
  std::optional<std::int64_t> watermark_micros() const;
  std::size_t MemoryBytes() const;

  // Copyable (a checkpoint snapshot copies it) and movable. The per-key state is in chunks
  // shared copy-on-write (cow_chunked_vector.h, sizes at KeyTable), so a copy copies the chunk
  // pointers and counts references: O(chunks), none of the per-key buffers. With two aggregates
  // per key that is a chunk per ~45 keys: about 0.3 ms for 1,000,000 keys
  // (BM_AggregatorSnapshotCopy; a deep copy took 190 ms). The cost moves to the writes that
  // follow, on whichever side writes: the first write into a chunk still shared clones that
  // chunk, a few microseconds (an event writes its slot's chunk, its pane lists' chunk and its
  // LRU neighbours' slot chunks), so the events right after a copy are slower until the chunks
  // they touch are their own again (1,000,000 keys: the first 10,000 events 2.5 us on average,
  // 12 us at the 99th percentile; BM_AggregatorEventsAfterSnapshotCopy). A
  // chunk becomes its owner's own again without a clone once the other sharers are destroyed.
  // Copies are independent: neither ever sees the other's later changes. MemoryBytes() counts
  // shared chunks in full in each sharer.
  WindowAggregator(const WindowAggregator&) = default;
  WindowAggregator& operator=(const WindowAggregator&) = default;
  WindowAggregator(WindowAggregator&&) noexcept = default;
  WindowAggregator& operator=(WindowAggregator&&) noexcept = default;

  template <class Archive>
  void save(Archive& archive, std::uint32_t version) const;
  template <class Archive>
  void load(Archive& archive, std::uint32_t version);

 private:
  WindowAggregator() = default;

  static constexpr std::uint32_t kNoSlot = 0xFFFFFFFF;

  // One non-empty pane of one aggregate of one key. What `count` and `value` hold depends on
  // the function: kCount: events, -; kSum and kMean: numbers, their sum; kMin, kMax: numbers,
  // their min or max; kCountDistinct: the values kept (their hashes are in KeyTable::hashes);
  // kLabelRate: labels, those of label_class. kSecondsSinceLast has no panes.
  struct Pane {
    std::int64_t index = 0;  // floor(time / hop)
    std::uint64_t count = 0;
    double value = 0.0;
  };
  // The per-key buffers. Their copies keep their capacity, so that a chunk cloned after a copy
  // (see KeyTable) holds the same buffers as before: KeyTable::heap_bytes stays exact, and a
  // free slot keeps its buffers for the next key. A pane list holds its first pane in place: a
  // key whose events within a window (and its lateness) fall in one pane, such as a key seen
  // at most once per window, common with many keys, needs no buffer for it
  // (BM_AggregatorMemoryPerKey: 145.5 bytes a key, not 209.5).
  using PaneList = CopyKeepsCapacity<absl::InlinedVector<Pane, 1>>;
  using HashList = CopyKeepsCapacity<std::vector<std::uint64_t>>;

  // A tracked key. Slots are recycled through a free list; a free slot keeps its buffers for
  // the next key.
  struct Slot {
    CopyKeepsCapacity<std::string> key;
    std::uint64_t hash = 0;  // of `key` (KeyTable::buckets)
    // The newest event time observed (lateness, kSecondsSinceLast, dropping old panes).
    std::int64_t newest_micros = 0;
    // max(newest_micros, the watermark of its last label): the key expires from this.
    std::int64_t last_seen_micros = 0;
    // Neighbours in the order of last Observe; `older` chains the free list.
    std::uint32_t newer = kNoSlot;
    std::uint32_t older = kNoSlot;
  };

  // The keys of the aggregates sharing one key_field, with their panes.
  struct KeyTable {
    // Derived from the spec.
    std::string key_field;
    std::vector<std::uint32_t> defs;  // indices in spec_.aggregates, in spec order
    std::uint32_t distinct_defs = 0;  // of them kCountDistinct
    std::uint32_t label_defs = 0;     // of them kLabelRate
    std::int64_t horizon_micros = 0;  // max of window + lateness over defs: expiry

    // The per-key state is in copy-on-write chunks (see the copy constructor), sized so that
    // cloning one costs microseconds: 1,024 buckets (8 KiB), 256 slots (16 KiB; a key beyond
    // the small-string buffer allocates), 128 pane or hash lists (one allocation per list with
    // a buffer). Smaller chunks make the events after a copy cheaper and the copy dearer.
    // Growing the index past 3/4 full rebuilds the buckets into new chunks: O(keys) then, as a
    // std::vector's rehash was, on the Observe that adds the key; never on a copy.
    //
    // Open addressing with linear probing: (high 32 bits of the hash << 32) | (slot + 1), 0
    // when empty. Slot numbers rather than keys, so a key is stored once (in its slot), and
    // nothing points into the object, so the defaulted copy is a valid copy.
    CowChunkedVector<std::uint64_t, 10> buckets;
    CowChunkedVector<Slot, 8> slots;
    CowChunkedVector<PaneList, 7> panes;  // [slot * defs.size() + position in defs]
    // Sorted hashes of the kept values, pane after pane: [slot * distinct_defs + position].
    CowChunkedVector<HashList, 7> hashes;
    std::uint32_t free = kNoSlot;
    std::uint32_t newest = kNoSlot;  // most recently observed key
    std::uint32_t oldest = kNoSlot;
    std::uint64_t size = 0;
    // Heap bytes of the slots' keys, panes and hashes (MemoryBytes without a walk).
    std::size_t heap_bytes = 0;
  };

  // Per aggregate, derived from the spec.
  struct Plan {
    std::uint32_t table = 0;
    std::uint32_t series = 0;    // position in the table's defs
    std::uint32_t distinct = 0;  // kCountDistinct: position among the table's distinct defs
    std::int64_t window_micros = 0;
    std::int64_t hop_micros = 0;
    std::int64_t lateness_micros = 0;
    std::int64_t panes = 0;  // per window
  };

  // A key as read by load(), before RestoreKey validates and adds it.
  struct LoadedKey {
    std::string key;
    std::int64_t newest_micros = 0;
    std::int64_t last_seen_micros = 0;
    std::vector<PaneList> panes;                     // per def of the table
    std::vector<std::vector<std::uint64_t>> hashes;  // per kCountDistinct def of the table
  };

  static void LinkAsNewest(KeyTable& table, std::uint32_t slot);
  static void Unlink(KeyTable& table, std::uint32_t slot);
  static std::size_t SlotHeap(const KeyTable& table, std::uint32_t slot);

  void BuildPlans();
  bool Expired(const KeyTable& table, const Slot& slot) const;
  // scratch->lookups: the event's key in each table, its hash and slot.
  void LookUp(std::optional<std::string_view> event_key, std::span<const NamedFeature> features,
              Scratch* scratch) const;
  // Compute and Observe after LookUp, at the clamped time t.
  void ComputeLookedUp(std::span<const NamedFeature> features, std::int64_t t,
                       std::vector<NamedFeature>* out, Scratch* scratch) const;
  void ObserveLookedUp(std::optional<std::string_view> event_key,
                       std::span<const NamedFeature> features, std::int64_t t,
                       const Scratch& scratch);
  std::uint32_t Find(const KeyTable& table, std::string_view key, std::uint64_t hash) const;
  std::uint32_t AddKey(KeyTable& table, std::string_view key, std::uint64_t hash,
                       std::int64_t time_micros);
  void RemoveKey(KeyTable& table, std::uint32_t slot);
  void Record(std::size_t def, const Plan& plan, KeyTable& table, std::uint32_t slot,
              std::span<const NamedFeature> features, std::int64_t time_micros);
  void DropOldPanes(KeyTable& table, std::uint32_t slot);
  // load()'s checks and steps in the .cc: they throw cereal::Exception on data inconsistent
  // with the spec or the state loaded so far.
  void RestoreWatermark(bool has_watermark, std::int64_t watermark_micros);
  void RestoreKey(std::uint32_t table, LoadedKey key);

  AggregatorSpec spec_;
  std::vector<Plan> plans_;  // per aggregate
  std::vector<KeyTable> tables_;
  bool has_watermark_ = false;
  std::int64_t watermark_micros_ = 0;
  Stats stats_;  // keys is computed by stats()
};

// Version 1: the spec, the watermark, the counters, then per key table (in the order of first
// use of its key_field in the spec) its keys from the least to the most recently observed, each
// with its times, panes and hashes.
template <class Archive>
void WindowAggregator::save(Archive& archive, std::uint32_t /*version*/) const {
  archive(static_cast<std::uint64_t>(spec_.aggregates.size()));
  for (const AggregateDef& d : spec_.aggregates) {
    learners::SaveString(archive, d.name);
    learners::SaveString(archive, d.key_field);
    learners::SaveString(archive, d.field);
    archive(static_cast<std::uint8_t>(d.function), d.window_seconds, d.hop_seconds,
            d.allowed_lateness_seconds);
    learners::SaveString(archive, d.label_class);
  }
  archive(spec_.max_keys, spec_.max_distinct_per_pane);
  learners::SaveBool(archive, has_watermark_);
  archive(watermark_micros_, stats_.evicted_keys, stats_.expired_keys, stats_.late_events,
          stats_.distinct_saturated);
  for (const KeyTable& table : tables_) {
    archive(table.size);
    for (std::uint32_t s = table.oldest; s != kNoSlot; s = table.slots[s].newer) {
      const Slot& slot = table.slots[s];
      learners::SaveString(archive, slot.key);
      archive(slot.newest_micros, slot.last_seen_micros);
      for (std::size_t j = 0; j < table.defs.size(); ++j) {
        const PaneList& panes = table.panes[s * table.defs.size() + j];
        archive(static_cast<std::uint64_t>(panes.size()));
        for (const Pane& p : panes) archive(p.index, p.count, p.value);
      }
      for (std::size_t k = 0; k < table.distinct_defs; ++k) {
        learners::SaveVector(archive, table.hashes[s * table.distinct_defs + k]);
      }
    }
  }
}

template <class Archive>
void WindowAggregator::load(Archive& archive, std::uint32_t version) {
  if (version != 1) {
    throw cereal::Exception("window aggregator: unknown version " + std::to_string(version));
  }
  WindowAggregator loaded;
  std::uint64_t defs = 0;
  archive(defs);
  for (std::uint64_t i = 0; i < defs; ++i) {
    // Every entry consumes bytes, so a corrupted count fails at the end of the data.
    AggregateDef d;
    std::uint8_t function = 0;
    learners::LoadString(archive, &d.name);
    learners::LoadString(archive, &d.key_field);
    learners::LoadString(archive, &d.field);
    archive(function, d.window_seconds, d.hop_seconds, d.allowed_lateness_seconds);
    learners::LoadString(archive, &d.label_class);
    if (function > static_cast<std::uint8_t>(AggregateDef::Function::kLabelRate)) {
      throw cereal::Exception("window aggregator: unknown function");
    }
    d.function = static_cast<AggregateDef::Function>(function);
    loaded.spec_.aggregates.push_back(std::move(d));
  }
  archive(loaded.spec_.max_keys, loaded.spec_.max_distinct_per_pane);
  if (absl::Status s = loaded.spec_.Validate(); !s.ok()) {
    throw cereal::Exception("window aggregator: invalid spec: " + std::string(s.message()));
  }
  loaded.BuildPlans();
  const bool has_watermark = learners::LoadBool(archive);
  std::int64_t watermark_micros = 0;
  archive(watermark_micros, loaded.stats_.evicted_keys, loaded.stats_.expired_keys,
          loaded.stats_.late_events, loaded.stats_.distinct_saturated);
  loaded.RestoreWatermark(has_watermark, watermark_micros);
  for (std::uint32_t t = 0; t < loaded.tables_.size(); ++t) {
    const KeyTable& table = loaded.tables_[t];
    std::uint64_t keys = 0;
    archive(keys);
    if (keys > loaded.spec_.max_keys) throw cereal::Exception("window aggregator: too many keys");
    for (std::uint64_t i = 0; i < keys; ++i) {
      LoadedKey key;
      learners::LoadString(archive, &key.key);
      archive(key.newest_micros, key.last_seen_micros);
      key.panes.resize(table.defs.size());
      for (PaneList& panes : key.panes) {
        std::uint64_t n = 0;
        archive(n);
        for (std::uint64_t k = 0; k < n; ++k) {  // each pane consumes bytes, as above
          Pane p;
          archive(p.index, p.count, p.value);
          panes.push_back(p);
        }
      }
      key.hashes.resize(table.distinct_defs);
      for (std::vector<std::uint64_t>& hashes : key.hashes) learners::LoadVector(archive, &hashes);
      loaded.RestoreKey(t, std::move(key));
    }
  }
  *this = std::move(loaded);
}

}  // namespace riffle::features

CEREAL_CLASS_VERSION(riffle::features::WindowAggregator, 1);

#endif  // RIFFLE_FEATURES_WINDOW_AGGREGATES_H_
