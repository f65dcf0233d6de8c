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

Tree memory: each tree row also reports the main tree's leaves and bytes per leaf on both
sides, each measured its own way after the timed loop: River's ``_raw_memory_usage`` of the
fitted tree over ``n_leaves`` (plus River's own active-leaf estimate, the mean
``calculate_object_size`` of the active leaves that its memory manager uses), and Riffle's
``model_bytes`` (``--json``) over the ``leaves`` of its ``--dump-tree`` stats. Both byte
counts cover the whole tree (branches, alternate trees and drift detectors included).

MOA: ``--moa`` (trees only, River's defaults only) adds MOA's ``HoeffdingTree`` /
``HoeffdingAdaptiveTree`` through capymoa, which the pinned requirements leave out (it pulls
in a 62 MB wheel with MOA's jar, pandas, scikit-learn and matplotlib, and needs a JDK)::

    .venv/bin/pip install capymoa==0.15.1

MOA reads an ARFF copy of the CSV (same rows, written once under ``--data-dir``/arff, not
timed) with its own ArffFileStream. By default MOA's command line (``moa.DoTask
EvaluatePrequential`` with the jar capymoa ships) runs it; the wall-clock time covers the
JVM's start, parsing, predicting, scoring and learning. ``--moa-mode capymoa`` runs
capymoa's ``prequential_evaluation`` on the same copy instead (slower: its evaluation loop
costs more than MOA's), ``--moa-mode capymoa-csv`` has capymoa's CSVStream read the CSV
itself in Python (numeric features only), which times the Python-to-Java bridge more than
MOA. ``--skip-river`` leaves River out, to add MOA to a run.

Run it with the benchmark venv (scripts/setup_venv.sh), e.g.::

    .venv/bin/python benchmarks/compare_river.py --out results.md --json results.json
    .venv/bin/python benchmarks/compare_river.py --learner hoeffding_tree --skip-stream \
        --file benchmarks/results/data/sea-1M-drift.csv --only sea-1M-drift
    .venv/bin/python benchmarks/compare_river.py --learner hoeffding_adaptive_tree \
        --skip-stream --no-datasets --file benchmarks/results/data/sea-1M-drift.csv \
        --skip-river --moa
"""

import argparse
import collections
import csv
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from array import array

import numpy as np
import river
from river import compose, drift, linear_model, preprocessing, tree
from river.tree.utils import calculate_object_size
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

    result = {
        "rows": rows,
        "scored": scored,
        "accuracy": correct / scored if scored else None,
        "log_loss": loss / scored if scored else None,
        "roc_auc": roc_auc(scores, truths) if binary else None,
        "macro_f1": macro_f1(confusion),
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds > 0 else None,
    }
    if learner in TREE_LEARNERS:
        result["memory"] = river_tree_memory(model[-1])
    return result


def river_tree_memory(model):
    """River's memory figures of a fitted tree (measured after the timed loop).

    ``model_bytes`` is ``_raw_memory_usage``, River's own estimate of the tree object's size
    (a walk of the Python object graph, alternate trees and drift detectors included);
    ``leaves`` is ``n_leaves``, the leaves of the main tree, as Riffle's ``leaves``.
    ``leaf_bytes_estimate`` is what River's memory manager (``_estimate_model_size``) takes as
    the size of an active leaf: the mean ``calculate_object_size`` of the active leaves.
    """
    leaves = model.n_leaves or 0
    active = [leaf for leaf in model._find_leaves() if leaf.is_active()] if leaves else []
    model_bytes = model._raw_memory_usage
    return {
        "model_bytes": model_bytes,
        "leaves": leaves,
        "active_leaves": model.n_active_leaves,
        "inactive_leaves": model.n_inactive_leaves,
        "bytes_per_leaf": model_bytes / leaves if leaves else None,
        "leaf_bytes_estimate": (sum(calculate_object_size(leaf) for leaf in active) / len(active)
                                if active else None),
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


def run_timed(command, program):
    """Runs command to completion; returns (the CompletedProcess, its wall-clock seconds)."""
    start = time.perf_counter()
    try:
        process = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BenchmarkError(f"cannot run {program}: {e}") from e
    return process, time.perf_counter() - start


def run_riffle(riffle, dataset, learner="logreg", sets=()):
    """Runs `riffle eval` on `dataset`; returns its JSON plus the process's wall-clock time.

    For a tree, the final tree is also dumped (``--dump-tree``, written after the timed loop)
    to read its leaf counts, and ``memory`` holds the bytes per leaf.
    """
    command = riffle_command(riffle, dataset, learner, sets) + ["--no-progress"]
    with tempfile.TemporaryDirectory(prefix="compare_river-") as scratch:
        dump = os.path.join(scratch, "tree.json")
        if learner in TREE_LEARNERS:
            command += ["--dump-tree", dump]
        process, wall = run_timed(command, riffle)
        tree_stats = None
        if learner in TREE_LEARNERS and process.returncode == 0:
            try:
                with open(dump, encoding="utf-8") as f:
                    tree_stats = json.load(f).get("stats")
            except (OSError, json.JSONDecodeError) as e:
                raise BenchmarkError(f"riffle's tree dump on {dataset.name}: {e}") from e
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
    if tree_stats is not None:
        result["memory"] = riffle_tree_memory(result, tree_stats)
    return result


def run_riffle_median(riffle, dataset, learner, sets, runs):
    """run_riffle `runs` times; returns the run with the median rows/s (the upper median for an
    even count), with every run's rows/s under ``rows_per_second_runs``. A shared machine's
    noise moves single runs of the long stream by 20% and more."""
    results = [run_riffle(riffle, dataset, learner, sets) for _ in range(max(1, runs))]
    rates = [r["rows_per_second"] for r in results]
    chosen = sorted(results, key=lambda r: r["rows_per_second"])[len(results) // 2]
    chosen["rows_per_second_runs"] = rates
    if len(results) > 1:
        print(f"compare: {dataset.name}: riffle rows/s over {len(results)} runs: "
              + ", ".join(f"{rate:,.0f}" for rate in rates), file=sys.stderr)
    return chosen


def riffle_tree_memory(result, tree_stats):
    """Riffle's memory figures: ``model_bytes`` of ``--json`` (the learner's ``MemoryBytes()``:
    the containers' capacities of every node, alternate trees included, not the allocator's
    overhead) and the leaf counts of the ``--dump-tree`` stats (main tree only, as River)."""
    model_bytes = result.get("model_bytes", tree_stats.get("memory_bytes"))
    leaves = tree_stats.get("leaves") or 0
    return {
        "model_bytes": model_bytes,
        "leaves": leaves,
        "active_leaves": tree_stats.get("active_leaves"),
        "inactive_leaves": tree_stats.get("inactive_leaves"),
        "alternate_trees": tree_stats.get("alternate_trees"),
        "bytes_per_leaf": model_bytes / leaves if leaves and model_bytes is not None else None,
    }


# MOA's tree classes in capymoa, and River's defaults in MOA's option names (capymoa's own
# defaults differ: confidence 1e-3, stop_mem_management and disable_prepruning on, 32 MB).
MOA_LEARNERS = {
    "hoeffding_tree": "HoeffdingTree",
    "hoeffding_adaptive_tree": "HoeffdingAdaptiveTree",
}
MOA_RIVER_DEFAULTS = {
    "grace_period": 200,
    "confidence": 1e-7,
    "tie_threshold": 0.05,
    "split_criterion": "InfoGainSplitCriterion",
    "leaf_prediction": "NaiveBayesAdaptive",
    "nb_threshold": 0,
    "numeric_attribute_observer": "GaussianNumericAttributeClassObserver",  # 10 split points
    "binary_split": False,
    "max_byte_size": 100 * 2**20,  # River's max_size=100 (MiB)
    "memory_estimate_period": 1_000_000,
    "stop_mem_management": False,
    "remove_poor_attrs": False,
    "disable_prepruning": False,  # River's merit_preprune=True
}
ARFF_SPECIAL = set(" ,'\"{}%\t")


def arff_value(text):
    """One CSV field as an ARFF value: '?' when empty, quoted when it has special characters."""
    if not text:
        return "?"
    if ARFF_SPECIAL & set(text):
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


def ensure_arff(dataset, data_dir):
    """An ARFF copy of `dataset`'s CSV (same rows and types), written once under `data_dir`.

    MOA's own file reader (ArffFileStream) reads ARFF only. Numeric columns are `numeric`,
    nominal columns and the target are nominal with every value of the file, in order of
    first appearance (the target's order is the labels', as Riffle's class indices). Reused
    when newer than the CSV.
    """
    arff = os.path.join(data_dir, "arff", os.path.splitext(dataset.name)[0] + ".arff")
    os.makedirs(os.path.dirname(arff), exist_ok=True)
    if os.path.exists(arff) and os.path.getmtime(arff) >= os.path.getmtime(dataset.path):
        return arff
    nominal = set(dataset.nominal)
    values = {c: {} for c in dataset.nominal}
    if nominal:
        with open(dataset.path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            columns = next(reader)
            for row in data_rows(reader):
                for name, value in zip(columns, row):
                    if name in nominal and value:
                        values[name].setdefault(value, None)
    partial = arff + ".partial"
    with open(dataset.path, newline="", encoding="utf-8") as f, \
            open(partial, "w", encoding="utf-8") as out:
        reader = csv.reader(f)
        columns = next(reader)
        out.write(f"@relation {arff_value(os.path.splitext(dataset.name)[0])}\n\n")
        for name in columns:
            if name == dataset.target:
                kind = "{" + ",".join(arff_value(v) for v in dataset.labels) + "}"
            elif name in nominal:
                kind = "{" + ",".join(arff_value(v) for v in values[name]) + "}"
            else:
                kind = "numeric"
            out.write(f"@attribute {arff_value(name)} {kind}\n")
        out.write("\n@data\n")
        for row in data_rows(reader):
            out.write(",".join(arff_value(v) for v in row) + "\n")
    os.replace(partial, arff)
    return arff


MOA_CLI_OPTIONS = "-c 1e-7 -m 104857600"  # MOA's other defaults are River's already


def run_moa_cli(dataset, learner, data_dir):
    """MOA's own command line (moa.DoTask EvaluatePrequential, the jar capymoa ships) over the
    ARFF copy: the wall-clock time covers the JVM's start, reading and parsing the file,
    predicting, scoring (cumulative accuracy) and learning; MOA's own "evaluation time (cpu
    seconds)", the evaluating thread's CPU time without the JVM start, is recorded too."""
    # Found, not imported: importing capymoa starts a JVM in this process.
    spec = importlib.util.find_spec("capymoa")
    if spec is None or spec.origin is None:
        raise BenchmarkError("--moa needs capymoa in the venv: "
                             ".venv/bin/pip install capymoa==0.15.1")
    jar = os.path.join(os.path.dirname(spec.origin), "jar", "moa.jar")
    rows = dataset.rows
    task = (f"EvaluatePrequential -l (trees.{MOA_LEARNERS[learner]} {MOA_CLI_OPTIONS}) "
            f"-s (ArffFileStream -f {ensure_arff(dataset, data_dir)}) "
            f"-e BasicClassificationPerformanceEvaluator -i {rows} -f {rows} -q {rows}")
    command = ["java", "-Xmx8g", "-Xss10M", "-cp", jar, "moa.DoTask", task]
    process, seconds = run_timed(command, "java")
    lines = [line for line in process.stdout.splitlines() if "," in line]
    if process.returncode != 0 or len(lines) < 2:
        raise BenchmarkError(f"MOA failed on {dataset.name} (exit {process.returncode}):\n"
                             f"  $ {shlex.join(command)}\n"
                             f"{indent(process.stderr or process.stdout)}")
    measured = dict(zip(lines[-2].split(","), lines[-1].split(",")))
    seen = int(float(measured["learning evaluation instances"]))
    cpu = float(measured["evaluation time (cpu seconds)"])
    return {
        "mode": "cli",
        "moa_command": shlex.join(command),
        "rows": seen,
        "accuracy": float(measured["classifications correct (percent)"]) / 100.0,
        "seconds": seconds,
        "rows_per_second": seen / seconds if seconds > 0 else None,
        "cpu_seconds": cpu,
        "rows_per_cpu_second": seen / cpu if cpu > 0 else None,
        "leaves": int(float(measured["tree size (leaves)"])),
    }


