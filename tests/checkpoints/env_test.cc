#include "checkpoints/env.h"

#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "tests/checkpoints/checkpoint_testing.h"

namespace riffle::checkpoints {
namespace {

using testing::DirEntries;
using ::testing::ElementsAre;
using testing::FaultInjectionEnv;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ReadBytes;
using testing::ScopedTempDir;
using ::testing::StartsWith;
using testing::WriteBytes;

constexpr std::uint64_t kNoLimit = ~std::uint64_t{0};

// --- WriteFileAtomically --------------------------------------------------------------------

TEST(WriteFileAtomicallyTest, CreatesTheFile) {
  ScopedTempDir dir;
  const std::string path = dir.File("model.riffle");
  ASSERT_TRUE(WriteFileAtomically(DefaultEnv(), path, "content").ok());
  EXPECT_EQ(ReadBytes(path), "content");
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("model.riffle"));
}

TEST(WriteFileAtomicallyTest, ReplacesExistingContent) {
  ScopedTempDir dir;
  const std::string path = dir.File("model.riffle");
  WriteBytes(path, "a longer old content");
  ASSERT_TRUE(WriteFileAtomically(DefaultEnv(), path, "new").ok());
  EXPECT_EQ(ReadBytes(path), "new");
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("model.riffle"));
}

TEST(WriteFileAtomicallyTest, WritesPiecesInOrder) {
  ScopedTempDir dir;
  const std::string path = dir.File("f");
  const std::string_view pieces[] = {"head", "", "-body"};
  ASSERT_TRUE(WriteFileAtomically(DefaultEnv(), path, pieces).ok());
  EXPECT_EQ(ReadBytes(path), "head-body");
}

TEST(WriteFileAtomicallyTest, WritesSyncsClosesRenamesThenSyncsTheDirectory) {
  ScopedTempDir dir;
  FaultInjectionEnv env;
  const std::string path = dir.File("f");
  ASSERT_TRUE(WriteFileAtomically(&env, path, "data").ok());
  const std::string temp_prefix = absl::StrFormat("%s.tmp-%d-", path, ::getpid());
  const std::vector<std::string> log = env.TakeLog();
  ASSERT_EQ(log.size(), 6u) << ::testing::PrintToString(log);
  EXPECT_THAT(log[0], StartsWith("new " + temp_prefix));
  const std::string temp = log[0].substr(4);
  EXPECT_EQ(log[1], "append " + temp + " 4");
  EXPECT_EQ(log[2], "sync " + temp);
  EXPECT_EQ(log[3], "close " + temp);
  EXPECT_EQ(log[4], "rename " + temp + " " + path);
  EXPECT_EQ(log[5], "syncdir " + dir.path());
}

// One injected fault, the step WriteFileAtomically must name, and the code it must keep.
struct WriteFault {
  const char* name;
  std::function<void(FaultInjectionEnv&)> inject;
  const char* step;
  absl::StatusCode code;
};

class WriteFileAtomicallyFaultTest : public ::testing::TestWithParam<WriteFault> {};

