"""infergraph's own HTTP/1.1 server: httptools parsing straight into ``SeldonApp.respond``.

An ASGI server builds a scope, a receive and a send coroutine and several dicts per
request; for sub-millisecond models that bookkeeping costs as much as the model. This
server parses with httptools (the parser uvicorn uses), reads each body whole (refusing
it past the size limit from the headers alone), calls the app's transport-free
``respond`` and writes the answer in one ``write``. Keep-alive and pipelined requests are
answered in order; a malformed request gets a 400 and the connection is closed.
With ``access_log`` each answer also writes a line to the ``infergraph.access`` logger
(:mod:`infergraph.transport.access_log`); the choice is made once, by the connection
class, so a server without it pays nothing per request.
The ASGI app stays available for embedding (``infergraph.component_app``) and
``--http-server uvicorn`` serves through uvicorn instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from ssl import SSLContext
from typing import Any, Protocol, cast, runtime_checkable

import httptools

from infergraph.errors import InferGraphError, PayloadTooLarge
from infergraph.transport.access_log import (
    answer_puid,
    answer_trace_id,
    client_address,
    log_access,
)

__all__ = ["HttpServer", "Responder"]


@runtime_checkable
class Responder(Protocol):
    """What this server serves: a :class:`~infergraph.transport.asgi.SeldonApp`, or a layer
    in front of one (:class:`~infergraph.transport.ingress.IngressPaths`)."""

    @property
    def max_body_size(self) -> int: ...

    async def respond(
        self, scope: dict[str, Any], body: bytes | InferGraphError
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]: ...


log = logging.getLogger(__name__)

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


class _Request:
    __slots__ = ("body", "error", "headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.method = "GET"
        self.keep_alive = True
        self.error: InferGraphError | None = None


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.respond: Callable[[dict[str, Any], bytes | InferGraphError], Awaitable[Answer]]
        self.respond = server.app.respond
        self.limit = server.app.max_body_size
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request = _Request()
        self.size = 0
        self.queue: deque[_Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.closing = False

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.worker is not None:
            self.worker.cancel()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._abort()
        except httptools.HttpParserError:
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.write(_BAD_REQUEST)
            self.transport.close()

    # ---------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        self.request = _Request()
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        request = self.request
        request.method = self.parser.get_method().decode("ascii")
        request.keep_alive = self.parser.should_keep_alive()
        for name, value in request.headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                request.error = PayloadTooLarge(
                    f"Request body of {int(value)} bytes exceeds the limit of {self.limit} "
                    "bytes (set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
                )
                request.keep_alive = False  # the body will not be read

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request.error is not None:
            return
        self.size += len(body)
        if self.size > self.limit:
            request.error = PayloadTooLarge(
                f"Request body exceeds the limit of {self.limit} bytes "
                "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
            )
            request.body = []
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        self.queue.append(self.request)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._serve_queue())
        if len(self.queue) > 32 and self.transport is not None:
            self.transport.pause_reading()  # a client pipelining faster than we answer

    # ---------------------------------------------------------------- answering

    async def _serve_queue(self) -> None:
        while self.queue and not self.closing:
            request = self.queue.popleft()
            await self._answer(request)
            if self.transport is not None and len(self.queue) <= 32:
                self.transport.resume_reading()

    async def _answer(self, request: _Request) -> None:
        url = httptools.parse_url(request.url)
        scope: dict[str, Any] = {
            "type": "http",
            "method": request.method,
            "path": url.path.decode("latin-1"),
            "query_string": url.query or b"",
            "headers": request.headers,
        }
        body: bytes | InferGraphError
        if request.error is not None:
            body = request.error
        elif len(request.body) == 1:
            body = request.body[0]
        else:  # one copy, into a mutable buffer: V2 binary tensors are then views of it
            body = cast(bytes, bytearray().join(request.body))  # reads as bytes everywhere
        status, headers, out = await self.respond(scope, body)
        if not self.writable.is_set():
            await self.writable.wait()
        if self.closing or self.transport is None:
            return
        head = [_status_line(status)]
        head.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        if not request.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head) + out)
        if not request.keep_alive:
            self.closing = True
            self.transport.close()


class _LoggedConnection(_Connection):
    """A connection that writes one access-log line per answer (``--access-log``)."""

    def __init__(self, server: HttpServer) -> None:
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


class HttpServer:
    """Serves one :class:`Responder` on a listening socket; with ``access_log``, one line
    per answer goes to the ``infergraph.access`` logger."""

    def __init__(self, app: Responder, *, access_log: bool = False) -> None:
        self.app = app
        self.connection = _LoggedConnection if access_log else _Connection
        self.connections: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self, sock: socket.socket, ssl: SSLContext | None = None) -> None:
        """Serve on ``sock``; with ``ssl``, in TLS (:mod:`infergraph.wire.tls`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: self.connection(self), sock=sock, ssl=ssl)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight answers finish (up to ``grace``), close the rest."""
        if self._server is not None:
            self._server.close()
        busy = [c.worker for c in self.connections if c.worker is not None and not c.worker.done()]
        if busy:
            await asyncio.wait(busy, timeout=grace)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
