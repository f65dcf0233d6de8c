#include "service/kafka_metrics.h"

#include <string>

#include "service/metrics_sources.h"

namespace riffle::service {

void KafkaMetricsSource::Collect(MetricFamilies* out) {
  for (const KafkaPipeline* pipeline : pipelines_) {
    const KafkaPipelineStats s = pipeline->stats();
    const MetricLabels model = {{"model", pipeline->model_name()}};
    auto counter = [&](const char* name, const char* help, std::uint64_t value) {
      out->AddCounter(name, help, model, static_cast<double>(value));
    };
    counter("riffle_kafka_records_total", "Records consumed from the model's input topics.",
            s.records);
    counter("riffle_kafka_events_total", "Events predicted (labeled ones also scored and learned).",
            s.events);
    counter("riffle_kafka_predictions_total", "Prediction records delivered.", s.predictions);
    counter("riffle_kafka_routed_total", "Copies of predictions delivered to routing topics.",
            s.routed);
    counter("riffle_kafka_labels_joined_total",
            "Delayed labels joined with the features of their event and learned.", s.labels_joined);
    counter("riffle_kafka_labels_missed_total",
            "Delayed labels whose event was not (or no longer) cached.", s.labels_missed);
    counter("riffle_kafka_delivery_retries_total", "Failed deliveries that were retried.",
            s.delivery_retries);
    counter("riffle_kafka_delivery_failures_total",
            "Outputs that exhausted their delivery attempts (sent to the dead-letter topic).",
            s.delivery_failures);
    counter("riffle_kafka_poll_errors_total", "Consumer errors (broker unreachable, ...).",
            s.poll_errors);
    counter("riffle_kafka_offset_commits_total",
            "Offsets committed to the consumer group after durable checkpoints.", s.commits);
    for (const auto& [reason, count] : s.dead_letters_by_reason) {
      out->AddCounter("riffle_kafka_dead_letters_total",
                      "Records sent to the dead-letter topic, by reason (error code).",
                      {{"model", pipeline->model_name()}, {"reason", reason}},
                      static_cast<double>(count));
    }
    out->AddGauge("riffle_kafka_connected",
                  "1 while the model's Kafka path is assigned and the broker answers.", model,
                  s.connected ? 1 : 0);
    for (const auto& [input, lag] : s.lag) {
      const std::size_t slash = input.rfind('/');
      out->AddGauge("riffle_kafka_consumer_lag_records",
                    "Records in the partition not yet processed by the model (high watermark "
                    "minus the model's next offset).",
                    {{"model", pipeline->model_name()},
                     {"topic", input.substr(0, slash)},
                     {"partition", slash == std::string::npos ? "" : input.substr(slash + 1)}},
                    static_cast<double>(lag));
    }
    out->AddHistogram("riffle_kafka_event_to_prediction_seconds",
                      "From an event's record timestamp to the delivery of its prediction.", model,
                      ToPrometheusHistogram(pipeline->latency(), LatencyBucketBoundsSeconds()));
  }
}

}  // namespace riffle::service
