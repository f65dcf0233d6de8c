#include "checkpoints/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "features/os_error.h"

namespace riffle::checkpoints {
namespace {

// One write(2) is capped below Linux's limit of 0x7ffff000 bytes; Append loops anyway.
constexpr std::size_t kMaxIoChunk = std::size_t{1} << 30;

// Closes a descriptor on every return path of a function that only reads from it (a close
// error after a successful read cannot lose data).
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { ::close(fd_); }

 private:
  int fd_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(std::string_view data) override {
    if (fd_ < 0) return ClosedError("append");
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), std::min(data.size(), kMaxIoChunk));
      if (n < 0) {
        if (errno == EINTR) continue;
        return features::ErrnoError(errno, path_, "write");
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fd_ < 0) return ClosedError("sync");
    // fsync rather than fdatasync: checkpoints are rare and large, the difference is noise, and
    // fsync is the one whose guarantees nobody has to look up.
    while (::fsync(fd_) != 0) {
      if (errno != EINTR) return features::ErrnoError(errno, path_, "fsync");
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    const int fd = std::exchange(fd_, -1);
    // Not retried on EINTR: Linux releases the descriptor whatever close returns.
    if (::close(fd) != 0) return features::ErrnoError(errno, path_, "close");
    return absl::OkStatus();
  }

 private:
  absl::Status ClosedError(std::string_view op) const {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: %s: the file is already closed", path_, op));
  }

  int fd_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return features::ErrnoError(errno, path, "open for writing");
    return std::make_unique<PosixWritableFile>(fd, path);
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path, std::uint64_t max_bytes) override {
    // O_NONBLOCK so that opening a FIFO does not wait for a writer; it changes nothing for the
    // regular files that get past the fstat check below.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return features::ErrnoError(errno, path, "open for reading");
    FdCloser closer(fd);

    struct stat st;
    if (::fstat(fd, &st) != 0) return features::ErrnoError(errno, path, "fstat");
    if (S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrFormat("%s: is a directory", path));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: not a regular file (a device, FIFO or socket)", path));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "%s: file is %d bytes, more than the limit of %d bytes", path, size, max_bytes));
    }

    std::string data(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::read(fd, data.data() + done, std::min(data.size() - done, kMaxIoChunk));
      if (n < 0) {
        if (errno == EINTR) continue;
        return features::ErrnoError(errno, path, "read");
      }
      if (n == 0) {
        return absl::DataLossError(absl::StrFormat(
            "%s: file shrank while being read: fstat said %d bytes, read %d", path, size, done));
      }
      done += static_cast<std::size_t>(n);
    }
    // One more byte means the file grew after fstat. Checkpoints are replaced by rename, never
    // modified in place, so the bytes read cannot be trusted as a whole.
    char extra;
    ssize_t n;
    do {
      n = ::read(fd, &extra, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return features::ErrnoError(errno, path, "read");
    if (n > 0) {
      return absl::DataLossError(absl::StrFormat(
          "%s: file grew while being read: fstat said %d bytes, there are more", path, size));
    }
    return data;
  }

  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return features::ErrnoError(errno, from, absl::StrFormat("rename to %s", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return features::ErrnoError(errno, dir, "open directory");
    FdCloser closer(fd);
    while (::fsync(fd) != 0) {
      if (errno != EINTR) return features::ErrnoError(errno, dir, "fsync directory");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* stream = ::opendir(dir.c_str());
    if (stream == nullptr) return features::ErrnoError(errno, dir, "open directory");
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(stream);
      if (entry == nullptr) break;
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int error = errno;
    ::closedir(stream);
    if (error != 0) return features::ErrnoError(error, dir, "read directory");
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return features::ErrnoError(errno, path, "remove");
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return absl::InvalidArgumentError("CreateDirs: empty directory path");
    if (IsDirectory(dir)) return absl::OkStatus();
    // mkdir each prefix ending before a '/' (and the whole path), parents first.
    for (std::size_t end = 1; end <= dir.size(); ++end) {
      if (end < dir.size() && dir[end] != '/') continue;
      const std::string prefix = dir.substr(0, end);
      if (prefix.back() == '/') continue;  // "a//b"
      if (::mkdir(prefix.c_str(), 0755) == 0) continue;
      const int error = errno;
      if (error != EEXIST) return features::ErrnoError(error, prefix, "create directory");
      if (!IsDirectory(prefix)) {
        return absl::FailedPreconditionError(
            absl::StrFormat("%s: exists and is not a directory (creating %s)", prefix, dir));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return features::ErrnoError(errno, path, "stat");
    if (S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrFormat("%s: is a directory", path));
    }
    return static_cast<std::uint64_t>(st.st_size);
  }

  std::int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  static bool IsDirectory(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
};

// Steps 2 and 3 of WriteFileAtomically. On failure *step names the step that failed.
absl::Status WriteSyncCloseRename(Env* env, WritableFile& file,
                                  std::span<const std::string_view> pieces,
                                  const std::string& temp_path, const std::string& path,
                                  std::string_view* step) {
  *step = "write";
  for (const std::string_view piece : pieces) {
    if (absl::Status status = file.Append(piece); !status.ok()) return status;
  }
  *step = "sync";
  if (absl::Status status = file.Sync(); !status.ok()) return status;
  *step = "close";
  if (absl::Status status = file.Close(); !status.ok()) return status;
  *step = "rename into place";
  return env->RenameFile(temp_path, path);
}

}  // namespace

Env* DefaultEnv() {
  // Stateless, and never destroyed, so it is usable during static destruction too.
  static Env* const kEnv = new PosixEnv;
  return kEnv;
}

std::string DirName(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data) {
  return WriteFileAtomically(env, path, std::span<const std::string_view>(&data, 1));
}

absl::Status WriteFileAtomically(Env* env, const std::string& path,
                                 std::span<const std::string_view> pieces) {
  // Process-wide, not per Env or per store: two writers in one process (threads, or two stores)
  // must never share a temporary file. The pid separates processes.
  static std::atomic<std::uint64_t> next_temp_id{0};
  const std::string temp_path =
      absl::StrFormat("%s%s%d-%d", path, kTempFileInfix, ::getpid(), next_temp_id.fetch_add(1));

  const auto failed = [&path](std::string_view step, const absl::Status& status) {
    return absl::Status(status.code(), absl::StrFormat("atomic write of %s failed at %s: %s", path,
                                                       step, status.message()));
  };

  absl::StatusOr<std::unique_ptr<WritableFile>> file = env->NewWritableFile(temp_path);
  if (!file.ok()) return failed("create temporary file", file.status());

  std::string_view step;
  const absl::Status status = WriteSyncCloseRename(env, **file, pieces, temp_path, path, &step);
  if (!status.ok()) {
    file->reset();  // closes the descriptor if still open, before the unlink
    absl::Status result = failed(step, status);
    if (absl::Status removed = env->RemoveFile(temp_path); !removed.ok()) {
      result = absl::Status(result.code(),
                            absl::StrFormat("%s; the temporary file could not be removed: %s",
                                            result.message(), removed.message()));
    }
    return result;
  }

  if (absl::Status synced = env->SyncDir(DirName(path)); !synced.ok()) {
    return failed("sync directory (the new content is in place but may not survive a crash)",
                  synced);
  }
  return absl::OkStatus();
}

}  // namespace riffle::checkpoints
