#include "service/kafka_client.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/logger.h"

namespace riffle::service {
namespace {

static_assert(kKafkaOffsetBeginning == RD_KAFKA_OFFSET_BEGINNING);
static_assert(kKafkaOffsetEnd == RD_KAFKA_OFFSET_END);
static_assert(kKafkaOffsetCommitted == RD_KAFKA_OFFSET_STORED);
static_assert(kKafkaPartitionAny == RD_KAFKA_PARTITION_UA);
// A delivery token travels as the message's opaque pointer.
static_assert(sizeof(void*) >= sizeof(std::uint64_t));

// Owners of librdkafka objects. Every one must be gone before rd_kafka_destroy(), which
// otherwise waits for it forever.
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// librdkafka timeouts are int milliseconds, -1 for "forever".
int TimeoutMs(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  return static_cast<int>(std::clamp<std::int64_t>(absl::ToInt64Milliseconds(timeout), 0, INT_MAX));
}

// The one place a librdkafka error becomes a Status (the table in kafka_client.h).
absl::Status KafkaError(rd_kafka_resp_err_t err, std::string_view context,
                        std::string_view detail = {}) {
  std::string message =
      absl::StrFormat("kafka: %s: %s (%s)", context,
                      detail.empty() ? rd_kafka_err2str(err) : detail, rd_kafka_err2name(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return absl::OkStatus();
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:  // a request to the cluster got no answer in time
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
      return absl::UnavailableError(message);
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return absl::NotFoundError(message);
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      return absl::OutOfRangeError(message);
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(message);
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
      return absl::InvalidArgumentError(message);
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return absl::AlreadyExistsError(message);
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(message);
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__SSL:
      return absl::UnauthenticatedError(message);
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
      return absl::FailedPreconditionError(message);
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
      return absl::InternalError(message);
    default:
      return absl::UnknownError(message);
  }
}

// Forwards librdkafka's syslog-levelled lines to the Riffle logger. Called from librdkafka's
// threads; Logger is thread-safe.
void LogTo(Logger* logger, int level, const char* facility, const char* text) {
  if (logger == nullptr) return;
  LogLevel riffle_level = level <= 3   ? LogLevel::kError
                          : level == 4 ? LogLevel::kWarn
                          : level <= 6 ? LogLevel::kInfo
                                       : LogLevel::kDebug;
  logger->Log(riffle_level, absl::StrFormat("librdkafka %s: %s", facility, text));
}

// A property list becomes an rd_kafka_conf_t: `defaults` first, then the caller's properties,
// then `required`, whose values the caller may only repeat.
// What every client of a kind requires: no property of `required` set to another value, and
// bootstrap.servers (or librdkafka's test.mock.num.brokers).
absl::Status CheckProperties(std::string_view client, const KafkaProperties& properties,
                             const KafkaProperties& required) {
  for (const auto& [name, value] : required) {
    auto it = properties.find(name);
    if (it != properties.end() && it->second != value) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "kafka %s property %s must be %s for Riffle (got %s): offsets and delivery "
          "guarantees are Riffle's, see service/kafka_client.h",
          client, name, value, it->second));
    }
  }
  if (!properties.contains("bootstrap.servers") && !properties.contains("test.mock.num.brokers")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("kafka %s property bootstrap.servers is required", client));
  }
  return absl::OkStatus();
}

// The layers, in the order they are applied (a later one wins): Riffle's defaults, the
// caller's properties, Riffle's requirements.
absl::StatusOr<KafkaProperties> LayerProperties(std::string_view client,
                                                const KafkaProperties& properties,
                                                const KafkaProperties& defaults,
                                                const KafkaProperties& required) {
  if (absl::Status s = CheckProperties(client, properties, required); !s.ok()) return s;
  KafkaProperties layered = defaults;
  for (const KafkaProperties* layer : {&properties, &required}) {
    for (const auto& [name, value] : *layer) layered[name] = value;
  }
  return layered;
}

