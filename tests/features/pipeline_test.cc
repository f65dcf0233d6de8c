#include "features/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace riffle::features {
namespace {

using ::testing::HasSubstr;

// The vector as name -> value, so tests do not depend on index order.
std::map<std::string, double> Named(const Pipeline& p, const learners::FeatureVector& x) {
  std::map<std::string, double> out;
  for (std::size_t k = 0; k < x.size(); ++k) out[p.features().Name(x.index(k))] = x.value(k);
  return out;
}

NamedFeature Num(std::string_view name, double v) { return {name, FeatureValue::Number(v)}; }
NamedFeature Text(std::string_view name, std::string_view t) {
  return {name, FeatureValue::Text(t)};
}

Pipeline Make(PipelineSpec spec) {
  absl::StatusOr<Pipeline> p = Pipeline::Create(std::move(spec));
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

TEST(PipelineTest, PassThroughScalesNumbersAndOneHotsTexts) {
  Pipeline p = Make({});
  PipelineScratch scratch;
  learners::FeatureVector x;
  // Learn a=1 then a=3: mean 2, population variance 1 (Welford, as River). The first learn
  // scales a=1 with only itself seen: variance 0 -> 0.
  ASSERT_TRUE(p.LearnAndTransform(std::vector{Num("a", 1), Text("c", "red")}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"a", 0.0}, {"c=red", 1.0}}));
  ASSERT_TRUE(p.LearnAndTransform(std::vector{Num("a", 3)}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"a", 1.0}}));  // (3 - 2) / 1
  // Predict: a=4 -> (4 - 2) / 1 = 2; an unseen category and an unseen feature contribute
  // nothing and are not added.
  ASSERT_TRUE(p.TransformForPredict(std::vector{Num("a", 4), Text("c", "blue"), Num("new", 5)}, &x,
                                    &scratch)
                  .ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"a", 2.0}}));
  EXPECT_EQ(p.features().size(), 2u);
}

TEST(PipelineTest, AReusedScratchGivesTheSameVectorsWhateverTheOrderOfNames) {
  // The scratch remembers vocabulary indices by position (hints); events whose names move
  // around, appear and disappear must transform exactly as with a fresh scratch.
  Pipeline reused = Make({});
  Pipeline fresh = Make({});
  PipelineScratch kept;
  const std::vector<std::vector<NamedFeature>> events = {
      {Num("a", 1), Num("b", 2), Text("c", "red")},
      {Num("b", 3), Num("a", 4), Text("c", "blue")},
      {Text("c", "red"), Num("d", 5)},
      {Num("a", 6), Num("b", 7), Text("c", "red"), Num("d", 8)},
      {Num("d", 9), Text("c", "green"), Num("b", 10), Num("a", 11)},
  };
  for (int round = 0; round < 2; ++round) {
    for (const std::vector<NamedFeature>& e : events) {
      learners::FeatureVector x_reused, x_fresh;
      PipelineScratch new_scratch;
      ASSERT_TRUE(reused.TransformForPredict(e, &x_reused, &kept).ok());
      ASSERT_TRUE(fresh.TransformForPredict(e, &x_fresh, &new_scratch).ok());
      EXPECT_EQ(Named(reused, x_reused), Named(fresh, x_fresh));
      PipelineScratch new_scratch2;
      ASSERT_TRUE(reused.LearnAndTransform(e, &x_reused, &kept).ok());
      ASSERT_TRUE(fresh.LearnAndTransform(e, &x_fresh, &new_scratch2).ok());
      EXPECT_EQ(Named(reused, x_reused), Named(fresh, x_fresh));
    }
  }
  EXPECT_EQ(reused.features().names(), fresh.features().names());
}

