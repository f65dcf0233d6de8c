// Do checkpoints stall predictions? (issue 5: "no prediction stalls longer than 1 ms while a
// checkpoint is being written"). Not Google Benchmark: it measures the distribution of every
// prediction's latency on one thread while another thread learns and the model's checkpointer
// writes, and the same run without checkpoints, side by side.
//
//   build/release/benchmarks/checkpoint_stall_benchmark [--seconds 10] [--every-events 20000]
//       [--only hashed|aggregates|tree] [--default-malloc]
//
// Per model (below), two runs of --seconds each, in this order: without checkpoints, then with a
// checkpoint every --every-events learned events (each a full snapshot, then serialization and
// an fsync'ed write on the checkpointer thread). In both runs one thread predicts one instance
// per call as fast as it can, and one thread learns batches of 100 examples every 10 ms (10,000
// learned events/s). Printed per run: predictions, their p50 / p99 / p99.9 / max latency and how
// many took over 1 ms, split by what overlapped them (a snapshot, a write, neither); the
// snapshots' count and longest; the learner's slowest batch (it pays for the snapshot); the
// longest write and the checkpoint's size.
//
// Models (ServedModel, as `riffle serve` runs them):
//   hashed:     logistic regression with Adam over a HASHED feature of 2^20 buckets plus 20
//               numbers (weights and both moments: 3 x 8 MB copied per snapshot);
//   aggregates: the same plus two windowed aggregates by card, pre-filled with 1,000,000 cards,
//               and 200,000 predictions awaiting their labels in the label cache; every tenth
//               prediction has an id (cached for its label);
//   tree (only with --only tree: growing it takes minutes): a Hoeffding tree grown on 30
//               numbers and 4 classes until its memory estimate reaches 60 MB (17 M events, a
//               27 MB checkpoint, as checkpoint_benchmark's 10,000-node tree).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "checkpoints/env.h"
#include "service/model_definition.h"
#include "service/serve_config.h"
#include "service/served_model.h"

namespace riffle::service {
namespace {

constexpr char kHashedSpec[] = R"(
learner: logreg
learner_options: {optimizer: adam, lr: 0.05}
classes: ["0", "1"]
label_cache_max_entries: 1000000
features:
  declared:
    - {name: user, kind: HASHED, hash_buckets: 1048576}
)";

// kHashedSpec plus these.
constexpr char kAggregates[] = R"(
  aggregates:
    - {name: card_n_10m, function: COUNT, window_seconds: 600, sliding: true, hop_seconds: 60}
    - {name: card_x0_mean_1h, function: MEAN, field: x0, window_seconds: 3600}
)";

// A tree grown as checkpoint_benchmark grows its 10,000-node one: 30 numbers, 4 classes from
// many thresholds of many features, a short grace period and a permissive delta.
constexpr char kTreeSpec[] = R"(
learner: hoeffding_tree
learner_options: {grace_period: 50, delta: 0.01, max_size: 4096}
classes: ["0", "1", "2", "3"]
)";
constexpr int kTreeFeatures = 30;
// Grown until its memory estimate reaches this (or kTreeMaxEvents).
constexpr std::uint64_t kTreeBytes = 60'000'000;
constexpr std::uint64_t kTreeMaxEvents = 20'000'000;

constexpr int kNumbers = 20;
constexpr std::int64_t kCards = 1'000'000;
constexpr std::int64_t kSecond = 1'000'000;

// A pool of events: a user (hashed), 20 numbers, a label from a linear rule.
struct Event {
  std::string user;
  std::vector<std::string> names;
  std::vector<features::NamedFeature> features;
  std::string label;
};

std::vector<Event> MakeEvents(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> user(0, (1 << 20) - 1);
  std::vector<Event> events(n);
  for (Event& e : events) {
    e.user = absl::StrCat("u", user(rng));
    double score = 0;
    for (int j = 0; j < kNumbers; ++j) e.names.push_back(absl::StrCat("x", j));
    e.features.push_back({"user", features::FeatureValue::Text(e.user)});
    for (int j = 0; j < kNumbers; ++j) {
      const double v = normal(rng);
      score += (j % 2 == 0 ? 1 : -1) * v;
      e.features.push_back({e.names[j], features::FeatureValue::Number(v)});
    }
    e.label = score > 0 ? "1" : "0";
  }
  return events;
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
}

