#ifndef RIFFLE_SERVICE_MODEL_REGISTRY_H_
#define RIFFLE_SERVICE_MODEL_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"
#include "riffle/v1/riffle.pb.h"
#include "service/rw_mutex.h"
#include "service/served_model.h"

namespace riffle::service {

struct RegistryOptions {
  checkpoints::Env* env = nullptr;  // required
  // Root of the checkpoint stores: model M checkpoints into <dir>/M/. "" = no checkpoints.
  std::string checkpoint_dir;
  CheckpointSchedule schedule;
};

// What RestoreAll found: models restored, and the problems met (a model directory whose newest
// checkpoints are damaged falls back to an older generation; one with none usable is skipped).
struct RestoreReport {
  struct Restored {
    std::string name;
    std::uint64_t generation = 0;
    std::vector<std::string> fallbacks;  // "ckpt-...riffle: <why it was skipped>"
  };
  std::vector<Restored> restored;
  std::vector<std::string> errors;
};

// Receives model lifecycle events (the server maps them to per-model health).
class RegistryListener {
 public:
  virtual ~RegistryListener() = default;
  virtual void OnModelAdded(const std::string& name) = 0;
  virtual void OnModelRemoved(const std::string& name) = 0;
};

// The models a process serves, by name: the one place gRPC handlers and the Kafka path find a
// model. Thread-safe. A model handed out (shared_ptr) stays valid for its holder after it is
// deleted from the registry, so an in-flight call finishes on the model it started with.
class ModelRegistry {
 public:
  explicit ModelRegistry(RegistryOptions options);
  ~ModelRegistry();

  void SetListener(RegistryListener* listener);

  // Restores every model that has a checkpoint store under checkpoint_dir (its newest valid
  // generation). Call once, before serving.
  RestoreReport RestoreAll();

  // Creates a model. InvalidArgument naming the field for an invalid name or spec,
  // AlreadyExists for a name in use. A model re-created under the name of a deleted one whose
  // checkpoints were kept gets the next version.
  absl::StatusOr<std::shared_ptr<ServedModel>> Create(const std::string& name,
                                                      const riffle::v1::ModelSpec& spec);
  // Serves a model from a state (ServableFromCheckpoint): written as its first generation at
  // once. AlreadyExists for a name in use.
  absl::StatusOr<std::shared_ptr<ServedModel>> CreateFromState(checkpoints::ModelState state);
  // NotFound naming the model.
  absl::StatusOr<std::shared_ptr<ServedModel>> Get(std::string_view name) const;
  std::vector<std::shared_ptr<ServedModel>> List() const;
  // Removes the model; its pending checkpoint is finished first. With delete_checkpoints its
  // checkpoint files are removed too (the emptied directory stays).
  absl::Status Delete(std::string_view name, bool delete_checkpoints);

  // The timer: submits time-triggered checkpoints. Called about once a second.
  void Tick();
  // Graceful shutdown: a final checkpoint of every model that learned since its last one.
  // Returns the first error (every model is attempted).
  absl::Status CheckpointAll();

  const RegistryOptions& options() const { return options_; }

 private:
  ServedModel::Options ModelOptions(const std::string& name) const;

  const RegistryOptions options_;
  mutable RwMutex mu_;
  std::map<std::string, std::shared_ptr<ServedModel>, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  // Serializes Create and Delete, which touch the filesystem, without holding mu_ (Get and
  // List never wait for a disk).
  RwMutex lifecycle_mu_;
  RegistryListener* listener_ = nullptr;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_MODEL_REGISTRY_H_
