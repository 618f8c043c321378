"""One HTTP/2 connection's state, shared by infergraph's gRPC server and its gRPC client:
bytes in (:meth:`H2Connection.read`), events out (the ``_on_stream_*`` hooks) and bytes
out (``_write`` and ``_write_parts``, which the asyncio protocol over it sends). No I/O.

It holds what RFC 9113 asks a connection to keep, for either side: the settings each peer
sent, both flow-control windows of the connection and of each stream, the stream table
(who may open which ids, how many at once, which are idle or closed), and a send queue per
stream that writes DATA as the peer's windows open and the trailers once the data is
out (:mod:`.send_queue`). Everything a peer sends is held to the RFC's bounds and to the
limits we advertised (:class:`~infergraph.wire.limits.Http2Limits`); a breach raises
:class:`~infergraph.wire.http2.frames.ProtocolError` with the code the GOAWAY carries, or,
for a stream's error on a server, resets that stream only. What a peer may make either side
do without asking for its streams' work is budgeted (:mod:`.flood`), and so are the resets
of a server's peer, which opens the streams it resets (rapid reset).

The two sides differ in little: a client sends the preface and opens odd streams, a server
reads the preface and refuses streams past its limit; a server resets a stream whose
window a peer got wrong, a client ends the connection (RFC 9113 §5.4.1 allows both: a node
that gets flow control wrong once is not trusted with the other calls).
"""

from __future__ import annotations

from infergraph.wire.http2.flood import FloodGuard
from infergraph.wire.http2.frames import (
    ACK,
    CANCEL,
    DEFAULT_FRAME_SIZE,
    DEFAULT_WINDOW,
    ENABLE_PUSH,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE,
    MAX_WINDOW,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SETTINGS,
    ProtocolError,
    frame,
    goaway,
    parse_settings,
    rst_stream,
    settings_payload,
    window_update,
)
from infergraph.wire.http2.header_blocks import HeaderDecoder
from infergraph.wire.http2.reader import FrameReader
from infergraph.wire.http2.send_queue import SendQueue
from infergraph.wire.http2.stream import H2Stream
from infergraph.wire.limits import Http2Limits
from infergraph.wire.trips import trip

__all__ = [
    "LARGEST_FRAME_LIMIT",
    "LAST_STREAM_ID",
    "SMALLEST_FRAME_LIMIT",
    "H2Connection",
    "counted",
]

SMALLEST_FRAME_LIMIT = DEFAULT_FRAME_SIZE
LARGEST_FRAME_LIMIT = 2**24 - 1
"""The range RFC 9113 §6.5.2 allows SETTINGS_MAX_FRAME_SIZE."""
LAST_STREAM_ID = 2**31 - 1


def counted(error: ProtocolError) -> ProtocolError:
    """``error``, once counted as a trip of the limit it names, if it names one."""
    if error.limit:
        trip(error.limit)
    return error


