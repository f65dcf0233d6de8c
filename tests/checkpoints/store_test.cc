#include "checkpoints/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "checkpoints/file_format.h"
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

std::string Payload(std::uint64_t generation) {
  return absl::StrFormat("payload of generation %d", generation);
}

class CheckpointStoreTest : public ::testing::Test {
 protected:
  // A store over dir_/model (created by Open), through env_.
  std::unique_ptr<CheckpointStore> OpenStore(std::size_t keep = 5, bool read_only = false) {
    CheckpointStoreOptions options;
    options.dir = model_dir();
    options.keep = keep;
    options.read_only = read_only;
    absl::StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(&env_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Writes Payload(n) for the generations it is expected to get.
  void WriteGenerations(CheckpointStore& store, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t generation = first; generation <= last; ++generation) {
      absl::StatusOr<WrittenCheckpoint> written = store.Write(Payload(generation));
      ASSERT_TRUE(written.ok()) << written.status();
      ASSERT_EQ(written->generation, generation);
      ASSERT_TRUE(written->prune_status.ok()) << written->prune_status;
    }
  }

  std::string model_dir() const { return dir_.File("model"); }
  std::string CheckpointPath(std::uint64_t generation) const {
    return model_dir() + "/" + CheckpointFileName(generation);
  }

  ScopedTempDir dir_;
  FaultInjectionEnv env_;
};

std::vector<std::uint64_t> Generations(const std::vector<CheckpointInfo>& infos) {
  std::vector<std::uint64_t> generations;
  for (const CheckpointInfo& info : infos) generations.push_back(info.generation);
  return generations;
}

// --- Options, names, Open ---------------------------------------------------------------------

TEST(CheckpointStoreOptionsTest, Validate) {
  CheckpointStoreOptions options;
  options.dir = "/some/dir";
  EXPECT_TRUE(options.Validate().ok());

  CheckpointStoreOptions bad = options;
  bad.dir = "";
  EXPECT_THAT(bad.Validate().message(), HasSubstr("CheckpointStoreOptions.dir"));
  bad = options;
  bad.keep = 0;
  EXPECT_EQ(bad.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.Validate().message(),
              HasSubstr("CheckpointStoreOptions.keep must be at least 1, got 0"));
  bad = options;
  bad.max_file_bytes = kHeaderSize - 1;
  EXPECT_THAT(bad.Validate().message(),
              HasSubstr("CheckpointStoreOptions.max_file_bytes must be at least 32 (the file "
                        "header), got 31"));
  bad.max_file_bytes = kHeaderSize;
  EXPECT_TRUE(bad.Validate().ok());
}

TEST(CheckpointFileNameTest, RoundTrips) {
  EXPECT_EQ(CheckpointFileName(42), "ckpt-00000000000000000042.riffle");
  for (const std::uint64_t generation :
       {std::uint64_t{1}, std::uint64_t{42}, std::numeric_limits<std::uint64_t>::max()}) {
    EXPECT_EQ(ParseCheckpointFileName(CheckpointFileName(generation)), generation);
  }
}

TEST(CheckpointFileNameTest, RejectsOtherNames) {
  for (const std::string_view name : {
           "ckpt-1.riffle",                             // not padded
           "ckpt-00000000000000000000.riffle",          // generation 0
           "ckpt-99999999999999999999.riffle",          // above 2^64 - 1
           "ckpt-0000000000000000004x.riffle",          // not a digit
           "ckpt-+0000000000000000042.riffle",          // sign
           "ckpt-00000000000000000042.riffle.tmp-1-0",  // a temporary file
           "ckpt-00000000000000000042.riffle~",         // an editor's backup
           "CKPT-00000000000000000042.riffle",
           "",
       }) {
    EXPECT_EQ(ParseCheckpointFileName(name), std::nullopt) << name;
  }
}

TEST_F(CheckpointStoreTest, OpenCreatesTheDirectoryWithParents) {
  CheckpointStoreOptions options;
  options.dir = dir_.File("a/b/c/");
  absl::StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(&env_, options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT(DirEntries(dir_.File("a/b/c")), IsEmpty());
  // The trailing slash is dropped from paths.
  EXPECT_EQ((*store)->PathFor(7), dir_.File("a/b/c/ckpt-00000000000000000007.riffle"));
}

TEST_F(CheckpointStoreTest, OpenRejectsBadArguments) {
  CheckpointStoreOptions options;
  options.dir = model_dir();
  EXPECT_EQ(CheckpointStore::Open(nullptr, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.keep = 0;
  EXPECT_EQ(CheckpointStore::Open(&env_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A file where the directory should be.
  WriteBytes(dir_.File("file"), "");
  options.keep = 1;
  options.dir = dir_.File("file");
  EXPECT_EQ(CheckpointStore::Open(&env_, options).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CheckpointStoreTest, OpenRemovesStaleTemporaryFilesOnly) {
  ASSERT_TRUE(DefaultEnv()->CreateDirs(model_dir()).ok());
  const std::string stale = CheckpointPath(5) + ".tmp-12345-0";
  WriteBytes(stale, EncodeCheckpointFile("complete, but never renamed"));
  WriteBytes(model_dir() + "/notes.tmp-1-0", "foreign");
  WriteBytes(model_dir() + "/README", "foreign");
  std::unique_ptr<CheckpointStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(DirEntries(model_dir()), ElementsAre("README", "notes.tmp-1-0"));
  // A temporary file is never a generation: numbering starts at 1.
  WriteGenerations(*store, 1, 1);
}

TEST_F(CheckpointStoreTest, OpenFailsIfAStaleTemporaryFileCannotBeRemoved) {
  ASSERT_TRUE(DefaultEnv()->CreateDirs(model_dir()).ok());
  WriteBytes(CheckpointPath(5) + ".tmp-12345-0", "");
  env_.fail_remove = true;
  CheckpointStoreOptions options;
  options.dir = model_dir();
  const absl::Status status = CheckpointStore::Open(&env_, options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("stale temporary checkpoint file"));
}

// --- Write, List, retention -------------------------------------------------------------------

TEST_F(CheckpointStoreTest, GenerationsIncreaseFromOne) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  absl::StatusOr<WrittenCheckpoint> written = store->Write("first");
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->generation, 1u);
  EXPECT_EQ(written->path, model_dir() + "/ckpt-00000000000000000001.riffle");
  EXPECT_EQ(written->size_bytes, kHeaderSize + 5);
  EXPECT_EQ(ReadBytes(written->path), EncodeCheckpointFile("first"));
  WriteGenerations(*store, 2, 3);

  absl::StatusOr<std::vector<CheckpointInfo>> list = store->List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ(Generations(*list), (std::vector<std::uint64_t>{3, 2, 1}));
  EXPECT_EQ((*list)[0].path, CheckpointPath(3));
  EXPECT_EQ((*list)[0].size_bytes, kHeaderSize + Payload(3).size());
}

TEST_F(CheckpointStoreTest, NumberingContinuesFromTheNewestFileOnDisk) {
  ASSERT_TRUE(DefaultEnv()->CreateDirs(model_dir()).ok());
  WriteBytes(CheckpointPath(41), EncodeCheckpointFile("written by an earlier run"));
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 42, 43);
  // A damaged newest file still counts: its number is never reused.
  WriteBytes(CheckpointPath(44), "garbage");
  WriteGenerations(*store, 45, 45);
}

TEST_F(CheckpointStoreTest, NumbersAreNotReusedWhenFilesAreDeletedBehindTheStore) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 2);
  std::filesystem::remove(CheckpointPath(1));
  std::filesystem::remove(CheckpointPath(2));
  WriteGenerations(*store, 3, 3);
}

TEST_F(CheckpointStoreTest, KeepsTheNewestGenerations) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/3);
  WriteGenerations(*store, 1, 10);
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{10, 9, 8}));
  EXPECT_THAT(DirEntries(model_dir()),
              ElementsAre(CheckpointFileName(8), CheckpointFileName(9), CheckpointFileName(10)));
}

