#ifndef RIFFLE_FEATURES_READ_AHEAD_CSV_H_
#define RIFFLE_FEATURES_READ_AHEAD_CSV_H_

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/csv_reader.h"

namespace riffle::features {

struct ReadAheadCsvOptions {
  // Records handed over from the reading thread at a time. Larger batches cost fewer lock
  // round trips; smaller ones let the caller start sooner (it waits for half of `batches`
  // batches, or the end of the input, whenever it finds none ready). 1 .. 65536.
  std::size_t batch_records = 512;
  // A batch also ends once it takes this many bytes (the records' bytes plus 16 bytes of
  // view and, with parse_numbers, 8 of number per field, so that empty fields count too), so
  // that a file of long or wide records does not make batches of megabytes. 1 .. 1 GiB.
  std::size_t batch_bytes = std::size_t{1} << 20;
  // Batches read ahead of the caller: the memory bound, about batches * batch_bytes (plus one
  // record, which may be longer). 2 .. 1024.
  std::size_t batches = 8;
  // Whether fields are parsed as numbers here (see numbers()): the reading thread parses the
  // first fields of each record and Next() the rest, on the caller's thread.
  bool parse_numbers = true;
  // With parse_numbers: how many leading fields of each record the reading thread parses at
  // first (all by default), and whether that number then follows whichever thread waits for
  // the other (see ParseSplit).
  std::size_t reader_parsed_fields = static_cast<std::size_t>(-1);
  bool balance_parsing = true;

  // InvalidArgument naming the offending field.
  absl::Status Validate() const;
};

// A CsvReader whose reading, splitting and number parsing run on a second thread, so that the
// caller's thread (e.g. `riffle eval`'s model step) spends its time on the model. Records come
// out in input order, exactly as CsvReader::Next gives them, errors included: the records
// before an error first, then the error, then the same error on every later call.
//
// The thread runs only when the input is a regular file. A pipe, terminal or socket is read
// on the caller's thread inside Next(), as a plain CsvReader: reading one may block for as
// long as the writer waits, and only the caller's thread is interrupted by a stop request
// (CsvReaderOptions::cancel), so a thread blocked in read(2) could not be stopped.
//
// Thread-safety: one caller thread at a time, like CsvReader. The destructor stops and joins
// the reading thread.
class ReadAheadCsvReader {
 public:
  // Takes over `reader` (not yet read from) and starts the reading thread if the input is a
  // regular file. InvalidArgument if `options` are invalid.
  static absl::StatusOr<std::unique_ptr<ReadAheadCsvReader>> Create(
      std::unique_ptr<CsvReader> reader, ReadAheadCsvOptions options = {});

  ReadAheadCsvReader(const ReadAheadCsvReader&) = delete;
  ReadAheadCsvReader& operator=(const ReadAheadCsvReader&) = delete;
  ~ReadAheadCsvReader();

  // As CsvReader::Next: the next record's fields in *fields, valid until the next call. The
  // views were made by the reading thread: the caller reads only the fields it uses.
  absl::StatusOr<bool> Next(std::span<const std::string_view>* fields);
  // The same, copied into *fields.
  absl::StatusOr<bool> Next(std::vector<std::string_view>* fields);

  // The last record's fields parsed as numbers: numbers()[i] is ParseNumber(field i), or NaN
  // where ParseNumber gives nullopt (ParseNumber never gives NaN). Empty when the reading is
  // not threaded or options.parse_numbers is false: the caller parses itself then.
  std::span<const double> numbers() const { return numbers_; }

  // As CsvReader's accessors, for the last record returned by Next(); after the end or an
  // error, for where the reader stopped, as CsvReader gives them then.
  std::uint64_t line() const { return line_; }
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::optional<std::uint64_t> size_bytes() const { return size_bytes_; }
  const std::string& name() const { return name_; }

  // Whether a second thread reads (the input is a regular file).
  bool threaded() const { return thread_.joinable(); }

  // How many leading fields of each record the reading thread parses, the rest being parsed
  // by Next() on the caller's thread. The two threads form a pipeline that runs at the pace of
  // the slower one, and number parsing is most of the reading thread's work, so moving some of
  // it to the caller balances them when the caller has time to spare (e.g. `riffle eval` with a
  // cheap model), and moving it back when it has not. Starts with every field by default
  // (options.reader_parsed_fields). Adjusted
  // once per batch from who waited since the last one: only the caller (the reading thread is
  // the bottleneck): one field fewer; only the reading thread: one more. Results do not depend
  // on the split: both threads call the same parser.
  class ParseSplit {
   public:
    explicit ParseSplit(std::size_t reader_fields) : reader_fields_(reader_fields) {}
    // `widest`: the most fields a record had so far; the split never exceeds it, so that a
    // move back towards the caller takes effect at once.
    void Update(bool caller_waited, bool reader_waited, std::size_t widest);
    std::size_t reader_fields() const { return reader_fields_; }

   private:
    std::size_t reader_fields_;
  };

