#ifndef RIFFLE_SERVICE_METRIC_VALUES_H_
#define RIFFLE_SERVICE_METRIC_VALUES_H_

#include <cstdint>
#include <optional>

#include "learners/metrics.h"

namespace riffle::service {

// The values of one population of prequential metrics (cumulative or rolling), as reported by
// `riffle eval`, GetMetrics and the metrics endpoint.
struct MetricValues {
  double accuracy = 0;
  double log_loss = 0;
  std::optional<double> roc_auc;  // binary only, and only once both classes were scored
  double macro_f1 = 0;
  // Binary metrics of the positive class (class index 1, the second label seen).
  std::optional<double> precision;
  std::optional<double> recall;
  std::optional<double> f1;
  std::uint64_t count = 0;  // scored examples in the population
};

// The values of `m`; the binary metrics only when `binary` (the model has two classes).
MetricValues SnapshotMetrics(const learners::MetricAccumulator& m, bool binary);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_METRIC_VALUES_H_
