#include "features/csv_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <utility>

#ifdef __x86_64__
#include <immintrin.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "absl/memory/memory.h"
#include "absl/strings/str_format.h"
#include "features/os_error.h"
#include "features/simd_builds.h"

namespace riffle::features {
namespace {

constexpr std::size_t kMaxConfigurableBytes = std::size_t{1} << 30;
constexpr char kUtf8Bom[] = "\xEF\xBB\xBF";

// SWAR ("SIMD within a register") helpers: 8 bytes are tested per step with portable integer
// arithmetic, which is several times faster than a byte loop on long lines.
constexpr std::uint64_t kEveryByte = 0x0101010101010101;
constexpr std::uint64_t kLow7Bits = 0x7F7F7F7F7F7F7F7F;

inline std::uint64_t LoadWord(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof(word));
  // Make byte i of memory bits 8i..8i+7, so countr_zero finds the first match.
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  return word;
}

inline std::uint32_t Load4(const char* p) {
  std::uint32_t word;
  std::memcpy(&word, p, sizeof(word));
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap32(word);
  return word;
}

// The n (1..8) bytes at p in the low bytes of a word (byte i at bits 8i..8i+7), zero above.
// Reads nothing outside [p, p + n): two overlapping loads whose common bytes agree.
inline std::uint64_t LoadShort(const char* p, std::size_t n) {
  if (n >= 4) {
    return Load4(p) | (std::uint64_t{Load4(p + n - 4)} << (8 * (n - 4)));
  }
  return std::uint64_t{static_cast<unsigned char>(p[0])} |
         std::uint64_t{static_cast<unsigned char>(p[n / 2])} << (8 * (n / 2)) |
         std::uint64_t{static_cast<unsigned char>(p[n - 1])} << (8 * (n - 1));
}

// 0x80 in exactly the bytes of `word` equal to the byte repeated in `pattern`, 0 elsewhere.
// (x & 0x7F) + 0x7F sets a byte's top bit iff its low 7 bits are non-zero and never carries
// into the next byte; OR-ing x adds bytes whose top bit is set, so only zero bytes of x stay
// clear.
inline std::uint64_t MatchBytes(std::uint64_t word, std::uint64_t pattern) {
  const std::uint64_t x = word ^ pattern;
  return ~(((x & kLow7Bits) + kLow7Bits) | x | kLow7Bits);
}

// Gathers the top bit of each byte (as MatchBytes sets them): byte i's to bit i. After the
// shift one multiplication moves bit 8i to bit 56+i; its partial products land on distinct
// bits, so nothing carries.
inline std::uint64_t GatherTopBits(std::uint64_t matches) {
  return ((matches >> 7) * 0x0102040810204080) >> 56;
}

std::string DescribeByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7F) return absl::StrFormat("'%c'", c);
  return absl::StrFormat("byte 0x%02X", byte);
}

// The delimiter must not be a byte the grammar itself gives a meaning.
bool IsValidDelimiter(char c) { return c != '"' && c != '\n' && c != '\r'; }

}  // namespace

absl::Status CsvReaderOptions::Validate() const {
  if (!IsValidDelimiter(delimiter)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CsvReaderOptions.delimiter must not be a quote, CR or LF (got %s)",
                        DescribeByte(delimiter)));
  }
  if (buffer_bytes == 0 || buffer_bytes > kMaxConfigurableBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CsvReaderOptions.buffer_bytes must be in [1, %d] (got %d)",
                        kMaxConfigurableBytes, buffer_bytes));
  }
  if (max_record_bytes == 0 || max_record_bytes > kMaxConfigurableBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CsvReaderOptions.max_record_bytes must be in [1, %d] (got %d)",
                        kMaxConfigurableBytes, max_record_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path,
                                                           CsvReaderOptions options) {
  if (path == "-") return FromFd(STDIN_FILENO, /*owns_fd=*/false, "<stdin>", options);
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoError(errno, path, "cannot open");
  return FromFd(fd, /*owns_fd=*/true, path, options);
}

