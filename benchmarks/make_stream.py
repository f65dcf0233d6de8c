#!/usr/bin/env python3
"""Writes a long synthetic binary-classification stream as CSV, deterministically.

The file has a header row, numeric feature columns ``x0 .. x{F-1}`` and a label column
``target`` holding 0 or 1:

* Features: ``x_j = offset_j + scale_j * z_j`` with ``z_j ~ N(0, 1)``. Offsets and scales differ
  a lot between columns, so a learner without feature scaling is at a disadvantage.
* Label: ``y ~ Bernoulli(sigmoid(w . z + b))``, then flipped with probability ``--noise``.
  A quarter of the weights (rounded down) are exactly 0: those features are irrelevant.

Everything comes from ``--seed``. Parameters, features and label draws use three independent
generators spawned from that seed, and rows are drawn in order, so the file depends only on
(rows, features, seed, noise), not on the chunk size used to write it. Values are written
with ``%.6g``.

If the output file already exists with the expected header and row count it is reused, not
rewritten (the seed and noise cannot be checked: put them in the file name).

Example::

    make_stream.py --rows 1000000 --features 20 --seed 1 --out stream.csv
"""

import argparse
import os
import sys

import numpy as np

TARGET = "target"
DEFAULT_NOISE = 0.01
CHUNK_ROWS = 100_000
IRRELEVANT_FRACTION = 0.25


def header_line(features):
    """Returns the CSV header line (without newline) for `features` feature columns."""
    return ",".join([f"x{j}" for j in range(features)] + [TARGET])


def count_rows(path):
    """Returns the number of data rows (lines after the header) of the CSV file at `path`."""
    newlines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            newlines += block.count(b"\n")
            last = block[-1:]
    lines = newlines + (0 if last == b"\n" else 1)
    return max(lines - 1, 0)


def is_reusable(path, rows, features):
    """True if `path` exists with the header for `features` columns and exactly `rows` rows."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        if f.readline().rstrip("\r\n") != header_line(features):
            return False
    return count_rows(path) == rows


def stream_parameters(rng, features):
    """Draws the fixed concept: weights (some zero), bias, per-column offsets and scales."""
    weights = rng.normal(0.0, 1.0, features)
    irrelevant = rng.permutation(features)[: int(features * IRRELEVANT_FRACTION)]
    weights[irrelevant] = 0.0
    bias = rng.normal(0.0, 0.5)
    offsets = rng.uniform(-10.0, 10.0, features)
    scales = 10.0 ** rng.uniform(-1.0, 2.0, features)  # log-uniform in [0.1, 100]
    return weights, bias, offsets, scales


def write_stream(path, rows, features, seed, noise=DEFAULT_NOISE):
    """Writes the stream to `path` (through a temporary file, renamed when complete)."""
    param_rng, feature_rng, label_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    weights, bias, offsets, scales = stream_parameters(param_rng, features)
    fmt = ",".join(["%.6g"] * features + ["%d"])

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(header_line(features) + "\n")
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                z = feature_rng.standard_normal((n, features))
                u = label_rng.random((n, 2))
                p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
                y = (u[:, 0] < p) ^ (u[:, 1] < noise)
                table = np.column_stack([offsets + scales * z, y.astype(np.float64)])
                np.savetxt(f, table, fmt=fmt)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def ensure_stream(path, rows, features, seed, noise=DEFAULT_NOISE, log=sys.stderr):
    """Writes the stream unless `path` already holds one of the right shape; returns `path`."""
    if is_reusable(path, rows, features):
        print(f"make_stream: reused {path} ({rows} rows, {features} features)", file=log)
        return path
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    print(f"make_stream: writing {path} ({rows} rows, {features} features, seed {seed})",
          file=log)
    write_stream(path, rows, features, seed, noise)
    return path


def parse_args(argv=None):
    """Parses the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="data rows (default 1e6)")
    parser.add_argument("--features", type=int, default=20, help="feature columns (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of everything (default 1)")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help=f"probability of flipping a label (default {DEFAULT_NOISE})")
    parser.add_argument("--out", required=True, help="CSV file to write")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.features < 1:
        parser.error("--rows and --features must be positive")
    if not 0.0 <= args.noise <= 0.5:
        parser.error("--noise must be in [0, 0.5]")
    return args


def main(argv=None):
    """Entry point: writes or reuses the stream named on the command line."""
    args = parse_args(argv)
    ensure_stream(args.out, args.rows, args.features, args.seed, args.noise, log=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
