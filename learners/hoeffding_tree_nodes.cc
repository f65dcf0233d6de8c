#include "learners/hoeffding_tree_nodes.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "learners/serialization.h"

namespace riffle::learners::tree_internal {
namespace {

// 0.5 * ln(2 pi), the constant of the Gaussian log density.
constexpr double kHalfLogTwoPi = 0.91893853320467274178;

double Sum(std::span<const double> v) {
  double s = 0;
  for (double d : v) s += d;
  return s;
}

double At(const std::vector<double>& v, std::size_t k) { return k < v.size() ? v[k] : 0.0; }

void AddAt(std::vector<double>* v, std::size_t k, double w) {
  if (k >= v->size()) v->resize(k + 1, 0.0);
  (*v)[k] += w;
}

// Index of the largest entry, ties to the smallest index.
std::size_t ArgMaxOf(std::span<const double> v) {
  std::size_t best = 0;
  for (std::size_t k = 1; k < v.size(); ++k) {
    if (v[k] > v[best]) best = k;
  }
  return best;
}

// Number of branches that get more than `min_fraction` of the total weight. Sums each branch
// twice rather than allocating: it runs for every candidate threshold of every split attempt.
int BranchesAboveFraction(const std::vector<std::vector<double>>& post, double min_fraction) {
  double total = 0;
  for (const std::vector<double>& branch : post) total += Sum(branch);
  int n = 0;
  if (total > 0) {
    for (const std::vector<double>& branch : post) {
      if (Sum(branch) / total > min_fraction) ++n;
    }
  }
  return n;
}

// Entropy in bits, written as River writes it: (-sum d log2 d + S log2 S) / S.
double Entropy(std::span<const double> dist) {
  double entropy = 0;
  double sum = 0;
  for (double d : dist) {
    if (d > 0) {
      entropy -= d * std::log2(d);
      sum += d;
    }
  }
  return sum > 0 ? (entropy + sum * std::log2(sum)) / sum : 0.0;
}

// `pre_entropy` is Entropy(pre).
double InfoGainMerit(double pre_entropy, const std::vector<std::vector<double>>& post) {
  double total = 0;
  double weighted = 0;
  for (const std::vector<double>& branch : post) {
    const double w = Sum(branch);
    total += w;
    weighted += w * Entropy(branch);
  }
  return pre_entropy - weighted / total;
}

double GiniMerit(const std::vector<std::vector<double>>& post) {
  double total = 0;
  std::vector<double> weights(post.size());
  for (std::size_t i = 0; i < post.size(); ++i) {
    weights[i] = Sum(post[i]);
    total += weights[i];
  }
  double gini = 0;
  for (std::size_t i = 0; i < post.size(); ++i) {
    double g = 1.0;
    if (weights[i] != 0) {
      for (double v : post[i]) {
        const double f = v / weights[i];
        g -= f * f;
      }
    }
    gini += (weights[i] / total) * g;
  }
  return 1.0 - gini;
}

double HellingerMerit(const std::vector<std::vector<double>>& post) {
  // River reads classes 0 and 1 of both branches and scores 0 when one is absent.
  if (post.size() != 2) return 0.0;
  const double ln = At(post[0], 0), lp = At(post[0], 1);
  const double rn = At(post[1], 0), rp = At(post[1], 1);
  if (ln <= 0 || lp <= 0 || rn <= 0 || rp <= 0) return 0.0;
  const double tn = ln + rn;
  const double tp = lp + rp;
  const double a = std::sqrt(ln / tn) - std::sqrt(lp / tp);
  const double b = std::sqrt(rn / tn) - std::sqrt(rp / tp);
  return std::sqrt(a * a + b * b);
}

// MeritOfSplit for the many candidate splits of one leaf (n_splits thresholds per numeric
// attribute, one candidate per value of a nominal one): the entropy before the split depends on
// the leaf alone, so it is computed once per split attempt instead of once per candidate.
class SplitScorer {
 public:
  SplitScorer(SplitCriterion criterion, double min_branch_fraction, std::span<const double> pre)
      : criterion_(criterion),
        min_branch_fraction_(min_branch_fraction),
        pre_entropy_(criterion == SplitCriterion::kInfoGain ? Entropy(pre) : 0.0) {}

  double Merit(const std::vector<std::vector<double>>& post) const {
    if (BranchesAboveFraction(post, min_branch_fraction_) < 2) return kNegInf;
    switch (criterion_) {
      case SplitCriterion::kInfoGain:
        return InfoGainMerit(pre_entropy_, post);
      case SplitCriterion::kGini:
        return GiniMerit(post);
      case SplitCriterion::kHellinger:
        return HellingerMerit(post);
    }
    return kNegInf;
  }

