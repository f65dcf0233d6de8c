#!/usr/bin/env python3
"""Compares `riffle eval` with River on the same CSV files, side by side.

Both sides run the same prequential (test-then-train) evaluation of a logistic regression
with the same hyperparameters on every CSV file of the datasets folder and on a long
synthetic stream (benchmarks/make_stream.py), and the script prints a Markdown table of
accuracy, log loss and throughput.

What the River side mirrors of Riffle, so that the numbers are comparable:

* Column typing comes from the first 1,000 data rows: a column is nominal if any non-empty
  value there is not a finite number, numeric otherwise. The target (the last column) is
  never a feature. An empty field is a missing value: the key is absent from ``x``. Riffle
  gets the derived nominal columns through ``--nominal``, so both sides type alike.
* Features: numeric columns go through ``preprocessing.StandardScaler``, nominal columns
  through ``preprocessing.OneHotEncoder(drop_zeros=True)``.
* At most 2 labels: ``linear_model.LogisticRegression()`` on ``y = (label == positive)``, where
  the positive label is the second distinct label in file order (Riffle's class 1); Riffle
  runs with its defaults, which equal River's (SGD with lr 0.01, intercept_lr 0.01, l2 0).
  More labels: ``linear_model.SoftmaxRegression()`` (no intercept) on the label strings, and
  Riffle runs with ``--set mode=softmax --set intercept_lr=0``.
* Per row: ``proba = predict_proba_one(x)``; an empty ``proba`` is not scored but still learned;
  otherwise the prediction is the argmax (first key on ties) and the row adds to accuracy
  and to log loss ``-log(clamp(p_true, 1e-15, 1 - 1e-15))``; then ``learn_one(x, y)``.

Throughput: River's time runs from opening the CSV file to the end of the loop, so it
includes reading and parsing; the typing pre-pass over the file is not timed (this favours
River). Riffle's rows/s is the one it reports (parsing included); its wall-clock time,
process start included, is recorded too. Speedup = Riffle rows/s / River rows/s.

Trees: ``--learner hoeffding_tree`` or ``--learner hoeffding_adaptive_tree`` runs River's
``tree.HoeffdingTreeClassifier`` / ``tree.HoeffdingAdaptiveTreeClassifier`` behind the same
feature pipeline, and ``riffle eval --learner ...`` with the same ``--set name=value``
hyperparameters (River's names; ``n_splits`` becomes River's ``GaussianSplitter(n_splits)``,
``adwin_*`` River's ``drift.ADWIN(...)``; a tree's ``seed`` defaults to 0 on both sides).
``--file PATH`` adds any CSV (e.g. streams written by ``riffle gen``), target in the last
column.

Run it with the benchmark venv (scripts/setup_venv.sh), e.g.::

    .venv/bin/python benchmarks/compare_river.py --out results.md --json results.json
    .venv/bin/python benchmarks/compare_river.py --learner hoeffding_tree --skip-stream \
        --file benchmarks/results/data/sea-1M-drift.csv --only sea-1M-drift
"""

import argparse
import collections
import csv
import dataclasses
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from array import array

import numpy as np
import river
from river import compose, drift, linear_model, preprocessing, tree
from scipy import stats

import make_stream

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RIFFLE = os.path.join(REPO, "build", "release", "service", "riffle")
DEFAULT_DATASETS = os.path.normpath(os.path.join(REPO, "..", "shared", "datasets"))
# benchmarks/results/data/ is the folder .gitignore excludes: the stream is too big to commit.
DEFAULT_DATA_DIR = os.path.join(REPO, "benchmarks", "results", "data")
STREAM_FEATURES = 20
STREAM_SEED = 1
TYPING_ROWS = 1000
PROBA_EPS = 1e-15


class BenchmarkError(Exception):
    """A failure that ends the run with a message (bad input file, Riffle failing)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A CSV file and what the pre-pass learned about it."""

    name: str
    path: str
    columns: list  # header, in file order
    target: str
    numeric: list  # numeric feature columns, in file order
    nominal: list  # nominal feature columns, in file order
    labels: list  # distinct labels in order of first appearance
    rows: int

    @property
    def binary(self):
        """True when River's LogisticRegression (and Riffle's sigmoid mode) applies."""
        return len(self.labels) <= 2


