#include "features/window_aggregates.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_format.h"
#include "features/bytes_equal.h"

// Notes on the implementation.
//
// State. Aggregates that share a key_field share a KeyTable: one slot per key (its key, newest
// event time and LRU links) and, per aggregate of the table, the key's non-empty panes sorted by
// pane index, so a key with three events holds at most three panes per aggregate whatever the
// window. A window's value is recomputed from its panes at each Compute: no running totals to
// drift or to retract, and a sum is a plain double sum of a handful of panes.
//
// Forgetting. A key whose last activity is older than the watermark by more than its table's
// horizon (longest window plus lateness) is expired. Expiry is logical first: Compute and
// Observe treat such a key as absent whether or not it is still stored, so results never depend
// on when the cleanup runs. The cleanup is lazy and O(1) per Observe: it removes at most two
// expired keys from the least recently observed end of each table (twice the rate at which an
// Observe adds keys), and a full table recycles its least recently observed key. Since that end
// is in processing order, an expired key waits there behind a live one (a key observed
// earlier with a later event time) until that one goes; max_keys bounds the memory regardless.
// Panes that no future on-time event can see are dropped when the key is touched.
//
// Copies. A checkpoint copies the aggregator under the lock every prediction needs, so the
// per-key state is in copy-on-write chunks (cow_chunked_vector.h): the copy shares them, and
// every write goes through Mutable(), which clones a chunk still shared first. A reference from
// operator[] is for reading only, and must not be held across a Mutable() of the same container:
// the write may clone the chunk it points into, and the copy's thread may then free that chunk.
//
// Labels. ObserveLabel records into a tracked key only: a label whose key was forgotten (or
// never observed) belongs to an event the aggregator no longer remembers, so it is forgotten
// with it. A label keeps its key alive (last_seen_micros) so that it is not lost while a later
// event could still see it.

