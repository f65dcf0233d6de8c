"""Predict and learn against a real server: the model learns, by features and by id, in batches
and over streams, and its metrics follow."""

from __future__ import annotations

import datetime as _dt
import random

import grpc
import pytest

from riffle_client import Client, Example, Instance, RiffleError
from streams import accuracy, assert_same_probabilities, separable


@pytest.fixture
def model(client: Client, model_name: str) -> str:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    return model_name


def test_model_learns_a_separable_stream(client: Client, model: str) -> None:
    holdout = separable(300, seed=1)
    before = accuracy(client, model, holdout)
    # Untrained, both classes have P = 0.5 and the first wins: chance level at best.
    assert before <= 0.65

    for features, label in separable(1500, seed=2):
        client.learn(model, features, label)

    after = accuracy(client, model, holdout)
    assert after >= 0.9, f"accuracy {before:.3f} -> {after:.3f}"
    p = client.predict(model, {"x1": 0.9, "x2": 0.5, "site": "a"})
    assert p.predicted_class == "1"
    assert p.proba("1") > 0.8
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    assert list(p.probabilities) == ["0", "1"]  # the model's class order
    assert p.model == model


def test_predict_echoes_id_and_model_state(client: Client, model: str) -> None:
    p = client.predict(model, {"x1": 0.1, "flag": True, "site": "b", "absent": None}, id="ev-1")
    assert p.id == "ev-1"
    assert p.version >= 1
    assert p.generation == client.get_model(model).generation


def test_classes_grow_from_labels_without_a_fixed_list(client: Client, model_name: str) -> None:
    client.create_model(model_name, "logreg")
    # (Predicting before the first label crashes the server: see test_server_bugs.py.)
    client.learn(model_name, {"x1": 1.0}, "cat")
    client.learn(model_name, {"x1": -1.0}, "dog")
    p = client.predict(model_name, {"x1": 1.0})
    assert set(p.probabilities) == {"cat", "dog"}
    assert client.get_model(model_name).classes == ("cat", "dog")


def test_int_and_bool_labels_are_sent_as_text(client: Client, model: str) -> None:
    result = client.learn_many(model, [({"x1": 1.0}, 1), ({"x1": -1.0}, False)])
    assert result.learned == 2
    assert client.get_model(model).classes == ("0", "1")


def test_batch_predictions_match_single_ones(client: Client, model: str) -> None:
    client.learn_many(model, separable(300, seed=3))
    data = separable(40, seed=4)
    batch = client.predict_many(
        model, [Instance(features=f, id=f"id-{i}") for i, (f, _) in enumerate(data)])
    assert [p.id for p in batch] == [f"id-{i}" for i in range(len(data))]
    assert len({(p.version, p.generation) for p in batch}) == 1
    singles = [client.predict(model, features) for features, _ in data]
    assert_same_probabilities([p.probabilities for p in singles], [p.probabilities for p in batch])
    # Plain dicts are accepted as instances too.
    plain = client.predict_many(model, [f for f, _ in data])
    assert_same_probabilities([p.probabilities for p in plain], [p.probabilities for p in batch])


def test_learn_many_and_learn_stream_learn_the_same_model(client: Client, model_name: str) -> None:
    a, b = model_name + "a", model_name + "b"
    for name in (a, b):
        client.create_model(name, "logreg", classes=["0", "1"])
    data = separable(700, seed=5)
    assert client.learn_many(a, data).learned == 700
    summary = client.learn_stream(b, iter(data), batch_size=64)
    assert (summary.learned, summary.cache_misses, summary.model) == (700, 0, b)
    probe = [f for f, _ in separable(20, seed=6)]
    assert_same_probabilities([p.probabilities for p in client.predict_many(a, probe)],
                              [p.probabilities for p in client.predict_many(b, probe)])


def test_learn_by_id_uses_the_features_seen_at_prediction(client: Client, model_name: str) -> None:
    by_features, by_id = model_name + "f", model_name + "i"
    for name in (by_features, by_id):
        client.create_model(name, "logreg", classes=["0", "1"])
    data = separable(200, seed=7)
    for i, (features, label) in enumerate(data):
        client.learn(by_features, features, label)
        client.predict(by_id, features, id=f"tx-{i}")
        result = client.learn_by_id(by_id, f"tx-{i}", label)
        assert (result.learned, result.cache_misses) == (1, 0)
    probe = [f for f, _ in separable(20, seed=8)]
    assert_same_probabilities([p.probabilities for p in client.predict_many(by_features, probe)],
                              [p.probabilities for p in client.predict_many(by_id, probe)])
    metrics = client.metrics(by_id)
    assert metrics.label_cache_hits == 200
    assert metrics.label_cache_misses == 0
    assert metrics.labeled == 200


