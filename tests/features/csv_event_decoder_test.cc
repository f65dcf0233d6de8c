#include "features/csv_event_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "features/csv_reader.h"
#include "features/json_decoder.h"
#include "tests/features/event_testing.h"

namespace riffle::features {
namespace {

using ::riffle::features::testing::Find;
using ::riffle::features::testing::Names;

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The payment header most tests use: id, key, time and label among features.
constexpr std::string_view kHeader[] = {"id", "amount", "key", "country", "time", "zip", "label"};

CsvEventDecoder MakeDecoder(std::span<const std::string_view> header = kHeader,
                            CsvEventDecoderOptions options = {}) {
  absl::StatusOr<CsvEventDecoder> decoder = CsvEventDecoder::Create(header, std::move(options));
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  return std::move(*decoder);
}

absl::Status CreateError(std::vector<std::string_view> header,
                         CsvEventDecoderOptions options = {}) {
  return CsvEventDecoder::Create(header, std::move(options)).status();
}

DecodeStatus DecodeLine(CsvEventDecoder& decoder, std::string_view line, DecodedEvent* event) {
  return decoder.DecodeMessage(line, event);
}

DecodeError CodeOf(CsvEventDecoder& decoder, std::string_view line) {
  DecodedEvent event;
  return decoder.DecodeMessage(line, &event).code();
}

// Every record of `contents` as CsvReader reads it (through a pipe; contents below 64 KiB).
std::vector<std::vector<std::string>> ReadWithCsvReader(std::string_view contents) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  EXPECT_EQ(::write(fds[1], contents.data(), contents.size()),
            static_cast<ssize_t>(contents.size()));
  ::close(fds[1]);
  absl::StatusOr<std::unique_ptr<CsvReader>> reader =
      CsvReader::FromFd(fds[0], /*owns_fd=*/true, "pipe");
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<std::vector<std::string>> records;
  std::vector<std::string_view> fields;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&fields);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) return records;
    records.emplace_back(fields.begin(), fields.end());
  }
}

TEST(CsvEventDecoderTest, NewCodesAreAppendedWithStableNames) {
  EXPECT_EQ(static_cast<int>(DecodeError::kFieldCount), 16);
  EXPECT_EQ(static_cast<int>(DecodeError::kInvalidCsv), 17);
  EXPECT_EQ(DecodeErrorName(DecodeError::kFieldCount), "FIELD_COUNT");
  EXPECT_EQ(DecodeErrorName(DecodeError::kInvalidCsv), "INVALID_CSV");
}

TEST(CsvEventDecoderTest, DecodesRolesAndFeatureTypes) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s =
      DecodeLine(decoder, "tx-1,12.5,card-9,FR,2024-05-01T12:00:00Z,75001,fraud\n", &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(event.id(), "tx-1");
  EXPECT_EQ(event.key(), "card-9");
  // 2024-05-01 is day 19844 since 1970-01-01; 19844 * 86400 + 12 * 3600 = 1714564800 s.
  EXPECT_EQ(event.event_time_micros(), 1714564800LL * 1000000);
  EXPECT_EQ(event.label(), "fraud");
  // Features in column order; role columns are not features.
  EXPECT_EQ(Names(event), (std::vector<std::string>{"amount", "country", "zip"}));
  EXPECT_EQ(Find(event, "amount")->value.kind, FeatureValue::Kind::kNumber);
  EXPECT_EQ(Find(event, "amount")->value.number, 12.5);
  EXPECT_EQ(Find(event, "country")->value.kind, FeatureValue::Kind::kText);
  EXPECT_EQ(Find(event, "country")->value.text, "FR");
  EXPECT_EQ(Find(event, "zip")->value.kind, FeatureValue::Kind::kNumber);
  EXPECT_EQ(Find(event, "zip")->value.number, 75001.0);
}