 private:
  SplitCriterion criterion_;
  double min_branch_fraction_;
  double pre_entropy_;
};

void UpdateNumeric(Observer* obs, double x, ClassIndex y, double w, bool refresh) {
  if (y >= obs->numeric.size()) obs->numeric.resize(y + 1);
  GaussianStats& g = obs->numeric[y];
  g.Update(x, w);
  if (refresh) g.Refresh();
}

void UpdateNominal(Observer* obs, double x, ClassIndex y, double w) {
  auto it = std::lower_bound(obs->nominal.begin(), obs->nominal.end(), x,
                             [](const NominalValue& v, double key) { return v.value < key; });
  if (it == obs->nominal.end() || it->value != x) {
    it = obs->nominal.insert(it, NominalValue{x, {}});
  }
  AddAt(&it->weights, y, w);
  AddAt(&obs->nominal_class_totals, y, w);
}

double NominalCondProba(const Observer& obs, double x, std::size_t c) {
  auto it = std::lower_bound(obs.nominal.begin(), obs.nominal.end(), x,
                             [](const NominalValue& v, double key) { return v.value < key; });
  if (it == obs.nominal.end() || it->value != x) return 0.0;
  const double total = At(obs.nominal_class_totals, c);
  return total > 0 ? At(it->weights, c) / total : 0.0;
}

SplitSuggestion BestNumericSplit(const Observer& obs, FeatureIndex j, const SplitScorer& scorer,
                                 const HoeffdingTreeOptions& o) {
  SplitSuggestion best;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (const GaussianStats& g : obs.numeric) {
    if (g.n <= 0) continue;
    lo = std::min(lo, g.min);
    hi = std::max(hi, g.max);
  }
  if (!(lo < std::numeric_limits<double>::infinity())) return best;
  const double bin = (hi - lo) / (static_cast<double>(o.n_splits) + 1.0);
  const std::size_t classes = obs.numeric.size();
  std::vector<std::vector<double>> post(2, std::vector<double>(classes, 0.0));
  // Each class's standard deviation, once per attribute rather than once per threshold.
  std::vector<double> sigma(classes);
  for (std::size_t c = 0; c < classes; ++c) sigma[c] = obs.numeric[c].StdDev();
  for (std::uint64_t i = 0; i < o.n_splits; ++i) {
    const double v = lo + bin * static_cast<double>(i + 1);
    if (!(lo < v && v < hi)) continue;
    for (std::size_t c = 0; c < classes; ++c) {
      const GaussianStats& g = obs.numeric[c];
      post[0][c] = post[1][c] = 0;
      if (g.n <= 0) continue;
      if (v < g.min) {
        post[1][c] = g.n;
      } else if (v >= g.max) {
        post[0][c] = g.n;
      } else {
        post[0][c] = NormalCdf(v, g.mean, sigma[c]) * g.n;
        post[1][c] = g.n - post[0][c];
      }
    }
    const double merit = scorer.Merit(post);
    if (merit > best.merit) {
      best.merit = merit;
      best.has_feature = true;
      best.feature = j;
      best.kind = SplitKind::kNumericBinary;
      best.threshold = v;
      best.children_stats = post;
    }
  }
  return best;
}

SplitSuggestion BestNominalSplit(const Observer& obs, FeatureIndex j, const SplitScorer& scorer,
                                 const HoeffdingTreeOptions& o) {
  SplitSuggestion best;
  if (!o.binary_split) {
    std::vector<std::vector<double>> post;
    post.reserve(obs.nominal.size());
    for (const NominalValue& v : obs.nominal) {
      best.values.push_back(v.value);
      post.push_back(v.weights);
    }
    best.merit = scorer.Merit(post);
    best.has_feature = true;
    best.feature = j;
    best.kind = SplitKind::kNominalMultiway;
    best.children_stats = std::move(post);
  }
  for (const NominalValue& v : obs.nominal) {
    std::vector<std::vector<double>> post(2);
    post[0] = v.weights;
    for (const NominalValue& other : obs.nominal) {
      if (other.value == v.value) continue;
      for (std::size_t c = 0; c < other.weights.size(); ++c) AddAt(&post[1], c, other.weights[c]);
    }
    const double merit = scorer.Merit(post);
    if (merit > best.merit) {
      best.merit = merit;
      best.has_feature = true;
      best.feature = j;
      best.kind = SplitKind::kNominalBinary;
      best.threshold = v.value;
      best.values.clear();
      best.children_stats = std::move(post);
    }
  }
  return best;
}

void AppendJsonNumber(std::string* out, double v) {
  if (std::isfinite(v)) {
    absl::StrAppendFormat(out, "%.10g", v);
  } else {
    *out += "null";
  }
}

void AppendJsonString(std::string* out, std::string_view s) {
  *out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<int>(c));
        } else {
          *out += c;
        }
    }
  }
  *out += '"';
}

std::string FeatureName(std::span<const std::string> names, FeatureIndex j) {
  return j < names.size() ? names[j] : absl::StrFormat("f%d", j);
}

void AppendDoubles(std::string* out, std::span<const double> v) {
  *out += '[';
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k > 0) *out += ", ";
    AppendJsonNumber(out, v[k]);
  }
  *out += ']';
}

std::string DotEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string BranchLabel(const Node& b, std::span<const std::string> names, std::size_t child) {
  switch (b.split_kind) {
    case SplitKind::kNumericBinary:
      return absl::StrFormat("%s %.6g", child == 0 ? "<=" : ">", b.threshold);
    case SplitKind::kNominalBinary:
      return absl::StrFormat("%s %.6g", child == 0 ? "==" : "!=", b.threshold);
    case SplitKind::kNominalMultiway:
      return absl::StrFormat("== %.6g", b.branch_values[child]);
  }
  (void)names;
  return "";
}

// Loading helpers.
void Check(bool ok, const char* what) {
  if (!ok) throw cereal::Exception(std::string("hoeffding tree state: ") + what);
}

void LoadClassVector(cereal::PortableBinaryInputArchive& archive, std::size_t max_classes,
                     std::vector<double>* v) {
  LoadVector(archive, v);
  Check(v->size() <= max_classes, "class vector longer than the class count");
  for (double d : *v) Check(std::isfinite(d) && d >= 0, "invalid class weight");
}

// Nested alternates share their owner's depth, so recursion is bounded separately.
constexpr int kMaxLoadNesting = 2 * static_cast<int>(kMaxTreeDepth) + 4;