absl::StatusOr<std::unique_ptr<CsvReader>> CsvReader::FromFd(int fd, bool owns_fd, std::string name,
                                                             CsvReaderOptions options) {
  auto fail = [&](absl::Status status) {
    if (owns_fd && fd >= 0) ::close(fd);
    return status;
  };
  if (fd < 0) {
    return fail(
        absl::InvalidArgumentError(absl::StrFormat("%s: invalid file descriptor %d", name, fd)));
  }
  if (absl::Status status = options.Validate(); !status.ok()) return fail(status);
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(ErrnoError(errno, name, "cannot stat"));
  if (S_ISDIR(st.st_mode)) {
    return fail(absl::FailedPreconditionError(
        absl::StrFormat("%s: is a directory, expected a CSV file", name)));
  }
  std::optional<std::uint64_t> size_bytes;
  if (S_ISREG(st.st_mode)) {
    size_bytes = static_cast<std::uint64_t>(st.st_size);
    // Only a hint for the kernel's readahead; failure changes nothing.
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  return absl::WrapUnique(new CsvReader(fd, owns_fd, std::move(name), options, size_bytes));
}

CsvReader::CsvReader(int fd, bool owns_fd, std::string name, const CsvReaderOptions& options,
                     std::optional<std::uint64_t> size_bytes)
    : fd_(fd),
      owns_fd_(owns_fd),
      name_(std::move(name)),
      options_(options),
      size_bytes_(size_bytes),
      buffer_(std::make_unique_for_overwrite<char[]>(options.buffer_bytes)),
      capacity_(options.buffer_bytes) {
  for (const char c : {options.delimiter, '"', '\r', '\n'}) {
    special_[static_cast<unsigned char>(c)] = true;
  }
}

CsvReader::~CsvReader() {
  if (owns_fd_) ::close(fd_);
}

absl::StatusOr<bool> CsvReader::Next(std::vector<std::string_view>* fields) {
  fields->clear();
  quoted_.clear();
  if (!status_.ok()) return status_;

  if (!bom_checked_) {
    while (end_ - pos_ < 3 && !eof_) {
      if (status_ = Fill(); !status_.ok()) return status_;
    }
    if (end_ - pos_ >= 3 && std::memcmp(buffer_.get() + pos_, kUtf8Bom, 3) == 0) pos_ += 3;
    bom_checked_ = true;
  }

  for (;;) {
    if (pos_ == end_) {
      if (eof_) return false;
      if (status_ = Fill(); !status_.ok()) return status_;
      continue;
    }
    // Skip empty lines before parsing, so ParseRecord never sees one.
    const char c = buffer_[pos_];
    if (c == '\n') {
      ++pos_;
      ++next_line_;
      continue;
    }
    if (c == '\r') {
      if (pos_ + 1 == end_) {
        if (!eof_) {
          if (status_ = Fill(); !status_.ok()) return status_;
        } else {
          ++pos_;  // A CR at the very end of input is a truncated CRLF.
        }
        continue;
      }
      if (buffer_[pos_ + 1] == '\n') {
        pos_ += 2;
        ++next_line_;
        continue;
      }
    }

    switch (ParseRecord(fields)) {
      case ParseOutcome::kRecord:
        return true;
      case ParseOutcome::kError:
        fields->clear();
        quoted_.clear();
        return status_;
      case ParseOutcome::kNeedMore:
        // The record straddles the end of the buffer: read more and parse it again from its
        // start. Re-parsing costs at most one record per refill, and keeps the parser free of
        // resumable state.
        fields->clear();
        quoted_.clear();
        if (end_ - pos_ > options_.max_record_bytes) {
          RecordTooLong(buffer_.get() + pos_);
          return status_;
        }
        if (status_ = Fill(); !status_.ok()) return status_;
        break;
    }
  }
}

CsvReader::ParseOutcome CsvReader::ParseRecord(std::vector<std::string_view>* fields) {
  const char* const base = buffer_.get();
  const char* const record = base + pos_;
  const char* const end = base + end_;

  // Every record ends at an LF or at the end of input, so without either there is nothing to
  // parse yet. A line without quotes is a whole record: split it on the fast path.
  const char* const newline = static_cast<const char*>(std::memchr(record, '\n', end - record));
  if (newline == nullptr && !eof_) return ParseOutcome::kNeedMore;
  if (SplitUnquotedLine(record, newline != nullptr ? newline : end, fields)) {
    fields_in_record_ = true;
    return FinishRecord(record, newline != nullptr ? newline + 1 : end, next_line_,
                        newline != nullptr);
  }
  fields->clear();

  // General path: a state machine over quoted and unquoted fields, which may span lines.
  const char delimiter = options_.delimiter;
  std::uint64_t line = next_line_;  // line of the byte being parsed
  std::size_t scratch_used = 0;
  const char* field = record;  // first byte of the current field
  const char* record_end;      // one past the record's terminator
  bool ends_with_lf = false;

  for (;;) {
    std::string_view value;
    const char* next;  // the byte after the field and its delimiter or terminator
    bool last_field = false;

    if (field < end && *field == '"') {
      // Quoted field: find the closing quote, stepping over "" pairs.
      const char* close;
      bool escaped = false;
      for (const char* from = field + 1;;) {
        close = static_cast<const char*>(std::memchr(from, '"', end - from));
        if (close == nullptr) {
          if (!eof_) return ParseOutcome::kNeedMore;
          return SyntaxError(field, line, "quoted field is not terminated before end of input");
        }
        // Whether this quote closes the field depends on the next byte.
        if (close + 1 == end && !eof_) return ParseOutcome::kNeedMore;
        if (close + 1 == end || close[1] != '"') break;
        escaped = true;
        from = close + 2;
      }
      line += static_cast<std::uint64_t>(std::count(field + 1, close, '\n'));
      value = std::string_view(field + 1, close - field - 1);
      if (escaped) {
        if (scratch_capacity_ < capacity_) {
          // Only ever true before the first escaped field of a parse attempt (scratch_used ==
          // 0): capacity_ changes only in Fill(), after which the record is parsed again.
          scratch_ = std::make_unique_for_overwrite<char[]>(capacity_);
          scratch_capacity_ = capacity_;
        }
        char* const out = scratch_.get() + scratch_used;
        char* w = out;
        for (const char* r = value.data(); r < value.data() + value.size(); ++r) {
          *w++ = *r;
          if (*r == '"') ++r;  // inside the field every quote is the first of a "" pair
        }
        value = std::string_view(out, w - out);
        scratch_used += value.size();
      }
      const char* after = close + 1;
      if (after == end) {  // eof_: the last record lacks a line terminator
        next = end;
        last_field = true;
      } else if (*after == delimiter) {
        next = after + 1;
      } else if (*after == '\n') {
        next = after + 1;
        last_field = ends_with_lf = true;
      } else if (*after == '\r' && after + 1 == end) {
        if (!eof_) return ParseOutcome::kNeedMore;
        next = end;
        last_field = true;
      } else if (*after == '\r' && after[1] == '\n') {
        next = after + 2;
        last_field = ends_with_lf = true;
      } else {
        return SyntaxError(after, line,
                           absl::StrFormat("%s after a closing quote; expected the delimiter or "
                                           "end of line",
                                           DescribeByte(*after)));
      }
      fields->push_back(value);
      quoted_.push_back(1);
    } else {
      // Unquoted field: scan to the next special byte. A CR not followed by LF (or end of
      // input) is data, so the scan may resume past it.
      const char* scan = field;
      for (;;) {
        while (scan < end && !special_[static_cast<unsigned char>(*scan)]) ++scan;
        if (scan == end) {
          if (!eof_) return ParseOutcome::kNeedMore;
          next = end;
          last_field = true;
          break;
        }
        const char c = *scan;
        if (c == delimiter) {
          next = scan + 1;
          break;
        }
        if (c == '\n') {
          next = scan + 1;
          last_field = ends_with_lf = true;
          break;
        }
        if (c == '"') {
          return SyntaxError(scan, line,
                             "quote inside an unquoted field; quote the whole field and write "
                             "a literal quote as \"\"");
        }
        // c == '\r'
        if (scan + 1 == end) {
          if (!eof_) return ParseOutcome::kNeedMore;
          next = end;
          last_field = true;
          break;
        }
        if (scan[1] == '\n') {
          next = scan + 2;
          last_field = ends_with_lf = true;
          break;
        }
        ++scan;
      }
      fields->emplace_back(field, scan - field);
      quoted_.push_back(0);
    }

    if (last_field) {
      record_end = next;
      break;
    }
    field = next;
  }
  fields_in_record_ = scratch_used == 0;
  return FinishRecord(record, record_end, line, ends_with_lf);
}

bool CsvReader::SplitUnquotedLine(const char* begin, const char* line_end,
                                  std::vector<std::string_view>* fields) {
  const char* content_end = line_end;
  // The CR of a CRLF, or a CR at the very end of input, as in the general path.
  if (content_end > begin && content_end[-1] == '\r') --content_end;
  const std::uint64_t delimiters = kEveryByte * static_cast<unsigned char>(options_.delimiter);
  const std::uint64_t quotes = kEveryByte * static_cast<unsigned char>('"');
  const char* field = begin;
  std::uint64_t quotes_seen = 0;
  // Chunks of up to 64 bytes: first a bitmap of the chunk's delimiters, 8 bytes per step, then
  // one loop over its set bits. (Looping over each 8-byte word's matches instead mispredicts
  // the loop exit about once per word.)
  for (const char* chunk = begin; chunk < content_end; chunk += 64) {
    const auto length = static_cast<std::size_t>(std::min<std::ptrdiff_t>(64, content_end - chunk));
    std::uint64_t bits = 0;  // bit i set: chunk[i] is a delimiter
    std::size_t i = 0;
#ifdef __SSE2__
    // 16 bytes per step where SSE2 is there (every x86-64): one compare and one movemask per
    // pattern, against the SWAR words' several multiplications.
    const __m128i delimiter_bytes = _mm_set1_epi8(options_.delimiter);
    const __m128i quote_bytes = _mm_set1_epi8('"');
    for (; i + 16 <= length; i += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + i));
      quotes_seen |= static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, quote_bytes)));
      bits |= std::uint64_t{static_cast<unsigned>(
                  _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, delimiter_bytes)))}
              << i;
    }
