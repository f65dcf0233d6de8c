// The `riffle` command line: one binary, one subcommand per job.
//
// Exit codes: 0 success, 1 runtime failure (bad data, missing file), 2 usage error.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "learners/registry.h"
#include "service/eval.h"
#include "service/progress.h"

namespace riffle::service {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Splits "name=value"; InvalidArgument when there is no '=' or the name is empty.
absl::Status ParseAssignment(const std::string& text, learners::OptionList* out) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError("--set expects name=value, got '" + text + "'");
  }
  out->emplace_back(text.substr(0, eq), text.substr(eq + 1));
  return absl::OkStatus();
}

struct EvalFlags {
  EvalOptions options;
  std::vector<std::string> sets;
  bool json = false;
  bool no_progress = false;
};

void AddEvalCommand(CLI::App& app, EvalFlags* flags) {
  CLI::App* eval = app.add_subcommand(
      "eval",
      "Prequential (test-then-train) evaluation of a learner over one pass of a CSV file:\n"
      "for each row, predict, update the metrics, then learn (as River's\n"
      "evaluate.progressive_val_score). Numeric columns are standard-scaled online;\n"
      "nominal columns are one-hot encoded; an empty field is a missing value.");
  EvalOptions& o = flags->options;
  eval->add_option("--data", o.data, "CSV file with a header row (RFC 4180); '-' reads stdin")
      ->required();
  eval->add_option("--target", o.table.target, "Name of the label column")->required();
  eval->add_option("--learner", o.learner,
                   "Learner: " + absl::StrJoin(learners::LearnerKinds(), ", "))
      ->capture_default_str();
  eval->add_option("--set", flags->sets,
                   "Learner hyperparameter name=value (repeatable). logreg: optimizer=sgd|adam|"
                   "adagrad|ftrl, lr, lr_schedule=constant|inverse_scaling, lr_power, "
                   "intercept_lr, intercept_init, l1, l2, clip_gradient, adam_beta1, adam_beta2, "
                   "adam_eps, adagrad_eps, ftrl_alpha, ftrl_beta, ftrl_l1, ftrl_l2, "
                   "mode=auto|softmax");
  eval->add_option("--nominal", o.table.nominal,
                   "Columns to treat as nominal (one-hot) even if their values are numbers")
      ->delimiter(',');
  eval->add_option("--drop", o.table.drop, "Columns to ignore")->delimiter(',');
  eval->add_option("--infer-rows", o.table.infer_rows,
                   "Rows read to decide column types: a column with a non-numeric value in them "
                   "is nominal")
      ->capture_default_str();
  eval->add_option("--window", o.metrics.window, "Rows in the rolling metrics window")
      ->capture_default_str();
  eval->add_flag("--json", flags->json,
                 "Print one JSON object: rows, accuracy, log_loss, roc_auc (binary), macro_f1, "
                 "seconds, rows_per_second, and details");
  eval->add_flag("--no-progress", flags->no_progress, "Never draw the progress bar on stderr");
}

int RunEvalCommand(EvalFlags& flags) {
  for (const std::string& set : flags.sets) {
    if (absl::Status s = ParseAssignment(set, &flags.options.learner_options); !s.ok()) {
      std::fprintf(stderr, "riffle eval: error: %s\n", std::string(s.message()).c_str());
      return kExitUsage;
    }
  }
  ProgressBar bar(stderr);
  const bool show = bar.enabled() && !flags.no_progress;
  absl::StatusOr<EvalReport> report = RunEval(
      flags.options, show ? EvalProgress([&](std::uint64_t rows, std::uint64_t bytes,
                                             std::optional<std::uint64_t> total) {
        bar.Update(rows, bytes, total);
      })
                          : EvalProgress());
  bar.Finish();
  if (!report.ok()) {
    std::fprintf(stderr, "riffle eval: error: %s\n", std::string(report.status().message()).c_str());
    return report.status().code() == absl::StatusCode::kInvalidArgument &&
                   flags.options.data.empty()
               ? kExitUsage
               : kExitFailure;
  }
  const std::string text = flags.json ? FormatEvalJson(*report) + "\n" : FormatEvalText(*report);
  std::fputs(text.c_str(), stdout);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app("Riffle: online learning for event streams", "riffle");
  app.require_subcommand(1);
  app.set_version_flag("--version", "riffle 0.1.0");
  EvalFlags eval_flags;
  AddEvalCommand(app, &eval_flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "riffle: error: %s (see 'riffle --help')\n", e.what());
    return kExitUsage;
  }
  if (app.got_subcommand("eval")) return RunEvalCommand(eval_flags);
  return kExitUsage;
}

}  // namespace
}  // namespace riffle::service

int main(int argc, char** argv) { return riffle::service::Main(argc, argv); }
