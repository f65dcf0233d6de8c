#include "features/cow_chunked_vector.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace riffle::features {
namespace {

// Chunks of 8 elements, so that a few dozen elements span several chunks.
template <typename T>
using Vector = CowChunkedVector<T, 3>;
constexpr std::size_t kChunk = Vector<int>::kChunkSize;
static_assert(kChunk == 8);

// An element that counts its copies and the live instances, to observe what a clone copies and
// that every chunk is freed.
struct Counted {
  static inline int copies = 0;
  static inline int live = 0;

  Counted() { ++live; }
  Counted(const Counted& other) : value(other.value) {
    ++copies;
    ++live;
  }
  Counted& operator=(const Counted&) = default;
  ~Counted() { --live; }

  int value = 0;
};

class CowChunkedVectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Counted::copies = 0;
    Counted::live = 0;
  }
  // Every chunk of every vector of the test was freed, once (ASan would catch a second time).
  void TearDown() override { EXPECT_EQ(Counted::live, 0); }
};

Vector<int> Iota(std::size_t n) {
  Vector<int> v;
  for (std::size_t i = 0; i < n; ++i) v.PushBack(static_cast<int>(i));
  return v;
}

std::vector<int> Contents(const Vector<int>& v) {
  std::vector<int> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i];
  return out;
}

std::vector<int> IotaVector(int n) {
  std::vector<int> out(static_cast<std::size_t>(n));
  std::iota(out.begin(), out.end(), 0);
  return out;
}

TEST_F(CowChunkedVectorTest, GrowsAcrossChunkBoundariesWithValueInitializedElements) {
  Vector<int> v;
  EXPECT_TRUE(v.empty());
  for (int i = 0; i < 20; ++i) v.PushBack(i);  // chunks 0, 1 full, 2 half
  EXPECT_EQ(v.size(), 20u);
  EXPECT_EQ(Contents(v), IotaVector(20));
  v.Resize(35);  // within chunk 2, then chunks 3 and 4
  ASSERT_EQ(v.size(), 35u);
  for (std::size_t i = 20; i < 35; ++i) EXPECT_EQ(v[i], 0) << i;
  // Shrinking then growing again gives value-initialized elements, not the old ones.
  v.Mutable(30) = 7;
  v.Resize(3);
  v.Resize(35);
  for (std::size_t i = 3; i < 35; ++i) EXPECT_EQ(v[i], 0) << i;
  EXPECT_EQ(v[2], 2);
  v.Clear();
  EXPECT_TRUE(v.empty());
  v.Resize(1);
  EXPECT_EQ(v[0], 0);
}

TEST_F(CowChunkedVectorTest, ACopyThenAWriteOnEitherSideLeavesTheOtherUnchanged) {
  Vector<int> original = Iota(50);
  Vector<int> copy = original;
  original.Mutable(0) = -1;
  original.Mutable(49) = -49;
  EXPECT_EQ(Contents(copy), IotaVector(50));
  copy.Mutable(20) = -20;
  EXPECT_EQ(original[20], 20);
  EXPECT_EQ(original[0], -1);
  EXPECT_EQ(copy[0], 0);
  // Growth and shrinkage are per vector too.
  original.PushBack(1000);
  copy.Resize(10);
  EXPECT_EQ(original.size(), 51u);
  EXPECT_EQ(original[50], 1000);
  EXPECT_EQ(original[20], 20);
  EXPECT_EQ(Contents(copy), IotaVector(10));
}

// The slack of a shared last chunk belongs to no one: a write there by one vector is not seen
// as an initial value by the other when it grows.
TEST_F(CowChunkedVectorTest, GrowingIntoASharedLastChunkGivesValueInitializedElements) {
  Vector<int> original = Iota(10);  // chunk 1 holds 8, 9 and slack
  Vector<int> copy = original;
  original.PushBack(10);
  copy.Resize(11);
  EXPECT_EQ(copy[10], 0);
  EXPECT_EQ(original[10], 10);
  // Shrinking resets the slack without touching the other vector's chunk.
  Vector<int> third = original;
  third.Resize(9);
  EXPECT_EQ(original[10], 10);
  third.Resize(11);
  EXPECT_EQ(third[9], 0);
  EXPECT_EQ(third[10], 0);
  EXPECT_EQ(original[9], 9);
}

