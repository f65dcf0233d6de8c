#include "features/csv_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "features/simd_builds.h"

namespace riffle::features {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Records = std::vector<std::vector<std::string>>;

// Reads every record, copying the views (they die at the next Next()).
absl::StatusOr<Records> ReadAll(CsvReader& reader) {
  Records records;
  std::vector<std::string_view> fields;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&fields);
    if (!more.ok()) return more.status();
    if (!*more) return records;
    records.emplace_back(fields.begin(), fields.end());
  }
}

class CsvReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "csv_reader_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(std::string_view contents, const std::string& name = "data.csv") {
    std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    EXPECT_TRUE(out) << path;
    return path;
  }

  absl::StatusOr<Records> ReadString(std::string_view contents, CsvReaderOptions options = {}) {
    absl::StatusOr<std::unique_ptr<CsvReader>> reader =
        CsvReader::Open(WriteFile(contents), options);
    if (!reader.ok()) return reader.status();
    return ReadAll(**reader);
  }

  // Reads until the first error and returns it (OK if the input is valid).
  absl::Status FirstError(std::string_view contents, CsvReaderOptions options = {}) {
    return ReadString(contents, options).status();
  }

  std::string dir_;
};

TEST_F(CsvReaderTest, ReadsSimpleFile) {
  absl::StatusOr<Records> records = ReadString("a,b,c\n1,2,3\n4,5,6\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", "b", "c"}, {"1", "2", "3"}, {"4", "5", "6"}}));
}

TEST_F(CsvReaderTest, QuotedFieldsHoldDelimiterNewlineAndEscapedQuotes) {
  absl::StatusOr<Records> records =
      ReadString("\"a,b\",\"line1\nline2\",\"say \"\"hi\"\"\",\"\"\"\"\nx,\"\",y\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a,b", "line1\nline2", "say \"hi\"", "\""}, {"x", "", "y"}}));
}

TEST_F(CsvReaderTest, ReportsWhichFieldsWereQuoted) {
  auto reader = CsvReader::Open(WriteFile("\"\",,\"a\"\"\",b\n"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*(*reader)->Next(&fields));
  ASSERT_THAT(fields, ElementsAre("", "", "a\"", "b"));
  EXPECT_TRUE((*reader)->quoted(0));
  EXPECT_FALSE((*reader)->quoted(1));
  EXPECT_TRUE((*reader)->quoted(2));
  EXPECT_FALSE((*reader)->quoted(3));
}

TEST_F(CsvReaderTest, TellsWhetherTheFieldsAreViewsOfTheRecordInOrder) {
  auto reader = CsvReader::Open(WriteFile("a,b,c\n\"q,1\",\"two\nlines\",\n,x,\"e\"\"\"\n"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  const auto in_order = [&fields] {
    for (std::size_t i = 1; i < fields.size(); ++i) {
      if (fields[i].data() < fields[i - 1].data() + fields[i - 1].size()) return false;
    }
    return true;
  };
  ASSERT_TRUE(*(*reader)->Next(&fields));  // the fast path
  EXPECT_TRUE((*reader)->fields_in_record());
  EXPECT_TRUE(in_order());
  ASSERT_TRUE(*(*reader)->Next(&fields));  // quoted, but nothing escaped
  ASSERT_THAT(fields, ElementsAre("q,1", "two\nlines", ""));
  EXPECT_TRUE((*reader)->fields_in_record());
  EXPECT_TRUE(in_order());
  ASSERT_TRUE(*(*reader)->Next(&fields));  // the last field is an unescaped copy
  ASSERT_THAT(fields, ElementsAre("", "x", "e\""));
  EXPECT_FALSE((*reader)->fields_in_record());
}

// The unquoted-line fast path looks for quotes 16 bytes at a time (bytes 0-95 of this line),
// then 8 (96-103), then in the rest: a quoted field starting in any of those places must send
// the line to the general path, which keeps the comma inside it.
TEST_F(CsvReaderTest, AQuotedFieldAnywhereInALongLineIsSeen) {
  for (std::size_t start : {0, 10, 20, 40, 60, 70, 90, 100}) {
    std::string line(109, 'x');  // 11 fields of 9 bytes
    for (std::size_t i = 9; i < line.size(); i += 10) line[i] = ',';
    line.replace(start, 9, "\"q,xxxxx\"");
    absl::StatusOr<Records> records = ReadString(line + "\n");
    ASSERT_TRUE(records.ok()) << start << ": " << records.status();
    ASSERT_EQ(records->size(), 1u);
    ASSERT_EQ((*records)[0].size(), 11u) << start;
    EXPECT_EQ((*records)[0][start / 10], "q,xxxxx") << start;
  }
}

TEST_F(CsvReaderTest, EscapedFieldsOfOneRecordStayValidTogether) {
  // Three unescaped fields live in the scratch area at once; none may overwrite another.
  absl::StatusOr<Records> records = ReadString("\"a\"\"\",\"\"\"b\",\"c\"\"d\"\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a\"", "\"b", "c\"d"}}));
}

