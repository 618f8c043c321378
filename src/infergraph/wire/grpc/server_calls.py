"""The calls of a native gRPC connection: a handler run for each stream, its answer
handed to the HTTP/2 state machine, which writes it at once when the peer's windows take
it whole and queues the rest until they open. Mixed into
:class:`~infergraph.wire.grpc.server_connection.Connection`.

A connection that already holds answers for a peer that takes them slowly refuses one
that would take it past ``max_pending_send`` (the call fails with RESOURCE_EXHAUSTED), so a
client that opens a hundred calls and never opens its window costs a bounded amount of
memory, not a hundred answers. A streaming answer sends its next message once the last
one is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import grpc

from infergraph.wire import http2
from infergraph.wire.grpc.call import (
    CallContext,
    decode_request,
    encode_response,
    request_message,
)
from infergraph.wire.grpc.headers import Metadata, trailers
from infergraph.wire.grpc.messages import message_prefix
from infergraph.wire.grpc.server_stream import Stream
from infergraph.wire.grpc.status import CallAbort
from infergraph.wire.trips import trip

if TYPE_CHECKING:
    from infergraph.wire.grpc.server import NativeGrpcServer

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
    peer: str
    held: int
    max_pending: int
    send_window: int
    peer_frame_size: int
    send_paused: bool

    # the connection's side
    if TYPE_CHECKING:  # the state machine's, after this class in the connection's bases

        def send(
            self,
            stream: http2.H2Stream,
            headers: bytes | None = None,
            data: Iterable[bytes | memoryview] = (),
            trailers: bytes | None = None,
            end: bool = False,
        ) -> None: ...

    def _finish(
        self, stream: Stream, code: grpc.StatusCode, details: str, metadata: Metadata = ()
    ) -> None:
        raise NotImplementedError

    def _give_back(self, stream: Stream) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- calls

    def _start_call(self, stream: Stream, call: Any) -> None:
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
        return request_message(data, encoding, self.server.max_receive, self.server.status_of)

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
        self._answer(stream, body, end)

    def _answer(self, stream: Stream, body: bytes, end: bytes) -> None:
        """Send a whole answer: at once if the peer's windows and the socket take it, else
        queued if the connection may hold it (``max_pending_send``); RESOURCE_EXHAUSTED if
        not."""
        if stream.ending:
            return
        size = len(body) + 5
        if (
            size > self.peer_frame_size
            or size > stream.send_window
            or size > self.send_window
            or self.send_paused
        ) and not self._admit(size):
            self._finish(stream, grpc.StatusCode.RESOURCE_EXHAUSTED, self._refusal())
            return
        self.send(stream, _RESPONSE_HEADERS, (message_prefix(len(body)), body), end)

    def _admit(self, size: int) -> bool:
        """Whether an answer of ``size`` bytes may wait for its peer: unless others wait and
        it would take their bytes past ``max_pending_send`` (counted as a trip)."""
        if self.held and self.held + size > self.max_pending:
            trip("http2.max_pending_send")
            return False
        return True

    def _refusal(self) -> str:
        return (
            f"the client takes its answers too slowly: {self.held} bytes of them wait on "
            f"this connection (the limit is {self.max_pending}, INFERGRAPH_HTTP2_MAX_PENDING_SEND)"
        )

    async def _sent(self, stream: Stream) -> bool:
        """Wait until what ``stream`` queued is written; False if the stream ended first."""
        while stream.queue and not stream.closed:
            drained = stream.drained = stream.drained or asyncio.Event()
            drained.clear()
            await drained.wait()
        return not stream.reset

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
                if not self._admit(len(body) + 5):
                    raise CallAbort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._refusal())
                if stream.ending:
                    return
                head = None if started else _RESPONSE_HEADERS
                started = True
                self.send(stream, head, (message_prefix(len(body)), body))
                if not await self._sent(stream):
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
        self.send(stream, trailers=http2.encode_headers(trailers(code, details, context.trailing)))

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
        self._answer(
            stream, body, http2.encode_headers(trailers(grpc.StatusCode.OK, "", context.trailing))
        )

    def _crashed(self, stream: Stream, exc: BaseException) -> None:
        log.error("unhandled error on %s", stream.header(b":path"), exc_info=exc)
        self._finish(stream, grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