TEST_F(CowChunkedVectorTest, ACopySharesEveryChunkAndAWriteClonesOnlyItsChunk) {
  Vector<Counted> original;
  original.Resize(4 * kChunk);
  for (std::size_t i = 0; i < original.size(); ++i) original.Mutable(i).value = static_cast<int>(i);
  Counted::copies = 0;

  const Vector<Counted> copy = original;
  EXPECT_EQ(Counted::copies, 0);  // no element copied
  const Vector<Counted>& reader = original;
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(&reader[i], &copy[i]) << i;  // shared storage
  }

  original.Mutable(2 * kChunk + 3).value = -1;  // chunk 2
  EXPECT_EQ(Counted::copies, static_cast<int>(kChunk));
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(&reader[i] == &copy[i], i / kChunk != 2) << i;
  }
  EXPECT_EQ(copy[2 * kChunk + 3].value, static_cast<int>(2 * kChunk + 3));

  // The clone is the original's own: more writes to it clone nothing.
  original.Mutable(2 * kChunk).value = -2;
  EXPECT_EQ(Counted::copies, static_cast<int>(kChunk));
  // Reading clones nothing either.
  int sum = 0;
  for (std::size_t i = 0; i < reader.size(); ++i) sum += reader[i].value;
  EXPECT_EQ(Counted::copies, static_cast<int>(kChunk));
  EXPECT_NE(sum, 0);
}

TEST_F(CowChunkedVectorTest, AChunkReleasedByItsLastSharerIsWrittenInPlace) {
  Vector<Counted> original;
  original.Resize(2 * kChunk);
  const Counted* first = &std::as_const(original)[0];
  {
    const Vector<Counted> copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(&copy[0], first);
    Counted::copies = 0;
  }  // the copy is gone: the chunks have one owner again
  original.Mutable(0).value = 5;
  EXPECT_EQ(Counted::copies, 0);
  EXPECT_EQ(&std::as_const(original)[0], first);

  // Likewise when the original's clone left the copy as the chunk's only owner.
  Vector<Counted> copy = original;
  original.Mutable(0).value = 6;
  EXPECT_EQ(Counted::copies, static_cast<int>(kChunk));
  copy.Mutable(0).value = 7;
  EXPECT_EQ(Counted::copies, static_cast<int>(kChunk));
  EXPECT_EQ(&std::as_const(copy)[0], first);
  EXPECT_EQ(original[0].value, 6);
}

TEST_F(CowChunkedVectorTest, AssignmentMoveAndSwap) {
  Vector<Counted> a;
  a.Resize(3 * kChunk);
  a.Mutable(1).value = 1;
  Vector<Counted> b;
  b.Resize(kChunk);
  b = a;  // b's own chunk is freed (TearDown counts), a's are shared
  EXPECT_EQ(b.size(), 3 * kChunk);
  EXPECT_EQ(&std::as_const(b)[1], &std::as_const(a)[1]);
  const Vector<Counted>& same = b;
  b = same;  // self-assignment keeps everything
  EXPECT_EQ(b[1].value, 1);

  Vector<Counted> moved = std::move(b);
  EXPECT_EQ(moved.size(), 3 * kChunk);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  b.Resize(1);             // and usable
  EXPECT_EQ(b[0].value, 0);

  Vector<Counted> other;
  other.Resize(2);
  swap(other, moved);
  EXPECT_EQ(other.size(), 3 * kChunk);
  EXPECT_EQ(moved.size(), 2u);
  moved = std::move(other);
  EXPECT_EQ(moved[1].value, 1);
}

TEST_F(CowChunkedVectorTest, MemoryBytesCountsTheChunkTableAndTheChunks) {
  Vector<std::uint64_t> v;
  EXPECT_EQ(v.MemoryBytes(16), 0u);
  v.Resize(2 * kChunk + 1);  // 3 chunks
  // One allocation overhead per chunk and one for the table of chunk pointers.
  EXPECT_EQ(v.MemoryBytes(16) - v.MemoryBytes(0), 4 * 16u);
  EXPECT_GE(v.MemoryBytes(0), 3 * kChunk * sizeof(std::uint64_t) + 3 * sizeof(void*));
  const std::size_t three = v.MemoryBytes(0);
  v.Resize(4 * kChunk);
  EXPECT_EQ(v.MemoryBytes(16) - v.MemoryBytes(0), 5 * 16u);
  EXPECT_GE(v.MemoryBytes(0), three + kChunk * sizeof(std::uint64_t));
  // A copy counts the shared chunks in full.
  const Vector<std::uint64_t> copy = v;
  EXPECT_GE(copy.MemoryBytes(0), 4 * kChunk * sizeof(std::uint64_t) + 4 * sizeof(void*));
  EXPECT_EQ(copy.MemoryBytes(16) - copy.MemoryBytes(0), 5 * 16u);
}

