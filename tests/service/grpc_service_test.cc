#include "service/grpc_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <memory>
#include <string>

#include "../checkpoints/checkpoint_testing.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "service/model_registry.h"
#include "service/server.h"
#include "service_testing.h"

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;
using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::service::testing::LogregSpec;
using ::testing::HasSubstr;

// A real server on a loopback port and a real channel to it: the tests go through gRPC's
// serialization, the callback API and the status conversion exactly as clients do.
class GrpcServiceTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    RegistryOptions ro;
    ro.env = checkpoints::DefaultEnv();
    ro.checkpoint_dir = dir_.path();
    registry_ = std::make_unique<ModelRegistry>(ro);
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<RiffleServer>> server =
        RiffleServer::Start(options, registry_.get(), NullLogger(), checkpoints::DefaultEnv());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    models_ = v1::ModelService::NewStub(channel_);
    inference_ = v1::InferenceService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(100));
  }

  grpc::Status Create(const std::string& name, const v1::ModelSpec& spec = LogregSpec(),
                      const std::string& token = "") {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::CreateModelRequest req;
    req.set_name(name);
    *req.mutable_spec() = spec;
    v1::Model model;
    return models_->CreateModel(&ctx, req, &model);
  }

  static v1::Instance Instance(double x0, double x1, const std::string& id = "") {
    v1::Instance instance;
    instance.set_id(id);
    (*instance.mutable_features())["x0"].set_number(x0);
    (*instance.mutable_features())["x1"].set_number(x1);
    (*instance.mutable_features())["is_new"].set_flag(x0 > 1);
    (*instance.mutable_features())["country"].set_text(x1 > 0 ? "no" : "se");
    return instance;
  }

  // Separable: "1" when x0 + x1 > 0.
  grpc::Status LearnSome(const std::string& model, int n, const std::string& token = "") {
    v1::LearnRequest req;
    req.set_model(model);
    for (int i = 0; i < n; ++i) {
      const double x0 = ((i * 37) % 21 - 10) / 5.0, x1 = ((i * 11) % 17 - 8) / 4.0;
      v1::LabeledInstance* e = req.add_examples();
      *e->mutable_instance() = Instance(x0, x1);
      e->mutable_label()->set_class_name(x0 + x1 > 0 ? "1" : "0");
    }
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::LearnResponse resp;
    return inference_->Learn(&ctx, req, &resp);
  }

  grpc::Status Predict(const v1::PredictRequest& req, v1::PredictResponse* resp) {
    grpc::ClientContext ctx;
    return inference_->Predict(&ctx, req, resp);
  }

  std::string HealthOf(const std::string& service) {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    if (!s.ok()) return "error " + std::to_string(s.error_code());
    return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  }

  ScopedTempDir dir_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<RiffleServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
};

TEST_F(GrpcServiceTest, ModelLifecycleAndHealth) {
  Start();
  EXPECT_EQ(HealthOf(""), "SERVING");
  EXPECT_EQ(HealthOf("riffle.v1.InferenceService"), "SERVING");
  ASSERT_TRUE(Create("fraud").ok());
  EXPECT_EQ(HealthOf("riffle.v1.model/fraud"), "SERVING");
  grpc::Status again = Create("fraud");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  grpc::ClientContext get_ctx;
  v1::GetModelRequest get;
  get.set_model("fraud");
  v1::Model model;
  ASSERT_TRUE(models_->GetModel(&get_ctx, get, &model).ok());
  EXPECT_EQ(model.spec().learner(), "logreg");
  EXPECT_EQ(model.version(), 1u);
  EXPECT_EQ(model.generation(), 1u);
  EXPECT_THAT(model.classes(), ::testing::ElementsAre("0", "1"));

  ASSERT_TRUE(Create("other").ok());
  grpc::ClientContext list_ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(models_->ListModels(&list_ctx, {}, &list).ok());
  EXPECT_EQ(list.models_size(), 2);

  grpc::ClientContext del_ctx;
  v1::DeleteModelRequest del;
  del.set_model("fraud");
  v1::DeleteModelResponse del_resp;
  ASSERT_TRUE(models_->DeleteModel(&del_ctx, del, &del_resp).ok());
  EXPECT_EQ(HealthOf("riffle.v1.model/fraud"), "NOT_SERVING");
  grpc::ClientContext get_ctx2;
  EXPECT_EQ(models_->GetModel(&get_ctx2, get, &model).error_code(), grpc::StatusCode::NOT_FOUND);
  // Re-created under the same name with its checkpoints kept: the next version.
  ASSERT_TRUE(Create("fraud").ok());
  grpc::ClientContext get_ctx3;
  ASSERT_TRUE(models_->GetModel(&get_ctx3, get, &model).ok());
  EXPECT_EQ(model.version(), 2u);
}

