#include "service/serve_command.h"

#include <google/protobuf/util/message_differencer.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "checkpoints/env.h"
#include "service/alerts.h"
#include "service/dashboard.h"
#include "service/http_endpoint.h"
#include "service/kafka_metrics.h"
#include "service/metrics_history.h"
#include "service/metrics_sources.h"
#include "service/model_import.h"
#include "service/model_registry.h"
#include "service/served_model.h"
#include "service/server.h"

namespace riffle::service {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// "name=value" of a model flag: the name (validated, not declared yet) and the value, returned
// in from_checkpoint for the caller to place.
absl::StatusOr<DeclaredModel> ParseModelFlag(std::string_view flag, std::string_view value_name,
                                             const std::string& text,
                                             const std::vector<DeclaredModel>& declared) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: expected name=%s, got \"%s\"", flag, value_name, text));
  }
  DeclaredModel model;
  model.name = text.substr(0, eq);
  model.from_checkpoint = text.substr(eq + 1);
  if (absl::Status s = ValidateModelName(model.name); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", flag, s.message()));
  }
  for (const DeclaredModel& existing : declared) {
    if (existing.name == model.name) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' is declared twice", flag, model.name));
    }
  }
  return model;
}

bool Given(const ServeFlags& flags, const char* name) {
  return flags.command != nullptr && flags.command->count(name) > 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, ServeFlags* flags) {
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Serve models over gRPC (riffle.v1: predict, learn, model lifecycle, metrics,\n"
      "checkpoints; grpc.health.v1 and reflection). Models restore from their newest valid\n"
      "checkpoint on start; SIGINT/SIGTERM stop gracefully with a final checkpoint.\n"
      "Every key of the YAML config (docs/SERVING.md) has a flag; flags win.");
  flags->command = serve;
  serve->add_option("--config", flags->config_file, "YAML config file");
  serve->add_option("--listen", flags->listen, "host:port to listen on (default 127.0.0.1:50051)");
  serve->add_option("--checkpoint-dir", flags->checkpoint_dir,
                    "Root of the per-model checkpoint stores (<dir>/<model>/)");
  serve->add_option("--checkpoint-every-events", flags->checkpoint_every_events,
                    "Checkpoint a model after this many learned events (0: off; default 100000)");
  serve->add_option("--checkpoint-every-seconds", flags->checkpoint_every_seconds,
                    "Checkpoint a model that learned something this often (0: off; default 60)");
  serve->add_option("--checkpoint-keep", flags->checkpoint_keep,
                    "Checkpoint generations kept per model (default 5)");
  serve->add_option("--max-batch", flags->max_batch,
                    "Most instances or examples per request (default 10000)");
  serve->add_option("--max-inflight", flags->max_inflight,
                    "Calls handled at once; beyond, RESOURCE_EXHAUSTED (default 1000)");
  serve->add_option("--max-message-bytes", flags->max_message_bytes,
                    "Largest gRPC message (default 64 MiB)");
  serve->add_option("--log-level", flags->log_level, "debug, info, warn, error or off");
  serve->add_option("--log-format", flags->log_format, "text or json (JSON lines)");
  serve->add_option("--auth-token-file", flags->auth_token_file,
                    "File with the bearer token the mutating calls must present");
  serve->add_option("--tls-cert", flags->tls_cert, "Server certificate (PEM); enables TLS");
  serve->add_option("--tls-key", flags->tls_key, "Server private key (PEM)");
  serve->add_option("--tls-client-ca", flags->tls_client_ca,
                    "CA (PEM) that client certificates must be signed by (mutual TLS)");
  serve->add_option("--ready-file", flags->ready_file,
                    "Write the bound host:port here once serving (useful with port 0)");
  serve->add_option("--http-listen", flags->http_listen,
                    "host:port of the HTTP endpoint (/metrics for Prometheus, /healthz, "
                    "/readyz); off unless given, e.g. 127.0.0.1:9464");
  serve->add_option("--http-ready-file", flags->http_ready_file,
                    "Write the HTTP endpoint's bound host:port here once it serves");
  serve->add_option("--shutdown-grace-seconds", flags->shutdown_grace_seconds,
                    "How long shutdown waits for calls in flight (default 10)");
  serve->add_option("--model", flags->models,
                    "name=learner: declare a model with that learner and default options "
                    "(repeatable)");
  serve->add_option("--kafka", flags->kafka,
                    "Kafka for the models with a kafka: key: the brokers' bootstrap servers "
                    "(host:port,...), or 'embedded' for librdkafka's in-process mock cluster "
                    "(nothing to install; data in memory only; see docs/KAFKA.md)");
  serve->add_option("--model-from-checkpoint", flags->models_from_checkpoint,
                    "name=FILE: serve a model trained offline (`riffle eval "
                    "--save-checkpoint FILE`) unless its store already holds it (repeatable)");
}

