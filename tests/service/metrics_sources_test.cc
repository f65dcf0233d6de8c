#include "service/metrics_sources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "../checkpoints/checkpoint_testing.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::checkpoints::testing::WriteBytes;
using ::riffle::service::testing::FakeClockEnv;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::SeparableStream;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// name{labels} -> value of every counter and gauge sample.
std::map<std::string, double> Values(const MetricFamilies& f) {
  std::map<std::string, double> out;
  for (const MetricFamily& family : f.families()) {
    for (const MetricSample& s : family.samples) {
      std::string key = family.name;
      for (const MetricLabel& l : s.labels) key += "|" + l.name + "=" + l.value;
      out[key] = s.value;
    }
  }
  return out;
}

TEST(ToPrometheusHistogramTest, CountsEachBucketUnderTheFirstBoundAboveItsUpperEdge) {
  LatencyHistogram h;
  // Internal buckets (8 per power of two): 500 ns lies in [480, 511], 1000 ns in [960, 1023],
  // 1500 ns in [1408, 1535]; 3 ms lies above 1 ms; 100 s is beyond the histogram's range.
  for (std::uint64_t nanos : {500ull, 1000ull, 1500ull, 3'000'000ull, 100'000'000'000ull}) {
    h.Record(nanos);
  }
  const std::vector<double> bounds = {1e-6, 2e-6, 1e-3};
  const HistogramData d = ToPrometheusHistogram(h, bounds);
  EXPECT_EQ(d.bounds, bounds);
  // le=1e-6: 500 ns only. 1000 ns shares a bucket reaching 1023 ns, so it is counted at the
  // next bound (never over-counted at 1 µs). le=2e-6: 1000 and 1500 ns. +Inf: 3 ms, 100 s.
  EXPECT_THAT(d.bucket_counts, ElementsAre(1, 2, 0, 2));
  EXPECT_DOUBLE_EQ(d.sum, (500 + 1000 + 1500 + 3e6 + 1e11) * 1e-9);
}

TEST(ToPrometheusHistogramTest, AValueAtABoundIsCountedThere) {
  LatencyHistogram h;
  h.Record(1023);  // the upper edge of its internal bucket [960, 1023]
  const std::vector<double> bounds = {1.023e-6};
  EXPECT_THAT(ToPrometheusHistogram(h, bounds).bucket_counts, ElementsAre(1, 0));
}

TEST(ToPrometheusHistogramTest, DefaultBoundsAreIncreasingFromMicrosecondsToSeconds) {
  const std::span<const double> bounds = LatencyBucketBoundsSeconds();
  ASSERT_GE(bounds.size(), 2u);
  EXPECT_EQ(bounds.front(), 1e-6);
  EXPECT_EQ(bounds.back(), 10);
  for (std::size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  const HistogramData empty = ToPrometheusHistogram(LatencyHistogram(), bounds);
  EXPECT_EQ(empty.bucket_counts.size(), bounds.size() + 1);
  EXPECT_EQ(empty.sum, 0);
}

// A directory shaped like /proc.
void WriteFakeProc(const ScopedTempDir& dir) {
  std::filesystem::create_directories(dir.File("self/fd"));
  for (const char* fd : {"0", "1", "2", "7"})
    WriteBytes(dir.File(std::string("self/fd/") + fd), "");
  // Fields after the command: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime(14)=250 stime(15)=150 cutime cstime priority nice num_threads
  // itrealvalue starttime(22)=5000 vsize(23)=123456789 rss(24)=1000 ...
  WriteBytes(dir.File("self/stat"),
             "4242 (riffle (serve) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 "
             "0 5000 123456789 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 "
             "0 0\n");
  WriteBytes(dir.File("stat"),
             "cpu  1 2 3 4\nintr 12345\nctxt 999\nbtime 1700000000\nprocesses 77\n");
  WriteBytes(dir.File("self/limits"),
             "Limit                     Soft Limit           Hard Limit           Units\n"
             "Max cpu time              unlimited            unlimited            seconds\n"
             "Max open files            4096                 1048576              files\n");
}

TEST(ProcessMetricsSourceTest, ReadsAFakeProc) {
  ScopedTempDir dir;
  WriteFakeProc(dir);
  MetricFamilies f;
  ProcessMetricsSource(dir.path()).Collect(&f);
  EXPECT_THAT(f.errors(), IsEmpty());
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));  // 100 on Linux
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));  // 4096 on x86-64
  const std::map<std::string, double> v = Values(f);
  EXPECT_EQ(v.at("process_cpu_seconds_total"), (250.0 + 150.0) / ticks);  // 4 s at 100 Hz
  EXPECT_EQ(v.at("process_virtual_memory_bytes"), 123456789);
  EXPECT_EQ(v.at("process_resident_memory_bytes"), 1000 * page);
  EXPECT_EQ(v.at("process_start_time_seconds"), 1700000000 + 5000 / ticks);  // + 50 s
  EXPECT_EQ(v.at("process_open_fds"), 4);
  EXPECT_EQ(v.at("process_max_fds"), 4096);
  EXPECT_EQ(v.size(), 6u);
}

