#include "service/eval.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/model_definition.h"
#include "service/serve_config.h"
#include "service/served_model.h"
#include "tests/service/service_testing.h"

namespace riffle::service {
namespace {

std::string Data(const std::string& name) { return std::string(RIFFLE_TEST_DATA_DIR) + "/" + name; }

// "weka-credit-g.csv" -> "weka_credit_g", a valid test name.
std::string TestName(std::string file) {
  file = file.substr(0, file.find('.'));
  for (char& c : file) {
    if (c == '-') c = '_';
  }
  return file;
}

EvalOptions Options(const std::string& file, const std::string& target) {
  EvalOptions o;
  o.data = Data(file);
  o.table.target = target;
  return o;
}

// Quality floors: prequential accuracy of default logreg (River's StandardScaler |
// LogisticRegression, or SoftmaxRegression for multiclass), measured on the bundled data and
// pinned about one point below the measured value (see docs/BENCHMARKS.md for River's figures).
struct Floor {
  const char* file;
  const char* target;
  bool softmax;
  double min_accuracy;
  double max_log_loss;
};

class EvalQualityFloorTest : public ::testing::TestWithParam<Floor> {};

TEST_P(EvalQualityFloorTest, AccuracyAndLogLossStayAboveTheFloor) {
  const Floor& f = GetParam();
  EvalOptions o = Options(f.file, f.target);
  if (f.softmax) o.learner_options = {{"mode", "softmax"}, {"intercept_lr", "0"}};
  absl::StatusOr<EvalReport> r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->cumulative.accuracy, f.min_accuracy);
  EXPECT_LE(r->cumulative.log_loss, f.max_log_loss);
}

INSTANTIATE_TEST_SUITE_P(
    BundledDatasets, EvalQualityFloorTest,
    ::testing::Values(Floor{"sklearn-breast-cancer.csv", "target", false, 0.93, 0.24},
                      Floor{"weka-credit-g.csv", "class", false, 0.70, 0.56},
                      Floor{"weka-diabetes.csv", "class", false, 0.73, 0.555},
                      Floor{"weka-ionosphere.csv", "class", false, 0.82, 0.475},
                      Floor{"weka-vote.csv", "Class", false, 0.885, 0.345},
                      Floor{"sklearn-iris.csv", "target", true, 0.92, 0.77},
                      Floor{"sklearn-wine.csv", "target", true, 0.95, 0.59},
                      Floor{"weka-segment-challenge.csv", "class", true, 0.78, 0.93}),
    [](const ::testing::TestParamInfo<Floor>& info) { return TestName(info.param.file); });

// Golden values: River 0.26.1's prequential accuracy and log loss for the same pipelines
// (StandardScaler | LogisticRegression, or | SoftmaxRegression with mode=softmax and no
// intercept), produced by benchmarks/compare_river.py --river-only. Same algorithm, same
// defaults, same order of operations: the numbers agree to rounding.
struct Golden {
  const char* file;
  const char* target;
  bool softmax;
  double river_accuracy;
  double river_log_loss;
};

class EvalRiverParityTest : public ::testing::TestWithParam<Golden> {};

TEST_P(EvalRiverParityTest, MatchesRiver) {
  const Golden& g = GetParam();
  EvalOptions o = Options(g.file, g.target);
  if (g.softmax) o.learner_options = {{"mode", "softmax"}, {"intercept_lr", "0"}};
  absl::StatusOr<EvalReport> r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cumulative.accuracy, g.river_accuracy, 1e-6);
  EXPECT_NEAR(r->cumulative.log_loss, g.river_log_loss, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    BundledDatasets, EvalRiverParityTest,
    ::testing::Values(Golden{"sklearn-breast-cancer.csv", "target", false, 0.936731, 0.230556},
                      Golden{"weka-credit-g.csv", "class", false, 0.713000, 0.550646},
                      Golden{"weka-ionosphere.csv", "class", false, 0.829060, 0.465479},
                      Golden{"sklearn-iris.csv", "target", true, 0.932886, 0.755934},
                      Golden{"weka-segment-challenge.csv", "class", true, 0.792528, 0.920297}),
    [](const ::testing::TestParamInfo<Golden>& info) { return TestName(info.param.file); });

TEST(EvalTest, BinaryReportHasAucAndPositiveClassMetrics) {
  absl::StatusOr<EvalReport> r = RunEval(Options("weka-diabetes.csv", "class"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 768u);
  EXPECT_EQ(r->scored, 768u);
  EXPECT_EQ(r->classes.size(), 2u);
  ASSERT_TRUE(r->cumulative.roc_auc.has_value());
  EXPECT_GT(*r->cumulative.roc_auc, 0.75);
  EXPECT_TRUE(r->cumulative.f1.has_value());
  EXPECT_GT(r->rows_per_second, 0);
}

TEST(EvalTest, InferenceWindowDoesNotChangeResultsOnNumericData) {
  // The first rows are buffered for type inference and replayed; the result must not depend on
  // how many were buffered.
  EvalOptions a = Options("weka-segment-challenge.csv", "class");
  EvalOptions b = a;
  b.table.infer_rows = 1;
  absl::StatusOr<EvalReport> ra = RunEval(a);
  absl::StatusOr<EvalReport> rb = RunEval(b);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->cumulative.accuracy, rb->cumulative.accuracy);
  EXPECT_EQ(ra->cumulative.log_loss, rb->cumulative.log_loss);
}

TEST(EvalTest, UnlabeledRowsArePredictedButNotScoredOrLearned) {
  const std::string path = ::testing::TempDir() + "/unlabeled.csv";
  std::ofstream(path) << "x,y\n1,a\n2,\n-1,b\n3,\n";
  EvalOptions o;
  o.data = path;
  o.table.target = "y";
  absl::StatusOr<EvalReport> r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 4u);
  EXPECT_EQ(r->unlabeled, 2u);
  EXPECT_EQ(r->scored, 2u);
}

