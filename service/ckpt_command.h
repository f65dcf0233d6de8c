#ifndef RIFFLE_SERVICE_CKPT_COMMAND_H_
#define RIFFLE_SERVICE_CKPT_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "checkpoints/env.h"

namespace riffle::service {

// `riffle ckpt inspect FILE [--json]`: the header and a summary of the model in a checkpoint
// file (model, learner, counts, metrics, offsets, size). Fails like VerifyCheckpoint.
absl::StatusOr<std::string> InspectCheckpoint(checkpoints::Env* env, const std::string& path,
                                              bool json);

// `riffle ckpt verify FILE`: reads the whole file, checks header, length and checksum, and
// parses the model state completely. Returns a one-line summary, or the first problem found
// (naming the file and the reason).
absl::StatusOr<std::string> VerifyCheckpoint(checkpoints::Env* env, const std::string& path);

}  // namespace riffle::service

#endif  // RIFFLE_SERVICE_CKPT_COMMAND_H_
