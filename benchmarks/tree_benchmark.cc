// Micro benchmarks of the Hoeffding trees' per-example cost (Google Benchmark).
//
//   build/trees/benchmarks/tree_benchmark --benchmark_min_time=1
//
// Each iteration predicts one example and learns it (the prequential step) on a stream of
// precomputed examples (generating data is not timed). The concept is a fixed random
// hyperplane over the first features, so the tree keeps growing for the whole run; the model
// is rebuilt (untimed) every kRebuildEvery iterations so that the timed tree stays of a
// realistic size.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "learners/hoeffding_adaptive_tree.h"
#include "learners/hoeffding_tree.h"
#include "learners/hoeffding_tree_nodes.h"

namespace riffle::learners {
namespace {

constexpr int kStreamSize = 1 << 16;
constexpr int kRebuildEvery = 1 << 18;

struct Stream {
  std::vector<FeatureVector> x;
  std::vector<ClassIndex> y;
};

Stream DenseStream(int features, int classes, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> w(static_cast<std::size_t>(features));
  for (double& v : w) v = u(rng) - 0.5;
  Stream s;
  s.x.resize(kStreamSize);
  s.y.resize(kStreamSize);
  for (int i = 0; i < kStreamSize; ++i) {
    double dot = 0;
    for (int j = 0; j < features; ++j) {
      const double v = u(rng);
      s.x[i].Add(static_cast<FeatureIndex>(j), v);
      dot += w[j] * (v - 0.5);
    }
    // Equal-width bins of the projection give `classes` ordered classes.
    const double t = 1.0 / (1.0 + std::exp(-8 * dot));
    s.y[i] = static_cast<ClassIndex>(std::min<int>(classes - 1, static_cast<int>(t * classes)));
  }
  return s;
}

template <typename Tree, typename Options>
void RunTree(benchmark::State& state, const Options& options) {
  const Stream s =
      DenseStream(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 1);
  auto tree = std::make_unique<Tree>(options);
  std::vector<double> proba;
  std::size_t i = 0;
  std::int64_t seen = 0;
  for (auto _ : state) {
    tree->PredictProbaOne(s.x[i], &proba);
    benchmark::DoNotOptimize(proba.data());
    tree->LearnOne(s.x[i], s.y[i]);
    i = (i + 1) % s.x.size();
    if (++seen % kRebuildEvery == 0) {
      state.PauseTiming();
      tree = std::make_unique<Tree>(options);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["leaves"] = static_cast<double>(tree->Stats().leaves);
}

void BM_HoeffdingTree(benchmark::State& state) {
  HoeffdingTreeOptions o;
  o.leaf_prediction = static_cast<LeafPrediction>(state.range(2));
  RunTree<HoeffdingTreeClassifier>(state, o);
}
// features, classes, leaf prediction (0 mc, 1 nb, 2 nba).
BENCHMARK(BM_HoeffdingTree)
    ->Args({10, 2, 2})
    ->Args({20, 2, 2})
    ->Args({30, 2, 2})
    ->Args({20, 2, 0})
    ->Args({20, 2, 1})
    ->Args({20, 10, 2});

void BM_HoeffdingAdaptiveTree(benchmark::State& state) {
  HoeffdingAdaptiveTreeOptions o;
  o.tree.leaf_prediction = static_cast<LeafPrediction>(state.range(2));
  RunTree<HoeffdingAdaptiveTreeClassifier>(state, o);
}
BENCHMARK(BM_HoeffdingAdaptiveTree)->Args({10, 2, 2})->Args({20, 2, 2})->Args({20, 10, 2});

// One leaf that has learned kLeafExamples examples of DenseStream, the state the leaf-level
// benchmarks below time (no tree around it: only the per-leaf work).
constexpr int kLeafExamples = 2000;

std::unique_ptr<tree_internal::Node> TrainedLeaf(const Stream& s, const HoeffdingTreeOptions& o) {
  auto leaf = tree_internal::NewLeaf({}, 0, nullptr);
  std::vector<double> scratch;
  for (int i = 0; i < kLeafExamples; ++i) {
    tree_internal::LeafLearn(leaf.get(), s.x[i], s.y[i], 1.0, o, /*score_nba=*/true, std::nullopt,
                             &scratch);
  }
  return leaf;
}

// Naive Bayes at a leaf (twice per example for naive-Bayes-adaptive leaves: to predict, and to
// score it before learning): features x classes Gaussian log-densities.
void BM_LeafNaiveBayes(benchmark::State& state) {
  const int classes = static_cast<int>(state.range(1));
  const Stream s = DenseStream(static_cast<int>(state.range(0)), classes, 1);
  const auto leaf = TrainedLeaf(s, HoeffdingTreeOptions{});
  std::vector<double> out(static_cast<std::size_t>(classes));
  std::size_t i = 0;
  for (auto _ : state) {
    tree_internal::NaiveBayes(*leaf, s.x[i], out);
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % s.x.size();
  }
  state.SetItemsProcessed(state.iterations());
}
// features, classes.
BENCHMARK(BM_LeafNaiveBayes)->Args({20, 2})->Args({24, 10});

// One split attempt (every grace_period of weight at each active leaf): n_splits thresholds
// per numeric attribute, each scored from the class Gaussians' CDFs by information gain.
void BM_LeafAttemptSplit(benchmark::State& state) {
  const Stream s =
      DenseStream(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 1);
  HoeffdingTreeOptions o;
  o.delta = 1e-300;  // never split, so every iteration attempts on the same leaf
  const auto leaf = TrainedLeaf(s, o);
  for (auto _ : state) {
    tree_internal::SplitSuggestion split;
    benchmark::DoNotOptimize(tree_internal::AttemptSplit(leaf.get(), o, &split));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeafAttemptSplit)->Args({20, 2})->Args({24, 10});

}  // namespace
}  // namespace riffle::learners

BENCHMARK_MAIN();
