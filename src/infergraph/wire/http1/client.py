"""A lean asyncio HTTP/1.1 client for the orchestrator's calls to node processes.

Why not httpx or aiohttp: per call they spend tens of microseconds of Python on request and
response objects, header containers, streams and timeout tasks. On a loopback hop to a
sub-millisecond model that is most of the hop. Here a call is one ``write`` of the whole
request, httptools (llhttp, the parser the node's own server uses) fed straight from
``data_received``, and one future: no streams, no tasks.

It does what a node call needs and nothing more: one address per :class:`HttpPool`,
keep-alive connections reused last-in-first-out (the warmest first), bodies sent whole with
``Content-Length``, answers with ``Content-Length`` or chunked bodies, TLS when given a
context (``docs/security.md``), a bearer token when given one. No redirects, proxies or
``Expect: 100-continue``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

import httptools

from infergraph.wire.hop_headers import HOP_HEADERS
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

Answer = tuple[int, bytes, int | None]
"""An answer's status, body and ``Inference-Header-Content-Length``."""
HEADER_LENGTH = b"inference-header-content-length"

__all__ = [
    "BadResponse",
    "ConnectFailed",
    "ConnectionLost",
    "HttpClientError",
    "HttpPool",
    "ResponseTooLarge",
]


class HttpClientError(Exception):
    """A call that got no usable answer. Timeouts raise the builtin :class:`TimeoutError`."""


class ConnectFailed(HttpClientError):
    """No connection could be opened (refused, unreachable, timed out): nothing was sent."""


class ConnectionLost(HttpClientError):
    """The connection closed before the whole answer came: the request may have been acted on.

    ``answered`` says whether any byte of the answer arrived."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class ResponseTooLarge(HttpClientError):
    """The answer is larger than the pool's ``max_response_size``; it is not read."""


