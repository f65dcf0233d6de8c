#include "features/read_ahead_csv.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <span>
#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"

namespace riffle::features {

absl::Status ReadAheadCsvOptions::Validate() const {
  if (batch_records < 1 || batch_records > (std::size_t{1} << 16)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ReadAheadCsvOptions.batch_records must be in [1, 65536] (got %d)", batch_records));
  }
  if (batch_bytes < 1 || batch_bytes > (std::size_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ReadAheadCsvOptions.batch_bytes must be in [1, %d] (got %d)",
                        std::size_t{1} << 30, batch_bytes));
  }
  if (batches < 2 || batches > 1024) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ReadAheadCsvOptions.batches must be in [2, 1024] (got %d)", batches));
  }
  return absl::OkStatus();
}

void ReadAheadCsvReader::Batch::Clear() {
  bytes.clear();
  fields = 0;
  record_begin.clear();
  lines.clear();
  bytes_read.clear();
  status = absl::OkStatus();
  end = false;
}

void ReadAheadCsvReader::Batch::ReserveBytes(std::size_t more) {
  if (bytes.size() + more <= bytes.capacity()) return;
  std::string grown;
  grown.reserve(std::max(bytes.size() + more, 2 * bytes.capacity()));
  grown.append(bytes);
  for (std::size_t f = 0; f < fields; ++f) {
    views[f] = std::string_view(grown.data() + (views[f].data() - bytes.data()), views[f].size());
  }
  bytes.swap(grown);
}

absl::StatusOr<std::unique_ptr<ReadAheadCsvReader>> ReadAheadCsvReader::Create(
    std::unique_ptr<CsvReader> reader, ReadAheadCsvOptions options) {
  if (reader == nullptr) return absl::InvalidArgumentError("ReadAheadCsvReader: no reader");
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto read_ahead =
      std::unique_ptr<ReadAheadCsvReader>(new ReadAheadCsvReader(std::move(reader), options));
  if (read_ahead->size_bytes_.has_value()) {
    read_ahead->thread_ = std::thread([raw = read_ahead.get()] { raw->ReadLoop(); });
  }
  return read_ahead;
}

ReadAheadCsvReader::ReadAheadCsvReader(std::unique_ptr<CsvReader> reader,
                                       ReadAheadCsvOptions options)
    : reader_(std::move(reader)),
      options_(options),
      name_(reader_->name()),
      size_bytes_(reader_->size_bytes()) {
  for (std::size_t b = 0; b < options_.batches; ++b) free_.push_back(std::make_unique<Batch>());
}

ReadAheadCsvReader::~ReadAheadCsvReader() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  free_cv_.notify_one();
  thread_.join();
}

void ReadAheadCsvReader::ReadLoop() {
  std::vector<std::string_view> fields;
  while (true) {
    std::unique_ptr<Batch> batch;
    bool reader_waited = false;
    bool caller_waited = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      reader_waited = free_.empty();
      // Once out of batches, wait for half of them (see resume_batches_).
      if (reader_waited) {
        free_cv_.wait(lock, [this] { return stopping_ || free_.size() >= resume_batches_; });
      }
      if (stopping_) return;
      batch = std::move(free_.back());
      free_.pop_back();
      caller_waited = caller_waits_ != caller_waits_seen_;
      caller_waits_seen_ = caller_waits_;
    }
    if (options_.parse_numbers && options_.balance_parsing) {
      split_.Update(caller_waited, reader_waited, widest_record_);
    }
    Fill(batch.get(), &fields);
    const bool last = batch->end || !batch->status.ok();
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      full_.push_back(std::move(batch));
      reader_done_ = last;
      wake = last || full_.size() >= resume_batches_;
    }
    if (wake) full_cv_.notify_one();
    if (last) return;
  }
}