TEST(PipelineTest, OneScratchServesPipelinesThatReadTheSameNamesDifferently) {
  // A predicting thread keeps one scratch for every model it serves. The scratch remembers what
  // each position's name is among a spec's fields; with another pipeline (or the same one
  // reloaded with another spec) that must not carry over: "x" is categorical in the first,
  // crossed in the second, undeclared in the third.
  PipelineSpec categorical;
  categorical.declared.push_back({.name = "x", .kind = FeatureDef::Kind::kCategorical});
  PipelineSpec crossed;
  crossed.crosses.push_back({.first = "x", .second = "c"});
  std::vector<Pipeline> pipelines;
  pipelines.push_back(Make(categorical));
  pipelines.push_back(Make(crossed));
  pipelines.push_back(Make({}));
  std::vector<Pipeline> fresh_pipelines;
  fresh_pipelines.push_back(Make(categorical));
  fresh_pipelines.push_back(Make(crossed));
  fresh_pipelines.push_back(Make({}));
  const std::vector<NamedFeature> event = {Num("x", 2), Text("c", "red"), Num("y", 1)};
  PipelineScratch shared;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < pipelines.size(); ++i) {
      learners::FeatureVector x_shared, x_fresh;
      PipelineScratch fresh;
      ASSERT_TRUE(pipelines[i].LearnAndTransform(event, &x_shared, &shared).ok());
      ASSERT_TRUE(fresh_pipelines[i].LearnAndTransform(event, &x_fresh, &fresh).ok());
      EXPECT_EQ(Named(pipelines[i], x_shared), Named(fresh_pipelines[i], x_fresh)) << i;
    }
  }
  EXPECT_EQ(pipelines[0].features().Lookup("x=2"), 0u);
  EXPECT_NE(pipelines[1].features().Lookup("x=2&c=red"), Vocabulary::kNotFound);
  EXPECT_EQ(pipelines[2].features().Lookup("x=2"), Vocabulary::kNotFound);

  // The same object reloaded with another spec: the first pipeline's state loaded into the
  // third.
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(pipelines[0]);
  }
  {
    cereal::PortableBinaryInputArchive in(buffer);
    in(pipelines[2]);
  }
  learners::FeatureVector x_shared, x_fresh;
  PipelineScratch fresh;
  ASSERT_TRUE(pipelines[2].TransformForPredict(event, &x_shared, &shared).ok());
  ASSERT_TRUE(pipelines[0].TransformForPredict(event, &x_fresh, &fresh).ok());
  EXPECT_EQ(Named(pipelines[2], x_shared), Named(pipelines[0], x_fresh));
  EXPECT_EQ(Named(pipelines[2], x_shared).count("x=2"), 1u);
}

TEST(PipelineTest, OneScratchServesACopyWhoseVocabularyDiverged) {
  // A copy starts with the same names, then each learns its own: the scratch's remembered
  // input indices of one must not be used for the other.
  Pipeline original = Make({});
  PipelineScratch scratch;
  learners::FeatureVector x;
  ASSERT_TRUE(original.LearnAndTransform(std::vector{Num("a", 1)}, &x, &scratch).ok());
  Pipeline copy = original;
  ASSERT_TRUE(original.LearnAndTransform(std::vector{Num("c", 1)}, &x, &scratch).ok());
  ASSERT_TRUE(copy.LearnAndTransform(std::vector{Num("d", 1)}, &x, &scratch).ok());
  ASSERT_EQ(original.features().Lookup("c"), 1u);
  ASSERT_EQ(copy.features().Lookup("d"), 1u);
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(original.TransformForPredict(std::vector{Num("c", 3)}, &x, &scratch).ok());
    EXPECT_EQ(Named(original, x).count("c"), 1u);
    // "c" at the same position, in the copy, which never learned it.
    ASSERT_TRUE(copy.TransformForPredict(std::vector{Num("c", 3)}, &x, &scratch).ok());
    EXPECT_EQ(x.size(), 0u);
  }
  EXPECT_NE(original.features().id(), copy.features().id());
}

