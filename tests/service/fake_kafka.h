#ifndef RIFFLE_TESTS_SERVICE_FAKE_KAFKA_H_
#define RIFFLE_TESTS_SERVICE_FAKE_KAFKA_H_

// An in-memory Kafka behind service/kafka_client.h's interfaces, for unit tests of the code
// above the seam (the scoring pipeline): deterministic, no threads of its own, no librdkafka (so
// TSan runs these tests). Header-only; needs no library beyond Abseil.
//
//   FakeKafkaCluster cluster;
//   cluster.CreateTopic("events", 2);
//   cluster.Append("events", 0, "id-1", R"({"x": 1})");      // as another producer would
//   auto consumer = cluster.NewConsumer("riffle-learner");
//   auto producer = cluster.NewProducer();
//   cluster.SetDown(true);                                     // a broker outage
//   cluster.FailNextDeliveries(1, absl::UnavailableError("x")); // a lost produce
//
// What it models, as the real clients behave: offsets start at 0 and are dense (SetLogStart
// simulates retention); Assign at an offset outside the log makes the next Poll return
// OutOfRange once for that partition, which then stays unfetched (auto.offset.reset=error);
// produced records reach the log, and get their reports, only when the producer is polled or
// flushed; while the cluster is down Poll returns Unavailable, deliveries wait (Flush times
// out) and metadata calls fail; ExpireInFlight fails the waiting records as
// message.timeout.ms would. Keys pick partitions by FNV-1a (not Kafka's murmur2).
//
// Thread-safe: one mutex guards everything; a Poll with a timeout waits for Append or a
// delivery from another thread. The cluster must outlive its clients.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/kafka_client.h"

namespace riffle::service::testing {

class FakeKafkaCluster {
 public:
  FakeKafkaCluster() = default;
  FakeKafkaCluster(const FakeKafkaCluster&) = delete;
  FakeKafkaCluster& operator=(const FakeKafkaCluster&) = delete;

  // Producing to a topic that does not exist creates it with this many partitions; 0: the
  // delivery fails with NotFound instead.
  void set_auto_create_partitions(int partitions) {
    std::unique_lock<std::mutex> lock(mu_);
    auto_create_partitions_ = partitions;
  }

  void CreateTopic(std::string_view topic, int partitions) {
    std::unique_lock<std::mutex> lock(mu_);
    CreateTopicLocked(topic, partitions);
  }

  // Appends a record as another producer would; returns its offset.
  std::int64_t Append(std::string_view topic, std::int32_t partition,
                      std::optional<std::string_view> key, std::string_view value,
                      std::vector<KafkaHeader> headers = {}, std::int64_t timestamp_ms = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    KafkaRecord r;
    r.topic = std::string(topic);
    r.partition = partition;
    if (key.has_value()) r.key = std::string(*key);
    r.value = std::string(value);
    r.headers = std::move(headers);
    r.timestamp_ms = timestamp_ms;
    return AppendLocked(std::move(r));
  }

  // Every record of a partition still in the log, in offset order.
  std::vector<KafkaRecord> Records(std::string_view topic, std::int32_t partition) const {
    std::unique_lock<std::mutex> lock(mu_);
    const Log* log = FindLog(topic, partition);
    if (log == nullptr) return {};
    return {log->records.begin(), log->records.end()};
  }

  std::optional<std::int64_t> Committed(std::string_view group, std::string_view topic,
                                        std::int32_t partition) const {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = committed_.find({std::string(group), std::string(topic), partition});
    if (it == committed_.end()) return std::nullopt;
    return it->second;
  }

  // Drops records below `offset`, as retention does.
  void SetLogStart(std::string_view topic, std::int32_t partition, std::int64_t offset) {
    std::unique_lock<std::mutex> lock(mu_);
    Log* log = FindLog(topic, partition);
    if (log == nullptr) return;
    while (log->start < offset && !log->records.empty()) {
      log->records.pop_front();
      ++log->start;
    }
  }

