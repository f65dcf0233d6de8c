#ifndef RIFFLE_FEATURES_COW_CHUNKED_VECTOR_H_
#define RIFFLE_FEATURES_COW_CHUNKED_VECTOR_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace riffle::features {

// A vector whose storage is shared copy-on-write, chunk by chunk, so that copying it costs
// O(chunks) rather than O(elements): what a checkpoint snapshot of a large table taken under a
// lock needs (WindowAggregator).
//
// The elements live in fixed-size chunks of 2^kChunkLog2 elements, each with an intrusive atomic
// reference count. A copy copies the table of chunk pointers and increments each count. Reading
// (operator[]) reads in place. Writing goes through Mutable(i), which first makes i's chunk
// unique: a chunk shared with a copy is cloned (2^kChunkLog2 element copies) and the shared one
// released. There is deliberately no non-const operator[]: a write must say so, since it may
// clone, and a read must not clone by accident. Choose kChunkLog2 so that cloning a chunk costs
// microseconds: elements that own heap blocks (std::vector, a long std::string) allocate one
// block each when their chunk is cloned.
//
// T must be default-constructible and copy-constructible. Elements are value-initialized
// (T{}) when the vector grows. Growth adds chunks: elements never move, but there is no
// capacity to reserve and no contiguous storage.
//
// Thread-safety: as std::vector for one object (concurrent const access is safe; a write needs
// exclusive access). In addition, copies that share chunks may be used on different threads
// without synchronization between them: a copy may be read, copied, or destroyed on one thread
// while the original (or another copy) is written on another. A write never touches a shared
// chunk (the count is read with acquire ordering, so a chunk seen unique has no reader left),
// and releasing a reference is acq_rel, so whichever thread frees a chunk does it after every
// other owner's last access. The counts are intrusive rather than std::shared_ptr's because
// shared_ptr::use_count() is a relaxed load, too weak to tell "unique" for this.
template <typename T, int kChunkLog2>
class CowChunkedVector {
  static_assert(kChunkLog2 >= 0 && kChunkLog2 < 24, "chunks of 1 .. 2^23 elements");

 public:
  static constexpr std::size_t kChunkSize = std::size_t{1} << kChunkLog2;

  CowChunkedVector() = default;
  ~CowChunkedVector() { ReleaseFrom(0); }

  // O(chunks): the copy shares every chunk.
  CowChunkedVector(const CowChunkedVector& other) : chunks_(other.chunks_), size_(other.size_) {
    // Relaxed: the copier holds a reference already (as shared_ptr's copy does).
    for (Chunk* c : chunks_) c->refs.fetch_add(1, std::memory_order_relaxed);
  }
  CowChunkedVector& operator=(const CowChunkedVector& other) {
    if (this != &other) {
      CowChunkedVector copy(other);
      Swap(copy);
    }
    return *this;
  }
  CowChunkedVector(CowChunkedVector&& other) noexcept
      : chunks_(std::move(other.chunks_)), size_(std::exchange(other.size_, 0)) {
    other.chunks_.clear();
  }
  CowChunkedVector& operator=(CowChunkedVector&& other) noexcept {
    if (this != &other) {
      CowChunkedVector moved(std::move(other));
      Swap(moved);
    }
    return *this;
  }
  void Swap(CowChunkedVector& other) noexcept {
    chunks_.swap(other.chunks_);
    std::swap(size_, other.size_);
  }
  friend void swap(CowChunkedVector& a, CowChunkedVector& b) noexcept { a.Swap(b); }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // For reading only. The reference is valid until a Mutable() of any element of the same chunk
  // (the chunk it points into may then be cloned and released, and freed by another sharer at
  // any time), or until the vector shrinks past i: copy out what a write must not disturb.
  const T& operator[](std::size_t i) const {
    assert(i < size_);
    return chunks_[i >> kChunkLog2]->items[i & kMask];
  }

  // Element i for writing: its chunk is cloned first if shared. The reference is valid until
  // the vector is copied (the chunk is shared again) or shrinks past i; other writes, even to
  // the same chunk, leave it valid (the chunk is this vector's own already).
  T& Mutable(std::size_t i) {
    assert(i < size_);
    return Unshare(i >> kChunkLog2)->items[i & kMask];
  }

