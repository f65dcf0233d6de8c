#include "features/tabular.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "features/csv_reader.h"

namespace riffle::features {
namespace {

std::vector<std::string_view> Fields(const std::vector<std::string>& row) {
  return {row.begin(), row.end()};
}

template <class T>
std::vector<T> ToVector(std::span<const T> span) {
  return {span.begin(), span.end()};
}

// Bit patterns, so that -0.0 and +0.0 differ.
std::vector<std::uint64_t> Bits(std::span<const double> values) {
  std::vector<std::uint64_t> bits;
  for (const double v : values) bits.push_back(std::bit_cast<std::uint64_t>(v));
  return bits;
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

absl::StatusOr<TabularSchema> SchemaFor(const Table& t, const TabularOptions& options) {
  ColumnTypeInference inference(t.header.size());
  for (const auto& row : t.rows) inference.Observe(Fields(row));
  return TabularSchema::Create(t.header, options, inference);
}

TabularOptions Opts(std::string target, std::vector<std::string> nominal = {},
                    std::vector<std::string> drop = {}) {
  TabularOptions o;
  o.target = std::move(target);
  o.nominal = std::move(nominal);
  o.drop = std::move(drop);
  return o;
}

const Table kPayments = {
    {"amount", "country", "age", "label"},
    {{"12.5", "FR", "31", "ok"}, {"3", "DE", "", "fraud"}, {"", "FR", "45", "ok"}}};

TEST(TabularSchemaTest, InfersNumericAndNominalColumns) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type(0), ColumnType::kNumeric);
  EXPECT_EQ(s->type(1), ColumnType::kNominal);
  EXPECT_EQ(s->type(2), ColumnType::kNumeric);
  EXPECT_EQ(s->target_column(), 3u);
  EXPECT_EQ(s->NumNumericColumns(), 2u);
  // Numeric columns take the first feature indices, in column order.
  EXPECT_EQ(s->features().Find("amount"), 0u);
  EXPECT_EQ(s->features().Find("age"), 1u);
}

TEST(TabularSchemaTest, DecodesOneHotMissingAndLabels) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok());
  TabularExample e;
  s->Decode(Fields(kPayments.rows[1]), &e);
  // amount = 3 (index 0); age missing; country=DE one-hot (next free index, 2); label "fraud"
  // is the first label seen -> class 0.
  ASSERT_EQ(e.numeric.size(), 1u);
  EXPECT_EQ(e.numeric.index(0), 0u);
  EXPECT_EQ(e.numeric.value(0), 3.0);
  ASSERT_EQ(e.categorical.size(), 1u);
  EXPECT_EQ(e.categorical.index(0), 2u);
  EXPECT_EQ(e.categorical.value(0), 1.0);
  EXPECT_EQ(e.label, 0u);
  s->Decode(Fields(kPayments.rows[0]), &e);
  EXPECT_EQ(e.categorical.index(0), 3u);  // country=FR is new
  EXPECT_EQ(e.label, 1u);                 // "ok"
  EXPECT_EQ(s->features().Name(3), "country=FR");
}

// Labels are told apart without a branch on which one a row has (TabularSchema::LabelIndex):
// names of different lengths, one a prefix of another, more than two classes, and a label
// that only equals a known name in its first bytes.
TEST(TabularSchemaTest, LabelsGetTheirIndexInOrderOfAppearance) {
  const Table t = {{"x", "y"}, {{"1", "no"}}};
  absl::StatusOr<TabularSchema> s = SchemaFor(t, Opts("y"));
  ASSERT_TRUE(s.ok());
  TabularExample e;
  const std::vector<std::pair<std::string, learners::ClassIndex>> rows = {
      {"no", 0},   {"yes", 1},   {"no", 0},    {"n", 2},    {"yes", 1}, {"yess", 3},
      {"no", 0},   {"n", 2},     {"maybe", 4}, {"yes", 1},  {"ye", 5},  {"no", 0},
      {"yess", 3}, {"maybe", 4}, {"n", 2},     {"mayb", 6}, {"ye", 5},  {"no", 0}};
  for (const auto& [label, index] : rows) {
    s->Decode(Fields({"1", label}), &e);
    ASSERT_TRUE(e.label.has_value()) << label;
    EXPECT_EQ(*e.label, index) << label;
  }
  EXPECT_EQ(s->labels().names(),
            (std::vector<std::string>{"no", "yes", "n", "yess", "maybe", "ye", "mayb"}));
}

TEST(TabularSchemaTest, EmptyTargetIsUnlabeled) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok());
  TabularExample e;
  s->Decode(Fields({"1", "FR", "2", ""}), &e);
  EXPECT_FALSE(e.label.has_value());
}

