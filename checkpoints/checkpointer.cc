#include "checkpoints/checkpointer.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <utility>

namespace riffle::checkpoints {

Checkpointer::Checkpointer(CheckpointStore* store, Env* env)
    : store_(store), env_(env), thread_([this] { Run(); }) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Checkpointer::TrySubmit(ModelState snapshot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_) {
      ++stats_.skipped_busy;
      return false;
    }
    busy_ = true;
    pending_ = std::move(snapshot);
  }
  cv_.notify_all();
  return true;
}

bool Checkpointer::TrySubmitWith(absl::FunctionRef<ModelState()> make_snapshot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_) {
      ++stats_.skipped_busy;
      return false;
    }
  }
  // Only the writer thread changes busy_ meanwhile, from true to false: still idle below.
  return TrySubmit(make_snapshot());
}

absl::StatusOr<std::uint64_t> Checkpointer::WriteNow(ModelState snapshot) {
  Wait();
  return Write(snapshot);
}

void Checkpointer::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !busy_; });
}

void Checkpointer::SetHooks(Hooks hooks) {
  Wait();
  std::lock_guard<std::mutex> write_lock(write_mu_);
  hooks_ = std::move(hooks);
}

Checkpointer::Stats Checkpointer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

absl::StatusOr<std::uint64_t> Checkpointer::Write(ModelState& snapshot) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  const auto start = std::chrono::steady_clock::now();
  if (hooks_.before_write) {
    if (absl::Status s = hooks_.before_write(snapshot); !s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.failed;
      stats_.last_error = s;
      return s;
    }
  }
  // The generation the store will give this write (it numbers newest + 1; this is the only
  // writer). Loading from a store takes the generation from the file name, so the copy in the
  // payload matters only for standalone copies of the file.
  absl::StatusOr<std::vector<CheckpointInfo>> existing = store_->List();
  snapshot.generation = existing.ok() && !existing->empty() ? existing->front().generation + 1 : 1;
  const std::string payload = SerializeModelState(snapshot, env_->NowMicros());
  absl::StatusOr<WrittenCheckpoint> written = store_->Write(payload);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!written.ok()) {
      ++stats_.failed;
      stats_.last_error = written.status();
      return written.status();
    }
    ++stats_.written;
    stats_.last_generation = written->generation;
    stats_.last_bytes = written->size_bytes;
    stats_.last_seconds = seconds;
    if (!written->prune_status.ok()) stats_.last_error = written->prune_status;
  }
  if (hooks_.after_write) hooks_.after_write(snapshot, written->generation);
  return written->generation;
}

void Checkpointer::Run() {
  // Writing is background work: at nice 10 this thread gets about a tenth of a core it
  // competes for, so on a busy machine serialization waits for the predicting threads rather
  // than the reverse (checkpoint_stall_benchmark). Lowering one's own priority needs no
  // privilege; a failure only leaves the default.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kWriterNice);
  while (true) {
    std::optional<ModelState> snapshot;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return pending_.has_value() || shutting_down_; });
      if (!pending_.has_value()) return;  // shutting down with nothing left to write
      snapshot = std::move(pending_);
      pending_.reset();
    }
    // Errors are recorded in stats(); the next trigger tries again, and older generations
    // stay valid in the store.
    (void)Write(*snapshot);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
    }
    cv_.notify_all();
  }
}

}  // namespace riffle::checkpoints
