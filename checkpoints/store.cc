#include "checkpoints/store.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "absl/strings/str_format.h"
#include "checkpoints/file_format.h"

namespace riffle::checkpoints {
namespace {

constexpr std::string_view kFilePrefix = "ckpt-";
constexpr std::string_view kFileSuffix = ".riffle";
constexpr std::size_t kGenerationDigits = 20;  // 2^64 - 1 has 20 digits
constexpr std::size_t kFileNameSize = kFilePrefix.size() + kGenerationDigits + kFileSuffix.size();

// LoadNewestValid lists the directory again when files vanished under it (pruned by a
// concurrent Write); a few attempts are plenty, as every Write leaves `keep` files.
constexpr int kMaxListAttempts = 3;

// A temporary file that WriteFileAtomically left behind for a checkpoint name.
bool IsCheckpointTempFile(std::string_view name) {
  return name.size() > kFileNameSize &&
         ParseCheckpointFileName(name.substr(0, kFileNameSize)).has_value() &&
         name.substr(kFileNameSize).starts_with(kTempFileInfix);
}

// "a/b/" -> "a/b", so paths read "a/b/ckpt-...". "/" stays.
std::string WithoutTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// Keeps the code, prefixes the message.
absl::Status Annotate(const absl::Status& status, std::string_view prefix) {
  return absl::Status(status.code(), absl::StrFormat("%s%s", prefix, status.message()));
}

}  // namespace

absl::Status CheckpointStoreOptions::Validate() const {
  if (dir.empty()) {
    return absl::InvalidArgumentError("CheckpointStoreOptions.dir must not be empty");
  }
  if (keep < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CheckpointStoreOptions.keep must be at least 1, got %d", keep));
  }
  if (max_file_bytes < kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "CheckpointStoreOptions.max_file_bytes must be at least %d (the file header), got %d",
        kHeaderSize, max_file_bytes));
  }
  return absl::OkStatus();
}

std::string CheckpointFileName(std::uint64_t generation) {
  return absl::StrFormat("%s%020d%s", std::string(kFilePrefix), generation,
                         std::string(kFileSuffix));
}

std::optional<std::uint64_t> ParseCheckpointFileName(std::string_view name) {
  if (name.size() != kFileNameSize || !name.starts_with(kFilePrefix) ||
      !name.ends_with(kFileSuffix)) {
    return std::nullopt;
  }
  const std::string_view digits = name.substr(kFilePrefix.size(), kGenerationDigits);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t generation = 0;
  // from_chars rejects values above 2^64 - 1 (result_out_of_range).
  const auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), generation);
  if (error != std::errc() || end != digits.data() + digits.size() || generation == 0) {
    return std::nullopt;
  }
  return generation;
}

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(
    Env* env, CheckpointStoreOptions options) {
  if (env == nullptr) return absl::InvalidArgumentError("CheckpointStore::Open: env is null");
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  options.dir = WithoutTrailingSlashes(std::move(options.dir));

  if (!options.read_only) {
    if (absl::Status created = env->CreateDirs(options.dir); !created.ok()) return created;
  }
  // Also checks, when read_only, that the directory exists and can be read.
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(options.dir);
  if (!names.ok()) return names.status();
  if (!options.read_only) {
    for (const std::string& name : *names) {
      if (!IsCheckpointTempFile(name)) continue;
      const std::string path = absl::StrFormat("%s/%s", options.dir, name);
      if (absl::Status removed = env->RemoveFile(path);
          !removed.ok() && !absl::IsNotFound(removed)) {
        return Annotate(removed, "removing a stale temporary checkpoint file: ");
      }
    }
  }
  return std::unique_ptr<CheckpointStore>(new CheckpointStore(env, std::move(options)));
}

std::string CheckpointStore::PathFor(std::uint64_t generation) const {
  return absl::StrFormat("%s/%s", options_.dir, CheckpointFileName(generation));
}

absl::StatusOr<std::vector<std::uint64_t>> CheckpointStore::ListGenerations() const {
  absl::StatusOr<std::vector<std::string>> names = env_->ListDir(options_.dir);
  if (!names.ok()) return names.status();
  std::vector<std::uint64_t> generations;
  for (const std::string& name : *names) {
    if (std::optional<std::uint64_t> generation = ParseCheckpointFileName(name)) {
      generations.push_back(*generation);
    }
  }
  std::sort(generations.begin(), generations.end(), std::greater<>());
  return generations;
}

