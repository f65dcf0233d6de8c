#ifndef RIFFLE_FEATURES_EVENT_H_
#define RIFFLE_FEATURES_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riffle::features {

// One feature value of an event: a number (booleans arrive as 0 or 1) or a text (a category,
// or a string to hash). A missing value is a feature that is absent from the event.
struct FeatureValue {
  enum class Kind : std::uint8_t { kNumber, kText };

  static FeatureValue Number(double v) { return {Kind::kNumber, v, {}}; }
  static FeatureValue Text(std::string_view t) { return {Kind::kText, 0.0, t}; }

  Kind kind = Kind::kNumber;
  double number = 0.0;
  std::string_view text;  // kText only; points into the caller's storage
};

// A feature as the pipeline reads it: name and value, both viewing the caller's storage (a
// gRPC request, a decoded Kafka message), so decoding an event copies no strings.
struct NamedFeature {
  std::string_view name;
  FeatureValue value;
};

// An event whose features the service keeps after the request is gone: the label cache holds
// the features a model predicted on until the label for that id arrives. Owns its strings.
class OwnedFeatures {
 public:
  OwnedFeatures() = default;
  explicit OwnedFeatures(std::span<const NamedFeature> features) { Assign(features); }

  void Assign(std::span<const NamedFeature> features) {
    names_.clear();
    values_.clear();
    texts_.clear();
    for (const NamedFeature& f : features) {
      names_.emplace_back(f.name);
      values_.push_back(f.value.number);
      texts_.emplace_back(f.value.kind == FeatureValue::Kind::kText
                              ? std::optional<std::string>(std::string(f.value.text))
                              : std::nullopt);
    }
  }

  // Views of the owned features, valid while this object is alive and unchanged.
  void Views(std::vector<NamedFeature>* out) const {
    out->clear();
    for (std::size_t i = 0; i < names_.size(); ++i) {
      out->push_back({names_[i], texts_[i].has_value() ? FeatureValue::Text(*texts_[i])
                                                       : FeatureValue::Number(values_[i])});
    }
  }

  std::size_t size() const { return names_.size(); }
  std::size_t MemoryBytes() const {
    std::size_t bytes = sizeof(*this) + values_.capacity() * sizeof(double);
    for (const std::string& n : names_) bytes += sizeof(n) + n.capacity();
    for (const auto& t : texts_) bytes += sizeof(t) + (t.has_value() ? t->capacity() : 0);
    return bytes;
  }

 private:
  std::vector<std::string> names_;
  std::vector<double> values_;
  std::vector<std::optional<std::string>> texts_;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_EVENT_H_
