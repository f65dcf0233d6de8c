#include "service/http_endpoint.h"

// Debian's cpp-httplib is a compiled library (libcpp-httplib.so) built with OpenSSL, zlib and
// Brotli: its classes' layout depends on CPPHTTPLIB_OPENSSL_SUPPORT and friends, so this file
// is compiled with the package's own flags (pkg-config cpp-httplib, see CMakeLists.txt) to
// match them. Only plain HTTP is used.
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

// Scrapes, probes and the dashboard's polls (one a second per open page) are rare and quick:
// two workers answer them; a slow client cannot hold one for longer than the read and write
// timeouts.
constexpr std::size_t kWorkerThreads = 2;
constexpr time_t kReadWriteTimeoutSeconds = 5;
// Bounds how long Stop() waits for an idle keep-alive connection.
constexpr time_t kKeepAliveTimeoutSeconds = 2;
// Requests carry no body.
constexpr std::size_t kMaxPayloadBytes = std::size_t{64} << 10;

struct HostPort {
  std::string host;  // without brackets: what getaddrinfo takes
  int port = 0;
};

absl::StatusOr<HostPort> ParseListen(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrFormat("http.listen: expected host:port, got \"%s\"", listen));
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return invalid();
  HostPort out;
  out.host = listen.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host.empty()) return invalid();
  const std::string port = listen.substr(colon + 1);
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid();
  }
  out.port = std::stoi(port);
  if (out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("http.listen: port %d is above 65535", out.port));
  }
  return out;
}

void PlainText(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "text/plain; charset=utf-8");
}

void Redirect(httplib::Response& res, const char* location) {
  res.status = 302;
  res.set_header("Location", location);
}

// The page loads its own files only (no CDN, no inline script): the browser enforces it, so a
// record text shown on the page can never run as code either.
constexpr char kDashboardContentSecurityPolicy[] =
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

void DashboardHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kDashboardContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  // Revalidate each time: a restarted, upgraded riffle serves its new page at once.
  res.set_header("Cache-Control", "no-cache");
}

// ?since=T of /api/v1/dashboard: seconds since the Unix epoch, 0 (everything) when absent.
absl::StatusOr<double> ParseSince(const httplib::Request& req) {
  if (!req.has_param("since")) return 0.0;
  const std::string text = req.get_param_value("since");
  double since = 0;
  if (!absl::SimpleAtod(text, &since) || !std::isfinite(since) || since < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "since: expected seconds since the Unix epoch (a number >= 0), got \"%s\"", text));
  }
  return since;
}

}  // namespace

absl::Status HttpEndpointOptions::Validate() const {
  if (listen.empty()) return absl::OkStatus();
  return ParseListen(listen).status();
}

HttpEndpoint::HttpEndpoint(MetricsCollector* collector, const Dashboard* dashboard,
                           ReadinessCheck readiness, Logger* logger)
    : collector_(collector),
      dashboard_(dashboard),
      readiness_(std::move(readiness)),
      logger_(logger),
      server_(std::make_unique<httplib::Server>()) {}