// A librdkafka configuration with the three layers set in turn, each property as librdkafka
// takes it (so that a caller's alias of a default, e.g. queue.buffering.max.ms for linger.ms,
// still overrides it).
absl::StatusOr<ConfPtr> BuildConf(std::string_view client, const KafkaProperties& properties,
                                  const KafkaProperties& defaults,
                                  const KafkaProperties& required) {
  if (absl::Status s = CheckProperties(client, properties, required); !s.ok()) return s;
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const KafkaProperties* layer : {&defaults, &properties, &required}) {
    for (const auto& [name, value] : *layer) {
      if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
          RD_KAFKA_CONF_OK) {
        return absl::InvalidArgumentError(
            absl::StrFormat("kafka %s property %s=%s: %s", client, name, value, errstr));
      }
    }
  }
  return conf;
}

const KafkaProperties& ConsumerDefaults() {
  static const auto* const kDefaults = new KafkaProperties{
      {"auto.offset.reset", "error"},
      {"enable.partition.eof", "false"},
      {"allow.auto.create.topics", "false"},
      {"client.id", "riffle"},
      // Once a partition's local queue reaches queued.min.messages (librdkafka's default:
      // 100,000) or queued.max.messages.kbytes, librdkafka before 2.3 (Debian 12 ships 2.0.2)
      // stops fetching that partition for a whole second (librdkafka issue #2879; 2.3 made
      // it fetch.queue.backoff.ms). A model step slower than the fetch fills the queue, then
      // drains it in under a second and waits for records: on kafka_bench.sh the consume
      // thread sat idle ~40% of the time. With the count threshold out of reach, only the
      // byte cap queued.max.messages.kbytes can pause the fetch; it alone now bounds a
      // partition's queue (per partition, counting compressed batches at their compressed
      // size). librdkafka's default cap, 64 MB, still paused a backlog's fetch for a second
      // after every ~250,000 of kafka_bench.sh's events: 180,622 events/s with it, 234,533
      // with 256 MB and 302,595 with 1 GB (docs/BENCHMARKS.md). 256 MB is the default: the
      // memory a partition's queue may take while Riffle catches up on a backlog (it stays
      // near empty when Riffle keeps up). Set it lower where memory is tight.
      {"queued.min.messages", "10000000"},
      {"queued.max.messages.kbytes", "262144"},
  };
  return *kDefaults;
}

const KafkaProperties& ConsumerRequired() {
  static const auto* const kRequired = new KafkaProperties{
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"isolation.level", "read_committed"},
  };
  return *kRequired;
}

absl::Status CheckConsumerGroup(const KafkaProperties& properties) {
  if (properties.contains("group.id")) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "kafka consumer property group.id is required (the group receives committed "
      "offsets for lag monitoring)");
}

const KafkaProperties& ProducerDefaults() {
  static const auto* const kDefaults = new KafkaProperties{
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
      {"client.id", "riffle"},
  };
  return *kDefaults;
}

const KafkaProperties& ProducerRequired() {
  static const auto* const kRequired = new KafkaProperties{
      {"enable.idempotence", "true"},
  };
  return *kRequired;
}

// One consumed message into a batch slot, reusing the slot's buffers; its headers too when
// `headers` (otherwise they are left empty).
void CopyRecord(const rd_kafka_message_t& m, KafkaRecord* record, bool headers = true) {
  record->topic.assign(rd_kafka_topic_name(m.rkt));
  record->partition = m.partition;
  record->offset = m.offset;
  if (m.key != nullptr) {
    if (!record->key.has_value()) record->key.emplace();
    record->key->assign(static_cast<const char*>(m.key), m.key_len);
  } else {
    record->key.reset();
  }
  if (m.payload != nullptr) {
    record->value.assign(static_cast<const char*>(m.payload), m.len);
  } else {
    record->value.clear();
  }
  rd_kafka_timestamp_type_t timestamp_type;
  record->timestamp_ms = rd_kafka_message_timestamp(&m, &timestamp_type);
  if (timestamp_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) record->timestamp_ms = -1;
  rd_kafka_headers_t* list = nullptr;
  // The headers stay owned by the message.
  if (!headers || rd_kafka_message_headers(&m, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    record->headers.clear();
    return;
  }
  std::size_t count = rd_kafka_header_cnt(list);
  record->headers.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    if (rd_kafka_header_get_all(list, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      record->headers.resize(i);
      break;
    }
    record->headers[i].name.assign(name);
    if (value != nullptr) {
      record->headers[i].value.assign(static_cast<const char*>(value), size);
    } else {
      record->headers[i].value.clear();
    }
  }
}

absl::Status CheckPartition(std::string_view topic, std::int32_t partition, std::string_view what) {
  if (topic.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("kafka %s: empty topic name", what));
  }
  if (partition < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("kafka %s: topic %s has negative partition %d", what, topic, partition));
  }
  return absl::OkStatus();
}