TEST_F(CheckpointStoreTest, KeepOneNeverDeletesTheNewCheckpoint) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/1);
  WriteGenerations(*store, 1, 3);
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(store->LoadNewestValid()->payload, Payload(3));
}

TEST_F(CheckpointStoreTest, PruneFailureIsReportedButDoesNotFailTheWrite) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/1);
  WriteGenerations(*store, 1, 1);
  env_.fail_remove = true;
  absl::StatusOr<WrittenCheckpoint> written = store->Write(Payload(2));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->generation, 2u);
  EXPECT_EQ(written->prune_status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(written->prune_status.message(),
              HasSubstr("could not delete 1 old checkpoint(s) beyond keep = 1"));
  EXPECT_THAT(written->prune_status.message(), HasSubstr(CheckpointPath(1)));

  // The next write retries: both surplus generations go.
  env_.fail_remove = false;
  WriteGenerations(*store, 3, 3);
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{3}));
}

TEST_F(CheckpointStoreTest, ListIgnoresForeignAndTemporaryFiles) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 2);
  for (const char* name :
       {"notes.txt", "ckpt-1.riffle", "ckpt-00000000000000000000.riffle",
        "ckpt-00000000000000000007.riffle.tmp-99-0", "ckpt-00000000000000000007.riffle.bak"}) {
    WriteBytes(model_dir() + "/" + name, "x");
  }
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{2, 1}));
  // Foreign files are never deleted by retention either.
  WriteGenerations(*store, 3, 8);
  EXPECT_EQ(DirEntries(model_dir()).size(), 5u + 5u);
}

