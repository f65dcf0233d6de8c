#ifndef RIFFLE_FEATURES_VOCABULARY_H_
#define RIFFLE_FEATURES_VOCABULARY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "learners/serialization.h"

namespace riffle::features {

// Assigns dense indices 0, 1, 2, ... to strings in order of first appearance: feature names
// (so a new feature name mid-stream simply gets the next index) and class labels (so class k
// is the k-th distinct label seen).
//
// Lookups take a string_view and do not allocate when the string is already known.
// Not thread-safe: owned by the model's single writer; const methods may run concurrently
// with each other.
class Vocabulary {
 public:
  using Index = std::uint32_t;

  // Returns the index of `name`, adding it if new.
  Index Add(std::string_view name);
  // Returns the index of `name` if known.
  std::optional<Index> Find(std::string_view name) const;
  // Add and Find with a guess: `*hint` is tried first (checked against the name, so a wrong or
  // stale hint costs one comparison) and set to the answer. A caller keeps one hint per position
  // of a feature in its events: the events of a stream list the same names in the same order,
  // so nearly every lookup skips hashing the name. A null hint is a plain Add or Find.
  Index Add(std::string_view name, Index* hint) {
    if (hint == nullptr) return Add(name);
    if (*hint < names_.size() && names_[*hint] == name) return *hint;
    return *hint = Add(name);
  }
  std::optional<Index> Find(std::string_view name, Index* hint) const {
    if (hint == nullptr) return Find(name);
    if (*hint < names_.size() && names_[*hint] == name) return *hint;
    std::optional<Index> found = Find(name);
    if (found.has_value()) *hint = *found;
    return found;
  }
  // The string of a known index.
  const std::string& Name(Index index) const { return names_[index]; }
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  std::size_t MemoryBytes() const;

  template <class Archive>
  void save(Archive& archive, std::uint32_t /*version*/) const {
    learners::SaveVector(archive, names_);
  }
  template <class Archive>
  void load(Archive& archive, std::uint32_t /*version*/);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Index, Hash, std::equal_to<>> index_;
  std::vector<std::string> names_;
};

template <class Archive>
void Vocabulary::load(Archive& archive, std::uint32_t /*version*/) {
  std::vector<std::string> names;
  learners::LoadVector(archive, &names);
  Vocabulary rebuilt;
  for (const std::string& name : names) rebuilt.Add(name);
  if (rebuilt.size() != names.size()) {
    throw std::runtime_error("vocabulary: duplicate entries");
  }
  *this = std::move(rebuilt);
}

}  // namespace riffle::features

CEREAL_CLASS_VERSION(riffle::features::Vocabulary, 1);

#endif  // RIFFLE_FEATURES_VOCABULARY_H_