TEST(EvalTest, JsonHasTheDocumentedKeys) {
  absl::StatusOr<EvalReport> r = RunEval(Options("weka-vote.csv", "Class"));
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string json = FormatEvalJson(*r);
  for (const char* key : {"\"rows\": 435", "\"accuracy\": ", "\"log_loss\": ", "\"roc_auc\": ",
                          "\"macro_f1\": ", "\"seconds\": ", "\"rows_per_second\": "}) {
    EXPECT_NE(json.find(key), std::string::npos) << key;
  }
}

// A file is read ahead on a second thread (numbers parsed there); a pipe is read on the
// model's thread. The rows and so the results must be the same, bit for bit.
TEST(EvalTest, AFileReadAheadGivesThePipesResultsExactly) {
  std::string csv = "x0,x1,colour,y\n";
  std::mt19937 rng(3);
  std::normal_distribution<double> normal;
  for (int r = 0; r < 20000; ++r) {
    const double x0 = normal(rng);
    const double x1 = 10 * normal(rng);
    // After the rows that decide the column types, every 97th x1 is a text in a numeric
    // column (a coerced value); every 89th x0 is missing.
    absl::StrAppendFormat(&csv, "%s,%s,%s,%d\n", r % 89 == 0 ? "" : absl::StrCat(x0),
                          r > 1000 && r % 97 == 0 ? "n/a" : absl::StrCat(x1),
                          r % 3 == 0 ? "red" : "blue", x0 + 0.1 * x1 + normal(rng) > 0 ? 1 : 0);
  }
  const std::string path = ::testing::TempDir() + "/read_ahead.csv";
  std::ofstream(path, std::ios::binary) << csv;

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    for (std::size_t done = 0; done < csv.size();) {
      const ssize_t n = ::write(fds[1], csv.data() + done, csv.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fds[1]);
  });
  EvalOptions piped;
  piped.data = absl::StrCat("/proc/self/fd/", fds[0]);
  piped.table.target = "y";
  absl::StatusOr<EvalReport> from_pipe = RunEval(piped);
  writer.join();
  ::close(fds[0]);
  EvalOptions file = piped;
  file.data = path;
  absl::StatusOr<EvalReport> from_file = RunEval(file);
  ASSERT_TRUE(from_pipe.ok()) << from_pipe.status();
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->rows, 20000u);
  EXPECT_EQ(from_file->rows, from_pipe->rows);
  EXPECT_EQ(from_file->coerced_values, from_pipe->coerced_values);
  EXPECT_GT(from_file->coerced_values, 0u);
  EXPECT_EQ(from_file->cumulative.accuracy, from_pipe->cumulative.accuracy);
  EXPECT_EQ(from_file->cumulative.log_loss, from_pipe->cumulative.log_loss);
  EXPECT_EQ(from_file->cumulative.roc_auc, from_pipe->cumulative.roc_auc);
  EXPECT_EQ(from_file->rolling.log_loss, from_pipe->rolling.log_loss);
  EXPECT_EQ(from_file->classes, from_pipe->classes);
}