#endif
    for (; i + 8 <= length; i += 8) {
      const std::uint64_t word = LoadWord(chunk + i);
      quotes_seen |= MatchBytes(word, quotes);
      bits |= GatherTopBits(MatchBytes(word, delimiters)) << i;
    }
    if (i < length) {
      const std::size_t rest = length - i;  // 1..7
      const std::uint64_t word = LoadShort(chunk + i, rest);
      const std::uint64_t used = (std::uint64_t{1} << (8 * rest)) - 1;
      quotes_seen |= MatchBytes(word, quotes) & used;
      bits |= GatherTopBits(MatchBytes(word, delimiters) & used) << i;
    }
    for (; bits != 0; bits &= bits - 1) {
      const char* delimiter = chunk + std::countr_zero(bits);
      fields->emplace_back(field, delimiter - field);
      field = delimiter + 1;
    }
  }
  // A quote anywhere means quoted fields (possibly spanning lines) or an error to report with
  // its position: both are the general path's job.
  if (quotes_seen != 0) return false;
  fields->emplace_back(field, content_end - field);
  quoted_.assign(fields->size(), 0);
  return true;
}

CsvReader::ParseOutcome CsvReader::FinishRecord(const char* record, const char* record_end,
                                                std::uint64_t last_line, bool ends_with_lf) {
  if (static_cast<std::size_t>(record_end - record) > options_.max_record_bytes) {
    return RecordTooLong(record);
  }
  line_ = next_line_;
  next_line_ = last_line + (ends_with_lf ? 1 : 0);
  pos_ = static_cast<std::size_t>(record_end - buffer_.get());
  return ParseOutcome::kRecord;
}