namespace {

// Whether `fields` lie in order, without overlap, in [fields.front().data(), end of the last).
[[maybe_unused]] bool InOneStretch(std::span<const std::string_view> fields) {
  if (fields.empty() || fields.front().data() == nullptr) return false;
  const char* at = fields.front().data();
  const char* const end = fields.back().data() + fields.back().size();
  for (const std::string_view field : fields) {
    if (field.data() < at || field.data() + field.size() > end) return false;
    at = field.data() + field.size();
  }
  return true;
}

}  // namespace

void ReadAheadCsvReader::ParseSplit::Update(bool caller_waited, bool reader_waited,
                                            std::size_t widest) {
  if (widest == 0) return;  // no record yet
  reader_fields_ = std::min(reader_fields_, widest);
  if (caller_waited && !reader_waited && reader_fields_ > 0) --reader_fields_;
  if (reader_waited && !caller_waited && reader_fields_ < widest) ++reader_fields_;
}

void ReadAheadCsvReader::Fill(Batch* batch, std::vector<std::string_view>* fields) {
  batch->Clear();
  batch->parsed_fields = options_.parse_numbers ? split_.reader_fields() : 0;
  batch->record_begin.push_back(0);
  const std::size_t per_field =
      sizeof(std::string_view) + (options_.parse_numbers ? sizeof(double) : 0);
  // Bytes plus per-field overhead below batch_bytes (<= 1 GiB) also keeps the field count,
  // which record_begin holds in 32 bits, far from 2^32, plus one record of at most
  // max_record_bytes (<= 1 GiB).
  while (batch->records() < options_.batch_records &&
         batch->bytes.size() + batch->fields * per_field < options_.batch_bytes) {
    absl::StatusOr<bool> got = reader_->Next(fields);
    if (!got.ok() || !*got) {
      if (!got.ok()) batch->status = got.status();
      batch->end = got.ok();
      batch->stop_line = reader_->line();
      batch->stop_bytes_read = reader_->bytes_read();
      return;
    }
    // The per-field arrays only grow (Clear keeps them) and are written through pointers:
    // push_back stored each vector's end back to memory per field, a chain of dependent
    // loads and stores, and resizing per record zeroed the slots first.
    const std::size_t n = fields->size();
    const std::size_t first = batch->fields;
    const std::size_t total = first + n;
    if (batch->views.size() < total) {
      const std::size_t size = std::max(total, 2 * batch->views.size());
      batch->views.resize(size);
      if (options_.parse_numbers) batch->numbers.resize(size);
    }
    std::string_view* const views = batch->views.data() + first;
    if (reader_->fields_in_record() && !fields->empty()) {
      assert(InOneStretch(*fields));
      const char* const from = fields->front().data();
      const char* const to = fields->back().data() + fields->back().size();
      batch->ReserveBytes(static_cast<std::size_t>(to - from));
      const char* const base = batch->bytes.data() + batch->bytes.size();
      batch->bytes.append(from, to);
      for (std::size_t k = 0; k < n; ++k) {
        const std::string_view field = (*fields)[k];
        views[k] = std::string_view(base + (field.data() - from), field.size());
      }
    } else {
      std::size_t size = 0;
      for (const std::string_view field : *fields) size += field.size();
      batch->ReserveBytes(size);
      for (std::size_t k = 0; k < n; ++k) {
        views[k] = std::string_view(batch->bytes.data() + batch->bytes.size(), (*fields)[k].size());
        batch->bytes.append((*fields)[k]);
      }
    }
    batch->fields = total;
    widest_record_ = std::max(widest_record_, n);
    if (options_.parse_numbers) {
      // The first fields here, the rest by Next(), on the caller's thread.
      const std::size_t parsed = std::min(n, batch->parsed_fields);
      csv_internal::ParseNumbersInto(std::span<const std::string_view>(*fields).first(parsed),
                                     batch->numbers.data() + first);
    }
    batch->record_begin.push_back(static_cast<std::uint32_t>(total));
    batch->lines.push_back(reader_->line());
    batch->bytes_read.push_back(reader_->bytes_read());
  }
}

