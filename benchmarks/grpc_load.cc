// grpc_load: a load generator for `riffle serve` over real gRPC channels.
//
//   grpc_load unary-rate --target 127.0.0.1:PORT --rate 10000 --duration 10
//   grpc_load unary-max  --target ... --concurrency 64
//   grpc_load stream     --target ... --batch 1000 --window 8 --streams 2
//   grpc_load mixed      --target ... --concurrency 64 --learn-fraction 0.2   (or --rate R)
//
// Before measuring it creates the model (ALREADY_EXISTS is fine: `riffle serve --model` may have
// declared it) and teaches it `--train-examples` labeled instances, so predictions do the work a
// trained model does. Instances have `--features` numeric features "f0".."f<D-1>", standard
// normal from a seeded RNG; labels come from a fixed random logistic model (same seed).
//
// How it measures:
//   - Requests are built and serialized once, before the run, into a pool that calls cycle
//     through (grpc::GenericStub with ByteBuffers). Client and server share the machine, so the
//     client's CPU goes to what a client must do per call (gRPC, HTTP/2, parsing the reply), not
//     to rebuilding the same protobuf messages. Every reply is parsed and checked.
//   - Open loop (unary-rate; mixed with --rate): call k is scheduled at start + k/rate and its
//     latency is measured from that scheduled time, not from when it was actually sent, so a
//     stalled server or client is charged for every call it delayed (no coordinated omission).
//   - Closed loop (unary-max; mixed without --rate): `--concurrency` calls are always
//     outstanding; latency is from send to reply.
//   - stream: `--streams` PredictStream calls, each keeping `--window` requests of `--batch`
//     instances in flight (the server answers in order); latency is per message.
//   - Unary and mixed calls carry `--instances` instances per Predict (default 1) and one
//     example per Learn.
//   - Only calls scheduled (open loop) or started (closed loop) after `--warmup` seconds and
//     within `--duration` seconds count. Percentiles are exact (every latency is kept).
//   - Completion queues: `--threads` client threads, each polling its own CompletionQueue;
//     `--channels` separate TCP connections (a local subchannel pool per channel).
//
// Output: a human summary on stdout, and with `--json PATH` the same figures as one JSON object
// ("-": stdout, the summary then goes to stderr). Exit status 1 if any call failed.

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "riffle/v1/riffle.grpc.pb.h"

namespace riffle::bench {
namespace {

namespace v1 = riffle::v1;

constexpr char kPredictMethod[] = "/riffle.v1.InferenceService/Predict";
constexpr char kPredictStreamMethod[] = "/riffle.v1.InferenceService/PredictStream";
constexpr char kLearnMethod[] = "/riffle.v1.InferenceService/Learn";

// ---------------------------------------------------------------------------------------------
// Options

struct LoadOptions {
  std::string mode;              // unary-rate, unary-max, stream, mixed
  std::string target;            // host:port of `riffle serve`
  std::string model = "bench";   // created if absent (learner logreg)
  std::string token;             // bearer token for CreateModel/Learn, if the server wants one
  int features = 20;             // D numeric features per instance
  std::uint64_t seed = 1;        // instances, labels and the ground-truth model
  int train_examples = 20'000;   // labeled instances learned before measuring (0: none)
  int pool = 4096;               // distinct pre-serialized unary requests
  double duration_seconds = 10;  // measured time
  double warmup_seconds = 2;     // load applied but not measured, before `duration`
  int channels = 2;              // TCP connections
  int threads = 2;               // client threads, one CompletionQueue each
  double rate = 0;               // open loop: calls/s (unary-rate; mixed when > 0)
  int concurrency = 64;          // closed loop: calls outstanding
  int max_outstanding = 50'000;  // open loop: the sender waits (charged to latency) beyond
  double learn_fraction = 0.2;   // mixed: share of calls that are Learn (1 example each)
  int instances = 1;             // unary and mixed: instances per PredictRequest
  int batch = 1000;              // stream: instances per PredictRequest
  bool dense = false;            // Predict requests as DenseBatch
  int window = 8;                // stream: requests in flight per stream
  int streams = 2;               // stream: concurrent PredictStream calls
  int deadline_ms = 10'000;      // per unary call
  bool with_ids = false;         // set Instance.id (the server then caches features per id)
  bool mutex_deadlock_detection = false;  // leave Abseil's default (on in Debian's build)
  int server_pid = 0;                     // report this process's CPU use over the measured window
  std::string json_path;                  // "" none, "-" stdout