absl::StatusOr<ServeConfig> ResolveServeConfig(const ServeFlags& flags, checkpoints::Env* env) {
  ServeConfig c;
  if (!flags.config_file.empty()) {
    absl::StatusOr<std::string> text = env->ReadFile(flags.config_file, 16u << 20);
    if (!text.ok()) return text.status();
    absl::StatusOr<ServeConfig> parsed = ParseServeConfig(*text, flags.config_file);
    if (!parsed.ok()) return parsed.status();
    c = *std::move(parsed);
  }
  if (Given(flags, "--listen")) c.server.listen = flags.listen;
  if (Given(flags, "--checkpoint-dir")) c.checkpoint_dir = flags.checkpoint_dir;
  if (Given(flags, "--checkpoint-every-events")) {
    c.checkpoint.every_events = flags.checkpoint_every_events;
  }
  if (Given(flags, "--checkpoint-every-seconds")) {
    c.checkpoint.every_seconds = flags.checkpoint_every_seconds;
  }
  if (Given(flags, "--checkpoint-keep")) c.checkpoint.keep = flags.checkpoint_keep;
  if (Given(flags, "--max-batch")) c.server.limits.max_batch = flags.max_batch;
  if (Given(flags, "--max-inflight")) c.server.limits.max_inflight = flags.max_inflight;
  if (Given(flags, "--max-message-bytes")) c.server.max_message_bytes = flags.max_message_bytes;
  if (Given(flags, "--log-level")) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(flags.log_level);
    if (!level.ok())
      return absl::InvalidArgumentError(
          absl::StrFormat("--log-level: %s", level.status().message()));
    c.log.level = *level;
  }
  if (Given(flags, "--log-format")) {
    if (flags.log_format != "text" && flags.log_format != "json") {
      return absl::InvalidArgumentError(
          absl::StrFormat("--log-format: \"%s\" is not text or json", flags.log_format));
    }
    c.log.json = flags.log_format == "json";
  }
  if (Given(flags, "--auth-token-file")) {
    c.auth_token_file = flags.auth_token_file;
    c.server.auth_token.clear();
  }
  if (Given(flags, "--tls-cert")) c.server.tls.cert_file = flags.tls_cert;
  if (Given(flags, "--tls-key")) c.server.tls.key_file = flags.tls_key;
  if (Given(flags, "--tls-client-ca")) c.server.tls.client_ca_file = flags.tls_client_ca;
  if (Given(flags, "--ready-file")) c.ready_file = flags.ready_file;
  if (Given(flags, "--http-listen")) c.http.listen = flags.http_listen;
  if (Given(flags, "--http-ready-file")) c.http_ready_file = flags.http_ready_file;
  if (Given(flags, "--kafka")) {
    if (flags.kafka.empty()) return absl::InvalidArgumentError("--kafka: empty");
    c.kafka_embedded = flags.kafka == "embedded";
    if (!c.kafka_embedded) c.kafka.properties["bootstrap.servers"] = flags.kafka;
  }
  if (Given(flags, "--shutdown-grace-seconds")) {
    c.shutdown_grace_seconds = flags.shutdown_grace_seconds;
  }
  for (const std::string& m : flags.models) {
    absl::StatusOr<DeclaredModel> model = ParseModelFlag("--model", "learner", m, c.models);
    if (!model.ok()) return model.status();
    model->spec.set_learner(model->from_checkpoint);
    model->from_checkpoint.clear();
    if (absl::StatusOr<ModelDefinition> d = DefinitionFromSpec(model->spec); !d.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("--model %s: %s", m, d.status().message()));
    }
    c.models.push_back(*std::move(model));
  }
  for (const std::string& m : flags.models_from_checkpoint) {
    absl::StatusOr<DeclaredModel> model =
        ParseModelFlag("--model-from-checkpoint", "FILE", m, c.models);
    if (!model.ok()) return model.status();
    c.models.push_back(*std::move(model));
  }
  if (!c.auth_token_file.empty()) {
    absl::StatusOr<std::string> token = env->ReadFile(c.auth_token_file, 64 * 1024);
    if (!token.ok()) {
      return absl::Status(token.status().code(),
                          absl::StrFormat("auth token file: %s", token.status().message()));
    }
    c.server.auth_token = std::string(absl::StripAsciiWhitespace(*token));
    if (c.server.auth_token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("auth token file %s is empty", c.auth_token_file));
    }
    c.auth_token_file.clear();  // resolved: the token is in server.auth_token now
  }
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

