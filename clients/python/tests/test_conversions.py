"""No server: Python values to riffle.v1 messages, and the installed stubs against the proto."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from riffle_client import Example, Instance, riffle_pb2
from riffle_client import _types as t

PROTO_ROOT = Path(__file__).resolve().parents[3] / "proto"


def test_feature_values_map_to_the_value_oneof() -> None:
    instance = t.to_instance({"b": True, "i": 3, "f": 2.5, "s": "FR", "missing": None,
                              "nan": float("nan")})
    f = instance.features
    assert f["b"].WhichOneof("kind") == "flag" and f["b"].flag is True
    assert f["i"].WhichOneof("kind") == "number" and f["i"].number == 3.0
    assert f["f"].number == 2.5
    assert f["s"].WhichOneof("kind") == "text" and f["s"].text == "FR"
    assert "missing" not in f  # None: a missing value, left out
    assert math.isnan(f["nan"].number)  # passed through: the server rejects it, naming it


def test_false_is_a_flag_not_a_missing_value() -> None:
    f = t.to_instance({"off": False}).features
    assert f["off"].WhichOneof("kind") == "flag" and f["off"].flag is False


def test_instance_fields() -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=dt.timezone.utc)
    msg = t.to_instance(Instance(features={"x": 1}, id="e1", key="user-7", event_time=when))
    assert (msg.id, msg.key) == ("e1", "user-7")
    assert msg.event_time.seconds == int(when.timestamp())


def test_unsupported_values_raise_type_error_naming_the_feature() -> None:
    with pytest.raises(TypeError, match=r'features\["l"\]'):
        t.to_instance({"l": [1, 2]})
    with pytest.raises(TypeError, match="mapping"):
        t.to_instance([("x", 1.0)])  # type: ignore[arg-type]


def test_labels_and_examples() -> None:
    assert [t.label_text(v) for v in ("yes", 7, True, False)] == ["yes", "7", "1", "0"]
    with pytest.raises(TypeError):
        t.label_text(1.0)  # type: ignore[arg-type]
    by_id = t.to_labeled(Example(label="1", id="tx-9"))
    assert by_id.instance.id == "tx-9" and not by_id.instance.features
    weighted = t.to_labeled(({"x": 1.0}, 0, 2.5))
    assert (weighted.label.class_name, weighted.weight) == ("0", 2.5)
    with pytest.raises(TypeError):
        t.to_labeled(({"x": 1.0},))  # type: ignore[arg-type]


def test_feature_spec_from_json_form() -> None:
    spec = t.feature_spec({"undeclared": "IGNORE",
                           "declared": [{"name": "amount", "kind": "NUMERIC", "clip_max": 10}]})
    assert spec.undeclared == riffle_pb2.FeatureSpec.IGNORE
    assert spec.declared[0].clip_max == 10.0
    assert t.option_text(True) == "true" and t.option_text(0.5) == "0.5"


def test_installed_stubs_match_the_proto() -> None:
    """The stubs are generated from proto/riffle/v1/riffle.proto when the package is built; an
    install older than the proto fails here (scripts/test_python_client.sh reinstalls)."""
    if not (PROTO_ROOT / "riffle/v1/riffle.proto").is_file():
        pytest.skip(f"not in a Riffle checkout: no {PROTO_ROOT}/riffle/v1/riffle.proto")
    grpc_tools = pytest.importorskip("grpc_tools")
    out = Path(tempfile.mkdtemp()) / "riffle.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}",
                    f"--descriptor_set_out={out}", "riffle/v1/riffle.proto"], check=True)
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    # protoc's descriptor set spells out json_name; the descriptor embedded in *_pb2.py omits it.
    for message in walk_messages(fresh.message_type):
        for f in message.field:
            f.ClearField("json_name")
    installed = descriptor_pb2.FileDescriptorProto.FromString(riffle_pb2.DESCRIPTOR.serialized_pb)
    assert installed == fresh, "installed riffle_client stubs are stale: reinstall clients/python"


def walk_messages(messages):
    for m in messages:
        yield m
        yield from walk_messages(m.nested_type)