  absl::Status Validate() const {
    if (mode != "unary-rate" && mode != "unary-max" && mode != "stream" && mode != "mixed") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "mode: expected unary-rate, unary-max, stream or mixed, got \"%s\"", mode));
    }
    if (target.empty()) return absl::InvalidArgumentError("--target: required (host:port)");
    if (features < 1) return absl::InvalidArgumentError("--features: must be >= 1");
    if (pool < 1) return absl::InvalidArgumentError("--pool: must be >= 1");
    if (!(duration_seconds > 0)) return absl::InvalidArgumentError("--duration: must be > 0");
    if (!(warmup_seconds >= 0)) return absl::InvalidArgumentError("--warmup: must be >= 0");
    if (channels < 1 || threads < 1) {
      return absl::InvalidArgumentError("--channels and --threads: must be >= 1");
    }
    if (mode == "unary-rate" && !(rate > 0)) {
      return absl::InvalidArgumentError("--rate: unary-rate needs a rate > 0 (calls/s)");
    }
    if (rate < 0) return absl::InvalidArgumentError("--rate: must be >= 0");
    if (concurrency < 1) return absl::InvalidArgumentError("--concurrency: must be >= 1");
    if (max_outstanding < 1) return absl::InvalidArgumentError("--max-outstanding: must be >= 1");
    if (!(learn_fraction >= 0 && learn_fraction <= 1)) {
      return absl::InvalidArgumentError("--learn-fraction: must be in [0, 1]");
    }
    if (instances < 1) return absl::InvalidArgumentError("--instances: must be >= 1");
    if (batch < 1 || window < 1 || streams < 1) {
      return absl::InvalidArgumentError("--batch, --window and --streams: must be >= 1");
    }
    if (deadline_ms < 1) return absl::InvalidArgumentError("--deadline-ms: must be >= 1");
    return absl::OkStatus();
  }

  bool open_loop() const { return mode == "unary-rate" || (mode == "mixed" && rate > 0); }
  double effective_learn_fraction() const { return mode == "mixed" ? learn_fraction : 0.0; }
};

// ---------------------------------------------------------------------------------------------
// Time, CPU and statistics

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Sleeps until `deadline` (steady_clock nanos). CLOCK_MONOTONIC is steady_clock's clock on Linux.
void SleepUntil(std::int64_t deadline) {
  timespec ts;
  ts.tv_sec = deadline / 1'000'000'000;
  ts.tv_nsec = deadline % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// utime + stime of another process from /proc/<pid>/stat; -1 if unreadable.
double OtherProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  const std::size_t close = stat.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields;
  std::size_t pos = close + 2;
  while (pos < stat.size()) {
    std::size_t end = stat.find(' ', pos);
    if (end == std::string::npos) end = stat.size();
    fields.push_back(stat.substr(pos, end - pos));
    pos = end + 1;
  }
  // Fields after ")": state is index 0, so utime (field 14) is index 11 and stime index 12.
  if (fields.size() < 13) return -1;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};

// Exact percentiles (nearest rank) of latencies in nanoseconds; sorts its argument.
LatencySummary Summarize(std::vector<std::int64_t>* nanos) {
  LatencySummary s;
  s.count = nanos->size();
  if (nanos->empty()) return s;
  std::sort(nanos->begin(), nanos->end());
  auto at = [&](double q) {
    const std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(s.count)));
    return static_cast<double>((*nanos)[std::max<std::size_t>(rank, 1) - 1]) * 1e-6;
  };
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.p999_ms = at(0.999);
  s.max_ms = static_cast<double>(nanos->back()) * 1e-6;
  double sum = 0;
  for (std::int64_t v : *nanos) sum += static_cast<double>(v);
  s.mean_ms = sum / static_cast<double>(s.count) * 1e-6;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Data: instances, the ground-truth model, pre-serialized requests

class DataGenerator {
 public:
  DataGenerator(int features, std::uint64_t seed) : rng_(seed) {
    names_.reserve(static_cast<std::size_t>(features));
    for (int j = 0; j < features; ++j) names_.push_back(absl::StrCat("f", j));
    std::normal_distribution<double> normal;
    truth_.resize(static_cast<std::size_t>(features));
    for (double& w : truth_) w = normal(rng_);
  }

  // Fills `out` with a fresh instance; returns its ground-truth P(class "1").
  double Fill(v1::Instance* out, bool with_id) {
    std::normal_distribution<double> normal;
    double z = 0;
    auto* map = out->mutable_features();
    for (std::size_t j = 0; j < names_.size(); ++j) {
      const double x = normal(rng_);
      z += truth_[j] * x;
      (*map)[names_[j]].set_number(x);
    }
    if (with_id) out->set_id(absl::StrCat("i", next_id_++));
    return 1.0 / (1.0 + std::exp(-z));
  }

  // Appends one fresh instance as a row of `out` (DenseBatch: names set on the first row).
  void FillDense(v1::DenseBatch* out, bool with_id) {
    if (out->feature_names_size() == 0) {
      for (const std::string& name : names_) out->add_feature_names(name);
    }
    std::normal_distribution<double> normal;
    for (std::size_t j = 0; j < names_.size(); ++j) out->add_values(normal(rng_));
    if (with_id) out->add_ids(absl::StrCat("i", next_id_++));
  }