TEST_F(GrpcServiceTest, PredictAndLearn) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  ASSERT_TRUE(LearnSome("m", 400).ok());
  v1::PredictRequest req;
  req.set_model("m");
  *req.add_instances() = Instance(2, 1, "a");
  *req.add_instances() = Instance(-2, -1, "b");
  v1::PredictResponse resp;
  ASSERT_TRUE(Predict(req, &resp).ok());
  ASSERT_EQ(resp.predictions_size(), 2);
  EXPECT_EQ(resp.model(), "m");
  EXPECT_EQ(resp.version(), 1u);
  EXPECT_EQ(resp.predictions(0).id(), "a");
  EXPECT_EQ(resp.predictions(0).predicted_class(), "1");
  EXPECT_EQ(resp.predictions(1).predicted_class(), "0");
  ASSERT_EQ(resp.predictions(0).probabilities_size(), 2);
  EXPECT_EQ(resp.predictions(0).probabilities(1).class_name(), "1");
  EXPECT_GT(resp.predictions(0).probabilities(1).probability(), 0.5);

  // The label for "a" arrives later, by id.
  v1::LearnRequest by_id;
  by_id.set_model("m");
  v1::LabeledInstance* e = by_id.add_examples();
  e->mutable_instance()->set_id("a");
  e->mutable_label()->set_class_name("1");
  e = by_id.add_examples();
  e->mutable_instance()->set_id("unknown-id");
  e->mutable_label()->set_class_name("0");
  grpc::ClientContext ctx;
  v1::LearnResponse learned;
  ASSERT_TRUE(inference_->Learn(&ctx, by_id, &learned).ok());
  EXPECT_EQ(learned.learned(), 1u);
  EXPECT_EQ(learned.cache_misses(), 1u);

  grpc::ClientContext mctx;
  v1::GetMetricsRequest mreq;
  mreq.set_model("m");
  v1::ModelMetrics metrics;
  ASSERT_TRUE(models_->GetMetrics(&mctx, mreq, &metrics).ok());
  EXPECT_EQ(metrics.labeled(), 401u);
  EXPECT_EQ(metrics.unlabeled(), 2u);
  EXPECT_EQ(metrics.cumulative().count(), 401u);
  EXPECT_GT(metrics.cumulative().accuracy(), 0.8);
  EXPECT_TRUE(metrics.cumulative().has_roc_auc());
  EXPECT_EQ(metrics.label_cache_hits(), 1u);
  EXPECT_EQ(metrics.label_cache_misses(), 1u);
  EXPECT_EQ(metrics.predict_latency().count(), 1u);
  EXPECT_GT(metrics.learn_latency().p50_seconds(), 0.0);
}

TEST_F(GrpcServiceTest, PredictionsDoNotDependOnTheOrderOfFeatures) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  ASSERT_TRUE(LearnSome("m", 300).ok());
  // The same features, inserted into the map in opposite orders, many times: protobuf map
  // order varies, the probabilities must not (not even in the last bit).
  v1::PredictRequest req;
  req.set_model("m");
  for (int r = 0; r < 50; ++r) {
    v1::Instance* a = req.add_instances();
    v1::Instance* b = req.add_instances();
    const char* names[] = {"x0", "x1", "f2", "f3", "f4", "f5", "f6", "f7"};
    for (int k = 0; k < 8; ++k) {
      (*a->mutable_features())[names[k]].set_number(0.1 * k + r);
      (*b->mutable_features())[names[7 - k]].set_number(0.1 * (7 - k) + r);
    }
  }
  v1::PredictResponse resp;
  ASSERT_TRUE(Predict(req, &resp).ok());
  for (int r = 0; r < 50; ++r) {
    EXPECT_EQ(resp.predictions(2 * r).probabilities(1).probability(),
              resp.predictions(2 * r + 1).probabilities(1).probability())
        << r;
  }
}

