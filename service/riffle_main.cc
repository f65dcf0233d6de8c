// The `riffle` command line: one binary, one subcommand per job.
//
// Exit codes: 0 success, 1 runtime failure (bad data, missing file), 2 usage error.

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "checkpoints/env.h"
#include "learners/registry.h"
#include "service/ckpt_command.h"
#include "service/cli_options.h"
#include "service/eval.h"
#include "service/gen_command.h"
#include "service/kafka_factory.h"
#include "service/progress.h"
#include "service/replay_command.h"
#include "service/serve_command.h"
#include "service/status_command.h"

#ifdef RIFFLE_HAVE_KAFKA
#include "service/kafka_client.h"
#endif

namespace riffle::service {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// The real Kafka clients, or none in a build without them (see kafka_factory.h).
KafkaClientFactory RealKafkaFactory() {
  KafkaClientFactory factory;
#ifdef RIFFLE_HAVE_KAFKA
  factory.new_consumer = [](const KafkaConsumerOptions& options) {
    return NewKafkaConsumer(options);
  };
  factory.new_producer = [](const KafkaProducerOptions& options) {
    return NewKafkaProducer(options);
  };
  factory.new_embedded = []() -> absl::StatusOr<std::unique_ptr<EmbeddedKafka>> {
    class Embedded final : public EmbeddedKafka {
     public:
      explicit Embedded(std::unique_ptr<KafkaMockCluster> cluster) : cluster_(std::move(cluster)) {}
      const std::string& bootstrap_servers() const override {
        return cluster_->bootstrap_servers();
      }
      absl::Status CreateTopic(std::string_view topic, int partitions) override {
        absl::Status s = cluster_->CreateTopic(topic, partitions, 1);
        return s.code() == absl::StatusCode::kAlreadyExists ? absl::OkStatus() : s;
      }

     private:
      std::unique_ptr<KafkaMockCluster> cluster_;
    };
    absl::StatusOr<std::unique_ptr<KafkaMockCluster>> cluster = KafkaMockCluster::Create(1);
    if (!cluster.ok()) return cluster.status();
    return std::make_unique<Embedded>(*std::move(cluster));
  };
#endif
  return factory;
}

struct EvalFlags {
  EvalOptions options;
  std::vector<std::string> sets;
  bool json = false;
  bool no_progress = false;
  // Tabular-only flags, to tell whether they were given along with --spec.
  std::vector<const CLI::Option*> tabular_only;
};

void AddEvalCommand(CLI::App& app, EvalFlags* flags) {
  CLI::App* eval = app.add_subcommand(
      "eval",
      "Prequential (test-then-train) evaluation of a learner over one pass of a CSV file:\n"
      "for each row, predict, then learn; the metrics score the prediction made\n"
      "before learning (as River's evaluate.progressive_val_score). Numeric columns\n"
      "are standard-scaled online; nominal columns are one-hot encoded; an empty\n"
      "field is a missing value.\n"
      "With --spec, the rows go through a served model's pipeline and learner instead.");
  EvalOptions& o = flags->options;
  eval->add_option("--data", o.data, "CSV file with a header row (RFC 4180); '-' reads stdin")
      ->required();
  eval->add_option("--target", o.table.target, "Name of the label column")->required();
  eval->add_option("--spec", o.spec_file,
                   "YAML model spec (what a model's spec: holds in riffle serve's config): run "
                   "its feature pipeline and learner, each column but the target a feature by "
                   "name; excludes --learner, --set, --nominal, --drop, --infer-rows, --window");
  eval->add_option("--id", o.id_column, "With --spec: the column of each event's id");
  eval->add_option("--key", o.key_column,
                   "With --spec: the column of each event's key (the entity of windowed "
                   "aggregates: card, user, ...)");
  eval->add_option("--time", o.time_column,
                   "With --spec: the column of each event's time (RFC 3339, or epoch seconds or "
                   "milliseconds); required by windowed aggregates");
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
  flags->tabular_only.push_back(
      eval->add_option("--infer-rows", o.table.infer_rows,
                       "Rows read to decide column types: a column with a non-numeric value in "
                       "them is nominal")
          ->capture_default_str());
  flags->tabular_only.push_back(
      eval->add_option("--window", o.metrics.window, "Rows in the rolling metrics window")
          ->capture_default_str());
  eval->add_flag("--json", flags->json,
                 "Print one JSON object: rows, accuracy, log_loss, roc_auc (binary), macro_f1, "
                 "seconds, rows_per_second, and details");
  eval->add_flag("--no-progress", flags->no_progress, "Never draw the progress bar on stderr");
  eval->add_option("--dump-tree", o.dump_tree,
                   "Write the final tree (tree learners) to this file: Graphviz DOT if it ends "
                   "in .dot, JSON otherwise");
  eval->add_option("--save-checkpoint", o.save_checkpoint,
                   "Write the final model state to this checkpoint file (atomically)");
  eval->add_option("--load-checkpoint", o.load_checkpoint,
                   "Start from this checkpoint file (written by --save-checkpoint) and keep "
                   "learning on --data; --learner and --set are not allowed with it");
  eval->add_option("--checkpoint-dir", o.checkpoint_dir,
                   "Checkpoint store directory: resume from its newest valid checkpoint "
                   "(skipping the rows it already learned), write generations into it while "
                   "running and a final one at the end or on SIGINT/SIGTERM");
  eval->add_option("--checkpoint-every-rows", o.checkpoint_every_rows,
                   "With --checkpoint-dir: write a checkpoint every N rows (0: off)");
  eval->add_option("--checkpoint-every-seconds", o.checkpoint_every_seconds,
                   "With --checkpoint-dir: write a checkpoint every T seconds (0: off)");
  eval->add_option("--checkpoint-keep", o.checkpoint_keep,
                   "With --checkpoint-dir: generations to keep")
      ->capture_default_str();
}

struct CkptFlags {
  std::string file;
  bool json = false;
};

void AddCkptCommand(CLI::App& app, CkptFlags* flags) {
  CLI::App* ckpt = app.add_subcommand("ckpt", "Inspect and verify checkpoint files");
  ckpt->require_subcommand(1);
  CLI::App* inspect = ckpt->add_subcommand(
      "inspect",
      "Print the header and a summary of a checkpoint (model, learner, counts, "
      "metrics, offsets, size); verifies it first");
  inspect->add_option("file", flags->file, "Checkpoint file")->required();
  inspect->add_flag("--json", flags->json, "Print one JSON object");
  CLI::App* verify = ckpt->add_subcommand(
      "verify",
      "Check a checkpoint completely (header, length, checksum, model state); exit "
      "status 1 on any problem");
  verify->add_option("file", flags->file, "Checkpoint file")->required();
}

// Set by SIGINT/SIGTERM; the evaluation loop stops after the current row and writes its final
// checkpoints. A lock-free atomic store is async-signal-safe.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void RequestStop(int /*signal*/) { g_stop_requested.store(true); }

void InstallStopHandlers() {
  struct sigaction action {};
  action.sa_handler = RequestStop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int RunCkptCommand(const CLI::App& ckpt, const CkptFlags& flags) {
  checkpoints::Env* env = checkpoints::DefaultEnv();
  const bool inspect = ckpt.got_subcommand("inspect");
  absl::StatusOr<std::string> out =
      inspect ? InspectCheckpoint(env, flags.file, flags.json) : VerifyCheckpoint(env, flags.file);
  if (!out.ok()) {
    std::fprintf(stderr, "riffle ckpt %s: error: %s\n", inspect ? "inspect" : "verify",
                 std::string(out.status().message()).c_str());
    return kExitFailure;
  }
  std::fputs(out->c_str(), stdout);
  return 0;
}

int RunEvalCommand(EvalFlags& flags) {
  if (absl::Status s = ParseAssignments(flags.sets, "--set", &flags.options.learner_options);
      !s.ok()) {
    std::fprintf(stderr, "riffle eval: error: %s\n", std::string(s.message()).c_str());
    return kExitUsage;
  }
  if (!flags.options.spec_file.empty()) {
    // Flags the spec overrides are usage errors, not silently ignored.
    for (const CLI::Option* option : flags.tabular_only) {
      if (option->count() > 0) {
        std::fprintf(stderr,
                     "riffle eval: error: %s cannot be combined with --spec (the spec's "
                     "metrics_window sets the window; columns need no type inference)\n",
                     option->get_name().c_str());
        return kExitUsage;
      }
    }
    if (absl::Status s = flags.options.Validate(); !s.ok()) {
      std::fprintf(stderr, "riffle eval: error: %s\n", std::string(s.message()).c_str());
      return kExitUsage;
    }
  }
  InstallStopHandlers();
  flags.options.stop = &g_stop_requested;
  ProgressBar bar(stderr);
  const bool show = bar.enabled() && !flags.no_progress;
  absl::StatusOr<EvalReport> report =
      RunEval(flags.options, show ? EvalProgress([&](std::uint64_t rows, std::uint64_t bytes,
                                                     std::optional<std::uint64_t> total) {
                bar.Update(rows, bytes, total);
              })
                                  : EvalProgress());
  bar.Finish();
  if (!report.ok()) {
    std::fprintf(stderr, "riffle eval: error: %s\n",
                 std::string(report.status().message()).c_str());
    return report.status().code() == absl::StatusCode::kInvalidArgument &&
                   flags.options.data.empty()
               ? kExitUsage
               : kExitFailure;
  }
  for (const std::string& warning : report->warnings) {
    std::fprintf(stderr, "riffle eval: warning: %s\n", warning.c_str());
  }
  const std::string text = flags.json ? FormatEvalJson(*report) + "\n" : FormatEvalText(*report);
  std::fputs(text.c_str(), stdout);
  // Interrupted runs exit like the signal would have, after their final checkpoint.
  return report->interrupted ? 128 + SIGINT : 0;
}

int Main(int argc, char** argv) {
  CLI::App app("Riffle: online learning for event streams", "riffle");
  app.require_subcommand(1);
  app.set_version_flag("--version", "riffle 0.1.0");
  EvalFlags eval_flags;
  AddEvalCommand(app, &eval_flags);
  CkptFlags ckpt_flags;
  AddCkptCommand(app, &ckpt_flags);
  GenFlags gen_flags;
  AddGenCommand(app, &gen_flags);
  ServeFlags serve_flags;
  AddServeCommand(app, &serve_flags);
  ReplayFlags replay_flags;
  AddReplayCommand(app, &replay_flags);
  StatusOptions status_options;
  AddStatusCommand(app, &status_options);
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
  if (app.got_subcommand("gen")) return RunGenCommand(gen_flags);
  if (app.got_subcommand("serve")) {
    InstallStopHandlers();
    return RunServeCommand(serve_flags, &g_stop_requested, RealKafkaFactory());
  }
  if (app.got_subcommand("ckpt")) return RunCkptCommand(*app.get_subcommand("ckpt"), ckpt_flags);
  if (app.got_subcommand("replay")) {
    InstallStopHandlers();
    return RunReplayCommand(replay_flags, RealKafkaFactory(), &g_stop_requested);
  }
  if (app.got_subcommand("status")) {
    InstallStopHandlers();  // ends --watch
    return RunStatusCommand(status_options, &g_stop_requested);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace riffle::service

int main(int argc, char** argv) { return riffle::service::Main(argc, argv); }
