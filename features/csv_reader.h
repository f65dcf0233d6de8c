#ifndef RIFFLE_FEATURES_CSV_READER_H_
#define RIFFLE_FEATURES_CSV_READER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace riffle::features {

struct CsvReaderOptions {
  // Field separator. Any single byte except '"', '\n' and '\r'.
  char delimiter = ',';
  // Size of the read(2) block, and the initial size of the reader's buffer. The buffer grows
  // (doubling) only when one record does not fit. 1 .. 1 GiB.
  std::size_t buffer_bytes = std::size_t{1} << 20;
  // Longest accepted record, counted in raw bytes including its quotes and its line terminator.
  // Longer records are an InvalidArgument error. Bounds the reader's memory to about twice this
  // (buffer plus unescape scratch). 1 .. 1 GiB.
  std::size_t max_record_bytes = std::size_t{16} << 20;
  // Optional stop flag (owned by the caller, e.g. set by a SIGINT handler). When a blocking
  // read is interrupted by a signal and the flag is set, Next() returns Cancelled instead of
  // waiting for more input, so a reader of a quiet pipe can stop promptly.
  const std::atomic<bool>* cancel = nullptr;

  // InvalidArgument naming the offending field.
  absl::Status Validate() const;
};

// A streaming reader of RFC 4180 CSV. It returns records (vectors of fields); it knows nothing
// of headers or column types: the caller treats the first record as the header if it has one.
//
// Format accepted:
//   * Fields are separated by `delimiter`. A field may be enclosed in double quotes; inside
//     quotes, "" is a literal quote and the delimiter, CR and LF are ordinary data.
//   * A record ends with LF or CRLF; the last record may lack a line terminator. A CR that is
//     followed by neither LF nor the end of input is ordinary data in an unquoted field.
//   * A completely empty line (LF or CRLF alone) is skipped and returns no record, so "a\n\nb\n"
//     is two records. A line holding only "" is a record with one empty field.
//   * A UTF-8 byte order mark (EF BB BF) at the start of the input is skipped. Bytes are
//     otherwise passed through untouched; no encoding is checked.
//
// Errors: malformed input is InvalidArgument with a message naming the input, the 1-based line
// and the 0-based byte offset (counted from the start of the input, BOM included) of the
// offending byte: an unterminated quoted field at end of input (the position of its opening
// quote), a quote inside an unquoted field, a byte other than the delimiter or a line
// terminator after a closing quote, or a record longer than max_record_bytes (the position of
// the record's start). OS errors are Unavailable with the name and strerror. After an error
// every later Next() returns the same error.
//
// Performance: input is read with read(2) in buffer_bytes blocks; fields are string_views into
// that buffer, so reading does no per-field or per-record allocation once `fields` has
// reached its capacity. Only quoted fields holding "" escapes are copied, unescaped, into a
// scratch area owned by the reader. Lines without quotes (typical numeric data) are split 8
// bytes at a time; others go through a general state machine. A record straddling the end of
// the buffer is moved to the front (the buffer doubles if the record fills it) and parsed
// again from its start.
//
// Thread-safety: none; one reader belongs to one thread at a time.
class CsvReader {
 public:
  // Opens `path` for reading; "-" means standard input (not closed by the reader). NotFound if
  // the file does not exist, FailedPrecondition if it is a directory, PermissionDenied if it may
  // not be read, InvalidArgument if `options` are invalid.
  static absl::StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path,
                                                         CsvReaderOptions options = {});

  // Reads from an already open file descriptor (a pipe, a socket, stdin). If `owns_fd`, the
  // reader closes `fd` when destroyed, and also when this function fails. `name` is used in
  // error messages only. FailedPrecondition if `fd` is a directory.
  static absl::StatusOr<std::unique_ptr<CsvReader>> FromFd(int fd, bool owns_fd, std::string name,
                                                           CsvReaderOptions options = {});

  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;
  ~CsvReader();

  // Reads the next record into *fields (cleared first; its capacity is reused). The views point
  // into the reader's buffers and stay valid until the next call to Next() or the reader's
  // destruction. Returns true if a record was read, false at the clean end of input (and on
  // every later call), or an error as described above.
  absl::StatusOr<bool> Next(std::vector<std::string_view>* fields);

  // Whether field `i` of the last record was enclosed in quotes (so the caller can tell ""
  // from an empty unquoted field, e.g. to treat only the latter as missing). Requires
  // i < fields->size() of the last successful Next().
  bool quoted(std::size_t i) const { return quoted_[i] != 0; }

  // Whether every field of the last record is a view of that record's own bytes, in order, so
  // that the record can be copied as one stretch: false when a field held an escaped quote
  // (""), whose unescaped copy lives elsewhere. Requires a successful Next().
  bool fields_in_record() const { return fields_in_record_; }

  // 1-based line number on which the last record returned by Next() started. A record with
  // quoted line breaks spans several lines; the next record's line accounts for them.
  std::uint64_t line() const { return line_; }

  // Bytes of input consumed so far: the offset just past the last record returned (and any
  // empty lines before it). Equals size_bytes() once Next() has returned false.
  std::uint64_t bytes_read() const { return buffer_offset_ + pos_; }

  // Size of the input if it is a regular file (for progress reporting); nullopt for pipes,
  // terminals and sockets.
  std::optional<std::uint64_t> size_bytes() const { return size_bytes_; }

  // The path given to Open(), "<stdin>" for "-", or the name given to FromFd().
  const std::string& name() const { return name_; }

 private:
  enum class ParseOutcome { kRecord, kNeedMore, kError };

  CsvReader(int fd, bool owns_fd, std::string name, const CsvReaderOptions& options,
            std::optional<std::uint64_t> size_bytes);

  // Parses one record starting at pos_ (which is not at an empty line). On kRecord, advances
  // pos_ past the record and its terminator. On kNeedMore the record runs past end_ and more
  // input must be read; fields are left partially filled. On kError, sets status_.
  ParseOutcome ParseRecord(std::vector<std::string_view>* fields);

  // If [begin, line_end) holds no quote, appends its fields (dropping one trailing CR) and
  // returns true. Otherwise returns false, leaving *fields partially filled.
  bool SplitUnquotedLine(const char* begin, const char* line_end,
                         std::vector<std::string_view>* fields);

  // Completes a record spanning [record, record_end), terminator included, whose last byte is
  // on line `last_line`: checks max_record_bytes and advances pos_ and the line counters.
  ParseOutcome FinishRecord(const char* record, const char* record_end, std::uint64_t last_line,
                            bool ends_with_lf);

  // Moves the unconsumed bytes [pos_, end_) to the front of the buffer, grows the buffer if they
  // fill it, and reads: one read(2), or after growing as many as fill the buffer. Sets eof_ when
  // read(2) returns 0.
  absl::Status Fill();

  // Sets status_ to an InvalidArgument error at the buffer position `at` and returns
  // kError.
  ParseOutcome SyntaxError(const char* at, std::uint64_t line, std::string_view what);

  // The max_record_bytes error for the record starting at `record` (on line next_line_).
  ParseOutcome RecordTooLong(const char* record);

  int fd_;
  bool owns_fd_;
  std::string name_;
  CsvReaderOptions options_;
  std::optional<std::uint64_t> size_bytes_;

  // Bytes that stop the scan of an unquoted field: the delimiter, '"', '\r' and '\n'.
  bool special_[256] = {};

  // buffer_[0, end_) holds input; [0, pos_) has been consumed. buffer_[0] is at input offset
  // buffer_offset_.
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::uint64_t buffer_offset_ = 0;
  bool eof_ = false;
  bool bom_checked_ = false;

  // Unescaped copies of quoted fields holding "". Sized to capacity_ when first needed: the
  // unescaped fields of one record are never longer than the record, which fits in the buffer,
  // so the area never reallocates while views into it are live.
  std::unique_ptr<char[]> scratch_;
  std::size_t scratch_capacity_ = 0;

  std::vector<std::uint8_t> quoted_;  // parallel to the last record's fields
  bool fields_in_record_ = false;     // see fields_in_record()
  std::uint64_t next_line_ = 1;       // line number at pos_
  std::uint64_t line_ = 0;            // line on which the last record started
  absl::Status status_;               // sticky error
};