// The reading thread is ahead of the model: an error far into the file still names its line,
// after the rows before it were learned.
TEST(EvalTest, ARaggedRowFarIntoAFileNamesItsLine) {
  std::string csv = "x,y\n";
  for (int r = 0; r < 30000; ++r) absl::StrAppend(&csv, r % 10, ",", r % 2, "\n");
  csv += "1,2,3\n4,1\n";
  const std::string path = ::testing::TempDir() + "/ragged_far.csv";
  std::ofstream(path, std::ios::binary) << csv;
  EvalOptions o;
  o.data = path;
  o.table.target = "y";
  absl::StatusOr<EvalReport> r = RunEval(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("ragged_far.csv:30002: row has 3 fields but the header has 2"));
}

TEST(EvalTest, UnknownLearnerFailsBeforeReadingData) {
  EvalOptions o = Options("does-not-exist.csv", "y");
  o.learner = "svm";
  absl::StatusOr<EvalReport> r = RunEval(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("svm"), absl::string_view::npos);
}

TEST(EvalTest, EmptyFileHasNoHeader) {
  const std::string path = ::testing::TempDir() + "/empty.csv";
  std::ofstream(path) << "";
  EvalOptions o;
  o.data = path;
  o.table.target = "y";
  absl::StatusOr<EvalReport> r = RunEval(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no header"), absl::string_view::npos);
}

// ---- riffle eval --spec ----

// A file of the running test's own: CTest runs the tests of this binary in parallel processes
// that share TempDir(), so a file name alone ("spec.yaml") could be another test's file.
std::string WriteFile(const std::string& name, const std::string& content) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string prefix = absl::StrCat(test->test_suite_name(), ".", test->name(), ".");
  std::replace(prefix.begin(), prefix.end(), '/', '_');  // parameterized tests' names
  const std::string path = ::testing::TempDir() + "/" + prefix + name;
  std::ofstream(path) << content;
  return path;
}

constexpr char kXorSpec[] = R"(
learner: logreg
learner_options: {lr: 0.1}
metrics_window: 100
features:
  declared:
    - {name: a, kind: CATEGORICAL}
    - {name: b, kind: CATEGORICAL}
    - {name: n, missing_indicator: true}
  crosses:
    - {first: a, second: b}
)";

// One row of the parity stream; n is missing when !has_n, the label empty when unlabeled.
struct XorRow {
  std::string a, b;
  bool has_n = true;
  double n = 0;
  std::string label;
};

