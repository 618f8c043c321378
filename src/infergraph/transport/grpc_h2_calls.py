"""The calls of a native gRPC connection: a handler run for each stream, its answer
written (at once when the peer's windows take it whole, else as they open, through
:class:`~infergraph.transport.grpc_h2_outbound.Outbound`). Mixed into
:class:`~infergraph.transport.grpc_h2_connection.Connection`, which reads the frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import grpc

from infergraph.transport.grpc_call import (
    CallAbort,
    CallContext,
    Metadata,
    decode_request,
    encode_response,
    request_message,
    trailers,
)
from infergraph.transport.grpc_h2_outbound import Outbound, message_prefix
from infergraph.transport.grpc_h2_stream import Stream
from infergraph.wire import http2

if TYPE_CHECKING:
    from infergraph.transport.grpc_native import NativeGrpcServer

__all__ = ["CONTENT_TYPE", "Calls"]

log = logging.getLogger(__name__)

CONTENT_TYPE = b"application/grpc"
_ENCODINGS = b"identity,deflate,gzip"
_RESPONSE_HEADERS = http2.encode_headers(
    [(b":status", b"200"), (b"content-type", CONTENT_TYPE), (b"grpc-accept-encoding", _ENCODINGS)]
)
_OK_TRAILERS = http2.encode_headers([(b"grpc-status", b"0")])


class Calls:
    """A connection's calls; what they need of the connection is declared here."""

    server: NativeGrpcServer
    out: Outbound
    peer: str

    # the connection's side
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _finish(
        self, stream: Stream, code: grpc.StatusCode, details: str, metadata: Metadata = ()
    ) -> None:
        raise NotImplementedError

    def _close(self, stream: Stream) -> None:
        raise NotImplementedError

    def _last_headers(self, stream: Stream, block: bytes) -> bytes:
        raise NotImplementedError

    def _give_back(self, stream: Stream) -> None:
        raise NotImplementedError

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
            del data, request, response  # a call waiting on its peer holds its answer only
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details, context.trailing)
            return
        except Exception as exc:  # a bug of ours or a handler's: a status, never a crash
            self._crashed(stream, exc)
            return
        end = (
            _OK_TRAILERS
            if not context.trailing
            else http2.encode_headers(trailers(grpc.StatusCode.OK, "", context.trailing))
        )
        size = len(body) + 5
        out = self.out
        if (
            stream.closed
            or size > out.frame_size
            or size > stream.send_window
            or size > out.window
            or out.paused
        ):
            await self._respond_large(stream, body, end)
            return
        stream.send_window -= size
        out.window -= size
        self._close(stream)
        self._write(
            b"".join(
                (
                    http2.frame(http2.HEADERS, http2.END_HEADERS, stream.id, _RESPONSE_HEADERS),
                    http2.frame_header(http2.DATA, 0, stream.id, size),
                    message_prefix(size - 5),
                    body,
                    self._last_headers(stream, end),
                )
            )
        )

    async def _respond_large(self, stream: Stream, body: bytes, end: bytes) -> None:
        """An answer that waits for the peer's window or for the socket, if the connection
        may hold it (``max_pending_send``); RESOURCE_EXHAUSTED if not."""
        if stream.closed:
            return
        if not self.out.admit(len(body) + 5):
            self._finish(stream, grpc.StatusCode.RESOURCE_EXHAUSTED, self.out.refusal())
            return
        self._write(http2.frame(http2.HEADERS, http2.END_HEADERS, stream.id, _RESPONSE_HEADERS))
        if await self.out.send(stream, body):
            self._close(stream)
            self._write(self._last_headers(stream, end))

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
                if not self.out.admit(len(body) + 5):
                    raise CallAbort(grpc.StatusCode.RESOURCE_EXHAUSTED, self.out.refusal())
                if not started:
                    self._write(
                        http2.frame(http2.HEADERS, http2.END_HEADERS, stream.id, _RESPONSE_HEADERS)
                    )
                    started = True
                if not await self.out.send(stream, body):
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
        block = http2.encode_headers(trailers(code, details, context.trailing))
        self._write(self._last_headers(stream, block))

    async def _streaming(self, stream: Stream, handler: grpc.RpcMethodHandler) -> None:
        context = self._context(stream)

        async def requests() -> AsyncIterator[Any]:
            assert stream.messages is not None
            while (message := await stream.messages.get()) is not None:
                stream.took(message)
                self._give_back(stream)
                yield decode_request(handler, self._request(stream, message))

        try:
            if handler.response_streaming:
                await self._respond_stream(
                    stream, context, handler.stream_stream(requests(), context)
                )
                return
            response = await handler.stream_unary(requests(), context)
            body = encode_response(handler, response, self.server.max_send)
            del response
        except CallAbort as exc:
            self._finish(stream, exc.code, exc.details, context.trailing)
            return
        except Exception as exc:
            self._crashed(stream, exc)
            return
        end = http2.encode_headers(trailers(grpc.StatusCode.OK, "", context.trailing))
        await self._respond_large(stream, body, end)

    def _crashed(self, stream: Stream, exc: BaseException) -> None:
        log.error("unhandled error on %s", stream.header(b":path"), exc_info=exc)
        self._finish(stream, grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
