"""One access-log line per answered request (``--access-log``, Seldon's GUNICORN_ACCESS_LOG).

Seldon's gunicorn writes a line for every request when asked to; infergraph's own HTTP
server writes one through the logger named :data:`ACCESS_LOGGER`, so that it goes wherever
the process's logging goes (stderr, for the CLI) and can be silenced or routed by name.
A line reads ``127.0.0.1 "POST /api/v1.0/predictions" 200 1.3ms puid=...``: the client,
the method and path (not the query string, which may carry a whole ``json=`` payload), the
status, how long the app took to answer, and the puid when the answer carries one.
"""

from __future__ import annotations

import logging
from typing import Any

from infergraph.transport.asgi import PUID, Scope

__all__ = ["ACCESS_LOGGER", "access_line", "answer_puid", "client_address", "log_access"]

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


def access_line(
    client: str, method: str, path: str, status: int, seconds: float, puid: str = ""
) -> str:
    """One line of the access log (a ``"`` in the path is escaped, so fields stay apart)."""
    shown = path.replace('"', "%22")
    line = f'{client} "{method} {shown}" {status} {seconds * 1000.0:.1f}ms'
    return f"{line} puid={puid}" if puid else line


def log_access(
    client: str, method: str, path: str, status: int, seconds: float, puid: str = ""
) -> None:
    """Write one access line at INFO (formatted only when the logger would write it)."""
    if log.isEnabledFor(logging.INFO):
        log.info(access_line(client, method, path, status, seconds, puid))
