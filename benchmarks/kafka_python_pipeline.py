#!/usr/bin/env python3
"""The Python side of the Kafka path benchmark (benchmarks/kafka_bench.sh, docs/BENCHMARKS.md).

Subcommands:

``pipeline``
    The baseline Riffle is compared with: what a typical Python seed project writes to score a
    topic with River. A confluent-kafka ``Consumer`` (its own group, ``earliest``, auto commit
    on, one ``poll()`` per message), River ``preprocessing.StandardScaler() |
    linear_model.LogisticRegression()`` with River's defaults (SGD(0.01)), and per message:
    ``json.loads``, ``predict_proba_one``, ``learn_one`` when the event carries a label (inline
    labels, test-then-train like Riffle), then a JSON prediction record produced to another
    topic with the ``Producer`` (``poll(0)`` after each, ``flush()`` at the end). Stops after
    ``--events`` messages and prints one JSON object: events, seconds, events/s (from the first
    message to the end of the flush: the group join before it is not counted, as Riffle's rate
    starts at its first processed event), CPU seconds of the process.

``create-topics``
    Creates topics with 1 partition and replication factor 1 (AdminClient), so that every
    topic exists before a consumer looks for it; ``--config name=value`` sets a topic config
    (e.g. ``message.timestamp.type=LogAppendTime``).

``count``
    Prints the high watermark of partition 0 of a topic: with an idempotent producer and no
    transactions, the number of records it holds.

``latency``
    Reads a topic of Riffle's prediction records from the beginning and prints, as JSON, the
    distribution of (the prediction record's Kafka timestamp - its ``event_time``), in ms
    (both ends have millisecond resolution). ``event_time`` is the event's publication
    (``riffle replay`` sets the event's ``time`` and its Kafka timestamp to the same clock
    reading); the record's timestamp is the broker's append time on a topic created with
    ``message.timestamp.type=LogAppendTime`` (kafka_bench.sh does), so the difference is the
    time until the prediction is in the log, readable by consumers (otherwise it is the time
    Riffle produced it). Also the records' own ``latency_ms`` (Riffle's batch apply to the
    record's publication), and counts of records and distinct ids (lost or duplicated
    predictions).

``probe``
    The floor the broker and the machine set: a plain consumer (``fetch.wait.max.ms`` 5, one
    ``poll()`` per message) on a topic being replayed at a fixed rate prints the distribution
    of (its receipt time - the record's timestamp), in ms, as JSON.

``rate``
    Reads the samples ``kafka_bench.sh`` took of ``/metrics`` (lines ``epoch_seconds events
    predictions server_cpu_ticks broker_cpu_ticks``) and prints the sustained throughput and
    the CPU the server and the broker used, as JSON.

``histogram``
    Reads a ``/metrics`` page and prints p50 / p99 / p99.9 and the mean of
    ``riffle_kafka_event_to_prediction_seconds`` for one model, as JSON.

``summary``
    Prints the table of kafka_bench.sh from its JSON result files.

``scrape``
    A monitoring load on Riffle's HTTP endpoint: GET ``/metrics`` ``--rate`` times a second
    and the dashboard's data (``--dashboard-path``) ``--dashboard-rate`` times a second, over
    one keep-alive connection each, until stopped (SIGTERM) or ``--seconds``; prints the
    requests made, failures, and the mean and max response time as JSON.

Only ``pipeline``, ``create-topics``, ``count``, ``latency`` and ``probe`` import
confluent_kafka; only
``pipeline`` imports River.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

# Fields of Riffle's event records that are not features (docs/KAFKA.md, `riffle replay`).
ROLE_FIELDS = ("id", "key", "time", "event_time", "label")


def cmd_pipeline(args):
    from confluent_kafka import Consumer, KafkaError, Producer
    from river import linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": args.bootstrap})
    consumer.subscribe([args.topic])

    events = labeled = 0
    first = cpu_first = None
    started = time.perf_counter()
    idle_since = time.perf_counter()
    while events < args.events:
        msg = consumer.poll(1.0)
        if msg is None:
            if time.perf_counter() - idle_since > args.idle_timeout:
                sys.exit(f"kafka_python_pipeline: no message for {args.idle_timeout} s "
                         f"after {events} events")
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            sys.exit(f"kafka_python_pipeline: consumer error: {msg.error()}")
        idle_since = time.perf_counter()
        if first is None:
            first = time.perf_counter()
            cpu_first = time.process_time()

        event = json.loads(msg.value())
        event_id = event.get("id")
        label = event.get("label")
        x = {k: v for k, v in event.items() if k not in ROLE_FIELDS}
        proba = model.predict_proba_one(x)
        if label is not None:
            model.learn_one(x, label == 1)
            labeled += 1
        p1 = proba.get(True, 0.0)
        record = {
            "id": event_id,
            "model": "river",
            "predicted": "1" if p1 >= 0.5 else "0",
            "probabilities": {"0": 1.0 - p1, "1": p1},
            "event_time": event.get("time"),
        }
        value = json.dumps(record)
        while True:
            try:
                producer.produce(args.out_topic, key=str(event_id), value=value)
                break
            except BufferError:  # the local queue is full: serve delivery reports
                producer.poll(0.1)
        producer.poll(0)
        events += 1

    undelivered = producer.flush(30)
    end = time.perf_counter()
    cpu = time.process_time() - cpu_first
    consumer.close()
    seconds = end - first
    print(json.dumps({
        "events": events,
        "labeled": labeled,
        "undelivered": undelivered,
        "seconds": seconds,
        "events_per_second": events / seconds,
        "cpu_seconds": cpu,
        "cpu_cores": cpu / seconds,
        "wall_seconds_with_group_join": end - started,
    }))


def cmd_create_topics(args):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    config = dict(item.split("=", 1) for item in args.config)
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=1, replication_factor=1, config=config)
         for t in args.topics],
        operation_timeout=30)
    for topic, future in futures.items():
        future.result(timeout=60)  # raises on failure (an existing topic is a failure too)


def high_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-bench-count"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    return high


def cmd_count(args):
    print(high_watermark(args.bootstrap, args.topic))


def parse_rfc3339_ms(text):
    """Milliseconds since the epoch of Riffle's event_time ("2026-11-23T04:01:51.196000Z")."""
    when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    when = when.replace(tzinfo=datetime.timezone.utc)
    return round(when.timestamp() * 1000)


