#ifndef RIFFLE_SERVICE_PROGRESS_H_
#define RIFFLE_SERVICE_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace riffle::service {

// A one-line progress bar on a terminal (stderr by default): percentage when the total size is
// known, otherwise a running row count, plus rows/s. Redraws at most ten times a second, so the
// per-row cost is one counter check. Does nothing when the stream is not a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* out = stderr);
  // Forces the bar on or off (tests and --no-progress).
  ProgressBar(std::FILE* out, bool enabled);
  ~ProgressBar();

  bool enabled() const { return enabled_; }
  // `done` and `total` are in bytes when total is known; rows counts processed rows.
  void Update(std::uint64_t rows, std::uint64_t done, std::optional<std::uint64_t> total);
  // Clears the line.
  void Finish();

 private:
  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_PROGRESS_H_