// Events for the tree: uniform numbers, the label from their eighths.
std::vector<Event> MakeTreeEvents(int n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Event> events(n);
  for (Event& e : events) {
    int h = 0;
    for (int j = 0; j < kTreeFeatures; ++j) e.names.push_back(absl::StrCat("x", j));
    for (int j = 0; j < kTreeFeatures; ++j) {
      const double v = u(rng);
      h += static_cast<int>(v * 8) * (j + 1);
      e.features.push_back({e.names[j], features::FeatureValue::Number(v)});
    }
    e.label = absl::StrCat(h % 4);
  }
  return events;
}

// Grows the tree on fresh events; returns the events learned.
std::uint64_t GrowTree(ServedModel* model) {
  std::mt19937_64 rng(3);
  std::vector<ExampleView> batch;
  LearnBatchResult learned;
  std::uint64_t n = 0;
  while (n < kTreeMaxEvents && model->Info().memory_bytes < kTreeBytes) {
    const std::vector<Event> events = MakeTreeEvents(10'000, rng);
    for (const Event& e : events) batch.push_back({{"", e.features}, e.label, 1.0, false});
    Check(model->Learn(batch, false, &learned));
    batch.clear();
    n += events.size();
  }
  return n;
}

std::unique_ptr<ServedModel> MakeModel(const std::string& yaml, const std::string& dir,
                                       std::uint64_t every_events,
                                       std::function<void()> on_snapshot) {
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(yaml, "bench.yaml");
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
    std::exit(1);
  }
  absl::StatusOr<ModelDefinition> definition = DefinitionFromSpec(*spec);
  if (!definition.ok()) {
    std::fprintf(stderr, "%s\n", std::string(definition.status().message()).c_str());
    std::exit(1);
  }
  ServedModel::Options options;
  options.env = checkpoints::DefaultEnv();
  options.checkpoint_dir = dir;
  options.schedule.every_events = every_events;
  options.schedule.every_seconds = 0;
  options.on_snapshot = std::move(on_snapshot);
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("bench", *std::move(definition), 1, options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(model);
}

std::int64_t NowMicros() { return checkpoints::DefaultEnv()->NowMicros(); }

// Teaches the model every event of the pool once (so every weight is touched and the weight
// vectors have their full size), then, with aggregates, records kCards cards and leaves
// `pending` predictions with ids in the label cache.
void Prefill(ServedModel* model, const std::vector<Event>& events, bool aggregates, int pending) {
  std::vector<ExampleView> batch;
  LearnBatchResult learned;
  for (const Event& e : events) {
    batch.push_back({{"", e.features}, e.label, 1.0, false});
    if (batch.size() == 1000) {
      Check(model->Learn(batch, false, &learned));
      batch.clear();
    }
  }
  if (!aggregates) return;
  const std::int64_t t0 = NowMicros() - 60 * kSecond;
  PredictBatchResult result;
  std::vector<std::string> keys(1000);
  std::vector<InstanceView> instances(1000);
  for (std::int64_t c = 0; c < kCards; c += 1000) {
    for (int i = 0; i < 1000; ++i) {
      keys[i] = absl::StrCat("c", c + i);
      instances[i] = {"", events[(c + i) % events.size()].features, keys[i], t0};
    }
    Check(model->Predict(instances, &result));
  }
  std::vector<std::string> ids(1000);
  for (int p = 0; p < pending; p += 1000) {
    for (int i = 0; i < 1000; ++i) {
      ids[i] = absl::StrCat("pending-", p + i);
      keys[i] = absl::StrCat("c", (p + i) % kCards);
      instances[i] = {ids[i], events[(p + i) % events.size()].features, keys[i], t0};
    }
    Check(model->Predict(instances, &result));
  }
}

// Nanoseconds on the steady clock.
std::int64_t Nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Interval {
  std::int64_t begin = 0;
  std::int64_t end = 0;
};

// What the checkpoints were doing when: the snapshot (from the start of the Learn call that
// took it to the moment it was handed over; ServedModel::Options::on_snapshot) and the write
// (the checkpointer's before/after hooks: serialization, checksum, write, fsync, rename).
struct Timeline {
  std::mutex mu;
  std::vector<Interval> snapshots;
  std::vector<Interval> writes;
  std::int64_t learn_begin = 0;    // of the Learn call in progress
  std::int64_t snapshot_end = -1;  // set by on_snapshot during that call
};

struct RunResult {
  std::vector<Interval> predictions;
  std::int64_t slowest_learn_nanos = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoint_bytes = 0;  // the last one
  std::vector<Interval> snapshots;
  std::vector<Interval> writes;
};

RunResult Run(ServedModel* model, Timeline* timeline, const std::vector<Event>& events,
              bool aggregates, double seconds) {
  RunResult out;
  out.predictions.reserve(static_cast<std::size_t>(seconds * 3'000'000));
  const std::uint64_t written_before =
      model->checkpoint_stats().has_value() ? model->checkpoint_stats()->written : 0;
  std::atomic<bool> stop{false};
  std::thread learner([&] {
    std::size_t next = 0;
    std::vector<ExampleView> batch;
    LearnBatchResult learned;
    auto wake = std::chrono::steady_clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
      batch.clear();
      for (int i = 0; i < 100; ++i, ++next) {
        const Event& e = events[next % events.size()];
        batch.push_back({{"", e.features}, e.label, 1.0, false});
      }
      const std::int64_t begin = Nanos();
      {
        std::lock_guard<std::mutex> lock(timeline->mu);
        timeline->learn_begin = begin;
        timeline->snapshot_end = -1;
      }
      Check(model->Learn(batch, false, &learned));
      out.slowest_learn_nanos = std::max(out.slowest_learn_nanos, Nanos() - begin);
      {
        std::lock_guard<std::mutex> lock(timeline->mu);
        if (timeline->snapshot_end >= 0) {
          timeline->snapshots.push_back({begin, timeline->snapshot_end});
        }
      }
      wake += std::chrono::milliseconds(10);
      std::this_thread::sleep_until(wake);
    }
  });
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> card(0, kCards - 1);
  std::string key;
  std::string id;
  PredictBatchResult result;
  const std::int64_t end = Nanos() + static_cast<std::int64_t>(seconds * 1e9);
  for (std::uint64_t n = 0;; ++n) {
    const std::int64_t begin = Nanos();
    if (begin >= end) break;
    const Event& e = events[n % events.size()];
    InstanceView instance{"", e.features};
    if (aggregates) {
      key = absl::StrCat("c", card(rng));
      instance.key = key;
      instance.time_micros = NowMicros();
      if (n % 10 == 0) {
        id = absl::StrCat("live-", n);
        instance.id = id;
      }
    }
    Check(model->Predict({&instance, 1}, &result));
    out.predictions.push_back({begin, Nanos()});
  }
  stop = true;
  learner.join();
  model->StopCheckpointing();
  if (model->checkpoint_stats().has_value()) {
    out.checkpoints = model->checkpoint_stats()->written - written_before;
    out.checkpoint_bytes = model->checkpoint_stats()->last_bytes;
  }
  std::lock_guard<std::mutex> lock(timeline->mu);
  out.snapshots = std::move(timeline->snapshots);
  out.writes = std::move(timeline->writes);
  return out;
}