namespace riffle::features {
namespace {

using Function = AggregateDef::Function;

constexpr std::uint32_t kMaxWindowSeconds = 366 * 24 * 3600;  // 31,622,400
constexpr std::uint64_t kMaxKeys = 100'000'000;
constexpr std::uint32_t kMaxDistinctPerPane = 65'536;
constexpr std::int64_t kMicrosPerSecond = 1'000'000;
// Distinct values are hashed with XXH3 (its output is specified and stable since xxHash 0.8,
// and the hashes are checkpointed), with a seed per kind so the text "3" and the number 3 are
// two values while the numbers 3 and 3.0 (one text, "3") are one.
constexpr std::uint64_t kTextSeed = 0;
constexpr std::uint64_t kNumberSeed = 1;
// What one heap block costs beyond its capacity (glibc's chunk header and 16-byte rounding, on
// average), so MemoryBytes counts many small pane vectors honestly.
constexpr std::size_t kAllocationOverhead = 16;
// Index table: grown to keep at most 3/4 of the buckets used (linear probing stays short).
constexpr std::size_t kMinBuckets = 16;

std::string_view FunctionName(Function f) {
  switch (f) {
    case Function::kCount:
      return "COUNT";
    case Function::kSum:
      return "SUM";
    case Function::kMean:
      return "MEAN";
    case Function::kMin:
      return "MIN";
    case Function::kMax:
      return "MAX";
    case Function::kCountDistinct:
      return "COUNT_DISTINCT";
    case Function::kSecondsSinceLast:
      return "SECONDS_SINCE_LAST";
    case Function::kLabelRate:
      return "LABEL_RATE";
  }
  return "?";
}

bool NeedsNumber(Function f) {
  return f == Function::kSum || f == Function::kMean || f == Function::kMin || f == Function::kMax;
}

bool NeedsField(Function f) { return NeedsNumber(f) || f == Function::kCountDistinct; }

// Times beyond +-2^61 us (73,000 years; no decoder produces them) are clamped, so that time
// differences and time minus window or horizon never overflow.
constexpr std::int64_t kTimeLimitMicros = std::int64_t{1} << 61;

std::int64_t ClampTime(std::int64_t t) {
  return std::clamp(t, -kTimeLimitMicros, kTimeLimitMicros);
}

// floor(t / hop), also for negative times (C++ division truncates towards zero).
std::int64_t PaneIndex(std::int64_t t, std::int64_t hop) {
  const std::int64_t q = t / hop;
  return (t % hop < 0) ? q - 1 : q;
}

// The shortest text that reads back as the same double ("3", "0.1"): the pipeline's rendering
// of a number as a category, so 3 and 3.0 are one key and one distinct value.
std::string_view NumberText(double v, char (&buffer)[32]) {
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string_view(buffer, static_cast<std::size_t>(end - buffer));
}

// Events have tens of features: a scan with a length check first beats hashing the name.
const FeatureValue* FindFeature(std::span<const NamedFeature> features, std::string_view name) {
  for (const NamedFeature& f : features) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

// The key of an event for aggregates keyed by `key_field`; false when it has none. A number's
// text is written to *buffer, which *key then views.
bool ResolveKey(std::string_view key_field, std::optional<std::string_view> event_key,
                std::span<const NamedFeature> features, char (&buffer)[32], std::string_view* key) {
  if (key_field.empty()) {
    if (!event_key.has_value()) return false;
    *key = *event_key;
    return true;
  }
  const FeatureValue* v = FindFeature(features, key_field);
  if (v == nullptr) return false;
  *key = v->kind == FeatureValue::Kind::kText ? v->text : NumberText(v->number, buffer);
  return true;
}

// A number feature, written member by member: a NamedFeature built on the stack and then copied
// in is read back as 16-byte words right after it was written in narrower pieces, a
// store-forwarding stall.
void AppendNumber(std::vector<NamedFeature>* out, std::string_view name, double value) {
  NamedFeature& f = out->emplace_back();
  f.name = name;
  f.value.number = value;
}

std::uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

std::uint64_t HashValue(const FeatureValue& v) {
  if (v.kind == FeatureValue::Kind::kText) {
    return XXH3_64bits_withSeed(v.text.data(), v.text.size(), kTextSeed);
  }
  char buffer[32];
  const std::string_view text = NumberText(v.number, buffer);
  return XXH3_64bits_withSeed(text.data(), text.size(), kNumberSeed);
}

// Heap bytes of a string (0 while it fits in the object: the small-string buffer).
std::size_t StringHeap(const std::string& s) {
  static const std::size_t kInline = std::string().capacity();
  return s.capacity() > kInline ? s.capacity() + 1 + kAllocationOverhead : 0;
}

template <typename T>
std::size_t VectorHeap(const std::vector<T>& v) {
  return v.capacity() == 0 ? 0 : v.capacity() * sizeof(T) + kAllocationOverhead;
}

// 0 while the elements fit in the object.
template <typename T, std::size_t N>
std::size_t VectorHeap(const absl::InlinedVector<T, N>& v) {
  return v.capacity() <= N ? 0 : v.capacity() * sizeof(T) + kAllocationOverhead;
}

// Buckets: KeyTable::buckets.
template <typename Buckets>
void PlaceInBuckets(Buckets& buckets, std::uint64_t hash, std::uint32_t slot) {
  const std::size_t mask = buckets.size() - 1;
  std::size_t i = hash & mask;
  while (buckets[i] != 0) i = (i + 1) & mask;
  buckets.Mutable(i) = ((hash >> 32) << 32) | (std::uint64_t{slot} + 1);
}

// The pane `index` of a sorted pane list, added if absent; *position is where it is. Events
// mostly land in the newest pane, so the search runs from the end.
template <typename PaneList>
auto& PaneAt(PaneList& panes, std::int64_t index, std::size_t* position) {
  std::size_t k = panes.size();
  while (k > 0 && panes[k - 1].index > index) --k;
  if (k == 0 || panes[k - 1].index != index) {
    panes.insert(panes.begin() + static_cast<std::ptrdiff_t>(k), {index, 0, 0.0});
    ++k;
  }
  *position = k - 1;
  return panes[k - 1];
}

[[noreturn]] void LoadError(std::string_view what) {
  throw cereal::Exception("window aggregator: " + std::string(what));
}

absl::Status FieldError(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("features[\"%s\"]: %s", name, what));
}

}  // namespace

absl::Status AggregatorSpec::Validate() const {
  // Names first: fields and key fields are checked against all of them below.
  std::unordered_map<std::string_view, std::size_t> names;
  for (std::size_t i = 0; i < aggregates.size(); ++i) {
    const AggregateDef& d = aggregates[i];
    if (d.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("aggregates[%d].name: must not be empty", i));
    }
    if (auto [it, added] = names.emplace(d.name, i); !added) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "aggregates[%d].name: '%s' is also the name of aggregates[%d]", i, d.name, it->second));
    }
  }
  for (std::size_t i = 0; i < aggregates.size(); ++i) {
    const AggregateDef& d = aggregates[i];
    auto error = [i](std::string_view field, std::string_view what) {
      return absl::InvalidArgumentError(absl::StrFormat("aggregates[%d].%s: %s", i, field, what));
    };
    if (d.function > Function::kLabelRate) {
      return error("function",
                   absl::StrFormat("unknown function %d", static_cast<int>(d.function)));
    }
    const std::string_view function = FunctionName(d.function);
    if (d.window_seconds < 1 || d.window_seconds > kMaxWindowSeconds) {
      return error("window_seconds",
                   absl::StrFormat("must be 1 .. %d, got %d", kMaxWindowSeconds, d.window_seconds));
    }
    if (d.hop_seconds > d.window_seconds) {
      return error("hop_seconds",
                   absl::StrFormat("must be 0 (tumbling) or 1 .. window_seconds (%d), got %d",
                                   d.window_seconds, d.hop_seconds));
    }
    if (d.hop_seconds != 0 && d.window_seconds % d.hop_seconds != 0) {
      return error("hop_seconds", absl::StrFormat("must divide window_seconds (%d), got %d",
                                                  d.window_seconds, d.hop_seconds));
    }
    if (d.allowed_lateness_seconds > d.window_seconds) {
      return error("allowed_lateness_seconds",
                   absl::StrFormat("must be 0 .. window_seconds (%d), got %d", d.window_seconds,
                                   d.allowed_lateness_seconds));
    }
    if (NeedsField(d.function) && d.field.empty()) {
      return error("field", absl::StrFormat("%s needs the feature it aggregates", function));
    }
    if (!NeedsField(d.function) && !d.field.empty()) {
      return error("field", absl::StrFormat("%s aggregates no feature; leave it empty", function));
    }
    // An aggregate's output is appended after Compute: it is never an event's feature, except
    // in the features a label is learned with, where it would be read as a different thing.
    const std::pair<std::string_view, const std::string*> features[] = {
        {"field", &d.field}, {"key_field", &d.key_field}};
    for (const auto& [field, value] : features) {
      if (auto it = names.find(*value); it != names.end()) {
        return error(field, absl::StrFormat("'%s' is the name of aggregates[%d], not a feature",
                                            *value, it->second));
      }
    }
    if (d.function == Function::kLabelRate) {
      if (d.key_field.empty()) {
        return error("key_field",
                     "LABEL_RATE needs a feature as its key: a delayed label comes with its "
                     "event's features, not its key");
      }
      if (d.label_class.empty()) {
        return error("label_class", "LABEL_RATE needs the class whose share it computes");
      }
    } else if (!d.label_class.empty()) {
      return error("label_class", absl::StrFormat("only LABEL_RATE has one, not %s", function));
    }
  }
  if (max_keys < 1 || max_keys > kMaxKeys) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_keys: must be 1 .. %d, got %d", kMaxKeys, max_keys));
  }
  if (max_distinct_per_pane < 1 || max_distinct_per_pane > kMaxDistinctPerPane) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_distinct_per_pane: must be 1 .. %d, got %d", kMaxDistinctPerPane,
                        max_distinct_per_pane));
  }
  return absl::OkStatus();
}

