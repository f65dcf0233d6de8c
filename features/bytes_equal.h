#ifndef RIFFLE_FEATURES_BYTES_EQUAL_H_
#define RIFFLE_FEATURES_BYTES_EQUAL_H_

#include <cstdint>
#include <cstring>
#include <string_view>

namespace riffle::features {

// a == b, inline for the short strings feature names are. std::string_view's == calls the C
// library's memcmp through the PLT whatever the size; for up to 16 bytes this compares two
// pairs of overlapping words instead (the first and the last 8, 4 or 2 bytes), never reading
// outside either string.
inline bool BytesEqual(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  const auto same = [p, q, n]<class Word>(Word) {
    Word p0, p1, q0, q1;
    std::memcpy(&p0, p, sizeof(Word));
    std::memcpy(&q0, q, sizeof(Word));
    std::memcpy(&p1, p + n - sizeof(Word), sizeof(Word));
    std::memcpy(&q1, q + n - sizeof(Word), sizeof(Word));
    return ((p0 ^ q0) | (p1 ^ q1)) == 0;
  };
  if (n > 16) return std::memcmp(p, q, n) == 0;
  if (n >= 8) return same(std::uint64_t{});
  if (n >= 4) return same(std::uint32_t{});
  if (n >= 2) return same(std::uint16_t{});
  return n == 0 || *p == *q;
}

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_BYTES_EQUAL_H_
