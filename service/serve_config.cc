#include "service/serve_config.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <exception>
#include <functional>
#include <set>

#include "absl/strings/str_format.h"
#include "service/json.h"
#include "service/model_definition.h"

namespace riffle::service {
namespace {

absl::Status KeyError(std::string_view path, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", path, what));
}

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : absl::StrFormat("%s.%s", path, key);
}

// Rejects keys of `node` (a map) that are not in `known`.
absl::Status CheckKeys(const YAML::Node& node, std::string_view path,
                       std::initializer_list<std::string_view> known) {
  if (!node.IsMap()) return KeyError(path.empty() ? "config" : path, "expected a mapping");
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return KeyError(Join(path, key), absl::StrFormat("unknown key (known here: %s)", list));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadString(const YAML::Node& parent, std::string_view key, std::string_view path,
                        std::string* out) {
  const YAML::Node node = parent[std::string(key)];
  if (!node) return absl::OkStatus();
  if (!node.IsScalar()) return KeyError(Join(path, key), "expected a string");
  *out = node.as<std::string>();
  return absl::OkStatus();
}

template <typename T>
absl::Status ReadNumber(const YAML::Node& parent, std::string_view key, std::string_view path,
                        T* out, double low, double high) {
  const YAML::Node node = parent[std::string(key)];
  if (!node) return absl::OkStatus();
  double v = 0;
  if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
    return KeyError(Join(path, key), "expected a number");
  }
  if (v < low || v > high) {
    return KeyError(Join(path, key), absl::StrFormat("%g is outside [%g, %g]", v, low, high));
  }
  if constexpr (std::is_integral_v<T>) {
    if (v != std::floor(v)) return KeyError(Join(path, key), "expected a whole number");
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

// YAML to JSON text for the protobuf JSON parser. Scalars become JSON strings (proto3 JSON
// accepts numbers and enum names as strings), except true/false, which become booleans.
void AppendJson(const YAML::Node& node, std::string* out) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      out->push_back('{');
      bool first = true;
      for (const auto& entry : node) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(out, entry.first.as<std::string>());
        out->push_back(':');
        AppendJson(entry.second, out);
      }
      out->push_back('}');
      break;
    }
    case YAML::NodeType::Sequence: {
      out->push_back('[');
      for (std::size_t i = 0; i < node.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJson(node[i], out);
      }
      out->push_back(']');
      break;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.as<std::string>();
      if (node.Tag() != "!" && (text == "true" || text == "false")) {
        out->append(text);
      } else {
        AppendJsonString(out, text);
      }
      break;
    }
    default:
      out->append("null");
  }
}

absl::Status ReadBool(const YAML::Node& parent, std::string_view key, std::string_view path,
                      bool* out) {
  const YAML::Node node = parent[std::string(key)];
  if (!node) return absl::OkStatus();
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, *out)) {
    return KeyError(Join(path, key), "expected true or false");
  }
  return absl::OkStatus();
}

// A map of librdkafka properties: every value a scalar, passed through as text.
absl::Status ReadProperties(const YAML::Node& parent, std::string_view key, std::string_view path,
                            KafkaProperties* out) {
  const YAML::Node node = parent[std::string(key)];
  if (!node) return absl::OkStatus();
  if (!node.IsMap()) return KeyError(Join(path, key), "expected a mapping of property: value");
  for (const auto& entry : node) {
    const std::string name = entry.first.as<std::string>();
    if (!entry.second.IsScalar()) {
      return KeyError(Join(Join(path, key), name), "expected a scalar value");
    }
    (*out)[name] = entry.second.as<std::string>();
  }
  return absl::OkStatus();
}