// The columnar form gives the same predictions, bit for bit, as instance maps: on the fast
// path (pass-through pipeline, no ids), with ids (cached for learning by id), and on a model
// with declared features (the general path).
TEST_F(GrpcServiceTest, DenseBatchesPredictExactlyLikeInstances) {
  Start();
  v1::ModelSpec declared = LogregSpec();
  auto* d = declared.mutable_features()->add_declared();
  d->set_name("x1");
  d->set_scaling(v1::FeatureDef::MIN_MAX);
  ASSERT_TRUE(Create("plain").ok());
  ASSERT_TRUE(Create("declared", declared).ok());
  for (const std::string model : {"plain", "declared"}) {
    ASSERT_TRUE(LearnSome(model, 300).ok());
    for (bool with_ids : {false, true}) {
      v1::PredictRequest maps, dense;
      maps.set_model(model);
      dense.set_model(model);
      // Columns in a different order than the names sort, a column the model never saw, and a
      // missing value (NaN) in one row.
      for (const char* name : {"x1", "unseen", "x0"})
        dense.mutable_dense()->add_feature_names(name);
      for (int r = 0; r < 20; ++r) {
        const double x0 = r * 0.37 - 3, x1 = 2 - r * 0.21;
        v1::Instance* i = maps.add_instances();
        (*i->mutable_features())["x0"].set_number(x0);
        if (r != 7) (*i->mutable_features())["x1"].set_number(x1);
        (*i->mutable_features())["unseen"].set_number(r);
        dense.mutable_dense()->add_values(r != 7 ? x1 : std::nan(""));
        dense.mutable_dense()->add_values(r);
        dense.mutable_dense()->add_values(x0);
        if (with_ids) {
          i->set_id("row" + std::to_string(r));
          dense.mutable_dense()->add_ids("row" + std::to_string(r));
        }
      }
      v1::PredictResponse a, b;
      ASSERT_TRUE(Predict(maps, &a).ok());
      grpc::Status s = Predict(dense, &b);
      ASSERT_TRUE(s.ok()) << s.error_message();
      ASSERT_EQ(b.predictions_size(), 20);
      for (int r = 0; r < 20; ++r) {
        EXPECT_EQ(b.predictions(r).id(), a.predictions(r).id());
        EXPECT_EQ(b.predictions(r).predicted_class(), a.predictions(r).predicted_class());
        for (int k = 0; k < 2; ++k) {
          EXPECT_EQ(b.predictions(r).probabilities(k).probability(),
                    a.predictions(r).probabilities(k).probability())
              << model << " row " << r;
        }
      }
    }
  }
  // Rows predicted with ids can be learned by id.
  v1::LearnRequest by_id;
  by_id.set_model("plain");
  v1::LabeledInstance* e = by_id.add_examples();
  e->mutable_instance()->set_id("row3");
  e->mutable_label()->set_class_name("1");
  grpc::ClientContext ctx;
  v1::LearnResponse learned;
  ASSERT_TRUE(inference_->Learn(&ctx, by_id, &learned).ok());
  EXPECT_EQ(learned.learned(), 1u);
}

