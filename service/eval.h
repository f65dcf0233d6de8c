#ifndef RIFFLE_SERVICE_EVAL_H_
#define RIFFLE_SERVICE_EVAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "features/tabular.h"
#include "learners/metrics.h"
#include "learners/registry.h"
#include "service/metric_values.h"

namespace riffle::service {

// `riffle eval`: prequential (test-then-train) evaluation of one learner over one pass of a
// CSV file, as River's evaluate.progressive_val_score. For each row: decode, predict with the
// model as it is, then learn; the metrics score the prediction made before learning. Rows with an
// empty target are predicted only.
//
// With a spec (`--spec model.yaml`) the row goes through a served model's event pipeline and
// learner instead of the tabular preprocessing: each column but the target is a feature named by
// its header (a number is a number, any other text a text, an empty field missing), the same
// features::Pipeline + Classifier + PrequentialStep as `riffle serve`, so a served model with the
// same spec fed the same rows ends with the same metrics.

struct EvalOptions {
  // CSV file with a header row; "-" reads standard input.
  std::string data;
  // table.target is the label column in both modes; the other table options are for the
  // tabular preprocessing only.
  features::TabularOptions table;
  // A YAML model spec, the shape of a model's `spec:` in `riffle serve`'s config (learner,
  // learner_options, features, classes, metrics_window). When set, learner, learner_options,
  // table.nominal and table.drop must stay empty: the spec says all that. metrics is then
  // ignored in favour of the spec's metrics_window.
  std::string spec_file;
  // With spec_file only: the columns holding each event's id, key (the entity of windowed
  // aggregates) and event time (RFC 3339 or epoch seconds/milliseconds); empty: none. They are
  // not features. A spec with windowed aggregates needs time_column.
  std::string id_column;
  std::string key_column;
  std::string time_column;
  // Learner kind; empty means "logreg". Must stay empty (and learner_options too) when
  // starting from a checkpoint, which carries its own learner.
  std::string learner;
  learners::OptionList learner_options;
  learners::MetricsOptions metrics;

  // Start from this checkpoint file instead of a fresh model (offline training, then more).
  std::string load_checkpoint;
  // Write the final state to this checkpoint file (atomically).
  std::string save_checkpoint;
  // A checkpoint store directory: resume from its newest valid checkpoint (skipping the rows
  // that checkpoint already learned) and write generations into it while running.
  std::string checkpoint_dir;
  // Periodic checkpoints into checkpoint_dir: every N rows and/or every T seconds (0 = off).
  std::uint64_t checkpoint_every_rows = 0;
  double checkpoint_every_seconds = 0;
  std::size_t checkpoint_keep = 5;
  // Write the final tree to this file: Graphviz DOT if the name ends in ".dot", JSON
  // otherwise (learners::TreeModel's formats, features named by their column names). Only for
  // tree learners (InvalidArgument, before any data is read, for others).
  std::string dump_tree;
  // When set (by a signal handler), the evaluation stops after the current row, writes the
  // final checkpoints and reports what it did.
  const std::atomic<bool>* stop = nullptr;

  absl::Status Validate() const;
};

struct EvalReport {
  std::uint64_t rows = 0;
  std::uint64_t scored = 0;     // labeled rows the model had a prediction for
  std::uint64_t unlabeled = 0;  // rows with an empty target (predicted, not learned)
  std::uint64_t coerced_values = 0;
  double seconds = 0;
  double rows_per_second = 0;
  MetricValues cumulative;
  MetricValues rolling;
  std::uint64_t window = 0;
  std::vector<std::string> classes;
  std::size_t num_features = 0;
  std::size_t model_bytes = 0;
  std::string learner;
  // Checkpoints: where the run started from, rows skipped because that checkpoint had already
  // learned them, generations written, and whether a stop request ended the run early.
  std::string resumed_from;
  std::uint64_t skipped_rows = 0;
  std::uint64_t checkpoints_written = 0;
  std::uint64_t last_checkpoint_generation = 0;
  bool interrupted = false;
  // Things the user should know that did not stop the run (a damaged newest checkpoint that
  // was skipped in favour of an older one, failed periodic checkpoints), one line each.
  std::vector<std::string> warnings;
};

// Called every few thousand rows: rows so far, bytes read, total bytes if known.
using EvalProgress =
    std::function<void(std::uint64_t rows, std::uint64_t bytes, std::optional<std::uint64_t>)>;

// Runs the evaluation. Errors: NotFound (file), InvalidArgument (bad options, unknown learner
// or option, target not in header, ragged or malformed row: the message names the line).
absl::StatusOr<EvalReport> RunEval(const EvalOptions& options, const EvalProgress& progress = {});

// Human-readable multi-line summary.
std::string FormatEvalText(const EvalReport& report);
// One JSON object with the keys rows, accuracy, log_loss, roc_auc (binary only), macro_f1,
// seconds, rows_per_second, and more detail under "rolling", "classes", ...
std::string FormatEvalJson(const EvalReport& report);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_EVAL_H_
