// JSON event decoding, alone and followed by the feature pipeline, with and without windowed
// aggregates (Google Benchmark).
//
//   build/release/benchmarks/json_decoder_benchmark --benchmark_min_time=1
//
// The event: a 30-feature payment, as the Kafka path will see it, plus id, key, time and label:
// 20 numbers, 5 categorical strings, 2 booleans, and a nested "merchant" object with 3 fields
// (flattened to "merchant.country", ...), about 800 bytes. 1,024 distinct events (values drawn
// with a fixed seed) are decoded in turn, so the branch predictor cannot learn one message.
// items_per_second is events per second on one core.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "features/json_decoder.h"
#include "features/pipeline.h"
#include "features/window_aggregates.h"

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
  // The share of messages the direct scan along the layout decoded (see JsonDecoder).
  state.counters["scanned"] =
      static_cast<double>(decoder.scanned_messages()) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_JsonDecode30Fields);

// The events above as other producers write them, decoded in turn as above:
// state.range(0) 0: as Python's json.dumps would write them with other values: the numbers
//    random doubles (their repr: 16 or 17 significant digits) and the countries with a \u
//    escape ("F\u00e9R"), as json.dumps writes every non-ASCII character;
// 1: every other event without its "device" field, so no event has the keys of the one before
//    (the direct scan along the layout gives up on each, and pauses).
std::vector<std::string> ProducerEvents(int style) {
  std::vector<std::string> events = MakeEvents(1024);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> fraction(0.0, 1.0);
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::string& e = events[i];
    if (style == 0) {
      // "num_07":0.25 -> "num_07":417.02200470257400, "FR" -> "F\\u00e9R"
      for (std::size_t at = e.find("\"num_"); at != std::string::npos;
           at = e.find("\"num_", at + 1)) {
        const std::size_t begin = e.find(':', at) + 1;
        const std::size_t end = e.find(',', begin);
        e.replace(begin, end - begin, absl::StrFormat("%.17g", 1000.0 * fraction(rng)));
      }
      for (std::size_t at = e.find("\"country\":\""); at != std::string::npos;
           at = e.find("\"country\":\"", at + 1)) {
        e.insert(at + 12, "\\u00e9");
      }
    } else if (i % 2 == 1) {
      const std::size_t at = e.find("\"device\":");
      e.erase(at, e.find(',', at) + 1 - at);
    }
  }
  return events;
}

