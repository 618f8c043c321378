"""One HTTP/2 connection of :class:`~infergraph.wire.grpc.client.GrpcChannel`: the asyncio
protocol over the HTTP/2 state machine the server shares
(:class:`~infergraph.wire.http2.H2Connection`). Unary calls go out as HEADERS and DATA
frames, answers come in from the server's frames, statuses and resets become
:class:`RpcError`.

A connection takes calls once the server's SETTINGS came; the state machine honours the
server's windows, frame size and stream limit, and holds what the server sends to HTTP/2's
bounds and to the limits we advertised. A server that breaks them ends the connection, and
its calls fail with UNAVAILABLE saying what it broke: the node failed, the graph's caller
did nothing wrong. What the server did not process is marked (:class:`Unprocessed`) so
that the channel may send it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

from infergraph.wire import http2
from infergraph.wire.grpc.headers import encode_timeout, read_status
from infergraph.wire.grpc.messages import message_prefix, read_grpc_message
from infergraph.wire.grpc.status import TRANSPORT_GRPC_BY_HTTP2_ERROR, transport_grpc_status

if TYPE_CHECKING:
    from infergraph.wire.grpc.client import GrpcChannel

__all__ = ["Connection", "RpcError", "Unprocessed", "retrieve"]

STREAM_WINDOW = 4 << 20
CONNECTION_WINDOW = 64 << 20


class RpcError(Exception):
    """A call that did not end OK, with grpc's ``code()`` and ``details()``.

    ``transport``: the code is this client's reading of what the transport did (an HTTP
    status without ``grpc-status``, a reset stream; ``infergraph.status``'s transport
    tables), not a status the server's gRPC application chose.
    """

    def __init__(self, code: grpc.StatusCode, details: str, *, transport: bool = False) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details
        self.transport = transport

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Unprocessed(RpcError):
    """UNAVAILABLE for a call the server did not process: the channel sends it again."""


def retrieve(future: asyncio.Future[Any]) -> None:
    """A done callback: the future's exception counts as seen (nobody may await it)."""
    if not future.cancelled():
        future.exception()


class _Call(http2.H2Stream):
    __slots__ = ("answer", "data", "headers", "size")

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        super().__init__(stream_id, send_window, recv_window)
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.data: list[bytes | memoryview] = []
        self.size = 0

    def fail(
        self,
        code: grpc.StatusCode,
        details: str,
        unprocessed: bool = False,
        transport: bool = False,
    ) -> None:
        if not self.answer.done():
            kind = Unprocessed if unprocessed else RpcError
            self.answer.set_exception(kind(code, details, transport=transport))


