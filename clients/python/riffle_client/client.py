"""The convenience client: one channel to a `riffle serve`, one method per thing a caller does.

Thread-safety: a Client may be shared by threads (gRPC channels and stubs are thread-safe); close
it once, when every thread is done. Errors: every failed call raises RiffleError with the gRPC
status code and the server's message, which names the offending field for INVALID_ARGUMENT.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import _types as t
from .v1 import riffle_pb2 as pb
from .v1 import riffle_pb2_grpc as pb_grpc

_T = TypeVar("_T")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # the server's default limit (riffle serve --help)


class RiffleError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's explanation (for
    INVALID_ARGUMENT it names the field, e.g. 'instances[0].features["x"]: NaN is not a valid
    value'). Transport failures (server down, TLS handshake refused) are UNAVAILABLE."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "RiffleError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")


def _pem(value: Union[None, bytes, str, os.PathLike]) -> Optional[bytes]:
    """PEM bytes as they are; a str or path names a PEM file."""
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings of the channel. PEM values are bytes, or a path (str or PathLike) to a file.

    root_certificates: CA that signed the server's certificate (None: the system's roots).
    certificate_chain, private_key: the client's certificate and key, for servers that require
        client certificates (riffle serve --tls-client-ca).
    server_name: the name to check the server's certificate against, when it differs from the
        target's host (e.g. a certificate for "riffle.internal" reached at 127.0.0.1).
    """

    root_certificates: Union[None, bytes, str, os.PathLike] = None
    certificate_chain: Union[None, bytes, str, os.PathLike] = None
    private_key: Union[None, bytes, str, os.PathLike] = None
    server_name: Optional[str] = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.private_key),
            certificate_chain=_pem(self.certificate_chain),
        )


