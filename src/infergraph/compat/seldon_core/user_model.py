"""``seldon_core.user_model``: the base class, the response wrapper and their helpers.

The classes are infergraph's :mod:`infergraph.sdk` ones, so a model that subclasses
``seldon_core.user_model.SeldonComponent`` is an infergraph component with nothing to
translate: the methods it does not override count as absent. The two subclasses below
add only what Seldon's constructors do and infergraph's do not (``**kwargs`` on the
base class, empty tags and metrics on a response), so code written against Seldon's
behaviour keeps working.

The ``client_*`` functions are the few that :mod:`.utils` needs to build responses as
Seldon does; the ones that call user methods are not provided, because infergraph
resolves and calls those once, at load, itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from infergraph import sdk
from infergraph.errors import MicroserviceError, NotImplementedByComponent

__all__ = [
    "SeldonComponent",
    "SeldonMicroserviceException",
    "SeldonNotImplementedError",
    "SeldonResponse",
    "client_class_names",
    "client_custom_tags",
    "client_feature_names",
    "create_counter",
    "create_gauge",
    "create_timer",
]

SeldonMicroserviceException = MicroserviceError
SeldonNotImplementedError = NotImplementedByComponent
create_counter = sdk.create_counter
create_gauge = sdk.create_gauge
create_timer = sdk.create_timer


class SeldonComponent(sdk.SeldonComponent):
    """infergraph's base class, built like Seldon's: any keyword arguments, a ``tracer``.

    Seldon model classes often end their constructor with ``super().__init__(**kwargs)``;
    the parameters are the model's own, and the base class ignores them.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.tracer: Any = None

    def set_tracer(self, tracer: Any) -> None:
        """Seldon hands the Jaeger tracer over here; infergraph never calls it."""
        self.tracer = tracer

    def set_grpc_tracer(self, tracer: Any) -> None:
        """As :meth:`set_tracer`, for the gRPC server."""
        self.grpc_tracer = tracer


class SeldonResponse(sdk.SeldonResponse):
    """infergraph's response wrapper; ``tags`` and ``metrics`` default to ``{}`` and ``[]``
    (not None), so model code may add to them after building the response."""

    __slots__ = ()

    def __init__(
        self,
        data: Any,
        tags: dict[str, Any] | None = None,
        metrics: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(data, {} if tags is None else tags, [] if metrics is None else metrics)


def client_custom_tags(user_model: Any) -> dict[str, Any]:
    """The model's static ``tags()``; ``{}`` when it has none."""
    tags = getattr(user_model, "tags", None)
    if callable(tags):
        try:
            return dict(tags() or {})
        except NotImplementedByComponent:
            pass
    return {}


def client_class_names(user_model: Any, predictions: np.ndarray) -> list[str]:
    """Names for the columns of a 2-D+ result: ``class_names()`` (a method or, as Seldon
    still allows, a plain attribute), else ``t:0``, ``t:1``, ...; ``[]`` for 0-D and 1-D."""
    if predictions.ndim < 2:
        return []
    names = getattr(user_model, "class_names", None)
    if callable(names):
        try:
            return list(names())
        except NotImplementedByComponent:
            pass
    elif names is not None:
        return list(names)
    return [f"t:{i}" for i in range(predictions.shape[1])]


def client_feature_names(user_model: Any, original: Iterable[str]) -> list[str]:
    """The model's ``feature_names()`` if it has one, else the names it was sent."""
    names = getattr(user_model, "feature_names", None)
    if callable(names):
        try:
            return list(names())
        except NotImplementedByComponent:
            pass
    return list(original)
