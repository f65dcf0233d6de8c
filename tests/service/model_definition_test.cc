#include "service/model_definition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace riffle::service {
namespace {

using ::testing::HasSubstr;

riffle::v1::ModelSpec Spec(const std::string& learner) {
  riffle::v1::ModelSpec spec;
  spec.set_learner(learner);
  return spec;
}

std::string Error(const riffle::v1::ModelSpec& spec) {
  absl::StatusOr<ModelDefinition> d = DefinitionFromSpec(spec);
  EXPECT_FALSE(d.ok());
  return std::string(d.status().message());
}

TEST(ModelDefinitionTest, ConvertsAFullSpec) {
  riffle::v1::ModelSpec spec = Spec("logreg");
  (*spec.mutable_learner_options())["optimizer"] = "adam";
  (*spec.mutable_learner_options())["lr"] = "0.05";
  spec.add_classes("legit");
  spec.add_classes("fraud");
  spec.set_metrics_window(500);
  spec.set_label_cache_max_entries(1000);
  auto* f = spec.mutable_features();
  f->set_undeclared(riffle::v1::FeatureSpec::IGNORE);
  auto* d = f->add_declared();
  d->set_name("card");
  d->set_kind(riffle::v1::FeatureDef::HASHED);
  d->set_hash_buckets(1024);
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->learner, "logreg");
  // Options sorted by name: a protobuf map has no order.
  EXPECT_EQ(def->learner_options, (learners::OptionList{{"lr", "0.05"}, {"optimizer", "adam"}}));
  EXPECT_FALSE(def->pipeline.pass_through);
  ASSERT_EQ(def->pipeline.declared.size(), 1u);
  EXPECT_EQ(def->pipeline.declared[0].kind, features::FeatureDef::Kind::kHashed);
  EXPECT_EQ(def->pipeline.classes, (std::vector<std::string>{"legit", "fraud"}));
  EXPECT_EQ(def->metrics.window, 500u);
  EXPECT_EQ(def->label_cache.max_entries, 1000u);
  // The JSON round trip gives the same definition (checkpoints store the JSON).
  absl::StatusOr<ModelDefinition> again = DefinitionFromJson(def->spec_json);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->spec_json, def->spec_json);
  EXPECT_EQ(again->pipeline, def->pipeline);
}

TEST(ModelDefinitionTest, ErrorsNameTheField) {
  EXPECT_THAT(Error(Spec("")), HasSubstr("spec.learner: required"));
  EXPECT_THAT(Error(Spec("forest")), HasSubstr("spec.learner: unknown learner 'forest'"));
  riffle::v1::ModelSpec spec = Spec("logreg");
  (*spec.mutable_learner_options())["lr"] = "fast";
  EXPECT_THAT(Error(spec), HasSubstr("spec.learner_options: option 'lr'"));
  spec = Spec("logreg");
  (*spec.mutable_learner_options())["speed"] = "1";
  EXPECT_THAT(Error(spec), HasSubstr("speed"));
  spec = Spec("logreg");
  spec.mutable_features()->add_declared()->set_name("a");
  auto* d = spec.mutable_features()->add_declared();
  d->set_name("b");
  d->set_kind(riffle::v1::FeatureDef::HASHED);
  EXPECT_THAT(Error(spec), HasSubstr("spec.features.declared[1].hash_buckets"));
  spec = Spec("logreg");
  spec.add_classes("only");
  EXPECT_THAT(Error(spec), HasSubstr("spec.classes"));
  spec = Spec("logreg");
  spec.mutable_features()->add_aggregates()->set_name("n");
  EXPECT_THAT(Error(spec), HasSubstr("spec.features.aggregates"));
}

TEST(ModelDefinitionTest, ConvertsCrosses) {
  riffle::v1::ModelSpec spec = Spec("logreg");
  auto* c = spec.mutable_features()->add_crosses();
  c->set_first("country");
  c->set_second("device");
  c = spec.mutable_features()->add_crosses();
  c->set_first("country");
  c->set_second("hour");
  c->set_hash_buckets(64);
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(spec);
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->pipeline.crosses,
            (std::vector<features::FeatureCross>{
                {.first = "country", .second = "device"},
                {.first = "country", .second = "hour", .hash_buckets = 64}}));
  // Checkpoints keep the spec as JSON: the crosses survive it.
  absl::StatusOr<ModelDefinition> again = DefinitionFromJson(def->spec_json);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->pipeline, def->pipeline);
}

TEST(ModelDefinitionTest, CrossErrorsNameTheField) {
  riffle::v1::ModelSpec spec = Spec("logreg");
  spec.mutable_features()->add_crosses()->set_first("a");
  EXPECT_THAT(Error(spec), HasSubstr("spec.features.crosses[0].second: must not be empty"));
  spec = Spec("logreg");
  auto* c = spec.mutable_features()->add_crosses();
  c->set_first("a");
  c->set_second("b");
  c = spec.mutable_features()->add_crosses();
  c->set_first("b");
  c->set_second("a");
  EXPECT_THAT(Error(spec), HasSubstr("spec.features.crosses[1].second: 'b' and 'a' are already "
                                     "crossed in crosses[0]"));
  EXPECT_EQ(DefinitionFromSpec(spec).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelDefinitionTest, ModelNames) {
  EXPECT_TRUE(ValidateModelName("fraud-v2.1_a").ok());
  EXPECT_FALSE(ValidateModelName("").ok());
  EXPECT_FALSE(ValidateModelName("..").ok());
  EXPECT_FALSE(ValidateModelName("a/b").ok());
  EXPECT_FALSE(ValidateModelName(std::string(129, 'a')).ok());
  EXPECT_THAT(std::string(ValidateModelName("a b").message()), HasSubstr("outside"));
}

TEST(ModelDefinitionTest, CorruptStoredJsonIsDataLoss) {
  EXPECT_EQ(DefinitionFromJson("{not json").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace riffle::service
