#include "features/json_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "features/pipeline.h"
#include "tests/features/event_testing.h"

namespace riffle::features {
namespace {

using ::riffle::features::testing::Find;
using ::riffle::features::testing::Names;

using ::testing::HasSubstr;

JsonDecoder MakeDecoder(JsonDecoderOptions options = {}) {
  absl::StatusOr<JsonDecoder> decoder = JsonDecoder::Create(std::move(options));
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  return std::move(*decoder);
}

// Decodes `json` with `decoder` and returns the error code (kOk on success).
DecodeError CodeOf(JsonDecoder& decoder, std::string_view json) {
  DecodedEvent event;
  return decoder.Decode(json, &event).code();
}

TEST(JsonDecoderTest, DecodesRolesAndFeatureTypes) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(
      R"({"id":"tx-1","key":"card-9","time":"2024-05-01T12:00:00Z","label":"fraud",
          "amount":12.5,"count":3,"country":"FR","online":true,"vip":false,"note":""})",
      &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(event.id(), "tx-1");
  EXPECT_EQ(event.key(), "card-9");
  // 2024-05-01 is day 19844 since 1970-01-01; 19844 * 86400 + 12 * 3600 = 1714564800 s.
  EXPECT_EQ(event.event_time_micros(), 1714564800LL * 1000000);
  EXPECT_EQ(event.label(), "fraud");
  EXPECT_EQ(Names(event),
            (std::vector<std::string>{"amount", "count", "country", "online", "vip", "note"}));
  EXPECT_EQ(Find(event, "amount")->value.kind, FeatureValue::Kind::kNumber);
  EXPECT_EQ(Find(event, "amount")->value.number, 12.5);
  EXPECT_EQ(Find(event, "count")->value.number, 3.0);
  EXPECT_EQ(Find(event, "country")->value.kind, FeatureValue::Kind::kText);
  EXPECT_EQ(Find(event, "country")->value.text, "FR");
  EXPECT_EQ(Find(event, "online")->value.kind, FeatureValue::Kind::kNumber);
  EXPECT_EQ(Find(event, "online")->value.number, 1.0);
  EXPECT_EQ(Find(event, "vip")->value.number, 0.0);
  EXPECT_EQ(Find(event, "note")->value.kind, FeatureValue::Kind::kText);
  EXPECT_EQ(Find(event, "note")->value.text, "");
}

TEST(JsonDecoderTest, OptionalRolesAbsent) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(R"({"id":7,"x":1})", &event).ok());
  EXPECT_EQ(event.id(), "7");
  EXPECT_EQ(event.key(), std::nullopt);
  EXPECT_EQ(event.event_time_micros(), std::nullopt);
  EXPECT_EQ(event.label(), std::nullopt);
  EXPECT_EQ(event.features().size(), 1u);
}

TEST(JsonDecoderTest, CustomFieldNamesIncludingDottedOnes) {
  JsonDecoderOptions options;
  options.id_field = "event_id";
  options.key_field = "card.number";
  options.time_fields = {"ts"};
  options.label_field = "is_fraud";
  JsonDecoder decoder = MakeDecoder(options);
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(
      R"({"event_id":"e","card":{"number":"4111","brand":"visa"},"ts":1700000000,"is_fraud":true,
          "id":"not-the-id"})",
      &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(event.id(), "e");
  EXPECT_EQ(event.key(), "4111");
  EXPECT_EQ(event.event_time_micros(), 1700000000LL * 1000000);
  EXPECT_EQ(event.label(), "1");
  EXPECT_EQ(Names(event), (std::vector<std::string>{"card.brand", "id"}));
}

TEST(JsonDecoderTest, FlattensNestedObjectsWithDottedNames) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(
      R"({"id":"1","merchant":{"country":"DE","geo":{"lat":52.5,"lon":13.4},"empty":{}},"z":0})",
      &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Names(event), (std::vector<std::string>{"merchant.country", "merchant.geo.lat",
                                                    "merchant.geo.lon", "z"}));
  EXPECT_EQ(Find(event, "merchant.country")->value.text, "DE");
  EXPECT_EQ(Find(event, "merchant.geo.lon")->value.number, 13.4);
}

TEST(JsonDecoderTest, ReusesBuffersAcrossCallsAndEventsOwnTheirStorage) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent first;
  DecodedEvent second;
  ASSERT_TRUE(decoder.Decode(R"({"id":"a","name":"alpha","n":{"v":1}})", &first).ok());
  // A second decode (into another event, from a message that is then destroyed) leaves the
  // first event intact: it owns its names and texts.
  {
    std::string message = R"({"id":"b","name":"beta","other":2})";
    ASSERT_TRUE(decoder.Decode(message, &second).ok());
    message.assign(message.size(), 'x');
  }
  EXPECT_EQ(first.id(), "a");
  EXPECT_EQ(Find(first, "name")->value.text, "alpha");
  EXPECT_EQ(Find(first, "n.v")->value.number, 1.0);
  EXPECT_EQ(Find(second, "name")->value.text, "beta");
  EXPECT_EQ(second.id(), "b");

  // Decoding into the same event replaces its contents; nothing of the previous event remains,
  // including the optional roles.
  ASSERT_TRUE(decoder.Decode(R"({"id":"c","key":"k","label":1,"time":5,"big":"x"})", &first).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"d","small":1})", &first).ok());
  EXPECT_EQ(first.id(), "d");
  EXPECT_EQ(first.key(), std::nullopt);
  EXPECT_EQ(first.label(), std::nullopt);
  EXPECT_EQ(first.event_time_micros(), std::nullopt);
  EXPECT_EQ(Names(first), std::vector<std::string>{"small"});

  // A failed decode leaves the decoder usable.
  EXPECT_FALSE(decoder.Decode(R"({"id":"e","x":)", &first).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"f","x":2})", &first).ok());
  EXPECT_EQ(Find(first, "x")->value.number, 2.0);

  // Moving an event keeps its views valid (the vectors move their buffers).
  DecodedEvent moved = std::move(second);
  EXPECT_EQ(Find(moved, "name")->value.text, "beta");
}

// Everything a decode produces, as one comparable string.
std::string Describe(const DecodeStatus& status, const DecodedEvent& event) {
  if (!status.ok()) {
    return "error " + std::string(DecodeErrorName(status.code())) + ": " + status.message();
  }
  std::string out = "id=" + std::string(event.id());
  if (event.key()) out += " key=" + std::string(*event.key());
  if (event.label()) out += " label=" + std::string(*event.label());
  if (event.event_time_micros()) out += " time=" + std::to_string(*event.event_time_micros());
  for (const NamedFeature& f : event.features()) {
    out += " " + std::string(f.name) + "=";
    out += f.value.kind == FeatureValue::Kind::kText ? "\"" + std::string(f.value.text) + "\""
                                                     : absl::StrFormat("%.17g", f.value.number);
  }
  return out;
}