class BadResponse(HttpClientError):
    """The bytes that came back are not an HTTP/1.1 answer."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight (no pipelining)."""

    def __init__(self, pool: HttpPool) -> None:
        self.pool = pool
        self.limit = pool.max_response_size
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chunks: list[bytes] = []
        self.size = 0
        self.answered = False
        self.keep_alive = False
        self.closed = False
        self.header_length: int | None = None

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._open.discard(self)
        why = f": {exc}" if exc else " by the server"
        lost = ConnectionLost(
            f"{self.pool.address}: connection closed{why}", answered=self.answered
        )
        self._fail(lost)
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():  # unasked-for bytes: cannot be trusted
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            self._fail(context if isinstance(context, HttpClientError) else BadResponse(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(BadResponse(f"malformed answer: {exc}"))

    # ---------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second answer to one request
            raise BadResponse("an answer nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length" and value.strip().isdigit():
            size = int(value)
            if size > self.limit:
                raise ResponseTooLarge(
                    f"an answer of {size} bytes exceeds the limit of {self.limit} bytes"
                )
        elif lower == HEADER_LENGTH:
            text = value.strip()
            self.header_length = int(text) if text.isdigit() else -1

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.limit:  # chunked: the size is only known as it comes
            raise ResponseTooLarge(f"an answer exceeds the limit of {self.limit} bytes")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        self.keep_alive = self.parser.should_keep_alive()
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body, self.header_length))

    # ---------------------------------------------------------------- use

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.chunks, self.size, self.answered = [], 0, False
        self.header_length = None
        self.transport.write(data)
        return waiter

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def _fail(self, error: HttpClientError) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        """Drop the connection at once: whatever it still carries is never read."""
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class HttpPool:
    """Keep-alive connections to one ``host:port``, opened on demand and kept while idle.

    There is no cap on connections in use: the orchestrator's concurrency bounds them. At
    most ``max_idle`` are kept once idle; the rest are closed. ``connect_timeout`` bounds
    opening a connection; :meth:`request`'s ``timeout`` bounds the whole call. With ``tls``
    connections are TLS, the server's name checked against the host; with ``auth`` every
    request carries ``Authorization: Bearer`` and its first token.
    """

    def __init__(
        self,
        address: str,
        *,
        max_response_size: int,
        connect_timeout: float = 5.0,
        max_idle: int = 64,
        tls: ReloadingContext | None = None,
        auth: BearerTokens | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self.host, self.port = host.strip("[]"), int(port)
        self.max_response_size = max_response_size
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.tls = tls
        self.auth = auth
        self._host_header = b"host: " + address.encode("ascii") + b"\r\n"
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.connections_made = 0
        """How many connections this pool opened (keep-alive keeps it low)."""
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open now, in use or idle, as far as this side knows."""
        return sum(1 for connection in self._open if connection.usable)

    @property
    def idle(self) -> int:
        """Idle connections kept for reuse (some may have been closed by the server since)."""
        return len(self._idle)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = True,
    ) -> tuple[int, bytes]:
        """Send one request and return the answer's status and whole body.

        :meth:`exchange` does the same and also returns the answer's
        ``Inference-Header-Content-Length`` (V2's binary tensor extension).

        A pooled connection that the server closed while it sat idle is skipped before
        anything is written. If it closes just as the request is written (no byte of answer
        came), the request is sent once more on a new connection, but only when
        ``idempotent``: whether the server acted on it cannot be known, and a request that
        must not run twice (feedback) gets :class:`ConnectionLost` instead.
        """
        status, answer, _ = await self.exchange(method, path, body, headers, timeout, idempotent)
        return status, answer

    async def exchange(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool = True,
    ) -> Answer:
        """:meth:`request`, plus the answer's ``Inference-Header-Content-Length`` (None when
        absent, -1 when it is not a number)."""
        head = b"%s %s HTTP/1.1\r\n%scontent-length: %d\r\n" % (
            method.encode("ascii"),
            path.encode("ascii"),
            self._host_header,
            len(body),
        )
        if headers:
            head += b"".join(
                b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in headers.items()
            )
        if self.auth is not None:
            head += b"authorization: %s\r\n" % self.auth.authorization().encode("latin-1")
        hop = HOP_HEADERS.get()  # a node call's trace context, when tracing is on
        if hop:
            head += b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in hop)
        data = head + b"\r\n" + body
        if timeout is None:
            return await self._exchange(data, idempotent)
        async with asyncio.timeout(timeout):
            return await self._exchange(data, idempotent)

    async def _exchange(self, data: bytes, idempotent: bool) -> Answer:
        connection = self._take()
        reused = connection is not None
        if connection is None:
            connection = await self._connect()
        try:
            try:
                answer = await connection.send(data)
            except ConnectionLost as exc:
                if not (reused and idempotent and not exc.answered):
                    raise
                connection = await self._connect()
                answer = await connection.send(data)
        except BaseException:  # cancelled or timed out included: a late answer must not
            connection.close()  # be read as the next call's
            raise
        if connection.keep_alive and connection.usable and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def _take(self) -> _Connection | None:
        if self._closed:
            raise ConnectFailed(f"{self.address}: the client is closed")
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=None if self.tls is None else self.tls.fresh(),
                )
        except TimeoutError:  # before OSError, of which it is a subclass
            raise ConnectFailed(
                f"{self.address}: no connection within {self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise ConnectFailed(f"{self.address}: {exc.strerror or exc}") from None
        if self._closed:
            connection.close()
            raise ConnectFailed(f"{self.address}: the client is closed")
        self._open.add(connection)
        self.connections_made += 1
        return connection

    def drop_idle(self) -> None:
        """Close the idle connections (their server is known to be gone)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def close(self) -> None:
        """Close every connection, in use or idle; later requests fail with ConnectFailed."""
        self._closed = True
        self._idle = []
        for connection in list(self._open):
            connection.close()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the loop has let go of every socket."""
        waiting = [c.lost for c in self._open]
        self.close()
        if waiting:
            await asyncio.gather(*waiting)
