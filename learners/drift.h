#ifndef RIFFLE_LEARNERS_DRIFT_H_
#define RIFFLE_LEARNERS_DRIFT_H_

// Concept-drift detectors: components that watch a stream of numbers (usually a model's 0/1
// errors) and say when its distribution has changed. The detectors themselves live in
// learners/adwin.h (ADWIN, Bifet & Gavaldà 2007), learners/page_hinkley.h (Page 1954) and
// learners/ddm.h (Gama et al. 2004); this header holds what they share: the DriftDetector
// interface and the factory that builds one from textual options.
//
// Semantics follow River 0.26 (river.drift.ADWIN, river.drift.PageHinkley,
// river.drift.binary.DDM), so detections can be checked index for index against it:
//   * drift_detected() and warning_detected() describe the last Update() only.
//   * After an update that detected a drift, the next Update() first resets the detector's
//     statistics (River's `if self.drift_detected: self._reset()`), so every detection starts
//     a fresh estimate of the new concept. Options are kept.
//
// Thread-safety: none. A detector has one writer; const getters may run concurrently with each
// other but not with Update(), Reset() or Load().
//
// Errors: Update() trusts its input (finite; 0 or 1 for DDM), checked by debug asserts. Load()
// throws cereal::Exception on a truncated, corrupted or unsupported archive and then leaves the
// detector unchanged; checkpoints/ converts that to a Status.

#include <cereal/archives/portable_binary.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "learners/registry.h"

namespace riffle::learners {

// The interface for standalone use (a monitor on a model's error stream, a factory-built
// detector chosen by name). Code on a hot path, such as the ADWIN at every node of a Hoeffding
// adaptive tree, holds the concrete final class instead, so its calls are direct.
class DriftDetector {
 public:
  virtual ~DriftDetector() = default;

  // The registered name: "adwin", "page_hinkley" or "ddm". Stable: checkpoints store it.
  virtual std::string_view Kind() const = 0;

  // Feeds one value of the monitored stream.
  virtual void Update(double x) = 0;

  // Whether the last Update() detected a change.
  virtual bool drift_detected() const = 0;
  // Whether the last Update() put the detector in its warning zone (a change may be coming).
  // Always false for detectors without one (ADWIN, Page-Hinkley).
  virtual bool warning_detected() const = 0;

  // Back to the state of a freshly constructed detector with the same options.
  virtual void Reset() = 0;

  // A deep copy with identical state.
  virtual std::unique_ptr<DriftDetector> Clone() const = 0;

  // Approximate bytes held, the object itself included.
  virtual std::size_t MemoryBytes() const = 0;

  // Complete state, options included. Save then Load into any detector of the same kind gives
  // bit-identical estimates and identical detections from then on.
  virtual void Save(cereal::PortableBinaryOutputArchive& archive) const = 0;
  virtual void Load(cereal::PortableBinaryInputArchive& archive) = 0;
};

// The kinds CreateDriftDetector() accepts: {"adwin", "ddm", "page_hinkley"}.
std::vector<std::string> DriftDetectorKinds();

// Builds a detector of `kind` from textual options (the snake_case field names of
// AdwinOptions, PageHinkleyOptions or DdmOptions; later entries win). InvalidArgument names the
// unknown kind, the unknown option or the invalid value. An empty list gives River's defaults,
// ready for Load().
absl::StatusOr<std::unique_ptr<DriftDetector>> CreateDriftDetector(std::string_view kind,
                                                                   const OptionList& options);

// Implementation details shared by the detectors' .cc files; not part of the API.
namespace drift_internal {

// Throws cereal::Exception("<kind> state: <what>") unless `ok`.
void CheckLoad(bool ok, std::string_view kind, std::string_view what);
// Throws cereal::Exception("<kind> state: <message>") unless `options_status` is OK.
void CheckLoadedOptions(const absl::Status& options_status, std::string_view kind);
// Throws cereal::Exception unless `version` equals `expected`.
void CheckVersion(std::uint32_t version, std::uint32_t expected, std::string_view kind);

}  // namespace drift_internal

}  // namespace riffle::learners

#endif  // RIFFLE_LEARNERS_DRIFT_H_