absl::StatusOr<WindowAggregator> WindowAggregator::Create(AggregatorSpec spec) {
  if (absl::Status s = spec.Validate(); !s.ok()) return s;
  WindowAggregator a;
  a.spec_ = std::move(spec);
  a.BuildPlans();
  return a;
}

void WindowAggregator::BuildPlans() {
  plans_.assign(spec_.aggregates.size(), Plan{});
  tables_.clear();
  for (std::size_t i = 0; i < spec_.aggregates.size(); ++i) {
    const AggregateDef& d = spec_.aggregates[i];
    Plan& plan = plans_[i];
    auto it = std::find_if(tables_.begin(), tables_.end(),
                           [&d](const KeyTable& t) { return t.key_field == d.key_field; });
    if (it == tables_.end()) {
      it = tables_.emplace(tables_.end());
      it->key_field = d.key_field;
    }
    KeyTable& table = *it;
    plan.table = static_cast<std::uint32_t>(it - tables_.begin());
    plan.series = static_cast<std::uint32_t>(table.defs.size());
    table.defs.push_back(static_cast<std::uint32_t>(i));
    if (d.function == Function::kCountDistinct) plan.distinct = table.distinct_defs++;
    if (d.function == Function::kLabelRate) ++table.label_defs;
    const std::uint32_t hop = d.hop_seconds == 0 ? d.window_seconds : d.hop_seconds;
    plan.window_micros = std::int64_t{d.window_seconds} * kMicrosPerSecond;
    plan.hop_micros = std::int64_t{hop} * kMicrosPerSecond;
    plan.lateness_micros = std::int64_t{d.allowed_lateness_seconds} * kMicrosPerSecond;
    plan.panes = d.window_seconds / hop;
    table.horizon_micros =
        std::max(table.horizon_micros, plan.window_micros + plan.lateness_micros);
  }
}

absl::Status WindowAggregator::Validate(std::span<const NamedFeature> features) const {
  for (const NamedFeature& f : features) {
    const bool text = f.value.kind == FeatureValue::Kind::kText;
    if (!text && std::isnan(f.value.number)) return FieldError(f.name, "NaN is not a valid value");
    if (!text && std::isinf(f.value.number)) {
      return FieldError(f.name, "infinity is not a valid value");
    }
    for (std::size_t i = 0; i < spec_.aggregates.size(); ++i) {
      const AggregateDef& d = spec_.aggregates[i];
      if (f.name == d.name) {
        return FieldError(
            f.name,
            absl::StrFormat("'%s' is the name of an aggregate (aggregates[%d])", f.name, i));
      }
      if (text && NeedsNumber(d.function) && f.name == d.field) {
        return FieldError(f.name,
                          absl::StrFormat("aggregate '%s' needs a number, got a text", d.name));
      }
    }
  }
  return absl::OkStatus();
}

