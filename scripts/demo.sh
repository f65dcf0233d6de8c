#!/usr/bin/env bash
# The demo of the service: installs what is needed, builds Riffle, then
#   A. Kafka in, Kafka out (docs/KAFKA.md):
#      1. starts a real single-node Apache Kafka broker (scripts/kafka.sh, jars from Maven
#         Central) and `riffle serve` with docs/examples/riffle-kafka.yaml and its HTTP
#         endpoint on loopback, and prints the address of its dashboard (docs/DASHBOARD.md);
#      2. replays a real dataset (German credit applications) into the "credit" topic with
#         `riffle replay`, each label published 2 seconds after its event on "credit.labels"
#         (a fraud confirmation arriving late), and prints the live metrics while it runs:
#         events, labels joined, rolling accuracy;
#      3. shows prediction records and the flagged ones read back from Kafka, then stops the
#         server (SIGTERM: the batch in hand finishes, outputs are flushed, final checkpoint);
#   B. the gRPC API:
#      4. starts `riffle serve` with docs/examples/riffle.yaml and streams the same dataset
#         through the Python client: every event predicted on arrival, its label sent 100
#         events later by id, learned from the features the server cached at prediction time;
#      5. stops the server (final checkpoint), starts it again, and shows the model restored
#         from its checkpoint answering exactly as before;
#      6. for comparison, the same learner evaluated offline with `riffle eval`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
bash scripts/build.sh release >/dev/null
RIFFLE_CLIENT_INSTALL_ONLY=1 bash scripts/test_python_client.sh build/release/service/riffle
riffle=build/release/service/riffle
python=.venv-client/bin/python
work=$(mktemp -d)
server_pid=
broker_dir=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
  if [[ -n "$broker_dir" ]]; then bash scripts/kafka.sh stop "$broker_dir" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Waits up to 10 s for a file written by `riffle serve` once it listens.
wait_for_file() {
  for _ in $(seq 100); do
    [[ -s "$1" ]] && return 0
    sleep 0.1
  done
  echo "demo: $1 did not appear; server log:" >&2
  cat "$work"/*.log >&2
  exit 1
}

# One line of live metrics from the HTTP endpoint.
metric() { curl -s "http://$http/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
show_metrics() {
  printf '  events %-6s labels joined %-6s rolling accuracy %-8s dead letters %s\n' \
    "$(metric 'riffle_kafka_events_total{model="credit"}')" \
    "$(metric 'riffle_kafka_labels_joined_total{model="credit"}')" \
    "$(metric 'riffle_model_accuracy{model="credit",window="rolling"}')" \
    "$(curl -s "http://$http/metrics" | awk '$1 ~ /^riffle_kafka_dead_letters_total/ { n += $2 } END { print n + 0 }')"
}

echo "=== A1. a Kafka broker, and riffle serve --config docs/examples/riffle-kafka.yaml"
bash scripts/kafka.sh install
broker_dir="$work/kafka"
bootstrap=$(bash scripts/kafka.sh start "$broker_dir")
echo "Kafka broker at $bootstrap"
"$riffle" serve --config docs/examples/riffle-kafka.yaml --listen 127.0.0.1:0 \
  --kafka "$bootstrap" --checkpoint-dir "$work/kafka-checkpoints" --ready-file "$work/ready" \
  --http-listen 127.0.0.1:0 --http-ready-file "$work/http-ready" 2>>"$work/kafka-serve.log" &
server_pid=$!
wait_for_file "$work/http-ready"
http=$(cat "$work/http-ready")
echo "riffle serve: gRPC on $(cat "$work/ready"), metrics on http://$http/metrics"
echo "dashboard: http://$http/"
echo
echo "=== A2. riffle replay data/weka-credit-g.csv at 250 events/s, each label 2 s after its event"
"$riffle" replay --data data/weka-credit-g.csv --topic credit --bootstrap "$bootstrap" \
  --label class --label-delay 2 --labels-topic credit.labels --rate 250 --no-progress \
  >"$work/replay.out" 2>&1 &
replay_pid=$!
while kill -0 "$replay_pid" 2>/dev/null; do
  sleep 1
  show_metrics
done
wait "$replay_pid" || { cat "$work/replay.out"; exit 1; }
for _ in $(seq 50); do
  [[ "$(metric 'riffle_kafka_labels_joined_total{model="credit"}')" == 1000 ]] && break
  sleep 0.2
done
show_metrics
sed 's/^/  replay: /' "$work/replay.out"
# Run by hand: the server (and its dashboard) stays up until Enter, to look at the page.
if [[ -t 0 ]]; then
  read -r -p "dashboard: http://$http/ (press Enter to go on and stop the server) " _
fi
echo
echo "=== A3. what came out: predictions (first 3 of 1000) and flagged applications (first 3)"
kcat -C -q -b "$bootstrap" -t credit.predictions -o beginning -c 3 -e
echo "  flagged (P(bad) >= 0.7): $(kcat -C -q -b "$bootstrap" -t credit.flagged -o beginning -e | wc -l) applications"
kcat -C -q -b "$bootstrap" -t credit.flagged -o beginning -c 3 -e
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
echo "--- server log"
cat "$work/kafka-serve.log"
bash scripts/kafka.sh stop "$broker_dir" >/dev/null
broker_dir=
echo

start_server() {
  rm -f "$work/ready"
  "$riffle" serve --config docs/examples/riffle.yaml --listen 127.0.0.1:0 \
    --checkpoint-dir "$work/checkpoints" --ready-file "$work/ready" 2>>"$work/serve.log" &
  server_pid=$!
  wait_for_file "$work/ready"
  address=$(cat "$work/ready")
  echo "riffle serve is listening on $address (log: serve.log below)"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid"
  server_pid=
}

echo "=== B4. riffle serve --config docs/examples/riffle.yaml"
start_server
echo
echo "=== B4. stream data/weka-credit-g.csv: predict each event, label it 100 events later by id"
"$python" clients/python/examples/credit_stream.py --target "$address" \
  --data data/weka-credit-g.csv --probe-out "$work/probe.json"
echo
echo "=== B5. SIGTERM (final checkpoint), restart, restore"
stop_server
start_server
"$python" clients/python/examples/credit_stream.py --target "$address" \
  --data data/weka-credit-g.csv --check "$work/probe.json"
stop_server
echo
echo "--- server log"
cat "$work/serve.log"
echo
echo "=== B6. the same learner, offline: riffle eval (labels immediately, not 100 events late)"
"$riffle" eval --data data/weka-credit-g.csv --target class --learner logreg \
  --set optimizer=adam --set lr=0.05 --no-progress | grep -E "^(rows|metric|  accuracy|  roc_auc|  log_loss) "