def run_moa(dataset, learner, data_dir, sets=(), mode="cli"):
    """Prequential evaluation of MOA's tree; returns accuracy and timing.

    mode "cli": MOA's command line, see run_moa_cli (the default: MOA's speed).
    mode "capymoa": MOA's ArffFileStream over the ARFF copy of the CSV and capymoa's
    prequential_evaluation, which runs MOA's Java loop (EfficientEvaluationLoops) from
    Python: the time covers reading and parsing the file, predicting, scoring and learning.
    mode "capymoa-csv": capymoa's CSVStream reads the CSV itself with Python's csv module and
    the loop runs in Python, one JPype call per step.
    The ARFF copy is written before and not timed. MOA gets the raw features (no standard
    scaler; its Gaussian observers adapt to scale).
    """
    if sets:
        raise BenchmarkError("--moa runs River's defaults only: --set is not translated")
    if mode == "cli":
        return run_moa_cli(dataset, learner, data_dir)
    reader = "arff" if mode == "capymoa" else "csv"
    try:
        from capymoa import classifier as moa_classifier  # starts the JVM
        from capymoa.evaluation import prequential_evaluation
        from capymoa.stream import ARFFStream, CSVStream
    except ImportError as e:
        raise BenchmarkError(f"--moa needs capymoa in the venv ({e}): "
                             ".venv/bin/pip install capymoa==0.15.1") from e
    if reader == "arff":
        stream = ARFFStream(ensure_arff(dataset, data_dir))
    else:
        if dataset.nominal:
            raise BenchmarkError(f"{dataset.name}: --moa-mode capymoa-csv takes numeric features "
                                 "only (CSVStream needs every nominal value up front)")
        stream = CSVStream(dataset.path, target=dataset.target,
                           categories={dataset.target: dataset.labels}, length=dataset.rows)
    moa_class = getattr(moa_classifier, MOA_LEARNERS[learner])
    model = moa_class(schema=stream.get_schema(), random_seed=0, **MOA_RIVER_DEFAULTS)
    # One window over the whole file: capymoa's windowed evaluator costs more per 1,000-row
    # window than MOA's tree does (SEA, HT: 54k rows/s with 1,000-row windows against 125k
    # with 100,000-row ones on the first 200,000 rows), and only the cumulative metrics are used.
    start = time.perf_counter()
    results = prequential_evaluation(stream, model, window_size=max(dataset.rows, 1),
                                     optimise=True)
    seconds = time.perf_counter() - start
    metrics = results.cumulative.metrics_dict()
    rows = int(metrics.get("instances") or dataset.rows)
    return {
        "mode": mode,
        "moa_learner": str(model),
        "rows": rows,
        "accuracy": results.cumulative.accuracy() / 100.0,
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds > 0 else None,
        "capymoa_wallclock": results.wallclock(),
    }


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