absl::StatusOr<WrittenCheckpoint> CheckpointStore::Write(std::string_view payload) {
  if (options_.read_only) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: cannot write a checkpoint: the store was opened read-only", options_.dir));
  }
  // Written only if it can be read back: Load refuses files above max_file_bytes.
  if (payload.size() > options_.max_file_bytes - kHeaderSize) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s: a checkpoint of %d bytes (payload %d + header %d) exceeds max_file_bytes = %d",
        options_.dir, payload.size() + kHeaderSize, payload.size(), kHeaderSize,
        options_.max_file_bytes));
  }

  std::lock_guard<std::mutex> lock(write_mutex_);
  absl::StatusOr<std::vector<std::uint64_t>> generations = ListGenerations();
  if (!generations.ok()) return generations.status();
  const std::uint64_t newest =
      std::max(last_written_, generations->empty() ? 0 : generations->front());
  if (newest == std::numeric_limits<std::uint64_t>::max()) {
    return absl::OutOfRangeError(
        absl::StrFormat("%s: generation %d exists, there is no next one", options_.dir, newest));
  }

  WrittenCheckpoint written;
  written.generation = newest + 1;
  written.path = PathFor(written.generation);
  written.size_bytes = kHeaderSize + payload.size();
  const std::string header = EncodeCheckpointHeader(payload);
  const std::string_view pieces[] = {header, payload};
  if (absl::Status status = WriteFileAtomically(env_, written.path, pieces); !status.ok()) {
    return status;
  }
  last_written_ = written.generation;

  // The listing taken before the write is current: this store is the directory's only writer.
  generations->insert(generations->begin(), written.generation);
  written.prune_status = Prune(*generations);
  return written;
}

absl::Status CheckpointStore::Prune(const std::vector<std::uint64_t>& generations) {
  std::vector<std::string> failures;
  absl::StatusCode code = absl::StatusCode::kOk;
  for (std::size_t i = options_.keep; i < generations.size(); ++i) {
    absl::Status removed = env_->RemoveFile(PathFor(generations[i]));
    if (removed.ok() || absl::IsNotFound(removed)) continue;  // NotFound: already gone
    if (code == absl::StatusCode::kOk) code = removed.code();
    failures.push_back(static_cast<std::string>(removed.message()));
  }
  if (failures.empty()) return absl::OkStatus();
  std::string message =
      absl::StrFormat("%s: could not delete %d old checkpoint(s) beyond keep = %d:", options_.dir,
                      failures.size(), options_.keep);
  for (const std::string& failure : failures) message += absl::StrFormat(" [%s]", failure);
  return absl::Status(code, message);
}

absl::StatusOr<std::vector<CheckpointInfo>> CheckpointStore::List() const {
  absl::StatusOr<std::vector<std::uint64_t>> generations = ListGenerations();
  if (!generations.ok()) return generations.status();
  std::vector<CheckpointInfo> infos;
  infos.reserve(generations->size());
  for (const std::uint64_t generation : *generations) {
    CheckpointInfo info{generation, PathFor(generation), 0};
    absl::StatusOr<std::uint64_t> size = env_->FileSize(info.path);
    if (absl::IsNotFound(size.status())) continue;  // pruned by a concurrent Write
    if (!size.ok()) return size.status();
    info.size_bytes = *size;
    infos.push_back(std::move(info));
  }
  return infos;
}

absl::StatusOr<LoadedCheckpoint> CheckpointStore::Load(std::uint64_t generation) const {
  LoadedCheckpoint loaded;
  loaded.generation = generation;
  loaded.path = PathFor(generation);
  if (generation == 0) {
    return absl::NotFoundError(
        absl::StrFormat("%s: there is no generation 0 (generations start at 1)", loaded.path));
  }
  absl::StatusOr<std::string> bytes = env_->ReadFile(loaded.path, options_.max_file_bytes);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::string_view> payload = DecodeCheckpointFile(*bytes, loaded.path);
  if (!payload.ok()) return payload.status();
  // Drop the header in place: one memmove, no second buffer the size of the payload.
  bytes->erase(0, kHeaderSize);
  loaded.payload = *std::move(bytes);
  return loaded;
}

absl::StatusOr<LoadedCheckpoint> CheckpointStore::LoadNewestValid() const {
  return LoadNewestValid(nullptr);
}

absl::StatusOr<LoadedCheckpoint> CheckpointStore::LoadNewestValid(
    const PayloadValidator& accept) const {
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::vector<std::uint64_t>> generations = ListGenerations();
    if (!generations.ok()) return generations.status();
    if (generations->empty()) {
      return absl::NotFoundError(
          absl::StrFormat("%s: no checkpoint (no file named %s<generation>%s)", options_.dir,
                          std::string(kFilePrefix), std::string(kFileSuffix)));
    }

    std::vector<SkippedCheckpoint> skipped;
    bool vanished = false;
    for (const std::uint64_t generation : *generations) {
      absl::StatusOr<LoadedCheckpoint> loaded = Load(generation);
      absl::Status status = loaded.status();
      if (loaded.ok() && accept) {
        status = accept(loaded->payload);
        if (!status.ok()) status = Annotate(status, absl::StrFormat("%s: ", loaded->path));
      }
      if (status.ok()) {
        loaded->skipped = std::move(skipped);
        return loaded;
      }
      vanished = vanished || (!loaded.ok() && absl::IsNotFound(loaded.status()));
      skipped.push_back({generation, PathFor(generation), std::move(status)});
    }

    // Files pruned since the listing mean newer ones were written: look again.
    if (vanished && attempt < kMaxListAttempts) continue;
    std::string message = absl::StrFormat(
        "%s: none of the %d checkpoint(s) is usable:", options_.dir, skipped.size());
    for (const SkippedCheckpoint& skip : skipped) {
      message += absl::StrFormat(" [%s]", skip.status.ToString());
    }
    return absl::DataLossError(message);
  }
}

}  // namespace riffle::checkpoints
