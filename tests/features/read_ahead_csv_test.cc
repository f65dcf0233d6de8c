#include "features/read_ahead_csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace riffle::features {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What a reader gave for one record, copied (its views die at the next Next()).
struct Record {
  std::vector<std::string> fields;
  std::vector<double> numbers;
  std::uint64_t line = 0;
  std::uint64_t bytes_read = 0;
};

// Every record, then the status that ended the input (OK at the clean end). With
// pause_every > 0 the caller sleeps 200 microseconds after every pause_every records, so that
// the reading thread runs out of free batches and waits.
// Reads every record through Next(&fields): a vector, or for a ReadAheadCsvReader a span too
// (Fields = std::span<const std::string_view>: the views its reading thread made).
template <class Reader, class Fields = std::vector<std::string_view>>
std::pair<std::vector<Record>, absl::Status> ReadAll(Reader& reader, int pause_every = 0) {
  std::vector<Record> records;
  Fields fields;
  for (;;) {
    if (pause_every > 0 && !records.empty() && records.size() % pause_every == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    absl::StatusOr<bool> more = reader.Next(&fields);
    if (!more.ok()) return {std::move(records), more.status()};
    if (!*more) return {std::move(records), absl::OkStatus()};
    Record r{.fields = {fields.begin(), fields.end()},
             .numbers = {},
             .line = reader.line(),
             .bytes_read = reader.bytes_read()};
    if constexpr (std::is_same_v<Reader, ReadAheadCsvReader>) {
      r.numbers.assign(reader.numbers().begin(), reader.numbers().end());
    }
    records.push_back(std::move(r));
  }
}

class ReadAheadCsvReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "read_ahead_csv_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(std::string_view contents) {
    std::string path = dir_ + "/data.csv";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    EXPECT_TRUE(out) << path;
    return path;
  }

  static std::unique_ptr<ReadAheadCsvReader> ReadAhead(const std::string& path,
                                                       ReadAheadCsvOptions options = {}) {
    absl::StatusOr<std::unique_ptr<CsvReader>> reader = CsvReader::Open(path);
    EXPECT_TRUE(reader.ok()) << reader.status();
    absl::StatusOr<std::unique_ptr<ReadAheadCsvReader>> read_ahead =
        ReadAheadCsvReader::Create(*std::move(reader), options);
    EXPECT_TRUE(read_ahead.ok()) << read_ahead.status();
    return *std::move(read_ahead);
  }

  // Requires `path` read ahead to give exactly what a plain CsvReader gives, field numbers
  // included, and returns the records.
  static std::vector<Record> ExpectSameAsCsvReader(const std::string& path,
                                                   ReadAheadCsvOptions options,
                                                   int pause_every = 0) {
    absl::StatusOr<std::unique_ptr<CsvReader>> plain = CsvReader::Open(path);
    EXPECT_TRUE(plain.ok()) << plain.status();
    auto [want, want_status] = ReadAll(**plain);
    // Through the span of views the reading thread made, and copied into a vector.
    std::unique_ptr<ReadAheadCsvReader> as_views = ReadAhead(path, options);
    EXPECT_TRUE(as_views->threaded());
    auto [got, got_status] =
        ReadAll<ReadAheadCsvReader, std::span<const std::string_view>>(*as_views, pause_every);
    std::unique_ptr<ReadAheadCsvReader> read_ahead = ReadAhead(path, options);
    auto [copied, copied_status] = ReadAll(*read_ahead, pause_every);
    EXPECT_EQ(copied_status, got_status);
    EXPECT_EQ(copied.size(), got.size());
    for (std::size_t r = 0; r < std::min(got.size(), copied.size()); ++r) {
      EXPECT_EQ(copied[r].fields, got[r].fields) << "record " << r;
    }
    EXPECT_EQ(got_status, want_status);
    EXPECT_EQ(got.size(), want.size());
    for (std::size_t r = 0; r < std::min(got.size(), want.size()); ++r) {
      EXPECT_EQ(got[r].fields, want[r].fields) << "record " << r;
      EXPECT_EQ(got[r].line, want[r].line) << "record " << r;
      EXPECT_EQ(got[r].bytes_read, want[r].bytes_read) << "record " << r;
      if (!options.parse_numbers) {
        EXPECT_THAT(got[r].numbers, IsEmpty());
        continue;
      }
      EXPECT_EQ(got[r].numbers.size(), got[r].fields.size()) << "record " << r;
      if (got[r].numbers.size() != got[r].fields.size()) continue;
      for (std::size_t f = 0; f < got[r].fields.size(); ++f) {
        const std::optional<double> number = ParseNumber(got[r].fields[f]);
        if (number.has_value()) {
          EXPECT_EQ(got[r].numbers[f], *number) << got[r].fields[f];
        } else {
          EXPECT_TRUE(std::isnan(got[r].numbers[f])) << got[r].fields[f];
        }
      }
    }
    return got;
  }

  std::string dir_;
};

