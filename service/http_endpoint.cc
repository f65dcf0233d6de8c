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
#include <exception>

#include "absl/strings/str_format.h"

namespace riffle::service {
namespace {

// Scrapes and probes are rare and quick: two workers answer them; a slow client cannot hold
// one for longer than the read and write timeouts.
constexpr std::size_t kWorkerThreads = 2;
constexpr time_t kReadWriteTimeoutSeconds = 5;
// Bounds how long Stop() waits for an idle keep-alive connection.
constexpr time_t kKeepAliveTimeoutSeconds = 2;
// Requests carry no body.
constexpr std::size_t kMaxPayloadBytes = std::size_t{64} << 10;
constexpr std::size_t kMaxReportedErrors = 1000;

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

}  // namespace

absl::Status HttpEndpointOptions::Validate() const {
  if (listen.empty()) return absl::OkStatus();
  return ParseListen(listen).status();
}

HttpEndpoint::HttpEndpoint(ReadinessCheck readiness, Logger* logger)
    : readiness_(std::move(readiness)),
      logger_(logger),
      server_(std::make_unique<httplib::Server>()) {}

HttpEndpoint::~HttpEndpoint() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const HttpEndpointOptions& options, ReadinessCheck readiness, Logger* logger) {
  absl::StatusOr<HostPort> where = ParseListen(options.listen);
  if (!where.ok()) return where.status();
  auto endpoint = std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(readiness), logger));
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
  auto guarded = [self](const char* what, std::function<void(httplib::Response&)> handler) {
    return [self, what, handler = std::move(handler)](const httplib::Request&,
                                                      httplib::Response& res) {
      try {
        handler(res);
      } catch (const std::exception& e) {
        self->logger_->Error(absl::StrFormat("http %s: %s", what, e.what()));
        PlainText(res, 500, "internal error\n");
      } catch (...) {
        self->logger_->Error(absl::StrFormat("http %s: unknown exception", what));
        PlainText(res, 500, "internal error\n");
      }
    };
  };
  server.Get("/metrics", guarded("/metrics", [self](httplib::Response& res) {
               res.status = 200;
               res.set_content(self->Scrape(), kTextExpositionContentType);
             }));
  server.Get("/healthz",
             guarded("/healthz", [](httplib::Response& res) { PlainText(res, 200, "ok\n"); }));
  server.Get("/readyz", guarded("/readyz", [self](httplib::Response& res) {
               const absl::Status ready = self->readiness_ ? self->readiness_() : absl::OkStatus();
               if (ready.ok()) {
                 PlainText(res, 200, "ready\n");
               } else {
                 PlainText(res, 503, absl::StrFormat("not ready: %s\n", ready.message()));
               }
             }));
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (res.status != 404 || !res.body.empty()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        PlainText(res, 404,
                  absl::StrFormat("not found: %s (this endpoint serves /metrics, /healthz and "
                                  "/readyz)\n",
                                  req.path));
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

void HttpEndpoint::AddSource(MetricsSource* source) {
  std::lock_guard<std::mutex> lock(sources_mu_);
  if (std::find(sources_.begin(), sources_.end(), source) == sources_.end()) {
    sources_.push_back(source);
  }
}

void HttpEndpoint::RemoveSource(MetricsSource* source) {
  std::lock_guard<std::mutex> lock(sources_mu_);
  sources_.erase(std::remove(sources_.begin(), sources_.end(), source), sources_.end());
}

std::string HttpEndpoint::Scrape() {
  MetricFamilies families;
  {
    std::lock_guard<std::mutex> lock(sources_mu_);
    for (MetricsSource* source : sources_) source->Collect(&families);
    for (const std::string& error : families.errors()) {
      if (reported_.size() < kMaxReportedErrors && reported_.insert(error).second) {
        logger_->Warn(absl::StrFormat("metrics: sample left out: %s", error));
      }
    }
  }
  return WriteTextExposition(families);
}

void HttpEndpoint::Stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace riffle::service
