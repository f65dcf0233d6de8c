"""Python client of Riffle, the online-learning service (gRPC API riffle.v1).

    from riffle_client import Client
    with Client("127.0.0.1:50051") as riffle:
        print(riffle.predict("fraud", {"amount": 12.5, "country": "FR"}))

The generated stubs are riffle_client.v1.riffle_pb2 (messages) and riffle_pb2_grpc (services).
"""

from ._types import (
    CheckpointInfo,
    Example,
    Instance,
    LearnResult,
    Latency,
    Metrics,
    MetricValues,
    ModelInfo,
    Prediction,
)
from .client import Client, RiffleError, TlsConfig
from .v1 import riffle_pb2, riffle_pb2_grpc

__all__ = [
    "CheckpointInfo",
    "Client",
    "Example",
    "Instance",
    "LearnResult",
    "Latency",
    "Metrics",
    "MetricValues",
    "ModelInfo",
    "Prediction",
    "RiffleError",
    "TlsConfig",
    "riffle_pb2",
    "riffle_pb2_grpc",
]
__version__ = "0.1.0"