std::unique_ptr<Node> LoadNodeImpl(cereal::PortableBinaryInputArchive& archive, std::uint32_t depth,
                                   std::size_t max_classes, const AdwinOptions* adaptive,
                                   int nesting) {
  Check(depth <= kMaxTreeDepth && nesting <= kMaxLoadNesting, "tree too deep");
  auto node = std::make_unique<Node>();
  node->depth = depth;
  const bool branch = LoadBool(archive);
  LoadClassVector(archive, max_classes, &node->stats);
  if (branch) {
    std::uint8_t kind = 0;
    std::uint64_t num_children = 0;
    archive(kind, node->feature, node->threshold);
    Check(kind <= static_cast<std::uint8_t>(SplitKind::kNominalMultiway), "unknown split kind");
    node->split_kind = static_cast<SplitKind>(kind);
    LoadVector(archive, &node->branch_values);
    archive(num_children);
    if (node->split_kind == SplitKind::kNominalMultiway) {
      Check(num_children >= 1 && num_children == node->branch_values.size(),
            "multiway branch: children and values differ");
      Check(std::adjacent_find(node->branch_values.begin(), node->branch_values.end(),
                               [](double a, double b) { return !(a < b); }) ==
                node->branch_values.end(),
            "multiway branch: values not sorted");
    } else {
      Check(num_children == 2 && node->branch_values.empty(), "binary branch: bad children");
    }
    for (std::uint64_t k = 0; k < num_children; ++k) {
      node->children.push_back(
          LoadNodeImpl(archive, depth + 1, max_classes, adaptive, nesting + 1));
    }
  } else {
    node->active = LoadBool(archive);
    archive(node->last_split_attempt_at, node->mc_correct, node->nb_correct);
    Check(std::isfinite(node->last_split_attempt_at) && std::isfinite(node->mc_correct) &&
              std::isfinite(node->nb_correct),
          "invalid leaf counters");
    std::uint64_t num_observers = 0;
    archive(num_observers);
    Check(node->active || num_observers == 0, "inactive leaf with observers");
    for (std::uint64_t j = 0; j < num_observers; ++j) {
      Observer obs;
      std::uint8_t kind = 0;
      archive(kind);
      Check(kind <= static_cast<std::uint8_t>(ObserverKind::kDisabled), "unknown observer kind");
      obs.kind = static_cast<ObserverKind>(kind);
      if (obs.kind == ObserverKind::kNumeric) {
        std::uint64_t n = 0;
        archive(n);
        Check(n <= max_classes, "too many per-class estimators");
        for (std::uint64_t c = 0; c < n; ++c) {
          GaussianStats g;
          archive(g.n, g.mean, g.s, g.min, g.max);
          Check(std::isfinite(g.n) && g.n >= 0 && std::isfinite(g.mean) && std::isfinite(g.s),
                "invalid Gaussian estimator");
          g.Refresh();
          obs.numeric.push_back(g);
        }
      } else if (obs.kind == ObserverKind::kNominal) {
        std::uint64_t n = 0;
        archive(n);
        for (std::uint64_t v = 0; v < n; ++v) {
          NominalValue value;
          archive(value.value);
          LoadClassVector(archive, max_classes, &value.weights);
          Check(obs.nominal.empty() || obs.nominal.back().value < value.value,
                "nominal values not sorted");
          obs.nominal.push_back(std::move(value));
        }
        LoadClassVector(archive, max_classes, &obs.nominal_class_totals);
      }
      node->observers.push_back(std::move(obs));
    }
  }
  const bool has_adaptive = LoadBool(archive);
  Check(has_adaptive == (adaptive != nullptr), "adaptive state mismatch");
  if (has_adaptive) {
    node->adaptive = std::make_unique<AdaptiveState>(*adaptive);
    node->adaptive->adwin.Load(archive);
    archive(node->adaptive->error_n, node->adaptive->error_mean);
    Check(std::isfinite(node->adaptive->error_n) && node->adaptive->error_n >= 0 &&
              std::isfinite(node->adaptive->error_mean),
          "invalid error estimate");
    if (LoadBool(archive)) {
      Check(branch, "a leaf cannot have an alternate tree");
      node->adaptive->alternate = LoadNodeImpl(archive, depth, max_classes, adaptive, nesting + 1);
    }
  }
  return node;
}

}  // namespace

const double* FindFeature(const FeatureVector& x, FeatureIndex j) {
  const std::span<const FeatureIndex> idx = x.indices();
  if (j < idx.size() && idx[j] == j) return &x.values()[j];
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (idx[k] == j) return &x.values()[k];
  }
  return nullptr;
}

