// `riffle gen` through the real binary: CSV shape, determinism, drift, piping into `riffle
// eval`, and one-line usage errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "features/generators.h"
#include "tests/service/cli_testing.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::RiffleBinary;
using ::riffle::service::testing::RunRiffle;
using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<double> Numbers(const std::string& line) {
  std::vector<double> values;
  std::istringstream in(line);
  for (std::string field; std::getline(in, field, ',');) values.push_back(std::stod(field));
  return values;
}

// The value of "key": in a one-line JSON object (numbers only).
double JsonNumber(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return -1;
  return std::stod(json.substr(at + key.size() + 4));
}

TEST(RiffleGenCliTest, WritesAHeaderAndTheRows) {
  CommandResult r = RunRiffle("gen sea --rows 3 --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The same rows as GeneratorsTest.GoldenFirstRows, printed exactly.
  EXPECT_EQ(r.output,
            "0,1,2,class\n"
            "1.338766,1.36407,4.512149,0\n"
            "3.508981,9.11358,4.707521,1\n"
            "5.698471,6.352312,0.894531,1\n");
}

TEST(RiffleGenCliTest, ZeroRowsIsTheHeaderOnly) {
  CommandResult r = RunRiffle("gen stagger --rows 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "size,color,shape,class\n");
}

TEST(RiffleGenCliTest, NominalValuesArePrintedByName) {
  CommandResult r = RunRiffle("gen stagger --rows 200 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> lines = Lines(r.output);
  ASSERT_EQ(lines.size(), 201u);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_THAT(lines[i],
                ::testing::MatchesRegex(
                    "(small|medium|large),(red|blue|green),(circle|square|triangle),[01]"));
  }
}

TEST(RiffleGenCliTest, SameArgumentsSameBytesOtherSeedOtherBytes) {
  for (const char* name :
       {"sea", "agrawal", "random_rbf", "random_rbf_drift", "hyperplane", "led", "stagger"}) {
    const std::string args = std::string("gen ") + name + " --rows 2000 --seed ";
    CommandResult a = RunRiffle(args + "7");
    CommandResult b = RunRiffle(args + "7");
    CommandResult c = RunRiffle(args + "8");
    ASSERT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(Lines(a.output).size(), 2001u) << name;
    EXPECT_EQ(a.output, b.output) << name;
    EXPECT_NE(a.output, c.output) << name;
  }
}

TEST(RiffleGenCliTest, PrintedRowsCarryTheirExactLabels) {
  // Values are on a decimal grid and printed exactly, so the label of every printed row is the
  // concept's label of the printed values (noise 0).
  CommandResult r = RunRiffle("gen sea --rows 20000 --seed 5 --set variant=2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> lines = Lines(r.output);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::vector<double> v = Numbers(lines[i]);
    ASSERT_EQ(v[3], features::SeaLabel(2, v[0], v[1])) << lines[i];
  }
}

TEST(RiffleGenCliTest, SeaPipesIntoEval) {
  CommandResult r = RunRiffle("gen sea --rows 20000 --seed 1 | " + RiffleBinary() +
                              " eval --data - --target class --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(JsonNumber(r.output, "rows"), 20000) << r.output;
  // A linear concept: online logistic regression gets 0.9927 prequential accuracy here.
  EXPECT_GT(JsonNumber(r.output, "accuracy"), 0.97) << r.output;
}

TEST(RiffleGenCliTest, EveryGeneratorPipesIntoEval) {
  for (const char* name :
       {"sea", "agrawal", "random_rbf", "random_rbf_drift", "hyperplane", "led", "stagger"}) {
    CommandResult r = RunRiffle(std::string("gen ") + name + " --rows 3000 | " + RiffleBinary() +
                                " eval --data - --target class --json");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
    EXPECT_EQ(JsonNumber(r.output, "rows"), 3000) << name << ": " << r.output;
  }
}

TEST(RiffleGenCliTest, DriftSwitchesConcepts) {
  // Abrupt drift (width 0) after row 2000 from SEA variant 0 (threshold 8) to variant 3 (9.5).
  CommandResult r = RunRiffle(
      "gen sea --rows 4000 --seed 1 --drift-at 2000 --drift-width 0 --drift-set variant=3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> lines = Lines(r.output);
  ASSERT_EQ(lines.size(), 4001u);
  int before_disagree = 0, after_disagree = 0, discriminating_after = 0;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::vector<double> v = Numbers(lines[i]);
    const int a = features::SeaLabel(0, v[0], v[1]);
    const int b = features::SeaLabel(3, v[0], v[1]);
    if (i <= 2000) {
      before_disagree += v[3] != a;
    } else {
      after_disagree += v[3] != b;
      discriminating_after += a != b;
    }
  }
  EXPECT_EQ(before_disagree, 0);
  EXPECT_EQ(after_disagree, 0);
  EXPECT_GT(discriminating_after, 100);
  // Rows before the drift are those of the same command without drift.
  CommandResult plain = RunRiffle("gen sea --rows 2000 --seed 1");
  EXPECT_EQ(r.output.substr(0, plain.output.size()), plain.output);
}

TEST(RiffleGenCliTest, GradualDriftWithTheDefaultWidth) {
  CommandResult r = RunRiffle(
      "gen hyperplane --rows 3000 --set n_features=4 --drift-at 1500 "
      "--drift-set mag_change=0.01");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Lines(r.output).size(), 3001u);
}

// ---------------------------------------------------------------------------------------------
// Errors: one line on stderr, exit status 2 for usage errors.

int CountLines(const std::string& s) { return static_cast<int>(Lines(s).size()); }

void ExpectUsageError(const std::string& args, const std::string& message) {
  CommandResult r = RunRiffle(args);
  EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  EXPECT_EQ(CountLines(r.output), 1) << args << ": " << r.output;
  EXPECT_THAT(r.output, HasSubstr(message)) << args;
}

TEST(RiffleGenCliTest, UsageErrorsAreOneLine) {
  ExpectUsageError("gen waveform --rows 10", "unknown generator 'waveform' (generators: sea,");
  ExpectUsageError("gen sea --rows 10 --set function=2",
                   "generator 'sea': unknown option 'function'");
  ExpectUsageError("gen sea --rows 10 --set variant=7", "option 'variant' must be in 0..3, got 7");
  ExpectUsageError("gen sea --rows 10 --set noise=lots", "option 'noise'");
  ExpectUsageError("gen sea --rows 10 --set variant", "--set expects name=value, got 'variant'");
  ExpectUsageError("gen sea --rows 10 --drift-at 5 --drift-set variant=9",
                   "second concept (--drift-set): generator 'sea': option 'variant'");
  ExpectUsageError("gen hyperplane --rows 10 --drift-at 5 --drift-set n_features=3",
                   "same columns");
  ExpectUsageError("gen sea --rows 10 --drift-width 5", "--drift-at");
  ExpectUsageError("gen sea --rows 10 --drift-set variant=1", "--drift-at");
  ExpectUsageError("gen sea", "--rows");
  ExpectUsageError("gen --rows 10", "name");
  ExpectUsageError("gen sea --rows many", "--rows");
}

TEST(RiffleGenCliTest, WriteFailureIsARuntimeError) {
  // stderr to the pipe we read, stdout to a full device.
  const std::string command = RiffleBinary() + " gen sea --rows 100000 2>&1 >/dev/full";
  CommandResult r;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("writing the output"));
}

TEST(RiffleGenCliTest, HelpDocumentsEveryOptionAndGenerator) {
  CommandResult r = RunRiffle("gen --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word :
       {"--rows", "--seed", "--set", "--drift-at", "--drift-width", "--drift-set", "sea", "agrawal",
        "random_rbf_drift", "hyperplane", "led", "stagger", "classification_function",
        "change_speed", "noise_percentage", "mag_change"}) {
    EXPECT_THAT(r.output, HasSubstr(word));
  }
}

}  // namespace
}  // namespace riffle::service