class Client:
    """A client of one Riffle server.

    >>> with Client("127.0.0.1:50051", token="s3cret") as riffle:
    ...     riffle.create_model("fraud", "logreg", classes=["0", "1"])
    ...     p = riffle.predict("fraud", {"amount": 12.5, "country": "FR"}, id="tx-1")
    ...     riffle.learn_by_id("fraud", "tx-1", 1)

    target: "host:port" (any gRPC target).
    token: the bearer token of mutating calls (sent as "authorization: Bearer <token>" on every
        call). Over a plaintext channel it travels in clear: use TLS beyond loopback.
    tls: None/False for plaintext; True for TLS with the system's roots; or a TlsConfig.
    timeout: deadline of each call in seconds (None: no deadline). Streams get none.
    options: extra grpc channel options, e.g. [("grpc.keepalive_time_ms", 30000)].
    """

    def __init__(
        self,
        target: str,
        token: Optional[str] = None,
        tls: Union[None, bool, TlsConfig] = None,
        timeout: Optional[float] = 30.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        channel_options = [
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ]
        if isinstance(tls, TlsConfig) and tls.server_name:
            channel_options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel_options += list(options)
        if tls is None or tls is False:
            self._channel = grpc.insecure_channel(target, options=channel_options)
        else:
            config = tls if isinstance(tls, TlsConfig) else TlsConfig()
            self._channel = grpc.secure_channel(target, config.credentials(), options=channel_options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self.models = pb_grpc.ModelServiceStub(self._channel)
        """The generated ModelService stub, for what the convenience methods do not cover."""
        self.inference = pb_grpc.InferenceServiceStub(self._channel)
        """The generated InferenceService stub."""
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def _call(self, method: Callable[..., _T], request: Any) -> _T:
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise RiffleError.from_rpc_error(e) from None

    # -- predictions ----------------------------------------------------------------------------

    def predict(self, model: str, features: t.Features, id: Optional[str] = None,
                key: Optional[str] = None,
                event_time: Optional[_dt.datetime] = None) -> t.Prediction:
        """Predicts one instance. Give `id` to learn it later by id (learn_by_id); `key` (the
        entity: card, user) and `event_time` place it in the model's windowed aggregates
        (without a time, the server's receive time).

        Feature values: bool -> flag, int/float -> number, str -> text, None -> missing (left
        out). NaN and infinities are not filtered here: the server rejects them with
        INVALID_ARGUMENT naming the feature.
        """
        instance = t.Instance(features=features, id=id, key=key, event_time=event_time)
        return self.predict_many(model, [instance])[0]

    def predict_many(self, model: str, instances: Iterable[t.InstanceLike]) -> list[t.Prediction]:
        """Predicts a batch in one call (at most the server's --max-batch), all by one
        consistent model state. Items are feature dicts or Instance (for ids and keys)."""
        request = pb.PredictRequest(model=model, instances=[t.to_instance(i) for i in instances])
        return t.predictions_from(self._call(self.inference.Predict, request))

    def predict_stream(self, model: str, instances: Iterable[t.InstanceLike],
                       batch_size: int = 100) -> Iterator[t.Prediction]:
        """Predicts a (possibly endless) iterable over one PredictStream call, `batch_size`
        instances per request, yielding predictions in input order as they arrive. Requests are
        sent while earlier responses are read; HTTP/2 flow control bounds what is in flight.
        A failed request ends the stream with RiffleError ("requests[7].instances[3]...")."""
        if batch_size < 1:
            raise ValueError("batch_size: must be >= 1")

        def requests() -> Iterator[pb.PredictRequest]:
            for batch in t.batched(instances, batch_size):
                yield pb.PredictRequest(model=model, instances=[t.to_instance(i) for i in batch])

        responses = self.inference.PredictStream(requests(), metadata=self._metadata)
        try:
            for response in responses:
                yield from t.predictions_from(response)
        except grpc.RpcError as e:
            raise RiffleError.from_rpc_error(e) from None
        finally:
            responses.cancel()  # no-op once finished; stops the call if the caller stops early

    # -- learning -------------------------------------------------------------------------------

    def learn(self, model: str, features: t.Features, label: t.LabelValue,
              weight: float = 1.0, key: Optional[str] = None,
              event_time: Optional[_dt.datetime] = None) -> t.LearnResult:
        """Learns one labeled instance (test-then-train: it is scored first, for the metrics).
        Labels: str as is, int as its text, bool as "1"/"0". `key` and `event_time`: as for
        predict."""
        return self.learn_many(model, [t.Example(label=label, features=features, weight=weight,
                                                 key=key, event_time=event_time)])

    def learn_by_id(self, model: str, id: str, label: t.LabelValue,
                    weight: float = 1.0) -> t.LearnResult:
        """Learns the label of an instance predicted earlier with this id, from the features the
        server cached then. An id no longer cached is skipped and counted in cache_misses."""
        if not id:
            raise ValueError("id: required")
        return self.learn_many(model, [t.Example(label=label, id=id, weight=weight)])

    def learn_many(self, model: str, examples: Iterable[t.ExampleLike],
                   skip_metrics: bool = False) -> t.LearnResult:
        """Learns a batch in order, in one call; a rejected batch changes nothing. Items are
        Example (features or id) or tuples (features, label[, weight]). skip_metrics: learn
        without scoring first (the prequential metrics do not see these examples)."""
        request = pb.LearnRequest(model=model, examples=[t.to_labeled(e) for e in examples],
                                  skip_metrics=skip_metrics)
        return t.learn_result_from(self._call(self.inference.Learn, request))

    def learn_stream(self, model: str, examples: Iterable[t.ExampleLike],
                     batch_size: int = 1000, skip_metrics: bool = False) -> t.LearnResult:
        """Learns a long iterable over one LearnStream call, `batch_size` examples per request;
        returns the summary. On error, the requests before the failing one stay learned."""
        if batch_size < 1:
            raise ValueError("batch_size: must be >= 1")

        def requests() -> Iterator[pb.LearnRequest]:
            for batch in t.batched(examples, batch_size):
                yield pb.LearnRequest(model=model, examples=[t.to_labeled(e) for e in batch],
                                      skip_metrics=skip_metrics)

        try:
            response = self.inference.LearnStream(requests(), metadata=self._metadata)
        except grpc.RpcError as e:
            raise RiffleError.from_rpc_error(e) from None
        return t.learn_result_from(response)

    # -- models ---------------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        learner: str,
        options: Optional[Mapping[str, Any]] = None,
        classes: Optional[Sequence[str]] = None,
        features: Union[None, pb.FeatureSpec, Mapping[str, Any]] = None,
        metrics_window: int = 0,
        label_cache_max_entries: int = 0,
        label_cache_ttl_seconds: int = 0,
    ) -> t.ModelInfo:
        """Creates a model. options: learner hyperparameters by name (values sent as text; bools
        as "true"/"false"). classes: fixed class names in order (for binary models the second is
        the positive). features: a riffle.v1.FeatureSpec, or a dict in its JSON form, e.g.
        {"undeclared": "IGNORE", "declared": [{"name": "amount", "kind": "NUMERIC"}]}.
        0 for the other numbers means the server's default."""
        spec = pb.ModelSpec(
            learner=learner,
            learner_options={k: t.option_text(v) for k, v in (options or {}).items()},
            classes=[t.label_text(c) for c in (classes or [])],
            metrics_window=metrics_window,
            label_cache_max_entries=label_cache_max_entries,
            label_cache_ttl_seconds=label_cache_ttl_seconds,
        )
        feature_spec = t.feature_spec(features)
        if feature_spec is not None:
            spec.features.CopyFrom(feature_spec)
        request = pb.CreateModelRequest(name=name, spec=spec)
        return t.model_from(self._call(self.models.CreateModel, request))

    def get_model(self, model: str) -> t.ModelInfo:
        return t.model_from(self._call(self.models.GetModel, pb.GetModelRequest(model=model)))

    def list_models(self) -> list[t.ModelInfo]:
        response = self._call(self.models.ListModels, pb.ListModelsRequest())
        return [t.model_from(m) for m in response.models]

    def delete_model(self, model: str, delete_checkpoints: bool = False) -> None:
        """Deletes a model. Its checkpoints are kept unless delete_checkpoints, so that a model
        re-created under the same name can be restored."""
        self._call(self.models.DeleteModel,
                   pb.DeleteModelRequest(model=model, delete_checkpoints=delete_checkpoints))

    def metrics(self, model: str) -> t.Metrics:
        return t.metrics_from(self._call(self.models.GetMetrics, pb.GetMetricsRequest(model=model)))

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self, model: str) -> t.CheckpointInfo:
        """Writes a checkpoint of the model now; returns its generation."""
        return t.checkpoint_from(self._call(self.models.Checkpoint,
                                            pb.CheckpointRequest(model=model)))

    def list_checkpoints(self, model: str) -> list[t.CheckpointInfo]:
        """The model's checkpoints, newest first."""
        response = self._call(self.models.ListCheckpoints, pb.ListCheckpointsRequest(model=model))
        return [t.checkpoint_from(c) for c in response.checkpoints]

    def restore(self, model: str, generation: int = 0) -> t.ModelInfo:
        """Restores the model to a generation of its own checkpoint store (0: the newest valid)."""
        return t.model_from(self._call(self.models.Restore,
                                       pb.RestoreRequest(model=model, generation=generation)))

    # -- health ---------------------------------------------------------------------------------

    def health(self, model: Optional[str] = None) -> str:
        """grpc.health.v1 status of the server (model=None) or of one model: "SERVING" or
        "NOT_SERVING" (e.g. a deleted model, or a server shutting down). A name the server never
        served raises RiffleError NOT_FOUND."""
        service = "" if model is None else f"riffle.v1.model/{model}"
        response = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
