#include "learners/adwin.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

#include "learners/option_parsing.h"
#include "learners/serialization.h"

namespace riffle::learners {
namespace {

// Version of the serialized Adwin state. Bump it, and keep a loader for the old layout,
// whenever Save() changes.
constexpr std::uint32_t kStateVersion = 1;

// Row r summarizes 2^r elements per bucket, so 64 rows cover any uint64 width.
constexpr std::uint64_t kMaxRows = 64;

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

// Elements summarized by one bucket of row r, as River computes it (exact: r < 64).
double BucketSize(std::size_t r) { return static_cast<double>(std::uint64_t{1} << r); }

}  // namespace

absl::Status AdwinOptions::Validate() const {
  if (absl::Status s = RequireInOpenRange("delta", delta, 0.0, 1.0); !s.ok()) {
    return s;
  }
  if (absl::Status s = RequireInRange("clock", clock, 1, kNoLimit); !s.ok()) return s;
  if (absl::Status s = RequireInRange("max_buckets", max_buckets, 1, kMaxAdwinBuckets); !s.ok()) {
    return s;
  }
  return RequireInRange("min_window_length", min_window_length, 1, kNoLimit);
}

absl::Status AdwinOptions::Set(std::string_view name, std::string_view value) {
  if (name == "delta") return ParseDoubleOption(name, value, &delta);
  const std::pair<std::string_view, std::uint64_t*> integers[] = {
      {"clock", &clock},
      {"max_buckets", &max_buckets},
      {"min_window_length", &min_window_length},
      {"grace_period", &grace_period},
  };
  for (const auto& [option, field] : integers) {
    if (name == option) return ParseUint64Option(name, value, field);
  }
  return UnknownOptionError(Adwin::kKind, name);
}

absl::StatusOr<std::unique_ptr<Adwin>> Adwin::Create(const AdwinOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return std::make_unique<Adwin>(options);
}

Adwin::Adwin(const AdwinOptions& options) : options_(options) {
  assert(options.Validate().ok());
  ClearWindow();
}

void Adwin::Reset() {
  ClearWindow();
  n_detections_ = 0;
  drift_detected_ = false;
}

void Adwin::ClearWindow() {
  width_ = 0;
  total_ = 0.0;
  variance_sum_ = 0.0;
  tick_ = 0;
  // Row 0 always exists (River starts with one empty row, too). Capacity is kept.
  rows_.assign(1, Row{});
  buckets_.assign(RowCapacity(), Bucket{});
}

const Adwin::Bucket& Adwin::At(std::size_t r, std::size_t k) const {
  const std::size_t capacity = RowCapacity();
  std::size_t slot = rows_[r].head + k;
  if (slot >= capacity) slot -= capacity;
  return buckets_[r * capacity + slot];
}

void Adwin::PushNewest(std::size_t r, const Bucket& bucket) {
  const std::size_t capacity = RowCapacity();
  Row& row = rows_[r];
  assert(row.size < capacity);
  std::size_t slot = std::size_t{row.head} + row.size;
  if (slot >= capacity) slot -= capacity;
  buckets_[r * capacity + slot] = bucket;
  ++row.size;
}

void Adwin::PopOldest(std::size_t r, std::uint32_t count) {
  Row& row = rows_[r];
  assert(row.size >= count);
  row.head += count;
  if (row.head >= RowCapacity()) row.head -= static_cast<std::uint32_t>(RowCapacity());
  row.size -= count;
}

void Adwin::AppendRow() {
  rows_.emplace_back();
  buckets_.resize(rows_.size() * RowCapacity());
}

void Adwin::Update(double x) {
  assert(std::isfinite(x));
  // River's ADWIN starts afresh on the update after a detection.
  if (drift_detected_) ClearWindow();
  Insert(x);
  drift_detected_ = false;
  if (++tick_ == options_.clock) {
    tick_ = 0;
    drift_detected_ = width_ > options_.grace_period && DetectChange();
  }
  if (drift_detected_) ++n_detections_;
}

void Adwin::Insert(double x) {
  PushNewest(0, Bucket{x, 0.0});
  ++width_;
  // Welford's update of the sum of squared deviations, in River's operation order.
  const double width = static_cast<double>(width_);
  if (width_ > 1) {
    const double deviation = x - total_ / (width - 1.0);
    variance_sum_ += (width - 1.0) * deviation * deviation / width;
  }
  total_ += x;

  // A row that reached max_buckets + 1 summaries merges its two oldest into one summary of the
  // next row (the newest there), which may overflow in turn. Row r overflows once per
  // 2^r * (max_buckets - 1) insertions or so, hence amortized O(1).
  const std::size_t capacity = RowCapacity();
  for (std::size_t r = 0; rows_[r].size == capacity; ++r) {
    const Bucket& older = At(r, 0);
    const Bucket& newer = At(r, 1);
    const double n = BucketSize(r);
    const double mean_older = older.total / n;
    const double mean_newer = newer.total / n;
    // Chan et al.'s pairwise combination for two halves of equal size n:
    // M2 = M2_a + M2_b + n * n / (n + n) * (mean_a - mean_b)^2.
    const Bucket merged{older.total + newer.total,
                        older.variance + newer.variance +
                            n * 0.5 * (mean_older - mean_newer) * (mean_older - mean_newer)};
    PopOldest(r, 2);
    if (r + 1 == rows_.size()) AppendRow();
    PushNewest(r + 1, merged);
  }
}

bool Adwin::DetectChange() {
  const double min_length = static_cast<double>(options_.min_window_length);
  bool cut_any = false;
  bool cut = true;
  while (cut) {
    cut = false;
    // Constant within one scan: the window only changes when a cut ends the scan.
    const double width = static_cast<double>(width_);
    const double window_variance = variance_sum_ / width;
    const double delta_prime = std::log(2.0 * std::log(width) / options_.delta);
    // W0 grows from the oldest summary on; W1 is the rest.
    double n0 = 0.0;
    double n1 = width;
    double u0 = 0.0;
    double u1 = total_;
    for (std::size_t r = rows_.size(); r-- > 0 && !cut;) {
      const double bucket_size = BucketSize(r);
      const std::uint32_t size = rows_[r].size;
      for (std::uint32_t k = 0; k < size; ++k) {
        const double t = At(r, k).total;
        n0 += bucket_size;
        n1 -= bucket_size;
        u0 += t;
        u1 -= t;
        if (r == 0 && k + 1 == size) break;  // W1 would be empty.
        if (n0 < min_length || n1 < min_length) continue;
        const double delta_mean = (u0 / n0) - (u1 / n1);
        const double m_recip = 1.0 / (n0 - min_length + 1.0) + 1.0 / (n1 - min_length + 1.0);
        const double a = 2.0 * m_recip * window_variance * delta_prime;
        // Exact shortcut: if delta_mean^2 < a by more than rounding can explain, then
        // |delta_mean| < sqrt(a) <= epsilon, so the cut test below would fail; skip its sqrt.
        // About 30% faster per scan. Not used for a in the subnormal range, where relative
        // rounding bounds fail; a NaN a fails both comparisons, as it does in River's test.
        if (a > 1e-300 && delta_mean * delta_mean < a * (1.0 - 1e-12)) continue;
        const double epsilon = std::sqrt(a) + 2.0 / 3.0 * delta_prime * m_recip;
        if (std::fabs(delta_mean) > epsilon) {
          // Drop the oldest summary and scan the shorter window again from the start.
          DeleteOldest();
          cut = cut_any = true;
          break;
        }
      }
    }
  }
  return cut_any;
}

void Adwin::DeleteOldest() {
  const std::size_t last = rows_.size() - 1;
  const Bucket oldest = At(last, 0);
  const double n = BucketSize(last);
  const double mean = oldest.total / n;
  width_ -= std::uint64_t{1} << last;
  total_ -= oldest.total;
  const double width = static_cast<double>(width_);
  const double window_mean = total_ / width;
  variance_sum_ -=
      oldest.variance + n * width * (mean - window_mean) * (mean - window_mean) / (n + width);
  PopOldest(last, 1);
  // A cut always leaves the newest element, so row 0 is never emptied here.
  assert(last > 0 || rows_[0].size > 0);
  if (rows_[last].size == 0 && last > 0) {
    rows_.pop_back();
    buckets_.resize(rows_.size() * RowCapacity());
  }
}

double Adwin::estimation() const {
  return width_ == 0 ? 0.0 : total_ / static_cast<double>(width_);
}

double Adwin::variance() const {
  return width_ == 0 ? 0.0 : variance_sum_ / static_cast<double>(width_);
}

std::size_t Adwin::NumBuckets() const {
  std::size_t count = 0;
  for (const Row& row : rows_) count += row.size;
  return count;
}

std::size_t Adwin::MemoryBytes() const {
  return sizeof(*this) + rows_.capacity() * sizeof(Row) + buckets_.capacity() * sizeof(Bucket);
}

void Adwin::Save(cereal::PortableBinaryOutputArchive& archive) const {
  const AdwinOptions& o = options_;
  archive(kStateVersion);
  archive(o.delta, o.clock, o.max_buckets, o.min_window_length, o.grace_period);
  archive(width_, total_, variance_sum_, tick_, n_detections_);
  SaveBool(archive, drift_detected_);
  // The histogram in logical order (independent of where the ring buffers start): the size of
  // every row, then every row's summaries, oldest first.
  std::vector<std::uint32_t> sizes;
  std::vector<double> totals;
  std::vector<double> variances;
  for (std::size_t r = 0; r < rows_.size(); ++r) {
    sizes.push_back(rows_[r].size);
    for (std::size_t k = 0; k < rows_[r].size; ++k) {
      totals.push_back(At(r, k).total);
      variances.push_back(At(r, k).variance);
    }
  }
  SaveVector(archive, sizes);
  SaveVector(archive, totals);
  SaveVector(archive, variances);
}

void Adwin::Load(cereal::PortableBinaryInputArchive& archive) {
  using drift_internal::CheckLoad;
  std::uint32_t version = 0;
  archive(version);
  drift_internal::CheckVersion(version, kStateVersion, kKind);
  AdwinOptions o;
  archive(o.delta, o.clock, o.max_buckets, o.min_window_length, o.grace_period);
  drift_internal::CheckLoadedOptions(o.Validate(), kKind);

  // Everything goes into `loaded` first and is committed at the end, so a failed load
  // leaves *this unchanged.
  Adwin loaded(o);
  archive(loaded.width_, loaded.total_, loaded.variance_sum_, loaded.tick_, loaded.n_detections_);
  loaded.drift_detected_ = LoadBool(archive);
  CheckLoad(loaded.tick_ < o.clock, kKind, "tick out of range");
  CheckLoad(std::isfinite(loaded.total_) && std::isfinite(loaded.variance_sum_), kKind,
            "non-finite window statistics");

  std::uint64_t num_rows = 0;
  archive(num_rows);
  CheckLoad(num_rows >= 1 && num_rows <= kMaxRows, kKind, "implausible number of rows");
  std::vector<std::uint32_t> sizes;
  LoadVectorFromCount(archive, num_rows, &sizes);
  // Every row holds at most max_buckets summaries between updates; only the last row must be
  // non-empty (merges can empty middle rows when max_buckets is 1); and the summaries must
  // cover exactly width elements.
  std::uint64_t covered = 0;
  std::uint64_t num_buckets = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    CheckLoad(sizes[r] <= o.max_buckets, kKind, "row holds too many buckets");
    CheckLoad(sizes[r] <= (kNoLimit - covered) >> r, kKind, "row sizes overflow the width");
    covered += std::uint64_t{sizes[r]} << r;
    num_buckets += sizes[r];
  }
  CheckLoad(sizes.size() == 1 || sizes.back() > 0, kKind, "empty last row");
  CheckLoad(covered == loaded.width_, kKind, "row sizes do not add up to the width");

  std::uint64_t count = 0;
  std::vector<double> totals;
  std::vector<double> variances;
  archive(count);
  CheckLoad(count == num_buckets, kKind, "bucket totals do not match the row sizes");
  LoadVectorFromCount(archive, count, &totals);
  archive(count);
  CheckLoad(count == num_buckets, kKind, "bucket variances do not match the row sizes");
  LoadVectorFromCount(archive, count, &variances);

  loaded.rows_.assign(sizes.size(), Row{});
  loaded.buckets_.assign(sizes.size() * loaded.RowCapacity(), Bucket{});
  std::size_t next = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    for (std::uint32_t k = 0; k < sizes[r]; ++k, ++next) {
      loaded.PushNewest(r, Bucket{totals[next], variances[next]});
    }
  }
  *this = std::move(loaded);
}

}  // namespace riffle::learners
