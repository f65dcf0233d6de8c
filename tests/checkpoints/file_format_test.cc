#include "checkpoints/file_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/checkpoints/checkpoint_testing.h"

namespace riffle::checkpoints {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kName = "some/dir/model.riffle";

// A valid file for `payload`, built field by field as the layout table in file_format.h says,
// independently of EncodeCheckpointFile.
std::string HandMadeFile(std::string_view payload, std::uint32_t version, std::uint32_t flags,
                         std::uint64_t length, std::uint64_t checksum) {
  std::string file = "RIFFLECK";
  for (int i = 0; i < 4; ++i) file += static_cast<char>((version >> (8 * i)) & 0xFF);
  for (int i = 0; i < 4; ++i) file += static_cast<char>((flags >> (8 * i)) & 0xFF);
  for (int i = 0; i < 8; ++i) file += static_cast<char>((length >> (8 * i)) & 0xFF);
  for (int i = 0; i < 8; ++i) file += static_cast<char>((checksum >> (8 * i)) & 0xFF);
  file += payload;
  return file;
}

std::string HandMadeFile(std::string_view payload, std::uint32_t version = kFormatV1) {
  return HandMadeFile(payload, version, 0, payload.size(), PayloadChecksum(payload));
}

// Deterministic pseudo-random bytes.
std::string RandomBytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(byte(rng));
  return bytes;
}

TEST(PayloadChecksumTest, IsXxh3With64BitsAndSeedZero) {
  // Reference values of XXH3_64bits (xxHash 0.8, seed 0); the first is in xxHash's own tests.
  EXPECT_EQ(PayloadChecksum(""), 0x2D06800538D394C2u);
  EXPECT_EQ(PayloadChecksum("abc"), 0x78AF5F94892F3950u);
}

TEST(EncodeCheckpointFileTest, LayoutIsTheDocumentedLittleEndianHeader) {
  // "abc": magic, version 1, flags 0, length 3, XXH3 0x78AF5F94892F3950 stored low byte first.
  const std::string expected(
      "RIFFLECK"
      "\x01\x00\x00\x00"
      "\x00\x00\x00\x00"
      "\x03\x00\x00\x00\x00\x00\x00\x00"
      "\x50\x39\x2F\x89\x94\x5F\xAF\x78"
      "abc",
      35);
  EXPECT_EQ(EncodeCheckpointFile("abc"), expected);
  EXPECT_EQ(EncodeCheckpointHeader("abc"), expected.substr(0, kHeaderSize));
}

TEST(DecodeCheckpointFileTest, RoundTripsPayloads) {
  const std::vector<std::string> payloads = {"", "x", "hello, checkpoint", std::string(1000, '\0'),
                                             RandomBytes(1 << 20, 7)};
  for (const std::string& payload : payloads) {
    const std::string file = EncodeCheckpointFile(payload);
    ASSERT_EQ(file.size(), kHeaderSize + payload.size());
    absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, payload);
    // A view into the input, not a copy.
    EXPECT_EQ(decoded->data(), file.data() + kHeaderSize);
  }
}

TEST(DecodeCheckpointFileTest, AcceptsAnIndependentlyBuiltFile) {
  const std::string file = HandMadeFile("abc");
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, "abc");
}

TEST(DecodeCheckpointFileTest, TruncatedAtEveryOffsetFailsClearly) {
  const std::string payload = "a small payload of 28 bytes.";
  ASSERT_EQ(payload.size(), 28u);
  const std::string file = EncodeCheckpointFile(payload);
  for (std::size_t size = 0; size < file.size(); ++size) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::string_view> decoded =
        DecodeCheckpointFile(std::string_view(file).substr(0, size), kName);
    ASSERT_FALSE(decoded.ok());
    const absl::Status& status = decoded.status();
    EXPECT_THAT(std::string(status.message()), StartsWith(std::string(kName) + ": "));
    if (size == 0) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(status.message(), HasSubstr("empty file"));
    } else if (size < kHeaderSize) {
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(status.message(),
                  HasSubstr(absl::StrFormat("truncated: file has %d bytes, shorter than the "
                                            "32-byte header",
                                            size)));
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(status.message(),
                  HasSubstr(absl::StrFormat("truncated: header says 28 payload bytes, file has %d",
                                            size - kHeaderSize)));
    }
  }
}

TEST(DecodeCheckpointFileTest, EverySingleBitFlipIsDetected) {
  const std::string file = EncodeCheckpointFile("twenty payload bytes");
  for (std::size_t bit = 0; bit < 8 * file.size(); ++bit) {
    SCOPED_TRACE(bit);
    std::string damaged = file;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(damaged, kName);
    ASSERT_FALSE(decoded.ok());
    const std::size_t byte = bit / 8;
    const absl::Status& status = decoded.status();
    if (byte < 8) {  // magic
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(status.message(), HasSubstr("not a Riffle checkpoint"));
    } else if (byte < 12) {  // version: 1 becomes 0 or 3, 5, 9, ... 2^31 + 1
      EXPECT_THAT(status.code(),
                  AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kFailedPrecondition));
      EXPECT_THAT(status.message(), HasSubstr("format version"));
    } else if (byte < 16) {
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(status.message(), HasSubstr("reserved header field"));
    } else if (byte < 24) {
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(status.message(), AnyOf(HasSubstr("truncated"), HasSubstr("trailing bytes")));
    } else {  // checksum or payload
      EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
      EXPECT_THAT(status.message(), HasSubstr("checksum mismatch"));
    }
  }
}