def test_learn_by_id_counts_cache_misses(client: Client, model: str) -> None:
    client.predict(model, {"x1": 0.5}, id="seen")
    labeled_before = client.get_model(model).labeled
    # An id never predicted, then the same id twice (a cached entry is taken by its label).
    missing = client.learn_by_id(model, "never-predicted", "1")
    assert (missing.learned, missing.cache_misses) == (0, 1)
    first = client.learn_by_id(model, "seen", "1")
    assert (first.learned, first.cache_misses) == (1, 0)
    again = client.learn_by_id(model, "seen", "1")
    assert (again.learned, again.cache_misses) == (0, 1)
    # A batch mixing hits and misses learns the hits.
    client.predict_many(model, [Instance({"x1": 1.0}, id="h1"), Instance({"x1": -1.0}, id="h2")])
    mixed = client.learn_many(model, [Example("1", id="h1"), Example("0", id="nope"),
                                      Example("0", id="h2")])
    assert (mixed.learned, mixed.cache_misses) == (2, 1)
    metrics = client.metrics(model)
    assert (metrics.label_cache_hits, metrics.label_cache_misses) == (3, 3)
    assert client.get_model(model).labeled == labeled_before + 3


def test_predict_stream_yields_every_prediction_in_order(client: Client, model: str) -> None:
    client.learn_many(model, separable(300, seed=9))
    data = separable(1000, seed=10)
    instances = (Instance(features=f, id=str(i)) for i, (f, _) in enumerate(data))
    streamed = list(client.predict_stream(model, instances, batch_size=64))
    assert [p.id for p in streamed] == [str(i) for i in range(1000)]
    unary = client.predict_many(model, [f for f, _ in data])
    assert_same_probabilities([p.probabilities for p in streamed], [p.probabilities for p in unary])
    # Stopping early is fine: the helper cancels the call.
    first = next(iter(client.predict_stream(model, ({"x1": float(i)} for i in range(10**6)))))
    assert first.predicted_class in ("0", "1")


def test_predict_stream_error_names_the_request(client: Client, model: str) -> None:
    good = [{"x1": 0.0}] * 5
    stream = client.predict_stream(model, good + [{"x1": float("nan")}], batch_size=2)
    got = []
    with pytest.raises(RiffleError) as e:
        for p in stream:
            got.append(p)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert 'requests[2].instances[1].features["x1"]' in e.value.message
    assert len(got) == 4  # the two good requests before it were answered


def test_metrics_follow_learning(client: Client, model: str) -> None:
    m0 = client.metrics(model)
    assert (m0.labeled, m0.cumulative.count, m0.rolling.count) == (0, 0, 0)
    assert m0.window == 1000  # the default window

    data = separable(1200, seed=11)
    client.learn_many(model, data[:200])
    m1 = client.metrics(model)
    assert m1.labeled == 200 and m1.cumulative.count == 200
    assert 0.0 < m1.cumulative.accuracy <= 1.0
    assert m1.cumulative.log_loss > 0.0
    assert m1.cumulative.roc_auc is not None  # a binary model
    assert m1.learn_latency.count >= 1

    client.learn_many(model, data[200:])
    m2 = client.metrics(model)
    assert m2.cumulative.count == 1200 and m2.rolling.count == 1000
    # The rolling window has forgotten the first, worst events.
    assert m2.rolling.accuracy >= m1.cumulative.accuracy
    assert m2.rolling.accuracy >= 0.9
    assert m2.cumulative.log_loss < m1.cumulative.log_loss

    client.predict_many(model, [f for f, _ in data[:10]])
    m3 = client.metrics(model)
    assert m3.unlabeled == m2.unlabeled + 10
    assert m3.predict_latency.count > m2.predict_latency.count
    assert m3.predict_latency.p50_seconds > 0.0

    skipped = client.learn_many(model, data[:50], skip_metrics=True)
    assert skipped.learned == 50
    assert client.metrics(model).cumulative.count == 1200  # learned without scoring


def test_windowed_aggregates_use_the_key_and_event_time(client: Client, model_name: str) -> None:
    """A burst is a card's third payment within 30 s: learnable from a count of the card's
    recent payments, which only a windowed aggregate over key and event time gives."""
    client.create_model(model_name, "logreg", options={"lr": 0.5}, classes=["calm", "burst"],
                        features={"undeclared": "IGNORE", "aggregates": [
                            {"name": "card_n_30s", "function": "COUNT", "window_seconds": 30,
                             "sliding": True, "hop_seconds": 1}]})
    rng = random.Random(3)
    start = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
    history: dict[str, list[float]] = {}
    t = 0.0
    correct = 0
    n = 1500
    for i in range(n):
        t += rng.choice([0, 1, 2, 3])
        card = f"c{rng.randrange(20)}"
        recent = sum(1 for before in history.get(card, []) if before > t - 30)
        label = "burst" if recent >= 2 else "calm"
        history.setdefault(card, []).append(t)
        when = start + _dt.timedelta(seconds=t)
        p = client.predict(model_name, {"amount": rng.random()}, id=f"p{i}", key=card,
                           event_time=when)
        if i >= n // 2 and p.predicted_class == label:
            correct += 1
        client.learn_by_id(model_name, f"p{i}", label)
    assert correct / (n - n // 2) >= 0.95
    assert client.get_model(model_name).labeled == n


def test_invalid_event_time_is_invalid_argument(client: Client, model: str) -> None:
    # The client sends what a datetime can hold; a Timestamp beyond year 9999 from another
    # client is the server's to reject, naming the field.
    from riffle_client.v1 import riffle_pb2 as pb
    bad = pb.PredictRequest(model=model)
    instance = bad.instances.add()
    instance.features["x1"].number = 1.0
    instance.event_time.seconds = 10**12
    with pytest.raises(grpc.RpcError) as error:
        client.inference.Predict(bad)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "instances[0].event_time" in error.value.details()
