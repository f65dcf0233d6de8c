#ifndef RIFFLE_LEARNERS_SERIALIZATION_H_
#define RIFFLE_LEARNERS_SERIALIZATION_H_

#include <Eigen/Core>
#include <algorithm>
#include <cereal/cereal.hpp>
#include <cereal/types/common.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

// cereal helpers shared by every learner. The one rule they exist for: a size read from an
// archive is never trusted with an allocation. Elements are read in chunks, so a corrupted
// length makes the load fail at the end of the real data (cereal throws on a short read) having
// allocated at most one chunk more than the data actually present.

namespace riffle::learners {

inline constexpr std::size_t kLoadChunkElements = 1 << 16;

// Booleans travel as one byte that must be 0 or 1: loading a byte into a bool directly (as
// cereal does) is undefined behaviour for any other value, which a damaged file can hold.
template <class Archive>
void SaveBool(Archive& archive, bool value) {
  archive(static_cast<std::uint8_t>(value ? 1 : 0));
}

template <class Archive>
bool LoadBool(Archive& archive) {
  std::uint8_t byte = 0;
  archive(byte);
  if (byte > 1) throw cereal::Exception("invalid boolean in archive");
  return byte == 1;
}

// std::optional<T>: a SaveBool presence flag, then the value.
template <class Archive, typename T>
void SaveOptional(Archive& archive, const std::optional<T>& value) {
  SaveBool(archive, value.has_value());
  if (value.has_value()) archive(*value);
}

template <class Archive, typename T>
void LoadOptional(Archive& archive, std::optional<T>* value) {
  value->reset();
  if (LoadBool(archive)) {
    T loaded{};
    archive(loaded);
    *value = std::move(loaded);
  }
}

// Strings: length, then bytes; loaded in chunks like vectors.
template <class Archive>
void SaveString(Archive& archive, const std::string& s) {
  archive(static_cast<std::uint64_t>(s.size()));
  if (!s.empty()) archive(cereal::binary_data(s.data(), s.size()));
}

template <class Archive>
void LoadString(Archive& archive, std::string* s) {
  std::uint64_t size = 0;
  archive(size);
  s->clear();
  while (s->size() < size) {
    const std::size_t chunk =
        static_cast<std::size_t>(std::min<std::uint64_t>(size - s->size(), kLoadChunkElements));
    const std::size_t start = s->size();
    s->resize(start + chunk);
    archive(cereal::binary_data(s->data() + start, chunk));
  }
}

// Writes the element count, then the elements.
template <class Archive, typename T>
void SaveElements(Archive& archive, const T* data, std::size_t size) {
  if constexpr (std::is_arithmetic_v<T>) {
    // binary_data keeps the portable archive's byte-order handling and is ~20x faster than
    // one archive call per element for million-weight models.
    if (size > 0) archive(cereal::binary_data(data, size * sizeof(T)));
  } else if constexpr (std::is_same_v<T, std::string>) {
    for (std::size_t k = 0; k < size; ++k) SaveString(archive, data[k]);
  } else {
    for (std::size_t k = 0; k < size; ++k) archive(data[k]);
  }
}

template <class Archive, typename T>
void SaveVector(Archive& archive, const std::vector<T>& values) {
  archive(static_cast<std::uint64_t>(values.size()));
  SaveElements(archive, values.data(), values.size());
}

// Reads exactly `size` elements into *values, chunk by chunk.
template <class Archive, typename T>
void LoadVectorFromCount(Archive& archive, std::uint64_t size, std::vector<T>* values) {
  values->clear();
  while (values->size() < size) {
    const std::size_t chunk = static_cast<std::size_t>(
        std::min<std::uint64_t>(size - values->size(), kLoadChunkElements));
    const std::size_t start = values->size();
    values->resize(start + chunk);
    if constexpr (std::is_arithmetic_v<T>) {
      archive(cereal::binary_data(values->data() + start, chunk * sizeof(T)));
    } else if constexpr (std::is_same_v<T, std::string>) {
      for (std::size_t k = start; k < start + chunk; ++k) LoadString(archive, &(*values)[k]);
    } else {
      for (std::size_t k = start; k < start + chunk; ++k) archive((*values)[k]);
    }
  }
}

template <class Archive, typename T>
void LoadVector(Archive& archive, std::vector<T>* values) {
  std::uint64_t size = 0;
  archive(size);
  LoadVectorFromCount(archive, size, values);
}

// Dense Eigen matrices and vectors: rows, cols, then the coefficients in storage order.
template <class Archive, typename Derived>
void SaveDense(Archive& archive, const Eigen::PlainObjectBase<Derived>& m) {
  archive(static_cast<std::uint64_t>(m.rows()), static_cast<std::uint64_t>(m.cols()));
  SaveElements(archive, m.data(), static_cast<std::size_t>(m.size()));
}

template <class Archive, typename Derived>
void LoadDense(Archive& archive, Eigen::PlainObjectBase<Derived>* m) {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  archive(rows, cols);
  // Each dimension and their product must fit comfortably in Eigen::Index; the product is
  // then bounded again by the data actually present (chunked load below).
  constexpr std::uint64_t kMaxDimension = std::uint64_t{1} << 40;
  if (rows > kMaxDimension || cols > kMaxDimension || (cols != 0 && rows > kMaxDimension / cols) ||
      (Derived::ColsAtCompileTime == 1 && cols != 1)) {
    throw cereal::Exception("dense matrix: implausible shape");
  }
  std::vector<typename Derived::Scalar> coefficients;
  LoadVectorFromCount(archive, rows * cols, &coefficients);
  m->resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  std::copy(coefficients.begin(), coefficients.end(), m->data());
}

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_SERIALIZATION_H_