TEST(CsvEventDecoderTest, NumbersAsParseNumberReadsThem) {
  constexpr std::string_view kColumns[] = {"id", "x"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  const std::pair<std::string_view, double> cases[] = {
      {"1", 1.0},     {"-2.5", -2.5},
      {"+3", 3.0},    {" 4 ", 4.0},
      {".5", 0.5},    {"1.", 1.0},
      {"3e-2", 0.03}, {"12345678901234567890", 1.2345678901234567e19},
      {"-0", -0.0},   {"5e-324", 5e-324},
  };
  for (const auto& [text, value] : cases) {
    ASSERT_TRUE(DecodeLine(decoder, "a," + std::string(text), &event).ok()) << text;
    ASSERT_EQ(event.features().size(), 1u) << text;
    EXPECT_EQ(event.features()[0].value.kind, FeatureValue::Kind::kNumber) << text;
    EXPECT_EQ(event.features()[0].value.number, value) << text;
    EXPECT_EQ(std::signbit(event.features()[0].value.number), std::signbit(value)) << text;
  }
  // Not numbers: texts, as they are.
  for (std::string_view text :
       {"abc", "1,5", "0x1A", "1e", "-", "+-1", "1 2", "nano", "info", "1_000", "١٢"}) {
    const std::string line = "a,\"" + std::string(text) + "\"";
    ASSERT_TRUE(DecodeLine(decoder, line, &event).ok()) << text;
    ASSERT_EQ(event.features().size(), 1u) << text;
    EXPECT_EQ(event.features()[0].value.kind, FeatureValue::Kind::kText) << text;
    EXPECT_EQ(event.features()[0].value.text, text);
  }
}

TEST(CsvEventDecoderTest, EmptyFieldsAreMissing) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  // Everything but the id empty, one of them quoted.
  ASSERT_TRUE(DecodeLine(decoder, "tx-2,,,\"\",,,", &event).ok());
  EXPECT_EQ(event.id(), "tx-2");
  EXPECT_EQ(event.key(), std::nullopt);
  EXPECT_EQ(event.event_time_micros(), std::nullopt);
  EXPECT_EQ(event.label(), std::nullopt);
  EXPECT_TRUE(event.features().empty());
  // A space is not empty: a text feature " ", and a key " ".
  ASSERT_TRUE(DecodeLine(decoder, "tx-3,, ,\" \",,,", &event).ok());
  EXPECT_EQ(event.key(), " ");
  ASSERT_EQ(event.features().size(), 1u);
  EXPECT_EQ(event.features()[0].value.text, " ");
}

TEST(CsvEventDecoderTest, MissingIdIsAnErrorWhileRequired) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s = DecodeLine(decoder, ",1,k,FR,,,0", &event);
  EXPECT_EQ(s.code(), DecodeError::kMissingId);
  EXPECT_EQ(s.message(), "id[\"id\"]: missing (column 1)");

  CsvEventDecoderOptions optional;
  optional.require_id = false;
  CsvEventDecoder lenient = MakeDecoder(kHeader, optional);
  ASSERT_TRUE(DecodeLine(lenient, ",1,k,FR,,,0", &event).ok());
  EXPECT_EQ(event.id(), "");
  // Without an id column at all.
  constexpr std::string_view kNoId[] = {"x", "label"};
  CsvEventDecoder no_id = MakeDecoder(kNoId, optional);
  ASSERT_TRUE(DecodeLine(no_id, "1,yes", &event).ok());
  EXPECT_EQ(event.id(), "");
  EXPECT_EQ(event.label(), "yes");
}

TEST(CsvEventDecoderTest, TextColumnsStayTextsEvenWhenNumeric) {
  CsvEventDecoderOptions options;
  options.text_columns = {"zip", "country"};
  CsvEventDecoder decoder = MakeDecoder(kHeader, options);
  DecodedEvent event;
  ASSERT_TRUE(DecodeLine(decoder, "tx-1,0012,,380,,02134,", &event).ok());
  EXPECT_EQ(Find(event, "amount")->value.kind, FeatureValue::Kind::kNumber);
  EXPECT_EQ(Find(event, "amount")->value.number, 12.0);
  EXPECT_EQ(Find(event, "country")->value.kind, FeatureValue::Kind::kText);
  EXPECT_EQ(Find(event, "country")->value.text, "380");
  EXPECT_EQ(Find(event, "zip")->value.kind, FeatureValue::Kind::kText);
  EXPECT_EQ(Find(event, "zip")->value.text, "02134");
  // In a text column "nan" is just a text, and an empty field still missing.
  ASSERT_TRUE(DecodeLine(decoder, "tx-1,,,,,nan,", &event).ok());
  EXPECT_EQ(Find(event, "zip")->value.text, "nan");
  EXPECT_EQ(Find(event, "country"), nullptr);
}

