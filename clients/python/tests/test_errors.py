"""Bad requests come back as RiffleError with the right code and a message naming the field."""

from __future__ import annotations

import grpc
import pytest

from riffle_client import Client, RiffleError


@pytest.fixture
def model(client: Client, model_name: str) -> str:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    return model_name


def error(call, *args, **kwargs) -> RiffleError:
    with pytest.raises(RiffleError) as e:
        call(*args, **kwargs)
    return e.value


def test_unknown_model_is_not_found(client: Client) -> None:
    for call, args in [(client.predict, ({"x": 1.0},)), (client.learn, ({"x": 1.0}, "1")),
                       (client.learn_by_id, ("id", "1"))]:
        e = error(call, "no-such-model", *args)
        assert e.code == grpc.StatusCode.NOT_FOUND, call
        assert "no-such-model" in e.message
    for call in (client.get_model, client.metrics, client.checkpoint, client.list_checkpoints,
                 client.restore, client.delete_model):
        assert error(call, "no-such-model").code == grpc.StatusCode.NOT_FOUND, call
    assert error(lambda: list(client.predict_stream("no-such-model", [{"x": 1.0}]))).code == \
        grpc.StatusCode.NOT_FOUND


def test_nan_feature_is_invalid_argument_naming_it(client: Client, model: str) -> None:
    e = error(client.predict, model, {"ok": 1.0, "amount": float("nan")})
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert 'instances[0].features["amount"]' in e.message and "NaN" in e.message

    e = error(client.learn, model, {"amount": float("inf")}, "1")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert 'examples[0].instance.features["amount"]' in e.message

    # The second example is bad: the whole batch is rejected, nothing is learned.
    e = error(client.learn_many, model, [({"a": 1.0}, "1"), ({"a": float("nan")}, "0")])
    assert 'examples[1].instance.features["a"]' in e.message
    assert client.get_model(model).labeled == 0


def test_empty_batches_are_invalid_argument(client: Client, model: str) -> None:
    e = error(client.predict_many, model, [])
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "instances: empty batch" in e.message
    e = error(client.learn_many, model, [])
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "examples: empty batch" in e.message


def test_bad_labels_and_weights_name_the_field(client: Client, model: str) -> None:
    e = error(client.learn, model, {"a": 1.0}, "")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "examples[0].label" in e.message
    e = error(client.learn, model, {"a": 1.0}, "1", weight=-2.0)
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "examples[0].weight" in e.message
    # Classes are fixed by the spec: another label is refused.
    e = error(client.learn, model, {"a": 1.0}, "maybe")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and "examples[0]" in e.message


def test_bad_spec_names_the_field(client: Client, model_name: str) -> None:
    e = error(client.create_model, model_name, "no-such-learner")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message.startswith("spec.learner: ")
    e = error(client.create_model, model_name, "")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message.startswith("spec.learner: ")
    e = error(client.create_model, model_name, "logreg", options={"lr": "fast"})
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.message.startswith("spec.learner_options: ") and "lr" in e.message
    e = error(client.create_model, "bad name!", "logreg")
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message.startswith("name: ")
    # Nothing was created by the failed calls.
    assert model_name not in [m.name for m in client.list_models()]


def test_missing_model_name_is_invalid_argument(client: Client) -> None:
    e = error(client.predict, "", {"a": 1.0})
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message.startswith("model: ")


def test_unsupported_python_values_fail_before_sending(client: Client, model: str) -> None:
    with pytest.raises(TypeError, match=r'features\["when"\]'):
        client.predict(model, {"when": object()})
    with pytest.raises(TypeError, match="label"):
        client.learn(model, {"a": 1.0}, 1.5)  # type: ignore[arg-type]


def test_server_down_is_unavailable() -> None:
    with Client("127.0.0.1:1", timeout=5) as c:  # nothing listens on port 1
        e = error(c.list_models)
    assert e.code == grpc.StatusCode.UNAVAILABLE