TEST(ProcessMetricsSourceTest, LeavesOutWhatItCannotRead) {
  ScopedTempDir dir;
  MetricFamilies f;
  ProcessMetricsSource(dir.File("missing")).Collect(&f);
  EXPECT_TRUE(f.families().empty());
  EXPECT_THAT(f.errors(), IsEmpty());
  // A truncated stat line and "unlimited" files are skipped too.
  std::filesystem::create_directories(dir.File("self"));
  WriteBytes(dir.File("self/stat"), "1 (x) S 1 2 3\n");
  WriteBytes(dir.File("self/limits"),
             "Max open files            unlimited            unlimited  files\n");
  ProcessMetricsSource(dir.path()).Collect(&f);
  EXPECT_TRUE(f.families().empty());
}

TEST(ProcessMetricsSourceTest, ReadsThisProcess) {
  MetricFamilies f;
  ProcessMetricsSource().Collect(&f);
  const std::map<std::string, double> v = Values(f);
  ASSERT_EQ(v.size(), 6u);
  EXPECT_GT(v.at("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(v.at("process_virtual_memory_bytes"), v.at("process_resident_memory_bytes"));
  EXPECT_GE(v.at("process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GT(v.at("process_max_fds"), v.at("process_open_fds"));
  EXPECT_GE(v.at("process_cpu_seconds_total"), 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Started before now, and not a day ago (a test binary lives for minutes).
  EXPECT_LE(v.at("process_start_time_seconds"), now + 1);
  EXPECT_GT(v.at("process_start_time_seconds"), now - 86400);
}

TEST(ModelMetricsSourceTest, ModelsCountAndCheckpointMetrics) {
  ScopedTempDir dir;
  FakeClockEnv env;
  RegistryOptions options;
  options.env = &env;
  options.checkpoint_dir = dir.path();
  ModelRegistry registry(options);
  ModelMetricsSource source(&registry, &env);
  {
    MetricFamilies f;
    source.Collect(&f);
    EXPECT_THAT(f.errors(), IsEmpty());
    EXPECT_EQ(Values(f).at("riffle_models"), 0);
    EXPECT_EQ(f.families().size(), 1u);  // nothing per model without models
  }
  ASSERT_TRUE(registry.Create("m", LogregSpec()).ok());  // writes generation 1 at once
  env.Advance(5'000'000);
  MetricFamilies f;
  source.Collect(&f);
  EXPECT_THAT(f.errors(), IsEmpty());
  const std::map<std::string, double> v = Values(f);
  EXPECT_EQ(v.at("riffle_models"), 1);
  EXPECT_EQ(v.at("riffle_model_info|model=m|learner=logreg"), 1);
  EXPECT_EQ(v.at("riffle_model_checkpoint_generation|model=m"), 1);
  EXPECT_EQ(v.at("riffle_model_checkpoints_written_total|model=m"), 1);
  EXPECT_EQ(v.at("riffle_model_checkpoint_failures_total|model=m"), 0);
  EXPECT_GT(v.at("riffle_model_last_checkpoint_size_bytes|model=m"), 0);
  // Written at the fake clock's start (1.7e9 s), read 5 s later.
  EXPECT_EQ(v.at("riffle_model_last_checkpoint_timestamp_seconds|model=m"), 1.7e9);
  EXPECT_EQ(v.at("riffle_model_seconds_since_last_checkpoint|model=m"), 5);
  EXPECT_EQ(v.at("riffle_model_classes|model=m"), 2);
}

TEST(ModelMetricsSourceTest, NoCheckpointMetricsWithoutAStore) {
  FakeClockEnv env;
  RegistryOptions options;
  options.env = &env;
  ModelRegistry registry(options);
  ASSERT_TRUE(registry.Create("m", LogregSpec()).ok());
  MetricFamilies f;
  ModelMetricsSource(&registry, &env).Collect(&f);
  const std::map<std::string, double> v = Values(f);
  EXPECT_EQ(v.count("riffle_model_checkpoints_written_total|model=m"), 0u);
  EXPECT_EQ(v.count("riffle_model_last_checkpoint_timestamp_seconds|model=m"), 0u);
  EXPECT_EQ(v.at("riffle_model_checkpoint_generation|model=m"), 0);
}

// Learns `n` events of the stream; after `flip_at` the labels are inverted (an abrupt drift).
void LearnStream(ServedModel* model, std::uint64_t seed, int n, int flip_at) {
  SeparableStream stream(seed);
  for (int i = 0; i < n; ++i) {
    std::string label;
    const std::vector<features::NamedFeature> f = stream.Next(&label);
    if (i >= flip_at) label = label == "1" ? "0" : "1";
    const ExampleView example{{"", f}, label, 1.0, false};
    LearnBatchResult result;
    ASSERT_TRUE(model->Learn({&example, 1}, false, &result).ok());
  }
}

TEST(ModelMetricsSourceTest, PredictedClassesCountWhatPredictAnswered) {
  FakeClockEnv env;
  RegistryOptions options;
  options.env = &env;
  ModelRegistry registry(options);
  absl::StatusOr<std::shared_ptr<ServedModel>> model = registry.Create("m", LogregSpec());
  ASSERT_TRUE(model.ok());
  LearnStream(model->get(), 1, 500, 1000);
  // Learning alone predicts nothing.
  {
    MetricFamilies f;
    ModelMetricsSource(&registry, &env).Collect(&f);
    EXPECT_EQ(Values(f).count("riffle_model_predicted_class_total|model=m|class=0"), 0u);
  }
  SeparableStream stream(2);
  std::map<std::string, double> expected;
  for (int i = 0; i < 300; ++i) {
    std::string label;
    const std::vector<features::NamedFeature> f = stream.Next(&label);
    const InstanceView instance{"", f};
    PredictBatchResult result;
    ASSERT_TRUE((*model)->Predict({&instance, 1}, &result).ok());
    ASSERT_TRUE(result.predicted[0].has_value());
    expected[result.classes[*result.predicted[0]]] += 1;
  }
  ASSERT_EQ(expected.size(), 2u);  // both classes predicted: the counts are not trivially equal
  MetricFamilies f;
  ModelMetricsSource(&registry, &env).Collect(&f);
  EXPECT_THAT(f.errors(), IsEmpty());
  const std::map<std::string, double> v = Values(f);
  EXPECT_EQ(v.at("riffle_model_predicted_class_total|model=m|class=0"), expected["0"]);
  EXPECT_EQ(v.at("riffle_model_predicted_class_total|model=m|class=1"), expected["1"]);
  EXPECT_EQ(v.at("riffle_model_drift_detections_total|model=m"), 0);  // logreg detects none
}

TEST(ModelMetricsSourceTest, DriftDetectionsOfAnAdaptiveTree) {
  FakeClockEnv env;
  RegistryOptions options;
  options.env = &env;
  ModelRegistry registry(options);
  riffle::v1::ModelSpec spec;
  spec.set_learner("hoeffding_adaptive_tree");
  (*spec.mutable_learner_options())["seed"] = "7";
  absl::StatusOr<std::shared_ptr<ServedModel>> model = registry.Create("hat", spec);
  ASSERT_TRUE(model.ok()) << model.status();
  LearnStream(model->get(), 3, 3000, 3000);
  MetricFamilies before;
  ModelMetricsSource(&registry, &env).Collect(&before);
  const double stable = Values(before).at("riffle_model_drift_detections_total|model=hat");
  LearnStream(model->get(), 4, 3000, 0);  // every label flipped: the tree's error jumps
  MetricFamilies after;
  ModelMetricsSource(&registry, &env).Collect(&after);
  EXPECT_GT(Values(after).at("riffle_model_drift_detections_total|model=hat"), stable);
}

}  // namespace
}  // namespace riffle::service
