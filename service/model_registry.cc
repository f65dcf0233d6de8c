#include "service/model_registry.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "checkpoints/model_checkpoint.h"
#include "checkpoints/store.h"

namespace riffle::service {

ModelRegistry::ModelRegistry(RegistryOptions options) : options_(std::move(options)) {}

ModelRegistry::~ModelRegistry() {
  WriterLock lock(&mu_);
  for (auto& [name, model] : models_) model->StopCheckpointing();
}

void ModelRegistry::SetListener(RegistryListener* listener) {
  WriterLock lock(&lifecycle_mu_);
  listener_ = listener;
}

ServedModel::Options ModelRegistry::ModelOptions(const std::string& name) const {
  ServedModel::Options o;
  o.env = options_.env;
  o.schedule = options_.schedule;
  if (!options_.checkpoint_dir.empty()) o.checkpoint_dir = options_.checkpoint_dir + "/" + name;
  return o;
}

RestoreReport ModelRegistry::RestoreAll() {
  RestoreReport report;
  if (options_.checkpoint_dir.empty()) return report;
  WriterLock lifecycle(&lifecycle_mu_);
  absl::StatusOr<std::vector<std::string>> entries = options_.env->ListDir(options_.checkpoint_dir);
  if (!entries.ok()) {
    // A missing root is a first start, not an error.
    if (!absl::IsNotFound(entries.status())) report.errors.push_back(entries.status().ToString());
    return report;
  }
  for (const std::string& name : *entries) {
    if (!ValidateModelName(name).ok()) continue;  // not a model directory of ours
    const std::string dir = options_.checkpoint_dir + "/" + name;
    checkpoints::CheckpointStoreOptions store_options;
    store_options.dir = dir;
    store_options.read_only = true;
    absl::StatusOr<std::unique_ptr<checkpoints::CheckpointStore>> store =
        checkpoints::CheckpointStore::Open(options_.env, store_options);
    if (!store.ok()) continue;  // a plain file, or unreadable: not a store
    absl::StatusOr<checkpoints::ModelState> state = absl::NotFoundError("no checkpoint");
    absl::StatusOr<checkpoints::LoadedCheckpoint> loaded =
        (*store)->LoadNewestValid([&](std::string_view payload) -> absl::Status {
          state = checkpoints::ParseModelState(payload);
          if (!state.ok()) return state.status();
          if (state->name != name) {
            return absl::DataLossError(
                absl::StrFormat("holds model '%s', not '%s'", state->name, name));
          }
          if (!state->pipeline.has_value()) {
            return absl::FailedPreconditionError("holds a model without an event pipeline");
          }
          return DefinitionFromJson(state->spec).status();
        });
    if (!loaded.ok()) {
      if (!absl::IsNotFound(loaded.status())) {
        report.errors.push_back(
            absl::StrFormat("model '%s' not restored: %s", name, loaded.status().message()));
      }
      continue;
    }
    state->generation = loaded->generation;
    absl::StatusOr<std::unique_ptr<ServedModel>> model =
        ServedModel::FromState(*std::move(state), ModelOptions(name));
    if (!model.ok()) {
      report.errors.push_back(
          absl::StrFormat("model '%s' not restored: %s", name, model.status().message()));
      continue;
    }
    RestoreReport::Restored restored;
    restored.name = name;
    restored.generation = loaded->generation;
    for (const checkpoints::SkippedCheckpoint& skipped : loaded->skipped) {
      restored.fallbacks.push_back(
          absl::StrFormat("%s: %s", skipped.path, skipped.status.message()));
    }
    report.restored.push_back(std::move(restored));
    {
      WriterLock lock(&mu_);
      models_[name] = std::shared_ptr<ServedModel>(*std::move(model));
    }
    if (listener_ != nullptr) listener_->OnModelAdded(name);
  }
  return report;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRegistry::Create(
    const std::string& name, const riffle::v1::ModelSpec& spec) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  absl::StatusOr<ModelDefinition> definition = DefinitionFromSpec(spec);
  if (!definition.ok()) return definition.status();
  WriterLock lifecycle(&lifecycle_mu_);
  {
    WriterLock lock(&mu_);
    if (models_.contains(name)) {
      return absl::AlreadyExistsError(absl::StrFormat("model '%s' already exists", name));
    }
  }
  // A deleted model's kept checkpoints: the new model continues the version sequence (and the
  // generation numbering, which the store does by itself).
  std::uint64_t version = 1;
  const ServedModel::Options model_options = ModelOptions(name);
  if (!model_options.checkpoint_dir.empty()) {
    checkpoints::CheckpointStoreOptions store_options;
    store_options.dir = model_options.checkpoint_dir;
    store_options.read_only = true;
    if (auto store = checkpoints::CheckpointStore::Open(options_.env, store_options); store.ok()) {
      std::uint64_t previous = 0;
      (void)(*store)->LoadNewestValid([&previous](std::string_view payload) {
        absl::StatusOr<checkpoints::ModelState> state = checkpoints::ParseModelState(payload);
        if (state.ok()) previous = state->version;
        return state.status();
      });
      version = previous + 1;
    }
  }
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create(name, *std::move(definition), version, model_options);
  if (!model.ok()) return model.status();
  std::shared_ptr<ServedModel> shared(*std::move(model));
  {
    WriterLock lock(&mu_);
    models_[name] = shared;
  }
  if (listener_ != nullptr) listener_->OnModelAdded(name);
  return shared;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRegistry::CreateFromState(
    checkpoints::ModelState state) {
  const std::string name = state.name;
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  WriterLock lifecycle(&lifecycle_mu_);
  {
    ReaderLock lock(&mu_);
    if (models_.contains(name)) {
      return absl::AlreadyExistsError(absl::StrFormat("model '%s' already exists", name));
    }
  }
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::FromState(std::move(state), ModelOptions(name));
  if (!model.ok()) return model.status();
  if ((*model)->store() != nullptr) {
    if (auto written = (*model)->CheckpointNow(); !written.ok()) return written.status();
  }
  std::shared_ptr<ServedModel> shared(*std::move(model));
  {
    WriterLock lock(&mu_);
    models_[name] = shared;
  }
  if (listener_ != nullptr) listener_->OnModelAdded(name);
  return shared;
}

absl::StatusOr<std::shared_ptr<ServedModel>> ModelRegistry::Get(std::string_view name) const {
  ReaderLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrFormat("model '%s' not found", name));
  }
  return it->second;
}

