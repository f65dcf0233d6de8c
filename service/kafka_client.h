#ifndef RIFFLE_SERVICE_KAFKA_CLIENT_H_
#define RIFFLE_SERVICE_KAFKA_CLIENT_H_

// Riffle's seam over Kafka. The scoring pipeline talks to the two interfaces here, KafkaConsumer
// and KafkaProducer, never to librdkafka: NewKafkaConsumer / NewKafkaProducer give the real
// clients (kafka_client.cc, library riffle_kafka), tests/service/fake_kafka.h an in-memory fake.
//
// This header does not include librdkafka and everything declared inline here needs no library:
// code that only uses the interfaces (and its tests, with the fake) builds without riffle_kafka,
// so ThreadSanitizer can run it (TSan cannot run binaries linking Debian's librdkafka). Only the
// factories at the bottom are defined in kafka_client.cc.
//
// Errors are absl::Status with the librdkafka error name in the message:
//   Unavailable        no broker reachable, transport error, leader/coordinator moving, a
//                      record that could not be delivered in time. Transient: retry.
//   NotFound           unknown topic or partition.
//   OutOfRange         an assigned offset is no longer (or not yet) in the log and
//                      auto.offset.reset is "error" (Riffle's default): a checkpoint older
//                      than the topic's retention.
//   ResourceExhausted  the producer's local queue is full: serve deliveries, then retry.
//   DeadlineExceeded   a blocking call's timeout passed.
//   InvalidArgument    a bad property, record or argument (the message names it).
//   PermissionDenied / Unauthenticated   authorization / SASL failures.
//   Internal           a fatal client error; the client is unusable, make a new one.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace riffle::service {

class Logger;

// Special offsets for KafkaConsumer::Assign (the values librdkafka uses).
inline constexpr std::int64_t kKafkaOffsetBeginning = -2;     // earliest record still in the log
inline constexpr std::int64_t kKafkaOffsetEnd = -1;           // the next record produced
inline constexpr std::int64_t kKafkaOffsetCommitted = -1000;  // the group's committed offset
// KafkaProduceRecord::partition: let the partitioner choose (by key, as Java clients do).
inline constexpr std::int32_t kKafkaPartitionAny = -1;

struct KafkaTopicPartition {
  std::string topic;
  std::int32_t partition = 0;

  friend bool operator==(const KafkaTopicPartition&, const KafkaTopicPartition&) = default;
};

// A partition and an offset: where to start reading (Assign), or the next offset to read
// (Commit: last processed offset + 1; offsets are sparse, never count records).
struct KafkaTopicPartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = kKafkaOffsetBeginning;

  friend bool operator==(const KafkaTopicPartitionOffset&,
                         const KafkaTopicPartitionOffset&) = default;
};

struct KafkaHeader {
  std::string name;
  std::string value;  // a null header value reads as empty

  friend bool operator==(const KafkaHeader&, const KafkaHeader&) = default;
};

// One consumed record. Owns its bytes.
struct KafkaRecord {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;  // nullopt: the record has no key
  std::string value;               // a null value (tombstone) reads as empty
  std::vector<KafkaHeader> headers;
  std::int64_t timestamp_ms = -1;  // create or log-append time; -1 if the record has none
};

// The records of one KafkaConsumer::Poll, in log order per partition. Reused across polls
// without freeing: Clear() keeps every record's buffers, so a steady stream allocates nothing
// once the batch has grown (STYLE.md 9).
class KafkaRecordBatch {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const KafkaRecord& operator[](std::size_t i) const { return records_[i]; }
  std::span<const KafkaRecord> records() const { return {records_.data(), size_}; }
  const KafkaRecord* begin() const { return records_.data(); }
  const KafkaRecord* end() const { return records_.data() + size_; }

  // For the clients that fill the batch: forget the records (keeping their storage), and add
  // one (reusing a previous record's storage: assign its fields, resize headers).
  void Clear() { size_ = 0; }
  KafkaRecord& Append() {
    if (size_ == records_.size()) records_.emplace_back();
    return records_[size_++];
  }

 private:
  std::vector<KafkaRecord> records_;
  std::size_t size_ = 0;
};

struct KafkaWatermarks {
  std::int64_t low = 0;   // first offset still in the log
  std::int64_t high = 0;  // offset the next record will get; lag = high - next offset to read
};

// Reads records from explicitly assigned partitions: the learner owns its partitions and starts
// at the offsets its checkpoint stored (DESIGN.md, exactly-once learning), so there is no group
// rebalance; the group only receives committed offsets, for lag monitoring.
//
// Thread-compatible: one thread owns a consumer (the pipeline's consume loop); the caller
// serializes calls. Destroying it closes the connection (pending commits are not retried).
class KafkaConsumer {
 public:
  virtual ~KafkaConsumer() = default;

