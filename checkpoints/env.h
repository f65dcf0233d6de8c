#ifndef RIFFLE_CHECKPOINTS_ENV_H_
#define RIFFLE_CHECKPOINTS_ENV_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The filesystem seam of the checkpoint store (after leveldb's Env): every file operation the
// store performs goes through an Env, so tests can inject a failed fsync, a full disk in the
// middle of a write or a failed rename (see tests/checkpoints/fault_injection_env.h), and the
// clock can be faked.
//
// Errors: every message names the path (both paths for a rename), the operation and, for OS
// errors, the strerror text. The OS error decides the code:
//   NotFound            ENOENT, ENOTDIR: the file or a parent directory does not exist
//   PermissionDenied    EACCES, EPERM
//   FailedPrecondition  EISDIR, EROFS, a directory or other non-regular file where a regular
//                       file was expected
//   AlreadyExists       EEXIST
//   ResourceExhausted   ENOSPC, EDQUOT, EFBIG, EMFILE, ENFILE, ENOMEM; a file above a size limit
//   DataLoss            EIO (the device lost data; for fsync: the write did not reach the disk)
//   Unavailable         any other errno
//
// Thread-safety: an Env may be used from several threads at once; DefaultEnv() is, and every
// implementation must be. A WritableFile belongs to one thread at a time.

namespace riffle::checkpoints {

// A file being written sequentially. Close() it to learn about errors: the destructor closes a
// file that is still open and ignores errors.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends all of `data`; a short write is retried, so OK means every byte was handed to the
  // OS. An error leaves an unspecified prefix of `data` written. FailedPrecondition after
  // Close().
  virtual absl::Status Append(std::string_view data) = 0;

  // Flushes the file's data and metadata to stable storage (fsync). FailedPrecondition after
  // Close().
  virtual absl::Status Sync() = 0;

  // Closes the file; later calls do nothing and return OK.
  virtual absl::Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // Creates `path`, or truncates it if it exists, for writing. Mode 0644 before the umask.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;

  // The whole content of the regular file `path`. Refuses, without reading or allocating, a
  // file larger than `max_bytes` (ResourceExhausted), a directory (FailedPrecondition "is a
  // directory") and any other non-regular file such as a FIFO (FailedPrecondition, without
  // blocking). Allocates exactly the size reported by fstat and reads that many bytes; a file
  // that is shorter or longer than that by the end of the read changed while being read and is
  // reported as DataLoss.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path,
                                               std::uint64_t max_bytes) = 0;

  // rename(2): atomically replaces `to` if it exists. Both must be on the same filesystem.
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;

  // fsyncs the directory `dir`, making renames and new entries in it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;

  // Names (not paths) of the entries of `dir`, without "." and "..", sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;

  virtual absl::Status RemoveFile(const std::string& path) = 0;

  // Creates `dir` and its missing parents (mode 0755 before the umask); OK if it already is a
  // directory, FailedPrecondition if it, or a parent, exists as something else,
  // InvalidArgument for an empty path.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;

  virtual absl::StatusOr<std::uint64_t> FileSize(const std::string& path) = 0;

  // Microseconds since the Unix epoch (wall clock).
  virtual std::int64_t NowMicros() = 0;
};

// The POSIX filesystem and the system clock. Process-lifetime singleton, never null.
Env* DefaultEnv();

// An Env that forwards every call to another one; subclass it to override a few operations
// (fault injection, counting, a fake clock). `target` is not owned and must outlive it.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}

  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  absl::StatusOr<std::string> ReadFile(const std::string& path, std::uint64_t max_bytes) override {
    return target_->ReadFile(path, max_bytes);
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    return target_->ListDir(dir);
  }
  absl::Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  absl::Status CreateDirs(const std::string& dir) override { return target_->CreateDirs(dir); }
  absl::StatusOr<std::uint64_t> FileSize(const std::string& path) override {
    return target_->FileSize(path);
  }
  std::int64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* target_;
};

// WriteFileAtomically's temporary files are named path + kTempFileInfix + "<pid>-<counter>".
inline constexpr std::string_view kTempFileInfix = ".tmp-";

// Replaces the content of `path` with `data` so that, whatever happens (error, crash, power
// loss), `path` afterwards holds either its previous content or all of `data`, never a mix:
//
//   1. write path + ".tmp-<pid>-<counter>" in the same directory (the counter is per process,
//      so concurrent calls never share a temporary file);
//   2. Append, Sync (fsync), Close;
//   3. RenameFile over `path`;
//   4. SyncDir on the directory, so the rename itself survives a crash.
//
// On a failure in steps 1-3 the temporary file is removed and `path` is untouched. A failure in
// step 4 happens after the rename: `path` already holds `data`, but the replacement may not
// survive a crash; it is still reported as an error (the checkpoint is not known to be
// durable). The error keeps the failing operation's code; its message names the step and
// `path`, then the Env's message, and notes it if the temporary file could not be removed.
absl::Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

// The same for content given in pieces, written one after the other (e.g. a header and a large
// payload, without copying them into one buffer).
absl::Status WriteFileAtomically(Env* env, const std::string& path,
                                 std::span<const std::string_view> pieces);

// The directory part of `path`: "a/b" for "a/b/c", "." for "c", "/" for "/c".
std::string DirName(const std::string& path);

}  // namespace riffle::checkpoints

#endif  // RIFFLE_CHECKPOINTS_ENV_H_
