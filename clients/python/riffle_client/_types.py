"""Plain Python values the client returns and accepts, and their conversion to and from riffle.v1.

The client speaks riffle.v1 messages on the wire; callers deal in dicts, strings and these frozen
dataclasses. Every conversion lives here, once.
"""

from __future__ import annotations

import datetime as _dt
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

from google.protobuf import json_format

from .v1 import riffle_pb2 as pb

FeatureValue = Union[bool, int, float, str, None]
"""A feature's value: bool -> flag, int/float -> number, str -> text, None -> missing."""

Features = Mapping[str, FeatureValue]
LabelValue = Union[str, int, bool]
"""A class label: str as is, int as its decimal text, bool as "1"/"0"."""


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class Instance:
    """One event to predict on: its features, and optionally an id (echoed in the prediction, and
    needed to learn by id later), the key of its windowed aggregates, and when it happened."""

    features: Features
    id: Optional[str] = None
    key: Optional[str] = None
    event_time: Optional[_dt.datetime] = None


@dataclass(frozen=True)
class Example:
    """One labeled example. Give `features`, or only `id` to learn from the features the server
    cached when it predicted that id (learn by id). With features, `key` and `event_time` place
    the event in the model's windowed aggregates, as for an Instance."""

    label: LabelValue
    features: Optional[Features] = None
    id: Optional[str] = None
    weight: float = 1.0
    key: Optional[str] = None
    event_time: Optional[_dt.datetime] = None


InstanceLike = Union[Instance, Features]
ExampleLike = Union[Example, Tuple[Features, LabelValue], Tuple[Features, LabelValue, float]]