  // Fault injection.
  void SetDown(bool down) {
    std::unique_lock<std::mutex> lock(mu_);
    down_ = down;
    changed_.notify_all();
  }
  // The next `count` deliveries fail with `status` (the records are not appended).
  void FailNextDeliveries(int count, absl::Status status) {
    std::unique_lock<std::mutex> lock(mu_);
    for (int i = 0; i < count; ++i) delivery_failures_.push_back(status);
  }
  // A producer's local queue holds at most `records` (0: unbounded), counting records not yet
  // delivered and reports not yet polled, as librdkafka's queue.buffering.max.messages: a
  // Produce beyond it returns ResourceExhausted.
  void SetProducerQueueLimit(std::size_t records) {
    std::unique_lock<std::mutex> lock(mu_);
    producer_queue_limit_ = records;
  }
  // The next Produce calls return these errors (the records are not accepted).
  void FailNextProduce(absl::Status status) {
    std::unique_lock<std::mutex> lock(mu_);
    produce_failures_.push_back(std::move(status));
  }
  // Polls return the records of this topic's partitions before any other's (as a real
  // consumer may, when that topic's fetch comes back first).
  void FetchFirst(std::string topic) {
    std::unique_lock<std::mutex> lock(mu_);
    fetch_first_ = std::move(topic);
  }
  // The next offset any consumer's Poll has returned records of `topic`/`partition` up to
  // (nullopt: none read yet): what a consumer has taken from the log, applied or not.
  std::optional<std::int64_t> ReadPosition(std::string_view topic, std::int32_t partition) const {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = read_positions_.find({std::string(topic), partition});
    if (it == read_positions_.end()) return std::nullopt;
    return it->second;
  }
  // The next Poll of any consumer returns `status` (before any record).
  void FailNextPoll(absl::Status status) {
    std::unique_lock<std::mutex> lock(mu_);
    poll_failures_.push_back(std::move(status));
  }
  // Fails every record waiting for delivery with Unavailable (message.timeout.ms passed).
  void ExpireInFlight() {
    std::unique_lock<std::mutex> lock(mu_);
    for (Producer* p : producers_) {
      for (Pending& pending : p->queue_) {
        KafkaDeliveryReport report = FailedReport(
            std::move(pending), absl::UnavailableError("fake kafka: message timed out"));
        p->reports_.push_back(std::move(report));
      }
      p->queue_.clear();
    }
  }

  std::unique_ptr<KafkaConsumer> NewConsumer(std::string group) {
    return std::make_unique<Consumer>(this, std::move(group));
  }
  std::unique_ptr<KafkaProducer> NewProducer() { return std::make_unique<Producer>(this); }

 private:
  struct Log {
    std::int64_t start = 0;  // offset of records.front()
    std::deque<KafkaRecord> records;
    std::int64_t end() const { return start + static_cast<std::int64_t>(records.size()); }
  };
  struct Pending {
    KafkaRecord record;
    std::uint64_t token = 0;
  };

  static KafkaDeliveryReport FailedReport(Pending pending, absl::Status status) {
    KafkaDeliveryReport report;
    report.token = pending.token;
    report.topic = std::move(pending.record.topic);
    report.partition = pending.record.partition;
    report.status = std::move(status);
    report.key = std::move(pending.record.key);
    report.value = std::move(pending.record.value);
    report.headers = std::move(pending.record.headers);
    return report;
  }

  class Consumer final : public KafkaConsumer {
   public:
    Consumer(FakeKafkaCluster* cluster, std::string group)
        : cluster_(cluster), group_(std::move(group)) {}

