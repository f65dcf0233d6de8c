#include "features/os_error.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace riffle::features {
namespace {

// strerror is not thread-safe. GNU strerror_r returns the message, XSI strerror_r returns an
// int and fills the buffer: the overloads pick the right one for whichever libc this is.
[[maybe_unused]] const char* StrerrorResult(const char* message, const char* /*buffer*/) {
  return message;
}
[[maybe_unused]] const char* StrerrorResult(int rc, const char* buffer) {
  return rc == 0 ? buffer : "unknown error";
}

}  // namespace

std::string ErrnoMessage(int error) {
  char buffer[256] = {};
  return StrerrorResult(strerror_r(error, buffer, sizeof(buffer)), buffer);
}

absl::Status ErrnoError(int error, std::string_view path, std::string_view op) {
  const std::string message = absl::StrFormat("%s: %s: %s", path, op, ErrnoMessage(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EISDIR:
    case EROFS:
      return absl::FailedPreconditionError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    case EIO:
      return absl::DataLossError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace riffle::features