TEST(TabularSchemaTest, NonNumberInNumericColumnBecomesACategoryAndIsCounted) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok());
  TabularExample e;
  s->Decode(Fields({"n/a", "FR", "2", "ok"}), &e);
  EXPECT_EQ(s->coerced_values(), 1u);
  ASSERT_EQ(e.categorical.size(), 2u);
  EXPECT_EQ(s->features().Name(e.categorical.index(0)), "amount=n/a");
}

// ReadAheadCsvReader hands Decode the fields already parsed (NaN: not a number); the example and
// the counters must be what Decode finds parsing itself.
TEST(TabularSchemaTest, DecodeWithParsedNumbersEqualsDecodeParsingItself) {
  const Table t = {{"x", "y", "kind", "skip", "label"},
                   {{"1", "2", "a", "9", "0"}, {" 3 ", "-4e2", "b", "8", "1"}}};
  absl::StatusOr<TabularSchema> parsing = SchemaFor(t, Opts("label", {}, {"skip"}));
  ASSERT_TRUE(parsing.ok()) << parsing.status();
  TabularSchema given = *parsing;
  const std::vector<std::vector<std::string>> rows = {{"1.5", " 2 ", "a", "7", "1"},
                                                      {"inf", "nan", "", "x", "0"},
                                                      {"", "1e999", "c", "", ""},
                                                      {"+.5", "abc", "b", "1", "2"},
                                                      {"-0", "3", "a", "2", "1"}};
  for (const std::vector<std::string>& row : rows) {
    std::vector<double> numbers;
    for (const std::string& field : row) {
      numbers.push_back(ParseNumber(field).value_or(std::numeric_limits<double>::quiet_NaN()));
    }
    TabularExample a, b;
    parsing->Decode(Fields(row), &a);
    given.Decode(Fields(row), &b, numbers);
    EXPECT_EQ(a.label, b.label);
    ASSERT_EQ(a.numeric.size(), b.numeric.size());
    for (std::size_t k = 0; k < a.numeric.size(); ++k) {
      EXPECT_EQ(a.numeric.index(k), b.numeric.index(k));
      EXPECT_EQ(std::signbit(a.numeric.value(k)), std::signbit(b.numeric.value(k)));
      EXPECT_EQ(a.numeric.value(k), b.numeric.value(k));
    }
    ASSERT_EQ(a.categorical.size(), b.categorical.size());
    for (std::size_t k = 0; k < a.categorical.size(); ++k) {
      EXPECT_EQ(a.categorical.index(k), b.categorical.index(k));
    }
  }
  EXPECT_EQ(parsing->coerced_values(), given.coerced_values());
  EXPECT_EQ(parsing->coerced_values(), 4u);  // inf, nan, 1e999, abc
  EXPECT_EQ(parsing->features().names(), given.features().names());
  EXPECT_EQ(parsing->labels().names(), given.labels().names());
}

// The same on random rows of a table whose target sits between the features, with a dropped
// and two nominal columns: rows whose numeric fields are all numbers (decoded all at once) and
// rows with a missing value or a non-number in them (decoded column by column) alike.
TEST(TabularSchemaTest, DecodeWithParsedNumbersEqualsDecodeParsingItselfOnRandomRows) {
  const Table t = {{"a", "kind", "b", "label", "skip", "c", "city"},
                   {{"1", "x", "2", "0", "9", "3", "p"}, {"4", "y", "5", "1", "8", "6", "q"}}};
  absl::StatusOr<TabularSchema> parsing = SchemaFor(t, Opts("label", {}, {"skip"}));
  ASSERT_TRUE(parsing.ok()) << parsing.status();
  TabularSchema given = *parsing;
  std::mt19937 rng(17);
  const std::vector<std::string> numbers = {"1", "-2.5", "0.125", "1e3", "-0", "7.25"};
  const std::vector<std::string> others = {"", "x", "nan", " 3 ", "y"};
  const std::vector<std::string> labels = {"0", "1", "2", ""};
  int all_numbers = 0;
  for (int r = 0; r < 3000; ++r) {
    std::vector<std::string> row(7);
    for (const std::size_t c : {0, 2, 5}) {
      row[c] = rng() % 4 == 0 ? others[rng() % others.size()] : numbers[rng() % numbers.size()];
    }
    row[1] = others[rng() % others.size()];
    row[3] = labels[rng() % labels.size()];
    row[4] = numbers[rng() % numbers.size()];
    row[6] = others[rng() % others.size()];
    std::vector<double> parsed;
    for (const std::string& field : row) {
      parsed.push_back(ParseNumber(field).value_or(std::numeric_limits<double>::quiet_NaN()));
    }
    all_numbers += (ParseNumber(row[0]) && ParseNumber(row[2]) && ParseNumber(row[5])) ? 1 : 0;
    TabularExample a, b;
    parsing->Decode(Fields(row), &a);
    given.Decode(Fields(row), &b, parsed);
    ASSERT_EQ(a.label, b.label) << r;
    ASSERT_EQ(ToVector(a.numeric.indices()), ToVector(b.numeric.indices())) << r;
    ASSERT_EQ(Bits(a.numeric.values()), Bits(b.numeric.values())) << r;
    ASSERT_EQ(a.numeric.Extent(), b.numeric.Extent()) << r;
    ASSERT_EQ(ToVector(a.categorical.indices()), ToVector(b.categorical.indices())) << r;
    ASSERT_EQ(a.categorical.Extent(), b.categorical.Extent()) << r;
  }
  EXPECT_GT(all_numbers, 500);
  EXPECT_LT(all_numbers, 2500);
  EXPECT_EQ(parsing->coerced_values(), given.coerced_values());
  EXPECT_EQ(parsing->features().names(), given.features().names());
  EXPECT_EQ(parsing->labels().names(), given.labels().names());
}