def _http_status(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b":status":
            return int(value) if value.isdigit() else 0
    return 0


class Connection(http2.H2Connection, asyncio.Protocol):
    """The asyncio protocol over the shared HTTP/2 state machine, a client's."""

    stream_window = STREAM_WINDOW
    connection_window = CONNECTION_WINDOW

    def __init__(self, channel: GrpcChannel) -> None:
        self.channel = channel
        self.transport: asyncio.Transport | None = None
        self._start(client=True, limits=channel.limits)
        self.draining = False
        """GOAWAY came (or the ids ran out): no new calls on this connection."""
        self.closed = False
        self.reason = ""
        """Why the connection closed: the details of the calls it fails."""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done when the server's first SETTINGS came: its limits are known, calls may go.
        Fails (ConnectionError) when the connection ends before."""
        self.ready.add_done_callback(retrieve)
        self.room = asyncio.Event()
        self.room.set()

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.initiate({})

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"the connection to {self.channel.address} was lost")

    def pause_writing(self) -> None:
        self.pause_sending()

    def resume_writing(self) -> None:
        self.resume_sending()

    def data_received(self, data: bytes) -> None:
        try:
            self.read(data)
        except http2.ProtocolError as exc:
            http2.counted(exc)
            self._fail(exc.code, f"the server at {self.channel.address} broke HTTP/2: {exc}")

    def _reading(self) -> bool:
        return not self.closed

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _write_parts(self, parts: list[bytes | memoryview]) -> None:
        if self.transport is not None and not self.closed:
            self.transport.writelines(parts)

    # ---------------------------------------------------------------- the state machine's events

    def _on_peer_settings(self) -> None:
        self._freed()  # SETTINGS_MAX_CONCURRENT_STREAMS may have grown
        if not self.ready.done():
            self.ready.set_result(None)

    def _on_stream_reset(self, stream: http2.H2Stream, code: int, remote: bool) -> None:
        call = cast(_Call, stream)
        if code == http2.REFUSED_STREAM:  # RFC 9113 §8.7: not processed, safe to send again
            call.fail(grpc.StatusCode.UNAVAILABLE, "the server refused the call", True)
        else:
            status = TRANSPORT_GRPC_BY_HTTP2_ERROR.get(code, grpc.StatusCode.INTERNAL)
            call.fail(status, f"the server reset the call (HTTP/2 error {code})", transport=True)

    def _on_stream_closed(self, stream: http2.H2Stream) -> None:
        self._freed()

    def _on_stream_headers(
        self, stream: http2.H2Stream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None:
        call = cast(_Call, stream)
        if call.headers is None:
            call.headers = headers
            status = _http_status(headers)
            if status != 200 and (read_status(headers) is None or not end):
                code = transport_grpc_status(status)
                self._end(call, code, f"the server answered HTTP {status}, not gRPC", True)
                return
        if end:
            self._trailers(call, headers)

    def _trailers(self, call: _Call, headers: list[tuple[bytes, bytes]]) -> None:
        status = read_status(headers)
        if status is None:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer ended without a grpc-status")
        elif status[0] is not grpc.StatusCode.OK:
            self._end(call, *status)
        else:
            self._deliver(call)

    def _on_stream_data(
        self, stream: http2.H2Stream, payload: bytes | memoryview, size: int, end: bool
    ) -> None:
        call = cast(_Call, stream)
        if call.answer.done():
            return
        call.size += len(payload)
        if call.size > self.channel.max_message_size + 5:
            limit = self.channel.max_message_size
            self._end(
                call,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the answer is larger than the limit of {limit} bytes",
            )
            return
        call.data.append(payload)
        if end:  # no trailers: not a gRPC answer
            self._end(call, grpc.StatusCode.INTERNAL, "the answer ended without trailers")
            return
        self.consumed(call, size)

    def _deliver(self, call: _Call) -> None:
        data = call.data[0] if len(call.data) == 1 else b"".join(call.data)
        prefix = read_grpc_message(data, 0)
        if prefix is None or len(data) != 5 + prefix[1]:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer is not one gRPC message")
        elif prefix[0]:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer is compressed")
        else:
            if not call.answer.done():
                call.answer.set_result(bytes(data[5:]))
            self._done(call)

    def _end(
        self, call: _Call, code: grpc.StatusCode, details: str, transport: bool = False
    ) -> None:
        call.fail(code, details, transport=transport)
        self._done(call)

    def _done(self, call: _Call) -> None:
        """The call has its outcome: a stream still open on either side is reset."""
        call.data = []
        if not (call.received and call.closed):
            self.reset(call, http2.CANCEL)
            self._freed()

    def _on_peer_goaway(self, last_stream: int, code: int) -> None:
        self.draining = True
        self.channel.forget(self)
        for call in [c for i, c in self.streams.items() if i > last_stream]:
            cast(_Call, call).fail(
                grpc.StatusCode.UNAVAILABLE,
                "the server is going away and did not take the call",
                unprocessed=True,
            )
            self.reset(call, http2.CANCEL)
        self._freed()

    # ---------------------------------------------------------------- calls

    def _freed(self) -> None:
        if len(self.streams) < self.peer_max_streams or self.draining:
            self.room.set()  # a draining connection sends its queued calls elsewhere
        if self.draining and not self.streams and self.transport is not None:
            self.transport.close()

    async def call(
        self,
        path: str,
        body: bytes,
        deadline: float | None,
        metadata: Sequence[tuple[str, str]],
    ) -> bytes:
        """One call; ``deadline`` (the loop's clock) bounds all of it, the wait for a
        stream and the sending under flow control as well as the answer."""
        if deadline is None:
            return await self._call(path, body, None, metadata)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._call(path, body, deadline, metadata)
        except TimeoutError:
            raise RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def _request_headers(
        self, path: str, deadline: float | None, metadata: Sequence[tuple[str, str]]
    ) -> bytes:
        headers = [
            (b":method", b"POST"),
            (b":scheme", self.channel.scheme),
            (b":path", path.encode()),
            (b":authority", self.channel.authority),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"grpc-accept-encoding", b"identity"),
        ]
        if deadline is not None:
            remaining = deadline - asyncio.get_running_loop().time()
            headers.append((b"grpc-timeout", encode_timeout(remaining)))
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in metadata)
        return http2.encode_headers(headers)

    async def _call(
        self,
        path: str,
        body: bytes,
        deadline: float | None,
        metadata: Sequence[tuple[str, str]],
    ) -> bytes:
        while len(self.streams) >= self.peer_max_streams and not self.draining:
            self.room.clear()
            await self.room.wait()
        if self.closed:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, self.reason)
        if self.draining:
            raise Unprocessed(grpc.StatusCode.UNAVAILABLE, "the connection is closing")
        # encoded before the call is registered: a header that cannot be encoded must not
        # leave a call behind, holding a stream and failing unseen when the connection ends
        block = self._request_headers(path, deadline, metadata)
        call = _Call(self.take_stream_id(), self.peer_initial_window, self.stream_window)
        if self.next_id > http2.LAST_STREAM_ID:
            self.draining = True
            self.channel.forget(self)
        self.open_stream(call)
        try:
            self.send(call, block, (message_prefix(len(body)), body), end=True)
            return await call.answer
        except asyncio.CancelledError:  # the caller's, or the deadline's
            if call.id in self.streams:
                self.reset(call, http2.CANCEL)
                self._freed()
            raise

    # ---------------------------------------------------------------- ending

    def _fail(self, code: int, reason: str) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(http2.goaway(0, code))
            self.transport.close()
        self._close(reason)

    def _close(self, reason: str) -> None:
        if not self.closed:
            self.reason = reason
        self.closed = self.draining = True
        self.channel.forget(self)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        for call in self.drop_streams():
            cast(_Call, call).fail(grpc.StatusCode.UNAVAILABLE, reason)
        self.room.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._close("the channel was closed")
