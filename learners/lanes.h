#ifndef RIFFLE_LEARNERS_LANES_H_
#define RIFFLE_LEARNERS_LANES_H_

#include <cstddef>
#include <cstdint>

#include "learners/feature_vector.h"

namespace riffle::learners {

// Two doubles operated on together (a GCC vector extension): one SSE2 instruction per
// operation in any x86-64 build. Each lane is rounded exactly as the scalar operation would
// round it, so a loop over a feature vector's entries that works on several at a time gives the
// bits of the scalar loop as long as its lanes are independent (e.g. partial sums, or updates
// of distinct weights). (Vectors of four are two SSE2 registers in a baseline build, and GCC
// keeps them on the stack between operations, which costs more than it saves; code that wants
// them compiles an AVX2 build too, as features/standard_scaler.cc does.)
//
// Locals only: passed or returned by value across a function boundary, a vector type's ABI may
// depend on the build (GCC warns).
using DoublePair = double __attribute__((vector_size(2 * sizeof(double))));

// True if the four indices are j[0], j[0] + 1, j[0] + 2 and j[0] + 3 (compared in 64 bits: no
// wrap around), as in every block of a dense row. The per-feature state of such a block (a
// model's weights, a scaler's statistics) lies side by side and is loaded and stored as one
// vector, instead of being gathered from four scalars and stored lane by lane, which took most
// of such a loop's instructions.
inline bool ConsecutiveIndices(const FeatureIndex* j) {
  const std::uint64_t first = j[0];
  return j[1] == first + 1 && j[2] == first + 2 && j[3] == first + 3;
}

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_LANES_H_