bool WindowAggregator::Expired(const KeyTable& table, const Slot& slot) const {
  // A stored key implies an observed event, hence a watermark.
  return slot.last_seen_micros < watermark_micros_ - table.horizon_micros;
}

std::uint32_t WindowAggregator::Find(const KeyTable& table, std::string_view key,
                                     std::uint64_t hash) const {
  if (table.buckets.empty()) return kNoSlot;
  const std::size_t mask = table.buckets.size() - 1;
  const std::uint64_t tag = hash >> 32;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const std::uint64_t b = table.buckets[i];
    if (b == 0) return kNoSlot;
    if ((b >> 32) == tag) {
      const auto slot = static_cast<std::uint32_t>(b) - 1;
      if (BytesEqual(table.slots[slot].key, key)) return slot;
    }
  }
}

void WindowAggregator::LinkAsNewest(KeyTable& table, std::uint32_t s) {
  Slot& slot = table.slots.Mutable(s);
  slot.newer = kNoSlot;
  slot.older = table.newest;
  if (table.newest != kNoSlot) {
    table.slots.Mutable(table.newest).newer = s;
  } else {
    table.oldest = s;
  }
  table.newest = s;
}

void WindowAggregator::Unlink(KeyTable& table, std::uint32_t s) {
  // Copied out: the writes below may clone the chunk that holds s, which a reference into it
  // would not follow.
  const std::uint32_t newer = table.slots[s].newer;
  const std::uint32_t older = table.slots[s].older;
  if (newer != kNoSlot) {
    table.slots.Mutable(newer).older = older;
  } else {
    table.newest = older;
  }
  if (older != kNoSlot) {
    table.slots.Mutable(older).newer = newer;
  } else {
    table.oldest = newer;
  }
}

// The slot's heap storage: its key's, panes' and hashes' buffers.
std::size_t WindowAggregator::SlotHeap(const KeyTable& table, std::uint32_t s) {
  std::size_t bytes = StringHeap(table.slots[s].key);
  for (std::size_t j = 0; j < table.defs.size(); ++j) {
    bytes += VectorHeap(table.panes[s * table.defs.size() + j]);
  }
  for (std::size_t k = 0; k < table.distinct_defs; ++k) {
    bytes += VectorHeap(table.hashes[s * table.distinct_defs + k]);
  }
  return bytes;
}

std::uint32_t WindowAggregator::AddKey(KeyTable& table, std::string_view key, std::uint64_t hash,
                                       std::int64_t time_micros) {
  if (table.size >= spec_.max_keys) {
    // Full: the least recently observed key makes room, counted as expired if it was.
    if (Expired(table, table.slots[table.oldest])) {
      ++stats_.expired_keys;
    } else {
      ++stats_.evicted_keys;
    }
    RemoveKey(table, table.oldest);
  }
  if ((table.size + 1) * 4 > table.buckets.size() * 3) {
    decltype(table.buckets) buckets;
    buckets.Resize(std::max(kMinBuckets, 2 * table.buckets.size()));  // zeros
    for (std::size_t i = 0; i < table.buckets.size(); ++i) {
      const std::uint64_t b = table.buckets[i];
      if (b == 0) continue;
      const auto s = static_cast<std::uint32_t>(b) - 1;
      PlaceInBuckets(buckets, table.slots[s].hash, s);
    }
    table.buckets = std::move(buckets);
  }
  std::uint32_t s = table.free;
  if (s != kNoSlot) {
    table.free = table.slots[s].older;
  } else {
    s = static_cast<std::uint32_t>(table.slots.size());
    table.slots.Resize(table.slots.size() + 1);
    table.panes.Resize(table.panes.size() + table.defs.size());
    table.hashes.Resize(table.hashes.size() + table.distinct_defs);
  }
  Slot& slot = table.slots.Mutable(s);
  table.heap_bytes -= StringHeap(slot.key);
  slot.key.assign(key);
  table.heap_bytes += StringHeap(slot.key);
  slot.hash = hash;
  slot.newest_micros = time_micros;
  slot.last_seen_micros = time_micros;
  LinkAsNewest(table, s);
  PlaceInBuckets(table.buckets, hash, s);
  ++table.size;
  return s;
}

