#ifndef RIFFLE_TESTS_FEATURES_EVENT_TESTING_H_
#define RIFFLE_TESTS_FEATURES_EVENT_TESTING_H_

// Lookups in a decoded event, shared by the JSON and CSV event decoders' tests.

#include <string>
#include <string_view>
#include <vector>

#include "features/event.h"
#include "features/json_decoder.h"

namespace riffle::features::testing {

// The feature named `name`, or nullptr.
inline const NamedFeature* Find(const DecodedEvent& event, std::string_view name) {
  for (const NamedFeature& f : event.features()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The features' names, in the event's order.
inline std::vector<std::string> Names(const DecodedEvent& event) {
  std::vector<std::string> names;
  for (const NamedFeature& f : event.features()) names.emplace_back(f.name);
  return names;
}

}  // namespace riffle::features::testing

#endif  // RIFFLE_TESTS_FEATURES_EVENT_TESTING_H_
