#!/usr/bin/env bash
# The demo of the service: installs what is needed, builds Riffle, then
#   1. starts `riffle serve` with docs/examples/riffle.yaml (a model declared up front, a
#      checkpoint store, the gRPC API on a free loopback port);
#   2. streams a real dataset (German credit applications) through it with the Python client:
#      every event predicted on arrival, its label sent 100 events later by id, learned from
#      the features the server cached at prediction time; live prequential metrics;
#   3. stops the server with SIGTERM (graceful: final checkpoint), starts it again, and shows
#      the model restored from its checkpoint answering exactly as before;
#   4. for comparison, the same learner evaluated offline with `riffle eval`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
bash scripts/build.sh release >/dev/null
RIFFLE_CLIENT_INSTALL_ONLY=1 bash scripts/test_python_client.sh build/release/service/riffle
riffle=build/release/service/riffle
python=.venv-client/bin/python
work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  rm -f "$work/ready"
  "$riffle" serve --config docs/examples/riffle.yaml --listen 127.0.0.1:0 \
    --checkpoint-dir "$work/checkpoints" --ready-file "$work/ready" 2>>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 100); do
    [[ -s "$work/ready" ]] && break
    sleep 0.1
  done
  address=$(cat "$work/ready")
  echo "riffle serve is listening on $address (log: serve.log below)"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid"
  server_pid=
}

echo "=== 1. riffle serve --config docs/examples/riffle.yaml"
start_server
echo
echo "=== 2. stream data/weka-credit-g.csv: predict each event, label it 100 events later by id"
"$python" clients/python/examples/credit_stream.py --target "$address" \
  --data data/weka-credit-g.csv --probe-out "$work/probe.json"
echo
echo "=== 3. SIGTERM (final checkpoint), restart, restore"
stop_server
start_server
"$python" clients/python/examples/credit_stream.py --target "$address" \
  --data data/weka-credit-g.csv --check "$work/probe.json"
stop_server
echo
echo "--- server log"
cat "$work/serve.log"
echo
echo "=== 4. the same learner, offline: riffle eval (labels immediately, not 100 events late)"
"$riffle" eval --data data/weka-credit-g.csv --target class --learner logreg \
  --set optimizer=adam --set lr=0.05 --no-progress | grep -E "^(rows|metric|  accuracy|  roc_auc|  log_loss) "