// Splits `text`, one CSV record given whole (a Kafka message value, one line), into *fields
// (cleared first; its capacity is reused), in CsvReader's format: fields separated by
// `delimiter`, RFC 4180 quoting ("" is a literal quote; the delimiter, CR and LF are data
// inside quotes), and at most one line terminator at the end (LF, CRLF, or a lone CR as a
// truncated CRLF). Unlike CsvReader it skips neither a byte order mark nor empty lines: the
// text must be exactly one record. The views point into `text`, or for a quoted field holding
// "" into *scratch (whose contents are replaced); they stay valid while neither is changed.
//
// InvalidArgument, with the 0-based byte offset of the offending byte, for: a delimiter that
// CsvReaderOptions would refuse; an empty text or a line terminator alone (no record); a
// quoted field not terminated before the end; a quote inside an unquoted field; a byte other
// than the delimiter or the line end after a closing quote; anything after the line
// terminator (a second record, or an empty line). Allocation-free once *fields and *scratch
// have grown to the largest record seen.
absl::Status SplitCsvRecord(std::string_view text, char delimiter,
                            std::vector<std::string_view>* fields, std::string* scratch);

namespace csv_internal {
// ParseNumber's implementation: false where ParseNumber returns nullopt, leaving *value
// unspecified. It returns bool rather than std::optional<double> because GCC returns the
// optional through memory, as a byte store read back by a wider load, which defeats store
// forwarding on the hot path; the inline wrapper below keeps the caller's optional in registers.
bool ParseNumberInto(std::string_view s, double* value);
// values[i] = ParseNumber(fields[i]), or NaN where that is nullopt, for every i: one call per
// record rather than per field lets the short-decimal path be inlined into the loop.
void ParseNumbersInto(std::span<const std::string_view> fields, double* values);
}  // namespace csv_internal

// Parses a decimal floating-point number as std::from_chars(double) does (general format:
// "1", "-2.5", ".5", "1.", "3e-2"), additionally allowing a leading '+' and surrounding ASCII
// spaces (' '). Returns nullopt for an empty or all-space string, trailing garbage, "nan",
// "inf" and "infinity" in any case, and values out of double's range: overflow such as 1e999
// and, as std::from_chars reports it out of range too, underflow to zero such as 1e-400
// (subnormals such as 5e-324 are accepted). Allocation-free; meant for per-field use.
inline std::optional<double> ParseNumber(std::string_view s) {
  double value;
  if (!csv_internal::ParseNumberInto(s, &value)) return std::nullopt;
  return value;
}

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_CSV_READER_H_