// XOR of a and b plus a numeric feature, with missing values and unlabeled rows. Raw engine
// bits only: the stream is the same with every standard library.
std::vector<XorRow> XorRows(int count) {
  std::mt19937_64 rng(11);
  std::vector<XorRow> rows;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t bits = rng();
    XorRow r;
    r.a = (bits & 1) ? "x" : "y";
    r.b = (bits & 2) ? "x" : "y";
    r.has_n = i % 7 != 3;
    r.n = static_cast<double>((bits >> 8) % 2001) / 100.0 - 10.0;
    r.label = i % 11 == 5 ? "" : (r.a == r.b ? "same" : "diff");
    rows.push_back(std::move(r));
  }
  return rows;
}

// The rows as CSV with the columns out of name order (the pipeline must not care).
std::string XorCsv(const std::vector<XorRow>& rows) {
  std::string csv = "n,label,b,a\n";
  for (const XorRow& r : rows) {
    // %.17g reads back as the same double.
    absl::StrAppendFormat(&csv, "%s,%s,%s,%s\n", r.has_n ? absl::StrFormat("%.17g", r.n) : "",
                          r.label, r.b, r.a);
  }
  return csv;
}

// A served model of the spec in `yaml` (null, with a test failure, if it is invalid).
std::unique_ptr<ServedModel> ServedModelOf(const char* yaml, checkpoints::Env* env) {
  absl::StatusOr<riffle::v1::ModelSpec> spec = ParseModelSpecYaml(yaml, "spec.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return nullptr;
  absl::StatusOr<ModelDefinition> def = DefinitionFromSpec(*spec);
  EXPECT_TRUE(def.ok()) << def.status();
  if (!def.ok()) return nullptr;
  ServedModel::Options options;
  options.env = env;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create("m", *std::move(def), 1, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

EvalOptions SpecOptions(const std::string& data, const std::string& spec_yaml,
                        const std::string& spec_name = "spec.yaml") {
  EvalOptions o;
  o.data = data;
  o.table.target = "label";
  o.spec_file = WriteFile(spec_name, spec_yaml);
  return o;
}

TEST(EvalSpecTest, GivesTheMetricsOfAServedModelWithTheSameSpecAndRows) {
  const std::vector<XorRow> rows = XorRows(600);
  absl::StatusOr<EvalReport> report =
      RunEval(SpecOptions(WriteFile("xor.csv", XorCsv(rows)), kXorSpec));
  ASSERT_TRUE(report.ok()) << report.status();

  // The same rows through a served model, as gRPC requests would bring them: features sorted
  // by name, a missing value left out; labeled rows learned (test-then-train), unlabeled ones
  // predicted.
  testing::FakeClockEnv env;
  std::unique_ptr<ServedModel> model = ServedModelOf(kXorSpec, &env);
  ASSERT_NE(model, nullptr);
  std::uint64_t labeled = 0;
  for (const XorRow& r : rows) {
    std::vector<features::NamedFeature> f = {{"a", features::FeatureValue::Text(r.a)},
                                             {"b", features::FeatureValue::Text(r.b)}};
    if (r.has_n) f.push_back({"n", features::FeatureValue::Number(r.n)});
    if (r.label.empty()) {
      const InstanceView instance{"", f};
      PredictBatchResult predicted;
      ASSERT_TRUE(model->Predict({&instance, 1}, &predicted).ok());
      continue;
    }
    const ExampleView example{{"", f}, r.label, 1.0, false};
    LearnBatchResult learned;
    ASSERT_TRUE(model->Learn({&example, 1}, false, &learned).ok());
    ++labeled;
  }
  const ModelMetricsReport served = model->Metrics();

  EXPECT_EQ(report->rows, rows.size());
  EXPECT_EQ(report->scored, labeled);
  EXPECT_EQ(report->unlabeled, rows.size() - labeled);
  EXPECT_EQ(report->window, 100u);
  EXPECT_THAT(report->classes, ::testing::UnorderedElementsAre("diff", "same"));
  for (const auto& [eval, service] : {std::pair{&report->cumulative, &served.cumulative},
                                      std::pair{&report->rolling, &served.rolling}}) {
    // Bit for bit: the same pipeline, learner and order of operations.
    EXPECT_EQ(eval->accuracy, service->accuracy);
    EXPECT_EQ(eval->log_loss, service->log_loss);
    EXPECT_EQ(eval->roc_auc, service->roc_auc);
    EXPECT_EQ(eval->macro_f1, service->macro_f1);
    EXPECT_EQ(eval->count, service->count);
  }
  // And the cross is what the model learned from: XOR is learned.
  EXPECT_GT(report->cumulative.accuracy, 0.9);
}

// A burst detector: the label is "burst" when the card made at least two payments in the 30
// seconds before this one, which only a windowed count by card can see.
constexpr char kBurstSpec[] = R"(
learner: logreg
learner_options: {lr: 0.5}
classes: [calm, burst]
features:
  undeclared: IGNORE
  aggregates:
    - {name: card_n_30s, function: COUNT, window_seconds: 30, sliding: true, hop_seconds: 1}
)";

struct BurstRow {
  std::string id, card, label;
  std::int64_t time = 0;
  double amount = 0;
};

std::vector<BurstRow> BurstRows(int n) {
  std::mt19937_64 rng(5);
  std::vector<BurstRow> rows;
  std::map<std::string, std::vector<std::int64_t>> history;
  std::int64_t t = 1'700'000'000;
  for (int i = 0; i < n; ++i) {
    t += static_cast<std::int64_t>(rng() % 4);
    BurstRow r;
    r.id = absl::StrFormat("p%d", i);
    r.card = absl::StrFormat("c%d", static_cast<int>(rng() % 20));
    r.time = t;
    r.amount = static_cast<double>(rng() % 1000) / 10;
    int recent = 0;
    for (std::int64_t before : history[r.card]) recent += before > t - 30 ? 1 : 0;
    r.label = recent >= 2 ? "burst" : "calm";
    history[r.card].push_back(t);
    rows.push_back(std::move(r));
  }
  return rows;
}

TEST(EvalSpecTest, WindowedAggregatesUseTheKeyAndTimeColumnsAsAServedModelDoes) {
  const std::vector<BurstRow> rows = BurstRows(3000);
  std::string csv = "amount,card,label,id,ts\n";
  for (const BurstRow& r : rows) {
    absl::StrAppendFormat(&csv, "%.1f,%s,%s,%s,%d\n", r.amount, r.card, r.label, r.id, r.time);
  }
  EvalOptions o = SpecOptions(WriteFile("bursts.csv", csv), kBurstSpec);
  o.id_column = "id";
  o.key_column = "card";
  o.time_column = "ts";
  absl::StatusOr<EvalReport> report = RunEval(o);
  ASSERT_TRUE(report.ok()) << report.status();
  // Learnable from the count alone (amount and card are ignored: undeclared).
  EXPECT_GT(report->cumulative.accuracy, 0.95);

  // The same events through a served model's Learn, with their keys and times.
  testing::FakeClockEnv env;
  std::unique_ptr<ServedModel> model = ServedModelOf(kBurstSpec, &env);
  ASSERT_NE(model, nullptr);
  for (const BurstRow& r : rows) {
    const std::vector<features::NamedFeature> f = {
        {"amount", features::FeatureValue::Number(r.amount)}};
    ExampleView example{{r.id, f}, r.label, 1.0, false};
    example.instance.key = r.card;
    example.instance.time_micros = r.time * 1'000'000;
    LearnBatchResult learned;
    ASSERT_TRUE(model->Learn({&example, 1}, false, &learned).ok());
  }
  const ModelMetricsReport served = model->Metrics();
  EXPECT_EQ(report->cumulative.accuracy, served.cumulative.accuracy);
  EXPECT_EQ(report->cumulative.log_loss, served.cumulative.log_loss);
  EXPECT_EQ(report->cumulative.count, served.cumulative.count);

  // Without the time column there is no window to put an event in.
  o.time_column.clear();
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("name the time column with --time"));
  o.time_column = "when";
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("--time column 'when' is not in the header"));
  // The event columns are --spec's.
  EvalOptions tabular;
  tabular.data = Data("weka-vote.csv");
  tabular.table.target = "Class";
  tabular.key_column = "x";
  EXPECT_THAT(std::string(RunEval(tabular).status().message()),
              ::testing::HasSubstr("--id, --key and --time name event columns of --spec models"));
}

