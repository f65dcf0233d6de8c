#ifndef RIFFLE_FEATURES_EVENT_H_
#define RIFFLE_FEATURES_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
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
//
// Immutable once assigned, and copies share the storage: copying is a reference count, so a
// checkpoint's snapshot of a label cache of a million entries copies pointers, not features.
// Assign() gives this object new storage and leaves earlier copies as they were. Copies may be
// read and destroyed on different threads.
class OwnedFeatures {
 public:
  OwnedFeatures() = default;
  explicit OwnedFeatures(std::span<const NamedFeature> features) { Assign(features); }

  void Assign(std::span<const NamedFeature> features) {
    auto data = std::make_shared<Data>();
    std::size_t chars = 0;
    for (const NamedFeature& f : features) chars += f.name.size() + f.value.text.size();
    data->chars.reserve(chars);
    data->features.reserve(features.size());
    for (const NamedFeature& f : features) {
      Stored& stored = data->features.emplace_back();
      stored.name_begin = static_cast<std::uint32_t>(data->chars.size());
      stored.name_size = static_cast<std::uint32_t>(f.name.size());
      data->chars.append(f.name);
      stored.kind = f.value.kind;
      stored.number = f.value.number;
      if (f.value.kind == FeatureValue::Kind::kText) {
        stored.text_begin = static_cast<std::uint32_t>(data->chars.size());
        stored.text_size = static_cast<std::uint32_t>(f.value.text.size());
        data->chars.append(f.value.text);
      }
    }
    data_ = std::move(data);
  }

  // Views of the owned features, valid while this object (or a copy) is alive and unchanged.
  void Views(std::vector<NamedFeature>* out) const {
    out->clear();
    if (data_ == nullptr) return;
    const std::string_view chars = data_->chars;
    for (const Stored& f : data_->features) {
      const std::string_view name = chars.substr(f.name_begin, f.name_size);
      out->push_back({name, f.kind == FeatureValue::Kind::kText
                                ? FeatureValue::Text(chars.substr(f.text_begin, f.text_size))
                                : FeatureValue::Number(f.number)});
    }
  }

  std::size_t size() const { return data_ == nullptr ? 0 : data_->features.size(); }
  // Of the storage (shared by copies: each copy reports it).
  std::size_t MemoryBytes() const {
    if (data_ == nullptr) return sizeof(*this);
    return sizeof(*this) + sizeof(Data) + data_->features.capacity() * sizeof(Stored) +
           data_->chars.capacity();
  }

 private:
  struct Stored {
    std::uint32_t name_begin = 0;
    std::uint32_t name_size = 0;
    std::uint32_t text_begin = 0;  // kText only
    std::uint32_t text_size = 0;
    FeatureValue::Kind kind = FeatureValue::Kind::kNumber;
    double number = 0.0;
  };
  struct Data {
    std::vector<Stored> features;
    std::string chars;  // every name and text, one after the other
  };

  std::shared_ptr<const Data> data_;
};

}  // namespace riffle::features

#endif  // RIFFLE_FEATURES_EVENT_H_
