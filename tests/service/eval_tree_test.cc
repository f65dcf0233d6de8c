// `riffle eval` with the Hoeffding trees on the bundled datasets: accuracy within one point of
// River 0.26.1 (the same StandardScaler | OneHotEncoder | tree pipeline, produced by
// benchmarks/compare_river.py --learner hoeffding_tree --river-only), and --dump-tree.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "service/eval.h"

namespace riffle::service {
namespace {

std::string Data(const std::string& name) { return std::string(RIFFLE_TEST_DATA_DIR) + "/" + name; }

struct TreeGolden {
  const char* file;
  const char* target;
  double river_accuracy;
};

class EvalTreeRiverParityTest : public ::testing::TestWithParam<TreeGolden> {};

TEST_P(EvalTreeRiverParityTest, AccuracyWithinOnePointOfRiver) {
  const TreeGolden& g = GetParam();
  EvalOptions o;
  o.data = Data(g.file);
  o.table.target = g.target;
  o.learner = "hoeffding_tree";
  absl::StatusOr<EvalReport> r = RunEval(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cumulative.accuracy, g.river_accuracy, 0.01);
}

INSTANTIATE_TEST_SUITE_P(
    BundledDatasets, EvalTreeRiverParityTest,
    ::testing::Values(TreeGolden{"sklearn-breast-cancer.csv", "target", 0.9173},
                      TreeGolden{"weka-credit-g.csv", "class", 0.6877},
                      TreeGolden{"weka-diabetes.csv", "class", 0.7197},
                      TreeGolden{"weka-ionosphere.csv", "class", 0.8029},
                      TreeGolden{"weka-segment-challenge.csv", "class", 0.7759}));

TEST(EvalTreeTest, DumpTreeWritesJsonOrDot) {
  for (const std::string suffix : {".json", ".dot"}) {
    EvalOptions o;
    o.data = Data("weka-segment-challenge.csv");
    o.table.target = "class";
    o.learner = "hoeffding_adaptive_tree";
    o.dump_tree = ::testing::TempDir() + "/tree" + suffix;
    absl::StatusOr<EvalReport> r = RunEval(o);
    ASSERT_TRUE(r.ok()) << r.status();
    std::ifstream in(o.dump_tree);
    std::stringstream text;
    text << in.rdbuf();
    if (suffix == ".dot") {
      EXPECT_EQ(text.str().rfind("digraph tree {", 0), 0u);
    } else {
      EXPECT_EQ(text.str().rfind("{\"kind\": \"hoeffding_adaptive_tree\"", 0), 0u);
    }
  }
}

TEST(EvalTreeTest, DumpTreeNeedsATreeLearner) {
  EvalOptions o;
  o.data = Data("weka-diabetes.csv");
  o.table.target = "class";
  o.learner = "logreg";
  o.dump_tree = ::testing::TempDir() + "/tree.json";
  EXPECT_EQ(RunEval(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace riffle::service
