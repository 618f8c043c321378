"""Which request a log line was written for: its puid and trace ids, in a context variable.

The transports open a :class:`RequestLog` for each call they answer (:func:`begin`, one
context-variable set and reset per request) holding the request's headers; the data planes
note the puid once they know it, and a server span notes its ids. Nothing is computed per
request beyond that: the trace ids are read from the headers only when a line is written
(:meth:`RequestLog.ids`). Tasks and threads started while answering (the executor's
concurrent children, sync user code on the thread pool) copy the context, so a line the
user's ``predict`` logs carries the request's puid too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token

from infergraph.observability.tracing import parent_of

__all__ = ["RequestLog", "begin", "current", "end", "note_puid", "note_span"]

Pairs = Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str | bytes]]
Headers = Pairs | Callable[[], Pairs]
"""A request's headers or gRPC metadata: (name, value) pairs, names in lower case, or what
returns them when called (read only if a line is written: gRPC builds its metadata then)."""


class RequestLog:
    """One request, as its log lines name it."""

    __slots__ = ("headers", "puid", "span_id", "trace_id")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self.puid = ""
        self.trace_id = 0
        self.span_id = 0

    def header(self, name: str) -> str:
        """A header's value ("" when absent), whether the pairs are bytes or text."""
        raw = name.encode()
        pairs = self.headers() if callable(self.headers) else self.headers
        for key, value in pairs or ():
            if key in (raw, name):
                return value.decode("latin-1") if isinstance(value, bytes) else str(value)
        return ""

    def ids(self) -> dict[str, str]:
        """``puid``, ``trace_id`` and ``span_id``, those that are known (hex, as W3C writes
        them): the server span's when tracing is on, else the caller's from its headers."""
        out: dict[str, str] = {}
        puid = self.puid or self.header("seldon-puid")
        if puid:
            out["puid"] = puid
        trace_id, span_id = self.trace_id, self.span_id
        if not trace_id:
            names = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid")
            found = {name: self.header(name) for name in names}
            parent = parent_of({k: v for k, v in found.items() if v})
            if parent is not None:
                trace_id, span_id = parent.trace_id, parent.span_id
        if trace_id:
            out["trace_id"] = f"{trace_id:032x}"
            out["span_id"] = f"{span_id:016x}"
        return out


_CURRENT: ContextVar[RequestLog | None] = ContextVar("infergraph_request_log", default=None)


def begin(headers: Headers) -> tuple[RequestLog, Token[RequestLog | None]]:
    """Open the request being answered now; :func:`end` it with the token."""
    request = RequestLog(headers)
    return request, _CURRENT.set(request)


def end(token: Token[RequestLog | None]) -> None:
    _CURRENT.reset(token)


def current() -> RequestLog | None:
    """The request being answered, or None outside one."""
    return _CURRENT.get()


def note_puid(puid: str) -> None:
    """The request's puid, once known (the first one noted stays)."""
    request = _CURRENT.get()
    if request is not None and not request.puid and puid:
        request.puid = puid


def note_span(trace_id: int, span_id: int) -> None:
    """The server span answering the request (tracing on)."""
    request = _CURRENT.get()
    if request is not None:
        request.trace_id, request.span_id = trace_id, span_id
