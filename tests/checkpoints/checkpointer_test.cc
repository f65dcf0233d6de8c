#include "checkpoints/checkpointer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "learners/logistic_regression.h"
#include "tests/checkpoints/checkpoint_testing.h"

namespace riffle::checkpoints {
namespace {

using ::riffle::checkpoints::testing::FaultInjectionEnv;
using ::riffle::checkpoints::testing::ScopedTempDir;

ModelState SmallModel(int examples) {
  ModelState state;
  state.name = "m";
  auto model =
      std::make_unique<learners::LogisticRegression>(learners::LogisticRegressionOptions{});
  learners::FeatureVector x;
  x.Add(0, 1.0);
  x.Add(3, -2.0);
  for (int i = 0; i < examples; ++i) model->LearnOne(x, i % 2);
  state.learner = std::move(model);
  state.counters.events = static_cast<std::uint64_t>(examples);
  state.next_offsets["events/0"] = examples;
  return state;
}

std::unique_ptr<CheckpointStore> OpenStore(Env* env, const std::string& dir) {
  absl::StatusOr<std::unique_ptr<CheckpointStore>> store =
      CheckpointStore::Open(env, {.dir = dir, .keep = 3});
  EXPECT_TRUE(store.ok()) << store.status();
  return *std::move(store);
}

TEST(CheckpointerTest, WritesSubmittedSnapshotsInTheBackground) {
  ScopedTempDir dir;
  std::unique_ptr<CheckpointStore> store = OpenStore(DefaultEnv(), dir.path());
  {
    Checkpointer checkpointer(store.get(), DefaultEnv());
    ASSERT_TRUE(checkpointer.TrySubmit(SmallModel(10)));
    checkpointer.Wait();
    EXPECT_EQ(checkpointer.stats().written, 1u);
    EXPECT_EQ(checkpointer.stats().last_generation, 1u);
  }
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<ModelState> state = ParseModelState(loaded->payload);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->counters.events, 10u);
  EXPECT_EQ(state->next_offsets.at("events/0"), 10);
  EXPECT_EQ(state->generation, 1u);  // the generation it was written as
}

TEST(CheckpointerTest, AtMostOneSnapshotInFlight) {
  ScopedTempDir dir;
  std::unique_ptr<CheckpointStore> store = OpenStore(DefaultEnv(), dir.path());
  Checkpointer checkpointer(store.get(), DefaultEnv());
  int accepted = 0;
  for (int i = 0; i < 50; ++i) accepted += checkpointer.TrySubmit(SmallModel(i)) ? 1 : 0;
  checkpointer.Wait();
  const Checkpointer::Stats stats = checkpointer.stats();
  EXPECT_GE(accepted, 1);
  EXPECT_EQ(stats.written, static_cast<std::uint64_t>(accepted));
  EXPECT_EQ(stats.skipped_busy, static_cast<std::uint64_t>(50 - accepted));
}

TEST(CheckpointerTest, WriteNowWaitsForTheWriteInFlightAndIsNewest) {
  ScopedTempDir dir;
  std::unique_ptr<CheckpointStore> store = OpenStore(DefaultEnv(), dir.path());
  Checkpointer checkpointer(store.get(), DefaultEnv());
  checkpointer.TrySubmit(SmallModel(5));
  absl::StatusOr<std::uint64_t> generation = checkpointer.WriteNow(SmallModel(7));
  ASSERT_TRUE(generation.ok()) << generation.status();
  EXPECT_EQ(*generation, 2u);
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->generation, 2u);
  EXPECT_EQ(ParseModelState(loaded->payload)->counters.events, 7u);
}

TEST(CheckpointerTest, AFailedWriteIsCountedAndThePreviousGenerationSurvives) {
  ScopedTempDir dir;
  FaultInjectionEnv env;
  std::unique_ptr<CheckpointStore> store = OpenStore(&env, dir.path());
  Checkpointer checkpointer(store.get(), &env);
  ASSERT_TRUE(checkpointer.WriteNow(SmallModel(3)).ok());
  env.fail_sync = true;
  absl::StatusOr<std::uint64_t> failed = checkpointer.WriteNow(SmallModel(4));
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(checkpointer.stats().failed, 1u);
  EXPECT_FALSE(checkpointer.stats().last_error.ok());
  env.fail_sync = false;
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(ParseModelState(loaded->payload)->counters.events, 3u);
}

