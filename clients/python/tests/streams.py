"""Small synthetic streams the tests learn from."""

from __future__ import annotations

import random

import pytest

from riffle_client import Client


def separable(n: int, seed: int) -> list[tuple[dict, str]]:
    """A linearly separable stream: label "1" iff x1 + 0.5 * x2 > 0, with x uniform in [-1, 1]^2
    (and a constant categorical feature, so text values travel too)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        out.append(({"x1": x1, "x2": x2, "site": "a"}, "1" if x1 + 0.5 * x2 > 0 else "0"))
    return out


def accuracy(client: Client, model: str, data: list[tuple[dict, str]]) -> float:
    predictions = client.predict_many(model, [features for features, _ in data])
    return sum(p.predicted_class == y for p, (_, y) in zip(predictions, data)) / len(data)


def assert_same_probabilities(got: list, want: list) -> None:
    """Predictions of the same model state agree to ~1e-12, not bit for bit: the server iterates
    an instance's features in protobuf map order, which varies from call to call, and the sum of
    a dot product depends on its order (see test_server_bugs.py)."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert list(g) == list(w), f"[{i}] classes {list(g)} != {list(w)}"
        assert g == {k: pytest.approx(v, rel=1e-9, abs=1e-12) for k, v in w.items()}, \
            f"[{i}] {g} != {w}"
