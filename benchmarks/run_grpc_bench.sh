#!/usr/bin/env bash
# Runs the gRPC service benchmarks of docs/BENCHMARKS.md ("gRPC service") against a real
# `riffle serve` on loopback. Builds nothing: give it the binaries (defaults: the release build).
#
#   benchmarks/run_grpc_bench.sh [--riffle PATH] [--load PATH] [--repeats N] [--duration S]
#                                [--out DIR] [--only SCENARIO] [--server riffle|floor]
#                                [--floor PATH]
#
# Starts `riffle serve` on port 0 with a temporary checkpoint directory and one model
# (bench=logreg), runs each scenario --repeats times (grpc_load teaches the model before
# measuring), stops the server with SIGTERM and prints the median of each figure. The JSON of
# every run is kept in --out (default: a temporary directory, printed at the end).
# --server floor runs the same scenarios against benchmarks/grpc_floor_server (--floor PATH)
# instead: the same gRPC server setup with fixed answers and no model, the floor of a call.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
riffle="$root/build/release/service/riffle"
load="$root/build/release/benchmarks/grpc_load"
floor="$root/build/release/benchmarks/grpc_floor_server"
server_kind=riffle
repeats=3
duration=10
out=""
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --riffle) riffle="$2"; shift 2 ;;
    --load) load="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --server) server_kind="$2"; shift 2 ;;
    --floor) floor="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run_grpc_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$server_kind" in
  riffle) server_bin="$riffle"; server_name="riffle serve" ;;
  floor) server_bin="$floor"; server_name="grpc_floor_server" ;;
  *) echo "run_grpc_bench.sh: --server must be riffle or floor, got $server_kind" >&2; exit 2 ;;
esac
for bin in "$server_bin" "$load"; do
  [[ -x "$bin" ]] || { echo "run_grpc_bench.sh: $bin is not an executable (build it first)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "run_grpc_bench.sh: needs python3 for the medians" >&2; exit 2; }

work="$(mktemp -d -t riffle-grpc-bench.XXXXXX)"
[[ -n "$out" ]] || out="$work/results"
mkdir -p "$out"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work/ckpt" "$work/ready"
}
trap cleanup EXIT

if [[ "$server_kind" == floor ]]; then
  # No model, so no checkpoint directory or model to declare: every model name is served.
  "$floor" --listen 127.0.0.1:0 --ready-file "$work/ready" 2>"$work/server.log" &
else
  "$riffle" serve --listen 127.0.0.1:0 --ready-file "$work/ready" --checkpoint-dir "$work/ckpt" \
      --model bench=logreg --log-level warn 2>"$work/server.log" &
fi
server_pid=$!
for _ in $(seq 1 300); do
  [[ -s "$work/ready" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "$server_name exited:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$work/ready" ]] || { echo "$server_name did not become ready in 30 s" >&2; exit 1; }
target="$(head -n1 "$work/ready")"
echo "$server_name (pid $server_pid) on $target; $(nproc) cores; results in $out"

# name|arguments. The goals (issue 6): unary-max >= 50,000 predictions/s, unary-rate-10k p99 < 2 ms,
# stream-* >= 1,000,000 predictions/s. unary-max-x4 and the mixed runs are context.
scenarios=(
  "unary-rate-10k|unary-rate --rate 10000"
  "unary-max|unary-max --concurrency 64"
  "unary-max-x4|unary-max --concurrency 64 --instances 4"
  "stream-b200|stream --batch 200 --window 8 --streams 2"
  "stream-b1000|stream --batch 1000 --window 8 --streams 2"
  "stream-dense-b1000|stream --dense --batch 1000 --window 8 --streams 2"
  "unary-max-dense-x4|unary-max --dense --concurrency 64 --instances 4"
  "mixed-max|mixed --concurrency 64 --learn-fraction 0.2"
  "mixed-rate-10k|mixed --rate 10000 --learn-fraction 0.2"
)
for entry in "${scenarios[@]}"; do
  name="${entry%%|*}"
  args="${entry#*|}"
  [[ -z "$only" || "$only" == "$name" ]] || continue
  for i in $(seq 1 "$repeats"); do
    echo
    echo "== $name, run $i/$repeats: $(uptime)"
    echo "\$ grpc_load $args --target $target --duration $duration --server-pid $server_pid"
    # shellcheck disable=SC2086  # $args is a list of words
    "$load" $args --target "$target" --duration "$duration" --server-pid "$server_pid" \
        --json "$out/$name.$i.json" || echo "(run $i of $name reported failed calls)"
  done
done

kill -TERM "$server_pid"
wait "$server_pid" || echo "$server_name exited with status $?" >&2
server_pid=""

echo
echo "== $server_name: medians of $repeats runs ($(uptime))"
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path).rsplit(".", 2)[0]
    with open(path) as f:
        runs.setdefault(name, []).append(json.load(f))
def med(rs, f):
    return statistics.median(f(r) for r in rs)
print(f"{'scenario':16} {'pred/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}"
      f" {'learn/s':>8} {'learn p99':>9} {'client':>6} {'server':>6} {'failed':>6}")
for name, rs in runs.items():
    lat = lambda k: (lambda r: r["predict"]["latency"][k])
    learn = med(rs, lambda r: r["learn"]["per_second"])
    lp99 = med(rs, lambda r: r["learn"]["latency"]["p99_ms"]) if learn else 0
    print(f"{name:16} {med(rs, lambda r: r['predictions_per_second']):10.0f}"
          f" {med(rs, lat('p50_ms')):8.3f} {med(rs, lat('p99_ms')):8.3f}"
          f" {med(rs, lat('p999_ms')):9.3f} {med(rs, lat('max_ms')):8.3f}"
          f" {learn:8.0f} {lp99:9.3f}"
          f" {med(rs, lambda r: r['client_cpu_cores']):6.2f} {med(rs, lambda r: r['server_cpu_cores']):6.2f}"
          f" {sum(r['predict']['failed'] + r['learn']['failed'] for r in rs):6d}")
print("(stream: latency is per message of `batch` instances; client/server: CPU cores used)")
PY