  // Grows with value-initialized elements (whole chunks added as needed; the slack of the last
  // chunk is value-initialized already, so growing within it writes nothing), or shrinks,
  // destroying the elements beyond n.
  void Resize(std::size_t n) {
    if (n < size_) {
      const std::size_t keep = (n + kChunkSize - 1) >> kChunkLog2;
      ReleaseFrom(keep);
      // The slack of the last chunk goes back to T{}, so a later growth finds it so.
      if (keep > 0 && (n & kMask) != 0) {
        Chunk* last = Unshare(keep - 1);
        for (std::size_t k = n & kMask; k < kChunkSize; ++k) last->items[k] = T{};
      }
    }
    const std::size_t chunks = (n + kChunkSize - 1) >> kChunkLog2;
    // Reserved first so that push_back cannot throw and leak the new chunk; geometric growth.
    if (chunks > chunks_.capacity()) chunks_.reserve(std::max(chunks, 2 * chunks_.capacity()));
    while (chunks_.size() < chunks) chunks_.push_back(new Chunk());
    size_ = n;
  }
  void PushBack(T value) {
    Resize(size_ + 1);
    Mutable(size_ - 1) = std::move(value);
  }
  void Clear() {
    ReleaseFrom(0);
    size_ = 0;
  }

  // Heap bytes of the chunk table and the chunks (not what the elements own), counting
  // `per_allocation` bytes per heap block beyond its size (the allocator's overhead). A chunk
  // shared with copies counts in full in each of them.
  std::size_t MemoryBytes(std::size_t per_allocation) const {
    if (chunks_.capacity() == 0) return 0;  // no table, hence no chunk
    // NOLINTNEXTLINE(bugprone-sizeof-expression): the table holds chunk pointers
    const std::size_t table = chunks_.capacity() * sizeof(Chunk*) + per_allocation;
    return table + chunks_.size() * (sizeof(Chunk) + per_allocation);
  }

 private:
  static constexpr std::size_t kMask = kChunkSize - 1;

  struct Chunk {
    Chunk() = default;
    // A clone: the same elements, one owner.
    Chunk(const Chunk& other) : items(other.items) {}
    Chunk& operator=(const Chunk&) = delete;

    std::atomic<std::uint32_t> refs{1};
    std::array<T, kChunkSize> items{};
  };

  // Drops one reference; the last owner frees the chunk. acq_rel: the release publishes this
  // owner's accesses to whichever thread frees it, the acquire makes the freeing thread see all
  // others'.
  static void Release(Chunk* c) {
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
  }

  // Chunk c, cloned first if another vector shares it.
  Chunk* Unshare(std::size_t c) {
    Chunk*& chunk = chunks_[c];
    // Acquire: when another owner just released the chunk, its reads happen before our writes.
    if (chunk->refs.load(std::memory_order_acquire) > 1) [[unlikely]] {
      Clone(chunk);
    }
    return chunk;
  }
  // Out of line, so that the check above is all a write costs when nothing is shared.
  [[gnu::noinline]] static void Clone(Chunk*& chunk) {
    Chunk* clone = new Chunk(*chunk);
    Release(chunk);
    chunk = clone;
  }

  void ReleaseFrom(std::size_t first) {
    for (std::size_t c = first; c < chunks_.size(); ++c) Release(chunks_[c]);
    chunks_.resize(std::min(first, chunks_.size()));
  }

  std::vector<Chunk*> chunks_;
  std::size_t size_ = 0;
};

// A std::vector, std::string or absl::InlinedVector whose copy has its source's capacity, where
// a plain copy may have just its size. As an element of a CowChunkedVector, a cloned chunk then
// holds the same buffers as the chunk it replaces: memory accounted by capacity stays exact, and
// spare room kept on purpose (a cleared buffer waiting for reuse) survives the clone. "The same"
// is what libstdc++ and libc++ give for a container constructed with n elements (the standard
// only promises at least n). An InlinedVector<T, N> constructed with n > N elements allocates
// max(2N, n), which is the capacity of any such vector with a buffer (its growth starts at 2N)
// unless shrink_to_fit was called.
template <typename Container>
class CopyKeepsCapacity : public Container {
 public:
  using Container::Container;
  using Container::operator=;

  CopyKeepsCapacity() = default;
  CopyKeepsCapacity(const CopyKeepsCapacity& other)
      : Container(other.capacity(), typename Container::value_type{}) {
    this->assign(other.begin(), other.end());  // within the capacity: no reallocation
  }
  CopyKeepsCapacity(CopyKeepsCapacity&&) noexcept = default;
  CopyKeepsCapacity& operator=(const CopyKeepsCapacity&) = default;
  CopyKeepsCapacity& operator=(CopyKeepsCapacity&&) noexcept = default;
  ~CopyKeepsCapacity() = default;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_COW_CHUNKED_VECTOR_H_