TEST_F(CheckpointStoreTest, WriteRefusesAFileAboveMaxFileBytes) {
  CheckpointStoreOptions options;
  options.dir = model_dir();
  options.max_file_bytes = 40;
  std::unique_ptr<CheckpointStore> store = *CheckpointStore::Open(&env_, options);
  EXPECT_TRUE(store->Write("8 bytes!").ok());  // exactly 40
  const absl::Status status = store->Write("9 bytes!!").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("a checkpoint of 41 bytes"));
  EXPECT_THAT(status.message(), HasSubstr("max_file_bytes = 40"));
  EXPECT_EQ(DirEntries(model_dir()).size(), 1u);
}

TEST_F(CheckpointStoreTest, WriteFailsIfTheDirectoryCannotBeListed) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  env_.fail_list_dir = true;
  EXPECT_EQ(store->Write("x").status().code(), absl::StatusCode::kPermissionDenied);
}

// One failure of the underlying filesystem during Write.
struct StoreWriteFault {
  const char* name;
  std::function<void(FaultInjectionEnv&)> inject;
  absl::StatusCode code;
};

class CheckpointStoreWriteFaultTest : public CheckpointStoreTest,
                                      public ::testing::WithParamInterface<StoreWriteFault> {};

TEST_P(CheckpointStoreWriteFaultTest, PreviousNewestStaysLoadable) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/2);
  WriteGenerations(*store, 1, 2);
  GetParam().inject(env_);

  // A payload large enough that the disk-full fault hits in the middle of it.
  const absl::Status status = store->Write(std::string(100000, 'p')).status();
  EXPECT_EQ(status.code(), GetParam().code) << status;
  EXPECT_THAT(status.message(), HasSubstr(CheckpointPath(3)));

  // No new file, no temporary file, nothing pruned; generation 2 loads as before.
  EXPECT_THAT(DirEntries(model_dir()), ElementsAre(CheckpointFileName(1), CheckpointFileName(2)));
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 2u);
  EXPECT_EQ(loaded->payload, Payload(2));
  EXPECT_THAT(loaded->skipped, IsEmpty());

  // Once the fault is gone, writing resumes at the generation that failed.
  env_.fail_sync = env_.fail_close = env_.fail_rename = env_.fail_new_file = false;
  env_.SetUnlimitedDiskSpace();
  WriteGenerations(*store, 3, 3);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, CheckpointStoreWriteFaultTest,
    ::testing::Values(
        StoreWriteFault{"DiskFull", [](FaultInjectionEnv& env) { env.SetDiskSpace(50000); },
                        absl::StatusCode::kResourceExhausted},
        StoreWriteFault{"SyncFails", [](FaultInjectionEnv& env) { env.fail_sync = true; },
                        absl::StatusCode::kDataLoss},
        StoreWriteFault{"CloseFails", [](FaultInjectionEnv& env) { env.fail_close = true; },
                        absl::StatusCode::kDataLoss},
        StoreWriteFault{"RenameFails", [](FaultInjectionEnv& env) { env.fail_rename = true; },
                        absl::StatusCode::kPermissionDenied},
        StoreWriteFault{"CreateFails", [](FaultInjectionEnv& env) { env.fail_new_file = true; },
                        absl::StatusCode::kPermissionDenied}),
    [](const ::testing::TestParamInfo<StoreWriteFault>& info) { return info.param.name; });