TEST(PipelineTest, BucketTextIsTheShortestTextOfTheBucketAsADouble) {
  // Hashed features are named "<name>#<bucket>" in checkpoints: the text must never change.
  for (std::uint64_t bucket = 0; bucket < 1'000'000; ++bucket) {
    char expected[32];
    auto [end, ec] =
        std::to_chars(expected, expected + sizeof(expected), static_cast<double>(bucket));
    char buffer[32];
    ASSERT_EQ(pipeline_internal::BucketText(bucket, buffer),
              std::string_view(expected, static_cast<std::size_t>(end - expected)));
  }
  char buffer[32];
  EXPECT_EQ(pipeline_internal::BucketText(100000, buffer), "1e+05");
  EXPECT_EQ(pipeline_internal::BucketText(99999, buffer), "99999");
  EXPECT_EQ(pipeline_internal::BucketText(20000, buffer), "20000");
}

TEST(PipelineTest, IgnoreUndeclared) {
  PipelineSpec spec;
  spec.pass_through = false;
  spec.declared.push_back({.name = "amount", .scaling = FeatureDef::Scaling::kNone});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  ASSERT_TRUE(
      p.LearnAndTransform(std::vector{Num("amount", 7.5), Text("other", "x")}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"amount", 7.5}}));
}

TEST(PipelineTest, RejectsNonFiniteNumbersAndTextForNumeric) {
  PipelineSpec spec;
  spec.declared.push_back({.name = "amount"});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  absl::Status s = p.Validate(std::vector{Num("v", std::nan(""))});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("features[\"v\"]: NaN"));
  s = p.Validate(std::vector{Num("v", std::numeric_limits<double>::infinity())});
  EXPECT_THAT(s.message(), HasSubstr("infinity"));
  s = p.Validate(std::vector{Text("amount", "12 EUR")});
  EXPECT_THAT(s.message(), HasSubstr("features[\"amount\"]: expected a number"));
  s = p.LearnAndTransform(std::vector{Text("amount", "12 EUR")}, &x, &scratch);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(p.Validate(std::vector{Text("undeclared", "x"), Num("amount", 1)}).ok());
}

TEST(PipelineTest, ClipMinMaxAndImputation) {
  PipelineSpec spec;
  spec.declared.push_back({.name = "m",
                           .scaling = FeatureDef::Scaling::kMinMax,
                           .clip_min = 0,
                           .clip_max = 100,
                           .imputation = FeatureDef::Imputation::kMean,
                           .missing_indicator = true});
  spec.declared.push_back({.name = "k",
                           .scaling = FeatureDef::Scaling::kNone,
                           .imputation = FeatureDef::Imputation::kConstant,
                           .impute_constant = -1});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  // m=10 then m=1000 (clipped to 100): min 10, max 100. k present both times.
  ASSERT_TRUE(p.LearnAndTransform(std::vector{Num("m", 10), Num("k", 2)}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"m", 0.0}, {"k", 2.0}}));
  ASSERT_TRUE(p.LearnAndTransform(std::vector{Num("m", 1000), Num("k", 2)}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"m", 1.0}, {"k", 2.0}}));
  // Both missing: m imputed with the mean of the clipped values (10 + 100) / 2 = 55, scaled
  // (55 - 10) / 90 = 0.5, plus the indicator; k imputed with the constant.
  ASSERT_TRUE(p.TransformForPredict({}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x),
            (std::map<std::string, double>{{"m", 0.5}, {"k", -1.0}}));  // indicator never learned
  ASSERT_TRUE(p.LearnAndTransform({}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x),
            (std::map<std::string, double>{{"m", 0.5}, {"m.missing", 1.0}, {"k", -1.0}}));
}

TEST(PipelineTest, CategoricalCapSendsLaterCategoriesToOther) {
  PipelineSpec spec;
  spec.declared.push_back(
      {.name = "city", .kind = FeatureDef::Kind::kCategorical, .max_categories = 2});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  for (std::string_view city : {"paris", "rome", "oslo", "lima", "paris"}) {
    ASSERT_TRUE(p.LearnAndTransform(std::vector{Text("city", city)}, &x, &scratch).ok());
  }
  EXPECT_EQ(p.features().names(),
            (std::vector<std::string>{"city=paris", "city=rome", "city=__other__"}));
  ASSERT_TRUE(p.TransformForPredict(std::vector{Text("city", "tokyo")}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"city=__other__", 1.0}}));
  // Numbers are categories by their shortest text: 3 and 3.0 are one category.
  PipelineSpec zip;
  zip.declared.push_back({.name = "zip", .kind = FeatureDef::Kind::kCategorical});
  Pipeline z = Make(zip);
  ASSERT_TRUE(z.LearnAndTransform(std::vector{Num("zip", 75001)}, &x, &scratch).ok());
  EXPECT_EQ(z.features().names(), (std::vector<std::string>{"zip=75001"}));
}

