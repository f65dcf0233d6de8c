#include "features/vocabulary.h"

#include <atomic>

#include "absl/hash/hash.h"
#include "features/bytes_equal.h"

namespace riffle::features {

std::uint64_t Vocabulary::InstanceId::Next() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Vocabulary::Hash(std::string_view name) {
  // (absl::string_view: Debian's Abseil has its own, and hashes std::string_view with
  // std::hash.)
  return absl::Hash<absl::string_view>{}(absl::string_view(name.data(), name.size()));
}

std::size_t Vocabulary::Probe(std::string_view name, std::uint64_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  const auto tag = static_cast<std::uint32_t>(hash >> 32);
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.index_plus_one == 0 ||
        (slot.tag == tag && BytesEqual(names_[slot.index_plus_one - 1], name))) {
      return i;
    }
  }
}

void Vocabulary::Grow() {
  std::vector<Slot> slots(slots_.empty() ? 16 : 2 * slots_.size());
  const std::size_t mask = slots.size() - 1;
  for (std::size_t k = 0; k < names_.size(); ++k) {
    const std::uint64_t hash = Hash(names_[k]);
    std::size_t i = hash & mask;
    while (slots[i].index_plus_one != 0) i = (i + 1) & mask;
    slots[i] = {static_cast<std::uint32_t>(k + 1), static_cast<std::uint32_t>(hash >> 32)};
  }
  slots_.swap(slots);
}

Vocabulary::Index Vocabulary::Add(std::string_view name) {
  if (2 * (names_.size() + 1) > slots_.size()) Grow();
  const std::uint64_t hash = Hash(name);
  Slot& slot = slots_[Probe(name, hash)];
  if (slot.index_plus_one != 0) return slot.index_plus_one - 1;
  const auto index = static_cast<Index>(names_.size());
  names_.emplace_back(name);
  slot = {index + 1, static_cast<std::uint32_t>(hash >> 32)};
  return index;
}

Vocabulary::Index Vocabulary::Lookup(std::string_view name) const {
  if (slots_.empty()) return kNotFound;
  // (An empty slot's index_plus_one - 1 is kNotFound.)
  return slots_[Probe(name, Hash(name))].index_plus_one - 1;
}

std::size_t Vocabulary::MemoryBytes() const {
  std::size_t bytes = names_.capacity() * sizeof(std::string) + slots_.capacity() * sizeof(Slot);
  for (const std::string& name : names_) {
    if (name.capacity() > std::string().capacity()) bytes += name.capacity() + 1;  // not inline
  }
  return bytes;
}

}  // namespace riffle::features