TEST(JsonDecoderTest, LayoutsNeverChangeResults) {
  // The decoder takes shortcuts for fields whose keys are those of the last event (its layout).
  // Every message below, decoded right after every other one (so following its layout, a
  // prefix of it, or leaving it at any field, at any depth), must decode exactly as by a new
  // decoder: same event or same error, naming the same field.
  const std::vector<std::string> messages = {
      R"({"id":"a","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s"},"z":true})",
      R"({"id":"b","key":"k2","time":6,"label":0,"x":2,"c":"blue","m":{"p":3,"q":"t"},"z":false})",
      R"({"id":"c","key":"k","time":5,"label":1,"x":1})",
      R"({"id":"d","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2},"z":true})",
      R"({"id":"e","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s","r":4},"z":1})",
      R"({"id":"f","key":"k","time":5,"label":1,"x":1,"c":"red","m":7,"z":true})",
      R"({"id":"g","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s"},"z":true,"w":0})",
      R"({"id":"h","key":"k","time":5,"label":1,"x":"text now","c":3,"m":{"p":"2","q":null}})",
      R"({"id":"i","key":"k","time":5,"label":1,"x":1,"x":2})",
      R"({"id":"j","key":"k","time":5,"label":1,"x":null,"x":2})",
      R"({"id":"k","key":"k","time":5,"label":1,"x":1,"m":{"p":2,"q":"s"},"m.p":3})",
      R"({"id":"l","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":1e999,"q":"s"}})",
      R"({"id":"m","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":NaN}})",
      R"({"id":"n","key":"k","time":5,"label":[1],"x":1})",
      R"({"id":"o","key":"k","time":"yesterday","label":1,"x":1})",
      R"({"id":"p","key":"k","time":5,"event_time":6,"label":1,"x":1})",
      R"({"id":"q","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s"},"z":[1]})",
      R"({"id":"r","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s"},"z":tru})",
      R"({"id":"s","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":2,"q":"s"}} {"x":1})",
      R"({"id":"t","key":"k","time":5,"label":1,"x\u0031":1,"\u0063":"red"})",
      R"({"id":"u","key":"k","time":5,"label":1,"x1":1,"c":"red"})",
      R"({"id":"v","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"":2}})",
      R"({"key":"k","time":5,"label":1,"x":1})",
      R"({"id":"w"})",
      R"({})",
      R"({"id":"x","key":"k","time":5,"label":1,"x":1,"c":"red","m":{"p":{"deep":{"er":1}}}})",
      R"({"id":"y","key":"k","time":5,"label":1,"x":1,"c":"r\u00e9d","m":{"p":2,"q":"\ud800"}})",
      R"({"id":"z","key":"k","time":5,"label":1,"x":1,"id":"again"})",
      R"([1,2])",
      R"({"id":"aa","m":{"p":2,"q":"s"},"m":{"p":2,"q":"s"}})",
      // The same keys in the same order, at other depths.
      R"({"id":"ab","m":{"p":1},"p":2})",
      R"({"id":"ac","m":{"p":1,"p":2}})",
      R"({"id":"ad","m":{"p":1},"m":2})",
  };
  JsonDecoderOptions options;
  options.max_depth = 3;
  options.max_name_bytes = 8;
  std::vector<std::string> expected;
  for (const std::string& m : messages) {
    JsonDecoder fresh = MakeDecoder(options);
    DecodedEvent event;
    const DecodeStatus s = fresh.Decode(m, &event);
    expected.push_back(Describe(s, event));
  }
  // Sanity: the corpus has both outcomes.
  EXPECT_THAT(expected[0], ::testing::StartsWith("id=a"));
  EXPECT_THAT(expected[8], ::testing::HasSubstr("DUPLICATE_FIELD"));
  EXPECT_THAT(expected[9], ::testing::StartsWith("id=j"));
  EXPECT_THAT(expected[10], ::testing::HasSubstr("DUPLICATE_FIELD"));
  JsonDecoder decoder = MakeDecoder(options);
  DecodedEvent event;
  for (std::size_t first = 0; first < messages.size(); ++first) {
    for (std::size_t second = 0; second < messages.size(); ++second) {
      ASSERT_EQ(Describe(decoder.Decode(messages[first], &event), event), expected[first]);
      const DecodeStatus s = decoder.Decode(messages[second], &event);
      EXPECT_EQ(Describe(s, event), expected[second]) << "after " << messages[first];
      // And once more into a new event (a reused one keeps its reference to the layout).
      DecodedEvent other;
      const DecodeStatus again = decoder.Decode(messages[second], &other);
      EXPECT_EQ(Describe(again, other), expected[second]) << "twice after " << messages[first];
    }
  }
}

// Decodes variants of `base` with a decoder that has just decoded `base` (so has its layout) and
// expects each to decode exactly as by a new decoder (which has none): each value replaced by
// each of `tokens`, the message cut at every byte, every byte replaced by bytes that matter to
// the direct scan, whitespace (also what JSON does not allow) around every token. The base must
// decode with `options`. Returns how many variants the direct scan decoded.
std::uint64_t ExpectVariantsDecodeAsByANewDecoder(const JsonDecoderOptions& options,
                                                  const std::string& base,
                                                  const std::vector<std::string>& tokens) {
  const auto decode_new = [&options](std::string_view message) {
    JsonDecoder fresh = MakeDecoder(options);
    DecodedEvent event;
    const DecodeStatus s = fresh.Decode(message, &event);
    return Describe(s, event);
  };
  JsonDecoder decoder = MakeDecoder(options);
  DecodedEvent event;
  EXPECT_TRUE(decoder.Decode(base, &event).ok()) << base;
  int variants = 0;
  std::uint64_t scanned = 0;
  const auto check = [&](const std::string& variant) {
    ++variants;
    // The base's layout. Twice: the second decode is the scan's, which keeps it from pausing
    // (it pauses after 8 messages in a row it gives up on: a variant with other keys and
    // the base after it are two).
    EXPECT_TRUE(decoder.Decode(base, &event).ok());
    EXPECT_TRUE(decoder.Decode(base, &event).ok());
    const std::uint64_t before = decoder.scanned_messages();
    const DecodeStatus s = decoder.Decode(variant, &event);
    scanned += decoder.scanned_messages() - before;
    EXPECT_EQ(Describe(s, event), decode_new(variant)) << variant;
  };
  // The values' positions: after each ':' outside a string (the base has no escaped quote).
  std::vector<std::size_t> values;
  for (std::size_t i = 0; i < base.size(); ++i) {
    if (base[i] == '"') i = base.find('"', i + 1);
    if (base[i] == ':') values.push_back(i + 1);
  }
  for (const std::size_t begin : values) {
    // The value's end: its ',' or '}' at its own depth.
    std::size_t end = begin;
    for (int depth = 0; !(depth == 0 && (base[end] == ',' || base[end] == '}')); ++end) {
      if (base[end] == '{') ++depth;
      if (base[end] == '}') --depth;
      if (base[end] == '"') end = base.find('"', end + 1);
    }
    for (const std::string& token : tokens) {
      check(base.substr(0, begin) + token + base.substr(end));
    }
  }
  for (std::size_t n = 0; n < base.size(); ++n) check(base.substr(0, n));
  for (std::size_t i = 0; i < base.size(); ++i) {
    for (const char c :
         {' ', '"', ',', '}', '{', ':', '0', '-', '.', 'e', 'a', '\\', '\0', '\x80', '\n'}) {
      std::string variant = base;
      variant[i] = c;
      check(variant);
    }
  }
  for (std::size_t i = 0; i <= base.size(); ++i) {
    for (const char* ws : {" ", "\t\r\n", "\f", "\v"})
      check(base.substr(0, i) + ws + base.substr(i));
  }
  check(base + " garbage");
  check(base + base);
  check("\xef\xbb\xbf" + base);  // a byte order mark
  return scanned;
}

