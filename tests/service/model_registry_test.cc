#include "service/model_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../checkpoints/checkpoint_testing.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::DirEntries;
using ::riffle::checkpoints::testing::ReadBytes;
using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::checkpoints::testing::WriteBytes;
using ::riffle::service::testing::LogregSpec;
using ::riffle::service::testing::SeparableStream;
using ::testing::HasSubstr;

RegistryOptions Options(const std::string& dir) {
  RegistryOptions o;
  o.env = checkpoints::DefaultEnv();
  o.checkpoint_dir = dir;
  return o;
}

void Learn(ServedModel* model, int n) {
  SeparableStream stream(5);
  for (int i = 0; i < n; ++i) {
    std::string label;
    std::vector<features::NamedFeature> f = stream.Next(&label);
    ExampleView e{{"", f}, label, 1.0, false};
    LearnBatchResult r;
    ASSERT_TRUE(model->Learn({&e, 1}, false, &r).ok());
  }
}

TEST(ModelRegistryTest, CreateGetListDelete) {
  ScopedTempDir dir;
  ModelRegistry registry(Options(dir.path()));
  ASSERT_TRUE(registry.Create("a", LogregSpec()).ok());
  ASSERT_TRUE(registry.Create("b", LogregSpec()).ok());
  EXPECT_EQ(registry.Create("a", LogregSpec()).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Get("c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry.List().size(), 2u);
  absl::StatusOr<std::shared_ptr<ServedModel>> a = registry.Get("a");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(registry.Delete("a", /*delete_checkpoints=*/true).ok());
  EXPECT_TRUE(DirEntries(dir.File("a")).empty());
  EXPECT_EQ(registry.Delete("a", false).code(), absl::StatusCode::kNotFound);
  // A holder of the deleted model can still use it, but it writes no more checkpoints.
  Learn(a->get(), 3);
  EXPECT_EQ((*a)->CheckpointNow().status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(DirEntries(dir.File("a")).empty());
}

TEST(ModelRegistryTest, RestoresEveryModelFromItsNewestValidCheckpoint) {
  ScopedTempDir dir;
  {
    ModelRegistry registry(Options(dir.path()));
    auto a = registry.Create("a", LogregSpec());
    ASSERT_TRUE(a.ok());
    Learn(a->get(), 50);
    ASSERT_TRUE((*a)->CheckpointNow().ok());  // generation 2
    Learn(a->get(), 50);
    ASSERT_TRUE(registry.CheckpointAll().ok());  // generation 3 (it learned since)
    ASSERT_TRUE(registry.Create("b", LogregSpec()).ok());
  }
  // Damage a's newest generation: the restore falls back to generation 2 and says so.
  const std::string newest = dir.File("a/ckpt-00000000000000000003.riffle");
  std::string bytes = ReadBytes(newest);
  bytes[bytes.size() / 2] ^= 0x5a;
  WriteBytes(newest, bytes);
  WriteBytes(dir.File("not-a-model.txt"), "x");

  ModelRegistry registry(Options(dir.path()));
  const RestoreReport report = registry.RestoreAll();
  ASSERT_EQ(report.restored.size(), 2u);
  EXPECT_TRUE(report.errors.empty());
  EXPECT_EQ(report.restored[0].name, "a");
  EXPECT_EQ(report.restored[0].generation, 2u);
  ASSERT_EQ(report.restored[0].fallbacks.size(), 1u);
  EXPECT_THAT(report.restored[0].fallbacks[0], HasSubstr("ckpt-00000000000000000003.riffle"));
  EXPECT_EQ((*registry.Get("a"))->Info().labeled, 50u);
  EXPECT_EQ((*registry.Get("b"))->Info().labeled, 0u);
}

TEST(ModelRegistryTest, WithoutCheckpointsModelsLiveInMemory) {
  ModelRegistry registry(Options(""));
  EXPECT_TRUE(registry.RestoreAll().restored.empty());
  auto a = registry.Create("a", LogregSpec());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->CheckpointNow().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(registry.CheckpointAll().ok());
}

TEST(ModelRegistryTest, InvalidSpecOrNameIsRejected) {
  ModelRegistry registry(Options(""));
  riffle::v1::ModelSpec spec = LogregSpec();
  spec.set_learner("nope");
  EXPECT_THAT(registry.Create("a", spec).status().message(), HasSubstr("spec.learner"));
  EXPECT_THAT(registry.Create("../etc", LogregSpec()).status().message(), HasSubstr("name"));
}

}  // namespace
}  // namespace riffle::service