TEST_F(CheckpointStoreTest, DirectorySyncFailureFailsTheWriteButLeavesAWholeFile) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/1);
  WriteGenerations(*store, 1, 1);
  env_.fail_sync_dir = true;
  const absl::Status status = store->Write(Payload(2)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("sync directory"));
  // Renamed already: complete and loadable, but not durable, so nothing was pruned.
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{2, 1}));
  EXPECT_EQ(store->LoadNewestValid()->payload, Payload(2));

  env_.fail_sync_dir = false;
  WriteGenerations(*store, 3, 3);
  EXPECT_EQ(Generations(*store->List()), (std::vector<std::uint64_t>{3}));
}

// --- Load, LoadNewestValid --------------------------------------------------------------------

TEST_F(CheckpointStoreTest, LoadReadsOneGeneration) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 3);
  absl::StatusOr<LoadedCheckpoint> loaded = store->Load(2);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 2u);
  EXPECT_EQ(loaded->path, CheckpointPath(2));
  EXPECT_EQ(loaded->payload, Payload(2));
  EXPECT_THAT(loaded->skipped, IsEmpty());

  EXPECT_EQ(store->Load(9).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(store->Load(9).status().message()), StartsWith(CheckpointPath(9)));
  EXPECT_EQ(store->Load(0).status().code(), absl::StatusCode::kNotFound);

  WriteBytes(CheckpointPath(3), "garbage");
  EXPECT_EQ(store->Load(3).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointStoreTest, LoadNewestValidReturnsTheNewest) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 3);
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 3u);
  EXPECT_EQ(loaded->payload, Payload(3));
  EXPECT_THAT(loaded->skipped, IsEmpty());
}

TEST_F(CheckpointStoreTest, LoadNewestValidFallsBackOverDamagedFiles) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 4);
  // Generation 4: one flipped payload bit; 3: cut short; 2: empty.
  std::string damaged = ReadBytes(CheckpointPath(4));
  damaged.back() ^= 0x01;
  WriteBytes(CheckpointPath(4), damaged);
  WriteBytes(CheckpointPath(3), ReadBytes(CheckpointPath(3)).substr(0, 40));
  WriteBytes(CheckpointPath(2), "");

  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 1u);
  EXPECT_EQ(loaded->payload, Payload(1));
  ASSERT_EQ(loaded->skipped.size(), 3u);
  EXPECT_EQ(loaded->skipped[0].generation, 4u);
  EXPECT_EQ(loaded->skipped[0].path, CheckpointPath(4));
  EXPECT_EQ(loaded->skipped[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded->skipped[0].status.message(), HasSubstr("checksum mismatch"));
  EXPECT_EQ(loaded->skipped[1].generation, 3u);
  EXPECT_THAT(loaded->skipped[1].status.message(), HasSubstr("truncated"));
  EXPECT_EQ(loaded->skipped[2].generation, 2u);
  EXPECT_EQ(loaded->skipped[2].status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointStoreTest, LoadNewestValidSkipsFilesAboveMaxFileBytes) {
  std::unique_ptr<CheckpointStore> writer = OpenStore();
  WriteGenerations(*writer, 1, 1);
  ASSERT_TRUE(writer->Write(std::string(1000, 'x')).ok());
  CheckpointStoreOptions options;
  options.dir = model_dir();
  options.max_file_bytes = 100;
  std::unique_ptr<CheckpointStore> reader = *CheckpointStore::Open(&env_, options);
  absl::StatusOr<LoadedCheckpoint> loaded = reader->LoadNewestValid();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 1u);
  ASSERT_EQ(loaded->skipped.size(), 1u);
  EXPECT_EQ(loaded->skipped[0].status.code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(CheckpointStoreTest, AllDamagedIsDataLossListingEachFile) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 2);
  WriteBytes(CheckpointPath(1), "RIFF");
  WriteBytes(CheckpointPath(2), EncodeCheckpointFile("x") + "trailing");
  const absl::Status status = store->LoadNewestValid().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              StartsWith(model_dir() + ": none of the 2 checkpoint(s) is usable:"));
  EXPECT_THAT(status.message(), HasSubstr(CheckpointPath(2) + ": 8 trailing bytes"));
  EXPECT_THAT(status.message(), HasSubstr(CheckpointPath(1) + ": truncated"));
}

TEST_F(CheckpointStoreTest, EmptyDirectoryIsNotFound) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  absl::Status status = store->LoadNewestValid().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), StartsWith(model_dir() + ": no checkpoint"));
  // Foreign and temporary files do not count.
  WriteBytes(model_dir() + "/README", "x");
  WriteBytes(CheckpointPath(1) + ".tmp-1-1", EncodeCheckpointFile("x"));
  EXPECT_EQ(store->LoadNewestValid().status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(*store->List(), IsEmpty());
}

