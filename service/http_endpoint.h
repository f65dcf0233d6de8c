#ifndef RIFFLE_SERVICE_HTTP_ENDPOINT_H_
#define RIFFLE_SERVICE_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/logger.h"
#include "service/prometheus.h"

namespace httplib {  // NOLINT(readability-identifier-naming): cpp-httplib's namespace
class Server;
}  // namespace httplib

namespace riffle::service {

struct HttpEndpointOptions {
  // host:port ("127.0.0.1:9464", "[::1]:9464"); port 0 picks a free port. "" = no endpoint
  // (`riffle serve` starts none). Plain HTTP without authentication: keep it on loopback or a
  // private network.
  std::string listen;

  // InvalidArgument naming "http.listen" unless listen is "" or host:port with a port in
  // [0, 65535].
  absl::Status Validate() const;
};

// The HTTP side of `riffle serve`, for monitoring (cpp-httplib, on its own threads):
//   GET /metrics  every registered MetricsSource, in the Prometheus text format 0.0.4
//   GET /healthz  liveness: 200 "ok" as long as the endpoint answers
//   GET /readyz   readiness: 200 "ready" when the ReadinessCheck returns OK, otherwise 503 with
//                 its message (e.g. the gRPC server is shutting down)
//   anything else 404.
//
// A scrape collects every source under the endpoint's own mutex (so sources are never
// collected concurrently, and RemoveSource waits for a scrape in progress), then formats and
// sends the text with no lock held. Sources read the served models through their reader locks
// and lock-free histograms (ModelMetricsSource), so scraping never stops predictions.
//
// Thread-safety: AddSource and RemoveSource may be called from any thread at any time; Stop
// and the destructor from the owner's thread. Sources and the logger are not owned.
class HttpEndpoint {
 public:
  // What /readyz answers: OK = ready; otherwise the status message is the 503 body. Called on
  // the endpoint's threads, so it must be thread-safe. Null: always ready.
  using ReadinessCheck = std::function<absl::Status()>;

  // Binds and starts serving. InvalidArgument for an invalid address, FailedPrecondition if it
  // cannot be bound (in use: the endpoint does not set SO_REUSEPORT, so a second server never
  // silently shares the port).
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const HttpEndpointOptions& options,
                                                             ReadinessCheck readiness,
                                                             Logger* logger);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }
  // The bound address, host:port ("127.0.0.1:39417").
  const std::string& address() const { return address_; }

  // Adds `source` to every scrape from now on. It must stay valid until RemoveSource(source)
  // returns or the endpoint is destroyed. Adding the same source twice has no effect.
  void AddSource(MetricsSource* source);
  // Removes `source`, waiting for a scrape that is collecting it.
  void RemoveSource(MetricsSource* source);

  // The body of GET /metrics, now. A sample a source got wrong is left out and logged (once
  // per distinct message) as a warning.
  std::string Scrape();

  // Stops accepting connections and waits for the requests in progress (an idle keep-alive
  // connection is dropped within ~2 s). Idempotent.
  void Stop();

 private:
  HttpEndpoint(ReadinessCheck readiness, Logger* logger);

  const ReadinessCheck readiness_;
  Logger* const logger_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string address_;
  bool stopped_ = false;

  std::mutex sources_mu_;
  std::vector<MetricsSource*> sources_ ABSL_GUARDED_BY(sources_mu_);
  // Source errors already logged (bounded), so a faulty source does not log every scrape.
  std::set<std::string> reported_ ABSL_GUARDED_BY(sources_mu_);
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_HTTP_ENDPOINT_H_
