"""A lean asyncio gRPC client for the orchestrator's calls to nodes: unary calls on one
HTTP/2 connection.

Why not ``grpc.aio``: a call costs it about 100 µs of CPU in the orchestrator, more than a
loopback hop to a small model costs everywhere else. Here a call is one ``write`` (HEADERS
and DATA frames together while the windows allow), frames read in ``data_received``, and
one future. It speaks to any gRPC server (grpcio's, ours): it honours the server's
SETTINGS, windows and frame size, answers PING, and reads header blocks with the same
cached HPACK decoder as the server. It does what a node call needs: unary calls, a
deadline, metadata out, status and details back, over TLS when given a context and with a
bearer token when given one (``docs/security.md``). No name resolution beyond
``host:port``, no retries of a call the server processed (the replicas above it decide),
no compression (it accepts only ``identity``, so a server must not compress).

A connection takes calls once the server's SETTINGS came (its limits are known then, as
gRPC's own clients wait for them; one round trip, once a connection). A lost connection
fails its calls with UNAVAILABLE and the next call opens a new one; a GOAWAY lets calls the
server took finish and sends new calls to a new connection. A call the server did not
process (refused with REFUSED_STREAM, above a GOAWAY's last stream, queued on a connection
that began to drain) is sent again, as gRPC's transparent retries do, within its deadline.
The deadline bounds the whole call: connecting, waiting for a stream, sending under flow
control, the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc

from infergraph.wire.grpc.connection import Connection, RpcError, Unprocessed, retrieve
from infergraph.wire.hop_headers import HOP_HEADERS
from infergraph.wire.limits import Http2Limits
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = ["GrpcChannel", "RpcError"]

RETRY_S = 0.05
"""Pause between connection attempts of a call that waits for the server."""
TRANSPARENT_RETRIES = 10
"""Times a call the server did not process is sent again (within its deadline): grpcio's
server refuses a stream a moment after the call before it ended (it counts calls until
its application let go of them), so a client at its MAX_CONCURRENT_STREAMS meets a few."""


class GrpcChannel:
    """Unary calls to one ``host:port``, multiplexed on one HTTP/2 connection (opened on
    first use and again after it is lost)."""

    def __init__(
        self,
        address: str,
        *,
        max_message_size: int = 4 << 20,
        connect_timeout: float = 5.0,
        limits: Http2Limits | None = None,
        tls: ReloadingContext | None = None,
        auth: BearerTokens | None = None,
    ) -> None:
        self.address = address
        self.limits = limits or Http2Limits()
        """What the connections advertise and hold the server to (its header lists)."""
        host, _, port = address.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.authority = address.encode()
        self.max_message_size = max_message_size
        self.connect_timeout = connect_timeout
        self.tls = tls
        """TLS of the connections (its context must offer ALPN ``h2``); None: plain."""
        self.scheme = b"http" if tls is None else b"https"
        self.auth = auth
        """The bearer token sent as ``authorization`` metadata on every call; None: none."""
        self._conn: Connection | None = None
        self._connecting: asyncio.Task[Connection] | None = None
        self._all: set[Connection] = set()

    async def _connection(self, deadline: float | None, wait: bool) -> Connection:
        """The open connection, or a new one by ``deadline`` (else ``connect_timeout``);
        with ``wait``, tries again until then (a node process still starting refuses
        connections)."""
        conn = self._conn
        if conn is not None and not conn.draining:
            return conn
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.connect_timeout
        while True:
            if self._connecting is None or self._connecting.done():
                self._connecting = loop.create_task(self._open())
                # a refusal nobody waits for any more must not be logged as unretrieved
                self._connecting.add_done_callback(retrieve)
            try:
                return await asyncio.wait_for(
                    asyncio.shield(self._connecting), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                raise RpcError(
                    grpc.StatusCode.UNAVAILABLE, f"no connection to {self.address} in time"
                ) from None
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the caller's own
                # close() cancelled the attempt: the call fails as calls in flight do
                raise RpcError(grpc.StatusCode.UNAVAILABLE, "the channel was closed") from None
            except OSError as exc:
                if not wait or loop.time() + RETRY_S >= deadline:
                    raise RpcError(
                        grpc.StatusCode.UNAVAILABLE, f"cannot connect to {self.address}: {exc}"
                    ) from None
            await asyncio.sleep(RETRY_S)

    async def _open(self) -> Connection:
        """A connection whose server sent its SETTINGS, within ``connect_timeout``: one
        that hangs (a server that accepts and says nothing) must not stay the channel's
        attempt for good, which every later call would wait on."""
        loop = asyncio.get_running_loop()
        conn: Connection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(self),
                    self.host,
                    self.port,
                    ssl=None if self.tls is None else self.tls.fresh(),
                )
                await conn.ready
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, TimeoutError):
                raise ConnectionError(
                    f"no HTTP/2 SETTINGS from the server in {self.connect_timeout:g}s"
                ) from None
            raise
        self._conn = conn
        self._all.add(conn)
        return conn

    def forget(self, conn: Connection) -> None:
        """``conn`` takes no new calls: the next call opens another connection."""
        if self._conn is conn:
            self._conn = None
        if conn.closed:
            self._all.discard(conn)

    async def unary(
        self,
        path: str,
        body: bytes,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        wait_for_ready: bool = False,
    ) -> bytes:
        """Call ``path`` (``/package.Service/Method``) with a serialised request; the
        serialised answer, or :class:`RpcError`. ``timeout`` bounds the whole call,
        connecting included. ``wait_for_ready`` keeps trying to connect until the timeout
        instead of failing at the first refusal."""
        if len(body) > self.max_message_size:
            raise RpcError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the request of {len(body)} bytes is larger than the limit of "
                f"{self.max_message_size} bytes",
            )
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        hop = HOP_HEADERS.get()  # a node call's trace context, when tracing is on
        if hop:
            metadata = (*metadata, *hop)
        if self.auth is not None:
            metadata = (*metadata, ("authorization", self.auth.authorization()))
        retries = 0
        while True:
            conn = await self._connection(deadline, wait_for_ready)
            try:
                return await conn.call(path, body, deadline, metadata)
            except Unprocessed:
                retries += 1
                if retries > TRANSPARENT_RETRIES:
                    raise
            await asyncio.sleep(min(RETRY_S, 0.001 * 2**retries))

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._conn = None