TEST(JsonDecoderTest, TheDirectScanAlongTheLayoutDecodesAsANewDecoder) {
  // A message whose keys are exactly the layout's is first read by the direct scan (see
  // JsonDecoder); whatever it cannot read, simdjson decodes. The result must not depend on
  // which did, with any options.
  const std::string base =
      R"({"id":"a-1","key":42,"time":"2024-05-01T12:00:00.250Z","label":true,"x":12.5,)"
      R"("c":"red","n":-3,"m":{"p":0.25,"q":"caf)"
      "\xc3\xa9"
      R"(","e":{}},"z":false,"u":null})";
  const std::vector<std::string> tokens = {
      // Numbers: short decimals, others, and not numbers.
      "0", "-0", "7", "1.5", "-12.25", "0.001", "1e5", "1E-2", "01", "1.", "-", ".5", "+1", "1.2.3",
      "1-2", "12345678901234567890", "9007199254740993", "123456789012345678", "1714564800",
      "1714564800123", "-1", "NaN", "Infinity", "-Infinity", "1 2", "", "1234567890123456789",
      "0.30000000000000004", "1.7976931348623157e308", "2.2250738585072014e-308", "4.9e-324",
      "1e-400", "1e400", "-1e400", "0e5", "-0.0e-0", "1E+2", "1e-7",
      "123456789012345678901234567890", "1.0E+", "1e", "1e5.5", "0.95000000000000000000",
      "-0.50000000000000000000", "1e00000000000000000001", "1e-00000000000000000005",
      "0e00000000000000000000", "2.4703282292062327e-324", "-1e-400",
      // Strings: plain, escaped, UTF-8 (valid, invalid, a surrogate), a control character.
      R"("")", R"("x")", R"("a\"b")", R"("\u00e9")", "\"\xc3\xa9\"", "\"\x01\"", "\"\xff\"",
      "\"\xed\xa0\x80\"", "\"unterminated", R"("2024-05-01T12:00:00Z")",
      R"("2024-13-01T12:00:00Z")", R"("\u0032024-05-01T12:00:00Z")", R"("\/\b\f\n\r\t\\")",
      R"("\ud83d\ude00")", R"("\ud83d")", R"("\ude00")", R"("\ud83dx")", R"("\ud83d\u0041")",
      R"("\u12")", R"("\x")", R"("\u0000")", R"("\u00E9\u00e9")", "\"\xc0\xaf\"",
      "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"\x1f\"", "\"\x7f\"", "\"\\\xc3\xa9\"",
      // Literals, objects, arrays.
      "true", "false", "null", "nul", "truex", "tru", "{}", R"({"a":1})", R"({"a":{}})", "[]",
      "[1]", R"({"p":0.25,"q":"s","e":{}})"};
  JsonDecoderOptions defaults;
  // The base is read by the scan, and so are many variants: the valid replacements of short
  // decimals, strings and booleans, and whitespace between tokens.
  EXPECT_GT(ExpectVariantsDecodeAsByANewDecoder(defaults, base, tokens), std::uint64_t{400});
  JsonDecoderOptions strict;
  strict.null_is_missing = false;  // the base's null is an error: drop it
  strict.require_id = false;
  strict.skip_arrays = true;
  strict.max_depth = 3;
  strict.epoch_unit = EpochUnit::kMillis;
  strict.time_fields = {"time"};
  const std::string without_null = base.substr(0, base.rfind(",\"u\"")) + "}";
  EXPECT_GT(ExpectVariantsDecodeAsByANewDecoder(strict, without_null, tokens), std::uint64_t{400});
  JsonDecoderOptions roles;
  roles.id_field = "m.q";  // other fields in the roles, one nested
  roles.key_field = "n";
  roles.label_field = "c";
  roles.time_fields = {"key", "event_time"};
  roles.epoch_unit = EpochUnit::kSeconds;
  EXPECT_GT(ExpectVariantsDecodeAsByANewDecoder(roles, base, tokens), std::uint64_t{250});
  // Keys with escapes and other UTF-8 (the layout compares them as written), a nested id;
  // arrays skipped (the "[]" and "[1]" tokens).
  const std::string keys = R"({"id":1,"k\u00e9":1,"\/s":"a\nb","caf)"
                           "\xc3\xa9"
                           R"(":"v","m":{"id":2,"t":true},"t":2})";
  JsonDecoderOptions arrays;
  arrays.skip_arrays = true;
  EXPECT_GT(ExpectVariantsDecodeAsByANewDecoder(arrays, keys, tokens), std::uint64_t{250});
}

// Decodes `message` with `scanning` (whose layout it follows) and expects the direct scan to
// have decoded it, to the result of a new decoder.
void ExpectScannedAsByANewDecoder(JsonDecoder& scanning, const std::string& message) {
  DecodedEvent event;
  const std::uint64_t before = scanning.scanned_messages();
  const DecodeStatus s = scanning.Decode(message, &event);
  EXPECT_EQ(scanning.scanned_messages(), before + 1) << message;
  JsonDecoder fresh = MakeDecoder();
  DecodedEvent expected;
  EXPECT_EQ(Describe(s, event), Describe(fresh.Decode(message, &expected), expected)) << message;
}

TEST(JsonDecoderTest, TheDirectScanReadsLongNumbersAsSimdjson) {
  // Numbers that are not short decimals (17 significant digits, exponents, subnormals) are read
  // by the scan with std::from_chars: the same doubles, to the bit, as simdjson's.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-320.0, 308.0);
  JsonDecoder scanning = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(scanning.Decode(R"({"id":"1","a":1,"b":2,"c":3})", &event).ok());
  for (int i = 0; i < 20000; ++i) {
    std::string values[3];
    for (std::string& v : values) {
      const double x = (rng() % 2 ? 1 : -1) * std::pow(10.0, exponent(rng));
      v = rng() % 2 ? absl::StrFormat("%.17g", x)
                    : absl::StrFormat("%.*e", static_cast<int>(rng() % 20), x);
    }
    ExpectScannedAsByANewDecoder(scanning, absl::StrFormat(R"({"id":"1","a":%s,"b":%s,"c":%s})",
                                                           values[0], values[1], values[2]));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(JsonDecoderTest, NumbersSimdjsonMisreadsAreReadRight) {
  // simdjson 3.0.1 reads "0." followed by 20 or more digits wrong and rejects exponents of 20
  // or more digits; the decoder reads every number with std::from_chars, with or without a
  // layout. Beyond double's range: 0 (with its sign) below, an error above.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  for (const auto& [token, expected] : std::vector<std::pair<std::string, double>>{
           {"0.95000000000000000000", 0.95},
           {"-0.50000000000000000000", -0.5},
           {"0.12345678901234567890123", 0.12345678901234567890123},
           {"1e00000000000000000001", 10.0},
           {"25e-00000000000000000001", 2.5},
           {"1e-400", 0.0},
           {"-1e-400", -0.0},
           {"0.000001e-999999999999999999999", 0.0},
           {"2.4703282292062327e-324", 0.0},
           {"2.4703282292062328e-324", 4.9406564584124654e-324}}) {
    for (int pass = 0; pass < 2; ++pass) {  // the second follows the first's layout
      const std::string message = R"({"id":"1","x":)" + token + "}";
      ASSERT_TRUE(decoder.Decode(message, &event).ok()) << message;
      EXPECT_EQ(std::bit_cast<std::uint64_t>(Find(event, "x")->value.number),
                std::bit_cast<std::uint64_t>(expected))
          << message;
    }
  }
  for (const char* token : {"1e400", "-1e309", "1e999999999999999999999", "1234e306"}) {
    EXPECT_EQ(CodeOf(decoder, R"({"id":"1","x":)" + std::string(token) + "}"),
              DecodeError::kNumberOutOfRange)
        << token;
  }
}

TEST(JsonDecoderTest, TheDirectScanReadsEscapesAndNullsAsSimdjson) {
  // Escaped strings, as Python's json.dumps writes any text that is not ASCII, are read by the
  // scan too, and unescaped as simdjson unescapes them.
  JsonDecoder scanning = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(
      scanning.Decode(R"({"id":"1","label":"x","s":"plain","t":"2024-05-01T12:00:00Z"})", &event)
          .ok());  // the layout
  const std::vector<std::string> messages = {
      R"({"id":"\u0031","label":"caf\u00e9","s":"a\"b\\c\/d\b\f\n\r\t",)"
      R"("t":"2024-05-01T12:00:00Z"})",
      R"({"id":"2","label":"\ud83d\ude00","s":"\u0000\u001f\u007f\u0800\uffff",)"
      R"("t":"\u0032024-05-01T12:00:00Z"})",
      R"({"id":"3","label":"\u00C9","s":"\uD834\uDD1E","t":"2024-05-01T12:00:00Z"})",
      // Nulls: an unlabeled event without a time, and a null feature.
      R"({"id":"4","label":null,"s":null,"t":null})"};
  for (const std::string& message : messages) ExpectScannedAsByANewDecoder(scanning, message);
}

