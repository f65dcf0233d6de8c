"""The Kafka path of `riffle serve` end to end, against a real Apache Kafka broker.

Each test publishes data (with `riffle replay`, or raw bytes with confluent-kafka), runs real
`riffle serve` processes on it, and checks what comes out: prediction records, routed copies,
dead letters, the model's counts over gRPC, and after kill -9 that learning stayed exactly-once
(DESIGN.md, "Semantics to keep").

    RIFFLE_KAFKA_BOOTSTRAP  the broker (host:port); scripts/test_kafka_integration.sh starts one
                            and sets it. Unset, every test is skipped with a message saying so.
    RIFFLE_BIN              the riffle binary (default <repo>/build/release/service/riffle)
    RIFFLE_CRASH_SEED       fixes the kill points of the crash test (default: a fresh seed,
                            printed in its failure messages)

Every test has its own topics and consumer groups (a uuid suffix) and its own temporary
directory, so the tests share one broker per CI run. Every wait has a deadline, every test a
timeout (pytest-timeout), and every child process is killed at teardown.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

import grpc
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from grpc_health.v1 import health_pb2, health_pb2_grpc

from riffle_client import Client

REPO = Path(__file__).resolve().parents[2]
CREDIT_G = REPO / "data/weka-credit-g.csv"  # 1000 rows, label column "class": good / bad
DIABETES = REPO / "data/weka-diabetes.csv"  # 768 rows, label column "class"

START_TIMEOUT_S = 30.0  # riffle serve writes its ready file
STOP_TIMEOUT_S = 30.0  # SIGTERM to exit (the Kafka path waits for its outputs first)
CATCH_UP_TIMEOUT_S = 60.0  # a few thousand events through the Kafka path

# No test may hang: pytest-timeout fails it (fixture teardown still kills the children).
pytestmark = pytest.mark.timeout(150)

# The fields of a prediction record (service/kafka_pipeline.h, FormatPredictionRecord).
PREDICTION_FIELDS = {"id", "model", "version", "generation", "predicted", "probabilities",
                     "event_time", "latency_ms"}
RFC3339_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str,
               context: Callable[[], str] = lambda: "") -> T:
    """Polls `condition` until it returns something truthy (returned); fails after `timeout`
    seconds with `what` and the `context` (e.g. the server's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{context()}",
                        pytrace=False)
        time.sleep(0.05)


def wait_settled(read: Callable[[], int], target: int, timeout: float, quiet: float = 3.0) -> int:
    """Polls a growing count until it reaches `target`, or stops growing for `quiet` seconds
    (a stalled pipeline: no use waiting out the whole timeout), or `timeout` passes. Returns
    the last value; the caller asserts on it."""
    deadline = time.monotonic() + timeout
    value = read()
    changed = time.monotonic()
    while value < target and time.monotonic() < deadline and time.monotonic() - changed < quiet:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, changed = now, time.monotonic()
    return value


# ---------------------------------------------------------------------------------------------
# riffle serve


class ServeProcess:
    """One `riffle serve --config` child. start() returns once the ready file names the gRPC
    address; stop() is SIGTERM (graceful: final checkpoint), kill9() a crash."""

    def __init__(self, binary: Path, workdir: Path, config: dict[str, Any],
                 args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.workdir = workdir
        self.config = config
        self.args = args
        self.config_file = workdir / "riffle.yaml"
        self.ready_file = workdir / "ready"
        self.log_file = workdir / "serve.log"
        self.proc: Optional[subprocess.Popen] = None
        self.target = ""
        self._client: Optional[Client] = None

    def start(self) -> "ServeProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        # YAML is a superset of JSON: the config is written as JSON, so no quoting surprises.
        self.config_file.write_text(json.dumps(self.config, indent=2))
        self.ready_file.unlink(missing_ok=True)
        cmd = [str(self.binary), "serve", "--config", str(self.config_file),
               "--ready-file", str(self.ready_file), *self.args]
        with open(self.log_file, "ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                pytest.fail(f"riffle serve exited with {code} before it was ready:\n{self.log()}",
                            pytrace=False)
            text = self.ready_file.read_text().strip() if self.ready_file.exists() else ""
            if text:
                self.target = text
                return self
            time.sleep(0.02)
        self.kill9()
        pytest.fail(f"riffle serve was not ready within {START_TIMEOUT_S:.0f}s:\n{self.log()}",
                    pytrace=False)

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.target, timeout=10)
        return self._client

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kafka_health(self, model: str) -> str:
        """grpc.health.v1 status of the model's Kafka path ("riffle.v1.kafka/<model>"):
        SERVING, NOT_SERVING, or NOT_FOUND while the server does not know the name."""
        stub = health_pb2_grpc.HealthStub(self.client().channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=f"riffle.v1.kafka/{model}"),
                                  timeout=5)
        except grpc.RpcError as e:
            return e.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def stop(self) -> int:
        """SIGTERM and wait; the exit code (0: a clean stop with final checkpoints)."""
        self._close_client()
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill9()
                pytest.fail(f"riffle serve ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s:\n"
                            f"{self.log()}", pytrace=False)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        self._close_client()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


