"""One HTTP/2 connection of :class:`~infergraph.wire.grpc.client.GrpcChannel`: unary calls
out as HEADERS and DATA frames, answers in from the frames the server sends (read by
:class:`~infergraph.wire.http2.FrameReader`), statuses and resets as :class:`RpcError`.

A connection takes calls once the server's SETTINGS came, honours its windows, frame size
and stream limit, and marks what the server did not process (:class:`Unprocessed`) so
that the channel may send it again. What the server sends is held to HTTP/2's bounds and
to the limits we advertised (:mod:`~infergraph.wire.grpc.flow`); a server that breaks
them ends the connection, and its calls fail with UNAVAILABLE saying what it broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

from infergraph.wire import http2
from infergraph.wire.grpc import flow
from infergraph.wire.grpc.messages import decode_grpc_message, grpc_message, read_grpc_message
from infergraph.wire.grpc.status import TRANSPORT_GRPC_BY_HTTP2_ERROR, transport_grpc_status

if TYPE_CHECKING:
    from infergraph.wire.grpc.client import GrpcChannel

__all__ = ["Connection", "RpcError", "Unprocessed", "retrieve"]

STREAM_WINDOW = 4 << 20
CONNECTION_WINDOW = 64 << 20
LAST_STREAM_ID = 2**31 - 1

_CODES = {code.value[0]: code for code in grpc.StatusCode}


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


class _Call:
    __slots__ = (
        "answer",
        "credit",
        "data",
        "headers",
        "id",
        "send_window",
        "size",
        "window_open",
    )

    def __init__(self, stream_id: int, window: int) -> None:
        self.id = stream_id
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.data: list[bytes | memoryview] = []
        self.size = 0
        self.credit = 0
        """DATA bytes received and not yet given back to the server's stream window."""
        self.send_window = window
        self.window_open: asyncio.Event | None = None

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
        if self.window_open is not None:
            self.window_open.set()


def _status(headers: list[tuple[bytes, bytes]]) -> tuple[grpc.StatusCode, str] | None:
    """The call's status from trailers (or trailers-only headers), None if it has none."""
    code = message = None
    for name, value in headers:
        if name == b"grpc-status":
            code = value
        elif name == b"grpc-message":
            message = value
    if code is None:
        return None
    status = _CODES.get(int(code)) if code.isdigit() else None
    details = decode_grpc_message(message) if message else ""
    if status is None:
        return grpc.StatusCode.UNKNOWN, f"grpc-status {code!r}: {details}"
    return status, details


def _grpc_timeout(seconds: float) -> bytes:
    """``grpc-timeout``: at most eight digits (gRPC's spec; grpc-go rejects more), so a
    timeout of a day or more goes in seconds, minutes or hours."""
    value = max(1, int(seconds * 1000))
    if value < 10**8:
        return b"%dm" % value
    for unit, size in ((b"S", 1), (b"M", 60), (b"H", 3600)):
        value = int(seconds / size)
        if value < 10**8:
            return b"%d%s" % (value, unit)
    return b"99999999H"


