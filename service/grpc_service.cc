#include "service/grpc_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "features/event.h"

namespace riffle::service {
namespace {

namespace v1 = riffle::v1;

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

absl::Status Prefixed(std::string_view prefix, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrFormat("%s%s", prefix, s.message()));
}

void SetTimestamp(std::int64_t micros, google::protobuf::Timestamp* out) {
  out->set_seconds(micros / 1'000'000);
  out->set_nanos(static_cast<std::int32_t>((micros % 1'000'000) * 1000));
}

// Holds one of the server's in-flight slots for the duration of a call.
class InflightSlot {
 public:
  explicit InflightSlot(ServiceContext* c) : c_(c) {
    ok_ = c_->inflight.fetch_add(1, std::memory_order_relaxed) < c_->limits.max_inflight;
  }
  ~InflightSlot() { Release(); }
  // Gives the slot back early (a stream that has finished but is not yet destroyed).
  void Release() {
    if (!released_) c_->inflight.fetch_sub(1, std::memory_order_relaxed);
    released_ = true;
  }
  InflightSlot(const InflightSlot&) = delete;
  InflightSlot& operator=(const InflightSlot&) = delete;
  bool ok() const { return ok_; }
  grpc::Status Overloaded() const {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrFormat("server overloaded: more than %d calls in flight; retry "
                                        "with backoff",
                                        c_->limits.max_inflight));
  }

 private:
  ServiceContext* c_;
  bool ok_ = false;
  bool released_ = false;
};

// Runs `fn` after the auth and deadline checks; converts its Status, and any exception (a bug:
// handlers do not throw on bad input), so nothing escapes into gRPC.
template <typename Fn>
grpc::Status Guarded(ServiceContext* c, grpc::CallbackServerContext* ctx, bool mutating, Fn&& fn) {
  if (mutating) {
    if (grpc::Status s = c->auth.Check(*ctx); !s.ok()) return s;
  }
  if (ctx->deadline() <= std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before handling");
  }
  try {
    return ToGrpcStatus(fn());
  } catch (const std::exception& e) {
    c->logger->Error(absl::StrFormat("internal error in a handler: %s", e.what()));
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrFormat("internal error: %s", e.what()));
  } catch (...) {
    c->logger->Error("internal error in a handler (unknown exception)");
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
}

template <typename Fn>
grpc::ServerUnaryReactor* Unary(ServiceContext* c, grpc::CallbackServerContext* ctx, bool mutating,
                                Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  InflightSlot slot(c);
  reactor->Finish(slot.ok() ? Guarded(c, ctx, mutating, std::forward<Fn>(fn)) : slot.Overloaded());
  return reactor;
}

absl::Status RequireModel(const std::string& model) {
  if (model.empty()) return Invalid("model: required (the model's name)");
  return absl::OkStatus();
}

absl::Status CheckBatch(std::string_view field, int size, std::size_t limit) {
  if (size == 0) return Invalid(absl::StrFormat("%s: empty batch", field));
  if (static_cast<std::size_t>(size) > limit) {
    return Invalid(
        absl::StrFormat("%s: %d items is over the limit of %d per request", field, size, limit));
  }
  return absl::OkStatus();
}

// Where an instance is in its request, for error messages: "<field>[<index>]<suffix>", e.g.
// "instances[3]." (formatted only when there is an error).
struct InstancePath {
  const char* field;
  std::size_t index;
  const char* suffix;
  std::string Format() const { return absl::StrFormat("%s[%d]%s", field, index, suffix); }
};

// The instance as the model takes it: its id and key, its event time (checked: a Timestamp
// outside years 0001..9999 or with nanos outside 0..999999999 is invalid) and `features`.
absl::Status ToInstanceView(const v1::Instance& instance, const InstancePath& path,
                            std::span<const features::NamedFeature> features, InstanceView* out) {
  out->id = instance.id();
  out->features = features;
  out->key =
      instance.key().empty() ? std::nullopt : std::optional<std::string_view>(instance.key());
  out->time_micros = std::nullopt;
  if (instance.has_event_time()) {
    // The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
    constexpr std::int64_t kMinSeconds = -62135596800;
    constexpr std::int64_t kMaxSeconds = 253402300799;
    const google::protobuf::Timestamp& t = instance.event_time();
    if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
        t.nanos() > 999'999'999) {
      return Invalid(absl::StrFormat(
          "%sevent_time: not a valid timestamp (seconds %d, nanos %d; years 0001 to 9999)",
          path.Format(), t.seconds(), t.nanos()));
    }
    out->time_micros = t.seconds() * 1'000'000 + t.nanos() / 1000;
  }
  return absl::OkStatus();
}

