#!/usr/bin/env bash
# The demo: installs what is needed, builds Riffle and runs a prequential evaluation of online
# logistic regression on a bundled dataset (German credit, 1,000 rows, nominal and numeric
# columns), then on a 200,000-row synthetic stream piped through standard input.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
bash scripts/build.sh release >/dev/null
riffle=build/release/service/riffle

echo "\$ riffle eval --data data/weka-credit-g.csv --target class --learner logreg"
"$riffle" eval --data data/weka-credit-g.csv --target class --learner logreg
echo
echo "\$ <200,000-row synthetic logistic stream> | riffle eval --data - --target target --set optimizer=adam --json"
python3 - <<'PY' | "$riffle" eval --data - --target target --set optimizer=adam --json
# A dependency-free stand-in for benchmarks/make_stream.py (which needs numpy): labels from a
# fixed logistic model over 20 features, 1% label noise.
import math, random
rng = random.Random(1)
w = [rng.uniform(-1, 1) if j % 4 else 0.0 for j in range(20)]
print(",".join(f"x{j}" for j in range(20)) + ",target")
out = []
for i in range(200000):
    x = [rng.gauss(0, 1) for _ in range(20)]
    z = sum(a * b for a, b in zip(w, x))
    y = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
    if rng.random() < 0.01:
        y = 1 - y
    out.append(",".join(f"{v:.5f}" for v in x) + f",{y}")
    if len(out) == 10000:
        print("\n".join(out)); out = []
if out:
    print("\n".join(out))
PY