def compare(path, riffle, learner="logreg", sets=(), river_side=True, moa=None,
            data_dir=DEFAULT_DATA_DIR, riffle_runs=1):
    """Runs Riffle (unless `riffle` is None), River (unless not `river_side`) and MOA (when
    `moa` names a reader; its ARFF copies go under `data_dir`) on one file, in that order;
    returns the result row."""
    dataset = inspect_csv(path)
    kind = "binary" if dataset.binary else f"{len(dataset.labels)} classes"
    print(f"compare: {dataset.name}: {dataset.rows} rows, {len(dataset.numeric)} numeric, "
          f"{len(dataset.nominal)} nominal, {kind}", file=sys.stderr)
    riffle_result = run_riffle_median(riffle, dataset, learner, sets, riffle_runs) if riffle else None
    river_result = run_river(dataset, learner, sets) if river_side else None
    moa_result = run_moa(dataset, learner, data_dir, sets, moa) if moa else None
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
        "moa": moa_result,
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
    river_side, riffle_side = result["river"] or {}, result["riffle"] or {}
    delta = speedup = None
    if riffle_side.get("accuracy") is not None and river_side.get("accuracy") is not None:
        delta = 100.0 * (riffle_side["accuracy"] - river_side["accuracy"])
    if riffle_side.get("rows_per_second") and river_side.get("rows_per_second"):
        speedup = riffle_side["rows_per_second"] / river_side["rows_per_second"]
    cells = [
        result["file"],
        f"{result['rows']:,}",
        fmt_percent(river_side.get("accuracy")),
        fmt_percent(riffle_side.get("accuracy")),
        "—" if delta is None else f"{delta:+.2f}",
        fmt_float(river_side.get("log_loss")),
        fmt_float(riffle_side.get("log_loss")),
        fmt_rate(river_side.get("rows_per_second")),
        fmt_rate(riffle_side.get("rows_per_second")),
        "—" if speedup is None else f"{speedup:,.1f}×",
        fmt_float(river_side.get("seconds"), 3),
        fmt_float(riffle_side.get("wall_seconds"), 3),
    ]
    if result["learner"] in TREE_LEARNERS:
        river_memory = river_side.get("memory") or {}
        riffle_memory = riffle_side.get("memory") or {}
        cells += [
            fmt_count(river_memory.get("leaves")),
            fmt_count(riffle_memory.get("leaves")),
            fmt_rate(river_memory.get("bytes_per_leaf")),
            fmt_rate(river_memory.get("leaf_bytes_estimate")),
            fmt_rate(riffle_memory.get("bytes_per_leaf")),
        ]
    if result.get("moa"):
        moa_side = result["moa"]
        cells += [fmt_percent(moa_side["accuracy"]), fmt_rate(moa_side["rows_per_second"])]
    return "| " + " | ".join(cells) + " |"