TEST_P(WriteFileAtomicallyFaultTest, LeavesTheOldFileIntactAndNoTemporaryFile) {
  const WriteFault& fault = GetParam();
  ScopedTempDir dir;
  const std::string path = dir.File("model.riffle");
  const std::string fresh_path = dir.File("fresh.riffle");  // did not exist before
  WriteBytes(path, "old content");
  FaultInjectionEnv env;
  fault.inject(env);

  const absl::Status status = WriteFileAtomically(&env, path, "new content, longer than old");
  EXPECT_EQ(status.code(), fault.code) << status;
  EXPECT_THAT(std::string(status.message()),
              StartsWith(absl::StrFormat("atomic write of %s failed at %s: ", path, fault.step)));
  EXPECT_EQ(ReadBytes(path), "old content");

  EXPECT_FALSE(WriteFileAtomically(&env, fresh_path, "new").ok());
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("model.riffle"));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, WriteFileAtomicallyFaultTest,
    ::testing::Values(
        WriteFault{"CreateFails", [](FaultInjectionEnv& env) { env.fail_new_file = true; },
                   "create temporary file", absl::StatusCode::kPermissionDenied},
        WriteFault{"DiskFullAtStart", [](FaultInjectionEnv& env) { env.SetDiskSpace(0); }, "write",
                   absl::StatusCode::kResourceExhausted},
        WriteFault{"DiskFullMidWrite", [](FaultInjectionEnv& env) { env.SetDiskSpace(3); }, "write",
                   absl::StatusCode::kResourceExhausted},
        WriteFault{"SyncFails", [](FaultInjectionEnv& env) { env.fail_sync = true; }, "sync",
                   absl::StatusCode::kDataLoss},
        WriteFault{"CloseFails", [](FaultInjectionEnv& env) { env.fail_close = true; }, "close",
                   absl::StatusCode::kDataLoss},
        WriteFault{"RenameFails", [](FaultInjectionEnv& env) { env.fail_rename = true; },
                   "rename into place", absl::StatusCode::kPermissionDenied}),
    [](const ::testing::TestParamInfo<WriteFault>& info) { return info.param.name; });

TEST(WriteFileAtomicallyTest, DiskFullWritesNothingUnderTheRealName) {
  // The first piece fits, the second does not: the partial temporary file must vanish.
  ScopedTempDir dir;
  FaultInjectionEnv env;
  env.SetDiskSpace(6);
  const std::string path = dir.File("f");
  const std::string_view pieces[] = {"header", "payload"};
  const absl::Status status = WriteFileAtomically(&env, path, pieces);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("No space left on device"));
  EXPECT_THAT(DirEntries(dir.path()), IsEmpty());
}

TEST(WriteFileAtomicallyTest, DirectorySyncFailureIsReportedAfterTheRename) {
  ScopedTempDir dir;
  FaultInjectionEnv env;
  env.fail_sync_dir = true;
  const std::string path = dir.File("f");
  WriteBytes(path, "old");
  const absl::Status status = WriteFileAtomically(&env, path, "new");
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("failed at sync directory"));
  EXPECT_THAT(status.message(), HasSubstr("may not survive a crash"));
  // The rename happened: the file holds all of the new content, and no temporary file is left.
  EXPECT_EQ(ReadBytes(path), "new");
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("f"));
}

TEST(WriteFileAtomicallyTest, ReportsATemporaryFileThatCannotBeRemoved) {
  ScopedTempDir dir;
  FaultInjectionEnv env;
  env.fail_sync = true;
  env.fail_remove = true;
  const absl::Status status = WriteFileAtomically(&env, dir.File("f"), "data");
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);  // the first error's code
  EXPECT_THAT(status.message(), HasSubstr("failed at sync"));
  EXPECT_THAT(status.message(), HasSubstr("the temporary file could not be removed"));
}

TEST(WriteFileAtomicallyTest, MissingDirectoryIsNotFound) {
  ScopedTempDir dir;
  const absl::Status status = WriteFileAtomically(DefaultEnv(), dir.File("no/such/f"), "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));
}

TEST(WriteFileAtomicallyTest, ConcurrentWritersNeverMixContents) {
  // Four threads replace one file 25 times each; a reader must only ever see a whole version.
  ScopedTempDir dir;
  const std::string path = dir.File("f");
  WriteBytes(path, std::string(4096, 'i'));
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&path, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(WriteFileAtomically(DefaultEnv(), path, std::string(4096, 'a' + t)).ok());
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    const std::string content = ReadBytes(path);
    ASSERT_EQ(content.size(), 4096u);
    ASSERT_EQ(content.find_first_not_of(content[0]), std::string::npos);
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("f"));
}

// --- ReadFile -------------------------------------------------------------------------------

