#!/usr/bin/env bash
# Runs the Kafka integration tests (CTest label "integration") of a build against one real
# Apache Kafka broker: fetches the broker's jars if needed, starts a broker in a temporary
# directory, runs `ctest -L integration` with RIFFLE_KAFKA_BOOTSTRAP pointing at it, then the
# end-to-end pytest suite tests/integration (riffle serve and replay from BUILD_DIR, or
# $RIFFLE_BIN; the dashboard in headless Chromium, whose screenshot goes to
# BUILD_DIR/test-artifacts/dashboard.png), and stops the broker however the tests end.
#
#   scripts/test_kafka_integration.sh BUILD_DIR [extra ctest arguments...]
#   e.g. scripts/test_kafka_integration.sh build/release
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if (($# < 1)); then
  echo "usage: $0 BUILD_DIR [ctest arguments...]" >&2
  exit 2
fi
BUILD_DIR=$1
shift
[[ -f $BUILD_DIR/CTestTestfile.cmake ]] || {
  echo "test_kafka_integration: $BUILD_DIR is not a CMake build directory" >&2
  exit 2
}

bash "$ROOT/scripts/kafka.sh" install
BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/riffle-kafka.XXXXXX")
cleanup() {
  bash "$ROOT/scripts/kafka.sh" stop "$BROKER_DIR" || true
  rm -rf "$BROKER_DIR"
}
trap cleanup EXIT INT TERM

started=$SECONDS
RIFFLE_KAFKA_BOOTSTRAP=$(bash "$ROOT/scripts/kafka.sh" start "$BROKER_DIR")
export RIFFLE_KAFKA_BOOTSTRAP
echo "test_kafka_integration: broker at $RIFFLE_KAFKA_BOOTSTRAP (up in $((SECONDS - started))s)"

# -L integration with no such test would pass silently: fail instead.
if ! ctest --test-dir "$BUILD_DIR" -N -L integration | grep -q 'Total Tests: [1-9]'; then
  echo "test_kafka_integration: no test with label integration in $BUILD_DIR" \
    "(build the kafka_test target)" >&2
  exit 1
fi
status=0
ctest --test-dir "$BUILD_DIR" -L integration --output-on-failure --timeout 600 "$@" || status=$?

# Then the end-to-end tests of `riffle serve` (tests/integration, pytest) against the same
# broker, with this build's binary, in the Python client's venv (made by
# scripts/test_python_client.sh) plus tests/integration/requirements.txt.
RIFFLE_BIN=${RIFFLE_BIN:-$(cd "$BUILD_DIR" && pwd)/service/riffle}
export RIFFLE_BIN
RIFFLE_TEST_ARTIFACTS=${RIFFLE_TEST_ARTIFACTS:-$(cd "$BUILD_DIR" && pwd)/test-artifacts}
export RIFFLE_TEST_ARTIFACTS
RIFFLE_CLIENT_INSTALL_ONLY=1 bash "$ROOT/scripts/test_python_client.sh" "$RIFFLE_BIN"
venv=$ROOT/.venv-client
requirements=$ROOT/tests/integration/requirements.txt
stamp=$venv/.riffle-integration.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "test_kafka_integration: installing $requirements into $venv" >&2
  "$venv/bin/python" -m pip --disable-pip-version-check --quiet install --only-binary=:all: \
    -r "$requirements"
  echo "$want" >"$stamp"
fi
rm -f "$RIFFLE_TEST_ARTIFACTS/dashboard.png"  # reported below only if this run saved it
"$venv/bin/pytest" -p no:cacheprovider -rxXs --durations=0 "$ROOT/tests/integration" || status=$?
if [[ -f $RIFFLE_TEST_ARTIFACTS/dashboard.png ]]; then
  echo "test_kafka_integration: dashboard screenshot: $RIFFLE_TEST_ARTIFACTS/dashboard.png"
fi
exit "$status"
