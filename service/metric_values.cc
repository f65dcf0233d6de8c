#include "service/metric_values.h"

#include <cmath>

namespace riffle::service {

MetricValues SnapshotMetrics(const learners::MetricAccumulator& m, bool binary) {
  MetricValues v;
  v.accuracy = m.Accuracy();
  v.log_loss = m.LogLoss();
  v.macro_f1 = m.MacroF1();
  v.count = m.Count();
  if (binary) {
    const double auc = m.RocAuc();
    if (std::isfinite(auc)) v.roc_auc = auc;
    v.precision = m.Precision();
    v.recall = m.Recall();
    v.f1 = m.F1();
  }
  return v;
}

}  // namespace riffle::service
