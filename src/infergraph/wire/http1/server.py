"""infergraph's own HTTP/1.1 server: httptools parsing straight into an app's ``respond``.

An ASGI server builds a scope, a receive and a send coroutine and several dicts per
request; for sub-millisecond models that bookkeeping costs as much as the model. This
server parses with httptools (the parser uvicorn uses), reads each body whole (refusing
it past the size limit from the headers alone), calls the app's transport-free
``respond`` and writes the answer in one ``write``. Keep-alive and pipelined requests are
answered in order. What a client can make a connection hold (the request target, the
headers, time, connections) is bounded by :class:`~infergraph.wire.limits.Http1Limits`;
a request past a limit, or one that is not HTTP, is refused
(:mod:`infergraph.wire.http1.guard`) after the requests before it are answered, and
the connection is closed. The checks cost next to nothing per request: sizes are counted
only for a head that spans reads or comes in a long one, and one timer per connection,
re-armed about once per timeout, serves every timeout.
The app is what is passed in: this module knows nothing of infergraph's REST apps or its
logs. A subclass of :class:`Connection`, chosen once per server, may wrap ``respond`` (the
access log does, :mod:`infergraph.transport.rest.server`), so a server without one pays
nothing per request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from ssl import SSLContext
from typing import Any, Protocol, cast, runtime_checkable

import httptools

from infergraph.errors import InferGraphError, PayloadTooLarge
from infergraph.wire.http1 import guard
from infergraph.wire.http1.guard import BETWEEN, BODY, HEAD, ConnectionGuard
from infergraph.wire.limits import Http1Limits

__all__ = ["Answer", "Connection", "HttpServer", "Responder"]


@runtime_checkable
class Responder(Protocol):
    """What this server serves: an app with a body size limit and a ``respond`` that
    answers a request (an ASGI-like scope, and the body, or the error that refused it)
    with its status, headers and body: infergraph's REST apps, and the layers in front."""

    @property
    def max_body_size(self) -> int: ...

    async def respond(
        self, scope: dict[str, Any], body: bytes | InferGraphError
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]: ...


