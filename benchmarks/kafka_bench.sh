#!/usr/bin/env bash
# The Kafka path benchmark of docs/BENCHMARKS.md ("Kafka path: topic to predictions"): a real
# broker, `riffle serve` scoring a topic with logistic regression, River's Python pipeline on
# the same topic, and the event-to-prediction latency at a fixed rate. Builds nothing.
#
#   bash benchmarks/kafka_bench.sh [--events N] [--python-events M] [--rate R]
#                                  [--latency-seconds S] [--batch-size B] [--riffle PATH]
#                                  [--perf SECONDS] [--scrape-pairs K] [--decode-pairs K] [--floor]
#                                  [--passthrough PATH] [--keep]
#
#  1. installs the broker jars (scripts/kafka.sh install), the benchmark venv
#     (scripts/setup_venv.sh: .venv with River) and confluent-kafka into it, idempotently;
#  2. starts a broker in a temporary directory (stopped on exit);
#  3. writes N rows (default 1,000,000) of `riffle gen hyperplane` with 30 features and
#     publishes them with `riffle replay` (labels inline) to a 1-partition topic;
#  4. throughput: `riffle serve` with one logreg model (SGD, lr 0.01: River's defaults) reads
#     the topic from the earliest offset and publishes a prediction per event; /metrics is
#     sampled every 0.25 s until every prediction is delivered. Events/s is the slope between
#     10% and 90% of N; also first event to last, and the server's CPU time;
#  5. the Python baseline (benchmarks/kafka_python_pipeline.py pipeline: confluent-kafka +
#     River StandardScaler | LogisticRegression) on the first M events (default 50,000) of the
#     same topic; ratio = Riffle events/s / Python events/s;
#  6. latency: first the floor, a plain consumer's publication-to-receipt time at the same
#     rate without Riffle (5 s); then a fresh server on an empty topic, `riffle replay --rate R`
#     (default 10,000/s) for S seconds (default 20), the histogram
#     riffle_kafka_event_to_prediction_seconds (record timestamp to Riffle's handling of the
#     prediction's delivery report) and, exactly, the broker's append time of each prediction
#     (a LogAppendTime topic) minus its event's publication time;
#  7. prints a summary table. Results (JSON, /metrics pages, logs) stay in the printed directory;
#     the broker's data and the CSV are deleted unless --keep.
#
# --decode-pairs K (default 0) adds, after step 4 (and the scrape pairs), K pairs of
# throughput runs on the same topic (fresh server and checkpoints each) with kafka.decode_thread
# false, then true, and prints events/s of each, their ratio and the busiest threads' CPU.
#
# --scrape-pairs K (default 0) adds, after step 4, K pairs of throughput runs on the same topic
# (fresh server and checkpoints each): one as in step 4, one with a monitoring load on the HTTP
# endpoint (kafka_python_pipeline.py scrape: /metrics 10 times a second and the dashboard's
# data once a second, on top of the 4 samples a second every run takes), alternating, and
# prints events/s of each with the with/without ratio.
#
# --floor adds, after step 4, the floor of the Kafka path: benchmarks/kafka_passthrough (path:
# --passthrough PATH, default build/release/benchmarks/kafka_passthrough) reads the same topic
# with Riffle's Kafka clients and the throughput run's settings and produces each record
# unchanged to a fresh topic: no decoding, no model. Its events/s (slope between 10% and 90% of
# N delivered), CPU µs/event, the broker's CPU and the ratio Riffle / floor go to
# results/floor.json and the summary.
#
# --perf SECONDS also records `perf record --call-graph dwarf` of the throughput server for that
# long once events flow, into results/perf.data and perf-report.txt (this slows the server:
# that run's throughput is not a clean figure).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
riffle="$root/build/release/service/riffle"
events=1000000
python_events=50000
rate=10000
latency_seconds=20
batch_size=5000
perf_seconds=0
scrape_pairs=0
decode_pairs=0
floor=0
passthrough="$root/build/release/benchmarks/kafka_passthrough"
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --python-events) python_events="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --latency-seconds) latency_seconds="$2"; shift 2 ;;
    --batch-size) batch_size="$2"; shift 2 ;;
    --riffle) riffle="$2"; shift 2 ;;
    --perf) perf_seconds="$2"; shift 2 ;;
    --scrape-pairs) scrape_pairs="$2"; shift 2 ;;
    --decode-pairs) decode_pairs="$2"; shift 2 ;;
    --floor) floor=1; shift ;;
    --passthrough) passthrough="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "kafka_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ ! -x "$riffle" ]]; then
  echo "kafka_bench.sh: $riffle is not an executable (build it first)" >&2
  exit 2