TEST(PipelineTest, HashingIsStableAndBounded) {
  PipelineSpec spec;
  spec.declared.push_back(
      {.name = "user", .kind = FeatureDef::Kind::kHashed, .hash_buckets = 8, .hash_seed = 42});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  for (int i = 0; i < 1000; ++i) {
    const std::string user = "u" + std::to_string(i);
    ASSERT_TRUE(p.LearnAndTransform(std::vector{Text("user", user)}, &x, &scratch).ok());
  }
  EXPECT_EQ(p.features().size(), 8u);
  // A pinned bucket: XXH64("alice", seed 42) % 8 = 3 (cross-checked with the Python xxhash
  // package: xxh64(b"alice", seed=42).intdigest() % 8). If this changes, every deployed hashed
  // model silently changes meaning: it must never change.
  ASSERT_TRUE(p.TransformForPredict(std::vector{Text("user", "alice")}, &x, &scratch).ok());
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(p.features().Name(x.index(0)), "user#3");
}

TEST(PipelineTest, CrossesOneHotPairsOfDeclaredAndUndeclaredFeatures) {
  PipelineSpec spec;
  spec.declared.push_back({.name = "country", .kind = FeatureDef::Kind::kCategorical});
  spec.crosses.push_back({.first = "country", .second = "device"});
  spec.crosses.push_back({.first = "country", .second = "n"});  // n: undeclared number
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  // n = 3 is standard-scaled as itself (0: one value seen) and crossed as the text "3".
  ASSERT_TRUE(
      p.LearnAndTransform(std::vector{Text("country", "fr"), Text("device", "ios"), Num("n", 3.0)},
                          &x, &scratch)
          .ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"country=fr", 1.0},
                                                        {"device=ios", 1.0},
                                                        {"n", 0.0},
                                                        {"country=fr&device=ios", 1.0},
                                                        {"country=fr&n=3", 1.0}}));
  // No device: no country x device cross. n = 0.5 renders as "0.5"; mean of n is now 1.75,
  // population variance ((3 - 1.75)^2 + (0.5 - 1.75)^2) / 2 = 1.5625, so n scales to
  // (0.5 - 1.75) / 1.25 = -1.
  ASSERT_TRUE(
      p.LearnAndTransform(std::vector{Text("country", "de"), Num("n", 0.5)}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{
                             {"country=de", 1.0}, {"n", -1.0}, {"country=de&n=0.5", 1.0}}));
  // No country: no cross at all.
  ASSERT_TRUE(
      p.LearnAndTransform(std::vector{Text("device", "ios"), Num("n", 3.0)}, &x, &scratch).ok());
  for (const std::string& name : p.features().names()) {
    EXPECT_EQ(name.find("device=ios&"), std::string::npos) << name;
  }
  EXPECT_EQ(p.features().size(), 7u);  // the five of the first event, country=de, its n cross
}

