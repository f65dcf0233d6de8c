#ifndef RIFFLE_SERVICE_HTTP_ENDPOINT_H_
#define RIFFLE_SERVICE_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/dashboard.h"
#include "service/logger.h"
#include "service/metrics_history.h"

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
//   GET /metrics            every source of the MetricsCollector, in the Prometheus text
//                           format 0.0.4
//   GET /healthz            liveness: 200 "ok" as long as the endpoint answers
//   GET /readyz             readiness: 200 "ready" when the ReadinessCheck returns OK,
//                           otherwise 503 with its message (e.g. the gRPC server is shutting
//                           down)
//   GET /, GET /dashboard   (with a dashboard) redirect to /dashboard/
//   GET /dashboard/         the dashboard page; /dashboard/<file> its scripts and styles
//   GET /api/v1/dashboard   the dashboard's data as JSON (docs/DASHBOARD.md); ?since=T (Unix
//                           seconds) keeps only the points after T; 400 for a bad T
//   anything else 404 (without a dashboard, its routes too).
//
// A scrape collects every source (MetricsCollector::Collect, which never runs sources
// concurrently), then formats and sends the text. Sources read the served models through
// their reader locks and lock-free histograms (ModelMetricsSource), so scraping never stops
// predictions; the dashboard reads only the MetricsHistory, never the models.
//
// Thread-safety: Stop and the destructor are called from the owner's thread. The collector,
// the dashboard and the logger are not owned and must outlive the endpoint (or its Stop()).
class HttpEndpoint {
 public:
  // What /readyz answers: OK = ready; otherwise the status message is the 503 body. Called on
  // the endpoint's threads, so it must be thread-safe. Null: always ready.
  using ReadinessCheck = std::function<absl::Status()>;

  // Binds and starts serving /metrics from `collector` (required) and, unless `dashboard` is
  // null, the dashboard. InvalidArgument for an invalid address, FailedPrecondition if it
  // cannot be bound (in use: the endpoint does not set SO_REUSEPORT, so a second server never
  // silently shares the port).
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const HttpEndpointOptions& options,
                                                             MetricsCollector* collector,
                                                             const Dashboard* dashboard,
                                                             ReadinessCheck readiness,
                                                             Logger* logger);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }
  // The bound address, host:port ("127.0.0.1:39417").
  const std::string& address() const { return address_; }

  // Stops accepting connections and waits for the requests in progress (an idle keep-alive
  // connection is dropped within ~2 s). Idempotent.
  void Stop();

 private:
  HttpEndpoint(MetricsCollector* collector, const Dashboard* dashboard, ReadinessCheck readiness,
               Logger* logger);

  MetricsCollector* const collector_;
  const Dashboard* const dashboard_;
  const ReadinessCheck readiness_;
  Logger* const logger_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string address_;
  bool stopped_ = false;
};

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_HTTP_ENDPOINT_H_