fi
floor_args=""
if ((floor)); then
  if [[ ! -x "$passthrough" ]]; then
    echo "kafka_bench.sh: $passthrough is not an executable (build kafka_passthrough first)" >&2
    exit 2
  fi
  floor_args=" --floor --passthrough $passthrough"
fi
((python_events <= events)) || python_events=$events
# The latency runs replay the first rows of the same CSV, so they are capped at N rows.
latency_events=$((rate * latency_seconds))
((latency_events <= events)) || latency_events=$events

log() { echo "kafka_bench: $*" >&2; }

# 1. What it needs.
bash "$root/scripts/kafka.sh" install
bash "$root/scripts/setup_venv.sh"
python="$root/.venv/bin/python"
if ! "$python" -c 'import confluent_kafka' 2>/dev/null; then
  log "installing confluent-kafka into $root/.venv"
  "$python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    confluent-kafka==2.16.1
fi
helper=("$python" "$root/benchmarks/kafka_python_pipeline.py")

work="$(mktemp -d -t riffle-kafka-bench.XXXXXX)"
results="$work/results"
mkdir -p "$results"
broker_dir="$work/kafka"
server_pid=""
perf_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  stop_server
  bash "$root/scripts/kafka.sh" stop "$broker_dir" >/dev/null 2>&1 || true
  if ((keep == 0)); then rm -rf "$broker_dir" "$work/data.csv" "$work"/ckpt-*; fi
}
trap cleanup EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command: bash benchmarks/kafka_bench.sh --events $events --python-events $python_events" \
    "--rate $rate --latency-seconds $latency_seconds --batch-size $batch_size$floor_args" \
    "--scrape-pairs $scrape_pairs --decode-pairs $decode_pairs"
  echo "riffle: $riffle ($(stat -c %y "$riffle"))"
  if ((floor)); then echo "passthrough: $passthrough ($(stat -c %y "$passthrough"))"; fi
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "python: $("$python" -c 'import sys, river, confluent_kafka as ck
print(sys.version.split()[0], "river", river.__version__, "confluent-kafka", ck.__version__,
      "librdkafka", ck.libversion()[0])')"
} >"$results/machine.txt"
uptimes() { echo "$1: $(uptime)" | tee -a "$results/machine.txt" >&2; }
uptimes "start"

# 2. The broker.
bootstrap="$(bash "$root/scripts/kafka.sh" start "$broker_dir")"
log "broker at $bootstrap; results in $results"
"${helper[@]}" create-topics --bootstrap "$bootstrap" bench.events bench.predictions \
  bench.dlq bench.python-predictions lat.events lat.dlq lat.probe
# The broker stamps each prediction with the time it is appended to the log: event
# publication to that stamp is the latency a downstream consumer sees, without a consumer.
"${helper[@]}" create-topics --bootstrap "$bootstrap" \
  --config message.timestamp.type=LogAppendTime lat.predictions

# 3. The dataset, on a 1-partition topic.
"$riffle" gen hyperplane --rows "$events" --seed 1 --set n_features=30 >"$work/data.csv"
log "publishing $events events ($(du -h "$work/data.csv" | cut -f1) of CSV) to bench.events"
"$riffle" replay --data "$work/data.csv" --topic bench.events --bootstrap "$bootstrap" \
  --label class --no-progress --set-property linger.ms=20 --set-property batch.num.messages=10000 \
  --set-property queue.buffering.max.messages=1000000 | tee "$results/publish.txt" >&2