  // Replaces the assignment: reads each partition from its offset (an absolute offset or one of
  // the kKafkaOffset* constants). An empty list unassigns everything. Records fetched for the
  // previous assignment and not yet polled are dropped.
  virtual absl::Status Assign(std::span<const KafkaTopicPartitionOffset> partitions) = 0;

  // Waits up to `timeout` for the first record, then takes what is already fetched, up to
  // `max_records`, into `batch` (cleared first). OK with an empty batch when nothing arrived.
  // An error (see the top of this file) is returned once, in order: records read before it are
  // returned with OK and the error by the next call. After Unavailable keep polling: the client
  // reconnects by itself and resumes at the next offset.
  virtual absl::Status Poll(std::size_t max_records, absl::Duration timeout,
                            KafkaRecordBatch* batch) = 0;

  // Stops / restarts fetching the given assigned partitions, keeping their positions
  // (back-pressure, or the Kafka path paused during an outage).
  virtual absl::Status Pause(std::span<const KafkaTopicPartition> partitions) = 0;
  virtual absl::Status Resume(std::span<const KafkaTopicPartition> partitions) = 0;

  // Synchronously commits these next-offsets to the consumer group (group.id). For lag
  // monitoring only: Riffle never reads them back to decide where to start.
  virtual absl::Status Commit(std::span<const KafkaTopicPartitionOffset> offsets,
                              absl::Duration timeout) = 0;

  // The number of partitions of `topic` (a metadata request). NotFound if it does not exist.
  virtual absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) = 0;

  // The low and high watermarks of a partition, asked of its leader.
  virtual absl::StatusOr<KafkaWatermarks> QueryWatermarks(std::string_view topic,
                                                          std::int32_t partition,
                                                          absl::Duration timeout) = 0;
};

struct KafkaHeaderView {
  std::string_view name;
  std::string_view value;
};

// A record to produce. Views only: Produce copies the bytes before it returns.
struct KafkaProduceRecord {
  std::string_view topic = {};
  std::int32_t partition = kKafkaPartitionAny;
  std::optional<std::string_view> key = std::nullopt;  // no key: round-robin partitioning
  std::string_view value = {};
  std::span<const KafkaHeaderView> headers = {};
  std::int64_t timestamp_ms = 0;  // 0: the producer's clock
  // The caller's id for this record, returned in its delivery report (e.g. an index into the
  // batch being published).
  std::uint64_t token = 0;
};

// The outcome of one produced record.
struct KafkaDeliveryReport {
  std::uint64_t token = 0;
  std::string topic;
  std::int32_t partition = kKafkaPartitionAny;
  std::int64_t offset = -1;  // -1 when not delivered
  absl::Status status;       // OK: stored by the broker (acks=all)
  // Set only when !status.ok(): the record as produced, so the caller can retry it or send it
  // to a dead-letter topic without keeping its own copy of every record in flight.
  std::optional<std::string> key;
  std::string value;
  std::vector<KafkaHeader> headers;
};

// Publishes records asynchronously; every accepted record gets exactly one delivery report
// (idempotent producer: retries inside the client never duplicate or reorder a record).
//
// Thread-safe: Produce may be called from several threads; PollDeliveries and Flush from any
// thread. Destroying the producer drops records still in flight without reports: Flush first.
class KafkaProducer {
 public:
  virtual ~KafkaProducer() = default;

  // Queues `record` for sending. An error means the record was not accepted (no delivery
  // report will come): ResourceExhausted when the local queue is full (serve deliveries with
  // PollDeliveries and retry), NotFound for a topic or partition known not to exist,
  // InvalidArgument for a record larger than message.max.bytes.
  virtual absl::Status Produce(const KafkaProduceRecord& record) = 0;

  // Waits up to `timeout` for delivery reports and appends every report received since the
  // last call (including those that Flush collected) to `reports`.
  virtual void PollDeliveries(absl::Duration timeout,
                              std::vector<KafkaDeliveryReport>* reports) = 0;

  // Waits until every accepted record has a delivery report (collected for PollDeliveries).
  // DeadlineExceeded, with the number still in flight, if `timeout` passes first.
  virtual absl::Status Flush(absl::Duration timeout) = 0;

  // Records accepted and not yet reported (in the local queue or in flight).
  virtual std::size_t InFlight() const = 0;

  // As KafkaConsumer::PartitionCount.
  virtual absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) = 0;
};

// librdkafka configuration properties, passed through as they are (bootstrap.servers,
// security.protocol, sasl.*, ssl.*, fetch and batching tuning, ...). See librdkafka's
// CONFIGURATION.md.
using KafkaProperties = std::map<std::string, std::string, std::less<>>;