void WindowAggregator::RemoveKey(KeyTable& table, std::uint32_t s) {
  Slot& slot = table.slots.Mutable(s);
  // Out of the index by backward shift (linear probing has no tombstones): each following entry
  // of the run moves into the hole if the hole is not before its home bucket.
  const std::size_t mask = table.buckets.size() - 1;
  std::size_t hole = slot.hash & mask;
  while (static_cast<std::uint32_t>(table.buckets[hole]) != s + 1) hole = (hole + 1) & mask;
  for (std::size_t j = hole;;) {
    j = (j + 1) & mask;
    const std::uint64_t b = table.buckets[j];
    if (b == 0) break;
    const std::size_t home = table.slots[static_cast<std::uint32_t>(b) - 1].hash & mask;
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      table.buckets.Mutable(hole) = b;
      hole = j;
    }
  }
  table.buckets.Mutable(hole) = 0;
  Unlink(table, s);
  // The buffers stay with the free slot, for the next key (no allocation churn as keys turn
  // over); MemoryBytes still counts them.
  slot.key.clear();
  for (std::size_t j = 0; j < table.defs.size(); ++j) {
    PaneList& panes = table.panes.Mutable(s * table.defs.size() + j);
    panes.erase(panes.begin(), panes.end());  // clear() would free an InlinedVector's buffer
  }
  for (std::size_t k = 0; k < table.distinct_defs; ++k) {
    table.hashes.Mutable(s * table.distinct_defs + k).clear();
  }
  slot.newer = kNoSlot;
  slot.older = table.free;
  table.free = s;
  --table.size;
}

void WindowAggregator::Record(std::size_t def, const Plan& plan, KeyTable& table,
                              std::uint32_t slot, std::span<const NamedFeature> features,
                              std::int64_t time_micros) {
  const AggregateDef& d = spec_.aggregates[def];
  PaneList& panes = table.panes.Mutable(slot * table.defs.size() + plan.series);
  const std::int64_t index = PaneIndex(time_micros, plan.hop_micros);
  std::size_t position = 0;
  switch (d.function) {
    case Function::kCount:
      ++PaneAt(panes, index, &position).count;
      return;
    case Function::kSum:
    case Function::kMean:
    case Function::kMin:
    case Function::kMax: {
      const FeatureValue* v = FindFeature(features, d.field);
      if (v == nullptr || v->kind != FeatureValue::Kind::kNumber) return;  // texts: Validate
      Pane& p = PaneAt(panes, index, &position);
      const double x = v->number;
      if (d.function == Function::kMin) {
        p.value = p.count == 0 ? x : std::min(p.value, x);
      } else if (d.function == Function::kMax) {
        p.value = p.count == 0 ? x : std::max(p.value, x);
      } else {
        p.value += x;
      }
      ++p.count;
      return;
    }
    case Function::kCountDistinct: {
      const FeatureValue* v = FindFeature(features, d.field);
      if (v == nullptr) return;
      const std::uint64_t hash = HashValue(*v);
      Pane& p = PaneAt(panes, index, &position);
      std::vector<std::uint64_t>& hashes =
          table.hashes.Mutable(slot * table.distinct_defs + plan.distinct);
      std::size_t offset = 0;
      for (std::size_t k = 0; k < position; ++k) offset += panes[k].count;
      const auto begin = hashes.begin() + static_cast<std::ptrdiff_t>(offset);
      const auto end = begin + static_cast<std::ptrdiff_t>(p.count);
      const auto at = std::lower_bound(begin, end, hash);
      if (at != end && *at == hash) return;
      if (p.count >= spec_.max_distinct_per_pane) {
        ++stats_.distinct_saturated;
        return;
      }
      hashes.insert(at, hash);
      ++p.count;
      return;
    }
    case Function::kSecondsSinceLast:  // the slot's newest time is all it needs
    case Function::kLabelRate:         // ObserveLabel
      return;
  }
}

void WindowAggregator::DropOldPanes(KeyTable& table, std::uint32_t s) {
  // A later on-time event has t >= newest - lateness, so its window starts at or after pane
  // PaneIndex(newest - lateness) - panes + 1: older panes can never be seen again. (Nor is the
  // pane of an on-time event older: with newest = max(newest, t), t >= newest - lateness.)
  const std::int64_t newest = table.slots[s].newest_micros;
  for (std::size_t j = 0; j < table.defs.size(); ++j) {
    const Plan& plan = plans_[table.defs[j]];
    PaneList& panes = table.panes.Mutable(s * table.defs.size() + j);
    if (panes.empty()) continue;
    const std::int64_t first =
        PaneIndex(newest - plan.lateness_micros, plan.hop_micros) - plan.panes + 1;
    std::size_t drop = 0;
    std::size_t values = 0;
    while (drop < panes.size() && panes[drop].index < first) values += panes[drop++].count;
    if (drop == 0) continue;
    if (spec_.aggregates[table.defs[j]].function == Function::kCountDistinct) {
      std::vector<std::uint64_t>& hashes =
          table.hashes.Mutable(s * table.distinct_defs + plan.distinct);
      hashes.erase(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(values));
    }
    panes.erase(panes.begin(), panes.begin() + static_cast<std::ptrdiff_t>(drop));
  }
}