TEST(JsonDecoderTest, TheDirectScanPausesWhenEventsDoNotFollowTheLayout) {
  // Two layouts in turn: no event follows the one before, so each scan gives up. After 8 in a
  // row the next 256 events go straight to simdjson, even those that do follow the layout.
  const std::string a = R"({"id":"1","x":1,"y":2})";
  const std::string b = R"({"id":"2","y":2,"x":1})";
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(a, &event).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(decoder.Decode(b, &event).ok());
    ASSERT_TRUE(decoder.Decode(a, &event).ok());
  }
  for (int i = 0; i < 256; ++i) {
    ASSERT_EQ(Describe(decoder.Decode(a, &event), event), "id=1 x=1 y=2");
  }
  EXPECT_EQ(decoder.scanned_messages(), 0u);
  ASSERT_TRUE(decoder.Decode(a, &event).ok());
  EXPECT_EQ(decoder.scanned_messages(), 1u);
  // A stream that mostly follows its layout never pauses: an event with other keys now and
  // then (it and the event after it are two failed scans) is not 8 in a row.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(decoder.Decode(i % 7 == 0 ? b : a, &event).ok());
  }
  EXPECT_EQ(decoder.scanned_messages(), 1u + 100 - 2 * 15);
}

TEST(JsonDecoderTest, AnEventKeepsTheNamesItSharesWithALayoutAfterTheDecoderIsGone) {
  DecodedEvent kept;
  {
    JsonDecoder decoder = MakeDecoder();
    DecodedEvent scratch;
    ASSERT_TRUE(decoder.Decode(R"({"id":"1","amount":2,"m":{"country":"FR"}})", &scratch).ok());
    // Same layout: `kept` shares the layout's names.
    ASSERT_TRUE(decoder.Decode(R"({"id":"2","amount":3,"m":{"country":"DE"}})", &kept).ok());
    // The decoder moves to other layouts, then is destroyed.
    for (int i = 0; i < 10; ++i) {
      const std::string other = R"({"id":"x","f)" + std::to_string(i) + R"(":1})";
      ASSERT_TRUE(decoder.Decode(other, &scratch).ok());
    }
  }
  EXPECT_EQ(Names(kept), (std::vector<std::string>{"amount", "m.country"}));
  EXPECT_EQ(Find(kept, "m.country")->value.text, "DE");
  DecodedEvent moved = std::move(kept);
  EXPECT_EQ(Names(moved), (std::vector<std::string>{"amount", "m.country"}));
}

TEST(JsonDecoderTest, LayoutsDoNotGrowWithTheStream) {
  // Events with optional fields change the layout at every other message; a layout holds the
  // keys of one event, never an accumulation.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const auto decode_pairs = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(decoder.Decode(R"({"id":"1","a":1,"x":2,"c":3})", &event).ok());
      ASSERT_TRUE(decoder.Decode(R"({"id":"1","a":1,"c":3})", &event).ok());
      ASSERT_TRUE(decoder.Decode(R"({"id":"1","b":1})", &event).ok());
    }
  };
  decode_pairs(10);
  const std::size_t after_10 = decoder.MemoryBytes();
  decode_pairs(10000);
  EXPECT_EQ(decoder.MemoryBytes(), after_10);

  // A message of many nested keys, nulls (no feature, so no other bound applies): its layout
  // would be far larger than the message. It decodes, records none, and the decoder keeps at
  // most a few times the message's size.
  std::string nested = R"({"id":"1",")" + std::string(1000, 'p') + R"(":{)";
  for (int i = 0; i < 20000; ++i) {
    nested += (i == 0 ? "" : ",") + absl::StrFormat(R"("k%d":null)", i);
  }
  nested += "}}";
  ASSERT_TRUE(decoder.Decode(nested, &event).ok());
  EXPECT_TRUE(event.features().empty());
  EXPECT_LT(decoder.MemoryBytes(), 8 * nested.size()) << nested.size();
  // The same message again, and a small one: still right.
  ASSERT_TRUE(decoder.Decode(nested, &event).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","a":5})", &event).ok());
  EXPECT_EQ(Find(event, "a")->value.number, 5.0);
}

TEST(JsonDecoderTest, AFailedDecodeOnTheLayoutLeavesNothingDangling) {
  // The first feature of the second message is decoded on the layout, then the message fails;
  // the layout is then replaced. What the failed event still holds must stay readable (ASan).
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent first, failed, other;
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","amount":1,"c":1})", &first).ok());
  EXPECT_FALSE(decoder.Decode(R"({"id":"1","amount":2,"c":NaN})", &failed).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","z":1})", &other).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","y":1})", &other).ok());
  std::size_t chars = 0;
  for (const NamedFeature& f : failed.features()) chars += std::string(f.name).size();
  EXPECT_LE(chars, 6u);
}

TEST(JsonDecoderTest, ShortDecimalsReadAsCorrectlyRoundedDoubles) {
  using json_decoder_internal::ParseShortDecimal;
  // Every token it accepts must give std::from_chars's value (correctly rounded, as simdjson's),
  // to the bit: random doubles printed with 1 to 17 significant digits, random digit strings
  // with the point anywhere, signs, trailing whitespace.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> magnitude(-12.0, 12.0);
  int accepted = 0;
  const auto check = [&](const std::string& token) {
    std::string trimmed = token;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) {
      trimmed.pop_back();
    }
    // ParseShortDecimalAt reads the same numbers, to a byte that ends them (the direct scan's
    // form: a ',' here, then the string's terminator).
    const std::string in_buffer = token + ",";
    const char* at = in_buffer.c_str();
    double fast = 0.0;
    double fast_at = 0.0;
    const bool read = ParseShortDecimal(token, &fast);
    ASSERT_EQ(json_decoder_internal::ParseShortDecimalAt(&at, &fast_at), read) << token;
    if (!read) {
      ASSERT_EQ(at, in_buffer.c_str()) << token;
      return;
    }
    ASSERT_EQ(at, in_buffer.c_str() + trimmed.size()) << token;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(fast_at), std::bit_cast<std::uint64_t>(fast)) << token;
    ++accepted;
    double expected = 0.0;
    const auto [end, ec] =
        std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), expected);
    ASSERT_EQ(ec, std::errc()) << token;
    ASSERT_EQ(end, trimmed.data() + trimmed.size()) << token;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(fast), std::bit_cast<std::uint64_t>(expected)) << token;
  };
  for (int i = 0; i < 200000; ++i) {
    const double v = (rng() % 2 ? 1 : -1) * std::pow(10.0, magnitude(rng));
    check(absl::StrFormat("%.*f", static_cast<int>(rng() % 12), v));
    check(absl::StrFormat("%.*g", 1 + static_cast<int>(rng() % 17), v));
    std::string digits(1 + rng() % 20, '0');
    for (char& c : digits) c = static_cast<char>('0' + rng() % 10);
    if (rng() % 2) digits.insert(1 + rng() % digits.size(), ".");
    check((rng() % 3 == 0 ? "-" : "") + digits + (rng() % 4 == 0 ? " \n" : ""));
  }
  EXPECT_GT(accepted, 200000);
  // Edge cases: 2^53 and 2^53 + 1, 19 digits and 20 (leading zeros of a fraction count), zeros.
  double v = 0.0;
  EXPECT_TRUE(ParseShortDecimal("9007199254740992", &v));
  EXPECT_EQ(v, 9007199254740992.0);
  EXPECT_FALSE(ParseShortDecimal("9007199254740993", &v));
  EXPECT_TRUE(ParseShortDecimal("0.0000000000000000001", &v));
  EXPECT_EQ(v, 1e-19);
  EXPECT_FALSE(ParseShortDecimal("0.00000000000000000001", &v));
  EXPECT_FALSE(ParseShortDecimal("12345678901234567890", &v));
  EXPECT_FALSE(ParseShortDecimal("9007199254740993.0", &v));
  EXPECT_TRUE(ParseShortDecimal("-0", &v));
  EXPECT_TRUE(std::signbit(v));
  EXPECT_TRUE(ParseShortDecimal("-0.0", &v));
  EXPECT_TRUE(std::signbit(v) && v == 0.0);
  // Not JSON, or not short decimals: left to simdjson.
  for (const char* token : {"", "-", "01", "-01", "1.", ".5", "+1", "1e5", "1E-2", "1.5e3", "0x10",
                            "1,", "12abc", "NaN", "Infinity", "1 2", "- 1", "1.2.3", "00"}) {
    EXPECT_FALSE(ParseShortDecimal(token, &v)) << token;
  }
  // In a buffer, the number must end at a byte that cannot continue it.
  for (const char* token : {"", "-", "01", "-01", "1.", ".5", "+1", "1e5", "1E-2", "1.5e3", "1-2",
                            "1+", "1.2.3", "00", "-.5", "0.e1"}) {
    const char* at = token;
    EXPECT_FALSE(json_decoder_internal::ParseShortDecimalAt(&at, &v)) << token;
    EXPECT_EQ(at, token);
  }
  for (const auto& [token, length] : std::vector<std::pair<const char*, int>>{
           {"1,", 1}, {"1}", 1}, {"1 ", 1}, {"12abc", 2}, {"0x10", 1}, {"1\"", 1}, {"7]", 1}}) {
    const char* at = token;
    EXPECT_TRUE(json_decoder_internal::ParseShortDecimalAt(&at, &v)) << token;
    EXPECT_EQ(at - token, length) << token;
  }
  // Through the decoder: the same doubles as before, also for the tokens it leaves to simdjson.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder
                  .Decode(R"({"id":"1","a":0.1,"b":-2.5e-3,"c":123456789012345678901,)"
                          R"("d":1E2,"e":-0,"f":  7.25  ,"g":9007199254740993})",
                          &event)
                  .ok());
  EXPECT_EQ(Find(event, "a")->value.number, 0.1);
  EXPECT_EQ(Find(event, "b")->value.number, -2.5e-3);
  EXPECT_EQ(Find(event, "c")->value.number, 123456789012345678901.0);
  EXPECT_EQ(Find(event, "d")->value.number, 100.0);
  EXPECT_TRUE(std::signbit(Find(event, "e")->value.number));
  EXPECT_EQ(Find(event, "f")->value.number, 7.25);
  EXPECT_EQ(Find(event, "g")->value.number, 9007199254740992.0);  // rounds to even
  for (const char* bad : {R"({"id":"1","a":01})", R"({"id":"1","a":1.})", R"({"id":"1","a":-})",
                          R"({"id":"1","a":1.5.2})", R"({"id":"1","a":12abc})"}) {
    EXPECT_EQ(decoder.Decode(bad, &event).code(), DecodeError::kInvalidJson) << bad;
  }
}