def percentile(sorted_values, q):
    """The nearest-rank q-quantile (0 < q <= 1) of a sorted list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def cmd_latency(args):
    from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer,
                                 KafkaError, TopicPartition)

    expected = high_watermark(args.bootstrap, args.topic)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "kafka-bench-latency",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    latencies = []
    by_window = {}  # 100 ms window of the event time -> (max latency, max latency_ms)
    in_riffle = []  # the record's latency_ms: Riffle's batch apply to the record's publication
    ids = set()
    records = 0
    timestamp_types = set()
    deadline = time.monotonic() + 120
    while records < expected and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                sys.exit(f"kafka_python_pipeline: consumer error: {msg.error()}")
            records += 1
            prediction = json.loads(msg.value())
            ids.add(prediction["id"])
            timestamp_type, timestamp_ms = msg.timestamp()
            timestamp_types.add(timestamp_type)
            inside = prediction.get("latency_ms")
            if inside is not None:
                in_riffle.append(inside)
            if prediction.get("event_time"):
                event_ms = parse_rfc3339_ms(prediction["event_time"])
                latencies.append(timestamp_ms - event_ms)
                worst = by_window.setdefault(event_ms // 100, [0, 0])
                worst[0] = max(worst[0], timestamp_ms - event_ms)
                worst[1] = max(worst[1], inside or 0)
    consumer.close()
    names = {TIMESTAMP_CREATE_TIME: "CreateTime", TIMESTAMP_LOG_APPEND_TIME: "LogAppendTime"}
    result = {"records": records, "distinct_ids": len(ids),
              "timestamp_type": "/".join(sorted(names.get(t, str(t)) for t in timestamp_types))}
    result.update(distribution(latencies))
    if by_window:
        # The slowest 100 ms windows, by seconds since the first event: for outliers.
        first = min(by_window)
        result["slowest_windows"] = [
            {"at_s": (w - first) / 10, "max_ms": worst[0], "in_riffle_max_ms": worst[1]}
            for w, worst in sorted(by_window.items(), key=lambda kv: -kv[1][0])[:8]]
    in_riffle.sort()
    if in_riffle:
        result["in_riffle_p50_ms"] = percentile(in_riffle, 0.50)
        result["in_riffle_p99_ms"] = percentile(in_riffle, 0.99)
        result["in_riffle_max_ms"] = in_riffle[-1]
    print(json.dumps(result))


def distribution(values):
    """p50, p99, p99.9, max, mean and the count above 20 of a list of latencies in ms."""
    if not values:
        return {}
    values = sorted(values)
    return {
        "p50_ms": percentile(values, 0.50),
        "p99_ms": percentile(values, 0.99),
        "p999_ms": percentile(values, 0.999),
        "max_ms": values[-1],
        "mean_ms": sum(values) / len(values),
        "over_20ms": sum(1 for v in values if v > 20),
    }


def cmd_probe(args):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "kafka-bench-probe",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 5,
    })
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    lags = []
    deadline = time.monotonic() + args.timeout
    while len(lags) < args.records and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        lags.append(time.time() * 1000 - msg.timestamp()[1])
    consumer.close()
    result = {"records": len(lags)}
    result.update(distribution(lags))
    print(json.dumps(result))


def cmd_rate(args):
    samples = []
    with open(args.samples) as f:
        for line in f:
            t, events, predictions, ticks, broker_ticks = line.split()
            samples.append((float(t), float(events), float(predictions), float(ticks),
                            float(broker_ticks)))
    n = args.events
    tick = os.sysconf("SC_CLK_TCK")

    def time_reaching(column, value):
        """Interpolated time at which the counter in `column` reached `value`."""
        for (t0, *a), (t1, *b) in zip(samples, samples[1:]):
            v0, v1 = a[column], b[column]
            if v0 < value <= v1:
                return t0 + (t1 - t0) * (value - v0) / (v1 - v0)
        return None

    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    done = next(i for i, s in enumerate(samples) if s[1] >= n)
    preds_done = next(i for i, s in enumerate(samples) if s[2] >= n)
    t10, t90 = time_reaching(0, 0.1 * n), time_reaching(0, 0.9 * n)
    # From the sample before the first event (the start is between the two samples) to the
    # first sample where every event was processed / every prediction delivered.
    start = samples[max(0, first - 1)]
    t_events = samples[done][0] - start[0]
    t_preds = samples[preds_done][0] - start[0]
    if t10 is None or t90 is None or t90 <= t10 or t_events <= 0 or t_preds <= 0:
        sys.exit("kafka_python_pipeline rate: the run was too short for the 0.25 s samples "
                 "(use more --events)")
    cpu_seconds = (samples[preds_done][3] - start[3]) / tick
    broker_cpu_seconds = (samples[preds_done][4] - start[4]) / tick
    print(json.dumps({
        "events": n,
        "events_per_second_middle_80": 0.8 * n / (t90 - t10),
        "events_per_second_all": n / t_events,
        "seconds_to_all_events": t_events,
        "seconds_to_all_predictions": t_preds,
        "predictions_per_second_all": n / t_preds,
        "server_cpu_seconds": cpu_seconds,
        "server_cpu_cores": cpu_seconds / t_preds,
        "server_cpu_us_per_event": cpu_seconds / n * 1e6,
        "broker_cpu_cores": broker_cpu_seconds / t_preds,
        "broker_cpu_us_per_event": broker_cpu_seconds / n * 1e6,
    }))


def cmd_histogram(args):
    name = "riffle_kafka_event_to_prediction_seconds"
    model_label = f'model="{args.model}"'
    buckets = []  # (le, cumulative count)
    total = count = None
    with open(args.metrics) as f:
        for line in f:
            if not line.startswith(name) or model_label not in line:
                continue
            key, value = line.rsplit(None, 1)
            if key.startswith(name + "_bucket"):
                le = key.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((math.inf if le == "+Inf" else float(le), float(value)))
            elif key.startswith(name + "_sum"):
                total = float(value)
            elif key.startswith(name + "_count"):
                count = float(value)
    buckets.sort()

    def quantile(q):
        """(upper bound of the bucket holding the q-quantile, Prometheus' interpolation)."""
        rank = q * count
        lower, below = 0.0, 0.0
        for le, cumulative in buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return le, lower
                inside = cumulative - below
                return le, lower + (le - lower) * ((rank - below) / inside if inside else 1)
            lower, below = le, cumulative
        return math.inf, math.inf

    result = {"count": count, "mean_ms": 1e3 * total / count if count else None,
              "buckets": [[le if math.isfinite(le) else "+Inf", c] for le, c in buckets]}
    for label, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        upper, interpolated = quantile(q)
        result[f"{label}_bucket_ms"] = upper * 1e3 if math.isfinite(upper) else "+Inf"
        result[f"{label}_interpolated_ms"] = interpolated * 1e3
    print(json.dumps(result))


def cmd_summary(args):
    def load(name):
        with open(os.path.join(args.results, name)) as f:
            return json.load(f)

    tput = load("riffle_throughput.json")
    python = load("python_pipeline.json")
    hist = load("latency_histogram.json")
    probe = load("latency_probe.json")
    with open(os.path.join(args.results, "threads-throughput.txt")) as f:
        threads = [line.split() for line in f if line.strip()]
    lat = load("latency_records.json")
    replay = load("latency_replay.json")
    ratio = tput["events_per_second_middle_80"] / python["events_per_second"]

    def row(what, value, goal="", verdict=""):
        print(f"| {what} | {value} | {goal} | {verdict} |")

    def met(ok):
        return "met" if ok else "NOT met"

    print("| measure | value | goal | |")
    print("|---|---:|---:|---|")
    eps = tput["events_per_second_middle_80"]
    row("Riffle events/s, 1 partition, logreg, 30 features (middle 80%)", f"{eps:,.0f}",
        ">= 200,000", met(eps >= 200_000))
    row("Riffle events/s, first event to last", f"{tput['events_per_second_all']:,.0f}")
    row("Riffle: all predictions delivered after", f"{tput['seconds_to_all_predictions']:.2f} s")
    row("Riffle server CPU", f"{tput['server_cpu_cores']:.2f} cores, "
        f"{tput['server_cpu_us_per_event']:.2f} µs/event")
    row("  by thread (CPU s)", ", ".join(f"{name} {float(sec):.2f}" for name, sec in threads[:3]))
    row("broker CPU during the Riffle run", f"{tput['broker_cpu_cores']:.2f} cores, "
        f"{tput['broker_cpu_us_per_event']:.2f} µs/event")
    row(f"Python (confluent-kafka + River) events/s, first {python['events']:,} events",
        f"{python['events_per_second']:,.0f}")
    row("Python process CPU", f"{python['cpu_cores']:.2f} cores")
    row("ratio Riffle / Python", f"{ratio:.1f}×", ">= 50×", met(ratio >= 50))
    row("latency run: replay's achieved rate", f"{replay['rate']:,.0f} events/s "
        f"({replay['events']:,} in {replay['seconds']:.2f} s)", "10,000")
    row("event-to-prediction (histogram, record time to delivery) p50",
        f"≤ {hist['p50_bucket_ms']:g} ms (interp. {hist['p50_interpolated_ms']:.1f} ms)")
    upper = hist["p99_bucket_ms"]
    lower = max([b[0] * 1e3 for b in hist["buckets"]
                 if b[0] != "+Inf" and b[0] * 1e3 < (upper if upper != "+Inf" else math.inf)],
                default=0)
    if upper != "+Inf" and upper <= 20:
        verdict = "met"
    elif lower >= 20:
        verdict = "NOT met"
    else:
        verdict = f"bucket ({lower:g}, {upper:g}] ms: undecided, see the exact row"
    row("event-to-prediction (histogram) p99",
        f"≤ {upper:g} ms (interp. {hist['p99_interpolated_ms']:.1f} ms)", "< 20 ms", verdict)
    row("event-to-prediction (histogram) mean", f"{hist['mean_ms']:.2f} ms")
    if "p99_ms" in lat:
        what = ("in the predictions log (LogAppendTime)"
                if lat.get("timestamp_type") == "LogAppendTime" else "produced (CreateTime)")
        row(f"event publication to prediction {what}, exact (ms clock), p50 / p99 / p99.9 / max",
            f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['p999_ms']} / {lat['max_ms']} ms",
            "p99 < 20 ms", met(lat["p99_ms"] < 20))
    if "in_riffle_p50_ms" in lat:
        row("  of which inside Riffle (records' latency_ms: batch apply to publication) "
            "p50 / p99 / max",
            f"{lat['in_riffle_p50_ms']:.2f} / {lat['in_riffle_p99_ms']:.2f} / "
            f"{lat['in_riffle_max_ms']:.2f} ms")
    if "p50_ms" in probe:
        row("floor: plain consumer, publication to receipt, no Riffle, p50 / p99 / max",
            f"{probe['p50_ms']:.1f} / {probe['p99_ms']:.1f} / {probe['max_ms']:.1f} ms")
    row("prediction records in the topic / distinct ids / events published",
        f"{lat['records']:,} / {lat['distinct_ids']:,} / {replay['events']:,}")