def to_value(name: str, value: Any) -> Optional[pb.Value]:
    """Converts one feature value; None means missing (the feature is left out).

    bool is checked before int (bool is an int in Python). Any numbers.Real (numpy scalars
    included) becomes a number. NaN and infinities are sent as they are: the server owns
    validation and answers INVALID_ARGUMENT naming the feature.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return pb.Value(flag=value)
    if isinstance(value, numbers.Real):
        return pb.Value(number=float(value))
    if isinstance(value, str):
        return pb.Value(text=value)
    raise TypeError(
        f'features["{name}"]: unsupported type {type(value).__name__} '
        "(use bool, int, float, str, or None for missing)"
    )


def fill_features(features: Features, out: pb.Instance) -> None:
    if not isinstance(features, Mapping):
        raise TypeError(f"features: expected a mapping of name to value, got {type(features).__name__}")
    for name, value in features.items():
        if not isinstance(name, str):
            raise TypeError(f"features: names must be str, got {type(name).__name__}")
        v = to_value(name, value)
        if v is not None:
            out.features[name].CopyFrom(v)


def to_instance(item: InstanceLike) -> pb.Instance:
    if isinstance(item, Instance):
        out = pb.Instance(id=item.id or "", key=item.key or "")
        fill_features(item.features, out)
        if item.event_time is not None:
            out.event_time.FromDatetime(_as_utc(item.event_time))
        return out
    out = pb.Instance()
    fill_features(item, out)
    return out


def label_text(label: LabelValue) -> str:
    if isinstance(label, bool):
        return "1" if label else "0"
    if isinstance(label, int):
        return str(label)
    if isinstance(label, str):
        return label
    raise TypeError(
        f"label: unsupported type {type(label).__name__} (use str, int or bool; "
        "classes are named by strings)"
    )


def to_labeled(item: ExampleLike) -> pb.LabeledInstance:
    if isinstance(item, Example):
        example = item
    elif isinstance(item, tuple) and len(item) in (2, 3):
        example = Example(features=item[0], label=item[1], weight=item[2] if len(item) == 3 else 1.0)
    else:
        raise TypeError(
            "examples: each item is an Example or a tuple (features, label[, weight]), "
            f"got {type(item).__name__}"
        )
    out = pb.LabeledInstance(label=pb.Label(class_name=label_text(example.label)),
                             weight=float(example.weight))
    out.instance.id = example.id or ""
    out.instance.key = example.key or ""
    if example.event_time is not None:
        out.instance.event_time.FromDatetime(_as_utc(example.event_time))
    if example.features is not None:
        fill_features(example.features, out.instance)
    return out


def feature_spec(features: Union[None, pb.FeatureSpec, Mapping[str, Any]]) -> Optional[pb.FeatureSpec]:
    """A FeatureSpec message as is, or a dict in the proto's JSON form, e.g.
    {"undeclared": "IGNORE", "declared": [{"name": "amount", "kind": "NUMERIC"}]}."""
    if features is None:
        return None
    if isinstance(features, pb.FeatureSpec):
        return features
    return json_format.ParseDict(dict(features), pb.FeatureSpec())


def option_text(value: Any) -> str:
    """Learner options travel as text, as `riffle eval --set name=value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Responses


def _as_utc(t: _dt.datetime) -> _dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def _time(msg: Any, name: str) -> Optional[_dt.datetime]:
    if not msg.HasField(name):
        return None
    return getattr(msg, name).ToDatetime(tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one instance.

    probabilities: P(class) for every class the model knows, in the model's class order (empty
    while the model knows no class). predicted_class: None while it knows no class.
    model, version, generation: the model state that answered (one state for a whole batch).
    """

    id: str
    probabilities: Mapping[str, float]
    predicted_class: Optional[str]
    model: str
    version: int
    generation: int

    def proba(self, class_name: str) -> float:
        """P(class_name); 0.0 for a class the model does not know."""
        return self.probabilities.get(class_name, 0.0)


def predictions_from(response: pb.PredictResponse) -> list[Prediction]:
    return [
        Prediction(
            id=p.id,
            probabilities={c.class_name: c.probability for c in p.probabilities},
            predicted_class=p.predicted_class or None,
            model=response.model,
            version=response.version,
            generation=response.generation,
        )
        for p in response.predictions
    ]


@dataclass(frozen=True)
class LearnResult:
    """learned: examples learned. cache_misses: examples by id whose id was not (or no longer) in
    the server's label cache; they were skipped."""

    learned: int
    cache_misses: int
    model: str
    version: int
    generation: int


def learn_result_from(r: pb.LearnResponse) -> LearnResult:
    return LearnResult(learned=r.learned, cache_misses=r.cache_misses, model=r.model,
                       version=r.version, generation=r.generation)


@dataclass(frozen=True)
class ModelInfo:
    """A served model (riffle.v1.Model): its spec, state and counts."""

    name: str
    learner: str
    learner_options: Mapping[str, str]
    classes: Sequence[str]
    version: int
    generation: int
    events: int
    labeled: int
    unlabeled: int
    memory_bytes: int
    created: Optional[_dt.datetime]
    last_checkpoint: Optional[_dt.datetime]
    spec: pb.ModelSpec = field(repr=False, compare=False)


def model_from(m: pb.Model) -> ModelInfo:
    return ModelInfo(
        name=m.name,
        learner=m.spec.learner,
        learner_options=dict(m.spec.learner_options),
        classes=tuple(m.classes),
        version=m.version,
        generation=m.generation,
        events=m.events,
        labeled=m.labeled,
        unlabeled=m.unlabeled,
        memory_bytes=m.memory_bytes,
        created=_time(m, "created"),
        last_checkpoint=_time(m, "last_checkpoint"),
        spec=m.spec,
    )


@dataclass(frozen=True)
class MetricValues:
    """Prequential metrics over some labeled events. roc_auc, precision, recall and f1 are None
    where they do not apply (not a binary model, or no positive seen yet)."""

    accuracy: float
    log_loss: float
    roc_auc: Optional[float]
    precision: Optional[float]
    recall: Optional[float]
    f1: Optional[float]
    macro_f1: float
    count: int


def _values(v: pb.MetricValues) -> MetricValues:
    opt = lambda name: getattr(v, name) if v.HasField(name) else None  # noqa: E731
    return MetricValues(accuracy=v.accuracy, log_loss=v.log_loss, roc_auc=opt("roc_auc"),
                        precision=opt("precision"), recall=opt("recall"), f1=opt("f1"),
                        macro_f1=v.macro_f1, count=v.count)


@dataclass(frozen=True)
class Latency:
    p50_seconds: float
    p99_seconds: float
    max_seconds: float
    count: int


def _latency(v: pb.LatencySummary) -> Latency:
    return Latency(v.p50_seconds, v.p99_seconds, v.max_seconds, v.count)


@dataclass(frozen=True)
class Metrics:
    """A model's metrics: cumulative and over the rolling window of `window` labeled events."""

    model: str
    cumulative: MetricValues
    rolling: MetricValues
    window: int
    events: int
    labeled: int
    unlabeled: int
    label_cache_hits: int
    label_cache_misses: int
    label_cache_evictions: int
    predict_latency: Latency
    learn_latency: Latency


def metrics_from(m: pb.ModelMetrics) -> Metrics:
    return Metrics(
        model=m.model,
        cumulative=_values(m.cumulative),
        rolling=_values(m.rolling),
        window=m.window,
        events=m.events,
        labeled=m.labeled,
        unlabeled=m.unlabeled,
        label_cache_hits=m.label_cache_hits,
        label_cache_misses=m.label_cache_misses,
        label_cache_evictions=m.label_cache_evictions,
        predict_latency=_latency(m.predict_latency),
        learn_latency=_latency(m.learn_latency),
    )


@dataclass(frozen=True)
class CheckpointInfo:
    generation: int
    size_bytes: int
    created: Optional[_dt.datetime]


def checkpoint_from(c: pb.CheckpointInfo) -> CheckpointInfo:
    return CheckpointInfo(generation=c.generation, size_bytes=c.size_bytes,
                          created=_time(c, "created"))


def batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
