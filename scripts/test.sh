#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. install the build and test dependencies (Debian packages; fast when present),
#   2. build the release flavour and run every test with CTest, then the Kafka integration test
#      against a real Apache Kafka broker (scripts/kafka.sh, jars from Maven Central), then the
#      Python client's tests against the real `riffle serve` (in the venv .venv-client),
#   3. build with AddressSanitizer + UndefinedBehaviorSanitizer and run the suite again,
#   4. build with ThreadSanitizer and run the suite again (TSan cannot run binaries that link
#      Debian's librdkafka, whose C11 threads it does not understand: those carry the CTest
#      label "kafka" and are excluded here). Debian's gRPC and Abseil are not instrumented;
#      ignore_noninstrumented_modules keeps TSan from reporting their internal memory traffic
#      (seen only through interceptors, without their synchronization), and our own locks are
#      pthread-based (service/rw_mutex.h) so TSan sees every ordering in Riffle's code;
#      tests/tsan.supp explains the one suppression (races inside gRPC's own header code),
#   5. run the fuzzers (checkpoint loader, JSON and CSV event decoders) for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh

run_suite() {
  local flavour=$1
  shift
  echo "=== build ($flavour)"
  bash scripts/build.sh "$flavour"
  echo "=== test ($flavour)"
  ctest --test-dir "build/$flavour" --output-on-failure -j 2 --timeout 600 "$@"
}

run_suite release -LE integration
echo "=== test (kafka integration: a real Apache Kafka broker)"
bash scripts/test_kafka_integration.sh build/release
echo "=== test (python client)"
bash scripts/test_python_client.sh build/release/service/riffle
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan -LE integration
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$PWD/tests/tsan.supp" \
  run_suite tsan -LE kafka
echo "=== fuzz (checkpoint loader, JSON and CSV event decoders)"
bash scripts/fuzz.sh "${RIFFLE_FUZZ_SECONDS:-60}"
echo "=== all suites passed"