TEST_F(CheckpointStoreTest, AcceptOverloadSkipsRejectedPayloads) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 3);
  std::vector<std::string> seen;
  const PayloadValidator accept = [&seen](std::string_view payload) {
    seen.emplace_back(payload);
    if (payload == Payload(3)) return absl::InvalidArgumentError("unknown learner kind 'gbdt'");
    return absl::OkStatus();
  };
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid(accept);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->generation, 2u);
  EXPECT_EQ(loaded->payload, Payload(2));
  EXPECT_THAT(seen, ElementsAre(Payload(3), Payload(2)));  // newest first, stops at accepted
  ASSERT_EQ(loaded->skipped.size(), 1u);
  EXPECT_EQ(loaded->skipped[0].generation, 3u);
  EXPECT_EQ(loaded->skipped[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loaded->skipped[0].status.message(),
            CheckpointPath(3) + ": unknown learner kind 'gbdt'");
}

TEST_F(CheckpointStoreTest, AcceptOverloadRejectingAllIsDataLoss) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 2);
  const absl::Status status = store
                                  ->LoadNewestValid([](std::string_view) {
                                    return absl::DataLossError("malformed model payload");
                                  })
                                  .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr(CheckpointPath(2) + ": malformed model payload"));
  EXPECT_THAT(status.message(), HasSubstr(CheckpointPath(1) + ": malformed model payload"));
}

TEST_F(CheckpointStoreTest, AcceptIsNotCalledForDamagedFiles) {
  std::unique_ptr<CheckpointStore> store = OpenStore();
  WriteGenerations(*store, 1, 2);
  WriteBytes(CheckpointPath(2), "garbage");
  int calls = 0;
  absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid([&calls](std::string_view) {
    ++calls;
    return absl::OkStatus();
  });
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->generation, 1u);
  EXPECT_EQ(calls, 1);
}

// --- Read-only stores -------------------------------------------------------------------------

TEST_F(CheckpointStoreTest, ReadOnlyOpenChangesNothing) {
  CheckpointStoreOptions options;
  options.dir = model_dir();
  options.read_only = true;
  EXPECT_EQ(CheckpointStore::Open(&env_, options).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(DirEntries(dir_.path()), IsEmpty());

  std::unique_ptr<CheckpointStore> writer = OpenStore();
  WriteGenerations(*writer, 1, 1);
  // A live write of another process, not to be touched by a reader.
  const std::string in_progress = CheckpointPath(2) + ".tmp-99-0";
  WriteBytes(in_progress, "partial");
  std::unique_ptr<CheckpointStore> reader = OpenStore(/*keep=*/5, /*read_only=*/true);
  EXPECT_EQ(ReadBytes(in_progress), "partial");
  EXPECT_EQ(reader->LoadNewestValid()->payload, Payload(1));
  const absl::Status status = reader->Write("x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("read-only"));
}

// --- Concurrency --------------------------------------------------------------------------------

TEST_F(CheckpointStoreTest, ReadersSeeWholeCheckpointsWhileAWriterPrunes) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/2);
  WriteGenerations(*store, 1, 1);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t generation = 2; generation <= 150; ++generation) {
      absl::StatusOr<WrittenCheckpoint> written = store->Write(Payload(generation));
      EXPECT_TRUE(written.ok()) << written.status();
    }
    done = true;
  });
  int loads = 0;
  while (!done || loads == 0) {
    absl::StatusOr<LoadedCheckpoint> loaded = store->LoadNewestValid();
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_EQ(loaded->payload, Payload(loaded->generation));
    ASSERT_TRUE(store->List().ok());
    ++loads;
  }
  writer.join();
  EXPECT_EQ(store->LoadNewestValid()->generation, 150u);
}

TEST_F(CheckpointStoreTest, ConcurrentWritesGetDistinctGenerations) {
  std::unique_ptr<CheckpointStore> store = OpenStore(/*keep=*/100);
  std::mutex mutex;
  std::set<std::uint64_t> generations;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::StatusOr<WrittenCheckpoint> written = store->Write("x");
        ASSERT_TRUE(written.ok()) << written.status();
        std::lock_guard<std::mutex> lock(mutex);
        generations.insert(written->generation);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(generations.size(), 30u);
  EXPECT_EQ(*generations.begin(), 1u);
  EXPECT_EQ(*generations.rbegin(), 30u);
}

}  // namespace
}  // namespace riffle::checkpoints