// Views of an instance's features (no copies), sorted by name.
absl::Status ToFeatures(const v1::Instance& instance, const InstancePath& path,
                        std::vector<features::NamedFeature>* out) {
  out->clear();
  out->reserve(static_cast<std::size_t>(instance.features_size()));
  for (const auto& [name, value] : instance.features()) {
    if (name.empty()) {
      return Invalid(absl::StrFormat("%sfeatures: a feature name is empty", path.Format()));
    }
    switch (value.kind_case()) {
      case v1::Value::kNumber:
        out->push_back({name, features::FeatureValue::Number(value.number())});
        break;
      case v1::Value::kText:
        out->push_back({name, features::FeatureValue::Text(value.text())});
        break;
      case v1::Value::kFlag:
        out->push_back({name, features::FeatureValue::Number(value.flag() ? 1.0 : 0.0)});
        break;
      case v1::Value::KIND_NOT_SET:
        return Invalid(
            absl::StrFormat("%sfeatures[\"%s\"]: the value is empty (set number, text or flag)",
                            path.Format(), name));
    }
  }
  // A protobuf map iterates in no fixed order, and floating-point sums depend on the order of
  // their terms: sorted by name, the same instance always gives bit-identical predictions and
  // a replayed stream of requests learns a bit-identical model.
  std::sort(out->begin(), out->end(),
            [](const features::NamedFeature& a, const features::NamedFeature& b) {
              return a.name < b.name;
            });
  return absl::OkStatus();
}

void ToProto(const ModelInfo& info, v1::Model* out) {
  out->set_name(info.name);
  *out->mutable_spec() = info.definition.spec;
  out->set_version(info.version);
  out->set_generation(info.generation);
  for (const std::string& c : info.classes) out->add_classes(c);
  out->set_events(info.events);
  out->set_labeled(info.labeled);
  out->set_unlabeled(info.unlabeled);
  out->set_memory_bytes(info.memory_bytes);
  SetTimestamp(info.created_micros, out->mutable_created());
  if (info.last_checkpoint_micros != 0) {
    SetTimestamp(info.last_checkpoint_micros, out->mutable_last_checkpoint());
  }
}

void ToProto(const MetricValues& v, v1::MetricValues* out) {
  out->set_accuracy(v.accuracy);
  out->set_log_loss(v.log_loss);
  if (v.roc_auc.has_value()) out->set_roc_auc(*v.roc_auc);
  if (v.precision.has_value()) out->set_precision(*v.precision);
  if (v.recall.has_value()) out->set_recall(*v.recall);
  if (v.f1.has_value()) out->set_f1(*v.f1);
  out->set_macro_f1(v.macro_f1);
  out->set_count(v.count);
}

void ToProto(const LatencyValues& v, v1::LatencySummary* out) {
  out->set_p50_seconds(v.p50_seconds);
  out->set_p99_seconds(v.p99_seconds);
  out->set_max_seconds(v.max_seconds);
  out->set_count(v.count);
}

// Per-thread buffers of the request conversions: the feature views of each instance.
struct RequestScratch {
  std::vector<std::vector<features::NamedFeature>> features;
  std::vector<InstanceView> instances;
  std::vector<ExampleView> examples;
  PredictBatchResult predictions;

  void Resize(std::size_t n) {
    if (features.size() < n) features.resize(n);
  }
};