TEST(ReadFileTest, ReadsWholeFiles) {
  ScopedTempDir dir;
  WriteBytes(dir.File("empty"), "");
  WriteBytes(dir.File("data"), std::string("a\0b", 3));
  EXPECT_EQ(*DefaultEnv()->ReadFile(dir.File("empty"), 0), "");
  EXPECT_EQ(*DefaultEnv()->ReadFile(dir.File("data"), kNoLimit), std::string("a\0b", 3));
}

TEST(ReadFileTest, RefusesAFileAboveTheLimit) {
  ScopedTempDir dir;
  const std::string path = dir.File("data");
  WriteBytes(path, "12345");
  EXPECT_EQ(*DefaultEnv()->ReadFile(path, 5), "12345");  // the limit is inclusive
  absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(path, 4);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(read.status().message(), path + ": file is 5 bytes, more than the limit of 4 bytes");
}

TEST(ReadFileTest, MissingFileIsNotFound) {
  ScopedTempDir dir;
  const std::string path = dir.File("missing");
  absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(path, kNoLimit);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), path + ": open for reading: No such file or directory");
}

TEST(ReadFileTest, DirectoryIsFailedPrecondition) {
  ScopedTempDir dir;
  absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(dir.path(), kNoLimit);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(read.status().message(), dir.path() + ": is a directory");
}

TEST(ReadFileTest, FifoIsRefusedWithoutBlocking) {
  ScopedTempDir dir;
  const std::string path = dir.File("fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(path, kNoLimit);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(), HasSubstr("not a regular file"));
}

TEST(ReadFileTest, DetectsAFileLongerThanItsStatSize) {
  // procfs files report size 0 but have content: exactly the "grew while reading" case.
  const std::string path = "/proc/self/status";
  if (::access(path.c_str(), R_OK) != 0) GTEST_SKIP() << path << " is not readable here";
  absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(path, kNoLimit);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("grew while being read"));
}

// Reads `path` as ReadFile does, in a child process that first drops root's privileges to
// user and group 65534 (nobody), and returns the status as text. Root bypasses file
// permissions (CAP_DAC_OVERRIDE), so this is the only way to see EACCES as root. Returns
// nullopt if the privileges cannot be dropped (e.g. no CAP_SETUID in this container).
std::optional<std::string> ReadFileAsNobody(const std::string& path) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string result = "cannot drop privileges";
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
      result = DefaultEnv()->ReadFile(path, kNoLimit).status().ToString();
    }
    (void)!::write(fds[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string result;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof(buffer))) > 0;) result.append(buffer, n);
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (pid < 0 || result == "cannot drop privileges") return std::nullopt;
  return result;
}

TEST(ReadFileTest, UnreadableFileIsPermissionDenied) {
  ScopedTempDir dir;
  const std::string path = dir.File("secret");
  WriteBytes(path, "secret");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  if (::geteuid() != 0) {
    absl::StatusOr<std::string> read = DefaultEnv()->ReadFile(path, kNoLimit);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(read.status().message(), path + ": open for reading: Permission denied");
    return;
  }
  // As root: the temporary directory must be searchable by the unprivileged child.
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::optional<std::string> result = ReadFileAsNobody(path);
  if (!result.has_value()) {
    GTEST_SKIP() << "running as root without the right to drop privileges (setuid): "
                    "permissions are not enforced, so EACCES cannot be produced";
  }
  EXPECT_EQ(*result, "PERMISSION_DENIED: " + path + ": open for reading: Permission denied");
}

// --- The other operations of the POSIX Env ---------------------------------------------------

