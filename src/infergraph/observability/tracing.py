"""Tracing's seam: what the serving path sees of it, with no OpenTelemetry import.

Tracing is off unless :class:`~infergraph.settings.TracingSettings` turns it on; then
:func:`start_tracing` imports :mod:`infergraph.observability.otel_tracing` (the ``tracing``
extra) and hands back a :class:`Tracing`. Off, the serving path holds ``None`` and pays one
``is None`` test per request and per node call; OpenTelemetry is never imported.

The trace context of a request is read here, with no library: W3C ``traceparent`` and
``tracestate``, else B3 (the single ``b3`` header, else ``X-B3-TraceId``/``SpanId``/
``Sampled``/``Flags``). A node call's span puts the headers a hop sends into
:data:`HOP_HEADERS`, a context variable the node clients read, so the hop carries them
without the clients knowing about spans.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from infergraph.errors import LoadError
from infergraph.settings import TracingSettings
from infergraph.wire.hop_headers import HOP_HEADERS

__all__ = [
    "HOP_HEADERS",
    "Parent",
    "Tracing",
    "b3_header",
    "parent_of",
    "passed_on",
    "start_tracing",
    "traceparent",
]

T = TypeVar("T")


_INVALID_TRACE = 0
_INVALID_SPAN = 0


@dataclass(frozen=True, slots=True)
class Parent:
    """The caller's span, as a request's headers name it."""

    trace_id: int
    span_id: int
    sampled: bool
    tracestate: str = ""


def _hex(value: str, digits: tuple[int, ...]) -> int | None:
    if len(value) not in digits:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    return number or None  # all zeros is invalid in W3C and B3 alike


def _w3c(value: str, tracestate: str) -> Parent | None:
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0].lower() == "ff":
        return None
    if parts[0] == "00" and len(parts) != 4:
        return None
    trace_id, span_id = _hex(parts[1], (32,)), _hex(parts[2], (16,))
    if trace_id is None or span_id is None or len(parts[3]) != 2:
        return None
    try:
        flags = int(parts[3], 16)
    except ValueError:
        return None
    return Parent(trace_id, span_id, bool(flags & 1), tracestate.strip())


def _b3_sampled(value: str | None, flags: str | None = None) -> bool:
    if flags == "1":  # debug implies sampled
        return True
    return (value or "1").strip().lower() in ("1", "true", "d")


def _b3(headers: Mapping[str, str]) -> Parent | None:
    single = headers.get("b3")
    if single:
        parts = single.strip().split("-")
        if len(parts) >= 2:
            trace_id, span_id = _hex(parts[0], (16, 32)), _hex(parts[1], (16,))
            if trace_id is not None and span_id is not None:
                return Parent(trace_id, span_id, _b3_sampled(parts[2] if len(parts) > 2 else None))
        return None
    trace_id = _hex(headers.get("x-b3-traceid", "").strip(), (16, 32))
    span_id = _hex(headers.get("x-b3-spanid", "").strip(), (16,))
    if trace_id is None or span_id is None:
        return None
    return Parent(
        trace_id, span_id, _b3_sampled(headers.get("x-b3-sampled"), headers.get("x-b3-flags"))
    )


def parent_of(headers: Mapping[str, str]) -> Parent | None:
    """The span a request continues, from its lower-case headers: W3C first, then B3."""
    value = headers.get("traceparent")
    if value:
        parent = _w3c(value, headers.get("tracestate", ""))
        if parent is not None:
            return parent
    if "b3" in headers or "x-b3-traceid" in headers:
        return _b3(headers)
    return None


_TRACE_HEADERS = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled")


def passed_on(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The trace headers a request came with, for its hops while tracing is off: passed on
    unchanged, as W3C lets a party that makes no spans do, so that the nodes' log lines name
    the caller's trace. Empty when it came with none."""
    if "traceparent" not in headers and "b3" not in headers and "x-b3-traceid" not in headers:
        return ()
    return tuple((name, headers[name]) for name in _TRACE_HEADERS if headers.get(name))


def traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    """The W3C ``traceparent`` value naming a span."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def b3_header(trace_id: int, span_id: int, sampled: bool) -> str:
    """The single ``b3`` header value naming a span."""
    return f"{trace_id:032x}-{span_id:016x}-{'1' if sampled else '0'}"


class Span(Protocol):
    def set_attribute(self, key: str, value: Any) -> None: ...


class Tracing(Protocol):
    """Spans for the serving path; built by :func:`start_tracing` only when tracing is on."""

    def request(self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]) -> Any:
        """A context manager: a server span for one incoming call, continuing the caller's
        trace when the headers name one; it yields a :class:`Span`."""

    def node(self, name: str, attributes: dict[str, Any], remote: bool) -> Any:
        """A context manager: a span for one node call (a client span for a hop to another
        process, whose trace headers it puts in :data:`HOP_HEADERS`); it yields a
        :class:`Span`."""

    async def serve(
        self,
        name: str,
        headers: Mapping[str, str],
        attributes: dict[str, Any],
        call: Awaitable[T],
    ) -> T:
        """Await ``call`` inside a :meth:`request` span."""

    def shutdown(self) -> None:
        """Export what is buffered and stop."""


def start_tracing(settings: TracingSettings, service_name: str) -> Tracing | None:
    """A :class:`Tracing` exporting as ``settings`` say, or None when tracing is off.

    ``service_name`` is used unless OTEL_SERVICE_NAME (``settings.service_name``) is set.
    """
    if not settings.enabled:
        return None
    try:
        from infergraph.observability.otel_tracing import OtelTracing
    except ImportError as exc:
        raise LoadError(
            f"tracing is on but OpenTelemetry is not installed ({exc}): "
            "pip install 'infergraph[tracing]', or unset OTEL_* and TRACING"
        ) from None
    return OtelTracing(settings, settings.service_name or service_name or "infergraph")