void GaussianStats::Update(double x, double w) {
  if (n <= 0) {
    min = max = x;
  } else {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const double old_mean = mean;
  n += w;
  mean += (w / n) * (x - old_mean);
  s += w * (x - old_mean) * (x - mean);
}

void GaussianStats::Refresh() {
  const double var = Variance();
  if (var > 0) {
    neg_half_inv_var = 1.0 / (-2.0 * var);
    log_norm = -kHalfLogTwoPi - 0.5 * std::log(var);
  } else {
    neg_half_inv_var = 0;
    log_norm = kNegInf;
  }
}

double NormalCdf(double x, double mean, double sigma) {
  if (sigma == 0) return 0.0;
  return 0.5 * (1.0 + std::erf((x - mean) / sigma / std::sqrt(2.0)));
}

double MeritOfSplit(SplitCriterion c, double min_branch_fraction, std::span<const double> pre,
                    const std::vector<std::vector<double>>& post) {
  return SplitScorer(c, min_branch_fraction, pre).Merit(post);
}

double RangeOfMerit(SplitCriterion c, std::span<const double> pre) {
  if (c == SplitCriterion::kGini) return 1.0;
  std::size_t classes = 0;
  for (double d : pre) {
    if (d > 0) ++classes;
  }
  return std::log2(static_cast<double>(std::max<std::size_t>(classes, 2)));
}

double HoeffdingBound(double range, double delta, double n) {
  return std::sqrt((range * range * std::log(1.0 / delta)) / (2.0 * n));
}

double Node::TotalWeight() const { return Sum(stats); }

std::unique_ptr<Node> NewLeaf(std::vector<double> stats, std::uint32_t depth,
                              const AdwinOptions* adaptive) {
  auto leaf = std::make_unique<Node>();
  leaf->stats = std::move(stats);
  leaf->depth = depth;
  leaf->last_split_attempt_at = leaf->TotalWeight();
  if (adaptive != nullptr) leaf->adaptive = std::make_unique<AdaptiveState>(*adaptive);
  return leaf;
}

std::unique_ptr<Node> CloneNode(const Node& node) {
  auto copy = std::make_unique<Node>();
  copy->stats = node.stats;
  copy->depth = node.depth;
  copy->split_kind = node.split_kind;
  copy->feature = node.feature;
  copy->threshold = node.threshold;
  copy->branch_values = node.branch_values;
  copy->children.reserve(node.children.size());
  for (const auto& child : node.children) copy->children.push_back(CloneNode(*child));
  copy->active = node.active;
  copy->last_split_attempt_at = node.last_split_attempt_at;
  copy->mc_correct = node.mc_correct;
  copy->nb_correct = node.nb_correct;
  copy->observers = node.observers;
  if (node.adaptive != nullptr) {
    copy->adaptive = std::make_unique<AdaptiveState>(node.adaptive->adwin.options());
    copy->adaptive->adwin = node.adaptive->adwin;
    copy->adaptive->error_n = node.adaptive->error_n;
    copy->adaptive->error_mean = node.adaptive->error_mean;
    if (node.adaptive->alternate != nullptr) {
      copy->adaptive->alternate = CloneNode(*node.adaptive->alternate);
    }
  }
  return copy;
}

void LeafLearn(Node* leaf, const FeatureVector& x, ClassIndex y, double w,
               const HoeffdingTreeOptions& o, bool score_nba, std::optional<ClassIndex> nb_choice,
               std::vector<double>* scratch) {
  if (score_nba && leaf->active) {
    const double total = leaf->TotalWeight();
    if (total <= 0 || ArgMaxOf(leaf->stats) == y) leaf->mc_correct += w;
    scratch->assign(std::max<std::size_t>(leaf->stats.size(), 1), 0.0);
    if (total > 0) {
      if (!nb_choice.has_value()) {
        NaiveBayes(*leaf, x, *scratch);
        nb_choice = NaiveBayesChoice(*leaf, *scratch);
      }
      if (*nb_choice == y) leaf->nb_correct += w;
    }
  }
  AddAt(&leaf->stats, y, w);
  if (!leaf->active) return;
  const bool refresh = o.leaf_prediction != LeafPrediction::kMajorityClass;
  const std::span<const FeatureIndex> idx = x.indices();
  const std::span<const double> val = x.values();
  if (x.Extent() > leaf->observers.size()) leaf->observers.resize(x.Extent());
  for (std::size_t k = 0; k < idx.size(); ++k) {
    Observer& obs = leaf->observers[idx[k]];
    switch (obs.kind) {
      case ObserverKind::kNumeric:
        UpdateNumeric(&obs, val[k], y, w, refresh);
        break;
      case ObserverKind::kNominal:
        UpdateNominal(&obs, val[k], y, w);
        break;
      case ObserverKind::kDisabled:
        break;
      case ObserverKind::kNone:
        if (o.IsNominal(idx[k])) {
          obs.kind = ObserverKind::kNominal;
          UpdateNominal(&obs, val[k], y, w);
        } else {
          obs.kind = ObserverKind::kNumeric;
          UpdateNumeric(&obs, val[k], y, w, refresh);
        }
        break;
    }
  }
}

void NaiveBayes(const Node& leaf, const FeatureVector& x, std::span<double> out) {
  std::fill(out.begin(), out.end(), 0.0);
  const std::size_t classes = std::min(leaf.stats.size(), out.size());
  const double total = leaf.TotalWeight();
  if (total <= 0) return;
  // Log prior, then one log likelihood per present attribute. A class the leaf has no weight
  // for gets probability 0 (River gives it a log vote of 0, i.e. the largest possible).
  for (std::size_t c = 0; c < classes; ++c) {
    out[c] = leaf.stats[c] > 0 ? std::log(leaf.stats[c] / total) : kNegInf;
  }
  const std::span<const FeatureIndex> idx = x.indices();
  const std::span<const double> val = x.values();
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (idx[k] >= leaf.observers.size()) continue;
    const Observer& obs = leaf.observers[idx[k]];
    if (obs.kind == ObserverKind::kNumeric) {
      // The hot loop of naive Bayes (features x classes, twice per example at an NBA leaf), so
      // it tests as little as possible. The log density (GaussianStats) is -inf or NaN for a
      // class without variance yet (log_norm == -inf); such a term is skipped by adding +0.0,
      // which leaves out[c] unchanged bit for bit (out[c] is never -0.0: it starts as log(p) or
      // -inf, and a sum is -0.0 only if both terms are). out[c] needs no test: -inf plus a
      // finite term stays -inf.
      const double v = val[k];
      const GaussianStats* g = obs.numeric.data();
      const std::size_t n = std::min(classes, obs.numeric.size());
      for (std::size_t c = 0; c < n; ++c) {
        const double lp = (v - g[c].mean) * (v - g[c].mean) * g[c].neg_half_inv_var + g[c].log_norm;
        out[c] += lp > kNegInf ? lp : 0.0;
      }
    } else if (obs.kind == ObserverKind::kNominal) {
      for (std::size_t c = 0; c < classes; ++c) {
        const double p = NominalCondProba(obs, val[k], c);
        if (p > 0 && out[c] > kNegInf) out[c] += std::log(p);
      }
    }
  }
  double max_ll = kNegInf;
  for (std::size_t c = 0; c < classes; ++c) max_ll = std::max(max_ll, out[c]);
  double sum = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    out[c] = out[c] > kNegInf ? std::exp(out[c] - max_ll) : 0.0;
    sum += out[c];
  }
  for (std::size_t c = 0; c < classes; ++c) out[c] /= sum;
}

