#ifndef RIFFLE_FEATURES_SIMD_BUILDS_H_
#define RIFFLE_FEATURES_SIMD_BUILDS_H_

namespace riffle::features {

// Code written once and compiled twice, for the x86-64 baseline (SSE2) and for AVX2 (the
// standard scaler's four-lane loops, csv_internal::ParseNumbersInto), picks its build here,
// once per call. Not GCC's target_clones: its ifunc resolver runs while the dynamic loader
// relocates, before a sanitizer's runtime is up, and ThreadSanitizer's instrumentation of it
// crashes the process.

// True where the AVX2 builds run: the CPU has AVX2 (asked once per process) and no test chose
// the baseline. Always false off x86-64.
bool UseAvx2();

// Which builds run: the best the CPU has (the default) or the baseline ones, so that tests
// cover both on any x86-64 machine. Thread-safe; meant for tests only.
enum class SimdBuild { kBest, kBaseline };
void SetSimdBuildForTesting(SimdBuild build);

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_SIMD_BUILDS_H_