def fmt_count(value):
    """A count with thousands separators; a dash for None."""
    return "—" if value is None else f"{value:,}"


def report(results, command_line):
    """The Markdown report: how it was run, then the table, then any discrepancies."""
    header = ["file", "rows", "River acc", "Riffle acc", "Δ acc (pp)", "River log loss",
              "Riffle log loss", "River rows/s", "Riffle rows/s", "speedup",
              "River s", "Riffle wall s"]
    if any(r["learner"] in TREE_LEARNERS for r in results):
        # Bytes per leaf: the whole tree's bytes over the main tree's leaves, each side by its
        # own measure (see river_tree_memory and riffle_tree_memory); River's leaf estimate is
        # what its memory manager takes as the size of one active leaf.
        header += ["River leaves", "Riffle leaves", "River B/leaf", "River leaf estimate B",
                   "Riffle B/leaf"]
    if any(r.get("moa") for r in results):
        header += ["MOA acc", "MOA rows/s"]
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
             for r in results
             if r["riffle"] and r["river"] and r["riffle"]["rows"] != r["river"]["rows"]]
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
        description="Compare `riffle eval` with River (prequential logistic regression or "
                    "Hoeffding trees), and optionally with MOA's trees.")
    parser.add_argument("--riffle", default=DEFAULT_RIFFLE,
                        help=f"riffle binary (default {DEFAULT_RIFFLE})")
    parser.add_argument("--riffle-runs", type=int, default=1, metavar="N",
                        help="run riffle N times per file and report the run with the median "
                             "rows/s (default 1)")
    parser.add_argument("--river-only", action="store_true",
                        help="run only River's side (no riffle binary needed)")
    parser.add_argument("--skip-river", action="store_true",
                        help="leave River's side out (e.g. to add MOA to an earlier run)")
    parser.add_argument("--moa", action="store_true",
                        help="tree learners: also run MOA's tree through capymoa "
                             "(.venv/bin/pip install capymoa==0.15.1; needs a JDK)")
    parser.add_argument("--moa-mode", choices=["cli", "capymoa", "capymoa-csv"], default="cli",
                        help="how MOA runs: its own command line on an ARFF copy of the CSV "
                             "(default), capymoa's prequential_evaluation on that copy, or "
                             "capymoa reading the CSV in Python")
    parser.add_argument("--datasets", default=DEFAULT_DATASETS,
                        help=f"folder of CSV files, target in the last column "
                             f"(default {DEFAULT_DATASETS})")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help=f"where the synthetic stream and MOA's ARFF copies (arff/) are "
                             f"written (default {DEFAULT_DATA_DIR})")
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
    if args.moa and args.learner == "logreg":
        parser.error("--moa applies to tree learners only")
    if args.river_only and args.skip_river:
        parser.error("--river-only and --skip-river exclude each other")
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
        moa = args.moa_mode if args.moa else None
        results = [compare(path, riffle, args.learner, args.sets, not args.skip_river, moa,
                           args.data_dir, args.riffle_runs)
                   for path in select_files(args)]
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