ClassIndex NaiveBayesChoice(const Node& leaf, std::span<const double> nb) {
  assert(!leaf.stats.empty() && nb.size() >= leaf.stats.size());
  return static_cast<ClassIndex>(ArgMaxOf(nb.first(leaf.stats.size())));
}

bool LeafPredictsWithNaiveBayes(const Node& leaf, const HoeffdingTreeOptions& o) {
  if (!leaf.active) return false;
  switch (o.leaf_prediction) {
    case LeafPrediction::kMajorityClass:
      return false;
    case LeafPrediction::kNaiveBayes:
      return leaf.TotalWeight() >= static_cast<double>(o.nb_threshold);
    case LeafPrediction::kNaiveBayesAdaptive:
      return leaf.nb_correct >= leaf.mc_correct;
  }
  return false;
}

bool LeafPredict(const Node& leaf, const FeatureVector& x, const HoeffdingTreeOptions& o,
                 std::span<double> out) {
  const double total = leaf.TotalWeight();
  std::fill(out.begin(), out.end(), 0.0);
  if (total <= 0) return false;
  if (LeafPredictsWithNaiveBayes(leaf, o)) {
    NaiveBayes(leaf, x, out);
  } else {
    const std::size_t classes = std::min(leaf.stats.size(), out.size());
    for (std::size_t c = 0; c < classes; ++c) out[c] = leaf.stats[c] / total;
  }
  return true;
}

void DeactivateLeaf(Node* leaf) {
  leaf->active = false;
  leaf->observers.clear();
  leaf->observers.shrink_to_fit();
}

void ActivateLeaf(Node* leaf) { leaf->active = true; }

double LeafPromise(const Node& leaf) {
  const double total = leaf.TotalWeight();
  if (total <= 0) return 0;
  return total - *std::max_element(leaf.stats.begin(), leaf.stats.end());
}

int Route(const Node& branch, const FeatureVector& x) {
  const double* v = FindFeature(x, branch.feature);
  if (v == nullptr) return -1;
  switch (branch.split_kind) {
    case SplitKind::kNumericBinary:
      return *v <= branch.threshold ? 0 : 1;
    case SplitKind::kNominalBinary:
      return *v == branch.threshold ? 0 : 1;
    case SplitKind::kNominalMultiway: {
      const auto& values = branch.branch_values;
      auto it = std::lower_bound(values.begin(), values.end(), *v);
      if (it == values.end() || *it != *v) return -1;
      return static_cast<int>(it - values.begin());
    }
  }
  return -1;
}

double SubtreeWeight(const Node& node) {
  if (node.is_leaf()) return node.TotalWeight();
  double w = 0;
  for (const auto& child : node.children) w += SubtreeWeight(*child);
  return w;
}

std::size_t MostCommonChild(const Node& branch) {
  std::size_t best = 0;
  double best_weight = SubtreeWeight(*branch.children[0]);
  for (std::size_t k = 1; k < branch.children.size(); ++k) {
    const double w = SubtreeWeight(*branch.children[k]);
    if (w > best_weight) {
      best = k;
      best_weight = w;
    }
  }
  return best;
}

SplitAction AttemptSplit(Node* leaf, const HoeffdingTreeOptions& o, SplitSuggestion* best) {
  const std::span<const double> pre = leaf->stats;
  std::size_t non_zero = 0;
  for (double d : pre) non_zero += d != 0 ? 1 : 0;
  if (non_zero < 2) return SplitAction::kNone;  // a pure leaf never splits
  const double total = Sum(pre);
  const double majority = *std::max_element(pre.begin(), pre.end());
  // River deactivates the leaf here (dropping its observers), and a later memory check may
  // reactivate it empty. Riffle keeps learning and simply does not split it (see header).
  if (majority / total > o.max_share_to_split) return SplitAction::kNone;

  const SplitScorer scorer(o.split_criterion, o.min_branch_fraction, pre);
  std::vector<SplitSuggestion> suggestions;
  if (o.merit_preprune) suggestions.emplace_back();  // the null split
  for (std::size_t j = 0; j < leaf->observers.size(); ++j) {
    const Observer& obs = leaf->observers[j];
    if (obs.kind == ObserverKind::kNumeric) {
      suggestions.push_back(BestNumericSplit(obs, static_cast<FeatureIndex>(j), scorer, o));
    } else if (obs.kind == ObserverKind::kNominal) {
      suggestions.push_back(BestNominalSplit(obs, static_cast<FeatureIndex>(j), scorer, o));
    }
  }
  if (suggestions.empty()) return SplitAction::kNone;
  // Stable: among equal merits the later candidate (higher feature index) wins, as in River.
  std::stable_sort(
      suggestions.begin(), suggestions.end(),
      [](const SplitSuggestion& a, const SplitSuggestion& b) { return a.merit < b.merit; });
  bool should_split = false;
  if (suggestions.size() < 2) {
    should_split = true;
  } else {
    const double eps = HoeffdingBound(RangeOfMerit(o.split_criterion, pre), o.delta, total);
    const SplitSuggestion& first = suggestions.back();
    const SplitSuggestion& second = suggestions[suggestions.size() - 2];
    // -inf - -inf is NaN: two invalid candidates never pass the first test.
    if (first.merit - second.merit > eps || eps < o.tau) should_split = true;
    if (o.remove_poor_attrs && o.leaf_prediction == LeafPrediction::kMajorityClass) {
      for (const SplitSuggestion& s : suggestions) {
        if (s.has_feature && first.merit - s.merit > eps && s.feature < leaf->observers.size()) {
          Observer& obs = leaf->observers[s.feature];
          obs = Observer();
          obs.kind = ObserverKind::kDisabled;
        }
      }
    }
  }
  if (!should_split) return SplitAction::kNone;
  if (!suggestions.back().has_feature) return SplitAction::kDeactivate;
  *best = std::move(suggestions.back());
  return SplitAction::kSplit;
}

