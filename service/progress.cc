#include "service/progress.h"

#include <unistd.h>

#include <algorithm>

namespace riffle::service {

ProgressBar::ProgressBar(std::FILE* out) : ProgressBar(out, isatty(fileno(out)) == 1) {}

ProgressBar::ProgressBar(std::FILE* out, bool enabled)
    : out_(out), enabled_(enabled), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(std::uint64_t rows, std::uint64_t done,
                         std::optional<std::uint64_t> total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(rows) / seconds : 0.0;
  if (total.has_value() && *total > 0) {
    constexpr int kWidth = 30;
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(*total));
    const int filled = static_cast<int>(fraction * kWidth);
    std::fprintf(out_, "\r[%.*s%*s] %5.1f%%  %llu rows  %.0f rows/s ", filled,
                 "##############################", kWidth - filled, "", 100.0 * fraction,
                 static_cast<unsigned long long>(rows), rate);
  } else {
    std::fprintf(out_, "\r%llu rows  %.0f rows/s ", static_cast<unsigned long long>(rows), rate);
  }
  std::fflush(out_);
}

void ProgressBar::Finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace riffle::service
