#include "service/eval.h"

#include <chrono>
#include <cmath>
#include <memory>

#include "absl/strings/str_format.h"
#include "features/csv_reader.h"
#include "learners/classifier.h"

namespace riffle::service {
namespace {

constexpr std::uint64_t kProgressEveryRows = 4096;

std::optional<double> FiniteOrNone(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

MetricValues Snapshot(const learners::MetricAccumulator& m, bool binary) {
  MetricValues v;
  v.accuracy = m.Accuracy();
  v.log_loss = m.LogLoss();
  v.macro_f1 = m.MacroF1();
  if (binary) {
    v.roc_auc = FiniteOrNone(m.RocAuc());
    v.precision = m.Precision();
    v.recall = m.Recall();
    v.f1 = m.F1();
  }
  return v;
}

absl::Status RaggedRow(const features::CsvReader& reader, std::size_t got, std::size_t want) {
  return absl::InvalidArgumentError(
      absl::StrFormat("%s:%d: row has %d fields but the header has %d", reader.name(),
                      reader.line(), got, want));
}

// Owns the per-row work so the buffered inference rows and the streamed rows share one path.
class Evaluator {
 public:
  Evaluator(features::TabularSchema schema, std::unique_ptr<learners::Classifier> model,
            const learners::MetricsOptions& metrics)
      : schema_(std::move(schema)), model_(std::move(model)), metrics_(metrics) {}

  void Row(std::span<const std::string_view> fields) {
    ++rows_;
    schema_.Decode(fields, &example_);
    preprocessor_.TransformForPredict(example_, &x_);
    model_->PredictProbaOne(x_, &proba_);
    if (!example_.label.has_value()) {
      ++unlabeled_;
      return;
    }
    const learners::ClassIndex y = *example_.label;
    metrics_.Update(y, proba_);
    preprocessor_.LearnAndTransform(example_, &x_);
    model_->LearnOne(x_, y);
  }

  EvalReport Report() const {
    EvalReport r;
    r.rows = rows_;
    r.unlabeled = unlabeled_;
    r.scored = metrics_.cumulative().Count();
    r.coerced_values = schema_.coerced_values();
    r.classes = schema_.labels().names();
    const bool binary = r.classes.size() == 2;
    r.cumulative = Snapshot(metrics_.cumulative(), binary);
    r.rolling = Snapshot(metrics_.rolling(), binary);
    r.window = metrics_.options().window;
    r.num_features = schema_.features().size();
    r.model_bytes = model_->MemoryBytes();
    r.learner = std::string(model_->Kind());
    return r;
  }

  std::uint64_t rows() const { return rows_; }

 private:
  features::TabularSchema schema_;
  features::TabularPreprocessor preprocessor_;
  std::unique_ptr<learners::Classifier> model_;
  learners::PrequentialMetrics metrics_;
  features::TabularExample example_;
  learners::FeatureVector x_;
  std::vector<double> proba_;
  std::uint64_t rows_ = 0;
  std::uint64_t unlabeled_ = 0;
};

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.17g", v);
}

void AppendMetricsJson(std::string* out, const MetricValues& m) {
  absl::StrAppendFormat(out, "\"accuracy\": %s, \"log_loss\": %s, ", JsonNumber(m.accuracy),
                        JsonNumber(m.log_loss));
  if (m.roc_auc.has_value()) absl::StrAppendFormat(out, "\"roc_auc\": %s, ", JsonNumber(*m.roc_auc));
  if (m.precision.has_value()) {
    absl::StrAppendFormat(out, "\"precision\": %s, \"recall\": %s, \"f1\": %s, ",
                          JsonNumber(*m.precision), JsonNumber(*m.recall), JsonNumber(*m.f1));
  }
  absl::StrAppendFormat(out, "\"macro_f1\": %s", JsonNumber(m.macro_f1));
}

std::string FormatOptional(const std::optional<double>& v) {
  return v.has_value() && std::isfinite(*v) ? absl::StrFormat("%.4f", *v) : "n/a";
}

}  // namespace

absl::Status EvalOptions::Validate() const {
  if (data.empty()) return absl::InvalidArgumentError("--data is required");
  if (absl::Status s = table.Validate(); !s.ok()) return s;
  return metrics.Validate();
}

absl::StatusOr<EvalReport> RunEval(const EvalOptions& options, const EvalProgress& progress) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  // Build the learner first: an unknown learner or option fails before any I/O.
  absl::StatusOr<std::unique_ptr<learners::Classifier>> model =
      learners::CreateClassifier(options.learner, options.learner_options);
  if (!model.ok()) return model.status();

