#ifndef RIFFLE_CHECKPOINTS_STORE_H_
#define RIFFLE_CHECKPOINTS_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "checkpoints/env.h"

namespace riffle::checkpoints {

struct CheckpointStoreOptions {
  // The directory holding one model's checkpoints, and nothing else of Riffle's. Open()
  // creates it, with its parents, unless read_only. Must not be empty.
  std::string dir;
  // How many of the newest generations to keep; older ones are deleted after every successful
  // Write. At least 1. Keeping several is what makes a damaged newest file survivable.
  std::size_t keep = 5;
  // Largest checkpoint file, header included, that Write writes and Load reads (larger files
  // are ResourceExhausted: nothing is allocated for them). At least kHeaderSize (32).
  std::uint64_t max_file_bytes = std::uint64_t{4} << 30;
  // For inspecting a directory that another process may be writing (`riffle ckpt list`): Open
  // neither creates the directory (NotFound if missing) nor removes stale temporary files, and
  // Write is FailedPrecondition.
  bool read_only = false;

  // InvalidArgument naming the field and the rejected value.
  absl::Status Validate() const;
};

// One checkpoint file found in the directory.
struct CheckpointInfo {
  std::uint64_t generation = 0;
  std::string path;
  std::uint64_t size_bytes = 0;  // the whole file, header included
};

// A checkpoint that LoadNewestValid passed over, and why.
struct SkippedCheckpoint {
  std::uint64_t generation = 0;
  std::string path;
  absl::Status status;
};

struct LoadedCheckpoint {
  std::uint64_t generation = 0;
  std::string path;
  // The payload, checksum verified (the file's bytes after the header).
  std::string payload;
  // LoadNewestValid only: the newer checkpoints that could not be used, newest first, so the
  // caller can log "falling back to generation N because ...". Empty for Load().
  std::vector<SkippedCheckpoint> skipped;
};

struct WrittenCheckpoint {
  std::uint64_t generation = 0;
  std::string path;
  std::uint64_t size_bytes = 0;  // the whole file, header included
  // The outcome of deleting generations beyond `keep` after the write. A failure here does not
  // fail the write (the new checkpoint is durable and loadable; old files only take space), so
  // it is returned here for the caller to log, with every file that could not be deleted.
  // Every Write retries the deletion of all surplus generations.
  absl::Status prune_status;
};

// Checks a decoded payload for LoadNewestValid: OK to accept it, an error to skip it and try
// the next older checkpoint. Typically the model parser; to parse only once, let the function
// keep what it parsed (e.g. move the parsed state into a variable it captured by reference).
using PayloadValidator = std::function<absl::Status(std::string_view payload)>;

// The numbered checkpoints of one model in one directory. Each Write makes a new file
//
//     <dir>/ckpt-<generation, 20 digits, zero-padded>.riffle
//
// in the format of file_format.h, written with WriteFileAtomically (temporary file, fsync,
// rename, fsync of the directory), so a file with a checkpoint name is always complete unless
// the disk damaged it afterwards. Generations start at 1 and increase by one per Write: the
// next is one more than the newest on disk, or than the newest this store wrote if that is
// greater (numbers are never reused, even if files are deleted behind the store's back).
// Zero padding makes name order generation order in `ls`.
//
// Loading tolerates damage: LoadNewestValid returns the newest generation that decodes (and
// that the caller's validator accepts), listing the newer ones it skipped. Retention deletes
// by generation count, without reading files: the newest `keep` files stay whatever their
// state (the newest of them was just written and synced).
//
// The directory may hold other files: names that are not checkpoint names are ignored, never
// deleted. Temporary files of WriteFileAtomically for a checkpoint name
// ("ckpt-<20 digits>.riffle.tmp-<pid>-<n>") can only be left by a crash, since a live write
// removes its own on failure; Open() deletes them unless read_only.
//
// Thread-safety: Write may be called from any thread; calls are serialized by an internal
// mutex. List, Load and LoadNewestValid take no lock and may run concurrently with each other
// and with Write: files appear complete by rename and are never modified, so a reader sees a
// whole file or none. A file pruned between listing and reading is NotFound for Load;
// LoadNewestValid lists the directory again when that made it come up empty.
// Across processes: at most one process may open a directory with read_only = false at a time
// (not enforced: there is no lock file); others open it read_only.
//
// Errors name the directory or the file. The Env must outlive the store.
class CheckpointStore {
 public:
  // Validates the options, creates the directory and deletes stale temporary files (unless
  // read_only). InvalidArgument for invalid options or a null env; Env errors otherwise (a
  // stale temporary file that cannot be deleted fails Open: writes would fail there too).
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(Env* env,
                                                               CheckpointStoreOptions options);

  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  // Writes `payload` as the next generation, durably, then deletes generations beyond `keep`
  // (never the new one). On error no temporary file is left and every older generation is
  // intact; the error is WriteFileAtomically's, naming the failed step (e.g. ResourceExhausted
  // for a full disk). There is no new file either, except when only the final fsync of the
  // directory failed: the new file is then complete and loadable but not known to survive a
  // crash, so the write still fails (and nothing is pruned). Also ResourceExhausted if the file
  // would exceed max_file_bytes, FailedPrecondition if read_only, OutOfRange if generation
  // 2^64-1 exists.
  absl::StatusOr<WrittenCheckpoint> Write(std::string_view payload);

  // Every checkpoint file, newest first. Ignores temporary and foreign files; does not read or
  // validate the files.
  absl::StatusOr<std::vector<CheckpointInfo>> List() const;

  // Loads generation `generation`: the file read (at most max_file_bytes) and decoded. NotFound
  // if there is no such file; the errors of Env::ReadFile and DecodeCheckpointFile otherwise.
  absl::StatusOr<LoadedCheckpoint> Load(std::uint64_t generation) const;

  // The newest generation that loads (see Load) and, with `accept`, whose payload `accept`
  // returns OK for; each newer one is reported in `skipped` with its error (a rejection by
  // `accept` keeps accept's code, its message prefixed with the path). NotFound if the
  // directory holds no checkpoint file; DataLoss if none is usable, its message listing every
  // file and its error.
  absl::StatusOr<LoadedCheckpoint> LoadNewestValid() const;
  absl::StatusOr<LoadedCheckpoint> LoadNewestValid(const PayloadValidator& accept) const;

  // <dir>/ckpt-<generation>.riffle, whether or not it exists.
  std::string PathFor(std::uint64_t generation) const;

  const CheckpointStoreOptions& options() const { return options_; }

 private:
  CheckpointStore(Env* env, CheckpointStoreOptions options)
      : env_(env), options_(std::move(options)) {}

  // Generations of the checkpoint files in the directory, newest first.
  absl::StatusOr<std::vector<std::uint64_t>> ListGenerations() const;

  // Deletes every generation in `generations` (newest first) beyond the newest `keep`.
  absl::Status Prune(const std::vector<std::uint64_t>& generations);

  Env* const env_;
  const CheckpointStoreOptions options_;

  std::mutex write_mutex_;
  std::uint64_t last_written_ = 0;  // guarded by write_mutex_
};

// "ckpt-00000000000000000042.riffle" for generation 42.
std::string CheckpointFileName(std::uint64_t generation);

// The generation of a checkpoint file name: exactly "ckpt-", 20 decimal digits and ".riffle",
// generation 1 .. 2^64-1. nullopt for any other name, temporary files included.
std::optional<std::uint64_t> ParseCheckpointFileName(std::string_view name);

}  // namespace riffle::checkpoints

#endif  // RIFFLE_CHECKPOINTS_STORE_H_