def _http_status(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b":status":
            return int(value) if value.isdigit() else 0
    return 0


class Connection(http2.FrameReader, asyncio.Protocol):
    stream_window = STREAM_WINDOW
    """The receive window each call's stream is granted (SETTINGS_INITIAL_WINDOW_SIZE)."""
    connection_window = CONNECTION_WINDOW
    """The receive window of the connection, all streams together."""

    def __init__(self, channel: GrpcChannel) -> None:
        self.channel = channel
        self.transport: asyncio.Transport | None = None
        self.header_limit = channel.limits.max_header_list_size
        self.decoder = http2.HeaderDecoder(self.header_limit)
        self.calls: dict[int, _Call] = {}
        self.next_id = 1
        self._start_reading(preface=False)
        self.peer_window = http2.DEFAULT_WINDOW
        self.peer_frame_size = http2.DEFAULT_FRAME_SIZE
        self.max_streams = 2**31
        self.send_window = http2.DEFAULT_WINDOW
        self.unacked = 0
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
        self.writable = asyncio.Event()
        self.writable.set()

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        settings = {
            http2.ENABLE_PUSH: 0,
            http2.INITIAL_WINDOW_SIZE: self.stream_window,
            http2.MAX_FRAME_SIZE: self.frame_limit,
            http2.MAX_HEADER_LIST_SIZE: self.header_limit,
        }
        opening = http2.PREFACE + http2.frame(
            http2.SETTINGS, 0, 0, http2.settings_payload(settings)
        )
        if self.connection_window > http2.DEFAULT_WINDOW:
            opening += http2.window_update(0, self.connection_window - http2.DEFAULT_WINDOW)
        self.transport.write(opening)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"the connection to {self.channel.address} was lost")

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            self.read(data)
        except http2.ProtocolError as exc:
            flow.counted(exc)
            self._fail(exc.code, f"the server at {self.channel.address} broke HTTP/2: {exc}")

    # ---------------------------------------------------------------- frames in

    def _reading(self) -> bool:
        return not self.closed

    def _on_reset(self, stream_id: int, code: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is None:
            return
        if code == http2.REFUSED_STREAM:  # RFC 9113 §8.7: not processed, safe to send again
            call.fail(grpc.StatusCode.UNAVAILABLE, "the server refused the call", True)
        else:
            status = TRANSPORT_GRPC_BY_HTTP2_ERROR.get(code, grpc.StatusCode.INTERNAL)
            call.fail(status, f"the server reset the call (HTTP/2 error {code})", transport=True)
        self._freed()

    def _on_settings(self, flags: int, payload: bytes) -> None:
        if flags & http2.ACK:
            if payload:
                raise http2.ProtocolError("SETTINGS ACK with a payload", http2.FRAME_SIZE_ERROR)
            return
        for key, value in flow.check_settings(http2.parse_settings(payload)).items():
            if key == http2.INITIAL_WINDOW_SIZE:
                delta, self.peer_window = value - self.peer_window, value
                for call in self.calls.values():
                    call.send_window = flow.shifted(call.send_window, delta, call.id)
                    if call.window_open is not None:
                        call.window_open.set()
            elif key == http2.MAX_FRAME_SIZE:
                self.peer_frame_size = value
            elif key == http2.MAX_CONCURRENT_STREAMS:
                self.max_streams = value
                self._freed()
        self._write(http2.frame(http2.SETTINGS, http2.ACK, 0))
        if not self.ready.done():
            self.ready.set_result(None)

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        if not stream_id:
            self.send_window = flow.grown(self.send_window, increment, 0)
            waiting = list(self.calls.values())
        elif (call := self.calls.get(stream_id)) is not None:
            call.send_window = flow.grown(call.send_window, increment, stream_id)
            waiting = [call]
        else:  # a stream that ended: no window to keep, but 0 is wrong on any stream
            flow.grown(0, increment, stream_id)
            return
        for each in waiting:
            if each.window_open is not None:
                each.window_open.set()

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        flow.check_stream(stream_id, self.next_id, "HEADERS")
        flow.check_header_block(block, self.header_limit)
        headers = self.decoder.decode(block)  # always: the dynamic table must keep in step
        call = self.calls.get(stream_id)
        if call is None:
            return
        if call.headers is None:
            call.headers = headers
            status = _http_status(headers)
            if status != 200 and (_status(headers) is None or not flags & http2.END_STREAM):
                code = transport_grpc_status(status)
                self._end(call, code, f"the server answered HTTP {status}, not gRPC", True)
                return
        if flags & http2.END_STREAM:
            self._trailers(call, headers)

    def _trailers(self, call: _Call, headers: list[tuple[bytes, bytes]]) -> None:
        status = _status(headers)
        if status is None:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer ended without a grpc-status")
        elif status[0] is not grpc.StatusCode.OK:
            self._end(call, *status)
        else:
            self._deliver(call)

    def _on_data(self, stream_id: int, flags: int, payload: bytes | memoryview, size: int) -> None:
        length = size
        flow.check_stream(stream_id, self.next_id, "DATA")
        flow.check_received(self.unacked, length, self.connection_window, "on the connection")
        self.unacked += length
        if self.unacked >= self.connection_window // 2:
            self._write(http2.window_update(0, self.unacked))
            self.unacked = 0
        call = self.calls.get(stream_id)
        if call is None:
            return
        flow.check_received(call.credit, length, self.stream_window, f"on stream {stream_id}")
        call.size += len(payload)
        if call.size > self.channel.max_message_size + 5:
            limit = self.channel.max_message_size
            self._write(http2.rst_stream(stream_id, http2.CANCEL))
            self._end(
                call,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the answer is larger than the limit of {limit} bytes",
            )
            return
        call.data.append(payload)
        if flags & http2.END_STREAM:  # no trailers: not a gRPC answer
            self._end(call, grpc.StatusCode.INTERNAL, "the answer ended without trailers")
            return
        # the stream's window back once a quarter of it was used, whatever the frames'
        # sizes: grpcio sends an answer in frames of some KiB, and counting only large
        # frames left its answers over the stream window stalled for good
        call.credit += length
        if call.credit >= self.stream_window // 4:
            self._write(http2.window_update(stream_id, call.credit))
            call.credit = 0

    def _deliver(self, call: _Call) -> None:
        data = call.data[0] if len(call.data) == 1 else b"".join(call.data)
        prefix = read_grpc_message(data, 0)
        if prefix is None or len(data) != 5 + prefix[1]:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer is not one gRPC message")
        elif prefix[0]:
            self._end(call, grpc.StatusCode.INTERNAL, "the answer is compressed")
        else:
            self.calls.pop(call.id, None)
            if not call.answer.done():
                call.answer.set_result(bytes(data[5:]))
            self._freed()

    def _end(
        self, call: _Call, code: grpc.StatusCode, details: str, transport: bool = False
    ) -> None:
        self.calls.pop(call.id, None)
        call.fail(code, details, transport=transport)
        self._freed()

    def _on_goaway(self, last: int, code: int) -> None:
        self.draining = True
        self.channel.forget(self)
        for stream_id in [i for i in self.calls if i > last]:
            self.calls.pop(stream_id).fail(
                grpc.StatusCode.UNAVAILABLE,
                "the server is going away and did not take the call",
                unprocessed=True,
            )
        self._freed()

    # ---------------------------------------------------------------- calls

    def _freed(self) -> None:
        if len(self.calls) < self.max_streams or self.draining:
            self.room.set()  # a draining connection sends its queued calls elsewhere
        if self.draining and not self.calls and self.transport is not None:
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
            headers.append((b"grpc-timeout", _grpc_timeout(remaining)))
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in metadata)
        return http2.encode_headers(headers)

    async def _call(
        self,
        path: str,
        body: bytes,
        deadline: float | None,
        metadata: Sequence[tuple[str, str]],
    ) -> bytes:
        while len(self.calls) >= self.max_streams and not self.draining:
            self.room.clear()
            await self.room.wait()
        if self.closed:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, self.reason)
        if self.draining:
            raise Unprocessed(grpc.StatusCode.UNAVAILABLE, "the connection is closing")
        # encoded before the call is registered: a header that cannot be encoded must not
        # leave a call behind, holding a stream and failing unseen when the connection ends
        block = self._request_headers(path, deadline, metadata)
        stream_id = self.next_id
        self.next_id += 2
        if self.next_id > LAST_STREAM_ID:
            self.draining = True
            self.channel.forget(self)
        call = _Call(stream_id, self.peer_window)
        self.calls[stream_id] = call
        head = http2.frame(http2.HEADERS, http2.END_HEADERS, stream_id, block)
        message = grpc_message(body)
        try:
            size = len(message)
            if size <= min(self.peer_frame_size, call.send_window, self.send_window):
                call.send_window -= size
                self.send_window -= size
                self._write(
                    head
                    + http2.frame_header(http2.DATA, http2.END_STREAM, stream_id, size)
                    + message
                )
            else:
                self._write(head)
                await self._send(call, message)
            return await call.answer
        except asyncio.CancelledError:  # the caller's, or the deadline's
            if self.calls.pop(stream_id, None) is not None:
                self._write(http2.rst_stream(stream_id, http2.CANCEL))
                self._freed()
            raise

    async def _send(self, call: _Call, message: bytes) -> None:
        view = memoryview(message)
        while view:
            if call.answer.done() or self.closed:
                return
            room = min(call.send_window, self.send_window, self.peer_frame_size, len(view))
            if room <= 0:
                call.window_open = call.window_open or asyncio.Event()
                call.window_open.clear()
                await call.window_open.wait()
                continue
            chunk, view = view[:room], view[room:]
            call.send_window -= room
            self.send_window -= room
            flags = 0 if view else http2.END_STREAM
            self._write(http2.frame_header(http2.DATA, flags, call.id, room) + bytes(chunk))
            if not self.writable.is_set():
                await self.writable.wait()

    # ---------------------------------------------------------------- ending

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

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
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.fail(grpc.StatusCode.UNAVAILABLE, reason)
        self.room.set()
        self.writable.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._close("the channel was closed")
