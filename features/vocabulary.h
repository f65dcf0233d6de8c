#ifndef RIFFLE_FEATURES_VOCABULARY_H_
#define RIFFLE_FEATURES_VOCABULARY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "learners/serialization.h"

namespace riffle::features {

// Assigns dense indices 0, 1, 2, ... to strings in order of first appearance: feature names
// (so a new feature name mid-stream simply gets the next index) and class labels (so class k
// is the k-th distinct label seen).
//
// Lookups take a string_view and do not allocate when the string is already known. The index is
// an open-addressing table of 8-byte slots over the names (no second copy of each name), hashed
// with absl::Hash, whose seed changes per process: names from events cannot be crafted to
// collide.
// Not thread-safe: owned by the model's single writer; const methods may run concurrently
// with each other.
class Vocabulary {
 public:
  using Index = std::uint32_t;

  // What Lookup returns for an unknown name.
  static constexpr Index kNotFound = ~Index{0};

  // Returns the index of `name`, adding it if new.
  Index Add(std::string_view name);
  // Returns the index of `name` if known.
  std::optional<Index> Find(std::string_view name) const {
    const Index index = Lookup(name);
    return index == kNotFound ? std::nullopt : std::optional<Index>(index);
  }
  // Find for hot paths: the index or kNotFound. (GCC returns a std::optional<std::uint32_t>
  // from a call that is not inlined through memory, as two narrow stores and one wide load,
  // which stalls every lookup.)
  Index Lookup(std::string_view name) const;
  // Unique to this object among the vocabularies of the process, past and present: a copy gets
  // a new id, and so does an object loaded into or assigned to. Indices never change while the
  // id does not (names are only ever added), so a caller may remember an index of a name found
  // in this vocabulary for as long as the id is the same.
  std::uint64_t id() const { return id_.value(); }

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
  // A slot of the index: 0 if empty, else the name's index + 1, and 32 bits of the name's hash
  // (most probes of another name stop there, without comparing strings).
  struct Slot {
    std::uint32_t index_plus_one = 0;
    std::uint32_t tag = 0;
  };
  static std::uint64_t Hash(std::string_view name);
  // The slot holding `name`, or the empty slot where it would go.
  std::size_t Probe(std::string_view name, std::uint64_t hash) const;
  void Grow();

  // A process-unique number that a copy or an assignment does not carry over (the target gets a
  // new one), and that a move takes (the source gets a new one).
  class InstanceId {
   public:
    InstanceId() : value_(Next()) {}
    InstanceId(const InstanceId&) : value_(Next()) {}
    InstanceId(InstanceId&& other) noexcept : value_(other.value_) { other.value_ = Next(); }
    InstanceId& operator=(const InstanceId&) {
      value_ = Next();
      return *this;
    }
    InstanceId& operator=(InstanceId&& other) noexcept {
      value_ = other.value_;
      other.value_ = Next();
      return *this;
    }
    std::uint64_t value() const { return value_; }

   private:
    static std::uint64_t Next();
    std::uint64_t value_;
  };

  InstanceId id_;
  std::vector<std::string> names_;
  // Linear probing; a power of two in size, at most half full (empty until the first Add).
  std::vector<Slot> slots_;
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
