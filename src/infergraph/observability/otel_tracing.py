"""OpenTelemetry behind :class:`~infergraph.observability.tracing.Tracing` (the ``tracing``
extra); imported only when tracing is on.

The tracer provider is private: nothing is registered globally (no
``set_tracer_provider``, no global propagator), so a host application's own OpenTelemetry
setup is neither replaced nor used. Spans leave through a ``BatchSpanProcessor``, whose
``OTEL_BSP_*`` variables (schedule delay, queue and batch sizes) the SDK reads; the OTLP
exporters read ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, certificates, timeout,
compression) themselves, and the sampler ``OTEL_TRACES_SAMPLER`` (default: follow the
caller's sampled flag, sample roots).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from infergraph._version import __version__
from infergraph.observability.log_context import note_span
from infergraph.observability.tracing import HOP_HEADERS, b3_header, parent_of, traceparent
from infergraph.settings import TracingSettings

__all__ = ["OtelTracing", "exporter_for"]

T = TypeVar("T")


def exporter_for(settings: TracingSettings) -> SpanExporter:
    """The span exporter the settings name (the OTLP ones read the rest of OTEL_*)."""
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if settings.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    return GrpcExporter(endpoint=settings.endpoint)


def _caller(headers: Mapping[str, str]) -> Context:
    """The context a server span starts in: the caller's span, else none (a new trace)."""
    parent = parent_of(headers)
    if parent is None:
        return Context()
    state = TraceState.from_header([parent.tracestate]) if parent.tracestate else None
    span = SpanContext(
        parent.trace_id,
        parent.span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT),
        trace_state=state,
    )
    return set_span_in_context(NonRecordingSpan(span), Context())


class OtelTracing:
    """Server spans per call, a span per node call, exported in batches."""

    def __init__(
        self,
        settings: TracingSettings,
        service_name: str,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.b3 = settings.b3
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter or exporter_for(settings)))
        self.tracer = self.provider.get_tracer("infergraph", __version__)

    @contextmanager
    def request(
        self, name: str, headers: Mapping[str, str], attributes: dict[str, Any]
    ) -> Iterator[Span]:
        with self.tracer.start_as_current_span(
            name, context=_caller(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            ids = span.get_span_context()
            note_span(ids.trace_id, ids.span_id)  # for the lines logged while it is open
            yield span

    @contextmanager
    def node(self, name: str, attributes: dict[str, Any], remote: bool) -> Iterator[Span]:
        # a child of the current (request) span, never made current itself: a node call
        # holds no span of ours, and attaching one would cost a third of the span again
        kind = SpanKind.CLIENT if remote else SpanKind.INTERNAL
        span = self.tracer.start_span(name, kind=kind, attributes=attributes)
        token = None
        if remote:
            ids = span.get_span_context()
            sampled = ids.trace_flags.sampled
            hop = [("traceparent", traceparent(ids.trace_id, ids.span_id, sampled))]
            if ids.trace_state:
                hop.append(("tracestate", ids.trace_state.to_header()))
            if self.b3:
                hop.append(("b3", b3_header(ids.trace_id, ids.span_id, sampled)))
            token = HOP_HEADERS.set(tuple(hop))
        try:
            yield span
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if token is not None:
                HOP_HEADERS.reset(token)
            span.end()

    async def serve(
        self,
        name: str,
        headers: Mapping[str, str],
        attributes: dict[str, Any],
        call: Awaitable[T],
    ) -> T:
        with self.request(name, headers, attributes):
            return await call

    def shutdown(self) -> None:
        self.provider.shutdown()