absl::Status CsvReader::Fill() {
  if (pos_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + pos_, end_ - pos_);
    buffer_offset_ += pos_;
    end_ -= pos_;
    pos_ = 0;
  }
  bool grew = false;
  if (end_ == capacity_) {
    // One record fills the whole buffer. Next() has checked it is not yet longer than
    // max_record_bytes, so growing up to max_record_bytes + 1 is enough to decide.
    const std::size_t new_capacity =
        std::max(capacity_ + 1, std::min(2 * capacity_, options_.max_record_bytes + 1));
    auto bigger = std::make_unique_for_overwrite<char[]>(new_capacity);
    std::memcpy(bigger.get(), buffer_.get(), end_);
    buffer_ = std::move(bigger);
    capacity_ = new_capacity;
    grew = true;
  }
  // One read(2) normally, so records from a slow pipe are returned as soon as they are
  // complete. After growing, fill the whole buffer: the record is parsed again from its start
  // after each Fill(), and short pipe reads (64 KiB) would make that quadratic in its length;
  // with the buffer doubling and full, the re-parses of a record of n bytes sum to O(n).
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.get() + end_, capacity_ - end_);
    if (n < 0) {
      if (errno == EINTR) {
        if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
          return absl::CancelledError(absl::StrFormat("%s: reading stopped on request", name_));
        }
        continue;
      }
      return absl::UnavailableError(absl::StrFormat("%s: read failed at byte offset %d: %s", name_,
                                                    buffer_offset_ + end_, ErrnoMessage(errno)));
    }
    if (n == 0) {
      eof_ = true;
      return absl::OkStatus();
    }
    end_ += static_cast<std::size_t>(n);
    if (!grew || end_ == capacity_) return absl::OkStatus();
  }
}

CsvReader::ParseOutcome CsvReader::SyntaxError(const char* at, std::uint64_t line,
                                               std::string_view what) {
  status_ = absl::InvalidArgumentError(
      absl::StrFormat("%s: line %d, byte offset %d: %s", name_, line,
                      buffer_offset_ + static_cast<std::uint64_t>(at - buffer_.get()), what));
  return ParseOutcome::kError;
}

