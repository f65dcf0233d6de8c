#ifndef RIFFLE_FEATURES_OS_ERROR_H_
#define RIFFLE_FEATURES_OS_ERROR_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace riffle::features {

// strerror(error), thread-safe.
std::string ErrnoMessage(int error);

// The status for an OS error of operation `op` on `path`, "path: op: message", with a code a
// caller can act on: NotFound (ENOENT, ENOTDIR), PermissionDenied (EACCES, EPERM),
// FailedPrecondition (EISDIR, EROFS), AlreadyExists (EEXIST), ResourceExhausted (ENOSPC,
// EDQUOT, EFBIG, EMFILE, ENFILE, ENOMEM), DataLoss (EIO), Unavailable otherwise. Shared by every
// module that touches files (the CSV reader, the checkpoint Env).
absl::Status ErrnoError(int error, std::string_view path, std::string_view op);

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_OS_ERROR_H_
