// Feature crosses end to end: declared in YAML (a serve config, a spec file of its own) and
// learned by a served model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "service/model_definition.h"
#include "service/serve_config.h"
#include "service/served_model.h"
#include "tests/service/service_testing.h"

namespace riffle::service {
namespace {

using ::testing::HasSubstr;

constexpr char kCrossSpec[] = R"(
learner: logreg
learner_options: {lr: 0.1}
classes: [same, diff]
features:
  declared:
    - {name: a, kind: CATEGORICAL}
    - {name: b, kind: CATEGORICAL}
  crosses:
    - {first: a, second: b}
)";

TEST(FeatureCrossesYamlTest, ASpecFileDeclaresCrosses) {
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(kCrossSpec, "model.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(*spec);
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->pipeline.crosses,
            (std::vector<features::FeatureCross>{{.first = "a", .second = "b"}}));
}

TEST(FeatureCrossesYamlTest, TheServeConfigDeclaresCrosses) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(R"(
models:
  - name: m
    spec:
      learner: logreg
      features:
        crosses:
          - {first: country, second: device, hash_buckets: 1024}
)",
                                                   "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 1u);
  ASSERT_EQ(c->models[0].spec.features().crosses_size(), 1);
  EXPECT_EQ(c->models[0].spec.features().crosses(0).hash_buckets(), 1024u);
}

TEST(FeatureCrossesYamlTest, ErrorsNameTheField) {
  EXPECT_THAT(std::string(ParseModelSpecYaml("learner: logreg\nfeatures: {crosses: [{first: a}]}\n",
                                             "model.yaml")
                              .status()
                              .message()),
              HasSubstr("model.yaml: spec.features.crosses[0].second: must not be empty"));
  EXPECT_THAT(std::string(ParseServeConfig("models: [{name: m, spec: {learner: logreg, features: "
                                           "{crosses: [{first: a, second: a}]}}}]",
                                           "riffle.yaml")
                              .status()
                              .message()),
              HasSubstr("riffle.yaml: models[0].spec.features.crosses[0].second: 'a' is crossed "
                        "with itself"));
  EXPECT_THAT(std::string(ParseModelSpecYaml("learner: logreg\nfeatures: {crosses: [{frist: a}]}",
                                             "model.yaml")
                              .status()
                              .message()),
              HasSubstr("model.yaml: spec"));
  EXPECT_THAT(std::string(ParseModelSpecYaml("- learner", "model.yaml").status().message()),
              HasSubstr("expected a mapping"));
  EXPECT_THAT(std::string(ParseModelSpecYaml("learner: [", "model.yaml").status().message()),
              HasSubstr("not valid YAML"));
}

// XOR of two categoricals: the class is "same" when a equals b. Each of a and b alone says
// nothing about the class, so a linear model over their one-hots is at chance; the cross a x b
// has one feature per pair, each pure, and makes it linear.
double XorAccuracy(const std::string& yaml) {
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(yaml, "model.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(*spec);
  EXPECT_TRUE(def.ok()) << def.status();
  testing::FakeClockEnv env;
  ServedModel::Options options;
  options.env = &env;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("xor", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  std::mt19937_64 rng(7);  // raw engine bits: stable across library versions
  const char* const values[] = {"x", "y"};
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t bits = rng();
    const char* a = values[bits & 1];
    const char* b = values[(bits >> 1) & 1];
    const std::vector<features::NamedFeature> f = {{"a", features::FeatureValue::Text(a)},
                                                   {"b", features::FeatureValue::Text(b)}};
    const ExampleView example{{"", f}, std::string_view(a) == b ? "same" : "diff", 1.0, false};
    LearnBatchResult result;
    EXPECT_TRUE((*model)->Learn({&example, 1}, false, &result).ok());
  }
  return (*model)->Metrics().cumulative.accuracy;
}

TEST(FeatureCrossesServedTest, ACrossMakesXorOfCategoricalsLearnable) {
  std::string without = kCrossSpec;
  without = without.substr(0, without.find("  crosses:"));
  const double with_cross = XorAccuracy(kCrossSpec);
  const double without_cross = XorAccuracy(without);
  // Prequential accuracy over 2,000 events: chance without the cross, nearly every event after
  // the first few dozen with it.
  EXPECT_LT(without_cross, 0.6) << "with the cross: " << with_cross;
  EXPECT_GT(with_cross, 0.95) << "without the cross: " << without_cross;
}

}  // namespace
}  // namespace riffle::service
