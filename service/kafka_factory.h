#ifndef RIFFLE_SERVICE_KAFKA_FACTORY_H_
#define RIFFLE_SERVICE_KAFKA_FACTORY_H_

// How code in riffle_service obtains Kafka clients without linking librdkafka: the `riffle`
// binary fills a factory with the real clients (NewKafkaConsumer / NewKafkaProducer from
// riffle_kafka), tests with tests/service/fake_kafka.h. An empty factory means this build has
// no Kafka client (the ThreadSanitizer build, which cannot run librdkafka): whatever needs
// Kafka then fails with FailedPrecondition saying so.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/kafka_client.h"

namespace riffle::service {

// An in-process Kafka cluster (librdkafka's mock cluster, see KafkaMockCluster) for `riffle
// serve --kafka embedded`: brokers on loopback ports inside this process, which other
// processes (riffle replay, a consumer) can reach at bootstrap_servers(). Data lives in memory.
class EmbeddedKafka {
 public:
  virtual ~EmbeddedKafka() = default;
  virtual const std::string& bootstrap_servers() const = 0;
  // Creates a topic (AlreadyExists is not an error here: the caller may ask twice).
  virtual absl::Status CreateTopic(std::string_view topic, int partitions) = 0;
};

struct KafkaClientFactory {
  std::function<absl::StatusOr<std::unique_ptr<KafkaConsumer>>(const KafkaConsumerOptions&)>
      new_consumer;
  std::function<absl::StatusOr<std::unique_ptr<KafkaProducer>>(const KafkaProducerOptions&)>
      new_producer;
  // Null when this build has no Kafka client.
  std::function<absl::StatusOr<std::unique_ptr<EmbeddedKafka>>()> new_embedded;

  bool available() const { return new_consumer != nullptr && new_producer != nullptr; }
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_KAFKA_FACTORY_H_