thread_local RequestScratch scratch;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the google.rpc code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::Status TokenAuth::Check(const grpc::CallbackServerContext& context) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this call changes state: send \"authorization: Bearer <token>\"");
  }
  const std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "authorization metadata must be \"Bearer <token>\"");
  }
  const std::string_view given = value.substr(kBearer.size());
  // Constant-time comparison: the time taken does not reveal how much of the token matched.
  unsigned char diff = given.size() == token_.size() ? 0 : 1;
  for (std::size_t i = 0; i < token_.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    diff |= static_cast<unsigned char>(g ^ token_[i]);
  }
  if (diff != 0) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "invalid token");
  return grpc::Status::OK;
}

// Fills the response from the model's result; `id(i)` gives instance i's id.
template <typename IdOf>
void FillPredictions(const PredictBatchResult& result, std::size_t n, IdOf&& id,
                     v1::PredictResponse* response) {
  response->set_version(result.version);
  response->set_generation(result.generation);
  const std::size_t k = result.classes.size();
  response->mutable_predictions()->Reserve(static_cast<int>(n));
  for (std::size_t i = 0; i < n; ++i) {
    v1::Prediction* p = response->add_predictions();
    p->set_id(id(i));
    if (!result.predicted[i].has_value()) continue;
    p->mutable_probabilities()->Reserve(static_cast<int>(k));
    for (std::size_t j = 0; j < k; ++j) {
      v1::ClassProbability* cp = p->add_probabilities();
      cp->set_class_name(result.classes[j]);
      cp->set_probability(result.probabilities[i * k + j]);
    }
    p->set_predicted_class(result.classes[*result.predicted[i]]);
  }
}

absl::Status HandleDensePredict(ServiceContext* c, ServedModel* model,
                                const v1::PredictRequest& request, v1::PredictResponse* response) {
  const v1::DenseBatch& dense = request.dense();
  const std::size_t cols = static_cast<std::size_t>(dense.feature_names_size());
  if (cols == 0) return Invalid("dense.feature_names: required (at least one feature)");
  const std::size_t values = static_cast<std::size_t>(dense.values_size());
  if (values % cols != 0) {
    return Invalid(absl::StrFormat(
        "dense.values: %d values are not a whole number of rows of %d features", values, cols));
  }
  const std::size_t rows = values / cols;
  if (absl::Status s = CheckBatch("dense", static_cast<int>(rows), c->limits.max_batch); !s.ok()) {
    return s;
  }
  if (dense.ids_size() != 0 && static_cast<std::size_t>(dense.ids_size()) != rows) {
    return Invalid(absl::StrFormat("dense.ids: %d ids for %d rows (give none, or one per row)",
                                   dense.ids_size(), rows));
  }
  thread_local std::vector<std::string_view> names;
  thread_local std::vector<std::string_view> ids;
  names.assign(dense.feature_names().begin(), dense.feature_names().end());
  ids.assign(dense.ids().begin(), dense.ids().end());
  for (std::size_t j = 0; j < cols; ++j) {
    if (names[j].empty()) {
      return Invalid(absl::StrFormat("dense.feature_names[%d]: must not be empty", j));
    }
  }
  {
    thread_local std::vector<std::string_view> sorted;
    sorted = names;
    std::sort(sorted.begin(), sorted.end());
    if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
      return Invalid(absl::StrFormat("dense.feature_names: \"%s\" is given twice", *dup));
    }
  }
  for (std::size_t v = 0; v < values; ++v) {
    if (std::isinf(dense.values(static_cast<int>(v)))) {
      return Invalid(absl::StrFormat(
          "dense.values[%d] (row %d, features[\"%s\"]): infinity is not a valid value", v, v / cols,
          names[v % cols]));
    }
  }
  DenseBatchView view{names, {dense.values().data(), values}, ids};
  PredictBatchResult& result = scratch.predictions;
  if (absl::Status s = model->PredictDense(view, &result); !s.ok()) return s;
  response->set_model(request.model());
  FillPredictions(
      result, rows,
      [&](std::size_t i) { return ids.empty() ? std::string() : std::string(ids[i]); }, response);
  return absl::OkStatus();
}

