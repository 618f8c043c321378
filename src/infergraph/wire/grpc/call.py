"""One gRPC call's own semantics, apart from HTTP/2 and from its headers
(:mod:`infergraph.wire.grpc.headers`): the ``context`` its handler receives (the parts of
grpc's ServicerContext infergraph's handlers and grpcio-reflection use), its request
message decompressed and decoded, its answer encoded."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, cast

import grpc

from infergraph.errors import InferGraphError
from infergraph.wire.content_encoding import decode_content
from infergraph.wire.grpc.headers import Metadata, request_metadata
from infergraph.wire.grpc.messages import read_grpc_message
from infergraph.wire.grpc.status import CallAbort

__all__ = [
    "CallContext",
    "CallDetails",
    "decode_request",
    "encode_response",
    "request_message",
]


class CallDetails(NamedTuple):
    """grpc's HandlerCallDetails, for generic handlers."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


class CallState(Protocol):
    headers: list[tuple[bytes, bytes]]
    reset: bool
    closed: bool


class CallContext:
    """The ``context`` a handler receives."""

    __slots__ = ("_call", "_deadline", "_peer", "code", "details", "trailing")

    def __init__(self, call: CallState, peer: str, timeout: float | None) -> None:
        self._call = call
        self._peer = peer
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self.trailing: Metadata = ()
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return request_metadata(self._call.headers)

    def set_trailing_metadata(self, extra: Metadata) -> None:
        self.trailing = tuple(extra)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[Any] = ()
    ) -> None:
        if trailing_metadata:
            self.trailing = tuple(trailing_metadata)
        raise CallAbort(code, details)

    def failed(self) -> CallAbort | None:
        """The status a handler set without raising, if it is not OK."""
        if self.code in (None, grpc.StatusCode.OK):
            return None
        assert self.code is not None
        return CallAbort(self.code, self.details)

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def peer(self) -> str:
        return self._peer

    def cancelled(self) -> bool:
        return self._call.reset

    def done(self) -> bool:
        return self._call.closed


# ---------------------------------------------------------------- messages


def request_message(
    data: bytes | memoryview,
    encoding: bytes | None,
    limit: int,
    status_of: Callable[[InferGraphError], grpc.StatusCode],
) -> bytes | memoryview:
    """The one message of a request's bytes: its prefix checked, decompressed under
    ``limit`` if it says so (``encoding`` is the ``grpc-encoding`` header); a message that
    does not inflate fails the call with the status ``status_of`` gives its error."""
    prefix = read_grpc_message(data, 0)
    if prefix is None or len(data) != 5 + prefix[1]:
        count = "no message" if prefix is None else "a message cut short or more than one"
        raise CallAbort(grpc.StatusCode.INTERNAL, f"the request stream held {count}")
    body: bytes | memoryview = memoryview(data)[5:]  # no copy of a tensor's bytes
    if prefix[0]:
        name = (encoding or b"identity").decode("latin-1")
        if name not in ("gzip", "deflate"):
            raise CallAbort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"the message is compressed with {name!r}: this server accepts gzip or deflate",
            )
        try:
            body = decode_content(name, bytes(body), limit)
        except InferGraphError as exc:
            raise CallAbort(status_of(exc), exc.message) from None
    return body


def decode_request(handler: grpc.RpcMethodHandler, body: bytes | memoryview) -> Any:
    """The request message as the handler takes it."""
    if handler.request_deserializer is None:
        return bytes(body)
    try:
        return handler.request_deserializer(body)
    except Exception as exc:  # protobuf's DecodeError and kin
        raise CallAbort(
            grpc.StatusCode.INVALID_ARGUMENT, f"the request message cannot be parsed: {exc}"
        ) from None


def encode_response(handler: grpc.RpcMethodHandler, response: Any, limit: int) -> bytes:
    """The handler's answer serialised, refused past ``limit`` bytes."""
    body = (
        response if handler.response_serializer is None else handler.response_serializer(response)
    )
    if len(body) > limit:
        raise CallAbort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Sent message larger than max ({len(body)} vs. {limit})",
        )
    return cast(bytes, body)