TEST_F(CowChunkedVectorTest, CopyKeepsCapacityCopiesTheCapacity) {
  CopyKeepsCapacity<std::vector<int>> list;
  list.reserve(40);
  list.assign({1, 2, 3});
  const CopyKeepsCapacity<std::vector<int>> copy = list;
  EXPECT_EQ(copy, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(copy.capacity(), list.capacity());
  CopyKeepsCapacity<std::string> text;
  text.reserve(100);  // a cleared buffer kept for reuse
  const CopyKeepsCapacity<std::string> text_copy = text;
  EXPECT_TRUE(text_copy.empty());
  EXPECT_EQ(text_copy.capacity(), text.capacity());
  // Hence a clone of a chunk of them has the same buffers' sizes.
  Vector<CopyKeepsCapacity<std::vector<int>>> v;
  v.Resize(3);
  v.Mutable(1).reserve(40);
  v.Mutable(1).push_back(5);
  Vector<CopyKeepsCapacity<std::vector<int>>> shared = v;
  v.Mutable(0).push_back(1);  // clones the chunk
  EXPECT_NE(&std::as_const(v)[1], &shared[1]);
  EXPECT_EQ(v[1].capacity(), shared[1].capacity());
  EXPECT_EQ(v[1], shared[1]);
}

// A copy read and destroyed on another thread while the original is written, generation after
// generation, as a checkpoint writer does with its snapshot. The reader checks every element: a
// write into a shared chunk would show as a changed value. The generations alternate the two
// orders in which the threads leave a chunk, each sequenced by a relaxed flag, which orders the
// threads in time without synchronizing them (for ThreadSanitizer, only the vector's own
// atomics may order their accesses):
//   - the original writes (cloning) while the reader reads, then the reader, last owner of the
//     old chunks, frees them: without acq_rel on the release, TSan reports the free racing with
//     the original's reads of the chunk when it cloned;
//   - the reader reads and drops its copy first, then the original writes in place (its chunks
//     are unique again): without acquire on the count's load, TSan reports the writes racing
//     with the reader's reads.
// Strings beyond the small-string buffer own heap blocks, so a chunk cloned or freed at the
// wrong time also shows under AddressSanitizer.
TEST_F(CowChunkedVectorTest, ACopyIsReadAndDestroyedOnAnotherThreadWhileTheOriginalIsWritten) {
  constexpr std::size_t kSize = 64 * kChunk;
  const auto text = [](int generation, std::size_t i) {
    return std::string(32, static_cast<char>('a' + generation)) + std::to_string(i);
  };
  Vector<std::string> original;
  original.Resize(kSize);
  for (std::size_t i = 0; i < kSize; ++i) original.Mutable(i) = text(0, i);
  const auto write_all = [&](int generation) {
    for (std::size_t i = 0; i < kSize; ++i) original.Mutable(i) = text(generation, i);
  };
  const auto wait_for = [](const std::atomic<bool>& flag) {
    while (!flag.load(std::memory_order_relaxed)) std::this_thread::yield();
  };

  int mismatches = 0;
  for (int generation = 1; generation <= 8; ++generation) {
    const bool reader_frees = generation % 2 == 1;
    std::atomic<bool> reading{false};
    std::atomic<bool> written{false};
    std::atomic<bool> released{false};
    int reader_mismatches = 0;  // read after join()
    std::thread reader([&, copy = original]() mutable {
      reading.store(true, std::memory_order_relaxed);
      for (std::size_t i = 0; i < copy.size(); ++i) {
        if (copy[i] != text(generation - 1, i)) ++reader_mismatches;
      }
      if (reader_frees) wait_for(written);
      Vector<std::string> destroyed = std::move(copy);
      destroyed.Clear();  // here, on this thread
      released.store(true, std::memory_order_relaxed);
    });
    wait_for(reading);
    if (!reader_frees) wait_for(released);
    write_all(generation);
    written.store(true, std::memory_order_relaxed);
    reader.join();
    mismatches += reader_mismatches;
    // Growth and shrinkage with no copy around.
    original.PushBack("extra");
    original.Resize(kSize);
  }
  EXPECT_EQ(mismatches, 0);
  for (std::size_t i = 0; i < kSize; ++i) ASSERT_EQ(original[i], text(8, i)) << i;
}

}  // namespace
}  // namespace riffle::features