class H2Connection(SendQueue, FrameReader):
    """The state machine; the asyncio protocol of each side subclasses it and implements
    ``_write``, ``_write_parts``, ``_reading`` and the ``_on_stream_*`` hooks."""

    stream_window = 4 << 20
    """The receive window each stream is granted (our SETTINGS_INITIAL_WINDOW_SIZE)."""
    connection_window = 64 << 20
    """The receive window of the connection, all streams together."""

    def _start(self, client: bool, limits: Http2Limits, max_streams: int | None = None) -> None:
        """Set up; ``max_streams`` is what a server advertises (a client advertises none)."""
        self._start_reading(preface=not client)
        self.client = client
        self.header_limit = limits.max_header_list_size
        self.continuation_limit = limits.max_continuations
        self.decoder = HeaderDecoder(self.header_limit)
        self.guard = FloodGuard(limits)
        self.streams: dict[int, H2Stream] = {}
        self.max_streams = max_streams
        """The streams a peer may open at once (servers)."""
        self.next_id = 1
        """The id of the next stream we open (clients)."""
        self.last_stream = 0
        """The highest stream id the peer opened (servers)."""
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_frame_size = DEFAULT_FRAME_SIZE
        self.peer_max_streams = LAST_STREAM_ID
        self.send_window = DEFAULT_WINDOW
        """The connection's send window."""
        self.unacked = 0
        """DATA bytes received on the connection and not yet granted back."""
        self.waiting: set[H2Stream] = set()
        """Streams whose queue waits for a window or the socket."""
        self.held = 0
        """Bytes in the streams' queues, all together."""
        self.send_paused = False
        self.goaway_sent = False
        self.goaway_received = False

    # ---------------------------------------------------------------- the adapter's side

    def _write_parts(self, parts: list[bytes | memoryview]) -> None:
        raise NotImplementedError

    def _new_stream(self, stream_id: int) -> H2Stream:
        """The object for a stream the peer opens (a server's subclass)."""
        return H2Stream(stream_id, self.peer_initial_window, self.stream_window)

    def _on_stream_open(self, stream: H2Stream, headers: list[tuple[bytes, bytes]]) -> None:
        """The peer opened ``stream`` (``stream.received`` if its HEADERS ended it)."""

    def _on_stream_headers(
        self, stream: H2Stream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None:
        """A header block on an open stream: an answer's headers, or trailers (``end``)."""

    def _on_stream_data(
        self, stream: H2Stream, payload: bytes | memoryview, size: int, end: bool
    ) -> None:
        """DATA on an open stream, padding removed; ``size`` is the frame's, padding
        included, which the window counted (and :meth:`consumed` gives back)."""

    def _on_stream_reset(self, stream: H2Stream, code: int, remote: bool) -> None:
        """``stream`` ended by RST_STREAM: the peer's (``remote``), or ours for its error."""

    def _on_stream_closed(self, stream: H2Stream) -> None:
        """``stream`` left the table: both sides ended, or it was reset."""

    def _on_stream_drained(self, stream: H2Stream) -> None:
        """What waited in ``stream``'s queue is written."""

    def _on_peer_settings(self) -> None:
        """The peer's SETTINGS came (and were acknowledged)."""

    def _on_peer_goaway(self, last_stream: int, code: int) -> None:
        """The peer sent GOAWAY: it opens no more streams, processes none past ``last_stream``."""

    # ---------------------------------------------------------------- starting, ending

    def initiate(self, local: dict[int, int]) -> None:
        """Write the preface (a client's), our SETTINGS and the connection's window."""
        settings = {ENABLE_PUSH: 0, INITIAL_WINDOW_SIZE: self.stream_window}
        settings[MAX_FRAME_SIZE] = self.frame_limit
        settings[MAX_HEADER_LIST_SIZE] = self.header_limit
        if self.max_streams is not None:
            settings[MAX_CONCURRENT_STREAMS] = self.max_streams
        settings.update(local)
        opening = frame(SETTINGS, 0, 0, settings_payload(settings))
        if self.client:
            opening = PREFACE + opening
        if self.connection_window > DEFAULT_WINDOW:
            opening += window_update(0, self.connection_window - DEFAULT_WINDOW)
        self._write(opening)

    def send_goaway(self, code: int, debug: bytes = b"") -> None:
        """GOAWAY naming the last stream the peer opened; streams it opens after are refused."""
        self.goaway_sent = True
        self._write(goaway(self.last_stream, code, debug[:256]))

    def drop_streams(self) -> list[H2Stream]:
        """The connection ends: every stream leaves the table (no hooks run); the streams."""
        streams = list(self.streams.values())
        self.streams.clear()
        self.waiting.clear()
        self.held = 0
        for stream in streams:
            stream.closed = stream.received = True
            stream.queue = []
        return streams

    # ---------------------------------------------------------------- sending

    def open_stream(self, stream: H2Stream) -> None:
        """A client's new stream (``stream.id`` from :meth:`take_stream_id`) joins the table."""
        self.streams[stream.id] = stream

    def take_stream_id(self) -> int:
        stream_id = self.next_id
        self.next_id += 2
        return stream_id

    def grant(self, stream: H2Stream, increment: int) -> None:
        """Open ``stream``'s receive window by ``increment`` bytes."""
        stream.recv_window += increment
        self._write(window_update(stream.id, increment))

    def consumed(self, stream: H2Stream, size: int) -> None:
        """``size`` bytes of ``stream``'s DATA were taken: granted back once they make a
        quarter of the window, whatever the frames' sizes (grpcio sends answers in frames
        of some KiB; counting only large frames would leave a long answer stalled)."""
        stream.unacked += size
        if stream.unacked >= self.stream_window // 4 and not stream.received:
            self.grant(stream, stream.unacked)
            stream.unacked = 0

    def reset(self, stream: H2Stream, code: int = CANCEL) -> None:
        """End ``stream`` with RST_STREAM ``code`` (our choice: no hook runs)."""
        if self.streams.pop(stream.id, None) is not None:
            self._discard(stream)
            self._write(rst_stream(stream.id, code))

    def _discard(self, stream: H2Stream) -> None:
        self.held -= stream.queued
        stream.queue = []
        stream.queued = 0
        stream.closed = stream.received = stream.ending = True
        self.waiting.discard(stream)

    def _local_end(self, stream: H2Stream) -> None:
        """Our side of ``stream`` is written whole."""
        stream.closed = True
        if not self.client:
            self.guard.resets_left = self.guard.max_resets  # a call completed
        if stream.received:
            self._forget(stream)
        elif not self.client:  # a whole answer before the whole request: RFC 9113 §8.1
            self._write(rst_stream(stream.id, NO_ERROR))
            stream.received = True
            self._forget(stream)

    def _forget(self, stream: H2Stream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self._on_stream_closed(stream)

    def _stream_error(self, stream: H2Stream, code: int, message: str) -> None:
        if self.client:
            raise ProtocolError(message, code)
        self.streams.pop(stream.id, None)
        self._discard(stream)
        self._write(rst_stream(stream.id, code))
        self._on_stream_reset(stream, code, False)
        self._on_stream_closed(stream)

    # ---------------------------------------------------------------- frames in

    def _idle(self, stream_id: int) -> bool:
        """A stream id neither side has opened yet (push is off: the server opens none)."""
        if not stream_id & 1:
            return True
        return stream_id >= self.next_id if self.client else stream_id > self.last_stream

    def _never_opened(self, kind: str, stream_id: int) -> ProtocolError:
        who = "the client" if self.client else "the peer"
        return ProtocolError(f"{kind} on stream {stream_id}, which {who} never opened")

    def _on_idle_frame(self) -> None:
        self.guard.control()

    def _on_settings(self, flags: int, payload: bytes) -> None:
        self.guard.control()
        if flags & ACK:
            if payload:
                raise ProtocolError("SETTINGS ACK with a payload", FRAME_SIZE_ERROR)
            return
        opened = False
        for key, value in parse_settings(payload).items():
            if key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError(
                        f"SETTINGS_INITIAL_WINDOW_SIZE of {value} is over 2^31-1",
                        FLOW_CONTROL_ERROR,
                    )
                delta, self.peer_initial_window = value - self.peer_initial_window, value
                for stream in self.streams.values():
                    stream.send_window = _grown(stream.send_window, delta, stream.id)
                opened = opened or delta > 0
            elif key == MAX_FRAME_SIZE:
                if not SMALLEST_FRAME_LIMIT <= value <= LARGEST_FRAME_LIMIT:
                    raise ProtocolError(
                        f"SETTINGS_MAX_FRAME_SIZE of {value} is outside 16384 to 2^24-1"
                    )
                self.peer_frame_size = value
            elif key == MAX_CONCURRENT_STREAMS:
                self.peer_max_streams = value
            elif key == ENABLE_PUSH and (value > 1 or (self.client and value)):
                raise ProtocolError(f"the peer sent SETTINGS_ENABLE_PUSH of {value}")
        self._write(frame(SETTINGS, ACK, 0))
        if opened:
            self._drain_waiting()
        self._on_peer_settings()

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        self.guard.control()
        if not stream_id:
            if not increment:
                raise ProtocolError("WINDOW_UPDATE of 0 on stream 0")
            self.send_window = _grown(self.send_window, increment, 0)
            self._drain_waiting()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if self._idle(stream_id):
                raise self._never_opened("WINDOW_UPDATE", stream_id)
            return  # a stream that ended: the update comes late
        if not increment:
            self._stream_error(stream, PROTOCOL_ERROR, f"WINDOW_UPDATE of 0 on stream {stream_id}")
            return
        window = stream.send_window + increment
        if window > MAX_WINDOW:
            self._stream_error(stream, FLOW_CONTROL_ERROR, _over(stream_id, window))
            return
        stream.send_window = window
        if stream.queue:
            self._drain(stream, [])

    def _on_reset(self, stream_id: int, code: int) -> None:
        self.guard.control()
        if not stream_id or self._idle(stream_id):
            raise ProtocolError(f"RST_STREAM on idle stream {stream_id}")
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        self._discard(stream)
        if not self.client:
            self.guard.reset()  # rapid reset: a peer resetting the calls it opens
        self._on_stream_reset(stream, code, True)
        self._on_stream_closed(stream)

    def _on_goaway(self, last_stream: int, code: int) -> None:
        self.guard.control()
        self.goaway_received = True
        self._on_peer_goaway(last_stream, code)

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self.decoder.decode(block)  # always, to keep the dynamic table in step
        end = bool(flags & END_STREAM)
        stream = self.streams.get(stream_id)
        if stream is not None:
            if end:
                stream.received = True
            self._on_stream_headers(stream, headers, end)
            if end and stream.closed:
                self._forget(stream)
            return
        if self.client:
            if self._idle(stream_id):
                raise self._never_opened("HEADERS", stream_id)
            return  # an answer to a call we reset
        if not stream_id & 1 or stream_id <= self.last_stream:
            raise ProtocolError(f"stream {stream_id} cannot be opened by a client")
        self.last_stream = stream_id
        if self.goaway_sent or len(self.streams) >= (self.max_streams or LAST_STREAM_ID):
            if not self.goaway_sent:
                trip("http2.max_concurrent_streams")
            self.guard.control()
            self._write(rst_stream(stream_id, REFUSED_STREAM))
            return
        guard = self.guard
        guard.control_left = guard.max_control  # a call: the budget is full again
        stream = self._new_stream(stream_id)
        stream.received = end
        self.streams[stream_id] = stream
        self._on_stream_open(stream, headers)
        if end and stream.closed:
            self._forget(stream)

    def _on_data(self, stream_id: int, flags: int, payload: bytes | memoryview, size: int) -> None:
        unacked = self.unacked + size
        if unacked > self.connection_window:
            raise _overrun(
                size,
                "on the connection",
                self.connection_window - self.unacked,
                self.connection_window,
            )
        if unacked >= self.connection_window // 2:
            self._write(window_update(0, unacked))
            unacked = 0
        self.unacked = unacked
        stream = self.streams.get(stream_id)
        if stream is None or stream.received:
            if self._idle(stream_id):
                raise self._never_opened("DATA", stream_id)
            return  # a stream we closed or reset: its data is dropped
        if size > stream.recv_window:
            where = f"on stream {stream_id}"
            raise _overrun(size, where, stream.recv_window, self.stream_window)
        stream.recv_window -= size
        end = bool(flags & END_STREAM)
        if end:
            stream.received = True
        elif not payload:
            self.guard.control()
        self._on_stream_data(stream, payload, size, end)
        if end and stream.closed:
            self._forget(stream)


def _grown(window: int, change: int, stream_id: int) -> int:
    """A send window moved by ``change`` (a WINDOW_UPDATE's increment, or the change of
    SETTINGS_INITIAL_WINDOW_SIZE, which may be negative): never past 2^31-1 (§6.9.2)."""
    window += change
    if window > MAX_WINDOW:
        raise ProtocolError(_over(stream_id, window), FLOW_CONTROL_ERROR)
    return window


def _over(stream_id: int, window: int) -> str:
    return f"the send window of stream {stream_id} grew to {window}, over 2^31-1"


def _overrun(size: int, where: str, left: int, granted: int) -> ProtocolError:
    return ProtocolError(
        f"DATA of {size} bytes {where} overruns the window granted ({left} of {granted} "
        "bytes left)",
        FLOW_CONTROL_ERROR,
    )
