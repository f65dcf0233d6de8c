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

absl::Status ParseModel(const YAML::Node& node, std::string_view path, DeclaredModel* out) {
  if (absl::Status s = CheckKeys(node, path, {"name", "spec", "from_checkpoint"}); !s.ok()) {
    return s;
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
  std::string json;
  AppendJson(spec, &json);
  google::protobuf::util::JsonParseOptions options;
  if (auto s = google::protobuf::util::JsonStringToMessage(json, &out->spec, options); !s.ok()) {
    return KeyError(Join(path, "spec"), std::string(s.message()));
  }
  // The same validation as CreateModel, so a bad config fails at start, naming the field.
  if (absl::StatusOr<ModelDefinition> d = DefinitionFromSpec(out->spec); !d.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s.%s", path, d.status().message()));
  }
  return absl::OkStatus();
}

absl::Status Parse(const YAML::Node& root, ServeConfig* c) {
  if (root.IsNull()) return absl::OkStatus();  // an empty file: all defaults
  if (absl::Status s = CheckKeys(root, "",
                                 {"listen", "checkpoint", "limits", "log", "security", "models",
                                  "shutdown_grace_seconds", "ready_file"});
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