log = logging.getLogger(__name__)

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
"""An answer's status, headers and body, as ``respond`` gives it."""

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: the request has been refused."""


class _Request:
    __slots__ = ("body", "error", "headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.method = "GET"
        self.keep_alive = True
        self.error: InferGraphError | None = None


class Connection(ConnectionGuard):
    """One client connection: parses its requests and answers each with ``respond``
    (the app's, unless a subclass wraps it), in order."""

    __slots__ = (
        "app",
        "body_of",
        "body_seen",
        "continue_for",
        "fed",
        "fields",
        "head_bytes",
        "limit",
        "max_head",
        "max_header_size",
        "max_headers",
        "max_url",
        "parser",
        "request",
        "respond",
        "server",
        "since_body",
        "size",
        "small_chunk",
        "trailers",
        "writable",
    )

    def __init__(self, server: HttpServer) -> None:
        super().__init__(server.limits)
        self.server = server
        self.app = server.app
        self.respond: Callable[[dict[str, Any], bytes | InferGraphError], Awaitable[Answer]]
        self.respond = server.app.respond
        self.limit = server.app.max_body_size
        limits = server.limits
        self.max_url = limits.max_url_size
        self.max_headers = limits.max_headers
        self.max_header_size = limits.max_header_size
        # a head within the limits is at most this long, framing included (":", CRLFs,
        # method and version), past its request target
        self.max_head = limits.max_header_size + 4 * limits.max_headers + 64
        # a chunk this short holds neither too many header fields ("x:" and a line end
        # each) nor too many header bytes
        self.small_chunk = min(limits.max_header_size, 3 * limits.max_headers)
        self.parser = httptools.HttpRequestParser(self)
        self.request = _Request()
        self.size = 0
        self.writable = asyncio.Event()
        self.writable.set()
        self.head_bytes = 0  # of the head in progress, from its second chunk on
        self.fed = 0  # bytes in the chunk being parsed
        self.fields: list[tuple[bytes, bytes]] = []  # where on_header puts a field
        self.trailers: list[tuple[bytes, bytes]] = []
        self.body_of: _Request | None = None  # whose body the next three are about
        self.body_seen = 0  # its bytes as of the last chunk that brought some
        self.since_body = 0  # bytes fed since then
        self.continue_for: _Request | None = None  # owed a 100 Continue, after the answers

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        connections = self.server.connections
        connections.add(self)
        most = self.limits.max_connections
        if most and len(connections) > most:
            self.stopped = True
            self._linger(guard.too_many_connections(self.limits))
        else:
            self._idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.worker is not None:
            self.worker.cancel()
        if self.timer is not None:
            self.timer.cancel()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            self.dropped += len(data)
            return
        self.fed = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # the bytes after the upgrade request are another protocol: answer it, then close
            self.stopped = True
            if self.queue:
                self.queue[-1].keep_alive = False
            else:
                self._refuse(guard.malformed("protocol upgrades are not supported"))
            return
        except httptools.HttpParserError as exc:
            if not self.stopped:  # not a refusal of ours: the parser's own error
                if isinstance(exc, httptools.HttpParserCallbackError):
                    log.error("HTTP/1.1 parser callback failed", exc_info=exc.__context__)
                self._refuse(guard.malformed(str(exc) or type(exc).__name__))
            return
        if self.phase:
            self._partial(len(data))

    def _partial(self, size: int) -> None:
        """The chunk just fed ended inside a request: bound the head, time what is to come."""
        now = self.loop.time()
        limits = self.limits
        if self.phase == HEAD:
            if self.head_bytes < 0:  # the head began in this chunk
                self.head_bytes = 0
                self.head_since = now
                if limits.header_timeout:
                    self._arm(now + limits.header_timeout)
                return
            self.head_bytes += size
            if self.head_bytes - len(self.request.url) > self.max_head:
                self._refuse(guard.head_too_large(limits))
            return
        # the body: the timeout runs from its last byte; what comes between body bytes
        # (chunk framing, trailers, which httptools holds whole) is bounded as a head is
        request = self.request
        if self.body_of is not request:
            self.body_of, self.body_seen, self.since_body = request, self.size, 0
            if not self.size:
                self._expect_continue()
        elif self.size == self.body_seen:
            self.since_body += size
            if self.since_body > self.max_head:
                self._refuse(guard.trailers_too_large(limits))
            elif len(self.trailers) > self.max_headers:
                self._refuse(guard.too_many_headers(limits))
            return
        else:
            self.body_seen, self.since_body = self.size, 0
        self.body_at = now
        if limits.body_timeout:
            self._arm(now + limits.body_timeout)

    def _expect_continue(self) -> None:
        """The head of the request in progress is in and its body is not: a client that
        sent ``Expect: 100-continue`` waits for a ``100 Continue`` (once the answers still
        owed are written) before it sends the body. Not looked for while the whole request
        comes at once, which is most of the time."""
        request = self.request
        if self.parser.get_http_version() == "1.1" and any(
            name == b"expect" and value.lower() == b"100-continue"
            for name, value in request.headers
        ):
            self.continue_for = request
            if self.worker is None or self.worker.done():
                self._continue()

    def _continue(self) -> None:
        request, self.continue_for = self.continue_for, None
        if request is self.request and self.phase == BODY and not self.size:
            assert self.transport is not None
            self.transport.write(guard.CONTINUE)

    # ---------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        self.request = request = _Request()
        self.fields = request.headers
        self.size = 0
        self.phase = HEAD
        self.head_bytes = -1

    def on_url(self, url: bytes) -> None:
        request = self.request
        request.url += url
        if len(request.url) > self.max_url:
            self._refuse(guard.url_too_long(self.limits))
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.phase = BODY
        # a chunked body's trailers, after it, are read and dropped: never merged into
        # the headers the app sees (RFC 9110 6.5.1)
        self.fields = trailers = self.trailers
        if trailers:
            trailers.clear()
        request = self.request
        headers = request.headers
        if self.head_bytes >= 0 or self.fed > self.small_chunk:
            self._check_head(headers)
        request.method = self.parser.get_method().decode("ascii")
        request.keep_alive = self.parser.should_keep_alive()
        for name, value in headers:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                self._too_large(
                    f"Request body of {int(value)} bytes exceeds the limit of {self.limit} "
                    "bytes (set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
                )

    def _check_head(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Refuse a head over max_headers or max_header_size. Not called for a head that
        came whole in a chunk too short to hold that much, which is most requests."""
        if len(headers) > self.max_headers:
            self._refuse(guard.too_many_headers(self.limits))
            raise _Stop
        if sum(len(name) + len(value) for name, value in headers) > self.max_header_size:
            self._refuse(guard.head_too_large(self.limits))
            raise _Stop

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.limit:
            self._too_large(
                f"Request body exceeds the limit of {self.limit} bytes "
                "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
            )
        self.request.body.append(body)

    def on_message_complete(self) -> None:
        self.phase = BETWEEN
        self.queue.append(self.request)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._serve_queue())
        if len(self.queue) > 32 and self.transport is not None:
            self.transport.pause_reading()  # a client pipelining faster than we answer
            self.paused = True

    def _enqueue(self, request: _Request) -> None:
        self.queue.append(request)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._serve_queue())

    def _too_large(self, message: str) -> None:
        """Answer the request in progress now, from what is known (the app's 413), and read
        nothing more: its body would only be dropped."""
        request = self.request
        request.error = PayloadTooLarge(message)
        request.body = []
        request.keep_alive = False
        self.stopped = True
        self.phase = BETWEEN
        self._enqueue(request)
        raise _Stop

    # ---------------------------------------------------------------- answering

    async def _serve_queue(self) -> None:
        while self.queue and not self.closing:
            request = self.queue.popleft()
            await self._answer(request)
            if self.paused and len(self.queue) <= 32 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
        if self.closing:
            return
        if self.refusal is not None:
            self._linger(self.refusal)
            return
        if self.continue_for is not None:
            self._continue()
        if not self.phase:  # idle: the keep-alive timeout runs from now (_watch)
            self.idle_since = self.loop.time()
            if self.timer is None:
                self._idle()

    async def _answer(self, request: _Request) -> None:
        try:
            url = httptools.parse_url(request.url)
        except httptools.HttpParserInvalidURLError as exc:
            self.stopped = True
            self._linger(guard.bad_target(str(exc)))
            return
        scope: dict[str, Any] = {
            "type": "http",
            "method": request.method,
            "path": url.path.decode("latin-1") if url.path else "/",  # http://host: no path
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
        try:
            status, headers, out = await self.respond(scope, body)
        except Exception:
            log.exception("answering %s %s failed", request.method, scope["path"])
            self.stopped = True
            self._linger(guard.server_error())
            return
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
            if self.stopped:  # the client may still be sending what was refused
                self._linger(b"")
            else:
                self.closing = True
                self.transport.close()


class HttpServer:
    """Serves one :class:`Responder` on a listening socket, each client on a
    ``connection`` (:class:`Connection`, or a subclass of it). ``limits`` bound what a
    client can make it hold (the defaults of :class:`~infergraph.wire.limits.Http1Limits`
    when not given)."""

    def __init__(
        self,
        app: Responder,
        *,
        limits: Http1Limits | None = None,
        connection: type[Connection] = Connection,
    ) -> None:
        self.app = app
        self.limits = limits or Http1Limits()
        self.connection = connection
        self.connections: set[Connection] = set()
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
            if connection.timer is not None:
                connection.timer.cancel()
            if connection.transport is not None:
                connection.transport.close()
        if self.connections:  # a peer that does not read keeps a closed transport's buffer
            await asyncio.sleep(0)
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            await asyncio.sleep(0)  # their connection_lost runs before the loop may close
