#ifndef RIFFLE_SERVICE_GEN_COMMAND_H_
#define RIFFLE_SERVICE_GEN_COMMAND_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "features/generators.h"

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's namespace
class App;
}  // namespace CLI

namespace riffle::service {

// `riffle gen NAME --rows N [--seed S] [--set name=value]... [--drift-at ROW
// [--drift-width W] [--drift-set name=value]...]`: writes N rows of a synthetic stream
// (features/generators.h) as CSV to stdout, a header row first, the target column named
// "class". The same arguments always give the same bytes.
struct GenFlags {
  // One of features::GeneratorNames().
  std::string generator;
  std::uint64_t rows = 0;
  std::uint64_t seed = 1;
  // Generator options as name=value, River's names (e.g. variant=2 for SEA).
  std::vector<std::string> sets;
  // With drift_at: MOA's ConceptDriftStream from the concept of `sets` to the concept of
  // `sets` then `drift_sets`, centred on row drift_at (1-based) over drift_width rows.
  std::optional<std::uint64_t> drift_at;
  std::uint64_t drift_width = 1000;
  std::vector<std::string> drift_sets;
};

// Registers the `gen` subcommand on `app`, parsing into *flags (which must outlive `app`).
void AddGenCommand(CLI::App& app, GenFlags* flags);

// Runs `riffle gen`. Returns the exit status: 0, 1 when writing fails, 2 for a usage error (an
// unknown generator or option, an invalid value), reported as one line on stderr.
int RunGenCommand(const GenFlags& flags);

// The stream `flags` describe: the generator, seeded with flags.seed, or with a drift the
// ConceptDriftStream of the two concepts (the second seeded with features::DeriveSeed(seed, 1),
// the choice between them with DeriveSeed(seed, 2)), so rows before the transition are those of
// the same command without drift. InvalidArgument for usage errors.
absl::StatusOr<std::unique_ptr<features::Generator>> CreateGenStream(const GenFlags& flags);

// Writes the header and `rows` rows of `generator` as CSV to `out`: numbers in the shortest
// fixed-point form that reads back as the same double, nominal values by name. Unavailable if
// writing fails.
absl::Status WriteGeneratorCsv(features::Generator& generator, std::uint64_t rows, std::FILE* out);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_GEN_COMMAND_H_
