// Runs the real `riffle` binary and checks exit codes and messages of the command line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/service/cli_testing.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::RiffleBinary;
using ::riffle::service::testing::RunRiffle;

std::string Data(const char* name) { return std::string(RIFFLE_TEST_DATA_DIR) + "/" + name; }

std::string WriteTemp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

int CountLines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n' ? 1 : 0;
  return lines;
}

TEST(RiffleCliTest, EvalPrintsJsonWithTheDocumentedKeys) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-breast-cancer.csv") + " --target target --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* key : {"\"rows\": 569", "\"accuracy\"", "\"log_loss\"", "\"roc_auc\"",
                          "\"macro_f1\"", "\"seconds\"", "\"rows_per_second\""}) {
    EXPECT_NE(r.output.find(key), std::string::npos) << key << " in " << r.output;
  }
}

TEST(RiffleCliTest, MulticlassJsonHasNoRocAuc) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("roc_auc"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, EvalReadsStandardInput) {
  CommandResult r = RunRiffle("eval --data - --target target --json < " + Data("sklearn-iris.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"rows\": 150"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, TextOutputShowsMetricsAndThroughput) {
  CommandResult r = RunRiffle("eval --data " + Data("weka-credit-g.csv") + " --target class");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* word : {"accuracy", "log_loss", "roc_auc", "macro_f1", "rows/s"}) {
    EXPECT_NE(r.output.find(word), std::string::npos) << word;
  }
}

TEST(RiffleCliTest, UnknownLearnerIsAOneLineError) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --learner svm");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("unknown learner 'svm'"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, UnknownLearnerOptionIsAOneLineError) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --set momentum=0.9");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("unknown option 'momentum'"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, InvalidOptionValueIsAOneLineError) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --set lr=-3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("'lr'"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, UnknownCommandLineFlagIsAOneLineError) {
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --fast");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--fast"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, MissingTargetColumnIsAOneLineError) {
  CommandResult r = RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target species");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("target column 'species'"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, MissingFileIsAOneLineError) {
  CommandResult r = RunRiffle("eval --data /nonexistent/file.csv --target y");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/file.csv"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, RaggedRowIsAOneLineErrorWithTheLineNumber) {
  const std::string path = WriteTemp("ragged.csv", "a,b,y\n1,2,x\n3,4,y\n5,z\n");
  CommandResult r = RunRiffle("eval --data " + path + " --target y");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(":4:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 fields"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, RaggedRowAfterTheInferenceWindowIsAlsoReported) {
  std::string csv = "a,y\n";
  for (int i = 0; i < 1500; ++i) csv += std::to_string(i) + "," + (i % 2 ? "p" : "q") + "\n";
  csv += "1,2,3\n";
  CommandResult r = RunRiffle("eval --data " + WriteTemp("ragged_late.csv", csv) + " --target y");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(":1502:"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, MissingRequiredFlagIsAUsageError) {
  CommandResult r = RunRiffle("eval --target y");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--data"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, EvalSpecRunsTheSpecsPipelineAndLearner) {
  const std::string spec = WriteTemp(
      "cli_spec.yaml", "learner: logreg\nfeatures:\n  crosses:\n    - {first: a, second: b}\n");
  std::string csv = "a,b,y\n";
  for (int i = 0; i < 40; ++i) {
    const bool a = i % 2 == 0, b = i % 3 == 0;
    csv += std::string(a ? "x" : "z") + "," + (b ? "x" : "z") + "," + (a == b ? "s" : "d") + "\n";
  }
  CommandResult r = RunRiffle("eval --data " + WriteTemp("cli_spec.csv", csv) +
                              " --target y --spec " + spec + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"rows\": 40"), std::string::npos) << r.output;
  // a=x, a=z, b=x, b=z and the four pairs.
  EXPECT_NE(r.output.find("\"features\": 8"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"learner\": \"logreg\""), std::string::npos) << r.output;
}

TEST(RiffleCliTest, EvalSpecWithFlagsItDecidesIsAUsageError) {
  const std::string spec = WriteTemp("cli_spec_conflict.yaml", "learner: logreg\n");
  const std::string base =
      "eval --data " + Data("sklearn-iris.csv") + " --target target --spec " + spec;
  for (const auto& [flag, message] :
       {std::pair<std::string, std::string>{" --learner logreg", "--learner cannot be combined"},
        {" --set lr=0.1", "--set cannot be combined"},
        {" --nominal sepal", "--nominal and --drop cannot be combined"},
        {" --window 50", "--window cannot be combined with --spec"},
        {" --infer-rows 10", "--infer-rows cannot be combined with --spec"}}) {
    CommandResult r = RunRiffle(base + flag);
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.output;
    EXPECT_EQ(CountLines(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
}

TEST(RiffleCliTest, EvalSpecErrorIsAOneLineErrorNamingTheField) {
  const std::string spec =
      WriteTemp("cli_bad_spec.yaml", "learner: logreg\nfeatures: {crosses: [{first: a}]}\n");
  CommandResult r =
      RunRiffle("eval --data " + Data("sklearn-iris.csv") + " --target target --spec " + spec);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("spec.features.crosses[0].second"), std::string::npos) << r.output;
}

TEST(RiffleCliTest, HelpDocumentsEveryOption) {
  CommandResult r = RunRiffle("eval --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--data", "--target", "--learner", "--set", "--nominal", "--drop",
                           "--infer-rows", "--window", "--json", "--no-progress", "--spec"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace riffle::service