def cmd_scrape(args):
    import http.client
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    host, port = args.address.rsplit(":", 1)
    targets = [("/metrics", args.rate)]
    if args.dashboard_rate > 0:
        targets.append((args.dashboard_path, args.dashboard_rate))
    conns = {path: http.client.HTTPConnection(host, int(port), timeout=5) for path, _ in targets}
    due = {path: time.monotonic() for path, _ in targets}
    stats = {path: {"requests": 0, "failures": 0, "seconds": 0.0, "max_seconds": 0.0}
             for path, _ in targets}
    end = time.monotonic() + args.seconds if args.seconds > 0 else math.inf
    while not stop and time.monotonic() < end:
        path, rate = min(targets, key=lambda t: due[t[0]])
        wait = due[path] - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        due[path] += 1.0 / rate
        st = stats[path]
        started = time.monotonic()
        try:
            conns[path].request("GET", path)
            response = conns[path].getresponse()
            response.read()
            if response.status != 200:
                st["failures"] += 1
        except (OSError, http.client.HTTPException):
            st["failures"] += 1
            conns[path].close()
        took = time.monotonic() - started
        st["requests"] += 1
        st["seconds"] += took
        st["max_seconds"] = max(st["max_seconds"], took)
    for path, st in stats.items():
        st["mean_ms"] = 1000 * st["seconds"] / st["requests"] if st["requests"] else None
        st["max_ms"] = 1000 * st.pop("max_seconds")
        st.pop("seconds")
    print(json.dumps(stats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pipeline", help="the Python baseline: consume, predict, learn, produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True, help="events topic")
    p.add_argument("--out-topic", required=True, help="predictions topic")
    p.add_argument("--events", type=int, required=True, help="stop after this many events")
    p.add_argument("--group", default="python-pipeline")
    p.add_argument("--idle-timeout", type=float, default=60)
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("create-topics", help="create 1-partition topics")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--config", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("topics", nargs="+")
    p.set_defaults(func=cmd_create_topics)

    p = sub.add_parser("count", help="records in partition 0 of a topic (high watermark)")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.set_defaults(func=cmd_count)

    p = sub.add_parser("latency", help="event-to-prediction times from a predictions topic")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("probe", help="publication-to-receipt times of a plain consumer")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("rate", help="sustained throughput from /metrics samples")
    p.add_argument("--samples", required=True)
    p.add_argument("--events", type=int, required=True)
    p.set_defaults(func=cmd_rate)

    p = sub.add_parser("histogram", help="quantiles of the event-to-prediction histogram")
    p.add_argument("--metrics", required=True, help="a saved /metrics page")
    p.add_argument("--model", required=True)
    p.set_defaults(func=cmd_histogram)

    p = sub.add_parser("scrape", help="GET /metrics (and the dashboard data) at a fixed rate")
    p.add_argument("--address", required=True, help="host:port of the HTTP endpoint")
    p.add_argument("--rate", type=float, default=10, help="/metrics requests per second")
    p.add_argument("--dashboard-path", default="/api/v1/dashboard")
    p.add_argument("--dashboard-rate", type=float, default=1,
                   help="dashboard data requests per second (0: none)")
    p.add_argument("--seconds", type=float, default=0, help="0: until SIGTERM")
    p.set_defaults(func=cmd_scrape)

    p = sub.add_parser("summary", help="the summary table of kafka_bench.sh")
    p.add_argument("--results", required=True)
    p.set_defaults(func=cmd_summary)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
