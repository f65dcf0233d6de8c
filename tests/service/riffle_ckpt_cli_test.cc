// Checkpoints through the real `riffle` binary: --save-checkpoint / --load-checkpoint,
// --checkpoint-dir with resume, SIGTERM during a run, and `riffle ckpt inspect|verify`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "tests/service/cli_testing.h"

namespace riffle::service {
namespace {

using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::RiffleBinary;
using ::riffle::service::testing::RunRiffle;

std::string TestDir() {
  return ::testing::TempDir() + "/riffle_ckpt_cli_" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

std::string TempPath(const std::string& name) {
  std::filesystem::create_directories(TestDir());
  return TestDir() + "/" + name;
}

// Every test starts from an empty directory: a checkpoint store left by an earlier run would
// otherwise be resumed.
class RiffleCkptCliTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::remove_all(TestDir()); }
};

// A deterministic labeled stream: y depends on x1 and x2, with a nominal column.
std::string MakeCsv(int rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::ostringstream out;
  out << "x1,x2,colour,y\n";
  const char* colours[] = {"red", "green", "blue"};
  for (int i = 0; i < rows; ++i) {
    const double x1 = normal(rng);
    const double x2 = normal(rng);
    const int c = static_cast<int>(rng() % 3);
    const bool y = x1 + 0.5 * x2 + (c == 0 ? 0.7 : 0.0) + 0.3 * normal(rng) > 0;
    out << x1 << "," << x2 << "," << colours[c] << "," << (y ? "yes" : "no") << "\n";
  }
  return out.str();
}

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The value of "key": ... in a one-line JSON object, as printed (full precision).
std::string JsonField(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return "<missing " + key + ">";
  const std::size_t start = at + key.size() + 4;
  return json.substr(start, json.find_first_of(",}", start) - start);
}

std::string Lines(const std::string& csv, int first, int last) {
  std::istringstream in(csv);
  std::string line;
  std::string header;
  std::getline(in, header);
  std::string out = header + "\n";
  for (int i = 0; std::getline(in, line); ++i) {
    if (i >= first && i < last) out += line + "\n";
  }
  return out;
}

TEST_F(RiffleCkptCliTest, TrainingInTwoHalvesEqualsOnePass) {
  const std::string csv = MakeCsv(4000, 1);
  const std::string full = WriteFile("full.csv", csv);
  const std::string first = WriteFile("first.csv", Lines(csv, 0, 2500));
  const std::string second = WriteFile("second.csv", Lines(csv, 2500, 4000));
  const std::string ckpt = TempPath("half.riffle");

  CommandResult one = RunRiffle("eval --data " + full + " --target y --set optimizer=adam --json");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  CommandResult a = RunRiffle("eval --data " + first +
                              " --target y --set optimizer=adam --json --save-checkpoint " + ckpt);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  CommandResult b =
      RunRiffle("eval --data " + second + " --target y --json --load-checkpoint " + ckpt);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(JsonField(b.output, "rows"), "4000");
  for (const char* key : {"accuracy", "log_loss", "roc_auc", "macro_f1"}) {
    EXPECT_EQ(JsonField(b.output, key), JsonField(one.output, key)) << key;
  }
}

TEST_F(RiffleCkptCliTest, LoadCheckpointRejectsLearnerFlags) {
  const std::string csv = WriteFile("d.csv", MakeCsv(300, 2));
  const std::string ckpt = TempPath("m.riffle");
  ASSERT_EQ(RunRiffle("eval --data " + csv + " --target y --save-checkpoint " + ckpt).exit_code, 0);
  CommandResult r =
      RunRiffle("eval --data " + csv + " --target y --set lr=0.5 --load-checkpoint " + ckpt);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot be combined"), std::string::npos) << r.output;
}

TEST_F(RiffleCkptCliTest, LoadCheckpointRejectsADifferentTable) {
  const std::string csv = WriteFile("d.csv", MakeCsv(300, 2));
  const std::string other = WriteFile("o.csv", "a,b,y\n1,2,yes\n");
  const std::string ckpt = TempPath("m.riffle");
  ASSERT_EQ(RunRiffle("eval --data " + csv + " --target y --save-checkpoint " + ckpt).exit_code, 0);
  CommandResult r = RunRiffle("eval --data " + other + " --target y --load-checkpoint " + ckpt);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("header does not match"), std::string::npos) << r.output;
}

TEST_F(RiffleCkptCliTest, InspectAndVerifyAGoodCheckpoint) {
  const std::string csv = WriteFile("d.csv", MakeCsv(500, 3));
  const std::string ckpt = TempPath("m.riffle");
  ASSERT_EQ(RunRiffle("eval --data " + csv + " --target y --save-checkpoint " + ckpt).exit_code, 0);
  CommandResult verify = RunRiffle("ckpt verify " + ckpt);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("ok: "), std::string::npos);
  CommandResult text = RunRiffle("ckpt inspect " + ckpt);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  for (const char* word :
       {"format", "logreg", "events          500", "csv:rows = 500", "accuracy"}) {
    EXPECT_NE(text.output.find(word), std::string::npos) << word << "\n" << text.output;
  }
  CommandResult json = RunRiffle("ckpt inspect --json " + ckpt);
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_EQ(JsonField(json.output, "events"), "500");
  EXPECT_EQ(JsonField(json.output, "learner"), "\"logreg\"");
  EXPECT_EQ(JsonField(json.output, "classes"), "2");
}

