#!/usr/bin/env bash
# The demo: installs what is needed, builds Riffle, then
#   1. a prequential evaluation of online logistic regression on a bundled dataset (German
#      credit: numeric and nominal columns, one-hot encoded and standard-scaled online);
#   2. a 200,000-row synthetic stream piped through standard input, checkpointed every 50,000
#      rows into a checkpoint store, and the newest checkpoint inspected;
#   3. offline training on one half of the stream, then continued training from the saved
#      checkpoint on the other half — which ends with exactly the model of one pass.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
bash scripts/build.sh release >/dev/null
riffle=build/release/service/riffle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A dependency-free stream generator: labels from a fixed logistic model over 20 features
# (a quarter of them irrelevant), 1% label noise.
python3 - >"$work/stream.csv" <<'PY'
import math, random
rng = random.Random(1)
w = [rng.uniform(-1, 1) if j % 4 else 0.0 for j in range(20)]
print(",".join(f"x{j}" for j in range(20)) + ",target")
rows = []
for i in range(200000):
    x = [rng.gauss(0, 1) for _ in range(20)]
    z = sum(a * b for a, b in zip(w, x))
    y = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
    if rng.random() < 0.01:
        y = 1 - y
    rows.append(",".join(f"{v:.5f}" for v in x) + f",{y}")
print("\n".join(rows))
PY

run() {
  echo
  echo "\$ riffle $*"
  "$riffle" "$@"
}

run eval --data data/weka-credit-g.csv --target class --learner logreg
cat "$work/stream.csv" | run eval --data - --target target --no-progress \
  --checkpoint-dir "$work/store" --checkpoint-every-rows 50000
newest=$(ls "$work/store" | sort | tail -n 1)
run ckpt inspect "$work/store/$newest"

head -n 100001 "$work/stream.csv" >"$work/first.csv"
{ head -n 1 "$work/stream.csv"; tail -n 100000 "$work/stream.csv"; } >"$work/second.csv"
echo
echo "\$ riffle eval --data first-half.csv --target target --save-checkpoint model.riffle"
"$riffle" eval --data "$work/first.csv" --target target --no-progress \
  --save-checkpoint "$work/model.riffle" | grep -E "^rows|accuracy"
echo
echo "\$ riffle eval --data second-half.csv --target target --load-checkpoint model.riffle"
"$riffle" eval --data "$work/second.csv" --target target --no-progress \
  --load-checkpoint "$work/model.riffle" | grep -E "^rows|accuracy|resumed"
echo
echo "(the last accuracy equals the single pass above: the checkpoint carried the whole state)"
