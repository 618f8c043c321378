"""One HTTP/2 connection of the native gRPC server: frames in, calls on the event loop,
frames out (see :mod:`infergraph.transport.grpc_native`).

What a peer can make a connection hold or spend is bounded by the server's
:class:`~infergraph.wire.limits.Http2Limits`: header blocks (``http2.FrameReader``), streams,
frames that ask work but no call, and resets (:mod:`~infergraph.transport.grpc_h2_flood`),
answers the peer does not take (:mod:`~infergraph.transport.grpc_h2_outbound`) and request
bytes (each stream's receive window, given back as its handler takes them:
:mod:`~infergraph.transport.grpc_h2_stream`). While the socket takes no more of what we
write, nothing more is read: a peer that does not read cannot make us answer without end.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import grpc

from infergraph.transport.grpc_call import CallAbort, Metadata, parse_timeout, trailers
from infergraph.transport.grpc_h2_calls import CONTENT_TYPE, Calls
from infergraph.transport.grpc_h2_flood import FloodGuard
from infergraph.transport.grpc_h2_outbound import Outbound
from infergraph.transport.grpc_h2_stream import STREAM_WINDOW, Stream
from infergraph.wire import http2
from infergraph.wire.trips import trip

if TYPE_CHECKING:
    from infergraph.transport.grpc_native import NativeGrpcServer

__all__ = ["Connection"]

log = logging.getLogger(__name__)

CONNECTION_WINDOW = 64 << 20
"""The connection's receive window, refilled as data arrives."""
LINGER = 5.0
"""Seconds a connection we ended waits for the peer to close its side."""


