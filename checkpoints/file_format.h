#ifndef RIFFLE_CHECKPOINTS_FILE_FORMAT_H_
#define RIFFLE_CHECKPOINTS_FILE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/attributes.h"
#include "absl/status/statusor.h"

// The checkpoint file format: a fixed 32-byte header that frames and checksums an opaque
// payload (the model state, see model_checkpoint.h). This layer knows nothing of what the
// payload holds; it guarantees that a payload handed to the parser is exactly the bytes that
// were written, or reports why not.
//
// Layout of format version 1, all integers little-endian:
//
//   offset  size  field
//        0     8  magic "RIFFLECK"
//        8     4  format version (kFormatV1 = 1)
//       12     4  flags, reserved: must be 0
//       16     8  payload length in bytes
//       24     8  XXH3-64 (seed 0) of the payload
//       32     n  payload
//
// The first 12 bytes (magic and version) are the same in every format version, present and
// future, so any build can tell a checkpoint from a foreign file and say which version wrote
// it. A new version may change everything after them.
//
// Decisions:
//   * The length must match the file exactly: a short file is truncated, a long one has
//     trailing garbage; both are DataLoss. There is no "read what is there".
//   * The checksum covers the payload only. Every header field is already checked on its own
//     (magic, version, flags == 0, length == file size - 32), so a header checksum would catch
//     nothing more, and a payload-only XXH3 can be checked with `xxhsum -H3` on the payload.
//   * The checksum is verified before a single payload byte is returned, so the cereal
//     parser never sees corrupted bytes. (A malicious payload with a valid checksum is still
//     possible; the parser bounds its sizes, and the fuzzer exercises it directly.)
//   * Decoding returns a view into the caller's bytes and allocates nothing but an error
//     message, whatever the header claims (a length field of 2^60 is just a truncation error).
//
// Errors: every message starts with the file name given by the caller, followed by the
// reason. Codes:
//   InvalidArgument     empty file, or wrong magic: this is not a Riffle checkpoint at all.
//   DataLoss            a checkpoint that is damaged: truncated (header or payload), trailing
//                       bytes, non-zero reserved field, unknown older version, checksum
//                       mismatch.
//   FailedPrecondition  a version newer than this build knows: written by a newer Riffle
//                       (or the version field is damaged; the two cannot be told apart).

namespace riffle::checkpoints {

inline constexpr std::size_t kHeaderSize = 32;
inline constexpr std::string_view kMagic = "RIFFLECK";

// File format versions. Add a constant, a row in kKnownFormats and a decode path for each
// change of the layout; never remove one (old checkpoints must keep loading, and
// tests/fixtures/checkpoints keeps a file of every version to prove it).
inline constexpr std::uint32_t kFormatV1 = 1;
inline constexpr std::uint32_t kCurrentFormat = kFormatV1;

struct FormatVersionInfo {
  std::uint32_t version;
  const char* summary;
};

// Every version this build reads, oldest first; the last is kCurrentFormat, the one written.
inline constexpr FormatVersionInfo kKnownFormats[] = {
    {kFormatV1, "32-byte header, XXH3-64 of the payload"},
};

// The row of kKnownFormats for `version`, or nullptr.
const FormatVersionInfo* FindFormatVersion(std::uint32_t version);

// The decoded header of a checkpoint file.
struct CheckpointHeader {
  std::uint32_t format_version = 0;
  std::uint32_t flags = 0;
  std::uint64_t payload_length = 0;
  std::uint64_t payload_checksum = 0;  // XXH3-64 of the payload, as stored
};

// XXH3-64 (seed 0) of `payload`: the checksum stored in the header.
std::uint64_t PayloadChecksum(std::string_view payload);

// Header + payload in the current format. Cannot fail.
std::string EncodeCheckpointFile(std::string_view payload);

// Just the kHeaderSize header bytes for `payload`, in the current format: a writer can then
// write header and payload one after the other instead of copying a large payload into one
// buffer (EncodeCheckpointFile(p) == EncodeCheckpointHeader(p) + p).
std::string EncodeCheckpointHeader(std::string_view payload);

// Checks a whole file's bytes and returns the payload: a view into `bytes` (no copy), valid as
// long as the memory `bytes` views. Checks, in order: not empty, magic, complete header, known
// version, reserved flags == 0, payload length == bytes.size() - kHeaderSize, checksum.
// `name` (usually the path) is used in error messages only.
absl::StatusOr<std::string_view> DecodeCheckpointFile(
    std::string_view bytes ABSL_ATTRIBUTE_LIFETIME_BOUND, std::string_view name);

// Parses and checks the header alone (magic, version, reserved flags) from the first
// kHeaderSize bytes of `bytes`, which may be the whole file or just its start; it does not
// check the length against the file nor the checksum. For `riffle ckpt inspect`, which shows
// the header of a file even when the payload is damaged. Errors as DecodeCheckpointFile.
absl::StatusOr<CheckpointHeader> ReadCheckpointHeader(std::string_view bytes,
                                                      std::string_view name);

}  // namespace riffle::checkpoints

#endif  // RIFFLE_CHECKPOINTS_FILE_FORMAT_H_