  void FillExample(v1::LabeledInstance* out) {
    const double p = Fill(out->mutable_instance(), /*with_id=*/false);
    out->mutable_label()->set_class_name(uniform_(rng_) < p ? "1" : "0");
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_;
  std::vector<std::string> names_;
  std::vector<double> truth_;
  std::uint64_t next_id_ = 0;
};

grpc::ByteBuffer Serialize(const google::protobuf::Message& message) {
  grpc::ByteBuffer buffer;
  bool own = false;
  grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(message, &buffer,
                                                                             &own);
  return buffer;
}

template <typename Message>
bool Parse(grpc::ByteBuffer* buffer, Message* out) {
  return grpc::GenericDeserialize<grpc::ProtoBufferReader, Message>(buffer, out).ok();
}

struct RequestPools {
  std::vector<grpc::ByteBuffer> predict;  // one instance each (unary) or `batch` (stream)
  std::vector<grpc::ByteBuffer> learn;    // one labeled example each
  std::size_t serialized_predict_bytes = 0;
};

RequestPools BuildPools(const LoadOptions& o, DataGenerator* data) {
  RequestPools pools;
  const bool stream = o.mode == "stream";
  // A stream pool of 16 batches is 16 x batch distinct instances: enough that the server does
  // not see the same message back to back, small enough to build quickly.
  const int n = stream ? 16 : o.pool;
  const int per_request = stream ? o.batch : o.instances;
  for (int i = 0; i < n; ++i) {
    v1::PredictRequest request;
    request.set_model(o.model);
    for (int j = 0; j < per_request; ++j) {
      if (o.dense) {
        data->FillDense(request.mutable_dense(), o.with_ids);
      } else {
        data->Fill(request.add_instances(), o.with_ids);
      }
    }
    pools.predict.push_back(Serialize(request));
    if (i == 0) pools.serialized_predict_bytes = request.ByteSizeLong();
  }
  if (o.effective_learn_fraction() > 0) {
    for (int i = 0; i < o.pool; ++i) {
      v1::LearnRequest request;
      request.set_model(o.model);
      data->FillExample(request.add_examples());
      pools.learn.push_back(Serialize(request));
    }
  }
  return pools;
}

// ---------------------------------------------------------------------------------------------
// Setup: create the model and teach it

void AddToken(const LoadOptions& o, grpc::ClientContext* ctx) {
  if (!o.token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", o.token));
}

absl::Status ToAbsl(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrFormat("%s: %s", what, s.error_message()));
}

absl::Status PrepareModel(const LoadOptions& o, const std::shared_ptr<grpc::Channel>& channel,
                          DataGenerator* data, std::FILE* log) {
  auto models = v1::ModelService::NewStub(channel);
  auto inference = v1::InferenceService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);
    AddToken(o, &ctx);
    v1::CreateModelRequest request;
    request.set_name(o.model);
    request.mutable_spec()->set_learner("logreg");
    v1::Model created;
    grpc::Status s = models->CreateModel(&ctx, request, &created);
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      std::fprintf(log, "model '%s' exists; using it\n", o.model.c_str());
    } else if (!s.ok()) {
      return ToAbsl(s, "CreateModel");
    } else {
      std::fprintf(log, "model '%s' created (logreg)\n", o.model.c_str());
    }
  }
  constexpr int kTrainBatch = 1000;
  for (int done = 0; done < o.train_examples; done += kTrainBatch) {
    v1::LearnRequest request;
    request.set_model(o.model);
    for (int i = done; i < std::min(o.train_examples, done + kTrainBatch); ++i) {
      data->FillExample(request.add_examples());
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    AddToken(o, &ctx);
    v1::LearnResponse response;
    if (absl::Status s = ToAbsl(inference->Learn(&ctx, request, &response), "Learn (training)");
        !s.ok()) {
      return s;
    }
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetModelRequest request;
  request.set_model(o.model);
  v1::Model model;
  if (absl::Status s = ToAbsl(models->GetModel(&ctx, request, &model), "GetModel"); !s.ok()) {
    return s;
  }
  std::fprintf(log, "model '%s': %llu labeled events, %d classes\n", o.model.c_str(),
               static_cast<unsigned long long>(model.labeled()), model.classes_size());
  if (model.classes_size() < 2) {
    return absl::FailedPreconditionError(
        "the model knows fewer than 2 classes: predictions would do no work (--train-examples)");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// The measurement window and per-thread results

struct Window {
  std::int64_t start = 0;  // load begins
  std::int64_t measure_from = 0;
  std::int64_t measure_to = 0;
  bool Contains(std::int64_t t) const { return t >= measure_from && t < measure_to; }
};

enum class Kind { kPredict = 0, kLearn = 1 };

// Owned by one client thread while it runs; merged afterwards.
struct ThreadResults {
  std::vector<std::int64_t> latency[2];  // by Kind
  std::uint64_t ok[2] = {0, 0};          // measured calls that succeeded
  std::uint64_t failed[2] = {0, 0};      // measured calls that failed
  std::uint64_t predictions = 0;         // measured predictions received (stream: many per call)
  std::uint64_t stream_messages = 0;
  std::string first_error;

  void Fail(Kind kind, bool measured, const std::string& error) {
    if (measured) ++failed[static_cast<int>(kind)];
    if (first_error.empty()) first_error = error;
  }
};

struct Clients {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
};

Clients Connect(const LoadOptions& o) {
  Clients c;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    // Without a local pool, channels with equal arguments share one TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    c.channels.push_back(
        grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args));
    c.stubs.push_back(std::make_unique<grpc::GenericStub>(c.channels.back()));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Unary calls: open and closed loop

struct UnaryCall {
  grpc::ClientContext ctx;
  grpc::ByteBuffer reply;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  Kind kind = Kind::kPredict;
  std::int64_t origin = 0;  // open loop: scheduled time; closed loop: send time
};

// Which calls are Learn: call k is a Learn when floor((k+1) f) > floor(k f), spreading them
// evenly at fraction f, deterministically.
Kind KindOf(std::uint64_t k, double learn_fraction) {
  if (learn_fraction <= 0) return Kind::kPredict;
  const auto a = static_cast<std::uint64_t>(static_cast<double>(k) * learn_fraction);
  const auto b = static_cast<std::uint64_t>(static_cast<double>(k + 1) * learn_fraction);
  return b > a ? Kind::kLearn : Kind::kPredict;
}

class UnaryLoad {
 public:
  UnaryLoad(const LoadOptions& o, const RequestPools& pools, Clients* clients)
      : o_(o), pools_(pools), clients_(clients) {
    for (int t = 0; t < o.threads; ++t) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
    results_.resize(static_cast<std::size_t>(o.threads));
  }

  std::vector<ThreadResults> Run(const Window& window) {
    window_ = window;
    std::vector<std::thread> pollers;
    for (int t = 0; t < o_.threads; ++t) pollers.emplace_back([this, t] { Poll(t); });
    if (o_.open_loop()) {
      Send();
    } else {
      SleepUntil(window_.start);
      // Closed loop: the initial calls; each completion issues the next on the same queue.
      for (int i = 0; i < o_.concurrency; ++i) {
        Issue(next_.fetch_add(1), static_cast<std::size_t>(i % o_.threads), NowNanos());
      }
      SleepUntil(window_.measure_to);
      stop_.store(true);
    }
    // Let the calls in flight finish, then release the pollers.
    while (outstanding_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (auto& cq : cqs_) cq->Shutdown();
    for (std::thread& t : pollers) t.join();
    return std::move(results_);
  }

 private:
  void Issue(std::uint64_t k, std::size_t thread, std::int64_t origin) {
    auto* call = new UnaryCall;
    call->kind = KindOf(k, o_.effective_learn_fraction());
    call->origin = origin;
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(o_.deadline_ms));
    if (call->kind == Kind::kLearn) AddToken(o_, &call->ctx);
    const bool learn = call->kind == Kind::kLearn;
    const std::vector<grpc::ByteBuffer>& pool = learn ? pools_.learn : pools_.predict;
    grpc::GenericStub& stub = *clients_->stubs[k % clients_->stubs.size()];
    call->reader = stub.PrepareUnaryCall(&call->ctx, learn ? learn_method_ : predict_method_,
                                         pool[k % pool.size()], cqs_[thread].get());
    outstanding_.fetch_add(1);
    call->reader->StartCall();
    call->reader->Finish(&call->reply, &call->status, call);
  }

  // Open loop: issue call k at start + k / rate, on queue k mod threads. Sleeps between calls
  // (no spinning: the server needs the cores); a late wake-up sends everything that is due.
  void Send() {
    prctl(PR_SET_TIMERSLACK, 1UL);  // wake within microseconds, not the default 50 µs
    const double interval = 1e9 / o_.rate;
    for (std::uint64_t k = 0;; ++k) {
      const std::int64_t due =
          window_.start + static_cast<std::int64_t>(static_cast<double>(k) * interval);
      if (due >= window_.measure_to) break;
      if (NowNanos() < due) SleepUntil(due);
      while (outstanding_.load(std::memory_order_relaxed) >= o_.max_outstanding) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      Issue(k, static_cast<std::size_t>(k % cqs_.size()), due);
    }
  }

  void Poll(int t) {
    ThreadResults& r = results_[static_cast<std::size_t>(t)];
    const std::size_t expected = static_cast<std::size_t>((o_.open_loop() ? o_.rate : 200'000.0) *
                                                          o_.duration_seconds / o_.threads * 1.1);
    r.latency[0].reserve(expected);
    void* tag;
    bool ok;
    while (cqs_[static_cast<std::size_t>(t)]->Next(&tag, &ok)) {
      std::unique_ptr<UnaryCall> call(static_cast<UnaryCall*>(tag));
      const std::int64_t now = NowNanos();
      const int kind = static_cast<int>(call->kind);
      const bool measured = window_.Contains(call->origin);
      if (!call->status.ok()) {
        r.Fail(call->kind, measured,
               absl::StrFormat("%s: code %d: %s", kind == 0 ? "Predict" : "Learn",
                               call->status.error_code(), call->status.error_message()));
      } else if (!CheckReply(call.get(), &r, measured)) {
        // counted as failed by CheckReply
      } else if (measured) {
        ++r.ok[kind];
        r.latency[kind].push_back(now - call->origin);
      }
      if (!o_.open_loop() && !stop_.load(std::memory_order_relaxed)) {
        Issue(next_.fetch_add(1), static_cast<std::size_t>(t), now);
      }
      outstanding_.fetch_sub(1);
    }
  }

  // Parses the reply: a Predict must give every prediction, with probabilities.
  bool CheckReply(UnaryCall* call, ThreadResults* r, bool measured) {
    if (call->kind == Kind::kLearn) {
      v1::LearnResponse learned;
      if (!Parse(&call->reply, &learned) || learned.learned() != 1) {
        r->Fail(call->kind, measured, "Learn: unexpected reply");
        return false;
      }
      return true;
    }
    v1::PredictResponse predicted;
    if (!Parse(&call->reply, &predicted) || predicted.predictions_size() != o_.instances ||
        predicted.predictions(0).probabilities_size() < 2) {
      r->Fail(call->kind, measured, "Predict: a reply without every prediction");
      return false;
    }
    if (measured) r->predictions += static_cast<std::uint64_t>(o_.instances);
    return true;
  }

  const LoadOptions& o_;
  const RequestPools& pools_;
  Clients* clients_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<ThreadResults> results_;
  Window window_;
  const std::string predict_method_ = kPredictMethod;  // the stub takes std::string
  const std::string learn_method_ = kLearnMethod;
  std::atomic<std::uint64_t> next_{0};
  std::atomic<std::int64_t> outstanding_{0};
  std::atomic<bool> stop_{false};
};

// ---------------------------------------------------------------------------------------------
// PredictStream: `window` requests in flight per stream

class StreamLoad {
 public:
  StreamLoad(const LoadOptions& o, const RequestPools& pools, Clients* clients)
      : o_(o), pools_(pools), clients_(clients) {
    for (int t = 0; t < o.threads; ++t) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
    results_.resize(static_cast<std::size_t>(o.threads));
  }

  std::vector<ThreadResults> Run(const Window& window) {
    window_ = window;
    for (int s = 0; s < o_.streams; ++s) {
      auto stream = std::make_unique<Stream>();
      stream->thread = static_cast<std::size_t>(s % o_.threads);
      stream->next_request = static_cast<std::size_t>(s);
      for (int op = 0; op < kOps; ++op) stream->ops[op] = {stream.get(), static_cast<Op>(op)};
      streams_.push_back(std::move(stream));
    }
    active_.store(o_.streams);
    std::vector<std::thread> pollers;
    for (int t = 0; t < o_.threads; ++t) pollers.emplace_back([this, t] { Poll(t); });
    SleepUntil(window_.start);
    for (int s = 0; s < o_.streams; ++s) {
      Stream* stream = streams_[static_cast<std::size_t>(s)].get();
      // The stream lives in its poller's queue from here on; only that thread touches it.
      stream->rw =
          clients_->stubs[static_cast<std::size_t>(s) % clients_->stubs.size()]->PrepareCall(
              &stream->ctx, kPredictStreamMethod, cqs_[stream->thread].get());
      stream->rw->StartCall(&stream->ops[kStart]);
    }
    SleepUntil(window_.measure_to);
    stop_.store(true);
    // Wakes every poller so that idle streams notice the stop (one alarm per stream).
    std::vector<std::unique_ptr<grpc::Alarm>> alarms;
    for (auto& stream : streams_) {
      alarms.push_back(std::make_unique<grpc::Alarm>());
      alarms.back()->Set(cqs_[stream->thread].get(), gpr_now(GPR_CLOCK_MONOTONIC),
                         &stream->ops[kWake]);
    }
    while (active_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (auto& cq : cqs_) cq->Shutdown();
    for (std::thread& t : pollers) t.join();
    return std::move(results_);
  }

 private:
  enum Op { kStart = 0, kWrite, kRead, kWritesDone, kFinish, kWake, kOps };
  struct Stream;
  struct Tag {
    Stream* stream;
    Op op;
  };
  struct Stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> rw;
    Tag ops[kOps];
    std::size_t thread = 0;
    std::size_t next_request = 0;
    std::deque<std::int64_t> sent;  // send times of the requests in flight, oldest first
    grpc::ByteBuffer reply;
    grpc::Status status;
    bool started = false, writing = false, writes_done = false, finishing = false, done = false;
  };

  void MaybeWrite(Stream* s) {
    if (!s->started || s->writing || s->writes_done) return;
    if (stop_.load(std::memory_order_relaxed)) {
      if (s->sent.empty()) {
        s->writes_done = true;
        s->rw->WritesDone(&s->ops[kWritesDone]);
      }
      return;
    }
    if (s->sent.size() >= static_cast<std::size_t>(o_.window)) return;
    s->writing = true;
    s->sent.push_back(NowNanos());
    s->rw->Write(pools_.predict[s->next_request++ % pools_.predict.size()], &s->ops[kWrite]);
  }

  void Poll(int t) {
    ThreadResults& r = results_[static_cast<std::size_t>(t)];
    r.latency[0].reserve(1 << 20);
    void* tag;
    bool ok;
    while (cqs_[static_cast<std::size_t>(t)]->Next(&tag, &ok)) {
      auto* op = static_cast<Tag*>(tag);
      Stream* s = op->stream;
      if (s->done) continue;
      switch (op->op) {
        case kStart:
          if (!ok) {
            s->finishing = true;
            s->rw->Finish(&s->status, &s->ops[kFinish]);
            break;
          }
          s->started = true;
          s->rw->Read(&s->reply, &s->ops[kRead]);
          MaybeWrite(s);
          break;
        case kWrite:
          s->writing = false;
          if (!ok) break;  // the stream failed; the pending Read returns false
          MaybeWrite(s);
          break;
        case kRead: {
          if (!ok) {  // the server closed the stream
            s->finishing = true;
            s->rw->Finish(&s->status, &s->ops[kFinish]);
            break;
          }
          const std::int64_t now = NowNanos();
          const std::int64_t sent = s->sent.front();
          s->sent.pop_front();
          const bool measured = window_.Contains(sent);
          v1::PredictResponse response;
          if (!Parse(&s->reply, &response) || response.predictions_size() != o_.batch) {
            r.Fail(Kind::kPredict, measured, "PredictStream: a reply without every prediction");
          } else if (measured) {
            ++r.ok[0];
            ++r.stream_messages;
            r.predictions += static_cast<std::uint64_t>(response.predictions_size());
            r.latency[0].push_back(now - sent);
          }
          s->rw->Read(&s->reply, &s->ops[kRead]);
          MaybeWrite(s);
          break;
        }
        case kWritesDone:
          break;  // the server finishes; the pending Read returns false
        case kFinish:
          if (!s->status.ok()) {
            r.Fail(Kind::kPredict, true,
                   absl::StrFormat("PredictStream: code %d: %s", s->status.error_code(),
                                   s->status.error_message()));
          }
          s->done = true;
          active_.fetch_sub(1);
          break;
        case kWake:
          MaybeWrite(s);
          break;
        case kOps:
          break;
      }
    }
  }

  const LoadOptions& o_;
  const RequestPools& pools_;
  Clients* clients_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<ThreadResults> results_;
  Window window_;
  std::atomic<bool> stop_{false};
  std::atomic<int> active_{0};
};

// ---------------------------------------------------------------------------------------------
// Report

struct Report {
  std::string mode;
  double seconds = 0;
  double offered_rate = 0;  // open loop
  std::uint64_t ok[2] = {0, 0};
  std::uint64_t failed[2] = {0, 0};
  std::uint64_t predictions = 0;
  std::uint64_t stream_messages = 0;
  LatencySummary latency[2];
  double client_cpu = 0;  // cores used over the window (CPU seconds / wall seconds)
  double server_cpu = -1;
  std::string first_error;
};

Report Merge(const LoadOptions& o, std::vector<ThreadResults> results, const Window& w) {
  Report rep;
  rep.mode = o.mode;
  rep.seconds = static_cast<double>(w.measure_to - w.measure_from) * 1e-9;
  rep.offered_rate = o.open_loop() ? o.rate : 0;
  for (int k = 0; k < 2; ++k) {
    std::vector<std::int64_t> all;
    for (ThreadResults& r : results) {
      all.insert(all.end(), r.latency[k].begin(), r.latency[k].end());
      rep.ok[k] += r.ok[k];
      rep.failed[k] += r.failed[k];
    }
    rep.latency[k] = Summarize(&all);
  }
  for (ThreadResults& r : results) {
    rep.predictions += r.predictions;
    rep.stream_messages += r.stream_messages;
    if (rep.first_error.empty()) rep.first_error = r.first_error;
  }
  return rep;
}

void PrintHuman(const LoadOptions& o, const Report& r, std::size_t request_bytes, std::FILE* f) {
  std::fprintf(f, "mode %s, target %s, %d features, %d channels, %d client threads\n",
               r.mode.c_str(), o.target.c_str(), o.features, o.channels, o.threads);
  if (r.mode == "stream") {
    std::fprintf(f, "  %d streams x %d requests in flight, %d instances per request (%zu bytes)\n",
                 o.streams, o.window, o.batch, request_bytes);
  } else if (o.open_loop()) {
    std::fprintf(f, "  open loop at %.0f calls/s (latency from the scheduled send time)\n", o.rate);
  } else {
    std::fprintf(f, "  closed loop, %d calls outstanding\n", o.concurrency);
  }
  if (r.mode != "stream") std::fprintf(f, "  %d instance(s) per Predict\n", o.instances);
  std::fprintf(f, "  measured %.1f s after %.1f s warm-up\n", r.seconds, o.warmup_seconds);
  std::fprintf(f, "  predictions/s: %.0f\n", static_cast<double>(r.predictions) / r.seconds);
  const char* names[2] = {r.mode == "stream" ? "stream message" : "Predict", "Learn"};
  for (int k = 0; k < 2; ++k) {
    if (r.ok[k] + r.failed[k] == 0) continue;
    const LatencySummary& l = r.latency[k];
    std::fprintf(f,
                 "  %-14s %9.0f/s ok, %llu failed; latency ms: p50 %.3f  p90 %.3f  p99 %.3f  "
                 "p99.9 %.3f  max %.3f  (mean %.3f)\n",
                 names[k], static_cast<double>(r.ok[k]) / r.seconds,
                 static_cast<unsigned long long>(r.failed[k]), l.p50_ms, l.p90_ms, l.p99_ms,
                 l.p999_ms, l.max_ms, l.mean_ms);
  }
  std::fprintf(f, "  CPU: client %.2f cores", r.client_cpu);
  if (r.server_cpu >= 0) std::fprintf(f, ", server %.2f cores", r.server_cpu);
  std::fprintf(f, "\n");
  if (!r.first_error.empty()) std::fprintf(f, "  first error: %s\n", r.first_error.c_str());
}

std::string LatencyJson(const LatencySummary& l) {
  return absl::StrFormat(
      "{\"count\": %d, \"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, "
      "\"max_ms\": %.4f, \"mean_ms\": %.4f}",
      l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms);
}

std::string ToJson(const LoadOptions& o, const Report& r) {
  std::string out = absl::StrFormat(
      "{\"mode\": \"%s\", \"target\": \"%s\", \"features\": %d, \"channels\": %d, "
      "\"threads\": %d, \"seconds\": %.3f, \"offered_rate\": %.1f, \"concurrency\": %d, "
      "\"instances\": %d, \"batch\": %d, \"window\": %d, \"streams\": %d, \"learn_fraction\": "
      "%.3f, "
      "\"predictions_per_second\": %.1f, \"stream_messages\": %d, "
      "\"predict\": {\"ok\": %d, \"failed\": %d, \"per_second\": %.1f, \"latency\": %s}, "
      "\"learn\": {\"ok\": %d, \"failed\": %d, \"per_second\": %.1f, \"latency\": %s}, "
      "\"client_cpu_cores\": %.3f, \"server_cpu_cores\": %.3f}",
      r.mode, o.target, o.features, o.channels, o.threads, r.seconds, r.offered_rate, o.concurrency,
      o.instances, o.batch, o.window, o.streams, o.effective_learn_fraction(),
      static_cast<double>(r.predictions) / r.seconds, r.stream_messages, r.ok[0], r.failed[0],
      static_cast<double>(r.ok[0]) / r.seconds, LatencyJson(r.latency[0]), r.ok[1], r.failed[1],
      static_cast<double>(r.ok[1]) / r.seconds, LatencyJson(r.latency[1]), r.client_cpu,
      r.server_cpu);
  return out;
}

int Run(const LoadOptions& o) {
  std::FILE* log = o.json_path == "-" ? stderr : stdout;
  DataGenerator data(o.features, o.seed);
  Clients clients = Connect(o);
  if (absl::Status s = PrepareModel(o, clients.channels[0], &data, log); !s.ok()) {
    std::fprintf(stderr, "grpc_load: setup: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  const RequestPools pools = BuildPools(o, &data);
  for (auto& channel : clients.channels) {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "grpc_load: cannot connect to %s\n", o.target.c_str());
      return 1;
    }
  }

  // The load starts shortly after now (so the client threads are up first); a thread samples
  // the CPU clocks at the two ends of the measured window.
  Window window;
  window.start = NowNanos() + 50'000'000;
  window.measure_from = window.start + static_cast<std::int64_t>(o.warmup_seconds * 1e9);
  window.measure_to = window.measure_from + static_cast<std::int64_t>(o.duration_seconds * 1e9);
  double client_cpu = 0, server_cpu = -1;
  std::thread sampler([&] {
    SleepUntil(window.measure_from);
    const double c0 = ProcessCpuSeconds();
    const double s0 = o.server_pid > 0 ? OtherProcessCpuSeconds(o.server_pid) : -1;
    SleepUntil(window.measure_to);
    const double secs = static_cast<double>(window.measure_to - window.measure_from) * 1e-9;
    client_cpu = (ProcessCpuSeconds() - c0) / secs;
    if (s0 >= 0) server_cpu = (OtherProcessCpuSeconds(o.server_pid) - s0) / secs;
  });
  std::vector<ThreadResults> results;
  if (o.mode == "stream") {
    results = StreamLoad(o, pools, &clients).Run(window);
  } else {
    results = UnaryLoad(o, pools, &clients).Run(window);
  }
  sampler.join();

  Report report = Merge(o, std::move(results), window);
  report.client_cpu = client_cpu;
  report.server_cpu = server_cpu;
  PrintHuman(o, report, pools.serialized_predict_bytes, log);
  if (!o.json_path.empty()) {
    const std::string json = ToJson(o, report) + "\n";
    if (o.json_path == "-") {
      std::fputs(json.c_str(), stdout);
    } else {
      std::ofstream(o.json_path) << json;
    }
  }
  return report.failed[0] + report.failed[1] == 0 ? 0 : 1;
}

}  // namespace
}  // namespace riffle::bench

int main(int argc, char** argv) {
  riffle::bench::LoadOptions o;
  CLI::App app{"Load generator for `riffle serve` (see the comment at the top of grpc_load.cc)"};
  app.add_option("mode", o.mode, "unary-rate, unary-max, stream or mixed")->required();
  app.add_option("--target", o.target, "host:port of the server")->required();
  app.add_option("--model", o.model, "Model name (created as logreg if absent)");
  app.add_option("--token", o.token, "Bearer token for CreateModel and Learn");
  app.add_option("--features", o.features, "Numeric features per instance");
  app.add_option("--seed", o.seed, "Seed of the instances and labels");
  app.add_option("--train-examples", o.train_examples, "Labeled instances learned first");
  app.add_option("--pool", o.pool, "Distinct pre-serialized unary requests");
  app.add_option("--duration", o.duration_seconds, "Measured seconds");
  app.add_option("--warmup", o.warmup_seconds, "Unmeasured seconds of load first");
  app.add_option("--channels", o.channels, "TCP connections");
  app.add_option("--threads", o.threads, "Client threads (one CompletionQueue each)");
  app.add_option("--rate", o.rate, "Open loop: calls per second (unary-rate, mixed)");
  app.add_option("--concurrency", o.concurrency, "Closed loop: calls outstanding");
  app.add_option("--max-outstanding", o.max_outstanding, "Open loop: cap on calls in flight");
  app.add_option("--learn-fraction", o.learn_fraction, "mixed: share of calls that are Learn");
  app.add_option("--instances", o.instances, "unary, mixed: instances per Predict");
  app.add_option("--batch", o.batch, "stream: instances per request");
  app.add_option("--window", o.window, "stream: requests in flight per stream");
  app.add_option("--streams", o.streams, "stream: concurrent streams");
  app.add_option("--deadline-ms", o.deadline_ms, "Deadline of each unary call");
  app.add_flag("--dense", o.dense,
               "Send instances as a DenseBatch (columns of numbers) instead of feature maps");
  app.add_flag("--with-ids", o.with_ids, "Give every instance an id (server caches features)");
  app.add_flag("--mutex-deadlock-detection", o.mutex_deadlock_detection,
               "Keep Abseil's mutex deadlock detection (Debian's default) in the client");
  app.add_option("--server-pid", o.server_pid, "Also report this process's CPU use");
  app.add_option("--json", o.json_path, "Write the figures as JSON here (\"-\": stdout)");
  CLI11_PARSE(app, argc, argv);
  // gRPC locks with absl::Mutex, and Debian's Abseil is built without NDEBUG, so every lock
  // also walks Abseil's deadlock-detection graph (6% of a server's CPU under unary load). That is
  // a debugging aid, not work a client must do.
  if (!o.mutex_deadlock_detection) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  if (absl::Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "grpc_load: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  return riffle::bench::Run(o);
}