std::unique_ptr<Node> MakeBranch(const Node& leaf, SplitSuggestion split,
                                 const AdwinOptions* adaptive) {
  auto branch = std::make_unique<Node>();
  branch->stats = leaf.stats;
  branch->depth = leaf.depth;
  branch->split_kind = split.kind;
  branch->feature = split.feature;
  branch->threshold = split.threshold;
  branch->branch_values = std::move(split.values);
  branch->active = false;
  for (std::vector<double>& stats : split.children_stats) {
    branch->children.push_back(NewLeaf(std::move(stats), leaf.depth + 1, adaptive));
  }
  if (adaptive != nullptr) branch->adaptive = std::make_unique<AdaptiveState>(*adaptive);
  return branch;
}

void CollectLeaves(Node* node, bool alternates, std::vector<Node*>* out) {
  if (node->is_leaf()) {
    out->push_back(node);
  } else {
    for (auto& child : node->children) CollectLeaves(child.get(), alternates, out);
  }
  if (alternates && node->adaptive != nullptr && node->adaptive->alternate != nullptr) {
    CollectLeaves(node->adaptive->alternate.get(), alternates, out);
  }
}

TreeStats StatsOf(const Node* root, std::size_t memory_bytes) {
  TreeStats stats;
  if (root != nullptr) {
    TreeShape shape;
    MeasureTree(*root, &shape);
    stats.nodes = shape.nodes;
    stats.branches = shape.branches;
    stats.leaves = shape.leaves;
    stats.active_leaves = shape.active_leaves;
    stats.inactive_leaves = shape.leaves - shape.active_leaves;
    stats.depth = shape.depth;
    stats.alternate_trees = shape.alternate_trees;
  }
  stats.memory_bytes = memory_bytes;
  return stats;
}

void MeasureTree(const Node& node, TreeShape* shape) {
  ++shape->nodes;
  if (node.adaptive != nullptr && node.adaptive->alternate != nullptr) ++shape->alternate_trees;
  if (node.is_leaf()) {
    ++shape->leaves;
    if (node.active) ++shape->active_leaves;
    shape->depth = std::max<std::size_t>(shape->depth, node.depth);
    return;
  }
  ++shape->branches;
  for (const auto& child : node.children) MeasureTree(*child, shape);
}

std::size_t LeafMemoryBytes(const Node& leaf) {
  std::size_t bytes = sizeof(Node) + leaf.stats.capacity() * sizeof(double) +
                      leaf.observers.capacity() * sizeof(Observer);
  for (const Observer& obs : leaf.observers) {
    bytes += obs.numeric.capacity() * sizeof(GaussianStats) +
             obs.nominal.capacity() * sizeof(NominalValue) +
             obs.nominal_class_totals.capacity() * sizeof(double);
    for (const NominalValue& v : obs.nominal) bytes += v.weights.capacity() * sizeof(double);
  }
  if (leaf.adaptive != nullptr) bytes += sizeof(AdaptiveState) + leaf.adaptive->adwin.MemoryBytes();
  return bytes;
}

std::size_t NodeMemoryBytes(const Node& node) {
  std::size_t bytes = LeafMemoryBytes(node) + node.branch_values.capacity() * sizeof(double) +
                      node.children.capacity() * sizeof(std::unique_ptr<Node>);
  for (const auto& child : node.children) bytes += NodeMemoryBytes(*child);
  if (node.adaptive != nullptr && node.adaptive->alternate != nullptr) {
    bytes += NodeMemoryBytes(*node.adaptive->alternate);
  }
  return bytes;
}

void MemoryManager::Enforce(Node* root, bool alternates, const HoeffdingTreeOptions& o) {
  const double max_bytes = o.max_size * 1024.0 * 1024.0;
  std::vector<Node*> leaves;
  CollectLeaves(root, alternates, &leaves);
  double n_active = 0;
  for (const Node* leaf : leaves) n_active += leaf->active ? 1 : 0;
  const double n_inactive = static_cast<double>(leaves.size()) - n_active;
  // River tests "n_inactive > 0 or size > max" and forgets to multiply the active estimate by
  // the active count; growth stops here only when the estimated size is over the budget.
  const double size =
      overhead_fraction * (n_active * active_leaf_bytes + n_inactive * inactive_leaf_bytes);
  if (o.stop_mem_management && size > max_bytes) {
    growth_allowed = false;
    return;
  }
  std::stable_sort(leaves.begin(), leaves.end(),
                   [](const Node* a, const Node* b) { return LeafPromise(*a) < LeafPromise(*b); });
  const std::size_t total = leaves.size();
  std::size_t max_active = 0;
  while (max_active < total) {
    ++max_active;
    const double estimate = (static_cast<double>(max_active) * active_leaf_bytes +
                             static_cast<double>(total - max_active) * inactive_leaf_bytes) *
                            overhead_fraction;
    if (estimate > max_bytes) {
      --max_active;
      break;
    }
  }
  const std::size_t cutoff = total - max_active;
  for (std::size_t k = 0; k < cutoff; ++k) {
    if (leaves[k]->active) DeactivateLeaf(leaves[k]);
  }
  for (std::size_t k = cutoff; k < total; ++k) {
    if (!leaves[k]->active && leaves[k]->depth < o.DepthLimit()) ActivateLeaf(leaves[k]);
  }
}

