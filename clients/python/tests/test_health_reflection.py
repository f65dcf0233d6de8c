"""grpc.health.v1 (overall and per model) and server reflection, as grpcurl would use them."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from riffle_client import Client, RiffleError


def test_health_overall_and_per_model(client: Client, model_name: str) -> None:
    assert client.health() == "SERVING"
    client.create_model(model_name, "logreg")
    assert client.health(model_name) == "SERVING"

    # The same answers through the standard stub, with the documented service names.
    stub = health_pb2_grpc.HealthStub(client.channel)
    for service in ("", "riffle.v1.ModelService", "riffle.v1.InferenceService",
                    f"riffle.v1.model/{model_name}"):
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service

    client.delete_model(model_name)
    assert client.health(model_name) == "NOT_SERVING"
    with pytest.raises(RiffleError) as e:
        client.health("never-existed")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_health_watch_sees_a_model_appear(client: Client, model_name: str) -> None:
    stub = health_pb2_grpc.HealthStub(client.channel)
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=f"riffle.v1.model/{model_name}"),
                       timeout=20)
    try:
        first = next(watch).status
        assert first == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        client.create_model(model_name, "logreg")
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        watch.cancel()


def test_reflection_lists_the_riffle_services(client: Client) -> None:
    database = ProtoReflectionDescriptorDatabase(client.channel)
    services = set(database.get_services())
    assert {"riffle.v1.ModelService", "riffle.v1.InferenceService",
            "grpc.health.v1.Health"} <= services

    # A client with no stubs can resolve the whole API from the server, as grpcurl does.
    pool = descriptor_pool.DescriptorPool(database)
    inference = pool.FindServiceByName("riffle.v1.InferenceService")
    assert [m.name for m in inference.methods] == ["Predict", "PredictStream", "Learn",
                                                   "LearnStream"]
    predict_stream = inference.methods_by_name["PredictStream"]
    assert predict_stream.client_streaming and predict_stream.server_streaming
    value = pool.FindMessageTypeByName("riffle.v1.Value")
    assert [f.name for f in value.fields] == ["number", "text", "flag"]
    assert pool.FindFileContainingSymbol("riffle.v1.ModelSpec").name == "riffle/v1/riffle.proto"