  // Records read ahead, their bytes copied out of the reader's buffer (which the next read
  // reuses). Field f of the batch is views[f], a view of `bytes` made by the reading thread,
  // which has the field in its cache and time to spare (the caller's thread is `riffle eval`'s
  // bottleneck); the caller gets a record as a span of them and reads only the fields it uses.
  // A record whose fields lie in order in one stretch of the reader's buffer (any record
  // without an escaped quote) is copied as that one stretch, delimiters included; others field
  // by field.
  //
  // Public for tests (ReserveBytes); not part of the reader's interface.
  struct Batch {
    // Neither copied nor moved: its views point into `bytes`, whose characters live inside the
    // string object while they are few. (Not reserved on the heap up front either: starting at
    // 4 KiB, the buffers of a full batch grew past malloc's mmap threshold, every batch's came
    // back page-aligned, and `riffle eval` ran 3% slower.)
    Batch() = default;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    std::string bytes;  // grows only through ReserveBytes, which keeps `views` pointing into it
    // Per field, the first `fields` entries; the vectors only grow (Clear keeps them).
    std::size_t fields = 0;
    std::vector<std::string_view> views;
    std::vector<double> numbers;              // if options.parse_numbers
    std::vector<std::uint32_t> record_begin;  // first field of each record, plus the end
    std::size_t parsed_fields = 0;            // of each record, by the reading thread
    std::vector<std::uint64_t> lines;         // per record
    std::vector<std::uint64_t> bytes_read;    // per record
    absl::Status status;                      // the error after the records, if any
    bool end = false;                         // the input ended after the records
    std::uint64_t stop_line = 0;              // with end or status: the reader's line()
    std::uint64_t stop_bytes_read = 0;        // and bytes_read() then

    void Clear();
    // Makes room in `bytes` for `more` bytes. If it must move them, it moves the views of the
    // batch's fields along, so that appending up to `more` bytes leaves every view valid.
    void ReserveBytes(std::size_t more);
    std::size_t records() const { return record_begin.empty() ? 0 : record_begin.size() - 1; }
  };

 private:
  // What the two threads' state is kept apart by (std::hardware_destructive_interference_size
  // is 64 on x86-64 too, but g++ warns that it may differ between builds).
  static constexpr std::size_t kCacheLine = 64;
  // How many records ahead Next() prefetches a record's bytes; twice as far, its views and
  // numbers.
  static constexpr std::size_t kPrefetchRecords = 4;

  ReadAheadCsvReader(std::unique_ptr<CsvReader> reader, ReadAheadCsvOptions options);
  // The reading thread: fills free batches until the input ends, an error, or the destructor.
  // Runs out of memory like any allocation (std::terminate: it is not the caller's thread).
  void ReadLoop();
  // Reads records into *batch until it is full, the input ends or an error.
  void Fill(Batch* batch, std::vector<std::string_view>* fields);

  std::unique_ptr<CsvReader> reader_;  // used only by the reading thread once it runs
  const ReadAheadCsvOptions options_;
  const std::string name_;
  const std::optional<std::uint64_t> size_bytes_;

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built for ThreadSanitizer, which
  // then cannot see the hand-off inside absl::Mutex::Await.
  std::mutex mu_;
  std::condition_variable full_cv_;           // full_ gained a batch
  std::condition_variable free_cv_;           // free_ gained a batch, or stopping_
  std::deque<std::unique_ptr<Batch>> full_;   // guarded by mu_
  std::vector<std::unique_ptr<Batch>> free_;  // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
  bool reader_done_ = false;                  // guarded by mu_: the last batch is in full_
  // A thread that finds no batch to work on sleeps until this many are ready for it (or the
  // input ended), rather than until one is: each sleep and wake-up costs both threads a
  // system call and, on a virtual machine, tens of microseconds. With a caller slower than the
  // reading thread, that thread slept and woke once per batch or two, 700-1,300 times per 10^6
  // rows of `riffle eval`; waking at half the batches made it 40-100 times. Half of
  // options.batches, at least 1.
  const std::size_t resume_batches_ = std::max<std::size_t>(1, options_.batches / 2);
  std::uint64_t caller_waits_ = 0;  // guarded by mu_: Next() found no batch ready
  std::thread thread_;

  // The reading thread's side: its share of number parsing and what it has seen. Each side's
  // state starts a cache line of its own: the reading thread updates widest_record_ per record
  // and the caller its cursor, and sharing a line made each wait for the other core (false
  // sharing: a quarter of both threads' time in `riffle eval`).
  alignas(kCacheLine) ParseSplit split_{options_.reader_parsed_fields};
  std::uint64_t caller_waits_seen_ = 0;
  std::size_t widest_record_ = 0;

  // The caller's side: the batch being handed out and the next record in it.
  alignas(kCacheLine) std::unique_ptr<Batch> current_;
  std::size_t next_record_ = 0;
  std::span<const double> numbers_;
  std::vector<std::string_view> unthreaded_fields_;  // the record, when not threaded
  std::uint64_t line_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_READ_AHEAD_CSV_H_