void WindowAggregator::LookUp(std::optional<std::string_view> event_key,
                              std::span<const NamedFeature> features, Scratch* scratch) const {
  scratch->lookups.resize(tables_.size());
  char buffer[32];
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    const KeyTable& table = tables_[i];
    Scratch::Lookup& lookup = scratch->lookups[i];
    std::string_view key;
    lookup.has_key = ResolveKey(table.key_field, event_key, features, buffer, &key);
    if (!lookup.has_key) continue;
    lookup.hash = HashKey(key);
    lookup.slot = Find(table, key, lookup.hash);
  }
}

void WindowAggregator::Compute(std::optional<std::string_view> event_key,
                               std::span<const NamedFeature> features, std::int64_t time_micros,
                               std::vector<NamedFeature>* out, Scratch* scratch) const {
  LookUp(event_key, features, scratch);
  ComputeLookedUp(features, ClampTime(time_micros), out, scratch);
}

void WindowAggregator::Observe(std::optional<std::string_view> event_key,
                               std::span<const NamedFeature> features, std::int64_t time_micros,
                               Scratch* scratch) {
  LookUp(event_key, features, scratch);
  ObserveLookedUp(event_key, features, ClampTime(time_micros), *scratch);
}

void WindowAggregator::ComputeAndObserve(std::optional<std::string_view> event_key,
                                         std::span<const NamedFeature> features,
                                         std::int64_t time_micros, std::vector<NamedFeature>* out,
                                         Scratch* scratch) {
  // Compute changes nothing, so the slots it found are still those of the event's keys.
  LookUp(event_key, features, scratch);
  const std::int64_t t = ClampTime(time_micros);
  ComputeLookedUp(features, t, out, scratch);
  ObserveLookedUp(event_key, features, t, *scratch);
}

void WindowAggregator::ComputeLookedUp(std::span<const NamedFeature> features, std::int64_t t,
                                       std::vector<NamedFeature>* out, Scratch* scratch) const {
  for (std::size_t i = 0; i < spec_.aggregates.size(); ++i) {
    const AggregateDef& d = spec_.aggregates[i];
    const Plan& plan = plans_[i];
    const KeyTable& table = tables_[plan.table];
    const Scratch::Lookup& lookup = scratch->lookups[plan.table];
    if (!lookup.has_key) continue;
    std::uint32_t s = lookup.slot;
    if (s != kNoSlot && Expired(table, table.slots[s])) s = kNoSlot;  // forgotten already
    const Slot* slot = s == kNoSlot ? nullptr : &table.slots[s];
    if (slot != nullptr && t < slot->newest_micros - plan.lateness_micros) continue;  // late

    if (d.function == Function::kSecondsSinceLast) {
      if (slot == nullptr) continue;
      const std::int64_t since = t - slot->newest_micros;
      if (since > plan.window_micros) continue;
      // An earlier-observed event may be timed after this one: 0 seconds then.
      const double seconds = static_cast<double>(std::max<std::int64_t>(since, 0)) /
                             static_cast<double>(kMicrosPerSecond);
      AppendNumber(out, d.name, seconds);
      continue;
    }

    std::uint64_t count = 0;
    double total = 0.0;  // sum, or min, or max, or label_class matches
    if (slot != nullptr) {
      const PaneList& panes = table.panes[s * table.defs.size() + plan.series];
      const std::int64_t last = PaneIndex(t, plan.hop_micros);
      const std::int64_t first = last - plan.panes + 1;
      // [begin, end): the panes of the window. Panes after t's come from events observed
      // earlier but timed later (within the lateness): few, and at the end.
      std::size_t end = panes.size();
      while (end > 0 && panes[end - 1].index > last) --end;
      std::size_t begin = end;
      while (begin > 0 && panes[begin - 1].index >= first) --begin;
      for (std::size_t k = begin; k < end; ++k) {
        const Pane& p = panes[k];
        if (d.function == Function::kMin) {
          total = count == 0 ? p.value : std::min(total, p.value);
        } else if (d.function == Function::kMax) {
          total = count == 0 ? p.value : std::max(total, p.value);
        } else {
          total += p.value;
        }
        count += p.count;
      }
      if (d.function == Function::kCountDistinct && end - begin > 1) {
        // A value may be in several panes: count the union of their sorted hash runs.
        const std::vector<std::uint64_t>& hashes =
            table.hashes[s * table.distinct_defs + plan.distinct];
        std::size_t offset = 0;
        for (std::size_t k = 0; k < begin; ++k) offset += panes[k].count;
        std::vector<std::uint64_t>& all = scratch->hashes;
        all.assign(hashes.begin() + static_cast<std::ptrdiff_t>(offset),
                   hashes.begin() + static_cast<std::ptrdiff_t>(offset + count));
        std::sort(all.begin(), all.end());
        count = static_cast<std::uint64_t>(std::unique(all.begin(), all.end()) - all.begin());
      }
    }
    double value = 0.0;
    switch (d.function) {
      case Function::kCount:
      case Function::kCountDistinct:
        value = static_cast<double>(count);
        break;
      case Function::kSum:
        value = total;
        break;
      case Function::kMin:
      case Function::kMax:
        if (count == 0) continue;
        value = total;
        break;
      case Function::kMean:
      case Function::kLabelRate:
        if (count == 0) continue;
        value = total / static_cast<double>(count);
        break;
      case Function::kSecondsSinceLast:
        continue;  // above
    }
    AppendNumber(out, d.name, value);
  }
}

