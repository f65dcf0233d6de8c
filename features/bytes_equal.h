#ifndef RIFFLE_FEATURES_BYTES_EQUAL_H_
#define RIFFLE_FEATURES_BYTES_EQUAL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace riffle::features {

namespace bytes_internal {

// Whether the first n <= 16 bytes at p and q are equal: two pairs of overlapping words (the
// first and the last 8, 4 or 2 bytes), never reading outside [p, p + n) or [q, q + n).
inline bool SameShortBytes(const char* p, const char* q, std::size_t n) {
  const auto same = [p, q, n]<class Word>(Word) {
    Word p0, p1, q0, q1;
    std::memcpy(&p0, p, sizeof(Word));
    std::memcpy(&q0, q, sizeof(Word));
    std::memcpy(&p1, p + n - sizeof(Word), sizeof(Word));
    std::memcpy(&q1, q + n - sizeof(Word), sizeof(Word));
    return ((p0 ^ q0) | (p1 ^ q1)) == 0;
  };
  if (n >= 8) return same(std::uint64_t{});
  if (n >= 4) return same(std::uint32_t{});
  if (n >= 2) return same(std::uint16_t{});
  return n == 0 || *p == *q;
}

// Whether the first n bytes at p and q are equal: SameShortBytes up to 16, memcmp beyond.
inline bool SameBytes(const char* p, const char* q, std::size_t n) {
  return n > 16 ? std::memcmp(p, q, n) == 0 : SameShortBytes(p, q, n);
}

}  // namespace bytes_internal

// a == b, inline for the short strings feature names are. std::string_view's == calls the C
// library's memcmp through the PLT whatever the size; for up to 16 bytes this compares words
// instead (bytes_internal::SameBytes).
inline bool BytesEqual(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  return bytes_internal::SameBytes(a.data(), b.data(), n);
}

// BytesEqual without a branch on whether the lengths are equal: it compares the first
// min(a.size(), b.size()) bytes, branching only on which of the ranges 0-1, 2-3, 4-7, 8-16 or
// more that length is in, and combines the result with the lengths' equality. For comparing
// strings whose lengths differ unpredictably but stay in one range, such as a row's label with
// "yes" and "no" (a mispredicted branch costs more than the comparison).
inline bool BytesEqualNoLengthBranch(std::string_view a, std::string_view b) {
  const bool same = bytes_internal::SameBytes(a.data(), b.data(), std::min(a.size(), b.size()));
  return same & (a.size() == b.size());
}

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_BYTES_EQUAL_H_