// A partition list, checked.
absl::StatusOr<PartitionListPtr> ToList(std::span<const KafkaTopicPartition> partitions,
                                        std::string_view what) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const KafkaTopicPartition& tp : partitions) {
    if (absl::Status s = CheckPartition(tp.topic, tp.partition, what); !s.ok()) return s;
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

absl::StatusOr<PartitionListPtr> ToList(std::span<const KafkaTopicPartitionOffset> partitions,
                                        std::string_view what) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const KafkaTopicPartitionOffset& tpo : partitions) {
    if (absl::Status s = CheckPartition(tpo.topic, tpo.partition, what); !s.ok()) return s;
    if (tpo.offset < 0 && tpo.offset != kKafkaOffsetBeginning && tpo.offset != kKafkaOffsetEnd &&
        tpo.offset != kKafkaOffsetCommitted) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "kafka %s: %s [%d] has invalid offset %d", what, tpo.topic, tpo.partition, tpo.offset));
    }
    rd_kafka_topic_partition_list_add(list.get(), tpo.topic.c_str(), tpo.partition)->offset =
        tpo.offset;
  }
  return list;
}

// The first per-partition error of a list a call returned, if any.
absl::Status ListError(const rd_kafka_topic_partition_list_t& list, std::string_view what) {
  for (int i = 0; i < list.cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = list.elems[i];
    if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(tp.err, absl::StrFormat("%s %s [%d]", what, tp.topic, tp.partition));
    }
  }
  return absl::OkStatus();
}

// Shared by the consumer and the producer: partitions of a topic by metadata request.
absl::StatusOr<int> PartitionCountOf(rd_kafka_t* rk, std::string_view topic,
                                     absl::Duration timeout) {
  if (topic.empty()) return absl::InvalidArgumentError("kafka partition count: empty topic name");
  std::string name = std::string(topic);
  TopicPtr rkt(rd_kafka_topic_new(rk, name.c_str(), nullptr));
  if (rkt == nullptr) {
    return KafkaError(rd_kafka_last_error(), absl::StrFormat("topic %s", name));
  }
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt.get(), &raw, TimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, absl::StrFormat("metadata of topic %s", name));
  }
  MetadataPtr metadata(raw);
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = metadata->topics[i];
    if (name != t.topic) continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(t.err, absl::StrFormat("metadata of topic %s", name));
    }
    return t.partition_cnt;
  }
  return absl::NotFoundError(absl::StrFormat("kafka: topic %s is not in the metadata", name));
}

// ---------------------------------------------------------------------------------------------