TEST_F(RiffleCkptCliTest, VerifyReportsEachKindOfDamage) {
  const std::string csv = WriteFile("d.csv", MakeCsv(300, 4));
  const std::string good = TempPath("good.riffle");
  ASSERT_EQ(RunRiffle("eval --data " + csv + " --target y --save-checkpoint " + good).exit_code, 0);
  const std::string bytes = ReadFile(good);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  std::string wrong_magic = bytes;
  wrong_magic[0] = 'X';
  const struct {
    const char* name;
    std::string content;
    const char* expected;
  } cases[] = {{"flipped.riffle", flipped, "checksum"},
               {"truncated.riffle", bytes.substr(0, bytes.size() - 7), "truncated"},
               {"magic.riffle", wrong_magic, "not a Riffle checkpoint"},
               {"empty.riffle", "", "empty"},
               {"random.riffle", std::string(4096, '\x5a'), "not a Riffle checkpoint"}};
  for (const auto& c : cases) {
    const std::string path = WriteFile(c.name, c.content);
    CommandResult r = RunRiffle("ckpt verify " + path);
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(path), std::string::npos) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.name << ": " << r.output;
  }
  CommandResult dir = RunRiffle("ckpt verify " + ::testing::TempDir());
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_NE(dir.output.find("directory"), std::string::npos) << dir.output;
  CommandResult missing = RunRiffle("ckpt inspect /nonexistent/x.riffle");
  EXPECT_EQ(missing.exit_code, 1);
}

TEST_F(RiffleCkptCliTest, CheckpointDirResumesWhereTheLastRunStopped) {
  const std::string csv = MakeCsv(5000, 5);
  const std::string full = WriteFile("full.csv", csv);
  const std::string part = WriteFile("part.csv", Lines(csv, 0, 3100));
  const std::string dir = TempPath("store");

  CommandResult reference = RunRiffle("eval --data " + full + " --target y --json");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  // A first run sees only part of the data (as if it had died there), checkpointing as it goes.
  CommandResult first = RunRiffle("eval --data " + part + " --target y --json --checkpoint-dir " +
                                  dir + " --checkpoint-every-rows 1000");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(JsonField(first.output, "rows"), "3100");
  // The second run reads the whole file, skips what the store's checkpoint already learned,
  // and ends with exactly the model of one uninterrupted pass.
  CommandResult second =
      RunRiffle("eval --data " + full + " --target y --json --checkpoint-dir " + dir);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(JsonField(second.output, "skipped_rows"), "3100");
  EXPECT_EQ(JsonField(second.output, "rows"), "5000");
  for (const char* key : {"accuracy", "log_loss", "roc_auc", "macro_f1"}) {
    EXPECT_EQ(JsonField(second.output, key), JsonField(reference.output, key)) << key;
  }
}

// Starts riffle with a pipe as stdin and stdout/stderr to a file.
struct Spawned {
  pid_t pid = -1;
  int stdin_fd = -1;
};

Spawned Spawn(const std::vector<std::string>& args, const std::string& output_path) {
  const std::string binary = RiffleBinary();
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    const int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[0]);
  return {pid, fds[1]};
}

TEST_F(RiffleCkptCliTest, SigtermStopsAQuietPipeWritesAFinalCheckpointAndResumeCompletes) {
  const std::string csv = MakeCsv(3000, 6);
  const std::string full = WriteFile("full.csv", csv);
  const std::string dir = TempPath("store");
  const std::string log = TempPath("run.log");
  CommandResult reference = RunRiffle("eval --data " + full + " --target y --json");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  Spawned run = Spawn(
      {"eval", "--data", "-", "--target", "y", "--json", "--no-progress", "--checkpoint-dir", dir},
      log);
  ASSERT_GT(run.pid, 0);
  const std::string head = Lines(csv, 0, 1800);
  ASSERT_EQ(write(run.stdin_fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  // The pipe stays open and quiet: riffle blocks in read() until the signal.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(run.pid, SIGTERM);
  int status = 0;
  waitpid(run.pid, &status, 0);
  close(run.stdin_fd);
  const std::string output = ReadFile(log);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT) << output;
  EXPECT_EQ(JsonField(output, "interrupted"), "true") << output;
  EXPECT_EQ(JsonField(output, "rows"), "1800") << output;

  CommandResult resumed =
      RunRiffle("eval --data " + full + " --target y --json --checkpoint-dir " + dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(JsonField(resumed.output, "skipped_rows"), "1800");
  for (const char* key : {"accuracy", "log_loss", "roc_auc", "macro_f1"}) {
    EXPECT_EQ(JsonField(resumed.output, key), JsonField(reference.output, key)) << key;
  }
}

TEST_F(RiffleCkptCliTest, ADamagedNewestGenerationFallsBackWithAWarning) {
  const std::string csv = MakeCsv(2000, 7);
  const std::string part = WriteFile("part.csv", Lines(csv, 0, 1700));
  const std::string full = WriteFile("full.csv", csv);
  const std::string dir = TempPath("store");
  ASSERT_EQ(RunRiffle("eval --data " + part + " --target y --checkpoint-dir " + dir +
                      " --checkpoint-every-rows 500")
                .exit_code,
            0);
  // Damage the newest generation (the final one, after 1700 rows).
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().string() > newest) newest = entry.path().string();
  }
  ASSERT_FALSE(newest.empty());
  std::string bytes = ReadFile(newest);
  bytes[bytes.size() - 3] ^= 0x01;
  std::ofstream(newest, std::ios::binary | std::ios::trunc) << bytes;

  CommandResult r = RunRiffle("eval --data " + full + " --target y --json --checkpoint-dir " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: checkpoint generation"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("falling back"), std::string::npos) << r.output;
  // The older generation had learned fewer rows; the run resumes from there.
  EXPECT_NE(JsonField(r.output, "skipped_rows"), "1700") << r.output;
  EXPECT_EQ(JsonField(r.output, "rows"), "2000") << r.output;
}

}  // namespace
}  // namespace riffle::service