void MemoryManager::Estimate(Node* root, bool alternates, const HoeffdingTreeOptions& o) {
  std::vector<Node*> leaves;
  CollectLeaves(root, alternates, &leaves);
  double active_bytes = 0, inactive_bytes = 0, n_active = 0, n_inactive = 0;
  for (const Node* leaf : leaves) {
    const double b = static_cast<double>(LeafMemoryBytes(*leaf));
    if (leaf->active) {
      active_bytes += b;
      ++n_active;
    } else {
      inactive_bytes += b;
      ++n_inactive;
    }
  }
  if (active_bytes > 0 && n_active > 0) active_leaf_bytes = active_bytes / n_active;
  if (inactive_bytes > 0 && n_inactive > 0) inactive_leaf_bytes = inactive_bytes / n_inactive;
  const double actual = static_cast<double>(NodeMemoryBytes(*root));
  const double estimated = n_active * active_leaf_bytes + n_inactive * inactive_leaf_bytes;
  if (estimated > 0) overhead_fraction = actual / estimated;
  if (actual > o.max_size * 1024.0 * 1024.0) Enforce(root, alternates, o);
}

void SaveNode(cereal::PortableBinaryOutputArchive& archive, const Node& node) {
  SaveBool(archive, !node.is_leaf());
  SaveVector(archive, node.stats);
  if (!node.is_leaf()) {
    archive(static_cast<std::uint8_t>(node.split_kind), node.feature, node.threshold);
    SaveVector(archive, node.branch_values);
    archive(static_cast<std::uint64_t>(node.children.size()));
    for (const auto& child : node.children) SaveNode(archive, *child);
  } else {
    SaveBool(archive, node.active);
    archive(node.last_split_attempt_at, node.mc_correct, node.nb_correct);
    archive(static_cast<std::uint64_t>(node.observers.size()));
    for (const Observer& obs : node.observers) {
      archive(static_cast<std::uint8_t>(obs.kind));
      if (obs.kind == ObserverKind::kNumeric) {
        archive(static_cast<std::uint64_t>(obs.numeric.size()));
        for (const GaussianStats& g : obs.numeric) archive(g.n, g.mean, g.s, g.min, g.max);
      } else if (obs.kind == ObserverKind::kNominal) {
        archive(static_cast<std::uint64_t>(obs.nominal.size()));
        for (const NominalValue& v : obs.nominal) {
          archive(v.value);
          SaveVector(archive, v.weights);
        }
        SaveVector(archive, obs.nominal_class_totals);
      }
    }
  }
  SaveBool(archive, node.adaptive != nullptr);
  if (node.adaptive != nullptr) {
    node.adaptive->adwin.Save(archive);
    archive(node.adaptive->error_n, node.adaptive->error_mean);
    SaveBool(archive, node.adaptive->alternate != nullptr);
    if (node.adaptive->alternate != nullptr) SaveNode(archive, *node.adaptive->alternate);
  }
}

std::unique_ptr<Node> LoadNode(cereal::PortableBinaryInputArchive& archive, std::uint32_t depth,
                               std::size_t max_classes, const AdwinOptions* adaptive) {
  return LoadNodeImpl(archive, depth, max_classes, adaptive, 0);
}

void AppendNodeJson(const Node& node, std::span<const std::string> feature_names,
                    std::string* out) {
  absl::StrAppendFormat(out, "{\"type\": \"%s\", \"depth\": %d, \"weight\": ",
                        node.is_leaf() ? "leaf" : "branch", node.depth);
  AppendJsonNumber(out, SubtreeWeight(node));
  *out += ", \"stats\": ";
  AppendDoubles(out, node.stats);
  if (node.is_leaf()) {
    absl::StrAppendFormat(out, ", \"active\": %s", node.active ? "true" : "false");
    if (!node.stats.empty()) absl::StrAppendFormat(out, ", \"class\": %d", ArgMaxOf(node.stats));
  } else {
    *out += ", \"feature\": ";
    AppendJsonString(out, FeatureName(feature_names, node.feature));
    absl::StrAppendFormat(out, ", \"feature_index\": %d", node.feature);
    switch (node.split_kind) {
      case SplitKind::kNumericBinary:
        *out += ", \"test\": \"<=\", \"threshold\": ";
        AppendJsonNumber(out, node.threshold);
        break;
      case SplitKind::kNominalBinary:
        *out += ", \"test\": \"==\", \"value\": ";
        AppendJsonNumber(out, node.threshold);
        break;
      case SplitKind::kNominalMultiway:
        *out += ", \"test\": \"in\", \"values\": ";
        AppendDoubles(out, node.branch_values);
        break;
    }
    *out += ", \"children\": [";
    for (std::size_t k = 0; k < node.children.size(); ++k) {
      if (k > 0) *out += ", ";
      AppendNodeJson(*node.children[k], feature_names, out);
    }
    *out += "]";
  }
  if (node.adaptive != nullptr) {
    *out += ", \"error_rate\": ";
    AppendJsonNumber(out, node.adaptive->error_mean);
    *out += ", \"error_weight\": ";
    AppendJsonNumber(out, node.adaptive->error_n);
    if (node.adaptive->alternate != nullptr) {
      *out += ", \"alternate\": ";
      AppendNodeJson(*node.adaptive->alternate, feature_names, out);
    }
  }
  *out += "}";
}