absl::StatusOr<bool> ReadAheadCsvReader::Next(std::vector<std::string_view>* fields) {
  std::span<const std::string_view> record;
  absl::StatusOr<bool> got = Next(&record);
  fields->assign(record.begin(), record.end());
  return got;
}

absl::StatusOr<bool> ReadAheadCsvReader::Next(std::span<const std::string_view>* fields) {
  if (!threaded()) {
    unthreaded_fields_.clear();
    absl::StatusOr<bool> got = reader_->Next(&unthreaded_fields_);
    *fields = unthreaded_fields_;
    line_ = reader_->line();
    bytes_read_ = reader_->bytes_read();
    return got;
  }
  while (current_ == nullptr || next_record_ == current_->records()) {
    if (current_ != nullptr) {
      // The last batch stays current, so every later call gives the same answer.
      *fields = {};
      numbers_ = {};
      line_ = current_->stop_line;
      bytes_read_ = current_->stop_bytes_read;
      if (!current_->status.ok()) return current_->status;
      if (current_->end) return false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (current_ != nullptr) {
      free_.push_back(std::move(current_));
      if (free_.size() >= resume_batches_) free_cv_.notify_one();
    }
    if (full_.empty()) {
      // Wait for half of the batches, or the last one (see resume_batches_).
      ++caller_waits_;
      full_cv_.wait(lock, [this] { return reader_done_ || full_.size() >= resume_batches_; });
    }
    current_ = std::move(full_.front());
    full_.pop_front();
    next_record_ = 0;
  }
  Batch& batch = *current_;
  const std::uint32_t first = batch.record_begin[next_record_];
  const std::uint32_t last = batch.record_begin[next_record_ + 1];
  const std::span<const std::string_view> record(batch.views.data() + first, last - first);
  if (options_.parse_numbers) {
    // The fields the reading thread left to this thread (see ParseSplit).
    if (batch.parsed_fields < record.size()) {
      csv_internal::ParseNumbersInto(record.subspan(batch.parsed_fields),
                                     batch.numbers.data() + first + batch.parsed_fields);
    }
    numbers_ = std::span<const double>(batch.numbers.data() + first, last - first);
  } else {
    numbers_ = {};
  }
  *fields = record;
  // Records ahead were written by the reading thread on the other core, so their cache lines
  // come from there, slowly: ask for them early. In two stages, so that no prefetch waits for
  // a load that misses: the views, numbers, line and byte count of the record 2k ahead, and
  // the bytes of the record k ahead, whose views the call k records ago asked for.
  const std::size_t records = batch.records();
  if (const std::size_t far = next_record_ + 2 * kPrefetchRecords; far < records) {
    const std::uint32_t begin = batch.record_begin[far];
    const std::uint32_t end = batch.record_begin[far + 1];
    if (options_.parse_numbers) {
      for (std::uint32_t f = begin; f < end; f += 8) __builtin_prefetch(&batch.numbers[f]);
    }
    for (std::uint32_t f = begin; f < end; f += 4) __builtin_prefetch(&batch.views[f]);
    __builtin_prefetch(&batch.lines[far]);
    __builtin_prefetch(&batch.bytes_read[far]);
  }
  if (const std::size_t near = next_record_ + kPrefetchRecords; near < records) {
    const std::uint32_t begin = batch.record_begin[near];
    const std::uint32_t end = batch.record_begin[near + 1];
    if (begin < end) {
      const char* const from = batch.views[begin].data();
      const std::size_t size = static_cast<std::size_t>(batch.views[end - 1].data() - from) +
                               batch.views[end - 1].size();
      for (std::size_t at = 0; at < size; at += 64) __builtin_prefetch(from + at);
    }
  }
  line_ = batch.lines[next_record_];
  bytes_read_ = batch.bytes_read[next_record_];
  ++next_record_;
  return true;
}

}  // namespace riffle::features
