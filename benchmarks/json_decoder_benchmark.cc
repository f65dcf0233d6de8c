// JSON event decoding, alone and followed by the feature pipeline (Google Benchmark).
//
//   build/release/benchmarks/json_decoder_benchmark --benchmark_min_time=1
//
// The event: a 30-feature payment, as the Kafka path will see it, plus id, key, time and label:
// 20 numbers, 5 categorical strings, 2 booleans, and a nested "merchant" object with 3 fields
// (flattened to "merchant.country", ...), about 800 bytes. 1,024 distinct events (values drawn
// with a fixed seed) are decoded in turn, so the branch predictor cannot learn one message.
// items_per_second is events per second on one core.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "features/json_decoder.h"
#include "features/pipeline.h"

namespace riffle::features {
namespace {

std::vector<std::string> MakeEvents(int n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> amount(0.0, 5000.0);
  std::uniform_int_distribution<int> small(0, 40);
  const char* countries[] = {"FR", "DE", "US", "GB", "ES", "IT", "NL", "BR"};
  const char* channels[] = {"web", "pos", "app", "moto"};
  std::vector<std::string> events;
  for (int i = 0; i < n; ++i) {
    std::string e = absl::StrFormat(
        R"({"id":"tx-%08d","key":"card-%d","time":"2024-05-01T12:%02d:%02d.%03dZ","label":%d,)", i,
        small(rng) * 1000 + i % 97, i % 60, (i * 7) % 60, i % 1000, i % 29 == 0 ? 1 : 0);
    for (int f = 0; f < 20; ++f) {
      e += absl::StrFormat(R"("num_%02d":%.6g,)", f, f % 3 == 0 ? amount(rng) : small(rng) * 0.25);
    }
    e += absl::StrFormat(
        R"("country":"%s","channel":"%s","currency":"EUR","device":"dev-%d","mcc":"%d",)",
        countries[small(rng) % 8], channels[small(rng) % 4], small(rng), 5000 + small(rng));
    e += absl::StrFormat(R"("online":%s,"card_present":%s,)", small(rng) % 2 ? "true" : "false",
                         small(rng) % 3 ? "true" : "false");
    e += absl::StrFormat(R"("merchant":{"country":"%s","risk":%.3f,"age_days":%d}})",
                         countries[small(rng) % 8], small(rng) / 40.0, small(rng) * 30);
    events.push_back(std::move(e));
  }
  return events;
}

const std::vector<std::string>& Events() {
  static const std::vector<std::string>* events = new std::vector<std::string>(MakeEvents(1024));
  return *events;
}

JsonDecoder Decoder() { return std::move(JsonDecoder::Create().value()); }

void BM_JsonDecode30Fields(benchmark::State& state) {
  const std::vector<std::string>& events = Events();
  JsonDecoder decoder = Decoder();
  DecodedEvent event;
  std::size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& message = events[i++ & 1023];
    bytes += message.size();
    const DecodeStatus s = decoder.Decode(message, &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(event.features().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["features"] = static_cast<double>(event.features().size());
}
BENCHMARK(BM_JsonDecode30Fields);

// Decode, then the model input as the predict path computes it. The pipeline declares the
// categorical fields and hashes the device id; the numbers pass through (standard-scaled). Its
// statistics are warmed up by learning every event once first.
void BM_JsonDecodeTransformForPredict(benchmark::State& state) {
  const std::vector<std::string>& events = Events();
  JsonDecoder decoder = Decoder();
  PipelineSpec spec;
  for (const char* name : {"country", "channel", "currency", "mcc", "merchant.country"}) {
    spec.declared.push_back({.name = name, .kind = FeatureDef::Kind::kCategorical});
  }
  spec.declared.push_back(
      {.name = "device", .kind = FeatureDef::Kind::kHashed, .hash_buckets = 1024});
  spec.declared.push_back({.name = "num_00",
                           .kind = FeatureDef::Kind::kNumeric,
                           .imputation = FeatureDef::Imputation::kMean,
                           .missing_indicator = true});
  Pipeline pipeline = std::move(Pipeline::Create(spec).value());
  DecodedEvent event;
  learners::FeatureVector x;
  PipelineScratch scratch;
  for (const std::string& message : events) {
    if (!decoder.Decode(message, &event).ok() ||
        !pipeline.LearnAndTransform(event.features(), &x, &scratch).ok()) {
      state.SkipWithError("warm-up failed");
      return;
    }
  }
  std::size_t i = 0;
  for (auto _ : state) {
    const DecodeStatus s = decoder.Decode(events[i++ & 1023], &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    const absl::Status t = pipeline.TransformForPredict(event.features(), &x, &scratch);
    if (!t.ok()) state.SkipWithError(std::string(t.message()).c_str());
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["inputs"] = static_cast<double>(x.size());
}
BENCHMARK(BM_JsonDecodeTransformForPredict);

}  // namespace
}  // namespace riffle::features

BENCHMARK_MAIN();
