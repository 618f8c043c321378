"""One access-log line per answered request (``--access-log``, Seldon's GUNICORN_ACCESS_LOG).

Seldon's gunicorn writes a line for every request when asked to; infergraph's own HTTP
server writes one through the logger named :data:`ACCESS_LOGGER`, so that it goes wherever
the process's logging goes (stderr, for the CLI) and can be silenced or routed by name.
A line reads ``127.0.0.1 "POST /api/v1.0/predictions" 200 1.3ms puid=...``: the client,
the method and path (not the query string, which may carry a whole ``json=`` payload), the
status, how long the app took to answer, the puid when the answer carries one, and the
trace id when the request belongs to a trace (its ``traceparent`` or B3 headers, or the
server span tracing made). With ``--log-format json`` these are also fields of the line:
``client``, ``method``, ``path``, ``status``, ``duration_ms``, ``puid``, ``trace_id``.
"""

from __future__ import annotations

import logging
from typing import Any

from infergraph.observability.json_logs import FIELDS
from infergraph.observability.log_context import RequestLog
from infergraph.transport.rest.asgi import PUID, REQUEST_LOG, Scope

__all__ = [
    "ACCESS_LOGGER",
    "access_line",
    "answer_puid",
    "answer_trace_id",
    "client_address",
    "log_access",
]

ACCESS_LOGGER = "infergraph.access"
"""The logger access lines are written to, at INFO."""

log = logging.getLogger(ACCESS_LOGGER)


def client_address(peername: Any) -> str:
    """The client's address as a log shows it: the host of ``(host, port, ...)``."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername) if peername else "-"


def answer_puid(scope: Scope, headers: list[tuple[bytes, bytes]]) -> str:
    """The puid the answer carries: left in the scope by the app (a component's
    ``meta.puid``), else the ``Seldon-Puid`` header a graph echoes; "" when it has none."""
    puid = scope.get(PUID)
    if puid:
        return str(puid)
    for name, value in headers:
        if name == b"seldon-puid":
            return value.decode("latin-1")
    return ""


def answer_trace_id(scope: Scope) -> str:
    """The trace the request belongs to (hex), from what the app noted while answering it,
    else from the request's headers; "" when it belongs to none."""
    request = scope.get(REQUEST_LOG)
    if not isinstance(request, RequestLog):  # a layer in front (the gateway's paths) copied it
        request = RequestLog(scope["headers"])
    return request.ids().get("trace_id", "")


def access_line(
    client: str,
    method: str,
    path: str,
    status: int,
    seconds: float,
    puid: str = "",
    trace_id: str = "",
) -> str:
    """One line of the access log (a ``"`` in the path is escaped, so fields stay apart)."""
    shown = path.replace('"', "%22")
    line = f'{client} "{method} {shown}" {status} {seconds * 1000.0:.1f}ms'
    if puid:
        line += f" puid={puid}"
    return f"{line} trace_id={trace_id}" if trace_id else line


def log_access(
    client: str,
    method: str,
    path: str,
    status: int,
    seconds: float,
    puid: str = "",
    trace_id: str = "",
) -> None:
    """Write one access line at INFO (formatted only when the logger would write it)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "client": client,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000.0, 3),
    }
    if puid:
        fields["puid"] = puid
    if trace_id:
        fields["trace_id"] = trace_id
    line = access_line(client, method, path, status, seconds, puid, trace_id)
    log.info(line, extra={FIELDS: fields})