TEST(JsonDecoderTest, IntegerLabelsAndTimesReadFromTheirTokens) {
  // Integer labels and times without escapes are read from the message's bytes; the texts and
  // times must be those simdjson's reading gives.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"0", "0"},
      {"-0", "0"},
      {"12", "12"},
      {"-12", "-12"},
      {" 7 ", "7"},
      {"123456789012345678", "123456789012345678"},
      {"1234567890123456789", "1234567890123456789"},
      {"-9223372036854775808", "-9223372036854775808"},
      {"18446744073709551615", "18446744073709551615"}};
  for (const auto& [json, text] : labels) {
    ASSERT_TRUE(decoder.Decode(R"({"id":"1","label":)" + json + "}", &event).ok()) << json;
    EXPECT_EQ(event.label(), text) << json;
  }
  for (const char* bad : {"007", "-", "1.5", "1e3", "-9223372036854775809"}) {
    EXPECT_FALSE(decoder.Decode(R"({"id":"1","label":)" + std::string(bad) + "}", &event).ok())
        << bad;
  }
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","time":"2024-05-01T12:00:00Z"})", &event).ok());
  EXPECT_EQ(event.event_time_micros(), 1714564800000000);
  // An escaped time is unescaped first.
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","time":"2024-05-01T12:00:00\u005A"})", &event).ok());
  EXPECT_EQ(event.event_time_micros(), 1714564800000000);
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","time" : "2024-05-01T12:00:00Z"  })", &event).ok());
  EXPECT_EQ(event.event_time_micros(), 1714564800000000);
  EXPECT_EQ(decoder.Decode(R"({"id":"1","time":"2024-05-01T12:00:00\u0022"})", &event).code(),
            DecodeError::kBadTimestamp);
}

TEST(JsonDecoderTest, InvalidJson) {
  JsonDecoder decoder = MakeDecoder();
  for (std::string_view json :
       {R"({"id":"1","a":1)", R"({"id":"1","a":})", R"({"id":"1","a" 1})", R"({"id":"1","a":1,})",
        R"({"id":"1","a":01})", R"({"id":"1","a":1.})", R"({"id":"1","a":-})",
        R"({"id":"1","a":tru})", R"({"id":"1","a":nul})", R"({"id":"1","a":"\x"})",
        R"({"id":"1","a":"x)", R"({"id":"1",a:1})", R"({"id":"1","a":{"b":1,}})",
        R"({"id":"1","a":1} {"b":2})", R"({"id":"1","a":1}})", R"({"id":"1","a":1} x)", "", "   ",
        "{\"id\":\"1\",\"a\":\"tab\there\"}"}) {
    DecodedEvent event;
    const DecodeStatus s = decoder.Decode(json, &event);
    EXPECT_EQ(s.code(), DecodeError::kInvalidJson) << json << " -> " << s.message();
    EXPECT_FALSE(s.message().empty());
  }
}

TEST(JsonDecoderTest, InvalidUtf8) {
  JsonDecoder decoder = MakeDecoder();
  // Raw bytes that are not UTF-8: a lone continuation byte, a truncated sequence, an overlong
  // encoding of '/', and a UTF-16 surrogate encoded in UTF-8.
  for (std::string_view bad : {"\x80", "\xC3", "\xC0\xAF", "\xED\xA0\x80"}) {
    EXPECT_EQ(CodeOf(decoder, "{\"id\":\"1\",\"a\":\"x" + std::string(bad) + "\"}"),
              DecodeError::kInvalidUtf8);
    EXPECT_EQ(CodeOf(decoder, "{\"id\":\"1\",\"n" + std::string(bad) + "\":1}"),
              DecodeError::kInvalidUtf8);
  }
  // A \u escape of a lone surrogate has no UTF-8 form.
  DecodedEvent event;
  DecodeStatus s = decoder.Decode(R"({"id":"1","a":"\ud800"})", &event);
  EXPECT_EQ(s.code(), DecodeError::kInvalidUtf8) << s.message();
  EXPECT_THAT(s.message(), HasSubstr("features[\"a\"]"));
  s = decoder.Decode(R"({"id":"1","\udc00":1})", &event);
  EXPECT_EQ(s.code(), DecodeError::kInvalidUtf8) << s.message();
  // An escaped backslash before "ud800" is not an escape of a surrogate.
  s = decoder.Decode(R"({"id":"1","a":"\\ud800"})", &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Find(event, "a")->value.text, "\\ud800");
}

TEST(JsonDecoderTest, UnicodeEscapesInNamesAndValues) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(
      R"({"id":"\u0031","caf\u00e9":"na\u00efve","emoji":"\ud83d\ude00","raw":"日本",)"
      R"("esc":"a\"b\\c\/d\n","\u0041":1})",
      &event);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(event.id(), "1");
  ASSERT_NE(Find(event, "caf\xC3\xA9"), nullptr);
  EXPECT_EQ(Find(event, "caf\xC3\xA9")->value.text, "na\xC3\xAFve");
  EXPECT_EQ(Find(event, "emoji")->value.text, "\xF0\x9F\x98\x80");  // U+1F600 in UTF-8
  EXPECT_EQ(Find(event, "raw")->value.text, "日本");
  EXPECT_EQ(Find(event, "esc")->value.text, "a\"b\\c/d\n");
  ASSERT_NE(Find(event, "A"), nullptr);
}

