"""One HTTP/2 connection of the native gRPC server: frames in, calls on the event loop,
frames out (see :mod:`infergraph.transport.grpc_native`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, cast

import grpc

from infergraph.protocol import h2
from infergraph.transport.grpc_call import (
    CallAbort,
    CallContext,
    Metadata,
    decode_request,
    encode_response,
    parse_timeout,
    request_message,
    trailers,
)
from infergraph.transport.grpc_h2_stream import Stream

if TYPE_CHECKING:
    from infergraph.transport.grpc_native import NativeGrpcServer

__all__ = ["Connection"]

log = logging.getLogger(__name__)

MAX_CONCURRENT_STREAMS = 1000
"""Calls in flight a connection takes by default (option ``grpc.max_concurrent_streams``)."""
STREAM_WINDOW = 4 << 20
"""Each stream's receive window; refilled as a streaming request's data arrives."""
CONNECTION_WINDOW = 64 << 20
"""The connection's receive window, refilled as data arrives."""
LINGER = 5.0
"""Seconds a connection we ended waits for the peer to close its side."""

_CONTENT_TYPE = b"application/grpc"
_ENCODINGS = b"identity,deflate,gzip"
_RESPONSE_HEADERS = h2.encode_headers(
    [(b":status", b"200"), (b"content-type", _CONTENT_TYPE), (b"grpc-accept-encoding", _ENCODINGS)]
)
_OK_TRAILERS = h2.encode_headers([(b"grpc-status", b"0")])
_UNIT_SECONDS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_SKIPPED_METADATA = frozenset(
    (b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)


class Connection(h2.FrameReader, asyncio.Protocol):
    def __init__(self, server: NativeGrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._start_reading(preface=True)
        self.decoder = h2.HeaderDecoder(self.header_limit)
        self.streams: dict[int, Stream] = {}
        self.last_stream = 0
        self.peer_window = h2.DEFAULT_WINDOW
        self.peer_frame_size = h2.DEFAULT_FRAME_SIZE
        self.send_window = h2.DEFAULT_WINDOW
        self.unacked = 0
        self.goaway_sent = False
        self.closing = False
        self.peer = ""
        self.blocked: set[Stream] = set()
        self.writable = asyncio.Event()
        self.writable.set()
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
            h2.MAX_CONCURRENT_STREAMS: self.server.max_streams,
            h2.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.MAX_FRAME_SIZE: self.frame_limit,
            h2.MAX_HEADER_LIST_SIZE: self.header_limit,
            h2.ENABLE_PUSH: 0,
        }
        self.transport.write(
            h2.frame(h2.SETTINGS, 0, 0, h2.settings_payload(settings))
            + h2.window_update(0, CONNECTION_WINDOW - h2.DEFAULT_WINDOW)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for stream in list(self.streams.values()):
            self._drop(stream)
        self.streams.clear()
        self.writable.set()
        if self.linger is not None:
            self.linger.cancel()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.read(data)
        except h2.ProtocolError as exc:
            log.debug("gRPC connection from %s: %s", self.peer, exc)
            self._fail(exc.code, str(exc))

    # ---------------------------------------------------------------- frames in

    def _reading(self) -> bool:
        return not self.closing

    def _on_reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self._drop(stream)
        self._maybe_close()

    def _on_goaway(self, last_stream: int, code: int) -> None:
        self.goaway_sent = True  # the peer opens no more streams; finish ours
        self._maybe_close()

    def _on_settings(self, flags: int, payload: bytes) -> None:
        if flags & h2.ACK:
            return
        for key, value in h2.parse_settings(payload).items():
            if key == h2.INITIAL_WINDOW_SIZE:
                if value > h2.MAX_WINDOW:
                    raise h2.ProtocolError("initial window too large", h2.FLOW_CONTROL_ERROR)
                delta, self.peer_window = value - self.peer_window, value
                for stream in self.streams.values():
                    stream.send_window += delta
                self._unblock(list(self.streams.values()))
            elif key == h2.MAX_FRAME_SIZE:
                if not h2.DEFAULT_FRAME_SIZE <= value <= 2**24 - 1:
                    raise h2.ProtocolError("bad MAX_FRAME_SIZE")
                self.peer_frame_size = value
        self._write(h2.frame(h2.SETTINGS, h2.ACK, 0))

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        if not stream_id:
            if not increment:
                raise h2.ProtocolError("WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > h2.MAX_WINDOW:
                raise h2.ProtocolError("connection window overflow", h2.FLOW_CONTROL_ERROR)
            self._unblock(list(self.blocked))
            return
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.send_window += increment
            self._unblock([stream])

    def _unblock(self, streams: Iterable[Stream]) -> None:
        for stream in streams:
            if stream.window_open is not None:
                stream.window_open.set()

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self.decoder.decode(block)  # always, to keep the dynamic table in step
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers from the client end its side
            if flags & h2.END_STREAM:
                self._end_of_request(stream)
            return
        if stream_id % 2 == 0 or stream_id <= self.last_stream:
            raise h2.ProtocolError(f"stream {stream_id} cannot be opened by a client")
        self.last_stream = stream_id
        if self.goaway_sent or len(self.streams) >= self.server.max_streams:
            self._write(h2.rst_stream(stream_id, h2.REFUSED_STREAM))
            return
        stream = Stream(stream_id, headers, self.peer_window)
        stream.received = bool(flags & h2.END_STREAM)
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
        if content_type is None or not content_type.startswith(_CONTENT_TYPE):
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
        length = size
        self.unacked += length
        if self.unacked >= CONNECTION_WINDOW // 2:
            self._write(h2.window_update(0, self.unacked))
            self.unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.received:
            if stream_id > self.last_stream:
                raise h2.ProtocolError(f"DATA on idle stream {stream_id}")
            return  # a stream we closed or reset: its data is dropped
        if stream.closed:
            if flags & h2.END_STREAM:
                self._forget(stream)
            return
        stream.size += len(payload)
        if stream.size > self.server.max_receive + 5 and stream.messages is None:
            self._finish(
                stream,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({stream.size - 5} vs. "
                f"{self.server.max_receive})",
            )
            return
        stream.data.append(payload)
        if stream.messages is not None:
            self._queue_messages(stream)
        if flags & h2.END_STREAM:
            self._end_of_request(stream)
        else:
            stream.unacked += length
            if stream.unacked >= STREAM_WINDOW // 2:
                self._write(h2.window_update(stream_id, stream.unacked))
                stream.unacked = 0

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
        data = b"".join(stream.data)
        pos = 0
        while (prefix := h2.read_grpc_message(data, pos)) is not None:
            if prefix[1] > self.server.max_receive:
                self._finish(
                    stream,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Received message larger than max ({prefix[1]} vs. {self.server.max_receive})",
                )
                return
            if len(data) - pos - 5 < prefix[1]:
                break
            body = data[pos : pos + 5 + prefix[1]]
            pos += 5 + prefix[1]
            assert stream.messages is not None
            stream.messages.put_nowait(body)
        stream.data = [data[pos:]] if pos < len(data) else []
        stream.size = len(data) - pos

    # ---------------------------------------------------------------- calls

    def _start(self, stream: Stream, call: Any) -> None:
        loop = asyncio.get_running_loop()
        stream.task = task = loop.create_task(call)
        self.server.calls.add(task)
        task.add_done_callback(self.server.calls.discard)
        if stream.timeout is not None:
            timer = loop.call_later(stream.timeout, self._expire, stream)
            task.add_done_callback(lambda _: timer.cancel())

    def _expire(self, stream: Stream) -> None:
        """The call's deadline passed: answer DEADLINE_EXCEEDED and cancel it."""
        self._finish(stream, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if stream.task is not None:
            stream.task.cancel()

    def _context(self, stream: Stream) -> CallContext:
        stream.context = CallContext(stream, self.peer, stream.timeout)
        return stream.context

    def _request(self, stream: Stream, data: bytes | memoryview) -> bytes | memoryview:
        encoding = stream.header(b"grpc-encoding")
        return request_message(data, encoding, self.server.max_receive)

    async def _unary(
        self, stream: Stream, handler: grpc.RpcMethodHandler, data: bytes | memoryview
    ) -> None:
        context = self._context(stream)
        try:
            request = decode_request(handler, self._request(stream, data))
            call = handler.unary_unary if not handler.response_streaming else handler.unary_stream
            if handler.response_streaming:
                await self._respond_stream(stream, context, call(request, context))
                return
            response = await call(request, context)
            if (failed := context.failed()) is not None:
                raise failed
            body = encode_response(handler, response, self.server.max_send)
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details, context.trailing)
            return
        except Exception as exc:  # a bug of ours or a handler's: a status, never a crash
            self._crashed(stream, exc)
            return
        end = (
            _OK_TRAILERS
            if not context.trailing
            else h2.encode_headers(trailers(grpc.StatusCode.OK, "", context.trailing))
        )
        message = h2.grpc_message(body)
        size = len(message)
        if (
            stream.closed
            or size > self.peer_frame_size
            or size > stream.send_window
            or size > self.send_window
        ):
            await self._respond_large(stream, message, end)
            return
        stream.send_window -= size
        self.send_window -= size
        self._close(stream)
        self._write(
            h2.frame(h2.HEADERS, h2.END_HEADERS, stream.id, _RESPONSE_HEADERS)
            + h2.frame_header(h2.DATA, 0, stream.id, size)
            + message
            + self._last_headers(stream, end)
        )

    async def _respond_large(self, stream: Stream, message: bytes, end: bytes) -> None:
        if stream.closed:
            return
        self._write(h2.frame(h2.HEADERS, h2.END_HEADERS, stream.id, _RESPONSE_HEADERS))
        if await self._send(stream, message):
            self._close(stream)
            self._write(self._last_headers(stream, end))

    async def _send(self, stream: Stream, data: bytes) -> bool:
        """Write ``data`` as DATA frames as the peer's windows allow; False if the stream
        ended meanwhile."""
        view = memoryview(data)
        while view:
            if stream.closed or self.closing:
                return False
            room = min(stream.send_window, self.send_window, self.peer_frame_size, len(view))
            if room <= 0:
                stream.window_open = stream.window_open or asyncio.Event()
                stream.window_open.clear()
                self.blocked.add(stream)
                try:
                    await stream.window_open.wait()
                finally:
                    self.blocked.discard(stream)
                continue
            chunk = view[:room]
            view = view[room:]
            stream.send_window -= room
            self.send_window -= room
            self._write(h2.frame_header(h2.DATA, 0, stream.id, room) + bytes(chunk))
            if not self.writable.is_set():
                await self.writable.wait()
        return True

    async def _respond_stream(self, stream: Stream, context: CallContext, responses: Any) -> None:
        handler = stream.handler
        assert handler is not None
        code, details = grpc.StatusCode.OK, ""
        started = False
        try:
            if hasattr(responses, "__aiter__"):
                iterator: AsyncIterator[Any] = responses
            else:
                iterator = _aiter(await responses if asyncio.iscoroutine(responses) else responses)
            async for response in iterator:
                body = encode_response(handler, response, self.server.max_send)
                if not started:
                    self._write(h2.frame(h2.HEADERS, h2.END_HEADERS, stream.id, _RESPONSE_HEADERS))
                    started = True
                if not await self._send(stream, h2.grpc_message(body)):
                    return
            if (failed := context.failed()) is not None:
                code, details = failed.code, failed.details
        except CallAbort as exc:
            code, details = exc.code, exc.details
        except Exception as exc:
            log.error("unhandled error on %s", stream.header(b":path"), exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        if not started:
            self._finish(stream, code, details, context.trailing)
            return
        if stream.closed:
            return
        self._close(stream)
        block = h2.encode_headers(trailers(code, details, context.trailing))
        self._write(self._last_headers(stream, block))

    async def _streaming(self, stream: Stream, handler: grpc.RpcMethodHandler) -> None:
        context = self._context(stream)

        async def requests() -> AsyncIterator[Any]:
            assert stream.messages is not None
            while (message := await stream.messages.get()) is not None:
                yield decode_request(handler, self._request(stream, message))

        try:
            if handler.response_streaming:
                await self._respond_stream(
                    stream, context, handler.stream_stream(requests(), context)
                )
                return
            response = await handler.stream_unary(requests(), context)
            body = encode_response(handler, response, self.server.max_send)
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details, context.trailing)
            return
        except Exception as exc:
            self._crashed(stream, exc)
            return
        end = h2.encode_headers(trailers(grpc.StatusCode.OK, "", context.trailing))
        await self._respond_large(stream, h2.grpc_message(body), end)

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
        headers = [(b":status", b"200"), (b"content-type", _CONTENT_TYPE)]
        block = h2.encode_headers(headers + trailers(code, details, metadata))
        self._close(stream)
        self._write(self._last_headers(stream, block))
        if not stream.received:  # the client is still sending: it need not
            self._write(h2.rst_stream(stream.id, h2.NO_ERROR))
            self._forget(stream)

    def _crashed(self, stream: Stream, exc: BaseException) -> None:
        log.error("unhandled error on %s", stream.header(b":path"), exc_info=exc)
        self._finish(stream, grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    def _http_error(self, stream: Stream, status: int) -> None:
        block = h2.encode_headers([(b":status", str(status).encode())])
        self._close(stream)
        self._write(self._last_headers(stream, block))
        if not stream.received:
            self._write(h2.rst_stream(stream.id, h2.NO_ERROR))
            self._forget(stream)

    def _last_headers(self, stream: Stream, block: bytes) -> bytes:
        """The frames of the header block that ends our side of ``stream``."""
        return h2.headers_frames(stream.id, block, True, self.peer_frame_size)

    def _close(self, stream: Stream) -> None:
        stream.closed = True
        if stream.received:
            self._forget(stream)

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

    def _fail(self, code: int, reason: str) -> None:
        """A connection error: GOAWAY and close."""
        if self.transport is None or self.closing:
            return
        self.transport.write(h2.goaway(self.last_stream, code, reason.encode()[:256]))
        self.closing = True
        for stream in list(self.streams.values()):
            self._drop(stream)
        self.streams.clear()
        self.transport.close()

    def goaway(self) -> None:
        """A graceful stop: no new streams; the connection closes once its calls end."""
        if not self.goaway_sent and not self.closing:
            self.goaway_sent = True
            self._write(h2.goaway(self.last_stream, h2.NO_ERROR))
        self._maybe_close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self.transport.abort()


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