absl::Status ReadStringList(const YAML::Node& parent, std::string_view key, std::string_view path,
                            std::vector<std::string>* out) {
  const YAML::Node node = parent[std::string(key)];
  if (!node) return absl::OkStatus();
  out->clear();
  if (node.IsScalar()) {
    out->push_back(node.as<std::string>());
    return absl::OkStatus();
  }
  if (!node.IsSequence()) return KeyError(Join(path, key), "expected a string or a list");
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (!node[i].IsScalar()) {
      return KeyError(absl::StrFormat("%s[%d]", Join(path, key), i), "expected a string");
    }
    out->push_back(node[i].as<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseKafka(const YAML::Node& node, ServeConfig* c) {
  const std::string_view path = "kafka";
  if (absl::Status s =
          CheckKeys(node, path,
                    {"bootstrap_servers", "embedded", "properties", "consumer_properties",
                     "producer_properties", "batch_size", "decode_thread", "backoff_min_seconds",
                     "backoff_max_seconds", "max_delivery_attempts", "delivery_wait_seconds"});
      !s.ok()) {
    return s;
  }
  KafkaOptions& k = c->kafka;
  std::string bootstrap;
  std::vector<std::function<absl::Status()>> steps = {
      [&] { return ReadString(node, "bootstrap_servers", path, &bootstrap); },
      [&] { return ReadProperties(node, "properties", path, &k.properties); },
      [&] { return ReadProperties(node, "consumer_properties", path, &k.consumer_properties); },
      [&] { return ReadProperties(node, "producer_properties", path, &k.producer_properties); },
      [&] { return ReadNumber(node, "batch_size", path, &k.batch_size, 1, 100'000); },
      [&] { return ReadBool(node, "decode_thread", path, &k.decode_thread); },
      [&] {
        return ReadNumber(node, "backoff_min_seconds", path, &k.backoff_min_seconds, 0.001, 3600);
      },
      [&] {
        return ReadNumber(node, "backoff_max_seconds", path, &k.backoff_max_seconds, 0.001, 3600);
      },
      [&] {
        return ReadNumber(node, "max_delivery_attempts", path, &k.max_delivery_attempts, 1, 1000);
      },
      [&] {
        return ReadNumber(node, "delivery_wait_seconds", path, &k.delivery_wait_seconds, 0.1, 3600);
      },
  };
  for (auto& step : steps) {
    if (absl::Status s = step(); !s.ok()) return s;
  }
  if (const YAML::Node e = node["embedded"]) {
    if (!e.IsScalar() || !YAML::convert<bool>::decode(e, c->kafka_embedded)) {
      return KeyError("kafka.embedded", "expected true or false");
    }
  }
  if (!bootstrap.empty()) k.properties["bootstrap.servers"] = bootstrap;
  return absl::OkStatus();
}

absl::Status ParseModelKafka(const YAML::Node& node, std::string_view path, KafkaModelOptions* k) {
  if (absl::Status s = CheckKeys(node, path,
                                 {"events_topics", "events_topic", "labels_topic",
                                  "predictions_topic", "dead_letter_topic", "routes", "start",
                                  "group_id", "fields", "max_message_bytes", "format", "csv"});
      !s.ok()) {
    return s;
  }
  std::vector<std::function<absl::Status()>> steps = {
      [&] { return ReadStringList(node, "events_topics", path, &k->events_topics); },
      [&] { return ReadStringList(node, "events_topic", path, &k->events_topics); },
      [&] { return ReadString(node, "labels_topic", path, &k->labels_topic); },
      [&] { return ReadString(node, "predictions_topic", path, &k->predictions_topic); },
      [&] { return ReadString(node, "dead_letter_topic", path, &k->dead_letter_topic); },
      [&] { return ReadString(node, "start", path, &k->start); },
      [&] { return ReadString(node, "group_id", path, &k->group_id); },
      [&] {
        return ReadNumber(node, "max_message_bytes", path, &k->decoder.max_message_bytes, 1,
                          256.0 * 1024 * 1024);
      },
  };
  for (auto& step : steps) {
    if (absl::Status s = step(); !s.ok()) return s;
  }
  if (node["events_topics"] && node["events_topic"]) {
    return KeyError(path, "give events_topic or events_topics, not both");
  }
  std::string format = "json";
  if (absl::Status s = ReadString(node, "format", path, &format); !s.ok()) return s;
  if (format == "json") {
    k->format = KafkaFormat::kJson;
  } else if (format == "csv") {
    k->format = KafkaFormat::kCsv;
  } else {
    return KeyError(Join(path, "format"), absl::StrFormat("\"%s\" is not json or csv", format));
  }
  if (const YAML::Node c = node["csv"]) {
    // The headers of CSV records; their contents are checked by KafkaModelOptions::Validate,
    // as the decoders will read them.
    const std::string cpath = Join(path, "csv");
    if (k->format != KafkaFormat::kCsv) return KeyError(cpath, "only with format: csv");
    if (absl::Status s =
            CheckKeys(c, cpath, {"columns", "label_columns", "delimiter", "text_columns"});
        !s.ok()) {
      return s;
    }
    for (auto [key, out] :
         {std::pair{"columns", &k->csv.columns}, std::pair{"label_columns", &k->csv.label_columns},
          std::pair{"text_columns", &k->csv.text_columns}}) {
      if (absl::Status s = ReadStringList(c, key, cpath, out); !s.ok()) return s;
    }
    std::string delimiter(1, k->csv.delimiter);
    if (absl::Status s = ReadString(c, "delimiter", cpath, &delimiter); !s.ok()) return s;
    if (delimiter.size() != 1) {
      return KeyError(Join(cpath, "delimiter"),
                      absl::StrFormat("expected one character, got \"%s\"", delimiter));
    }
    k->csv.delimiter = delimiter[0];
  }
  if (const YAML::Node f = node["fields"]) {
    const std::string fpath = Join(path, "fields");
    if (absl::Status s = CheckKeys(f, fpath, {"id", "key", "time", "label"}); !s.ok()) return s;
    features::JsonDecoderOptions& d = k->decoder;
    for (auto [key, out] : {std::pair{"id", &d.id_field}, std::pair{"key", &d.key_field},
                            std::pair{"label", &d.label_field}}) {
      if (absl::Status s = ReadString(f, key, fpath, out); !s.ok()) return s;
    }
    if (absl::Status s = ReadStringList(f, "time", fpath, &d.time_fields); !s.ok()) return s;
  }
  if (const YAML::Node routes = node["routes"]) {
    if (!routes.IsSequence()) return KeyError(Join(path, "routes"), "expected a list");
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const std::string rpath = absl::StrFormat("%s[%d]", Join(path, "routes"), i);
      const YAML::Node r = routes[i];
      if (absl::Status s =
              CheckKeys(r, rpath, {"topic", "class", "min_probability", "field", "op", "value"});
          !s.ok()) {
        return s;
      }
      KafkaRoute route;
      std::vector<std::function<absl::Status()>> rsteps = {
          [&] { return ReadString(r, "topic", rpath, &route.topic); },
          [&] { return ReadString(r, "class", rpath, &route.class_name); },
          [&] { return ReadNumber(r, "min_probability", rpath, &route.min_probability, 0, 1); },
          [&] { return ReadString(r, "field", rpath, &route.field); },
          [&] { return ReadString(r, "op", rpath, &route.op); },
      };
      for (auto& step : rsteps) {
        if (absl::Status s = step(); !s.ok()) return s;
      }
      if (const YAML::Node v = r["value"]) {
        if (!v.IsScalar()) return KeyError(rpath + ".value", "expected a number or a text");
        double number = 0;
        if (YAML::convert<double>::decode(v, number) && std::isfinite(number) && v.Tag() != "!") {
          route.number = number;
        } else {
          route.compare_text = true;
          route.text = v.as<std::string>();
        }
      }
      k->routes.push_back(std::move(route));
    }
  }
  if (absl::Status s = k->Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s.%s", path, s.message()));
  }
  return absl::OkStatus();
}

// An optional number: left unset when the key is absent.
absl::Status ReadOptionalNumber(const YAML::Node& parent, std::string_view key,
                                std::string_view path, std::optional<double>* out) {
  if (!parent[std::string(key)]) return absl::OkStatus();
  double v = 0;
  if (absl::Status s = ReadNumber(parent, key, path, &v, -1e300, 1e300); !s.ok()) return s;
  *out = v;
  return absl::OkStatus();
}

// One entry of alerts.rules. Only the YAML shape is checked here; ranges and combinations are
// AlertRule::Validate's (run by ServeConfig::Validate, with the rule's path in the message).
absl::Status ParseAlertRule(const YAML::Node& node, std::string_view path, AlertRule* r) {
  if (absl::Status s =
          CheckKeys(node, path,
                    {"name", "kind", "model", "metric", "window", "labels", "function", "quantile",
                     "above", "below", "for_seconds", "window_seconds", "description"});
      !s.ok()) {
    return s;
  }
  std::string kind;
  std::vector<std::function<absl::Status()>> steps = {
      [&] { return ReadString(node, "name", path, &r->name); },
      [&] { return ReadString(node, "kind", path, &kind); },
      [&] { return ReadString(node, "model", path, &r->model); },
      [&] { return ReadString(node, "metric", path, &r->metric); },
      [&] { return ReadString(node, "window", path, &r->window); },
      [&] { return ReadString(node, "function", path, &r->function); },
      [&] { return ReadString(node, "description", path, &r->description); },
      [&] { return ReadOptionalNumber(node, "quantile", path, &r->quantile); },
      [&] { return ReadOptionalNumber(node, "above", path, &r->above); },
      [&] { return ReadOptionalNumber(node, "below", path, &r->below); },
      [&] { return ReadNumber(node, "for_seconds", path, &r->for_seconds, -1e300, 1e300); },
      [&] { return ReadNumber(node, "window_seconds", path, &r->window_seconds, -1e300, 1e300); },
  };
  for (auto& step : steps) {
    if (absl::Status s = step(); !s.ok()) return s;
  }
  if (!node["kind"]) {
    return KeyError(Join(path, "kind"), "required: metric, drift, lag or dead_letters");
  }
  absl::StatusOr<AlertKind> parsed = ParseAlertKind(kind);
  if (!parsed.ok()) return KeyError(Join(path, "kind"), std::string(parsed.status().message()));
  r->kind = *parsed;
  if (const YAML::Node labels = node["labels"]) {
    const std::string lpath = Join(path, "labels");
    if (!labels.IsMap()) return KeyError(lpath, "expected a mapping of label: value");
    for (const auto& entry : labels) {
      const std::string name = entry.first.as<std::string>();
      if (!entry.second.IsScalar()) return KeyError(Join(lpath, name), "expected a string");
      r->labels[name] = entry.second.as<std::string>();
    }
  }
  return absl::OkStatus();
}

absl::Status ParseAlerts(const YAML::Node& node, ServeConfig* c) {
  const std::string_view path = "alerts";
  if (absl::Status s = CheckKeys(
          node, path,
          {"webhook", "timeout_seconds", "max_attempts", "backoff_seconds", "backoff_max_seconds",
           "max_retry_after_seconds", "min_interval_seconds", "max_per_minute",
           "evaluate_every_seconds", "send_resolved", "queue_size", "flush_seconds", "rules"});
      !s.ok()) {
    return s;
  }
  AlertOptions& a = c->alerts.emplace();
  // Wide bounds: the ranges are AlertOptions::Validate's, reported with the same key path.
  std::vector<std::function<absl::Status()>> steps = {
      [&] { return ReadString(node, "webhook", path, &a.webhook); },
      [&] { return ReadNumber(node, "timeout_seconds", path, &a.timeout_seconds, -1e9, 1e9); },
      [&] { return ReadNumber(node, "max_attempts", path, &a.max_attempts, -1e9, 1e9); },
      [&] { return ReadNumber(node, "backoff_seconds", path, &a.backoff_seconds, -1e9, 1e9); },
      [&] {
        return ReadNumber(node, "backoff_max_seconds", path, &a.backoff_max_seconds, -1e9, 1e9);
      },
      [&] {
        return ReadNumber(node, "max_retry_after_seconds", path, &a.max_retry_after_seconds, -1e9,
                          1e9);
      },
      [&] {
        return ReadNumber(node, "min_interval_seconds", path, &a.min_interval_seconds, -1e9, 1e9);
      },
      [&] { return ReadNumber(node, "max_per_minute", path, &a.max_per_minute, -1e9, 1e9); },
      [&] {
        return ReadNumber(node, "evaluate_every_seconds", path, &a.evaluate_every_seconds, -1e9,
                          1e9);
      },
      [&] { return ReadBool(node, "send_resolved", path, &a.send_resolved); },
      [&] { return ReadNumber(node, "queue_size", path, &a.queue_size, 0, 1e9); },
      [&] { return ReadNumber(node, "flush_seconds", path, &a.flush_seconds, -1e9, 1e9); },
  };
  for (auto& step : steps) {
    if (absl::Status s = step(); !s.ok()) return s;
  }
  if (const YAML::Node rules = node["rules"]) {
    if (!rules.IsSequence()) return KeyError("alerts.rules", "expected a list of rules");
    for (std::size_t i = 0; i < rules.size(); ++i) {
      AlertRule rule;
      if (absl::Status s = ParseAlertRule(rules[i], absl::StrFormat("alerts.rules[%d]", i), &rule);
          !s.ok()) {
        return s;
      }
      a.rules.push_back(std::move(rule));
    }
  }
  return absl::OkStatus();
}

// A model's `spec:` (at `path`.spec; path "" for a spec file of its own). The YAML becomes
// JSON for the proto's JSON mapping, then gets the same validation as CreateModel, so a bad
// spec fails at start, naming the field. One parser for `riffle serve` and `riffle eval --spec`.
absl::Status ParseSpec(const YAML::Node& spec, std::string_view path, riffle::v1::ModelSpec* out) {
  std::string json;
  AppendJson(spec, &json);
  google::protobuf::util::JsonParseOptions options;
  if (auto s = google::protobuf::util::JsonStringToMessage(json, out, options); !s.ok()) {
    return KeyError(Join(path, "spec"), std::string(s.message()));
  }
  if (absl::StatusOr<ModelDefinition> d = DefinitionFromSpec(*out); !d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s%s%s", path, path.empty() ? "" : ".", d.status().message()));
  }
  return absl::OkStatus();
}

absl::Status ParseModel(const YAML::Node& node, std::string_view path, DeclaredModel* out) {
  if (absl::Status s = CheckKeys(node, path, {"name", "spec", "from_checkpoint", "kafka"});
      !s.ok()) {
    return s;
  }
  if (const YAML::Node k = node["kafka"]) {
    KafkaModelOptions kafka;
    // The model's name is needed for the defaults (group id); read it first.
    if (absl::Status s = ReadString(node, "name", path, &kafka.model); !s.ok()) return s;
    if (absl::Status s = ParseModelKafka(k, Join(path, "kafka"), &kafka); !s.ok()) return s;
    out->kafka = std::move(kafka);
  }
  if (absl::Status s = ReadString(node, "name", path, &out->name); !s.ok()) return s;
  if (absl::Status s = ValidateModelName(out->name); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s.%s", path, s.message()));
  }
  if (absl::Status s = ReadString(node, "from_checkpoint", path, &out->from_checkpoint); !s.ok()) {
    return s;
  }
  const YAML::Node spec = node["spec"];
  if (!out->from_checkpoint.empty()) {
    if (spec) return KeyError(path, "give spec or from_checkpoint, not both");
    return absl::OkStatus();
  }
  if (!spec) return KeyError(Join(path, "spec"), "required (or from_checkpoint)");
  return ParseSpec(spec, path, &out->spec);
}

absl::Status Parse(const YAML::Node& root, ServeConfig* c) {
  if (root.IsNull()) return absl::OkStatus();  // an empty file: all defaults
  if (absl::Status s =
          CheckKeys(root, "",
                    {"listen", "checkpoint", "limits", "log", "security", "models",
                     "shutdown_grace_seconds", "ready_file", "http", "kafka", "alerts"});
      !s.ok()) {
    return s;
  }
  std::vector<std::function<absl::Status()>> steps = {
      [&] { return ReadString(root, "listen", "", &c->server.listen); },
      [&] { return ReadString(root, "ready_file", "", &c->ready_file); },
      [&] {
        return ReadNumber(root, "shutdown_grace_seconds", "", &c->shutdown_grace_seconds, 0, 3600);
      },
  };
  for (auto& step : steps) {
    if (absl::Status s = step(); !s.ok()) return s;
  }
  if (const YAML::Node n = root["checkpoint"]) {
    if (absl::Status s =
            CheckKeys(n, "checkpoint", {"dir", "every_events", "every_seconds", "keep"});
        !s.ok()) {
      return s;
    }
    if (auto s = ReadString(n, "dir", "checkpoint", &c->checkpoint_dir); !s.ok()) return s;
    if (auto s = ReadNumber(n, "every_events", "checkpoint", &c->checkpoint.every_events, 0, 1e15);
        !s.ok()) {
      return s;
    }
    if (auto s = ReadNumber(n, "every_seconds", "checkpoint", &c->checkpoint.every_seconds, 0, 1e9);
        !s.ok()) {
      return s;
    }
    if (auto s = ReadNumber(n, "keep", "checkpoint", &c->checkpoint.keep, 1, 1e6); !s.ok()) {
      return s;
    }
  }
  if (const YAML::Node n = root["limits"]) {
    if (auto s = CheckKeys(n, "limits", {"max_batch", "max_inflight", "max_message_bytes"});
        !s.ok()) {
      return s;
    }
    if (auto s = ReadNumber(n, "max_batch", "limits", &c->server.limits.max_batch, 1, 1e7);
        !s.ok()) {
      return s;
    }
    if (auto s = ReadNumber(n, "max_inflight", "limits", &c->server.limits.max_inflight, 1, 1e6);
        !s.ok()) {
      return s;
    }
    if (auto s = ReadNumber(n, "max_message_bytes", "limits", &c->server.max_message_bytes, 1024,
                            1 << 30);
        !s.ok()) {
      return s;
    }
  }
  if (const YAML::Node n = root["log"]) {
    if (auto s = CheckKeys(n, "log", {"level", "format"}); !s.ok()) return s;
    std::string level = "info", format = "text";
    if (auto s = ReadString(n, "level", "log", &level); !s.ok()) return s;
    if (auto s = ReadString(n, "format", "log", &format); !s.ok()) return s;
    absl::StatusOr<LogLevel> parsed = ParseLogLevel(level);
    if (!parsed.ok()) return KeyError("log.level", std::string(parsed.status().message()));
    c->log.level = *parsed;
    if (format != "text" && format != "json") {
      return KeyError("log.format", absl::StrFormat("\"%s\" is not text or json", format));
    }
    c->log.json = format == "json";
  }
  if (const YAML::Node n = root["security"]) {
    if (auto s = CheckKeys(n, "security", {"auth_token", "auth_token_file", "tls"}); !s.ok()) {
      return s;
    }
    if (auto s = ReadString(n, "auth_token", "security", &c->server.auth_token); !s.ok()) return s;
    if (auto s = ReadString(n, "auth_token_file", "security", &c->auth_token_file); !s.ok()) {
      return s;
    }
    if (const YAML::Node t = n["tls"]) {
      if (auto s = CheckKeys(t, "security.tls", {"cert", "key", "client_ca"}); !s.ok()) return s;
      if (auto s = ReadString(t, "cert", "security.tls", &c->server.tls.cert_file); !s.ok()) {
        return s;
      }
      if (auto s = ReadString(t, "key", "security.tls", &c->server.tls.key_file); !s.ok()) {
        return s;
      }
      if (auto s = ReadString(t, "client_ca", "security.tls", &c->server.tls.client_ca_file);
          !s.ok()) {
        return s;
      }
    }
  }
  if (const YAML::Node n = root["http"]) {
    if (auto s = CheckKeys(n, "http", {"listen", "ready_file"}); !s.ok()) return s;
    if (auto s = ReadString(n, "listen", "http", &c->http.listen); !s.ok()) return s;
    if (auto s = ReadString(n, "ready_file", "http", &c->http_ready_file); !s.ok()) return s;
  }
  if (const YAML::Node n = root["kafka"]) {
    if (absl::Status s = ParseKafka(n, c); !s.ok()) return s;
  }
  if (const YAML::Node n = root["alerts"]) {
    if (absl::Status s = ParseAlerts(n, c); !s.ok()) return s;
  }
  if (const YAML::Node n = root["models"]) {
    if (!n.IsSequence()) return KeyError("models", "expected a list of {name, spec}");
    std::set<std::string> names;
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string path = absl::StrFormat("models[%d]", i);
      DeclaredModel model;
      if (absl::Status s = ParseModel(n[i], path, &model); !s.ok()) return s;
      if (!names.insert(model.name).second) {
        return KeyError(path + ".name", absl::StrFormat("'%s' is declared twice", model.name));
      }
      c->models.push_back(std::move(model));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ServeConfig::Validate() const {
  if (absl::Status s = server.Validate(); !s.ok()) return s;
  if (!auth_token_file.empty() && !server.auth_token.empty()) {
    return absl::InvalidArgumentError("security: give auth_token or auth_token_file, not both");
  }
  if (checkpoint.keep < 1) return absl::InvalidArgumentError("checkpoint.keep: must be >= 1");
  if (absl::Status s = http.Validate(); !s.ok()) return s;
  if (!http_ready_file.empty() && http.listen.empty()) {
    return absl::InvalidArgumentError("http.ready_file: requires http.listen");
  }
  if (absl::Status s = kafka.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("kafka.%s", s.message()));
  }
  if (alerts.has_value()) {
    if (absl::Status s = alerts->Validate(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("alerts.%s", s.message()));
    }
  }
  if (!std::isfinite(shutdown_grace_seconds) || shutdown_grace_seconds < 0 ||
      shutdown_grace_seconds > 3600) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shutdown_grace_seconds: must be in [0, 3600], got %g", shutdown_grace_seconds));
  }
  if (!std::isfinite(checkpoint.every_seconds) || checkpoint.every_seconds < 0) {
    return absl::InvalidArgumentError("checkpoint.every_seconds: must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<riffle::v1::ModelSpec> ParseModelSpecYaml(std::string_view yaml,
                                                         std::string_view source) {
  riffle::v1::ModelSpec spec;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: spec: expected a mapping (learner, features, ...)", source));
    }
    if (absl::Status s = ParseSpec(root, "", &spec); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: %s", source, s.message()));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: not valid YAML: %s", source,
                                                      e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return spec;
}

absl::StatusOr<ServeConfig> ParseServeConfig(std::string_view yaml, std::string_view source) {
  ServeConfig config;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (absl::Status s = Parse(root, &config); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: %s", source, s.message()));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: not valid YAML: %s", source,
                                                      e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (absl::Status s = config.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", source, s.message()));
  }
  return config;
}

}  // namespace riffle::service