TEST(JsonDecoderTest, TextForDeclaredNumericFeatureIsRejectedByPipelineValidate) {
  // The decoder does not know the schema: "amount" as a string is a Text feature, and the
  // pipeline's Validate (and its transforms) reject it, naming the field.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","amount":"12.5","country":"FR"})", &event).ok());
  EXPECT_EQ(Find(event, "amount")->value.kind, FeatureValue::Kind::kText);

  PipelineSpec spec;
  spec.declared.push_back({.name = "amount", .kind = FeatureDef::Kind::kNumeric});
  absl::StatusOr<Pipeline> pipeline = Pipeline::Create(spec);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const absl::Status status = pipeline->Validate(event.features());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("features[\"amount\"]: expected a number"));

  ASSERT_TRUE(decoder.Decode(R"({"id":"2","amount":12.5,"country":"FR"})", &event).ok());
  EXPECT_TRUE(pipeline->Validate(event.features()).ok());
  learners::FeatureVector x;
  PipelineScratch scratch;
  EXPECT_TRUE(pipeline->LearnAndTransform(event.features(), &x, &scratch).ok());
}

TEST(JsonDecoderTest, NanAndInfinityLiteralsAreNonFiniteNumbers) {
  JsonDecoder decoder = MakeDecoder();
  for (std::string_view literal :
       {"NaN", "nan", "Infinity", "-Infinity", "+Infinity", "inf", "-inf"}) {
    DecodedEvent event;
    const DecodeStatus s =
        decoder.Decode("{\"id\":\"1\",\"amount\":" + std::string(literal) + "}", &event);
    EXPECT_EQ(s.code(), DecodeError::kNonFiniteNumber) << literal << " -> " << s.message();
    EXPECT_THAT(s.message(), HasSubstr("features[\"amount\"]")) << literal;
  }
  // The same in a nested object, a label and an event time.
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","m":{"x":NaN}})"), DecodeError::kNonFiniteNumber);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","label":NaN})"), DecodeError::kNonFiniteNumber);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","time":-Infinity})"), DecodeError::kNonFiniteNumber);
  // As strings they are texts, which the pipeline rejects for a declared numeric feature.
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","amount":"NaN"})", &event).ok());
  EXPECT_EQ(Find(event, "amount")->value.kind, FeatureValue::Kind::kText);
}

TEST(JsonDecoderTest, NumbersOutOfRange) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = decoder.Decode(R"({"id":"1","amount":1e999})", &event);
  EXPECT_EQ(s.code(), DecodeError::kNumberOutOfRange);
  EXPECT_EQ(s.message(), "features[\"amount\"]: number out of range (1e999)");
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","amount":-1e999})"), DecodeError::kNumberOutOfRange);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","amount":1.8e308})"), DecodeError::kNumberOutOfRange);
  EXPECT_EQ(CodeOf(decoder, "{\"id\":\"1\",\"amount\":" + std::string(400, '9') + "}"),
            DecodeError::kNumberOutOfRange);
  // Within range, even at its edges, numbers are the nearest double.
  ASSERT_TRUE(decoder
                  .Decode(R"({"id":"1","max":1.7976931348623157e308,"tiny":5e-324,"zero":1e-400,)"
                          R"("big":123456789012345678901234567890,"neg":-0})",
                          &event)
                  .ok());
  EXPECT_EQ(Find(event, "max")->value.number, std::numeric_limits<double>::max());
  EXPECT_EQ(Find(event, "tiny")->value.number, std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(Find(event, "zero")->value.number, 0.0);  // correctly rounded underflow
  EXPECT_EQ(Find(event, "big")->value.number, 1.2345678901234568e29);
  EXPECT_TRUE(std::signbit(Find(event, "neg")->value.number));
}

TEST(JsonDecoderTest, NestingTooDeep) {
  JsonDecoderOptions options;
  options.max_depth = 4;
  JsonDecoder decoder = MakeDecoder(options);
  // The message's object is level 1: a.b.c is at level 4.
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","a":{"b":{"c":{"d":1}}}})", &event).ok());
  EXPECT_EQ(Names(event), std::vector<std::string>{"a.b.c.d"});
  const DecodeStatus s = decoder.Decode(R"({"id":"1","a":{"b":{"c":{"d":{"e":1}}}}})", &event);
  EXPECT_EQ(s.code(), DecodeError::kTooDeep);
  EXPECT_EQ(s.message(), "features[\"a.b.c.d\"]: nested deeper than 4 levels");

  // Default depth 16, and a pathological 100000 levels: no stack overflow, a clean error.
  JsonDecoder defaults = MakeDecoder();
  std::string deep = "{\"id\":\"1\",";
  for (int i = 0; i < 100000; ++i) deep += "\"a\":{";
  deep += "\"x\":1";
  for (int i = 0; i < 100000; ++i) deep += "}";
  deep += "}";
  EXPECT_EQ(CodeOf(defaults, deep), DecodeError::kTooDeep);
  // Arrays count as levels when they are skipped.
  options.skip_arrays = true;
  JsonDecoder arrays = MakeDecoder(options);
  EXPECT_EQ(CodeOf(arrays, R"({"id":"1","a":[[[1]]]})"), DecodeError::kOk);
  EXPECT_EQ(CodeOf(arrays, R"({"id":"1","a":[[[[1]]]]})"), DecodeError::kTooDeep);
}

TEST(JsonDecoderTest, MessageOverTheSizeLimit) {
  JsonDecoderOptions options;
  options.max_message_bytes = 64;
  JsonDecoder decoder = MakeDecoder(options);
  const std::string at_limit = R"({"id":"1","text":")" + std::string(64 - 20, 'x') + "\"}";
  ASSERT_EQ(at_limit.size(), 64u);
  EXPECT_EQ(CodeOf(decoder, at_limit), DecodeError::kOk);
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(at_limit + " ", &event);
  EXPECT_EQ(s.code(), DecodeError::kTooLarge);
  EXPECT_EQ(s.message(), "message: 65 bytes, above the limit of 64");
}

TEST(JsonDecoderTest, FlattenedNamesAndDecodedSizeAreBounded) {
  JsonDecoderOptions options;
  options.max_name_bytes = 8;
  JsonDecoder decoder = MakeDecoder(options);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","abc":{"defg":1}})"), DecodeError::kOk);  // "abc.defg"
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","abc":{"defgh":1}})"), DecodeError::kTooLarge);

  // A long object name repeated in many flattened names: a small message, a large event.
  JsonDecoderOptions small;
  small.max_message_bytes = 4096;
  JsonDecoder bounded = MakeDecoder(small);
  std::string json = "{\"id\":\"1\",\"" + std::string(900, 'k') + "\":{";
  for (int i = 0; i < 300; ++i) json += absl::StrFormat("%s\"%d\":1", i ? "," : "", i);
  json += "}}";
  ASSERT_LE(json.size(), 4096u);
  DecodedEvent event;
  const DecodeStatus s = bounded.Decode(json, &event);
  EXPECT_EQ(s.code(), DecodeError::kTooLarge) << s.message();
}

