"""Optional base classes and helpers for user components.

Subclassing is never required: any class with Seldon's method names is served as
it is. These classes only give type hints and documentation. A method a subclass
does not override counts as absent, exactly like a class without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from infergraph.errors import MicroserviceError, NotImplementedByComponent

__all__ = [
    "Combiner",
    "Model",
    "OutputTransformer",
    "Router",
    "SeldonComponent",
    "SeldonMicroserviceException",
    "SeldonNotImplementedError",
    "SeldonResponse",
    "Transformer",
    "create_counter",
    "create_gauge",
    "create_timer",
]

F = TypeVar("F", bound=Callable[..., Any])

SeldonMicroserviceException = MicroserviceError
SeldonNotImplementedError = NotImplementedByComponent


def _stub(fn: F) -> F:
    fn.__infergraph_stub__ = True  # type: ignore[attr-defined]
    return fn


class SeldonResponse:
    """A return value carrying per-request tags and metrics next to the data.

    Runtime tags override static ``tags()``; runtime metrics are added to static
    ``metrics()``. Same constructor as Seldon's ``SeldonResponse``.
    """

    __slots__ = ("data", "metrics", "tags")

    def __init__(
        self,
        data: Any,
        tags: dict[str, Any] | None = None,
        metrics: list[dict[str, Any]] | None = None,
    ) -> None:
        self.data = data
        self.tags = tags
        self.metrics = metrics

    @classmethod
    def create(cls, data: Any) -> SeldonResponse:
        return data if isinstance(data, SeldonResponse) else cls(data)


def create_counter(key: str, value: float, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A COUNTER custom metric: adds ``value``."""
    return _metric("COUNTER", key, value, tags)


def create_gauge(key: str, value: float, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A GAUGE custom metric: sets ``value``."""
    return _metric("GAUGE", key, value, tags)


def create_timer(key: str, value: float, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A TIMER custom metric: ``value`` in milliseconds, observed in seconds."""
    return _metric("TIMER", key, value, tags)


def _metric(kind: str, key: str, value: float, tags: dict[str, str] | None) -> dict[str, Any]:
    metric: dict[str, Any] = {"type": kind, "key": key, "value": value}
    if tags:
        metric["tags"] = tags
    return metric


class SeldonComponent:
    """Every method a component may define; override the ones you need."""

    def load(self) -> None:
        """Load the model; runs once in every worker process, after forking."""

    @_stub
    def predict(self, X: Any, names: list[str], meta: dict[str, Any] | None = None) -> Any:
        raise NotImplementedByComponent("predict is not implemented")

    @_stub
    def transform_input(self, X: Any, names: list[str], meta: dict[str, Any] | None = None) -> Any:
        raise NotImplementedByComponent("transform_input is not implemented")

    @_stub
    def transform_output(self, X: Any, names: list[str], meta: dict[str, Any] | None = None) -> Any:
        raise NotImplementedByComponent("transform_output is not implemented")

    @_stub
    def route(self, features: Any, feature_names: list[str]) -> int:
        raise NotImplementedByComponent("Route not defined")

    @_stub
    def aggregate(self, features_list: list[Any], feature_names_list: list[list[str]]) -> Any:
        raise NotImplementedByComponent("Aggregate not defined")

    @_stub
    def send_feedback(
        self,
        features: Any,
        feature_names: list[str],
        reward: float,
        truth: Any,
        routing: int | None = None,
    ) -> Any:
        raise NotImplementedByComponent("send_feedback is not implemented")

    @_stub
    def metrics(self) -> list[dict[str, Any]]:
        return []

    @_stub
    def tags(self) -> dict[str, Any]:
        return {}

    @_stub
    def health_status(self) -> Any:
        raise NotImplementedByComponent("health_status is not implemented")

    @_stub
    def init_metadata(self) -> dict[str, Any]:
        return {}

    @_stub
    def class_names(self) -> list[str]:
        raise NotImplementedByComponent("class_names is not implemented")


class Model(SeldonComponent):
    """A MODEL: implement ``predict`` (or ``predict_raw``)."""


class Transformer(SeldonComponent):
    """A TRANSFORMER: implement ``transform_input``."""


class OutputTransformer(SeldonComponent):
    """An OUTPUT_TRANSFORMER: implement ``transform_output``."""


class Router(SeldonComponent):
    """A ROUTER: implement ``route`` and usually ``send_feedback``."""


class Combiner(SeldonComponent):
    """A COMBINER: implement ``aggregate``."""