class RdKafkaConsumer final : public KafkaConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(
      const KafkaConsumerOptions& options) {
    if (absl::Status s = CheckConsumerGroup(options.properties); !s.ok()) return s;
    absl::StatusOr<ConfPtr> conf =
        BuildConf("consumer", options.properties, ConsumerDefaults(), ConsumerRequired());
    if (!conf.ok()) return conf.status();
    auto consumer = std::unique_ptr<RdKafkaConsumer>(new RdKafkaConsumer(options.logger));
    rd_kafka_conf_set_opaque(conf->get(), consumer.get());
    rd_kafka_conf_set_log_cb(conf->get(), &RdKafkaConsumer::OnLog);
    rd_kafka_conf_set_error_cb(conf->get(), &RdKafkaConsumer::OnError);
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr));
    if (rk == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat("kafka consumer: %s", errstr));
    }
    conf->release();  // rd_kafka_new took it
    consumer->rk_ = rk;
    consumer->read_headers_ = options.read_headers;
    // Every event (errors, logs) is served by Poll, on the consumer's thread.
    rd_kafka_poll_set_consumer(rk);
    consumer->commit_queue_.reset(rd_kafka_queue_new(rk));
    return consumer;
  }

  ~RdKafkaConsumer() override {
    commit_queue_.reset();
    if (rk_ == nullptr) return;
    // Manual assignment: closing leaves no group to rebalance, so it is quick.
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  absl::Status Assign(std::span<const KafkaTopicPartitionOffset> partitions) override {
    absl::StatusOr<PartitionListPtr> list = ToList(partitions, "assign");
    if (!list.ok()) return list.status();
    rd_kafka_resp_err_t err = rd_kafka_assign(rk_, partitions.empty() ? nullptr : list->get());
    return KafkaError(err, "assign");
  }

  absl::Status Poll(std::size_t max_records, absl::Duration timeout,
                    KafkaRecordBatch* batch) override {
    batch->Clear();
    if (absl::Status pending = TakePending(); !pending.ok()) return pending;
    int timeout_ms = TimeoutMs(timeout);
    while (batch->size() < max_records) {
      // Wait only for the first record; then take what has already been fetched.
      MessagePtr m(rd_kafka_consumer_poll(rk_, batch->empty() ? timeout_ms : 0));
      if (m == nullptr) break;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::string context =
            m->rkt != nullptr
                ? absl::StrFormat("consume %s [%d]", rd_kafka_topic_name(m->rkt), m->partition)
                : std::string("consume");
        // A consumer error message carries its error string as the payload, with its length
        // (rd_kafka_message_errstr would strlen it).
        std::string_view detail =
            m->payload != nullptr ? std::string_view(static_cast<const char*>(m->payload), m->len)
                                  : std::string_view(rd_kafka_err2str(m->err));
        AddPending(KafkaError(m->err, context, detail));
        break;
      }
      CopyRecord(*m, &batch->Append(), read_headers_);
    }
    if (batch->empty()) return TakePending();
    return absl::OkStatus();
  }

  absl::Status Pause(std::span<const KafkaTopicPartition> partitions) override {
    absl::StatusOr<PartitionListPtr> list = ToList(partitions, "pause");
    if (!list.ok()) return list.status();
    if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_, list->get()); err) {
      return KafkaError(err, "pause");
    }
    return ListError(**list, "pause");
  }

  absl::Status Resume(std::span<const KafkaTopicPartition> partitions) override {
    absl::StatusOr<PartitionListPtr> list = ToList(partitions, "resume");
    if (!list.ok()) return list.status();
    if (rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk_, list->get()); err) {
      return KafkaError(err, "resume");
    }
    return ListError(**list, "resume");
  }

  absl::Status Commit(std::span<const KafkaTopicPartitionOffset> offsets,
                      absl::Duration timeout) override {
    if (offsets.empty()) return absl::OkStatus();
    for (const KafkaTopicPartitionOffset& tpo : offsets) {
      if (tpo.offset < 0) {
        return absl::InvalidArgumentError(
            absl::StrFormat("kafka commit: %s [%d] has offset %d; commit absolute next offsets",
                            tpo.topic, tpo.partition, tpo.offset));
      }
    }
    absl::StatusOr<PartitionListPtr> list = ToList(offsets, "commit");
    if (!list.ok()) return list.status();
    // rd_kafka_commit(async=0) has no timeout: commit through a queue and wait on it. A commit
    // that timed out may still answer later; its event carries an older sequence number and
    // is skipped by the next Commit.
    std::uintptr_t sequence = ++commit_sequence_;
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_, list->get(), commit_queue_.get(), nullptr,
                                                    reinterpret_cast<void*>(sequence));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "commit");
    absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
      EventPtr event(rd_kafka_queue_poll(commit_queue_.get(), TimeoutMs(left)));
      if (event == nullptr) {
        return absl::UnavailableError(
            absl::StrFormat("kafka commit: no answer from the group coordinator within %s",
                            absl::FormatDuration(timeout)));
      }
      if (rd_kafka_event_type(event.get()) != RD_KAFKA_EVENT_OFFSET_COMMIT ||
          reinterpret_cast<std::uintptr_t>(rd_kafka_event_opaque(event.get())) != sequence) {
        continue;
      }
      if (rd_kafka_resp_err_t e = rd_kafka_event_error(event.get()); e) {
        return KafkaError(e, "commit", rd_kafka_event_error_string(event.get()));
      }
      const rd_kafka_topic_partition_list_t* result =
          rd_kafka_event_topic_partition_list(event.get());
      return result != nullptr ? ListError(*result, "commit") : absl::OkStatus();
    }
  }

  absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) override {
    return PartitionCountOf(rk_, topic, timeout);
  }

  absl::StatusOr<KafkaWatermarks> QueryWatermarks(std::string_view topic, std::int32_t partition,
                                                  absl::Duration timeout) override {
    if (absl::Status s = CheckPartition(topic, partition, "watermarks"); !s.ok()) return s;
    std::string name = std::string(topic);
    KafkaWatermarks w;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_, name.c_str(), partition, &w.low,
                                                               &w.high, TimeoutMs(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(err, absl::StrFormat("watermarks of %s [%d]", name, partition));
    }
    return w;
  }

 private:
  explicit RdKafkaConsumer(Logger* logger) : logger_(logger) {}

  // librdkafka callbacks: no exception may cross them (STYLE.md 5).
  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    try {
      LogTo(static_cast<RdKafkaConsumer*>(rd_kafka_opaque(rk))->logger_, level, facility, text);
    } catch (...) {
    }
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    try {
      auto* self = static_cast<RdKafkaConsumer*>(opaque);
      auto code = static_cast<rd_kafka_resp_err_t>(err);
      if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        code = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        self->AddPending(absl::InternalError(
            absl::StrFormat("kafka consumer: fatal error, make a new consumer: %s (%s)", fatal,
                            rd_kafka_err2name(code))));
        return;
      }
      self->AddPending(KafkaError(code, "consumer", reason));
    } catch (...) {
    }
  }

  // Errors are kept in order of arrival and returned one call later than the records before
  // them; a burst (every broker connection failing at once) becomes one error with a count.
  void AddPending(absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (pending_.ok()) {
      pending_ = std::move(status);
    } else {
      ++pending_more_;
    }
  }

  absl::Status TakePending() {
    absl::MutexLock lock(&mu_);
    if (pending_.ok()) return absl::OkStatus();
    absl::Status out = std::move(pending_);
    if (pending_more_ > 0) {
      out = absl::Status(out.code(),
                         absl::StrFormat("%s (and %d more errors)", out.message(), pending_more_));
    }
    pending_ = absl::OkStatus();
    pending_more_ = 0;
    return out;
  }

  Logger* const logger_;
  rd_kafka_t* rk_ = nullptr;
  bool read_headers_ = true;
  QueuePtr commit_queue_;
  std::uintptr_t commit_sequence_ = 0;
  // Filled by OnError, which librdkafka calls from Poll on this thread; the mutex keeps that
  // true should it ever call from one of its own threads.
  absl::Mutex mu_;
  absl::Status pending_ ABSL_GUARDED_BY(mu_);
  int pending_more_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------------------------

