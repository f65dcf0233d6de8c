#ifndef RIFFLE_SERVICE_KAFKA_FACTORY_H_
#define RIFFLE_SERVICE_KAFKA_FACTORY_H_

// How code in riffle_service obtains Kafka clients without linking librdkafka: the `riffle`
// binary fills a factory with the real clients (NewKafkaConsumer / NewKafkaProducer from
// riffle_kafka), tests with tests/service/fake_kafka.h. An empty factory means this build has
// no Kafka client (the ThreadSanitizer build, which cannot run librdkafka): whatever needs
// Kafka then fails with FailedPrecondition saying so.

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "service/kafka_client.h"

namespace riffle::service {

struct KafkaClientFactory {
  std::function<absl::StatusOr<std::unique_ptr<KafkaConsumer>>(const KafkaConsumerOptions&)>
      new_consumer;
  std::function<absl::StatusOr<std::unique_ptr<KafkaProducer>>(const KafkaProducerOptions&)>
      new_producer;

  bool available() const { return new_consumer != nullptr && new_producer != nullptr; }
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_KAFKA_FACTORY_H_
