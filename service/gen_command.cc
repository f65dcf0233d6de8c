#include "service/gen_command.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/cli_options.h"

namespace riffle::service {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Output is built in a buffer of this size and written with one fwrite per fill.
constexpr std::size_t kBufferBytes = std::size_t{1} << 20;
// Room kept free before each field: the longest fixed-point double (about 310 characters for
// 1.8e308) with margin. Nominal values are reserved for by their own length.
constexpr std::size_t kMaxNumberChars = 330;

class CsvWriter {
 public:
  explicit CsvWriter(std::FILE* out) : out_(out), buffer_(kBufferBytes) {}

  // Makes sure `bytes` fit after the current position (flushing first if needed).
  absl::Status Reserve(std::size_t bytes) {
    if (buffer_.size() - used_ >= bytes) return absl::OkStatus();
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (buffer_.size() < bytes) buffer_.resize(bytes);
    return absl::OkStatus();
  }
  // Callers Reserve() first.
  void Append(std::string_view text) {
    std::memcpy(buffer_.data() + used_, text.data(), text.size());
    used_ += text.size();
  }
  void AppendChar(char c) { buffer_[used_++] = c; }
  void AppendNumber(double v) {
    char* first = buffer_.data() + used_;
    const auto [end, ec] =
        std::to_chars(first, buffer_.data() + buffer_.size(), v, std::chars_format::fixed);
    used_ += static_cast<std::size_t>(end - first);
  }

  absl::Status Flush() {
    if (used_ > 0 && std::fwrite(buffer_.data(), 1, used_, out_) != used_) return WriteError();
    used_ = 0;
    return absl::OkStatus();
  }
  absl::Status Finish() {
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (std::fflush(out_) != 0) return WriteError();
    return absl::OkStatus();
  }

 private:
  static absl::Status WriteError() {
    return absl::UnavailableError(absl::StrFormat("writing the output: %s", std::strerror(errno)));
  }

  std::FILE* out_;
  std::vector<char> buffer_;
  std::size_t used_ = 0;
};

}  // namespace

void AddGenCommand(CLI::App& app, GenFlags* flags) {
  CLI::App* gen = app.add_subcommand(
      "gen",
      "Write a synthetic classification stream as CSV to stdout (header row, target column\n"
      "'class'), the classic generators as MOA and River define them. The same arguments\n"
      "always give the same bytes. Options (--set name=value, River's names and defaults):\n"
      "  sea               variant=0..3 (threshold 8, 9, 7, 9.5), noise=0\n"
      "  agrawal           classification_function=0..9, balance_classes=false, perturbation=0\n"
      "  random_rbf        n_classes=2, n_features=10, n_centroids=50, seed_model=(from --seed)\n"
      "  random_rbf_drift  as random_rbf, and change_speed=0, n_drift_centroids=50\n"
      "  hyperplane        n_features=10, n_drift_features=2, mag_change=0,\n"
      "                    noise_percentage=0.05, sigma=0.1\n"
      "  led               noise_percentage=0, irrelevant_features=false\n"
      "  stagger           classification_function=0..2, balance_classes=false");
  gen->add_option("name", flags->generator,
                  "Generator: " + absl::StrJoin(features::GeneratorNames(), ", "))
      ->required();
  gen->add_option("--rows", flags->rows, "Number of rows to write")->required();
  gen->add_option("--seed", flags->seed, "Random seed")->capture_default_str();
  gen->add_option("--set", flags->sets, "Generator option name=value (repeatable)");
  CLI::Option* drift_at = gen->add_option_function<std::uint64_t>(
      "--drift-at", [flags](const std::uint64_t& row) { flags->drift_at = row; },
      "Concept drift centred on this row (1-based), as MOA's ConceptDriftStream: row t comes "
      "from the second concept with probability 1 / (1 + exp(-4 (t - ROW) / W))");
  gen->add_option("--drift-width", flags->drift_width,
                  "Rows of the drift's transition W (0: abrupt, after row ROW)")
      ->capture_default_str()
      ->needs(drift_at);
  gen->add_option("--drift-set", flags->drift_sets,
                  "Option name=value of the second concept, applied after --set (repeatable); "
                  "the second concept also gets its own seed")
      ->needs(drift_at);
}

absl::StatusOr<std::unique_ptr<features::Generator>> CreateGenStream(const GenFlags& flags) {
  learners::OptionList options;
  if (absl::Status s = ParseAssignments(flags.sets, "--set", &options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<features::Generator>> first =
      features::CreateGenerator(flags.generator, options, flags.seed);
  if (!first.ok() || !flags.drift_at.has_value()) return first;

  if (absl::Status s = ParseAssignments(flags.drift_sets, "--drift-set", &options); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<features::Generator>> second =
      features::CreateGenerator(flags.generator, options, features::DeriveSeed(flags.seed, 1));
  if (!second.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("second concept (--drift-set): %s", second.status().message()));
  }
  features::ConceptDriftOptions drift;
  drift.position = *flags.drift_at;
  drift.width = flags.drift_width;
  return features::CreateConceptDrift(*std::move(first), *std::move(second), drift,
                                      features::DeriveSeed(flags.seed, 2));
}

absl::Status WriteGeneratorCsv(features::Generator& generator, std::uint64_t rows, std::FILE* out) {
  const std::vector<features::GeneratorColumn>& columns = generator.Columns();
  CsvWriter writer(out);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (absl::Status s = writer.Reserve(columns[c].name.size() + 1); !s.ok()) return s;
    writer.Append(columns[c].name);
    writer.AppendChar(c + 1 < columns.size() ? ',' : '\n');
  }
  std::vector<double> row(columns.size());
  for (std::uint64_t r = 0; r < rows; ++r) {
    generator.Next(row);
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const std::vector<std::string>& values = columns[c].values;
      if (values.empty()) {
        if (absl::Status s = writer.Reserve(kMaxNumberChars + 1); !s.ok()) return s;
        writer.AppendNumber(row[c]);
      } else {
        const std::string& value = values[static_cast<std::size_t>(row[c])];
        if (absl::Status s = writer.Reserve(value.size() + 1); !s.ok()) return s;
        writer.Append(value);
      }
      writer.AppendChar(c + 1 < columns.size() ? ',' : '\n');
    }
  }
  return writer.Finish();
}

int RunGenCommand(const GenFlags& flags) {
  absl::StatusOr<std::unique_ptr<features::Generator>> stream = CreateGenStream(flags);
  if (!stream.ok()) {
    std::fprintf(stderr, "riffle gen: error: %s\n", std::string(stream.status().message()).c_str());
    return kExitUsage;
  }
  if (absl::Status s = WriteGeneratorCsv(**stream, flags.rows, stdout); !s.ok()) {
    std::fprintf(stderr, "riffle gen: error: %s\n", std::string(s.message()).c_str());
    return kExitFailure;
  }
  return 0;
}

}  // namespace riffle::service
