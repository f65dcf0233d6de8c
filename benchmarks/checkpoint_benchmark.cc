// Checkpoint write and load cost for a large model (Google Benchmark).
//
//   build/release/benchmarks/checkpoint_benchmark --benchmark_min_time=1
//
// The models: logistic regression with Adam over 1,000,000 hashed features (weights plus both
// Adam moments: 3 x 8 MB), trained on sparse examples that touch every bucket; and a Hoeffding
// tree of at least 10,000 nodes on 30 numeric features (leaves hold their Gaussian observers,
// which is what makes a tree checkpoint large).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "checkpoints/checkpointer.h"
#include "checkpoints/env.h"
#include "checkpoints/model_checkpoint.h"
#include "checkpoints/store.h"
#include "learners/hoeffding_tree.h"
#include "learners/logistic_regression.h"
#include "learners/tree_model.h"

namespace riffle::checkpoints {
namespace {

constexpr learners::FeatureIndex kBuckets = 1'000'000;

learners::FeatureVector SparseExample(std::mt19937& rng) {
  std::uniform_int_distribution<learners::FeatureIndex> bucket(0, kBuckets - 1);
  learners::FeatureVector x;
  for (int k = 0; k < 100; ++k) x.Add(bucket(rng), 1.0);
  return x;
}

const ModelState& LargeModel() {
  static const ModelState* state = [] {
    auto* s = new ModelState;
    learners::LogisticRegressionOptions o;
    o.optimizer = learners::OptimizerKind::kAdam;
    auto model = std::make_unique<learners::LogisticRegression>(o);
    std::mt19937 rng(1);
    learners::FeatureVector last;
    last.Add(kBuckets - 1, 1.0);
    model->LearnOne(last, 1);
    for (int i = 0; i < 20000; ++i) model->LearnOne(SparseExample(rng), i % 2);
    s->name = "bench";
    s->learner = std::move(model);
    return s;
  }();
  return *state;
}

// A tree grown to >= 10,000 nodes: 30 features, 4 classes whose label depends on many
// thresholds of many features, a short grace period and a permissive delta so it keeps
// splitting; memory management off (max_size large) so no leaf is deactivated.
const ModelState& LargeTree() {
  static const ModelState* state = [] {
    auto* s = new ModelState;
    learners::HoeffdingTreeOptions o;
    o.grace_period = 50;
    o.delta = 0.01;
    o.max_size = 4096;
    auto tree = std::make_unique<learners::HoeffdingTreeClassifier>(o);
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0, 1);
    learners::FeatureVector x;
    // Stats() walks the tree: checked every 10,000 examples only.
    for (int i = 0; i < 20'000'000 && (i % 10'000 != 0 || tree->Stats().nodes < 10000); ++i) {
      x.Clear();
      double h = 0;
      for (learners::FeatureIndex j = 0; j < 30; ++j) {
        const double v = u(rng);
        x.Add(j, v);
        h += std::floor(v * 8) * (j + 1);
      }
      tree->LearnOne(x, static_cast<learners::ClassIndex>(static_cast<int>(h) % 4));
    }
    s->name = "tree";
    s->learner = std::move(tree);
    return s;
  }();
  return *state;
}

std::string TempDir() {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("riffle_ckpt_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

void BM_CheckpointWriteLogReg1MAdam(benchmark::State& state) {
  const ModelState& model = LargeModel();
  const std::string path = TempDir() + "/model.riffle";
  for (auto _ : state) {
    absl::Status s = WriteModelCheckpointFile(DefaultEnv(), path, model);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.counters["file_MB"] = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
}
BENCHMARK(BM_CheckpointWriteLogReg1MAdam)->Unit(benchmark::kMillisecond);

void BM_CheckpointLoadLogReg1MAdam(benchmark::State& state) {
  const std::string path = TempDir() + "/model.riffle";
  if (!WriteModelCheckpointFile(DefaultEnv(), path, LargeModel()).ok()) {
    state.SkipWithError("write failed");
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<ModelState> loaded = ReadModelCheckpointFile(DefaultEnv(), path);
    if (!loaded.ok()) state.SkipWithError(std::string(loaded.status().message()).c_str());
    benchmark::DoNotOptimize(loaded);
  }
}
BENCHMARK(BM_CheckpointLoadLogReg1MAdam)->Unit(benchmark::kMillisecond);

void BM_CheckpointWriteHoeffdingTree10kNodes(benchmark::State& state) {
  const ModelState& model = LargeTree();
  const std::string path = TempDir() + "/tree.riffle";
  for (auto _ : state) {
    absl::Status s = WriteModelCheckpointFile(DefaultEnv(), path, model);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  const auto* tree = dynamic_cast<const learners::TreeModel*>(model.learner.get());
  state.counters["nodes"] = static_cast<double>(tree->Stats().nodes);
  state.counters["file_MB"] = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
}
BENCHMARK(BM_CheckpointWriteHoeffdingTree10kNodes)->Unit(benchmark::kMillisecond);

void BM_CheckpointLoadHoeffdingTree10kNodes(benchmark::State& state) {
  const std::string path = TempDir() + "/tree.riffle";
  if (!WriteModelCheckpointFile(DefaultEnv(), path, LargeTree()).ok()) {
    state.SkipWithError("write failed");
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<ModelState> loaded = ReadModelCheckpointFile(DefaultEnv(), path);
    if (!loaded.ok()) state.SkipWithError(std::string(loaded.status().message()).c_str());
    benchmark::DoNotOptimize(loaded);
  }
}
BENCHMARK(BM_CheckpointLoadHoeffdingTree10kNodes)->Unit(benchmark::kMillisecond);

// The only part of a checkpoint on the model writer's path: the snapshot copy.
void BM_SnapshotCloneLogReg1MAdam(benchmark::State& state) {
  const ModelState& model = LargeModel();
  for (auto _ : state) {
    ModelState copy = model.Clone();
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_SnapshotCloneLogReg1MAdam)->Unit(benchmark::kMillisecond);

// Predictions on another thread while the checkpointer serializes and writes a snapshot:
// reports the slowest single prediction seen during the write.
void BM_PredictLatencyDuringCheckpointWrite(benchmark::State& state) {
  const ModelState& model = LargeModel();
  absl::StatusOr<std::unique_ptr<CheckpointStore>> store =
      CheckpointStore::Open(DefaultEnv(), {.dir = TempDir() + "/store", .keep = 2});
  if (!store.ok()) {
    state.SkipWithError("store");
    return;
  }
  double worst_us = 0;
  for (auto _ : state) {
    Checkpointer checkpointer(store->get(), DefaultEnv());
    std::atomic<bool> writing{true};
    std::thread predictor([&] {
      std::mt19937 rng(2);
      std::vector<double> proba;
      const learners::FeatureVector x = SparseExample(rng);
      while (writing.load()) {
        const auto start = std::chrono::steady_clock::now();
        model.learner->PredictProbaOne(x, &proba);
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count();
        if (us > worst_us) worst_us = us;
      }
    });
    checkpointer.TrySubmit(model.Clone());
    checkpointer.Wait();
    writing.store(false);
    predictor.join();
  }
  state.counters["worst_predict_us"] = worst_us;
}
BENCHMARK(BM_PredictLatencyDuringCheckpointWrite)->Unit(benchmark::kMillisecond)->Iterations(10);

}  // namespace
}  // namespace riffle::checkpoints

BENCHMARK_MAIN();