TEST(CsvEventDecoderTest, IdKeyAndLabelAreTextsAsIs) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(DecodeLine(decoder, "007,,0042,,,,1", &event).ok());
  EXPECT_EQ(event.id(), "007");
  EXPECT_EQ(event.key(), "0042");
  // "1" is what JsonDecoder gives for the integer label 1, so a 0/1 label column is the same
  // classes in either format.
  EXPECT_EQ(event.label(), "1");
  ASSERT_TRUE(DecodeLine(decoder, "a,,,,,,1.0", &event).ok());
  EXPECT_EQ(event.label(), "1.0");
  ASSERT_TRUE(DecodeLine(decoder, "a,,,,,,nan", &event).ok());
  EXPECT_EQ(event.label(), "nan");
  ASSERT_TRUE(DecodeLine(decoder, "a,,,,,,\"a, b\"", &event).ok());
  EXPECT_EQ(event.label(), "a, b");
}

TEST(CsvEventDecoderTest, FieldCountMustMatchTheHeader) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = DecodeLine(decoder, "tx-1,1,k,FR,,", &event);
  EXPECT_EQ(s.code(), DecodeError::kFieldCount);
  EXPECT_EQ(s.message(), "message: 6 fields, but the header has 7 columns");
  s = DecodeLine(decoder, "tx-1,1,k,FR,,,,", &event);
  EXPECT_EQ(s.code(), DecodeError::kFieldCount);
  EXPECT_THAT(s.message(), HasSubstr("8 fields"));
  const std::string_view fields[] = {"tx-1"};
  EXPECT_EQ(decoder.Decode(fields, &event).code(), DecodeError::kFieldCount);
  const absl::Status status = s.ToStatus();
  EXPECT_THAT(status.message(), HasSubstr("FIELD_COUNT: message: 8 fields"));
}

TEST(CsvEventDecoderTest, InvalidUtf8InAnyFieldIsRejected) {
  CsvEventDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = DecodeLine(decoder, "tx-1,1,k,caf\xE9,,,", &event);  // Latin-1 é
  EXPECT_EQ(s.code(), DecodeError::kInvalidUtf8);
  EXPECT_EQ(s.message(), "features[\"country\"]: not valid UTF-8 (column 4)");
  s = DecodeLine(decoder, "tx-\xC0\xAF,1,,,,,", &event);  // overlong '/'
  EXPECT_EQ(s.code(), DecodeError::kInvalidUtf8);
  EXPECT_EQ(s.message(), "id[\"id\"]: not valid UTF-8 (column 1)");
  s = DecodeLine(decoder, "a,,,,,,\xED\xA0\x80", &event);  // a surrogate, U+D800
  EXPECT_EQ(s.code(), DecodeError::kInvalidUtf8);
  EXPECT_THAT(s.message(), HasSubstr("label[\"label\"]"));
  // Valid multi-byte UTF-8, long enough for the eight-byte scan, passes as is.
  ASSERT_TRUE(DecodeLine(decoder, "a,,,Zürich über alles 日本 🙂,,,", &event).ok());
  EXPECT_EQ(Find(event, "country")->value.text, "Zürich über alles 日本 🙂");
}

