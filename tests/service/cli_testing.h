#ifndef RIFFLE_TESTS_SERVICE_CLI_TESTING_H_
#define RIFFLE_TESTS_SERVICE_CLI_TESTING_H_

// Running the real `riffle` binary from tests (the CLI tests of every subcommand).

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace riffle::service::testing {

// The binary built next to the tests.
inline std::string RiffleBinary() { return std::string(RIFFLE_BINARY_DIR) + "/service/riffle"; }

struct CommandResult {
  int exit_code = -1;  // -1 if the process did not exit normally
  std::string output;  // stdout and stderr, interleaved
};

// Runs `riffle <args>` through the shell (so args may hold redirections and pipes).
inline CommandResult RunRiffle(const std::string& args) {
  const std::string command = RiffleBinary() + " " + args + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace riffle::service::testing

#endif  // RIFFLE_TESTS_SERVICE_CLI_TESTING_H_