TEST(TabularSchemaTest, NominalAndDropOptions) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label", {"age"}, {"amount"}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type(2), ColumnType::kNominal);
  TabularExample e;
  s->Decode(Fields(kPayments.rows[0]), &e);
  EXPECT_TRUE(e.numeric.empty());
  ASSERT_EQ(e.categorical.size(), 2u);
  EXPECT_EQ(s->features().Name(e.categorical.index(1)), "age=31");
}

TEST(TabularSchemaTest, RejectsBadHeadersNamingTheColumn) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("class"));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'class'"), absl::string_view::npos);
  s = SchemaFor(kPayments, Opts("label", {"colour"}));
  EXPECT_NE(s.status().message().find("'colour'"), absl::string_view::npos);
  s = SchemaFor({{"a", "a", "label"}, {}}, Opts("label"));
  EXPECT_NE(s.status().message().find("twice"), absl::string_view::npos);
  s = SchemaFor(kPayments, Opts("label", {"label"}));
  EXPECT_FALSE(s.ok());
}

TEST(TabularPreprocessorTest, PredictUsesEarlierRowsAndLearnIncludesTheRow) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok());
  TabularPreprocessor p;
  TabularExample e;
  learners::FeatureVector x;
  s->Decode(Fields({"2", "FR", "", "ok"}), &e);
  p.LearnAndTransform(e, &x);
  s->Decode(Fields({"4", "FR", "", "ok"}), &e);
  p.TransformForPredict(e, &x);
  // Stats from {2}: variance 0 -> scales to 0. One-hot stays 1.
  EXPECT_EQ(x.value(0), 0.0);
  EXPECT_EQ(x.value(1), 1.0);
  p.LearnAndTransform(e, &x);
  // Stats from {2, 4}: mean 3, variance 1 -> (4 - 3) / 1 = 1.
  EXPECT_DOUBLE_EQ(x.value(0), 1.0);
}

// LearnAndRetransform, which only rewrites the scaled values of the vector a prediction was made
// with, leaves it exactly as LearnAndTransform would: on rows with missing values, categories
// and values that are no numbers.
TEST(TabularPreprocessorTest, LearnAndRetransformEqualsLearnAndTransform) {
  absl::StatusOr<TabularSchema> s = SchemaFor(kPayments, Opts("label"));
  ASSERT_TRUE(s.ok());
  std::mt19937 rng(3);
  const std::vector<std::string> amounts = {"", "1", "-2.5", "1e3", "x", "0.125"};
  const std::vector<std::string> countries = {"", "FR", "DE", "US"};
  const std::vector<std::string> ages = {"", "18", "31", "77", "none"};
  TabularPreprocessor full;
  TabularPreprocessor in_place;
  TabularExample e;
  learners::FeatureVector expected;
  learners::FeatureVector actual;
  for (int row = 0; row < 5000; ++row) {
    const std::vector<std::string> fields = {amounts[rng() % amounts.size()],
                                             countries[rng() % countries.size()],
                                             ages[rng() % ages.size()], "ok"};
    s->Decode(Fields(fields), &e);
    full.TransformForPredict(e, &expected);
    in_place.TransformForPredict(e, &actual);
    ASSERT_EQ(Bits(actual.values()), Bits(expected.values())) << row;
    full.LearnAndTransform(e, &expected);
    in_place.LearnAndRetransform(e, &actual);
    ASSERT_EQ(ToVector(actual.indices()), ToVector(expected.indices())) << row;
    ASSERT_EQ(Bits(actual.values()), Bits(expected.values())) << row;
    ASSERT_EQ(actual.Extent(), expected.Extent()) << row;
  }
}

}  // namespace
}  // namespace riffle::features