  absl::StatusOr<std::unique_ptr<features::CsvReader>> reader_or =
      features::CsvReader::Open(options.data);
  if (!reader_or.ok()) return reader_or.status();
  features::CsvReader& reader = **reader_or;

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string_view> fields;
  absl::StatusOr<bool> more = reader.Next(&fields);
  if (!more.ok()) return more.status();
  if (!*more) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: no header row", reader.name()));
  }
  const std::vector<std::string> header(fields.begin(), fields.end());

  // Column types come from the first rows, which are kept (as owned strings) and replayed.
  features::ColumnTypeInference inference(header.size());
  std::vector<std::vector<std::string>> buffered;
  while (buffered.size() < options.table.infer_rows) {
    more = reader.Next(&fields);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (fields.size() != header.size()) return RaggedRow(reader, fields.size(), header.size());
    inference.Observe(fields);
    buffered.emplace_back(fields.begin(), fields.end());
  }
  absl::StatusOr<features::TabularSchema> schema =
      features::TabularSchema::Create(header, options.table, inference);
  if (!schema.ok()) return schema.status();

  Evaluator evaluator(*std::move(schema), *std::move(model), options.metrics);
  std::vector<std::string_view> views;
  for (const std::vector<std::string>& row : buffered) {
    views.assign(row.begin(), row.end());
    evaluator.Row(views);
  }
  buffered.clear();
  buffered.shrink_to_fit();
  while (true) {
    more = reader.Next(&fields);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (fields.size() != header.size()) return RaggedRow(reader, fields.size(), header.size());
    evaluator.Row(fields);
    if (progress && evaluator.rows() % kProgressEveryRows == 0) {
      progress(evaluator.rows(), reader.bytes_read(), reader.size_bytes());
    }
  }
  EvalReport report = evaluator.Report();
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.rows_per_second =
      report.seconds > 0 ? static_cast<double>(report.rows) / report.seconds : 0.0;
  return report;
}

std::string FormatEvalText(const EvalReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "learner          %s\n", r.learner);
  absl::StrAppendFormat(&out, "rows             %d (%d scored, %d unlabeled)\n", r.rows, r.scored,
                        r.unlabeled);
  absl::StrAppendFormat(&out, "classes          %d\n", r.classes.size());
  absl::StrAppendFormat(&out, "features         %d\n", r.num_features);
  absl::StrAppendFormat(&out, "%-16s %-12s %s\n", "metric", "cumulative",
                        absl::StrFormat("last %d", r.window));
  const auto row = [&](const char* name, const std::optional<double>& a,
                       const std::optional<double>& b) {
    absl::StrAppendFormat(&out, "  %-14s %-12s %s\n", name, FormatOptional(a), FormatOptional(b));
  };
  row("accuracy", r.cumulative.accuracy, r.rolling.accuracy);
  row("log_loss", r.cumulative.log_loss, r.rolling.log_loss);
  if (r.cumulative.roc_auc.has_value() || r.rolling.roc_auc.has_value()) {
    row("roc_auc", r.cumulative.roc_auc, r.rolling.roc_auc);
  }
  if (r.cumulative.precision.has_value()) {
    row("precision", r.cumulative.precision, r.rolling.precision);
    row("recall", r.cumulative.recall, r.rolling.recall);
    row("f1", r.cumulative.f1, r.rolling.f1);
  }
  row("macro_f1", r.cumulative.macro_f1, r.rolling.macro_f1);
  if (r.coerced_values > 0) {
    absl::StrAppendFormat(&out, "note: %d non-numeric values in numeric columns were one-hot encoded\n",
                          r.coerced_values);
  }
  absl::StrAppendFormat(&out, "seconds          %.3f\n", r.seconds);
  absl::StrAppendFormat(&out, "rows/s           %.0f\n", r.rows_per_second);
  return out;
}

std::string FormatEvalJson(const EvalReport& r) {
  std::string out = "{";
  absl::StrAppendFormat(&out, "\"rows\": %d, ", r.rows);
  AppendMetricsJson(&out, r.cumulative);
  absl::StrAppendFormat(&out, ", \"seconds\": %s, \"rows_per_second\": %s", JsonNumber(r.seconds),
                        JsonNumber(r.rows_per_second));
  absl::StrAppendFormat(&out, ", \"scored\": %d, \"unlabeled\": %d, \"coerced_values\": %d", r.scored,
                        r.unlabeled, r.coerced_values);
  absl::StrAppendFormat(&out, ", \"learner\": ");
  AppendJsonString(&out, r.learner);
  absl::StrAppendFormat(&out, ", \"features\": %d, \"model_bytes\": %d", r.num_features,
                        r.model_bytes);
  out += ", \"classes\": [";
  for (std::size_t k = 0; k < r.classes.size(); ++k) {
    if (k > 0) out += ", ";
    AppendJsonString(&out, r.classes[k]);
  }
  absl::StrAppendFormat(&out, "], \"rolling\": {\"window\": %d, ", r.window);
  AppendMetricsJson(&out, r.rolling);
  out += "}}";
  return out;
}

}  // namespace riffle::service
