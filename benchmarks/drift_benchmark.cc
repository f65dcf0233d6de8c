// Micro benchmarks of the drift detectors' cost per update (Google Benchmark).
//
//   build/release/benchmarks/drift_benchmark --benchmark_min_time=1
//
// Each iteration is one Update() on a precomputed 0/1 stream (generating data is not timed).
// "Stationary" streams never trigger a detection, so ADWIN's window grows with the iteration
// count (its cost is then the amortized insert and merge, plus a scan of O(log W) cut points
// every `clock` updates). "Drifting" streams switch the error rate every 1,000 updates, so
// ADWIN repeatedly cuts, resets and regrows, as it would at a tree node whose errors change.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "learners/adwin.h"
#include "learners/ddm.h"
#include "learners/drift.h"
#include "learners/page_hinkley.h"

namespace riffle::learners {
namespace {

constexpr int kStreamSize = 1 << 16;

std::vector<double> Stream(bool drifting, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform;
  std::vector<double> stream(kStreamSize);
  for (int i = 0; i < kStreamSize; ++i) {
    const double p = drifting && (i / 1000) % 2 == 1 ? 0.8 : 0.2;
    stream[i] = uniform(rng) < p ? 1.0 : 0.0;
  }
  return stream;
}

const std::vector<double>& StationaryStream() {
  static const std::vector<double> stream = Stream(false, 1);
  return stream;
}

const std::vector<double>& DriftingStream() {
  static const std::vector<double> stream = Stream(true, 2);
  return stream;
}

template <typename Detector>
void RunUpdates(benchmark::State& state, Detector& detector, const std::vector<double>& stream) {
  std::size_t i = 0;
  std::int64_t detections = 0;
  for (auto _ : state) {
    detector.Update(stream[i]);
    detections += detector.drift_detected() ? 1 : 0;
    i = (i + 1) % stream.size();
  }
  benchmark::DoNotOptimize(detections);
  state.SetItemsProcessed(state.iterations());
  state.counters["detections"] = static_cast<double>(detections);
}

void BM_AdwinStationary(benchmark::State& state) {
  Adwin adwin(AdwinOptions{.clock = static_cast<std::uint64_t>(state.range(0))});
  RunUpdates(state, adwin, StationaryStream());
  state.counters["width"] = static_cast<double>(adwin.width());
  state.counters["bytes"] = static_cast<double>(adwin.MemoryBytes());
}
BENCHMARK(BM_AdwinStationary)->Arg(32)->Arg(1);

void BM_AdwinDrifting(benchmark::State& state) {
  Adwin adwin(AdwinOptions{.clock = static_cast<std::uint64_t>(state.range(0))});
  RunUpdates(state, adwin, DriftingStream());
}
BENCHMARK(BM_AdwinDrifting)->Arg(32)->Arg(1);

void BM_PageHinkley(benchmark::State& state) {
  PageHinkley ph;
  RunUpdates(state, ph, DriftingStream());
}
BENCHMARK(BM_PageHinkley);

void BM_Ddm(benchmark::State& state) {
  Ddm ddm;
  RunUpdates(state, ddm, DriftingStream());
}
BENCHMARK(BM_Ddm);

// The same ADWIN through the virtual interface, as standalone users hold it.
void BM_AdwinThroughInterface(benchmark::State& state) {
  std::unique_ptr<DriftDetector> detector = std::make_unique<Adwin>();
  RunUpdates(state, *detector, DriftingStream());
}
BENCHMARK(BM_AdwinThroughInterface);

}  // namespace
}  // namespace riffle::learners

BENCHMARK_MAIN();