void WindowAggregator::ObserveLookedUp(std::optional<std::string_view> event_key,
                                       std::span<const NamedFeature> features, std::int64_t t,
                                       const Scratch& scratch) {
  bool late = false;
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    KeyTable& table = tables_[i];
    const Scratch::Lookup& lookup = scratch.lookups[i];
    if (!lookup.has_key) continue;
    std::uint32_t s = lookup.slot;
    // Judged with the watermark Compute saw (this event's time is not in it yet).
    if (s != kNoSlot && Expired(table, table.slots[s])) {
      RemoveKey(table, s);
      ++stats_.expired_keys;
      s = kNoSlot;
    }
    if (s == kNoSlot) {
      char buffer[32];
      std::string_view key;
      ResolveKey(table.key_field, event_key, features, buffer, &key);
      s = AddKey(table, key, lookup.hash, t);
    }
    const std::size_t heap_before = SlotHeap(table, s);
    // Lateness is judged per aggregate against the key's newest time before this event.
    const std::int64_t newest_before = table.slots[s].newest_micros;
    const auto on_time = [&](std::uint32_t def) {
      return t >= newest_before - plans_[def].lateness_micros;
    };
    bool any_on_time = false;
    for (const std::uint32_t def : table.defs) {
      if (on_time(def)) {
        any_on_time = true;
      } else {
        late = true;
      }
    }
    if (!any_on_time) continue;  // late for all of the table's aggregates: the key is untouched
    Slot& slot = table.slots.Mutable(s);
    slot.newest_micros = std::max(slot.newest_micros, t);
    slot.last_seen_micros = std::max(slot.last_seen_micros, t);
    // Old panes go before the event's pane is added (that one is never old: see DropOldPanes),
    // so a list whose panes have all aged out takes the new one in its place instead of growing
    // past the pane it holds in place.
    DropOldPanes(table, s);
    for (const std::uint32_t def : table.defs) {
      if (on_time(def)) Record(def, plans_[def], table, s, features, t);
    }
    if (table.newest != s) {
      Unlink(table, s);
      LinkAsNewest(table, s);
    }
    table.heap_bytes = table.heap_bytes - heap_before + SlotHeap(table, s);
  }
  if (late) ++stats_.late_events;
  if (!has_watermark_ || t > watermark_micros_) {
    has_watermark_ = true;
    watermark_micros_ = t;
  }
  // Lazy cleanup (see the notes at the top): two per call outpaces the one key a call can add.
  for (KeyTable& table : tables_) {
    for (int k = 0; k < 2 && table.oldest != kNoSlot && Expired(table, table.slots[table.oldest]);
         ++k) {
      RemoveKey(table, table.oldest);
      ++stats_.expired_keys;
    }
  }
}

void WindowAggregator::ObserveLabel(std::span<const NamedFeature> features, std::string_view label,
                                    Scratch* scratch) {
  if (!has_watermark_) return;  // no event observed, so no key to record it for
  char buffer[32];
  for (KeyTable& table : tables_) {
    if (table.label_defs == 0) continue;
    std::string_view key;
    if (!ResolveKey(table.key_field, std::nullopt, features, buffer, &key)) continue;
    const std::uint32_t s = Find(table, key, HashKey(key));
    if (s == kNoSlot || Expired(table, table.slots[s])) continue;  // see the notes at the top
    const std::size_t heap_before = SlotHeap(table, s);
    for (std::size_t j = 0; j < table.defs.size(); ++j) {
      const AggregateDef& d = spec_.aggregates[table.defs[j]];
      if (d.function != Function::kLabelRate) continue;
      std::size_t position = 0;
      Pane& p = PaneAt(table.panes.Mutable(s * table.defs.size() + j),
                       PaneIndex(watermark_micros_, plans_[table.defs[j]].hop_micros), &position);
      ++p.count;
      if (label == d.label_class) p.value += 1.0;
    }
    Slot& slot = table.slots.Mutable(s);
    slot.last_seen_micros = std::max(slot.last_seen_micros, watermark_micros_);
    table.heap_bytes = table.heap_bytes - heap_before + SlotHeap(table, s);
  }
}