TEST(DecodeCheckpointFileTest, WrongMagicIsNotACheckpoint) {
  std::string file = EncodeCheckpointFile("payload");
  file[0] = 'r';
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("not a Riffle checkpoint (starts with \"rIFFLECK\", expected "
                        "\"RIFFLECK\")"));

  // Short foreign files too, with unprintable bytes escaped.
  decoded = DecodeCheckpointFile(std::string_view("\x89PNG", 4), kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("starts with \"\\x89PNG\""));
}

TEST(DecodeCheckpointFileTest, ZeroLengthFileIsInvalidArgument) {
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile("", kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoded.status().message(),
            "some/dir/model.riffle: empty file (0 bytes), not a Riffle checkpoint");
}

TEST(DecodeCheckpointFileTest, NewerVersionIsFailedPrecondition) {
  absl::StatusOr<std::string_view> decoded =
      DecodeCheckpointFile(HandMadeFile("payload", kCurrentFormat + 1), kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr(absl::StrFormat("format version %d was written by a newer Riffle",
                                        kCurrentFormat + 1)));
  EXPECT_THAT(std::string(decoded.status().message()), StartsWith(std::string(kName)));
}

TEST(DecodeCheckpointFileTest, UnknownOlderVersionIsDataLoss) {
  // Version 0 was never written: a corrupt header, not an old Riffle.
  absl::StatusOr<std::string_view> decoded =
      DecodeCheckpointFile(HandMadeFile("payload", 0), kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr("unknown checkpoint format version 0"));
}

TEST(KnownFormatsTest, TableIsAscendingAndEndsWithTheCurrentFormat) {
  // Only v1 exists so far; when v2 arrives, tests/fixtures/checkpoints/v1_*.riffle prove that
  // the older version is still accepted (FixtureTest).
  ASSERT_GT(std::size(kKnownFormats), 0u);
  EXPECT_EQ(std::end(kKnownFormats)[-1].version, kCurrentFormat);
  for (std::size_t i = 1; i < std::size(kKnownFormats); ++i) {
    EXPECT_LT(kKnownFormats[i - 1].version, kKnownFormats[i].version);
  }
  for (const FormatVersionInfo& info : kKnownFormats) {
    ASSERT_EQ(FindFormatVersion(info.version), &info);
    EXPECT_NE(std::string_view(info.summary), "");
  }
  EXPECT_EQ(FindFormatVersion(0), nullptr);
  EXPECT_EQ(FindFormatVersion(kCurrentFormat + 1), nullptr);
}

TEST(DecodeCheckpointFileTest, NonZeroReservedFieldIsDataLoss) {
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(
      HandMadeFile("p", kFormatV1, 0x80000000u, 1, PayloadChecksum("p")), kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("reserved header field is 0x80000000, must be 0"));
}

TEST(DecodeCheckpointFileTest, HugeLengthFieldIsTruncationWithoutAllocation) {
  // 2^60 payload bytes claimed by a 40-byte file. Decode returns a view and allocates nothing
  // (it has no allocator to call); run under ASan with a low limit the test would fail on any
  // attempt to reserve the claimed size.
  const std::string file =
      HandMadeFile("8 bytes!", kFormatV1, 0, std::uint64_t{1} << 60, PayloadChecksum("8 bytes!"));
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("truncated: header says 1152921504606846976 payload bytes, file has 8"));

  // All 64 bits set: no overflow in the comparison either.
  decoded = DecodeCheckpointFile(
      HandMadeFile("", kFormatV1, 0, ~std::uint64_t{0}, PayloadChecksum("")), kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr("header says 18446744073709551615"));
}

TEST(DecodeCheckpointFileTest, TrailingBytesAreDataLoss) {
  absl::StatusOr<std::string_view> decoded =
      DecodeCheckpointFile(EncodeCheckpointFile("payload") + "xyz", kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(),
              HasSubstr("3 trailing bytes: header says 7 payload bytes, file has 10"));
}

TEST(DecodeCheckpointFileTest, ChecksumMismatchNamesBothValues) {
  const std::string file = HandMadeFile("abc", kFormatV1, 0, 3, 0x1122334455667788u);
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(file, kName);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(decoded.status().message(),
            "some/dir/model.riffle: checksum mismatch: header says XXH3-64 0x1122334455667788, "
            "payload hashes to 0x78af5f94892f3950");
}