double QuantileMicros(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const std::size_t i =
      std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[i]) / 1e3;
}

bool Overlaps(const Interval& a, const std::vector<Interval>& sorted) {
  // The last interval starting before a ends.
  auto it = std::upper_bound(sorted.begin(), sorted.end(), a.end,
                             [](std::int64_t t, const Interval& i) { return t < i.begin; });
  return it != sorted.begin() && std::prev(it)->end >= a.begin;
}

// The predictions over 1 ms, by what overlapped them: "count / slowest ms".
struct Slow {
  std::size_t count = 0;
  std::int64_t max = 0;
  void Add(std::int64_t nanos) {
    ++count;
    max = std::max(max, nanos);
  }
  std::string Format() const {
    return count == 0 ? "0" : absl::StrFormat("%d / %.1f", count, static_cast<double>(max) / 1e6);
  }
};

void Print(const char* model, const std::string& mode, const RunResult& r) {
  std::vector<std::int64_t> latencies;
  latencies.reserve(r.predictions.size());
  Slow in_snapshot, in_write, elsewhere;
  for (const Interval& p : r.predictions) {
    const std::int64_t nanos = p.end - p.begin;
    latencies.push_back(nanos);
    if (nanos <= 1'000'000) continue;
    if (Overlaps(p, r.snapshots)) {
      in_snapshot.Add(nanos);
    } else if (Overlaps(p, r.writes)) {
      in_write.Add(nanos);
    } else {
      elsewhere.Add(nanos);
    }
  }
  std::sort(latencies.begin(), latencies.end());
  std::int64_t snapshot_max = 0;
  for (const Interval& s : r.snapshots) snapshot_max = std::max(snapshot_max, s.end - s.begin);
  std::int64_t write_max = 0;
  for (const Interval& w : r.writes) write_max = std::max(write_max, w.end - w.begin);
  std::printf(
      "| %s | %s | %zu | %.1f | %.1f | %.1f | %.2f | %s | %s | %s | %zu / %.1f | %.1f | %.0f / "
      "%.1f |\n",
      model, mode.c_str(), latencies.size(), QuantileMicros(latencies, 0.5),
      QuantileMicros(latencies, 0.99), QuantileMicros(latencies, 0.999),
      latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6,
      in_snapshot.Format().c_str(), in_write.Format().c_str(), elsewhere.Format().c_str(),
      r.snapshots.size(), static_cast<double>(snapshot_max) / 1e6,
      static_cast<double>(r.slowest_learn_nanos) / 1e6, static_cast<double>(write_max) / 1e6,
      static_cast<double>(r.checkpoint_bytes) / (1 << 20));
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  CLI::App app("Prediction latency while checkpoints are written, against no checkpoints");
  double seconds = 10;
  std::uint64_t every_events = 20'000;
  std::string only;
  app.add_option("--seconds", seconds, "measured seconds per run")->check(CLI::PositiveNumber);
  app.add_option("--every-events", every_events, "checkpoint trigger")->check(CLI::PositiveNumber);
  app.add_option("--only", only,
                 "hashed, aggregates or tree (default: hashed and aggregates; tree takes minutes "
                 "to grow)");
  bool default_malloc = false;
  app.add_flag("--default-malloc", default_malloc,
               "keep glibc's default malloc settings (`riffle serve` tunes them)");
  CLI11_PARSE(app, argc, argv);
  if (!default_malloc) TuneAllocatorForServing();  // as `riffle serve`

  const std::vector<Event> events = MakeEvents(200'000, 1);
  std::mt19937_64 tree_rng(5);
  const std::vector<Event> tree_events = MakeTreeEvents(200'000, tree_rng);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrFormat("riffle-stall-%d", ::getpid());
  std::printf(
      "| model | checkpoints | predictions | p50 µs | p99 µs | p99.9 µs | max ms | > 1 ms during "
      "a snapshot (n / max ms) | > 1 ms during a write | > 1 ms elsewhere | snapshots (n / max "
      "ms) | slowest learn batch ms | slowest write ms / MB |\n|---|---|---:|---:|---:|---:|---:|"
      "---:|---:|---:|---:|---:|---:|\n");
  for (const char* name : {"hashed", "aggregates", "tree"}) {
    const bool aggregates = std::string_view(name) == "aggregates";
    const bool tree = std::string_view(name) == "tree";
    if (only.empty() ? tree : only != name) continue;
    for (const bool checkpoints : {false, true}) {
      const std::string model_dir = checkpoints ? (dir / name).string() : "";
      Timeline timeline;
      std::unique_ptr<ServedModel> model =
          MakeModel(tree ? kTreeSpec : absl::StrCat(kHashedSpec, aggregates ? kAggregates : ""),
                    model_dir, every_events, [&timeline] {
                      std::lock_guard<std::mutex> lock(timeline.mu);
                      timeline.snapshot_end = Nanos();
                    });
      if (tree) {
        const std::uint64_t grown = GrowTree(model.get());
        std::fprintf(stderr, "tree: %llu events, memory estimate %.1f MB\n",
                     static_cast<unsigned long long>(grown),
                     static_cast<double>(model->Info().memory_bytes) / 1e6);
      } else {
        Prefill(model.get(), events, aggregates, 200'000);
      }
      checkpoints::Checkpointer::Hooks hooks;
      hooks.before_write = [&timeline](const checkpoints::ModelState&) {
        std::lock_guard<std::mutex> lock(timeline.mu);
        timeline.writes.push_back({Nanos(), -1});
        return absl::OkStatus();
      };
      hooks.after_write = [&timeline](const checkpoints::ModelState&, std::uint64_t) {
        std::lock_guard<std::mutex> lock(timeline.mu);
        timeline.writes.back().end = Nanos();
      };
      model->SetCheckpointHooks(hooks);
      {
        std::lock_guard<std::mutex> lock(timeline.mu);
        timeline.snapshots.clear();
        timeline.writes.clear();
      }
      Print(name, checkpoints ? absl::StrCat("every ", every_events, " events") : "none",
            Run(model.get(), &timeline, tree ? tree_events : events, aggregates, seconds));
      model->SetCheckpointHooks({});
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace riffle::service

int main(int argc, char** argv) { return riffle::service::Main(argc, argv); }
