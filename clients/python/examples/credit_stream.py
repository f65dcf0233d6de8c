"""Streams a real dataset through a running `riffle serve` the way a scoring service sees it:
every event is predicted when it arrives (with an id), and its label arrives later, by id,
LABEL_DELAY events afterwards (like a fraud confirmation or a loan that defaults months after
the decision). The server learns each delayed label from the features it cached at prediction
time and keeps prequential metrics.

    python credit_stream.py --target 127.0.0.1:50051 --data data/weka-credit-g.csv
    python credit_stream.py --target ... --check FILE   # after a restart: same answer?
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

from riffle_client import Client, Example, Instance

LABEL_DELAY = 100
BATCH = 25


def read_events(path: str, target: str) -> list[tuple[str, dict, str]]:
    events = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            label = row.pop(target)
            features: dict = {}
            for name, value in row.items():
                if value == "":
                    continue  # missing
                try:
                    features[name] = float(value)
                except ValueError:
                    features[name] = value
            events.append((f"evt-{i}", features, label))
    return events


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="host:port of riffle serve")
    parser.add_argument("--data", default="data/weka-credit-g.csv")
    parser.add_argument("--label-column", default="class")
    parser.add_argument("--model", default="credit")
    parser.add_argument("--token", default=None)
    parser.add_argument("--probe-out", help="write the model's answer for one probe event here")
    parser.add_argument("--check", help="compare the model's answer with this probe file")
    args = parser.parse_args()

    events = read_events(args.data, args.label_column)
    probe = events[0][1]
    with Client(args.target, token=args.token) as riffle:
        if args.check:
            info = riffle.get_model(args.model)
            p = riffle.predict(args.model, probe)
            saved = json.load(open(args.check))
            same = p.probabilities == saved["probabilities"]
            print(f"restored model '{info.name}': generation {info.generation}, "
                  f"{info.labeled} labeled events, classes {list(info.classes)}")
            print(f"probe prediction after restart: {p.probabilities} "
                  f"({'identical to' if same else 'DIFFERENT from'} before the restart)")
            return 0 if same else 1

        pending: list[tuple[str, str]] = []  # (id, label) not yet sent
        for start in range(0, len(events), BATCH):
            batch = events[start:start + BATCH]
            riffle.predict_many(args.model, [Instance(features=f, id=i) for i, f, _ in batch])
            pending.extend((i, label) for i, _, label in batch)
            # Labels of events predicted LABEL_DELAY events ago arrive now.
            due = len(pending) - LABEL_DELAY
            if due > 0:
                riffle.learn_many(args.model, [Example(label=l, id=i) for i, l in pending[:due]])
                del pending[:due]
            if (start // BATCH) % 8 == 7:
                m = riffle.metrics(args.model)
                auc = m.rolling.roc_auc
                print(f"  events {start + len(batch):5d}  labeled {m.labeled:5d}  rolling "
                      f"accuracy {m.rolling.accuracy:.3f}  AUC "
                      f"{'n/a' if auc is None else f'{auc:.3f}'}  log loss "
                      f"{m.rolling.log_loss:.3f}")
        riffle.learn_many(args.model, [Example(label=l, id=i) for i, l in pending])
        m = riffle.metrics(args.model)
        print(f"done: {m.events} events predicted, {m.labeled} labels joined by id "
              f"(cache hits {m.label_cache_hits}, misses {m.label_cache_misses}); "
              f"prequential accuracy {m.cumulative.accuracy:.4f}, AUC {m.cumulative.roc_auc:.4f}")
        print(f"latency per call: predict p50 {m.predict_latency.p50_seconds * 1e6:.0f} us, "
              f"p99 {m.predict_latency.p99_seconds * 1e6:.0f} us; learn p50 "
              f"{m.learn_latency.p50_seconds * 1e6:.0f} us")
        ck = riffle.checkpoint(args.model)
        print(f"checkpoint written: generation {ck.generation}, {ck.size_bytes} bytes")
        if args.probe_out:
            p = riffle.predict(args.model, probe)
            json.dump({"probabilities": p.probabilities}, open(args.probe_out, "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