TEST(DecodeCheckpointFileTest, RandomBytesNeverDecode) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = RandomBytes(length(rng), static_cast<std::uint32_t>(i));
    // Half the inputs get a valid magic and version, to reach the later checks.
    if (i % 2 == 1 && bytes.size() >= 12) {
      bytes.replace(0, 12, std::string("RIFFLECK\x01\x00\x00\x00", 12));
    }
    absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(bytes, kName);
    ASSERT_FALSE(decoded.ok()) << "input " << i;
    ASSERT_THAT(decoded.status().code(),
                AnyOf(absl::StatusCode::kInvalidArgument, absl::StatusCode::kDataLoss,
                      absl::StatusCode::kFailedPrecondition));
  }
}

TEST(ReadCheckpointHeaderTest, ReadsFieldsFromTheHeaderAlone) {
  const std::string file = EncodeCheckpointFile("abc");
  for (const std::string_view bytes :
       {std::string_view(file), std::string_view(file).substr(0, kHeaderSize)}) {
    absl::StatusOr<CheckpointHeader> header = ReadCheckpointHeader(bytes, kName);
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->format_version, kFormatV1);
    EXPECT_EQ(header->flags, 0u);
    EXPECT_EQ(header->payload_length, 3u);
    EXPECT_EQ(header->payload_checksum, 0x78AF5F94892F3950u);
  }
}

TEST(ReadCheckpointHeaderTest, ShowsTheHeaderOfADamagedPayload) {
  std::string file = EncodeCheckpointFile("abc");
  file.back() = 'C';
  EXPECT_FALSE(DecodeCheckpointFile(file, kName).ok());
  absl::StatusOr<CheckpointHeader> header = ReadCheckpointHeader(file, kName);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->payload_length, 3u);
}

TEST(ReadCheckpointHeaderTest, ChecksTheSameHeaderFieldsAsDecode) {
  EXPECT_EQ(ReadCheckpointHeader("", kName).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCheckpointHeader("RIFFLE", kName).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadCheckpointHeader(HandMadeFile("", 2), kName).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadCheckpointHeader(HandMadeFile("", kFormatV1, 1, 0, 0), kName).status().code(),
            absl::StatusCode::kDataLoss);
}

// The committed files of tests/fixtures/checkpoints (made by make_fixtures.py, which
// documents each): old valid files must keep loading, damaged ones must fail cleanly.
constexpr std::string_view kFixturePayload = "Riffle checkpoint fixture payload, format v1\n";

struct Fixture {
  const char* file;
  absl::StatusCode code;
  const char* message;  // a substring of the error message, or the payload if OK
};

class FixtureTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureTest, DecodesAsDocumented) {
  const Fixture& fixture = GetParam();
  const std::string path = std::string(RIFFLE_CHECKPOINT_FIXTURES_DIR) + "/" + fixture.file;
  const std::string bytes = testing::ReadBytes(path);
  absl::StatusOr<std::string_view> decoded = DecodeCheckpointFile(bytes, path);
  EXPECT_EQ(decoded.status().code(), fixture.code) << decoded.status();
  if (decoded.ok()) {
    EXPECT_EQ(*decoded, fixture.message);
  } else {
    EXPECT_THAT(std::string(decoded.status().message()), StartsWith(path + ": "));
    EXPECT_THAT(decoded.status().message(), HasSubstr(fixture.message));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Files, FixtureTest,
    ::testing::Values(
        Fixture{"v1_valid.riffle", absl::StatusCode::kOk, kFixturePayload.data()},
        Fixture{"v1_empty_payload.riffle", absl::StatusCode::kOk, ""},
        Fixture{"empty.riffle", absl::StatusCode::kInvalidArgument, "empty file"},
        Fixture{"not_a_checkpoint.riffle", absl::StatusCode::kInvalidArgument,
                "not a Riffle checkpoint"},
        Fixture{"truncated_in_magic.riffle", absl::StatusCode::kDataLoss,
                "file has 5 bytes, shorter than the 32-byte header"},
        Fixture{"truncated_header.riffle", absl::StatusCode::kDataLoss,
                "file has 20 bytes, shorter than the 32-byte header"},
        Fixture{"truncated_payload.riffle", absl::StatusCode::kDataLoss,
                "truncated: header says 45 payload bytes, file has 35"},
        Fixture{"trailing_bytes.riffle", absl::StatusCode::kDataLoss, "4 trailing bytes"},
        Fixture{"payload_bit_flip.riffle", absl::StatusCode::kDataLoss, "checksum mismatch"},
        Fixture{"checksum_bit_flip.riffle", absl::StatusCode::kDataLoss, "checksum mismatch"},
        Fixture{"version_zero.riffle", absl::StatusCode::kDataLoss,
                "unknown checkpoint format version 0"},
        Fixture{"reserved_flags_set.riffle", absl::StatusCode::kDataLoss,
                "reserved header field is 0x00000100"},
        Fixture{"huge_length.riffle", absl::StatusCode::kDataLoss,
                "header says 1152921504606846976 payload bytes, file has 45"},
        Fixture{"newer_version.riffle", absl::StatusCode::kFailedPrecondition,
                "format version 1000 was written by a newer Riffle"}),
    [](const ::testing::TestParamInfo<Fixture>& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.'));
      return name;
    });

}  // namespace
}  // namespace riffle::checkpoints
