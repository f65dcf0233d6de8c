// The Kafka path's own cost per event, without a broker: KafkaPipeline (decode, apply, format,
// produce, delivery tracking) on the in-memory cluster of the unit tests
// (tests/service/fake_kafka.h). The real-broker figures come from benchmarks/kafka_bench.sh;
// this one isolates Riffle's consume thread, so a change to it can be measured side by side
// on a shared machine (docs/BENCHMARKS.md, "Kafka path").
//
// Each iteration appends kEvents events of the kafka_bench.sh shape (30 numeric features, an
// id, an inline label; about 480 bytes of JSON) to a fresh one-partition topic, starts a
// pipeline with a fresh logistic regression (SGD, lr 0.01) and times it until every
// prediction is delivered.

#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../tests/service/fake_kafka.h"
#include "absl/strings/str_format.h"
#include "checkpoints/env.h"
#include "service/kafka_pipeline.h"
#include "service/model_definition.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::FakeKafkaCluster;

constexpr int kEvents = 100'000;
constexpr int kFeatures = 30;

std::vector<std::string> MakeEvents() {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::vector<std::string> events;
  events.reserve(kEvents);
  for (int i = 0; i < kEvents; ++i) {
    std::string json = absl::StrFormat("{\"id\":\"e-%d\"", i);
    double sum = 0;
    for (int f = 0; f < kFeatures; ++f) {
      const double v = uniform(rng);
      sum += v * (f % 2 == 0 ? 1 : -1);
      absl::StrAppendFormat(&json, ",\"x%d\":%.9f", f, v);
    }
    absl::StrAppendFormat(&json, ",\"class\":\"%d\"}", sum > 0 ? 1 : 0);
    events.push_back(std::move(json));
  }
  return events;
}

std::shared_ptr<ServedModel> MakeModel() {
  riffle::v1::ModelSpec spec;
  spec.set_learner("logreg");
  (*spec.mutable_learner_options())["optimizer"] = "sgd";
  (*spec.mutable_learner_options())["lr"] = "0.01";
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  if (!def.ok()) return nullptr;
  ServedModel::Options options;
  options.env = checkpoints::DefaultEnv();
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("bench", *std::move(def), 1, options);
  if (!model.ok()) return nullptr;
  return std::shared_ptr<ServedModel>(*std::move(model));
}

void BM_KafkaPipelineEvents(benchmark::State& state) {
  static const std::vector<std::string>* const kJson = new std::vector<std::string>(MakeEvents());
  for (auto _ : state) {
    FakeKafkaCluster cluster;
    cluster.CreateTopic("events", 1);
    cluster.CreateTopic("predictions", 1);
    for (int i = 0; i < kEvents; ++i) {
      cluster.Append("events", 0, absl::StrFormat("e-%d", i), (*kJson)[i]);
    }
    std::shared_ptr<ServedModel> model = MakeModel();
    if (model == nullptr) {
      state.SkipWithError("cannot create the model");
      return;
    }
    KafkaClientFactory factory;
    factory.new_consumer =
        [&cluster](
            const KafkaConsumerOptions& o) -> absl::StatusOr<std::unique_ptr<KafkaConsumer>> {
      return cluster.NewConsumer(o.properties.at("group.id"));
    };
    factory.new_producer =
        [&cluster](const KafkaProducerOptions&) -> absl::StatusOr<std::unique_ptr<KafkaProducer>> {
      return cluster.NewProducer();
    };
    KafkaOptions options;
    options.batch_size = 5000;
    KafkaModelOptions model_options;
    model_options.model = "bench";
    model_options.events_topics = {"events"};
    model_options.predictions_topic = "predictions";
    model_options.decoder.label_field = "class";
    KafkaPipeline pipeline(options, model_options, model, factory, nullptr,
                           checkpoints::DefaultEnv());
    const auto start = std::chrono::steady_clock::now();
    pipeline.Start();
    while (pipeline.stats().predictions < static_cast<std::uint64_t>(kEvents)) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const auto end = std::chrono::steady_clock::now();
    pipeline.Stop();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}
BENCHMARK(BM_KafkaPipelineEvents)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace riffle::service

BENCHMARK_MAIN();