TEST(PipelineTest, PredictNeverAddsACross) {
  PipelineSpec spec;
  spec.crosses.push_back({.first = "a", .second = "b"});
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  // Before anything is learned, a cross contributes nothing and is not added.
  ASSERT_TRUE(
      p.TransformForPredict(std::vector{Text("a", "x"), Text("b", "y")}, &x, &scratch).ok());
  EXPECT_EQ(x.size(), 0u);
  EXPECT_EQ(p.features().size(), 0u);
  ASSERT_TRUE(p.LearnAndTransform(std::vector{Text("a", "x"), Text("b", "y")}, &x, &scratch).ok());
  EXPECT_EQ(p.features().size(), 3u);  // a=x, b=y, a=x&b=y
  // A learned pair is predicted with; an unseen pair of seen values is not added.
  ASSERT_TRUE(
      p.TransformForPredict(std::vector{Text("a", "x"), Text("b", "y")}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x),
            (std::map<std::string, double>{{"a=x", 1.0}, {"b=y", 1.0}, {"a=x&b=y", 1.0}}));
  ASSERT_TRUE(
      p.TransformForPredict(std::vector{Text("a", "y"), Text("b", "y")}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"b=y", 1.0}}));
  EXPECT_EQ(p.features().size(), 3u);
  // Crosses rule out the dense fast path, which only knows numbers by name.
  Pipeline::DensePlan plan;
  const std::vector<std::string_view> names = {"a", "b"};
  EXPECT_FALSE(p.PlanDense(names, &plan));
}

TEST(PipelineTest, HashedCrossBucketsArePinned) {
  PipelineSpec spec;
  spec.crosses.push_back({.first = "country", .second = "device", .hash_buckets = 16});
  spec.pass_through = false;  // only the crosses: the sides are still read
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  // Pinned buckets: XXH64(text, seed 0) % 16, computed with libxxhash's XXH64 directly (a
  // separate C program, not through Riffle). They must never change: every deployed model
  // with a hashed cross depends on them.
  //   "country=fr&device=ios"     -> 6491987470900592971 % 16 = 11
  //   "country=fr&device=android" -> 1898120883699688268 % 16 = 12
  //   "country=de&device=ios"     ->  749172153452229419 % 16 = 11
  const std::vector<std::tuple<std::string, std::string, std::string>> pinned = {
      {"fr", "ios", "country&device#11"},
      {"fr", "android", "country&device#12"},
      {"de", "ios", "country&device#11"}};
  for (const auto& [country, device, bucket] : pinned) {
    ASSERT_TRUE(p.LearnAndTransform(std::vector{Text("country", country), Text("device", device)},
                                    &x, &scratch)
                    .ok());
    EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{bucket, 1.0}}))
        << country << " " << device;
  }
  EXPECT_EQ(p.features().names(),
            (std::vector<std::string>{"country&device#11", "country&device#12"}));
}

TEST(PipelineTest, ACrossReadsDroppedAndIgnoredFeatures) {
  PipelineSpec spec;
  spec.pass_through = false;
  spec.declared.push_back({.name = "a", .kind = FeatureDef::Kind::kDrop});
  spec.crosses.push_back({.first = "a", .second = "b"});  // b: undeclared, and ignored alone
  Pipeline p = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector x;
  ASSERT_TRUE(
      p.LearnAndTransform(std::vector{Num("a", 1), Num("b", 2), Num("c", 3)}, &x, &scratch).ok());
  EXPECT_EQ(Named(p, x), (std::map<std::string, double>{{"a=1&b=2", 1.0}}));
}