def is_finite_number(text):
    """True if `text` is a finite decimal number with nothing around it.

    Python's float() also takes surrounding spaces and digit-group underscores; a CSV parser
    in C++ does not, so those make the column nominal here.
    """
    if text != text.strip() or "_" in text:
        return False
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def data_rows(reader):
    """Yields the rows of a csv.reader positioned after the header, skipping blank lines."""
    for row in reader:
        if row:
            yield row


def inspect_csv(path, typing_rows=TYPING_ROWS):
    """Reads the whole file once: column types, distinct labels and row count."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        columns = next(reader, None)
        if not columns:
            raise BenchmarkError(f"{path}: no header row")
        if len(set(columns)) != len(columns):
            raise BenchmarkError(f"{path}: duplicate column names in the header")
        target_index = len(columns) - 1
        nominal = set()
        labels = {}
        rows = 0
        for row in data_rows(reader):
            if len(row) != len(columns):
                raise BenchmarkError(f"{path}:{reader.line_num}: {len(row)} fields, "
                                     f"header has {len(columns)}")
            label = row[target_index]
            if not label:
                raise BenchmarkError(f"{path}:{reader.line_num}: empty target")
            labels.setdefault(label, None)
            if rows < typing_rows:
                for name, value in zip(columns[:target_index], row):
                    if value and name not in nominal and not is_finite_number(value):
                        nominal.add(name)
            rows += 1
    features = columns[:target_index]
    return Dataset(
        name=os.path.basename(path),
        path=path,
        columns=columns,
        target=columns[target_index],
        numeric=[c for c in features if c not in nominal],
        nominal=[c for c in features if c in nominal],
        labels=list(labels),
        rows=rows,
    )


def feature_pipeline(numeric, nominal):
    """River transformer: scaled numeric columns joined with one-hot nominal columns."""
    if not numeric and not nominal:
        raise BenchmarkError("no feature columns")
    if not nominal:
        return preprocessing.StandardScaler()
    if not numeric:
        return preprocessing.OneHotEncoder(drop_zeros=True)
    # Discard rather than Select: Select looks every listed key up, and a missing value
    # (an absent key) would raise KeyError; Discard only drops the keys that are there.
    scaled = compose.Discard(*nominal) | preprocessing.StandardScaler()
    one_hot = compose.Discard(*numeric) | preprocessing.OneHotEncoder(drop_zeros=True)
    return scaled + one_hot


TREE_LEARNERS = {
    "hoeffding_tree": tree.HoeffdingTreeClassifier,
    "hoeffding_adaptive_tree": tree.HoeffdingAdaptiveTreeClassifier,
}
TREE_INT_OPTIONS = {"grace_period", "nb_threshold", "memory_estimate_period",
                    "drift_window_threshold", "seed", "n_splits", "adwin_clock",
                    "adwin_max_buckets", "adwin_min_window_length", "adwin_grace_period"}
TREE_BOOL_OPTIONS = {"binary_split", "stop_mem_management", "remove_poor_attrs",
                     "merit_preprune", "bootstrap_sampling"}


def river_tree_kwargs(learner, sets):
    """River constructor arguments for Riffle's `--set name=value` tree options."""
    kwargs, adwin = {}, {}
    for name, value in sets:
        if name == "nominal_attributes":
            raise BenchmarkError("nominal_attributes are feature indices in Riffle and names in "
                                 "River: not translated")
        if name == "max_depth":
            parsed = None if value.lower() == "none" else int(value)
        elif name in TREE_INT_OPTIONS:
            parsed = int(value)
        elif name in TREE_BOOL_OPTIONS:
            parsed = value.lower() in ("true", "1")
        elif name in ("split_criterion", "leaf_prediction"):
            parsed = value
        else:
            parsed = float(value)
        if name.startswith("adwin_"):
            adwin[name[len("adwin_"):]] = parsed
        elif name == "n_splits":
            kwargs["splitter"] = tree.splitter.GaussianSplitter(n_splits=parsed)
        else:
            kwargs[name] = parsed
    if adwin:
        kwargs["drift_detector"] = drift.ADWIN(**adwin)
    if learner == "hoeffding_adaptive_tree":
        kwargs.setdefault("seed", 0)
    return kwargs


def build_river_model(dataset, learner="logreg", sets=()):
    """The River pipeline that matches what Riffle runs on `dataset`."""
    features = feature_pipeline(dataset.numeric, dataset.nominal)
    if learner in TREE_LEARNERS:
        return features | TREE_LEARNERS[learner](**river_tree_kwargs(learner, sets))
    if dataset.binary:
        return features | linear_model.LogisticRegression()
    return features | linear_model.SoftmaxRegression()