void AppendNodeDot(const Node& node, std::span<const std::string> feature_names, std::string* out,
                   std::size_t* next_id) {
  const std::size_t id = (*next_id)++;
  std::string label;
  if (node.is_leaf()) {
    const double total = node.TotalWeight();
    if (total > 0) {
      const std::size_t c = ArgMaxOf(node.stats);
      label = absl::StrFormat("class %d (%.3f)\\nweight %.6g%s", c, node.stats[c] / total, total,
                              node.active ? "" : "\\ninactive");
    } else {
      label = "empty leaf";
    }
    absl::StrAppendFormat(out, "  n%d [label=\"%s\", shape=ellipse];\n", id, label);
  } else {
    label = absl::StrFormat("%s\\nweight %.6g", DotEscape(FeatureName(feature_names, node.feature)),
                            SubtreeWeight(node));
    absl::StrAppendFormat(out, "  n%d [label=\"%s\", shape=box];\n", id, label);
    for (std::size_t k = 0; k < node.children.size(); ++k) {
      const std::size_t child_id = *next_id;
      AppendNodeDot(*node.children[k], feature_names, out, next_id);
      absl::StrAppendFormat(out, "  n%d -> n%d [label=\"%s\"];\n", id, child_id,
                            BranchLabel(node, feature_names, k));
    }
  }
  if (node.adaptive != nullptr && node.adaptive->alternate != nullptr) {
    const std::size_t alt_id = *next_id;
    AppendNodeDot(*node.adaptive->alternate, feature_names, out, next_id);
    absl::StrAppendFormat(out, "  n%d -> n%d [label=\"alternate\", style=dashed];\n", id, alt_id);
  }
}

void SaveTreeOptions(cereal::PortableBinaryOutputArchive& archive, const HoeffdingTreeOptions& o) {
  archive(o.grace_period);
  SaveOptional(archive, o.max_depth);
  archive(static_cast<std::uint8_t>(o.split_criterion), o.delta, o.tau,
          static_cast<std::uint8_t>(o.leaf_prediction), o.nb_threshold);
  SaveVector(archive, o.nominal_attributes);
  archive(o.n_splits);
  SaveBool(archive, o.binary_split);
  archive(o.min_branch_fraction, o.max_share_to_split, o.max_size, o.memory_estimate_period);
  SaveBool(archive, o.stop_mem_management);
  SaveBool(archive, o.remove_poor_attrs);
  SaveBool(archive, o.merit_preprune);
}

HoeffdingTreeOptions LoadTreeOptions(cereal::PortableBinaryInputArchive& archive) {
  HoeffdingTreeOptions o;
  std::uint8_t criterion = 0;
  std::uint8_t prediction = 0;
  archive(o.grace_period);
  LoadOptional(archive, &o.max_depth);
  archive(criterion, o.delta, o.tau, prediction, o.nb_threshold);
  Check(criterion <= static_cast<std::uint8_t>(SplitCriterion::kHellinger) &&
            prediction <= static_cast<std::uint8_t>(LeafPrediction::kNaiveBayesAdaptive),
        "unknown enum value in options");
  o.split_criterion = static_cast<SplitCriterion>(criterion);
  o.leaf_prediction = static_cast<LeafPrediction>(prediction);
  LoadVector(archive, &o.nominal_attributes);
  archive(o.n_splits);
  o.binary_split = LoadBool(archive);
  archive(o.min_branch_fraction, o.max_share_to_split, o.max_size, o.memory_estimate_period);
  o.stop_mem_management = LoadBool(archive);
  o.remove_poor_attrs = LoadBool(archive);
  o.merit_preprune = LoadBool(archive);
  if (absl::Status s = o.Validate(); !s.ok()) {
    throw cereal::Exception(absl::StrFormat("hoeffding tree state: %s", s.message()));
  }
  return o;
}

void SaveMemoryManager(cereal::PortableBinaryOutputArchive& archive, const MemoryManager& m) {
  archive(m.active_leaf_bytes, m.inactive_leaf_bytes, m.overhead_fraction);
  SaveBool(archive, m.growth_allowed);
}

MemoryManager LoadMemoryManager(cereal::PortableBinaryInputArchive& archive) {
  MemoryManager m;
  archive(m.active_leaf_bytes, m.inactive_leaf_bytes, m.overhead_fraction);
  m.growth_allowed = LoadBool(archive);
  Check(std::isfinite(m.active_leaf_bytes) && std::isfinite(m.inactive_leaf_bytes) &&
            std::isfinite(m.overhead_fraction),
        "invalid memory estimates");
  return m;
}

std::string TreeJson(std::string_view kind, const Node* root, const TreeStats& stats,
                     std::span<const std::string> feature_names) {
  std::string out = "{\"kind\": ";
  AppendJsonString(&out, kind);
  absl::StrAppendFormat(&out,
                        ", \"stats\": {\"nodes\": %d, \"branches\": %d, \"leaves\": %d, "
                        "\"active_leaves\": %d, \"inactive_leaves\": %d, \"depth\": %d, "
                        "\"alternate_trees\": %d, \"memory_bytes\": %d}, \"root\": ",
                        stats.nodes, stats.branches, stats.leaves, stats.active_leaves,
                        stats.inactive_leaves, stats.depth, stats.alternate_trees,
                        stats.memory_bytes);
  if (root == nullptr) {
    out += "null";
  } else {
    AppendNodeJson(*root, feature_names, &out);
  }
  out += "}\n";
  return out;
}

std::string TreeDot(const Node* root, std::span<const std::string> feature_names) {
  std::string out = "digraph tree {\n  node [fontname=\"Helvetica\"];\n";
  if (root != nullptr) {
    std::size_t next_id = 0;
    AppendNodeDot(*root, feature_names, &out, &next_id);
  }
  out += "}\n";
  return out;
}

}  // namespace riffle::learners::tree_internal
