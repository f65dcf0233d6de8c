// The delivery side of the alerts: WebhookNotifier (queue, thread, retries) and the
// cpp-httplib sender. Kept apart from alerts.cc so the rule logic compiles without httplib.h.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "service/alerts.h"

// Last: httplib.h includes <resolv.h>, whose `_res` macro breaks other headers. Debian's
// cpp-httplib is built with OpenSSL; this file gets the package's compile flags (see
// service/CMakeLists.txt), so the client here speaks https too.
#include <httplib.h>  // NOLINT(build/include_order)

namespace riffle::service {
namespace {

class HttpWebhookSender : public WebhookSender {
 public:
  HttpWebhookSender(const WebhookUrl& url, double timeout_seconds)
      : origin_(url.Origin()), path_(url.path), client_(origin_) {
    const auto timeout =
        std::chrono::microseconds(static_cast<std::int64_t>(std::llround(timeout_seconds * 1e6)));
    client_.set_connection_timeout(timeout);
    client_.set_read_timeout(timeout);
    client_.set_write_timeout(timeout);
    client_.set_keep_alive(false);
    client_.set_follow_location(false);
    client_.set_default_headers({{"User-Agent", "riffle-alerts"}});
  }

  absl::StatusOr<WebhookResponse> Post(const std::string& json_body) override {
    httplib::Result result = client_.Post(path_, json_body, "application/json");
    if (!result) {
      const httplib::Error error = result.error();
      const std::string message = absl::StrFormat("%s: %s", origin_, httplib::to_string(error));
      if (error == httplib::Error::ConnectionTimeout) {
        return absl::DeadlineExceededError(message);
      }
      return absl::UnavailableError(message);
    }
    WebhookResponse response;
    response.status = result->status;
    if (result->has_header("Retry-After")) {
      double seconds = 0;
      if (absl::SimpleAtod(result->get_header_value("Retry-After"), &seconds) &&
          std::isfinite(seconds) && seconds >= 0) {
        response.retry_after_seconds = seconds;
      }
    }
    return response;
  }

 private:
  const std::string origin_;
  const std::string path_;
  httplib::Client client_;
};

const char* StateName(AlertState state) {
  return state == AlertState::kFiring ? "firing" : "resolved";
}

}  // namespace

absl::StatusOr<std::unique_ptr<WebhookSender>> NewHttpWebhookSender(const AlertOptions& options) {
  absl::StatusOr<WebhookUrl> url = ParseWebhookUrl(options.webhook);
  if (!url.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("webhook: %s", url.status().message()));
  }
  return std::make_unique<HttpWebhookSender>(*url, options.timeout_seconds);
}

WebhookNotifier::WebhookNotifier(const AlertOptions& options, std::unique_ptr<WebhookSender> sender,
                                 Logger* logger)
    : options_(options), sender_(std::move(sender)), logger_(logger), thread_([this] { Run(); }) {}

WebhookNotifier::~WebhookNotifier() { Stop(); }

bool WebhookNotifier::Enqueue(AlertNotification n) {
  std::size_t queued = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < options_.queue_size) {
      queue_.push_back(std::move(n));
      queued = queue_.size();
    }
  }
  if (queued == 0) {
    ++dropped_;
    logger_->Warn(absl::StrFormat(
        "alert '%s' (model '%s', %s): dropped, the notification queue is full (queue_size %d) "
        "or shutting down",
        n.rule, n.model, StateName(n.state), options_.queue_size));
    return false;
  }
  cv_.notify_all();
  return true;
}

void WebhookNotifier::Run() {
  for (;;) {
    AlertNotification n;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty() || aborted_) return;
      n = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    Deliver(n);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
    }
    cv_.notify_all();  // Stop() may be waiting for the queue to drain
  }
}

void WebhookNotifier::Deliver(const AlertNotification& n) {
  const std::string body = AlertNotificationJson(n);
  const std::string what =
      absl::StrFormat("alert '%s' (model '%s', %s)", n.rule, n.model, StateName(n.state));
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<WebhookResponse> response;
    // Nothing may escape this thread: an exception would terminate the server.
    try {
      response = sender_->Post(body);
    } catch (const std::exception& e) {
      response = absl::InternalError(absl::StrFormat("the HTTP client threw: %s", e.what()));
    } catch (...) {
      response = absl::InternalError("the HTTP client threw");
    }
    std::string problem;
    bool retryable = true;
    std::optional<double> wait;
    if (response.ok()) {
      const int status = response->status;
      if (status >= 200 && status < 300) {
        ++sent_;
        logger_->Debug(
            absl::StrFormat("%s: delivered (HTTP %d, attempt %d)", what, status, attempt));
        return;
      }
      problem = absl::StrFormat("HTTP %d", status);
      // Overloaded or failing receivers may recover; a refused request (400, 403, 404: a
      // wrong or revoked webhook) stays refused.
      retryable = status == 408 || status == 429 || status >= 500;
      if (retryable && response->retry_after_seconds.has_value()) {
        if (*response->retry_after_seconds > options_.max_retry_after_seconds) {
          absl::StrAppendFormat(&problem, " with Retry-After %g s (above max_retry_after_seconds)",
                                *response->retry_after_seconds);
          retryable = false;
        } else {
          wait = *response->retry_after_seconds;
        }
      }
    } else {
      problem = std::string(response.status().message());
    }
    if (!retryable || attempt >= options_.max_attempts) {
      ++failed_;
      logger_->Warn(absl::StrFormat("%s: not delivered after %d attempt%s: %s", what, attempt,
                                    attempt == 1 ? "" : "s", problem));
      return;
    }
    if (!wait.has_value()) {
      wait = std::min(options_.backoff_max_seconds,
                      options_.backoff_seconds * std::pow(2.0, attempt - 1));
    }
    logger_->Debug(absl::StrFormat("%s: attempt %d failed (%s); retrying in %g s", what, attempt,
                                   problem, *wait));
    if (!Sleep(*wait)) {
      ++failed_;
      logger_->Warn(absl::StrFormat("%s: not delivered (shutting down after %d attempt%s: %s)",
                                    what, attempt, attempt == 1 ? "" : "s", problem));
      return;
    }
    ++retries_;
  }
}

bool WebhookNotifier::Sleep(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto duration =
      std::chrono::microseconds(static_cast<std::int64_t>(std::llround(seconds * 1e6)));
  return !cv_.wait_for(lock, duration, [this] { return aborted_; });
}

void WebhookNotifier::Stop() {
  if (joined_) return;
  std::size_t abandoned = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    const auto flush = std::chrono::microseconds(
        static_cast<std::int64_t>(std::llround(options_.flush_seconds * 1e6)));
    cv_.wait_for(lock, flush, [this] { return queue_.empty() && !busy_; });
    // Time is up: the attempt in progress (if any) is the last one.
    aborted_ = true;
    abandoned = queue_.size();
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
  joined_ = true;
  if (abandoned > 0) {
    dropped_ += abandoned;
    logger_->Warn(
        absl::StrFormat("alerts: %d notification%s not delivered at shutdown (flush_seconds %g)",
                        abandoned, abandoned == 1 ? "" : "s", options_.flush_seconds));
  }
}

std::size_t WebhookNotifier::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + (busy_ ? 1 : 0);
}

AlertDeliveryCounters WebhookNotifier::counters() const {
  AlertDeliveryCounters c;
  c.sent = sent_.load();
  c.failed = failed_.load();
  c.dropped = dropped_.load();
  c.retries = retries_.load();
  return c;
}

}  // namespace riffle::service