CsvReader::ParseOutcome CsvReader::RecordTooLong(const char* record) {
  return SyntaxError(
      record, next_line_,
      absl::StrFormat("record is longer than max_record_bytes (%d)", options_.max_record_bytes));
}

// SplitCsvRecord: the grammar of CsvReader::ParseRecord's general path on a text that is
// known to be whole, so there is no buffer to refill and no resumable state; a message is one
// record, so the line-splitting fast path would not pay here.
absl::Status SplitCsvRecord(std::string_view text, char delimiter,
                            std::vector<std::string_view>* fields, std::string* scratch) {
  fields->clear();
  if (!IsValidDelimiter(delimiter)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "delimiter must not be a quote, CR or LF (got %s)", DescribeByte(delimiter)));
  }
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  auto error = [begin](const char* at, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrFormat("byte offset %d: %s", at - begin, what));
  };
  // The length of the line terminator at p (LF, CRLF, or a CR that ends the text), 0 if none.
  auto terminator = [end](const char* p) -> std::size_t {
    if (p == end) return 0;
    if (*p == '\n') return 1;
    if (*p == '\r' && p + 1 == end) return 1;
    if (*p == '\r' && p[1] == '\n') return 2;
    return 0;
  };
  if (text.empty() || terminator(begin) != 0) return error(begin, "empty line: no record");

  std::size_t scratch_used = 0;
  const char* field = begin;
  const char* record_end;  // the first byte after the last field
  for (;;) {
    if (field < end && *field == '"') {
      // Quoted field: find the closing quote, stepping over "" pairs.
      const char* close;
      bool escaped = false;
      for (const char* from = field + 1;;) {
        close = static_cast<const char*>(std::memchr(from, '"', end - from));
        if (close == nullptr) return error(field, "quoted field is not terminated");
        if (close + 1 == end || close[1] != '"') break;
        escaped = true;
        from = close + 2;
      }
      std::string_view value(field + 1, close - field - 1);
      if (escaped) {
        // Unescaped fields are never longer than the text, so once grown to it the scratch
        // does not move while views into it are live (it grows before the first one exists).
        if (scratch->size() < text.size()) scratch->resize(text.size());
        char* const out = scratch->data() + scratch_used;
        char* w = out;
        for (const char* r = value.data(); r < value.data() + value.size(); ++r) {
          *w++ = *r;
          if (*r == '"') ++r;  // inside the field every quote is the first of a "" pair
        }
        value = std::string_view(out, w - out);
        scratch_used += value.size();
      }
      fields->push_back(value);
      const char* const after = close + 1;
      if (after < end && *after == delimiter) {
        field = after + 1;
        continue;
      }
      if (after < end && terminator(after) == 0) {
        return error(after, absl::StrFormat("%s after a closing quote; expected the delimiter or "
                                            "end of line",
                                            DescribeByte(*after)));
      }
      record_end = after;
      break;
    }
    // Unquoted field: up to the delimiter or the line end. A CR followed by neither LF nor the
    // end of the text is data, as for CsvReader.
    const char* scan = field;
    while (scan < end && *scan != delimiter && *scan != '"' && terminator(scan) == 0) ++scan;
    if (scan < end && *scan == '"') {
      return error(scan,
                   "quote inside an unquoted field; quote the whole field and write a literal "
                   "quote as \"\"");
    }
    fields->emplace_back(field, scan - field);
    if (scan < end && *scan == delimiter) {
      field = scan + 1;
      continue;
    }
    record_end = scan;
    break;
  }
  const char* const rest = record_end + terminator(record_end);
  if (rest != end) {
    return error(rest, "content after the end of the record (one record was expected)");
  }
  return absl::OkStatus();
}