// A file with every kind of record: quoted fields with delimiters, escaped quotes and line
// breaks, empty lines, CRLF, empty fields, numbers and texts, and no final line terminator.
std::string MixedCsv(int rows) {
  std::string csv = "id,amount,note,flag\r\n";
  std::mt19937 rng(7);
  for (int r = 0; r < rows; ++r) {
    absl::StrAppend(&csv, r, ",", static_cast<double>(rng() % 100000) / 100.0, ",");
    switch (r % 5) {
      case 0:
        csv += "plain";
        break;
      case 1:
        csv += "\"with, comma\"";
        break;
      case 2:
        csv += "\"say \"\"hi\"\"\"";
        break;
      case 3:
        csv += "\"two\nlines\"";
        break;
      default:
        break;  // empty
    }
    csv += r % 7 == 0 ? ",1e3" : ", -2.5 ";
    csv += r % 3 == 0 ? "\r\n" : "\n";
    if (r % 11 == 0) csv += "\n";
  }
  csv += "last,1,x,nan";
  return csv;
}

TEST_F(ReadAheadCsvReaderTest, GivesWhatCsvReaderGivesAcrossBatchBoundaries) {
  const std::string path = WriteFile(MixedCsv(2000));
  // Batches of one record, of a few records, ended by bytes, and the default.
  for (const ReadAheadCsvOptions& options :
       {ReadAheadCsvOptions{.batch_records = 1, .batches = 2},
        ReadAheadCsvOptions{.batch_records = 7, .batches = 3},
        ReadAheadCsvOptions{.batch_bytes = 50, .batches = 2}, ReadAheadCsvOptions{},
        ReadAheadCsvOptions{.parse_numbers = false}}) {
    std::vector<Record> records = ExpectSameAsCsvReader(path, options);
    ASSERT_EQ(records.size(), 2002u);
    EXPECT_EQ(records.back().fields, (std::vector<std::string>{"last", "1", "x", "nan"}));
  }
}

// A caller slower than the reading thread makes it wait for free batches, which it does until
// half of them are free (and the caller, when it waits, until half are full or the input
// ended): every record still comes once, in order, for every number of batches.
TEST_F(ReadAheadCsvReaderTest, ACallerThatPausesGetsEveryRecordInOrder) {
  const std::string path = WriteFile(MixedCsv(2000));
  for (const std::size_t batches : {2, 3, 4, 5, 8}) {
    for (const std::size_t batch_records : {1, 3, 64}) {
      SCOPED_TRACE(absl::StrCat(batches, " batches of ", batch_records));
      std::vector<Record> records = ExpectSameAsCsvReader(
          path, {.batch_records = batch_records, .batches = batches}, /*pause_every=*/97);
      ASSERT_EQ(records.size(), 2002u);
    }
  }
}

// Records of one, two or three fields where an escaped quote comes first, last, or alone.
std::string EscapedQuotesCsv() {
  std::string csv = "a,b,c\n";
  for (int r = 0; r < 300; ++r) {
    switch (r % 4) {
      case 0:
        absl::StrAppend(&csv, "\"x\"\"", r, "\",2.5,", r, "\n");
        break;
      case 1:
        absl::StrAppend(&csv, r, ",\"quoted, plain\",\"y", r, "\"\"\"\n");
        break;
      case 2:
        absl::StrAppend(&csv, "\"\"\"\"\n");
        break;
      default:
        absl::StrAppend(&csv, r, ",-", r, ".5\n");
    }
  }
  return csv;
}

