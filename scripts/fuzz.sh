#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer in build/fuzz, and runs each for a share of a bounded time, one
# after the other:
#   checkpoint_file_fuzzer   (fuzz/checkpoint_file_fuzzer.cc)    a third of the seconds, plus
#                                                                 what the division leaves
#   json_decoder_fuzzer      (fuzz/json_decoder_fuzzer.cc)       a third
#   csv_event_decoder_fuzzer (fuzz/csv_event_decoder_fuzzer.cc)  a third
#
#   scripts/fuzz.sh [seconds]        default 60, in total (at least 3)
#
# Needs clang-14 and libclang-rt-14-dev (the libFuzzer and sanitizer runtimes). Environment:
# RIFFLE_JOBS build parallelism (default 2), RIFFLE_FUZZ_CXX the compiler (default clang++-14).
#
# Seeds (read only: libFuzzer only adds to the first corpus directory): the committed files of
# tests/fixtures/checkpoints for the checkpoint fuzzer, fuzz/seeds/json_decoder (with the
# dictionary fuzz/json.dict) for the JSON decoder, fuzz/seeds/csv_event_decoder for the CSV
# event decoder. The corpora the runs grow are kept in build/fuzz/corpus/<target>, so each run
# starts where the previous one stopped. An input that crashes, leaks, times out or allocates
# more than the limits is saved in build/fuzz/artifacts/ and the script exits non-zero (the
# targets after it do not run); reproduce it with build/fuzz/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds < 3)); then
  echo "usage: scripts/fuzz.sh [seconds]" >&2
  exit 2
fi
jobs=${RIFFLE_JOBS:-2}
cxx=${RIFFLE_FUZZ_CXX:-clang++-14}

echo "=== build (build/fuzz, $cxx)"
cmake -S fuzz -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build build/fuzz -j "$jobs" \
  --target checkpoint_file_fuzzer json_decoder_fuzzer csv_event_decoder_fuzzer
json_seconds=$((seconds / 3))
csv_seconds=$((seconds / 3))
checkpoint_seconds=$((seconds - json_seconds - csv_seconds))

corpus=build/fuzz/corpus/checkpoint_file
artifacts=build/fuzz/artifacts
mkdir -p "$corpus" "$artifacts"

# Seeds that reach the model parsers: real checkpoints of small models, one per optimizer and
# mode, written by the release riffle binary when it has been built (scripts/test.sh builds it
# first). Without them the fuzzer reaches the learner loaders only by luck.
seeds=build/fuzz/seeds
mkdir -p "$seeds"
if [[ -x build/release/service/riffle ]]; then
  for set in "optimizer=sgd" "optimizer=adam" "optimizer=adagrad" "optimizer=ftrl" \
             "mode=softmax" "l1=0.01"; do
    build/release/service/riffle eval --data data/sklearn-iris.csv --target target \
      --set "$set" --no-progress --save-checkpoint "$seeds/iris-${set/=/-}.riffle" >/dev/null
  done
  build/release/service/riffle eval --data data/weka-vote.csv --target Class --no-progress \
    --save-checkpoint "$seeds/vote.riffle" >/dev/null
fi

echo "=== fuzz checkpoint_file_fuzzer for ${checkpoint_seconds}s"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -malloc_limit_mb: one allocation above 256 MB is a finding (a parser trusting a corrupted
#   size field shows up at once); -rss_limit_mb bounds the whole process. The seeds are whole
#   checkpoint files of about 1 MB (the metrics' AUC trees), and libFuzzer keeps every new
#   corpus entry in memory: several hundred entries in 30 s under ASan exceeded 512 MB in a CI
#   run (libFuzzer's own corpus, not the parser), hence 4 GB on this 24 GB machine.
# -timeout: one input taking over 10 s is a finding (a loop driven by a corrupted count).
build/fuzz/checkpoint_file_fuzzer \
  -max_total_time="$checkpoint_seconds" \
  -rss_limit_mb=4096 \
  -malloc_limit_mb=256 \
  -timeout=10 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/" \
  "$corpus" tests/fixtures/checkpoints "$seeds"

# The JSON decoder: the first byte of an input picks the decoder options, the rest is the
# message. Same limits; -max_len covers the small decoder's 512-byte limit with room to spare
# (the default decoder's 1 MiB limit is tested by the unit tests, not by fuzzing).
json_corpus=build/fuzz/corpus/json_decoder
mkdir -p "$json_corpus"
echo "=== fuzz json_decoder_fuzzer for ${json_seconds}s"
build/fuzz/json_decoder_fuzzer \
  -max_total_time="$json_seconds" \
  -max_len=2048 \
  -dict=fuzz/json.dict \
  -rss_limit_mb=512 \
  -malloc_limit_mb=256 \
  -timeout=10 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/" \
  "$json_corpus" fuzz/seeds/json_decoder

# The CSV event decoder: as the JSON one, the first byte of an input picks the decoder options
# and the rest is one message, decoded against a fixed header. -max_len covers the small
# decoder's 64-byte limit and rows of the default decoder's header with room to spare.
csv_corpus=build/fuzz/corpus/csv_event_decoder
mkdir -p "$csv_corpus"
echo "=== fuzz csv_event_decoder_fuzzer for ${csv_seconds}s"
build/fuzz/csv_event_decoder_fuzzer \
  -max_total_time="$csv_seconds" \
  -max_len=1024 \
  -rss_limit_mb=512 \
  -malloc_limit_mb=256 \
  -timeout=10 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/" \
  "$csv_corpus" fuzz/seeds/csv_event_decoder