TEST(EvalSpecTest, FlagsTheSpecDecidesAreRejected) {
  EvalOptions o = SpecOptions(Data("weka-vote.csv"), "learner: logreg\n");
  o.learner = "logreg";
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("--learner cannot be combined with --spec"));
  o.learner.clear();
  o.learner_options = {{"lr", "0.1"}};
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("--set cannot be combined with --spec"));
  o.learner_options.clear();
  o.table.nominal = {"x"};
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("--nominal and --drop cannot be combined with --spec"));
}

TEST(EvalSpecTest, SpecErrorsNameTheFileAndTheField) {
  EvalOptions o = SpecOptions(Data("weka-vote.csv"),
                              "learner: logreg\nfeatures: {crosses: [{first: a}]}\n", "bad.yaml");
  absl::StatusOr<EvalReport> r = RunEval(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("bad.yaml: spec.features.crosses[0].second: must not be empty"));
  o.spec_file = ::testing::TempDir() + "/no-such-spec.yaml";
  r = RunEval(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("--spec"));
}

TEST(EvalSpecTest, ARowThePipelineRejectsNamesItsLine) {
  const std::string data = WriteFile("bad_row.csv", "n,label\n1,p\n2,q\nlots,p\n");
  absl::StatusOr<EvalReport> r = RunEval(
      SpecOptions(data, "learner: logreg\nfeatures: {declared: [{name: n, kind: NUMERIC}]}\n"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("bad_row.csv:4: features[\"n\"]: expected a number"));
  r = RunEval(SpecOptions(data, "learner: logreg\n"));  // undeclared: "lots" is a category
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 3u);
  EXPECT_EQ(r->num_features, 2u);  // n, n=lots
  EvalOptions o = SpecOptions(data, "learner: logreg\n");
  o.table.target = "y";
  EXPECT_THAT(std::string(RunEval(o).status().message()),
              ::testing::HasSubstr("target column 'y' is not in the header"));
}

