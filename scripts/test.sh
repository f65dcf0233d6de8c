#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. install the build and test dependencies (Debian packages; fast when present),
#   2. build the release flavour and run every test with CTest,
#   3. build with AddressSanitizer + UndefinedBehaviorSanitizer and run the suite again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh

run_suite() {
  local flavour=$1
  echo "=== build ($flavour)"
  bash scripts/build.sh "$flavour"
  echo "=== test ($flavour)"
  ctest --test-dir "build/$flavour" --output-on-failure -j 2 --timeout 600
}

run_suite release
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan
echo "=== all suites passed"
