"""Model lifecycle and checkpoints against a real server, including a restart."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from riffle_client import Client, RiffleError, riffle_pb2
from streams import assert_same_probabilities, separable


def probe() -> list[dict]:
    return [f for f, _ in separable(25, seed=100)]


def probabilities(client: Client, model: str) -> list[dict]:
    return [p.probabilities for p in client.predict_many(model, probe())]


def test_create_get_list_delete(client: Client, model_name: str) -> None:
    created = client.create_model(
        model_name, "logreg", options={"lr": 0.05, "l2": 0.001}, classes=["no", "yes"],
        features={"undeclared": "PASS_THROUGH",
                  "declared": [{"name": "amount", "kind": "NUMERIC", "scaling": "MIN_MAX"},
                               {"name": "secret", "kind": "DROP"}]},
        metrics_window=50)
    assert created.name == model_name
    assert created.learner == "logreg"
    assert created.learner_options == {"lr": "0.05", "l2": "0.001"}
    assert created.classes == ("no", "yes")
    assert created.version >= 1
    assert created.generation >= 1  # a model with a checkpoint dir is written at once
    assert created.created is not None
    assert created.spec.features.declared[0].scaling == riffle_pb2.FeatureDef.MIN_MAX
    assert created.spec.metrics_window == 50

    client.learn_many(model_name, [({"amount": 3.0, "secret": "x"}, "yes"),
                                   ({"amount": 1.0}, "no")])
    got = client.get_model(model_name)
    assert (got.name, got.labeled, got.classes) == (model_name, 2, ("no", "yes"))
    assert got.events >= 2 and got.memory_bytes > 0
    assert client.metrics(model_name).window == 50

    assert model_name in [m.name for m in client.list_models()]

    with pytest.raises(RiffleError) as e:
        client.create_model(model_name, "logreg")
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS

    client.delete_model(model_name)
    assert model_name not in [m.name for m in client.list_models()]
    with pytest.raises(RiffleError) as e:
        client.get_model(model_name)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(RiffleError) as e:
        client.predict(model_name, {"amount": 1.0})
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_feature_spec_message_is_accepted(client: Client, model_name: str) -> None:
    spec = riffle_pb2.FeatureSpec(undeclared=riffle_pb2.FeatureSpec.IGNORE,
                                  declared=[riffle_pb2.FeatureDef(name="x1")])
    client.create_model(model_name, "logreg", classes=["0", "1"], features=spec)
    assert client.get_model(model_name).spec.features.undeclared == riffle_pb2.FeatureSpec.IGNORE


def test_checkpoint_list_and_restore(client: Client, model_name: str) -> None:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    client.learn_many(model_name, separable(300, seed=20))
    written = client.checkpoint(model_name)
    assert written.generation >= 2 and written.size_bytes > 0
    assert client.get_model(model_name).generation == written.generation
    saved = probabilities(client, model_name)

    # Learn the opposite concept: predictions move away from the checkpoint.
    client.learn_many(model_name, [(f, "0" if y == "1" else "1") for f, y in separable(600, seed=21)])
    assert probabilities(client, model_name) != saved
    newer = client.checkpoint(model_name)
    assert newer.generation == written.generation + 1

    listed = client.list_checkpoints(model_name)
    generations = [c.generation for c in listed]
    assert generations == sorted(generations, reverse=True)  # newest first
    assert newer.generation == generations[0] and written.generation in generations
    assert all(c.size_bytes > 0 for c in listed)

    # A restore is made durable at once: the restored state is written as the newest
    # generation, so a restart serves it (not the newer state it replaced).
    restored = client.restore(model_name, written.generation)
    assert restored.generation == newer.generation + 1
    assert restored.labeled == 300
    assert_same_probabilities(probabilities(client, model_name), saved)

    # generation 0: the newest valid one, which is now the restored copy.
    again = client.restore(model_name)
    assert again.labeled == 300 and again.generation == restored.generation + 1
    assert_same_probabilities(probabilities(client, model_name), saved)

    with pytest.raises(RiffleError) as e:
        client.restore(model_name, 999)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_deleted_model_keeps_checkpoints_unless_asked(client: Client, model_name: str) -> None:
    client.create_model(model_name, "logreg", classes=["0", "1"])
    client.learn_many(model_name, separable(200, seed=22))
    written = client.checkpoint(model_name)
    saved = probabilities(client, model_name)
    client.delete_model(model_name)

    # Re-created under the same name, it can be restored from the kept store.
    client.create_model(model_name, "logreg", classes=["0", "1"])
    assert written.generation in [c.generation for c in client.list_checkpoints(model_name)]
    client.restore(model_name, written.generation)
    assert_same_probabilities(probabilities(client, model_name), saved)

    client.delete_model(model_name, delete_checkpoints=True)
    client.create_model(model_name, "logreg", classes=["0", "1"])
    # The old generations are gone: only the new model's first checkpoint is there.
    assert len(client.list_checkpoints(model_name)) == 1
    assert client.restore(model_name).labeled == 0


def test_restart_restores_models_from_checkpoints(start_server, tmp_path: Path) -> None:
    checkpoints = tmp_path / "restart-ckpt"
    first = start_server(checkpoint_dir=checkpoints, name="first")
    with first.client() as c:
        c.create_model("kept", "logreg", classes=["0", "1"], options={"lr": 0.1})
        c.learn_many("kept", separable(500, seed=30))
        before = probabilities(c, "kept")
        info = c.get_model("kept")
        metrics = c.metrics("kept")
    assert first.stop() == 0  # SIGTERM: a final checkpoint per model
    assert "kept" in [p.name for p in checkpoints.iterdir()]

    second = start_server(checkpoint_dir=checkpoints, name="second")
    with second.client() as c:
        assert [m.name for m in c.list_models()] == ["kept"]
        restored = c.get_model("kept")
        assert restored.labeled == info.labeled == 500
        assert restored.learner_options == {"lr": "0.1"}
        assert restored.generation > info.generation  # the final checkpoint
        assert_same_probabilities(probabilities(c, "kept"), before)
        after = c.metrics("kept")
        assert after.cumulative == metrics.cumulative
        assert c.health("kept") == "SERVING"


def test_declared_model_is_served_and_restored(start_server, tmp_path: Path) -> None:
    checkpoints = tmp_path / "declared-ckpt"
    server = start_server("--model", "declared=logreg", checkpoint_dir=checkpoints, name="a")
    with server.client() as c:
        assert c.get_model("declared").learner == "logreg"
        c.learn_many("declared", separable(100, seed=31))
        before = probabilities(c, "declared")
    assert server.stop() == 0
    again = start_server("--model", "declared=logreg", checkpoint_dir=checkpoints, name="b")
    with again.client() as c:
        assert c.get_model("declared").labeled == 100
        assert_same_probabilities(probabilities(c, "declared"), before)