published="$("${helper[@]}" count --bootstrap "$bootstrap" --topic bench.events)"
if [[ "$published" != "$events" ]]; then
  log "bench.events holds $published records, not $events"
  exit 1
fi

# Starts `riffle serve` with config $1 (log $2) and waits for its HTTP endpoint: sets
# server_pid and http.
start_server() {
  rm -f "$work/http-ready"
  "$riffle" serve --config "$1" --kafka "$bootstrap" --listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --http-ready-file "$work/http-ready" 2>"$2" &
  server_pid=$!
  for _ in $(seq 100); do
    [[ -s "$work/http-ready" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { log "riffle serve exited:"; cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$work/http-ready" ]] || { log "riffle serve did not start in 10 s"; exit 1; }
  http="$(cat "$work/http-ready")"
}
# CPU ticks (user + system) of process $1.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# One line: epoch seconds, events_total, predictions_total of model $1, server CPU ticks,
# broker CPU ticks.
sample() {
  local ticks broker_ticks
  ticks="$(cpu_ticks "$server_pid")"
  broker_ticks="$(cpu_ticks "$(cat "$broker_dir/kafka.pid")")"
  curl -sf "http://$http/metrics" |
    awk -v t="$(date +%s.%N)" -v cpu="$ticks" -v b="$broker_ticks" -v m="$1" '
    $1 == "riffle_kafka_events_total{model=\"" m "\"}" { e = $2 }
    $1 == "riffle_kafka_predictions_total{model=\"" m "\"}" { p = $2 }
    END { printf "%s %d %d %d %d\n", t, e, p, cpu, b }'
}
# CPU seconds of the server's threads, busiest first: "name seconds" lines.
thread_cpu() {
  local t
  for t in /proc/"$server_pid"/task/*; do
    echo "$(cat "$t/comm") $(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "$t/stat")"
  done | sort -k2 -g -r | head -5
}
# Samples every 0.25 s into $2 until model $1 has delivered $3 predictions (fails after 30 s
# without progress).
wait_for_predictions() {
  local model=$1 file=$2 want=$3 last="" still=0 line
  : >"$file"
  while :; do
    line="$(sample "$model")"
    echo "$line" >>"$file"
    read -r _ e p _ <<<"$line"
    ((p >= want)) && return 0
    if [[ "$e $p" == "$last" ]]; then
      if ((++still > 120)); then
        log "$model: no progress for 30 s at $e events, $p predictions"
        return 1
      fi
    else
      still=0
    fi
    last="$e $p"
    if ((perf_seconds > 0 && e > 0)) && [[ "$model" == tput && -z "$perf_pid" ]]; then
      perf record -F 499 --call-graph dwarf,32768 -o "$results/perf.data" -p "$server_pid" \
        -- sleep "$perf_seconds" \
        >"$results/perf-record.log" 2>&1 &
      perf_pid=$!
    fi
    sleep 0.25
  done
}

# 4. Riffle's throughput.
cat >"$work/throughput.yaml" <<EOF
# kafka_bench.sh throughput run: one partition read from the beginning, big fetches and
# batches, predictions batched by the producer.
checkpoint: {dir: $work/ckpt-throughput, every_events: 100000, every_seconds: 60}
log: {level: info}
kafka:
  batch_size: $batch_size
  consumer_properties:
    fetch.max.bytes: 52428800
    max.partition.fetch.bytes: 10485760
  producer_properties:
    linger.ms: 5
    batch.num.messages: 10000
models:
  - name: tput
    spec:
      learner: logreg
      learner_options: {optimizer: sgd, lr: 0.01}
    kafka:
      events_topic: bench.events
      predictions_topic: bench.predictions
      dead_letter_topic: bench.dlq
      start: earliest
EOF
uptimes "throughput run"
start_server "$work/throughput.yaml" "$results/serve-throughput.log"
log "riffle serve (pid $server_pid) scoring bench.events"
wait_for_predictions tput "$results/throughput-samples.txt" "$events"
curl -sf "http://$http/metrics" >"$results/metrics-throughput.txt"
thread_cpu >"$results/threads-throughput.txt"
stop_server
if [[ -n "$perf_pid" ]]; then
  wait "$perf_pid" || true
  perf_pid=""
  # Inclusive time per function (children included), call graphs folded away.
  perf report -i "$results/perf.data" --children --sort symbol -g none --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | cut -c1-180 | head -80 >"$results/perf-report.txt" || true
  log "perf profile: $results/perf-report.txt"
fi
"${helper[@]}" rate --samples "$results/throughput-samples.txt" --events "$events" \
  >"$results/riffle_throughput.json"
cat "$results/riffle_throughput.json" >&2
predicted="$("${helper[@]}" count --bootstrap "$bootstrap" --topic bench.predictions)"
log "bench.predictions holds $predicted records for $events events"
echo "{\"prediction_records\": $predicted}" >"$results/throughput_topic.json"

# 4a. The floor (--floor): a consume -> produce passthrough of the same topic with Riffle's
# Kafka clients, the throughput run's batch_size and the consumer and producer properties of
# throughput.yaml (keep them in step), into a fresh topic. Broker CPU is taken around the
# whole process (its connection and metadata requests included: small against ~1 M records).
floor_summary=""
if ((floor)); then
  uptimes "floor run"
  "${helper[@]}" create-topics --bootstrap "$bootstrap" bench.floor
  log "kafka_passthrough: bench.events to bench.floor"
  broker_ticks_before="$(cpu_ticks "$(cat "$broker_dir/kafka.pid")")"
  "$passthrough" --bootstrap "$bootstrap" --topic bench.events --out-topic bench.floor \
    --events "$events" --batch-size "$batch_size" \
    --consumer-set fetch.max.bytes=52428800 --consumer-set max.partition.fetch.bytes=10485760 \
    --producer-set linger.ms=5 --producer-set batch.num.messages=10000 \
    >"$results/passthrough.json" 2>"$results/passthrough.log" ||
    { log "kafka_passthrough failed:"; cat "$results/passthrough.log" >&2; exit 1; }
  broker_ticks_after="$(cpu_ticks "$(cat "$broker_dir/kafka.pid")")"
  floor_records="$("${helper[@]}" count --bootstrap "$bootstrap" --topic bench.floor)"
  log "bench.floor holds $floor_records records for $events events"
  # The passthrough's own JSON, the broker's CPU, and Riffle / floor on the same slope (the
  # floor's events/s from first record to last delivery should the run be too short for one).
  "$python" - "$results/passthrough.json" "$results/riffle_throughput.json" \
    "$((broker_ticks_after - broker_ticks_before))" "$(getconf CLK_TCK)" "$floor_records" \
    >"$results/floor.json" <<'EOF'
import json, sys
floor = json.load(open(sys.argv[1]))
riffle = json.load(open(sys.argv[2]))
broker_seconds = int(sys.argv[3]) / int(sys.argv[4])
floor_eps = floor["events_per_second_middle_80"] or floor["events_per_second"]
floor.update({
    "broker_cpu_seconds": broker_seconds,
    "broker_cpu_us_per_event": broker_seconds / floor["events"] * 1e6,
    "output_records": int(sys.argv[5]),
    "riffle_events_per_second_middle_80": riffle["events_per_second_middle_80"],
    "riffle_over_floor": riffle["events_per_second_middle_80"] / floor_eps,
})
print(json.dumps(floor))
EOF
  cat "$results/floor.json" >&2
  # Rows for the summary table (printed right after it, so they join it).
  floor_summary="$("$python" - "$results/floor.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
middle = f["events_per_second_middle_80"]
eps = middle or f["events_per_second"]
span = "middle 80%" if middle else "first record to last delivery"
verdict = "goal within the floor" if eps >= 200_000 else "floor below the goal"
print("| floor: kafka_passthrough events/s, same topic (Riffle's clients and settings, no "
      "decoding, no model; %s) | %s | >= 200,000 | %s |" % (span, f"{eps:,.0f}", verdict))
print("| floor: kafka_passthrough process CPU | %.2f cores, %.2f µs/event | | |"
      % (f["cpu_cores"], f["cpu_us_per_event"]))
print("| floor: broker CPU, whole passthrough run | %.2f µs/event | | |"
      % f["broker_cpu_us_per_event"])
print("| ratio Riffle / floor | %.2f | | |" % f["riffle_over_floor"])
EOF
)"
fi

# Events/s (middle 80%) of pair run $1 from its samples; its rate JSON goes to results/$1.json.
pair_run_rate() {
  "${helper[@]}" rate --samples "$results/$1-samples.txt" --events "$events" >"$results/$1.json"
  "$python" -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["events_per_second_middle_80"]))' \
    "$results/$1.json"
}

# 4b. The same throughput runs with and without a monitoring load (--scrape-pairs).
scrape_summary=""
for pair in $(seq "$scrape_pairs"); do
  for with_scraper in 0 1; do
    run="scrape-$pair-$with_scraper"
    sed -e "s|ckpt-throughput|ckpt-$run|" -e "s|name: tput|name: s$pair$with_scraper|" \
      "$work/throughput.yaml" >"$work/$run.yaml"
    uptimes "$run"
    start_server "$work/$run.yaml" "$results/serve-$run.log"
    scraper_pid=""
    if ((with_scraper)); then
      "${helper[@]}" scrape --address "$http" --rate 10 --dashboard-rate 1 \
        >"$results/$run-scraper.json" &
      scraper_pid=$!
    fi
    wait_for_predictions "s$pair$with_scraper" "$results/$run-samples.txt" "$events"
    if [[ -n "$scraper_pid" ]]; then
      kill -TERM "$scraper_pid"
      wait "$scraper_pid" || true
    fi
    stop_server
    rate_now="$(pair_run_rate "$run")"
    if ((with_scraper)); then
      scrape_summary+="| $pair | $without | $rate_now | $("$python" -c "print(f'{$rate_now / $without:.3f}')") | $("$python" -c 'import json, sys
s = json.load(open(sys.argv[1]))
print("; ".join("%s: %d requests, %d failed, mean %.1f ms" % (p, v["requests"], v["failures"], v["mean_ms"] or 0) for p, v in s.items()))' "$results/$run-scraper.json") |"$'\n'
    else
      without=$rate_now
    fi
  done
done

# 4c. The same throughput run with the events decoded on the consume thread and on the decode
# thread (kafka.decode_thread false, then true), alternating (--decode-pairs).
decode_summary=""
for pair in $(seq "$decode_pairs"); do
  for decode_thread in false true; do
    run="decode-$pair-$decode_thread"
    sed -e "s|ckpt-throughput|ckpt-$run|" -e "s|name: tput|name: d$pair$decode_thread|" \
      -e "s|^  batch_size: .*|&\n  decode_thread: $decode_thread|" \
      "$work/throughput.yaml" >"$work/$run.yaml"
    uptimes "$run"
    start_server "$work/$run.yaml" "$results/serve-$run.log"
    wait_for_predictions "d$pair$decode_thread" "$results/$run-samples.txt" "$events"
    thread_cpu >"$results/threads-$run.txt"
    stop_server
    rate_now="$(pair_run_rate "$run")"
    busiest="$(head -2 "$results/threads-$run.txt" | awk '{ printf "%s%s %.2f s", sep, $1, $2; sep = ", " }')"
    if [[ "$decode_thread" == true ]]; then
      decode_summary+="| $pair | $inline_rate | $rate_now | $("$python" -c "print(f'{$rate_now / $inline_rate:.3f}')") | $inline_threads | $busiest |"$'\n'
    else
      inline_rate=$rate_now
      inline_threads=$busiest
    fi
  done
done

# 5. The Python baseline, same topic.
uptimes "python run"
log "Python pipeline on the first $python_events events of bench.events"
"${helper[@]}" pipeline --bootstrap "$bootstrap" --topic bench.events \
  --out-topic bench.python-predictions --events "$python_events" >"$results/python_pipeline.json"
cat "$results/python_pipeline.json" >&2

# 6. Latency at a fixed rate. First the floor: a plain consumer's publication-to-receipt time
# on a topic replayed at the same rate for 5 s, without Riffle.
uptimes "probe run"
probe_events=$((rate * 5))
((probe_events <= events)) || probe_events=$events
"${helper[@]}" probe --bootstrap "$bootstrap" --topic lat.probe --records "$probe_events" \
  >"$results/latency_probe.json" &
probe_pid=$!
sleep 2  # the probe's consumer is assigned and fetching
"$riffle" replay --data "$work/data.csv" --topic lat.probe --bootstrap "$bootstrap" \
  --label class --rate "$rate" --limit "$probe_events" --no-progress \
  --set-property linger.ms=1 >"$results/probe-replay.txt"
wait "$probe_pid"
cat "$results/latency_probe.json" >&2

cat >"$work/latency.yaml" <<EOF
# kafka_bench.sh latency run: answer fetches at once, send predictions at once.
checkpoint: {dir: $work/ckpt-latency, every_events: 100000, every_seconds: 60}
log: {level: info}
kafka:
  batch_size: 1000
  consumer_properties:
    fetch.wait.max.ms: 5
  producer_properties:
    linger.ms: 1
models:
  - name: lat
    spec:
      learner: logreg
      learner_options: {optimizer: sgd, lr: 0.01}
    kafka:
      events_topic: lat.events
      predictions_topic: lat.predictions
      dead_letter_topic: lat.dlq
      start: earliest
EOF
uptimes "latency run"
start_server "$work/latency.yaml" "$results/serve-latency.log"
for _ in $(seq 100); do
  curl -sf "http://$http/metrics" | grep -q '^riffle_kafka_connected{model="lat"} 1' && break
  sleep 0.1
done
log "riffle replay --rate $rate of $latency_events events to lat.events (replay linger.ms=1)"
"$riffle" replay --data "$work/data.csv" --topic lat.events --bootstrap "$bootstrap" \
  --label class --rate "$rate" --limit "$latency_events" --no-progress \
  --set-property linger.ms=1 | tee "$results/latency-replay.txt" >&2
wait_for_predictions lat "$results/latency-samples.txt" "$latency_events"
curl -sf "http://$http/metrics" >"$results/metrics-latency.txt"
stop_server
# When the checkpoints were written (for outliers in the latency run).
stat -c '%y %s %n' "$work"/ckpt-latency/*/ckpt-* >"$results/checkpoints-latency.txt" 2>/dev/null ||
  true
uptimes "end"
awk '/^events published/ { e = $3 } /^seconds/ { s = $2 }
  END { printf "{\"events\": %d, \"seconds\": %s, \"rate\": %f}\n", e, s, e / s }' \
  "$results/latency-replay.txt" >"$results/latency_replay.json"
"${helper[@]}" histogram --metrics "$results/metrics-latency.txt" --model lat \
  >"$results/latency_histogram.json"
"${helper[@]}" latency --bootstrap "$bootstrap" --topic lat.predictions \
  >"$results/latency_records.json"
cat "$results/latency_histogram.json" "$results/latency_records.json" >&2

# 7. Summary.
echo
cat "$results/machine.txt"
echo "riffle settings: throughput batch_size $batch_size, fetch.max.bytes 50 MB,"\
  "max.partition.fetch.bytes 10 MB, producer linger.ms 5, batch.num.messages 10000;"\
  "latency batch_size 1000, fetch.wait.max.ms 5, producer linger.ms 1 (replay linger.ms 1);"\
  "checkpoints every 100,000 events or 60 s"
echo
"${helper[@]}" summary --results "$results"
if [[ -n "$floor_summary" ]]; then echo "$floor_summary"; fi
if [[ -n "$scrape_summary" ]]; then
  echo
  echo "| pair | events/s without | with 10 scrapes/s + dashboard 1/s | ratio | scraper |"
  echo "|---|---:|---:|---:|---|"
  printf '%s' "$scrape_summary"
fi
if [[ -n "$decode_summary" ]]; then
  echo
  echo "| pair | events/s, decoded on the consume thread | on the decode thread | ratio |"\
    "busiest threads (consume thread) | busiest threads (decode thread) |"
  echo "|---|---:|---:|---:|---|---|"
  printf '%s' "$decode_summary"
fi
echo
echo "results: $results"