absl::Status HandlePredict(ServiceContext* c, const v1::PredictRequest& request,
                           v1::PredictResponse* response) {
  if (absl::Status s = RequireModel(request.model()); !s.ok()) return s;
  const bool dense = request.has_dense();
  if (dense && request.instances_size() > 0) {
    return Invalid("instances: give instances or dense, not both");
  }
  if (!dense) {
    if (absl::Status s = CheckBatch("instances", request.instances_size(), c->limits.max_batch);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::shared_ptr<ServedModel>> model = c->registry->Get(request.model());
  if (!model.ok()) return model.status();
  if (dense) return HandleDensePredict(c, model->get(), request, response);
  const std::size_t n = static_cast<std::size_t>(request.instances_size());
  scratch.Resize(n);
  scratch.instances.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const v1::Instance& instance = request.instances(static_cast<int>(i));
    if (absl::Status s = ToFeatures(instance, {"instances", i, "."}, &scratch.features[i]);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ToInstanceView(instance, {"instances", i, "."}, scratch.features[i],
                                        &scratch.instances.emplace_back());
        !s.ok()) {
      return s;
    }
  }
  PredictBatchResult& result = scratch.predictions;
  if (absl::Status s = (*model)->Predict(scratch.instances, &result); !s.ok()) return s;
  response->set_model(request.model());
  FillPredictions(
      result, n,
      [&](std::size_t i) -> const std::string& {
        return request.instances(static_cast<int>(i)).id();
      },
      response);
  return absl::OkStatus();
}

absl::Status HandleLearn(ServiceContext* c, const v1::LearnRequest& request,
                         v1::LearnResponse* response,
                         std::chrono::system_clock::time_point deadline) {
  if (absl::Status s = RequireModel(request.model()); !s.ok()) return s;
  if (absl::Status s = CheckBatch("examples", request.examples_size(), c->limits.max_batch);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::shared_ptr<ServedModel>> model = c->registry->Get(request.model());
  if (!model.ok()) return model.status();
  const std::size_t n = static_cast<std::size_t>(request.examples_size());
  scratch.Resize(n);
  scratch.examples.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const v1::LabeledInstance& example = request.examples(static_cast<int>(i));
    if (!example.has_label() || example.label().class_name().empty()) {
      return Invalid(absl::StrFormat(
          "examples[%d].label.class_name: required (the class name, e.g. \"1\")", i));
    }
    ExampleView view;
    if (absl::Status s =
            ToFeatures(example.instance(), {"examples", i, ".instance."}, &scratch.features[i]);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ToInstanceView(example.instance(), {"examples", i, ".instance."},
                                        scratch.features[i], &view.instance);
        !s.ok()) {
      return s;
    }
    view.by_id = scratch.features[i].empty() && !example.instance().id().empty();
    view.label = example.label().class_name();
    view.weight = example.weight() == 0.0 ? 1.0 : example.weight();
    scratch.examples.push_back(view);
  }
  LearnBatchResult result;
  if (absl::Status s = (*model)->Learn(scratch.examples, request.skip_metrics(), &result, deadline);
      !s.ok()) {
    return s;
  }
  response->set_learned(result.learned);
  response->set_cache_misses(result.cache_misses);
  response->set_model(request.model());
  response->set_version(result.version);
  response->set_generation(result.generation);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// ModelService

grpc::ServerUnaryReactor* ModelServiceImpl::CreateModel(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateModelRequest* request,
                                                        v1::Model* response) {
  return Unary(context_, ctx, /*mutating=*/true, [&]() -> absl::Status {
    absl::StatusOr<std::shared_ptr<ServedModel>> model =
        context_->registry->Create(request->name(), request->spec());
    if (!model.ok()) return model.status();
    ToProto((*model)->Info(), response);
    context_->logger->Info(absl::StrFormat("model '%s' created (learner %s, version %d)",
                                           request->name(), request->spec().learner(),
                                           response->version()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModel(grpc::CallbackServerContext* ctx,
                                                     const v1::GetModelRequest* request,
                                                     v1::Model* response) {
  return Unary(context_, ctx, false, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = context_->registry->Get(request->model());
    if (!model.ok()) return model.status();
    ToProto((*model)->Info(), response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* ctx,
                                                       const v1::ListModelsRequest* /*request*/,
                                                       v1::ListModelsResponse* response) {
  return Unary(context_, ctx, false, [&]() -> absl::Status {
    for (const std::shared_ptr<ServedModel>& model : context_->registry->List()) {
      ToProto(model->Info(), response->add_models());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::DeleteModel(grpc::CallbackServerContext* ctx,
                                                        const v1::DeleteModelRequest* request,
                                                        v1::DeleteModelResponse* /*response*/) {
  return Unary(context_, ctx, true, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::Status s = context_->registry->Delete(request->model(), request->delete_checkpoints());
    if (s.ok()) {
      context_->logger->Info(absl::StrFormat(
          "model '%s' deleted%s", request->model(),
          request->delete_checkpoints() ? " with its checkpoints" : " (checkpoints kept)"));
    }
    return s;
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetMetrics(grpc::CallbackServerContext* ctx,
                                                       const v1::GetMetricsRequest* request,
                                                       v1::ModelMetrics* response) {
  return Unary(context_, ctx, false, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = context_->registry->Get(request->model());
    if (!model.ok()) return model.status();
    const ModelMetricsReport r = (*model)->Metrics();
    response->set_model(request->model());
    ToProto(r.cumulative, response->mutable_cumulative());
    ToProto(r.rolling, response->mutable_rolling());
    response->set_window(r.window);
    response->set_events(r.events);
    response->set_labeled(r.labeled);
    response->set_unlabeled(r.unlabeled);
    response->set_label_cache_hits(r.label_cache.hits);
    response->set_label_cache_misses(r.label_cache.misses);
    response->set_label_cache_evictions(r.label_cache.evictions);
    ToProto(r.predict_latency, response->mutable_predict_latency());
    ToProto(r.learn_latency, response->mutable_learn_latency());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::Checkpoint(grpc::CallbackServerContext* ctx,
                                                       const v1::CheckpointRequest* request,
                                                       v1::CheckpointInfo* response) {
  return Unary(context_, ctx, true, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = context_->registry->Get(request->model());
    if (!model.ok()) return model.status();
    absl::StatusOr<checkpoints::WrittenCheckpoint> written = (*model)->CheckpointNow();
    if (!written.ok()) return written.status();
    response->set_generation(written->generation);
    response->set_size_bytes(written->size_bytes);
    SetTimestamp(context_->registry->options().env->NowMicros(), response->mutable_created());
    context_->logger->Info(absl::StrFormat("model '%s': checkpoint generation %d written (%s)",
                                           request->model(), written->generation, written->path));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::ListCheckpoints(
    grpc::CallbackServerContext* ctx, const v1::ListCheckpointsRequest* request,
    v1::ListCheckpointsResponse* response) {
  return Unary(context_, ctx, false, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = context_->registry->Get(request->model());
    if (!model.ok()) return model.status();
    absl::StatusOr<std::vector<checkpoints::CheckpointInfo>> list = (*model)->ListCheckpoints();
    if (!list.ok()) return list.status();
    for (const checkpoints::CheckpointInfo& info : *list) {
      v1::CheckpointInfo* out = response->add_checkpoints();
      out->set_generation(info.generation);
      out->set_size_bytes(info.size_bytes);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::Restore(grpc::CallbackServerContext* ctx,
                                                    const v1::RestoreRequest* request,
                                                    v1::Model* response) {
  return Unary(context_, ctx, true, [&]() -> absl::Status {
    if (absl::Status s = RequireModel(request->model()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = context_->registry->Get(request->model());
    if (!model.ok()) return model.status();
    if (absl::Status s = (*model)->Restore(request->generation()); !s.ok()) return s;
    ToProto((*model)->Info(), response);
    context_->logger->Info(absl::StrFormat("model '%s' restored to generation %d", request->model(),
                                           response->generation()));
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// InferenceService

grpc::ServerUnaryReactor* InferenceServiceImpl::Predict(grpc::CallbackServerContext* ctx,
                                                        const v1::PredictRequest* request,
                                                        v1::PredictResponse* response) {
  return Unary(context_, ctx, false, [&]() { return HandlePredict(context_, *request, response); });
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Learn(grpc::CallbackServerContext* ctx,
                                                      const v1::LearnRequest* request,
                                                      v1::LearnResponse* response) {
  return Unary(context_, ctx, true,
               [&]() { return HandleLearn(context_, *request, response, ctx->deadline()); });
}

namespace {

// A streaming reactor that holds an in-flight slot while open and gives it back when it
// finishes (before gRPC destroys it), so a closed stream never counts against the limit.
template <typename Reactor>
class SlottedReactor : public Reactor {
 protected:
  explicit SlottedReactor(ServiceContext* c) : slot_(c) {}
  void OnDone() override { delete this; }
  void End(const grpc::Status& status) {
    slot_.Release();
    this->Finish(status);
  }
  InflightSlot slot_;
};

// Runs one request of a stream: `handle` under the usual guards, its error (only) prefixed
// with the request's index in the stream.
template <typename Fn>
grpc::Status StreamStep(ServiceContext* c, grpc::CallbackServerContext* ctx, std::uint64_t index,
                        Fn&& handle) {
  return Guarded(c, ctx, false, [&]() {
    absl::Status s = handle();
    return s.ok() ? s : Prefixed(absl::StrFormat("requests[%d].", index), s);
  });
}

// One response per request, in order: read, predict, write, read again. A failed request ends
// the stream with its status, the message naming the request ("requests[7].instances[3]...").
class PredictStreamReactor
    : public SlottedReactor<grpc::ServerBidiReactor<v1::PredictRequest, v1::PredictResponse>> {
 public:
  PredictStreamReactor(ServiceContext* c, grpc::CallbackServerContext* ctx)
      : SlottedReactor(c), c_(c), ctx_(ctx) {
    if (!slot_.ok()) {
      End(slot_.Overloaded());
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side
      End(grpc::Status::OK);
      return;
    }
    if (ctx_->IsCancelled()) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    response_.Clear();
    grpc::Status status =
        StreamStep(c_, ctx_, index_, [&]() { return HandlePredict(c_, request_, &response_); });
    if (!status.ok()) {
      End(status);
      return;
    }
    ++index_;
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    StartRead(&request_);
  }

 private:
  ServiceContext* c_;
  grpc::CallbackServerContext* ctx_;
  v1::PredictRequest request_;
  v1::PredictResponse response_;
  std::uint64_t index_ = 0;
};

// Learns each request as it arrives, in order; one summary at the end. A failed request ends
// the stream with its status (earlier requests stay learned; the message names the request).
class LearnStreamReactor : public SlottedReactor<grpc::ServerReadReactor<v1::LearnRequest>> {
 public:
  LearnStreamReactor(ServiceContext* c, grpc::CallbackServerContext* ctx,
                     v1::LearnResponse* summary)
      : SlottedReactor(c), c_(c), ctx_(ctx), summary_(summary) {
    if (!slot_.ok()) {
      End(slot_.Overloaded());
      return;
    }
    if (grpc::Status s = c_->auth.Check(*ctx_); !s.ok()) {
      End(s);
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      End(grpc::Status::OK);
      return;
    }
    if (ctx_->IsCancelled()) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    v1::LearnResponse one;
    grpc::Status status = StreamStep(
        c_, ctx_, index_, [&]() { return HandleLearn(c_, request_, &one, ctx_->deadline()); });
    if (!status.ok()) {
      End(status);
      return;
    }
    ++index_;
    summary_->set_learned(summary_->learned() + one.learned());
    summary_->set_cache_misses(summary_->cache_misses() + one.cache_misses());
    summary_->set_model(one.model());
    summary_->set_version(one.version());
    summary_->set_generation(one.generation());
    StartRead(&request_);
  }

 private:
  ServiceContext* c_;
  grpc::CallbackServerContext* ctx_;
  v1::LearnResponse* summary_;
  v1::LearnRequest request_;
  std::uint64_t index_ = 0;
};

}  // namespace

grpc::ServerBidiReactor<v1::PredictRequest, v1::PredictResponse>*
InferenceServiceImpl::PredictStream(grpc::CallbackServerContext* ctx) {
  return new PredictStreamReactor(context_, ctx);
}

grpc::ServerReadReactor<v1::LearnRequest>* InferenceServiceImpl::LearnStream(
    grpc::CallbackServerContext* ctx, v1::LearnResponse* response) {
  return new LearnStreamReactor(context_, ctx, response);
}

}  // namespace riffle::service
