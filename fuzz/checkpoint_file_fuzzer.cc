// libFuzzer target: arbitrary bytes as a checkpoint file and as a model payload.
//
//   scripts/fuzz.sh [seconds]      builds it (clang, ASan, UBSan) and runs it
//
// Properties checked on every input (a violation aborts, and libFuzzer saves the input):
//   * DecodeCheckpointFile and ParseModelState never crash, read out of bounds, hit undefined
//     behaviour or leak (ASan, UBSan, LeakSanitizer), and allocate nothing big: the runner sets
//     -malloc_limit_mb, so one allocation far beyond the input size is reported as a bug.
//   * DecodeCheckpointFile accepts only the canonical encoding of what it returns:
//     decode(bytes) == payload implies EncodeCheckpointFile(payload) == bytes; and it accepts
//     exactly when ReadCheckpointHeader does and the header's length and checksum match.
//   * Every error names the file.
//   * Any bytes survive an encode/decode round trip as a payload.
//
// ParseModelState is fed the raw input as well as any decoded payload: the checksum only
// stops accidental corruption, so the payload parser must be safe on its own (a crafted file,
// or a bug on the writing side, comes with a valid checksum).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/file_format.h"
#include "checkpoints/model_checkpoint.h"
#include "fuzz/fuzz_check.h"

namespace {

using riffle::checkpoints::CheckpointHeader;
using riffle::checkpoints::DecodeCheckpointFile;
using riffle::checkpoints::EncodeCheckpointFile;
using riffle::checkpoints::PayloadChecksum;
using riffle::checkpoints::ReadCheckpointHeader;

constexpr std::string_view kName = "fuzz-input.riffle";

void CheckFileDecoding(std::string_view bytes) {
  const absl::StatusOr<std::string_view> payload = DecodeCheckpointFile(bytes, kName);
  const absl::StatusOr<CheckpointHeader> header = ReadCheckpointHeader(bytes, kName);
  if (payload.ok()) {
    FUZZ_CHECK(header.ok());
    FUZZ_CHECK(header->payload_length == payload->size());
    FUZZ_CHECK(header->payload_checksum == PayloadChecksum(*payload));
    FUZZ_CHECK(EncodeCheckpointFile(*payload) == bytes);
  } else {
    FUZZ_CHECK(std::string(payload.status().message()).starts_with(std::string(kName) + ": "));
    if (!header.ok()) FUZZ_CHECK(header.status() == payload.status());
  }
}

void CheckRoundTrip(std::string_view payload) {
  const std::string file = EncodeCheckpointFile(payload);
  const absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
  FUZZ_CHECK(decoded.ok());
  FUZZ_CHECK(*decoded == payload);
}

// --- The model payload parser (checkpoints/model_checkpoint.h, the lead's code) ---------------
// Only "never crashes, never over-allocates" is checked: which payloads are valid is the
// parser's business. Returns OK for a payload it accepts.
absl::Status ParsePayload(std::string_view payload) {
  riffle::checkpoints::CheckpointMetadata metadata;
  return riffle::checkpoints::ParseModelState(payload, &metadata).status();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckFileDecoding(bytes);
  CheckRoundTrip(bytes);
  (void)ParsePayload(bytes);
  if (const absl::StatusOr<std::string_view> payload = DecodeCheckpointFile(bytes, kName);
      payload.ok()) {
    (void)ParsePayload(*payload);
  }
  return 0;
}