class Connection(Calls, http2.FrameReader, asyncio.Protocol):
    def __init__(self, server: NativeGrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._start_reading(preface=True)
        limits = server.limits
        self.header_limit = limits.max_header_list_size
        self.continuation_limit = limits.max_continuations
        self.decoder = http2.HeaderDecoder(self.header_limit)
        self.guard = FloodGuard(limits)
        self.out = Outbound(self._write_parts, self.guard, limits.max_pending_send)
        self.streams: dict[int, Stream] = {}
        self.last_stream = 0
        self.unacked = 0
        self.goaway_sent = False
        self.closing = False
        self.paused = False
        """The socket takes no more for now: reading waits too."""
        self.peer = ""
        self.lost: asyncio.Future[None] | None = None
        """Done once the connection is gone (what a graceful stop waits on)."""
        self.linger: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.lost = asyncio.get_running_loop().create_future()
        peer = transport.get_extra_info("peername")
        self.peer = f"ipv4:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.server.connections.add(self)
        settings = {
            http2.MAX_CONCURRENT_STREAMS: self.server.max_streams,
            http2.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            http2.MAX_FRAME_SIZE: self.frame_limit,
            http2.MAX_HEADER_LIST_SIZE: self.header_limit,
            http2.ENABLE_PUSH: 0,
        }
        self.transport.write(
            http2.frame(http2.SETTINGS, 0, 0, http2.settings_payload(settings))
            + http2.window_update(0, CONNECTION_WINDOW - http2.DEFAULT_WINDOW)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for stream in list(self.streams.values()):
            self._drop(stream)
        self.streams.clear()
        self.out.resume()
        if self.linger is not None:
            self.linger.cancel()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.out.pause()
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.out.resume()
        self.paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
            self.data_received(b"")  # the frames read before the pause

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.read(data)
        except http2.ProtocolError as exc:
            if exc.limit:
                trip(exc.limit)
            log.debug("gRPC connection from %s: %s", self.peer, exc)
            self._fail(exc.code, str(exc))

    # ---------------------------------------------------------------- frames in

    def _reading(self) -> bool:
        return not self.closing and not self.paused

    def _on_idle_frame(self) -> None:
        self.guard.control()

    def _on_reset(self, stream_id: int, code: int) -> None:
        self.guard.control()
        if not stream_id or stream_id > self.last_stream:
            raise http2.ProtocolError(f"RST_STREAM on idle stream {stream_id}")
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self._drop(stream)
            self.guard.reset()
        self._maybe_close()

    def _on_goaway(self, last_stream: int, code: int) -> None:
        self.guard.control()
        self.goaway_sent = True  # the peer opens no more streams; finish ours
        self._maybe_close()

    def _on_settings(self, flags: int, payload: bytes) -> None:
        self.guard.control()
        if flags & http2.ACK:
            return
        for key, value in http2.parse_settings(payload).items():
            if key == http2.INITIAL_WINDOW_SIZE:
                self.out.initial_window_changed(value, self.streams.values())
            elif key == http2.MAX_FRAME_SIZE:
                self.out.frame_size_changed(value)
        self._write(http2.frame(http2.SETTINGS, http2.ACK, 0))

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        self.guard.control()
        if not stream_id:
            self.out.connection_window(increment)
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream:
                raise http2.ProtocolError(f"WINDOW_UPDATE on idle stream {stream_id}")
            return  # a stream we closed: the update comes late
        error = self.out.stream_window(stream, increment)
        if error:
            self._reset(stream, error)

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self.decoder.decode(block)  # always, to keep the dynamic table in step
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers from the client end its side
            if flags & http2.END_STREAM:
                self._end_of_request(stream)
            return
        if stream_id % 2 == 0 or stream_id <= self.last_stream:
            raise http2.ProtocolError(f"stream {stream_id} cannot be opened by a client")
        self.last_stream = stream_id
        if self.goaway_sent or len(self.streams) >= self.server.max_streams:
            if not self.goaway_sent:
                trip("http2.max_concurrent_streams")
            self.guard.control()
            self._write(http2.rst_stream(stream_id, http2.REFUSED_STREAM))
            return
        guard = self.guard
        guard.control_left = guard.max_control  # a call: the budget is full again
        stream = Stream(stream_id, headers, self.out.initial_window)
        stream.received = bool(flags & http2.END_STREAM)
        self.streams[stream_id] = stream
        self._open(stream)
        if stream.received and not stream.closed:
            self._dispatch(stream)

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
            self._start(stream, self._streaming(stream, handler))

    def _on_data(self, stream_id: int, flags: int, payload: bytes | memoryview, size: int) -> None:
        self.unacked += size  # the connection's window: given back as data arrives
        if self.unacked >= CONNECTION_WINDOW // 2:
            self._write(http2.window_update(0, self.unacked))
            self.unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.received:
            if stream_id > self.last_stream:
                raise http2.ProtocolError(f"DATA on idle stream {stream_id}")
            return  # a stream we closed or reset: its data is dropped
        if stream.closed:
            if flags & http2.END_STREAM:
                self._forget(stream)
            return
        stream.recv_window -= size
        if stream.recv_window < 0:
            raise http2.ProtocolError(
                f"DATA past stream {stream_id}'s window", http2.FLOW_CONTROL_ERROR
            )
        if payload:
            stream.data.append(payload)
            stream.size += len(payload)
        elif not flags & http2.END_STREAM:
            self.guard.control()
        if stream.messages is not None:
            self._queue_messages(stream)
        elif stream.size > self.server.max_receive + 5:
            self._finish(
                stream,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({stream.size - 5} vs. "
                f"{self.server.max_receive})",
            )
        if stream.closed:
            return
        if flags & http2.END_STREAM:
            self._end_of_request(stream)
        else:
            self._give_back(stream)

    def _give_back(self, stream: Stream) -> None:
        """Open the stream's window again for what left it (see :meth:`Stream.credit`)."""
        if stream.received or stream.closed:
            return
        try:
            grant = stream.credit(self.server.max_receive)
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details)
            return
        if grant:
            self._write(http2.window_update(stream.id, grant))

    def _end_of_request(self, stream: Stream) -> None:
        stream.received = True
        if stream.closed:
            self._forget(stream)
        else:
            self._dispatch(stream)

    def _dispatch(self, stream: Stream) -> None:
        """The request is whole: start a unary call, or end a streaming call's requests."""
        if stream.messages is not None:
            stream.messages.put_nowait(None)
        elif stream.handler is not None:
            data = stream.data[0] if len(stream.data) == 1 else b"".join(stream.data)
            stream.data = []
            self._start(stream, self._unary(stream, stream.handler, data))

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
        """End the stream with a status and no message (gRPC's trailers-only answer)."""
        if stream.closed:
            return
        headers = [(b":status", b"200"), (b"content-type", CONTENT_TYPE)]
        block = http2.encode_headers(headers + trailers(code, details, metadata))
        self._close(stream)
        self._write(self._last_headers(stream, block))
        if not stream.received:  # the client is still sending: it need not
            self._write(http2.rst_stream(stream.id, http2.NO_ERROR))
            self._forget(stream)

    def _http_error(self, stream: Stream, status: int) -> None:
        block = http2.encode_headers([(b":status", str(status).encode())])
        self._close(stream)
        self._write(self._last_headers(stream, block))
        if not stream.received:
            self._write(http2.rst_stream(stream.id, http2.NO_ERROR))
            self._forget(stream)

    def _last_headers(self, stream: Stream, block: bytes) -> bytes:
        """The frames of the header block that ends our side of ``stream``."""
        return http2.headers_frames(stream.id, block, True, self.out.frame_size)

    def _close(self, stream: Stream) -> None:
        """Our side of ``stream`` ends: its call completed."""
        stream.closed = True
        guard = self.guard
        guard.resets_left = guard.max_resets
        if stream.received:
            self._forget(stream)

    def _reset(self, stream: Stream, code: int) -> None:
        """End ``stream`` with RST_STREAM ``code``, a stream error of the peer's."""
        self.streams.pop(stream.id, None)
        self._drop(stream)
        self._write(http2.rst_stream(stream.id, code))
        self._maybe_close()

    def _forget(self, stream: Stream) -> None:
        stream.received = True
        self.streams.pop(stream.id, None)
        stream.data = []
        self._maybe_close()

    def _drop(self, stream: Stream) -> None:
        """The stream was reset or the connection lost: stop its call."""
        stream.reset = stream.closed = stream.received = True
        if stream.task is not None and not stream.task.done():
            stream.task.cancel()
        if stream.window_open is not None:
            stream.window_open.set()
        if stream.messages is not None:
            stream.messages.put_nowait(None)

    def _maybe_close(self) -> None:
        """After GOAWAY, end the connection once no stream is left: on the loop's next turn,
        since a stream is forgotten before the frames that end it are written."""
        if self.goaway_sent and not self.streams and self.transport is not None:
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

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _write_parts(self, *parts: bytes | memoryview) -> None:
        if self.transport is not None and not self.closing:
            self.transport.writelines(parts)

    def _fail(self, code: int, reason: str) -> None:
        """A connection error: GOAWAY and close; at once when the peer reads nothing (it
        would not read the GOAWAY either), else once what we wrote is sent, or after
        ``LINGER`` seconds."""
        if self.transport is None or self.closing:
            return
        self.transport.write(http2.goaway(self.last_stream, code, reason.encode()[:256]))
        self.closing = True
        for stream in list(self.streams.values()):
            self._drop(stream)
        self.streams.clear()
        if self.paused:
            self.transport.abort()
            return
        self.transport.close()
        self.linger = asyncio.get_running_loop().call_later(LINGER, self.transport.abort)

    def goaway(self) -> None:
        """A graceful stop: no new streams; the connection closes once its calls end."""
        if not self.goaway_sent and not self.closing:
            self.goaway_sent = True
            self._write(http2.goaway(self.last_stream, http2.NO_ERROR))
        self._maybe_close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self.transport.abort()