std::vector<std::shared_ptr<ServedModel>> ModelRegistry::List() const {
  ReaderLock lock(&mu_);
  std::vector<std::shared_ptr<ServedModel>> out;
  out.reserve(models_.size());
  for (const auto& [name, model] : models_) out.push_back(model);
  return out;
}

absl::Status ModelRegistry::Delete(std::string_view name, bool delete_checkpoints) {
  WriterLock lifecycle(&lifecycle_mu_);
  std::shared_ptr<ServedModel> model;
  {
    WriterLock lock(&mu_);
    auto it = models_.find(name);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrFormat("model '%s' not found", name));
    }
    model = std::move(it->second);
    models_.erase(it);
  }
  if (listener_ != nullptr) listener_->OnModelRemoved(model->name());
  model->Retire();
  if (!delete_checkpoints || model->store() == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<checkpoints::CheckpointInfo>> files = model->store()->List();
  if (!files.ok()) return files.status();
  for (const checkpoints::CheckpointInfo& file : *files) {
    if (absl::Status s = options_.env->RemoveFile(file.path); !s.ok()) return s;
  }
  return options_.env->SyncDir(model->store()->options().dir);
}

void ModelRegistry::Tick() {
  const std::int64_t now = options_.env->NowMicros();
  for (const std::shared_ptr<ServedModel>& model : List()) model->MaybeCheckpoint(now);
}

absl::Status ModelRegistry::CheckpointAll() {
  absl::Status first;
  for (const std::shared_ptr<ServedModel>& model : List()) {
    absl::Status s = model->CheckpointIfDirty();
    if (!s.ok() && first.ok()) {
      first = absl::Status(s.code(), absl::StrFormat("model '%s': %s", model->name(), s.message()));
    }
  }
  return first;
}

}  // namespace riffle::service
