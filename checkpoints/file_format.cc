#include "checkpoints/file_format.h"

#include <xxhash.h>

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace riffle::checkpoints {
namespace {

// Field offsets of the v1 header (see the table in file_format.h).
constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kFlagsOffset = 12;
constexpr std::size_t kLengthOffset = 16;
constexpr std::size_t kChecksumOffset = 24;

// Explicit byte-by-byte little-endian coding: the file is the same on every host, and no
// unaligned or type-punned access is needed.
template <typename T>
void PutLittleEndian(T value, char* out) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
}

template <typename T>
T GetLittleEndian(std::string_view bytes, std::size_t offset) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

// Debian's Abseil has its own string_view, so escaping goes through std::string.
std::string Escaped(std::string_view bytes) { return absl::CHexEscape(std::string(bytes)); }

}  // namespace

const FormatVersionInfo* FindFormatVersion(std::uint32_t version) {
  for (const FormatVersionInfo& info : kKnownFormats) {
    if (info.version == version) return &info;
  }
  return nullptr;
}

std::uint64_t PayloadChecksum(std::string_view payload) {
  return XXH3_64bits(payload.data(), payload.size());
}

std::string EncodeCheckpointHeader(std::string_view payload) {
  std::string header(kHeaderSize, '\0');
  std::copy(kMagic.begin(), kMagic.end(), header.begin());
  PutLittleEndian<std::uint32_t>(kCurrentFormat, &header[kVersionOffset]);
  PutLittleEndian<std::uint32_t>(0, &header[kFlagsOffset]);
  PutLittleEndian<std::uint64_t>(payload.size(), &header[kLengthOffset]);
  PutLittleEndian<std::uint64_t>(PayloadChecksum(payload), &header[kChecksumOffset]);
  return header;
}

std::string EncodeCheckpointFile(std::string_view payload) {
  std::string file = EncodeCheckpointHeader(payload);
  file.append(payload);
  return file;
}

absl::StatusOr<CheckpointHeader> ReadCheckpointHeader(std::string_view bytes,
                                                      std::string_view name) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: empty file (0 bytes), not a Riffle checkpoint", name));
  }
  // Compare the magic over the bytes present, so a file cut inside the magic is reported as a
  // truncated checkpoint and a short foreign file as foreign.
  const std::size_t magic_present = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, magic_present) != kMagic.substr(0, magic_present)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a Riffle checkpoint (starts with \"%s\", expected \"%s\")", name,
                        Escaped(bytes.substr(0, kMagic.size())), std::string(kMagic)));
  }
  if (bytes.size() < kHeaderSize) {
    return absl::DataLossError(
        absl::StrFormat("%s: truncated: file has %d bytes, shorter than the %d-byte header", name,
                        bytes.size(), kHeaderSize));
  }

  CheckpointHeader header;
  header.format_version = GetLittleEndian<std::uint32_t>(bytes, kVersionOffset);
  if (FindFormatVersion(header.format_version) == nullptr) {
    if (header.format_version > kCurrentFormat) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: checkpoint format version %d was written by a newer Riffle (this build reads "
          "versions up to %d), or the header is damaged",
          name, header.format_version, kCurrentFormat));
    }
    // Below the current version but not in the table: never written by any Riffle.
    return absl::DataLossError(absl::StrFormat(
        "%s: unknown checkpoint format version %d (corrupt header)", name, header.format_version));
  }
  // Every known version so far shares the v1 header. A version with a different header
  // branches here on header.format_version.
  header.flags = GetLittleEndian<std::uint32_t>(bytes, kFlagsOffset);
  if (header.flags != 0) {
    return absl::DataLossError(absl::StrFormat(
        "%s: reserved header field is 0x%08x, must be 0 (corrupt header)", name, header.flags));
  }
  header.payload_length = GetLittleEndian<std::uint64_t>(bytes, kLengthOffset);
  header.payload_checksum = GetLittleEndian<std::uint64_t>(bytes, kChecksumOffset);
  return header;
}

absl::StatusOr<std::string_view> DecodeCheckpointFile(std::string_view bytes,
                                                      std::string_view name) {
  absl::StatusOr<CheckpointHeader> header = ReadCheckpointHeader(bytes, name);
  if (!header.ok()) return header.status();

  // Compared as 64-bit numbers: nothing is sized, allocated or offset by the claimed length.
  const std::uint64_t present = bytes.size() - kHeaderSize;
  if (header->payload_length > present) {
    return absl::DataLossError(absl::StrFormat(
        "%s: truncated: header says %d payload bytes, file has %d (after the %d-byte header)", name,
        header->payload_length, present, kHeaderSize));
  }
  if (header->payload_length < present) {
    return absl::DataLossError(absl::StrFormat(
        "%s: %d trailing bytes: header says %d payload bytes, file has %d (after the %d-byte "
        "header)",
        name, present - header->payload_length, header->payload_length, present, kHeaderSize));
  }

  const std::string_view payload = bytes.substr(kHeaderSize);
  const std::uint64_t actual = PayloadChecksum(payload);
  if (actual != header->payload_checksum) {
    return absl::DataLossError(absl::StrFormat(
        "%s: checksum mismatch: header says XXH3-64 0x%016x, payload hashes to 0x%016x", name,
        header->payload_checksum, actual));
  }
  return payload;
}

}  // namespace riffle::checkpoints