HttpEndpoint::~HttpEndpoint() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const HttpEndpointOptions& options, MetricsCollector* collector, const Dashboard* dashboard,
    ReadinessCheck readiness, Logger* logger) {
  absl::StatusOr<HostPort> where = ParseListen(options.listen);
  if (!where.ok()) return where.status();
  auto endpoint = std::unique_ptr<HttpEndpoint>(
      new HttpEndpoint(collector, dashboard, std::move(readiness), logger));
  HttpEndpoint* self = endpoint.get();
  httplib::Server& server = *endpoint->server_;

  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  // cpp-httplib's default sets SO_REUSEPORT, with which a second process could bind the same
  // port and silently take half the scrapes; SO_REUSEADDR alone still allows a quick restart.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_read_timeout(kReadWriteTimeoutSeconds);
  server.set_write_timeout(kReadWriteTimeoutSeconds);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server.set_payload_max_length(kMaxPayloadBytes);

  // No exception leaves a handler (STYLE.md 5): anything unexpected is logged and answered 500.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  auto guarded = [self](const char* what, Handler handler) {
    return [self, what, handler = std::move(handler)](const httplib::Request& req,
                                                      httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const std::exception& e) {
        self->logger_->Error(absl::StrFormat("http %s: %s", what, e.what()));
        PlainText(res, 500, "internal error\n");
      } catch (...) {
        self->logger_->Error(absl::StrFormat("http %s: unknown exception", what));
        PlainText(res, 500, "internal error\n");
      }
    };
  };
  server.Get("/metrics",
             guarded("/metrics", [self](const httplib::Request&, httplib::Response& res) {
               res.status = 200;
               res.set_content(WriteTextExposition(self->collector_->Collect()),
                               kTextExpositionContentType);
             }));
  server.Get("/healthz", guarded("/healthz", [](const httplib::Request&, httplib::Response& res) {
               PlainText(res, 200, "ok\n");
             }));
  server.Get("/readyz", guarded("/readyz", [self](const httplib::Request&, httplib::Response& res) {
               const absl::Status ready = self->readiness_ ? self->readiness_() : absl::OkStatus();
               if (ready.ok()) {
                 PlainText(res, 200, "ready\n");
               } else {
                 PlainText(res, 503, absl::StrFormat("not ready: %s\n", ready.message()));
               }
             }));
  if (dashboard != nullptr) {
    auto redirect = [](const httplib::Request&, httplib::Response& res) {
      Redirect(res, "/dashboard/");
    };
    server.Get("/", guarded("/", redirect));
    server.Get("/dashboard", guarded("/dashboard", redirect));
    // "/dashboard/" is the page; its other files are named after it. Only names of embedded
    // files match (FindDashboardAsset), so no request reaches anything else.
    server.Get(R"(/dashboard/([A-Za-z0-9_.-]*))",
               guarded("/dashboard/", [](const httplib::Request& req, httplib::Response& res) {
                 const std::string name = req.matches[1].str();
                 const std::optional<DashboardAsset> asset =
                     FindDashboardAsset(name.empty() ? "index.html" : name);
                 if (!asset.has_value()) {
                   res.status = 404;  // answered by the error handler below
                   return;
                 }
                 DashboardHeaders(res);
                 res.status = 200;
                 res.set_content(std::string(asset->body), std::string(asset->content_type));
               }));
    server.Get("/api/v1/dashboard", guarded("/api/v1/dashboard", [self](const httplib::Request& req,
                                                                        httplib::Response& res) {
                 const absl::StatusOr<double> since = ParseSince(req);
                 if (!since.ok()) {
                   PlainText(res, 400, absl::StrFormat("%s\n", since.status().message()));
                   return;
                 }
                 res.set_header("Cache-Control", "no-store");
                 res.status = 200;
                 res.set_content(self->dashboard_->Json(*since), "application/json");
               }));
  }
  const char* const routes = dashboard != nullptr
                                 ? "/metrics, /healthz, /readyz, the dashboard at /dashboard/ "
                                   "and its data at /api/v1/dashboard"
                                 : "/metrics, /healthz and /readyz";
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [routes](const httplib::Request& req, httplib::Response& res) {
        if (res.status != 404 || !res.body.empty()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        PlainText(res, 404,
                  absl::StrFormat("not found: %s (this endpoint serves %s)\n", req.path, routes));
        return httplib::Server::HandlerResponse::Handled;
      }));

  endpoint->port_ = where->port == 0
                        ? server.bind_to_any_port(where->host)
                        : (server.bind_to_port(where->host, where->port) ? where->port : -1);
  if (endpoint->port_ <= 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "http.listen: cannot listen on %s (address in use, or not an address of this machine?)",
        options.listen));
  }
  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  endpoint->address_ = absl::StrFormat("%s:%d", host, endpoint->port_);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  endpoint->thread_ = std::thread([self, returned] {
    self->server_->listen_after_bind();
    returned->store(true);
  });
  // Stop() can only interrupt a server whose accept loop has begun (cpp-httplib ignores stop()
  // before that), so Start returns once it has, or once the loop ended at once (an error).
  while (!server.is_running() && !returned->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server.is_running()) {
    endpoint->thread_.join();
    return absl::UnavailableError(
        absl::StrFormat("http.listen: accepting connections on %s failed", endpoint->address_));
  }
  return endpoint;
}

void HttpEndpoint::Stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace riffle::service
