"""The state of one HTTP/2 stream of the native gRPC server: one call, both directions, and
what its request holds of the receive window we give the peer.

A stream's window is given back as its bytes leave it (a streaming handler takes a
message), not as they arrive: a handler that reads slowly makes its peer wait instead of
making us buffer. The one exception is the message in progress, which may always complete
(a unary request of 20 MiB through a window of 4 MiB): its length is checked against the
receive limit first, so what a stream holds stays under its window or one message.
"""

from __future__ import annotations

import asyncio

import grpc

from infergraph.wire.grpc.call import CallContext
from infergraph.wire.grpc.messages import read_grpc_message
from infergraph.wire.grpc.status import CallAbort
from infergraph.wire.http2.stream import H2Stream

__all__ = ["STREAM_WINDOW", "Stream"]

STREAM_WINDOW = 4 << 20
"""Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE)."""


class Stream(H2Stream):
    """A call's stream; the windows, ends and send queue are :class:`H2Stream`'s."""

    __slots__ = (
        "context",
        "data",
        "drained",
        "handler",
        "headers",
        "messages",
        "need",
        "reset",
        "size",
        "task",
        "timeout",
        "unread",
    )

    def __init__(self, stream_id: int, send_window: int) -> None:
        super().__init__(stream_id, send_window, STREAM_WINDOW)
        self.headers: list[tuple[bytes, bytes]] = []
        self.handler: grpc.RpcMethodHandler | None = None
        self.data: list[bytes | memoryview] = []
        """The request's bytes not yet handed on (a streaming request's message in progress)."""
        self.size = 0
        """Their length."""
        self.need = 0
        """The length of the message in progress, prefix included, once its prefix came."""
        self.unread = 0
        """Bytes of whole messages waiting for a streaming handler to take them."""
        self.reset = False
        """The peer reset the stream, or the connection was lost."""
        self.drained: asyncio.Event | None = None
        """Set when what waited in the send queue is written (a streaming answer waits)."""
        self.task: asyncio.Task[None] | None = None
        self.messages: asyncio.Queue[bytes | None] | None = None
        """A streaming request's messages as they arrive (None ends them)."""
        self.context: CallContext | None = None
        self.timeout: float | None = None
        """Seconds the client gives the call (``grpc-timeout``), if it says."""

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    # ---------------------------------------------------------------- the request's bytes

    def credit(self, limit: int) -> int:
        """The window to give back now (:meth:`H2Connection.grant`), 0 for none: what the
        stream holds counts against :data:`STREAM_WINDOW`, but the message in progress may
        complete. Less than half a window waits for more, unless the message needs it.
        Raises CallAbort when the message in progress is longer than ``limit``."""
        if not self.need and self.size >= 5:
            self._read_prefix(limit)
        rest = self.need - self.size
        target = STREAM_WINDOW - self.size - self.unread
        if rest > target:
            target = rest
        grant = target - self.recv_window
        if grant >= STREAM_WINDOW // 2 or (grant > 0 and rest > self.recv_window):
            return grant
        return 0

    def whole_messages(self, limit: int) -> list[bytes]:
        """The messages of a streaming request its bytes now complete, each with its
        prefix (they count as ``unread`` until :meth:`took`); CallAbort for one longer than
        ``limit``. Joins the bytes only once a message is whole."""
        if self.size < max(self.need, 5):
            return []
        data = b"".join(self.data)
        out: list[bytes] = []
        pos, end = 0, len(data)
        self.need = 0
        while (prefix := read_grpc_message(data, pos)) is not None:
            if prefix[1] > limit:
                raise _too_large(prefix[1], limit)
            if end - pos - 5 < prefix[1]:
                self.need = 5 + prefix[1]
                break
            out.append(data[pos : pos + 5 + prefix[1]])
            pos += 5 + prefix[1]
        self.data = [data[pos:]] if pos < end else []
        self.size = end - pos
        self.unread += pos
        return out

    def took(self, message: bytes) -> None:
        """The handler took ``message``: its bytes leave the window."""
        self.unread -= len(message)

    def _read_prefix(self, limit: int) -> None:
        first = self.data[0]
        head = first if len(first) >= 5 else b"".join(self.data)
        prefix = read_grpc_message(head, 0)
        assert prefix is not None
        if prefix[1] > limit:
            raise _too_large(prefix[1], limit)
        self.need = 5 + prefix[1]


def _too_large(length: int, limit: int) -> CallAbort:
    return CallAbort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"Received message larger than max ({length} vs. {limit})",
    )
