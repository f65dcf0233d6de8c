#ifndef RIFFLE_CHECKPOINTS_CHECKPOINTER_H_
#define RIFFLE_CHECKPOINTS_CHECKPOINTER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"
#include "checkpoints/model_checkpoint.h"
#include "checkpoints/store.h"

namespace riffle::checkpoints {

// Writes model snapshots into a CheckpointStore on a background thread, so that the model's
// writer pays only for ModelState::Clone() (a copy of the state) and never for serialization,
// checksumming or fsync.
//
// At most one snapshot is in flight: TrySubmit() refuses a new one while the previous is being
// written (the caller simply tries again at its next trigger), so memory stays bounded and a
// slow disk cannot build a queue.
//
// Thread-safety: all methods may be called from any thread; they are intended for the model's
// single writer. The store must outlive the checkpointer; the destructor waits for the write
// in flight.
class Checkpointer {
 public:
  struct Stats {
    std::uint64_t written = 0;
    std::uint64_t failed = 0;
    std::uint64_t skipped_busy = 0;
    std::uint64_t last_generation = 0;
    std::uint64_t last_bytes = 0;
    double last_seconds = 0;  // serialize + write of the last successful checkpoint
    absl::Status last_error;  // of the last failed one
  };

  // Called on the writing thread around each write, e.g. by a Kafka pipeline: before_write
  // waits until every output of the records a snapshot covers is delivered (an error fails
  // the write, counted in stats().failed, so the model stays dirty and is written again at the
  // next trigger); after_write commits the snapshot's offsets once it is durable.
  struct Hooks {
    std::function<absl::Status(const ModelState& snapshot)> before_write;
    std::function<void(const ModelState& snapshot, std::uint64_t generation)> after_write;
  };

  Checkpointer(CheckpointStore* store, Env* env);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Hands a snapshot to the background thread. False if one is still being written.
  bool TrySubmit(ModelState snapshot);
  // The same, but the snapshot is only made (by calling make_snapshot, without this object's
  // lock) when no write is in flight: a busy writer costs the caller nothing. For a caller that
  // is the only one submitting (nothing else can make the writer busy in between).
  bool TrySubmitWith(absl::FunctionRef<ModelState()> make_snapshot);
  // Waits for the write in flight, then writes this snapshot synchronously (the final
  // checkpoint of a graceful shutdown). Returns its generation.
  absl::StatusOr<std::uint64_t> WriteNow(ModelState snapshot);
  // Blocks until no write is in flight.
  void Wait();
  // Replaces the hooks (empty: none). Waits for the write in flight first, so after it returns
  // no old hook runs any more.
  void SetHooks(Hooks hooks);
  Stats stats() const;

  // The nice value of the writing thread (above the default 0: a lower priority).
  static constexpr int kWriterNice = 10;

 private:
  absl::StatusOr<std::uint64_t> Write(ModelState& snapshot);
  void Run();

  CheckpointStore* store_;
  Env* env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ModelState> pending_;  // guarded by mu_
  bool busy_ = false;                  // guarded by mu_: a snapshot is pending or being written
  bool shutting_down_ = false;         // guarded by mu_
  Stats stats_;                        // guarded by mu_
  Hooks hooks_;                        // guarded by write_mu_
  // Serializes store writes between the thread and WriteNow().
  std::mutex write_mu_;
  std::thread thread_;
};

}  // namespace riffle::checkpoints

#endif  // RIFFLE_CHECKPOINTS_CHECKPOINTER_H_