// Records are copied as one stretch when their fields are views of the record, field by field
// when one of them is an unescaped copy.
TEST_F(ReadAheadCsvReaderTest, RecordsWithEscapedQuotesAnywhereAreCopiedRight) {
  const std::string path = WriteFile(EscapedQuotesCsv());
  for (const ReadAheadCsvOptions& options :
       {ReadAheadCsvOptions{.batch_records = 3, .batches = 2}, ReadAheadCsvOptions{}}) {
    std::vector<Record> records = ExpectSameAsCsvReader(path, options);
    ASSERT_EQ(records.size(), 301u);
    EXPECT_EQ(records[1].fields, (std::vector<std::string>{"x\"0", "2.5", "0"}));
    EXPECT_EQ(records[2].fields, (std::vector<std::string>{"1", "quoted, plain", "y1\""}));
    EXPECT_EQ(records[3].fields, (std::vector<std::string>{"\""}));
    EXPECT_EQ(records[4].fields, (std::vector<std::string>{"3", "-3.5"}));
  }
}

TEST_F(ReadAheadCsvReaderTest, NumbersLeftToTheCallerAreTheSame) {
  const std::string path = WriteFile(MixedCsv(2000));
  for (std::size_t reader_fields : {std::size_t{0}, std::size_t{2}}) {
    for (std::size_t batch_records : {std::size_t{1}, std::size_t{512}}) {
      ReadAheadCsvOptions options{.batch_records = batch_records,
                                  .reader_parsed_fields = reader_fields,
                                  .balance_parsing = false};
      std::vector<Record> records = ExpectSameAsCsvReader(path, options);
      ASSERT_EQ(records.size(), 2002u);
      EXPECT_EQ(records[2].numbers[0], 1.0);  // id 1
    }
  }
  // Records of 1, 2 and 3 fields: narrower than the reading thread's share, and wider.
  const std::string varied = WriteFile(EscapedQuotesCsv());
  std::vector<Record> records =
      ExpectSameAsCsvReader(varied, {.reader_parsed_fields = 2, .balance_parsing = false});
  ASSERT_EQ(records.size(), 301u);
  ASSERT_EQ(records[1].numbers.size(), 3u);
  EXPECT_EQ(records[1].numbers[2], 0.0);  // the third field, parsed on the caller's thread
  EXPECT_EQ(records[4].numbers[1], -3.5);
}

TEST(ReadAheadParseSplitTest, MovesOneFieldTowardsTheThreadThatWaitsLess) {
  ReadAheadCsvReader::ParseSplit split(static_cast<std::size_t>(-1));
  split.Update(/*caller_waited=*/true, /*reader_waited=*/false, /*widest=*/0);
  EXPECT_EQ(split.reader_fields(), static_cast<std::size_t>(-1));  // no record seen yet
  // The caller waits: the reading thread is the slower one and gives up a field at a time,
  // starting from the widest record, down to none.
  split.Update(true, false, 5);
  EXPECT_EQ(split.reader_fields(), 4u);
  for (int i = 0; i < 10; ++i) split.Update(true, false, 5);
  EXPECT_EQ(split.reader_fields(), 0u);
  // Both waited, or neither: no change.
  split.Update(true, true, 5);
  split.Update(false, false, 5);
  EXPECT_EQ(split.reader_fields(), 0u);
  // The reading thread waits: it takes fields back, up to the widest record.
  for (int i = 0; i < 3; ++i) split.Update(false, true, 5);
  EXPECT_EQ(split.reader_fields(), 3u);
  for (int i = 0; i < 10; ++i) split.Update(false, true, 5);
  EXPECT_EQ(split.reader_fields(), 5u);
  // A wider record raises the bound.
  split.Update(false, true, 7);
  EXPECT_EQ(split.reader_fields(), 6u);
}