TEST(JsonDecoderTest, LabelTypes) {
  JsonDecoder decoder = MakeDecoder();
  auto label_of = [&decoder](std::string_view value) -> std::optional<std::string> {
    DecodedEvent event;
    const DecodeStatus s =
        decoder.Decode("{\"id\":\"1\",\"x\":1,\"label\":" + std::string(value) + "}", &event);
    EXPECT_TRUE(s.ok()) << value << " -> " << s.message();
    if (!event.label().has_value()) return std::nullopt;
    return std::string(*event.label());
  };
  EXPECT_EQ(label_of(R"("fraud")"), "fraud");
  EXPECT_EQ(label_of(R"("1.5")"), "1.5");  // a string is taken as is
  EXPECT_EQ(label_of("1"), "1");
  EXPECT_EQ(label_of("-3"), "-3");
  EXPECT_EQ(label_of("-0"), "0");
  EXPECT_EQ(label_of("18446744073709551615"), "18446744073709551615");
  EXPECT_EQ(label_of("true"), "1");
  EXPECT_EQ(label_of("false"), "0");
  EXPECT_EQ(label_of("null"), std::nullopt);

  for (std::string_view bad :
       {"1.5", "1.0", "1e2", "18446744073709551616", "{}", R"({"a":1})", "[1]", R"("")"}) {
    DecodedEvent event;
    const DecodeStatus s =
        decoder.Decode("{\"id\":\"1\",\"label\":" + std::string(bad) + "}", &event);
    EXPECT_EQ(s.code(), DecodeError::kBadLabelType) << bad << " -> " << s.message();
    EXPECT_THAT(s.message(), HasSubstr("label[\"label\"]")) << bad;
  }
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","label":01})"), DecodeError::kInvalidJson);
}

TEST(JsonDecoderTest, NullsAreMissingByDefault) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder
                  .Decode(R"({"id":"1","key":null,"time":null,"label":null,"a":null,)"
                          R"("m":{"b":null},"c":2})",
                          &event)
                  .ok());
  EXPECT_EQ(event.key(), std::nullopt);
  EXPECT_EQ(event.event_time_micros(), std::nullopt);
  EXPECT_EQ(event.label(), std::nullopt);
  EXPECT_EQ(Names(event), std::vector<std::string>{"c"});
  EXPECT_EQ(CodeOf(decoder, R"({"id":null,"a":1})"), DecodeError::kMissingId);

  JsonDecoderOptions options;
  options.null_is_missing = false;
  JsonDecoder strict = MakeDecoder(options);
  DecodeStatus s = strict.Decode(R"({"id":"1","m":{"b":null}})", &event);
  EXPECT_EQ(s.code(), DecodeError::kNullValue);
  EXPECT_EQ(s.message(), "features[\"m.b\"]: null is not accepted");
  EXPECT_EQ(CodeOf(strict, R"({"id":"1","label":null})"), DecodeError::kNullValue);
  EXPECT_EQ(CodeOf(strict, R"({"id":"1","time":null})"), DecodeError::kNullValue);
}

TEST(JsonDecoderTest, DuplicatesAreFoundAfterEventsWithTheSameOrSimilarNames) {
  // The check is skipped for an event whose names equal the last checked event's: a
  // duplicate must still be found whatever came before it.
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  ASSERT_TRUE(decoder.Decode(R"({"id":"1","a":1,"b":2})", &event).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"2","a":3,"b":4})", &event).ok());  // same names
  EXPECT_EQ(event.features().size(), 2u);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"3","a":1,"b":2,"b":3})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"3","a":1,"a":2})"), DecodeError::kDuplicateField);
  ASSERT_TRUE(decoder.Decode(R"({"id":"4","a":1,"b":2})", &event).ok());
  EXPECT_EQ(CodeOf(decoder, R"({"id":"5","b":1,"b":2})"), DecodeError::kDuplicateField);
  // Names whose concatenations are equal but not the names themselves.
  ASSERT_TRUE(decoder.Decode(R"({"id":"6","ab":1,"c":2})", &event).ok());
  ASSERT_TRUE(decoder.Decode(R"({"id":"7","a":1,"bc":2})", &event).ok());
  EXPECT_EQ(CodeOf(decoder, R"({"id":"8","a":1,"a":2})"), DecodeError::kDuplicateField);
}

TEST(JsonDecoderTest, DuplicateKeys) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = decoder.Decode(R"({"id":"1","a":1,"b":2,"a":3})", &event);
  EXPECT_EQ(s.code(), DecodeError::kDuplicateField);
  EXPECT_EQ(s.message(), "features[\"a\"]: given twice");
  // After flattening: a dotted name and a nested field, and an object given twice.
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","a.b":1,"a":{"b":2}})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","a":{"x":1},"a":{"y":2}})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","a":1,"a":{"y":2}})"), DecodeError::kDuplicateField);
  // Roles.
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","id":"2"})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","label":1,"label":1})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","key":"a","key":"b"})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","key":null,"key":"b"})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":null,"id":"1"})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","label":null,"label":1})"), DecodeError::kDuplicateField);
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","time":1,"event_time":2})"), DecodeError::kDuplicateField);
  // Many fields (the hash table grows), one duplicate at the end.
  std::string many = "{\"id\":\"1\"";
  for (int i = 0; i < 1000; ++i) many += absl::StrFormat(",\"f%d\":%d", i, i);
  EXPECT_EQ(CodeOf(decoder, many + "}"), DecodeError::kOk);
  EXPECT_EQ(CodeOf(decoder, many + ",\"f500\":1}"), DecodeError::kDuplicateField);
  // Equal texts under different names are fine.
  EXPECT_EQ(CodeOf(decoder, R"({"id":"1","a":"x","b":"x","c":{"a":"x"}})"), DecodeError::kOk);
}

TEST(JsonDecoderTest, EmptyFieldNames) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = decoder.Decode(R"({"id":"1","":1})", &event);
  EXPECT_EQ(s.code(), DecodeError::kEmptyFieldName);
  EXPECT_EQ(s.message(), "features[\"\"]: empty field name");
  s = decoder.Decode(R"({"id":"1","m":{"":"x"}})", &event);
  EXPECT_EQ(s.code(), DecodeError::kEmptyFieldName);
  EXPECT_EQ(s.message(), "features[\"m.\"]: empty field name");
}

TEST(JsonDecoderTest, ArraysAreRejectedOrSkipped) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  const DecodeStatus s = decoder.Decode(R"({"id":"1","tags":["a","b"]})", &event);
  EXPECT_EQ(s.code(), DecodeError::kUnsupportedArray);
  EXPECT_THAT(s.message(), HasSubstr("features[\"tags\"]"));

  JsonDecoderOptions options;
  options.skip_arrays = true;
  JsonDecoder skipping = MakeDecoder(options);
  ASSERT_TRUE(
      skipping.Decode(R"({"id":"1","tags":["a",{"b":[1,null,true]},[]],"x":1})", &event).ok());
  EXPECT_EQ(Names(event), std::vector<std::string>{"x"});
  // Skipped arrays are still checked.
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","tags":[1,NaN]})"), DecodeError::kNonFiniteNumber);
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","tags":[1e999]})"), DecodeError::kNumberOutOfRange);
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","tags":[tru]})"), DecodeError::kInvalidJson);
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","tags":[1,]})"), DecodeError::kInvalidJson);
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","tags":["\ud800"]})"), DecodeError::kInvalidUtf8);
  // A label or an id is never an array.
  EXPECT_EQ(CodeOf(skipping, R"({"id":"1","label":[1]})"), DecodeError::kBadLabelType);
  EXPECT_EQ(CodeOf(skipping, R"({"id":["1"]})"), DecodeError::kBadIdType);
}

TEST(JsonDecoderTest, NotAnObject) {
  JsonDecoder decoder = MakeDecoder();
  for (std::string_view json : {"[1,2]", "5", "\"text\"", "true", "null", " [] "}) {
    DecodedEvent event;
    const DecodeStatus s = decoder.Decode(json, &event);
    EXPECT_EQ(s.code(), DecodeError::kNotAnObject) << json << " -> " << s.message();
  }
  // Text that only starts like a JSON scalar is not JSON at all.
  for (std::string_view text : {"not json at all", "true love", "123abc", "nullx", "[1,", "5 6"}) {
    DecodedEvent event;
    const DecodeStatus s = decoder.Decode(text, &event);
    EXPECT_EQ(s.code(), DecodeError::kInvalidJson) << text << " -> " << s.message();
  }
}