TEST(CsvEventDecoderTest, NonFiniteNumbersAreErrorsNotCategories) {
  constexpr std::string_view kColumns[] = {"id", "amount"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  for (std::string_view text :
       {"nan", "NaN", "-nan", "NAN(123)", "inf", "-Inf", "+infinity", "Infinity", " inf "}) {
    DecodedEvent event;
    const DecodeStatus s = DecodeLine(decoder, "a," + std::string(text), &event);
    EXPECT_EQ(s.code(), DecodeError::kNonFiniteNumber) << text;
    EXPECT_THAT(s.message(), HasSubstr("features[\"amount\"]: \"")) << text;
    EXPECT_THAT(s.message(), HasSubstr("is not a finite number (column 2)")) << text;
  }
}

TEST(CsvEventDecoderTest, OverflowIsAnErrorAndUnderflowIsZero) {
  constexpr std::string_view kColumns[] = {"id", "amount"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  const std::string big_integer = "1" + std::string(400, '0');
  for (std::string_view text :
       {std::string_view("1e999"), std::string_view("-1e999"), std::string_view("0.001e312"),
        std::string_view(big_integer), std::string_view("1.8e308"),
        std::string_view("1e99999999999999")}) {
    const DecodeStatus s = DecodeLine(decoder, "a," + std::string(text), &event);
    EXPECT_EQ(s.code(), DecodeError::kNumberOutOfRange) << text;
    EXPECT_THAT(s.message(), HasSubstr("features[\"amount\"]: number out of range (")) << text;
  }
  // Below the smallest subnormal: the correctly rounded value is zero (as JSON decodes it).
  for (std::string_view text :
       {"1e-400", "-1e-400", "1000e-330", "0.0000001e-320", "1e-99999999999999"}) {
    ASSERT_TRUE(DecodeLine(decoder, "a," + std::string(text), &event).ok()) << text;
    EXPECT_EQ(event.features()[0].value.kind, FeatureValue::Kind::kNumber) << text;
    EXPECT_EQ(event.features()[0].value.number, 0.0) << text;
    EXPECT_EQ(std::signbit(event.features()[0].value.number), text[0] == '-') << text;
  }
}

TEST(CsvEventDecoderTest, EventTimeAsRfc3339OrEpoch) {
  constexpr std::string_view kColumns[] = {"id", "event_time"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  const std::pair<std::string_view, std::int64_t> cases[] = {
      {"2024-05-01T14:00:00.250+02:00", 1714564800250000},
      {"2024-05-01 12:00:00Z", 1714564800000000},
      {"1714564800", 1714564800000000},     // auto: below 1e11, seconds
      {"1714564800250", 1714564800250000},  // auto: at or above 1e11, milliseconds
      {"1714564800.25", 1714564800250000},  // fraction of a second
      {" +1714564800 ", 1714564800000000},  // as ParseNumber reads numbers
      {"-1", -1000000},
      {"1.7145648e9", 1714564800000000},
  };
  for (const auto& [text, micros] : cases) {
    ASSERT_TRUE(DecodeLine(decoder, "a," + std::string(text), &event).ok()) << text;
    EXPECT_EQ(event.event_time_micros(), micros) << text;
    EXPECT_TRUE(event.features().empty());
  }

  CsvEventDecoderOptions options;
  options.epoch_unit = EpochUnit::kMicros;
  options.time_fields = {"ts"};
  constexpr std::string_view kTs[] = {"id", "ts"};
  CsvEventDecoder micros_decoder = MakeDecoder(kTs, options);
  // Integers are converted exactly: 2^53 + 1 would round through a double.
  ASSERT_TRUE(DecodeLine(micros_decoder, "a,9007199254740993", &event).ok());
  EXPECT_EQ(event.event_time_micros(), 9007199254740993);
}

TEST(CsvEventDecoderTest, BadTimestamps) {
  constexpr std::string_view kColumns[] = {"id", "time"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  for (std::string_view text : {"yesterday", "2024-05-01", "2024-02-30T00:00:00Z", "nan", "inf",
                                "1e999", "9e18", "-9223372036854775808", "12:00"}) {
    DecodedEvent event;
    const DecodeStatus s = DecodeLine(decoder, "a," + std::string(text), &event);
    EXPECT_EQ(s.code(), DecodeError::kBadTimestamp) << text;
    EXPECT_THAT(s.message(), HasSubstr("time[\"time\"]: ")) << text;
    EXPECT_THAT(s.message(), HasSubstr("(column 2)")) << text;
  }
}

TEST(CsvEventDecoderTest, MessagesWithRfc4180Quoting) {
  constexpr std::string_view kColumns[] = {"id", "note", "label"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  ASSERT_TRUE(
      DecodeLine(decoder, "\"tx,1\",\"a \"\"quoted\"\"\nline, too\",\"\"\"yes\"\"\"\r\n", &event)
          .ok());
  EXPECT_EQ(event.id(), "tx,1");
  EXPECT_EQ(Find(event, "note")->value.text, "a \"quoted\"\nline, too");
  EXPECT_EQ(event.label(), "\"yes\"");
  // Line ends: LF, CRLF, none, a lone CR at the end (a truncated CRLF). A CR elsewhere in an
  // unquoted field is data, as for CsvReader.
  for (std::string_view line : {"a,x,y\n", "a,x,y\r\n", "a,x,y", "a,x,y\r"}) {
    ASSERT_TRUE(DecodeLine(decoder, line, &event).ok()) << line;
    EXPECT_EQ(event.label(), "y");
  }
  ASSERT_TRUE(DecodeLine(decoder, "a,x\ry,z", &event).ok());
  EXPECT_EQ(Find(event, "note")->value.text, "x\ry");
  // A quoted field that is a number is a number: quoting is not typing in CSV.
  ASSERT_TRUE(DecodeLine(decoder, "a,\"12\",z", &event).ok());
  EXPECT_EQ(Find(event, "note")->value.kind, FeatureValue::Kind::kNumber);
}

TEST(CsvEventDecoderTest, MalformedMessagesAreInvalidCsv) {
  constexpr std::string_view kColumns[] = {"id", "x"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"a,1\nb,2\n", "byte offset 4: content after the end of the record"},
      {"a,1\n\n", "byte offset 4: content after the end of the record"},
      {"a,1\r\nb,2", "byte offset 5: content after the end of the record"},
      {"", "byte offset 0: empty line: no record"},
      {"\n", "byte offset 0: empty line: no record"},
      {"\r\n", "byte offset 0: empty line: no record"},
      {"a,\"1", "byte offset 2: quoted field is not terminated"},
      {"a,\"1\"\"", "byte offset 2: quoted field is not terminated"},
      {"a,1\"2", "byte offset 3: quote inside an unquoted field"},
      {"a,\"1\"2", "byte offset 5: '2' after a closing quote"},
      {"a,\"1\"\rx", "byte offset 5: byte 0x0D after a closing quote"},
  };
  for (const auto& [line, message] : cases) {
    DecodedEvent event;
    const DecodeStatus s = DecodeLine(decoder, line, &event);
    EXPECT_EQ(s.code(), DecodeError::kInvalidCsv) << line;
    EXPECT_THAT(s.message(), HasSubstr(message)) << line;
    EXPECT_THAT(s.message(), ::testing::StartsWith("message: ")) << line;
  }
}

TEST(CsvEventDecoderTest, MessageAboveTheLimitIsTooLarge) {
  constexpr std::string_view kColumns[] = {"id", "x"};
  CsvEventDecoderOptions options;
  options.max_message_bytes = 8;
  CsvEventDecoder decoder = MakeDecoder(kColumns, options);
  EXPECT_EQ(CodeOf(decoder, "a,123456"), DecodeError::kOk);  // 8 bytes
  DecodedEvent event;
  const DecodeStatus s = DecodeLine(decoder, "a,1234567", &event);
  EXPECT_EQ(s.code(), DecodeError::kTooLarge);
  EXPECT_EQ(s.message(), "message: 9 bytes, above the limit of 8");
}

TEST(CsvEventDecoderTest, ByteOrderMarkIsDataInAMessage) {
  // A message is one record, not a file: a BOM is not skipped, and becomes part of the first
  // field (valid UTF-8, so no error).
  constexpr std::string_view kColumns[] = {"id", "x"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  ASSERT_TRUE(DecodeLine(decoder, "\xEF\xBB\xBFtx,1", &event).ok());
  EXPECT_EQ(event.id(), "\xEF\xBB\xBFtx");
}

TEST(CsvEventDecoderTest, OtherDelimiters) {
  constexpr std::string_view kColumns[] = {"id", "amount", "city"};
  for (const char delimiter : {';', '\t', '|'}) {
    CsvEventDecoderOptions options;
    options.delimiter = delimiter;
    CsvEventDecoder decoder = MakeDecoder(kColumns, options);
    DecodedEvent event;
    const std::string d(1, delimiter);
    const std::string line = "a" + d + "1.5" + d + "\"x" + d + "y,z\"\n";
    ASSERT_TRUE(DecodeLine(decoder, line, &event).ok()) << delimiter;
    EXPECT_EQ(Find(event, "amount")->value.number, 1.5);
    EXPECT_EQ(Find(event, "city")->value.text, "x" + d + "y,z");
  }
}

TEST(CsvEventDecoderTest, DecodesCsvReaderRecords) {
  const std::vector<std::vector<std::string>> records = ReadWithCsvReader(
      "\xEF\xBB\xBFid,amount,label,city\r\n"
      "t1,1.5,0,\"Paris, FR\"\r\n"
      "t2,,1,\"multi\nline\"\r\n");
  ASSERT_EQ(records.size(), 3u);
  const std::vector<std::string_view> header(records[0].begin(), records[0].end());
  CsvEventDecoder decoder = MakeDecoder(header);
  EXPECT_THAT(decoder.columns(), ElementsAre("id", "amount", "label", "city"));
  DecodedEvent event;
  std::vector<std::string_view> fields(records[1].begin(), records[1].end());
  ASSERT_TRUE(decoder.Decode(fields, &event).ok());
  EXPECT_EQ(event.id(), "t1");
  EXPECT_EQ(event.label(), "0");
  EXPECT_EQ(Find(event, "city")->value.text, "Paris, FR");
  fields.assign(records[2].begin(), records[2].end());
  ASSERT_TRUE(decoder.Decode(fields, &event).ok());
  EXPECT_EQ(Names(event), (std::vector<std::string>{"city"}));
  EXPECT_EQ(Find(event, "city")->value.text, "multi\nline");
}

TEST(CsvEventDecoderTest, EventsOwnTheirStorageAndReuseLeavesNothingBehind) {
  DecodedEvent first;
  DecodedEvent second;
  {
    CsvEventDecoder decoder = MakeDecoder();
    std::string message = "tx-1,1,k,FR,1714564800,z,1";
    ASSERT_TRUE(decoder.DecodeMessage(message, &first).ok());
    message.assign(message.size(), 'x');
    ASSERT_TRUE(decoder.DecodeMessage("tx-2,2,k2,DE,,,", &second).ok());
  }  // the decoder is gone too
  EXPECT_EQ(first.id(), "tx-1");
  EXPECT_EQ(first.key(), "k");
  EXPECT_EQ(first.label(), "1");
  EXPECT_EQ(Names(first), (std::vector<std::string>{"amount", "country", "zip"}));
  EXPECT_EQ(Find(first, "country")->value.text, "FR");
  EXPECT_EQ(Find(second, "country")->value.text, "DE");

  // Into the same event: nothing of the previous one remains, and a failed decode in between
  // does not leak into the next.
  CsvEventDecoder decoder = MakeDecoder();
  ASSERT_FALSE(decoder.DecodeMessage("tx-3,nan,k,FR,1,z,1", &first).ok());
  ASSERT_TRUE(decoder.DecodeMessage("tx-4,,,,,,", &first).ok());
  EXPECT_EQ(first.id(), "tx-4");
  EXPECT_EQ(first.key(), std::nullopt);
  EXPECT_EQ(first.label(), std::nullopt);
  EXPECT_EQ(first.event_time_micros(), std::nullopt);
  EXPECT_TRUE(first.features().empty());
}

TEST(CsvEventDecoderTest, SameEventAsJsonAndAsCsvDecodesTheSame) {
  JsonDecoderOptions json_options;
  json_options.id_field = "event_id";
  json_options.time_fields = {"ts"};
  json_options.label_field = "y";
  absl::StatusOr<JsonDecoder> json = JsonDecoder::Create(json_options);
  ASSERT_TRUE(json.ok());
  CsvEventDecoderOptions csv_options;
  csv_options.id_field = "event_id";
  csv_options.time_fields = {"ts"};
  csv_options.label_field = "y";
  csv_options.text_columns = {"zip"};
  constexpr std::string_view kColumns[] = {"event_id", "key", "ts",   "amount", "count",
                                           "country",  "zip", "tiny", "y"};
  CsvEventDecoder csv = MakeDecoder(kColumns, csv_options);

  const std::pair<std::string_view, std::string_view> events[] = {
      {R"({"event_id":"tx-9","key":"card-1","ts":"2024-05-01T12:00:00.5Z","amount":-12.75,)"
       R"("count":3,"country":"Zürich","zip":"02134","tiny":1e-400,"y":1})",
       "tx-9,card-1,2024-05-01T12:00:00.5Z,-12.75,3,Zürich,02134,1e-400,1"},
      {R"({"event_id":7,"ts":1714564800123,"amount":0.1,"count":0,"country":"a,\"b\"",)"
       R"("zip":"75001","tiny":5e-324,"y":"no"})",
       "7,,1714564800123,0.1,0,\"a,\"\"b\"\"\",75001,5e-324,no"},
  };
  for (const auto& [json_text, csv_text] : events) {
    DecodedEvent from_json;
    DecodedEvent from_csv;
    const DecodeStatus js = json->Decode(json_text, &from_json);
    const DecodeStatus cs = csv.DecodeMessage(csv_text, &from_csv);
    ASSERT_TRUE(js.ok()) << js.message();
    ASSERT_TRUE(cs.ok()) << cs.message();
    EXPECT_EQ(from_csv.id(), from_json.id());
    EXPECT_EQ(from_csv.key(), from_json.key());
    EXPECT_EQ(from_csv.event_time_micros(), from_json.event_time_micros());
    EXPECT_EQ(from_csv.label(), from_json.label());
    ASSERT_EQ(Names(from_csv), Names(from_json)) << csv_text;
    for (std::size_t i = 0; i < from_json.features().size(); ++i) {
      const FeatureValue& j = from_json.features()[i].value;
      const FeatureValue& c = from_csv.features()[i].value;
      EXPECT_EQ(c.kind, j.kind) << from_json.features()[i].name;
      EXPECT_EQ(c.number, j.number) << from_json.features()[i].name;
      EXPECT_EQ(c.text, j.text) << from_json.features()[i].name;
    }
  }
}

TEST(CsvEventDecoderOptionsTest, Validate) {
  EXPECT_TRUE(CsvEventDecoderOptions{}.Validate().ok());
  auto message = [](auto mutate) {
    CsvEventDecoderOptions o;
    mutate(o);
    return std::string(o.Validate().message());
  };
  EXPECT_EQ(message([](auto& o) { o.id_field = ""; }), "id_field: must not be empty");
  EXPECT_THAT(message([](auto& o) { o.label_field = "id"; }), HasSubstr("label_field: \"id\""));
  EXPECT_THAT(message([](auto& o) { o.time_fields = {"t", "key"}; }), HasSubstr("time_fields[1]"));
  EXPECT_THAT(message([](auto& o) { o.max_message_bytes = 0; }), HasSubstr("max_message_bytes"));
  EXPECT_THAT(message([](auto& o) { o.epoch_unit = static_cast<EpochUnit>(9); }),
              HasSubstr("epoch_unit"));
  for (const char bad : {'"', '\n', '\r'}) {
    EXPECT_THAT(message([bad](auto& o) { o.delimiter = bad; }), HasSubstr("delimiter"));
  }
  EXPECT_EQ(message([](auto& o) {
              o.text_columns = {"zip", ""};
            }),
            "text_columns[1]: must not be empty");
  EXPECT_EQ(message([](auto& o) {
              o.text_columns = {"zip", "zip"};
            }),
            "text_columns[1]: \"zip\" is given twice");
}

TEST(CsvEventDecoderCreateTest, RejectsBadHeaders) {
  EXPECT_EQ(CreateError({"id", "", "x"}).message(), "header: column 2 has no name");
  EXPECT_EQ(CreateError({"id", "x", "y", "x"}).message(),
            "header: column 4, \"x\", has the name of an earlier column");
  EXPECT_EQ(CreateError({"id", "caf\xE9"}).message(),
            "header: the name of column 2 is not valid UTF-8");
  EXPECT_EQ(CreateError({}).message(), "header: no columns");
  EXPECT_EQ(CreateError({"x", "label"}).message(),
            "header: no id column \"id\" (require_id is set)");
  EXPECT_EQ(CreateError({"id", "time", "x", "event_time"}).message(),
            "header: two event-time columns, \"time\" (column 2) and \"event_time\" (column 4); "
            "at most one of time_fields may be a column");
  CsvEventDecoderOptions options;
  options.text_columns = {"zpi"};
  EXPECT_EQ(CreateError({"id", "zip"}, options).message(),
            "text_columns: \"zpi\" is not a column of the header");
  options.id_field = "";
  EXPECT_EQ(CreateError({"id", "zip"}, options).message(), "id_field: must not be empty");
  EXPECT_TRUE(absl::IsInvalidArgument(CreateError({"id", "x", "x"})));
}

TEST(CsvEventDecoderCreateTest, RoleColumnsMayBeAnywhereOrAbsent) {
  constexpr std::string_view kColumns[] = {"a", "label", "b", "id"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  DecodedEvent event;
  ASSERT_TRUE(decoder.DecodeMessage("1,yes,x,e-1", &event).ok());
  EXPECT_EQ(event.id(), "e-1");
  EXPECT_EQ(event.label(), "yes");
  EXPECT_EQ(event.key(), std::nullopt);
  EXPECT_EQ(Names(event), (std::vector<std::string>{"a", "b"}));
}

TEST(CsvEventDecoderTest, ErrorMessagesQuoteAtMostFortyBytesOfUtf8) {
  // A long field cut inside a multi-byte character must not leave half of it in the message.
  constexpr std::string_view kColumns[] = {"id", "time"};
  CsvEventDecoder decoder = MakeDecoder(kColumns);
  const std::string field = std::string(39, 'x') + "é" + std::string(20, 'y');
  DecodedEvent event;
  const DecodeStatus s = DecodeLine(decoder, "a," + field, &event);
  ASSERT_EQ(s.code(), DecodeError::kBadTimestamp);
  EXPECT_THAT(s.message(), HasSubstr("\"" + std::string(39, 'x') + "\" is neither"));
}

// SplitCsvRecord (features/csv_reader.h) is the message splitter of DecodeMessage; it must read
// a record exactly as CsvReader reads it from a file.
TEST(SplitCsvRecordTest, AgreesWithCsvReaderOnRandomRecords) {
  std::mt19937 rng(11);
  const std::string alphabet = "ab,\"\r\n 1.";
  std::vector<std::string> lines;
  std::string file;
  for (int r = 0; r < 400; ++r) {
    std::string line;
    const int n = 1 + static_cast<int>(rng() % 5);
    for (int f = 0; f < n; ++f) {
      if (f > 0) line += ',';
      std::string value;
      const int length = static_cast<int>(rng() % 6);
      for (int i = 0; i < length; ++i) value += alphabet[rng() % alphabet.size()];
      const bool needs_quotes = value.find_first_of(",\"\r\n") != std::string::npos;
      if (needs_quotes || rng() % 4 == 0) {
        std::string quoted = "\"";
        for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        line += quoted + "\"";
      } else {
        line += value;
      }
    }
    // A record whose only field is empty is an empty line, which CsvReader skips.
    if (line.empty()) line = "\"\"";
    line += rng() % 2 ? "\r\n" : "\n";
    lines.push_back(line);
    file += line;
  }
  const std::vector<std::vector<std::string>> records = ReadWithCsvReader(file);
  ASSERT_EQ(records.size(), lines.size());
  std::vector<std::string_view> fields;
  std::string scratch;
  for (std::size_t r = 0; r < lines.size(); ++r) {
    ASSERT_TRUE(SplitCsvRecord(lines[r], ',', &fields, &scratch).ok()) << lines[r];
    EXPECT_EQ(std::vector<std::string>(fields.begin(), fields.end()), records[r]) << lines[r];
  }
}

TEST(SplitCsvRecordTest, RefusesADelimiterCsvReaderRefuses) {
  std::vector<std::string_view> fields;
  std::string scratch;
  const absl::Status s = SplitCsvRecord("a", '"', &fields, &scratch);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("delimiter"));
}

}  // namespace
}  // namespace riffle::features