TEST_F(ReadAheadCsvReaderTest, NumbersAreNanWhereTheFieldIsNoNumber) {
  std::unique_ptr<ReadAheadCsvReader> reader = ReadAhead(WriteFile("a,b,c,d,e\n1, 2 ,x,,inf\n"));
  auto [records, status] = ReadAll(*reader);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(records.size(), 2u);
  const std::vector<double>& numbers = records[1].numbers;
  ASSERT_EQ(numbers.size(), 5u);
  EXPECT_EQ(numbers[0], 1.0);
  EXPECT_EQ(numbers[1], 2.0);
  EXPECT_TRUE(std::isnan(numbers[2]));
  EXPECT_TRUE(std::isnan(numbers[3]));
  EXPECT_TRUE(std::isnan(numbers[4]));
}

TEST_F(ReadAheadCsvReaderTest, RecordsBeforeAnErrorComeFirstThenTheErrorEveryTime) {
  std::string csv = "a,b\n";
  for (int r = 0; r < 1000; ++r) absl::StrAppend(&csv, r, ",", r * 2, "\n");
  csv += "1,bad\"quote\n2,3\n";
  const std::string path = WriteFile(csv);
  std::vector<Record> records = ExpectSameAsCsvReader(path, {.batch_records = 64});
  EXPECT_EQ(records.size(), 1001u);

  std::unique_ptr<ReadAheadCsvReader> reader = ReadAhead(path, {.batch_records = 64});
  auto [got, status] = ReadAll(*reader);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("line 1002, byte offset"));
  std::vector<std::string_view> fields;
  absl::StatusOr<bool> again = reader->Next(&fields);
  EXPECT_EQ(again.status(), status);
  EXPECT_THAT(reader->numbers(), IsEmpty());
}

TEST_F(ReadAheadCsvReaderTest, TheEndIsReportedOnEveryLaterCall) {
  // Empty lines after the last record: at the end bytes_read() is the whole input, as for
  // CsvReader, not the end of the last record.
  const std::string path = WriteFile("a\n1\n\n\n");
  std::unique_ptr<ReadAheadCsvReader> reader = ReadAhead(path);
  std::vector<std::string_view> fields;
  ASSERT_TRUE(*reader->Next(&fields));
  ASSERT_TRUE(*reader->Next(&fields));
  EXPECT_EQ(reader->bytes_read(), 4u);
  for (int k = 0; k < 3; ++k) {
    absl::StatusOr<bool> more = reader->Next(&fields);
    ASSERT_TRUE(more.ok()) << more.status();
    EXPECT_FALSE(*more);
    EXPECT_THAT(fields, IsEmpty());
    EXPECT_EQ(reader->bytes_read(), 6u);
    EXPECT_EQ(reader->bytes_read(), *reader->size_bytes());
  }
}

TEST_F(ReadAheadCsvReaderTest, WideRowsOfEmptyFieldsAreCutIntoBatchesByTheirOverhead) {
  // 2,000 empty fields a row hold no bytes of text: a batch is cut by the fields' views and
  // numbers, so these small batches each hold a record or two.
  std::string csv;
  for (int r = 0; r < 50; ++r) {
    absl::StrAppend(&csv, r, std::string(1999, ','), "\n");
  }
  const std::string path = WriteFile(csv);
  std::vector<Record> records = ExpectSameAsCsvReader(path, {.batch_bytes = 30000, .batches = 2});
  ASSERT_EQ(records.size(), 50u);
  EXPECT_EQ(records[49].fields.size(), 2000u);
  EXPECT_EQ(records[49].fields[0], "49");
}

// Growing a batch's bytes moves the views of its fields along: each still lies inside `bytes`
// (not in the freed buffer) and holds the same text, empty fields included.
TEST(ReadAheadCsvBatchTest, ReserveBytesMovesTheViewsAlong) {
  ReadAheadCsvReader::Batch batch;
  const auto add_field = [&batch](std::string_view text) {
    batch.ReserveBytes(text.size());
    const char* const at = batch.bytes.data() + batch.bytes.size();
    batch.bytes.append(text);
    batch.views.emplace_back(at, text.size());
    ++batch.fields;
  };
  std::vector<std::string> want;
  int moves = 0;
  for (int f = 0; f < 40; ++f) {
    // Fields of 0 to 1,000 bytes, the first few short: `bytes` starts inside the string object.
    want.push_back(
        std::string(static_cast<std::size_t>((f * 37) % 1001), static_cast<char>('a' + f % 26)));
    const std::size_t capacity = batch.bytes.capacity();
    add_field(want.back());
    if (batch.bytes.capacity() != capacity) {
      ++moves;
      for (std::size_t k = 0; k < batch.fields; ++k) {
        const std::string_view view = batch.views[k];
        ASSERT_GE(view.data(), batch.bytes.data()) << "field " << k;
        ASSERT_LE(view.data() + view.size(), batch.bytes.data() + batch.bytes.size())
            << "field " << k;
      }
    }
  }
  EXPECT_GE(moves, 5);  // out of the string's own few bytes, then doubling to ~20 KB
  for (std::size_t k = 0; k < want.size(); ++k) EXPECT_EQ(batch.views[k], want[k]) << k;
  // Reserving what is already there moves nothing.
  const char* const data = batch.bytes.data();
  batch.ReserveBytes(batch.bytes.capacity() - batch.bytes.size());
  EXPECT_EQ(batch.bytes.data(), data);
}

