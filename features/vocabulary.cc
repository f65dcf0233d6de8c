#include "features/vocabulary.h"

namespace riffle::features {

Vocabulary::Index Vocabulary::Add(std::string_view name) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  const auto index = static_cast<Index>(names_.size());
  names_.emplace_back(name);
  index_.emplace(names_.back(), index);
  return index;
}

std::optional<Vocabulary::Index> Vocabulary::Find(std::string_view name) const {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  return std::nullopt;
}

std::size_t Vocabulary::MemoryBytes() const {
  std::size_t bytes = names_.capacity() * sizeof(std::string) +
                      index_.bucket_count() * sizeof(void*) +
                      index_.size() * (sizeof(std::string) + sizeof(Index) + 2 * sizeof(void*));
  for (const std::string& name : names_) bytes += 2 * name.capacity();
  return bytes;
}

}  // namespace riffle::features