TEST(PosixEnvTest, WritableFileLifecycle) {
  ScopedTempDir dir;
  const std::string path = dir.File("f");
  absl::StatusOr<std::unique_ptr<WritableFile>> file = DefaultEnv()->NewWritableFile(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->Append("ab").ok());
  EXPECT_TRUE((*file)->Append("").ok());
  EXPECT_TRUE((*file)->Append("c").ok());
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_TRUE((*file)->Close().ok());
  EXPECT_TRUE((*file)->Close().ok());  // idempotent
  EXPECT_EQ((*file)->Append("d").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*file)->Sync().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadBytes(path), "abc");

  // NewWritableFile truncates.
  file = DefaultEnv()->NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  file->reset();  // the destructor closes
  EXPECT_EQ(ReadBytes(path), "");
}

TEST(PosixEnvTest, NewWritableFileInAMissingDirectoryIsNotFound) {
  ScopedTempDir dir;
  const std::string path = dir.File("missing/f");
  absl::StatusOr<std::unique_ptr<WritableFile>> file = DefaultEnv()->NewWritableFile(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(file.status().message(), path + ": open for writing: No such file or directory");
}

TEST(PosixEnvTest, ListDirIsSortedWithoutDotEntries) {
  ScopedTempDir dir;
  WriteBytes(dir.File("b"), "");
  WriteBytes(dir.File("a"), "");
  ASSERT_TRUE(DefaultEnv()->CreateDirs(dir.File("c")).ok());
  EXPECT_THAT(*DefaultEnv()->ListDir(dir.path()), ElementsAre("a", "b", "c"));
  absl::StatusOr<std::vector<std::string>> missing = DefaultEnv()->ListDir(dir.File("x"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), StartsWith(dir.File("x") + ": "));
}

TEST(PosixEnvTest, CreateDirsMakesParentsAndIsIdempotent) {
  ScopedTempDir dir;
  const std::string nested = dir.File("a/b//c/");
  ASSERT_TRUE(DefaultEnv()->CreateDirs(nested).ok());
  EXPECT_TRUE(DefaultEnv()->CreateDirs(nested).ok());
  EXPECT_THAT(DirEntries(dir.File("a/b/c")), IsEmpty());
}

TEST(PosixEnvTest, CreateDirsOverAFileIsFailedPrecondition) {
  ScopedTempDir dir;
  WriteBytes(dir.File("file"), "");
  for (const std::string& target : {dir.File("file"), dir.File("file/sub")}) {
    const absl::Status status = DefaultEnv()->CreateDirs(target);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_THAT(std::string(status.message()),
                StartsWith(dir.File("file") + ": exists and is not a directory"));
  }
}

TEST(PosixEnvTest, RenameRemoveAndFileSize) {
  ScopedTempDir dir;
  WriteBytes(dir.File("a"), "12345");
  EXPECT_EQ(*DefaultEnv()->FileSize(dir.File("a")), 5u);
  ASSERT_TRUE(DefaultEnv()->RenameFile(dir.File("a"), dir.File("b")).ok());
  EXPECT_THAT(DirEntries(dir.path()), ElementsAre("b"));

  const absl::Status rename = DefaultEnv()->RenameFile(dir.File("a"), dir.File("c"));
  EXPECT_EQ(rename.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(rename.message(), HasSubstr(dir.File("a")));
  EXPECT_THAT(rename.message(), HasSubstr(dir.File("c")));

  ASSERT_TRUE(DefaultEnv()->RemoveFile(dir.File("b")).ok());
  EXPECT_EQ(DefaultEnv()->RemoveFile(dir.File("b")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DefaultEnv()->FileSize(dir.File("b")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DefaultEnv()->FileSize(dir.path()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(DefaultEnv()->SyncDir(dir.path()).ok());
}

TEST(PosixEnvTest, NowMicrosIsTheWallClock) {
  const std::int64_t now = DefaultEnv()->NowMicros();
  EXPECT_GT(now, std::int64_t{1'600'000'000} * 1'000'000);  // after September 2020
}

TEST(DirNameTest, Cases) {
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(DirName("/a/c"), "/a");
}

}  // namespace
}  // namespace riffle::checkpoints