class RdKafkaProducer final : public KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(
      const KafkaProducerOptions& options) {
    absl::StatusOr<ConfPtr> conf =
        BuildConf("producer", options.properties, ProducerDefaults(), ProducerRequired());
    if (!conf.ok()) return conf.status();
    auto producer = std::unique_ptr<RdKafkaProducer>(new RdKafkaProducer(options.logger));
    rd_kafka_conf_set_opaque(conf->get(), producer.get());
    rd_kafka_conf_set_log_cb(conf->get(), &RdKafkaProducer::OnLog);
    rd_kafka_conf_set_error_cb(conf->get(), &RdKafkaProducer::OnError);
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &RdKafkaProducer::OnDelivery);
    char errstr[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr));
    if (rk == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat("kafka producer: %s", errstr));
    }
    conf->release();
    producer->rk_ = rk;
    return producer;
  }

  ~RdKafkaProducer() override {
    if (rk_ == nullptr) return;
    // Records still queued are dropped (documented): purge them so their reports are served
    // (into a queue nobody reads) and destroy does not wait for message.timeout.ms.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_, 5000);
    {
      absl::MutexLock lock(&topics_mu_);
      topics_.clear();
    }
    rd_kafka_destroy(rk_);
  }

  absl::Status Produce(const KafkaProduceRecord& record) override {
    if (record.topic.empty()) return absl::InvalidArgumentError("kafka produce: empty topic name");
    if (absl::Status fatal = Fatal(); !fatal.ok()) return fatal;
    rd_kafka_topic_t* rkt = Topic(record.topic);
    if (rkt == nullptr) {
      return KafkaError(rd_kafka_last_error(), absl::StrFormat("produce to %s", record.topic));
    }
    rd_kafka_headers_t* headers = nullptr;
    if (!record.headers.empty()) {
      headers = rd_kafka_headers_new(record.headers.size());
      for (const KafkaHeaderView& h : record.headers) {
        rd_kafka_header_add(headers, h.name.data(), static_cast<ssize_t>(h.name.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    // A present but empty key or value is sent as empty, not null.
    static constexpr char kEmpty[] = "";
    const char* key =
        record.key.has_value() ? (record.key->data() ? record.key->data() : kEmpty) : nullptr;
    std::size_t key_len = record.key.has_value() ? record.key->size() : 0;
    const char* value = record.value.data() != nullptr ? record.value.data() : kEmpty;
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(record.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(const_cast<char*>(value), record.value.size()),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(record.timestamp_ms),
        RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(record.token))),
        RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      // On failure the headers are still ours.
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      if (err == RD_KAFKA_RESP_ERR__FATAL) return Fatal();
      return KafkaError(err, absl::StrFormat("produce to %s [%d]", record.topic, record.partition));
    }
    return absl::OkStatus();
  }

  void PollDeliveries(absl::Duration timeout, std::vector<KafkaDeliveryReport>* reports) override {
    bool have_reports;
    {
      absl::MutexLock lock(&mu_);
      have_reports = !deliveries_.empty();
    }
    // Reports collected by Flush are returned without waiting.
    rd_kafka_poll(rk_, have_reports ? 0 : TimeoutMs(timeout));
    absl::MutexLock lock(&mu_);
    for (KafkaDeliveryReport& r : deliveries_) reports->push_back(std::move(r));
    deliveries_.clear();
  }

  absl::Status Flush(absl::Duration timeout) override {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_, TimeoutMs(timeout));
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      return absl::DeadlineExceededError(
          absl::StrFormat("kafka flush: %d records still in flight after %s", InFlight(),
                          absl::FormatDuration(timeout)));
    }
    return KafkaError(err, "flush");
  }

  std::size_t InFlight() const override { return in_flight_.load(std::memory_order_relaxed); }

  absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) override {
    return PartitionCountOf(rk_, topic, timeout);
  }

 private:
  explicit RdKafkaProducer(Logger* logger) : logger_(logger) {}

  // A cached topic handle (rd_kafka_producev wants a NUL-terminated name or a handle; a handle
  // avoids copying the name for every record).
  rd_kafka_topic_t* Topic(std::string_view name) {
    absl::MutexLock lock(&topics_mu_);
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second.get();
    std::string key(name);
    TopicPtr rkt(rd_kafka_topic_new(rk_, key.c_str(), nullptr));
    if (rkt == nullptr) return nullptr;
    return topics_.emplace(std::move(key), std::move(rkt)).first->second.get();
  }

  absl::Status Fatal() {
    char reason[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk_, reason, sizeof(reason));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    return absl::InternalError(
        absl::StrFormat("kafka producer: fatal error, make a new producer: %s (%s)", reason,
                        rd_kafka_err2name(err)));
  }

  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    try {
      LogTo(static_cast<RdKafkaProducer*>(rd_kafka_opaque(rk))->logger_, level, facility, text);
    } catch (...) {
    }
  }

  // Failures of records arrive as delivery reports; the rest is worth a log line.
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    try {
      auto* self = static_cast<RdKafkaProducer*>(opaque);
      if (self->logger_ == nullptr) return;
      self->logger_->Log(
          LogLevel::kWarn,
          KafkaError(static_cast<rd_kafka_resp_err_t>(err), "producer", reason).ToString());
    } catch (...) {
    }
  }

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    try {
      auto* self = static_cast<RdKafkaProducer*>(opaque);
      KafkaDeliveryReport report;
      report.token = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private));
      report.topic.assign(rd_kafka_topic_name(m->rkt));
      report.partition = m->partition;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        report.offset = m->offset;
      } else {
        // Not rd_kafka_message_errstr(): for a delivery report the payload is the record's
        // value, not an error string (and not NUL-terminated).
        report.status =
            KafkaError(m->err, absl::StrFormat("deliver to %s [%d]", report.topic, m->partition));
        // Hand the record back for a retry or a dead letter.
        KafkaRecord copy;
        CopyRecord(*m, &copy);
        report.key = std::move(copy.key);
        report.value = std::move(copy.value);
        report.headers = std::move(copy.headers);
        report.offset = -1;
      }
      absl::MutexLock lock(&self->mu_);
      self->deliveries_.push_back(std::move(report));
      self->in_flight_.fetch_sub(1, std::memory_order_relaxed);
    } catch (...) {
    }
  }

  Logger* const logger_;
  rd_kafka_t* rk_ = nullptr;
  std::atomic<std::size_t> in_flight_{0};
  absl::Mutex topics_mu_;
  std::map<std::string, TopicPtr, std::less<>> topics_ ABSL_GUARDED_BY(topics_mu_);
  absl::Mutex mu_;
  std::vector<KafkaDeliveryReport> deliveries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaConsumer>> NewKafkaConsumer(
    const KafkaConsumerOptions& options) {
  return RdKafkaConsumer::Create(options);
}

