"""The sending half of the HTTP/2 state machine (:class:`~.connection.H2Connection`): a
queue per stream that writes DATA as the peer's windows and the socket allow, cut to the
peer's frame size from the caller's own bytes (views, never copies), and the end of the
stream (trailers, or END_STREAM) once the queue is empty.

What the windows take goes out at once, headers, DATA and trailers in one write: the
common case of a small unary answer costs one call and one write. The rest waits, counted
in ``held`` (the connection's owner bounds it: a gRPC server refuses an answer past
``max_pending_send``), and goes as WINDOW_UPDATE, SETTINGS or the socket's
``resume_writing`` make room.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from infergraph.wire.http2.flood import FloodGuard
from infergraph.wire.http2.frames import DATA, END_STREAM, frame, frame_header, headers_frames
from infergraph.wire.http2.stream import H2Stream

__all__ = ["SendQueue"]


class SendQueue:
    """Mixed into :class:`~.connection.H2Connection`, whose state it shares."""

    streams: dict[int, H2Stream]
    waiting: set[H2Stream]
    held: int
    send_paused: bool
    send_window: int
    peer_frame_size: int
    guard: FloodGuard

    if TYPE_CHECKING:  # the connection's

        def _write_parts(self, parts: list[bytes | memoryview]) -> None: ...

        def _local_end(self, stream: H2Stream) -> None: ...

        def _on_stream_drained(self, stream: H2Stream) -> None: ...

    def send(
        self,
        stream: H2Stream,
        headers: bytes | None = None,
        data: Iterable[bytes | memoryview] = (),
        trailers: bytes | None = None,
        end: bool = False,
    ) -> None:
        """Send on ``stream``, in order: a header block, DATA bytes, then (``trailers``, or
        ``end`` alone) the end of our side. What the peer's windows take goes out at once,
        in one write; the rest waits in the stream's queue (:meth:`_drain`)."""
        if stream.ending or stream.closed:
            return
        parts: list[bytes | memoryview] = []
        end = end or trailers is not None
        queue = stream.queue
        for part in data:
            if part:
                queue.append(part)
                stream.queued += len(part)
                self.held += len(part)
        if headers is not None:
            only = end and not queue and trailers is None
            parts.append(headers_frames(stream.id, headers, only, self.peer_frame_size))
            if only:
                stream.ending = True
                self._write_parts(parts)
                self._local_end(stream)
                return
        stream.tail = trailers
        stream.ending = end
        self._drain(stream, parts)

    def _drain(self, stream: H2Stream, parts: list[bytes | memoryview]) -> None:
        """Add to ``parts`` the DATA frames the windows take from ``stream``'s queue, and its
        end once the queue is empty; write them."""
        queue = stream.queue
        sent_end = False
        while queue:
            room = min(stream.send_window, self.send_window, self.peer_frame_size)
            if room <= 0 or self.send_paused:
                stream.waited = True
                self.waiting.add(stream)
                break
            taken = 0
            at = len(parts)
            parts.append(b"")  # the frame's header, once its length is known
            while queue and taken < room:
                item = queue[0]
                size = len(item)
                if taken + size <= room:
                    parts.append(item)
                    taken += size
                    del queue[0]
                else:
                    view = item if isinstance(item, memoryview) else memoryview(item)
                    cut = room - taken
                    parts.append(view[:cut])
                    queue[0] = view[cut:]
                    taken = room
            last = not queue and stream.ending and stream.tail is None
            parts[at] = frame_header(DATA, END_STREAM if last else 0, stream.id, taken)
            sent_end = last
            stream.send_window -= taken
            self.send_window -= taken
            stream.queued -= taken
            self.held -= taken
            self.guard.useful()
        ended = False
        if not queue:
            if stream.ending:
                if stream.tail is not None:
                    parts.append(headers_frames(stream.id, stream.tail, True, self.peer_frame_size))
                    stream.tail = None
                elif not sent_end:
                    parts.append(frame(DATA, END_STREAM, stream.id))
                ended = True
            self.waiting.discard(stream)
        if parts:
            self._write_parts(parts)
        if ended:
            self._local_end(stream)
        elif not queue and stream.waited:
            stream.waited = False
            self._on_stream_drained(stream)

    def _drain_waiting(self) -> None:
        for stream in list(self.waiting):
            if self.send_paused:
                return
            if stream.id in self.streams:
                self._drain(stream, [])
            else:
                self.waiting.discard(stream)

    def pause_sending(self) -> None:
        """The socket takes no more for now: queued DATA waits."""
        self.send_paused = True

    def resume_sending(self) -> None:
        self.send_paused = False
        self._drain_waiting()