TEST(EvalSpecTest, ACheckpointContinuesOnlyWithItsSpec) {
  const std::vector<XorRow> rows = XorRows(200);
  const std::string data = WriteFile("xor_ckpt.csv", XorCsv(rows));
  const std::string checkpoint = ::testing::TempDir() + "/xor_spec.riffle";
  EvalOptions first = SpecOptions(data, kXorSpec);
  first.save_checkpoint = checkpoint;
  ASSERT_TRUE(RunEval(first).ok());
  EvalOptions again = SpecOptions(data, kXorSpec);
  again.load_checkpoint = checkpoint;
  absl::StatusOr<EvalReport> continued = RunEval(again);
  ASSERT_TRUE(continued.ok()) << continued.status();
  EXPECT_EQ(continued->rows, 400u);
  std::string other = kXorSpec;
  other.replace(other.find("lr: 0.1"), 7, "lr: 0.2");
  EvalOptions different = SpecOptions(data, other, "other.yaml");
  different.load_checkpoint = checkpoint;
  EXPECT_THAT(std::string(RunEval(different).status().message()),
              ::testing::HasSubstr("was trained with another spec"));
  EvalOptions tabular;
  tabular.data = data;
  tabular.table.target = "label";
  tabular.load_checkpoint = checkpoint;
  EXPECT_THAT(std::string(RunEval(tabular).status().message()),
              ::testing::HasSubstr("continues with --spec"));
}

}  // namespace
}  // namespace riffle::service