    absl::Status Assign(std::span<const KafkaTopicPartitionOffset> partitions) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      assigned_.clear();
      paused_.clear();
      for (const KafkaTopicPartitionOffset& tpo : partitions) {
        if (tpo.topic.empty() || tpo.partition < 0) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "fake kafka assign: bad partition %s [%d]", tpo.topic, tpo.partition));
        }
        assigned_.push_back({tpo.topic, tpo.partition, tpo.offset});
      }
      return absl::OkStatus();
    }

    absl::Status Poll(std::size_t max_records, absl::Duration timeout,
                      KafkaRecordBatch* batch) override {
      batch->Clear();
      FakeKafkaCluster& c = *cluster_;
      std::unique_lock<std::mutex> lock(c.mu_);
      if (!c.poll_failures_.empty()) {
        absl::Status s = std::move(c.poll_failures_.front());
        c.poll_failures_.pop_front();
        return s;
      }
      const auto deadline = std::chrono::steady_clock::now() +
                            absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(1)));
      while (true) {
        if (c.down_) return absl::UnavailableError("fake kafka: all brokers down");
        if (absl::Status s = ResolveLocked(); !s.ok()) return s;
        // Partitions of the preferred topic first (a fetch order the real client may pick),
        // then the others.
        std::vector<Position*> order;
        for (Position& p : assigned_) {
          if (p.topic == c.fetch_first_) order.push_back(&p);
        }
        for (Position& p : assigned_) {
          if (p.topic != c.fetch_first_) order.push_back(&p);
        }
        for (Position* pp : order) {
          Position& p = *pp;
          if (p.failed || paused_.contains({p.topic, p.partition})) continue;
          const Log* log = c.FindLog(p.topic, p.partition);
          while (log != nullptr && batch->size() < max_records && p.offset < log->end()) {
            batch->Append() = log->records[p.offset - log->start];
            ++p.offset;
            c.read_positions_[{p.topic, p.partition}] = p.offset;
          }
        }
        if (!batch->empty() || max_records == 0) return absl::OkStatus();
        // Wait for an Append (or an outage) and look again.
        const std::uint64_t seen = c.generation_;
        if (!c.changed_.wait_until(lock, deadline,
                                   [&c, seen] { return c.generation_ != seen || c.down_; })) {
          return absl::OkStatus();
        }
      }
    }

    absl::Status Pause(std::span<const KafkaTopicPartition> partitions) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      for (const KafkaTopicPartition& tp : partitions) paused_.insert({tp.topic, tp.partition});
      return absl::OkStatus();
    }

    absl::Status Resume(std::span<const KafkaTopicPartition> partitions) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      for (const KafkaTopicPartition& tp : partitions) paused_.erase({tp.topic, tp.partition});
      return absl::OkStatus();
    }

    absl::Status Commit(std::span<const KafkaTopicPartitionOffset> offsets,
                        absl::Duration timeout) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      if (cluster_->down_) return absl::UnavailableError("fake kafka: all brokers down");
      for (const KafkaTopicPartitionOffset& tpo : offsets) {
        if (tpo.offset < 0) {
          return absl::InvalidArgumentError("fake kafka commit: negative offset");
        }
        cluster_->committed_[{group_, tpo.topic, tpo.partition}] = tpo.offset;
      }
      return absl::OkStatus();
    }

    absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      return cluster_->PartitionCountLocked(topic);
    }

    absl::StatusOr<KafkaWatermarks> QueryWatermarks(std::string_view topic, std::int32_t partition,
                                                    absl::Duration timeout) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      if (cluster_->down_) return absl::UnavailableError("fake kafka: all brokers down");
      const Log* log = cluster_->FindLog(topic, partition);
      if (log == nullptr) {
        return absl::NotFoundError(
            absl::StrFormat("fake kafka: unknown partition %s [%d]", topic, partition));
      }
      return KafkaWatermarks{log->start, log->end()};
    }

   private:
    struct Position {
      std::string topic;
      std::int32_t partition = 0;
      std::int64_t offset = 0;  // may be a kKafkaOffset* constant until resolved
      bool failed = false;
    };

    // Turns special offsets into absolute ones; an offset outside the log fails once.
    absl::Status ResolveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_) {
      for (Position& p : assigned_) {
        if (p.failed) continue;
        const Log* log = cluster_->FindLog(p.topic, p.partition);
        if (log == nullptr) {
          p.failed = true;
          return absl::NotFoundError(absl::StrFormat(
              "fake kafka: unknown topic or partition %s [%d]", p.topic, p.partition));
        }
        if (p.offset == kKafkaOffsetBeginning) p.offset = log->start;
        if (p.offset == kKafkaOffsetEnd) p.offset = log->end();
        if (p.offset == kKafkaOffsetCommitted) {
          auto it = cluster_->committed_.find({group_, p.topic, p.partition});
          if (it == cluster_->committed_.end()) {
            p.failed = true;
            return absl::OutOfRangeError(absl::StrFormat(
                "fake kafka: no committed offset for %s [%d]", p.topic, p.partition));
          }
          p.offset = it->second;
        }
        if (p.offset < log->start || p.offset > log->end()) {
          p.failed = true;
          return absl::OutOfRangeError(
              absl::StrFormat("fake kafka: offset %d outside %s [%d] log [%d, %d]", p.offset,
                              p.topic, p.partition, log->start, log->end()));
        }
      }
      return absl::OkStatus();
    }

    FakeKafkaCluster* const cluster_;
    const std::string group_;
    std::vector<Position> assigned_ ABSL_GUARDED_BY(cluster_->mu_);
    std::set<std::pair<std::string, std::int32_t>> paused_ ABSL_GUARDED_BY(cluster_->mu_);
  };

  class Producer final : public KafkaProducer {
   public:
    explicit Producer(FakeKafkaCluster* cluster) : cluster_(cluster) {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      cluster_->producers_.insert(this);
    }
    ~Producer() override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      cluster_->producers_.erase(this);
    }

    absl::Status Produce(const KafkaProduceRecord& record) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      if (!cluster_->produce_failures_.empty()) {
        absl::Status s = std::move(cluster_->produce_failures_.front());
        cluster_->produce_failures_.pop_front();
        return s;
      }
      if (record.topic.empty()) return absl::InvalidArgumentError("fake kafka: empty topic");
      if (cluster_->producer_queue_limit_ > 0 &&
          queue_.size() + reports_.size() >= cluster_->producer_queue_limit_) {
        return absl::ResourceExhaustedError("fake kafka: local queue full");
      }
      Pending p;
      p.token = record.token;
      p.record.topic = std::string(record.topic);
      p.record.partition = record.partition;
      if (record.key.has_value()) p.record.key = std::string(*record.key);
      p.record.value = std::string(record.value);
      for (const KafkaHeaderView& h : record.headers) {
        p.record.headers.push_back({std::string(h.name), std::string(h.value)});
      }
      p.record.timestamp_ms = record.timestamp_ms;
      queue_.push_back(std::move(p));
      return absl::OkStatus();
    }

    void PollDeliveries(absl::Duration timeout,
                        std::vector<KafkaDeliveryReport>* reports) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      DeliverLocked();
      for (KafkaDeliveryReport& r : reports_) reports->push_back(std::move(r));
      reports_.clear();
    }

    absl::Status Flush(absl::Duration timeout) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      DeliverLocked();
      if (!queue_.empty()) {
        return absl::DeadlineExceededError(
            absl::StrFormat("fake kafka flush: %d records still in flight", queue_.size()));
      }
      return absl::OkStatus();
    }

    std::size_t InFlight() const override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      return queue_.size();
    }

    absl::StatusOr<int> PartitionCount(std::string_view topic, absl::Duration timeout) override {
      std::unique_lock<std::mutex> lock(cluster_->mu_);
      return cluster_->PartitionCountLocked(topic);
    }

   private:
    friend class FakeKafkaCluster;

    // Delivers everything queued unless the cluster is down (then it waits, as librdkafka
    // retries until message.timeout.ms).
    void DeliverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_) {
      FakeKafkaCluster& c = *cluster_;
      if (c.down_) return;
      for (Pending& p : queue_) {
        if (!c.delivery_failures_.empty()) {
          absl::Status s = std::move(c.delivery_failures_.front());
          c.delivery_failures_.pop_front();
          reports_.push_back(FailedReport(std::move(p), std::move(s)));
          continue;
        }
        auto topic = c.topics_.find(p.record.topic);
        if (topic == c.topics_.end() && c.auto_create_partitions_ > 0) {
          c.CreateTopicLocked(p.record.topic, c.auto_create_partitions_);
          topic = c.topics_.find(p.record.topic);
        }
        int partitions = topic == c.topics_.end() ? 0 : static_cast<int>(topic->second.size());
        if (p.record.partition == kKafkaPartitionAny && partitions > 0) {
          p.record.partition = p.record.key.has_value()
                                   ? static_cast<std::int32_t>(Fnv1a(*p.record.key) % partitions)
                                   : static_cast<std::int32_t>(round_robin_++ % partitions);
        }
        if (p.record.partition < 0 || p.record.partition >= partitions) {
          reports_.push_back(FailedReport(
              std::move(p), absl::NotFoundError("fake kafka: unknown topic or partition")));
          continue;
        }
        KafkaDeliveryReport report;
        report.token = p.token;
        report.topic = p.record.topic;
        report.partition = p.record.partition;
        report.offset = c.AppendLocked(std::move(p.record));
        reports_.push_back(std::move(report));
      }
      queue_.clear();
    }

    static std::uint64_t Fnv1a(std::string_view s) {
      std::uint64_t h = 14695981039346656037ull;
      for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
      return h;
    }

    FakeKafkaCluster* const cluster_;
    std::deque<Pending> queue_ ABSL_GUARDED_BY(cluster_->mu_);
    std::vector<KafkaDeliveryReport> reports_ ABSL_GUARDED_BY(cluster_->mu_);
    std::uint64_t round_robin_ ABSL_GUARDED_BY(cluster_->mu_) = 0;
  };

  void CreateTopicLocked(std::string_view topic, int partitions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Log>& logs = topics_[std::string(topic)];
    if (static_cast<int>(logs.size()) < partitions) logs.resize(partitions);
  }

  std::int64_t AppendLocked(KafkaRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CreateTopicLocked(record.topic, record.partition + 1);
    Log& log = topics_[record.topic][record.partition];
    record.offset = log.end();
    if (record.timestamp_ms == 0) record.timestamp_ms = absl::ToUnixMillis(absl::Now());
    log.records.push_back(std::move(record));
    ++generation_;
    changed_.notify_all();
    return log.end() - 1;
  }

  const Log* FindLog(std::string_view topic, std::int32_t partition) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = topics_.find(topic);
    if (it == topics_.end() || partition < 0 ||
        partition >= static_cast<std::int32_t>(it->second.size())) {
      return nullptr;
    }
    return &it->second[partition];
  }
  Log* FindLog(std::string_view topic, std::int32_t partition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return const_cast<Log*>(std::as_const(*this).FindLog(topic, partition));
  }

  absl::StatusOr<int> PartitionCountLocked(std::string_view topic) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (down_) return absl::UnavailableError("fake kafka: all brokers down");
    auto it = topics_.find(topic);
    if (it == topics_.end()) {
      return absl::NotFoundError(absl::StrFormat("fake kafka: unknown topic %s", topic));
    }
    return static_cast<int>(it->second.size());
  }

  // A std::mutex, not absl::Mutex: ThreadSanitizer sees its synchronization (Debian's Abseil is
  // not instrumented), so the pipeline tests run under TSan without false reports.
  mutable std::mutex mu_;
  std::condition_variable changed_;  // notified on every Append and outage change
  std::map<std::string, std::vector<Log>, std::less<>> topics_ ABSL_GUARDED_BY(mu_);
  std::map<std::tuple<std::string, std::string, std::int32_t>, std::int64_t> committed_
      ABSL_GUARDED_BY(mu_);
  std::set<Producer*> producers_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> delivery_failures_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> produce_failures_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> poll_failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> read_positions_ ABSL_GUARDED_BY(mu_);
  int auto_create_partitions_ ABSL_GUARDED_BY(mu_) = 1;
  std::size_t producer_queue_limit_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  std::string fetch_first_ ABSL_GUARDED_BY(mu_);
  // Counts appends, so a waiting Poll sees new records.
  std::uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace riffle::service::testing

#endif  // RIFFLE_TESTS_SERVICE_FAKE_KAFKA_H_