void BM_JsonDecodeProducerStyle(benchmark::State& state) {
  const std::vector<std::string> events = ProducerEvents(static_cast<int>(state.range(0)));
  JsonDecoder decoder = Decoder();
  DecodedEvent event;
  std::size_t i = 0;
  for (auto _ : state) {
    const DecodeStatus s = decoder.Decode(events[i++ & 1023], &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(event.features().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["scanned"] =
      static_cast<double>(decoder.scanned_messages()) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_JsonDecodeProducerStyle)->Arg(0)->Arg(1);

// The pipeline declares the categorical fields and hashes the device id; the numbers pass
// through (standard-scaled).
PipelineSpec PaymentPipelineSpec() {
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
  return spec;
}

// Decode, then the model input as the predict path computes it. The pipeline's statistics are
// warmed up by learning every event once first.
void BM_JsonDecodeTransformForPredict(benchmark::State& state) {
  const std::vector<std::string>& events = Events();
  JsonDecoder decoder = Decoder();
  Pipeline pipeline = std::move(Pipeline::Create(PaymentPipelineSpec()).value());
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

// The two aggregates of the windowed-aggregate benchmarks, keyed by the event key (the card):
// events of the card in the last 10 minutes (sliding, 1-minute hop) and the mean amount of the
// card in the current hour (tumbling).
WindowAggregator CardAggregator() {
  AggregatorSpec spec;
  AggregateDef& count = spec.aggregates.emplace_back();
  count.name = "card_count_10m";
  count.function = AggregateDef::Function::kCount;
  count.window_seconds = 600;
  count.hop_seconds = 60;
  AggregateDef& mean = spec.aggregates.emplace_back();
  mean.name = "card_amount_mean_1h";
  mean.field = "num_00";  // the amount
  mean.function = AggregateDef::Function::kMean;
  mean.window_seconds = 3600;
  return std::move(WindowAggregator::Create(spec).value());
}

// Card i of `cards`, visited in a scattered order (as real traffic), as "card-<n>" in *buffer.
std::string_view CardKey(std::uint64_t i, std::uint64_t cards, char (&buffer)[32]) {
  const std::uint64_t card = (i * 7919) % cards;  // 7919 is prime: a permutation of the cards
  std::memcpy(buffer, "card-", 5);
  auto [end, ec] = std::to_chars(buffer + 5, buffer + sizeof(buffer), card);
  return std::string_view(buffer, static_cast<std::size_t>(end - buffer));
}

constexpr std::int64_t kBenchStartMicros = 1'714'564'800'000'000;  // 2024-05-01T12:00:00Z

// The predict path of a model with windowed aggregates: decode, ComputeAndObserve the event's
// two aggregates (appended to its features; the served model does the same), then
// TransformForPredict of the features with the aggregates. The 1,024 messages are decoded in turn
// as above; the key and time come from the loop instead of the message, so the aggregator sees
// state.range(0) distinct cards (each already tracked: the table is warmed up with all of them
// first) and an event time that advances 10 ms per event (a card comes back every cards * 10 ms:
// 1,000 s for 100k cards, within the hour-long horizon, so no key expires). The pipeline is the one
// above; compare with BM_JsonDecodeTransformForPredict for the cost of the aggregates.
void BM_JsonDecodeAggregateTransform(benchmark::State& state) {
  const std::vector<std::string>& events = Events();
  const auto cards = static_cast<std::uint64_t>(state.range(0));
  JsonDecoder decoder = Decoder();
  Pipeline pipeline = std::move(Pipeline::Create(PaymentPipelineSpec()).value());
  WindowAggregator aggregator = CardAggregator();
  WindowAggregator::Scratch agg_scratch;
  DecodedEvent event;
  std::vector<NamedFeature> features;
  learners::FeatureVector x;
  PipelineScratch scratch;
  char buffer[32];
  std::uint64_t i = 0;
  const auto step = [&](bool learn) {
    const DecodeStatus s = decoder.Decode(events[i & 1023], &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    const std::string_view key = CardKey(i, cards, buffer);
    const std::int64_t t = kBenchStartMicros + static_cast<std::int64_t>(i) * 10'000;
    features.assign(event.features().begin(), event.features().end());
    aggregator.ComputeAndObserve(key, event.features(), t, &features, &agg_scratch);
    const absl::Status st = learn ? pipeline.LearnAndTransform(features, &x, &scratch)
                                  : pipeline.TransformForPredict(features, &x, &scratch);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    ++i;
  };
  // Warm-up: every card tracked, then the pipeline's statistics learned from 1,024 events whose
  // cards have history (so both aggregates are features it knows).
  while (i < cards) step(/*learn=*/false);
  for (int k = 0; k < 1024; ++k) step(/*learn=*/true);
  for (auto _ : state) {
    step(/*learn=*/false);
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["keys"] = static_cast<double>(aggregator.stats().keys);
  state.counters["inputs"] = static_cast<double>(x.size());
}
BENCHMARK(BM_JsonDecodeAggregateTransform)->Arg(1024)->Arg(100'000);

// ComputeAndObserve of the two aggregates alone, on the features of a decoded event (so the
// field lookups scan a real event), over state.range(0) distinct cards: 1,024 cards stay in
// cache (a warm key), 100k do not.
void BM_AggregateComputeObserve(benchmark::State& state) {
  const auto cards = static_cast<std::uint64_t>(state.range(0));
  JsonDecoder decoder = Decoder();
  DecodedEvent event;
  if (!decoder.Decode(Events()[0], &event).ok()) state.SkipWithError("decode failed");
  WindowAggregator aggregator = CardAggregator();
  WindowAggregator::Scratch scratch;
  std::vector<NamedFeature> out;
  char buffer[32];
  std::uint64_t i = 0;
  const auto step = [&] {
    const std::string_view key = CardKey(i, cards, buffer);
    const std::int64_t t = kBenchStartMicros + static_cast<std::int64_t>(i) * 10'000;
    out.clear();
    aggregator.ComputeAndObserve(key, event.features(), t, &out, &scratch);
    ++i;
  };
  while (i < cards) step();
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_AggregateComputeObserve)->Arg(1024)->Arg(100'000);

// Memory per tracked key: state.range(0) distinct cards observed state.range(1) times each
// (1 ms apart in event time, so none expires), then MemoryBytes() / keys. One iteration: the
// time is the cost of building the table (items: observed events).
void BM_AggregatorMemoryPerKey(benchmark::State& state) {
  const auto cards = static_cast<std::uint64_t>(state.range(0));
  const auto visits = static_cast<std::uint64_t>(state.range(1));
  JsonDecoder decoder = Decoder();
  DecodedEvent event;
  if (!decoder.Decode(Events()[0], &event).ok()) state.SkipWithError("decode failed");
  WindowAggregator::Scratch scratch;
  char buffer[32];
  double bytes_per_key = 0;
  double keys = 0;
  for (auto _ : state) {
    WindowAggregator aggregator = CardAggregator();
    for (std::uint64_t i = 0; i < cards * visits; ++i) {
      aggregator.Observe(CardKey(i, cards, buffer), event.features(),
                         kBenchStartMicros + static_cast<std::int64_t>(i) * 1'000, &scratch);
    }
    keys = static_cast<double>(aggregator.stats().keys);
    bytes_per_key = static_cast<double>(aggregator.MemoryBytes()) / keys;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * cards * visits));
  state.counters["keys"] = keys;
  state.counters["bytes_per_key"] = bytes_per_key;
}
BENCHMARK(BM_AggregatorMemoryPerKey)
    ->Args({1'000'000, 1})
    ->Args({1'000'000, 3})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// state.range(0) cards tracked by a CardAggregator(), one event each (1 ms apart in event time),
// all with the features of one decoded event. `next` is the index of the next event:
// CardKey(next, cards) visits the cards again in the same order.
struct TrackedCards {
  explicit TrackedCards(benchmark::State& state)
      : cards(static_cast<std::uint64_t>(state.range(0))), aggregator(CardAggregator()) {
    JsonDecoder decoder = Decoder();
    if (!decoder.Decode(Events()[0], &event).ok()) state.SkipWithError("decode failed");
    WindowAggregator::Scratch scratch;
    char buffer[32];
    for (; next < cards; ++next) {
      aggregator.Observe(CardKey(next, cards, buffer), event.features(),
                         kBenchStartMicros + static_cast<std::int64_t>(next) * 1'000, &scratch);
    }
  }

  std::uint64_t cards;
  DecodedEvent event;
  WindowAggregator aggregator;
  std::uint64_t next = 0;
};

// What a checkpoint of a served model with aggregates costs the serving path: the snapshot copies
// the aggregator with the model locked (ServedModel::SubmitLocked).
void BM_AggregatorSnapshotCopy(benchmark::State& state) {
  const TrackedCards tracked(state);
  for (auto _ : state) {
    WindowAggregator copy = tracked.aggregator;
    benchmark::DoNotOptimize(copy);
  }
  state.counters["keys"] = static_cast<double>(tracked.aggregator.stats().keys);
}
BENCHMARK(BM_AggregatorSnapshotCopy)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// The rest of a checkpoint's cost to the serving path: the events right after the snapshot copy.
// With storage shared copy-on-write between the aggregator and its copy, an event that writes
// into a shared chunk first clones it, under the same lock as the copy. Each iteration copies an
// aggregator of state.range(0) cards, keeps the copy alive (a checkpoint being written) and
// times the next 10,000 events one by one: Compute + Observe of a tracked card, 1 ms apart (no
// key expires or is added). The cards' slots are in the order CardKey first visited them, so
// the events pick CardKey(j) with j stepping by a large prime: scattered over the slots and
// their chunks, as real traffic, rather than along them. Counters over all iterations: the
// mean, 99th and 99.9th percentiles and the slowest of those events (each timing includes the
// ~20 ns of reading the clock twice; on a busy machine the slowest is often a preemption, a
// scheduler tick of 4 ms). The iteration time includes the copy and the copy's destruction.
void BM_AggregatorEventsAfterSnapshotCopy(benchmark::State& state) {
  constexpr int kEvents = 10'000;
  TrackedCards tracked(state);
  const std::uint64_t cards = tracked.cards;
  const DecodedEvent& event = tracked.event;
  WindowAggregator& aggregator = tracked.aggregator;
  std::uint64_t i = tracked.next;
  constexpr std::uint64_t kStride = 104'729;  // a prime: j visits every card
  std::uint64_t j = 0;
  WindowAggregator::Scratch scratch;
  std::vector<NamedFeature> out;
  char buffer[32];
  std::vector<double> event_ns;
  event_ns.reserve(static_cast<std::size_t>(state.max_iterations) * kEvents);
  for (auto _ : state) {
    WindowAggregator copy = aggregator;
    for (int k = 0; k < kEvents; ++k, ++i, j = (j + kStride) % cards) {
      const std::string_view key = CardKey(j, cards, buffer);
      const std::int64_t t = kBenchStartMicros + static_cast<std::int64_t>(i) * 1'000;
      const auto start = std::chrono::steady_clock::now();
      out.clear();
      aggregator.Compute(key, event.features(), t, &out, &scratch);
      aggregator.Observe(key, event.features(), t, &scratch);
      event_ns.push_back(
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
              .count());
    }
    benchmark::DoNotOptimize(copy);
  }
  std::sort(event_ns.begin(), event_ns.end());
  double total_ns = 0;
  for (const double ns : event_ns) total_ns += ns;
  state.counters["keys"] = static_cast<double>(aggregator.stats().keys);
  state.counters["mean_event_ns"] = total_ns / static_cast<double>(event_ns.size());
  state.counters["p99_event_ns"] = event_ns[event_ns.size() * 99 / 100];
  state.counters["p999_event_ns"] = event_ns[event_ns.size() * 999 / 1000];
  state.counters["slowest_event_ns"] = event_ns.back();
}
BENCHMARK(BM_AggregatorEventsAfterSnapshotCopy)
    ->Arg(1'000'000)
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace riffle::features

BENCHMARK_MAIN();