TEST(PipelineTest, CrossSpecValidationNamesTheField) {
  PipelineSpec spec;
  spec.crosses.push_back({.first = "", .second = "b"});
  EXPECT_THAT(spec.Validate().message(), HasSubstr("crosses[0].first: must not be empty"));
  spec.crosses[0] = {.first = "a", .second = ""};
  EXPECT_THAT(spec.Validate().message(), HasSubstr("crosses[0].second: must not be empty"));
  spec.crosses[0] = {.first = "a", .second = "a"};
  EXPECT_THAT(spec.Validate().message(), HasSubstr("crosses[0].second: 'a' is crossed with"));
  spec.crosses[0] = {.first = "a", .second = "b"};
  spec.crosses.push_back({.first = "a", .second = "c", .hash_buckets = 4});
  EXPECT_TRUE(spec.Validate().ok()) << spec.Validate();
  // The same pair in the other order is the same cross.
  spec.crosses.push_back({.first = "b", .second = "a", .hash_buckets = 8});
  EXPECT_THAT(spec.Validate().message(),
              HasSubstr("crosses[2].second: 'b' and 'a' are already crossed in crosses[0]"));
  EXPECT_EQ(Pipeline::Create(spec).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PipelineTest, SpecValidationNamesTheField) {
  PipelineSpec spec;
  spec.declared.push_back({.name = "a"});
  spec.declared.push_back({.name = "b", .kind = FeatureDef::Kind::kHashed});
  EXPECT_THAT(spec.Validate().message(), HasSubstr("declared[1].hash_buckets"));
  spec.declared[1] = {.name = "a"};
  EXPECT_THAT(spec.Validate().message(), HasSubstr("declared[1].name: 'a' is declared twice"));
  spec.declared[1] = {.name = "c", .clip_min = 5, .clip_max = 1};
  EXPECT_THAT(spec.Validate().message(), HasSubstr("declared[1].clip_min"));
  PipelineSpec classes;
  classes.classes = {"no", "no"};
  EXPECT_THAT(classes.Validate().message(), HasSubstr("classes[1]"));
}

TEST(PipelineTest, FixedClassesRejectUnknownLabels) {
  PipelineSpec spec;
  spec.classes = {"legit", "fraud"};
  Pipeline p = Make(spec);
  EXPECT_EQ(*p.EncodeLabel("fraud"), 1u);
  absl::StatusOr<learners::ClassIndex> k = p.EncodeLabel("maybe");
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(k.status().message(), HasSubstr("legit, fraud"));
  Pipeline open = Make({});
  EXPECT_EQ(*open.EncodeLabel("b"), 0u);
  EXPECT_EQ(*open.EncodeLabel("a"), 1u);
  EXPECT_EQ(*open.EncodeLabel("b"), 0u);
  EXPECT_FALSE(open.EncodeLabel("").ok());
}

TEST(PipelineTest, SaveLoadRoundTripContinuesIdentically) {
  PipelineSpec spec;
  spec.classes = {"0", "1"};
  spec.declared.push_back({.name = "m",
                           .scaling = FeatureDef::Scaling::kMinMax,
                           .imputation = FeatureDef::Imputation::kMean});
  spec.declared.push_back(
      {.name = "c", .kind = FeatureDef::Kind::kCategorical, .max_categories = 3});
  spec.declared.push_back({.name = "h", .kind = FeatureDef::Kind::kHashed, .hash_buckets = 16});
  spec.crosses.push_back({.first = "c", .second = "m"});
  spec.crosses.push_back({.first = "c", .second = "h", .hash_buckets = 8});
  Pipeline a = Make(spec);
  PipelineScratch scratch;
  learners::FeatureVector xa, xb;
  auto event = [](int i, std::vector<std::string>* texts) {
    texts->assign({"c" + std::to_string(i % 5), "h" + std::to_string(i)});
    std::vector<NamedFeature> e = {Num("free", i * 0.5), Text("c", (*texts)[0]),
                                   Text("h", (*texts)[1])};
    if (i % 3 != 0) e.push_back(Num("m", i));
    return e;
  };
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(a.LearnAndTransform(event(i, &texts), &xa, &scratch).ok());
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(a);
  }
  Pipeline b = Pipeline::ForLoading();
  {
    cereal::PortableBinaryInputArchive in(buffer);
    in(b);
  }
  EXPECT_EQ(b.spec(), a.spec());
  for (int i = 50; i < 100; ++i) {
    ASSERT_TRUE(a.LearnAndTransform(event(i, &texts), &xa, &scratch).ok());
    ASSERT_TRUE(b.LearnAndTransform(event(i, &texts), &xb, &scratch).ok());
    ASSERT_EQ(Named(a, xa), Named(b, xb)) << i;
  }
  EXPECT_EQ(a.features().names(), b.features().names());
  // The crosses were learned with and survive the round trip.
  EXPECT_TRUE(b.features().Find("c=c1&m=1").has_value());
  EXPECT_TRUE(std::any_of(b.features().names().begin(), b.features().names().end(),
                          [](const std::string& n) { return n.rfind("c&h#", 0) == 0; }));
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(RIFFLE_FEATURES_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_TRUE(in.good()) << name;
  return bytes.str();
}

// tests/fixtures/features/pipeline_v1.bin was written by the Riffle before crosses (Pipeline
// class version 1; make_pipeline_v1.cc there shows how). Checkpoints holding such pipelines
// must keep loading and predicting as they did.
TEST(PipelineTest, LoadsAVersion1Pipeline) {
  std::stringstream buffer(ReadFixture("pipeline_v1.bin"));
  Pipeline p = Pipeline::ForLoading();
  {
    cereal::PortableBinaryInputArchive in(buffer);
    in(p);
  }
  EXPECT_TRUE(p.spec().crosses.empty());
  ASSERT_EQ(p.spec().declared.size(), 3u);
  EXPECT_EQ(p.spec().declared[2].hash_seed, 7u);
  EXPECT_EQ(p.labels().names(), (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(p.features().names(),
            (std::vector<std::string>{"age", "amount", "country=fr", "user#3", "country=de",
                                      "user#0", "user#1", "country=us", "user#2"}));
  PipelineScratch scratch;
  learners::FeatureVector x;
  // The four learned events had age 20..23 (mean 21.5, population variance 1.25) and amount
  // 10..40 (min-max): age 22 -> 0.5 / sqrt(1.25), amount 25 -> (25 - 10) / 30 = 0.5.
  ASSERT_TRUE(p.TransformForPredict(std::vector{Num("age", 22), Num("amount", 25),
                                                Text("country", "de"), Text("user", "u0")},
                                    &x, &scratch)
                  .ok());
  const std::map<std::string, double> named = Named(p, x);
  ASSERT_EQ(named.size(), 4u);
  EXPECT_DOUBLE_EQ(named.at("age"), 0.5 / std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(named.at("amount"), 0.5);
  EXPECT_EQ(named.at("country=de"), 1.0);
  EXPECT_EQ(
      named.count("user#0") + named.count("user#1") + named.count("user#2") + named.count("user#3"),
      1u);
  // Saved again it is a version 2 pipeline that loads to the same state.
  std::stringstream again;
  {
    cereal::PortableBinaryOutputArchive out(again);
    out(p);
  }
  Pipeline q = Pipeline::ForLoading();
  {
    cereal::PortableBinaryInputArchive in(again);
    in(q);
  }
  EXPECT_EQ(q.spec(), p.spec());
  EXPECT_EQ(q.features().names(), p.features().names());
}

TEST(PipelineTest, LoadRejectsAnUnknownNewerVersion) {
  std::string bytes = ReadFixture("pipeline_v1.bin");
  // Byte 0 is the portable archive's endianness; bytes 1..4 the class version, little-endian.
  ASSERT_EQ(bytes.substr(1, 4), std::string("\x01\x00\x00\x00", 4));
  bytes[1] = 3;
  std::stringstream buffer(bytes);
  Pipeline p = Pipeline::ForLoading();
  EXPECT_ANY_THROW({
    cereal::PortableBinaryInputArchive in(buffer);
    in(p);
  });
}

TEST(PipelineTest, LoadRejectsTruncatedData) {
  Pipeline a = Make({});
  PipelineScratch scratch;
  learners::FeatureVector x;
  ASSERT_TRUE(a.LearnAndTransform(std::vector{Num("a", 1), Text("b", "x")}, &x, &scratch).ok());
  std::stringstream buffer;
  {
    cereal::PortableBinaryOutputArchive out(buffer);
    out(a);
  }
  const std::string bytes = buffer.str();
  for (std::size_t cut = 0; cut < bytes.size(); cut += 3) {
    std::stringstream truncated(bytes.substr(0, cut));
    Pipeline b = Pipeline::ForLoading();
    EXPECT_ANY_THROW({
      cereal::PortableBinaryInputArchive in(truncated);
      in(b);
    }) << cut;
  }
}

}  // namespace
}  // namespace riffle::features