TEST_F(GrpcServiceTest, InvalidDenseBatchesNameTheField) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  auto error = [&](const std::function<void(v1::PredictRequest*)>& edit) {
    v1::PredictRequest req;
    req.set_model("m");
    req.mutable_dense()->add_feature_names("a");
    req.mutable_dense()->add_feature_names("b");
    for (int v = 0; v < 4; ++v) req.mutable_dense()->add_values(v);
    edit(&req);
    v1::PredictResponse resp;
    grpc::Status s = Predict(req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    return s.error_message();
  };
  EXPECT_THAT(error([](v1::PredictRequest* r) { r->mutable_dense()->add_values(1); }),
              HasSubstr("dense.values: 5 values are not a whole number of rows of 2"));
  EXPECT_THAT(error([](v1::PredictRequest* r) { r->mutable_dense()->set_feature_names(1, "a"); }),
              HasSubstr("dense.feature_names: \"a\" is given twice"));
  EXPECT_THAT(error([](v1::PredictRequest* r) { r->mutable_dense()->set_feature_names(0, ""); }),
              HasSubstr("dense.feature_names[0]"));
  EXPECT_THAT(error([](v1::PredictRequest* r) {
                r->mutable_dense()->set_values(3, std::numeric_limits<double>::infinity());
              }),
              HasSubstr("dense.values[3] (row 1, features[\"b\"]): infinity"));
  EXPECT_THAT(error([](v1::PredictRequest* r) { r->mutable_dense()->add_ids("only-one"); }),
              HasSubstr("dense.ids: 1 ids for 2 rows"));
  EXPECT_THAT(error([](v1::PredictRequest* r) { r->mutable_dense()->clear_values(); }),
              HasSubstr("dense: empty batch"));
  EXPECT_THAT(error([](v1::PredictRequest* r) { *r->add_instances() = Instance(1, 1); }),
              HasSubstr("give instances or dense, not both"));
}

TEST_F(GrpcServiceTest, InvalidRequestsNameTheField) {
  ServerOptions options;
  options.limits.max_batch = 3;
  Start(options);
  ASSERT_TRUE(Create("m").ok());
  v1::PredictRequest req;
  v1::PredictResponse resp;
  grpc::Status s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("model: required"));
  req.set_model("nope");
  *req.add_instances() = Instance(1, 1);
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("model 'nope' not found"));
  req.set_model("m");
  req.clear_instances();
  EXPECT_THAT(Predict(req, &resp).error_message(), HasSubstr("instances: empty batch"));
  for (int i = 0; i < 4; ++i) *req.add_instances() = Instance(1, 1);
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("over the limit of 3"));
  req.clear_instances();
  *req.add_instances() = Instance(1, 1);
  (*req.add_instances()->mutable_features())["x0"].set_number(std::nan(""));
  s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("instances[1].features[\"x0\"]: NaN"));
  req.mutable_instances(1)->mutable_features()->clear();
  (*req.mutable_instances(1)->mutable_features())["x0"];  // a value with no kind
  EXPECT_THAT(Predict(req, &resp).error_message(),
              HasSubstr("instances[1].features[\"x0\"]: the value is empty"));

  v1::LearnRequest learn;
  learn.set_model("m");
  *learn.add_examples()->mutable_instance() = Instance(1, 1);
  grpc::ClientContext ctx;
  v1::LearnResponse lr;
  s = inference_->Learn(&ctx, learn, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("examples[0].label.class_name: required"));
  learn.mutable_examples(0)->mutable_label()->set_class_name("2");
  grpc::ClientContext ctx2;
  EXPECT_THAT(inference_->Learn(&ctx2, learn, &lr).error_message(),
              HasSubstr("examples[0].label: unknown class \"2\""));

  v1::ModelSpec bad = LogregSpec();
  (*bad.mutable_learner_options())["lr"] = "-1";
  s = Create("bad", bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("spec.learner_options: option 'lr'"));
  s = Create("a/b");
  EXPECT_THAT(s.error_message(), HasSubstr("name:"));
}

TEST_F(GrpcServiceTest, MutatingCallsNeedTheToken) {
  ServerOptions options;
  options.auth_token = "s3cret";
  Start(options);
  grpc::Status s = Create("m");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  s = Create("m", LogregSpec(), "wrong");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Create("m", LogregSpec(), "s3cret").ok());
  EXPECT_EQ(LearnSome("m", 10).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(LearnSome("m", 10, "s3cret").ok());
  // Reading needs no token.
  v1::PredictRequest req;
  req.set_model("m");
  *req.add_instances() = Instance(1, 1);
  v1::PredictResponse resp;
  EXPECT_TRUE(Predict(req, &resp).ok());
  grpc::ClientContext ctx;
  v1::CheckpointRequest ck;
  ck.set_model("m");
  v1::CheckpointInfo info;
  EXPECT_EQ(models_->Checkpoint(&ctx, ck, &info).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A stream checks at its start.
  grpc::ClientContext sctx;
  v1::LearnResponse summary;
  auto writer = inference_->LearnStream(&sctx, &summary);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(GrpcServiceTest, PredictStreamAnswersInOrderAndStopsAtABadRequest) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  ASSERT_TRUE(LearnSome("m", 200).ok());
  grpc::ClientContext ctx;
  auto stream = inference_->PredictStream(&ctx);
  for (int r = 0; r < 20; ++r) {
    v1::PredictRequest req;
    req.set_model("m");
    for (int i = 0; i < 5; ++i)
      *req.add_instances() = Instance(r - 10, i, absl::StrFormat("%d-%d", r, i));
    ASSERT_TRUE(stream->Write(req));
    v1::PredictResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    ASSERT_EQ(resp.predictions_size(), 5);
    EXPECT_EQ(resp.predictions(4).id(), absl::StrFormat("%d-4", r));
  }
  v1::PredictRequest bad;
  bad.set_model("m");
  ASSERT_TRUE(stream->Write(bad));
  v1::PredictResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("requests[20].instances: empty batch"));
}

