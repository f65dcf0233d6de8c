#!/usr/bin/env python3
"""Runs `riffle eval` binaries in turn on one CSV file and prints each one's median rows/s.

The machine this project is measured on is shared and noisy (timings move by 20% between
minutes), so binaries are compared side by side: each round runs every binary once, in turn,
and the medians over the rounds are compared. For each binary it prints the median, minimum
and maximum of the rows/s that `riffle eval --json` reports (parsing included), the median CPU
seconds of the process (user + system, both threads) and its accuracy; it fails if the
binaries' results (accuracy, log loss, ROC AUC) differ between runs or between binaries, so a
change that claims identical results is checked by the same run that times it (pass
--allow-different-results to compare changes that alter them).

    git worktree add /tmp/old <commit> && (build it there) ...
    python3 benchmarks/eval_ab.py --rounds 10 /tmp/old/build/release/service/riffle \\
        build/release/service/riffle

The default file is the long stream of compare_river.py (benchmarks/make_stream.py, written
there on its first run).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys

DEFAULT_DATA = "benchmarks/results/data/stream-1000000x20-seed1.csv"


RESULT_KEYS = ("rows", "accuracy", "log_loss", "roc_auc")


def run_once(binary, data, target):
    """One `riffle eval --json` run: (rows/s, CPU seconds, the results in RESULT_KEYS)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [binary, "eval", "--data", data, "--target", target, "--json", "--no-progress"],
        capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"eval_ab: {binary} failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads(done.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result["rows_per_second"], cpu, tuple(result.get(k) for k in RESULT_KEYS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="+", help="riffle binaries to compare")
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"CSV file (default {DEFAULT_DATA})")
    parser.add_argument("--target", default="target", help="target column (default target)")
    parser.add_argument("--allow-different-results", action="store_true",
                        help="do not fail when the binaries' results differ")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    runs = {binary: [] for binary in args.binaries}
    for _ in range(args.rounds):
        for binary in args.binaries:
            runs[binary].append(run_once(binary, args.data, args.target))
    width = max(len(b) for b in args.binaries)
    for binary in args.binaries:
        rates = [r[0] / 1e6 for r in runs[binary]]
        cpu = statistics.median(r[1] for r in runs[binary])
        print(f"{binary:{width}s}  median {statistics.median(rates):.3f} M rows/s "
              f"(min {min(rates):.3f}, max {max(rates):.3f})  CPU {cpu:.3f} s  "
              f"accuracy {runs[binary][0][2][1]}")
    results = {r[2] for binary in args.binaries for r in runs[binary]}
    if len(results) > 1:
        print("results differ (rows, accuracy, log loss, ROC AUC):", file=sys.stderr)
        for binary in args.binaries:
            print(f"  {binary}: {sorted({r[2] for r in runs[binary]}, key=str)}", file=sys.stderr)
        if not args.allow_different_results:
            sys.exit(1)


if __name__ == "__main__":
    main()