absl::Status RunServer(const ServeConfig& config, Logger* logger, const std::atomic<bool>* stop,
                       checkpoints::Env* env, const KafkaClientFactory& kafka) {
  TuneAllocatorForServing();
  // Kafka settings are checked before anything starts; the brokers are contacted only later.
  bool any_kafka = false;
  for (const DeclaredModel& declared : config.models) {
    if (!declared.kafka.has_value()) continue;
    any_kafka = true;
    if (!config.kafka_embedded && !config.kafka.properties.contains("bootstrap.servers")) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model '%s' has a kafka: key but no brokers are configured (kafka.bootstrap_servers, "
          "kafka.embedded: true, or --kafka)",
          declared.name));
    }
  }
  if (any_kafka && !kafka.available()) {
    return absl::FailedPreconditionError(
        "models have a kafka: key, but this riffle build has no Kafka client (a "
        "ThreadSanitizer build)");
  }
  KafkaOptions kafka_options = config.kafka;
  std::unique_ptr<EmbeddedKafka> embedded;
  if (any_kafka && config.kafka_embedded) {
    if (!kafka.new_embedded) {
      return absl::FailedPreconditionError("this riffle build has no embedded Kafka");
    }
    absl::StatusOr<std::unique_ptr<EmbeddedKafka>> cluster = kafka.new_embedded();
    if (!cluster.ok()) return cluster.status();
    embedded = *std::move(cluster);
    kafka_options.properties["bootstrap.servers"] = embedded->bootstrap_servers();
    for (const DeclaredModel& declared : config.models) {
      if (!declared.kafka.has_value()) continue;
      std::vector<std::string> topics = declared.kafka->events_topics;
      for (const std::string& t : {declared.kafka->labels_topic, declared.kafka->predictions_topic,
                                   declared.kafka->DeadLetterTopic()}) {
        if (!t.empty()) topics.push_back(t);
      }
      for (const KafkaRoute& route : declared.kafka->routes) topics.push_back(route.topic);
      for (const std::string& t : topics) {
        if (absl::Status s = embedded->CreateTopic(t, 1); !s.ok()) return s;
      }
    }
    logger->Info(absl::StrFormat(
        "embedded Kafka (librdkafka's mock cluster, in memory) at %s: point producers and "
        "consumers there, e.g. riffle replay --bootstrap %s",
        embedded->bootstrap_servers(), embedded->bootstrap_servers()));
  }

  RegistryOptions registry_options;
  registry_options.env = env;
  registry_options.checkpoint_dir = config.checkpoint_dir;
  registry_options.schedule = config.checkpoint;
  ModelRegistry registry(registry_options);

  const RestoreReport report = registry.RestoreAll();
  for (const RestoreReport::Restored& r : report.restored) {
    for (const std::string& fallback : r.fallbacks) {
      logger->Warn(absl::StrFormat("model '%s': skipped damaged checkpoint %s", r.name, fallback));
    }
    logger->Info(
        absl::StrFormat("model '%s' restored from checkpoint generation %d", r.name, r.generation));
  }
  for (const std::string& e : report.errors) logger->Error(e);
  if (config.checkpoint_dir.empty()) {
    logger->Warn("no checkpoint directory: models live in memory only and are lost on exit");
  }
  for (const DeclaredModel& declared : config.models) {
    absl::StatusOr<std::shared_ptr<ServedModel>> existing = registry.Get(declared.name);
    if (existing.ok() && !declared.from_checkpoint.empty()) {
      logger->Info(absl::StrFormat("model '%s': its store has checkpoints; %s is not loaded again",
                                   declared.name, declared.from_checkpoint));
      continue;
    }
    if (!declared.from_checkpoint.empty()) {
      absl::StatusOr<checkpoints::ModelState> state =
          checkpoints::ReadModelCheckpointFile(env, declared.from_checkpoint);
      if (state.ok()) state = ServableFromCheckpoint(*std::move(state), declared.name);
      absl::StatusOr<std::shared_ptr<ServedModel>> created =
          state.ok() ? registry.CreateFromState(*std::move(state))
                     : absl::StatusOr<std::shared_ptr<ServedModel>>(state.status());
      if (!created.ok()) {
        return absl::Status(created.status().code(),
                            absl::StrFormat("model '%s' from %s: %s", declared.name,
                                            declared.from_checkpoint, created.status().message()));
      }
      const ModelInfo info = (*created)->Info();
      logger->Info(absl::StrFormat(
          "model '%s' started from %s (%s, %d labeled events, classes: %d)", declared.name,
          declared.from_checkpoint, info.definition.learner, info.labeled, info.classes.size()));
      continue;
    }
    if (existing.ok()) {
      if (!google::protobuf::util::MessageDifferencer::Equivalent(
              (*existing)->Info().definition.spec, declared.spec)) {
        logger->Warn(absl::StrFormat(
            "model '%s': the config's spec differs from the restored checkpoint's; serving the "
            "checkpoint (DeleteModel and re-create it to apply the new spec)",
            declared.name));
      }
      continue;
    }
    absl::StatusOr<std::shared_ptr<ServedModel>> created =
        registry.Create(declared.name, declared.spec);
    if (!created.ok()) {
      return absl::Status(created.status().code(), absl::StrFormat("model '%s': %s", declared.name,
                                                                   created.status().message()));
    }
    logger->Info(
        absl::StrFormat("model '%s' created (learner %s)", declared.name, declared.spec.learner()));
  }

  absl::StatusOr<std::unique_ptr<RiffleServer>> server =
      RiffleServer::Start(config.server, &registry, logger, env);
  if (!server.ok()) return server.status();
  const std::string host = config.server.listen.substr(0, config.server.listen.rfind(':'));
  const std::string address = absl::StrFormat("%s:%d", host, (*server)->port());
  logger->Info(
      absl::StrFormat("serving riffle.v1 on %s (%s, %s)", address,
                      config.server.tls.enabled() ? "TLS" : "plaintext",
                      config.server.auth_token.empty() ? "no token" : "token for mutating calls"));
  // The process's metrics: one collector serves /metrics and feeds the history (sampled each
  // second below), which the dashboard draws and the alert rules evaluate; so both exist even
  // without the HTTP endpoint. Sources, collector, history and dashboard outlive the endpoint
  // (declared first).
  ModelMetricsSource model_metrics(&registry, env);
  ProcessMetricsSource process_metrics;
  MetricsCollector collector(logger);
  collector.AddSource(&model_metrics);
  collector.AddSource(&process_metrics);
  MetricsHistory history;
  Dashboard dashboard(&history, DashboardOptions());
  // Alert rules (the `alerts:` section) read that history after each sample; their own
  // counters join the collector. Declared before the endpoint, so it stops scraping first.
  std::unique_ptr<AlertManager> alerts;
  if (config.alerts.has_value()) {
    absl::StatusOr<std::unique_ptr<AlertManager>> created =
        AlertManager::Create(*config.alerts, env, logger);
    if (!created.ok()) {
      (*server)->Shutdown(std::chrono::milliseconds(0));
      return created.status();
    }
    alerts = *std::move(created);
    collector.AddSource(alerts.get());
    absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(config.alerts->webhook);
    logger->Info(absl::StrFormat(
        "alerts: %d rule%s, evaluated every %g s, posted to %s", config.alerts->rules.size(),
        config.alerts->rules.size() == 1 ? "" : "s", config.alerts->evaluate_every_seconds,
        url.ok() ? url->Origin() : "the webhook"));
  }
  // The HTTP endpoint, when asked for: up before the ready file is written, so a script that
  // waits for that file finds it serving too.
  std::unique_ptr<HttpEndpoint> http;
  if (!config.http.listen.empty()) {
    const RiffleServer* grpc_server = server->get();
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> started = HttpEndpoint::Start(
        config.http, &collector, &dashboard,
        [grpc_server] {
          return grpc_server->serving()
                     ? absl::OkStatus()
                     : absl::UnavailableError("the gRPC server is not serving (shutting down)");
        },
        logger);
    if (!started.ok()) {
      (*server)->Shutdown(std::chrono::milliseconds(0));
      return started.status();
    }
    http = *std::move(started);
    logger->Info(absl::StrFormat(
        "serving /metrics, /healthz and /readyz on http://%s; dashboard: http://%s/dashboard/",
        http->address(), http->address()));
    if (!config.http_ready_file.empty()) {
      if (absl::Status s =
              checkpoints::WriteFileAtomically(env, config.http_ready_file, http->address() + "\n");
          !s.ok()) {
        (*server)->Shutdown(std::chrono::milliseconds(0));
        return s;
      }
    }
  }
  if (!config.ready_file.empty()) {
    const std::string line = address + "\n";
    if (absl::Status s = checkpoints::WriteFileAtomically(env, config.ready_file, line); !s.ok()) {
      (*server)->Shutdown(std::chrono::milliseconds(0));
      return s;
    }
  }

  // The Kafka path starts after gRPC serves: a broker that is down delays only this path.
  std::vector<std::unique_ptr<KafkaPipeline>> pipelines;
  for (const DeclaredModel& declared : config.models) {
    if (!declared.kafka.has_value()) continue;
    absl::StatusOr<std::shared_ptr<ServedModel>> model = registry.Get(declared.name);
    if (!model.ok()) return model.status();
    KafkaModelOptions model_options = *declared.kafka;
    model_options.model = declared.name;
    pipelines.push_back(std::make_unique<KafkaPipeline>(kafka_options, std::move(model_options),
                                                        *std::move(model), kafka, logger, env));
    // NOT_SERVING (not unknown) from the start; the timer below follows the path's state.
    (*server)->SetHealth(KafkaHealthName(declared.name), false);
    pipelines.back()->Start();
  }

  std::vector<const KafkaPipeline*> pipeline_views;
  for (const std::unique_ptr<KafkaPipeline>& p : pipelines) pipeline_views.push_back(p.get());
  KafkaMetricsSource kafka_metrics(std::move(pipeline_views));
  if (!pipelines.empty()) {
    collector.AddSource(&kafka_metrics);
    // The dashboard's latest flagged predictions: the routed copies of every Kafka path.
    dashboard.SetFlaggedPredictions([&pipelines] {
      std::vector<FlaggedPrediction> flagged;
      for (const std::unique_ptr<KafkaPipeline>& p : pipelines) {
        for (RoutedPrediction& r : p->RecentRouted()) {
          flagged.push_back({p->model_name(), std::move(r.topic), std::move(r.key),
                             std::move(r.value), r.time_micros});
        }
      }
      return flagged;
    });
  }

  // A first sample of the metrics history at once, so the dashboard has a point to show.
  history.Record(static_cast<double>(env->NowMicros()) / 1e6, collector.Collect());
  auto last_tick = std::chrono::steady_clock::now();
  while (!stop->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() - last_tick >= std::chrono::seconds(1)) {
      registry.Tick();
      for (const std::unique_ptr<KafkaPipeline>& p : pipelines) {
        (*server)->SetHealth(KafkaHealthName(p->model_name()), p->connected());
      }
      // The metrics history (dashboard, alert rules): one sample a second.
      history.Record(static_cast<double>(env->NowMicros()) / 1e6, collector.Collect());
      // Alert rules on the sample just taken; notifications leave on the alerts' own thread.
      if (alerts != nullptr) alerts->Evaluate(history);
      last_tick = std::chrono::steady_clock::now();
    }
  }
  // Alerts first: delivering what is queued (bounded by alerts.flush_seconds) while nothing
  // new is evaluated.
  if (alerts != nullptr) {
    alerts->Stop();
    collector.RemoveSource(alerts.get());
  }
  if (!pipelines.empty()) logger->Info("stopping: the Kafka path finishes its batches");
  for (const std::unique_ptr<KafkaPipeline>& p : pipelines) {
    p->Stop();
    (*server)->SetHealth(KafkaHealthName(p->model_name()), false);
    const KafkaPipelineStats st = p->stats();
    logger->Info(absl::StrFormat(
        "kafka model '%s': %d records, %d predictions, %d labels joined, %d missed, %d dead "
        "letters",
        p->model_name(), st.records, st.predictions, st.labels_joined, st.labels_missed,
        st.dead_letters));
  }
  logger->Info("stopping: finishing calls in flight");
  (*server)->Shutdown(
      std::chrono::milliseconds(static_cast<std::int64_t>(config.shutdown_grace_seconds * 1000)));
  absl::Status final_checkpoints = registry.CheckpointAll();
  for (const std::shared_ptr<ServedModel>& model : registry.List()) {
    const ModelInfo info = model->Info();
    logger->Info(absl::StrFormat("model '%s': %d labeled events, checkpoint generation %d",
                                 info.name, info.labeled, info.generation));
  }
  // Last: /healthz answers during the final checkpoints (/readyz has said 503 since Shutdown).
  if (http != nullptr) http->Stop();
  if (!final_checkpoints.ok()) return final_checkpoints;
  logger->Info("stopped");
  return absl::OkStatus();
}

int RunServeCommand(const ServeFlags& flags, const std::atomic<bool>* stop,
                    const KafkaClientFactory& kafka) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex lock (gRPC's and ours) also
  // maintains a lock-order graph for deadlock detection: 2-6% of the server's CPU in profiles
  // (docs/BENCHMARKS.md). The tests keep it on; the serving binary does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  checkpoints::Env* env = checkpoints::DefaultEnv();
  absl::StatusOr<ServeConfig> config = ResolveServeConfig(flags, env);
  if (!config.ok()) {
    std::fprintf(stderr, "riffle serve: error: %s\n",
                 std::string(config.status().message()).c_str());
    return absl::IsInvalidArgument(config.status()) ? kExitUsage : kExitFailure;
  }
  std::unique_ptr<Logger> logger = MakeStderrLogger(config->log);
  absl::Status s = RunServer(*config, logger.get(), stop, env, kafka);
  if (!s.ok()) {
    logger->Error(absl::StrFormat("riffle serve: %s", s.message()));
    return kExitFailure;
  }
  return 0;
}

}  // namespace riffle::service