TEST_F(GrpcServiceTest, LearnStreamSummarizes) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  grpc::ClientContext ctx;
  v1::LearnResponse summary;
  auto writer = inference_->LearnStream(&ctx, &summary);
  for (int r = 0; r < 10; ++r) {
    v1::LearnRequest req;
    req.set_model("m");
    for (int i = 0; i < 7; ++i) {
      v1::LabeledInstance* e = req.add_examples();
      *e->mutable_instance() = Instance(r, i);
      e->mutable_label()->set_class_name(r % 2 == 0 ? "0" : "1");
    }
    ASSERT_TRUE(writer->Write(req));
  }
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(summary.learned(), 70u);
  EXPECT_EQ(summary.model(), "m");
}

TEST_F(GrpcServiceTest, CheckpointListAndRestore) {
  Start();
  ASSERT_TRUE(Create("m").ok());
  ASSERT_TRUE(LearnSome("m", 100).ok());
  grpc::ClientContext ctx;
  v1::CheckpointRequest ck;
  ck.set_model("m");
  v1::CheckpointInfo info;
  ASSERT_TRUE(models_->Checkpoint(&ctx, ck, &info).ok());
  EXPECT_EQ(info.generation(), 2u);
  EXPECT_GT(info.size_bytes(), 0u);
  v1::PredictRequest req;
  req.set_model("m");
  *req.add_instances() = Instance(0.3, -0.1);
  v1::PredictResponse before;
  ASSERT_TRUE(Predict(req, &before).ok());
  EXPECT_EQ(before.generation(), 2u);
  ASSERT_TRUE(LearnSome("m", 300).ok());

  grpc::ClientContext lctx;
  v1::ListCheckpointsRequest list_req;
  list_req.set_model("m");
  v1::ListCheckpointsResponse list;
  ASSERT_TRUE(models_->ListCheckpoints(&lctx, list_req, &list).ok());
  ASSERT_EQ(list.checkpoints_size(), 2);
  EXPECT_EQ(list.checkpoints(0).generation(), 2u);  // newest first

  grpc::ClientContext rctx;
  v1::RestoreRequest restore;
  restore.set_model("m");
  restore.set_generation(2);
  v1::Model model;
  ASSERT_TRUE(models_->Restore(&rctx, restore, &model).ok());
  EXPECT_EQ(model.labeled(), 100u);
  v1::PredictResponse after;
  ASSERT_TRUE(Predict(req, &after).ok());
  EXPECT_EQ(after.predictions(0).probabilities(1).probability(),
            before.predictions(0).probabilities(1).probability());
  grpc::ClientContext rctx2;
  restore.set_generation(77);
  EXPECT_EQ(models_->Restore(&rctx2, restore, &model).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServiceTest, OverloadIsResourceExhausted) {
  ServerOptions options;
  options.limits.max_inflight = 1;
  Start(options);
  ASSERT_TRUE(Create("m").ok());
  // An open stream holds the only slot.
  grpc::ClientContext sctx;
  auto stream = inference_->PredictStream(&sctx);
  v1::PredictRequest req;
  req.set_model("m");
  *req.add_instances() = Instance(1, 1);
  ASSERT_TRUE(stream->Write(req));
  v1::PredictResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  grpc::Status s = Predict(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(Predict(req, &resp).ok());
}

}  // namespace
}  // namespace riffle::service