TEST(JsonDecoderTest, IdsAndKeys) {
  JsonDecoder decoder = MakeDecoder();
  DecodedEvent event;
  DecodeStatus s = decoder.Decode(R"({"x":1})", &event);
  EXPECT_EQ(s.code(), DecodeError::kMissingId);
  EXPECT_EQ(s.message(), "id[\"id\"]: missing");
  ASSERT_TRUE(decoder.Decode(R"({"id":-42,"key":18446744073709551615})", &event).ok());
  EXPECT_EQ(event.id(), "-42");
  EXPECT_EQ(event.key(), "18446744073709551615");
  for (std::string_view bad : {R"("")", "1.5", "true", "{}", R"({"a":1})"}) {
    EXPECT_EQ(CodeOf(decoder, "{\"id\":" + std::string(bad) + "}"), DecodeError::kBadIdType) << bad;
    EXPECT_EQ(CodeOf(decoder, "{\"id\":\"1\",\"key\":" + std::string(bad) + "}"),
              DecodeError::kBadIdType)
        << bad;
  }
  JsonDecoderOptions options;
  options.require_id = false;
  JsonDecoder optional_id = MakeDecoder(options);
  ASSERT_TRUE(optional_id.Decode(R"({"x":1})", &event).ok());
  EXPECT_EQ(event.id(), "");
}

TEST(JsonDecoderTest, EventTimes) {
  JsonDecoder decoder = MakeDecoder();
  auto time_of = [&decoder](std::string_view value) -> std::optional<std::int64_t> {
    DecodedEvent event;
    const DecodeStatus s =
        decoder.Decode("{\"id\":\"1\",\"event_time\":" + std::string(value) + "}", &event);
    EXPECT_TRUE(s.ok()) << value << " -> " << s.message();
    return event.event_time_micros();
  };
  constexpr std::int64_t kNoon = 1714564800LL * 1000000;  // 2024-05-01T12:00:00Z
  EXPECT_EQ(time_of(R"("2024-05-01T12:00:00Z")"), kNoon);
  EXPECT_EQ(time_of(R"("2024-05-01t12:00:00z")"), kNoon);
  EXPECT_EQ(time_of(R"("2024-05-01 12:00:00Z")"), kNoon);
  EXPECT_EQ(time_of(R"("2024-05-01T14:00:00+02:00")"), kNoon);
  EXPECT_EQ(time_of(R"("2024-05-01T07:30:00-04:30")"), kNoon);
  EXPECT_EQ(time_of(R"("2024-05-01T12:00:00.25Z")"), kNoon + 250000);
  EXPECT_EQ(time_of(R"("2024-05-01T12:00:00.123456789Z")"), kNoon + 123456);  // truncated
  EXPECT_EQ(time_of(R"("2024-05-01T11:59:60Z")"), kNoon);  // leap second: the next second
  EXPECT_EQ(time_of(R"("1970-01-01T00:00:00Z")"), 0);
  EXPECT_EQ(time_of(R"("1969-12-31T23:59:59Z")"), -1000000);
  EXPECT_EQ(time_of(R"("2000-02-29T00:00:00Z")"), 951782400LL * 1000000);
  // Numbers: seconds below 1e11, milliseconds at or above.
  EXPECT_EQ(time_of("1714564800"), kNoon);
  EXPECT_EQ(time_of("1714564800.5"), kNoon + 500000);
  EXPECT_EQ(time_of("1714564800000"), kNoon);
  EXPECT_EQ(time_of("1714564800000.5"), kNoon + 500);
  EXPECT_EQ(time_of("0"), 0);
  EXPECT_EQ(time_of("-86400"), -86400LL * 1000000);

  JsonDecoderOptions options;
  options.epoch_unit = EpochUnit::kMicros;
  JsonDecoder micros = MakeDecoder(options);
  DecodedEvent event;
  ASSERT_TRUE(micros.Decode(R"({"id":"1","time":1714564800000000})", &event).ok());
  EXPECT_EQ(event.event_time_micros(), kNoon);

  for (std::string_view bad :
       {R"("2024-05-01")", R"("2024-05-01T12:00:00")", R"("2024-13-01T12:00:00Z")",
        R"("2023-02-29T12:00:00Z")", R"("2024-05-01T24:00:00Z")", R"("2024-05-01T12:00:00.Z")",
        R"("2024-05-01T12:00:00+2:00")", R"("2024-05-01T12:00:00Z ")", R"("yesterday")",
        R"("1714564800")", "true", "{}", "[1]", "1e300", "9223372036854775807"}) {
    DecodedEvent e;
    const DecodeStatus s = decoder.Decode("{\"id\":\"1\",\"time\":" + std::string(bad) + "}", &e);
    EXPECT_EQ(s.code(), DecodeError::kBadTimestamp) << bad << " -> " << s.message();
    EXPECT_THAT(s.message(), HasSubstr("time[\"time\"]")) << bad;
  }
}

TEST(JsonDecoderTest, ErrorCodesAndNamesAreStable) {
  // These travel in dead-letter headers: never renumber.
  EXPECT_EQ(static_cast<int>(DecodeError::kInvalidJson), 1);
  EXPECT_EQ(static_cast<int>(DecodeError::kNullValue), 15);
  EXPECT_EQ(DecodeErrorName(DecodeError::kOk), "OK");
  EXPECT_EQ(DecodeErrorName(DecodeError::kInvalidJson), "INVALID_JSON");
  EXPECT_EQ(DecodeErrorName(DecodeError::kNumberOutOfRange), "NUMBER_OUT_OF_RANGE");
  EXPECT_EQ(DecodeErrorName(DecodeError::kNullValue), "NULL_VALUE");
  const DecodeStatus s(DecodeError::kTooDeep, "features[\"a\"]: nested deeper than 16 levels");
  EXPECT_EQ(s.ToStatus(),
            absl::InvalidArgumentError("TOO_DEEP: features[\"a\"]: nested deeper than 16 levels"));
  EXPECT_TRUE(DecodeStatus().ToStatus().ok());
}

TEST(JsonDecoderTest, OptionsValidate) {
  EXPECT_TRUE(JsonDecoderOptions{}.Validate().ok());
  auto invalid = [](auto mutate) {
    JsonDecoderOptions o;
    mutate(o);
    return o.Validate();
  };
  EXPECT_THAT(invalid([](auto& o) { o.id_field = ""; }).message(), HasSubstr("id_field"));
  EXPECT_THAT(invalid([](auto& o) { o.label_field = "id"; }).message(), HasSubstr("label_field"));
  EXPECT_THAT(invalid([](auto& o) {
                o.time_fields = {"t", "t"};
              }).message(),
              HasSubstr("time_fields[1]"));
  EXPECT_THAT(invalid([](auto& o) { o.max_depth = 0; }).message(), HasSubstr("max_depth"));
  EXPECT_THAT(invalid([](auto& o) { o.max_depth = 1000; }).message(), HasSubstr("max_depth"));
  EXPECT_THAT(invalid([](auto& o) { o.max_message_bytes = 0; }).message(),
              HasSubstr("max_message_bytes"));
  EXPECT_THAT(invalid([](auto& o) { o.max_name_bytes = 0; }).message(),
              HasSubstr("max_name_bytes"));
  JsonDecoderOptions bad;
  bad.max_depth = 0;
  EXPECT_EQ(JsonDecoder::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JsonDecoderTest, ParseRfc3339) {
  EXPECT_EQ(ParseRfc3339Micros("0000-01-01T00:00:00Z"), -62167219200LL * 1000000);
  EXPECT_EQ(ParseRfc3339Micros("9999-12-31T23:59:59.999999Z"), 253402300799999999LL);
  EXPECT_EQ(ParseRfc3339Micros("2024-02-30T00:00:00Z"), std::nullopt);
  EXPECT_EQ(ParseRfc3339Micros("2024-05-01T12:00:00+24:00"), std::nullopt);
  EXPECT_EQ(ParseRfc3339Micros(""), std::nullopt);
}

}  // namespace
}  // namespace riffle::features
