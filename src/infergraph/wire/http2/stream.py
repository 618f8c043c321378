"""What the HTTP/2 connection state machine (:mod:`.connection`) keeps of one stream: both
flow-control windows, which sides have ended, and the bytes waiting for the peer's window.

Server and client streams subclass it with what their calls need (``__slots__`` of their
own): one object per stream, not two, on a path where each allocation shows.
"""

from __future__ import annotations

__all__ = ["H2Stream"]


class H2Stream:
    __slots__ = (
        "closed",
        "ending",
        "id",
        "queue",
        "queued",
        "received",
        "recv_window",
        "send_window",
        "tail",
        "unacked",
        "waited",
    )

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        self.id = stream_id
        self.send_window = send_window
        """What we may still send: the peer's window, less what we sent."""
        self.recv_window = recv_window
        """What the peer may still send: the window we granted, less what came."""
        self.unacked = 0
        """Bytes taken (:meth:`H2Connection.consumed`) and not yet granted back."""
        self.received = False
        """The peer ended its side (END_STREAM)."""
        self.ending = False
        """Our end is queued: nothing more may be sent on the stream."""
        self.closed = False
        """Our end was written (END_STREAM), or the stream was reset."""
        self.queue: list[bytes | memoryview] = []
        """DATA bytes waiting for the peer's windows or for the socket."""
        self.queued = 0
        """Their length."""
        self.tail: bytes | None = None
        """The trailers' header block, written once the queue is empty."""
        self.waited = False
        """The queue had to wait: the connection tells when it is empty again."""