TEST_F(CsvReaderTest, AcceptsCrlfLineEndings) {
  absl::StatusOr<Records> records = ReadString("a,b\r\n1,\"2\"\r\n\"x\r\ny\",3\r\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", "b"}, {"1", "2"}, {"x\r\ny", "3"}}));
}

TEST_F(CsvReaderTest, LoneCrInsideUnquotedFieldIsData) {
  // The first line has no quotes (fast path), the second has (general path).
  absl::StatusOr<Records> records = ReadString("a\rb,c\r\r\na\rb,\"c\"\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a\rb", "c\r"}, {"a\rb", "c"}}));
}

TEST_F(CsvReaderTest, LongUnquotedLinesSplitCorrectly) {
  // Fields of every length 0..40 put delimiters at every position of the 8-byte words and
  // 64-byte chunks the fast path scans (the line is 860 bytes).
  std::string line;
  std::vector<std::string> expected;
  for (int length = 0; length <= 40; ++length) {
    expected.push_back(std::string(length, static_cast<char>('a' + length % 26)));
    line += (length > 0 ? "," : "") + expected.back();
  }
  absl::StatusOr<Records> records = ReadString(line + "\n" + line);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{expected, expected}));
}

TEST_F(CsvReaderTest, LastRecordMayLackNewline) {
  absl::StatusOr<Records> records = ReadString("a,b\n1,2");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", "b"}, {"1", "2"}}));
}

TEST_F(CsvReaderTest, LastQuotedRecordMayLackNewline) {
  absl::StatusOr<Records> records = ReadString("a,\"b\"\"\"");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", "b\""}}));
}

