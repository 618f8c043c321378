"""The REST apps on infergraph's own HTTP/1.1 server, with the access log when asked.

The server itself (:mod:`infergraph.wire.http1.server`) knows nothing of infergraph's apps
or logs. :class:`HttpServer` here is that server with one choice made once, when it is
built: with ``access_log`` each connection is a :class:`LoggedConnection`, which times
each answer and writes its line to the ``infergraph.access`` logger
(:mod:`infergraph.transport.rest.access_log`); without it, connections are the wire's own
and pay nothing per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from infergraph.errors import InferGraphError
from infergraph.transport.rest.access_log import (
    answer_puid,
    answer_trace_id,
    client_address,
    log_access,
)
from infergraph.wire.http1 import server as http1
from infergraph.wire.http1.server import Answer, Connection, Responder
from infergraph.wire.limits import Http1Limits

__all__ = ["HttpServer", "LoggedConnection"]


class LoggedConnection(Connection):
    """A connection that writes one access-log line per answer (``--access-log``)."""

    __slots__ = ("client",)

    def __init__(self, server: http1.HttpServer) -> None:
        super().__init__(server)
        self.respond = self._respond_and_log
        self.client = "-"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.client = client_address(transport.get_extra_info("peername"))

    async def _respond_and_log(
        self, scope: dict[str, Any], body: bytes | InferGraphError
    ) -> Answer:
        started = time.perf_counter()
        status, headers, out = await self.app.respond(scope, body)
        seconds = time.perf_counter() - started
        puid, trace_id = answer_puid(scope, headers), answer_trace_id(scope)
        log_access(self.client, scope["method"], scope["path"], status, seconds, puid, trace_id)
        return status, headers, out


class HttpServer(http1.HttpServer):
    """Serves one :class:`Responder` on a listening socket; with ``access_log``, one line
    per answer goes to the ``infergraph.access`` logger. ``limits`` bound what a client
    can make it hold (the defaults of :class:`~infergraph.wire.limits.Http1Limits` when
    not given)."""

    def __init__(
        self, app: Responder, *, access_log: bool = False, limits: Http1Limits | None = None
    ) -> None:
        super().__init__(
            app, limits=limits, connection=LoggedConnection if access_log else Connection
        )
