// Micro benchmarks of the learners' per-example cost (Google Benchmark).
//
//   build/release/benchmarks/learners_benchmark --benchmark_min_time=1
//
// Each iteration predicts one example and learns it (the prequential step), on a stream of
// precomputed examples so that generating data is not timed; the metrics benchmarks time the
// prequential metrics' update per example and the read of ROC AUC.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "learners/logistic_regression.h"
#include "learners/metrics.h"

namespace riffle::learners {
namespace {

constexpr int kStreamSize = 4096;

std::vector<FeatureVector> DenseStream(int features, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<FeatureVector> stream(kStreamSize);
  for (FeatureVector& x : stream) {
    for (int j = 0; j < features; ++j) x.Add(static_cast<FeatureIndex>(j), normal(rng));
  }
  return stream;
}

// 1,000 active features out of 1,000,000 hashed buckets.
std::vector<FeatureVector> SparseStream(unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<FeatureIndex> bucket(0, 999'999);
  std::vector<FeatureVector> stream(kStreamSize);
  for (FeatureVector& x : stream) {
    std::vector<FeatureIndex> picked;
    while (picked.size() < 1000) {
      const FeatureIndex j = bucket(rng);
      bool duplicate = false;
      for (FeatureIndex p : picked) duplicate |= p == j;
      if (!duplicate) picked.push_back(j);
    }
    for (FeatureIndex j : picked) x.Add(j, 1.0);
  }
  return stream;
}

LogisticRegressionOptions OptionsFor(int optimizer, bool softmax) {
  LogisticRegressionOptions o;
  o.optimizer = static_cast<OptimizerKind>(optimizer);
  if (softmax) o.mode = LogisticMode::kSoftmax;
  return o;
}

const char* OptimizerName(int optimizer) {
  static const char* kNames[] = {"sgd", "adam", "adagrad", "ftrl"};
  return kNames[optimizer];
}

void RunLearnPredict(benchmark::State& state, const std::vector<FeatureVector>& stream,
                     ClassIndex classes) {
  const int optimizer = static_cast<int>(state.range(0));
  LogisticRegression model(OptionsFor(optimizer, classes > 2));
  // Warm up: grow the weights to their final size so growth is not timed.
  for (int i = 0; i < kStreamSize; ++i) model.LearnOne(stream[i], i % classes);
  std::vector<double> proba;
  std::size_t i = 0;
  for (auto _ : state) {
    const FeatureVector& x = stream[i % kStreamSize];
    model.PredictProbaOne(x, &proba);
    benchmark::DoNotOptimize(proba.data());
    model.LearnOne(x, static_cast<ClassIndex>(i % classes));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(OptimizerName(optimizer));
}

void BM_LogRegDense30LearnPredict(benchmark::State& state) {
  static const std::vector<FeatureVector> stream = DenseStream(30, 1);
  RunLearnPredict(state, stream, 2);
}
BENCHMARK(BM_LogRegDense30LearnPredict)->DenseRange(0, 3);

void BM_LogRegDense30Predict(benchmark::State& state) {
  static const std::vector<FeatureVector> stream = DenseStream(30, 1);
  LogisticRegression model(OptionsFor(0, false));
  for (int i = 0; i < kStreamSize; ++i) model.LearnOne(stream[i], i % 2);
  std::vector<double> proba;
  std::size_t i = 0;
  for (auto _ : state) {
    model.PredictProbaOne(stream[i++ % kStreamSize], &proba);
    benchmark::DoNotOptimize(proba.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LogRegDense30Predict);

void BM_LogRegDense30Softmax5LearnPredict(benchmark::State& state) {
  static const std::vector<FeatureVector> stream = DenseStream(30, 2);
  RunLearnPredict(state, stream, 5);
}
BENCHMARK(BM_LogRegDense30Softmax5LearnPredict)->Arg(0);

void BM_LogRegSparse1000of1MLearnPredict(benchmark::State& state) {
  static const std::vector<FeatureVector> stream = SparseStream(3);
  RunLearnPredict(state, stream, 2);
}
BENCHMARK(BM_LogRegSparse1000of1MLearnPredict)->DenseRange(0, 3);

// The prequential metrics of one binary example: cumulative and rolling window (1,000)
// accumulators, i.e. two adds and one remove of each metric, ROC AUC included.
void BM_PrequentialMetricsUpdateBinary(benchmark::State& state) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform;
  std::vector<double> scores(kStreamSize);
  for (double& p : scores) p = uniform(rng);
  PrequentialMetrics metrics;
  std::size_t i = 0;
  for (auto _ : state) {
    const double p = scores[i % kStreamSize];
    const double proba[2] = {1.0 - p, p};
    metrics.Update(static_cast<ClassIndex>(i % 3 == 0), proba);
    ++i;
  }
  benchmark::DoNotOptimize(metrics.cumulative().Count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrequentialMetricsUpdateBinary);

// Reading ROC AUC: one pass over the 2 x 65,536 bins, whatever the number of examples.
void BM_RocAucValue(benchmark::State& state) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<double> uniform;
  BinaryRocAuc auc;
  for (int i = 0; i < 100000; ++i) auc.Add(uniform(rng), uniform(rng) < 0.3);
  for (auto _ : state) benchmark::DoNotOptimize(auc.Value());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RocAucValue);

}  // namespace
}  // namespace riffle::learners

BENCHMARK_MAIN();