// ParseNumber. Parsing numbers is most of the cost of reading a numeric CSV, so the most common
// shape, a short plain decimal such as "-12.5", takes a fast path that must agree bit for bit
// with std::from_chars (the property tests check this); everything else, valid or not, is
// decided by std::from_chars itself.
namespace {

// 10^k for the at most 7 fraction digits of a short decimal; exact doubles.
constexpr double kPowersOfTen[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};
// The fast path needs its division rounded to double, not to a wider intermediate.
static_assert(FLT_EVAL_METHOD == 0);

// Whether all 8 bytes are ASCII digits, and their value with byte 0 the most significant digit.
// Both from fast_float (Lemire, "Number parsing at a gigabyte per second", 2021).
inline bool IsEightDigits(std::uint64_t word) {
  return ((word & 0xF0F0F0F0F0F0F0F0) |
          (((word + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) == 0x3333333333333333;
}
inline std::uint64_t ParseEightDigits(std::uint64_t word) {
  constexpr std::uint64_t kMask = 0x000000FF000000FF;
  constexpr std::uint64_t kMul1 = 0x000F424000000064;  // 100 + (1000000 << 32)
  constexpr std::uint64_t kMul2 = 0x0000271000000001;  // 1 + (10000 << 32)
  word -= 0x3030303030303030;
  word = (word * 10) + (word >> 8);  // pairs of digits
  return (((word & kMask) * kMul1) + (((word >> 16) & kMask) * kMul2)) >> 32;
}

// A decimal of the form `digits[.digits]` (no sign, no exponent) in n = 1..8 bytes, as an
// integer mantissa and a count of fraction digits, with no branch per byte: numbers in data
// files vary in length from one field to the next, and per-byte loop exits are mispredicted.
// Returns false for anything else.
[[gnu::always_inline]] inline bool ParseShortDecimal(const char* p, std::size_t n,
                                                     std::uint64_t* mantissa,
                                                     int* fraction_digits) {
  std::uint64_t word = LoadShort(p, n);
  const std::uint64_t used = n == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * n)) - 1;
  const std::uint64_t dots = MatchBytes(word, kEveryByte * '.') & used;
  *fraction_digits = 0;
  if (dots != 0) {
    if ((dots & (dots - 1)) != 0 || n == 1) return false;  // two dots, or "." alone
    // Close the gap: bytes after the dot move down by one.
    const int dot = std::countr_zero(dots) >> 3;
    const std::uint64_t below = (std::uint64_t{1} << (8 * dot)) - 1;
    word = (word & below) | ((word >> 8) & ~below);
    *fraction_digits = static_cast<int>(n) - dot - 1;
    --n;
  }
  // Right-align the n digits (byte 7 the least significant) and pad in front with '0'.
  const unsigned shift = 8 * static_cast<unsigned>(8 - n);  // 0..56
  word = (word << shift) | (0x3030303030303030 & ((std::uint64_t{1} << shift) - 1));
  if (!IsEightDigits(word)) return false;
  *mantissa = ParseEightDigits(word);
  return true;
}

// mantissa / 10^fraction_digits with the sign of `negative`, correctly rounded: mantissa
// (< 10^8) and 10^k (k <= 7) are exact doubles, so one IEEE division rounds the exact quotient
// (Clinger 1990, as fast_float does). The sign is applied without a branch: it is as
// unpredictable as the data.
[[gnu::always_inline]] inline double ShortDecimalValue(std::uint64_t mantissa, int fraction_digits,
                                                       bool negative) {
  double value = static_cast<double>(mantissa);
  if (fraction_digits > 0) value /= kPowersOfTen[fraction_digits];
  return std::bit_cast<double>(std::bit_cast<std::uint64_t>(value) |
                               (std::uint64_t{negative} << 63));
}

// ParseNumberInto for whatever ParseShortDecimal does not take: [first, last) is trimmed and
// has no '+'. std::from_chars (fast_float inside libstdc++ since GCC 12) tries Clinger's path
// itself before the Eisel-Lemire algorithm; a second copy of that path here measured slower.
// Out of line so that the short path's prologue stays light.
ABSL_ATTRIBUTE_NOINLINE bool ParseOtherNumber(const char* first, const char* last,
                                              double* value_out) {
  const auto [ptr, ec] = std::from_chars(first, last, *value_out);
  // ec is result_out_of_range for overflow and underflow; isfinite rejects "nan" and "inf".
  return ec == std::errc() && ptr == last && std::isfinite(*value_out);
}

// ParseNumberInto's body, inlined into both it and ParseNumbersInto.
[[gnu::always_inline]] inline bool ParseNumberInline(std::string_view s, double* value_out) {
  const char* first = s.data();
  const char* last = first + s.size();
  while (first < last && *first == ' ') ++first;
  while (last > first && last[-1] == ' ') --last;
  if (first < last && *first == '+') {
    ++first;
    // from_chars accepts a '-' sign, which must not follow the '+' we stripped.
    if (first < last && *first == '-') return false;
  }
  if (first == last) return false;

  const bool negative = *first == '-';
  const char* const digits = first + (negative ? 1 : 0);
  const auto n = static_cast<std::size_t>(last - digits);
  std::uint64_t mantissa;
  int fraction_digits;
  if (n >= 1 && n <= 8 && ParseShortDecimal(digits, n, &mantissa, &fraction_digits)) {
    *value_out = ShortDecimalValue(mantissa, fraction_digits, negative);
    return true;
  }
  return ParseOtherNumber(first, last, value_out);
}

void ParseNumbersOneByOne(std::span<const std::string_view> fields, double* values) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    double value;
    values[i] =
        ParseNumberInline(fields[i], &value) ? value : std::numeric_limits<double>::quiet_NaN();
  }
}

