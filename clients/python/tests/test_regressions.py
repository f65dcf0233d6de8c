"""Regression tests for server bugs found while writing the client (each was a strict xfail
until fixed): Predict before any class crashed the server; --auth-token-file was always
rejected; an example with neither features nor id was learned; map order changed the last bit
of predictions."""

from __future__ import annotations

import grpc
import pytest

from riffle_client import Client, Example, RiffleError
from streams import separable


def test_predict_before_any_label_answers_no_class(start_server) -> None:
    server = start_server()
    try:
        with server.client(timeout=10) as c:
            c.create_model("fresh", "logreg")
            p = c.predict("fresh", {"x": 1.0})
            assert (p.predicted_class, dict(p.probabilities)) == (None, {})
            assert c.health() == "SERVING"
    finally:
        server.kill()  # a crashed server must not fail the fixture's teardown as well


def test_auth_token_file_flag(start_server, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    server = start_server("--auth-token-file", str(token_file), "--model", "m=logreg")
    with server.client() as anonymous:
        with pytest.raises(RiffleError) as e:
            anonymous.learn("m", {"x": 1.0}, "1")
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    with server.client(token="s3cret") as c:
        assert c.learn("m", {"x": 1.0}, "1").learned == 1


def test_example_without_features_or_id_is_rejected(client: Client, model_name: str) -> None:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    with pytest.raises(RiffleError) as e:
        client.learn_many(model_name, [Example("1")])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "examples[0].instance" in e.value.message


def test_same_request_same_answer_bit_for_bit(client: Client, model_name: str) -> None:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    client.learn_many(model_name, separable(300, seed=3))
    # Whether two orders round differently depends on the values: ask about many instances.
    varying = []
    for i, (features, _) in enumerate(separable(60, seed=4)):
        features = {**features, "x3": 0.1 * i, "x4": 2.0, "x5": -1.5}
        answers = {client.predict(model_name, features).probabilities["1"] for _ in range(30)}
        if len(answers) > 1:
            varying.append(sorted(answers))
    assert not varying, f"{len(varying)} of 60 instances got differing answers: {varying[:3]}"
