"""A user object adapted once into async calls that take and return Messages."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from infergraph.components.batching import Batcher
from infergraph.components.invoke import Invoker, run_on_own_thread
from infergraph.components.methods import MethodSpec, find_method, plain_method
from infergraph.components.results import to_message, unwrap, validate_metrics
from infergraph.components.user_errors import UserErrors, is_not_implemented
from infergraph.errors import (
    BadRequest,
    InferGraphError,
    LoadError,
    NotImplementedByComponent,
)
from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.protocol.proto._pool import coerce, same_type

__all__ = ["Component", "MetricsSink"]

log = logging.getLogger(__name__)

MetricsSink = Callable[[list[dict[str, Any]], str], None]
"""Receives custom metrics and the Seldon ``method`` label they belong to."""

# endpoint -> Seldon's ``method`` label on custom metrics
METHOD_LABELS = {
    "predict": "predict",
    "transform_input": "inputtransform",
    "transform_output": "outputtransform",
    "route": "router",
    "aggregate": "aggregate",
    "send_feedback": "feedback",
    "health_status": "health",
}
WIRES = ("json", "proto")


def _no_sink(metrics: list[dict[str, Any]], method: str) -> None:
    return None


class Component:
    """One user component: Seldon's methods resolved once, called per request."""

    def __init__(
        self,
        user: Any,
        *,
        name: str = "",
        image: str = "",
        include_metrics: bool = True,
        invoker: Invoker | None = None,
        metrics_sink: MetricsSink = _no_sink,
        max_batch_size: int = 1,
        max_batch_time: float = 0.0,
    ) -> None:
        self.user = user
        self.class_name = type(user).__name__
        self.name = name
        self.image = image
        self.include_metrics = include_metrics
        self.invoker = invoker or Invoker()
        self.metrics_sink = metrics_sink
        self.errors = UserErrors(user)
        self._methods: dict[tuple[str, str], MethodSpec | None] = {
            (endpoint, wire): find_method(user, endpoint, wire)
            for endpoint in METHOD_LABELS
            for wire in WIRES
        }
        # what a *_raw method that raises SeldonNotImplementedError falls through to
        self._fallbacks: dict[tuple[str, str], MethodSpec | None] = {
            (endpoint, wire): find_method(_WithoutRaw(user, endpoint), endpoint, wire)
            for (endpoint, wire), spec in self._methods.items()
            if spec is not None and spec.variant != "high"
        }
        if not self.servable():
            log.warning(
                "%s defines none of Seldon's methods: every endpoint answers Seldon's default",
                self.class_name,
            )
        self._metrics_fn = plain_method(user, "metrics")
        self._tags_fn = plain_method(user, "tags")
        self._load_fn = plain_method(user, "load")
        self._class_names = getattr(user, "class_names", None)
        self._v2_output = "output-0"
        self.ready = False
        self._batchers: dict[MethodSpec, Batcher] = {}
        if max_batch_size > 1:
            for wire in WIRES:
                spec = self._methods[("predict", wire)]
                if spec is not None and spec.variant == "high" and spec not in self._batchers:
                    self._batchers[spec] = Batcher(
                        self._batched(spec), max_batch_size, max_batch_time
                    )

    # ------------------------------------------------------------ lifecycle

    def has(self, endpoint: str) -> bool:
        return any(self._methods[(endpoint, wire)] is not None for wire in WIRES)

    def takes_raw(self, endpoint: str, wire: str = "json") -> bool:
        """Whether ``endpoint`` is served by a ``*_raw`` (or legacy) method, which Seldon
        hands the request as it came, so the transport must not refuse fields it lacks."""
        spec = self._methods[(endpoint, wire)]
        return spec is not None and spec.variant != "high"

    def servable(self) -> list[str]:
        return [endpoint for endpoint in METHOD_LABELS if self.has(endpoint)]

    async def load(self) -> None:
        """Run the user's ``load()`` once (per worker process).

        A sync ``load()`` runs on a thread of its own, never on the event loop, so that the
        servers answer ``/live`` and ``/ready`` (503) while it runs.
        """
        if self._load_fn is not None:
            try:
                if inspect.iscoroutinefunction(self._load_fn):
                    await self._load_fn()
                else:
                    await run_on_own_thread(self._load_fn, f"load-{self.class_name}")
            except (NotImplementedError, AttributeError):
                pass
            except InferGraphError:
                raise
            except Exception as exc:
                log.error("%s.load() failed", self.class_name, exc_info=exc)
                raise LoadError(
                    f"{self.class_name}.load() raised {type(exc).__name__}: {exc}"
                ) from exc
        # read after load(): a prepackaged server knows its output's name once loaded
        self._v2_output = str(getattr(self.user, "v2_output_name", None) or "output-0")
        self.ready = True

    # ------------------------------------------------------------ helpers

    def _names_for(self, columns: int) -> list[str]:
        names = self._class_names
        if names is not None and not getattr(names, "__infergraph_stub__", False):
            try:
                value = names() if callable(names) else names
            except InferGraphError as exc:
                if not is_not_implemented(exc):
                    raise
            except Exception as exc:
                if not is_not_implemented(exc):
                    raise self.errors.wrap(exc, f"{self.class_name}.class_names") from exc
            else:
                return list(value)
        return [f"t:{i}" for i in range(columns)]

    def _static_call(self, fn: Callable[[], Any] | None, name: str) -> Any:
        """``tags()`` or ``metrics()``; None when absent or not implemented (Seldon's default)."""
        if fn is None:
            return None
        try:
            return fn()
        except Exception as exc:
            if is_not_implemented(exc):
                return None
            if isinstance(exc, InferGraphError):
                raise
            raise self.errors.wrap(exc, f"{self.class_name}.{name}") from exc

    def _static(self, endpoint: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        tags = self._static_call(self._tags_fn, "tags") or {}
        metrics = self._static_call(self._metrics_fn, "metrics")
        metrics = validate_metrics(metrics, f"{self.class_name}.metrics()")
        return tags, metrics

    def _response_meta(
        self,
        base: Meta,
        endpoint: str,
        runtime_tags: dict[str, Any] | None,
        runtime_metrics: list[dict[str, Any]] | None,
    ) -> Meta:
        meta = base.copy()
        meta.routing = {}  # Seldon's wrapper never echoes routing; the graph owns it
        tags, metrics = self._static(endpoint)
        if runtime_metrics:
            metrics = metrics + validate_metrics(runtime_metrics, f"{self.class_name} response")
        if tags:
            meta.tags.update(tags)
        if runtime_tags:
            meta.tags.update(runtime_tags)
        if metrics:
            self.metrics_sink(metrics, METHOD_LABELS[endpoint])
            if self.include_metrics:
                meta.metrics.extend(metrics)
        if self.name:
            meta.request_path = {self.name: self.image, **meta.request_path}
        return meta

    async def _invoke(self, spec: MethodSpec, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.invoker.call(spec.fn, spec.is_async, *args, **kwargs)
        except InferGraphError:
            raise
        except Exception as exc:
            if is_not_implemented(exc):
                raise NotImplementedByComponent(
                    str(exc) or f"{spec.name} is not implemented"
                ) from exc
            raise self.errors.wrap(exc, f"{self.class_name}.{spec.name}") from exc

    def _from_raw(self, result: Any, wire: str, endpoint: str) -> Message:
        """Keep a ``*_raw`` result verbatim; read its metrics as Seldon does."""
        if isinstance(result, Message):
            return result
        if isinstance(result, list) and wire == "json" and endpoint == "route":
            # Seldon's REST wrapper sends it as it is, and its executor reads a bare JSON
            # list as a router's answer
            return Message(DataKind.NONE, None, [], raw=result)
        if wire == "proto" and isinstance(result, dict):
            from google.protobuf import json_format

            result = json_format.ParseDict(result, seldon_pb.pb.SeldonMessage())
        elif same_type(result, seldon_pb.pb.SeldonMessage):  # e.g. seldon_core's own class
            result = coerce(result, seldon_pb.pb.SeldonMessage)
        try:
            if isinstance(result, dict):
                msg = seldon_json.decode_message(result, "response")
            elif isinstance(result, seldon_pb.pb.SeldonMessage):
                msg = seldon_pb.decode_message(result, "response")
            else:
                raise BadRequest(
                    f"{self.class_name}.{endpoint}_raw must return a dict or a SeldonMessage, "
                    f"got {type(result).__name__}"
                )
        except BadRequest:
            if not isinstance(result, dict | seldon_pb.pb.SeldonMessage):
                raise
            msg = Message(DataKind.NONE, None, [])
        msg.raw = result
        metrics = validate_metrics(msg.meta.metrics, f"{self.class_name}.{endpoint}_raw")
        if metrics:
            self.metrics_sink(metrics, METHOD_LABELS[endpoint])
            if not self.include_metrics:
                if isinstance(result, dict):
                    result.get("meta", {}).pop("metrics", None)
                else:
                    result.meta.ClearField("metrics")
                msg.meta.metrics = []
        return msg

    def _wire_form(self, request: Message, wire: str) -> Any:
        if wire == "json":
            if isinstance(request.raw, dict):
                return request.raw
            # what the wire would have carried: lists and plain numbers, never numpy, as a
            # *_raw method in a graph gets the dict Seldon's JSON parser made
            return seldon_json.loads(seldon_json.dumps(seldon_json.encode_message(request)))
        if isinstance(request.raw, seldon_pb.pb.SeldonMessage):
            return request.raw
        return seldon_pb.encode_message(request)

    # ------------------------------------------------------------ endpoints

    async def _unary(self, endpoint: str, request: Message, wire: str) -> Message | None:
        """Run predict/transform_*; None means the component lacks the method."""
        spec = self._methods[(endpoint, wire)]
        if spec is None:
            return None
        if spec.variant != "high":
            if request.kind is DataKind.V2:
                self._refuse_v2(spec, endpoint)
            try:
                result = await self._invoke(spec, self._wire_form(request, wire))
            except NotImplementedByComponent:
                spec = self._fallbacks[(endpoint, wire)]
                if spec is None:
                    return None
            else:
                return self._from_raw(result, wire, endpoint)
        batcher = self._batchers.get(spec) if self._batchers else None
        try:
            if batcher is not None:
                result = await batcher(request.array(), request.names)
            else:
                meta_arg = (
                    {"meta": seldon_json.encode_meta(request.meta)} if spec.takes_meta else {}
                )
                result = await self._invoke(spec, request.array(), request.names, **meta_arg)
        except NotImplementedByComponent:
            return None
        data, tags, metrics = unwrap(result)
        meta = self._response_meta(request.meta, endpoint, tags, metrics)
        return to_message(data, request, meta, self._names_for, spec.name, self._v2_output)

    def _refuse_v2(self, spec: MethodSpec, endpoint: str) -> None:
        raise BadRequest(
            f"{self.class_name}.{spec.name} takes Seldon protocol messages, not Open Inference "
            f"Protocol (V2) tensors: call /api/v1.0/predictions, or define {endpoint}(X, names)"
        )

    def _batched(self, spec: MethodSpec) -> Callable[[Any, list[str]], Awaitable[Any]]:
        """The call a batcher makes: stacked rows, the shared names, and an empty meta."""
        meta_arg: dict[str, Any] = {"meta": {}} if spec.takes_meta else {}

        async def run(X: Any, names: list[str]) -> Any:
            return await self._invoke(spec, X, names, **meta_arg)

        return run

    def _default(self, endpoint: str, request: Message, data: Any) -> Message:
        """What Seldon answers when the component lacks the method: ``data`` as a response."""
        meta = self._response_meta(request.meta, endpoint, None, None)
        return to_message(data, request, meta, self._names_for, endpoint, self._v2_output)

    async def predict(self, request: Message, wire: str = "json") -> Message:
        response = await self._unary("predict", request, wire)
        return self._default("predict", request, []) if response is None else response

    async def transform_input(self, request: Message, wire: str = "json") -> Message:
        """Without the method Seldon passes the request's payload through."""
        response = await self._unary("transform_input", request, wire)
        return (
            self._default("transform_input", request, request.array())
            if response is None
            else response
        )

    async def transform_output(self, request: Message, wire: str = "json") -> Message:
        response = await self._unary("transform_output", request, wire)
        return (
            self._default("transform_output", request, request.array())
            if response is None
            else response
        )

    async def _raw(self, spec: MethodSpec, wire: str, endpoint: str, *args: Any) -> Message | None:
        """Call a ``*_raw`` (or legacy) method; None when it says "not implemented", for
        the caller to fall through to the high-level method, as Seldon does."""
        try:
            result = await self._invoke(spec, *args)
        except NotImplementedByComponent:
            return None
        return self._from_raw(result, wire, endpoint)

    async def route(self, request: Message, wire: str = "json") -> Message:
        spec = self._methods[("route", wire)]
        if spec is not None and spec.variant != "high":
            if request.kind is DataKind.V2:
                self._refuse_v2(spec, "route")
            answer = await self._raw(spec, wire, "route", self._wire_form(request, wire))
            if answer is not None:
                return answer
            spec = self._fallbacks[("route", wire)]
        if spec is None:
            raise NotImplementedByComponent("Route not defined")
        meta_arg = {"meta": seldon_json.encode_meta(request.meta)} if spec.takes_meta else {}
        result = await self._invoke(spec, request.array(), request.names, **meta_arg)
        data, tags, metrics = unwrap(result)
        if isinstance(data, np.integer):
            data = int(data)
        if not isinstance(data, int) or isinstance(data, bool):
            raise BadRequest(f"Routing response must be int but got {data!r}")
        # as Seldon: a router's answer carries its own tags, not the request's
        meta = self._response_meta(Meta(puid=request.meta.puid), "route", tags, metrics)
        mirror = request if request.kind is not DataKind.V2 else None  # a route is no tensor
        return to_message(np.array([[data]]), mirror, meta, self._names_for, spec.name)

    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message:
        spec = self._methods[("aggregate", wire)]
        if spec is not None and spec.variant != "high":
            if raw is None:
                raw = (
                    [self._wire_form(r, "json") for r in requests]
                    if wire == "json"
                    else seldon_pb.pb.SeldonMessageList(
                        seldonMessages=[self._wire_form(r, "proto") for r in requests]
                    )
                )
            answer = await self._raw(spec, wire, "aggregate", raw)
            if answer is not None:
                return answer
            spec = self._fallbacks[("aggregate", wire)]
        if spec is None:
            raise NotImplementedByComponent("Aggregate not defined")
        result = await self._invoke(
            spec, [r.array() for r in requests], [r.names for r in requests]
        )
        data, tags, metrics = unwrap(result)
        merged = Meta()
        for r in requests:
            merged.tags.update(r.meta.tags)
            merged.request_path.update(r.meta.request_path)
            merged.metrics.extend(r.meta.metrics)
            merged.puid = merged.puid or r.meta.puid
        meta = self._response_meta(merged, "aggregate", tags, metrics)
        first = requests[0] if requests else None
        return to_message(data, first, meta, self._names_for, spec.name, self._v2_output)

    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message:
        """Seldon answers the method's return value; ``None`` (or no method) is ``[]``.

        The answer mirrors the data kind of ``feedback.request`` (a tensor when it has
        no data) and carries the runtime and static tags, not the request's. A
        ``send_feedback_raw`` that returns None answers an empty SeldonMessage.
        """
        spec = self._methods[("send_feedback", wire)]
        if spec is not None and spec.variant != "high":
            # Seldon hands *_raw feedback a protobuf message, whatever the transport
            as_json = spec.variant == "rest"
            arg = (
                seldon_json.loads(seldon_json.dumps(seldon_json.encode_feedback(feedback)))
                if as_json
                else seldon_pb.encode_feedback(feedback)
            )
            try:
                result = await self._invoke(spec, arg)
            except NotImplementedByComponent:
                spec = self._fallbacks[("send_feedback", wire)]
            else:
                if result is None:
                    result = {} if as_json else seldon_pb.pb.SeldonMessage()
                return self._from_raw(result, "json" if as_json else "proto", "send_feedback")
        request = feedback.request
        features = request.array() if request is not None else np.array([])
        mirror = request if request is not None else Message(DataKind.NONE, None)
        data: Any = []
        tags: dict[str, Any] | None = None
        metrics: list[dict[str, Any]] | None = None
        if spec is not None:
            routing = feedback.response.meta.routing.get(self.name) if feedback.response else None
            truth = feedback.truth.array() if feedback.truth is not None else np.array([])
            kwargs = {"routing": routing} if spec.takes_routing else {}
            names = request.names if request is not None else []
            try:
                result = await self._invoke(spec, features, names, feedback.reward, truth, **kwargs)
            except NotImplementedByComponent:
                result = None
            data, tags, metrics = unwrap(result)
            data = [] if data is None else data
        meta = self._response_meta(Meta(puid=mirror.meta.puid), "send_feedback", tags, metrics)
        return to_message(data, mirror, meta, self._names_for, "send_feedback")

    async def health_status(self, wire: str = "json") -> Message:
        spec = self._methods[("health_status", wire)]
        if spec is not None and spec.variant != "high":
            answer = await self._raw(spec, wire, "health_status")
            if answer is not None:
                return answer
            spec = self._fallbacks[("health_status", wire)]
        data: Any = "healthy"
        if spec is not None:
            try:
                result = await self._invoke(spec)
            except NotImplementedByComponent:
                data = "not implemented - assuming healthy"
            else:
                data, _, _ = unwrap(result)
        meta = self._response_meta(Meta(), "health_status", None, None)
        return to_message(data, None, meta, self._names_for, "health_status")


class _WithoutRaw:
    """A view of the user object without the ``*_raw``/legacy variants of one endpoint."""

    def __init__(self, user: Any, endpoint: str) -> None:
        self._user = user
        self._hidden = {f"{endpoint}_raw", f"{endpoint}_rest", f"{endpoint}_grpc"}

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._user, name)
