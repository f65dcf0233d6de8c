#include "service/serve_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace riffle::service {
namespace {

using ::testing::HasSubstr;

std::string Error(const std::string& yaml) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(yaml, "riffle.yaml");
  EXPECT_FALSE(c.ok());
  return std::string(c.status().message());
}

TEST(ServeConfigTest, ParsesEveryKey) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig(R"(
listen: 0.0.0.0:6000
checkpoint: {dir: /var/lib/riffle, every_events: 5000, every_seconds: 30, keep: 3}
limits: {max_batch: 100, max_inflight: 50, max_message_bytes: 1048576}
log: {level: debug, format: json}
security:
  auth_token_file: /etc/riffle/token
  tls: {cert: s.crt, key: s.key, client_ca: ca.crt}
shutdown_grace_seconds: 2.5
ready_file: /tmp/ready
models:
  - name: fraud
    spec:
      learner: logreg
      learner_options: {optimizer: adam, lr: 0.01}
      classes: ["0", "1"]
      metrics_window: 500
      features:
        undeclared: IGNORE
        declared:
          - {name: amount, kind: NUMERIC, scaling: MIN_MAX, missing_indicator: true}
          - {name: card, kind: HASHED, hash_buckets: 4096, hash_seed: 7}
)",
                                                   "riffle.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.listen, "0.0.0.0:6000");
  EXPECT_EQ(c->checkpoint_dir, "/var/lib/riffle");
  EXPECT_EQ(c->checkpoint.every_events, 5000u);
  EXPECT_EQ(c->checkpoint.every_seconds, 30);
  EXPECT_EQ(c->checkpoint.keep, 3u);
  EXPECT_EQ(c->server.limits.max_batch, 100u);
  EXPECT_EQ(c->server.limits.max_inflight, 50u);
  EXPECT_EQ(c->server.max_message_bytes, 1048576u);
  EXPECT_EQ(c->log.level, LogLevel::kDebug);
  EXPECT_TRUE(c->log.json);
  EXPECT_EQ(c->auth_token_file, "/etc/riffle/token");
  EXPECT_EQ(c->server.tls.client_ca_file, "ca.crt");
  EXPECT_EQ(c->shutdown_grace_seconds, 2.5);
  ASSERT_EQ(c->models.size(), 1u);
  const riffle::v1::ModelSpec& spec = c->models[0].spec;
  EXPECT_EQ(spec.learner_options().at("lr"), "0.01");
  EXPECT_EQ(spec.metrics_window(), 500u);
  EXPECT_EQ(spec.features().undeclared(), riffle::v1::FeatureSpec::IGNORE);
  ASSERT_EQ(spec.features().declared_size(), 2);
  EXPECT_TRUE(spec.features().declared(0).missing_indicator());
  EXPECT_EQ(spec.features().declared(1).hash_buckets(), 4096u);
}

TEST(ServeConfigTest, AModelCanStartFromACheckpointFile) {
  absl::StatusOr<ServeConfig> c =
      ParseServeConfig("models: [{name: credit, from_checkpoint: /models/credit.riffle}]", "x");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->models[0].from_checkpoint, "/models/credit.riffle");
  EXPECT_THAT(Error("models: [{name: a, from_checkpoint: f, spec: {learner: logreg}}]"),
              HasSubstr("models[0]: give spec or from_checkpoint, not both"));
  EXPECT_THAT(Error("models: [{name: a}]"), HasSubstr("models[0].spec: required"));
}

TEST(ServeConfigTest, EmptyFileMeansDefaults) {
  absl::StatusOr<ServeConfig> c = ParseServeConfig("", "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server.listen, "127.0.0.1:50051");  // loopback by default
  EXPECT_TRUE(c->checkpoint_dir.empty());
}

TEST(ServeConfigTest, ErrorsNameTheKey) {
  EXPECT_THAT(Error("listn: x:1"), HasSubstr("riffle.yaml: listn: unknown key"));
  EXPECT_THAT(Error("checkpoint: {every_seconds: soon}"),
              HasSubstr("checkpoint.every_seconds: expected a number"));
  EXPECT_THAT(Error("checkpoint: {keep: 0}"), HasSubstr("checkpoint.keep"));
  EXPECT_THAT(Error("log: {level: loud}"), HasSubstr("log.level"));
  EXPECT_THAT(Error("models: [{name: a, spec: {learner: nope}}]"),
              HasSubstr("models[0].spec.learner: unknown learner 'nope'"));
  EXPECT_THAT(Error("models: [{name: a, spec: {learner: logreg, learner_options: {lr: fast}}}]"),
              HasSubstr("models[0].spec.learner_options: option 'lr'"));
  EXPECT_THAT(Error("models: [{name: a, spec: {learner: logreg, colour: red}}]"),
              HasSubstr("models[0].spec"));
  EXPECT_THAT(
      Error("models: [{name: a, spec: {learner: logreg}}, {name: a, spec: {learner: logreg}}]"),
      HasSubstr("models[1].name: 'a' is declared twice"));
  EXPECT_THAT(Error("listen: [1, 2"), HasSubstr("not valid YAML"));
  EXPECT_THAT(Error("security: {tls: {cert: a.crt}}"), HasSubstr("tls: cert and key"));
  EXPECT_THAT(Error("listen: nocolon"), HasSubstr("listen: expected host:port"));
}

}  // namespace
}  // namespace riffle::service
