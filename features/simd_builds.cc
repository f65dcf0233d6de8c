#include "features/simd_builds.h"

#include <atomic>

namespace riffle::features {
namespace {

std::atomic<bool> baseline_only{false};  // see SetSimdBuildForTesting

}  // namespace

bool UseAvx2() {
#ifdef __x86_64__
  static const bool has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has_avx2 && !baseline_only.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

void SetSimdBuildForTesting(SimdBuild build) {
  baseline_only.store(build == SimdBuild::kBaseline, std::memory_order_relaxed);
}

}  // namespace riffle::features
