// CSV event decoding (Google Benchmark), the counterpart of json_decoder_benchmark.
//
//   build/release/benchmarks/csv_event_decoder_benchmark --benchmark_min_time=1
//
// The record: a 30-field payment row, id, key, RFC 3339 time and label plus 26 features: 20
// numbers, 5 categorical texts and a merchant category code read as text (text_columns),
// about 250 bytes. 1,024 distinct rows (values drawn with a fixed seed) are decoded in turn
// into one reused DecodedEvent, so the branch predictor cannot learn one row.
//   BM_CsvDecode30Fields:        Decode of fields already split, as CsvReader::Next gives them.
//   BM_CsvDecodeMessage30Fields: DecodeMessage of the row as one message (split included), as
//                                a Kafka message value would be.
//   BM_ParseNumbersStreamRecord: number parsing alone (see there).
// items_per_second is events per second on one core.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "features/csv_event_decoder.h"
#include "features/csv_reader.h"

namespace riffle::features {
namespace {

std::vector<std::string> Header() {
  std::vector<std::string> header = {"id", "key", "time", "label"};
  for (int f = 0; f < 20; ++f) header.push_back(absl::StrFormat("num_%02d", f));
  for (const char* name : {"country", "channel", "currency", "device", "merchant_country", "mcc"}) {
    header.emplace_back(name);
  }
  return header;
}

std::vector<std::string> MakeRows(int n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> amount(0.0, 5000.0);
  std::uniform_int_distribution<int> small(0, 40);
  const char* countries[] = {"FR", "DE", "US", "GB", "ES", "IT", "NL", "BR"};
  const char* channels[] = {"web", "pos", "app", "moto"};
  std::vector<std::string> rows;
  for (int i = 0; i < n; ++i) {
    std::string row = absl::StrFormat("tx-%08d,card-%d,2024-05-01T12:%02d:%02d.%03dZ,%d", i,
                                      small(rng) * 1000 + i % 97, i % 60, (i * 7) % 60, i % 1000,
                                      i % 29 == 0 ? 1 : 0);
    for (int f = 0; f < 20; ++f) {
      row += absl::StrFormat(",%.6g", f % 3 == 0 ? amount(rng) : small(rng) * 0.25);
    }
    row += absl::StrFormat(",%s,%s,EUR,dev-%d,%s,%04d\n", countries[small(rng) % 8],
                           channels[small(rng) % 4], small(rng), countries[small(rng) % 8],
                           5000 + small(rng));
    rows.push_back(std::move(row));
  }
  return rows;
}

const std::vector<std::string>& Rows() {
  static const std::vector<std::string>* rows = new std::vector<std::string>(MakeRows(1024));
  return *rows;
}

CsvEventDecoder Decoder() {
  const std::vector<std::string> header = Header();
  const std::vector<std::string_view> names(header.begin(), header.end());
  CsvEventDecoderOptions options;
  options.text_columns = {"mcc"};
  return std::move(CsvEventDecoder::Create(names, options).value());
}

void BM_CsvDecode30Fields(benchmark::State& state) {
  // The rows split once beforehand: this measures the decoder, not the splitting.
  const std::vector<std::string>& rows = Rows();
  std::vector<std::vector<std::string_view>> split(rows.size());
  std::string scratch;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (!SplitCsvRecord(rows[r], ',', &split[r], &scratch).ok()) {
      state.SkipWithError("split failed");
      return;
    }
  }
  const CsvEventDecoder decoder = Decoder();
  DecodedEvent event;
  std::size_t i = 0;
  for (auto _ : state) {
    const DecodeStatus s = decoder.Decode(split[i++ & 1023], &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(event.features().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["features"] = static_cast<double>(event.features().size());
}
BENCHMARK(BM_CsvDecode30Fields);

void BM_CsvDecodeMessage30Fields(benchmark::State& state) {
  const std::vector<std::string>& rows = Rows();
  CsvEventDecoder decoder = Decoder();
  DecodedEvent event;
  std::size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& row = rows[i++ & 1023];
    bytes += row.size();
    const DecodeStatus s = decoder.DecodeMessage(row, &event);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(event.features().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["features"] = static_cast<double>(event.features().size());
}
BENCHMARK(BM_CsvDecodeMessage30Fields);

// Number parsing alone, on records shaped like benchmarks/make_stream.py's (what `riffle eval`
// reads in docs/BENCHMARKS.md): 20 columns offset + scale * N(0, 1), the offset uniform in
// [-10, 10] and the scale log-uniform in [0.1, 100] per column, written with %.6g, and a 0/1
// label; 1,024 distinct records.
//   /0: ParseNumber field by field (csv_internal::ParseNumberInto, the scalar path);
//   /1: csv_internal::ParseNumbersInto a record at a time (four fields at a time with AVX2).
// items_per_second is numbers per second.
void BM_ParseNumbersStreamRecord(benchmark::State& state) {
  std::mt19937 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  double offsets[20];
  double scales[20];
  for (int f = 0; f < 20; ++f) {
    offsets[f] = 10.0 * uniform(rng);
    scales[f] = std::pow(10.0, 0.5 + 1.5 * uniform(rng));
  }
  std::vector<std::string> texts;
  for (int r = 0; r < 1024; ++r) {
    for (int f = 0; f < 20; ++f) {
      texts.push_back(absl::StrFormat("%.6g", offsets[f] + scales[f] * normal(rng)));
    }
    texts.push_back(r % 3 == 0 ? "1" : "0");
  }
  const std::vector<std::string_view> fields(texts.begin(), texts.end());
  std::vector<double> values(21);
  const bool by_record = state.range(0) == 1;
  std::size_t r = 0;
  for (auto _ : state) {
    const std::span<const std::string_view> record =
        std::span<const std::string_view>(fields).subspan((r++ & 1023) * 21, 21);
    if (by_record) {
      csv_internal::ParseNumbersInto(record, values.data());
    } else {
      for (std::size_t f = 0; f < 21; ++f) {
        if (!csv_internal::ParseNumberInto(record[f], &values[f])) values[f] = 0.0;
      }
    }
    benchmark::DoNotOptimize(values.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 21);
}
BENCHMARK(BM_ParseNumbersStreamRecord)->Arg(0)->Arg(1);

}  // namespace
}  // namespace riffle::features

BENCHMARK_MAIN();
