// The `http:` section of the `riffle serve` config and its flags (kept apart from
// serve_config_test.cc, which other changes edit).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "../checkpoints/checkpoint_testing.h"
#include "cli_testing.h"
#include "service/serve_command.h"
#include "service/serve_config.h"

namespace riffle::service {
namespace {

using ::riffle::checkpoints::testing::ScopedTempDir;
using ::riffle::checkpoints::testing::WriteBytes;
using ::riffle::service::testing::CommandResult;
using ::riffle::service::testing::RunRiffle;
using ::testing::HasSubstr;

std::string Error(const std::string& yaml) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(yaml, "riffle.yaml");
  EXPECT_FALSE(c.ok());
  return std::string(c.status().message());
}

// ResolveServeConfig for `riffle serve <args>`.
absl::StatusOr<ServeConfig> Resolve(std::vector<std::string> args) {
  CLI::App app;
  ServeFlags flags;
  AddServeCommand(app, &flags);
  args.insert(args.begin(), {"riffle", "serve"});
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return ResolveServeConfig(flags, checkpoints::DefaultEnv());
}

TEST(ServeConfigHttpTest, ParsesTheHttpSection) {
  absl::StatusOr<ServeConfig> c =
      ParseServeConfig("http: {listen: \"127.0.0.1:9464\", ready_file: /tmp/http-ready}", "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->http_ready_file, "/tmp/http-ready");
  c = ParseServeConfig("http:\n  listen: \"[::1]:0\"\n", "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http.listen, "[::1]:0");
}

TEST(ServeConfigHttpTest, OffByDefault) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig("listen: 127.0.0.1:1", "x");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->http.listen.empty());
  EXPECT_TRUE(c->http_ready_file.empty());
  c = ParseServeConfig("http: {listen: \"\"}", "x");  // empty = off as well
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->http.listen.empty());
}

TEST(ServeConfigHttpTest, ErrorsNameTheKey) {
  EXPECT_THAT(Error("http: {lisen: 127.0.0.1:9464}"),
              HasSubstr("riffle.yaml: http.lisen: unknown key (known here: listen, ready_file)"));
  EXPECT_THAT(Error("http: 127.0.0.1:9464"), HasSubstr("http: expected a mapping"));
  EXPECT_THAT(Error("http: {listen: [1, 2]}"), HasSubstr("http.listen: expected a string"));
  EXPECT_THAT(Error("http: {listen: nocolon}"),
              HasSubstr("riffle.yaml: http.listen: expected host:port, got \"nocolon\""));
  EXPECT_THAT(Error("http: {listen: \"127.0.0.1:70000\"}"),
              HasSubstr("http.listen: port 70000 is above 65535"));
  EXPECT_THAT(Error("http: {ready_file: /tmp/x}"),
              HasSubstr("http.ready_file: requires http.listen"));
}

TEST(ServeConfigHttpTest, FlagsSetAndOverrideTheConfig) {
  absl::StatusOr<ServeConfig> c = Resolve({"--http-listen", "127.0.0.1:0"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http.listen, "127.0.0.1:0");
  EXPECT_TRUE(Resolve({}).value().http.listen.empty());

  ScopedTempDir dir;
  WriteBytes(dir.File("riffle.yaml"),
             "http: {listen: \"127.0.0.1:9464\", ready_file: " + dir.File("a") + "}\n");
  c = Resolve({"--config", dir.File("riffle.yaml")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->http_ready_file, dir.File("a"));
  c = Resolve({"--config", dir.File("riffle.yaml"), "--http-listen", "0.0.0.0:9000",
               "--http-ready-file", dir.File("b")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http.listen, "0.0.0.0:9000");
  EXPECT_EQ(c->http_ready_file, dir.File("b"));
  // An empty flag turns the config's endpoint off (its ready file then has nothing to name).
  c = Resolve({"--config", dir.File("riffle.yaml"), "--http-listen", "", "--http-ready-file", ""});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->http.listen.empty());

  c = Resolve({"--http-listen", "nocolon"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("http.listen: expected host:port"));
  c = Resolve({"--http-ready-file", "/tmp/x"});
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("http.ready_file: requires http.listen"));
}

TEST(ServeConfigHttpTest, TheBinaryRejectsABadAddressAsAUsageError) {
  const CommandResult r = RunRiffle("serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:http");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("http.listen: expected host:port, got \"127.0.0.1:http\""));
}

}  // namespace
}  // namespace riffle::service
