"""The sending half of a native gRPC connection: the peer's flow-control windows and frame
size, whether the socket takes more, and the answer bytes held for a peer that takes them
slowly or not at all.

Answers go out as DATA frames cut from the answer's own bytes (views, never copies), as
the peer's windows open. What waits counts against ``max_pending_send``: a connection
that already holds answers for its peer refuses one that would take it past the limit
(the call fails with RESOURCE_EXHAUSTED), so a client that opens a hundred calls and never
opens its window costs a bounded amount of memory, not a hundred answers.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterable

from infergraph.transport.grpc_h2_flood import FloodGuard
from infergraph.transport.grpc_h2_stream import Stream
from infergraph.wire import http2
from infergraph.wire.trips import trip

__all__ = ["Outbound", "message_prefix"]

_PREFIX = struct.Struct(">BI")


def message_prefix(length: int) -> bytes:
    """The 5-byte prefix of an uncompressed gRPC message of ``length`` bytes."""
    return _PREFIX.pack(0, length)


class Outbound:
    __slots__ = (
        "blocked",
        "frame_size",
        "guard",
        "held",
        "initial_window",
        "max_held",
        "paused",
        "window",
        "writable",
        "write_parts",
    )

    def __init__(self, write_parts: Callable[..., None], guard: FloodGuard, max_held: int) -> None:
        self.write_parts = write_parts
        """Writes its arguments (bytes or views) to the socket, in order."""
        self.guard = guard
        self.frame_size = http2.DEFAULT_FRAME_SIZE
        """The peer's SETTINGS_MAX_FRAME_SIZE."""
        self.initial_window = http2.DEFAULT_WINDOW
        """The peer's SETTINGS_INITIAL_WINDOW_SIZE: a new stream's send window."""
        self.window = http2.DEFAULT_WINDOW
        """The connection's send window."""
        self.paused = False
        """The socket's buffer is past its high-water mark."""
        self.writable = asyncio.Event()
        self.writable.set()
        self.blocked: set[Stream] = set()
        """Streams waiting for a window to open."""
        self.held = 0
        """Bytes of answers taken (:meth:`admit`) and not yet written."""
        self.max_held = max_held

    # ---------------------------------------------------------------- the peer's settings

    def initial_window_changed(self, value: int, streams: Iterable[Stream]) -> None:
        if value > http2.MAX_WINDOW:
            raise http2.ProtocolError("initial window too large", http2.FLOW_CONTROL_ERROR)
        delta, self.initial_window = value - self.initial_window, value
        for stream in streams:
            stream.send_window += delta
            if stream.send_window > http2.MAX_WINDOW:
                raise http2.ProtocolError(
                    f"stream {stream.id}'s window past 2^31-1", http2.FLOW_CONTROL_ERROR
                )
            _open(stream)

    def frame_size_changed(self, value: int) -> None:
        if not http2.DEFAULT_FRAME_SIZE <= value <= 2**24 - 1:
            raise http2.ProtocolError("bad MAX_FRAME_SIZE")
        self.frame_size = value

    def connection_window(self, increment: int) -> None:
        if not increment:
            raise http2.ProtocolError("WINDOW_UPDATE of 0")
        self.window += increment
        if self.window > http2.MAX_WINDOW:
            raise http2.ProtocolError("connection window overflow", http2.FLOW_CONTROL_ERROR)
        for stream in list(self.blocked):
            _open(stream)

    def stream_window(self, stream: Stream, increment: int) -> int:
        """0, or the error code of the RST_STREAM the update calls for (RFC 9113 §6.9)."""
        if not increment:
            return http2.PROTOCOL_ERROR
        stream.send_window += increment
        if stream.send_window > http2.MAX_WINDOW:
            return http2.FLOW_CONTROL_ERROR
        _open(stream)
        return 0

    def pause(self) -> None:
        self.paused = True
        self.writable.clear()

    def resume(self) -> None:
        self.paused = False
        self.writable.set()

    # ---------------------------------------------------------------- answers

    def admit(self, size: int) -> bool:
        """Take an answer of ``size`` bytes to send as the peer allows, unless other answers
        wait and it would take their bytes past ``max_pending_send`` (counted as a trip)."""
        if self.held and self.held + size > self.max_held:
            trip("http2.max_pending_send")
            return False
        self.held += size
        return True

    def refusal(self) -> str:
        return (
            f"the client takes its answers too slowly: {self.held} bytes of them wait on "
            f"this connection (the limit is {self.max_held}, INFERGRAPH_HTTP2_MAX_PENDING_SEND)"
        )

    async def send(self, stream: Stream, body: bytes | memoryview) -> bool:
        """Write ``body`` as one gRPC message (taken by :meth:`admit` before) in DATA
        frames as the peer's windows allow; False if the stream ended first."""
        head = message_prefix(len(body))
        view = memoryview(body)
        left = 5 + len(view)
        try:
            while left:
                if stream.closed:
                    return False
                room = min(stream.send_window, self.window, self.frame_size, left)
                if room <= 0:
                    await self._window_opens(stream)
                    continue
                if self.paused:
                    await self.writable.wait()
                    continue
                stream.send_window -= room
                self.window -= room
                header = http2.frame_header(http2.DATA, 0, stream.id, room)
                if not head:
                    self.write_parts(header, view[:room])
                    view = view[room:]
                elif room < 5:
                    self.write_parts(header, head[:room])
                    head = head[room:]
                else:
                    cut = room - len(head)
                    self.write_parts(header, head, view[:cut])
                    head, view = b"", view[cut:]
                left -= room
                self.held -= room
                self.guard.useful()
        finally:
            self.held -= left
        return True

    async def _window_opens(self, stream: Stream) -> None:
        event = stream.window_open = stream.window_open or asyncio.Event()
        event.clear()
        self.blocked.add(stream)
        try:
            await event.wait()
        finally:
            self.blocked.discard(stream)


def _open(stream: Stream) -> None:
    if stream.window_open is not None:
        stream.window_open.set()