def macro_f1(confusion):
    """Mean F1 over every class seen as truth or prediction; `confusion` counts (y, y_pred)."""
    true_positives = collections.Counter()
    as_truth = collections.Counter()
    as_prediction = collections.Counter()
    for (truth, predicted), count in confusion.items():
        as_truth[truth] += count
        as_prediction[predicted] += count
        if truth == predicted:
            true_positives[truth] += count
    classes = set(as_truth) | set(as_prediction)
    if not classes:
        return None
    total = 0.0
    for c in classes:
        denominator = as_truth[c] + as_prediction[c]
        total += 2.0 * true_positives[c] / denominator if denominator else 0.0
    return total / len(classes)


def roc_auc(scores, truths):
    """Exact ROC AUC (ties count half) of positive-class scores; None with a single class."""
    truths = np.frombuffer(truths, dtype=np.int8).astype(bool)
    positives = int(truths.sum())
    negatives = len(truths) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(np.frombuffer(scores, dtype=np.float64))
    return float((ranks[truths].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def run_river(dataset, learner="logreg", sets=()):
    """Prequential evaluation with River; returns its metrics and timing."""
    model = build_river_model(dataset, learner, sets)
    binary = dataset.binary and learner == "logreg"
    positive = dataset.labels[1] if len(dataset.labels) > 1 else None
    index = {name: i for i, name in enumerate(dataset.columns)}
    numeric = [(index[c], c) for c in dataset.numeric]
    nominal = [(index[c], c) for c in dataset.nominal]
    target_index = index[dataset.target]

    rows = scored = correct = 0
    loss = 0.0
    confusion = collections.Counter()
    scores, truths = array("d"), array("b")  # binary only, for ROC AUC

    start = time.perf_counter()
    with open(dataset.path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        try:
            for row in data_rows(reader):
                x = {}
                for i, name in numeric:
                    value = row[i]
                    if value:
                        x[name] = float(value)
                for i, name in nominal:
                    value = row[i]
                    if value:
                        x[name] = value
                label = row[target_index]
                y = label == positive if binary else label

                proba = model.predict_proba_one(x)
                if proba:
                    y_pred = max(proba, key=proba.get)  # first key wins a tie
                    scored += 1
                    correct += y_pred == y
                    p_true = min(max(proba.get(y, 0.0), PROBA_EPS), 1.0 - PROBA_EPS)
                    loss -= math.log(p_true)
                    confusion[y, y_pred] += 1
                    if binary:
                        scores.append(proba.get(True, 0.0))
                        truths.append(y)
                model.learn_one(x, y)
                rows += 1
        except ValueError as e:
            raise BenchmarkError(f"{dataset.path}:{reader.line_num}: {e} (a numeric column "
                                 f"has a non-number after the first {TYPING_ROWS} rows)") from e
    seconds = time.perf_counter() - start

    return {
        "rows": rows,
        "scored": scored,
        "accuracy": correct / scored if scored else None,
        "log_loss": loss / scored if scored else None,
        "roc_auc": roc_auc(scores, truths) if binary else None,
        "macro_f1": macro_f1(confusion),
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds > 0 else None,
    }


def riffle_command(riffle, dataset, learner="logreg", sets=()):
    """The `riffle eval` command line that mirrors River's model on `dataset`."""
    command = [riffle, "eval", "--data", dataset.path, "--target", dataset.target,
               "--learner", learner]
    if learner == "logreg" and not dataset.binary:
        command += ["--set", "mode=softmax", "--set", "intercept_lr=0"]
    for name, value in sets:
        command += ["--set", f"{name}={value}"]
    if dataset.nominal:
        if any("," in c for c in dataset.nominal):
            raise BenchmarkError(f"{dataset.name}: a nominal column name has a comma, "
                                 "which --nominal cannot express")
        command += ["--nominal", ",".join(dataset.nominal)]
    return command + ["--json"]


def parse_riffle_output(stdout):
    """The JSON object `riffle eval --json` printed (the last line that is one)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return json.loads(stdout)  # a pretty-printed object spanning several lines


def run_riffle(riffle, dataset, learner="logreg", sets=()):
    """Runs `riffle eval` on `dataset`; returns its JSON plus the process's wall-clock time."""
    command = riffle_command(riffle, dataset, learner, sets) + ["--no-progress"]
    start = time.perf_counter()
    try:
        process = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BenchmarkError(f"cannot run {riffle}: {e}") from e
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise BenchmarkError(
            f"riffle failed on {dataset.name} (exit {process.returncode}):\n"
            f"  $ {shlex.join(command)}\n{indent(process.stderr or process.stdout)}")
    try:
        result = parse_riffle_output(process.stdout)
    except json.JSONDecodeError as e:
        raise BenchmarkError(f"riffle printed no JSON object on {dataset.name} ({e}):\n"
                             f"  $ {shlex.join(command)}\n{indent(process.stdout)}") from e
    missing = [k for k in ("rows", "accuracy", "log_loss", "rows_per_second") if k not in result]
    if missing:
        raise BenchmarkError(f"riffle's JSON on {dataset.name} lacks {', '.join(missing)}: "
                             f"{json.dumps(result)}")
    result["wall_seconds"] = wall
    return result


def indent(text, prefix="    ", limit=40):
    """The last `limit` lines of `text`, indented, for error messages."""
    lines = text.rstrip().splitlines()[-limit:] or ["(no output)"]
    return "\n".join(prefix + line for line in lines)


def find_datasets(datasets_dir):
    """Every CSV file of `datasets_dir`, sorted by name."""
    if not os.path.isdir(datasets_dir):
        raise BenchmarkError(f"datasets folder {datasets_dir} does not exist")
    return sorted(os.path.join(datasets_dir, n) for n in os.listdir(datasets_dir)
                  if n.endswith(".csv"))


def stream_path(data_dir, rows):
    """Where the synthetic stream of `rows` rows lives (the name carries its parameters)."""
    return os.path.join(data_dir, f"stream-{rows}x{STREAM_FEATURES}-seed{STREAM_SEED}.csv")


def is_wanted(path, is_stream, wanted):
    """True if --only names `path` (file name with or without .csv, or 'stream')."""
    name = os.path.basename(path)
    names = {name, os.path.splitext(name)[0]} | ({"stream"} if is_stream else set())
    return bool(names & wanted)


def select_files(args):
    """The CSV files to compare, in order; the stream is written (or reused) if selected."""
    files = ([] if args.no_datasets else find_datasets(args.datasets)) + list(args.file or [])
    stream = None if args.skip_stream else stream_path(args.data_dir, args.stream_rows)
    candidates = files + ([stream] if stream else [])
    if args.only:
        wanted = set(args.only)
        candidates = [p for p in candidates if is_wanted(p, p == stream, wanted)]
        if not candidates:
            raise BenchmarkError(f"--only {' '.join(args.only)} matches no file")
    if stream in candidates:
        make_stream.ensure_stream(stream, args.stream_rows, STREAM_FEATURES, STREAM_SEED)
    return candidates


def compare(path, riffle, learner="logreg", sets=()):
    """Runs Riffle (unless `riffle` is None) and River on one file; returns the result row."""
    dataset = inspect_csv(path)
    kind = "binary" if dataset.binary else f"{len(dataset.labels)} classes"
    print(f"compare: {dataset.name}: {dataset.rows} rows, {len(dataset.numeric)} numeric, "
          f"{len(dataset.nominal)} nominal, {kind}", file=sys.stderr)
    riffle_result = run_riffle(riffle, dataset, learner, sets) if riffle else None
    river_result = run_river(dataset, learner, sets)
    return {
        "file": dataset.name,
        "rows": dataset.rows,
        "classes": len(dataset.labels),
        "numeric_columns": len(dataset.numeric),
        "nominal_columns": dataset.nominal,
        "learner": learner,
        "riffle_command": (shlex.join(riffle_command(riffle, dataset, learner, sets))
                           if riffle else None),
        "river": river_result,
        "riffle": riffle_result,
    }


def fmt_percent(value):
    """A fraction as a percentage with 2 decimals; a dash for None."""
    return "—" if value is None else f"{100.0 * value:.2f}%"


def fmt_float(value, digits=4):
    """A number with `digits` decimals; a dash for None."""
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_rate(value):
    """A rate rounded to a whole number with thousands separators; a dash for None."""
    return "—" if value is None else f"{value:,.0f}"


def table_row(result):
    """One Markdown table row for a file's result."""
    river_side, riffle_side = result["river"], result["riffle"] or {}
    delta = speedup = None
    if riffle_side.get("accuracy") is not None and river_side["accuracy"] is not None:
        delta = 100.0 * (riffle_side["accuracy"] - river_side["accuracy"])
    if riffle_side.get("rows_per_second") and river_side["rows_per_second"]:
        speedup = riffle_side["rows_per_second"] / river_side["rows_per_second"]
    cells = [
        result["file"],
        f"{result['rows']:,}",
        fmt_percent(river_side["accuracy"]),
        fmt_percent(riffle_side.get("accuracy")),
        "—" if delta is None else f"{delta:+.2f}",
        fmt_float(river_side["log_loss"]),
        fmt_float(riffle_side.get("log_loss")),
        fmt_rate(river_side["rows_per_second"]),
        fmt_rate(riffle_side.get("rows_per_second")),
        "—" if speedup is None else f"{speedup:,.1f}×",
        fmt_float(river_side["seconds"], 3),
        fmt_float(riffle_side.get("wall_seconds"), 3),
    ]
    return "| " + " | ".join(cells) + " |"


def report(results, command_line):
    """The Markdown report: how it was run, then the table, then any discrepancies."""
    header = ["file", "rows", "River acc", "Riffle acc", "Δ acc (pp)", "River log loss",
              "Riffle log loss", "River rows/s", "Riffle rows/s", "speedup",
              "River s", "Riffle wall s"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Command: `{command_line}`",
        "",
        f"River {river.__version__}, Python {platform.python_version()}, {cpu_model()}, "
        f"{os.cpu_count()} cores; date {now}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += [table_row(r) for r in results]
    notes = [f"- {r['file']}: Riffle counted {r['riffle']['rows']:,} rows, River {r['rows']:,}"
             for r in results if r["riffle"] and r["riffle"]["rows"] != r["river"]["rows"]]
    if notes:
        lines += ["", "Row counts differ:"] + notes
    return "\n".join(lines) + "\n"


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_args(argv=None):
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description="Compare `riffle eval` with River (prequential logistic regression).")
    parser.add_argument("--riffle", default=DEFAULT_RIFFLE,
                        help=f"riffle binary (default {DEFAULT_RIFFLE})")
    parser.add_argument("--river-only", action="store_true",
                        help="run only River's side (no riffle binary needed)")
    parser.add_argument("--datasets", default=DEFAULT_DATASETS,
                        help=f"folder of CSV files, target in the last column "
                             f"(default {DEFAULT_DATASETS})")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help=f"where the synthetic stream is written (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--stream-rows", type=int, default=1_000_000,
                        help="rows of the synthetic stream (default 1,000,000)")
    parser.add_argument("--skip-stream", action="store_true", help="leave the stream out")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this file (name with or without .csv, or 'stream'); "
                             "repeatable")
    parser.add_argument("--learner", default="logreg",
                        choices=["logreg"] + sorted(TREE_LEARNERS),
                        help="learner on both sides (default logreg)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="tree hyperparameter for both sides (River's names); repeatable")
    parser.add_argument("--file", action="append", metavar="CSV",
                        help="also compare on this CSV file (target in the last column); "
                             "repeatable")
    parser.add_argument("--no-datasets", action="store_true",
                        help="leave the datasets folder out (use with --file)")
    parser.add_argument("--out", help="write the Markdown report here (default: stdout)")
    parser.add_argument("--json", dest="json_out", metavar="FILE",
                        help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.stream_rows < 1:
        parser.error("--stream-rows must be positive")
    args.sets = []
    for assignment in args.set:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            parser.error(f"--set {assignment}: expected NAME=VALUE")
        args.sets.append((name, value))
    if args.sets and args.learner == "logreg":
        parser.error("--set applies to tree learners only")
    return args


def main(argv=None):
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    command_line = shlex.join([sys.executable] + (sys.argv if argv is None else [__file__] + argv))
    riffle = None if args.river_only else args.riffle
    try:
        if riffle and not (os.path.isfile(riffle) and os.access(riffle, os.X_OK)):
            raise BenchmarkError(f"no riffle binary at {riffle}: build it first, pass "
                                 "--riffle PATH, or use --river-only")
        results = [compare(path, riffle, args.learner, args.sets) for path in select_files(args)]
    except BenchmarkError as e:
        print(f"compare_river: error: {e}", file=sys.stderr)
        return 1

    text = report(results, command_line)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"command": command_line, "river_version": river.__version__,
                       "results": results}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
