#ifndef RIFFLE_SERVICE_KAFKA_METRICS_H_
#define RIFFLE_SERVICE_KAFKA_METRICS_H_

#include <memory>
#include <vector>

#include "service/kafka_pipeline.h"
#include "service/prometheus.h"

namespace riffle::service {

// The Kafka path of every model, labelled model="<name>" (docs/KAFKA.md lists the metrics):
// records, predictions, routed copies, delayed labels joined and missed, dead letters by
// reason, delivery retries and failures, poll errors, offset commits, whether the path is
// connected, the consumer lag per partition, and the event-to-prediction latency (record
// timestamp to delivery of its prediction). Reads KafkaPipeline::stats() (a short mutex) and
// the lock-free latency histogram.
class KafkaMetricsSource : public MetricsSource {
 public:
  // The pipelines must outlive the source.
  explicit KafkaMetricsSource(std::vector<const KafkaPipeline*> pipelines)
      : pipelines_(std::move(pipelines)) {}
  void Collect(MetricFamilies* out) override;

 private:
  std::vector<const KafkaPipeline*> pipelines_;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_KAFKA_METRICS_H_
