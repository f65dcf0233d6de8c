// The model's side of `riffle eval` on one thread: PrequentialStep::Apply on rows that are
// already split and parsed (what ReadAheadCsvReader hands over), and each of its parts alone.
//
//   build/release/benchmarks/eval_step_benchmark
//
// The rows are like those of benchmarks/make_stream.py: 20 numeric columns on very different
// scales and a 0/1 target drawn from a logistic model, so that the label (and the sign of the
// logit) cannot be predicted from one row to the next. The same rows with every label "1" (but
// the first, "0", so that both classes have the same indices) show what that unpredictability
// costs: a branch that depends on the label or the prediction is mispredicted about half the
// time with random labels, and almost never with constant ones.
//
// 4,096 rows are cycled through, so the rows stay in the cache: this measures the model's
// work, not the hand-over between threads that `riffle eval` adds (compare with its rows/s).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/model_checkpoint.h"
#include "features/csv_reader.h"
#include "features/tabular.h"
#include "learners/registry.h"
#include "service/prequential.h"

namespace riffle::service {
namespace {

constexpr int kRows = 4096;
constexpr int kFeatures = 20;

struct Rows {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> text;
  std::vector<std::vector<std::string_view>> fields;
  std::vector<std::vector<double>> numbers;  // as ReadAheadCsvReader::numbers() gives them
};

Rows MakeRows(bool constant_label) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  std::vector<double> offset(kFeatures), scale(kFeatures), weight(kFeatures);
  for (int j = 0; j < kFeatures; ++j) {
    offset[j] = 100.0 * normal(rng);
    scale[j] = std::pow(10.0, 3.0 * uniform(rng) - 1.0);
    weight[j] = j % 4 == 0 ? 0.0 : normal(rng);  // a quarter of the features are irrelevant
  }
  Rows rows;
  for (int j = 0; j < kFeatures; ++j) rows.header.push_back("x" + std::to_string(j));
  rows.header.push_back("target");
  char buffer[32];
  for (int r = 0; r < kRows; ++r) {
    std::vector<std::string> row;
    double logit = 0.0;
    for (int j = 0; j < kFeatures; ++j) {
      const double z = normal(rng);
      logit += weight[j] * z;
      std::snprintf(buffer, sizeof(buffer), "%.6g", offset[j] + scale[j] * z);
      row.emplace_back(buffer);
    }
    const bool positive = uniform(rng) < 1.0 / (1.0 + std::exp(-logit));
    // With constant labels the first row is still "0", so that "0" and "1" get the class
    // indices they get with random labels and the model and metrics do the same work.
    row.emplace_back((constant_label && r > 0) || positive ? "1" : "0");
    rows.text.push_back(std::move(row));
  }
  for (const std::vector<std::string>& row : rows.text) {
    rows.fields.emplace_back(row.begin(), row.end());
    // ReadAheadCsvReader's parser (features' internal API, used here to give Decode what the
    // reading thread gives it).
    std::vector<double> numbers(row.size());
    features::csv_internal::ParseNumbersInto(rows.fields.back(), numbers.data());
    rows.numbers.push_back(std::move(numbers));
  }
  return rows;
}

// A fresh model of `riffle eval --learner logreg` (River's defaults), its schema typed from the
// rows, and every row learned once, so that timing starts with the model's final sizes.
checkpoints::ModelState WarmState(const Rows& rows) {
  checkpoints::ModelState state;
  state.learner = *learners::CreateClassifier("logreg", {});
  features::TabularOptions options;
  options.target = "target";
  features::ColumnTypeInference inference(rows.header.size());
  for (const std::vector<std::string_view>& fields : rows.fields) inference.Observe(fields);
  state.schema = *features::TabularSchema::Create(rows.header, options, inference);
  PrequentialStep step;
  for (int r = 0; r < kRows; ++r) step.Apply(&state, rows.fields[r], rows.numbers[r]);
  return state;
}

enum class Part { kWhole, kDecode, kScaler, kLearner, kMetrics };

// Each part is timed together with decoding, which gives it its input (subtract kDecode).
void RunStep(benchmark::State& bench, Part part) {
  const Rows rows = MakeRows(/*constant_label=*/bench.range(0) == 1);
  checkpoints::ModelState state = WarmState(rows);
  PrequentialStep step;
  features::TabularExample example;
  learners::FeatureVector x;
  std::vector<double> proba;
  std::size_t r = 0;
  for (auto _ : bench) {
    const std::vector<std::string_view>& fields = rows.fields[r];
    const std::vector<double>& numbers = rows.numbers[r];
    r = r + 1 == kRows ? 0 : r + 1;
    if (part == Part::kWhole) {
      benchmark::DoNotOptimize(step.Apply(&state, fields, numbers).data());
      continue;
    }
    state.schema->Decode(fields, &example, numbers);
    switch (part) {
      case Part::kDecode:
        benchmark::DoNotOptimize(example.numeric.values().data());
        break;
      case Part::kScaler:  // as Apply: transform to predict, then learn and transform again
        state.preprocessor.TransformForPredict(example, &x);
        state.preprocessor.LearnAndRetransform(example, &x);
        benchmark::DoNotOptimize(x.values().data());
        break;
      case Part::kLearner:  // predict and learn on the unscaled values
        state.learner->PredictProbaOne(example.numeric, &proba);
        state.learner->LearnOne(example.numeric, *example.label);
        benchmark::DoNotOptimize(proba.data());
        break;
      case Part::kMetrics: {  // on probabilities that do not depend on the label
        const double p = 0.05 + 0.9 * static_cast<double>(r) / kRows;
        proba.assign({1.0 - p, p});
        state.metrics.PrefetchForUpdate(*example.label, proba);
        state.metrics.Update(*example.label, proba);
        break;
      }
      case Part::kWhole:
        break;
    }
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.SetLabel(bench.range(0) == 1 ? "constant labels" : "random labels");
}

void BM_PrequentialStep(benchmark::State& bench) { RunStep(bench, Part::kWhole); }
void BM_PrequentialStepDecode(benchmark::State& bench) { RunStep(bench, Part::kDecode); }
void BM_PrequentialStepDecodeScaler(benchmark::State& bench) { RunStep(bench, Part::kScaler); }
void BM_PrequentialStepDecodeLearner(benchmark::State& bench) { RunStep(bench, Part::kLearner); }
void BM_PrequentialStepDecodeMetrics(benchmark::State& bench) { RunStep(bench, Part::kMetrics); }
BENCHMARK(BM_PrequentialStep)->Arg(0)->Arg(1);
BENCHMARK(BM_PrequentialStepDecode)->Arg(0)->Arg(1);
BENCHMARK(BM_PrequentialStepDecodeScaler)->Arg(0);
BENCHMARK(BM_PrequentialStepDecodeLearner)->Arg(0)->Arg(1);
BENCHMARK(BM_PrequentialStepDecodeMetrics)->Arg(0)->Arg(1);

}  // namespace
}  // namespace riffle::service

BENCHMARK_MAIN();