absl::StatusOr<std::unique_ptr<KafkaProducer>> NewKafkaProducer(
    const KafkaProducerOptions& options) {
  return RdKafkaProducer::Create(options);
}

absl::StatusOr<KafkaProperties> KafkaConsumerProperties(const KafkaProperties& properties) {
  if (absl::Status s = CheckConsumerGroup(properties); !s.ok()) return s;
  return LayerProperties("consumer", properties, ConsumerDefaults(), ConsumerRequired());
}

absl::StatusOr<KafkaProperties> KafkaProducerProperties(const KafkaProperties& properties) {
  return LayerProperties("producer", properties, ProducerDefaults(), ProducerRequired());
}

// ---------------------------------------------------------------------------------------------

absl::Status CreateKafkaTopic(const KafkaProperties& properties, std::string_view topic,
                              int partitions, int replication_factor, absl::Duration timeout) {
  if (topic.empty()) return absl::InvalidArgumentError("kafka create topic: empty topic name");
  if (partitions < 1 || replication_factor < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("kafka create topic %s: partitions (%d) and replication factor (%d) "
                        "must be at least 1",
                        topic, partitions, replication_factor));
  }
  absl::StatusOr<ConfPtr> conf = BuildConf("admin", properties, {}, {});
  if (!conf.ok()) return conf.status();
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) return absl::InvalidArgumentError(absl::StrFormat("kafka admin: %s", errstr));
  conf->release();
  std::string name = std::string(topic);
  absl::Status status;
  {
    // Everything here is destroyed before rd_kafka_destroy below.
    std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> new_topic(
        rd_kafka_NewTopic_new(name.c_str(), partitions, replication_factor, errstr, sizeof(errstr)),
        &rd_kafka_NewTopic_destroy);
    std::unique_ptr<rd_kafka_AdminOptions_t, void (*)(rd_kafka_AdminOptions_t*)> admin_options(
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS),
        &rd_kafka_AdminOptions_destroy);
    QueuePtr queue(rd_kafka_queue_new(rk));
    if (new_topic == nullptr) {
      status =
          absl::InvalidArgumentError(absl::StrFormat("kafka create topic %s: %s", name, errstr));
    } else {
      rd_kafka_AdminOptions_set_request_timeout(admin_options.get(), TimeoutMs(timeout), errstr,
                                                sizeof(errstr));
      rd_kafka_AdminOptions_set_operation_timeout(admin_options.get(), TimeoutMs(timeout), errstr,
                                                  sizeof(errstr));
      rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
      rd_kafka_CreateTopics(rk, topics, 1, admin_options.get(), queue.get());
      // The request times out by itself; the margin only guards against a lost answer.
      EventPtr event(rd_kafka_queue_poll(queue.get(), TimeoutMs(timeout + absl::Seconds(5))));
      if (event == nullptr) {
        status = absl::UnavailableError(absl::StrFormat(
            "kafka create topic %s: no answer within %s", name, absl::FormatDuration(timeout)));
      } else if (rd_kafka_resp_err_t err = rd_kafka_event_error(event.get()); err) {
        status = KafkaError(err, absl::StrFormat("create topic %s", name),
                            rd_kafka_event_error_string(event.get()));
      } else {
        std::size_t count = 0;
        const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(event.get()), &count);
        for (std::size_t i = 0; i < count; ++i) {
          if (rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]); e) {
            const char* detail = rd_kafka_topic_result_error_string(results[i]);
            status = KafkaError(e, absl::StrFormat("create topic %s", name),
                                detail != nullptr ? detail : "");
          }
        }
      }
    }
  }
  rd_kafka_destroy(rk);
  return status;
}