TEST_F(CsvReaderTest, EmptyFieldsAreEmptyViews) {
  absl::StatusOr<Records> records = ReadString(",,\na,,b\n,\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"", "", ""}, {"a", "", "b"}, {"", ""}}));
}

TEST_F(CsvReaderTest, SkipsEmptyLinesButCountsThem) {
  auto reader = CsvReader::Open(WriteFile("\na\n\n\r\nb\n\n"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_THAT(fields, ElementsAre("a"));
  EXPECT_EQ((*reader)->line(), 2u);
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_THAT(fields, ElementsAre("b"));
  EXPECT_EQ((*reader)->line(), 5u);
  EXPECT_FALSE(*(*reader)->Next(&fields));
  EXPECT_THAT(fields, IsEmpty());
}

TEST_F(CsvReaderTest, LineHoldingOnlyEmptyQuotesIsARecord) {
  absl::StatusOr<Records> records = ReadString("\"\"\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{""}}));
}

TEST_F(CsvReaderTest, EmptyInputHasNoRecords) {
  absl::StatusOr<Records> records = ReadString("");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_THAT(*records, IsEmpty());
}

TEST_F(CsvReaderTest, SkipsUtf8Bom) {
  absl::StatusOr<Records> records = ReadString("\xEF\xBB\xBFx,y\n1,2\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"x", "y"}, {"1", "2"}}));
}

TEST_F(CsvReaderTest, SkipsBomBeforeQuotedFieldWithTinyBuffer) {
  absl::StatusOr<Records> records =
      ReadString("\xEF\xBB\xBF\"x\",y\n", CsvReaderOptions{.buffer_bytes = 1});
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"x", "y"}}));
}

TEST_F(CsvReaderTest, BomOnlyAtStartOfFileIsSkipped) {
  const std::string bom = "\xEF\xBB\xBF";
  absl::StatusOr<Records> records = ReadString("a\n" + bom + "b\n");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a"}, {bom + "b"}}));
}

TEST_F(CsvReaderTest, UsesConfiguredDelimiter) {
  absl::StatusOr<Records> records =
      ReadString("a;b,c;\"d;e\"\n", CsvReaderOptions{.delimiter = ';'});
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", "b,c", "d;e"}}));
}

TEST_F(CsvReaderTest, LineNumbersAccountForQuotedNewlines) {
  auto reader = CsvReader::Open(WriteFile("\"a\nb\nc\",d\ne,f\n"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_EQ((*reader)->line(), 1u);
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_EQ((*reader)->line(), 4u);  // "a\nb\nc" spans lines 1-3
}

TEST_F(CsvReaderTest, UnterminatedQuoteNamesLineAndOffsetOfOpeningQuote) {
  // "a,b\n" is bytes 0-3; the opening quote on line 2 is byte 4.
  absl::Status status = FirstError("a,b\n\"abc\ndef\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("line 2, byte offset 4"));
  EXPECT_THAT(status.message(), HasSubstr("not terminated"));
}

TEST_F(CsvReaderTest, QuoteInsideUnquotedFieldIsAnError) {
  // Line 2 starts at byte 4: 'c'=4 ','=5 'd'=6 '"'=7.
  absl::Status status = FirstError("a,b\nc,d\"e\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("line 2, byte offset 7"));
  EXPECT_THAT(status.message(), HasSubstr("quote inside an unquoted field"));
}

TEST_F(CsvReaderTest, CharacterAfterClosingQuoteIsAnError) {
  // Line 2 starts at byte 2: '"'=2 'a'=3 'b'=4 '"'=5 'c'=6.
  absl::Status status = FirstError("x\n\"ab\"c,d\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("line 2, byte offset 6"));
  EXPECT_THAT(status.message(), HasSubstr("'c' after a closing quote"));
}

TEST_F(CsvReaderTest, ErrorLineCountsNewlinesInEarlierQuotedField) {
  // The record starts on line 1; the stray quote sits on line 2 at byte 9:
  // '"'=0 'a'=1 '\n'=2 'b'=3 '"'=4 ','=5 'c'=6 'd'=7 'e'=8 '"'=9.
  absl::Status status = FirstError("\"a\nb\",cde\"\n");
  EXPECT_THAT(status.message(), HasSubstr("line 2, byte offset 9"));
}

TEST_F(CsvReaderTest, RecordLongerThanLimitIsAnError) {
  // "abc\n" (4 bytes) fits in 8; "0123456789\n" (11 bytes) starting at byte 4 does not.
  auto reader =
      CsvReader::Open(WriteFile("abc\n0123456789\n"), CsvReaderOptions{.max_record_bytes = 8});
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_THAT(fields, ElementsAre("abc"));
  absl::StatusOr<bool> next = (*reader)->Next(&fields);
  EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(next.status().message(), HasSubstr("line 2, byte offset 4"));
  EXPECT_THAT(next.status().message(), HasSubstr("max_record_bytes (8)"));
}

TEST_F(CsvReaderTest, RecordLimitDoesNotDependOnBufferSize) {
  // An 8-byte record including its LF is accepted, a 9-byte one rejected, whether the record
  // fits the buffer or makes it grow.
  for (std::size_t buffer_bytes : {1u, 4u, 8u, 9u, 1024u}) {
    CsvReaderOptions options{.buffer_bytes = buffer_bytes, .max_record_bytes = 8};
    EXPECT_TRUE(FirstError("1234567\n", options).ok()) << buffer_bytes;
    EXPECT_EQ(FirstError("12345678\n", options).code(), absl::StatusCode::kInvalidArgument)
        << buffer_bytes;
  }
}

TEST_F(CsvReaderTest, ErrorIsSticky) {
  auto reader = CsvReader::Open(WriteFile("a\"b\nc\n"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::string_view> fields;
  absl::Status first = (*reader)->Next(&fields).status();
  EXPECT_EQ(first.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*reader)->Next(&fields).status(), first);
}

TEST_F(CsvReaderTest, RecordStraddlesTinyBuffer) {
  // 8-byte buffer; each record is longer, and the "" escape crosses a refill boundary.
  const std::string contents = "alpha,beta,gamma\n\"de\"\"lta\",\"ep,si\nlon\",zeta\r\nend";
  absl::StatusOr<Records> records = ReadString(contents, CsvReaderOptions{.buffer_bytes = 8});
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records,
            (Records{{"alpha", "beta", "gamma"}, {"de\"lta", "ep,si\nlon", "zeta"}, {"end"}}));
}

TEST_F(CsvReaderTest, ReportsSizeAndBytesRead) {
  const std::string contents = "a,b\n1,2\n";  // 8 bytes
  auto reader = CsvReader::Open(WriteFile(contents));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size_bytes(), std::optional<std::uint64_t>(8));
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_EQ((*reader)->bytes_read(), 4u);
  ASSERT_TRUE(*(*reader)->Next(&fields));
  EXPECT_EQ((*reader)->bytes_read(), 8u);
  EXPECT_FALSE(*(*reader)->Next(&fields));
  EXPECT_FALSE(*(*reader)->Next(&fields));  // end of input is sticky too
}

TEST_F(CsvReaderTest, ReadsFromPipeWrittenInSmallPieces) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string contents;
  Records expected;
  for (int i = 0; i < 2000; ++i) {
    contents += std::to_string(i) + ",\"v" + std::to_string(i) + "\"\"\",x\n";
    expected.push_back({std::to_string(i), "v" + std::to_string(i) + "\"", "x"});
  }
  // Written 7 bytes at a time, so reads return short, unaligned pieces; larger than a pipe's
  // 64 KiB capacity, so the writer must run concurrently.
  std::thread writer([&] {
    for (std::size_t at = 0; at < contents.size(); at += 7) {
      const std::size_t n = std::min<std::size_t>(7, contents.size() - at);
      ASSERT_EQ(::write(fds[1], contents.data() + at, n), static_cast<ssize_t>(n));
    }
    ::close(fds[1]);
  });
  auto reader =
      CsvReader::FromFd(fds[0], /*owns_fd=*/true, "pipe", CsvReaderOptions{.buffer_bytes = 64});
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size_bytes(), std::nullopt);
  EXPECT_EQ((*reader)->name(), "pipe");
  absl::StatusOr<Records> records = ReadAll(**reader);
  writer.join();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, expected);
}

TEST_F(CsvReaderTest, RecordMuchLargerThanBufferFromPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // 200 KB fields, larger than the pipe's 64 KiB, so the buffer grows across short reads.
  const std::string big(200000, 'x');
  const std::string contents = "a,\"" + big + "\"\n" + big + ",b\nc\n";
  std::thread writer([&] {
    ASSERT_EQ(::write(fds[1], contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    ::close(fds[1]);
  });
  auto reader =
      CsvReader::FromFd(fds[0], /*owns_fd=*/true, "pipe", CsvReaderOptions{.buffer_bytes = 16});
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<Records> records = ReadAll(**reader);
  writer.join();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (Records{{"a", big}, {big, "b"}, {"c"}}));
}

TEST_F(CsvReaderTest, MissingFileIsNotFound) {
  const std::string path = dir_ + "/missing.csv";
  auto reader = CsvReader::Open(path);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr(path));
  EXPECT_THAT(reader.status().message(), HasSubstr("No such file or directory"));
}

TEST_F(CsvReaderTest, DirectoryIsFailedPrecondition) {
  auto reader = CsvReader::Open(dir_);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(reader.status().message(), HasSubstr(dir_));
}

TEST_F(CsvReaderTest, InvalidOptionsNameTheField) {
  auto quote = CsvReader::Open(WriteFile("a\n"), CsvReaderOptions{.delimiter = '"'});
  EXPECT_EQ(quote.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(quote.status().message(), HasSubstr("delimiter"));
  EXPECT_THAT(CsvReaderOptions{.delimiter = '\n'}.Validate().message(), HasSubstr("delimiter"));
  EXPECT_THAT(CsvReaderOptions{.buffer_bytes = 0}.Validate().message(), HasSubstr("buffer_bytes"));
  EXPECT_THAT(CsvReaderOptions{.max_record_bytes = 0}.Validate().message(),
              HasSubstr("max_record_bytes"));
  EXPECT_TRUE(CsvReaderOptions{.delimiter = '\t'}.Validate().ok());
}

// Property: for random records serialized with random quoting and line endings, every buffer
// size from 1 to 64 reads back the same fields, quoted flags, line numbers and offsets.
TEST_F(CsvReaderTest, RandomDocumentsRoundTripForAllBufferSizes) {
  struct Expected {
    std::vector<std::string> fields = {};
    std::vector<bool> quoted = {};
    std::uint64_t line = 0;        // 1-based line the record starts on
    std::uint64_t end_offset = 0;  // bytes_read() after the record
  };
  std::mt19937 rng(20240611);
  const std::string alphabet[] = {"a", "b", "7", ".", " ", ",", "\"", "\n", "\r", "\xC3\xA9"};
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  for (int doc = 0; doc < 60; ++doc) {
    std::string contents;
    std::vector<Expected> expected;
    std::uint64_t line = 1;
    const int num_records = uniform(0, 12);
    for (int r = 0; r < num_records; ++r) {
      Expected record;
      record.line = line;
      const int num_fields = uniform(1, 5);
      for (int f = 0; f < num_fields; ++f) {
        std::string value;
        for (int len = uniform(0, 6); len > 0; --len) value += alphabet[uniform(0, 9)];
        const bool needs_quotes = value.find_first_of(",\"\r\n") != std::string::npos ||
                                  (num_fields == 1 && value.empty());  // else an empty line
        const bool quoted = needs_quotes || uniform(0, 1) == 1;
        if (f > 0) contents += ',';
        if (quoted) {
          contents += '"';
          for (char c : value) {
            if (c == '"') contents += '"';
            if (c == '\n') ++line;
            contents += c;
          }
          contents += '"';
        } else {
          contents += value;
        }
        record.fields.push_back(value);
        record.quoted.push_back(quoted);
      }
      const bool last = r + 1 == num_records;
      switch (uniform(last ? 0 : 1, 2)) {
        case 0:  // the last record may end without a terminator
          break;
        case 1:
          contents += '\n';
          ++line;
          break;
        case 2:
          contents += "\r\n";
          ++line;
          break;
      }
      record.end_offset = contents.size();
      expected.push_back(std::move(record));
    }
    const std::string path = WriteFile(contents, "doc" + std::to_string(doc) + ".csv");

    for (std::size_t buffer_bytes = 1; buffer_bytes <= 64; ++buffer_bytes) {
      SCOPED_TRACE(testing::Message() << "doc " << doc << ", buffer_bytes " << buffer_bytes);
      auto reader = CsvReader::Open(path, CsvReaderOptions{.buffer_bytes = buffer_bytes});
      ASSERT_TRUE(reader.ok()) << reader.status();
      std::vector<std::string_view> fields;
      for (const Expected& record : expected) {
        absl::StatusOr<bool> more = (*reader)->Next(&fields);
        ASSERT_TRUE(more.ok()) << more.status();
        ASSERT_TRUE(*more);
        ASSERT_EQ(std::vector<std::string>(fields.begin(), fields.end()), record.fields);
        for (std::size_t i = 0; i < fields.size(); ++i) {
          EXPECT_EQ((*reader)->quoted(i), record.quoted[i]) << "field " << i;
        }
        EXPECT_EQ((*reader)->line(), record.line);
        EXPECT_EQ((*reader)->bytes_read(), record.end_offset);
      }
      absl::StatusOr<bool> more = (*reader)->Next(&fields);
      ASSERT_TRUE(more.ok()) << more.status();
      EXPECT_FALSE(*more);
      EXPECT_EQ((*reader)->bytes_read(), contents.size());
    }
  }
}

TEST(ParseNumberTest, AcceptsDecimalForms) {
  EXPECT_EQ(ParseNumber("0"), 0.0);
  EXPECT_EQ(ParseNumber("42"), 42.0);
  EXPECT_EQ(ParseNumber("-2.5"), -2.5);
  EXPECT_EQ(ParseNumber(".5"), 0.5);
  EXPECT_EQ(ParseNumber("1."), 1.0);
  EXPECT_EQ(ParseNumber("1.5E3"), 1500.0);
  EXPECT_EQ(ParseNumber("-.5e-2"), -0.005);
  EXPECT_EQ(ParseNumber("00012"), 12.0);
  EXPECT_EQ(ParseNumber("0.1"), 0.1);  // correctly rounded, same as the literal
}

TEST(ParseNumberTest, AcceptsLeadingPlusAndSurroundingSpaces) {
  EXPECT_EQ(ParseNumber("+3"), 3.0);
  EXPECT_EQ(ParseNumber("  7.25 "), 7.25);
  EXPECT_EQ(ParseNumber(" +1e2"), 100.0);
}

TEST(ParseNumberTest, KeepsSignOfNegativeZero) {
  std::optional<double> value = ParseNumber("-0");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, 0.0);
  EXPECT_TRUE(std::signbit(*value));
}

TEST(ParseNumberTest, RejectsEmptyAndGarbage) {
  EXPECT_EQ(ParseNumber(""), std::nullopt);
  EXPECT_EQ(ParseNumber("   "), std::nullopt);
  EXPECT_EQ(ParseNumber("+"), std::nullopt);
  EXPECT_EQ(ParseNumber("-"), std::nullopt);
  EXPECT_EQ(ParseNumber("."), std::nullopt);
  EXPECT_EQ(ParseNumber("-."), std::nullopt);
  EXPECT_EQ(ParseNumber("1.2.3"), std::nullopt);
  EXPECT_EQ(ParseNumber("--1"), std::nullopt);
  EXPECT_EQ(ParseNumber("1x"), std::nullopt);
  EXPECT_EQ(ParseNumber("1 2"), std::nullopt);
  EXPECT_EQ(ParseNumber("1e"), std::nullopt);
  EXPECT_EQ(ParseNumber("0x10"), std::nullopt);
  EXPECT_EQ(ParseNumber("1,5"), std::nullopt);
  EXPECT_EQ(ParseNumber("++1"), std::nullopt);
  EXPECT_EQ(ParseNumber("+-1"), std::nullopt);
  EXPECT_EQ(ParseNumber("+ 1"), std::nullopt);
  EXPECT_EQ(ParseNumber("\t1"), std::nullopt);  // only ' ' counts as space
}

TEST(ParseNumberTest, RejectsNonFinite) {
  for (std::string_view s :
       {"nan", "NaN", "-nan", "+NAN", "inf", "-Inf", "INFINITY", "infinity", "nan(1)"}) {
    EXPECT_EQ(ParseNumber(s), std::nullopt) << s;
  }
}

// ParseNumber's contract restated with std::from_chars alone: the reference its fast paths
// must agree with.
std::optional<double> ReferenceParseNumber(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.size() >= 2 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

void ExpectSameAsReference(const std::string& s) {
  const std::optional<double> expected = ReferenceParseNumber(s);
  const std::optional<double> actual = ParseNumber(s);
  ASSERT_EQ(actual.has_value(), expected.has_value()) << '"' << s << '"';
  if (expected.has_value()) {
    ASSERT_EQ(std::bit_cast<std::uint64_t>(*actual), std::bit_cast<std::uint64_t>(*expected))
        << '"' << s << '"';
  }
}

// Property: on random well-formed decimals of every length, ParseNumber's fast path rounds
// bit for bit as std::from_chars does.
TEST(ParseNumberTest, MatchesFromCharsOnRandomDecimals) {
  std::mt19937_64 rng(7);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    if (uniform(0, 3) == 0) s += '-';
    for (int n = uniform(0, 12); n > 0; --n) s += static_cast<char>('0' + uniform(0, 9));
    if (uniform(0, 1) == 1) {
      s += '.';
      for (int n = uniform(0, 12); n > 0; --n) s += static_cast<char>('0' + uniform(0, 9));
    }
    if (uniform(0, 2) == 0) {
      s += uniform(0, 1) == 1 ? 'e' : 'E';
      if (uniform(0, 1) == 1) s += uniform(0, 1) == 1 ? '-' : '+';
      s += std::to_string(uniform(0, 40));
    }
    ExpectSameAsReference(s);
  }
}

// Property: short strings over a number-like alphabet (mostly malformed: several dots or
// signs, misplaced exponents and spaces) are accepted and rejected as std::from_chars decides.
TEST(ParseNumberTest, MatchesFromCharsOnRandomShortStrings) {
  std::mt19937_64 rng(11);
  constexpr std::string_view kAlphabet = "0123456789012345678901234..--+eE xa";
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 300000; ++i) {
    std::string s;
    for (int n = uniform(0, 10); n > 0; --n) {
      s += kAlphabet[uniform(0, static_cast<int>(kAlphabet.size()) - 1)];
    }
    ExpectSameAsReference(s);
  }
}

// ParseNumbersInto, a record at a time, gives ParseNumber of each field and NaN where that is
// nullopt, whatever the mix of valid, long and malformed fields around it.
void ExpectRecordsGiveEachFieldsNumber() {
  std::mt19937_64 rng(13);
  constexpr std::string_view kAlphabet = "0123456789012345678901234..--+eE xa";
  constexpr std::string_view kDecimalAlphabet = "01234567890123456789.-";
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::size_t numbers = 0;
  for (int record = 0; record < 40000; ++record) {
    std::vector<std::string> texts(static_cast<std::size_t>(uniform(0, 24)));
    for (std::string& text : texts) {
      // Short decimals of every shape (what the four-lane path takes, or must refuse: "-",
      // ".", "1..2", "-.5", nine bytes), other number-like text, and plain decimals.
      const std::string_view alphabet = uniform(0, 1) == 1 ? kDecimalAlphabet : kAlphabet;
      for (int n = uniform(0, 11); n > 0; --n) {
        text += alphabet[uniform(0, static_cast<int>(alphabet.size()) - 1)];
      }
      if (uniform(0, 3) == 0) text = absl::StrCat(uniform(-999, 999), ".", uniform(0, 99999));
    }
    const std::vector<std::string_view> fields(texts.begin(), texts.end());
    std::vector<double> values(fields.size() + 1, 7.0);
    csv_internal::ParseNumbersInto(fields, values.data());
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::optional<double> expected = ParseNumber(fields[i]);
      if (expected.has_value()) {
        ++numbers;
        ASSERT_EQ(std::bit_cast<std::uint64_t>(values[i]), std::bit_cast<std::uint64_t>(*expected))
            << '"' << fields[i] << '"';
      } else {
        ASSERT_TRUE(std::isnan(values[i])) << '"' << fields[i] << '"';
      }
    }
    ASSERT_EQ(values.back(), 7.0);  // nothing written past the record
  }
  EXPECT_GT(numbers, 200000u);
}

TEST(ParseNumberTest, ARecordAtATimeGivesEachFieldsNumber) {
  // Both builds of ParseNumbersInto: AVX2 lanes where the CPU has them, and the baseline.
  for (const SimdBuild build : {SimdBuild::kBest, SimdBuild::kBaseline}) {
    SCOPED_TRACE(build == SimdBuild::kBest ? "best build" : "baseline build");
    SetSimdBuildForTesting(build);
    ExpectRecordsGiveEachFieldsNumber();
  }
  SetSimdBuildForTesting(SimdBuild::kBest);
}

TEST(ParseNumberTest, RejectsOutOfRange) {
  EXPECT_EQ(ParseNumber("1e999"), std::nullopt);
  EXPECT_EQ(ParseNumber("-1e309"), std::nullopt);
  EXPECT_EQ(ParseNumber("1e-400"), std::nullopt);  // underflow: from_chars says out of range
  EXPECT_EQ(ParseNumber("1.7976931348623157e308"), std::numeric_limits<double>::max());
  EXPECT_EQ(ParseNumber("5e-324"), std::numeric_limits<double>::denorm_min());
}

}  // namespace
}  // namespace riffle::features