struct KafkaConsumerOptions {
  // Must include bootstrap.servers and group.id (the group that receives committed offsets).
  // Riffle sets, and rejects any other value for, enable.auto.commit=false,
  // enable.auto.offset.store=false and isolation.level=read_committed (a checkpoint, not the
  // broker, says what was processed; aborted transactions are never learned). Defaults that
  // may be overridden: auto.offset.reset=error (an assigned offset outside the log is a loud
  // OutOfRange, not a silent skip), enable.partition.eof=false,
  // allow.auto.create.topics=false, client.id=riffle, queued.min.messages=10000000 and
  // queued.max.messages.kbytes=262144 (a partition's fetch queue is bounded by 256 MB rather
  // than by a message count, whose threshold made librdkafka 2.0 pause fetching for a second;
  // see kafka_client.cc). KafkaConsumerProperties gives the result.
  KafkaProperties properties;
  // Receives librdkafka's log lines, from its threads. Not owned; null: NullLogger().
  Logger* logger = nullptr;
  // Whether Poll fills KafkaRecord::headers. Reading them makes librdkafka parse each record's
  // header block into a list it allocates (a block with no header in it too); a reader that
  // never looks at them (a model's Kafka path) turns this off, and its records' headers stay
  // empty.
  bool read_headers = true;
};

struct KafkaProducerOptions {
  // Must include bootstrap.servers. Riffle sets, and rejects any other value for,
  // enable.idempotence=true (acks=all, no duplicates or reordering from internal retries).
  // Defaults that may be overridden: partitioner=murmur2_random (keys land on the partitions
  // Java clients would pick), linger.ms=5, client.id=riffle. KafkaProducerProperties gives the
  // result.
  KafkaProperties properties;
  Logger* logger = nullptr;
};

// The real clients, over librdkafka (defined in kafka_client.cc; link riffle_kafka).
// InvalidArgument names a bad or missing property. Creating a client does not contact the
// broker: it connects in the background and an unreachable broker surfaces later, as
// Unavailable from Poll, a delivery report or a metadata call.
absl::StatusOr<std::unique_ptr<KafkaConsumer>> NewKafkaConsumer(
    const KafkaConsumerOptions& options);
absl::StatusOr<std::unique_ptr<KafkaProducer>> NewKafkaProducer(
    const KafkaProducerOptions& options);

// The properties NewKafkaConsumer (NewKafkaProducer) configures a client with, given
// `properties`: Riffle's defaults, then `properties`, then the properties Riffle requires, a
// later layer overriding an earlier one. The same InvalidArgument as the client's creation for
// a required property set to another value or a missing one; names and values are checked by
// librdkafka only when a client is created.
absl::StatusOr<KafkaProperties> KafkaConsumerProperties(const KafkaProperties& properties);
absl::StatusOr<KafkaProperties> KafkaProducerProperties(const KafkaProperties& properties);

// librdkafka's in-process mock cluster (rdkafka_mock.h): Kafka brokers on loopback ports inside
// this process, for unit tests and an embedded mode that needs nothing installed. It serves
// produce, fetch, metadata, offset commits and topic auto-creation (4 partitions), but is no
// substitute for a real broker: no CreateTopics (use CreateTopic here), no transaction markers
// (read_committed sees aborted records), each partition log capped at 5 MiB or 100,000 message
// sets (older data silently dropped), and the data lives in memory. Experimental librdkafka API.
//
// Destroy the clients connected to it before the cluster. Thread-safe as librdkafka's mock is.
class KafkaMockCluster {
 public:
  // `brokers` brokers with ids 1..brokers.
  static absl::StatusOr<std::unique_ptr<KafkaMockCluster>> Create(int brokers);
  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  // The bootstrap.servers for clients of this cluster.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  absl::Status CreateTopic(std::string_view topic, int partitions, int replication_factor);
  // Fault injection: a broker that is down closes its connections and refuses new ones; it
  // keeps leading its partitions (move leadership with librdkafka's mock API on handle()).
  absl::Status SetBrokerDown(std::int32_t broker_id);
  absl::Status SetBrokerUp(std::int32_t broker_id);
  // The rd_kafka_mock_cluster_t, for any other fault rdkafka_mock.h offers.
  void* handle() const;

 private:
  struct Impl;
  explicit KafkaMockCluster(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::string bootstrap_servers_;
};

// Creates `topic` with `partitions` partitions and `replication_factor` replicas through the
// Admin API (with `properties`, e.g. just bootstrap.servers), for tests, the demo and tools.
// AlreadyExists if it exists.
absl::Status CreateKafkaTopic(const KafkaProperties& properties, std::string_view topic,
                              int partitions, int replication_factor, absl::Duration timeout);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_KAFKA_CLIENT_H_