# ---------------------------------------------------------------------------------------------
# Kafka and the per-test rig


@dataclass(frozen=True)
class Record:
    key: Optional[bytes]
    value: Optional[bytes]
    headers: dict[str, bytes]
    partition: int
    offset: int
    timestamp_ms: int

    def json(self) -> Any:
        return json.loads(self.value)


class Rig:
    """What one test uses: unique names, topics, replays, raw producers, readers, and the
    serve processes it started (killed at teardown if still running)."""

    def __init__(self, bootstrap: str, binary: Path, tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.binary = binary
        self.tmp = tmp_path
        self.suffix = uuid.uuid4().hex[:12]
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.servers: list[ServeProcess] = []
        self._watermarks: Optional[Consumer] = None

    def name(self, base: str) -> str:
        """A topic or group name unique to this test."""
        return f"{base}-{self.suffix}"

    def create_topics(self, *topics: str, partitions: int = 1) -> None:
        futures = self.admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics],
            operation_timeout=30, request_timeout=30)
        for topic, future in futures.items():
            future.result(timeout=30)
        # Metadata reaches every listener asynchronously: wait until all are visible.
        wait_until(lambda: set(topics) <= set(self.admin.list_topics(timeout=10).topics),
                   20, f"topics {topics} to appear in the metadata")

    def replay(self, data: Path, topic: str, *args: str, timeout: float = 90) -> str:
        """`riffle replay` (must exit 0); its report on stdout."""
        cmd = [str(self.binary), "replay", "--data", str(data), "--topic", topic,
               "--bootstrap", self.bootstrap, "--no-progress", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (f"{' '.join(cmd)} exited with {done.returncode}:\n"
                                      f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def produce(self, topic: str, records: list[tuple[Optional[bytes], bytes]]) -> list[int]:
        """Publishes raw (key, value) records in order on partition 0; their offsets."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                             "message.timeout.ms": 15000})
        offsets: list[Optional[int]] = [None] * len(records)
        errors: list[str] = []

        def delivered(index: int) -> Callable[[Any, Any], None]:
            def report(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(str(err))
                else:
                    offsets[index] = msg.offset()
            return report

        for i, (key, value) in enumerate(records):
            producer.produce(topic, value=value, key=key, partition=0, on_delivery=delivered(i))
        left = producer.flush(30)
        assert left == 0 and not errors, f"produce to {topic}: {left} undelivered, {errors}"
        assert all(o is not None for o in offsets)
        return [int(o) for o in offsets]

    def end_offset(self, topic: str) -> int:
        """High watermark of partition 0: how many records the topic holds."""
        if self._watermarks is None:
            self._watermarks = Consumer({"bootstrap.servers": self.bootstrap,
                                         "group.id": self.name("watermarks"),
                                         "enable.auto.commit": False})
        return self._watermarks.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]

    def read(self, topic: str, timeout: float = 30) -> list[Record]:
        """Every record of the topic (all partitions), up to the end it has now."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap,
                             "group.id": self.name("reader"), "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            assert metadata.error is None, f"{topic}: {metadata.error}"
            ends: dict[int, int] = {}
            assignment = []
            for p in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    ends[p] = high
                    assignment.append(TopicPartition(topic, p, low))
            records: list[Record] = []
            if not assignment:
                return records
            consumer.assign(assignment)
            done: set[int] = set()
            deadline = time.monotonic() + timeout
            while len(done) < len(ends):
                assert time.monotonic() < deadline, f"reading {topic}: timed out after {timeout}s"
                for m in consumer.consume(num_messages=1000, timeout=0.5):
                    if m.error() is not None:
                        raise KafkaException(m.error())
                    records.append(Record(m.key(), m.value(), dict(m.headers() or []),
                                          m.partition(), m.offset(), m.timestamp()[1]))
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
            return records
        finally:
            consumer.close()

    def serve(self, models: list[dict[str, Any]], *, name: str = "serve",
              checkpoint_dir: Optional[Path] = None, every_events: int = 100_000,
              kafka: Optional[dict[str, Any]] = None, args: tuple[str, ...] = ()) -> ServeProcess:
        config = {
            "listen": "127.0.0.1:0",
            "checkpoint": {"dir": str(checkpoint_dir or self.tmp / name / "checkpoints"),
                           "every_events": every_events},
            "kafka": {"bootstrap_servers": self.bootstrap, **(kafka or {})},
            "models": models,
        }
        server = ServeProcess(self.binary, self.tmp / name, config, args)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.kill9()
        if self._watermarks is not None:
            self._watermarks.close()


def kafka_model(name: str, *, events: str, predictions: str, group: str,
                labels: Optional[str] = None, routes: Optional[list[dict[str, Any]]] = None,
                spec: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """A `models:` entry with a `kafka:` section (service/serve_config.cc)."""
    kafka: dict[str, Any] = {"events_topic": events, "predictions_topic": predictions,
                             "group_id": group}
    if labels is not None:
        kafka["labels_topic"] = labels
    if routes is not None:
        kafka["routes"] = routes
    return {"name": name, "spec": spec or {"learner": "logreg"}, "kafka": kafka}


def shutdown_stats(log: str, model: str) -> dict[str, int]:
    """The counters serve logs for a model's Kafka path when it stops."""
    m = re.search(rf"kafka model '{re.escape(model)}': (\d+) records, (\d+) predictions, "
                  r"(\d+) labels joined, (\d+) missed, (\d+) dead letters", log)
    assert m, f"no Kafka shutdown line for {model} in the log:\n{log}"
    keys = ("records", "predictions", "labels_joined", "labels_missed", "dead_letters")
    return dict(zip(keys, map(int, m.groups())))


def check_prediction_record(record: Record, model: str) -> dict[str, Any]:
    """The documented shape of a prediction record; returns it decoded."""
    p = record.json()
    assert set(p) == PREDICTION_FIELDS, p
    assert record.key == p["id"].encode(), (record.key, p)
    assert p["model"] == model
    assert isinstance(p["version"], int) and p["version"] >= 1, p
    assert isinstance(p["generation"], int) and p["generation"] >= 0, p
    # Every class the model knows, with the argmax predicted; {} and null before the first
    # label (delayed labels).
    probabilities = p["probabilities"]
    assert isinstance(probabilities, dict), p
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in probabilities.values()), p
    if len(probabilities) >= 2:
        assert abs(sum(probabilities.values()) - 1) < 1e-9, p
    if probabilities:
        assert p["predicted"] in probabilities, p
        assert probabilities[p["predicted"]] == max(probabilities.values()), p
    else:
        assert p["predicted"] is None, p
    assert isinstance(p["event_time"], str) and RFC3339_MICROS.match(p["event_time"]), p
    assert isinstance(p["latency_ms"], (int, float)) and p["latency_ms"] >= 0, p
    return p


def epoch_ms(rfc3339: str) -> int:
    t = datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(t.timestamp() * 1000)


def read_features(path: Path, label: str) -> list[dict[str, float]]:
    """Numeric CSV rows as feature dicts, without the label column."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if k != label} for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def bootstrap() -> str:
    address = os.environ.get("RIFFLE_KAFKA_BOOTSTRAP", "")
    if not address:
        pytest.skip("RIFFLE_KAFKA_BOOTSTRAP is not set: these tests need a real Kafka broker. "
                    "Run scripts/test_kafka_integration.sh BUILD_DIR, or start one with "
                    "`scripts/kafka.sh start DIR` and export the address it prints.")
    try:
        AdminClient({"bootstrap.servers": address}).list_topics(timeout=15)
    except KafkaException as e:
        pytest.fail(f"RIFFLE_KAFKA_BOOTSTRAP={address}, but no broker answers there: {e}",
                    pytrace=False)
    return address


@pytest.fixture(scope="session")
def riffle_bin() -> Path:
    path = Path(os.environ.get("RIFFLE_BIN") or REPO / "build/release/service/riffle").resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"riffle binary not found or not executable: {path} (build it, or set "
                    "RIFFLE_BIN)", pytrace=False)
    return path


@pytest.fixture
def rig(bootstrap: str, riffle_bin: Path, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(bootstrap, riffle_bin, tmp_path)
    try:
        yield r
    finally:
        r.close()


# ---------------------------------------------------------------------------------------------
# 1. Labeled events: one prediction each, each learned once, routes by probability


def test_labeled_events_are_predicted_learned_and_routed(rig: Rig) -> None:
    n, model, threshold = 1000, "credit", 0.5
    events, predictions, flagged = rig.name("credit"), rig.name("credit.pred"), rig.name("flagged")
    rig.create_topics(events, events + ".dlq", predictions, flagged)
    report = rig.replay(CREDIT_G, events, "--label", "class")
    assert f"events published   {n} to {events} ({n} delivered)" in report, report

    server = rig.serve([kafka_model(
        model, events=events, predictions=predictions, group=rig.name("credit"),
        routes=[{"topic": flagged, "class": "bad", "min_probability": threshold}])])
    c = server.client()
    wait_until(lambda: c.get_model(model).labeled >= n, CATCH_UP_TIMEOUT_S,
               f"{n} labeled events learned", server.log)
    wait_until(lambda: rig.end_offset(predictions) >= n, 30, f"{n} prediction records",
               server.log)
    info, metrics = c.get_model(model), c.metrics(model)
    assert (info.labeled, info.events, info.unlabeled) == (n, n, 0)
    assert metrics.labeled == n
    assert server.stop() == 0
    assert shutdown_stats(server.log(), model) == {
        "records": n, "predictions": n, "labels_joined": 0, "labels_missed": 0,
        "dead_letters": 0}

    # Exactly one prediction per event (no restart here, so no duplicate either).
    published = {r.json()["id"]: r.json()["time"] for r in rig.read(events)}
    records = rig.read(predictions)
    assert len(records) == n
    decoded = {}
    for record in records:
        p = check_prediction_record(record, model)
        decoded[p["id"]] = p
    assert sorted(decoded, key=int) == [str(i) for i in range(n)]
    assert set(decoded["999"]["probabilities"]) == {"good", "bad"}
    # event_time is the event's own "time" (the replay clock, epoch ms), not the service's.
    assert all(epoch_ms(p["event_time"]) == published[i] for i, p in decoded.items())

    # The route: exactly the predictions with P(bad) >= threshold, each a copy of its record.
    expected = {i for i, p in decoded.items() if p["probabilities"].get("bad", 0) >= threshold}
    assert 0 < len(expected) < n, "the threshold must split the stream for the test to bite"
    routed = rig.read(flagged)
    assert sorted((r.json()["id"] for r in routed), key=int) == sorted(expected, key=int)
    for r in routed:
        assert r.json()["probabilities"]["bad"] >= threshold
        assert r.json() == decoded[r.json()["id"]] and r.key == r.json()["id"].encode()
    assert rig.end_offset(events + ".dlq") == 0


# ---------------------------------------------------------------------------------------------
# 2. Delayed labels


def test_delayed_labels_are_all_joined(rig: Rig) -> None:
    n, model = 1000, "credit"
    events, labels, predictions = rig.name("ev"), rig.name("ev.labels"), rig.name("ev.pred")
    rig.create_topics(events, labels, events + ".dlq", predictions)
    server = rig.serve([kafka_model(model, events=events, labels=labels, predictions=predictions,
                                    group=rig.name("delayed"))])
    c = server.client()
    wait_until(lambda: server.kafka_health(model) == "SERVING", 30,
               "the Kafka path to be assigned (health SERVING)", server.log)
    # Paced, so every label really comes 2 s after its event, while the service is live.
    report = rig.replay(CREDIT_G, events, "--label", "class", "--label-delay", "2",
                        "--labels-topic", labels, "--rate", "1000")
    assert f"labels published   {n} to {labels} ({n} delivered)" in report, report

    wait_until(lambda: c.get_model(model).labeled >= n, CATCH_UP_TIMEOUT_S,
               f"{n} delayed labels learned", server.log)
    metrics = c.metrics(model)
    # (ModelInfo.events counts each event twice here, predicted and then learned: not checked.)
    assert c.get_model(model).labeled == n
    assert (metrics.label_cache_hits, metrics.label_cache_misses) == (n, 0)
    assert server.stop() == 0
    stats = shutdown_stats(server.log(), model)
    assert (stats["records"], stats["predictions"]) == (2 * n, n), stats
    assert (stats["labels_joined"], stats["labels_missed"], stats["dead_letters"]) == (n, 0, 0)

    assert all("label" not in r.json() for r in rig.read(events)), "events carried labels"
    records = rig.read(predictions)
    ids = [check_prediction_record(r, model)["id"] for r in records]
    assert sorted(ids, key=int) == [str(i) for i in range(n)]


def test_delayed_labels_in_a_backlog_are_joined(rig: Rig) -> None:
    # A backlog of events several fetches long (about 5 MB: librdkafka fetches at most 1 MiB
    # per partition), whose labels fit in one fetch: whichever partition is read first, the
    # labels of the later events arrive before them (with one fetch's worth, which topic comes
    # first in librdkafka's rotation decides, and the loss is all or nothing).
    n, model = 20_000, "agrawal"
    data = rig.tmp / "agrawal.csv"
    with open(data, "wb") as f:
        subprocess.run([str(rig.binary), "gen", "agrawal", "--rows", str(n), "--seed", "3"],
                       stdout=f, check=True, timeout=30)
    events, labels, predictions = rig.name("bl"), rig.name("bl.labels"), rig.name("bl.pred")
    rig.create_topics(events, labels, events + ".dlq", predictions)
    # Everything is published before the service starts, each label after its event.
    rig.replay(data, events, "--label", "class", "--label-delay", "1", "--labels-topic", labels)
    server = rig.serve([kafka_model(model, events=events, labels=labels, predictions=predictions,
                                    group=rig.name("backlog"))])
    c = server.client()

    def labels_seen() -> bool:
        m = c.metrics(model)
        return m.label_cache_hits + m.label_cache_misses >= n

    wait_until(labels_seen, CATCH_UP_TIMEOUT_S, f"{n} delayed labels processed", server.log)
    metrics = c.metrics(model)
    assert (metrics.label_cache_hits, metrics.label_cache_misses) == (n, 0)
    assert c.get_model(model).labeled == n


# ---------------------------------------------------------------------------------------------
# 3. Malformed events: dead letters with the original bytes, the stream goes on


def test_malformed_events_go_to_the_dead_letter_topic(rig: Rig) -> None:
    model = "mixed"
    events, labels, predictions = rig.name("mx"), rig.name("mx.labels"), rig.name("mx.pred")
    dlq = events + ".dlq"
    rig.create_topics(events, labels, dlq, predictions)
    # Fixed classes, so that an unknown label is an invalid event rather than a new class.
    spec = {"learner": "logreg", "classes": ["no", "yes"]}
    server = rig.serve([kafka_model(model, events=events, labels=labels, predictions=predictions,
                                    group=rig.name("mixed"), spec=spec)])
    c = server.client()

    def good(i: int) -> tuple[bytes, bytes]:
        event = {"id": f"g{i}", "a": i * 0.5, "b": -i, "color": ["red", "blue"][i % 2],
                 "label": ["no", "yes"][i % 3 == 0]}
        return f"g{i}".encode(), json.dumps(event).encode()

    # (key, value, the riffle.error.code it must carry)
    bad = [
        (b"k-json", b'{"id": "b1", "a": 1,', "INVALID_JSON"),
        (b"k-nan", b'{"id": "b2", "a": NaN, "label": "yes"}', "NON_FINITE_NUMBER"),
        (b"k-noid", b'{"a": 1.5, "label": "no"}', "MISSING_ID"),
        (b"k-labelobj", b'{"id": "b4", "a": 2.0, "label": {"class": "yes"}}', "BAD_LABEL_TYPE"),
        (b"k-array", b"[1, 2, 3]", "NOT_AN_OBJECT"),
        (b"k-utf8", b'{"id": "b6", "c": "\xff\xfe"}', "INVALID_UTF8"),
        (None, b"", "INVALID_JSON"),
        (b"k-class", b'{"id": "b8", "a": 3.0, "label": "maybe"}', "INVALID_EVENT"),
    ]
    stream: list[tuple[Optional[bytes], bytes]] = []
    for i, (key, value, _) in enumerate(bad):  # good, bad, good, bad, ..., then goods
        stream += [good(i), (key, value)]
    stream += [good(i) for i in range(len(bad), 20)]
    offsets = rig.produce(events, stream)
    bad_offsets = {offsets[2 * i + 1]: b for i, b in enumerate(bad)}
    # And a labels-topic record without a label.
    label_offset = rig.produce(labels, [(b"k-nolabel", b'{"id": "g1"}')])[0]

    expected_dead = len(bad) + 1
    wait_until(lambda: rig.end_offset(dlq) >= expected_dead, 30,
               f"{expected_dead} dead letters", server.log)
    wait_until(lambda: rig.end_offset(predictions) >= 20, 30, "20 predictions", server.log)
    assert server.alive(), server.log()

    dead = rig.read(dlq)
    assert len(dead) == expected_dead
    by_source = {(r.headers["riffle.source.topic"].decode(),
                  int(r.headers["riffle.source.offset"])): r for r in dead}
    assert len(by_source) == expected_dead
    for offset, (key, value, code) in bad_offsets.items():
        r = by_source[(events, offset)]
        assert r.value == value and r.key == key, (code, r)
        assert r.headers["riffle.error.code"] == code.encode(), (value, r.headers)
        assert r.headers["riffle.error.message"], r.headers
        assert r.headers["riffle.source.partition"] == b"0"
        assert r.headers["riffle.model"] == model.encode()
    r = by_source[(labels, label_offset)]
    assert r.value == b'{"id": "g1"}' and r.key == b"k-nolabel"
    assert r.headers["riffle.error.code"] == b"MISSING_LABEL", r.headers

    ids = sorted(check_prediction_record(r, model)["id"] for r in rig.read(predictions))
    assert ids == sorted(f"g{i}" for i in range(20))
    assert c.get_model(model).labeled == 20

    # The stream goes on: more good events after the bad ones, and one more bad one.
    more = [good(i) for i in range(20, 30)] + [(b"k-late", b'{"id": "late", "a": }')]
    late_offset = rig.produce(events, more)[-1]
    wait_until(lambda: c.get_model(model).labeled >= 30, 30, "30 labeled events", server.log)
    wait_until(lambda: rig.end_offset(dlq) >= expected_dead + 1, 30, "the late dead letter",
               server.log)
    late = [r for r in rig.read(dlq) if int(r.headers["riffle.source.offset"]) == late_offset
            and r.headers["riffle.source.topic"] == events.encode()]
    assert len(late) == 1 and late[0].headers["riffle.error.code"] == b"INVALID_JSON"
    assert [m.name for m in c.list_models()] == [model]
    assert server.stop() == 0
    stats = shutdown_stats(server.log(), model)
    assert (stats["predictions"], stats["dead_letters"]) == (30, expected_dead + 1), stats
    assert rig.end_offset(predictions) == 30


def test_text_that_is_not_json_is_dead_lettered_as_invalid_json(rig: Rig) -> None:
    model = "text"
    events, predictions = rig.name("tx"), rig.name("tx.pred")
    dlq = events + ".dlq"
    rig.create_topics(events, dlq, predictions)
    server = rig.serve([kafka_model(model, events=events, predictions=predictions,
                                    group=rig.name("text"))])
    texts = [b"not json at all", b"hello", b"123abc", b'"unterminated', b"true love"]
    rig.produce(events, [(None, t) for t in texts])
    wait_until(lambda: rig.end_offset(dlq) >= len(texts), 30, "the dead letters", server.log)
    codes = {r.value: r.headers["riffle.error.code"] for r in rig.read(dlq)}
    assert codes == {t: b"INVALID_JSON" for t in texts}


# ---------------------------------------------------------------------------------------------
# 4. The service before the data, and without a broker


def test_service_started_before_the_events_predicts_them_all(rig: Rig) -> None:
    n, model = 768, "diabetes"
    events, predictions = rig.name("late"), rig.name("late.pred")
    rig.create_topics(events, events + ".dlq", predictions)
    server = rig.serve([kafka_model(model, events=events, predictions=predictions,
                                    group=rig.name("late"))])
    c = server.client()
    assert [m.name for m in c.list_models()] == [model]
    wait_until(lambda: server.kafka_health(model) == "SERVING", 30,
               "the Kafka path to be connected (health SERVING)", server.log)
    assert c.get_model(model).events == 0

    rig.replay(DIABETES, events, "--label", "class")
    wait_until(lambda: c.get_model(model).labeled >= n, CATCH_UP_TIMEOUT_S,
               f"{n} labeled events learned", server.log)
    wait_until(lambda: rig.end_offset(predictions) >= n, 30, f"{n} predictions", server.log)
    assert c.get_model(model).labeled == n
    assert server.stop() == 0
    ids = [check_prediction_record(r, model)["id"] for r in rig.read(predictions)]
    assert sorted(ids, key=int) == [str(i) for i in range(n)]


def test_grpc_serves_while_the_broker_is_unreachable(rig: Rig) -> None:
    model = "offline"
    # Port 1 on loopback: nothing listens, connections are refused at once. --kafka wins over
    # the config's bootstrap_servers.
    server = rig.serve([kafka_model(model, events=rig.name("none"), predictions=rig.name("none.p"),
                                    group=rig.name("offline"))], args=("--kafka", "127.0.0.1:1"))
    c = server.client()
    assert [m.name for m in c.list_models()] == [model]
    p = c.predict(model, {"x": 1.0, "y": "a"}, id="e1")
    assert p.id == "e1" and p.model == model
    assert c.learn(model, {"x": 2.0, "y": "b"}, "1").learned == 1

    wait_until(lambda: server.kafka_health(model) != "NOT_FOUND", 10,
               "the Kafka path's health to be published", server.log)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # and it stays so
        assert server.kafka_health(model) == "NOT_SERVING", server.log()
        time.sleep(0.2)
    assert c.health() == "SERVING" and c.health(model) == "SERVING"
    assert c.get_model(model).labeled == 1

    started = time.monotonic()
    assert server.stop() == 0, server.log()
    assert time.monotonic() - started < 15, f"stopping took too long:\n{server.log()}"
    stats = shutdown_stats(server.log(), model)
    assert stats["records"] == 0 and stats["predictions"] == 0


# ---------------------------------------------------------------------------------------------
# 5. Crash safety: kill -9 at random points, learning stays exactly-once


def test_kill9_neither_loses_nor_repeats_learning(rig: Rig) -> None:
    n, model, every_events = 5000, "agrawal", 200
    data, probe_data = rig.tmp / "agrawal.csv", rig.tmp / "probes.csv"
    for path, rows, seed in ((data, n, 11), (probe_data, 50, 12345)):
        with open(path, "wb") as f:
            subprocess.run([str(rig.binary), "gen", "agrawal", "--rows", str(rows), "--seed",
                            str(seed)], stdout=f, check=True, timeout=30)
    probes = read_features(probe_data, "class")

    events = rig.name("crash")
    crash_predictions, reference_predictions = rig.name("crash.pred"), rig.name("ref.pred")
    rig.create_topics(events, events + ".dlq", crash_predictions, reference_predictions)
    rig.replay(data, events, "--label", "class")
    # Small batches and frequent checkpoints: many checkpoint boundaries to crash between.
    kafka = {"batch_size": 50}
    crash_model = kafka_model(model, events=events, predictions=crash_predictions,
                              group=rig.name("crash"))
    crash_dir = rig.tmp / "crash-checkpoints"

    seed = int(os.environ.get("RIFFLE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    trials: list[str] = []

    def context() -> str:  # for failure messages: how to replay these kill points
        return f"RIFFLE_CRASH_SEED={seed}; kills: {trials}"

    def serve_crash_run(name: str) -> ServeProcess:
        return rig.serve([crash_model], name=name, checkpoint_dir=crash_dir,
                         every_events=every_events, kafka=kafka)

    # Three crashes, and one graceful stop (SIGTERM) mid-stream, whose final checkpoint must be
    # as consistent as the periodic ones.
    for trial, how in enumerate(("kill -9", "kill -9", "SIGTERM", "kill -9")):
        server = serve_crash_run(f"crash{trial}")
        c = server.client()
        # The restored count, plus what the Kafka path learned since the ready file appeared.
        first = c.get_model(model).labeled
        assert first <= n, f"{first} labeled events of {n} after a restart; {context()}"
        # Kill at whichever comes first: a random delay, or the model passing a random count
        # (the whole stream takes well under a second here, so a delay alone would mostly
        # miss it).
        delay, target = rng.uniform(0.0, 1.5), rng.randint(first, n)
        deadline = time.monotonic() + delay
        seen = first
        while time.monotonic() < deadline and seen < target:
            seen = c.get_model(model).labeled
            time.sleep(0.002)
        if how == "SIGTERM":
            assert server.stop() == 0, server.log()
        else:
            server.kill9()
        trials.append(f"#{trial}: {first} labeled at start, delay {delay:.3f}s, target {target}, "
                      f"{how} at >= {seen}")

    server = serve_crash_run("crash-final")
    c = server.client()
    trials.append(f"final: {c.get_model(model).labeled} labeled at start")
    # Caught up: the count reaches n (and stays there a moment, so that a repeat would show),
    # or stops growing below n.
    wait_settled(lambda: c.get_model(model).labeled, n, CATCH_UP_TIMEOUT_S)
    wait_settled(lambda: c.get_model(model).labeled, n + 1, CATCH_UP_TIMEOUT_S, quiet=1.0)
    crash_info = c.get_model(model)
    crash_probabilities = [p.probabilities for p in c.predict_many(model, probes)]
    assert server.stop() == 0, server.log()

    reference = rig.serve([kafka_model(model, events=events, predictions=reference_predictions,
                                       group=rig.name("reference"))],
                          name="reference", checkpoint_dir=rig.tmp / "reference-checkpoints",
                          every_events=every_events, kafka=kafka)
    r = reference.client()
    wait_settled(lambda: r.get_model(model).labeled, n, CATCH_UP_TIMEOUT_S)
    reference_info = r.get_model(model)
    reference_probabilities = [p.probabilities for p in r.predict_many(model, probes)]
    assert reference.stop() == 0, reference.log()

    # Every labeled event learned exactly once, in both runs, and the same model results.
    assert (reference_info.labeled, reference_info.events) == (n, n), reference.log()
    assert crash_info.labeled == n, f"crash run learned {crash_info.labeled} of {n}; {context()}"
    assert crash_info.events == n, f"crash run predicted {crash_info.events}; {context()}"
    for i, (got, want) in enumerate(zip(crash_probabilities, reference_probabilities)):
        assert got.keys() == want.keys(), (i, got, want)
        for k in want:
            assert abs(got[k] - want[k]) <= 1e-12, (f"probe {i}: P({k}) {got[k]!r} after the "
                                                    f"crashes, {want[k]!r} without; {context()}")

    # Outputs are at-least-once: every event has a prediction after the crashes (repeats allowed);
    # the uninterrupted run has exactly one each.
    crash_ids = [check_prediction_record(rec, model)["id"] for rec in rig.read(crash_predictions)]
    missing = set(map(str, range(n))) - set(crash_ids)
    assert not missing, f"{len(missing)} events without a prediction, e.g. " \
                        f"{sorted(missing, key=int)[:10]}; {context()}"
    assert len(set(crash_ids)) == n
    reference_ids = [json.loads(rec.value)["id"] for rec in rig.read(reference_predictions)]
    assert sorted(reference_ids, key=int) == [str(i) for i in range(n)]

    # After a clean stop, a restart resumes at the end: nothing learned or published again.
    published = rig.end_offset(crash_predictions)
    server = serve_crash_run("crash-restart")
    c = server.client()
    wait_until(lambda: server.kafka_health(model) == "SERVING", 30,
               "the restarted Kafka path to be assigned", server.log)
    time.sleep(1.0)
    assert c.get_model(model).labeled == n
    assert [p.probabilities for p in c.predict_many(model, probes)] == crash_probabilities
    assert server.stop() == 0
    assert rig.end_offset(crash_predictions) == published
    print(f"crash test: {context()}; {len(crash_ids) - n} repeated predictions")
