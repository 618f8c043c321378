"""One HTTP/2 connection of the native gRPC server: the asyncio protocol over the shared
HTTP/2 state machine (:class:`~infergraph.wire.http2.H2Connection`), which reads the frames,
keeps the windows and the stream table and queues what the peer's windows do not take yet;
this module turns its streams into calls (:mod:`~infergraph.wire.grpc.server_calls`).

What a peer can make a connection hold or spend is bounded by the server's
:class:`~infergraph.wire.limits.Http2Limits`: header blocks, streams, frames that ask work
but no call, and resets (the state machine's), answers the peer does not take
(``max_pending_send``, here) and request bytes (each stream's receive window, given back as
its handler takes them: :mod:`~infergraph.wire.grpc.server_stream`). While the socket takes
no more of what we write, nothing more is read: a peer that does not read cannot make us
answer without end.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import grpc

from infergraph.wire import http2
from infergraph.wire.grpc.headers import Metadata, parse_timeout, trailers
from infergraph.wire.grpc.server_calls import CONTENT_TYPE, Calls
from infergraph.wire.grpc.server_stream import STREAM_WINDOW, Stream
from infergraph.wire.grpc.status import CallAbort
from infergraph.wire.trips import trip

if TYPE_CHECKING:
    from infergraph.wire.grpc.server import NativeGrpcServer

__all__ = ["Connection"]

log = logging.getLogger(__name__)

LINGER = 5.0
"""Seconds a connection we ended waits for the peer to close its side."""


class Connection(Calls, http2.H2Connection, asyncio.Protocol):
    stream_window = STREAM_WINDOW

    def __init__(self, server: NativeGrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._start(client=False, limits=server.limits, max_streams=server.max_streams)
        self.max_pending = server.limits.max_pending_send
        self.draining = False
        """GOAWAY went or came: the connection ends once its streams have."""
        self.closing = False
        self.paused = False
        """The socket takes no more for now: reading waits too."""
        self.peer = ""
        self.lost: asyncio.Future[None] | None = None
        """Done once the connection is gone (what a graceful stop waits on)."""
        self.linger: asyncio.TimerHandle | None = None
        self.idle: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.lost = asyncio.get_running_loop().create_future()
        peer = transport.get_extra_info("peername")
        self.peer = f"ipv4:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        limits = self.server.limits
        self.initiate({})
        if limits.max_connections and len(self.server.connections) >= limits.max_connections:
            trip("http2.max_connections")
            self._fail(
                http2.ENHANCE_YOUR_CALM,
                f"the server already has {limits.max_connections} open connections "
                "(INFERGRAPH_HTTP2_MAX_CONNECTIONS); retry later",
            )
            return
        self.server.connections.add(self)
        if limits.idle_timeout:
            self._watch_idle(-1)

    def _watch_idle(self, seen: int) -> None:
        """Every ``idle_timeout`` seconds: a connection with no call in flight that opened
        none since the last look is idle, and ends (gracefully: GOAWAY NO_ERROR). One timer
        a connection, none a call."""
        if self.closing:
            return
        if seen == self.last_stream and not self.streams:
            trip("http2.idle_timeout")
            self.goaway()
            return
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(
            self.server.limits.idle_timeout, self._watch_idle, self.last_stream
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.idle is not None:
            self.idle.cancel()
        self.server.connections.discard(self)
        for stream in self.drop_streams():
            self._drop(cast(Stream, stream))
        if self.linger is not None:
            self.linger.cancel()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.pause_sending()
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closing:
            self.resume_sending()
            self.transport.resume_reading()
            self.data_received(b"")  # the frames read before the pause

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.read(data)
        except http2.ProtocolError as exc:
            http2.counted(exc)
            log.debug("gRPC connection from %s: %s", self.peer, exc)
            self._fail(exc.code, str(exc))

    def _reading(self) -> bool:
        return not self.closing and not self.paused

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _write_parts(self, parts: list[bytes | memoryview]) -> None:
        if self.transport is not None and not self.closing:
            self.transport.writelines(parts)

    # ---------------------------------------------------------------- the state machine's events

    def _new_stream(self, stream_id: int) -> Stream:
        return Stream(stream_id, self.peer_initial_window)

    def _on_stream_open(self, stream: http2.H2Stream, headers: list[tuple[bytes, bytes]]) -> None:
        stream = cast(Stream, stream)
        stream.headers = headers
        self._open(stream)
        if stream.received and not stream.ending:
            self._dispatch(stream)

    def _on_stream_headers(
        self, stream: http2.H2Stream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None:
        if end:  # trailers from the client end its side
            self._end_of_request(cast(Stream, stream))

    def _on_stream_data(
        self, stream: http2.H2Stream, payload: bytes | memoryview, size: int, end: bool
    ) -> None:
        stream = cast(Stream, stream)
        if stream.ending:
            return  # answered already: the rest of the request is dropped
        if payload:
            stream.data.append(payload)
            stream.size += len(payload)
        if stream.messages is not None:
            self._queue_messages(stream)
        elif stream.size > self.server.max_receive + 5:
            self._finish(
                stream,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({stream.size - 5} vs. "
                f"{self.server.max_receive})",
            )
        if stream.ending:
            return
        if end:
            self._end_of_request(stream)
        else:
            self._give_back(stream)

    def _on_stream_reset(self, stream: http2.H2Stream, code: int, remote: bool) -> None:
        self._drop(cast(Stream, stream))

    def _on_stream_closed(self, stream: http2.H2Stream) -> None:
        cast(Stream, stream).data = []
        self._maybe_close()

    def _on_stream_drained(self, stream: http2.H2Stream) -> None:
        drained = cast(Stream, stream).drained
        if drained is not None:
            drained.set()

    def _on_peer_goaway(self, last_stream: int, code: int) -> None:
        self.draining = True  # the peer opens no more streams; finish ours
        self._maybe_close()

    # ---------------------------------------------------------------- calls

    def _open(self, stream: Stream) -> None:
        method = path = content_type = None
        for name, value in stream.headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                stream.timeout = parse_timeout(value)
        if method != b"POST":
            self._http_error(stream, 405)
            return
        if content_type is None or not content_type.startswith(CONTENT_TYPE):
            self._http_error(stream, 415)
            return
        route = path.decode("latin-1") if path else ""
        try:
            handler = self.server.handler(route, stream.headers)
        except CallAbort as exc:  # metadata a generic handler's lookup cannot decode
            self._finish(stream, exc.code, exc.details)
            return
        if handler is None:
            self._finish(stream, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {route}")
            return
        stream.handler = handler
        if handler.request_streaming:
            stream.messages = asyncio.Queue()
            self._start_call(stream, self._streaming(stream, handler))

    def _give_back(self, stream: Stream) -> None:
        """Open the stream's window again for what left it (see :meth:`Stream.credit`)."""
        if stream.received or stream.ending:
            return
        try:
            grant = stream.credit(self.server.max_receive)
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details)
            return
        if grant:
            self.grant(stream, grant)

    def _end_of_request(self, stream: Stream) -> None:
        if not stream.ending:
            self._dispatch(stream)

    def _dispatch(self, stream: Stream) -> None:
        """The request is whole: start a unary call, or end a streaming call's requests."""
        if stream.messages is not None:
            stream.messages.put_nowait(None)
        elif stream.handler is not None:
            data = stream.data[0] if len(stream.data) == 1 else b"".join(stream.data)
            stream.data = []
            self._start_call(stream, self._unary(stream, stream.handler, data))

    def _queue_messages(self, stream: Stream) -> None:
        assert stream.messages is not None
        try:
            messages = stream.whole_messages(self.server.max_receive)
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details)
            return
        for message in messages:
            stream.messages.put_nowait(message)
        if messages:
            self.guard.useful()

    # ---------------------------------------------------------------- ending streams

    def _finish(
        self,
        stream: Stream,
        code: grpc.StatusCode,
        details: str,
        metadata: Metadata = (),
    ) -> None:
        """End the stream with a status and no message (gRPC's trailers-only answer); the
        state machine resets it (NO_ERROR) if the client is still sending."""
        headers = [(b":status", b"200"), (b"content-type", CONTENT_TYPE)]
        self.send(
            stream, http2.encode_headers(headers + trailers(code, details, metadata)), end=True
        )

    def _http_error(self, stream: Stream, status: int) -> None:
        self.send(stream, http2.encode_headers([(b":status", str(status).encode())]), end=True)

    def _drop(self, stream: Stream) -> None:
        """The stream was reset or the connection lost: stop its call."""
        stream.reset = stream.closed = stream.received = stream.ending = True
        if stream.task is not None and not stream.task.done():
            stream.task.cancel()
        if stream.drained is not None:
            stream.drained.set()
        if stream.messages is not None:
            stream.messages.put_nowait(None)

    def _maybe_close(self) -> None:
        """After GOAWAY, end the connection once no stream is left: on the loop's next turn,
        since a stream is forgotten before the frames that end it are written."""
        if self.draining and not self.streams and self.transport is not None:
            asyncio.get_running_loop().call_soon(self._shut_down)

    def _shut_down(self) -> None:
        """Our side ends (FIN once all written has gone) and reading goes on, the bytes
        dropped, until the peer closes: closing a socket with unread bytes makes the kernel
        reset the connection, which loses answers not yet delivered. A peer that never
        closes is cut off after ``LINGER`` seconds."""
        if self.closing or self.streams or self.transport is None:
            return
        self.closing = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger = asyncio.get_running_loop().call_later(LINGER, self.transport.abort)

    def _fail(self, code: int, reason: str) -> None:
        """A connection error: GOAWAY and close; at once when the peer reads nothing (it
        would not read the GOAWAY either), else once what we wrote is sent, or after
        ``LINGER`` seconds."""
        if self.transport is None or self.closing:
            return
        self.send_goaway(code, reason.encode())
        self.closing = True
        for stream in self.drop_streams():
            self._drop(cast(Stream, stream))
        if self.paused:
            self.transport.abort()
            return
        self.transport.close()
        self.linger = asyncio.get_running_loop().call_later(LINGER, self.transport.abort)

    def goaway(self) -> None:
        """A graceful stop: no new streams; the connection closes once its calls end."""
        if not self.draining and not self.closing:
            self.draining = True
            self.send_goaway(http2.NO_ERROR)
        self._maybe_close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self.transport.abort()