WindowAggregator::Stats WindowAggregator::stats() const {
  Stats s = stats_;
  s.keys = 0;
  for (const KeyTable& table : tables_) s.keys += table.size;
  return s;
}

std::optional<std::int64_t> WindowAggregator::watermark_micros() const {
  return has_watermark_ ? std::optional<std::int64_t>(watermark_micros_) : std::nullopt;
}

std::size_t WindowAggregator::MemoryBytes() const {
  std::size_t bytes =
      sizeof(*this) + VectorHeap(spec_.aggregates) + VectorHeap(plans_) + VectorHeap(tables_);
  for (const AggregateDef& d : spec_.aggregates) {
    bytes += StringHeap(d.name) + StringHeap(d.key_field) + StringHeap(d.field) +
             StringHeap(d.label_class);
  }
  for (const KeyTable& table : tables_) {
    bytes += StringHeap(table.key_field) + VectorHeap(table.defs) +
             table.buckets.MemoryBytes(kAllocationOverhead) +
             table.slots.MemoryBytes(kAllocationOverhead) +
             table.panes.MemoryBytes(kAllocationOverhead) +
             table.hashes.MemoryBytes(kAllocationOverhead) + table.heap_bytes;
  }
  return bytes;
}

void WindowAggregator::RestoreWatermark(bool has_watermark, std::int64_t watermark_micros) {
  // Any time Observe can produce: within the clamp, and 0 when there is none.
  if (has_watermark ? (watermark_micros < -kTimeLimitMicros || watermark_micros > kTimeLimitMicros)
                    : watermark_micros != 0) {
    LoadError("bad watermark");
  }
  has_watermark_ = has_watermark;
  watermark_micros_ = watermark_micros;
}

void WindowAggregator::RestoreKey(std::uint32_t t, LoadedKey key) {
  const auto fail = LoadError;
  KeyTable& table = tables_[t];
  if (!has_watermark_) fail("a key without a watermark");
  if (key.newest_micros < -kTimeLimitMicros || key.newest_micros > key.last_seen_micros ||
      key.last_seen_micros > watermark_micros_) {
    fail("inconsistent key times");
  }
  const std::uint64_t hash = HashKey(key.key);
  if (Find(table, key.key, hash) != kNoSlot) fail("a key twice");
  if (table.size >= spec_.max_keys) fail("too many keys");
  for (std::size_t j = 0; j < table.defs.size(); ++j) {
    const AggregateDef& d = spec_.aggregates[table.defs[j]];
    const PaneList& panes = key.panes[j];
    if (d.function == Function::kSecondsSinceLast && !panes.empty()) fail("unexpected panes");
    std::uint64_t values = 0;
    for (std::size_t k = 0; k < panes.size(); ++k) {
      const Pane& p = panes[k];
      if (p.count == 0 || (k > 0 && p.index <= panes[k - 1].index)) fail("bad panes");
      if ((d.function == Function::kMin || d.function == Function::kMax) &&
          !std::isfinite(p.value)) {
        fail("bad extreme");
      }
      if (d.function == Function::kLabelRate &&
          !(p.value >= 0.0 && p.value <= static_cast<double>(p.count))) {
        fail("bad label counts");
      }
      if (d.function == Function::kCountDistinct) {
        if (p.count > spec_.max_distinct_per_pane) fail("too many distinct values");
        values += p.count;
      }
    }
    if (d.function == Function::kCountDistinct) {
      const std::vector<std::uint64_t>& hashes = key.hashes[plans_[table.defs[j]].distinct];
      if (hashes.size() != values) fail("distinct values do not match their panes");
      std::size_t offset = 0;
      for (const Pane& p : panes) {
        for (std::size_t k = offset + 1; k < offset + p.count; ++k) {
          if (hashes[k - 1] >= hashes[k]) fail("distinct values out of order");
        }
        offset += p.count;
      }
    }
  }
  // Keys come from the least to the most recently observed: each becomes the newest.
  const std::uint32_t s = AddKey(table, key.key, hash, key.newest_micros);
  table.slots.Mutable(s).last_seen_micros = key.last_seen_micros;
  const std::size_t heap_before = SlotHeap(table, s);
  for (std::size_t j = 0; j < table.defs.size(); ++j) {
    table.panes.Mutable(s * table.defs.size() + j) = std::move(key.panes[j]);
  }
  for (std::size_t k = 0; k < table.distinct_defs; ++k) {
    table.hashes.Mutable(s * table.distinct_defs + k) = std::move(key.hashes[k]);
  }
  table.heap_bytes = table.heap_bytes - heap_before + SlotHeap(table, s);
}

}  // namespace riffle::features