TEST(CheckpointerTest, ConcurrentSubmittersAndReaders) {
  // Run under TSan in CI: submitters on several threads, stats readers, and the writer thread.
  ScopedTempDir dir;
  std::unique_ptr<CheckpointStore> store = OpenStore(DefaultEnv(), dir.path());
  Checkpointer checkpointer(store.get(), DefaultEnv());
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (checkpointer.TrySubmit(SmallModel(t * 100 + i))) accepted.fetch_add(1);
        (void)checkpointer.stats();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  checkpointer.Wait();
  EXPECT_EQ(checkpointer.stats().written, static_cast<std::uint64_t>(accepted.load()));
  absl::StatusOr<std::vector<CheckpointInfo>> list = store->List();
  ASSERT_TRUE(list.ok());
  EXPECT_LE(list->size(), 3u);  // retention
}

TEST(CheckpointerTest, HooksRunAroundEachWriteAndAFailingBeforeWriteFailsIt) {
  ScopedTempDir dir;
  std::unique_ptr<CheckpointStore> store = OpenStore(DefaultEnv(), dir.path());
  Checkpointer checkpointer(store.get(), DefaultEnv());
  std::atomic<bool> refuse{true};
  std::vector<std::uint64_t> written;  // only touched on the writing thread, read after Wait
  std::int64_t offset_seen = 0;
  Checkpointer::Hooks hooks;
  hooks.before_write = [&refuse](const ModelState&) {
    return refuse.load() ? absl::UnavailableError("outputs not delivered") : absl::OkStatus();
  };
  hooks.after_write = [&](const ModelState& snapshot, std::uint64_t generation) {
    written.push_back(generation);
    offset_seen = snapshot.next_offsets.at("events/0");
  };
  checkpointer.SetHooks(std::move(hooks));
  ASSERT_TRUE(checkpointer.TrySubmit(SmallModel(5)));
  checkpointer.Wait();
  EXPECT_EQ(checkpointer.stats().failed, 1u);
  EXPECT_EQ(checkpointer.stats().written, 0u);
  EXPECT_EQ(checkpointer.stats().last_error.message(), "outputs not delivered");
  EXPECT_TRUE(written.empty());
  EXPECT_FALSE(store->LoadNewestValid().ok());  // nothing on disk
  refuse = false;
  ASSERT_TRUE(checkpointer.TrySubmit(SmallModel(7)));
  checkpointer.Wait();
  EXPECT_EQ(checkpointer.stats().written, 1u);
  EXPECT_EQ(written, std::vector<std::uint64_t>{1});
  EXPECT_EQ(offset_seen, 7);
  // Removed hooks run no more.
  checkpointer.SetHooks({});
  refuse = true;
  ASSERT_TRUE(checkpointer.WriteNow(SmallModel(9)).ok());
  EXPECT_EQ(written.size(), 1u);
}

TEST(ModelStateTest, PendingLabelsRoundTripThroughThePayload) {
  ModelState state = SmallModel(3);
  features::NamedFeature a[] = {{"amount", features::FeatureValue::Number(12.5)},
                                {"country", features::FeatureValue::Text("FR")}};
  features::NamedFeature b[] = {{"amount", features::FeatureValue::Number(-1)}};
  state.pending_labels.push_back({"tx-1", features::OwnedFeatures(a), 1000});
  state.pending_labels.push_back({"tx-2", features::OwnedFeatures(b), 2000});
  const std::string payload = SerializeModelState(state, 1);
  absl::StatusOr<ModelState> parsed = ParseModelState(payload);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->pending_labels.size(), 2u);
  EXPECT_EQ(parsed->pending_labels[0].id, "tx-1");
  EXPECT_EQ(parsed->pending_labels[0].inserted_micros, 1000);
  std::vector<features::NamedFeature> views;
  parsed->pending_labels[0].features.Views(&views);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].name, "amount");
  EXPECT_EQ(views[0].value.number, 12.5);
  EXPECT_EQ(views[1].value.kind, features::FeatureValue::Kind::kText);
  EXPECT_EQ(views[1].value.text, "FR");
  EXPECT_EQ(parsed->pending_labels[1].id, "tx-2");
  // Byte-identical when written again, and the clone carries them too.
  EXPECT_EQ(SerializeModelState(*parsed, 1), payload);
  EXPECT_EQ(state.Clone().pending_labels.size(), 2u);
  // Truncated anywhere inside the pending labels: DataLoss, never a crash.
  for (std::size_t cut = payload.size() - 40; cut < payload.size(); ++cut) {
    EXPECT_FALSE(ParseModelState(payload.substr(0, cut)).ok()) << cut;
  }
}

}  // namespace
}  // namespace riffle::checkpoints