// ---------------------------------------------------------------------------------------------

struct KafkaMockCluster::Impl {
  rd_kafka_t* rk = nullptr;  // the handle that owns the mock cluster
  rd_kafka_mock_cluster_t* cluster = nullptr;

  ~Impl() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

KafkaMockCluster::KafkaMockCluster(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)),
      bootstrap_servers_(rd_kafka_mock_cluster_bootstraps(impl_->cluster)) {}

KafkaMockCluster::~KafkaMockCluster() = default;

absl::StatusOr<std::unique_ptr<KafkaMockCluster>> KafkaMockCluster::Create(int brokers) {
  if (brokers < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("kafka mock cluster: brokers must be at least 1, got %d", brokers));
  }
  auto impl = std::make_unique<Impl>();
  char errstr[512];
  // The owning handle has no bootstrap servers: it never connects anywhere itself, and its
  // warning saying so is noise.
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof(errstr));
  if (impl->rk == nullptr) {
    return absl::InternalError(absl::StrFormat("kafka mock cluster: %s", errstr));
  }
  conf.release();
  impl->cluster = rd_kafka_mock_cluster_new(impl->rk, brokers);
  if (impl->cluster == nullptr) {
    return absl::InternalError("kafka mock cluster: rd_kafka_mock_cluster_new failed");
  }
  return std::unique_ptr<KafkaMockCluster>(new KafkaMockCluster(std::move(impl)));
}

absl::Status KafkaMockCluster::CreateTopic(std::string_view topic, int partitions,
                                           int replication_factor) {
  std::string name = std::string(topic);
  return KafkaError(
      rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, replication_factor),
      absl::StrFormat("mock create topic %s", name));
}

absl::Status KafkaMockCluster::SetBrokerDown(std::int32_t broker_id) {
  return KafkaError(rd_kafka_mock_broker_set_down(impl_->cluster, broker_id),
                    absl::StrFormat("mock broker %d down", broker_id));
}

absl::Status KafkaMockCluster::SetBrokerUp(std::int32_t broker_id) {
  return KafkaError(rd_kafka_mock_broker_set_up(impl_->cluster, broker_id),
                    absl::StrFormat("mock broker %d up", broker_id));
}

void* KafkaMockCluster::handle() const { return impl_->cluster; }

}  // namespace riffle::service