#ifdef __x86_64__

// What ParseNumbersAvx2 needs of a field in scalar registers: its bytes after the sign and
// their count, or 0 and 8 (which the digit test rejects) if there are none or more than 8; the
// sign.
struct ShortDecimalLane {
  std::int64_t word;
  std::int64_t length;
  std::int64_t sign;  // the sign bit of a double: INT64_MIN for '-', else 0
};

[[gnu::always_inline]] inline ShortDecimalLane PrepareLane(std::string_view field) {
  const char* p = field.data();
  const std::size_t size = field.size();
  const bool negative = size > 0 && p[0] == '-';
  const std::size_t n = size - (negative ? 1 : 0);
  // Spaces, '+' or a second '-' need no test of their own: they fail the digit test.
  const bool plain = n >= 1 && n <= 8;
  return {plain ? static_cast<std::int64_t>(LoadShort(p + (negative ? 1 : 0), n)) : 0,
          plain ? static_cast<std::int64_t>(n) : 8,
          negative ? std::numeric_limits<std::int64_t>::min() : 0};
}

// ParseNumbersInto four fields at a time with AVX2: ParseShortDecimal and ShortDecimalValue in
// the four 64-bit lanes of a vector, the same arithmetic, so the same bits. Per field only the
// sign, the length and the 8-byte load are scalar. A field the lanes do not take (spaces, '+',
// exponents, more than 8 bytes after the sign, not a decimal) is parsed by ParseNumberInline,
// as is every field of a record's last incomplete group of four.
[[gnu::target("avx2")]] void ParseNumbersAvx2(std::span<const std::string_view> fields,
                                              double* values) {
  const __m256i ones = _mm256_set1_epi64x(-1);
  const __m256i low7 = _mm256_set1_epi64x(static_cast<std::int64_t>(kLow7Bits));
  const __m256i dots_pattern = _mm256_set1_epi64x(static_cast<std::int64_t>(kEveryByte * '.'));
  const __m256i zeros_text = _mm256_set1_epi64x(0x3030303030303030);
  const __m256i high_nibbles = _mm256_set1_epi64x(static_cast<std::int64_t>(0xF0F0F0F0F0F0F0F0));
  const __m256i six = _mm256_set1_epi64x(0x0606060606060606);
  const __m256i threes = _mm256_set1_epi64x(0x3333333333333333);
  const __m256i every_byte = _mm256_set1_epi64x(static_cast<std::int64_t>(kEveryByte));
  const __m256i ten_one = _mm256_set1_epi16(0x010A);          // bytes 10, 1: 10 * d0 + d1
  const __m256i hundred_one = _mm256_set1_epi32(0x00010064);  // words 100, 1
  const __m256i ten_thousand = _mm256_set1_epi64x(10000);
  const __m256i two_to_52 = _mm256_set1_epi64x(0x4330000000000000);
  const __m256d low_powers = _mm256_setr_pd(1e0, 1e1, 1e2, 1e3);
  const __m256d high_powers = _mm256_setr_pd(1e4, 1e5, 1e6, 1e7);
  const __m256i zero = _mm256_setzero_si256();

  const std::size_t count = fields.size();
  std::size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    // Built from scalars, not arrays: four narrow stores read back as one vector would not be
    // forwarded from the store buffer and stall.
    const ShortDecimalLane a = PrepareLane(fields[i]);
    const ShortDecimalLane b = PrepareLane(fields[i + 1]);
    const ShortDecimalLane c = PrepareLane(fields[i + 2]);
    const ShortDecimalLane d = PrepareLane(fields[i + 3]);
    __m256i w = _mm256_set_epi64x(d.word, c.word, b.word, a.word);
    const __m256i n = _mm256_set_epi64x(d.length, c.length, b.length, a.length);
    const __m256i negative = _mm256_set_epi64x(d.sign, c.sign, b.sign, a.sign);

    // The bytes in use, and the dots among them (MatchBytes).
    const __m256i used = _mm256_xor_si256(_mm256_sllv_epi64(ones, _mm256_slli_epi64(n, 3)), ones);
    const __m256i x = _mm256_xor_si256(w, dots_pattern);
    const __m256i dots = _mm256_andnot_si256(
        _mm256_or_si256(_mm256_or_si256(_mm256_add_epi64(_mm256_and_si256(x, low7), low7), x),
                        low7),
        used);
    const __m256i one_dot_at_most =
        _mm256_cmpeq_epi64(_mm256_and_si256(dots, _mm256_add_epi64(dots, ones)), zero);
    const __m256i has_dot = _mm256_xor_si256(_mm256_cmpeq_epi64(dots, zero), ones);
    // Close the gap: bytes after the dot move down by one (below is all ones without a dot).
    const __m256i below = _mm256_add_epi64(_mm256_srli_epi64(dots, 7), ones);
    w = _mm256_or_si256(_mm256_and_si256(w, below),
                        _mm256_andnot_si256(below, _mm256_srli_epi64(w, 8)));
    // Fraction digits: the bytes in use from the dot on, less the dot.
    const __m256i from_dot = _mm256_andnot_si256(below, used);
    const __m256i fraction_digits =
        _mm256_add_epi64(_mm256_sad_epu8(_mm256_and_si256(from_dot, every_byte), zero), has_dot);
    const __m256i digits = _mm256_add_epi64(n, has_dot);  // n - 1 with a dot
    // Right-align the digits and pad in front with '0' (a shift by 64 gives 0 in a lane).
    const __m256i shift = _mm256_slli_epi64(_mm256_sub_epi64(_mm256_set1_epi64x(8), digits), 3);
    w = _mm256_or_si256(_mm256_sllv_epi64(w, shift),
                        _mm256_andnot_si256(_mm256_sllv_epi64(ones, shift), zeros_text));
    // IsEightDigits, and at least one digit.
    const __m256i is_digits = _mm256_cmpeq_epi64(
        _mm256_or_si256(
            _mm256_and_si256(w, high_nibbles),
            _mm256_srli_epi64(_mm256_and_si256(_mm256_add_epi64(w, six), high_nibbles), 4)),
        threes);
    const __m256i ok = _mm256_and_si256(_mm256_and_si256(is_digits, one_dot_at_most),
                                        _mm256_cmpgt_epi64(digits, zero));
    // ParseEightDigits: pairs, then groups of four, then lo * 10^4 + hi, exactly.
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sub_epi8(w, zeros_text), ten_one);
    const __m256i quads = _mm256_madd_epi16(pairs, hundred_one);
    const __m256i mantissa =
        _mm256_add_epi64(_mm256_mul_epu32(quads, ten_thousand), _mm256_srli_epi64(quads, 32));
    // To double (exact below 2^52), divided by 10^fraction_digits, with the sign.
    const __m256d value = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(mantissa, two_to_52)),
                                        _mm256_castsi256_pd(two_to_52));
    const __m256i pick =
        _mm256_slli_epi64(_mm256_and_si256(fraction_digits, _mm256_set1_epi64x(3)), 1);
    const __m256i pair_index =
        _mm256_or_si256(pick, _mm256_slli_epi64(_mm256_add_epi64(pick, _mm256_set1_epi64x(1)), 32));
    const __m256d low = _mm256_castsi256_pd(
        _mm256_permutevar8x32_epi32(_mm256_castpd_si256(low_powers), pair_index));
    const __m256d high = _mm256_castsi256_pd(
        _mm256_permutevar8x32_epi32(_mm256_castpd_si256(high_powers), pair_index));
    const __m256d power = _mm256_blendv_pd(
        low, high, _mm256_castsi256_pd(_mm256_cmpgt_epi64(fraction_digits, _mm256_set1_epi64x(3))));
    const __m256d result = _mm256_or_pd(_mm256_div_pd(value, power), _mm256_castsi256_pd(negative));
    _mm256_storeu_pd(values + i, result);
    const int lanes_ok = _mm256_movemask_pd(_mm256_castsi256_pd(ok));
    if (lanes_ok != 0xF) {
      for (int k = 0; k < 4; ++k) {
        if ((lanes_ok & (1 << k)) == 0)
          ParseNumbersOneByOne(fields.subspan(i + k, 1), values + i + k);
      }
    }
  }
  ParseNumbersOneByOne(fields.subspan(i), values + i);
}

#endif  // __x86_64__

}  // namespace

namespace csv_internal {

bool ParseNumberInto(std::string_view s, double* value_out) {
  return ParseNumberInline(s, value_out);
}

void ParseNumbersInto(std::span<const std::string_view> fields, double* values) {
#ifdef __x86_64__
  if (UseAvx2()) {
    ParseNumbersAvx2(fields, values);
    return;
  }
#endif
  ParseNumbersOneByOne(fields, values);
}

}  // namespace csv_internal

}  // namespace riffle::features
