#include "service/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

bool IsMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(std::string_view name) {
  if (name.empty() || name.find(':') != std::string_view::npos) return false;
  return IsMetricName(name);
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Why `sample` cannot be exposed as `type`, or "" if it can.
std::string Problem(std::string_view name, MetricType type, const MetricSample& sample) {
  if (!IsMetricName(name)) return "not a valid metric name";
  if (type == MetricType::kCounter) {
    if (name.size() < 7 || name.substr(name.size() - 6) != "_total") {
      return "counter names end in _total";
    }
    if (std::isnan(sample.value) || sample.value < 0) {
      return absl::StrFormat("a counter cannot be %g", sample.value);
    }
  }
  for (std::size_t i = 0; i < sample.labels.size(); ++i) {
    const std::string& label = sample.labels[i].name;
    if (!IsLabelName(label) || label.rfind("__", 0) == 0) {
      return absl::StrFormat("\"%s\" is not a valid label name", label);
    }
    if (type == MetricType::kHistogram && label == "le") {
      return "\"le\" is reserved for histogram buckets";
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (sample.labels[j].name == label) return absl::StrFormat("label \"%s\" given twice", label);
    }
  }
  if (type == MetricType::kHistogram) {
    const HistogramData& h = sample.histogram;
    if (h.bucket_counts.size() != h.bounds.size() + 1) {
      return absl::StrFormat("%d bounds need %d bucket counts, got %d", h.bounds.size(),
                             h.bounds.size() + 1, h.bucket_counts.size());
    }
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      if (!std::isfinite(h.bounds[i]) || (i > 0 && !(h.bounds[i] > h.bounds[i - 1]))) {
        return "histogram bounds must be finite and strictly increasing";
      }
    }
  }
  return "";
}

void AppendEscaped(std::string_view text, bool quote, std::string* out) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// `name{a="x",b="y"[,le="bound"]} value\n`
void AppendSample(std::string_view name, std::string_view suffix, const MetricLabels& labels,
                  const std::string* le, double value, std::string* out) {
  out->append(name);
  out->append(suffix);
  if (!labels.empty() || le != nullptr) {
    out->push_back('{');
    bool first = true;
    for (const MetricLabel& label : labels) {
      if (!first) out->push_back(',');
      first = false;
      out->append(label.name);
      out->append("=\"");
      AppendEscaped(label.value, /*quote=*/true, out);
      out->push_back('"');
    }
    if (le != nullptr) {
      if (!first) out->push_back(',');
      out->append("le=\"");
      out->append(*le);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatMetricValue(value));
  out->push_back('\n');
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counts read best as integers ("100000", not to_chars' shortest "1e+05"); 2^53 is where
  // doubles stop holding every integer.
  constexpr double kExactIntegers = 9007199254740992.0;
  if (value == std::floor(value) && std::fabs(value) < kExactIntegers) {
    return absl::StrFormat("%d", static_cast<std::int64_t>(value));
  }
  char buffer[32];
  const std::to_chars_result r = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, r.ptr);
}

void MetricFamilies::AddCounter(std::string_view name, std::string_view help, MetricLabels labels,
                                double value) {
  MetricSample sample;
  sample.labels = std::move(labels);
  sample.value = value;
  Add(name, help, MetricType::kCounter, std::move(sample));
}

void MetricFamilies::AddGauge(std::string_view name, std::string_view help, MetricLabels labels,
                              double value) {
  MetricSample sample;
  sample.labels = std::move(labels);
  sample.value = value;
  Add(name, help, MetricType::kGauge, std::move(sample));
}

void MetricFamilies::AddHistogram(std::string_view name, std::string_view help, MetricLabels labels,
                                  HistogramData histogram) {
  MetricSample sample;
  sample.labels = std::move(labels);
  sample.histogram = std::move(histogram);
  Add(name, help, MetricType::kHistogram, std::move(sample));
}

void MetricFamilies::Add(std::string_view name, std::string_view help, MetricType type,
                         MetricSample sample) {
  if (std::string problem = Problem(name, type, sample); !problem.empty()) {
    errors_.push_back(absl::StrFormat("%s: %s", name, problem));
    return;
  }
  auto it = index_.find(name);
  if (it == index_.end()) {
    it = index_.emplace(std::string(name), families_.size()).first;
    MetricFamily family;
    family.name = std::string(name);
    family.help = std::string(help);
    family.type = type;
    families_.push_back(std::move(family));
    label_sets_.emplace_back();
  }
  MetricFamily& family = families_[it->second];
  if (family.type != type) {
    errors_.push_back(
        absl::StrFormat("%s: already a %s, not a %s", name, TypeName(family.type), TypeName(type)));
    return;
  }
  std::vector<std::pair<std::string, std::string>> key;
  key.reserve(sample.labels.size());
  for (const MetricLabel& label : sample.labels) key.emplace_back(label.name, label.value);
  std::sort(key.begin(), key.end());
  if (!label_sets_[it->second].insert(std::move(key)).second) {
    std::string labels;
    for (const MetricLabel& label : sample.labels) {
      absl::StrAppendFormat(&labels, "%s%s=\"%s\"", labels.empty() ? "" : ",", label.name,
                            label.value);
    }
    errors_.push_back(absl::StrFormat("%s{%s}: sample given twice", name, labels));
    return;
  }
  family.samples.push_back(std::move(sample));
}

std::string WriteTextExposition(const MetricFamilies& families) {
  std::string out;
  for (const MetricFamily& family : families.families()) {
    if (family.samples.empty()) continue;
    out.append("# HELP ");
    out.append(family.name);
    out.push_back(' ');
    AppendEscaped(family.help, /*quote=*/false, &out);
    out.append("\n# TYPE ");
    out.append(family.name);
    out.push_back(' ');
    out.append(TypeName(family.type));
    out.push_back('\n');
    for (const MetricSample& sample : family.samples) {
      if (family.type != MetricType::kHistogram) {
        AppendSample(family.name, "", sample.labels, nullptr, sample.value, &out);
        continue;
      }
      const HistogramData& h = sample.histogram;
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < h.bounds.size(); ++i) {
        cumulative += h.bucket_counts[i];
        const std::string le = FormatMetricValue(h.bounds[i]);
        AppendSample(family.name, "_bucket", sample.labels, &le, static_cast<double>(cumulative),
                     &out);
      }
      cumulative += h.bucket_counts.back();
      const std::string inf = "+Inf";
      AppendSample(family.name, "_bucket", sample.labels, &inf, static_cast<double>(cumulative),
                   &out);
      AppendSample(family.name, "_sum", sample.labels, nullptr, h.sum, &out);
      AppendSample(family.name, "_count", sample.labels, nullptr, static_cast<double>(cumulative),
                   &out);
    }
  }
  return out;
}

}  // namespace riffle::service