TEST_F(ReadAheadCsvReaderTest, APipeIsReadOnTheCallersThreadWithTheSameRecords) {
  const std::string csv = MixedCsv(500);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    std::size_t done = 0;
    while (done < csv.size()) {
      const ssize_t n = ::write(fds[1], csv.data() + done, csv.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
  });
  absl::StatusOr<std::unique_ptr<CsvReader>> piped =
      CsvReader::FromFd(fds[0], /*owns_fd=*/true, "pipe");
  ASSERT_TRUE(piped.ok()) << piped.status();
  absl::StatusOr<std::unique_ptr<ReadAheadCsvReader>> reader =
      ReadAheadCsvReader::Create(*std::move(piped));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_FALSE((*reader)->threaded());
  EXPECT_FALSE((*reader)->size_bytes().has_value());
  auto [got, status] = ReadAll(**reader);
  writer.join();
  ASSERT_TRUE(status.ok()) << status;

  absl::StatusOr<std::unique_ptr<CsvReader>> plain = CsvReader::Open(WriteFile(csv));
  ASSERT_TRUE(plain.ok());
  auto [want, want_status] = ReadAll(**plain);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t r = 0; r < got.size(); ++r) {
    EXPECT_EQ(got[r].fields, want[r].fields);
    EXPECT_EQ(got[r].line, want[r].line);
    EXPECT_THAT(got[r].numbers, IsEmpty());  // the caller parses
  }
}

TEST_F(ReadAheadCsvReaderTest, StoppingEarlyJoinsTheReadingThread) {
  // Far more records than the batches hold: the reading thread is waiting for a free batch
  // when the reader is destroyed, and must not hang.
  std::string csv = "a,b\n";
  for (int r = 0; r < 200000; ++r) absl::StrAppend(&csv, r, ",", r, "\n");
  const std::string path = WriteFile(csv);
  for (int reads : {0, 1, 5000}) {
    std::unique_ptr<ReadAheadCsvReader> reader =
        ReadAhead(path, {.batch_records = 100, .batches = 2});
    std::vector<std::string_view> fields;
    for (int k = 0; k < reads; ++k) {
      ASSERT_TRUE(*reader->Next(&fields));
    }
    if (reads > 1) {
      EXPECT_EQ(fields[0], absl::StrCat(reads - 2));
    }
    reader.reset();
  }
}

TEST_F(ReadAheadCsvReaderTest, InvalidOptionsAreRejected) {
  const std::string path = WriteFile("a\n");
  for (const ReadAheadCsvOptions& options :
       {ReadAheadCsvOptions{.batch_records = 0}, ReadAheadCsvOptions{.batch_bytes = 0},
        ReadAheadCsvOptions{.batches = 1}, ReadAheadCsvOptions{.batches = 2000}}) {
    absl::StatusOr<std::unique_ptr<CsvReader>> reader = CsvReader::Open(path);
    ASSERT_TRUE(reader.ok());
    absl::StatusOr<std::unique_ptr<ReadAheadCsvReader>> read_ahead =
        ReadAheadCsvReader::Create(*std::move(reader), options);
    EXPECT_EQ(read_ahead.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(read_ahead.status().message(), HasSubstr("ReadAheadCsvOptions."));
  }
  EXPECT_EQ(ReadAheadCsvReader::Create(nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace riffle::features
