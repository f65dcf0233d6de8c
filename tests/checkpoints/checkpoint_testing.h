#ifndef RIFFLE_TESTS_CHECKPOINTS_CHECKPOINT_TESTING_H_
#define RIFFLE_TESTS_CHECKPOINTS_CHECKPOINT_TESTING_H_

// Helpers shared by the checkpoints tests: a per-test temporary directory, whole-file helpers
// that bypass the Env under test, and FaultInjectionEnv.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "checkpoints/env.h"

namespace riffle::checkpoints::testing {

// A fresh directory under ::testing::TempDir(), removed with its content on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "riffle_checkpoints.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << pattern << " failed";
    }
    path_ = pattern;
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Whole-file helpers that do not go through an Env, to set up and check the disk state
// independently of the code under test.
inline void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out) << "cannot write " << path;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Sorted names in `dir`.
inline std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Wraps a real Env and fails chosen operations on demand, like a disk that is full or a
// device that reports EIO on fsync. Faults are switched by the public flags and apply to every
// later call until switched off. Every call is also recorded in a log ("sync <path>", ...), so
// tests can check the order of operations. Thread-safe.
class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target = DefaultEnv()) : EnvWrapper(target) {}

  std::atomic<bool> fail_new_file{false};  // NewWritableFile: PermissionDenied (EACCES)
  std::atomic<bool> fail_sync{false};      // WritableFile::Sync: DataLoss (EIO)
  std::atomic<bool> fail_close{false};     // WritableFile::Close: DataLoss (EIO), fd closed
  std::atomic<bool> fail_rename{false};    // RenameFile: PermissionDenied (EACCES)
  std::atomic<bool> fail_sync_dir{false};  // SyncDir: DataLoss (EIO)
  std::atomic<bool> fail_remove{false};    // RemoveFile: PermissionDenied (EACCES)
  std::atomic<bool> fail_list_dir{false};  // ListDir: PermissionDenied (EACCES)

  // Bytes that Appends (all files together) may still write before the disk is full. An
  // Append that does not fit writes the part that fits, as write(2) would, then fails with
  // ResourceExhausted (ENOSPC).
  void SetDiskSpace(std::uint64_t bytes) { disk_space_ = bytes; }
  void SetUnlimitedDiskSpace() { disk_space_ = kUnlimited; }

  std::vector<std::string> TakeLog() {
    std::lock_guard<std::mutex> lock(log_mutex_);
    return std::exchange(log_, {});
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    Log("new " + path);
    if (fail_new_file) return Injected(absl::StatusCode::kPermissionDenied, path, "open");
    absl::StatusOr<std::unique_ptr<WritableFile>> file = target()->NewWritableFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new File(this, path, *std::move(file)));
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    Log("rename " + from + " " + to);
    if (fail_rename) return Injected(absl::StatusCode::kPermissionDenied, from, "rename");
    return target()->RenameFile(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override {
    Log("syncdir " + dir);
    if (fail_sync_dir) return Injected(absl::StatusCode::kDataLoss, dir, "fsync directory");
    return target()->SyncDir(dir);
  }
  absl::Status RemoveFile(const std::string& path) override {
    Log("remove " + path);
    if (fail_remove) return Injected(absl::StatusCode::kPermissionDenied, path, "remove");
    return target()->RemoveFile(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    if (fail_list_dir) return Injected(absl::StatusCode::kPermissionDenied, dir, "open directory");
    return target()->ListDir(dir);
  }

 private:
  static constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

  class File : public WritableFile {
   public:
    File(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> file)
        : env_(env), path_(std::move(path)), file_(std::move(file)) {}

    absl::Status Append(std::string_view data) override {
      env_->Log(absl::StrFormat("append %s %d", path_, data.size()));
      // Reserve space atomically, so concurrent writers cannot overdraw it.
      std::uint64_t space = env_->disk_space_.load();
      std::uint64_t fits;
      do {
        fits = std::min<std::uint64_t>(space, data.size());
      } while (space != kUnlimited &&
               !env_->disk_space_.compare_exchange_weak(space, space - fits));
      if (absl::Status status = file_->Append(data.substr(0, fits)); !status.ok()) return status;
      if (fits < data.size()) {
        return Injected(absl::StatusCode::kResourceExhausted, path_,
                        "write: No space left on device");
      }
      return absl::OkStatus();
    }
    absl::Status Sync() override {
      env_->Log("sync " + path_);
      if (env_->fail_sync) return Injected(absl::StatusCode::kDataLoss, path_, "fsync");
      return file_->Sync();
    }
    absl::Status Close() override {
      env_->Log("close " + path_);
      absl::Status status = file_->Close();  // the descriptor is released either way
      if (env_->fail_close) return Injected(absl::StatusCode::kDataLoss, path_, "close");
      return status;
    }

   private:
    FaultInjectionEnv* env_;
    std::string path_;
    std::unique_ptr<WritableFile> file_;
  };

  static absl::Status Injected(absl::StatusCode code, std::string_view path, std::string_view op) {
    return absl::Status(code, absl::StrFormat("%s: %s: injected fault", path, op));
  }

  void Log(std::string entry) {
    std::lock_guard<std::mutex> lock(log_mutex_);
    log_.push_back(std::move(entry));
  }

  std::atomic<std::uint64_t> disk_space_{kUnlimited};
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

}  // namespace riffle::checkpoints::testing

#endif  // RIFFLE_TESTS_CHECKPOINTS_CHECKPOINT_TESTING_H_
